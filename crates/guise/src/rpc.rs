//! RPC: a server thread impersonates the caller of a gRPC call
//! ([`impersonate_client`], RpcImpersonateClient), then reverts
//! ([`revert_to_self`], RpcRevertToSelf, or the guard), on tonic servers that
//! listen on Unix sockets, or on TCP for clients that authenticate with Kerberos
//! (`KerberosIncoming` and `connect_kerberos`, with the `kerberos` feature: see
//! `crate::kerberos`).
//!
//! The transport is a thin adapter over the client-identity core
//! ([`crate::client`]): the identity is the kernel's view of the connection
//! ([`UnixIncoming`] reads it at `accept`), the level is what the call's metadata
//! asks for (`guise-impersonation-level: anonymous|identification|impersonation|
//! delegation`; absent: identification), lowered to the server's maximum and never
//! raised, and every call counts as a message read. [`RpcLayer`], a tower layer,
//! attaches each call's context ([`RpcCall`]) to the request:
//!
//! ```no_run
//! # #[cfg(feature = "rpc")]
//! # async fn serve<S>(service: S) -> guise::Result<()>
//! # where S: tonic::server::NamedService + Clone + Send + Sync + 'static
//! #     + tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = std::convert::Infallible>,
//! #     S::Future: Send + 'static,
//! # {
//! use guise::rpc::{RpcLayer, RpcOptions, UnixIncoming};
//! let incoming = UnixIncoming::bind("/run/files.sock".as_ref(), RpcOptions::default())?;
//! guise::rpc::server()
//!     .layer(RpcLayer::default())
//!     .add_service(service)
//!     .serve_with_incoming(incoming)
//!     .await
//!     .map_err(|e| guise::Error::new(guise::ErrorKind::Os, e.to_string()))?;
//! # Ok(())
//! # }
//! ```
//!
//! A handler is async and its task moves between threads, so the impersonation
//! itself happens on an [`ImpersonationPool`] worker: [`RpcCall::run_as_client`]
//! runs a closure there as the caller, or a closure given to
//! [`ImpersonationPool::run`] calls [`impersonate_client`] with the call's handle
//! (any thread may impersonate any active call by its handle, and must then
//! revert with that handle: [`revert_to_self_ex`], RpcRevertToSelfEx).
//! [`impersonate_client`] refuses on a thread of a tokio runtime, whose next task
//! could be another caller's.
//!
//! A call is active from the moment the layer sees it until its response body
//! ends or is dropped (a client that cancels ends it). A handle of a finished call,
//! like no call at all, gives [`ErrorKind::RpcNoCallActive`]
//! (`RPC_S_NO_CALL_ACTIVE`).
//!
//! # Hostile clients
//! [`UnixIncoming`] holds its clients within [`RpcOptions::limits`], by the
//! policy of [`crate::admission`]: a connection over its uid's limit is closed at
//! once; over the limit of all connections, the connection quiet the longest
//! (no byte either way) is closed to make room. A connection with no traffic
//! either way for the idle timeout is closed (a client that stops reading does
//! not keep it open). [`RpcLayer`] refuses a call over the caller's uid's share
//! of calls in flight, and [`server`] limits the streams of a connection. The socket
//! file has its mode from the start and never replaces another's file
//! ([`crate::pipe::PipeServer::bind`]'s rules).

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

mod front;

/// Not part of the API: runs `input`, a client's bytes, through the front every
/// gRPC connection's bytes pass ([`RpcStream`]), fed in pieces of `step` bytes;
/// what the server would read, or the error that closes the connection. For the
/// fuzz target.
#[doc(hidden)]
pub fn fuzz_front(input: &[u8], step: usize) -> io::Result<Vec<u8>> {
    let mut front = front::Front::default();
    let mut out = Vec::new();
    for piece in input.chunks(step.max(1)) {
        front.feed(piece, &mut out)?;
    }
    Ok(out)
}

use crate::admission::{AcceptBackoff, Admitted, CallsInFlight, Connections, InFlightCall, Limits};
use crate::audit::Transport;
use crate::client::{ClientContext, PeerIdentity, PeerPolicy, SecurityQos};
use crate::error::{Error, ErrorKind, Result};
use crate::listener::{RateLimited, io_err};
use crate::pool::ImpersonationPool;
use crate::thread::Impersonation;
use crate::token::{ImpersonationLevel, Luid, Token};

/// The request metadata in which a client says how far the server may act as it.
pub const LEVEL_METADATA: &str = "guise-impersonation-level";

/// Options of [`UnixIncoming`].
#[derive(Clone)]
#[non_exhaustive]
pub struct RpcOptions {
    /// The mode of the socket file (default `0o666`: any local user may connect;
    /// the kernel tells the server who they are).
    pub mode: u32,
    /// How many connections are kept open and for how long: the connections
    /// and the idle timeout of [`Limits`] (see [`crate::admission`] for the
    /// defaults and the policy). A connection is idle since the last byte moved
    /// either way.
    pub limits: Limits,
    /// A hook that may refuse clients, called once per connection.
    pub policy: Option<PeerPolicy>,
}

impl Default for RpcOptions {
    fn default() -> Self {
        RpcOptions {
            mode: 0o666,
            limits: Limits::default(),
            policy: None,
        }
    }
}

impl std::fmt::Debug for RpcOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcOptions")
            .field("mode", &format_args!("{:o}", self.mode))
            .field("limits", &self.limits)
            .field("policy", &self.policy.is_some())
            .finish()
    }
}

