//! The one error type of guise, with the Win32 error each kind stands for.
//!
//! # Example
//! ```
//! use guise::{ErrorKind, Sid};
//!
//! let e = "S-1-5-bad".parse::<Sid>().unwrap_err();
//! assert_eq!(e.kind(), ErrorKind::InvalidSid);
//! assert_eq!(e.kind().win32_name(), "ERROR_INVALID_SID");
//! assert_eq!(e.win32_code(), 1337);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, named after the Win32 error it corresponds to.
///
/// [`ErrorKind::win32_code`] and [`ErrorKind::win32_name`] give that Win32 error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The thread is not impersonating, so it has no token (`ERROR_NO_TOKEN`).
    NoToken,
    /// The thread token is at Anonymous level and cannot be opened
    /// (`ERROR_CANT_OPEN_ANONYMOUS`).
    CantOpenAnonymous,
    /// The impersonation level is too low for the operation, or a duplicate asked for
    /// a higher level than its source (`ERROR_BAD_IMPERSONATION_LEVEL`).
    BadImpersonationLevel,
    /// A primary token where an impersonation token is needed, or the reverse
    /// (`ERROR_BAD_TOKEN_TYPE`).
    BadTokenType,
    /// The operation needs an impersonation token (`ERROR_NO_IMPERSONATION_TOKEN`).
    NoImpersonationToken,
    /// The caller does not hold a privilege the operation requires
    /// (`ERROR_PRIVILEGE_NOT_HELD`).
    PrivilegeNotHeld,
    /// A privilege to enable is not held by the token (`ERROR_NOT_ALL_ASSIGNED`).
    NotAllAssigned,
    /// A privilege name is unknown (`ERROR_NO_SUCH_PRIVILEGE`).
    NoSuchPrivilege,
    /// A SID is malformed (`ERROR_INVALID_SID`).
    InvalidSid,
    /// An account name or id has no account (`ERROR_NONE_MAPPED`).
    NoneMapped,
    /// An argument is out of range or malformed (`ERROR_INVALID_PARAMETER`).
    InvalidParameter,
    /// Impersonation is not possible yet or at all (`ERROR_CANNOT_IMPERSONATE`).
    CannotImpersonate,
    /// Access is denied (`ERROR_ACCESS_DENIED`).
    AccessDenied,
    /// An ACL or ACE is malformed (`ERROR_INVALID_ACL`).
    InvalidAcl,
    /// A security descriptor is malformed or lacks a part the operation needs
    /// (`ERROR_INVALID_SECURITY_DESCR`).
    InvalidSecurityDescriptor,
    /// An access mask still holds generic rights; map them first
    /// (`ERROR_GENERIC_NOT_MAPPED`).
    GenericNotMapped,
    /// An unknown revision (`ERROR_UNKNOWN_REVISION`).
    UnknownRevision,
    /// A value has the wrong form (`ERROR_INVALID_DATATYPE`).
    InvalidDatatype,
    /// The user name or password is incorrect, or the account may not log on that
    /// way (`ERROR_LOGON_FAILURE`). Unknown users get the same error.
    LogonFailure,
    /// The account has expired (`ERROR_ACCOUNT_EXPIRED`).
    AccountExpired,
    /// The password has expired and must be changed (`ERROR_PASSWORD_EXPIRED`).
    PasswordExpired,
    /// The account may not log on now or from here (`ERROR_ACCOUNT_RESTRICTION`).
    AccountRestriction,
    /// The authentication service cannot be reached or cannot answer (a directory
    /// or KDC down: PAM's `PAM_AUTHINFO_UNAVAIL`), so nothing could be checked
    /// (`ERROR_NO_LOGON_SERVERS`). Not a wrong password.
    NoLogonServers,
    /// The account is locked out after too many failed logons
    /// (`ERROR_ACCOUNT_LOCKED_OUT`).
    AccountLockedOut,
    /// A caller has as much work in flight as it may have, or a user is over its
    /// disk quota (`EDQUOT`) (`ERROR_NOT_ENOUGH_QUOTA`).
    NotEnoughQuota,
    /// The user has no account here: a Kerberos principal that maps to no local
    /// account (`ERROR_NO_SUCH_USER`).
    NoSuchUser,
    /// There are no credentials to authenticate with: no Kerberos ticket in the
    /// cache, or a thread that impersonates a network client that delegated
    /// nothing (`ERROR_NO_SUCH_LOGON_SESSION`, what Windows gives the second hop
    /// without delegation).
    NoSuchLogonSession,
    /// No remote procedure call is active on this thread, or the call a handle names
    /// has finished (`RPC_S_NO_CALL_ACTIVE`).
    RpcNoCallActive,
    /// The file does not exist (`ERROR_FILE_NOT_FOUND`): `ENOENT`.
    FileNotFound,
    /// A directory on the way to the file does not exist, or is not a directory
    /// (`ERROR_PATH_NOT_FOUND`): `ENOTDIR`, `ELOOP`, and `ENOENT` where guise
    /// knows the parent directory is what is missing.
    PathNotFound,
    /// Not enough memory (`ERROR_NOT_ENOUGH_MEMORY`): `ENOMEM`.
    NotEnoughMemory,
    /// No space left on the device (`ERROR_DISK_FULL`): `ENOSPC`. A user over
    /// its disk quota (`EDQUOT`) is [`ErrorKind::NotEnoughQuota`].
    DiskFull,
    /// The process or the system has as many files open as it may
    /// (`ERROR_TOO_MANY_OPEN_FILES`): `EMFILE`, `ENFILE`.
    TooManyOpenFiles,
    /// The operating system refused a call that has no closer Win32 equivalent
    /// (`ERROR_GEN_FAILURE`); [`Error::errno`] tells why.
    Os,
}

