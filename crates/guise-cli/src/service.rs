//! What a service of guise does under systemd: the socket it was passed, and the
//! notices it sends (`READY=1`, `STATUS=`, `STOPPING=1`, `WATCHDOG=1`).

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use guise::systemd::{Notice, notify, watchdog_interval};

/// The sockets systemd passed this process (`LISTEN_FDS`), taken once; a
/// server takes those it serves, and [`Passed::finish`] refuses any left over
/// (a unit that passes a socket no one serves is a mistake to report, not to
/// ignore).
pub struct Passed(Vec<guise::systemd::ListenFd>);

impl Passed {
    /// Takes the sockets systemd passed (none outside socket activation).
    pub fn take() -> Result<Passed> {
        Ok(Passed(guise::systemd::listen_fds()?))
    }

    /// Whether systemd passed a Unix socket not yet taken.
    pub fn has_unix(&self) -> bool {
        self.0
            .iter()
            .any(guise::systemd::ListenFd::is_unix_listener)
    }

    /// Takes the passed socket named `name`, else the only one `kind` accepts.
    fn pick(
        &mut self,
        name: Option<&str>,
        kind: fn(&guise::systemd::ListenFd) -> bool,
        what: &str,
    ) -> Result<Option<guise::systemd::ListenFd>> {
        let i = match name {
            Some(want) => match self.0.iter().position(|f| f.name.as_deref() == Some(want)) {
                Some(i) => i,
                None if self.0.is_empty() => return Ok(None),
                None => bail!("systemd passed no socket named {want:?} (FileDescriptorName=)"),
            },
            None => {
                let of_kind: Vec<usize> = (0..self.0.len()).filter(|&i| kind(&self.0[i])).collect();
                match of_kind[..] {
                    [] => return Ok(None),
                    [i] => i,
                    _ => bail!(
                        "systemd passed {} {what} sockets and this server serves one: give the unit \
                         one (for IPv4 and IPv6 at once, one ListenStream= of a port with \
                         BindIPv6Only=both), or name them (FileDescriptorName=)",
                        of_kind.len()
                    ),
                }
            }
        };
        Ok(Some(self.0.remove(i)))
    }

    /// The Unix socket a service serves: the one systemd passed (the one named
    /// `name` if several), else none, and `--socket` is bound. With a passed
    /// socket, `--socket` may name its path, and must be that path.
    ///
    /// # Errors
    /// Neither a passed socket nor `--socket`; a passed socket of that name that
    /// is not a listening Unix stream socket; `--socket` naming another path.
    pub fn unix(
        &mut self,
        socket: Option<&Path>,
        name: Option<&str>,
    ) -> Result<(Option<UnixListener>, PathBuf)> {
        let Some(passed) = self.pick(name, guise::systemd::ListenFd::is_unix_listener, "Unix")?
        else {
            let Some(path) = socket else {
                bail!("--socket is needed unless systemd passes the socket (LISTEN_FDS)");
            };
            return Ok((None, path.to_owned()));
        };
        let listener = passed.into_unix_listener()?;
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

    /// The TCP socket systemd passed (the one named `name` if several), if any.
    ///
    /// # Errors
    /// A socket of that name that is not a listening TCP socket; several and no
    /// name.
    pub fn tcp(&mut self, name: Option<&str>) -> Result<Option<std::net::TcpListener>> {
        let Some(passed) = self.pick(name, guise::systemd::ListenFd::is_tcp_listener, "TCP")?
        else {
            return Ok(None);
        };
        let listener = passed.into_tcp_listener()?;
        tracing::info!(
            target: "guise::service",
            address = %listener.local_addr()?,
            "serving the TCP socket systemd passed"
        );
        Ok(Some(listener))
    }

    /// Refuses sockets systemd passed that the server does not serve.
    ///
    /// # Errors
    /// Any left.
    pub fn finish(self) -> Result<()> {
        if let Some(left) = self.0.first() {
            let kind = if left.is_unix_listener() {
                "a Unix socket"
            } else if left.is_tcp_listener() {
                "a TCP socket"
            } else {
                "a descriptor that is not a listening stream socket"
            };
            bail!(
                "systemd passed {kind}{} that this server does not serve",
                left.name
                    .as_deref()
                    .map(|n| format!(" named {n:?}"))
                    .unwrap_or_default()
            );
        }
        Ok(())
    }
}

/// The Unix socket a service serves ([`Passed::unix`]), when it serves nothing
/// else.
pub fn listener(
    socket: Option<&Path>,
    name: Option<&str>,
) -> Result<(Option<UnixListener>, PathBuf)> {
    let mut passed = Passed::take()?;
    let unix = passed.unix(socket, name)?;
    passed.finish()?;
    Ok(unix)
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
