//! Thread impersonation with real kernel credentials. Each test runs in its own
//! process under cargo-nextest; the ones that need root say "skipped: needs root"
//! without it.

#[path = "../common/mod.rs"]
mod common;

use guise::privilege::Capabilities;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{A, B, Public, SERVER, files};
use guise::token::PrivilegeChange;
use guise::{
    ErrorKind, ImpersonationLevel, LogonType, Privilege, Sid, ThreadCredentials, Token, TokenType,
};
use rustix::thread as rthread;
use rustix::thread::CapabilitySet;

fn client(uid: u32) -> Token {
    Token::from_ids(uid, uid, &[uid]).unwrap()
}

/// A field of `/proc/thread-self/status` (the calling thread's view), e.g. "Uid",
/// read through a descriptor of `/proc` that the first call opens: a thread below
/// Impersonation level has an empty root, with no `/proc` in it. Each test calls
/// it once before a thread goes below.
fn thread_status(field: &str) -> String {
    let text = proc_read("thread-self/status");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/thread-self/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `/proc`, opened once (`O_PATH`), before any thread of the test is below
/// Impersonation level.
fn proc_dir() -> std::os::fd::BorrowedFd<'static> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsFd;
    static PROC: std::sync::OnceLock<std::os::fd::OwnedFd> = std::sync::OnceLock::new();
    PROC.get_or_init(|| {
        rustix::fs::open(
            "/proc",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("/proc must be opened before the thread goes below Impersonation level")
    })
    .as_fd()
}

/// A file under `/proc`, read through [`proc_dir`].
fn proc_read(path: &str) -> String {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(
        proc_dir(),
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("/proc/{path}: {e}"));
    std::io::read_to_string(std::fs::File::from(fd)).unwrap()
}

/// Where a link under `/proc` points, read through [`proc_dir`]: for
/// `thread-self/root` and `thread-self/cwd`.
fn proc_link(path: &str) -> String {
    rustix::fs::readlinkat(proc_dir(), path, Vec::new())
        .unwrap_or_else(|e| panic!("/proc/{path}: {e}"))
        .into_string()
        .unwrap()
}

/// Whether the calling thread may read `p`. A thread below Impersonation level
/// finds nothing at all (its root is an empty directory): that counts as denied.
fn can_read(p: &std::path::Path) -> bool {
    match std::fs::read(p) {
        Ok(_) => true,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound
            ) =>
        {
            false
        }
        Err(e) => panic!("reading {}: {e}", p.display()),
    }
}

#[test]
fn kernel_enforces_the_impersonated_identity() {
    need_root!();
    let f = files();
    let before = ThreadCredentials::current().unwrap();
    assert!(can_read(&f.a) && can_read(&f.b), "root reads both");
    {
        let guard = client(A).impersonate().unwrap();
        assert_eq!(guard.level(), ImpersonationLevel::Impersonation);
        assert!(can_read(&f.a), "A reads its own file");
        assert!(!can_read(&f.b), "A is denied B's file");
        assert!(!can_read(&f.root_only));
        // Only the effective (and fs) ids change; real and saved stay the server's.
        assert_eq!(thread_status("Uid"), format!("0 {A} 0 {A}"));
        assert_eq!(thread_status("Gid"), format!("0 {A} 0 {A}"));
        assert_eq!(thread_status("Groups"), A.to_string());
        assert_eq!(thread_status("CapEff"), "0000000000000000");
    }
    assert_eq!(ThreadCredentials::current().unwrap(), before);
    assert!(can_read(&f.b), "the server again after revert");
    let contents = client(B).run_as(|| std::fs::read_to_string(&f.b)).unwrap();
    assert_eq!(contents.unwrap(), B.to_string());
    assert!(!client(B).run_as(|| can_read(&f.a)).unwrap());
    assert_eq!(ThreadCredentials::current().unwrap(), before);
}

