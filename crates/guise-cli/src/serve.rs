//! `guise serve`: a small file service over a named pipe. Every request runs as the
//! client, on an impersonation worker, so the kernel decides; paths are resolved
//! beneath the root directory (`openat2` with `RESOLVE_BENEATH`). `guise cat`,
//! `guise ls` and `guise put` are its clients.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use guise::pipe::pool::ImpersonationPool;
use guise::pipe::tokio::{AsyncPipeConnection, AsyncPipeServer};
use guise::pipe::{ContextTracking, PipeAddr, PipeClient, SecurityQos, ServerOptions};
use guise::{Error, ErrorKind, ImpersonationLevel};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde_json::{Value, json};

/// Options of `guise serve`.
#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    /// The socket to listen on.
    #[arg(long)]
    pub socket: PathBuf,
    /// The directory served; requests cannot leave it.
    #[arg(long)]
    pub root: PathBuf,
    /// Impersonation worker threads.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Serve every request as the server, not as the client (for comparison only).
    #[arg(long)]
    pub no_impersonation: bool,
}

/// Options of the clients.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// The server's socket.
    #[arg(long)]
    socket: PathBuf,
    /// How far the server may act as this client: anonymous, identification
    /// (guise's default), impersonation or delegation.
    #[arg(long, default_value = "identification")]
    level: ImpersonationLevel,
    /// Context tracking: static (the identity at connect) or dynamic (each
    /// message carries this process's effective uid and gid).
    #[arg(long, default_value = "static", value_parser = ["static", "dynamic"])]
    tracking: String,
    /// Only the enabled privileges and groups of this client count (EffectiveOnly).
    #[arg(long)]
    effective_only: bool,
    /// The path, relative to the served directory.
    path: String,
}

/// A request's answer: its data, or the Win32 error and message.
fn answer(r: std::result::Result<Value, Error>) -> Value {
    match r {
        Ok(data) => json!({ "ok": true, "data": data }),
        Err(e) => json!({ "ok": false, "error": e.kind().win32_name(), "message": e.to_string() }),
    }
}

fn os(what: &str, e: rustix::io::Errno) -> Error {
    let kind = match e {
        rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => ErrorKind::AccessDenied,
        rustix::io::Errno::XDEV | rustix::io::Errno::LOOP => ErrorKind::AccessDenied,
        rustix::io::Errno::NOENT => ErrorKind::NoneMapped,
        _ => ErrorKind::Os,
    };
    Error::os(kind, what.to_owned(), e)
}

/// Opens `path` beneath `root`: no `..` out, no absolute paths, no symlinks out.
fn open_beneath(
    root: &OwnedFd,
    path: &str,
    flags: OFlags,
    mode: Mode,
) -> std::result::Result<OwnedFd, Error> {
    let path = if path.is_empty() { "." } else { path };
    rustix::fs::openat2(
        root,
        path,
        flags | OFlags::CLOEXEC,
        mode,
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| os(&format!("opening {path:?}"), e))
}

/// One request, run on the calling thread (a worker that impersonates the client).
fn handle(root: &OwnedFd, req: &Value) -> std::result::Result<Value, Error> {
    let bad = |why: &str| Error::new(ErrorKind::InvalidParameter, why.to_owned());
    let op = req
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("\"op\" is missing"))?;
    let path = req.get("path").and_then(Value::as_str).unwrap_or("");
    match op {
        "read" => {
            let fd = open_beneath(root, path, OFlags::RDONLY, Mode::empty())?;
            let mut text = String::new();
            std::fs::File::from(fd)
                .read_to_string(&mut text)
                .map_err(|e| Error::os(ErrorKind::Os, "reading", &e))?;
            Ok(json!(text))
        }
        "write" => {
            let data = req
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("\"data\" is missing"))?;
            let fd = open_beneath(
                root,
                path,
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
                Mode::from_raw_mode(0o600),
            )?;
            std::fs::File::from(fd)
                .write_all(data.as_bytes())
                .map_err(|e| Error::os(ErrorKind::Os, "writing", &e))?;
            Ok(json!(data.len()))
        }
        "stat" => {
            let fd = open_beneath(root, path, OFlags::PATH, Mode::empty())?;
            let st = rustix::fs::fstat(&fd).map_err(|e| os("stat", e))?;
            Ok(
                json!({ "uid": st.st_uid, "gid": st.st_gid, "mode": format!("{:o}", st.st_mode & 0o7777), "size": st.st_size }),
            )
        }
        "list" => {
            let fd = open_beneath(
                root,
                path,
                OFlags::RDONLY | OFlags::DIRECTORY,
                Mode::empty(),
            )?;
            let mut names = Vec::new();
            for entry in rustix::fs::Dir::read_from(&fd).map_err(|e| os("listing", e))? {
                let entry = entry.map_err(|e| os("listing", e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name != "." && name != ".." {
                    names.push(name);
                }
            }
            names.sort();
            Ok(json!(names))
        }
        other => Err(bad(&format!("unknown op {other:?}"))),
    }
}

