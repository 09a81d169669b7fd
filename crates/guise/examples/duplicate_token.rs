//! OpenProcessToken, DuplicateTokenEx, ImpersonateLoggedOnUser and
//! ImpersonateSelf: copies of a token at other levels, and what a thread gets
//! when it impersonates them.
//!
//! `cargo run --example duplicate_token`

use guise::{ImpersonationLevel, Token, TokenType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // OpenProcessToken
    let process = Token::open_process()?;
    println!(
        "process token: {} ({})",
        process.user(),
        type_name(process.token_type())
    );
    // DuplicateTokenEx: an impersonation token at Identification level.
    let id = process.duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)?;
    println!(
        "duplicate: {} at {} level",
        type_name(id.token_type()),
        id.impersonation_level()
            .map_or("no", ImpersonationLevel::win32_name)
    );
    // Raising the level of an impersonation token is refused, as on Windows.
    let raised = id.duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation);
    println!(
        "raising it: {}",
        raised
            .map(|_| "allowed".to_owned())
            .unwrap_or_else(|e| e.to_string())
    );
    {
        // ImpersonateLoggedOnUser: the thread takes the token at its level.
        let guard = id.impersonate()?;
        println!("impersonating the duplicate at {}", guard.level());
        // At Identification level the thread may not open objects as the client.
        println!(
            "may it open files? {}",
            guise::thread::check_open_as_client()
                .map(|()| "yes".to_owned())
                .unwrap_or_else(|e| e.to_string())
        );
    }
    // ImpersonateSelf: the thread's own identity as an impersonation token.
    let guard = guise::thread::impersonate_self(ImpersonationLevel::Impersonation)?;
    let own = guise::thread::open_thread_token(true)?;
    println!("ImpersonateSelf at {}: {}", guard.level(), own.user());
    Ok(())
}

/// The name of a token type (`TokenPrimary`, `TokenImpersonation`).
fn type_name(t: TokenType) -> &'static str {
    match t {
        TokenType::Primary => "TokenPrimary",
        TokenType::Impersonation => "TokenImpersonation",
    }
}