impl ErrorKind {
    /// The numeric Win32 error code (`ERROR_*`).
    pub const fn win32_code(self) -> u32 {
        match self {
            ErrorKind::NoToken => 1008,
            ErrorKind::CantOpenAnonymous => 1347,
            ErrorKind::BadImpersonationLevel => 1346,
            ErrorKind::BadTokenType => 1349,
            ErrorKind::NoImpersonationToken => 1309,
            ErrorKind::PrivilegeNotHeld => 1314,
            ErrorKind::NotAllAssigned => 1300,
            ErrorKind::NoSuchPrivilege => 1313,
            ErrorKind::InvalidSid => 1337,
            ErrorKind::NoneMapped => 1332,
            ErrorKind::InvalidParameter => 87,
            ErrorKind::CannotImpersonate => 1368,
            ErrorKind::AccessDenied => 5,
            ErrorKind::InvalidAcl => 1336,
            ErrorKind::InvalidSecurityDescriptor => 1338,
            ErrorKind::GenericNotMapped => 1360,
            ErrorKind::UnknownRevision => 1305,
            ErrorKind::InvalidDatatype => 1804,
            ErrorKind::LogonFailure => 1326,
            ErrorKind::AccountExpired => 1793,
            ErrorKind::PasswordExpired => 1330,
            ErrorKind::AccountRestriction => 1327,
            ErrorKind::NoLogonServers => 1311,
            ErrorKind::AccountLockedOut => 1909,
            ErrorKind::NotEnoughQuota => 1816,
            ErrorKind::NoSuchUser => 1317,
            ErrorKind::NoSuchLogonSession => 1312,
            ErrorKind::RpcNoCallActive => 1725,
            ErrorKind::FileNotFound => 2,
            ErrorKind::PathNotFound => 3,
            ErrorKind::NotEnoughMemory => 8,
            ErrorKind::DiskFull => 112,
            ErrorKind::TooManyOpenFiles => 4,
            ErrorKind::Os => 31,
        }
    }

