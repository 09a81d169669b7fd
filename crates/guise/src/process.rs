//! Starting processes: as a token's user ([`CommandExt::spawn_as_user`],
//! CreateProcessAsUser), or as the process itself from a thread that impersonates
//! ([`CommandExt::spawn_as_process`], CreateProcess).
//!
//! A child started as a token has exactly the token's identity: real, effective and
//! saved uid and gid, supplementary groups; no capabilities in any set (a child of
//! uid 0 keeps only the capabilities of the token's enabled privileges, bounding set
//! included, so `exec` gives it no more). It cannot regain the server's identity.
//! Only stdin, stdout, stderr and the descriptors passed in [`SpawnOptions`] stay
//! open. The environment is built, never inherited: `HOME`, `USER`, `LOGNAME`,
//! `SHELL`, `PATH` for the user, the environment PAM set up for a logon,
//! `KRB5CCNAME` for the token's own credential cache
//! ([`crate::token::Token::credential_cache`]; a remote client's token without
//! one, or with one that never leaves the process, names
//! [`crate::token::NO_DELEGATED_CREDENTIALS`]), then the variables set
//! on the command; variables that steer the dynamic loader or libc (`LD_*`,
//! `GCONV_PATH`, `GLIBC_TUNABLES`, ... — glibc's list for set-id programs)
//! are refused. A working directory set with `Command::current_dir` is entered
//! as the token's user, after the child has taken on the identity: a directory
//! the user may not enter fails the spawn, although the process could enter it
//! (std enters it first, as the process, before guise's step runs; the child
//! then enters it again, by its absolute path, as the user).
//!
//! # Platform
//! `fork` copies the *calling thread's* credentials. A process started by other code
//! (a plain `std::process::Command::spawn`) from a thread that impersonates gets the
//! thread's mixed credentials: real and saved uid the server's, effective uid the
//! client's; after `exec` a real uid of 0 gives it the full permitted capability set,
//! and it can switch back to uid 0. guise's spawns set the child's identity
//! explicitly, whatever the calling thread impersonates. Programs with file
//! capabilities or the set-id bit still get those when the child runs them, as for any
//! process of that user.
//!
//! # Example
//! ```no_run
//! use guise::process::SpawnOptions;
//! use guise::{CommandExt, Token};
//!
//! let token = Token::for_user("alice", guise::LogonType::Batch)?; // root only
//! // CreateProcessAsUser: alice's ids and groups, no capabilities, a built environment.
//! let status = std::process::Command::new("id")
//!     .spawn_as_user(&token, &SpawnOptions::default())?
//!     .wait()
//!     .map_err(|e| guise::Error::os(guise::ErrorKind::Os, "wait", &e))?;
//! # let _ = status;
//! # Ok::<(), guise::Error>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::process::{Gid, Uid};

use crate::error::{Error, ErrorKind, Result};
use crate::privilege::Privilege;
use crate::sys::spawn::{ChildPlan, ChildTarget};
use crate::token::{ImpersonationLevel, Token, TokenType};

/// Options of [`CommandExt::spawn_as_user`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SpawnOptions<'a> {
    /// Descriptors the child keeps besides stdin, stdout and stderr, in order: they
    /// are numbered 3, 4, ... in the child.
    pub keep_fds: Vec<BorrowedFd<'a>>,
    /// The session the child runs in: by default a new one without a controlling
    /// terminal, so that no ioctl of the child (`TIOCSTI` among them) can reach the
    /// caller's terminal through its session.
    pub session: Session,
    /// The child's `argv[0]`, where it is not the program as named on the command
    /// (std's `arg0` is not seen by guise): `-sh` for a login shell.
    pub arg0: Option<OsString>,
}

pub use crate::sys::spawn::Session;

/// Variables that never pass to a process started as another user: glibc's list
/// of variables it drops for set-id programs, and the prefixes below.
const UNSAFE_VARS: &[&str] = &[
    "GCONV_PATH",
    "GETCONF_DIR",
    "GLIBC_TUNABLES",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "LOCPATH",
    "MALLOC_TRACE",
    "NIS_PATH",
    "NLSPATH",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    "TMPDIR",
    "TZDIR",
];
const UNSAFE_PREFIXES: &[&str] = &["LD_", "MALLOC_"];

