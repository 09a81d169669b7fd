//! `guise sddl` and `guise access-check`, run as a user would.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn guise_(args: &[&str]) -> (i32, String, String) {
    common::guise(args, "")
}

#[test]
fn sddl_prints_the_canonical_form() {
    let (code, out, _) = guise_(&["sddl", "G:S-1-5-18 O:BA D:(A;CIOI;0x1f01ff;;;S-1-1-0)"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "O:BAG:SYD:(A;OICI;FA;;;WD)");
}

#[test]
fn sddl_binary_round_trip() {
    let (code, hex, _) = guise_(&[
        "sddl",
        "--binary",
        "O:BAG:SYD:P(A;;FA;;;WD)S:(AU;SA;GA;;;WD)",
    ]);
    assert_eq!(code, 0);
    assert!(
        hex.trim().starts_with("01000490") || hex.trim().starts_with("01001490"),
        "{hex}"
    );
    let (code, back, _) = guise_(&["sddl", "--from-binary", hex.trim()]);
    assert_eq!(code, 0);
    assert_eq!(back.trim(), "O:BAG:SYD:P(A;;FA;;;WD)S:(AU;SA;GA;;;WD)");
}

#[test]
fn sddl_explain_and_domain_aliases() {
    let (code, out, _) = guise_(&[
        "sddl",
        "--explain",
        "--domain-sid",
        "S-1-5-21-1-2-3",
        "O:DAG:DUD:(D;;WD;;;WD)(A;;FA;;;DA)",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("O:DAG:DUD:(D;;WD;;;WD)(A;;FA;;;DA)"),
        "{out}"
    );
    assert!(out.contains("S-1-5-21-1-2-3-512 (DA)"), "{out}");
    assert!(out.contains("ACCESS_DENIED_ACE_TYPE"), "{out}");
    // No Rust debug text (issue 22): Win32 names.
    assert!(out.contains("Control: SE_DACL_PRESENT"), "{out}");
    assert!(
        !out.contains("AccessDenied") && !out.contains("AceFlags("),
        "{out}"
    );
    let (code, _, err) = guise_(&["sddl", "O:DA"]);
    assert_eq!(code, 2);
    assert!(err.contains("domain"), "{err}");
}

#[test]
fn sddl_errors_name_position_and_reason() {
    let (code, out, err) = guise_(&["sddl", "O:BAD:(A;;GA;;;WD)(A;;XY;;;WD)"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("position 22") && err.contains("XY") && err.contains("ERROR_INVALID_ACL"),
        "{err}"
    );
}

#[test]
fn access_check_with_a_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.json");
    std::fs::write(
        &path,
        r#"{"user": "S-1-22-1-61001", "groups": ["WD", "S-1-22-2-61100"], "privileges": ["SeBackupPrivilege"]}"#,
    )
    .unwrap();
    let p = path.to_str().unwrap();
    // Deny the specific write rights only: FW also holds READ_CONTROL and
    // SYNCHRONIZE, which FR asks for too.
    let sddl = "O:BAG:BAD:(D;;0x116;;;S-1-22-2-61100)(A;;FA;;;WD)";
    let (code, out, _) = guise_(&[
        "access-check",
        "--sddl",
        sddl,
        "--desired",
        "FR",
        "--token-json",
        p,
        "--mapping",
        "file",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("granted 0x120089 (FR)"), "{out}");
    let (code, out, _) = guise_(&[
        "access-check",
        "--sddl",
        sddl,
        "--desired",
        "0x2",
        "--token-json",
        p,
        "--mapping",
        "file",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("denied (ERROR_ACCESS_DENIED): missing 0x2"),
        "{out}"
    );
    // SeBackupPrivilege with backup semantics reads through the denial of everything.
    let deny_all = "O:BAG:BAD:(D;;FA;;;WD)";
    let (code, _, _) = guise_(&[
        "access-check",
        "--sddl",
        deny_all,
        "--desired",
        "FR",
        "--token-json",
        p,
        "--mapping",
        "file",
    ]);
    assert_eq!(code, 1);
    let (code, _, _) = guise_(&[
        "access-check",
        "--sddl",
        deny_all,
        "--desired",
        "FR",
        "--token-json",
        p,
        "--mapping",
        "file",
        "--backup-semantics",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn access_check_for_a_user() {
    need_root!();
    let (code, out, _) = guise_(&[
        "access-check",
        "--sddl",
        "O:BAG:BAD:(A;;FR;;;BA)",
        "--desired",
        "FR",
        "--user",
        "root",
        "--mapping",
        "file",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = guise_(&[
        "access-check",
        "--sddl",
        "O:BAG:BAD:",
        "--desired",
        "FR",
        "--user",
        "guise-no-such-user",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("ERROR_NONE_MAPPED"), "{err}");
}

#[test]
fn batch_answers_every_line_in_order() {
    let input = [
        r#"{"sddl": "O:BAG:BAD:(A;;FR;;;WD)", "token": {"user": "S-1-22-1-5", "groups": ["S-1-1-0"]}, "desired": "0x1", "mapping": "file"}"#,
        "this is not json",
        r#"{"sddl": "O:BAG:BAD:(D;;0x1;;;S-1-22-2-9)(A;;FR;;;WD)", "token": {"user": "S-1-22-1-5", "groups": ["WD"], "deny_only": ["S-1-22-2-9"]}, "desired": "0x1"}"#,
        r#"{"sddl": "O:BAG:BAD:(A;;FR;;;WD)", "token": {"user": "S-1-22-1-5"}, "desired": "0x80000000"}"#,
        r#"{"sddl": "O:BAG:BAD:(A;;ZZ;;;WD)", "token": {"user": "S-1-22-1-5"}, "desired": "0x1"}"#,
        r#"{"sddl": "O:BAG:BAD:", "token": {"user": "S-1-22-1-5"}, "desired": 1, "mapping": "nope"}"#,
        r#"[1, 2]"#,
        r#"{"sddl": "O:BAG:BAD:(A;;FR;;;WD)", "token": {"user": "S-1-22-1-5", "groups": ["WD"]}, "desired": "MAXIMUM_ALLOWED"}"#,
        r#"{"sddl": "O:BAG:BAD:(A;;FR;;;WD)", "token": {"user": "S-1-22-1-5", "groups": ["WD"]}, "desired": "0x2000000", "mapping": "file"}"#,
        "",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_guise"))
        .args(["access-check", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each line is the --json envelope: its data, or the error.
    for l in &lines {
        assert!(l["ok"].is_boolean(), "{l}");
    }
    let lines: Vec<serde_json::Value> = lines
        .into_iter()
        .map(|l| {
            if l["ok"] == true {
                l["data"].clone()
            } else {
                l
            }
        })
        .collect();
    // The last, empty, line of the joined input is not a line (no newline after it
    // is needed); every other input line has its answer.
    assert_eq!(lines.len(), input.len() - 1, "{lines:?}");
    assert_eq!(lines[0]["allowed"], true);
    assert_eq!(lines[0]["granted"], "0x1");
    assert_eq!(lines[1]["error"], "ERROR_INVALID_PARAMETER");
    assert_eq!(
        lines[2]["allowed"], false,
        "a deny-only group matches the deny ACE"
    );
    assert_eq!(lines[3]["error"], "ERROR_GENERIC_NOT_MAPPED");
    assert_eq!(lines[4]["error"], "ERROR_INVALID_ACL");
    assert!(lines[4]["message"].as_str().unwrap().contains("ZZ"));
    assert_eq!(lines[5]["error"], "ERROR_INVALID_PARAMETER");
    assert_eq!(lines[6]["error"], "ERROR_INVALID_PARAMETER");
    assert_eq!(
        lines[7]["error"], "ERROR_INVALID_ACL",
        "MAXIMUM_ALLOWED is not an SDDL right"
    );
    assert_eq!(lines[8]["allowed"], true);
    assert_eq!(lines[8]["granted"], "0x120089");
}

#[test]
fn sddl_and_access_check_print_json_with_json() {
    let (code, out, err) = guise_(&[
        "sddl",
        "--json",
        "O:BAG:SYD:(A;;FR;;;WD)(D;;FW;;;S-1-5-21-1-2-3-1001)",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let v = &v["data"];
    assert_eq!(
        v["sddl"],
        "O:BAG:SYD:(A;;FR;;;WD)(D;;FW;;;S-1-5-21-1-2-3-1001)"
    );
    assert_eq!(v["owner"], "S-1-5-32-544");
    assert_eq!(v["dacl"][0]["rights"], "FR");
    assert_eq!(v["dacl"][1]["type"], "ACCESS_DENIED_ACE_TYPE");
    assert_eq!(v["dacl"][1]["flags"], serde_json::json!([]));
    assert_eq!(v["control"], serde_json::json!(["SE_DACL_PRESENT"]));
    assert!(v["binary"].as_str().unwrap().starts_with("0100"));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token.json");
    std::fs::write(
        &token,
        r#"{"user":"S-1-5-21-1-2-3-1001","groups":["S-1-1-0"]}"#,
    )
    .unwrap();
    let check = |desired: &str| {
        guise_(&[
            "access-check",
            "--json",
            "--sddl",
            "O:BAG:SYD:(D;;0x2;;;S-1-5-21-1-2-3-1001)(A;;FA;;;WD)",
            "--desired",
            desired,
            "--mapping",
            "file",
            "--token-json",
            token.to_str().unwrap(),
        ])
    };
    let (code, out, err) = check("FR");
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["data"]["allowed"], true, "{v}");
    let (code, out, _) = check("FW");
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true, "a denial is the check's answer: {v}");
    let v = &v["data"];
    assert_eq!(v["allowed"], false, "{v}");
    assert_eq!(
        v["missing_rights"],
        serde_json::json!(["FILE_WRITE_DATA"]),
        "a denial names what is missing: {v}"
    );
}

/// Issue 24: `--token-json` describes restricting SIDs and an integrity level,
/// and AccessCheck enforces both (the second pass; a label's no-write-up).
#[test]
fn token_json_with_restricting_sids_and_an_integrity_level() {
    let dir = tempfile::tempdir().unwrap();
    let check = |token: &str, sddl: &str, desired: &str| {
        let path = dir.path().join("token.json");
        std::fs::write(&path, token).unwrap();
        guise_(&[
            "access-check",
            "--sddl",
            sddl,
            "--desired",
            desired,
            "--token-json",
            path.to_str().unwrap(),
            "--mapping",
            "file",
        ])
        .0
    };
    let alice = r#"{"user": "S-1-22-1-61001", "groups": ["WD"]}"#;
    let restricted = r#"{"user": "S-1-22-1-61001", "groups": ["WD"], "restricting": ["WD"]}"#;
    let low = r#"{"user": "S-1-22-1-61001", "groups": ["WD"], "integrity_level": "LW"}"#;
    let sd = "O:BAG:BAD:(A;;FA;;;S-1-22-1-61001)(A;;FR;;;WD)";
    assert_eq!(check(alice, sd, "FW"), 0);
    assert_eq!(check(restricted, sd, "FW"), 1, "Everyone may not write");
    assert_eq!(check(restricted, sd, "FR"), 0);
    assert_eq!(
        check(low, sd, "FW"),
        1,
        "an unlabeled object is Medium, no write up"
    );
    assert_eq!(check(low, sd, "FR"), 0);
    let labeled = "O:BAG:BAD:(A;;FA;;;WD)S:(ML;;NW;;;HI)";
    assert_eq!(
        check(alice, labeled, "FW"),
        1,
        "S:(ML;;NW;;;HI) is enforced"
    );
    assert_eq!(check(alice, labeled, "FR"), 0);
}
