//! `guise serve --fork-per-request`: the classic fork-per-request server, a baseline
//! for the benchmarks. One thread waits (`poll`) for clients, for their requests
//! and for its children; for each read it forks a child
//! ([`guise::process::fork_as_user`]) that takes on the client's ids, serves the
//! read over the client's connection and exits. No exec, no threads, no
//! impersonation inside the server. It serves reads only; the replies are those of
//! `guise serve` (docs/protocol.md).

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use anyhow::{Context, Result};
use guise::pipe::{PipeAddr, PipeConnection, PipeServer};
use guise::process::{Forked, fork_as_user};
use guise::{ImpersonationLevel, TokenType};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, PidfdFlags, WaitOptions, pidfd_open, waitpid};
use serde_json::{Value, json};

use crate::files::{self, CHUNK, invalid, read_chunk};
use crate::serve::{ServeArgs, capabilities_report, failure, raise_file_limit, server_options};

/// A client's connection, and the child serving its request, if one is.
struct Client {
    pipe: PipeConnection,
    child: Option<(Pid, OwnedFd)>,
}

/// Serves until killed.
pub fn run(args: &ServeArgs) -> Result<()> {
    raise_file_limit();
    let root = rustix::fs::open(
        &args.files.root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", args.files.root.display()))?;
    let Some(socket) = &args.socket else {
        anyhow::bail!("--fork-per-request needs --socket");
    };
    let server = PipeServer::bind(PipeAddr::Path(socket.clone()), server_options(args))?;
    eprintln!(
        "{}; each read is served by a child forked for it, which takes on the client's ids (fork-per-request, for comparison only)",
        capabilities_report("guise serve", true)
    );
    let mut clients: HashMap<u64, Client> = HashMap::new();
    let mut next = 0u64;
    loop {
        // The listener, then each client's socket or, while a child serves it, the
        // child's pidfd.
        let keys: Vec<u64> = clients.keys().copied().collect();
        let ready: Vec<bool> = {
            let mut fds = vec![PollFd::new(&server, PollFlags::IN)];
            for k in &keys {
                let c = &clients[k];
                fds.push(match &c.child {
                    Some((_, pidfd)) => PollFd::new(pidfd, PollFlags::IN),
                    None => PollFd::new(&c.pipe, PollFlags::IN),
                });
            }
            poll(&mut fds, None).context("poll")?;
            fds.iter().map(|f| !f.revents().is_empty()).collect()
        };
        if ready[0] {
            match server.accept() {
                Ok(pipe) => {
                    clients.insert(next, Client { pipe, child: None });
                    next += 1;
                }
                Err(e) => tracing::warn!(%e, "accept"),
            }
        }
        for (k, _) in keys.iter().zip(&ready[1..]).filter(|(_, r)| **r) {
            let Some(client) = clients.get_mut(k) else {
                continue;
            };
            let keep = match client.child.take() {
                // The child is done: the connection is the parent's again.
                Some((pid, _pidfd)) => matches!(
                    waitpid(Some(pid), WaitOptions::empty()),
                    Ok(Some((_, status))) if status.exit_status() == Some(0)
                ),
                None => next_request(client, &root)?,
            };
            if !keep {
                clients.remove(k);
            }
        }
    }
}

/// Reads a client's request and answers it: a read by a child forked for it, the
/// rest with an error. Whether the connection stays open. Returns only in the
/// parent.
fn next_request(client: &mut Client, root: &OwnedFd) -> Result<bool> {
    let request = match client.pipe.read_message() {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(false),
        Err(e) => {
            tracing::info!(%e, "closing a connection");
            return Ok(false);
        }
    };
    let read = parse_read(&request).and_then(|r| {
        let token = client.pipe.client().token()?;
        // Below Impersonation level DuplicateTokenEx makes no primary token
        // (ERROR_BAD_IMPERSONATION_LEVEL): nothing runs as the client.
        Ok((
            r,
            token.duplicate(ImpersonationLevel::Impersonation, TokenType::Primary)?,
        ))
    });
    let ((path, offset, length), primary) = match read {
        Ok(x) => x,
        Err(e) => {
            let sent = client
                .pipe
                .write_message(failure(&e).to_string().as_bytes());
            return Ok(sent.is_ok());
        }
    };
    match fork_as_user(&primary) {
        Ok(Forked::Parent { pid }) => {
            let pid = Pid::from_raw(pid as i32).context("the child's pid")?;
            let pidfd = pidfd_open(pid, PidfdFlags::empty()).context("pidfd_open")?;
            client.child = Some((pid, pidfd));
            Ok(true)
        }
        Ok(Forked::Child) => {
            // The client's ids now; the server's are gone for good.
            let code = match serve_read(&mut client.pipe, root, &path, offset, length) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            std::process::exit(code)
        }
        Err(e) => {
            let sent = client
                .pipe
                .write_message(failure(&e).to_string().as_bytes());
            Ok(sent.is_ok())
        }
    }
}

/// The path, offset and length (0: to the end) of a read request.
fn parse_read(request: &[u8]) -> guise::Result<(String, u64, u64)> {
    let req: Value =
        serde_json::from_slice(request).map_err(|e| invalid(format!("not JSON: {e}")))?;
    if req["op"] != "read" {
        return Err(invalid(
            "the fork-per-request server serves reads only".to_owned(),
        ));
    }
    let path = req["path"]
        .as_str()
        .ok_or_else(|| invalid("path is missing".to_owned()))?;
    let number = |k: &str| match &req[k] {
        Value::Null => Ok(0),
        v => v
            .as_u64()
            .ok_or_else(|| invalid(format!("{k} is not a number"))),
    };
    Ok((path.to_owned(), number("offset")?, number("length")?))
}

/// Serves a read as the calling process (the child, as the client): the header,
/// the data in chunks, the end, the trailer; or the error.
fn serve_read(
    pipe: &mut PipeConnection,
    root: &OwnedFd,
    path: &str,
    offset: u64,
    length: u64,
) -> guise::Result<()> {
    let (fd, size) = match files::open_regular(root, path) {
        Ok(x) => x,
        Err(e) => return pipe.write_message(failure(&e).to_string().as_bytes()),
    };
    pipe.write_message(json!({ "ok": true, "size": size }).to_string().as_bytes())?;
    let (mut pos, mut left) = (offset, if length == 0 { u64::MAX } else { length });
    let mut sent = 0u64;
    let result = loop {
        let chunk = match read_chunk(&fd, pos, left) {
            Ok(c) => c,
            Err(e) => break Err(e),
        };
        let full = chunk.len() as u64 == left.min(CHUNK as u64);
        if !chunk.is_empty() {
            pipe.write_message(&chunk)?;
            let n = chunk.len() as u64;
            (pos, left, sent) = (pos + n, left - n, sent + n);
        }
        // A short chunk is the end of the file.
        if !full || chunk.is_empty() || left == 0 {
            break Ok(());
        }
    };
    pipe.write_message(&[])?;
    let trailer = match &result {
        Ok(()) => json!({ "ok": true, "data": sent }),
        Err(e) => failure(e),
    };
    pipe.write_message(trailer.to_string().as_bytes())?;
    Ok(())
}
