//! Named pipes over Unix domain sockets: a server thread impersonates the client of
//! a connection ([`PipeConnection::impersonate_client`], ImpersonateNamedPipeClient).
//!
//! The client's identity comes from the kernel, never from what the client says:
//! `SO_PEERCRED` (uid, gid, pid at `connect`), `SO_PEERGROUPS` (supplementary
//! groups) and `SO_PEERPIDFD` where the kernel has it. The pid is informational; the
//! client is never looked up by pid.
//!
//! # Wire format
//! Every frame is a 4-byte little-endian length, a 1-byte kind and the payload
//! (length counts kind and payload). Kind 0 is a message; kind 1, allowed only as
//! the first frame, is the client's security quality of service
//! ([`SecurityQos`]): 4 bytes `GSQ1`, the level (0 anonymous … 3 delegation), context
//! tracking (0 static, 1 dynamic), effective-only (0 or 1). A client that sends no
//! SQOS frame is served at Identification level. A frame larger than the server's
//! maximum, an unknown kind or a malformed SQOS frame closes the connection.
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
//! (`SCM_CREDENTIALS`, verified by the kernel): if the sender's uid or gid changed
//! since `connect`, the token has that uid and gid with no supplementary groups
//! (the kernel reports none per message: fewer groups, never more).

pub mod pool;
#[cfg(feature = "tokio")]
pub mod tokio;

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::privilege::CapabilitySet;
use crate::thread::Impersonation;
use crate::token::{ImpersonationLevel, Token, TokenType};

/// The largest message a server accepts unless it says otherwise (1 MiB).
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;

const KIND_MESSAGE: u8 = 0;
const KIND_SQOS: u8 = 1;
const SQOS_MAGIC: &[u8; 4] = b"GSQ1";

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

/// Context tracking of [`SecurityQos`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ContextTracking {
    /// The identity taken at `connect` (`SECURITY_STATIC_TRACKING`).
    #[default]
    Static,
    /// The identity of each message's sender (`SECURITY_DYNAMIC_TRACKING`).
    Dynamic,
}

/// The client's security quality of service (`SECURITY_QUALITY_OF_SERVICE`): how
/// far the server may act as it.
#[doc(alias = "SECURITY_QUALITY_OF_SERVICE")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecurityQos {
    /// The highest level the server may impersonate the client at.
    pub level: ImpersonationLevel,
    /// Static or dynamic context tracking.
    pub tracking: ContextTracking,
    /// Whether only the enabled parts of the client's context count
    /// (`EffectiveOnly`); recorded and reported.
    pub effective_only: bool,
}

impl Default for SecurityQos {
    /// Identification level, static tracking: guise's safe default.
    fn default() -> Self {
        SecurityQos {
            level: ImpersonationLevel::Identification,
            tracking: ContextTracking::Static,
            effective_only: false,
        }
    }
}

impl SecurityQos {
    fn encode(&self) -> [u8; 7] {
        let level = match self.level {
            ImpersonationLevel::Anonymous => 0,
            ImpersonationLevel::Identification => 1,
            ImpersonationLevel::Impersonation => 2,
            ImpersonationLevel::Delegation => 3,
        };
        [
            SQOS_MAGIC[0],
            SQOS_MAGIC[1],
            SQOS_MAGIC[2],
            SQOS_MAGIC[3],
            level,
            u8::from(self.tracking == ContextTracking::Dynamic),
            u8::from(self.effective_only),
        ]
    }

    fn decode(b: &[u8]) -> Option<SecurityQos> {
        let [m0, m1, m2, m3, level, tracking, effective] = b.try_into().ok()?;
        if [m0, m1, m2, m3] != *SQOS_MAGIC || tracking > 1 || effective > 1 {
            return None;
        }
        Some(SecurityQos {
            level: match level {
                0 => ImpersonationLevel::Anonymous,
                1 => ImpersonationLevel::Identification,
                2 => ImpersonationLevel::Impersonation,
                3 => ImpersonationLevel::Delegation,
                _ => return None,
            },
            tracking: if tracking == 1 {
                ContextTracking::Dynamic
            } else {
                ContextTracking::Static
            },
            effective_only: effective == 1,
        })
    }
}

