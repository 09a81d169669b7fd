//! The D-Bus transport: `guise dbus serve` on a private `dbus-daemon`, called as
//! throwaway users with zbus and with clients nobody here wrote (`gdbus`,
//! `dbus-send`, dbus-python).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::bus::{Bus, FIRST, USERS, accounts, bus_as, proxy, start_bus, start_service};
use common::server::{own_file, tree};
use common::{GUISE, runtime};

const A: u32 = FIRST;
const B: u32 = FIRST + 1;

/// Whether the programs the bus tests use are here (the test command installs
/// them).
fn have_bus_tools() -> bool {
    ["dbus-daemon", "dbus-send", "gdbus"].iter().all(|p| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|dir| dir.join(p).is_file())
    })
}

macro_rules! need_bus {
    () => {
        need_root!();
        if common::skip::skip_unless(have_bus_tools(), "dbus-daemon, dbus-send and gdbus") {
            return;
        }
    };
}

/// The D-Bus error name and message of a failed call.
fn error_of<T: std::fmt::Debug>(r: zbus::Result<T>) -> (String, String) {
    match r {
        Err(zbus::Error::MethodError(name, message, _)) => {
            (name.to_string(), message.unwrap_or_default())
        }
        other => panic!("not a D-Bus error: {other:?}"),
    }
}

