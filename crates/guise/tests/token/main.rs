//! Token rules that need no privilege: DuplicateTokenEx, AdjustTokenPrivileges,
//! OpenThreadToken and SetThreadToken errors.

use guise::privilege::Capabilities;
use guise::token::PrivilegeChange;
use guise::{ErrorKind, ImpersonationLevel, Privilege, Sid, Token, TokenType};

const LEVELS: [ImpersonationLevel; 4] = [
    ImpersonationLevel::Anonymous,
    ImpersonationLevel::Identification,
    ImpersonationLevel::Impersonation,
    ImpersonationLevel::Delegation,
];

fn primary() -> Token {
    Token::from_ids(61001, 61001, &[61001, 61003]).unwrap()
}

#[test]
fn a_primary_token_duplicates_to_any_level() {
    let p = primary();
    assert_eq!(p.token_type(), TokenType::Primary);
    assert_eq!(p.impersonation_level(), None);
    for level in LEVELS {
        let d = p.duplicate(level, TokenType::Impersonation).unwrap();
        assert_eq!(d.impersonation_level(), Some(level));
        assert_ne!(d.statistics().token_id, p.statistics().token_id);
        assert_eq!(
            d.statistics().authentication_id,
            p.statistics().authentication_id
        );
        // The level is ignored for a primary target.
        let dp = p.duplicate(level, TokenType::Primary).unwrap();
        assert_eq!(dp.token_type(), TokenType::Primary);
        assert_eq!(dp.impersonation_level(), None);
    }
}

#[test]
fn an_impersonation_token_never_rises() {
    for from in LEVELS {
        let src = primary().duplicate(from, TokenType::Impersonation).unwrap();
        for to in LEVELS {
            let r = src.duplicate(to, TokenType::Impersonation);
            if to > from {
                let e = r.unwrap_err();
                assert_eq!(
                    e.kind(),
                    ErrorKind::BadImpersonationLevel,
                    "{from:?}->{to:?}"
                );
                assert_eq!(e.win32_code(), 1346);
            } else {
                assert_eq!(r.unwrap().impersonation_level(), Some(to));
            }
        }
    }
}

#[test]
fn only_impersonation_level_or_above_becomes_primary() {
    for from in LEVELS {
        let src = primary().duplicate(from, TokenType::Impersonation).unwrap();
        let r = src.duplicate(ImpersonationLevel::Anonymous, TokenType::Primary);
        if from < ImpersonationLevel::Impersonation {
            assert_eq!(
                r.unwrap_err().kind(),
                ErrorKind::BadImpersonationLevel,
                "{from:?}"
            );
        } else {
            let p = r.unwrap();
            assert_eq!(p.token_type(), TokenType::Primary);
            assert_eq!(p.user(), src.user());
        }
    }
}

#[test]
fn privileges_adjust_only_what_is_held_and_duplicates_copy_state() {
    // A client of uid 0 whose process holds every capability, with only CAP_SETUID
    // and CAP_SETGID effective.
    let mut system = Token::from_ids_with_capabilities(
        0,
        0,
        &[],
        Capabilities::all(),
        Capabilities::SETUID | Capabilities::SETGID,
    )
    .unwrap();
    assert!(system.has_privilege(Privilege::Backup));
    assert!(
        !system.is_privilege_enabled(Privilege::Backup),
        "disabled by default"
    );
    let modified = system.statistics().modified_id;
    let prev = system
        .adjust_privileges(&[(Privilege::Backup, PrivilegeChange::Enable)])
        .unwrap();
    assert_eq!(prev, vec![(Privilege::Backup, Some(false))]);
    assert!(system.is_privilege_enabled(Privilege::Backup));
    assert_ne!(system.statistics().modified_id, modified);
    let dup = system
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap();
    assert!(dup.is_privilege_enabled(Privilege::Backup), "state copied");

    let mut user = primary();
    let held = user.privileges().to_vec();
    let e = user
        .adjust_privileges(&[
            (Privilege::ChangeNotify, PrivilegeChange::Disable),
            (Privilege::Tcb, PrivilegeChange::Enable),
        ])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotAllAssigned);
    assert!(e.to_string().contains("SeTcbPrivilege"));
    assert_eq!(
        user.privileges(),
        &held[..],
        "nothing changed, nothing granted"
    );
    assert!(!user.has_privilege(Privilege::Tcb));

    user.adjust_privileges(&[(Privilege::ChangeNotify, PrivilegeChange::Remove)])
        .unwrap();
    assert!(!user.has_privilege(Privilege::ChangeNotify));
    assert_eq!(
        user.adjust_privileges(&[(Privilege::ChangeNotify, PrivilegeChange::Enable)])
            .unwrap_err()
            .kind(),
        ErrorKind::NotAllAssigned,
        "a removed privilege cannot come back"
    );
}

