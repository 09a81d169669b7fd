//! Kerberos: clients on other machines, authenticated with GSSAPI on MIT krb5
//! (libgssapi_krb5, bound by hand), their delegated credentials, and the network
//! credentials of tokens.
//!
//! - [`Acceptor`] authenticates a connection as a service whose keys are in a
//!   keytab. The client's principal maps to a local account by the system's own
//!   rules (`gss_localname`: krb5's `auth_to_local` and `aname_to_localname`), and
//!   the account's ids and groups come from NSS, so LDAP or SSSD directories work
//!   unchanged. The client core ([`crate::client`]) makes its token, with the
//!   NETWORK logon SID. Authentication is mutual: the client knows it talks to the
//!   service it named. A replayed authenticator is refused by the krb5 replay
//!   cache, and every frame after the handshake is sealed (encrypted and
//!   integrity-protected) and numbered, so none can be replayed, dropped or
//!   reordered unnoticed.
//! - [`Initiator`] is the client. It authenticates with the calling thread's
//!   default credentials: the process's `KRB5CCNAME`, or, on a thread that
//!   impersonates a token with a credential cache, that cache (see
//!   [`crate::thread`]). With delegation it forwards the client's ticket-granting
//!   ticket, by default only to a service the KDC marks OK-AS-DELEGATE, as
//!   Windows does ([`Delegation`]).
//! - A client that delegated gets a credential cache of its own on the server
//!   ([`crate::token::CredentialCache`]): for a forwarded ticket, a private
//!   directory owned by the client's account (for its processes) in a directory
//!   of the server's that the client cannot write to, and a memory copy (for the
//!   server's impersonating threads, which never open the client's file); for
//!   constrained delegation
//!   (S4U2Proxy credentials, which hold the service's own ticket), a memory cache
//!   of the server process. Either goes when the last token holding it is
//!   dropped; the client's token carries it at Delegation level only.
//!
//! # Wire format
//! The client first sends the eight bytes `GUISEGS1`. Then each side sends frames:
//! a kind byte, a 32-bit big-endian length, and that many bytes.
//!
//! | kind | from | body |
//! |---|---|---|
//! | 1 | both | a GSSAPI context token |
//! | 2 | server | why the client is refused (UTF-8); the server then closes |
//! | 3 | server | accepted: the acceptor's last context token (may be empty) |
//! | 4 | both | data: `gss_wrap` (sealed) of a 64-bit big-endian frame number, counted from 0 in each direction, and at most 16 KiB of the stream |
//!
//! A handshake token is at most 64 KiB; the handshake must end within
//! [`KerberosOptions::handshake_timeout`]. After kind 3 both sides speak HTTP/2
//! (gRPC) inside data frames. The frames are written and taken apart in one
//! module without I/O (`kerberos::wire`, which the fuzz target `kerberos_frames`
//! drives).
//!
//! # Example
//! A server that authenticates one client and acts as its account (the whole
//! client and server are the repository's `crates/guise/examples/kerberos_server.rs`):
//!
//! ```no_run
//! use std::sync::Arc;
//! use guise::client::{ClientContext, SecurityQos};
//! use guise::kerberos::{Acceptor, KerberosOptions};
//! use guise::ImpersonationLevel;
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let acceptor = Acceptor::from_keytab(
//!     "/etc/guise.keytab".as_ref(),
//!     Some("guise/files.example.com@EXAMPLE.COM"),
//!     KerberosOptions::default(),
//! )?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:4455").await?;
//! let (tcp, from) = listener.accept().await?;
//! // AcceptSecurityContext; the principal's local account comes from NSS.
//! let (_sealed_stream, peer) = acceptor.accept(tcp, from).await?;
//! let mut client = ClientContext::new(peer, ImpersonationLevel::Impersonation);
//! client.set_qos(SecurityQos { level: ImpersonationLevel::Impersonation, ..SecurityQos::default() });
//! client.message_received(None);
//! let pool = Arc::new(guise::pool::ImpersonationPool::new(4)?);
//! let uid = pool.run_as(client.token()?, || rustix::process::geteuid().as_raw()).await?;
//! println!("acted as uid {uid}");
//! # Ok(())
//! # }
//! ```

use std::ffi::CString;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::client::{NetworkClient, PeerIdentity};
use crate::error::{Error, ErrorKind, Result};
use crate::listener::io_err;
use crate::sys::gss::{
    Cred, CtxFlags, GSS_C_NT_HOSTBASED_SERVICE, GSS_KRB5_NT_PRINCIPAL_NAME, GSS_MECH_KRB5,
    GssError, Name, SecurityContext,
};
use crate::token::{CacheParent, CredentialCache, PrivateCacheDir, Removal, file_id};

#[doc(hidden)]
pub mod pac;
pub mod wire;

use wire::{ACCEPTED, MAX_REFUSAL, REFUSED, TOKEN};
pub use wire::{MAGIC, MAX_HANDSHAKE_TOKEN};

/// The flags a guise context needs: mutual authentication, replay and sequence
/// detection, confidentiality and integrity.
fn required_flags() -> CtxFlags {
    CtxFlags::GSS_C_MUTUAL_FLAG
        | CtxFlags::GSS_C_REPLAY_FLAG
        | CtxFlags::GSS_C_SEQUENCE_FLAG
        | CtxFlags::GSS_C_CONF_FLAG
        | CtxFlags::GSS_C_INTEG_FLAG
}

/// Options of an [`Acceptor`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KerberosOptions {
    /// How long a client may take to authenticate (default
    /// [`crate::admission::DEFAULT_HANDSHAKE_TIMEOUT`]); a connection that has
    /// not by then is closed.
    pub handshake_timeout: Duration,
    /// Where the server makes its directory of clients' delegated credential
    /// caches (default: the temporary directory, `TMPDIR` or `/tmp`): a new
    /// directory of its own (mode 0711), made with the first forwarded ticket,
    /// in which each client gets a private directory.
    pub cache_dir: PathBuf,
    /// Whether a principal that maps to root (uid 0) is served (default: no; such a
    /// client is refused).
    pub allow_root: bool,
    /// The directory of the acceptor's replay cache (`guise.rcache2` in it),
    /// which must be the process's own, not a symlink, and closed to group and
    /// others (systemd's `StateDirectory=`, say, so that replays are caught
    /// across restarts). Default (`None`): a new private directory (0700) in
    /// the temporary directory, removed with the acceptor. Never krb5's default
    /// (a file in the shared `/var/tmp`, which any user can create first).
    pub replay_cache_dir: Option<PathBuf>,
}

