//! Running under systemd: socket activation and service notifications.
//!
//! - [`listen_fds`] takes the listening sockets systemd passed (`LISTEN_FDS`,
//!   `LISTEN_FDNAMES`, from a `.socket` unit or `systemd-socket-activate`), so a
//!   service serves a socket systemd created, with the mode and owner the unit
//!   gave it, and can start on its first connection.
//! - [`notify`] tells the service manager how the service is doing (`NOTIFY_SOCKET`,
//!   for `Type=notify` units): [`Notice::Ready`] once it serves, [`Notice::Status`]
//!   as it goes, [`Notice::Stopping`] when it begins to stop, and
//!   [`Notice::Watchdog`] every half [`watchdog_interval`] while it is alive.
//!
//! Outside systemd each is a no-op: no descriptors, and notifications go nowhere.
//!
//! # Example
//! A service that serves the socket of its `.socket` unit (the whole of one, run
//! under `systemd-socket-activate`, is the repository's
//! `crates/guise/examples/systemd_activation.rs`):
//!
//! ```no_run
//! use guise::pipe::tokio::AsyncPipeServer;
//! use guise::pipe::{PipeAddr, ServerOptions};
//! use guise::systemd::{notify, unix_listener, Notice};
//!
//! # async fn serve() -> guise::Result<()> {
//! let listener = unix_listener(None)?.expect("started by systemd with a socket");
//! let addr = PipeAddr::Path("/run/reports.sock".into());
//! let server = AsyncPipeServer::from_listener(listener, addr, ServerOptions::default())?;
//! notify(&[Notice::Ready])?; // READY=1
//! # let _ = server;
//! # Ok(())
//! # }
//! ```

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// A descriptor systemd passed, with the name its unit gave it
/// (`FileDescriptorName=`; systemd's default is the socket unit's name).
#[derive(Debug)]
#[non_exhaustive]
pub struct ListenFd {
    /// The descriptor, close-on-exec.
    pub fd: OwnedFd,
    /// Its name from `LISTEN_FDNAMES`, if systemd gave names.
    pub name: Option<String>,
}

/// Takes the descriptors systemd passed to this process (`LISTEN_FDS` with
/// `LISTEN_PID` naming this process). The first call takes them; later calls
/// return none. Without socket activation: none.
///
/// # Errors
/// [`ErrorKind::InvalidParameter`] when the variables are malformed.
pub fn listen_fds() -> Result<Vec<ListenFd>> {
    if !crate::sys::activation::claim() {
        return Ok(Vec::new());
    }
    let named: Vec<(i32, Option<String>)> = match sd_notify::listen_fds_with_names() {
        Ok(fds) => fds.map(|(fd, name)| (fd, Some(name))).collect(),
        Err(_) => sd_notify::listen_fds()
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::InvalidParameter,
                    "LISTEN_FDS from the service manager",
                    e,
                )
            })?
            .map(|fd| (fd, None))
            .collect(),
    };
    let names: std::collections::HashMap<i32, Option<String>> = named.iter().cloned().collect();
    let fds = crate::sys::activation::take(named.iter().map(|(fd, _)| *fd));
    Ok(fds
        .into_iter()
        .map(|fd| {
            let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
            let name = names
                .get(&raw)
                .cloned()
                .flatten()
                .filter(|n| !n.is_empty() && n != "unknown");
            ListenFd { fd, name }
        })
        .collect())
}

/// The listening Unix stream socket systemd passed, if any: the one named `name`
/// when given, else the only one.
///
/// # Errors
/// [`ErrorKind::InvalidParameter`] when systemd passed descriptors but none fits:
/// none of that name, several and no name asked for, or one that is not a
/// listening Unix stream socket.
pub fn unix_listener(name: Option<&str>) -> Result<Option<UnixListener>> {
    let mut fds = listen_fds()?;
    if fds.is_empty() {
        return Ok(None);
    }
    let fd = match name {
        Some(want) => {
            let i = fds
                .iter()
                .position(|f| f.name.as_deref() == Some(want))
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidParameter,
                        format!("systemd passed no socket named {want:?}"),
                    )
                })?;
            fds.swap_remove(i).fd
        }
        None if fds.len() == 1 => fds.remove(0).fd,
        None => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!(
                    "systemd passed {} sockets; name the one to serve (FileDescriptorName=)",
                    fds.len()
                ),
            ));
        }
    };
    ListenFd { fd, name: None }.into_unix_listener().map(Some)
}

impl ListenFd {
    /// Whether it is a listening stream socket of the address `family`.
    fn listens(&self, family: &[rustix::net::AddressFamily]) -> bool {
        use rustix::net::{SocketType, sockopt};
        sockopt::socket_domain(&self.fd).is_ok_and(|f| family.contains(&f))
            && sockopt::socket_type(&self.fd).ok() == Some(SocketType::STREAM)
            && sockopt::socket_acceptconn(&self.fd).ok() == Some(true)
    }

    /// Whether it is a listening Unix stream socket.
    pub fn is_unix_listener(&self) -> bool {
        self.listens(&[rustix::net::AddressFamily::UNIX])
    }

    /// Whether it is a listening TCP socket (IPv4 or IPv6).
    pub fn is_tcp_listener(&self) -> bool {
        use rustix::net::AddressFamily;
        self.listens(&[AddressFamily::INET, AddressFamily::INET6])
    }

    /// The listening Unix stream socket it is.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] if it is not one.
    pub fn into_unix_listener(self) -> Result<UnixListener> {
        if !self.is_unix_listener() {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "the socket systemd passed is not a listening Unix stream socket",
            ));
        }
        Ok(UnixListener::from(self.fd))
    }

    /// The listening TCP socket it is (a `ListenStream=` of an address and port).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] if it is not one.
    pub fn into_tcp_listener(self) -> Result<std::net::TcpListener> {
        if !self.is_tcp_listener() {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "the socket systemd passed is not a listening TCP socket",
            ));
        }
        Ok(std::net::TcpListener::from(self.fd))
    }
}

/// What a service tells its service manager.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// `READY=1`: start-up is over; the service serves.
    Ready,
    /// `STATUS=…`: a line for `systemctl status`.
    Status(String),
    /// `STOPPING=1`: the service begins to stop.
    Stopping,
    /// `WATCHDOG=1`: the service is alive.
    Watchdog,
}

/// Sends `notices` to the service manager in one message (`sd_notify`); without
/// `NOTIFY_SOCKET`, nothing.
///
/// # Errors
/// [`ErrorKind::Os`] if the message cannot be sent.
pub fn notify(notices: &[Notice]) -> Result<()> {
    let states: Vec<sd_notify::NotifyState<'_>> = notices
        .iter()
        .map(|n| match n {
            Notice::Ready => sd_notify::NotifyState::Ready,
            Notice::Status(s) => sd_notify::NotifyState::Status(s),
            Notice::Stopping => sd_notify::NotifyState::Stopping,
            Notice::Watchdog => sd_notify::NotifyState::Watchdog,
        })
        .collect();
    sd_notify::notify(&states)
        .map_err(|e| Error::sys(ErrorKind::Os, "notifying the service manager", &e))
}

/// How often the service manager expects [`Notice::Watchdog`]
/// (`WATCHDOG_USEC`, for this process); `None` without a watchdog. Send it every
/// half of this.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}
