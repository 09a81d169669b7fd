//! Attacks on the Kerberos transport from the network path, on a real realm: a
//! man in the middle between a client and the acceptor who replays the client's
//! authenticator, replays a sealed data frame, or changes one. A test binary of
//! its own: it sets the process's `KRB5CCNAME` and `KRB5_CONFIG`, once.

#[path = "../../guise/tests/common/accounts.rs"]
#[allow(dead_code)]
mod accounts;
mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::kdc::{self, Realm};
use guise::ErrorKind;
use guise::kerberos::{Acceptor, GssStream, Initiator, KerberosOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const SERVICE: &str = "guise/localhost@GUISE.TEST";

/// The realm's processes, stopped at exit by [`stop_realm`].
static PIDS: [std::sync::atomic::AtomicI32; 2] = [
    std::sync::atomic::AtomicI32::new(0),
    std::sync::atomic::AtomicI32::new(0),
];

extern "C" fn stop_realm() {
    for pid in &PIDS {
        let pid = pid.load(std::sync::atomic::Ordering::Relaxed);
        if pid > 0 {
            // SAFETY: kill(2) with a pid this process started; nothing else.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// One realm, alice's ticket and the service's keys for every test here.
struct Shared {
    _realm: Realm,
    _accounts: accounts::Accounts,
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    acceptor: Acceptor,
}

/// The shared set-up, or `None` where it cannot run (then the test is skipped,
/// or fails under CI=true).
fn shared() -> Option<&'static Shared> {
    static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
    if !common::is_root() || !kdc::available() {
        return None;
    }
    SHARED
        .get_or_init(|| {
            let accounts = accounts::accounts();
            let realm = Realm::start();
            // The realm lives in a static, never dropped: its KDC stops at exit.
            for (i, pid) in realm.pids().into_iter().enumerate().take(PIDS.len()) {
                PIDS[i].store(pid as i32, std::sync::atomic::Ordering::Relaxed);
            }
            // SAFETY: registers a function that only reads atomics and sends
            // signals, safe to run at exit.
            unsafe { libc::atexit(stop_realm) };
            realm.add_user("alice", accounts::PASSWORD);
            let keytab = realm.add_service(SERVICE);
            let dir = tempfile::tempdir().unwrap();
            let cache = dir.path().join("alice.cc");
            realm.kinit("alice", accounts::PASSWORD, &cache, 0);
            // The process's cache is one any thread could reach, as a kernel
            // keyring or KCM cache may be: a thread that impersonates a client
            // must still not use it.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
            std::fs::set_permissions(&cache, PermissionsExt::from_mode(0o644)).unwrap();
            // SAFETY: set once, before the runtime's threads exist; the tests of
            // this binary read these only through krb5, after this.
            unsafe {
                std::env::set_var("KRB5_CONFIG", realm.krb5_conf());
                std::env::set_var("KRB5CCNAME", format!("FILE:{}", cache.display()));
            }
            // Built on this thread, so its threads see the test accounts.
            let rt = common::runtime();
            let acceptor =
                Acceptor::from_keytab(&keytab, Some(SERVICE), KerberosOptions::default()).unwrap();
            Some(Shared {
                _realm: realm,
                _accounts: accounts,
                _dir: dir,
                rt,
                acceptor,
            })
        })
        .as_ref()
}

/// Runs a test's future on the runtime's own threads (made where the test accounts
/// exist), never on the calling test thread: a blocking thread tokio starts from
/// a test thread would not see them.
fn run(s: &'static Shared, f: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Err(e) = s.rt.block_on(s.rt.spawn(f)) {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! need_shared {
    () => {{
        need_root!();
        if common::skip::skip_unless(
            kdc::available(),
            "MIT Kerberos (krb5-kdc, krb5-admin-server, krb5-user)",
        ) {
            return;
        }
        shared().expect("the shared realm")
    }};
}

/// What the man in the middle does to the client's first data frame: passes it,
/// sends it twice, or flips one bit of it.
#[derive(Clone, Copy)]
enum Mitm {
    Pass,
    Replay,
    Flip,
}

/// Copies the client's bytes to the server frame by frame (after the 8-byte
/// greeting), recording them, and applies `mitm` to the first data frame
/// (kind 4).
async fn forward_client(
    mut from: tokio::io::ReadHalf<DuplexStream>,
    mut to: tokio::io::WriteHalf<DuplexStream>,
    mitm: Mitm,
    record: Arc<Mutex<Vec<u8>>>,
) {
    let mut magic = [0u8; 8];
    if from.read_exact(&mut magic).await.is_err() {
        return;
    }
    record.lock().unwrap().extend_from_slice(&magic);
    let _ = to.write_all(&magic).await;
    let mut done = false;
    loop {
        let mut head = [0u8; 5];
        if from.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len];
        if from.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut frame = head.to_vec();
        frame.extend_from_slice(&body);
        record.lock().unwrap().extend_from_slice(&frame);
        if head[0] == 4 && !done {
            done = true;
            match mitm {
                Mitm::Pass => {}
                Mitm::Replay => {
                    let _ = to.write_all(&frame).await;
                }
                Mitm::Flip => {
                    let at = 5 + len / 2;
                    frame[at] ^= 0x01;
                }
            }
        }
        if to.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// A client and the acceptor joined through the man in the middle: the client's
/// stream, the server's (once authenticated), and the client's bytes so far.
async fn through_mitm(
    s: &Shared,
    mitm: Mitm,
    delegate: bool,
) -> (
    GssStream<DuplexStream>,
    (GssStream<DuplexStream>, guise::client::PeerIdentity),
    Arc<Mutex<Vec<u8>>>,
) {
    let (client_end, middle_client) = tokio::io::duplex(1 << 16);
    let (middle_server, server_end) = tokio::io::duplex(1 << 16);
    let record = Arc::new(Mutex::new(Vec::new()));
    let (mc_read, mut mc_write) = tokio::io::split(middle_client);
    let (mut ms_read, ms_write) = tokio::io::split(middle_server);
    tokio::spawn(forward_client(mc_read, ms_write, mitm, Arc::clone(&record)));
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut ms_read, &mut mc_write).await;
    });
    let initiator =
        tokio::task::spawn_blocking(move || Initiator::start("guise@localhost", delegate))
            .await
            .unwrap()
            .unwrap();
    let address = "192.0.2.1:1".parse().unwrap();
    let (server, client) = tokio::join!(
        s.acceptor.accept(server_end, address),
        initiator.connect(client_end)
    );
    let (server, peer) = server.unwrap();
    assert_eq!(peer.uid(), 61201);
    (client.unwrap(), (server, peer), record)
}

/// Attack: a man in the middle sends a sealed frame of the client's a second
/// time (a request done twice). The frame number gives it away: the server's
/// stream fails instead of delivering the bytes again.
#[test]
fn attack_a_replayed_data_frame_is_refused() {
    let s = need_shared!();
    run(s, async move {
        let (mut client, (mut server, _), _) = through_mitm(s, Mitm::Replay, false).await;
        client.write_all(b"pay bob 100").await.unwrap();
        client.flush().await.unwrap();
        let mut got = [0u8; 11];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pay bob 100");
        let mut more = [0u8; 11];
        let e = server.read_exact(&mut more).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        // GSSAPI's own sequence check sees it first; guise's frame number would.
        let text = e.to_string();
        assert!(
            text.contains("duplicate") || text.contains("replayed"),
            "{e}"
        );
    });
}

/// Attack: a man in the middle changes a bit of a sealed frame. It does not
/// unseal; the server's stream fails and delivers nothing of it.
#[test]
fn attack_a_changed_data_frame_is_refused() {
    let s = need_shared!();
    run(s, async move {
        let (mut client, (mut server, _), _) = through_mitm(s, Mitm::Flip, false).await;
        client.write_all(b"pay bob 100").await.unwrap();
        client.flush().await.unwrap();
        let mut got = [0u8; 11];
        let e = server.read_exact(&mut got).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains("does not unseal"), "{e}");
    });
}

