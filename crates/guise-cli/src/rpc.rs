//! `guise rpc serve`: the example file service over gRPC (`guise.files.v1.Files`,
//! `proto/guise/files/v1/files.proto`) on a Unix socket, and on TCP for clients
//! that authenticate with Kerberos (`--listen tcp://HOST:PORT --keytab FILE`).
//! Every call runs as its caller, at the level the caller allows in its metadata, with the same file rules
//! as `guise serve` ([`crate::files`]); reflection is on, so any gRPC tool can
//! discover the service. `guise rpc call` is its client.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use guise::pool::ImpersonationPool;
use guise::rpc::{RpcCall, RpcLayer, RpcOptions, UnixIncoming};
use guise::{Error, ErrorKind, ImpersonationLevel, Token};
use tonic::{Request, Response, Status};

use crate::file_service::{FileService, FileServiceArgs};
use crate::files::{self, CHUNK};
use crate::limits::ConnectionArgs;
use guise::admission;
use guise::audit::Transport;
use proto::files_client::FilesClient;
use proto::files_server::{Files, FilesServer};
use proto::{
    Chunk, Identity, ListReply, ListRequest, ReadRequest, WhoAmIRequest, WhoAmIThereRequest,
    WriteChunk, WriteReply,
};

/// The messages and service of `proto/guise/files/v1/files.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("guise.files.v1");

    /// The encoded descriptors of the service, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("files_descriptor");
}

/// The most data one `WriteChunk` may carry (stated in the proto): clients may
/// write in chunks this large (gRPC's own default limit on a message is 4 MiB).
const MAX_WRITE_DATA: usize = 1 << 20;
/// The largest message the service takes: a chunk of a write and its path.
const MAX_REQUEST: usize = MAX_WRITE_DATA + 8192;
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
    /// Serve a directory over gRPC (`guise.files.v1.Files`) on a Unix socket, or on
    /// TCP to Kerberos clients; every call runs as its caller.
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
    /// Also (or only, without --socket) listen on TCP, `tcp://HOST:PORT`, for
    /// clients that authenticate with Kerberos (GSSAPI); any other is refused.
    #[arg(long, value_name = "tcp://HOST:PORT", requires = "keytab")]
    pub listen: Option<String>,
    /// The keytab with the service's keys (for --listen).
    #[arg(long, value_name = "FILE")]
    pub keytab: Option<PathBuf>,
    /// The service principal clients must authenticate to (default: any whose key
    /// is in the keytab), such as `guise/files.example.com@EXAMPLE.COM`.
    #[arg(long, value_name = "PRINCIPAL", requires = "keytab")]
    pub principal: Option<String>,
    /// Seconds a TCP client may take to authenticate before it is disconnected.
    /// 1 to 86400.
    #[arg(long, default_value_t = admission::DEFAULT_HANDSHAKE_TIMEOUT.as_secs(), value_parser = crate::limits::seconds())]
    pub handshake_timeout: u64,
    /// The directory of the Kerberos replay cache: root's (the server's uid's),
    /// mode 0700, kept across restarts (systemd's `StateDirectory=`). Default: a
    /// new private directory in the temporary directory, never krb5's default
    /// in the shared /var/tmp.
    #[arg(long, value_name = "DIR", requires = "keytab")]
    pub replay_cache_dir: Option<PathBuf>,
    /// Another guise RPC server (`HOST:PORT`) that WhoAmIThere may call as its
    /// caller, besides servers on this service's own TCP port; repeatable. Any
    /// other target is refused without connecting.
    #[arg(long, value_name = "HOST:PORT")]
    pub delegate_to: Vec<String>,
    /// The served directory and the workers.
    #[command(flatten)]
    pub files: FileServiceArgs,
    /// The connection limits.
    #[command(flatten)]
    pub limits: ConnectionArgs,
    /// The most calls of one uid in flight at once; more are refused
    /// (RESOURCE_EXHAUSTED). 1 to 65536.
    #[arg(long, default_value_t = admission::DEFAULT_MAX_CALLS_PER_UID, value_parser = crate::limits::count(crate::limits::MAX_CALLS_PER_UID))]
    pub max_calls_per_uid: usize,
}

