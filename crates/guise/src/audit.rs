//! The audit trail: one typed function per event, one schema of fields.
//!
//! Every event is a `tracing` event with target `guise::audit` and a field
//! `event` that names it; a field of the same name means the same thing in every
//! event (`docs/audit.md` lists them):
//!
//! - `uid`, `gid`: the identity that *acted* (a worker impersonating a client at
//!   Identification level acts as the sentinel, and says so); `acting_uid`: the
//!   process's effective uid where the process acted for someone;
//! - `client_uid`, `pid`: who asked, as the kernel, the bus daemon or Kerberos
//!   vouched for it;
//! - `impersonation_level`: the level the work ran at;
//! - `transport`: `pipe`, `grpc`, `dbus` or `kerberos`;
//! - `result`: `ok`, or the Win32 name of the error (`ERROR_ACCESS_DENIED`, ...);
//! - `limit`: the admission limit a refusal or eviction was over (see
//!   [`crate::admission`]).
//!
//! Events at `info` make the trail of a service; refusals over a limit and
//! evictions are at `warn` and rate-limited (at most one a second per kind,
//! with `suppressed` counting the others), so that a flood cannot drown the
//! log. Denials and refused logons are at `warn` too, one a second of each
//! kind, the others at `info` (so the trail keeps every one); thread
//! impersonations and reverts are at `debug`.
//!
//! Names that come from clients (paths, principals, programs) are kept as
//! given in the event's fields; use the JSON form of the log, or a formatter
//! that escapes control characters, when the log is read by a terminal. The
//! event's message, a line for a person, escapes them (`\x0a`).
//!
//! # Example
//! Events go wherever the application's `tracing` subscriber sends them
//! (`tracing-subscriber`'s `fmt` layer, journald, JSON); a server that serves a
//! request of its own records it with the common fields:
//!
//! ```
//! use guise::audit::{self, Request, Transport};
//! use guise::ImpersonationLevel;
//!
//! let read: guise::Result<Vec<u8>> =
//!     Err(guise::Error::os(guise::ErrorKind::AccessDenied, "opening \"reports/2026.txt\"", 13));
//! audit::request(&Request {
//!     transport: Transport::Pipe,
//!     op: "read",
//!     path: "reports/2026.txt",
//!     uid: 1000,
//!     gid: 1000,
//!     level: ImpersonationLevel::Impersonation,
//!     client_uid: 1000,
//!     pid: 4242,
//!     access: "FILE_READ_DATA",
//!     bytes: 0,
//!     result: audit::result_of(&read), // "ERROR_ACCESS_DENIED"
//!     missing: audit::missing_of(&read, "FILE_READ_DATA"), // the kernel's EACCES
//! });
//! assert_eq!(audit::result_of(&read), "ERROR_ACCESS_DENIED");
//! assert_eq!(audit::missing_of(&read, "FILE_READ_DATA"), Some("FILE_READ_DATA"));
//! ```

use std::net::IpAddr;

use crate::error::Error;
use crate::listener::RateLimited;
use crate::token::ImpersonationLevel;

/// The transport a client came by, as the trail names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// The named pipe (a Unix socket).
    Pipe,
    /// gRPC on a Unix socket, or over Kerberos on TCP.
    Grpc,
    /// D-Bus.
    Dbus,
    /// The Kerberos handshake on TCP, before gRPC.
    Kerberos,
}

impl Transport {
    /// Its name in the trail: `pipe`, `grpc`, `dbus` or `kerberos`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Pipe => "pipe",
            Transport::Grpc => "grpc",
            Transport::Dbus => "dbus",
            Transport::Kerberos => "kerberos",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `result` field of an outcome: `ok`, or the error's Win32 name.
pub fn result_of<T>(r: &std::result::Result<T, Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.kind().win32_name(),
    }
}

/// The `missing` field of an outcome: `access`, when the request was refused
/// because the identity that acted lacks it, that is an `ERROR_ACCESS_DENIED`
/// the kernel gave (`EACCES`, `EPERM`); `None` for success, any other error,
/// and a refusal by the service's own rules (a path outside the served
/// directory, a symlink it does not follow), for which no right was missing.
pub fn missing_of<'a, T>(r: &std::result::Result<T, Error>, access: &'a str) -> Option<&'a str> {
    match r {
        Err(e) if lacks_right(e) => Some(access),
        _ => None,
    }
}

