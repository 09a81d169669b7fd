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
    let (code, out, _) = guise_as_nobody(
        &d,
        &[
            "sddl",
            "--domain-sid",
            "S-1-5-21-1-2-3",
            "O:DAG:DUD:(A;;FR;;;DU)",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("S-1-5-21-1-2-3-512") || out.contains("O:DA"),
        "{out}"
    );
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
}
