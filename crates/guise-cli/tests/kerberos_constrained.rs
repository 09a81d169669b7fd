//! Constrained delegation (S4U2Proxy) through the library, in a realm whose KDC
//! keeps its database in LDAP and lets service A delegate to service B only. A
//! client that allows Delegation but forwards nothing: A's thread that
//! impersonates it reaches B as the client, and nothing else; and the client never
//! gets A's own ticket-granting ticket, which S4U2Proxy credentials hold. A test
//! binary of its own: it sets the process's `KRB5CCNAME` and `KRB5_CONFIG`.

#[path = "../../guise/tests/common/accounts.rs"]
#[allow(dead_code)]
mod accounts;
mod common;

use common::kdc::{self, Realm};
use guise::kerberos::{Acceptor, Initiator, KerberosOptions};
use guise::{ErrorKind, ImpersonationLevel};

const A: &str = "guise/localhost@GUISE.TEST";
const B: &str = "guise/127.0.0.1@GUISE.TEST";
/// A service in the realm that A may not delegate to.
const C: &str = "guise/127.0.0.2@GUISE.TEST";

/// Attack: constrained delegation credentials hold the service's own
/// ticket-granting ticket. Stored where the client's processes (or the client)
/// could read them, the client would become the service. They stay in the
/// server's memory.
#[test]
fn attack_constrained_delegation_never_gives_the_client_the_services_ticket() {
    need_root!();
    if common::skip::skip_unless(
        kdc::ldap_available(),
        "MIT Kerberos with its LDAP module and OpenLDAP (krb5-kdc-ldap, slapd, ldap-utils)",
    ) {
        return;
    }
    let _accounts = accounts::accounts();
    let realm = Realm::start_ldap();
    realm.add_user("alice", accounts::PASSWORD);
    let keytab = realm.add_service(A);
    realm.add_service(B);
    realm.add_service(C);
    realm.allow_delegation(A, B);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("alice.cc");
    realm.kinit("alice", accounts::PASSWORD, &cache, 0);
    // SAFETY: set before any other thread of this test binary (it has one test)
    // reads the environment.
    unsafe {
        std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
        std::env::set_var("KRB5CCNAME", format!("FILE:{}", cache.display()));
    }
    let rt = common::runtime();
    let caches = tempfile::tempdir().unwrap();
    let mut options = KerberosOptions::default();
    options.cache_dir = caches.path().to_owned();
    let acceptor = Acceptor::from_keytab(&keytab, Some(A), options).unwrap();

    // Alice forwards nothing.
    let peer = kdc::network_client(&rt, &acceptor, || {
        Initiator::start("guise@localhost", false)
    });
    let cache = peer.network().unwrap().delegated.clone();
    let cache = cache.expect("S4U2Proxy credentials for a forwardable ticket");
    assert!(cache.name().starts_with("MEMORY:"), "{cache:?}");
    assert!(!cache.reaches_processes());
    assert_eq!(
        std::fs::read_dir(caches.path()).unwrap().count(),
        0,
        "nothing of them on disk"
    );
    let token = kdc::token_at(peer, ImpersonationLevel::Delegation);
    assert!(token.has_network_credentials());

    // A process of alice's gets nothing: not A's ticket, not hers.
    let (code, out) = kdc::klist_from(&token);
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("guise/") && !out.contains("krbtgt"), "{out}");
    assert!(out.contains("guise-no-delegated-credentials"), "{out}");

    // A thread that impersonates her reaches B, which the KDC allows, as her.
    let to_b = token
        .run_as(|| Initiator::start("guise@127.0.0.1", false).map(|_| ()))
        .unwrap();
    assert_eq!(to_b, Ok(()));
    // Not another service of the realm, which the KDC does not allow.
    let to_other = token
        .run_as(|| Initiator::start("guise@127.0.0.2", false).map(|_| ()))
        .unwrap()
        .unwrap_err();
    assert_eq!(to_other.kind(), ErrorKind::LogonFailure, "{to_other}");
    // Below Delegation level, nothing.
    let lowered = token
        .duplicate(
            ImpersonationLevel::Impersonation,
            guise::TokenType::Impersonation,
        )
        .unwrap();
    let e = lowered
        .run_as(|| Initiator::start("guise@127.0.0.1", false).map(|_| ()))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSuchLogonSession, "{e}");
}
