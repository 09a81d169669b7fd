//! Named pipes over Unix sockets with real clients: each client thread takes on an
//! identity (impersonation changes what SO_PEERCRED reports at connect), and the
//! server impersonates it for real file access.

#[allow(dead_code)]
#[path = "../common/accounts.rs"]
mod accounts;
#[path = "../common/mod.rs"]
mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{A, B, can_read};
use guise::pipe::tokio::AsyncPipeServer;
use guise::pipe::{ContextTracking, PipeAddr, PipeClient, PipeServer, SecurityQos, ServerOptions};
use guise::pool::ImpersonationPool;
use guise::security::{AccessMask, GenericMapping, access_check, sddl};
use guise::{ErrorKind, ImpersonationLevel, Token};

fn qos(level: ImpersonationLevel) -> SecurityQos {
    SecurityQos {
        level,
        ..SecurityQos::default()
    }
}

/// A temp directory anyone may traverse, with a socket path in it.
fn socket_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = dir.path().join("pipe");
    (dir, sock)
}

/// Runs `f` on a new thread that acts as `uid` (its effective ids) while it
/// connects and talks.
fn as_client<R: Send + 'static>(uid: u32, f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(move || {
        Token::from_ids(uid, uid, &[uid])
            .unwrap()
            .run_as(f)
            .unwrap()
    })
    .join()
    .unwrap()
}

/// Serves one connection: for each message (a path), impersonate and read it.
fn serve_reads(server: PipeServer, connections: usize) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut log = Vec::new();
        for _ in 0..connections {
            let mut conn = server.accept().unwrap();
            while let Some(msg) = conn.read_message().unwrap() {
                let path = String::from_utf8(msg).unwrap();
                let guard = conn.impersonate_client().unwrap();
                let reply = match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(e) => format!("denied: {}", e.kind()),
                };
                log.push(format!(
                    "{} {:?} {}",
                    conn.client().peer().uid(),
                    guard.level(),
                    reply
                ));
                drop(guard);
                conn.write_message(reply.as_bytes()).unwrap();
            }
        }
        log
    })
}

fn read_via(sock: &Path, uid: u32, level: ImpersonationLevel, file: &Path) -> String {
    let (sock, file) = (sock.to_owned(), file.to_owned());
    as_client(uid, move || {
        let mut c = PipeClient::connect(&PipeAddr::Path(sock), qos(level)).unwrap();
        String::from_utf8(c.transact(file.to_str().unwrap().as_bytes()).unwrap()).unwrap()
    })
}

#[test]
fn clients_read_their_own_files_through_the_server() {
    need_root!();
    let f = common::files();
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let handle = serve_reads(server, 6);
    let imp = ImpersonationLevel::Impersonation;
    assert_eq!(read_via(&sock, A, imp, &f.a), A.to_string());
    assert!(read_via(&sock, A, imp, &f.b).starts_with("denied"));
    assert_eq!(read_via(&sock, B, imp, &f.b), B.to_string());
    assert!(read_via(&sock, B, imp, &f.a).starts_with("denied"));
    // Identification level: the server may not act as the client at all.
    let id = ImpersonationLevel::Identification;
    assert!(read_via(&sock, A, id, &f.a).starts_with("denied"));
    assert!(read_via(&sock, A, id, &f.b).starts_with("denied"));
    let log = handle.join().unwrap();
    assert!(
        log[4].starts_with(&format!("{A} Identification")),
        "{log:?}"
    );
}

