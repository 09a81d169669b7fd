//! Every impersonation rule of guise, written once.
//!
//! Each function here is a decision over plain facts (ids, levels, what a server
//! holds, what a client asked for): it reads nothing from the kernel and changes
//! nothing, so the whole matrix is tested without root (the tests below). The rest
//! of guise asks these functions and carries the answer out:
//! [`crate::client`] for what a client's token is, [`crate::thread`] for what a
//! thread gets when it impersonates a token (locally or by another thread's
//! SetThreadToken), [`crate::pool`] and [`crate::uring`] for the same answer
//! ahead of time.
//!
//! | rule | function |
//! |------|----------|
//! | SeImpersonate: a server without `CAP_SETUID`/`CAP_SETGID` effective gets Identification for any identity but its own | [`holds_se_impersonate`], [`permitted_level`] |
//! | Own identity: a thread may take its own ids without the privilege | [`is_own_identity`] |
//! | Tokens made of SIDs alone never rise above Identification | [`permitted_level`] |
//! | The sentinel (uid or gid 4294967294) stands for no one: never above Identification | [`stands_for_no_one`], [`thread_level`], [`client_plan`] |
//! | What the kernel sees at each level | [`kernel_view`] |
//! | Below Impersonation (or as the sentinel) a thread creates nothing usable (umask 0777) | [`creates_nothing_usable`] |
//! | Below Impersonation a thread reaches nothing by path (an empty root), which needs `CAP_SYS_CHROOT`; a server that could switch but not chroot is refused | [`confines`] |
//! | SetThreadToken takes only impersonation tokens with ids the kernel reads right | [`may_set_thread_token`] |
//! | OpenThreadToken: not at Anonymous; at Identification only as self | [`open_thread_token`] |
//! | No object opens below Impersonation | [`may_open_as_client`] |
//! | A thread's Kerberos calls use the token's cache at Impersonation and above, the process's for a copy of the process token, none otherwise | [`network_credentials`] |
//! | Never raise: the client's level, lowered to the server's maximum | [`served_level`] |
//! | Dynamic tracking follows each message's sender; root's messages are root's only while no thread of the client acts for another user | [`message_sender`] |
//! | Another identity than the connection proved: Identification, unless the connection is root's (then that identity, with its account's groups) | [`client_plan`] |
//! | Network clients: their account, no privileges, Delegation only with delegated credentials | [`client_plan`] |
//! | Anonymous reveals nothing; EffectiveOnly drops what is disabled | [`client_plan`] |

use crate::cred::{self, OsIdentity, SENTINEL_GID, SENTINEL_UID, ThreadCredentials};
use crate::error::{Error, ErrorKind, Result};
use crate::privilege::CapabilitySet;
use crate::token::{ImpersonationLevel, Origin, Token, TokenType};

use ImpersonationLevel::{Anonymous, Delegation, Identification, Impersonation};

// ---------------------------------------------------------------------------
// A thread and the token it impersonates
// ---------------------------------------------------------------------------

/// SeImpersonatePrivilege, enabled: `CAP_SETUID` and `CAP_SETGID` both in the
/// server's *effective* set. Held but not effective counts as absent, as a
/// disabled privilege does on Windows.
pub(crate) fn holds_se_impersonate(server: &ThreadCredentials) -> bool {
    server.can_change_identity()
}

/// Whether ids stand for no one: the sentinel's uid or gid (4294967294), which
/// no account has.
pub(crate) fn stands_for_no_one(uid: u32, gid: u32) -> bool {
    uid == SENTINEL_UID || gid == SENTINEL_GID
}

/// Whether `token` is the server's own identity, which a thread may take without
/// changing ids: the same uid and gid, no group the token lacks (the thread then
/// acts with the groups it has, as many as or fewer than the token's: setgroups
/// would need `CAP_SETGID`), and not the anonymous token.
pub(crate) fn is_own_identity(token: &Token, server: &ThreadCredentials) -> bool {
    let unix = token.unix();
    unix.uid().as_raw() == server.uid.effective
        && unix.gid().as_raw() == server.gid.effective
        && server
            .groups
            .iter()
            .all(|g| *g == unix.gid().as_raw() || unix.groups().binary_search(g).is_ok())
        && token.origin() != Origin::Anonymous
}

/// The level a server with credentials `server` may impersonate `token` at: the
/// token's own, but Identification for a token made of SIDs alone, and for any
/// identity but the server's own when the server does not hold SeImpersonate
/// (Windows' rule since Windows 2000 SP4, which also exempts the process's own
/// LogonUser tokens: on Linux another account's ids need the capabilities all
/// the same, and without them LogonUser only logs on the process's own account,
/// which [`is_own_identity`] covers).
pub(crate) fn permitted_level(token: &Token, server: &ThreadCredentials) -> ImpersonationLevel {
    let wanted = token.impersonation_level().unwrap_or(Impersonation);
    if token.origin() == Origin::Synthetic {
        return wanted.min(Identification);
    }
    if wanted < Impersonation || holds_se_impersonate(server) || is_own_identity(token, server) {
        wanted
    } else {
        Identification
    }
}

/// The level a thread with credentials `server` gets when it impersonates
/// `token`: [`permitted_level`], and never above Identification for the
/// sentinel (the anonymous token's ids), which stands for no one.
pub(crate) fn thread_level(token: &Token, server: &ThreadCredentials) -> ImpersonationLevel {
    let level = permitted_level(token, server);
    let unix = token.unix();
    if stands_for_no_one(unix.uid().as_raw(), unix.gid().as_raw()) {
        level.min(Identification)
    } else {
        level
    }
}

/// What the kernel sees while a thread with credentials `server` impersonates
/// `token` at `level`:
///
/// - at Impersonation and Delegation: the token's ids and groups (its own
///   identity's, with the groups the server has, when the server cannot switch),
///   with the capabilities of the token's enabled privileges that the server
///   holds in its permitted set;
/// - below: the sentinel with no groups and no capabilities, or, for a server
///   that cannot switch, its own ids with no capabilities.
pub(crate) fn kernel_view(
    token: &Token,
    level: ImpersonationLevel,
    server: &ThreadCredentials,
) -> OsIdentity {
    let switches = holds_se_impersonate(server);
    if level >= Impersonation {
        let capabilities = token.enabled_capability_set() & server.capabilities.permitted;
        if !switches {
            return OsIdentity {
                capabilities,
                ..server.os_identity()
            };
        }
        let unix = token.unix();
        return OsIdentity {
            uid: unix.uid().as_raw(),
            gid: unix.gid().as_raw(),
            groups: std::sync::Arc::clone(unix.shared_groups()),
            capabilities,
        };
    }
    if switches {
        OsIdentity {
            uid: SENTINEL_UID,
            gid: SENTINEL_GID,
            groups: std::sync::Arc::from([]),
            capabilities: CapabilitySet::empty(),
        }
    } else {
        OsIdentity {
            capabilities: CapabilitySet::empty(),
            ..server.os_identity()
        }
    }
}