impl Default for KerberosOptions {
    fn default() -> Self {
        KerberosOptions {
            handshake_timeout: crate::admission::DEFAULT_HANDSHAKE_TIMEOUT,
            cache_dir: std::env::temp_dir(),
            allow_root: false,
            replay_cache_dir: None,
        }
    }
}

fn gss_error(kind: ErrorKind, what: &str, e: &GssError) -> Error {
    Error::new(kind, format!("{what}: {e}"))
}

/// A name from the network as logs and messages show it: control characters
/// (CR, ESC, …) escaped as `\xNN` or `\u{…}`, so that no principal can forge a
/// log line or drive a terminal.
pub(crate) fn printable(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let n = c as u32;
            let _ = if n < 0x100 {
                write!(out, "\\x{n:02x}")
            } else {
                write!(out, "\\u{{{n:x}}}")
            };
        } else {
            out.push(c);
        }
    }
    out
}

/// The display form of a GSSAPI name.
fn display(name: &Name) -> std::result::Result<String, GssError> {
    Ok(String::from_utf8_lossy(&name.display()?).into_owned())
}

/// Writes one frame and flushes it.
async fn write_frame<S: AsyncWrite + Unpin>(io: &mut S, kind: u8, body: &[u8]) -> io::Result<()> {
    io.write_all(&wire::encode(kind, body)?).await?;
    io.flush().await
}

/// Reads one frame whose body is at most `max` bytes.
async fn read_frame<S: AsyncRead + Unpin>(io: &mut S, max: usize) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; wire::HEADER];
    io.read_exact(&mut head).await?;
    let (kind, len) = wire::header(&head, max)?;
    let mut body = vec![0; len];
    io.read_exact(&mut body).await?;
    Ok((kind, body))
}

/// The most blocking GSSAPI or NSS jobs of handshakes at once (see
/// [`crate::admission::MAX_HANDSHAKE_JOBS`]).
const MAX_BLOCKING: usize = crate::admission::MAX_HANDSHAKE_JOBS;

/// Runs blocking GSSAPI or NSS work off the async threads, at most
/// [`MAX_BLOCKING`] at once.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
    static JOBS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::OnceLock::new();
    let jobs = JOBS.get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_BLOCKING)));
    let permit = std::sync::Arc::clone(jobs)
        .acquire_owned()
        .await
        .map_err(|e| Error::new(ErrorKind::Os, format!("a Kerberos task failed: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let r = f();
        drop(permit);
        r
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Os, format!("a Kerberos task failed: {e}")))
}

/// A service's Kerberos keys: authenticates clients ([`Acceptor::accept`]).
#[derive(Clone)]
pub struct Acceptor {
    cred: Cred,
    principal: Option<String>,
    options: KerberosOptions,
    /// The directory of clients' private cache directories, made with the first
    /// forwarded ticket; removed (if empty) once it and every cache in it are
    /// gone.
    caches: Arc<Mutex<Option<Arc<CacheParent>>>>,
    /// The replay cache's directory, removed with the last clone if guise made
    /// it.
    _replay: Arc<ReplayCache>,
    /// The memory cache of the service's own ticket, destroyed with the last
    /// clone (after the credentials that use it).
    _own: Option<std::sync::Arc<ServiceCache>>,
}

/// A memory cache of the service's own, destroyed when dropped.
struct ServiceCache(CString);

impl Drop for ServiceCache {
    fn drop(&mut self) {
        Removal::Memory(std::mem::take(&mut self.0)).run();
    }
}

/// The directory of an acceptor's replay cache, and whether guise made it (and
/// so removes it, with the cache in it, when the last clone of the acceptor
/// goes).
struct ReplayCache {
    dir: PathBuf,
    made: bool,
    /// `file2:DIR/guise.rcache2`, for krb5.
    name: CString,
}

/// The replay cache's file name in its directory.
const REPLAY_CACHE: &str = "guise.rcache2";

impl ReplayCache {
    /// A new private directory in the temporary directory, or `dir` once checked
    /// to be the process's own and closed to everyone else.
    fn new(dir: Option<&Path>) -> Result<ReplayCache> {
        use std::os::unix::fs::MetadataExt;
        let (dir, made) = match dir {
            Some(dir) => {
                let m = std::fs::symlink_metadata(dir).map_err(|e| {
                    io_err(&format!("the replay cache directory {}", dir.display()), &e)
                })?;
                let euid = rustix::process::geteuid().as_raw();
                if !m.is_dir() || m.uid() != euid || m.mode() & 0o077 != 0 {
                    return Err(Error::new(
                        ErrorKind::AccessDenied,
                        format!(
                            "the replay cache directory {} must be a directory of uid {euid} \
                             that no one else may use (mode 0700)",
                            dir.display()
                        ),
                    ));
                }
                (dir.to_owned(), false)
            }
            None => {
                let made = tempfile::Builder::new()
                    .prefix("guise-rcache-")
                    .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                    .tempdir()
                    .map_err(|e| io_err("making the replay cache directory", &e))?;
                (made.keep(), true)
            }
        };
        let name = CString::new(format!("file2:{}", dir.join(REPLAY_CACHE).display()))
            .map_err(|_| Error::new(ErrorKind::InvalidParameter, "a path with a NUL byte"))?;
        Ok(ReplayCache { dir, made, name })
    }
}

impl Drop for ReplayCache {
    fn drop(&mut self) {
        if self.made {
            let _ = std::fs::remove_file(self.dir.join(REPLAY_CACHE));
            if let Err(e) = std::fs::remove_dir(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), %e, "cannot remove the replay cache");
            }
        }
    }
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("principal", &self.principal)
            .field("options", &self.options)
            .finish()
    }
}

