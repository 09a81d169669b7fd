//! Mandatory integrity and restricted tokens, case by case against Windows'
//! documented behaviour ("Windows Integrity Mechanism Design";
//! `CreateRestrictedToken`; the restricted-token second pass of AccessCheck).

use guise::security::{AccessMask, GenericMapping, access_check};
use guise::token::{GroupAttributes, RestrictedTokenOptions};
use guise::{ErrorKind, ImpersonationLevel, Privilege, Sid, Token, TokenType};

use super::{enabled, sd, sid, token};

const ALICE: &str = "S-1-22-1-61001";
const STAFF: &str = "S-1-22-2-61101";

fn read() -> AccessMask {
    GenericMapping::FILE.map(AccessMask::GENERIC_READ)
}
fn write() -> AccessMask {
    GenericMapping::FILE.map(AccessMask::GENERIC_WRITE)
}
fn execute() -> AccessMask {
    GenericMapping::FILE.map(AccessMask::GENERIC_EXECUTE)
}

fn allowed(sddl: &str, t: &Token, desired: AccessMask) -> bool {
    access_check(&sd(sddl), t, desired, &GenericMapping::FILE)
        .unwrap()
        .is_allowed()
}

fn alice() -> Token {
    token(ALICE, &[enabled(Sid::EVERYONE), enabled(sid(STAFF))], &[])
}

fn at(level: Sid, t: &Token) -> Token {
    let mut t = t.clone();
    t.set_integrity_level(level).unwrap();
    t
}

#[test]
fn tokens_have_the_integrity_levels_of_windows() {
    assert_eq!(alice().integrity_level(), Sid::MEDIUM_INTEGRITY);
    assert_eq!(
        Token::anonymous().integrity_level(),
        Sid::UNTRUSTED_INTEGRITY
    );
    let admin = token(ALICE, &[enabled(Sid::ADMINISTRATORS)], &[]);
    assert_eq!(admin.integrity_level(), Sid::HIGH_INTEGRITY);
    assert!(admin.is_elevated());
    assert!(!alice().is_elevated());
    let root = Token::from_ids(0, 0, &[0]).unwrap();
    assert_eq!(root.integrity_level(), Sid::SYSTEM_INTEGRITY);
    assert!(root.is_elevated());
    assert_eq!(
        alice().elevation_type().win32_name(),
        "TokenElevationTypeDefault"
    );
}

#[test]
fn an_integrity_level_only_goes_down() {
    let mut t = alice();
    t.set_integrity_level(Sid::LOW_INTEGRITY).unwrap();
    assert_eq!(t.integrity_level(), Sid::LOW_INTEGRITY);
    let e = t.set_integrity_level(Sid::MEDIUM_INTEGRITY).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PrivilegeNotHeld);
    assert_eq!(t.integrity_level(), Sid::LOW_INTEGRITY);
    let e = t.set_integrity_level(Sid::EVERYONE).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    t.set_integrity_level(Sid::UNTRUSTED_INTEGRITY).unwrap();
    assert_eq!(t.integrity_level(), Sid::UNTRUSTED_INTEGRITY);
}

/// "Objects that do not have an integrity label are treated as medium by the
/// operating system": a low token cannot write them, and still reads them
/// (no-write-up is the default policy; reading down is allowed).
#[test]
fn an_unlabeled_object_is_medium_with_no_write_up() {
    let open = "O:BAG:BAD:(A;;FA;;;WD)";
    let low = at(Sid::LOW_INTEGRITY, &alice());
    assert!(allowed(open, &alice(), write()));
    assert!(!allowed(open, &low, write()));
    assert!(allowed(open, &low, read()));
    assert!(allowed(open, &low, execute()));
    // Nor delete it or change its DACL or owner.
    for right in [
        AccessMask::DELETE,
        AccessMask::WRITE_DAC,
        AccessMask::WRITE_OWNER,
    ] {
        assert!(!allowed(open, &low, right), "{right}");
    }
    // MAXIMUM_ALLOWED grants the rest.
    let r = access_check(
        &sd(open),
        &low,
        AccessMask::MAXIMUM_ALLOWED,
        &GenericMapping::FILE,
    )
    .unwrap();
    assert!(r.granted.contains(read()));
    assert!(!r.granted.intersects(AccessMask::FILE_WRITE_DATA));
    // A NULL DACL too.
    assert!(!allowed("O:BAG:BA", &low, write()));
    assert!(allowed("O:BAG:BA", &low, read()));
}

