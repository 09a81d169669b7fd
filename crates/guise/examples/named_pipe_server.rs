//! ImpersonateNamedPipeClient, OpenThreadToken and RevertToSelf: a named-pipe
//! server thread acts as its client, and the kernel sees the client.
//!
//! `cargo run --example named_pipe_server`. Run as root, the client is uid 61001
//! (started by the example); otherwise it is the caller's own identity, which
//! needs no privilege.

use guise::ImpersonationLevel;
use guise::client::SecurityQos;
use guise::pipe::{PipeAddr, PipeClient, PipeServer, ServerOptions};

fn status(field: &str) -> String {
    let s = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .trim()
        .to_owned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let addr = PipeAddr::Path(dir.path().join("pipe"));
    let server = PipeServer::bind(addr.clone(), ServerOptions::default())?;
    let root = rustix::process::geteuid().is_root();
    // The client, on a thread of its own; as root, as uid 61001.
    let client = guise::thread::spawn(move || -> guise::Result<Vec<u8>> {
        let _as_client = if root {
            Some(guise::Token::from_ids(61001, 61001, &[61001])?.impersonate()?)
        } else {
            None
        };
        let qos = SecurityQos {
            level: ImpersonationLevel::Impersonation,
            ..SecurityQos::default()
        };
        let mut pipe = PipeClient::connect(&addr, qos)?;
        pipe.transact(b"who am I to you?")
    })?;
    let mut conn = server.accept()?;
    let request = conn.read_message()?.unwrap_or_default();
    println!("request: {}", String::from_utf8_lossy(&request));
    println!("server thread before:   Uid {}", status("Uid"));
    let answer = {
        // ImpersonateNamedPipeClient
        let guard = conn.impersonate_client()?;
        // OpenThreadToken
        let token = guise::thread::open_thread_token(true)?;
        let uid = status("Uid");
        println!(
            "while impersonating:    Uid {uid} (level {})",
            guard.level()
        );
        format!("you are {} (uid {})", token.user(), token.unix().uid())
        // RevertToSelf when the guard is dropped
    };
    println!("after RevertToSelf:     Uid {}", status("Uid"));
    conn.write_message(answer.as_bytes())?;
    let reply = client.join().map_err(|_| "the client panicked")??;
    println!(
        "the client was told:    {}",
        String::from_utf8_lossy(&reply)
    );
    Ok(())
}
