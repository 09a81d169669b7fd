//! Thread impersonation: a thread acts as a token, and the kernel enforces it.
//!
//! Impersonation changes only the calling thread's credentials (its effective uid
//! and gid, supplementary groups and effective capabilities); other threads are
//! never affected. The real and saved uid and gid stay the server's, so the thread
//! can always switch back, and the client's own processes cannot signal it.
//!
//! | level             | what the kernel sees while the thread impersonates |
//! |-------------------|----------------------------------------------------|
//! | Anonymous         | the sentinel: uid and gid 4294967294, no groups, no capabilities, umask 0777, and an empty directory as fs root and cwd |
//! | Identification    | the sentinel, as for Anonymous                     |
//! | Impersonation     | the token's uid, gid and groups; capabilities of its enabled privileges that the server holds |
//! | Delegation        | as Impersonation (no network credentials yet)      |
//!
//! A server that cannot change ids (no `CAP_SETUID`/`CAP_SETGID` in its effective
//! set, the Linux form of an enabled SeImpersonatePrivilege; held but not effective
//! counts as absent, as a disabled privilege does on Windows) gets Identification
//! level for any token but its own identity's (Windows' rule since Windows 2000
//! SP4, which also exempts the process's own LogonUser tokens: on Linux those of
//! another account need the capabilities all the same). Such a server cannot put the thread on the
//! sentinel either: at Identification and Anonymous level its thread keeps the
//! server's ids with **no** effective capabilities and umask 0777 (and the empty
//! root if the server holds `CAP_SYS_CHROOT`; see below). It never gains the
//! client's identity.
//!
//! # The sentinel identity
//! At Identification and Anonymous level Windows lets a thread open no object (and
//! ANONYMOUS LOGON is not Everyone). On Linux the kernel sees the sentinel: uid and
//! gid 4294967294, which no account has (not `nobody`, which other daemons and NFS
//! share), no supplementary groups, no capabilities, and umask 0777, so that a file
//! it creates has mode 0000. The thread gets a private fs context
//! ([`unshare_fs_context`]) the first time it goes below Impersonation level.
//!
//! Ids alone would still let the sentinel open what any user may ("other"
//! bits): while the thread is below Impersonation level (the rule
//! `rules::creates_nothing_usable`: Identification and Anonymous level, and the
//! anonymous token at any level), its fs **root and cwd are an empty directory**,
//! so it reaches nothing by path, as a worker of the pool's Landlock sandbox. The
//! directory is made once per process (under `/run`, else the temporary
//! directory), kept open and removed at once: nothing can ever be created in it,
//! and nothing of it stays on disk. The thread enters it (`fchdir`, `chroot(".")`)
//! at its own credentials, just before it takes the sentinel's, keeping its root
//! and cwd open (`O_PATH`); when it leaves that state (a revert, or a token at
//! Impersonation level) its own credentials come back first, then exactly the
//! root and cwd it had; if they cannot, the process aborts, as for a credential
//! that cannot be restored. Another thread's [`ThreadHandle::set_thread_token`]
//! does the same, and the two share the saved root and cwd: a thread put below by
//! another may revert itself, and the reverse. A thread that [`spawn`] starts from
//! such a thread starts at the root and cwd its creator comes back to.
//!
//! - The chroot needs `CAP_SYS_CHROOT` in the server's effective set. A server
//!   that holds `CAP_SETUID`/`CAP_SETGID` but not it is **refused** below
//!   Impersonation level ([`ErrorKind::CannotImpersonate`]), rather than leave
//!   the sentinel what anyone may open. A server that holds none of them keeps its
//!   own ids there, without capabilities and without the empty root.
//! - What is opened before (descriptors) stays usable: the thread acts on them
//!   with its credentials of the moment. A log sink that opens a path at each
//!   event (a rolling file, `syslog` before its first message) cannot from such a
//!   thread; nor can a name lookup (NSS files, the `nscd` socket), which then
//!   finds no account. `/proc` is not there either.
//! - Threads that share the thread's fs context (made by `std::thread::spawn`
//!   from it: see below) share its root and cwd, as they share its umask.
//!
//! Every thread at these levels shares the sentinel, so a file one of them creates
//! through a descriptor it was given is the sentinel's. Call
//! [`check_open_as_client`] before opening objects as a client, as Windows' object
//! manager does.
//!
//! # Threads created while impersonating
//! Linux gives a new thread its creator's credentials; Windows gives it the process
//! token. [`spawn`] and [`on_thread_start`] start threads at the process identity.
//! A thread that reaches guise in another identity without impersonating through
//! it (made by `std::thread::spawn` from an impersonating thread) is refused with
//! [`ErrorKind::CannotImpersonate`]; processes it starts and the process token it
//! opens are the process's.
//!
//! # Other threads
//! [`ThreadHandle::set_thread_token`] (SetThreadToken with another thread's handle)
//! changes the target thread's credentials at once, whatever it is doing, and no
//! other thread's; `None` reverts it; [`ThreadHandle::open_thread_token`] reads its
//! token. The target must have been started with [`spawn`] and taken its handle
//! with [`ThreadHandle::current`]. A real-time signal (`SIGRTMIN+10`) runs a
//! handler on the target that makes only the raw credential system calls, verifies
//! them and aborts the process if they did not take; a target in the middle of its
//! own switch applies the request right after it. What the target impersonated is
//! replaced, as by a SetThreadToken of its own; a guard it held then reverts it to
//! its own identity when dropped.
//!
//! # Reverting
//! [`revert_to_self`], and the drop of an [`Impersonation`] guard, restore the
//! thread's credentials and verify them. If that fails the process aborts: no thread
//! goes on under a wrong identity.
//!
//! # Platform
//! - Any uid change clears the process's "dumpable" flag for good: no core dumps,
//!   and attaching a debugger needs `CAP_SYS_PTRACE`.
//! - Threads inherit the *current* credentials of the thread that creates them:
//!   start worker threads before impersonating, never while.
//! - `fork` from an impersonating thread copies its mixed credentials; see
//!   `docs/threat-model.md`.
//! - Nothing in the process may call the libc credential setters (`setuid`,
//!   `seteuid`, `setgroups`, `initgroups`, ...) once threads exist: glibc applies them
//!   to every thread, overwriting every impersonation.
//!
//! # Example
//! ```
//! use guise::{ErrorKind, ImpersonationLevel};
//!
//! // ImpersonateSelf at Identification level: the thread may inspect its token but
//! // open nothing as it.
//! let guard = guise::impersonate_self(ImpersonationLevel::Identification)?;
//! let token = guise::open_thread_token(true)?; // OpenThreadToken
//! assert_eq!(token.impersonation_level(), Some(ImpersonationLevel::Identification));
//! let refused = guise::thread::check_open_as_client().unwrap_err();
//! assert_eq!(refused.kind(), ErrorKind::BadImpersonationLevel);
//! drop(guard); // RevertToSelf
//! assert_eq!(guise::open_thread_token(true).unwrap_err().kind(), ErrorKind::NoToken);
//! # Ok::<(), guise::Error>(())
//! ```

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