#[test]
fn identification_still_allows_access_checks_and_no_sqos_means_identification() {
    need_root!();
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let s2 = sock.clone();
    let client = std::thread::spawn(move || {
        as_client(A, move || {
            // A raw client that sends no SQOS frame: one message frame.
            let mut raw = std::os::unix::net::UnixStream::connect(&s2).unwrap();
            let mut frame = 3u32.to_le_bytes().to_vec();
            frame.extend_from_slice(&[0, b'h', b'i']);
            raw.write_all(&frame).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
        })
    });
    let mut conn = server.accept().unwrap();
    assert_eq!(conn.client().peer().uid(), A);
    // Before the first message: no impersonation, as ImpersonateNamedPipeClient says.
    assert_eq!(
        conn.impersonate_client().unwrap_err().kind(),
        ErrorKind::CannotImpersonate
    );
    assert_eq!(
        conn.client().token().unwrap_err().kind(),
        ErrorKind::CannotImpersonate
    );
    assert_eq!(conn.read_message().unwrap().unwrap(), b"hi");
    assert_eq!(conn.client().level(), ImpersonationLevel::Identification);
    let token = conn.client().token().unwrap();
    let sd = sddl::parse(&format!("O:SYG:SYD:(A;;FR;;;S-1-22-1-{A})"), None).unwrap();
    let fm = GenericMapping::FILE;
    assert!(
        access_check(&sd, &token, AccessMask::FILE_GENERIC_READ, &fm)
            .unwrap()
            .is_allowed()
    );
    assert!(
        !access_check(&sd, &token, AccessMask::FILE_WRITE_DATA, &fm)
            .unwrap()
            .is_allowed()
    );
    client.join().unwrap();
    // It still works after the client disconnected.
    assert_eq!(conn.read_message().unwrap(), None);
    let g = conn.impersonate_client().unwrap();
    assert_eq!(g.level(), ImpersonationLevel::Identification);
}

#[test]
fn dynamic_tracking_follows_each_message() {
    need_root!();
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let s2 = sock.clone();
    let client = std::thread::spawn(move || {
        use rustix::process::{Gid, Uid};
        use rustix::thread as t;
        let mut c = PipeClient::connect(
            &PipeAddr::Path(s2),
            SecurityQos {
                level: ImpersonationLevel::Impersonation,
                tracking: ContextTracking::Dynamic,
                effective_only: false,
            },
        )
        .unwrap();
        c.transact(b"as root").unwrap();
        // Per-message credentials are the sender's real ids: change them on this
        // thread (keeping saved uid 0 to change again).
        for id in [A, B] {
            t::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).unwrap();
            t::set_thread_res_gid(Gid::from_raw(id), Gid::from_raw(id), Gid::ROOT).unwrap();
            t::set_thread_res_uid(Uid::from_raw(id), Uid::from_raw(id), Uid::ROOT).unwrap();
            c.transact(format!("as {id}").as_bytes()).unwrap();
        }
    });
    let mut conn = server.accept().unwrap();
    let mut seen = Vec::new();
    while let Some(m) = conn.read_message().unwrap() {
        let t = conn.client().token().unwrap();
        seen.push((String::from_utf8(m).unwrap(), t.unix().uid().as_raw()));
        conn.write_message(b"ok").unwrap();
    }
    client.join().unwrap();
    assert_eq!(
        seen,
        vec![
            ("as root".into(), 0),
            (format!("as {A}"), A),
            (format!("as {B}"), B)
        ]
    );
}

#[test]
fn bad_clients_are_dropped_and_others_still_served() {
    need_root!();
    let (_d, sock) = socket_dir();
    let options = {
        let mut o = ServerOptions::default();
        o.max_message = 1024;
        o
    };
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), options).unwrap();
    let handle = std::thread::spawn(move || {
        let mut results = Vec::new();
        for _ in 0..4 {
            let mut conn = server.accept().unwrap();
            let r = loop {
                match conn.read_message() {
                    Ok(Some(m)) => {
                        conn.write_message(&m).unwrap();
                    }
                    Ok(None) => break "closed".to_string(),
                    Err(e) => break format!("error {:?}", e.kind()),
                }
            };
            results.push(r);
        }
        results
    });
    let raw = |bytes: Vec<u8>| {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.write_all(&bytes).unwrap();
    };
    // Garbage: an unknown frame kind.
    raw(vec![2, 0, 0, 0, 9, 9]);
    // An oversized frame.
    raw((4096u32)
        .to_le_bytes()
        .into_iter()
        .chain([0u8; 16])
        .collect());
    // Gone mid-frame.
    raw(vec![100, 0, 0, 0, 0, b'x']);
    // A good client is still served.
    let mut good =
        PipeClient::connect(&PipeAddr::Path(sock.clone()), SecurityQos::default()).unwrap();
    assert_eq!(good.transact(b"echo").unwrap(), b"echo");
    drop(good);
    let results = handle.join().unwrap();
    assert_eq!(
        results[..3],
        [
            "error InvalidParameter",
            "error InvalidParameter",
            "error InvalidParameter"
        ]
    );
    assert_eq!(results[3], "closed");
}

