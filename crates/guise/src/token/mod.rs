//! Access tokens: who a security context is, and what it may do.
//!
//! A [`Token`] carries what Win32's `GetTokenInformation` reports: user, groups with
//! their attributes, privileges with their state, owner, primary group, type, level,
//! statistics and source. It also carries the Unix identity (uid, gid, supplementary
//! groups) that the kernel sees while a thread impersonates it.
//!
//! # Tokens are values
//! A `Token` is the token itself, not a handle to a kernel object. Cloning it copies
//! it, keeping its statistics (as a second handle would). Changing one copy
//! ([`Token::adjust_privileges`]) does not change the others; it gives that copy a
//! new modified id. [`Token::duplicate`] makes a new token with a new token id.
//! The one exception is the process token itself ([`Token::open_process`]):
//! adjusting its privileges changes the calling thread's capabilities
//! ([`Token::adjust_privileges`]).
//!
//! # Example
//! ```
//! use guise::{ErrorKind, ImpersonationLevel, Sid, Token, TokenType};
//!
//! let process = Token::open_process()?; // OpenProcessToken
//! assert_eq!(process.token_type(), TokenType::Primary);
//! // GetTokenInformation: TokenUser, TokenGroups, TokenStatistics, ...
//! let alice = Token::from_ids(1000, 1000, &[1000, 100])?;
//! assert_eq!(alice.user(), Sid::unix_user(1000));
//! assert!(alice.groups().iter().any(|g| g.sid == Sid::unix_group(100)));
//! let id = process.duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)?;
//! assert_ne!(id.statistics().token_id, process.statistics().token_id);
//! // An impersonation token is never raised (DuplicateTokenEx's rule).
//! let raised = id.duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation);
//! assert_eq!(raised.unwrap_err().kind(), ErrorKind::BadImpersonationLevel);
//! # Ok::<(), guise::Error>(())
//! ```

use std::ffi::CString;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bitflags::bitflags;
use rustix::thread::CapabilitySet;

use crate::cred::{self, SENTINEL_GID, SENTINEL_UID};
use crate::error::{Error, ErrorKind, Result};
use crate::id::{Gid, Uid};
use crate::privilege::Privilege;
use crate::sid::Sid;

/// A locally unique identifier (`LUID`): token ids, logon ids, modified ids.
#[doc(alias = "LUID")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Luid(pub u64);

impl Luid {
    /// The logon id of Local System (`SYSTEM_LUID`, `0x3e7`); tokens of uid 0 that
    /// are not from a logon carry it.
    pub const SYSTEM: Luid = Luid(0x3e7);
    /// The logon id of the anonymous logon (`ANONYMOUS_LOGON_LUID`, `0x3e6`).
    pub const ANONYMOUS: Luid = Luid(0x3e6);

    /// A new identifier, unique in this process (`AllocateLocallyUniqueId`).
    #[doc(alias = "AllocateLocallyUniqueId")]
    pub fn allocate() -> Luid {
        static NEXT: AtomicU64 = AtomicU64::new(0x10000);
        Luid(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for Luid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// Whether a token is a process's token or a thread's (`TOKEN_TYPE`).
#[doc(alias = "TOKEN_TYPE")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// A primary token: a process runs as it (`TokenPrimary`).
    Primary,
    /// An impersonation token: a thread acts as it (`TokenImpersonation`).
    Impersonation,
}

/// How far a server may act as its client (`SECURITY_IMPERSONATION_LEVEL`).
///
/// The order is the Win32 one: `Anonymous < Identification < Impersonation <
/// Delegation`.
#[doc(alias = "SECURITY_IMPERSONATION_LEVEL")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImpersonationLevel {
    /// The server may not even identify the client (`SecurityAnonymous`). The kernel
    /// sees the unprivileged sentinel identity.
    Anonymous,
    /// The server may read the client's token and run access checks with it, but not
    /// act as it (`SecurityIdentification`). The kernel sees the sentinel identity.
    Identification,
    /// The server acts as the client on this machine (`SecurityImpersonation`): the
    /// kernel sees the client's uid, gid and groups.
    Impersonation,
    /// As Impersonation, and the client's credentials may reach other machines
    /// (`SecurityDelegation`). guise carries no network credentials across IPC yet,
    /// so locally this acts as Impersonation.
    Delegation,
}

impl ImpersonationLevel {
    /// The Win32 name (`"SecurityIdentification"`, ...).
    pub fn win32_name(self) -> &'static str {
        match self {
            ImpersonationLevel::Anonymous => "SecurityAnonymous",
            ImpersonationLevel::Identification => "SecurityIdentification",
            ImpersonationLevel::Impersonation => "SecurityImpersonation",
            ImpersonationLevel::Delegation => "SecurityDelegation",
        }
    }
}

impl fmt::Display for ImpersonationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImpersonationLevel::Anonymous => "anonymous",
            ImpersonationLevel::Identification => "identification",
            ImpersonationLevel::Impersonation => "impersonation",
            ImpersonationLevel::Delegation => "delegation",
        })
    }
}

impl std::str::FromStr for ImpersonationLevel {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "anonymous" | "securityanonymous" => ImpersonationLevel::Anonymous,
            "identification" | "securityidentification" => ImpersonationLevel::Identification,
            "impersonation" | "securityimpersonation" => ImpersonationLevel::Impersonation,
            "delegation" | "securitydelegation" => ImpersonationLevel::Delegation,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "unknown impersonation level {s:?} (anonymous, identification, impersonation, delegation)"
                    ),
                ));
            }
        })
    }
}

/// The kind of logon a token comes from; its SID is among the token's groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogonType {
    /// `LOGON32_LOGON_INTERACTIVE`: group `S-1-5-4`.
    Interactive,
    /// `LOGON32_LOGON_NETWORK`: group `S-1-5-2`; the logon yields an impersonation
    /// token.
    Network,
    /// `LOGON32_LOGON_BATCH`: group `S-1-5-3`.
    Batch,
    /// `LOGON32_LOGON_SERVICE`: group `S-1-5-6`.
    Service,
    /// `LOGON32_LOGON_NETWORK_CLEARTEXT`: group `S-1-5-2`; keeps the credentials.
    NetworkCleartext,
}

impl LogonType {
    /// Its Win32 name (`LOGON32_LOGON_INTERACTIVE`, ...), as the audit trail
    /// writes it.
    pub fn win32_name(self) -> &'static str {
        match self {
            LogonType::Interactive => "LOGON32_LOGON_INTERACTIVE",
            LogonType::Network => "LOGON32_LOGON_NETWORK",
            LogonType::Batch => "LOGON32_LOGON_BATCH",
            LogonType::Service => "LOGON32_LOGON_SERVICE",
            LogonType::NetworkCleartext => "LOGON32_LOGON_NETWORK_CLEARTEXT",
        }
    }

    /// The group SID a token of this logon type carries.
    pub fn sid(self) -> Sid {
        match self {
            LogonType::Interactive => Sid::INTERACTIVE,
            LogonType::Network | LogonType::NetworkCleartext => Sid::NETWORK,
            LogonType::Batch => Sid::BATCH,
            LogonType::Service => Sid::SERVICE,
        }
    }
}

bitflags! {
    /// Attributes of a group in a token (`SE_GROUP_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct GroupAttributes: u32 {
        /// `SE_GROUP_MANDATORY`: the group cannot be disabled.
        const MANDATORY = 0x0000_0001;
        /// `SE_GROUP_ENABLED_BY_DEFAULT`.
        const ENABLED_BY_DEFAULT = 0x0000_0002;
        /// `SE_GROUP_ENABLED`: the group counts in access checks.
        const ENABLED = 0x0000_0004;
        /// `SE_GROUP_OWNER`: the group may be set as an object's owner.
        const OWNER = 0x0000_0008;
        /// `SE_GROUP_USE_FOR_DENY_ONLY`: the group matches only deny ACEs.
        const USE_FOR_DENY_ONLY = 0x0000_0010;
        /// `SE_GROUP_INTEGRITY`.
        const INTEGRITY = 0x0000_0020;
        /// `SE_GROUP_INTEGRITY_ENABLED`.
        const INTEGRITY_ENABLED = 0x0000_0040;
        /// `SE_GROUP_RESOURCE`.
        const RESOURCE = 0x2000_0000;
        /// `SE_GROUP_LOGON_ID`: the logon SID.
        const LOGON_ID = 0xC000_0000;
    }
}

impl GroupAttributes {
    /// Mandatory, enabled and enabled by default: the attributes of an ordinary group.
    pub const DEFAULT: GroupAttributes = GroupAttributes::MANDATORY
        .union(GroupAttributes::ENABLED_BY_DEFAULT)
        .union(GroupAttributes::ENABLED);
}

