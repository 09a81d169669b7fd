//! LogonUser: authenticate a user through PAM, the system's authentication stack
//! (pam_unix, sssd, Kerberos, ...), and get a token for them.
//!
//! The PAM service is `guise` unless the caller names another; an example
//! configuration ships as `contrib/pam.d/guise`. Every logon runs authentication and
//! account management. Interactive, Batch and Service logons then establish
//! credentials and open a PAM session, which stays open as long as a copy of the
//! token lives and is closed when the last one is dropped. NetworkCleartext logons
//! establish credentials without a session. Network logons return an impersonation
//! token, as on Windows.
//!
//! # Example
//! ```no_run
//! use guise::process::SpawnOptions;
//! use guise::{logon_user, CommandExt, LogonType, Password};
//!
//! let password = Password::read_line(&mut std::io::stdin().lock())
//!     .map_err(|e| guise::Error::os(guise::ErrorKind::Os, "reading the password", &e))?;
//! // LogonUser: ERROR_LOGON_FAILURE for a wrong password.
//! let token = logon_user("alice", password, LogonType::Interactive)?;
//! let child = std::process::Command::new("id").spawn_as_user(&token, &SpawnOptions::default())?;
//! # let _ = child;
//! # Ok::<(), guise::Error>(())
//! ```

use std::ffi::CString;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::sys::pam::{self, Pam, PamError};
use crate::token::{LogonType, SessionRef, Token};

