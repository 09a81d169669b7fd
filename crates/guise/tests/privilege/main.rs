//! Privileges as the kernel sees them: a thread that impersonates a token gets no
//! capability broader than the token's enabled privileges, and SeBackupPrivilege and
//! SeRestorePrivilege act only for opens with backup intent
//! (`guise::fs::open_for_backup`).

#[path = "../common/mod.rs"]
mod common;

use guise::privilege::Capabilities;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

use common::{A, B, can_read};
use guise::fs::{BackupOpenOptions, open_for_backup};
use guise::process::SpawnOptions;
use guise::token::PrivilegeChange;
use guise::{CommandExt, ErrorKind, LogonType, Privilege, Token};
use rustix::thread::CapabilitySet;

/// The calling thread's effective capabilities, from the kernel.
fn effective() -> CapabilitySet {
    rustix::thread::capabilities(None).unwrap().effective
}

/// A client of uid A whose process holds (and uses) `caps`.
fn client_with(caps: CapabilitySet) -> Token {
    let caps = Capabilities::from_bits_retain(caps.bits());
    Token::from_ids_with_capabilities(A, A, &[A], caps, caps).unwrap()
}

fn read_only() -> BackupOpenOptions {
    BackupOpenOptions::new().read(true)
}

fn write_only() -> BackupOpenOptions {
    BackupOpenOptions::new().write(true)
}

/// Attack: a client whose token has SeBackupPrivilege enabled reads another user's
/// file through a server that impersonates it with a plain open. Windows honours
/// the privilege only for an open with backup intent: the plain open is refused,
/// `open_for_backup` reads, and the thread has the capability for that open only.
#[test]
fn se_backup_and_se_restore_act_only_for_backup_intent_opens() {
    need_root!();
    let f = common::files();
    let backup = client_with(CapabilitySet::DAC_READ_SEARCH);
    assert!(backup.is_privilege_enabled(Privilege::Backup));
    let restore =
        client_with(CapabilitySet::DAC_OVERRIDE | CapabilitySet::CHOWN | CapabilitySet::FOWNER);
    assert!(restore.is_privilege_enabled(Privilege::Restore));
    for token in [&backup, &restore] {
        let _as_client = token.impersonate().unwrap();
        let dac = CapabilitySet::DAC_READ_SEARCH | CapabilitySet::DAC_OVERRIDE;
        assert!(
            !effective().intersects(dac),
            "backup and restore capabilities in the thread's effective set"
        );
        assert!(!can_read(&f.root_only), "a plain open reads");
        let e = std::fs::OpenOptions::new()
            .write(true)
            .open(&f.b)
            .unwrap_err();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::PermissionDenied,
            "a plain open writes"
        );
    }
    {
        let _as_client = backup.impersonate().unwrap();
        let before = effective();
        let mut text = String::new();
        open_for_backup(&f.root_only, &read_only())
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "0");
        assert_eq!(
            effective(),
            before,
            "the capability is dropped after the open"
        );
        assert!(!can_read(&f.root_only));
        // A directory, as FILE_FLAG_BACKUP_SEMANTICS opens one.
        open_for_backup(f.root_only.parent().unwrap(), &read_only()).unwrap();
        // SeBackupPrivilege does not write.
        let e = open_for_backup(&f.b, &write_only()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e}");
    }
    // Held but disabled: nothing.
    let disabled = Token::from_ids_with_capabilities(
        A,
        A,
        &[A],
        Capabilities::DAC_READ_SEARCH,
        Capabilities::empty(),
    )
    .unwrap();
    assert!(disabled.has_privilege(Privilege::Backup));
    {
        let _as_client = disabled.impersonate().unwrap();
        let e = open_for_backup(&f.root_only, &read_only()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e}");
    }
    // Without impersonation the process's own credentials apply.
    open_for_backup(&f.b, &read_only()).unwrap();
}

/// Attack: a client whose token has only SeRestorePrivilege enabled reads any file
/// (`CAP_DAC_OVERRIDE` reads as well as writes). SeRestorePrivilege grants
/// write-type access only: a restore-intent open writes, any open that reads is
/// refused.
#[test]
fn se_restore_does_not_read() {
    need_root!();
    let f = common::files();
    let restore =
        client_with(CapabilitySet::DAC_OVERRIDE | CapabilitySet::CHOWN | CapabilitySet::FOWNER);
    assert!(!restore.is_privilege_enabled(Privilege::Backup));
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let created = private.path().join("restored.txt");
    {
        let _as_client = restore.impersonate().unwrap();
        assert!(!can_read(&f.root_only));
        for options in [read_only(), read_only().write(true)] {
            let e = open_for_backup(&f.root_only, &options).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AccessDenied, "{options:?}: {e}");
        }
        open_for_backup(&f.root_only, &write_only().truncate(true))
            .unwrap()
            .write_all(b"restored")
            .unwrap();
        open_for_backup(&created, &write_only().create(true).mode(0o600))
            .unwrap()
            .write_all(b"new")
            .unwrap();
        assert!(!can_read(&created));
    }
    assert_eq!(std::fs::read_to_string(&f.root_only).unwrap(), "restored");
    assert_eq!(std::fs::metadata(&created).unwrap().uid(), A);
}

