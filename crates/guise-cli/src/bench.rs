//! `guise bench serve`: a load generator for `guise serve`. N client processes,
//! each its own throwaway uid (61001, 61002, ...) on its own connection, read their
//! own 256-byte 0600 file at Impersonation level, request after request, for S
//! seconds; the server is the real `guise serve` binary (this one), with
//! impersonation or with `--no-impersonation`. It prints requests per second and
//! the count of replies that were not the client's own data (which must be 0).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use guise::pipe::{PipeAddr, PipeClient, SecurityQos};
use guise::process::SpawnOptions;
use guise::{CommandExt, ImpersonationLevel, Token};
use serde_json::json;

/// `guise bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(clap::Subcommand)]
enum BenchCommand {
    /// Load `guise serve` with N clients of N identities and report requests/s.
    Serve(ServeArgs),
    /// One client of the load (started by `guise bench serve`, as its uid).
    #[command(hide = true)]
    Client(ClientArgs),
}

/// Options of `guise bench serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Client processes, each its own uid (61001, 61002, ...).
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// How long the load runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Impersonation worker threads of the server.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Serve every request as the server (the baseline).
    #[arg(long)]
    no_impersonation: bool,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of one client.
#[derive(clap::Args)]
pub struct ClientArgs {
    #[arg(long)]
    socket: PathBuf,
    /// The client's own file, relative to the served directory and absolute.
    #[arg(long)]
    path: String,
    #[arg(long)]
    file: PathBuf,
    #[arg(long)]
    seconds: u64,
}

/// The first uid of the load's clients.
const FIRST: u32 = 61001;

/// Runs `guise bench`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    match args.command {
        BenchCommand::Serve(a) => serve(&a, out),
        BenchCommand::Client(a) => client(&a, out),
    }
}

/// One client: its own file's contents, then read requests until the time is up;
/// prints "REQUESTS WRONG".
fn client(args: &ClientArgs, out: &mut impl Write) -> Result<ExitCode> {
    let expected = std::fs::read(&args.file).context("reading the client's own file")?;
    let qos = SecurityQos {
        level: ImpersonationLevel::Impersonation,
        ..SecurityQos::default()
    };
    let mut pipe = PipeClient::connect(&PipeAddr::Path(args.socket.clone()), qos)?;
    let request = json!({ "op": "read", "path": args.path }).to_string();
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let (mut requests, mut wrong) = (0u64, 0u64);
    while Instant::now() < end {
        let header = pipe.transact(request.as_bytes())?;
        let mut data = Vec::new();
        if header.starts_with(br#"{"ok":true"#) {
            loop {
                let chunk = pipe
                    .receive()?
                    .ok_or_else(|| anyhow::anyhow!("the server went away"))?;
                if chunk.is_empty() {
                    break;
                }
                data.extend_from_slice(&chunk);
            }
            // The trailer.
            pipe.receive()?;
        }
        requests += 1;
        if data != expected {
            wrong += 1;
        }
    }
    writeln!(out, "{requests} {wrong}")?;
    Ok(ExitCode::SUCCESS)
}

/// The load: files, the server, the clients, the sums.
fn serve(args: &ServeArgs, out: &mut impl Write) -> Result<ExitCode> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("guise bench serve needs root: its clients are throwaway uids");
        return Ok(ExitCode::from(1));
    }
    let dir = tempfile::Builder::new().prefix("guise-bench-").tempdir()?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    for p in [dir.path(), files.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    }
    let clients: Vec<u32> = (0..args.clients.max(1)).map(|i| FIRST + i).collect();
    for &uid in &clients {
        let p = files.join(format!("f{uid}"));
        let text = format!("{uid:>8}").repeat(32);
        std::fs::write(&p, text)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
        std::os::unix::fs::chown(&p, Some(uid), Some(uid))?;
    }
    let socket = dir.path().join("pipe");
    let exe = std::env::current_exe()?;
    let mut server = Command::new(&exe);
    server
        .args(["serve", "--socket"])
        .arg(&socket)
        .arg("--root")
        .arg(&files)
        .args(["--workers", &args.workers.to_string()])
        .stderr(Stdio::null());
    if args.no_impersonation {
        server.arg("--no-impersonation");
    }
    let mut server = KillOnDrop(server.spawn()?);
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut children = Vec::new();
    for &uid in &clients {
        let token = Token::from_ids(uid, uid, &[uid])?;
        let mut cmd = Command::new(&exe);
        cmd.args(["bench", "client", "--socket"])
            .arg(&socket)
            .args(["--path", &format!("f{uid}"), "--file"])
            .arg(files.join(format!("f{uid}")))
            .args(["--seconds", &args.seconds.to_string()])
            .stdout(Stdio::piped());
        children.push(cmd.spawn_as_user(&token, &SpawnOptions::default())?);
    }
    let (mut requests, mut wrong) = (0u64, 0u64);
    for child in children {
        let output = child.wait_with_output()?;
        anyhow::ensure!(
            output.status.success(),
            "a client failed: {}",
            output.status
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let mut f = text.split_whitespace().map(str::parse::<u64>);
        requests += f.next().context("a client's count")??;
        wrong += f.next().context("a client's count")??;
    }
    let _ = server.0.kill();
    let per_second = requests as f64 / args.seconds.max(1) as f64;
    if args.json {
        writeln!(
            out,
            "{}",
            json!({
                "clients": clients.len(),
                "workers": args.workers,
                "impersonation": !args.no_impersonation,
                "seconds": args.seconds,
                "requests": requests,
                "requests_per_second": per_second.round(),
                "wrong": wrong,
            })
        )?;
    } else {
        writeln!(
            out,
            "{} clients, {} workers, {}: {requests} requests in {} s, {per_second:.0} requests/s, {wrong} replies not the client's own",
            clients.len(),
            args.workers,
            if args.no_impersonation {
                "no impersonation"
            } else {
                "impersonation"
            },
            args.seconds
        )?;
    }
    Ok(if wrong == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A child process killed and reaped when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
