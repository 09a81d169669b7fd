//! The client-identity core every transport shares: who the client is (from the
//! kernel or a bus daemon, never from what the client says), how far it lets the
//! server act as it (its security quality of service), and the rules that turn
//! these into the token a server thread impersonates.
//!
//! A transport is a thin adapter over this module: it says where the identity
//! comes from ([`PeerIdentity::of_socket`] for a Unix socket), where the client's
//! quality of service arrives ([`ClientContext::set_qos`]: a pipe's first frame, a
//! gRPC call's metadata, a D-Bus method), and when a message was read
//! ([`ClientContext::message_received`]). The rules are the same for every
//! transport:
//!
//! - **Must read first.** No token until a message of the client was read
//!   ([`ErrorKind::CannotImpersonate`]), as ImpersonateNamedPipeClient fails before
//!   the first read.
//! - **Never raise.** The level is the client's, lowered to the server's maximum;
//!   a client that says nothing is served at Identification level.
//! - **Dynamic tracking lowers, never raises.** A message from another identity
//!   than the connection proved is taken at Identification level at most, unless
//!   the connection was made as root (which may act for anyone): then it is that
//!   identity with its account's groups (Identification if it has no account). A
//!   message that says root on a root connection is root's only while no thread of
//!   the client process acts for another user.
//! - **The sentinel stands for no one.** An identity of uid or gid 4294967294 is
//!   never above Identification level.
//! - **Anonymous reveals nothing:** the anonymous token, not the client's.
//! - **EffectiveOnly** drops the disabled privileges and groups.
//! - **Network clients** ([`PeerIdentity::network`]) get their account's
//!   identity from NSS with the NETWORK logon SID and no privileges; Delegation
//!   level only with the credentials they delegated, which the token then
//!   carries ([`Token::credential_cache`]).
//! - **SeImpersonate.** A server without it gets Identification level when it
//!   impersonates (applied by [`crate::thread`] at the switch).
//!
//! The work itself runs on [`crate::pool::ImpersonationPool`] workers, which
//! always return to the process identity.
//!
//! # Example
//! A transport's part, here for one end of a socket pair (the kernel's view of the
//! peer, the level it allowed, a message read):
//!
//! ```
//! use std::os::fd::AsFd;
//! use guise::client::{ClientContext, PeerIdentity, SecurityQos};
//! use guise::{ErrorKind, ImpersonationLevel};
//!
//! let (_client, server_end) = std::os::unix::net::UnixStream::pair()?;
//! let peer = PeerIdentity::of_socket(server_end.as_fd())?; // SO_PEERCRED, SO_PEERGROUPS
//! let mut ctx = ClientContext::new(peer, ImpersonationLevel::Delegation);
//! // Must read first: no token before a message of the client was read.
//! assert_eq!(ctx.token().unwrap_err().kind(), ErrorKind::CannotImpersonate);
//! ctx.set_qos(SecurityQos { level: ImpersonationLevel::Impersonation, ..SecurityQos::default() });
//! ctx.message_received(None);
//! assert_eq!(ctx.level(), ImpersonationLevel::Impersonation);
//! let token = ctx.token()?;
//! assert_eq!(token.unix().uid(), ctx.peer().uid());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::{Error, ErrorKind, Result};
use crate::privilege::{Capabilities, CapabilitySet};
use crate::thread::rules;
use crate::token::{CredentialCache, ImpersonationLevel, Token, TokenType};

/// What the kernel says about the client of a connection. Only guise makes one
/// (from the kernel, a bus daemon or Kerberos), so what it says can be trusted:
/// its fields are read through the methods of the same names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The client's pid at `connect` (informational: pids are reused); 0 when the
    /// client is in a pid namespace the server cannot see.
    pub(crate) pid: i32,
    /// Its effective uid at `connect`.
    pub(crate) uid: u32,
    /// Its effective gid at `connect`.
    pub(crate) gid: u32,
    /// Its supplementary groups at `connect`.
    pub(crate) groups: Vec<u32>,
    /// Whether the kernel gave a pidfd for it (`SO_PEERPIDFD`).
    pub(crate) has_pidfd: bool,
    /// The capabilities every thread of the client process held in its permitted
    /// set when it was accepted, read through the pidfd; empty when the kernel gave
    /// no pidfd or the process had gone. The client's token holds the privileges
    /// of these capabilities, none invented from its uid.
    pub(crate) permitted_capabilities: Capabilities,
    /// As `permitted_capabilities`, for the effective set: the token's privileges
    /// of these capabilities are enabled.
    pub(crate) effective_capabilities: Capabilities,
    /// When the server accepted the connection.
    pub(crate) connected_at: SystemTime,
    /// For a client that authenticated over the network rather than a local
    /// process: who it proved to be. The ids and groups above are then its local
    /// account's, from NSS; `pid` is 0 and it has no capabilities.
    pub(crate) network: Option<NetworkClient>,
}

