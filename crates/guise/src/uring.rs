//! Opening a file as a client without switching the calling thread's credentials:
//! io_uring personalities (`IORING_REGISTER_PERSONALITY`).
//!
//! [`open_as`] opens a path with `openat2` as the kernel would for a thread that
//! impersonates the token: the first time for an identity, the calling thread
//! impersonates the token for a moment and registers its credentials with its
//! ring as a personality; afterwards the open is submitted with that personality
//! and the thread's own credentials never change. Each thread keeps its own ring
//! and at most [`PERSONALITIES`] personalities, the least recently used given up
//! first. What is opened is the same as through [`crate::Token::run_as`]: an
//! identity below Impersonation level opens nothing
//! ([`ErrorKind::BadImpersonationLevel`]), and where io_uring is unavailable
//! (`kernel.io_uring_disabled`, a seccomp filter, an old kernel) or turned off
//! ([`set_enabled`], `GUISE_IO_URING=off`) the thread switches instead.
//!
//! Only the open needs the client's credentials: what is then done with the
//! descriptor (read, getdents, fstat) is the same for anyone who holds it.
//!
//! # Example
//! ```no_run
//! use guise::uring::{open_as, OpenFlags, Resolve};
//! use guise::Token;
//!
//! let dir = std::fs::File::open("/srv/files").unwrap();
//! let client = Token::from_ids(1000, 1000, &[1000])?;
//! // As the kernel would open it for a thread impersonating the client.
//! let fd = open_as(&client, &dir, "reports/2026.txt", OpenFlags::CLOEXEC, 0, Resolve::BENEATH)?;
//! # let _ = fd;
//! # Ok::<(), guise::Error>(())
//! ```

use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::cred::OsIdentity;
use crate::error::{Error, ErrorKind, Result};
use crate::sys::uring::Ring;
use crate::token::Token;

/// The most personalities a thread's ring keeps: enough that a server's workers
/// serving a few hundred identities register each once and then never again (at 64,
/// 256 identities over 8 workers made almost every open a registration, and the
/// io_uring path slower than switching). Each holds one reference to a set of
/// credentials in the kernel.
pub const PERSONALITIES: usize = 512;

static ENABLED: AtomicBool = AtomicBool::new(true);
static REGISTERED: AtomicU64 = AtomicU64::new(0);
static DISCARDED: AtomicU64 = AtomicU64::new(0);
static FOREIGN: AtomicU64 = AtomicU64::new(0);

/// Turns the io_uring path on or off for the whole process (off: every open
/// switches the thread). It is on unless `GUISE_IO_URING=off` says otherwise.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::SeqCst);
}

fn enabled() -> bool {
    static FROM_ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    ENABLED.load(Ordering::SeqCst)
        && *FROM_ENV.get_or_init(|| std::env::var("GUISE_IO_URING").map_or(true, |v| v != "off"))
}

/// How many personalities the process has registered so far (each is one
/// credential switch and back).
pub fn personalities_registered() -> u64 {
    REGISTERED.load(Ordering::Relaxed)
}

/// A thread's ring and the personalities it keeps.
struct Personalities {
    ring: Ring,
    entries: Vec<(OsIdentity, u16, u64)>,
    tick: u64,
}

thread_local! {
    /// `None` until first use; `Some(None)` where io_uring is unavailable.
    static RING: RefCell<Option<Option<Personalities>>> = const { RefCell::new(None) };
}

/// Whether the calling thread opens through io_uring (its ring could be made, and
/// the path is on).
pub fn available() -> bool {
    enabled()
        && RING.with_borrow_mut(|r| {
            r.get_or_insert_with(|| {
                Ring::new().ok().map(|ring| Personalities {
                    ring,
                    entries: Vec::new(),
                    tick: 0,
                })
            })
            .is_some()
        })
}

