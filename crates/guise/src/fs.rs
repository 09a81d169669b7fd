//! Files opened with backup intent ([`open_for_backup`]): where SeBackupPrivilege
//! and SeRestorePrivilege act.
//!
//! On Windows these two privileges let a thread past a file's DACL only for an open
//! that says it is a backup or a restore (`CreateFile` with
//! `FILE_FLAG_BACKUP_SEMANTICS`); every other open of the same thread is checked as
//! usual. guise follows: a thread that impersonates a token never has the
//! privileges' capabilities in its effective set (see [`crate::privilege`]), and
//! [`open_for_backup`] raises them on the calling thread for exactly one open, then
//! drops them again.
//!
//! | Access asked | Raised for the open | Needs, enabled in the caller's token |
//! |---|---|---|
//! | read | `CAP_DAC_READ_SEARCH` | SeBackupPrivilege |
//! | write | `CAP_DAC_OVERRIDE` | SeRestorePrivilege |
//! | read and write | both | both |
//!
//! [`take_ownership`] does the same for SeTakeOwnershipPrivilege: `CAP_CHOWN` for
//! one `chown` to the caller itself, never a give-away.
//!
//! An open that asks for an access no enabled privilege grants raises nothing and
//! is checked as any open. This is stricter than Windows, which would grant the
//! privileged part and check the rest against the DACL: `CAP_DAC_OVERRIDE` cannot
//! give writing without reading, so SeRestorePrivilege never helps an open that
//! also reads.
//!
//! # Example
//! A backup program reads every file, whatever its DACL, with SeBackupPrivilege
//! enabled in the token it impersonates:
//!
//! ```no_run
//! use guise::fs::{open_for_backup, BackupOpenOptions};
//! use guise::token::PrivilegeChange;
//! use guise::{Privilege, Token};
//!
//! let mut token = Token::open_process()?; // root's holds SeBackupPrivilege
//! token.adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Enable)])?;
//! let data = token.run_as(|| -> guise::Result<Vec<u8>> {
//!     let mut file = open_for_backup("/home/alice/.ssh/id_ed25519", &BackupOpenOptions::new().read(true))?;
//!     let mut data = Vec::new();
//!     std::io::Read::read_to_end(&mut file, &mut data).map_err(|e| guise::Error::os(guise::ErrorKind::Os, "read", &e))?;
//!     Ok(data)
//! })??;
//! # let _ = data;
//! # Ok::<(), guise::Error>(())
//! ```

use std::fs::File;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::thread::{self as rthread, CapabilitySets};

use crate::error::{Error, ErrorKind, Result};
use crate::token::TokenPrivilege;

/// How [`open_for_backup`] opens a file, as `std::fs::OpenOptions` says it (which
/// cannot be read back, hence a type of its own).
#[derive(Clone, Debug)]
#[must_use]
pub struct BackupOpenOptions {
    read: bool,
    write: bool,
    create: bool,
    truncate: bool,
    mode: u32,
}

impl Default for BackupOpenOptions {
    fn default() -> Self {
        BackupOpenOptions::new()
    }
}

impl BackupOpenOptions {
    /// No access yet; files created get mode `0o666` less the umask, as with std.
    pub fn new() -> BackupOpenOptions {
        BackupOpenOptions {
            read: false,
            write: false,
            create: false,
            truncate: false,
            mode: 0o666,
        }
    }

    /// Read access (a backup): needs SeBackupPrivilege to pass the file's mode.
    pub fn read(mut self, read: bool) -> BackupOpenOptions {
        self.read = read;
        self
    }

    /// Write access (a restore): needs SeRestorePrivilege to pass the file's mode.
    pub fn write(mut self, write: bool) -> BackupOpenOptions {
        self.write = write;
        self
    }

    /// Creates the file if it does not exist (`O_CREAT`); needs write access.
    pub fn create(mut self, create: bool) -> BackupOpenOptions {
        self.create = create;
        self
    }

