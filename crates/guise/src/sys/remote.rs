//! SetThreadToken on another thread: a real-time signal whose handler, on the
//! target thread, makes only the raw per-thread credential system calls (as glibc's
//! own setxid broadcast does), verifies them, and aborts the process if they did
//! not take. Everything the handler needs is made beforehand by the thread that
//! asks; the handler allocates nothing, takes no lock and touches no thread-local
//! state but one pointer.
//!
//! A target in the middle of a credential change of its own ([`Slot::enter`]) is
//! not touched by the handler: the request waits, and the target applies it itself
//! when it leaves ([`Slot::leave`]).
//!
//! Below Impersonation level a thread's fs root and cwd are an empty directory
//! ([`SavedFs`]): the handler puts the thread there, and back, with the same raw
//! calls as the thread's own changes (`open`, `fchdir`, `chroot`, `close`), and
//! keeps the root and cwd to come back to in the slot, where the thread's own
//! changes find them too. The one step that may fail for a reason other than a
//! broken kernel, opening the root and cwd to come back to (no descriptor left),
//! comes before any change: the request then fails and the thread is untouched.
//!
//! The asker sleeps on the slot's state word (a futex) until the target, having
//! applied the request, wakes it (`FUTEX_WAKE` is a plain system call, safe in a
//! signal handler), or until its time limit. The protocol's bookkeeping is apart
//! from the two steps that touch the system (sending the signal, making the
//! credential calls), which a [`Slot`] takes as functions: the tests drive the
//! states by direct calls with stand-ins for both, also under Miri.

use std::cell::{Cell, UnsafeCell};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering, compiler_fence,
};
use std::time::{Duration, Instant};

use rustix::process::{Gid, Uid};
use rustix::thread::{self as rthread, CapabilitySets, futex};

/// No request.
const IDLE: u32 = 0;
/// A request is waiting for the target.
const REQUESTED: u32 = 1;
/// The target is applying it.
const APPLYING: u32 = 2;
/// Applied and verified.
const DONE: u32 = 3;
/// The asker gave up before the target took it up; nothing was changed.
const CANCELLED: u32 = 4;
/// An asker is putting its request in place.
const CLAIMED: u32 = 5;
/// The target could not take the request up and changed nothing
/// ([`Slot::failure`] says why).
const FAILED: u32 = 6;

/// An identity to put on the target thread, made by the asker.
pub(crate) struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Sorted, without duplicates (as the kernel reports them).
    pub groups: Box<[Gid]>,
    pub capabilities: CapabilitySets,
    pub umask: u32,
    /// The empty directory that is the thread's fs root and cwd while it has this
    /// identity (below Impersonation level), kept open by the process for its
    /// whole life; `None`: the thread's own root and cwd.
    pub root: Option<RawFd>,
}

/// A request: the thread's own identity (its credentials when it does not
/// impersonate), the identity to take, and room to read the groups back.
pub(crate) struct Request {
    pub home: Identity,
    pub target: Identity,
    /// Scratch space for `getgroups` in the handler: one more than the target has.
    scratch: UnsafeCell<Box<[u32]>>,
}

impl Request {
    pub(crate) fn new(home: Identity, target: Identity) -> Box<Request> {
        let n = target.groups.len().max(home.groups.len()) + 1;
        Box::new(Request {
            home,
            target,
            scratch: UnsafeCell::new(vec![0u32; n].into_boxed_slice()),
        })
    }
}

/// The shared record of a thread that others may set a token on.
///
/// The bookkeeping (the state word, the busy and deferred flags, the applied
/// count) is plain atomics; the two steps that touch the system are seams: `apply`
/// makes the credential calls on the thread and `notify` signals it. The real ones
/// are [`apply`] and [`send_signal`]; tests put stand-ins there and drive the
/// protocol by direct calls, without signals or credential changes (and so under
/// Miri).
pub(crate) struct Slot {
    tid: i32,
    /// The request's state ([`IDLE`], [`CLAIMED`], [`REQUESTED`], [`APPLYING`],
    /// [`DONE`], [`CANCELLED`]); also the futex word the asker waits on.
    state: AtomicU32,
    request: AtomicPtr<Request>,
    /// The thread is in a credential change of its own: the handler must wait.
    busy: AtomicBool,
    /// A request arrived while busy.
    deferred: AtomicBool,
    /// Bumped each time a request was applied.
    applied: AtomicU64,
    /// Whether the thread has ended.
    gone: AtomicBool,
    /// Why the last request [`FAILED`] (an errno).
    failure: AtomicI32,
    /// The root and cwd the thread had before it went in the empty directory.
    saved_fs: SavedFs,
    /// Puts a request's identity on the calling thread (run on the target thread,
    /// possibly in the signal handler: async-signal-safe). An error means nothing
    /// was changed.
    apply: fn(&Slot, &Request) -> rustix::io::Result<()>,
    /// Tells the target thread that a request waits.
    notify: fn(&Slot) -> io::Result<()>,
}