impl Acceptor {
    /// The service's keys from `keytab` (checked now; krb5 reads the file again
    /// at each handshake): those of `principal` (`service/host@REALM`) only, or
    /// of any principal in the keytab. The process-wide `KRB5_KTNAME` is neither
    /// read nor set. With `principal`, the service can also initiate as itself
    /// (its ticket-granting ticket, from the same keys, in a memory cache of its
    /// own), so that a client's forwardable ticket gives it S4U2Proxy credentials
    /// for constrained delegation, where the KDC allows it.
    ///
    /// # Errors
    /// [`ErrorKind::NoSuchLogonSession`] if the keytab holds no usable key (for
    /// `principal`); [`ErrorKind::InvalidParameter`] for a name with a NUL byte.
    #[doc(alias = "AcquireCredentialsHandle")]
    pub fn from_keytab(
        keytab: &Path,
        principal: Option<&str>,
        options: KerberosOptions,
    ) -> Result<Acceptor> {
        let nul = || Error::new(ErrorKind::InvalidParameter, "a name contains a NUL byte");
        // A keytab the process cannot read says so, not "no key".
        std::fs::File::open(keytab)
            .map_err(|e| io_err(&format!("opening the keytab {}", keytab.display()), &e))?;
        let kt = CString::new(format!("FILE:{}", keytab.display())).map_err(|_| nul())?;
        let p = principal
            .map(|p| CString::new(p).map_err(|_| nul()))
            .transpose()?;
        let no_key = |e: &GssError| {
            gss_error(
                ErrorKind::NoSuchLogonSession,
                &format!(
                    "no key of {} in the keytab {}",
                    principal.unwrap_or("any principal"),
                    keytab.display()
                ),
                e,
            )
        };
        // Usable to initiate too, as the service itself (its ticket-granting
        // ticket from the same keys, in a memory cache of this acceptor's), so
        // that a client's forwardable ticket gives S4U2Proxy credentials for
        // constrained delegation where the KDC allows it. A service name is
        // needed for that; without one, or where it fails, accepting only.
        let own = CString::new(format!("MEMORY:guise-service-{}", unique())).map_err(|_| nul())?;
        // The replay cache in a directory of the process's own: krb5's default
        // is a file in the shared /var/tmp, which another user can make first
        // (krb5 then refuses every client).
        let replay = Arc::new(ReplayCache::new(options.replay_cache_dir.as_deref())?);
        let rcache = Some(replay.name.as_c_str());
        let both = p
            .as_deref()
            .map(|p| crate::sys::gss::acquire_service(&kt, Some(p), Some(&own), rcache));
        let own = std::sync::Arc::new(ServiceCache(own));
        let (cred, own) = match both {
            Some(Ok(cred)) => (cred, Some(own)),
            Some(Err(e)) => {
                tracing::warn!(%e, "the service cannot initiate: no constrained delegation");
                let cred = crate::sys::gss::acquire_service(&kt, p.as_deref(), None, rcache)
                    .map_err(|e| no_key(&e))?;
                (cred, None)
            }
            None => {
                let cred = crate::sys::gss::acquire_service(&kt, None, None, rcache)
                    .map_err(|e| no_key(&e))?;
                (cred, None)
            }
        };
        // Started now, from a thread that Landlock does not confine.
        remover()?;
        Ok(Acceptor {
            cred,
            principal: principal.map(str::to_owned),
            options,
            caches: Arc::default(),
            _replay: replay,
            _own: own,
        })
    }

