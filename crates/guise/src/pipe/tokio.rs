//! The tokio form of the pipe server: accept and read without blocking a runtime
//! thread; impersonate through an [`ImpersonationPool`].
//!
//! The server holds hostile clients within [`ServerOptions::limits`], by the
//! policy of [`crate::admission`]: a new connection over its uid's limit is
//! refused; over the limit of all connections, the connection that has waited
//! longest for a request is closed to make room (a connection in the middle of
//! a request never is); a connection idle longer than the idle timeout, or
//! stalled in a frame longer than the request timeout, is closed; accept errors
//! such as `EMFILE` close the connection idle the longest, or back off instead
//! of spinning, and their warnings are rate-limited.
//!
//! # Example
//! A task per client, each request run as its client on a worker (the whole server,
//! with clients, is the repository's `crates/guise/examples/tokio_pipe_server.rs`):
//!
//! ```no_run
//! use std::sync::Arc;
//! use guise::pipe::tokio::AsyncPipeServer;
//! use guise::pipe::{PipeAddr, ServerOptions};
//! use guise::pool::ImpersonationPool;
//!
//! # async fn serve() -> guise::Result<()> {
//! let pool = Arc::new(ImpersonationPool::new(8)?);
//! let server = AsyncPipeServer::bind(PipeAddr::Path("/run/reports.sock".into()), ServerOptions::default())?;
//! loop {
//!     let mut conn = server.accept().await?;
//!     let pool = Arc::clone(&pool);
//!     tokio::spawn(async move {
//!         while let Ok(Some(request)) = conn.read_message().await {
//!             let path = String::from_utf8_lossy(&request).into_owned();
//!             let reply = conn
//!                 .run_as_client(&pool, move || std::fs::read(&path).unwrap_or_default())
//!                 .await
//!                 .unwrap_or_default();
//!             if conn.write_message(&reply).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};

use super::wire::{HEADER, Inbound, KIND_MESSAGE, encode_frame, frame_header};
use super::{Bounds, ClientContext, PipeAddr, ServerOptions, admit, listen};
use crate::admission::{AcceptBackoff, Admitted, Connections};
use crate::audit::Transport;
use crate::error::{Error, ErrorKind, Result};
use crate::listener::io_err;
use crate::pool::ImpersonationPool;

/// An async pipe server.
pub struct AsyncPipeServer {
    listener: tokio::net::UnixListener,
    options: ServerOptions,
    addr: PipeAddr,
    connections: Connections,
    /// Whether the server made the socket file, and so removes it when dropped.
    owns_path: bool,
}

impl std::fmt::Debug for AsyncPipeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncPipeServer")
            .field("addr", &self.addr)
            .field("options", &self.options)
            .field("connections", &self.connections())
            .finish()
    }
}

impl AsyncPipeServer {
    /// Listens on `addr`, as [`super::PipeServer::bind`] does. Call it inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// As [`super::PipeServer::bind`].
    pub fn bind(addr: PipeAddr, options: ServerOptions) -> Result<AsyncPipeServer> {
        let std = listen(&addr, &options)?;
        let mut server = Self::from_listener(std, addr, options)?;
        server.owns_path = true;
        Ok(server)
    }

    /// Serves on a socket that is already listening (for example one inherited from
    /// a service manager, see `guise::systemd`). `addr` says where it lives; the
    /// socket file stays when the server is dropped (its maker removes it).
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the socket cannot be used.
    pub fn from_listener(
        listener: std::os::unix::net::UnixListener,
        addr: PipeAddr,
        options: ServerOptions,
    ) -> Result<AsyncPipeServer> {
        rustix::net::sockopt::set_socket_passcred(&listener, true)
            .map_err(|e| Error::sys(ErrorKind::Os, "SO_PASSCRED", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| io_err("the listener", &e))?;
        let listener =
            tokio::net::UnixListener::from_std(listener).map_err(|e| io_err("the listener", &e))?;
        Ok(AsyncPipeServer {
            listener,
            connections: Connections::new(options.limits.clone()),
            options,
            addr,
            owns_path: false,
        })
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// Waits for a client the policy accepts. Errors the kernel reports for a lack
    /// of resources (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) and for clients gone
    /// before they were accepted are waited out here, with a growing pause (up to
    /// one second) and a warning at most once a second.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if accepting fails for another reason.
    pub async fn accept(&self) -> Result<AsyncPipeConnection> {
        let mut backoff = AcceptBackoff::new();
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => match backoff.after(&e, &self.connections) {
                    Some(pause) => {
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    None => return Err(io_err("accepting a client", &e)),
                },
            };
            backoff.succeeded();
            let Some(ctx) = admit(stream.as_fd(), &self.options)? else {
                continue;
            };
            let slot = match self.connections.admit(ctx.peer().uid) {
                Ok(slot) => slot,
                Err(why) => {
                    let p = ctx.peer();
                    crate::audit::connection_refused(Transport::Pipe, p.uid, p.pid, why.limit());
                    continue;
                }
            };
            return Ok(AsyncPipeConnection {
                stream,
                ctx,
                inbound: Inbound::default(),
                bounds: self.options.bounds(),
                slot,
                in_request: false,
            });
        }
    }
}

impl Drop for AsyncPipeServer {
    fn drop(&mut self) {
        if let (PipeAddr::Path(p), true) = (&self.addr, self.owns_path) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The server side of one client's connection, async.
pub struct AsyncPipeConnection {
    stream: tokio::net::UnixStream,
    ctx: ClientContext,
    inbound: Inbound,
    bounds: Bounds,
    slot: Admitted,
    in_request: bool,
}

impl std::fmt::Debug for AsyncPipeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncPipeConnection")
            .field("client", &self.ctx)
            .finish()
    }
}

/// Waits for `f`, at most `limit` if there is one.
async fn within<T>(
    limit: Option<Duration>,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match limit {
        Some(d) => tokio::time::timeout(d, f)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))),
        None => f.await,
    }
}

