//! The calling thread's GSSAPI default credential cache follows what it
//! impersonates (Kerberos only).

use super::*;

thread_local! {
    /// The GSSAPI default credential cache the calling thread was given, if any
    /// (`None`: the process's default).
    static GSS_CACHE: std::cell::RefCell<Option<std::ffi::CString>> =
        const { std::cell::RefCell::new(None) };
}

/// Brings the calling thread's GSSAPI default credential cache in line with what
/// it impersonates now (also after another thread's SetThreadToken on it), and
/// holds the thread steady while `f` runs: for code that starts a Kerberos call.
pub(crate) fn with_gss_cache<R>(f: impl FnOnce() -> R) -> R {
    let _steady = steady();
    follows();
    f()
}

/// Whether the calling thread impersonates a token that carries no credentials
/// (its GSSAPI default cache is [`crate::token::NO_DELEGATED_CREDENTIALS`]).
pub(crate) fn without_delegated_credentials() -> bool {
    GSS_CACHE.with_borrow(|c| c.as_deref() == Some(crate::token::NO_DELEGATED_CREDENTIALS_C))
}

/// Makes the thread's GSSAPI default credential cache follow what it
/// impersonates: the token's own cache at Impersonation level or above; the
/// process's default for a copy of the process token; and otherwise none at all ([`crate::token::NO_DELEGATED_CREDENTIALS`]), so that a
/// thread acting for a client never authenticates with the server's credentials
/// (the process's default cache) nor with a cache the client's uid has on this
/// machine. Not impersonating: the process's default. A cache that cannot be set
/// aborts the process, as a credential that cannot be restored does.
pub(super) fn follows() {
    // Compared before anything is copied: an impersonation that leaves the cache
    // as it was costs no allocation.
    ACTIVE.with_borrow(|a| {
        let wanted: Option<&std::ffi::CStr> = a.as_ref().and_then(|a| {
            Some(match rules::network_credentials(&a.token) {
                rules::NetworkCredentials::Process => return None,
                rules::NetworkCredentials::Token(cache) => cache.c_name(),
                rules::NetworkCredentials::None => crate::token::NO_DELEGATED_CREDENTIALS_C,
            })
        });
        GSS_CACHE.with_borrow_mut(|current| {
            if current.as_deref() == wanted {
                return;
            }
            if let Err(e) = crate::sys::gss::set_thread_ccache(wanted) {
                cred::fatal(
                    "setting the thread's Kerberos credential cache",
                    &Error::new(ErrorKind::Os, e.to_string()),
                );
            }
            *current = wanted.map(std::ffi::CStr::to_owned);
        });
    });
}