/// Whether a thread impersonating at `level` and seen by the kernel as `applied`
/// must create nothing anyone could use (umask 0777, on an fs context of its
/// own): below Impersonation level, or as the sentinel whatever the level.
pub(crate) fn creates_nothing_usable(level: ImpersonationLevel, applied: &OsIdentity) -> bool {
    level < Impersonation || stands_for_no_one(applied.uid, applied.gid)
}

/// What a thread with credentials `server` puts on for a token: the rules above
/// applied together.
#[derive(Debug)]
pub(crate) struct ThreadTarget {
    /// The token at the level the thread gets (lowered where it was higher).
    pub token: Token,
    /// The level the thread gets (as the token says it).
    pub level: ImpersonationLevel,
    /// What the kernel sees.
    pub applied: OsIdentity,
    /// [`creates_nothing_usable`].
    pub below: bool,
}

/// [`permitted_level`], [`kernel_view`] and [`creates_nothing_usable`] for
/// `token` on a thread with credentials `server`. The token keeps the level it is
/// permitted (the anonymous token stays at its own); the sentinel's ids make the
/// thread act as no one all the same.
pub(crate) fn thread_target(token: &Token, server: &ThreadCredentials) -> ThreadTarget {
    let level = permitted_level(token, server);
    // Never above the token's own: `permitted_level` only lowers.
    let token = token.with_level(level);
    let applied = kernel_view(&token, level, server);
    let below = creates_nothing_usable(level, &applied);
    ThreadTarget {
        token,
        level,
        applied,
        below,
    }
}

/// Whether a thread whose own credentials are `server` and that goes below
/// Impersonation level (`below`) is put in an empty root directory (see
/// [`crate::thread`]):
/// whenever its server holds `CAP_SYS_CHROOT` in its effective set.
///
/// A server that holds SeImpersonate (`CAP_SETUID`/`CAP_SETGID`) but not
/// `CAP_SYS_CHROOT` could put the thread on the sentinel but not keep it from
/// opening by path what anyone may: it is refused (fail closed). A server that
/// holds neither keeps its own ids below Impersonation level, without
/// capabilities, as documented in [`crate::thread`].
///
/// # Errors
/// [`ErrorKind::CannotImpersonate`] for a server that could switch ids but not
/// chroot.
pub(crate) fn confines(server: &ThreadCredentials, below: bool) -> Result<bool> {
    let chroot = server
        .capabilities
        .effective
        .contains(CapabilitySet::SYS_CHROOT);
    match (below, chroot, holds_se_impersonate(server)) {
        (false, _, _) => Ok(false),
        (true, true, _) => Ok(true),
        (true, false, true) => Err(Error::new(
            ErrorKind::CannotImpersonate,
            "below Impersonation level a thread is kept from every file by an empty root \
             directory, which needs CAP_SYS_CHROOT in the server's effective set: \
             the server holds CAP_SETUID and CAP_SETGID but not CAP_SYS_CHROOT",
        )),
        (true, false, false) => Ok(false),
    }
}

/// SetThreadToken's preconditions, for the calling thread and for another: an
/// impersonation token whose ids the kernel would not misread.
///
/// # Errors
/// [`ErrorKind::BadTokenType`] for a primary token; [`ErrorKind::InvalidParameter`]
/// for ids the kernel would misread (see `crate::cred::validate_ids`).
pub(crate) fn may_set_thread_token(token: &Token) -> Result<()> {
    if token.token_type() != TokenType::Impersonation {
        return Err(Error::new(
            ErrorKind::BadTokenType,
            "a thread can only impersonate an impersonation token; duplicate a primary token first",
        ));
    }
    let unix = token.unix();
    cred::validate_ids(unix.uid().as_raw(), unix.gid().as_raw(), unix.groups())
}

/// OpenThreadToken's rule for a thread impersonating `token` (`None`: not
/// impersonating), opened with the thread's own context (`open_as_self` false)
/// or the process's: the token, or why it is not given. Another thread's token
/// is always opened as the process.
///
/// # Errors
/// - [`ErrorKind::NoToken`] if the thread does not impersonate.
/// - [`ErrorKind::CantOpenAnonymous`] at Anonymous level.
/// - [`ErrorKind::BadImpersonationLevel`] at Identification level with
///   `open_as_self` false.
pub(crate) fn open_thread_token(token: Option<Token>, open_as_self: bool) -> Result<Token> {
    let token =
        token.ok_or_else(|| Error::new(ErrorKind::NoToken, "the thread is not impersonating"))?;
    match token.impersonation_level().unwrap_or(Impersonation) {
        Anonymous => Err(Error::new(
            ErrorKind::CantOpenAnonymous,
            "the thread impersonates at Anonymous level",
        )),
        Identification if !open_as_self => Err(Error::new(
            ErrorKind::BadImpersonationLevel,
            "at Identification level the thread token can only be opened as self",
        )),
        _ => Ok(token),
    }
}

/// Whether a thread impersonating at `level` (`None`: not impersonating, so it
/// acts as itself) may open objects as its client: what Windows' object manager
/// checks before an open by an impersonating thread.
///
/// # Errors
/// [`ErrorKind::BadImpersonationLevel`] below Impersonation level.
pub(crate) fn may_open_as_client(level: Option<ImpersonationLevel>) -> Result<()> {
    match level {
        Some(level) if level < Impersonation => Err(Error::new(
            ErrorKind::BadImpersonationLevel,
            format!(
                "the thread impersonates at {level} level: it may not open objects as the client"
            ),
        )),
        _ => Ok(()),
    }
}

/// Which Kerberos credentials a thread impersonating a token uses for its
/// outgoing calls.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
pub(crate) enum NetworkCredentials<'a> {
    /// The process's own (the token is a copy of the process token).
    Process,
    /// The token's own cache (its logon's, or what its client delegated).
    Token(&'a crate::token::CredentialCache),
    /// None at all: a Kerberos call fails rather than go out as the server.
    None,
}

