//! `fork` of a process that has one thread.

use std::io;

/// Which side of a fork the caller is on.
pub(crate) enum Side {
    /// The parent; the child's pid.
    Parent(u32),
    /// The child.
    Child,
}

/// Forks the calling process, which must have this one thread: otherwise another
/// thread could hold a lock (of the allocator, of stdio) that the child would
/// inherit locked, and the child could do nothing but raw system calls.
///
/// # Errors
/// `InvalidInput` when the process has more than one thread (or their number
/// cannot be read); the error of `fork` otherwise.
pub(crate) fn fork_single_threaded() -> io::Result<Side> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the process has {threads} threads; only a process of one thread may fork"),
        ));
    }
    // SAFETY: the process has one thread, the caller, checked just above (only
    // this thread could start another, and it is here): the child is a whole copy
    // of the process, in which every function is as safe to call as in the parent.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Side::Parent(child.as_raw() as u32)),
        nix::unistd::ForkResult::Child => Ok(Side::Child),
    }
}
