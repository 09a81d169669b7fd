//! `guise run`, as a user would run it.

#[path = "../../guise/tests/common/accounts.rs"]
mod accounts;
mod common;

use common::field;

fn guise_run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    common::guise(&all, stdin)
}

#[test]
fn run_as_a_uid() {
    need_root!();
    let (code, s, err) = guise_run(
        &[
            "--uid",
            "61001",
            "--groups",
            "61001,61500",
            "--",
            "cat",
            "/proc/self/status",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&s, "Uid"), "61001 61001 61001 61001");
    assert_eq!(field(&s, "Gid"), "61001 61001 61001 61001");
    assert_eq!(field(&s, "Groups"), "61001 61500");
    for caps in ["CapPrm", "CapEff", "CapAmb", "CapInh"] {
        assert_eq!(field(&s, caps), "0000000000000000", "{caps}");
    }
    // It cannot become root again.
    let (code, _, err) = guise_run(
        &[
            "--uid",
            "61001",
            "--",
            "python3",
            "-c",
            "import os; os.setresuid(0, 0, 0)",
        ],
        "",
    );
    assert_ne!(code, 0);
    assert!(err.contains("PermissionError"), "{err}");
    // The exit status is the program's; loader variables are refused.
    assert_eq!(
        guise_run(&["--uid", "61001", "--", "sh", "-c", "exit 7"], "").0,
        7
    );
    let (code, _, err) = guise_run(
        &["--uid", "61001", "--env", "LD_PRELOAD=/x.so", "--", "true"],
        "",
    );
    assert_eq!(code, 125);
    assert!(err.contains("LD_PRELOAD"), "{err}");
    let (code, _, err) = guise_run(&["--uid", "4294967295", "--", "true"], "");
    assert_eq!(code, 125);
    assert!(err.contains("ERROR_INVALID_PARAMETER"), "{err}");
}

#[test]
fn run_with_a_password_through_pam() {
    need_root!();
    // The child inherits this thread's private mount namespace with the accounts.
    let a = accounts::accounts();
    let dir = a.pam_dir.to_str().unwrap();
    let (code, out, err) = guise_run(
        &[
            "--user",
            "alice",
            "--password-stdin",
            "--pam-config-dir",
            dir,
            "--",
            "sh",
            "-c",
            "id -un; read line; echo \"$line\"",
        ],
        &format!("{}\nthe rest of stdin\n", accounts::PASSWORD),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "alice\nthe rest of stdin\n",
        "the program gets the rest of stdin"
    );
    let (code, _, err) = guise_run(
        &[
            "--user",
            "alice",
            "--password-stdin",
            "--pam-config-dir",
            dir,
            "--",
            "true",
        ],
        "wrong\n",
    );
    assert_eq!(code, 125);
    assert!(err.contains("ERROR_LOGON_FAILURE"), "{err}");
    // Without a password, root builds the token from NSS.
    let (code, out, err) = guise_run(
        &["--user", "alice", "--logon", "batch", "--", "id", "-u"],
        "",
    );
    assert_eq!((code, out.trim()), (0, "61201"), "{err}");
}

/// The caller's terminal, as a Python driver sees it: `sh` in a pseudo-terminal
/// runs `guise run` on it, then reads what is left in its input.
const TTY_DRIVER: &str = r#"
import os, pty, sys
guise, prog = sys.argv[1], sys.argv[2]
show = "import os; print('CALLER', os.ttyname(0), open('/proc/self/stat').read().rsplit(')', 1)[1].split()[4], flush=True)"
pid, fd = pty.fork()
if pid == 0:
    os.execvp('bash', ['bash', '-c',
        'python3 -c "$2"; "$0" run --uid 61001 -- python3 -c "$1"; read -t 2 line; echo "LEFT:[$line]"',
        guise, prog, show])
out = b''
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors='replace'))
"#;

/// The program run by `guise run`: its terminal, then TIOCSTI into every terminal
/// it can reach.
const TTY_PROGRAM: &str = r#"
import os, fcntl, termios
name = os.ttyname(0) if os.isatty(0) else '-'
print('PROG', name, open('/proc/self/stat').read().rsplit(')', 1)[1].split()[4], flush=True)
def inject(fd):
    for c in 'echo INJECTED\n':
        fcntl.ioctl(fd, termios.TIOCSTI, c.encode())
