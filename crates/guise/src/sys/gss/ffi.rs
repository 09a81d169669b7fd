//! The GSSAPI of MIT krb5 as C declares it (`gssapi/gssapi.h`, `gssapi_ext.h`,
//! `gssapi_krb5.h`) and the few libkrb5 calls guise makes, bound by hand: only
//! what [`super`] calls. The `abi` test compares every layout and constant here
//! with what the C compiler makes of MIT's headers.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

/// `OM_uint32`: a GSSAPI status code, flag word or count.
pub(crate) type OM_uint32 = u32;
/// `gss_qop_t`.
pub(crate) type gss_qop_t = OM_uint32;
/// `gss_cred_usage_t`.
pub(crate) type gss_cred_usage_t = c_int;

/// `gss_name_t`, `gss_cred_id_t`, `gss_ctx_id_t`: opaque handles of the library.
pub(crate) type gss_name_t = *mut c_void;
pub(crate) type gss_cred_id_t = *mut c_void;
pub(crate) type gss_ctx_id_t = *mut c_void;
/// `gss_channel_bindings_t`: guise passes none (null).
pub(crate) type gss_channel_bindings_t = *mut c_void;

/// `gss_buffer_desc`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct gss_buffer_desc {
    pub(crate) length: usize,
    pub(crate) value: *mut c_void,
}

/// `gss_OID_desc`: the DER contents of an object identifier.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct gss_OID_desc {
    pub(crate) length: OM_uint32,
    pub(crate) elements: *mut c_void,
}

/// `gss_OID_set_desc`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct gss_OID_set_desc {
    pub(crate) count: usize,
    pub(crate) elements: *mut gss_OID_desc,
}

/// `gss_buffer_set_desc` (`gssapi_ext.h`).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct gss_buffer_set_desc {
    pub(crate) count: usize,
    pub(crate) elements: *mut gss_buffer_desc,
}

/// `gss_key_value_element_desc` (`gssapi_ext.h`): one entry of a credential store.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct gss_key_value_element_desc {
    pub(crate) key: *const c_char,
    pub(crate) value: *const c_char,
}

/// `gss_key_value_set_desc` (`gssapi_ext.h`): a credential store.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct gss_key_value_set_desc {
    pub(crate) count: OM_uint32,
    pub(crate) elements: *mut gss_key_value_element_desc,
}

// Credential usage.
pub(crate) const GSS_C_BOTH: gss_cred_usage_t = 0;
pub(crate) const GSS_C_INITIATE: gss_cred_usage_t = 1;
pub(crate) const GSS_C_ACCEPT: gss_cred_usage_t = 2;

// Context flags.
pub(crate) const GSS_C_DELEG_FLAG: OM_uint32 = 1;
pub(crate) const GSS_C_MUTUAL_FLAG: OM_uint32 = 2;
pub(crate) const GSS_C_REPLAY_FLAG: OM_uint32 = 4;
pub(crate) const GSS_C_SEQUENCE_FLAG: OM_uint32 = 8;
pub(crate) const GSS_C_CONF_FLAG: OM_uint32 = 16;
pub(crate) const GSS_C_INTEG_FLAG: OM_uint32 = 32;
pub(crate) const GSS_C_ANON_FLAG: OM_uint32 = 64;
pub(crate) const GSS_C_PROT_READY_FLAG: OM_uint32 = 128;
pub(crate) const GSS_C_TRANS_FLAG: OM_uint32 = 256;
pub(crate) const GSS_C_DELEG_POLICY_FLAG: OM_uint32 = 32768;

// Status codes: what gss_display_status is asked to show.
pub(crate) const GSS_C_GSS_CODE: c_int = 1;
pub(crate) const GSS_C_MECH_CODE: c_int = 2;

pub(crate) const GSS_C_QOP_DEFAULT: gss_qop_t = 0;
pub(crate) const GSS_C_INDEFINITE: OM_uint32 = 0xffff_ffff;

// The major status word: calling errors, routine errors, supplementary bits.
pub(crate) const GSS_C_CALLING_ERROR_OFFSET: u32 = 24;
pub(crate) const GSS_C_ROUTINE_ERROR_OFFSET: u32 = 16;
pub(crate) const GSS_C_CALLING_ERROR_MASK: OM_uint32 = 0o377;
pub(crate) const GSS_C_ROUTINE_ERROR_MASK: OM_uint32 = 0o377;
pub(crate) const GSS_S_COMPLETE: OM_uint32 = 0;
pub(crate) const GSS_S_CONTINUE_NEEDED: OM_uint32 = 1;
pub(crate) const GSS_S_NO_CRED: OM_uint32 = 7 << GSS_C_ROUTINE_ERROR_OFFSET;
/// The name has no such attribute (`GSS_S_UNAVAILABLE`).
pub(crate) const GSS_S_UNAVAILABLE: OM_uint32 = 16 << GSS_C_ROUTINE_ERROR_OFFSET;