/// A group in a token (`SID_AND_ATTRIBUTES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Group {
    /// The group's SID.
    pub sid: Sid,
    /// Its attributes.
    pub attributes: GroupAttributes,
}

/// A privilege held by a token and its state (`LUID_AND_ATTRIBUTES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenPrivilege {
    /// The privilege.
    pub privilege: Privilege,
    /// Whether it is enabled (`SE_PRIVILEGE_ENABLED`).
    pub enabled: bool,
    /// Whether it was enabled when the token was made (`SE_PRIVILEGE_ENABLED_BY_DEFAULT`).
    pub enabled_by_default: bool,
}

/// What to do with a privilege in [`Token::adjust_privileges`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrivilegeChange {
    /// Enable it (`SE_PRIVILEGE_ENABLED`).
    Enable,
    /// Disable it (attributes 0).
    Disable,
    /// Remove it from the token for good (`SE_PRIVILEGE_REMOVED`).
    Remove,
}

/// What [`Token::create_restricted`] restricts (the arguments of
/// `CreateRestrictedToken`).
#[doc(alias = "CreateRestrictedToken")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestrictedTokenOptions {
    /// SIDs that become deny-only (`SidsToDisable`).
    pub sids_to_disable: Vec<Sid>,
    /// Privileges removed (`PrivilegesToDelete`).
    pub privileges_to_delete: Vec<Privilege>,
    /// The restricting SIDs (`SidsToRestrict`).
    pub restricting_sids: Vec<Sid>,
    /// Remove every privilege but SeChangeNotifyPrivilege
    /// (`DISABLE_MAX_PRIVILEGE`).
    pub disable_max_privilege: bool,
    /// Check only write access against the restricting SIDs
    /// (`WRITE_RESTRICTED`).
    pub write_restricted: bool,
}

/// What `GetTokenInformation(TokenGroupsAndPrivileges)` gives
/// (`TOKEN_GROUPS_AND_PRIVILEGES`).
#[doc(alias = "TOKEN_GROUPS_AND_PRIVILEGES")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGroupsAndPrivileges {
    /// The user, then the groups.
    pub sids: Vec<Group>,
    /// The restricting SIDs; empty for a token that is not restricted.
    pub restricted_sids: Vec<Group>,
    /// The privileges.
    pub privileges: Vec<TokenPrivilege>,
    /// The logon session (`AuthenticationId`).
    pub authentication_id: Luid,
}

/// A token's elevation type (`TOKEN_ELEVATION_TYPE`).
#[doc(alias = "TOKEN_ELEVATION_TYPE")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElevationType {
    /// `TokenElevationTypeDefault` (1): no linked token.
    Default,
    /// `TokenElevationTypeFull` (2): the elevated half of a split token.
    Full,
    /// `TokenElevationTypeLimited` (3): the filtered half of a split token.
    Limited,
}

impl ElevationType {
    /// The Win32 name (`TokenElevationTypeDefault`, ...).
    pub fn win32_name(self) -> &'static str {
        match self {
            ElevationType::Default => "TokenElevationTypeDefault",
            ElevationType::Full => "TokenElevationTypeFull",
            ElevationType::Limited => "TokenElevationTypeLimited",
        }
    }
}

/// The rank of an integrity level SID (`S-1-16-rid`): its rid.
pub(crate) fn integrity_rank(sid: &Sid) -> Option<u32> {
    match (sid.authority(), sid.sub_authorities()) {
        (16, [rid]) => Some(*rid),
        _ => None,
    }
}

/// A token's statistics (`TOKEN_STATISTICS`).
#[doc(alias = "TOKEN_STATISTICS")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenStatistics {
    /// The token's id: new for every token and every duplicate.
    pub token_id: Luid,
    /// The logon session the token belongs to (`AuthenticationId`).
    pub authentication_id: Luid,
    /// Changes on every adjustment of the token.
    pub modified_id: Luid,
}

/// The Unix identity a token stands for: what the kernel sees while a thread
/// impersonates it at Impersonation level or above.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnixIdentity {
    uid: u32,
    gid: u32,
    /// Shared with what the kernel is told while a thread impersonates.
    groups: Arc<[u32]>,
}

impl UnixIdentity {
    /// A Unix identity from raw ids (sorted and without duplicates afterwards).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a uid, gid or group of `u32::MAX` (`-1`
    /// means "unchanged" to the kernel) or more than 65536 groups.
    pub fn new(
        uid: impl Into<Uid>,
        gid: impl Into<Gid>,
        groups: impl IntoIterator<Item = u32>,
    ) -> Result<Self> {
        let (uid, gid) = (uid.into().as_raw(), gid.into().as_raw());
        let mut groups: Vec<u32> = groups.into_iter().collect();
        cred::validate_ids(uid, gid, &groups)?;
        groups.sort_unstable();
        groups.dedup();
        Ok(UnixIdentity {
            uid,
            gid,
            groups: groups.into(),
        })
    }

    /// The uid.
    pub fn uid(&self) -> Uid {
        Uid::from_raw(self.uid)
    }

    /// The primary gid.
    pub fn gid(&self) -> Gid {
        Gid::from_raw(self.gid)
    }

    /// The supplementary groups, sorted.
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }

    /// The supplementary groups, shared: for what a thread tells the kernel.
    pub(crate) fn shared_groups(&self) -> &Arc<[u32]> {
        &self.groups
    }

    /// The SID of the user: Local System for uid 0, `S-1-22-1-uid` otherwise.
    pub fn user_sid(&self) -> Sid {
        if self.uid == 0 {
            Sid::LOCAL_SYSTEM
        } else {
            Sid::unix_user(self.uid)
        }
    }
}

/// Where a token came from; decides whether a server may impersonate it without
/// SeImpersonatePrivilege.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Process,
    Account,
    Peer,
    Anonymous,
    /// Made of SIDs alone: never above Identification level.
    Synthetic,
    /// A LogonUser of the process with this pid.
    Logon {
        pid: u32,
    },
}

/// An access token: see the [module documentation](self).
#[doc(alias = "HANDLE")]
#[doc(alias = "TOKEN_INFORMATION_CLASS")]
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Shared between clones until one is changed: a clone (each impersonation
    /// keeps one) copies no group or privilege.
    d: Arc<TokenData>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.d.fmt(f)
    }
}

/// What a [`Token`] holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TokenData {
    user: Sid,
    groups: Vec<Group>,
    privileges: Vec<TokenPrivilege>,
    owner: Sid,
    primary_group: Sid,
    token_type: TokenType,
    level: ImpersonationLevel,
    statistics: TokenStatistics,
    source: &'static str,
    unix: UnixIdentity,
    origin: Origin,
    network_credentials: bool,
    /// The Kerberos credential cache of the token's own (a logon's, a delegating
    /// client's).
    credential_cache: Option<CredentialCache>,
    session: Option<SessionRef>,
    /// The user and groups, indexed for membership tests; made from `user` and
    /// `groups` whenever they are set (see [`SidIndex::of`]).
    index: SidIndex,
    /// What [`Token::create_restricted`], [`Token::set_integrity_level`] and
    /// the default DACL changed; `None` for most tokens.
    restrictions: Option<Box<Restrictions>>,
}

/// A token's restrictions: a lowered integrity level, a deny-only user, and
/// restricting SIDs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Restrictions {
    /// The integrity level, when set lower than the token's own.
    integrity: Option<Sid>,
    /// The user SID matches deny ACEs only.
    user_deny_only: bool,
    /// The restricting SIDs (`TokenRestrictedSids`), if the token is restricted.
    restricting: Option<Vec<Group>>,
    /// They, indexed as the second pass of AccessCheck asks.
    restricting_index: SidIndex,
    /// Only write access is checked against the restricting SIDs
    /// (`WRITE_RESTRICTED`).
    write_restricted: bool,
    /// The default DACL set with `SetTokenInformation(TokenDefaultDacl)`, as
    /// SDDL (the security module reads and writes it).
    default_dacl: Option<String>,
}

/// A token's user and groups as AccessCheck asks about them, many times per check:
/// "does an allow (or deny) ACE for this SID apply to the token?" Built once with
/// the token, so a check computes nothing per token and allocates nothing.
///
/// A 256-bit filter of the SIDs' keys answers "no" for most ACEs (they name someone
/// else) in a few instructions; a key that passes is looked up among the entries,
/// and only an entry with the same key is compared in full.
#[derive(Clone, Default, PartialEq, Eq)]
struct SidIndex {
    filter: [u64; 4],
    entries: Box<[IndexEntry]>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct IndexEntry {
    key: u64,
    sid: Sid,
    /// An allow ACE applies: the user, or an enabled group that is not deny-only.
    allow: bool,
    /// A deny ACE applies: the user, an enabled group or a deny-only group.
    deny: bool,
}

impl SidIndex {
    fn of(user: &Sid, user_deny_only: bool, groups: &[Group]) -> SidIndex {
        let user = IndexEntry {
            key: user.key(),
            sid: *user,
            allow: !user_deny_only,
            deny: true,
        };
        Self::of_entries(Some(user), groups)
    }