/// A local peer's token with its directory account's SIDs (a domain user's
/// SIDs, whichever transport it came by); a network client's token has them
/// already (its PAC's, or the directory's).
fn directory_sids_of_peer(basis: rules::ClientBasis, token: Token) -> Result<Token> {
    match basis {
        rules::ClientBasis::Local { .. } => token.with_directory_of_peer(),
        _ => Ok(token),
    }
}

/// A client that authenticated over the network (a Kerberos client of
/// `guise::kerberos`, with the `kerberos` feature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkClient {
    /// The principal the client proved to be (`alice@EXAMPLE.COM`).
    pub principal: String,
    /// The local account the principal maps to by the system's rules (krb5
    /// `auth_to_local`).
    pub account: String,
    /// The service principal the client authenticated to.
    pub service: String,
    /// The address the client connected from.
    pub address: std::net::SocketAddr,
    /// The credentials the client delegated: its forwarded ticket-granting
    /// ticket, or S4U2Proxy credentials (constrained delegation) that the service
    /// got for its forwardable ticket; none otherwise.
    pub delegated: Option<CredentialCache>,
    /// The client's SIDs: its ticket's PAC's (verified by the acceptor), else
    /// the directory's for its account ([`crate::directory`]); `None` where
    /// neither has them (a plain MIT KDC, a local account), and the token's
    /// SIDs are then the Unix ones of its ids.
    pub sids: Option<crate::directory::DomainAccount>,
}

impl PeerIdentity {
    /// The client's pid at `connect` (informational: pids are reused); 0 when
    /// the client is in a pid namespace the server cannot see, or came over the
    /// network. For a pipe's client, what [`GetNamedPipeClientProcessId`] reports.
    ///
    /// [`GetNamedPipeClientProcessId`]: https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-getnamedpipeclientprocessid
    #[doc(alias = "GetNamedPipeClientProcessId")]
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Its effective uid at `connect` (a network client's: its account's).
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Its effective gid at `connect`.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Its supplementary groups at `connect`.
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }

    /// Whether the kernel gave a pidfd for it (`SO_PEERPIDFD`).
    pub fn has_pidfd(&self) -> bool {
        self.has_pidfd
    }

    /// The capabilities every thread of the client process held in its
    /// permitted set when it was accepted (empty unless it connected as root in
    /// the server's user namespace): its token holds their privileges.
    pub fn permitted_capabilities(&self) -> Capabilities {
        self.permitted_capabilities
    }

    /// As [`Self::permitted_capabilities`], for the effective set: the token's
    /// privileges of these are enabled.
    pub fn effective_capabilities(&self) -> Capabilities {
        self.effective_capabilities
    }

    /// When the server accepted the connection.
    pub fn connected_at(&self) -> SystemTime {
        self.connected_at
    }

    /// For a client that authenticated over the network: who it proved to be.
    pub fn network(&self) -> Option<&NetworkClient> {
        self.network.as_ref()
    }

    /// The kernel's view of the peer of a connected Unix socket: `SO_PEERCRED`
    /// (uid, gid, pid at `connect`), `SO_PEERGROUPS`, and through `SO_PEERPIDFD`
    /// the capabilities of a client that connected as root (see
    /// [`PeerIdentity::permitted_capabilities`]). The pidfd is read, not kept, so
    /// that a connection costs the server one descriptor.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the kernel does not say who the peer is.
    pub fn of_socket(fd: BorrowedFd<'_>) -> Result<PeerIdentity> {
        peer_identity(fd).map(|(peer, _)| peer)
    }

    /// A peer whose identity someone other than the kernel's socket vouches for (a
    /// bus daemon, Kerberos): its ids, checked, connected now, with no pidfd and
    /// so no capabilities.
    ///
    /// # Errors
    /// As `crate::cred::validate_ids`.
    #[cfg_attr(not(any(feature = "dbus", feature = "kerberos")), allow(dead_code))]
    pub(crate) fn vouched(
        pid: i32,
        uid: u32,
        gid: u32,
        groups: Vec<u32>,
        network: Option<NetworkClient>,
    ) -> Result<PeerIdentity> {
        crate::cred::validate_ids(uid, gid, &groups)?;
        Ok(PeerIdentity {
            pid,
            uid,
            gid,
            groups,
            has_pidfd: false,
            permitted_capabilities: Capabilities::empty(),
            effective_capabilities: Capabilities::empty(),
            connected_at: SystemTime::now(),
            network,
        })
    }
}

