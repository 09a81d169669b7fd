//! A server started for a benchmark: `guise serve` or `guise rpc serve` on a
//! throwaway directory holding the client's own 256-byte 0600 file `own.txt`.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The client of the benchmarks.
pub const CLIENT: u32 = 61001;

/// Runs the benchmarks of `main` as root; says so and does nothing otherwise.
pub fn main_as_root(main: impl FnOnce()) {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    main();
}

/// A running server, killed and reaped on drop.
pub struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `guise COMMAND --socket ... --root ...` (with `--no-impersonation` unless
/// `impersonate`) and waits until it accepts connections.
pub fn start(command: &[&str], impersonate: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for p in [dir.path(), files.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let file = files.join("own.txt");
    std::fs::write(&file, "x".repeat(256)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&file, Some(CLIENT), Some(CLIENT)).unwrap();
    let socket = dir.path().join("socket");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guise"));
    cmd.args(command)
        .arg("--socket")
        .arg(&socket)
        .arg("--root")
        .arg(&files)
        .stderr(Stdio::null());
    if !impersonate {
        cmd.arg("--no-impersonation");
    }
    let server = Server {
        child: cmd.spawn().unwrap(),
        _dir: dir,
        socket,
    };
    while std::os::unix::net::UnixStream::connect(&server.socket).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server
}
