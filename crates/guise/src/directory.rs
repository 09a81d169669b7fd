//! Accounts of an Active Directory domain, as winbind (or SSSD) knows them.
//!
//! On a host joined to a domain with winbind (Samba's `libwbclient` installed and
//! `winbindd` running), a directory account's token carries what a Windows
//! member server's would: the user's domain SID (`S-1-5-21-…-1104`, not
//! `S-1-22-1-uid`) and the SIDs of every domain group the user is a member of,
//! nested groups included (the token groups the domain controller computes, as
//! `wbinfo --user-domgroups` lists them). A group that has a Unix gid keeps it
//! in the kernel's supplementary groups; a group without one is a SID only,
//! which [`crate::security::access_check`] matches and the kernel never sees.
//! Local accounts keep `S-1-22-1-uid` and `S-1-22-2-gid`.
//!
//! On a host joined with SSSD instead (`libsss_nss_idmap` installed, `sssd`
//! running), the same comes from SSSD: the user's SID, and the SIDs of its
//! Unix groups that are the domain's (SSSD's groups all have gids, nested
//! ones included; a domain group without one is not there). SSSD says "no
//! SID" when it does not run, too: an account or group NSS gave that is not in
//! the local files and has no SID is an error, not a local one.
//!
//! Where winbind is absent (no library, no daemon) every account is local. A
//! lookup that fails otherwise is an error, never a local token: a token
//! without its domain groups would pass a deny ACE that names one of them. So
//! is a winbindd that answered this process before and is gone (it stopped);
//! the one window left is a winbindd that stops between a process's first NSS
//! lookup of a directory account and its first SID lookup.
//!
//! # Example
//! ```no_run
//! // On a host joined with winbind: the domain, and alice's SID in it.
//! if let Some(domain) = guise::directory::joined_domain() {
//!     println!("{} ({}) is {}", domain.name, domain.dns_name, domain.sid);
//! }
//! let alice = guise::directory::account("alice", 10001)?;
//! if let Some(a) = alice {
//!     println!("alice is {}, in {} domain groups", a.sid, a.groups.len());
//! }
//! # Ok::<(), guise::Error>(())
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::sid::Sid;
use crate::sys::wbclient::{self, WbcDomainSid, WbcError};

/// A directory account: its SID and its domain groups.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DomainAccount {
    /// The user's SID in its domain.
    pub sid: Sid,
    /// The domain groups the user is a member of, nested ones included.
    pub groups: Vec<DomainGroup>,
}

/// A domain group of a [`DomainAccount`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DomainGroup {
    /// Its SID.
    pub sid: Sid,
    /// Its Unix gid, where winbind maps one (`gidNumber`, or an id of winbind's
    /// own range); `None` for a group that has none.
    pub gid: Option<u32>,
}

/// The domain a host is joined to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Domain {
    /// Its NetBIOS name (`GUISE`).
    pub name: String,
    /// Its DNS name (`guise.test`).
    pub dns_name: String,
    /// Its SID (`S-1-5-21-…`), the prefix of its accounts' SIDs.
    pub sid: Sid,
}

fn sid_of(w: &WbcDomainSid) -> Result<Sid> {
    let n = usize::from(w.num_auths);
    if w.sid_rev_num != 1 || n > wbclient::MAX_SUB_AUTHS {
        return Err(Error::new(
            ErrorKind::InvalidSid,
            "winbind returned a malformed SID",
        ));
    }
    let authority = w.id_auth.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
    Sid::new(authority, &w.sub_auths[..n])
}

fn wbc_sid(s: &Sid) -> WbcDomainSid {
    let mut w = WbcDomainSid {
        sid_rev_num: 1,
        num_auths: s.sub_authorities().len() as u8,
        ..WbcDomainSid::default()
    };
    let a = s.authority().to_be_bytes();
    w.id_auth.copy_from_slice(&a[2..]);
    w.sub_auths[..s.sub_authorities().len()].copy_from_slice(s.sub_authorities());
    w
}