/// The kernel's view of the client of a connection, as tonic hands it to each
/// request (`Connected::ConnectInfo`).
#[derive(Clone, Debug)]
pub struct RpcPeer(pub Arc<PeerIdentity>);

static CREDENTIALS_WARNING: RateLimited = RateLimited::new();

/// The connections of a Unix socket, each with the kernel's view of its client: the
/// incoming stream to give tonic's `Server::serve_with_incoming`.
pub struct UnixIncoming {
    listener: tokio::net::UnixListener,
    options: RpcOptions,
    connections: Connections,
    path: Option<PathBuf>,
    pause: Option<Pin<Box<Sleep>>>,
    backoff: AcceptBackoff,
}

impl std::fmt::Debug for UnixIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixIncoming")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("connections", &self.connections.len())
            .finish()
    }
}

impl UnixIncoming {
    /// Listens on the socket file `path`, made with [`RpcOptions::mode`] from the
    /// start. A path that exists must be this user's own stale socket. Call it
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// [`ErrorKind::AccessDenied`] for a path that may not be taken;
    /// [`ErrorKind::Os`] if the socket cannot be made.
    pub fn bind(path: &Path, options: RpcOptions) -> Result<UnixIncoming> {
        let std = crate::listener::bind_path(path, options.mode)?;
        let mut incoming = Self::from_listener(std, options)?;
        incoming.path = Some(path.to_owned());
        Ok(incoming)
    }

    /// Serves on a socket that is already listening (one inherited from a service
    /// manager, say). No socket file is removed when it is dropped.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the socket cannot be used.
    pub fn from_listener(
        listener: std::os::unix::net::UnixListener,
        options: RpcOptions,
    ) -> Result<UnixIncoming> {
        listener
            .set_nonblocking(true)
            .map_err(|e| io_err("the listener", &e))?;
        let listener =
            tokio::net::UnixListener::from_std(listener).map_err(|e| io_err("the listener", &e))?;
        Ok(UnixIncoming {
            listener,
            connections: Connections::new(options.limits.clone()),
            options,
            path: None,
            pause: None,
            backoff: AcceptBackoff::new(),
        })
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// Makes a connection of an accepted stream, or `None` if it is not served.
    fn admit(&self, stream: tokio::net::UnixStream) -> Option<RpcStream> {
        use std::os::fd::AsFd;
        let peer = match crate::client::admit(stream.as_fd(), self.options.policy.as_ref()) {
            Ok(Some(peer)) => peer,
            Ok(None) => return None,
            Err(e) => {
                CREDENTIALS_WARNING
                    .warn(|n| tracing::warn!(%e, suppressed = n, "a client without credentials"));
                return None;
            }
        };
        let slot = match self.connections.admit(peer.uid) {
            Ok(slot) => slot,
            Err(why) => {
                crate::audit::connection_refused(Transport::Grpc, peer.uid, peer.pid, why.limit());
                return None;
            }
        };
        Some(RpcStream::new(stream, peer, slot, &self.connections))
    }
}

impl Drop for UnixIncoming {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl tokio_stream::Stream for UnixIncoming {
    type Item = io::Result<RpcStream>;

    /// The next connection served. Errors the kernel reports for a lack of
    /// resources or a client gone before it was accepted are waited out as
    /// [`crate::admission`] says (out of descriptors, the connection idle the
    /// longest is closed; else a growing pause, up to one second), with a
    /// rate-limited warning; they never end the stream.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(pause) = self.pause.as_mut() {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            match ready!(self.listener.poll_accept(cx)) {
                Ok((stream, _)) => {
                    self.backoff.succeeded();
                    if let Some(conn) = self.admit(stream) {
                        return Poll::Ready(Some(Ok(conn)));
                    }
                }
                Err(e) => {
                    let this = &mut *self;
                    match this.backoff.after(&e, &this.connections) {
                        Some(pause) => this.pause = Some(Box::pin(tokio::time::sleep(pause))),
                        None => return Poll::Ready(Some(Err(e))),
                    }
                }
            }
        }
    }
}

#[cfg(feature = "kerberos")]
use crate::admission::{HandshakeSlot, Handshakes};
#[cfg(feature = "kerberos")]
#[cfg_attr(docsrs, doc(cfg(feature = "kerberos")))]
pub use crate::admission::{
    MAX_HANDSHAKES, MAX_HANDSHAKES_PER_ADDRESS, MAX_HANDSHAKES_PER_NETWORK,
};

/// A Kerberos-authenticated connection from the network.
#[cfg(feature = "kerberos")]
#[cfg_attr(docsrs, doc(cfg(feature = "kerberos")))]
pub type KerberosStream = RpcStream<crate::kerberos::GssStream<tokio::net::TcpStream>>;

/// The connections of a TCP socket, each authenticated with Kerberos
/// ([`crate::kerberos::Acceptor`]) before tonic sees a byte of it: the incoming
/// stream to give tonic's `Server::serve_with_incoming` for remote clients.
///
/// Handshakes run on tasks of their own, each within
/// [`crate::kerberos::KerberosOptions::handshake_timeout`], at most
/// [`MAX_HANDSHAKES`] at once, [`MAX_HANDSHAKES_PER_NETWORK`] from one network
/// and [`MAX_HANDSHAKES_PER_ADDRESS`] from one address. A new connection is
/// always taken: where a limit is reached, the oldest unfinished handshake of the
/// address, of the network, or (all places taken) of the network with the most,
/// is closed. Stalled connections, from one host or many, thus take places from
/// each other, and a client alone on its network keeps its place for as long as
/// the busiest network holds more. An
/// authenticated client is then held to [`RpcOptions`]' limits by its local uid,
/// its [`RpcOptions::policy`] and idle timeout, as on a Unix socket.
#[cfg(feature = "kerberos")]
#[cfg_attr(docsrs, doc(cfg(feature = "kerberos")))]
pub struct KerberosIncoming {
    connections: tokio::sync::mpsc::Receiver<KerberosStream>,
    local: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

#[cfg(feature = "kerberos")]
impl std::fmt::Debug for KerberosIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosIncoming")
            .field("local", &self.local)
            .finish()
    }
}