/// The network credentials of a thread impersonating `token`: a copy of the
/// process token uses the process's; a token's own cache is used at
/// Impersonation level and above; anything else uses none (never the server's,
/// never a cache the client's uid happens to have on this machine).
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
pub(crate) fn network_credentials(token: &Token) -> NetworkCredentials<'_> {
    if token.origin() == Origin::Process {
        return NetworkCredentials::Process;
    }
    match token.credential_cache() {
        Some(cache) if token.impersonation_level().unwrap_or(Impersonation) >= Impersonation => {
            NetworkCredentials::Token(cache)
        }
        _ => NetworkCredentials::None,
    }
}

// ---------------------------------------------------------------------------
// A client and the token a server makes for it
// ---------------------------------------------------------------------------

/// Never raise: the level a client that asked for `asked` is served at by a
/// server whose maximum is `max`.
pub(crate) fn served_level(
    asked: ImpersonationLevel,
    max: ImpersonationLevel,
) -> ImpersonationLevel {
    asked.min(max)
}

/// What the kernel (or a bus, or Kerberos) said of a connection's client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Connection<'a> {
    /// Its uid and gid at `connect`.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// Its supplementary groups at `connect`.
    pub groups: &'a [u32],
    /// For a network client: whether it delegated credentials.
    pub network: Option<Delegated>,
}

/// Whether a network client delegated credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delegated {
    /// It did: a forwarded ticket-granting ticket or S4U2Proxy credentials.
    Yes,
    /// It did not.
    No,
}

/// The identity a message came from, and whether it says root on a root
/// connection while a thread of the client may act for another user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sender {
    /// The uid the message is taken to come from.
    pub uid: u32,
    /// The gid the message is taken to come from.
    pub gid: u32,
    /// It says root on a root connection, and no thread of the client process
    /// could be shown to act as root alone.
    pub unverified_root: bool,
}

/// Whom a message of a client on `connection` comes from. With static tracking
/// (`dynamic` false), or when the kernel attached no ids (`attached` `None`), the
/// connection's identity; with dynamic tracking, the ids the kernel attached
/// (`(pid, uid, gid)`). The kernel attaches a sender's *real* ids unless it sends
/// its own, so a message that says root on a root connection may come from a
/// thread that acts for another user: it is root's only if
/// `no_thread_acts_for_another(pid)` says so (asked only then).
pub(crate) fn message_sender(
    connection: &Connection<'_>,
    dynamic: bool,
    attached: Option<(Option<i32>, u32, u32)>,
    no_thread_acts_for_another: impl FnOnce(Option<i32>) -> bool,
) -> Sender {
    let (pid, uid, gid) = match attached {
        Some(s) if dynamic => s,
        _ => (None, connection.uid, connection.gid),
    };
    let unverified_root = dynamic
        && connection.uid == 0
        && uid == 0
        && connection.network.is_none()
        && !no_thread_acts_for_another(pid);
    Sender {
        uid,
        gid,
        unverified_root,
    }
}

/// What the client's token is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientBasis {
    /// The anonymous token: the client is not identified.
    Anonymous,
    /// A network client's account (NETWORK logon SID, no privileges), with its
    /// delegated credentials if `delegated`.
    Network {
        /// Whether the token carries the delegated credentials.
        delegated: bool,
    },
    /// A local identity; with the privileges of the capabilities the
    /// connection's process held if `privileges`.
    Local {
        /// Whether the token has the connection's privileges.
        privileges: bool,
    },
}

/// The client's token, decided: what it is made of, its ids and groups, the
/// level it is served at, and whether only its enabled parts count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientPlan {
    /// What the token is made of.
    pub basis: ClientBasis,
    /// Its uid (the sentinel's for the anonymous token).
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// Its supplementary groups.
    pub groups: Vec<u32>,
    /// The level it is served at.
    pub level: ImpersonationLevel,
    /// EffectiveOnly: the disabled privileges and groups are dropped.
    pub effective_only: bool,
}

/// The client's token for a message from `sender` on `connection`, served at
/// `level` ([`served_level`]) with EffectiveOnly `effective_only`;
/// `account_groups(uid, gid)` gives the groups of the account of another identity
/// a root connection acts for (`None`: no account, or the database cannot be
/// read).
///
/// - At Anonymous level: the anonymous token.
/// - A network client: its account's identity; Delegation only with delegated
///   credentials (which the token then carries), else Impersonation at most.
/// - The connection's own identity: with its privileges, unless it says root
///   while a thread of the client may act for another user (then none, and
///   Identification at most).
/// - Another identity on a root connection (neither uid nor gid 0): that
///   identity with its account's groups; without an account, Identification at
///   most.
/// - Any other identity: the connection's, at Identification at most (it could
///   be a raise).
/// - The sentinel: never above Identification.
pub(crate) fn client_plan(
    connection: &Connection<'_>,
    sender: Sender,
    level: ImpersonationLevel,
    effective_only: bool,
    account_groups: impl FnOnce(u32, u32) -> Option<Vec<u32>>,
) -> ClientPlan {
    if level == Anonymous {
        return ClientPlan {
            basis: ClientBasis::Anonymous,
            uid: SENTINEL_UID,
            gid: SENTINEL_GID,
            groups: Vec::new(),
            level,
            effective_only: false,
        };
    }
    let c = connection;
    let plan = |basis, uid, gid, groups: &[u32], level| ClientPlan {
        basis,
        uid,
        gid,
        groups: groups.to_vec(),
        level,
        effective_only,
    };
    let plan = if let Some(delegated) = c.network {
        let delegated = delegated == Delegated::Yes && level == Delegation;
        let level = if delegated {
            level
        } else {
            level.min(Impersonation)
        };
        plan(
            ClientBasis::Network { delegated },
            c.uid,
            c.gid,
            c.groups,
            level,
        )
    } else if (sender.uid, sender.gid) == (c.uid, c.gid) {
        let privileges = !sender.unverified_root;
        let level = if privileges {
            level
        } else {
            level.min(Identification)
        };
        plan(
            ClientBasis::Local { privileges },
            c.uid,
            c.gid,
            c.groups,
            level,
        )
    } else if c.uid == 0 && sender.uid != 0 && sender.gid != 0 {
        let local = ClientBasis::Local { privileges: false };
        match account_groups(sender.uid, sender.gid) {
            Some(groups) => plan(local, sender.uid, sender.gid, &groups, level),
            None => plan(
                local,
                sender.uid,
                sender.gid,
                &[sender.gid],
                level.min(Identification),
            ),
        }
    } else {
        plan(
            ClientBasis::Local { privileges: false },
            c.uid,
            c.gid,
            c.groups,
            level.min(Identification),
        )
    };
    if stands_for_no_one(plan.uid, plan.gid) {
        ClientPlan {
            level: plan.level.min(Identification),
            ..plan
        }
    } else {
        plan
    }
}

