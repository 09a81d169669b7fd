//! A small binding to libpam: start, authenticate, account management, credentials,
//! session, environment, end. The conversation answers password prompts from a
//! zeroed buffer and never lets a panic cross the FFI boundary.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use zeroize::Zeroizing;

#[repr(C)]
struct PamHandle {
    _opaque: [u8; 0],
}

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn =
    extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_end(pamh: *mut PamHandle, status: c_int) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_setcred(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_open_session(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_close_session(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_strerror(pamh: *mut PamHandle, errnum: c_int) -> *const c_char;
    fn pam_getenvlist(pamh: *mut PamHandle) -> *mut *mut c_char;
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
}

const PAM_USER: c_int = 2;

const PAM_SUCCESS: c_int = 0;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
/// The most messages Linux-PAM passes to a conversation at once.
const PAM_MAX_NUM_MSG: c_int = 32;
const PAM_SILENT: c_int = 0x8000;
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;
const PAM_ESTABLISH_CRED: c_int = 0x0002;
const PAM_DELETE_CRED: c_int = 0x0004;
/// The item of the remote host name.
pub(crate) const PAM_RHOST: c_int = 4;
/// The item of the remote (requesting) user name.
pub(crate) const PAM_RUSER: c_int = 8;

/// Defines [`PamError`] and its conversions from one table, so that the code of a
/// variant and the variant of a code cannot disagree.
macro_rules! pam_errors {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal, $name:literal;)*) => {
        /// A PAM return code other than `PAM_SUCCESS`, as Linux-PAM's
        /// `<security/_pam_types.h>` numbers them. A code this binding does not know
        /// is [`PamError::Unknown`], never undefined behaviour.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum PamError {
            $($(#[doc = $doc])* $variant,)*
            /// A code not in the list above (another PAM implementation's, or a
            /// newer one's).
            Unknown(i32),
        }

        impl PamError {
            /// The error of PAM return code `code` (which is not `PAM_SUCCESS`).
            pub(crate) fn from_code(code: c_int) -> PamError {
                match code {
                    $($code => PamError::$variant,)*
                    other => PamError::Unknown(other),
                }
            }

            /// The PAM return code of the error, as PAM's functions take it.
            pub(crate) fn code(self) -> c_int {
                match self {
                    $(PamError::$variant => $code,)*
                    PamError::Unknown(code) => code,
                }
            }

            /// The C name of the code (`PAM_AUTH_ERR`), or `None` for an unknown one.
            fn c_name(self) -> Option<&'static str> {
                match self {
                    $(PamError::$variant => Some($name),)*
                    PamError::Unknown(_) => None,
                }
            }
        }
    };
}