/// Whether `e` is a refusal for a right the identity lacks: an
/// `ERROR_ACCESS_DENIED` whose cause is the kernel's `EACCES` or `EPERM`.
pub fn lacks_right(e: &Error) -> bool {
    const EPERM: i32 = 1;
    const EACCES: i32 = 13;
    e.kind() == crate::error::ErrorKind::AccessDenied && matches!(e.errno(), Some(EACCES | EPERM))
}

/// One request a server served or refused: the `request` event.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// How the client came.
    pub transport: Transport,
    /// What it asked for (`read`, `write`, `list`, `stat`, `whoami`, ...).
    pub op: &'a str,
    /// The object it named (a path relative to the served directory; may be
    /// empty).
    pub path: &'a str,
    /// The uid that acted.
    pub uid: u32,
    /// The gid that acted.
    pub gid: u32,
    /// The level it acted at.
    pub level: ImpersonationLevel,
    /// Who asked: its uid, as the transport vouched for it.
    pub client_uid: u32,
    /// Its process id, as the transport reported it (informational; 0 if none).
    pub pid: i32,
    /// The access the op needs (`FILE_READ_DATA`, ...).
    pub access: &'a str,
    /// Bytes moved for it.
    pub bytes: u64,
    /// `ok`, or the Win32 name of the error ([`result_of`]).
    pub result: &'a str,
    /// The right it was refused for lacking ([`missing_of`]): `None` unless the
    /// kernel denied it.
    pub missing: Option<&'a str>,
}

/// Whether a `result` is a denial: the identity may not do what it asked
/// (`ERROR_ACCESS_DENIED`), not at the level it allowed
/// (`ERROR_BAD_IMPERSONATION_LEVEL`), or lacks a privilege
/// (`ERROR_PRIVILEGE_NOT_HELD`). Denials are logged at `warn`.
pub fn is_denial(result: &str) -> bool {
    matches!(
        result,
        "ERROR_ACCESS_DENIED" | "ERROR_BAD_IMPERSONATION_LEVEL" | "ERROR_PRIVILEGE_NOT_HELD"
    )
}

impl Request<'_> {
    /// The event's message, one line for a person (the journal's `MESSAGE`):
    /// who asked, what, on what, and the outcome, such as
    /// `uid 62001 read root.txt: denied, missing FILE_READ_DATA`. When the
    /// work ran below Impersonation level, or as another uid than the client's,
    /// it says so (`... at identification as uid 4294967294: ...`). Control
    /// characters of the path are escaped (`\x0a`): the message is one line.
    ///
    /// ```
    /// # use guise::audit::{Request, Transport};
    /// # use guise::ImpersonationLevel;
    /// let r = Request {
    ///     transport: Transport::Pipe, op: "read", path: "root.txt", uid: 62001, gid: 62001,
    ///     level: ImpersonationLevel::Impersonation, client_uid: 62001, pid: 0,
    ///     access: "FILE_READ_DATA", bytes: 0, result: "ERROR_ACCESS_DENIED",
    ///     missing: Some("FILE_READ_DATA"),
    /// };
    /// assert_eq!(r.message(), "uid 62001 read root.txt: denied, missing FILE_READ_DATA");
    /// ```
    pub fn message(&self) -> String {
        use std::fmt::Write;
        let mut m = format!("uid {} {}", self.client_uid, printable(self.op));
        if !self.path.is_empty() {
            let _ = write!(m, " {}", printable(self.path));
        }
        if !matches!(
            self.level,
            ImpersonationLevel::Impersonation | ImpersonationLevel::Delegation
        ) {
            let _ = write!(m, " at {}", self.level);
        }
        if self.uid != self.client_uid {
            let _ = write!(m, " as uid {}", self.uid);
        }
        let _ = match (self.result, self.missing) {
            ("ok", _) if self.bytes > 0 => write!(m, ": ok, {} bytes", self.bytes),
            ("ok", _) => write!(m, ": ok"),
            (_, Some(missing)) => write!(m, ": denied, missing {missing}"),
            ("ERROR_ACCESS_DENIED", None) => {
                write!(m, ": refused by the service's rules, ERROR_ACCESS_DENIED")
            }
            (result, None) if is_denial(result) => write!(m, ": denied, {result}"),
            (result, None) => write!(m, ": failed, {result}"),
        };
        m
    }
}

