//! The storm: identities read and write their own 0600 files through every local
//! transport at once — `guise serve` (pipe), `guise rpc serve` (gRPC),
//! `guise dbus serve` (D-Bus), and a library pipe server in this process — on a
//! cold cache (a fresh loop-mounted ext4 whose dentries are dropped again and
//! again), while the servers are hit by signals to their threads at kHz rates,
//! ptrace attach/detach, SIGSTOP/SIGCONT, a cgroup v2 freeze and thaw,
//! RLIMIT_NOFILE exhaustion and a memory cgroup limit, and the library server's
//! workers by SetThreadToken from another thread. Every reply whose data belongs
//! to another identity is counted: 0 is the only pass.
//!
//! `GUISE_STORM_REQUESTS` sets how many requests (100,000 by default);
//! `GUISE_STORM_SECONDS` the most time they may take (600 by default). The longer
//! run in docs/threat-model.md is this test with `GUISE_STORM_REQUESTS=1000000`.

mod common;

use guise::uring::{OpenFlags, Resolve};
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::bus::{FIRST, accounts_for, bus_as, proxy, start_bus, start_service};
use common::server::{Server, start, start_rpc};
use guise::pipe::{
    ClientOptions, ContextTracking, PipeAddr, PipeClient, PipeServer, SecurityQos, ServerOptions,
};
use guise::{ImpersonationLevel, Token};
use rustix::fs::{Mode, OFlags};

mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("guise.files.v1");
}

/// How many identities take part.
const IDS: u32 = 16;
/// Files each identity owns (more files, more cold lookups).
const FILES: u32 = 24;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a file of `uid` holds: it names its owner, so any reply says whose it is.
fn content(uid: u32, what: &str) -> Vec<u8> {
    format!("secret of {uid} {what} ").repeat(8).into_bytes()
}

/// Whose data `data` is, by the owner it names.
fn owner_of(data: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(data).ok()?;
    text.strip_prefix("secret of ")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// The count of everything, shared by every client and trigger.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    /// Right answers: own data, or a refusal of another identity's file.
    right: AtomicU64,
    /// Errors that leak nothing (a timeout, EMFILE, a connection reset).
    failed: AtomicU64,
    /// Replies that carried another identity's data.
    wrong: AtomicU64,
    samples: Mutex<Vec<String>>,
    by_transport: Mutex<BTreeMap<&'static str, u64>>,
    wrong_by_transport: Mutex<BTreeMap<&'static str, u64>>,
    triggers: Mutex<BTreeMap<&'static str, u64>>,
    stop: AtomicBool,
    /// How many requests the storm makes.
    target: AtomicU64,
}

/// What became of one request.
enum Outcome {
    /// The data of the identity that asked.
    Own,
    /// A refusal of a file of another identity.
    Refused,
    /// Data of `0`, to a client that is not `0`.
    Foreign(u32),
    /// An error that carries no one's data.
    Failed,
}

impl Tally {
    fn done(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether the in-process library server has had its share (a quarter) of the
    /// requests: it is far faster than the servers under attack.
    fn library_full(&self) -> bool {
        let library = self
            .by_transport
            .lock()
            .unwrap()
            .get("library")
            .copied()
            .unwrap_or(0);
        library * 4 >= self.target.load(Ordering::Relaxed)
    }

    fn count(&self, transport: &'static str, uid: u32, what: &str, outcome: Outcome) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Own | Outcome::Refused => {
                self.right.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Failed => {
                if self.failed.fetch_add(1, Ordering::Relaxed) < 10 {
                    eprintln!("storm: failed: {transport}: uid {uid} {what}");
                }
            }
            Outcome::Foreign(owner) => {
                self.wrong.fetch_add(1, Ordering::Relaxed);
                *self
                    .wrong_by_transport
                    .lock()
                    .unwrap()
                    .entry(transport)
                    .or_default() += 1;
                let mut s = self.samples.lock().unwrap();
                if s.len() < 20 {
                    s.push(format!("{transport}: uid {uid} {what} got data of {owner}"));
                }
            }
        }
        *self
            .by_transport
            .lock()
            .unwrap()
            .entry(transport)
            .or_default() += 1;
    }

