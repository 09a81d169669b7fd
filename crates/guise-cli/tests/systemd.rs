//! `guise serve` under systemd's conventions: a socket systemd passes
//! (`systemd-socket-activate`, from Debian's systemd package), and the notices a
//! `Type=notify` unit waits for, read from a `NOTIFY_SOCKET` of the test's own.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::GUISE;
use common::server::{Server, as_uid, own_file, tree};

fn have(program: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join(program).is_file())
}

/// Waits for `path` to exist.
fn wait_for(path: &std::path::Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn socket_activation_serves_a_client_through_the_inherited_socket() {
    need_root!();
    if common::skip::skip_unless(have("systemd-socket-activate"), "systemd-socket-activate") {
        return;
    }
    let (dir, files) = tree();
    own_file(&files.join("mine.txt"), 61001, 0o600, "61001's own");
    own_file(&files.join("theirs.txt"), 61002, 0o600, "61002's own");
    let sock = dir.path().join("activated");
    let child = Command::new("systemd-socket-activate")
        .arg("--listen")
        .arg(&sock)
        .args([
            "--fdname",
            "files",
            "-E",
            "GUISE_LOG=info",
            GUISE,
            "serve",
            "--root",
        ])
        .arg(&files)
        .args(["--socket-name", "files"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server::new(child, sock.clone());
    wait_for(&sock);
    // systemd made the socket (a unit's SocketMode= would say who may connect).
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let s = sock.to_str().unwrap();
    let (code, out, err) = as_uid(
        61001,
        &["cat", "--socket", s, "--level", "impersonation", "mine.txt"],
    );
    assert_eq!((code, out.as_str()), (0, "61001's own"), "{err}");
    let (code, _, err) = as_uid(
        61001,
        &[
            "cat",
            "--socket",
            s,
            "--level",
            "impersonation",
            "theirs.txt",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    let log = server.stderr();
    assert!(log.contains("serving the socket systemd passed"), "{log}");
    // The socket is systemd's: the server leaves it in place.
    assert!(sock.exists(), "the server removed the socket systemd made");
}

#[test]
fn a_passed_socket_of_another_path_or_name_is_refused() {
    need_root!();
    if common::skip::skip_unless(have("systemd-socket-activate"), "systemd-socket-activate") {
        return;
    }
    let (dir, files) = tree();
    for (extra, expect) in [
        (vec!["--socket", "/run/elsewhere.sock"], "not --socket"),
        (vec!["--socket-name", "other"], "no socket named"),
    ] {
        let sock = dir.path().join(format!("s{}", extra[0].len()));
        let mut child = Command::new("systemd-socket-activate")
            .arg("--listen")
            .arg(&sock)
            .args(["--fdname", "files", GUISE, "serve", "--root"])
            .arg(&files)
            .args(&extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(&sock);
        // systemd-socket-activate starts the service on the first connection.
        let _ = std::os::unix::net::UnixStream::connect(&sock);
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the server did not refuse"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(2), "{err}");
        assert!(err.contains(expect), "{extra:?}: {err}");
    }
}

/// Reads notices from `sock` until one contains `want` (at most 10 s); returns all
/// read so far.
fn notices_until(sock: &UnixDatagram, seen: &mut Vec<String>, want: &str) {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.lines().any(|l| l == want)) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no {want} in {seen:?}"
        );
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[test]
fn notify_socket_sees_ready_watchdog_then_stopping() {
    need_root!();
    let (dir, files) = tree();
    let notify = dir.path().join("notify");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let pipe = dir.path().join("pipe");
    let child = Command::new(GUISE)
        .args(["serve", "--socket"])
        .arg(&pipe)
        .arg("--root")
        .arg(&files)
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server::new(child, pipe.clone());
    let mut seen = Vec::new();
    notices_until(&sock, &mut seen, "READY=1");
    let ready = seen.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(ready.contains("STATUS=serving"), "{ready}");
    // READY=1 comes once the socket is there to connect to.
    assert!(pipe.exists(), "READY=1 before the socket exists");
    notices_until(&sock, &mut seen, "WATCHDOG=1");
    assert!(!seen.iter().any(|m| m.contains("STOPPING=1")));
    server.signal(rustix::process::Signal::TERM);
    notices_until(&sock, &mut seen, "STOPPING=1");
    let first = |what: &str| {
        seen.iter()
            .position(|m| m.lines().any(|l| l == what))
            .unwrap()
    };
    assert!(first("READY=1") < first("WATCHDOG=1"));
    assert!(first("WATCHDOG=1") < first("STOPPING=1"));
    let _ = server.stderr();
}

/// The shipped units are valid (`systemd-analyze verify`) and expose little
/// (`systemd-analyze security`, offline: at most 2.0 of 10).
#[test]
fn the_shipped_units_verify_and_expose_little() {
    if common::skip::skip_unless(have("systemd-analyze"), "systemd-analyze") {
        return;
    }
    let contrib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&contrib).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // The units name the installed binary; here, the one under test.
        let text: String = text
            .replace("/usr/local/bin/guise", GUISE)
            .lines()
            .filter(|l| !l.starts_with("Documentation=man:"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    // Each server: the pipe, gRPC for local callers, gRPC for Kerberos callers on
    // TCP (socket-activated, the keytab a credential), and D-Bus (bus-activated).
    let mut names: Vec<String> = std::fs::read_dir(&contrib)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "guise-dbus.service",
            "guise-rpc-kerberos.service",
            "guise-rpc-kerberos.socket",
            "guise-rpc.service",
            "guise-rpc.socket",
            "guise-serve.service",
            "guise-serve.socket"
        ]
    );
    for service in [
        "guise-serve",
        "guise-rpc",
        "guise-rpc-kerberos",
        "guise-dbus",
    ] {
        let unit = |kind: &str| dir.path().join(format!("{service}.{kind}"));
        let mut units = vec![unit("service")];
        if unit("socket").exists() {
            units.push(unit("socket"));
        }
        let verify = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(&units)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&verify.stderr);
        assert!(
            verify.status.success() && said.trim().is_empty(),
            "{service}: {said}"
        );
        // The Kerberos unit is on the network (callers reach it on TCP, and it
        // reaches other servers for callers that delegated): that costs 0.5
        // (PrivateNetwork=), 0.3 (AF_INET) and 0.2 (IPAddressDeny=), so it may
        // expose up to 2.5; each other unit at most 2.0.
        let threshold = if service == "guise-rpc-kerberos" {
            25
        } else {
            20
        };
        let security = Command::new("systemd-analyze")
            .args(["security", "--offline=yes"])
            .arg(format!("--threshold={threshold}"))
            .arg(unit("service"))
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&security.stdout);
        assert!(
            security.status.success(),
            "{service} exposes more than {threshold}/10:\n{report}"
        );
        assert!(report.contains("Overall exposure level"), "{report}");
    }
}

/// Attack (a unit's mistake an attacker would use): the unit listens on every
/// address (`ListenStream=PORT`) while the service says `--listen
/// tcp://127.0.0.2:PORT`. The service refuses to start rather than serve every
/// interface.
#[test]
#[cfg(feature = "kerberos")]
fn attack_a_passed_tcp_socket_of_another_address_than_listen_is_refused() {
    if common::skip::skip_unless(have("systemd-socket-activate"), "systemd-socket-activate") {
        return;
    }
    let (_dir, files) = tree();
    let port = std::net::TcpListener::bind(("0.0.0.0", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("systemd-socket-activate")
        .arg("--listen")
        .arg(format!("0.0.0.0:{port}"))
        .args([GUISE, "rpc", "serve", "--listen"])
        .arg(format!("tcp://127.0.0.2:{port}"))
        .args(["--keytab", "/nonexistent", "--root"])
        .arg(&files)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first connection starts the service, which refuses to serve.
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "the service kept serving"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("not --listen tcp://127.0.0.2"), "{err}");
}
