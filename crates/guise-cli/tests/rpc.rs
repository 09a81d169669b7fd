//! The gRPC transport: `guise rpc serve` and the `guise::rpc` API, with real tonic
//! servers and clients over Unix sockets, callers as throwaway uids (and one
//! client written with Python's grpcio).

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::server::{Server, own_file, sparse_file, start_rpc, tree};
use common::{GUISE, runtime};
use guise::{ErrorKind, ImpersonationLevel, Token};
use tonic::transport::Channel;
use tonic::{Code, Request};

mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("guise.files.v1");
}

use proto::files_client::FilesClient;
use proto::{ListRequest, ReadRequest, WhoAmIRequest, WriteChunk};

const A: u32 = 61001;
const B: u32 = 61002;

async fn channel_as(socket: &Path, uid: u32) -> Channel {
    common::server::grpc_channel_as(socket, uid).await.unwrap()
}

async fn client_as(socket: &Path, uid: u32) -> FilesClient<Channel> {
    FilesClient::new(channel_as(socket, uid).await)
}

fn at<T>(message: T, level: Option<&str>) -> Request<T> {
    let mut r = Request::new(message);
    if let Some(l) = level {
        r.metadata_mut()
            .insert(guise::rpc::LEVEL_METADATA, l.parse().unwrap());
    }
    r
}

async fn read_all(
    client: &mut FilesClient<Channel>,
    path: &str,
    level: Option<&str>,
) -> Result<Vec<u8>, tonic::Status> {
    let req = ReadRequest {
        path: path.into(),
        offset: 0,
        length: 0,
    };
    let mut stream = client.read(at(req, level)).await?.into_inner();
    let mut data = Vec::new();
    while let Some(c) = stream.message().await? {
        data.extend(c.data);
    }
    Ok(data)
}