    fn trigger(&self, name: &'static str, n: u64) {
        *self.triggers.lock().unwrap().entry(name).or_default() += n;
    }
}

/// Judges a reply to `uid`'s read of a file of `owner`.
fn judge(uid: u32, owner: u32, reply: Result<Vec<u8>, ()>) -> Outcome {
    match reply {
        Ok(data) => match owner_of(&data) {
            Some(o) if o == uid && owner == uid => Outcome::Own,
            Some(o) if o != uid => Outcome::Foreign(o),
            // Data of its own, though it asked for another's file, or data that
            // names no one: both leaked something not asked for.
            _ => Outcome::Foreign(owner),
        },
        Err(()) if owner != uid => Outcome::Refused,
        Err(()) => Outcome::Failed,
    }
}

/// Which file request `n` of `uid` asks for: mostly its own, every fourth its
/// neighbour's.
fn pick(uid: u32, n: u64) -> (u32, String) {
    let k = (n * 7 + u64::from(uid)) % u64::from(FILES);
    if n % 4 == 3 {
        let other = FIRST + (uid - FIRST + 1) % IDS;
        (other, format!("u{other}/f{k}"))
    } else {
        (uid, format!("u{uid}/f{k}"))
    }
}

/// A fresh ext4 file system on a loop device, mounted in the test's private mount
/// namespace; unmounted on drop.
struct ColdFs {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl ColdFs {
    fn new() -> ColdFs {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(96 << 20)
            .unwrap();
        run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]);
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        run(
            "mount",
            &[
                "-o",
                "loop",
                image.to_str().unwrap(),
                mount.to_str().unwrap(),
            ],
        );
        ColdFs { mount, _dir: dir }
    }

    /// Writes everything out and drops the kernel's caches: nothing of it is
    /// left in memory.
    fn chill(&self) {
        run("sync", &["-f", self.mount.to_str().unwrap()]);
        std::fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
    }
}

impl Drop for ColdFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// The served tree: a directory per identity (0711, its own), its 0600 files in
/// it, and a directory to write in.
fn populate(root: &Path) {
    chmod(root, 0o755);
    for uid in FIRST..FIRST + IDS {
        let d = root.join(format!("u{uid}"));
        std::fs::create_dir(&d).unwrap();
        for k in 0..FILES {
            let f = d.join(format!("f{k}"));
            std::fs::write(&f, content(uid, &format!("file {k}"))).unwrap();
            chmod(&f, 0o600);
            std::os::unix::fs::chown(&f, Some(uid), Some(uid)).unwrap();
        }
        chmod(&d, 0o700);
        std::os::unix::fs::chown(&d, Some(uid), Some(uid)).unwrap();
    }
}

/// A client thread that acts as `uid` for its whole life.
fn as_uid<R: Send + 'static>(
    uid: u32,
    f: impl FnOnce() -> R + Send + 'static,
) -> std::thread::JoinHandle<R> {
    let token = Token::from_ids(uid, uid, &[uid]).unwrap();
    guise::thread::spawn(move || token.run_as(f).unwrap()).unwrap()
}

fn qos() -> SecurityQos {
    SecurityQos {
        level: ImpersonationLevel::Impersonation,
        tracking: ContextTracking::Static,
        effective_only: false,
    }
}

fn pipe_connect(socket: &Path) -> Option<PipeClient> {
    let mut o = ClientOptions::default();
    o.timeout = Some(Duration::from_secs(20));
    PipeClient::connect_with(&PipeAddr::Path(socket.to_owned()), qos(), &o).ok()
}

/// One request of the `guise serve` protocol: a read of `path`.
fn serve_read(c: &mut PipeClient, path: &str) -> Result<Vec<u8>, bool> {
    let req = serde_json::json!({ "op": "read", "path": path, "offset": 0, "length": 0 });
    c.send(req.to_string().as_bytes()).map_err(|_| true)?;
    let header = receive_json(c)?;
    let mut data = Vec::new();
    if header["ok"] != true {
        return Err(false);
    }
    loop {
        let chunk = c.receive().map_err(|_| true)?.ok_or(true)?;
        if chunk.is_empty() {
            break;
        }
        data.extend(chunk);
    }
    let trailer = receive_json(c)?;
    if trailer["ok"] != true {
        return Err(false);
    }
    Ok(data)
}

