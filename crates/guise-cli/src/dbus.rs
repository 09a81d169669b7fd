//! `guise dbus serve`: the example file service over D-Bus (bus name
//! `org.guise.Files1`, object `/org/guise/Files1`, interface `org.guise.Files1`).
//! Every method runs as its caller, whose identity the bus daemon gives, at the
//! level the caller allowed with `SetQualityOfService` (Identification until then)
//! or for one call with the `level` option of a `…WithOptions` method, with the
//! same file rules as `guise serve` ([`crate::files`]). Any D-Bus client
//! can call it: `busctl`, `gdbus`, `dbus-send`.
//!
//! Replies are bounded: `Read` returns a whole file of at most 16 MiB, `ReadAt` a
//! part of any file, and the bytes of replies not yet on the bus are held within
//! a budget per uid and in total (`guise::dbus`, "Replies"), so that a caller
//! that never reads its replies can neither grow the service nor hold up others.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use guise::admission::Limits;
use guise::dbus::{DbusCall, DbusClients, Reply};
use guise::{Error, ImpersonationLevel};
use zbus::fdo;
use zbus::message::Header;
use zbus::zvariant::OwnedValue;

use crate::file_service::{FileService, FileServiceArgs};
use crate::files;
use guise::audit::Transport;

/// The bus name, object path and interface of the service.
pub const NAME: &str = "org.guise.Files1";
/// The object path of the service.
pub const PATH: &str = "/org/guise/Files1";
/// The most a `Read` or `ReadAt` returns: well below the 32 MiB a system bus lets
/// a message carry, since a bus daemon drops a connection that sends a larger one;
/// less if a uid's share of the reply budget is smaller.
const MAX_READ: u64 = 16 << 20;
/// The most bytes a `List` reply holds: its names, each with its length, its
/// terminating nul and padding.
const MAX_LIST_REPLY: u64 = files::MAX_LIST_BYTES as u64 + 8;

/// `guise dbus`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DbusCommand,
}

#[derive(clap::Subcommand)]
enum DbusCommand {
    /// Serve a directory on a D-Bus bus as `org.guise.Files1`; every method runs as
    /// its caller.
    Serve(ServeArgs),
}

/// Options of `guise dbus serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// The bus to serve on (a D-Bus address, e.g. `unix:path=/run/bus.sock`);
    /// without it, the system bus.
    #[arg(long)]
    pub address: Option<String>,
    /// The served directory and the workers.
    #[command(flatten)]
    pub files: FileServiceArgs,
    /// The most calls of one uid in flight at once; more are refused
    /// (org.freedesktop.DBus.Error.LimitsExceeded). 1 to 65536.
    #[arg(long, default_value_t = guise::admission::DEFAULT_MAX_CALLS_PER_UID, value_parser = crate::limits::count(crate::limits::MAX_CALLS_PER_UID))]
    pub max_calls_per_uid: usize,
    /// The most bytes of replies of one uid not yet written to the bus; a call over
    /// it waits, and is refused (LimitsExceeded) if it waits too long. `Read` and
    /// `ReadAt` return at most this much. 1 to 4294967296 (4 GiB).
    #[arg(long, default_value_t = guise::admission::DEFAULT_MAX_REPLY_BYTES_PER_UID, value_parser = crate::limits::bytes(crate::limits::MAX_REPLY_BYTES))]
    pub max_reply_bytes_per_uid: u64,
    /// The same, for every caller together. 1 to 4294967296 (4 GiB).
    #[arg(long, default_value_t = guise::admission::DEFAULT_MAX_REPLY_BYTES, value_parser = crate::limits::bytes(crate::limits::MAX_REPLY_BYTES))]
    pub max_reply_bytes: u64,
}