fn failed(what: &str, e: WbcError) -> Error {
    match e {
        WbcError::Failed(code) => Error::new(
            ErrorKind::Os,
            format!("winbind could not answer {what} (WBC_ERR {code})"),
        ),
        WbcError::NotAvailable => {
            Error::new(ErrorKind::Os, format!("winbind stopped answering {what}"))
        }
        WbcError::NotFound => Error::new(ErrorKind::NoneMapped, format!("winbind knows no {what}")),
    }
}

/// The directory account named `name` whose uid (as NSS gave it) is `uid`:
/// `None` for a local account, or where winbind is absent.
///
/// An account is the directory's when winbind knows the name with that same
/// uid; a local account whose name or uid winbind also has is not taken for
/// it.
///
/// # Errors
/// [`ErrorKind::Os`] when winbind knows the account but cannot give its SID or
/// groups (a failing domain controller, a daemon that stopped mid-way): never a
/// token without them.
pub fn account(name: &str, uid: u32) -> Result<Option<DomainAccount>> {
    match winbind_account(name, uid)? {
        Some(account) => Ok(Some(account)),
        None => sssd_account(name, uid),
    }
}

/// Whether the local files list `name` in `/etc/passwd` (field 1), or a group
/// of gid `gid` in `/etc/group` (field 3): an account or group of this host's
/// own, not a directory's.
fn in_files(path: &str, field: usize, value: &str) -> Result<bool> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::with_source(ErrorKind::Os, format!("reading {path}"), e))?;
    Ok(text.lines().any(|l| l.split(':').nth(field) == Some(value)))
}

/// An SSSD domain's account (`libsss_nss_idmap`): its SID, and the SIDs of
/// the groups of its Unix groups that are the domain's (SSSD knows only groups
/// with gids). `None` where SSSD is absent, or for an account of the local
/// files.
///
/// SSSD says "no SID" both for an id that is not its own and when it does not
/// run: an account NSS gave that is not in `/etc/passwd` (so it came from
/// SSSD, or another directory) without a SID is an error; so is a group of it
/// without a SID that is not in `/etc/group`.
fn sssd_account(name: &str, uid: u32) -> Result<Option<DomainAccount>> {
    use crate::sys::sss::{self, Answer};
    if !crate::sys::sss::installed() {
        return Ok(None);
    }
    let parse = |text: &str, what: &str| -> Result<Sid> {
        text.parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidSid,
                format!("SSSD gave {what} a malformed SID"),
            )
        })
    };
    let sid = match sss::sid_by_uid(uid) {
        None => return Ok(None),
        Some(Ok(Answer::None)) if in_files("/etc/passwd", 0, name)? => return Ok(None),
        Some(Ok(Answer::None)) => {
            return Err(Error::new(
                ErrorKind::Os,
                format!(
                    "SSSD has no SID for {name:?} (uid {uid}), an account not of this host's \
                     files: SSSD may not be running"
                ),
            ));
        }
        Some(Err(e)) => {
            return Err(Error::os(
                ErrorKind::Os,
                format!("SSSD's SID for uid {uid}"),
                e,
            ));
        }
        Some(Ok(Answer::Sid(text))) => parse(&text, &format!("uid {uid}"))?,
    };
    if sid.authority() == Sid::UNIX_AUTHORITY {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name(name)
        .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up user {name:?}"), e))?
        .filter(|u| u.uid.as_raw() == uid)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NoneMapped,
                format!("no user {name:?} has uid {uid}"),
            )
        })?;
    let c_name = std::ffi::CString::new(name)
        .map_err(|_| Error::new(ErrorKind::InvalidParameter, "user name contains a NUL byte"))?;
    let gids = nix::unistd::getgrouplist(&c_name, user.gid)
        .map_err(|e| Error::sys(ErrorKind::Os, format!("reading the groups of {name:?}"), e))?;
    let mut groups = Vec::with_capacity(gids.len());
    for gid in gids.into_iter().map(|g| g.as_raw()) {
        match sss::sid_by_gid(gid) {
            None => {}
            Some(Ok(Answer::None)) if in_files("/etc/group", 2, &gid.to_string())? => {}
            Some(Ok(Answer::None)) => {
                return Err(Error::new(
                    ErrorKind::Os,
                    format!(
                        "SSSD has no SID for gid {gid} of {name:?}, a group not of this host's files"
                    ),
                ));
            }
            Some(Err(e)) => {
                return Err(Error::os(
                    ErrorKind::Os,
                    format!("SSSD's SID for gid {gid}"),
                    e,
                ));
            }
            Some(Ok(Answer::Sid(text))) => {
                let group = parse(&text, &format!("gid {gid}"))?;
                // With user private groups SSSD may give the user's own SID.
                if group.authority() != Sid::UNIX_AUTHORITY
                    && group != sid
                    && !groups.iter().any(|g: &DomainGroup| g.sid == group)
                {
                    groups.push(DomainGroup {
                        sid: group,
                        gid: Some(gid),
                    });
                }
            }
        }
    }
    Ok(Some(DomainAccount { sid, groups }))
}