pam_errors! {
    /// `PAM_OPEN_ERR`: a module could not be loaded.
    OpenErr = 1, "PAM_OPEN_ERR";
    /// `PAM_SYMBOL_ERR`: a symbol was not found in a module.
    SymbolErr = 2, "PAM_SYMBOL_ERR";
    /// `PAM_SERVICE_ERR`: error in a service module.
    ServiceErr = 3, "PAM_SERVICE_ERR";
    /// `PAM_SYSTEM_ERR`: a system error.
    SystemErr = 4, "PAM_SYSTEM_ERR";
    /// `PAM_BUF_ERR`: memory buffer error.
    BufErr = 5, "PAM_BUF_ERR";
    /// `PAM_PERM_DENIED`: permission denied.
    PermDenied = 6, "PAM_PERM_DENIED";
    /// `PAM_AUTH_ERR`: authentication failure.
    AuthErr = 7, "PAM_AUTH_ERR";
    /// `PAM_CRED_INSUFFICIENT`: the application may not access the authentication
    /// data.
    CredInsufficient = 8, "PAM_CRED_INSUFFICIENT";
    /// `PAM_AUTHINFO_UNAVAIL`: the authentication service cannot be reached.
    AuthInfoUnavail = 9, "PAM_AUTHINFO_UNAVAIL";
    /// `PAM_USER_UNKNOWN`: the user is not known to the authentication service.
    UserUnknown = 10, "PAM_USER_UNKNOWN";
    /// `PAM_MAXTRIES`: too many failed tries.
    MaxTries = 11, "PAM_MAXTRIES";
    /// `PAM_NEW_AUTHTOK_REQD`: the password must be changed now.
    NewAuthTokReqd = 12, "PAM_NEW_AUTHTOK_REQD";
    /// `PAM_ACCT_EXPIRED`: the account has expired.
    AcctExpired = 13, "PAM_ACCT_EXPIRED";
    /// `PAM_SESSION_ERR`: a session could not be made or removed.
    SessionErr = 14, "PAM_SESSION_ERR";
    /// `PAM_CRED_UNAVAIL`: the user's credentials cannot be retrieved.
    CredUnavail = 15, "PAM_CRED_UNAVAIL";
    /// `PAM_CRED_EXPIRED`: the user's credentials have expired.
    CredExpired = 16, "PAM_CRED_EXPIRED";
    /// `PAM_CRED_ERR`: the user's credentials could not be set.
    CredErr = 17, "PAM_CRED_ERR";
    /// `PAM_NO_MODULE_DATA`: no module-specific data.
    NoModuleData = 18, "PAM_NO_MODULE_DATA";
    /// `PAM_CONV_ERR`: the conversation failed.
    ConvErr = 19, "PAM_CONV_ERR";
    /// `PAM_AUTHTOK_ERR`: the password could not be changed.
    AuthTokErr = 20, "PAM_AUTHTOK_ERR";
    /// `PAM_AUTHTOK_RECOVERY_ERR`: the old password could not be recovered.
    AuthTokRecoveryErr = 21, "PAM_AUTHTOK_RECOVERY_ERR";
    /// `PAM_AUTHTOK_LOCK_BUSY`: the password store is locked.
    AuthTokLockBusy = 22, "PAM_AUTHTOK_LOCK_BUSY";
    /// `PAM_AUTHTOK_DISABLE_AGING`: password aging is disabled.
    AuthTokDisableAging = 23, "PAM_AUTHTOK_DISABLE_AGING";
    /// `PAM_TRY_AGAIN`: a preliminary check failed.
    TryAgain = 24, "PAM_TRY_AGAIN";
    /// `PAM_IGNORE`: ignore this module.
    Ignore = 25, "PAM_IGNORE";
    /// `PAM_ABORT`: a module asks to abort at once.
    Abort = 26, "PAM_ABORT";
    /// `PAM_AUTHTOK_EXPIRED`: the password has expired.
    AuthTokExpired = 27, "PAM_AUTHTOK_EXPIRED";
    /// `PAM_MODULE_UNKNOWN`: the module is not known.
    ModuleUnknown = 28, "PAM_MODULE_UNKNOWN";
    /// `PAM_BAD_ITEM`: a bad item was passed to `pam_*_item`.
    BadItem = 29, "PAM_BAD_ITEM";
    /// `PAM_CONV_AGAIN`: the conversation is event driven and not done yet.
    ConvAgain = 30, "PAM_CONV_AGAIN";
    /// `PAM_INCOMPLETE`: call again when the conversation is done.
    Incomplete = 31, "PAM_INCOMPLETE";
}

impl PamError {
    /// `Ok` for `PAM_SUCCESS`, the error of any other code.
    fn check(code: c_int) -> Result<(), PamError> {
        if code == PAM_SUCCESS {
            Ok(())
        } else {
            Err(PamError::from_code(code))
        }
    }
}

impl From<c_int> for PamError {
    fn from(code: c_int) -> PamError {
        PamError::from_code(code)
    }
}

impl From<PamError> for c_int {
    fn from(e: PamError) -> c_int {
        e.code()
    }
}

impl std::fmt::Display for PamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.c_name() {
            Some(name) => write!(f, "{name} ({})", self.code()),
            None => write!(f, "PAM error {}", self.code()),
        }
    }
}

impl std::error::Error for PamError {}

/// What the conversation answers with.
struct Answers {
    user: CString,
    password: Zeroizing<Vec<u8>>,
}

/// Copies `bytes` into a NUL-terminated buffer from `malloc`, as PAM frees responses
/// with `free`.
fn malloc_string(bytes: &[u8]) -> *mut c_char {
    // SAFETY: calloc returns zeroed memory of the asked size or NULL; the copy stays
    // inside it and leaves the last byte 0.
    unsafe {
        let p = libc::calloc(bytes.len() + 1, 1).cast::<u8>();
        if !p.is_null() {
            ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        }
        p.cast()
    }
}

