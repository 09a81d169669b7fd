//! AccessCheck: may this token have these rights on an object with this
//! descriptor? (MS-DTYP 2.5.3.2.)
//!
//! The rules, in order:
//! 1. The token must be an impersonation token ([`ErrorKind::NoImpersonationToken`])
//!    at Identification level or above ([`ErrorKind::BadImpersonationLevel`]); the
//!    desired mask must hold no generic rights ([`ErrorKind::GenericNotMapped`]); the
//!    descriptor must have an owner and a group
//!    ([`ErrorKind::InvalidSecurityDescriptor`]).
//! 2. `ACCESS_SYSTEM_SECURITY` is granted only when asked for and only by an enabled
//!    SeSecurityPrivilege; without it the check fails with
//!    [`ErrorKind::PrivilegeNotHeld`]. `WRITE_OWNER` is granted by an enabled
//!    SeTakeOwnershipPrivilege. With backup semantics, an enabled SeBackupPrivilege
//!    grants `READ_CONTROL`, `ACCESS_SYSTEM_SECURITY` and the mapping's read and
//!    execute rights, and an enabled SeRestorePrivilege grants `WRITE_DAC`,
//!    `WRITE_OWNER`, `DELETE`, `ACCESS_SYSTEM_SECURITY` and the mapping's write
//!    rights. Privileges override the DACL.
//! 3. A NULL or absent DACL grants everything asked (with `MAXIMUM_ALLOWED`: the
//!    mapping's "all").
//! 4. The owner (the token's user or an enabled group) is implicitly granted
//!    `READ_CONTROL | WRITE_DAC`, unless the DACL has an ACE for OWNER RIGHTS
//!    (`S-1-3-4`), which then applies to the owner instead (a deny OWNER RIGHTS ACE
//!    also reaches an owner that is a deny-only group of the token).
//! 5. The ACEs are read in order. `INHERIT_ONLY` ACEs are skipped. For each right the
//!    first ACE that names it and matches the token decides it: an allow ACE matches
//!    the user and enabled groups; a deny ACE also matches deny-only groups. An empty
//!    DACL grants nothing (but the owner's implicit rights).
//! 6. Without `MAXIMUM_ALLOWED` every desired right must be granted; with it, the
//!    result is every right granted, which must include the other desired rights and
//!    must not be empty. A desired mask of 0 is denied.
//!
//! Decisions where Windows leaves room: generic rights *in ACEs* are mapped with the
//! mapping (as Wine does), so `(A;;GR;;;WD)` grants the mapping's read rights;
//! `ACCESS_SYSTEM_SECURITY` and `MAXIMUM_ALLOWED` bits in an ACE grant nothing.
//! Callback (conditional) ACEs are not evaluated: an allow callback ACE never grants
//! and a deny callback ACE always denies, the safe reading of an unknown condition.
//! Object ACEs apply like plain ACEs when they name no object type and are skipped
//! when they do (no object type list is checked).
//!
//! # Example
//! ```
//! use guise::security::{access_check, sddl, AccessMask, GenericMapping};
//! use guise::{ImpersonationLevel, Token, TokenType};
//!
//! // Everyone may read; uid 1001 is denied everything, whatever comes after.
//! let sd = sddl::parse("O:BAG:BAD:(D;;FA;;;S-1-22-1-1001)(A;;FR;;;WD)", None)?;
//! let bob = Token::from_ids(1001, 1001, &[1001])?
//!     .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)?;
//! let result = access_check(&sd, &bob, AccessMask::FILE_GENERIC_READ, &GenericMapping::FILE)?;
//! let denial = result.denial.unwrap();
//! assert_eq!(denial.reason.win32_name(), "ERROR_ACCESS_DENIED");
//! # Ok::<(), guise::Error>(())
//! ```

use super::descriptor::{Ace, AceFlags, AceType, Acl, SecurityDescriptor};
use super::mask::{AccessMask, GenericMapping};
use crate::error::{Error, ErrorKind, Result};
use crate::privilege::Privilege;
use crate::sid::Sid;
use crate::token::{ImpersonationLevel, Token, TokenType};

/// Options of [`access_check_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessCheckOptions {
    /// Let SeBackupPrivilege and SeRestorePrivilege grant access, as a file opened
    /// with `FILE_FLAG_BACKUP_SEMANTICS`.
    pub backup_semantics: bool,
}

