//! Property tests: round trips of SDDL and the binary form, monotonicity of
//! AccessCheck, and the optimised check against the straightforward reference.

use guise::security::{
    AccessCheckOptions, AccessMask, Ace, AceFlags, AceType, Acl, Control, GenericMapping, Guid,
    SecurityDescriptor, access_check_with, reference_access_check, sddl,
};
use guise::token::{Group, GroupAttributes};
use guise::{Privilege, Sid, Token};
use proptest::prelude::*;

/// SIDs for ACEs and tokens. The pool is small, so that ACEs often name the token's
/// user or groups and the checks have something to decide.
fn sid_pool() -> impl Strategy<Value = Sid> {
    prop_oneof![
        2 => Just(Sid::EVERYONE),
        1 => Just(Sid::ADMINISTRATORS),
        1 => Just(Sid::OWNER_RIGHTS),
        2 => (1u32..3).prop_map(|n| Sid::unix_user(61000 + n)),
        2 => (1u32..3).prop_map(|n| Sid::unix_group(61100 + n)),
        1 => Just("S-1-5-21-1-2-3-512".parse().unwrap()),
    ]
}

/// Masks made of the rights that matter to the checks, and sometimes anything.
fn mask_any() -> impl Strategy<Value = AccessMask> {
    prop_oneof![
        4 => (0u32..0x20, 0u32..0x20).prop_map(|(lo, std)| AccessMask::from_raw(lo | (std << 16))),
        1 => any::<u32>().prop_map(AccessMask::from_raw),
        1 => prop::sample::select(vec![0x1000_0000u32, 0x8000_0000, 0x4000_0000, 0x2000_0000, 0x0100_0000])
            .prop_map(AccessMask::from_raw),
    ]
}

fn guid() -> impl Strategy<Value = Guid> {
    any::<[u8; 16]>().prop_map(Guid)
}

const SDDL_FLAGS: u8 = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;

/// ACEs; `binary` allows what only the binary form can hold (the CRITICAL flag,
/// application data).
fn ace(binary: bool) -> impl Strategy<Value = Ace> {
    let types = prop::sample::select(vec![
        AceType::AccessAllowed,
        AceType::AccessDenied,
        AceType::SystemAudit,
        AceType::SystemAlarm,
        AceType::AccessAllowedObject,
        AceType::AccessDeniedObject,
        AceType::SystemAuditObject,
        AceType::AccessAllowedCallback,
        AceType::AccessDeniedCallback,
        AceType::AccessAllowedCallbackObject,
        AceType::SystemMandatoryLabel,
        AceType::SystemScopedPolicyId,
        AceType::SystemAuditCallback,
        AceType::SystemResourceAttribute,
    ]);
    let conditions = prop::sample::select(vec![
        "",
        "(@User.Title == \"PM\")",
        "((Member_of {SID(BA), SID(S-1-22-2-61101)}) || (!(Exists @Device.Managed)))",
        "(@Resource.Level >= -0x10)",
        "(Dept Any_of {\"A\", 017, #0aff})",
    ]);
    let attributes = prop::sample::select(vec![
        "(\"Project\",TS,0x0,\"Windows\",\"SQL\")",
        "(\"Level\",TI,0x2,-5)",
        "(\"Owner\",TD,0x0,SID(BA))",
    ]);
    (
        types,
        any::<u8>(),
        mask_any(),
        sid_pool(),
        prop::option::of(guid()),
        prop::option::of(guid()),
        prop::collection::vec(any::<[u8; 4]>(), 0..3),
        conditions,
        attributes,
    )
        .prop_map(
            move |(t, flags, mask, sid, o, i, data, condition, attribute)| {
                let mut a = Ace::new(
                    t,
                    AceFlags::from_bits_retain(if binary { flags } else { flags & SDDL_FLAGS }),
                    mask,
                    sid,
                );
                if t.is_object() {
                    a.object_type = o;
                    a.inherited_object_type = i;
                }
                if t == AceType::SystemResourceAttribute {
                    a.application_data =
                        guise::security::conditional::parse_resource_attribute(attribute, None)
                            .unwrap();
                } else if binary && t.has_application_data() {
                    a.application_data = data.concat();
                } else if t.is_conditional() && !condition.is_empty() {
                    a.application_data =
                        guise::security::conditional::parse_condition(condition, None).unwrap();
                }
                a
            },
        )
}