/// What the kernel says about the client of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The client's pid at `connect` (informational: pids are reused).
    pub pid: i32,
    /// Its effective uid at `connect`.
    pub uid: u32,
    /// Its effective gid at `connect`.
    pub gid: u32,
    /// Its supplementary groups at `connect`.
    pub groups: Vec<u32>,
    /// Whether the kernel gave a pidfd for it (`SO_PEERPIDFD`).
    pub has_pidfd: bool,
    /// The capabilities every thread of the client process held in its permitted
    /// set when it was accepted, read through the pidfd; empty when the kernel gave
    /// no pidfd or the process had gone. The client's token holds the privileges
    /// of these capabilities, none invented from its uid.
    pub permitted_capabilities: CapabilitySet,
    /// As `permitted_capabilities`, for the effective set: the token's privileges
    /// of these capabilities are enabled.
    pub effective_capabilities: CapabilitySet,
}

/// A policy hook: whether to serve a client. Called once per connection, before
/// anything is read from it.
pub type PeerPolicy = Arc<dyn Fn(&PeerIdentity) -> bool + Send + Sync>;

/// Options of a pipe server.
#[derive(Clone)]
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
    /// The most connections an async server keeps open (default 4096). A new
    /// client over the limit closes the connection that has waited longest for a
    /// request; connections in the middle of a request are never closed for it.
    pub max_connections: usize,
    /// The most connections of one uid an async server keeps open (default 1024);
    /// over it, that uid's connection idle the longest is closed.
    pub max_connections_per_uid: usize,
    /// How long a connection may wait for a request before it is closed (default
    /// five minutes; `None`: for ever).
    pub idle_timeout: Option<Duration>,
    /// How long a frame may take to arrive once its first byte has (default ten
    /// seconds; `None`: for ever). A client that starts a request and stalls is
    /// closed.
    pub request_timeout: Option<Duration>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_message: DEFAULT_MAX_MESSAGE,
            mode: 0o666,
            policy: None,
            max_level: ImpersonationLevel::Delegation,
            max_connections: 4096,
            max_connections_per_uid: 1024,
            idle_timeout: Some(Duration::from_secs(300)),
            request_timeout: Some(Duration::from_secs(10)),
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
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_uid", &self.max_connections_per_uid)
            .field("idle_timeout", &self.idle_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// A warning logged at most once a second; the ones in between are counted and
/// reported with the next.
pub(crate) struct RateLimited {
    last: std::sync::Mutex<Option<std::time::Instant>>,
    suppressed: std::sync::atomic::AtomicU64,
}

impl RateLimited {
    pub(crate) const fn new() -> Self {
        RateLimited {
            last: std::sync::Mutex::new(None),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Calls `log` with the number of warnings suppressed since the last one, or
    /// counts this one if a warning was logged less than a second ago.
    pub(crate) fn warn(&self, log: impl FnOnce(u64)) {
        use std::sync::atomic::Ordering;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        drop(last);
        log(self.suppressed.swap(0, Ordering::Relaxed));
    }
}

fn io_err(what: &str, e: &io::Error) -> Error {
    let kind = if e.kind() == io::ErrorKind::PermissionDenied {
        ErrorKind::AccessDenied
    } else {
        ErrorKind::Os
    };
    Error::os(kind, what.to_owned(), e)
}

/// Refuses to take over a path that is not our own stale socket.
fn check_squatting(path: &Path) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let what = path.display();
    if !meta.file_type().is_socket() {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!("{what} exists and is not a socket: refusing to replace it"),
        ));
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!(
                "the socket {what} belongs to uid {}: refusing to replace it",
                meta.uid()
            ),
        ));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!("{what} is in use by another server"),
        ));
    }
    std::fs::remove_file(path).map_err(|e| io_err("removing a stale socket", &e))
}

/// Binds a socket file that has `mode` from the moment it exists: the bind runs on a
/// short-lived thread with its own fs context whose umask leaves exactly `mode`. No
/// `chmod` follows, so there is no path lookup another user could redirect (a symlink
/// swapped in after the bind would make a `chmod` change the mode of its target).
fn bind_with_mode(sa: &std::os::unix::net::SocketAddr, mode: u32) -> Result<UnixListener> {
    if mode & !0o777 != 0 {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("a socket's mode is at most 0777, not {mode:o}"),
        ));
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            crate::sys::socket::unshare_fs()
                .map_err(|e| io_err("a private umask for the bind (unshare(CLONE_FS))", &e))?;
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(!mode & 0o777));
            UnixListener::bind_addr(sa).map_err(|e| io_err("binding the pipe", &e))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Binds a listening socket for `addr` with the server's checks and mode.
