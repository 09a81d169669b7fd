//! `guise serve`: a small file service over a named pipe. Every request runs as the
//! client, on an impersonation worker, so the kernel decides; paths are resolved
//! beneath the root directory (`openat2` with `RESOLVE_BENEATH`). `guise cat`,
//! `guise ls`, `guise stat` and `guise put` are its clients. The protocol is in
//! `docs/protocol.md`.
//!
//! Hostile clients are held: only regular files are read and written (a FIFO or a
//! device never blocks a worker), reads and writes stream in bounded chunks, a
//! write goes to a temporary file created as the client and replaces the target
//! only once complete (fsync, rename), `put` never follows a symlink, the server's
//! own `/proc` is never served, and a client below Impersonation level opens
//! nothing (`ERROR_BAD_IMPERSONATION_LEVEL`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use guise::pipe::tokio::{AsyncPipeConnection, AsyncPipeServer};
use guise::pipe::{
    ClientOptions, ContextTracking, PipeAddr, PipeClient, SecurityQos, ServerOptions,
};
use guise::{Error, ErrorKind, ImpersonationLevel};
use serde_json::{Value, json};

use crate::file_service::{FileService, FileServiceArgs};
use crate::files::{self, CHUNK, invalid};
use crate::limits::ConnectionArgs;
use crate::output;
use guise::audit::Transport;

/// The largest frame the server takes: a request, or a chunk of a write.
const MAX_FRAME: usize = CHUNK + 4096;

/// On or off.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// Options of `guise serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// The socket to listen on. Under systemd socket activation the socket comes
    /// from systemd (`LISTEN_FDS`), and this, if given, must be its path.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// The socket to serve of several that systemd passed (its
    /// `FileDescriptorName=`).
    #[arg(long, value_name = "NAME")]
    pub socket_name: Option<String>,
    /// The served directory and the workers.
    #[command(flatten)]
    pub files: FileServiceArgs,
    /// Open files for reads, listings and stats as the client through io_uring
    /// personalities, without switching a worker (`on`, where the kernel has
    /// io_uring), or always by switching the worker's credentials (`off`). Writes
    /// always switch.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub io_uring: Switch,
    /// Serve one request at a time behind one lock, as a server that switches the
    /// whole process with setresuid must (for comparison only).
    #[arg(long, hide = true)]
    pub process_lock: bool,
    /// Serve each read in a process of its own started as the client (fork, the
    /// client's ids, exec, serve, exit), as an inetd-style server does (for
    /// comparison only).
    #[arg(long, hide = true)]
    pub process_per_request: bool,
    /// Serve from one thread that forks a child for each read, which takes on the
    /// client's ids, serves and exits (no exec), as a classic fork-per-request
    /// server does (for comparison only).
    #[arg(long, hide = true)]
    pub fork_per_request: bool,
    /// The connection limits.
    #[command(flatten)]
    pub limits: ConnectionArgs,
}

impl ServeArgs {
    /// The defaults of the command line, for `socket` and `root`.
    pub fn new(socket: PathBuf, root: PathBuf) -> ServeArgs {
        ServeArgs {
            socket: Some(socket),
            socket_name: None,
            files: FileServiceArgs::new(root),
            io_uring: Switch::On,
            process_lock: false,
            process_per_request: false,
            fork_per_request: false,
            limits: ConnectionArgs::default(),
        }
    }
}

/// Parses an impersonation level, offering the four names to completion.
pub fn level_parser() -> impl clap::builder::TypedValueParser<Value = ImpersonationLevel> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new([
        "anonymous",
        "identification",
        "impersonation",
        "delegation",
    ])
    .map(|s| {
        s.parse::<ImpersonationLevel>()
            .unwrap_or(ImpersonationLevel::Identification)
    })
}

