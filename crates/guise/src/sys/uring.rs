//! An io_uring instance that opens files with a registered personality: the
//! credentials a thread had when it registered them, so that an open runs as a
//! client without the calling thread switching (`IORING_REGISTER_PERSONALITY`).
//!
//! A submission can outlive the system call that made it: the kernel may punt an
//! open to an io-wq worker (a cold dentry, `O_CREAT`, `O_TRUNC`), and the wait for
//! its completion can be interrupted (a signal, ptrace, SIGSTOP, a cgroup freeze).
//! So each submission carries a tag of its own (`user_data`), a completion is taken
//! only by the submission whose tag it bears, and a call never returns while its
//! submission is in flight. A completion with any other tag is unexpected: its
//! descriptor is closed and the ring is marked broken, to be discarded with its
//! personalities.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A small ring, used by one thread at a time, one operation at a time.
pub(crate) struct Ring {
    ring: io_uring::IoUring,
    /// The tag of the next submission (never 0: a zeroed entry is not ours).
    next_tag: u64,
    /// Something unexpected happened: the ring must not be used again.
    broken: bool,
    /// How many completions of other submissions were met (and their descriptors
    /// closed).
    foreign: u64,
}

impl Ring {
    /// A new ring.
    ///
    /// # Errors
    /// The kernel's: `ENOSYS`, `EPERM` where io_uring is disabled
    /// (`kernel.io_uring_disabled`, a seccomp filter).
    pub(crate) fn new() -> io::Result<Ring> {
        io_uring::IoUring::new(4).map(|ring| Ring {
            ring,
            next_tag: 1,
            broken: false,
            foreign: 0,
        })
    }

    /// Whether the ring met something unexpected and must be discarded.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// How many completions that belonged to no waiting submission were met.
    pub(crate) fn foreign_completions(&self) -> u64 {
        self.foreign
    }

    /// Registers the calling thread's current credentials as a personality.
    pub(crate) fn register_personality(&self) -> io::Result<u16> {
        self.ring.submitter().register_personality()
    }

    /// Gives a personality up.
    pub(crate) fn unregister_personality(&self, id: u16) -> io::Result<()> {
        self.ring.submitter().unregister_personality(id)
    }

    /// A completion that no submission waits for: the ring is broken, and a
    /// descriptor it opened belongs to no one, so it is closed.
    fn discard_foreign(&mut self, result: i32) {
        self.broken = true;
        self.foreign += 1;
        if result >= 0 {
            // SAFETY: every operation this ring submits is an open, and a
            // successful open's result is a new descriptor in this process that no
            // one was given (its submission is not waiting for it): closing it is
            // the only use.
            drop(unsafe { OwnedFd::from_raw_fd(result) });
        }
    }

    /// `openat2(dirfd, path, how)` with the credentials of `personality`.
    ///
    /// Returns only once the kernel completed this submission (or never took it):
    /// an interrupted wait waits again.
    ///
    /// # Errors
    /// The open's own error; `EIO` if the ring is broken (the caller discards it);
    /// `EBUSY` if the submission queue is full (never with one call at a time).
    ///
    /// # Panics
    /// Aborts the process if the kernel took the submission and waiting for its
    /// completion fails other than by an interruption: the open would complete
    /// unseen.
    pub(crate) fn openat2(
        &mut self,
        personality: u16,
        dirfd: BorrowedFd<'_>,
        path: &CStr,
        flags: u64,
        mode: u64,
        resolve: u64,
    ) -> io::Result<OwnedFd> {
        if self.broken {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let tag = self.next_tag;
        self.next_tag = self.next_tag.checked_add(1).unwrap_or(1);
        let how = io_uring::types::OpenHow::new()
            .flags(flags)
            .mode(mode)
            .resolve(resolve);
        let entry = io_uring::opcode::OpenAt2::new(
            io_uring::types::Fd(dirfd.as_raw_fd()),
            path.as_ptr(),
            &raw const how,
        )
        .build()
        .personality(personality)
        .user_data(tag);
        // SAFETY: `path` and `how` stay alive until this submission's own
        // completion is reaped below (the loop returns only then, or when the
        // kernel never took the entry); the ring is used by this call alone
        // (`&mut self`).
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.broken = true;
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let result = loop {
            let mut mine = None;
            let mut others = Vec::new();
            for cqe in self.ring.completion() {
                if cqe.user_data() == tag && mine.is_none() {
                    mine = Some(cqe.result());
                } else {
                    others.push(cqe.result());
                }
            }
            for r in others {
                self.discard_foreign(r);
            }
            if let Some(r) = mine {
                break r;
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) => {}
                Err(e) if !self.ring.submission().is_empty() => {
                    // The kernel never took the entry: nothing is in flight, and a
                    // dropped ring never runs it.
                    self.broken = true;
                    return Err(e);
                }
                Err(e) => {
                    // In flight, and nothing can wait for it: its descriptor would
                    // appear unowned. Fail closed.
                    eprintln!("guise: cannot wait for an io_uring open in flight ({e}): aborting");
                    std::process::abort();
                }
            }
        };
        if result < 0 {
            return Err(io::Error::from_raw_os_error(-result));
        }
        // SAFETY: the completion bears this submission's tag: its result is the new
        // descriptor this open made, which nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(result) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/thread-self/fd").unwrap().count()
    }

    /// A completion that belongs to no waiting open (here a stray open submitted
    /// behind the ring's back) is never taken for the open that waits: its
    /// descriptor is closed, the ring is marked broken, and the open gets its own.
    #[test]
    fn a_completion_of_another_submission_is_never_taken_and_its_descriptor_is_closed() {
        let Ok(mut ring) = Ring::new() else {
            let ci = std::env::var("CI")
                .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
            assert!(
                !ci,
                "no io_uring here and CI is set: a test that cannot run fails"
            );
            eprintln!("skipped: needs io_uring");
            return;
        };
        let before = open_fds();
        let stray = io_uring::opcode::OpenAt::new(
            io_uring::types::Fd(libc::AT_FDCWD),
            c"/dev/null".as_ptr(),
        )
        .flags(libc::O_RDONLY | libc::O_CLOEXEC)
        .build()
        .user_data(u64::MAX);
        // SAFETY: the path is a static C string; the entry is reaped by the open
        // below (as a foreign completion) before the ring is dropped.
        unsafe { ring.ring.submission().push(&stray) }.unwrap();
        ring.ring.submit().unwrap();
        let cwd = rustix::fs::CWD;
        let fd = ring
            .openat2(
                0,
                cwd,
                c"/",
                (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
                0,
                0,
            )
            .unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        assert_eq!(
            rustix::fs::FileType::from_raw_mode(st.st_mode),
            rustix::fs::FileType::Directory,
            "the open got its own file, not the stray one"
        );
        assert!(ring.is_broken());
        assert_eq!(ring.foreign_completions(), 1);
        drop(fd);
        assert_eq!(open_fds(), before, "the stray descriptor was closed");
        assert!(
            ring.openat2(0, cwd, c"/", libc::O_RDONLY as u64, 0, 0)
                .is_err_and(|e| e.raw_os_error() == Some(libc::EIO))
        );
    }
}
