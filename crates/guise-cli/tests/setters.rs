//! `forbid_libc_credential_setters!`: a call to a libc setter in the binary aborts
//! instead of changing every thread's credentials.

guise::forbid_libc_credential_setters!();

#[test]
fn a_libc_setter_call_aborts() {
    if std::env::var_os("GUISE_CALL_SETUID").is_some() {
        // SAFETY: a plain FFI call; the definition above aborts.
        let r = unsafe { libc::setuid(0) };
        println!("setuid returned {r}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_libc_setter_call_aborts", "--nocapture"])
        .env("GUISE_CALL_SETUID", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGABRT),
        "{stderr}"
    );
    assert!(stderr.contains("setuid() was called"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("returned"));
}