    /// The symbolic Win32 name (`"ERROR_NO_TOKEN"`, ...).
    pub const fn win32_name(self) -> &'static str {
        match self {
            ErrorKind::NoToken => "ERROR_NO_TOKEN",
            ErrorKind::CantOpenAnonymous => "ERROR_CANT_OPEN_ANONYMOUS",
            ErrorKind::BadImpersonationLevel => "ERROR_BAD_IMPERSONATION_LEVEL",
            ErrorKind::BadTokenType => "ERROR_BAD_TOKEN_TYPE",
            ErrorKind::NoImpersonationToken => "ERROR_NO_IMPERSONATION_TOKEN",
            ErrorKind::PrivilegeNotHeld => "ERROR_PRIVILEGE_NOT_HELD",
            ErrorKind::NotAllAssigned => "ERROR_NOT_ALL_ASSIGNED",
            ErrorKind::NoSuchPrivilege => "ERROR_NO_SUCH_PRIVILEGE",
            ErrorKind::InvalidSid => "ERROR_INVALID_SID",
            ErrorKind::NoneMapped => "ERROR_NONE_MAPPED",
            ErrorKind::InvalidParameter => "ERROR_INVALID_PARAMETER",
            ErrorKind::CannotImpersonate => "ERROR_CANNOT_IMPERSONATE",
            ErrorKind::AccessDenied => "ERROR_ACCESS_DENIED",
            ErrorKind::InvalidAcl => "ERROR_INVALID_ACL",
            ErrorKind::InvalidSecurityDescriptor => "ERROR_INVALID_SECURITY_DESCR",
            ErrorKind::GenericNotMapped => "ERROR_GENERIC_NOT_MAPPED",
            ErrorKind::UnknownRevision => "ERROR_UNKNOWN_REVISION",
            ErrorKind::InvalidDatatype => "ERROR_INVALID_DATATYPE",
            ErrorKind::LogonFailure => "ERROR_LOGON_FAILURE",
            ErrorKind::AccountExpired => "ERROR_ACCOUNT_EXPIRED",
            ErrorKind::PasswordExpired => "ERROR_PASSWORD_EXPIRED",
            ErrorKind::AccountRestriction => "ERROR_ACCOUNT_RESTRICTION",
            ErrorKind::NoLogonServers => "ERROR_NO_LOGON_SERVERS",
            ErrorKind::AccountLockedOut => "ERROR_ACCOUNT_LOCKED_OUT",
            ErrorKind::NotEnoughQuota => "ERROR_NOT_ENOUGH_QUOTA",
            ErrorKind::NoSuchUser => "ERROR_NO_SUCH_USER",
            ErrorKind::NoSuchLogonSession => "ERROR_NO_SUCH_LOGON_SESSION",
            ErrorKind::RpcNoCallActive => "RPC_S_NO_CALL_ACTIVE",
            ErrorKind::FileNotFound => "ERROR_FILE_NOT_FOUND",
            ErrorKind::PathNotFound => "ERROR_PATH_NOT_FOUND",
            ErrorKind::NotEnoughMemory => "ERROR_NOT_ENOUGH_MEMORY",
            ErrorKind::DiskFull => "ERROR_DISK_FULL",
            ErrorKind::TooManyOpenFiles => "ERROR_TOO_MANY_OPEN_FILES",
            ErrorKind::Os => "ERROR_GEN_FAILURE",
        }
    }

    /// Every kind, in the order they are declared.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::NoToken,
        ErrorKind::CantOpenAnonymous,
        ErrorKind::BadImpersonationLevel,
        ErrorKind::BadTokenType,
        ErrorKind::NoImpersonationToken,
        ErrorKind::PrivilegeNotHeld,
        ErrorKind::NotAllAssigned,
        ErrorKind::NoSuchPrivilege,
        ErrorKind::InvalidSid,
        ErrorKind::NoneMapped,
        ErrorKind::InvalidParameter,
        ErrorKind::CannotImpersonate,
        ErrorKind::AccessDenied,
        ErrorKind::InvalidAcl,
        ErrorKind::InvalidSecurityDescriptor,
        ErrorKind::GenericNotMapped,
        ErrorKind::UnknownRevision,
        ErrorKind::InvalidDatatype,
        ErrorKind::LogonFailure,
        ErrorKind::AccountExpired,
        ErrorKind::PasswordExpired,
        ErrorKind::AccountRestriction,
        ErrorKind::NoLogonServers,
        ErrorKind::AccountLockedOut,
        ErrorKind::NotEnoughQuota,
        ErrorKind::NoSuchUser,
        ErrorKind::NoSuchLogonSession,
        ErrorKind::RpcNoCallActive,
        ErrorKind::FileNotFound,
        ErrorKind::PathNotFound,
        ErrorKind::NotEnoughMemory,
        ErrorKind::DiskFull,
        ErrorKind::TooManyOpenFiles,
        ErrorKind::Os,
    ];

    /// The kind whose [`ErrorKind::win32_name`] is `name`, if there is one.
    pub fn from_win32_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|k| k.win32_name() == name)
    }

    /// The kind of an OS error number, the one table guise reads `errno` by:
    ///
    /// | errno | kind |
    /// |---|---|
    /// | `EACCES`, `EPERM` | [`ErrorKind::AccessDenied`] |
    /// | `ENOENT` | [`ErrorKind::FileNotFound`] |
    /// | `ENOTDIR`, `ELOOP` | [`ErrorKind::PathNotFound`] (a component is not a directory; the path does not resolve) |
    /// | `EINVAL`, `ENAMETOOLONG` | [`ErrorKind::InvalidParameter`] |
    /// | `ENOMEM` | [`ErrorKind::NotEnoughMemory`] |
    /// | `ENOSPC` | [`ErrorKind::DiskFull`] |
    /// | `EDQUOT` | [`ErrorKind::NotEnoughQuota`] |
    /// | `EMFILE`, `ENFILE` | [`ErrorKind::TooManyOpenFiles`] |
    /// | any other | [`ErrorKind::Os`] ([`Error::errno`] tells which) |
    ///
    /// A missing file is never [`ErrorKind::NoneMapped`], which is for accounts
    /// and SIDs only. A server that knows more (the parent directory is what is
    /// missing; a symlink it refuses to follow) says so with its own kind.
    #[doc(alias = "errno")]
    pub const fn of_errno(errno: i32) -> ErrorKind {
        match errno {
            libc::EACCES | libc::EPERM => ErrorKind::AccessDenied,
            libc::ENOENT => ErrorKind::FileNotFound,
            libc::ENOTDIR | libc::ELOOP => ErrorKind::PathNotFound,
            libc::EINVAL | libc::ENAMETOOLONG => ErrorKind::InvalidParameter,
            libc::ENOMEM => ErrorKind::NotEnoughMemory,
            libc::ENOSPC => ErrorKind::DiskFull,
            libc::EDQUOT => ErrorKind::NotEnoughQuota,
            libc::EMFILE | libc::ENFILE => ErrorKind::TooManyOpenFiles,
            _ => ErrorKind::Os,
        }
    }

    /// The kind of an I/O error: by its OS error number ([`ErrorKind::of_errno`])
    /// where it has one, otherwise by its `std::io::ErrorKind` (`NotFound`,
    /// `PermissionDenied`, `InvalidInput`, `OutOfMemory`, ...; anything else
    /// [`ErrorKind::Os`]).
    pub fn of_io(e: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as Io;
        if let Some(errno) = e.raw_os_error() {
            return ErrorKind::of_errno(errno);
        }
        match e.kind() {
            Io::NotFound => ErrorKind::FileNotFound,
            Io::NotADirectory => ErrorKind::PathNotFound,
            Io::PermissionDenied => ErrorKind::AccessDenied,
            Io::InvalidInput | Io::InvalidFilename => ErrorKind::InvalidParameter,
            Io::OutOfMemory => ErrorKind::NotEnoughMemory,
            Io::StorageFull => ErrorKind::DiskFull,
            Io::QuotaExceeded => ErrorKind::NotEnoughQuota,
            _ => ErrorKind::Os,
        }
    }
}

/// An error from guise: an [`ErrorKind`], a message for people, the OS `errno`
/// when a system call caused it, and the error that caused it, if any
/// ([`std::error::Error::source`]).
///
/// # Formatting
/// - `Display` (`{}`, and `{:#}` alike) is the message, each cause, and the Win32
///   name: `opening "a.txt": No such file or directory (os error 2)
///   [ERROR_FILE_NOT_FOUND]`, so a log line or a reply that shows an error with
///   `{}` loses no reason. The causes are also given by `source()`: a reporter
///   that walks the chain (as anyhow's `{:#}` does) stops at a guise `Error`, whose
///   text already holds the rest.
/// - `Debug` (what `fn main() -> guise::Result<()>` prints) names the Win32 error
///   and its code, then the message, then one `caused by:` line per cause:
///
/// ```text
/// ERROR_FILE_NOT_FOUND (2): opening "a.txt"
///
/// caused by:
///     No such file or directory (os error 2)
/// ```
///
/// Two errors are equal when their kind, message and errno are; the causes are
/// not compared.
///
/// # Example
/// An I/O error becomes a guise error with `?`, of the kind of its errno, the
/// I/O error kept as its cause:
/// ```
/// fn read_config() -> guise::Result<String> {
///     Ok(std::fs::read_to_string("/nonexistent/guise.conf")?)
/// }
///
/// let e = read_config().unwrap_err();
/// assert_eq!(e.kind(), guise::ErrorKind::FileNotFound);
/// assert_eq!(e.errno(), Some(2));
/// assert!(format!("{e:?}").starts_with("ERROR_FILE_NOT_FOUND (2): "));
/// let cause = std::error::Error::source(&e).unwrap();
/// assert!(cause.downcast_ref::<std::io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    errno: Option<i32>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.kind == other.kind && self.message == other.message && self.errno == other.errno
    }
}