/// Why access was denied, and which desired rights were not granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial {
    /// [`ErrorKind::AccessDenied`], or [`ErrorKind::PrivilegeNotHeld`] when
    /// `ACCESS_SYSTEM_SECURITY` was asked for without SeSecurityPrivilege.
    pub reason: ErrorKind,
    /// The desired rights that were not granted.
    pub missing: AccessMask,
}

/// The result of an access check that could be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessCheck {
    /// The rights granted (`GrantedAccess`); 0 when denied.
    pub granted: AccessMask,
    /// `None` when access is allowed (`AccessStatus` TRUE).
    pub denial: Option<Denial>,
    /// The privileges that granted rights (`PrivilegeSet`): SeSecurityPrivilege
    /// for `ACCESS_SYSTEM_SECURITY`, SeTakeOwnershipPrivilege for `WRITE_OWNER`,
    /// SeBackupPrivilege and SeRestorePrivilege with backup semantics; empty
    /// when access is denied.
    pub privileges_used: crate::privilege::PrivilegeSet,
}

impl AccessCheck {
    /// Whether access is allowed.
    pub fn is_allowed(&self) -> bool {
        self.denial.is_none()
    }

    pub(crate) fn allowed(granted: AccessMask) -> AccessCheck {
        AccessCheck {
            granted,
            denial: None,
            privileges_used: crate::privilege::PrivilegeSet::empty(),
        }
    }

    pub(crate) fn denied(reason: ErrorKind, missing: AccessMask) -> AccessCheck {
        AccessCheck {
            granted: AccessMask::empty(),
            denial: Some(Denial { reason, missing }),
            privileges_used: crate::privilege::PrivilegeSet::empty(),
        }
    }

    /// The result as a `Result`: the granted rights, or an error of the denial's
    /// kind naming the missing rights.
    ///
    /// # Errors
    /// [`ErrorKind::AccessDenied`] or [`ErrorKind::PrivilegeNotHeld`].
    pub fn into_result(self) -> Result<AccessMask> {
        match self.denial {
            None => Ok(self.granted),
            Some(d) => Err(Error::new(
                d.reason,
                format!("access denied: missing {}", d.missing),
            )),
        }
    }
}

/// Checks whether `token` may have `desired` on an object protected by `sd`
/// ([`AccessCheck`]). See the [module documentation](self) for the rules.
///
/// # Errors
/// A call that cannot be made: [`ErrorKind::NoImpersonationToken`],
/// [`ErrorKind::BadImpersonationLevel`], [`ErrorKind::GenericNotMapped`],
/// [`ErrorKind::InvalidSecurityDescriptor`]. A denial is not an error: see
/// [`AccessCheck::denial`].
///
/// [`AccessCheck`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-accesscheck
#[doc(alias = "AccessCheck")]
pub fn access_check(
    sd: &SecurityDescriptor,
    token: &Token,
    desired: AccessMask,
    mapping: &GenericMapping,
) -> Result<AccessCheck> {
    access_check_with(sd, token, desired, mapping, AccessCheckOptions::default())
}

/// [`access_check`] with options.
///
/// # Errors
/// As [`access_check`].
#[doc(alias = "AccessCheck")]
pub fn access_check_with(
    sd: &SecurityDescriptor,
    token: &Token,
    desired: AccessMask,
    mapping: &GenericMapping,
    options: AccessCheckOptions,
) -> Result<AccessCheck> {
    check(sd, token, desired, mapping, options, |pre, dacl| {
        let mut granted = pre.privileged | pre.owner_implicit();
        // Rights not decided yet: for MAXIMUM_ALLOWED every right, else the desired
        // ones. The first ACE that names a right decides it.
        let mut open = if pre.max {
            !AccessMask::empty()
        } else {
            pre.want
        } - granted;
        for ace in &dacl.aces {
            if open.is_empty() {
                break;
            }
            let Some((allow, decided)) = pre.applies(ace, open) else {
                continue;
            };
            if allow {
                granted |= decided;
            }
            open -= decided;
        }
        granted
    })
}