    /// The restricting SIDs, as the second pass of AccessCheck matches them.
    fn of_groups(groups: &[Group]) -> SidIndex {
        Self::of_entries(None, groups)
    }

    fn of_entries(user: Option<IndexEntry>, groups: &[Group]) -> SidIndex {
        let mut index = SidIndex::default();
        let groups = groups.iter().filter_map(|g| {
            let deny_only = g.attributes.contains(GroupAttributes::USE_FOR_DENY_ONLY);
            let enabled = g.attributes.contains(GroupAttributes::ENABLED);
            (enabled || deny_only).then(|| IndexEntry {
                key: g.sid.key(),
                sid: g.sid,
                allow: enabled && !deny_only,
                deny: true,
            })
        });
        let entries: Vec<IndexEntry> = user.into_iter().chain(groups).collect();
        for e in &entries {
            let bit = Self::bit(e.key);
            index.filter[bit / 64] |= 1 << (bit % 64);
        }
        index.entries = entries.into_boxed_slice();
        index
    }

    fn bit(key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
    }

    #[inline]
    fn holds(&self, sid: &Sid, for_deny: bool) -> bool {
        let key = sid.key();
        let bit = Self::bit(key);
        if self.filter[bit / 64] & (1 << (bit % 64)) == 0 {
            return false;
        }
        self.entries
            .iter()
            .any(|e| e.key == key && (if for_deny { e.deny } else { e.allow }) && e.sid == *sid)
    }
}

impl fmt::Debug for SidIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SidIndex({} SIDs)", self.entries.len())
    }
}

/// What a logon leaves on its tokens: the logon's PAM session, open while any
/// token of the logon (or a process started from one) lives. The `logon` module
/// implements it; a token only holds it.
pub(crate) trait LogonSession: Send + Sync {
    /// The environment the logon's PAM modules set up.
    fn environment(&self) -> &[(String, String)];
}

/// A shared reference to a logon session: tokens compare equal when they share it.
#[derive(Clone)]
pub(crate) struct SessionRef(pub(crate) Arc<dyn LogonSession>);

impl SessionRef {
    pub(crate) fn environment(&self) -> &[(String, String)] {
        self.0.environment()
    }
}

impl PartialEq for SessionRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SessionRef {}

impl std::fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogonSession")
    }
}

mod cache;
#[cfg(feature = "kerberos")]
mod made;

#[cfg(feature = "kerberos")]
pub(crate) use cache::NO_DELEGATED_CREDENTIALS_C;
#[cfg(feature = "kerberos")]
pub(crate) use cache::{CacheParent, PrivateCacheDir, Removal, Remover, file_id};
pub use cache::{CredentialCache, NO_DELEGATED_CREDENTIALS};

/// The token id and logon id of the process token, the same for every open.
fn process_luids() -> (Luid, Luid) {
    static IDS: OnceLock<(Luid, Luid)> = OnceLock::new();
    *IDS.get_or_init(|| (Luid::allocate(), Luid::allocate()))
}

/// The privileges that capability sets give: a privilege with capabilities is held
/// when they are all permitted and enabled when they are all effective.
/// SeChangeNotifyPrivilege, which needs none, is always held and enabled; the other
/// privileges without a capability only when `capless` (the process token of uid 0),
/// with Local System's defaults.
fn privileges_from_capabilities(
    permitted: CapabilitySet,
    effective: CapabilitySet,
    capless: bool,
) -> Vec<TokenPrivilege> {
    Privilege::all()
        .filter_map(|p| {
            let need = p.capabilities();
            let (held, enabled) = if need.is_empty() {
                let everyone = p == Privilege::ChangeNotify;
                (
                    everyone || capless,
                    everyone || (capless && p.info().enabled_for_system),
                )
            } else {
                (permitted.contains(need), effective.contains(need))
            };
            held.then_some(TokenPrivilege {
                privilege: p,
                enabled,
                enabled_by_default: enabled,
            })
        })
        .collect()
}

/// The privileges of a token for an account: every privilege for uid 0, with
/// Local System's defaults enabled; only SeChangeNotifyPrivilege for anyone else.
fn identity_privileges(uid: u32) -> Vec<TokenPrivilege> {
    let held = |p: Privilege, enabled: bool| TokenPrivilege {
        privilege: p,
        enabled,
        enabled_by_default: enabled,
    };
    if uid == 0 {
        Privilege::all()
            .map(|p| held(p, p.info().enabled_for_system))
            .collect()
    } else {
        vec![held(Privilege::ChangeNotify, true)]
    }
}

/// The groups of a token for a Unix identity: Everyone, Authenticated Users, the
/// logon type and logon SIDs if any, Administrators for uid 0, the primary and
/// supplementary Unix groups.
fn identity_groups(unix: &UnixIdentity, logon: Option<(LogonType, Luid)>) -> Vec<Group> {
    let mut groups = vec![
        Group {
            sid: Sid::EVERYONE,
            attributes: GroupAttributes::DEFAULT,
        },
        Group {
            sid: Sid::AUTHENTICATED_USERS,
            attributes: GroupAttributes::DEFAULT,
        },
    ];
    if let Some((logon_type, logon_id)) = logon {
        groups.push(Group {
            sid: logon_type.sid(),
            attributes: GroupAttributes::DEFAULT,
        });
        groups.push(Group {
            sid: Sid::logon(logon_id.0),
            attributes: GroupAttributes::DEFAULT | GroupAttributes::LOGON_ID,
        });
    }
    if unix.uid == 0 {
        groups.push(Group {
            sid: Sid::ADMINISTRATORS,
            attributes: GroupAttributes::DEFAULT | GroupAttributes::OWNER,
        });
    }
    // The supplementary groups are sorted and unique; only the primary gid may
    // repeat among them.
    let gids =
        std::iter::once(unix.gid).chain(unix.groups.iter().copied().filter(|&g| g != unix.gid));
    groups.extend(gids.map(|gid| Group {
        sid: Sid::unix_group(gid),
        attributes: GroupAttributes::DEFAULT,
    }));
    groups
}

/// Whether the process has Kerberos credentials of its own for `uid`: the cache
/// `KRB5CCNAME` names (else the default, `/tmp/krb5cc_<uid>`) exists. A file or
/// directory cache must belong to `uid`; a kernel keyring or KCM cache counts when
/// named; a memory cache is the process's own and never came from a logon.
fn kerberos_cache_of(uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let name = std::env::var("KRB5CCNAME").unwrap_or_else(|_| format!("FILE:/tmp/krb5cc_{uid}"));
    let (kind, rest) = match name.split_once(':') {
        Some((kind, rest)) if !kind.contains('/') => (kind, rest),
        _ => ("FILE", name.as_str()),
    };
    match kind {
        "FILE" | "DIR" => {
            std::fs::metadata(rest.trim_start_matches(':')).is_ok_and(|m| m.uid() == uid)
        }
        "KEYRING" | "KCM" | "API" => true,
        _ => false,
    }
}

impl Token {
    fn from_data(d: TokenData) -> Token {
        Token { d: Arc::new(d) }
    }

    /// The token's data to change, copied first if another clone shares it.
    fn data_mut(&mut self) -> &mut TokenData {
        Arc::make_mut(&mut self.d)
    }

    fn for_identity(
        unix: UnixIdentity,
        logon: Option<(LogonType, Luid)>,
        origin: Origin,
        source: &'static str,
    ) -> Token {
        let token_id = Luid::allocate();
        let authentication_id = match logon {
            Some((_, id)) => id,
            None if unix.uid == 0 => Luid::SYSTEM,
            None => Luid::allocate(),
        };
        let (token_type, level) = match logon {
            Some((LogonType::Network, _)) => {
                (TokenType::Impersonation, ImpersonationLevel::Impersonation)
            }
            _ => (TokenType::Primary, ImpersonationLevel::Impersonation),
        };
        Token::from_data(TokenData {
            user: unix.user_sid(),
            groups: identity_groups(&unix, logon),
            privileges: match origin {
                // A peer's ids say nothing of what its process may do: no privilege is
                // invented from uid 0 (see `Token::from_ids_with_capabilities`).
                Origin::Peer => privileges_from_capabilities(
                    CapabilitySet::empty(),
                    CapabilitySet::empty(),
                    false,
                ),
                _ => identity_privileges(unix.uid),
            },
            owner: if unix.uid == 0 {
                Sid::ADMINISTRATORS
            } else {
                unix.user_sid()
            },
            primary_group: Sid::unix_group(unix.gid),
            token_type,
            level,
            statistics: TokenStatistics {
                token_id,
                authentication_id,
                modified_id: token_id,
            },
            source,
            unix,
            origin,
            network_credentials: false,
            credential_cache: None,
            session: None,
            index: SidIndex::default(),
            restrictions: None,
        })
        .indexed()
    }

