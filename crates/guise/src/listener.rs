//! Unix-socket plumbing every transport's server shares: a socket file made with
//! its mode from the start, refusal to take over another's path, and the accept
//! errors a server waits out.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// A warning logged at most once a second; the ones in between are counted and
/// reported with the next.
pub(crate) struct RateLimited {
    last: std::sync::Mutex<Option<std::time::Instant>>,
    suppressed: std::sync::atomic::AtomicU64,
}

impl RateLimited {
    pub(crate) const fn new() -> Self {
        RateLimited {
            last: std::sync::Mutex::new(None),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(n)`, with `n` the events counted since the last one allowed, if
    /// none was allowed in the last second; else `None`, and this one is counted.
    pub(crate) fn allow(&self) -> Option<u64> {
        let mut allowed = None;
        self.warn(|n| allowed = Some(n));
        allowed
    }

    /// Calls `log` with the number of warnings suppressed since the last one, or
    /// counts this one if a warning was logged less than a second ago.
    pub(crate) fn warn(&self, log: impl FnOnce(u64)) {
        use std::sync::atomic::Ordering;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        drop(last);
        log(self.suppressed.swap(0, Ordering::Relaxed));
    }
}

/// An I/O error while doing `what`: of the kind [`ErrorKind::of_io`] gives it,
/// the I/O error kept as the cause (the OS error's number, or a copy of its
/// kind and words: an early end of stream, a frame over a limit).
pub(crate) fn io_err(what: &str, e: &io::Error) -> Error {
    let cause = match e.raw_os_error() {
        Some(n) => io::Error::from_raw_os_error(n),
        None => io::Error::new(e.kind(), e.to_string()),
    };
    Error::io(what.to_owned(), cause)
}

/// Refuses to take over a path that is not our own stale socket.
fn check_squatting(path: &Path) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let what = path.display();
    if !meta.file_type().is_socket() {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!("{what} exists and is not a socket: refusing to replace it"),
        ));
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!(
                "the socket {what} belongs to uid {}: refusing to replace it",
                meta.uid()
            ),
        ));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!("{what} is in use by another server"),
        ));
    }
    std::fs::remove_file(path).map_err(|e| io_err("removing a stale socket", &e))
}

/// Binds a socket file that has `mode` from the moment it exists: the bind runs on a
/// short-lived thread with its own fs context whose umask leaves exactly `mode`. No
/// `chmod` follows, so there is no path lookup another user could redirect (a symlink
/// swapped in after the bind would make a `chmod` change the mode of its target).
fn bind_with_mode(sa: &std::os::unix::net::SocketAddr, mode: u32) -> Result<UnixListener> {
    let what = match sa.as_pathname() {
        Some(p) => format!("binding unix:{}", p.display()),
        None => "binding the pipe".to_owned(),
    };
    if mode & !0o777 != 0 {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("a socket's mode is at most 0777, not {mode:o}"),
        ));
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            crate::sys::socket::unshare_fs()
                .map_err(|e| io_err("a private umask for the bind (unshare(CLONE_FS))", &e))?;
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(!mode & 0o777));
            UnixListener::bind_addr(sa).map_err(|e| io_err(&what, &e))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Binds a listening socket file at `path` with `mode`, after the squatting checks.
///
/// # Errors
/// [`ErrorKind::AccessDenied`] for a path that may not be taken; [`ErrorKind::Os`]
/// or [`ErrorKind::InvalidParameter`] if the socket cannot be made there.
pub(crate) fn bind_path(path: &Path, mode: u32) -> Result<UnixListener> {
    check_squatting(path)?;
    let sa = std::os::unix::net::SocketAddr::from_pathname(path).map_err(|e| {
        Error::sys(
            ErrorKind::InvalidParameter,
            format!("the socket path {}", path.display()),
            &e,
        )
    })?;
    bind_with_mode(&sa, mode)
}

pub(crate) fn is_fd_shortage(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Accept errors that pass: the kernel is out of something, or a client left.
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ECONNABORTED
                | libc::EINTR
                | libc::EPROTO
                | libc::EPERM
        )
    )
}
