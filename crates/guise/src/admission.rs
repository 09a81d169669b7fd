//! Admission: which connections and calls a server takes in, how many at once,
//! and for how long.
//!
//! Every transport (the pipe, gRPC on a Unix socket, gRPC over Kerberos on TCP,
//! D-Bus) counts its clients here, with one set of limits ([`Limits`]) and one
//! policy. A transport only says where a client's uid comes from and what an
//! idle connection is; the counting, the defaults and what happens over a limit
//! are written once, in this module.
//!
//! # Policy
//! One rule per kind of limit, the same on every transport:
//!
//! | limit | default | over it |
//! |---|---|---|
//! | connections of one uid ([`Limits::max_connections_per_uid`]) | [`DEFAULT_MAX_CONNECTIONS_PER_UID`] | **refused**: the new connection is closed at once; the uid's other connections stay |
//! | connections in all ([`Limits::max_connections`], and no more than the open-file limit leaves room for) | [`DEFAULT_MAX_CONNECTIONS`] | **evict**: the connection idle the longest, of any uid, is closed to make room; if none is idle, the new one is refused |
//! | idle time ([`Limits::idle_timeout`]) | [`DEFAULT_IDLE_TIMEOUT`] | the connection is closed |
//! | one request ([`Limits::request_timeout`]) | [`DEFAULT_REQUEST_TIMEOUT`] | the connection (pipe) or the call (gRPC stream) is given up |
//! | calls of one uid in flight ([`Limits::max_calls_per_uid`]) | [`DEFAULT_MAX_CALLS_PER_UID`] | **refused**: the call fails with the transport's "quota" error |
//! | bytes of replies of one uid and in all ([`Limits::max_reply_bytes_per_uid`], [`Limits::max_reply_bytes`]) | [`DEFAULT_MAX_REPLY_BYTES_PER_UID`], [`DEFAULT_MAX_REPLY_BYTES`] | the call waits up to [`Limits::reply_wait`], then is **refused** |
//! | unauthenticated handshakes per address, network and in all ([`MAX_HANDSHAKES_PER_ADDRESS`], [`MAX_HANDSHAKES_PER_NETWORK`], [`MAX_HANDSHAKES`]) | 8, 16, 64 | **evict**: the oldest handshake of the address, of the network, or of the busiest network is closed; the new one is always taken |
//! | handshake time ([`DEFAULT_HANDSHAKE_TIMEOUT`]) | 10 s | the connection is closed |
//! | descriptors, at `accept` (`EMFILE`, `ENFILE`) | the process's limit | **evict**: the connection idle the longest is closed; other passing accept errors wait 10 ms, doubling up to 1 s |
//!
//! Why these: a limit that belongs to one identity (a uid's connections, calls
//! and bytes) refuses, so that a user over its share never takes anything from
//! anyone, itself included; a limit shared by everyone (all connections) evicts
//! the connection idle the longest, so that idle connections, however many users
//! hold them, never keep a new client out; handshakes have no identity yet (an
//! address is not one), so they evict the oldest of their own address or network
//! and a stalled flood makes room for itself, never for nobody.
//!
//! What *idle* means depends on how bytes move: a pipe connection is idle while
//! it waits for a request (never in the middle of one); a gRPC connection is idle
//! since the last byte moved either way, the same clock as its idle timeout.
//!
//! See also `docs/threat-model.md` (the attacks these limits answer) and
//! `docs/audit.md` (the events they log).
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use guise::admission::{Limits, DEFAULT_MAX_CONNECTIONS_PER_UID};
//! use guise::pipe::ServerOptions;
//!
//! let mut limits = Limits::default();
//! assert_eq!(limits.max_connections_per_uid, DEFAULT_MAX_CONNECTIONS_PER_UID);
//! limits.idle_timeout = Some(Duration::from_secs(30));
//! // Every transport takes the same limits: here an async pipe server's.
//! let mut options = ServerOptions::default();
//! options.limits = limits;
//! ```