/// Accounts, a bus, two callers' files and a directory they may create files in,
/// and the service.
fn setup(
    extra: &[&str],
) -> (
    tempfile::TempDir,
    tempfile::TempDir,
    std::path::PathBuf,
    Bus,
    common::server::Server,
) {
    let users = accounts();
    let (dir, files) = tree();
    own_file(&files.join("a.txt"), A, 0o600, "a's secret");
    own_file(&files.join("b.txt"), B, 0o600, "b's secret");
    std::fs::create_dir(files.join("drop")).unwrap();
    std::fs::set_permissions(
        files.join("drop"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let bus = start_bus(dir.path());
    let server = start_service(&bus, &files, extra);
    (users, dir, files, bus, server)
}

type Identity = (u32, u32, Vec<u32>, String);

#[test]
fn the_level_is_identification_until_set_quality_of_service_and_kept_per_connection() {
    need_bus!();
    let (_users, _dir, files, bus, _server) = setup(&[]);
    runtime().block_on(async {
        let conn = bus_as(&bus, A).await;
        let f = proxy(&conn).await;
        // Without SetQualityOfService: WhoAmI works, Read is denied.
        let id: Identity = f.call("WhoAmI", &()).await.unwrap();
        assert_eq!(id, (A, A, vec![A], "identification".into()));
        let (name, message) = error_of(f.call::<_, _, Vec<u8>>("Read", &("a.txt",)).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.AccessDenied");
        assert!(
            message.contains("ERROR_BAD_IMPERSONATION_LEVEL"),
            "{message}"
        );
        // A level that does not exist.
        let (name, _) = error_of(f.call::<_, _, ()>("SetQualityOfService", &("root",)).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs");
        // Impersonation: the caller's own 0600 file, not another's.
        let () = f
            .call("SetQualityOfService", &("impersonation",))
            .await
            .unwrap();
        let id: Identity = f.call("WhoAmI", &()).await.unwrap();
        assert_eq!(id.3, "impersonation");
        let data: Vec<u8> = f.call("Read", &("a.txt",)).await.unwrap();
        assert_eq!(data, b"a's secret");
        let (name, message) = error_of(f.call::<_, _, Vec<u8>>("Read", &("b.txt",)).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.AccessDenied");
        assert!(message.contains("ERROR_ACCESS_DENIED"), "{message}");
        let (name, message) = error_of(f.call::<_, _, Vec<u8>>("Read", &("nope",)).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.FileNotFound");
        assert!(message.contains("ERROR_FILE_NOT_FOUND"), "{message}");
        let () = f
            .call("Write", &("drop/new", b"written".to_vec(), 0o640u32))
            .await
            .unwrap();
        let meta = std::fs::metadata(files.join("drop/new")).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), A);
        assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o777, 0o640);
        let names: Vec<String> = f.call("List", &("",)).await.unwrap();
        assert_eq!(names, ["a.txt", "b.txt", "drop"]);
        // The level belongs to the connection, not to the uid.
        let other = bus_as(&bus, A).await;
        let g = proxy(&other).await;
        let id: Identity = g.call("WhoAmI", &()).await.unwrap();
        assert_eq!(id.3, "identification");
        let (name, _) = error_of(g.call::<_, _, Vec<u8>>("Read", &("a.txt",)).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.AccessDenied");
        // Anonymous: not identified.
        let () = g
            .call("SetQualityOfService", &("anonymous",))
            .await
            .unwrap();
        let id: Identity = g.call("WhoAmI", &()).await.unwrap();
        assert_eq!(id, (4294967294, 4294967294, vec![], "anonymous".into()));
    });
}

#[test]
fn eight_identities_reading_concurrently_through_the_bus_are_never_served_as_another() {
    need_bus!();
    const CALLS: u32 = 5_000;
    let users = accounts();
    let (dir, files) = tree();
    for uid in FIRST..FIRST + USERS {
        own_file(
            &files.join(format!("f{uid}")),
            uid,
            0o600,
            &format!("secret of {uid}"),
        );
    }
    let bus = start_bus(dir.path());
    let _server = start_service(&bus, &files, &["--workers", "8"]);
    let per_caller = CALLS.div_ceil(USERS * 2);
    let (calls, wrong) = runtime().block_on(async {
        let mut tasks = Vec::new();
        // Two connections of each identity.
        for i in 0..USERS * 2 {
            let uid = FIRST + i % USERS;
            let neighbour = FIRST + (i + 1) % USERS;
            let conn = bus_as(&bus, uid).await;
            tasks.push(tokio::spawn(async move {
                let f = proxy(&conn).await;
                let () = f
                    .call("SetQualityOfService", &("impersonation",))
                    .await
                    .unwrap();
                let (mut calls, mut wrong) = (0u32, Vec::new());
                for n in 0..per_caller {
                    let ok = if n % 4 == 3 {
                        f.call::<_, _, Vec<u8>>("Read", &(format!("f{neighbour}"),))
                            .await
                            .is_err()
                    } else {
                        f.call::<_, _, Vec<u8>>("Read", &(format!("f{uid}"),))
                            .await
                            .is_ok_and(|d| d == format!("secret of {uid}").as_bytes())
                    };
                    calls += 1;
                    if !ok {
                        wrong.push(format!("uid {uid}, call {n}"));
                    }
                }
                drop(conn);
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
    drop(users);
    assert!(calls >= CALLS, "{calls} calls");
    assert!(
        wrong.is_empty(),
        "{} of {calls} calls were not answered as their caller: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// Runs `PROGRAM ARGS` as `uid` through `guise run`; exit code, stdout, stderr.
fn run_as(uid: u32, program: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(GUISE)
        .args(["run", "--uid", &uid.to_string(), "--", program])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// gdbus and dbus-send, as throwaway users: each call is a connection of its own,
/// so at Identification level.
#[test]
fn gdbus_and_dbus_send_are_clients() {
    need_bus!();
    let (_users, _dir, _files, bus, _server) = setup(&[]);
    let address = bus.address();
    let gdbus = |uid: u32, method: &str, args: &[&str]| {
        let mut all = vec![
            "call",
            "--address",
            &address,
            "--dest",
            "org.guise.Files1",
            "--object-path",
            "/org/guise/Files1",
            "--method",
        ];
        let m = format!("org.guise.Files1.{method}");
        all.push(&m);
        all.extend_from_slice(args);
        run_as(uid, "gdbus", &all)
    };
    let (code, out, err) = gdbus(A, "WhoAmI", &[]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            "(uint32 61001, uint32 61001, [uint32 61001], 'identification')"
        ),
        "{err}"
    );
    let (code, out, err) = gdbus(B, "WhoAmI", &[]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            "(uint32 61002, uint32 61002, [uint32 61002], 'identification')"
        ),
        "{err}"
    );
    let (code, _, err) = gdbus(A, "Read", &["a.txt"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("AccessDenied") && err.contains("ERROR_BAD_IMPERSONATION_LEVEL"),
        "{err}"
    );
    let (code, out, err) = gdbus(A, "List", &["drop"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("ERROR_BAD_IMPERSONATION_LEVEL"), "{err}");
    let bus_arg = format!("--bus={address}");
    let (code, out, err) = run_as(
        B,
        "dbus-send",
        &[
            &bus_arg,
            "--print-reply",
            "--dest=org.guise.Files1",
            "/org/guise/Files1",
            "org.guise.Files1.WhoAmI",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("uint32 61002") && out.contains("\"identification\""),
        "{out}"
    );
}

/// Attack: a caller claims another identity in its message body (an extra uid
/// argument, a uid for a level): the identity is the bus daemon's, whatever the
/// body says.
#[test]
fn a_caller_claiming_another_uid_in_its_message_body_changes_nothing() {
    need_bus!();
    let (_users, _dir, _files, bus, _server) = setup(&[]);
    let bus_arg = format!("--bus={}", bus.address());
    let send = |uid: u32, member: &str, args: &[&str]| {
        let m = format!("org.guise.Files1.{member}");
        let mut all = vec![
            bus_arg.as_str(),
            "--print-reply",
            "--dest=org.guise.Files1",
            "/org/guise/Files1",
            m.as_str(),
        ];
        all.extend_from_slice(args);
        run_as(uid, "dbus-send", &all)
    };
    // B asks for A's file with A's uid beside it, and for its identity with uid 0.
    // A body that does not match the method's signature is refused before the
    // method runs.
    let refused = |err: &str| err.contains("Signature mismatch") || err.contains("InvalidArgs");
    let (code, out, err) = send(B, "Read", &["string:a.txt", "uint32:61001"]);
    assert_ne!(code, 0, "{out}");
    assert!(refused(&err), "{err}");
    let (code, out, err) = send(B, "WhoAmI", &["uint32:0"]);
    assert_ne!(code, 0, "{out}");
    assert!(refused(&err), "{err}");
    let (code, out, err) = send(
        B,
        "SetQualityOfService",
        &["string:impersonation uid=61001"],
    );
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("InvalidArgs"), "{err}");
    // Through zbus too: B, at Impersonation level, is B.
    runtime().block_on(async {
        let conn = bus_as(&bus, B).await;
        let f = proxy(&conn).await;
        let () = f
            .call("SetQualityOfService", &("impersonation",))
            .await
            .unwrap();
        let id: Identity = f.call("WhoAmI", &()).await.unwrap();
        assert_eq!((id.0, id.1), (B, B));
        let (name, _) = error_of(f.call::<_, _, Vec<u8>>("Read", &("a.txt",)).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.AccessDenied");
    });
}

/// dbus-python (libdbus), as a throwaway user: SetQualityOfService and Read on one
/// connection.
#[test]
fn a_dbus_python_client_sets_its_level_and_reads_its_own_file() {
    need_bus!();
    let python = "/usr/bin/python3";
    let have = Command::new(python)
        .args(["-c", "import dbus"])
        .status()
        .is_ok_and(|s| s.success());
    if common::skip::skip_unless(have, "python3-dbus") {
        return;
    }
    let (_users, dir, _files, bus, _server) = setup(&[]);
    let script = dir.path().join("client.py");
    std::fs::write(
        &script,
        r#"
import sys, dbus
bus = dbus.bus.BusConnection(sys.argv[1])
f = dbus.Interface(bus.get_object("org.guise.Files1", "/org/guise/Files1"), "org.guise.Files1")
uid, gid, groups, level = f.WhoAmI()
print("before", int(uid), str(level))
f.SetQualityOfService("impersonation")
print("own", bytes(f.Read("a.txt", byte_arrays=True)).decode())
try:
    f.Read("b.txt")
    print("other read")
except dbus.exceptions.DBusException as e:
    print("other", e.get_dbus_name())
"#,
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (code, out, err) = run_as(A, python, &[script.to_str().unwrap(), &bus.address()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "before 61001 identification",
            "own a's secret",
            "other org.freedesktop.DBus.Error.AccessDenied"
        ]
    );
}

/// The credentials the server caches for a caller are dropped when its unique name
/// goes; the level was the connection's, so a new connection of the same uid starts
/// again at Identification level.
#[test]
fn a_caller_whose_name_has_gone_is_forgotten() {
    need_bus!();
    let users = accounts();
    let (dir, _files) = tree();
    let bus = start_bus(dir.path());

    struct Probe(std::sync::Arc<guise::dbus::DbusClients>);

    #[zbus::interface(name = "org.guise.Files1")]
    impl Probe {
        async fn set_quality_of_service(
            &self,
            #[zbus(header)] header: zbus::message::Header<'_>,
            level: String,
        ) -> zbus::fdo::Result<()> {
            let level = level.parse().unwrap();
            self.0
                .set_quality_of_service(&header, level)
                .await
                .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
        }

        async fn who_am_i(
            &self,
            #[zbus(header)] header: zbus::message::Header<'_>,
        ) -> zbus::fdo::Result<(u32, String)> {
            let call = self
                .0
                .call(&header)
                .await
                .map_err(|e| zbus::fdo::Error::AccessDenied(e.to_string()))?;
            Ok((call.peer().uid(), call.level().to_string()))
        }
    }

    runtime().block_on(async {
        let server = zbus::connection::Builder::address(bus.address().as_str())
            .unwrap()
            .build()
            .await
            .unwrap();
        let clients = guise::dbus::DbusClients::new(&server, guise::ImpersonationLevel::Delegation)
            .await
            .unwrap();
        server
            .object_server()
            .at("/org/guise/Files1", Probe(std::sync::Arc::clone(&clients)))
            .await
            .unwrap();
        server.request_name("org.guise.Files1").await.unwrap();
        for round in 0..2 {
            let conn = bus_as(&bus, A).await;
            let f = proxy(&conn).await;
            let (uid, level): (u32, String) = f.call("WhoAmI", &()).await.unwrap();
            assert_eq!(
                (uid, level.as_str()),
                (A, "identification"),
                "round {round}"
            );
            let () = f
                .call("SetQualityOfService", &("impersonation",))
                .await
                .unwrap();
            let (_, level): (u32, String) = f.call("WhoAmI", &()).await.unwrap();
            assert_eq!(level, "impersonation");
            assert_eq!(clients.cached(), 1);
            drop(f);
            drop(conn);
            let deadline = Instant::now() + Duration::from_secs(5);
            while clients.cached() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(clients.cached(), 0, "the caller's name went: forgotten");
        }
    });
    drop(users);
}

/// Attack: a user keeps many calls in flight, to hold every worker or fill the
/// server's memory with queued calls. Its uid's share is capped; others are served.
#[test]
fn one_uids_calls_in_flight_are_capped() {
    need_bus!();
    let users = accounts();
    let (dir, _files) = tree();
    let bus = start_bus(dir.path());

    struct Holder {
        clients: std::sync::Arc<guise::dbus::DbusClients>,
        started: std::sync::Arc<tokio::sync::Semaphore>,
        release: std::sync::Arc<tokio::sync::Notify>,
    }

    #[zbus::interface(name = "org.guise.Files1")]
    impl Holder {
        /// Holds the call until released.
        async fn who_am_i(
            &self,
            #[zbus(header)] header: zbus::message::Header<'_>,
        ) -> zbus::fdo::Result<u32> {
            let call = self
                .clients
                .call(&header)
                .await
                .map_err(|e| match e.kind() {
                    guise::ErrorKind::NotEnoughQuota => {
                        zbus::fdo::Error::LimitsExceeded(e.to_string())
                    }
                    _ => zbus::fdo::Error::Failed(e.to_string()),
                })?;
            // Waiting for the release before saying it started: no release is missed.
            let released = self.release.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            self.started.add_permits(1);
            released.await;
            Ok(call.peer().uid())
        }
    }

    runtime().block_on(async {
        let server = zbus::connection::Builder::address(bus.address().as_str())
            .unwrap()
            .build()
            .await
            .unwrap();
        let clients = guise::dbus::DbusClients::with_max_calls_per_uid(
            &server,
            guise::ImpersonationLevel::Delegation,
            2,
        )
        .await
        .unwrap();
        let started = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        server
            .object_server()
            .at(
                "/org/guise/Files1",
                Holder {
                    clients,
                    started: std::sync::Arc::clone(&started),
                    release: std::sync::Arc::clone(&release),
                },
            )
            .await
            .unwrap();
        server.request_name("org.guise.Files1").await.unwrap();
        let a = bus_as(&bus, A).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let a = a.clone();
            held.push(tokio::spawn(async move {
                let f = proxy(&a).await;
                f.call::<_, _, u32>("WhoAmI", &()).await
            }));
        }
        // Both are in flight: a third of A's is refused, B is still served.
        tokio::time::timeout(Duration::from_secs(10), started.acquire_many(2))
            .await
            .expect("both calls in flight")
            .unwrap()
            .forget();
        let f = proxy(&a).await;
        let (name, message) = error_of(f.call::<_, _, u32>("WhoAmI", &()).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.LimitsExceeded");
        assert!(message.contains("ERROR_NOT_ENOUGH_QUOTA"), "{message}");
        let b = bus_as(&bus, B).await;
        let g = proxy(&b).await;
        let served = tokio::spawn(async move { g.call::<_, _, u32>("WhoAmI", &()).await });
        started.acquire().await.unwrap().forget();
        release.notify_waiters();
        assert_eq!(served.await.unwrap().unwrap(), B);
        for h in held {
            assert_eq!(h.await.unwrap().unwrap(), A);
        }
        // Once they end, A is served again.
        let again = tokio::spawn(async move { f.call::<_, _, u32>("WhoAmI", &()).await });
        started.acquire().await.unwrap().forget();
        release.notify_waiters();
        assert_eq!(again.await.unwrap().unwrap(), A);
    });
    drop(users);
}

/// Attack: a user runs a bus of its own and gets a root service pointed at it; the
/// bus would then say who every caller is. The service refuses a bus run by
/// another user.
#[test]
fn a_bus_another_user_runs_is_not_trusted() {
    need_bus!();
    let _users = accounts();
    let (dir, files) = tree();
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let socket = theirs.join("bus");
    let config = theirs.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            "<busconfig><type>custom</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\
             <policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>\
             <allow send_destination=\"*\"/></policy></busconfig>",
            socket.display()
        ),
    )
    .unwrap();
    let mut daemon = Command::new("setpriv")
        .args([
            "--reuid",
            &A.to_string(),
            "--regid",
            &A.to_string(),
            "--clear-groups",
        ])
        .arg("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .arg("--nofork")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = Command::new(GUISE)
        .args(["dbus", "serve", "--address"])
        .arg(format!("unix:path={}", socket.display()))
        .arg("--root")
        .arg(&files)
        .output()
        .unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("run by uid 61001"), "{err}");
}

/// A file larger than a D-Bus reply may be: refused with InvalidArgs, and the
/// service stays on the bus (a reply over the bus's limit would have the daemon
/// drop its connection).
#[test]
fn a_read_too_large_for_the_bus_is_refused_and_the_service_stays() {
    need_bus!();
    let (_users, _dir, files, bus, _server) = setup(&[]);
    common::server::sparse_file(&files.join("big"), A, 17 << 20);
    runtime().block_on(async {
        let conn = bus_as(&bus, A).await;
        let f = proxy(&conn).await;
        let () = f
            .call("SetQualityOfService", &("impersonation",))
            .await
            .unwrap();
        let (name, message) = error_of(f.call::<_, _, Vec<u8>>("Read", &("big",)).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs", "{message}");
        assert!(message.contains("ReadAt"), "{message}");
        let data: Vec<u8> = f.call("Read", &("a.txt",)).await.unwrap();
        assert_eq!(data, b"a's secret");
        // ReadAt reads it in parts: fewer bytes at the end, none past it.
        let part: Vec<u8> = f.call("ReadAt", &("big", 0u64, 10u64)).await.unwrap();
        assert_eq!(part, [0; 10]);
        let part: Vec<u8> = f
            .call("ReadAt", &("big", (17u64 << 20) - 5, 100u64))
            .await
            .unwrap();
        assert_eq!(part.len(), 5);
        let part: Vec<u8> = f.call("ReadAt", &("big", 18u64 << 20, 0u64)).await.unwrap();
        assert!(part.is_empty());
        let part: Vec<u8> = f.call("ReadAt", &("a.txt", 4u64, 3u64)).await.unwrap();
        assert_eq!(part, b"sec");
    });
}

/// A uid's share of the reply budget bounds what one Read returns: a larger file
/// is refused with a message that says to read it in parts, and ReadAt returns at
/// most the share.
#[test]
fn a_read_larger_than_a_uids_share_of_the_reply_budget_is_read_in_parts() {
    need_bus!();
    let (_users, _dir, files, bus, _server) = setup(&["--max-reply-bytes-per-uid", "1000"]);
    own_file(&files.join("2k"), A, 0o600, &"x".repeat(2000));
    runtime().block_on(async {
        let conn = bus_as(&bus, A).await;
        let f = proxy(&conn).await;
        let () = f
            .call("SetQualityOfService", &("impersonation",))
            .await
            .unwrap();
        let (name, message) = error_of(f.call::<_, _, Vec<u8>>("Read", &("2k",)).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs", "{message}");
        assert!(
            message.contains("ReadAt") && message.contains("1000"),
            "{message}"
        );
        let part: Vec<u8> = f.call("ReadAt", &("2k", 0u64, 0u64)).await.unwrap();
        assert_eq!(part.len(), 1000);
        let part: Vec<u8> = f.call("ReadAt", &("2k", 1500u64, 0u64)).await.unwrap();
        assert_eq!(part.len(), 500);
        // A listing may hold more than the share: refused, with the quota named.
        let (name, message) = error_of(f.call::<_, _, Vec<String>>("List", &("",)).await);
        assert_eq!(
            name, "org.freedesktop.DBus.Error.LimitsExceeded",
            "{message}"
        );
        assert!(message.contains("ERROR_NOT_ENOUGH_QUOTA"), "{message}");
    });
}

/// A connection to the bus as `uid` that speaks D-Bus by hand and reads nothing the
/// bus sends unless asked to: a caller that leaves its replies unread.
struct RawCaller {
    stream: std::os::unix::net::UnixStream,
    /// Bytes read and not yet taken apart into messages.
    buf: Vec<u8>,
}

impl RawCaller {
    /// Connects as `uid` (EXTERNAL authentication) and says Hello.
    fn connect(bus: &Bus, uid: u32) -> RawCaller {
        use std::io::{BufRead, Write};
        let token = guise::Token::from_ids(uid, uid, &[uid]).unwrap();
        let path = bus.socket.clone();
        let mut stream = guise::thread::spawn(move || {
            token.run_as(|| std::os::unix::net::UnixStream::connect(&path))
        })
        .unwrap()
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        stream
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(&stream)
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("OK "), "{line:?}");
        stream.write_all(b"BEGIN\r\n").unwrap();
        let mut raw = RawCaller {
            stream,
            buf: Vec::new(),
        };
        raw.send(
            zbus::Message::method_call("/org/freedesktop/DBus", "Hello")
                .unwrap()
                .destination("org.freedesktop.DBus")
                .unwrap()
                .interface("org.freedesktop.DBus")
                .unwrap()
                .build(&())
                .unwrap(),
        );
        raw
    }

    fn send(&mut self, msg: zbus::Message) {
        use std::io::Write;
        self.stream.write_all(msg.data()).unwrap();
    }

    /// Calls a method of the service without waiting for its reply.
    fn call<B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType>(
        &mut self,
        member: &str,
        body: &B,
    ) {
        self.send(
            zbus::Message::method_call("/org/guise/Files1", member)
                .unwrap()
                .destination("org.guise.Files1")
                .unwrap()
                .interface("org.guise.Files1")
                .unwrap()
                .build(body)
                .unwrap(),
        );
    }

    /// Reads until `n` replies (method returns or errors) have come.
    fn wait_replies(&mut self, n: usize) {
        use std::io::Read;
        let mut seen = 0;
        let mut chunk = [0u8; 4096];
        while seen < n {
            // A whole message: the fixed header (16 bytes), the header fields padded
            // to 8, the body.
            while self.buf.len() >= 16 {
                let u32_at =
                    |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
                let fields = u32_at(&self.buf, 12) as usize;
                let len = 16 + fields.next_multiple_of(8) + u32_at(&self.buf, 4) as usize;
                if self.buf.len() < len {
                    break;
                }
                if matches!(self.buf[1], 2 | 3) {
                    seen += 1;
                }
                self.buf.drain(..len);
            }
            if seen >= n {
                break;
            }
            let got = self.stream.read(&mut chunk).unwrap();
            assert!(got > 0, "the bus closed the connection");
            self.buf.extend_from_slice(&chunk[..got]);
        }
    }
}

/// The peak resident memory of a process, in kB (`VmHWM`).
fn peak_rss_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    common::field(&status, "VmHWM")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Attack: one uid asks for many 16 MiB files at once and never reads the replies,
/// so that the service holds them all in memory and every other caller's reply
/// waits behind them. The service keeps a byte budget of replies per uid and in
/// total, counted until the bus has each reply: it stays small, and another caller
/// is served at once.
#[test]
fn attack_unread_large_reads_of_one_uid_neither_grow_the_service_nor_stall_another_caller() {
    need_bus!();
    let (_users, _dir, files, bus, server) = setup(&[]);
    for i in 0..8 {
        common::server::sparse_file(&files.join(format!("big{i}")), A, 16 << 20);
    }
    let before = peak_rss_kb(server.pid());
    let mut attacker = RawCaller::connect(&bus, A);
    attacker.call("SetQualityOfService", &("impersonation",));
    // The Hello and SetQualityOfService replies: the reads below are at
    // Impersonation level.
    attacker.wait_replies(2);
    for i in 0..64 {
        attacker.call("Read", &(format!("big{}", i % 8),));
    }
    // The service is at work on them.
    std::thread::sleep(Duration::from_millis(300));
    // Another caller, given 10 s at most.
    let took = runtime().block_on(async {
        let t = Instant::now();
        let served = tokio::time::timeout(Duration::from_secs(10), async {
            let conn = bus_as(&bus, B).await;
            let f = proxy(&conn).await;
            let () = f
                .call("SetQualityOfService", &("impersonation",))
                .await
                .unwrap();
            let data: Vec<u8> = f.call("Read", &("b.txt",)).await.unwrap();
            assert_eq!(data, b"b's secret");
        })
        .await;
        served.map(|()| t.elapsed())
    });
    std::thread::sleep(Duration::from_secs(2));
    let peak = peak_rss_kb(server.pid());
    drop(attacker);
    let took = took.unwrap_or_else(|_| {
        panic!("another caller got no answer within 10 s (the service peaked at {peak} kB)")
    });
    eprintln!("another caller took {took:?}; the service peaked at {peak} kB (from {before} kB)");
    // The attack landed: the service read the large files for the attacker.
    let log = server.log_so_far();
    assert!(
        log.lines().any(|l| l.contains(&format!("client_uid={A}"))
            && l.contains("op=\"read\"")
            && l.contains("result=\"ok\"")),
        "{log}"
    );
    assert!(
        took < Duration::from_secs(2),
        "another caller waited {took:?} behind the unread replies"
    );
    assert!(
        peak < 300 * 1024,
        "the service grew from {before} kB to {peak} kB"
    );
}

/// The `console` blocks of docs/protocol.md that call `org.guise.Files1`: each
/// command (a line after `$ `) with the output it shows.
fn documented_calls() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/protocol.md"
    ))
    .unwrap();
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut in_block = false;
    for line in doc.lines() {
        match line {
            "```console" => in_block = true,
            "```" => in_block = false,
            _ if !in_block => {}
            _ => match line.strip_prefix("$ ") {
                Some(command) => calls.push((command.to_owned(), String::new())),
                None => {
                    let (_, out) = calls.last_mut().expect("output before a command");
                    out.push_str(line);
                    out.push('\n');
                }
            },
        }
    }
    calls.retain(|(c, _)| c.contains("org.guise.Files1"));
    calls
}

/// Issue 22: busctl and gdbus open a connection per call, so over D-Bus they
/// could never read: the `level` option of a `…WithOptions` method reads one's
/// own file in one command. docs/protocol.md's examples are run as they stand
/// (only `--system` becomes the private bus), as a user, and print what the
/// docs show.
#[test]
fn the_documented_one_command_busctl_and_gdbus_calls_read_as_the_caller() {
    need_bus!();
    if common::skip::skip_unless(
        std::process::Command::new("busctl")
            .arg("--version")
            .output()
            .is_ok(),
        "busctl",
    ) {
        return;
    }
    let _users = accounts();
    let (dir, files) = tree();
    own_file(&files.join("notes.txt"), A, 0o600, "hi\n");
    let bus = start_bus(dir.path());
    let _server = start_service(&bus, &files, &[]);
    let address = bus.address();
    let calls = documented_calls();
    assert!(
        calls.iter().any(|(c, _)| c.starts_with("busctl ")
            && c.contains(" ReadWithOptions ")
            && c.contains("level s impersonation")),
        "docs/protocol.md shows no one-command busctl read: {calls:?}"
    );
    for (command, shown) in &calls {
        let on_bus = if command.starts_with("busctl ") {
            command.replacen(" --system ", &format!(" --address={address} "), 1)
        } else if command.starts_with("gdbus ") {
            command.replacen(" --system ", &format!(" --address {address} "), 1)
        } else {
            command.replacen(" --system ", &format!(" --bus={address} "), 1)
        };
        assert_ne!(&on_bus, command, "no --system in {command}");
        let (code, out, err) = run_as(A, "sh", &["-c", &on_bus]);
        assert_eq!(code, 0, "{command}: {err}");
        assert_eq!(&out, shown, "{command} printed other than the docs show");
    }
    // The same read without the option: Identification, refused. busctl says
    // only "Access denied"; gdbus shows the message, which names the option to
    // pass.
    let busctl = |args: &[&str]| {
        let address = format!("--address={address}");
        let mut all = vec![
            address.as_str(),
            "call",
            "org.guise.Files1",
            "/org/guise/Files1",
            "org.guise.Files1",
        ];
        all.extend_from_slice(args);
        run_as(A, "busctl", &all)
    };
    let gdbus = |args: &[&str]| {
        let mut all = vec![
            "call",
            "--address",
            &address,
            "--dest",
            "org.guise.Files1",
            "--object-path",
            "/org/guise/Files1",
            "--method",
        ];
        all.extend_from_slice(args);
        run_as(A, "gdbus", &all)
    };
    let (code, out, err) = busctl(&["Read", "s", "notes.txt"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("Access denied"), "{err}");
    let (code, out, err) = gdbus(&["org.guise.Files1.Read", "notes.txt"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("ERROR_BAD_IMPERSONATION_LEVEL") && err.contains("the `level` option"),
        "{err}"
    );
    // Another's file stays the kernel's to refuse, whatever level is asked.
    own_file(&files.join("theirs.txt"), B, 0o600, "theirs");
    let (code, out, err) = busctl(&[
        "ReadWithOptions",
        "sa{sv}",
        "theirs.txt",
        "1",
        "level",
        "s",
        "delegation",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("Access denied"), "{err}");
    let (code, out, err) = gdbus(&[
        "org.guise.Files1.ReadWithOptions",
        "theirs.txt",
        "{'level': <'delegation'>}",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
}

/// The options of a `…WithOptions` call: the level is per call (the next call of
/// the same connection is at the connection's level again), lowered to what the
/// server allows, and an option the service does not know, or a level that is
/// not one, is refused rather than ignored.
#[test]
fn a_level_option_holds_for_one_call_and_unknown_options_are_refused() {
    use std::collections::HashMap;
    use zbus::zvariant::Value;
    need_bus!();
    let (_users, _dir, _files, bus, _server) = setup(&[]);
    runtime().block_on(async {
        let conn = bus_as(&bus, A).await;
        let f = proxy(&conn).await;
        let opts =
            |pairs: &[(&'static str, Value<'static>)]| -> HashMap<&'static str, Value<'static>> {
                pairs.iter().cloned().collect()
            };
        let imp = opts(&[("level", Value::from("impersonation"))]);
        let data: Vec<u8> = f.call("ReadWithOptions", &("a.txt", &imp)).await.unwrap();
        assert_eq!(data, b"a's secret");
        let id: Identity = f.call("WhoAmIWithOptions", &(&imp,)).await.unwrap();
        assert_eq!(id.3, "impersonation");
        // The connection's own level is unchanged.
        let id: Identity = f.call("WhoAmI", &()).await.unwrap();
        assert_eq!(id.3, "identification");
        let (name, _) = error_of(f.call::<_, _, Vec<u8>>("Read", &("a.txt",)).await);
        assert_eq!(name, "org.freedesktop.DBus.Error.AccessDenied");
        // No options: the connection's level.
        let none = opts(&[]);
        let (name, message) = error_of(
            f.call::<_, _, Vec<u8>>("ReadWithOptions", &("a.txt", &none))
                .await,
        );
        assert_eq!(name, "org.freedesktop.DBus.Error.AccessDenied");
        assert!(message.contains("ask for Impersonation"), "{message}");
        // Write, ReadAt and List take it too.
        let () = f
            .call(
                "WriteWithOptions",
                &("drop/opt", b"by option".to_vec(), 0o600u32, &imp),
            )
            .await
            .unwrap();
        let part: Vec<u8> = f
            .call("ReadAtWithOptions", &("drop/opt", 3u64, 6u64, &imp))
            .await
            .unwrap();
        assert_eq!(part, b"option");
        let names: Vec<String> = f.call("ListWithOptions", &("drop", &imp)).await.unwrap();
        assert_eq!(names, ["opt"]);
        // Refused, not ignored.
        for bad in [
            opts(&[("levle", Value::from("impersonation"))]),
            opts(&[("level", Value::from("root"))]),
            opts(&[("level", Value::from(3u32))]),
        ] {
            let (name, message) = error_of(
                f.call::<_, _, Vec<u8>>("ReadWithOptions", &("a.txt", &bad))
                    .await,
            );
            assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs", "{message}");
        }
    });
}

/// Attack (issue 22): a caller asks in one call's options for more than the
/// service allows. `DbusClients::call_at` goes through the same rules as
/// `SetQualityOfService`: lowered to the service's maximum, never raised, and
/// only for that call.
#[test]
fn attack_a_per_call_level_is_never_above_the_services_maximum() {
    need_bus!();
    let users = accounts();
    let (dir, _files) = tree();
    let bus = start_bus(dir.path());

    struct Probe(std::sync::Arc<guise::dbus::DbusClients>);

    #[zbus::interface(name = "org.guise.Files1")]
    impl Probe {
        async fn who_am_i_at(
            &self,
            #[zbus(header)] header: zbus::message::Header<'_>,
            level: String,
        ) -> zbus::fdo::Result<(u32, String, String)> {
            let level = level.parse().unwrap();
            let call = self
                .0
                .call_at(&header, level)
                .await
                .map_err(|e| zbus::fdo::Error::AccessDenied(e.to_string()))?;
            Ok((
                call.peer().uid(),
                call.qos().level.to_string(),
                call.level().to_string(),
            ))
        }

        async fn who_am_i(
            &self,
            #[zbus(header)] header: zbus::message::Header<'_>,
        ) -> zbus::fdo::Result<(u32, String, String)> {
            let call = self
                .0
                .call(&header)
                .await
                .map_err(|e| zbus::fdo::Error::AccessDenied(e.to_string()))?;
            Ok((
                call.peer().uid(),
                call.qos().level.to_string(),
                call.level().to_string(),
            ))
        }
    }

    runtime().block_on(async {
        for (max, asked, served) in [
            ("identification", "delegation", "identification"),
            ("impersonation", "delegation", "impersonation"),
            ("delegation", "impersonation", "impersonation"),
            ("delegation", "anonymous", "anonymous"),
        ] {
            let server = zbus::connection::Builder::address(bus.address().as_str())
                .unwrap()
                .build()
                .await
                .unwrap();
            let clients = guise::dbus::DbusClients::new(&server, max.parse().unwrap())
                .await
                .unwrap();
            server
                .object_server()
                .at("/org/guise/Files1", Probe(std::sync::Arc::clone(&clients)))
                .await
                .unwrap();
            server.request_name("org.guise.Files1").await.unwrap();
            let conn = bus_as(&bus, A).await;
            let f = proxy(&conn).await;
            let (uid, qos, level): (u32, String, String) =
                f.call("WhoAmIAt", &(asked,)).await.unwrap();
            assert_eq!(
                (uid, qos.as_str(), level.as_str()),
                (A, asked, served),
                "a server of maximum {max}"
            );
            // The next call of the same connection is at the connection's level.
            let (_, qos, level): (u32, String, String) = f.call("WhoAmI", &()).await.unwrap();
            assert_eq!(
                (qos.as_str(), level.as_str()),
                ("identification", "identification")
            );
            drop(f);
            drop(conn);
            server.release_name("org.guise.Files1").await.unwrap();
        }
    });
    drop(users);
}
