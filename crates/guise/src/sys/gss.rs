//! The GSSAPI calls of MIT krb5 that `libgssapi` does not wrap: service
//! credentials from a keytab of the caller's choosing (`gss_acquire_cred_from`,
//! so that no process-wide `KRB5_KTNAME` is set, with a replay cache of the
//! caller's choosing), the calling thread's default
//! credential cache (`gss_krb5_ccache_name`, which MIT keeps per thread), and the
//! destruction of a memory credential cache (libkrb5's `krb5_cc_destroy`).

use std::ffi::{CStr, c_char};
use std::ptr;

use libgssapi::credential::Cred;
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi_sys as g;

unsafe extern "C" {
    /// `gssapi/gssapi_krb5.h`, which the `libgssapi-sys` bindings leave out; it is
    /// in `libgssapi_krb5`, which they link.
    fn gss_krb5_ccache_name(
        minor_status: *mut g::OM_uint32,
        name: *const c_char,
        out_name: *mut *const c_char,
    ) -> g::OM_uint32;
}

/// `krb5_context` and `krb5_ccache`, opaque.
type Krb5Context = *mut std::ffi::c_void;
type Krb5Ccache = *mut std::ffi::c_void;

#[link(name = "krb5")]
unsafe extern "C" {
    /// `krb5.h`: libkrb5, on which libgssapi_krb5 is built.
    fn krb5_init_context(context: *mut Krb5Context) -> i32;
    fn krb5_free_context(context: Krb5Context);
    fn krb5_cc_resolve(context: Krb5Context, name: *const c_char, cache: *mut Krb5Ccache) -> i32;
    fn krb5_cc_destroy(context: Krb5Context, cache: Krb5Ccache) -> i32;
}

/// Destroys the credential cache `name` (a memory cache, whose contents would
/// otherwise live as long as the process). Returns the krb5 error code on failure.
pub(crate) fn destroy_ccache(name: &CStr) -> Result<(), i32> {
    let mut context: Krb5Context = ptr::null_mut();
    // SAFETY: `context` is an out pointer; on success it is freed below, once.
    let code = unsafe { krb5_init_context(&mut context) };
    if code != 0 {
        return Err(code);
    }
    let mut cache: Krb5Ccache = ptr::null_mut();
    // SAFETY: `context` is valid; `name` is NUL-terminated and lives for the
    // call; `cache` is an out pointer, consumed by krb5_cc_destroy below.
    let mut code = unsafe { krb5_cc_resolve(context, name.as_ptr(), &mut cache) };
    if code == 0 {
        // SAFETY: `cache` was resolved on `context` just above; krb5_cc_destroy
        // closes it whatever it returns, so it is not used again.
        code = unsafe { krb5_cc_destroy(context, cache) };
    }
    // SAFETY: `context` was made by krb5_init_context above and nothing holds it.
    unsafe { krb5_free_context(context) };
    if code != 0 { Err(code) } else { Ok(()) }
}

fn status(major: g::OM_uint32, minor: g::OM_uint32) -> GssError {
    GssError {
        major: MajorFlags::from_bits_retain(major),
        minor,
    }
}

/// Whether `major` is a routine or calling error (the supplementary bits, such as
/// a duplicate token, are not errors by themselves).
fn failed(major: g::OM_uint32) -> bool {
    major
        & ((g::_GSS_C_CALLING_ERROR_MASK << g::GSS_C_CALLING_ERROR_OFFSET)
            | (g::_GSS_C_ROUTINE_ERROR_MASK << g::GSS_C_ROUTINE_ERROR_OFFSET))
        != 0
}