/// Reads the kernel's view of the peer of `fd`, and its pidfd where the kernel
/// gives one.
fn peer_identity(fd: BorrowedFd<'_>) -> Result<(PeerIdentity, Option<OwnedFd>)> {
    let cred = crate::sys::socket::peer_cred(fd)
        .map_err(|e| Error::sys(ErrorKind::Os, "SO_PEERCRED", &e))?;
    let groups = crate::sys::socket::peer_groups(fd)
        .map_err(|e| Error::sys(ErrorKind::Os, "SO_PEERGROUPS", &e))?;
    let pidfd = crate::sys::socket::peer_pidfd(fd);
    // Only a client that connected as root can hold privileges: the capabilities
    // of anyone else are either none or those of a user namespace of its own (or
    // of a file-capability program it ran after connecting), which count for
    // nothing here.
    let (permitted, effective) = pidfd
        .as_ref()
        .filter(|_| cred.uid == 0)
        .and_then(|p| peer_capabilities(p.as_fd(), cred.uid, cred.gid))
        .unwrap_or((CapabilitySet::empty(), CapabilitySet::empty()));
    let peer = PeerIdentity {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
        groups,
        has_pidfd: pidfd.is_some(),
        permitted_capabilities: Capabilities::from_set(permitted),
        effective_capabilities: Capabilities::from_set(effective),
        connected_at: SystemTime::now(),
        network: None,
    };
    Ok((peer, pidfd))
}

/// The pid of the process of `pidfd`, in the server's pid namespace; `None` once
/// it has exited or where the server cannot see it.
fn pid_of(pidfd: BorrowedFd<'_>) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).ok()?;
    let pid: i32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()?;
    (pid > 0).then_some(pid)
}

/// Whether the process of `pidfd` is still alive (its pidfd is not readable yet):
/// what was read of it by pid since it was found was not another process's.
fn still_alive(pidfd: BorrowedFd<'_>) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        &pidfd,
        rustix::event::PollFlags::IN,
    )];
    rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default())).is_ok_and(|n| n == 0)
}

/// The uid of a `Uid:` line of a task's status at `index` (0 real, 1 effective,
/// 2 saved, 3 filesystem).
fn status_uid(status: &str, index: usize) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(index)?
        .parse()
        .ok()
}

/// Whether no thread of the process of `pidfd` acts for another user now: every
/// one has effective and filesystem uid 0. `sender`, the pid the kernel attached
/// to a message, must be that process's. `false` whenever it cannot be told for
/// certain (the process gone, another process, more than [`MAX_PEER_THREADS`]
/// threads, a status that cannot be read).
fn no_thread_acts_for_another(pidfd: BorrowedFd<'_>, sender: Option<i32>) -> bool {
    let Some(pid) = pid_of(pidfd) else {
        return false;
    };
    if sender.is_some_and(|s| s != pid) {
        return false;
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut threads = 0;
    for task in tasks {
        let Ok(task) = task else { return false };
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // a thread that ended meanwhile
        };
        if status_uid(&status, 1) != Some(0) || status_uid(&status, 3) != Some(0) {
            return false;
        }
        threads += 1;
        if threads > MAX_PEER_THREADS {
            return false;
        }
    }
    threads > 0 && still_alive(pidfd)
}