#[cfg(feature = "kerberos")]
impl KerberosIncoming {
    /// Listens on `address` (`host:port`) and authenticates each connection with
    /// `acceptor`. Call it inside a tokio runtime.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the address cannot be listened on.
    pub async fn bind(
        address: &str,
        acceptor: crate::kerberos::Acceptor,
        options: RpcOptions,
    ) -> Result<KerberosIncoming> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| io_err(&format!("listening on {address}"), &e))?;
        Self::from_tokio(listener, acceptor, options)
    }

    /// Serves a TCP socket that is already listening (one inherited from a
    /// service manager, say). Call it inside a tokio runtime.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the socket cannot be used.
    pub fn from_listener(
        listener: std::net::TcpListener,
        acceptor: crate::kerberos::Acceptor,
        options: RpcOptions,
    ) -> Result<KerberosIncoming> {
        listener
            .set_nonblocking(true)
            .map_err(|e| io_err("the listener", &e))?;
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|e| io_err("the listener", &e))?;
        Self::from_tokio(listener, acceptor, options)
    }

    fn from_tokio(
        listener: tokio::net::TcpListener,
        acceptor: crate::kerberos::Acceptor,
        options: RpcOptions,
    ) -> Result<KerberosIncoming> {
        let local = listener
            .local_addr()
            .map_err(|e| io_err("the listener's address", &e))?;
        let (tx, connections) = tokio::sync::mpsc::channel(MAX_HANDSHAKES);
        let task = tokio::spawn(authenticate_connections(
            listener,
            Arc::new(acceptor),
            options,
            tx,
        ));
        Ok(KerberosIncoming {
            connections,
            local,
            task,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local
    }
}

#[cfg(feature = "kerberos")]
impl Drop for KerberosIncoming {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(feature = "kerberos")]
impl tokio_stream::Stream for KerberosIncoming {
    type Item = io::Result<KerberosStream>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.connections.poll_recv(cx).map(|c| c.map(Ok))
    }
}

/// Accepts TCP connections for ever, authenticating each on a task of its own,
/// and sends those served to `tx`.
#[cfg(feature = "kerberos")]
async fn authenticate_connections(
    listener: tokio::net::TcpListener,
    acceptor: Arc<crate::kerberos::Acceptor>,
    options: RpcOptions,
    tx: tokio::sync::mpsc::Sender<KerberosStream>,
) {
    let handshakes: Arc<Mutex<Handshakes<tokio::task::AbortHandle>>> = Arc::default();
    let connections = Connections::new(options.limits.clone());
    let mut backoff = AcceptBackoff::new();
    loop {
        let (stream, address) = match listener.accept().await {
            Ok(accepted) => {
                backoff.succeeded();
                accepted
            }
            Err(e) => {
                tokio::time::sleep(backoff.after_any(&e, &connections)).await;
                continue;
            }
        };
        let (slot, mut table, evicted) = HandshakeSlot::admit(&handshakes, address.ip());
        let id = slot.id();
        if let Some((old, why)) = &evicted {
            crate::audit::handshake_evicted(old.address, why.limit());
        }
        let _ = stream.set_nodelay(true);
        let (acceptor, options, connections, tx) = (
            Arc::clone(&acceptor),
            options.clone(),
            connections.clone(),
            tx.clone(),
        );
        let task = tokio::spawn(async move {
            let admit = |peer: &PeerIdentity| {
                if let Some(policy) = &options.policy
                    && !policy(peer)
                {
                    return Err(Error::new(
                        ErrorKind::AccessDenied,
                        "the server's policy refuses this client",
                    ));
                }
                connections.admit(peer.uid).map_err(|why| {
                    crate::audit::connection_refused(
                        Transport::Grpc,
                        peer.uid,
                        peer.pid,
                        why.limit(),
                    );
                    Error::new(
                        ErrorKind::NotEnoughQuota,
                        "too many connections of this account",
                    )
                })
            };
            let accepted = acceptor.accept_with(stream, address, admit).await;
            // Over: no longer one to close for room.
            drop(slot);
            let Ok((io, peer, slot)) = accepted else {
                return;
            };
            let _ = tx.send(RpcStream::new(io, peer, slot, &connections)).await;
        });
        table.set_task(id, task.abort_handle());
        drop(table);
        // Closed once the table is free: its slot, dropped with the task, takes
        // the lock.
        if let Some(task) = evicted.and_then(|(old, _)| old.task) {
            task.abort();
        }
    }
}

/// One client's connection: the socket, the kernel's view of the client, and the
/// idle clock. Reads and writes fail once no byte has moved either way for the
/// idle timeout, also while a write waits for a client that stopped reading.
pub struct RpcStream<S = tokio::net::UnixStream> {
    io: S,
    /// What the client's bytes become before the server reads them.
    front: front::Front,
    /// Bytes the front gave that the server has not read yet, from `ready_at`.
    ready: Vec<u8>,
    ready_at: usize,
    peer: RpcPeer,
    slot: Admitted,
    idle: Option<Duration>,
    /// The last time bytes moved either way.
    last: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether its eviction was recorded.
    told_evicted: bool,
}