    /// Empties the file (`O_TRUNC`); needs write access.
    pub fn truncate(mut self, truncate: bool) -> BackupOpenOptions {
        self.truncate = truncate;
        self
    }

    /// The mode of a file created (less the umask).
    pub fn mode(mut self, mode: u32) -> BackupOpenOptions {
        self.mode = mode;
        self
    }

    /// [`open_for_backup`] with these options.
    ///
    /// # Errors
    /// As [`open_for_backup`].
    pub fn open(&self, path: impl AsRef<Path>) -> Result<File> {
        open_for_backup(path, self)
    }
}

/// Opens a file with backup intent ([`CreateFile`] with
/// `FILE_FLAG_BACKUP_SEMANTICS`): the only open in which the caller's
/// SeBackupPrivilege (read) and SeRestorePrivilege (write) act. See the
/// [module documentation](self) for what each raises.
///
/// The caller is the calling thread in its current context: the client's token
/// while it impersonates (its *enabled* privileges count; a privilege the token
/// holds disabled does nothing, as on Windows), else the process, whose own
/// capabilities already are what its token's enabled privileges give. A capability
/// is raised only if the process holds it (it is in the thread's permitted set);
/// otherwise the open runs without it. The thread's effective capabilities are put
/// back right after the open; if that fails the process aborts, so no other call
/// runs with them.
///
/// Symbolic links are followed, as `FILE_FLAG_BACKUP_SEMANTICS` alone does; a
/// directory can be opened for reading, as with Windows' flag.
///
/// # Errors
/// - [`ErrorKind::InvalidParameter`] for neither read nor write access, or
///   create or truncate without write access.
/// - [`ErrorKind::BadImpersonationLevel`] while the thread impersonates below
///   Impersonation level.
/// - [`ErrorKind::AccessDenied`] if the file's mode (or ACL) refuses the caller
///   what no enabled privilege grants.
/// - [`ErrorKind::Os`] for any other failure of the open.
///
/// [`CreateFile`]: https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-createfilew
#[doc(alias = "FILE_FLAG_BACKUP_SEMANTICS")]
#[doc(alias = "CreateFile")]
pub fn open_for_backup(path: impl AsRef<Path>, options: &BackupOpenOptions) -> Result<File> {
    let path = path.as_ref();
    let mut flags = match (options.read, options.write) {
        (true, false) => OFlags::RDONLY,
        (false, true) => OFlags::WRONLY,
        (true, true) => OFlags::RDWR,
        (false, false) => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "an open with backup intent needs read or write access",
            ));
        }
    };
    if (options.create || options.truncate) && !options.write {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "create and truncate need write access",
        ));
    }
    flags |= OFlags::CLOEXEC | OFlags::NOCTTY;
    if options.create {
        flags |= OFlags::CREATE;
    }
    if options.truncate {
        flags |= OFlags::TRUNC;
    }
    let mode = Mode::from_raw_mode(options.mode & 0o7777);
    // No other thread's SetThreadToken lands on this thread between the look at
    // its token and the open.
    let _steady = crate::thread::steady();
    let raise = match acting_token()? {
        Some(token) => crate::privilege::backup_intent_capabilities(
            token
                .privileges()
                .iter()
                .filter(|p| p.enabled)
                .map(|p: &TokenPrivilege| p.privilege)
                .collect::<Vec<_>>(),
            options.read,
            options.write,
        ),
        None => crate::privilege::CapabilitySet::empty(),
    };
    let opened = {
        let _raised = Raised::new(raise)?;
        rustix::fs::open(path, flags, mode)
    };
    opened.map(File::from).map_err(|e| {
        Error::access(
            format!("cannot open {} with backup intent", path.display()),
            e,
        )
    })
}

