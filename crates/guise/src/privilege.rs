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
//! file away to anyone, where taking ownership only makes the taker the owner
//! ([`crate::fs::take_ownership`] raises `CAP_CHOWN` for that one `chown`).
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
//!
//! # Example
//! ```
//! use guise::Privilege;
//!
//! let backup = Privilege::from_name("sebackupprivilege").unwrap(); // LookupPrivilegeValue
//! assert_eq!(backup, Privilege::Backup);
//! assert_eq!(backup.name(), "SeBackupPrivilege");
//! assert_eq!(backup.info().capabilities.names(), ["CAP_DAC_READ_SEARCH"]);
//! ```

use std::fmt;
use std::str::FromStr;

/// rustix's capability set, for the crate's own system calls; the public API
/// speaks [`Capabilities`].
pub(crate) use rustix::thread::CapabilitySet;

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

const NONE: Capabilities = Capabilities::empty();
const SETID: Capabilities = Capabilities::SETUID.union(Capabilities::SETGID);

privileges! {
    CreateToken = "SeCreateTokenPrivilege", NONE, Enabled, false, "Create a token object.";
    AssignPrimaryToken = "SeAssignPrimaryTokenPrivilege", SETID, Enabled, false, "Replace a process-level token (start a process as another user).";
    LockMemory = "SeLockMemoryPrivilege", Capabilities::IPC_LOCK, Enabled, true, "Lock pages in memory.";
    IncreaseQuota = "SeIncreaseQuotaPrivilege", Capabilities::SYS_RESOURCE, Enabled, false, "Adjust memory quotas for a process.";
    MachineAccount = "SeMachineAccountPrivilege", NONE, Enabled, false, "Add workstations to domain.";
    Tcb = "SeTcbPrivilege", SETID, Enabled, true, "Act as part of the operating system (log users on).";
    Security = "SeSecurityPrivilege", Capabilities::AUDIT_CONTROL, Enabled, false, "Manage auditing and security log.";
    TakeOwnership = "SeTakeOwnershipPrivilege", Capabilities::FOWNER, Enabled, false, "Take ownership of files or other objects.";
    LoadDriver = "SeLoadDriverPrivilege", Capabilities::SYS_MODULE, Enabled, false, "Load and unload device drivers.";
    SystemProfile = "SeSystemProfilePrivilege", Capabilities::PERFMON, Enabled, true, "Profile system performance.";
    Systemtime = "SeSystemtimePrivilege", Capabilities::SYS_TIME, Enabled, false, "Change the system time.";
    ProfileSingleProcess = "SeProfileSingleProcessPrivilege", NONE, Enabled, true, "Profile single process.";
    IncreaseBasePriority = "SeIncreaseBasePriorityPrivilege", Capabilities::SYS_NICE, Enabled, true, "Increase scheduling priority.";
    CreatePagefile = "SeCreatePagefilePrivilege", NONE, Enabled, true, "Create a pagefile.";
    CreatePermanent = "SeCreatePermanentPrivilege", NONE, Enabled, true, "Create permanent shared objects.";
    Backup = "SeBackupPrivilege", Capabilities::DAC_READ_SEARCH, BackupIntent, false, "Back up files and directories (read any file).";
    Restore = "SeRestorePrivilege", Capabilities::DAC_OVERRIDE.union(Capabilities::CHOWN).union(Capabilities::FOWNER), BackupIntent, false, "Restore files and directories (write any file, set any owner).";
    Shutdown = "SeShutdownPrivilege", NONE, Enabled, false, "Shut down the system.";
    Debug = "SeDebugPrivilege", Capabilities::SYS_PTRACE, Enabled, true, "Debug programs (trace any process).";
    Audit = "SeAuditPrivilege", Capabilities::AUDIT_WRITE, Enabled, true, "Generate security audits.";
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

bitflags::bitflags! {
    /// A set of Linux capabilities (`CAP_*`, capabilities(7)): bit *n* stands for
    /// capability number *n*, as in the kernel's sets (`CapEff` in
    /// `/proc/PID/status`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Capabilities: u64 {
        /// `CAP_CHOWN`: change any file's owner and group.
        const CHOWN = 1 << 0;
        /// `CAP_DAC_OVERRIDE`: pass read, write and execute permission checks.
        const DAC_OVERRIDE = 1 << 1;
        /// `CAP_DAC_READ_SEARCH`: pass read permission checks on files and
        /// read and search checks on directories.
        const DAC_READ_SEARCH = 1 << 2;
        /// `CAP_FOWNER`: act as any file's owner (mode, ACL, times).
        const FOWNER = 1 << 3;
        /// `CAP_FSETID`: keep set-id bits when a file changes.
        const FSETID = 1 << 4;
        /// `CAP_KILL`: signal any process.
        const KILL = 1 << 5;
        /// `CAP_SETGID`: change group ids.
        const SETGID = 1 << 6;
        /// `CAP_SETUID`: change user ids.
        const SETUID = 1 << 7;
        /// `CAP_SETPCAP`: change capability sets and bounding sets.
        const SETPCAP = 1 << 8;
        /// `CAP_LINUX_IMMUTABLE`: set the immutable and append-only attributes.
        const LINUX_IMMUTABLE = 1 << 9;
        /// `CAP_NET_BIND_SERVICE`: bind ports below 1024.
        const NET_BIND_SERVICE = 1 << 10;
        /// `CAP_NET_BROADCAST`: broadcast and multicast (unused by the kernel).
        const NET_BROADCAST = 1 << 11;
        /// `CAP_NET_ADMIN`: administer the network.
        const NET_ADMIN = 1 << 12;
        /// `CAP_NET_RAW`: raw and packet sockets.
        const NET_RAW = 1 << 13;
        /// `CAP_IPC_LOCK`: lock memory.
        const IPC_LOCK = 1 << 14;
        /// `CAP_IPC_OWNER`: pass System V IPC permission checks.
        const IPC_OWNER = 1 << 15;
        /// `CAP_SYS_MODULE`: load and unload kernel modules.
        const SYS_MODULE = 1 << 16;
        /// `CAP_SYS_RAWIO`: raw I/O (ports, `/dev/mem`).
        const SYS_RAWIO = 1 << 17;
        /// `CAP_SYS_CHROOT`: `chroot`.
        const SYS_CHROOT = 1 << 18;
        /// `CAP_SYS_PTRACE`: trace any process.
        const SYS_PTRACE = 1 << 19;
        /// `CAP_SYS_PACCT`: process accounting.
        const SYS_PACCT = 1 << 20;
        /// `CAP_SYS_ADMIN`: many administrative operations.
        const SYS_ADMIN = 1 << 21;
        /// `CAP_SYS_BOOT`: `reboot` and `kexec_load`.
        const SYS_BOOT = 1 << 22;
        /// `CAP_SYS_NICE`: raise priorities, real-time scheduling.
        const SYS_NICE = 1 << 23;
        /// `CAP_SYS_RESOURCE`: override resource limits and quotas.
        const SYS_RESOURCE = 1 << 24;
        /// `CAP_SYS_TIME`: set the clocks.
        const SYS_TIME = 1 << 25;
        /// `CAP_SYS_TTY_CONFIG`: `vhangup` and terminal configuration.
        const SYS_TTY_CONFIG = 1 << 26;
        /// `CAP_MKNOD`: make device files.
        const MKNOD = 1 << 27;
        /// `CAP_LEASE`: leases on any file.
        const LEASE = 1 << 28;
        /// `CAP_AUDIT_WRITE`: write to the kernel audit log.
        const AUDIT_WRITE = 1 << 29;
        /// `CAP_AUDIT_CONTROL`: configure kernel auditing.
        const AUDIT_CONTROL = 1 << 30;
        /// `CAP_SETFCAP`: set file capabilities.
        const SETFCAP = 1 << 31;
        /// `CAP_MAC_OVERRIDE`: override mandatory access control.
        const MAC_OVERRIDE = 1 << 32;
        /// `CAP_MAC_ADMIN`: configure mandatory access control.
        const MAC_ADMIN = 1 << 33;
        /// `CAP_SYSLOG`: privileged `syslog` operations.
        const SYSLOG = 1 << 34;
        /// `CAP_WAKE_ALARM`: alarms that wake the system.
        const WAKE_ALARM = 1 << 35;
        /// `CAP_BLOCK_SUSPEND`: block system suspend.
        const BLOCK_SUSPEND = 1 << 36;
        /// `CAP_AUDIT_READ`: read the audit log.
        const AUDIT_READ = 1 << 37;
        /// `CAP_PERFMON`: performance monitoring.
        const PERFMON = 1 << 38;
        /// `CAP_BPF`: privileged BPF operations.
        const BPF = 1 << 39;
        /// `CAP_CHECKPOINT_RESTORE`: checkpoint and restore.
        const CHECKPOINT_RESTORE = 1 << 40;
        // Capabilities of kernels newer than this list.
        const _ = !0;
    }
}