bitflags::bitflags! {
    /// The flags of an [`open_as`] (`openat2`'s `O_*` flags), with the kernel's
    /// numbers: any flag the kernel knows can be given with `from_bits_retain`.
    /// No access flag means read-only (`O_RDONLY` is 0).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct OpenFlags: u32 {
        /// `O_WRONLY`.
        const WRONLY = libc::O_WRONLY as u32;
        /// `O_RDWR`.
        const RDWR = libc::O_RDWR as u32;
        /// `O_CREAT`: create the file if it does not exist (with the mode given).
        const CREATE = libc::O_CREAT as u32;
        /// `O_EXCL`: with `CREATE`, fail if it exists.
        const EXCL = libc::O_EXCL as u32;
        /// `O_NOCTTY`.
        const NOCTTY = libc::O_NOCTTY as u32;
        /// `O_TRUNC`.
        const TRUNC = libc::O_TRUNC as u32;
        /// `O_APPEND`.
        const APPEND = libc::O_APPEND as u32;
        /// `O_NONBLOCK`: never wait to open (a FIFO).
        const NONBLOCK = libc::O_NONBLOCK as u32;
        /// `O_DIRECTORY`: only a directory.
        const DIRECTORY = libc::O_DIRECTORY as u32;
        /// `O_NOFOLLOW`: not through a symbolic link in the last component.
        const NOFOLLOW = libc::O_NOFOLLOW as u32;
        /// `O_CLOEXEC`.
        const CLOEXEC = libc::O_CLOEXEC as u32;
        /// `O_PATH`: a descriptor that only names the file.
        const PATH = libc::O_PATH as u32;
        /// `O_TMPFILE`: an unnamed file in the directory given.
        const TMPFILE = libc::O_TMPFILE as u32;
    }
}

bitflags::bitflags! {
    /// How an [`open_as`] resolves its path (`openat2`'s `RESOLVE_*` flags), with
    /// the kernel's numbers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Resolve: u64 {
        /// `RESOLVE_NO_XDEV`: never cross a mount point.
        const NO_XDEV = 0x01;
        /// `RESOLVE_NO_MAGICLINKS`: never through `/proc`'s magic links.
        const NO_MAGICLINKS = 0x02;
        /// `RESOLVE_NO_SYMLINKS`: never through a symbolic link.
        const NO_SYMLINKS = 0x04;
        /// `RESOLVE_BENEATH`: never out of the directory given.
        const BENEATH = 0x08;
        /// `RESOLVE_IN_ROOT`: the directory given is `/` for the lookup.
        const IN_ROOT = 0x10;
        /// `RESOLVE_CACHED`: only from the cache, or fail with `EAGAIN`.
        const CACHED = 0x20;
    }
}

/// Opens `path` beneath `dirfd` (`openat2` with `flags`, `mode` and `resolve`) as
/// a thread impersonating `token` would, without switching the calling thread's
/// credentials where io_uring allows (see the [module documentation](self)).
///
/// # Errors
/// - [`ErrorKind::BadImpersonationLevel`] if the token would be impersonated below
///   Impersonation level (Windows opens nothing then).
/// - [`ErrorKind::InvalidParameter`] for a path with a NUL byte.
/// - The open's own error: [`ErrorKind::AccessDenied`] for `EACCES`/`EPERM`,
///   [`ErrorKind::Os`] otherwise (with the errno).
/// - As [`Token::run_as`] where the thread switches.
pub fn open_as(
    token: &Token,
    dirfd: impl AsFd,
    path: &str,
    flags: OpenFlags,
    mode: u32,
    resolve: Resolve,
) -> Result<OwnedFd> {
    let (flags, mode, resolve) = (
        OFlags::from_bits_retain(flags.bits()),
        Mode::from_raw_mode(mode),
        ResolveFlags::from_bits_retain(resolve.bits()),
    );
    let (level, identity) = crate::thread::identity_for(token)?;
    crate::thread::rules::may_open_as_client(Some(level))?;
    let open_err = |e: std::io::Error| Error::access(format!("opening {path:?}"), &e);
    if !available() {
        return token.run_as(|| {
            rustix::fs::openat2(&dirfd, path, flags, mode, resolve).map_err(|e| open_err(e.into()))
        })?;
    }
    let cpath = CString::new(path)
        .map_err(|_| Error::new(ErrorKind::InvalidParameter, "a path with a NUL byte"))?;
    let id = personality(token, &identity)?;
    RING.with_borrow_mut(|r| {
        let Some(Some(p)) = r.as_mut() else {
            unreachable!("available() made the ring")
        };
        let opened = p.ring.openat2(
            id,
            dirfd.as_fd(),
            &cpath,
            u64::from(flags.bits()),
            u64::from(mode.bits()),
            resolve.bits(),
        );
        if p.ring.is_broken() {
            // Something unexpected (a completion of no waiting submission, a
            // submission the kernel would not take): the ring and every
            // personality it holds go; the next open makes a new one.
            let foreign = p.ring.foreign_completions();
            FOREIGN.fetch_add(foreign, Ordering::Relaxed);
            DISCARDED.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                foreign,
                "an io_uring ring met something unexpected: it is discarded with its personalities"
            );
            *r = None;
        }
        // Only a completion tagged as this open's is its answer.
        opened.map_err(open_err)
    })
}

