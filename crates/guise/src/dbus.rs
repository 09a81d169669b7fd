//! DDE on Linux: a server impersonates the caller of a D-Bus method
//! ([`DbusCall::impersonate_client`], DdeImpersonateClient), with zbus.
//!
//! The transport is a thin adapter over the client-identity core
//! ([`crate::client`]). The caller's identity comes from the bus daemon
//! (`org.freedesktop.DBus.GetConnectionCredentials` of the message's sender: its
//! `UnixUserID`, `UnixGroupIDs`, `ProcessID`), which the daemon read from the
//! kernel when the caller connected; never from the message body. Its level is
//! what the caller asked for with [`DbusClients::set_quality_of_service`]
//! (DdeSetQualityOfService, a method the service exposes and the caller calls once
//! per connection); until then it is Identification. The level is kept per
//! connection (unique name), not per uid, and lowered to the server's maximum,
//! never raised. A method may also take the level of one call from its caller
//! ([`DbusClients::call_at`], say an `a{sv}` option `level`): what a client that
//! opens a connection per call (busctl, gdbus, dbus-send) needs.
//!
//! Credentials are cached per unique name and dropped when the name goes
//! (`NameOwnerChanged`); a sender whose name has gone, or whose credentials the bus
//! does not give, is refused. The bus reports the caller's groups, not which of
//! them is its primary group: the token's primary group is the account's (from
//! NSS) when the bus lists it among the caller's groups; otherwise the caller is
//! served at Identification level at most (the sentinel group stands for it). A
//! bus that gives no groups at all gets the same treatment. Privileges: none (the
//! daemon of Debian 12 gives no process descriptor to read capabilities through).
//!
//! zbus serves method calls concurrently: a call sent right after
//! `SetQualityOfService`, without waiting for its reply, may still be served at the
//! earlier level. Each uid may have [`DEFAULT_MAX_CALLS_PER_UID`] calls in flight
//! (see [`DbusLimits`], the shared [`Limits`], and [`crate::admission`] for the
//! policy).
//!
//! # Replies
//! A reply goes out through the service's one connection to the bus daemon, which
//! takes it in at its own pace, whether or not the caller reads it; every reply
//! written after it waits its turn. A method whose reply is large first reserves
//! its bytes ([`DbusCall::reserve_reply`]) and returns them with the value
//! ([`ReplyBytes::hold`]): they stay counted until zbus has written the reply to
//! the bus. Each uid may hold [`DEFAULT_MAX_REPLY_BYTES_PER_UID`] bytes of replies
//! at once and every caller together [`DEFAULT_MAX_REPLY_BYTES`]; a call over the
//! budget waits for bytes to be given back (a caller's own calls wait behind each
//! other, not behind anyone else's), and is refused
//! ([`ErrorKind::NotEnoughQuota`]) if they are not back within
//! [`DbusLimits::reply_wait`], or if the reply could never fit. So the service's
//! memory for replies is bounded, and a caller that never reads its replies delays
//! another caller's by its own share at most.
//!
//! The work itself runs on an [`ImpersonationPool`] worker, as for gRPC:
//! [`DbusCall::run_as_client`], or [`DbusCall::impersonate_client`] in a closure
//! given to [`ImpersonationPool::run`]. A thread of a tokio runtime never
//! impersonates.
//!
//! # Example
//! A method that runs as its caller (the whole service, with a private bus, is
//! the repository's `crates/guise/examples/dbus_service.rs`):
//!
//! ```no_run
//! use std::sync::Arc;
//! use guise::dbus::DbusClients;
//! use guise::pool::ImpersonationPool;
//! use zbus::{fdo, message::Header};
//!
//! struct Reports { clients: Arc<DbusClients>, pool: Arc<ImpersonationPool> }
//!
//! #[zbus::interface(name = "org.example.Reports1")]
//! impl Reports {
//!     async fn read(&self, #[zbus(header)] header: Header<'_>, path: String) -> fdo::Result<Vec<u8>> {
//!         let failed = |e: guise::Error| fdo::Error::Failed(e.to_string());
//!         let call = self.clients.call(&header).await.map_err(failed)?;
//!         // DdeImpersonateClient on a worker thread, RevertToSelf after it.
//!         call.run_as_client(&self.pool, move || {
//!             guise::thread::check_open_as_client()?; // Identification opens nothing
//!             std::fs::read(&path).map_err(|e| guise::Error::os(guise::ErrorKind::AccessDenied, "read", &e))
//!         })
//!         .await
//!         .and_then(|r| r)
//!         .map_err(failed)
//!     }
//! }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zbus::message::Header;
use zbus::names::{BusName, OwnedUniqueName, UniqueName};

