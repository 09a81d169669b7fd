//! Issue 23: Active Directory. On a throwaway Samba domain controller
//! (`common::ad`), a directory account's token carries its domain SID and its
//! domain groups (winbind's answer, as `wbinfo` gives it), a group without a
//! gidNumber among them; AccessCheck honours such a group; the kernel enforces
//! the groups that have gids.

#[macro_use]
mod common;

use common::ad::Domain;
use serde_json::Value;

macro_rules! need_domain {
    () => {
        need_root!();
        if common::skip::skip_unless(
            common::ad::available(),
            "a Samba domain controller (samba-ad-dc, samba-ad-provision, winbind, libnss-winbind)",
        ) {
            return;
        }
    };
}

const NOBODY: &str = "65534";

/// `guise ARGS` in the domain's namespaces, as uid 65534 (no privilege at all).
fn guise_as_nobody(d: &Domain, args: &[&str]) -> (i32, String, String) {
    let mut all = vec![
        "--reuid",
        NOBODY,
        "--regid",
        NOBODY,
        "--clear-groups",
        common::GUISE,
    ];
    all.extend_from_slice(args);
    d.run("setpriv", &all)
}

fn data(out: &str) -> Value {
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(v["ok"], true, "{v}");
    v["data"].clone()
}

#[test]
fn issue_23_a_directory_accounts_token_has_the_sids_winbind_gives() {
    need_domain!();
    let d = Domain::start();
    let domain_sid = {
        let admin = d.sid("administrator");
        admin[..admin.rfind('-').unwrap()].to_owned()
    };
    for (user, uid, must_have) in [
        ("alice", 10001, "accounting"),
        ("bob", 10002, "auditors"),
        ("carol", 10003, "Domain Users"),
    ] {
        // Any caller: a token at Identification level needs no privilege.
        let (code, out, err) = guise_as_nobody(&d, &["whoami", "--user", user, "--all", "--json"]);
        assert_eq!(code, 0, "{user}: {err}");
        let token = data(&out);
        let user_sid = d.sid(user);
        assert_eq!(token["user"]["sid"], user_sid, "{user}: {token}");
        assert_eq!(token["user"]["name"], format!("GUISE\\{user}"), "{token}");
        assert_eq!(token["level"], "identification", "{token}");
        assert_eq!(token["type"], "impersonation", "{token}");
        assert_eq!(token["unix"]["uid"], uid, "{token}");
        assert!(token.get("kernel").is_none(), "{token}");
        let mut ours: Vec<String> = token["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["sid"].as_str().unwrap().to_owned())
            .filter(|s| s.starts_with(&format!("{domain_sid}-")))
            .collect();
        let mut theirs: Vec<String> = d
            .wbinfo(&["--user-domgroups", &user_sid])
            .into_iter()
            .filter(|s| *s != user_sid)
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{user}: the domain groups are winbind's");
        assert!(
            ours.contains(&d.sid(must_have)),
            "{user} is in {must_have}: {ours:?}"
        );
        // Users' gid (winbind's) is BUILTIN\Users, an alias: its SID, not a
        // Unix group's.
        assert!(
            token["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["sid"] == "S-1-5-32-545"),
            "{user}: {token}"
        );
        assert_eq!(token["owner"], user_sid, "{token}");
        assert_eq!(token["primary_group"], d.sid("Domain Users"), "{token}");
    }
    // auditors has no gidNumber: a SID all the same, in bob's token.
    let (code, out, _) = d.run("getent", &["group", "auditors"]);
    assert!(
        code != 0 || !out.contains(":10"),
        "auditors has no gidNumber: {out}"
    );
    // A local account keeps its Unix SIDs.
    let (code, out, err) = guise_as_nobody(&d, &["whoami", "--user", "root", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(data(&out)["user"]["sid"], "S-1-5-18");
    let (code, out, err) = guise_as_nobody(&d, &["whoami", "--user", "nobody", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(data(&out)["user"]["sid"], "S-1-22-1-65534");
}

#[test]
fn issue_23_access_check_honours_a_domain_group_without_a_gid() {
    need_domain!();
    let d = Domain::start();
    let sddl = format!(
        "O:BAG:BAD:(D;;FR;;;{})(A;;FR;;;{})",
        d.sid("auditors"),
        d.sid("Domain Users")
    );
    for (user, allowed) in [("alice", true), ("bob", false), ("carol", true)] {
        let (code, out, err) = guise_as_nobody(
            &d,
            &[
                "access-check",
                "--sddl",
                &sddl,
                "--desired",
                "FR",
                "--user",
                user,
            ],
        );
        assert_eq!(code, if allowed { 0 } else { 1 }, "{user}: {out}{err}");
    }
    // Domain-relative aliases are the joined domain's by default: DU is Domain
    // Users, and SIDs are shown by their DOMAIN\name.
    let du = d.sid("Domain Users");
    let domain_sid = &du[..du.rfind('-').unwrap()];
    let (code, out, err) = guise_as_nobody(&d, &["sddl", "--explain", "O:DAG:DUD:(A;;FR;;;DU)"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{domain_sid}-512")), "{out}");
    assert!(out.contains("GUISE\\Domain Admins"), "{out}");
    assert!(out.to_lowercase().contains("guise\\domain users"), "{out}");
    let (code, out, err) = guise_as_nobody(
        &d,
        &[
            "access-check",
            "--sddl",
            "O:BAG:BAD:(A;;FR;;;DU)",
            "--desired",
            "FR",
            "--user",
            "carol",
        ],
    );
    assert_eq!(code, 0, "DU is carol's domain's Domain Users: {out}{err}");
    // --domain-sid still overrides.
    let (code, out, err) = guise_as_nobody(
        &d,
        &[
            "sddl",
            "--explain",
            "--domain-sid",
            "S-1-5-21-1-2-3",
            "O:DAG:DUD:(A;;FR;;;DU)",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("S-1-5-21-1-2-3-512"), "{out}");
    assert!(!out.contains(&format!("{domain_sid}-512")), "{out}");
}

#[test]
fn issue_23_the_kernel_enforces_the_domain_groups_that_have_gids() {
    need_domain!();
    let d = Domain::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // accounting's file (gid 10011), 0640: alice, in accounting, reads it; bob
    // does not.
    let file = dir.path().join("ledger.txt");
    std::fs::write(&file, "accounting's ledger\n").unwrap();
    std::os::unix::fs::chown(&file, Some(0), Some(10011)).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = d.run(
        common::GUISE,
        &["run", "--user", "alice", "--", "/bin/cat", path],
    );
    assert_eq!((code, out.as_str()), (0, "accounting's ledger\n"), "{err}");
    let (code, out, _) = d.run(
        common::GUISE,
        &["run", "--user", "bob", "--", "/bin/cat", path],
    );
    assert_ne!(code, 0, "bob read accounting's file: {out}");

    // A local client (a Unix socket): a domain user's token has its domain
    // SIDs too, whichever transport it came by, auditors (no gidNumber) among
    // them.
    let socket = dir.path().join("grpc.sock");
    let server = d
        .command(common::GUISE)
        .args(["rpc", "serve", "--socket"])
        .arg(&socket)
        .arg("--root")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let server = common::server::Server::new(server, socket.clone());
    let t = std::time::Instant::now();
    while !socket.exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{}",
            server.log_so_far()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (code, out, err) = d.run(
        "setpriv",
        &[
            "--reuid",
            "10002",
            "--regid",
            "10000",
            "--init-groups",
            common::GUISE,
            "rpc",
            "call",
            "--socket",
            socket.to_str().unwrap(),
            "whoami",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}\n{}", server.log_so_far());
    let id = data(&out);
    assert_eq!(id["user_sid"], d.sid("bob"), "{id}");
    assert!(
        id["group_sids"]
            .as_array()
            .unwrap()
            .contains(&d.sid("auditors").into()),
        "{id}"
    );
}

/// A remote client with a ticket from the domain controller: the server's token
/// for it is its ticket's PAC (user, groups, nested groups the KDC added), the
/// kernel's groups are the PAC's groups' gids, so a file of a domain group's gid
/// is readable through the server for a member, denied to another.
#[test]
#[cfg(feature = "kerberos")]
fn issue_23_a_remote_clients_token_is_its_tickets_pac() {
    need_domain!();
    let d = Domain::start();
    let (_tree, root) = common::server::tree();
    common::server::own_file(&root.join("alice.txt"), 10001, 0o600, "alice's own\n");
    let ledger = root.join("ledger.txt");
    std::fs::write(&ledger, "accounting's ledger\n").unwrap();
    std::os::unix::fs::chown(&ledger, Some(0), Some(10011)).unwrap();
    std::fs::set_permissions(&ledger, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let port = 4460;
    let server = d.serve_kerberos(&root, port, &d.krb5_conf());
    let call = |cache: &str, args: &[&str]| d.kerberos_call(port, cache, args);
    let alice = d.kinit("alice");
    let (code, out, err) = call(&alice, &["whoami", "--json"]);
    assert_eq!(code, 0, "{err}\n{}", server.log_so_far());
    let id = data(&out);
    let alice_sid = d.sid("alice");
    assert_eq!(id["user_sid"], alice_sid, "{id}");
    assert_eq!(id["uid"], 10001, "{id}");
    let sids: Vec<String> = id["group_sids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    // The PAC's groups exactly: every domain group winbind gives, and
    // finance, which alice is in only through accounting (the KDC put the
    // nested group in the PAC); nothing else of the domain.
    let domain = &alice_sid[..alice_sid.rfind('-').unwrap()];
    let mut ours: Vec<String> = sids
        .iter()
        .filter(|s| s.starts_with(&format!("{domain}-")))
        .cloned()
        .collect();
    let mut pac: Vec<String> = d
        .wbinfo(&["--user-domgroups", &alice_sid])
        .into_iter()
        .filter(|g| *g != alice_sid)
        .chain([d.sid("finance")])
        .collect();
    ours.sort();
    pac.sort();
    assert_eq!(ours, pac, "the token's domain groups are the PAC's");
    assert!(
        sids.contains(&"S-1-18-1".to_owned()),
        "asserted identity: {sids:?}"
    );
    // The kernel's groups are the PAC's groups' gids: accounting's file.
    assert!(
        id["groups"].as_array().unwrap().contains(&10011.into()),
        "{id}"
    );
    let (code, out, err) = call(&alice, &["read", "ledger.txt"]);
    assert_eq!((code, out.as_str()), (0, "accounting's ledger\n"), "{err}");
    let bob = d.kinit("bob");
    let (code, out, err) = call(&bob, &["read", "ledger.txt"]);
    assert_ne!(code, 0, "bob read accounting's ledger: {out}");
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    let (code, out, err) = call(&bob, &["whoami", "--json"]);
    assert_eq!(code, 0, "{err}");
    let id = data(&out);
    assert_eq!(id["user_sid"], d.sid("bob"));
    assert!(
        id["group_sids"]
            .as_array()
            .unwrap()
            .contains(&d.sid("auditors").into()),
        "auditors (no gidNumber) is bob's: {id}"
    );
}

/// Attack: alice alters her service ticket's PAC to say she is in Domain Admins
/// (RID 512 in place of accounting's), without the domain's keys: the ticket
/// itself is re-encrypted with the service's key (the test has it), the PAC's
/// signatures are left as they were. MIT's acceptor finds the PAC does not
/// verify and drops it; guise, which sees a PAC in the ticket and none that
/// verified, refuses the client instead of serving it from NSS.
#[test]
#[cfg(feature = "kerberos")]
fn attack_a_ticket_with_an_altered_pac_is_refused() {
    need_domain!();
    let python = match std::env::var("GUISE_PYPI_PYTHON") {
        Ok(p) => p,
        Err(_) => {
            if common::skip::skip_unless(false, "impacket from PyPI (GUISE_PYPI_PYTHON)") {
                return;
            }
            unreachable!()
        }
    };
    let d = Domain::start();
    let (_tree, root) = common::server::tree();
    let port = 4461;
    let server = d.serve_kerberos(&root, port, &d.krb5_conf());
    let alice = d.kinit("alice");
    let env = |c: &mut std::process::Command| {
        c.env("KRB5_CONFIG", d.krb5_conf())
            .env("KRB5CCNAME", &alice);
    };
    // A service ticket in the cache, then altered.
    let mut kvno = d.command("kvno");
    env(&mut kvno);
    assert!(
        kvno.arg("guise/dc1.guise.test@GUISE.TEST")
            .status()
            .unwrap()
            .success()
    );
    let accounting = d.sid("accounting");
    let rid = accounting.rsplit('-').next().unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/tamper_pac.py");
    let mut tamper = d.command(&python);
    env(&mut tamper);
    let out = tamper
        .arg(&script)
        .arg(alice.trim_start_matches("FILE:"))
        .arg(d.keytab())
        .args(["guise/dc1.guise.test", rid, "512"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, stdout, stderr) = d.kerberos_call(port, &alice, &["whoami", "--json"]);
    assert_ne!(code, 0, "served with an altered PAC: {stdout}");
    assert!(!stdout.contains("-512\""), "{stdout}");
    assert!(
        server
            .wait_for_line(std::time::Duration::from_secs(10), |l| l
                .contains("forged or altered PAC"))
            .is_some(),
        "{stderr}\n{}",
        server.log_so_far()
    );
}

/// Attack (or a mistaken rule): krb5's `auth_to_local` maps alice's principal to
/// bob's account. Her ticket's PAC says alice; the account is bob's, whose SID
/// winbind knows: the server refuses rather than act as bob with alice's groups
/// (or as alice with bob's ids).
#[test]
#[cfg(feature = "kerberos")]
fn attack_a_principal_mapped_to_another_account_than_its_pac_is_refused() {
    need_domain!();
    let d = Domain::start();
    let (_tree, root) = common::server::tree();
    let conf = root.parent().unwrap().join("krb5-map.conf");
    let base = std::fs::read_to_string(d.krb5_conf()).unwrap();
    std::fs::write(
        &conf,
        base.replace(
            "        admin_server = 127.0.0.1\n",
            "        admin_server = 127.0.0.1\n        auth_to_local = RULE:[1:$1@$0](alice@GUISE.TEST)s/alice@.*/bob/\n        auth_to_local = DEFAULT\n",
        ),
    )
    .unwrap();
    let port = 4462;
    let server = d.serve_kerberos(&root, port, &conf);
    let alice = d.kinit("alice");
    let (code, stdout, _) = d.kerberos_call(port, &alice, &["whoami", "--json"]);
    assert_ne!(code, 0, "served: {stdout}");
    assert!(
        server
            .wait_for_line(std::time::Duration::from_secs(10), |l| l
                .contains("but its ticket's PAC is"))
            .is_some(),
        "{stdout}\n{}",
        server.log_so_far()
    );
}

/// A member joined with SSSD (no winbind): a domain account's token carries its
/// domain SID and the SIDs SSSD gives for its groups (SSSD's groups have gids,
/// the nested finance among them; auditors, without a gid, is not SSSD's).
#[test]
fn issue_23_an_sssd_members_tokens_have_the_domains_sids() {
    need_domain!();
    if common::skip::skip_unless(
        common::ad::sssd_available(),
        "SSSD (sssd-ad, libnss-sss, libsss-nss-idmap0)",
    ) {
        return;
    }
    let d = Domain::start();
    let m = d.start_member();
    for (user, groups) in [
        ("alice", &["Domain Users", "accounting", "finance"][..]),
        ("bob", &["Domain Users"]),
    ] {
        let (code, out, err) = m.run(
            "setpriv",
            &[
                "--reuid",
                NOBODY,
                "--regid",
                NOBODY,
                "--clear-groups",
                common::GUISE,
                "whoami",
                "--user",
                user,
                "--all",
                "--json",
            ],
        );
        assert_eq!(code, 0, "{user}: {err}");
        let token = data(&out);
        let user_sid = d.sid(user);
        assert_eq!(token["user"]["sid"], user_sid, "{token}");
        let domain = &user_sid[..user_sid.rfind('-').unwrap()];
        let mut ours: Vec<String> = token["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["sid"].as_str().unwrap().to_owned())
            .filter(|s| s.starts_with(&format!("{domain}-")))
            .collect();
        let mut want: Vec<String> = groups.iter().map(|g| d.sid(g)).collect();
        ours.sort();
        want.sort();
        assert_eq!(ours, want, "{user}: SSSD's groups");
    }
}