#![cfg_attr(
    not(all(feature = "rpc", feature = "dbus", feature = "kerberos")),
    allow(dead_code)
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The most connections a server keeps open, unless set otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// The most connections of one uid a server keeps open, unless set otherwise.
pub const DEFAULT_MAX_CONNECTIONS_PER_UID: usize = 256;
/// How long a connection may stay idle, unless set otherwise (five minutes).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one request may take to arrive once begun, unless set otherwise
/// (ten seconds).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most calls of one uid in flight at once, unless set otherwise.
pub const DEFAULT_MAX_CALLS_PER_UID: usize = 64;
/// The most bytes of replies one uid holds at once, unless set otherwise (16 MiB).
pub const DEFAULT_MAX_REPLY_BYTES_PER_UID: u64 = 16 << 20;
/// The most bytes of replies every caller together holds at once, unless set
/// otherwise (32 MiB): twice one uid's share, so no one uid holds them all.
pub const DEFAULT_MAX_REPLY_BYTES: u64 = 32 << 20;
/// How long a call waits for bytes of the reply budget, unless set otherwise.
pub const DEFAULT_REPLY_WAIT: Duration = Duration::from_secs(10);
/// How long a network client may take to authenticate, unless set otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most unauthenticated handshakes in progress at once. When it is full, a
/// new connection is still taken: the oldest unfinished handshake of the busiest
/// network is closed to make room (see [`MAX_HANDSHAKES_PER_NETWORK`]).
pub const MAX_HANDSHAKES: usize = 64;
/// The most handshakes in progress at once from one address (an IPv4 or IPv6
/// address); a new one from an address that has as many closes that address's
/// oldest.
pub const MAX_HANDSHAKES_PER_ADDRESS: usize = 8;
/// The most blocking GSSAPI or NSS jobs of handshakes at once. A job outlives a
/// handshake that timed out (a blocking call cannot be cancelled): this bounds
/// the threads that stalled directories or KDCs can hold; a further job waits.
pub const MAX_HANDSHAKE_JOBS: usize = 64;
/// The most handshakes in progress at once from one network (an IPv4 /24, an
/// IPv6 /64); a new one from a network that has as many closes that network's
/// oldest. With [`MAX_HANDSHAKES`] full, the network with the most handshakes
/// loses its oldest: stalled connections from many addresses take places from
/// each other, never from a client that is alone on its network.
pub const MAX_HANDSHAKES_PER_NETWORK: usize = 16;

/// What the clients of a server may hold of it at once, and for how long: one
/// set for every transport (see the [module docs](self) for the policy).
///
/// A transport reads the limits that apply to it: the pipe its connections and
/// timeouts, gRPC its connections, idle timeout and calls, D-Bus (one connection
/// to the bus daemon) its calls and reply bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most connections kept open (default [`DEFAULT_MAX_CONNECTIONS`], and
    /// never more than the open-file limit leaves room for). A new one over it
    /// closes the connection idle the longest; if none is idle, it is refused.
    pub max_connections: usize,
    /// The most connections of one uid kept open (default
    /// [`DEFAULT_MAX_CONNECTIONS_PER_UID`]); a new one over it is refused.
    pub max_connections_per_uid: usize,
    /// How long a connection may stay idle before it is closed (default
    /// [`DEFAULT_IDLE_TIMEOUT`]; `None`: for ever).
    pub idle_timeout: Option<Duration>,
    /// How long a request may take to arrive once its first byte has (default
    /// [`DEFAULT_REQUEST_TIMEOUT`]; `None`: for ever). A client that starts a
    /// request and stalls is given up.
    pub request_timeout: Option<Duration>,
    /// The most calls of one uid in flight at once (default
    /// [`DEFAULT_MAX_CALLS_PER_UID`], at least 1); a call over it is refused, so
    /// that no one user holds every worker or fills the server's memory with
    /// queued calls.
    pub max_calls_per_uid: usize,
    /// The most bytes of replies of one uid held at once (default
    /// [`DEFAULT_MAX_REPLY_BYTES_PER_UID`]).
    pub max_reply_bytes_per_uid: u64,
    /// The same, for every caller together (default [`DEFAULT_MAX_REPLY_BYTES`]).
    pub max_reply_bytes: u64,
    /// How long a call waits for its reply's bytes before it is refused (default
    /// [`DEFAULT_REPLY_WAIT`]).
    pub reply_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_uid: DEFAULT_MAX_CONNECTIONS_PER_UID,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            max_calls_per_uid: DEFAULT_MAX_CALLS_PER_UID,
            max_reply_bytes_per_uid: DEFAULT_MAX_REPLY_BYTES_PER_UID,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            reply_wait: DEFAULT_REPLY_WAIT,
        }
    }
}