fn listen(addr: &PipeAddr, options: &ServerOptions) -> Result<UnixListener> {
    if let PipeAddr::Path(p) = addr {
        check_squatting(p)?;
    }
    let sa = addr
        .socket_addr()
        .map_err(|e| Error::os(ErrorKind::InvalidParameter, "the pipe address", &e))?;
    let listener = match addr {
        PipeAddr::Path(_) => bind_with_mode(&sa, options.mode)?,
        PipeAddr::Abstract(_) => {
            UnixListener::bind_addr(&sa).map_err(|e| io_err("binding the pipe", &e))?
        }
    };
    // Accepted sockets inherit SO_PASSCRED: each message then carries its sender's
    // credentials, for dynamic tracking.
    rustix::net::sockopt::set_socket_passcred(&listener, true)
        .map_err(|e| Error::os(ErrorKind::Os, "SO_PASSCRED", e))?;
    Ok(listener)
}

/// Reads the kernel's view of the peer of `fd`.
fn peer_identity(fd: std::os::fd::BorrowedFd<'_>) -> Result<(PeerIdentity, Option<OwnedFd>)> {
    let cred = rustix::net::sockopt::socket_peercred(fd)
        .map_err(|e| Error::os(ErrorKind::Os, "SO_PEERCRED", e))?;
    let groups = crate::sys::socket::peer_groups(fd).map_err(|e| io_err("SO_PEERGROUPS", &e))?;
    let pidfd = crate::sys::socket::peer_pidfd(fd);
    // Only a client that connected as root can hold privileges: the capabilities
    // of anyone else are either none or those of a user namespace of its own (or
    // of a file-capability program it ran after connecting), which count for
    // nothing here.
    let (permitted, effective) = pidfd
        .as_ref()
        .filter(|_| cred.uid.is_root())
        .and_then(|p| peer_capabilities(p.as_fd(), cred.uid.as_raw(), cred.gid.as_raw()))
        .unwrap_or((CapabilitySet::empty(), CapabilitySet::empty()));
    Ok((
        PeerIdentity {
            pid: cred.pid.as_raw_nonzero().get(),
            uid: cred.uid.as_raw(),
            gid: cred.gid.as_raw(),
            groups,
            has_pidfd: pidfd.is_some(),
            permitted_capabilities: permitted,
            effective_capabilities: effective,
        },
        pidfd,
    ))
}

/// The most threads of a client whose capabilities are read; a client with more
/// gets no privileges (reading them all would stall the server).
const MAX_PEER_THREADS: usize = 256;

/// The permitted and effective capabilities that every thread of the process of
/// `pidfd` holds (the intersection: never more than the thread that connected), or
/// `None` if they cannot be read for certain: the process must be in the server's
/// user namespace, every thread must still have the effective uid and gid the
/// kernel reported at connect (`uid`, `gid`; a set-id program run since would
/// not), and the process must still be alive after the read (so its pid was not
/// reused). The pid comes from the pidfd.
fn peer_capabilities(
    pidfd: std::os::fd::BorrowedFd<'_>,
    uid: u32,
    gid: u32,
) -> Option<(CapabilitySet, CapabilitySet)> {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).ok()?;
    let pid: i32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()?;
    if pid <= 0 {
        return None;
    }
    let hex = |status: &str, field: &str| -> Option<CapabilitySet> {
        let v = status.lines().find_map(|l| l.strip_prefix(field))?.trim();
        u64::from_str_radix(v, 16)
            .ok()
            .map(CapabilitySet::from_bits_retain)
    };
    use std::os::unix::fs::MetadataExt;
    let ns = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    if ns(&format!("/proc/{pid}/ns/user"))? != ns("/proc/self/ns/user")? {
        return None;
    }
    // The effective id of a "Uid:"/"Gid:" line (real, effective, saved, fs).
    let effective_id = |status: &str, field: &str| -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let (mut permitted, mut effective) = (CapabilitySet::all(), CapabilitySet::all());
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(status) = std::fs::read_to_string(task.ok()?.path().join("status")) else {
            continue; // a thread that ended meanwhile
        };
        if effective_id(&status, "Uid:")? != uid || effective_id(&status, "Gid:")? != gid {
            return None;
        }
        permitted &= hex(&status, "CapPrm:")?;
        effective &= hex(&status, "CapEff:")?;
        threads += 1;
        if threads > MAX_PEER_THREADS {
            return None;
        }
    }
    // Still alive (the pidfd is not readable yet): the pid was not reused.
    let mut fds = [rustix::event::PollFd::new(
        &pidfd,
        rustix::event::PollFlags::IN,
    )];
    let alive = rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default()))
        .is_ok_and(|n| n == 0);
    (alive && threads > 0).then_some((permitted, effective))
}

/// What the server knows of a connection's client: the kernel's view of it, its
/// quality of service, and (once a message was read) its token. Shared by the
/// blocking and async connections ([`PipeConnection::client`],
/// [`tokio::AsyncPipeConnection::client`]).
#[derive(Debug)]
pub struct ClientInfo {
    peer: PeerIdentity,
    qos: SecurityQos,
    max_level: ImpersonationLevel,
    /// Set once a message was read: the uid and gid it came from.
    last_sender: Option<(u32, u32)>,
    frames: usize,
}