for fd in (0, 1, 2):
    try:
        inject(fd)
    except OSError as e:
        print('tiocsti', fd, e.errno, flush=True)
try:
    inject(os.open('/dev/tty', os.O_RDWR))
except OSError as e:
    print('devtty', e.errno, flush=True)
"#;

/// Attack: a program started by `guise run` pushes input into the caller's
/// terminal with TIOCSTI (the caller's shell would run it as the caller, root).
#[test]
fn guise_run_under_a_terminal_gives_the_program_its_own_and_tiocsti_reaches_nothing() {
    need_root!();
    let out = std::process::Command::new("python3")
        .args(["-c", TTY_DRIVER, common::GUISE, TTY_PROGRAM])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let line = |tag: &str| -> Vec<String> {
        text.lines()
            .find_map(|l| l.find(tag).map(|i| l[i..].to_owned()))
            .unwrap_or_else(|| panic!("no {tag} line in\n{text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let (caller, prog) = (line("CALLER "), line("PROG "));
    assert_ne!(
        caller[1], prog[1],
        "the program's terminal is the caller's\n{text}"
    );
    assert_ne!(
        caller[2], prog[2],
        "the program's controlling terminal is the caller's\n{text}"
    );
    assert_ne!(
        prog[2], "0",
        "the program has a terminal of its own\n{text}"
    );
    let left = line("LEFT:");
    assert_eq!(
        left,
        ["LEFT:[]"],
        "input was injected into the caller's terminal\n{text}"
    );
}

/// Attack: the caller names a PAM configuration of their own (one that lets
/// anyone in) for `guise run`. Only one that root owns and no one else may write
/// is taken.
#[test]
fn a_pam_configuration_others_may_write_is_refused() {
    need_root!();
    let a = accounts::accounts();
    std::fs::write(
        a.pam_dir.join("open"),
        "auth sufficient pam_permit.so\naccount sufficient pam_permit.so\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &a.pam_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let dir = a.pam_dir.to_str().unwrap();
    let (code, _, err) = guise_run(
        &[
            "--user",
            "alice",
            "--password-stdin",
            "--pam-service",
            "open",
            "--pam-config-dir",
            dir,
            "--",
            "true",
        ],
        "anything\n",
    );
    assert_eq!(code, 125, "guise's own error");
    assert!(err.contains("writable by no one else"), "{err}");
}

/// Exit statuses as env's and sudo's: the program's own; 127 not found; 126 found
/// but not executable (by the user, or not a program at all); 125 guise's own error.
#[test]
fn exit_statuses_say_not_found_cannot_execute_and_guise_errors() {
    need_root!();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A script only root may execute: 61001 may not.
    let roots = dir.path().join("roots-only");
    std::fs::write(&roots, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&roots, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, "not a program").unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_user = |program: &str| guise_run(&["--uid", "61001", "--", program], "");
    assert_eq!(
        guise_run(&["--uid", "61001", "--", "sh", "-c", "exit 7"], "").0,
        7
    );
    let (code, _, err) = as_user("/no/such/program");
    assert_eq!(code, 127, "{err}");
    let (code, _, err) = as_user("no-such-program-on-path");
    assert_eq!(code, 127, "{err}");
    let (code, _, err) = as_user(roots.to_str().unwrap());
    assert_eq!(code, 126, "{err}");
    let (code, _, err) = as_user(data.to_str().unwrap());
    assert_eq!(code, 126, "{err}");
    let (code, _, err) = as_user(dir.path().to_str().unwrap());
    assert_eq!(code, 126, "a directory: {err}");
    // guise's own errors: a uid the kernel would misread, a usage error.
    let (code, _, err) = guise_run(&["--uid", "4294967295", "--", "true"], "");
    assert_eq!(code, 125, "{err}");
    let (code, _, err) = guise_run(&["--no-such-option", "--", "true"], "");
    assert_eq!(code, 125, "{err}");
}

#[test]
fn completions_and_manual_pages_generate() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = common::guise(&["completions", shell], "");
        assert_eq!(code, 0, "{shell}: {err}");
        for word in ["serve", "run", "level", "impersonation"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    // bash takes the script: `guise` then completes.
    let bash = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "source <({} completions bash) && complete -p guise",
                common::GUISE
            ),
        ])
        .output()
        .unwrap();
    assert!(bash.status.success(), "{bash:?}");
    assert!(String::from_utf8_lossy(&bash.stdout).contains("guise"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let (code, _, err) = common::guise(&["man", "--out-dir", out], "");
    assert_eq!(code, 0, "{err}");
    for page in [
        "guise.1",
        "guise-run.1",
        "guise-serve.1",
        "guise-rpc-serve.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text:.80}"
        );
    }
    let run = std::fs::read_to_string(dir.path().join("guise-run.1")).unwrap();
    assert!(run.contains("127"), "the exit statuses are in the manual");
}

/// A directory down is not a wrong password: with pam_krb5 and a realm whose KDC
/// does not answer, the logon fails with ERROR_NO_LOGON_SERVERS.
#[test]
fn an_unreachable_authentication_service_is_reported_as_such_not_as_a_wrong_password() {
    need_root!();
    let module = std::path::Path::new("/lib/x86_64-linux-gnu/security/pam_krb5.so");
    if common::skip::skip_unless(module.exists(), "pam_krb5 (libpam-krb5)") {
        return;
    }
    let _accounts = accounts::accounts();
    let (dir, _) = common::pam_dir(
        "krb",
        "auth required pam_krb5.so\naccount required pam_unix.so\nsession required pam_unix.so\n",
    );
    let krb5_conf = dir.path().join("krb5.conf");
    // Port 9 (discard) on loopback: nothing answers there.
    std::fs::write(
        &krb5_conf,
        "[libdefaults]\n default_realm = DOWN.TEST\n dns_lookup_kdc = false\n \
         dns_lookup_realm = false\n kdc_timeout = 1000\n max_retries = 1\n\
         [realms]\n DOWN.TEST = {\n  kdc = 127.0.0.1:9\n }\n",
    )
    .unwrap();
    let (code, _, err) = common::guise_with_env(
        &[
            "run",
            "--user",
            "alice",
            "--password-stdin",
            "--pam-service",
            "krb",
            "--pam-config-dir",
            dir.path().to_str().unwrap(),
            "--",
            "true",
        ],
        "any password\n",
        &[("KRB5_CONFIG", krb5_conf.as_os_str())],
    );
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("ERROR_NO_LOGON_SERVERS"), "{err}");
    assert!(
        !err.contains("ERROR_LOGON_FAILURE"),
        "reported as a wrong password: {err}"
    );
}

/// PAM learns who asks and from where (PAM_RUSER, PAM_RHOST), as with su and sudo.
#[test]
fn pam_is_told_the_requesting_user_and_host() {
    need_root!();
    let a = accounts::accounts();
    let (dir, log) = common::pam_dir(
        "told",
        "auth required pam_unix.so\nauth required pam_exec.so RECORD\naccount required pam_unix.so\n\
         session required pam_unix.so\n",
    );
    let (code, _, err) = guise_run(
        &[
            "--user",
            "alice",
            "--password-stdin",
            "--pam-service",
            "told",
            "--pam-config-dir",
            dir.path().to_str().unwrap(),
            "--",
            "true",
        ],
        &format!("{}\n", accounts::PASSWORD),
    );
    drop(a);
    let seen = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, 0, "{err}; PAM saw: {seen}");
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(
        seen.contains(&format!("auth user=alice ruser=root rhost={host}")),
        "{seen}"
    );
}

