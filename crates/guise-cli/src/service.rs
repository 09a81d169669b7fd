//! What a service of guise does under systemd: the socket it was passed, and the
//! notices it sends (`READY=1`, `STATUS=`, `STOPPING=1`, `WATCHDOG=1`).

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use guise::systemd::{Notice, notify, watchdog_interval};

/// The socket a service serves: the one systemd passed (`LISTEN_FDS`; the one named
/// `name` if several), else none, and `--socket` is bound. With a passed socket,
/// `--socket` may name its path, and must be that path.
///
/// # Errors
/// Neither a passed socket nor `--socket`; a passed socket that is not a listening
/// Unix stream socket; `--socket` naming another path.
pub fn listener(
    socket: Option<&Path>,
    name: Option<&str>,
) -> Result<(Option<UnixListener>, PathBuf)> {
    let Some(listener) = guise::systemd::unix_listener(name)? else {
        let Some(path) = socket else {
            bail!("--socket is needed unless systemd passes the socket (LISTEN_FDS)");
        };
        return Ok((None, path.to_owned()));
    };
    let local = listener.local_addr()?;
    let path = local.as_pathname().map(Path::to_owned);
    match (socket, &path) {
        (Some(want), Some(have)) if want != have => bail!(
            "systemd passed the socket {}, not --socket {}",
            have.display(),
            want.display()
        ),
        (Some(want), None) => bail!(
            "systemd passed an abstract or unnamed socket, not --socket {}",
            want.display()
        ),
        _ => {}
    }
    let path = path.unwrap_or_else(|| PathBuf::from("(socket from systemd)"));
    tracing::info!(
        target: "guise::service",
        socket = %path.display(),
        "serving the socket systemd passed"
    );
    Ok((Some(listener), path))
}

/// Records that a server serves `root` over `transport` on `address` (event
/// `serving`, target `guise::service`, at `info`, which is written by default):
/// the first thing an administrator looks for in the journal.
pub fn serving(transport: &str, address: &str, root: &Path) {
    tracing::info!(
        target: "guise::service",
        event = "serving",
        transport,
        address,
        root = %root.display(),
        "serving {} over {transport} on {address}",
        root.display()
    );
}

/// Records that a server stopped (event `stopped`, target `guise::service`).
pub fn stopped(transport: &str) {
    tracing::info!(
        target: "guise::service",
        event = "stopped",
        transport,
        "stopped serving over {transport}"
    );
}

/// Tells the service manager the service serves, with a status line.
pub fn ready(status: &str) {
    send(&[Notice::Ready, Notice::Status(status.to_owned())]);
}

/// Tells the service manager the service begins to stop.
pub fn stopping(status: &str) {
    send(&[Notice::Stopping, Notice::Status(status.to_owned())]);
}

/// Sends `WATCHDOG=1` every half of the watchdog interval while the runtime runs,
/// if the service manager asked for a watchdog. Call it inside a tokio runtime.
pub fn spawn_watchdog() {
    if let Some(every) = watchdog_interval() {
        let half = (every / 2).max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(half);
            loop {
                tick.tick().await;
                send(&[Notice::Watchdog]);
            }
        });
    }
}

fn send(notices: &[Notice]) {
    if let Err(e) = notify(notices) {
        tracing::warn!(%e, "cannot notify the service manager");
    }
}
