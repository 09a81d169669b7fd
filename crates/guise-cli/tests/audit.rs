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
            .find(|e| {
                e["event"] == "request"
                    && e["path"] == path
                    && e["impersonation_level"] == "impersonation"
            })
            .unwrap_or_else(|| panic!("no request event for {path} in\n{log}"))
            .clone()
    };
    let ok = request("mine.txt");
    assert_eq!(ok["target"], "guise::audit", "{ok}");
    assert_eq!(ok["uid"], 61001, "the acting uid: {ok}");
    assert_eq!(ok["client_uid"], 61001, "{ok}");
    assert_eq!(ok["impersonation_level"], "impersonation", "{ok}");
    assert_eq!(ok["level"], "INFO", "the event's severity: {ok}");
    assert_eq!(ok["op"], "read", "{ok}");
    assert_eq!(ok["access"], "FILE_READ_DATA", "{ok}");
    assert_eq!(ok["result"], "ok", "{ok}");
    assert!(ok.get("missing").is_none_or(Value::is_null), "{ok}");
    let below = all
        .iter()
        .find(|e| {
            e["event"] == "request"
                && e["path"] == "mine.txt"
                && e["impersonation_level"] == "identification"
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

/// Issue 22: a path that leads out of the served directory is refused in those
/// words, and the trail records no missing right for it (the identity lacks
/// nothing; the service's own rule refused it), over the pipe and over gRPC.
#[test]
fn issue_22_an_escape_is_outside_the_served_directory_with_no_missing_right() {
    need_root!();
    let (dir, files) = tree();
    own_file(&dir.path().join("secret.txt"), 61001, 0o644, "outside");
    std::os::unix::fs::symlink("../secret.txt", files.join("link")).unwrap();
    for rpc in [false, true] {
        let extra = ["--log", "json"];
        let mut server = if rpc {
            common::server::start_rpc(dir.path(), &files, &[], &extra)
        } else {
            start(dir.path(), &files, &[], &extra)
        };
        let s = server.socket.to_str().unwrap().to_owned();
        for path in ["../secret.txt", "link", "/etc/passwd"] {
            let args: Vec<&str> = if rpc {
                vec![
                    "rpc",
                    "call",
                    "--socket",
                    &s,
                    "--level",
                    "impersonation",
                    "read",
                    path,
                ]
            } else {
                vec!["cat", "--socket", &s, "--level", "impersonation", path]
            };
            let (code, out, err) = as_uid(61001, &args);
            assert_eq!(code, 1, "{path}: {out} {err}");
            assert!(err.contains("ERROR_ACCESS_DENIED"), "{path}: {err}");
            assert!(
                err.contains("outside the served directory"),
                "{path} over {}: {err}",
                if rpc { "gRPC" } else { "the pipe" }
            );
            assert!(!err.contains("lacks"), "{path}: {err}");
            assert!(!err.contains("cross-device"), "{path}: {err}");
        }
        let log = server.stderr();
        let refusals: Vec<Value> = events(&log)
            .into_iter()
            .filter(|e| e["event"] == "request" && e["op"] == "read")
            .collect();
        assert_eq!(refusals.len(), 3, "{log}");
        for e in refusals {
            assert_eq!(e["result"], "ERROR_ACCESS_DENIED", "{e}");
            assert_eq!(e["access"], "FILE_READ_DATA", "{e}");
            assert!(e.get("missing").is_none_or(Value::is_null), "{e}");
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
    assert_eq!(v["data"]["names"], serde_json::json!(["mine.txt"]), "{v}");
    assert_eq!(v["data"]["truncated"], false, "{v}");
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
    assert_eq!(v["data"]["type"], "file", "{v}");
    assert_eq!(v["data"]["mode"], "600", "{v}");
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

/// Where `text`, one JSON value, has an object with a key twice: serde_json keeps
/// the last of repeated keys without a word, while strict ingesters drop the event.
fn repeated_key(text: &str) -> Result<(), String> {
    struct Scan<'a> {
        b: &'a [u8],
        i: usize,
    }
    impl Scan<'_> {
        fn ws(&mut self) {
            while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.b.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected {:?} at {}", c as char, self.i))
            }
        }
        /// A string, decoded (escapes and all, by serde_json).
        fn string(&mut self) -> Result<String, String> {
            self.ws();
            let start = self.i;
            self.eat(b'"')?;
            loop {
                match self.b.get(self.i) {
                    None => return Err("an unterminated string".into()),
                    Some(b'\\') => self.i += 2,
                    Some(b'"') => break,
                    Some(_) => self.i += 1,
                }
            }
            self.i += 1;
            let raw = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
            serde_json::from_str(raw).map_err(|e| e.to_string())
        }
        fn value(&mut self) -> Result<(), String> {
            self.ws();
            match self.b.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut keys = std::collections::HashSet::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(());
                    }
                    loop {
                        let key = self.string()?;
                        if !keys.insert(key.clone()) {
                            return Err(format!("the key {key:?} is there twice"));
                        }
                        self.eat(b':')?;
                        self.value()?;
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(());
                            }
                            _ => return Err(format!("a bad object at {}", self.i)),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(());
                    }
                    loop {
                        self.value()?;
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(());
                            }
                            _ => return Err(format!("a bad array at {}", self.i)),
                        }
                    }
                }
                Some(b'"') => self.string().map(drop),
                Some(_) => {
                    // A number, true, false or null.
                    while self
                        .b
                        .get(self.i)
                        .is_some_and(|c| !b",]} \t\r\n".contains(c))
                    {
                        self.i += 1;
                    }
                    Ok(())
                }
                None => Err("no value".into()),
            }
        }
    }
    serde_json::from_str::<Value>(text).map_err(|e| e.to_string())?;
    let mut scan = Scan {
        b: text.as_bytes(),
        i: 0,
    };
    scan.value()
}

