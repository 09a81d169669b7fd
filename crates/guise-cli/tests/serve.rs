//! `guise serve` with its clients, and `guise demo`, run as a user would.

mod common;

use common::GUISE;
use common::server::{as_uid, start};

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn file_service_runs_as_each_client_and_stays_beneath_its_root() {
    need_root!();
    // Both ways of opening as the client: io_uring personalities, and switching
    // the worker.
    for io_uring in ["on", "off"] {
        file_service_scenario(io_uring, &[]);
    }
    // And io_uring asked for but unavailable, as a seccomp filter (systemd's
    // SystemCallFilter, a container runtime's profile) or `kernel.io_uring_disabled`
    // makes it: io_uring_setup fails, and every open switches, with the same answers.
    let python = "/usr/bin/python3";
    let have = std::process::Command::new(python)
        .args(["-c", "import seccomp"])
        .status()
        .is_ok_and(|s| s.success());
    if common::skip::skip_unless(have, "python3-seccomp") {
        return;
    }
    file_service_scenario("on", &[python, "-c", NO_IO_URING]);
}

/// Runs the program named by its arguments with a seccomp filter that fails
/// io_uring_setup with ENOSYS.
const NO_IO_URING: &str = "
import errno, os, sys, seccomp
f = seccomp.SyscallFilter(seccomp.ALLOW)
f.add_rule(seccomp.ERRNO(errno.ENOSYS), 'io_uring_setup')
f.load()
os.execv(sys.argv[1], sys.argv[1:])
";

