//! The calling thread's kernel credentials: reading them, switching them, and
//! restoring them.
//!
//! Every change goes through rustix's per-thread system calls
//! (`set_thread_res_uid`, `set_thread_res_gid`, `set_thread_groups`,
//! `set_capabilities`), never through the libc wrappers, which change every thread of
//! the process. Reads use `getresuid`/`getresgid`/`getgroups`/`capget`, which report
//! the calling thread.

use rustix::process::{Gid, Uid};
use rustix::thread::{self as rthread, CapabilitySet, CapabilitySets};

use crate::error::{Error, ErrorKind, Result};

/// The largest supplementary group list the kernel accepts (`NGROUPS_MAX`).
pub const MAX_GROUPS: usize = 65536;

/// uid of the sentinel identity a thread has at Identification and Anonymous level:
/// `4294967294` (`-2`), reserved by guise, no account's and not `nobody` (65534),
/// which other daemons and NFS share, so it owns nothing.
pub const SENTINEL_UID: u32 = 0xFFFF_FFFE;
/// gid of the sentinel identity (`4294967294`), no group's.
pub const SENTINEL_GID: u32 = 0xFFFF_FFFE;

/// A real, effective and saved id triple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResIds {
    /// The real id.
    pub real: u32,
    /// The effective id (the one the kernel checks; the fs id follows it).
    pub effective: u32,
    /// The saved set-id.
    pub saved: u32,
}

/// The calling thread's credentials, read from the kernel.
///
/// # Platform
/// Linux keeps these per thread. `/proc/self/status` shows the main thread's;
/// `/proc/thread-self/status` and this type show the calling thread's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadCredentials {
    /// Real, effective and saved uid.
    pub uid: ResIds,
    /// Real, effective and saved gid.
    pub gid: ResIds,
    /// Supplementary groups, sorted.
    pub groups: Vec<u32>,
    /// Effective, permitted and inheritable capabilities (see
    /// [`Self::effective_capabilities`] and the others).
    pub(crate) capabilities: CapabilitySets,
}

impl ThreadCredentials {
    /// Reads the calling thread's credentials (`getresuid`, `getresgid`, `getgroups`,
    /// `capget`).
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the kernel refuses one of the reads.
    pub fn current() -> Result<ThreadCredentials> {
        fn os<E: crate::error::SysErrno>(what: &'static str) -> impl Fn(E) -> Error {
            move |e| Error::sys(ErrorKind::Os, what, e)
        }
        let u = nix::unistd::getresuid().map_err(os("getresuid"))?;
        let g = nix::unistd::getresgid().map_err(os("getresgid"))?;
        let mut groups: Vec<u32> = rustix::process::getgroups()
            .map_err(os("getgroups"))?
            .into_iter()
            .map(Gid::as_raw)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        let capabilities = rthread::capabilities(None).map_err(os("capget"))?;
        Ok(ThreadCredentials {
            uid: ResIds {
                real: u.real.as_raw(),
                effective: u.effective.as_raw(),
                saved: u.saved.as_raw(),
            },
            gid: ResIds {
                real: g.real.as_raw(),
                effective: g.effective.as_raw(),
                saved: g.saved.as_raw(),
            },
            groups,
            capabilities,
        })
    }

    /// The effective capabilities: those the kernel checks.
    pub fn effective_capabilities(&self) -> crate::privilege::Capabilities {
        crate::privilege::Capabilities::from_set(self.capabilities.effective)
    }

    /// The permitted capabilities: those the thread may make effective.
    pub fn permitted_capabilities(&self) -> crate::privilege::Capabilities {
        crate::privilege::Capabilities::from_set(self.capabilities.permitted)
    }

    /// The inheritable capabilities.
    pub fn inheritable_capabilities(&self) -> crate::privilege::Capabilities {
        crate::privilege::Capabilities::from_set(self.capabilities.inheritable)
    }