#[cfg(feature = "kerberos")]
mod gss;
mod handle;
pub(crate) mod rules;

#[cfg(feature = "kerberos")]
pub(crate) use gss::{with_gss_cache, without_delegated_credentials};
pub use handle::ThreadHandle;
pub(crate) use handle::steady;
use handle::{Registered, reconcile};

use crate::cred::{self, OsIdentity};
use crate::error::{Error, ErrorKind, Result};
use crate::token::{ImpersonationLevel, Token, TokenType};

pub use crate::cred::{MAX_GROUPS, ResIds, ThreadCredentials};

/// An impersonating thread's state.
struct Active {
    /// The thread token, at the level the thread actually got.
    token: Rc<Token>,
    /// The thread's credentials before it impersonated.
    server: Rc<ThreadCredentials>,
    /// What was put on the thread.
    applied: OsIdentity,
    /// The thread's umask before it impersonated below Impersonation level (then
    /// 0777 while it does).
    umask: Option<rustix::fs::Mode>,
}

impl Active {
    /// Whether the thread is below Impersonation level ([`rules::creates_nothing_usable`]).
    fn below(&self) -> bool {
        self.umask.is_some()
    }

    /// Puts the thread back on its own credentials, root and cwd (or aborts) and
    /// returns them.
    fn leave(self) -> Rc<ThreadCredentials> {
        cred::restore(&self.server, &self.applied);
        release_fs();
        crate::audit::revert(self.server.uid.effective, &self.token, self.applied.uid);
        if let Some(mask) = self.umask {
            rustix::process::umask(mask);
        }
        self.server
    }
}

/// What the thread should impersonate: the token of the newest live guard, else the
/// token set by [`set_thread_token`], else none.
#[derive(Default)]
struct Wanted {
    /// Set by [`set_thread_token`]; owned by no guard.
    base: Option<Rc<Token>>,
    /// One entry per live guard, oldest first, with the guard's id.
    guards: Vec<(u64, Rc<Token>)>,
    next_id: u64,
    /// Guards that were live when another thread set this thread's token: the
    /// first of them dropped reverts the thread to its own identity.
    revert_on_drop: Vec<u64>,
}

impl Wanted {
    fn effective(&self) -> Option<Rc<Token>> {
        self.guards
            .last()
            .map(|(_, t)| t)
            .or(self.base.as_ref())
            .cloned()
    }
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
    static WANTED: RefCell<Wanted> = RefCell::new(Wanted::default());
    /// This thread's record, if other threads may set its token ([`ThreadHandle`]).
    static REGISTERED: RefCell<Option<std::sync::Arc<Registered>>> = const { RefCell::new(None) };
    /// How many of other threads' requests this thread's bookkeeping follows.
    static SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Whether [`spawn`] started this thread (only such threads get a handle).
    static SPAWNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The thread's own credentials, once read and checked.
    static HOME: RefCell<Option<Rc<ThreadCredentials>>> = const { RefCell::new(None) };
    /// Whether this thread has its own fs context (cwd, root, umask).
    static PRIVATE_FS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The process identity: the credentials of the first thread that reached guise's
/// thread functions without impersonating.
static PROCESS: std::sync::OnceLock<ThreadCredentials> = std::sync::OnceLock::new();

/// The recorded process identity, recorded now from `now` if it is the first.
fn process_identity(now: &ThreadCredentials) -> &'static ThreadCredentials {
    PROCESS.get_or_init(|| now.clone())
}

/// Whether a thread that does not impersonate through guise has ids other than the
/// process's: it was created while another thread impersonated (Linux gives a new
/// thread its creator's credentials), or other code changed them.
fn is_foreign(now: &ThreadCredentials, process: &ThreadCredentials) -> bool {
    now.uid != process.uid || now.gid != process.gid || now.groups != process.groups
}

/// The process identity for a foreign thread: the recorded ids, with no capability
/// the thread does not hold now.
fn process_target(process: &ThreadCredentials, now: &ThreadCredentials) -> ThreadCredentials {
    let held = now.capabilities.permitted;
    let caps = &process.capabilities;
    ThreadCredentials {
        capabilities: rustix::thread::CapabilitySets {
            effective: caps.effective & held,
            permitted: caps.permitted & held,
            inheritable: caps.inheritable & held,
        },
        ..process.clone()
    }
}

