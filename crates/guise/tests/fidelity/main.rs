//! Where guise once granted more than Windows, or refused what Windows allows: each
//! test names the Windows rule it follows, with real kernel credentials.

#[path = "../common/accounts.rs"]
mod accounts;
#[path = "../common/mod.rs"]
mod common;

use guise::privilege::Capabilities;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{A, B, SERVER, thread_status};
use guise::pipe::{PipeAddr, PipeClient, PipeServer, SecurityQos, ServerOptions};
use guise::process::SpawnOptions;
use guise::security::sddl;
use guise::token::{Group, GroupAttributes, PrivilegeChange};
use guise::{
    CommandExt, ErrorKind, ImpersonationLevel, LogonType, Privilege, Sid, Token, TokenType,
};
use rustix::process::{Gid, Uid};
use rustix::thread as rthread;
use rustix::thread::CapabilitySet;

fn client(uid: u32) -> Token {
    Token::from_ids(uid, uid, &[uid]).unwrap()
}

fn socket_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = dir.path().join("pipe");
    (dir, sock)
}

/// A raw pipe client in Python: SQOS frame (level, static tracking, effective-only),
/// one message, then waits for the reply.
const PY_CLIENT: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
def frame(kind, payload):
    return struct.pack('<I', len(payload) + 1) + bytes([kind]) + payload
s.sendall(frame(1, b'GSQ1' + bytes([int(sys.argv[2]), 0, int(sys.argv[3])])))
s.sendall(frame(0, b'hello'))
s.recv(64)
"#;

#[test]
fn a_root_clients_privileges_are_those_of_its_capabilities() {
    need_root!();
    // Windows: a token holds the privileges its logon was granted; being the
    // administrator's account grants none of them by itself.
    let bare = Token::from_ids(0, 0, &[]).unwrap();
    let names: Vec<Privilege> = bare.privileges().iter().map(|p| p.privilege).collect();
    assert_eq!(
        names,
        [Privilege::ChangeNotify],
        "Windows rule: no privilege is implied by the account alone"
    );
    // A client process of uid 0 that holds only CAP_DAC_READ_SEARCH.
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let backup_only = Token::from_ids_with_capabilities(
        0,
        0,
        &[0],
        Capabilities::DAC_READ_SEARCH,
        Capabilities::DAC_READ_SEARCH,
    )
    .unwrap();
    let mut py = Command::new("python3");
    py.args(["-c", PY_CLIENT, sock.to_str().unwrap(), "2", "0"]);
    let mut child = py
        .spawn_as_user(&backup_only, &SpawnOptions::default())
        .unwrap();
    let mut conn = server.accept().unwrap();
    assert_eq!(conn.read_message().unwrap().unwrap(), b"hello");
    let token = conn.client().token().unwrap();
    conn.write_message(b"ok").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(token.user(), Sid::LOCAL_SYSTEM);
    assert!(
        token.is_privilege_enabled(Privilege::Backup),
        "Windows rule: the client's token has the privileges its process holds"
    );
    for p in [
        Privilege::Impersonate,
        Privilege::Tcb,
        Privilege::Debug,
        Privilege::Restore,
    ] {
        assert!(
            !token.has_privilege(p),
            "Windows rule: a privilege the client's process lacks is not in its token: {p:?}"
        );
    }
}

#[test]
fn effective_only_removes_disabled_privileges_and_groups() {
    let holder = Token::from_ids_with_capabilities(
        A,
        A,
        &[A],
        Capabilities::DAC_READ_SEARCH | Capabilities::SYS_NICE,
        Capabilities::SYS_NICE,
    )
    .unwrap();
    assert!(
        holder.has_privilege(Privilege::Backup) && !holder.is_privilege_enabled(Privilege::Backup)
    );
    let mut eff = holder
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap()
        .effective_only();
    assert!(
        !eff.has_privilege(Privilege::Backup),
        "Windows rule (EffectiveOnly): disabled privileges are not part of the context"
    );
    assert!(eff.is_privilege_enabled(Privilege::IncreaseBasePriority));
    assert_eq!(
        eff.adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Enable)])
            .unwrap_err()
            .kind(),
        ErrorKind::NotAllAssigned,
        "Windows rule (EffectiveOnly): a removed privilege cannot be enabled"
    );
    let disabled = Sid::unix_group(B);
    let deny_only = Sid::unix_group(61555);
    let t = Token::from_sids(
        Sid::unix_user(A),
        [
            Group {
                sid: Sid::EVERYONE,
                attributes: GroupAttributes::DEFAULT,
            },
            Group {
                sid: disabled,
                attributes: GroupAttributes::empty(),
            },
            Group {
                sid: deny_only,
                attributes: GroupAttributes::USE_FOR_DENY_ONLY,
            },
        ],
        [],
    )
    .effective_only();
    let sids: Vec<Sid> = t.groups().iter().map(|g| g.sid).collect();
    assert!(
        !sids.contains(&disabled),
        "Windows rule (EffectiveOnly): disabled groups are not part of the context"
    );
    assert!(
        sids.contains(&deny_only),
        "deny-only groups stay: removing them would grant more"
    );
}

