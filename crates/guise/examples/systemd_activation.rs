//! Socket activation (`guise::systemd`): a named-pipe server that serves the
//! socket systemd made and passed (`LISTEN_FDS`), says `READY=1`, and runs each
//! request as its client (ImpersonateNamedPipeClient).
//!
//! `cargo run --example systemd_activation` starts itself under
//! `systemd-socket-activate` (Debian's systemd package), which makes the socket
//! and starts the server on the first connection, then connects as a client:
//! as root, as uid 61001 to read 61001's 0600 file; otherwise as the caller. As a
//! unit, the server is `ExecStart=` of a service whose `.socket` unit has
//! `ListenStream=/run/example.sock`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use guise::client::SecurityQos;
use guise::pipe::tokio::AsyncPipeServer;
use guise::pipe::{PipeAddr, PipeClient, ServerOptions};
use guise::pool::ImpersonationPool;
use guise::systemd::{Notice, notify};
use guise::{ImpersonationLevel, Token};

/// The server: started by systemd with the listening socket.
fn serve(listener: std::os::unix::net::UnixListener) -> Result<(), Box<dyn std::error::Error>> {
    let pool = Arc::new(ImpersonationPool::new(2)?);
    let path = listener.local_addr()?.as_pathname().map(|p| p.to_owned());
    println!("server: serving the socket systemd passed ({path:?})");
    tokio::runtime::Runtime::new()?.block_on(async {
        // The socket stays systemd's: the server does not remove it.
        let addr = PipeAddr::Path(path.unwrap_or_default());
        let server = AsyncPipeServer::from_listener(listener, addr, ServerOptions::default())?;
        notify(&[Notice::Ready])?; // READY=1 (a no-op outside a Type=notify unit)
        // This example serves its first client and ends; a service loops.
        let mut conn = server.accept().await?;
        while let Some(request) = conn.read_message().await? {
            let path = String::from_utf8_lossy(&request).into_owned();
            let answer = conn
                .run_as_client(&pool, move || {
                    let euid = rustix::process::geteuid().as_raw();
                    match std::fs::read_to_string(&path) {
                        Ok(text) => format!("as euid {euid}: read {:?}", text.trim()),
                        Err(e) => format!("as euid {euid}: {e}"),
                    }
                })
                .await?;
            conn.write_message(answer.as_bytes()).await?;
        }
        notify(&[Notice::Stopping])?;
        Ok(())
    })
}

/// The launcher: starts the server under `systemd-socket-activate`, then is its
/// client.
fn launch() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, file, root) = common::client_file()?;
    let socket = dir.path().join("pipe");
    let mut systemd = std::process::Command::new("systemd-socket-activate")
        .arg("--listen")
        .arg(&socket)
        .arg(std::env::current_exe()?)
        .spawn()
        .map_err(|e| format!("systemd-socket-activate (Debian's systemd package): {e}"))?;
    while !socket.exists() {
        if let Some(status) = systemd.try_wait()? {
            return Err(format!("systemd-socket-activate ended: {status}").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::set_permissions(&socket, PermissionsExt::from_mode(0o666))?;
    let addr = PipeAddr::Path(socket);
    let path = file.to_string_lossy().into_owned();
    // The client, on a thread of its own; as root, as uid 61001. Its connection
    // starts the server.
    let client = guise::thread::spawn(move || -> guise::Result<(u32, Vec<u8>)> {
        let _as_61001 = root
            .then(|| Token::from_ids(61001, 61001, &[61001])?.impersonate())
            .transpose()?;
        let qos = SecurityQos {
            level: ImpersonationLevel::Impersonation,
            ..SecurityQos::default()
        };
        let mut pipe = PipeClient::connect(&addr, qos)?;
        let reply = pipe.transact(path.as_bytes())?;
        Ok((rustix::process::geteuid().as_raw(), reply))
    })?;
    let (uid, reply) = client.join().map_err(|_| "the client panicked")??;
    println!(
        "client uid {uid}: the kernel answered {}",
        String::from_utf8_lossy(&reply)
    );
    let status = systemd.wait()?;
    println!("the server exited: {status}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // LISTEN_FDS and LISTEN_PID name this process: systemd started it.
    match guise::systemd::unix_listener(None)? {
        Some(listener) => serve(listener),
        None => launch(),
    }
}