fn foreign_error(now: &ThreadCredentials, process: &ThreadCredentials) -> Error {
    Error::new(
        ErrorKind::CannotImpersonate,
        format!(
            "this thread runs as uid {} gid {}, not as the process (uid {} gid {}), and does not impersonate: \
             it was created while another thread impersonated; start threads with guise::thread::spawn",
            now.uid.effective, now.gid.effective, process.uid.effective, process.gid.effective
        ),
    )
}

/// The credentials of the process identity as seen from this thread: the thread's
/// own before it impersonated, its current ones if it is not impersonating, or the
/// recorded process identity if the thread is foreign (see [`spawn`]).
pub(crate) fn process_credentials() -> Result<ThreadCredentials> {
    reconcile();
    let saved = ACTIVE.with_borrow(|a| a.as_ref().map(|a| a.server.clone()));
    if let Some(creds) = saved {
        return Ok(ThreadCredentials::clone(&creds));
    }
    let now = ThreadCredentials::current()?;
    let process = process_identity(&now);
    Ok(if is_foreign(&now, process) {
        process_target(process, &now)
    } else {
        now
    })
}

/// Whether the calling thread is at the process identity: not impersonating, and
/// not a thread that came to life in another identity.
pub(crate) fn at_process_identity() -> bool {
    !is_impersonating()
        && ThreadCredentials::current().is_ok_and(|now| !is_foreign(&now, process_identity(&now)))
}

/// Gives the calling thread its own fs context (`unshare(CLONE_FS)`: current
/// directory, root and umask), once; afterwards a `chdir` or `umask` of this thread
/// reaches no other thread, nor theirs this one.
///
/// # Errors
/// [`ErrorKind::Os`] if the kernel refuses (a seccomp filter can).
pub fn unshare_fs_context() -> Result<()> {
    if PRIVATE_FS.get() {
        return Ok(());
    }
    crate::sys::socket::unshare_fs()
        .map_err(|e| Error::sys(ErrorKind::Os, "unshare(CLONE_FS)", &e))?;
    PRIVATE_FS.set(true);
    // The empty directory is made now if it will be needed, while the thread
    // may still make it: a worker that goes on to restrict itself (the pool's
    // Landlock sandbox) no longer could. A failure is told when it is needed.
    if rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective
            .contains(rustix::thread::CapabilitySet::SYS_CHROOT)
    }) {
        let _ = empty_root();
    }
    Ok(())
}

/// The empty directory a thread below Impersonation level has as its fs root and
/// cwd, made once per process and kept open for the process's whole life.
///
/// It is made (`mkdir`, mode 0555) under `/run`, else the temporary directory,
/// opened (`O_PATH`), and removed at once: a removed directory stays usable as a
/// root and cwd through the descriptor, is empty, and nothing can be created in
/// it, by anyone (the kernel refuses any entry in a directory that was removed).
/// Its name never matters and nothing of it is left on disk.
///
/// # Errors
/// [`ErrorKind::CannotImpersonate`] if it cannot be made.
fn empty_root() -> Result<std::os::fd::BorrowedFd<'static>> {
    use std::hash::{BuildHasher, Hasher};
    use std::os::fd::AsFd;

    use rustix::fs::{Mode, OFlags};
    static EMPTY: std::sync::OnceLock<std::os::fd::OwnedFd> = std::sync::OnceLock::new();
    if let Some(fd) = EMPTY.get() {
        return Ok(fd.as_fd());
    }
    let refused = |what: String, e: rustix::io::Errno| {
        Error::sys(
            ErrorKind::CannotImpersonate,
            format!("the empty directory of threads below Impersonation level: {what}"),
            e,
        )
    };
    let mut last = rustix::io::Errno::NOENT;
    let bases = [std::path::PathBuf::from("/run"), std::env::temp_dir()];
    for base in &bases {
        for _ in 0..8 {
            // A fresh name each time (std's per-process random keys); `mkdir`
            // never takes over an entry that exists.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            let path = base.join(format!("guise-empty-{:016x}", h.finish()));
            match rustix::fs::mkdir(&path, Mode::from_raw_mode(0o555)) {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => {
                    last = e;
                    break;
                }
            }
            let opened = rustix::fs::chmod(&path, Mode::from_raw_mode(0o555)).and_then(|()| {
                rustix::fs::open(
                    &path,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            });
            let removed = rustix::fs::rmdir(&path);
            let fd = opened.map_err(|e| refused(format!("opening {}", path.display()), e))?;
            removed.map_err(|e| refused(format!("removing {}", path.display()), e))?;
            // Ours, and removed: what was opened is what was made (in a sticky or
            // root-only directory no one else renames it), and can never gain
            // an entry.
            let st = rustix::fs::fstat(&fd).map_err(|e| refused("fstat".into(), e))?;
            if st.st_uid != rustix::process::geteuid().as_raw() || st.st_nlink != 0 {
                return Err(Error::new(
                    ErrorKind::CannotImpersonate,
                    format!(
                        "the empty directory of threads below Impersonation level: {} is not the directory made",
                        path.display()
                    ),
                ));
            }
            let _ = EMPTY.set(fd);
            return Ok(EMPTY
                .get()
                .map(AsFd::as_fd)
                .unwrap_or_else(|| unreachable!()));
        }
    }
    Err(refused(
        format!("no directory to make it in ({})", bases[0].display()),
        last,
    ))
}

thread_local! {
    /// The root and cwd to come back to, of a thread no other thread may set a
    /// token on (one that may keeps them in its [`Registered`] slot).
    static SAVED_FS: crate::sys::remote::SavedFs = const { crate::sys::remote::SavedFs::new() };
}

/// Runs `f` on the record of the calling thread's root and cwd to come back to:
/// its slot's if other threads may set its token (their requests use it too),
/// else its own. `None` while the thread ends.
fn with_saved_fs<R>(f: impl FnOnce(&crate::sys::remote::SavedFs) -> R) -> Option<R> {
    match REGISTERED.with_borrow(Clone::clone) {
        Some(r) => Some(f(r.slot.saved_fs())),
        None => SAVED_FS.try_with(f).ok(),
    }
}

