//! `guise rpc serve`: the example file service over gRPC (`guise.files.v1.Files`,
//! `proto/guise/files/v1/files.proto`) on a Unix socket. Every call runs as its
//! caller, at the level the caller allows in its metadata, with the same file rules
//! as `guise serve` ([`crate::files`]); reflection is on, so any gRPC tool can
//! discover the service. `guise rpc call` is its client.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use guise::pool::ImpersonationPool;
use guise::rpc::{RpcCall, RpcLayer, RpcOptions, UnixIncoming};
use guise::{Error, ErrorKind, ImpersonationLevel, Token};
use rustix::fs::{Mode, OFlags};
use tonic::{Request, Response, Status};

use crate::files::{self, CHUNK};
use proto::files_client::FilesClient;
use proto::files_server::{Files, FilesServer};
use proto::{
    Chunk, Identity, ListReply, ListRequest, ReadRequest, WhoAmIRequest, WriteChunk, WriteReply,
};

/// The messages and service of `proto/guise/files/v1/files.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("guise.files.v1");

    /// The encoded descriptors of the service, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("files_descriptor");
}

/// The largest message the service takes: a chunk of a write and its path.
const MAX_REQUEST: usize = CHUNK + 8192;
/// The largest message the service sends: a listing (at most 512 KiB of names), an
/// identity with many groups.
const MAX_RESPONSE: usize = 1 << 20;

/// `guise rpc`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RpcCommand,
}

#[derive(clap::Subcommand)]
enum RpcCommand {
    /// Serve a directory over gRPC (`guise.files.v1.Files`) on a Unix socket; every
    /// call runs as its caller.
    Serve(ServeArgs),
    /// Call `guise rpc serve`.
    Call(CallArgs),
}

/// Options of `guise rpc serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// The socket to listen on (mode 0666: any local user may connect). Under
    /// systemd socket activation the socket comes from systemd (`LISTEN_FDS`), and
    /// this, if given, must be its path.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// The socket to serve of several that systemd passed (its
    /// `FileDescriptorName=`).
    #[arg(long, value_name = "NAME")]
    pub socket_name: Option<String>,
    /// The directory served; calls cannot leave it.
    #[arg(long)]
    pub root: PathBuf,
    /// Impersonation worker threads.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Serve every call as the server, not as the caller (for comparison only).
    #[arg(long)]
    pub no_impersonation: bool,
    /// The most connections kept open; a connection over it is closed at once.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// The most connections of one uid kept open.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_uid: usize,
    /// Seconds a connection may go without traffic before it is closed.
    #[arg(long, default_value_t = 300)]
    pub idle_timeout: u64,
    /// Seconds a caller may stall a streaming call (the next chunk of a write, or
    /// taking the next chunk of a read) before it is given up.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// The most calls of one uid in flight at once; more are refused
    /// (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = guise::rpc::DEFAULT_MAX_CALLS_PER_UID)]
    pub max_calls_per_uid: usize,
}

/// Options of `guise rpc call`.
#[derive(clap::Args)]
pub struct CallArgs {
    /// The server's socket.
    #[arg(long)]
    socket: PathBuf,
    /// How far the server may act as this client: anonymous, identification
    /// (guise's default), impersonation or delegation.
    #[arg(long, default_value = "identification", value_parser = crate::serve::level_parser())]
    level: ImpersonationLevel,
    /// Seconds the whole call may take.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    #[command(subcommand)]
    op: CallOp,
}