    /// Whether these credentials may change the thread's ids: `CAP_SETUID` and
    /// `CAP_SETGID` in the *effective* set, the Linux form of an enabled
    /// SeImpersonatePrivilege. Held but not effective counts as absent, as a
    /// disabled privilege does on Windows.
    pub fn can_change_identity(&self) -> bool {
        self.capabilities
            .effective
            .contains(CapabilitySet::SETUID | CapabilitySet::SETGID)
    }

    /// The identity these credentials give the kernel: effective ids and
    /// capabilities.
    pub(crate) fn os_identity(&self) -> OsIdentity {
        OsIdentity {
            uid: self.uid.effective,
            gid: self.gid.effective,
            groups: self.groups.as_slice().into(),
            capabilities: self.capabilities.effective,
        }
    }
}

thread_local! {
    /// How many of this thread's switches and reverts were read back in full.
    static VERIFIED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Room to read the thread's groups back after a switch, kept between switches.
    static SCRATCH: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks that the calling thread's credentials are exactly these, reading them
/// back from the kernel (`getresuid`, `getresgid`, `getgroups`, `capget`) without
/// allocating (after the first time).
///
/// Once a switch and a revert of this thread were read back in full, the kernel
/// has shown that its credential calls on this thread are real (no filter fakes
/// their success): from then on each call's own result counts, and one read shows
/// that the uid change took effect. `uid_shown` says that read was made already:
/// the effective capabilities, which the kernel itself empties when the effective
/// uid leaves 0 and fills when it comes back (see [`caps_after_uid`]), were read
/// and were as expected. Otherwise the effective uid and gid are read back.
///
/// # Errors
/// [`ErrorKind::Os`] naming what differs, or a read that failed.
pub(crate) fn verify(
    uid: ResIds,
    gid: ResIds,
    groups: &[u32],
    caps: CapabilitySets,
    uid_shown: bool,
) -> Result<()> {
    if VERIFIED.get() >= 2 {
        if uid_shown {
            return Ok(());
        }
        let (euid, egid) = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        if (euid, egid) != (uid.effective, gid.effective) {
            VERIFIED.set(0);
            return Err(Error::new(
                ErrorKind::Os,
                format!(
                    "the kernel has effective uid {euid} and gid {egid}; expected {} and {}",
                    uid.effective, gid.effective
                ),
            ));
        }
        return Ok(());
    }
    verify_all(uid, gid, groups, caps)?;
    VERIFIED.set(VERIFIED.get() + 1);
    Ok(())
}

/// As [`verify`], reading back every credential.
fn verify_all(uid: ResIds, gid: ResIds, groups: &[u32], caps: CapabilitySets) -> Result<()> {
    let u = nix::unistd::getresuid().map_err(|e| Error::sys(ErrorKind::Os, "getresuid", e))?;
    let g = nix::unistd::getresgid().map_err(|e| Error::sys(ErrorKind::Os, "getresgid", e))?;
    let now_caps =
        rthread::capabilities(None).map_err(|e| Error::sys(ErrorKind::Os, "capget", e))?;
    let same_groups = SCRATCH.with_borrow_mut(|buf| {
        if buf.len() < groups.len() + 1 {
            buf.resize(groups.len() + 1, 0);
        }
        let n = crate::sys::creds::getgroups_into(buf)
            .map_err(|e| Error::sys(ErrorKind::Os, "getgroups", &e))?;
        // The kernel keeps groups sorted; so are ours.
        Ok::<_, Error>(buf[..n] == *groups)
    })?;
    let ids = |r: nix::unistd::ResUid| (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw());
    let gids = |r: nix::unistd::ResGid| (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw());
    if ids(u) != (uid.real, uid.effective, uid.saved)
        || gids(g) != (gid.real, gid.effective, gid.saved)
        || !same_groups
        || now_caps != caps
    {
        // Words, not Rust debug text: real/effective/saved ids, capability names.
        let three = |(r, e, s): (u32, u32, u32)| format!("{r}/{e}/{s}");
        let set = |c: CapabilitySet| {
            let names = crate::privilege::Capabilities::from_set(c).names();
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(" ")
            }
        };
        let sets = |c: &CapabilitySets| {
            format!(
                "effective {}, permitted {}, inheritable {}",
                set(c.effective),
                set(c.permitted),
                set(c.inheritable)
            )
        };
        let list = |g: &[u32]| g.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        return Err(Error::new(
            ErrorKind::Os,
            format!(
                "the kernel has uid {}, gid {} (real/effective/saved), capabilities {} (groups as expected: {same_groups}); expected uid {}, gid {}, groups {}, capabilities {}",
                three(ids(u)),
                three(gids(g)),
                sets(&now_caps),
                three((uid.real, uid.effective, uid.saved)),
                three((gid.real, gid.effective, gid.saved)),
                list(groups),
                sets(&caps)
            ),
        ));
    }
    Ok(())
}