/// Puts the calling thread, at its own credentials, in the empty directory (fs
/// root and cwd), keeping its root and cwd to come back to; nothing if it is
/// there already. The thread has its own fs context.
///
/// # Errors
/// [`ErrorKind::CannotImpersonate`] if the directory cannot be made or the kernel
/// refuses; the thread's root and cwd are then as they were.
fn confine_fs() -> Result<()> {
    let empty = empty_root()?;
    let refused = |e: rustix::io::Errno| {
        Error::sys(
            ErrorKind::CannotImpersonate,
            "putting the thread in the empty directory below Impersonation level",
            e,
        )
    };
    with_saved_fs(|saved| {
        if saved.is_confined() {
            return Ok(());
        }
        let back = crate::sys::remote::SavedFs::open_current().map_err(refused)?;
        saved.confine(empty, back).map_err(refused)
    })
    .unwrap_or_else(|| Err(refused(rustix::io::Errno::SRCH)))
}

/// Puts the calling thread's root and cwd back, if it is in the empty directory;
/// the thread has its own credentials again. The process aborts if that fails.
fn release_fs() {
    if let Some(Err(e)) = with_saved_fs(crate::sys::remote::SavedFs::release) {
        cred::fatal(
            "putting back the thread's root and cwd",
            &Error::sys(ErrorKind::Os, "fchdir/chroot", e),
        );
    }
}

/// Brings a foreign thread (now at `now`) to the process identity.
fn to_process_identity(now: &ThreadCredentials, process: &ThreadCredentials) -> Result<()> {
    cred::try_restore(&process_target(process, now), &now.os_identity())?;
    tracing::debug!(
        uid = now.uid.effective,
        "a thread created while impersonating takes the process identity"
    );
    Ok(())
}

/// Brings a thread that starts in a foreign identity to the process identity.
fn start_at_process_identity() -> Result<()> {
    let now = ThreadCredentials::current()?;
    let process = process_identity(&now);
    if is_foreign(&now, process) {
        to_process_identity(&now, process)?;
    }
    Ok(())
}

/// Starts a thread at the process identity (`CreateThread`, which on Windows gives
/// a new thread the process token), whatever the calling thread impersonates. A
/// thread made by `std::thread::spawn` gets its creator's current credentials on
/// Linux: the client's, if its creator impersonates.
///
/// # Errors
/// [`ErrorKind::Os`] if the thread cannot be started. If the new thread cannot take
/// the process identity it ends without running `f`, and joining it gives the panic.
#[doc(alias = "CreateThread")]
pub fn spawn<F, T>(f: F) -> Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_named(None, move || {
        SPAWNED.set(true);
        f()
    })
}

pub(crate) fn spawn_named<F, T>(name: Option<String>, f: F) -> Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Record the process identity from this thread if it is the first.
    process_credentials()?;
    // A thread whose fs context is its own (its umask follows its token) does not
    // share it with the threads it starts: they get theirs, with its own umask.
    let own_fs = PRIVATE_FS.get().then(|| {
        REGISTERED
            .with_borrow(|r| r.as_ref().map(|r| r.home_umask))
            .or_else(|| ACTIVE.with_borrow(|a| a.as_ref().and_then(|a| a.umask).map(|m| m.bits())))
            .unwrap_or_else(|| {
                let m = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
                rustix::process::umask(m);
                m.bits()
            })
    });
    // Nor does a thread below Impersonation level start one in its empty
    // directory: the new thread, at the process identity, takes the root and cwd
    // this one comes back to. Held steady, so that no other thread's
    // SetThreadToken closes them meanwhile.
    let back = if PRIVATE_FS.get() {
        let _steady = steady();
        with_saved_fs(crate::sys::remote::SavedFs::duplicate)
            .transpose()
            .map_err(|e| Error::sys(ErrorKind::Os, "copying the thread's root and cwd", e))?
            .flatten()
    } else {
        None
    };
    let mut builder = std::thread::Builder::new();
    if let Some(name) = name {
        builder = builder.name(name);
    }
    builder
        .spawn(move || {
            if let Err(e) = start_at_process_identity() {
                panic!("a new thread cannot take the process identity: {e}");
            }
            if let Some(umask) = own_fs {
                if let Err(e) = unshare_fs_context() {
                    panic!("a new thread cannot have an fs context of its own: {e}");
                }
                rustix::process::umask(rustix::fs::Mode::from_raw_mode(umask));
            }
            if let Some(back) = back
                && let Err(e) = back.go_back()
            {
                panic!("a new thread cannot leave its creator's empty directory: {e}");
            }
            f()
        })
        .map_err(|e| Error::sys(ErrorKind::Os, "starting a thread", &e))
}

/// For thread pools guise does not create (tokio's `Builder::on_thread_start`, a
/// rayon start handler): a thread that starts in a foreign identity, because the
/// thread that made it impersonated, is put on the process identity before it runs
/// anything. The process aborts if that cannot be done.
///
/// ```no_run
/// let rt = tokio::runtime::Builder::new_multi_thread()
///     .on_thread_start(guise::thread::on_thread_start)
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn on_thread_start() {
    if let Err(e) = start_at_process_identity() {
        cred::fatal("a new thread cannot take the process identity", &e);
    }
}

/// The level the calling thread would get for `token` and what the kernel would
/// see then: for code that acts as a client without switching (io_uring
/// personalities), keyed by what the kernel sees.
pub(crate) fn identity_for(token: &Token) -> Result<(ImpersonationLevel, OsIdentity)> {
    // Held steady: another thread's SetThreadToken landing between the
    // bookkeeping and the read would have the thread's borrowed identity taken
    // for the process's.
    let _steady = steady();
    let server = process_credentials()?;
    let level = rules::thread_level(token, &server);
    Ok((level, rules::kernel_view(token, level, &server)))
}