/// The groups of the account of `uid` (`getgrouplist` from its primary group),
/// with `gid`; `None` when it has no account or the database cannot be read.
fn account_groups(uid: u32, gid: u32) -> Option<Vec<u32>> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
    let name = std::ffi::CString::new(user.name).ok()?;
    let mut groups: Vec<u32> = nix::unistd::getgrouplist(&name, user.gid)
        .ok()?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    groups.push(gid);
    groups.sort_unstable();
    groups.dedup();
    Some(groups)
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
    pidfd: BorrowedFd<'_>,
    uid: u32,
    gid: u32,
) -> Option<(CapabilitySet, CapabilitySet)> {
    let pid = pid_of(pidfd)?;
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
    // Still alive: the pid was not reused.
    (threads > 0 && still_alive(pidfd)).then_some((permitted, effective))
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
    /// (`EffectiveOnly`).
    pub effective_only: bool,
}

impl Default for SecurityQos {
    /// Identification level, static tracking (guise's safe default), and
    /// EffectiveOnly on, as Windows assumes for a client that states no quality
    /// of service: only its enabled privileges and groups count.
    fn default() -> Self {
        SecurityQos {
            level: ImpersonationLevel::Identification,
            tracking: ContextTracking::Static,
            effective_only: true,
        }
    }
}

/// What a server knows of one client: the kernel's view of it, its quality of
/// service, and (once a message was read) the identity the next token is for.
/// Every transport keeps one per connection (a pipe, a D-Bus caller) or per call
/// (gRPC, where each call carries its level).
#[derive(Debug)]
pub struct ClientContext {
    peer: Arc<PeerIdentity>,
    qos: SecurityQos,
    max_level: ImpersonationLevel,
    /// Set once a message was read: the uid and gid it came from.
    last_sender: Option<rules::Sender>,
    /// A pidfd of the client process of a connection made as root, kept to tell
    /// whether a message that says root comes while one of its threads acts for
    /// another user.
    process: Option<Arc<OwnedFd>>,
    /// The token last made, for the identity and quality of service it was made
    /// for: made once, not per request.
    made: std::sync::Mutex<Option<Token>>,
}

impl Clone for ClientContext {
    fn clone(&self) -> Self {
        ClientContext {
            peer: Arc::clone(&self.peer),
            qos: self.qos,
            max_level: self.max_level,
            last_sender: self.last_sender,
            process: self.process.clone(),
            made: std::sync::Mutex::new(
                self.made.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            ),
        }
    }
}

impl ClientContext {
    /// The context of a client the kernel (or a bus) identified as `peer`, served
    /// at `max_level` at most. Until [`Self::set_qos`] its quality of service is
    /// the default (Identification level).
    pub fn new(peer: impl Into<Arc<PeerIdentity>>, max_level: ImpersonationLevel) -> Self {
        ClientContext {
            peer: peer.into(),
            qos: SecurityQos::default(),
            max_level,
            last_sender: None,
            process: None,
            made: std::sync::Mutex::new(None),
        }
    }

    /// Records the quality of service the client asked for.
    pub fn set_qos(&mut self, qos: SecurityQos) {
        if qos != self.qos {
            *self.made.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        }
        self.qos = qos;
    }

    /// Records that a message of the client was read; `sender` is the uid and gid
    /// the kernel attached to it (`SCM_CREDENTIALS`), if any. With dynamic tracking
    /// the next token follows it (see [`Self::token`]); otherwise the identity of
    /// the connection stands.
    pub fn message_received(&mut self, sender: Option<(u32, u32)>) {
        self.message_received_from(sender.map(|(uid, gid)| (None, uid, gid)));
    }

    /// As [`Self::message_received`], with the pid the kernel attached to the
    /// message where the transport has it.
    pub(crate) fn message_received_from(&mut self, sender: Option<(Option<i32>, u32, u32)>) {
        let dynamic = self.qos.tracking == ContextTracking::Dynamic;
        let process = self.process.as_ref();
        let sender = Some(rules::message_sender(
            &self.connection(),
            dynamic,
            sender,
            |pid| process.is_some_and(|fd| no_thread_acts_for_another(fd.as_fd(), pid)),
        ));
        if sender != self.last_sender {
            *self.made.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        }
        self.last_sender = sender;
    }