/// The directory account as winbind knows it (see [`account`]).
fn winbind_account(name: &str, uid: u32) -> Result<Option<DomainAccount>> {
    match wbclient::uid_of(name) {
        Ok(u) if u == uid => {}
        Ok(_) => return Ok(None),
        // libwbclient says "not found" for winbindd's failures too (a domain
        // controller that timed out): a name NSS gave in winbind's qualified
        // form (`DOMAIN\user`) is the directory's, and not found is an error
        // for it. (A plain name winbind does not find is taken as local; with
        // `winbind use default domain`, a failing winbind is not told apart.)
        Err(WbcError::NotFound) if name.contains('\\') => {
            return Err(Error::new(
                ErrorKind::Os,
                format!("winbind does not find {name:?}, a domain's account: it is failing"),
            ));
        }
        Err(WbcError::NotFound) => return Ok(None),
        // No winbind on this host: every account is local. Winbind that
        // answered this process before and is gone now: an error, not a
        // directory account taken for a local one.
        Err(WbcError::NotAvailable) if !wbclient::answered_before() => return Ok(None),
        Err(e) => return Err(failed(&format!("account {name:?}"), e)),
    }
    let user = wbclient::uid_to_sid(uid).map_err(|e| failed(&format!("SID for uid {uid}"), e))?;
    let groups = wbclient::user_domain_groups(&user)
        .map_err(|e| failed(&format!("groups of {name:?}"), e))?;
    let user_sid = sid_of(&user)?;
    let mut out = Vec::with_capacity(groups.len());
    for g in &groups {
        let sid = sid_of(g)?;
        // winbind lists the user's own SID first among its "groups": not a group.
        if sid == user_sid {
            continue;
        }
        let gid = match wbclient::sid_to_gid(g) {
            Ok(gid) => Some(gid),
            Err(WbcError::NotFound) => None,
            Err(e) => return Err(failed("a group's gid", e)),
        };
        if !out.iter().any(|d: &DomainGroup| d.sid == sid) {
            out.push(DomainGroup { sid, gid });
        }
    }
    Ok(Some(DomainAccount {
        sid: user_sid,
        groups: out,
    }))
}

/// The gid winbind maps a group SID to; `None` for one it does not map (a
/// group without a gid, another domain's group winbind cannot resolve), and
/// where winbind is absent.
///
/// # Errors
/// [`ErrorKind::Os`] when winbind fails otherwise.
pub fn gid_of(sid: &Sid) -> Result<Option<u32>> {
    match wbclient::sid_to_gid(&wbc_sid(sid)) {
        Ok(gid) => Ok(Some(gid)),
        Err(WbcError::NotAvailable) if wbclient::answered_before() => {
            Err(failed(&format!("gid for {sid}"), WbcError::NotAvailable))
        }
        Err(WbcError::NotFound | WbcError::NotAvailable) => Ok(None),
        Err(e) => Err(failed(&format!("gid for {sid}"), e)),
    }
}

