//! Privileges (`Se*Privilege`) and the Linux capabilities they stand for.
//!
//! The mapping is one table, [`PRIVILEGES`]: each Windows privilege names the Linux
//! capabilities that give the same power. While a thread impersonates a token, its
//! effective capabilities are exactly the capabilities of the token's *enabled*
//! privileges that the server holds in its permitted set (never the server's own).
//!
//! A privilege with no capability (for example `SeChangeNotifyPrivilege`, which every
//! token has) is bookkeeping only: AccessCheck and guise's own checks read it, the
//! kernel never sees it.

use std::fmt;
use std::str::FromStr;

pub use rustix::thread::CapabilitySet;

use crate::error::{Error, ErrorKind, Result};

macro_rules! privileges {
    ($( $variant:ident = $name:literal, $caps:expr, $system_default:literal, $doc:literal; )*) => {
        /// A Windows privilege (`SE_*_NAME`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Privilege {
            $( #[doc = $doc] $variant, )*
        }

        /// Every privilege with its name, its Linux capabilities, and whether Windows
        /// enables it by default in the Local System token.
        pub const PRIVILEGES: &[PrivilegeInfo] = &[
            $( PrivilegeInfo {
                privilege: Privilege::$variant,
                name: $name,
                capabilities: $caps,
                enabled_for_system: $system_default,
                description: $doc,
            }, )*
        ];
    };
}

const NONE: CapabilitySet = CapabilitySet::empty();
const SETID: CapabilitySet = CapabilitySet::SETUID.union(CapabilitySet::SETGID);

privileges! {
    CreateToken = "SeCreateTokenPrivilege", NONE, false, "Create a token object.";
    AssignPrimaryToken = "SeAssignPrimaryTokenPrivilege", SETID, false, "Replace a process-level token (start a process as another user).";
    LockMemory = "SeLockMemoryPrivilege", CapabilitySet::IPC_LOCK, true, "Lock pages in memory.";
    IncreaseQuota = "SeIncreaseQuotaPrivilege", CapabilitySet::SYS_RESOURCE, false, "Adjust memory quotas for a process.";
    MachineAccount = "SeMachineAccountPrivilege", NONE, false, "Add workstations to domain.";
    Tcb = "SeTcbPrivilege", SETID, true, "Act as part of the operating system (log users on).";
    Security = "SeSecurityPrivilege", CapabilitySet::AUDIT_CONTROL, false, "Manage auditing and security log.";
    TakeOwnership = "SeTakeOwnershipPrivilege", CapabilitySet::FOWNER.union(CapabilitySet::CHOWN), false, "Take ownership of files or other objects.";
    LoadDriver = "SeLoadDriverPrivilege", CapabilitySet::SYS_MODULE, false, "Load and unload device drivers.";
    SystemProfile = "SeSystemProfilePrivilege", CapabilitySet::PERFMON, true, "Profile system performance.";
    Systemtime = "SeSystemtimePrivilege", CapabilitySet::SYS_TIME, false, "Change the system time.";
    ProfileSingleProcess = "SeProfileSingleProcessPrivilege", NONE, true, "Profile single process.";
    IncreaseBasePriority = "SeIncreaseBasePriorityPrivilege", CapabilitySet::SYS_NICE, true, "Increase scheduling priority.";
    CreatePagefile = "SeCreatePagefilePrivilege", NONE, true, "Create a pagefile.";
    CreatePermanent = "SeCreatePermanentPrivilege", NONE, true, "Create permanent shared objects.";
    Backup = "SeBackupPrivilege", CapabilitySet::DAC_READ_SEARCH, false, "Back up files and directories (read any file).";
    Restore = "SeRestorePrivilege", CapabilitySet::DAC_OVERRIDE.union(CapabilitySet::CHOWN).union(CapabilitySet::FOWNER), false, "Restore files and directories (write any file, set any owner).";
    Shutdown = "SeShutdownPrivilege", CapabilitySet::SYS_BOOT, false, "Shut down the system.";
    Debug = "SeDebugPrivilege", CapabilitySet::SYS_PTRACE, true, "Debug programs (trace any process).";
    Audit = "SeAuditPrivilege", CapabilitySet::AUDIT_WRITE, true, "Generate security audits.";
    SystemEnvironment = "SeSystemEnvironmentPrivilege", NONE, false, "Modify firmware environment values.";
    ChangeNotify = "SeChangeNotifyPrivilege", NONE, true, "Bypass traverse checking (every token has it).";
    RemoteShutdown = "SeRemoteShutdownPrivilege", NONE, false, "Force shutdown from a remote system.";
    Undock = "SeUndockPrivilege", NONE, false, "Remove computer from docking station.";
    SyncAgent = "SeSyncAgentPrivilege", NONE, false, "Synchronize directory service data.";
    EnableDelegation = "SeEnableDelegationPrivilege", NONE, false, "Enable accounts to be trusted for delegation.";
    ManageVolume = "SeManageVolumePrivilege", NONE, false, "Perform volume maintenance tasks.";
    Impersonate = "SeImpersonatePrivilege", SETID, true, "Impersonate a client after authentication.";
    CreateGlobal = "SeCreateGlobalPrivilege", NONE, true, "Create global objects.";
    TrustedCredManAccess = "SeTrustedCredManAccessPrivilege", NONE, false, "Access Credential Manager as a trusted caller.";
    Relabel = "SeRelabelPrivilege", CapabilitySet::MAC_ADMIN, false, "Modify an object label.";
    IncreaseWorkingSet = "SeIncreaseWorkingSetPrivilege", NONE, true, "Increase a process working set.";
    TimeZone = "SeTimeZonePrivilege", CapabilitySet::SYS_TIME, true, "Change the time zone.";
    CreateSymbolicLink = "SeCreateSymbolicLinkPrivilege", NONE, true, "Create symbolic links.";
    DelegateSessionUserImpersonate = "SeDelegateSessionUserImpersonatePrivilege", NONE, false, "Obtain an impersonation token for another user in the same session.";
}