/// `text` with its control characters escaped (`\x0a`, `\x1b`, `\x85`), and
/// the Unicode separators and bidirectional controls (`\u{2028}`, `\u{202e}`): a
/// name a client chose cannot start a forged line, drive a terminal or reorder
/// what is shown, in a message meant to be read as one line. (The event's fields
/// keep the name as given.)
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    // Besides the control characters: the line and paragraph separators, and
    // the bidirectional overrides and isolates, which reorder what a terminal
    // or a log viewer shows.
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c as u32, 0x2028 | 0x2029 | 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069)
    };
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c as u32 {
            n if unsafe_char(c) && n < 0x100 => out.push_str(&format!("\\x{n:02x}")),
            n if unsafe_char(c) => out.push_str(&format!("\\u{{{n:x}}}")),
            _ => out.push(c),
        }
    }
    out.into()
}

/// Records a request served or refused (event `request`): who acted, for whom,
/// at which level, on what, the access it needed and, when refused for lacking
/// it, the access that was missing (`missing`; absent for a refusal by the
/// service's own rules, such as a path outside the served directory). Its
/// message is [`Request::message`]. At `info`; a denial ([`is_denial`]) at
/// `warn`, one a second (the others of that second at `info`).
pub fn request(r: &Request<'_>) {
    macro_rules! request_at {
        ($level:expr) => {
            tracing::event!(
                target: "guise::audit",
                $level,
                event = "request",
                transport = r.transport.as_str(),
                uid = r.uid,
                gid = r.gid,
                client_uid = r.client_uid,
                pid = r.pid,
                impersonation_level = %r.level,
                op = r.op,
                path = r.path,
                access = r.access,
                missing = r.missing,
                bytes = r.bytes,
                result = r.result,
                "{}",
                r.message()
            )
        };
    }
    if is_denial(r.result) && DENIED.allow().is_some() {
        request_at!(tracing::Level::WARN);
    } else {
        request_at!(tracing::Level::INFO);
    }
}

/// Denials at `warn`: at most one a second of each kind (requests, network
/// logons, logons); the others of that second are at `info`, so that a flood
/// of them cannot use up the journal's warnings for the service (journald
/// limits each service's rate per priority) while the trail at `info` keeps
/// every one.
static DENIED: RateLimited = RateLimited::new();
static NETWORK_LOGON_REFUSED: RateLimited = RateLimited::new();
static LOGON_REFUSED: RateLimited = RateLimited::new();

/// The journal's `MESSAGE_ID` of each event of the trail, by its `event` name:
/// 128-bit ids in hex that stay the same from release to release, so that
/// `journalctl MESSAGE_ID=...` finds every event of a kind, whatever its text.
/// `docs/audit.md` lists them.
pub const MESSAGE_IDS: &[(&str, &str)] = &[
    ("request", "fcede7215428441aacbbfb08d4f48929"),
    ("connection-refused", "5b69864b6f184db1a382be9afecdb0ca"),
    ("client-evicted", "83cd702cc7574281b94e92924a6b6ed6"),
    ("call-refused", "57d6c105f79e4c409f9cb960246a419e"),
    ("handshake-evicted", "2f6544be532c47469d986c36ee0e72e8"),
    ("network-logon", "e4e6194a0e8f4d9db511ab17b6cd334e"),
    ("logon", "8b894c6047e14cf9a40ddb9b1e4c3dcc"),
    ("spawn", "465c402225934e1fb40d3f28df728116"),
    ("impersonate", "901271bc81654f46939dc61ba0f428fd"),
    ("revert", "301d2c6f1837495d895fb598aef31bf5"),
];

/// The journal's `MESSAGE_ID` of the event named `event` ([`MESSAGE_IDS`]).
pub fn message_id(event: &str) -> Option<&'static str> {
    MESSAGE_IDS
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, id)| *id)
}

/// The `result` of a refusal over a limit.
const QUOTA: &str = "ERROR_NOT_ENOUGH_QUOTA";

