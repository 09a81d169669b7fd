//! The audit trail: structured events for what guise does on someone's behalf, as
//! JSON lines (`--log json`), which an auditor's tools read without parsing text.

mod common;

use common::GUISE;
use common::server::{as_uid, own_file, start, tree};
use serde_json::Value;

/// The JSON events in `log` (one object per line; anything else is left out).
fn events(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[test]
fn json_audit_lines_carry_who_acted_level_path_access_and_result() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("mine.txt"), 61001, 0o600, "61001's own");
    own_file(&files.join("theirs.txt"), 61002, 0o600, "61002's own");
    let mut server = start(dir.path(), &files, &[], &["--log", "json"]);
    let s = server.socket.to_str().unwrap().to_owned();
    let read = |path: &str| {
        as_uid(
            61001,
            &["cat", "--socket", &s, "--level", "impersonation", path],
        )
    };
    assert_eq!(read("mine.txt").1, "61001's own");
    // At Identification level the worker acts as the sentinel, which the trail says.
    let (code, _, _) = as_uid(
        61001,
        &[
            "cat",
            "--socket",
            &s,
            "--level",
            "identification",
            "mine.txt",
        ],
    );
    assert_eq!(code, 1);
    let (code, _, err) = read("theirs.txt");
    assert_eq!(code, 1);
    // The client is told which right was missing, and for whom.
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    assert!(
        err.contains("lacks FILE_READ_DATA") && err.contains("uid 61001"),
        "{err}"
    );
    let log = server.stderr();
    let all = events(&log);
    let request = |path: &str| {
        all.iter()
            .find(|e| e["event"] == "request" && e["path"] == path && e["level"] == "impersonation")
            .unwrap_or_else(|| panic!("no request event for {path} in\n{log}"))
            .clone()
    };
    let ok = request("mine.txt");
    assert_eq!(ok["target"], "guise::audit", "{ok}");
    assert_eq!(ok["uid"], 61001, "the acting uid: {ok}");
    assert_eq!(ok["client_uid"], 61001, "{ok}");
    assert_eq!(ok["level"], "impersonation", "{ok}");
    assert_eq!(ok["op"], "read", "{ok}");
    assert_eq!(ok["access"], "FILE_READ_DATA", "{ok}");
    assert_eq!(ok["result"], "ok", "{ok}");
    assert!(ok.get("missing").is_none_or(Value::is_null), "{ok}");
    let below = all
        .iter()
        .find(|e| {
            e["event"] == "request" && e["path"] == "mine.txt" && e["level"] == "identification"
        })
        .unwrap_or_else(|| panic!("no identification request in\n{log}"));
    assert_eq!(below["uid"], 4294967294u32, "the sentinel acted: {below}");
    assert_eq!(below["client_uid"], 61001, "{below}");
    assert_eq!(below["result"], "ERROR_BAD_IMPERSONATION_LEVEL", "{below}");
    let denied = request("theirs.txt");
    assert_eq!(denied["uid"], 61001, "{denied}");
    assert_eq!(denied["result"], "ERROR_ACCESS_DENIED", "{denied}");
    assert_eq!(denied["missing"], "FILE_READ_DATA", "{denied}");
    // Every line is JSON: nothing for people only.
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        if !line.starts_with('{') {
            // The start-up report is printed for people, before the events.
            assert!(line.starts_with("guise serve:"), "not JSON: {line}");
        }
    }
}

#[test]
fn a_process_started_as_a_user_is_an_audit_event() {
    need_root!();
    let out = std::process::Command::new(GUISE)
        .args(["--log", "json", "run", "--uid", "61001", "--", "/bin/true"])
        .env("GUISE_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    let spawn = events(&log)
        .into_iter()
        .find(|e| e["event"] == "spawn")
        .unwrap_or_else(|| panic!("no spawn event in\n{log}"));
    assert_eq!(spawn["target"], "guise::audit", "{spawn}");
    assert_eq!(spawn["uid"], 61001, "{spawn}");
    assert_eq!(spawn["acting_uid"], 0, "{spawn}");
    assert!(
        spawn["program"].as_str().unwrap().ends_with("true"),
        "{spawn}"
    );
    assert!(spawn["pid"].as_u64().unwrap() > 0, "{spawn}");
}

#[test]
fn ls_and_stat_print_the_servers_answer_as_json_with_json() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("mine.txt"), 61001, 0o600, "61001's own");
    let server = start(dir.path(), &files, &[], &[]);
    let s = server.socket.to_str().unwrap().to_owned();
    let (code, out, err) = as_uid(
        61001,
        &[
            "ls",
            "--json",
            "--socket",
            &s,
            "--level",
            "impersonation",
            "",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["data"].to_string().contains("mine.txt"), "{v}");
    let (code, out, err) = as_uid(
        61001,
        &[
            "stat",
            "--json",
            "--socket",
            &s,
            "--level",
            "impersonation",
            "mine.txt",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    // A refusal is JSON too, with the Win32 error, and exit status 1.
    let (code, out, _) = as_uid(
        61002,
        &[
            "stat",
            "--json",
            "--socket",
            &s,
            "--level",
            "identification",
            "mine.txt",
        ],
    );
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().starts_with("ERROR_"), "{v}");
}