impl Eq for Error {}

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind,
            message: message.into(),
            errno: None,
            source: None,
        }
    }

    /// A new error of `kind` with a message, caused by `source` (kept, and
    /// returned by [`std::error::Error::source`]). An OS error number found in the
    /// chain of `source` (a `std::io::Error` of the OS) is the error's
    /// [`Error::errno`].
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<Cow<'static, str>>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        let source: Arc<dyn std::error::Error + Send + Sync> = Arc::from(source.into());
        Error {
            kind,
            message: message.into(),
            errno: os_errno_in(&*source),
            source: Some(source),
        }
    }

    /// A new error of `kind` caused by an OS error: an `errno` number or a
    /// `std::io::Error`. The OS error is kept as the cause.
    pub fn os(
        kind: ErrorKind,
        message: impl Into<Cow<'static, str>>,
        errno: impl Into<OsErrno>,
    ) -> Error {
        Error::sys(kind, message, errno.into().0)
    }

    /// As [`Error::os`], from the error types of the crates guise calls.
    pub(crate) fn sys(
        kind: ErrorKind,
        message: impl Into<Cow<'static, str>>,
        errno: impl SysErrno,
    ) -> Error {
        let errno = errno.raw();
        Error {
            kind,
            message: message.into(),
            errno: Some(errno),
            source: Some(Arc::new(std::io::Error::from_raw_os_error(errno))),
        }
    }

    /// An OS error, of the kind [`ErrorKind::of_errno`] gives its number (an
    /// open, a connect, a `chown`: `EACCES` and `EPERM` are
    /// [`ErrorKind::AccessDenied`], `ENOENT` [`ErrorKind::FileNotFound`], ...).
    pub(crate) fn access(message: impl Into<Cow<'static, str>>, errno: impl SysErrno) -> Error {
        let errno = errno.raw();
        Error::sys(ErrorKind::of_errno(errno), message, errno)
    }

    /// An I/O error with what was being done: of the kind
    /// [`ErrorKind::of_io`] gives it, the I/O error kept as the cause.
    pub fn io(message: impl Into<Cow<'static, str>>, e: std::io::Error) -> Error {
        let kind = ErrorKind::of_io(&e);
        Error::with_source(kind, message, e)
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The Win32 error code this error stands for.
    pub fn win32_code(&self) -> u32 {
        self.kind.win32_code()
    }

    /// The raw OS error number, if a system call caused this error.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// The message, without the Win32 name or the causes.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The causes of this error, nearest first ([`std::error::Error::source`],
    /// then its source, ...).
    pub fn causes(&self) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
        let first = std::error::Error::source(self);
        std::iter::successors(first, |e| e.source()).take(MAX_CAUSES)
    }
}

/// The most causes printed or searched (a cycle of causes ends here).
const MAX_CAUSES: usize = 16;

/// The first OS error number in the chain of `e`.
fn os_errno_in(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    std::iter::successors(Some(e), |e| e.source())
        .take(MAX_CAUSES)
        .find_map(|e| e.downcast_ref::<std::io::Error>()?.raw_os_error())
}

impl From<std::io::Error> for Error {
    /// The I/O error as a guise error of the kind [`ErrorKind::of_io`] gives it,
    /// the I/O error kept as the cause; the message is the I/O error's own words.
    fn from(e: std::io::Error) -> Error {
        // A guise error that went out as an io::Error comes back as itself.
        if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
            return inner.clone();
        }
        let message = match e.raw_os_error() {
            Some(_) => "an I/O call failed".to_owned(),
            None => e.to_string(),
        };
        Error::io(message, e)
    }
}

impl From<rustix::io::Errno> for Error {
    /// The OS error as a guise error of the kind [`ErrorKind::of_errno`] gives it.
    fn from(e: rustix::io::Errno) -> Error {
        Error::access("a system call failed", e)
    }
}

/// A raw OS error number (`errno`), from a number or a `std::io::Error`.
#[derive(Clone, Copy, Debug)]
pub struct OsErrno(pub i32);

impl From<i32> for OsErrno {
    fn from(n: i32) -> Self {
        OsErrno(n)
    }
}

impl From<&std::io::Error> for OsErrno {
    fn from(e: &std::io::Error) -> Self {
        // An io::Error without an OS code (a custom one) is reported as EIO.
        OsErrno(e.raw_os_error().unwrap_or(5))
    }
}

impl From<std::io::Error> for OsErrno {
    fn from(e: std::io::Error) -> Self {
        OsErrno::from(&e)
    }
}

/// The error numbers of the crates guise calls (rustix, nix), for
/// [`Error::sys`]; not part of the public API.
pub(crate) trait SysErrno {
    fn raw(self) -> i32;
}

impl SysErrno for rustix::io::Errno {
    fn raw(self) -> i32 {
        self.raw_os_error()
    }
}

impl SysErrno for nix::errno::Errno {
    fn raw(self) -> i32 {
        self as i32
    }
}

impl SysErrno for &std::io::Error {
    fn raw(self) -> i32 {
        OsErrno::from(self).0
    }
}

impl SysErrno for i32 {
    fn raw(self) -> i32 {
        self
    }
}