    /// The connection's client as the rules see it.
    fn connection(&self) -> rules::Connection<'_> {
        let p = &self.peer;
        rules::Connection {
            uid: p.uid,
            gid: p.gid,
            groups: &p.groups,
            network: p.network.as_ref().map(|n| {
                if n.delegated.is_some() {
                    rules::Delegated::Yes
                } else {
                    rules::Delegated::No
                }
            }),
        }
    }

    /// Whether a message of the client was read.
    pub fn has_received(&self) -> bool {
        self.last_sender.is_some()
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
        rules::served_level(self.qos.level, self.max_level)
    }

    /// The client's token, an impersonation token at [`Self::level`] or lower, for
    /// impersonation and for access checks of the server's own objects.
    ///
    /// - With static tracking, and with dynamic tracking while the last message came
    ///   from the connection's own uid and gid: the connection's identity (uid, gid,
    ///   groups) with the privileges of the capabilities its process held.
    /// - With dynamic tracking, a message the kernel says came from another uid or
    ///   gid: never more than the connection proved. On a connection made as root
    ///   it is taken as that identity, with its gid and the groups of its account
    ///   (NSS, `getgrouplist`: a group a file denies still denies it), and no
    ///   privileges (a root client may act for anyone); an identity without an
    ///   account is served at Identification level at most. On any other
    ///   connection it gets the connection's identity at Identification level at
    ///   most: the kernel attaches a sender's *real* ids by default (a thread of a
    ///   root process acting for a user has real uid 0), and a descriptor passed to
    ///   another process carries that process's ids.
    /// - With dynamic tracking on a connection made as root, a message that says
    ///   root (the kernel's default, the sender's real ids) is root's only if no
    ///   thread of the client process has another effective or filesystem uid when
    ///   it is read (seen through the process's pidfd, so never another process's):
    ///   a thread acting for user U without guise's client sends real uid 0.
    ///   Otherwise it is served at Identification level at most, without
    ///   privileges.
    /// - An identity of the sentinel uid or gid (4294967294) is never above
    ///   Identification level.
    /// - At Anonymous level: the anonymous token. The client is not identified.
    /// - With `effective_only`: [`Token::effective_only`].
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] until a message was read from the client.
    pub fn token(&self) -> Result<Token> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = made.as_ref() {
            return Ok(t.clone());
        }
        let t = self.make_token()?;
        *made = Some(t.clone());
        Ok(t)
    }

    /// [`Self::token`], made anew: the rules decide ([`rules::client_plan`]),
    /// this builds it.
    fn make_token(&self) -> Result<Token> {
        let sender = self.last_sender.ok_or_else(|| {
            Error::new(
                ErrorKind::CannotImpersonate,
                "no message has been read from this client yet",
            )
        })?;
        let plan = rules::client_plan(
            &self.connection(),
            sender,
            self.level(),
            self.qos.effective_only,
            account_groups,
        );
        let p = &self.peer;
        let token = match plan.basis {
            rules::ClientBasis::Anonymous => Token::anonymous(),
            rules::ClientBasis::Network { delegated } => Token::for_network_client(
                plan.uid,
                plan.gid,
                &plan.groups,
                p.network
                    .as_ref()
                    .and_then(|n| n.delegated.clone())
                    .filter(|_| delegated),
                p.network.as_ref().and_then(|n| n.sids.as_ref()),
            )?,
            rules::ClientBasis::Local { privileges: true } => Token::from_ids_with_capabilities(
                plan.uid,
                plan.gid,
                &plan.groups,
                p.permitted_capabilities,
                p.effective_capabilities,
            )?,
            rules::ClientBasis::Local { privileges: false } => {
                Token::from_ids(plan.uid, plan.gid, &plan.groups)?
            }
        };
        let token = directory_sids_of_peer(plan.basis, token)?;
        let token = token.duplicate(plan.level, TokenType::Impersonation)?;
        Ok(if plan.effective_only {
            token.effective_only()
        } else {
            token
        })
    }
}

/// A policy hook: whether to serve a client. Called once per connection, before
/// anything is read from it.
pub type PeerPolicy = Arc<dyn Fn(&PeerIdentity) -> bool + Send + Sync>;

/// A new connection's client on a Unix socket: its identity from the kernel, or
/// `None` when `policy` refuses it.
///
/// # Errors
/// As [`PeerIdentity::of_socket`].
pub fn admit(fd: impl AsFd, policy: Option<&PeerPolicy>) -> Result<Option<PeerIdentity>> {
    Ok(admit_with_pidfd(fd.as_fd(), policy)?.map(|(peer, _)| peer))
}

