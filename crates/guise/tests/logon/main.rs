//! LogonUser through the real PAM stack (pam_unix), with throwaway accounts: the
//! test thread moves to a private mount namespace and bind-mounts its own
//! /etc/passwd, /etc/group and /etc/shadow over the machine's, which stay untouched.
//! The PAM configuration comes from a directory of the test's own.

#[path = "../common/accounts.rs"]
mod accounts;
#[path = "../common/mod.rs"]
mod common;

use std::process::Command;

use accounts::{Accounts, PASSWORD, accounts};
use guise::logon::{LogonOptions, logon_user_with};
use guise::{ErrorKind, ImpersonationLevel, LogonType, Password, Sid, Token, TokenType};

fn logon(a: &Accounts, user: &str, password: &str, t: LogonType) -> guise::Result<Token> {
    let options = LogonOptions::new("guise").with_config_dir(a.pam_dir.clone());
    logon_user_with(user, Password::new(password.into()), t, &options)
}

#[test]
fn right_password_gives_a_token_for_the_user() {
    need_root!();
    let a = accounts();
    let t = logon(&a, "alice", PASSWORD, LogonType::Interactive).unwrap();
    assert_eq!(t.user(), Sid::unix_user(61201));
    assert_eq!(t.token_type(), TokenType::Primary);
    let sids: Vec<Sid> = t.groups().iter().map(|g| g.sid).collect();
    assert!(sids.contains(&Sid::INTERACTIVE), "{sids:?}");
    assert!(
        sids.contains(&Sid::unix_group(61300)),
        "groups from NSS: {sids:?}"
    );
    assert!(
        sids.iter().any(|s| s.to_string().starts_with("S-1-5-5-")),
        "logon SID"
    );
    assert!(!t.has_network_credentials());
    // The user's processes are the user's.
    let out = common::output_as(Command::new("id"), &t);
    let id = String::from_utf8(out.stdout).unwrap();
    assert!(id.starts_with("uid=61201(alice) gid=61201(alice)"), "{id}");
    assert!(id.contains("61300(guisestaff)"), "{id}");
    // A network logon is an impersonation token, and each logon has its own id.
    let n = logon(&a, "alice", PASSWORD, LogonType::Network).unwrap();
    assert_eq!(n.token_type(), TokenType::Impersonation);
    assert_eq!(
        n.impersonation_level(),
        Some(ImpersonationLevel::Impersonation)
    );
    assert_ne!(
        n.statistics().authentication_id,
        t.statistics().authentication_id
    );
    let guard = n.impersonate().unwrap();
    assert_eq!(guard.level(), ImpersonationLevel::Impersonation);
    assert_eq!(common::thread_status("Uid"), "0 61201 0 61201");
}

#[test]
fn wrong_password_and_unknown_user_fail_alike() {
    need_root!();
    let a = accounts();
    let wrong = logon(&a, "alice", "wrong password", LogonType::Batch).unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::LogonFailure);
    assert_eq!(wrong.win32_code(), 1326);
    let unknown = logon(&a, "nobody-here", PASSWORD, LogonType::Batch).unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::LogonFailure);
    assert_eq!(
        unknown.to_string(),
        wrong.to_string(),
        "the same text for both"
    );
    let empty = logon(&a, "alice", "", LogonType::Batch).unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::LogonFailure);
}

#[test]
fn locked_and_expired_accounts_are_refused() {
    need_root!();
    let a = accounts();
    assert_eq!(
        logon(&a, "bob", PASSWORD, LogonType::Batch)
            .unwrap_err()
            .kind(),
        ErrorKind::LogonFailure,
        "a locked account"
    );
    assert_eq!(
        logon(&a, "carol", PASSWORD, LogonType::Batch)
            .unwrap_err()
            .kind(),
        ErrorKind::AccountExpired
    );
    assert_eq!(
        logon(&a, "dave", PASSWORD, LogonType::Batch)
            .unwrap_err()
            .kind(),
        ErrorKind::PasswordExpired
    );
}

#[test]
fn logon_needs_tcb_in_the_process_token_not_the_thread() {
    need_root!();
    let a = accounts();
    // A thread impersonating a client without privileges: the process token decides,
    // and PAM runs as the process; the thread impersonates again afterwards.
    let client = Token::from_ids(61002, 61002, &[61002]).unwrap();
    let guard = client.impersonate().unwrap();
    let t = logon(&a, "alice", PASSWORD, LogonType::Batch).unwrap();
    assert_eq!(t.user(), Sid::unix_user(61201));
    assert_eq!(
        common::thread_status("Uid"),
        "0 61002 0 61002",
        "still the client"
    );
    drop(guard);
    // Without CAP_SETUID/CAP_SETGID: refused with the Win32 error.
    let mut caps = rustix::thread::capabilities(None).unwrap();
    let setid = rustix::thread::CapabilitySet::SETUID | rustix::thread::CapabilitySet::SETGID;
    caps.effective -= setid;
    caps.permitted -= setid;
    rustix::thread::set_capabilities(None, caps).unwrap();
    let e = logon(&a, "alice", PASSWORD, LogonType::Batch).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PrivilegeNotHeld);
}