/// Attack: a man in the middle records a client's handshake and sends it again on
/// a connection of its own, to be taken for alice. The replay cache of krb5
/// refuses the authenticator: no context, no identity.
#[test]
fn attack_a_replayed_authenticator_is_refused() {
    let s = need_shared!();
    run(s, async move {
        let (mut client, (mut server, _), record) = through_mitm(s, Mitm::Replay, false).await;
        // A real exchange first, so the handshake was accepted once.
        client.write_all(b"hello").await.unwrap();
        client.flush().await.unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).await.unwrap();
        let recorded = record.lock().unwrap().clone();
        let len = u32::from_be_bytes([recorded[9], recorded[10], recorded[11], recorded[12]]);
        let handshake = recorded[..8 + 5 + len as usize].to_vec();
        let (mut attacker, server_end) = tokio::io::duplex(1 << 16);
        let address = "192.0.2.2:1".parse().unwrap();
        let accepting = tokio::spawn({
            let acceptor = s.acceptor.clone();
            async move { acceptor.accept(server_end, address).await.map(|(_, p)| p) }
        });
        attacker.write_all(&handshake).await.unwrap();
        let e = accepting.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LogonFailure, "{e}");
        let mut reply = Vec::new();
        let _ = attacker.read_to_end(&mut reply).await;
        assert_eq!(reply.first(), Some(&2), "not a refusal: {reply:?}");
    });
}