    /// Authenticates the client of `io`, which connected from `address`: the
    /// GSSAPI handshake, then the mapping of its principal to a local account.
    /// Returns the sealed stream and the client's identity, for
    /// [`crate::client::ClientContext`]. A refused client is told why (an
    /// authenticated one in full; an unauthenticated one only that
    /// authentication failed) before the connection is closed.
    ///
    /// # Errors
    /// - [`ErrorKind::LogonFailure`] for a client that did not authenticate (no
    ///   GSSAPI handshake, a bad or replayed token, a ticket for another service),
    ///   or did not in time.
    /// - [`ErrorKind::NoSuchUser`] for a principal that maps to no local account.
    /// - [`ErrorKind::AccessDenied`] for a principal that maps to root, unless
    ///   [`KerberosOptions::allow_root`].
    /// - [`ErrorKind::Os`] if the connection fails.
    #[doc(alias = "AcceptSecurityContext")]
    pub async fn accept<S>(
        &self,
        io: S,
        address: SocketAddr,
    ) -> Result<(GssStream<S>, PeerIdentity)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_with(io, address, |_| Ok(()))
            .await
            .map(|(stream, peer, ())| (stream, peer))
    }

    /// As [`Acceptor::accept`], and `admit` decides whether the authenticated
    /// client is served, before it is told it was accepted: an error of `admit`
    /// is a refusal the client is told in full (a policy, a connection limit).
    ///
    /// # Errors
    /// As [`Acceptor::accept`], and what `admit` returns.
    pub async fn accept_with<S, T>(
        &self,
        mut io: S,
        address: SocketAddr,
        admit: impl FnOnce(&PeerIdentity) -> Result<T>,
    ) -> Result<(GssStream<S>, PeerIdentity, T)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let result = tokio::time::timeout(
            self.options.handshake_timeout,
            self.handshake(&mut io, address, admit),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::LogonFailure,
                "the client did not authenticate in time",
            ))
        });
        match result {
            Ok((ctx, peer, admitted)) => Ok((GssStream::new(io, ctx), peer, admitted)),
            Err(e) => {
                let told = match e.kind() {
                    ErrorKind::NoSuchUser | ErrorKind::AccessDenied | ErrorKind::NotEnoughQuota => {
                        e.to_string()
                    }
                    _ => "Kerberos authentication failed".to_owned(),
                };
                let told = &told.as_bytes()[..told.len().min(MAX_REFUSAL)];
                // The refusal, then the end of what the server sends; what the
                // client still sends is read and dropped for a moment, so that
                // closing with unread bytes (a reset) does not destroy the refusal.
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    write_frame(&mut io, REFUSED, told).await?;
                    io.shutdown().await?;
                    let mut sink = [0u8; 4096];
                    let mut left: usize = 64 * 1024;
                    while left > 0 {
                        match io.read(&mut sink).await? {
                            0 => break,
                            n => left = left.saturating_sub(n),
                        }
                    }
                    Ok::<_, io::Error>(())
                })
                .await;
                crate::audit::network_logon(address, Err(&e));
                Err(e)
            }
        }
    }

    async fn handshake<S, T>(
        &self,
        io: &mut S,
        address: SocketAddr,
        admit: impl FnOnce(&PeerIdentity) -> Result<T>,
    ) -> Result<(SecurityContext, PeerIdentity, T)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let failure = |why: String| Error::new(ErrorKind::LogonFailure, why);
        let mut magic = [0u8; 8];
        io.read_exact(&mut magic)
            .await
            .map_err(|e| failure(format!("reading the client's greeting: {e}")))?;
        if &magic != MAGIC {
            return Err(failure(
                "not a guise Kerberos client: the connection must start with a GSSAPI handshake"
                    .into(),
            ));
        }
        let mut ctx = SecurityContext::accepting(self.cred.clone());
        let last = loop {
            let (kind, body) = read_frame(io, MAX_HANDSHAKE_TOKEN)
                .await
                .map_err(|e| failure(format!("reading a handshake frame: {e}")))?;
            if kind != TOKEN {
                return Err(failure(format!("a frame of kind {kind} in the handshake")));
            }
            let (back, stepped) = blocking(move || {
                let r = ctx.step(Some(&body)).map(|t| t.map(|b| b.to_vec()));
                (ctx, r)
            })
            .await?;
            ctx = back;
            let out = stepped.map_err(|e| failure(format!("GSSAPI refused the client: {e}")))?;
            if ctx.is_complete() {
                break out.unwrap_or_default();
            }
            let out = out.ok_or_else(|| failure("the handshake stalled".into()))?;
            write_frame(io, TOKEN, &out)
                .await
                .map_err(|e| failure(format!("sending a handshake token: {e}")))?;
        };
        let flags = ctx
            .flags()
            .map_err(|e| gss_error(ErrorKind::LogonFailure, "the context's flags", &e))?;
        if !flags.contains(required_flags()) {
            return Err(failure(format!(
                "the client did not ask for mutual authentication, replay and sequence \
                 detection, confidentiality and integrity (it asked for {})",
                flags.names()
            )));
        }
        if flags.contains(CtxFlags::GSS_C_ANON_FLAG) {
            return Err(failure("an anonymous client".into()));
        }
        let mechanism = ctx
            .mechanism()
            .map_err(|e| gss_error(ErrorKind::LogonFailure, "the context's mechanism", &e))?;
        if mechanism != GSS_MECH_KRB5 {
            let oid: String = mechanism.iter().map(|b| format!("{b:02x}")).collect();
            return Err(failure(format!(
                "a context of mechanism {oid} (DER, hex), not krb5"
            )));
        }
        let source = ctx
            .source_name()
            .map_err(|e| gss_error(ErrorKind::LogonFailure, "the client's name", &e))?;
        let principal = display(&source)
            .map_err(|e| gss_error(ErrorKind::LogonFailure, "the client's name", &e))?;
        let service = ctx
            .target_name()
            .and_then(|n| display(&n))
            .map_err(|e| gss_error(ErrorKind::LogonFailure, "the service's name", &e))?;
        let account = source
            .local_name(GSS_MECH_KRB5)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|_| {
                Error::new(
                    ErrorKind::NoSuchUser,
                    format!(
                        "the principal {} maps to no local account (auth_to_local)",
                        printable(&principal)
                    ),
                )
            })?;
        // The ticket's PAC (an Active Directory KDC's): its logon information
        // when the acceptor verified it with the service's key; a PAC that did
        // not verify (MIT keeps it, unverified) is a forged or altered ticket,
        // refused; no PAC at all (a plain MIT KDC) is normal.
        // MIT drops a PAC that does not verify from the name's attributes, so
        // the ticket's own authorization data says whether there was one (in
        // an AD-IF-RELEVANT container, where KDCs put it).
        let in_ticket = ctx
            .ticket_if_relevant_data()
            .map_err(|e| {
                gss_error(
                    ErrorKind::LogonFailure,
                    "the ticket's authorization data",
                    &e,
                )
            })?
            .iter()
            .any(|container| pac::if_relevant_holds_pac(container));
        let forged = || {
            failure(format!(
                "the PAC in {}'s ticket does not verify with this service's key: a forged \
                 or altered PAC",
                printable(&principal)
            ))
        };
        // Every PAC has client information (MIT's KDC issues PACs with no logon
        // information): a PAC in the ticket without verified client
        // information is one the acceptor dropped.
        match source.attribute("urn:mspac:client-info") {
            Ok(Some((_, true))) => {}
            Ok(None) if !in_ticket => {}
            Ok(_) => return Err(forged()),
            Err(e) => return Err(gss_error(ErrorKind::LogonFailure, "the ticket's PAC", &e)),
        }
        let pac = match source.attribute("urn:mspac:logon-info") {
            Ok(None) => None,
            Ok(Some((bytes, true))) => Some(pac::parse_logon_info(&bytes)?),
            Ok(Some((_, false))) => return Err(forged()),
            Err(e) => return Err(gss_error(ErrorKind::LogonFailure, "the ticket's PAC", &e)),
        };
        let delegated = if flags.contains(CtxFlags::GSS_C_DELEG_FLAG) {
            ctx.take_delegated_cred()
        } else {
            None
        };
        // Delegated credentials must be the client's own.
        let delegated = match delegated {
            Some(cred) => {
                let of = cred.name().and_then(|n| display(&n)).ok();
                if of.as_deref() != Some(principal.as_str()) {
                    return Err(failure(format!(
                        "{} delegated credentials of {}",
                        printable(&principal),
                        printable(of.as_deref().unwrap_or("no one"))
                    )));
                }
                Some(cred)
            }
            None => None,
        };
        let options = self.options.clone();
        let client = NetworkClient {
            principal,
            account,
            service,
            address,
            delegated: None,
            sids: None,
        };
        let mut peer = {
            let options = options.clone();
            blocking(move || identify(client, pac, &options)).await??
        };
        let admitted = admit(&peer)?;
        // Stored only for a client that is served.
        if let Some(cred) = delegated {
            let (uid, gid) = (peer.uid, peer.gid);
            let (base, parent) = (options.cache_dir.clone(), Arc::clone(&self.caches));
            let cache = blocking(move || {
                store_delegated(&cred, uid, gid, || {
                    let mut parent = parent.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(p) = parent.as_ref() {
                        return Ok(Arc::clone(p));
                    }
                    let made = Arc::new(make_cache_parent(&base)?);
                    *parent = Some(Arc::clone(&made));
                    Ok(made)
                })
            })
            .await??;
            if let Some(net) = peer.network.as_mut() {
                net.delegated = Some(cache);
            }
        }
        write_frame(io, ACCEPTED, &last)
            .await
            .map_err(|e| io_err("accepting the client", &e))?;
        let net = peer.network.as_ref();
        crate::audit::network_logon(
            address,
            Ok(crate::audit::NetworkLogon {
                principal: &printable(net.map_or("", |n| n.principal.as_str())),
                account: &printable(net.map_or("", |n| n.account.as_str())),
                uid: peer.uid,
                delegated: net.is_some_and(|n| n.delegated.is_some()),
            }),
        );
        Ok((ctx, peer, admitted))
    }
}

