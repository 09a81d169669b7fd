//! SetThreadToken and OpenThreadToken on another thread: one thread puts a token
//! on a worker, which then acts with it, and reads it back.
//!
//! `cargo run --example set_thread_token`. As root the worker becomes uid 61001;
//! otherwise it takes the caller's own identity at Identification level.

use guise::thread::ThreadHandle;
use guise::{ImpersonationLevel, Token, TokenType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = if rustix::process::geteuid().is_root() {
        Token::from_ids(61001, 61001, &[61001])?
    } else {
        Token::open_process()?
    }
    .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)?;
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    // A thread started with guise::thread::spawn can be given a token by others.
    let worker = guise::thread::spawn(move || {
        handle_tx.send(ThreadHandle::current()).unwrap();
        go_rx.recv().unwrap();
        let uid = std::fs::read_to_string("/proc/thread-self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or("")
            .to_owned();
        println!("worker, after SetThreadToken: {uid}");
    })?;
    let handle = handle_rx.recv()??;
    // SetThreadToken(worker, token)
    handle.set_thread_token(Some(&token))?;
    // OpenThreadToken(worker)
    let seen = handle.open_thread_token()?;
    println!(
        "the worker's token: {} at {} level",
        seen.user(),
        seen.impersonation_level()
            .map_or("no", guise::ImpersonationLevel::win32_name)
    );
    go_tx.send(())?;
    worker.join().map_err(|_| "the worker panicked")?;
    Ok(())
}