/// Two callers' files, 0600 each, and a running `guise rpc serve`.
fn served(extra: &[&str]) -> (tempfile::TempDir, PathBuf, Server) {
    let (dir, files) = tree();
    own_file(&files.join("a.txt"), A, 0o600, "a's secret");
    own_file(&files.join("b.txt"), B, 0o600, "b's secret");
    // A directory the callers may create files in.
    std::fs::create_dir(files.join("drop")).unwrap();
    std::fs::set_permissions(
        files.join("drop"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let server = start_rpc(dir.path(), &files, &[], extra);
    (dir, files, server)
}

#[test]
fn level_matrix_over_grpc() {
    need_root!();
    let (_dir, files, server) = served(&[]);
    let rt = runtime();
    rt.block_on(async {
        let mut a = client_as(&server.socket, A).await;
        for (level, name) in [
            (Some("anonymous"), "anonymous"),
            (Some("identification"), "identification"),
            (None, "identification"),
            (Some("impersonation"), "impersonation"),
            (Some("delegation"), "delegation"),
        ] {
            // WhoAmI works at every level; below Identification it reveals nothing.
            let id = a
                .who_am_i(at(WhoAmIRequest {}, level))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(id.level, name, "{level:?}");
            if name == "anonymous" {
                assert_eq!((id.uid, id.user_sid.as_str()), (4294967294, "S-1-5-7"));
                assert!(id.groups.is_empty());
            } else {
                assert_eq!(
                    (id.uid, id.gid, id.user_sid.as_str()),
                    (A, A, "S-1-22-1-61001")
                );
            }
            let own = read_all(&mut a, "a.txt", level).await;
            let other = read_all(&mut a, "b.txt", level).await;
            let write = a
                .write(at(
                    tokio_stream::iter([WriteChunk {
                        path: format!("drop/{name}"),
                        data: b"written".to_vec(),
                        mode: 0o600,
                    }]),
                    level,
                ))
                .await;
            if matches!(name, "anonymous" | "identification") {
                // Windows: a thread at these levels opens nothing.
                for r in [own.map(|_| ()), other.map(|_| ()), write.map(|_| ())] {
                    let s = r.unwrap_err();
                    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
                    assert!(
                        s.message().contains("ERROR_BAD_IMPERSONATION_LEVEL"),
                        "{s:?}"
                    );
                }
                assert!(!files.join("drop").join(name).exists());
            } else {
                assert_eq!(own.unwrap(), b"a's secret");
                let s = other.unwrap_err();
                assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
                assert!(s.message().contains("ERROR_ACCESS_DENIED"), "{s:?}");
                assert_eq!(write.unwrap().into_inner().written, 7);
                let meta = std::fs::metadata(files.join("drop").join(name)).unwrap();
                assert_eq!(
                    std::os::unix::fs::MetadataExt::uid(&meta),
                    A,
                    "the file is the caller's"
                );
            }
        }
        // A missing file, a listing, a level the caller made up, and metadata that
        // claims another identity (never read: the kernel says who the caller is).
        // ERROR_FILE_NOT_FOUND, in the message and the guise-error metadata, and
        // what guise's client reads back; never ACCESS_DENIED or NONE_MAPPED
        // (#21). A directory on the way that is not there: ERROR_PATH_NOT_FOUND.
        for (path, kind) in [
            ("nope", guise::ErrorKind::FileNotFound),
            ("no-dir/nope", guise::ErrorKind::PathNotFound),
        ] {
            let s = read_all(&mut a, path, Some("impersonation"))
                .await
                .unwrap_err();
            assert_eq!(s.code(), Code::NotFound, "{s:?}");
            assert!(s.message().contains(kind.win32_name()), "{s:?}");
            assert_eq!(
                s.metadata()
                    .get("guise-error")
                    .and_then(|v| v.to_str().ok()),
                Some(kind.win32_name()),
                "{s:?}"
            );
            assert_eq!(guise::Error::from(s).kind(), kind);
        }
        let names = a
            .list(at(
                ListRequest {
                    path: String::new(),
                },
                Some("impersonation"),
            ))
            .await
            .unwrap()
            .into_inner()
            .names;
        assert_eq!(names, ["a.txt", "b.txt", "drop"]);
        let s = a
            .who_am_i(at(WhoAmIRequest {}, Some("root")))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        let mut forged = at(WhoAmIRequest {}, Some("impersonation"));
        forged
            .metadata_mut()
            .insert("guise-uid", "0".parse().unwrap());
        forged
            .metadata_mut()
            .insert("x-forwarded-user", "root".parse().unwrap());
        let id = a.who_am_i(forged).await.unwrap().into_inner();
        assert_eq!(id.uid, A, "metadata never names the caller");
    });
}

#[test]
fn callers_as_8_identities_over_64_streams_never_see_another_identity() {
    need_root!();
    const IDS: u32 = 8;
    const STREAMS_PER_ID: u32 = 8;
    const CALLS: u32 = 10_000;
    let (dir, files) = tree();
    for i in 0..IDS {
        let uid = A + i;
        own_file(
            &files.join(format!("f{uid}")),
            uid,
            0o600,
            &format!("secret of {uid}"),
        );
    }
    let server = start_rpc(dir.path(), &files, &[], &["--workers", "8"]);
    let rt = runtime();
    let per_stream = CALLS.div_ceil(IDS * STREAMS_PER_ID);
    let (calls, wrong) = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..IDS * STREAMS_PER_ID {
            let uid = A + i % IDS;
            let neighbour = A + (i + 1) % IDS;
            let mut c = client_as(&server.socket, uid).await;
            tasks.push(tokio::spawn(async move {
                let (mut calls, mut wrong) = (0u32, Vec::new());
                let imp = Some("impersonation");
                for n in 0..per_stream {
                    let ok = match n % 3 {
                        0 => c
                            .who_am_i(at(WhoAmIRequest {}, imp))
                            .await
                            .is_ok_and(|r| r.get_ref().uid == uid),
                        1 => read_all(&mut c, &format!("f{uid}"), imp)
                            .await
                            .is_ok_and(|d| d == format!("secret of {uid}").as_bytes()),
                        _ => read_all(&mut c, &format!("f{neighbour}"), imp)
                            .await
                            .is_err_and(|s| s.code() == Code::PermissionDenied),
                    };
                    calls += 1;
                    if !ok {
                        wrong.push(format!("uid {uid}, call {n}"));
                    }
                }
                (calls, wrong)
            }));
        }
        let (mut calls, mut wrong) = (0, Vec::new());
        for t in tasks {
            let (c, w) = t.await.unwrap();
            calls += c;
            wrong.extend(w);
        }
        (calls, wrong)
    });
    assert!(calls >= CALLS, "{calls} calls");
    assert!(
        wrong.is_empty(),
        "{} of {calls} calls were not answered as their caller: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// The threads of process `pid` whose effective uid is not `uid`.
fn threads_not_at(pid: i32, uid: u32) -> Vec<String> {
    let mut odd = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let Ok(status) = std::fs::read_to_string(task.unwrap().path().join("status")) else {
            continue;
        };
        let euid = common::field(&status, "Uid")
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned();
        if euid != uid.to_string() {
            odd.push(format!("{} euid {euid}", common::field(&status, "Name")));
        }
    }
    odd
}

#[test]
fn a_cancelled_call_leaves_no_worker_impersonating() {
    need_root!();
    let (dir, files) = tree();
    // 256 MiB that cost no disk: a read of all of it takes many chunks.
    sparse_file(&files.join("big"), A, 256 << 20);
    let server = start_rpc(dir.path(), &files, &[], &["--workers", "2"]);
    let rt = runtime();
    rt.block_on(async {
        let mut a = client_as(&server.socket, A).await;
        let req = ReadRequest {
            path: "big".into(),
            offset: 0,
            length: 0,
        };
        let mut stream = a
            .read(at(req, Some("impersonation")))
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(first.data.len(), 64 * 1024);
        // The client goes away mid-stream.
        drop(stream);
        drop(a);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut odd = threads_not_at(server.pid(), 0);
    while !odd.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        odd = threads_not_at(server.pid(), 0);
    }
    assert!(odd.is_empty(), "threads still impersonating: {odd:?}");
    // And the read stopped: it did not go on to the end as the caller.
    let line = server
        .wait_for_line(Duration::from_secs(10), |l| l.contains("op=\"read\""))
        .unwrap_or_else(|| panic!("no read logged: {}", server.log_so_far()));
    assert!(line.contains("RPC_S_NO_CALL_ACTIVE"), "{line}");
    let bytes: u64 = line
        .split("bytes=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes < 256 << 20, "{line}");
}

/// Attack: one user opens connection after connection and leaves them idle, to keep
/// everyone else out.
#[test]
fn an_idle_flood_of_one_uid_never_keeps_another_out() {
    need_root!();
    let (_dir, _files, server) = served(&["--max-connections-per-uid", "8", "--idle-timeout", "2"]);
    let token = Token::from_ids(A, A, &[A]).unwrap();
    let socket = server.socket.clone();
    let flood: Vec<std::os::unix::net::UnixStream> = guise::thread::spawn(move || {
        token
            .run_as(|| {
                (0..50)
                    .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
                    .collect()
            })
            .unwrap()
    })
    .unwrap()
    .join()
    .unwrap();
    // Past the limit, the server closes A's connections at once.
    let mut closed = 0;
    for mut s in flood.iter().skip(8) {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut b = [0u8; 1];
        if matches!(io::Read::read(&mut s, &mut b), Ok(0)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 42, "connections over the per-uid limit are closed");
    // Another user is served at once.
    let rt = runtime();
    rt.block_on(async {
        let t = Instant::now();
        let mut b = client_as(&server.socket, B).await;
        let id = b
            .who_am_i(at(WhoAmIRequest {}, None))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(id.uid, B);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    });
    // And the idle ones go after the idle timeout.
    let mut s = &flood[0];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match io::Read::read(&mut s, &mut buf) {
            Ok(0) => break,
            Ok(_) => {} // the server's HTTP/2 preface
            Err(e) => panic!("an idle connection was not closed: {e}"),
        }
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// What a Python grpcio client run by `python` says of `served()`'s server: its
/// grpcio release, whoami, its own file, the other's file, a write of one 1 MiB
/// chunk read back, and the health check. `protoc` generates the messages (and
/// with `grpc_stubs`, the stubs too). Nothing of guise is in the client.
fn python_client(python: &Path, protoc: &[&str], grpc_stubs: bool) -> Vec<String> {
    let (dir, files, server) = served(&[]);
    let gen_dir = dir.path().join("py");
    std::fs::create_dir(&gen_dir).unwrap();
    let proto_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let mut generate = Command::new(protoc[0]);
    generate
        .args(&protoc[1..])
        .arg(format!("-I{}", proto_root.display()))
        .arg(format!("--python_out={}", gen_dir.display()));
    if grpc_stubs {
        generate.arg(format!("--grpc_python_out={}", gen_dir.display()));
    }
    let ok = generate.arg("guise/files/v1/files.proto").status().unwrap();
    assert!(ok.success());
    let script = gen_dir.join("client.py");
    std::fs::write(
        &script,
        r#"
import sys, grpc
from guise.files.v1 import files_pb2 as pb
print("grpcio", grpc.__version__)
# The default authority: the C core (1.57 on) sends the socket's path,
# percent-encoded.
ch = grpc.insecure_channel("unix:" + sys.argv[1])
meta = [("guise-impersonation-level", "impersonation")]
who = ch.unary_unary("/guise.files.v1.Files/WhoAmI",
    request_serializer=pb.WhoAmIRequest.SerializeToString,
    response_deserializer=pb.Identity.FromString)
me = who(pb.WhoAmIRequest(), metadata=meta)
print("uid", me.uid, me.level, me.user_sid)
read = ch.unary_stream("/guise.files.v1.Files/Read",
    request_serializer=pb.ReadRequest.SerializeToString,
    response_deserializer=pb.Chunk.FromString)
print("own", b"".join(c.data for c in read(pb.ReadRequest(path="a.txt"), metadata=meta)).decode())
try:
    b"".join(c.data for c in read(pb.ReadRequest(path="b.txt"), metadata=meta))
    print("other read")
except grpc.RpcError as e:
    print("other", e.code().name)
# One chunk of 1 MiB: the proto's stated limit on a WriteChunk's data.
data = bytes(range(256)) * 4096
write = ch.stream_unary("/guise.files.v1.Files/Write",
    request_serializer=pb.WriteChunk.SerializeToString,
    response_deserializer=pb.WriteReply.FromString)
print("wrote", write(iter([pb.WriteChunk(path="drop/big.bin", data=data)]), metadata=meta).written)
back = b"".join(c.data for c in read(pb.ReadRequest(path="drop/big.bin"), metadata=meta))
print("read back", back == data)
# The standard health service, its messages written out by hand (field 1 of
# HealthCheckResponse is the status; 1 is SERVING).
check = ch.unary_unary("/grpc.health.v1.Health/Check",
    request_serializer=lambda _: b"", response_deserializer=lambda b: b)
print("health", check(None).hex())
"#,
    )
    .unwrap();
    std::fs::set_permissions(
        &gen_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // Run as A: the Python process's own uid is what the server sees.
    let out = Command::new(GUISE)
        .args(["run", "--uid", &A.to_string(), "--env"])
        .arg(format!("PYTHONPATH={}", gen_dir.display()))
        .arg("--")
        .arg(python)
        .arg(&script)
        .arg(&server.socket)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::metadata(files.join("drop/big.bin")).unwrap();
    assert_eq!(
        (std::os::unix::fs::MetadataExt::uid(&written), written.len()),
        (A, 1 << 20),
        "the file was written as A"
    );
    text.lines().map(str::to_owned).collect()
}

/// The client's lines after its grpcio release, and that release.
fn served_as_a(lines: &[String]) -> (Vec<u32>, &[String]) {
    let version = lines[0]
        .strip_prefix("grpcio ")
        .expect("the release first")
        .split('.')
        .map_while(|n| n.parse().ok())
        .collect();
    assert_eq!(
        &lines[1..],
        [
            "uid 61001 impersonation S-1-22-1-61001",
            "own a's secret",
            "other PERMISSION_DENIED",
            "wrote 1048576",
            "read back True",
            "health 0801",
        ]
    );
    (version, &lines[1..])
}

/// A Python grpcio client from Debian, with messages from Debian's protoc.
#[test]
fn a_python_grpcio_client_is_served_as_its_own_user() {
    need_root!();
    let python = Path::new("/usr/bin/python3");
    let have = Command::new(python)
        .args(["-c", "import grpc, google.protobuf"])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("protoc")
            .arg("--version")
            .status()
            .is_ok_and(|s| s.success());
    if common::skip::skip_unless(have, "python3-grpcio and protoc") {
        return;
    }
    served_as_a(&python_client(python, &["protoc"], false));
}

/// The Python environment with today's grpcio and grpcio-tools from PyPI that
/// the test command makes (`GUISE_PYPI_PYTHON`, its python).
fn pypi_python() -> Option<PathBuf> {
    let python = PathBuf::from(std::env::var_os("GUISE_PYPI_PYTHON")?);
    Command::new(&python)
        .args(["-c", "import grpc, grpc_tools"])
        .status()
        .is_ok_and(|s| s.success())
        .then_some(python)
}

/// Regression: grpcio from 1.57 on sends a Unix socket's path, percent-encoded, as
/// `:authority`, which the HTTP/2 server refused (every stream reset); the
/// current release from PyPI, with its defaults, is served.
#[test]
fn current_grpcio_from_pypi_with_its_default_authority_is_served() {
    need_root!();
    let python = pypi_python();
    if common::skip::skip_unless(python.is_some(), "grpcio from PyPI (GUISE_PYPI_PYTHON)") {
        return;
    }
    let python = python.unwrap();
    let protoc = [python.to_str().unwrap(), "-m", "grpc_tools.protoc"];
    let lines = python_client(&python, &protoc, true);
    let (version, _) = served_as_a(&lines);
    assert!(
        version >= vec![1, 57],
        "a grpcio that sends the path as authority: {version:?}"
    );
}

/// grpcurl (`GUISE_GRPCURL`, the test command fetches a release), a gRPC client in
/// Go, dialling the socket with `-unix` and its default authority: it lists the
/// services through reflection, checks health and reads as its caller.
#[test]
fn grpcurl_with_its_default_authority_is_served() {
    need_root!();
    let grpcurl = std::env::var_os("GUISE_GRPCURL").map(PathBuf::from);
    let have = grpcurl.as_ref().is_some_and(|g| {
        Command::new(g)
            .arg("-version")
            .status()
            .is_ok_and(|s| s.success())
    });
    if common::skip::skip_unless(have, "grpcurl (GUISE_GRPCURL)") {
        return;
    }
    let grpcurl = grpcurl.unwrap();
    let (_dir, _files, server) = served(&[]);
    let socket = server.socket.to_str().unwrap();
    let call = |uid: u32, args: &[&str]| {
        let out = Command::new(GUISE)
            .args(["run", "--uid", &uid.to_string(), "--"])
            .arg(&grpcurl)
            .args(["-plaintext", "-unix"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = call(A, &[socket, "list"]);
    assert_eq!(code, Some(0), "{out}{err}");
    for service in ["grpc.health.v1.Health", "guise.files.v1.Files"] {
        assert!(out.lines().any(|l| l == service), "{out}");
    }
    let (code, out, err) = call(A, &[socket, "grpc.health.v1.Health/Check"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(r#""status": "SERVING""#), "{out}");
    let level = ["-H", "guise-impersonation-level: impersonation"];
    let read = |uid: u32, path: &str| {
        let body = format!(r#"{{"path":"{path}"}}"#);
        let mut args = level.to_vec();
        args.extend(["-d", &body, socket, "guise.files.v1.Files/Read"]);
        call(uid, &args)
    };
    let (code, out, err) = read(A, "a.txt");
    assert_eq!(code, Some(0), "{out}{err}");
    // "a's secret", base64.
    assert!(out.contains(r#""data": "YSdzIHNlY3JldA==""#), "{out}");
    let (code, out, err) = read(B, "a.txt");
    assert_ne!(code, Some(0), "B read A's file: {out}");
    assert!(err.contains("PermissionDenied"), "{err}");
}

/// The `guise rpc call` client: its exit status and output.
#[test]
fn guise_rpc_call_is_a_client() {
    need_root!();
    let (_dir, files, server) = served(&[]);
    let s = server.socket.to_str().unwrap();
    let call = |uid: u32, args: &[&str]| {
        let mut all = vec!["rpc", "call", "--socket", s];
        all.extend_from_slice(args);
        common::server::as_uid(uid, &all)
    };
    // The client asks for Impersonation unless told otherwise (issue 22).
    let (code, out, _) = call(A, &["whoami"]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            "uid=61001 gid=61001 groups=61001 level=impersonation sid=S-1-22-1-61001"
        )
    );
    let (code, out, err) = call(A, &["read", "a.txt"]);
    assert_eq!((code, out.as_str()), (0, "a's secret"), "{err}");
    let (code, out, _) = call(A, &["--level", "impersonation", "read", "a.txt"]);
    assert_eq!((code, out.as_str()), (0, "a's secret"));
    // A lower level asked for says what to ask for instead.
    let (code, _, err) = call(A, &["--level", "identification", "read", "a.txt"]);
    assert_eq!(code, 1);
    assert!(err.contains("ERROR_BAD_IMPERSONATION_LEVEL"), "{err}");
    assert!(
        err.contains("ask for Impersonation")
            && err.contains("--level impersonation")
            && err.contains("guise-impersonation-level: impersonation"),
        "{err}"
    );
    let (code, out, err) = call(
        A,
        &[
            "--level",
            "impersonation",
            "write",
            "drop/n",
            "--data",
            "new",
            "--mode",
            "640",
        ],
    );
    assert_eq!((code, out.trim()), (0, "3"), "{err}");
    let meta = std::fs::metadata(files.join("drop/n")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o777, 0o640);
    let (code, out, _) = call(B, &["--level", "impersonation", "ls", "drop"]);
    assert_eq!((code, out.trim()), (0, "n"));
    let (code, _, err) = call(B, &["--level", "impersonation", "read", "drop/n"]);
    assert_eq!(code, 1);
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
}

/// Attack (issue 19): `guise rpc call` could not say which uid its server must
/// run as, so a user who squats the socket's path (a server of its own there)
/// got the caller's requests. `--server-uid` refuses a server of another uid
/// (its SO_PEERCRED) before anything is sent, as `guise cat --server-uid` does.
#[test]
fn attack_rpc_call_with_server_uid_refuses_a_server_of_another_uid() {
    need_root!();
    let (_dir, _files, server) = served(&[]);
    let s = server.socket.to_str().unwrap();
    let call = |uid: &str| {
        common::server::as_uid(
            A,
            &["rpc", "call", "--socket", s, "--server-uid", uid, "whoami"],
        )
    };
    let (code, out, err) = call("0");
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("uid=61001 "), "{out}");
    assert!(
        server
            .wait_for_line(Duration::from_secs(10), |l| l.contains("event=\"request\""))
            .is_some()
    );
    let (code, out, err) = call("4242");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("runs as uid 0, not 4242"), "{err}");
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    // Nothing reached the server as a call.
    let calls = server.log_so_far().matches("event=\"request\"").count();
    assert_eq!(calls, 1, "{}", server.log_so_far());
}

/// The Files service for the API tests: WhoAmI runs `check` with the call, the rest
/// is not implemented.
struct Probe {
    pool: Arc<guise::pool::ImpersonationPool>,
    calls: Arc<Mutex<Vec<guise::rpc::RpcCall>>>,
    outcome: Arc<Mutex<Vec<String>>>,
}

type Chunks =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<proto::Chunk, tonic::Status>> + Send>>;

/// The calling thread's effective uid, from the kernel.
fn thread_euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[tonic::async_trait]
impl proto::files_server::Files for Probe {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<proto::Identity>, tonic::Status> {
        let mut said = Vec::new();
        let call = guise::rpc::RpcCall::of(&request).unwrap();
        let current = guise::rpc::RpcCall::current().unwrap();
        said.push(format!(
            "current is this call: {}",
            current.id() == call.id()
        ));
        // Never on a thread of the runtime.
        let e = guise::rpc::impersonate_client(&request).unwrap_err();
        said.push(format!("on a runtime thread: {}", e.kind().win32_name()));
        // A worker impersonates the call by its handle (RpcImpersonateClient) and
        // reverts with it (RpcRevertToSelfEx); then no call is active on it.
        let c = call.clone();
        let on_worker = self
            .pool
            .run(move || {
                let mut w = Vec::new();
                let guard = c.impersonate_client().unwrap();
                w.push(format!("impersonating: {}", thread_euid()));
                guise::rpc::revert_to_self_ex(&c).unwrap();
                w.push(format!("after RpcRevertToSelfEx: {}", thread_euid()));
                drop(guard);
                w.push(format!(
                    "RpcRevertToSelf again: {}",
                    guise::rpc::revert_to_self()
                        .unwrap_err()
                        .kind()
                        .win32_name()
                ));
                // RpcRevertToSelf on a thread that impersonates the call.
                let guard = c.impersonate_client().unwrap();
                guise::rpc::revert_to_self().unwrap();
                w.push(format!("after RpcRevertToSelf: {}", thread_euid()));
                drop(guard);
                // Guards nest: with the inner one gone, the thread still impersonates
                // the call through the outer one, and RpcRevertToSelf ends it.
                let outer = c.impersonate_client().unwrap();
                let inner = c.impersonate_client().unwrap();
                drop(inner);
                w.push(format!("nested, inner dropped: {}", thread_euid()));
                guise::rpc::revert_to_self().unwrap();
                w.push(format!("after RpcRevertToSelf: {}", thread_euid()));
                drop(outer);
                w
            })
            .await
            .unwrap();
        said.extend(on_worker);
        self.calls.lock().unwrap().push(call.clone());
        self.outcome.lock().unwrap().extend(said);
        Ok(tonic::Response::new(proto::Identity {
            uid: call.peer().uid(),
            ..Default::default()
        }))
    }

    async fn who_am_i_there(
        &self,
        _: Request<proto::WhoAmIThereRequest>,
    ) -> Result<tonic::Response<proto::Identity>, tonic::Status> {
        Err(tonic::Status::unimplemented("not probed"))
    }

    type ReadStream = Chunks;

    async fn read(
        &self,
        _: Request<ReadRequest>,
    ) -> Result<tonic::Response<Chunks>, tonic::Status> {
        Err(tonic::Status::unimplemented("probe"))
    }

    async fn write(
        &self,
        _: Request<tonic::Streaming<WriteChunk>>,
    ) -> Result<tonic::Response<proto::WriteReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("probe"))
    }

    async fn list(
        &self,
        _: Request<ListRequest>,
    ) -> Result<tonic::Response<proto::ListReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("probe"))
    }
}

#[test]
fn rpc_no_call_active_and_revert_to_self_ex_from_another_worker() {
    need_root!();
    // Outside any call: RPC_S_NO_CALL_ACTIVE.
    assert_eq!(
        guise::rpc::revert_to_self().unwrap_err().kind(),
        ErrorKind::RpcNoCallActive
    );
    assert_eq!(
        guise::rpc::RpcCall::current().unwrap_err().kind(),
        ErrorKind::RpcNoCallActive
    );
    let pool = Arc::new(guise::pool::ImpersonationPool::new(2).unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let socket = dir.path().join("rpc");
    let probe = Probe {
        pool: Arc::clone(&pool),
        calls: Arc::default(),
        outcome: Arc::default(),
    };
    let (calls, outcome) = (Arc::clone(&probe.calls), Arc::clone(&probe.outcome));
    let rt = runtime();
    rt.block_on(async {
        let incoming =
            guise::rpc::UnixIncoming::bind(&socket, guise::rpc::RpcOptions::default()).unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(guise::rpc::RpcLayer::default())
                .add_service(proto::files_server::FilesServer::new(probe))
                .serve_with_incoming(incoming),
        );
        let mut a = client_as(&socket, A).await;
        let id = a
            .who_am_i(at(WhoAmIRequest {}, Some("impersonation")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(id.uid, A);
        server.abort();
    });
    assert_eq!(
        *outcome.lock().unwrap(),
        [
            "current is this call: true",
            "on a runtime thread: ERROR_CANNOT_IMPERSONATE",
            "impersonating: 61001",
            "after RpcRevertToSelfEx: 0",
            "RpcRevertToSelf again: RPC_S_NO_CALL_ACTIVE",
            "after RpcRevertToSelf: 0",
            "nested, inner dropped: 61001",
            "after RpcRevertToSelf: 0",
        ]
    );
    // The call has finished: its handle impersonates no more.
    let call = calls.lock().unwrap()[0].clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while call.is_active() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!call.is_active());
    let e = pool
        .run_blocking(move || call.impersonate_client().map(|_| ()))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RpcNoCallActive);
}

/// A server that takes connections without the kernel's view of the caller (a
/// plain listener instead of UnixIncoming) serves no call: the layer refuses.
#[test]
fn a_call_without_the_kernels_identity_is_refused() {
    need_root!();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("plain");
    let probe = Probe {
        pool: Arc::new(guise::pool::ImpersonationPool::new(1).unwrap()),
        calls: Arc::default(),
        outcome: Arc::default(),
    };
    let outcome = Arc::clone(&probe.outcome);
    let rt = runtime();
    rt.block_on(async {
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(guise::rpc::RpcLayer::default())
                .add_service(proto::files_server::FilesServer::new(probe))
                .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
        );
        let mut c = client_as(&socket, 0).await;
        let s = c
            .who_am_i(at(WhoAmIRequest {}, Some("impersonation")))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
        server.abort();
    });
    assert!(outcome.lock().unwrap().is_empty(), "the handler never ran");
}

/// A server lowers a caller's level, never raises it.
#[test]
fn the_server_lowers_the_level_never_raises_it() {
    need_root!();
    let level_of = |max: ImpersonationLevel, asked: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let socket = dir.path().join("rpc");
        let probe = Probe {
            pool: Arc::new(guise::pool::ImpersonationPool::new(1).unwrap()),
            calls: Arc::default(),
            outcome: Arc::default(),
        };
        let calls = Arc::clone(&probe.calls);
        runtime().block_on(async {
            let incoming =
                guise::rpc::UnixIncoming::bind(&socket, guise::rpc::RpcOptions::default()).unwrap();
            let server = tokio::spawn(
                tonic::transport::Server::builder()
                    .layer(guise::rpc::RpcLayer::with_max_level(max))
                    .add_service(proto::files_server::FilesServer::new(probe))
                    .serve_with_incoming(incoming),
            );
            let mut a = client_as(&socket, A).await;
            a.who_am_i(at(WhoAmIRequest {}, asked)).await.unwrap();
            server.abort();
        });
        calls.lock().unwrap()[0].level()
    };
    use ImpersonationLevel::*;
    assert_eq!(level_of(Identification, Some("delegation")), Identification);
    assert_eq!(level_of(Delegation, Some("impersonation")), Impersonation);
    assert_eq!(level_of(Delegation, None), Identification);
    assert_eq!(level_of(Impersonation, Some("anonymous")), Anonymous);
}

/// Reflection is on: a gRPC tool discovers the service without the proto file.
#[test]
fn reflection_lists_the_files_service() {
    need_root!();
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let (_dir, _files, server) = served(&[]);
    let names = runtime().block_on(async {
        let mut c = ServerReflectionClient::new(channel_as(&server.socket, B).await);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut replies = c
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        let reply = replies.message().await.unwrap().unwrap();
        match reply.message_response.unwrap() {
            MessageResponse::ListServicesResponse(l) => {
                l.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("{other:?}"),
        }
    });
    assert!(
        names.contains(&"guise.files.v1.Files".to_owned()),
        "{names:?}"
    );
}

/// Attack: one user keeps many calls in flight (stalled reads), to hold every
/// worker, descriptor and stream of the server.
#[test]
fn one_uids_calls_in_flight_are_capped_and_another_is_still_served() {
    need_root!();
    let (dir, files) = tree();
    sparse_file(&files.join("big"), A, 64 << 20);
    own_file(&files.join("b.txt"), B, 0o600, "b's");
    let server = start_rpc(dir.path(), &files, &[], &["--max-calls-per-uid", "3"]);
    runtime().block_on(async {
        let mut a = client_as(&server.socket, A).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            let req = ReadRequest {
                path: "big".into(),
                offset: 0,
                length: 0,
            };
            // Each read stays in flight: its chunks are never taken.
            held.push(a.read(at(req, Some("impersonation"))).await.unwrap());
        }
        let req = ReadRequest {
            path: "big".into(),
            offset: 0,
            length: 0,
        };
        let s = a
            .read(at(req, Some("impersonation")))
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
        let mut b = client_as(&server.socket, B).await;
        assert_eq!(
            read_all(&mut b, "b.txt", Some("impersonation"))
                .await
                .unwrap(),
            b"b's"
        );
        // Once A's calls end, A is served again.
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match a.who_am_i(at(WhoAmIRequest {}, None)).await {
                Ok(r) => {
                    assert_eq!(r.into_inner().uid, A);
                    break;
                }
                Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(s) => panic!("{s:?}"),
            }
        }
    });
}

/// A client whose process is in a pid namespace the server cannot see: the kernel
/// reports pid 0, which the server takes as unknown and still serves the client.
#[test]
fn a_client_outside_the_servers_pid_namespace_is_served() {
    need_root!();
    let (dir, files) = tree();
    own_file(&files.join("a.txt"), A, 0o600, "a's");
    let mut server = start_rpc(
        dir.path(),
        &files,
        &["unshare", "--pid", "--fork", "--kill-child=TERM"],
        &[],
    );
    runtime().block_on(async {
        let mut a = client_as(&server.socket, A).await;
        assert_eq!(
            read_all(&mut a, "a.txt", Some("impersonation"))
                .await
                .unwrap(),
            b"a's"
        );
    });
    // Stop the server itself (unshare's child), so that it logs and exits.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", server.pid())).unwrap();
    let guise_pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(guise_pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let log = server.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("op=\"read\"") && l.contains(" pid=0 ")),
        "{log}"
    );
}

/// A service whose `WhoAmI` runs a job on the pool that waits at a gate.
struct Stuck {
    pool: Arc<guise::pool::ImpersonationPool>,
    gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
    /// How many calls reached the handler (and queued a job).
    started: Arc<std::sync::atomic::AtomicUsize>,
}

#[tonic::async_trait]
impl proto::files_server::Files for Stuck {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<proto::Identity>, tonic::Status> {
        let call = guise::rpc::RpcCall::of(&request).unwrap();
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let gate = Arc::clone(&self.gate);
        call.run_as_client(&self.pool, move || {
            let (open, turned) = &*gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = turned.wait(open).unwrap();
            }
        })
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
        Ok(tonic::Response::new(proto::Identity {
            uid: call.peer().uid(),
            ..Default::default()
        }))
    }

    async fn who_am_i_there(
        &self,
        _: Request<proto::WhoAmIThereRequest>,
    ) -> Result<tonic::Response<proto::Identity>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck"))
    }

    type ReadStream = Chunks;

    async fn read(
        &self,
        _: Request<ReadRequest>,
    ) -> Result<tonic::Response<Chunks>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck"))
    }

    async fn write(
        &self,
        _: Request<tonic::Streaming<WriteChunk>>,
    ) -> Result<tonic::Response<proto::WriteReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck"))
    }

    async fn list(
        &self,
        _: Request<ListRequest>,
    ) -> Result<tonic::Response<proto::ListReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck"))
    }
}

