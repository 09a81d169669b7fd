//! Issue 22: one `--json` envelope for every command (docs/cli-json.md). Every
//! command that takes `--json` is run to success and to failure, and its stdout
//! must be exactly one line, one object with exactly the keys of the envelope:
//! `{"ok":true,"data":...}` or `{"ok":false,"error":"ERROR_...","message":"..."}`,
//! with nothing for people on stderr.

#[macro_use]
mod common;

use common::server::{as_uid, own_file, start, start_rpc, tree};
use serde_json::Value;

/// The uid the clients run as.
const A: u32 = 61001;

/// The one envelope of `out`: one line, `ok` and exactly its keys, in order.
fn envelope(what: &str, out: &str) -> Value {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line of JSON, not {out:?}");
    let v: Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{what}: {e}: {out:?}"));
    let keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    match v["ok"].as_bool() {
        Some(true) => assert_eq!(keys, ["ok", "data"], "{what}: {v}"),
        Some(false) => {
            assert_eq!(keys, ["ok", "error", "message"], "{what}: {v}");
            let error = v["error"].as_str().unwrap_or_default();
            assert!(
                error.starts_with("ERROR_") && error.len() > 6,
                "{what}: {v}"
            );
            assert!(
                !v["message"].as_str().unwrap_or_default().is_empty(),
                "{what}: {v}"
            );
        }
        None => panic!("{what}: no boolean ok: {v}"),
    }
    v
}

/// A success: exit status `code`, the envelope's data.
fn success(what: &str, (code, out, err): (i32, String, String), want: i32) -> Value {
    assert_eq!(code, want, "{what}: {out}{err}");
    let v = envelope(what, &out);
    assert_eq!(v["ok"], true, "{what}: {v}");
    v["data"].clone()
}

/// A failure: exit status `code`, the error `error`, and nothing on stderr (under
/// --json the error is on stdout only).
fn failure(what: &str, (code, out, err): (i32, String, String), want: i32, error: &str) -> Value {
    assert_eq!(code, want, "{what}: {out}{err}");
    let v = envelope(what, &out);
    assert_eq!(v["ok"], false, "{what}: {v}");
    assert_eq!(v["error"], error, "{what}: {v}");
    assert!(!err.contains("guise:"), "{what}: text on stderr: {err}");
    v
}

fn guise(args: &[&str]) -> (i32, String, String) {
    common::guise(args, "")
}