impl ClientInfo {
    pub(crate) fn new(peer: PeerIdentity, max_level: ImpersonationLevel) -> Self {
        ClientInfo {
            peer,
            // A client that sends no SQOS is served at Identification level.
            qos: SecurityQos::default(),
            max_level,
            last_sender: None,
            frames: 0,
        }
    }

    /// Takes in a frame; returns the message, or `None` for the SQOS frame.
    pub(crate) fn frame(
        &mut self,
        kind: u8,
        payload: Vec<u8>,
        sender: Option<(u32, u32)>,
    ) -> io::Result<Option<Vec<u8>>> {
        let first = self.frames == 0;
        self.frames += 1;
        match kind {
            KIND_SQOS if first => {
                self.qos = SecurityQos::decode(&payload).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "malformed SQOS frame")
                })?;
                Ok(None)
            }
            KIND_MESSAGE => {
                self.last_sender = Some(match (self.qos.tracking, sender) {
                    (ContextTracking::Dynamic, Some(s)) => s,
                    _ => (self.peer.uid, self.peer.gid),
                });
                Ok(Some(payload))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected frame kind",
            )),
        }
    }

    /// The kernel's view of the client at `connect`.
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The client's quality of service (Identification if it sent none).
    pub fn qos(&self) -> SecurityQos {
        self.qos
    }

    /// The level the server may impersonate the client at: the client's, lowered to
    /// the server's maximum.
    pub fn level(&self) -> ImpersonationLevel {
        self.qos.level.min(self.max_level)
    }

    /// The client's token, an impersonation token at [`Self::level`] or lower, for
    /// impersonation and for access checks of the server's own objects.
    ///
    /// - With static tracking, and with dynamic tracking while the last message came
    ///   from the connection's own uid and gid: the connection's identity (uid, gid,
    ///   groups) with the privileges of the capabilities its process held.
    /// - With dynamic tracking, a message the kernel says came from another uid or
    ///   gid: never more than the connection proved. On a connection made as root
    ///   it is taken as that identity, with its gid only, no supplementary groups
    ///   and no privileges (a root client may act for anyone). On any other
    ///   connection it gets the connection's identity at Identification level at
    ///   most: the kernel attaches a sender's *real* ids by default (a thread of a
    ///   root process acting for a user has real uid 0), and a descriptor passed to
    ///   another process carries that process's ids.
    /// - An identity of the sentinel uid or gid (4294967294) is never above
    ///   Identification level.
    /// - At Anonymous level: the anonymous token. The client is not identified.
    /// - With `effective_only`: [`Token::effective_only`].
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] until a message was read from the client.
    pub fn token(&self) -> Result<Token> {
        let (uid, gid) = self.last_sender.ok_or_else(|| {
            Error::new(
                ErrorKind::CannotImpersonate,
                "no message has been read from this client yet",
            )
        })?;
        let level = self.level();
        if level == ImpersonationLevel::Anonymous {
            return Token::anonymous().duplicate(level, TokenType::Impersonation);
        }
        let p = &self.peer;
        let (token, level) = if (uid, gid) == (p.uid, p.gid) {
            let t = Token::from_ids_with_capabilities(
                uid,
                gid,
                &p.groups,
                p.permitted_capabilities,
                p.effective_capabilities,
            )?;
            (t, level)
        } else if p.uid == 0 && uid != 0 && gid != 0 {
            // A connection made as root may act for anyone: taking another
            // identity lowers it.
            (Token::from_ids(uid, gid, &[gid])?, level)
        } else {
            // Any other identity than the one the connection proved could be a
            // raise (another user's, root's): Identification at most.
            let t = Token::from_ids(p.uid, p.gid, &p.groups)?;
            (t, level.min(ImpersonationLevel::Identification))
        };
        // The sentinel stands for no one: never acted as above Identification.
        let unix = token.unix();
        let level = if crate::cred::is_sentinel(unix.uid(), unix.gid()) {
            level.min(ImpersonationLevel::Identification)
        } else {
            level
        };
        let token = token.duplicate(level, TokenType::Impersonation)?;
        Ok(if self.qos.effective_only {
            token.effective_only()
        } else {
            token
        })
    }
}

