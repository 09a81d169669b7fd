//! Issue 22: the right words. A missing file is ERROR_FILE_NOT_FOUND or
//! ERROR_PATH_NOT_FOUND from every client; connect and bind errors name the
//! socket; a client that meets the other kind of server says so, instead of a
//! "68 MB frame" or "transport error".

#[macro_use]
mod common;

use common::server::{own_file, start, start_rpc, tree};

fn guise(args: &[&str]) -> (i32, String, String) {
    common::guise(args, "")
}

#[test]
fn issue_22_a_client_that_meets_the_other_kind_of_server_says_so() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("a.txt"), 0, 0o644, "a");
    let pipe = start(dir.path(), &files, &[], &[]);
    let rpc_dir = tempfile::tempdir().unwrap();
    let rpc = start_rpc(rpc_dir.path(), &files, &[], &[]);
    let (pipe, rpc) = (pipe.socket.to_str().unwrap(), rpc.socket.to_str().unwrap());
    let imp = ["--level", "impersonation"];
    for op in ["cat", "ls", "stat"] {
        let (code, out, err) = guise(&[&[op, "--socket", rpc][..], &imp, &["a.txt"]].concat());
        assert_eq!((code, out.as_str()), (2, ""), "{op}: {err}");
        assert!(err.contains("not a guise pipe server"), "{op}: {err}");
        assert!(!err.contains("exceeds the maximum"), "{op}: {err}");
    }
    for op in [&["whoami"][..], &["read", "a.txt"], &["ls", ""]] {
        let (code, out, err) = guise(&[&["rpc", "call", "--socket", pipe][..], &imp, op].concat());
        assert_eq!((code, out.as_str()), (2, ""), "{op:?}: {err}");
        assert!(err.contains("not a gRPC server"), "{op:?}: {err}");
        assert!(err.contains(pipe), "the socket is named: {err}");
        assert!(!err.contains("transport error"), "{op:?}: {err}");
    }
    // Each still talks to its own kind.
    let (code, out, err) = guise(&[&["cat", "--socket", pipe][..], &imp, &["a.txt"]].concat());
    assert_eq!((code, out.as_str()), (0, "a"), "{err}");
    let (code, out, err) = guise(
        &[
            &["rpc", "call", "--socket", rpc][..],
            &imp,
            &["read", "a.txt"],
        ]
        .concat(),
    );
    assert_eq!((code, out.as_str()), (0, "a"), "{err}");
}

#[test]
fn issue_22_connect_and_bind_errors_name_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no/such/socket");
    let nowhere = nowhere.to_str().unwrap();
    for args in [
        &["cat", "--socket", nowhere, "a"][..],
        &["ls", "--socket", nowhere, ""],
        &["stat", "--socket", nowhere, "a"],
        &["put", "--socket", nowhere, "--data", "x", "a"],
        &["rpc", "call", "--socket", nowhere, "whoami"],
        &["rpc", "call", "--socket", nowhere, "read", "a"],
    ] {
        let (code, _, err) = guise(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(&format!("connecting to unix:{nowhere}")),
            "{args:?}: {err}"
        );
        assert!(err.contains("ERROR_FILE_NOT_FOUND"), "{args:?}: {err}");
        assert!(!err.contains("transport error"), "{args:?}: {err}");
    }
    let root = dir.path().to_str().unwrap();
    for args in [
        &["serve", "--socket", nowhere, "--root", root][..],
        &["rpc", "serve", "--socket", nowhere, "--root", root],
    ] {
        let (code, _, err) = guise(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(&format!("binding unix:{nowhere}")),
            "{args:?}: {err}"
        );
    }
    let (code, _, err) = guise(&[
        "dbus",
        "serve",
        "--address",
        &format!("unix:path={nowhere}"),
        "--root",
        root,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(nowhere), "{err}");
}

#[test]
fn issue_22_a_missing_file_is_file_or_path_not_found_from_every_client() {
    need_root!();
    let (dir, files) = tree();
    std::fs::create_dir(files.join("d")).unwrap();
    let pipe = start(dir.path(), &files, &[], &[]);
    let rpc_dir = tempfile::tempdir().unwrap();
    let rpc = start_rpc(rpc_dir.path(), &files, &[], &[]);
    let (pipe, rpc) = (pipe.socket.to_str().unwrap(), rpc.socket.to_str().unwrap());
    let imp = ["--level", "impersonation"];
    for (path, error) in [
        ("d/nope", "ERROR_FILE_NOT_FOUND"),
        ("nodir/nope", "ERROR_PATH_NOT_FOUND"),
    ] {
        for op in [
            &["cat", "--socket", pipe][..],
            &["ls", "--socket", pipe],
            &["stat", "--socket", pipe],
            &["rpc", "call", "--socket", rpc, "read"],
            &["rpc", "call", "--socket", rpc, "ls"],
        ] {
            let args = [op, &imp, &[path]].concat();
            // `rpc call` takes its options before the op.
            let args = if op[0] == "rpc" {
                [&op[..4], &imp, &op[4..], &[path]].concat()
            } else {
                args
            };
            let (code, out, err) = guise(&args);
            assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
            assert!(err.contains(error), "{args:?}: {err}");
            assert!(!err.contains("ERROR_NONE_MAPPED"), "{args:?}: {err}");
        }
    }
}

/// The race of the HTTP/2 answer: a server that closes a connection on the pipe's
/// first frame before its own SETTINGS frame is sent (as an HTTP/2 server may),
/// but answers a client preface in HTTP/2, is still named for what it is.
#[test]
fn issue_22_a_grpc_server_that_closes_before_its_settings_is_still_named() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("h2");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut first = [0u8; 24];
            if stream.read_exact(&mut first).is_ok() && first.starts_with(b"PRI * HTTP/2.0") {
                // SETTINGS, empty: a 9-byte header of type 4.
                let _ = stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
            }
            // Anything else: closed at once, nothing sent.
        }
    });
    let s = socket.to_str().unwrap();
    for args in [
        &["cat", "--socket", s, "a.txt"][..],
        &["ls", "--socket", s, ""],
        &["stat", "--socket", s, "a.txt"],
        &["put", "--socket", s, "--data", "x", "a.txt"],
    ] {
        let (code, out, err) = guise(args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
        assert!(err.contains("not a guise pipe server"), "{args:?}: {err}");
        assert!(err.contains(s), "the socket is named: {err}");
    }
}

/// Attack: a local user squats the socket with a listener that never accepts
/// (its queue full). The client's connect times out (`--timeout`), and the
/// question "is it a gRPC server?" that follows a failure is bounded too: the
/// client ends, and does not call the squatter a gRPC server.
#[test]
fn attack_a_squatter_that_never_accepts_cannot_hang_the_pipe_client() {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("squat");
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let addr = SocketAddrUnix::new(socket.as_path()).unwrap();
    rustix::net::bind(&fd, &addr).unwrap();
    rustix::net::listen(&fd, 0).unwrap();
    // Fill the queue: every connect(2) after these waits.
    let mut held = Vec::new();
    for _ in 0..4 {
        let c = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        let _ = rustix::net::connect(&c, &addr);
        held.push(c);
    }
    let s = socket.to_str().unwrap();
    let mut child = std::process::Command::new(common::GUISE)
        .args(["cat", "--socket", s, "--timeout", "1", "a.txt"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the client hung on a squatter that never accepts");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(!err.contains("not a guise pipe server"), "{err}");
    drop(held);
}