    /// The process token for the process credentials `creds` (see
    /// [`Token::open_process`]).
    pub(crate) fn for_process(creds: &crate::cred::ThreadCredentials) -> Result<Token> {
        let unix = UnixIdentity::new(
            creds.uid.effective,
            creds.gid.effective,
            creds.groups.clone(),
        )?;
        let caps = creds.capabilities;
        let root = unix.uid == 0;
        let privileges = privileges_from_capabilities(caps.permitted, caps.effective, root);
        let (token_id, logon_id) = process_luids();
        let uid = unix.uid;
        let mut token = Token::for_identity(unix, None, Origin::Process, "guise");
        token.data_mut().privileges = privileges;
        token.data_mut().network_credentials = kerberos_cache_of(uid);
        token.data_mut().statistics = TokenStatistics {
            token_id,
            authentication_id: if root { Luid::SYSTEM } else { logon_id },
            modified_id: token_id,
        };
        Ok(token)
    }

    pub(crate) fn for_account_entry(
        user: &nix::unistd::User,
        logon_type: LogonType,
    ) -> Result<Token> {
        Self::for_account_from(user, logon_type, Origin::Account)
    }

    /// A local peer's token (ids the kernel reported) with its directory
    /// account's SIDs, where winbind is installed and knows the account of its
    /// uid: a domain user who connects over a Unix socket or D-Bus has the same
    /// SIDs as over Kerberos or by name. Groups its process does not hold are
    /// for deny only.
    ///
    /// # Errors
    /// As [`crate::directory::account`]: a failing lookup makes no token.
    pub(crate) fn with_directory_of_peer(self) -> Result<Token> {
        let uid = self.d.unix.uid;
        if !crate::directory::installed() || uid == 0 || uid == SENTINEL_UID {
            return Ok(self);
        }
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up uid {uid}"), e))?;
        let Some(user) = user else {
            return Ok(self);
        };
        match crate::directory::account(&user.name, uid)? {
            Some(account) => self.with_directory(&account),
            None => Ok(self),
        }
    }

    /// This token, to identify its user and never to act as it: an impersonation
    /// token at Identification level that no duplicate or impersonation raises.
    pub(crate) fn identification_only(mut self) -> Token {
        let d = self.data_mut();
        d.token_type = TokenType::Impersonation;
        d.level = ImpersonationLevel::Identification;
        d.origin = Origin::Synthetic;
        self
    }

    /// A token for an account that this process logged on (`crate::logon`).
    pub(crate) fn for_logon(
        user: &nix::unistd::User,
        logon_type: LogonType,
        session: Option<SessionRef>,
        network_credentials: bool,
    ) -> Result<Token> {
        let mut t = Self::for_account_from(
            user,
            logon_type,
            Origin::Logon {
                pid: std::process::id(),
            },
        )?;
        t.data_mut().session = session;
        t.data_mut().network_credentials = network_credentials;
        t.data_mut().credential_cache = t
            .logon_environment()
            .iter()
            .find(|(k, _)| k == "KRB5CCNAME")
            .and_then(|(_, v)| CredentialCache::named(v).ok());
        Ok(t)
    }

    /// The token of a client that authenticated over the network (a Kerberos
    /// client of [`crate::kerberos`]): its account's ids and groups, its SIDs
    /// (its ticket's PAC's, or the directory's; else the Unix ones of its ids),
    /// the NETWORK logon SID, no privileges, and the client's delegated
    /// credentials, if it forwarded them.
    /// An impersonation token at Delegation level with them, at Impersonation
    /// level without.
    ///
    /// # Errors
    /// As [`Token::from_ids`].
    pub(crate) fn for_network_client(
        uid: u32,
        gid: u32,
        groups: &[u32],
        delegated: Option<CredentialCache>,
        sids: Option<&crate::directory::DomainAccount>,
    ) -> Result<Token> {
        let unix = UnixIdentity::new(uid, gid, groups.iter().copied())?;
        let mut t = Token::for_identity(
            unix,
            Some((LogonType::Network, Luid::allocate())),
            Origin::Peer,
            "kerberos",
        );
        if delegated.is_some() {
            t.data_mut().level = ImpersonationLevel::Delegation;
        }
        t.data_mut().credential_cache = delegated;
        match sids {
            Some(account) => t.with_directory(account),
            None => Ok(t),
        }
    }

    fn for_account_from(
        user: &nix::unistd::User,
        logon_type: LogonType,
        origin: Origin,
    ) -> Result<Token> {
        let name = CString::new(user.name.as_str()).map_err(|_| {
            Error::new(ErrorKind::InvalidParameter, "user name contains a NUL byte")
        })?;
        let groups = nix::unistd::getgrouplist(&name, user.gid).map_err(|e| {
            Error::sys(
                ErrorKind::Os,
                format!("reading the groups of {:?}", user.name),
                e,
            )
        })?;
        let unix = UnixIdentity::new(
            user.uid.as_raw(),
            user.gid.as_raw(),
            groups.into_iter().map(|g| g.as_raw()),
        )?;
        let token =
            Token::for_identity(unix, Some((logon_type, Luid::allocate())), origin, "guise");
        // A directory account's SIDs are its domain's (crate::directory); a
        // lookup that fails is an error, never a token without its groups.
        match crate::directory::account(&user.name, user.uid.as_raw())? {
            Some(account) => token.with_directory(&account),
            None => Ok(token),
        }
    }

    /// This token with a directory account's SIDs: the user's domain SID (also
    /// the owner), and its domain groups in place of the `S-1-22-2` SIDs of
    /// their gids; a domain group without a gid is a SID only. Another gid that
    /// winbind maps (a BUILTIN alias) gets that SID; local groups keep their
    /// `S-1-22-2` SIDs. The kernel's groups do not change.
    fn with_directory(mut self, account: &crate::directory::DomainAccount) -> Result<Token> {
        let domain_gids: Vec<u32> = account.groups.iter().filter_map(|g| g.gid).collect();
        let d = self.data_mut();
        let unix_sid_of_domain_group = |sid: &Sid| matches!(sid.unix_id(), Some(crate::sid::UnixId::Group(gid)) if domain_gids.contains(&gid));
        d.groups.retain(|g| !unix_sid_of_domain_group(&g.sid));
        for g in &mut d.groups {
            if let Some(crate::sid::UnixId::Group(gid)) = g.sid.unix_id()
                && let Some(sid) = crate::directory::group_sid(gid)?
            {
                g.sid = sid;
            }
        }
        // A domain group whose gid the identity does not hold (a peer process
        // that dropped it) is for deny only: a deny ACE naming it still
        // matches, an allow grants nothing the kernel would not.
        let unix_gid = d.unix.gid;
        let held = |gid: u32| gid == unix_gid || d.unix.groups.binary_search(&gid).is_ok();
        let attributes: Vec<GroupAttributes> = account
            .groups
            .iter()
            .map(|g| match g.gid {
                Some(gid) if !held(gid) => GroupAttributes::USE_FOR_DENY_ONLY,
                _ => GroupAttributes::DEFAULT,
            })
            .collect();
        d.groups.extend(
            account
                .groups
                .iter()
                .zip(attributes)
                .map(|(g, attributes)| Group {
                    sid: g.sid,
                    attributes,
                }),
        );
        d.primary_group = account
            .groups
            .iter()
            .find(|g| g.gid == Some(d.unix.gid))
            .map_or(d.primary_group, |g| g.sid);
        if d.owner == d.user {
            d.owner = account.sid;
        }
        d.user = account.sid;
        Ok(self.indexed())
    }

