//! Each AccessCheck rule of MS-DTYP 2.5.3.2 on its own.

use guise::security::{
    AccessCheckOptions, AccessMask, GenericMapping, access_check, access_check_with,
};
use guise::{ErrorKind, Privilege, Sid};

use super::{deny_only, enabled, mask, sd, token};

const USER: &str = "S-1-22-1-61001";
const GROUP: &str = "S-1-22-2-61100";
const GM: GenericMapping = GenericMapping::GENERIC;

fn member() -> guise::Token {
    token(
        USER,
        &[enabled(Sid::EVERYONE), enabled(GROUP.parse().unwrap())],
        &[],
    )
}

fn check(sddl: &str, t: &guise::Token, want: u32) -> guise::security::AccessCheck {
    access_check(&sd(sddl), t, mask(want), &GM).unwrap()
}

#[test]
fn first_ace_that_names_a_right_decides_it() {
    let t = member();
    // An allow before a deny: the right is granted.
    assert!(
        check(
            &format!("O:SYG:SYD:(A;;0x3;;;{GROUP})(D;;0x1;;;WD)"),
            &t,
            0x1
        )
        .is_allowed()
    );
    // A deny before an allow: denied.
    let r = check(
        &format!("O:SYG:SYD:(D;;0x1;;;WD)(A;;0x3;;;{GROUP})"),
        &t,
        0x3,
    );
    assert!(!r.is_allowed());
    assert_eq!(
        r.denial.unwrap().missing,
        mask(0x1),
        "the denial names what is missing"
    );
    // A deny that covers no wanted right does not deny.
    assert!(
        check(
            &format!("O:SYG:SYD:(D;;0x4;;;WD)(A;;0x3;;;{GROUP})"),
            &t,
            0x3
        )
        .is_allowed()
    );
    // Rights granted by several ACEs add up.
    assert!(
        check(
            &format!("O:SYG:SYD:(A;;0x1;;;WD)(A;;0x2;;;{USER})"),
            &t,
            0x3
        )
        .is_allowed()
    );
    assert!(
        !check(
            &format!("O:SYG:SYD:(A;;0x1;;;WD)(A;;0x2;;;{USER})"),
            &t,
            0x7
        )
        .is_allowed()
    );
}

#[test]
fn deny_only_groups_match_only_deny_aces() {
    let g: Sid = GROUP.parse().unwrap();
    let t = token(USER, &[enabled(Sid::EVERYONE), deny_only(g)], &[]);
    assert!(!check(&format!("O:SYG:SYD:(A;;0x1;;;{GROUP})"), &t, 0x1).is_allowed());
    assert!(
        !check(
            &format!("O:SYG:SYD:(D;;0x1;;;{GROUP})(A;;0x1;;;WD)"),
            &t,
            0x1
        )
        .is_allowed()
    );
    // A disabled group matches nothing.
    let disabled = guise::token::Group {
        sid: g,
        attributes: guise::token::GroupAttributes::empty(),
    };
    let t = token(USER, &[enabled(Sid::EVERYONE), disabled], &[]);
    assert!(!check(&format!("O:SYG:SYD:(A;;0x1;;;{GROUP})"), &t, 0x1).is_allowed());
    assert!(
        check(
            &format!("O:SYG:SYD:(D;;0x1;;;{GROUP})(A;;0x1;;;WD)"),
            &t,
            0x1
        )
        .is_allowed()
    );
}

#[test]
fn maximum_allowed() {
    let t = member();
    let d = format!("O:SYG:SYD:(D;;0x2;;;WD)(A;;0x7;;;{GROUP})(A;;0x8;;;{USER})");
    let r = check(&d, &t, AccessMask::MAXIMUM_ALLOWED.bits());
    assert_eq!((r.is_allowed(), r.granted), (true, mask(0xD)));
    // With other rights: they must be among the granted ones.
    assert!(check(&d, &t, AccessMask::MAXIMUM_ALLOWED.bits() | 0x1).is_allowed());
    let r = check(&d, &t, AccessMask::MAXIMUM_ALLOWED.bits() | 0x2);
    assert_eq!((r.is_allowed(), r.granted), (false, AccessMask::empty()));
    // Nothing granted at all: denied.
    assert!(!check("O:SYG:SYD:", &t, AccessMask::MAXIMUM_ALLOWED.bits()).is_allowed());
}

