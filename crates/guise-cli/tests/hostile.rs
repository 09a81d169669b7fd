//! `guise serve` against hostile local users: each test is an attack, named after
//! it, with the defense it shows (docs/threat-model.md lists them).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::GUISE;
use common::server::{Server, as_uid, own_file, sparse_file, start, tree};
use guise::pipe::{PipeAddr, PipeClient, SecurityQos};
use guise::{ImpersonationLevel, Token};

const A: u32 = 61001;
const B: u32 = 61002;
const SERVER_UID: u32 = 61010;

fn cat(server: &Server, uid: u32, level: &str, path: &str) -> (i32, String, String) {
    let s = server.socket.to_str().unwrap();
    as_uid(uid, &["cat", "--socket", s, "--level", level, path])
}

fn put(server: &Server, uid: u32, level: &str, path: &str, data: &str) -> (i32, String, String) {
    let s = server.socket.to_str().unwrap();
    as_uid(
        uid,
        &["put", "--socket", s, "--level", level, "--data", data, path],
    )
}

#[test]
fn a_fifo_never_blocks_a_worker_and_sigterm_still_stops_the_server() {
    need_root!();
    for sig in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let (dir, files) = tree();
        own_file(&files.join("a.txt"), A, 0o600, "a's");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            files.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();
        let mut server = start(dir.path(), &files, &[], &["--workers", "1"]);
        let (code, _, err) = cat(&server, A, "impersonation", "fifo");
        assert_eq!(code, 1);
        assert!(err.contains("not a regular file"), "{err}");
        // The only worker is free: another client is served at once.
        let t = Instant::now();
        let (code, out, err) = cat(&server, A, "impersonation", "a.txt");
        assert_eq!((code, out.as_str()), (0, "a's"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // A write left in flight does not hold the stop for long.
        let mut stuck = PipeClient::connect(
            &PipeAddr::Path(server.socket.clone()),
            SecurityQos {
                level: ImpersonationLevel::Impersonation,
                ..SecurityQos::default()
            },
        )
        .unwrap();
        stuck.send(br#"{"op":"write","path":"new.txt"}"#).unwrap();
        let _ = stuck.receive();
        server.signal(sig);
        let took = server.wait_exit(Duration::from_secs(5));
        assert!(
            took.is_some(),
            "{sig:?}: the server did not stop within 5 s"
        );
    }
}

#[test]
fn two_thousand_idle_connections_never_keep_a_new_client_out() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("a.txt"), A, 0o600, "a's");
    // A server allowed 1024 open files, held by 2,000 idle connections of 20 users.
    let server = start(dir.path(), &files, &["prlimit", "--nofile=1024:1024"], &[]);
    let socket = server.socket.clone();
    let idle: Vec<std::os::unix::net::UnixStream> = (0..20u32)
        .flat_map(|u| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                Token::from_ids(62000 + u, 62000 + u, &[])
                    .unwrap()
                    .run_as(|| {
                        (0..100)
                            .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
                            .collect::<Vec<_>>()
                    })
                    .unwrap()
            })
            .join()
            .unwrap()
        })
        .collect();
    assert_eq!(idle.len(), 2000);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let (code, out, err) = cat(&server, A, "impersonation", "a.txt");
    assert_eq!((code, out.as_str()), (0, "a's"), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "served after {:?}",
        t.elapsed()
    );
    // Idle, the server sleeps; its memory stays small.
    let (ticks, t) = (server.cpu_ticks(), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let used = server.cpu_ticks() - ticks;
    let hz = rustix::param::clock_ticks_per_second();
    assert!(
        used * 100 / (hz * t.elapsed().as_secs().max(1)) < 5,
        "{used} ticks of CPU in 2 s while idle"
    );
    let rss = server.status("VmRSS");
    assert!(
        rss < 64 * 1024,
        "{rss} kB resident with 2,000 idle connections"
    );
    drop(idle);
}

