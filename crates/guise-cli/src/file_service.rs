//! The file service of `guise serve` (pipe), `guise rpc serve` (gRPC) and
//! `guise dbus serve` (D-Bus), written once: each operation (read, write, list,
//! stat) acts as the client, the act-as-client step checks the client's level
//! first, a denial can name the identity that acted and the right it lacked, and
//! every request leaves one audit line ([`guise::audit::request`]).
//!
//! A transport only says where the client's identity comes from ([`Caller`]) and
//! maps its wire format onto these operations; the file operations themselves
//! are in [`crate::files`].

use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use guise::audit::Transport;
use guise::client::PeerIdentity;
use guise::pool::ImpersonationPool;
use guise::{Error, ErrorKind, ImpersonationLevel, Token};
use rustix::fs::{Mode, OFlags};

use crate::files::{self, Listing, Opener, Result, Upload};

/// The client of one request, as its transport knows it: where the identity
/// comes from, and how work runs as it.
pub trait Caller: Sync {
    /// Who the transport says the client is (the kernel's or the bus daemon's
    /// view, or what a network client proved).
    fn peer(&self) -> &PeerIdentity;

    /// The client's token at the level it allowed.
    ///
    /// # Errors
    /// As the transport's `token`.
    fn token(&self) -> guise::Result<Token>;

    /// The level the client asked for (before the server's rules lowered it).
    fn asked_level(&self) -> ImpersonationLevel;

    /// Runs `f` on a worker of `pool` that impersonates the client.
    fn run_as_client<R: Send + 'static>(
        &self,
        pool: &ImpersonationPool,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> impl Future<Output = guise::Result<R>> + Send;

    /// Fails once the request is over (a gRPC call its caller cancelled); other
    /// transports never fail.
    ///
    /// # Errors
    /// The transport's error for a request no longer active.
    fn check_active(&self) -> guise::Result<()> {
        Ok(())
    }
}

impl Caller for guise::pipe::tokio::AsyncPipeConnection {
    fn peer(&self) -> &PeerIdentity {
        self.client().peer()
    }

    fn token(&self) -> guise::Result<Token> {
        self.client().token()
    }

    fn asked_level(&self) -> ImpersonationLevel {
        self.client().qos().level
    }

    fn run_as_client<R: Send + 'static>(
        &self,
        pool: &ImpersonationPool,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> impl Future<Output = guise::Result<R>> + Send {
        guise::pipe::tokio::AsyncPipeConnection::run_as_client(self, pool, f)
    }
}

/// A [`Caller`] for a transport's call type whose own `peer`, `token` and
/// `run_as_client` are those of the trait; `$item`s add to (or override) the
/// trait's defaults.
macro_rules! caller_of_call {
    ($ty:ty $(, $item:item)*) => {
        impl Caller for $ty {
            fn peer(&self) -> &PeerIdentity {
                <$ty>::peer(self)
            }

            fn token(&self) -> guise::Result<Token> {
                <$ty>::token(self)
            }

            fn asked_level(&self) -> ImpersonationLevel {
                <$ty>::qos(self).level
            }

            fn run_as_client<R: Send + 'static>(
                &self,
                pool: &ImpersonationPool,
                f: impl FnOnce() -> R + Send + 'static,
            ) -> impl Future<Output = guise::Result<R>> + Send {
                <$ty>::run_as_client(self, pool, f)
            }

            $($item)*
        }
    };
}

caller_of_call!(
    guise::rpc::RpcCall,
    fn check_active(&self) -> guise::Result<()> {
        if self.is_active() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::RpcNoCallActive,
                "the call has finished",
            ))
        }
    }
);
caller_of_call!(guise::dbus::DbusCall);

