//! The `guise` command.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

guise::forbid_libc_credential_setters!();

mod access_check;
mod bench;
mod dbus;
mod demo;
mod file_service;
mod files;
mod forkserve;
mod journal;
mod limits;
mod manual;
mod output;
mod pty;
mod rpc;
mod run;
mod sddl;
mod serve;
mod service;
mod whoami;

/// guise: the Windows impersonation model for Linux services.
#[derive(Parser)]
#[command(name = "guise", version, about)]
struct Cli {
    /// How log and audit events are written to stderr: text for people, JSON
    /// lines, or structured fields to the systemd journal (GUISE_* fields;
    /// text if there is no journal). Which events: GUISE_LOG (a tracing filter;
    /// by default warnings, denials among them, and where a server listens;
    /// `info` for the audit trail of a service, `guise::audit=debug` for every
    /// impersonation and revert).
    #[arg(long, global = true, value_enum, env = "GUISE_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How events are written (`--log`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// Lines of text on stderr.
    Text,
    /// One JSON object per line on stderr, the event's fields at the top level.
    Json,
    /// Structured entries in the systemd journal.
    Journald,
}

/// How text logs write an event's fields: every value, however it was recorded
/// (a string, `Debug`, `Display`: an error's words, a program's path), with its
/// control characters escaped (`\x0d`, `\x1b`, `\x0a`, ...), the message too. A
/// name a peer chose (a path, a principal, a program) can then neither drive the
/// terminal that shows the log nor start a forged line of it. (JSON escapes them
/// itself; the journal keeps fields apart.)
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = serve::escape(&format!("{value:?}"), false);
        match field.name() {
            "message" => write!(w, "{text}"),
            name => write!(w, "{}={text}", name.strip_prefix("r#").unwrap_or(name)),
        }
    })
    .delimited(" ")
}

/// The events written when `GUISE_LOG` says nothing: warnings and errors (denials
/// and refused logons among them), and a server's start and stop with the
/// address it listens on (target `guise::service`).
const DEFAULT_LOG: &str = "warn,guise::service=info";

/// Starts writing events as `format` says, filtered by `GUISE_LOG` (default
/// [`DEFAULT_LOG`]).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("GUISE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG))
    };
    let text = || {
        tracing_subscriber::fmt::layer()
            .fmt_fields(escaped_fields())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter())
    };
    let registry = tracing_subscriber::registry();
    match format {
        LogFormat::Text => registry.with(text()).init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(std::io::stderr)
                    .with_filter(filter()),
            )
            .init(),
        LogFormat::Journald => match journal::Journal::new() {
            Ok(journal) => registry.with(journal.with_filter(filter())).init(),
            Err(e) => {
                registry.with(text()).init();
                tracing::warn!(%e, "no systemd journal: logging as text");
            }
        },
    }
}

#[derive(Subcommand)]
enum Command {
    /// Print the current token, like Windows `whoami`, and the kernel's view of the
    /// calling thread.
    Whoami(whoami::Args),
    /// Parse an SDDL security descriptor and print it in canonical form, as binary
    /// (hex), or as a table of its ACEs.
    Sddl(sddl::Args),
    /// Check a token's access to an object with a security descriptor (AccessCheck).
    /// Exit status: 0 allowed, 1 denied, 2 an error. With --batch, JSON lines in and
    /// out.
    AccessCheck(access_check::Args),
    /// Run a program as another user (root only), like Windows `runas`, runuser
    /// and sudo: logged on through PAM with --password-stdin, else from the
    /// account database or raw ids. The exit status is the program's; else 125 for
    /// guise's own error, 126 when the program cannot be executed, 127 when it is
    /// not found (as env and sudo).
    #[command(after_help = run::ENVIRONMENT)]
    Run(run::Args),
    /// Serve a directory over a named pipe; every request runs as its client.
    Serve(serve::ServeArgs),
    /// Read a file through `guise serve`.
    Cat(serve::CatArgs),
    /// List a directory through `guise serve`.
    Ls(serve::QueryArgs),
    /// Show a file's owner, mode, size and type through `guise serve`.
    Stat(serve::QueryArgs),
    /// Write a file through `guise serve`.
    Put(serve::PutArgs),
    /// The gRPC transport: `guise rpc serve` serves a directory
    /// (`guise.files.v1.Files`) as each caller; `guise rpc call` calls it.
    Rpc(rpc::Args),
    /// The D-Bus transport: `guise dbus serve` serves a directory on a bus as
    /// `org.guise.Files1`; any D-Bus client (busctl, gdbus, dbus-send) calls it.
    Dbus(dbus::Args),
    /// Measure: `guise bench serve` loads `guise serve` with N client processes of
    /// N identities and reports requests/s and replies of another identity.
    Bench(bench::Args),
    /// Show impersonation end to end (root only): two throwaway identities read
    /// files through `guise serve` at each level, and the kernel answers.
    Demo(demo::Args),
    /// Print the completion script of a shell (bash, zsh, fish, elvish,
    /// powershell): `guise completions bash > /usr/share/bash-completion/completions/guise`.
    Completions(CompletionsArgs),
    /// Write the manual pages (guise.1 and one per command) into a directory, or
    /// print guise.1.
    Man(ManArgs),
}

/// Options of `guise completions`.
#[derive(clap::Args)]
struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Options of `guise man`.
#[derive(clap::Args)]
struct ManArgs {
    /// Write guise.1, guise-serve.1, ... here (else print guise.1).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<std::path::PathBuf>,
}

