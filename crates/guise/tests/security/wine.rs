//! The cases of Wine's `test_ConvertStringSecurityDescriptor`,
//! `test_ConvertSecurityDescriptorToString` and `test_AccessCheck`, restated. Where
//! Windows versions differ, the Vista-and-later behaviour is the one checked.

use guise::security::{
    AccessMask, Ace, AceFlags, AceType, Acl, Control, GenericMapping, SecurityDescriptor,
    access_check, sddl,
};
use guise::{ErrorKind, ImpersonationLevel, Privilege, Sid, TokenType};

use super::{enabled, mask, sd, sid, token};

/// Parse cases: the input and the error kind, or `None` for success.
const PARSE: &[(&str, Option<ErrorKind>)] = &[
    ("D:(A;;GA;;;WD)", None),
    ("D:(D;;GA;;;WD)", None),
    ("ERROR:(D;;GA;;;WD)", Some(ErrorKind::InvalidParameter)),
    // White space.
    (" D:(D;;GA;;;WD)", None),
    ("D: (D;;GA;;;WD)", None),
    ("D:( D;;GA;;;WD)", None),
    ("D:(D ;;GA;;;WD)", Some(ErrorKind::InvalidAcl)),
    ("D:(D; ;GA;;;WD)", None),
    ("D:(D;; GA;;;WD)", None),
    ("D:(D;;GA ;;;WD)", Some(ErrorKind::InvalidAcl)),
    ("D:(D;;GA; ;;WD)", None),
    ("D:(D;;GA;; ;WD)", None),
    ("D:(D;;GA;;; WD)", None),
    ("D:(D;;GA;;;WD )", None),
    // Access rights.
    ("D:(A;;GA;;;WD)", None),
    ("D:(A;;1;;;WD)", None),
    ("D:(A;;020000000000;;;WD)", None),
    ("D:(A;;0X40000000;;;WD)", None),
    ("D:(A;;GRGWGX;;;WD)", None),
    ("D:(A;;RCSDWDWO;;;WD)", None),
    ("D:(A;;RPWPCCDCLCSWLODTCR;;;WD)", None),
    ("D:(A;;FAFRFWFX;;;WD)", None),
    ("D:(A;;KAKRKWKX;;;WD)", None),
    ("D:(A;;0xFFFFFFFF;;;WD)", None),
    ("S:(AU;;0xFFFFFFFF;;;WD)", None),
    ("S:(AU;;0xDeAdBeEf;;;WD)", None),
    ("S:(AU;;GR0xFFFFFFFF;;;WD)", None),
    ("S:(AU;;0xFFFFFFFFGR;;;WD)", None),
    ("S:(AU;;0xFFFFFGR;;;WD)", None),
    ("D:(A;;ROB;;;WD)", Some(ErrorKind::InvalidAcl)),
    // Empty string.
    ("", None),
    // Trustees.
    ("D:(D;;GA;;;S-1-0-0)", None),
    ("D:(D;;GA;;;WDANDSUCH)", Some(ErrorKind::InvalidAcl)),
    (
        "D:(D;;GA;;;Nonexistent account)",
        Some(ErrorKind::InvalidAcl),
    ),
    // Flags, a domain SID and a mandatory label.
    (
        "D:P(A;;GRGW;;;BA)(A;;GRGW;;;S-1-5-21-0-0-0-1000)S:(ML;;NWNR;;;S-1-16-12288)",
        None,
    ),
];

#[test]
fn convert_string_security_descriptor_table() {
    for (input, want) in PARSE {
        match (sddl::parse(input, None), want) {
            (Ok(_), None) => {}
            (Err(e), Some(kind)) => assert_eq!(e.kind(), *kind, "{input:?}: {e}"),
            (got, want) => panic!("{input:?}: got {got:?}, want error {want:?}"),
        }
    }
}

