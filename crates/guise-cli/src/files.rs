//! The file operations `guise serve` and `guise rpc serve` run as their clients:
//! paths resolved beneath the served root (`openat2` with `RESOLVE_BENEATH`), only
//! regular files read and written (a FIFO or a device never blocks a worker), reads
//! in bounded chunks, writes to a temporary file created as the client that
//! replaces the target only once whole (fsync, rename), never through a symlink,
//! and never the server's own `/proc`.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use guise::{Error, ErrorKind};
use rustix::fs::{Mode, OFlags, ResolveFlags};

/// The most data in one chunk of a read or a write.
pub const CHUNK: usize = 64 * 1024;
/// The most names a listing holds.
const MAX_LIST_NAMES: usize = 10_000;
/// The most bytes of names a listing holds (each name counted with 8 bytes more).
pub const MAX_LIST_BYTES: usize = 512 * 1024;
/// procfs's `f_type` (`PROC_SUPER_MAGIC`).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// A file operation's result: its value, or the Win32 error and why.
pub type Result<T> = std::result::Result<T, Error>;

/// The error of a file operation that failed with `e`: guise's errno table
/// ([`ErrorKind::of_errno`]: `ENOENT` is `ERROR_FILE_NOT_FOUND`, `ENOTDIR`
/// `ERROR_PATH_NOT_FOUND`, `EACCES` `ERROR_ACCESS_DENIED`, ...), but what the
/// service refuses by its own rules is `ERROR_ACCESS_DENIED`: a path out of the
/// root (`EXDEV` from `RESOLVE_BENEATH`), a symlink it does not follow (`ELOOP`
/// from `RESOLVE_NO_SYMLINKS` and `O_NOFOLLOW`), a read-only file system; and
/// what is not a regular file (`EISDIR`, `ENXIO`) is `ERROR_INVALID_PARAMETER`.
/// A path out of the root and a symlink say so in words, without the kernel's
/// errno (whose text, "Invalid cross-device link", would mislead), so that no
/// right is said to be missing for them ([`guise::audit::lacks_right`]).
pub fn os(what: &str, e: rustix::io::Errno) -> Error {
    use rustix::io::Errno;
    match e {
        Errno::XDEV => {
            return Error::new(
                ErrorKind::AccessDenied,
                format!("{what}: the path leads outside the served directory"),
            );
        }
        Errno::LOOP => {
            return Error::new(
                ErrorKind::AccessDenied,
                format!(
                    "{what}: the path goes through a symbolic link the service does not follow (or a loop of them)"
                ),
            );
        }
        _ => {}
    }
    let kind = match e {
        Errno::XDEV | Errno::LOOP | Errno::ROFS => ErrorKind::AccessDenied,
        Errno::ISDIR | Errno::NXIO => ErrorKind::InvalidParameter,
        _ => ErrorKind::of_errno(e.raw_os_error()),
    };
    Error::os(kind, what.to_owned(), e.raw_os_error())
}

/// The right an operation asks of its file or directory, by its Win32 name: what
/// a denial says was missing.
pub fn access_of(op: &str) -> &'static str {
    match op {
        "read" => "FILE_READ_DATA",
        "write" => "FILE_WRITE_DATA",
        "list" => "FILE_LIST_DIRECTORY",
        "stat" => "FILE_READ_ATTRIBUTES",
        _ => "",
    }
}

pub fn invalid(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidParameter, why.into())
}

/// Opens `path` beneath `dir`: no `..` out, no absolute paths, no symlinks out, no
/// magic links, never the server's `/proc`. `EAGAIN`, which the kernel returns when
/// a rename raced the lookup, is retried.
/// Whose credentials an open uses.
#[derive(Clone, Copy)]
pub enum Opener<'a> {
    /// The calling thread's: it impersonates the client (or is the server).
    Thread,
    /// The client's, through an io_uring personality, without switching the
    /// thread (`guise::uring`).
    As(&'a guise::Token),
}