#[test]
fn other_threads_are_never_affected() {
    need_root!();
    let f = files();
    let done = AtomicBool::new(false);
    let checks = AtomicUsize::new(0);
    let server_status = (
        thread_status("Uid"),
        thread_status("Gid"),
        thread_status("CapEff"),
    );
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                assert_eq!(thread_status("Uid"), server_status.0);
                assert_eq!(thread_status("Gid"), server_status.1);
                assert_eq!(thread_status("CapEff"), server_status.2);
                assert!(can_read(&f.root_only), "thread 2 lost the server identity");
                checks.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Stop the watcher however this thread leaves the loop, panics included.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _done = Done(&done);
        let token = client(A);
        for round in 0..1000 {
            let g = token.impersonate().unwrap();
            assert!(can_read(&f.a), "round {round}");
            assert!(!can_read(&f.root_only), "round {round}");
            drop(g);
            assert!(can_read(&f.root_only), "round {round}");
        }
        drop(_done);
        watcher.join().unwrap();
    });
    assert!(checks.load(Ordering::Relaxed) > 0, "the watcher never ran");
}

fn panics_revert(trials: usize, body: impl Fn(&Token)) {
    common::quiet_panics();
    let before = ThreadCredentials::current().unwrap();
    let token = client(A);
    let mut reverted = 0;
    for _ in 0..trials {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&token)));
        assert!(r.is_err(), "the body must panic");
        assert!(!guise::thread::is_impersonating());
        if ThreadCredentials::current().unwrap() == before {
            reverted += 1;
        }
    }
    let _ = std::panic::take_hook();
    assert_eq!(reverted, trials, "every panicking thread is reverted");
}

#[test]
fn panic_inside_run_as_reverts() {
    need_root!();
    panics_revert(10_000, |t| {
        t.run_as(|| {
            assert_eq!(rustix::process::geteuid().as_raw(), A);
            panic!("client code panics")
        })
        .unwrap();
    });
}

#[test]
fn panic_inside_guard_scope_reverts() {
    need_root!();
    panics_revert(10_000, |t| {
        let _g = t.impersonate().unwrap();
        assert_eq!(rustix::process::geteuid().as_raw(), A);
        panic!("client code panics");
    });
}

#[test]
fn identification_level_identifies_but_cannot_act() {
    need_root!();
    proc_dir();
    let f = files();
    let before = ThreadCredentials::current().unwrap();
    let ident = client(A)
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    let guard = ident.impersonate().unwrap();
    assert_eq!(guard.level(), ImpersonationLevel::Identification);
    // The kernel sees the sentinel, not the client.
    assert_eq!(thread_status("Uid"), "0 4294967294 0 4294967294");
    assert_eq!(thread_status("Groups"), "");
    assert!(!can_read(&f.a), "Identification level may not act as A");
    assert!(!can_read(&f.b));
    // The token itself can be inspected and used for access decisions.
    let t = guise::open_thread_token(true).unwrap();
    assert_eq!(t.user(), Sid::unix_user(A));
    assert_eq!(
        t.impersonation_level(),
        Some(ImpersonationLevel::Identification)
    );
    assert!(t.check_membership(&Sid::unix_group(A)).unwrap());
    assert!(t.check_membership(&Sid::EVERYONE).unwrap());
    assert!(!t.check_membership(&Sid::unix_group(B)).unwrap());
    assert_eq!(
        guise::open_thread_token(false).unwrap_err().kind(),
        ErrorKind::BadImpersonationLevel
    );
    drop(guard);
    assert_eq!(ThreadCredentials::current().unwrap(), before);
}

#[test]
fn anonymous_level_and_anonymous_token() {
    need_root!();
    proc_dir();
    let f = files();
    let anon = client(A)
        .duplicate(ImpersonationLevel::Anonymous, TokenType::Impersonation)
        .unwrap();
    anon.run_as(|| {
        assert_eq!(thread_status("Uid"), "0 4294967294 0 4294967294");
        assert!(!can_read(&f.a));
        assert_eq!(
            guise::open_thread_token(true).unwrap_err().kind(),
            ErrorKind::CantOpenAnonymous
        );
    })
    .unwrap();
    // The token value is still readable by the server.
    assert_eq!(anon.user(), Sid::unix_user(A));

    let g = Token::anonymous().impersonate().unwrap();
    assert_eq!(g.level(), ImpersonationLevel::Impersonation);
    assert_eq!(thread_status("Uid"), "0 4294967294 0 4294967294");
    assert!(!can_read(&f.a) && !can_read(&f.root_only));
    let t = guise::open_thread_token(false).unwrap();
    assert_eq!(t.user(), Sid::ANONYMOUS);
    assert!(
        !t.check_membership(&Sid::EVERYONE).unwrap(),
        "Windows: the anonymous logon is not in Everyone (EveryoneIncludesAnonymous = 0)"
    );
    assert!(t.check_membership(&Sid::ANONYMOUS).unwrap());
    assert!(!t.check_membership(&Sid::AUTHENTICATED_USERS).unwrap());
}