/// Who a thread of this process acts as while it impersonates `token`: the level
/// it gets (lower than the token's where the process may not impersonate at the
/// token's level) and the uid and gid the kernel sees then (the sentinel's below
/// Impersonation level). For audit trails: the identity that really acted.
///
/// # Errors
/// [`ErrorKind::Os`] if the process's credentials cannot be read.
pub fn acting_identity(
    token: &Token,
) -> Result<(ImpersonationLevel, crate::id::Uid, crate::id::Gid)> {
    let (level, os) = identity_for(token)?;
    Ok((
        level,
        crate::id::Uid::from_raw(os.uid),
        crate::id::Gid::from_raw(os.gid),
    ))
}

/// Puts `token` on the calling thread (or none), returning the level it got.
/// On error the thread is not impersonating.
fn install(token: Option<Rc<Token>>) -> Result<Option<ImpersonationLevel>> {
    if let Some(t) = &token {
        rules::may_set_thread_token(t)?;
    }
    let _steady = steady();
    let result = install_now(token);
    #[cfg(feature = "kerberos")]
    gss::follows();
    if let Some(r) = REGISTERED.with_borrow(Clone::clone) {
        // Stamped with the requests applied so far (steady: none lands now), so
        // that an asker of an older request never overwrites it.
        *r.current.lock().unwrap_or_else(|p| p.into_inner()) = (
            r.slot.applied(),
            ACTIVE.with_borrow(|a| a.as_ref().map(|a| Token::clone(&a.token))),
        );
    }
    result
}

/// [`install`], the credential change itself.
fn install_now(token: Option<Rc<Token>>) -> Result<Option<ImpersonationLevel>> {
    ACTIVE.with_borrow_mut(|active| {
        // From one impersonation straight to another: no revert in between, and
        // nothing at all if the kernel would see the same identity. Not across
        // the line of Impersonation level, where the thread enters or leaves the
        // empty directory at its own credentials: that goes through them.
        if let (Some(token), Some(previous)) = (&token, active.as_ref())
            && let server = Rc::clone(&previous.server)
            && let target = rules::thread_target(token, &server)
            && target.below == previous.below()
        {
            let rules::ThreadTarget {
                token,
                level,
                applied,
                below,
            } = target;
            let token = Rc::new(token);
            let Some(previous) = active.take() else {
                unreachable!("checked above")
            };
            if applied != previous.applied
                && let Err(e) = cred::switch_from(&server, &previous.applied, &applied)
            {
                // The thread is back on its own credentials: its root, cwd and
                // umask too.
                release_fs();
                if let Some(mask) = previous.umask {
                    rustix::process::umask(mask);
                }
                return Err(e);
            }
            // The umask the thread had before it went below Impersonation level
            // stays saved while it stays there.
            let umask = match (previous.umask, below) {
                (Some(saved), true) => Some(saved),
                (Some(saved), false) => {
                    rustix::process::umask(saved);
                    None
                }
                (None, true) => Some(rustix::process::umask(rustix::fs::Mode::from_raw_mode(
                    0o777,
                ))),
                (None, false) => None,
            };
            *active = Some(Active {
                token,
                server,
                applied,
                umask,
            });
            return Ok(Some(level));
        }
        let server = match active.take() {
            // Back to the server.
            Some(previous) => previous.leave(),
            // The thread's own credentials, read and checked once: guise alone
            // changes them afterwards, and always puts them back, verified.
            None => match HOME.with_borrow(Clone::clone) {
                Some(home) => home,
                None => {
                    let now = ThreadCredentials::current()?;
                    let process = process_identity(&now);
                    if is_foreign(&now, process) {
                        if token.is_some() {
                            return Err(foreign_error(&now, process));
                        }
                        // RevertToSelf on a thread that came to life in another
                        // identity: it takes the process identity, or the process
                        // ends.
                        if let Err(e) = to_process_identity(&now, process) {
                            cred::fatal("reverting a thread created while impersonating", &e);
                        }
                        return Ok(None);
                    }
                    cred::prepare_thread(&now)?;
                    let now = Rc::new(now);
                    HOME.with_borrow_mut(|h| *h = Some(Rc::clone(&now)));
                    now
                }
            },
        };
        let Some(token) = token else {
            return Ok(None);
        };
        let rules::ThreadTarget {
            token,
            level,
            applied,
            below,
        } = rules::thread_target(&token, &server);
        let token = Rc::new(token);
        // Below Impersonation level: the empty directory as root and cwd, entered
        // at the thread's own credentials (the chroot needs CAP_SYS_CHROOT), before
        // it takes the sentinel's.
        if below {
            unshare_fs_context()?;
            if rules::confines(&server, below)? {
                confine_fs()?;
            }
        }
        if let Err(e) = cred::switch(&server, &applied) {
            // Back on its own credentials: its own root and cwd too.
            release_fs();
            return Err(e);
        }
        let umask = below.then(|| rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o777)));
        crate::audit::impersonate(
            server.uid.effective,
            &token,
            applied.uid,
            applied.gid,
            level,
        );
        if level == ImpersonationLevel::Delegation {
            tracing::debug!("delegation level acts as impersonation: no network credentials");
        }
        *active = Some(Active {
            token,
            server,
            applied,
            umask,
        });
        Ok(Some(level))
    })
}

/// Runs `f` on the calling thread as the process, then puts back what the thread
/// impersonated: for work Windows does with the process token (LogonUser's
/// authentication). If the impersonation cannot be put back the process aborts.
///
/// # Errors
/// As [`set_thread_token`], for the revert; `f` does not run then.
pub(crate) fn as_process<R>(f: impl FnOnce() -> R) -> Result<R> {
    // No other thread's SetThreadToken lands while `f` runs as the process; it
    // waits, and is applied after.
    let _steady = steady();
    let wanted = WANTED.with_borrow(Wanted::effective);
    if wanted.is_none() || !is_impersonating() {
        return Ok(f());
    }
    install(None)?;
    let r = f();
    if let Err(e) = install(wanted) {
        cred::fatal("restoring the impersonation after work as the process", &e);
    }
    Ok(r)
}