/// A write of `data` to `path` through `guise serve`.
fn serve_write(c: &mut PipeClient, path: &str, data: &[u8]) -> Result<(), bool> {
    let req = serde_json::json!({ "op": "write", "path": path });
    c.send(req.to_string().as_bytes()).map_err(|_| true)?;
    if receive_json(c)?["ok"] != true {
        return Err(false);
    }
    c.send(data).map_err(|_| true)?;
    c.send(&[]).map_err(|_| true)?;
    if receive_json(c)?["ok"] != true {
        return Err(false);
    }
    Ok(())
}

/// The next JSON message; `Err(true)`: the connection is gone.
fn receive_json(c: &mut PipeClient) -> Result<serde_json::Value, bool> {
    let m = c.receive().map_err(|_| true)?.ok_or(true)?;
    serde_json::from_slice(&m).map_err(|_| true)
}

/// A `guise serve` client of `uid`: reads, and every eighth request writes its own
/// file and reads it back.
fn pipe_client(
    transport: &'static str,
    socket: PathBuf,
    uid: u32,
    tally: Arc<Tally>,
) -> std::thread::JoinHandle<()> {
    as_uid(uid, move || {
        let mut conn = None;
        let mut n = u64::from(uid) * 1000;
        while !tally.done() {
            n += 1;
            let Some(c) = conn.as_mut() else {
                conn = pipe_connect(&socket);
                if conn.is_none() {
                    tally.count(transport, uid, "connect", Outcome::Failed);
                    std::thread::sleep(Duration::from_millis(5));
                }
                continue;
            };
            let (owner, path, reply) = if n % 8 == 0 {
                let path = format!("drop/{uid}-{transport}");
                let data = content(uid, &format!("write {n}"));
                match serve_write(c, &path, &data) {
                    Ok(()) => (uid, path.clone(), serve_read(c, &path)),
                    Err(gone) => (uid, path, Err(gone)),
                }
            } else {
                let (owner, path) = pick(uid, n);
                let r = serve_read(c, &path);
                (owner, path, r)
            };
            if let Err(true) = reply {
                conn = None;
            }
            tally.count(
                transport,
                uid,
                &path,
                judge(uid, owner, reply.map_err(|_| ())),
            );
        }
    })
}