/// Drops CAP_SETUID and CAP_SETGID from the calling thread (each test runs in a
/// process of its own, and capabilities are per thread).
fn drop_setid_caps() {
    let mut caps = rthread::capabilities(None).unwrap();
    let setid = CapabilitySet::SETUID | CapabilitySet::SETGID;
    caps.effective -= setid;
    caps.permitted -= setid;
    caps.inheritable -= setid;
    rthread::set_capabilities(None, caps).unwrap();
}

#[test]
fn server_without_setid_capabilities_gets_identification() {
    need_root!();
    proc_dir();
    let f = files();
    drop_setid_caps();
    let before = ThreadCredentials::current().unwrap();
    let guard = client(A).impersonate().unwrap();
    assert_eq!(guard.level(), ImpersonationLevel::Identification);
    let t = guise::open_thread_token(true).unwrap();
    assert_eq!(
        t.impersonation_level(),
        Some(ImpersonationLevel::Identification)
    );
    assert_eq!(t.user(), Sid::unix_user(A));
    // The thread keeps the server's ids but loses every capability.
    assert_eq!(thread_status("CapEff"), "0000000000000000");
    assert!(!can_read(&f.a), "never the client's identity");
    drop(guard);
    assert_eq!(ThreadCredentials::current().unwrap(), before);
    // Its own identity it may still impersonate at full level.
    let own = Token::from_ids(0, 0, &before.groups).unwrap();
    assert_eq!(
        own.impersonate().unwrap().level(),
        ImpersonationLevel::Impersonation
    );
    // And building a token for an account needs SeTcb in the process token.
    assert_eq!(
        Token::for_user("root", LogonType::Batch)
            .unwrap_err()
            .kind(),
        ErrorKind::PrivilegeNotHeld
    );
}

#[test]
fn non_root_server_capabilities_do_not_leak_into_impersonation() {
    need_root!();
    let f = files();
    // Make this thread a non-root server that holds CAP_DAC_OVERRIDE.
    let keep = CapabilitySet::SETUID | CapabilitySet::SETGID | CapabilitySet::DAC_OVERRIDE;
    rthread::set_keep_capabilities(true).unwrap();
    rthread::set_thread_groups(&[]).unwrap();
    let server = rustix::process::Gid::from_raw(SERVER);
    rthread::set_thread_res_gid(server, server, server).unwrap();
    let server = rustix::process::Uid::from_raw(SERVER);
    rthread::set_thread_res_uid(server, server, server).unwrap();
    rthread::set_capabilities(
        None,
        rthread::CapabilitySets {
            effective: keep,
            permitted: keep,
            inheritable: CapabilitySet::empty(),
        },
    )
    .unwrap();
    assert_eq!(rustix::process::geteuid().as_raw(), SERVER);
    assert!(
        can_read(&f.b),
        "CAP_DAC_OVERRIDE lets the server read B's file"
    );

    let guard = client(A).impersonate().unwrap();
    assert_eq!(guard.level(), ImpersonationLevel::Impersonation);
    assert_eq!(thread_status("Uid"), format!("{SERVER} {A} {SERVER} {A}"));
    assert!(can_read(&f.a));
    assert!(
        !can_read(&f.b),
        "the server's CAP_DAC_OVERRIDE must not carry over"
    );
    drop(guard);
    assert!(can_read(&f.b), "the server has its capability back");
}

