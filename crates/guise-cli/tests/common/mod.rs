//! Helpers shared by the command-line tests.
#![allow(dead_code)]

pub mod ad;
pub mod bus;
pub mod kdc;
pub mod server;
#[path = "../../../guise/tests/common/skip.rs"]
pub mod skip;

use std::io::Write;
use std::process::{Command, Stdio};

/// The `guise` binary under test.
pub const GUISE: &str = env!("CARGO_BIN_EXE_guise");

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Runs `guise ARGS` with `stdin`; returns the exit code, stdout and stderr.
pub fn guise(args: &[&str], stdin: &str) -> (i32, String, String) {
    guise_with_env(args, stdin, &[])
}

/// As [`guise`], with `env` added to guise's environment.
pub fn guise_with_env(
    args: &[&str],
    stdin: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> (i32, String, String) {
    let mut child = Command::new(GUISE)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run guise");
    // A command that refuses before it reads its input may have exited already.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A field of a `/proc/<pid>/status` text, its values joined by single spaces.
pub fn field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A PAM configuration directory as `guise run --pam-config-dir` accepts one
/// (root's, 0755), with `service` holding `stack`, and the file where `RECORD` in
/// the stack, a root-only script for pam_exec, appends what PAM tells it.
pub fn pam_dir(service: &str, stack: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("pam.log");
    let script = dir.path().join("record");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PAM_TYPE user=$PAM_USER ruser=$PAM_RUSER rhost=$PAM_RHOST\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let conf = dir.path().join(service);
    std::fs::write(&conf, stack.replace("RECORD", script.to_str().unwrap())).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    (dir, log)
}

/// A tokio runtime for a server in the test process: its threads start at the
/// process identity.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(guise::thread::on_thread_start)
        .enable_all()
        .build()
        .unwrap()
}

/// Moves the calling thread (and the programs it starts from then on) into a
/// private mount namespace where `/etc/passwd` and `/etc/group` are the
/// machine's with `passwd` and `group` lines added. The machine's files stay
/// untouched. Keep the returned directory for the test's duration.
pub fn with_accounts(passwd: &str, group: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap() + passwd;
    let group = std::fs::read_to_string("/etc/group").unwrap() + group;
    // SAFETY: unsharing the mount namespace affects only this thread (the test's,
    // in a process of its own); the programs it starts inherit it.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }.unwrap();
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .unwrap();
    for (name, text) in [("passwd", passwd), ("group", group)] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        rustix::mount::mount_bind(&file, format!("/etc/{name}")).unwrap();
    }
    dir
}