#[cfg(test)]
mod tests {
    //! The rules as tables, without root: every row is a case and its expected
    //! answer. `whole_matrix` runs every combination of what a client asks, what
    //! the server allows and can do, and who sent the message, from the client's
    //! message to what the kernel sees on the server's thread.
    #![allow(clippy::type_complexity)]

    use super::*;
    use crate::cred::ResIds;
    use crate::privilege::Capabilities;
    use rustix::thread::CapabilitySets;

    const ALICE: u32 = 1000;
    const BOB: u32 = 2000;
    const S: u32 = SENTINEL_UID;
    const LEVELS: [ImpersonationLevel; 4] = [Anonymous, Identification, Impersonation, Delegation];

    fn ids(id: u32) -> ResIds {
        ResIds {
            real: id,
            effective: id,
            saved: id,
        }
    }

    /// A server thread of `uid`/`gid` with `groups`; `switches`: SeImpersonate
    /// (CAP_SETUID and CAP_SETGID effective); it holds every capability in its
    /// permitted set either way.
    fn server_as(uid: u32, gid: u32, groups: &[u32], switches: bool) -> ThreadCredentials {
        let effective = if switches {
            CapabilitySet::SETUID | CapabilitySet::SETGID | CapabilitySet::SYS_PTRACE
        } else {
            CapabilitySet::SYS_PTRACE
        };
        ThreadCredentials {
            uid: ids(uid),
            gid: ids(gid),
            groups: groups.to_vec(),
            capabilities: CapabilitySets {
                effective,
                permitted: CapabilitySet::all(),
                inheritable: CapabilitySet::empty(),
            },
        }
    }

    fn root_server(switches: bool) -> ThreadCredentials {
        server_as(0, 0, &[], switches)
    }

    fn token_at(uid: u32, gid: u32, groups: &[u32], level: ImpersonationLevel) -> Token {
        Token::from_ids(uid, gid, groups)
            .unwrap()
            .duplicate(level, TokenType::Impersonation)
            .unwrap()
    }

    #[test]
    fn se_impersonate_is_both_setid_capabilities_effective() {
        for (effective, holds) in [
            (CapabilitySet::SETUID | CapabilitySet::SETGID, true),
            (CapabilitySet::all(), true),
            (CapabilitySet::SETUID, false),
            (CapabilitySet::SETGID, false),
            (CapabilitySet::empty(), false),
        ] {
            let mut s = root_server(false);
            s.capabilities.effective = effective;
            assert_eq!(holds_se_impersonate(&s), holds, "{effective:?}");
        }
        // Held but not effective counts as absent.
        let mut s = root_server(false);
        s.capabilities.permitted = CapabilitySet::all();
        assert!(!holds_se_impersonate(&s));
    }

    #[test]
    fn the_sentinel_is_its_uid_or_its_gid() {
        for (uid, gid, none) in [
            (S, S, true),
            (S, 5, true),
            (5, S, true),
            (5, 5, false),
            (S - 1, S - 1, false),
            (u32::MAX, u32::MAX, false),
            (0, 0, false),
        ] {
            assert_eq!(stands_for_no_one(uid, gid), none, "{uid} {gid}");
        }
    }

    #[test]
    fn own_identity_table() {
        // (server uid, gid, groups; token uid, gid, groups; own?)
        let rows: &[(u32, u32, &[u32], u32, u32, &[u32], bool)] = &[
            (ALICE, ALICE, &[], ALICE, ALICE, &[], true),
            (ALICE, ALICE, &[ALICE], ALICE, ALICE, &[], true),
            (ALICE, ALICE, &[10], ALICE, ALICE, &[10, 20], true),
            (ALICE, ALICE, &[10, 20], ALICE, ALICE, &[10], false),
            (ALICE, ALICE, &[], BOB, ALICE, &[], false),
            (ALICE, ALICE, &[], ALICE, BOB, &[], false),
            (ALICE, 10, &[], ALICE, ALICE, &[], false),
        ];
        for &(su, sg, sgroups, tu, tg, tgroups, own) in rows {
            let t = token_at(tu, tg, tgroups, Impersonation);
            assert_eq!(
                is_own_identity(&t, &server_as(su, sg, sgroups, false)),
                own,
                "server {su}/{sg}/{sgroups:?} token {tu}/{tg}/{tgroups:?}"
            );
        }
        // The anonymous token is never the server's own, even for a server that
        // runs as the sentinel.
        let anon = Token::anonymous();
        assert!(!is_own_identity(&anon, &server_as(S, S, &[], false)));
        assert!(is_own_identity(
            &token_at(S, S, &[], Impersonation),
            &server_as(S, S, &[], false)
        ));
    }

    #[test]
    fn permitted_level_table() {
        let own = server_as(ALICE, ALICE, &[], false);
        // (token level, server switches, token is the server's own, expected)
        for wanted in LEVELS {
            for switches in [false, true] {
                for own_identity in [false, true] {
                    let server = if own_identity {
                        server_as(ALICE, ALICE, &[], switches)
                    } else {
                        root_server(switches)
                    };
                    let t = token_at(ALICE, ALICE, &[], wanted);
                    let expected = if wanted < Impersonation || switches || own_identity {
                        wanted
                    } else {
                        Identification
                    };
                    assert_eq!(
                        permitted_level(&t, &server),
                        expected,
                        "{wanted} switches={switches} own={own_identity}"
                    );
                }
            }
        }
        // A token made of SIDs alone: Identification at most, whatever the server.
        let synthetic = Token::from_sids(crate::sid::Sid::ANONYMOUS, [], []);
        for server in [root_server(true), own.clone()] {
            assert_eq!(permitted_level(&synthetic, &server), Identification);
            let low = synthetic
                .duplicate(Anonymous, TokenType::Impersonation)
                .unwrap();
            assert_eq!(permitted_level(&low, &server), Anonymous);
        }
        // A primary token counts as Impersonation.
        let primary = Token::from_ids(ALICE, ALICE, &[]).unwrap();
        assert_eq!(primary.impersonation_level(), None);
        assert_eq!(permitted_level(&primary, &root_server(true)), Impersonation);
        assert_eq!(
            permitted_level(&primary, &root_server(false)),
            Identification
        );
        assert_eq!(permitted_level(&primary, &own), Impersonation);
    }