/// A new connection's client: its identity from the kernel, or `None` when the
/// server's policy refuses it.
pub(crate) fn admit(
    fd: std::os::fd::BorrowedFd<'_>,
    options: &ServerOptions,
) -> Result<Option<ClientInfo>> {
    // The pidfd served to read the client's capabilities; it is not kept, so that
    // a connection costs one descriptor.
    let (peer, _pidfd) = peer_identity(fd)?;
    if let Some(policy) = &options.policy
        && !policy(&peer)
    {
        tracing::info!(uid = peer.uid, pid = peer.pid, "client refused by policy");
        return Ok(None);
    }
    Ok(Some(ClientInfo::new(peer, options.max_level)))
}

/// Reads `buf.len()` bytes, keeping the kernel's credentials of the first bytes.
fn recv_exact_with_creds(stream: &UnixStream, buf: &mut [u8]) -> io::Result<Option<(u32, u32)>> {
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
                creds = Some((c.uid.as_raw(), c.gid.as_raw()));
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

/// Writes one frame.
pub(crate) fn encode_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
    frame.push(kind);
    frame.extend_from_slice(payload);
    frame
}

/// Checks a frame header; returns the kind and the payload length.
pub(crate) fn frame_header(header: &[u8; 5], max: usize) -> io::Result<(u8, usize)> {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len == 0 || len - 1 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes exceeds the maximum"),
        ));
    }
    Ok((header[4], len - 1))
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
                max_message: self.options.max_message,
                idle_timeout: self.options.idle_timeout,
                request_timeout: self.options.request_timeout,
            });
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> &PipeAddr {
        &self.addr
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
    ctx: ClientInfo,
    max_message: usize,
    idle_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
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
            let mut header = [0u8; 5];
            self.stream
                .set_read_timeout(self.idle_timeout)
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
                .set_read_timeout(self.request_timeout)
                .map_err(|e| io_err("setting the request timeout", &e))?;
            let bad = |e: io::Error| {
                Error::os(
                    ErrorKind::InvalidParameter,
                    "a malformed frame from the client",
                    &e,
                )
            };
            self.stream.read_exact(&mut header[1..]).map_err(bad)?;
            let (kind, len) = frame_header(&header, self.max_message).map_err(bad)?;
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).map_err(bad)?;
            if let Some(m) = self.ctx.frame(kind, payload, sender).map_err(bad)? {
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

    /// What the server knows of the client.
    pub fn client(&self) -> &ClientInfo {
        &self.ctx
    }

    /// Makes the calling thread impersonate the client
    /// ([`ImpersonateNamedPipeClient`]) until the guard is dropped, at
    /// [`ClientInfo::level`]. It works after the
    /// client disconnected. Without SeImpersonatePrivilege the thread gets
    /// Identification level (see [`crate::thread`]).
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] until a message was read from the client;
    /// otherwise as [`Token::impersonate`].
    ///
    /// [`ImpersonateNamedPipeClient`]: https://learn.microsoft.com/en-us/windows/win32/api/namedpipeapi/nf-namedpipeapi-impersonatenamedpipeclient
    #[doc(alias = "ImpersonateNamedPipeClient")]
    pub fn impersonate_client(&self) -> Result<Impersonation> {
        self.ctx.token()?.impersonate()
    }
}

/// Options of [`PipeClient::connect_with`].
#[derive(Clone, Debug, Default)]
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
        let os = |what: &'static str| move |e| Error::os(ErrorKind::Os, what, e);
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
        .map_err(|e| Error::os(ErrorKind::InvalidParameter, "the pipe address", e))?;
        rustix::net::connect(&fd, &sa).map_err(|e| {
            let kind = match e {
                rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => ErrorKind::AccessDenied,
                _ => ErrorKind::Os,
            };
            Error::os(kind, "connecting to the pipe", e)
        })?;
        if let Some(want) = options.server_uid {
            let server = sockopt::socket_peercred(&fd).map_err(os("SO_PEERCRED"))?;
            if server.uid.as_raw() != want {
                return Err(Error::new(
                    ErrorKind::AccessDenied,
                    format!(
                        "the server runs as uid {}, not {want}: refusing to talk to it",
                        server.uid.as_raw()
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
        client
            .stream
            .write_all(&encode_frame(KIND_SQOS, &qos.encode()))
            .map_err(|e| io_err("sending the quality of service", &e))?;
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
        r.map_err(|e| io_err("writing to the pipe", &e))
    }

    /// Receives a message; `None` when the server closed the connection.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] for a malformed reply.
    pub fn receive(&mut self) -> Result<Option<Vec<u8>>> {
        let mut header = [0u8; 5];
        match self.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io_err("reading from the pipe", &e)),
        }
        let (kind, len) =
            frame_header(&header, self.max_message).map_err(|e| io_err("a reply", &e))?;
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