#[test]
fn the_anonymous_logon_is_not_everyone_and_an_anonymous_client_is_not_identified() {
    need_root!();
    let anon = Token::anonymous()
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    assert!(
        !anon.check_membership(&Sid::EVERYONE).unwrap(),
        "Windows rule: Anonymous is not a member of Everyone (EveryoneIncludesAnonymous = 0)"
    );
    // An object open to Everyone is not open to the anonymous logon.
    let sd = sddl::parse("O:SYG:SYD:(A;;FA;;;WD)", None).unwrap();
    let mask = guise::security::AccessMask::FILE_GENERIC_READ;
    let fm = guise::security::GenericMapping::FILE;
    assert!(
        !guise::security::access_check(&sd, &anon, mask, &fm)
            .unwrap()
            .is_allowed()
    );
    // A pipe client at Anonymous level: the server's token for it is the anonymous
    // logon, not the client's identity.
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let talker = std::thread::spawn(move || {
        client(A)
            .run_as(move || {
                let qos = SecurityQos {
                    level: ImpersonationLevel::Anonymous,
                    ..SecurityQos::default()
                };
                let mut c = PipeClient::connect(&PipeAddr::Path(sock), qos).unwrap();
                c.transact(b"who am i").unwrap()
            })
            .unwrap()
    });
    let mut conn = server.accept().unwrap();
    conn.read_message().unwrap().unwrap();
    let token = conn.client().token().unwrap();
    conn.write_message(b"nobody knows").unwrap();
    talker.join().unwrap();
    assert_eq!(
        token.user(),
        Sid::ANONYMOUS,
        "Windows rule: an Anonymous-level client is not identified"
    );
    assert!(token.groups().iter().all(|g| g.sid != Sid::unix_group(A)));
    assert_eq!(
        token.impersonation_level(),
        Some(ImpersonationLevel::Anonymous)
    );
}

#[test]
fn a_failed_set_thread_token_leaves_the_thread_and_its_guards() {
    need_root!();
    let g = client(A).impersonate().unwrap();
    let primary = client(B);
    assert_eq!(
        guise::set_thread_token(Some(&primary)).unwrap_err().kind(),
        ErrorKind::BadTokenType
    );
    assert_eq!(
        rustix::process::geteuid().as_raw(),
        A,
        "Windows rule: a failed SetThreadToken leaves the thread's token as it was"
    );
    assert_eq!(
        guise::open_thread_token(true).unwrap().user(),
        Sid::unix_user(A)
    );
    drop(g);
    assert_eq!(
        thread_status("Uid"),
        "0 0 0 0",
        "the guard that was live still reverts the thread"
    );
}

#[test]
fn a_disabled_seimpersonate_counts_as_absent() {
    need_root!();
    let mut caps = rthread::capabilities(None).unwrap();
    caps.effective -= CapabilitySet::SETUID | CapabilitySet::SETGID;
    rthread::set_capabilities(None, caps).unwrap();
    let process = Token::open_process().unwrap();
    assert!(process.has_privilege(Privilege::Impersonate));
    assert!(!process.is_privilege_enabled(Privilege::Impersonate));
    let g = client(A).impersonate().unwrap();
    assert_eq!(
        g.level(),
        ImpersonationLevel::Identification,
        "Windows rule: without an enabled SeImpersonatePrivilege the thread gets Identification"
    );
    assert_ne!(rustix::process::geteuid().as_raw(), A, "never the client");
    // Read from the kernel, not /proc: below Impersonation level the thread's root
    // is an empty directory.
    assert_eq!(
        rthread::capabilities(None).unwrap().effective,
        CapabilitySet::empty()
    );
}