impl AsyncPipeConnection {
    /// Reads one byte with the kernel's credentials for it.
    async fn first_byte(&self) -> io::Result<(u8, Option<super::wire::Sender>)> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        loop {
            self.stream.readable().await?;
            let r = self.stream.try_io(Interest::READABLE, || {
                let mut byte = [0u8; 1];
                let mut space =
                    [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
                let mut anc = RecvAncillaryBuffer::new(&mut space);
                let m = rustix::net::recvmsg(
                    &self.stream,
                    &mut [io::IoSliceMut::new(&mut byte)],
                    &mut anc,
                    RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
                )?;
                let mut creds = None;
                for msg in anc.drain() {
                    if let RecvAncillaryMessage::ScmCredentials(c) = msg {
                        creds = Some((
                            Some(c.pid.as_raw_nonzero().get()),
                            c.uid.as_raw(),
                            c.gid.as_raw(),
                        ));
                    }
                }
                if m.bytes == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "disconnected"));
                }
                Ok((byte[0], creds))
            });
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    /// Reads the next message; `None` when the client has closed, or when the
    /// server closed this idle connection to make room for a new client.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a malformed or oversized frame, or a
    /// client gone or stalled mid-frame; [`ErrorKind::Os`] for a client idle longer
    /// than the idle timeout. Close the connection then.
    pub async fn read_message(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            self.slot.set_idle(!self.in_request);
            let first = tokio::select! {
                r = within(self.bounds.idle_timeout, self.first_byte()) => r,
                () = self.slot.evicted() => {
                    let p = self.ctx.peer();
                    crate::audit::client_evicted(Transport::Pipe, p.uid, p.pid, "connections");
                    return Ok(None);
                }
            };
            self.slot.set_idle(false);
            let (b0, sender) = match first {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(Error::new(ErrorKind::Os, "the client was idle too long"));
                }
                Err(e) => return Err(io_err("reading from the client", &e)),
            };
            let bad = |e: io::Error| {
                Error::sys(
                    ErrorKind::InvalidParameter,
                    "a malformed or unfinished frame from the client",
                    &e,
                )
            };
            let (max, stream) = (self.bounds.max_message, &mut self.stream);
            let (kind, payload) = within(self.bounds.request_timeout, async {
                let mut header = [0u8; HEADER];
                header[0] = b0;
                stream.read_exact(&mut header[1..]).await?;
                let (kind, len) = frame_header(&header, max)?;
                let mut payload = vec![0u8; len];
                stream.read_exact(&mut payload).await?;
                Ok((kind, payload))
            })
            .await
            .map_err(bad)?;
            let frame = self.inbound.frame(&mut self.ctx, kind, payload, sender);
            if let Some(m) = frame.map_err(bad)? {
                return Ok(Some(m));
            }
        }
    }

    /// Writes a message.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the client is gone, or does not take the message within
    /// the request timeout.
    pub async fn write_message(&mut self, message: &[u8]) -> Result<()> {
        let frame = encode_frame(KIND_MESSAGE, message);
        within(self.bounds.request_timeout, self.stream.write_all(&frame))
            .await
            .map_err(|e| io_err("writing to the client", &e))
    }

    /// Marks the connection as in the middle of a request that reads further
    /// messages (the chunks of an upload, say): until it is marked `false` again,
    /// waiting for a message does not count as idle, and the server never closes
    /// the connection to make room. The request timeout still applies to each
    /// frame, and the idle timeout to the wait.
    pub fn set_in_request(&mut self, in_request: bool) {
        self.in_request = in_request;
    }

    /// What the server knows of the client: its identity, level and pid
    /// (`client().peer().pid()`, GetNamedPipeClientProcessId).
    #[doc(alias = "GetNamedPipeClientProcessId")]
    pub fn client(&self) -> &ClientContext {
        &self.ctx
    }

    /// Runs `f` on a worker of `pool` that impersonates the client
    /// (ImpersonateNamedPipeClient), and returns its result.
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] until a message was read from the client;
    /// otherwise as [`ImpersonationPool::run_as`].
    #[doc(alias = "ImpersonateNamedPipeClient")]
    pub async fn run_as_client<R: Send + 'static>(
        &self,
        pool: &ImpersonationPool,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        pool.run_as(self.ctx.token()?, f).await
    }
}