/// Root runs a program as a user without a password, as runuser does: no
/// authentication, but account management (an expired account is refused) and a
/// session.
#[test]
fn root_without_a_password_still_goes_through_account_and_session_management() {
    need_root!();
    let _accounts = accounts::accounts();
    let (dir, log) = common::pam_dir(
        "nopw",
        "auth optional pam_exec.so RECORD\nauth required pam_permit.so\naccount required pam_unix.so\naccount required pam_exec.so RECORD\n\
         session required pam_exec.so RECORD\n",
    );
    let run = |user: &str| {
        guise_run(
            &[
                "--user",
                user,
                "--pam-service",
                "nopw",
                "--pam-config-dir",
                dir.path().to_str().unwrap(),
                "--",
                "id",
                "-un",
            ],
            "",
        )
    };
    let (code, out, err) = run("alice");
    assert_eq!((code, out.as_str()), (0, "alice\n"), "{err}");
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.contains("account user=alice"), "{seen}");
    assert!(seen.contains("open_session user=alice"), "{seen}");
    assert!(!seen.contains("auth "), "authenticated: {seen}");
    // carol's account has expired: account management refuses her.
    let (code, _, err) = run("carol");
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("ERROR_ACCOUNT_EXPIRED"), "{err}");
}

/// Runs `guise ARGS` on a fresh pseudo-terminal with `TERM` set to `term` in its
/// environment; returns what the terminal showed.
fn guise_on_a_terminal(args: &[&str], term: &str) -> String {
    const DRIVER: &str = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b''
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors='replace'))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", DRIVER, common::GUISE])
        .args(args)
        .env("TERM", term)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