#[test]
fn squatting_is_refused() {
    need_root!();
    let (dir, sock) = socket_dir();
    std::fs::write(&sock, "not a socket").unwrap();
    let e = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied);
    assert!(e.to_string().contains("not a socket"), "{e}");
    std::fs::remove_file(&sock).unwrap();
    // Another user's socket.
    let other = dir.path().join("other");
    let l = std::os::unix::net::UnixListener::bind(&other).unwrap();
    std::os::unix::fs::chown(&other, Some(A), Some(A)).unwrap();
    let e = PipeServer::bind(PipeAddr::Path(other.clone()), ServerOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains(&format!("belongs to uid {A}")),
        "{e}"
    );
    drop(l);
    // A live server's socket.
    let live = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let e = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap_err();
    assert!(e.to_string().contains("in use"), "{e}");
    drop(live);
    // Our own stale socket is replaced; the mode is the server's.
    let _stale = std::os::unix::net::UnixListener::bind(&sock).map(drop);
    let s = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o666
    );
    drop(s);
    // The policy hook refuses a client.
    let refuse_a: guise::pipe::PeerPolicy = Arc::new(|p| p.uid() != A);
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), {
        let mut o = ServerOptions::default();
        o.policy = Some(refuse_a);
        o
    })
    .unwrap();
    let s2 = sock.clone();
    let refused = std::thread::spawn(move || {
        as_client(A, move || {
            // Refused: the server closes the connection, before or after the client
            // sent its first frame.
            match PipeClient::connect(&PipeAddr::Path(s2), SecurityQos::default()) {
                Err(_) => true,
                Ok(mut c) => c.transact(b"hello").is_err(),
            }
        })
    });
    let s3 = sock.clone();
    let accepted = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        as_client(B, move || {
            let mut c = PipeClient::connect(&PipeAddr::Path(s3), SecurityQos::default()).unwrap();
            c.send(b"hello").unwrap();
        })
    });
    let conn = server.accept().unwrap();
    assert_eq!(conn.client().peer().uid(), B);
    assert!(refused.join().unwrap(), "A was disconnected");
    accepted.join().unwrap();
}