/// Whether winbind has answered this process: the gids of domain groups come
/// from it.
#[cfg(feature = "kerberos")]
pub(crate) fn answered() -> bool {
    wbclient::answered_before()
}

/// The SID winbind maps the gid `gid` to, for a gid of a directory account that
/// is not one of its domain groups (a BUILTIN alias such as `S-1-5-32-545`);
/// `None` for a gid winbind does not map (a local group).
///
/// # Errors
/// [`ErrorKind::Os`] when winbind fails otherwise.
pub fn group_sid(gid: u32) -> Result<Option<Sid>> {
    match wbclient::gid_to_sid(gid) {
        // winbind's "Unix Group" SIDs (S-1-22-2) are the gid's own.
        Ok(sid) if sid_of(&sid)?.authority() == Sid::UNIX_AUTHORITY => Ok(None),
        // Only a group's SID: on a domain controller a gid may map to a user's
        // SID (users there have gids too), which no group ACE means. A SID
        // winbind mapped and cannot look up is a failing winbind, not "none".
        Ok(sid) => match wbclient::lookup_sid_typed(&sid) {
            Ok((_, _, kind)) if wbclient::GROUP_TYPES.contains(&kind) => sid_of(&sid).map(Some),
            Ok(_) => Ok(None),
            Err(e) => Err(failed(&format!("the type of gid {gid}'s SID"), e)),
        },
        Err(WbcError::NotAvailable) if wbclient::answered_before() => Err(failed(
            &format!("SID for gid {gid}"),
            WbcError::NotAvailable,
        )),
        Err(WbcError::NotFound | WbcError::NotAvailable) => Ok(None),
        Err(e) => Err(failed(&format!("SID for gid {gid}"), e)),
    }
}

/// Every directory SID the uid `uid` is known by (winbind's, SSSD's); empty
/// where neither knows it. What a file owned by `uid` must name besides the
/// uid's Unix SID, for the tokens of directory accounts to match.
///
/// # Errors
/// [`ErrorKind::Os`] when winbind or SSSD fails (a daemon that answered this
/// process before and is gone, a failing domain controller): no guess.
pub(crate) fn sids_of_uid(uid: u32) -> Result<Vec<Sid>> {
    let mut out = Vec::new();
    match wbclient::uid_to_sid(uid) {
        Ok(sid) => out.push(sid_of(&sid)?),
        Err(WbcError::NotAvailable) if wbclient::answered_before() => {
            return Err(failed(
                &format!("SID for uid {uid}"),
                WbcError::NotAvailable,
            ));
        }
        Err(WbcError::NotFound | WbcError::NotAvailable) => {}
        Err(e) => return Err(failed(&format!("SID for uid {uid}"), e)),
    }
    let local = || -> Result<bool> {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up uid {uid}"), e))?;
        Ok(user.is_none() || in_files("/etc/passwd", 2, &uid.to_string())?)
    };
    sss_sid(
        crate::sys::sss::sid_by_uid(uid),
        &format!("uid {uid}"),
        local,
        &mut out,
    )?;
    Ok(out)
}

/// Every directory SID the gid `gid` is known by, as [`sids_of_uid`].
///
/// # Errors
/// As [`sids_of_uid`].
pub(crate) fn sids_of_gid(gid: u32) -> Result<Vec<Sid>> {
    let mut out: Vec<Sid> = group_sid(gid)?.into_iter().collect();
    let local = || -> Result<bool> {
        let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up gid {gid}"), e))?;
        Ok(group.is_none() || in_files("/etc/group", 2, &gid.to_string())?)
    };
    sss_sid(
        crate::sys::sss::sid_by_gid(gid),
        &format!("gid {gid}"),
        local,
        &mut out,
    )?;
    Ok(out)
}