#[test]
fn enabled_privileges_become_effective_capabilities() {
    need_root!();
    let f = files();
    // A client of uid 0 whose process holds every capability, with only CAP_SETUID
    // and CAP_SETGID effective.
    let mut system = Token::from_ids_with_capabilities(
        0,
        0,
        &[],
        Capabilities::all(),
        Capabilities::SETUID | Capabilities::SETGID,
    )
    .unwrap();
    assert!(system.is_privilege_enabled(Privilege::Impersonate));
    system.disable_all_privileges().unwrap();
    system
        .run_as(|| {
            assert_eq!(thread_status("Uid"), "0 0 0 0");
            assert_eq!(thread_status("CapEff"), "0000000000000000");
            assert!(
                !can_read(&f.a),
                "uid 0 without enabled privileges has no override"
            );
        })
        .unwrap();
    system
        .adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Enable)])
        .unwrap();
    system
        .run_as(|| {
            // SeBackup acts only for opens with backup intent (see
            // tests/privilege: se_backup_and_se_restore_act_only_for_backup_intent_opens).
            let caps = rthread::capabilities(None).unwrap();
            assert_eq!(caps.effective, CapabilitySet::empty());
            assert!(!can_read(&f.a), "a plain open reads with SeBackup");
            let backup = guise::fs::BackupOpenOptions::new().read(true);
            assert!(
                guise::fs::open_for_backup(&f.a, &backup).is_ok()
                    && guise::fs::open_for_backup(&f.b, &backup).is_ok(),
                "SeBackup reads any file with backup intent"
            );
            assert!(std::fs::write(&f.a, "x").is_err(), "but writes none");
        })
        .unwrap();
    system
        .adjust_privileges(&[(Privilege::Debug, PrivilegeChange::Enable)])
        .unwrap();
    system
        .run_as(|| {
            let caps = rthread::capabilities(None).unwrap();
            assert_eq!(caps.effective, CapabilitySet::SYS_PTRACE);
        })
        .unwrap();
}

#[test]
fn guards_nest_and_switch_between_clients() {
    need_root!();
    let f = files();
    let before = ThreadCredentials::current().unwrap();
    let outer = client(A).impersonate().unwrap();
    assert!(can_read(&f.a));
    {
        let _inner = client(B).impersonate().unwrap();
        assert!(can_read(&f.b) && !can_read(&f.a));
        assert_eq!(thread_status("Groups"), B.to_string());
    }
    assert!(can_read(&f.a) && !can_read(&f.b), "back to A");
    assert_eq!(
        guise::open_thread_token(false).unwrap().user(),
        Sid::unix_user(A)
    );
    // set_thread_token switches straight from A to B.
    let b = client(B)
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap();
    guise::set_thread_token(Some(&b)).unwrap();
    assert!(can_read(&f.b) && !can_read(&f.a));
    guise::revert_to_self().unwrap();
    assert_eq!(ThreadCredentials::current().unwrap(), before);
    drop(outer);
    assert_eq!(ThreadCredentials::current().unwrap(), before);

    // Dropping an older guard first changes nothing until the newest one goes.
    let older = client(A).impersonate().unwrap();
    let newer = client(B).impersonate().unwrap();
    drop(older);
    assert!(can_read(&f.b) && !can_read(&f.a), "still B");
    assert!(guise::thread::is_impersonating());
    drop(newer);
    assert_eq!(ThreadCredentials::current().unwrap(), before);
    assert!(!guise::thread::is_impersonating());
}