/// As [`admit`], with a pidfd of the client process where the kernel gives one.
fn admit_with_pidfd(
    fd: BorrowedFd<'_>,
    policy: Option<&PeerPolicy>,
) -> Result<Option<(PeerIdentity, Option<OwnedFd>)>> {
    let (peer, pidfd) = peer_identity(fd)?;
    if let Some(policy) = policy
        && !policy(&peer)
    {
        tracing::info!(uid = peer.uid, pid = peer.pid, "client refused by policy");
        return Ok(None);
    }
    Ok(Some((peer, pidfd)))
}

/// A new connection's client context on a Unix socket, served at `max_level` at
/// most, or `None` when `policy` refuses it. For a connection made as root the
/// client process's pidfd is kept (`SO_PEERPIDFD`, or `pidfd_open` of its pid on
/// a kernel without it): dynamic tracking needs it to tell whether a message that
/// says root comes while a thread of that process acts for another user. A
/// connection made as root costs the server one more descriptor.
///
/// # Errors
/// As [`PeerIdentity::of_socket`].
pub(crate) fn admit_context(
    fd: BorrowedFd<'_>,
    policy: Option<&PeerPolicy>,
    max_level: ImpersonationLevel,
) -> Result<Option<ClientContext>> {
    let Some((peer, pidfd)) = admit_with_pidfd(fd, policy)? else {
        return Ok(None);
    };
    // Without SO_PEERPIDFD the pid may have gone to another process since the
    // connect; a message is then taken as root only if the kernel says it came
    // from the process of that pidfd, which only a holder of the connection can.
    let process = if peer.uid == 0 {
        pidfd.or_else(|| {
            let pid = rustix::process::Pid::from_raw(peer.pid)?;
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        })
    } else {
        None
    };
    let mut ctx = ClientContext::new(peer, max_level);
    ctx.process = process.map(Arc::new);
    Ok(Some(ctx))
}

#[cfg(test)]
mod tests {
    //! The client core without root: a context is made from what a kernel would
    //! have said, and its token checked against the rules.

    use super::*;
    use crate::privilege::Privilege;

    fn peer(
        uid: u32,
        gid: u32,
        groups: &[u32],
        permitted: CapabilitySet,
        effective: CapabilitySet,
    ) -> PeerIdentity {
        PeerIdentity {
            pid: 4242,
            uid,
            gid,
            groups: groups.to_vec(),
            has_pidfd: false,
            permitted_capabilities: Capabilities::from_set(permitted),
            effective_capabilities: Capabilities::from_set(effective),
            connected_at: SystemTime::now(),
            network: None,
        }
    }

    fn ctx(peer: PeerIdentity, max: ImpersonationLevel, qos: SecurityQos) -> ClientContext {
        let mut c = ClientContext::new(peer, max);
        c.set_qos(qos);
        c
    }

    fn qos(
        level: ImpersonationLevel,
        tracking: ContextTracking,
        effective_only: bool,
    ) -> SecurityQos {
        SecurityQos {
            level,
            tracking,
            effective_only,
        }
    }

    use ContextTracking::{Dynamic, Static};
    use ImpersonationLevel::{Anonymous, Delegation, Identification, Impersonation};

    #[test]
    fn peer_identity_is_read_through_its_methods() {
        let mut p = peer(
            1000,
            1001,
            &[27, 1000],
            CapabilitySet::SYS_PTRACE | CapabilitySet::KILL,
            CapabilitySet::KILL,
        );
        p.has_pidfd = true;
        assert_eq!((p.pid(), p.uid(), p.gid()), (4242, 1000, 1001));
        assert_eq!(p.groups(), &[27, 1000]);
        assert!(p.has_pidfd());
        assert_eq!(
            p.permitted_capabilities(),
            Capabilities::SYS_PTRACE | Capabilities::KILL
        );
        assert_eq!(p.effective_capabilities(), Capabilities::KILL);
        assert_eq!(p.connected_at(), p.connected_at);
        assert!(p.network().is_none());
        p.has_pidfd = false;
        assert!(!p.has_pidfd());
        let net = NetworkClient {
            sids: None,
            principal: "bob@EXAMPLE.TEST".into(),
            account: "bob".into(),
            service: "host/server@EXAMPLE.TEST".into(),
            address: "127.0.0.1:2".parse().unwrap(),
            delegated: None,
        };
        let v = PeerIdentity::vouched(0, 2000, 2000, vec![2000], Some(net)).unwrap();
        assert_eq!(v.network().map(|n| n.account.as_str()), Some("bob"));
        assert!(!v.has_pidfd() && v.permitted_capabilities().is_empty());
    }