/// Attack: a client of uid 0 whose token has SeTimeZonePrivilege enabled (as
/// Local System's has by default) and SeSystemtimePrivilege disabled sets the
/// clock: SeTimeZonePrivilege once mapped to `CAP_SYS_TIME`. Likewise
/// SeShutdownPrivilege (`CAP_SYS_BOOT` also loads kernels) and SeRelabelPrivilege
/// (`CAP_MAC_ADMIN` administers the MAC policy). None reaches a capability, in an
/// impersonating thread or in a child.
#[test]
fn se_time_zone_does_not_set_the_clock() {
    need_root!();
    for (privilege, cap) in [
        (Privilege::TimeZone, CapabilitySet::SYS_TIME),
        (Privilege::Shutdown, CapabilitySet::SYS_BOOT),
        (Privilege::Relabel, CapabilitySet::MAC_ADMIN),
    ] {
        let mut system = Token::for_uid(0, LogonType::Batch).unwrap();
        system.disable_all_privileges().unwrap();
        system
            .adjust_privileges(&[(privilege, PrivilegeChange::Enable)])
            .unwrap();
        assert!(system.is_privilege_enabled(privilege), "{privilege}");
        {
            let imp = system
                .duplicate(
                    guise::ImpersonationLevel::Impersonation,
                    guise::TokenType::Impersonation,
                )
                .unwrap();
            let _as_system = imp.impersonate().unwrap();
            assert!(!effective().contains(cap), "{privilege} gives {cap:?}");
        }
        let mut cmd = Command::new("cat");
        cmd.arg("/proc/self/status")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = cmd
            .spawn_as_user(&system, &SpawnOptions::default())
            .unwrap()
            .wait_with_output()
            .unwrap();
        let status = String::from_utf8(out.stdout).unwrap();
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap()
            .trim();
        let eff = CapabilitySet::from_bits_retain(u64::from_str_radix(eff, 16).unwrap());
        assert!(!eff.contains(cap), "a child: {privilege} gives {cap:?}");
    }
}

/// Attack: a client whose token has SeTakeOwnershipPrivilege enabled gives a file
/// away to another user (`CAP_CHOWN`). Taking ownership makes the taker the owner;
/// it never gives a file away: the privilege maps to `CAP_FOWNER` alone, and
/// `guise::fs::take_ownership` makes the caller the owner.
#[test]
fn se_take_ownership_does_not_give_files_away() {
    need_root!();
    let f = common::files();
    let taker = client_with(CapabilitySet::FOWNER | CapabilitySet::CHOWN);
    assert!(taker.is_privilege_enabled(Privilege::TakeOwnership));
    {
        let _as_client = taker.impersonate().unwrap();
        assert!(!effective().contains(CapabilitySet::CHOWN));
        let e = std::os::unix::fs::chown(&f.a, Some(B), None).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
        // CAP_FOWNER: what an owner may do, on any file (here: its mode).
        std::fs::set_permissions(&f.b, std::fs::Permissions::from_mode(0o640)).unwrap();
        // Taking ownership makes the taker the owner: CAP_CHOWN for that one chown.
        guise::fs::take_ownership(&f.root_only).unwrap();
        assert!(!effective().contains(CapabilitySet::CHOWN));
        let e = std::os::unix::fs::chown(&f.root_only, Some(B), None).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    }
    assert_eq!(std::fs::metadata(&f.a).unwrap().uid(), A);
    assert_eq!(std::fs::metadata(&f.b).unwrap().mode() & 0o777, 0o640);
    assert_eq!(std::fs::metadata(&f.root_only).unwrap().uid(), A);
    // Without the privilege enabled, only an owner may (a no-op).
    let plain = client_with(CapabilitySet::empty());
    let _as_client = plain.impersonate().unwrap();
    let e = guise::fs::take_ownership(&f.b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e}");
    guise::fs::take_ownership(&f.a).unwrap();
}