/// The calling thread's impersonation token, if any, at the level it got.
fn current_token() -> Option<Token> {
    reconcile();
    ACTIVE.with_borrow(|a| a.as_ref().map(|a| Token::clone(&a.token)))
}

/// Replaces everything the thread impersonates by `token` (or nothing): live guards
/// are left with nothing to restore. On error the thread and its guards are as they
/// were, as after a failed SetThreadToken on Windows.
fn set_base(token: Option<Rc<Token>>) -> Result<()> {
    let _steady = steady();
    match install(token.clone()) {
        Ok(_) => {
            WANTED.with_borrow_mut(|w| {
                w.guards.clear();
                w.base = token;
            });
            Ok(())
        }
        Err(e) => {
            put_back_wanted();
            Err(e)
        }
    }
}

/// After a failed install: a failed switch leaves the thread on its own
/// credentials; put back what it impersonated, if anything. Failing that is fatal.
fn put_back_wanted() {
    let _steady = steady();
    let wanted = WANTED.with_borrow(Wanted::effective);
    if wanted.is_some()
        && !is_impersonating()
        && let Err(again) = install(wanted)
    {
        cred::fatal("restoring the previous impersonation", &again);
    }
}

/// Sets the calling thread's impersonation token ([`SetThreadToken`] with a `NULL`
/// thread handle); `None` reverts, as [`revert_to_self`] does. It replaces what any
/// live [`Impersonation`] guard put on the thread; those guards then restore nothing
/// when dropped.
///
/// A thread that already impersonates first goes back to its own credentials, then
/// to the new token's. The level the thread gets may be lower than the token's
/// (see the [module documentation](self)); [`open_thread_token`] shows it.
///
/// # Errors
/// - [`ErrorKind::BadTokenType`] for a primary token.
/// - [`ErrorKind::InvalidParameter`] for ids the kernel would misread.
/// - [`ErrorKind::Os`] if the kernel refuses the switch.
/// - [`ErrorKind::CannotImpersonate`] on a thread created while another
///   impersonated (see the [module documentation](self)); below Impersonation
///   level, for a server that holds `CAP_SETUID`/`CAP_SETGID` but not
///   `CAP_SYS_CHROOT`, or if the empty root cannot be made or entered (see [the
///   sentinel identity](self#the-sentinel-identity)).
///
/// On error the thread, and its guards, are as they were.
///
/// [`SetThreadToken`]: https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-setthreadtoken
#[doc(alias = "SetThreadToken")]
pub fn set_thread_token(token: Option<&Token>) -> Result<()> {
    set_base(token.map(|t| Rc::new(t.clone())))
}

/// Ends the calling thread's impersonation ([`RevertToSelf`]): the thread has its
/// own credentials again, whatever guards are still alive (they restore nothing when
/// dropped). Not impersonating is not an error. A thread that came to life in
/// another identity (made by `std::thread::spawn` from an impersonating thread)
/// takes the process identity.
///
/// If the credentials cannot be restored and verified the process aborts.
///
/// # Errors
/// None in practice; the `Result` is kept for symmetry with the Win32 call.
///
/// [`RevertToSelf`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-reverttoself
#[doc(alias = "RevertToSelf")]
pub fn revert_to_self() -> Result<()> {
    set_base(None)
}

/// Fails unless the calling thread may open objects as the client it impersonates:
/// what Windows' object manager checks before an open by an impersonating thread.
/// A thread that does not impersonate acts as itself and may.
///
/// # Errors
/// [`ErrorKind::BadImpersonationLevel`] while the thread impersonates at
/// Identification or Anonymous level.
pub fn check_open_as_client() -> Result<()> {
    rules::may_open_as_client(current_token().and_then(|t| t.impersonation_level()))
}

/// The id of the token the calling thread impersonates now, if any: a transport
/// that records which of its clients a thread impersonates compares it later.
#[cfg(feature = "rpc")]
pub(crate) fn current_token_id() -> Option<crate::token::Luid> {
    reconcile();
    ACTIVE.with_borrow(|a| a.as_ref().map(|a| a.token.statistics().token_id))
}

