//! `guise run`: start a program as another user, like Windows `runas`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use guise::logon::{LogonOptions, logon_user_s4u, logon_user_with};
use guise::process::{Session, SpawnOptions};
use guise::{CommandExt, ImpersonationLevel, LogonType, Password, Token, TokenType};

/// Options of `guise run`.
#[derive(clap::Args)]
pub struct Args {
    /// The account to run as.
    #[arg(
        long,
        conflicts_with = "uid",
        required_unless_present = "uid",
        value_hint = clap::ValueHint::Username
    )]
    user: Option<String>,
    /// A numeric uid to run as (no account needed; root only).
    #[arg(long)]
    uid: Option<u32>,
    /// The primary gid with --uid (default: the uid).
    #[arg(long, requires = "uid")]
    gid: Option<u32>,
    /// Supplementary groups with --uid, comma-separated.
    #[arg(long, requires = "uid", value_delimiter = ',')]
    groups: Vec<u32>,
    /// The logon type.
    #[arg(long, default_value = "interactive", value_parser = ["interactive", "batch", "service", "network"])]
    logon: String,
    /// Read the password from the first line of stdin and log the user on through
    /// PAM; without it the token is built from NSS. Root only, as is all of
    /// `guise run`: a process that is not root cannot start a program as another
    /// user, password or not (use su or sudo for that).
    #[arg(long, requires = "user")]
    password_stdin: bool,
    /// The PAM service to log on with.
    #[arg(long, default_value = "guise")]
    pam_service: String,
    /// Read the PAM configuration from this directory instead of /etc/pam.d.
    #[arg(long, value_name = "DIR")]
    pam_config_dir: Option<PathBuf>,
    /// Set an environment variable for the program (VAR=VALUE); loader variables
    /// such as LD_PRELOAD are refused.
    #[arg(long = "env", value_name = "VAR=VALUE")]
    env: Vec<String>,
    /// Keep these variables from guise's own environment (comma-separated; a
    /// variable guise's environment lacks is left out); loader variables such as
    /// LD_PRELOAD are refused. --env overrides them.
    #[arg(long, value_name = "VAR,...", value_delimiter = ',')]
    preserve_env: Vec<String>,
    /// Start the program in this directory, entered as the user: a directory the
    /// user may not enter is an error, even though root could enter it.
    #[arg(long, value_name = "DIR")]
    chdir: Option<PathBuf>,
    /// A login, as `runuser -l` and `sudo -i`: the user's login shell as a login
    /// shell (argv[0] "-sh"), or, with a command, the command run by it with -c
    /// (its words quoted for the shell), in the user's home directory (else in /,
    /// with a warning); --chdir overrides the directory.
    #[arg(long)]
    login: bool,
    /// The program and its arguments (with --login, optional).
    #[arg(last = true, required_unless_present = "login")]
    command: Vec<String>,
}

/// The environment the program gets, for `--help` and the manual.
pub const ENVIRONMENT: &str = "The program's environment is built, never inherited: \
HOME, USER, LOGNAME, SHELL and PATH for the user, what PAM's session sets, \
KRB5CCNAME for the token's Kerberos credentials, TERM from the caller's \
environment when the program gets a pseudo-terminal, the variables named by \
--preserve-env, then those set by --env. Loader variables (LD_*, GCONV_PATH, ...) \
never pass. --login gives the same environment.";

/// A PAM configuration decides who is authenticated: one from another directory
/// is taken only if it, and the service's file in it, belong to root and no one
/// else may write them.
fn trusted_pam_dir(dir: &std::path::Path, service: &str) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    for p in [dir.to_owned(), dir.join(service)] {
        let m = std::fs::metadata(&p).with_context(|| format!("{}", p.display()))?;
        if m.uid() != 0 || m.mode() & 0o022 != 0 {
            bail!(
                "{} must belong to root and be writable by no one else to configure PAM",
                p.display()
            );
        }
    }
    Ok(dir.to_owned())
}