/// Issue 24: AdjustTokenPrivileges on the process token changes the thread's
/// capabilities for real (the `EnablePrivilege(SE_BACKUP_NAME)` idiom); a
/// duplicate is a value only; an impersonating thread cannot; a removed
/// privilege is gone for good.
#[test]
fn issue_24_adjusting_the_process_token_changes_the_threads_capabilities() {
    need_root!();
    use guise::{ImpersonationLevel, TokenType};
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a-only");
    std::fs::write(&f, "secret").unwrap();
    std::os::unix::fs::chown(&f, Some(A), Some(A)).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dac = CapabilitySet::DAC_READ_SEARCH | CapabilitySet::DAC_OVERRIDE;
    // On a thread of its own: the change stays with it.
    std::thread::spawn(move || {
        let mut process = Token::open_process().unwrap();
        assert!(process.is_privilege_enabled(Privilege::Backup));
        assert!(can_read(&f));
        process
            .adjust_privileges(&[
                (Privilege::Backup, PrivilegeChange::Disable),
                (Privilege::Restore, PrivilegeChange::Disable),
            ])
            .unwrap();
        assert!(!effective().intersects(dac));
        assert!(
            !can_read(&f),
            "the kernel still lets root read another's file"
        );
        assert!(
            !Token::open_process()
                .unwrap()
                .is_privilege_enabled(Privilege::Backup)
        );
        // EnablePrivilege(SE_BACKUP_NAME).
        process
            .adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Enable)])
            .unwrap();
        assert!(effective().contains(CapabilitySet::DAC_READ_SEARCH));
        assert!(!effective().contains(CapabilitySet::DAC_OVERRIDE));
        assert!(can_read(&f));
        // A duplicate is a value: the thread keeps its capabilities.
        let mut dup = process
            .duplicate(ImpersonationLevel::Impersonation, TokenType::Primary)
            .unwrap();
        dup.adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Disable)])
            .unwrap();
        assert!(can_read(&f));
        // An impersonating thread cannot change the process's privileges.
        {
            let _as_client = client_with(CapabilitySet::empty()).impersonate().unwrap();
            let e = process
                .adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Disable)])
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        }
        assert!(process.is_privilege_enabled(Privilege::Backup));
        assert!(effective().contains(CapabilitySet::DAC_READ_SEARCH));
        // A stale value of the process token starts from the kernel's state:
        // disabling Restore through it does not bring Backup back or lose it.
        let mut stale = Token::open_process().unwrap();
        process
            .adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Disable)])
            .unwrap();
        stale
            .adjust_privileges(&[(Privilege::Restore, PrivilegeChange::Disable)])
            .unwrap();
        assert!(!effective().intersects(dac));
        assert!(!stale.is_privilege_enabled(Privilege::Backup));
        process
            .adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Enable)])
            .unwrap();
        // An impersonation comes back to the thread's new capabilities.
        {
            let _as_client = client_with(CapabilitySet::empty()).impersonate().unwrap();
            assert!(!effective().intersects(dac));
        }
        assert!(effective().contains(CapabilitySet::DAC_READ_SEARCH));
        // Removed for good: out of the permitted set, never enabled again.
        process
            .adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Remove)])
            .unwrap();
        // Impersonating after a removal works and comes back without it.
        {
            let _as_client = client_with(CapabilitySet::empty()).impersonate().unwrap();
        }
        let caps = rustix::thread::capabilities(None).unwrap();
        assert!(!caps.permitted.contains(CapabilitySet::DAC_READ_SEARCH));
        assert!(
            !rustix::thread::capability_is_in_bounding_set(CapabilitySet::DAC_READ_SEARCH).unwrap(),
            "no program this thread starts as root gets it back"
        );
        assert!(!can_read(&f));
        let e = process
            .adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Enable)])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotAllAssigned);
        assert!(
            !Token::open_process()
                .unwrap()
                .has_privilege(Privilege::Backup)
        );
        process.disable_all_privileges().unwrap();
        assert!(!effective().intersects(dac | CapabilitySet::SETUID));
    })
    .join()
    .unwrap();
}

/// Issue 24: what Linux can follow of a restricted token, in the kernel: a
/// thread impersonating a token whose group was disabled (deny-only) no longer
/// holds that gid; a token whose primary group is disabled is not acted as.
#[test]
fn a_deny_only_group_leaves_the_threads_kernel_groups() {
    need_root!();
    let t = Token::from_ids(61001, 61001, &[61001, 61101, 61102]).unwrap();
    let restricted = t
        .create_restricted(&guise::token::RestrictedTokenOptions {
            sids_to_disable: vec![guise::Sid::unix_group(61101)],
            ..Default::default()
        })
        .unwrap();
    // The calling thread's own credentials, from the kernel (getgroups and
    // getegid answer for the calling thread).
    let groups = || {
        rustix::process::getgroups()
            .unwrap()
            .iter()
            .map(|g| g.as_raw())
            .collect::<Vec<_>>()
    };
    let egid = || rustix::process::getegid().as_raw();
    std::thread::spawn(move || {
        {
            let _as_client = t.impersonate().unwrap();
            assert_eq!(groups(), [61001, 61101, 61102]);
        }
        {
            let _as_client = restricted.impersonate().unwrap();
            assert_eq!(groups(), [61001, 61102]);
            assert_eq!(egid(), 61001);
        }
        let no_primary = restricted
            .create_restricted(&guise::token::RestrictedTokenOptions {
                sids_to_disable: vec![guise::Sid::unix_group(61001)],
                ..Default::default()
            })
            .unwrap();
        // Linux has no gid for denials only: a token whose primary group is
        // disabled stays at Identification level (the sentinel, no groups).
        assert_eq!(
            no_primary.impersonation_level(),
            Some(guise::ImpersonationLevel::Identification)
        );
        let _as_client = no_primary.impersonate().unwrap();
        assert_eq!(egid(), 4294967294);
        assert!(groups().is_empty());
    })
    .join()
    .unwrap();
}