/// The case: `S:(ML;;NW;;;HI)` is no longer ignored.
#[test]
fn a_high_label_stops_writes_from_medium_and_lets_high_write() {
    let high_nw = "O:BAG:BAD:(A;;FA;;;WD)S:(ML;;NW;;;HI)";
    assert!(!allowed(high_nw, &alice(), write()));
    assert!(allowed(high_nw, &alice(), read()));
    let admin = token(
        ALICE,
        &[enabled(Sid::ADMINISTRATORS), enabled(Sid::EVERYONE)],
        &[],
    );
    assert!(allowed(high_nw, &admin, write()));
    let high_nr = "O:BAG:BAD:(A;;FA;;;WD)S:(ML;;NR;;;HI)";
    assert!(!allowed(high_nr, &alice(), read()));
    assert!(allowed(high_nr, &alice(), write()), "no NW in the policy");
    assert!(
        allowed(high_nr, &alice(), AccessMask::READ_CONTROL),
        "reading the descriptor is not reading the object"
    );
    let high_nx = "O:BAG:BAD:(A;;FA;;;WD)S:(ML;;NX;;;HI)";
    assert!(!allowed(high_nx, &alice(), execute()));
    assert!(allowed(high_nx, &alice(), read()));
    // A low label lets a low token write; an inherit-only label is no label.
    let low = at(Sid::LOW_INTEGRITY, &alice());
    assert!(allowed(
        "O:BAG:BAD:(A;;FA;;;WD)S:(ML;;NW;;;LW)",
        &low,
        write()
    ));
    assert!(allowed(
        "O:BAG:BAD:(A;;FA;;;WD)S:(ML;OICIIO;NW;;;HI)",
        &alice(),
        write()
    ));
    // The DACL still decides first.
    assert!(!allowed(
        "O:BAG:BAD:(A;;FR;;;WD)S:(ML;;NW;;;LW)",
        &alice(),
        write()
    ));
}

fn restricted(t: &Token, options: RestrictedTokenOptions) -> Token {
    t.create_restricted(&options).unwrap()
}

/// A restricted token is granted only what both its SIDs and its restricting
/// SIDs are granted.
#[test]
fn a_restricted_token_gets_what_both_passes_grant() {
    let dacl = format!("O:BAG:BAD:(A;;FA;;;{ALICE})(A;;FR;;;WD)");
    let t = restricted(
        &alice(),
        RestrictedTokenOptions {
            restricting_sids: vec![Sid::EVERYONE],
            ..Default::default()
        },
    );
    assert!(t.is_restricted() && !alice().is_restricted());
    assert_eq!(t.restricting_sids().unwrap().len(), 1);
    assert!(allowed(&dacl, &alice(), write()));
    assert!(!allowed(&dacl, &t, write()), "Everyone may not write");
    assert!(allowed(&dacl, &t, read()));
    // A restricting SID the DACL grants more does not add to the token's own.
    let staff_writes = format!("O:BAG:BAD:(A;;FA;;;{STAFF})(A;;FR;;;{ALICE})");
    let t2 = restricted(
        &token(ALICE, &[], &[]),
        RestrictedTokenOptions {
            restricting_sids: vec![sid(STAFF)],
            ..Default::default()
        },
    );
    assert!(!allowed(&staff_writes, &t2, write()), "alice may not write");
    assert!(allowed(&staff_writes, &t2, read()), "both may read");
    let staff_reads_only = format!("O:BAG:BAD:(A;;FR;;;{STAFF})(A;;FA;;;{ALICE})");
    assert!(
        !allowed(&staff_reads_only, &t2, write()),
        "STAFF may not write"
    );
    // The owner's implicit rights need the owner among the restricting SIDs too.
    let owned = format!("O:{ALICE}G:BAD:");
    assert!(allowed(&owned, &alice(), AccessMask::WRITE_DAC));
    assert!(!allowed(&owned, &t, AccessMask::WRITE_DAC));
    // Restricting again keeps what both lists have.
    let again = restricted(
        &t,
        RestrictedTokenOptions {
            restricting_sids: vec![Sid::EVERYONE, sid(STAFF)],
            ..Default::default()
        },
    );
    let sids: Vec<Sid> = again
        .restricting_sids()
        .unwrap()
        .iter()
        .map(|g| g.sid)
        .collect();
    assert_eq!(sids, [Sid::EVERYONE]);
}

