//! `guise whoami` against the real process credentials.

use std::process::Command;

fn guise(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_guise"))
        .args(args)
        .output()
        .expect("run guise")
}

#[test]
fn json_reports_token_and_kernel_view() {
    let out = guise(&["whoami", "--all", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let v = &v["data"];
    let euid = rustix::process::geteuid().as_raw();
    assert_eq!(v["kernel"]["uid"]["effective"], euid);
    assert_eq!(v["type"], "primary");
    assert!(v["level"].is_null());
    let user_sid = v["user"]["sid"].as_str().unwrap();
    if euid == 0 {
        assert_eq!(user_sid, "S-1-5-18");
        assert_eq!(v["user"]["name"], "NT AUTHORITY\\SYSTEM");
        let privs = v["privileges"].as_array().unwrap();
        assert!(
            privs
                .iter()
                .any(|p| p["name"] == "SeImpersonatePrivilege" && p["enabled"] == true)
        );
    } else {
        assert_eq!(user_sid, format!("S-1-22-1-{euid}"));
    }
    let groups = v["groups"].as_array().unwrap();
    assert!(groups.iter().any(|g| g["sid"] == "S-1-1-0"), "Everyone");
}

#[test]
fn table_form_has_the_whoami_sections() {
    let out = guise(&["whoami", "--all"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for section in [
        "USER INFORMATION",
        "GROUP INFORMATION",
        "PRIVILEGES INFORMATION",
        "TOKEN INFORMATION",
        "KERNEL VIEW",
    ] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    let short = guise(&["whoami"]);
    assert_eq!(String::from_utf8(short.stdout).unwrap().lines().count(), 1);
}

#[test]
fn unknown_flag_is_a_clear_error() {
    let out = guise(&["whoami", "--bogus"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}
