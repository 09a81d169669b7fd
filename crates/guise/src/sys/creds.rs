//! Reading the calling thread's supplementary groups into a buffer the caller
//! owns: the verification after every switch allocates nothing.

use std::io;

/// `getgroups(2)` into `buf`: how many groups the thread has, or `EINVAL` when
/// `buf` is too small for them.
pub(crate) fn getgroups_into(buf: &mut [u32]) -> io::Result<usize> {
    // The 32-bit gid form of the call (on x86 and arm, `getgroups` is the 16-bit one).
    #[cfg(any(target_arch = "x86", target_arch = "arm"))]
    const GETGROUPS: libc::c_long = libc::SYS_getgroups32;
    #[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
    const GETGROUPS: libc::c_long = libc::SYS_getgroups;
    let len = libc::c_int::try_from(buf.len()).unwrap_or(libc::c_int::MAX);
    // SAFETY: getgroups(2) writes at most `len` gids into `buf`, which has room
    // for `buf.len() >= len` of them.
    let n = unsafe { libc::syscall(GETGROUPS, len, buf.as_mut_ptr()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `groups` as rustix's `Gid`s, without copying.
pub(crate) fn as_gids(groups: &[u32]) -> &[rustix::process::Gid] {
    const _: () = assert!(
        std::mem::size_of::<rustix::process::Gid>() == std::mem::size_of::<u32>()
            && std::mem::align_of::<rustix::process::Gid>() == std::mem::align_of::<u32>()
    );
    // SAFETY: `Gid` is `#[repr(transparent)]` over `gid_t` (`u32` on Linux), as the
    // assertion above checks for size and alignment, and every `u32` is a valid
    // gid; the slice borrows `groups` for the same lifetime.
    unsafe { std::slice::from_raw_parts(groups.as_ptr().cast(), groups.len()) }
}