async fn connection(
    mut conn: AsyncPipeConnection,
    pool: Arc<ImpersonationPool>,
    root: Arc<OwnedFd>,
    impersonate: bool,
) {
    let (uid, pid) = (conn.client().peer().uid, conn.client().peer().pid);
    loop {
        let msg = match conn.read_message().await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(uid, pid, %e, "closing a connection");
                return;
            }
        };
        let level = conn.client().level();
        let reply = match serde_json::from_slice::<Value>(&msg) {
            Err(e) => answer(Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("not JSON: {e}"),
            ))),
            Ok(req) => {
                let root = Arc::clone(&root);
                let req2 = req.clone();
                let result = if impersonate {
                    conn.run_as_client(&pool, move || handle(&root, &req2))
                        .await
                } else {
                    Ok(handle(&root, &req2))
                };
                let r = result.and_then(|r| r);
                let op = req.get("op").and_then(Value::as_str).unwrap_or("?");
                let path = req.get("path").and_then(Value::as_str).unwrap_or("");
                let outcome = match &r {
                    Ok(_) => "ok",
                    Err(e) => e.kind().win32_name(),
                };
                tracing::info!(uid, pid, %level, op, path, result = outcome, "request");
                answer(r)
            }
        };
        if conn
            .write_message(reply.to_string().as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Serves until `stop` completes.
pub async fn serve(args: ServeArgs, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    // The workers start before anything impersonates.
    let pool = Arc::new(ImpersonationPool::new(args.workers)?);
    let root = rustix::fs::open(
        &args.root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", args.root.display()))?;
    let root = Arc::new(root);
    let server = AsyncPipeServer::bind(
        PipeAddr::Path(args.socket.clone()),
        ServerOptions::default(),
    )?;
    tracing::info!(socket = %args.socket.display(), root = %args.root.display(), "serving");
    let accept = async {
        loop {
            match server.accept().await {
                Ok(conn) => {
                    tokio::spawn(connection(
                        conn,
                        Arc::clone(&pool),
                        Arc::clone(&root),
                        !args.no_impersonation,
                    ));
                }
                Err(e) => tracing::warn!(%e, "accept"),
            }
        }
    };
    tokio::select! {
        () = accept => {},
        () = stop => {},
    }
    Ok(())
}

/// Runs `guise serve`.
pub fn run_serve(args: ServeArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(args, async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}

/// Sends one request and returns the answer.
pub fn request(socket: &std::path::Path, qos: SecurityQos, req: &Value) -> Result<Value> {
    let mut client = PipeClient::connect(&PipeAddr::Path(socket.to_owned()), qos)?;
    let reply = client.transact(req.to_string().as_bytes())?;
    Ok(serde_json::from_slice(&reply)?)
}

/// Runs a client command: prints the data, or the error (exit 1).
pub fn run_client(
    op: &str,
    args: &ClientArgs,
    data: Option<String>,
    out: &mut impl Write,
) -> Result<std::process::ExitCode> {
    let mut req = json!({ "op": op, "path": args.path });
    if let Some(d) = data {
        req["data"] = json!(d);
    }
    let qos = SecurityQos {
        level: args.level,
        tracking: if args.tracking == "dynamic" {
            ContextTracking::Dynamic
        } else {
            ContextTracking::Static
        },
        effective_only: args.effective_only,
    };
    let reply = request(&args.socket, qos, &req)?;
    if reply["ok"] == true {
        match &reply["data"] {
            Value::String(s) => write!(out, "{s}")?,
            Value::Array(items) => {
                for i in items {
                    writeln!(out, "{}", i.as_str().unwrap_or_default())?;
                }
            }
            other => writeln!(out, "{other}")?,
        }
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        eprintln!("guise: {}", reply["message"].as_str().unwrap_or("error"));
        Ok(std::process::ExitCode::from(1))
    }
}

/// Options of `guise put`.
#[derive(clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The data to write (default: read stdin).
    #[arg(long)]
    data: Option<String>,
}

/// Runs `guise put`.
pub fn run_put(args: &PutArgs, out: &mut impl Write) -> Result<std::process::ExitCode> {
    let data = match &args.data {
        Some(d) => d.clone(),
        None => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
    };
    run_client("write", &args.client, Some(data), out)
}