/// The attack: a caller whose jobs are stuck starts calls and cancels them (a
/// reset stream, a `grpc-timeout`); the call's place in flight was given back when
/// the handler was dropped while its job stayed queued, so one uid could queue
/// jobs without bound. A cancelled call counts until its job has run.
#[test]
fn cancelled_calls_whose_jobs_wait_still_count_as_in_flight() {
    need_root!();
    const MAX: usize = 3;
    let pool = Arc::new(guise::pool::ImpersonationPool::new(1).unwrap());
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let socket = dir.path().join("rpc");
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let service = Stuck {
        pool: Arc::clone(&pool),
        gate: Arc::clone(&gate),
        started: Arc::clone(&started),
    };
    runtime().block_on(async {
        let incoming =
            guise::rpc::UnixIncoming::bind(&socket, guise::rpc::RpcOptions::default()).unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(guise::rpc::RpcLayer::default().max_calls_per_uid(MAX))
                .add_service(proto::files_server::FilesServer::new(service))
                .serve_with_incoming(incoming),
        );
        let a = client_as(&socket, A).await;
        let mut exhausted = 0;
        for _ in 0..4 * MAX {
            let mut r = at(WhoAmIRequest {}, Some("impersonation"));
            r.set_timeout(Duration::from_millis(300));
            match a.clone().who_am_i(r).await {
                Err(s) if s.code() == Code::ResourceExhausted => exhausted += 1,
                Err(s) if s.code() == Code::DeadlineExceeded || s.code() == Code::Cancelled => {}
                other => panic!("{other:?}"),
            }
            // The server drops the timed-out handler.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let queued = started.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            queued <= MAX && exhausted > 0,
            "{queued} calls queued jobs while {MAX} jobs of the uid waited ({exhausted} refused)"
        );
        // Once the jobs have run, the uid is served again.
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match a
                .clone()
                .who_am_i(at(WhoAmIRequest {}, Some("impersonation")))
                .await
            {
                Ok(r) => {
                    assert_eq!(r.into_inner().uid, A);
                    break;
                }
                Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(s) => panic!("{s:?}"),
            }
        }
        server.abort();
    });
}