/// Options of the clients.
#[derive(clap::Args, Clone)]
pub struct ClientArgs {
    /// The server's socket.
    #[arg(long)]
    socket: PathBuf,
    /// How far the server may act as this client: anonymous, identification,
    /// impersonation (the default: served as oneself, the server opens files
    /// as this client) or delegation. A server lowers it to what it may do; one
    /// that serves a client that says nothing serves it at identification.
    #[arg(long, default_value = "impersonation", value_parser = crate::serve::level_parser())]
    level: ImpersonationLevel,
    /// Context tracking: static (the identity at connect) or dynamic (each
    /// message carries this process's effective uid and gid).
    #[arg(long, default_value = "static", value_parser = ["static", "dynamic"])]
    tracking: String,
    /// Only the enabled privileges and groups of this client count (EffectiveOnly).
    #[arg(long)]
    effective_only: bool,
    /// Seconds to wait for the server at each step before giving up. 1 to
    /// 86400.
    #[arg(long, default_value_t = 30, value_parser = crate::limits::seconds())]
    timeout: u64,
    /// Refuse a server that does not run as this uid.
    #[arg(long)]
    server_uid: Option<u32>,
    /// The path, relative to the served directory.
    path: String,
}

/// A request's answer: its data, or the Win32 error and message.
fn answer(r: std::result::Result<Value, Error>) -> Value {
    match r {
        Ok(data) => json!({ "ok": true, "data": data }),
        Err(e) => failure(&e),
    }
}

pub(crate) fn failure(e: &Error) -> Value {
    json!({ "ok": false, "error": e.kind().win32_name(), "message": format!("{e:#}") })
}

/// The requests answered with one reply: `stat` and `list`.
async fn simple(
    conn: &AsyncPipeConnection,
    files: &FileService,
    op: &str,
    path: String,
) -> std::result::Result<Value, Error> {
    match op {
        "stat" => {
            let st = files.stat(conn, path).await?;
            Ok(json!({
                "uid": st.st_uid, "gid": st.st_gid,
                "mode": format!("{:o}", st.st_mode & 0o7777),
                "size": st.st_size,
                "type": type_name(rustix::fs::FileType::from_raw_mode(st.st_mode)),
            }))
        }
        "list" => {
            let listing = files.list(conn, path).await?;
            if listing.truncated {
                return Ok(json!({ "names": listing.names, "truncated": true }));
            }
            Ok(json!(listing.names))
        }
        other => Err(invalid(format!("unknown op {other:?}"))),
    }
}

/// The word `stat` gives a file type: `file`, `directory`, `symlink`, `fifo`,
/// `socket`, `char-device`, `block-device`, or `unknown`.
pub fn type_name(t: rustix::fs::FileType) -> &'static str {
    use rustix::fs::FileType;
    match t {
        FileType::RegularFile => "file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "char-device",
        FileType::BlockDevice => "block-device",
        _ => "unknown",
    }
}

/// What the server shares between connections.
struct Service {
    /// The file service, and how it acts as clients.
    files: FileService,
    /// Each read in a process of its own (`--process-per-request`, a baseline),
    /// given the served directory's path.
    process_per_request: Option<PathBuf>,
    /// Requests being served now.
    busy: AtomicUsize,
}

/// What a request did, for the log.
struct Outcome {
    result: &'static str,
    /// Whether it was refused for lacking the op's right.
    missing: bool,
    bytes: u64,
    /// Whether the connection is to be closed (the client broke the protocol).
    close: bool,
}

impl Outcome {
    fn of<T>(r: &std::result::Result<T, Error>, bytes: u64) -> Outcome {
        Outcome {
            result: match r {
                Ok(_) => "ok",
                Err(e) => e.kind().win32_name(),
            },
            missing: r.as_ref().err().is_some_and(guise::audit::lacks_right),
            bytes,
            close: false,
        }
    }
}

fn u64_field(req: &Value, name: &str) -> std::result::Result<Option<u64>, Error> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(format!("\"{name}\" must be a whole number"))),
    }
}

