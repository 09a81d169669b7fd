//! CreateProcessAsUser and CreateProcess with real children: their identity,
//! capabilities, descriptors and environment, read from the kernel in the child.

#[path = "../common/mod.rs"]
mod common;

use guise::privilege::Capabilities;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use common::{A, thread_status};
use guise::process::SpawnOptions;
use guise::{CommandExt, ErrorKind, ImpersonationLevel, LogonType, Privilege, Token, TokenType};
use rustix::thread::CapabilitySet;

/// A field of a `/proc/<pid>/status` text.
fn field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_of_child(token: &Token) -> String {
    let mut cmd = Command::new("cat");
    cmd.arg("/proc/self/status");
    let out = common::output_as(cmd, token);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn child_has_exactly_the_token_identity() {
    need_root!();
    let token = Token::from_ids(A, A, &[A, 61500]).unwrap();
    let s = status_of_child(&token);
    assert_eq!(field(&s, "Uid"), format!("{A} {A} {A} {A}"));
    assert_eq!(field(&s, "Gid"), format!("{A} {A} {A} {A}"));
    assert_eq!(field(&s, "Groups"), format!("{A} 61500"));
    for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(field(&s, caps), "0000000000000000", "{caps}");
    }
}

#[test]
fn child_cannot_regain_the_server_identity() {
    need_root!();
    let token = Token::from_ids(A, A, &[A]).unwrap();
    for attempt in [
        "os.setresuid(0, 0, 0)",
        "os.setuid(0)",
        "os.setresgid(0, 0, 0)",
    ] {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", &format!("import os; {attempt}")]);
        let out = common::output_as(cmd, &token);
        assert!(!out.status.success(), "{attempt} succeeded");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("PermissionError"),
            "{attempt}"
        );
    }
}

#[test]
fn a_root_child_keeps_only_the_enabled_privileges_capabilities() {
    need_root!();
    let mut system = Token::for_uid(0, LogonType::Batch).unwrap();
    system.disable_all_privileges().unwrap();
    system
        .adjust_privileges(&[(Privilege::Backup, guise::token::PrivilegeChange::Enable)])
        .unwrap();
    let s = status_of_child(&system);
    assert_eq!(field(&s, "Uid"), "0 0 0 0");
    let want = format!("{:016x}", CapabilitySet::DAC_READ_SEARCH.bits());
    assert_eq!(field(&s, "CapEff"), want);
    assert_eq!(field(&s, "CapPrm"), want);
    assert_eq!(field(&s, "CapBnd"), want, "exec cannot give more");
    assert_eq!(field(&s, "CapAmb"), "0000000000000000");
}