use crate::admission::{BytesInFlight, CallsInFlight, HeldBytes, InFlightCall, Limits};
use crate::audit::Transport;
use crate::client::{ClientContext, PeerIdentity, SecurityQos};
use crate::cred::SENTINEL_GID;
use crate::error::{Error, ErrorKind, Result};
use crate::pool::ImpersonationPool;
use crate::thread::Impersonation;
use crate::token::{ImpersonationLevel, Token};

/// What the server knows of one bus connection.
#[derive(Debug)]
struct Entry {
    peer: Arc<PeerIdentity>,
    qos: Mutex<SecurityQos>,
}

/// The callers of a D-Bus service: their identities from the bus daemon, cached per
/// unique name until the name goes, and the level each connection allowed.
#[derive(Debug)]
pub struct DbusClients {
    dbus: zbus::fdo::DBusProxy<'static>,
    max_level: ImpersonationLevel,
    entries: Mutex<HashMap<OwnedUniqueName, Arc<Entry>>>,
    max_calls_per_uid: usize,
    in_flight: CallsInFlight,
    replies: Arc<BytesInFlight>,
}

pub use crate::admission::{
    DEFAULT_MAX_CALLS_PER_UID, DEFAULT_MAX_REPLY_BYTES, DEFAULT_MAX_REPLY_BYTES_PER_UID,
};

/// What the callers of a D-Bus service may hold of it at once: the shared
/// [`Limits`], of which D-Bus reads the calls of one uid in flight
/// ([`Limits::max_calls_per_uid`], refused with [`ErrorKind::NotEnoughQuota`]
/// over it), the bytes of replies held ([`Limits::max_reply_bytes_per_uid`],
/// [`Limits::max_reply_bytes`]: from [`DbusCall::reserve_reply`] until zbus has
/// written the reply to the bus) and [`Limits::reply_wait`].
pub type DbusLimits = Limits;

/// Bytes of the reply budget a call holds, given back when dropped: by the
/// [`Reply`] that carries them once zbus has written the reply to the bus.
#[derive(Debug)]
#[must_use = "the bytes are given back at once when dropped"]
pub struct ReplyBytes(HeldBytes);

impl ReplyBytes {
    /// The number of bytes held.
    pub fn bytes(&self) -> u64 {
        self.0.bytes()
    }

    /// A method's return value that keeps these bytes until zbus has written it to
    /// the bus (or dropped it): return it from a `#[zbus::interface]` method in
    /// place of `value`; its D-Bus type is `value`'s.
    pub fn hold<R>(self, value: R) -> Reply<R> {
        Reply {
            value,
            _bytes: self,
        }
    }
}

/// A reply that holds its bytes of the budget until it is sent
/// ([`ReplyBytes::hold`]); serialized as the value it carries.
#[derive(Debug)]
pub struct Reply<R> {
    value: R,
    _bytes: ReplyBytes,
}

impl<R> Reply<R> {
    /// The value the reply carries.
    pub fn value(&self) -> &R {
        &self.value
    }
}

