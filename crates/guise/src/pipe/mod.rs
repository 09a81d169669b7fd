//! Named pipes over Unix domain sockets: a server thread impersonates the client of
//! a connection ([`PipeConnection::impersonate_client`], ImpersonateNamedPipeClient).
//!
//! The client's identity comes from the kernel, never from what the client says:
//! `SO_PEERCRED` (uid, gid, pid at `connect`), `SO_PEERGROUPS` (supplementary
//! groups) and `SO_PEERPIDFD` where the kernel has it. The pid is informational; the
//! client is never looked up by pid.
//!
//! The pipe is a thin adapter over the client-identity core ([`crate::client`]):
//! the identity comes from the socket, the quality of service from the first
//! frame, and each message read counts as read for the core's rules.
//!
//! # Wire format
//! Every frame is a 4-byte little-endian length, a 1-byte kind and the payload
//! (length counts kind and payload). Kind 0 is a message; kind 1, allowed only as
//! the first frame, is the client's security quality of service
//! ([`SecurityQos`]): 4 bytes `GSQ1`, the level (0 anonymous … 3 delegation), context
//! tracking (0 static, 1 dynamic), effective-only (0 or 1). A client that sends no
//! SQOS frame is served at Identification level. A frame larger than the server's
//! maximum, an unknown kind or a malformed SQOS frame closes the connection. The
//! format is written once, apart from its I/O (`wire`), and specified in
//! `docs/protocol.md`.
//!
//! # Levels
//! The client decides how far the server may act as it; the server can lower that
//! level but never raise it. guise's default client level is **Identification**,
//! unlike Windows' Impersonation default, which is what the "potato" escalations
//! abuse: a client must ask to be impersonated.
//!
//! # Context tracking
//! With static tracking the client's identity is the one taken at `connect`. With
//! dynamic tracking it is the one the kernel attached to the last message read
//! (`SCM_CREDENTIALS`, verified by the kernel), never more than the connection
//! proved (see [`ClientContext::token`]): on a connection made as root, another
//! identity comes with its account's groups (Identification level if it has no
//! account), and a message that says root is root's only while no thread of the
//! client process acts for another user (the kernel attaches a sender's *real*
//! ids unless it sends its own); on any other connection another identity is
//! Identification at most.
//!
//! # Example
//! A server and a client in one process, at the caller's own identity (no
//! privilege needed); the README has a server that gives each client a thread:
//!
//! ```
//! use guise::client::SecurityQos;
//! use guise::pipe::{PipeAddr, PipeClient, PipeServer, ServerOptions};
//! use guise::ImpersonationLevel;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let addr = PipeAddr::Path(dir.path().join("pipe"));
//! let server = PipeServer::bind(addr.clone(), ServerOptions::default())?; // CreateNamedPipe
//! let client = std::thread::spawn(move || -> guise::Result<Vec<u8>> {
//!     let mut pipe = PipeClient::connect(&addr, SecurityQos::default())?; // Identification
//!     pipe.transact(b"who am I?")
//! });
//! let mut conn = server.accept()?; // ConnectNamedPipe
//! assert_eq!(conn.read_message()?.as_deref(), Some(&b"who am I?"[..]));
//! let guard = conn.impersonate_client()?; // ImpersonateNamedPipeClient
//! assert_eq!(guard.level(), ImpersonationLevel::Identification); // what the client allowed
//! drop(guard); // RevertToSelf
//! conn.write_message(format!("pid {}", conn.client().peer().pid()).as_bytes())?;
//! assert!(client.join().unwrap()?.starts_with(b"pid "));
//! # Ok::<(), guise::Error>(())
//! ```

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod wire;

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::admission::Limits;
pub use crate::client::{ClientContext, ContextTracking, PeerIdentity, PeerPolicy, SecurityQos};
use crate::error::{Error, ErrorKind, Result};
use crate::listener::io_err;
use crate::thread::Impersonation;
use crate::token::ImpersonationLevel;
#[doc(hidden)]
pub use wire::decode_client_stream;
use wire::{HEADER, Inbound, KIND_MESSAGE, KIND_SQOS, Sender, encode_frame, frame_header};

/// The largest message a server accepts unless it says otherwise (1 MiB).
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;

/// Where a pipe lives: a filesystem path or a Linux abstract socket name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipeAddr {
    /// A socket file; its permissions and its directory's decide who can connect.
    Path(PathBuf),
    /// An abstract name (no file). Anyone may connect, and anyone may take a free
    /// name first: prefer paths for servers that others must trust.
    Abstract(String),
}