#[test]
fn only_stdio_and_passed_descriptors_stay_open() {
    need_root!();
    // A pipe whose read end the child gets as descriptor 3.
    let (r, w) = rustix::pipe::pipe().unwrap();
    // A descriptor opened without close-on-exec in the parent, above 3.
    let leaked = rustix::fs::open(
        "/etc/hostname",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let leaked_no = std::os::fd::AsRawFd::as_raw_fd(&leaked);
    assert!(leaked_no > 3);
    assert!(
        !rustix::io::fcntl_getfd(&leaked)
            .unwrap()
            .contains(rustix::io::FdFlags::CLOEXEC)
    );
    rustix::io::write(&w, b"through fd 3").unwrap();
    drop(w);
    let token = Token::from_ids(A, A, &[A]).unwrap();
    let script = format!(
        "import os\nprint(os.read(3, 100).decode())\ntry:\n    os.fstat({leaked_no})\n    print('leaked')\nexcept OSError:\n    print('closed')\nprint(sorted(int(n) for n in os.listdir('/proc/self/fd')))"
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", &script]).stdout(Stdio::piped());
    let child = cmd
        .spawn_as_user(&token, &{
            let mut o = SpawnOptions::default();
            o.keep_fds = vec![r.as_fd()];
            o
        })
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "through fd 3");
    assert_eq!(
        lines[1], "closed",
        "the parent's descriptor must not reach the child"
    );
    // 0-2, 3, and the one listdir opened.
    assert_eq!(lines[2], "[0, 1, 2, 3, 4]");
}

#[test]
fn environment_is_built_and_loader_variables_never_pass() {
    need_root!();
    // SAFETY: this test runs in a process of its own; nothing reads the environment
    // concurrently.
    unsafe {
        std::env::set_var("LD_PRELOAD", "/nonexistent/preload.so");
        std::env::set_var("GUISE_PARENT_SECRET", "do not inherit");
    }
    let token = Token::from_ids(A, A, &[A]).unwrap();
    let mut cmd = Command::new("env");
    cmd.env("GUISE_EXTRA", "from the caller");
    let out = common::output_as(cmd, &token);
    let env = String::from_utf8(out.stdout).unwrap();
    assert!(!env.contains("LD_PRELOAD"), "{env}");
    assert!(!env.contains("GUISE_PARENT_SECRET"), "{env}");
    for want in [
        format!("USER={A}"),
        format!("LOGNAME={A}"),
        "HOME=/".into(),
        "SHELL=/bin/sh".into(),
        "PATH=/usr/local/bin:/usr/bin:/bin".into(),
        "GUISE_EXTRA=from the caller".into(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing in\n{env}");
    }
    for bad in [
        "LD_LIBRARY_PATH",
        "GCONV_PATH",
        "GLIBC_TUNABLES",
        "LD_AUDIT",
    ] {
        let mut cmd = Command::new("env");
        cmd.env(bad, "x");
        let e = cmd
            .spawn_as_user(&token, &SpawnOptions::default())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{bad}");
        assert!(e.to_string().contains(bad));
    }
    // A real account gets its name, home and shell.
    let root = Token::for_uid(0, LogonType::Batch).unwrap();
    let out = common::output_as(Command::new("env"), &root);
    let env = String::from_utf8(out.stdout).unwrap();
    assert!(
        env.lines().any(|l| l == "USER=root") && env.lines().any(|l| l == "HOME=/root"),
        "{env}"
    );
}

#[test]
fn spawning_while_impersonating() {
    need_root!();
    let client = Token::from_ids(A, A, &[A]).unwrap();
    let _as_client = client.impersonate().unwrap();
    assert_eq!(thread_status("Uid"), format!("0 {A} 0 {A}"));

    // CreateProcess through guise: the process identity, not the thread's.
    let mut cmd = Command::new("cat");
    cmd.arg("/proc/self/status").stdout(Stdio::piped());
    let out = cmd.spawn_as_process().unwrap().wait_with_output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(field(&s, "Uid"), "0 0 0 0");
    assert_eq!(field(&s, "Groups"), thread_status_of_process("Groups"));

    // CreateProcessAsUser from the impersonating thread: exactly the token (here
    // the client's own identity, which needs no privilege; see
    // create_process_as_user_checks_the_privilege_in_the_impersonation_token).
    let s = status_of_child(&client);
    assert_eq!(field(&s, "Uid"), format!("{A} {A} {A} {A}"));

    // The pitfall guise avoids: a plain fork/exec by other code copies the thread's
    // mixed credentials (exec then copies the effective uid to the saved one); a
    // real uid of 0 gives the child every permitted capability, and it may switch its
    // effective uid back to the real one, root.
    let mut plain = Command::new("cat");
    plain.arg("/proc/self/status").stdout(Stdio::piped());
    let out = plain.spawn().unwrap().wait_with_output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(field(&s, "Uid"), format!("0 {A} {A} {A}"));
    assert_ne!(field(&s, "CapPrm"), "0000000000000000");
}

/// A field of the main thread's status: the process identity.
fn thread_status_of_process(name: &str) -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    field(&s, name)
}

#[test]
fn refusals() {
    need_root!();
    let token = Token::from_ids(A, A, &[A]).unwrap();
    let imp = token
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap();
    let e = Command::new("true")
        .spawn_as_user(&imp, &SpawnOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadTokenType);
    // Duplicated back to primary, it works.
    let primary = imp
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Primary)
        .unwrap();
    let status = Command::new("true")
        .spawn_as_user(&primary, &SpawnOptions::default())
        .unwrap()
        .wait()
        .unwrap();
    assert!(status.success());
    let e = Command::new("")
        .spawn_as_user(&token, &SpawnOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    let e = Command::new("/nonexistent/program")
        .spawn_as_user(&token, &SpawnOptions::default())
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Os,
        "a failed exec is reported, not hidden"
    );
    // Without SeAssignPrimaryTokenPrivilege (CAP_SETUID/CAP_SETGID) in the process.
    let mut caps = rustix::thread::capabilities(None).unwrap();
    caps.effective -= CapabilitySet::SETUID | CapabilitySet::SETGID;
    caps.permitted -= CapabilitySet::SETUID | CapabilitySet::SETGID;
    rustix::thread::set_capabilities(None, caps).unwrap();
    let e = Command::new("true")
        .spawn_as_user(&token, &SpawnOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PrivilegeNotHeld);
    assert!(e.to_string().contains("ERROR_PRIVILEGE_NOT_HELD"));
}