    /// A primary token for raw Unix ids, as the kernel reports them for an IPC peer
    /// (`SO_PEERCRED`, `SO_PEERGROUPS`). No account lookup is made and no privilege
    /// is required; impersonating it still needs SeImpersonatePrivilege, or the
    /// thread gets it at Identification level.
    ///
    /// The token holds SeChangeNotifyPrivilege only, whatever the uid: ids say
    /// nothing of the capabilities a process holds, and uid 0 without capabilities
    /// is no Local System. [`Token::from_ids_with_capabilities`] gives a token the
    /// privileges of known capabilities.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a uid, gid or group of `u32::MAX`, or
    /// more than 65536 groups.
    pub fn from_ids(uid: impl Into<Uid>, gid: impl Into<Gid>, groups: &[u32]) -> Result<Token> {
        let unix = UnixIdentity::new(uid, gid, groups.iter().copied())?;
        Ok(Token::for_identity(unix, None, Origin::Peer, "guise"))
    }

    /// As [`Token::from_ids`], with the privileges that a process holding these
    /// capabilities has: a privilege is held when all its capabilities are in
    /// `permitted` and enabled when they are also in `effective` (the rule of
    /// [`Token::open_process`]). Used for IPC peers whose capabilities the kernel
    /// reported.
    ///
    /// # Errors
    /// As [`Token::from_ids`].
    pub fn from_ids_with_capabilities(
        uid: impl Into<Uid>,
        gid: impl Into<Gid>,
        groups: &[u32],
        permitted: crate::privilege::Capabilities,
        effective: crate::privilege::Capabilities,
    ) -> Result<Token> {
        let (permitted, effective) = (permitted.to_set(), effective.to_set());
        let mut token = Token::from_ids(uid, gid, groups)?;
        token.data_mut().privileges =
            privileges_from_capabilities(permitted, effective & permitted, false);
        Ok(token)
    }

    /// The anonymous logon token (the one [`ImpersonateAnonymousToken`] uses): user
    /// `S-1-5-7` and no group (as on Windows by default, where
    /// `EveryoneIncludesAnonymous` is 0, Anonymous is not a member of Everyone), no
    /// privileges but SeChangeNotifyPrivilege; an
    /// impersonation token at Impersonation level. The kernel sees the unprivileged
    /// sentinel identity (uid and gid 4294967294, no groups).
    ///
    /// [`ImpersonateAnonymousToken`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-impersonateanonymoustoken
    #[doc(alias = "ImpersonateAnonymousToken")]
    pub fn anonymous() -> Token {
        let unix = UnixIdentity {
            uid: SENTINEL_UID,
            gid: SENTINEL_GID,
            groups: Arc::from([]),
        };
        let token_id = Luid::allocate();
        Token::from_data(TokenData {
            user: Sid::ANONYMOUS,
            groups: Vec::new(),
            privileges: identity_privileges(SENTINEL_UID),
            owner: Sid::ANONYMOUS,
            primary_group: Sid::ANONYMOUS,
            token_type: TokenType::Impersonation,
            level: ImpersonationLevel::Impersonation,
            statistics: TokenStatistics {
                token_id,
                authentication_id: Luid::ANONYMOUS,
                modified_id: token_id,
            },
            source: "guise",
            unix,
            origin: Origin::Anonymous,
            network_credentials: false,
            credential_cache: None,
            session: None,
            index: SidIndex::default(),
            restrictions: None,
        })
        .indexed()
    }

    /// A token made of SIDs and privileges alone, for access checks of a server's
    /// own objects (as [`AuthzInitializeContextFromSid`] makes a client context): an
    /// impersonation token at Identification level whose groups are `groups` (each
    /// with its attributes, so deny-only groups can be expressed) and whose
    /// privileges are `privileges`, enabled.
    ///
    /// It stands for no Unix identity: it can never be raised above Identification
    /// level, and a thread that impersonates it gets the unprivileged sentinel.
    ///
    /// [`AuthzInitializeContextFromSid`]: https://learn.microsoft.com/en-us/windows/win32/api/authz/nf-authz-authzinitializecontextfromsid
    #[doc(alias = "AuthzInitializeContextFromSid")]
    #[doc(alias = "NtCreateToken")]
    pub fn from_sids(
        user: Sid,
        groups: impl IntoIterator<Item = Group>,
        privileges: impl IntoIterator<Item = Privilege>,
    ) -> Token {
        let mut privileges: Vec<TokenPrivilege> = privileges
            .into_iter()
            .map(|p| TokenPrivilege {
                privilege: p,
                enabled: true,
                enabled_by_default: true,
            })
            .collect();
        privileges.sort_by_key(|p| p.privilege);
        privileges.dedup_by_key(|p| p.privilege);
        let token_id = Luid::allocate();
        Token::from_data(TokenData {
            user,
            groups: groups.into_iter().collect(),
            privileges,
            owner: user,
            primary_group: user,
            token_type: TokenType::Impersonation,
            level: ImpersonationLevel::Identification,
            statistics: TokenStatistics {
                token_id,
                authentication_id: Luid::allocate(),
                modified_id: token_id,
            },
            source: "guise",
            unix: UnixIdentity {
                uid: SENTINEL_UID,
                gid: SENTINEL_GID,
                groups: Arc::from([]),
            },
            origin: Origin::Synthetic,
            network_credentials: false,
            credential_cache: None,
            session: None,
            index: SidIndex::default(),
            restrictions: None,
        })
        .indexed()
    }

    /// The user SID (`TokenUser`).
    #[doc(alias = "GetTokenInformation")]
    pub fn user(&self) -> Sid {
        self.d.user
    }

    /// The groups with their attributes (`TokenGroups`).
    #[doc(alias = "GetTokenInformation")]
    pub fn groups(&self) -> &[Group] {
        &self.d.groups
    }

    /// The privileges with their state (`TokenPrivileges`).
    #[doc(alias = "GetTokenInformation")]
    pub fn privileges(&self) -> &[TokenPrivilege] {
        &self.d.privileges
    }

    /// The default owner of objects this token creates (`TokenOwner`).
    #[doc(alias = "GetTokenInformation")]
    pub fn owner(&self) -> Sid {
        self.d.owner
    }

    /// The primary group (`TokenPrimaryGroup`).
    #[doc(alias = "GetTokenInformation")]
    pub fn primary_group(&self) -> Sid {
        self.d.primary_group
    }

    /// Primary or impersonation (`TokenType`).
    #[doc(alias = "GetTokenInformation")]
    pub fn token_type(&self) -> TokenType {
        self.d.token_type
    }

    /// The impersonation level (`TokenImpersonationLevel`); `None` for a primary
    /// token, for which Windows reports `ERROR_INVALID_PARAMETER`.
    #[doc(alias = "GetTokenInformation")]
    pub fn impersonation_level(&self) -> Option<ImpersonationLevel> {
        match self.d.token_type {
            TokenType::Primary => None,
            TokenType::Impersonation => Some(self.d.level),
        }
    }

    /// The statistics (`TokenStatistics`).
    #[doc(alias = "GetTokenInformation")]
    pub fn statistics(&self) -> TokenStatistics {
        self.d.statistics
    }

