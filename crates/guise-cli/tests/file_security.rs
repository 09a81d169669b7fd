//! `guise sddl --file` and `guise access-check --file` against the kernel itself
//! (issue 24): random files with random modes, owners, groups and POSIX ACLs,
//! and accounts with varied supplementary groups. The kernel's answer comes from
//! programs nobody here wrote: `setpriv` puts a Python process on the account's
//! ids and groups (no capabilities), which asks `os.access` (faccessat) for each
//! file. guise's answer comes from `guise access-check --batch` (all of them)
//! and `guise access-check --file PATH --user NAME --desired RIGHTS` (a sample).
//! Some ACLs are set with `setfacl`, the others by writing their attribute.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A small deterministic generator (xorshift64*): the same files every run.
struct TestRng(u64);

impl TestRng {
    fn new() -> TestRng {
        TestRng(0x9e37_79b9_7f4a_7c15)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `range`.
    fn random_range<T>(&mut self, range: std::ops::Range<T>) -> T
    where
        T: TryFrom<u64> + Into<u64> + Copy,
        <T as TryFrom<u64>>::Error: std::fmt::Debug,
    {
        let (lo, hi) = (range.start.into(), range.end.into());
        T::try_from(lo + self.next() % (hi - lo)).unwrap()
    }

    fn random_bool(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The test accounts: name, uid (also its primary gid) and supplementary gids.
const ACCOUNTS: &[(&str, u32, &[u32])] = &[
    ("guisef1", 61501, &[]),
    ("guisef2", 61502, &[61601]),
    ("guisef3", 61503, &[61601, 61602]),
    ("guisef4", 61504, &[61602, 61603, 61604]),
    ("guisef5", 61505, &[61604]),
];
/// The groups with no account of their own.
const GROUPS: &[(&str, u32)] = &[
    ("guisefg1", 61601),
    ("guisefg2", 61602),
    ("guisefg3", 61603),
    ("guisefg4", 61604),
];
/// Owners: the accounts, root, and a uid without an account.
const OWNERS: &[u32] = &[0, 61501, 61502, 61503, 61504, 61505, 61599];
const OWNING_GROUPS: &[u32] = &[0, 61501, 61503, 61601, 61602, 61603, 61604, 61699];
const FILES: usize = 10_000;

/// Moves this thread to a private mount namespace where /etc/passwd and
/// /etc/group also list the test accounts.
fn accounts() -> tempfile::TempDir {
    let (mut passwd, mut group) = (String::new(), String::new());
    for (name, uid, _) in ACCOUNTS {
        passwd.push_str(&format!("{name}:x:{uid}:{uid}::/nonexistent:/bin/sh\n"));
        group.push_str(&format!("{name}:x:{uid}:\n"));
    }
    for (name, gid) in GROUPS {
        let members: Vec<&str> = ACCOUNTS
            .iter()
            .filter(|(_, _, groups)| groups.contains(gid))
            .map(|(n, _, _)| *n)
            .collect();
        group.push_str(&format!("{name}:x:{gid}:{}\n", members.join(",")));
    }
    common::with_accounts(&passwd, &group)
}

/// An ACL entry as the test writes it: tag, id, rwx bits.
type Entry = (u16, u32, u16);
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// The attribute's bytes (acl(5), the kernel's `posix_acl_xattr` layout),
/// written here without the library.
fn xattr(entries: &[Entry]) -> Vec<u8> {
    let mut sorted = entries.to_vec();
    sorted.sort();
    let mut b = 2u32.to_le_bytes().to_vec();
    for (tag, id, perm) in sorted {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&perm.to_le_bytes());
        b.extend_from_slice(&id.to_le_bytes());
    }
    b
}

fn rwx(perm: u16) -> String {
    format!(
        "{}{}{}",
        if perm & 4 != 0 { 'r' } else { '-' },
        if perm & 2 != 0 { 'w' } else { '-' },
        if perm & 1 != 0 { 'x' } else { '-' }
    )
}

/// The same ACL as `setfacl --set` text.
fn setfacl_text(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|&(tag, id, perm)| match tag {
            USER_OBJ => format!("u::{}", rwx(perm)),
            USER => format!("u:{id}:{}", rwx(perm)),
            GROUP_OBJ => format!("g::{}", rwx(perm)),
            GROUP => format!("g:{id}:{}", rwx(perm)),
            MASK => format!("m::{}", rwx(perm)),
            _ => format!("o::{}", rwx(perm)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What was made, for the report of a disagreement.
struct Made {
    path: PathBuf,
    what: String,
}

/// Random owner, group, mode and ACL for `path`; what was made, in words, and
/// whether it has an ACL.
fn randomize(path: &Path, directory: bool, rng: &mut TestRng, i: usize) -> (String, bool) {
    let uid = OWNERS[rng.random_range(0..OWNERS.len() as u64) as usize];
    let gid = OWNING_GROUPS[rng.random_range(0..OWNING_GROUPS.len() as u64) as usize];
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    // Every mode, setuid, setgid (directories too) and sticky included.
    let mode: u32 = rng.random_range(0..0o10000u32);
    std::fs::set_permissions(path, PermissionsExt::from_mode(mode)).unwrap();
    let mut what = format!(
        "{} {} owner {uid} group {gid} mode {mode:04o}",
        if directory { "dir" } else { "file" },
        path.display()
    );
    if !rng.random_bool(0.5) {
        return (what, false);
    }
    let perm = |rng: &mut TestRng| rng.random_range(0..8u16);
    let mut entries = vec![
        (USER_OBJ, u32::MAX, perm(rng)),
        (GROUP_OBJ, u32::MAX, perm(rng)),
        (OTHER, u32::MAX, perm(rng)),
    ];
    let mut ids: Vec<(u16, u32)> = Vec::new();
    for _ in 0..rng.random_range(0..4u32) {
        let (tag, id) = if rng.random_bool(0.5) {
            (
                USER,
                OWNERS[rng.random_range(0..OWNERS.len() as u64) as usize],
            )
        } else {
            (
                GROUP,
                OWNING_GROUPS[rng.random_range(0..OWNING_GROUPS.len() as u64) as usize],
            )
        };
        if !ids.contains(&(tag, id)) {
            ids.push((tag, id));
            entries.push((tag, id, perm(rng)));
        }
    }
    // A mask: needed with named entries, sometimes `---`.
    if !ids.is_empty() || rng.random_bool(0.2) {
        let mask = if rng.random_bool(0.15) { 0 } else { perm(rng) };
        entries.push((MASK, u32::MAX, mask));
    }
    if i.is_multiple_of(20) {
        let out = Command::new("setfacl")
            .arg("--set")
            .arg(setfacl_text(&entries))
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "setfacl: {out:?}");
    } else {
        rustix::fs::setxattr(
            path,
            "system.posix_acl_access",
            &xattr(&entries),
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    }
    what.push_str(&format!(" acl {}", setfacl_text(&entries)));
    (what, true)
}

/// Makes `FILES` random files and directories in `dir`: some directories
/// first, in which (and in `dir`) the rest is made, so that the path to a file
/// also decides (its directories must be searchable).
fn make_files(dir: &Path, rng: &mut TestRng) -> (Vec<Made>, usize) {
    let mut made = Vec::with_capacity(FILES);
    let mut with_acl = 0;
    let mut dirs = vec![dir.to_owned()];
    for i in 0..FILES {
        let parent = if i < 40 {
            dir.to_owned()
        } else {
            dirs[rng.random_range(0..dirs.len() as u64) as usize].clone()
        };
        let path = parent.join(format!("f{i}"));
        let directory = i < 40 || rng.random_bool(0.1);
        if directory {
            std::fs::create_dir(&path).unwrap();
        } else {
            std::fs::File::create(&path).unwrap();
        }
        let (what, acl) = randomize(&path, directory, rng, i);
        with_acl += usize::from(acl);
        if i < 40 {
            dirs.push(path.clone());
        }
        made.push(Made { path, what });
    }
    // The first directories were filled as root; their modes stay random.
    (made, with_acl)
}

/// The kernel's answers for `account`: "rwx"-style strings, one per file, from
/// Python's os.access in a process that setpriv put on the account's ids and
/// groups. `root` is uid 0 without any capability.
fn kernel_answers(account: &str, made: &[Made]) -> Vec<String> {
    let script = "import os, sys\n\
        for line in sys.stdin:\n\
        \x20   p = line.rstrip('\\n')\n\
        \x20   print(''.join(c if os.access(p, m) else '-' for c, m in (('r', os.R_OK), ('w', os.W_OK), ('x', os.X_OK))))\n";
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={account}"),
            &format!("--regid={account}"),
            "--init-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let paths: String = made
        .iter()
        .map(|m| format!("{}\n", m.path.display()))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(paths.as_bytes()).unwrap());
    let out = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out.len(), made.len(), "{account}: one answer per file");
    out
}

const RIGHTS: [(char, &str); 3] = [('r', "FR"), ('w', "FW"), ('x', "FX")];

/// guise's answers for `account` from one `guise access-check --batch`.
fn guise_answers(account: &str, made: &[Made]) -> Vec<String> {
    let mut child = Command::new(common::GUISE)
        .args(["access-check", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = String::new();
    for m in made {
        for (_, desired) in RIGHTS {
            lines.push_str(
                &serde_json::json!({"file": m.path, "user": account, "desired": desired})
                    .to_string(),
            );
            lines.push('\n');
        }
    }
    let writer = std::thread::spawn(move || stdin.write_all(lines.as_bytes()).unwrap());
    let answers: Vec<bool> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            assert_eq!(v["ok"], true, "{v}");
            v["data"]["allowed"].as_bool().unwrap()
        })
        .collect();
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(answers.len(), made.len() * 3);
    answers
        .chunks(3)
        .map(|a| {
            RIGHTS
                .iter()
                .zip(a)
                .map(|((c, _), &allowed)| if allowed { *c } else { '-' })
                .collect()
        })
        .collect()
}

#[test]
fn issue_24_access_check_of_a_file_agrees_with_the_kernel_for_every_file_account_and_right() {
    if common::skip::skip_without_root() {
        return;
    }
    let _accounts = accounts();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let mut rng = TestRng::new();
    let (made, with_acl) = make_files(dir.path(), &mut rng);
    assert!(with_acl > FILES / 3, "{with_acl} files with an ACL");

    let mut names: Vec<&str> = ACCOUNTS.iter().map(|(n, _, _)| *n).collect();
    names.push("root");
    let mut disagreements = Vec::new();
    let mut tally: BTreeMap<(char, bool), usize> = BTreeMap::new();
    let mut answers_of = BTreeMap::new();
    for name in &names {
        let kernel = kernel_answers(name, &made);
        let ours = guise_answers(name, &made);
        for ((m, k), g) in made.iter().zip(&kernel).zip(&ours) {
            for (i, (c, _)) in RIGHTS.iter().enumerate() {
                let allowed = k.as_bytes()[i] != b'-';
                *tally.entry((*c, allowed)).or_default() += 1;
            }
            if k != g {
                disagreements.push(format!("{name} on {}: kernel {k}, guise {g}", m.what));
            }
        }
        answers_of.insert(*name, kernel);
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, the first: {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(20)]
    );
    // Both answers are common for every right: the test can tell them apart.
    for ((right, allowed), n) in &tally {
        assert!(
            *n > FILES / 10,
            "only {n} checks of {right} were {allowed}: {tally:?}"
        );
    }

    // The exact command line of the issue, for a sample.
    for i in (0..FILES).step_by(97) {
        let name = names[i % names.len()];
        let (right, desired) = RIGHTS[i % 3];
        let path = made[i].path.to_str().unwrap();
        let (code, out, err) = common::guise(
            &[
                "access-check",
                "--file",
                path,
                "--user",
                name,
                "--desired",
                desired,
            ],
            "",
        );
        let kernel = answers_of[name][i].contains(right);
        assert_eq!(
            code,
            if kernel { 0 } else { 1 },
            "{name} {desired} on {}: {out}{err}",
            made[i].what
        );
    }
}

/// Root with its capabilities: the caller's own process token, whose
/// SeBackupPrivilege and SeRestorePrivilege act as CAP_DAC_READ_SEARCH (reading)
/// and CAP_DAC_OVERRIDE (writing) with backup semantics, reads and writes as
/// the kernel lets root; no privilege executes (guise's backup-intent rule);
/// without backup semantics, root's answer is its owner and group bits only.
#[test]
fn issue_24_root_with_its_capabilities_reads_and_writes_as_the_kernel_answers_it() {
    if common::skip::skip_without_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = TestRng::new();
    let mut checked = 0;
    for i in 0..300 {
        let path = dir.path().join(format!("r{i}"));
        if i % 4 == 0 {
            std::fs::create_dir(&path).unwrap();
        } else {
            std::fs::File::create(&path).unwrap();
        }
        let uid = OWNERS[rng.random_range(0..OWNERS.len() as u64) as usize];
        std::os::unix::fs::chown(&path, Some(uid), Some(61601)).unwrap();
        std::fs::set_permissions(
            &path,
            PermissionsExt::from_mode(rng.random_range(0..0o1000u32)),
        )
        .unwrap();
        let (right, desired) = RIGHTS[i % 2];
        let mode = match right {
            'r' => rustix::fs::Access::READ_OK,
            'w' => rustix::fs::Access::WRITE_OK,
            _ => rustix::fs::Access::EXEC_OK,
        };
        let kernel =
            rustix::fs::accessat(rustix::fs::CWD, &path, mode, rustix::fs::AtFlags::EACCESS)
                .is_ok();
        let (code, out, err) = common::guise(
            &[
                "access-check",
                "--file",
                path.to_str().unwrap(),
                "--desired",
                desired,
                "--backup-semantics",
            ],
            "",
        );
        assert_eq!(
            code,
            if kernel { 0 } else { 1 },
            "{desired} on {path:?}: {out}{err}"
        );
        checked += 1;
    }
    assert_eq!(checked, 300);
    // A file only its owner may touch: root reads and writes it, executes it not.
    let f = dir.path().join("owned");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(61501), Some(61501)).unwrap();
    std::fs::set_permissions(&f, PermissionsExt::from_mode(0o600)).unwrap();
    let check = |desired: &str, backup: bool| {
        let mut args = vec![
            "access-check",
            "--file",
            f.to_str().unwrap(),
            "--desired",
            desired,
        ];
        if backup {
            args.push("--backup-semantics");
        }
        common::guise(&args, "").0
    };
    assert_eq!(check("FR", true), 0);
    assert_eq!(check("FW", true), 0);
    assert_eq!(check("FX", true), 1);
    assert_eq!(
        check("FR", false),
        1,
        "without backup semantics no privilege acts"
    );
}

#[test]
fn sddl_file_prints_the_descriptor_of_a_file_with_an_acl() {
    if common::skip::skip_without_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("shared");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(61501), Some(61601)).unwrap();
    let out = Command::new("setfacl")
        .args([
            "--set",
            "u::rw-,u:61502:r--,g::r--,g:61602:rw-,m::rw-,o::---",
        ])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (code, sddl, err) = common::guise(&["sddl", "--file", f.to_str().unwrap()], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        sddl.trim()
            .starts_with("O:S-1-22-1-61501G:S-1-22-2-61601D:P("),
        "{sddl}"
    );
    let (code, json, _) = common::guise(&["sddl", "--file", f.to_str().unwrap(), "--json"], "");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["data"]["owner"], "S-1-22-1-61501");
    // The owner first; the named user's read; the group entries' allows (the
    // named group's read and write), then their denies; Everyone last.
    let aces: Vec<(String, String, String)> = v["data"]["dacl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["type"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches("_ACE_TYPE")
                    .to_owned(),
                a["mask"].as_str().unwrap().to_owned(),
                a["sid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ace = |t: &str, m: &str, s: &str| (t.to_owned(), m.to_owned(), s.to_owned());
    assert_eq!(
        aces,
        [
            ace("ACCESS_DENIED", "0x20", "S-1-22-1-61501"),
            ace("ACCESS_ALLOWED", "0x4011f", "S-1-22-1-61501"),
            ace("ACCESS_DENIED", "0x136", "S-1-22-1-61502"),
            ace("ACCESS_ALLOWED", "0x9", "S-1-22-1-61502"),
            ace("ACCESS_ALLOWED", "0x9", "S-1-22-2-61601"),
            ace("ACCESS_ALLOWED", "0x11f", "S-1-22-2-61602"),
            ace("ACCESS_DENIED", "0x13f", "S-1-22-2-61601"),
            ace("ACCESS_DENIED", "0x13f", "S-1-22-2-61602"),
            ace("ACCESS_ALLOWED", "0x120080", "S-1-1-0"),
        ],
        "{json}"
    );
    assert!(
        v["data"]["control"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("SE_DACL_PROTECTED"))
    );
}

/// The kernel's own answer for `account` on one path (os.access under setpriv).
fn kernel_one(account: &str, path: &Path) -> String {
    let made = [Made {
        path: path.to_owned(),
        what: String::new(),
    }];
    kernel_answers(account, &made).remove(0)
}

fn check(path: &Path, user: &str, desired: &str) -> i32 {
    let (code, out, err) = common::guise(
        &[
            "access-check",
            "--file",
            path.to_str().unwrap(),
            "--user",
            user,
            "--desired",
            desired,
        ],
        "",
    );
    assert!(code == 0 || code == 1, "{out}{err}");
    code
}

/// Attack: a file readable by all, behind a directory its user cannot search,
/// is not reachable; nor through a symbolic link from a public directory; a
/// path through a magic link of /proc is refused.
#[test]
fn attack_a_file_behind_a_directory_the_user_cannot_search_is_not_reachable() {
    if common::skip::skip_without_root() {
        return;
    }
    let _accounts = accounts();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, PermissionsExt::from_mode(0o700)).unwrap();
    let notes = private.join("notes");
    std::fs::write(&notes, "x").unwrap();
    std::fs::set_permissions(&notes, PermissionsExt::from_mode(0o644)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    for path in [&notes, &link] {
        assert_eq!(kernel_one("guisef1", path), "---");
        assert_eq!(check(path, "guisef1", "FR"), 1, "{path:?}");
        assert_eq!(check(path, "root", "FR"), 0, "root owns the directory");
    }
    // The same file once the directory may be searched (but not listed).
    std::fs::set_permissions(&private, PermissionsExt::from_mode(0o711)).unwrap();
    assert_eq!(kernel_one("guisef1", &link), "r--");
    assert_eq!(check(&link, "guisef1", "FR"), 0);
    let (code, _, err) = common::guise(
        &[
            "access-check",
            "--file",
            "/proc/self/root/etc/hostname",
            "--user",
            "guisef1",
            "--desired",
            "FR",
        ],
        "",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/proc"), "{err}");
}

/// Attack: what the kernel's path lookup refuses is not reachable here either:
/// a trailing slash on a file, a symbolic link on a `nosymfollow` mount, a
/// trailing link another user planted in a sticky world-writable directory
/// (fs.protected_symlinks), a file of /proc (its permissions are its own).
#[test]
fn attack_paths_the_kernel_refuses_to_resolve_are_not_reachable() {
    if common::skip::skip_without_root() {
        return;
    }
    let _accounts = accounts();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let notes = dir.path().join("notes");
    std::fs::write(&notes, "x").unwrap();
    std::fs::set_permissions(&notes, PermissionsExt::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&notes, Some(61501), Some(61501)).unwrap();
    let run = |path: &str, user: &str| {
        common::guise(
            &[
                "access-check",
                "--file",
                path,
                "--user",
                user,
                "--desired",
                "FR",
            ],
            "",
        )
    };
    // A trailing slash: the kernel says ENOTDIR.
    let slash = format!("{}/", notes.display());
    assert_eq!(kernel_one("guisef1", Path::new(&slash)), "---");
    assert_eq!(run(&slash, "guisef1").0, 2);

    // A link planted by guisef2 in a sticky, world-writable directory, to
    // guisef1's file: with fs.protected_symlinks guisef1 may not follow it.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, PermissionsExt::from_mode(0o1777)).unwrap();
    let planted = shared.join("planted");
    std::os::unix::fs::symlink(&notes, &planted).unwrap();
    rustix::fs::chownat(
        rustix::fs::CWD,
        &planted,
        Some(rustix::fs::Uid::from_raw(61502)),
        None,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    // Both settings of fs.protected_symlinks (a hardening switch: turning it
    // on for a moment only refuses more), put back as it was.
    struct Sysctl(String);
    impl Drop for Sysctl {
        fn drop(&mut self) {
            let _ = std::fs::write("/proc/sys/fs/protected_symlinks", &self.0);
        }
    }
    let restore = Sysctl(std::fs::read_to_string("/proc/sys/fs/protected_symlinks").unwrap());
    for (setting, expected) in [("1", "---"), ("0", "rw-")] {
        std::fs::write("/proc/sys/fs/protected_symlinks", setting).unwrap();
        assert_eq!(
            kernel_one("guisef1", &planted),
            expected,
            "protected_symlinks={setting}"
        );
        let ours = run(planted.to_str().unwrap(), "guisef1").0;
        assert_eq!(
            ours,
            if expected == "---" { 1 } else { 0 },
            "protected_symlinks={setting}"
        );
    }
    drop(restore);
    // Its owner follows it.
    assert_eq!(kernel_one("guisef2", &planted), "r--");
    assert_eq!(run(planted.to_str().unwrap(), "guisef2").0, 0);

    // A link on a nosymfollow mount: the kernel says ELOOP.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    let mount = |args: &[&str]| {
        let out = Command::new("mount").args(args).output().unwrap();
        assert!(out.status.success(), "mount {args:?}: {out:?}");
    };
    let d = dir.path().to_str().unwrap();
    mount(&["--bind", d, d]);
    mount(&["-o", "remount,bind,nosymfollow", d]);
    assert_eq!(kernel_one("guisef1", &link), "---");
    let (code, _, err) = run(link.to_str().unwrap(), "guisef1");
    rustix::mount::unmount(dir.path(), rustix::mount::UnmountFlags::DETACH).unwrap();
    assert_eq!(code, 2, "{err}");

    // /proc: refused, whatever its mode bits say.
    let (code, _, err) = run("/proc/1/status", "guisef1");
    assert_eq!(code, 2, "{err}");
}

/// What holds for everyone: nothing writes an immutable file or a file on a
/// read-only mount, privileges included, as the kernel refuses it.
#[test]
fn issue_24_immutable_files_and_read_only_mounts_are_written_by_no_one() {
    if common::skip::skip_without_root() {
        return;
    }
    let _accounts = accounts();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let f = dir.path().join("shared");
    std::fs::write(&f, "x").unwrap();
    std::fs::set_permissions(&f, PermissionsExt::from_mode(0o666)).unwrap();
    assert_eq!(check(&f, "guisef1", "FW"), 0);
    let chattr = |flag: &str| {
        let out = Command::new("chattr").arg(flag).arg(&f).output().unwrap();
        assert!(out.status.success(), "chattr {flag}: {out:?}");
    };
    chattr("+i");
    let kernel = kernel_one("guisef1", &f);
    let ours = check(&f, "guisef1", "FW");
    let root_backup = common::guise(
        &[
            "access-check",
            "--file",
            f.to_str().unwrap(),
            "--desired",
            "FW",
            "--backup-semantics",
        ],
        "",
    )
    .0;
    chattr("-i");
    assert_eq!(kernel, "r--", "the kernel refuses writing");
    assert_eq!(ours, 1);
    assert_eq!(root_backup, 1, "no privilege writes an immutable file");
    assert_eq!(check(&f, "guisef1", "FR"), 0);

    // A read-only bind mount of the directory, in this thread's namespace.
    rustix::mount::mount_bind(dir.path(), dir.path()).unwrap();
    rustix::mount::mount_remount(
        dir.path(),
        rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY,
        "",
    )
    .unwrap();
    assert_eq!(kernel_one("guisef1", &f), "r--");
    assert_eq!(check(&f, "guisef1", "FW"), 1);
    assert_eq!(check(&f, "guisef1", "FR"), 0);
    rustix::mount::unmount(dir.path(), rustix::mount::UnmountFlags::DETACH).unwrap();
}

/// Any caller may ask about a file it can reach, for any account, at
/// Identification level: the answer is the same as root gets.
#[test]
fn issue_24_a_caller_that_is_not_root_asks_for_another_account() {
    if common::skip::skip_without_root() {
        return;
    }
    let _accounts = accounts();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let f = dir.path().join("team");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(61501), Some(61602)).unwrap();
    std::fs::set_permissions(&f, PermissionsExt::from_mode(0o640)).unwrap();
    let as_guisef5 = |user: &str| {
        Command::new("setpriv")
            .args(["--reuid=guisef5", "--regid=guisef5", "--init-groups", "--"])
            .arg(common::GUISE)
            .args([
                "access-check",
                "--file",
                f.to_str().unwrap(),
                "--user",
                user,
                "--desired",
                "FR",
            ])
            .output()
            .unwrap()
    };
    for (user, kernel) in [("guisef3", "r--"), ("guisef4", "r--"), ("guisef2", "---")] {
        assert_eq!(kernel_one(user, &f), kernel);
        let out = as_guisef5(user);
        assert_eq!(
            out.status.code(),
            Some(if kernel == "r--" { 0 } else { 1 }),
            "{user}: {out:?}"
        );
    }
}
