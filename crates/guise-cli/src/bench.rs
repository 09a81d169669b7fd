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

impl Args {
    /// Whether the report is asked for as JSON.
    pub fn json(&self) -> bool {
        match &self.command {
            BenchCommand::Serve(a) => a.json,
            BenchCommand::Memory(a) => a.json,
            _ => false,
        }
    }
}

#[derive(clap::Subcommand)]
enum BenchCommand {
    /// Load `guise serve` with N clients of N identities and report requests/s.
    Serve(ServeArgs),
    /// One client of the load (started by `guise bench serve`, as its uid).
    #[command(hide = true)]
    Client(ClientArgs),
    /// One read, for `guise serve --process-per-request` (started as the client):
    /// prints the file's size on a line, then the data.
    #[command(hide = true)]
    ReadOne(ReadOneArgs),
    /// The memory of `guise serve` with many idle connections of many identities:
    /// its resident size empty, then with N connections (each of its own uid) that
    /// each made one request and stay open.
    Memory(MemoryArgs),
}

/// Options of `guise bench read-one`.
#[derive(clap::Args)]
pub struct ReadOneArgs {
    #[arg(long)]
    root: PathBuf,
    #[arg(long)]
    path: String,
    #[arg(long)]
    offset: u64,
    /// 0: to the end.
    #[arg(long)]
    length: u64,
}