impl Token {
    /// Enables, disables or removes privileges the token holds
    /// ([`AdjustTokenPrivileges`]); returns their previous state, `None` where a
    /// privilege was not held (only possible for `Disable`/`Remove` of one not held,
    /// which is accepted as a no-op).
    ///
    /// Unlike Windows, which applies what it can and reports
    /// `ERROR_NOT_ALL_ASSIGNED`, the change is all or nothing: if any privilege to
    /// enable is not held, the token is left unchanged and the error says which.
    /// Enabling never grants a privilege the token does not hold.
    ///
    /// **On the process token** ([`Token::open_process`], not a duplicate of it)
    /// the change is real: the calling thread's capabilities change as the
    /// privileges named do (SeBackupPrivilege is `CAP_DAC_READ_SEARCH`,
    /// SeRestorePrivilege `CAP_DAC_OVERRIDE`, `CAP_CHOWN` and `CAP_FOWNER`, ...):
    /// enabling raises them into the effective set, disabling lowers them, and
    /// removing also drops them from the permitted set for good (and from the
    /// bounding set, where the thread holds `CAP_SETPCAP`, so that no program
    /// it starts as root gets them back). So the
    /// `EnablePrivilege(SE_BACKUP_NAME)` idiom works. The change starts from what
    /// the kernel says the thread has (another value of the process token may
    /// have changed it), and the token becomes the process token as it is then.
    /// Privileges that share capabilities (SeTcbPrivilege, SeImpersonatePrivilege
    /// and SeAssignPrimaryTokenPrivilege share `CAP_SETUID` and `CAP_SETGID`)
    /// change together. Linux keeps capabilities per thread: the change reaches
    /// the calling thread, and the threads and processes it starts afterwards,
    /// not the others; the thread comes back to the new capabilities after each
    /// impersonation. Only a thread at the process identity that does not
    /// impersonate (its capabilities would be the client's) and has no
    /// SetThreadToken handle may change them.
    ///
    /// # Errors
    /// [`ErrorKind::NotAllAssigned`] when asked to enable a privilege the token does
    /// not hold; for the process token, [`ErrorKind::InvalidParameter`] while the
    /// thread impersonates and [`ErrorKind::Os`] if the kernel refuses the change
    /// (the thread keeps its capabilities and the token its privileges).
    ///
    /// [`AdjustTokenPrivileges`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-adjusttokenprivileges
    #[doc(alias = "AdjustTokenPrivileges")]
    pub fn adjust_privileges(
        &mut self,
        changes: &[(crate::privilege::Privilege, crate::token::PrivilegeChange)],
    ) -> Result<Vec<(crate::privilege::Privilege, Option<bool>)>> {
        if !self.is_process_token() {
            return self.adjust_privilege_values(changes);
        }
        let _steady = steady();
        // The kernel's state, not this value's (another value of the process
        // token may have changed it).
        let mut now = Token::open_process()?;
        let previous = now.adjust_privilege_values(changes)?;
        apply_process_privileges(changes)?;
        *self = Token::open_process()?;
        Ok(previous)
    }

    /// Disables every privilege (`AdjustTokenPrivileges` with
    /// `DisableAllPrivileges`); on the process token, for real, as
    /// [`Token::adjust_privileges`] says.
    ///
    /// # Errors
    /// As [`Token::adjust_privileges`], for the process token.
    #[doc(alias = "AdjustTokenPrivileges")]
    pub fn disable_all_privileges(&mut self) -> Result<()> {
        if !self.is_process_token() {
            self.disable_all_privilege_values();
            return Ok(());
        }
        let all: Vec<_> = Token::open_process()?
            .privileges()
            .iter()
            .map(|p| (p.privilege, crate::token::PrivilegeChange::Disable))
            .collect();
        self.adjust_privileges(&all).map(|_| ())
    }
}

/// Changes the calling thread's capabilities as `changes` change the process
/// token's privileges: the capabilities of each privilege named, and no other,
/// starting from what the kernel says the thread has. The thread's credentials
/// to come back to after an impersonation follow.
fn apply_process_privileges(
    changes: &[(crate::privilege::Privilege, crate::token::PrivilegeChange)],
) -> Result<()> {
    use crate::token::PrivilegeChange;
    use rustix::thread as rthread;
    if is_impersonating() || !at_process_identity() || handle::is_registered() {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "the process token's privileges change only on a thread at the process identity \
             that does not impersonate and has no SetThreadToken handle",
        ));
    }
    let before = rthread::capabilities(None).map_err(|e| Error::sys(ErrorKind::Os, "capget", e))?;
    let mut wanted = before;
    for &(privilege, change) in changes {
        let caps = privilege.capabilities();
        match change {
            PrivilegeChange::Enable => wanted.effective |= caps & wanted.permitted,
            PrivilegeChange::Disable => wanted.effective -= caps,
            PrivilegeChange::Remove => {
                wanted.effective -= caps;
                wanted.permitted -= caps;
            }
        }
    }
    wanted.inheritable &= wanted.permitted;
    if wanted == before {
        return Ok(());
    }
    let set = rthread::set_capabilities(None, wanted)
        .and_then(|()| rthread::capabilities(None))
        .map_err(|e| Error::sys(ErrorKind::Os, "capset", e));
    match set {
        Ok(now) if now == wanted => {
            // Impersonations of this thread come back to these capabilities.
            HOME.with_borrow_mut(|h| {
                if let Some(home) = h {
                    Rc::make_mut(home).capabilities = now;
                }
            });
            // A removed privilege's capabilities also leave the bounding set
            // where the thread may drop them (CAP_SETPCAP): no program it
            // starts as root gets them back.
            let removed = before.permitted - now.permitted;
            if now.effective.contains(rthread::CapabilitySet::SETPCAP) {
                for bit in (0..64)
                    .map(|i| 1u64 << i)
                    .filter(|b| removed.bits() & b != 0)
                {
                    rthread::remove_capability_from_bounding_set(
                        rthread::CapabilitySet::from_bits_retain(bit),
                    )
                    .map_err(|e| Error::sys(ErrorKind::Os, "dropping from the bounding set", e))?;
                }
            }
            Ok(())
        }
        other => {
            // Back to what the thread had; if even that fails, the thread's
            // capabilities are unknown and the process ends.
            let back = rthread::set_capabilities(None, before)
                .and_then(|()| rthread::capabilities(None))
                .map_err(|e| Error::sys(ErrorKind::Os, "capset", e));
            if !matches!(back, Ok(now) if now == before) {
                cred::fatal(
                    "restoring the capabilities after a failed privilege change",
                    &Error::new(ErrorKind::Os, "the capabilities read back differ"),
                );
            }
            Err(other.err().unwrap_or_else(|| {
                Error::new(ErrorKind::Os, "the kernel did not take the capabilities")
            }))
        }
    }
}

/// Whether the calling thread impersonates.
pub fn is_impersonating() -> bool {
    reconcile();
    ACTIVE.with_borrow(|a| a.is_some())
}

