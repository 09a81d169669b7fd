//! A small binding to libpam: start, authenticate, account management, credentials,
//! session, environment, end. The conversation answers password prompts from a
//! zeroed buffer and never lets a panic cross the FFI boundary.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
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

pub(crate) const PAM_SUCCESS: c_int = 0;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_SILENT: c_int = 0x8000;
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;
const PAM_ESTABLISH_CRED: c_int = 0x0002;
const PAM_DELETE_CRED: c_int = 0x0004;
pub(crate) const PAM_PERM_DENIED: c_int = 6;
pub(crate) const PAM_AUTH_ERR: c_int = 7;
pub(crate) const PAM_USER_UNKNOWN: c_int = 10;
pub(crate) const PAM_MAXTRIES: c_int = 11;
pub(crate) const PAM_NEW_AUTHTOK_REQD: c_int = 12;
pub(crate) const PAM_ACCT_EXPIRED: c_int = 13;
pub(crate) const PAM_AUTHINFO_UNAVAIL: c_int = 9;
pub(crate) const PAM_CRED_UNAVAIL: c_int = 15;
pub(crate) const PAM_AUTHTOK_EXPIRED: c_int = 27;
/// The item of the remote host name.
pub(crate) const PAM_RHOST: c_int = 4;
/// The item of the remote (requesting) user name.
pub(crate) const PAM_RUSER: c_int = 8;

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

extern "C" fn conversation(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let answer = || -> c_int {
        if num_msg <= 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
            return PAM_CONV_ERR;
        }
        let n = num_msg as usize;
        // SAFETY: appdata is the `Answers` that `Pam::start` passed, alive for the
        // whole PAM transaction.
        let answers = unsafe { &*appdata.cast::<Answers>() };
        // Without a password (a logon that does not authenticate), a module that
        // asks for one gets no answer at all, not an empty one.
        let asks_password = (0..n).any(|i| {
            // SAFETY: Linux-PAM passes `msg` as an array of n pointers to messages.
            unsafe { (**msg.add(i)).msg_style == PAM_PROMPT_ECHO_OFF }
        });
        if asks_password && answers.password.is_empty() {
            return PAM_CONV_ERR;
        }
        // SAFETY: calloc of n responses, zeroed (NULL resp, retcode 0), or NULL.
        let out =
            unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
        if out.is_null() {
            return PAM_BUF_ERR;
        }
        for i in 0..n {
            // SAFETY: Linux-PAM passes `msg` as an array of n pointers to messages.
            let m = unsafe { &**msg.add(i) };
            let text = if m.msg.is_null() {
                String::new()
            } else {
                // SAFETY: PAM's message text is a NUL-terminated string.
                unsafe { CStr::from_ptr(m.msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            let reply = match m.msg_style {
                PAM_PROMPT_ECHO_OFF => malloc_string(&answers.password),
                PAM_PROMPT_ECHO_ON => malloc_string(answers.user.as_bytes()),
                PAM_ERROR_MSG => {
                    tracing::info!(message = %text, "PAM error message");
                    ptr::null_mut()
                }
                PAM_TEXT_INFO => {
                    tracing::debug!(message = %text, "PAM information");
                    ptr::null_mut()
                }
                _ => ptr::null_mut(),
            };
            // SAFETY: `out` has n elements.
            unsafe { (*out.add(i)).resp = reply };
        }
        // SAFETY: PAM takes ownership of the array and its strings.
        unsafe { *resp = out };
        PAM_SUCCESS
    };
    // A panic must not unwind into C.
    catch_unwind(AssertUnwindSafe(answer)).unwrap_or(PAM_CONV_ERR)
}

/// A PAM transaction. Ends (`pam_end`) on drop.
pub(crate) struct Pam {
    handle: *mut PamHandle,
    // Boxed so that its address, given to PAM, stays put.
    _answers: Box<Answers>,
    _conv: Box<PamConv>,
    status: c_int,
    session_open: bool,
    creds_established: bool,
}

// SAFETY: a PAM handle may be used from any thread as long as calls are not made
// concurrently; `Pam` is only used through `&mut self` or behind a Mutex.
unsafe impl Send for Pam {}

impl Pam {
    /// `pam_start_confdir`: a transaction for `user` with `service`, whose
    /// configuration is read from `confdir` (or the system's, `/etc/pam.d`).
    pub(crate) fn start(
        service: &CStr,
        user: &CStr,
        password: Zeroizing<Vec<u8>>,
        confdir: Option<&Path>,
    ) -> Result<Pam, c_int> {
        let mut answers = Box::new(Answers {
            user: user.to_owned(),
            password,
        });
        let conv = Box::new(PamConv {
            conv: Some(conversation),
            appdata_ptr: (&raw mut *answers).cast(),
        });
        let confdir =
            confdir.map(|d| CString::new(d.as_os_str().as_encoded_bytes()).unwrap_or_default());
        let mut handle = ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `conv` and `answers` are boxed
        // and kept in the returned `Pam`, so they outlive the transaction.
        let r = unsafe {
            pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                &*conv,
                confdir.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                &mut handle,
            )
        };
        if r != PAM_SUCCESS || handle.is_null() {
            return Err(r);
        }
        Ok(Pam {
            handle,
            _answers: answers,
            _conv: conv,
            status: PAM_SUCCESS,
            session_open: false,
            creds_established: false,
        })
    }

    fn result(&mut self, r: c_int) -> Result<(), c_int> {
        self.status = r;
        if r == PAM_SUCCESS { Ok(()) } else { Err(r) }
    }

    /// `pam_authenticate`, refusing empty passwords.
    pub(crate) fn authenticate(&mut self) -> Result<(), c_int> {
        // SAFETY: the handle is live until drop.
        let r = unsafe { pam_authenticate(self.handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK) };
        self.result(r)
    }

    /// `pam_acct_mgmt`: is the account valid now (not locked, not expired)?
    pub(crate) fn account(&mut self) -> Result<(), c_int> {
        // SAFETY: the handle is live until drop.
        let r = unsafe { pam_acct_mgmt(self.handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK) };
        self.result(r)
    }

    /// `pam_setcred(PAM_ESTABLISH_CRED)`.
    pub(crate) fn establish_credentials(&mut self) -> Result<(), c_int> {
        // SAFETY: the handle is live until drop.
        let r = unsafe { pam_setcred(self.handle, PAM_SILENT | PAM_ESTABLISH_CRED) };
        self.result(r)?;
        self.creds_established = true;
        Ok(())
    }

    /// `pam_open_session`.
    pub(crate) fn open_session(&mut self) -> Result<(), c_int> {
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
    pub(crate) fn set_item(&mut self, item: c_int, value: &CStr) -> Result<(), c_int> {
        // SAFETY: the handle is live; PAM copies the NUL-terminated string, which
        // is valid for the call.
        let r = unsafe { pam_set_item(self.handle, item, value.as_ptr().cast()) };
        if r == PAM_SUCCESS { Ok(()) } else { Err(r) }
    }

    /// PAM's text for an error code.
    pub(crate) fn strerror(&self, code: c_int) -> String {
        // SAFETY: pam_strerror returns a static NUL-terminated string.
        unsafe {
            let p = pam_strerror(self.handle, code);
            if p.is_null() {
                format!("PAM error {code}")
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
    }
}