pub fn open_beneath(
    dir: impl AsFd,
    path: &str,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> Result<OwnedFd> {
    open_beneath_by(Opener::Thread, dir, path, flags, mode, resolve)
}

/// As [`open_beneath`], with the credentials `by` says.
pub fn open_beneath_by(
    by: Opener<'_>,
    dir: impl AsFd,
    path: &str,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> Result<OwnedFd> {
    let path = if path.is_empty() { "." } else { path };
    // openat2 refuses O_PATH with any flag but these.
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    };
    let mut tries = 0;
    let resolve = resolve | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let fd = loop {
        let r = match by {
            Opener::Thread => rustix::fs::openat2(&dir, path, flags, mode, resolve),
            Opener::As(token) => {
                match guise::uring::open_as(
                    token,
                    &dir,
                    path,
                    guise::uring::OpenFlags::from_bits_retain(flags.bits()),
                    mode.as_raw_mode(),
                    guise::uring::Resolve::from_bits_retain(resolve.bits()),
                ) {
                    Ok(fd) => Ok(fd),
                    // The kernel's answer, to be read as the thread's would be.
                    Err(e)
                        if e.errno().is_some() && e.kind() != ErrorKind::BadImpersonationLevel =>
                    {
                        Err(rustix::io::Errno::from_raw_os_error(
                            e.errno().unwrap_or(libc_eio()),
                        ))
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        match r {
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) if tries < 64 => tries += 1,
            Err(e) => return Err(not_there(by, &dir, path, flags, resolve, e)),
            Ok(fd) => break fd,
        }
    };
    let fs = rustix::fs::fstatfs(&fd).map_err(|e| os("fstatfs", e))?;
    if fs.f_type as i64 == PROC_SUPER_MAGIC {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!("{path:?} is in /proc, which is never served"),
        ));
    }
    Ok(fd)
}

/// The error of an open of `path` that failed with `e`; for `ENOENT`, which of
/// the file or a directory on its way is missing: the parent is looked up, with
/// the same credentials and rules, and a parent that is not there (or is no
/// directory) makes the error `ERROR_PATH_NOT_FOUND`, as on Windows; otherwise
/// `ERROR_FILE_NOT_FOUND`.
fn not_there(
    by: Opener<'_>,
    dir: impl AsFd,
    path: &str,
    flags: OFlags,
    resolve: ResolveFlags,
    e: rustix::io::Errno,
) -> Error {
    let error = os(&format!("opening {path:?}"), e);
    if e != rustix::io::Errno::NOENT || flags.contains(OFlags::CREATE) {
        return error;
    }
    let Some((parent, _)) = path.trim_end_matches('/').rsplit_once('/') else {
        return error;
    };
    if parent.is_empty() {
        return error;
    }
    let parent_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let looked_up = match by {
        Opener::Thread => {
            rustix::fs::openat2(&dir, parent, parent_flags, Mode::empty(), resolve).map(drop)
        }
        Opener::As(token) => guise::uring::open_as(
            token,
            &dir,
            parent,
            guise::uring::OpenFlags::from_bits_retain(parent_flags.bits()),
            0,
            guise::uring::Resolve::from_bits_retain(resolve.bits()),
        )
        .map(drop)
        .map_err(|e| rustix::io::Errno::from_raw_os_error(e.errno().unwrap_or(libc_eio()))),
    };
    match looked_up {
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Error::os(
            ErrorKind::PathNotFound,
            format!("opening {path:?}: the directory {parent:?} is not there"),
            e.raw_os_error(),
        ),
        _ => error,
    }
}

/// `EIO`, for an error that says it has an errno and has none.
fn libc_eio() -> i32 {
    rustix::io::Errno::IO.raw_os_error()
}

fn file_type(fd: &OwnedFd) -> Result<(rustix::fs::FileType, rustix::fs::Stat)> {
    let st = rustix::fs::fstat(fd).map_err(|e| os("stat", e))?;
    Ok((rustix::fs::FileType::from_raw_mode(st.st_mode), st))
}

/// Opens a regular file to read, without blocking on a FIFO or a device.
pub fn open_regular(root: &OwnedFd, path: &str) -> Result<(OwnedFd, u64)> {
    open_regular_by(Opener::Thread, root, path)
}

/// As [`open_regular`], with the credentials `by` says.
pub fn open_regular_by(by: Opener<'_>, root: &OwnedFd, path: &str) -> Result<(OwnedFd, u64)> {
    let fd = open_beneath_by(
        by,
        root,
        path,
        OFlags::RDONLY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::empty(),
    )?;
    let (kind, st) = file_type(&fd)?;
    if kind != rustix::fs::FileType::RegularFile {
        return Err(invalid(format!("{path:?} is not a regular file")));
    }
    Ok((fd, st.st_size as u64))
}

/// A write in progress: a temporary file beside the target, created as the client.
pub struct Upload {
    dir: OwnedFd,
    temp: String,
    name: String,
    file: OwnedFd,
    mode: u32,
}

/// Splits a path into its directory and last component, which must be a name.
fn split(path: &str) -> Result<(&str, &str)> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    if name.is_empty() || name == "." || name == ".." {
        return Err(invalid(format!("{path:?} does not name a file")));
    }
    Ok((dir, name))
}

/// Starts a write of `path`: checks the target (a regular file the client may
/// write, or none; never a symlink) and creates the temporary file.
pub fn begin_upload(root: &OwnedFd, path: &str, mode: Option<u32>) -> Result<Upload> {
    let (dir_path, name) = split(path)?;
    let no_links = ResolveFlags::NO_SYMLINKS;
    let dir = open_beneath(
        root,
        dir_path,
        OFlags::PATH | OFlags::DIRECTORY,
        Mode::empty(),
        no_links,
    )
    .map_err(|e| {
        // The directory to write in is a directory of the path.
        if e.kind() == ErrorKind::FileNotFound {
            Error::os(
                ErrorKind::PathNotFound,
                format!("the directory {dir_path:?} is not there"),
                e.errno().unwrap_or(libc_eio()),
            )
        } else {
            e
        }
    })?;
    let mut existing_mode = None;
    match open_beneath(
        &dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW,
        Mode::empty(),
        no_links,
    ) {
        Ok(fd) => {
            let (kind, st) = file_type(&fd)?;
            if kind != rustix::fs::FileType::RegularFile {
                return Err(Error::new(
                    ErrorKind::AccessDenied,
                    format!("{path:?} is not a regular file (a symlink is never followed)"),
                ));
            }
            // The new file would be the client's: replacing another user's file
            // (one it may only write to, through its group say) would take it over.
            let me = rustix::process::geteuid().as_raw();
            if st.st_uid != me {
                return Err(Error::new(
                    ErrorKind::AccessDenied,
                    format!(
                        "{path:?} belongs to uid {}: replacing it would make it uid {me}'s",
                        st.st_uid
                    ),
                ));
            }
            // Replacing a file needs the right to write it, as writing it in place
            // would.
            open_beneath(
                &dir,
                name,
                OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW,
                Mode::empty(),
                no_links,
            )?;
            existing_mode = Some(st.st_mode & 0o777);
        }
        Err(e) if e.kind() == ErrorKind::FileNotFound => {}
        Err(e) => return Err(e),
    }
    let mode = mode.or(existing_mode).unwrap_or(0o600) & 0o777;
    let mut random = [0u8; 8];
    rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| os("getrandom", e))?;
    let temp = format!(
        ".{name}.guise-{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let file = open_beneath(
        &dir,
        &temp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
        no_links,
    )?;
    Ok(Upload {
        dir,
        temp,
        name: name.to_owned(),
        file,
        mode,
    })
}