#[derive(clap::Subcommand)]
enum CallOp {
    /// The identity the server acts as for this client.
    Whoami {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a file.
    Read {
        /// The path, relative to the served directory.
        path: String,
        /// Start at this byte.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Read at most this many bytes (0: to the end).
        #[arg(long, default_value_t = 0)]
        length: u64,
    },
    /// Write a file (from stdin, or --data); it is replaced only once whole.
    Write {
        /// The path, relative to the served directory.
        path: String,
        /// The data to write (default: read stdin).
        #[arg(long)]
        data: Option<String>,
        /// The file's mode, in octal (default: the replaced file's, or 600).
        #[arg(long)]
        mode: Option<String>,
    },
    /// List a directory.
    Ls {
        /// The path, relative to the served directory.
        #[arg(default_value = "")]
        path: String,
        /// Print `{"names": [...], "truncated": bool}`.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `guise rpc`.
pub fn run(args: Args, out: &mut impl Write) -> Result<std::process::ExitCode> {
    match args.command {
        RpcCommand::Serve(args) => {
            run_serve(args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        RpcCommand::Call(args) => run_call(&args, out),
    }
}

/// The gRPC status for an error; the message names the Win32 error.
fn status(e: &Error) -> Status {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::AccessDenied | ErrorKind::PrivilegeNotHeld => Status::permission_denied(message),
        ErrorKind::NoneMapped => Status::not_found(message),
        ErrorKind::BadImpersonationLevel | ErrorKind::CantOpenAnonymous => {
            Status::failed_precondition(message)
        }
        ErrorKind::InvalidParameter => Status::invalid_argument(message),
        ErrorKind::RpcNoCallActive => Status::cancelled(message),
        _ => Status::internal(message),
    }
}

/// The service: the served root, the workers, and whether calls run as callers.
struct FilesService {
    pool: Arc<ImpersonationPool>,
    root: Arc<OwnedFd>,
    impersonate: bool,
    /// How long a caller may stall a streaming call (a write's next chunk, a
    /// read's next chunk taken).
    stall: Duration,
}

/// One call, as the log tells it: the identity that acts (taken when the call
/// began), what it asked for, and the outcome.
struct Audit {
    uid: u32,
    gid: u32,
    level: ImpersonationLevel,
    client_uid: u32,
    pid: i32,
    op: &'static str,
    path: String,
}

impl Audit {
    fn new(call: &RpcCall, impersonate: bool, op: &'static str, path: &str) -> Audit {
        let (uid, gid, level) = files::acting_identity(call.token().ok().as_ref(), impersonate);
        Audit {
            uid,
            gid,
            level,
            client_uid: call.peer().uid,
            pid: call.peer().pid,
            op,
            path: path.to_owned(),
        }
    }

    /// Logs the call with its outcome.
    fn log<T>(&self, r: &std::result::Result<T, Error>, bytes: u64) {
        let result = match r {
            Ok(_) => "ok",
            Err(e) => e.kind().win32_name(),
        };
        tracing::info!(
            target: "guise::audit",
            event = "call",
            uid = self.uid,
            gid = self.gid,
            client_uid = self.client_uid,
            pid = self.pid,
            level = %self.level,
            op = self.op,
            path = self.path,
            access = files::access_of(self.op),
            missing = (result == "ERROR_ACCESS_DENIED").then(|| files::access_of(self.op)),
            bytes,
            result,
            "call"
        );
    }
}

/// A call's work: as the caller on an impersonation worker, which first checks
/// that the caller's level lets it open anything; or, with `--no-impersonation`,
/// as the server.
async fn act<R: Send + 'static>(
    call: &RpcCall,
    pool: &ImpersonationPool,
    impersonate: bool,
    f: impl FnOnce() -> files::Result<R> + Send + 'static,
) -> files::Result<R> {
    if impersonate {
        call.run_as_client(pool, move || {
            guise::thread::check_open_as_client()?;
            f()
        })
        .await?
    } else {
        if !call.is_active() {
            return Err(Error::new(
                ErrorKind::RpcNoCallActive,
                "the call has finished",
            ));
        }
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::new(ErrorKind::Os, format!("a worker failed: {e}")))?
    }
}

type ChunkStream =
    Pin<Box<dyn tokio_stream::Stream<Item = std::result::Result<Chunk, Status>> + Send>>;

/// Waits for `f`, at most `limit`: a caller that stops sending the chunks of a
/// write, or stops taking those of a read, is given up on.
async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = T>,
) -> std::result::Result<T, Error> {
    tokio::time::timeout(limit, f).await.map_err(|_| {
        Error::new(
            ErrorKind::RpcNoCallActive,
            format!("the caller stalled for {} s", limit.as_secs()),
        )
    })
}

#[tonic::async_trait]
impl Files for FilesService {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> std::result::Result<Response<Identity>, Status> {
        let call = RpcCall::of(&request).map_err(|e| status(&e))?;
        let audit = Audit::new(&call, self.impersonate, "whoami", "");
        let identity = async {
            let token = call.token()?;
            // The level a thread really gets for this caller: RpcImpersonateClient on
            // a worker, which reverts at once.
            let level = if self.impersonate {
                let c = call.clone();
                self.pool
                    .run(move || c.impersonate_client().map(|g| g.level()))
                    .await??
            } else {
                ImpersonationLevel::Impersonation
            };
            Ok::<_, Error>(identity_of(&token, level))
        }
        .await;
        audit.log(&identity, 0);
        identity.map(Response::new).map_err(|e| status(&e))
    }