impl PipeAddr {
    fn socket_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        match self {
            PipeAddr::Path(p) => std::os::unix::net::SocketAddr::from_pathname(p),
            PipeAddr::Abstract(name) => {
                <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name.as_bytes())
            }
        }
    }
}

impl From<&Path> for PipeAddr {
    fn from(p: &Path) -> Self {
        PipeAddr::Path(p.to_owned())
    }
}

/// Options of a pipe server.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// The largest message accepted; a larger frame closes the connection.
    pub max_message: usize,
    /// The mode of a socket file (default `0o666`: any local user may connect; the
    /// kernel tells the server who they are).
    pub mode: u32,
    /// A hook that may refuse clients.
    pub policy: Option<PeerPolicy>,
    /// The highest level the server impersonates at (it can only lower the client's).
    pub max_level: ImpersonationLevel,
    /// How many connections an async server keeps open and for how long: its
    /// connections, idle and request timeouts (see [`crate::admission`] for the
    /// defaults and what happens over each). A connection is idle while it waits
    /// for a request; one in the middle of a request is never closed to make
    /// room.
    pub limits: Limits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_message: DEFAULT_MAX_MESSAGE,
            mode: 0o666,
            policy: None,
            max_level: ImpersonationLevel::Delegation,
            limits: Limits::default(),
        }
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("max_message", &self.max_message)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("policy", &self.policy.is_some())
            .field("max_level", &self.max_level)
            .field("limits", &self.limits)
            .finish()
    }
}

/// What bounds a server's connection: the largest message and the timeouts of
/// its [`ServerOptions`].
#[derive(Clone, Copy, Debug)]
struct Bounds {
    max_message: usize,
    idle_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
}

impl ServerOptions {
    fn bounds(&self) -> Bounds {
        Bounds {
            max_message: self.max_message,
            idle_timeout: self.limits.idle_timeout,
            request_timeout: self.limits.request_timeout,
        }
    }
}

/// Binds a listening socket for `addr` with the server's checks and mode.
fn listen(addr: &PipeAddr, options: &ServerOptions) -> Result<UnixListener> {
    let listener = match addr {
        PipeAddr::Path(p) => crate::listener::bind_path(p, options.mode)?,
        PipeAddr::Abstract(name) => {
            let sa = addr
                .socket_addr()
                .map_err(|e| Error::sys(ErrorKind::InvalidParameter, "the pipe address", &e))?;
            UnixListener::bind_addr(&sa)
                .map_err(|e| io_err(&format!("binding unix-abstract:{name}"), &e))?
        }
    };
    // Accepted sockets inherit SO_PASSCRED: each message then carries its sender's
    // credentials, for dynamic tracking.
    rustix::net::sockopt::set_socket_passcred(&listener, true)
        .map_err(|e| Error::sys(ErrorKind::Os, "SO_PASSCRED", e))?;
    Ok(listener)
}

/// A new connection's client context, or `None` when the server's policy refuses
/// it.
pub(crate) fn admit(
    fd: std::os::fd::BorrowedFd<'_>,
    options: &ServerOptions,
) -> Result<Option<ClientContext>> {
    crate::client::admit_context(fd, options.policy.as_ref(), options.max_level)
}

/// Reads `buf.len()` bytes, keeping the kernel's credentials of the first bytes
/// (pid, uid, gid).
fn recv_exact_with_creds(stream: &UnixStream, buf: &mut [u8]) -> io::Result<Option<Sender>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut creds = None;
    let mut got = 0;
    while got < buf.len() {
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let r = rustix::net::recvmsg(
            stream,
            &mut [io::IoSliceMut::new(&mut buf[got..])],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        );
        let n = match r {
            Ok(m) => m.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for msg in anc.drain() {
            if let RecvAncillaryMessage::ScmCredentials(c) = msg
                && creds.is_none()
            {
                creds = Some((
                    Some(c.pid.as_raw_nonzero().get()),
                    c.uid.as_raw(),
                    c.gid.as_raw(),
                ));
            }
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "disconnected"));
        }
        got += n;
    }
    Ok(creds)
}