thread_local! {
    /// The calling thread's slot, for the handler (a plain pointer: no lazy
    /// initialisation, no destructor, so reading it in a handler is sound).
    static MINE: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
}

/// The real-time signal used: glibc keeps the first two for itself; this is the
/// eleventh after them.
pub(crate) fn signal() -> i32 {
    libc::SIGRTMIN() + 10
}

impl Slot {
    /// A record of thread `tid` whose requests `apply` takes up and `notify`
    /// announces; nothing is installed.
    fn with_seams(
        tid: i32,
        apply: fn(&Slot, &Request) -> rustix::io::Result<()>,
        notify: fn(&Slot) -> io::Result<()>,
    ) -> Slot {
        Slot {
            tid,
            state: AtomicU32::new(IDLE),
            request: AtomicPtr::new(std::ptr::null_mut()),
            busy: AtomicBool::new(false),
            deferred: AtomicBool::new(false),
            applied: AtomicU64::new(0),
            gone: AtomicBool::new(false),
            failure: AtomicI32::new(0),
            saved_fs: SavedFs::new(),
            apply,
            notify,
        }
    }

    /// The record of the calling thread, which it must keep alive (and mark
    /// [`Slot::gone`]) until it ends; installs the signal handler once per process.
    ///
    /// # Errors
    /// The kernel's, or `EBUSY` if the application handles the signal itself.
    pub(crate) fn for_current_thread() -> io::Result<std::sync::Arc<Slot>> {
        install_handler()?;
        let slot = std::sync::Arc::new(Slot::with_seams(
            rustix::thread::gettid().as_raw_nonzero().get(),
            apply,
            send_signal,
        ));
        MINE.set(std::sync::Arc::as_ptr(&slot));
        Ok(slot)
    }

    /// How many requests the thread has applied.
    pub(crate) fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The root and cwd the thread comes back to when it leaves the empty
    /// directory: for the thread's own changes, which must find what a request put
    /// there (and leave there what a request will find). Used on the thread only,
    /// while it holds itself steady ([`Slot::enter`]).
    pub(crate) fn saved_fs(&self) -> &SavedFs {
        &self.saved_fs
    }

    /// Marks the thread ended (called on the thread, as it ends): no request
    /// reaches it any more.
    pub(crate) fn gone(&self) {
        self.gone.store(true, Ordering::SeqCst);
        MINE.set(std::ptr::null());
    }

    /// The thread starts a credential change of its own.
    pub(crate) fn enter(&self) {
        self.busy.store(true, Ordering::SeqCst);
        compiler_fence(Ordering::SeqCst);
    }

    /// The thread's own change is over: a request that arrived meanwhile is applied
    /// now, on this thread.
    pub(crate) fn leave(&self) {
        compiler_fence(Ordering::SeqCst);
        self.busy.store(false, Ordering::SeqCst);
        if self.deferred.swap(false, Ordering::SeqCst) {
            self.take_up();
        }
    }

    /// On the target, in the signal handler: applies the waiting request now, or
    /// when the thread's own credential change is over.
    fn signalled(&self) {
        if self.busy.load(Ordering::SeqCst) {
            self.deferred.store(true, Ordering::SeqCst);
        } else {
            self.take_up();
        }
    }