/// Service credentials from the keys of `keytab`: those of `principal` only (a
/// Kerberos principal name, `service/host@REALM`), or of any principal in it.
/// With `initiate`, also usable to initiate (the service's own ticket-granting
/// ticket, got with the same keys into the memory cache `ccache`), which lets
/// `gss_accept_sec_context` return S4U2Proxy credentials for constrained
/// delegation; otherwise for accepting only. `rcache` names the replay cache
/// the acceptor uses (`file2:/path`), instead of krb5's default (a file in the
/// shared `/var/tmp`).
pub(crate) fn acquire_service(
    keytab: &CStr,
    principal: Option<&CStr>,
    initiate: Option<&CStr>,
    rcache: Option<&CStr>,
) -> Result<Cred, GssError> {
    let mut minor: g::OM_uint32 = 0;
    let mut name: g::gss_name_t = ptr::null_mut();
    if let Some(principal) = principal {
        let mut buffer = g::gss_buffer_desc {
            length: principal.to_bytes().len(),
            value: principal.as_ptr() as *mut _,
        };
        let oid: &'static [u8] = &libgssapi::oid::GSS_NT_KRB5_PRINCIPAL;
        let mut kind = g::gss_OID_desc {
            length: oid.len() as g::OM_uint32,
            elements: oid.as_ptr() as *mut _,
        };
        // SAFETY: `buffer` points to the bytes of `principal`, alive for the call
        // and only read by it; `kind` points to a static OID's bytes, only read;
        // `name` is an out pointer, released below.
        let major = unsafe { g::gss_import_name(&mut minor, &mut buffer, &mut kind, &mut name) };
        if failed(major) {
            return Err(status(major, minor));
        }
    }
    let mut elements = vec![g::gss_key_value_element_desc {
        key: c"keytab".as_ptr(),
        value: keytab.as_ptr(),
    }];
    if let Some(rcache) = rcache {
        elements.push(g::gss_key_value_element_desc {
            key: c"rcache".as_ptr(),
            value: rcache.as_ptr(),
        });
    }
    if let Some(ccache) = initiate {
        elements.push(g::gss_key_value_element_desc {
            key: c"client_keytab".as_ptr(),
            value: keytab.as_ptr(),
        });
        elements.push(g::gss_key_value_element_desc {
            key: c"ccache".as_ptr(),
            value: ccache.as_ptr(),
        });
    }
    let store = g::gss_key_value_set_desc {
        count: elements.len() as g::OM_uint32,
        elements: elements.as_mut_ptr(),
    };
    let usage = if initiate.is_some() {
        g::GSS_C_BOTH
    } else {
        g::GSS_C_ACCEPT
    };
    let mut cred: g::gss_cred_id_t = ptr::null_mut();
    // The krb5 mechanism alone: not IAKERB (whose acceptor relays KDC traffic
    // for unauthenticated clients) nor SPNEGO.
    let krb5: &'static [u8] = &libgssapi::oid::GSS_MECH_KRB5;
    let mut mech = g::gss_OID_desc {
        length: krb5.len() as g::OM_uint32,
        elements: krb5.as_ptr() as *mut _,
    };
    let mut mechs = g::gss_OID_set_desc {
        count: 1,
        elements: &mut mech,
    };
    // SAFETY: `name` is null (any principal) or the name imported above; `mechs`
    // points to `mech`, which points to a static OID's bytes, all only read and
    // alive for the call; `store` points to `elements`, whose strings live for the
    // call; `cred` is an out pointer whose ownership passes to `Cred` below; the
    // actual mechanisms and time are not asked for (null).
    let major = unsafe {
        g::gss_acquire_cred_from(
            &mut minor,
            name,
            g::_GSS_C_INDEFINITE,
            &mut mechs,
            usage as g::gss_cred_usage_t,
            &store,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if !name.is_null() {
        let mut ignored: g::OM_uint32 = 0;
        // SAFETY: `name` was made by gss_import_name above and is released once.
        unsafe { g::gss_release_name(&mut ignored, &mut name) };
    }
    if failed(major) {
        return Err(status(major, minor));
    }
    // SAFETY: `cred` was just made by gss_acquire_cred_from and nothing else holds
    // it: the `Cred` owns it from here and releases it once.
    Ok(unsafe { Cred::from_c(cred) })
}

/// Sets the calling thread's default credential cache for GSSAPI (`None`: back to
/// the process's default, `KRB5CCNAME` or the system's).
pub(crate) fn set_thread_ccache(name: Option<&CStr>) -> Result<(), GssError> {
    let mut minor: g::OM_uint32 = 0;
    // SAFETY: `name` is null or a NUL-terminated string that lives for the call
    // (MIT copies it); the previous name is not asked for (null).
    let major = unsafe {
        gss_krb5_ccache_name(
            &mut minor,
            name.map_or(ptr::null(), CStr::as_ptr),
            ptr::null_mut(),
        )
    };
    if failed(major) {
        return Err(status(major, minor));
    }
    Ok(())
}
