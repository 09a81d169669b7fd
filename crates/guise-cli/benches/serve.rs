//! Requests per second of `guise serve`, each request run as its client
//! (impersonation), next to the same server with `--no-impersonation`. One client
//! (uid 61001, reading its own 0600 file) sends requests one after another. Needs
//! root; run with `cargo bench -p guise-cli --bench serve`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use divan::Bencher;
use guise::pipe::{PipeAddr, PipeClient, SecurityQos};
use guise::{ImpersonationLevel, Token};

const CLIENT: u32 = 61001;

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    divan::main();
}

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(impersonate: bool) -> Server {
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
    let socket = dir.path().join("pipe");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guise"));
    cmd.args(["serve", "--socket"])
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
    while !server.socket.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server
}

fn connect(socket: &Path) -> PipeClient {
    // The client is uid 61001: connect while this thread acts as it.
    let token = Token::from_ids(CLIENT, CLIENT, &[CLIENT]).unwrap();
    let qos = SecurityQos {
        level: ImpersonationLevel::Impersonation,
        ..SecurityQos::default()
    };
    token
        .run_as(|| PipeClient::connect(&PipeAddr::Path(socket.to_owned()), qos).unwrap())
        .unwrap()
}

/// One read of the whole file: the header, the data, the end, the trailer.
fn read(client: &mut PipeClient, request: &[u8]) -> Vec<u8> {
    let header = client.transact(request).unwrap();
    assert!(
        header.starts_with(br#"{"ok":true"#),
        "{}",
        String::from_utf8_lossy(&header)
    );
    let mut data = Vec::new();
    loop {
        let chunk = client.receive().unwrap().unwrap();
        if chunk.is_empty() {
            break;
        }
        data.extend_from_slice(&chunk);
    }
    let trailer = client.receive().unwrap().unwrap();
    let trailer: serde_json::Value = serde_json::from_slice(&trailer).unwrap();
    assert_eq!(trailer["ok"], true);
    data
}

fn requests(b: Bencher, impersonate: bool) {
    let server = start(impersonate);
    let mut client = connect(&server.socket);
    let request = br#"{"op":"read","path":"own.txt"}"#;
    assert_eq!(read(&mut client, request), vec![b'x'; 256]);
    b.bench_local(|| read(&mut client, divan::black_box(request)));
}

#[divan::bench(sample_count = 200, sample_size = 20)]
fn with_impersonation(b: Bencher) {
    requests(b, true);
}

#[divan::bench(sample_count = 200, sample_size = 20)]
fn without_impersonation(b: Bencher) {
    requests(b, false);
}
