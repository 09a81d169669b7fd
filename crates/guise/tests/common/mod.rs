//! Shared fixtures of the integration tests: numeric identities no account owns,
//! files owned by them, and views of the calling thread's credentials.
#![allow(dead_code)]

pub mod skip;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Client identity A (no account owns it).
pub const A: u32 = 61001;
/// Client identity B.
pub const B: u32 = 61002;
/// A non-root server identity.
pub const SERVER: u32 = 61010;

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Files anyone may reach: a 0644 file and a 0777 directory in a 0755 directory.
pub struct Public {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    pub drop_box: PathBuf,
}

pub fn public() -> Public {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("public.txt");
    std::fs::write(&file, "anyone").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let drop_box = dir.path().join("drop");
    std::fs::create_dir(&drop_box).unwrap();
    std::fs::set_permissions(&drop_box, std::fs::Permissions::from_mode(0o777)).unwrap();
    Public {
        dir,
        file,
        drop_box,
    }
}

/// A temp directory anyone may traverse, with one 0600 file for A, for B and for root.
pub struct Files {
    _dir: tempfile::TempDir,
    pub a: PathBuf,
    pub b: PathBuf,
    pub root_only: PathBuf,
}

pub fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let make = |name: &str, owner: u32| {
        let p = dir.path().join(name);
        std::fs::write(&p, owner.to_string()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(owner), Some(owner)).unwrap();
        p
    };
    Files {
        a: make("a.txt", A),
        b: make("b.txt", B),
        root_only: make("root.txt", 0),
        _dir: dir,
    }
}

/// Whether the calling thread may read `p`; any error but "permission denied" fails
/// the test.
pub fn can_read(p: &Path) -> bool {
    match std::fs::read(p) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => false,
        Err(e) => panic!("reading {}: {e}", p.display()),
    }
}

/// A field of `/proc/thread-self/status` (the calling thread's view), e.g. "Uid".
pub fn thread_status(field: &str) -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/thread-self/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Silences the panic message of the many intentional panics of a test.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// Starts `cmd` as `token`'s user (CreateProcessAsUser) and collects its output.
pub fn output_as(mut cmd: std::process::Command, token: &guise::Token) -> std::process::Output {
    use guise::CommandExt;
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn_as_user(token, &guise::process::SpawnOptions::default())
        .unwrap()
        .wait_with_output()
        .unwrap()
}