#[test]
fn the_strict_check_finds_a_repeated_key() {
    assert!(repeated_key(r#"{"a":1,"b":{"a":[1,{"c":"}"}]}}"#).is_ok());
    assert!(repeated_key(r#"{"level":"INFO","x":[],"level":"impersonation"}"#).is_err());
    assert!(repeated_key(r#"{"a":{"k":1,"k":2}}"#).is_err());
    assert!(repeated_key(r#"{"a":1,"\u0061":2}"#).is_err());
    assert!(repeated_key(r#"[{"a":1},{"a":1}]"#).is_ok());
}

/// Attack (on the trail, not the server): every audit line carried `level` twice,
/// tracing's severity and the impersonation level, and a strict ingester drops such
/// an event, so denials went unrecorded. The impersonation level is
/// `impersonation_level`; every JSON line of every server, and of `guise run`, has
/// each key once.
#[test]
fn every_json_audit_line_of_every_server_has_each_key_once() {
    need_root!();
    let have_bus = ["dbus-daemon", "dbus-send"].iter().all(|p| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|dir| dir.join(p).is_file())
    });
    if common::skip::skip_unless(have_bus, "dbus-daemon and dbus-send") {
        return;
    }
    let _users = common::bus::accounts();
    let (dir, files) = tree();
    own_file(&files.join("mine.txt"), 61001, 0o600, "61001's own");
    own_file(&files.join("theirs.txt"), 61002, 0o600, "61002's own");
    let mut logs = Vec::new();
    // guise serve and guise rpc serve: a read served, one denied, one below
    // Impersonation level.
    for rpc in [false, true] {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        std::fs::set_permissions(
            sub.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        // guise serve with every impersonation and revert (debug), which happen
        // where opens switch the worker.
        let mut server = if rpc {
            common::server::start_rpc(sub.path(), &files, &[], &["--log", "json"])
        } else {
            start(
                sub.path(),
                &files,
                &["env", "GUISE_LOG=info,guise::audit=debug"],
                &["--log", "json", "--io-uring", "off"],
            )
        };
        let s = server.socket.to_str().unwrap().to_owned();
        for (level, path) in [
            ("impersonation", "mine.txt"),
            ("impersonation", "theirs.txt"),
            ("identification", "mine.txt"),
        ] {
            let args: Vec<&str> = if rpc {
                vec![
                    "rpc", "call", "--socket", &s, "--level", level, "read", path,
                ]
            } else {
                vec!["cat", "--socket", &s, "--level", level, path]
            };
            as_uid(61001, &args);
        }
        let log = server.stderr();
        if !rpc {
            logs.push(("impersonate", "", log.clone()));
        }
        logs.push(("request", if rpc { "grpc" } else { "pipe" }, log));
    }
    // guise dbus serve.
    let bus = common::bus::start_bus(dir.path());
    let mut server = common::bus::start_service(&bus, &files, &["--log", "json"]);
    common::runtime().block_on(async {
        let conn = common::bus::bus_as(&bus, 61001).await;
        let f = common::bus::proxy(&conn).await;
        let _ = f.call::<_, _, Vec<u8>>("Read", &("mine.txt",)).await;
        let () = f
            .call("SetQualityOfService", &("impersonation",))
            .await
            .unwrap();
        let _ = f.call::<_, _, Vec<u8>>("Read", &("mine.txt",)).await;
        let _ = f.call::<_, _, Vec<u8>>("Read", &("theirs.txt",)).await;
    });
    logs.push(("request", "dbus", server.stderr()));
    // guise run, with the impersonations of debug level.
    let out = std::process::Command::new(GUISE)
        .args(["--log", "json", "run", "--uid", "61001", "--", "/bin/true"])
        .env("GUISE_LOG", "debug")
        .output()
        .unwrap();
    logs.push((
        "spawn",
        "",
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ));
    // One schema: a request of any transport is the same event, which names
    // its transport.
    for (event, transport, log) in logs {
        let lines: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
        for line in &lines {
            if let Err(e) = repeated_key(line) {
                panic!("{e}: {line}");
            }
        }
        let events = events(&log);
        let ours: Vec<&Value> = events.iter().filter(|e| e["event"] == event).collect();
        assert!(ours.len() >= 2 || event == "spawn", "{event}: {log}");
        let denial = |e: &Value| {
            [
                "ERROR_ACCESS_DENIED",
                "ERROR_BAD_IMPERSONATION_LEVEL",
                "ERROR_PRIVILEGE_NOT_HELD",
            ]
            .iter()
            .any(|r| e["result"] == *r)
        };
        // Denials are warnings, one a second (the others of that second at
        // info); everything else at its level.
        if ours.iter().any(|e| denial(e)) {
            assert!(
                ours.iter().any(|e| denial(e) && e["level"] == "WARN"),
                "no denial is a warning: {log}"
            );
        }
        for e in ours {
            assert_eq!(e["target"], "guise::audit", "{e}");
            let severity: &[&str] = if event == "impersonate" {
                &["DEBUG"]
            } else if denial(e) {
                &["WARN", "INFO"]
            } else {
                &["INFO"]
            };
            assert!(severity.iter().any(|s| e["level"] == *s), "{e}");
            if event != "spawn" {
                assert!(e["impersonation_level"].is_string(), "{e}");
            }
            if event == "request" {
                assert_eq!(e["transport"], transport, "{e}");
                for key in [
                    "uid",
                    "gid",
                    "client_uid",
                    "pid",
                    "op",
                    "path",
                    "access",
                    "bytes",
                    "result",
                ] {
                    assert!(!e[key].is_null(), "{key} missing: {e}");
                }
            }
        }
    }
}

/// One journal entry: its fields by name.
type Entry = std::collections::HashMap<String, String>;

/// Decodes the journal's native protocol: `NAME=value` lines, or `NAME`, a
/// little-endian 64-bit length and that many bytes of value, then a newline.
fn journal_entry(mut data: &[u8]) -> Entry {
    let mut entry = Entry::new();
    while let Some(nl) = data.iter().position(|&b| b == b'\n') {
        let line = &data[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let (k, v) = (&line[..eq], &line[eq + 1..]);
            entry.insert(
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            );
            data = &data[nl + 1..];
        } else {
            let len = u64::from_le_bytes(data[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let value = &data[nl + 9..nl + 9 + len];
            assert_eq!(
                data[nl + 9 + len],
                b'\n',
                "a field's value ends with a newline"
            );
            entry.insert(
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            );
            data = &data[nl + 10 + len..];
        }
    }
    assert!(data.is_empty(), "an entry ends with a newline");
    entry
}

/// Runs `guise serve --log journald` (with `GUISE_LOG` unset: the default
/// level, or `info`) where the journal's socket is one of the test's: a mount
/// namespace in which `/run/systemd/journal` is a directory of the test. Then
/// `clients` runs against it, the server stops, and the entries it sent are
/// returned, decoded.
fn journal_of(guise_log: Option<&str>, clients: impl FnOnce(&str)) -> Vec<Entry> {
    let (dir, files) = tree();
    own_file(&files.join("mine.txt"), 62001, 0o600, "62001's own");
    own_file(&files.join("root.txt"), 0, 0o600, "root's own");
    let journal = tempfile::tempdir().unwrap();
    let socket = std::os::unix::net::UnixDatagram::bind(journal.path().join("socket")).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    // Read as the journal does, all along: a datagram socket's queue is short,
    // and a sender whose datagrams no one reads waits.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = std::thread::spawn({
        let done = done.clone();
        move || {
            let mut entries = Vec::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match socket.recv(&mut buf) {
                    Ok(0) => {}
                    Ok(n) => entries.push(journal_entry(&buf[..n])),
                    Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => break entries,
                    Err(_) => {}
                }
            }
        }
    });
    std::fs::create_dir_all("/run/systemd").unwrap();
    let script = "mount --make-rprivate / && mount -t tmpfs guise-test /run/systemd \
        && mkdir /run/systemd/journal && mount --bind \"$J\" /run/systemd/journal \
        && if [ -n \"$L\" ]; then export GUISE_LOG=\"$L\"; else unset GUISE_LOG; fi && exec \"$@\"";
    let j = format!("J={}", journal.path().display());
    let l = format!("L={}", guise_log.unwrap_or(""));
    let mut server = start(
        dir.path(),
        &files,
        &["env", &j, &l, "unshare", "-m", "sh", "-c", script, "sh"],
        &["--log", "journald"],
    );
    clients(server.socket.to_str().unwrap());
    let log = server.stderr(); // SIGTERM: the server stops
    assert!(
        !log.contains("no systemd journal"),
        "the server found no journal: {log}"
    );
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    reader.join().unwrap()
}

#[test]
fn issue_22_journal_entries_say_what_happened_in_words_with_a_warning_for_denials_and_message_ids()
{
    need_root!();
    for program in ["unshare", "mount"] {
        common::kdc::which(program).unwrap_or_else(|| panic!("{program} is needed (util-linux)"));
    }
    // The default level: where the server listens, and the denial; not the read
    // that was served.
    let mut socket = String::new();
    let entries = journal_of(None, |s| {
        socket = s.to_owned();
        assert_eq!(as_uid(62001, &["cat", "--socket", s, "mine.txt"]).0, 0);
        assert_eq!(as_uid(62001, &["cat", "--socket", s, "root.txt"]).0, 1);
    });
    let find = |entries: &[Entry], pred: &dyn Fn(&Entry) -> bool| -> Entry {
        entries
            .iter()
            .find(|e| pred(e))
            .cloned()
            .unwrap_or_else(|| panic!("no such entry among {entries:#?}"))
    };
    let serving = find(&entries, &|e| {
        e.get("GUISE_EVENT").map(String::as_str) == Some("serving")
    });
    assert!(serving["MESSAGE"].contains(&socket), "{serving:?}");
    assert_eq!(serving["PRIORITY"], "6", "{serving:?}");
    assert_eq!(serving["MESSAGE_ID"], "092e2d7596f34d1aa108e95b85654308");
    assert_eq!(serving["SYSLOG_IDENTIFIER"], "guise");
    assert_eq!(serving["GUISE_ADDRESS"], socket);
    let denied = find(&entries, &|e| {
        e.get("GUISE_PATH").map(String::as_str) == Some("root.txt")
    });
    assert_eq!(
        denied["MESSAGE"], "uid 62001 read root.txt: denied, missing FILE_READ_DATA",
        "{denied:?}"
    );
    assert_eq!(denied["PRIORITY"], "4", "a denial is a warning: {denied:?}");
    assert_eq!(denied["MESSAGE_ID"], "fcede7215428441aacbbfb08d4f48929");
    assert_eq!(denied["GUISE_EVENT"], "request");
    assert_eq!(denied["GUISE_RESULT"], "ERROR_ACCESS_DENIED");
    assert_eq!(denied["GUISE_MISSING"], "FILE_READ_DATA");
    assert_eq!(denied["GUISE_CLIENT_UID"], "62001");
    assert!(
        !entries
            .iter()
            .any(|e| e.get("GUISE_PATH").map(String::as_str) == Some("mine.txt")),
        "a served read is not logged at the default level: {entries:#?}"
    );
    find(&entries, &|e| {
        e.get("GUISE_EVENT").map(String::as_str) == Some("stopped")
            && e.get("MESSAGE_ID").map(String::as_str) == Some("8026fed4b95a4310b0c95f9efbe858e2")
    });

    // At info, the trail of the service: a served read is Informational.
    let entries = journal_of(Some("info"), |s| {
        assert_eq!(as_uid(62001, &["cat", "--socket", s, "mine.txt"]).0, 0);
    });
    let ok = find(&entries, &|e| {
        e.get("GUISE_PATH").map(String::as_str) == Some("mine.txt")
    });
    assert_eq!(
        ok["MESSAGE"], "uid 62001 read mine.txt: ok, 11 bytes",
        "{ok:?}"
    );
    assert_eq!(ok["PRIORITY"], "6", "{ok:?}");
    assert_eq!(ok["MESSAGE_ID"], "fcede7215428441aacbbfb08d4f48929");
}

#[test]
fn issue_22_a_refused_logon_is_a_warning_in_words_even_at_the_default_level() {
    need_root!();
    let (pam, _) = common::pam_dir(
        "guise-deny",
        "auth required pam_deny.so\naccount required pam_permit.so\n",
    );
    let dir = pam.path().to_str().unwrap();
    let (code, _, err) = common::guise_with_env(
        &[
            "--log",
            "json",
            "run",
            "--user",
            "nobody",
            "--password-stdin",
            "--pam-service",
            "guise-deny",
            "--pam-config-dir",
            dir,
            "--",
            "true",
        ],
        "wrong\n",
        &[],
    );
    assert_eq!(code, 125, "{err}");
    let logon = events(&err)
        .into_iter()
        .find(|e| e["event"] == "logon")
        .unwrap_or_else(|| panic!("no logon event in\n{err}"));
    assert_eq!(logon["level"], "WARN", "{logon}");
    assert_eq!(logon["result"], "ERROR_LOGON_FAILURE", "{logon}");
    assert_eq!(logon["logon_type"], "LOGON32_LOGON_INTERACTIVE", "{logon}");
    assert_eq!(
        logon["message"], "logon of nobody refused: ERROR_LOGON_FAILURE",
        "{logon}"
    );
}