/// Whether an environment variable may pass to a process started as another user.
pub fn is_safe_env_var(name: &OsStr) -> bool {
    let n = name.to_string_lossy();
    !UNSAFE_VARS.contains(&n.as_ref()) && !UNSAFE_PREFIXES.iter().any(|p| n.starts_with(p))
}

/// Starting processes as a token or as the process; implemented for
/// `std::process::Command` and, with the `tokio` feature, `tokio::process::Command`.
///
/// Each method installs a step that runs in the child before `exec`: configure a
/// new command for each spawn.
pub trait CommandExt {
    /// The child type.
    type Child;

    /// Starts the program as the token's user ([`CreateProcessAsUser`]). See the
    /// [module documentation](self) for what the child gets.
    ///
    /// The command is neither consumed nor changed, as with std's `spawn`: it can
    /// be spawned again, as another token's user, as the process
    /// ([`CommandExt::spawn_as_process`]) or plainly, and each child gets its own
    /// spawn's identity.
    ///
    /// The privilege is checked in the caller's effective token and the program is
    /// opened in the caller's context, as on Windows: while the thread
    /// impersonates, its impersonation token must hold SeAssignPrimaryTokenPrivilege
    /// (unless `token` is the client's own identity) and the client must be able to
    /// execute the program. The process must hold `CAP_SETUID` and `CAP_SETGID`
    /// all the same, since it does the work.
    ///
    /// # Errors
    /// - [`ErrorKind::PrivilegeNotHeld`] unless the caller's effective token holds
    ///   SeAssignPrimaryTokenPrivilege (the process token: `CAP_SETUID` +
    ///   `CAP_SETGID` permitted), or the process lacks `CAP_SETUID` + `CAP_SETGID`.
    /// - [`ErrorKind::BadImpersonationLevel`] while the thread impersonates below
    ///   Impersonation level.
    /// - [`ErrorKind::AccessDenied`] if the caller may not execute the program.
    /// - [`ErrorKind::BadTokenType`] for an impersonation token: duplicate it to a
    ///   primary token first (`Token::duplicate`).
    /// - [`ErrorKind::InvalidParameter`] for an empty program name or an unsafe
    ///   environment variable set on the command.
    /// - [`ErrorKind::Os`] if the child cannot be started, cannot take on the
    ///   identity, or cannot enter the command's `current_dir` as the token's user
    ///   (it never runs then).
    ///
    /// [`CreateProcessAsUser`]: https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-createprocessasuserw
    #[doc(alias = "CreateProcessAsUser")]
    fn spawn_as_user(&mut self, token: &Token, options: &SpawnOptions<'_>) -> Result<Self::Child>;

    /// Starts the program as the process ([`CreateProcess`]): from a thread that
    /// impersonates, the child still gets the process's credentials, never the
    /// thread's. The environment and descriptors are the command's, as configured.
    ///
    /// From a thread that impersonates, the program is found and opened as the
    /// client, as Windows opens the image with the caller's effective token: a
    /// client that may not execute a program cannot have the server start it. The
    /// child runs the file so opened; its `argv[0]` is the program as named on the
    /// command (a name set with `arg0` is not kept).
    ///
    /// # Errors
    /// - [`ErrorKind::BadImpersonationLevel`] while the thread impersonates below
    ///   Impersonation level.
    /// - [`ErrorKind::AccessDenied`] if the impersonated client may not execute the
    ///   program.
    /// - [`ErrorKind::Os`] if the child cannot be started.
    ///
    /// [`CreateProcess`]: https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-createprocessw
    #[doc(alias = "CreateProcess")]
    fn spawn_as_process(&mut self) -> Result<Self::Child>;
}

/// The process identity as the forking thread knows it.
fn server_plan() -> Result<ChildPlan> {
    let server = crate::thread::process_credentials()?;
    // What the forking thread has now: an identity it impersonates, or one it was
    // created with while its creator impersonated.
    let now = crate::cred::ThreadCredentials::current()?;
    let gid_differs = now.gid.effective != server.gid.effective;
    let groups_differ = now.groups != server.groups;
    Ok(ChildPlan {
        server_euid: server.uid.effective,
        server_caps: server.capabilities,
        restore_gid: gid_differs.then(|| Gid::from_raw(server.gid.effective)),
        restore_groups: groups_differ
            .then(|| server.groups.iter().map(|&g| Gid::from_raw(g)).collect()),
        target: None,
        keep_fds: Vec::new(),
        session: Session::Inherit,
        exec: None,
        chdir: None,
    })
}

/// The program of a spawn, found and opened in the calling thread's current
/// context: as the client it impersonates, if it does (CreateProcess and
/// CreateProcessAsUser open the image with the caller's effective token), else as
/// the process. The child runs that very file (`execveat` on the descriptor), so
/// what was checked is what runs.
///
/// A bare name is looked up on `search`: for `spawn_as_user` the `PATH` the caller
/// set on the command, else the one guise builds, never one that PAM modules (or a
/// user's `~/.pam_environment`) supplied. Only a regular file that the caller may
/// execute (`faccessat2` with `AT_EACCESS`) is taken; it is opened as a path first,
/// so that a FIFO or a device on the way is never opened.
fn open_program(
    program: &OsStr,
    cwd: Option<&std::path::Path>,
    search: &OsStr,
) -> Result<(OwnedFd, bool)> {
    use std::os::unix::ffi::OsStrExt;
    let not_found = || {
        Error::sys(
            ErrorKind::Os,
            format!("cannot find the program {:?}", program.to_string_lossy()),
            &std::io::Error::from_raw_os_error(libc::ENOENT),
        )
    };
    let candidates: Vec<std::path::PathBuf> = if program.as_bytes().contains(&b'/') {
        let p = std::path::Path::new(program);
        vec![match cwd {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_owned(),
        }]
    } else {
        std::env::split_paths(search)
            .map(|d| d.join(program))
            .collect()
    };
    let mut last = None;
    for candidate in candidates {
        let fd = match rustix::fs::open(&candidate, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::sys(ErrorKind::Os, "fstat", e))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile
            || st.st_mode & 0o111 == 0
        {
            last = Some(rustix::io::Errno::ACCESS);
            continue;
        }
        if let Err(e) = crate::sys::spawn::may_execute(fd.as_fd()) {
            last = Some(rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::ACCESS));
            continue;
        }
        // The same file, read to tell a script (whose interpreter needs the
        // descriptor open); one the caller may not read is taken for a binary.
        let mut head = [0u8; 2];
        let script = rustix::fs::open(
            format!("/proc/thread-self/fd/{}", fd.as_raw_fd()),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .is_ok_and(|r| rustix::io::pread(&r, &mut head, 0).is_ok_and(|n| n == 2) && head == *b"#!");
        return Ok((fd, script));
    }
    match last {
        None | Some(rustix::io::Errno::NOENT) | Some(rustix::io::Errno::NOTDIR) => Err(not_found()),
        Some(e) => Err(Error::sys(
            if e == rustix::io::Errno::ACCESS {
                ErrorKind::AccessDenied
            } else {
                ErrorKind::Os
            },
            format!(
                "the caller may not execute the program {:?}",
                program.to_string_lossy()
            ),
            e,
        )),
    }
}

/// The argument and environment vectors the child gets: `program` (as
/// `argv[0]`) and the command's arguments, and `env` as `KEY=VALUE`.
fn exec_vectors(
    program: &OsStr,
    cmd: &std::process::Command,
    env: &[(OsString, OsString)],
) -> Result<(Vec<std::ffi::CString>, Vec<std::ffi::CString>)> {
    let argv = std::iter::once(program)
        .chain(cmd.get_args())
        .map(cstring)
        .collect::<Result<Vec<_>>>()?;
    let envp = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            cstring(&kv)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((argv, envp))
}

fn cstring(s: &OsStr) -> Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(s.as_bytes()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidParameter,
            "an argument or environment variable contains a NUL byte",
        )
    })
}

