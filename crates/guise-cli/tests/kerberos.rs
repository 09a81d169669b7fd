//! Kerberos on a real MIT realm (`common::kdc`): the network credentials of tokens.
//! A LogonUser token carries the ticket the system's PAM stack obtained (pam_krb5;
//! guise does no kinit of its own) in a cache of its own, and a process started
//! from it reaches the network as the user; a token made without a logon has none.

#[path = "../../guise/tests/common/accounts.rs"]
#[allow(dead_code)]
mod accounts;
mod common;

use common::kdc::{self, Realm};

fn pam_krb5() -> bool {
    std::path::Path::new("/lib/x86_64-linux-gnu/security/pam_krb5.so").exists()
}

macro_rules! need_realm {
    () => {
        need_root!();
        if common::skip::skip_unless(
            kdc::available() && pam_krb5(),
            "MIT Kerberos (krb5-kdc, krb5-admin-server, krb5-user) and libpam-krb5",
        ) {
            return;
        }
    };
}

/// Runs `guise ARGS` with the realm's configuration, `stdin`, and `env`.
fn guise(realm: &Realm, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let conf = realm.krb5_conf();
    let mut all: Vec<(&str, &std::ffi::OsStr)> = vec![("KRB5_CONFIG", conf.as_os_str())];
    all.extend(env.iter().map(|&(k, v)| (k, std::ffi::OsStr::new(v))));
    common::guise_with_env(args, stdin, &all)
}

#[test]
fn a_process_started_from_a_kerberos_logon_shows_the_users_ticket() {
    need_realm!();
    let a = accounts::accounts();
    let realm = Realm::start();
    realm.add_user("alice", accounts::PASSWORD);
    let (pam, _) = common::pam_dir(
        "krb5",
        "auth required pam_krb5.so minimum_uid=1000\naccount required pam_unix.so\n\
         session required pam_unix.so\n",
    );
    let dir = pam.path().to_str().unwrap();
    let logon = [
        "run",
        "--user",
        "alice",
        "--password-stdin",
        "--pam-service",
        "krb5",
        "--pam-config-dir",
        dir,
        "--",
    ];
    // A cache the guise process itself names is never the token's: the program
    // gets the logon's own.
    let decoy = [("KRB5CCNAME", "FILE:/nonexistent/decoy")];
    let (code, out, err) = guise(
        &realm,
        &[&logon[..], &["klist"]].concat(),
        &format!("{}\n", accounts::PASSWORD),
        &decoy,
    );
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains(&format!("Default principal: alice@{}", kdc::REALM)),
        "{out}"
    );
    assert!(
        out.contains(&format!("krbtgt/{0}@{0}", kdc::REALM)),
        "{out}"
    );
    assert!(!out.contains("decoy"), "{out}");
    // The token says it has network credentials.
    let (code, out, err) = guise(
        &realm,
        &[&logon[..], &[common::GUISE, "whoami", "--all", "--json"]].concat(),
        &format!("{}\n", accounts::PASSWORD),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let whoami: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(whoami["kernel"]["uid"]["effective"], 61201, "{whoami}");
    assert_eq!(
        whoami["network_credentials"], true,
        "the logon's process: {whoami}"
    );
    drop(a);
    // A wrong password gets no ticket and no process.
    let (code, _, err) = guise(&realm, &[&logon[..], &["klist"]].concat(), "wrong\n", &[]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("ERROR_LOGON_FAILURE"), "{err}");
}

#[test]
fn a_process_from_a_token_without_a_logon_has_no_ticket() {
    need_realm!();
    let realm = Realm::start();
    // Ids alone: no password was seen, so no ticket can exist; the process has no
    // cache, and the one the guise process names does not reach it.
    let (code, out, err) = guise(
        &realm,
        &["run", "--uid", "61201", "--", "klist"],
        "",
        &[("KRB5CCNAME", "FILE:/tmp/the-servers-own-cache")],
    );
    assert_ne!(code, 0, "klist found credentials: {out}");
    assert!(
        !err.contains("the-servers-own-cache") && !out.contains("Default principal"),
        "{out}{err}"
    );
    // And guise says so.
    let (code, out, err) = guise(
        &realm,
        &[
            "run",
            "--uid",
            "61201",
            "--",
            common::GUISE,
            "whoami",
            "--all",
            "--json",
        ],
        "",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let whoami: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(whoami["network_credentials"], false, "{whoami}");
}
