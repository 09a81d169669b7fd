//! The admission limits of the command line: the flags `guise serve` and
//! `guise rpc serve` share, with the library's one set of defaults
//! ([`guise::admission`]).

use std::time::Duration;

use guise::admission::{self, Limits};

/// How many connections a server keeps and for how long (`--max-connections`,
/// `--max-connections-per-uid`, `--idle-timeout`, `--request-timeout`).
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectionArgs {
    /// The most connections kept open; a new client over it closes the
    /// connection idle the longest (or is refused if none is idle).
    #[arg(long, default_value_t = admission::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// The most connections of one uid kept open; a new one over it is closed at
    /// once.
    #[arg(long, default_value_t = admission::DEFAULT_MAX_CONNECTIONS_PER_UID)]
    pub max_connections_per_uid: usize,
    /// Seconds a connection may stay idle (waiting for a request; for gRPC,
    /// without traffic either way) before it is closed.
    #[arg(long, default_value_t = admission::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,
    /// Seconds a request may stall once begun (each frame of a pipe request; the
    /// next chunk of a gRPC write, or taking the next chunk of a read) before it
    /// is given up.
    #[arg(long, default_value_t = admission::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub request_timeout: u64,
}

impl Default for ConnectionArgs {
    /// The library's defaults.
    fn default() -> Self {
        ConnectionArgs {
            max_connections: admission::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_uid: admission::DEFAULT_MAX_CONNECTIONS_PER_UID,
            idle_timeout: admission::DEFAULT_IDLE_TIMEOUT.as_secs(),
            request_timeout: admission::DEFAULT_REQUEST_TIMEOUT.as_secs(),
        }
    }
}

impl ConnectionArgs {
    /// The request timeout (at least one second).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout.max(1))
    }

    /// `limits` with these flags' values (timeouts at least one second).
    pub fn apply(&self, mut limits: Limits) -> Limits {
        limits.max_connections = self.max_connections;
        limits.max_connections_per_uid = self.max_connections_per_uid;
        limits.idle_timeout = Some(Duration::from_secs(self.idle_timeout.max(1)));
        limits.request_timeout = Some(self.request_timeout());
        limits
    }
}