#[test]
fn a_thread_created_while_impersonating_is_not_the_client() {
    need_root!();
    let guard = client(A).impersonate().unwrap();
    let plain = std::thread::spawn(|| {
        assert_eq!(
            rustix::process::geteuid().as_raw(),
            A,
            "Linux gives the new thread its creator's credentials"
        );
        let process = Token::open_process().unwrap();
        let refused = client(B).impersonate().map(drop).unwrap_err().kind();
        let out = Command::new("cat")
            .arg("/proc/self/status")
            .stdout(Stdio::piped())
            .spawn_as_process()
            .unwrap()
            .wait_with_output()
            .unwrap();
        (process, refused, String::from_utf8(out.stdout).unwrap())
    });
    let (process, refused, status) = plain.join().unwrap();
    assert_eq!(
        process.user(),
        Sid::LOCAL_SYSTEM,
        "Windows rule: OpenProcessToken describes the process, not the creator's client"
    );
    assert_eq!(
        refused,
        ErrorKind::CannotImpersonate,
        "a foreign thread fails closed"
    );
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        ["Uid:", "0", "0", "0", "0"],
        "Windows rule: CreateProcess from such a thread runs as the process"
    );
    let euid = guise::thread::spawn(|| rustix::process::geteuid().as_raw())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        euid, 0,
        "Windows rule: CreateThread gives a new thread the process token"
    );
    drop(guard);
}

#[test]
fn the_program_file_is_opened_as_the_process_identity() {
    need_root!();
    // This thread is the process identity: root without the capabilities that
    // override file permissions.
    let mut caps = rthread::capabilities(None).unwrap();
    let dac = CapabilitySet::DAC_OVERRIDE | CapabilitySet::DAC_READ_SEARCH;
    caps.effective -= dac;
    caps.permitted -= dac;
    caps.inheritable -= dac;
    rthread::set_capabilities(None, caps).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = |owner: u32, name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        let prog = d.join("true");
        std::fs::copy("/bin/true", &prog).unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&prog, Some(owner), Some(owner)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&d, Some(owner), Some(owner)).unwrap();
        prog
    };
    let in_a_home = private(A, "a");
    let in_root_only = private(0, "root");
    let e = Command::new(&in_a_home)
        .spawn_as_user(&client(A), &SpawnOptions::default())
        .map(drop)
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::AccessDenied,
        "Windows rule: CreateProcessAsUser opens the image in the caller's context ({e})"
    );
    let status = Command::new(&in_root_only)
        .spawn_as_user(&client(A), &SpawnOptions::default())
        .unwrap()
        .wait()
        .unwrap();
    assert!(
        status.success(),
        "the caller opened it, and the user may execute it"
    );
}

#[test]
fn the_pam_session_stays_open_while_a_process_of_the_logon_runs() {
    need_root!();
    let a = accounts::accounts();
    let log = a.pam_dir.join("session.log");
    let script = a.pam_dir.join("log-session");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$PAM_TYPE\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        a.pam_dir.join("guise-log"),
        format!(
            "auth required pam_unix.so\naccount required pam_unix.so\n\
             session required pam_unix.so\nsession required pam_exec.so {}\n",
            script.display()
        ),
    )
    .unwrap();
    let options = guise::logon::LogonOptions::new("guise-log").with_config_dir(a.pam_dir.clone());
    let token = guise::logon::logon_user_with(
        "alice",
        guise::Password::new(accounts::PASSWORD.into()),
        LogonType::Interactive,
        &options,
    )
    .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut child = Command::new("sleep")
        .arg("1")
        .spawn_as_user(&token, &SpawnOptions::default())
        .unwrap();
    drop(token);
    assert_eq!(
        log_text(),
        "open_session\n",
        "Windows rule: a logon session lasts while a process of it runs"
    );
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while log_text() != "open_session\nclose_session\n" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        log_text(),
        "open_session\nclose_session\n",
        "and ends after it"
    );
}

