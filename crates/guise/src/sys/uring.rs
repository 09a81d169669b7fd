//! An io_uring instance that opens files with a registered personality: the
//! credentials a thread had when it registered them, so that an open runs as a
//! client without the calling thread switching (`IORING_REGISTER_PERSONALITY`).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A small ring, used by one thread at a time, one operation at a time.
pub(crate) struct Ring(io_uring::IoUring);

impl Ring {
    /// A new ring.
    ///
    /// # Errors
    /// The kernel's: `ENOSYS`, `EPERM` where io_uring is disabled
    /// (`kernel.io_uring_disabled`, a seccomp filter).
    pub(crate) fn new() -> io::Result<Ring> {
        io_uring::IoUring::new(4).map(Ring)
    }

    /// Registers the calling thread's current credentials as a personality.
    pub(crate) fn register_personality(&self) -> io::Result<u16> {
        self.0.submitter().register_personality()
    }

    /// Gives a personality up.
    pub(crate) fn unregister_personality(&self, id: u16) -> io::Result<()> {
        self.0.submitter().unregister_personality(id)
    }

    /// `openat2(dirfd, path, how)` with the credentials of `personality`.
    pub(crate) fn openat2(
        &mut self,
        personality: u16,
        dirfd: BorrowedFd<'_>,
        path: &CStr,
        flags: u64,
        mode: u64,
        resolve: u64,
    ) -> io::Result<OwnedFd> {
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
        .user_data(1);
        // SAFETY: `path` and `how` stay alive until the completion is reaped below,
        // before this function returns; the ring is used by this call alone (`&mut
        // self`), so no other entry is in flight.
        unsafe { self.0.submission().push(&entry) }
            .map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))?;
        loop {
            match self.0.submit_and_wait(1) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let cqe = self
            .0
            .completion()
            .next()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EIO))?;
        let r = cqe.result();
        if r < 0 {
            return Err(io::Error::from_raw_os_error(-r));
        }
        // SAFETY: a successful open's result is a new descriptor that nothing else
        // owns.
        Ok(unsafe { OwnedFd::from_raw_fd(r) })
    }
}