/// Everything `spawn_as_user` prepares before `fork`.
struct Prepared {
    plan: ChildPlan,
    /// Copies of the kept descriptors, above the numbers they take in the child;
    /// closed when the spawn is over.
    _copies: Vec<OwnedFd>,
}

/// The calling thread's impersonation token, the caller's effective token when
/// there is one; `None` when the thread acts as the process. Below Impersonation
/// level the caller may neither use the client's privileges nor open a program as
/// the client: refused, as Windows refuses an open with an Identification token.
fn effective_thread_token() -> Result<Option<Token>> {
    if !crate::thread::is_impersonating() {
        return Ok(None);
    }
    let below = || {
        Error::new(
            ErrorKind::BadImpersonationLevel,
            "the thread impersonates below Impersonation level: it cannot start a process in its client's context",
        )
    };
    match crate::thread::open_thread_token(true) {
        Ok(t) if t.impersonation_level() >= Some(ImpersonationLevel::Impersonation) => Ok(Some(t)),
        Ok(_) => Err(below()),
        Err(e) if e.kind() == ErrorKind::CantOpenAnonymous => Err(below()),
        Err(e) => Err(e),
    }
}

/// The plan of a child that becomes `token`'s user, after the checks
/// CreateProcessAsUser makes: a primary token, and the privilege to assign it
/// unless it is the caller's own identity. The privilege is looked up in the
/// caller's *effective* token, as Windows does: the thread's impersonation token
/// while it impersonates (a client without SeAssignPrimaryTokenPrivilege cannot
/// have the server start a process as someone else), else the process token.
fn plan_for(token: &Token, session: Session) -> Result<ChildPlan> {
    let mut plan = server_plan()?;
    plan.session = session;
    let server = crate::thread::process_credentials()?;
    let unix = token.unix();
    let same = |uid: u32, gid: u32, groups: &[u32]| {
        unix.uid().as_raw() == uid && unix.gid().as_raw() == gid && unix.groups() == groups
    };
    // Its own identity a caller may give a child without any privilege.
    let own_process = same(
        server.uid.effective,
        server.gid.effective,
        server.groups.as_slice(),
    );
    let setid = Privilege::AssignPrimaryToken.capabilities();
    let process_holds = plan.server_caps.permitted.contains(setid);
    match effective_thread_token()? {
        Some(effective) => {
            let e = effective.unix();
            let own = same(e.uid().as_raw(), e.gid().as_raw(), e.groups());
            if !own && !effective.has_privilege(Privilege::AssignPrimaryToken) {
                return Err(Error::new(
                    ErrorKind::PrivilegeNotHeld,
                    "starting a process as another user requires SeAssignPrimaryTokenPrivilege in the caller's effective token, the impersonation token of the calling thread",
                ));
            }
        }
        None if !own_process && !process_holds => {
            return Err(Error::new(
                ErrorKind::PrivilegeNotHeld,
                "starting a process as another user requires SeAssignPrimaryTokenPrivilege (CAP_SETUID and CAP_SETGID) in the process token",
            ));
        }
        None => {}
    }
    // Whatever the effective token holds, the process does the work.
    if !own_process && !process_holds {
        return Err(Error::new(
            ErrorKind::PrivilegeNotHeld,
            "the process cannot give a child another identity: it lacks CAP_SETUID and CAP_SETGID",
        ));
    }
    if token.token_type() != TokenType::Primary {
        return Err(Error::new(
            ErrorKind::BadTokenType,
            "a process needs a primary token; duplicate the impersonation token to a primary one first",
        ));
    }
    crate::cred::validate_ids(unix.uid().as_raw(), unix.gid().as_raw(), unix.groups())?;
    // The groups the child has when it comes to set them: the forking thread's.
    let child_groups = crate::cred::ThreadCredentials::current()?.groups;
    plan.target = Some(ChildTarget {
        uid: Uid::from_raw(unix.uid().as_raw()),
        gid: Gid::from_raw(unix.gid().as_raw()),
        set_groups: unix.groups() != child_groups.as_slice(),
        groups: unix.groups().iter().map(|&g| Gid::from_raw(g)).collect(),
        caps: crate::privilege::process_capabilities(
            token
                .privileges()
                .iter()
                .filter(|p| p.enabled)
                .map(|p| p.privilege),
        ),
    });
    Ok(plan)
}