impl<S> std::fmt::Debug for RpcStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcStream")
            .field("peer", &self.peer)
            .finish()
    }
}

impl<S> RpcStream<S> {
    /// A connection just admitted, in its place among `connections`, with its
    /// idle clock started.
    fn new(io: S, peer: PeerIdentity, slot: Admitted, connections: &Connections) -> Self {
        RpcStream {
            io,
            front: front::Front::default(),
            ready: Vec::new(),
            ready_at: 0,
            peer: RpcPeer(Arc::new(peer)),
            slot,
            idle: connections.limits().idle_timeout,
            last: Instant::now(),
            timer: None,
            told_evicted: false,
        }
    }

    /// Who the client is: the kernel's view of a local client, or what a network
    /// client proved ([`PeerIdentity::network`]).
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer.0
    }

    /// Bytes moved: the connection is idle from now.
    fn moved(&mut self) {
        self.last = Instant::now();
        self.slot.set_idle(true);
    }

    /// Fails once the server closed the connection to make room.
    fn poll_evicted(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        ready!(self.slot.poll_evicted(cx));
        if !self.told_evicted {
            self.told_evicted = true;
            let p = &self.peer.0;
            crate::audit::client_evicted(Transport::Grpc, p.uid, p.pid, "connections");
        }
        Poll::Ready(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the connection was closed to make room for another",
        ))
    }

    /// Fails once the connection has moved no bytes for the idle timeout.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        // A timeout too large to reckon with is no timeout.
        let Some(deadline) = self.idle.and_then(|idle| self.last.checked_add(idle)) else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        ready!(timer.as_mut().poll(cx));
        tracing::debug!(uid = self.peer.0.uid, "closing an idle connection");
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the connection was idle too long",
        ))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RpcStream<S> {
    /// The client's bytes as the front (`rpc::front`) passes them: header blocks
    /// with a valid `:authority`, everything else as it came.
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Poll::Ready(e) = self.poll_evicted(cx) {
            return Poll::Ready(Err(e));
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = &mut *self;
        while this.ready_at == this.ready.len() {
            this.ready.clear();
            this.ready_at = 0;
            let mut chunk = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    this.moved();
                    if let Err(e) = this.front.feed(read.filled(), &mut this.ready) {
                        tracing::debug!(uid = this.peer.0.uid, %e, "closing a connection");
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return this.poll_idle(cx).map(Err),
            }
        }
        let n = buf.remaining().min(this.ready.len() - this.ready_at);
        buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
        this.ready_at += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RpcStream<S> {
    /// A write the client does not take (it stopped reading) counts as no
    /// traffic: after the idle timeout it fails, so a client cannot hold the
    /// connection open by never reading.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(e) = self.poll_evicted(cx) {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<S> tonic::transport::server::Connected for RpcStream<S> {
    type ConnectInfo = RpcPeer;

    fn connect_info(&self) -> RpcPeer {
        self.peer.clone()
    }
}

/// What the server knows of one call.
#[derive(Debug)]
struct CallState {
    id: u64,
    client: ClientContext,
    active: AtomicBool,
    /// The call's place among its uid's calls in flight: given back only when
    /// the last handle of the call goes, a job still queued for it included (a
    /// cancelled call whose job waits for a worker still counts).
    _counted: InFlightCall,
}

/// A handle to a call (the binding handle of RpcImpersonateClient, the call handle
/// of RpcRevertToSelfEx): the caller's context and whether the call is still
/// active. It can be sent to any thread.
#[derive(Clone, Debug)]
pub struct RpcCall(Arc<CallState>);

tokio::task_local! {
    static CURRENT: RpcCall;
}

thread_local! {
    /// The call this thread impersonates, and the id of the token it put on.
    static IMPERSONATING: Cell<Option<(u64, Luid)>> = const { Cell::new(None) };
}

fn no_call(why: &str) -> Error {
    Error::new(ErrorKind::RpcNoCallActive, why.to_owned())
}

impl RpcCall {
    /// The call a request belongs to.
    ///
    /// # Errors
    /// [`ErrorKind::RpcNoCallActive`] if the request came through no [`RpcLayer`].
    pub fn of<T>(request: &tonic::Request<T>) -> Result<RpcCall> {
        request
            .extensions()
            .get::<RpcCall>()
            .cloned()
            .ok_or_else(|| {
                no_call(
                    "the request carries no call context: serve it through guise::rpc::RpcLayer",
                )
            })
    }

    /// The call the running handler serves (`RpcServerInqCallAttributes` of the
    /// current call).
    ///
    /// # Errors
    /// [`ErrorKind::RpcNoCallActive`] outside a handler's own future.
    pub fn current() -> Result<RpcCall> {
        CURRENT
            .try_with(RpcCall::clone)
            .map_err(|_| no_call("no remote procedure call is active here"))
    }

    /// A number that tells this call from the others of the process.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Whether the call is still active (its response has not ended).
    pub fn is_active(&self) -> bool {
        self.0.active.load(Ordering::Acquire)
    }

    /// The kernel's view of the caller's connection.
    pub fn peer(&self) -> &PeerIdentity {
        self.0.client.peer()
    }

    /// The caller's quality of service (its level as it asked for it).
    pub fn qos(&self) -> SecurityQos {
        self.0.client.qos()
    }

    /// The level the server may impersonate the caller at.
    pub fn level(&self) -> ImpersonationLevel {
        self.0.client.level()
    }

    /// The caller's token at [`Self::level`] (for access checks of the server's
    /// own objects, or to impersonate).
    ///
    /// # Errors
    /// [`ErrorKind::RpcNoCallActive`] once the call has finished; otherwise as
    /// [`ClientContext::token`].
    pub fn token(&self) -> Result<Token> {
        if !self.is_active() {
            return Err(no_call("the call has finished"));
        }
        self.0.client.token()
    }

    /// Makes the calling thread impersonate the caller (RpcImpersonateClient with
    /// this call's handle); see [`impersonate_client`].
    ///
    /// # Errors
    /// As [`impersonate_client`].
    #[doc(alias = "RpcImpersonateClient")]
    pub fn impersonate_client(&self) -> Result<RpcImpersonation> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::new(
                ErrorKind::CannotImpersonate,
                "a thread of an async runtime never impersonates: run the work on an ImpersonationPool",
            ));
        }
        let token = self.token()?;
        let guard = token.impersonate()?;
        let tag = crate::thread::current_token_id().map(|t| (self.0.id, t));
        let previous = IMPERSONATING.replace(tag);
        Ok(RpcImpersonation {
            guard: Some(guard),
            tag,
            previous,
        })
    }

    /// Runs `f` on a worker of `pool` that impersonates the caller, and returns its
    /// result: the async form of [`Self::impersonate_client`] for a handler.
    ///
    /// # Errors
    /// [`ErrorKind::RpcNoCallActive`] once the call has finished (also when it
    /// finishes before a worker takes the job up); otherwise as
    /// [`ImpersonationPool::run_as`].
    #[doc(alias = "RpcImpersonateClient")]
    pub async fn run_as_client<R: Send + 'static>(
        &self,
        pool: &ImpersonationPool,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        // The call may end while the job waits for a worker: checked again there,
        // once the worker impersonates, before `f` runs.
        let call = self.clone();
        pool.run_as(self.token()?, move || call.is_active().then(f))
            .await?
            .ok_or_else(|| no_call("the call finished before a worker took it up"))
    }
}