/// A password, zeroed when dropped.
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// Takes the bytes of `text`; they are zeroed when the password is dropped.
    pub fn new(text: String) -> Password {
        Password(Zeroizing::new(text.into_bytes()))
    }

    /// Takes `bytes`; they are zeroed when the password is dropped.
    pub fn from_bytes(bytes: Vec<u8>) -> Password {
        Password(Zeroizing::new(bytes))
    }

    /// Reads one line from `reader` (without its line end) into a zeroed buffer.
    ///
    /// # Errors
    /// The reader's error.
    pub fn read_line(reader: &mut impl std::io::BufRead) -> std::io::Result<Password> {
        let mut buf = Zeroizing::new(Vec::new());
        reader.read_until(b'\n', &mut buf)?;
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(Password(buf))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Options of [`logon_user_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LogonOptions {
    /// The PAM service name (`/etc/pam.d/<service>`); `guise` by default.
    pub service: String,
    /// A directory to read the PAM configuration from instead of `/etc/pam.d`.
    pub config_dir: Option<PathBuf>,
    /// The host the request comes from, for PAM (`PAM_RHOST`): modules log it and
    /// may decide by it (pam_access). Local logons name this machine.
    pub remote_host: Option<String>,
    /// The user who asks for the logon, for PAM (`PAM_RUSER`), as `su` and `sudo`
    /// set it.
    pub remote_user: Option<String>,
}

impl LogonOptions {
    /// The options for PAM service `service`, the rest as [`Default`] has them.
    pub fn new(service: impl Into<String>) -> LogonOptions {
        LogonOptions {
            service: service.into(),
            ..LogonOptions::default()
        }
    }

    /// The same, reading the PAM configuration from `dir`.
    #[must_use]
    pub fn with_config_dir(mut self, dir: impl Into<PathBuf>) -> LogonOptions {
        self.config_dir = Some(dir.into());
        self
    }
}

impl Default for LogonOptions {
    fn default() -> Self {
        LogonOptions {
            service: "guise".into(),
            config_dir: None,
            remote_host: None,
            remote_user: None,
        }
    }
}

/// The PAM session behind a logon token.
pub(crate) struct PamSession {
    pam: Mutex<Option<Pam>>,
    environment: Vec<(String, String)>,
}

impl crate::token::LogonSession for PamSession {
    fn environment(&self) -> &[(String, String)] {
        &self.environment
    }
}

/// What the session keeper is asked to do.
enum Keep {
    /// Hold the session until the process of this pidfd exits.
    While(std::os::fd::OwnedFd, SessionRef),
    /// End a PAM transaction (close the session, delete the credentials) at the
    /// process identity.
    End(Pam),
    /// End the sessions of processes that have exited, then say so.
    Flush(std::sync::mpsc::Sender<()>),
}

impl Drop for PamSession {
    /// The last token of the logon is gone: the PAM session ends on the keeper
    /// thread, at the process identity, whatever the dropping thread impersonates
    /// (modules such as pam_exec start helpers, which must not get a mix of the
    /// server's and a client's ids).
    fn drop(&mut self) {
        let Some(pam) = self.pam.get_mut().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        {
            // Held steady from the check to the end of the PAM calls: another
            // thread's SetThreadToken landing in between would have them run with
            // a client's effective ids.
            let _steady = crate::thread::steady();
            if crate::thread::at_process_identity() {
                drop(pam);
                return;
            }
        }
        if let Err(Keep::End(pam)) = keeper_send(Keep::End(pam)) {
            // No keeper: end it here, as the process.
            if crate::thread::as_process(|| drop(pam)).is_err() {
                tracing::warn!("a PAM session could not be ended at the process identity");
            }
        }
    }
}

/// Hands `job` to the keeper thread (started at the process identity on first
/// use); gives it back if there is none.
fn keeper_send(job: Keep) -> std::result::Result<(), Keep> {
    static KEEPER: std::sync::OnceLock<Mutex<Option<std::sync::mpsc::Sender<Keep>>>> =
        std::sync::OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Keep>();
        match crate::thread::spawn_named(Some("guise-logon-sessions".into()), move || keep(&rx)) {
            Ok(_) => Mutex::new(Some(tx)),
            Err(e) => {
                tracing::warn!(%e, "cannot start the logon session keeper");
                Mutex::new(None)
            }
        }
    });
    let tx = keeper.lock().unwrap_or_else(|p| p.into_inner());
    match tx.as_ref() {
        Some(tx) => tx.send(job).map_err(|e| e.0),
        None => Err(job),
    }
}

/// Keeps `session` open until the process `pid` (a child just started, not yet
/// reaped) has exited, even when every token of the logon is dropped first: the PAM
/// session of a logon stays open while a process started from it runs.
pub(crate) fn keep_session_while_running(pid: u32, session: SessionRef) {
    let pidfd = rustix::process::Pid::from_raw(pid as i32)
        .ok_or(rustix::io::Errno::INVAL)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()));
    let pidfd = match pidfd {
        Ok(fd) => fd,
        Err(e) => {
            // Never close the session under a running process: keep it for good.
            tracing::warn!(pid, %e, "no pidfd for a logon's process: its PAM session stays open");
            std::mem::forget(session);
            return;
        }
    };
    if let Err(kept) = keeper_send(Keep::While(pidfd, session)) {
        tracing::warn!(pid, "a logon's PAM session stays open: no keeper");
        std::mem::forget(kept);
    }
}

/// The keeper: holds each session until its process's pidfd says it exited, and
/// ends PAM transactions it is handed.
fn keep(rx: &std::sync::mpsc::Receiver<Keep>) {
    let mut kept: Vec<(std::os::fd::OwnedFd, SessionRef)> = Vec::new();
    let mut flushes: Vec<std::sync::mpsc::Sender<()>> = Vec::new();
    let take = |job: Keep, kept: &mut Vec<_>, flushes: &mut Vec<_>| match job {
        Keep::While(fd, session) => kept.push((fd, session)),
        Keep::End(pam) => drop(pam),
        Keep::Flush(done) => flushes.push(done),
    };
    loop {
        if kept.is_empty() && flushes.is_empty() {
            match rx.recv() {
                Ok(job) => take(job, &mut kept, &mut flushes),
                Err(_) => return,
            }
        }
        for job in rx.try_iter() {
            take(job, &mut kept, &mut flushes);
        }
        if !flushes.is_empty() {
            end_exited(&mut kept, rustix::event::Timespec::default());
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
        end_exited(
            &mut kept,
            rustix::event::Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            },
        );
    }
}

/// Waits up to `timeout` for a process of `kept` to exit, and drops the sessions
/// of those that have (ending their PAM transactions where no token holds them:
/// this thread is at the process identity).
fn end_exited(
    kept: &mut Vec<(std::os::fd::OwnedFd, SessionRef)>,
    timeout: rustix::event::Timespec,
) {
    use rustix::event::{PollFd, PollFlags};
    if kept.is_empty() {
        return;
    }
    let mut fds: Vec<PollFd<'_>> = kept
        .iter()
        .map(|(fd, _)| PollFd::new(fd, PollFlags::IN))
        .collect();
    if rustix::event::poll(&mut fds, Some(&timeout)).is_err() {
        return;
    }
    let exited: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
    drop(fds);
    let mut i = 0;
    kept.retain(|_| {
        i += 1;
        !exited[i - 1]
    });
}

/// Ends, before returning, the PAM sessions of logons whose processes have
/// exited and of which no token is left (their modules run on a thread of
/// guise's own). Call it before the process exits, once the tokens are dropped,
/// so that no PAM module still runs while the process's libraries are torn down.
pub fn end_finished_sessions() {
    let (done, wait) = std::sync::mpsc::channel();
    if keeper_send(Keep::Flush(done)).is_ok() {
        let _ = wait.recv_timeout(std::time::Duration::from_secs(10));
    }
}

/// Logs a user on ([`LogonUser`]) with the `guise` PAM service.
///
/// # Errors
/// As [`logon_user_with`].
///
/// [`LogonUser`]: https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-logonuserw
#[doc(alias = "LogonUser")]
pub fn logon_user(user: &str, password: Password, logon_type: LogonType) -> Result<Token> {
    logon_user_with(user, password, logon_type, &LogonOptions::default())
}

fn logon_failure() -> Error {
    Error::new(
        ErrorKind::LogonFailure,
        "the user name or password is incorrect",
    )
}

/// Logs a user on ([`LogonUser`]) through PAM and returns their token: a primary
/// token (an impersonation token for [`LogonType::Network`]) with the logon type's
/// group, a fresh logon id and logon SID, and the user's groups from NSS. The
/// password is zeroed when this returns.
///
/// # Errors
/// - [`ErrorKind::PrivilegeNotHeld`] unless the **process** token holds
///   SeTcbPrivilege (`CAP_SETUID` + `CAP_SETGID` permitted), whatever the calling
///   thread impersonates. PAM runs as the process too; the thread impersonates again
///   afterwards.
/// - [`ErrorKind::LogonFailure`] for a wrong password or an unknown user (the same
///   text for both), after PAM's delay.
/// - [`ErrorKind::AccountExpired`], [`ErrorKind::PasswordExpired`],
///   [`ErrorKind::AccountRestriction`] when account management refuses;
///   [`ErrorKind::AccountLockedOut`] after too many tries.
/// - [`ErrorKind::NoLogonServers`] when the authentication service (a directory,
///   a KDC) cannot be reached: nothing was checked, and it is not reported as a
///   wrong password.
/// - [`ErrorKind::InvalidParameter`] for a name, service or PAM configuration
///   directory with a NUL byte.
/// - [`ErrorKind::Os`] when PAM cannot be used at all.
///
/// [`LogonUser`]: https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-logonuserw
#[doc(alias = "LogonUser")]
pub fn logon_user_with(
    user: &str,
    password: Password,
    logon_type: LogonType,
    options: &LogonOptions,
) -> Result<Token> {
    // Without SeTcbPrivilege a process may log on only its own account (Windows
    // needs no privilege for LogonUser at all; Linux can give another account's
    // identity only with CAP_SETUID/CAP_SETGID).
    if require_tcb().is_err() {
        let own = crate::thread::process_credentials()?.uid.effective;
        let account = nix::unistd::User::from_name(user)
            .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up {user:?}"), e))?;
        if account.is_none_or(|a| a.uid.as_raw() != own) {
            require_tcb()?;
        }
    }
    // Authentication reads what only the process may read (/etc/shadow, keytabs):
    // it runs as the process, whatever the calling thread impersonates.
    crate::thread::as_process(|| logon_as_process(user, Some(password), logon_type, options))?
}

/// Logs a user on without a password, as `runuser` does for root: PAM's account
/// management, credentials and session for the user, but no authentication
/// ([`LsaLogonUser`] with an S4U logon, which Windows gives to SeTcbPrivilege
/// holders). The token is a logon token, with its PAM session, as
/// [`logon_user_with`] gives.
///
/// # Errors
/// - [`ErrorKind::PrivilegeNotHeld`] unless the process token holds
///   SeTcbPrivilege.
/// - As [`logon_user_with`] for what account and session management refuse.
///
/// [`LsaLogonUser`]: https://learn.microsoft.com/en-us/windows/win32/api/ntsecapi/nf-ntsecapi-lsalogonuser
#[doc(alias = "LsaLogonUser")]
pub fn logon_user_s4u(user: &str, logon_type: LogonType, options: &LogonOptions) -> Result<Token> {
    require_tcb()?;
    crate::thread::as_process(|| logon_as_process(user, None, logon_type, options))?
}

/// The PAM logon of [`logon_user_with`] (with a password) and [`logon_user_s4u`]
/// (without), on a thread at the process identity; a refusal is an audit event
/// (success is one in [`pam_logon`]).
fn logon_as_process(
    user: &str,
    password: Option<Password>,
    logon_type: LogonType,
    options: &LogonOptions,
) -> Result<Token> {
    let authenticate = password.is_some();
    let result = pam_logon(user, password, logon_type, options);
    if let Err(e) = &result {
        crate::audit::logon_refused(user, logon_type, authenticate, e);
    }
    result
}

fn pam_logon(
    user: &str,
    password: Option<Password>,
    logon_type: LogonType,
    options: &LogonOptions,
) -> Result<Token> {
    let authenticate = password.is_some();
    let password = password.map_or_else(|| Zeroizing::new(Vec::new()), |p| p.0);
    let nul = |what: &str| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("the {what} contains a NUL byte"),
        )
    };
    let c_user = CString::new(user).map_err(|_| nul("user name"))?;
    let c_service = CString::new(options.service.as_str()).map_err(|_| nul("service name"))?;
    let c_confdir = options
        .config_dir
        .as_deref()
        .map(|d| CString::new(d.as_os_str().as_encoded_bytes()))
        .transpose()
        .map_err(|_| nul("PAM configuration directory"))?;
    let mut pam = Pam::start(&c_service, &c_user, password, c_confdir.as_deref())
        .map_err(|e| Error::with_source(ErrorKind::Os, "cannot start PAM", e))?;
    for (item, value, what) in [
        (pam::PAM_RHOST, &options.remote_host, "remote host"),
        (pam::PAM_RUSER, &options.remote_user, "remote user"),
    ] {
        if let Some(value) = value {
            let c = CString::new(value.as_str()).map_err(|_| nul(what))?;
            pam.set_item(item, &c).map_err(|e| {
                Error::new(
                    ErrorKind::Os,
                    format!("cannot give PAM the {what}: {}", pam.strerror(e)),
                )
            })?;
        }
    }
    let refused = |pam: &Pam, error: PamError| refusal(error, |e| pam.strerror(e));
    if authenticate {
        pam.authenticate().map_err(|c| refused(&pam, c))?;
    }
    pam.account().map_err(|c| refused(&pam, c))?;
    let with_session = matches!(
        logon_type,
        LogonType::Interactive | LogonType::Batch | LogonType::Service
    );
    if with_session || logon_type == LogonType::NetworkCleartext {
        pam.establish_credentials().map_err(|c| refused(&pam, c))?;
    }
    if with_session {
        pam.open_session().map_err(|c| refused(&pam, c))?;
    }
    let environment = pam.environment();
    let network_credentials = environment.iter().any(|(k, _)| k == "KRB5CCNAME");
    // The account is the one PAM authenticated: its PAM_USER, which a module may
    // have mapped from the name given.
    let name = pam.user().ok_or_else(|| {
        Error::new(
            ErrorKind::Os,
            "PAM authenticated nobody: PAM_USER is not set",
        )
    })?;
    let account = nix::unistd::User::from_name(&name)
        .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up {name:?}"), e))?
        .ok_or_else(logon_failure)?;
    if require_tcb().is_err()
        && account.uid.as_raw() != crate::thread::process_credentials()?.uid.effective
    {
        return Err(Error::new(
            ErrorKind::PrivilegeNotHeld,
            "PAM logged on another account than the process's own: that requires SeTcbPrivilege",
        ));
    }
    let session = SessionRef(Arc::new(PamSession {
        pam: Mutex::new(Some(pam)),
        environment,
    }));
    crate::audit::logon(
        crate::thread::process_credentials().map_or(u32::MAX, |c| c.uid.effective),
        user,
        &name.to_string(),
        account.uid.as_raw(),
        logon_type,
        authenticate,
    );
    Token::for_logon(&account, logon_type, Some(session), network_credentials)
}

/// The error of a logon that PAM refused with `error`; `text` gives PAM's own
/// words for it.
fn refusal(error: PamError, text: impl FnOnce(PamError) -> String) -> Error {
    match error {
        PamError::AuthErr | PamError::UserUnknown => logon_failure(),
        PamError::MaxTries => Error::new(
            ErrorKind::AccountLockedOut,
            "the account is locked out after too many failed logons",
        ),
        PamError::AuthInfoUnavail | PamError::CredUnavail => Error::new(
            ErrorKind::NoLogonServers,
            format!(
                "the authentication service cannot be reached or gave no credentials: {}",
                text(error)
            ),
        ),
        PamError::AcctExpired => Error::new(ErrorKind::AccountExpired, "the account has expired"),
        PamError::NewAuthTokReqd | PamError::AuthTokExpired => Error::new(
            ErrorKind::PasswordExpired,
            "the password has expired and must be changed",
        ),
        PamError::PermDenied => {
            Error::new(ErrorKind::AccountRestriction, "the account may not log on")
        }
        other => Error::new(
            ErrorKind::LogonFailure,
            format!("PAM refused the logon: {}", text(other)),
        ),
    }
}

/// Fails unless the process token holds SeTcbPrivilege (checked on the process
/// token, never the thread's, as on Windows).
pub(crate) fn require_tcb() -> Result<()> {
    let creds = crate::thread::process_credentials()?;
    if creds
        .capabilities
        .permitted
        .contains(crate::privilege::Privilege::Tcb.capabilities())
    {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::PrivilegeNotHeld,
            "building a token for an account requires SeTcbPrivilege (CAP_SETUID and CAP_SETGID) in the process token",
        ))
    }
}

/// The account named `name`, through NSS.
///
/// # Errors
/// [`ErrorKind::InvalidParameter`] for a name with a NUL byte;
/// [`ErrorKind::NoneMapped`] if no account has it; [`ErrorKind::Os`] if the
/// account database cannot be read.
fn account_named(name: &str) -> Result<nix::unistd::User> {
    if name.contains('\0') {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "user name contains a NUL byte",
        ));
    }
    nix::unistd::User::from_name(name)
        .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up user {name:?}"), e))?
        .ok_or_else(|| Error::new(ErrorKind::NoneMapped, format!("no user is named {name:?}")))
}

impl Token {
    /// A token for a Unix account, found by name through NSS (the lookup of
    /// `LookupAccountName`: the token's [`Token::user`] is the account's SID), with its
    /// supplementary groups from `getgrouplist` — an S4U-style logon without a
    /// password ([`LsaLogonUser`] with `KERB_S4U_LOGON`).
    ///
    /// The token gets a fresh logon id, the logon SID and the group of
    /// `logon_type`. It is a primary token, except for [`LogonType::Network`], which
    /// yields an impersonation token at Impersonation level, as on Windows.
    ///
    /// # Errors
    /// - [`ErrorKind::PrivilegeNotHeld`] unless the process token holds
    ///   SeTcbPrivilege (`CAP_SETUID` + `CAP_SETGID` permitted).
    /// - [`ErrorKind::NoneMapped`] if no account has this name.
    /// - [`ErrorKind::InvalidParameter`] for a name with a NUL byte or an account
    ///   whose ids are invalid.
    /// - [`ErrorKind::Os`] if the account database cannot be read (never a token).
    ///
    /// [`LsaLogonUser`]: https://learn.microsoft.com/en-us/windows/win32/api/ntsecapi/nf-ntsecapi-lsalogonuser
    #[doc(alias = "LsaLogonUser")]
    #[doc(alias = "LookupAccountName")]
    pub fn for_user(name: &str, logon_type: LogonType) -> Result<Token> {
        require_tcb()?;
        Token::for_account_entry(&account_named(name)?, logon_type)
    }

    /// A token that identifies the account `name` (found through NSS, and
    /// winbind's domain SIDs for a directory account: [`crate::directory`]),
    /// made without its password and without any privilege: an impersonation
    /// token at Identification level, as `LsaLogonUser` with `KERB_S4U_LOGON`
    /// gives a caller without SeTcbPrivilege, or `AuthzInitializeContextFromSid`.
    ///
    /// It answers "who is this, and in which groups?" and, with
    /// [`crate::security::access_check`], "may they?"; it never acts. No
    /// duplicate raises it above Identification, and a thread that impersonates
    /// it opens nothing as the account.
    ///
    /// # Errors
    /// - [`ErrorKind::NoneMapped`] if no account has this name.
    /// - [`ErrorKind::InvalidParameter`] for a name with a NUL byte.
    /// - [`ErrorKind::Os`] if the account database or the directory cannot be
    ///   read (never a token without the account's groups).
    ///
    /// [`LsaLogonUser`]: https://learn.microsoft.com/en-us/windows/win32/api/ntsecapi/nf-ntsecapi-lsalogonuser
    #[doc(alias = "LsaLogonUser")]
    #[doc(alias = "AuthzInitializeContextFromSid")]
    #[doc(alias = "KERB_S4U_LOGON")]
    pub fn for_account(name: &str) -> Result<Token> {
        Ok(
            Token::for_account_entry(&account_named(name)?, LogonType::Network)?
                .identification_only(),
        )
    }

    /// As [`Token::for_user`], for the account with this uid.
    ///
    /// # Errors
    /// As [`Token::for_user`]; [`ErrorKind::NoneMapped`] if no account has this uid.
    #[doc(alias = "LsaLogonUser")]
    pub fn for_uid(uid: impl Into<crate::id::Uid>, logon_type: LogonType) -> Result<Token> {
        let uid = uid.into().as_raw();
        require_tcb()?;
        crate::cred::validate_ids(uid, 0, &[])?;
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up uid {uid}"), e))?
            .ok_or_else(|| Error::new(ErrorKind::NoneMapped, format!("no user has uid {uid}")))?;
        Token::for_account_entry(&user, logon_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each PAM refusal maps to the error kind callers match on; what PAM does not
    /// name otherwise is a logon failure with PAM's text.
    #[test]
    fn pam_refusals_map_to_error_kinds() {
        let table = [
            (PamError::AuthErr, ErrorKind::LogonFailure),
            (PamError::UserUnknown, ErrorKind::LogonFailure),
            (PamError::MaxTries, ErrorKind::AccountLockedOut),
            (PamError::AuthInfoUnavail, ErrorKind::NoLogonServers),
            (PamError::CredUnavail, ErrorKind::NoLogonServers),
            (PamError::AcctExpired, ErrorKind::AccountExpired),
            (PamError::NewAuthTokReqd, ErrorKind::PasswordExpired),
            (PamError::AuthTokExpired, ErrorKind::PasswordExpired),
            (PamError::PermDenied, ErrorKind::AccountRestriction),
            (PamError::SessionErr, ErrorKind::LogonFailure),
            (PamError::CredErr, ErrorKind::LogonFailure),
            (PamError::Abort, ErrorKind::LogonFailure),
            (PamError::SystemErr, ErrorKind::LogonFailure),
            (PamError::Unknown(4242), ErrorKind::LogonFailure),
        ];
        for (error, kind) in table {
            let e = refusal(error, |e| format!("pam says {}", e.code()));
            assert_eq!(e.kind(), kind, "{error:?}: {e}");
        }
        // The same words for a wrong password and an unknown user.
        let wrong = refusal(PamError::AuthErr, |_| unreachable!()).to_string();
        let unknown = refusal(PamError::UserUnknown, |_| unreachable!()).to_string();
        assert_eq!(wrong, unknown);
        assert!(
            refusal(PamError::Unknown(4242), |e| format!(
                "pam says {}",
                e.code()
            ))
            .to_string()
            .contains("pam says 4242")
        );
    }

    /// A PAM configuration directory with a NUL byte is refused before PAM starts
    /// (it once became "", the system's directory).
    #[test]
    fn pam_config_dir_with_nul_is_invalid() {
        let options = LogonOptions::new("guise").with_config_dir("/etc/pam\0.d");
        let e = pam_logon("nobody", None, LogonType::Network, &options)
            .expect_err("a config dir with a NUL byte was accepted");
        assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
        assert!(e.to_string().contains("PAM configuration directory"), "{e}");
    }
}