#[test]
fn parsed_masks_and_revision() {
    for (input, bits) in [
        ("D:(A;;GA;;;WD)", 0x1000_0000),
        ("D:(A;;1;;;WD)", 0x1),
        ("D:(A;;020000000000;;;WD)", 0x8000_0000),
        ("D:(A;;0X40000000;;;WD)", 0x4000_0000),
        ("D:(A;;GRGWGX;;;WD)", 0xE000_0000),
        ("D:(A;;RCSDWDWO;;;WD)", 0x000F_0000),
        ("D:(A;;RPWPCCDCLCSWLODTCR;;;WD)", 0x1FF),
        ("D:(A;;FAFRFWFX;;;WD)", 0x1F_01FF),
        ("D:(A;;KAKRKWKX;;;WD)", 0xF_003F),
        ("S:(AU;;0xDeAdBeEf;;;WD)", 0xDEAD_BEEF),
        ("S:(AU;;GR0xFFFFFFFF;;;WD)", 0xFFFF_FFFF),
        ("S:(AU;;0xFFFFFGR;;;WD)", 0x800F_FFFF),
    ] {
        let d = sd(input);
        let acl = d.dacl.as_ref().or(d.sacl.as_ref()).unwrap();
        assert_eq!(acl.revision, 2, "{input}");
        assert_eq!(acl.aces[0].mask.bits(), bits, "{input}");
        // In the self-relative form the first ACE's mask sits at byte 28.
        let bin = d.to_self_relative().unwrap();
        assert_eq!(
            u32::from_le_bytes(bin[32..36].try_into().unwrap()),
            bits,
            "{input}"
        );
    }
}

#[test]
fn empty_acls_and_empty_string() {
    for input in ["D:", "S:"] {
        let bin = sd(input).to_self_relative().unwrap();
        assert_eq!(bin.len(), 28, "{input}");
        assert_eq!(&bin[20..28], &[2, 0, 8, 0, 0, 0, 0, 0], "{input}");
    }
    let empty = sd("");
    assert_eq!(empty, SecurityDescriptor::default());
    assert_eq!(empty.to_self_relative().unwrap().len(), 20);
}

#[test]
fn convert_security_descriptor_to_string_steps() {
    let g1 = sid("S-1-5-21-93476-23408-4576");
    let su = Sid::SERVICE;
    let show = |d: &SecurityDescriptor| sddl::to_string(d, None).unwrap();
    let mut d = SecurityDescriptor::default();
    assert_eq!(show(&d), "");
    d.owner = Some(sid("S-1-2-0"));
    assert_eq!(show(&d), "O:S-1-2-0");
    d.control |= Control::OWNER_DEFAULTED;
    assert_eq!(show(&d), "O:S-1-2-0", "the defaulted flag does not show");
    d.owner = Some(Sid::LOCAL_SYSTEM);
    assert_eq!(show(&d), "O:SY");
    d.group = Some(g1);
    assert_eq!(show(&d), "O:SYG:S-1-5-21-93476-23408-4576");
    let only_group = SecurityDescriptor {
        group: Some(g1),
        ..Default::default()
    };
    assert_eq!(show(&only_group), "G:S-1-5-21-93476-23408-4576");
    d.dacl = Some(Acl::empty());
    assert_eq!(show(&d), "O:SYG:S-1-5-21-93476-23408-4576D:");
    let acl = d.dacl.as_mut().unwrap();
    acl.aces.push(Ace::new(
        AceType::AccessAllowed,
        AceFlags::NO_PROPAGATE_INHERIT,
        mask(0xF000_0000),
        su,
    ));
    assert_eq!(
        show(&d),
        "O:SYG:S-1-5-21-93476-23408-4576D:(A;NP;GAGXGWGR;;;SU)"
    );
    let acl = d.dacl.as_mut().unwrap();
    acl.aces.push(Ace::new(
        AceType::AccessAllowed,
        AceFlags::INHERIT_ONLY | AceFlags::INHERITED,
        mask(3),
        su,
    ));
    acl.aces.push(Ace::new(
        AceType::AccessDenied,
        AceFlags::OBJECT_INHERIT | AceFlags::CONTAINER_INHERIT,
        mask(0xFFFF_FFFF),
        g1,
    ));
    let full_dacl = "O:SYG:S-1-5-21-93476-23408-4576D:(A;NP;GAGXGWGR;;;SU)(A;IOID;CCDC;;;SU)(D;OICI;0xffffffff;;;S-1-5-21-93476-23408-4576)";
    assert_eq!(show(&d), full_dacl);
    d.dacl = Some(Acl::empty());
    d.sacl = Some(Acl::empty());
    assert_eq!(show(&d), "O:SYG:S-1-5-21-93476-23408-4576D:S:");
    // A present but NULL DACL, and audit ACEs with every flag.
    d.dacl = None;
    d.control |= Control::DACL_PRESENT;
    d.sacl.as_mut().unwrap().aces.push(Ace::new(
        AceType::SystemAudit,
        AceFlags::from_bits_retain(0xDF),
        mask(0x2_001F),
        su,
    ));
    assert_eq!(
        show(&d),
        "O:SYG:S-1-5-21-93476-23408-4576D:NO_ACCESS_CONTROLS:(AU;OICINPIOIDSAFA;CCDCLCSWRPRC;;;SU)"
    );
    d.sacl.as_mut().unwrap().aces.push(Ace::new(
        AceType::SystemAudit,
        AceFlags::NO_PROPAGATE_INHERIT | AceFlags::SUCCESSFUL_ACCESS,
        mask(0x12_019F),
        su,
    ));
    assert_eq!(
        show(&d),
        "O:SYG:S-1-5-21-93476-23408-4576D:NO_ACCESS_CONTROLS:(AU;OICINPIOIDSAFA;CCDCLCSWRPRC;;;SU)(AU;NPSA;0x12019f;;;SU)"
    );
}