/// The calling thread's impersonation token ([`OpenThreadToken`]).
///
/// With `open_as_self` false, the open is checked with the thread's own (impersonated)
/// context, which at Identification level may not open objects; with `open_as_self`
/// true it is checked with the process context.
///
/// # Errors
/// - [`ErrorKind::NoToken`] if the thread does not impersonate.
/// - [`ErrorKind::CantOpenAnonymous`] if it impersonates at Anonymous level.
/// - [`ErrorKind::BadImpersonationLevel`] at Identification level with
///   `open_as_self` false.
///
/// [`OpenThreadToken`]: https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-openthreadtoken
#[doc(alias = "OpenThreadToken")]
pub fn open_thread_token(open_as_self: bool) -> Result<Token> {
    rules::open_thread_token(current_token(), open_as_self)
}

/// Makes the calling thread impersonate the process's own token at `level`
/// ([`ImpersonateSelf`]); the returned guard reverts.
///
/// # Errors
/// As [`Token::open_process`] and [`set_thread_token`].
///
/// [`ImpersonateSelf`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-impersonateself
#[doc(alias = "ImpersonateSelf")]
pub fn impersonate_self(level: ImpersonationLevel) -> Result<Impersonation> {
    Token::open_process()?
        .duplicate(level, TokenType::Impersonation)?
        .impersonate()
}

/// The calling thread impersonates a token until this guard is dropped.
///
/// Guards nest: the thread acts as the token of the newest live guard. Dropping the
/// newest guard puts the thread back on what it had before (the next guard's token,
/// the token of [`set_thread_token`], or its own credentials); dropping an older
/// guard first changes nothing the kernel sees, so `g = other.impersonate()?` is safe
/// while `g` is alive. [`revert_to_self`] and [`set_thread_token`] end every guard's
/// effect. If the thread cannot be put back the process aborts.
///
/// The guard cannot leave its thread (`!Send`), so it cannot be held across an
/// `.await` of a task that may move between threads. Forgetting it (`mem::forget`)
/// leaves the thread impersonating until [`revert_to_self`].
#[must_use = "the thread reverts as soon as the guard is dropped"]
pub struct Impersonation {
    id: u64,
    level: ImpersonationLevel,
    _not_send: PhantomData<*const ()>,
}

impl Impersonation {
    /// The level the thread got, which may be lower than the token's (see the
    /// [module documentation](self)).
    pub fn level(&self) -> ImpersonationLevel {
        self.level
    }

    /// Ends the impersonation now; the same as dropping the guard.
    pub fn revert(self) {}
}

impl Drop for Impersonation {
    fn drop(&mut self) {
        let _steady = steady();
        // A guard that was live when another thread set this thread's token
        // reverts the thread to its own identity.
        let revert = WANTED.with_borrow_mut(|w| {
            let hit = w.revert_on_drop.contains(&self.id);
            if hit {
                w.revert_on_drop.clear();
            }
            hit
        });
        if revert {
            if let Err(e) = set_base(None) {
                cred::fatal("reverting after another thread's SetThreadToken", &e);
            }
            return;
        }
        // Only the newest guard's drop changes the thread's credentials.
        let restore = WANTED.with_borrow_mut(|w| {
            let pos = w.guards.iter().position(|(id, _)| *id == self.id)?;
            w.guards.remove(pos);
            (pos == w.guards.len()).then(|| w.effective())
        });
        if let Some(token) = restore
            && let Err(e) = install(token)
        {
            cred::fatal("restoring the previous impersonation", &e);
        }
    }
}

impl std::fmt::Debug for Impersonation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Impersonation")
            .field("level", &self.level)
            .finish()
    }
}

impl Token {
    /// The token of the calling process ([`OpenProcessToken`]): a primary token for
    /// the process's effective uid, gid and groups, with a privilege for each mapped
    /// capability set the process holds in its permitted set (enabled when the
    /// capabilities are also effective).
    ///
    /// Called from a thread that impersonates, it still describes the process, not
    /// the client. Repeated calls return the same token id.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the credentials cannot be read.
    ///
    /// [`OpenProcessToken`]: https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-openprocesstoken
    #[doc(alias = "OpenProcessToken")]
    pub fn open_process() -> Result<Token> {
        Token::for_process(&process_credentials()?)
    }

    /// Makes the calling thread impersonate this token ([`ImpersonateLoggedOnUser`]);
    /// the returned guard reverts. A primary token is first duplicated to an
    /// impersonation token at Impersonation level; an impersonation token is used at
    /// its own level. The level the thread gets may be lower (see the
    /// [module documentation](crate::thread)).
    ///
    /// # Errors
    /// As [`set_thread_token`]. On error the thread is unchanged.
    ///
    /// [`ImpersonateLoggedOnUser`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-impersonateloggedonuser
    #[doc(alias = "ImpersonateLoggedOnUser")]
    pub fn impersonate(&self) -> Result<Impersonation> {
        let _steady = steady();
        let token = match self.token_type() {
            TokenType::Primary => {
                self.duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)?
            }
            TokenType::Impersonation => self.clone(),
        };
        let token = Rc::new(token);
        match install(Some(Rc::clone(&token))) {
            Ok(level) => {
                let id = WANTED.with_borrow_mut(|w| {
                    w.next_id += 1;
                    w.guards.push((w.next_id, token));
                    w.next_id
                });
                Ok(Impersonation {
                    id,
                    level: level.unwrap_or(ImpersonationLevel::Impersonation),
                    _not_send: PhantomData,
                })
            }
            Err(e) => {
                put_back_wanted();
                Err(e)
            }
        }
    }

    /// Runs `f` on the calling thread while it impersonates this token, then
    /// reverts, also when `f` panics.
    ///
    /// # Errors
    /// As [`Token::impersonate`]; `f` does not run then.
    #[doc(alias = "ImpersonateLoggedOnUser")]
    pub fn run_as<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let _guard = self.impersonate()?;
        Ok(f())
    }
}