fn acl_state(binary: bool) -> impl Strategy<Value = Option<Option<Acl>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(None)),
        4 => prop::collection::vec(ace(binary), 0..6).prop_map(|a| Some(Some(Acl::new(a)))),
    ]
}

fn descriptor(binary: bool) -> impl Strategy<Value = SecurityDescriptor> {
    (
        prop::option::of(sid_pool()),
        prop::option::of(sid_pool()),
        acl_state(binary),
        acl_state(binary),
        any::<u16>(),
        any::<u8>(),
    )
        .prop_map(move |(owner, group, dacl, sacl, bits, rm)| {
            let mut control = if binary {
                Control::from_bits_retain(bits) - Control::SELF_RELATIVE
            } else {
                Control::empty()
            };
            let acl_bits = [
                (Control::DACL_PROTECTED, Control::SACL_PROTECTED),
                (
                    Control::DACL_AUTO_INHERIT_REQ,
                    Control::SACL_AUTO_INHERIT_REQ,
                ),
                (Control::DACL_AUTO_INHERITED, Control::SACL_AUTO_INHERITED),
            ];
            for (i, (d, s)) in acl_bits.into_iter().enumerate() {
                // SDDL carries these flags only on an ACL that is there.
                control.set(d, bits & (1 << i) != 0 && dacl.is_some());
                control.set(s, bits & (1 << (i + 3)) != 0 && sacl.is_some());
            }
            control.set(Control::DACL_PRESENT, dacl.is_some());
            control.set(Control::SACL_PRESENT, sacl.is_some());
            SecurityDescriptor {
                control,
                rm_control: if control.contains(Control::RM_CONTROL_VALID) {
                    rm
                } else {
                    0
                },
                owner,
                group,
                dacl: dacl.flatten(),
                sacl: sacl.flatten(),
            }
        })
}

/// The few SIDs AccessCheck cases are made of, so that ACEs and tokens meet often.
fn check_sid() -> impl Strategy<Value = Sid> {
    prop::sample::select(vec![
        Sid::EVERYONE,
        Sid::OWNER_RIGHTS,
        Sid::unix_user(61001),
        Sid::unix_group(61101),
        Sid::unix_group(61102),
    ])
}

/// DACL entries for AccessCheck cases: mostly allow and deny ACEs, sometimes the
/// kinds the check skips or treats specially.
fn check_ace() -> impl Strategy<Value = Ace> {
    let types = prop_oneof![
        5 => Just(AceType::AccessAllowed),
        4 => Just(AceType::AccessDenied),
        1 => Just(AceType::AccessAllowedCallback),
        1 => Just(AceType::AccessDeniedCallback),
        1 => Just(AceType::AccessAllowedObject),
        1 => Just(AceType::AccessDeniedObject),
        1 => Just(AceType::SystemAudit),
    ];
    let flags = prop_oneof![6 => Just(AceFlags::empty()), 1 => Just(AceFlags::INHERIT_ONLY), 1 => Just(AceFlags::OBJECT_INHERIT)];
    (
        types,
        flags,
        mask_any(),
        check_sid(),
        prop::option::of(guid()),
    )
        .prop_map(|(t, f, m, sid, g)| {
            let mut a = Ace::new(t, f, m, sid);
            if t.is_object() {
                a.object_type = g;
            }
            a
        })
}

fn token() -> impl Strategy<Value = Token> {
    let attrs = prop::sample::select(vec![
        GroupAttributes::DEFAULT,
        GroupAttributes::DEFAULT,
        GroupAttributes::USE_FOR_DENY_ONLY,
        GroupAttributes::empty(),
    ]);
    (
        prop::sample::select(vec![Sid::unix_user(61001), Sid::unix_user(61002)]),
        prop::collection::vec((check_sid(), attrs), 0..5),
        prop::sample::subsequence(
            vec![
                Privilege::Security,
                Privilege::TakeOwnership,
                Privilege::Backup,
                Privilege::Restore,
            ],
            0..3,
        ),
    )
        .prop_map(|(user, groups, privs)| {
            Token::from_sids(
                user,
                groups
                    .into_iter()
                    .map(|(sid, attributes)| Group { sid, attributes }),
                privs,
            )
        })
}

fn desired() -> impl Strategy<Value = AccessMask> {
    (0u32..0x20, 0u32..0x20, any::<bool>(), any::<bool>()).prop_map(|(lo, std, ass, max)| {
        let mut m = AccessMask::from_raw(lo | (std << 16));
        m.set(AccessMask::ACCESS_SYSTEM_SECURITY, ass && lo % 3 == 0);
        m.set(AccessMask::MAXIMUM_ALLOWED, max);
        m
    })
}