impl Upload {
    pub fn write(&self, data: &[u8]) -> Result<()> {
        let mut file = std::fs::File::from(
            self.file
                .try_clone()
                .map_err(|e| Error::os(ErrorKind::Os, "dup", &e))?,
        );
        file.write_all(data)
            .map_err(|e| Error::os(ErrorKind::Os, "writing", &e))
    }

    /// Makes the write whole: mode, fsync, rename over the target.
    pub fn finish(&self) -> Result<()> {
        rustix::fs::fchmod(&self.file, Mode::from_raw_mode(self.mode))
            .map_err(|e| os("chmod", e))?;
        rustix::fs::fsync(&self.file).map_err(|e| os("fsync", e))?;
        rustix::fs::renameat(&self.dir, &self.temp, &self.dir, &self.name)
            .map_err(|e| os("replacing the file", e))?;
        // The rename itself is durable once the directory is (where the client may
        // read the directory to open it).
        if let Ok(dir) = open_beneath(
            &self.dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
            ResolveFlags::empty(),
        ) {
            let _ = rustix::fs::fsync(&dir);
        }
        Ok(())
    }

    pub fn abandon(&self) {
        let _ = rustix::fs::unlinkat(&self.dir, &self.temp, rustix::fs::AtFlags::empty());
    }
}