/// The same check made the straightforward way: each right on its own, walking the
/// whole DACL for it. It exists to test [`access_check_with`] against (property
/// tests, fuzzing, benchmarks), and is not part of the API.
///
/// # Errors
/// As [`access_check`].
#[doc(hidden)]
pub fn reference_access_check(
    sd: &SecurityDescriptor,
    token: &Token,
    desired: AccessMask,
    mapping: &GenericMapping,
    options: AccessCheckOptions,
) -> Result<AccessCheck> {
    check(sd, token, desired, mapping, options, |pre, dacl| {
        let mut granted = AccessMask::empty();
        for bit in (0..32).map(|i| AccessMask::from_raw(1 << i)) {
            if !pre.max && !pre.want.contains(bit) {
                continue;
            }
            let by_privilege_or_owner =
                pre.privileged.contains(bit) || pre.owner_implicit().contains(bit);
            let first_decider = dacl.aces.iter().find_map(|ace| {
                let (allow, _) = pre.applies(ace, bit)?;
                Some(allow)
            });
            if by_privilege_or_owner || first_decider == Some(true) {
                granted |= bit;
            }
        }
        granted
    })
}

/// The preconditions, the NULL DACL and the result, around `walk`, which computes
/// the granted rights from a DACL: once for the token's SIDs and, for a
/// restricted token, again for its restricting SIDs (what both grant is
/// granted); then the object's mandatory label takes what it forbids.
fn check(
    sd: &SecurityDescriptor,
    token: &Token,
    desired: AccessMask,
    mapping: &GenericMapping,
    options: AccessCheckOptions,
    walk: impl Fn(&Prepared<'_>, &Acl) -> AccessMask,
) -> Result<AccessCheck> {
    let pre = match Prepared::new(sd, token, desired, mapping, options)? {
        Ok(pre) => pre,
        Err(early) => return Ok(early),
    };
    let forbidden = mandatory_denied(sd, token, mapping);
    let Some(dacl) = &sd.dacl else {
        return Ok(pre.null_dacl(forbidden));
    };
    let mut granted = walk(&pre, dacl);
    if let Some(second) = pre.restricting_pass(sd) {
        granted &= second.limit(walk(&second, dacl));
    }
    Ok(pre.finish(granted - forbidden))
}

/// The rights a write-restricted token's restricting SIDs decide, and what
/// no-write-up forbids: the mapping's write rights, the rights of its "all"
/// that are neither read nor execute, and the standard rights that change an
/// object; never `READ_CONTROL` and `SYNCHRONIZE`.
pub(crate) fn write_rights(mapping: &GenericMapping) -> AccessMask {
    // Every right of the mapping's "all" that is neither read nor execute
    // changes the object (FILE_DELETE_CHILD, KEY_CREATE_LINK, ...).
    (mapping.write
        | mapping.all
        | AccessMask::DELETE
        | AccessMask::WRITE_DAC
        | AccessMask::WRITE_OWNER)
        - (mapping.read | mapping.execute)
        - (AccessMask::READ_CONTROL | AccessMask::SYNCHRONIZE)
}

/// The rights the object's mandatory label forbids this token (the integrity
/// check of AccessCheck): none when the token's integrity level is not below the
/// object's; else, by the label's policy, the rights only the mapping's write
/// rights (and `DELETE`, `WRITE_DAC`, `WRITE_OWNER`) hold (`NO_WRITE_UP`), only
/// its read rights hold (`NO_READ_UP`), only its execute rights hold
/// (`NO_EXECUTE_UP`); a right two of them share (`READ_CONTROL`, `SYNCHRONIZE`,
/// `FILE_READ_ATTRIBUTES`) stays. The label is the first mandatory
/// label ACE of the SACL that is not inherit-only; an object without one is
/// Medium with `NO_WRITE_UP`.
pub(crate) fn mandatory_denied(
    sd: &SecurityDescriptor,
    token: &Token,
    mapping: &GenericMapping,
) -> AccessMask {
    const NO_WRITE_UP: u32 = 0x1;
    const NO_READ_UP: u32 = 0x2;
    const NO_EXECUTE_UP: u32 = 0x4;
    let label = sd.sacl.as_ref().and_then(|sacl| {
        sacl.aces.iter().find(|a| {
            a.ace_type == AceType::SystemMandatoryLabel && !a.flags.contains(AceFlags::INHERIT_ONLY)
        })
    });
    let (object_level, policy) = match label {
        Some(ace) => (ace.sid, ace.mask.bits()),
        None => (Sid::MEDIUM_INTEGRITY, NO_WRITE_UP),
    };
    let rank = |sid: &Sid| crate::token::integrity_rank(sid).unwrap_or(0);
    if rank(&token.integrity_level()) >= rank(&object_level) {
        return AccessMask::empty();
    }
    let write = write_rights(mapping);
    let mut denied = AccessMask::empty();
    if policy & NO_WRITE_UP != 0 {
        denied |= write;
    }
    if policy & NO_READ_UP != 0 {
        denied |= mapping.read - (write | mapping.execute) - AccessMask::SYNCHRONIZE;
    }
    if policy & NO_EXECUTE_UP != 0 {
        denied |= mapping.execute - (write | mapping.read) - AccessMask::SYNCHRONIZE;
    }
    denied - AccessMask::READ_CONTROL
}

/// What both implementations share: the preconditions and everything but the walk.
struct Prepared<'a> {
    token: &'a Token,
    mapping: &'a GenericMapping,
    max: bool,
    want: AccessMask,
    privileged: AccessMask,
    /// Each enabled privilege that grants rights, with the rights.
    by_privilege: [(Privilege, AccessMask); 4],
    /// The descriptor's owner.
    owner: &'a Sid,
    /// Whether the token is the owner (its user or an enabled group).
    is_owner: bool,
    /// Whether the DACL has an OWNER RIGHTS ACE that applies to this object.
    has_owner_rights: bool,
    /// The second pass of a restricted token: the restricting SIDs stand for
    /// the token's user and groups.
    restricting: bool,
}