fn mapping() -> impl Strategy<Value = GenericMapping> {
    prop::sample::select(vec![
        GenericMapping::FILE,
        GenericMapping::KEY,
        GenericMapping::GENERIC,
    ])
}

/// A descriptor that AccessCheck accepts: an owner, a group, and a DACL that is
/// absent, NULL or made of [`check_ace`] entries.
fn checkable() -> impl Strategy<Value = SecurityDescriptor> {
    let dacl = prop_oneof![
        1 => Just(None),
        1 => Just(Some(None)),
        8 => prop::collection::vec(check_ace(), 0..8).prop_map(|a| Some(Some(Acl::new(a)))),
    ];
    (check_sid(), check_sid(), dacl).prop_map(|(owner, group, dacl)| {
        let mut control = Control::empty();
        control.set(Control::DACL_PRESENT, dacl.is_some());
        SecurityDescriptor {
            control,
            owner: Some(owner),
            group: Some(group),
            dacl: dacl.flatten(),
            ..Default::default()
        }
    })
}

fn options() -> impl Strategy<Value = AccessCheckOptions> {
    any::<bool>().prop_map(|backup_semantics| {
        let mut o = AccessCheckOptions::default();
        o.backup_semantics = backup_semantics;
        o
    })
}

/// Whether `after` grants nothing that `before` did not.
fn no_more(before: &guise::security::AccessCheck, after: &guise::security::AccessCheck) -> bool {
    (after.granted - before.granted).is_empty() && (!after.is_allowed() || before.is_allowed())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn sddl_round_trip(d in descriptor(false)) {
        let text = sddl::to_string(&d, None).unwrap();
        let back = sddl::parse(&text, None).unwrap();
        prop_assert_eq!(&back, &d, "{}", text);
        prop_assert_eq!(sddl::to_string(&back, None).unwrap(), text);
    }

    #[test]
    fn binary_round_trip(d in descriptor(true)) {
        let bin = d.to_self_relative().unwrap();
        prop_assert_eq!(SecurityDescriptor::from_self_relative(&bin).unwrap(), d);
    }

    #[test]
    fn parsers_never_panic(text in "[OGDS:()AIPR;0-9A-Fa-fx WDBUSY-]{0,60}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = sddl::parse(&text, None);
        let _ = SecurityDescriptor::from_self_relative(&bytes);
    }

    #[test]
    fn optimised_check_equals_reference(
        d in checkable(), t in token(), want in desired(), m in mapping(), o in options()
    ) {
        prop_assert_eq!(
            access_check_with(&d, &t, want, &m, o).unwrap(),
            reference_access_check(&d, &t, want, &m, o).unwrap()
        );
    }

    #[test]
    fn a_deny_ace_never_grants_more(
        d in checkable(), t in token(), want in desired(), m in mapping(),
        deny_sid in check_sid(), deny_mask in mask_any(), at in any::<prop::sample::Index>(),
    ) {
        let before = access_check_with(&d, &t, want, &m, Default::default()).unwrap();
        let mut more = d.clone();
        let acl = more.dacl.get_or_insert_with(Acl::empty);
        let i = at.index(acl.aces.len() + 1);
        acl.aces.insert(i, Ace::deny(deny_sid, deny_mask));
        if d.dacl.is_none() {
            // A NULL DACL grants everything; any real DACL grants no more.
        }
        let after = access_check_with(&more, &t, want, &m, Default::default()).unwrap();
        prop_assert!(no_more(&before, &after), "{:?} -> {:?}", before, after);
    }

    #[test]
    fn a_deny_only_group_never_grants_more(
        d in checkable(), t in token(), want in desired(), m in mapping(), pick in any::<prop::sample::Index>(),
    ) {
        let groups = t.groups().to_vec();
        prop_assume!(!groups.is_empty());
        let i = pick.index(groups.len());
        let mut restricted = groups.clone();
        restricted[i].attributes = GroupAttributes::USE_FOR_DENY_ONLY;
        let privs: Vec<Privilege> = t.privileges().iter().map(|p| p.privilege).collect();
        let t2 = Token::from_sids(t.user(), restricted, privs);
        let before = access_check_with(&d, &t, want, &m, Default::default()).unwrap();
        let after = access_check_with(&d, &t2, want, &m, Default::default()).unwrap();
        prop_assert!(no_more(&before, &after), "{:?} -> {:?}", before, after);
    }

    #[test]
    fn removing_a_group_never_grants_more_without_deny_aces(
        d in checkable(), t in token(), want in desired(), m in mapping(), pick in any::<prop::sample::Index>(),
    ) {
        let mut d = d;
        if let Some(acl) = &mut d.dacl {
            acl.aces.retain(|a| !a.ace_type.is_deny());
        }
        let mut groups = t.groups().to_vec();
        prop_assume!(!groups.is_empty());
        groups.remove(pick.index(groups.len()));
        let privs: Vec<Privilege> = t.privileges().iter().map(|p| p.privilege).collect();
        let t2 = Token::from_sids(t.user(), groups, privs);
        let before = access_check_with(&d, &t, want, &m, Default::default()).unwrap();
        let after = access_check_with(&d, &t2, want, &m, Default::default()).unwrap();
        prop_assert!(no_more(&before, &after), "{:?} -> {:?}", before, after);
    }
}