/// The local account of an authenticated client, from NSS, and its SIDs: its
/// ticket's PAC's where there is one, else the directory's.
fn identify(
    mut client: NetworkClient,
    pac: Option<pac::LogonInfo>,
    options: &KerberosOptions,
) -> Result<PeerIdentity> {
    let user = nix::unistd::User::from_name(&client.account)
        .map_err(|e| {
            Error::os(
                ErrorKind::Os,
                format!("looking up the account {:?}", client.account),
                e as i32,
            )
        })?
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NoSuchUser,
                format!(
                    "the principal {} maps to {:?}, which has no account here",
                    printable(&client.principal),
                    client.account
                ),
            )
        })?;
    if user.uid.is_root() && !options.allow_root {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!(
                "the principal {} maps to root: a remote root client is refused",
                printable(&client.principal)
            ),
        ));
    }
    let name = CString::new(user.name.as_str()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidParameter,
            "an account name with a NUL byte",
        )
    })?;
    let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
    let directory = crate::directory::account(&user.name, uid)?;
    let nss_groups = || -> Result<Vec<u32>> {
        Ok(nix::unistd::getgrouplist(&name, user.gid)
            .map_err(|e| {
                Error::os(
                    ErrorKind::Os,
                    format!("reading the groups of {:?}", user.name),
                    e as i32,
                )
            })?
            .into_iter()
            .map(|g| g.as_raw())
            .collect())
    };
    let (sids, groups) = match pac {
        Some(info) => {
            // The account the principal maps to must be the PAC's user: by SID
            // where the directory knows the account; where winbind answers and
            // does not know it (a local account), never; without winbind, by
            // name (the PAC's EffectiveName).
            let short = user.name.rsplit('\\').next().unwrap_or(&user.name);
            let refuse = |why: String| {
                Err(Error::new(
                    ErrorKind::LogonFailure,
                    format!(
                        "the principal {} maps to {:?}, {why}",
                        printable(&client.principal),
                        client.account
                    ),
                ))
            };
            match &directory {
                Some(known) if known.sid != info.user => {
                    return refuse(format!(
                        "{}, but its ticket's PAC is {}'s",
                        known.sid, info.user
                    ));
                }
                Some(_) => {}
                None if crate::directory::answered() => {
                    return refuse(format!(
                        "a local account, but its ticket's PAC is the domain user {}'s",
                        info.user
                    ));
                }
                None if !info.account.eq_ignore_ascii_case(short) => {
                    return refuse(format!(
                        "but its ticket's PAC is {}'s ({})",
                        printable(&info.account),
                        info.user
                    ));
                }
                None => {}
            }
            let mut account = crate::directory::DomainAccount {
                sid: info.user,
                groups: Vec::with_capacity(info.groups.len() + 1),
            };
            if directory.is_none() {
                // No directory to say the account is the domain user: its Unix
                // SID stays in the token, so that a deny ACE naming it matches.
                account.groups.push(crate::directory::DomainGroup {
                    sid: crate::sid::Sid::unix_user(uid),
                    gid: None,
                });
            }
            for sid in info.groups {
                let gid = crate::directory::gid_of(&sid)?;
                account
                    .groups
                    .push(crate::directory::DomainGroup { sid, gid });
            }
            // The kernel's groups: the account's own (NSS), and those of the
            // PAC's groups that map to gids. Never fewer than the account has
            // (a group a mode 0604 file denies stays).
            let mut groups = nss_groups()?;
            for gid in account.groups.iter().filter_map(|g| g.gid) {
                if !groups.contains(&gid) {
                    groups.push(gid);
                }
            }
            (Some(account), groups)
        }
        None => (directory, nss_groups()?),
    };
    client.sids = sids;
    PeerIdentity::vouched(0, uid, gid, groups, Some(client))
}

/// A name no other call of this process gets, and no one can guess: a counter
/// and a keyed hash of it (a process-wide random key).
fn unique() -> String {
    use std::hash::BuildHasher;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let secret = KEY.get_or_init(Default::default).hash_one(n);
    format!("{n}-{secret:016x}")
}

/// Makes the server's directory for clients' private cache directories under
/// `base`: a new directory of a random name, the process's own, mode 0711
/// (clients pass through to their own directory; they cannot list it nor
/// create, move or replace anything in it).
fn make_cache_parent(base: &Path) -> Result<CacheParent> {
    use rustix::fs::{Mode, OFlags};
    let made = tempfile::Builder::new()
        .prefix("guise-krb5cc-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o711))
        .tempdir_in(base)
        .map_err(|e| {
            io_err(
                &format!(
                    "making the credential caches' directory in {}",
                    base.display()
                ),
                &e,
            )
        })?
        .keep();
    let sys = |what: &'static str, e| Error::sys(ErrorKind::Os, what, e);
    let fd = rustix::fs::open(
        &made,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| sys("opening the credential caches' directory", e))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o711))
        .map_err(|e| sys("the credential caches' directory", e))?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| sys("the credential caches' directory", e))?;
    Ok(CacheParent {
        fd,
        path: made,
        id: file_id(&stat),
    })
}

/// The name of a client's cache file in its private directory.
const CACHE_FILE: &str = "ccache";

