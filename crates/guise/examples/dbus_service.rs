//! DdeImpersonateClient on D-Bus (`guise::dbus`, zbus): a service whose methods
//! run on an impersonation worker as their caller, whose identity the bus daemon
//! gives (never the message), at the level the caller allowed with
//! `SetQualityOfService` (DdeSetQualityOfService; Identification until then).
//!
//! `cargo run --example dbus_service` starts a private `dbus-daemon` (Debian's
//! dbus-daemon package) whose policy lets any user connect, serves
//! `org.guise.Example1` on it and calls it. As root the caller is `nobody` (uid
//! 65534; the server takes a caller's primary group from its account, so the
//! caller must have one) and the file is nobody's, mode 0600; otherwise the
//! caller is the caller of the example.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;

use guise::dbus::DbusClients;
use guise::pool::ImpersonationPool;
use guise::{ImpersonationLevel, Token};
use zbus::fdo;
use zbus::message::Header;

const NAME: &str = "org.guise.Example1";
const PATH: &str = "/org/guise/Example1";

/// The bus's configuration: any user may connect, own names and call.
const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"#;

/// What a worker impersonating the caller gets from the kernel for `path`.
fn read_as_caller(path: &str) -> String {
    let euid = rustix::process::geteuid().as_raw(); // this thread's, not the process's
    match std::fs::read_to_string(path) {
        Ok(text) => format!("as euid {euid}: read {:?}", text.trim()),
        Err(e) => format!("as euid {euid}: {e}"),
    }
}

fn failed(e: guise::Error) -> fdo::Error {
    fdo::Error::Failed(e.to_string())
}

/// The service.
struct Files {
    clients: Arc<DbusClients>,
    pool: Arc<ImpersonationPool>,
}

#[zbus::interface(name = "org.guise.Example1")]
impl Files {
    /// DdeSetQualityOfService: how far the server may act as this caller, for
    /// the rest of its connection.
    async fn set_quality_of_service(
        &self,
        #[zbus(header)] header: Header<'_>,
        level: String,
    ) -> fdo::Result<()> {
        let level: ImpersonationLevel = level.parse().map_err(failed)?;
        self.clients
            .set_quality_of_service(&header, level)
            .await
            .map_err(failed)
    }

    /// What the kernel answers when a worker impersonating the caller reads `path`.
    async fn read(&self, #[zbus(header)] header: Header<'_>, path: String) -> fdo::Result<String> {
        let call = self.clients.call(&header).await.map_err(failed)?;
        // DdeImpersonateClient on a worker thread, RevertToSelf after it.
        call.run_as_client(&self.pool, move || read_as_caller(&path))
            .await
            .map_err(failed)
    }
}

/// Kills the bus daemon when dropped.
struct Bus(std::process::Child);

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = rustix::process::geteuid().is_root();
    let uid = if root {
        65534
    } else {
        rustix::process::geteuid().as_raw()
    };
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755))?;
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, format!("uid {uid}'s notes\n"))?;
    std::fs::set_permissions(&file, PermissionsExt::from_mode(0o600))?;
    std::os::unix::fs::chown(&file, Some(uid), None)?;

    // A private bus.
    let socket = dir.path().join("bus");
    let config = dir.path().join("bus.conf");
    std::fs::write(
        &config,
        BUS_CONFIG.replace("SOCKET", &socket.to_string_lossy()),
    )?;
    let _bus = Bus(Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .arg("--nofork")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("dbus-daemon (Debian's dbus-daemon package): {e}"))?);
    for _ in 0..500 {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::set_permissions(&socket, PermissionsExt::from_mode(0o666))?;
    let address = format!("unix:path={}", socket.display());

    // The workers first, before anything impersonates.
    let pool = Arc::new(ImpersonationPool::new(4)?);
    tokio::runtime::Runtime::new()?.block_on(async {
        // The service.
        let server = zbus::connection::Builder::address(address.as_str())?
            .build()
            .await?;
        let clients = DbusClients::new(&server, ImpersonationLevel::Delegation).await?;
        server
            .object_server()
            .at(PATH, Files { clients, pool })
            .await?;
        server.request_name(NAME).await?;

        // The caller: the bus daemon reads its identity from the socket, which a
        // thread impersonating `uid` connects (as root); EXTERNAL then claims it.
        let bus = socket.clone();
        let stream = guise::thread::spawn(move || -> Result<_, String> {
            let _as_uid = root
                .then(|| Token::from_ids(uid, uid, &[uid])?.impersonate())
                .transpose()
                .map_err(|e| e.to_string())?;
            std::os::unix::net::UnixStream::connect(&bus).map_err(|e| e.to_string())
        })?
        .join()
        .map_err(|_| "the client panicked")??;
        stream.set_nonblocking(true)?;
        let caller =
            zbus::connection::Builder::unix_stream(tokio::net::UnixStream::from_std(stream)?)
                .user_id(uid)
                .build()
                .await?;
        let call = |method: &'static str, arg: String| {
            let caller = caller.clone();
            async move {
                caller
                    .call_method(Some(NAME), PATH, Some(NAME), method, &(arg,))
                    .await
            }
        };
        call("SetQualityOfService", "impersonation".into()).await?;
        let reply = call("Read", file.to_string_lossy().into_owned()).await?;
        let answer: String = reply.body().deserialize()?;
        println!("caller uid {uid}, as the bus daemon says: the kernel answered {answer}");
        Ok(())
    })
}