#[test]
fn tokio_command_spawns_as_user() {
    need_root!();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let token = Token::from_ids(A, A, &[A]).unwrap();
        let mut cmd = tokio::process::Command::new("id");
        cmd.arg("-u").stdout(Stdio::piped());
        let mut child = cmd.spawn_as_user(&token, &SpawnOptions::default()).unwrap();
        let mut out = String::new();
        let mut stdout = child.stdout.take().unwrap();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
            .await
            .unwrap();
        assert!(child.wait().await.unwrap().success());
        assert_eq!(out.trim(), A.to_string());
    });
}

#[test]
fn an_unprivileged_process_can_still_start_children() {
    need_root!();
    // This thread becomes a plain non-root process identity with no capabilities.
    use rustix::process::{Gid, Uid};
    rustix::thread::set_thread_groups(&[]).unwrap();
    rustix::thread::set_thread_res_gid(Gid::from_raw(A), Gid::from_raw(A), Gid::from_raw(A))
        .unwrap();
    rustix::thread::set_thread_res_uid(Uid::from_raw(A), Uid::from_raw(A), Uid::from_raw(A))
        .unwrap();
    let mut cmd = Command::new("id");
    cmd.arg("-u").stdout(Stdio::piped());
    let out = cmd.spawn_as_process().unwrap().wait_with_output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), A.to_string());
    // Starting a process as another user needs the privilege it lacks.
    let other = Token::from_ids(61002, 61002, &[61002]).unwrap();
    let e = Command::new("true")
        .spawn_as_user(&other, &SpawnOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PrivilegeNotHeld);
}

/// Attack: a child started as another user injects input into the caller's
/// terminal through its session. By default it gets a session of its own, without
/// a controlling terminal.
#[test]
fn a_child_starts_in_a_session_of_its_own() {
    need_root!();
    let token = Token::from_ids(common::A, common::A, &[common::A]).unwrap();
    let stat = |session: guise::process::Session| {
        let mut cmd = Command::new("cat");
        cmd.arg("/proc/self/stat").stdout(Stdio::piped());
        let out = cmd
            .spawn_as_user(&token, &{
                let mut o = SpawnOptions::default();
                o.session = session;
                o
            })
            .unwrap()
            .wait_with_output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let f: Vec<String> = text
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        // pid is before the name; after it: state, ppid, pgrp, session, tty_nr.
        let pid: i32 = text.split_whitespace().next().unwrap().parse().unwrap();
        (
            pid,
            f[3].parse::<i32>().unwrap(),
            f[4].parse::<i32>().unwrap(),
        )
    };
    let (pid, sid, tty) = stat(guise::process::Session::New);
    assert_eq!(sid, pid, "the child leads a new session");
    assert_eq!(tty, 0, "and has no controlling terminal");
    // Our session as the kernel shows it: 0 when its leader is outside this pid
    // namespace (getsid(2) then returns 0, which rustix cannot represent).
    let ours: i32 = {
        let text = std::fs::read_to_string("/proc/self/stat").unwrap();
        let f: Vec<&str> = text
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        f[3].parse().unwrap()
    };
    let (_, sid, _) = stat(guise::process::Session::Inherit);
    assert_eq!(sid, ours, "Inherit keeps the caller's session");
}

