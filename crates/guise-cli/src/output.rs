//! What the commands print for scripts: one `--json` envelope for every command
//! (docs/cli-json.md).
//!
//! Under `--json` a command prints exactly one line on stdout, one JSON object:
//!
//! - `{"ok":true,"data":DATA}` when it did its work (the data is the command's
//!   own: an identity, a descriptor, a listing, a check's result);
//! - `{"ok":false,"error":"ERROR_...","message":"..."}` when it failed: a server's
//!   refusal (exit status 1) or an error of guise itself, usage included (exit
//!   status 2). `error` is the Win32 name; `message` says what failed and why.
//!
//! Nothing else goes to stdout; logs stay on stderr. Without `--json` the same
//! outcomes are text for people: the data on stdout, an error on stderr as
//! `guise: MESSAGE`, with its control characters escaped.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Value, json};

/// The Win32 name of an error that is no more precise.
const GENERIC: &str = "ERROR_GEN_FAILURE";

/// The success envelope: `{"ok":true,"data":data}`.
pub fn success_value(data: Value) -> Value {
    json!({ "ok": true, "data": data })
}

/// The failure envelope: `{"ok":false,"error":error,"message":message}`.
pub fn failure_value(error: &str, message: &str) -> Value {
    json!({ "ok": false, "error": error, "message": message })
}

/// Prints the success envelope of `data` on one line.
///
/// # Errors
/// A failed write.
pub fn success(out: &mut impl Write, data: Value) -> std::io::Result<()> {
    writeln!(out, "{}", success_value(data))
}

/// Prints the failure envelope on one line.
///
/// # Errors
/// A failed write.
pub fn failure(out: &mut impl Write, error: &str, message: &str) -> std::io::Result<()> {
    writeln!(out, "{}", failure_value(error, message))
}

/// A server's refusal of a request (`error`, its Win32 name, and its message):
/// the failure envelope on stdout under `--json`, else the message on stderr
/// (escaped). Exit status 1.
///
/// # Errors
/// A failed write.
pub fn refused(
    out: &mut impl Write,
    json: bool,
    error: &str,
    message: &str,
) -> std::io::Result<ExitCode> {
    if json {
        failure(out, error, message)?;
    } else {
        eprintln!("guise: {}", crate::serve::escape(message, false));
    }
    Ok(ExitCode::from(1))
}

/// The Win32 name of an error of guise itself: the first guise error in its
/// chain, else the first I/O error's (guise's errno table), else
/// `ERROR_GEN_FAILURE`.
pub fn error_name(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if let Some(g) = cause.downcast_ref::<guise::Error>() {
            return g.kind().win32_name();
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return guise::ErrorKind::of_io(io).win32_name();
        }
    }
    GENERIC
}

/// Reports an error of guise itself (exit status 2): the failure envelope on
/// stdout under `--json`, else `guise: MESSAGE` on stderr.
pub fn report_error(json: bool, e: &anyhow::Error) {
    let message = crate::report(e);
    if json {
        let mut out = std::io::stdout().lock();
        let _ = failure(&mut out, error_name(e), &message);
        let _ = out.flush();
    } else {
        eprintln!("guise: {message}");
    }
}

/// Reports a usage error of the command line (exit status 2) under `--json`: the
/// failure envelope, `ERROR_INVALID_PARAMETER`, with clap's error (before its
/// usage line) as the message.
pub fn report_usage(e: &clap::Error) {
    let text = e.render().to_string();
    let message = usage_message(&text);
    let message = if message.is_empty() {
        "invalid arguments"
    } else {
        &message
    };
    let mut out = std::io::stdout().lock();
    let _ = failure(
        &mut out,
        guise::ErrorKind::InvalidParameter.win32_name(),
        message,
    );
    let _ = out.flush();
}

/// Clap's rendered error on one line: its lines up to the usage, trimmed and
/// joined with a space, without the leading `error: `.
fn usage_message(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelopes_have_exactly_their_keys() {
        let ok = success_value(json!([1]));
        let keys: Vec<&String> = ok.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["ok", "data"]);
        assert_eq!(ok["ok"], true);
        let no = failure_value("ERROR_ACCESS_DENIED", "denied");
        let keys: Vec<&String> = no.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["ok", "error", "message"]);
        assert_eq!(no["ok"], false);
    }

    #[test]
    fn a_usage_error_is_one_line_before_the_usage() {
        let text = "error: the following required arguments were not provided:\n  <DESCRIPTOR>\n\nUsage: guise sddl <DESCRIPTOR>\n";
        assert_eq!(
            usage_message(text),
            "the following required arguments were not provided: <DESCRIPTOR>"
        );
    }

    #[test]
    fn an_errors_name_is_its_guise_or_io_kind() {
        let g = anyhow::Error::from(guise::Error::new(guise::ErrorKind::InvalidSid, "x"))
            .context("parsing");
        assert_eq!(error_name(&g), "ERROR_INVALID_SID");
        let io = anyhow::Error::from(std::io::Error::from_raw_os_error(2)).context("reading");
        assert_eq!(error_name(&io), "ERROR_FILE_NOT_FOUND");
        assert_eq!(error_name(&anyhow::anyhow!("plain")), "ERROR_GEN_FAILURE");
    }
}
