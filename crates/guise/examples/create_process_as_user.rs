//! CreateProcessAsUser: a process started with a token's identity, its own ids,
//! groups and environment, in a session of its own.
//!
//! `cargo run --example create_process_as_user`. As root the program runs as uid
//! 61001; otherwise as the caller (one's own token needs no privilege).

use guise::process::SpawnOptions;
use guise::{CommandExt, Token};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = if rustix::process::geteuid().is_root() {
        Token::from_ids(61001, 61001, &[61001])?
    } else {
        Token::open_process()?
    };
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "echo \"uid $(id -u), gid $(id -g), HOME=$HOME, session leader: $(ps -o sid= -p $$ | tr -d ' ') = $$\""]);
    // CreateProcessAsUser
    let status = cmd
        .spawn_as_user(&token, &SpawnOptions::default())?
        .wait()?;
    println!("the program exited: {status}");
    // The command is not consumed: it runs again, as the process (CreateProcess).
    cmd.spawn_as_process()?.wait()?;
    Ok(())
}