#[test]
fn owner_gets_read_control_and_write_dac_unless_owner_rights_say_otherwise() {
    let t = member();
    let rc_wd = (AccessMask::READ_CONTROL | AccessMask::WRITE_DAC).bits();
    assert!(check(&format!("O:{USER}G:SYD:"), &t, rc_wd).is_allowed());
    assert!(
        check(&format!("O:{GROUP}G:SYD:"), &t, rc_wd).is_allowed(),
        "an owner group"
    );
    assert!(
        !check("O:SYG:SYD:", &t, rc_wd).is_allowed(),
        "not the owner"
    );
    // OWNER RIGHTS ACEs replace the implicit rights, and apply to the owner only.
    let ow = format!("O:{USER}G:SYD:(A;;RC;;;OW)");
    assert!(check(&ow, &t, AccessMask::READ_CONTROL.bits()).is_allowed());
    assert!(!check(&ow, &t, AccessMask::WRITE_DAC.bits()).is_allowed());
    assert!(
        !check(
            "O:SYG:SYD:(A;;RC;;;OW)",
            &t,
            AccessMask::READ_CONTROL.bits()
        )
        .is_allowed()
    );
    // A deny OWNER RIGHTS ACE reaches an owner that is only a deny-only group.
    let g: Sid = GROUP.parse().unwrap();
    let restricted = token(USER, &[enabled(Sid::EVERYONE), deny_only(g)], &[]);
    let d = format!("O:{GROUP}G:SYD:(D;;SD;;;OW)(A;;SDRC;;;WD)");
    assert!(!check(&d, &restricted, AccessMask::DELETE.bits()).is_allowed());
    assert!(check(&d, &restricted, AccessMask::READ_CONTROL.bits()).is_allowed());
    // The owner's implicit rights are granted before the DACL is read: a deny ACE
    // does not take them.
    assert!(check(&format!("O:{USER}G:SYD:(D;;WD;;;WD)"), &t, rc_wd).is_allowed());
}

#[test]
fn privileges_grant_before_the_dacl() {
    let deny_all = "O:SYG:SYD:(D;;0xffffffff;;;WD)";
    let owner_taker = token(USER, &[enabled(Sid::EVERYONE)], &[Privilege::TakeOwnership]);
    let r = check(deny_all, &owner_taker, AccessMask::WRITE_OWNER.bits());
    assert_eq!((r.is_allowed(), r.granted), (true, AccessMask::WRITE_OWNER));
    assert!(!check(deny_all, &member(), AccessMask::WRITE_OWNER.bits()).is_allowed());

    let backup = token(USER, &[enabled(Sid::EVERYONE)], &[Privilege::Backup]);
    let restore = token(USER, &[enabled(Sid::EVERYONE)], &[Privilege::Restore]);
    let fm = GenericMapping::FILE;
    let with = {
        let mut o = AccessCheckOptions::default();
        o.backup_semantics = true;
        o
    };
    let d = sd(deny_all);
    let read = AccessMask::FILE_GENERIC_READ;
    let write = AccessMask::FILE_GENERIC_WRITE;
    let c = |t, m, o| access_check_with(&d, t, m, &fm, o).unwrap().is_allowed();
    assert!(c(&backup, read, with));
    assert!(
        !c(&backup, read, AccessCheckOptions::default()),
        "only with backup semantics"
    );
    assert!(!c(&backup, write, with), "SeBackup does not write");
    assert!(c(&restore, write | AccessMask::DELETE, with));
    assert!(!c(&restore, read, with), "SeRestore does not read");
}

