//! The network credentials of tokens, through the library on a real realm. A
//! thread that impersonates alice's LogonUser token (pam_krb5) authenticates with
//! the ticket PAM got for her, though the process has none. A remote client that
//! delegated gives a token whose processes and impersonating threads reach the
//! network as the client; one that did not gives a token with no credentials at
//! all, and guise says so. A test binary of its own: it sets the process's
//! `KRB5_CONFIG` and `KRB5CCNAME`.

#[path = "../../guise/tests/common/accounts.rs"]
#[allow(dead_code)]
mod accounts;
mod common;

use common::kdc::{self, Realm};
use guise::kerberos::{Acceptor, Initiator, KerberosOptions};
use guise::logon::LogonOptions;
use guise::{ErrorKind, ImpersonationLevel, LogonType, Password, Sid, Token, TokenType};

const SERVICE: &str = "guise/localhost@GUISE.TEST";

/// Authenticates once as the user of `logon` (a thread that impersonates it
/// starts the context), with or without delegation; returns the client's token at
/// Delegation level (what the client allowed).
fn client_token(
    rt: &tokio::runtime::Runtime,
    acceptor: &Acceptor,
    logon: &Token,
    delegate: bool,
) -> Token {
    let logon = logon.clone();
    let peer = kdc::network_client(rt, acceptor, move || {
        logon.run_as(|| Initiator::start("guise@localhost", delegate))?
    });
    let net = peer.network().cloned().expect("a network client");
    assert_eq!(net.principal, format!("alice@{}", kdc::REALM));
    assert_eq!(net.account, "alice");
    assert_eq!(net.delegated.is_some(), delegate, "{net:?}");
    assert_eq!(peer.uid(), 61201);
    kdc::token_at(peer, ImpersonationLevel::Delegation)
}

#[test]
fn a_remote_clients_token_carries_its_delegated_ticket_and_nothing_without() {
    need_root!();
    if common::skip::skip_unless(
        kdc::available()
            && std::path::Path::new("/lib/x86_64-linux-gnu/security/pam_krb5.so").exists(),
        "MIT Kerberos (krb5-kdc, krb5-admin-server, krb5-user) and libpam-krb5",
    ) {
        return;
    }
    let _accounts = accounts::accounts();
    let realm = Realm::start();
    realm.add_user("alice", accounts::PASSWORD);
    let keytab = realm.add_service(SERVICE);
    // SAFETY: set before any other thread of this test binary (it has one test)
    // reads the environment. The process has no Kerberos credentials of its own.
    unsafe {
        std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
        std::env::set_var("KRB5CCNAME", "FILE:/nonexistent/the-servers-own-cache");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (pam, _) = common::pam_dir(
        "krb5",
        "auth required pam_krb5.so minimum_uid=1000\naccount required pam_unix.so\n\
         session required pam_unix.so\n",
    );
    let logon = guise::logon::logon_user_with(
        "alice",
        Password::from_bytes(accounts::PASSWORD.as_bytes().to_vec()),
        LogonType::Interactive,
        &LogonOptions::new("krb5").with_config_dir(pam.path()),
    )
    .unwrap();
    assert!(logon.has_network_credentials());
    assert!(logon.credential_cache().is_some(), "{logon:?}");
    // As the process, no ticket: a clear error.
    let e = Initiator::start("guise@localhost", false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSuchLogonSession, "{e}");
    assert!(e.to_string().contains("kinit"), "{e}");
    let rt = common::runtime();
    let acceptor =
        Acceptor::from_keytab(&keytab, Some(SERVICE), KerberosOptions::default()).unwrap();

    // Delegated: the token is at Delegation level with a cache of alice's own.
    let token = client_token(&rt, &acceptor, &logon, true);
    assert!(
        token.groups().iter().any(|g| g.sid == Sid::NETWORK),
        "a network logon: {token:?}"
    );
    assert_eq!(
        token.impersonation_level(),
        Some(ImpersonationLevel::Delegation)
    );
    assert!(token.has_network_credentials());
    let name = token.credential_cache().unwrap().name().to_owned();
    let file = std::path::PathBuf::from(name.strip_prefix("FILE:").unwrap());
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&file).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (61201, 0o600), "{file:?}");
        let d = std::fs::metadata(file.parent().unwrap()).unwrap();
        assert_eq!((d.uid(), d.mode() & 0o777), (61201, 0o700));
    }
    let (code, out) = kdc::klist_from(&token);
    assert_eq!(code, 0, "{out}");
    kdc::assert_tgt_of(&out, "alice");
    let whoami = kdc::whoami_from(&token);
    assert_eq!(whoami["network_credentials"], true, "{whoami}");
    // A thread that impersonates it authenticates as alice, with her ticket.
    let started = token
        .run_as(|| Initiator::start("guise@localhost", false).map(|_| ()))
        .unwrap();
    assert_eq!(started, Ok(()));
    // Lowered to Impersonation level, the token no longer carries the ticket.
    let lowered = token
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap();
    assert!(!lowered.has_network_credentials());
    let e = lowered
        .run_as(|| Initiator::start("guise@localhost", false).map(|_| ()))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSuchLogonSession, "{e}");
    // Back as the process, the thread has the process's own (none) again.
    let e = Initiator::start("guise@localhost", false).unwrap_err();
    assert!(e.to_string().contains("kinit"), "{e}");
    drop((token, lowered));
    assert!(
        kdc::gone(file.parent().unwrap()),
        "the delegated cache outlived its tokens"
    );

    // Not delegated, to a service that cannot initiate (no constrained
    // delegation: it was given no principal): no credentials at all, and guise
    // says so.
    let acceptor = Acceptor::from_keytab(&keytab, None, KerberosOptions::default()).unwrap();
    let token = client_token(&rt, &acceptor, &logon, false);
    assert_eq!(
        token.impersonation_level(),
        Some(ImpersonationLevel::Impersonation),
        "no Delegation level without delegated credentials"
    );
    assert!(!token.has_network_credentials());
    assert!(token.credential_cache().is_none());
    // Not even the cache alice's uid has on this machine by default.
    let own = std::path::Path::new("/tmp/krb5cc_61201");
    realm.kinit("alice", accounts::PASSWORD, own, 61201);
    let (code, out) = kdc::klist_from(&token);
    let _ = std::fs::remove_file(own);
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("alice@"), "{out}");
    assert!(out.contains("guise-no-delegated-credentials"), "{out}");
    // guise says so from inside that process too.
    let whoami = kdc::whoami_from(&token);
    assert_eq!(whoami["network_credentials"], false, "{whoami}");
    // Its thread cannot fall back on the process's default cache, which here
    // holds a ticket of alice's (a server's own credentials, in a deployment).
    let default = dir.path().join("process.cc");
    realm.kinit("alice", accounts::PASSWORD, &default, 0);
    // SAFETY: as above.
    unsafe { std::env::set_var("KRB5CCNAME", format!("FILE:{}", default.display())) };
    assert!(
        Initiator::start("guise@localhost", false).is_ok(),
        "the process's default cache is usable (the check below can fail)"
    );
    let e = token
        .run_as(|| Initiator::start("guise@localhost", false).map(|_| ()))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSuchLogonSession, "{e}");
    assert!(e.to_string().contains("carries no credentials"), "{e}");
}