/// Options of `guise rpc call`.
#[derive(clap::Args)]
pub struct CallArgs {
    /// The server's socket.
    #[arg(long, required_unless_present = "connect", conflicts_with = "connect")]
    socket: Option<PathBuf>,
    /// Refuse a server (on --socket) that does not run as this uid.
    #[arg(long, value_name = "UID", conflicts_with = "connect")]
    server_uid: Option<u32>,
    /// A server on TCP, `tcp://HOST:PORT` (with --kerberos).
    #[arg(long, value_name = "tcp://HOST:PORT", requires = "kerberos")]
    connect: Option<String>,
    /// Authenticate with Kerberos (GSSAPI), with the ticket in the credential cache
    /// (`kinit` first); the server proves who it is too.
    #[arg(long, requires = "connect")]
    kerberos: bool,
    /// Permit Delegation: forward the ticket-granting ticket, so the server can act
    /// as this client on other machines, if the KDC marks the service
    /// OK-AS-DELEGATE (trusted for delegation, as Windows requires); to any other
    /// service nothing is forwarded, and guise says so. Asks for delegation level
    /// unless --level says otherwise.
    #[arg(long, requires = "kerberos")]
    delegate: bool,
    /// As --delegate, but forward the ticket-granting ticket to the service
    /// whatever the KDC says of it: the service can then act as this client
    /// anywhere. Only for a service known to be trusted.
    #[arg(long, requires = "kerberos", conflicts_with = "delegate")]
    delegate_always: bool,
    /// The service principal to authenticate to (default: `guise@HOST`).
    #[arg(long, value_name = "PRINCIPAL", requires = "kerberos")]
    principal: Option<String>,
    /// How far the server may act as this client: anonymous, identification,
    /// impersonation (the default: served as oneself; delegation with --delegate
    /// or --delegate-always) or delegation. A server lowers it to what it may
    /// do; one that serves a client that says nothing serves it at
    /// identification.
    #[arg(long, value_parser = crate::serve::level_parser())]
    level: Option<ImpersonationLevel>,
    /// Seconds the whole call may take. 1 to 86400.
    #[arg(long, default_value_t = 30, value_parser = crate::limits::seconds())]
    timeout: u64,
    #[command(subcommand)]
    op: CallOp,
}

impl Args {
    /// Whether `guise rpc call` is asked for JSON.
    pub fn json(&self) -> bool {
        match &self.command {
            RpcCommand::Call(c) => c.op.json(),
            RpcCommand::Serve(_) => false,
        }
    }
}

impl CallOp {
    /// Whether the op is asked for JSON.
    fn json(&self) -> bool {
        match self {
            CallOp::Whoami { json }
            | CallOp::WhoamiThere { json, .. }
            | CallOp::Write { json, .. }
            | CallOp::Ls { json, .. } => *json,
            CallOp::Read { .. } => false,
        }
    }
}

