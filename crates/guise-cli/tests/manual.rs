//! The manual pages and shell completions an administrator meets first (#22).

mod common;

use common::guise;

#[test]
fn issue_22_every_manual_page_has_exit_status_environment_files_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = guise(&["man", "--out-dir", dir.path().to_str().unwrap()], "");
    assert_eq!(code, 0, "{err}");
    let mut pages = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let page = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH \"EXIT STATUS\"",
            ".SH \"ENVIRONMENT\"",
            ".SH \"FILES\"",
            ".SH EXAMPLES",
        ] {
            assert!(page.contains(section), "{name} has no {section}:\n{page}");
        }
        // No roff request is started by the text, and every hyphen is escaped.
        for line in page.lines().filter(|l| !l.starts_with('.')) {
            assert!(!line.starts_with('\''), "{name}: {line}");
        }
        pages += 1;
    }
    assert!(pages >= 20, "{pages} pages");
    let page = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    // What each page says is its own.
    let run = page("guise-run.1");
    assert!(
        run.contains("\\fB125\\fR") && run.contains("\\fB127\\fR"),
        "{run}"
    );
    let check = page("guise-access-check.1");
    assert!(check.contains("The access is denied."), "{check}");
    let serve = page("guise-serve.1");
    assert!(serve.contains("SIGHUP neither stops the server"), "{serve}");
    assert!(serve.contains("GUISE_IO_URING"), "{serve}");
    assert!(page("guise-rpc-serve.1").contains("/etc/guise/guise.keytab"));
    assert!(page("guise-dbus-serve.1").contains("ReadWithOptions"));
    let main = page("guise.1");
    assert!(
        main.contains("/etc/pam.d/guise") && main.contains("GUISE_LOG"),
        "{main}"
    );
    // groff, where it is installed, reads each page without a warning.
    if common::kdc::which("groff").is_some() {
        for name in ["guise.1", "guise-run.1", "guise-serve.1"] {
            let out = std::process::Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(dir.path().join(name))
                .output()
                .unwrap();
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `--user` completes user names, in bash (run here), zsh and fish.
#[test]
fn issue_22_user_completes_user_names_not_file_names() {
    let (code, bash, err) = guise(&["completions", "bash"], "");
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("guise.bash");
    std::fs::write(&script, &bash).unwrap();
    // A file whose name also starts with "ro", where a file name would complete.
    std::fs::write(dir.path().join("roster.txt"), "").unwrap();
    for words in ["guise run --user ro", "guise access-check --user ro"] {
        let out = std::process::Command::new("bash")
            .current_dir(dir.path())
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; _guise guise ro --user; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.lines().any(|l| l == "root"),
            "{words}: {said} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !said.contains("roster.txt"),
            "{words} completed a file: {said}"
        );
    }
    let (_, zsh, _) = guise(&["completions", "zsh"], "");
    let user_lines: Vec<&str> = zsh.lines().filter(|l| l.contains("--user=")).collect();
    assert!(!user_lines.is_empty(), "{zsh}");
    assert!(
        user_lines.iter().all(|l| l.contains(":_users")),
        "{user_lines:?}"
    );
    let (_, fish, _) = guise(&["completions", "fish"], "");
    let user_lines: Vec<&str> = fish.lines().filter(|l| l.contains("-l user")).collect();
    assert!(!user_lines.is_empty(), "{fish}");
    assert!(
        user_lines
            .iter()
            .all(|l| l.contains("__fish_complete_users")),
        "{user_lines:?}"
    );
}