impl<R: zbus::export::serde::Serialize> zbus::export::serde::Serialize for Reply<R> {
    fn serialize<S: zbus::export::serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<R: zbus::zvariant::Type> zbus::zvariant::Type for Reply<R> {
    const SIGNATURE: &'static zbus::zvariant::Signature = R::SIGNATURE;
}

impl DbusClients {
    /// The callers of the service on `connection`, served at `max_level` at most.
    /// Starts a task (on the current tokio runtime) that forgets a caller when its
    /// unique name goes.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the bus cannot be asked.
    pub async fn new(
        connection: &zbus::Connection,
        max_level: ImpersonationLevel,
    ) -> Result<Arc<DbusClients>> {
        Self::with_limits(connection, max_level, DbusLimits::default()).await
    }

    /// The callers of the service on `connection`, served at `max_level` at most,
    /// within `limits`.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub async fn with_limits(
        connection: &zbus::Connection,
        max_level: ImpersonationLevel,
        limits: DbusLimits,
    ) -> Result<Arc<DbusClients>> {
        let dbus = zbus::fdo::DBusProxy::new(connection)
            .await
            .map_err(|e| bus_error("the bus daemon", e))?;
        let mut gone = dbus
            .receive_name_owner_changed()
            .await
            .map_err(|e| bus_error("NameOwnerChanged", e))?;
        let clients = Arc::new(DbusClients {
            dbus,
            max_level,
            entries: Mutex::default(),
            max_calls_per_uid: limits.max_calls_per_uid.max(1),
            in_flight: CallsInFlight::default(),
            replies: Arc::new(BytesInFlight::new(&limits)),
        });
        let weak = Arc::downgrade(&clients);
        tokio::spawn(async move {
            use tokio_stream::StreamExt;
            while let Some(signal) = gone.next().await {
                let Some(clients) = weak.upgrade() else {
                    return;
                };
                let Ok(args) = signal.args() else { continue };
                if let (BusName::Unique(name), None) = (args.name(), args.new_owner().as_ref()) {
                    clients
                        .lock()
                        .remove(&OwnedUniqueName::from(name.to_owned()));
                }
            }
        });
        Ok(clients)
    }