impl<'a> Prepared<'a> {
    /// The checked inputs, or the result when it is known before the DACL is read.
    fn new(
        sd: &'a SecurityDescriptor,
        token: &'a Token,
        desired: AccessMask,
        mapping: &'a GenericMapping,
        options: AccessCheckOptions,
    ) -> Result<std::result::Result<Prepared<'a>, AccessCheck>> {
        if token.token_type() != TokenType::Impersonation {
            return Err(Error::new(
                ErrorKind::NoImpersonationToken,
                "AccessCheck needs an impersonation token; duplicate the primary token first",
            ));
        }
        if token.impersonation_level() < Some(ImpersonationLevel::Identification) {
            return Err(Error::new(
                ErrorKind::BadImpersonationLevel,
                "AccessCheck needs a token at Identification level or above",
            ));
        }
        if desired.has_generic() {
            return Err(Error::new(
                ErrorKind::GenericNotMapped,
                format!("the desired access {desired} holds generic rights: map them first"),
            ));
        }
        let (Some(owner), Some(_)) = (&sd.owner, &sd.group) else {
            return Err(Error::new(
                ErrorKind::InvalidSecurityDescriptor,
                "AccessCheck needs a security descriptor with an owner and a group",
            ));
        };
        let max = desired.contains(AccessMask::MAXIMUM_ALLOWED);
        let want = desired - AccessMask::MAXIMUM_ALLOWED;
        let ass = AccessMask::ACCESS_SYSTEM_SECURITY;
        let enabled = |p| token.is_privilege_enabled(p);
        if want.contains(ass) && !enabled(Privilege::Security) {
            return Ok(Err(AccessCheck::denied(ErrorKind::PrivilegeNotHeld, ass)));
        }
        let grant = |p: Privilege, rights: AccessMask| {
            let rights = if enabled(p) {
                rights
            } else {
                AccessMask::empty()
            };
            (p, if max { rights } else { rights & want })
        };
        let backup = options.backup_semantics;
        let by_privilege = [
            grant(Privilege::Security, want & ass),
            grant(Privilege::TakeOwnership, AccessMask::WRITE_OWNER),
            grant(
                Privilege::Backup,
                if backup {
                    AccessMask::READ_CONTROL | mapping.read | mapping.execute | (want & ass)
                } else {
                    AccessMask::empty()
                },
            ),
            grant(
                Privilege::Restore,
                if backup {
                    AccessMask::WRITE_DAC
                        | AccessMask::WRITE_OWNER
                        | AccessMask::DELETE
                        | mapping.write
                        | (want & ass)
                } else {
                    AccessMask::empty()
                },
            ),
        ];
        let privileged = by_privilege
            .iter()
            .fold(AccessMask::empty(), |acc, (_, r)| acc | *r);
        let mut pre = Prepared {
            token,
            mapping,
            max,
            want,
            privileged,
            by_privilege,
            owner,
            is_owner: false,
            has_owner_rights: false,
            restricting: false,
        };
        pre.see_owner(sd);
        Ok(Ok(pre))
    }

    /// Whether this pass's SIDs hold the owner, and whether OWNER RIGHTS ACEs
    /// then say what it may do.
    fn see_owner(&mut self, sd: &SecurityDescriptor) {
        self.is_owner = self.holds(self.owner, false);
        // Only an owner's implicit rights depend on OWNER RIGHTS ACEs.
        self.has_owner_rights = self.is_owner
            && sd.dacl.as_ref().is_some_and(|d| {
                d.aces.iter().any(|a| {
                    a.sid == Sid::OWNER_RIGHTS && !a.flags.contains(AceFlags::INHERIT_ONLY)
                })
            });
    }

    /// The second pass for a restricted token; `None` for others.
    fn restricting_pass(&self, sd: &SecurityDescriptor) -> Option<Prepared<'a>> {
        if !self.token.is_restricted() {
            return None;
        }
        let mut second = Prepared {
            restricting: true,
            ..*self
        };
        second.see_owner(sd);
        Some(second)
    }

    /// What the second pass's grant `by_restricting` leaves of the first's:
    /// all of it but the write rights it did not grant, for a write-restricted
    /// token (only write access is checked against its restricting SIDs).
    fn limit(&self, by_restricting: AccessMask) -> AccessMask {
        if self.token.is_write_restricted() {
            by_restricting | !write_rights(self.mapping)
        } else {
            by_restricting
        }
    }

    /// Whether an ACE for `sid` applies in this pass.
    #[inline(always)]
    fn holds(&self, sid: &Sid, for_deny: bool) -> bool {
        if self.restricting {
            self.token.holds_restricting(sid, for_deny) == Some(true)
        } else {
            self.token.holds(sid, for_deny)
        }
    }

    fn null_dacl(&self, forbidden: AccessMask) -> AccessCheck {
        if self.max {
            self.finish((self.mapping.all | self.want | self.privileged) - forbidden)
        } else if self.want.is_empty() {
            AccessCheck::denied(ErrorKind::AccessDenied, AccessMask::empty())
        } else {
            self.finish(self.want - forbidden)
        }
    }

    /// The owner's implicit rights: READ_CONTROL and WRITE_DAC, unless OWNER RIGHTS
    /// ACEs say what the owner may do instead.
    fn owner_implicit(&self) -> AccessMask {
        if !self.is_owner || self.has_owner_rights {
            return AccessMask::empty();
        }
        let implicit = AccessMask::READ_CONTROL | AccessMask::WRITE_DAC;
        if self.max {
            implicit
        } else {
            implicit & self.want
        }
    }

    /// If `ace` takes part in the check, names one of the rights in `open` and
    /// matches the token: whether it allows, and the rights of `open` it names
    /// (mapped). The rights are looked at before the SID: an ACE that can decide
    /// nothing still open costs no lookup.
    #[inline(always)]
    fn applies(&self, ace: &Ace, open: AccessMask) -> Option<(bool, AccessMask)> {
        if ace.flags.contains(AceFlags::INHERIT_ONLY) {
            return None;
        }
        let allow = takes_part(ace.ace_type, ace.object_type.is_none())?;
        let rights = self.mapping.map(ace.mask)
            & open
            & !(AccessMask::ACCESS_SYSTEM_SECURITY | AccessMask::MAXIMUM_ALLOWED);
        if rights.is_empty() {
            return None;
        }
        // An OWNER RIGHTS ACE stands for the owner: matched as the ACE's kind is, so
        // a deny also reaches an owner held only as a deny-only group.
        let hit = if ace.sid == Sid::OWNER_RIGHTS {
            self.holds(self.owner, !allow)
        } else {
            self.holds(&ace.sid, !allow)
        };
        hit.then_some((allow, rights))
    }

    fn finish(&self, granted: AccessMask) -> AccessCheck {
        let mut result = self.decide(granted);
        if result.is_allowed() {
            for (p, rights) in &self.by_privilege {
                if rights.intersects(result.granted) {
                    result.privileges_used.insert(*p);
                }
            }
        }
        result
    }

    fn decide(&self, granted: AccessMask) -> AccessCheck {
        let missing = self.want - granted;
        if self.max {
            if granted.is_empty() || !missing.is_empty() {
                AccessCheck::denied(
                    ErrorKind::AccessDenied,
                    if missing.is_empty() {
                        self.want
                    } else {
                        missing
                    },
                )
            } else {
                AccessCheck::allowed(granted)
            }
        } else if self.want.is_empty() || !missing.is_empty() {
            AccessCheck::denied(ErrorKind::AccessDenied, missing)
        } else {
            AccessCheck::allowed(self.want)
        }
    }
}

