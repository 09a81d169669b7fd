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

use std::cell::{Cell, UnsafeCell};
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering, compiler_fence};

use rustix::process::{Gid, Uid};
use rustix::thread::{self as rthread, CapabilitySets};

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

/// An identity to put on the target thread, made by the asker.
pub(crate) struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Sorted, without duplicates (as the kernel reports them).
    pub groups: Box<[Gid]>,
    pub capabilities: CapabilitySets,
    pub umask: u32,
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
pub(crate) struct Slot {
    tid: i32,
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
    /// The record of the calling thread, which it must keep alive (and mark
    /// [`Slot::gone`]) until it ends; installs the signal handler once per process.
    ///
    /// # Errors
    /// The kernel's, or `EBUSY` if the application handles the signal itself.
    pub(crate) fn for_current_thread() -> io::Result<std::sync::Arc<Slot>> {
        install_handler()?;
        let slot = std::sync::Arc::new(Slot {
            tid: rustix::thread::gettid().as_raw_nonzero().get(),
            state: AtomicU32::new(IDLE),
            request: AtomicPtr::new(std::ptr::null_mut()),
            busy: AtomicBool::new(false),
            deferred: AtomicBool::new(false),
            applied: AtomicU64::new(0),
            gone: AtomicBool::new(false),
        });
        MINE.set(std::sync::Arc::as_ptr(&slot));
        Ok(slot)
    }

    /// How many requests the thread has applied.
    pub(crate) fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
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

    /// On the target: applies the waiting request, if it still waits.
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
        apply(req);
        self.applied.fetch_add(1, Ordering::SeqCst);
        self.state.store(DONE, Ordering::SeqCst);
    }

    /// On the asker: has the thread apply `req` and waits until it did. The thread
    /// applies it at once (from the signal handler) or as soon as its own
    /// credential change is over.
    ///
    /// # Errors
    /// `ESRCH` if the thread has ended; `ETIMEDOUT` if it did not take the request
    /// up within `limit` (then nothing was changed); `EBUSY` if another request is
    /// under way.
    pub(crate) fn request(&self, req: Box<Request>, limit: std::time::Duration) -> io::Result<()> {
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
        // SAFETY: tgkill with this process's pid and a tid of it. A thread that has
        // ended gives ESRCH; if its tid was reused by a new thread of this process,
        // that thread's handler finds no request of its own and the asker times
        // out, having changed nothing.
        let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), self.tid, signal()) };
        let sent = if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
        let started = std::time::Instant::now();
        let outcome = loop {
            match self.state.load(Ordering::SeqCst) {
                DONE => break Ok(()),
                REQUESTED
                    if (sent.is_err() || started.elapsed() > limit)
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
                _ => {}
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        };
        self.request.store(std::ptr::null_mut(), Ordering::SeqCst);
        self.state.store(IDLE, Ordering::SeqCst);
        // SAFETY: the thread has applied the request (DONE) or never will
        // (CANCELLED); either way no one reads it any more.
        drop(unsafe { Box::from_raw(ptr) });
        outcome
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

/// Reads the thread's supplementary groups into `buf` with the raw system call;
/// how many there are.
fn groups_into(buf: &mut [u32]) -> Option<usize> {
    // SAFETY: getgroups(2) writes at most `buf.len()` gids into `buf`.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getgroups,
            buf.len() as libc::c_int,
            buf.as_mut_ptr(),
        )
    };
    usize::try_from(n).ok()
}

/// Puts `req.target` on the calling thread with raw per-thread system calls, from
/// whatever identity it has now, and verifies it; aborts if it did not take.
fn apply(req: &Request) {
    let (home, target) = (&req.home, &req.target);
    // SAFETY: only the target thread, in this function, uses the scratch space, and
    // only one request is applied at a time.
    let scratch = unsafe { &mut *req.scratch.get() };
    let fail = |what: &str| -> ! {
        die(what);
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
}

extern "C" fn handler(_: libc::c_int) {
    // SAFETY: errno is the interrupted code's; it is put back before returning.
    let saved = unsafe { *libc::__errno_location() };
    let slot = MINE.get();
    if !slot.is_null() {
        // SAFETY: the thread keeps its slot alive while MINE points at it (it
        // clears MINE before the slot can go).
        let slot = unsafe { &*slot };
        if slot.busy.load(Ordering::SeqCst) {
            slot.deferred.store(true, Ordering::SeqCst);
        } else {
            slot.take_up();
        }
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