/// The served directory and the workers of a server, from the command line
/// (`--root`, `--workers`, `--no-impersonation`), the same for the three
/// servers.
#[derive(clap::Args, Clone, Debug)]
pub struct FileServiceArgs {
    /// The directory served; requests cannot leave it.
    #[arg(long)]
    pub root: PathBuf,
    /// Impersonation worker threads; one uid's requests occupy at most half of
    /// them at once. 1 to 1024.
    #[arg(long, default_value_t = 8, value_parser = crate::limits::count(crate::limits::MAX_WORKERS))]
    pub workers: usize,
    /// Serve every request as the server, not as the client (for comparison
    /// only).
    #[arg(long)]
    pub no_impersonation: bool,
}

impl FileServiceArgs {
    /// The defaults of the command line, for `root`.
    pub fn new(root: PathBuf) -> FileServiceArgs {
        FileServiceArgs {
            root,
            workers: 8,
            no_impersonation: false,
        }
    }
}

/// The served directory and how requests act on it; shared by a server's
/// connections.
pub struct FileService {
    /// The transport, as the audit trail names it.
    pub transport: Transport,
    /// The impersonation workers.
    pub pool: Arc<ImpersonationPool>,
    /// The served directory (an `O_PATH` descriptor).
    pub root: Arc<OwnedFd>,
    /// Whether requests act as their clients (`false`: `--no-impersonation`, as
    /// the server, for comparison only).
    pub impersonate: bool,
    /// Opens as the client through io_uring personalities, without switching a
    /// worker (`guise serve --io-uring on`).
    pub uring: bool,
    /// One request at a time behind this lock (`--process-lock`, a baseline).
    pub process_lock: Option<Arc<std::sync::Mutex<()>>>,
}

impl FileService {
    /// Serves the directory of `args` for `transport` with its workers
    /// (started here, before anything impersonates), without the io_uring path
    /// or the baselines.
    ///
    /// # Errors
    /// The workers cannot start, or the directory cannot be opened.
    pub fn open(transport: Transport, args: &FileServiceArgs) -> anyhow::Result<FileService> {
        use anyhow::Context;
        let pool = Arc::new(ImpersonationPool::new(args.workers)?);
        let root = &args.root;
        let root = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", root.display()))?;
        Ok(FileService {
            transport,
            pool,
            root: Arc::new(root),
            impersonate: !args.no_impersonation,
            uring: false,
            process_lock: None,
        })
    }

    /// What the server `name` can do, said at start-up: whom it can act as, and
    /// what its workers below Impersonation level can open.
    pub fn report(&self, name: &str) -> String {
        format!(
            "{}; work below Impersonation level runs on workers that {}",
            crate::serve::capabilities_report(name, self.impersonate),
            if self.pool.sandboxed() {
                "the kernel lets open no file (Landlock)"
            } else {
                "only the sentinel identity holds (no Landlock)"
            }
        )
    }