#[test]
fn ones_own_identity_needs_no_capabilities() {
    need_root!();
    let a = accounts::accounts();
    // This thread becomes alice for good (real, effective and saved ids), so it
    // holds no capability at all; guise sees it first as alice.
    let alice = 61201;
    rthread::set_thread_groups(&[Gid::from_raw(alice)]).unwrap();
    rthread::set_thread_res_gid(
        Gid::from_raw(alice),
        Gid::from_raw(alice),
        Gid::from_raw(alice),
    )
    .unwrap();
    rthread::set_thread_res_uid(
        Uid::from_raw(alice),
        Uid::from_raw(alice),
        Uid::from_raw(alice),
    )
    .unwrap();
    assert_eq!(thread_status("CapPrm"), "0000000000000000");
    let own = Token::from_ids(alice, alice, &[alice]).unwrap();
    assert_eq!(
        own.impersonate().unwrap().level(),
        ImpersonationLevel::Impersonation,
        "Windows rule: a thread may impersonate its own identity without SeImpersonate"
    );
    let out = common::output_as(
        {
            let mut c = Command::new("id");
            c.arg("-u");
            c
        },
        &own,
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        alice.to_string(),
        "Windows rule: CreateProcessAsUser with one's own token needs no privilege"
    );
    assert_eq!(
        Command::new("true")
            .spawn_as_user(&client(SERVER), &SpawnOptions::default())
            .map(drop)
            .unwrap_err()
            .kind(),
        ErrorKind::PrivilegeNotHeld,
        "another user's token still needs SeAssignPrimaryToken"
    );
    let options = guise::logon::LogonOptions::new("guise").with_config_dir(a.pam_dir.clone());
    let logon = |user: &str| {
        guise::logon::logon_user_with(
            user,
            guise::Password::new(accounts::PASSWORD.into()),
            LogonType::Network,
            &options,
        )
    };
    let t = logon("alice").unwrap_or_else(|e| {
        panic!("Windows rule: LogonUser of one's own account needs no privilege: {e}")
    });
    assert_eq!(t.user(), Sid::unix_user(alice));
    assert_eq!(
        logon("dave").unwrap_err().kind(),
        ErrorKind::PrivilegeNotHeld,
        "another account still needs SeTcb"
    );
}

#[test]
fn privilege_check_needs_a_clients_impersonation_token() {
    let system =
        Token::from_ids_with_capabilities(0, 0, &[], Capabilities::all(), Capabilities::all())
            .unwrap();
    assert_eq!(
        system
            .privilege_check(&[Privilege::Backup], true)
            .unwrap_err()
            .kind(),
        ErrorKind::NoImpersonationToken,
        "Windows rule: PrivilegeCheck takes an impersonation token"
    );
    let anon = system
        .duplicate(ImpersonationLevel::Anonymous, TokenType::Impersonation)
        .unwrap();
    assert_eq!(
        anon.privilege_check(&[Privilege::Backup], true)
            .unwrap_err()
            .kind(),
        ErrorKind::BadImpersonationLevel,
        "Windows rule: PrivilegeCheck needs Identification level or above"
    );
    let id = system
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    assert!(
        id.privilege_check(&[Privilege::Backup, Privilege::Debug], true)
            .unwrap()
    );
    let mut some = id.clone();
    some.adjust_privileges(&[(Privilege::Debug, PrivilegeChange::Disable)])
        .unwrap();
    assert!(
        !some
            .privilege_check(&[Privilege::Backup, Privilege::Debug], true)
            .unwrap()
    );
    assert!(
        some.privilege_check(&[Privilege::Backup, Privilege::Debug], false)
            .unwrap()
    );
    let _ = std::io::stdout().flush();
}

