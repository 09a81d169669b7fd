//! The rest of the token API a porter reaches for (issue 24): membership of the
//! caller, token information classes and their setters, AdjustTokenGroups,
//! AccessCheck's privilege set, AccessCheckByType and its result list.

use guise::security::{
    AccessCheckOptions, AccessMask, GenericMapping, Guid, ObjectType, access_check,
    access_check_by_type, access_check_by_type_result_list, access_check_with,
    check_token_membership, is_user_an_admin,
};
use guise::token::{Group, GroupAttributes};
use guise::{ErrorKind, Privilege, Sid, Token};

use super::{enabled, sd, sid, token};

const ALICE: &str = "S-1-22-1-61001";
const STAFF: &str = "S-1-22-2-61101";

#[test]
fn check_token_membership_of_the_caller_uses_the_process_token_when_not_impersonating() {
    let process = Token::open_process().unwrap();
    let me = process.user();
    assert!(check_token_membership(None, &me).unwrap());
    assert!(check_token_membership(None, &Sid::EVERYONE).unwrap());
    assert!(!check_token_membership(None, &sid("S-1-5-21-1-2-3-4")).unwrap());
    let root = rustix::process::geteuid().is_root();
    assert_eq!(is_user_an_admin().unwrap(), root);
    // With a token: the token's, which must be an impersonation token.
    let alice = token(ALICE, &[enabled(sid(STAFF))], &[]);
    assert!(check_token_membership(Some(&alice), &sid(STAFF)).unwrap());
    let e = check_token_membership(Some(&process), &me).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoImpersonationToken);
}

#[test]
fn owner_primary_group_and_default_dacl_are_set_as_windows_allows() {
    let owner_group = Group {
        sid: sid(STAFF),
        attributes: GroupAttributes::DEFAULT | GroupAttributes::OWNER,
    };
    let mut t = Token::from_sids(sid(ALICE), [owner_group, enabled(Sid::EVERYONE)], []);
    t.set_owner(sid(STAFF)).unwrap();
    assert_eq!(t.owner(), sid(STAFF));
    let e = t.set_owner(Sid::EVERYONE).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidParameter,
        "Everyone has no SE_GROUP_OWNER"
    );
    t.set_owner(sid(ALICE)).unwrap();
    t.set_primary_group(Sid::EVERYONE).unwrap();
    assert_eq!(t.primary_group(), Sid::EVERYONE);
    assert!(t.set_primary_group(sid("S-1-5-32-544")).is_err());
    // The default DACL: GENERIC_ALL for the owner and Local System.
    let d = t.default_dacl();
    assert_eq!(d.aces.len(), 2);
    assert_eq!(d.aces[0].sid, sid(ALICE));
    assert_eq!(d.aces[0].mask, AccessMask::GENERIC_ALL);
    assert_eq!(d.aces[1].sid, Sid::LOCAL_SYSTEM);
    let mine = sd("D:(A;;FR;;;WD)").dacl.unwrap();
    let before = t.statistics().modified_id;
    t.set_default_dacl(&mine).unwrap();
    assert_eq!(t.default_dacl(), mine);
    assert_ne!(t.statistics().modified_id, before);
    assert_eq!(t.origin_logon_id(), t.statistics().authentication_id);
}

#[test]
fn adjust_token_groups_follows_windows_rules() {
    let optional = Group {
        sid: sid(STAFF),
        attributes: GroupAttributes::ENABLED,
    };
    let deny_only = Group {
        sid: sid("S-1-22-2-61102"),
        attributes: GroupAttributes::USE_FOR_DENY_ONLY,
    };
    let mut t = Token::from_sids(
        sid(ALICE),
        [optional, deny_only, enabled(Sid::EVERYONE)],
        [],
    );
    let dacl = format!("O:BAG:BAD:(A;;FA;;;{STAFF})");
    let write = GenericMapping::FILE.map(AccessMask::GENERIC_WRITE);
    assert!(
        access_check(&sd(&dacl), &t, write, &GenericMapping::FILE)
            .unwrap()
            .is_allowed()
    );
    assert_eq!(
        t.adjust_groups(&[(sid(STAFF), false)]).unwrap(),
        [(sid(STAFF), true)]
    );
    assert!(
        !access_check(&sd(&dacl), &t, write, &GenericMapping::FILE)
            .unwrap()
            .is_allowed()
    );
    assert!(!t.check_membership(&sid(STAFF)).unwrap());
    t.adjust_groups(&[(sid(STAFF), true)]).unwrap();
    assert!(t.check_membership(&sid(STAFF)).unwrap());
    // Mandatory groups cannot be disabled, deny-only groups not enabled.
    let e = t.adjust_groups(&[(Sid::EVERYONE, false)]).unwrap_err();
    assert!(
        e.to_string().contains("ERROR_CANT_DISABLE_MANDATORY"),
        "{e}"
    );
    assert!(t.adjust_groups(&[(sid("S-1-22-2-61102"), true)]).is_err());
    assert!(t.adjust_groups(&[(sid("S-1-5-32-544"), true)]).is_err());
    assert!(
        t.check_membership(&Sid::EVERYONE).unwrap(),
        "all or nothing"
    );
}

