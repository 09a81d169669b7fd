//! The GSSAPI calls of MIT krb5 that `libgssapi` does not wrap: acceptor
//! credentials from a keytab of the caller's choosing (`gss_acquire_cred_from`,
//! so that no process-wide `KRB5_KTNAME` is set), and the calling thread's default
//! credential cache (`gss_krb5_ccache_name`, which MIT keeps per thread).

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

/// Acceptor credentials from the keys of `keytab`: those of `principal` only (a
/// Kerberos principal name, `service/host@REALM`), or of any principal in it.
pub(crate) fn acquire_acceptor(keytab: &CStr, principal: Option<&CStr>) -> Result<Cred, GssError> {
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
        // and only read by it; `kind` points to a static OID's bytes, only read; `name` is an out
        // pointer, released below.
        let major = unsafe { g::gss_import_name(&mut minor, &mut buffer, &mut kind, &mut name) };
        if failed(major) {
            return Err(status(major, minor));
        }
    }
    let mut element = g::gss_key_value_element_desc {
        key: c"keytab".as_ptr(),
        value: keytab.as_ptr(),
    };
    let store = g::gss_key_value_set_desc {
        count: 1,
        elements: &mut element,
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
    // alive for the call; `store` points to `element`, whose strings live for the
    // call; `cred` is an out pointer whose ownership passes to `Cred` below; the
    // actual mechanisms and time are not asked for (null).
    let major = unsafe {
        g::gss_acquire_cred_from(
            &mut minor,
            name,
            g::_GSS_C_INDEFINITE,
            &mut mechs,
            g::GSS_C_ACCEPT as g::gss_cred_usage_t,
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