/// Prepares a thread whose own credentials are `server` for switching: a server
/// none of whose real and saved uids is 0 (a service account holding
/// `CAP_SETUID`/`CAP_SETGID`) keeps its capabilities when it comes back from
/// impersonating uid 0 (`PR_SET_KEEPCAPS`, a per-thread flag): otherwise the kernel
/// would drop its permitted set as every uid of the thread leaves 0, and the
/// revert could not restore it.
///
/// # Errors
/// [`ErrorKind::Os`] if the flag cannot be set: the thread must not impersonate
/// then.
pub(crate) fn prepare_thread(server: &ThreadCredentials) -> Result<()> {
    if server.uid.real != 0 && server.uid.saved != 0 && !server.capabilities.permitted.is_empty() {
        rthread::set_keep_capabilities(true)
            .map_err(|e| Error::sys(ErrorKind::Os, "PR_SET_KEEPCAPS", e))?;
    }
    Ok(())
}

/// What a thread looks like to the kernel while it impersonates: effective uid and
/// gid, supplementary groups (sorted, no duplicates), effective capabilities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OsIdentity {
    pub uid: u32,
    pub gid: u32,
    pub groups: std::sync::Arc<[u32]>,
    pub capabilities: CapabilitySet,
}

/// Checks ids before they reach the kernel: `-1` means "unchanged" to the set-id
/// calls, so a uid or gid of `u32::MAX` would leave the thread as it was.
pub(crate) fn validate_ids(uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
    let bad = |what: String| Err(Error::new(ErrorKind::InvalidParameter, what));
    if uid == u32::MAX {
        return bad("uid 4294967295 (-1) is not a valid user id".into());
    }
    if gid == u32::MAX {
        return bad("gid 4294967295 (-1) is not a valid group id".into());
    }
    if groups.contains(&u32::MAX) {
        return bad("group 4294967295 (-1) is not a valid group id".into());
    }
    if groups.len() > MAX_GROUPS {
        return bad(format!(
            "{} supplementary groups; the kernel allows at most {MAX_GROUPS}",
            groups.len()
        ));
    }
    Ok(())
}

/// The same groups as rustix's `Gid`s, without copying: a switch allocates nothing.
fn to_gids(groups: &[u32]) -> &[Gid] {
    crate::sys::creds::as_gids(groups)
}

/// Switches the calling thread from `server` (its current credentials) to `target`,
/// following the order of the recipe: groups, gid, uid, capabilities, verify. Only
/// the effective ids change; real and saved ids stay the server's.
///
/// On failure the thread is restored to `server` (or the process aborts) and the
/// error is returned.
pub(crate) fn switch(server: &ThreadCredentials, target: &OsIdentity) -> Result<()> {
    validate_ids(target.uid, target.gid, &target.groups)?;
    let result = apply(server, target);
    back_on_failure(server, result)
}

