//! `guise demo`: impersonation end to end. Two throwaway numeric identities each own
//! a 0600 file; a `guise serve` file server runs in this process; `guise cat`
//! clients run as each identity (started with CreateProcessAsUser) and ask at each
//! level; the table shows what the kernel answered.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};
use guise::process::SpawnOptions;
use guise::{CommandExt, ImpersonationLevel, Token};

use crate::serve::{ServeArgs, serve};

/// Options of `guise demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Keep the demo's directory instead of removing it.
    #[arg(long)]
    keep: bool,
}

const USERS: [u32; 2] = [61001, 61002];
const LEVELS: [ImpersonationLevel; 4] = [
    ImpersonationLevel::Anonymous,
    ImpersonationLevel::Identification,
    ImpersonationLevel::Impersonation,
    ImpersonationLevel::Delegation,
];

/// Runs `guise demo`.
pub fn run(args: &Args, out: &mut impl Write) -> Result<ExitCode> {
    if !rustix::process::geteuid().is_root() {
        eprintln!(
            "guise demo needs root: it makes files owned by two throwaway uids ({} and {}), \
             serves them, and starts clients as those uids. Run it as root (for example \
             with sudo).",
            USERS[0], USERS[1]
        );
        return Ok(ExitCode::from(1));
    }
    let dir = tempfile::Builder::new().prefix("guise-demo-").tempdir()?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    for p in [dir.path(), files.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    }
    let make = |name: &str, owner: u32, mode: u32, text: &str| -> Result<()> {
        let p = files.join(name);
        std::fs::write(&p, text)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::chown(&p, Some(owner), Some(owner))?;
        Ok(())
    };
    for uid in USERS {
        make(
            &format!("{uid}.txt"),
            uid,
            0o600,
            &format!("secret of uid {uid}"),
        )?;
    }
    make("public.txt", 0, 0o644, "public notice")?;
    // A directory anyone may write into, like /tmp.
    let inbox = files.join("inbox");
    std::fs::create_dir(&inbox)?;
    std::fs::set_permissions(&inbox, std::fs::Permissions::from_mode(0o1777))?;
    let socket = dir.path().join("files.pipe");
    let exe = std::env::current_exe()?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut serve_args = ServeArgs::new(socket.clone(), files.clone());
    serve_args.files.workers = 4;
    let server = rt.spawn(serve(serve_args, async {
        let _ = stopped.await;
    }));
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    anyhow::ensure!(socket.exists(), "the demo server did not start");

    writeln!(
        out,
        "guise demo: files in {} served on {}",
        files.display(),
        socket.display()
    )?;
    writeln!(
        out,
        "  {}.txt and {}.txt are 0600, each owned by its uid; public.txt is root's, 0644.",
        USERS[0], USERS[1]
    )?;
    writeln!(
        out,
        "  Each client runs as its uid (CreateProcessAsUser) and asks the server, which"
    )?;
    writeln!(
        out,
        "  impersonates it at the level the client allows; the kernel decides.\n"
    )?;
    let mut rows = vec![[
        "client uid".to_string(),
        "level asked".into(),
        "file".into(),
        "kernel's answer".into(),
    ]];
    for uid in USERS {
        let token = Token::from_ids(uid, uid, &[uid])?;
        for level in LEVELS {
            for file in [
                format!("{}.txt", USERS[0]),
                format!("{}.txt", USERS[1]),
                "public.txt".into(),
            ] {
                let mut cmd = Command::new(&exe);
                cmd.args(["cat", "--socket"])
                    .arg(&socket)
                    .args(["--level", &level.to_string(), &file])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let outp = cmd
                    .spawn_as_user(&token, &SpawnOptions::default())
                    .context("starting a client")?
                    .wait_with_output()?;
                let answer = if outp.status.success() {
                    format!("read: \"{}\"", String::from_utf8_lossy(&outp.stdout))
                } else {
                    let err = String::from_utf8_lossy(&outp.stderr);
                    if err.contains("ERROR_ACCESS_DENIED") {
                        "denied (EACCES)".into()
                    } else if err.contains("ERROR_BAD_IMPERSONATION_LEVEL") {
                        "refused (ERROR_BAD_IMPERSONATION_LEVEL)".into()
                    } else {
                        format!("failed: {}", err.trim())
                    }
                };
                rows.push([uid.to_string(), level.to_string(), file, answer]);
            }
        }
    }
    // A file written through the server belongs to the client who wrote it.
    let token = Token::from_ids(USERS[0], USERS[0], &[USERS[0]])?;
    let mut put = Command::new(&exe);
    put.args(["put", "--socket"])
        .arg(&socket)
        .args([
            "--level",
            "impersonation",
            "--data",
            "hello",
            "inbox/note.txt",
        ])
        .stdout(Stdio::null());
    let wrote = put
        .spawn_as_user(&token, &SpawnOptions::default())?
        .wait()?
        .success();
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(inbox.join("note.txt")).context("inbox/note.txt")?,
    );

    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for (i, r) in rows.iter().enumerate() {
        writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )?;
        if i == 0 {
            writeln!(out, "  {}", "-".repeat(widths.iter().sum::<usize>() + 6))?;
        }
    }
    writeln!(
        out,
        "\n  uid {} wrote inbox/note.txt through the server at impersonation level: {}; its owner is uid {owner}.",
        USERS[0],
        if wrote { "ok" } else { "failed" }
    )?;
    writeln!(
        out,
        "\n  At anonymous and identification level the server opens nothing as the client, as on"
    )?;
    writeln!(
        out,
        "  Windows; its thread is a sentinel that owns nothing. Impersonation and delegation"
    )?;
    writeln!(out, "  clients read their own files only.")?;
    let _ = stop.send(());
    rt.block_on(server)??;
    if args.keep {
        writeln!(out, "\n  kept {}", dir.keep().display())?;
    }
    Ok(ExitCode::SUCCESS)
}