#[test]
fn a_write_restricted_token_is_restricted_for_writes_only_and_never_widens() {
    let dacl = format!("O:BAG:BAD:(A;;FA;;;{ALICE})");
    let t = restricted(
        &alice(),
        RestrictedTokenOptions {
            restricting_sids: vec![Sid::EVERYONE],
            write_restricted: true,
            ..Default::default()
        },
    );
    assert!(t.is_write_restricted());
    assert!(allowed(&dacl, &t, read()));
    assert!(!allowed(&dacl, &t, write()));
    // Attack: restricting a fully restricted token again as write-restricted
    // would let its reads skip the second pass. It stays fully restricted.
    let full = restricted(
        &alice(),
        RestrictedTokenOptions {
            restricting_sids: vec![Sid::EVERYONE],
            ..Default::default()
        },
    );
    let widened = restricted(
        &full,
        RestrictedTokenOptions {
            restricting_sids: vec![Sid::EVERYONE],
            write_restricted: true,
            ..Default::default()
        },
    );
    assert!(!widened.is_write_restricted());
    assert!(!allowed(&dacl, &widened, read()));
}

#[test]
fn deny_only_sids_match_deny_aces_and_no_allow_ace() {
    let t = restricted(
        &alice(),
        RestrictedTokenOptions {
            sids_to_disable: vec![sid(STAFF), sid(ALICE)],
            ..Default::default()
        },
    );
    let staff = t.groups().iter().find(|g| g.sid == sid(STAFF)).unwrap();
    assert!(
        staff
            .attributes
            .contains(GroupAttributes::USE_FOR_DENY_ONLY)
    );
    assert!(!staff.attributes.contains(GroupAttributes::ENABLED));
    assert!(t.is_user_deny_only());
    assert!(
        !t.is_restricted(),
        "disabling SIDs alone restricts nothing more"
    );
    assert!(!allowed(
        &format!("O:BAG:BAD:(A;;FA;;;{STAFF})"),
        &t,
        read()
    ));
    assert!(!allowed(
        &format!("O:BAG:BAD:(A;;FA;;;{ALICE})"),
        &t,
        read()
    ));
    assert!(!allowed(
        &format!("O:BAG:BAD:(D;;0x2;;;{STAFF})(A;;FA;;;WD)"),
        &t,
        write()
    ));
    assert!(allowed(
        &format!("O:BAG:BAD:(D;;0x2;;;{STAFF})(A;;FA;;;WD)"),
        &t,
        read()
    ));
    assert!(!t.check_membership(&sid(STAFF)).unwrap());
}

#[test]
fn removed_privileges_are_gone_and_take_their_capabilities() {
    let root = Token::from_ids_with_capabilities(
        0,
        0,
        &[0],
        guise::privilege::Capabilities::all(),
        guise::privilege::Capabilities::all(),
    )
    .unwrap();
    assert!(root.has_privilege(Privilege::Debug));
    let t = restricted(
        &root,
        RestrictedTokenOptions {
            privileges_to_delete: vec![Privilege::Debug],
            ..Default::default()
        },
    );
    assert!(!t.has_privilege(Privilege::Debug));
    assert!(t.has_privilege(Privilege::TakeOwnership));
    assert!(
        !t.enabled_capabilities()
            .contains(guise::privilege::Capabilities::SYS_PTRACE)
    );
    let max = restricted(
        &root,
        RestrictedTokenOptions {
            disable_max_privilege: true,
            ..Default::default()
        },
    );
    let names: Vec<&str> = max
        .privileges()
        .iter()
        .map(|p| p.privilege.name())
        .collect();
    assert_eq!(names, ["SeChangeNotifyPrivilege"]);
    assert!(max.enabled_capabilities().is_empty());
    assert_ne!(max.statistics().token_id, root.statistics().token_id);
}