/// Runs `guise dbus`.
pub fn run(args: Args) -> Result<std::process::ExitCode> {
    match args.command {
        DbusCommand::Serve(args) => {
            run_serve(args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// The D-Bus error for an error (guise's `From<Error> for fdo::Error`); its
/// message names the Win32 error.
fn dbus_error(e: &Error) -> fdo::Error {
    fdo::Error::from(e)
}

/// The service.
struct Files {
    clients: Arc<DbusClients>,
    /// The file service, and how it acts as callers.
    files: FileService,
    /// The most one `Read` or `ReadAt` returns.
    max_read: u64,
}

/// The options of a method's `…WithOptions` form (`a{sv}`): the level of this
/// call alone, from `level` (a string: anonymous, identification,
/// impersonation, delegation), if given. Any other option, or a `level` that is
/// not a level, is refused: the caller asked for something the service would
/// not do.
pub(crate) fn level_option(
    options: &HashMap<String, OwnedValue>,
) -> std::result::Result<Option<ImpersonationLevel>, Error> {
    let mut level = None;
    for (key, value) in options {
        match key.as_str() {
            "level" => {
                let text = <&str>::try_from(&**value).map_err(|_| {
                    files::invalid(format!(
                        "the option \"level\" is a string (s), not {}",
                        value.value_signature()
                    ))
                })?;
                level = Some(text.parse()?);
            }
            other => {
                return Err(files::invalid(format!(
                    "unknown option {:?} (the options are: level)",
                    crate::serve::escape(other, false)
                )));
            }
        }
    }
    Ok(level)
}

impl Files {
    /// The call of a message, or the D-Bus error that refuses it.
    async fn call(&self, header: &Header<'_>) -> fdo::Result<DbusCall> {
        self.clients.call(header).await.map_err(|e| dbus_error(&e))
    }

    /// The call of a message with `options` (`a{sv}`): at the level its `level`
    /// option asks for this call alone, else at its connection's.
    async fn call_with(
        &self,
        header: &Header<'_>,
        options: &HashMap<String, OwnedValue>,
    ) -> fdo::Result<DbusCall> {
        match level_option(options).map_err(|e| dbus_error(&e))? {
            Some(level) => self
                .clients
                .call_at(header, level)
                .await
                .map_err(|e| dbus_error(&e)),
            None => self.call(header).await,
        }
    }

    /// A method's work, as the caller (see [`FileService::act`]).
    async fn act<R: Send + 'static>(
        &self,
        call: &DbusCall,
        f: impl FnOnce() -> files::Result<R> + Send + 'static,
    ) -> files::Result<R> {
        self.files.act(call, f).await
    }

    /// Logs a method with the identity that acted and the bytes it moved, and
    /// turns its error into a D-Bus error.
    fn done<T>(
        &self,
        call: &DbusCall,
        op: &str,
        path: &str,
        r: files::Result<T>,
        bytes: impl FnOnce(&T) -> u64,
    ) -> fdo::Result<T> {
        let moved = r.as_ref().map_or(0, bytes);
        self.files.audit(call, op, path).log(&r, moved);
        r.map_err(|e| dbus_error(&e))
    }

    /// A read of `path` from `offset`: the whole file (`length` `None`, refused
    /// over [`Files::max_read`]), or at most `length` bytes of it (0: the most).
    /// Bytes of the reply budget are reserved before anything is read and held
    /// until the reply is on the bus: one chunk, enough for most files, which are
    /// opened and read in one job; a larger read gives it back, reserves its size
    /// and reads in a second job.
    async fn read_range(
        &self,
        call: &DbusCall,
        path: &str,
        offset: u64,
        length: Option<u64>,
    ) -> files::Result<Reply<Vec<u8>>> {
        /// What the first job found.
        enum Opened {
            Read(Vec<u8>),
            Large(OwnedFd, u64),
        }
        let max = self.max_read;
        let small = (files::CHUNK as u64).min(max);
        let first = call.reserve_reply(small).await?;
        let root = Arc::clone(&self.files.root);
        let p = path.to_owned();
        let opened = self
            .act(call, move || {
                let (fd, size) = files::open_regular(&root, &p)?;
                let want = match length {
                    None if size > max => {
                        return Err(files::invalid(format!(
                            "{p:?} holds {size} bytes; a Read returns at most {max}: read it in parts with ReadAt(path, offset, length)"
                        )));
                    }
                    None => size,
                    Some(l) => {
                        let l = if l == 0 { max } else { l.min(max) };
                        l.min(size.saturating_sub(offset))
                    }
                };
                if want <= small {
                    read_exactly(&fd, &p, offset, want, length.is_none()).map(Opened::Read)
                } else {
                    Ok(Opened::Large(fd, want))
                }
            })
            .await?;
        let (fd, want) = match opened {
            Opened::Read(data) => return Ok(first.hold(data)),
            Opened::Large(fd, want) => (fd, want),
        };
        drop(first);
        let bytes = call.reserve_reply(want).await?;
        let p = path.to_owned();
        let data = self
            .act(call, move || {
                read_exactly(&fd, &p, offset, want, length.is_none())
            })
            .await?;
        Ok(bytes.hold(data))
    }
}

/// Reads `want` bytes of `fd` from `offset` (fewer at its end); for a `whole` file
/// one byte more, to refuse a file that grew past its size meanwhile.
fn read_exactly(
    fd: &OwnedFd,
    path: &str,
    offset: u64,
    want: u64,
    whole: bool,
) -> files::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(want as usize);
    let limit = if whole { want + 1 } else { want };
    while (data.len() as u64) < limit {
        let at = data.len() as u64;
        let chunk = files::read_chunk(fd, offset + at, limit - at)?;
        if chunk.is_empty() {
            break;
        }
        data.extend_from_slice(&chunk);
    }
    if data.len() as u64 > want {
        return Err(files::invalid(format!(
            "{path:?} grew past {want} bytes while it was read: read it again"
        )));
    }
    Ok(data)
}

/// The methods' work, given the call (at the connection's level, or the one its
/// options ask for).
impl Files {
    async fn who_am_i_of(&self, call: DbusCall) -> fdo::Result<(u32, u32, Vec<u32>, String)> {
        let identity = async {
            let token = call.token()?;
            let level = self.files.acting_level(&call).await?;
            let unix = token.unix();
            Ok((
                unix.uid().as_raw(),
                unix.gid().as_raw(),
                unix.groups().to_vec(),
                level.to_string(),
            ))
        }
        .await;
        self.done(&call, "whoami", "", identity, |_| 0)
    }

    async fn read_of(
        &self,
        call: DbusCall,
        path: String,
        offset: u64,
        length: Option<u64>,
    ) -> fdo::Result<Reply<Vec<u8>>> {
        let data = self.read_range(&call, &path, offset, length).await;
        self.done(&call, "read", &path, data, |d| d.value().len() as u64)
    }

    async fn write_of(
        &self,
        call: DbusCall,
        path: String,
        data: Vec<u8>,
        mode: u32,
    ) -> fdo::Result<()> {
        let mode = (mode != 0).then_some(mode);
        let n = data.len() as u64;
        let written = self
            .files
            .write_whole(&call, path.clone(), mode, data)
            .await;
        self.done(&call, "write", &path, written, |()| n)
    }

    async fn list_of(&self, call: DbusCall, path: String) -> fdo::Result<Reply<Vec<String>>> {
        let names = async {
            let bytes = call.reserve_reply(MAX_LIST_REPLY).await?;
            let names = self.files.list(&call, path.clone()).await?.names;
            Ok(bytes.hold(names))
        }
        .await;
        self.done(&call, "list", &path, names, |_| 0)
    }
}

/// The interface. Each method but `SetQualityOfService` has a `…WithOptions`
/// form that takes one argument more, `a{sv}` options, of which `level` sets
/// the level of that call alone: what a client that opens a connection per call
/// (busctl, gdbus) needs to be served as itself.
#[zbus::interface(name = "org.guise.Files1")]
impl Files {
    /// DdeSetQualityOfService: the level the server may act as this caller at, for
    /// the rest of its connection (anonymous, identification, impersonation,
    /// delegation). Until it is called: identification.
    async fn set_quality_of_service(
        &self,
        #[zbus(header)] header: Header<'_>,
        level: String,
    ) -> fdo::Result<()> {
        let level: ImpersonationLevel = level.parse().map_err(|e: Error| dbus_error(&e))?;
        self.clients
            .set_quality_of_service(&header, level)
            .await
            .map_err(|e| dbus_error(&e))
    }

    /// The identity the server acts as for this caller: uid, gid, groups and the
    /// level a thread really gets.
    async fn who_am_i(
        &self,
        #[zbus(header)] header: Header<'_>,
    ) -> fdo::Result<(u32, u32, Vec<u32>, String)> {
        let call = self.call(&header).await?;
        self.who_am_i_of(call).await
    }

    /// `WhoAmI` with options (`level`).
    async fn who_am_i_with_options(
        &self,
        #[zbus(header)] header: Header<'_>,
        options: HashMap<String, OwnedValue>,
    ) -> fdo::Result<(u32, u32, Vec<u32>, String)> {
        let call = self.call_with(&header, &options).await?;
        self.who_am_i_of(call).await
    }

    /// The contents of a regular file of at most 16 MiB; a larger file is refused
    /// (InvalidArgs), to be read in parts with `ReadAt`.
    async fn read(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
    ) -> fdo::Result<Reply<Vec<u8>>> {
        let call = self.call(&header).await?;
        self.read_of(call, path, 0, None).await
    }

    /// `Read` with options (`level`).
    async fn read_with_options(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
        options: HashMap<String, OwnedValue>,
    ) -> fdo::Result<Reply<Vec<u8>>> {
        let call = self.call_with(&header, &options).await?;
        self.read_of(call, path, 0, None).await
    }

    /// At most `length` bytes (0: as many as a reply may carry, 16 MiB) of a
    /// regular file from `offset`: fewer at its end, none past it.
    async fn read_at(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
        offset: u64,
        length: u64,
    ) -> fdo::Result<Reply<Vec<u8>>> {
        let call = self.call(&header).await?;
        self.read_of(call, path, offset, Some(length)).await
    }

    /// `ReadAt` with options (`level`).
    async fn read_at_with_options(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
        offset: u64,
        length: u64,
        options: HashMap<String, OwnedValue>,
    ) -> fdo::Result<Reply<Vec<u8>>> {
        let call = self.call_with(&header, &options).await?;
        self.read_of(call, path, offset, Some(length)).await
    }

    /// Replaces (or creates) a regular file with `data`, once all of it is on disk;
    /// `mode` 0 keeps the replaced file's mode (or 0600).
    async fn write(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
        data: Vec<u8>,
        mode: u32,
    ) -> fdo::Result<()> {
        let call = self.call(&header).await?;
        self.write_of(call, path, data, mode).await
    }

    /// `Write` with options (`level`).
    async fn write_with_options(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
        data: Vec<u8>,
        mode: u32,
        options: HashMap<String, OwnedValue>,
    ) -> fdo::Result<()> {
        let call = self.call_with(&header, &options).await?;
        self.write_of(call, path, data, mode).await
    }

    /// The names in a directory, sorted (at most 10,000).
    async fn list(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
    ) -> fdo::Result<Reply<Vec<String>>> {
        let call = self.call(&header).await?;
        self.list_of(call, path).await
    }

    /// `List` with options (`level`).
    async fn list_with_options(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
        options: HashMap<String, OwnedValue>,
    ) -> fdo::Result<Reply<Vec<String>>> {
        let call = self.call_with(&header, &options).await?;
        self.list_of(call, path).await
    }
}

/// Serves until `stop` completes.
pub async fn serve(args: ServeArgs, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    let files = FileService::open(Transport::Dbus, &args.files)?;
    let report = files.report("guise dbus serve");
    let connection = connect(args.address.as_deref()).await?;
    let mut limits = Limits::default();
    limits.max_calls_per_uid = args.max_calls_per_uid;
    limits.max_reply_bytes_per_uid = args.max_reply_bytes_per_uid;
    limits.max_reply_bytes = args.max_reply_bytes;
    let clients =
        DbusClients::with_limits(&connection, ImpersonationLevel::Delegation, limits).await?;
    let files = Files {
        clients,
        files,
        max_read: MAX_READ
            .min(args.max_reply_bytes_per_uid)
            .min(args.max_reply_bytes),
    };
    connection.object_server().at(PATH, files).await?;
    connection
        .request_name(NAME)
        .await
        .with_context(|| format!("owning the bus name {NAME} (see contrib/dbus/{NAME}.conf)"))?;
    eprintln!("{report}");
    let bus = match &args.address {
        Some(address) => format!("{NAME} on the bus {address}"),
        None => format!("{NAME} on the system bus"),
    };
    crate::service::serving("dbus", &bus, &args.files.root);
    // A server that lost its bus serves no one: it says so and ends.
    let dbus = zbus::fdo::DBusProxy::new(&connection).await?;
    let lost = async {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if let Err(e) = dbus.get_id().await {
                break e;
            }
        }
    };
    tokio::select! {
        () = stop => {
            crate::service::stopped("dbus");
            Ok(())
        }
        e = lost => Err(anyhow::anyhow!("lost the bus: {e}")),
    }
}

/// A connection to the bus at `address` (a `unix:path=` address; without one, the
/// system bus), refused unless the bus daemon is root or this server's own user: a
/// bus another user runs could claim any caller's identity.
async fn connect(address: Option<&str>) -> Result<zbus::Connection> {
    let system;
    let address = match address {
        Some(a) => a,
        None => {
            system = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
                .unwrap_or_else(|_| "unix:path=/run/dbus/system_bus_socket".into());
            &system
        }
    };
    let path = address
        .strip_prefix("unix:path=")
        .map(|rest| rest.split(',').next().unwrap_or(rest))
        .ok_or_else(|| {
            anyhow::anyhow!("only unix:path= bus addresses are served, not {address:?}")
        })?;
    let stream = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("connecting to the bus at {path}"))?;
    let daemon = guise::client::PeerIdentity::of_socket(std::os::fd::AsFd::as_fd(&stream))?;
    let me = rustix::process::geteuid().as_raw();
    if daemon.uid() != 0 && daemon.uid() != me {
        anyhow::bail!(
            "the bus at {path} is run by uid {}, neither root nor this server's uid {me}: refusing to trust it with callers' identities",
            daemon.uid()
        );
    }
    stream.set_nonblocking(true)?;
    zbus::connection::Builder::unix_stream(tokio::net::UnixStream::from_std(stream)?)
        .build()
        .await
        .with_context(|| format!("connecting to the bus at {path}"))
}