    /// The same, with `max` calls of one uid in flight at once (at least 1; see
    /// [`DbusLimits::max_calls_per_uid`]) and the other limits' defaults.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub async fn with_max_calls_per_uid(
        connection: &zbus::Connection,
        max_level: ImpersonationLevel,
        max: usize,
    ) -> Result<Arc<DbusClients>> {
        let limits = DbusLimits {
            max_calls_per_uid: max,
            ..DbusLimits::default()
        };
        Self::with_limits(connection, max_level, limits).await
    }

    /// How many bytes of replies are held now, by every caller together.
    pub fn reply_bytes_held(&self) -> u64 {
        self.replies.total()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OwnedUniqueName, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many callers are cached.
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    /// The entry of the sender of `header`: cached, or asked of the bus.
    async fn entry(&self, header: &Header<'_>) -> Result<Arc<Entry>> {
        let sender = header.sender().ok_or_else(|| {
            Error::new(
                ErrorKind::AccessDenied,
                "a message without a sender is not served",
            )
        })?;
        let key = OwnedUniqueName::from(sender.to_owned());
        if let Some(e) = self.lock().get(&key) {
            return Ok(Arc::clone(e));
        }
        let peer = self.identity_of(sender).await?;
        let entry = Arc::new(Entry {
            peer: Arc::new(peer),
            qos: Mutex::new(SecurityQos::default()),
        });
        let entry = Arc::clone(self.lock().entry(key.clone()).or_insert(entry));
        // The name may have gone while it was looked up, before the entry was there
        // to be forgotten: such a caller is refused, and not remembered.
        let alive = self
            .dbus
            .name_has_owner(BusName::Unique(sender.clone()))
            .await
            .unwrap_or(false);
        if !alive {
            self.lock().remove(&key);
            return Err(Error::new(
                ErrorKind::AccessDenied,
                format!("{sender} has left the bus"),
            ));
        }
        Ok(entry)
    }

    /// The identity the bus daemon gives for `sender`.
    async fn identity_of(&self, sender: &UniqueName<'_>) -> Result<PeerIdentity> {
        let creds = self
            .dbus
            .get_connection_credentials(BusName::Unique(sender.clone()))
            .await
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::AccessDenied,
                    format!("the bus gives no credentials for {sender} (gone?)"),
                    e,
                )
            })?;
        let uid = creds.unix_user_id().ok_or_else(|| {
            Error::new(
                ErrorKind::AccessDenied,
                format!("the bus gives no uid for {sender}"),
            )
        })?;
        let mut groups = creds.unix_group_ids().cloned().unwrap_or_default();
        groups.sort_unstable();
        groups.dedup();
        let pid = creds
            .process_id()
            .map_or(0, |p| i32::try_from(p).unwrap_or(0));
        let gid = primary_group(uid, &groups).await?;
        PeerIdentity::vouched(pid, uid, gid, groups, None)
    }

    /// The call a message belongs to: its sender's identity and level.
    ///
    /// The call counts among its uid's calls in flight until the last copy of the
    /// returned [`DbusCall`] is dropped.
    ///
    /// # Errors
    /// [`ErrorKind::AccessDenied`] for a message without a sender, a sender whose
    /// name has gone or whose credentials the bus does not give;
    /// [`ErrorKind::NotEnoughQuota`] over the uid's calls in flight;
    /// [`ErrorKind::Os`] if the account database cannot be read.
    pub async fn call(&self, header: &Header<'_>) -> Result<DbusCall> {
        self.call_with_level(header, None).await
    }

    /// The call of a message that states its own level for this call alone (an
    /// option of the method, for clients that open a connection per call, as
    /// busctl, gdbus and dbus-send do), in place of the level its connection set
    /// with [`Self::set_quality_of_service`]. The level goes through the same
    /// rules as any other: lowered to the server's maximum, never raised, and
    /// held lower where the caller's identity is not whole (see the module
    /// docs). Other calls of the connection keep its own level.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn call_at(
        &self,
        header: &Header<'_>,
        level: ImpersonationLevel,
    ) -> Result<DbusCall> {
        self.call_with_level(header, Some(level)).await
    }

    /// [`Self::call`], at `level` if given, else at the connection's level.
    async fn call_with_level(
        &self,
        header: &Header<'_>,
        level: Option<ImpersonationLevel>,
    ) -> Result<DbusCall> {
        let entry = self.entry(header).await?;
        // The call's place among its uid's calls in flight, given back when the
        // last copy of the call goes.
        let counted = Arc::new(self.in_flight.admit(
            Transport::Dbus,
            &entry.peer,
            self.max_calls_per_uid,
        )?);
        let mut qos = *entry.qos.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(level) = level {
            qos.level = level;
        }
        let mut client = ClientContext::new(Arc::clone(&entry.peer), self.max_level);
        client.set_qos(qos);
        // The method call has arrived: it counts as a message read.
        client.message_received(None);
        Ok(DbusCall {
            client,
            _counted: counted,
            replies: Arc::clone(&self.replies),
        })
    }

    /// Records the level the sender of `header` allows for the rest of its
    /// connection ([`DdeSetQualityOfService`]).
    ///
    /// # Errors
    /// As [`Self::call`].
    ///
    /// [`DdeSetQualityOfService`]: https://learn.microsoft.com/en-us/windows/win32/api/dde/nf-dde-ddesetqualityofservice
    #[doc(alias = "DdeSetQualityOfService")]
    pub async fn set_quality_of_service(
        &self,
        header: &Header<'_>,
        level: ImpersonationLevel,
    ) -> Result<()> {
        let entry = self.entry(header).await?;
        let mut qos = entry.qos.lock().unwrap_or_else(|p| p.into_inner());
        qos.level = level;
        Ok(())
    }
}