    #[test]
    fn no_token_before_a_message_was_read() {
        let c = ctx(
            peer(
                1000,
                1000,
                &[1000],
                CapabilitySet::empty(),
                CapabilitySet::empty(),
            ),
            Delegation,
            qos(Impersonation, Static, false),
        );
        assert!(!c.has_received());
        assert_eq!(c.token().unwrap_err().kind(), ErrorKind::CannotImpersonate);
    }

    #[test]
    fn a_client_that_sends_no_qos_is_identified_and_effective_only() {
        let d = SecurityQos::default();
        assert_eq!(
            (d.level, d.tracking, d.effective_only),
            (Identification, Static, true)
        );
        // A root client holding SeDebug (CAP_SYS_PTRACE) disabled: effective-only
        // drops it, as Windows does for a client that states no quality of service.
        let root = peer(
            0,
            0,
            &[0],
            CapabilitySet::SYS_PTRACE,
            CapabilitySet::empty(),
        );
        let mut c = ClientContext::new(root.clone(), Delegation);
        c.message_received(None);
        let t = c.token().unwrap();
        assert_eq!(t.impersonation_level(), Some(Identification));
        assert!(!t.has_privilege(Privilege::Debug));
        let mut c = ctx(root, Delegation, qos(Identification, Static, false));
        c.message_received(None);
        assert!(c.token().unwrap().has_privilege(Privilege::Debug));
    }

    #[test]
    fn static_tracking_serves_the_connection_never_above_the_server_maximum() {
        for (asked, max, want) in [
            (Impersonation, Delegation, Impersonation),
            (Delegation, Impersonation, Impersonation),
            (Delegation, Delegation, Delegation),
            (Identification, Delegation, Identification),
        ] {
            let mut c = ctx(
                peer(
                    1000,
                    1000,
                    &[1000, 27],
                    CapabilitySet::empty(),
                    CapabilitySet::empty(),
                ),
                max,
                qos(asked, Static, false),
            );
            // Static tracking ignores what the kernel attached.
            c.message_received(Some((2000, 2000)));
            assert_eq!(c.level(), asked.min(max));
            let t = c.token().unwrap();
            assert_eq!(t.impersonation_level(), Some(want), "{asked} {max}");
            assert_eq!(t.token_type(), TokenType::Impersonation);
            assert_eq!(t.unix().uid().as_raw(), 1000);
            assert_eq!(t.unix().groups(), &[27, 1000]);
        }
    }

    #[test]
    fn the_connection_keeps_its_privileges_and_another_sender_is_only_identified() {
        let caps = CapabilitySet::SYS_PTRACE;
        let mut c = ctx(
            peer(0, 0, &[0], caps, caps),
            Delegation,
            qos(Impersonation, Dynamic, false),
        );
        c.message_received(Some((0, 0)));
        // No pidfd of the client process: root's message cannot be shown to be
        // root's alone.
        let t = c.token().unwrap();
        assert_eq!(t.impersonation_level(), Some(Identification));
        assert!(!t.has_privilege(Privilege::Debug));

        let mut c = ctx(
            peer(
                1000,
                1000,
                &[1000],
                CapabilitySet::empty(),
                CapabilitySet::empty(),
            ),
            Delegation,
            qos(Impersonation, Dynamic, false),
        );
        c.message_received(Some((1000, 1000)));
        let same = c.token().unwrap();
        assert_eq!(same.impersonation_level(), Some(Impersonation));
        c.message_received(Some((0, 0)));
        let other = c.token().unwrap();
        assert_eq!(other.impersonation_level(), Some(Identification));
        assert_eq!(other.unix().uid().as_raw(), 1000, "never the sender's ids");
        assert_ne!(same.statistics().token_id, other.statistics().token_id);
    }