#[test]
fn process_token_describes_the_process_while_impersonating() {
    need_root!();
    proc_dir();
    let process = Token::open_process().unwrap();
    assert_eq!(process.user(), Sid::LOCAL_SYSTEM);
    client(A)
        .run_as(|| {
            let again = Token::open_process().unwrap();
            assert_eq!(again.user(), Sid::LOCAL_SYSTEM);
            assert_eq!(again.statistics().token_id, process.statistics().token_id);
            assert!(again.is_privilege_enabled(Privilege::Impersonate));
        })
        .unwrap();
    let mut self_guard = guise::impersonate_self(ImpersonationLevel::Impersonation).unwrap();
    assert_eq!(self_guard.level(), ImpersonationLevel::Impersonation);
    assert_eq!(
        guise::open_thread_token(false).unwrap().user(),
        Sid::LOCAL_SYSTEM
    );
    // Replacing a live guard: the old one is dropped after the new one started.
    self_guard = guise::impersonate_self(ImpersonationLevel::Identification).unwrap();
    assert_eq!(thread_status("Uid"), "0 4294967294 0 4294967294");
    assert_eq!(
        guise::open_thread_token(true)
            .unwrap()
            .impersonation_level(),
        Some(ImpersonationLevel::Identification)
    );
    drop(self_guard);
    assert_eq!(thread_status("Uid"), "0 0 0 0");
    assert!(!guise::thread::is_impersonating());
}

#[test]
fn invalid_input_is_refused_without_changing_credentials() {
    need_root!();
    let before = ThreadCredentials::current().unwrap();
    let invalid = |r: guise::Result<Token>| {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
        assert!(e.to_string().contains("ERROR_INVALID_PARAMETER"));
    };
    invalid(Token::from_ids(u32::MAX, A, &[]));
    invalid(Token::from_ids(A, u32::MAX, &[]));
    invalid(Token::from_ids(A, A, &[1, u32::MAX]));
    let too_many: Vec<u32> = (1..=65537).collect();
    invalid(Token::from_ids(A, A, &too_many));
    let exactly_max: Vec<u32> = (1..=65536).collect();
    assert!(Token::from_ids(A, A, &exactly_max).is_ok());
    assert_eq!(
        Token::for_user("guise-no-such-user", LogonType::Batch)
            .unwrap_err()
            .kind(),
        ErrorKind::NoneMapped
    );
    assert_eq!(
        Token::for_user("bad\0name", LogonType::Batch)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidParameter
    );
    assert_eq!(
        Token::for_uid(A, LogonType::Batch).unwrap_err().kind(),
        ErrorKind::NoneMapped
    );
    assert!(!guise::thread::is_impersonating());
    assert_eq!(ThreadCredentials::current().unwrap(), before);
}

#[test]
fn token_for_an_account_comes_from_nss() {
    need_root!();
    let t = Token::for_user("root", LogonType::Batch).unwrap();
    assert_eq!(t.user(), Sid::LOCAL_SYSTEM);
    assert_eq!(t.token_type(), TokenType::Primary);
    let sids: Vec<Sid> = t.groups().iter().map(|g| g.sid).collect();
    for want in [
        Sid::EVERYONE,
        Sid::BATCH,
        Sid::ADMINISTRATORS,
        Sid::unix_group(0),
    ] {
        assert!(sids.contains(&want), "{want} missing from {sids:?}");
    }
    assert!(
        sids.iter().any(|s| s.to_string().starts_with("S-1-5-5-")),
        "logon SID"
    );
    let net = Token::for_uid(0, LogonType::Network).unwrap();
    assert_eq!(net.token_type(), TokenType::Impersonation);
    assert_ne!(
        net.statistics().authentication_id,
        t.statistics().authentication_id,
        "every logon has its own id"
    );
}

/// The skip rule itself can fail: this test binary, run again as an unprivileged uid
/// with CI=true, fails the root test it is asked to run instead of passing it.
#[test]
fn a_root_test_fails_under_ci_without_root() {
    need_root!();
    let nobody = Token::from_ids(65534, 65534, &[]).unwrap();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "kernel_enforces_the_impersonated_identity"])
        .env("CI", "true");
    let out = common::output_as(cmd, &nobody);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "passed without root under CI:\n{text}"
    );
    assert!(text.contains("needs root and CI is set"), "{text}");
    assert!(text.contains("1 failed"), "{text}");
}