/// Attack: alice owns the private directory of her delegated credentials (her
/// processes use them as her), so she can put a symlink there to a directory of
/// root's. Removing the cache with its last token must remove the cache file
/// guise made, never follow the link; what she put there is left.
#[test]
fn attack_a_symlink_in_a_delegated_cache_directory_is_not_followed() {
    let s = need_shared!();
    run(s, async move {
        let (_client, (_server, peer), _) = through_mitm(s, Mitm::Pass, true).await;
        let cache = peer.network().unwrap().delegated.clone().unwrap();
        let file = std::path::PathBuf::from(cache.name().strip_prefix("FILE:").unwrap());
        let dir = file.parent().unwrap().to_owned();
        let precious = tempfile::tempdir().unwrap();
        std::fs::write(precious.path().join("keep"), "root's").unwrap();
        // As alice: a thread that impersonates her makes the link.
        let token = guise::Token::from_ids(61201, 61201, &[61201]).unwrap();
        token
            .run_as(|| std::os::unix::fs::symlink(precious.path(), dir.join("link")))
            .unwrap()
            .unwrap();
        drop((cache, peer));
        assert!(kdc::gone(&file), "the cache file stays");
        assert_eq!(
            std::fs::read_to_string(precious.path().join("keep")).unwrap(),
            "root's"
        );
        // What alice put there is hers: left (and logged), not removed.
        assert!(std::fs::symlink_metadata(dir.join("link")).is_ok());
        std::fs::remove_file(dir.join("link")).unwrap();
        std::fs::remove_dir(&dir).unwrap();
    });
}

