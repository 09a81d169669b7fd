//! Privileges (`Se*Privilege`) and the Linux capabilities they stand for.
//!
//! The mapping is one table, [`PRIVILEGES`]: each Windows privilege names the Linux
//! capabilities that give the same power, and **never more**. Where Linux has no
//! capability as narrow as the privilege, the privilege maps to none and is
//! bookkeeping only (AccessCheck and guise's own checks read it, the kernel never
//! sees it):
//!
//! | Privilege | Linux would offer | Why guise maps it to nothing |
//! |---|---|---|
//! | SeTimeZonePrivilege | `CAP_SYS_TIME` | it sets the clock; the time zone is a file (`/etc/localtime`), guarded by its mode |
//! | SeShutdownPrivilege | `CAP_SYS_BOOT` | it also loads a new kernel (`kexec_load`) and cannot be split |
//! | SeRelabelPrivilege | `CAP_MAC_ADMIN` | it administers the whole MAC policy, not one object's label |
//!
//! SeTakeOwnershipPrivilege maps to `CAP_FOWNER` alone: `CAP_CHOWN` would give a
//! file away to anyone, where taking ownership only makes the taker the owner.
//!
//! While a thread impersonates a token, its effective capabilities are the
//! capabilities of the token's *enabled* privileges that the server holds in its
//! permitted set (never the server's own), except those of
//! [`CapabilityScope::BackupIntent`] privileges: SeBackupPrivilege and
//! SeRestorePrivilege act only for an open made with backup intent
//! ([`crate::fs::open_for_backup`], Windows' `FILE_FLAG_BACKUP_SEMANTICS`), which
//! raises the capability for that one open. SeRestorePrivilege grants write-type
//! access only: `CAP_DAC_OVERRIDE`, which would read as well, is raised only for an
//! open that asks for no read access. A process started as a token of uid 0 gets
//! SeBackupPrivilege's `CAP_DAC_READ_SEARCH` and SeRestorePrivilege's `CAP_CHOWN`
//! and `CAP_FOWNER` (a program chooses its own intent), never `CAP_DAC_OVERRIDE`.

use std::fmt;
use std::str::FromStr;

pub use rustix::thread::CapabilitySet;

use crate::error::{Error, ErrorKind, Result};

macro_rules! privileges {
    ($( $variant:ident = $name:literal, $caps:expr, $scope:ident, $system_default:literal, $doc:literal; )*) => {
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
                scope: CapabilityScope::$scope,
                enabled_for_system: $system_default,
                description: $doc,
            }, )*
        ];
    };
}

const NONE: CapabilitySet = CapabilitySet::empty();
const SETID: CapabilitySet = CapabilitySet::SETUID.union(CapabilitySet::SETGID);