/// Stores delegated credentials in a cache of their own.
///
/// - A forwarded ticket-granting ticket (the client's own) goes to a new file
///   cache in a private directory in `parent` (the server's, which the client
///   cannot write to), both then given to the client's account, for its
///   processes; and to a memory copy, which is what the server's threads that
///   impersonate the client use: they never open the file the client controls.
/// - S4U2Proxy credentials (constrained delegation) hold the service's own
///   ticket-granting ticket beside the client's evidence ticket: they go to a
///   memory cache, which threads of this process use whatever they impersonate
///   and which never reaches the client or its processes.
fn store_delegated(
    cred: &Cred,
    uid: u32,
    gid: u32,
    parent: impl FnOnce() -> Result<Arc<CacheParent>>,
) -> Result<CredentialCache> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    let store_error =
        |e: &GssError| gss_error(ErrorKind::Os, "storing the delegated credentials", e);
    let sys = |what: &'static str, e| Error::sys(ErrorKind::Os, what, e);
    let memory = |prefix: &str| {
        let name = format!("MEMORY:guise-{prefix}-{}", unique());
        let c_name = CString::new(name.as_str())
            .map_err(|_| Error::new(ErrorKind::InvalidParameter, "a cache name with a NUL"))?;
        if let Err(e) = cred.store_into(&name) {
            Removal::Memory(c_name).run();
            return Err(store_error(&e));
        }
        Ok::<_, Error>((name, c_name))
    };
    // Where krb5 cannot say, the credentials are taken for S4U2Proxy ones: they
    // then stay in memory rather than go to a file the client owns.
    let constrained = !matches!(cred.proxy(), Ok(None));
    if constrained {
        let (name, c_name) = memory("s4u")?;
        return CredentialCache::owned(&name, Removal::Memory(c_name), remover()?);
    }
    let parent = parent()?;
    let dir_name = unique();
    rustix::fs::mkdirat(&parent.fd, dir_name.as_str(), Mode::from_raw_mode(0o700))
        .map_err(|e| sys("making a client's credential cache directory", e))?;
    let opened = rustix::fs::openat(
        &parent.fd,
        dir_name.as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .and_then(|dir| Ok((rustix::fs::fstat(&dir)?, dir)));
    let (stat, dir) = match opened {
        Ok(x) => x,
        Err(e) => {
            let _ = rustix::fs::unlinkat(&parent.fd, dir_name.as_str(), AtFlags::REMOVEDIR);
            return Err(sys("opening a client's credential cache directory", e));
        }
    };
    let mut made = PrivateCacheDir {
        parent: Arc::clone(&parent),
        name: dir_name,
        dir,
        dir_id: file_id(&stat),
        file: CACHE_FILE,
        file_id: None,
    };
    let path = parent.path.join(&made.name).join(CACHE_FILE);
    let name = format!("FILE:{}", path.display());
    // The directory is still the server's alone: krb5 may use the path.
    let file = cred
        .store_into(&name)
        .map_err(|e| store_error(&e))
        .and_then(|()| {
            let file = rustix::fs::openat(
                &made.dir,
                CACHE_FILE,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| sys("opening the delegated credentials", e))?;
            let stat = rustix::fs::fstat(&file).map_err(|e| sys("the delegated credentials", e))?;
            if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
                return Err(Error::new(
                    ErrorKind::Os,
                    "the delegated credentials are not a regular file",
                ));
            }
            Ok((file, file_id(&stat)))
        });
    let file = match file {
        Ok((file, id)) => {
            made.file_id = Some(id);
            file
        }
        Err(e) => {
            // Still the server's own directory: what krb5 left in it goes.
            let _ = rustix::fs::unlinkat(&made.dir, CACHE_FILE, AtFlags::empty());
            Removal::Dir(made).run();
            return Err(e);
        }
    };
    let give = || {
        let (u, g) = (
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
        rustix::fs::fchmod(&file, Mode::from_raw_mode(0o600))?;
        rustix::fs::fchown(&file, u, g)?;
        rustix::fs::fchown(&made.dir, u, g)
    };
    if let Err(e) = give() {
        Removal::Dir(made).run();
        return Err(sys("giving the delegated credentials to the client", e));
    }
    drop(file);
    let (_, copy) = match memory("forwarded") {
        Ok(copy) => copy,
        Err(e) => {
            Removal::Dir(made).run();
            return Err(e);
        }
    };
    CredentialCache::owned_with_copy(&name, copy.clone(), Removal::Both(made, copy), remover()?)
}

/// The thread that removes what delegated credential caches leave (directories,
/// memory caches), at the process identity (see [`crate::token::Remover`]);
/// started once.
fn remover() -> Result<crate::token::Remover> {
    static REMOVER: std::sync::OnceLock<crate::token::Remover> = std::sync::OnceLock::new();
    if let Some(tx) = REMOVER.get() {
        return Ok(tx.clone());
    }
    let (tx, rx) = std::sync::mpsc::channel::<Removal>();
    crate::thread::spawn(move || {
        for removal in rx {
            removal.run();
        }
    })?;
    // Of two threads started at once, the one whose sender is not kept ends.
    Ok(REMOVER.get_or_init(|| tx).clone())
}

/// Whether, and to which services, a client forwards its ticket-granting ticket
/// ([`Initiator::start`]): Windows' Kerberos package delegates only to a service
/// the KDC marks OK-AS-DELEGATE ("trusted for delegation"), and so does guise by
/// default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delegation {
    /// Forward nothing.
    #[default]
    None,
    /// Forward the ticket-granting ticket only if the KDC marks the service
    /// OK-AS-DELEGATE (`GSS_C_DELEG_POLICY_FLAG`; an MIT principal's
    /// `ok_as_delegate` attribute, an Active Directory account "trusted for
    /// delegation"). To any other service nothing is forwarded, and the
    /// handshake says so ([`DelegationOutcome`]). `ISC_REQ_DELEGATE` as Windows
    /// honours it.
    #[doc(alias = "ISC_REQ_DELEGATE")]
    #[doc(alias = "GSS_C_DELEG_POLICY_FLAG")]
    Policy,
    /// Forward the ticket-granting ticket to any service, whatever the KDC says
    /// of it (`GSS_C_DELEG_FLAG`): the service can then act as the client
    /// anywhere. Only for a service known to be trusted.
    #[doc(alias = "GSS_C_DELEG_FLAG")]
    Always,
}

impl From<bool> for Delegation {
    /// `true` is [`Delegation::Policy`], `false` [`Delegation::None`].
    fn from(delegate: bool) -> Delegation {
        if delegate {
            Delegation::Policy
        } else {
            Delegation::None
        }
    }
}