impl Limits {
    /// The most connections: [`Self::max_connections`], and no more than the
    /// limit of open files leaves room for (an eighth of it, at least 64, stays
    /// for the files requests open); at least 1.
    pub fn connection_limit(&self) -> usize {
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let room = usize::try_from(files.saturating_sub((files / 8).max(64))).unwrap_or(usize::MAX);
        self.max_connections.min(room).max(1)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a connection was not taken in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its uid had [`Limits::max_connections_per_uid`].
    Uid,
    /// There were [`Limits::max_connections`], none of them idle.
    Full,
}

impl Refusal {
    /// The limit it was over, as the audit trail names it.
    pub(crate) fn limit(self) -> &'static str {
        match self {
            Refusal::Uid => "connections-per-uid",
            Refusal::Full => "connections",
        }
    }
}

/// Milliseconds since the first use, for the idle clocks (`BUSY`: not idle).
fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
}

const BUSY: u64 = u64::MAX;

/// One open connection, as the table and the connection both see it.
#[derive(Debug)]
struct Conn {
    uid: u32,
    /// Since when it has been idle (`now_ms`), or `BUSY`.
    idle_since: AtomicU64,
    /// Set when the table closed it to make room.
    evicted: AtomicBool,
    /// The task to wake when it is evicted.
    waker: Mutex<Option<Waker>>,
}

impl Conn {
    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<u64, Arc<Conn>>,
    by_uid: HashMap<u32, usize>,
    next: u64,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.entries.remove(&id)?;
        if let Some(n) = self.by_uid.get_mut(&conn.uid) {
            *n -= 1;
            if *n == 0 {
                self.by_uid.remove(&conn.uid);
            }
        }
        Some(conn)
    }

    /// Closes the connection idle the longest; `false` if none is idle.
    fn evict_oldest_idle(&mut self) -> bool {
        let oldest = self
            .entries
            .iter()
            .map(|(id, c)| (c.idle_since.load(Ordering::Acquire), *id))
            .filter(|(t, _)| *t != BUSY)
            .min();
        match oldest.and_then(|(_, id)| self.remove(id)) {
            Some(conn) => {
                conn.evict();
                true
            }
            None => false,
        }
    }
}

/// The open connections of one server, by uid, within [`Limits`]: shared by
/// its listener and its connections.
#[derive(Clone, Debug)]
pub(crate) struct Connections {
    table: Arc<Mutex<Table>>,
    limits: Limits,
}

impl Connections {
    /// No connections yet, within `limits`.
    pub(crate) fn new(limits: Limits) -> Self {
        Connections {
            table: Arc::default(),
            limits,
        }
    }

    /// The limits the connections are held to.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How many are open.
    pub(crate) fn len(&self) -> usize {
        lock(&self.table).entries.len()
    }

    /// Takes in a new connection of `uid`, idle from now: refused over the uid's
    /// limit; over the limit of all connections, the one idle the longest is
    /// closed to make room (refused if none is idle).
    pub(crate) fn admit(&self, uid: u32) -> std::result::Result<Admitted, Refusal> {
        let mut t = lock(&self.table);
        let of_uid = t.by_uid.get(&uid).copied().unwrap_or(0);
        if of_uid >= self.limits.max_connections_per_uid.max(1) {
            return Err(Refusal::Uid);
        }
        if t.entries.len() >= self.limits.connection_limit() && !t.evict_oldest_idle() {
            return Err(Refusal::Full);
        }
        t.next += 1;
        let id = t.next;
        let conn = Arc::new(Conn {
            uid,
            idle_since: AtomicU64::new(now_ms()),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        t.entries.insert(id, Arc::clone(&conn));
        *t.by_uid.entry(uid).or_default() += 1;
        Ok(Admitted {
            table: Arc::clone(&self.table),
            id,
            conn,
        })
    }

    /// Closes the connection idle the longest (when the process is out of
    /// descriptors, say); `false` if none is idle.
    pub(crate) fn evict_oldest_idle(&self) -> bool {
        lock(&self.table).evict_oldest_idle()
    }
}

/// A connection's place among a server's [`Connections`], given back when
/// dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    table: Arc<Mutex<Table>>,
    id: u64,
    conn: Arc<Conn>,
}

impl Admitted {
    /// Marks the connection idle from now (`true`) or in a request (`false`): a
    /// connection in a request is never closed to make room.
    pub(crate) fn set_idle(&self, idle: bool) {
        let t = if idle { now_ms() } else { BUSY };
        self.conn.idle_since.store(t, Ordering::Release);
    }

    /// Whether the server closed it to make room.
    pub(crate) fn is_evicted(&self) -> bool {
        self.conn.evicted.load(Ordering::Acquire)
    }