#[test]
fn reading_1_gib_of_a_100_gib_sparse_file_keeps_the_server_small() {
    need_root!();
    let (dir, files) = tree();
    sparse_file(&files.join("sparse"), A, 100 << 30);
    let server = start(dir.path(), &files, &[], &[]);
    let s = server.socket.to_str().unwrap().to_owned();
    let mut child = Command::new(GUISE)
        .args([
            "run",
            "--uid",
            &A.to_string(),
            "--",
            GUISE,
            "cat",
            "--socket",
            &s,
        ])
        .args(["--level", "impersonation", "--offset", "53687091200"])
        .args(["--length", "1073741824", "sparse"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut out = child.stdout.take().unwrap();
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == 0));
        total += n as u64;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(total, 1 << 30);
    let peak = server.status("VmHWM");
    assert!(
        peak < 64 * 1024,
        "the server's peak resident size was {peak} kB"
    );
}

#[test]
fn sigkill_during_a_100_mib_put_leaves_the_old_file_whole() {
    need_root!();
    let (dir, files) = tree();
    let drop_dir = files.join("home");
    std::fs::create_dir(&drop_dir).unwrap();
    std::os::unix::fs::chown(&drop_dir, Some(A), Some(A)).unwrap();
    let target = drop_dir.join("data");
    own_file(&target, A, 0o600, "the old contents");
    let mut server = start(dir.path(), &files, &[], &[]);
    let s = server.socket.to_str().unwrap().to_owned();
    let mut client = Command::new(GUISE)
        .args([
            "run",
            "--uid",
            &A.to_string(),
            "--",
            GUISE,
            "put",
            "--socket",
            &s,
        ])
        .args(["--level", "impersonation", "home/data"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            if stdin.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    // Kill the server once part of the data has reached the temporary file.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let partial = std::fs::read_dir(&drop_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".guise-"))
            .any(|e| e.metadata().is_ok_and(|m| m.len() > 10 << 20));
        if partial {
            break;
        }
        assert!(Instant::now() < deadline, "the upload never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.signal(rustix::process::Signal::KILL);
    let _ = server.wait_exit(Duration::from_secs(5));
    feeder.join().unwrap();
    assert!(
        !client.wait().unwrap().success(),
        "the put cannot have succeeded"
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "the old contents"
    );
}

#[test]
fn an_unprivileged_server_never_serves_another_user_as_itself() {
    need_root!();
    let (dir, files) = tree();
    for p in [dir.path(), files.as_path()] {
        std::os::unix::fs::chown(p, Some(SERVER_UID), Some(SERVER_UID)).unwrap();
    }
    let secret = files.join("server-secret");
    own_file(&secret, SERVER_UID, 0o600, "the server's own");
    let uid = SERVER_UID.to_string();
    let wrap = [
        "setpriv",
        "--reuid",
        &uid,
        "--regid",
        &uid,
        "--clear-groups",
        "--inh-caps=-all",
    ];
    let mut server = start(dir.path(), &files, &wrap, &[]);
    let (code, out, err) = cat(&server, A, "impersonation", "server-secret");
    assert_eq!(code, 1, "another user read the server's file: {out}");
    assert!(err.contains("ERROR_BAD_IMPERSONATION_LEVEL"), "{err}");
    // The client asked for enough: the error says the server holds it lower,
    // not to ask for Impersonation (issue 22).
    assert!(
        err.contains("the client asked for impersonation level, but this server")
            && !err.contains("ask for Impersonation"),
        "{err}"
    );
    let (code, _, err) = put(&server, A, "impersonation", "server-secret", "overwritten");
    assert_eq!(code, 1);
    assert!(err.contains("ERROR_BAD_IMPERSONATION_LEVEL"), "{err}");
    let (code, _, _) = put(&server, A, "impersonation", "new-file", "planted");
    assert_eq!(code, 1);
    assert!(!files.join("new-file").exists());
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "the server's own"
    );
    // A client that is the server's own user is served.
    let (code, out, err) = cat(&server, SERVER_UID, "impersonation", "server-secret");
    assert_eq!((code, out.as_str()), (0, "the server's own"), "{err}");
    let log = server.stderr();
    assert!(log.contains("without CAP_SETUID/CAP_SETGID"), "{log}");
}

#[test]
fn anonymous_and_identification_clients_share_nothing_in_a_world_writable_directory() {
    need_root!();
    let (dir, files) = tree();
    let inbox = files.join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::set_permissions(&inbox, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let server = start(dir.path(), &files, &[], &[]);
    let clients = [
        (A, "anonymous"),
        (B, "anonymous"),
        (61003, "identification"),
        (61004, "identification"),
    ];
    for (uid, level) in clients {
        let (code, _, err) = put(&server, uid, level, &format!("inbox/{uid}"), "mine");
        assert_eq!(code, 1, "{uid} at {level} created a file");
        assert!(err.contains("ERROR_BAD_IMPERSONATION_LEVEL"), "{err}");
    }
    assert_eq!(
        std::fs::read_dir(&inbox).unwrap().count(),
        0,
        "nothing was created"
    );
    // Nor can they reach what another sentinel-level thread left there.
    own_file(
        &inbox.join("left"),
        0xFFFF_FFFE,
        0o000,
        "left by a sentinel",
    );
    for (uid, level) in clients {
        let (code, out, _) = cat(&server, uid, level, "inbox/left");
        assert_eq!(code, 1, "{uid} at {level} read {out:?}");
        let (code, _, _) = put(&server, uid, level, "inbox/left", "replaced");
        assert_eq!(code, 1);
    }
    assert_eq!(
        std::fs::read_to_string(inbox.join("left")).unwrap(),
        "left by a sentinel"
    );
}

#[test]
fn dynamic_tracking_from_a_root_process_acting_as_a_user_is_never_root() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("a.txt"), A, 0o600, "a's");
    own_file(&files.join("root.txt"), 0, 0o600, "root's");
    let mut server = start(dir.path(), &files, &[], &[]);
    // A client process with real uid 0 and effective uid A.
    let client = |path: &str| {
        let out = Command::new("setpriv")
            .args([
                "--euid",
                &A.to_string(),
                "--egid",
                &A.to_string(),
                "--clear-groups",
            ])
            .arg(GUISE)
            .args(["cat", "--socket", server.socket.to_str().unwrap()])
            .args(["--level", "impersonation", "--tracking", "dynamic", path])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(client("a.txt"), (0, "a's".into()), "A's own file is served");
    let (code, out) = client("root.txt");
    assert_eq!(code, 1, "the root-only file was served: {out}");
    // The audit trail names the identity that acted, after tracking.
    let log = server.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("path=\"root.txt\""))
        .unwrap_or_else(|| panic!("no request line in\n{log}"));
    assert!(
        line.contains(&format!(" uid={A} ")) && line.contains("impersonation_level=impersonation"),
        "{line}"
    );
    assert!(line.contains("ERROR_ACCESS_DENIED"), "{line}");
}

#[test]
fn the_audit_log_names_the_anonymous_identity_that_acted() {
    need_root!();
    let (dir, files) = tree();
    let mut server = start(dir.path(), &files, &[], &[]);
    let (code, _, _) = cat(&server, A, "anonymous", "x");
    assert_eq!(code, 1);
    let log = server.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("path=\"x\""))
        .unwrap_or_else(|| panic!("no request line in\n{log}"));
    assert!(
        line.contains(" uid=4294967294 ")
            && line.contains(&format!("client_uid={A}"))
            && line.contains("impersonation_level=anonymous"),
        "{line}"
    );
}

