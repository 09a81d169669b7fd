//! Other threads: SetThreadToken and OpenThreadToken through a [`ThreadHandle`],
//! and holding a thread steady against them.

use std::cell::RefCell;

use super::*;

/// The record of a thread that other threads may set a token on.
pub(super) struct Registered {
    pub(super) slot: std::sync::Arc<crate::sys::remote::Slot>,
    /// The thread's own credentials (the process identity) and umask.
    pub(super) home: ThreadCredentials,
    pub(super) home_umask: u32,
    /// What the thread impersonates now, for OpenThreadToken from other threads.
    /// Stamped with the number of other threads' requests applied when it was
    /// recorded: an asker whose request was applied records it only if nothing
    /// newer (the thread's own change after it) already did.
    pub(super) current: std::sync::Mutex<(u64, Option<Token>)>,
    /// What other threads' SetThreadToken requests put on it, by the number the
    /// thread's applied count has once the request is applied: the token at the
    /// level it got and the identity the kernel sees (`None`: reverted). Entries
    /// stay until the thread has taken them into account.
    pub(super) remote:
        std::sync::Mutex<std::collections::BTreeMap<u64, Option<(Token, OsIdentity)>>>,
    /// One asker at a time.
    pub(super) ask: std::sync::Mutex<()>,
}

/// Marks the thread's record ended when the thread ends.
struct Farewell(std::sync::Arc<crate::sys::remote::Slot>);

impl Drop for Farewell {
    fn drop(&mut self) {
        self.0.gone();
    }
}

thread_local! {
    static FAREWELL: RefCell<Option<Farewell>> = const { RefCell::new(None) };
}

thread_local! {
    /// How many [`Steady`] guards the thread holds.
    static STEADY: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether the calling thread has a handle for SetThreadToken from other
/// threads (its credentials to come back to are fixed then).
pub(super) fn is_registered() -> bool {
    REGISTERED.with_borrow(Option::is_some)
}

/// While alive, no other thread's SetThreadToken changes this thread's credentials:
/// a request waits, and is applied when the outermost guard goes. Guise holds one
/// across every read, decision and change of the thread's credentials (and across
/// what it does as the process, or in preparing a child process), so that none
/// is torn or decided on stale credentials.
pub(crate) struct Steady(Option<std::sync::Arc<Registered>>);

/// Holds the calling thread steady (see [`Steady`]) and brings its bookkeeping up
/// to date first.
pub(crate) fn steady() -> Steady {
    let reg = REGISTERED.with_borrow(Clone::clone);
    if let Some(r) = &reg {
        if STEADY.get() == 0 {
            r.slot.enter();
        }
        STEADY.set(STEADY.get() + 1);
    }
    // Once busy, no request can land: what landed before is taken in now.
    reconcile();
    Steady(reg)
}

impl Drop for Steady {
    fn drop(&mut self) {
        if let Some(r) = &self.0 {
            let depth = STEADY.get() - 1;
            STEADY.set(depth);
            if depth == 0 {
                r.slot.leave();
            }
        }
    }
}

/// Brings this thread's bookkeeping up to what other threads' SetThreadToken did to
/// its credentials: the last such token replaces whatever the thread impersonated
/// (as a SetThreadToken of its own would), and the guards that were live then
/// revert it to its own identity when the first of them is dropped.
pub(super) fn reconcile() {
    let Some(reg) = REGISTERED.with_borrow(Clone::clone) else {
        return;
    };
    if reg.slot.applied() == SEEN.get() {
        return;
    }
    let remote = {
        let mut requests = reg.remote.lock().unwrap_or_else(|p| p.into_inner());
        // Read under the lock: an asker prunes only requests older than the count
        // it reads under the same lock.
        let applied = reg.slot.applied();
        SEEN.set(applied);
        let Some(remote) = requests.get(&applied).cloned() else {
            cred::fatal(
                "following another thread's SetThreadToken",
                &Error::new(ErrorKind::Os, format!("no record of request {applied}")),
            );
        };
        requests.retain(|n, _| *n > applied);
        remote
    };
    ACTIVE.with_borrow_mut(|active| {
        *active = remote.as_ref().map(|(token, applied)| Active {
            token: Rc::new(token.clone()),
            server: Rc::new(reg.home.clone()),
            applied: applied.clone(),
            umask: rules::creates_nothing_usable(
                token
                    .impersonation_level()
                    .unwrap_or(ImpersonationLevel::Impersonation),
                applied,
            )
            .then(|| rustix::fs::Mode::from_raw_mode(reg.home_umask)),
        });
    });
    WANTED.with_borrow_mut(|w| {
        let live: Vec<u64> = w.guards.drain(..).map(|(id, _)| id).collect();
        w.revert_on_drop.extend(live);
        w.base = remote.map(|(token, _)| Rc::new(token));
    });
    #[cfg(feature = "kerberos")]
    super::gss::follows();
}

/// A handle to a thread started with [`spawn`], through which other threads set
/// and read its impersonation token (the thread handle of [`SetThreadToken`] and
/// [`OpenThreadToken`]). It can be sent to any thread.
///
/// [`SetThreadToken`]: https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-setthreadtoken
/// [`OpenThreadToken`]: https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-openthreadtoken
#[doc(alias = "GetCurrentThread")]
#[derive(Clone)]
pub struct ThreadHandle(std::sync::Arc<Registered>);

impl std::fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadHandle")
            .field("uid", &self.0.home.uid.effective)
            .finish()
    }
}