/// Switches the calling thread from `from`, an identity it impersonates now, straight
/// to `target`, without reverting in between: back to the server's uid and
/// capabilities (always allowed, and what the next calls need), then only the
/// groups and gid that differ, then the uid and capabilities; then verify. Real and
/// saved ids stay the server's.
///
/// On failure the thread is restored to `server` (or the process aborts) and the
/// error is returned.
pub(crate) fn switch_from(
    server: &ThreadCredentials,
    from: &OsIdentity,
    target: &OsIdentity,
) -> Result<()> {
    validate_ids(target.uid, target.gid, &target.groups)?;
    let os = |what: &'static str| {
        move |e| Error::sys(ErrorKind::Os, format!("cannot impersonate: {what}"), e)
    };
    let result = (|| {
        if from.uid != server.uid.effective {
            rthread::set_thread_res_uid(None, Uid::from_raw(server.uid.effective), None)
                .map_err(os("setresuid back"))?;
        }
        caps_after_uid(
            server,
            from.uid,
            server.uid.effective,
            from.capabilities & server.capabilities.permitted,
            server.capabilities,
        )
        .map_err(os("capset back"))?;
        if target.groups != from.groups {
            rthread::set_thread_groups(to_gids(&target.groups)).map_err(os("setgroups"))?;
        }
        if target.gid != from.gid {
            rthread::set_thread_res_gid(None, Gid::from_raw(target.gid), None)
                .map_err(os("setresgid"))?;
        }
        finish_switch(server, target)
    })();
    back_on_failure(server, result)
}

fn apply(server: &ThreadCredentials, target: &OsIdentity) -> Result<()> {
    let os = |what: &'static str| {
        move |e| Error::sys(ErrorKind::Os, format!("cannot impersonate: {what}"), e)
    };
    if target.groups[..] != server.groups[..] {
        rthread::set_thread_groups(to_gids(&target.groups)).map_err(os("setgroups"))?;
    }
    if target.gid != server.gid.effective {
        rthread::set_thread_res_gid(None, Gid::from_raw(target.gid), None)
            .map_err(os("setresgid"))?;
    }
    finish_switch(server, target)
}

/// After a switch: if it failed, the thread (which may be anywhere between the
/// identities) is put back on `server`, or the process aborts.
fn back_on_failure(server: &ThreadCredentials, result: Result<()>) -> Result<()> {
    if result.is_err() {
        match ThreadCredentials::current() {
            Ok(now) => restore(server, &now.os_identity()),
            Err(e) => fatal(
                "cannot read the thread's credentials after a failed switch",
                &e,
            ),
        }
    }
    result
}

/// The end of every switch: the uid, then the capabilities (the token's enabled
/// privileges that the server holds), then the verification.
fn finish_switch(server: &ThreadCredentials, target: &OsIdentity) -> Result<()> {
    let os = |what: &'static str| {
        move |e| Error::sys(ErrorKind::Os, format!("cannot impersonate: {what}"), e)
    };
    if target.uid != server.uid.effective {
        rthread::set_thread_res_uid(None, Uid::from_raw(target.uid), None)
            .map_err(os("setresuid"))?;
    }
    let caps = CapabilitySets {
        effective: target.capabilities & server.capabilities.permitted,
        ..server.capabilities
    };
    // From the server's uid, or (switching straight from another identity) from
    // the server's uid again after the step back.
    let uid_shown = caps_after_uid(
        server,
        server.uid.effective,
        target.uid,
        server.capabilities.effective,
        caps,
    )
    .map_err(os("capset"))?;
    verify(
        ResIds {
            effective: target.uid,
            ..server.uid
        },
        ResIds {
            effective: target.gid,
            ..server.gid
        },
        &target.groups,
        caps,
        uid_shown,
    )
    .map_err(|e| Error::with_source(ErrorKind::Os, "impersonation did not take effect", e))
}

