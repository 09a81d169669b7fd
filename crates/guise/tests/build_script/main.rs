//! The build script's check of the system libraries (`build.rs`), run by cargo on
//! a throwaway crate that uses it: where a library's development files are
//! missing (hidden here by mounts in a mount namespace of the test's own), the
//! build stops with a message that names the Debian package, and for Kerberos the
//! feature to turn off; where they are there, it goes on.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A crate with the library's build script and its `kerberos` feature, and
/// nothing else.
fn throwaway() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs");
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             build = {script:?}\n\n[features]\nkerberos = []\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    dir
}

/// `cargo build` of the throwaway crate, with `--features kerberos` if asked,
/// with `hidden` paths covered (directories by an empty directory, files by an
/// empty file) in a mount namespace of its own.
fn build(kerberos: bool, hidden: &[PathBuf]) -> Output {
    let krate = throwaway();
    let empty = tempfile::tempdir().unwrap();
    let mut script = String::from("set -e; mount --make-rprivate /; ");
    for path in hidden {
        let cover = if path.is_dir() {
            empty.path()
        } else {
            Path::new("/dev/null")
        };
        script += &format!("mount --bind {cover:?} {path:?}; ");
    }
    script += "exec \"$@\"";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new("unshare");
    command
        .args([
            "-m",
            "sh",
            "-c",
            &script,
            "sh",
            &cargo,
            "build",
            "--offline",
        ])
        .args(
            kerberos
                .then_some(["--features", "kerberos"])
                .into_iter()
                .flatten(),
        )
        .current_dir(krate.path())
        .env("CARGO_TARGET_DIR", krate.path().join("target"))
        .env_remove("GUISE_NO_LINK_CHECK");
    let out = command.output().expect("running unshare");
    drop(krate);
    out
}

/// Debian's library directory (`/usr/lib/x86_64-linux-gnu`).
fn libdir() -> PathBuf {
    let out = Command::new("cc").arg("-print-multiarch").output();
    let arch = out.map_or_else(
        |_| String::new(),
        |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
    );
    Path::new("/usr/lib").join(arch)
}

/// What libkrb5-dev and krb5-multidev put in place for linking and for
/// pkg-config (the runtime libraries stay).
fn krb5_dev_files() -> Vec<PathBuf> {
    let lib = libdir();
    [
        lib.join("mit-krb5"),
        lib.join("pkgconfig/mit-krb5"),
        lib.join("pkgconfig/mit-krb5-gssapi.pc"),
        lib.join("pkgconfig/mit-krb5.pc"),
        PathBuf::from("/usr/include/gssapi"),
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect()
}

/// What libpam0g-dev puts in place for linking and for pkg-config.
fn pam_dev_files() -> Vec<PathBuf> {
    let lib = libdir();
    [lib.join("libpam.so"), lib.join("pkgconfig/pam.pc")]
        .into_iter()
        .filter(|p| p.exists())
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The prerequisites: root and unshare (a mount namespace), Debian's libkrb5-dev
/// and libpam0g-dev (what is hidden).
fn can_run() -> bool {
    if common::skip::skip_without_root() {
        return false;
    }
    let unshare = Command::new("unshare").arg("--version").output().is_ok();
    !common::skip::skip_unless(
        unshare && krb5_dev_files().len() >= 3 && pam_dev_files().len() == 2,
        "unshare and Debian's libkrb5-dev and libpam0g-dev",
    )
}

#[test]
fn without_the_krb5_development_files_the_kerberos_feature_names_libkrb5_dev_and_itself() {
    if !can_run() {
        return;
    }
    let out = build(true, &krb5_dev_files());
    let said = text(&out);
    assert!(!out.status.success(), "the build went on: {said}");
    assert!(said.contains("install libkrb5-dev"), "{said}");
    assert!(said.contains("turn off the `kerberos` feature"), "{said}");
    assert!(said.contains("default-features = false"), "{said}");
    assert!(!said.contains("libpam0g-dev"), "{said}");
}

#[test]
fn without_the_krb5_development_files_the_default_features_build() {
    if !can_run() {
        return;
    }
    let out = build(false, &krb5_dev_files());
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn with_the_development_files_the_kerberos_feature_builds() {
    if !can_run() {
        return;
    }
    let out = build(true, &[]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn without_the_pam_development_files_any_build_names_libpam0g_dev() {
    if !can_run() {
        return;
    }
    let out = build(false, &pam_dev_files());
    let said = text(&out);
    assert!(!out.status.success(), "the build went on: {said}");
    assert!(
        said.contains("libpam not found: install libpam0g-dev"),
        "{said}"
    );
}