#[test]
fn generic_rights_in_aces_are_mapped() {
    let t = member();
    let fm = GenericMapping::FILE;
    let d = sd("O:SYG:SYD:(A;;GR;;;WD)");
    assert!(
        access_check(&d, &t, AccessMask::FILE_GENERIC_READ, &fm)
            .unwrap()
            .is_allowed()
    );
    assert!(
        !access_check(&d, &t, AccessMask::FILE_WRITE_DATA, &fm)
            .unwrap()
            .is_allowed()
    );
    // ACCESS_SYSTEM_SECURITY in an ACE grants nothing: only the privilege does.
    let auditor = token(USER, &[enabled(Sid::EVERYONE)], &[]);
    let r = access_check(
        &sd("O:SYG:SYD:(A;;0x01000000;;;WD)"),
        &auditor,
        AccessMask::ACCESS_SYSTEM_SECURITY,
        &fm,
    )
    .unwrap();
    assert_eq!(r.denial.unwrap().reason, ErrorKind::PrivilegeNotHeld);
}

#[test]
fn callback_and_object_aces() {
    let t = member();
    let mut allow_cb = sd("O:SYG:SYD:(XA;;0x1;;;WD)");
    assert!(
        !access_check(&allow_cb, &t, mask(1), &GM)
            .unwrap()
            .is_allowed(),
        "unknown condition: no grant"
    );
    allow_cb.dacl.as_mut().unwrap().aces[0].application_data = b"artx".to_vec();
    assert!(
        !access_check(&allow_cb, &t, mask(1), &GM)
            .unwrap()
            .is_allowed()
    );
    let deny_cb = sd("O:SYG:SYD:(XD;;0x1;;;WD)(A;;0x1;;;WD)");
    assert!(
        !access_check(&deny_cb, &t, mask(1), &GM)
            .unwrap()
            .is_allowed(),
        "unknown condition: denies"
    );
    // Object ACEs: without an object type they act as plain ACEs; with one, they
    // concern a part of the object and are skipped.
    assert!(check("O:SYG:SYD:(OA;;0x1;;;WD)", &t, 1).is_allowed());
    assert!(
        !check(
            "O:SYG:SYD:(OA;;0x1;bf967aba-0de6-11d0-a285-00aa003049e2;;WD)",
            &t,
            1
        )
        .is_allowed()
    );
    // Audit and label ACEs in the DACL neither allow nor deny.
    assert!(!check("O:SYG:SYD:(AU;SA;0x1;;;WD)", &t, 1).is_allowed());
}

#[test]
fn empty_request_and_missing_parts() {
    let t = member();
    assert!(
        !check("O:SYG:SYD:(A;;0xffff;;;WD)", &t, 0).is_allowed(),
        "asking for nothing is denied"
    );
    let e = access_check(&sd("G:SYD:"), &t, mask(1), &GM).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidSecurityDescriptor);
    let e = access_check(&sd("O:SYD:"), &t, mask(1), &GM).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidSecurityDescriptor);
}

#[test]
fn removing_a_group_can_grant_more_where_a_deny_names_it() {
    // Why Windows restricts tokens with deny-only groups rather than by removing
    // groups: a deny ACE for a group stops applying once the group is gone.
    let d = format!("O:SYG:SYD:(D;;0x1;;;{GROUP})(A;;0x1;;;WD)");
    assert!(!check(&d, &member(), 1).is_allowed());
    let without = token(USER, &[enabled(Sid::EVERYONE)], &[]);
    assert!(check(&d, &without, 1).is_allowed());
    // Making it deny-only instead keeps the denial.
    let g: Sid = GROUP.parse().unwrap();
    let restricted = token(USER, &[enabled(Sid::EVERYONE), deny_only(g)], &[]);
    assert!(!check(&d, &restricted, 1).is_allowed());
}

#[test]
fn check_with_the_thread_token() {
    // No impersonation: no token.
    let e = guise::security::access_check_thread(&sd("O:SYG:SYD:"), mask(1), &GM).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoToken);
}