#[derive(clap::Subcommand)]
enum CallOp {
    /// The identity the server acts as for this client.
    Whoami {
        /// Print JSON, `{"ok":true,"data":{"uid":...}}` (docs/cli-json.md).
        #[arg(long)]
        json: bool,
    },
    /// The identity another server (tcp://HOST:PORT) sees when this server calls
    /// it as this client: what Delegation reaches.
    WhoamiThere {
        /// The other server, `tcp://HOST:PORT` (Kerberos service `guise@HOST`).
        target: String,
        /// Print JSON, `{"ok":true,"data":{"uid":...}}` (docs/cli-json.md).
        #[arg(long)]
        json: bool,
    },
    /// Print a file.
    Read {
        /// The path, relative to the served directory.
        path: String,
        /// Start at this byte: 0 to 9223372036854775807, the largest file offset
        /// Linux has.
        #[arg(long, default_value_t = 0, value_parser = crate::limits::offset())]
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
        /// Print JSON, `{"ok":true,"data":{"written":N}}` (docs/cli-json.md).
        #[arg(long)]
        json: bool,
    },
    /// List a directory.
    Ls {
        /// The path, relative to the served directory.
        #[arg(default_value = "")]
        path: String,
        /// Print JSON, `{"ok":true,"data":{"names":[...],"truncated":bool}}`
        /// (docs/cli-json.md).
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

/// The gRPC status for an error (guise's `From<Error> for Status`): the code of
/// its kind, a message that names the Win32 error, and the name in the
/// `guise-error` metadata.
fn status(e: &Error) -> Status {
    Status::from(e)
}

/// The service: the served root, the workers, and whether calls run as callers.
#[derive(Clone)]
struct FilesService {
    /// The file service, and how it acts as callers.
    files: Arc<FileService>,
    /// How long a caller may stall a streaming call (a write's next chunk, a
    /// read's next chunk taken).
    stall: Duration,
    /// Where WhoAmIThere may go: servers on this port (the service's own TCP
    /// port), and these `host:port` (hosts in lower case).
    own_port: Option<u16>,
    delegate_to: Arc<Vec<String>>,
}

impl FilesService {
    /// Whether WhoAmIThere may call `host:port`.
    fn may_delegate_to(&self, host: &str, address: &str) -> bool {
        let port = address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok());
        let wanted = format!("{}:{}", host.to_ascii_lowercase(), port.unwrap_or(0));
        (port.is_some() && port == self.own_port) || self.delegate_to.contains(&wanted)
    }
}

/// `--delegate-to HOST:PORT` (or `tcp://HOST:PORT`), as
/// [`FilesService::may_delegate_to`] compares it.
fn delegate_target(arg: &str) -> Result<String> {
    let full = if arg.starts_with("tcp://") {
        arg.to_owned()
    } else {
        format!("tcp://{arg}")
    };
    let (host, address) = tcp_target(&full).context("--delegate-to")?;
    let port = address.rsplit_once(':').map_or("", |(_, p)| p);
    Ok(format!("{}:{port}", host.to_ascii_lowercase()))
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
        let audit = self.files.audit(&call, "whoami", "");
        let identity = async {
            let token = call.token()?;
            // The level a thread really gets for this caller.
            let level = self.files.acting_level(&call).await?;
            Ok::<_, Error>(identity_of(&call, &token, level))
        }
        .await;
        audit.log(&identity, 0);
        identity.map(Response::new).map_err(|e| status(&e))
    }