/// The status of `path` (never following a last symlink out of the root).
pub fn stat(by: Opener<'_>, root: &OwnedFd, path: &str) -> Result<rustix::fs::Stat> {
    let fd = open_beneath_by(
        by,
        root,
        path,
        OFlags::PATH,
        Mode::empty(),
        ResolveFlags::empty(),
    )?;
    rustix::fs::fstat(&fd).map_err(|e| os("stat", e))
}

/// The names in a directory, sorted; bounded in count and bytes.
pub struct Listing {
    /// The names, without `.` and `..`.
    pub names: Vec<String>,
    /// Whether the directory held more than a listing holds.
    pub truncated: bool,
}

/// Lists the directory `path`.
pub fn list(by: Opener<'_>, root: &OwnedFd, path: &str) -> Result<Listing> {
    let fd = open_beneath_by(
        by,
        root,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::empty(),
    )?;
    let (mut names, mut bytes, mut truncated) = (Vec::new(), 0usize, false);
    for entry in rustix::fs::Dir::read_from(&fd).map_err(|e| os("listing", e))? {
        let entry = entry.map_err(|e| os("listing", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        // A listing is bounded: a directory of millions of names is cut short.
        bytes += name.len() + 8;
        if names.len() >= MAX_LIST_NAMES || bytes > MAX_LIST_BYTES {
            truncated = true;
            break;
        }
        names.push(name);
    }
    names.sort();
    Ok(Listing { names, truncated })
}

/// Reads at most `left` bytes (and at most one chunk) of `fd` at `pos`; a chunk
/// shorter than asked for is the end of the file.
pub fn read_chunk(fd: &OwnedFd, pos: u64, left: u64) -> Result<Vec<u8>> {
    // Read into the buffer's spare capacity: nothing is zeroed first, and only the
    // pages the data lands on are touched.
    let mut buf = Vec::with_capacity(left.min(CHUNK as u64) as usize);
    rustix::io::pread(fd, rustix::buffer::spare_capacity(&mut buf), pos)
        .map_err(|e| os("reading", e))?;
    Ok(buf)
}

/// The identity that acts for a client, for the log: the token's (at the level it
/// got) when the service impersonates, the server's own otherwise.
pub fn acting_identity(
    token: Option<&guise::Token>,
    impersonate: bool,
) -> (u32, u32, guise::ImpersonationLevel) {
    // The level and ids the worker really gets (lowered where the server may not
    // impersonate at the token's level; the sentinel below Impersonation).
    let acted = token
        .filter(|_| impersonate)
        .and_then(|t| guise::thread::acting_identity(t).ok());
    match acted {
        Some((level, uid, gid)) => (uid.as_raw(), gid.as_raw(), level),
        None => (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
            guise::ImpersonationLevel::Impersonation,
        ),
    }
}
