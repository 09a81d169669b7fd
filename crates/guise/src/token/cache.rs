//! The Kerberos credential caches a token carries (its network credentials).

use std::ffi::CString;
use std::fmt;
use std::sync::Arc;

#[cfg(feature = "kerberos")]
pub(crate) use super::made::{CacheParent, PrivateCacheDir, Removal, Remover, file_id};
use crate::error::{Error, ErrorKind, Result};

/// A cache name for C: no NUL byte.
fn c_name(name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| {
        Error::new(
            ErrorKind::InvalidParameter,
            "a credential cache name contains a NUL byte",
        )
    })
}

/// The credential cache named where a token carries no credentials: the GSSAPI
/// default of a thread that impersonates a token without a cache of its own (a
/// local client's, a network client's that delegated nothing, any below
/// Impersonation level), and `KRB5CCNAME` of a process started from a network
/// client's token without one. It cannot exist (nothing can be made in `/proc`),
/// so a Kerberos call fails and says why, rather than go out with the server's
/// credentials or with a cache the client's uid has on this machine.
pub const NO_DELEGATED_CREDENTIALS: &str = match NO_DELEGATED_CREDENTIALS_C.to_str() {
    Ok(name) => name,
    Err(_) => panic!("the name is UTF-8"),
};

/// [`NO_DELEGATED_CREDENTIALS`] for C.
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
pub(crate) const NO_DELEGATED_CREDENTIALS_C: &std::ffi::CStr =
    c"FILE:/proc/guise-no-delegated-credentials";

/// A Kerberos credential cache that belongs to a token: its network credentials
/// (SPEC §6). A process started from the token gets it as `KRB5CCNAME`, and a
/// thread that impersonates the token at Impersonation level or above has it as
/// its GSSAPI default (see [`crate::thread`]), so that outgoing Kerberos calls go
/// out as the token's user.
///
/// A logon's cache is the one the PAM stack made (pam_krb5, pam_sss), which the
/// PAM session removes when it closes. A cache guise made for a client's delegated
/// credentials is removed, with its private directory, when the last token that
/// holds it is dropped. A client's forwarded ticket has two copies: the file its
/// processes get (which the client owns and may change), and a memory copy made
/// at the same time, which is all the server's impersonating threads ever use, so
/// that nothing the client puts in place of the file (a FIFO, a link) is ever
/// opened by the server.
#[derive(Clone)]
pub struct CredentialCache(Arc<CacheInner>);

struct CacheInner {
    /// `TYPE:residual`, as `KRB5CCNAME` takes it.
    name: String,
    /// The same, for C.
    #[cfg(feature = "kerberos")]
    c_name: CString,
    /// The memory copy impersonating threads use instead of `name`, if any.
    #[cfg(feature = "kerberos")]
    thread_name: Option<CString>,
    /// What guise made for the cache, to remove with it, and the thread that
    /// removes it.
    #[cfg(feature = "kerberos")]
    remove: Option<(Removal, Remover)>,
}

#[cfg(feature = "kerberos")]
impl Drop for CacheInner {
    fn drop(&mut self) {
        if let Some((removal, remover)) = self.remove.take()
            && let Err(std::sync::mpsc::SendError(removal)) = remover.send(removal)
        {
            removal.run();
        }
    }
}

impl CredentialCache {
    /// A cache by its name (`FILE:/tmp/krb5cc_1000_Ab12`, `KEYRING:persistent:1000`,
    /// `KCM:1000`, …), which something else made and removes.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a name with a NUL byte, and for any
    /// type but `FILE`, `DIR`, `KEYRING` and `KCM`: a memory cache is the server
    /// process's own (its service ticket, other clients' delegated credentials),
    /// and a name from elsewhere (a logon's PAM environment, which a user may be
    /// able to set) must never make a thread use one.
    pub fn named(name: &str) -> Result<CredentialCache> {
        let kind = match name.split_once(':') {
            Some((kind, _)) if !kind.contains('/') => kind,
            _ => "FILE",
        };
        if !matches!(kind, "FILE" | "DIR" | "KEYRING" | "KCM") {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("a credential cache of type {kind:?} cannot belong to a token"),
            ));
        }
        #[cfg(feature = "kerberos")]
        return Self::make(name, None, None);
        #[cfg(not(feature = "kerberos"))]
        Self::make(name)
    }

    /// A cache that guise made (in a directory of its own, or in memory), which
    /// `remover` removes when the last token that holds the cache is dropped.
    #[cfg(feature = "kerberos")]
    pub(crate) fn owned(name: &str, removal: Removal, remover: Remover) -> Result<CredentialCache> {
        Self::make(name, None, Some((removal, remover)))
    }

    /// A file cache that guise made, with a memory copy (`thread_name`) made at
    /// the same time, which impersonating threads use instead of the file; both
    /// go with `removal`.
    #[cfg(feature = "kerberos")]
    pub(crate) fn owned_with_copy(
        name: &str,
        thread_name: CString,
        removal: Removal,
        remover: Remover,
    ) -> Result<CredentialCache> {
        Self::make(name, Some(thread_name), Some((removal, remover)))
    }

    /// Whether a process started from the token can use the cache: a memory
    /// cache (constrained delegation's, which holds the service's own ticket)
    /// never leaves the process.
    pub fn reaches_processes(&self) -> bool {
        !self.0.name.starts_with("MEMORY:")
    }

    #[cfg(feature = "kerberos")]
    fn make(
        name: &str,
        thread_name: Option<CString>,
        remove: Option<(Removal, Remover)>,
    ) -> Result<CredentialCache> {
        Ok(CredentialCache(Arc::new(CacheInner {
            name: name.to_owned(),
            c_name: c_name(name)?,
            thread_name,
            remove,
        })))
    }

    #[cfg(not(feature = "kerberos"))]
    fn make(name: &str) -> Result<CredentialCache> {
        c_name(name)?;
        Ok(CredentialCache(Arc::new(CacheInner {
            name: name.to_owned(),
        })))
    }

    /// The cache's name, as `KRB5CCNAME` takes it.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The name of the cache an impersonating thread uses, for C: the memory
    /// copy of a client's forwarded ticket, else the cache itself.
    #[cfg(feature = "kerberos")]
    pub(crate) fn c_name(&self) -> &std::ffi::CStr {
        self.0.thread_name.as_deref().unwrap_or(&self.0.c_name)
    }
}

impl PartialEq for CredentialCache {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for CredentialCache {}

impl fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CredentialCache")
            .field(&self.0.name)
            .finish()
    }
}