/// Gives the calling thread the capabilities `want` after its effective uid went
/// from `from_uid` to `to_uid` (the server's real and saved uids unchanged).
/// Returns whether the capabilities read back show that the uid change took
/// effect.
///
/// The kernel itself adjusts the effective set when the effective uid leaves or
/// reaches 0 (unless `SECBIT_NO_SETUID_FIXUP` is set): leaving 0 empties it,
/// reaching 0 makes it the permitted set. Where that is exactly `want`, and this
/// thread's switches were already read back in full ([`verify`]), the
/// capabilities are read (`capget`, cheaper than `capset`) instead of set: seeing
/// the set the kernel's adjustment gives, where before the change it was another,
/// is a real check that the uid changed. If they are not `want` (the securebits
/// changed), they are set, and the next switches are read back in full again.
fn caps_after_uid(
    server: &ThreadCredentials,
    from_uid: u32,
    to_uid: u32,
    before: CapabilitySet,
    want: CapabilitySets,
) -> rustix::io::Result<bool> {
    let have = server.capabilities;
    let kernel_gives = match (from_uid == 0, to_uid == 0) {
        (true, false) => CapabilitySets {
            effective: CapabilitySet::empty(),
            ..have
        },
        (false, true) => CapabilitySets {
            effective: have.permitted,
            ..have
        },
        _ => return rthread::set_capabilities(None, want).map(|()| false),
    };
    // The adjustment shows only if it changes the effective set the thread had
    // before (`before`): then reading it back is a real check of the uid change.
    let shows = kernel_gives.effective != before;
    if VERIFIED.get() >= 2 && kernel_gives == want && shows {
        if rthread::capabilities(None)? == want {
            return Ok(true);
        }
        VERIFIED.set(0);
    }
    rthread::set_capabilities(None, want).map(|()| false)
}

/// Restores the calling thread to `server` from `from` (what it is now): uid first
/// (always allowed: it is the real/saved uid), then capabilities, gid and groups, then
/// verifies. Any failure aborts the process: a thread must never go on under a wrong
/// identity.
pub(crate) fn restore(server: &ThreadCredentials, from: &OsIdentity) {
    if let Err(e) = try_restore(server, from) {
        fatal("revert", &e);
    }
}

/// As [`restore`], returning the error instead of aborting: for a new thread that
/// must reach the process identity before it runs anything, and may end instead.
pub(crate) fn try_restore(server: &ThreadCredentials, from: &OsIdentity) -> Result<()> {
    let step = |what: &'static str, r: rustix::io::Result<()>| {
        r.map_err(|e| Error::sys(ErrorKind::Os, format!("revert: {what}"), e))
    };
    if from.uid != server.uid.effective {
        step(
            "setresuid",
            rthread::set_thread_res_uid(None, Uid::from_raw(server.uid.effective), None),
        )?;
    }
    let uid_shown = caps_after_uid(
        server,
        from.uid,
        server.uid.effective,
        from.capabilities & server.capabilities.permitted,
        server.capabilities,
    )
    .map_err(|e| Error::sys(ErrorKind::Os, "revert: capset", e))?;
    if from.gid != server.gid.effective {
        step(
            "setresgid",
            rthread::set_thread_res_gid(None, Gid::from_raw(server.gid.effective), None),
        )?;
    }
    if from.groups[..] != server.groups[..] {
        step(
            "setgroups",
            rthread::set_thread_groups(to_gids(&server.groups)),
        )?;
    }
    verify(
        server.uid,
        server.gid,
        &server.groups,
        server.capabilities,
        uid_shown,
    )
    .map_err(|e| Error::with_source(ErrorKind::Os, "revert verification", e))
}

/// Reports a credential failure that cannot be undone and aborts the process.
pub(crate) fn fatal(what: &str, err: &Error) -> ! {
    tracing::error!(%err, "guise: cannot restore thread credentials ({what}); aborting");
    eprintln!("guise: cannot restore thread credentials ({what}): {err}; aborting");
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_minus_one_and_too_many_groups() {
        assert!(validate_ids(1, 1, &[1, 2]).is_ok());
        for (u, g, gs) in [
            (u32::MAX, 1, vec![]),
            (1, u32::MAX, vec![]),
            (1, 1, vec![3, u32::MAX]),
            (1, 1, (0..=MAX_GROUPS as u32).collect()),
        ] {
            let e = validate_ids(u, g, &gs).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        }
    }

    #[test]
    fn reads_this_thread() {
        let c = ThreadCredentials::current().unwrap();
        assert_eq!(c.uid.effective, rustix::process::geteuid().as_raw());
        assert_eq!(c.gid.effective, rustix::process::getegid().as_raw());
        assert!(c.groups.windows(2).all(|w| w[0] < w[1]));
    }
}