/// Adds SSSD's answer for `what` to `out`: a directory SID, if SSSD has one.
/// SSSD says "no SID" both for an id it does not have and when it does not
/// run: for an id NSS knows that is not in the local files (`local` false),
/// that is an error, never "no SID".
fn sss_sid(
    answer: Option<std::result::Result<crate::sys::sss::Answer, std::ffi::c_int>>,
    what: &str,
    local: impl FnOnce() -> Result<bool>,
    out: &mut Vec<Sid>,
) -> Result<()> {
    use crate::sys::sss::Answer;
    match answer {
        None => Ok(()),
        Some(Ok(Answer::None)) if local()? => Ok(()),
        Some(Ok(Answer::None)) => Err(Error::new(
            ErrorKind::Os,
            format!(
                "SSSD has no SID for {what}, an id not of this host's files: SSSD may not be running"
            ),
        )),
        Some(Err(e)) => Err(Error::os(
            ErrorKind::Os,
            format!("SSSD's SID for {what}"),
            e,
        )),
        Some(Ok(Answer::Sid(text))) => {
            let sid: Sid = text.parse().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidSid,
                    format!("SSSD gave {what} a malformed SID"),
                )
            })?;
            if sid.authority() != Sid::UNIX_AUTHORITY && !out.contains(&sid) {
                out.push(sid);
            }
            Ok(())
        }
    }
}

/// The domain this host is joined to, where winbind answers.
pub fn joined_domain() -> Option<Domain> {
    let (name, dns_name, sid) = wbclient::joined_domain().ok()?;
    Some(Domain {
        name,
        dns_name,
        sid: sid_of(&sid).ok()?,
    })
}

/// `DOMAIN\name` of a SID winbind knows (`LookupAccountSid` in a domain);
/// `None` where it does not, or is absent.
pub fn account_name(sid: &Sid) -> Option<String> {
    let (domain, name) = wbclient::lookup_sid(&wbc_sid(sid)).ok()?;
    match (domain.is_empty(), name.is_empty()) {
        (_, true) => None,
        (true, false) => Some(name),
        (false, false) => Some(format!("{domain}\\{name}")),
    }
}

/// Whether winbind answers on this host.
pub fn available() -> bool {
    wbclient::ping().is_ok()
}

/// Whether this host has winbind's or SSSD's client library at all: without
/// them no account is the directory's, and nothing is asked.
pub(crate) fn installed() -> bool {
    wbclient::installed() || crate::sys::sss::installed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: SSSD stops, and its "no SID" for a directory id must not leave
    /// files named by the Unix SID alone (their owner and group ACEs would no
    /// longer match the directory account's token).
    #[test]
    fn attack_sssd_saying_no_sid_for_a_directory_id_is_an_error() {
        use crate::sys::sss::Answer;
        let mut out = Vec::new();
        let not_local = || Ok(false);
        let e = sss_sid(Some(Ok(Answer::None)), "uid 70001", not_local, &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Os);
        assert!(sss_sid(Some(Ok(Answer::None)), "uid 1000", || Ok(true), &mut out).is_ok());
        assert!(sss_sid(None, "uid 70001", not_local, &mut out).is_ok());
        assert!(sss_sid(Some(Err(5)), "uid 70001", || Ok(true), &mut out).is_err());
        let sid = "S-1-5-21-1-2-3-1104";
        sss_sid(
            Some(Ok(Answer::Sid(sid.into()))),
            "uid 70001",
            not_local,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [sid.parse::<Sid>().unwrap()]);
        // A Unix SID from SSSD adds nothing.
        sss_sid(
            Some(Ok(Answer::Sid("S-1-22-1-5".into()))),
            "uid 5",
            not_local,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_sid_goes_to_winbind_and_back_unchanged() {
        for text in [
            "S-1-5-21-3458363138-77740344-954057936-1104",
            "S-1-5-32-544",
            "S-1-1-0",
        ] {
            let sid: Sid = text.parse().unwrap();
            assert_eq!(sid_of(&wbc_sid(&sid)).unwrap(), sid);
        }
        let bad = WbcDomainSid {
            sid_rev_num: 1,
            num_auths: 16,
            ..WbcDomainSid::default()
        };
        assert!(sid_of(&bad).is_err());
    }
}