/// SIDs whose cheap keys collide (same authority, count and last sub-authority)
/// and SIDs that differ only there, to try the token's membership index.
fn colliding_sid() -> impl Strategy<Value = Sid> {
    prop_oneof![
        (1u32..4, 0u32..3).prop_map(|(d, r)| Sid::new(5, &[21, d, 7, 500 + r]).unwrap()),
        (0u32..3).prop_map(|r| Sid::new(5, &[21, 9, 500 + r]).unwrap()),
        (0u32..3).prop_map(|r| Sid::unix_user(500 + r)),
        (0u32..3).prop_map(|r| Sid::unix_group(500 + r)),
        (0u32..3).prop_map(|r| Sid::new(22, &[2, 500 + r]).unwrap()),
        Just(Sid::EVERYONE),
    ]
}

fn group_attributes() -> impl Strategy<Value = GroupAttributes> {
    prop::sample::select(vec![
        GroupAttributes::DEFAULT,
        GroupAttributes::empty(),
        GroupAttributes::USE_FOR_DENY_ONLY,
        GroupAttributes::USE_FOR_DENY_ONLY | GroupAttributes::ENABLED,
        GroupAttributes::ENABLED,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The token's membership index answers as a scan of its user and groups does,
    /// with many groups and SIDs whose keys collide: CheckTokenMembership (user or
    /// enabled, not deny-only), and AccessCheck's allow and deny ACEs (deny ACEs
    /// also reach deny-only groups).
    #[test]
    fn membership_index_agrees_with_a_scan(
        user in colliding_sid(),
        groups in prop::collection::vec((colliding_sid(), group_attributes()), 0..80),
        probe in colliding_sid(),
    ) {
        let token = Token::from_sids(
            user,
            groups.iter().map(|&(sid, attributes)| Group { sid, attributes }),
            [],
        );
        let enabled = |a: GroupAttributes| {
            a.contains(GroupAttributes::ENABLED) && !a.contains(GroupAttributes::USE_FOR_DENY_ONLY)
        };
        let member = user == probe || groups.iter().any(|&(s, a)| s == probe && enabled(a));
        let deny_member = member
            || groups
                .iter()
                .any(|&(s, a)| s == probe && a.contains(GroupAttributes::USE_FOR_DENY_ONLY));
        prop_assert_eq!(token.check_membership(&probe).unwrap(), member);

        let check = |ace_type| {
            let sd = SecurityDescriptor {
                owner: Some(Sid::ADMINISTRATORS),
                group: Some(Sid::ADMINISTRATORS),
                dacl: Some(Acl::new(vec![
                    Ace::new(ace_type, AceFlags::empty(), AccessMask::from_raw(1), probe),
                    Ace::new(AceType::AccessAllowed, AceFlags::empty(), AccessMask::from_raw(1), Sid::EVERYONE),
                ])),
                ..SecurityDescriptor::default()
            }
            .normalized();
            access_check_with(
                &sd,
                &token,
                AccessMask::from_raw(1),
                &GenericMapping::FILE,
                AccessCheckOptions::default(),
            )
            .unwrap()
            .is_allowed()
        };
        let everyone = user == Sid::EVERYONE
            || groups.iter().any(|&(s, a)| s == Sid::EVERYONE && enabled(a));
        prop_assert_eq!(check(AceType::AccessAllowed), member || everyone);
        prop_assert_eq!(check(AceType::AccessDenied), !deny_member && everyone);
    }
}