    type ReadStream = ChunkStream;

    async fn read(
        &self,
        request: Request<ReadRequest>,
    ) -> std::result::Result<Response<ChunkStream>, Status> {
        let call = RpcCall::of(&request).map_err(|e| status(&e))?;
        let ReadRequest {
            path,
            offset,
            length,
        } = request.into_inner();
        let audit = Audit::new(&call, self.impersonate, "read", &path);
        let (pool, impersonate, stall) = (Arc::clone(&self.pool), self.impersonate, self.stall);
        let (mut pos, mut left) = (offset, if length == 0 { u64::MAX } else { length });
        // The open and the first chunk in one job.
        let root = Arc::clone(&self.root);
        let opened = act(&call, &pool, impersonate, move || {
            let (fd, _) = files::open_regular(&root, &path)?;
            let first = files::read_chunk(&fd, pos, left)?;
            Ok((Arc::new(fd), first))
        })
        .await;
        let (fd, mut chunk) = match opened {
            Ok(x) => x,
            Err(e) => {
                audit.log::<()>(&Err(e.clone()), 0);
                return Err(status(&e));
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut sent = 0u64;
            let result = loop {
                let full = chunk.len() as u64 == left.min(CHUNK as u64);
                if !chunk.is_empty() {
                    let n = chunk.len() as u64;
                    match within(stall, tx.send(Ok(Chunk { data: chunk }))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            break Err(Error::new(
                                ErrorKind::RpcNoCallActive,
                                "the caller went away",
                            ));
                        }
                        Err(e) => break Err(e),
                    }
                    (pos, left, sent) = (pos + n, left - n, sent + n);
                }
                // A short chunk is the end of the file.
                if !full || left == 0 {
                    break Ok(());
                }
                let fd = Arc::clone(&fd);
                match act(&call, &pool, impersonate, move || {
                    files::read_chunk(&fd, pos, left)
                })
                .await
                {
                    Ok(c) if !c.is_empty() => chunk = c,
                    Ok(_) => break Ok(()),
                    Err(e) => {
                        let _ = tx.try_send(Err(status(&e)));
                        break Err(e);
                    }
                }
            };
            audit.log(&result, sent);
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn write(
        &self,
        request: Request<tonic::Streaming<WriteChunk>>,
    ) -> std::result::Result<Response<WriteReply>, Status> {
        let call = RpcCall::of(&request).map_err(|e| status(&e))?;
        let mut chunks = request.into_inner();
        let first = within(self.stall, chunks.message())
            .await
            .map_err(|e| status(&e))??
            .ok_or_else(|| status(&files::invalid("a write needs a first chunk with the path")))?;
        let path = first.path.clone();
        let audit = Audit::new(&call, self.impersonate, "write", &path);
        let mode = (first.mode != 0).then_some(first.mode);
        let (pool, impersonate) = (Arc::clone(&self.pool), self.impersonate);
        let root = Arc::clone(&self.root);
        let begun = act(&call, &pool, impersonate, move || {
            files::begin_upload(&root, &path, mode)
        })
        .await;
        let upload = match begun {
            Ok(u) => Arc::new(u),
            Err(e) => {
                audit.log::<()>(&Err(e.clone()), 0);
                return Err(status(&e));
            }
        };
        // Whatever ends the call early (an error, the caller going away, the drop of
        // this future), the temporary file is removed as the caller.
        let mut pending = Pending::new(&call, &pool, &upload, impersonate);
        let mut written = 0u64;
        let mut data = first.data;
        let result = loop {
            if !data.is_empty() {
                let (u, n) = (Arc::clone(&upload), data.len() as u64);
                if let Err(e) = act(&call, &pool, impersonate, move || u.write(&data)).await {
                    break Err(e);
                }
                written += n;
            }
            match within(self.stall, chunks.message()).await {
                Ok(Ok(Some(c))) => data = c.data,
                Ok(Ok(None)) => {
                    let u = Arc::clone(&upload);
                    break act(&call, &pool, impersonate, move || u.finish()).await;
                }
                Ok(Err(s)) => {
                    break Err(Error::new(
                        ErrorKind::RpcNoCallActive,
                        format!("the caller's stream broke: {}", s.message()),
                    ));
                }
                Err(e) => break Err(e),
            }
        };
        if result.is_ok() {
            pending.done();
        }
        drop(pending);
        audit.log(&result, written);
        result
            .map(|()| Response::new(WriteReply { written }))
            .map_err(|e| status(&e))
    }

    async fn list(
        &self,
        request: Request<ListRequest>,
    ) -> std::result::Result<Response<ListReply>, Status> {
        let call = RpcCall::of(&request).map_err(|e| status(&e))?;
        let path = request.into_inner().path;
        let audit = Audit::new(&call, self.impersonate, "list", &path);
        let root = Arc::clone(&self.root);
        let listing = act(&call, &self.pool, self.impersonate, move || {
            files::list(files::Opener::Thread, &root, &path)
        })
        .await;
        audit.log(&listing, 0);
        let listing = listing.map_err(|e| status(&e))?;
        let mut response = Response::new(ListReply {
            names: listing.names,
        });
        if listing.truncated {
            response.metadata_mut().insert(
                "guise-truncated",
                tonic::metadata::MetadataValue::from_static("true"),
            );
        }
        Ok(response)
    }
}

/// What WhoAmI answers for `token` at `level`.
fn identity_of(token: &Token, level: ImpersonationLevel) -> Identity {
    let unix = token.unix();
    Identity {
        uid: unix.uid().as_raw(),
        gid: unix.gid().as_raw(),
        groups: unix.groups().to_vec(),
        level: level.to_string(),
        user_sid: token.user().to_string(),
    }
}

/// An upload not yet made whole: dropped before [`Pending::done`], it has the
/// temporary file removed as the caller (the token taken when the call was
/// active), on a worker, without waiting for it.
struct Pending {
    upload: Option<(Arc<files::Upload>, Arc<ImpersonationPool>, Option<Token>)>,
    impersonate: bool,
}

impl Pending {
    fn new(
        call: &RpcCall,
        pool: &Arc<ImpersonationPool>,
        upload: &Arc<files::Upload>,
        impersonate: bool,
    ) -> Pending {
        let token = if impersonate { call.token().ok() } else { None };
        Pending {
            upload: Some((Arc::clone(upload), Arc::clone(pool), token)),
            impersonate,
        }
    }

    fn done(&mut self) {
        self.upload = None;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some((upload, pool, token)) = self.upload.take() else {
            return;
        };
        let abandon = move || upload.abandon();
        match (token, self.impersonate) {
            // Never as the server what was begun as the caller.
            (None, true) => tracing::warn!(
                "a write's temporary file stays: no token to remove it as its caller"
            ),
            (Some(t), _) => {
                // A drop may run on a runtime thread: queue the job, never wait.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move { pool.run_as(t, abandon).await });
                } else {
                    let _ = pool.run_as_blocking(t, abandon);
                }
            }
            (None, false) => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn_blocking(abandon);
                } else {
                    abandon();
                }
            }
        }
    }
}