/// From one impersonation straight to another (no revert in between): every part
/// of the identity is the new one's, the umask follows the level, and a revert
/// restores everything, umask included.
#[test]
fn switching_straight_between_identities_and_levels() {
    need_root!();
    let before = ThreadCredentials::current().unwrap();
    guise::thread::unshare_fs_context().unwrap();
    let umask = thread_status("Umask");
    let with_groups = |uid: u32, groups: &[u32]| {
        Token::from_ids(uid, uid, groups)
            .unwrap()
            .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
            .unwrap()
    };
    let a = with_groups(A, &[A, 62001, 62002]);
    let a_id = a
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    let b = with_groups(B, &[B]);
    let _g1 = a.impersonate().unwrap();
    assert_eq!(thread_status("Uid"), format!("0 {A} 0 {A}"));
    assert_eq!(thread_status("Groups"), format!("{A} 62001 62002"));
    {
        // The same identity again: nothing changes.
        let _same = a.impersonate().unwrap();
        assert_eq!(thread_status("Groups"), format!("{A} 62001 62002"));
        // Another identity, straight.
        let _g2 = b.impersonate().unwrap();
        assert_eq!(thread_status("Uid"), format!("0 {B} 0 {B}"));
        assert_eq!(thread_status("Gid"), format!("0 {B} 0 {B}"));
        assert_eq!(thread_status("Groups"), B.to_string());
        assert_eq!(thread_status("CapEff"), "0000000000000000");
        assert_eq!(thread_status("Umask"), umask);
        {
            // Below Impersonation: the sentinel, umask 0777.
            let _g3 = a_id.impersonate().unwrap();
            assert_eq!(thread_status("Uid"), "0 4294967294 0 4294967294");
            assert_eq!(thread_status("Groups"), "");
            assert_eq!(thread_status("Umask"), "0777");
        }
        // Back to B, straight: its groups and the umask it had.
        assert_eq!(thread_status("Uid"), format!("0 {B} 0 {B}"));
        assert_eq!(thread_status("Groups"), B.to_string());
        assert_eq!(thread_status("Umask"), umask);
    }
    assert_eq!(thread_status("Groups"), format!("{A} 62001 62002"));
    drop(_g1);
    assert_eq!(ThreadCredentials::current().unwrap(), before);
    assert_eq!(thread_status("Umask"), umask);
}

/// Attack: once a thread's switches are checked by reading the capabilities back
/// (the kernel empties the effective set when the uid leaves 0), code of the
/// process sets `SECBIT_NO_SETUID_FIXUP` on the thread, so that a uid change no
/// longer drops root's capabilities: the client's thread would keep
/// CAP_DAC_OVERRIDE. guise sees it and drops them itself, then checks in full.
#[test]
fn attack_setuid_fixup_turned_off_keeps_no_capabilities_while_impersonating() {
    need_root!();
    let f = files();
    std::thread::spawn(move || {
        let token = client(A);
        let home = ThreadCredentials::current().unwrap();
        // Enough switches for the read-back of capabilities to stand for the check.
        for _ in 0..4 {
            let _g = token.impersonate().unwrap();
            assert_eq!(thread_status("CapEff"), "0000000000000000");
        }
        rthread::set_capabilities_secure_bits(rthread::CapabilitiesSecureBits::NO_SETUID_FIXUP)
            .unwrap();
        for round in 0..4 {
            {
                let _g = token.impersonate().unwrap();
                assert_eq!(thread_status("CapEff"), "0000000000000000", "round {round}");
                assert!(
                    !can_read(&f.root_only),
                    "round {round}: root's capabilities kept"
                );
                assert!(!can_read(&f.b), "round {round}");
                assert!(can_read(&f.a), "round {round}");
            }
            assert_eq!(ThreadCredentials::current().unwrap(), home, "round {round}");
            assert!(
                can_read(&f.root_only),
                "round {round}: the server after revert"
            );
        }
    })
    .join()
    .unwrap();
}