/// Frees the first `filled` responses of `out` (their strings, zeroed first: one
/// may be the password) and `out` itself.
///
/// # Safety
/// `out` is a `calloc`'d array of at least `filled` responses whose `resp` are NULL
/// or `malloc`'d NUL-terminated strings, and nothing uses any of them afterwards.
unsafe fn free_responses(out: *mut PamResponse, filled: usize) {
    for i in 0..filled {
        // SAFETY: the caller promises `filled` initialised elements.
        let r = unsafe { (*out.add(i)).resp };
        if !r.is_null() {
            // SAFETY: a NUL-terminated malloc'd string: zeroed over its length,
            // then freed.
            unsafe {
                let len = libc::strlen(r);
                ptr::write_bytes(r, 0, len);
                libc::free(r.cast());
            }
        }
    }
    // SAFETY: `out` came from calloc.
    unsafe { libc::free(out.cast()) };
}

/// The conversation function PAM calls: password prompts (`PAM_PROMPT_ECHO_OFF`)
/// get the password, visible prompts (`PAM_PROMPT_ECHO_ON`) the user name, and
/// messages are logged. On success `*resp` is an array of `num_msg` responses,
/// from `malloc`, that the caller (PAM) frees; on failure `*resp` is untouched and
/// nothing is left allocated.
extern "C" fn conversation(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let answer = || -> Result<(), PamError> {
        if num_msg <= 0
            || num_msg > PAM_MAX_NUM_MSG
            || msg.is_null()
            || resp.is_null()
            || appdata.is_null()
        {
            return Err(PamError::ConvErr);
        }
        let n = num_msg as usize;
        // SAFETY: appdata is the `Answers` that `Pam::start` passed, alive for the
        // whole PAM transaction (freed only after `pam_end`).
        let answers = unsafe { &*appdata.cast::<Answers>() };
        // SAFETY: Linux-PAM passes `msg` as an array of n pointers to messages;
        // each is checked for NULL before it is read.
        let messages = (0..n).map(|i| unsafe { (*msg.add(i)).as_ref() });
        let mut asks_password = false;
        for m in messages {
            match m {
                None => return Err(PamError::ConvErr),
                Some(m) => asks_password |= m.msg_style == PAM_PROMPT_ECHO_OFF,
            }
        }
        // Without a password (a logon that does not authenticate), a module that
        // asks for one gets no answer at all, not an empty one.
        if asks_password && answers.password.is_empty() {
            return Err(PamError::ConvErr);
        }
        // SAFETY: calloc of n responses, zeroed (NULL resp, retcode 0), or NULL.
        let out =
            unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
        if out.is_null() {
            return Err(PamError::BufErr);
        }
        for i in 0..n {
            // SAFETY: as above; every pointer was found non-NULL.
            let m = unsafe { &**msg.add(i) };
            let text = || {
                if m.msg.is_null() {
                    String::new()
                } else {
                    // SAFETY: PAM's message text is a NUL-terminated string.
                    unsafe { CStr::from_ptr(m.msg) }
                        .to_string_lossy()
                        .into_owned()
                }
            };
            let reply = match m.msg_style {
                PAM_PROMPT_ECHO_OFF => Some(&answers.password[..]),
                PAM_PROMPT_ECHO_ON => Some(answers.user.as_bytes()),
                PAM_ERROR_MSG => {
                    tracing::info!(message = %text(), "PAM error message");
                    None
                }
                PAM_TEXT_INFO => {
                    tracing::debug!(message = %text(), "PAM information");
                    None
                }
                _ => None,
            };
            if let Some(reply) = reply {
                let copy = malloc_string(reply);
                if copy.is_null() {
                    // SAFETY: the first i responses were filled here; none was
                    // handed out.
                    unsafe { free_responses(out, i) };
                    return Err(PamError::BufErr);
                }
                // SAFETY: `out` has n elements.
                unsafe { (*out.add(i)).resp = copy };
            }
        }
        // SAFETY: PAM takes ownership of the array and its strings.
        unsafe { *resp = out };
        Ok(())
    };
    // A panic must not unwind into C.
    match catch_unwind(AssertUnwindSafe(answer)) {
        Ok(Ok(())) => PAM_SUCCESS,
        Ok(Err(e)) => e.code(),
        Err(_) => PamError::ConvErr.code(),
    }
}

/// A PAM transaction. Ends (`pam_end`) on drop.
pub(crate) struct Pam {
    handle: *mut PamHandle,
    /// The conversation's answers, from `Box::into_raw`: PAM holds this address
    /// (as `conv.appdata_ptr`) for the whole transaction; freed in `Drop`, after
    /// `pam_end`.
    answers: *mut Answers,
    /// The conversation PAM was given, from `Box::into_raw`; freed in `Drop`, after
    /// `pam_end`.
    conv: *mut PamConv,
    /// The last return code, for `pam_end`.
    status: c_int,
    session_open: bool,
    creds_established: bool,
}

