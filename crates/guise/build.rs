//! Checks, before anything is compiled, that the system libraries the library
//! links are there, and if one is not, stops with the package that brings it
//! and the feature that needs it, instead of a linker error at the end of the
//! build.
//!
//! - libpam, always (`logon`): Debian's libpam0g-dev.
//! - MIT krb5's libgssapi_krb5 and libkrb5, with the `kerberos` feature:
//!   Debian's libkrb5-dev.
//!
//! A library is looked for as the final link will: pkg-config gives its
//! directory where it knows the package (printed for rustc), then the C
//! compiler links a program that calls it. No check is made when the C compiler
//! cannot be run, when cross-compiling, on docs.rs (`DOCS_RS`), or with
//! `GUISE_NO_LINK_CHECK` set: the link then says what it finds.

use std::path::Path;
use std::process::Command;

/// A system library the library links.
struct Library {
    /// The pkg-config packages that describe it, tried in turn.
    pkg_config: &'static [&'static str],
    /// What the C compiler is given to link it.
    link: &'static [&'static str],
    /// A function of it that a program calls (never run: only linked).
    symbol: &'static str,
    /// What to say when it is missing.
    missing: &'static str,
}

const PAM: Library = Library {
    pkg_config: &["pam"],
    link: &["-lpam"],
    symbol: "pam_start",
    missing: "libpam not found: install libpam0g-dev (Debian/Ubuntu), pam-devel \
              (Fedora/RHEL) or your system's PAM development package; guise needs it \
              for LogonUser (`guise::logon`) whatever its features",
};

const KERBEROS: Library = Library {
    pkg_config: &["krb5-gssapi", "mit-krb5-gssapi"],
    link: &["-lgssapi_krb5", "-lkrb5"],
    symbol: "gss_acquire_cred_from",
    missing: "MIT Kerberos' GSSAPI library (libgssapi_krb5) not found, which the \
              `kerberos` feature links: install libkrb5-dev (Debian/Ubuntu) or \
              krb5-devel (Fedora/RHEL), or turn off the `kerberos` feature (it is \
              not a default one: remove it from `features = [...]`, or where a \
              crate's defaults bring it in, use default-features = false with the \
              features you need)",
};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for var in [
        "GUISE_NO_LINK_CHECK",
        "DOCS_RS",
        "CC",
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let env = |name: &str| std::env::var(name).ok();
    if env("DOCS_RS").is_some()
        || env("GUISE_NO_LINK_CHECK").is_some()
        || env("TARGET") != env("HOST")
    {
        return;
    }
    check(&PAM);
    if env("CARGO_FEATURE_KERBEROS").is_some() {
        check(&KERBEROS);
    }
}

/// Stops the build, with `library.missing`, if the C compiler cannot link a
/// program that calls `library.symbol`.
fn check(library: &Library) {
    let search = library
        .pkg_config
        .iter()
        .find_map(|package| link_dirs(package))
        .unwrap_or_default();
    for dir in &search {
        println!("cargo::rustc-link-search=native={dir}");
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join(format!("probe-{}", library.symbol));
    let source = out.with_extension("c");
    let program = format!(
        "char {0}(void);\nint main(void) {{ return {0}(); }}\n",
        library.symbol
    );
    std::fs::write(&source, program).expect("writing to OUT_DIR");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let linked = Command::new(&cc)
        .arg(&source)
        .arg("-o")
        .arg(&out)
        .args(search.iter().map(|dir| format!("-L{dir}")))
        .args(library.link)
        .output();
    let _ = std::fs::remove_file(&out);
    match linked {
        // No C compiler to ask: the link will tell.
        Err(e) => println!(
            "cargo::warning=cannot run {cc} to look for {}: {e}",
            library.symbol
        ),
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr);
            let why = why
                .lines()
                .find(|l| l.contains("cannot find") || l.contains("undefined"));
            eprintln!("\nerror: {}", library.missing);
            if let Some(why) = why {
                eprintln!("(the C compiler: {})", why.trim());
            }
            eprintln!(
                "(where the library is there but this check cannot find it, \
                 GUISE_NO_LINK_CHECK=1 skips the check)\n"
            );
            std::process::exit(1);
        }
    }
}

/// The library directories pkg-config gives for `package` (`-L` flags), or
/// `None` if it cannot be run or does not know the package.
fn link_dirs(package: &str) -> Option<Vec<String>> {
    let pkg_config = std::env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let out = Command::new(pkg_config)
        .args(["--libs-only-L", package])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|flag| flag.strip_prefix("-L"))
            .map(str::to_owned)
            .collect(),
    )
}