/// Attack: a root client connects to a server that runs as a service account
/// holding CAP_SETUID and CAP_SETGID (no uid of it is 0). Impersonating uid 0 and
/// reverting makes every uid of the thread leave 0, where the kernel drops the
/// permitted capabilities: the revert could not restore them and the process would
/// abort. The server keeps its capabilities and goes on serving.
#[test]
fn attack_a_root_client_never_takes_down_a_server_without_uid_0() {
    need_root!();
    std::thread::spawn(|| {
        use rustix::process::{Gid as RGid, Uid as RUid};
        // This thread becomes the server: uid and gid 999, with the two
        // capabilities impersonation needs, before anything of guise runs.
        let both = CapabilitySet::SETUID | CapabilitySet::SETGID;
        rthread::set_keep_capabilities(true).unwrap();
        rthread::set_thread_groups(&[RGid::from_raw(999)]).unwrap();
        rthread::set_thread_res_gid(
            Some(RGid::from_raw(999)),
            Some(RGid::from_raw(999)),
            Some(RGid::from_raw(999)),
        )
        .unwrap();
        rthread::set_thread_res_uid(
            Some(RUid::from_raw(999)),
            Some(RUid::from_raw(999)),
            Some(RUid::from_raw(999)),
        )
        .unwrap();
        rthread::set_keep_capabilities(false).unwrap();
        rthread::set_capabilities(
            None,
            rthread::CapabilitySets {
                effective: both,
                permitted: both,
                inheritable: CapabilitySet::empty(),
            },
        )
        .unwrap();
        let home = ThreadCredentials::current().unwrap();
        assert_eq!(home.uid.real, 999);
        let root = Token::from_ids(0, 0, &[0]).unwrap();
        for round in 0..3 {
            {
                let g = root.impersonate().unwrap();
                assert_eq!(g.level(), ImpersonationLevel::Impersonation);
                assert_eq!(thread_status("Uid"), "999 0 999 0", "round {round}");
            }
            assert_eq!(ThreadCredentials::current().unwrap(), home, "round {round}");
            // And the next client is served.
            let a = client(A).impersonate().unwrap();
            assert_eq!(thread_status("Uid"), format!("999 {A} 999 {A}"));
            drop(a);
            assert_eq!(ThreadCredentials::current().unwrap(), home);
        }
    })
    .join()
    .unwrap();
}

/// [`common::public`], whose directory is also the calling thread's cwd (on an fs
/// context of its own).
fn public() -> Public {
    let p = common::public();
    guise::thread::unshare_fs_context().unwrap();
    std::env::set_current_dir(p.dir.path()).unwrap();
    p
}

/// What the calling thread reaches of `p` by path: (reads the file by its full
/// name, reads it by a name relative to its cwd, creates a file in the 0777
/// directory).
fn reaches(p: &Public) -> (bool, bool, bool) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = p
        .drop_box
        .join(format!("f{}", N.fetch_add(1, Ordering::Relaxed)));
    let wrote = std::fs::write(&name, "x").is_ok();
    if wrote {
        std::fs::remove_file(&name).unwrap();
    }
    (
        std::fs::read(&p.file).is_ok(),
        std::fs::read("public.txt").is_ok(),
        wrote,
    )
}

/// The calling thread's fs root and cwd, as the kernel shows them.
fn root_and_cwd() -> (String, String) {
    (proc_link("thread-self/root"), proc_link("thread-self/cwd"))
}