#[test]
fn issue_22_local_commands_print_the_envelope() {
    let data = success("whoami", guise(&["whoami", "--json"]), 0);
    assert!(
        data["user"]["sid"].as_str().unwrap().starts_with("S-1-"),
        "{data}"
    );
    let data = success("whoami --all", guise(&["whoami", "--all", "--json"]), 0);
    assert!(data["kernel"]["uid"].is_object(), "{data}");
    // Issue 24: the token's integrity level, elevation, session, logon SID and
    // restriction.
    let root = rustix::process::geteuid().is_root();
    assert_eq!(
        data["integrity_level"],
        if root { "S-1-16-16384" } else { "S-1-16-8192" },
        "{data}"
    );
    assert_eq!(data["elevation_type"], "TokenElevationTypeDefault");
    assert_eq!(data["elevated"], root);
    assert_eq!(data["restricted"], false);
    assert!(
        data["logon_sid"].is_null(),
        "the process token is no logon's"
    );
    assert!(
        data["session_id"].is_null() || data["session_id"].is_u64(),
        "{data}"
    );
    failure(
        "whoami, a usage error",
        guise(&["whoami", "--json", "--bogus"]),
        2,
        "ERROR_INVALID_PARAMETER",
    );

    let data = success(
        "sddl",
        guise(&["sddl", "--json", "O:BAG:SYD:P(A;OICI;FR;;;WD)"]),
        0,
    );
    assert_eq!(data["sddl"], "O:BAG:SYD:P(A;OICI;FR;;;WD)", "{data}");
    assert_eq!(
        data["control"],
        serde_json::json!(["SE_DACL_PRESENT", "SE_DACL_PROTECTED"])
    );
    assert_eq!(data["dacl"][0]["type"], "ACCESS_ALLOWED_ACE_TYPE");
    assert_eq!(
        data["dacl"][0]["flags"],
        serde_json::json!(["OBJECT_INHERIT_ACE", "CONTAINER_INHERIT_ACE"])
    );
    let v = failure(
        "sddl, bad SDDL",
        guise(&["sddl", "--json", "O:ZZ"]),
        2,
        "ERROR_INVALID_SID",
    );
    assert!(v["message"].as_str().unwrap().contains("ZZ"), "{v}");
    failure(
        "sddl, no descriptor",
        guise(&["sddl", "--json"]),
        2,
        "ERROR_INVALID_PARAMETER",
    );

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token.json");
    std::fs::write(&token, r#"{"user":"S-1-5-21-1-2-3-1001"}"#).unwrap();
    let token = token.to_str().unwrap();
    let missing = dir.path().join("none.json");
    let check = |desired: &str, token: &str| {
        guise(&[
            "access-check",
            "--json",
            "--sddl",
            "O:BAG:SYD:(A;;FR;;;S-1-5-21-1-2-3-1001)",
            "--desired",
            desired,
            "--mapping",
            "file",
            "--token-json",
            token,
        ])
    };
    let data = success("access-check, allowed", check("FR", token), 0);
    assert_eq!(data["allowed"], true, "{data}");
    // A denial is the check's answer, not a failure: ok, exit status 1.
    let data = success("access-check, denied", check("FW", token), 1);
    assert_eq!(data["allowed"], false, "{data}");
    failure(
        "access-check, no token file",
        check("FR", missing.to_str().unwrap()),
        2,
        "ERROR_FILE_NOT_FOUND",
    );
    failure(
        "access-check, bad rights",
        check("ZZ", token),
        2,
        "ERROR_INVALID_ACL",
    );
}

#[test]
fn issue_22_batch_lines_are_the_envelope() {
    let (code, out, err) = common::guise(
        &["access-check", "--batch"],
        concat!(
            r#"{"sddl": "O:BAG:BAD:(A;;FR;;;WD)", "token": {"user": "S-1-22-1-5", "groups": ["WD"]}, "desired": "0x1"}"#,
            "\nnot json\n"
        ),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let ok = envelope("batch, a check", &format!("{}\n", lines[0]));
    assert_eq!(ok["data"]["allowed"], true, "{ok}");
    let bad = envelope("batch, not JSON", &format!("{}\n", lines[1]));
    assert_eq!(bad["error"], "ERROR_INVALID_PARAMETER", "{bad}");
}

#[test]
fn issue_22_pipe_clients_print_the_envelope() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("mine.txt"), A, 0o600, "mine");
    std::fs::create_dir(files.join("drop")).unwrap();
    std::fs::set_permissions(
        files.join("drop"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let server = start(dir.path(), &files, &[], &[]);
    let s = server.socket.to_str().unwrap().to_owned();
    let client = |op: &str, level: &str, extra: &[&str], path: &str| {
        let mut args = vec![op, "--json", "--socket", &s, "--level", level];
        args.extend_from_slice(extra);
        args.push(path);
        as_uid(A, &args)
    };
    let imp = "impersonation";

    let data = success("ls", client("ls", imp, &[], ""), 0);
    assert_eq!(data["names"], serde_json::json!(["drop", "mine.txt"]));
    assert_eq!(data["truncated"], false, "{data}");
    let data = success("stat", client("stat", imp, &[], "mine.txt"), 0);
    assert_eq!(data["type"], "file", "{data}");
    assert_eq!(data["mode"], "600", "{data}");
    assert_eq!(data["uid"], A, "{data}");
    assert_eq!(data["size"], 4, "{data}");
    let data = success("stat, a directory", client("stat", imp, &[], "drop"), 0);
    assert_eq!(data["type"], "directory", "{data}");
    let data = success(
        "put",
        client("put", imp, &["--data", "hello"], "drop/new.txt"),
        0,
    );
    assert_eq!(data["written"], 5, "{data}");

    // Without --json, text for people: no JSON, no Rust debug names.
    let (code, out, err) = as_uid(A, &["stat", "--socket", &s, "--level", imp, "mine.txt"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "type: file\nmode: 600\nowner: 61001\ngroup: 61001\nsize: 4\n",
        "{out}"
    );
    let (code, out, err) = as_uid(A, &["stat", "--socket", &s, "--level", imp, "nope"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.starts_with("guise: ") && err.contains("ERROR_FILE_NOT_FOUND"),
        "{err}"
    );

    // The server's refusals: exit status 1.
    failure(
        "ls, a missing directory",
        client("ls", imp, &[], "nope"),
        1,
        "ERROR_FILE_NOT_FOUND",
    );
    failure(
        "stat, a missing file",
        client("stat", imp, &[], "nope/x"),
        1,
        "ERROR_PATH_NOT_FOUND",
    );
    failure(
        "stat at Identification",
        client("stat", "identification", &[], "mine.txt"),
        1,
        "ERROR_BAD_IMPERSONATION_LEVEL",
    );
    failure(
        "put, outside the directory",
        client("put", imp, &["--data", "x"], "../x"),
        1,
        "ERROR_ACCESS_DENIED",
    );
    // Guise's own error (no server there): exit status 2.
    let nowhere = dir.path().join("nowhere");
    let nowhere = nowhere.to_str().unwrap();
    for op in ["ls", "stat", "put"] {
        let v = failure(
            &format!("{op}, no server"),
            as_uid(
                A,
                &[op, "--json", "--socket", nowhere, "--data", "x", "mine.txt"]
                    .into_iter()
                    .filter(|a| op == "put" || (*a != "--data" && *a != "x"))
                    .collect::<Vec<_>>(),
            ),
            2,
            "ERROR_FILE_NOT_FOUND",
        );
        assert!(v["message"].as_str().unwrap().contains(nowhere), "{v}");
    }
}

#[test]
fn issue_22_rpc_call_prints_the_envelope() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("mine.txt"), A, 0o600, "mine");
    std::fs::create_dir(files.join("drop")).unwrap();
    std::fs::set_permissions(
        files.join("drop"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let server = start_rpc(dir.path(), &files, &[], &[]);
    let s = server.socket.to_str().unwrap().to_owned();
    let call = |socket: &str, level: &str, op: &[&str]| {
        let mut args = vec!["rpc", "call", "--socket", socket, "--level", level];
        args.extend_from_slice(op);
        args.push("--json");
        as_uid(A, &args)
    };
    let imp = "impersonation";

    let data = success("rpc whoami", call(&s, imp, &["whoami"]), 0);
    assert_eq!(data["uid"], A, "{data}");
    assert_eq!(data["level"], "impersonation", "{data}");
    let data = success("rpc ls", call(&s, imp, &["ls", ""]), 0);
    assert_eq!(data["names"], serde_json::json!(["drop", "mine.txt"]));
    assert_eq!(data["truncated"], false, "{data}");
    let data = success(
        "rpc write",
        call(&s, imp, &["write", "drop/new.txt", "--data", "hello"]),
        0,
    );
    assert_eq!(data["written"], 5, "{data}");

    failure(
        "rpc ls, a missing directory",
        call(&s, imp, &["ls", "nope"]),
        1,
        "ERROR_FILE_NOT_FOUND",
    );
    failure(
        "rpc write, outside the directory",
        call(&s, imp, &["write", "../x", "--data", "x"]),
        1,
        "ERROR_ACCESS_DENIED",
    );
    failure(
        "rpc whoami-there over a Unix socket",
        call(&s, imp, &["whoami-there", "tcp://127.0.0.1:1"]),
        1,
        "ERROR_ACCESS_DENIED",
    );
    let nowhere = dir.path().join("nowhere");
    let nowhere = nowhere.to_str().unwrap();
    let v = failure(
        "rpc whoami, no server",
        call(nowhere, imp, &["whoami"]),
        2,
        "ERROR_FILE_NOT_FOUND",
    );
    assert!(v["message"].as_str().unwrap().contains(nowhere), "{v}");
}

#[test]
fn issue_22_bench_prints_the_envelope() {
    need_root!();
    let data = success(
        "bench memory",
        guise(&["bench", "memory", "--connections", "2", "--json"]),
        0,
    );
    assert_eq!(data["connections"], 2, "{data}");
    failure(
        "bench, a usage error",
        guise(&["bench", "memory", "--connections", "many", "--json"]),
        2,
        "ERROR_INVALID_PARAMETER",
    );
}