/// #22 item 5: a program given a pseudo-terminal gets the caller's TERM (the
/// relay writes to the caller's terminal); a TERM that is a path, not a terminal
/// type, is left out, and without a terminal there is none.
#[test]
fn run_keeps_term_with_a_pseudo_terminal() {
    need_root!();
    let show = [
        "run",
        "--uid",
        "61001",
        "--",
        "sh",
        "-c",
        "echo \"TERM=[$TERM]\"",
    ];
    let text = guise_on_a_terminal(&show, "xterm-256color");
    assert!(text.contains("TERM=[xterm-256color]"), "{text}");
    let text = guise_on_a_terminal(&show, "../../tmp/terminfo");
    assert!(text.contains("TERM=[]"), "a path passed as TERM: {text}");
    let (code, out, err) = common::guise_with_env(
        &show,
        "",
        &[("TERM", std::ffi::OsStr::new("xterm-256color"))],
    );
    assert_eq!((code, out.as_str()), (0, "TERM=[]\n"), "{err}");
}

/// #22 item 5: `--login` as `runuser -l`: the user's login shell as a login shell
/// (`-sh`, which reads ~/.profile), in the home directory, with the built
/// environment only; a command is run by it with its words as given.
#[test]
fn run_login_starts_the_login_shell_in_the_home_directory() {
    need_root!();
    let _accounts = accounts::accounts();
    // A /home of this test's own (its private mount namespace) with alice's home.
    rustix::mount::mount(
        "tmpfs",
        "/home",
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap();
    let home = std::path::Path::new("/home/alice");
    std::fs::create_dir(home).unwrap();
    std::fs::write(home.join(".profile"), "export FROM_PROFILE=yes\n").unwrap();
    std::os::unix::fs::chown(home, Some(61201), Some(61201)).unwrap();
    std::os::unix::fs::chown(home.join(".profile"), Some(61201), Some(61201)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let caller = [("NOT_FOR_ALICE", std::ffi::OsStr::new("1"))];
    // No command: the shell reads its commands from stdin.
    let (code, out, err) = common::guise_with_env(
        &["run", "--user", "alice", "--login"],
        "echo \"$0 $(pwd)\"; env\n",
        &caller,
    );
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("-sh /home/alice"), "{out}");
    let env: Vec<&str> = lines.collect();
    for var in [
        "HOME=/home/alice",
        "USER=alice",
        "LOGNAME=alice",
        "SHELL=/bin/sh",
        "FROM_PROFILE=yes",
    ] {
        assert!(env.contains(&var), "no {var} in {env:?}");
    }
    assert!(env.iter().any(|v| v.starts_with("PATH=")), "{env:?}");
    assert!(
        !env.iter().any(|v| v.starts_with("NOT_FOR_ALICE=")),
        "the caller's environment passed: {env:?}"
    );
    // A command: run by the login shell, its words exactly as given.
    let (code, out, err) = guise_run(
        &[
            "--user", "alice", "--login", "--", "printf", "%s|", "a b", "it's", "$HOME",
        ],
        "",
    );
    assert_eq!((code, out.as_str()), (0, "a b|it's|$HOME|"), "{err}");
    let (code, out, err) = guise_run(
        &[
            "--user",
            "alice",
            "--login",
            "--",
            "sh",
            "-c",
            "echo $FROM_PROFILE; pwd",
        ],
        "",
    );
    assert_eq!((code, out.as_str()), (0, "yes\n/home/alice\n"), "{err}");
    // A home alice may not enter: a warning, and the shell starts in /.
    std::os::unix::fs::chown(home, Some(0), Some(0)).unwrap();
    let (code, out, err) = guise_run(&["--user", "alice", "--login", "--", "pwd"], "");
    assert_eq!((code, out.as_str()), (0, "/\n"), "{err}");
    assert!(
        err.contains("cannot change directory to /home/alice"),
        "{err}"
    );
}

/// #22 item 5, attack: `--chdir` into a directory only root may enter. The change
/// of directory happens as the user, so it fails, and says why.
#[test]
fn run_chdir_enters_the_directory_as_the_user() {
    need_root!();
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(dir.path(), 0o755);
    let open = dir.path().join("open");
    let mine = dir.path().join("mine");
    let closed = dir.path().join("closed");
    let inner = closed.join("inner");
    for d in [&open, &mine, &closed, &inner] {
        std::fs::create_dir(d).unwrap();
        mode(d, 0o755);
    }
    mode(&closed, 0o700);
    std::os::unix::fs::chown(&mine, Some(61001), Some(61001)).unwrap();
    mode(&mine, 0o700);
    let pwd = |d: &std::path::Path| {
        guise_run(
            &[
                "--uid",
                "61001",
                "--chdir",
                d.to_str().unwrap(),
                "--",
                "pwd",
            ],
            "",
        )
    };
    for d in [&open, &mine] {
        let (code, out, err) = pwd(d);
        assert_eq!((code, out.trim()), (0, d.to_str().unwrap()), "{err}");
    }
    for d in [&closed, &inner] {
        let (code, out, err) = pwd(d);
        assert_eq!(code, 125, "entered {}: {out} {err}", d.display());
        assert!(
            err.contains(&format!("cannot change directory to {}", d.display()))
                && err.contains("Permission denied"),
            "{err}"
        );
    }
    let (code, _, err) = pwd(&dir.path().join("absent"));
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("No such file"), "{err}");
}

