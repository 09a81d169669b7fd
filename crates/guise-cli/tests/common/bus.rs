//! A private D-Bus bus for a test: throwaway accounts (the bus daemon and the
//! server look callers up), a `dbus-daemon` with a system-like policy that includes
//! the policy guise ships (`contrib/dbus/org.guise.Files1.conf`), and
//! `guise dbus serve` on it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::GUISE;
use super::server::Server;

/// The first throwaway account; the others follow (61001 ... 61008).
pub const FIRST: u32 = 61001;
/// How many throwaway accounts there are.
pub const USERS: u32 = 8;

/// Moves the calling thread (and so every process and thread it starts from now
/// on) into a private mount namespace where `/etc/passwd` and `/etc/group` also
/// hold the accounts `guiseuN` (uid and primary group 61000 + N). The machine's
/// files stay untouched. Keep the returned directory for the test's duration.
pub fn accounts() -> tempfile::TempDir {
    accounts_for(USERS)
}

/// As [`accounts`], with `users` accounts (61001 ... 61000 + `users`).
pub fn accounts_for(users: u32) -> tempfile::TempDir {
    let (mut passwd, mut group) = (String::new(), String::new());
    for uid in FIRST..FIRST + users {
        let n = uid - 61000;
        passwd.push_str(&format!(
            "guiseu{n}:x:{uid}:{uid}:guise test {n}:/nonexistent:/bin/sh\n"
        ));
        group.push_str(&format!("guiseu{n}:x:{uid}:\n"));
    }
    super::with_accounts(&passwd, &group)
}

/// A running private `dbus-daemon`, killed on drop.
pub struct Bus {
    child: Child,
    /// The bus's socket file.
    pub socket: PathBuf,
}

impl Bus {
    /// The bus's D-Bus address.
    pub fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a `dbus-daemon` listening in `dir` (which any user may traverse), with
/// the policy of a system bus and guise's own policy file.
pub fn start_bus(dir: &Path) -> Bus {
    let socket = dir.join("bus");
    let policy = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contrib/dbus/org.guise.Files1.conf")
        .canonicalize()
        .unwrap();
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"#,
            socket = socket.display(),
            policy = policy.display()
        ),
    )
    .unwrap();
    // Killed and reaped on drop, also if it never answers.
    let bus = Bus {
        child: Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian's dbus-daemon package)"),
        socket,
    };
    for _ in 0..500 {
        if std::os::unix::net::UnixStream::connect(&bus.socket).is_ok() {
            std::fs::set_permissions(
                &bus.socket,
                std::os::unix::fs::PermissionsExt::from_mode(0o666),
            )
            .unwrap();
            return bus;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("dbus-daemon did not start");
}

/// Starts `guise dbus serve` on `bus` for `root` and waits until it owns its name.
pub fn start_service(bus: &Bus, root: &Path, extra: &[&str]) -> Server {
    let server = Server::new(
        Command::new(GUISE)
            .args(["dbus", "serve", "--address", &bus.address(), "--root"])
            .arg(root)
            .args(extra)
            .env("GUISE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        bus.socket.clone(),
    );
    for _ in 0..500 {
        let owned = Command::new("dbus-send")
            .arg(format!("--bus={}", bus.address()))
            .args([
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.guise.Files1",
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&owned.stdout).contains("boolean true") {
            return server;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("guise dbus serve did not take its name");
}

/// A zbus connection to `bus` that the bus daemon sees as `uid`: the socket is
/// connected on a thread that impersonates `uid` (the kernel records the effective
/// ids of the thread that connects), and EXTERNAL authentication claims `uid`.
pub async fn bus_as(bus: &Bus, uid: u32) -> zbus::Connection {
    let token = guise::Token::from_ids(uid, uid, &[uid]).unwrap();
    let path = bus.socket.clone();
    let std = guise::thread::spawn(move || {
        token.run_as(|| std::os::unix::net::UnixStream::connect(&path))
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap()
    .unwrap();
    std.set_nonblocking(true).unwrap();
    zbus::connection::Builder::unix_stream(tokio::net::UnixStream::from_std(std).unwrap())
        .user_id(uid)
        .build()
        .await
        .unwrap()
}

/// A proxy for guise's file service (`org.guise.Files1`) on `conn`.
pub async fn proxy(conn: &zbus::Connection) -> zbus::Proxy<'static> {
    zbus::Proxy::new(
        conn,
        "org.guise.Files1",
        "/org/guise/Files1",
        "org.guise.Files1",
    )
    .await
    .unwrap()
}