/// Reads one line from stdin byte by byte, so that the rest stays for the program.
fn password_from_stdin() -> Result<Password> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(rustix::stdio::stdin(), &mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => bytes.push(byte[0]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).context("reading the password from stdin"),
        }
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    Ok(Password::from_bytes(bytes))
}

fn logon_type(name: &str) -> LogonType {
    match name {
        "batch" => LogonType::Batch,
        "service" => LogonType::Service,
        "network" => LogonType::Network,
        _ => LogonType::Interactive,
    }
}

/// Starts the program in a session of its own. Where the caller's stdin, stdout or
/// stderr is a terminal the program gets a fresh pseudo-terminal instead, which
/// this process relays; the caller's terminal is never open in the program.
///
/// With a pseudo-terminal the program gets the caller's `TERM` (the terminal the
/// relay writes to is the caller's), where it names a terminal type and not a path.
fn spawn_and_wait(
    mut cmd: Command,
    token: &Token,
    mut options: SpawnOptions<'_>,
) -> Result<std::process::ExitStatus> {
    use std::os::fd::AsFd;
    use std::process::Stdio;
    let stdio = [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ];
    let ttys = stdio.map(rustix::termios::isatty);
    let Some(first) = ttys.iter().position(|&t| t) else {
        return Ok(cmd.spawn_as_user(token, &options).map_err(Exec)?.wait()?);
    };
    // --env and --preserve-env may set it themselves.
    if !cmd.get_envs().any(|(k, _)| k == "TERM")
        && let Some(term) = std::env::var_os("TERM").filter(|t| is_terminal_type(t))
    {
        cmd.env("TERM", term);
    }
    let pty = crate::pty::Pty::open(stdio[first], token.unix().uid().as_raw())?;
    let slave = || -> Result<Stdio> { Ok(Stdio::from(pty.slave.try_clone()?)) };
    if ttys[0] {
        cmd.stdin(slave()?);
    }
    if ttys[1] {
        cmd.stdout(slave()?);
    }
    if ttys[2] {
        cmd.stderr(slave()?);
    }
    options.session = Session::NewWithTerminal(first as i32);
    let mut child = cmd.spawn_as_user(token, &options).map_err(Exec)?;
    // Only the program holds its side now.
    drop(cmd);
    let crate::pty::Pty { master, slave } = pty;
    drop(slave);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).context("the program's pid")?;
    let exited = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .context("pidfd_open")?;
    {
        let _raw = if ttys[0] {
            Some(crate::pty::RawMode::enter(stdio[0])?)
        } else {
            None
        };
        let output = if ttys[1] { stdio[1] } else { stdio[2] };
        crate::pty::relay(
            &master,
            ttys[0].then_some(stdio[0]),
            output,
            Some(stdio[first].as_fd()),
            &exited,
            pid,
        )?;
    }
    Ok(child.wait()?)
}

/// Whether `TERM` names a terminal type: a short word, never a path (terminfo
/// would read a file of the caller's choosing), as sudo checks it.
fn is_terminal_type(term: &std::ffi::OsStr) -> bool {
    let b = term.as_encoded_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.+".contains(c))
}

/// The words of a command as one line for `sh -c`: each word that is not plainly
/// safe is single-quoted, so that the shell runs exactly these words.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        // Every word quoted, the first too: no word is then an assignment
        // (`A=b`), a reserved word (`if`, `time`) or anything but itself.
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether this process may start a program as another user: root, or
/// CAP_SETUID and CAP_SETGID in its permitted set (SeTcbPrivilege).
fn may_start_as_another_user() -> bool {
    use rustix::thread::CapabilitySet;
    rustix::thread::capabilities(None).is_ok_and(|c| {
        c.permitted
            .contains(CapabilitySet::SETUID | CapabilitySet::SETGID)
    })
}

/// Whether the token's user may enter `dir` (search every directory on the way,
/// and the directory itself), checked while this thread impersonates the user:
/// the answer `chdir` would give the user. The outer error is guise's own.
fn may_enter(
    token: &Token,
    dir: &std::path::Path,
) -> Result<std::result::Result<(), rustix::io::Errno>> {
    use rustix::fs::{Access, AtFlags, CWD, FileType};
    Ok(token.run_as(|| {
        let st = rustix::fs::stat(dir)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(rustix::io::Errno::NOTDIR);
        }
        // The effective ids, the user's while impersonating (the real ones are root's).
        rustix::fs::accessat(CWD, dir, Access::EXEC_OK, AtFlags::EACCESS)
    })?)
}

