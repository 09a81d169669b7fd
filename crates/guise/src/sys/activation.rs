//! Descriptors a service manager passed at start (`LISTEN_FDS`), taken over once.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the inherited descriptors were taken already.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Whether this is the first call: the caller may then read `LISTEN_FDS` and
/// [`take`] the descriptors. Later calls say no, before anything touches the
/// numbers, which may belong to something else by then.
pub(crate) fn claim() -> bool {
    !TAKEN.swap(true, Ordering::SeqCst)
}

/// Takes ownership of `fds`, the descriptors `sd_notify::listen_fds` reported for
/// this process (`LISTEN_PID` is this process, numbers from 3 on), and marks them
/// close-on-exec. Call it only after [`claim`] said yes, so no descriptor gets two
/// owners. A number that is not open is left out.
pub(crate) fn take(fds: impl Iterator<Item = RawFd>) -> Vec<OwnedFd> {
    fds.filter(|&fd| {
        // SAFETY: F_GETFD reads the flags of a descriptor number and touches
        // nothing else; any number is allowed (EBADF if it is not open).
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    })
    .map(|fd| {
        // SAFETY: the service manager opened these descriptors for this process
        // (`LISTEN_PID` matched), each is open (checked just above), and nothing
        // in guise owns them before this first and only call (`claim`): they were
        // open before the process started, so no later open returned their
        // numbers. Owning them here is sound.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC);
        owned
    })
    .collect()
}