/// A kind of event over an admission limit: its name, its `result` (where the
/// client was refused), its message, and its rate limit.
struct OverLimit {
    event: &'static str,
    result: Option<&'static str>,
    message: &'static str,
    rate: RateLimited,
}

impl OverLimit {
    const fn new(event: &'static str, result: Option<&'static str>, message: &'static str) -> Self {
        OverLimit {
            event,
            result,
            message,
            rate: RateLimited::new(),
        }
    }

    fn record(&self, transport: Transport, client_uid: u32, pid: i32, limit: &str) {
        self.rate.warn(|suppressed| {
            tracing::warn!(
                target: "guise::audit",
                event = self.event,
                transport = transport.as_str(),
                client_uid,
                pid,
                limit,
                result = self.result,
                suppressed,
                "{}",
                self.message
            );
        });
    }
}

static REFUSED: OverLimit = OverLimit::new(
    "connection-refused",
    Some(QUOTA),
    "refusing a client: too many connections",
);
static EVICTED: OverLimit = OverLimit::new(
    "client-evicted",
    None,
    "closing the connection idle the longest to make room",
);
static CALL_REFUSED: OverLimit = OverLimit::new(
    "call-refused",
    Some(QUOTA),
    "refusing a call: too many in flight",
);
static HANDSHAKE_EVICTED: RateLimited = RateLimited::new();

/// Records a connection refused for an admission `limit` (event
/// `connection-refused`, at `warn`, rate-limited): the connection is closed.
pub fn connection_refused(transport: Transport, client_uid: u32, pid: i32, limit: &str) {
    REFUSED.record(transport, client_uid, pid, limit);
}

/// Records a connection closed to make room for another (event
/// `client-evicted`, at `warn`, rate-limited).
pub fn client_evicted(transport: Transport, client_uid: u32, pid: i32, limit: &str) {
    EVICTED.record(transport, client_uid, pid, limit);
}

/// Records a call refused for an admission `limit` (event `call-refused`, at
/// `warn`, rate-limited): the caller is told, its connection stays.
pub fn call_refused(transport: Transport, client_uid: u32, pid: i32, limit: &str) {
    CALL_REFUSED.record(transport, client_uid, pid, limit);
}

/// Records an unfinished handshake from `address` closed to make room for a
/// new one (event `handshake-evicted`, at `warn`, rate-limited).
pub fn handshake_evicted(address: IpAddr, limit: &str) {
    HANDSHAKE_EVICTED.warn(|suppressed| {
        tracing::warn!(
            target: "guise::audit",
            event = "handshake-evicted",
            transport = Transport::Kerberos.as_str(),
            %address,
            limit,
            suppressed,
            "closing the oldest unfinished handshake to make room"
        );
    });
}

/// What a network client proved, for [`network_logon`].
#[derive(Clone, Copy, Debug)]
pub struct NetworkLogon<'a> {
    /// Its Kerberos principal, printable.
    pub principal: &'a str,
    /// The local account it maps to, printable.
    pub account: &'a str,
    /// That account's uid.
    pub uid: u32,
    /// Whether it forwarded credentials the server may use.
    pub delegated: bool,
}

/// Records a network client authenticated (`Ok`) or refused (`Err`) from
/// `address` (event `network-logon`, at `info`; a refusal at `warn`, one a
/// second, the others at `info`).
pub fn network_logon(address: std::net::SocketAddr, outcome: Result<NetworkLogon<'_>, &Error>) {
    match outcome {
        Ok(n) => tracing::info!(
            target: "guise::audit",
            event = "network-logon",
            transport = Transport::Kerberos.as_str(),
            %address,
            principal = n.principal,
            account = n.account,
            uid = n.uid,
            delegated = n.delegated,
            result = "ok",
            "{} from {address} logged on as {} (uid {}){}",
            printable(n.principal),
            printable(n.account),
            n.uid,
            if n.delegated { ", credentials delegated" } else { "" }
        ),
        Err(e) => {
            macro_rules! refused_at {
                ($level:expr) => {
                    tracing::event!(
                        target: "guise::audit",
                        $level,
                        event = "network-logon",
                        transport = Transport::Kerberos.as_str(),
                        %address,
                        result = e.kind().win32_name(),
                        error = %e,
                        "network client {address} refused: {}",
                        e.kind().win32_name()
                    )
                };
            }
            if NETWORK_LOGON_REFUSED.allow().is_some() {
                refused_at!(tracing::Level::WARN);
            } else {
                refused_at!(tracing::Level::INFO);
            }
        }
    }
}