async fn serve_read(
    conn: &mut AsyncPipeConnection,
    service: &Service,
    req: &Value,
    path: String,
) -> Result<Outcome> {
    let range = u64_field(req, "offset").and_then(|o| Ok((o, u64_field(req, "length")?)));
    let (offset, length) = match range {
        Ok((o, l)) => (o.unwrap_or(0), l.filter(|&l| l > 0)),
        Err(e) => {
            conn.write_message(failure(&e).to_string().as_bytes())
                .await?;
            return Ok(Outcome::of::<()>(&Err(e), 0));
        }
    };
    let files = &service.files;
    if let (true, Some(root)) = (files.impersonate, &service.process_per_request) {
        return read_in_a_process(conn, root, &path, offset, length.unwrap_or(0)).await;
    }
    let (mut pos, mut left) = (offset, length.unwrap_or(u64::MAX));
    // The open and the first chunk in one job.
    let opened = files.open_read(&*conn, path, pos, left).await;
    let (fd, size, mut chunk) = match opened {
        Ok(x) => x,
        Err(e) => {
            let e = files.name_denial(&*conn, e, "read");
            conn.write_message(failure(&e).to_string().as_bytes())
                .await?;
            return Ok(Outcome::of::<()>(&Err(e), 0));
        }
    };
    conn.write_message(json!({ "ok": true, "size": size }).to_string().as_bytes())
        .await?;
    let mut sent = 0u64;
    let mut result = Ok(());
    loop {
        let full = chunk.len() as u64 == left.min(CHUNK as u64);
        if !chunk.is_empty() {
            conn.write_message(&chunk).await?;
            pos += chunk.len() as u64;
            left -= chunk.len() as u64;
            sent += chunk.len() as u64;
        }
        // A short chunk is the end of the file.
        if !full || chunk.is_empty() || left == 0 {
            break;
        }
        match files.read_next(&*conn, &fd, pos, left).await {
            Ok(c) => chunk = c,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    conn.write_message(&[]).await?;
    let trailer = match &result {
        Ok(()) => json!({ "ok": true, "data": sent }),
        Err(e) => failure(e),
    };
    conn.write_message(trailer.to_string().as_bytes()).await?;
    Ok(Outcome::of(&result, sent))
}

/// A read served by a process of its own, started as the client (the
/// `--process-per-request` baseline): `guise bench read-one` prints the size and
/// the data, or the error.
async fn read_in_a_process(
    conn: &mut AsyncPipeConnection,
    root: &std::path::Path,
    path: &str,
    offset: u64,
    length: u64,
) -> Result<Outcome> {
    let run = async {
        let token = conn.client().token()?;
        // Below Impersonation level DuplicateTokenEx makes no primary token
        // (ERROR_BAD_IMPERSONATION_LEVEL): nothing runs as the client.
        let primary =
            token.duplicate(ImpersonationLevel::Impersonation, guise::TokenType::Primary)?;
        let exe =
            std::env::current_exe().map_err(|e| Error::os(ErrorKind::Os, "the program", &e))?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(["bench", "read-one", "--root"])
            .arg(root)
            .args([
                "--path",
                path,
                "--offset",
                &offset.to_string(),
                "--length",
                &length.to_string(),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = guise::CommandExt::spawn_as_user(
            &mut cmd,
            &primary,
            &guise::process::SpawnOptions::default(),
        )?;
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| Error::os(ErrorKind::Os, "waiting for the process", &e))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            // The child names its error as `[ERROR_...]`.
            let kind = ErrorKind::ALL
                .iter()
                .copied()
                .find(|k| text.contains(&format!("[{}]", k.win32_name())))
                .unwrap_or(ErrorKind::InvalidParameter);
            return Err(Error::new(kind, text.trim().to_owned()));
        }
        let split = out.stdout.iter().position(|&b| b == b'\n').unwrap_or(0);
        let size: u64 = std::str::from_utf8(&out.stdout[..split])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((size, out.stdout[split + 1..].to_vec()))
    };
    let (size, data) = match run.await {
        Ok(x) => x,
        Err(e) => {
            conn.write_message(failure(&e).to_string().as_bytes())
                .await?;
            return Ok(Outcome::of::<()>(&Err(e), 0));
        }
    };
    conn.write_message(json!({ "ok": true, "size": size }).to_string().as_bytes())
        .await?;
    for chunk in data.chunks(CHUNK) {
        conn.write_message(chunk).await?;
    }
    conn.write_message(&[]).await?;
    conn.write_message(
        json!({ "ok": true, "data": data.len() })
            .to_string()
            .as_bytes(),
    )
    .await?;
    Ok(Outcome::of::<()>(&Ok(()), data.len() as u64))
}

async fn serve_write(
    conn: &mut AsyncPipeConnection,
    service: &Service,
    req: &Value,
    path: String,
) -> Result<Outcome> {
    let mode = match req.get("mode") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => u32::from_str_radix(s, 8)
            .map(Some)
            .map_err(|_| invalid("\"mode\" must be octal, like \"644\"")),
        Some(v) => v
            .as_u64()
            .map(|m| Some(m as u32))
            .ok_or_else(|| invalid("\"mode\" must be octal, like \"644\"")),
    };
    let files = &service.files;
    let begun = match mode {
        Ok(mode) => files.begin_write(&*conn, path, mode).await,
        Err(e) => Err(e),
    };
    let upload = match begun {
        Ok(u) => u,
        Err(e) => {
            let e = files.name_denial(&*conn, e, "write");
            conn.write_message(failure(&e).to_string().as_bytes())
                .await?;
            return Ok(Outcome::of::<()>(&Err(e), 0));
        }
    };
    conn.write_message(json!({ "ok": true }).to_string().as_bytes())
        .await?;
    // Waiting for the next chunk is part of the request: never closed as idle.
    conn.set_in_request(true);
    let mut written = 0u64;
    let mut result: std::result::Result<(), Error> = Ok(());
    loop {
        let data = match conn.read_message().await {
            Ok(Some(d)) => d,
            // Gone or broken mid-write: the target stays as it was.
            Ok(None) | Err(_) => {
                files.abandon_write(&*conn, &upload).await;
                return Ok(Outcome {
                    result: "ERROR_OPERATION_ABORTED",
                    missing: false,
                    bytes: written,
                    close: true,
                });
            }
        };
        if data.is_empty() {
            conn.set_in_request(false);
            break;
        }
        if result.is_ok() {
            let n = data.len() as u64;
            result = files.write_chunk(&*conn, &upload, data).await;
            written += n;
        }
    }
    let done = match result {
        Ok(()) => files.finish_write(&*conn, &upload).await,
        Err(e) => Err(e),
    };
    if done.is_err() {
        files.abandon_write(&*conn, &upload).await;
    }
    let reply = answer(done.as_ref().map(|()| json!(written)).map_err(Clone::clone));
    conn.write_message(reply.to_string().as_bytes()).await?;
    Ok(Outcome::of(&done, written))
}

async fn request(
    conn: &mut AsyncPipeConnection,
    service: &Service,
    msg: &[u8],
) -> Result<(Outcome, String, String)> {
    let req = match serde_json::from_slice::<Value>(msg) {
        Ok(r) if r.is_object() => r,
        other => {
            let why = match other {
                Err(e) => format!("not JSON: {e}"),
                Ok(_) => "a request is a JSON object".into(),
            };
            let e = invalid(why);
            conn.write_message(failure(&e).to_string().as_bytes())
                .await?;
            return Ok((Outcome::of::<()>(&Err(e), 0), "?".into(), String::new()));
        }
    };
    let op = req
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let path = req
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let outcome = match op.as_str() {
        "read" => serve_read(conn, service, &req, path.clone()).await?,
        "write" => serve_write(conn, service, &req, path.clone()).await?,
        _ => {
            let r = simple(conn, &service.files, &op, path.clone())
                .await
                .map_err(|e| service.files.name_denial(&*conn, e, &op));
            let outcome = Outcome::of(&r, 0);
            conn.write_message(answer(r).to_string().as_bytes()).await?;
            outcome
        }
    };
    Ok((outcome, op, path))
}

/// Counts a request as finished when dropped.
struct Finished<'a>(&'a AtomicUsize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(mut conn: AsyncPipeConnection, service: Arc<Service>) {
    let pid = conn.client().peer().pid();
    loop {
        let msg = match conn.read_message().await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::info!(uid = conn.client().peer().uid(), pid, %e, "closing a connection");
                return;
            }
        };
        service.busy.fetch_add(1, Ordering::SeqCst);
        // The identity that acts: after dynamic tracking, at the level it got.
        let acting = conn.client().token().ok();
        let done = request(&mut conn, &service, &msg).await;
        // Logged before the request counts as finished: a stop waits for its line.
        let _finished = Finished(&service.busy);
        match done {
            Ok((outcome, op, path)) => {
                service
                    .files
                    .audit_as(acting.as_ref(), conn.client().peer(), &op, &path)
                    .log_result(outcome.result, outcome.missing, outcome.bytes);
                if outcome.close {
                    return;
                }
            }
            Err(e) => {
                let (uid, _, _) =
                    files::acting_identity(acting.as_ref(), service.files.impersonate);
                tracing::info!(uid, pid, %e, "closing a connection");
                return;
            }
        }
    }
}