/// What Linux can follow of a restricted token: a disabled group's gid leaves
/// the kernel's groups; a disabled primary group or user, and restricting SIDs,
/// which the kernel cannot check, keep the token at Identification level.
#[test]
fn the_kernel_follows_what_it_can_and_nothing_acts_as_a_restricted_token() {
    let t = Token::from_ids(61001, 61001, &[61001, 61101, 61102]).unwrap();
    let no_staff = restricted(
        &t,
        RestrictedTokenOptions {
            sids_to_disable: vec![Sid::unix_group(61101)],
            ..Default::default()
        },
    );
    assert_eq!(no_staff.unix().groups(), [61001, 61102]);
    assert_eq!(no_staff.unix().gid().as_raw(), 61001);
    assert_eq!(no_staff.token_type(), TokenType::Primary);
    // Linux has no id that counts for denials only: a disabled user or
    // primary group leaves a token no thread or process acts as.
    for disabled in [Sid::unix_group(61001), Sid::unix_user(61001)] {
        let t = restricted(
            &t,
            RestrictedTokenOptions {
                sids_to_disable: vec![disabled],
                ..Default::default()
            },
        );
        assert_eq!(
            t.impersonation_level(),
            Some(ImpersonationLevel::Identification)
        );
        assert!(
            t.duplicate(ImpersonationLevel::Impersonation, TokenType::Primary)
                .is_err()
        );
    }
    let r = restricted(
        &t,
        RestrictedTokenOptions {
            restricting_sids: vec![Sid::EVERYONE],
            ..Default::default()
        },
    );
    assert_eq!(
        r.impersonation_level(),
        Some(ImpersonationLevel::Identification)
    );
    let e = r
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadImpersonationLevel);
    assert!(
        r.duplicate(ImpersonationLevel::Impersonation, TokenType::Primary)
            .is_err()
    );
}

/// Wine's `test_CreateRestrictedToken` (real Windows behaviour): a disabled
/// group stays in the token, for deny only and not enabled; membership checks
/// no longer count it; the type and level of the source are kept; a deleted
/// privilege is gone, not disabled; SIDs and privileges the token does not
/// have are ignored.
#[test]
fn wine_create_restricted_token_cases() {
    let source = token(
        ALICE,
        &[enabled(Sid::EVERYONE), enabled(sid(STAFF))],
        &[Privilege::ChangeNotify, Privilege::Backup],
    );
    assert!(source.check_membership(&sid(STAFF)).unwrap());
    let r = restricted(
        &source,
        RestrictedTokenOptions {
            sids_to_disable: vec![sid(STAFF)],
            ..Default::default()
        },
    );
    assert!(!r.check_membership(&sid(STAFF)).unwrap());
    let g = r.groups().iter().find(|g| g.sid == sid(STAFF)).unwrap();
    assert!(g.attributes.contains(GroupAttributes::USE_FOR_DENY_ONLY));
    assert!(!g.attributes.contains(GroupAttributes::ENABLED));
    assert_eq!(r.token_type(), source.token_type());
    assert_eq!(r.impersonation_level(), source.impersonation_level());
    let primary = Token::from_ids(61001, 61001, &[61001, 61101]).unwrap();
    let rp = restricted(
        &primary,
        RestrictedTokenOptions {
            sids_to_disable: vec![Sid::unix_group(61101)],
            ..Default::default()
        },
    );
    assert_eq!(rp.token_type(), TokenType::Primary);
    let no_backup = restricted(
        &source,
        RestrictedTokenOptions {
            privileges_to_delete: vec![Privilege::Backup],
            ..Default::default()
        },
    );
    assert!(
        !no_backup.has_privilege(Privilege::Backup),
        "deleted, not disabled"
    );
    assert!(
        !no_backup
            .privilege_check(&[Privilege::Backup], true)
            .unwrap()
    );
    let ignored = restricted(
        &source,
        RestrictedTokenOptions {
            sids_to_disable: vec![sid("S-1-5-21-3735928559-1-2-3")],
            privileges_to_delete: vec![Privilege::Debug],
            ..Default::default()
        },
    );
    assert_eq!(ignored.groups(), source.groups());
    assert_eq!(ignored.privileges(), source.privileges());
    // test_elevation: a restricted token keeps its elevation type.
    assert_eq!(r.elevation_type(), source.elevation_type());
}