/// The primary group of the caller's token: the account's, if the bus lists it
/// among the caller's groups; else the sentinel group, which holds the caller at
/// Identification level. A lookup that fails is an error (never a guess).
async fn primary_group(uid: u32, groups: &[u32]) -> Result<u32> {
    let lookup = tokio::task::spawn_blocking(move || {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
    })
    .await
    .map_err(|e| Error::with_source(ErrorKind::Os, format!("looking up uid {uid}"), e))?
    .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up uid {uid}"), e))?;
    Ok(match lookup {
        Some(user) if groups.contains(&user.gid.as_raw()) => user.gid.as_raw(),
        _ => SENTINEL_GID,
    })
}

/// A failed call to the bus while doing `what`, zbus's error kept as the cause;
/// of the kind of an I/O error behind it ([`ErrorKind::of_io`]), else
/// [`ErrorKind::Os`].
fn bus_error(what: &str, e: zbus::Error) -> Error {
    let kind = match &e {
        zbus::Error::InputOutput(io) => ErrorKind::of_io(io),
        _ => ErrorKind::Os,
    };
    Error::with_source(kind, what.to_owned(), e)
}

/// One method call: its caller's identity and the level it allowed. It can be sent
/// to any thread.
#[derive(Clone, Debug)]
pub struct DbusCall {
    client: ClientContext,
    _counted: Arc<InFlightCall>,
    replies: Arc<BytesInFlight>,
}

impl DbusCall {
    /// Reserves `bytes` of the reply budget for this call's reply (see the
    /// [module docs](self#replies)): at once if the caller's uid and every caller
    /// together stay within their shares, else once enough bytes are given back.
    /// Reserve before the data is read, and return it with [`ReplyBytes::hold`].
    ///
    /// # Errors
    /// [`ErrorKind::NotEnoughQuota`] if `bytes` is more than one uid or every
    /// caller may hold, or if they are not given back within
    /// [`DbusLimits::reply_wait`].
    pub async fn reserve_reply(&self, bytes: u64) -> Result<ReplyBytes> {
        self.replies
            .reserve(self.peer().uid, bytes)
            .await
            .map(ReplyBytes)
    }

    /// The bus daemon's view of the caller.
    pub fn peer(&self) -> &PeerIdentity {
        self.client.peer()
    }

    /// The caller's quality of service: its level as it asked for it (for this
    /// call, or for its connection).
    pub fn qos(&self) -> SecurityQos {
        self.client.qos()
    }

    /// The level the server may impersonate the caller at.
    pub fn level(&self) -> ImpersonationLevel {
        self.client.level()
    }

    /// The caller's token at [`Self::level`].
    ///
    /// # Errors
    /// As [`ClientContext::token`].
    pub fn token(&self) -> Result<Token> {
        self.client.token()
    }

    /// Makes the calling thread impersonate the caller ([`DdeImpersonateClient`])
    /// until the guard is dropped. Never on a thread of a tokio runtime: run it on
    /// an [`ImpersonationPool`] worker.
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] on a thread of a tokio runtime; otherwise as
    /// [`Token::impersonate`].
    ///
    /// [`DdeImpersonateClient`]: https://learn.microsoft.com/en-us/windows/win32/api/dde/nf-dde-ddeimpersonateclient
    #[doc(alias = "DdeImpersonateClient")]
    pub fn impersonate_client(&self) -> Result<Impersonation> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::new(
                ErrorKind::CannotImpersonate,
                "a thread of an async runtime never impersonates: run the work on an ImpersonationPool",
            ));
        }
        self.token()?.impersonate()
    }

    /// Runs `f` on a worker of `pool` that impersonates the caller
    /// (DdeImpersonateClient), and returns its result.
    ///
    /// # Errors
    /// As [`ImpersonationPool::run_as`].
    #[doc(alias = "DdeImpersonateClient")]
    pub async fn run_as_client<R: Send + 'static>(
        &self,
        pool: &ImpersonationPool,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        // The call counts as in flight until its job has run, also when the
        // caller stops waiting for it (a timeout around this future).
        let counted = Arc::clone(&self._counted);
        pool.run_as(self.token()?, move || {
            let _counted = counted;
            f()
        })
        .await
    }
}