/// Which side of [`fork_as_user`] the caller is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forked {
    /// The parent, with the child's pid: wait for it (`waitpid`) to reap it.
    Parent {
        /// The child's process id.
        pid: u32,
    },
    /// The child, which is now the token's user.
    Child,
}

/// Forks the calling process and makes the child the token's user, without a new
/// program: the fork-per-request server of Unix tradition (fork, take on the
/// client's identity, serve, exit), with the identity taken as
/// [`CommandExt::spawn_as_user`] takes it. The child has the token's real,
/// effective and saved uid and gid and its groups, no capability (a child of uid 0
/// keeps those of the token's enabled privileges), and a session of its own; it
/// cannot return to the server's identity. A child that cannot take on the
/// identity completely aborts at once: it never runs as the server.
///
/// The process must have one thread, the caller: a child forked from a process of
/// several threads could inherit locks that other threads held (of the allocator,
/// of stdio), so such a fork is refused. The child keeps the parent's memory and
/// every descriptor: close in it what the client's identity must not hold, and end
/// it with [`std::process::exit`].
///
/// # Errors
/// - [`ErrorKind::InvalidParameter`] when the process has more than one thread.
/// - [`ErrorKind::BadTokenType`] for a token that is not primary (duplicate it).
/// - [`ErrorKind::PrivilegeNotHeld`] unless the caller's effective token holds
///   SeAssignPrimaryTokenPrivilege (as for [`CommandExt::spawn_as_user`]: the
///   thread's impersonation token while it impersonates), or without CAP_SETUID and
///   CAP_SETGID in the process, unless the token is the caller's own identity.
/// - [`ErrorKind::BadImpersonationLevel`] while the thread impersonates below
///   Impersonation level.
/// - [`ErrorKind::Os`] when `fork` fails.
#[doc(alias = "fork")]
#[doc(alias = "CreateProcessAsUser")]
pub fn fork_as_user(token: &Token) -> Result<Forked> {
    let _steady = crate::thread::steady();
    let plan = plan_for(token, Session::New)?;
    match crate::sys::fork::fork_single_threaded() {
        Ok(crate::sys::fork::Side::Parent(pid)) => Ok(Forked::Parent { pid }),
        Ok(crate::sys::fork::Side::Child) => {
            if plan.apply().is_err() {
                // Fail closed: this process is not the token's user.
                std::process::abort();
            }
            Ok(Forked::Child)
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Err(Error::new(
            // guise's own reason (the process has several threads), not a cause.
            ErrorKind::InvalidParameter,
            format!("cannot fork: {e}"),
        )),
        Err(e) => Err(Error::sys(ErrorKind::Os, "cannot fork", &e)),
    }
}

/// The audit event of a process started as `token`'s user.
fn audit_spawn(program: &OsStr, token: &Token, pid: u32) {
    crate::audit::spawn(
        crate::thread::process_credentials().map_or(u32::MAX, |c| c.uid.effective),
        token,
        program,
        pid,
    );
}

fn prepare(
    cmd: &std::process::Command,
    set_vars: Vec<(OsString, Option<OsString>)>,
    token: &Token,
    options: &SpawnOptions<'_>,
) -> Result<Prepared> {
    let program = cmd.get_program();
    let mut plan = plan_for(token, options.session)?;
    let unix = token.unix();
    if program.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "the program name is empty",
        ));
    }
    for (name, value) in &set_vars {
        if value.is_some() && !is_safe_env_var(name) {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!(
                    "{} may not pass to a process started as another user",
                    name.to_string_lossy()
                ),
            ));
        }
    }
    let account = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(unix.uid().as_raw()))
        .ok()
        .flatten();
    let name = account
        .as_ref()
        .map_or_else(|| unix.uid().as_raw().to_string(), |a| a.name.clone());
    let home = account
        .as_ref()
        .map_or_else(|| "/".into(), |a| a.dir.clone().into_os_string());
    let shell = account
        .as_ref()
        .map_or_else(|| "/bin/sh".into(), |a| a.shell.clone().into_os_string());
    let path = if unix.uid().as_raw() == 0 {
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    } else {
        "/usr/local/bin:/usr/bin:/bin"
    };
    let mut env: Vec<(OsString, OsString)> = vec![
        ("HOME".into(), home),
        ("USER".into(), name.clone().into()),
        ("LOGNAME".into(), name.into()),
        ("SHELL".into(), shell),
        ("PATH".into(), path.into()),
    ];
    let mut set = |k: OsString, v: OsString| match env.iter_mut().find(|(n, _)| *n == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    };
    for (k, v) in token.logon_environment() {
        if is_safe_env_var(OsStr::new(k)) {
            set(k.into(), v.into());
        }
    }
    // The token's network credentials, and never the server's own cache.
    let krb5ccname = match token.credential_cache() {
        Some(cache) if cache.reaches_processes() => Some(cache.name()),
        // Not even a cache the client's uid has on this machine: credentials that
        // stay in the server (constrained delegation's), or a network logon that
        // delegated nothing, give the process none.
        Some(_) => Some(crate::token::NO_DELEGATED_CREDENTIALS),
        None if token.is_network_client_without_credentials() => {
            Some(crate::token::NO_DELEGATED_CREDENTIALS)
        }
        None => None,
    };
    if let Some(name) = krb5ccname {
        set("KRB5CCNAME".into(), name.into());
    }
    for (k, v) in set_vars {
        if let Some(v) = v {
            set(k, v);
        }
    }
    let mut copies = Vec::with_capacity(options.keep_fds.len());
    let above = 3 + options.keep_fds.len() as u32;
    for fd in &options.keep_fds {
        let copy = rustix::io::fcntl_dupfd_cloexec(fd, above as _).map_err(|e| {
            Error::sys(
                ErrorKind::InvalidParameter,
                "a descriptor to keep is not open",
                e,
            )
        })?;
        plan.keep_fds.push(copy.as_raw_fd());
        copies.push(copy);
    }
    // The numbers the kept descriptors take in the child are held until the spawn
    // is over, so that std's own pipe (which reports a failed exec) cannot take one
    // of them and be overwritten in the child.
    if !options.keep_fds.is_empty() {
        let null = rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::sys(ErrorKind::Os, "/dev/null", e))?;
        for n in 3..above as i32 {
            if !crate::sys::spawn::fd_is_open(n)
                && let Ok(hold) = rustix::io::fcntl_dupfd_cloexec(&null, n)
            {
                copies.push(hold);
            }
        }
    }
    // The program is found and opened in the caller's context (CreateProcessAsUser
    // opens the image with the caller's effective token: the client's while the
    // thread impersonates); the child runs that very file, which the token's user
    // must be able to execute as well (the kernel checks at exec).
    let search = cmd
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .and_then(|(_, v)| v.map(OsStr::to_owned))
        .unwrap_or_else(|| path.into());
    let (program_fd, script) = open_program(program, cmd.get_current_dir(), &search)?;
    // Above the numbers the kept descriptors take in the child.
    let program_fd = rustix::io::fcntl_dupfd_cloexec(&program_fd, above as _)
        .map_err(|e| Error::sys(ErrorKind::Os, "the program's descriptor", e))?;
    let arg0 = options.arg0.as_deref().unwrap_or(program);
    let (argv, envp) = exec_vectors(arg0, cmd, &env)?;
    plan.exec = Some(crate::sys::spawn::Exec::new(program_fd, script, argv, envp));
    // std enters the command's directory as the process, before the hooks; the
    // child enters it again, by its absolute path, as the token's user.
    if let Some(dir) = cmd.get_current_dir() {
        let dir = std::path::absolute(dir)
            .map_err(|e| Error::sys(ErrorKind::InvalidParameter, "the working directory", &e))?;
        plan.chdir = Some(cstring(dir.as_os_str())?);
    }
    Ok(Prepared {
        plan,
        _copies: copies,
    })
}