/// Makes the calling thread impersonate the caller of `request`
/// ([`RpcImpersonateClient`]) until the guard is dropped or
/// [`revert_to_self`] / [`revert_to_self_ex`] is called. Any thread that is not a
/// thread of an async runtime may impersonate any active call: a worker of an
/// [`ImpersonationPool`] given the call's [`RpcCall`] handle, typically. Without
/// SeImpersonatePrivilege the thread gets Identification level (see
/// [`crate::thread`]).
///
/// # Errors
/// - [`ErrorKind::RpcNoCallActive`] if the request came through no [`RpcLayer`],
///   or its call has finished.
/// - [`ErrorKind::CannotImpersonate`] on a thread of an async runtime (a tokio
///   worker or blocking thread), whose next task could be another client's.
/// - As [`Token::impersonate`].
///
/// [`RpcImpersonateClient`]: https://learn.microsoft.com/en-us/windows/win32/api/rpcdce/nf-rpcdce-rpcimpersonateclient
#[doc(alias = "RpcImpersonateClient")]
pub fn impersonate_client<T>(request: &tonic::Request<T>) -> Result<RpcImpersonation> {
    RpcCall::of(request)?.impersonate_client()
}

/// The call this thread impersonates now, if any.
fn impersonated_call() -> Option<u64> {
    let (call, token) = IMPERSONATING.get()?;
    (crate::thread::current_token_id() == Some(token)).then_some(call)
}

/// Ends the calling thread's impersonation of a caller ([`RpcRevertToSelf`]): the
/// thread has its own credentials again (as [`crate::thread::revert_to_self`]);
/// a live [`RpcImpersonation`] guard then restores nothing. If the credentials
/// cannot be restored the process aborts.
///
/// # Errors
/// [`ErrorKind::RpcNoCallActive`] if the thread impersonates no caller.
///
/// [`RpcRevertToSelf`]: https://learn.microsoft.com/en-us/windows/win32/api/rpcdce/nf-rpcdce-rpcreverttoself
#[doc(alias = "RpcRevertToSelf")]
pub fn revert_to_self() -> Result<()> {
    if impersonated_call().is_none() {
        return Err(no_call("this thread impersonates no caller"));
    }
    end_impersonation()
}

/// Ends the calling thread's impersonation of the caller of `call`
/// ([`RpcRevertToSelfEx`]): for a thread that impersonated a call other than one it
/// was dispatched for. As [`revert_to_self`] otherwise.
///
/// # Errors
/// [`ErrorKind::RpcNoCallActive`] if the thread does not impersonate that call.
///
/// [`RpcRevertToSelfEx`]: https://learn.microsoft.com/en-us/windows/win32/api/rpcdce/nf-rpcdce-rpcreverttoselfex
#[doc(alias = "RpcRevertToSelfEx")]
pub fn revert_to_self_ex(call: &RpcCall) -> Result<()> {
    if impersonated_call() != Some(call.0.id) {
        return Err(no_call(
            "this thread does not impersonate the caller of that call",
        ));
    }
    end_impersonation()
}

fn end_impersonation() -> Result<()> {
    IMPERSONATING.set(None);
    crate::thread::revert_to_self()
}