    async fn who_am_i_there(
        &self,
        request: Request<WhoAmIThereRequest>,
    ) -> std::result::Result<Response<Identity>, Status> {
        let call = RpcCall::of(&request).map_err(|e| status(&e))?;
        let target = request.into_inner().target;
        let audit = self.files.audit(&call, "whoami-there", &target);
        let there = async {
            let (host, address) = tcp_target(&target)
                .map_err(|e| Error::new(ErrorKind::InvalidParameter, format!("the target: {e}")))?;
            // Only where the server's operator said: never a connection to
            // whatever the caller names.
            if !self.may_delegate_to(&host, &address) {
                return Err(Error::new(
                    ErrorKind::AccessDenied,
                    "this server calls no such target: only servers on its own port \
                     and those given with --delegate-to",
                ));
            }
            let service = format!("guise@{host}");
            // Never with the server's own credentials for a caller.
            if !self.files.impersonate {
                return Err(Error::new(
                    ErrorKind::NoSuchLogonSession,
                    "this server does not impersonate its callers (--no-impersonation): \
                     it has no credentials of theirs",
                ));
            }
            self.call_there(&call, service, address, &target).await
        }
        .await;
        audit.log(&there, 0);
        there.map(Response::new).map_err(|e| status(&e))
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
        let audit = self.files.audit(&call, "read", &path);
        let (service, stall) = (Arc::clone(&self.files), self.stall);
        let (mut pos, mut left) = (offset, if length == 0 { u64::MAX } else { length });
        // The open and the first chunk in one job.
        let opened = service.open_read(&call, path, pos, left).await;
        let (fd, _, mut chunk) = match opened {
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
                match service.read_next(&call, &fd, pos, left).await {
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
        let audit = self.files.audit(&call, "write", &path);
        let mode = (first.mode != 0).then_some(first.mode);
        let service = &self.files;
        let begun = service.begin_write(&call, path, mode).await;
        let upload = match begun {
            Ok(u) => u,
            Err(e) => {
                audit.log::<()>(&Err(e.clone()), 0);
                return Err(status(&e));
            }
        };
        // Whatever ends the call early (an error, the caller going away, the drop of
        // this future), the temporary file is removed as the caller.
        let mut pending = Pending::new(&call, &service.pool, &upload, service.impersonate);
        let mut written = 0u64;
        let mut data = first.data;
        let result = loop {
            if !data.is_empty() {
                let n = data.len() as u64;
                if let Err(e) = service.write_chunk(&call, &upload, data).await {
                    break Err(e);
                }
                written += n;
            }
            match within(self.stall, chunks.message()).await {
                Ok(Ok(Some(c))) => data = c.data,
                Ok(Ok(None)) => {
                    break service.finish_write(&call, &upload).await;
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
        let audit = self.files.audit(&call, "list", &path);
        let listing = self.files.list(&call, path).await;
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

/// What WhoAmI answers for the caller of `call`, whose token is `token`, at
/// `level`.
fn identity_of(call: &RpcCall, token: &Token, level: ImpersonationLevel) -> Identity {
    let unix = token.unix();
    Identity {
        uid: unix.uid().as_raw(),
        gid: unix.gid().as_raw(),
        groups: unix.groups().to_vec(),
        level: level.to_string(),
        user_sid: token.user().to_string(),
        principal: call
            .peer()
            .network()
            .map_or_else(String::new, |n| n.principal.clone()),
        network_credentials: token.has_network_credentials(),
        group_sids: token
            .groups()
            .iter()
            .filter(|g| {
                g.attributes
                    .contains(guise::token::GroupAttributes::ENABLED)
            })
            .map(|g| g.sid.to_string())
            .collect(),
    }
}

impl FilesService {
    /// WhoAmIThere's outgoing call: a Kerberos client of `address` as the caller
    /// (on a worker that impersonates it), asking the other server who it sees.
    #[cfg(feature = "kerberos")]
    async fn call_there(
        &self,
        call: &RpcCall,
        service: String,
        address: String,
        target: &str,
    ) -> guise::Result<Identity> {
        // The context starts on a worker that impersonates the caller: its
        // Kerberos credentials are the ones the caller delegated, or none.
        let initiator = call
            .run_as_client(&self.files.pool, move || {
                guise::kerberos::Initiator::start(&service, false)
            })
            .await??;
        // What the target sent never reaches the caller: a failure says
        // only what kind it was.
        let foreign = |kind: ErrorKind| {
            Error::new(
                kind,
                format!("the call to {target} failed ({})", kind.win32_name()),
            )
        };
        let channel = tokio::time::timeout(
            self.stall,
            guise::rpc::connect_kerberos(&address, initiator),
        )
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::NoLogonServers,
                format!("{target} did not answer within {} s", self.stall.as_secs()),
            )
        })?
        .map_err(|e| {
            let text = crate::serve::escape(&e.to_string(), false);
            tracing::info!(error = %text, "an outgoing Kerberos call failed");
            foreign(e.kind())
        })?;
        let mut client = FilesClient::new(channel).max_decoding_message_size(MAX_RESPONSE);
        let mut outgoing = self::request(WhoAmIRequest {}, ImpersonationLevel::Impersonation);
        outgoing.set_timeout(self.stall);
        client
            .who_am_i(outgoing)
            .await
            .map(Response::into_inner)
            .map_err(|s| {
                Error::new(
                    ErrorKind::AccessDenied,
                    format!(
                        "{target} refused the call (gRPC status {})",
                        s.code() as i32
                    ),
                )
            })
    }

    /// Without Kerberos, no call reaches another server.
    #[cfg(not(feature = "kerberos"))]
    async fn call_there(
        &self,
        _: &RpcCall,
        _: String,
        _: String,
        target: &str,
    ) -> guise::Result<Identity> {
        Err(Error::new(
            ErrorKind::NoLogonServers,
            format!("this guise was built without Kerberos: it cannot call {target}"),
        ))
    }
}

/// The host and `host:port` of a `tcp://HOST:PORT` address.
fn tcp_target(target: &str) -> Result<(String, String)> {
    let address = target
        .strip_prefix("tcp://")
        .ok_or_else(|| anyhow::anyhow!("{target:?} is not tcp://HOST:PORT"))?;
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("{target:?} has no port"))?;
    port.parse::<u16>()
        .map_err(|_| anyhow::anyhow!("{target:?} has no valid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        anyhow::bail!("{target:?} has no host");
    }
    Ok((host.to_owned(), address.to_owned()))
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

/// Serves until `stop` completes: on the Unix socket (unless only --listen is
/// given), and on TCP for Kerberos clients with --listen.
pub async fn serve(args: ServeArgs, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    crate::serve::raise_file_limit();
    let files = FileService::open(Transport::Grpc, &args.files)?;
    let mut options = RpcOptions::default();
    options.limits = args.limits.apply(options.limits);
    // Under socket activation: a Unix socket (local callers), a TCP socket
    // (Kerberos callers), or both.
    let mut passed = crate::service::Passed::take()?;
    let tcp_passed = passed.tcp(None)?;
    let tcp_only = (args.listen.is_some() || tcp_passed.is_some())
        && args.socket.is_none()
        && !passed.has_unix();
    let (unix, socket) = if tcp_only {
        (None, None)
    } else {
        let (inherited, socket) =
            passed.unix(args.socket.as_deref(), args.socket_name.as_deref())?;
        let incoming = match inherited {
            Some(listener) => UnixIncoming::from_listener(listener, options.clone())?,
            None => UnixIncoming::bind(&socket, options.clone())?,
        };
        (Some(incoming), Some(socket))
    };
    passed.finish()?;
    let tcp = match (&args.listen, tcp_passed) {
        (None, None) => None,
        (listen, passed) => {
            Some(kerberos_listener(&args, listen.as_deref(), passed, options).await?)
        }
    };
    let service = FilesService {
        files: Arc::new(files),
        stall: args.limits.request_timeout(),
        own_port: tcp.as_ref().map(|t| t.local_addr().port()),
        delegate_to: Arc::new(
            args.delegate_to
                .iter()
                .map(|t| delegate_target(t))
                .collect::<Result<_>>()?,
        ),
    };
    eprintln!("{}", service.files.report("guise rpc serve"));
    let mut places = Vec::new();
    if let Some(socket) = &socket {
        places.push(socket.display().to_string());
    }
    if let Some(tcp) = &tcp {
        places.push(format!("tcp://{} (Kerberos)", tcp.local_addr()));
    }
    let places = places.join(" and ");
    crate::service::serving("grpc", &places, &args.files.root);
    crate::service::ready(&format!(
        "serving {} over gRPC on {places}",
        args.files.root.display()
    ));
    crate::service::spawn_watchdog();
    // grpc.health.v1.Health: the server ("") and guise.files.v1.Files are
    // SERVING from here until the server stops.
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<FilesServer<FilesService>>()
        .await;
    let (stopped, stopping) = tokio::sync::watch::channel(false);
    let on_stop = async move {
        stop.await;
        crate::service::stopping("stopping");
        health_reporter
            .set_not_serving::<FilesServer<FilesService>>()
            .await;
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = stopped.send(true);
        Ok::<_, anyhow::Error>(())
    };
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // One layer for both listeners: a uid's calls in flight count across them.
    let layer = RpcLayer::default().max_calls_per_uid(args.max_calls_per_uid);
    let router = || -> Result<tonic::transport::server::Router<_>> {
        // Reflection in both versions clients ask for (grpcurl before 1.9 and
        // many tools ask for v1alpha only), describing Files and Health.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let (reflection, reflection_v1alpha) =
            (reflection().build_v1()?, reflection().build_v1alpha()?);
        Ok(guise::rpc::server()
            .layer(layer.clone())
            .add_service(
                FilesServer::new(service.clone())
                    .max_decoding_message_size(MAX_REQUEST)
                    .max_encoding_message_size(MAX_RESPONSE),
            )
            .add_service(health.clone())
            .add_service(reflection)
            .add_service(reflection_v1alpha))
    };
    let on_unix = async {
        if let Some(incoming) = unix {
            router()?
                .serve_with_incoming_shutdown(incoming, until_stopped(stopping.clone()))
                .await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let on_tcp = async {
        if let Some(incoming) = tcp {
            router()?
                .serve_with_incoming_shutdown(incoming, until_stopped(stopping.clone()))
                .await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::try_join!(on_unix, on_tcp, on_stop)?;
    crate::service::stopped("grpc");
    Ok(())
}

/// The TCP listener for Kerberos clients: the one systemd passed, else
/// `--listen`'s. With a passed socket, `--listen` may name its port, and must.
#[cfg(feature = "kerberos")]
async fn kerberos_listener(
    args: &ServeArgs,
    listen: Option<&str>,
    passed: Option<std::net::TcpListener>,
    options: RpcOptions,
) -> Result<guise::rpc::KerberosIncoming> {
    // A passed socket must be the one --listen names, checked first of all.
    if let (Some(listener), Some(listen)) = (&passed, listen) {
        let have = listener.local_addr()?;
        // The same port, and the same address unless --listen names every
        // address (0.0.0.0, [::]): a --listen 127.0.0.1:4460 is never served on
        // every interface by a unit that says 4460.
        let (_, address) = tcp_target(listen).context("--listen")?;
        let same = address.parse::<std::net::SocketAddr>().is_ok_and(|want| {
            want.port() == have.port() && (want.ip() == have.ip() || want.ip().is_unspecified())
        });
        if !same {
            anyhow::bail!(
                "systemd passed the TCP socket {have}, not --listen {listen} (give --listen \
                 as the unit's address and port, or leave it out)"
            );
        }
    }
    let keytab = args
        .keytab
        .as_deref()
        .context("Kerberos clients (--listen, or a TCP socket from systemd) need --keytab")?;
    let acceptor = guise::kerberos::Acceptor::from_keytab(keytab, args.principal.as_deref(), {
        let mut k = guise::kerberos::KerberosOptions::default();
        k.handshake_timeout = Duration::from_secs(args.handshake_timeout.max(1));
        k.replay_cache_dir.clone_from(&args.replay_cache_dir);
        k
    })?;
    match (passed, listen) {
        (Some(listener), _) => Ok(guise::rpc::KerberosIncoming::from_listener(
            listener, acceptor, options,
        )?),
        (None, Some(listen)) => {
            let (_, address) = tcp_target(listen).context("--listen")?;
            Ok(guise::rpc::KerberosIncoming::bind(&address, acceptor, options).await?)
        }
        (None, None) => anyhow::bail!("no TCP socket to serve Kerberos clients on"),
    }
}

/// Without Kerberos there is no TCP listener: `--listen`, or a TCP socket
/// from systemd, is refused. (The type stands for one that is never made.)
#[cfg(not(feature = "kerberos"))]
async fn kerberos_listener(
    _: &ServeArgs,
    _: Option<&str>,
    _: Option<std::net::TcpListener>,
    _: RpcOptions,
) -> Result<NoTcp> {
    anyhow::bail!(
        "this guise was built without the `kerberos` feature: --listen (or a TCP socket from systemd) is not available"
    )
}

/// A TCP listener that cannot exist (a build without Kerberos).
#[cfg(not(feature = "kerberos"))]
enum NoTcp {}

#[cfg(not(feature = "kerberos"))]
impl NoTcp {
    fn local_addr(&self) -> std::net::SocketAddr {
        match *self {}
    }
}

#[cfg(not(feature = "kerberos"))]
impl tokio_stream::Stream for NoTcp {
    type Item = std::io::Result<guise::rpc::RpcStream<tokio::net::UnixStream>>;

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match *self {}
    }
}

/// Runs `guise rpc serve` until SIGTERM or SIGINT.
pub fn run_serve(args: ServeArgs) -> Result<()> {
    crate::serve::run_until_stopped(serve(args, crate::serve::stop_signal()))
}

/// A failed call: its message, escaped, on stderr; exit status 1.
fn refused(out: &mut impl Write, json: bool, s: &Status) -> Result<std::process::ExitCode> {
    let e = Error::from_status(s);
    Ok(crate::output::refused(
        out,
        json,
        e.kind().win32_name(),
        s.message(),
    )?)
}

/// Whether `s` may be the transport's failure rather than a server's answer: no
/// guise error in its metadata, and a code tonic gives a broken connection.
fn transport_failure(s: &Status) -> bool {
    s.metadata().get(guise::error::ERROR_METADATA).is_none()
        && matches!(
            s.code(),
            tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Cancelled
        )
}

/// Whether the server on `socket` speaks HTTP/2: it is sent the client preface
/// and an empty SETTINGS frame, and must answer with a SETTINGS frame (a
/// 9-byte header of type 4). A guise pipe server reads the preface as a frame
/// of some 540 MB and closes the connection.
///
/// Bounded by `limit` at every step, connect(2) included (the send timeout
/// bounds a Unix socket's connect): a squatter that never accepts holds it
/// no longer. With `server_uid`, a server of another uid is not asked at all.
pub fn speaks_http2(socket: &std::path::Path, server_uid: Option<u32>, limit: Duration) -> bool {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType, sockopt};
    let probe = || -> Option<bool> {
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .ok()?;
        for which in [sockopt::Timeout::Send, sockopt::Timeout::Recv] {
            sockopt::set_socket_timeout(&fd, which, Some(limit)).ok()?;
        }
        rustix::net::connect(&fd, &SocketAddrUnix::new(socket).ok()?).ok()?;
        if let Some(want) = server_uid
            && sockopt::socket_peercred(&fd).ok()?.uid.as_raw() != want
        {
            return None;
        }
        let mut stream = std::os::unix::net::UnixStream::from(fd);
        use std::io::{Read, Write};
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .ok()?;
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).ok()?;
        Some(header[3] == 0x04)
    };
    probe().unwrap_or(false)
}

/// A failed call: the server's refusal (exit status 1), or, when the call broke
/// on a Unix socket whose server does not speak HTTP/2, guise's error "not a
/// gRPC server" (exit status 2).
async fn call_failed(
    out: &mut impl Write,
    json: bool,
    args: &CallArgs,
    s: &Status,
) -> Result<std::process::ExitCode> {
    if let (true, Some(socket)) = (transport_failure(s), &args.socket)
        && !{
            let socket = socket.clone();
            let (uid, limit) = (
                args.server_uid,
                Duration::from_secs(args.timeout.clamp(1, 2)),
            );
            tokio::task::spawn_blocking(move || speaks_http2(&socket, uid, limit))
                .await
                .unwrap_or(false)
        }
    {
        anyhow::bail!(Error::new(
            ErrorKind::InvalidParameter,
            format!(
                "not a gRPC server: unix:{} does not answer in HTTP/2 (a guise pipe \
                 server? `guise cat`, `guise ls` are its clients)",
                socket.display(),
            ),
        ));
    }
    refused(out, json, s)
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

impl CallArgs {
    /// What --delegate and --delegate-always ask for.
    #[cfg(feature = "kerberos")]
    fn delegation(&self) -> guise::kerberos::Delegation {
        if self.delegate_always {
            guise::kerberos::Delegation::Always
        } else if self.delegate {
            guise::kerberos::Delegation::Policy
        } else {
            guise::kerberos::Delegation::None
        }
    }
}

async fn call(args: &CallArgs, out: &mut impl Write) -> Result<std::process::ExitCode> {
    let channel = match (&args.socket, &args.connect) {
        (Some(socket), _) => guise::rpc::connect_to_server_uid(socket, args.server_uid).await?,
        (None, Some(connect)) => connect_kerberos(args, connect).await?,
        (None, None) => anyhow::bail!("--socket or --connect is needed"),
    };
    let mut client = FilesClient::new(channel)
        .max_decoding_message_size(MAX_RESPONSE)
        .max_encoding_message_size(MAX_REQUEST);
    let level = args
        .level
        .unwrap_or(if args.delegate || args.delegate_always {
            ImpersonationLevel::Delegation
        } else {
            // The client consents to being served as itself: a first read of
            // its own file works.
            ImpersonationLevel::Impersonation
        });
    let json = args.op.json();
    match &args.op {
        CallOp::Whoami { json } => {
            let id = match client.who_am_i(request(WhoAmIRequest {}, level)).await {
                Ok(r) => r.into_inner(),
                Err(s) => return call_failed(out, *json, args, &s).await,
            };
            print_identity(out, &id, *json)?;
        }
        CallOp::WhoamiThere { target, json } => {
            let req = WhoAmIThereRequest {
                target: target.clone(),
            };
            let id = match client.who_am_i_there(request(req, level)).await {
                Ok(r) => r.into_inner(),
                Err(s) => return call_failed(out, *json, args, &s).await,
            };
            print_identity(out, &id, *json)?;
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
                Err(s) => return call_failed(out, false, args, &s).await,
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
                        return call_failed(out, false, args, &s).await;
                    }
                }
            }
        }
        CallOp::Write {
            path, data, mode, ..
        } => {
            let mode = match mode {
                Some(m) => u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| anyhow::anyhow!("--mode must be octal, like 644"))?,
                None => 0,
            };
            let chunks = write_chunks(path.clone(), mode, data.clone());
            match client.write(request(chunks, level)).await {
                Ok(r) if json => crate::output::success(
                    out,
                    serde_json::json!({ "written": r.into_inner().written }),
                )?,
                Ok(r) => writeln!(out, "{}", r.into_inner().written)?,
                Err(s) => return call_failed(out, json, args, &s).await,
            }
        }
        CallOp::Ls { path, json } => {
            let reply = match client
                .list(request(ListRequest { path: path.clone() }, level))
                .await
            {
                Ok(r) => r,
                Err(s) => return call_failed(out, *json, args, &s).await,
            };
            let truncated = reply.metadata().get("guise-truncated").is_some();
            let names = reply.into_inner().names;
            if *json {
                crate::output::success(
                    out,
                    serde_json::json!({ "names": names, "truncated": truncated }),
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

/// A channel to a Kerberos server (`--connect`).
#[cfg(feature = "kerberos")]
async fn connect_kerberos(args: &CallArgs, connect: &str) -> Result<tonic::transport::Channel> {
    let (host, address) = tcp_target(connect).context("--connect")?;
    let service = args
        .principal
        .clone()
        .unwrap_or_else(|| format!("guise@{host}"));
    let delegation = args.delegation();
    // The context starts with this process's credential cache; asking the
    // KDC for a ticket blocks.
    let initiator = tokio::task::spawn_blocking(move || {
        guise::kerberos::Initiator::start(&service, delegation)
    })
    .await??;
    let outcome = initiator.delegation_outcome();
    // A refusal carries the server's words: escaped before they reach a
    // terminal.
    let channel = guise::rpc::connect_kerberos(&address, initiator)
        .await
        .map_err(|e| anyhow::anyhow!(crate::serve::escape(&e.to_string(), false)))?;
    if delegation != guise::kerberos::Delegation::None && outcome.delegated() != Some(true) {
        eprintln!(
            "guise: note: nothing was delegated: {}",
            if delegation == guise::kerberos::Delegation::Policy {
                "the KDC does not mark the service OK-AS-DELEGATE (trusted for \
                 delegation), or the ticket-granting ticket is not forwardable \
                 (kinit -f); --delegate-always forwards it to any service"
            } else {
                "the ticket-granting ticket is not forwardable (kinit -f)"
            }
        );
    }
    Ok(channel)
}

/// Without Kerberos, `--connect` is refused.
#[cfg(not(feature = "kerberos"))]
async fn connect_kerberos(_: &CallArgs, _: &str) -> Result<tonic::transport::Channel> {
    anyhow::bail!("this guise was built without the `kerberos` feature: --connect is not available")
}

/// Prints what WhoAmI answered, as JSON or a line.
fn print_identity(out: &mut impl Write, id: &Identity, json: bool) -> Result<()> {
    if json {
        let v = serde_json::json!({
            "uid": id.uid, "gid": id.gid, "groups": id.groups,
            "level": id.level, "user_sid": id.user_sid,
            "principal": id.principal, "network_credentials": id.network_credentials,
            "group_sids": id.group_sids,
        });
        crate::output::success(out, v)?;
    } else {
        let groups: Vec<String> = id.groups.iter().map(u32::to_string).collect();
        write!(
            out,
            "uid={} gid={} groups={} level={} sid={}",
            id.uid,
            id.gid,
            groups.join(","),
            crate::serve::escape(&id.level, false),
            crate::serve::escape(&id.user_sid, false)
        )?;
        if !id.principal.is_empty() {
            write!(
                out,
                " principal={} network_credentials={}",
                crate::serve::escape(&id.principal, false),
                id.network_credentials
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
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