privileges! {
    CreateToken = "SeCreateTokenPrivilege", NONE, Enabled, false, "Create a token object.";
    AssignPrimaryToken = "SeAssignPrimaryTokenPrivilege", SETID, Enabled, false, "Replace a process-level token (start a process as another user).";
    LockMemory = "SeLockMemoryPrivilege", CapabilitySet::IPC_LOCK, Enabled, true, "Lock pages in memory.";
    IncreaseQuota = "SeIncreaseQuotaPrivilege", CapabilitySet::SYS_RESOURCE, Enabled, false, "Adjust memory quotas for a process.";
    MachineAccount = "SeMachineAccountPrivilege", NONE, Enabled, false, "Add workstations to domain.";
    Tcb = "SeTcbPrivilege", SETID, Enabled, true, "Act as part of the operating system (log users on).";
    Security = "SeSecurityPrivilege", CapabilitySet::AUDIT_CONTROL, Enabled, false, "Manage auditing and security log.";
    TakeOwnership = "SeTakeOwnershipPrivilege", CapabilitySet::FOWNER, Enabled, false, "Take ownership of files or other objects.";
    LoadDriver = "SeLoadDriverPrivilege", CapabilitySet::SYS_MODULE, Enabled, false, "Load and unload device drivers.";
    SystemProfile = "SeSystemProfilePrivilege", CapabilitySet::PERFMON, Enabled, true, "Profile system performance.";
    Systemtime = "SeSystemtimePrivilege", CapabilitySet::SYS_TIME, Enabled, false, "Change the system time.";
    ProfileSingleProcess = "SeProfileSingleProcessPrivilege", NONE, Enabled, true, "Profile single process.";
    IncreaseBasePriority = "SeIncreaseBasePriorityPrivilege", CapabilitySet::SYS_NICE, Enabled, true, "Increase scheduling priority.";
    CreatePagefile = "SeCreatePagefilePrivilege", NONE, Enabled, true, "Create a pagefile.";
    CreatePermanent = "SeCreatePermanentPrivilege", NONE, Enabled, true, "Create permanent shared objects.";
    Backup = "SeBackupPrivilege", CapabilitySet::DAC_READ_SEARCH, BackupIntent, false, "Back up files and directories (read any file).";
    Restore = "SeRestorePrivilege", CapabilitySet::DAC_OVERRIDE.union(CapabilitySet::CHOWN).union(CapabilitySet::FOWNER), BackupIntent, false, "Restore files and directories (write any file, set any owner).";
    Shutdown = "SeShutdownPrivilege", NONE, Enabled, false, "Shut down the system.";
    Debug = "SeDebugPrivilege", CapabilitySet::SYS_PTRACE, Enabled, true, "Debug programs (trace any process).";
    Audit = "SeAuditPrivilege", CapabilitySet::AUDIT_WRITE, Enabled, true, "Generate security audits.";
    SystemEnvironment = "SeSystemEnvironmentPrivilege", NONE, Enabled, false, "Modify firmware environment values.";
    ChangeNotify = "SeChangeNotifyPrivilege", NONE, Enabled, true, "Bypass traverse checking (every token has it).";
    RemoteShutdown = "SeRemoteShutdownPrivilege", NONE, Enabled, false, "Force shutdown from a remote system.";
    Undock = "SeUndockPrivilege", NONE, Enabled, false, "Remove computer from docking station.";
    SyncAgent = "SeSyncAgentPrivilege", NONE, Enabled, false, "Synchronize directory service data.";
    EnableDelegation = "SeEnableDelegationPrivilege", NONE, Enabled, false, "Enable accounts to be trusted for delegation.";
    ManageVolume = "SeManageVolumePrivilege", NONE, Enabled, false, "Perform volume maintenance tasks.";
    Impersonate = "SeImpersonatePrivilege", SETID, Enabled, true, "Impersonate a client after authentication.";
    CreateGlobal = "SeCreateGlobalPrivilege", NONE, Enabled, true, "Create global objects.";
    TrustedCredManAccess = "SeTrustedCredManAccessPrivilege", NONE, Enabled, false, "Access Credential Manager as a trusted caller.";
    Relabel = "SeRelabelPrivilege", NONE, Enabled, false, "Modify an object label.";
    IncreaseWorkingSet = "SeIncreaseWorkingSetPrivilege", NONE, Enabled, true, "Increase a process working set.";
    TimeZone = "SeTimeZonePrivilege", NONE, Enabled, true, "Change the time zone.";
    CreateSymbolicLink = "SeCreateSymbolicLinkPrivilege", NONE, Enabled, true, "Create symbolic links.";
    DelegateSessionUserImpersonate = "SeDelegateSessionUserImpersonatePrivilege", NONE, Enabled, false, "Obtain an impersonation token for another user in the same session.";
}

/// When the capabilities of a privilege act (a column of [`PRIVILEGES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CapabilityScope {
    /// Whenever the privilege is enabled: in the effective set of a thread that
    /// impersonates the token (and of a process of uid 0 started as it).
    Enabled,
    /// Only for an open made with backup intent ([`crate::fs::open_for_backup`],
    /// `FILE_FLAG_BACKUP_SEMANTICS`): never in a thread's effective set.
    #[doc(alias = "FILE_FLAG_BACKUP_SEMANTICS")]
    BackupIntent,
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
    /// When they act: while the privilege is enabled, or only for backup-intent
    /// opens.
    pub scope: CapabilityScope,
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

/// The capabilities a thread impersonating a token gets for these enabled
/// privileges: those of [`CapabilityScope::Enabled`] privileges only, never those
/// that act only for backup-intent opens. (`Token::enabled_capabilities` is this,
/// for the token's enabled privileges.)
pub(crate) fn capabilities_of(privileges: impl IntoIterator<Item = Privilege>) -> CapabilitySet {
    privileges
        .into_iter()
        .filter(|p| p.info().scope == CapabilityScope::Enabled)
        .fold(CapabilitySet::empty(), |acc, p| acc | p.capabilities())
}

/// The capabilities a process of uid 0 started as a token keeps for these enabled
/// privileges. A program chooses its own intent, so backup-intent privileges count
/// too, except `CAP_DAC_OVERRIDE`, which would give SeRestorePrivilege reading.
pub(crate) fn process_capabilities(
    privileges: impl IntoIterator<Item = Privilege>,
) -> CapabilitySet {
    privileges
        .into_iter()
        .fold(CapabilitySet::empty(), |acc, p| match p.info().scope {
            CapabilityScope::Enabled => acc | p.capabilities(),
            CapabilityScope::BackupIntent => acc | (p.capabilities() - CapabilitySet::DAC_OVERRIDE),
        })
}