/// `guise bench read-one`: the read of `guise serve`'s process-per-request
/// baseline, as this process (the client).
fn read_one(args: &ReadOneArgs, out: &mut impl Write) -> Result<ExitCode> {
    use rustix::fs::{Mode, OFlags};
    let run = || -> crate::files::Result<(u64, Vec<u8>)> {
        let root = rustix::fs::open(
            &args.root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| crate::files::os("the served directory", e))?;
        let (fd, size) = crate::files::open_regular(&root, &args.path)?;
        let (mut pos, mut left) = (
            args.offset,
            if args.length == 0 {
                u64::MAX
            } else {
                args.length
            },
        );
        let mut data = Vec::new();
        loop {
            let chunk = crate::files::read_chunk(&fd, pos, left)?;
            let n = chunk.len() as u64;
            data.extend_from_slice(&chunk);
            if n == 0 || n < left.min(crate::files::CHUNK as u64) {
                break;
            }
            (pos, left) = (pos + n, left - n);
        }
        Ok((size, data))
    };
    match run() {
        Ok((size, data)) => {
            writeln!(out, "{size}")?;
            out.write_all(&data)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Options of `guise bench memory`.
#[derive(clap::Args)]
pub struct MemoryArgs {
    /// Connections, each of its own uid (62000, 62001, ...). 1 to 100000.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    connections: u32,
    /// Print the report as JSON, `{"ok":true,"data":{...}}` (docs/cli-json.md).
    #[arg(long)]
    json: bool,
}

/// Options of `guise bench serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Client processes, each its own uid (61001, 61002, ...). 1 to 1000.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    clients: u32,
    /// How long the load runs, in seconds. 1 to 86400.
    #[arg(long, default_value_t = 5, value_parser = crate::limits::seconds())]
    seconds: u64,
    /// Impersonation worker threads of the server. 1 to 1024.
    #[arg(long, default_value_t = 8, value_parser = crate::limits::count(crate::limits::MAX_WORKERS))]
    workers: usize,
    /// Serve every request as the server (the baseline).
    #[arg(long)]
    no_impersonation: bool,
    /// The server's `--io-uring`: open as the client through io_uring
    /// personalities, or by switching workers.
    #[arg(long, value_enum, default_value_t = crate::serve::Switch::On)]
    io_uring: crate::serve::Switch,
    /// The impersonating server serves one request at a time behind one lock, as
    /// one that switches the whole process with setresuid must (a baseline).
    #[arg(long)]
    process_lock: bool,
    /// The impersonating server serves each read in a process of its own started
    /// as the client (a baseline).
    #[arg(long)]
    process_per_request: bool,
    /// The impersonating server is one thread that forks a child for each read,
    /// which takes on the client's ids, serves and exits (a baseline).
    #[arg(long)]
    fork_per_request: bool,
    /// Print the report as JSON, `{"ok":true,"data":{...}}` (docs/cli-json.md).
    #[arg(long)]
    json: bool,
    /// Measure every way of serving (without impersonation; switching workers;
    /// io_uring personalities; one request at a time behind a lock; a process per
    /// request; a fork per request) for 1, 2, 4, 8 and 16 clients, and draw
    /// requests/s against clients into this SVG file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Run ROUNDS rounds, each with impersonation and then without (the same
    /// clients, a fresh server each time), and report the median of each and the
    /// ratio of the medians: on a noisy machine, the figure to trust. 1 to
    /// 1000.
    #[arg(long, value_name = "ROUNDS", value_parser = clap::value_parser!(u32).range(1..=1000))]
    compare: Option<u32>,
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
    #[arg(long, value_parser = crate::limits::seconds())]
    seconds: u64,
}

/// The first uid of the load's clients.
const FIRST: u32 = 61001;

/// Runs `guise bench`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    match args.command {
        BenchCommand::Serve(a) => serve(&a, out),
        BenchCommand::Client(a) => client(&a, out),
        BenchCommand::Memory(a) => memory(&a, out),
        BenchCommand::ReadOne(a) => read_one(&a, out),
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

/// `guise bench serve`: one load, or rounds of both kinds with `--compare`.
fn serve(args: &ServeArgs, out: &mut impl Write) -> Result<ExitCode> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("guise bench serve needs root: its clients are throwaway uids");
        return Ok(ExitCode::from(1));
    }
    if let Some(file) = &args.plot {
        return plot(args, file, out);
    }
    let Some(rounds) = args.compare else {
        let r = load(args, !args.no_impersonation)?;
        report(args, out, &r)?;
        return Ok(verdict(r.wrong));
    };
    let (mut with, mut without, mut wrong) = (Vec::new(), Vec::new(), 0);
    for _ in 0..rounds.max(1) {
        let a = load(args, true)?;
        let b = load(args, false)?;
        wrong += a.wrong + b.wrong;
        with.push(a.per_second);
        without.push(b.per_second);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratios: Vec<f64> = with.iter().zip(&without).map(|(a, b)| a / b).collect();
    let (w, wo) = (median(&mut with.clone()), median(&mut without.clone()));
    if args.json {
        crate::output::success(
            out,
            json!({
                "clients": args.clients.max(1),
                "workers": args.workers,
                "seconds": args.seconds,
                "rounds": rounds.max(1),
                "with_impersonation": with,
                "without": without,
                "median_with": w.round(),
                "median_without": wo.round(),
                "ratio_of_medians": (w / wo * 1000.0).round() / 1000.0,
                "wrong": wrong,
            }),
        )?;
    } else {
        writeln!(
            out,
            "{} clients, {} workers, {} rounds of {} s: median {w:.0} requests/s with impersonation, {wo:.0} without, ratio {:.2} (rounds: {}); {wrong} replies not the client's own",
            args.clients.max(1),
            args.workers,
            rounds.max(1),
            args.seconds,
            w / wo,
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        )?;
    }
    Ok(verdict(wrong))
}

/// A way of serving, as `guise bench serve --plot` draws it.
struct Way {
    name: &'static str,
    impersonation: bool,
    io_uring: crate::serve::Switch,
    process_lock: bool,
    process_per_request: bool,
    fork_per_request: bool,
}

/// `--plot`: every way of serving, for 1 to 16 clients, one load each, drawn.
fn plot(args: &ServeArgs, file: &std::path::Path, out: &mut impl Write) -> Result<ExitCode> {
    use crate::serve::Switch;
    use plotters::prelude::*;
    let ways = [
        Way {
            name: "no impersonation",
            impersonation: false,
            io_uring: Switch::Off,
            process_lock: false,
            process_per_request: false,
            fork_per_request: false,
        },
        Way {
            name: "switching workers",
            impersonation: true,
            io_uring: Switch::Off,
            process_lock: false,
            process_per_request: false,
            fork_per_request: false,
        },
        Way {
            name: "io_uring personalities",
            impersonation: true,
            io_uring: Switch::On,
            process_lock: false,
            process_per_request: false,
            fork_per_request: false,
        },
        Way {
            name: "one at a time behind a lock",
            impersonation: true,
            io_uring: Switch::Off,
            process_lock: true,
            process_per_request: false,
            fork_per_request: false,
        },
        Way {
            name: "a fork per request",
            impersonation: true,
            io_uring: Switch::Off,
            process_lock: false,
            process_per_request: false,
            fork_per_request: true,
        },
        Way {
            name: "a process per request",
            impersonation: true,
            io_uring: Switch::Off,
            process_lock: false,
            process_per_request: true,
            fork_per_request: false,
        },
    ];
    let clients = [1u32, 2, 4, 8, 16];
    let mut series = Vec::new();
    let mut wrong = 0;
    for way in &ways {
        let mut points = Vec::new();
        for &n in &clients {
            let a = ServeArgs {
                clients: n,
                seconds: args.seconds,
                workers: args.workers,
                no_impersonation: !way.impersonation,
                io_uring: way.io_uring,
                process_lock: way.process_lock,
                process_per_request: way.process_per_request,
                fork_per_request: way.fork_per_request,
                json: false,
                plot: None,
                compare: None,
            };
            let r = load(&a, way.impersonation)?;
            wrong += r.wrong;
            writeln!(
                out,
                "{}, {n} clients: {:.0} requests/s",
                way.name, r.per_second
            )?;
            points.push((n, r.per_second));
        }
        series.push((way.name, points));
    }
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, r)| *r))
        .fold(0.0f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(file, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "guise serve: requests/s against clients (each its own uid), {} workers, 2 cores",
                args.workers
            ),
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0u32..17u32, 0f64..top.max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("clients")
        .y_desc("requests/s")
        .draw()?;
    let colors = [BLACK, BLUE, GREEN, RED, MAGENTA];
    for ((name, points), color) in series.iter().zip(colors) {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(
            points
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    writeln!(
        out,
        "drawn into {}; {wrong} replies not the client's own",
        file.display()
    )?;
    Ok(verdict(wrong))
}

/// What one load measured.
struct Load {
    impersonation: bool,
    requests: u64,
    per_second: f64,
    wrong: u64,
}

fn report(args: &ServeArgs, out: &mut impl Write, r: &Load) -> Result<()> {
    let clients = args.clients.max(1);
    if args.json {
        crate::output::success(
            out,
            json!({
                "clients": clients,
                "workers": args.workers,
                "impersonation": r.impersonation,
                "seconds": args.seconds,
                "requests": r.requests,
                "requests_per_second": r.per_second.round(),
                "wrong": r.wrong,
            }),
        )?;
    } else {
        writeln!(
            out,
            "{clients} clients, {} workers, {}: {} requests in {} s, {:.0} requests/s, {} replies not the client's own",
            args.workers,
            if r.impersonation {
                "impersonation"
            } else {
                "no impersonation"
            },
            r.requests,
            args.seconds,
            r.per_second,
            r.wrong
        )?;
    }
    Ok(())
}

/// One load: files, the server (with impersonation or not), the clients, the sums.
fn load(args: &ServeArgs, impersonation: bool) -> Result<Load> {
    let (dir, files) = tree()?;
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
    let workers = args.workers.to_string();
    let mut extra = vec![
        "--workers",
        &workers,
        "--io-uring",
        match args.io_uring {
            crate::serve::Switch::On => "on",
            crate::serve::Switch::Off => "off",
        },
    ];
    if !impersonation {
        extra.push("--no-impersonation");
    } else if args.process_lock {
        extra.push("--process-lock");
    } else if args.process_per_request {
        extra.push("--process-per-request");
    } else if args.fork_per_request {
        extra.push("--fork-per-request");
    }
    let mut server = start_server(&socket, &files, &extra)?;
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
    Ok(Load {
        impersonation,
        requests,
        per_second: requests as f64 / args.seconds.max(1) as f64,
        wrong,
    })
}

/// The resident size of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("VmRSS")
}

/// `guise bench memory`: the server's resident size, empty and with many idle
/// connections of many identities, each of which made a request (so the server
/// holds a token for each).
fn memory(args: &MemoryArgs, out: &mut impl Write) -> Result<ExitCode> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("guise bench memory needs root: its clients are throwaway uids");
        return Ok(ExitCode::from(1));
    }
    // One descriptor per connection here, and as many in the server.
    crate::serve::raise_file_limit();
    let (dir, files) = tree()?;
    let socket = dir.path().join("pipe");
    let server = start_server(&socket, &files, &[])?;
    std::thread::sleep(Duration::from_millis(200));
    let empty = rss_kib(server.0.id())?;
    let qos = SecurityQos {
        level: ImpersonationLevel::Impersonation,
        ..SecurityQos::default()
    };
    let request = json!({ "op": "list", "path": "" }).to_string();
    let mut connections = Vec::new();
    for i in 0..args.connections {
        let uid = 62000 + i;
        let token = Token::from_ids(uid, uid, &[uid])?;
        let path = socket.clone();
        let request = request.clone();
        // Connected and served as `uid`, on a thread that impersonates it.
        let pipe = guise::thread::spawn(move || {
            token.run_as(|| -> guise::Result<PipeClient> {
                let mut pipe = PipeClient::connect(&PipeAddr::Path(path), qos)?;
                pipe.transact(request.as_bytes())?;
                Ok(pipe)
            })
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("a client thread panicked"))???;
        connections.push(pipe);
    }
    std::thread::sleep(Duration::from_millis(200));
    let loaded = rss_kib(server.0.id())?;
    let n = connections.len().max(1) as u64;
    let per = (loaded.saturating_sub(empty) * 1024) / n;
    if args.json {
        crate::output::success(
            out,
            json!({
                "connections": connections.len(),
                "rss_empty_kib": empty,
                "rss_loaded_kib": loaded,
                "bytes_per_connection": per,
            }),
        )?;
    } else {
        writeln!(
            out,
            "guise serve: {empty} KiB empty, {loaded} KiB with {} idle connections of as many identities (each served once): {per} bytes each",
            connections.len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit status of a load: success only if every reply was the client's own.
fn verdict(wrong: u64) -> ExitCode {
    if wrong == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A directory anyone may traverse, with `files` (the served root) in it.
fn tree() -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new().prefix("guise-bench-").tempdir()?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    for p in [dir.path(), files.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok((dir, files))
}

/// Starts this binary's `guise serve` on `socket` for `files`, with `extra`
/// options, and waits until it accepts connections.
fn start_server(
    socket: &std::path::Path,
    files: &std::path::Path,
    extra: &[&str],
) -> Result<KillOnDrop> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["serve", "--socket"])
        .arg(socket)
        .arg("--root")
        .arg(files)
        .args(extra)
        .stderr(Stdio::null());
    let server = KillOnDrop(cmd.spawn()?);
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(server)
}

/// A child process killed and reaped when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