impl Delegation {
    /// The GSSAPI flags that ask for it.
    fn flags(self) -> CtxFlags {
        match self {
            Delegation::None => CtxFlags::empty(),
            Delegation::Policy => CtxFlags::GSS_C_DELEG_POLICY_FLAG,
            Delegation::Always => CtxFlags::GSS_C_DELEG_FLAG,
        }
    }
}

/// Whether an [`Initiator`]'s handshake forwarded the client's ticket-granting
/// ticket, readable after [`Initiator::connect`] (which takes the initiator) has
/// completed: take it with [`Initiator::delegation_outcome`] before.
#[derive(Clone, Debug, Default)]
pub struct DelegationOutcome(Arc<std::sync::OnceLock<bool>>);

impl DelegationOutcome {
    /// Whether the ticket was forwarded (the established context's
    /// `GSS_C_DELEG_FLAG`); `None` until the handshake has completed.
    pub fn delegated(&self) -> Option<bool> {
        self.0.get().copied()
    }
}

/// The client side of the handshake: a context started on the calling thread
/// with its default credentials ([`Initiator::start`]), finished on a connection
/// ([`Initiator::connect`]).
pub struct Initiator {
    ctx: SecurityContext,
    first: Vec<u8>,
    delegation: Delegation,
    outcome: DelegationOutcome,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("delegation", &self.delegation)
            .finish()
    }
}

/// Whether a GSSAPI error means there were no credentials to authenticate with.
fn no_credentials(e: &GssError) -> bool {
    e.no_credentials()
        || e.to_string().contains("No credentials")
        || e.to_string().contains("No Kerberos credentials")
}

impl Initiator {
    /// Starts authenticating to `target` on the calling thread, with its default
    /// credentials: the process's credential cache, or while the thread
    /// impersonates a token with one, the token's (see [`crate::thread`]); this
    /// asks the KDC for a ticket to the service. `target` is a host-based service
    /// name (`guise@files.example.com`) or a principal (`guise/files.example.com`,
    /// `guise/files.example.com@EXAMPLE.COM`). `delegation` says whether the
    /// client's ticket-granting ticket is forwarded (it must be forwardable):
    /// never, only to a service the KDC marks OK-AS-DELEGATE
    /// ([`Delegation::Policy`], what `true` means), or always. Whether it was is
    /// known once the handshake is done ([`Initiator::delegation_outcome`]).
    ///
    /// # Errors
    /// - [`ErrorKind::NoSuchLogonSession`] without credentials: no ticket in the
    ///   cache, or a thread that impersonates a network client that delegated
    ///   nothing.
    /// - [`ErrorKind::LogonFailure`] if the KDC gives no ticket for `target`.
    #[doc(alias = "InitializeSecurityContext")]
    pub fn start(target: &str, delegation: impl Into<Delegation>) -> Result<Initiator> {
        let delegation = delegation.into();
        let kind = if target.contains('/') {
            GSS_KRB5_NT_PRINCIPAL_NAME
        } else {
            GSS_C_NT_HOSTBASED_SERVICE
        };
        let name = Name::import(target.as_bytes(), kind)
            .map_err(|e| gss_error(ErrorKind::InvalidParameter, "the service name", &e))?;
        let flags = required_flags() | delegation.flags();
        let mut ctx = SecurityContext::initiating(name, flags, GSS_MECH_KRB5);
        // The thread's credentials are those of what it impersonates now.
        let first = match crate::thread::with_gss_cache(|| ctx.step(None)) {
            Ok(Some(token)) => token.to_vec(),
            Ok(None) => {
                return Err(Error::new(
                    ErrorKind::LogonFailure,
                    "GSSAPI gave no token to authenticate with",
                ));
            }
            Err(e) if crate::thread::without_delegated_credentials() => {
                return Err(gss_error(
                    ErrorKind::NoSuchLogonSession,
                    "this thread impersonates a client whose token carries no credentials \
                     (a network client that delegated nothing or is below Delegation level, \
                     or a local client)",
                    &e,
                ));
            }
            Err(e) if no_credentials(&e) => {
                return Err(gss_error(
                    ErrorKind::NoSuchLogonSession,
                    "no Kerberos credentials to authenticate with (kinit first)",
                    &e,
                ));
            }
            Err(e) => {
                return Err(gss_error(
                    ErrorKind::LogonFailure,
                    &format!("cannot authenticate to {target}"),
                    &e,
                ));
            }
        };
        Ok(Initiator {
            ctx,
            first,
            delegation,
            outcome: DelegationOutcome::default(),
        })
    }