fn file_service_scenario(io_uring: &str, wrap: &[&str]) {
    // `GUISE_IO_URING=off` turns io_uring off whatever the flag says.
    let uring = io_uring == "on"
        && wrap.is_empty()
        && std::env::var("GUISE_IO_URING").map_or(true, |v| v != "off");
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for p in [dir.path(), files.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for uid in [61001u32, 61002] {
        let p = files.join(format!("{uid}.txt"));
        std::fs::write(&p, format!("owned by {uid}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    }
    std::os::unix::fs::symlink("/etc/shadow", files.join("escape")).unwrap();
    let mut server = start(dir.path(), &files, wrap, &["--io-uring", io_uring]);
    let sock = dir.path().join("pipe");
    let s = sock.to_str().unwrap();
    let imp = ["--level", "impersonation"];
    let cat = |uid: u32, level: &[&str], path: &str| {
        let mut args = vec!["cat", "--socket", s];
        args.extend_from_slice(level);
        args.push(path);
        as_uid(uid, &args)
    };
    assert_eq!(cat(61001, &imp, "61001.txt").1, "owned by 61001");
    let (code, _, err) = cat(61001, &imp, "61002.txt");
    assert_eq!(code, 1);
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    assert_eq!(cat(61002, &imp, "61002.txt").1, "owned by 61002");
    // guise's clients ask for Impersonation unless told otherwise (issue 22);
    // at Identification the server may not act as the client.
    let (code, out, err) = cat(61001, &[], "61001.txt");
    assert_eq!((code, out.as_str()), (0, "owned by 61001"), "{err}");
    let (code, _, err) = cat(61001, &["--level", "identification"], "61001.txt");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ERROR_BAD_IMPERSONATION_LEVEL"), "{err}");
    // Paths cannot leave the served directory, as the server or as anyone.
    for escape in [
        "../files/61001.txt",
        "/etc/passwd",
        "escape",
        "../../../../etc/shadow",
    ] {
        let (code, out, err) = cat(61001, &imp, escape);
        assert_eq!(code, 1, "{escape}: {out}");
        assert!(err.contains("ERROR_ACCESS_DENIED"), "{escape}: {err}");
    }
    // A file that is not there is ERROR_FILE_NOT_FOUND; one whose directory is
    // not there (or is a file), ERROR_PATH_NOT_FOUND: never ERROR_ACCESS_DENIED,
    // and never ERROR_NONE_MAPPED, which is for accounts (#21).
    for (path, want) in [
        ("missing.txt", "ERROR_FILE_NOT_FOUND"),
        ("no-dir/missing.txt", "ERROR_PATH_NOT_FOUND"),
        ("61001.txt/missing.txt", "ERROR_PATH_NOT_FOUND"),
    ] {
        let (code, out, err) = cat(61001, &imp, path);
        assert_eq!(code, 1, "{path}: {out}");
        assert!(err.contains(want), "{path}: {err}");
        assert!(!err.contains("ERROR_ACCESS_DENIED"), "{path}: {err}");
    }
    let (code, out, _) = as_uid(
        61001,
        &["ls", "--socket", s, "--level", "impersonation", ""],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "61001.txt\n61002.txt\nescape\n");
    // Writing needs the client's own right to the directory: root's 0755 says no.
    let (code, _, err) = as_uid(
        61001,
        &[
            "put",
            "--socket",
            s,
            "--level",
            "impersonation",
            "--data",
            "x",
            "new.txt",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    // The server logged each request with the client's uid, pid and level.
    let log = server.stderr();
    let way = if uring {
        "reads open as the client through io_uring personalities"
    } else {
        "every open switches a worker to the client"
    };
    assert!(
        log.contains(way),
        "{io_uring} {wrap:?}: not \"{way}\" in\n{log}"
    );
    let line = log
        .lines()
        .find(|l| {
            l.contains("path=\"61001.txt\"")
                && l.contains("uid=61001")
                && l.contains("level=impersonation")
        })
        .unwrap_or_else(|| panic!("no request line in\n{log}"));
    assert!(
        line.contains("pid=") && line.contains("result=\"ok\""),
        "{line}"
    );
}

/// The fork-per-request baseline serves each read from a child that is the client:
/// the kernel decides, as in `guise serve`.
#[test]
fn fork_per_request_server_serves_each_read_as_the_client() {
    need_root!();
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for p in [dir.path(), files.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for uid in [61001u32, 61002] {
        let p = files.join(format!("{uid}.txt"));
        std::fs::write(&p, format!("owned by {uid}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    }
    let _server = start(dir.path(), &files, &[], &["--fork-per-request"]);
    let sock = dir.path().join("pipe");
    let s = sock.to_str().unwrap();
    let cat = |uid: u32, level: &str, path: &str| {
        as_uid(uid, &["cat", "--socket", s, "--level", level, path])
    };
    for _ in 0..3 {
        assert_eq!(cat(61001, "impersonation", "61001.txt").1, "owned by 61001");
        assert_eq!(cat(61002, "impersonation", "61002.txt").1, "owned by 61002");
    }
    let (code, _, err) = cat(61001, "impersonation", "61002.txt");
    assert_eq!(code, 1);
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    let (code, _, err) = cat(61001, "identification", "61001.txt");
    assert_eq!(code, 1);
    assert!(err.contains("ERROR_BAD_IMPERSONATION_LEVEL"), "{err}");
    let (code, _, err) = cat(61001, "impersonation", "../../../../etc/shadow");
    assert_eq!(code, 1);
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    // Reads only.
    let (code, _, err) = as_uid(
        61001,
        &["ls", "--socket", s, "--level", "impersonation", ""],
    );
    assert_eq!(code, 1);
    assert!(err.contains("reads only"), "{err}");
}

#[test]
fn demo_shows_the_kernel_deciding() {
    need_root!();
    let out = Command::new(GUISE).arg("demo").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |uid: &str, level: &str, file: &str| {
        text.lines()
            .find(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[0] == uid && f[1] == level && f[2] == file
            })
            .unwrap_or_else(|| panic!("no row {uid} {level} {file} in\n{text}"))
            .to_owned()
    };
    assert!(row("61001", "impersonation", "61001.txt").contains("secret of uid 61001"));
    assert!(row("61001", "impersonation", "61002.txt").contains("denied"));
    assert!(row("61002", "impersonation", "61002.txt").contains("secret of uid 61002"));
    assert!(row("61001", "identification", "61001.txt").contains("ERROR_BAD_IMPERSONATION_LEVEL"));
    assert!(row("61001", "identification", "public.txt").contains("ERROR_BAD_IMPERSONATION_LEVEL"));
    assert!(row("61002", "anonymous", "61002.txt").contains("ERROR_BAD_IMPERSONATION_LEVEL"));
    assert!(row("61002", "delegation", "61002.txt").contains("secret of uid 61002"));
    assert!(text.contains("its owner is uid 61001"), "{text}");
    // Without root it explains what it needs and fails.
    let out = Command::new(GUISE)
        .args(["run", "--uid", "61001", "--", GUISE, "demo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs root"));
}

/// The load generator: clients of distinct identities through `guise serve`, every
/// reply their own.
#[test]
fn bench_serve_loads_the_server_and_counts_no_foreign_replies() {
    need_root!();
    let (code, out, err) = common::guise(
        &[
            "bench",
            "serve",
            "--clients",
            "3",
            "--seconds",
            "1",
            "--json",
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let v = &v["data"];
    assert_eq!(v["clients"], 3);
    assert_eq!(v["wrong"], 0);
    assert!(v["requests"].as_u64().unwrap() > 10, "{v}");
    // The baselines: switching workers (no io_uring), and one request at a time
    // behind a lock.
    for extra in [
        &["--io-uring", "off"][..],
        &["--process-lock"],
        &["--process-per-request"],
        &["--fork-per-request"],
    ] {
        let mut args = vec![
            "bench",
            "serve",
            "--clients",
            "2",
            "--seconds",
            "1",
            "--json",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = common::guise(&args, "");
        assert_eq!(code, 0, "{extra:?}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["data"]["wrong"], 0, "{extra:?}: {v}");
    }
}

/// The memory measurement: idle connections of distinct identities, each served
/// once, cost the server a bounded few KiB each.
#[test]
fn bench_memory_measures_idle_connections_of_many_identities() {
    need_root!();
    let (code, out, err) =
        common::guise(&["bench", "memory", "--connections", "100", "--json"], "");
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let v = &v["data"];
    assert_eq!(v["connections"], 100);
    let per = v["bytes_per_connection"].as_u64().unwrap();
    assert!(per < 64 * 1024, "{v}");
}

/// Issue 22: a first try works. `guise cat`, `ls`, `stat` and `put` with no
/// level ask for Impersonation (the client consents to being served as itself),
/// so a user reads and writes its own files at once; another's file is still
/// the kernel's to refuse, and a lower level asked for on purpose says which
/// flag to pass.
#[test]
fn first_tries_own_file_cat_ls_stat_put_with_no_flags_work() {
    need_root!();
    let (dir, files) = common::server::tree();
    common::server::own_file(&files.join("mine.txt"), 61001, 0o600, "my own");
    common::server::own_file(&files.join("theirs.txt"), 61002, 0o600, "theirs");
    let _server = start(dir.path(), &files, &[], &[]);
    let sock = dir.path().join("pipe");
    let s = sock.to_str().unwrap();
    let (code, out, err) = as_uid(61001, &["cat", "--socket", s, "mine.txt"]);
    assert_eq!((code, out.as_str()), (0, "my own"), "{err}");
    let (code, out, err) = as_uid(61001, &["ls", "--socket", s, ""]);
    assert_eq!((code, out.as_str()), (0, "mine.txt\ntheirs.txt\n"), "{err}");
    let (code, out, err) = as_uid(61001, &["stat", "--json", "--socket", s, "mine.txt"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""uid":61001"#), "{out}");
    // A directory of its own to write in.
    std::fs::create_dir(files.join("home")).unwrap();
    std::os::unix::fs::chown(files.join("home"), Some(61001), Some(61001)).unwrap();
    let (code, _, err) = as_uid(
        61001,
        &["put", "--socket", s, "--data", "written", "home/new.txt"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(files.join("home/new.txt")).unwrap(),
        "written"
    );
    // Impersonation is not a key to others' files.
    let (code, out, err) = as_uid(61001, &["cat", "--socket", s, "theirs.txt"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    // Identification, asked for, opens nothing, and says what to pass.
    for level in ["identification", "anonymous"] {
        let (code, out, err) = as_uid(61001, &["cat", "--socket", s, "--level", level, "mine.txt"]);
        assert_eq!(code, 1, "{out}");
        assert!(err.contains("ERROR_BAD_IMPERSONATION_LEVEL"), "{err}");
        assert!(
            err.contains(
                "nothing is opened for the client: ask for Impersonation (`--level impersonation`"
            ),
            "{err}"
        );
    }
}
