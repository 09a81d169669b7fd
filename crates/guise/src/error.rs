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
    /// A caller has as much work in flight as it may have (`ERROR_NOT_ENOUGH_QUOTA`).
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
            ErrorKind::Os => "ERROR_GEN_FAILURE",
        }
    }
}

/// An error from guise: a [`ErrorKind`], a message for people, and the OS `errno`
/// when a system call caused it.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    errno: Option<i32>,
}

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind,
            message: message.into(),
            errno: None,
        }
    }

    /// A new error of `kind` caused by an OS error: an `errno` number or a
    /// `std::io::Error`.
    pub fn os(
        kind: ErrorKind,
        message: impl Into<Cow<'static, str>>,
        errno: impl Into<OsErrno>,
    ) -> Error {
        Error {
            kind,
            message: message.into(),
            errno: Some(errno.into().0),
        }
    }

    /// As [`Error::os`], from the error types of the crates guise calls.
    pub(crate) fn sys(
        kind: ErrorKind,
        message: impl Into<Cow<'static, str>>,
        errno: impl SysErrno,
    ) -> Error {
        Error {
            kind,
            message: message.into(),
            errno: Some(errno.raw()),
        }
    }

    /// An OS error of an access the kernel checked (an open, a connect, a
    /// `chown`): [`ErrorKind::AccessDenied`] for `EACCES` and `EPERM`,
    /// [`ErrorKind::Os`] for any other.
    pub(crate) fn access(message: impl Into<Cow<'static, str>>, errno: impl SysErrno) -> Error {
        let errno = errno.raw();
        let kind = if errno == libc::EACCES || errno == libc::EPERM {
            ErrorKind::AccessDenied
        } else {
            ErrorKind::Os
        };
        Error::sys(kind, message, errno)
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

    /// The message, without the Win32 name or OS error.
    pub fn message(&self) -> &str {
        &self.message
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
            ErrorKind::NoneMapped => Io::NotFound,
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(errno) = self.errno {
            write!(f, ": {}", std::io::Error::from_raw_os_error(errno))?;
        }
        write!(f, " [{}]", self.kind.win32_name())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(errno) = self.errno {
            d.field("errno", &std::io::Error::from_raw_os_error(errno));
        }
        d.finish()
    }
}

impl std::error::Error for Error {}

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
        let source = std::error::Error::source(&gone).map(ToString::to_string);
        assert!(
            source.as_ref().is_none_or(|s| s.contains("reading")),
            "{source:?}"
        );
        assert!(gone.to_string().contains("reading"), "{gone}");
        let down: std::io::Error = Error::new(ErrorKind::NoLogonServers, "kdc").into();
        assert_eq!(down.kind(), std::io::ErrorKind::HostUnreachable);
    }

    #[test]
    fn display_names_the_win32_error_and_errno() {
        let e = Error::sys(ErrorKind::Os, "setgroups", rustix::io::Errno::PERM);
        let text = e.to_string();
        assert!(text.starts_with("setgroups: "), "{text}");
        assert!(text.ends_with("[ERROR_GEN_FAILURE]"), "{text}");
        assert_eq!(e.errno(), Some(1));
        assert_eq!(
            Error::new(ErrorKind::NoToken, "x").win32_code(),
            1008,
            "ERROR_NO_TOKEN"
        );
    }
}