/// Whether an ACE of `ace_type` takes part in AccessCheck, and if so whether it
/// allows: allow and deny ACEs do; an object ACE only when it names no object type
/// (`plain`); an allow callback ACE never grants (its condition is not read) and a
/// deny callback ACE always denies.
#[inline(always)]
fn takes_part(ace_type: AceType, plain: bool) -> Option<bool> {
    match ace_type {
        AceType::AccessAllowed => Some(true),
        AceType::AccessAllowedObject if plain => Some(true),
        AceType::AccessDenied | AceType::AccessDeniedCallback => Some(false),
        AceType::AccessDeniedObject | AceType::AccessDeniedCallbackObject if plain => Some(false),
        _ => None,
    }
}

/// An entry of an object type list (`OBJECT_TYPE_LIST`): an object type or
/// property set by GUID, at its level of the tree (0 for the object itself, 1
/// for its property sets, 2 for their properties, ...), listed depth first.
#[doc(alias = "OBJECT_TYPE_LIST")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectType {
    /// The level in the tree: the first entry is level 0, each next one at most
    /// one level deeper than the one before, and no deeper than 4.
    pub level: u16,
    /// The object type's GUID, which object ACEs name.
    pub guid: super::descriptor::Guid,
}

/// [`AccessCheck`] with an object type list ([`AccessCheckByType`]): object
/// ACEs take part when they name a type in the list. An allow object ACE grants
/// its type and the types below it (and a parent gets what all its children
/// are granted); a deny object ACE denies its type, the types below and the
/// types above it; ACEs without an object type apply to every entry. The result
/// is the object's (the level 0 entry's).
///
/// # Errors
/// As [`access_check`]; [`ErrorKind::InvalidParameter`] for a list that is not a
/// tree in depth-first order with one level 0 entry first.
///
/// [`AccessCheck`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-accesscheck
/// [`AccessCheckByType`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-accesscheckbytype
#[doc(alias = "AccessCheckByType")]
pub fn access_check_by_type(
    sd: &SecurityDescriptor,
    token: &Token,
    desired: AccessMask,
    mapping: &GenericMapping,
    object_types: &[ObjectType],
) -> Result<AccessCheck> {
    let mut all = access_check_by_type_result_list(sd, token, desired, mapping, object_types)?;
    Ok(all.swap_remove(0))
}