/// How many of the process's io_uring rings were discarded after meeting something
/// unexpected (see [`foreign_completions`]).
pub fn rings_discarded() -> u64 {
    DISCARDED.load(Ordering::Relaxed)
}

/// How many completions the process's rings met that belonged to no waiting
/// open; each descriptor such a completion carried was closed, never handed to a
/// caller. Always 0 unless the kernel misbehaves: each open waits for its own.
pub fn foreign_completions() -> u64 {
    FOREIGN.load(Ordering::Relaxed)
}

/// The calling thread's personality for `identity`, registered now (as `token`)
/// if it has none, giving up the least recently used one if it has too many.
fn personality(token: &Token, identity: &OsIdentity) -> Result<u16> {
    let found = RING.with_borrow_mut(|r| {
        let Some(Some(p)) = r.as_mut() else {
            return None;
        };
        p.tick += 1;
        let tick = p.tick;
        p.entries
            .iter_mut()
            .find(|(i, _, _)| i == identity)
            .map(|(_, id, used)| {
                *used = tick;
                *id
            })
    });
    if let Some(id) = found {
        return Ok(id);
    }
    // The thread is the client for a moment, to lend the ring its credentials.
    // Held steady throughout: another thread's SetThreadToken landing between the
    // switch and the registration would have the ring keep *that* identity (the
    // server's, for a revert) under this client's name, for every later open.
    let steady = crate::thread::steady();
    let id = token.run_as(|| {
        RING.with_borrow(|r| match r.as_ref() {
            Some(Some(p)) => p.ring.register_personality(),
            _ => Err(std::io::Error::from_raw_os_error(libc::ENOSYS)),
        })
    })?;
    drop(steady);
    let id = id.map_err(|e| Error::sys(ErrorKind::Os, "IORING_REGISTER_PERSONALITY", &e))?;
    REGISTERED.fetch_add(1, Ordering::Relaxed);
    RING.with_borrow_mut(|r| {
        let Some(Some(p)) = r.as_mut() else { return };
        if p.entries.len() >= PERSONALITIES
            && let Some(oldest) = (0..p.entries.len()).min_by_key(|&i| p.entries[i].2)
        {
            let (_, old, _) = p.entries.swap_remove(oldest);
            if let Err(e) = p.ring.unregister_personality(old) {
                tracing::warn!(%e, "cannot give an io_uring personality up");
            }
        }
        p.entries.push((identity.clone(), id, p.tick));
    });
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::{OpenFlags, Resolve};
    use rustix::fs::{OFlags, ResolveFlags};

    #[test]
    fn open_flags_and_resolve_are_the_kernels_numbers() {
        for (ours, theirs) in [
            (OpenFlags::WRONLY, OFlags::WRONLY),
            (OpenFlags::RDWR, OFlags::RDWR),
            (OpenFlags::CREATE, OFlags::CREATE),
            (OpenFlags::EXCL, OFlags::EXCL),
            (OpenFlags::NOCTTY, OFlags::NOCTTY),
            (OpenFlags::TRUNC, OFlags::TRUNC),
            (OpenFlags::APPEND, OFlags::APPEND),
            (OpenFlags::NONBLOCK, OFlags::NONBLOCK),
            (OpenFlags::DIRECTORY, OFlags::DIRECTORY),
            (OpenFlags::NOFOLLOW, OFlags::NOFOLLOW),
            (OpenFlags::CLOEXEC, OFlags::CLOEXEC),
            (OpenFlags::PATH, OFlags::PATH),
            (OpenFlags::TMPFILE, OFlags::TMPFILE),
        ] {
            assert_eq!(ours.bits(), theirs.bits(), "{ours:?}");
        }
        for (ours, theirs) in [
            (Resolve::NO_XDEV, ResolveFlags::NO_XDEV),
            (Resolve::NO_MAGICLINKS, ResolveFlags::NO_MAGICLINKS),
            (Resolve::NO_SYMLINKS, ResolveFlags::NO_SYMLINKS),
            (Resolve::BENEATH, ResolveFlags::BENEATH),
            (Resolve::IN_ROOT, ResolveFlags::IN_ROOT),
            (Resolve::CACHED, ResolveFlags::CACHED),
        ] {
            assert_eq!(ours.bits(), theirs.bits(), "{ours:?}");
        }
    }
}