impl From<Error> for std::io::Error {
    /// The `std::io::Error` of the same OS error where there is one, of the
    /// nearest kind otherwise; the guise error (its Win32 name and message) stays
    /// its source.
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind as Io;
        let kind = match e.kind {
            ErrorKind::AccessDenied
            | ErrorKind::PrivilegeNotHeld
            | ErrorKind::BadImpersonationLevel
            | ErrorKind::CannotImpersonate
            | ErrorKind::LogonFailure
            | ErrorKind::AccountExpired
            | ErrorKind::PasswordExpired
            | ErrorKind::AccountRestriction
            | ErrorKind::AccountLockedOut => Io::PermissionDenied,
            ErrorKind::NoneMapped | ErrorKind::FileNotFound => Io::NotFound,
            ErrorKind::PathNotFound => match e.errno {
                Some(n) => std::io::Error::from_raw_os_error(n).kind(),
                None => Io::NotFound,
            },
            ErrorKind::NotEnoughMemory => Io::OutOfMemory,
            ErrorKind::DiskFull => Io::StorageFull,
            ErrorKind::InvalidParameter
            | ErrorKind::InvalidSid
            | ErrorKind::InvalidAcl
            | ErrorKind::InvalidSecurityDescriptor
            | ErrorKind::InvalidDatatype
            | ErrorKind::UnknownRevision
            | ErrorKind::GenericNotMapped => Io::InvalidInput,
            ErrorKind::NotEnoughQuota => Io::QuotaExceeded,
            ErrorKind::NoLogonServers => Io::HostUnreachable,
            _ => match e.errno {
                Some(n) => std::io::Error::from_raw_os_error(n).kind(),
                None => Io::Other,
            },
        };
        std::io::Error::new(kind, e)
    }
}

impl fmt::Display for Error {
    /// The message, each cause, and the Win32 name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for cause in self.causes() {
            write!(f, ": {cause}")?;
        }
        write!(f, " [{}]", self.kind.win32_name())
    }
}

