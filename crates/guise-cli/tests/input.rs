//! Issue 22: no panic on input. Every count, timeout and size the command line
//! takes is range-checked: a value out of range is refused with a message that
//! names the option and its range, and exit status 2, before anything starts
//! (`guise serve --workers 100000` used to panic spawning threads, exit 134;
//! `--workers 0` was taken).

mod common;

use common::guise;

/// Bad values, each with its command line (the command's required options
/// given, so only the value is wrong) and the words its refusal must hold.
const BAD: &[(&[&str], &str)] = &[
    (&["serve", "--workers", "100000"], "1..=1024"),
    (&["serve", "--workers", "0"], "1..=1024"),
    (&["serve", "--workers=-1"], "'-1'"),
    (&["serve", "--workers", "many"], "'many'"),
    (&["serve", "--max-connections", "0"], "1..=1048576"),
    (&["serve", "--max-connections", "2000000"], "1..=1048576"),
    (&["serve", "--max-connections-per-uid", "0"], "1..=1048576"),
    (&["serve", "--idle-timeout", "0"], "1..=86400"),
    (
        &["serve", "--idle-timeout", "18446744073709551615"],
        "1..=86400",
    ),
    (&["serve", "--request-timeout", "0"], "1..=86400"),
    (
        &["serve", "--request-timeout", "99999999999999999999"],
        "'99999999999999999999'",
    ),
    (&["rpc", "serve", "--workers", "100000"], "1..=1024"),
    (&["rpc", "serve", "--max-calls-per-uid", "0"], "1..=65536"),
    (
        &["rpc", "serve", "--max-calls-per-uid", "70000"],
        "1..=65536",
    ),
    (&["rpc", "serve", "--handshake-timeout", "0"], "1..=86400"),
    (&["rpc", "serve", "--max-connections", "0"], "1..=1048576"),
    (&["dbus", "serve", "--workers", "0"], "1..=1024"),
    (&["dbus", "serve", "--max-calls-per-uid", "0"], "1..=65536"),
    (
        &["dbus", "serve", "--max-reply-bytes", "0"],
        "1..=4294967296",
    ),
    (
        &["dbus", "serve", "--max-reply-bytes-per-uid", "5000000000"],
        "1..=4294967296",
    ),
    (&["cat", "--timeout", "0", "x"], "1..=86400"),
    (&["ls", "--timeout", "100000", "x"], "1..=86400"),
    (&["stat", "--timeout", "0", "x"], "1..=86400"),
    (&["put", "--timeout", "0", "x"], "1..=86400"),
    (&["rpc", "call", "--timeout", "0", "whoami"], "1..=86400"),
    (
        &["cat", "--offset", "9223372036854775808", "x"],
        "0..=9223372036854775807",
    ),
    (
        &[
            "rpc",
            "call",
            "read",
            "--offset",
            "18446744073709551615",
            "x",
        ],
        "0..=9223372036854775807",
    ),
    (&["bench", "serve", "--clients", "0"], "1..=1000"),
    (&["bench", "serve", "--seconds", "0"], "1..=86400"),
    (&["bench", "serve", "--workers", "100000"], "1..=1024"),
    (&["bench", "serve", "--compare", "0"], "1..=1000"),
    (&["bench", "memory", "--connections", "0"], "1..=100000"),
];

/// The options a command needs besides the one under test.
fn required(args: &[&str]) -> Vec<&'static str> {
    match args {
        ["serve", ..] | ["rpc", "serve", ..] => {
            vec![
                "--socket",
                "/nonexistent/guise/pipe",
                "--root",
                "/nonexistent",
            ]
        }
        ["dbus", "serve", ..] => vec!["--root", "/nonexistent"],
        ["cat" | "ls" | "stat" | "put", ..] => vec!["--socket", "/nonexistent/guise/pipe"],
        ["rpc", "call", ..] => vec!["--socket", "/nonexistent/guise/pipe"],
        _ => vec![],
    }
}

#[test]
fn issue_22_every_count_out_of_range_is_refused_with_exit_2_and_no_panic() {
    for (args, words) in BAD {
        // The subcommand, its required options, then the rest.
        let split = match args {
            ["rpc" | "dbus" | "bench", ..] => 2,
            _ => 1,
        };
        let mut all: Vec<&str> = args[..split].to_vec();
        all.extend(required(args));
        all.extend(&args[split..]);
        let (code, out, err) = guise(&all, "");
        let option = args[split..]
            .iter()
            .find(|a| a.starts_with("--"))
            .and_then(|a| a.split('=').next())
            .unwrap_or_default();
        assert_eq!(code, 2, "guise {all:?}: {out}{err}");
        assert!(
            err.contains("invalid value") && err.contains(option) && err.contains(words),
            "guise {all:?} does not say what is wrong: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "guise {all:?} panicked: {err}"
        );
    }
}

/// The largest accepted values are taken: the refusal comes later, from the
/// missing directory, not from the value (and nothing panics on the way,
/// 1024 workers started).
#[test]
fn issue_22_the_maxima_are_accepted() {
    let (code, _, err) = guise(
        &[
            "serve",
            "--socket",
            "/nonexistent/guise/pipe",
            "--root",
            "/nonexistent",
            "--workers",
            "1024",
            "--max-connections",
            "1048576",
            "--idle-timeout",
            "86400",
        ],
        "",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent"), "{err}");
    assert!(!err.contains("invalid value"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `--help` names each range.
#[test]
fn issue_22_help_names_the_ranges() {
    // Help text is wrapped: compare it with its whitespace collapsed.
    let flat = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let (code, out, err) = guise(&["serve", "--help"], "");
    assert_eq!(code, 0, "{err}");
    let out = flat(out);
    for words in ["1 to 1024", "1 to 1048576", "1 to 86400"] {
        assert!(out.contains(words), "serve --help lacks {words:?}: {out}");
    }
    let (_, out, _) = guise(&["dbus", "serve", "--help"], "");
    let out = flat(out);
    assert!(out.contains("1 to 65536") && out.contains("4 GiB"), "{out}");
}