/// A fork of a process of several threads could leave the child with locks that
/// other threads held: refused, and no child is made. (The test harness runs this
/// test on a thread of its own, so the process has at least two.)
#[test]
fn fork_as_user_refuses_a_process_of_several_threads() {
    need_root!();
    let token = Token::from_ids(A, A, &[A]).unwrap();
    let before = std::fs::read_dir("/proc/self/task").unwrap().count();
    assert!(before > 1);
    let e = guise::process::fork_as_user(&token).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
    assert!(e.to_string().contains("threads"), "{e}");
    // An impersonation token is refused as CreateProcessAsUser refuses it.
    let imp = token
        .duplicate(
            guise::ImpersonationLevel::Impersonation,
            guise::TokenType::Impersonation,
        )
        .unwrap();
    assert_eq!(
        guise::process::fork_as_user(&imp).unwrap_err().kind(),
        ErrorKind::BadTokenType
    );
}

/// Attack: a server keeps one `Command` and spawns it for client A, then for
/// client B. The command is not changed by a spawn, so B's child is B's, never A's;
/// spawned as the process or plainly afterwards, it is the process's.
#[test]
fn attack_a_reused_command_never_starts_the_second_child_as_the_first_user() {
    need_root!();
    let a = Token::from_ids(A, A, &[A]).unwrap();
    let b = Token::from_ids(common::B, common::B, &[common::B]).unwrap();
    let mut cmd = Command::new("id");
    cmd.args(["-u"])
        .env("GREETING", "hello")
        .stdout(Stdio::piped());
    let uid_of = |child: std::process::Child| {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let options = SpawnOptions::default();
    assert_eq!(
        uid_of(cmd.spawn_as_user(&a, &options).unwrap()),
        A.to_string()
    );
    assert_eq!(
        uid_of(cmd.spawn_as_user(&b, &options).unwrap()),
        common::B.to_string()
    );
    assert_eq!(uid_of(cmd.spawn_as_process().unwrap()), "0");
    assert_eq!(uid_of(cmd.spawn().unwrap()), "0");
    assert_eq!(
        uid_of(cmd.spawn_as_user(&a, &options).unwrap()),
        A.to_string()
    );
    // What was set on the command is still there, for every spawn.
    let vars: Vec<_> = cmd.get_envs().collect();
    assert_eq!(vars.len(), 1, "{vars:?}");
    let mut env = Command::new("sh");
    env.args(["-c", "echo $GREETING $USER"])
        .env("GREETING", "hello")
        .stdout(Stdio::piped());
    for (token, user) in [(&a, A), (&b, common::B)] {
        let out = env
            .spawn_as_user(token, &options)
            .unwrap()
            .wait_with_output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            format!("hello {user}")
        );
    }
}

/// A client of identity `uid` whose process holds CAP_SETUID and CAP_SETGID: its
/// token holds SeAssignPrimaryTokenPrivilege (and SeImpersonate, SeTcb).
fn client_with_assign_primary_token(uid: u32, groups: &[u32]) -> Token {
    let setid = Capabilities::SETUID | Capabilities::SETGID;
    let t = Token::from_ids_with_capabilities(uid, uid, groups, setid, setid).unwrap();
    assert!(t.has_privilege(Privilege::AssignPrimaryToken));
    t
}

/// Attack: a client without SeAssignPrimaryTokenPrivilege has a server that
/// impersonates it start a process as another user. Windows checks the privilege
/// in the caller's effective token, the impersonation token: refused, as is
/// `fork_as_user`. The client's own identity needs no privilege; a client whose
/// token holds the privilege may.
#[test]
fn create_process_as_user_checks_the_privilege_in_the_impersonation_token() {
    need_root!();
    let other = Token::from_ids(common::B, common::B, &[common::B]).unwrap();
    let client = Token::from_ids(A, A, &[A]).unwrap();
    assert!(!client.has_privilege(Privilege::AssignPrimaryToken));
    {
        let _as_client = client.impersonate().unwrap();
        let e = Command::new("true")
            .spawn_as_user(&other, &SpawnOptions::default())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PrivilegeNotHeld, "{e}");
        assert!(e.to_string().contains("impersonation token"), "{e}");
        let e = guise::process::fork_as_user(&other).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PrivilegeNotHeld, "{e}");
        // Its own identity it may give a child.
        let s = status_of_child(&client);
        assert_eq!(field(&s, "Uid"), format!("{A} {A} {A} {A}"));
    }
    // At Identification level the server may not act as the client at all.
    let id_only = client
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    {
        let _id = id_only.impersonate().unwrap();
        let e = Command::new("true")
            .spawn_as_user(&client, &SpawnOptions::default())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadImpersonationLevel, "{e}");
    }
    // A client that holds the privilege may.
    let privileged = client_with_assign_primary_token(A, &[A]);
    {
        let _as_client = privileged.impersonate().unwrap();
        let s = status_of_child(&other);
        assert_eq!(field(&s, "Uid"), format!("{0} {0} {0} {0}", common::B));
    }
    // And the process itself, as before.
    let s = status_of_child(&other);
    assert_eq!(field(&s, "Uid"), format!("{0} {0} {0} {0}", common::B));
}