/// Prints the completion script of `args.shell`. An option that names a user
/// (`--user`, `ValueHint::Username`) completes user names: zsh and fish scripts
/// say so themselves; bash's generator offers file names for it, so its case is
/// rewritten to `compgen -u`.
fn completions(args: &CompletionsArgs, out: &mut impl Write) -> Result<()> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "guise", &mut script);
    let mut script = String::from_utf8(script)?;
    if args.shell == clap_complete::Shell::Bash {
        let files = "COMPREPLY=($(compgen -f \"${cur}\"))";
        let users = "COMPREPLY=($(compgen -u -- \"${cur}\"))";
        let mut rewritten = String::with_capacity(script.len());
        let mut after_user = false;
        for line in script.split_inclusive('\n') {
            if after_user && line.trim() == files {
                rewritten.push_str(&line.replace(files, users));
            } else {
                rewritten.push_str(line);
            }
            after_user = line.trim() == "--user)";
        }
        script = rewritten;
    }
    out.write_all(script.as_bytes())?;
    Ok(())
}

/// Writes the manual pages: guise.1 and one per command, `guise-serve.1`,
/// `guise-rpc-serve.1`, ...
fn man(args: &ManArgs, out: &mut impl Write) -> Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let Some(dir) = &args.out_dir else {
        manual::render(&cmd, "guise", out)?;
        return Ok(());
    };
    std::fs::create_dir_all(dir)?;
    fn write_pages(cmd: clap::Command, name: String, dir: &std::path::Path) -> Result<()> {
        let cmd = cmd.name(name.clone()).bin_name(name.replace('-', " "));
        let mut page = Vec::new();
        manual::render(&cmd, &name, &mut page)?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let sub_name = format!("{name}-{}", sub.get_name());
            write_pages(sub.clone(), sub_name, dir)?;
        }
        Ok(())
    }
    write_pages(cmd, "guise".to_owned(), dir)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `guise run`'s own errors are 125, as env's are: the program's exit
            // statuses keep every other meaning.
            let args: Vec<String> = std::env::args().skip(1).take_while(|a| a != "--").collect();
            let run = args.iter().any(|a| a == "run");
            if run && e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(run::EXIT_GUISE);
            }
            // Under --json a usage error is the failure envelope too.
            if e.use_stderr() && args.iter().any(|a| a == "--json") {
                output::report_usage(&e);
                return ExitCode::from(2);
            }
            e.exit()
        }
    };
    init_logging(cli.log);
    let json = cli.command.json();
    let mut out = std::io::stdout().lock();
    let result: Result<ExitCode> = match cli.command {
        Command::Whoami(args) => whoami::run(&args, &mut out).map(|()| ExitCode::SUCCESS),
        Command::Sddl(args) => sddl::run(&args, &mut out).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => run::run(&args, &mut out),
        Command::Serve(args) => serve::run_serve(args).map(|()| ExitCode::SUCCESS),
        Command::Cat(args) => {
            serve::or_not_a_pipe_server(args.client(), serve::run_cat(&args, &mut out))
        }
        Command::Ls(args) => {
            serve::or_not_a_pipe_server(args.client(), serve::run_ls(&args, &mut out))
        }
        Command::Stat(args) => {
            serve::or_not_a_pipe_server(args.client(), serve::run_stat(&args, &mut out))
        }
        Command::Put(args) => {
            serve::or_not_a_pipe_server(args.client(), serve::run_put(&args, &mut out))
        }
        Command::Demo(args) => demo::run(&args, &mut out),
        Command::Completions(args) => completions(&args, &mut out).map(|()| ExitCode::SUCCESS),
        Command::Man(args) => man(&args, &mut out).map(|()| ExitCode::SUCCESS),
        Command::Rpc(args) => rpc::run(args, &mut out),
        Command::Dbus(args) => dbus::run(args),
        Command::Bench(args) => bench::run(args, &mut out),
        Command::AccessCheck(args) => access_check::run(&args, &mut out).map(|o| match o {
            access_check::Outcome::Allowed => ExitCode::SUCCESS,
            access_check::Outcome::Denied => ExitCode::from(1),
        }),
    }
    .and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            output::report_error(json, &e);
            ExitCode::from(2)
        }
    }
}

impl Command {
    /// Whether the command was asked for `--json`: its errors are then the
    /// failure envelope on stdout ([`output`]).
    fn json(&self) -> bool {
        match self {
            Command::Whoami(a) => a.json,
            Command::Sddl(a) => a.json,
            Command::AccessCheck(a) => a.json,
            Command::Ls(a) | Command::Stat(a) => a.json,
            Command::Put(a) => a.json,
            Command::Rpc(a) => a.json(),
            Command::Bench(a) => a.json(),
            _ => false,
        }
    }
}

/// `e` and its causes, `: `-separated, as anyhow's `{:#}` but ending at a guise
/// error, whose text already holds its own causes.
pub(crate) fn report(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        parts.push(cause.to_string());
        if cause.is::<guise::Error>() {
            break;
        }
    }
    parts.join(": ")
}

/// Whether `e` is a write to a closed stdout (`guise ls | head`), which exits 0.
/// A broken pipe under a guise error is the server's connection, a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().take_while(|c| !c.is::<guise::Error>()).any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
