//! A Linux file's descriptor against the kernel's permission algorithm, without
//! root: `kernel_permission` transcribes `acl_permission_check` and
//! `generic_permission` (fs/namei.c) and `posix_acl_permission` (fs/posix_acl.c)
//! line by line, and AccessCheck of `descriptor_of` must agree with it for every
//! file, caller and right. (The root-only differential test in the CLI's tests
//! asks the kernel itself.)

use guise::Token;
use guise::security::file::{AclEntry, AclTag, FileStat, PosixAcl, UnixSids, descriptor_of};
use guise::security::{AccessCheckOptions, AccessMask};
use guise::{ImpersonationLevel, TokenType};
use proptest::prelude::*;

const MAY_EXEC: u8 = 1;
const MAY_WRITE: u8 = 2;
const MAY_READ: u8 = 4;

/// A caller as the kernel sees it: fsuid, fsgid, supplementary groups, and
/// whether it has CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
#[derive(Clone, Debug)]
struct Caller {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    dac_override: bool,
    dac_read_search: bool,
}

impl Caller {
    fn in_group_p(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// `posix_acl_permission`: `Err(())` is -EACCES.
fn posix_acl_permission(st: &FileStat, acl: &PosixAcl, c: &Caller, want: u8) -> bool {
    let entries = &acl.entries;
    let mut found = false;
    let mut i = 0;
    let check_mask = |i: usize| -> bool {
        let pa = entries[i];
        for m in &entries[i + 1..] {
            if m.tag == AclTag::Mask {
                return pa.perm & m.perm & want == want;
            }
        }
        pa.perm & want == want
    };
    while i < entries.len() {
        let pa = entries[i];
        match pa.tag {
            AclTag::UserObj => {
                if st.uid == c.uid {
                    return pa.perm & want == want;
                }
            }
            AclTag::User(uid) => {
                if uid == c.uid {
                    return check_mask(i);
                }
            }
            AclTag::GroupObj => {
                if c.in_group_p(st.gid) {
                    found = true;
                    if pa.perm & want == want {
                        return check_mask(i);
                    }
                }
            }
            AclTag::Group(gid) => {
                if c.in_group_p(gid) {
                    found = true;
                    if pa.perm & want == want {
                        return check_mask(i);
                    }
                }
            }
            AclTag::Mask => {}
            AclTag::Other => {
                if found {
                    return false;
                }
                return pa.perm & want == want;
            }
        }
        i += 1;
    }
    false
}

/// `acl_permission_check`.
fn acl_permission_check(st: &FileStat, c: &Caller, want: u8) -> bool {
    let mut mode = st.mode;
    if st.uid == c.uid {
        return u32::from(want) & !(mode >> 6) & 7 == 0;
    }
    if let Some(acl) = &st.access_acl
        && mode & 0o070 != 0
    {
        return posix_acl_permission(st, acl, c, want);
    }
    if u32::from(want) & (mode ^ (mode >> 3)) != 0 && c.in_group_p(st.gid) {
        mode >>= 3;
    }
    u32::from(want) & !mode & 7 == 0
}

/// `generic_permission`, with guise's backup-intent rule on top: SeRestorePrivilege
/// (`CAP_DAC_OVERRIDE`) is raised only for writing (never to read, nor to
/// execute a file), as `guise::fs::open_for_backup` raises it.
fn kernel_permission(st: &FileStat, c: &Caller, want: u8) -> bool {
    if acl_permission_check(st, c, want) {
        return true;
    }
    let override_for_writing = c.dac_override && want & MAY_WRITE != 0 && want & MAY_READ == 0;
    if st.is_dir() {
        if want & MAY_WRITE == 0 && c.dac_read_search {
            return true;
        }
        return override_for_writing;
    }
    if want == MAY_READ && c.dac_read_search {
        return true;
    }
    if want & MAY_EXEC == 0 && override_for_writing {
        return true;
    }
    false
}

/// The token of a caller: its ids' SIDs and, for the capabilities, SeBackup and
/// SeRestore enabled.
fn token_of(c: &Caller) -> Token {
    use guise::privilege::Capabilities;
    let mut caps = Capabilities::empty();
    if c.dac_read_search {
        caps |= Capabilities::DAC_READ_SEARCH;
    }
    if c.dac_override {
        caps |= Capabilities::DAC_OVERRIDE | Capabilities::CHOWN | Capabilities::FOWNER;
    }
    Token::from_ids_with_capabilities(c.uid, c.gid, &c.groups, caps, caps)
        .unwrap()
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap()
}

fn right(want: u8) -> AccessMask {
    match want {
        MAY_READ => AccessMask::FILE_GENERIC_READ,
        MAY_WRITE => AccessMask::FILE_GENERIC_WRITE,
        _ => AccessMask::FILE_GENERIC_EXECUTE,
    }
}

/// Whether AccessCheck of the file's descriptor agrees with the kernel for
/// every right; the first disagreement otherwise.
fn agrees(st: &FileStat, c: &Caller) -> Result<(), String> {
    let fs = descriptor_of(st, &UnixSids).unwrap();
    let token = token_of(c);
    let options = {
        let mut o = AccessCheckOptions::default();
        o.backup_semantics = c.dac_override || c.dac_read_search;
        o
    };
    for want in [MAY_READ, MAY_WRITE, MAY_EXEC] {
        let kernel = kernel_permission(st, c, want);
        let ours = fs
            .access_check(&token, right(want), options)
            .unwrap()
            .is_allowed();
        if kernel != ours {
            return Err(format!(
                "want {want}: kernel {kernel}, AccessCheck {ours}\n{st:?}\n{c:?}\n{:#?}",
                fs.descriptor.dacl
            ));
        }
    }
    if st.is_dir() {
        // may_delete: write and search at once, and on a sticky directory the
        // directory's owner (or CAP_FOWNER, which SeRestorePrivilege brings).
        let sticky = st.mode & 0o1000 != 0;
        let kernel = kernel_permission(st, c, MAY_WRITE | MAY_EXEC)
            && (!sticky || c.uid == st.uid || c.dac_override);
        let ours = fs
            .access_check(&token, AccessMask::FILE_DELETE_CHILD, options)
            .unwrap()
            .is_allowed();
        if kernel != ours {
            return Err(format!(
                "delete a child: kernel {kernel}, AccessCheck {ours}\n{st:?}\n{c:?}\n{:#?}",
                fs.descriptor.dacl
            ));
        }
    }
    Ok(())
}

const UIDS: [u32; 4] = [0, 61001, 61002, 61003];
const GIDS: [u32; 4] = [0, 61101, 61102, 61103];

fn acl_strategy() -> impl Strategy<Value = Option<PosixAcl>> {
    let named = prop::collection::vec(
        (
            prop_oneof![
                prop::sample::select(UIDS.to_vec()).prop_map(AclTag::User),
                prop::sample::select(GIDS.to_vec()).prop_map(AclTag::Group),
            ],
            0u8..8,
        ),
        0..5,
    );
    prop::option::of((0u8..8, 0u8..8, 0u8..8, 0u8..8, named)).prop_map(|acl| {
        acl.map(|(user, group, mask, other, named)| {
            let mut entries = vec![
                AclEntry {
                    tag: AclTag::UserObj,
                    perm: user,
                },
                AclEntry {
                    tag: AclTag::GroupObj,
                    perm: group,
                },
                AclEntry {
                    tag: AclTag::Other,
                    perm: other,
                },
            ];
            let mut seen = Vec::new();
            for (tag, perm) in named {
                if !seen.contains(&tag) {
                    seen.push(tag);
                    entries.push(AclEntry { tag, perm });
                }
            }
            if entries.len() > 3 {
                entries.push(AclEntry {
                    tag: AclTag::Mask,
                    perm: mask,
                });
            }
            entries.sort_by_key(|e| e.tag);
            PosixAcl { entries }
        })
    })
}

/// A file as the kernel keeps it: with an access ACL, the mode's owner bits are
/// `user::`, its group bits the mask (else `group::`), its other bits `other::`.
fn file_strategy() -> impl Strategy<Value = FileStat> {
    (
        prop::sample::select(UIDS.to_vec()),
        prop::sample::select(GIDS.to_vec()),
        0u32..0o10000,
        any::<bool>(),
        acl_strategy(),
    )
        .prop_map(|(uid, gid, mut mode, dir, acl)| {
            if let Some(acl) = &acl {
                let class = acl
                    .perm(AclTag::Mask)
                    .or(acl.perm(AclTag::GroupObj))
                    .unwrap();
                mode = (mode & 0o7000)
                    | (u32::from(acl.perm(AclTag::UserObj).unwrap()) << 6)
                    | (u32::from(class) << 3)
                    | u32::from(acl.perm(AclTag::Other).unwrap());
            }
            FileStat {
                uid,
                gid,
                mode: mode | if dir { 0o040_000 } else { 0o100_000 },
                access_acl: acl,
                default_acl: None,
                flags: Default::default(),
            }
        })
}

fn caller_strategy() -> impl Strategy<Value = Caller> {
    (
        prop::sample::select(UIDS.to_vec()),
        prop::sample::select(GIDS.to_vec()),
        prop::sample::subsequence(GIDS.to_vec(), 0..=4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(uid, gid, groups, dac_override, dac_read_search)| Caller {
            uid,
            gid,
            groups,
            dac_override,
            dac_read_search,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// The descriptor of any file decides as the kernel does, for any caller.
    #[test]
    fn a_files_descriptor_decides_as_the_kernel(st in file_strategy(), c in caller_strategy()) {
        if let Err(e) = agrees(&st, &c) {
            prop_assert!(false, "{}", e);
        }
    }
}

fn acl(entries: &[(AclTag, u8)]) -> PosixAcl {
    PosixAcl {
        entries: entries
            .iter()
            .map(|&(tag, perm)| AclEntry { tag, perm })
            .collect(),
    }
}

fn user(uid: u32, groups: &[u32]) -> Caller {
    Caller {
        uid,
        gid: uid + 100,
        groups: groups.to_vec(),
        dac_override: false,
        dac_read_search: false,
    }
}

/// Where the kernel and the textbook differ, case by case.
#[test]
fn the_kernels_own_answers_where_the_textbook_differs() {
    let file = |mode: u32, acl: Option<PosixAcl>| FileStat {
        uid: 61001,
        gid: 61101,
        mode: 0o100_000 | mode,
        access_acl: acl,
        default_acl: None,
        flags: Default::default(),
    };
    let decide = |st: &FileStat, c: &Caller, want: u8| {
        agrees(st, c).unwrap();
        kernel_permission(st, c, want)
    };
    // A mask of `---`: the ACL is not read at all, so a named user with `rw-`
    // gets "other" (r--), not nothing.
    let masked = file(
        0o604,
        Some(acl(&[
            (AclTag::UserObj, 6),
            (AclTag::User(61002), 6),
            (AclTag::GroupObj, 4),
            (AclTag::Mask, 0),
            (AclTag::Other, 4),
        ])),
    );
    let bob = user(61002, &[]);
    assert!(decide(&masked, &bob, MAY_READ));
    assert!(!decide(&masked, &bob, MAY_WRITE));
    // ...and a member of the owning group gets nothing, not "other".
    let staff = user(61003, &[61101]);
    assert!(!decide(&masked, &staff, MAY_READ));
    // The owner gets the owner bits even when "other" gives more.
    let owner_less = file(0o047, None);
    let owner = user(61001, &[]);
    assert!(!decide(&owner_less, &owner, MAY_READ));
    assert!(decide(&owner_less, &bob, MAY_READ));
    // A group member lacking a right does not fall to "other".
    assert!(!decide(&owner_less, &staff, MAY_EXEC));
    assert!(decide(&owner_less, &bob, MAY_EXEC));
    // With an ACL, one matching group entry with the right suffices.
    let two_groups = file(
        0o670,
        Some(acl(&[
            (AclTag::UserObj, 6),
            (AclTag::GroupObj, 0),
            (AclTag::Group(61102), 4),
            (AclTag::Group(61103), 2),
            (AclTag::Mask, 7),
            (AclTag::Other, 0),
        ])),
    );
    let both = user(61003, &[61101, 61102, 61103]);
    assert!(decide(&two_groups, &both, MAY_READ));
    assert!(decide(&two_groups, &both, MAY_WRITE));
    assert!(!decide(&two_groups, &both, MAY_EXEC));
    // ...but not both at once: rights are decided one at a time.
    assert!(!kernel_permission(&two_groups, &both, MAY_READ | MAY_WRITE));
    // Root's capabilities as privileges with backup semantics: SeBackup reads,
    // SeRestore writes, neither executes a file.
    let root = Caller {
        dac_override: true,
        dac_read_search: true,
        ..user(0, &[])
    };
    let plain = file(0o000, None);
    assert!(decide(&plain, &root, MAY_READ));
    assert!(decide(&plain, &root, MAY_WRITE));
    assert!(!decide(&plain, &root, MAY_EXEC));
    assert!(
        !decide(&file(0o110, None), &root, MAY_EXEC),
        "no privilege executes"
    );
    let restore_only = Caller {
        dac_read_search: false,
        ..root.clone()
    };
    assert!(
        !decide(&plain, &restore_only, MAY_READ),
        "SeRestorePrivilege never reads"
    );
    assert!(decide(&plain, &restore_only, MAY_WRITE));
}

/// A directory's default ACL becomes inheritable ACEs (OI CI IO) for CREATOR
/// OWNER and CREATOR GROUP, after the ACEs of the directory itself, which they
/// do not change.
#[test]
fn a_default_acl_becomes_inheritable_aces() {
    use guise::Sid;
    use guise::security::AceFlags;
    let default = acl(&[
        (AclTag::UserObj, 7),
        (AclTag::User(61002), 6),
        (AclTag::GroupObj, 5),
        (AclTag::Mask, 7),
        (AclTag::Other, 0),
    ]);
    let dir = FileStat {
        uid: 61001,
        gid: 61101,
        mode: 0o040_750,
        access_acl: None,
        default_acl: Some(default),
        flags: Default::default(),
    };
    let fs = descriptor_of(&dir, &UnixSids).unwrap();
    let aces = &fs.descriptor.dacl.as_ref().unwrap().aces;
    let inheritable =
        AceFlags::OBJECT_INHERIT | AceFlags::CONTAINER_INHERIT | AceFlags::INHERIT_ONLY;
    let first = aces.iter().position(|a| a.flags == inheritable).unwrap();
    assert!(aces[..first].iter().all(|a| a.flags.is_empty()));
    assert!(aces[first..].iter().all(|a| a.flags == inheritable));
    let sids: Vec<Sid> = aces[first..].iter().map(|a| a.sid).collect();
    assert!(sids.contains(&Sid::CREATOR_OWNER));
    assert!(sids.contains(&Sid::CREATOR_GROUP));
    assert!(sids.contains(&Sid::unix_user(61002)));
    // The directory's own answers are those of its mode.
    let bob = user(61002, &[]);
    for want in [MAY_READ, MAY_WRITE, MAY_EXEC] {
        assert!(!kernel_permission(&dir, &bob, want));
    }
    agrees(&dir, &bob).unwrap();
    agrees(&dir, &user(61003, &[61101])).unwrap();
}

/// An id known by a directory SID too is named by both, so a directory
/// account's token (its domain SIDs, no `S-1-22` SIDs) matches a file's
/// entries as a local token does: allows and, above all, denies.
#[test]
fn an_id_with_a_directory_sid_is_named_by_both() {
    use guise::security::file::IdSids;
    use guise::token::{Group, GroupAttributes};
    use guise::{Result, Sid};
    struct Both;
    fn domain(rid: u32) -> Sid {
        format!("S-1-5-21-1-2-3-{rid}").parse().unwrap()
    }
    impl IdSids for Both {
        fn user(&self, uid: u32) -> Result<Vec<Sid>> {
            Ok(vec![domain(uid), Sid::unix_user(uid)])
        }
        fn group(&self, gid: u32) -> Result<Vec<Sid>> {
            Ok(vec![domain(gid), Sid::unix_group(gid)])
        }
    }
    // Interns may not read; others may.
    let st = FileStat {
        uid: 61001,
        gid: 61101,
        mode: 0o100_604,
        ..Default::default()
    };
    let fs = descriptor_of(&st, &Both).unwrap();
    assert_eq!(fs.descriptor.owner, Some(domain(61001)));
    let token = |user: Sid, group: Sid| {
        Token::from_sids(
            user,
            [
                Group {
                    sid: Sid::EVERYONE,
                    attributes: GroupAttributes::DEFAULT,
                },
                Group {
                    sid: group,
                    attributes: GroupAttributes::DEFAULT,
                },
            ],
            [],
        )
    };
    let read = AccessMask::FILE_GENERIC_READ;
    let options = AccessCheckOptions::default();
    for (user, intern) in [
        (domain(61002), domain(61101)),
        (Sid::unix_user(61002), Sid::unix_group(61101)),
    ] {
        let t = token(user, intern);
        assert!(
            !fs.access_check(&t, read, options).unwrap().is_allowed(),
            "{intern}"
        );
        let other = token(user, domain(61199));
        assert!(fs.access_check(&other, read, options).unwrap().is_allowed());
    }
    let owner = token(domain(61001), domain(61199));
    assert!(
        fs.access_check(&owner, AccessMask::FILE_GENERIC_WRITE, options)
            .unwrap()
            .is_allowed()
    );
}