    /// The name of the token's source (`TokenSource`).
    #[doc(alias = "GetTokenInformation")]
    pub fn source(&self) -> &'static str {
        self.d.source
    }

    /// The Unix identity the token stands for.
    pub fn unix(&self) -> &UnixIdentity {
        &self.d.unix
    }

    /// Whether the token carries credentials that reach other machines (SPEC §6). A
    /// token built from an IPC peer's ids never does; a process started from it may
    /// not have access to the network services that need them. A logon token has
    /// them when the PAM stack obtained a Kerberos ticket (`KRB5CCNAME` in its
    /// environment); a remote Kerberos client's token, at Delegation level, when
    /// the client forwarded its ticket or the service got constrained-delegation
    /// credentials for it ([`Token::credential_cache`]); the process token, when
    /// the process has a Kerberos cache of its uid (the one `KRB5CCNAME` names,
    /// else `/tmp/krb5cc_<uid>`).
    pub fn has_network_credentials(&self) -> bool {
        self.d.network_credentials || self.d.credential_cache.is_some()
    }

    /// Whether the token is a network client's that carries no credentials of its
    /// own (it did not delegate, or the token is below Delegation level).
    pub(crate) fn is_network_client_without_credentials(&self) -> bool {
        self.d.origin == Origin::Peer
            && self.d.credential_cache.is_none()
            && self.d.groups.iter().any(|g| g.sid == Sid::NETWORK)
    }

    /// The token's own Kerberos credential cache: the one a logon's PAM stack
    /// made, or a client's delegated credentials (see [`CredentialCache`]).
    pub fn credential_cache(&self) -> Option<&CredentialCache> {
        self.d.credential_cache.as_ref()
    }

    /// The environment the logon's PAM modules set up (e.g. `KRB5CCNAME`), for a
    /// token from [`crate::logon::logon_user`]; empty otherwise.
    pub fn logon_environment(&self) -> &[(String, String)] {
        self.d.session.as_ref().map_or(&[], |s| s.environment())
    }

    /// The PAM session of the logon the token comes from.
    pub(crate) fn session(&self) -> Option<&SessionRef> {
        self.d.session.as_ref()
    }

    /// Whether the token holds `privilege`, enabled or not.
    pub fn has_privilege(&self, privilege: Privilege) -> bool {
        self.d.privileges.iter().any(|p| p.privilege == privilege)
    }

    /// Whether the token holds `privilege` and it is enabled, whatever its type and
    /// level (`GetTokenInformation(TokenPrivileges)`). To check a client's
    /// privilege the way Windows does, use [`Token::privilege_check`].
    pub fn is_privilege_enabled(&self, privilege: Privilege) -> bool {
        self.d
            .privileges
            .iter()
            .any(|p| p.privilege == privilege && p.enabled)
    }

    /// The Linux capabilities a thread impersonating this token acts with: those
    /// of its enabled privileges whose capabilities act on every access. SeBackup
    /// and SeRestore act only for backup-intent opens
    /// ([`crate::fs::open_for_backup`]), so theirs are not here.
    pub fn enabled_capabilities(&self) -> crate::privilege::Capabilities {
        crate::privilege::Capabilities::from_set(self.enabled_capability_set())
    }

    /// [`Self::enabled_capabilities`], as the kernel's set.
    pub(crate) fn enabled_capability_set(&self) -> CapabilitySet {
        crate::privilege::capabilities_of(
            self.d
                .privileges
                .iter()
                .filter(|p| p.enabled)
                .map(|p| p.privilege),
        )
    }

    /// A new token from this one ([`DuplicateTokenEx`]), of `token_type`, at `level`
    /// (ignored for a primary target). The duplicate has a new token id; the
    /// privileges' state is copied.
    ///
    /// # Errors
    /// [`ErrorKind::BadImpersonationLevel`] when this is an impersonation token and
    /// `level` is above its level, or when this is an impersonation token below
    /// Impersonation level and `token_type` is primary.
    ///
    /// [`DuplicateTokenEx`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-duplicatetokenex
    #[doc(alias = "DuplicateTokenEx")]
    #[doc(alias = "DuplicateToken")]
    pub fn duplicate(&self, level: ImpersonationLevel, token_type: TokenType) -> Result<Token> {
        if self.d.token_type == TokenType::Impersonation {
            match token_type {
                TokenType::Primary if self.d.level < ImpersonationLevel::Impersonation => {
                    return Err(Error::new(
                        ErrorKind::BadImpersonationLevel,
                        format!(
                            "an impersonation token at {} level cannot become a primary token",
                            self.d.level
                        ),
                    ));
                }
                TokenType::Impersonation if level > self.d.level => {
                    return Err(Error::new(
                        ErrorKind::BadImpersonationLevel,
                        format!(
                            "cannot raise an impersonation token from {} to {} level",
                            self.d.level, level
                        ),
                    ));
                }
                _ => {}
            }
        }
        let mut dup = self.clone();
        dup.data_mut().token_type = token_type;
        dup.data_mut().level = match token_type {
            TokenType::Primary => ImpersonationLevel::Impersonation,
            TokenType::Impersonation => level,
        };
        dup.data_mut().statistics.token_id = Luid::allocate();
        // A network client's credentials were delegated: an impersonation token
        // below Delegation level no longer carries them (a primary token made of
        // a Delegation-level one does: its processes act as the client).
        if self.d.origin == Origin::Peer
            && token_type == TokenType::Impersonation
            && level < ImpersonationLevel::Delegation
        {
            dup.data_mut().credential_cache = None;
        }
        Ok(dup)
    }

    /// The token with only its enabled parts (the `EffectiveOnly` of a client's
    /// quality of service, `NtDuplicateToken` with `EffectiveOnly`): disabled
    /// privileges are removed, so they can no longer be enabled, and so are disabled
    /// groups. Deny-only groups stay: removing them would grant more. A new token id.
    #[doc(alias = "NtDuplicateToken")]
    #[doc(alias = "EffectiveOnly")]
    pub fn effective_only(&self) -> Token {
        let mut t = self.clone();
        t.data_mut().privileges.retain(|p| p.enabled);
        t.data_mut().groups.retain(|g| {
            g.attributes.contains(GroupAttributes::ENABLED)
                || g.attributes.contains(GroupAttributes::USE_FOR_DENY_ONLY)
        });
        t.data_mut().statistics.token_id = Luid::allocate();
        t.indexed()
    }

    /// Whether the client this token stands for holds `privileges`, enabled
    /// ([`PrivilegeCheck`]): all of them with `require_all`, else any one.
    ///
    /// # Errors
    /// As on Windows, the token must be a client's impersonation token:
    /// - [`ErrorKind::NoImpersonationToken`] for a primary token;
    /// - [`ErrorKind::BadImpersonationLevel`] below Identification level.
    ///
    /// [`PrivilegeCheck`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-privilegecheck
    #[doc(alias = "PrivilegeCheck")]
    pub fn privilege_check(&self, privileges: &[Privilege], require_all: bool) -> Result<bool> {
        self.require_identification("PrivilegeCheck")?;
        let enabled = |p: &Privilege| self.is_privilege_enabled(*p);
        Ok(if require_all {
            privileges.iter().all(enabled)
        } else {
            privileges.iter().any(enabled)
        })
    }

    /// Fails unless this is an impersonation token at Identification level or above.
    fn require_identification(&self, what: &str) -> Result<()> {
        if self.d.token_type == TokenType::Primary {
            return Err(Error::new(
                ErrorKind::NoImpersonationToken,
                format!("{what} needs an impersonation token"),
            ));
        }
        if self.d.level < ImpersonationLevel::Identification {
            return Err(Error::new(
                ErrorKind::BadImpersonationLevel,
                format!("{what} needs Identification level or above"),
            ));
        }
        Ok(())
    }

    /// The same token at a lower level, keeping its statistics: what a thread gets
    /// when it may not impersonate at the token's own level.
    pub(crate) fn with_level(&self, level: ImpersonationLevel) -> Token {
        if self.d.level == level {
            return self.clone();
        }
        Token::from_data(TokenData {
            level,
            ..(*self.d).clone()
        })
    }

    /// The token with its [`SidIndex`] made from its user and groups.
    fn indexed(mut self) -> Token {
        let user_deny_only = self
            .d
            .restrictions
            .as_ref()
            .is_some_and(|r| r.user_deny_only);
        let index = SidIndex::of(&self.d.user, user_deny_only, &self.d.groups);
        self.data_mut().index = index;
        self
    }

    /// Whether an ACE for `sid` applies to this token: `sid` is its user or an
    /// enabled group, or, for a deny ACE (`for_deny`), also a deny-only group. What
    /// AccessCheck asks of every ACE; no allocation, no work per token.
    #[inline]
    pub(crate) fn holds(&self, sid: &Sid, for_deny: bool) -> bool {
        self.d.index.holds(sid, for_deny)
    }

    /// Whether this is the process token itself ([`Token::open_process`]), not
    /// a duplicate of it (which has a token id of its own).
    pub(crate) fn is_process_token(&self) -> bool {
        self.d.origin == Origin::Process && self.d.statistics.token_id == process_luids().0
    }

    pub(crate) fn origin(&self) -> Origin {
        self.d.origin
    }

    /// The value part of [`Token::adjust_privileges`]: the token's privileges
    /// and their previous state, nothing in the kernel.
    ///
    /// # Errors
    /// [`ErrorKind::NotAllAssigned`] when asked to enable a privilege the token does
    /// not hold.
    pub(crate) fn adjust_privilege_values(
        &mut self,
        changes: &[(Privilege, PrivilegeChange)],
    ) -> Result<Vec<(Privilege, Option<bool>)>> {
        let missing: Vec<&str> = changes
            .iter()
            .filter(|(p, c)| *c == PrivilegeChange::Enable && !self.has_privilege(*p))
            .map(|(p, _)| p.name())
            .collect();
        if !missing.is_empty() {
            return Err(Error::new(
                ErrorKind::NotAllAssigned,
                format!("the token does not hold {}", missing.join(", ")),
            ));
        }
        let mut previous = Vec::with_capacity(changes.len());
        for &(privilege, change) in changes {
            let slot = self
                .d
                .privileges
                .iter()
                .position(|p| p.privilege == privilege);
            previous.push((privilege, slot.map(|i| self.d.privileges[i].enabled)));
            match (slot, change) {
                (Some(i), PrivilegeChange::Enable) => self.data_mut().privileges[i].enabled = true,
                (Some(i), PrivilegeChange::Disable) => {
                    self.data_mut().privileges[i].enabled = false
                }
                (Some(i), PrivilegeChange::Remove) => {
                    self.data_mut().privileges.remove(i);
                }
                (None, _) => {}
            }
        }
        self.data_mut().statistics.modified_id = Luid::allocate();
        Ok(previous)
    }

    /// Disables every privilege of this value (see
    /// [`Token::disable_all_privileges`]).
    pub(crate) fn disable_all_privilege_values(&mut self) {
        for p in &mut self.data_mut().privileges {
            p.enabled = false;
        }
        self.data_mut().statistics.modified_id = Luid::allocate();
    }

    /// Whether `sid` is the token's user or one of its enabled groups
    /// ([`CheckTokenMembership`]). Deny-only groups do not count.
    ///
    /// # Errors
    /// - [`ErrorKind::NoImpersonationToken`] for a primary token (duplicate it to an
    ///   impersonation token first, as on Windows).
    /// - [`ErrorKind::BadImpersonationLevel`] for a token below Identification level.
    ///
    /// [`CheckTokenMembership`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-checktokenmembership
    #[doc(alias = "CheckTokenMembership")]
    pub fn check_membership(&self, sid: &Sid) -> Result<bool> {
        self.require_identification("a membership check")?;
        Ok(self.holds(sid, false))
    }

    /// The integrity level (`TokenIntegrityLevel`), a mandatory label SID
    /// (`S-1-16-*`): Untrusted for the anonymous token, System for root (Local
    /// System), High for a token with the Administrators group enabled, Medium
    /// for everyone else; or the lower level [`Token::set_integrity_level`] set.
    /// AccessCheck compares it with an object's mandatory label.
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenIntegrityLevel")]
    pub fn integrity_level(&self) -> Sid {
        self.d
            .restrictions
            .as_ref()
            .and_then(|r| r.integrity)
            .unwrap_or_else(|| self.own_integrity_level())
    }

    /// The level a token has from its user and groups.
    fn own_integrity_level(&self) -> Sid {
        if self.d.user == Sid::ANONYMOUS {
            Sid::UNTRUSTED_INTEGRITY
        } else if self.d.user == Sid::LOCAL_SYSTEM {
            Sid::SYSTEM_INTEGRITY
        } else if self.holds(&Sid::ADMINISTRATORS, false) {
            Sid::HIGH_INTEGRITY
        } else {
            Sid::MEDIUM_INTEGRITY
        }
    }

    /// Lowers the token's integrity level (`SetTokenInformation` with
    /// `TokenIntegrityLevel`). As on Windows without SeTcbPrivilege, a level can
    /// only be lowered (or kept): a token never rises.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a SID that is no integrity level
    /// (`S-1-16-rid`); [`ErrorKind::PrivilegeNotHeld`] for a level above the
    /// token's current one.
    #[doc(alias = "SetTokenInformation")]
    #[doc(alias = "TokenIntegrityLevel")]
    pub fn set_integrity_level(&mut self, level: Sid) -> Result<()> {
        let rank = integrity_rank(&level).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!("{level} is no integrity level (S-1-16-rid)"),
            )
        })?;
        let current = self.integrity_level();
        if Some(rank) > integrity_rank(&current) {
            return Err(Error::new(
                ErrorKind::PrivilegeNotHeld,
                format!("an integrity level cannot rise (from {current} to {level})"),
            ));
        }
        self.restrictions_mut().integrity = Some(level);
        self.data_mut().statistics.modified_id = Luid::allocate();
        Ok(())
    }

    /// Whether the token is elevated (`TokenElevation`): its user is Local
    /// System (root) or it has the Administrators group enabled. guise makes no
    /// split (filtered) tokens, so an administrator's token is always elevated.
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenElevation")]
    pub fn is_elevated(&self) -> bool {
        self.d.user == Sid::LOCAL_SYSTEM || self.holds(&Sid::ADMINISTRATORS, false)
    }

    /// The elevation type (`TokenElevationType`): always
    /// [`ElevationType::Default`], as on Windows without UAC's linked tokens:
    /// Linux has no filtered administrator token.
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenElevationType")]
    pub fn elevation_type(&self) -> ElevationType {
        ElevationType::Default
    }

    /// The logon SID (`TokenLogonSid`, `S-1-5-5-x-y`), for a token of a logon;
    /// `None` for others (a peer's, the process's).
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenLogonSid")]
    pub fn logon_sid(&self) -> Option<Sid> {
        self.d
            .groups
            .iter()
            .find(|g| g.attributes.contains(GroupAttributes::LOGON_ID))
            .map(|g| g.sid)
    }

    /// The session the token's processes belong to (`TokenSessionId`): for the
    /// process token, the kernel's audit session of the process
    /// (`/proc/self/sessionid`, the number logind names a login session by);
    /// `None` outside a session and for other tokens.
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenSessionId")]
    pub fn session_id(&self) -> Option<u32> {
        if self.d.origin != Origin::Process {
            return None;
        }
        std::fs::read_to_string("/proc/self/sessionid")
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|&id| id != u32::MAX)
    }

    /// Sets the default owner of objects the token creates (`SetTokenInformation`
    /// with `TokenOwner`): the token's user or a group it holds with
    /// `SE_GROUP_OWNER` (as on Windows).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] (`ERROR_INVALID_OWNER`) for another SID.
    #[doc(alias = "SetTokenInformation")]
    #[doc(alias = "TokenOwner")]
    pub fn set_owner(&mut self, owner: Sid) -> Result<()> {
        let may = owner == self.d.user && !self.is_user_deny_only()
            || self.d.groups.iter().any(|g| {
                g.sid == owner
                    && g.attributes.contains(GroupAttributes::OWNER)
                    && !g.attributes.contains(GroupAttributes::USE_FOR_DENY_ONLY)
            });
        if !may {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("{owner} may not own this token's objects (ERROR_INVALID_OWNER)"),
            ));
        }
        self.data_mut().owner = owner;
        self.data_mut().statistics.modified_id = Luid::allocate();
        Ok(())
    }

    /// Sets the primary group (`SetTokenInformation` with `TokenPrimaryGroup`):
    /// one of the token's groups. The kernel's primary gid does not change.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] (`ERROR_INVALID_PRIMARY_GROUP`) for a SID
    /// that is not one of the token's groups.
    #[doc(alias = "SetTokenInformation")]
    #[doc(alias = "TokenPrimaryGroup")]
    pub fn set_primary_group(&mut self, group: Sid) -> Result<()> {
        if !self.d.groups.iter().any(|g| g.sid == group) {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("{group} is not a group of the token (ERROR_INVALID_PRIMARY_GROUP)"),
            ));
        }
        self.data_mut().primary_group = group;
        self.data_mut().statistics.modified_id = Luid::allocate();
        Ok(())
    }

    /// The default DACL set on the token, as SDDL (`security` reads it).
    pub(crate) fn default_dacl_text(&self) -> Option<&str> {
        self.d
            .restrictions
            .as_ref()
            .and_then(|r| r.default_dacl.as_deref())
    }

    /// Sets the default DACL, as SDDL (`security` writes it).
    pub(crate) fn set_default_dacl_text(&mut self, sddl: String) {
        self.restrictions_mut().default_dacl = Some(sddl);
        self.data_mut().statistics.modified_id = Luid::allocate();
    }

    /// The logon session that made the token (`TokenOrigin`): for a logon's
    /// token, the logon session of the process that logged on; for others,
    /// the token's own logon session.
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenOrigin")]
    pub fn origin_logon_id(&self) -> Luid {
        match self.d.origin {
            Origin::Logon { .. } => {
                if cred::ThreadCredentials::current().is_ok_and(|c| c.uid.effective == 0) {
                    Luid::SYSTEM
                } else {
                    process_luids().1
                }
            }
            _ => self.d.statistics.authentication_id,
        }
    }

    /// Enables or disables groups (`AdjustTokenGroups`); returns their previous
    /// state. As on Windows, a mandatory group cannot be disabled and a deny-only
    /// group cannot be enabled; all or nothing. Every group guise puts in a
    /// token from an identity is mandatory, so this concerns the groups of
    /// [`Token::from_sids`] tokens made without `SE_GROUP_MANDATORY`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a SID that is not a group of the
    /// token, a mandatory group to disable (`ERROR_CANT_DISABLE_MANDATORY`) or a
    /// deny-only group to enable.
    #[doc(alias = "AdjustTokenGroups")]
    pub fn adjust_groups(&mut self, changes: &[(Sid, bool)]) -> Result<Vec<(Sid, bool)>> {
        let mut previous = Vec::with_capacity(changes.len());
        for &(sid, enable) in changes {
            let g = self.d.groups.iter().find(|g| g.sid == sid).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidParameter,
                    format!("{sid} is not a group of the token"),
                )
            })?;
            if !enable && g.attributes.contains(GroupAttributes::MANDATORY) {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("{sid} is mandatory (ERROR_CANT_DISABLE_MANDATORY)"),
                ));
            }
            if enable && g.attributes.contains(GroupAttributes::USE_FOR_DENY_ONLY) {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("{sid} is for deny only and cannot be enabled"),
                ));
            }
            previous.push((sid, g.attributes.contains(GroupAttributes::ENABLED)));
        }
        let d = self.data_mut();
        for &(sid, enable) in changes {
            for g in d.groups.iter_mut().filter(|g| g.sid == sid) {
                g.attributes.set(GroupAttributes::ENABLED, enable);
            }
        }
        d.statistics.modified_id = Luid::allocate();
        *self = self.clone().indexed();
        Ok(previous)
    }

    /// The user and groups, restricting SIDs and privileges at once
    /// (`TokenGroupsAndPrivileges`). The user comes first among `sids`, with
    /// `SE_GROUP_USE_FOR_DENY_ONLY` when it is for deny only.
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenGroupsAndPrivileges")]
    pub fn groups_and_privileges(&self) -> TokenGroupsAndPrivileges {
        let user = Group {
            sid: self.d.user,
            attributes: if self.is_user_deny_only() {
                GroupAttributes::USE_FOR_DENY_ONLY
            } else {
                GroupAttributes::empty()
            },
        };
        TokenGroupsAndPrivileges {
            sids: std::iter::once(user)
                .chain(self.d.groups.iter().copied())
                .collect(),
            restricted_sids: self.restricting_sids().unwrap_or_default().to_vec(),
            privileges: self.d.privileges.clone(),
            authentication_id: self.d.statistics.authentication_id,
        }
    }

    /// Whether the token has restricting SIDs ([`IsTokenRestricted`],
    /// `TokenIsRestricted`).
    ///
    /// [`IsTokenRestricted`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-istokenrestricted
    #[doc(alias = "IsTokenRestricted")]
    #[doc(alias = "TokenIsRestricted")]
    pub fn is_restricted(&self) -> bool {
        self.restricting_sids().is_some()
    }

    /// The restricting SIDs (`TokenRestrictedSids`), if the token is restricted.
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenRestrictedSids")]
    pub fn restricting_sids(&self) -> Option<&[Group]> {
        self.d
            .restrictions
            .as_ref()
            .and_then(|r| r.restricting.as_deref())
    }

    /// Whether the user SID is for deny only (`SE_GROUP_USE_FOR_DENY_ONLY` on
    /// `TokenUser`), after [`Token::create_restricted`] disabled it.
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenUser")]
    pub fn is_user_deny_only(&self) -> bool {
        self.d
            .restrictions
            .as_ref()
            .is_some_and(|r| r.user_deny_only)
    }

    /// Whether only write access is checked against the restricting SIDs
    /// (`WRITE_RESTRICTED`).
    pub fn is_write_restricted(&self) -> bool {
        self.d
            .restrictions
            .as_ref()
            .is_some_and(|r| r.write_restricted && r.restricting.is_some())
    }

    /// The second pass of AccessCheck: whether an ACE for `sid` applies to the
    /// restricting SIDs (`None` for a token without them).
    #[inline]
    pub(crate) fn holds_restricting(&self, sid: &Sid, for_deny: bool) -> Option<bool> {
        let r = self.d.restrictions.as_ref()?;
        r.restricting.as_ref()?;
        Some(r.restricting_index.holds(sid, for_deny))
    }

    fn restrictions_mut(&mut self) -> &mut Restrictions {
        self.data_mut()
            .restrictions
            .get_or_insert_with(Default::default)
    }

    /// A restricted token made from this one ([`CreateRestrictedToken`]):
    /// - `sids_to_disable` become deny-only (the user SID too): they match deny
    ///   ACEs and no allow ACE. For the kernel, a disabled group's gid leaves the
    ///   supplementary groups of threads and processes acting as the token. This
    ///   is the one place Linux cannot follow exactly: a Linux group can also
    ///   take rights away (a group class with fewer bits than "other"), and
    ///   without the gid the kernel gives "other". Linux has no id that counts
    ///   for denials only, so a token whose user or primary group is disabled
    ///   stays at Identification level;
    /// - `privileges_to_delete` are removed (all but SeChangeNotifyPrivilege with
    ///   `disable_max_privilege`); their capabilities go with them;
    /// - `restricting_sids` make a restricted token: AccessCheck grants only what
    ///   both the token's SIDs and the restricting SIDs are granted (for write
    ///   access only, with `write_restricted`). Restricting an already restricted
    ///   token keeps the SIDs both lists have. **The kernel has no such second
    ///   pass**, so a restricted token stays at Identification level: AccessCheck
    ///   and membership checks work with it, and no thread or process acts as it.
    ///
    /// The new token has a new token id; the source is unchanged.
    ///
    /// # Errors
    /// A lookup that fails of the gids a disabled directory SID stands for
    /// (winbind's or SSSD's): no token that keeps them.
    ///
    /// [`CreateRestrictedToken`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-createrestrictedtoken
    #[doc(alias = "CreateRestrictedToken")]
    pub fn create_restricted(&self, options: &RestrictedTokenOptions) -> Result<Token> {
        let mut t = self.clone();
        // The gids the kernel must no longer honour: a Unix group SID's gid,
        // and every gid of the token's identity that a disabled directory SID
        // names (winbind's or SSSD's, as file descriptors name them).
        let mut drop_gids = Vec::new();
        let unix = &self.d.unix;
        let gids = std::iter::once(unix.gid).chain(unix.groups.iter().copied());
        let directory_sids = options
            .sids_to_disable
            .iter()
            .any(|s| s.unix_id().is_none() && self.d.groups.iter().any(|g| g.sid == *s));
        for gid in gids {
            let named = options.sids_to_disable.contains(&Sid::unix_group(gid))
                || (directory_sids
                    && crate::directory::installed()
                    && crate::directory::sids_of_gid(gid)?
                        .iter()
                        .any(|s| options.sids_to_disable.contains(s)));
            if named {
                drop_gids.push(gid);
            }
        }
        let d = t.data_mut();
        let mut user_disabled = false;
        for sid in &options.sids_to_disable {
            if *sid == d.user {
                user_disabled = true;
            }
            for g in d.groups.iter_mut().filter(|g| g.sid == *sid) {
                g.attributes =
                    (g.attributes - GroupAttributes::ENABLED - GroupAttributes::ENABLED_BY_DEFAULT)
                        | GroupAttributes::USE_FOR_DENY_ONLY;
            }
        }
        d.privileges.retain(|p| {
            !options.privileges_to_delete.contains(&p.privilege)
                && (!options.disable_max_privilege || p.privilege == Privilege::ChangeNotify)
        });
        // Linux has no id that counts for denials only: a disabled user or
        // primary group leaves a token nothing can act as.
        let no_kernel_identity = user_disabled || drop_gids.contains(&d.unix.gid);
        if !drop_gids.is_empty() {
            let unix = &d.unix;
            let groups: Vec<u32> = unix
                .groups
                .iter()
                .copied()
                .filter(|g| !drop_gids.contains(g))
                .collect();
            d.unix = UnixIdentity {
                uid: unix.uid,
                gid: unix.gid,
                groups: groups.into(),
            };
        }
        d.statistics.token_id = Luid::allocate();
        d.statistics.modified_id = d.statistics.token_id;
        let r = t.restrictions_mut();
        r.user_deny_only |= user_disabled;
        if !options.restricting_sids.is_empty() {
            let new: Vec<Group> = options
                .restricting_sids
                .iter()
                .filter(|s| {
                    r.restricting
                        .as_ref()
                        .is_none_or(|old| old.iter().any(|g| g.sid == **s))
                })
                .map(|&sid| Group {
                    sid,
                    attributes: GroupAttributes::DEFAULT,
                })
                .collect();
            // The second pass matches the restricting SIDs as enabled groups.
            r.restricting_index = SidIndex::of_groups(&new);
            // Restricting again never widens: a token restricted for all
            // access stays so.
            r.write_restricted = if r.restricting.is_some() {
                r.write_restricted && options.write_restricted
            } else {
                options.write_restricted
            };
            r.restricting = Some(new);
        }
        let restricted = r.restricting.is_some() || no_kernel_identity;
        let t = t.indexed();
        Ok(if restricted {
            t.identification_only()
        } else {
            t
        })
    }
}