#[test]
fn many_clients_never_see_another_identity() {
    need_root!();
    const IDS: u32 = 8;
    const CLIENTS: usize = 64;
    const REQUESTS: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for i in 0..IDS {
        let uid = 62000 + i;
        let p = dir.path().join(format!("{uid}.txt"));
        std::fs::write(&p, uid.to_string()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    }
    let sock = dir.path().join("pipe");
    let root = dir.path().to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool = Arc::new(ImpersonationPool::new(8).unwrap());
    let server = rt
        .block_on(async {
            AsyncPipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default())
        })
        .unwrap();
    rt.spawn(async move {
        loop {
            let Ok(mut conn) = server.accept().await else {
                return;
            };
            let pool = Arc::clone(&pool);
            let root = root.clone();
            tokio::spawn(async move {
                while let Ok(Some(msg)) = conn.read_message().await {
                    let path = root.join(String::from_utf8_lossy(&msg).as_ref());
                    let reply = conn
                        .run_as_client(&pool, move || {
                            // A worker always starts at the process identity.
                            std::fs::read_to_string(&path).unwrap_or_else(|_| "denied".into())
                        })
                        .await
                        .unwrap();
                    conn.write_message(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    let per_client = REQUESTS / CLIENTS + 1;
    let mut handles = Vec::new();
    for c in 0..CLIENTS {
        let sock = sock.clone();
        handles.push(std::thread::spawn(move || {
            let uid = 62000 + (c as u32 % IDS);
            as_client(uid, move || {
                let mut client = PipeClient::connect(
                    &PipeAddr::Path(sock),
                    qos(ImpersonationLevel::Impersonation),
                )
                .unwrap();
                let (mut served, mut wrong) = (0usize, 0usize);
                for r in 0..per_client {
                    // Mostly its own file; every fourth request another identity's.
                    let target = if r % 4 == 3 {
                        62000 + (uid - 62000 + 1) % IDS
                    } else {
                        uid
                    };
                    let reply = client.transact(format!("{target}.txt").as_bytes()).unwrap();
                    let reply = String::from_utf8(reply).unwrap();
                    let expected = if target == uid {
                        uid.to_string()
                    } else {
                        "denied".into()
                    };
                    if reply == expected {
                        served += 1
                    } else {
                        wrong += 1
                    }
                }
                (served, wrong)
            })
        }));
    }
    let (mut served, mut wrong) = (0, 0);
    for h in handles {
        let (s, w) = h.join().unwrap();
        served += s;
        wrong += w;
    }
    assert_eq!(wrong, 0, "a reply came from another identity");
    assert!(served >= REQUESTS, "{served} requests");
    assert!(
        can_read(&dir.path().join("62000.txt")),
        "the test thread is still root"
    );
}

#[test]
fn abstract_names_work_too() {
    need_root!();
    let name = format!("guise-test-{}", std::process::id());
    let server =
        PipeServer::bind(PipeAddr::Abstract(name.clone()), ServerOptions::default()).unwrap();
    let client = std::thread::spawn(move || {
        as_client(A, move || {
            let mut c = PipeClient::connect(
                &PipeAddr::Abstract(name),
                qos(ImpersonationLevel::Impersonation),
            )
            .unwrap();
            c.transact(b"ping").unwrap()
        })
    });
    let mut conn = server.accept().unwrap();
    assert_eq!(conn.read_message().unwrap().unwrap(), b"ping");
    assert_eq!(conn.client().peer().uid(), A);
    assert_eq!(conn.client().level(), ImpersonationLevel::Impersonation);
    conn.write_message(b"pong").unwrap();
    assert_eq!(client.join().unwrap(), b"pong");
}

#[test]
fn a_worker_always_returns_to_the_process_identity() {
    need_root!();
    let pool = ImpersonationPool::new(1).unwrap();
    let a = Token::from_ids(A, A, &[A]).unwrap();
    let b = Token::from_ids(B, B, &[B]).unwrap();
    // A job that leaks an impersonation: a guard it forgets.
    let tid = pool
        .run_as_blocking(a.clone(), move || {
            std::mem::forget(b.impersonate().unwrap());
            rustix::thread::gettid().as_raw_nonzero().get()
        })
        .unwrap();
    // The next job sees only its own token, and afterwards the worker is the process.
    let uid_line = pool
        .run_as_blocking(a, || common::thread_status("Uid"))
        .unwrap();
    assert_eq!(uid_line, format!("0 {A} 0 {A}"));
    std::thread::sleep(std::time::Duration::from_millis(50));
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        ["Uid:", "0", "0", "0", "0"]
    );
    // A panic in the closure reaches the caller, and the worker goes on.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.run_as_blocking(Token::from_ids(A, A, &[A]).unwrap(), || {
            panic!("job panics")
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(
        pool.run_as_blocking(Token::from_ids(B, B, &[B]).unwrap(), || 7)
            .unwrap(),
        7
    );
    // A pool cannot be started by a thread that impersonates.
    let _g = Token::from_ids(A, A, &[A]).unwrap().impersonate().unwrap();
    assert_eq!(
        ImpersonationPool::new(1).unwrap_err().kind(),
        ErrorKind::CannotImpersonate
    );
}

/// Attack: one identity's jobs block (a file on a stalled mount, a FUSE server the
/// client runs) on every worker they can get, so that no one else is served. One
/// uid's jobs occupy at most its share of the workers (half, rounded up); its
/// further jobs wait in its own queue while another identity's job runs at once.
#[test]
fn attack_one_identitys_blocked_jobs_never_hold_every_pool_worker() {
    need_root!();
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    let pool = Arc::new(ImpersonationPool::new(4).unwrap());
    assert_eq!(pool.share_per_uid(), 2);
    let a = Token::from_ids(A, A, &[A]).unwrap();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Arc::new(std::sync::Mutex::new(held));
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Six blocking jobs of A: through run_as, run_as_blocking and run_for.
    let mut jobs = Vec::new();
    for n in 0..6 {
        let (pool, a) = (Arc::clone(&pool), a.clone());
        let (held, running, most) = (Arc::clone(&held), Arc::clone(&running), Arc::clone(&most));
        jobs.push(std::thread::spawn(move || {
            let job = move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = held.lock().unwrap().recv();
                running.fetch_sub(1, Ordering::SeqCst);
                rustix::process::geteuid().as_raw()
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            match n % 3 {
                0 => rt.block_on(pool.run_as(a, job)).unwrap(),
                1 => pool.run_as_blocking(a, job).unwrap(),
                _ => rt.block_on(pool.run_for(A, job)).unwrap(),
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while running.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        running.load(Ordering::SeqCst),
        2,
        "A runs on its share only"
    );
    // Another identity is served at once, while A's jobs hold their share.
    let t = Instant::now();
    let b = pool
        .run_as_blocking(Token::from_ids(B, B, &[B]).unwrap(), || {
            rustix::process::geteuid().as_raw()
        })
        .unwrap();
    assert_eq!(b, B);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // So is work for no one in particular.
    assert_eq!(pool.run_blocking(|| 7).unwrap(), 7);
    // Released, A's jobs all run, never more than two at once.
    for _ in 0..6 {
        release.send(()).unwrap();
    }
    let uids: Vec<u32> = jobs.into_iter().map(|j| j.join().unwrap()).collect();
    // run_for runs at the process identity, counted as A's.
    let expected: Vec<u32> = (0..6).map(|n| if n % 3 == 2 { 0 } else { A }).collect();
    assert_eq!(uids, expected);
    assert_eq!(most.load(Ordering::SeqCst), 2);
}

/// Attack: while the server starts, another user swaps the socket path for a symlink
/// to a file of their choosing, hoping the server's chmod follows it. The mode is set
/// as the socket is made, with no path lookup after it.
#[test]
fn symlink_swap_during_bind_never_changes_another_files_mode() {
    need_root!();
    use std::os::unix::fs::FileTypeExt;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let (dir, sock) = socket_dir();
    let target = dir.path().join("target");
    std::fs::write(&target, "precious").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (stop, swaps) = (Arc::clone(&stop), Arc::clone(&swaps));
        let (sock, target, tmp) = (sock.clone(), target.clone(), dir.path().join("tmp"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // As soon as the server's socket appears, replace it by a symlink in
                // one step.
                let is_socket =
                    std::fs::symlink_metadata(&sock).is_ok_and(|m| m.file_type().is_socket());
                if is_socket {
                    let _ = std::fs::remove_file(&tmp);
                    std::os::unix::fs::symlink(&target, &tmp).unwrap();
                    if std::fs::rename(&tmp, &sock).is_ok() {
                        swaps.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let (mut bound, started) = (0u64, std::time::Instant::now());
    while swaps.load(Ordering::Relaxed) < 1000 && started.elapsed().as_secs() < 30 {
        let _ = std::fs::remove_file(&sock);
        if let Ok(server) = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default())
        {
            bound += 1;
            drop(server);
        }
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "the server changed the mode of another file");
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    let swaps = swaps.load(Ordering::Relaxed);
    assert!(swaps >= 1000, "only {swaps} swaps in {bound} starts");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
}

/// Attack (double hop): a thread of a root process acts as user A (real uid 0,
/// effective A) and talks to a server with dynamic tracking at Impersonation level.
/// The kernel attaches the sender's real uid 0 to each message unless it sends its
/// own; a root sender may also claim uid 0 outright. Neither is ever served as root.
#[test]
fn dynamic_tracking_never_serves_a_user_connection_as_root() {
    need_root!();
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, UCred};
    let f = common::files();
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let (a_path, root_path) = (f.a.clone(), f.root_only.clone());
    let client = std::thread::spawn(move || {
        as_client(A, move || {
            let mut c = PipeClient::connect(
                &PipeAddr::Path(sock),
                SecurityQos {
                    level: ImpersonationLevel::Impersonation,
                    tracking: ContextTracking::Dynamic,
                    effective_only: false,
                },
            )
            .unwrap();
            let mut replies = Vec::new();
            // guise's client: the thread's effective ids travel with each message.
            for p in [&a_path, &root_path] {
                replies.push(c.transact(p.to_str().unwrap().as_bytes()).unwrap());
            }
            let frame = |p: &Path| {
                let body = p.to_str().unwrap().as_bytes();
                let mut v = ((body.len() + 1) as u32).to_le_bytes().to_vec();
                v.push(0);
                v.extend_from_slice(body);
                v
            };
            // A raw sender: the kernel attaches the real uid, 0.
            for p in [&a_path, &root_path] {
                c.stream_mut().write_all(&frame(p)).unwrap();
                replies.push(c.receive().unwrap().unwrap());
            }
            // A sender claiming uid 0 itself (allowed: it is its real uid).
            for p in [&a_path, &root_path] {
                let mut space =
                    [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
                let mut anc = SendAncillaryBuffer::new(&mut space);
                anc.push(SendAncillaryMessage::ScmCredentials(UCred {
                    pid: rustix::process::getpid(),
                    uid: rustix::process::Uid::ROOT,
                    gid: rustix::process::Gid::ROOT,
                }));
                let bytes = frame(p);
                let n = rustix::net::sendmsg(
                    &*c.stream_mut(),
                    &[std::io::IoSlice::new(&bytes)],
                    &mut anc,
                    SendFlags::empty(),
                )
                .unwrap();
                assert_eq!(n, bytes.len());
                replies.push(c.receive().unwrap().unwrap());
            }
            replies
        })
    });
    let mut conn = server.accept().unwrap();
    let mut seen = Vec::new();
    while let Some(msg) = conn.read_message().unwrap() {
        let path = String::from_utf8(msg).unwrap();
        let token = conn.client().token().unwrap();
        let guard = conn.impersonate_client().unwrap();
        let reply = std::fs::read_to_string(&path).unwrap_or_else(|_| "denied".into());
        seen.push((token.unix().uid().as_raw(), guard.level()));
        drop(guard);
        conn.write_message(reply.as_bytes()).unwrap();
    }
    let replies: Vec<String> = client
        .join()
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r).unwrap())
        .collect();
    let imp = ImpersonationLevel::Impersonation;
    let id = ImpersonationLevel::Identification;
    assert_eq!(replies[0], A.to_string(), "A's own file is served");
    assert_eq!(replies[1], "denied", "the root-only file is denied");
    assert_eq!(seen[..2], [(A, imp), (A, imp)]);
    for (i, r) in replies[2..].iter().enumerate() {
        assert_eq!(r, "denied", "message {} was served as root", i + 2);
    }
    assert_eq!(
        seen[2..],
        [(A, id), (A, id), (A, id), (A, id)],
        "never root"
    );
}

/// Attack: server code run for a client below Impersonation level opens files
/// anyway (a bug, or a library it calls). The pool runs such work on workers the
/// kernel lets open nothing: not world-readable files, not a new file in a
/// world-writable directory.
#[test]
fn pool_work_below_impersonation_can_open_no_file() {
    need_root!();
    let pool = ImpersonationPool::new(2).unwrap();
    assert!(pool.sandboxed(), "Landlock is available on this kernel");
    let f = common::files();
    let drop_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(drop_dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let open_world = |level: ImpersonationLevel| {
        let token = Token::from_ids(A, A, &[A])
            .unwrap()
            .duplicate(level, guise::TokenType::Impersonation)
            .unwrap();
        let (a, dir) = (f.a.clone(), drop_dir.path().to_owned());
        pool.run_as_blocking(token, move || {
            let passwd = std::fs::read("/etc/passwd").is_ok();
            let created = std::fs::write(dir.join(format!("{level}")), "x").is_ok();
            let own = std::fs::read(&a).is_ok();
            (passwd, created, own)
        })
        .unwrap()
    };
    for level in [
        ImpersonationLevel::Anonymous,
        ImpersonationLevel::Identification,
    ] {
        assert_eq!(
            open_world(level),
            (false, false, false),
            "{level}: a thread below Impersonation opened a file"
        );
    }
    assert_eq!(
        open_world(ImpersonationLevel::Impersonation),
        (true, true, true),
        "Impersonation level acts as the client"
    );
    assert_eq!(std::fs::read_dir(drop_dir.path()).unwrap().count(), 1);
}

/// Attack: a user's dynamic-tracking connection carries a message written by
/// another process (the descriptor passed on, or a set-id helper's write); the
/// kernel names that writer. It never gets more than the connection proved.
#[test]
fn dynamic_tracking_never_takes_another_users_identity_from_a_users_connection() {
    need_root!();
    let f = common::files();
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let b_path = f.b.clone();
    let client = std::thread::spawn(move || {
        let c = as_client(A, move || {
            PipeClient::connect(
                &PipeAddr::Path(sock),
                SecurityQos {
                    level: ImpersonationLevel::Impersonation,
                    tracking: ContextTracking::Dynamic,
                    effective_only: false,
                },
            )
            .unwrap()
        });
        // B, another process as far as the kernel can tell, writes on A's socket.
        std::thread::spawn(move || {
            use rustix::process::{Gid, Uid};
            let mut c = c;
            rustix::thread::set_thread_res_gid(
                Gid::from_raw(B),
                Gid::from_raw(B),
                Gid::from_raw(B),
            )
            .unwrap();
            rustix::thread::set_thread_res_uid(
                Uid::from_raw(B),
                Uid::from_raw(B),
                Uid::from_raw(B),
            )
            .unwrap();
            let body = b_path.to_str().unwrap().as_bytes().to_vec();
            let mut frame = ((body.len() + 1) as u32).to_le_bytes().to_vec();
            frame.push(0);
            frame.extend_from_slice(&body);
            c.stream_mut().write_all(&frame).unwrap();
            c.receive().unwrap().unwrap()
        })
        .join()
        .unwrap()
    });
    let mut conn = server.accept().unwrap();
    let msg = conn.read_message().unwrap().unwrap();
    let token = conn.client().token().unwrap();
    let reply = {
        let _g = conn.impersonate_client().unwrap();
        std::fs::read_to_string(String::from_utf8(msg).unwrap()).unwrap_or_else(|_| "denied".into())
    };
    conn.write_message(reply.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(client.join().unwrap()).unwrap(), "denied");
    assert_eq!(token.unix().uid(), A, "the connection's identity, not B's");
    assert_eq!(
        token.impersonation_level(),
        Some(ImpersonationLevel::Identification)
    );
}

/// Attack: a client whose thread is at the sentinel identity (a guise service
/// acting for an Identification-level client) asks for Impersonation, to act as the
/// sentinel with a normal umask and leave files other sentinel threads own.
#[test]
fn the_sentinel_identity_is_never_served_above_identification() {
    need_root!();
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let client = std::thread::spawn(move || {
        // A thread of guise below Impersonation level reaches no path, a pipe's
        // neither (its root is an empty directory; Windows opens no object for
        // it)...
        let refused = Token::from_ids(A, A, &[A])
            .unwrap()
            .duplicate(
                ImpersonationLevel::Identification,
                guise::TokenType::Impersonation,
            )
            .unwrap()
            .run_as(|| {
                assert_eq!(rustix::process::geteuid().as_raw(), 0xFFFF_FFFE);
                PipeClient::connect(
                    &PipeAddr::Path(sock.clone()),
                    qos(ImpersonationLevel::Impersonation),
                )
                .is_err()
            })
            .unwrap();
        assert!(
            refused,
            "a thread below Impersonation level reached the pipe"
        );
        // ...so the sentinel's ids are taken here without guise, as a process
        // running as them would have them.
        use rustix::process::{Gid, Uid};
        use rustix::thread as t;
        t::set_thread_groups(&[]).unwrap();
        t::set_thread_res_gid(None, Gid::from_raw(0xFFFF_FFFE), None).unwrap();
        t::set_thread_res_uid(None, Uid::from_raw(0xFFFF_FFFE), None).unwrap();
        let mut c = PipeClient::connect(
            &PipeAddr::Path(sock),
            qos(ImpersonationLevel::Impersonation),
        )
        .unwrap();
        c.transact(b"hi").unwrap()
    });
    let mut conn = server.accept().unwrap();
    conn.read_message().unwrap().unwrap();
    let token = conn.client().token().unwrap();
    conn.write_message(b"ok").unwrap();
    client.join().unwrap();
    assert_eq!(token.unix().uid(), 0xFFFF_FFFE);
    assert_eq!(
        token.impersonation_level(),
        Some(ImpersonationLevel::Identification)
    );
}

/// A frame of the pipe's wire format, written by hand as a client without guise's
/// library would: a 4-byte little-endian length, the kind, the payload.
fn raw_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ((payload.len() + 1) as u32).to_le_bytes().to_vec();
    f.push(kind);
    f.extend_from_slice(payload);
    f
}

/// Attack (double hop, without guise's client): a thread of a root service acts
/// for user A (effective uid A, real uid 0) and writes to a dynamic-tracking pipe
/// the service connected as root. The kernel attaches the sender's real ids, root's,
/// so the message said root and was served as root. A message that says root on a
/// root connection is root's only while no thread of the client process acts for
/// another user; otherwise it is served at Identification level.
#[test]
fn attack_a_root_clients_thread_acting_for_a_user_without_guises_client_is_not_served_as_root() {
    need_root!();
    use std::io::Read;
    let (_d, sock) = socket_dir();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let client = std::thread::spawn(move || {
        use rustix::process::Uid;
        use rustix::thread as t;
        let mut stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        // Impersonation level (2), dynamic tracking (1), not effective-only.
        stream
            .write_all(&raw_frame(1, &[b'G', b'S', b'Q', b'1', 2, 1, 0]))
            .unwrap();
        let mut send = |text: &[u8]| {
            stream.write_all(&raw_frame(0, text)).unwrap();
            let mut header = [0u8; 5];
            stream.read_exact(&mut header).unwrap();
            let len = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
            let mut reply = vec![0u8; len - 1];
            stream.read_exact(&mut reply).unwrap();
        };
        send(b"as root");
        t::set_thread_res_uid(Uid::ROOT, Uid::from_raw(A), Uid::ROOT).unwrap();
        send(b"acting for A");
        t::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).unwrap();
        send(b"as root again");
    });
    let mut conn = server.accept().unwrap();
    let mut seen = Vec::new();
    while let Some(m) = conn.read_message().unwrap() {
        let t = conn.client().token().unwrap();
        seen.push((
            String::from_utf8(m).unwrap(),
            t.unix().uid().as_raw(),
            t.impersonation_level(),
        ));
        conn.write_message(b"ok").unwrap();
    }
    client.join().unwrap();
    use ImpersonationLevel::{Identification, Impersonation};
    assert_eq!(
        seen,
        [
            ("as root".into(), 0, Some(Impersonation)),
            ("acting for A".into(), 0, Some(Identification)),
            ("as root again".into(), 0, Some(Impersonation)),
        ]
    );
}

/// Attack: on a root connection with dynamic tracking, a message carries the
/// explicit credentials of alice, whose group a file denies (mode 0604, group
/// guisestaff): the identity came with its gid only, so the group's denial was
/// bypassed. It comes with its account's groups now; an identity without an
/// account is only identified.
#[test]
fn attack_explicit_credentials_on_a_root_connection_keep_the_users_group_denial() {
    need_root!();
    const ALICE: u32 = 61201;
    const STAFF: u32 = 61300;
    const NO_ACCOUNT: u32 = 61299;
    let _accounts = accounts::accounts();
    let (dir, sock) = socket_dir();
    let denied = dir.path().join("staff-denied");
    std::fs::write(&denied, "not for staff").unwrap();
    std::fs::set_permissions(&denied, std::fs::Permissions::from_mode(0o604)).unwrap();
    std::os::unix::fs::chown(&denied, Some(0), Some(STAFF)).unwrap();
    let server = PipeServer::bind(PipeAddr::Path(sock.clone()), ServerOptions::default()).unwrap();
    let client = std::thread::spawn(move || {
        use rustix::process::{Gid, Uid};
        use rustix::thread as t;
        let mut c = PipeClient::connect(
            &PipeAddr::Path(sock),
            SecurityQos {
                level: ImpersonationLevel::Impersonation,
                tracking: ContextTracking::Dynamic,
                effective_only: false,
            },
        )
        .unwrap();
        // guise's client sends the thread's effective ids with each message.
        for id in [ALICE, NO_ACCOUNT] {
            t::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).unwrap();
            t::set_thread_res_gid(Gid::ROOT, Gid::from_raw(id), Gid::ROOT).unwrap();
            t::set_thread_res_uid(Uid::ROOT, Uid::from_raw(id), Uid::ROOT).unwrap();
            c.transact(format!("as {id}").as_bytes()).unwrap();
        }
    });
    let mut conn = server.accept().unwrap();
    assert_eq!(conn.client().peer().uid(), 0, "a connection made as root");
    let mut seen = Vec::new();
    while let Some(m) = conn.read_message().unwrap() {
        seen.push((
            String::from_utf8(m).unwrap(),
            conn.client().token().unwrap(),
        ));
        conn.write_message(b"ok").unwrap();
    }
    client.join().unwrap();
    let (_, alice) = &seen[0];
    assert_eq!(alice.unix().uid().as_raw(), ALICE);
    assert!(alice.unix().groups().contains(&STAFF), "{alice:?}");
    assert_eq!(
        alice.impersonation_level(),
        Some(ImpersonationLevel::Impersonation)
    );
    let read = alice
        .clone()
        .run_as(|| std::fs::read_to_string(&denied))
        .unwrap();
    assert_eq!(
        read.unwrap_err().kind(),
        std::io::ErrorKind::PermissionDenied,
        "the group's denial holds for alice"
    );
    let (_, nobody) = &seen[1];
    assert_eq!(nobody.unix().uid().as_raw(), NO_ACCOUNT);
    assert_eq!(
        nobody.impersonation_level(),
        Some(ImpersonationLevel::Identification)
    );
}