    /// On the target: applies the waiting request, if it still waits, and wakes
    /// the asker.
    fn take_up(&self) {
        if self
            .state
            .compare_exchange(REQUESTED, APPLYING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        let req = self.request.load(Ordering::SeqCst);
        // SAFETY: the asker stored a valid request before setting REQUESTED and
        // frees it only after DONE (or after it cancelled, which the exchange above
        // rules out); nothing else writes to it meanwhile.
        let req = unsafe { &*req };
        match (self.apply)(self, req) {
            Ok(()) => {
                self.applied.fetch_add(1, Ordering::SeqCst);
                self.state.store(DONE, Ordering::SeqCst);
            }
            // Nothing was changed: the asker gets the error.
            Err(e) => {
                self.failure.store(e.raw_os_error(), Ordering::SeqCst);
                self.state.store(FAILED, Ordering::SeqCst);
            }
        }
        // The slot outlives this call (the thread holds it while it runs), so the
        // word is still there; a wake that finds no waiter does nothing. futex(2)
        // is a plain system call, async-signal-safe.
        let _ = futex::wake(&self.state, futex::Flags::PRIVATE, u32::MAX);
    }

    /// On the asker: has the thread apply `req` and waits until it did. The thread
    /// applies it at once (from the signal handler) or as soon as its own
    /// credential change is over.
    ///
    /// The asker sleeps on the state word (a futex) until the thread wakes it
    /// having applied the request, or until `limit` has passed since the signal
    /// was sent; a request the thread has begun to apply is waited for to the end
    /// (applying takes a few system calls, and aborts the process if they fail).
    ///
    /// # Errors
    /// `ESRCH` if the thread has ended; `ETIMEDOUT` if it did not take the request
    /// up within `limit` (then nothing was changed); `EBUSY` if another request is
    /// under way; the thread's error if it could not take the request up (then
    /// nothing was changed either).
    pub(crate) fn request(&self, req: Box<Request>, limit: Duration) -> io::Result<()> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        if self
            .state
            .compare_exchange(IDLE, CLAIMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let ptr = Box::into_raw(req);
        self.request.store(ptr, Ordering::SeqCst);
        self.state.store(REQUESTED, Ordering::SeqCst);
        let sent = (self.notify)(self);
        let started = Instant::now();
        let outcome = loop {
            let remaining = limit.saturating_sub(started.elapsed());
            match self.state.load(Ordering::SeqCst) {
                DONE => break Ok(()),
                FAILED => {
                    break Err(io::Error::from_raw_os_error(
                        self.failure.load(Ordering::SeqCst),
                    ));
                }
                REQUESTED
                    if (sent.is_err() || remaining.is_zero())
                        && self
                            .state
                            .compare_exchange(
                                REQUESTED,
                                CANCELLED,
                                Ordering::SeqCst,
                                Ordering::SeqCst,
                            )
                            .is_ok() =>
                {
                    break Err(sent
                        .err()
                        .unwrap_or_else(|| io::Error::from_raw_os_error(libc::ETIMEDOUT)));
                }
                // Until the limit, or until the state changes: the thread wakes
                // the word once it has applied the request.
                REQUESTED => wait_while(&self.state, REQUESTED, remaining),
                // Being applied: it ends in DONE (or the process aborts). The
                // time limit bounds each wait, not the whole.
                APPLYING => wait_while(&self.state, APPLYING, limit.max(Duration::from_millis(1))),
                // A state that no other party sets while this asker holds the
                // slot; read it again.
                _ => std::hint::spin_loop(),
            }
        };
        self.request.store(std::ptr::null_mut(), Ordering::SeqCst);
        self.state.store(IDLE, Ordering::SeqCst);
        // SAFETY: the thread has applied the request (DONE), gave up on it
        // (FAILED) or never will take it up (CANCELLED); no one reads it any more.
        drop(unsafe { Box::from_raw(ptr) });
        outcome
    }
}

/// Sleeps while `word` holds `value`, at most `timeout` (`FUTEX_WAIT`). Returns at
/// once if it holds another value; may return early (a signal, a spurious wake):
/// callers read the word again.
fn wait_while(word: &AtomicU32, value: u32, timeout: Duration) {
    // A limit too long for a timespec is no limit.
    let timeout = futex::Timespec::try_from(timeout).ok();
    match futex::wait(word, futex::Flags::PRIVATE, value, timeout.as_ref()) {
        Ok(()) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
        Err(rustix::io::Errno::TIMEDOUT) => {}
        // No futex (a seccomp filter that forbids it): fall back to a short sleep
        // rather than spin.
        Err(_) => std::thread::sleep(Duration::from_micros(50)),
    }
}

/// The fs root and cwd a thread had before it went in the empty directory (below
/// Impersonation level), kept open (`O_PATH`) while it is there; `-1`: it is not.
///
/// Each method makes only raw system calls and allocates nothing: the signal
/// handler of SetThreadToken uses them as the thread's own changes do. Only the
/// thread itself uses its record, one change at a time (its own changes hold it
/// steady, and the handler then waits).
pub(crate) struct SavedFs {
    root: AtomicI32,
    cwd: AtomicI32,
}

/// A root and cwd to come back to, opened by [`SavedFs::open_current`].
pub(crate) struct Return {
    root: OwnedFd,
    cwd: OwnedFd,
}

impl SavedFs {
    /// A record of a thread that is not in the empty directory.
    pub(crate) const fn new() -> SavedFs {
        SavedFs {
            root: AtomicI32::new(-1),
            cwd: AtomicI32::new(-1),
        }
    }