/// As [`access_check_by_type`], with a result for every entry of the list
/// ([`AccessCheckByTypeResultList`]), in the list's order.
///
/// # Errors
/// As [`access_check_by_type`].
///
/// [`AccessCheckByTypeResultList`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-accesscheckbytyperesultlist
#[doc(alias = "AccessCheckByTypeResultList")]
pub fn access_check_by_type_result_list(
    sd: &SecurityDescriptor,
    token: &Token,
    desired: AccessMask,
    mapping: &GenericMapping,
    object_types: &[ObjectType],
) -> Result<Vec<AccessCheck>> {
    validate_object_types(object_types)?;
    let pre = match Prepared::new(sd, token, desired, mapping, AccessCheckOptions::default())? {
        Ok(pre) => pre,
        Err(early) => return Ok(vec![early; object_types.len()]),
    };
    let forbidden = mandatory_denied(sd, token, mapping);
    let Some(dacl) = &sd.dacl else {
        return Ok(vec![pre.null_dacl(forbidden); object_types.len()]);
    };
    let mut granted = walk_by_type(&pre, dacl, object_types);
    if let Some(second) = pre.restricting_pass(sd) {
        let by_restricting = walk_by_type(&second, dacl, object_types);
        for (g, r) in granted.iter_mut().zip(by_restricting) {
            *g &= second.limit(r);
        }
    }
    Ok(granted
        .into_iter()
        .map(|g| pre.finish(g - forbidden))
        .collect())
}

fn validate_object_types(types: &[ObjectType]) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("object type list: {why}"),
        ))
    };
    match types.first() {
        None => return bad("empty"),
        Some(first) if first.level != 0 => return bad("the first entry must be level 0"),
        Some(_) => {}
    }
    for pair in types.windows(2) {
        let (prev, next) = (pair[0].level, pair[1].level);
        if next == 0 {
            return bad("only the first entry is level 0");
        }
        if next > prev + 1 || next > 4 {
            return bad("a level deeper than its parent's next level, or than 4");
        }
    }
    Ok(())
}