/// The calling thread impersonates the caller of a call until this guard is
/// dropped (RpcRevertToSelf), or [`revert_to_self`] / [`revert_to_self_ex`] ends
/// it first. Like [`Impersonation`], it cannot leave its thread.
#[must_use = "the thread reverts as soon as the guard is dropped"]
#[derive(Debug)]
pub struct RpcImpersonation {
    guard: Option<Impersonation>,
    /// The call and token this guard put on the thread.
    tag: Option<(u64, Luid)>,
    /// What the thread impersonated before (guards nest).
    previous: Option<(u64, Luid)>,
}

impl RpcImpersonation {
    /// The level the thread got.
    pub fn level(&self) -> ImpersonationLevel {
        self.guard
            .as_ref()
            .map_or(ImpersonationLevel::Anonymous, Impersonation::level)
    }

    /// Ends the impersonation now ([`RpcRevertToSelf`]); the same as dropping the
    /// guard.
    ///
    /// [`RpcRevertToSelf`]: https://learn.microsoft.com/en-us/windows/win32/api/rpcdce/nf-rpcdce-rpcreverttoself
    #[doc(alias = "RpcRevertToSelf")]
    pub fn revert(self) {}
}

impl Drop for RpcImpersonation {
    /// Puts back what the thread impersonated before, as the inner guard does for
    /// the credentials; a guard whose impersonation was already ended (by
    /// [`revert_to_self`], say) changes nothing.
    fn drop(&mut self) {
        if self.tag.is_some() && IMPERSONATING.get() == self.tag {
            IMPERSONATING.set(self.previous);
        }
        drop(self.guard.take());
    }
}

/// The tower layer that attaches each call's context ([`RpcCall`]) to its request;
/// put it on a tonic server that serves a [`UnixIncoming`]. A call whose caller the
/// kernel did not identify is refused (`UNAUTHENTICATED`), one that asks for an
/// unknown level too (`INVALID_ARGUMENT`), and one over the caller's uid's share of
/// calls in flight (`RESOURCE_EXHAUSTED`).
#[derive(Clone, Debug)]
pub struct RpcLayer {
    max_level: ImpersonationLevel,
    max_calls_per_uid: usize,
    in_flight: CallsInFlight,
}

pub use crate::admission::DEFAULT_MAX_CALLS_PER_UID;

impl Default for RpcLayer {
    /// Callers may allow up to Delegation; each uid may have
    /// [`DEFAULT_MAX_CALLS_PER_UID`] calls in flight.
    fn default() -> Self {
        RpcLayer {
            max_level: ImpersonationLevel::Delegation,
            max_calls_per_uid: DEFAULT_MAX_CALLS_PER_UID,
            in_flight: CallsInFlight::default(),
        }
    }
}

impl RpcLayer {
    /// A layer that impersonates callers at `max_level` at most, whatever they
    /// allow.
    pub fn with_max_level(max_level: ImpersonationLevel) -> Self {
        RpcLayer {
            max_level,
            ..RpcLayer::default()
        }
    }

    /// The most calls one uid may have in flight at once (at least 1); a call over
    /// it is refused with `RESOURCE_EXHAUSTED`, so that no one user holds every
    /// worker, descriptor or stream.
    pub fn max_calls_per_uid(mut self, max: usize) -> Self {
        self.max_calls_per_uid = max.max(1);
        self
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            max_level: self.max_level,
            max_calls_per_uid: self.max_calls_per_uid,
            in_flight: self.in_flight.clone(),
        }
    }
}

/// The service [`RpcLayer`] makes.
#[derive(Clone, Debug)]
pub struct RpcService<S> {
    inner: S,
    max_level: ImpersonationLevel,
    max_calls_per_uid: usize,
    in_flight: CallsInFlight,
}

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// The level a call's metadata asks for.
fn requested_level(
    headers: &http::HeaderMap,
) -> std::result::Result<ImpersonationLevel, tonic::Status> {
    let mut values = headers.get_all(LEVEL_METADATA).iter();
    let Some(value) = values.next() else {
        return Ok(SecurityQos::default().level);
    };
    if values.next().is_some() {
        return Err(tonic::Status::invalid_argument(format!(
            "{LEVEL_METADATA} is given more than once"
        )));
    }
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            tonic::Status::invalid_argument(format!(
                "{LEVEL_METADATA} must be anonymous, identification, impersonation or delegation"
            ))
        })
}

impl<S> RpcService<S> {
    fn call_for<B>(
        &self,
        request: &http::Request<B>,
    ) -> std::result::Result<RpcCall, tonic::Status> {
        let peer = request.extensions().get::<RpcPeer>().ok_or_else(|| {
            tonic::Status::unauthenticated(
                "the caller's identity is unknown: the server must accept through guise::rpc::UnixIncoming",
            )
        })?;
        let level = requested_level(request.headers())?;
        // Given back when the call's last handle goes.
        let counted = self
            .in_flight
            .admit(Transport::Grpc, &peer.0, self.max_calls_per_uid)
            .map_err(|e| tonic::Status::resource_exhausted(e.message()))?;
        let mut client = ClientContext::new(Arc::clone(&peer.0), self.max_level);
        client.set_qos(SecurityQos {
            level,
            ..SecurityQos::default()
        });
        // The call's request has arrived: it counts as a message read.
        client.message_received(None);
        Ok(RpcCall(Arc::new(CallState {
            id: NEXT_CALL.fetch_add(1, Ordering::Relaxed),
            client,
            active: AtomicBool::new(true),
            _counted: counted,
        })))
    }
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for RpcService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<CallBody<ResBody>>;
    type Error = S::Error;
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.call_for(&request) {
            Ok(call) => {
                request.extensions_mut().insert(call.clone());
                let active = ActiveCall { call: call.clone() };
                // The call is current while the inner services (interceptors
                // among them) are called and while their future runs.
                let future = CURRENT.sync_scope(call.clone(), || self.inner.call(request));
                CallFuture {
                    inner: CallFutureInner::Call {
                        future: CURRENT.scope(call, future),
                        active: Some(active),
                    },
                }
            }
            Err(status) => CallFuture {
                inner: CallFutureInner::Refused {
                    response: Some(status.into_http()),
                },
            },
        }
    }
}