/// What this server (`name`) can do, said at start-up.
pub fn capabilities_report(name: &str, impersonate: bool) -> String {
    let creds = guise::ThreadCredentials::current();
    let uid = rustix::process::geteuid().as_raw();
    match creds {
        _ if !impersonate => format!(
            "{name}: uid {uid}, --no-impersonation: every request runs as the server (for comparison only)"
        ),
        Ok(c) if c.can_change_identity() => format!(
            "{name}: uid {uid}, CAP_SETUID and CAP_SETGID held: clients at Impersonation level are served as themselves; below it, nothing is opened for them"
        ),
        _ => format!(
            "{name}: uid {uid} without CAP_SETUID/CAP_SETGID: only clients of uid {uid} are served as themselves; every other client is held at Identification level and opens nothing (ERROR_BAD_IMPERSONATION_LEVEL)"
        ),
    }
}

/// Raises the soft limit of open files to the hard one: every connection is one.
pub fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!(%e, "cannot raise the limit of open files");
        }
    }
}

/// The pipe server's limits, from the command line.
pub(crate) fn server_options(args: &ServeArgs) -> ServerOptions {
    let mut o = ServerOptions::default();
    o.max_message = MAX_FRAME;
    o.limits = args.limits.apply(o.limits);
    o
}

/// Serves until `stop` completes; then stops accepting and gives the requests in
/// flight a few seconds to finish.
pub async fn serve(args: ServeArgs, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    raise_file_limit();
    let mut files = FileService::open(Transport::Pipe, &args.files)?;
    files.uring = args.io_uring == Switch::On && !args.process_lock && guise::uring::available();
    files.process_lock = args
        .process_lock
        .then(|| Arc::new(std::sync::Mutex::new(())));
    let service = Arc::new(Service {
        files,
        process_per_request: args.process_per_request.then(|| args.files.root.clone()),
        busy: AtomicUsize::new(0),
    });
    let options = server_options(&args);
    let (inherited, socket) =
        crate::service::listener(args.socket.as_deref(), args.socket_name.as_deref())?;
    let server = match inherited {
        Some(listener) => {
            AsyncPipeServer::from_listener(listener, PipeAddr::Path(socket.clone()), options)?
        }
        None => AsyncPipeServer::bind(PipeAddr::Path(socket.clone()), options)?,
    };
    eprintln!(
        "{}; {}",
        service.files.report("guise serve"),
        if service.files.uring {
            "reads open as the client through io_uring personalities"
        } else {
            "every open switches a worker to the client"
        }
    );
    crate::service::serving("pipe", &socket.display().to_string(), &args.files.root);
    crate::service::ready(&format!(
        "serving {} on {}",
        args.files.root.display(),
        socket.display()
    ));
    crate::service::spawn_watchdog();
    let accept = async {
        loop {
            match server.accept().await {
                Ok(conn) => {
                    tokio::spawn(connection(conn, Arc::clone(&service)));
                }
                Err(e) => {
                    tracing::error!(%e, "accept");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    };
    tokio::select! {
        () = accept => {},
        () = stop => {},
    }
    crate::service::stopping(&format!(
        "stopping: {} requests in flight",
        service.busy.load(Ordering::SeqCst)
    ));
    drop(server);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while service.busy.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    crate::service::stopped("pipe");
    Ok(())
}

/// Runs `guise serve` until SIGTERM or SIGINT.
pub fn run_serve(args: ServeArgs) -> Result<()> {
    if args.fork_per_request && !args.files.no_impersonation {
        // Before any other thread exists: only a process of one thread may fork.
        return crate::forkserve::run(&args);
    }
    run_until_stopped(serve(args, stop_signal()))
}

/// Runs a server (`serve`, given [`stop_signal`]) on a runtime whose threads
/// start at the process identity ([`guise::thread::on_thread_start`]), for the
/// servers of `guise serve`, `guise rpc serve` and `guise dbus serve`.
pub fn run_until_stopped(serve: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(guise::thread::on_thread_start)
        .enable_all()
        .build()?;
    let result = rt.block_on(serve);
    // Work still stuck in a worker does not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Completes on SIGTERM or SIGINT (never, if they cannot be caught). SIGHUP (a
/// reload, a closed terminal) never stops a server: it has nothing to reload, so
/// it notes the signal and goes on.
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    async fn hangup_received(h: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
        match h {
            Some(h) => h.recv().await,
            None => std::future::pending().await,
        }
    }
    let mut hangup = signal(SignalKind::hangup()).ok();
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                Some(()) = hangup_received(&mut hangup) => {
                    tracing::debug!("SIGHUP: nothing to reload, the server goes on");
                }
            }
        },
        _ => std::future::pending().await,
    }
}