/// Records a logon (`LogonUser`) that succeeded (event `logon`, at `info`):
/// the process (`acting_uid`) logged `user` on as `account` (`uid`).
pub fn logon(
    acting_uid: u32,
    user: &str,
    account: &str,
    uid: u32,
    logon_type: crate::token::LogonType,
    authenticated: bool,
) {
    tracing::info!(
        target: "guise::audit",
        event = "logon",
        acting_uid,
        user,
        account,
        uid,
        logon_type = logon_type.win32_name(),
        authenticated,
        result = "ok",
        "{} logged on as {} (uid {uid})",
        printable(user),
        printable(account)
    );
}

/// Records a logon refused (event `logon`, at `warn`: one a second, the others
/// at `info`), with the error.
pub fn logon_refused(
    user: &str,
    logon_type: crate::token::LogonType,
    authenticated: bool,
    error: &Error,
) {
    macro_rules! refused_at {
        ($level:expr) => {
            tracing::event!(
                target: "guise::audit",
                $level,
                event = "logon",
                user,
                logon_type = logon_type.win32_name(),
                authenticated,
                result = error.kind().win32_name(),
                error = %error,
                "logon of {} refused: {}",
                printable(user),
                error.kind().win32_name()
            )
        };
    }
    if LOGON_REFUSED.allow().is_some() {
        refused_at!(tracing::Level::WARN);
    } else {
        refused_at!(tracing::Level::INFO);
    }
}

/// Records a process started as `token`'s user (event `spawn`, at `info`).
pub fn spawn(acting_uid: u32, token: &crate::token::Token, program: &std::ffi::OsStr, pid: u32) {
    tracing::info!(
        target: "guise::audit",
        event = "spawn",
        acting_uid,
        user = %token.user(),
        uid = token.unix().uid().as_raw(),
        gid = token.unix().gid().as_raw(),
        program = %program.to_string_lossy(),
        pid,
        "{} started as uid {} (pid {pid})",
        printable(&program.to_string_lossy()),
        token.unix().uid().as_raw()
    );
}

/// Records a thread that takes on `token` (`uid`, `gid`, at `level`) (event
/// `impersonate`, at `debug`).
pub fn impersonate(
    acting_uid: u32,
    token: &crate::token::Token,
    uid: u32,
    gid: u32,
    level: ImpersonationLevel,
) {
    tracing::debug!(
        target: "guise::audit",
        event = "impersonate",
        acting_uid,
        user = %token.user(),
        uid,
        gid,
        impersonation_level = %level,
        "thread impersonates"
    );
}