    /// Ready once the server has closed it to make room; else wakes `cx` then.
    pub(crate) fn poll_evicted(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_evicted() {
            return Poll::Ready(());
        }
        {
            let mut w = lock(&self.conn.waker);
            match w.as_ref() {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        // Evicted in between: the waker may have been taken before it was set.
        if self.is_evicted() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Waits until the server closes it to make room.
    pub(crate) async fn evicted(&self) {
        std::future::poll_fn(|cx| self.poll_evicted(cx)).await;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.table).remove(self.id);
    }
}

/// What a listener does after `accept` fails, the same on every transport:
/// out of descriptors (`EMFILE`, `ENFILE`), it closes the connection idle the
/// longest and tries again at once; for other errors the kernel reports for a
/// lack of resources or a client gone before it was accepted, it waits, 10 ms
/// at first and twice as long each time after (up to 1 s), until an accept
/// succeeds. A warning is logged at most once a second.
#[derive(Debug)]
pub(crate) struct AcceptBackoff {
    pause: Duration,
}

static ACCEPT_WARNING: crate::listener::RateLimited = crate::listener::RateLimited::new();

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MOST: Duration = Duration::from_secs(1);

    pub(crate) fn new() -> Self {
        AcceptBackoff { pause: Self::FIRST }
    }

    /// An accept succeeded: the next error waits the shortest pause again.
    pub(crate) fn succeeded(&mut self) {
        self.pause = Self::FIRST;
    }

    /// How long to wait after `accept` failed with `e`, having made room among
    /// `connections` if the process is out of descriptors; `None` for an error
    /// that waiting does not cure.
    pub(crate) fn after(
        &mut self,
        e: &std::io::Error,
        connections: &Connections,
    ) -> Option<Duration> {
        use crate::listener::{is_fd_shortage, is_transient};
        if is_fd_shortage(e) && connections.evict_oldest_idle() {
            ACCEPT_WARNING.warn(|n| {
                tracing::warn!(%e, suppressed = n, "out of descriptors: closing the connection idle the longest");
            });
            return Some(Duration::from_millis(1));
        }
        if !is_transient(e) {
            return None;
        }
        let pause = self.pause;
        ACCEPT_WARNING.warn(|n| {
            tracing::warn!(%e, suppressed = n, pause_ms = pause.as_millis() as u64, "accept failed; backing off");
        });
        self.pause = (pause * 2).min(Self::MOST);
        Some(pause)
    }

    /// As [`Self::after`], for a listener no error ends (a TCP listener): an
    /// error waiting does not cure waits the longest pause.
    pub(crate) fn after_any(&mut self, e: &std::io::Error, connections: &Connections) -> Duration {
        self.after(e, connections).unwrap_or_else(|| {
            ACCEPT_WARNING
                .warn(|n| tracing::warn!(%e, suppressed = n, "accept failed; backing off"));
            Self::MOST
        })
    }
}

/// The calls each uid has in flight at a transport's service (gRPC, D-Bus): one
/// count per uid, shared by the service and the calls it let through.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallsInFlight(Arc<Mutex<HashMap<u32, usize>>>);

impl CallsInFlight {
    /// Counts a new call of `uid` if it has fewer than `max` (at least 1) in
    /// flight; else returns how many it has.
    fn count(&self, uid: u32, max: usize) -> std::result::Result<InFlightCall, usize> {
        let mut counts = lock(&self.0);
        let n = counts.entry(uid).or_default();
        if *n >= max.max(1) {
            return Err(*n);
        }
        *n += 1;
        Ok(InFlightCall {
            calls: self.clone(),
            uid,
        })
    }