    #[test]
    fn the_sentinel_never_acts_above_identification_on_a_thread() {
        for switches in [false, true] {
            let server = root_server(switches);
            for level in LEVELS {
                let t = token_at(S, 5, &[], level);
                assert_eq!(thread_level(&t, &server), level.min(Identification));
                let t = token_at(5, S, &[], level);
                assert_eq!(thread_level(&t, &server), level.min(Identification));
                let t = token_at(5, 5, &[], level);
                assert_eq!(thread_level(&t, &server), permitted_level(&t, &server));
            }
            assert_eq!(
                thread_level(&Token::anonymous(), &server),
                Identification,
                "the anonymous token"
            );
        }
    }

    #[test]
    fn kernel_view_table() {
        let caps_token = Token::from_ids_with_capabilities(
            ALICE,
            ALICE,
            &[10],
            Capabilities::SYS_PTRACE | Capabilities::SYS_NICE,
            Capabilities::SYS_PTRACE,
        )
        .unwrap();
        let mut server = root_server(true);
        server.capabilities.permitted = CapabilitySet::SETUID
            | CapabilitySet::SETGID
            | CapabilitySet::SYS_PTRACE
            | CapabilitySet::SYS_NICE;
        for level in [Impersonation, Delegation] {
            let v = kernel_view(&caps_token, level, &server);
            assert_eq!((v.uid, v.gid, &*v.groups), (ALICE, ALICE, &[10][..]));
            // Enabled privileges only, and only what the server holds.
            assert_eq!(v.capabilities, CapabilitySet::SYS_PTRACE);
        }
        let mut poor = server.clone();
        poor.capabilities.permitted = CapabilitySet::SETUID | CapabilitySet::SETGID;
        assert!(
            kernel_view(&caps_token, Impersonation, &poor)
                .capabilities
                .is_empty()
        );
        for level in [Anonymous, Identification] {
            let v = kernel_view(&caps_token, level, &server);
            assert_eq!((v.uid, v.gid), (S, S));
            assert!(v.groups.is_empty() && v.capabilities.is_empty());
        }
        // A server that cannot switch keeps its own ids: with the token's
        // capabilities at Impersonation (its own identity), none below.
        let mut own = server_as(ALICE, ALICE, &[7], false);
        own.capabilities.effective = CapabilitySet::SYS_NICE | CapabilitySet::KILL;
        let v = kernel_view(&caps_token, Impersonation, &own);
        assert_eq!((v.uid, v.gid, &*v.groups), (ALICE, ALICE, &[7][..]));
        assert_eq!(v.capabilities, CapabilitySet::SYS_PTRACE);
        for level in [Anonymous, Identification] {
            let v = kernel_view(&caps_token, level, &own);
            assert_eq!((v.uid, v.gid, &*v.groups), (ALICE, ALICE, &[7][..]));
            assert!(v.capabilities.is_empty());
        }
    }

    #[test]
    fn creates_nothing_usable_below_impersonation_or_as_the_sentinel() {
        let view = |uid, gid| OsIdentity {
            uid,
            gid,
            groups: std::sync::Arc::from([]),
            capabilities: CapabilitySet::empty(),
        };
        for level in LEVELS {
            let below = level < Impersonation;
            assert_eq!(creates_nothing_usable(level, &view(5, 5)), below);
            assert!(creates_nothing_usable(level, &view(S, 5)));
            assert!(creates_nothing_usable(level, &view(5, S)));
        }
    }

    #[test]
    fn thread_target_lowers_the_token_and_keeps_it_otherwise() {
        let server = root_server(false);
        let t = token_at(ALICE, ALICE, &[], Delegation);
        let target = thread_target(&t, &server);
        assert_eq!(target.level, Identification);
        assert_eq!(target.token.impersonation_level(), Some(Identification));
        assert!(target.below);
        assert_eq!((target.applied.uid, target.applied.gid), (0, 0));
        let server = root_server(true);
        let target = thread_target(&t, &server);
        assert_eq!(target.level, Delegation);
        assert_eq!(target.token.impersonation_level(), Some(Delegation));
        assert!(!target.below);
        assert_eq!((target.applied.uid, target.applied.gid), (ALICE, ALICE));
        // The anonymous token keeps its own level on the thread; the kernel
        // sees the sentinel, and the thread creates nothing usable.
        let target = thread_target(&Token::anonymous(), &server);
        assert_eq!(target.level, Impersonation);
        assert_eq!((target.applied.uid, target.applied.gid), (S, S));
        assert!(target.below);
    }

    /// Below Impersonation level a thread is put in the empty root whenever its
    /// server holds CAP_SYS_CHROOT; a server that could put it on the sentinel
    /// (CAP_SETUID and CAP_SETGID) but not chroot it is refused; one that can do
    /// neither keeps its own ids (no root to take away beyond its own). At
    /// Impersonation level and above, never.
    #[test]
    fn the_empty_root_below_impersonation_table() {
        let setid = CapabilitySet::SETUID | CapabilitySet::SETGID;
        let chroot = CapabilitySet::SYS_CHROOT;
        for (effective, below, expected) in [
            (setid | chroot, true, Some(true)),
            (chroot, true, Some(true)),
            (setid, true, None),
            (CapabilitySet::SETUID, true, Some(false)),
            (CapabilitySet::empty(), true, Some(false)),
            (setid | chroot, false, Some(false)),
            (setid, false, Some(false)),
            (CapabilitySet::empty(), false, Some(false)),
        ] {
            let mut server = root_server(false);
            server.capabilities.effective = effective;
            let got = confines(&server, below);
            match expected {
                Some(want) => assert_eq!(got.unwrap(), want, "{effective:?} below={below}"),
                None => {
                    let e = got.unwrap_err();
                    assert_eq!(e.kind(), ErrorKind::CannotImpersonate);
                    assert!(e.to_string().contains("CAP_SYS_CHROOT"), "{e}");
                }
            }
        }
    }