impl Capabilities {
    /// The names of the capabilities in the set, as the kernel spells them
    /// (`CAP_CHOWN`), in number order; one this list does not know is `CAP_n`
    /// (its number).
    pub fn names(self) -> Vec<String> {
        // The named ones: CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40).
        const NAMED: u64 = (1 << 41) - 1;
        let unknown = self.bits() & !NAMED;
        self.iter_names()
            .map(|(n, _)| format!("CAP_{n}"))
            .chain(
                (0..64)
                    .filter(move |n| unknown & (1 << n) != 0)
                    .map(|n| format!("CAP_{n}")),
            )
            .collect()
    }

    /// From rustix's set (for the crate's credentials, whose public fields are
    /// to speak this type).
    #[allow(dead_code)]
    pub(crate) const fn from_set(set: CapabilitySet) -> Capabilities {
        Capabilities::from_bits_retain(set.bits())
    }

    /// As rustix's set.
    pub(crate) const fn to_set(self) -> CapabilitySet {
        CapabilitySet::from_bits_retain(self.bits())
    }
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
    pub capabilities: Capabilities,
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

    /// The Linux capabilities this privilege stands for, as rustix's set (the
    /// public API has them as [`PrivilegeInfo::capabilities`]).
    pub(crate) fn capabilities(self) -> CapabilitySet {
        self.info().capabilities.to_set()
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

/// A set of privileges (`PRIVILEGE_SET`): what AccessCheck reports it used.
#[doc(alias = "PRIVILEGE_SET")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PrivilegeSet(u64);

impl PrivilegeSet {
    /// The empty set.
    pub const fn empty() -> PrivilegeSet {
        PrivilegeSet(0)
    }

    fn bit(p: Privilege) -> u64 {
        let i = PRIVILEGES
            .iter()
            .position(|info| info.privilege == p)
            .unwrap_or(63);
        1 << i
    }

    /// Adds `p`.
    pub fn insert(&mut self, p: Privilege) {
        self.0 |= Self::bit(p);
    }

    /// Whether `p` is in the set.
    pub fn contains(self, p: Privilege) -> bool {
        self.0 & Self::bit(p) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The privileges in the set, in LUID order.
    pub fn iter(self) -> impl Iterator<Item = Privilege> {
        Privilege::all().filter(move |&p| self.contains(p))
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
        assert_eq!(Privilege::Impersonate.capabilities(), SETID.to_set());
        assert_eq!(Privilege::AssignPrimaryToken.capabilities(), SETID.to_set());
        assert_eq!(Privilege::Tcb.capabilities(), SETID.to_set());
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
    fn capabilities_are_guises_own_type_with_the_kernels_numbers() {
        // The same bits as rustix's (and the kernel's) sets.
        for (name, set) in CapabilitySet::all().iter_names() {
            let own = Capabilities::from_name(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(own.bits(), set.bits(), "{name}");
            assert_eq!(Capabilities::from_set(set).to_set(), set);
        }
        assert_eq!(
            (Capabilities::CHOWN | Capabilities::SYS_TIME).names(),
            ["CAP_CHOWN", "CAP_SYS_TIME"]
        );
        assert_eq!(
            Capabilities::from_bits_retain(1 << 41 | 1).names(),
            ["CAP_CHOWN", "CAP_41"]
        );
        assert_eq!(
            Privilege::Debug.info().capabilities,
            Capabilities::SYS_PTRACE
        );
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
