//! Tests that need root. Outside CI such a test, run without root, is skipped loudly:
//! it prints `skipped: needs root` and adds its name to the file `GUISE_SKIP_LOG`
//! names, which `scripts/test.sh` sums up after the run. Under `CI=true` it fails:
//! a check that cannot run must not pass.

/// Whether `CI` says this is a CI run (`CI=true`, or any value but `0`/`false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// `true` when the calling test must stop because it needs root and has not got it.
///
/// # Panics
/// Under CI, when not root.
pub fn skip_without_root() -> bool {
    skip_unless(rustix::process::geteuid().is_root(), "root")
}

/// `true` when the calling test must stop because it needs `what` (root, a
/// program) and `have` says it has not got it: outside CI it is skipped loudly and
/// logged; under CI it fails.
///
/// # Panics
/// Under CI, when `have` is false.
pub fn skip_unless(have: bool, what: &str) -> bool {
    if have {
        return false;
    }
    let name = std::thread::current().name().unwrap_or("a test").to_owned();
    assert!(
        !in_ci(),
        "{name} needs {what} and CI is set: a test that cannot run fails"
    );
    eprintln!("skipped: needs {what} ({name})");
    if let Some(log) = std::env::var_os("GUISE_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{name}");
        }
    }
    true
}

/// Returns early, loudly, from a test that needs root (fails under CI instead).
#[macro_export]
macro_rules! need_root {
    () => {
        if $crate::common::skip::skip_without_root() {
            return;
        }
    };
}