/// A temp directory anyone may traverse holding a copy of `program` with `mode`,
/// owned by root and group `gid`.
fn program_copy(program: &str, mode: u32, gid: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let from = ["/usr/bin", "/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.exists())
        .unwrap();
    let to = dir.path().join(program);
    std::fs::copy(from, &to).unwrap();
    std::os::unix::fs::chown(&to, Some(0), Some(gid)).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, to)
}

const PROGRAM_GROUP: u32 = 61500;

/// Attack: a client that may not execute a program has a server that impersonates
/// it start the program as someone who may. CreateProcessAsUser opens the image in
/// the caller's context: the client's, while the thread impersonates.
#[test]
fn create_process_as_user_opens_the_program_as_the_impersonated_client() {
    need_root!();
    // Only members of PROGRAM_GROUP may run it.
    let (_dir, program) = program_copy("true", 0o750, PROGRAM_GROUP);
    let target = Token::from_ids(common::B, common::B, &[common::B, PROGRAM_GROUP]).unwrap();
    let run = || {
        Command::new(&program)
            .spawn_as_user(&target, &SpawnOptions::default())
            .map(|mut c| c.wait().unwrap().success())
    };
    // The process may; the target may.
    assert!(run().unwrap());
    // A client outside the group may not, whatever its privileges.
    let outsider = client_with_assign_primary_token(A, &[A]);
    {
        let _as_client = outsider.impersonate().unwrap();
        let e = run().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e}");
    }
    // A client in the group may.
    let member = client_with_assign_primary_token(A, &[A, PROGRAM_GROUP]);
    {
        let _as_client = member.impersonate().unwrap();
        assert!(run().unwrap());
    }
}

/// Attack: a client that may not execute a program has a server that impersonates
/// it start the program as the server (CreateProcess). Windows opens the image with
/// the caller's effective token: refused. A program the client may execute still
/// runs as the process, with the command's environment.
#[test]
fn create_process_opens_the_program_as_the_impersonated_client() {
    need_root!();
    let client = Token::from_ids(A, A, &[A]).unwrap();
    let (_dir, private) = program_copy("id", 0o700, 0);
    let (_dir2, env) = program_copy("env", 0o755, 0);
    let (_dir3, id) = program_copy("id", 0o755, 0);
    let output = |cmd: &mut Command| {
        let out = cmd
            .stdout(Stdio::piped())
            .spawn_as_process()?
            .wait_with_output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        Ok::<_, guise::Error>(String::from_utf8(out.stdout).unwrap())
    };
    // The process may run it.
    assert_eq!(
        output(Command::new(&private).arg("-u")).unwrap().trim(),
        "0"
    );
    {
        let _as_client = client.impersonate().unwrap();
        let e = output(Command::new(&private).arg("-u")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e}");
        // Found on PATH as the client, too.
        let e = output(
            Command::new("id")
                .arg("-u")
                .env("PATH", private.parent().unwrap()),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e}");
        // One it may execute runs as the process, with the command's environment.
        let text = output(Command::new(&env).env_clear().env("GUISE_X", "y")).unwrap();
        assert_eq!(text, "GUISE_X=y\n");
        let text = output(Command::new(&env).env("GUISE_X", "y").env_remove("PATH")).unwrap();
        assert!(text.lines().any(|l| l == "GUISE_X=y"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("PATH=")), "{text}");
        assert_eq!(output(Command::new(&id).arg("-u")).unwrap().trim(), "0");
    }
    // At Identification level: no open as the client, no process.
    let id_only = client
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    let _id = id_only.impersonate().unwrap();
    let e = output(&mut Command::new(&env)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadImpersonationLevel, "{e}");
}
