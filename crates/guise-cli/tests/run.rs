//! `guise run`, as a user would run it.

#[path = "../../guise/tests/common/accounts.rs"]
mod accounts;
mod common;

use common::field;

fn guise_run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    common::guise(&all, stdin)
}

#[test]
fn run_as_a_uid() {
    need_root!();
    let (code, s, err) = guise_run(
        &[
            "--uid",
            "61001",
            "--groups",
            "61001,61500",
            "--",
            "cat",
            "/proc/self/status",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&s, "Uid"), "61001 61001 61001 61001");
    assert_eq!(field(&s, "Gid"), "61001 61001 61001 61001");
    assert_eq!(field(&s, "Groups"), "61001 61500");
    for caps in ["CapPrm", "CapEff", "CapAmb", "CapInh"] {
        assert_eq!(field(&s, caps), "0000000000000000", "{caps}");
    }
    // It cannot become root again.
    let (code, _, err) = guise_run(
        &[
            "--uid",
            "61001",
            "--",
            "python3",
            "-c",
            "import os; os.setresuid(0, 0, 0)",
        ],
        "",
    );
    assert_ne!(code, 0);
    assert!(err.contains("PermissionError"), "{err}");
    // The exit status is the program's; loader variables are refused.
    assert_eq!(
        guise_run(&["--uid", "61001", "--", "sh", "-c", "exit 7"], "").0,
        7
    );
    let (code, _, err) = guise_run(
        &["--uid", "61001", "--env", "LD_PRELOAD=/x.so", "--", "true"],
        "",
    );
    assert_eq!(code, 2);
    assert!(err.contains("LD_PRELOAD"), "{err}");
    let (code, _, err) = guise_run(&["--uid", "4294967295", "--", "true"], "");
    assert_eq!(code, 2);
    assert!(err.contains("ERROR_INVALID_PARAMETER"), "{err}");
}

#[test]
fn run_with_a_password_through_pam() {
    need_root!();
    // The child inherits this thread's private mount namespace with the accounts.
    let a = accounts::accounts();
    let dir = a.pam_dir.to_str().unwrap();
    let (code, out, err) = guise_run(
        &[
            "--user",
            "alice",
            "--password-stdin",
            "--pam-config-dir",
            dir,
            "--",
            "sh",
            "-c",
            "id -un; read line; echo \"$line\"",
        ],
        &format!("{}\nthe rest of stdin\n", accounts::PASSWORD),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "alice\nthe rest of stdin\n",
        "the program gets the rest of stdin"
    );
    let (code, _, err) = guise_run(
        &[
            "--user",
            "alice",
            "--password-stdin",
            "--pam-config-dir",
            dir,
            "--",
            "true",
        ],
        "wrong\n",
    );
    assert_eq!(code, 2);
    assert!(err.contains("ERROR_LOGON_FAILURE"), "{err}");
    // Without a password, root builds the token from NSS.
    let (code, out, _) = guise_run(
        &["--user", "alice", "--logon", "batch", "--", "id", "-u"],
        "",
    );
    assert_eq!((code, out.trim()), (0, "61201"));
}