/// The capabilities an open with backup intent raises for these enabled
/// privileges: `CAP_DAC_READ_SEARCH` for reading (SeBackupPrivilege),
/// `CAP_DAC_OVERRIDE` for writing (SeRestorePrivilege). An open that asks for an
/// access no enabled privilege grants raises nothing and is checked as any open:
/// `CAP_DAC_OVERRIDE` cannot give writing without reading, so SeRestorePrivilege
/// never helps an open that also reads.
pub(crate) fn backup_intent_capabilities(
    privileges: impl IntoIterator<Item = Privilege> + Clone,
    read: bool,
    write: bool,
) -> CapabilitySet {
    let enabled = |want: Privilege| privileges.clone().into_iter().any(|p| p == want);
    let read_ok = !read || enabled(Privilege::Backup);
    let write_ok = !write || enabled(Privilege::Restore);
    if !(read || write) || !read_ok || !write_ok {
        return CapabilitySet::empty();
    }
    let mut caps = CapabilitySet::empty();
    if read {
        caps |= CapabilitySet::DAC_READ_SEARCH;
    }
    if write {
        caps |= CapabilitySet::DAC_OVERRIDE;
    }
    caps
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
            CapabilitySet::FOWNER
        );
        assert_eq!(Privilege::Debug.capabilities(), CapabilitySet::SYS_PTRACE);
        assert!(Privilege::ChangeNotify.capabilities().is_empty());
    }

    /// Every privilege's capabilities, as the thread and a child get them.
    fn thread_caps(p: Privilege) -> CapabilitySet {
        capabilities_of([p])
    }

    #[test]
    fn se_time_zone_does_not_set_the_clock() {
        assert!(Privilege::TimeZone.capabilities().is_empty());
        assert!(!thread_caps(Privilege::TimeZone).contains(CapabilitySet::SYS_TIME));
        assert!(!process_capabilities([Privilege::TimeZone]).contains(CapabilitySet::SYS_TIME));
        // Only SeSystemtimePrivilege sets the clock.
        let clock: Vec<_> = Privilege::all()
            .filter(|p| p.capabilities().contains(CapabilitySet::SYS_TIME))
            .collect();
        assert_eq!(clock, [Privilege::Systemtime]);
    }

    #[test]
    fn se_shutdown_does_not_load_a_kernel() {
        // CAP_SYS_BOOT allows kexec_load as well as reboot: no privilege maps to it.
        assert!(Privilege::Shutdown.capabilities().is_empty());
        assert!(
            Privilege::all().all(|p| !p.capabilities().contains(CapabilitySet::SYS_BOOT)),
            "no privilege may give CAP_SYS_BOOT"
        );
    }

    #[test]
    fn se_relabel_does_not_administer_the_mac_policy() {
        assert!(Privilege::Relabel.capabilities().is_empty());
        assert!(
            Privilege::all().all(|p| !p
                .capabilities()
                .intersects(CapabilitySet::MAC_ADMIN | CapabilitySet::MAC_OVERRIDE)),
            "no privilege may give CAP_MAC_ADMIN or CAP_MAC_OVERRIDE"
        );
    }

    #[test]
    fn se_take_ownership_does_not_give_files_away() {
        assert!(
            !Privilege::TakeOwnership
                .capabilities()
                .contains(CapabilitySet::CHOWN)
        );
        assert!(!thread_caps(Privilege::TakeOwnership).contains(CapabilitySet::CHOWN));
        assert!(!process_capabilities([Privilege::TakeOwnership]).contains(CapabilitySet::CHOWN));
    }

    #[test]
    fn se_restore_does_not_read() {
        // Never in a thread, never in a child: CAP_DAC_OVERRIDE reads.
        assert!(!thread_caps(Privilege::Restore).contains(CapabilitySet::DAC_OVERRIDE));
        assert!(!process_capabilities([Privilege::Restore]).contains(CapabilitySet::DAC_OVERRIDE));
        assert!(
            !process_capabilities([Privilege::Restore])
                .intersects(CapabilitySet::DAC_READ_SEARCH | CapabilitySet::DAC_OVERRIDE)
        );
        // A backup-intent open: writing only; one that also reads gets nothing.
        let restore = [Privilege::Restore];
        assert_eq!(
            backup_intent_capabilities(restore, false, true),
            CapabilitySet::DAC_OVERRIDE
        );
        assert!(backup_intent_capabilities(restore, true, false).is_empty());
        assert!(backup_intent_capabilities(restore, true, true).is_empty());
    }

    #[test]
    fn se_backup_and_se_restore_act_only_for_backup_intent_opens() {
        let both = [Privilege::Backup, Privilege::Restore];
        assert!(
            capabilities_of(both).is_empty(),
            "never in a thread's effective set"
        );
        assert_eq!(
            backup_intent_capabilities(both, true, false),
            CapabilitySet::DAC_READ_SEARCH
        );
        assert_eq!(
            backup_intent_capabilities(both, true, true),
            CapabilitySet::DAC_READ_SEARCH | CapabilitySet::DAC_OVERRIDE
        );
        assert!(backup_intent_capabilities([Privilege::Backup], false, true).is_empty());
        assert!(backup_intent_capabilities([Privilege::Debug], true, false).is_empty());
        assert!(backup_intent_capabilities(both, false, false).is_empty());
        // Other privileges act as before.
        assert_eq!(
            capabilities_of([Privilege::Backup, Privilege::Debug]),
            CapabilitySet::SYS_PTRACE
        );
        for info in PRIVILEGES {
            let backup = matches!(info.privilege, Privilege::Backup | Privilege::Restore);
            assert_eq!(
                info.scope == CapabilityScope::BackupIntent,
                backup,
                "{}",
                info.name
            );
        }
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