// SAFETY: a PAM handle may be used from any thread as long as calls are not made
// concurrently; `Pam` is only used through `&mut self` or behind a Mutex. The
// answers and the conversation it owns are read only by PAM's calls on it.
unsafe impl Send for Pam {}

impl Pam {
    /// `pam_start_confdir`: a transaction for `user` with `service`, whose
    /// configuration is read from `confdir` (or the system's, `/etc/pam.d`).
    pub(crate) fn start(
        service: &CStr,
        user: &CStr,
        password: Zeroizing<Vec<u8>>,
        confdir: Option<&CStr>,
    ) -> Result<Pam, PamError> {
        let answers = Box::into_raw(Box::new(Answers {
            user: user.to_owned(),
            password,
        }));
        let conv = Box::into_raw(Box::new(PamConv {
            conv: Some(conversation),
            appdata_ptr: answers.cast(),
        }));
        let mut handle = ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `conv` and `answers` come
        // from `Box::into_raw` and are freed only after `pam_end` (or below, when
        // there is no transaction), so they outlive the transaction.
        let r = unsafe {
            pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                conv,
                confdir.map_or(ptr::null(), CStr::as_ptr),
                &mut handle,
            )
        };
        let started = PamError::check(r).and_then(|()| {
            if handle.is_null() {
                Err(PamError::SystemErr)
            } else {
                Ok(())
            }
        });
        if let Err(e) = started {
            // SAFETY: no transaction holds them (Linux-PAM frees its handle when
            // pam_start fails); they came from Box::into_raw above and are freed
            // once.
            unsafe {
                drop(Box::from_raw(conv));
                drop(Box::from_raw(answers));
            }
            return Err(e);
        }
        Ok(Pam {
            handle,
            answers,
            conv,
            status: PAM_SUCCESS,
            session_open: false,
            creds_established: false,
        })
    }

    fn result(&mut self, r: c_int) -> Result<(), PamError> {
        self.status = r;
        PamError::check(r)
    }

    /// `pam_authenticate`, refusing empty passwords.
    pub(crate) fn authenticate(&mut self) -> Result<(), PamError> {
        // SAFETY: the handle is live until drop.
        let r = unsafe { pam_authenticate(self.handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK) };
        self.result(r)
    }

    /// `pam_acct_mgmt`: is the account valid now (not locked, not expired)?
    pub(crate) fn account(&mut self) -> Result<(), PamError> {
        // SAFETY: the handle is live until drop.
        let r = unsafe { pam_acct_mgmt(self.handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK) };
        self.result(r)
    }

    /// `pam_setcred(PAM_ESTABLISH_CRED)`.
    pub(crate) fn establish_credentials(&mut self) -> Result<(), PamError> {
        // SAFETY: the handle is live until drop.
        let r = unsafe { pam_setcred(self.handle, PAM_SILENT | PAM_ESTABLISH_CRED) };
        self.result(r)?;
        self.creds_established = true;
        Ok(())
    }

    /// `pam_open_session`.
    pub(crate) fn open_session(&mut self) -> Result<(), PamError> {
        // SAFETY: the handle is live until drop.
        let r = unsafe { pam_open_session(self.handle, PAM_SILENT) };
        self.result(r)?;
        self.session_open = true;
        Ok(())
    }

    /// `pam_getenvlist`: the environment PAM modules set (e.g. `KRB5CCNAME`).
    pub(crate) fn environment(&self) -> Vec<(String, String)> {
        // SAFETY: the handle is live; the list is NULL or a NULL-terminated array of
        // malloc'd "NAME=value" strings that the caller frees.
        unsafe {
            let list = pam_getenvlist(self.handle);
            if list.is_null() {
                return Vec::new();
            }
            let mut out = Vec::new();
            let mut i = 0;
            loop {
                let item = *list.add(i);
                if item.is_null() {
                    break;
                }
                let text = CStr::from_ptr(item).to_string_lossy().into_owned();
                if let Some((k, v)) = text.split_once('=') {
                    out.push((k.to_owned(), v.to_owned()));
                }
                libc::free(item.cast());
                i += 1;
            }
            libc::free(list.cast());
            out
        }
    }

    /// `pam_get_item(PAM_USER)`: the user name as the modules left it (a module may
    /// map the name it was given to another).
    pub(crate) fn user(&self) -> Option<String> {
        let mut item: *const c_void = ptr::null();
        // SAFETY: the handle is live; PAM_USER's item is a NUL-terminated string that
        // PAM owns, copied out at once.
        unsafe {
            if pam_get_item(self.handle, PAM_USER, &mut item) != PAM_SUCCESS || item.is_null() {
                return None;
            }
            Some(CStr::from_ptr(item.cast()).to_string_lossy().into_owned())
        }
    }

    /// `pam_set_item` of a string item (`PAM_RHOST`, `PAM_RUSER`).
    pub(crate) fn set_item(&mut self, item: c_int, value: &CStr) -> Result<(), PamError> {
        // SAFETY: the handle is live; PAM copies the NUL-terminated string, which
        // is valid for the call.
        let r = unsafe { pam_set_item(self.handle, item, value.as_ptr().cast()) };
        PamError::check(r)
    }

    /// PAM's text for an error.
    pub(crate) fn strerror(&self, error: PamError) -> String {
        // SAFETY: pam_strerror returns a static NUL-terminated string (for any
        // code, known or not).
        unsafe {
            let p = pam_strerror(self.handle, error.code());
            if p.is_null() {
                error.to_string()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }
}

impl Drop for Pam {
    fn drop(&mut self) {
        // SAFETY: the handle is live; after pam_end it is not used again.
        unsafe {
            if self.session_open {
                pam_close_session(self.handle, PAM_SILENT);
            }
            if self.creds_established {
                pam_setcred(self.handle, PAM_SILENT | PAM_DELETE_CRED);
            }
            pam_end(self.handle, self.status);
        }
        // SAFETY: the transaction is over, so PAM holds neither pointer any more;
        // both came from Box::into_raw in `start` and are freed only here. The
        // password is zeroed as its `Zeroizing` buffer drops.
        unsafe {
            drop(Box::from_raw(self.conv));
            drop(Box::from_raw(self.answers));
        }
    }
}

/// The conversation driven with fake messages, as PAM would call it, and the error
/// codes' table. Nothing here calls libpam, so these tests also run under Miri
/// (`scripts/miri.sh`).
#[cfg(test)]
mod tests {
    use super::*;

    /// Messages of these styles and texts, as PAM lays them out (an array of
    /// pointers to messages); the texts and messages must outlive the call.
    struct Fake {
        _texts: Vec<CString>,
        messages: Vec<PamMessage>,
    }

    impl Fake {
        fn new(styles: &[(c_int, &str)]) -> Fake {
            let texts: Vec<CString> = styles
                .iter()
                .map(|(_, t)| CString::new(*t).unwrap())
                .collect();
            let messages = styles
                .iter()
                .zip(&texts)
                .map(|((style, _), t)| PamMessage {
                    msg_style: *style,
                    msg: t.as_ptr(),
                })
                .collect();
            Fake {
                _texts: texts,
                messages,
            }
        }

        fn pointers(&self) -> Vec<*const PamMessage> {
            self.messages
                .iter()
                .map(|m| m as *const PamMessage)
                .collect()
        }
    }

    fn answers(password: &[u8]) -> Answers {
        Answers {
            user: CString::new("alice").unwrap(),
            password: Zeroizing::new(password.to_vec()),
        }
    }

    /// Calls the conversation; the responses' texts (`None` for a NULL one), after
    /// freeing them as PAM does, or the code it returned.
    fn converse(
        num_msg: c_int,
        pointers: &mut [*const PamMessage],
        answers: &mut Answers,
    ) -> Result<Vec<Option<Vec<u8>>>, c_int> {
        let mut resp: *mut PamResponse = ptr::null_mut();
        let r = conversation(
            num_msg,
            pointers.as_mut_ptr(),
            &mut resp,
            (answers as *mut Answers).cast(),
        );
        if r != PAM_SUCCESS {
            assert!(resp.is_null(), "a failed conversation handed out responses");
            return Err(r);
        }
        assert!(!resp.is_null());
        let mut out = Vec::new();
        for i in 0..num_msg as usize {
            // SAFETY: the conversation returned `num_msg` responses from calloc.
            let r = unsafe { &*resp.add(i) };
            assert_eq!(r.resp_retcode, 0);
            out.push(if r.resp.is_null() {
                None
            } else {
                // SAFETY: a NUL-terminated string from malloc.
                Some(unsafe { CStr::from_ptr(r.resp) }.to_bytes().to_vec())
            });
        }
        // SAFETY: PAM's part: the array and its strings are the caller's to free.
        unsafe { free_responses(resp, num_msg as usize) };
        Ok(out)
    }

    #[test]
    fn conversation_answers_each_prompt() {
        let fake = Fake::new(&[
            (PAM_PROMPT_ECHO_OFF, "Password: "),
            (PAM_PROMPT_ECHO_ON, "login: "),
            (PAM_ERROR_MSG, "an error"),
            (PAM_TEXT_INFO, "some information"),
            (99, "a style no one knows"),
        ]);
        let mut answers = answers(b"s3cret");
        let got = converse(5, &mut fake.pointers(), &mut answers).unwrap();
        assert_eq!(
            got,
            vec![
                Some(b"s3cret".to_vec()),
                Some(b"alice".to_vec()),
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn conversation_without_password_refuses_a_password_prompt() {
        let fake = Fake::new(&[
            (PAM_TEXT_INFO, "hello"),
            (PAM_PROMPT_ECHO_OFF, "Password: "),
        ]);
        let mut answers = answers(b"");
        assert_eq!(
            converse(2, &mut fake.pointers(), &mut answers),
            Err(PamError::ConvErr.code())
        );
        // Messages alone are answered.
        let fake = Fake::new(&[(PAM_TEXT_INFO, "hello"), (PAM_PROMPT_ECHO_ON, "login: ")]);
        assert_eq!(
            converse(2, &mut fake.pointers(), &mut answers),
            Ok(vec![None, Some(b"alice".to_vec())])
        );
    }

    #[test]
    fn conversation_refuses_bad_arguments() {
        let fake = Fake::new(&[(PAM_PROMPT_ECHO_ON, "login: ")]);
        let mut answers = answers(b"pw");
        let conv = PamError::ConvErr.code();
        // No messages, too many, a NULL message among them.
        assert_eq!(converse(0, &mut fake.pointers(), &mut answers), Err(conv));
        assert_eq!(converse(-1, &mut fake.pointers(), &mut answers), Err(conv));
        let mut many = vec![fake.pointers()[0]; PAM_MAX_NUM_MSG as usize + 1];
        assert_eq!(
            converse(PAM_MAX_NUM_MSG + 1, &mut many, &mut answers),
            Err(conv)
        );
        let mut with_null = vec![fake.pointers()[0], ptr::null()];
        assert_eq!(converse(2, &mut with_null, &mut answers), Err(conv));
        // NULL message array, response pointer or appdata.
        let mut resp: *mut PamResponse = ptr::null_mut();
        let appdata = (&raw mut answers).cast::<c_void>();
        let mut pointers = fake.pointers();
        assert_eq!(conversation(1, ptr::null_mut(), &mut resp, appdata), conv);
        assert_eq!(
            conversation(1, pointers.as_mut_ptr(), ptr::null_mut(), appdata),
            conv
        );
        assert_eq!(
            conversation(1, pointers.as_mut_ptr(), &mut resp, ptr::null_mut()),
            conv
        );
        assert!(resp.is_null());
    }

    #[test]
    fn conversation_text_may_be_null() {
        let mut fake = Fake::new(&[(PAM_ERROR_MSG, ""), (PAM_PROMPT_ECHO_OFF, "")]);
        for m in &mut fake.messages {
            m.msg = ptr::null();
        }
        let mut answers = answers(b"pw");
        assert_eq!(
            converse(2, &mut fake.pointers(), &mut answers),
            Ok(vec![None, Some(b"pw".to_vec())])
        );
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 1..=31 {
            let e = PamError::from_code(code);
            assert!(!matches!(e, PamError::Unknown(_)), "code {code} is unknown");
            assert_eq!(e.code(), code);
            assert_eq!(c_int::from(e), code);
            assert_eq!(PamError::from(code), e);
            assert!(e.to_string().starts_with("PAM_"), "{e}");
        }
        assert_eq!(PamError::from_code(7), PamError::AuthErr);
        assert_eq!(PamError::from_code(10), PamError::UserUnknown);
        assert_eq!(PamError::from_code(27), PamError::AuthTokExpired);
        for code in [-1, 32, 1000, i32::MIN] {
            assert_eq!(PamError::from_code(code), PamError::Unknown(code));
            assert_eq!(PamError::Unknown(code).code(), code);
        }
        assert_eq!(PamError::check(PAM_SUCCESS), Ok(()));
        assert_eq!(PamError::check(19), Err(PamError::ConvErr));
        assert_eq!(PamError::Unknown(99).to_string(), "PAM error 99");
    }
}
