//! The library's modules depend only downward: each module names only modules
//! below it in [`LAYERS`] (a circle is a design bug, not something to live with).

use std::path::Path;

/// The modules of the library, lowest first. A module may use only those before it.
const LAYERS: &[&str] = &[
    "error",
    "id",
    "sys",
    // Sockets bound beneath the server's checks, and rate-limited warnings.
    "listener",
    // Privileges and guise's own capability set: below the credentials that
    // report capabilities in it.
    "privilege",
    "cred",
    "sid",
    "directory",
    "token",
    // The audit trail: every module that acts for someone records it here.
    "audit",
    "thread",
    "logon",
    "process",
    "fs",
    "security",
    "uring",
    "client",
    // The limits every transport holds its clients to.
    "admission",
    "kerberos",
    "pool",
    "pipe",
    "rpc",
    "dbus",
    "systemd",
];

/// The modules of `security`, lowest first.
const SECURITY: &[&str] = &[
    "mask",
    "alias",
    "descriptor",
    "access",
    "file",
    "conditional",
    "sddl",
    "membership",
];

/// The code of a file without its comments (doc comments included: a link in the
/// docs is no dependency).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow `prefix` in `text`.
fn names_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|n| !n.is_empty())
        .collect()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The position of `name` in `layers`, or a failure naming the file.
fn rank(layers: &[&str], name: &str, file: &Path) -> usize {
    layers
        .iter()
        .position(|l| *l == name)
        .unwrap_or_else(|| panic!("{}: module {name} is not in the layer list", file.display()))
}

#[test]
fn modules_depend_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut upward = Vec::new();
    for file in &all {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs");
        if top == "lib" {
            continue;
        }
        let text = code(file);
        let me = rank(LAYERS, top, file);
        for used in names_after(&text, "crate::") {
            // `crate::sys_setter_called` is the crate-root re-export of sys itself.
            if used == "sys_setter_called" || used == top {
                continue;
            }
            if rank(LAYERS, used, file) >= me {
                upward.push(format!("{} uses crate::{used}", rel.display()));
            }
        }
        if top == "security" {
            let sub = rel.file_stem().unwrap().to_str().unwrap();
            if sub == "mod" {
                continue;
            }
            let me = rank(SECURITY, sub, file);
            for used in names_after(&text, "super::")
                .into_iter()
                .chain(names_after(&text, "crate::security::"))
            {
                if rank(SECURITY, used, file) >= me && used != sub {
                    upward.push(format!("{} uses security::{used}", rel.display()));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "upward or circular dependencies:\n{}",
        upward.join("\n")
    );
}

/// The check can fail: a use of a higher module is caught.
#[test]
fn an_upward_use_is_caught() {
    let text = "use crate::thread::revert_to_self;\n// crate::pipe in a comment\n";
    let used = names_after(text, "crate::");
    assert_eq!(used, ["thread", "pipe"]);
    let dir = std::env::temp_dir().join(format!("guise-layering-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("token.rs");
    std::fs::write(&f, text).unwrap();
    let code = code(&f);
    let names = names_after(&code, "crate::");
    assert_eq!(names, ["thread"], "comments are not dependencies");
    assert!(rank(LAYERS, "thread", &f) > rank(LAYERS, "token", &f));
    std::fs::remove_dir_all(&dir).unwrap();
}