/// Text a server sent (or a peer named, for a text log), with control characters
/// escaped (`\x1b` and the like), so that no name or message can drive the
/// terminal or forge a line.
pub fn escape(text: &str, keep_lines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' if keep_lines => out.push(c),
            c if c.is_control() => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

impl QueryArgs {
    /// The client's options.
    pub fn client(&self) -> &ClientArgs {
        &self.client
    }
}

impl CatArgs {
    /// The client's options.
    pub fn client(&self) -> &ClientArgs {
        &self.client
    }
}

impl PutArgs {
    /// The client's options.
    pub fn client(&self) -> &ClientArgs {
        &self.client
    }
}

/// `r`, the outcome of a pipe client of `socket`; a failure is "not a guise pipe
/// server" when the server there answers in HTTP/2, whatever broke first (a
/// gRPC server may close the connection on the pipe's frames before its own
/// SETTINGS frame reaches the client, which then sees only a closed pipe).
///
/// The server is not asked when the failure was its uid (`--server-uid`), and
/// the question is bounded by `--timeout` (two seconds at most).
pub fn or_not_a_pipe_server<T>(client: &ClientArgs, r: Result<T>) -> Result<T> {
    let socket = client.socket.as_path();
    let refused_for_its_uid = |e: &anyhow::Error| {
        e.chain()
            .filter_map(|c| c.downcast_ref::<guise::Error>())
            .any(|g| g.kind() == ErrorKind::AccessDenied)
    };
    let limit = Duration::from_secs(client.timeout.clamp(1, 2));
    match r {
        Err(e)
            if !crate::report(&e).contains("not a guise pipe server")
                && !refused_for_its_uid(&e)
                && crate::rpc::speaks_http2(socket, client.server_uid, limit) =>
        {
            Err(anyhow::Error::new(guise::Error::new(
                ErrorKind::InvalidParameter,
                format!(
                    "not a guise pipe server: unix:{} answers in HTTP/2, as a gRPC server \
                     does (`guise rpc call` is its client)",
                    socket.display()
                ),
            )))
        }
        r => r,
    }
}

/// A connection to `guise serve` with the client's options.
fn connect(args: &ClientArgs) -> Result<PipeClient> {
    let qos = SecurityQos {
        level: args.level,
        tracking: if args.tracking == "dynamic" {
            ContextTracking::Dynamic
        } else {
            ContextTracking::Static
        },
        effective_only: args.effective_only,
    };
    let options = {
        let mut o = ClientOptions::default();
        o.timeout = Some(Duration::from_secs(args.timeout.max(1)));
        o.server_uid = args.server_uid;
        o
    };
    Ok(PipeClient::connect_with(
        &PipeAddr::Path(args.socket.clone()),
        qos,
        &options,
    )?)
}

fn receive(client: &mut PipeClient) -> Result<Vec<u8>> {
    client
        .receive()?
        .ok_or_else(|| anyhow::anyhow!("the server closed the connection"))
}

fn receive_json(client: &mut PipeClient) -> Result<Value> {
    Ok(serde_json::from_slice(&receive(client)?)?)
}

/// A failed reply (`{"ok":false,"error","message"}`), as [`output::refused`]
/// reports it: exit status 1.
fn refused(out: &mut impl Write, json: bool, reply: &Value) -> Result<std::process::ExitCode> {
    let error = reply["error"].as_str().unwrap_or("ERROR_GEN_FAILURE");
    let message = reply["message"].as_str().unwrap_or("the server refused");
    Ok(output::refused(out, json, error, message)?)
}

/// Options of `guise ls` and `guise stat`.
#[derive(clap::Args, Clone)]
pub struct QueryArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Print JSON: `{"ok":true,"data":...}`, or `{"ok":false,"error":...,
    /// "message":...}` (exit status 1 for the server's refusal, 2 for guise's
    /// own error); see docs/cli-json.md.
    #[arg(long)]
    pub json: bool,
}

/// Sends `op` for `args.path`; the reply's data, or the exit status of its refusal
/// (already reported).
fn query(
    op: &str,
    args: &QueryArgs,
    out: &mut impl Write,
) -> Result<std::result::Result<Value, std::process::ExitCode>> {
    let mut client = connect(&args.client)?;
    client.send(
        json!({ "op": op, "path": args.client.path })
            .to_string()
            .as_bytes(),
    )?;
    let reply = receive_json(&mut client)?;
    if reply["ok"] != true {
        return Ok(Err(refused(out, args.json, &reply)?));
    }
    Ok(Ok(reply["data"].clone()))
}

/// Runs `guise ls`: the names, one a line, or under `--json`
/// `{"names":[...],"truncated":bool}`.
pub fn run_ls(args: &QueryArgs, out: &mut impl Write) -> Result<std::process::ExitCode> {
    let data = match query("list", args, out)? {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    // The wire's listing is an array, or {"names","truncated"} when cut short.
    let names = data
        .as_array()
        .or_else(|| data["names"].as_array())
        .ok_or_else(|| anyhow::anyhow!("the server's listing is not a list of names"))?;
    let truncated = data["truncated"] == true;
    if args.json {
        output::success(out, json!({ "names": names, "truncated": truncated }))?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    for i in names {
        writeln!(out, "{}", escape(i.as_str().unwrap_or_default(), false))?;
    }
    if truncated {
        eprintln!(
            "guise: the listing was cut short after {} names",
            names.len()
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs `guise stat`: the file's type, mode, owner and size, a line each, or
/// under `--json` `{"type","mode","uid","gid","size"}`.
pub fn run_stat(args: &QueryArgs, out: &mut impl Write) -> Result<std::process::ExitCode> {
    let data = match query("stat", args, out)? {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    if args.json {
        output::success(out, data)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let text = |k: &str| {
        let v = &data[k];
        escape(
            &v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            false,
        )
    };
    // The account's name where NSS knows it: `0 (root)`.
    let id = |k: &str, sid: fn(u32) -> guise::Sid| {
        let n = data[k].as_u64().and_then(|n| u32::try_from(n).ok());
        let name = n.and_then(|n| sid(n).lookup_account_name()).map(|name| {
            let short = name.rsplit_once('\\').map_or(name.as_str(), |(_, s)| s);
            short.to_owned()
        });
        match name {
            Some(name) if Some(name.as_str()) != n.map(|n| n.to_string()).as_deref() => {
                format!("{} ({})", text(k), escape(&name, false))
            }
            _ => text(k),
        }
    };
    writeln!(out, "type: {}", text("type"))?;
    writeln!(out, "mode: {}", text("mode"))?;
    writeln!(out, "owner: {}", id("uid", guise::Sid::unix_user))?;
    writeln!(out, "group: {}", id("gid", guise::Sid::unix_group))?;
    writeln!(out, "size: {}", text("size"))?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Options of `guise cat`.
#[derive(clap::Args)]
pub struct CatArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Start at this byte: 0 to 9223372036854775807, the largest file offset
    /// Linux has.
    #[arg(long, default_value_t = 0, value_parser = crate::limits::offset())]
    offset: u64,
    /// Read at most this many bytes (0: to the end).
    #[arg(long, default_value_t = 0)]
    length: u64,
}

/// Runs `guise cat`: streams the file to stdout (control characters escaped when
/// stdout is a terminal).
pub fn run_cat(args: &CatArgs, out: &mut impl Write) -> Result<std::process::ExitCode> {
    let mut client = connect(&args.client)?;
    let req = json!({ "op": "read", "path": args.client.path, "offset": args.offset, "length": args.length });
    client.send(req.to_string().as_bytes())?;
    let header = receive_json(&mut client)?;
    if header["ok"] != true {
        return refused(out, false, &header);
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let chunk = receive(&mut client)?;
        if chunk.is_empty() {
            break;
        }
        if terminal {
            out.write_all(escape(&String::from_utf8_lossy(&chunk), true).as_bytes())?;
        } else {
            out.write_all(&chunk)?;
        }
    }
    let trailer = receive_json(&mut client)?;
    if trailer["ok"] != true {
        out.flush()?;
        return refused(out, false, &trailer);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Options of `guise put`.
#[derive(clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The data to write (default: read stdin).
    #[arg(long)]
    data: Option<String>,
    /// The file's mode, in octal (default: the replaced file's, or 600).
    #[arg(long)]
    mode: Option<String>,
    /// Print JSON: `{"ok":true,"data":{"written":N}}`, or the failure envelope
    /// (docs/cli-json.md).
    #[arg(long)]
    pub json: bool,
}

/// Runs `guise put`: streams the data; the file is replaced only once it is whole.
pub fn run_put(args: &PutArgs, out: &mut impl Write) -> Result<std::process::ExitCode> {
    let mut client = connect(&args.client)?;
    let mut req = json!({ "op": "write", "path": args.client.path });
    if let Some(m) = &args.mode {
        req["mode"] = json!(m);
    }
    client.send(req.to_string().as_bytes())?;
    let ready = receive_json(&mut client)?;
    if ready["ok"] != true {
        return refused(out, args.json, &ready);
    }
    match &args.data {
        Some(d) => {
            for chunk in d.as_bytes().chunks(CHUNK) {
                client.send(chunk)?;
            }
        }
        None => {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                };
                client.send(&buf[..n])?;
            }
        }
    }
    client.send(&[])?;
    let reply = receive_json(&mut client)?;
    if reply["ok"] != true {
        return refused(out, args.json, &reply);
    }
    if args.json {
        output::success(out, json!({ "written": reply["data"] }))?;
    } else {
        writeln!(out, "{}", reply["data"])?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}