/// The program could not be started: the exit status says why, as env's and
/// sudo's do.
#[derive(Debug)]
struct Exec(guise::Error);

impl std::fmt::Display for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Exec {}

/// `guise run`'s own error.
pub const EXIT_GUISE: u8 = 125;
/// The program was found but cannot be executed.
pub const EXIT_CANNOT_EXECUTE: u8 = 126;
/// The program was not found.
pub const EXIT_NOT_FOUND: u8 = 127;

/// The exit status for an error of `guise run`: 127 when the program was not
/// found, 126 when it cannot be executed, 125 for anything else (guise's own).
fn exit_status_of(e: &anyhow::Error) -> u8 {
    let Some(Exec(err)) = e.downcast_ref::<Exec>() else {
        return EXIT_GUISE;
    };
    use rustix::io::Errno;
    let is = |e: &Errno| err.errno() == Some(e.raw_os_error());
    if is(&Errno::NOENT) {
        return EXIT_NOT_FOUND;
    }
    let cannot = [
        Errno::ACCESS,
        Errno::PERM,
        Errno::NOEXEC,
        Errno::ISDIR,
        Errno::NOTDIR,
        Errno::LOOP,
        Errno::TXTBSY,
        Errno::TOOBIG,
        Errno::NAMETOOLONG,
    ];
    if cannot.iter().any(is) || err.kind() == guise::ErrorKind::AccessDenied {
        EXIT_CANNOT_EXECUTE
    } else {
        EXIT_GUISE
    }
}

/// Runs `guise run`. The exit status is the program's (128 + N for signal N);
/// else 127 when the program was not found, 126 when it cannot be executed, and
/// 125 for guise's own errors (as env and sudo do), with the error on stderr.
pub fn run(args: &Args, out: &mut impl Write) -> Result<ExitCode> {
    match run_program(args, out) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("guise: {}", crate::report(&e));
            Ok(ExitCode::from(exit_status_of(&e)))
        }
    }
}