/// Writes `frame`, its first part with the calling thread's effective uid and gid
/// (and the process's pid) as `SCM_CREDENTIALS`.
fn send_with_effective_creds(stream: &UnixStream, frame: &[u8]) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, UCred};
    let creds = UCred {
        pid: rustix::process::getpid(),
        uid: rustix::process::geteuid(),
        gid: rustix::process::getegid(),
    };
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    anc.push(SendAncillaryMessage::ScmCredentials(creds));
    let sent = loop {
        match rustix::net::sendmsg(
            stream,
            &[io::IoSlice::new(frame)],
            &mut anc,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    (&*stream).write_all(&frame[sent..])
}

/// A pipe server (`CreateNamedPipe`): listens on a path or abstract name.
#[doc(alias = "CreateNamedPipe")]
#[derive(Debug)]
pub struct PipeServer {
    listener: UnixListener,
    options: ServerOptions,
    addr: PipeAddr,
}

impl PipeServer {
    /// Listens on `addr`. A path that exists must be this user's own stale socket:
    /// another file, another user's socket, or a socket in use is refused.
    ///
    /// # Errors
    /// [`ErrorKind::AccessDenied`] for a path that may not be taken;
    /// [`ErrorKind::Os`] if the socket cannot be made.
    pub fn bind(addr: PipeAddr, options: ServerOptions) -> Result<PipeServer> {
        let listener = listen(&addr, &options)?;
        Ok(PipeServer {
            listener,
            options,
            addr,
        })
    }

    /// Waits for a client ([`ConnectNamedPipe`]). A client the policy refuses is
    /// disconnected and the wait goes on.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if accepting fails.
    ///
    /// [`ConnectNamedPipe`]: https://learn.microsoft.com/en-us/windows/win32/api/namedpipeapi/nf-namedpipeapi-connectnamedpipe
    #[doc(alias = "ConnectNamedPipe")]
    pub fn accept(&self) -> Result<PipeConnection> {
        loop {
            let (stream, _) = self
                .listener
                .accept()
                .map_err(|e| io_err("accepting a client", &e))?;
            let Some(ctx) = admit(stream.as_fd(), &self.options)? else {
                continue;
            };
            return Ok(PipeConnection {
                stream,
                ctx,
                inbound: Inbound::default(),
                bounds: self.options.bounds(),
            });
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> &PipeAddr {
        &self.addr
    }
}

impl AsFd for PipeServer {
    /// The listening socket, to wait for clients with `poll` (readable: a client
    /// is waiting for [`PipeServer::accept`]).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl Drop for PipeServer {
    fn drop(&mut self) {
        if let PipeAddr::Path(p) = &self.addr {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The server side of one client's connection.
#[derive(Debug)]
pub struct PipeConnection {
    stream: UnixStream,
    ctx: ClientContext,
    inbound: Inbound,
    bounds: Bounds,
}

impl PipeConnection {
    /// Reads the next message ([`ReadFile`]); `None` when the client has closed.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a malformed or oversized frame, a client
    /// gone mid-frame or one that stalls mid-frame longer than the request timeout;
    /// [`ErrorKind::Os`] for a client idle longer than the idle timeout. Close the
    /// connection then.
    ///
    /// [`ReadFile`]: https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-readfile
    #[doc(alias = "ReadFile")]
    pub fn read_message(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            let mut header = [0u8; HEADER];
            self.stream
                .set_read_timeout(self.bounds.idle_timeout)
                .map_err(|e| io_err("setting the idle timeout", &e))?;
            let sender = match recv_exact_with_creds(&self.stream, &mut header[..1]) {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(Error::new(ErrorKind::Os, "the client was idle too long"));
                }
                Err(e) => return Err(io_err("reading from the client", &e)),
            };
            self.stream
                .set_read_timeout(self.bounds.request_timeout)
                .map_err(|e| io_err("setting the request timeout", &e))?;
            let bad = |e: io::Error| {
                Error::sys(
                    ErrorKind::InvalidParameter,
                    "a malformed frame from the client",
                    &e,
                )
            };
            self.stream.read_exact(&mut header[1..]).map_err(bad)?;
            let (kind, len) = frame_header(&header, self.bounds.max_message).map_err(bad)?;
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).map_err(bad)?;
            let frame = self.inbound.frame(&mut self.ctx, kind, payload, sender);
            if let Some(m) = frame.map_err(bad)? {
                return Ok(Some(m));
            }
        }
    }

    /// Writes a message ([`WriteFile`]).
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the client is gone.
    ///
    /// [`WriteFile`]: https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-writefile
    #[doc(alias = "WriteFile")]
    pub fn write_message(&mut self, message: &[u8]) -> Result<()> {
        self.stream
            .write_all(&encode_frame(KIND_MESSAGE, message))
            .map_err(|e| io_err("writing to the client", &e))
    }

    /// What the server knows of the client: its identity, level and pid
    /// (`client().peer().pid()`, GetNamedPipeClientProcessId).
    #[doc(alias = "GetNamedPipeClientProcessId")]
    pub fn client(&self) -> &ClientContext {
        &self.ctx
    }

    /// Makes the calling thread impersonate the client
    /// ([`ImpersonateNamedPipeClient`]) until the guard is dropped, at
    /// [`ClientContext::level`]. It works after the
    /// client disconnected. Without SeImpersonatePrivilege the thread gets
    /// Identification level (see [`crate::thread`]).
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] until a message was read from the client;
    /// otherwise as [`crate::Token::impersonate`].
    ///
    /// [`ImpersonateNamedPipeClient`]: https://learn.microsoft.com/en-us/windows/win32/api/namedpipeapi/nf-namedpipeapi-impersonatenamedpipeclient
    #[doc(alias = "ImpersonateNamedPipeClient")]
    pub fn impersonate_client(&self) -> Result<Impersonation> {
        self.ctx.token()?.impersonate()
    }
}

impl AsFd for PipeConnection {
    /// The connection's socket, to wait for requests with `poll` (readable: a
    /// message, or the client's close, is waiting for
    /// [`PipeConnection::read_message`]).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

/// Options of [`PipeClient::connect_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How long connecting, each send and each receive may take; `None`: for ever.
    pub timeout: Option<Duration>,
    /// The uid the server must run as; `None`: any.
    pub server_uid: Option<u32>,
}

/// The client side of a pipe (`CreateFile` on a pipe name).
#[derive(Debug)]
pub struct PipeClient {
    stream: UnixStream,
    max_message: usize,
    qos: SecurityQos,
}

impl PipeClient {
    /// Connects and sends the quality of service (`CreateFile` with
    /// `SECURITY_SQOS_PRESENT`). Use `SecurityQos::default()` for Identification
    /// level.
    ///
    /// # Errors
    /// [`ErrorKind::AccessDenied`] or [`ErrorKind::Os`] if the server cannot be
    /// reached.
    #[doc(alias = "CreateFile")]
    pub fn connect(addr: &PipeAddr, qos: SecurityQos) -> Result<PipeClient> {
        Self::connect_with(addr, qos, &ClientOptions::default())
    }

    /// As [`Self::connect`], with a timeout for every operation (the connect
    /// included) and, optionally, the uid the server must run as: the kernel's
    /// `SO_PEERCRED` of the server is checked before anything is sent, so a socket
    /// that another user squats is refused.
    ///
    /// # Errors
    /// As [`Self::connect`]; [`ErrorKind::AccessDenied`] if the server runs as
    /// another uid than `server_uid`.
    #[doc(alias = "CreateFile")]
    pub fn connect_with(
        addr: &PipeAddr,
        qos: SecurityQos,
        options: &ClientOptions,
    ) -> Result<PipeClient> {
        use rustix::net::{AddressFamily, SocketAddrUnix, SocketType, sockopt};
        let os = |what: &'static str| move |e| Error::sys(ErrorKind::Os, what, e);
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(os("socket"))?;
        if options.timeout.is_some() {
            // For a Unix socket the send timeout also bounds connect(2).
            for which in [sockopt::Timeout::Send, sockopt::Timeout::Recv] {
                sockopt::set_socket_timeout(&fd, which, options.timeout)
                    .map_err(os("SO_SNDTIMEO/SO_RCVTIMEO"))?;
            }
        }
        let sa = match addr {
            PipeAddr::Path(p) => SocketAddrUnix::new(p.as_path()),
            PipeAddr::Abstract(n) => SocketAddrUnix::new_abstract_name(n.as_bytes()),
        }
        .map_err(|e| Error::sys(ErrorKind::InvalidParameter, "the pipe address", e))?;
        rustix::net::connect(&fd, &sa).map_err(|e| {
            let at = match addr {
                PipeAddr::Path(p) => format!("unix:{}", p.display()),
                PipeAddr::Abstract(n) => format!("unix-abstract:{n}"),
            };
            // A socket file that is not there is ERROR_FILE_NOT_FOUND, as
            // CreateFile says of a pipe name nobody serves.
            Error::access(format!("connecting to {at}"), e)
        })?;
        if let Some(want) = options.server_uid {
            let server = crate::sys::socket::peer_cred(std::os::fd::AsFd::as_fd(&fd))
                .map_err(|e| Error::sys(ErrorKind::Os, "SO_PEERCRED", &e))?;
            if server.uid != want {
                return Err(Error::new(
                    ErrorKind::AccessDenied,
                    format!(
                        "the server runs as uid {}, not {want}: refusing to talk to it",
                        server.uid
                    ),
                ));
            }
        }
        let stream = UnixStream::from(fd);
        let mut client = PipeClient {
            stream,
            max_message: DEFAULT_MAX_MESSAGE,
            qos,
        };
        if let Err(e) = client
            .stream
            .write_all(&encode_frame(KIND_SQOS, &wire::encode_qos(&qos)))
        {
            return Err(client.why_closed(io_err("sending the quality of service", &e)));
        }
        Ok(client)
    }

    /// Sends a message. With dynamic tracking it carries the calling thread's
    /// *effective* uid and gid as its credentials (`SCM_CREDENTIALS`, checked by the
    /// kernel), so that the server follows what this thread is now; without them
    /// the kernel would attach the process's real ids.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the server is gone.
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        let frame = encode_frame(KIND_MESSAGE, message);
        let r = if self.qos.tracking == ContextTracking::Dynamic {
            send_with_effective_creds(&self.stream, &frame)
        } else {
            self.stream.write_all(&frame)
        };
        r.map_err(|e| self.why_closed(io_err("writing to the pipe", &e)))
    }

    /// The error of a write that failed, `e`, unless what the server sent before
    /// it closed the connection says it is no guise pipe server (a gRPC server
    /// sends its HTTP/2 SETTINGS, then closes on the pipe frames).
    fn why_closed(&self, e: Error) -> Error {
        use rustix::net::{RecvFlags, recv};
        // Peeked, not read: a reply the server sent stays for `receive`.
        let mut header = [0u8; HEADER];
        match recv(
            &self.stream,
            &mut header,
            RecvFlags::PEEK | RecvFlags::DONTWAIT,
        ) {
            Ok((got, _)) if got == HEADER && wire::looks_like_http2(&header) => not_a_pipe_server(),
            _ => e,
        }
    }

    /// Receives a message; `None` when the server closed the connection.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] for a malformed reply; [`ErrorKind::InvalidParameter`]
    /// ("not a guise pipe server") for a server that answers in HTTP/2, such as a
    /// gRPC server.
    pub fn receive(&mut self) -> Result<Option<Vec<u8>>> {
        let mut header = [0u8; HEADER];
        match self.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io_err("reading from the pipe", &e)),
        }
        let (kind, len) = frame_header(&header, self.max_message).map_err(|e| {
            if wire::looks_like_http2(&header) {
                return not_a_pipe_server();
            }
            io_err("a reply", &e)
        })?;
        if kind != KIND_MESSAGE {
            return Err(Error::new(
                ErrorKind::Os,
                "the server sent an unexpected frame",
            ));
        }
        let mut payload = vec![0u8; len];
        self.stream
            .read_exact(&mut payload)
            .map_err(|e| io_err("reading from the pipe", &e))?;
        Ok(Some(payload))
    }

    /// Sends a request and waits for the reply ([`TransactNamedPipe`]).
    ///
    /// # Errors
    /// As [`Self::send`] and [`Self::receive`]; [`ErrorKind::Os`] if the server
    /// closed the connection without a reply.
    ///
    /// [`TransactNamedPipe`]: https://learn.microsoft.com/en-us/windows/win32/api/namedpipeapi/nf-namedpipeapi-transactnamedpipe
    #[doc(alias = "TransactNamedPipe")]
    #[doc(alias = "CallNamedPipe")]
    pub fn transact(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        self.send(request)?;
        self.receive()?
            .ok_or_else(|| Error::new(ErrorKind::Os, "the server closed the connection"))
    }

    /// The underlying stream, for tests that must send raw bytes.
    #[doc(hidden)]
    pub fn stream_mut(&mut self) -> &mut UnixStream {
        &mut self.stream
    }
}

/// The error of a client whose server answered in HTTP/2.
fn not_a_pipe_server() -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        "not a guise pipe server: it answered in HTTP/2, as a gRPC server does \
         (`guise rpc call` is its client)",
    )
}