/// #22 item 5: `--preserve-env` keeps the named variables from the caller's
/// environment, and no other; loader variables are refused as with `--env`.
#[test]
fn run_preserve_env_keeps_only_the_named_variables() {
    need_root!();
    let caller = [
        ("GUISE_KEPT", std::ffi::OsStr::new("kept value")),
        ("GUISE_OTHER", std::ffi::OsStr::new("other")),
        ("GCONV_PATH", std::ffi::OsStr::new("/tmp")),
    ];
    let (code, out, err) = common::guise_with_env(
        &[
            "run",
            "--uid",
            "61001",
            "--preserve-env=GUISE_KEPT,GUISE_ABSENT",
            "--",
            "env",
        ],
        "",
        &caller,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "GUISE_KEPT=kept value"), "{out}");
    assert!(!out.contains("GUISE_OTHER"), "{out}");
    assert!(!out.contains("GUISE_ABSENT"), "{out}");
    // --env overrides a preserved variable.
    let (code, out, err) = common::guise_with_env(
        &[
            "run",
            "--uid",
            "61001",
            "--preserve-env",
            "GUISE_KEPT",
            "--env",
            "GUISE_KEPT=set",
            "--",
            "env",
        ],
        "",
        &caller,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "GUISE_KEPT=set"), "{out}");
    for refused in ["GCONV_PATH", "LD_PRELOAD"] {
        let (code, _, err) = common::guise_with_env(
            &[
                "run",
                "--uid",
                "61001",
                &format!("--preserve-env={refused}"),
                "--",
                "true",
            ],
            "",
            &caller,
        );
        assert_eq!(code, 125, "{err}");
        assert!(err.contains(refused), "{err}");
    }
}

/// #22 item 5: root is told that a user does not exist, not that a user name or
/// password is wrong; the exit status is guise's own.
#[test]
fn run_names_an_unknown_user() {
    need_root!();
    let (code, _, err) = guise_run(&["--user", "nosuch-guise-user", "--", "true"], "");
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("no user named nosuch-guise-user"), "{err}");
    assert!(!err.contains("ERROR_LOGON_FAILURE"), "{err}");
}

/// #22 item 5: `--password-stdin` needs root (a process that is not root cannot
/// start a program as another user at all): a caller that is not root is told so,
/// before the password is read.
#[test]
fn run_password_stdin_needs_root() {
    need_root!();
    // guise itself, run as uid 61001, is the caller that is not root.
    let (code, out, err) = guise_run(
        &[
            "--uid",
            "61001",
            "--",
            "sh",
            "-c",
            "\"$0\" run --user root --password-stdin -- true; echo \"rc=$?\"; read l; echo \"left=$l\"",
            common::GUISE,
        ],
        "the password\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "rc=125\nleft=the password\n", "{err}");
    assert!(err.contains("--password-stdin needs root"), "{err}");
}
