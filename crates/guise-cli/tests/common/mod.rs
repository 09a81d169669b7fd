//! Helpers shared by the command-line tests.
#![allow(dead_code)]

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
    let mut child = Command::new(GUISE)
        .args(args)
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