    #[test]
    fn set_thread_token_takes_only_impersonation_tokens_with_readable_ids() {
        let primary = Token::from_ids(ALICE, ALICE, &[]).unwrap();
        assert_eq!(
            may_set_thread_token(&primary).unwrap_err().kind(),
            ErrorKind::BadTokenType
        );
        assert!(may_set_thread_token(&token_at(ALICE, ALICE, &[], Anonymous)).is_ok());
        assert!(may_set_thread_token(&Token::anonymous()).is_ok());
    }

    #[test]
    fn open_thread_token_table() {
        use ErrorKind::*;
        let rows: &[(Option<ImpersonationLevel>, bool, Option<ErrorKind>)] = &[
            (None, false, Some(NoToken)),
            (None, true, Some(NoToken)),
            (Some(Anonymous), false, Some(CantOpenAnonymous)),
            (Some(Anonymous), true, Some(CantOpenAnonymous)),
            (Some(Identification), false, Some(BadImpersonationLevel)),
            (Some(Identification), true, None),
            (Some(Impersonation), false, None),
            (Some(Impersonation), true, None),
            (Some(Delegation), false, None),
            (Some(Delegation), true, None),
        ];
        for &(level, as_self, expected) in rows {
            let token = level.map(|l| token_at(ALICE, ALICE, &[], l));
            let got = open_thread_token(token.clone(), as_self);
            assert_eq!(
                got.as_ref().err().map(|e| e.kind()),
                expected,
                "{level:?} as_self={as_self}"
            );
            if let Ok(t) = got {
                assert_eq!(Some(t), token, "the thread's own token");
            }
        }
    }