    /// Whether the thread is in the empty directory.
    pub(crate) fn is_confined(&self) -> bool {
        self.root.load(Ordering::SeqCst) >= 0
    }

    /// Opens the calling thread's root and cwd (`O_PATH`, which needs no
    /// permission): the one step that may fail (no descriptor left), made before
    /// anything changes.
    pub(crate) fn open_current() -> rustix::io::Result<Return> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(Return {
            root: rustix::fs::open(c"/", flags, Mode::empty())?,
            cwd: rustix::fs::open(c".", flags, Mode::empty())?,
        })
    }

    /// Makes `empty` the calling thread's cwd and root (`fchdir`, `chroot(".")`)
    /// and keeps `back`, its root and cwd before. Needs `CAP_SYS_CHROOT` in the
    /// thread's effective set. On error the thread's root and cwd are as they
    /// were (the process aborts if its cwd cannot be put back).
    pub(crate) fn confine(&self, empty: BorrowedFd<'_>, back: Return) -> rustix::io::Result<()> {
        rustix::process::fchdir(empty)?;
        if let Err(e) = rustix::process::chroot(c".") {
            if rustix::process::fchdir(&back.cwd).is_err() {
                die("guise: cannot put back a thread's cwd after a failed chroot; aborting\n");
            }
            return Err(e);
        }
        self.root.store(back.root.into_raw_fd(), Ordering::SeqCst);
        self.cwd.store(back.cwd.into_raw_fd(), Ordering::SeqCst);
        Ok(())
    }

    /// Puts the calling thread's root and cwd back (`fchdir`, `chroot(".")`,
    /// `fchdir`), if it is in the empty directory. Needs `CAP_SYS_CHROOT` in the
    /// thread's effective set, and the right to enter both directories. On error
    /// the record is kept: the caller aborts.
    pub(crate) fn release(&self) -> rustix::io::Result<()> {
        let (root, cwd) = (
            self.root.load(Ordering::SeqCst),
            self.cwd.load(Ordering::SeqCst),
        );
        if root < 0 {
            return Ok(());
        }
        // SAFETY: both are descriptors this record opened and owns (stored by
        // `confine`, closed only below or on drop); only this thread uses them.
        let (root_fd, cwd_fd) =
            unsafe { (BorrowedFd::borrow_raw(root), BorrowedFd::borrow_raw(cwd)) };
        return_to(root_fd, cwd_fd)?;
        self.root.store(-1, Ordering::SeqCst);
        self.cwd.store(-1, Ordering::SeqCst);
        // SAFETY: as above; the record no longer names them.
        drop(unsafe { (OwnedFd::from_raw_fd(root), OwnedFd::from_raw_fd(cwd)) });
        Ok(())
    }

    /// Copies of the root and cwd to come back to, if the thread is in the empty
    /// directory: for a thread it starts, which copies its fs context.
    pub(crate) fn duplicate(&self) -> rustix::io::Result<Option<Return>> {
        let (root, cwd) = (
            self.root.load(Ordering::SeqCst),
            self.cwd.load(Ordering::SeqCst),
        );
        if root < 0 {
            return Ok(None);
        }
        // SAFETY: as in `release`: descriptors this record owns, used by this
        // thread only, borrowed for the copy.
        let (root, cwd) = unsafe { (BorrowedFd::borrow_raw(root), BorrowedFd::borrow_raw(cwd)) };
        Ok(Some(Return {
            root: rustix::io::fcntl_dupfd_cloexec(root, 0)?,
            cwd: rustix::io::fcntl_dupfd_cloexec(cwd, 0)?,
        }))
    }
}