/// Attack (issue 19): alice's delegated cache directory was hers, in /tmp; she
/// renames it away and moves a directory holding bob's data (one of hers, which
/// bob could write in) into its place, or puts a symlink there; at disconnect the
/// server removed the path recursively, as root, and bob's data went. The
/// directory now sits in one of the server's that she cannot write to, and is
/// removed through the descriptor opened when it was made, never recursively.
#[test]
fn attack_a_client_that_swaps_its_cache_directory_cannot_make_root_delete_other_users_files() {
    let s = need_shared!();
    run(s, async move {
        use std::os::unix::fs::PermissionsExt;
        let (_client, (_server, peer), _) = through_mitm(s, Mitm::Pass, true).await;
        let cache = peer.network().unwrap().delegated.clone().unwrap();
        let file = std::path::PathBuf::from(cache.name().strip_prefix("FILE:").unwrap());
        let dir = file.parent().unwrap().to_owned();
        // A directory of alice's in a place she may write to, where bob keeps data.
        let shared = tempfile::tempdir().unwrap();
        std::fs::set_permissions(shared.path(), PermissionsExt::from_mode(0o777)).unwrap();
        let project = shared.path().join("project");
        std::fs::create_dir(&project).unwrap();
        std::os::unix::fs::chown(&project, Some(61201), Some(61201)).unwrap();
        std::fs::set_permissions(&project, PermissionsExt::from_mode(0o777)).unwrap();
        let victim = project.join("bobs-data");
        std::fs::write(&victim, "bob's").unwrap();
        std::os::unix::fs::chown(&victim, Some(61202), Some(61202)).unwrap();
        let bobs = tempfile::tempdir().unwrap();
        std::fs::write(bobs.path().join("keep"), "bob's too").unwrap();
        // As alice: the directory away, hers in its place, else a link.
        let moved = dir.with_extension("moved");
        let alice = guise::Token::from_ids(61201, 61201, &[61201]).unwrap();
        let (away, swapped, linked) = alice
            .run_as(|| {
                (
                    std::fs::rename(&dir, &moved).is_ok(),
                    std::fs::rename(&project, &dir).is_ok(),
                    std::os::unix::fs::symlink(bobs.path(), &dir).is_ok(),
                )
            })
            .unwrap();
        drop((cache, peer));
        // The removal is done once the path is gone (or a few seconds passed).
        let gone = kdc::gone(&dir);
        let _ = std::fs::remove_dir_all(&moved);
        assert!(
            !away && !swapped && !linked,
            "alice moved her cache directory (away {away}, swapped {swapped}, linked {linked})"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).ok().as_deref(),
            Some("bob's"),
            "bob's data went with alice's cache"
        );
        assert_eq!(
            std::fs::read_to_string(bobs.path().join("keep")).unwrap(),
            "bob's too"
        );
        assert!(gone, "the cache directory stays");
    });
}

/// Attack (issue 19): alice swaps her delegated cache file for a FIFO. A server
/// thread that impersonated her opened it to authenticate onwards, and an open
/// of a FIFO waits for a writer: each such call parked a pool worker for good,
/// until the service stopped for everyone. Impersonating threads use a memory
/// copy made when the ticket arrived; the file is never opened by the server.
#[test]
fn attack_a_delegated_cache_swapped_for_a_fifo_does_not_park_the_workers() {
    let s = need_shared!();
    run(s, async move {
        let (_client, (_server, peer), _) = through_mitm(s, Mitm::Pass, true).await;
        let cache = peer.network().unwrap().delegated.clone().unwrap();
        let file = std::path::PathBuf::from(cache.name().strip_prefix("FILE:").unwrap());
        let token = kdc::token_at(peer, guise::ImpersonationLevel::Delegation);
        let alice = guise::Token::from_ids(61201, 61201, &[61201]).unwrap();
        alice
            .run_as(|| {
                std::fs::rename(&file, file.with_extension("old")).unwrap();
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &file,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    0,
                )
                .unwrap();
            })
            .unwrap();
        let pool = std::sync::Arc::new(guise::pool::ImpersonationPool::new(2).unwrap());
        // Every worker makes a Kerberos call as alice, with her credentials.
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let (pool, token) = (std::sync::Arc::clone(&pool), token.clone());
                tokio::spawn(async move {
                    pool.run_as(token, || {
                        Initiator::start("guise@localhost", false).map(|_| ())
                    })
                    .await
                })
            })
            .collect();
        // Bob is still served.
        let bob = guise::Token::from_ids(61202, 61202, &[61202]).unwrap();
        let served =
            tokio::time::timeout(std::time::Duration::from_secs(5), pool.run_as(bob, || 42)).await;
        let parked = served.is_err();
        if parked {
            // Let the parked workers go before failing.
            for _ in 0..2 {
                let _ = std::fs::OpenOptions::new().write(true).open(&file);
            }
        }
        assert!(!parked, "the workers are parked on alice's FIFO");
        assert_eq!(served.unwrap().unwrap(), 42);
        for call in calls {
            let r = tokio::time::timeout(std::time::Duration::from_secs(5), call)
                .await
                .expect("a call as alice is parked")
                .unwrap()
                .unwrap();
            assert_eq!(r, Ok(()), "her memory copy authenticates her");
        }
    });
}

