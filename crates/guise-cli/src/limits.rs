//! The admission limits of the command line: the flags `guise serve` and
//! `guise rpc serve` share, with the library's one set of defaults
//! ([`guise::admission`]).

use std::time::Duration;

use guise::admission::{self, Limits};

/// The most impersonation workers a server starts (`--workers`): each is a
/// thread; more than this would only fail to start, or thrash.
pub const MAX_WORKERS: u64 = 1024;
/// The most connections a server keeps (`--max-connections`,
/// `--max-connections-per-uid`): each is a file descriptor, and Linux lets a
/// process hold at most this many (`fs.nr_open`'s default).
pub const MAX_CONNECTIONS: u64 = 1 << 20;
/// The most calls of one uid in flight (`--max-calls-per-uid`).
pub const MAX_CALLS_PER_UID: u64 = 65_536;
/// The longest timeout in seconds (`--idle-timeout`, `--request-timeout`,
/// `--handshake-timeout`, a client's `--timeout`): one day. Far longer ones
/// would overflow a deadline.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;
/// The most bytes of D-Bus replies held (`--max-reply-bytes-per-uid`,
/// `--max-reply-bytes`): 4 GiB.
pub const MAX_REPLY_BYTES: u64 = 4 << 30;

/// A parser of a count given on the command line, refusing (exit status 2, with
/// clap's message: "0 is not in 1..=1024") a value outside `1..=max`.
pub fn count(max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=max)
}

/// A parser of seconds given on the command line, refusing a value outside
/// `1..=MAX_TIMEOUT_SECS`.
pub fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::<u64>::new().range(1..=MAX_TIMEOUT_SECS)
}

/// A parser of a file offset given on the command line, refusing one past the
/// largest Linux has (`i64::MAX`, `loff_t`'s).
pub fn offset() -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::<u64>::new().range(0..=i64::MAX as u64)
}

/// A parser of a number of bytes given on the command line, refusing a value
/// outside `1..=max`.
pub fn bytes(max: u64) -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::<u64>::new().range(1..=max)
}

/// How many connections a server keeps and for how long (`--max-connections`,
/// `--max-connections-per-uid`, `--idle-timeout`, `--request-timeout`).
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectionArgs {
    /// The most connections kept open; a new client over it closes the
    /// connection idle the longest (or is refused if none is idle). 1 to
    /// 1048576.
    #[arg(long, default_value_t = admission::DEFAULT_MAX_CONNECTIONS, value_parser = count(MAX_CONNECTIONS))]
    pub max_connections: usize,
    /// The most connections of one uid kept open; a new one over it is closed at
    /// once. 1 to 1048576.
    #[arg(long, default_value_t = admission::DEFAULT_MAX_CONNECTIONS_PER_UID, value_parser = count(MAX_CONNECTIONS))]
    pub max_connections_per_uid: usize,
    /// Seconds a connection may stay idle (waiting for a request; for gRPC,
    /// without traffic either way) before it is closed. 1 to 86400.
    #[arg(long, default_value_t = admission::DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = seconds())]
    pub idle_timeout: u64,
    /// Seconds a request may stall once begun (each frame of a pipe request; the
    /// next chunk of a gRPC write, or taking the next chunk of a read) before it
    /// is given up. 1 to 86400.
    #[arg(long, default_value_t = admission::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_parser = seconds())]
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