    /// A request's work: as the client on an impersonation worker, which first
    /// checks that the client's level lets it open anything (Windows' rule for a
    /// thread at Identification level); or, with `--no-impersonation`, as the
    /// server.
    pub async fn act<C: Caller, R: Send + 'static>(
        &self,
        caller: &C,
        f: impl FnOnce() -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.act_unexplained(caller, f)
            .await
            .map_err(|e| self.explain_level(caller, e))
    }

    /// [`Self::act`], its errors as they are.
    async fn act_unexplained<C: Caller, R: Send + 'static>(
        &self,
        caller: &C,
        f: impl FnOnce() -> Result<R> + Send + 'static,
    ) -> Result<R> {
        if let (true, Some(lock)) = (self.impersonate, &self.process_lock) {
            // The baseline of a server that switches the whole process: one
            // request at a time, behind one lock.
            let (token, lock) = (caller.token()?, Arc::clone(lock));
            self.pool
                .run(move || {
                    let _one_at_a_time = lock.lock().unwrap_or_else(|p| p.into_inner());
                    token.run_as(|| {
                        guise::thread::check_open_as_client()?;
                        f()
                    })?
                })
                .await?
        } else if self.impersonate {
            caller
                .run_as_client(&self.pool, move || {
                    guise::thread::check_open_as_client()?;
                    f()
                })
                .await?
        } else {
            caller.check_active()?;
            tokio::task::spawn_blocking(f)
                .await
                .map_err(|e| Error::new(ErrorKind::Os, format!("a worker failed: {e}")))?
        }
    }

    /// A request's work that opens as the client, given whose credentials to
    /// open with: with the io_uring path, on a worker that stays the server while
    /// each open goes through the client's personality; otherwise as
    /// [`Self::act`].
    pub async fn act_open<C: Caller, R: Send + 'static>(
        &self,
        caller: &C,
        f: impl FnOnce(Opener<'_>) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        if self.impersonate && self.uring {
            // The worker stays the server, its time counted as the client's.
            let token = caller.token()?;
            let uid = token.unix().uid();
            self.pool
                .run_for(uid, move || f(Opener::As(&token)))
                .await?
                .map_err(|e| self.explain_level(caller, e))
        } else {
            self.act(caller, move || f(Opener::Thread)).await
        }
    }

    /// A request's work on a descriptor already open (which any holder may use
    /// alike): with the io_uring path, on a worker that stays the server;
    /// otherwise as [`Self::act`].
    pub async fn act_fd<C: Caller, R: Send + 'static>(
        &self,
        caller: &C,
        f: impl FnOnce() -> Result<R> + Send + 'static,
    ) -> Result<R> {
        if self.impersonate && self.uring {
            let uid = caller.token()?.unix().uid();
            self.pool.run_for(uid, f).await?
        } else {
            self.act(caller, f).await
        }
    }

    /// The attributes of `path`.
    ///
    /// # Errors
    /// As [`files::stat`], or the act-as-client step's.
    pub async fn stat<C: Caller>(&self, caller: &C, path: String) -> Result<rustix::fs::Stat> {
        let root = Arc::clone(&self.root);
        self.act_open(caller, move |by| files::stat(by, &root, &path))
            .await
    }

    /// The names in the directory `path`.
    ///
    /// # Errors
    /// As [`files::list`], or the act-as-client step's.
    pub async fn list<C: Caller>(&self, caller: &C, path: String) -> Result<Listing> {
        let root = Arc::clone(&self.root);
        self.act_open(caller, move |by| files::list(by, &root, &path))
            .await
    }

    /// Opens the regular file `path` and reads its first chunk from `pos` (at
    /// most `left` bytes), in one job: the file, its size and the chunk.
    ///
    /// # Errors
    /// As [`files::open_regular_by`] and [`files::read_chunk`], or the
    /// act-as-client step's.
    pub async fn open_read<C: Caller>(
        &self,
        caller: &C,
        path: String,
        pos: u64,
        left: u64,
    ) -> Result<(Arc<OwnedFd>, u64, Vec<u8>)> {
        let root = Arc::clone(&self.root);
        self.act_open(caller, move |by| {
            let (fd, size) = files::open_regular_by(by, &root, &path)?;
            let first = files::read_chunk(&fd, pos, left)?;
            Ok((Arc::new(fd), size, first))
        })
        .await
    }

    /// The next chunk of a file [`Self::open_read`] opened.
    ///
    /// # Errors
    /// As [`files::read_chunk`], or the act-as-client step's.
    pub async fn read_next<C: Caller>(
        &self,
        caller: &C,
        fd: &Arc<OwnedFd>,
        pos: u64,
        left: u64,
    ) -> Result<Vec<u8>> {
        let fd = Arc::clone(fd);
        self.act_fd(caller, move || files::read_chunk(&fd, pos, left))
            .await
    }

    /// Begins a write of `path` (a temporary file made as the client).
    ///
    /// # Errors
    /// As [`files::begin_upload`], or the act-as-client step's.
    pub async fn begin_write<C: Caller>(
        &self,
        caller: &C,
        path: String,
        mode: Option<u32>,
    ) -> Result<Arc<Upload>> {
        let root = Arc::clone(&self.root);
        self.act(caller, move || files::begin_upload(&root, &path, mode))
            .await
            .map(Arc::new)
    }

    /// Writes the next chunk of an upload.
    ///
    /// # Errors
    /// As [`Upload::write`], or the act-as-client step's.
    pub async fn write_chunk<C: Caller>(
        &self,
        caller: &C,
        upload: &Arc<Upload>,
        data: Vec<u8>,
    ) -> Result<()> {
        let u = Arc::clone(upload);
        self.act(caller, move || u.write(&data)).await
    }

    /// Makes an upload whole: the target replaced.
    ///
    /// # Errors
    /// As [`Upload::finish`], or the act-as-client step's.
    pub async fn finish_write<C: Caller>(&self, caller: &C, upload: &Arc<Upload>) -> Result<()> {
        let u = Arc::clone(upload);
        self.act(caller, move || u.finish()).await
    }

    /// Gives an upload up: its temporary file removed as the client; the target
    /// stays as it was.
    pub async fn abandon_write<C: Caller>(&self, caller: &C, upload: &Arc<Upload>) {
        let u = Arc::clone(upload);
        let _ = self
            .act(caller, move || {
                u.abandon();
                Ok(())
            })
            .await;
    }

    /// Replaces (or creates) `path` with `data` in one job: begun, written and
    /// made whole, or given up.
    ///
    /// # Errors
    /// As [`Self::begin_write`], [`Self::write_chunk`] and
    /// [`Self::finish_write`].
    pub async fn write_whole<C: Caller>(
        &self,
        caller: &C,
        path: String,
        mode: Option<u32>,
        data: Vec<u8>,
    ) -> Result<()> {
        let root = Arc::clone(&self.root);
        self.act(caller, move || {
            let upload = files::begin_upload(&root, &path, mode)?;
            let r = upload.write(&data).and_then(|()| upload.finish());
            if r.is_err() {
                upload.abandon();
            }
            r
        })
        .await
    }

    /// The level a worker really gets for `caller`: one impersonates it, and
    /// reverts at once; with `--no-impersonation`, Impersonation (the server
    /// acts as itself).
    ///
    /// # Errors
    /// As the caller's token, or [`guise::Token::impersonate`].
    pub async fn acting_level<C: Caller>(&self, caller: &C) -> Result<ImpersonationLevel> {
        if !self.impersonate {
            return Ok(ImpersonationLevel::Impersonation);
        }
        let token = caller.token()?;
        let uid = token.unix().uid();
        self.pool
            .run_for(uid, move || token.impersonate().map(|g| g.level()))
            .await?
    }

    /// The identity that acts for `caller`: the token's (at the level a worker
    /// really gets) when the service impersonates, the server's own otherwise.
    pub fn acting_identity<C: Caller>(&self, caller: &C) -> (u32, u32, ImpersonationLevel) {
        files::acting_identity(caller.token().ok().as_ref(), self.impersonate)
    }

    /// An `ERROR_BAD_IMPERSONATION_LEVEL` of a request said so that its client
    /// knows what to do: a client that asked for less than Impersonation is told
    /// to ask for it, and how on this transport; a client that asked for it and
    /// was held lower is told that the server holds it there. Any other error as
    /// it is.
    pub fn explain_level<C: Caller>(&self, caller: &C, e: Error) -> Error {
        if e.kind() != ErrorKind::BadImpersonationLevel {
            return e;
        }
        let (uid, _, acting) = self.acting_identity(caller);
        let asked = caller.asked_level();
        let message = if asked < ImpersonationLevel::Impersonation {
            format!(
                "at {acting} level nothing is opened for the client: ask for Impersonation ({})",
                how_to_ask(self.transport)
            )
        } else {
            format!(
                "the client asked for {asked} level, but this server acts as uid {uid} at {acting} level at most, and so opens nothing for it (a server without CAP_SETUID and CAP_SETGID serves only its own uid; an identity the server cannot prove whole is held at Identification)"
            )
        };
        match e.errno() {
            Some(n) => Error::os(ErrorKind::BadImpersonationLevel, message, n),
            None => Error::new(ErrorKind::BadImpersonationLevel, message),
        }
    }

    /// A denial by the kernel that names the identity that acted and the right
    /// it lacked (`ERROR_ACCESS_DENIED: ... uid 61001 at Impersonation level
    /// lacks FILE_READ_DATA`); any other error, and a refusal by the service's
    /// own rules (a path outside the served directory), as it is.
    pub fn name_denial<C: Caller>(&self, caller: &C, e: Error, op: &str) -> Error {
        if !guise::audit::lacks_right(&e) {
            return e;
        }
        let (uid, gid, level) = self.acting_identity(caller);
        let message = format!(
            "{}: uid {uid} (gid {gid}) at {level} level lacks {}",
            e.message(),
            files::access_of(op)
        );
        match e.errno() {
            Some(n) => Error::os(ErrorKind::AccessDenied, message, n),
            None => Error::new(ErrorKind::AccessDenied, message),
        }
    }

    /// The audit line of a request of `caller`, with the identity that acts for
    /// it now; logged once its outcome is known ([`Audit::log`]).
    pub fn audit<C: Caller>(&self, caller: &C, op: &str, path: &str) -> Audit {
        self.audit_as(caller.token().ok().as_ref(), caller.peer(), op, path)
    }

    /// The audit line of a request of `client` that acts as `token` (taken when
    /// the request began: the identity dynamic tracking gave it then).
    pub fn audit_as(
        &self,
        token: Option<&Token>,
        client: &PeerIdentity,
        op: &str,
        path: &str,
    ) -> Audit {
        let (uid, gid, level) = files::acting_identity(token, self.impersonate);
        Audit {
            transport: self.transport,
            uid,
            gid,
            level,
            client_uid: client.uid(),
            pid: client.pid(),
            op: op.to_owned(),
            path: path.to_owned(),
        }
    }
}