/// Attack: garbage where a context token belongs, and a frame that claims 4 GiB
/// (to make the server allocate it). Both are refused at once, without reading or
/// allocating more than the limit.
#[test]
fn attack_garbage_and_oversized_handshake_frames_are_refused() {
    let s = need_shared!();
    run(s, async move {
        for frame in [
            [&[1u8, 0, 0, 0, 5][..], b"hello"].concat(),
            vec![1u8, 0xff, 0xff, 0xff, 0xff],
            vec![4u8, 0, 0, 0, 1, 0],
        ] {
            let (mut attacker, server_end) = tokio::io::duplex(1 << 16);
            let acceptor = s.acceptor.clone();
            let accepting = tokio::spawn(async move {
                let address = "192.0.2.3:1".parse().unwrap();
                acceptor.accept(server_end, address).await.map(|(_, p)| p)
            });
            attacker.write_all(guise::kerberos::MAGIC).await.unwrap();
            attacker.write_all(&frame).await.unwrap();
            let e = tokio::time::timeout(std::time::Duration::from_secs(5), accepting)
                .await
                .expect("the server waited for more")
                .unwrap()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::LogonFailure, "{frame:?}: {e}");
            let mut reply = Vec::new();
            let _ = attacker.read_to_end(&mut reply).await;
            assert_eq!(
                reply.first(),
                Some(&2),
                "{frame:?}: not a refusal: {reply:?}"
            );
        }
    });
}

/// Attack: a client hangs up mid-call, so the last token holding its delegated
/// credentials is dropped on a worker that already impersonates someone else
/// (who may not remove another user's directory). The credentials must not stay
/// on disk: the directory is removed at the process identity all the same.
#[test]
fn attack_a_delegated_cache_dropped_on_another_users_thread_is_still_removed() {
    let s = need_shared!();
    run(s, async move {
        let (_client, (_server, peer), _) = through_mitm(s, Mitm::Pass, true).await;
        let cache = peer.network().unwrap().delegated.clone().unwrap();
        let dir = std::path::PathBuf::from(cache.name().strip_prefix("FILE:").unwrap())
            .parent()
            .unwrap()
            .to_owned();
        drop(peer);
        let bob = guise::Token::from_ids(61202, 61202, &[61202]).unwrap();
        bob.run_as(move || drop(cache)).unwrap();
        assert!(
            kdc::gone(&dir),
            "alice's delegated credentials stay on disk"
        );
    });
}

/// Attack: a local client (a pipe's, say) whose server thread makes a Kerberos
/// call while impersonating it would have it go out with the server's own
/// credentials (the process's default cache). A thread that impersonates a token
/// without credentials of its own has none.
#[test]
fn attack_a_local_clients_thread_cannot_use_the_servers_kerberos_credentials() {
    let s = need_shared!();
    run(s, async move {
        let server =
            tokio::task::spawn_blocking(|| Initiator::start("guise@localhost", false).map(|_| ()));
        assert!(
            server.await.unwrap().is_ok(),
            "the server's own cache works"
        );
        let bob = guise::Token::from_ids(61202, 61202, &[61202]).unwrap();
        let e = tokio::task::spawn_blocking(move || {
            bob.run_as(|| Initiator::start("guise@localhost", false).map(|_| ()))
                .unwrap()
        })
        .await
        .unwrap()
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoSuchLogonSession, "{e}");
    });
}
