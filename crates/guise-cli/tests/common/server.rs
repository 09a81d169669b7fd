//! A `guise serve` started for a test, and clients run as other uids.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::GUISE;

/// A running `guise serve`, killed and reaped on drop.
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
    /// The server's log so far, collected as it comes (a full pipe would stall
    /// it), and the thread that collects it.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A server already started (with its stderr piped): its process and socket.
    pub fn new(mut child: Child, socket: PathBuf) -> Server {
        let stderr = child.stderr.take().expect("the server's stderr is piped");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Server {
            child,
            socket,
            log,
            reader: Some(reader),
        }
    }

    /// The server's log so far.
    pub fn log_so_far(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most `limit`) for a line of the log that `pred` accepts.
    pub fn wait_for_line(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let t = Instant::now();
        loop {
            if let Some(l) = self.log_so_far().lines().find(|l| pred(l)) {
                return Some(l.to_owned());
            }
            if t.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A field of the server's /proc status, in kB for memory fields.
    pub fn status(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        super::field(&text, field)
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// User plus system CPU time so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        rustix::process::kill_process(rustix::process::Pid::from_raw(self.pid()).unwrap(), sig)
            .unwrap();
    }

    /// Waits for the server to exit; its exit status and how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if self.child.try_wait().unwrap().is_some() {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the server (SIGTERM: requests in flight finish and are logged) and
    /// returns its log.
    pub fn stderr(&mut self) -> String {
        self.signal(rustix::process::Signal::TERM);
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.log_so_far()
    }
}

/// A directory anyone may traverse, with `files` (the served root) in it.
pub fn tree() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for p in [dir.path(), files.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (dir, files)
}

pub fn own_file(path: &Path, owner: u32, mode: u32, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(path, Some(owner), Some(owner)).unwrap();
}

/// A sparse 0600 file of `size` bytes owned by `owner`: large, but no disk.
pub fn sparse_file(path: &Path, owner: u32, size: u64) {
    own_file(path, owner, 0o600, "");
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(size)
        .unwrap();
}

/// Starts `guise serve` on `dir/pipe` for `root`: `wrap` goes before the command
/// (`setpriv ...`, `prlimit ...`), `extra` after it.
pub fn start(dir: &Path, root: &Path, wrap: &[&str], extra: &[&str]) -> Server {
    start_service(&["serve"], dir, root, wrap, extra)
}

/// Starts `guise rpc serve` on `dir/pipe` for `root`, as [`start`] does.
pub fn start_rpc(dir: &Path, root: &Path, wrap: &[&str], extra: &[&str]) -> Server {
    start_service(&["rpc", "serve"], dir, root, wrap, extra)
}

/// Starts the server of `command` and waits until it accepts connections.
fn start_service(
    command: &[&str],
    dir: &Path,
    root: &Path,
    wrap: &[&str],
    extra: &[&str],
) -> Server {
    let socket = dir.join("pipe");
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(GUISE);
            c
        }
        None => Command::new(GUISE),
    };
    cmd.args(command)
        .arg("--socket")
        .arg(&socket)
        .arg("--root")
        .arg(root)
        .args(extra)
        .env("GUISE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let server = Server::new(cmd.spawn().unwrap(), socket.clone());
    for _ in 0..500 {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the server did not start: {}", server.log_so_far());
}

/// Runs `guise ARGS` as `uid` (through `guise run`); exit code, stdout, stderr.
pub fn as_uid(uid: u32, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(GUISE)
        .args(["run", "--uid", &uid.to_string(), "--", GUISE])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A tonic channel to the gRPC server on `socket` whose connections the server
/// sees as `uid`: each is made on a thread of its own that impersonates `uid` (the
/// kernel records the effective ids of the thread that connects).
pub async fn grpc_channel_as(
    socket: &Path,
    uid: u32,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    use std::io;
    let token = guise::Token::from_ids(uid, uid, &[uid]).unwrap();
    let path = socket.to_owned();
    tonic::transport::Endpoint::from_static("http://guise.invalid")
        .connect_with_connector(tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let (token, path) = (token.clone(), path.clone());
            async move {
                let std = guise::thread::spawn(move || {
                    token.run_as(|| std::os::unix::net::UnixStream::connect(&path))
                })
                .map_err(io::Error::other)?
                .join()
                .map_err(|_| io::Error::other("the connecting thread panicked"))?
                .map_err(io::Error::other)??;
                std.set_nonblocking(true)?;
                Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::from_std(std)?,
                ))
            }
        }))
        .await
}