/// Marks its call finished when dropped (its place among the calls in flight goes
/// with the call's last handle).
#[derive(Debug)]
struct ActiveCall {
    call: RpcCall,
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.call.0.active.store(false, Ordering::Release);
    }
}

pin_project_lite::pin_project! {
    /// The future of a call served through [`RpcLayer`].
    pub struct CallFuture<F> {
        #[pin]
        inner: CallFutureInner<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = CallFutureProj]
    enum CallFutureInner<F> {
        // A call being served, with the call as the task's current call.
        Call {
            #[pin]
            future: tokio::task::futures::TaskLocalFuture<RpcCall, F>,
            active: Option<ActiveCall>,
        },
        // A call refused before it reached the service.
        Refused { response: Option<http::Response<()>> },
    }
}

impl<F, E, B> std::future::Future for CallFuture<F>
where
    F: std::future::Future<Output = std::result::Result<http::Response<B>, E>>,
{
    type Output = std::result::Result<http::Response<CallBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            CallFutureProj::Call { future, active } => {
                let response = ready!(future.poll(cx))?;
                // The call stays active while its response body is sent.
                let active = active.take();
                Poll::Ready(Ok(response.map(|body| CallBody {
                    inner: BodyInner::Call { body, active },
                })))
            }
            CallFutureProj::Refused { response } => {
                let response = response.take().expect("polled after completion");
                Poll::Ready(Ok(response.map(|()| CallBody::default())))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The response body of a call served through [`RpcLayer`]: the call is active
    /// until it ends or is dropped.
    pub struct CallBody<B> {
        #[pin]
        inner: BodyInner<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = BodyProj]
    enum BodyInner<B> {
        // The service's body.
        Call {
            #[pin]
            body: B,
            active: Option<ActiveCall>,
        },
        // No body (a refused call: its status is in the headers).
        Empty,
    }
}

impl<B> Default for CallBody<B> {
    fn default() -> Self {
        CallBody {
            inner: BodyInner::Empty,
        }
    }
}

impl<B: http_body::Body> http_body::Body for CallBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<http_body::Frame<B::Data>, B::Error>>> {
        match self.project().inner.project() {
            BodyProj::Call { body, active } => {
                let frame = ready!(body.poll_frame(cx));
                if frame.is_none() {
                    active.take();
                }
                Poll::Ready(frame)
            }
            BodyProj::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            BodyInner::Call { body, .. } => body.is_end_stream(),
            BodyInner::Empty => true,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.inner {
            BodyInner::Call { body, .. } => body.size_hint(),
            BodyInner::Empty => http_body::SizeHint::with_exact(0),
        }
    }
}

/// The most concurrent streams (calls) of one connection on [`server`].
pub const MAX_STREAMS_PER_CONNECTION: u32 = 32;

/// A tonic server builder with limits for hostile callers: at most
/// [`MAX_STREAMS_PER_CONNECTION`] concurrent calls per connection (tonic's own
/// default sets none) and at most 1024 streams a connection may make the server
/// reset for errors before it is closed. Add [`RpcLayer`] and the services, then
/// serve a [`UnixIncoming`].
pub fn server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .http2_max_local_error_reset_streams(Some(1024))
        .http2_max_pending_accept_reset_streams(Some(20))
}

/// A tonic channel to a gRPC server on the Unix socket `path`, connecting from the
/// calling thread's identity (the server sees the effective ids of the thread that
/// connects).
///
/// # Errors
/// The error of the connect, with tonic's as its cause:
/// [`ErrorKind::FileNotFound`] for a socket that is not there,
/// [`ErrorKind::AccessDenied`] for one the caller may not connect to,
/// [`ErrorKind::Os`] for a server that does not listen (`ECONNREFUSED`) or any
/// other failure.
pub async fn connect(path: &Path) -> Result<tonic::transport::Channel> {
    connect_to_server_uid(path, None).await
}

/// As [`connect`], and with `server_uid`, each connection is first checked to be
/// to a server that runs as that uid (its `SO_PEERCRED`, which the kernel
/// recorded when the server listened): one of another uid (a squatter on the
/// socket's path) is refused before a byte is sent.
///
/// # Errors
/// [`ErrorKind::AccessDenied`] for a server of another uid; otherwise as
/// [`connect`].
pub async fn connect_to_server_uid(
    path: &Path,
    server_uid: Option<u32>,
) -> Result<tonic::transport::Channel> {
    let target = format!("connecting to unix:{}", path.display());
    let path = path.to_owned();
    let refused: Arc<Mutex<Option<u32>>> = Arc::default();
    let seen = Arc::clone(&refused);
    tonic::transport::Endpoint::from_static("http://guise.invalid")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let (path, seen) = (path.clone(), Arc::clone(&seen));
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                if let Some(want) = server_uid {
                    let uid = stream.peer_cred()?.uid();
                    if uid != want {
                        *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(uid);
                        return Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            format!("the server runs as uid {uid}, not {want}"),
                        ));
                    }
                }
                Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| {
            if let (Some(uid), Some(want)) = (
                *refused.lock().unwrap_or_else(|p| p.into_inner()),
                server_uid,
            ) {
                return Error::new(
                    ErrorKind::AccessDenied,
                    format!("the server runs as uid {uid}, not {want}: refusing to talk to it"),
                );
            }
            transport_error(target, e)
        })
}

