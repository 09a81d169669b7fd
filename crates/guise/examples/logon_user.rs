//! LogonUser: a user logged on through PAM with a password, and a process started
//! with the logon's token (the program gets the PAM session's environment).
//!
//! `echo PASSWORD | sudo cargo run --example logon_user -- USER` (needs root and
//! the `guise` PAM service: `contrib/pam.d/guise` installed as /etc/pam.d/guise).

use guise::process::SpawnOptions;
use guise::{CommandExt, LogonType, Password, logon_user};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(user) = std::env::args().nth(1) else {
        eprintln!("usage: logon_user USER (the password on stdin)");
        std::process::exit(2);
    };
    let password = Password::read_line(&mut std::io::stdin().lock())?;
    // LogonUser
    let token = match logon_user(&user, password, LogonType::Interactive) {
        Ok(t) => t,
        Err(e) => {
            // A wrong password, an expired account and an unreachable directory
            // are told apart (ERROR_LOGON_FAILURE, ERROR_ACCOUNT_EXPIRED,
            // ERROR_NO_LOGON_SERVERS, ...).
            eprintln!("logon refused: {e}");
            std::process::exit(1);
        }
    };
    println!("logged on: {} (uid {})", token.user(), token.unix().uid());
    std::process::Command::new("id")
        .spawn_as_user(&token, &SpawnOptions::default())?
        .wait()?;
    Ok(())
}