#[test]
fn access_check_reports_the_privileges_it_used() {
    let t = token(
        ALICE,
        &[],
        &[
            Privilege::TakeOwnership,
            Privilege::Backup,
            Privilege::Security,
        ],
    );
    let empty = sd("O:BAG:BAD:");
    let r = access_check(&empty, &t, AccessMask::WRITE_OWNER, &GenericMapping::FILE).unwrap();
    assert!(r.is_allowed());
    assert_eq!(
        r.privileges_used.iter().collect::<Vec<_>>(),
        [Privilege::TakeOwnership]
    );
    let r = access_check(
        &empty,
        &t,
        AccessMask::ACCESS_SYSTEM_SECURITY,
        &GenericMapping::FILE,
    )
    .unwrap();
    assert_eq!(
        r.privileges_used.iter().collect::<Vec<_>>(),
        [Privilege::Security]
    );
    let read = GenericMapping::FILE.map(AccessMask::GENERIC_READ);
    let mut backup = AccessCheckOptions::default();
    backup.backup_semantics = true;
    let r = access_check_with(&empty, &t, read, &GenericMapping::FILE, backup).unwrap();
    assert!(r.is_allowed());
    assert!(r.privileges_used.contains(Privilege::Backup));
    let r = access_check(
        &sd("O:BAG:BAD:(A;;FA;;;WD)"),
        &token(ALICE, &[enabled(Sid::EVERYONE)], &[]),
        read,
        &GenericMapping::FILE,
    )
    .unwrap();
    assert!(r.is_allowed() && r.privileges_used.is_empty());
    let denied = access_check(&empty, &t, AccessMask::WRITE_DAC, &GenericMapping::FILE).unwrap();
    assert!(!denied.is_allowed() && denied.privileges_used.is_empty());
}

fn guid(n: u8) -> Guid {
    Guid([n; 16])
}

/// An object (level 0) with two property sets (1), the first with two
/// properties (2).
fn tree() -> Vec<ObjectType> {
    [(0, 1), (1, 2), (2, 3), (2, 4), (1, 5)]
        .into_iter()
        .map(|(level, g)| ObjectType {
            level,
            guid: guid(g),
        })
        .collect()
}

/// The text of `guid(n)`.
fn guid_text(n: u8) -> String {
    let h = format!("{n:02x}");
    format!(
        "{a}-{b}-{b}-{b}-{c}",
        a = h.repeat(4),
        b = h.repeat(2),
        c = h.repeat(6)
    )
}

#[test]
fn access_check_by_type_grants_object_aces_down_the_tree_and_denies_up() {
    let alice = token(ALICE, &[enabled(Sid::EVERYONE)], &[]);
    let rp = AccessMask::from_raw(0x10); // ADS_RIGHT_DS_READ_PROP
    // Read the first property set: its properties too; the object only when
    // all its property sets are granted.
    let dacl = format!("O:BAG:BAD:(OA;;RP;{};;WD)", guid_text(2));
    let d = sd(&dacl);
    let results =
        access_check_by_type_result_list(&d, &alice, rp, &GenericMapping::GENERIC, &tree())
            .unwrap();
    let allowed: Vec<bool> = results.iter().map(|r| r.is_allowed()).collect();
    assert_eq!(allowed, [false, true, true, true, false]);
    assert!(
        !access_check_by_type(&d, &alice, rp, &GenericMapping::GENERIC, &tree())
            .unwrap()
            .is_allowed()
    );
    // Both property sets granted: the object is granted too.
    let both = format!(
        "O:BAG:BAD:(OA;;RP;{};;WD)(OA;;RP;{};;WD)",
        guid_text(2),
        guid_text(5)
    );
    assert!(
        access_check_by_type(&sd(&both), &alice, rp, &GenericMapping::GENERIC, &tree())
            .unwrap()
            .is_allowed()
    );
    // A deny of one property denies it, and its parents, not its siblings.
    let deny = format!("O:BAG:BAD:(OD;;RP;{};;WD)(A;;RP;;;WD)", guid_text(3));
    let results =
        access_check_by_type_result_list(&sd(&deny), &alice, rp, &GenericMapping::GENERIC, &tree())
            .unwrap();
    let allowed: Vec<bool> = results.iter().map(|r| r.is_allowed()).collect();
    assert_eq!(allowed, [false, false, false, true, true]);
    // A type not in the list: the object ACE does not take part.
    let other = format!("O:BAG:BAD:(OD;;RP;{};;WD)(A;;RP;;;WD)", guid_text(9));
    assert!(
        access_check_by_type(&sd(&other), &alice, rp, &GenericMapping::GENERIC, &tree())
            .unwrap()
            .is_allowed()
    );
    // Without a list (plain AccessCheck) object ACEs with a type are skipped.
    assert!(
        !access_check(&d, &alice, rp, &GenericMapping::GENERIC)
            .unwrap()
            .is_allowed()
    );
    // A list that is no tree is refused.
    let bad = [ObjectType {
        level: 1,
        guid: guid(1),
    }];
    let e = access_check_by_type(&d, &alice, rp, &GenericMapping::GENERIC, &bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    let skip = [
        ObjectType {
            level: 0,
            guid: guid(1),
        },
        ObjectType {
            level: 2,
            guid: guid(2),
        },
    ];
    assert!(access_check_by_type(&d, &alice, rp, &GenericMapping::GENERIC, &skip).is_err());
}