impl Return {
    /// Makes these the calling thread's root and cwd (see [`return_to`]).
    pub(crate) fn go_back(&self) -> rustix::io::Result<()> {
        return_to(self.root.as_fd(), self.cwd.as_fd())
    }
}

impl Drop for SavedFs {
    fn drop(&mut self) {
        for fd in [
            self.root.load(Ordering::SeqCst),
            self.cwd.load(Ordering::SeqCst),
        ] {
            if fd >= 0 {
                // SAFETY: a descriptor this record owns; nothing uses it after.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
}

/// Makes `root` the calling thread's root and `cwd` its cwd: `fchdir(root)`,
/// `chroot(".")`, `fchdir(cwd)`.
fn return_to(root: BorrowedFd<'_>, cwd: BorrowedFd<'_>) -> rustix::io::Result<()> {
    rustix::process::fchdir(root)?;
    rustix::process::chroot(c".")?;
    rustix::process::fchdir(cwd)
}

/// Signals the slot's thread that a request waits (`tgkill`).
fn send_signal(slot: &Slot) -> io::Result<()> {
    // SAFETY: tgkill with this process's pid and a tid of it. A thread that has
    // ended gives ESRCH; if its tid was reused by a new thread of this process,
    // that thread's handler finds no request of its own and the asker times out,
    // having changed nothing.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), slot.tid, signal()) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `msg` to stderr and aborts: all a signal handler may do when the
/// credentials it set did not take.
fn die(msg: &str) -> ! {
    // SAFETY: write(2) and abort(3) are async-signal-safe; `msg` is valid for its
    // length.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort()
    }
}

/// Reads the calling thread's supplementary groups into `buf`; how many there are.
///
/// This is libc's `getgroups`, not a raw `syscall(SYS_getgroups)`: on some 32-bit
/// targets (x86, arm, sparc, m68k) the system call of that number is the old one
/// with 16-bit gids, and the 32-bit one is `getgroups32`; libc calls the right one
/// for the target. `getgroups` is async-signal-safe (POSIX, signal-safety(7)); it
/// only reads, and reads the calling thread's credentials (unlike the setters,
/// libc does not broadcast it to other threads).
fn groups_into(buf: &mut [u32]) -> Option<usize> {
    let len = libc::c_int::try_from(buf.len()).ok()?;
    // SAFETY: getgroups(2) writes at most `len` gids (u32 on Linux, as `buf`'s
    // elements) into `buf`, which has room for `len`.
    let n = unsafe { libc::getgroups(len, buf.as_mut_ptr().cast::<libc::gid_t>()) };
    usize::try_from(n).ok()
}

/// Puts `req.target` on the calling thread with raw per-thread system calls, from
/// whatever identity it has now, and verifies it; aborts if it did not take.
///
/// A target below Impersonation level (`root`) puts the thread in the empty
/// directory, right after the thread's own uid and capabilities are back (the
/// chroot needs `CAP_SYS_CHROOT`) and before the new identity drops them; a target
/// that is not puts the thread's root and cwd back once all of its own
/// credentials are (its groups may be what lets it enter them).
///
/// # Errors
/// Only if the root and cwd to come back to cannot be opened: then nothing was
/// changed.
fn apply(slot: &Slot, req: &Request) -> rustix::io::Result<()> {
    let (home, target) = (&req.home, &req.target);
    let saved = &slot.saved_fs;
    // SAFETY: only the target thread, in this function, uses the scratch space, and
    // only one request is applied at a time.
    let scratch = unsafe { &mut *req.scratch.get() };
    let fail = |what: &str| -> ! {
        die(what);
    };
    // The only step that may fail: made before anything changes.
    let back = match target.root {
        Some(_) if !saved.is_confined() => Some(SavedFs::open_current()?),
        _ => None,
    };
    // Back to the thread's own uid and capabilities: always allowed (the real and
    // saved uid are its own), and what the rest needs.
    if rustix::process::geteuid().as_raw() != home.uid
        && rthread::set_thread_res_uid(None, Uid::from_raw(home.uid), None).is_err()
    {
        fail("guise: SetThreadToken: setresuid back failed; aborting\n");
    }
    if rthread::set_capabilities(None, home.capabilities).is_err() {
        fail("guise: SetThreadToken: capset back failed; aborting\n");
    }
    let same_groups = |want: &[Gid], scratch: &mut [u32]| {
        groups_into(scratch).is_some_and(|n| {
            n == want.len() && scratch[..n].iter().zip(want).all(|(a, b)| *a == b.as_raw())
        })
    };
    if let (Some(empty), Some(back)) = (target.root, back) {
        // SAFETY: the process keeps the empty directory open for its whole life.
        let empty = unsafe { BorrowedFd::borrow_raw(empty) };
        if saved.confine(empty, back).is_err() {
            fail("guise: SetThreadToken: chroot to the empty directory failed; aborting\n");
        }
    } else if target.root.is_none() && saved.is_confined() {
        if !same_groups(&home.groups, scratch) && rthread::set_thread_groups(&home.groups).is_err()
        {
            fail("guise: SetThreadToken: setgroups back failed; aborting\n");
        }
        if rustix::process::getegid().as_raw() != home.gid
            && rthread::set_thread_res_gid(None, Gid::from_raw(home.gid), None).is_err()
        {
            fail("guise: SetThreadToken: setresgid back failed; aborting\n");
        }
        if saved.release().is_err() {
            fail("guise: SetThreadToken: cannot put back the thread's root and cwd; aborting\n");
        }
    }
    if !same_groups(&target.groups, scratch) && rthread::set_thread_groups(&target.groups).is_err()
    {
        fail("guise: SetThreadToken: setgroups failed; aborting\n");
    }
    if rustix::process::getegid().as_raw() != target.gid
        && rthread::set_thread_res_gid(None, Gid::from_raw(target.gid), None).is_err()
    {
        fail("guise: SetThreadToken: setresgid failed; aborting\n");
    }
    if target.uid != home.uid
        && rthread::set_thread_res_uid(None, Uid::from_raw(target.uid), None).is_err()
    {
        fail("guise: SetThreadToken: setresuid failed; aborting\n");
    }
    if rthread::set_capabilities(None, target.capabilities).is_err() {
        fail("guise: SetThreadToken: capset failed; aborting\n");
    }
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(target.umask));
    // Verify what the kernel now says.
    let caps_ok = rthread::capabilities(None).is_ok_and(|c| c == target.capabilities);
    if rustix::process::geteuid().as_raw() != target.uid
        || rustix::process::getegid().as_raw() != target.gid
        || !same_groups(&target.groups, scratch)
        || !caps_ok
    {
        fail("guise: SetThreadToken: the thread's credentials did not take; aborting\n");
    }
    Ok(())
}

extern "C" fn handler(_: libc::c_int) {
    // SAFETY: errno is the interrupted code's; it is put back before returning.
    let saved = unsafe { *libc::__errno_location() };
    let slot = MINE.get();
    if !slot.is_null() {
        // SAFETY: the thread keeps its slot alive while MINE points at it (it
        // clears MINE before the slot can go).
        let slot = unsafe { &*slot };
        slot.signalled();
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// Installs [`handler`] for [`signal`] once per process.
fn install_handler() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    let r = INSTALLED.get_or_init(|| {
        // SAFETY: a zeroed sigaction is valid; sigaction(2) reads `new` and writes
        // `old`, both live for the call.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal(), std::ptr::null(), &mut old) != 0 {
                return Err(*libc::__errno_location());
            }
            if old.sa_sigaction != libc::SIG_DFL {
                return Err(libc::EBUSY);
            }
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
            new.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut new.sa_mask);
            if libc::sigaction(signal(), &new, std::ptr::null_mut()) != 0 {
                return Err(*libc::__errno_location());
            }
        }
        Ok(())
    });
    r.map_err(io::Error::from_raw_os_error)
}