/// How a client of `transport` asks for Impersonation level.
pub fn how_to_ask(transport: Transport) -> &'static str {
    match transport {
        Transport::Pipe => "`--level impersonation`, or `SecurityQos::level` in a program",
        Transport::Dbus => {
            "the `level` option of the method's …WithOptions form, e.g. `busctl call org.guise.Files1 /org/guise/Files1 org.guise.Files1 ReadWithOptions 'sa{sv}' PATH 1 level s impersonation`, or SetQualityOfService(\"impersonation\") first on the same connection"
        }
        _ => {
            "`guise rpc call --level impersonation`, or the `guise-impersonation-level: impersonation` metadata"
        }
    }
}

/// A request's audit line, waiting for its outcome.
#[derive(Clone, Debug)]
pub struct Audit {
    transport: Transport,
    uid: u32,
    gid: u32,
    level: ImpersonationLevel,
    client_uid: u32,
    pid: i32,
    op: String,
    path: String,
}

impl Audit {
    /// Logs the request with its outcome and the bytes it moved.
    pub fn log<T>(&self, r: &Result<T>, bytes: u64) {
        let missing = r.as_ref().err().is_some_and(guise::audit::lacks_right);
        self.log_result(guise::audit::result_of(r), missing, bytes);
    }

    /// Logs the request with `result` (`ok` or a Win32 error name), whether it
    /// was refused for lacking the op's right ([`guise::audit::lacks_right`]),
    /// and the bytes it moved.
    pub fn log_result(&self, result: &str, missing: bool, bytes: u64) {
        let access = files::access_of(&self.op);
        guise::audit::request(&guise::audit::Request {
            transport: self.transport,
            op: &self.op,
            path: &self.path,
            uid: self.uid,
            gid: self.gid,
            level: self.level,
            client_uid: self.client_uid,
            pid: self.pid,
            access,
            bytes,
            result,
            missing: missing.then_some(access),
        });
    }
}