    /// Counts a new call of `client` (by its uid), which came by `transport`,
    /// within `max` calls in flight; a call over it is refused and recorded
    /// (`call-refused`).
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotEnoughQuota`] over the limit.
    pub(crate) fn admit(
        &self,
        transport: crate::audit::Transport,
        client: &crate::client::PeerIdentity,
        max: usize,
    ) -> crate::error::Result<InFlightCall> {
        self.count(client.uid, max).map_err(|n| {
            crate::audit::call_refused(transport, client.uid, client.pid, "calls-per-uid");
            crate::error::Error::new(
                crate::error::ErrorKind::NotEnoughQuota,
                format!(
                    "uid {} has {n} calls in flight, the most a caller may have",
                    client.uid
                ),
            )
        })
    }
}

/// One call in flight of a uid: its place is given back when this is dropped.
#[derive(Debug)]
pub(crate) struct InFlightCall {
    calls: CallsInFlight,
    uid: u32,
}

impl Drop for InFlightCall {
    fn drop(&mut self) {
        let mut counts = lock(&self.calls.0);
        if let Some(n) = counts.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.uid);
            }
        }
    }
}

/// Bytes held in flight (replies not yet written), by uid and in total, within
/// [`Limits::max_reply_bytes_per_uid`] and [`Limits::max_reply_bytes`].
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub(crate) struct BytesInFlight {
    max_per_uid: u64,
    max_total: u64,
    wait: Duration,
    held: Mutex<Held>,
    /// Told whenever bytes are given back.
    freed: tokio::sync::Notify,
}

#[cfg(feature = "tokio")]
#[derive(Debug, Default)]
struct Held {
    total: u64,
    by_uid: HashMap<u32, u64>,
}

#[cfg(feature = "tokio")]
impl BytesInFlight {
    /// A budget of `limits`' reply bytes.
    pub(crate) fn new(limits: &Limits) -> Self {
        BytesInFlight {
            max_per_uid: limits.max_reply_bytes_per_uid,
            max_total: limits.max_reply_bytes,
            wait: limits.reply_wait,
            held: Mutex::default(),
            freed: tokio::sync::Notify::new(),
        }
    }

    /// Bytes held now, by every uid together.
    pub(crate) fn total(&self) -> u64 {
        lock(&self.held).total
    }

    /// Reserves `bytes` for `uid`: at once if they fit, else once they do (within
    /// the wait).
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotEnoughQuota`] if `bytes` could never fit, or did
    /// not within the wait.
    pub(crate) async fn reserve(
        self: &Arc<Self>,
        uid: u32,
        bytes: u64,
    ) -> crate::error::Result<HeldBytes> {
        use crate::error::{Error, ErrorKind};
        let most = self.max_per_uid.min(self.max_total);
        if bytes > most {
            return Err(Error::new(
                ErrorKind::NotEnoughQuota,
                format!(
                    "a reply of {bytes} bytes is more than a caller may hold at once ({most}): ask for less at a time"
                ),
            ));
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            // Listening before looking: bytes given back in between are not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut held = lock(&self.held);
                let mine = held.by_uid.get(&uid).copied().unwrap_or(0);
                if mine + bytes <= self.max_per_uid && held.total + bytes <= self.max_total {
                    held.total += bytes;
                    if bytes > 0 {
                        *held.by_uid.entry(uid).or_default() += bytes;
                    }
                    return Ok(HeldBytes {
                        budget: Arc::clone(self),
                        uid,
                        bytes,
                    });
                }
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                let held = lock(&self.held);
                let mine = held.by_uid.get(&uid).copied().unwrap_or(0);
                return Err(Error::new(
                    ErrorKind::NotEnoughQuota,
                    format!(
                        "replies not yet on the bus hold {mine} bytes of uid {uid}'s {} and {} of every caller's {}; a reply of {bytes} more waited {} ms: try again later",
                        self.max_per_uid,
                        held.total,
                        self.max_total,
                        self.wait.as_millis()
                    ),
                ));
            }
        }
    }
}

/// Bytes of a [`BytesInFlight`] budget, given back when dropped.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub(crate) struct HeldBytes {
    budget: Arc<BytesInFlight>,
    uid: u32,
    bytes: u64,
}

#[cfg(feature = "tokio")]
impl HeldBytes {
    /// How many bytes are held.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(feature = "tokio")]
impl Drop for HeldBytes {
    fn drop(&mut self) {
        {
            let mut held = lock(&self.budget.held);
            held.total -= self.bytes;
            if let Some(n) = held.by_uid.get_mut(&self.uid) {
                *n -= self.bytes;
                if *n == 0 {
                    held.by_uid.remove(&self.uid);
                }
            }
        }
        self.budget.freed.notify_waiters();
    }
}

/// An address and its network, as the handshake limits count them: an
/// IPv4-mapped IPv6 address is its IPv4 address; the network of an IPv4 address
/// is its /24, of an IPv6 address its /64.
pub(crate) fn address_and_network(ip: std::net::IpAddr) -> (std::net::IpAddr, std::net::IpAddr) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let network = match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00)),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
    };
    (ip, network)
}