    /// Finishes the handshake on `io`, a connection to the service: the service
    /// proves who it is (mutual authentication) and accepts or refuses the
    /// client. Returns the sealed stream.
    ///
    /// # Errors
    /// - [`ErrorKind::LogonFailure`] if the service is not the one named, or the
    ///   handshake fails.
    /// - What the service refused the client with ([`ErrorKind::AccessDenied`],
    ///   with its reason).
    /// - [`ErrorKind::Os`] if the connection fails.
    pub async fn connect<S>(mut self, mut io: S) -> Result<GssStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let fail = |what: &str, e: io::Error| io_err(what, &e);
        let hello = wire::hello(&self.first)
            .map_err(|e| Error::new(ErrorKind::LogonFailure, e.to_string()))?;
        io.write_all(&hello)
            .await
            .map_err(|e| fail("sending the handshake", e))?;
        io.flush()
            .await
            .map_err(|e| fail("sending the handshake", e))?;
        loop {
            let (kind, body) = read_frame(&mut io, MAX_HANDSHAKE_TOKEN)
                .await
                .map_err(|e| fail("reading the service's answer", e))?;
            match kind {
                REFUSED => {
                    let why = wire::refusal(&body);
                    return Err(Error::new(
                        ErrorKind::AccessDenied,
                        format!("the service refused the client: {why}"),
                    ));
                }
                TOKEN | ACCEPTED => {
                    let out = if body.is_empty() && self.ctx.is_complete() {
                        None
                    } else {
                        self.ctx.step(Some(&body)).map_err(|e| {
                            gss_error(
                                ErrorKind::LogonFailure,
                                "the service did not prove who it is",
                                &e,
                            )
                        })?
                    };
                    if kind == ACCEPTED {
                        if !self.ctx.is_complete() {
                            return Err(Error::new(
                                ErrorKind::LogonFailure,
                                "the service accepted before the handshake ended",
                            ));
                        }
                        break;
                    }
                    let out = out.ok_or_else(|| {
                        Error::new(ErrorKind::LogonFailure, "the handshake stalled")
                    })?;
                    write_frame(&mut io, TOKEN, &out)
                        .await
                        .map_err(|e| fail("sending a handshake token", e))?;
                }
                other => {
                    return Err(Error::new(
                        ErrorKind::LogonFailure,
                        format!("a frame of kind {other} in the handshake"),
                    ));
                }
            }
        }
        let flags = self
            .ctx
            .flags()
            .map_err(|e| gss_error(ErrorKind::LogonFailure, "the context's flags", &e))?;
        if !flags.contains(required_flags()) {
            return Err(Error::new(
                ErrorKind::LogonFailure,
                format!(
                    "the context lacks mutual authentication or protection: {}",
                    (required_flags() - flags).names()
                ),
            ));
        }
        let delegated = flags.contains(CtxFlags::GSS_C_DELEG_FLAG);
        let _ = self.outcome.0.set(delegated);
        match self.delegation {
            Delegation::Policy if !delegated => tracing::warn!(
                "nothing was delegated: the KDC does not mark the service OK-AS-DELEGATE \
                 (or the ticket-granting ticket is not forwardable, kinit -f)"
            ),
            Delegation::Always if !delegated => tracing::warn!(
                "nothing was delegated: the ticket-granting ticket is not forwardable (kinit -f)"
            ),
            _ => {}
        }
        Ok(GssStream::new(io, self.ctx))
    }

    /// Whether the context forwards the client's credentials (known once it is
    /// established; until then, whether it was asked to, in any form).
    pub fn delegates(&self) -> bool {
        self.ctx
            .flags()
            .map_or(self.delegation != Delegation::None, |f| {
                f.contains(CtxFlags::GSS_C_DELEG_FLAG)
            })
    }

    /// What was asked for.
    pub fn delegation(&self) -> Delegation {
        self.delegation
    }

    /// A handle that tells, once [`Initiator::connect`] has completed the
    /// handshake, whether the ticket-granting ticket was forwarded: with
    /// [`Delegation::Policy`], to a service the KDC does not mark OK-AS-DELEGATE
    /// nothing is.
    pub fn delegation_outcome(&self) -> DelegationOutcome {
        self.outcome.clone()
    }
}

/// A connection whose every frame is sealed with the GSSAPI context of its
/// handshake (encrypted, integrity-protected and numbered): see the
/// [wire format](self#wire-format). A frame that fails to unseal, or comes out of
/// order, is an error; the connection is then unusable.
pub struct GssStream<S> {
    io: S,
    ctx: SecurityContext,
    /// Bytes read that do not make a whole frame yet.
    raw: Vec<u8>,
    /// Unsealed bytes not yet read, from `plain_pos`.
    plain: Vec<u8>,
    plain_pos: usize,
    recv_seq: u64,
    /// A sealed frame not yet written, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    send_seq: u64,
    /// Set once a frame failed: the stream is then dead.
    broken: bool,
}

impl<S> std::fmt::Debug for GssStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GssStream")
            .field("sent", &self.send_seq)
            .field("received", &self.recv_seq)
            .finish()
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl<S> GssStream<S> {
    fn new(io: S, ctx: SecurityContext) -> Self {
        GssStream {
            io,
            ctx,
            raw: Vec::new(),
            plain: Vec::new(),
            plain_pos: 0,
            recv_seq: 0,
            out: Vec::new(),
            out_pos: 0,
            send_seq: 0,
            broken: false,
        }
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Unseals the whole frame at the start of `raw`, if there is one.
    fn open_frame(&mut self) -> io::Result<bool> {
        let Some((sealed, whole)) = wire::data_frame(&self.raw)? else {
            return Ok(false);
        };
        let plain = self
            .ctx
            .unwrap(sealed)
            .map_err(|e| invalid(format!("a frame that does not unseal: {e}")))?;
        self.raw.drain(..whole);
        let data = wire::data_body(&plain, self.recv_seq)?;
        self.recv_seq += 1;
        self.plain.clear();
        self.plain.extend_from_slice(data);
        self.plain_pos = 0;
        Ok(true)
    }
}

impl<S: AsyncWrite + Unpin> GssStream<S> {
    /// Writes out the sealed frame waiting in `out`; an error breaks the stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = match ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.out_pos..])) {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                other => other,
            };
            match n {
                Ok(n) => self.out_pos += n,
                Err(e) => {
                    self.broken = true;
                    return Poll::Ready(Err(e));
                }
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

fn broken() -> io::Error {
    invalid("the sealed stream failed earlier".into())
}

impl<S: AsyncRead + Unpin> AsyncRead for GssStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.broken {
            return Poll::Ready(Err(broken()));
        }
        loop {
            if this.plain_pos < this.plain.len() {
                let n = buf.remaining().min(this.plain.len() - this.plain_pos);
                buf.put_slice(&this.plain[this.plain_pos..this.plain_pos + n]);
                this.plain_pos += n;
                return Poll::Ready(Ok(()));
            }
            match this.open_frame() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    this.broken = true;
                    return Poll::Ready(Err(e));
                }
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                if this.raw.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.broken = true;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection ended inside a frame",
                )));
            }
            this.raw.extend_from_slice(rb.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GssStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.broken {
            return Poll::Ready(Err(broken()));
        }
        ready!(this.poll_drain(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let (message, n) = wire::data_plaintext(this.send_seq, buf);
        let sealed = match this.ctx.wrap(&message) {
            Ok(s) => s,
            Err(e) => {
                this.broken = true;
                return Poll::Ready(Err(io::Error::other(format!("sealing a frame: {e}"))));
            }
        };
        this.send_seq += 1;
        match wire::encode(wire::DATA, &sealed) {
            Ok(frame) => this.out.extend_from_slice(&frame),
            Err(e) => {
                this.broken = true;
                return Poll::Ready(Err(e));
            }
        }
        // The bytes are taken (a write that fails later fails the stream, never
        // has them sent twice): what the socket does not take now goes out on the
        // next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            this.broken = true;
            tracing::debug!(%e, "a sealed frame could not be sent");
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.broken {
            return Poll::Ready(Err(broken()));
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