/// The object identifiers guise names, as DER contents (RFC 2743, RFC 1964).
/// `GSS_C_NT_HOSTBASED_SERVICE`: 1.2.840.113554.1.2.1.4.
pub(crate) const GSS_C_NT_HOSTBASED_SERVICE: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04";
/// `GSS_KRB5_NT_PRINCIPAL_NAME`: 1.2.840.113554.1.2.2.1.
pub(crate) const GSS_KRB5_NT_PRINCIPAL_NAME: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";
/// `gss_mech_krb5`: 1.2.840.113554.1.2.2.
pub(crate) const GSS_MECH_KRB5: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02";
/// `GSS_KRB5_GET_CRED_IMPERSONATOR`: 1.2.840.113554.1.2.2.5.14, which names the
/// service that holds S4U2Proxy credentials.
/// `GSS_KRB5_EXTRACT_AUTHZ_DATA_FROM_SEC_CONTEXT_OID` (1.2.840.113554.1.2.2.5.10)
/// followed by the arc of the authorization data type, here 1 (AD-IF-RELEVANT):
/// the ticket's top-level authorization data of that type.
pub(crate) const GSS_KRB5_EXTRACT_AD_IF_RELEVANT: &[u8] =
    b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x05\x0a\x01";
pub(crate) const GSS_KRB5_GET_CRED_IMPERSONATOR: &[u8] =
    b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x05\x0e";