#[test]
fn root_slash_never_serves_the_servers_own_proc() {
    need_root!();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = start(dir.path(), Path::new("/"), &[], &[]);
    for path in [
        "proc/self/status",
        "proc/self/maps",
        "proc/thread-self/status",
    ] {
        let (code, out, err) = cat(&server, A, "impersonation", path);
        assert_eq!(code, 1, "{path} was served: {out}");
        assert!(err.contains("ERROR_ACCESS_DENIED"), "{path}: {err}");
    }
    let s = server.socket.to_str().unwrap();
    let (code, _, err) = as_uid(
        A,
        &["ls", "--socket", s, "--level", "impersonation", "proc"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("/proc"), "{err}");
    // The rest of / is served as the client.
    let (code, out, _) = cat(&server, A, "impersonation", "etc/passwd");
    assert_eq!(code, 0);
    assert!(out.contains("root:"));
}

#[test]
fn put_never_follows_a_symlink() {
    need_root!();
    let (dir, files) = tree();
    let home = files.join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(A), Some(A)).unwrap();
    own_file(&home.join("precious"), A, 0o600, "precious");
    std::os::unix::fs::symlink("precious", home.join("link")).unwrap();
    std::os::unix::fs::symlink("../home", files.join("via")).unwrap();
    let server = start(dir.path(), &files, &[], &[]);
    for path in ["home/link", "via/precious"] {
        let (code, _, err) = put(&server, A, "impersonation", path, "clobbered");
        assert_eq!(code, 1, "{path}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(home.join("precious")).unwrap(),
        "precious"
    );
    assert!(
        std::fs::symlink_metadata(home.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A plain put works, and replaces the file whole.
    let (code, out, err) = put(&server, A, "impersonation", "home/precious", "new");
    assert_eq!((code, out.trim()), (0, "3"), "{err}");
    assert_eq!(
        std::fs::read_to_string(home.join("precious")).unwrap(),
        "new"
    );
}

#[test]
fn names_with_terminal_escapes_are_printed_escaped() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("evil\x1b]0;owned\x07name"), A, 0o644, "x");
    let server = start(dir.path(), &files, &[], &[]);
    let s = server.socket.to_str().unwrap();
    let (code, out, _) = as_uid(A, &["ls", "--socket", s, "--level", "impersonation", ""]);
    assert_eq!(code, 0);
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(out.contains("evil\\x1b]0;owned\\x07name"), "{out:?}");
    let (code, _, err) = cat(&server, A, "impersonation", "no\x1b[2Jsuch");
    assert_eq!(code, 1);
    assert!(!err.contains('\x1b'), "{err:?}");
}

#[test]
fn a_squatted_or_silent_server_is_refused() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("a.txt"), A, 0o600, "a's");
    let server = start(dir.path(), &files, &[], &[]);
    let s = server.socket.to_str().unwrap();
    let (code, out, _) = as_uid(
        A,
        &[
            "cat",
            "--socket",
            s,
            "--level",
            "impersonation",
            "--server-uid",
            "0",
            "a.txt",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "a's"));
    let (code, _, err) = as_uid(
        A,
        &[
            "cat",
            "--socket",
            s,
            "--level",
            "impersonation",
            "--server-uid",
            "4242",
            "a.txt",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("runs as uid 0, not 4242"), "{err}");
    // A server that accepts and never answers: the client gives up in time.
    let silent = dir.path().join("silent");
    let _listener = std::os::unix::net::UnixListener::bind(&silent).unwrap();
    let t = Instant::now();
    let (code, _, err) = as_uid(
        0,
        &[
            "cat",
            "--socket",
            silent.to_str().unwrap(),
            "--timeout",
            "1",
            "x",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn renames_racing_the_lookup_never_fail_a_request() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("a.txt"), A, 0o644, "a's");
    std::fs::create_dir(files.join("d1")).unwrap();
    let server = start(dir.path(), &files, &[], &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renamer = {
        let (stop, files) = (stop.clone(), files.clone());
        std::thread::spawn(move || {
            let (x, y) = (files.join("d1"), files.join("d2"));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::rename(&x, &y);
                let _ = std::fs::rename(&y, &x);
            }
        })
    };
    let mut c = PipeClient::connect(
        &PipeAddr::Path(server.socket.clone()),
        SecurityQos {
            level: ImpersonationLevel::Impersonation,
            ..SecurityQos::default()
        },
    )
    .unwrap();
    let mut failures = 0;
    for _ in 0..500 {
        let reply = c.transact(br#"{"op":"stat","path":"a.txt"}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        if v["ok"] != true {
            failures += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    renamer.join().unwrap();
    assert_eq!(failures, 0);
}

/// Attack: a user who may write another user's file (0666, or through a group)
/// replaces it through `put`, which would make the new file theirs.
#[test]
fn put_never_takes_over_another_users_file() {
    need_root!();
    let (dir, files) = tree();
    let shared = files.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    own_file(&shared.join("b.txt"), B, 0o666, "b's");
    let server = start(dir.path(), &files, &[], &[]);
    let (code, _, err) = put(&server, A, "impersonation", "shared/b.txt", "a's now");
    assert_eq!(code, 1);
    assert!(err.contains("belongs to uid"), "{err}");
    let meta = std::fs::metadata(shared.join("b.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), B);
    assert_eq!(
        std::fs::read_to_string(shared.join("b.txt")).unwrap(),
        "b's"
    );
}

/// Attack: a directory of many names, listed to make the server build one huge
/// reply. The reply is cut short.
#[test]
fn a_huge_directory_listing_is_bounded() {
    need_root!();
    let (dir, files) = tree();
    let many = files.join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..10_050 {
        std::fs::File::create(many.join(format!("{i:06}"))).unwrap();
    }
    let server = start(dir.path(), &files, &[], &[]);
    let s = server.socket.to_str().unwrap();
    let (code, out, err) = as_uid(
        A,
        &["ls", "--socket", s, "--level", "impersonation", "many"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 10_000);
    assert!(err.contains("cut short"), "{err}");
}

/// Attack: a peer names a file (or a program) with a carriage return and terminal
/// escapes, so that the server's text log, on an operator's terminal, clears the
/// screen or has a forged line written over a real one. Every value of a text log
/// (a string, an error's words, a program's path) and its message are written
/// with their control characters escaped.
#[test]
fn attack_terminal_escapes_in_peer_strings_are_logged_escaped_in_text_mode() {
    need_root!();
    let (dir, files) = tree();
    let evil = "x\r\x1b[2J";
    let mut server = start(dir.path(), &files, &[], &[]);
    cat(&server, A, "impersonation", &format!("{evil}read"));
    put(&server, A, "impersonation", &format!("{evil}put"), "data");
    // A request of its own making: the op too.
    let mut raw = PipeClient::connect(
        &PipeAddr::Path(server.socket.clone()),
        SecurityQos {
            level: ImpersonationLevel::Impersonation,
            ..SecurityQos::default()
        },
    )
    .unwrap();
    raw.send(
        serde_json::json!({ "op": format!("{evil}op"), "path": evil })
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let _ = raw.receive();
    drop(raw);
    let served = server.stderr();
    // A program of such a name, started as a user (the audit event names it).
    let program = dir.path().join(format!("true{evil}"));
    std::fs::copy("/bin/true", &program).unwrap();
    let out = Command::new(GUISE)
        .args(["run", "--uid", &A.to_string(), "--"])
        .arg(&program)
        .env("GUISE_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let spawned = String::from_utf8_lossy(&out.stderr).into_owned();
    for log in [&served, &spawned] {
        assert!(
            !log.contains('\r') && !log.contains('\x1b'),
            "a raw control character in the log: {log:?}"
        );
    }
    for name in ["read", "put"] {
        assert!(
            served
                .lines()
                .any(|l| l.contains("event=\"request\"") && l.contains(&format!("[2J{name}"))),
            "{served}"
        );
    }
    assert!(served.contains("[2Jop"), "{served}");
    let line = spawned
        .lines()
        .find(|l| l.contains("event=\"spawn\""))
        .unwrap_or_else(|| panic!("no spawn event in {spawned:?}"));
    assert!(line.contains("\\x0d\\x1b[2J"), "{line}");
}

/// Attack: the documented staging example used a fixed name in /tmp
/// (`DESTDIR=/tmp/stage`); a local user makes that directory first and swaps the
/// staged binary before it is packaged. The examples stage into a directory the
/// caller makes (`mktemp -d`), and install.sh refuses a staging directory that is a
/// symbolic link, belongs to another user or may be written by others.
#[test]
fn attack_a_staging_directory_another_user_made_first_is_refused() {
    need_root!();
    let (dir, _files) = tree();
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install.sh");
    let run = |dest: &Path| {
        let out = Command::new("bash")
            .arg(&install)
            .arg("--no-build")
            .env("DESTDIR", dest)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let theirs = dir.path().join("stage");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(A), Some(A)).unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&theirs, &link).unwrap();
    for (dest, why) in [
        (&theirs, format!("belongs to uid {A}")),
        (&open, "may be written by others".into()),
        (&link, "is a symbolic link".into()),
    ] {
        let (ok, err) = run(dest);
        assert!(!ok, "{}: {err}", dest.display());
        assert!(err.contains(&why) && err.contains("mktemp -d"), "{err}");
        assert_eq!(std::fs::read_dir(dest).unwrap().count(), 0, "{err}");
    }
    // A directory of the caller's own (mktemp -d) passes the check.
    let mine = tempfile::tempdir().unwrap();
    let (_, err) = run(mine.path());
    assert!(!err.contains("DESTDIR"), "{err}");
}