/// A client of the library server in this process (one message: the path; the
/// reply: the data, or `ERR`).
fn library_client(socket: PathBuf, uid: u32, tally: Arc<Tally>) -> std::thread::JoinHandle<()> {
    as_uid(uid, move || {
        let mut conn = None;
        let mut n = u64::from(uid) * 1000;
        while !tally.done() {
            n += 1;
            let Some(c) = conn.as_mut() else {
                conn = pipe_connect(&socket);
                continue;
            };
            if tally.library_full() {
                // Its share is done: the servers under attack get the CPU.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let (owner, path) = pick(uid, n);
            let reply = match c.transact(path.as_bytes()) {
                Ok(r) if r.starts_with(b"ERR") => {
                    if owner == uid {
                        eprintln!("storm: library: {}", String::from_utf8_lossy(&r));
                    }
                    Err(())
                }
                Ok(r) => Ok(r),
                Err(_) => {
                    conn = None;
                    tally.count("library", uid, &path, Outcome::Failed);
                    continue;
                }
            };
            tally.count("library", uid, &path, judge(uid, owner, reply));
        }
    })
}

/// The library server: workers started with `guise::thread::spawn` (so other
/// threads can SetThreadToken on them) open each file as the client through
/// io_uring. Returns the workers' handles.
fn library_server(
    socket: &Path,
    root: &Path,
    workers: usize,
    tally: &Arc<Tally>,
) -> Vec<guise::thread::ThreadHandle> {
    let mut options = ServerOptions::default();
    options.max_level = ImpersonationLevel::Impersonation;
    let server = Arc::new(PipeServer::bind(PipeAddr::Path(socket.to_owned()), options).unwrap());
    chmod(socket, 0o666);
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..workers {
        let (server, tx, tally) = (Arc::clone(&server), tx.clone(), Arc::clone(tally));
        let root = root.to_owned();
        guise::thread::spawn(move || {
            tx.send(guise::thread::ThreadHandle::current().unwrap())
                .unwrap();
            let dir =
                rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
            while !tally.done() {
                let Ok(mut conn) = server.accept() else {
                    continue;
                };
                while let Ok(Some(request)) = conn.read_message() {
                    let path = String::from_utf8_lossy(&request).into_owned();
                    let reply = conn
                        .client()
                        .token()
                        .and_then(|t| {
                            guise::uring::open_as(
                                &t,
                                dir.as_fd(),
                                &path,
                                OpenFlags::NONBLOCK | OpenFlags::CLOEXEC,
                                0,
                                Resolve::BENEATH,
                            )
                        })
                        .map(|fd| {
                            let mut data = vec![0u8; 4096];
                            let n = rustix::io::read(&fd, &mut data).unwrap_or(0);
                            data.truncate(n);
                            data
                        })
                        .unwrap_or_else(|e| format!("ERR {e}").into_bytes());
                    if conn.write_message(&reply).is_err() {
                        break;
                    }
                }
            }
        })
        .unwrap();
    }
    rx.iter().take(workers).collect()
}

/// gRPC clients: two channels per identity, each call a read (every eighth a
/// write and a read back).
fn grpc_clients(socket: PathBuf, tally: Arc<Tally>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        common::runtime().block_on(async move {
            let mut tasks = Vec::new();
            for i in 0..IDS * 2 {
                let uid = FIRST + i % IDS;
                let (socket, tally) = (socket.clone(), Arc::clone(&tally));
                tasks.push(tokio::spawn(async move {
                    let mut n = u64::from(uid) * 1000 + u64::from(i);
                    let mut client = None;
                    while !tally.done() {
                        n += 1;
                        let Some(c) = client.as_mut() else {
                            client = grpc_connect(&socket, uid).await;
                            if client.is_none() {
                                tally.count("grpc", uid, "connect", Outcome::Failed);
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            continue;
                        };
                        let (owner, path, reply) = if n % 8 == 0 {
                            let path = format!("drop/{uid}-grpc-{i}");
                            let chunk = proto::WriteChunk {
                                path: path.clone(),
                                data: content(uid, &format!("write {n}")),
                                mode: 0o600,
                            };
                            let w = c
                                .write(at(tokio_stream::iter([chunk])))
                                .await
                                .map_err(|_| ());
                            let r = match w {
                                Ok(_) => grpc_read(c, &path).await,
                                Err(()) => Err(()),
                            };
                            (uid, path, r)
                        } else {
                            let (owner, path) = pick(uid, n);
                            let r = grpc_read(c, &path).await;
                            (owner, path, r)
                        };
                        tally.count("grpc", uid, &path, judge(uid, owner, reply));
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
    })
}

fn at<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert(guise::rpc::LEVEL_METADATA, "impersonation".parse().unwrap());
    r.set_timeout(Duration::from_secs(20));
    r
}

type FilesClient = proto::files_client::FilesClient<tonic::transport::Channel>;

/// A gRPC client whose connection the server sees as `uid` (made on a thread that
/// acts as `uid`).
async fn grpc_connect(socket: &Path, uid: u32) -> Option<FilesClient> {
    let channel = common::server::grpc_channel_as(socket, uid).await.ok()?;
    Some(FilesClient::new(channel))
}

async fn grpc_read(c: &mut FilesClient, path: &str) -> Result<Vec<u8>, ()> {
    let req = proto::ReadRequest {
        path: path.into(),
        offset: 0,
        length: 0,
    };
    let mut stream = c.read(at(req)).await.map_err(|_| ())?.into_inner();
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(|_| ())? {
        data.extend(chunk.data);
    }
    Ok(data)
}

/// D-Bus clients: a connection per identity, each call a `Read` (every eighth a
/// `Write` and a read back).
fn dbus_clients(bus: Arc<common::bus::Bus>, tally: Arc<Tally>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        common::runtime().block_on(async move {
            let mut tasks = Vec::new();
            for uid in FIRST..FIRST + IDS {
                let (bus, tally) = (Arc::clone(&bus), Arc::clone(&tally));
                tasks.push(tokio::spawn(async move {
                    let mut n = u64::from(uid) * 1000;
                    let conn = bus_as(&bus, uid).await;
                    let f = proxy(&conn).await;
                    let mut qos_set = false;
                    while !tally.done() {
                        n += 1;
                        if !qos_set {
                            qos_set = f
                                .call::<_, _, ()>("SetQualityOfService", &("impersonation",))
                                .await
                                .is_ok();
                            if !qos_set {
                                tally.count("dbus", uid, "qos", Outcome::Failed);
                                continue;
                            }
                        }
                        let request = async {
                            if n % 8 == 0 {
                                let path = format!("drop/{uid}-dbus");
                                let data = content(uid, &format!("write {n}"));
                                let w = f
                                    .call::<_, _, ()>("Write", &(path.as_str(), data, 0o600u32))
                                    .await;
                                let r = match w {
                                    Ok(()) => f
                                        .call::<_, _, Vec<u8>>("Read", &(path.as_str(),))
                                        .await
                                        .map_err(|_| ()),
                                    Err(_) => Err(()),
                                };
                                (uid, path, r)
                            } else if n % 3 == 0 {
                                // The level for this call alone (an `a{sv}` option),
                                // as busctl gives it: the per-call path under the
                                // same storm.
                                let (owner, path) = pick(uid, n);
                                let options = std::collections::HashMap::from([(
                                    "level",
                                    zbus::zvariant::Value::from("impersonation"),
                                )]);
                                let r = f
                                    .call::<_, _, Vec<u8>>(
                                        "ReadWithOptions",
                                        &(path.as_str(), options),
                                    )
                                    .await
                                    .map_err(|_| ());
                                (owner, path, r)
                            } else {
                                let (owner, path) = pick(uid, n);
                                let r = f
                                    .call::<_, _, Vec<u8>>("Read", &(path.as_str(),))
                                    .await
                                    .map_err(|_| ());
                                (owner, path, r)
                            }
                        };
                        // A reply that never comes is a failure, not a hang.
                        let Ok((owner, path, reply)) =
                            tokio::time::timeout(Duration::from_secs(20), request).await
                        else {
                            tally.count("dbus", uid, "a call never answered", Outcome::Failed);
                            continue;
                        };
                        tally.count("dbus", uid, &path, judge(uid, owner, reply));
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
    })
}

/// The thread ids of process `pid`.
fn threads(pid: i32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts a trigger: `step` runs until the storm ends, and returns how many
/// interruptions it made each time.
fn trigger(
    tally: &Arc<Tally>,
    name: &'static str,
    mut step: impl FnMut() -> u64 + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let tally = Arc::clone(tally);
    std::thread::spawn(move || {
        while !tally.done() {
            let n = step();
            tally.trigger(name, n);
        }
    })
}

/// SIGHUP to every thread of the servers, every millisecond.
fn signals(pids: Vec<i32>) -> impl FnMut() -> u64 {
    move || {
        let mut n = 0;
        for &pid in &pids {
            for tid in threads(pid) {
                // SAFETY: tgkill sends a signal; SIGHUP is handled by the servers
                // (never their default action).
                if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGHUP) } == 0 {
                    n += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
        n
    }
}

/// ptrace: seize a thread of a server, interrupt it, wait for the stop, detach.
fn ptrace_step(pids: Vec<i32>) -> impl FnMut() -> u64 {
    let mut turn = 0usize;
    move || {
        let mut n = 0;
        for &pid in &pids {
            let tids = threads(pid);
            if tids.is_empty() {
                continue;
            }
            turn += 1;
            let tid = tids[turn % tids.len()];
            // SAFETY: PTRACE_SEIZE takes no pointers; a thread that cannot be
            // seized (gone, already traced) just fails.
            if unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0) } != 0 {
                continue;
            }
            // SAFETY: as above; the tracee is ours now.
            unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) };
            // Detach only from a stop (PTRACE_DETACH fails on a running tracee,
            // which would stay traced and stop for good at its next event): wait
            // for the stop the interrupt (or a SIGSTOP) brings, then detach.
            for _ in 0..100 {
                let mut status = 0;
                // SAFETY: `status` is a live int for waitpid to write.
                let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
                if r != tid || !libc::WIFSTOPPED(status) {
                    break; // gone
                }
                // SAFETY: detaching a stopped tracee of this thread; data 0 sends
                // no signal.
                if unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0) } == 0 {
                    break;
                }
            }
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
        n
    }
}

/// SIGSTOP, a pause, SIGCONT.
fn stop_cont(pids: Vec<i32>) -> impl FnMut() -> u64 {
    move || {
        for &pid in &pids {
            // SAFETY: kill sends a signal.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
        }
        std::thread::sleep(Duration::from_millis(3));
        for &pid in &pids {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        std::thread::sleep(Duration::from_millis(40));
        1
    }
}

/// A cgroup v2 of the servers: freeze, a pause, thaw.
struct Cgroup(PathBuf);

impl Cgroup {
    /// A new cgroup under the cgroup v2 hierarchy, wherever it is mounted.
    fn v2(pids: &[i32]) -> Option<Cgroup> {
        let base = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|p| {
                p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists()
            })?;
        let dir = base.join(format!("guise-storm-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let cg = Cgroup(dir);
        for pid in pids {
            std::fs::write(cg.0.join("cgroup.procs"), pid.to_string()).ok()?;
        }
        cg.0.join("cgroup.freeze").exists().then_some(cg)
    }

    /// A memory cgroup (v1, where the memory controller is there) limited to what
    /// the servers use now and `headroom` more.
    fn memory(pids: &[i32], headroom: u64) -> Option<(Cgroup, u64)> {
        let base = Path::new("/sys/fs/cgroup/memory");
        let (dir, limit_file, usage_file) = if base.join("memory.limit_in_bytes").exists() {
            (
                base.join(format!("guise-storm-{}", std::process::id())),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            let v2 = Path::new("/sys/fs/cgroup");
            let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).ok()?;
            if !controllers.split_whitespace().any(|c| c == "memory") {
                return None;
            }
            (
                v2.join(format!("guise-storm-mem-{}", std::process::id())),
                "memory.max",
                "memory.current",
            )
        };
        std::fs::create_dir(&dir).ok()?;
        let cg = Cgroup(dir);
        for pid in pids {
            std::fs::write(cg.0.join("cgroup.procs"), pid.to_string()).ok()?;
        }
        let usage: u64 = std::fs::read_to_string(cg.0.join(usage_file))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let limit = usage + headroom;
        std::fs::write(cg.0.join(limit_file), limit.to_string()).ok()?;
        Some((cg, limit))
    }

    fn freeze(&self, on: bool) {
        let _ = std::fs::write(self.0.join("cgroup.freeze"), if on { "1" } else { "0" });
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.freeze"), "0");
        // Empty once its processes are gone.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// RLIMIT_NOFILE of each server lowered to the descriptors it has open (so no
/// open can succeed), held, then restored.
fn nofile(pids: Vec<i32>) -> impl FnMut() -> u64 {
    use rustix::process::{Pid, Resource, prlimit};
    // The hard limit stays as it is (raising it back would need
    // CAP_SYS_RESOURCE, which a container may not grant).
    let hard = |pid: i32| -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(4)?.parse().ok()
    };
    move || {
        let mut old = Vec::new();
        for &pid in &pids {
            let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()) as u64;
            let Some(p) = Pid::from_raw(pid) else {
                continue;
            };
            let Some(maximum) = hard(pid) else { continue };
            let tight = rustix::process::Rlimit {
                current: Some(open.saturating_sub(1).min(maximum)),
                maximum: Some(maximum),
            };
            match prlimit(Some(p), Resource::Nofile, tight) {
                Ok(lim) => old.push((p, lim)),
                Err(e) => eprintln!("storm: prlimit {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(15));
        let n = old.len() as u64;
        for (p, lim) in old {
            let _ = prlimit(Some(p), Resource::Nofile, lim);
        }
        std::thread::sleep(Duration::from_millis(60));
        n
    }
}

/// SetThreadToken on the library server's workers from this thread: reverts and
/// other identities' tokens, as fast as they are taken up. Half of the tokens are
/// at Identification level, so that workers also cross into and out of the empty
/// root of a thread below Impersonation level (in the signal handler, and back
/// on their own switch) while they serve.
fn set_thread_tokens(handles: Vec<guise::thread::ThreadHandle>) -> impl FnMut() -> u64 {
    let tokens: Vec<Token> = (FIRST..FIRST + IDS)
        .flat_map(|uid| {
            [
                ImpersonationLevel::Impersonation,
                ImpersonationLevel::Identification,
            ]
            .map(|level| {
                Token::from_ids(uid, uid, &[uid])
                    .unwrap()
                    .duplicate(level, guise::TokenType::Impersonation)
                    .unwrap()
            })
        })
        .collect();
    let mut turn = 0usize;
    move || {
        let mut n = 0;
        for h in &handles {
            turn += 1;
            let t = (!turn.is_multiple_of(3)).then(|| &tokens[turn % tokens.len()]);
            if h.set_thread_token(t).is_ok() {
                n += 1;
            }
        }
        n
    }
}

/// Drops the kernel's dentry and inode caches now and then, so that lookups stay
/// cold (and io_uring opens go to io-wq, where their waits can be interrupted).
fn cold_caches() -> impl FnMut() -> u64 {
    || {
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "2");
        std::thread::sleep(Duration::from_millis(150));
        1
    }
}

#[test]
fn storm_no_reply_ever_carries_another_identitys_data() {
    need_root!();
    let have = ["mkfs.ext4", "mount", "dbus-daemon", "dbus-send"]
        .iter()
        .all(|p| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                .any(|dir| dir.join(p).is_file())
        });
    if common::skip::skip_unless(have, "mkfs.ext4 (e2fsprogs), mount and dbus-daemon") {
        return;
    }
    if common::skip::skip_unless(guise::uring::available(), "io_uring") {
        return;
    }
    let target = env_number("GUISE_STORM_REQUESTS", 100_000);
    let limit = Duration::from_secs(env_number("GUISE_STORM_SECONDS", 600));
    // A private mount namespace (for the accounts and the file system), entered by
    // this thread and inherited by every process it starts.
    let _users = accounts_for(IDS);
    let fs = ColdFs::new();
    let root = fs.mount.join("files");
    std::fs::create_dir(&root).unwrap();
    populate(&root);
    let drop_dir = root.join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    chmod(&drop_dir, 0o1777);
    fs.chill();

    let sockets = tempfile::tempdir().unwrap();
    chmod(sockets.path(), 0o755);
    let (pipe_dir, rpc_dir) = (sockets.path().join("pipe"), sockets.path().join("rpc"));
    for d in [&pipe_dir, &rpc_dir] {
        std::fs::create_dir(d).unwrap();
        chmod(d, 0o755);
    }
    let workers = ["--workers", "4"];
    let pipe = start(&pipe_dir, &root, &[], &workers);
    let rpc = start_rpc(&rpc_dir, &root, &[], &workers);
    let bus = Arc::new(start_bus(sockets.path()));
    let dbus = start_service(&bus, &root, &workers);
    let servers: [&Server; 3] = [&pipe, &rpc, &dbus];
    let pids: Vec<i32> = servers.iter().map(|s| s.pid()).collect();

    let tally = Arc::new(Tally::default());
    tally.target.store(target, Ordering::Relaxed);
    let library_socket = sockets.path().join("library");
    let handles = library_server(&library_socket, &root, 4, &tally);

    // GUISE_STORM_CALM=1: no trigger (to compare throughput with and without).
    let calm = std::env::var("GUISE_STORM_CALM").is_ok_and(|v| v == "1");
    let freezer = Cgroup::v2(&pids);
    let memory = Cgroup::memory(&pids, 96 << 20).filter(|_| !calm);
    let mut triggers = vec![
        trigger(
            &tally,
            "signals (SIGHUP to each server thread)",
            signals(pids.clone()),
        ),
        trigger(
            &tally,
            "ptrace seize/interrupt/detach",
            ptrace_step(pids.clone()),
        ),
        trigger(&tally, "SIGSTOP/SIGCONT", stop_cont(pids.clone())),
        trigger(&tally, "RLIMIT_NOFILE exhausted", nofile(pids.clone())),
        trigger(
            &tally,
            "SetThreadToken on library workers",
            set_thread_tokens(handles),
        ),
        trigger(&tally, "dentry and inode caches dropped", cold_caches()),
    ];
    if calm {
        tally.stop.store(true, Ordering::SeqCst);
        for t in triggers.drain(..) {
            t.join().unwrap();
        }
        tally.stop.store(false, Ordering::SeqCst);
        tally.triggers.lock().unwrap().clear();
    }
    let freezer = freezer.filter(|_| !calm).map(Arc::new);
    if let Some(cg) = &freezer {
        let cg = Arc::clone(cg);
        triggers.push(trigger(&tally, "cgroup v2 freeze/thaw", move || {
            cg.freeze(true);
            std::thread::sleep(Duration::from_millis(4));
            cg.freeze(false);
            std::thread::sleep(Duration::from_millis(60));
            1
        }));
    }

    let mut clients = Vec::new();
    for uid in FIRST..FIRST + IDS {
        for _ in 0..2 {
            clients.push(pipe_client(
                "pipe",
                pipe.socket.clone(),
                uid,
                Arc::clone(&tally),
            ));
        }
        clients.push(library_client(
            library_socket.clone(),
            uid,
            Arc::clone(&tally),
        ));
    }
    clients.push(grpc_clients(rpc.socket.clone(), Arc::clone(&tally)));
    clients.push(dbus_clients(Arc::clone(&bus), Arc::clone(&tally)));

    let started = Instant::now();
    let mut shown = Instant::now();
    while tally.requests.load(Ordering::Relaxed) < target && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        if shown.elapsed() > Duration::from_secs(10) {
            shown = Instant::now();
            eprintln!(
                "storm: after {:.0} s: {:?}",
                started.elapsed().as_secs_f64(),
                tally.by_transport.lock().unwrap()
            );
        }
    }
    tally.stop.store(true, Ordering::SeqCst);
    for t in triggers {
        t.join().unwrap();
    }
    for &pid in &pids {
        // SAFETY: kill sends a signal: no server stays stopped.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    if let Some(cg) = &freezer {
        cg.freeze(false);
    }
    // A client still waiting on a connection ends with the servers.
    let alive: Vec<bool> = pids
        .iter()
        .map(|&pid| Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    let elapsed = started.elapsed();
    let library_wakeup = pipe_connect(&library_socket);
    drop(library_wakeup);
    drop((pipe, rpc, dbus));
    for c in clients {
        let _ = c.join();
    }

    let requests = tally.requests.load(Ordering::Relaxed);
    let right = tally.right.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let wrong = tally.wrong.load(Ordering::Relaxed);
    eprintln!(
        "storm: {requests} requests in {:.1} s by {IDS} identities: {right} right, {failed} failed without leaking, {wrong} carried another identity's data",
        elapsed.as_secs_f64()
    );
    for (t, n) in tally.by_transport.lock().unwrap().iter() {
        let wrong = tally.wrong_by_transport.lock().unwrap().get(t).copied();
        eprintln!(
            "storm: transport {t}: {n} requests, {} wrong",
            wrong.unwrap_or(0)
        );
    }
    for (t, n) in tally.triggers.lock().unwrap().iter() {
        eprintln!("storm: trigger {t}: {n}");
    }
    eprintln!(
        "storm: memory cgroup: {}",
        memory
            .as_ref()
            .map_or("none".to_owned(), |(_, l)| format!("limit {} MiB", l >> 20))
    );
    drop(memory);
    drop(freezer);
    assert_eq!(
        wrong,
        0,
        "replies carried another identity's data: {:?}",
        tally.samples.lock().unwrap()
    );
    assert!(
        requests >= target,
        "only {requests} of {target} requests in {limit:?}"
    );
    assert!(
        right * 2 > requests,
        "most requests failed ({failed} of {requests}): the storm proved nothing"
    );
    assert_eq!(alive, [true, true, true], "a server died in the storm");
    // Every transport kept serving through the storm: none stalled.
    for (t, n) in tally.by_transport.lock().unwrap().iter() {
        assert!(
            *n * 20 >= target,
            "transport {t} was hardly served ({n} of {target} requests): it stalled"
        );
    }
    assert_eq!(tally.by_transport.lock().unwrap().len(), 4);
    assert!(
        calm || tally.triggers.lock().unwrap().values().all(|&n| n > 0),
        "a trigger never fired: {:?}",
        tally.triggers.lock().unwrap()
    );
}