/// Serves until `stop` completes.
pub async fn serve(args: ServeArgs, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    crate::serve::raise_file_limit();
    // The workers start before anything impersonates.
    let pool = Arc::new(ImpersonationPool::new(args.workers)?);
    let root = rustix::fs::open(
        &args.root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", args.root.display()))?;
    let mut options = RpcOptions::default();
    options.max_connections = args.max_connections;
    options.max_connections_per_uid = args.max_connections_per_uid;
    options.idle_timeout = Some(Duration::from_secs(args.idle_timeout.max(1)));
    let (inherited, socket) =
        crate::service::listener(args.socket.as_deref(), args.socket_name.as_deref())?;
    let incoming = match inherited {
        Some(listener) => UnixIncoming::from_listener(listener, options)?,
        None => UnixIncoming::bind(&socket, options)?,
    };
    let service = FilesService {
        pool: Arc::clone(&pool),
        root: Arc::new(root),
        impersonate: !args.no_impersonation,
        stall: Duration::from_secs(args.request_timeout.max(1)),
    };
    eprintln!(
        "{}; work below Impersonation level runs on workers that {}",
        crate::serve::capabilities_report("guise rpc serve", service.impersonate),
        if pool.sandboxed() {
            "the kernel lets open no file (Landlock)"
        } else {
            "only the sentinel identity holds (no Landlock)"
        }
    );
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    tracing::info!(socket = %socket.display(), root = %args.root.display(), "serving gRPC");
    crate::service::ready(&format!(
        "serving {} over gRPC on {}",
        args.root.display(),
        socket.display()
    ));
    crate::service::spawn_watchdog();
    let stop = async {
        stop.await;
        crate::service::stopping("stopping");
    };
    guise::rpc::server()
        .layer(RpcLayer::default().max_calls_per_uid(args.max_calls_per_uid))
        .add_service(
            FilesServer::new(service)
                .max_decoding_message_size(MAX_REQUEST)
                .max_encoding_message_size(MAX_RESPONSE),
        )
        .add_service(reflection)
        .serve_with_incoming_shutdown(incoming, stop)
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs `guise rpc serve` until SIGTERM or SIGINT.
pub fn run_serve(args: ServeArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(guise::thread::on_thread_start)
        .enable_all()
        .build()?;
    let result = rt.block_on(serve(args, crate::serve::stop_signal()));
    // Work still stuck in a worker does not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// A failed call: its message, escaped, on stderr; exit status 1.
fn refused(s: &Status) -> std::process::ExitCode {
    eprintln!("guise: {}", crate::serve::escape(s.message(), false));
    std::process::ExitCode::from(1)
}

/// A request with the client's level in its metadata.
fn request<T>(message: T, level: ImpersonationLevel) -> Request<T> {
    let mut r = Request::new(message);
    guise::rpc::request_level(&mut r, level);
    r
}

/// Runs `guise rpc call`.
fn run_call(args: &CallArgs, out: &mut impl Write) -> Result<std::process::ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(args.timeout.max(1)), call(args, out))
            .await
            .map_err(|_| anyhow::anyhow!("the server did not answer within {} s", args.timeout))?
    })
}