/// A tonic channel to a gRPC server that authenticates with Kerberos, at
/// `address` (`host:port`): the connection is made and authenticated now, with
/// `initiator` (started on the thread whose credentials it is to use), and the
/// channel uses it alone; it does not reconnect.
///
/// # Errors
/// [`ErrorKind::Os`] if the server cannot be reached; otherwise as
/// [`crate::kerberos::Initiator::connect`] (a refusal carries the server's
/// reason).
#[cfg(feature = "kerberos")]
#[cfg_attr(docsrs, doc(cfg(feature = "kerberos")))]
pub async fn connect_kerberos(
    address: &str,
    initiator: crate::kerberos::Initiator,
) -> Result<tonic::transport::Channel> {
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| io_err(&format!("connecting to {address}"), &e))?;
    let _ = tcp.set_nodelay(true);
    let stream = initiator.connect(tcp).await?;
    let stream = Arc::new(Mutex::new(Some(stream)));
    tonic::transport::Endpoint::from_static("http://guise.invalid")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let stream = stream.lock().unwrap_or_else(|p| p.into_inner()).take();
            async move {
                stream.map(hyper_util::rt::TokioIo::new).ok_or_else(|| {
                    io::Error::other("a Kerberos channel does not reconnect: authenticate again")
                })
            }
        }))
        .await
        .map_err(|e| transport_error(format!("connecting to tcp:{address}"), e))
}

/// A transport error of tonic while doing `what`, kept as the cause; of the kind
/// of the I/O error inside it ([`ErrorKind::of_io`]: a socket that is not there
/// is [`ErrorKind::FileNotFound`]), [`ErrorKind::Os`] if there is none.
fn transport_error(what: String, e: tonic::transport::Error) -> Error {
    let kind = std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .take(16)
    .find_map(|e| e.downcast_ref::<io::Error>())
    .map_or(ErrorKind::Os, ErrorKind::of_io);
    // The OS error alone as the cause, when there is one: tonic's own words
    // ("transport error") and its wrappers repeat it and add nothing.
    let io = std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .take(16)
    .find_map(|e| e.downcast_ref::<io::Error>())
    .map(|io| match io.raw_os_error() {
        Some(n) => io::Error::from_raw_os_error(n),
        None => io::Error::new(io.kind(), io.to_string()),
    });
    match io {
        Some(io) => Error::with_source(kind, what, io),
        None => Error::with_source(kind, what, e),
    }
}

/// Asks for `level` in a request's metadata ([`LEVEL_METADATA`]): how far the
/// server may act as this client.
pub fn request_level<T>(request: &mut tonic::Request<T>, level: ImpersonationLevel) {
    let value = tonic::metadata::MetadataValue::from_static(match level {
        ImpersonationLevel::Anonymous => "anonymous",
        ImpersonationLevel::Identification => "identification",
        ImpersonationLevel::Impersonation => "impersonation",
        ImpersonationLevel::Delegation => "delegation",
    });
    request.metadata_mut().insert(LEVEL_METADATA, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A connect to a socket that is not there says where it went and why, with
    /// the OS error in the chain: not "transport error".
    #[test]
    fn a_failed_connect_names_the_socket_and_keeps_the_cause() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody.sock");
        let e = rt.block_on(connect(&path)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FileNotFound, "{e:?}");
        assert_eq!(e.errno(), Some(libc::ENOENT), "{e:?}");
        let full = format!("{e:#}");
        assert!(
            full.starts_with(&format!("connecting to unix:{}", path.display())),
            "{full}"
        );
        assert!(full.contains("(os error 2)"), "{full}");
        let debug = format!("{e:?}");
        assert!(
            debug.starts_with("ERROR_FILE_NOT_FOUND (2): connecting to unix:"),
            "{debug}"
        );
        assert!(debug.contains("caused by:"), "{debug}");
        // A socket nobody listens on: refused, of no closer kind.
        let listener =
            std::os::unix::net::UnixListener::bind(dir.path().join("gone.sock")).unwrap();
        drop(listener);
        let e = rt
            .block_on(connect(&dir.path().join("gone.sock")))
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::ECONNREFUSED), "{e:?}");
    }

    /// Attack: a client stops reading, so the server's writes wait for ever and it
    /// never reads again (the idle clock of reads never runs): the connection stays
    /// open. A write that waits counts as no traffic.
    #[test]
    fn a_client_that_stops_reading_cannot_hold_a_connection() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (ours, _theirs) = tokio::net::UnixStream::pair().unwrap();
            let peer = PeerIdentity::of_socket(std::os::fd::AsFd::as_fd(&ours)).unwrap();
            let connections = Connections::new(Limits {
                idle_timeout: Some(Duration::from_millis(200)),
                ..Limits::default()
            });
            let slot = connections.admit(peer.uid).unwrap();
            let mut stream = RpcStream::new(ours, peer, slot, &connections);
            let started = std::time::Instant::now();
            let chunk = vec![0u8; 64 * 1024];
            let e = loop {
                if let Err(e) = stream.write_all(&chunk).await {
                    break e;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the write never gave up"
                );
            };
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            drop(stream);
            assert_eq!(connections.len(), 0, "the slot is given back");
        });
    }
}