    #[test]
    fn open_as_client_table() {
        for (level, ok) in [
            (None, true),
            (Some(Anonymous), false),
            (Some(Identification), false),
            (Some(Impersonation), true),
            (Some(Delegation), true),
        ] {
            let r = may_open_as_client(level);
            assert_eq!(r.is_ok(), ok, "{level:?}");
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::BadImpersonationLevel);
            }
        }
    }

    #[test]
    fn network_credentials_table() {
        let cache = crate::token::CredentialCache::named("FILE:/tmp/krb5cc_rules_test").unwrap();
        // The same token at each level, its cache kept (as a thread gets it).
        let with_cache = |level| {
            Token::for_network_client(ALICE, ALICE, &[], Some(cache.clone()), None)
                .unwrap()
                .with_level(level)
        };
        for level in LEVELS {
            let t = with_cache(level);
            let want = if level >= Impersonation {
                NetworkCredentials::Token(&cache)
            } else {
                NetworkCredentials::None
            };
            assert_eq!(network_credentials(&t), want, "{level}");
            assert_eq!(
                network_credentials(&token_at(ALICE, ALICE, &[], level)),
                NetworkCredentials::None
            );
        }
        let process = Token::for_process(&root_server(true)).unwrap();
        assert_eq!(network_credentials(&process), NetworkCredentials::Process);
        let copy = process
            .duplicate(Identification, TokenType::Impersonation)
            .unwrap();
        assert_eq!(network_credentials(&copy), NetworkCredentials::Process);
    }

    #[test]
    fn served_level_never_raises() {
        for asked in LEVELS {
            for max in LEVELS {
                let l = served_level(asked, max);
                assert!(l <= asked && l <= max);
                assert!(l == asked || l == max);
            }
        }
    }

    fn conn(uid: u32, gid: u32, groups: &[u32], network: Option<Delegated>) -> Connection<'_> {
        Connection {
            uid,
            gid,
            groups,
            network,
        }
    }

    #[test]
    fn message_sender_table() {
        // (connection uid, network, dynamic, attached, no thread acts for
        // another, expected (uid, gid, unverified_root), whether asked)
        type Row = (
            u32,
            Option<Delegated>,
            bool,
            Option<(Option<i32>, u32, u32)>,
            bool,
            (u32, u32, bool),
            bool,
        );
        let rows: &[Row] = &[
            // Static tracking: the connection's identity, whatever was attached.
            (
                ALICE,
                None,
                false,
                Some((None, BOB, BOB)),
                true,
                (ALICE, ALICE, false),
                false,
            ),
            (
                0,
                None,
                false,
                Some((None, ALICE, ALICE)),
                true,
                (0, 0, false),
                false,
            ),
            (0, None, false, None, false, (0, 0, false), false),
            // Dynamic: the attached ids.
            (
                ALICE,
                None,
                true,
                Some((Some(9), BOB, BOB)),
                true,
                (BOB, BOB, false),
                false,
            ),
            (ALICE, None, true, None, true, (ALICE, ALICE, false), false),
            (
                0,
                None,
                true,
                Some((Some(9), ALICE, ALICE)),
                false,
                (ALICE, ALICE, false),
                false,
            ),
            // Root says root on a root connection: verified or not.
            (
                0,
                None,
                true,
                Some((Some(9), 0, 0)),
                true,
                (0, 0, false),
                true,
            ),
            (
                0,
                None,
                true,
                Some((Some(9), 0, 0)),
                false,
                (0, 0, true),
                true,
            ),
            (0, None, true, None, false, (0, 0, true), true),
            (
                0,
                None,
                true,
                Some((Some(9), 0, ALICE)),
                false,
                (0, ALICE, true),
                true,
            ),
            // Not a root connection, or a network client: nothing to verify.
            (
                ALICE,
                None,
                true,
                Some((Some(9), 0, 0)),
                false,
                (0, 0, false),
                false,
            ),
            (
                0,
                Some(Delegated::No),
                true,
                Some((None, 0, 0)),
                false,
                (0, 0, false),
                false,
            ),
        ];
        for &(cuid, network, dynamic, attached, verified, (uid, gid, unverified_root), asked) in
            rows
        {
            let mut was_asked = None;
            let s = message_sender(&conn(cuid, cuid, &[], network), dynamic, attached, |pid| {
                was_asked = Some(pid);
                verified
            });
            let row = format!(
                "conn {cuid} {network:?} dynamic={dynamic} {attached:?} verified={verified}"
            );
            assert_eq!(
                s,
                Sender {
                    uid,
                    gid,
                    unverified_root
                },
                "{row}"
            );
            assert_eq!(was_asked.is_some(), asked, "{row}");
            if let (Some(pid), Some((attached_pid, _, _))) = (was_asked, attached) {
                assert_eq!(
                    pid, attached_pid,
                    "{row}: the pid the kernel attached is asked about"
                );
            }
        }
    }

    /// Who sent the message, for the matrix.
    #[derive(Clone, Copy, Debug)]
    enum From {
        /// The connection's own identity.
        Same,
        /// Another identity than the connection's, on a connection not made as
        /// root (or made as root: then `Other` is an identity with an account).
        Other,
        /// On a root connection: an identity without an account.
        OtherWithoutAccount,
        /// Root's message on a root connection while a thread of the client
        /// acts for another user.
        UnverifiedRoot,
    }

    fn plan_for(c: &Connection<'_>, from: From, level: ImpersonationLevel, eo: bool) -> ClientPlan {
        let sender = match from {
            From::Same => Sender {
                uid: c.uid,
                gid: c.gid,
                unverified_root: false,
            },
            From::Other => Sender {
                uid: BOB,
                gid: BOB,
                unverified_root: false,
            },
            From::OtherWithoutAccount => Sender {
                uid: 3000,
                gid: 3000,
                unverified_root: false,
            },
            From::UnverifiedRoot => Sender {
                uid: c.uid,
                gid: c.gid,
                unverified_root: true,
            },
        };
        client_plan(c, sender, level, eo, |uid, gid| {
            (uid == BOB).then(|| vec![gid, 40, 41])
        })
    }

    #[test]
    fn client_plan_rows() {
        use ClientBasis::{Local, Network};
        let groups = [ALICE, 10];
        let alice = conn(ALICE, ALICE, &groups, None);
        let root = conn(0, 0, &[0], None);
        let sentinel = conn(S, S, &[], None);
        let net_no = conn(ALICE, ALICE, &groups, Some(Delegated::No));
        let net_yes = conn(ALICE, ALICE, &groups, Some(Delegated::Yes));
        let local = |privileges| Local { privileges };
        // (connection, from, level, EO) -> (basis, uid, gid, groups, level, EO)
        type Row<'a> = (
            &'a Connection<'a>,
            From,
            ImpersonationLevel,
            bool,
            (ClientBasis, u32, u32, &'a [u32], ImpersonationLevel, bool),
        );
        let rows: &[Row] = &[
            (
                &alice,
                From::Same,
                Impersonation,
                false,
                (local(true), ALICE, ALICE, &groups, Impersonation, false),
            ),
            (
                &alice,
                From::Same,
                Delegation,
                true,
                (local(true), ALICE, ALICE, &groups, Delegation, true),
            ),
            (
                &alice,
                From::Same,
                Identification,
                false,
                (local(true), ALICE, ALICE, &groups, Identification, false),
            ),
            (
                &alice,
                From::Same,
                Anonymous,
                true,
                (ClientBasis::Anonymous, S, S, &[], Anonymous, false),
            ),
            (
                &alice,
                From::Other,
                Impersonation,
                false,
                (local(false), ALICE, ALICE, &groups, Identification, false),
            ),
            (
                &alice,
                From::Other,
                Anonymous,
                false,
                (ClientBasis::Anonymous, S, S, &[], Anonymous, false),
            ),
            (
                &root,
                From::Same,
                Delegation,
                false,
                (local(true), 0, 0, &[0], Delegation, false),
            ),
            (
                &root,
                From::UnverifiedRoot,
                Impersonation,
                true,
                (local(false), 0, 0, &[0], Identification, true),
            ),
            (
                &root,
                From::Other,
                Impersonation,
                false,
                (local(false), BOB, BOB, &[BOB, 40, 41], Impersonation, false),
            ),
            (
                &root,
                From::Other,
                Delegation,
                true,
                (local(false), BOB, BOB, &[BOB, 40, 41], Delegation, true),
            ),
            (
                &root,
                From::OtherWithoutAccount,
                Impersonation,
                false,
                (local(false), 3000, 3000, &[3000], Identification, false),
            ),
            (
                &sentinel,
                From::Same,
                Impersonation,
                false,
                (local(true), S, S, &[], Identification, false),
            ),
            (
                &sentinel,
                From::Same,
                Anonymous,
                false,
                (ClientBasis::Anonymous, S, S, &[], Anonymous, false),
            ),
            (
                &net_no,
                From::Same,
                Delegation,
                false,
                (
                    Network { delegated: false },
                    ALICE,
                    ALICE,
                    &groups,
                    Impersonation,
                    false,
                ),
            ),
            (
                &net_no,
                From::Same,
                Impersonation,
                true,
                (
                    Network { delegated: false },
                    ALICE,
                    ALICE,
                    &groups,
                    Impersonation,
                    true,
                ),
            ),
            (
                &net_yes,
                From::Same,
                Delegation,
                false,
                (
                    Network { delegated: true },
                    ALICE,
                    ALICE,
                    &groups,
                    Delegation,
                    false,
                ),
            ),
            (
                &net_yes,
                From::Same,
                Impersonation,
                false,
                (
                    Network { delegated: false },
                    ALICE,
                    ALICE,
                    &groups,
                    Impersonation,
                    false,
                ),
            ),
            (
                &net_yes,
                From::Same,
                Identification,
                false,
                (
                    Network { delegated: false },
                    ALICE,
                    ALICE,
                    &groups,
                    Identification,
                    false,
                ),
            ),
            (
                &net_yes,
                From::Other,
                Delegation,
                false,
                (
                    Network { delegated: true },
                    ALICE,
                    ALICE,
                    &groups,
                    Delegation,
                    false,
                ),
            ),
            (
                &net_yes,
                From::Same,
                Anonymous,
                true,
                (ClientBasis::Anonymous, S, S, &[], Anonymous, false),
            ),
        ];
        for (i, &(c, from, level, eo, (basis, uid, gid, groups, out_level, out_eo))) in
            rows.iter().enumerate()
        {
            let plan = plan_for(c, from, level, eo);
            assert_eq!(
                plan,
                ClientPlan {
                    basis,
                    uid,
                    gid,
                    groups: groups.to_vec(),
                    level: out_level,
                    effective_only: out_eo,
                },
                "row {i}: conn {} {:?} {from:?} {level} eo={eo}",
                c.uid,
                c.network
            );
        }
        // The account is looked up for another identity on a root connection
        // only, with that identity's ids.
        let mut asked = Vec::new();
        for c in [&alice, &root, &net_yes] {
            for from in [From::Same, From::Other] {
                let sender = Sender {
                    uid: if matches!(from, From::Same) {
                        c.uid
                    } else {
                        BOB
                    },
                    gid: if matches!(from, From::Same) {
                        c.gid
                    } else {
                        77
                    },
                    unverified_root: false,
                };
                client_plan(c, sender, Impersonation, false, |u, g| {
                    asked.push((c.uid, u, g));
                    None
                });
            }
        }
        assert_eq!(asked, vec![(0, BOB, 77)]);
        // A root connection acting for an identity of gid 0 (or uid 0) is not
        // acting for someone else: Identification, as the connection.
        for (uid, gid) in [(BOB, 0), (0, BOB)] {
            let p = client_plan(
                &root,
                Sender {
                    uid,
                    gid,
                    unverified_root: false,
                },
                Impersonation,
                false,
                |_, _| Some(vec![1]),
            );
            assert_eq!(
                (p.uid, p.gid, p.level),
                (0, 0, Identification),
                "{uid}/{gid}"
            );
            assert_eq!(p.basis, ClientBasis::Local { privileges: false });
        }
    }

    /// The whole matrix: level asked × server maximum × tracking × sender (same,
    /// other, root connection, unverified root) × sentinel × network client
    /// (none, without, with delegated credentials) × EffectiveOnly × server able
    /// to switch or not, from the client's message to what the server's thread
    /// acts as. Each combination's expectation is stated as the table of rules
    /// reads, one condition at a time.
    #[test]
    fn whole_matrix() {
        let groups = [ALICE, 10];
        let mut rows = 0;
        for asked in LEVELS {
            for max in LEVELS {
                for dynamic in [false, true] {
                    for conn_uid in [ALICE, 0, S] {
                        for network in [None, Some(Delegated::No), Some(Delegated::Yes)] {
                            for from in [
                                From::Same,
                                From::Other,
                                From::OtherWithoutAccount,
                                From::UnverifiedRoot,
                            ] {
                                for eo in [false, true] {
                                    for switches in [false, true] {
                                        rows += 1;
                                        one_row(
                                            asked, max, dynamic, conn_uid, &groups, network, from,
                                            eo, switches,
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(rows, 4 * 4 * 2 * 3 * 3 * 4 * 2 * 2);
    }

    #[allow(clippy::too_many_arguments)]
    fn one_row(
        asked: ImpersonationLevel,
        max: ImpersonationLevel,
        dynamic: bool,
        conn_uid: u32,
        groups: &[u32],
        network: Option<Delegated>,
        from: From,
        eo: bool,
        switches: bool,
    ) {
        let c = conn(conn_uid, conn_uid, groups, network);
        // What the kernel attached, and what the client process looks like.
        let attached = match from {
            From::Same | From::UnverifiedRoot => (Some(1), conn_uid, conn_uid),
            From::Other => (Some(1), BOB, BOB),
            From::OtherWithoutAccount => (Some(1), 3000, 3000),
        };
        let verified = !matches!(from, From::UnverifiedRoot);
        let sender = message_sender(&c, dynamic, Some(attached), |_| verified);
        let level = served_level(asked, max);
        let plan = client_plan(&c, sender, level, eo, |uid, gid| {
            (uid == BOB).then(|| vec![gid, 40])
        });
        let row = format!(
            "asked {asked} max {max} dynamic={dynamic} conn {conn_uid} {network:?} {from:?} eo={eo} switches={switches}"
        );

        // --- The expectation, rule by rule.
        let mut want_level = asked.min(max);
        let sent_by_other = dynamic && !matches!(from, From::Same | From::UnverifiedRoot);
        let (mut want_uid, mut want_groups): (u32, Vec<u32>) = (conn_uid, groups.to_vec());
        let mut privileges = true;
        if want_level == Anonymous {
            want_uid = S;
            want_groups = vec![];
            privileges = false;
        } else if let Some(d) = network {
            privileges = false;
            if !(d == Delegated::Yes && want_level == Delegation) {
                want_level = want_level.min(Impersonation);
            }
        } else if sent_by_other && conn_uid == 0 {
            privileges = false;
            want_uid = attached.1;
            if matches!(from, From::OtherWithoutAccount) {
                want_groups = vec![3000];
                want_level = want_level.min(Identification);
            } else {
                want_groups = vec![BOB, 40];
            }
        } else if sent_by_other || dynamic && conn_uid == 0 && matches!(from, From::UnverifiedRoot)
        {
            privileges = false;
            want_level = want_level.min(Identification);
        }
        if want_uid == S {
            want_level = want_level.min(Identification);
        }
        assert_eq!(plan.level, want_level, "{row}: level");
        assert_eq!((plan.uid, plan.gid), (want_uid, want_uid), "{row}: ids");
        assert_eq!(plan.groups, want_groups, "{row}: groups");
        assert_eq!(
            plan.effective_only,
            eo && want_level != Anonymous,
            "{row}: EffectiveOnly"
        );
        assert_eq!(
            plan.basis == (ClientBasis::Local { privileges: true }),
            privileges && network.is_none(),
            "{row}: privileges"
        );
        // Never raise.
        assert!(plan.level <= asked && plan.level <= max, "{row}: raised");

        // --- On the server's thread.
        let token = Token::from_ids(plan.uid, plan.gid, &plan.groups)
            .unwrap()
            .duplicate(plan.level, TokenType::Impersonation)
            .unwrap();
        let server = root_server(switches);
        let t = thread_target(&token, &server);
        let acts = thread_level(&token, &server);
        // The server is root with no groups: a token of uid and gid 0 is its own.
        let own = (plan.uid, plan.gid) == (0, 0);
        let want_acts = if !switches && !own && plan.level >= Impersonation {
            Identification
        } else if plan.uid == S {
            plan.level.min(Identification)
        } else {
            plan.level
        };
        assert_eq!(acts, want_acts, "{row}: thread level");
        let (want_uid, want_gid, want_groups) = if want_acts >= Impersonation && !switches {
            (0, 0, vec![])
        } else if want_acts >= Impersonation {
            let mut g = plan.groups.clone();
            g.sort_unstable();
            (plan.uid, plan.gid, g)
        } else if switches {
            (S, S, vec![])
        } else {
            (0, 0, vec![])
        };
        if plan.uid != S || want_acts < Impersonation {
            assert_eq!(
                (t.applied.uid, t.applied.gid, t.applied.groups.to_vec()),
                (want_uid, want_gid, want_groups),
                "{row}: kernel"
            );
        }
        assert_eq!(t.below, want_acts < Impersonation, "{row}: umask 0777");
    }
}