async fn call(args: &CallArgs, out: &mut impl Write) -> Result<std::process::ExitCode> {
    let channel = guise::rpc::connect(&args.socket).await?;
    let mut client = FilesClient::new(channel)
        .max_decoding_message_size(MAX_RESPONSE)
        .max_encoding_message_size(MAX_REQUEST);
    let level = args.level;
    match &args.op {
        CallOp::Whoami { json } => {
            let id = match client.who_am_i(request(WhoAmIRequest {}, level)).await {
                Ok(r) => r.into_inner(),
                Err(s) => return Ok(refused(&s)),
            };
            if *json {
                let v = serde_json::json!({
                    "uid": id.uid, "gid": id.gid, "groups": id.groups,
                    "level": id.level, "user_sid": id.user_sid,
                });
                writeln!(out, "{v}")?;
            } else {
                let groups: Vec<String> = id.groups.iter().map(u32::to_string).collect();
                writeln!(
                    out,
                    "uid={} gid={} groups={} level={} sid={}",
                    id.uid,
                    id.gid,
                    groups.join(","),
                    crate::serve::escape(&id.level, false),
                    crate::serve::escape(&id.user_sid, false)
                )?;
            }
        }
        CallOp::Read {
            path,
            offset,
            length,
        } => {
            let req = ReadRequest {
                path: path.clone(),
                offset: *offset,
                length: *length,
            };
            let mut stream = match client.read(request(req, level)).await {
                Ok(r) => r.into_inner(),
                Err(s) => return Ok(refused(&s)),
            };
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
            loop {
                match stream.message().await {
                    Ok(Some(chunk)) if terminal => out.write_all(
                        crate::serve::escape(&String::from_utf8_lossy(&chunk.data), true)
                            .as_bytes(),
                    )?,
                    Ok(Some(chunk)) => out.write_all(&chunk.data)?,
                    Ok(None) => break,
                    Err(s) => {
                        out.flush()?;
                        return Ok(refused(&s));
                    }
                }
            }
        }
        CallOp::Write { path, data, mode } => {
            let mode = match mode {
                Some(m) => u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| anyhow::anyhow!("--mode must be octal, like 644"))?,
                None => 0,
            };
            let chunks = write_chunks(path.clone(), mode, data.clone());
            match client.write(request(chunks, level)).await {
                Ok(r) => writeln!(out, "{}", r.into_inner().written)?,
                Err(s) => return Ok(refused(&s)),
            }
        }
        CallOp::Ls { path, json } => {
            let reply = match client
                .list(request(ListRequest { path: path.clone() }, level))
                .await
            {
                Ok(r) => r,
                Err(s) => return Ok(refused(&s)),
            };
            let truncated = reply.metadata().get("guise-truncated").is_some();
            let names = reply.into_inner().names;
            if *json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "names": names, "truncated": truncated })
                )?;
                return Ok(std::process::ExitCode::SUCCESS);
            }
            for n in &names {
                writeln!(out, "{}", crate::serve::escape(n, false))?;
            }
            if truncated {
                eprintln!(
                    "guise: the listing was cut short after {} names",
                    names.len()
                );
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The chunks of a write: the path and mode in the first, the data from `data` or
/// streamed from stdin (read on a thread of its own, never all in memory).
fn write_chunks(
    path: String,
    mode: u32,
    data: Option<String>,
) -> impl tokio_stream::Stream<Item = WriteChunk> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    std::thread::spawn(move || {
        if let Some(d) = data {
            for c in d.as_bytes().chunks(CHUNK) {
                if tx.blocking_send(c.to_vec()).is_err() {
                    return;
                }
            }
            return;
        }
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("guise: reading stdin: {e}");
                    // Dropping the sender mid-stream would write a short file: stop
                    // the process instead, before the write is finished.
                    std::process::exit(2);
                }
            };
            buf.truncate(n);
            if tx.blocking_send(buf).is_err() {
                return;
            }
        }
    });
    let first = WriteChunk {
        path,
        data: Vec::new(),
        mode,
    };
    let rest =
        tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), |data| {
            WriteChunk {
                path: String::new(),
                data,
                mode: 0,
            }
        });
    tokio_stream::StreamExt::chain(tokio_stream::iter([first]), rest)
}