impl fmt::Debug for Error {
    /// `ERROR_ACCESS_DENIED (5): <message>`, then a `caused by:` line for each
    /// cause: what `fn main() -> guise::Result<()>` prints. `{:#?}` adds the
    /// fields as a struct.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return f
                .debug_struct("Error")
                .field("kind", &self.kind)
                .field("message", &self.message)
                .field("errno", &self.errno)
                .field("source", &self.source)
                .finish();
        }
        write!(
            f,
            "{} ({}): {}",
            self.kind.win32_name(),
            self.kind.win32_code(),
            self.message
        )?;
        let mut causes = self.causes().peekable();
        if causes.peek().is_some() {
            f.write_str("\n\ncaused by:")?;
            for cause in causes {
                write!(f, "\n    {cause}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The response metadata key of a gRPC error that carries its Win32 name
/// (`guise-error: ERROR_FILE_NOT_FOUND`): [`From<Error> for tonic::Status`] sets
/// it and [`Error::from_status`] reads it.
#[cfg(feature = "rpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "rpc")))]
pub const ERROR_METADATA: &str = "guise-error";

#[cfg(feature = "rpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "rpc")))]
impl ErrorKind {
    /// The gRPC status code for an error of this kind:
    ///
    /// | kind | code |
    /// |---|---|
    /// | `AccessDenied`, `PrivilegeNotHeld` | `PERMISSION_DENIED` |
    /// | `FileNotFound`, `PathNotFound`, `NoneMapped` | `NOT_FOUND` |
    /// | `InvalidParameter`, `InvalidSid`, `InvalidAcl`, `InvalidSecurityDescriptor`, `InvalidDatatype`, `UnknownRevision`, `GenericNotMapped`, `NoSuchPrivilege` | `INVALID_ARGUMENT` |
    /// | `BadImpersonationLevel`, `CantOpenAnonymous`, `NoSuchLogonSession`, `NoToken`, `BadTokenType`, `NoImpersonationToken`, `CannotImpersonate`, `NotAllAssigned` | `FAILED_PRECONDITION` |
    /// | `LogonFailure`, `NoSuchUser`, `AccountExpired`, `PasswordExpired`, `AccountRestriction`, `AccountLockedOut` | `UNAUTHENTICATED` |
    /// | `NotEnoughQuota`, `NotEnoughMemory`, `DiskFull`, `TooManyOpenFiles` | `RESOURCE_EXHAUSTED` |
    /// | `NoLogonServers` | `UNAVAILABLE` |
    /// | `RpcNoCallActive` | `CANCELLED` |
    /// | `Os` and any other | `INTERNAL` |
    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            ErrorKind::AccessDenied | ErrorKind::PrivilegeNotHeld => Code::PermissionDenied,
            ErrorKind::FileNotFound | ErrorKind::PathNotFound | ErrorKind::NoneMapped => {
                Code::NotFound
            }
            ErrorKind::InvalidParameter
            | ErrorKind::InvalidSid
            | ErrorKind::InvalidAcl
            | ErrorKind::InvalidSecurityDescriptor
            | ErrorKind::InvalidDatatype
            | ErrorKind::UnknownRevision
            | ErrorKind::GenericNotMapped
            | ErrorKind::NoSuchPrivilege => Code::InvalidArgument,
            ErrorKind::BadImpersonationLevel
            | ErrorKind::CantOpenAnonymous
            | ErrorKind::NoSuchLogonSession
            | ErrorKind::NoToken
            | ErrorKind::BadTokenType
            | ErrorKind::NoImpersonationToken
            | ErrorKind::CannotImpersonate
            | ErrorKind::NotAllAssigned => Code::FailedPrecondition,
            ErrorKind::LogonFailure
            | ErrorKind::NoSuchUser
            | ErrorKind::AccountExpired
            | ErrorKind::PasswordExpired
            | ErrorKind::AccountRestriction
            | ErrorKind::AccountLockedOut => Code::Unauthenticated,
            ErrorKind::NotEnoughQuota
            | ErrorKind::NotEnoughMemory
            | ErrorKind::DiskFull
            | ErrorKind::TooManyOpenFiles => Code::ResourceExhausted,
            ErrorKind::NoLogonServers => Code::Unavailable,
            ErrorKind::RpcNoCallActive => Code::Cancelled,
            ErrorKind::Os => Code::Internal,
        }
    }
}

#[cfg(feature = "rpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "rpc")))]
impl From<Error> for tonic::Status {
    /// The gRPC status of [`ErrorKind::grpc_code`], its message the error with
    /// its causes and Win32 name (`{:#}`), and the Win32 name in the response
    /// metadata [`ERROR_METADATA`], as docs/protocol.md specifies.
    fn from(e: Error) -> tonic::Status {
        let mut status = tonic::Status::new(e.kind.grpc_code(), format!("{e:#}"));
        status.metadata_mut().insert(
            ERROR_METADATA,
            tonic::metadata::MetadataValue::from_static(e.kind.win32_name()),
        );
        status
    }
}

#[cfg(feature = "rpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "rpc")))]
impl From<&Error> for tonic::Status {
    /// As `From<Error>`.
    fn from(e: &Error) -> tonic::Status {
        tonic::Status::from(e.clone())
    }
}

#[cfg(feature = "rpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "rpc")))]
impl Error {
    /// The error a gRPC status stands for: its kind from the Win32 name in
    /// [`ERROR_METADATA`] (a guise server's), else from a trailing `[ERROR_...]`
    /// in its message, else from its code; its message the status's.
    pub fn from_status(status: &tonic::Status) -> Error {
        use tonic::Code;
        let message = status.message();
        let named = status
            .metadata()
            .get(ERROR_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorKind::from_win32_name);
        let trailing = message
            .strip_suffix(']')
            .and_then(|m| m.rsplit_once(" ["))
            .and_then(|(text, name)| Some((text, ErrorKind::from_win32_name(name)?)));
        let kind = named
            .or(trailing.map(|(_, k)| k))
            .unwrap_or(match status.code() {
                Code::PermissionDenied => ErrorKind::AccessDenied,
                Code::NotFound => ErrorKind::FileNotFound,
                Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidParameter,
                Code::Unauthenticated => ErrorKind::LogonFailure,
                Code::ResourceExhausted => ErrorKind::NotEnoughQuota,
                Code::Cancelled => ErrorKind::RpcNoCallActive,
                Code::Unavailable => ErrorKind::NoLogonServers,
                _ => ErrorKind::Os,
            });
        // The message without the Win32 name that Display adds again.
        let text = match trailing {
            Some((text, k)) if k == kind => text,
            _ => message,
        };
        Error::new(kind, text.to_owned())
    }
}

#[cfg(feature = "rpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "rpc")))]
impl From<tonic::Status> for Error {
    /// As [`Error::from_status`].
    fn from(status: tonic::Status) -> Error {
        Error::from_status(&status)
    }
}

#[cfg(feature = "dbus")]
#[cfg_attr(docsrs, doc(cfg(feature = "dbus")))]
impl From<Error> for zbus::fdo::Error {
    /// The D-Bus error for an error, its message the error with its causes and
    /// Win32 name (`{:#}`), as docs/protocol.md specifies:
    ///
    /// | kind | D-Bus error |
    /// |---|---|
    /// | `AccessDenied`, `PrivilegeNotHeld`, `BadImpersonationLevel`, `CantOpenAnonymous` | `org.freedesktop.DBus.Error.AccessDenied` |
    /// | `FileNotFound`, `PathNotFound` | `org.freedesktop.DBus.Error.FileNotFound` |
    /// | `InvalidParameter`, `InvalidSid`, `InvalidAcl`, `InvalidSecurityDescriptor`, `InvalidDatatype`, `UnknownRevision`, `GenericNotMapped`, `NoSuchPrivilege` | `org.freedesktop.DBus.Error.InvalidArgs` |
    /// | `NotEnoughQuota`, `DiskFull`, `TooManyOpenFiles` | `org.freedesktop.DBus.Error.LimitsExceeded` |
    /// | `NotEnoughMemory` | `org.freedesktop.DBus.Error.NoMemory` |
    /// | `LogonFailure`, `AccountExpired`, `PasswordExpired`, `AccountRestriction`, `AccountLockedOut` | `org.freedesktop.DBus.Error.AuthFailed` |
    /// | `Os` and any other | `org.freedesktop.DBus.Error.Failed` |
    fn from(e: Error) -> zbus::fdo::Error {
        use zbus::fdo::Error as Fdo;
        let message = format!("{e:#}");
        match e.kind {
            ErrorKind::AccessDenied
            | ErrorKind::PrivilegeNotHeld
            | ErrorKind::BadImpersonationLevel
            | ErrorKind::CantOpenAnonymous => Fdo::AccessDenied(message),
            ErrorKind::FileNotFound | ErrorKind::PathNotFound => Fdo::FileNotFound(message),
            ErrorKind::InvalidParameter
            | ErrorKind::InvalidSid
            | ErrorKind::InvalidAcl
            | ErrorKind::InvalidSecurityDescriptor
            | ErrorKind::InvalidDatatype
            | ErrorKind::UnknownRevision
            | ErrorKind::GenericNotMapped
            | ErrorKind::NoSuchPrivilege => Fdo::InvalidArgs(message),
            ErrorKind::NotEnoughQuota | ErrorKind::DiskFull | ErrorKind::TooManyOpenFiles => {
                Fdo::LimitsExceeded(message)
            }
            ErrorKind::NotEnoughMemory => Fdo::NoMemory(message),
            ErrorKind::LogonFailure
            | ErrorKind::AccountExpired
            | ErrorKind::PasswordExpired
            | ErrorKind::AccountRestriction
            | ErrorKind::AccountLockedOut => Fdo::AuthFailed(message),
            _ => Fdo::Failed(message),
        }
    }
}

#[cfg(feature = "dbus")]
#[cfg_attr(docsrs, doc(cfg(feature = "dbus")))]
impl From<&Error> for zbus::fdo::Error {
    /// As `From<Error>`.
    fn from(e: &Error) -> zbus::fdo::Error {
        zbus::fdo::Error::from(e.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guise_error_becomes_an_io_error_of_the_nearest_kind_and_keeps_its_text() {
        let denied: std::io::Error = Error::new(ErrorKind::AccessDenied, "no").into();
        assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(
            denied.to_string().contains("ERROR_ACCESS_DENIED"),
            "{denied}"
        );
        let gone: std::io::Error = Error::os(ErrorKind::Os, "reading", 2).into();
        assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
        let inner = gone.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert_eq!(inner.map(Error::message), Some("reading"));
        // io::Error's source is the guise error's own cause.
        let source = std::error::Error::source(&gone).map(ToString::to_string);
        assert!(
            source.as_ref().is_some_and(|s| s.contains("(os error 2)")),
            "{source:?}"
        );
        assert!(gone.to_string().contains("reading"), "{gone}");
        let down: std::io::Error = Error::new(ErrorKind::NoLogonServers, "kdc").into();
        assert_eq!(down.kind(), std::io::ErrorKind::HostUnreachable);
    }

    #[test]
    fn display_names_the_causes_and_the_win32_error() {
        let e = Error::sys(ErrorKind::Os, "setgroups", rustix::io::Errno::PERM);
        assert_eq!(e.to_string(), format!("{e:#}"));
        assert_eq!(
            Error::new(ErrorKind::NoToken, "x").to_string(),
            "x [ERROR_NO_TOKEN]"
        );
        let full = e.to_string();
        assert!(full.starts_with("setgroups: "), "{full}");
        assert!(full.contains("(os error 1)"), "{full}");
        assert!(full.ends_with(" [ERROR_GEN_FAILURE]"), "{full}");
        assert_eq!(e.errno(), Some(1));
        assert_eq!(
            Error::new(ErrorKind::NoToken, "x").win32_code(),
            1008,
            "ERROR_NO_TOKEN"
        );
    }

    /// The errno table: one row per errno, and a missing file is never
    /// ERROR_NONE_MAPPED.
    #[test]
    fn errno_to_kind_table() {
        let table = [
            (libc::EACCES, ErrorKind::AccessDenied, 5),
            (libc::EPERM, ErrorKind::AccessDenied, 5),
            (libc::ENOENT, ErrorKind::FileNotFound, 2),
            (libc::ENOTDIR, ErrorKind::PathNotFound, 3),
            (libc::ELOOP, ErrorKind::PathNotFound, 3),
            (libc::EINVAL, ErrorKind::InvalidParameter, 87),
            (libc::ENAMETOOLONG, ErrorKind::InvalidParameter, 87),
            (libc::ENOMEM, ErrorKind::NotEnoughMemory, 8),
            (libc::ENOSPC, ErrorKind::DiskFull, 112),
            (libc::EDQUOT, ErrorKind::NotEnoughQuota, 1816),
            (libc::EMFILE, ErrorKind::TooManyOpenFiles, 4),
            (libc::ENFILE, ErrorKind::TooManyOpenFiles, 4),
            (libc::EIO, ErrorKind::Os, 31),
            (libc::ECONNREFUSED, ErrorKind::Os, 31),
            (libc::EEXIST, ErrorKind::Os, 31),
            (0, ErrorKind::Os, 31),
            (-1, ErrorKind::Os, 31),
            (i32::MAX, ErrorKind::Os, 31),
        ];
        for (errno, kind, code) in table {
            assert_eq!(ErrorKind::of_errno(errno), kind, "errno {errno}");
            let io = std::io::Error::from_raw_os_error(errno);
            let e = Error::from(io);
            assert_eq!(e.kind(), kind, "errno {errno}");
            assert_eq!(e.win32_code(), code, "errno {errno}");
            assert_eq!(e.errno(), Some(errno));
            if (1..4096).contains(&errno) {
                let rustix = rustix::io::Errno::from_raw_os_error(errno);
                assert_eq!(Error::from(rustix).kind(), kind);
            }
            assert_eq!(Error::access("x", errno).kind(), kind);
        }
        // io::Errors without an OS number go by their kind.
        let custom = |k| Error::from(std::io::Error::new(k, "custom")).kind();
        assert_eq!(
            custom(std::io::ErrorKind::NotFound),
            ErrorKind::FileNotFound
        );
        assert_eq!(
            custom(std::io::ErrorKind::PermissionDenied),
            ErrorKind::AccessDenied
        );
        assert_eq!(
            custom(std::io::ErrorKind::InvalidInput),
            ErrorKind::InvalidParameter
        );
        assert_eq!(custom(std::io::ErrorKind::UnexpectedEof), ErrorKind::Os);
        assert_eq!(Error::from(std::io::Error::other("x")).errno(), None);
    }

    #[test]
    fn every_kind_has_a_distinct_win32_name_that_names_it_back() {
        let mut names = std::collections::HashSet::new();
        for &k in ErrorKind::ALL {
            assert!(names.insert(k.win32_name()), "{k:?}");
            assert_eq!(ErrorKind::from_win32_name(k.win32_name()), Some(k));
        }
        assert_eq!(ErrorKind::from_win32_name("ERROR_NOPE"), None);
        assert_eq!(ErrorKind::FileNotFound.win32_name(), "ERROR_FILE_NOT_FOUND");
        assert_eq!(ErrorKind::PathNotFound.win32_code(), 3);
    }

    #[test]
    fn the_cause_is_kept_and_debug_prints_the_chain() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e = Error::io("connecting to unix:/run/x.sock", io);
        assert_eq!(e.kind(), ErrorKind::FileNotFound);
        let source = std::error::Error::source(&e).expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the io::Error");
        assert_eq!(io.raw_os_error(), Some(libc::ENOENT));
        let debug = format!("{e:?}");
        assert_eq!(
            debug,
            format!(
                "ERROR_FILE_NOT_FOUND (2): connecting to unix:/run/x.sock\n\ncaused by:\n    {}",
                std::io::Error::from_raw_os_error(libc::ENOENT)
            )
        );
        // What `fn main() -> guise::Result<()>` prints: "Error: " and Debug.
        let plain = Error::new(ErrorKind::AccessDenied, "no");
        assert_eq!(
            format!("Error: {plain:?}"),
            "Error: ERROR_ACCESS_DENIED (5): no"
        );
        // A chain of two: each cause on its own line, nearest first.
        let outer = Error::with_source(ErrorKind::Os, "outer", e.clone());
        let lines: Vec<String> = outer.causes().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("connecting to unix:/run/x.sock"),
            "{lines:?}"
        );
        assert!(lines[1].contains("(os error 2)"), "{lines:?}");
        assert_eq!(outer.errno(), Some(libc::ENOENT), "the errno in the chain");
        assert_eq!(format!("{outer:?}").matches("\n    ").count(), 2);
        // Clones share the cause; equality ignores it.
        assert!(std::error::Error::source(&e.clone()).is_some());
        assert_eq!(
            e,
            Error::os(ErrorKind::FileNotFound, "connecting to unix:/run/x.sock", 2)
        );
    }

    #[test]
    fn a_guise_error_through_io_error_comes_back_as_itself() {
        let e = Error::new(ErrorKind::NoSuchUser, "who?");
        let io: std::io::Error = e.clone().into();
        assert_eq!(Error::from(io), e);
    }

    #[cfg(feature = "rpc")]
    #[test]
    fn grpc_status_carries_the_code_and_the_win32_name_back() {
        use tonic::Code;
        let rows = [
            (ErrorKind::AccessDenied, Code::PermissionDenied),
            (ErrorKind::FileNotFound, Code::NotFound),
            (ErrorKind::PathNotFound, Code::NotFound),
            (ErrorKind::NoneMapped, Code::NotFound),
            (ErrorKind::InvalidParameter, Code::InvalidArgument),
            (ErrorKind::InvalidAcl, Code::InvalidArgument),
            (ErrorKind::LogonFailure, Code::Unauthenticated),
            (ErrorKind::NotEnoughQuota, Code::ResourceExhausted),
            (ErrorKind::BadImpersonationLevel, Code::FailedPrecondition),
            (ErrorKind::RpcNoCallActive, Code::Cancelled),
            (ErrorKind::Os, Code::Internal),
        ];
        for (kind, code) in rows {
            let e = Error::os(kind, "reading \"a\"", libc::EIO);
            let status = tonic::Status::from(&e);
            assert_eq!(status.code(), code, "{kind:?}");
            assert!(status.message().contains(kind.win32_name()), "{status:?}");
            assert!(status.message().contains("(os error 5)"), "{status:?}");
            assert_eq!(
                status
                    .metadata()
                    .get(ERROR_METADATA)
                    .unwrap()
                    .to_str()
                    .unwrap(),
                kind.win32_name()
            );
            let back = Error::from(status);
            assert_eq!(back.kind(), kind);
            assert!(!back.to_string().contains("] ["), "{back}");
        }
        for &kind in ErrorKind::ALL {
            assert_eq!(
                Error::from(tonic::Status::from(Error::new(kind, "x"))).kind(),
                kind
            );
        }
        // Another server's status: by its message's name, else by its code.
        let other = tonic::Status::not_found("gone [ERROR_PATH_NOT_FOUND]");
        assert_eq!(Error::from(other).kind(), ErrorKind::PathNotFound);
        let other = tonic::Status::permission_denied("no");
        assert_eq!(Error::from(other).kind(), ErrorKind::AccessDenied);
    }

    #[cfg(feature = "dbus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dbus")))]
    #[test]
    fn dbus_errors_keep_the_documented_names() {
        use zbus::DBusError;
        let rows = [
            (ErrorKind::AccessDenied, "AccessDenied"),
            (ErrorKind::BadImpersonationLevel, "AccessDenied"),
            (ErrorKind::FileNotFound, "FileNotFound"),
            (ErrorKind::PathNotFound, "FileNotFound"),
            (ErrorKind::InvalidParameter, "InvalidArgs"),
            (ErrorKind::NotEnoughQuota, "LimitsExceeded"),
            (ErrorKind::NotEnoughMemory, "NoMemory"),
            (ErrorKind::LogonFailure, "AuthFailed"),
            (ErrorKind::NoneMapped, "Failed"),
            (ErrorKind::Os, "Failed"),
        ];
        for (kind, name) in rows {
            let e = zbus::fdo::Error::from(Error::os(kind, "x", libc::ENOENT));
            assert_eq!(
                e.name().as_str(),
                format!("org.freedesktop.DBus.Error.{name}"),
                "{kind:?}"
            );
            let text = e.description().unwrap_or_default();
            assert!(text.contains(kind.win32_name()), "{text}");
            assert!(text.contains("(os error 2)"), "{text}");
        }
    }
}