/// Why a handshake was closed to make room for a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eviction {
    /// Its address had [`MAX_HANDSHAKES_PER_ADDRESS`].
    Address,
    /// Its network had [`MAX_HANDSHAKES_PER_NETWORK`].
    Network,
    /// There were [`MAX_HANDSHAKES`], and its network had the most.
    Full,
}

impl Eviction {
    /// The limit it was over, as the audit trail names it.
    pub(crate) fn limit(self) -> &'static str {
        match self {
            Eviction::Address => "handshakes-per-address",
            Eviction::Network => "handshakes-per-network",
            Eviction::Full => "handshakes",
        }
    }
}

/// One unfinished handshake; `T` is what stops it (a task's abort handle).
#[derive(Debug)]
pub(crate) struct Handshake<T> {
    pub(crate) id: u64,
    pub(crate) address: std::net::IpAddr,
    network: std::net::IpAddr,
    /// What stops it, to close it.
    pub(crate) task: Option<T>,
}

/// The handshakes in progress, oldest first, and the rules that admit a new
/// one: a pure structure (no I/O), so the rules are tested alone.
#[derive(Debug)]
pub(crate) struct Handshakes<T> {
    next: u64,
    open: std::collections::VecDeque<Handshake<T>>,
}

impl<T> Default for Handshakes<T> {
    fn default() -> Self {
        Handshakes {
            next: 0,
            open: std::collections::VecDeque::new(),
        }
    }
}

impl<T> Handshakes<T> {
    /// Takes a handshake from `ip`, always: returns its id, and the handshake
    /// closed to make room for it, if one had to be, and why.
    pub(crate) fn admit(
        &mut self,
        ip: std::net::IpAddr,
    ) -> (u64, Option<(Handshake<T>, Eviction)>) {
        let (address, network) = address_and_network(ip);
        let oldest_where = |open: &std::collections::VecDeque<Handshake<T>>,
                            f: &dyn Fn(&Handshake<T>) -> bool| {
            open.iter().position(f)
        };
        let of_address = self.open.iter().filter(|h| h.address == address).count();
        let of_network = self.open.iter().filter(|h| h.network == network).count();
        let evict = if of_address >= MAX_HANDSHAKES_PER_ADDRESS {
            oldest_where(&self.open, &|h| h.address == address).map(|i| (i, Eviction::Address))
        } else if of_network >= MAX_HANDSHAKES_PER_NETWORK {
            oldest_where(&self.open, &|h| h.network == network).map(|i| (i, Eviction::Network))
        } else if self.open.len() >= MAX_HANDSHAKES {
            // The network with the most handshakes (the new one's counted too);
            // of several, the one whose oldest is oldest.
            let mut counts: HashMap<std::net::IpAddr, usize> = HashMap::new();
            for h in &self.open {
                *counts.entry(h.network).or_default() += 1;
            }
            *counts.entry(network).or_default() += 1;
            let most = counts.values().copied().max().unwrap_or(0);
            oldest_where(&self.open, &|h| counts[&h.network] == most)
                .or(if counts[&network] == most {
                    Some(0)
                } else {
                    None
                })
                .map(|i| (i, Eviction::Full))
        } else {
            None
        };
        let evicted = evict.and_then(|(i, why)| self.open.remove(i).map(|h| (h, why)));
        let id = self.next;
        self.next += 1;
        self.open.push_back(Handshake {
            id,
            address,
            network,
            task: None,
        });
        (id, evicted)
    }

    /// What stops handshake `id`, to use if it is closed.
    pub(crate) fn set_task(&mut self, id: u64, task: T) {
        if let Some(h) = self.open.iter_mut().find(|h| h.id == id) {
            h.task = Some(task);
        }
    }

    /// Handshake `id` is over (or was closed).
    pub(crate) fn finish(&mut self, id: u64) {
        if let Some(i) = self.open.iter().position(|h| h.id == id) {
            self.open.remove(i);
        }
    }

    #[cfg(test)]
    fn is_open(&self, id: u64) -> bool {
        self.open.iter().any(|h| h.id == id)
    }
}

/// The handshake closed to make room for a new one, if one had to be, and why.
pub(crate) type Evicted<T> = Option<(Handshake<T>, Eviction)>;

/// A handshake's place in [`Handshakes`], given back when it ends.
#[derive(Debug)]
pub(crate) struct HandshakeSlot<T> {
    table: Arc<Mutex<Handshakes<T>>>,
    id: u64,
}