/// Runs `guise dbus serve` until SIGTERM or SIGINT.
pub fn run_serve(args: ServeArgs) -> Result<()> {
    crate::serve::run_until_stopped(serve(args, crate::serve::stop_signal()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::Value;

    fn options(pairs: &[(&str, Value<'_>)]) -> HashMap<String, OwnedValue> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    OwnedValue::try_from(v.try_clone().unwrap()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_level_option_is_read_and_anything_else_refused() {
        use guise::ErrorKind::InvalidParameter;
        assert_eq!(level_option(&options(&[])).unwrap(), None);
        for (name, level) in [
            ("impersonation", ImpersonationLevel::Impersonation),
            ("Delegation", ImpersonationLevel::Delegation),
            ("identification", ImpersonationLevel::Identification),
            ("anonymous", ImpersonationLevel::Anonymous),
        ] {
            let got = level_option(&options(&[("level", Value::from(name))])).unwrap();
            assert_eq!(got, Some(level), "{name}");
        }
        for bad in [
            options(&[("level", Value::from("root"))]),
            options(&[("level", Value::from(2u32))]),
            options(&[("level", Value::from(true))]),
            options(&[("Level", Value::from("impersonation"))]),
            options(&[
                ("level", Value::from("impersonation")),
                ("uid", Value::from(0u32)),
            ]),
        ] {
            let e = level_option(&bad).unwrap_err();
            assert_eq!(e.kind(), InvalidParameter, "{e}");
        }
    }
}