    #[test]
    fn a_root_connection_acts_for_another_identity_with_its_accounts_groups() {
        // uid 1 (daemon) has an account on every Debian system; 4000000 has none.
        let mut c = ctx(
            peer(0, 0, &[0], CapabilitySet::all(), CapabilitySet::all()),
            Delegation,
            qos(Impersonation, Dynamic, false),
        );
        c.message_received(Some((1, 1)));
        let t = c.token().unwrap();
        assert_eq!(t.unix().uid().as_raw(), 1);
        assert_eq!(t.impersonation_level(), Some(Impersonation));
        assert!(
            t.privileges()
                .iter()
                .all(|p| !p.enabled || p.privilege == Privilege::ChangeNotify)
        );
        assert_eq!(Some(t.unix().groups().to_vec()), account_groups(1, 1));
        c.message_received(Some((4_000_000, 4_000_000)));
        let t = c.token().unwrap();
        assert_eq!(t.unix().uid().as_raw(), 4_000_000);
        assert_eq!(t.unix().groups(), &[4_000_000]);
        assert_eq!(t.impersonation_level(), Some(Identification));
    }

    #[test]
    fn anonymous_reveals_nothing_and_the_sentinel_is_only_identified() {
        let mut c = ctx(
            peer(
                1000,
                1000,
                &[1000],
                CapabilitySet::empty(),
                CapabilitySet::empty(),
            ),
            Delegation,
            qos(Anonymous, Static, true),
        );
        c.message_received(None);
        let t = c.token().unwrap();
        assert_eq!(t.user(), crate::sid::Sid::ANONYMOUS);
        assert_eq!(t.impersonation_level(), Some(Anonymous));
        let s = crate::cred::SENTINEL_UID;
        let mut c = ctx(
            peer(s, s, &[], CapabilitySet::empty(), CapabilitySet::empty()),
            Delegation,
            qos(Delegation, Static, false),
        );
        c.message_received(None);
        assert_eq!(
            c.token().unwrap().impersonation_level(),
            Some(Identification)
        );
    }

    #[test]
    fn a_network_client_without_delegated_credentials_is_never_delegated() {
        let net = NetworkClient {
            sids: None,
            principal: "alice@EXAMPLE.TEST".into(),
            account: "alice".into(),
            service: "host/server@EXAMPLE.TEST".into(),
            address: "127.0.0.1:1".parse().unwrap(),
            delegated: None,
        };
        let p = PeerIdentity::vouched(0, 1000, 1000, vec![1000], Some(net)).unwrap();
        let mut c = ctx(p, Delegation, qos(Delegation, Dynamic, false));
        // Whatever a network client's message says, it is its account.
        c.message_received(Some((0, 0)));
        let t = c.token().unwrap();
        assert_eq!(t.impersonation_level(), Some(Impersonation));
        assert_eq!(t.unix().uid().as_raw(), 1000);
        assert!(t.credential_cache().is_none());
        assert!(
            t.groups()
                .iter()
                .any(|g| g.sid == crate::token::LogonType::Network.sid())
        );
    }

    #[test]
    fn the_token_is_made_once_per_identity_and_quality_of_service() {
        let mut c = ctx(
            peer(
                1000,
                1000,
                &[1000],
                CapabilitySet::empty(),
                CapabilitySet::empty(),
            ),
            Delegation,
            qos(Impersonation, Dynamic, false),
        );
        c.message_received(Some((1000, 1000)));
        assert!(c.has_received());
        assert_eq!(c.qos(), qos(Impersonation, Dynamic, false));
        let a = c.token().unwrap().statistics().token_id;
        assert_eq!(c.token().unwrap().statistics().token_id, a);
        c.message_received(Some((1000, 1000)));
        assert_eq!(c.token().unwrap().statistics().token_id, a);
        c.set_qos(qos(Impersonation, Dynamic, false));
        assert_eq!(c.token().unwrap().statistics().token_id, a);
        c.set_qos(qos(Identification, Dynamic, false));
        let b = c.token().unwrap();
        assert_ne!(b.statistics().token_id, a);
        assert_eq!(b.impersonation_level(), Some(Identification));
        let cloned = c.clone();
        assert_eq!(
            cloned.token().unwrap().statistics().token_id,
            b.statistics().token_id
        );
        assert_eq!(cloned.qos(), c.qos());
        assert_eq!(cloned.peer(), c.peer());
    }
}