/// Records a thread that reverts from `token` (`uid`) to its own identity
/// (event `revert`, at `debug`).
pub fn revert(acting_uid: u32, token: &crate::token::Token, uid: u32) {
    tracing::debug!(
        target: "guise::audit",
        event = "revert",
        acting_uid,
        user = %token.user(),
        uid,
        "thread reverts"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn read<'a>(
        path: &'a str,
        uid: u32,
        level: ImpersonationLevel,
        result: &'static str,
    ) -> Request<'a> {
        Request {
            transport: Transport::Pipe,
            op: "read",
            path,
            uid,
            gid: uid,
            level,
            client_uid: 62001,
            pid: 1,
            access: "FILE_READ_DATA",
            bytes: 0,
            result,
            missing: None,
        }
    }

    #[test]
    fn each_outcome_of_a_request_reads_as_one_line_of_words() {
        use ImpersonationLevel::{Identification, Impersonation};
        let cases: &[(Request<'_>, &str)] = &[
            (
                Request {
                    bytes: 12,
                    ..read("notes.txt", 62001, Impersonation, "ok")
                },
                "uid 62001 read notes.txt: ok, 12 bytes",
            ),
            (
                Request {
                    missing: Some("FILE_READ_DATA"),
                    ..read("root.txt", 62001, Impersonation, "ERROR_ACCESS_DENIED")
                },
                "uid 62001 read root.txt: denied, missing FILE_READ_DATA",
            ),
            (
                read("../etc/shadow", 62001, Impersonation, "ERROR_ACCESS_DENIED"),
                "uid 62001 read ../etc/shadow: refused by the service's rules, ERROR_ACCESS_DENIED",
            ),
            (
                read(
                    "notes.txt",
                    4294967294,
                    Identification,
                    "ERROR_BAD_IMPERSONATION_LEVEL",
                ),
                "uid 62001 read notes.txt at identification as uid 4294967294: denied, ERROR_BAD_IMPERSONATION_LEVEL",
            ),
            (
                read("gone.txt", 62001, Impersonation, "ERROR_FILE_NOT_FOUND"),
                "uid 62001 read gone.txt: failed, ERROR_FILE_NOT_FOUND",
            ),
        ];
        for (request, want) in cases {
            assert_eq!(request.message(), *want);
        }
        assert!(is_denial("ERROR_ACCESS_DENIED") && !is_denial("ERROR_FILE_NOT_FOUND"));
    }

    /// Attack: a client names a file `x\nuid 0 read /etc/shadow: ok` so that the
    /// journal's message, shown as lines, carries a forged request.
    #[test]
    fn attack_a_path_with_a_newline_cannot_forge_a_line_of_the_message() {
        let r = read(
            "x\nuid 0 read /etc/shadow: ok\x1b[2J\u{85}",
            62001,
            ImpersonationLevel::Impersonation,
            "ERROR_FILE_NOT_FOUND",
        );
        let m = r.message();
        assert!(!m.chars().any(char::is_control), "{m:?}");
        assert_eq!(
            m,
            "uid 62001 read x\\x0auid 0 read /etc/shadow: ok\\x1b[2J\\x85: failed, ERROR_FILE_NOT_FOUND"
        );
    }

    /// Attack: a name a client chose (a LogonUser name, a principal mapped to an
    /// account, a program) with a newline, an escape or a bidi override does
    /// not reach the one-line message of a logon or spawn as it is.
    #[test]
    fn attack_names_in_logon_and_spawn_messages_are_escaped() {
        for name in [
            "alice\nuid 0 read /etc/shadow: ok",
            "a\x1b[2Jb",
            "evil\u{202e}txt.exe",
            "x\u{2028}y",
        ] {
            let p = printable(name);
            assert!(
                !p.chars()
                    .any(|c| c.is_control() || matches!(c as u32, 0x2028 | 0x202e)),
                "{p:?}"
            );
        }
        assert_eq!(printable("plain name"), "plain name");
        assert_eq!(printable("evil\u{202e}txt"), "evil\\u{202e}txt");
    }

    /// A flood of denials gives one warning a second; the rest of that second
    /// are at info (still in the trail).
    #[test]
    fn a_flood_of_denials_gives_one_warning_a_second() {
        let rate = RateLimited::new();
        assert_eq!(rate.allow(), Some(0));
        for _ in 0..1000 {
            assert_eq!(rate.allow(), None);
        }
    }

    #[test]
    fn only_the_kernels_denial_names_a_missing_right() {
        let of = |e: Error| missing_of::<()>(&Err(e), "FILE_READ_DATA");
        assert_eq!(
            of(Error::os(ErrorKind::AccessDenied, "opening", 13)),
            Some("FILE_READ_DATA")
        );
        assert_eq!(
            of(Error::os(ErrorKind::AccessDenied, "opening", 1)),
            Some("FILE_READ_DATA")
        );
        // A path outside the served directory (EXDEV), a symlink (ELOOP), a
        // refusal with no errno at all: the service's rules, no right missing.
        assert_eq!(of(Error::os(ErrorKind::AccessDenied, "opening", 18)), None);
        assert_eq!(of(Error::os(ErrorKind::AccessDenied, "opening", 40)), None);
        assert_eq!(of(Error::new(ErrorKind::AccessDenied, "outside")), None);
        assert_eq!(of(Error::os(ErrorKind::FileNotFound, "opening", 2)), None);
        assert_eq!(missing_of(&Ok(()), "FILE_READ_DATA"), None);
    }
}