/// One row of the privilege table: see [`PRIVILEGES`].
#[derive(Clone, Copy, Debug)]
pub struct PrivilegeInfo {
    /// The privilege.
    pub privilege: Privilege,
    /// Its Win32 name (`"SeImpersonatePrivilege"`).
    pub name: &'static str,
    /// The Linux capabilities that give the same power (empty: bookkeeping only).
    pub capabilities: CapabilitySet,
    /// Whether Windows enables it by default in the Local System token; guise does
    /// the same for tokens of uid 0.
    pub enabled_for_system: bool,
    /// A short description, as `whoami /priv` shows.
    pub description: &'static str,
}

impl Privilege {
    /// The table row of this privilege.
    pub fn info(self) -> &'static PrivilegeInfo {
        // The table is generated from the same list as the enum, in order.
        &PRIVILEGES[self as usize]
    }

    /// The Win32 name ([`LookupPrivilegeName`]).
    ///
    /// [`LookupPrivilegeName`]: https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-lookupprivilegenamew
    #[doc(alias = "LookupPrivilegeName")]
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The Linux capabilities this privilege stands for.
    pub fn capabilities(self) -> CapabilitySet {
        self.info().capabilities
    }

    /// The privilege with this Win32 name ([`LookupPrivilegeValue`]); names are
    /// compared without regard to case, as Windows does.
    ///
    /// [`LookupPrivilegeValue`]: https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-lookupprivilegevaluew
    #[doc(alias = "LookupPrivilegeValue")]
    pub fn from_name(name: &str) -> Option<Privilege> {
        PRIVILEGES
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.privilege)
    }

    /// Every privilege, in the order of their Win32 LUID values.
    pub fn all() -> impl Iterator<Item = Privilege> {
        PRIVILEGES.iter().map(|p| p.privilege)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Privilege {
    type Err = Error;

    fn from_str(s: &str) -> Result<Privilege> {
        Privilege::from_name(s).ok_or_else(|| {
            Error::new(
                ErrorKind::NoSuchPrivilege,
                format!("no privilege is named {s:?}"),
            )
        })
    }
}

/// The capabilities of a set of privileges.
pub fn capabilities_of(privileges: impl IntoIterator<Item = Privilege>) -> CapabilitySet {
    privileges
        .into_iter()
        .fold(CapabilitySet::empty(), |acc, p| acc | p.capabilities())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order() {
        for (i, info) in PRIVILEGES.iter().enumerate() {
            assert_eq!(info.privilege as usize, i, "{}", info.name);
            assert_eq!(Privilege::from_name(info.name), Some(info.privilege));
        }
    }

    #[test]
    fn documented_mapping() {
        assert_eq!(Privilege::Impersonate.capabilities(), SETID);
        assert_eq!(Privilege::AssignPrimaryToken.capabilities(), SETID);
        assert_eq!(Privilege::Tcb.capabilities(), SETID);
        assert_eq!(
            Privilege::Backup.capabilities(),
            CapabilitySet::DAC_READ_SEARCH
        );
        assert_eq!(
            Privilege::Restore.capabilities(),
            CapabilitySet::DAC_OVERRIDE | CapabilitySet::CHOWN | CapabilitySet::FOWNER
        );
        assert_eq!(
            Privilege::TakeOwnership.capabilities(),
            CapabilitySet::FOWNER | CapabilitySet::CHOWN
        );
        assert_eq!(Privilege::Debug.capabilities(), CapabilitySet::SYS_PTRACE);
        assert!(Privilege::ChangeNotify.capabilities().is_empty());
    }

    #[test]
    fn names_are_case_insensitive_and_unknown_is_an_error() {
        assert_eq!(
            "sebackupprivilege".parse::<Privilege>().unwrap(),
            Privilege::Backup
        );
        assert_eq!(
            "SeNoSuchPrivilege".parse::<Privilege>().unwrap_err().kind(),
            ErrorKind::NoSuchPrivilege
        );
        assert_eq!(Privilege::Impersonate.to_string(), "SeImpersonatePrivilege");
    }
}