/// The request protocol driven by direct calls: the tests play the signal handler
/// ([`Slot::signalled`]) themselves and put a stand-in where the credential calls
/// would be, so no signal is sent and no credential changes. They also run under
/// Miri (`scripts/miri.sh`), which checks the atomics, the futex waits and that
/// every request is freed once.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use rustix::thread::CapabilitySet;

    /// The (home uid, target uid) of every request the stand-in applied; each test
    /// uses uids of its own.
    static APPLIED: Mutex<Vec<(u32, u32)>> = Mutex::new(Vec::new());

    /// Stands in for [`apply`]: records what it would have put on the thread.
    fn record(_: &Slot, req: &Request) -> rustix::io::Result<()> {
        APPLIED.lock().unwrap().push((req.home.uid, req.target.uid));
        Ok(())
    }

    /// Stands in for an [`apply`] that cannot open the root and cwd to come back
    /// to (no descriptor left): it changes nothing.
    fn out_of_descriptors(_: &Slot, _: &Request) -> rustix::io::Result<()> {
        Err(rustix::io::Errno::MFILE)
    }

    /// How often a request to take on `uid` was applied.
    fn applied_to(uid: u32) -> usize {
        APPLIED
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, t)| *t == uid)
            .count()
    }

    /// The signal stays pending: the test runs the handler when it chooses.
    fn pending(_: &Slot) -> io::Result<()> {
        Ok(())
    }

    /// The handler runs at once.
    fn at_once(slot: &Slot) -> io::Result<()> {
        slot.signalled();
        Ok(())
    }

    /// The signal cannot be sent (the thread has ended).
    fn unsent(_: &Slot) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::ESRCH))
    }

    fn identity(uid: u32) -> Identity {
        Identity {
            uid,
            gid: uid,
            groups: Box::new([Gid::from_raw(uid)]),
            capabilities: CapabilitySets {
                effective: CapabilitySet::empty(),
                permitted: CapabilitySet::empty(),
                inheritable: CapabilitySet::empty(),
            },
            umask: 0o022,
            root: None,
        }
    }

    fn request_for(uid: u32) -> Box<Request> {
        Request::new(identity(1000), identity(uid))
    }

    fn slot(
        apply: fn(&Slot, &Request) -> rustix::io::Result<()>,
        notify: fn(&Slot) -> io::Result<()>,
    ) -> Arc<Slot> {
        Arc::new(Slot::with_seams(1, apply, notify))
    }

    /// Nothing left behind: no request, no asker.
    fn assert_idle(slot: &Slot) {
        assert_eq!(slot.state.load(Ordering::SeqCst), IDLE);
        assert!(slot.request.load(Ordering::SeqCst).is_null());
    }

    /// Waits (yielding) until the slot's state is `state`.
    fn until(slot: &Slot, state: u32) {
        while slot.state.load(Ordering::SeqCst) != state {
            std::thread::yield_now();
        }
    }

    const LONG: Duration = Duration::from_secs(20);

    #[test]
    fn remote_request_applied_at_once() {
        let slot = slot(record, at_once);
        slot.request(request_for(71_001), LONG).unwrap();
        assert_eq!(applied_to(71_001), 1);
        assert!(APPLIED.lock().unwrap().contains(&(1000, 71_001)));
        assert_eq!(slot.applied(), 1);
        assert_idle(&slot);
        // The slot takes the next request.
        slot.request(request_for(71_002), LONG).unwrap();
        assert_eq!(applied_to(71_002), 1);
        assert_eq!(slot.applied(), 2);
        assert_idle(&slot);
    }

    /// A request that arrives during the thread's own credential change waits for
    /// its end and is applied then, on the thread; the asker is woken, not left to
    /// its time limit.
    #[test]
    fn remote_request_deferred_until_leave() {
        let slot = slot(record, pending);
        slot.enter();
        let asker = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                let started = Instant::now();
                let r = slot.request(request_for(72_001), LONG);
                (r, started.elapsed())
            })
        };
        until(&slot, REQUESTED);
        slot.signalled();
        assert!(slot.deferred.load(Ordering::SeqCst));
        assert_eq!(
            applied_to(72_001),
            0,
            "applied during the thread's own change"
        );
        assert_eq!(slot.applied(), 0);
        slot.leave();
        assert_eq!(applied_to(72_001), 1);
        let (r, waited) = asker.join().unwrap();
        r.unwrap();
        assert!(waited < LONG / 2, "the asker was not woken: {waited:?}");
        assert_eq!(slot.applied(), 1);
        assert!(!slot.deferred.load(Ordering::SeqCst));
        assert_idle(&slot);
    }

    /// A thread that never takes the request up: the asker gives up after the
    /// limit, and the request is not applied later either.
    #[test]
    fn remote_request_times_out_and_changes_nothing() {
        let slot = slot(record, at_once);
        slot.enter();
        let limit = Duration::from_millis(20);
        let started = Instant::now();
        let e = slot.request(request_for(73_001), limit).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT));
        assert!(started.elapsed() >= limit);
        assert_idle(&slot);
        // The handler did run (and deferred it); leaving finds it cancelled.
        slot.leave();
        assert_eq!(applied_to(73_001), 0);
        assert_eq!(slot.applied(), 0);
        assert_idle(&slot);
        // The next request goes through.
        slot.request(request_for(73_002), LONG).unwrap();
        assert_eq!(applied_to(73_002), 1);
        assert_eq!(slot.applied(), 1);
    }

    #[test]
    fn remote_request_to_ended_thread() {
        let slot = slot(record, at_once);
        slot.gone();
        let e = slot.request(request_for(74_001), LONG).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
        assert_eq!(applied_to(74_001), 0);
        assert_idle(&slot);
    }

    /// The signal could not be sent: the error is the sender's, nothing applied,
    /// and a late handler finds nothing to do.
    #[test]
    fn remote_request_signal_not_sent() {
        let slot = slot(record, unsent);
        let e = slot.request(request_for(75_001), LONG).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
        assert_idle(&slot);
        slot.signalled();
        assert_eq!(applied_to(75_001), 0);
        assert_eq!(slot.applied(), 0);
    }

    /// One request at a time: a second asker gets EBUSY and its request is never
    /// applied.
    #[test]
    fn remote_request_one_at_a_time() {
        let slot = slot(record, pending);
        let first = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                let started = Instant::now();
                let r = slot.request(request_for(76_001), LONG);
                (r, started.elapsed())
            })
        };
        until(&slot, REQUESTED);
        let e = slot.request(request_for(76_002), LONG).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBUSY));
        slot.signalled();
        let (r, waited) = first.join().unwrap();
        r.unwrap();
        assert!(waited < LONG / 2, "the asker was not woken: {waited:?}");
        assert_eq!(applied_to(76_001), 1);
        assert_eq!(applied_to(76_002), 0);
        assert_eq!(slot.applied(), 1);
        assert_idle(&slot);
    }

    /// A thread that cannot take the request up (it has no descriptor left for
    /// the root and cwd to come back to) changes nothing: the asker gets its error
    /// at once, the applied count stays, and the slot takes the next request.
    #[test]
    fn remote_request_the_thread_cannot_take_up_fails_and_changes_nothing() {
        let slot = slot(out_of_descriptors, at_once);
        let e = slot.request(request_for(78_001), LONG).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
        assert_eq!(slot.applied(), 0);
        assert_idle(&slot);
        assert!(!slot.saved_fs().is_confined());
        let e = slot.request(request_for(78_002), LONG).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
        assert_idle(&slot);
    }

    /// A signal without a request (a reused thread id) changes nothing.
    #[test]
    fn remote_stray_signal_does_nothing() {
        let slot = slot(record, pending);
        slot.signalled();
        slot.enter();
        slot.signalled();
        slot.leave();
        assert_eq!(slot.applied(), 0);
        assert_idle(&slot);
    }

    /// Holds [`gated`] until a test opens it.
    static GATE: AtomicBool = AtomicBool::new(false);

    /// A slow [`apply`]: waits for the gate, then records.
    fn gated(slot: &Slot, req: &Request) -> rustix::io::Result<()> {
        while !GATE.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        record(slot, req)
    }

    /// Sends nothing, and returns only once the target has begun to apply the
    /// request: the asker's time limit then runs out while it is being applied.
    fn until_applying(slot: &Slot) -> io::Result<()> {
        until(slot, APPLYING);
        Ok(())
    }

    /// A request the thread has begun to apply is waited for to the end, past the
    /// time limit: it cannot be cancelled half done.
    #[test]
    fn remote_request_being_applied_is_waited_for() {
        let slot = slot(gated, until_applying);
        let limit = Duration::from_millis(1);
        let asker = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || slot.request(request_for(77_001), limit))
        };
        let target = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                until(&slot, REQUESTED);
                slot.signalled();
            })
        };
        until(&slot, APPLYING);
        std::thread::sleep(limit * 20);
        assert!(
            !asker.is_finished(),
            "the asker left a request being applied"
        );
        GATE.store(true, Ordering::SeqCst);
        target.join().unwrap();
        asker.join().unwrap().unwrap();
        assert_eq!(applied_to(77_001), 1);
        assert_eq!(slot.applied(), 1);
        assert_idle(&slot);
    }
}