fn run_program(args: &Args, _out: &mut impl Write) -> Result<ExitCode> {
    let kind = logon_type(&args.logon);
    let pam_options = || -> Result<LogonOptions> {
        let mut options = LogonOptions::default();
        options.service = args.pam_service.clone();
        options.config_dir = match &args.pam_config_dir {
            Some(dir) => Some(trusted_pam_dir(dir, &args.pam_service)?),
            None => None,
        };
        // As su and sudo do: who asks, and from where (this machine).
        let caller = rustix::process::getuid();
        options.remote_user = Some(
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(caller.as_raw()))
                .ok()
                .flatten()
                .map_or_else(|| caller.as_raw().to_string(), |u| u.name),
        );
        options.remote_host = Some(
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
        );
        Ok(options)
    };
    // Root-only even for the caller's own account: a process started "as" its
    // caller still takes on the account's groups (setgroups needs CAP_SETGID);
    // a caller runs its own programs directly.
    if args.password_stdin && !may_start_as_another_user() {
        // Checked before the password is read: nothing is taken from stdin.
        bail!(
            "--password-stdin needs root: only a process with CAP_SETUID and CAP_SETGID \
             (root) can start a program as a user, even its own account (whose groups it \
             takes on), password or not; use su or sudo to run as another user"
        );
    }
    if let Some(user) = &args.user {
        // Root may know which accounts exist: say so, not "user name or password is
        // incorrect" (which PAM would answer, and which hides it from others).
        let known = nix::unistd::User::from_name(user)
            .with_context(|| format!("looking up the user {user:?}"))?;
        if known.is_none() {
            return Err(guise::Error::new(
                guise::ErrorKind::NoneMapped,
                format!("no user named {user}"),
            )
            .into());
        }
    }
    let token = match (&args.user, args.uid) {
        (Some(user), None) if args.password_stdin => {
            logon_user_with(user, password_from_stdin()?, kind, &pam_options()?)?
        }
        // Root without a password: PAM's account and session management still
        // run, without authentication, as runuser does.
        (Some(user), None) => logon_user_s4u(user, kind, &pam_options()?)?,
        (None, Some(uid)) => {
            let gid = args.gid.unwrap_or(uid);
            let mut groups = args.groups.clone();
            if groups.is_empty() {
                groups.push(gid);
            }
            Token::from_ids(uid, gid, &groups)?
        }
        _ => bail!("give --user NAME or --uid N"),
    };
    // A network logon is an impersonation token: a process needs a primary one.
    let token = match token.token_type() {
        TokenType::Primary => token,
        TokenType::Impersonation => {
            token.duplicate(ImpersonationLevel::Impersonation, TokenType::Primary)?
        }
    };
    let uid = token.unix().uid().as_raw();
    let account = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let mut options = SpawnOptions::default();
    let mut cmd = if args.login {
        // The login shell of the account (a uid without one gets /bin/sh), as a
        // login shell: argv[0] is its name with a leading dash.
        let shell = account
            .as_ref()
            .map(|a| a.shell.clone())
            .filter(|s| !s.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("/bin/sh"));
        let name = shell.file_name().unwrap_or(shell.as_os_str());
        let mut arg0 = std::ffi::OsString::from("-");
        arg0.push(name);
        options.arg0 = Some(arg0);
        let mut cmd = Command::new(&shell);
        if !args.command.is_empty() {
            cmd.arg("-c").arg(shell_words(&args.command));
        }
        cmd
    } else {
        let mut cmd = Command::new(&args.command[0]);
        cmd.args(&args.command[1..]);
        cmd
    };
    let dir = match (&args.chdir, args.login) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => {
            let home = account
                .as_ref()
                .map_or_else(|| PathBuf::from("/"), |a| a.dir.clone());
            match may_enter(&token, &home)? {
                Ok(()) => Some(home),
                Err(e) => {
                    eprintln!(
                        "guise: warning: cannot change directory to {} as the user: {e}; starting in /",
                        home.display()
                    );
                    Some(PathBuf::from("/"))
                }
            }
        }
        (None, false) => None,
    };
    if let Some(dir) = &dir {
        cmd.current_dir(dir);
    }
    for name in &args.preserve_env {
        if name.is_empty() || name.contains('=') {
            bail!("--preserve-env takes variable names, not {name:?}");
        }
        if !guise::process::is_safe_env_var(name.as_ref()) {
            bail!("{name} may not pass to a process started as another user");
        }
        if let Some(value) = std::env::var_os(name) {
            if name == "TERM" && !is_terminal_type(&value) {
                bail!("TERM is not a terminal type ({value:?}): it may not pass");
            }
            cmd.env(name, value);
        }
    }
    for pair in &args.env {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--env takes VAR=VALUE, not {pair:?}");
        };
        // TERM names a terminal type, never a path to a terminfo file of someone's.
        if k == "TERM" && !is_terminal_type(v.as_ref()) {
            bail!("--env TERM={v:?}: TERM must be a terminal type (letters, digits, -_.+)");
        }
        cmd.env(k, v);
    }
    let status = match spawn_and_wait(cmd, &token, options) {
        Ok(status) => status,
        // The child enters the directory as the user: say so when that is why it
        // could not start.
        Err(e) if e.is::<Exec>() => match &dir {
            Some(dir) => match may_enter(&token, dir)? {
                Err(why) => bail!(
                    "cannot change directory to {} as the user: {why}",
                    dir.display()
                ),
                Ok(()) => return Err(e),
            },
            None => return Err(e),
        },
        Err(e) => return Err(e),
    };
    // The logon's PAM session ends now, before the process does.
    drop(token);
    guise::logon::end_finished_sessions();
    Ok(
        match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => ExitCode::from(code as u8),
            (None, Some(sig)) => ExitCode::from(128 + sig as u8),
            _ => ExitCode::FAILURE,
        },
    )
}