#[link(name = "gssapi_krb5")]
unsafe extern "C" {
    // gssapi.h
    pub(crate) fn gss_import_name(
        minor_status: *mut OM_uint32,
        input_name_buffer: *const gss_buffer_desc,
        input_name_type: *const gss_OID_desc,
        output_name: *mut gss_name_t,
    ) -> OM_uint32;
    pub(crate) fn gss_release_name(
        minor_status: *mut OM_uint32,
        name: *mut gss_name_t,
    ) -> OM_uint32;
    pub(crate) fn gss_display_name(
        minor_status: *mut OM_uint32,
        input_name: gss_name_t,
        output_name_buffer: *mut gss_buffer_desc,
        output_name_type: *mut *mut gss_OID_desc,
    ) -> OM_uint32;
    pub(crate) fn gss_release_cred(
        minor_status: *mut OM_uint32,
        cred_handle: *mut gss_cred_id_t,
    ) -> OM_uint32;
    pub(crate) fn gss_inquire_cred(
        minor_status: *mut OM_uint32,
        cred_handle: gss_cred_id_t,
        name: *mut gss_name_t,
        lifetime: *mut OM_uint32,
        cred_usage: *mut gss_cred_usage_t,
        mechanisms: *mut *mut gss_OID_set_desc,
    ) -> OM_uint32;
    pub(crate) fn gss_init_sec_context(
        minor_status: *mut OM_uint32,
        claimant_cred_handle: gss_cred_id_t,
        context_handle: *mut gss_ctx_id_t,
        target_name: gss_name_t,
        mech_type: *const gss_OID_desc,
        req_flags: OM_uint32,
        time_req: OM_uint32,
        input_chan_bindings: gss_channel_bindings_t,
        input_token: *const gss_buffer_desc,
        actual_mech_type: *mut *mut gss_OID_desc,
        output_token: *mut gss_buffer_desc,
        ret_flags: *mut OM_uint32,
        time_rec: *mut OM_uint32,
    ) -> OM_uint32;
    pub(crate) fn gss_accept_sec_context(
        minor_status: *mut OM_uint32,
        context_handle: *mut gss_ctx_id_t,
        acceptor_cred_handle: gss_cred_id_t,
        input_token_buffer: *const gss_buffer_desc,
        input_chan_bindings: gss_channel_bindings_t,
        src_name: *mut gss_name_t,
        mech_type: *mut *mut gss_OID_desc,
        output_token: *mut gss_buffer_desc,
        ret_flags: *mut OM_uint32,
        time_rec: *mut OM_uint32,
        delegated_cred_handle: *mut gss_cred_id_t,
    ) -> OM_uint32;
    pub(crate) fn gss_delete_sec_context(
        minor_status: *mut OM_uint32,
        context_handle: *mut gss_ctx_id_t,
        output_token: *mut gss_buffer_desc,
    ) -> OM_uint32;
    pub(crate) fn gss_inquire_context(
        minor_status: *mut OM_uint32,
        context_handle: gss_ctx_id_t,
        src_name: *mut gss_name_t,
        targ_name: *mut gss_name_t,
        lifetime_rec: *mut OM_uint32,
        mech_type: *mut *mut gss_OID_desc,
        ctx_flags: *mut OM_uint32,
        locally_initiated: *mut c_int,
        open: *mut c_int,
    ) -> OM_uint32;
    pub(crate) fn gss_wrap(
        minor_status: *mut OM_uint32,
        context_handle: gss_ctx_id_t,
        conf_req_flag: c_int,
        qop_req: gss_qop_t,
        input_message_buffer: *const gss_buffer_desc,
        conf_state: *mut c_int,
        output_message_buffer: *mut gss_buffer_desc,
    ) -> OM_uint32;
    pub(crate) fn gss_unwrap(
        minor_status: *mut OM_uint32,
        context_handle: gss_ctx_id_t,
        input_message_buffer: *const gss_buffer_desc,
        output_message_buffer: *mut gss_buffer_desc,
        conf_state: *mut c_int,
        qop_state: *mut gss_qop_t,
    ) -> OM_uint32;
    pub(crate) fn gss_display_status(
        minor_status: *mut OM_uint32,
        status_value: OM_uint32,
        status_type: c_int,
        mech_type: *const gss_OID_desc,
        message_context: *mut OM_uint32,
        status_string: *mut gss_buffer_desc,
    ) -> OM_uint32;
    pub(crate) fn gss_release_buffer(
        minor_status: *mut OM_uint32,
        buffer: *mut gss_buffer_desc,
    ) -> OM_uint32;

    // gssapi_ext.h
    pub(crate) fn gss_get_name_attribute(
        minor_status: *mut OM_uint32,
        name: gss_name_t,
        attr: *mut gss_buffer_desc,
        authenticated: *mut c_int,
        complete: *mut c_int,
        value: *mut gss_buffer_desc,
        display_value: *mut gss_buffer_desc,
        more: *mut c_int,
    ) -> OM_uint32;
    pub(crate) fn gss_localname(
        minor_status: *mut OM_uint32,
        name: gss_name_t,
        mech_type: *const gss_OID_desc,
        localname: *mut gss_buffer_desc,
    ) -> OM_uint32;
    pub(crate) fn gss_acquire_cred_from(
        minor_status: *mut OM_uint32,
        desired_name: gss_name_t,
        time_req: OM_uint32,
        desired_mechs: *const gss_OID_set_desc,
        cred_usage: gss_cred_usage_t,
        cred_store: *const gss_key_value_set_desc,
        output_cred_handle: *mut gss_cred_id_t,
        actual_mechs: *mut *mut gss_OID_set_desc,
        time_rec: *mut OM_uint32,
    ) -> OM_uint32;
    pub(crate) fn gss_store_cred_into(
        minor_status: *mut OM_uint32,
        input_cred_handle: gss_cred_id_t,
        input_usage: gss_cred_usage_t,
        desired_mech: *const gss_OID_desc,
        overwrite_cred: OM_uint32,
        default_cred: OM_uint32,
        cred_store: *const gss_key_value_set_desc,
        elements_stored: *mut *mut gss_OID_set_desc,
        cred_usage_stored: *mut gss_cred_usage_t,
    ) -> OM_uint32;
    pub(crate) fn gss_inquire_cred_by_oid(
        minor_status: *mut OM_uint32,
        cred_handle: gss_cred_id_t,
        desired_object: *const gss_OID_desc,
        data_set: *mut *mut gss_buffer_set_desc,
    ) -> OM_uint32;
    pub(crate) fn gss_release_buffer_set(
        minor_status: *mut OM_uint32,
        buffer_set: *mut *mut gss_buffer_set_desc,
    ) -> OM_uint32;

    pub(crate) fn gss_inquire_sec_context_by_oid(
        minor_status: *mut OM_uint32,
        context_handle: gss_ctx_id_t,
        desired_object: *const gss_OID_desc,
        data_set: *mut *mut gss_buffer_set_desc,
    ) -> OM_uint32;

    // gssapi_krb5.h
    pub(crate) fn gss_krb5_ccache_name(
        minor_status: *mut OM_uint32,
        name: *const c_char,
        out_name: *mut *const c_char,
    ) -> OM_uint32;
}

/// `krb5_context` and `krb5_ccache` (`krb5.h`), opaque.
pub(crate) type krb5_context = *mut c_void;
pub(crate) type krb5_ccache = *mut c_void;
/// `krb5_error_code`.
pub(crate) type krb5_error_code = i32;

#[link(name = "krb5")]
unsafe extern "C" {
    // krb5.h: libkrb5, on which libgssapi_krb5 is built.
    pub(crate) fn krb5_init_context(context: *mut krb5_context) -> krb5_error_code;
    pub(crate) fn krb5_free_context(context: krb5_context);
    pub(crate) fn krb5_cc_resolve(
        context: krb5_context,
        name: *const c_char,
        cache: *mut krb5_ccache,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_destroy(context: krb5_context, cache: krb5_ccache) -> krb5_error_code;
}