/// Makes the caller the owner of the file at `path`, as taking ownership does on
/// Windows (SeTakeOwnershipPrivilege grants `WRITE_OWNER` on any object, and the
/// owner may then only be set to the taker). Symbolic links are followed.
///
/// The caller is the calling thread in its current context: while it
/// impersonates, the file's new owner is the client's uid, and an enabled
/// SeTakeOwnershipPrivilege in the client's token raises `CAP_CHOWN` on the
/// calling thread for this one `chown` (if the process holds it), then drops it
/// again. `CAP_CHOWN` is never in an impersonating thread's effective set for this
/// privilege: it would give files away to anyone. Without the privilege only
/// the file's owner may do this (a no-op then), as the kernel decides. A thread
/// that does not impersonate acts with the process's own capabilities.
///
/// The group is left as it is. The kernel clears the set-user-ID and
/// set-group-ID bits of an executable it gives a new owner.
///
/// # Errors
/// - [`ErrorKind::BadImpersonationLevel`] while the thread impersonates below
///   Impersonation level.
/// - [`ErrorKind::AccessDenied`] if the caller may not change the owner.
/// - [`ErrorKind::Os`] for any other failure.
#[doc(alias = "SeTakeOwnershipPrivilege")]
#[doc(alias = "takeown")]
pub fn take_ownership(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let _steady = crate::thread::steady();
    let raise = match acting_token()? {
        Some(token) if token.is_privilege_enabled(crate::privilege::Privilege::TakeOwnership) => {
            crate::privilege::CapabilitySet::CHOWN
        }
        _ => crate::privilege::CapabilitySet::empty(),
    };
    // The caller's own identity as the kernel checks files: the thread's fsuid
    // (its effective uid while it impersonates).
    let me = rustix::process::geteuid();
    let done = {
        let _raised = Raised::new(raise)?;
        rustix::fs::chownat(
            rustix::fs::CWD,
            path,
            Some(me),
            None,
            rustix::fs::AtFlags::empty(),
        )
    };
    done.map_err(|e| Error::access(format!("cannot take ownership of {}", path.display()), e))
}

/// The token the calling thread impersonates, whose privileges decide what it
/// may raise (`None`: it acts as the process, with the process's own
/// capabilities). Hold the thread steady around the call and the act.
///
/// # Errors
/// [`ErrorKind::BadImpersonationLevel`] while it impersonates below
/// Impersonation level.
fn acting_token() -> Result<Option<crate::token::Token>> {
    if !crate::thread::is_impersonating() {
        return Ok(None);
    }
    crate::thread::check_open_as_client()?;
    crate::thread::open_thread_token(true).map(Some)
}

/// Capabilities raised in the calling thread's effective set, dropped in `Drop`
/// (the process aborts if they cannot be).
struct Raised {
    before: Option<CapabilitySets>,
}

impl Raised {
    fn new(want: crate::privilege::CapabilitySet) -> Result<Raised> {
        if want.is_empty() {
            return Ok(Raised { before: None });
        }
        let before =
            rthread::capabilities(None).map_err(|e| Error::sys(ErrorKind::Os, "capget", e))?;
        let add = want & before.permitted;
        if before.effective.contains(add) {
            return Ok(Raised { before: None });
        }
        rthread::set_capabilities(
            None,
            CapabilitySets {
                effective: before.effective | add,
                ..before
            },
        )
        .map_err(|e| Error::sys(ErrorKind::Os, "capset", e))?;
        Ok(Raised {
            before: Some(before),
        })
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        let Some(before) = self.before else { return };
        let restored = rthread::set_capabilities(None, before)
            .and_then(|()| rthread::capabilities(None))
            .map_err(|e| Error::sys(ErrorKind::Os, "capset", e));
        match restored {
            Ok(now) if now == before => {}
            Ok(_) => crate::cred::fatal(
                "dropping the capabilities of a backup-intent open",
                &Error::new(ErrorKind::Os, "the capabilities read back differ"),
            ),
            Err(e) => crate::cred::fatal("dropping the capabilities of a backup-intent open", &e),
        }
    }
}