impl<T> HandshakeSlot<T> {
    /// Takes a place for a handshake from `ip` in `table` (see
    /// [`Handshakes::admit`]); the table stays locked in the guard returned, to
    /// record the handshake's task.
    pub(crate) fn admit(
        table: &Arc<Mutex<Handshakes<T>>>,
        ip: std::net::IpAddr,
    ) -> (HandshakeSlot<T>, MutexGuard<'_, Handshakes<T>>, Evicted<T>) {
        let mut t = lock(table);
        let (id, evicted) = t.admit(ip);
        (
            HandshakeSlot {
                table: Arc::clone(table),
                id,
            },
            t,
            evicted,
        )
    }

    /// Its id in the table.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl<T> Drop for HandshakeSlot<T> {
    fn drop(&mut self) {
        lock(&self.table).finish(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_uid: usize) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_uid: per_uid,
            ..Limits::default()
        }
    }

    /// The policy, a row per case: the connections open (uid, idle) before a new
    /// one of uid 1, and what happens to it.
    #[test]
    fn connection_policy_table() {
        #[derive(Debug, PartialEq)]
        enum Then {
            Taken { evicted: Option<usize> },
            Refused(Refusal),
        }
        /// A row: its name, the limits (all, per uid), the connections open
        /// (uid, idle), and what happens to a new one of uid 1.
        type Row<'a> = (&'a str, usize, usize, &'a [(u32, bool)], Then);
        let rows: &[Row<'_>] = &[
            ("room", 4, 2, &[(2, true)], Then::Taken { evicted: None }),
            (
                "uid at its limit is refused, even with idle ones",
                4,
                2,
                &[(1, true), (1, true)],
                Then::Refused(Refusal::Uid),
            ),
            (
                "all full: the one idle the longest goes",
                2,
                2,
                &[(2, true), (3, true)],
                Then::Taken { evicted: Some(0) },
            ),
            (
                "all full: a busy one is never closed",
                2,
                2,
                &[(2, false), (3, true)],
                Then::Taken { evicted: Some(1) },
            ),
            (
                "all full and all busy: refused",
                2,
                2,
                &[(2, false), (3, false)],
                Then::Refused(Refusal::Full),
            ),
            (
                "a limit of 0 is 1",
                0,
                0,
                &[],
                Then::Taken { evicted: None },
            ),
        ];
        for (name, total, per_uid, open, then) in rows {
            let c = Connections::new(limits(*total, *per_uid));
            let held: Vec<Admitted> = open
                .iter()
                .map(|(uid, idle)| {
                    let a = c.admit(*uid).expect(name);
                    a.set_idle(*idle);
                    // Distinct idle clocks, oldest first.
                    std::thread::sleep(Duration::from_millis(2));
                    a
                })
                .collect();
            let got = match c.admit(1) {
                Ok(_new) => Then::Taken {
                    evicted: held.iter().position(Admitted::is_evicted),
                },
                Err(r) => Then::Refused(r),
            };
            assert_eq!(&got, then, "{name}");
        }
    }

    /// A place is given back when its connection goes, also after an eviction
    /// (counted once).
    #[test]
    fn places_are_given_back_once() {
        let c = Connections::new(limits(1, 1));
        let a = c.admit(1).unwrap();
        let b = c.admit(2).unwrap();
        assert!(a.is_evicted());
        assert_eq!(c.len(), 1);
        drop(a);
        assert_eq!(c.len(), 1);
        assert_eq!(c.admit(2).unwrap_err(), Refusal::Uid);
        drop(b);
        assert_eq!(c.len(), 0);
        assert!(c.admit(2).is_ok());
    }

    /// One policy for accept errors: out of descriptors, the connection idle
    /// the longest goes; a passing error waits longer each time (up to 1 s)
    /// until an accept succeeds; any other error is not waited out.
    #[test]
    fn accept_errors_evict_then_back_off() {
        let err = |n| std::io::Error::from_raw_os_error(n);
        let c = Connections::new(limits(8, 8));
        let idle = c.admit(1).unwrap();
        let mut b = AcceptBackoff::new();
        assert_eq!(
            b.after(&err(libc::EMFILE), &c),
            Some(Duration::from_millis(1))
        );
        assert!(idle.is_evicted());
        // Nothing idle left: EMFILE waits like any passing error.
        let pauses: Vec<_> = (0..9)
            .map(|_| b.after(&err(libc::EMFILE), &c).unwrap().as_millis())
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.succeeded();
        assert_eq!(
            b.after(&err(libc::ECONNABORTED), &c),
            Some(Duration::from_millis(10))
        );
        assert_eq!(b.after(&err(libc::EBADF), &c), None);
        assert_eq!(b.after_any(&err(libc::EBADF), &c), Duration::from_secs(1));
    }

    #[test]
    fn calls_in_flight_are_counted_per_uid() {
        let calls = CallsInFlight::default();
        let a = calls.count(1, 2).unwrap();
        let _b = calls.count(1, 2).unwrap();
        assert_eq!(calls.count(1, 2).unwrap_err(), 2);
        assert!(calls.count(2, 2).is_ok());
        drop(a);
        assert!(calls.count(1, 2).is_ok());
        // A limit of 0 is 1.
        assert!(calls.count(3, 0).is_ok());
    }

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    /// One address holds at most its share: its next handshake closes its oldest,
    /// not anyone else's.
    #[test]
    fn a_handshake_over_an_addresss_share_closes_that_addresss_oldest() {
        let mut table = Handshakes::<()>::default();
        let (other, _) = table.admit(ip("10.0.0.9"));
        for _ in 0..MAX_HANDSHAKES_PER_ADDRESS {
            assert!(table.admit(ip("10.0.0.1")).1.is_none());
        }
        let (_, evicted) = table.admit(ip("10.0.0.1"));
        let (h, why) = evicted.expect("one closed");
        assert_eq!((h.id, why), (1, Eviction::Address));
        assert!(table.is_open(other));
        // An IPv4-mapped IPv6 address is the same address.
        let (_, evicted) = table.admit(ip("::ffff:10.0.0.1"));
        assert_eq!(
            evicted.map(|(h, w)| (h.id, w)),
            Some((2, Eviction::Address))
        );
    }

    /// One network (IPv4 /24, IPv6 /64) holds at most its share, whatever the
    /// number of its addresses.
    #[test]
    fn a_handshake_over_a_networks_share_closes_that_networks_oldest() {
        for (fmt, other) in [
            ("10.0.0.{}", "10.0.1.1"),
            ("2001:db8::{:x}", "2001:db8:0:1::1"),
        ] {
            let mut table = Handshakes::<()>::default();
            let (lone, _) = table.admit(ip(other));
            for i in 1..=MAX_HANDSHAKES_PER_NETWORK {
                let a = fmt
                    .replace("{}", &i.to_string())
                    .replace("{:x}", &format!("{i:x}"));
                assert!(table.admit(ip(&a)).1.is_none(), "{a}");
            }
            let a = fmt.replace("{}", "200").replace("{:x}", "c8");
            let (_, evicted) = table.admit(ip(&a));
            let (h, why) = evicted.expect("one closed");
            assert_eq!((h.id, why), (1, Eviction::Network), "{a}");
            assert!(table.is_open(lone));
        }
    }

    /// Attack (issue 19): stalled handshakes from 256 addresses (16 networks)
    /// took every place, and nobody else could log on. A client alone on its
    /// network keeps its place through any number of them; the flood's own
    /// handshakes make room for each other.
    #[test]
    fn a_flood_from_many_addresses_never_closes_a_lone_clients_handshake() {
        let mut table = Handshakes::<()>::default();
        let flood = |n: usize| ip(&format!("127.0.{}.{}", 1 + (n / 16) % 16, 1 + n % 16));
        for n in 0..1000 {
            table.admit(flood(n));
        }
        assert_eq!(table.open.len(), MAX_HANDSHAKES);
        let (genuine, evicted) = table.admit(ip("127.0.0.1"));
        assert_eq!(evicted.map(|(_, w)| w), Some(Eviction::Full));
        for n in 1000..5000 {
            let (_, evicted) = table.admit(flood(n));
            assert_ne!(evicted.map(|(h, _)| h.id), Some(genuine));
        }
        assert!(table.is_open(genuine));
        assert_eq!(table.open.len(), MAX_HANDSHAKES);
        // With one address on each network, the oldest goes: a new handshake
        // stays until as many newer ones came.
        let mut table = Handshakes::<()>::default();
        for n in 0..=255u32 {
            table.admit(ip(&format!("10.{n}.0.1")));
        }
        let (genuine, _) = table.admit(ip("192.0.2.1"));
        for n in 0..(MAX_HANDSHAKES as u32 - 1) {
            table.admit(ip(&format!("10.{n}.1.1")));
        }
        assert!(table.is_open(genuine));
        table.finish(genuine);
        assert!(!table.is_open(genuine));
    }
}