/// Attack: code impersonates on a tokio worker and calls `spawn_blocking` meanwhile;
/// tokio grows its blocking pool from the calling thread, so the new thread would
/// keep the client's identity and later run other clients' work. With
/// `guise::thread::on_thread_start` every new runtime thread starts at the process
/// identity.
#[test]
fn spawn_blocking_while_impersonating_never_lends_the_client_to_later_tasks() {
    need_root!();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .on_thread_start(guise::thread::on_thread_start)
        .enable_all()
        .build()
        .unwrap();
    let seen: Vec<u32> = rt.block_on(async {
        let first = tokio::spawn(async {
            let guard = client(A).impersonate().unwrap();
            assert_eq!(rustix::process::geteuid().as_raw(), A);
            let h = tokio::task::spawn_blocking(|| rustix::process::geteuid().as_raw());
            drop(guard);
            h.await.unwrap()
        })
        .await
        .unwrap();
        let mut handles = Vec::new();
        for i in 0..10_000 {
            handles.push(if i % 2 == 0 {
                tokio::task::spawn_blocking(|| rustix::process::geteuid().as_raw())
            } else {
                tokio::spawn(async { rustix::process::geteuid().as_raw() })
            });
        }
        let mut seen = vec![first];
        for h in handles {
            seen.push(h.await.unwrap());
        }
        seen
    });
    let foreign = seen.iter().filter(|&&u| u != 0).count();
    assert_eq!(seen.len(), 10_001);
    assert_eq!(foreign, 0, "{foreign} tasks ran as a foreign uid");
}

/// Attack: a client in a user namespace of its own holds every capability there,
/// and `/proc` shows them; they count for nothing on the host, and give no
/// privilege.
#[test]
fn capabilities_of_a_user_namespace_give_no_privilege() {
    need_root!();
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let mut child = Command::new("unshare")
        .args([
            "-Ur",
            "python3",
            "-c",
            PY_CLIENT,
            sock.to_str().unwrap(),
            "2",
            "0",
        ])
        .spawn()
        .unwrap();
    let mut conn = server.accept().unwrap();
    assert_eq!(conn.read_message().unwrap().unwrap(), b"hello");
    let token = conn.client().token().unwrap();
    conn.write_message(b"ok").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        conn.client().peer().uid(),
        0,
        "root in a namespace of its own"
    );
    let names: Vec<Privilege> = token.privileges().iter().map(|p| p.privilege).collect();
    assert_eq!(
        names,
        [Privilege::ChangeNotify],
        "capabilities of another user namespace are no privilege here"
    );
}

/// RevertToSelf on a thread that came to life as the client: it takes the process
/// identity (Windows gives new threads the process token).
#[test]
fn revert_to_self_on_a_thread_created_while_impersonating_takes_the_process_identity() {
    need_root!();
    let guard = client(A).impersonate().unwrap();
    let euid = std::thread::spawn(|| {
        assert_eq!(rustix::process::geteuid().as_raw(), A);
        guise::revert_to_self().unwrap();
        (
            rustix::process::geteuid().as_raw(),
            thread_status("CapEff") != "0000000000000000",
        )
    })
    .join()
    .unwrap();
    drop(guard);
    assert_eq!(
        euid,
        (0, true),
        "back at the process identity, capabilities and all"
    );
}

/// Attack: a program name looked up on PATH meets a FIFO first; opening it would
/// block the server for ever. Only regular executable files are taken.
#[test]
fn a_fifo_on_path_never_blocks_a_spawn() {
    need_root!();
    let dir = tempfile::tempdir().unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("true"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o777),
        0,
    )
    .unwrap();
    let mut cmd = Command::new("true");
    cmd.env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()));
    let status = cmd
        .spawn_as_user(&client(A), &SpawnOptions::default())
        .unwrap()
        .wait()
        .unwrap();
    assert!(status.success(), "the next entry on PATH ran");
}

/// A failed exec is reported even when kept descriptors take the low numbers std
/// would use for its own error pipe.
#[test]
fn a_failed_exec_is_reported_with_kept_descriptors() {
    need_root!();
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus");
    std::fs::write(&bogus, "not a program\n").unwrap();
    std::fs::set_permissions(&bogus, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (r1, w1) = rustix::pipe::pipe().unwrap();
    let (r2, w2) = rustix::pipe::pipe().unwrap();
    drop((w1, w2));
    let options = {
        let mut o = SpawnOptions::default();
        o.keep_fds = vec![std::os::fd::AsFd::as_fd(&r1), std::os::fd::AsFd::as_fd(&r2)];
        o
    };
    let r = Command::new(&bogus).spawn_as_user(&client(A), &options);
    assert!(r.is_err(), "an exec that failed was reported as a success");
}