/// Windows: ANONYMOUS LOGON is not Everyone, and a thread at Identification or
/// Anonymous level opens no object. Linux would let the sentinel open what any
/// user may ("other" bits): on a bare thread (no pool, no Landlock) the thread's
/// root and cwd are an empty directory while it is below Impersonation level, so
/// it reaches nothing by path; once it leaves, its root and cwd are what they
/// were.
#[test]
fn the_anonymous_token_reaches_nothing_everyone_only_on_a_bare_thread() {
    need_root!();
    proc_dir();
    let p = public();
    let before = root_and_cwd();
    assert_eq!(before.1, p.dir.path().to_str().unwrap());
    let all = (true, true, true);
    let nothing = (false, false, false);
    assert_eq!(reaches(&p), all, "root");
    // An Impersonation-level client reaches what anyone may.
    let g = client(A).impersonate().unwrap();
    assert_eq!(reaches(&p), all, "A at Impersonation level");
    assert_eq!(root_and_cwd(), before);
    drop(g);
    let below = [
        ("the anonymous token", Token::anonymous()),
        (
            "Identification",
            client(A)
                .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
                .unwrap(),
        ),
        (
            "Anonymous",
            client(A)
                .duplicate(ImpersonationLevel::Anonymous, TokenType::Impersonation)
                .unwrap(),
        ),
    ];
    for (what, token) in &below {
        let g = token.impersonate().unwrap();
        assert_eq!(thread_status("Uid"), "0 4294967294 0 4294967294", "{what}");
        assert_eq!(reaches(&p), nothing, "{what}");
        assert!(!can_read(std::path::Path::new("/etc/passwd")), "{what}");
        assert_eq!(
            std::fs::read_dir("/").map(|d| d.count()).unwrap_or(0),
            0,
            "{what}: the root is empty"
        );
        assert!(std::fs::create_dir("/d").is_err() && std::fs::write("x", "x").is_err());
        assert_eq!(thread_status("Umask"), "0777");
        drop(g);
        assert_eq!(root_and_cwd(), before, "{what}: root and cwd come back");
        assert_eq!(reaches(&p), all, "{what}: after revert");
    }
    // Straight between levels: below, to Impersonation, below again, back.
    let (_, id) = &below[1];
    let g1 = id.impersonate().unwrap();
    let g2 = client(A).impersonate().unwrap();
    assert_eq!(root_and_cwd(), before, "at Impersonation level again");
    assert_eq!(reaches(&p), all);
    let g3 = Token::anonymous().impersonate().unwrap();
    assert_eq!(reaches(&p), nothing);
    drop(g3);
    drop(g2);
    assert_eq!(reaches(&p), nothing, "below again under the first guard");
    guise::thread::revert_to_self().unwrap();
    drop(g1);
    assert_eq!(root_and_cwd(), before);
    assert_eq!(reaches(&p), all);
}

/// A thread started with `guise::thread::spawn` by a thread below Impersonation
/// level starts at the process identity, and so at the root and cwd its creator
/// comes back to, not in the empty directory.
#[test]
fn a_thread_started_below_impersonation_starts_outside_the_empty_directory() {
    need_root!();
    proc_dir();
    let p = public();
    let before = root_and_cwd();
    let id = client(A)
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    let seen = id
        .run_as(|| {
            assert_eq!(reaches(&p), (false, false, false));
            let file = p.file.clone();
            guise::thread::spawn(move || {
                (
                    root_and_cwd(),
                    std::fs::read(&file).is_ok(),
                    thread_status("Umask"),
                )
            })
            .unwrap()
            .join()
            .unwrap()
        })
        .unwrap();
    assert_eq!(seen.0, before);
    assert!(seen.1, "the new thread reads as the process");
    assert_ne!(seen.2, "0777", "nor does it inherit the umask of below");
    assert_eq!(root_and_cwd(), before);
}

/// A server that may put a thread on the sentinel (CAP_SETUID, CAP_SETGID) but
/// cannot give it the empty root (no CAP_SYS_CHROOT effective) is refused below
/// Impersonation level, rather than leave the sentinel what anyone may open; the
/// thread is unchanged. At Impersonation level nothing is refused.
#[test]
fn a_server_that_cannot_chroot_is_refused_below_impersonation() {
    need_root!();
    proc_dir();
    let p = public();
    let mut caps = rthread::capabilities(None).unwrap();
    caps.effective -= CapabilitySet::SYS_CHROOT;
    rthread::set_capabilities(None, caps).unwrap();
    let before = ThreadCredentials::current().unwrap();
    for token in [
        Token::anonymous(),
        client(A)
            .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
            .unwrap(),
    ] {
        let e = token.impersonate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CannotImpersonate, "{e}");
        assert!(e.to_string().contains("CAP_SYS_CHROOT"), "{e}");
        assert!(!guise::thread::is_impersonating());
        assert_eq!(ThreadCredentials::current().unwrap(), before);
        assert_eq!(reaches(&p), (true, true, true));
    }
    let g = client(A).impersonate().unwrap();
    assert_eq!(g.level(), ImpersonationLevel::Impersonation);
    drop(g);
    assert_eq!(ThreadCredentials::current().unwrap(), before);
}