#[test]
fn the_pam_session_lives_as_long_as_the_token_and_carries_credentials() {
    need_root!();
    let a = accounts();
    // A service whose session is logged by pam_exec and whose credentials step sets
    // KRB5CCNAME through pam_env, as a Kerberos module would.
    let log = a.pam_dir.join("session.log");
    let script = a.pam_dir.join("log-session");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PAM_TYPE $PAM_USER\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env_conf = a.pam_dir.join("env.conf");
    std::fs::write(
        &env_conf,
        "KRB5CCNAME DEFAULT=FILE:/tmp/krb5cc_guise_test\n",
    )
    .unwrap();
    std::fs::write(
        a.pam_dir.join("guise-full"),
        format!(
            "auth required pam_unix.so\nauth required pam_env.so readenv=0 conffile={env}\n\
             account required pam_unix.so\n\
             session required pam_unix.so\nsession required pam_exec.so {script}\n",
            env = env_conf.display(),
            script = script.display()
        ),
    )
    .unwrap();
    let options = LogonOptions::new("guise-full").with_config_dir(a.pam_dir.clone());
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let t = logon_user_with(
        "alice",
        Password::new(PASSWORD.into()),
        LogonType::Interactive,
        &options,
    )
    .unwrap();
    assert!(t.has_network_credentials(), "PAM set KRB5CCNAME");
    assert!(
        t.logon_environment()
            .iter()
            .any(|(k, v)| k == "KRB5CCNAME" && v == "FILE:/tmp/krb5cc_guise_test")
    );
    assert_eq!(log_text(), "open_session alice\n");
    // The user's processes get the logon's environment.
    let out = common::output_as(Command::new("env"), &t);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("KRB5CCNAME=FILE:/tmp/krb5cc_guise_test")
    );
    // The session closes when the last copy of the token goes.
    let copy = t.clone();
    drop(t);
    assert_eq!(
        log_text(),
        "open_session alice\n",
        "a copy still holds the session"
    );
    drop(copy);
    // The process started from the token has exited and been reaped; the session
    // keeper lets go of its reference when it sees the exit, so the close may come a
    // moment after the last token goes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log_text() != "open_session alice\nclose_session alice\n"
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(log_text(), "open_session alice\nclose_session alice\n");
    // A network logon opens no session and establishes no credentials.
    let n = logon_user_with(
        "alice",
        Password::new(PASSWORD.into()),
        LogonType::Network,
        &options,
    )
    .unwrap();
    assert!(!n.has_network_credentials());
    drop(n);
    assert_eq!(log_text(), "open_session alice\nclose_session alice\n");
    // A token built from a peer's ids carries none either.
    assert!(
        !Token::from_ids(61201, 61201, &[61201])
            .unwrap()
            .has_network_credentials()
    );
}

/// A PAM module that maps the name it is given (`alias`) to another account, as
/// directory modules do (pam_sss with fully qualified names, say): built with gcc.
const MAP_MODULE: &str = r#"
#include <security/pam_modules.h>
#include <string.h>
int pam_sm_authenticate(pam_handle_t *h, int flags, int argc, const char **argv) {
    const char *user = 0;
    if (pam_get_item(h, PAM_USER, (const void **)&user) != PAM_SUCCESS || !user) return PAM_AUTH_ERR;
    if (strcmp(user, "alias") == 0) return pam_set_item(h, PAM_USER, "alice");
    return PAM_SUCCESS;
}
int pam_sm_setcred(pam_handle_t *h, int flags, int argc, const char **argv) { return PAM_SUCCESS; }
"#;

/// Attack: PAM authenticates one account and guise builds the token for the name it
/// was given, which may be another's. The token is for PAM_USER after
/// authentication.
#[test]
fn the_account_is_the_one_pam_authenticated() {
    need_root!();
    let a = accounts();
    let src = a.pam_dir.join("pam_map.c");
    let module = a.pam_dir.join("pam_map.so");
    std::fs::write(&src, MAP_MODULE).unwrap();
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&module)
        .arg(&src)
        .arg("-lpam")
        .status()
        .unwrap();
    assert!(built.success(), "building the test's PAM module");
    std::fs::write(
        a.pam_dir.join("guise-map"),
        format!(
            "auth required {}\nauth required pam_unix.so\naccount required pam_unix.so\n",
            module.display()
        ),
    )
    .unwrap();
    let options = LogonOptions::new("guise-map").with_config_dir(a.pam_dir.clone());
    let t = logon_user_with(
        "alias",
        Password::new(PASSWORD.into()),
        LogonType::Network,
        &options,
    )
    .unwrap();
    assert_eq!(
        t.user(),
        Sid::unix_user(61201),
        "the token is alice's, whom PAM authenticated"
    );
}

/// Attack: the last copy of a logon token is dropped on a thread that impersonates
/// a client; PAM's session modules (pam_exec here) would run their helpers with
/// real uid 0 and the client's effective uid. The session ends at the process
/// identity.
#[test]
fn a_logon_session_ends_at_the_process_identity_wherever_it_is_dropped() {
    need_root!();
    let a = accounts();
    let log = a.pam_dir.join("ids.log");
    let script = a.pam_dir.join("log-ids");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PAM_TYPE $(id -ru) $(id -u)\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        a.pam_dir.join("guise-ids"),
        format!(
            "auth required pam_unix.so\naccount required pam_unix.so\n\
             session required pam_exec.so {}\n",
            script.display()
        ),
    )
    .unwrap();
    let options = LogonOptions::new("guise-ids").with_config_dir(a.pam_dir.clone());
    let t = logon_user_with(
        "alice",
        Password::new(PASSWORD.into()),
        LogonType::Batch,
        &options,
    )
    .unwrap();
    Token::from_ids(61001, 61001, &[61001])
        .unwrap()
        .run_as(move || drop(t))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 2 || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(text, "open_session 0 0\nclose_session 0 0\n");
}