#[test]
fn unix_ids_map_to_sids() {
    let t = primary();
    assert_eq!(t.user(), Sid::unix_user(61001));
    assert_eq!(t.user().to_string(), "S-1-22-1-61001");
    assert_eq!(t.primary_group(), Sid::unix_group(61001));
    let sids: Vec<String> = t.groups().iter().map(|g| g.sid.to_string()).collect();
    assert!(sids.contains(&"S-1-22-2-61003".to_string()));
    assert!(sids.contains(&"S-1-1-0".to_string()));
    assert!(!sids.contains(&"S-1-5-32-544".to_string()));
    let root = Token::from_ids(0, 0, &[]).unwrap();
    assert_eq!(root.user(), Sid::LOCAL_SYSTEM);
    assert!(root.groups().iter().any(|g| g.sid == Sid::ADMINISTRATORS));
    assert!(!t.has_network_credentials());
}

#[test]
fn thread_token_errors() {
    assert_eq!(
        guise::open_thread_token(true).unwrap_err().kind(),
        ErrorKind::NoToken
    );
    assert_eq!(
        guise::set_thread_token(Some(&primary()))
            .unwrap_err()
            .kind(),
        ErrorKind::BadTokenType
    );
    guise::revert_to_self().unwrap();
    assert!(!guise::thread::is_impersonating());
}

#[test]
fn membership_checks_need_an_impersonation_token_at_identification() {
    let p = primary();
    assert_eq!(
        p.check_membership(&Sid::EVERYONE).unwrap_err().kind(),
        ErrorKind::NoImpersonationToken
    );
    let anon = p
        .duplicate(ImpersonationLevel::Anonymous, TokenType::Impersonation)
        .unwrap();
    assert_eq!(
        anon.check_membership(&Sid::EVERYONE).unwrap_err().kind(),
        ErrorKind::BadImpersonationLevel
    );
    let ident = p
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    assert!(ident.check_membership(&Sid::unix_group(61003)).unwrap());
    assert!(!ident.check_membership(&Sid::ADMINISTRATORS).unwrap());
}

/// Attack: a logon's PAM environment (which `pam_env` with `user_readenv` lets a
/// user write) names `KRB5CCNAME=MEMORY:guise-s4u-…`, the server's memory cache of
/// another client's delegated credentials, or of its own ticket; a thread that
/// impersonates the logon would use it. Only file, directory, keyring and KCM
/// caches can belong to a token by name.
#[cfg(feature = "kerberos")]
#[test]
fn attack_a_memory_cache_named_from_outside_never_belongs_to_a_token() {
    use guise::token::CredentialCache;
    for name in [
        "MEMORY:guise-service-1-0",
        "MEMORY:guise-s4u-3-00ff",
        "MSLSA:",
        "API:x",
    ] {
        assert_eq!(
            CredentialCache::named(name).unwrap_err().kind(),
            ErrorKind::InvalidParameter,
            "{name}"
        );
    }
    for name in [
        "FILE:/tmp/krb5cc_1000_Ab12",
        "/tmp/krb5cc_1000",
        "DIR::/run/user/1000/krb5cc/tkt",
        "KEYRING:persistent:1000",
        "KCM:1000",
    ] {
        assert_eq!(CredentialCache::named(name).unwrap().name(), name);
    }
}