/// For CreateProcess from a thread that impersonates: the program found and
/// opened as the client ([`open_program`]), and what the child needs to run that
/// very file; `None` when the thread acts as the process (std then runs the
/// program as it would).
///
/// The child gets the command's environment as std would build it: the
/// process's, unless the command cleared it, with the command's changes.
fn program_as_caller(cmd: &std::process::Command) -> Result<Option<crate::sys::spawn::Exec>> {
    if effective_thread_token()?.is_none() {
        return Ok(None);
    }
    let program = cmd.get_program();
    if program.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "the program name is empty",
        ));
    }
    let mut env: Vec<(OsString, OsString)> = if env_cleared(cmd)? {
        Vec::new()
    } else {
        std::env::vars_os().collect()
    };
    for (k, v) in cmd.get_envs() {
        env.retain(|(n, _)| n != k);
        if let Some(v) = v {
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    // The search path execvp would use in the child: its PATH, else libc's default.
    let search = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or_else(|| OsString::from("/bin:/usr/bin"), |(_, v)| v.clone());
    let (fd, script) = open_program(program, cmd.get_current_dir(), &search)?;
    let (argv, envp) = exec_vectors(program, cmd, &env)?;
    Ok(Some(crate::sys::spawn::Exec::new(fd, script, argv, envp)))
}

/// Whether `env_clear` was called on the command. Stable std has no accessor for
/// it; its field shows in the command's `{:#?}` form, one field per line, and the
/// form leaves the environment out only when it is unchanged. A form that shows a
/// changed environment but not whether it was cleared is an error rather than a
/// guess.
fn env_cleared(cmd: &std::process::Command) -> Result<bool> {
    let shown = format!("{cmd:#?}");
    let mut env_shown = false;
    for line in shown.lines().map(str::trim) {
        match line {
            "clear: true," => return Ok(true),
            "clear: false," => return Ok(false),
            _ => env_shown |= line.starts_with("env: "),
        }
    }
    if !env_shown && cmd.get_envs().next().is_none() {
        return Ok(false);
    }
    Err(Error::new(
        ErrorKind::Os,
        "cannot tell whether the command's environment was cleared",
    ))
}

fn spawn_error(e: std::io::Error) -> Error {
    Error::sys(ErrorKind::Os, "cannot start the process", &e)
}

impl CommandExt for std::process::Command {
    type Child = std::process::Child;

    fn spawn_as_user(
        &mut self,
        token: &Token,
        options: &SpawnOptions<'_>,
    ) -> Result<std::process::Child> {
        // The plan is made from the thread's credentials: no other thread's
        // SetThreadToken may change them until the child is forked.
        let _steady = crate::thread::steady();
        let set_vars = self
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(OsStr::to_owned)))
            .collect();
        let p = prepare(self, set_vars, token, options)?;
        // The command is left as it was configured (its environment too: the
        // child's is built into the plan), so it can be spawned again.
        crate::sys::spawn::install(self);
        let child = crate::sys::spawn::spawning(&p.plan, || self.spawn()).map_err(spawn_error)?;
        audit_spawn(self.get_program(), token, child.id());
        if let Some(session) = token.session() {
            crate::logon::keep_session_while_running(child.id(), session.clone());
        }
        Ok(child)
    }

    fn spawn_as_process(&mut self) -> Result<std::process::Child> {
        let _steady = crate::thread::steady();
        let mut plan = server_plan()?;
        plan.exec = program_as_caller(self)?;
        crate::sys::spawn::install(self);
        crate::sys::spawn::spawning(&plan, || self.spawn()).map_err(spawn_error)
    }
}

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl CommandExt for tokio::process::Command {
    type Child = tokio::process::Child;

    fn spawn_as_user(
        &mut self,
        token: &Token,
        options: &SpawnOptions<'_>,
    ) -> Result<tokio::process::Child> {
        let _steady = crate::thread::steady();
        let std = self.as_std();
        let set_vars = std
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(OsStr::to_owned)))
            .collect();
        let p = prepare(std, set_vars, token, options)?;
        crate::sys::spawn::install_tokio(self);
        let child = crate::sys::spawn::spawning(&p.plan, || self.spawn()).map_err(spawn_error)?;
        audit_spawn(self.as_std().get_program(), token, child.id().unwrap_or(0));
        if let (Some(session), Some(pid)) = (token.session(), child.id()) {
            crate::logon::keep_session_while_running(pid, session.clone());
        }
        Ok(child)
    }

    fn spawn_as_process(&mut self) -> Result<tokio::process::Child> {
        let _steady = crate::thread::steady();
        let mut plan = server_plan()?;
        plan.exec = program_as_caller(self.as_std())?;
        crate::sys::spawn::install_tokio(self);
        crate::sys::spawn::spawning(&plan, || self.spawn()).map_err(spawn_error)
    }
}