/// The entries below entry `i` (its subtree, without it).
fn below(types: &[ObjectType], i: usize) -> std::ops::Range<usize> {
    let end = types[i + 1..]
        .iter()
        .position(|t| t.level <= types[i].level)
        .map_or(types.len(), |p| i + 1 + p);
    i + 1..end
}

/// The parent of entry `i`.
fn parent(types: &[ObjectType], i: usize) -> Option<usize> {
    (0..i).rev().find(|&j| types[j].level < types[i].level)
}

/// The granted rights of every entry, by the rules of [`access_check_by_type`].
fn walk_by_type(pre: &Prepared<'_>, dacl: &Acl, types: &[ObjectType]) -> Vec<AccessMask> {
    let base = pre.privileged | pre.owner_implicit();
    let all = if pre.max {
        !AccessMask::empty()
    } else {
        pre.want
    };
    let mut granted = vec![base; types.len()];
    let mut open = vec![all - base; types.len()];
    let mut decide = |n: usize, rights: AccessMask, allow: bool, granted: &mut Vec<AccessMask>| {
        let d = rights & open[n];
        if allow {
            granted[n] |= d;
        }
        open[n] -= d;
        d
    };
    for ace in &dacl.aces {
        if ace.flags.contains(AceFlags::INHERIT_ONLY) {
            continue;
        }
        let allow = match ace.ace_type {
            AceType::AccessAllowed | AceType::AccessAllowedObject => true,
            AceType::AccessDenied
            | AceType::AccessDeniedCallback
            | AceType::AccessDeniedObject
            | AceType::AccessDeniedCallbackObject => false,
            _ => continue,
        };
        let rights = pre.mapping.map(ace.mask)
            - (AccessMask::ACCESS_SYSTEM_SECURITY | AccessMask::MAXIMUM_ALLOWED);
        let sid = if ace.sid == Sid::OWNER_RIGHTS {
            pre.owner
        } else {
            &ace.sid
        };
        if rights.is_empty() || !pre.holds(sid, !allow) {
            continue;
        }
        let typed = ace
            .ace_type
            .is_object()
            .then_some(ace.object_type)
            .flatten();
        let Some(guid) = typed else {
            for n in 0..types.len() {
                decide(n, rights, allow, &mut granted);
            }
            continue;
        };
        let Some(i) = types.iter().position(|t| t.guid == guid) else {
            continue;
        };
        for n in std::iter::once(i).chain(below(types, i)) {
            decide(n, rights, allow, &mut granted);
        }
        let mut up = parent(types, i);
        while let Some(a) = up {
            if allow {
                // A parent gets what all its children are granted.
                let children: Vec<usize> = below(types, a)
                    .filter(|&c| types[c].level == types[a].level + 1)
                    .collect();
                let common = children
                    .iter()
                    .fold(!AccessMask::empty(), |acc, &c| acc & granted[c]);
                decide(a, common & rights, true, &mut granted);
            } else {
                decide(a, rights, false, &mut granted);
            }
            up = parent(types, a);
        }
    }
    granted
}

/// Whether a token may act on an object ([`AccessCheck`]), for callers that hold the
/// token of the thread: the calling thread's impersonation token is used.
///
/// # Errors
/// [`ErrorKind::NoToken`] if the thread does not impersonate; otherwise as
/// [`access_check`].
///
/// [`AccessCheck`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-accesscheck
#[doc(alias = "AccessCheck")]
pub fn access_check_thread(
    sd: &SecurityDescriptor,
    desired: AccessMask,
    mapping: &GenericMapping,
) -> Result<AccessCheck> {
    let token = crate::thread::open_thread_token(true)?;
    access_check(sd, &token, desired, mapping)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ACE types that take part, as the type's predicates define them.
    #[test]
    fn takes_part_agrees_with_the_ace_type_predicates() {
        for t in AceType::all() {
            for plain in [true, false] {
                let by_predicates = (t.is_allow() || t.is_deny())
                    .then_some(t.is_allow())
                    .filter(|_| !t.is_object() || plain)
                    .filter(|&allow| !(allow && t.is_conditional()));
                assert_eq!(takes_part(t, plain), by_predicates, "{t:?}, plain: {plain}");
            }
        }
    }
}