#[test]
fn private_object_security_round_trip() {
    let s = "O:SYG:S-1-5-21-93476-23408-4576D:(A;NP;GAGXGWGR;;;SU)(A;IOID;CCDC;;;SU)(D;OICI;0xffffffff;;;S-1-5-21-93476-23408-4576)S:(AU;OICINPIOIDSAFA;CCDCLCSWRPRC;;;SU)(AU;NPSA;0x12019f;;;SU)";
    let d = sd(s);
    assert_eq!(sddl::to_string(&d, None).unwrap(), s);
    let bin = d.to_self_relative().unwrap();
    assert_eq!(u16::from_le_bytes([bin[2], bin[3]]), 0x8014);
    assert_eq!(SecurityDescriptor::from_self_relative(&bin).unwrap(), d);
}

fn key_sd(dacl: &str) -> SecurityDescriptor {
    sd(&format!("O:BAG:BU{dacl}"))
}

#[test]
fn access_check_cases() {
    let km = GenericMapping::KEY;
    let user = token(
        "S-1-5-21-1-2-3-1000",
        &[enabled(Sid::EVERYONE), enabled(Sid::USERS)],
        &[],
    );
    let admin = token(
        "S-1-5-21-1-2-3-1001",
        &[
            enabled(Sid::EVERYONE),
            enabled(Sid::USERS),
            enabled(Sid::ADMINISTRATORS),
        ],
        &[],
    );
    let check =
        |d: &SecurityDescriptor, t: &guise::Token, want: AccessMask| access_check(d, t, want, &km);
    // No owner and group: an invalid descriptor.
    let e = check(&sd("D:"), &user, AccessMask::KEY_QUERY_VALUE).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidSecurityDescriptor);
    // Generic rights in the desired mask.
    let e = check(&key_sd("D:"), &user, AccessMask::GENERIC_READ).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::GenericNotMapped);
    // No DACL, and a NULL DACL, grant everything.
    let r = check(&key_sd(""), &user, AccessMask::KEY_READ).unwrap();
    assert_eq!((r.is_allowed(), r.granted), (true, AccessMask::KEY_READ));
    let r = check(&key_sd("D:NO_ACCESS_CONTROL"), &user, AccessMask::KEY_READ).unwrap();
    assert_eq!((r.is_allowed(), r.granted), (true, AccessMask::KEY_READ));
    let r = check(
        &key_sd("D:NO_ACCESS_CONTROL"),
        &user,
        AccessMask::MAXIMUM_ALLOWED,
    )
    .unwrap();
    assert_eq!(
        (r.is_allowed(), r.granted),
        (true, AccessMask::KEY_ALL_ACCESS)
    );
    // An empty DACL grants nothing.
    let r = check(&key_sd("D:"), &user, AccessMask::KEY_READ).unwrap();
    assert_eq!(r.granted, AccessMask::empty());
    assert_eq!(r.denial.unwrap().reason, ErrorKind::AccessDenied);
    // Allow KEY_READ to Everyone, deny KEY_SET_VALUE to Administrators.
    let d = key_sd("D:(A;;KR;;;WD)(D;;0x2;;;BA)");
    let r = check(&d, &user, AccessMask::KEY_READ).unwrap();
    assert_eq!((r.is_allowed(), r.granted), (true, AccessMask::KEY_READ));
    let r = check(&d, &admin, AccessMask::MAXIMUM_ALLOWED).unwrap();
    assert!(r.is_allowed());
    assert_eq!(
        r.granted,
        AccessMask::KEY_READ | AccessMask::WRITE_DAC,
        "owner's implicit rights"
    );
    let r = check(&d, &user, AccessMask::KEY_WRITE).unwrap();
    assert!(!r.is_allowed());
    assert_eq!(r.granted, AccessMask::empty());
    // ACCESS_SYSTEM_SECURITY needs SeSecurityPrivilege.
    let r = check(&d, &user, AccessMask::ACCESS_SYSTEM_SECURITY).unwrap();
    assert_eq!(r.denial.unwrap().reason, ErrorKind::PrivilegeNotHeld);
    let auditor = token(
        "S-1-5-21-1-2-3-1000",
        &[enabled(Sid::EVERYONE)],
        &[Privilege::Security],
    );
    let r = check(&d, &auditor, AccessMask::ACCESS_SYSTEM_SECURITY).unwrap();
    assert_eq!(
        (r.is_allowed(), r.granted),
        (true, AccessMask::ACCESS_SYSTEM_SECURITY)
    );
    // Inherit-only ACEs do not apply to the object.
    let r = check(&key_sd("D:(A;IO;KR;;;WD)"), &user, AccessMask::KEY_READ).unwrap();
    assert!(!r.is_allowed());
    // Token preconditions.
    let process = guise::Token::from_ids(61001, 61001, &[]).unwrap();
    let anon = process
        .duplicate(ImpersonationLevel::Anonymous, TokenType::Impersonation)
        .unwrap();
    assert_eq!(
        check(&d, &anon, AccessMask::MAXIMUM_ALLOWED)
            .unwrap_err()
            .kind(),
        ErrorKind::BadImpersonationLevel
    );
    assert_eq!(
        check(&d, &process, AccessMask::KEY_READ)
            .unwrap_err()
            .kind(),
        ErrorKind::NoImpersonationToken
    );
}

#[test]
fn file_security_cases() {
    // The mapping of Wine's test_FileSecurity, and a DACL like a new file's.
    let fm = GenericMapping {
        read: AccessMask::FILE_READ_DATA,
        write: AccessMask::FILE_WRITE_DATA,
        execute: AccessMask::FILE_EXECUTE,
        all: AccessMask::FILE_ALL_ACCESS,
    };
    let me = "S-1-5-21-1-2-3-1000";
    let d = sd(&format!(
        "O:{me}G:{me}D:(A;;FA;;;{me})(A;;FA;;;SY)(A;;FA;;;BA)"
    ));
    let t = token(me, &[enabled(Sid::EVERYONE)], &[]);
    for want in [
        0x1, 0x2, 0x20, 0x10000, 0x40, 0x1ff, 0x1F01FF, 0x80000, 0x100000,
    ] {
        let r = access_check(&d, &t, mask(want), &fm).unwrap();
        assert_eq!(
            (r.is_allowed(), r.granted.bits()),
            (true, want),
            "0x{want:x}"
        );
    }
    assert_eq!(
        access_check(&d, &t, mask(0xFFFF_FFFF), &fm)
            .unwrap_err()
            .kind(),
        ErrorKind::GenericNotMapped
    );
}