/// How long SetThreadToken waits for the target thread to take the token up.
const REMOTE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl ThreadHandle {
    /// The handle of the calling thread, which must have been started with
    /// [`spawn`] and must not impersonate. The thread gets an fs context of its own
    /// (its umask follows its token).
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] on a thread [`spawn`] did not start, or one
    /// that impersonates; [`ErrorKind::Os`] if the kernel refuses the set-up (a
    /// private fs context, the signal SetThreadToken uses).
    pub fn current() -> Result<ThreadHandle> {
        if let Some(reg) = REGISTERED.with_borrow(Clone::clone) {
            return Ok(ThreadHandle(reg));
        }
        if !SPAWNED.get() {
            return Err(Error::new(
                ErrorKind::CannotImpersonate,
                "only a thread started with guise::thread::spawn has a handle for SetThreadToken",
            ));
        }
        if is_impersonating() {
            return Err(Error::new(
                ErrorKind::CannotImpersonate,
                "take the handle before the thread impersonates",
            ));
        }
        unshare_fs_context()?;
        let home = ThreadCredentials::current()?;
        cred::prepare_thread(&home)?;
        let home_umask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        rustix::process::umask(home_umask);
        let slot = crate::sys::remote::Slot::for_current_thread().map_err(|e| {
            Error::sys(
                ErrorKind::Os,
                "the signal of SetThreadToken on other threads",
                &e,
            )
        })?;
        FAREWELL.with_borrow_mut(|f| *f = Some(Farewell(std::sync::Arc::clone(&slot))));
        let reg = std::sync::Arc::new(Registered {
            slot,
            home,
            home_umask: home_umask.bits(),
            current: std::sync::Mutex::new((0, None)),
            remote: std::sync::Mutex::default(),
            ask: std::sync::Mutex::new(()),
        });
        REGISTERED.with_borrow_mut(|r| *r = Some(std::sync::Arc::clone(&reg)));
        Ok(ThreadHandle(reg))
    }

    /// Whether this is the calling thread's handle.
    fn is_current(&self) -> bool {
        REGISTERED.with_borrow(|r| {
            r.as_ref()
                .is_some_and(|r| std::sync::Arc::ptr_eq(r, &self.0))
        })
    }

    /// Sets the thread's impersonation token ([`SetThreadToken`] with this
    /// thread's handle); `None` reverts it. It takes effect in the thread at once,
    /// whatever it is doing (a signal whose handler makes only the raw credential
    /// system calls, verifies them and aborts the process if they did not take;
    /// during a credential change of the thread's own, right after it). It replaces
    /// what the thread impersonated; a guard of the thread's that was live then
    /// reverts the thread to its own identity when dropped. The level the thread
    /// gets follows the same rules as on the calling thread (see the [module
    /// documentation](crate::thread)).
    ///
    /// # Errors
    /// - [`ErrorKind::BadTokenType`] for a primary token.
    /// - [`ErrorKind::InvalidParameter`] for ids the kernel would misread, or a
    ///   thread that has ended.
    /// - [`ErrorKind::CannotImpersonate`] below Impersonation level for a thread
    ///   whose server holds `CAP_SETUID`/`CAP_SETGID` but not `CAP_SYS_CHROOT` (it
    ///   could not be kept from opening by path; see the [module
    ///   documentation](crate::thread#the-sentinel-identity)), or if the empty directory
    ///   cannot be made; the thread is then unchanged.
    /// - [`ErrorKind::Os`] if the thread did not take the token up in time, or
    ///   could not (no descriptor left to keep its root and cwd); it is then
    ///   unchanged.
    ///
    /// [`SetThreadToken`]: https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-setthreadtoken
    #[doc(alias = "SetThreadToken")]
    pub fn set_thread_token(&self, token: Option<&Token>) -> Result<()> {
        if self.is_current() {
            return set_thread_token(token);
        }
        let reg = &self.0;
        let home = &reg.home;
        let wanted = match token {
            None => None,
            Some(t) => {
                rules::may_set_thread_token(t)?;
                let target = rules::thread_target(t, home);
                Some((target.token, target.applied, target.below))
            }
        };
        // Below Impersonation level the thread's root and cwd are the empty
        // directory, as on the thread itself; a server that could switch but not
        // chroot is refused here, the thread unchanged.
        let root = match &wanted {
            Some((_, _, below)) if rules::confines(home, *below)? => {
                Some(std::os::fd::AsRawFd::as_raw_fd(&empty_root()?))
            }
            _ => None,
        };
        let identity = |os: &OsIdentity, umask: u32| crate::sys::remote::Identity {
            uid: os.uid,
            gid: os.gid,
            groups: os
                .groups
                .iter()
                .map(|&g| rustix::process::Gid::from_raw(g))
                .collect(),
            capabilities: rustix::thread::CapabilitySets {
                effective: os.capabilities & home.capabilities.permitted,
                ..home.capabilities
            },
            umask,
            root: None,
        };
        let target = match &wanted {
            Some((_, applied, below)) => crate::sys::remote::Identity {
                root,
                ..identity(applied, if *below { 0o777 } else { reg.home_umask })
            },
            None => identity(&home.os_identity(), reg.home_umask),
        };
        let request =
            crate::sys::remote::Request::new(identity(&home.os_identity(), reg.home_umask), target);
        let _one = reg.ask.lock().unwrap_or_else(|p| p.into_inner());
        // Only requests change the applied count, and askers take turns: this
        // request, once applied, is number `n`.
        let n = {
            let mut requests = reg.remote.lock().unwrap_or_else(|p| p.into_inner());
            let applied = reg.slot.applied();
            // Requests the thread has gone past are of no more use.
            requests.retain(|k, _| *k >= applied);
            requests.insert(
                applied + 1,
                wanted.as_ref().map(|(t, a, _)| (t.clone(), a.clone())),
            );
            applied + 1
        };
        match reg.slot.request(request, REMOTE_LIMIT) {
            Ok(()) => {
                let mut current = reg.current.lock().unwrap_or_else(|p| p.into_inner());
                if current.0 < n {
                    *current = (n, wanted.map(|(t, _, _)| t));
                }
                Ok(())
            }
            Err(e) => {
                reg.remote
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&n);
                let kind = if e.raw_os_error() == Some(libc::ESRCH) {
                    ErrorKind::InvalidParameter
                } else {
                    ErrorKind::Os
                };
                Err(Error::sys(kind, "SetThreadToken on another thread", &e))
            }
        }
    }

    /// The thread's impersonation token ([`OpenThreadToken`] with this thread's
    /// handle, checked as the process): the token at the level the thread got.
    ///
    /// # Errors
    /// - [`ErrorKind::NoToken`] if the thread does not impersonate.
    /// - [`ErrorKind::CantOpenAnonymous`] if it impersonates at Anonymous level.
    ///
    /// [`OpenThreadToken`]: https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-openthreadtoken
    #[doc(alias = "OpenThreadToken")]
    pub fn open_thread_token(&self) -> Result<Token> {
        let token = if self.is_current() {
            current_token()
        } else {
            self.0
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .1
                .clone()
        };
        // Another thread's token is opened as the process: the same rule as the
        // calling thread's with `open_as_self`.
        rules::open_thread_token(token, true)
    }
}
