//! GSSAPI on MIT krb5, bound by hand ([`ffi`]): owning handles that release
//! themselves (names, credentials, contexts, buffers), the context handshake of
//! either side, sealing, and the calls guise needs beyond those: service
//! credentials from a keytab of the caller's choosing (`gss_acquire_cred_from`,
//! so that no process-wide `KRB5_KTNAME` is set, with a replay cache of the
//! caller's choosing), the calling thread's default credential cache
//! (`gss_krb5_ccache_name`, which MIT keeps per thread), and the destruction of
//! a memory credential cache (libkrb5's `krb5_cc_destroy`).

mod ffi;

use std::ffi::{CStr, CString, c_void};
use std::fmt;
use std::ptr;
use std::sync::Arc;

use ffi::OM_uint32;
pub(crate) use ffi::{GSS_C_NT_HOSTBASED_SERVICE, GSS_KRB5_NT_PRINCIPAL_NAME, GSS_MECH_KRB5};

bitflags::bitflags! {
    /// The flags of a security context (`req_flags`, `ret_flags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct CtxFlags: u32 {
        const GSS_C_DELEG_FLAG = ffi::GSS_C_DELEG_FLAG;
        const GSS_C_MUTUAL_FLAG = ffi::GSS_C_MUTUAL_FLAG;
        const GSS_C_REPLAY_FLAG = ffi::GSS_C_REPLAY_FLAG;
        const GSS_C_SEQUENCE_FLAG = ffi::GSS_C_SEQUENCE_FLAG;
        const GSS_C_CONF_FLAG = ffi::GSS_C_CONF_FLAG;
        const GSS_C_INTEG_FLAG = ffi::GSS_C_INTEG_FLAG;
        const GSS_C_ANON_FLAG = ffi::GSS_C_ANON_FLAG;
        const GSS_C_PROT_READY_FLAG = ffi::GSS_C_PROT_READY_FLAG;
        const GSS_C_TRANS_FLAG = ffi::GSS_C_TRANS_FLAG;
        const GSS_C_DELEG_POLICY_FLAG = ffi::GSS_C_DELEG_POLICY_FLAG;
    }
}

impl CtxFlags {
    /// The names of the flags that are set (`GSS_C_MUTUAL_FLAG | GSS_C_CONF_FLAG`),
    /// any other bits as hex; `none` for none.
    pub(crate) fn names(self) -> String {
        let mut names: Vec<String> = self.iter_names().map(|(n, _)| n.to_owned()).collect();
        let unknown = self.bits() & !CtxFlags::all().bits();
        if unknown != 0 {
            names.push(format!("0x{unknown:x}"));
        }
        if names.is_empty() {
            return "none".to_owned();
        }
        names.join(" | ")
    }
}

/// A GSSAPI status: the major code (routine or calling error, supplementary
/// bits) and the mechanism's minor code. Shown as `gss_display_status` words
/// them: the major message, then the minor one in parentheses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GssError {
    pub(crate) major: OM_uint32,
    pub(crate) minor: OM_uint32,
}

impl GssError {
    /// Whether the major code says there were no credentials (`GSS_S_NO_CRED`).
    /// The routine error is a number in its field, not a set of bits: 15
    /// (`GSS_S_UNAUTHORIZED`) holds 7's bits and is another error.
    pub(crate) fn no_credentials(&self) -> bool {
        let routine = ffi::GSS_C_ROUTINE_ERROR_MASK << ffi::GSS_C_ROUTINE_ERROR_OFFSET;
        self.major & routine == ffi::GSS_S_NO_CRED
    }

    fn show(f: &mut fmt::Formatter<'_>, code: OM_uint32, kind: std::ffi::c_int) -> fmt::Result {
        let mut message_context: OM_uint32 = 0;
        loop {
            let mut minor: OM_uint32 = 0;
            let mut text = Buffer::empty();
            // SAFETY: `text` is an empty buffer the library fills and `Buffer`
            // releases; the mechanism is the default (null); `message_context`
            // carries the position across the calls for one code, as it should.
            let major = unsafe {
                ffi::gss_display_status(
                    &mut minor,
                    code,
                    kind,
                    ptr::null(),
                    &mut message_context,
                    &mut text.0,
                )
            };
            if major != ffi::GSS_S_COMPLETE && major != ffi::GSS_S_CONTINUE_NEEDED {
                let which = if kind == ffi::GSS_C_GSS_CODE {
                    "Major"
                } else {
                    "Minor"
                };
                return write!(f, "unknown GSSAPI({which}) error code({code})");
            }
            let text = String::from_utf8_lossy(&text);
            if kind == ffi::GSS_C_GSS_CODE {
                write!(f, "{text}")?;
            } else {
                write!(f, " ({text})")?;
            }
            if message_context == 0 {
                return Ok(());
            }
        }
    }
}

impl fmt::Display for GssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        GssError::show(f, self.major, ffi::GSS_C_GSS_CODE)?;
        GssError::show(f, self.minor, ffi::GSS_C_MECH_CODE)
    }
}

impl std::error::Error for GssError {}

/// Whether `major` is a routine or calling error (the supplementary bits, such as
/// a duplicate token, are not errors by themselves).
fn failed(major: OM_uint32) -> bool {
    major
        & ((ffi::GSS_C_CALLING_ERROR_MASK << ffi::GSS_C_CALLING_ERROR_OFFSET)
            | (ffi::GSS_C_ROUTINE_ERROR_MASK << ffi::GSS_C_ROUTINE_ERROR_OFFSET))
        != 0
}

/// `Ok` for `GSS_S_COMPLETE` alone: where a supplementary bit (a duplicate, old,
/// out-of-sequence or gap token) must fail the call too.
fn complete(major: OM_uint32, minor: OM_uint32) -> Result<(), GssError> {
    if major == ffi::GSS_S_COMPLETE {
        Ok(())
    } else {
        Err(GssError { major, minor })
    }
}

/// `Ok` unless `major` is a routine or calling error.
fn no_error(major: OM_uint32, minor: OM_uint32) -> Result<(), GssError> {
    if failed(major) {
        Err(GssError { major, minor })
    } else {
        Ok(())
    }
}

/// A `gss_OID_desc` of static DER bytes, for a call that only reads it.
fn oid(bytes: &'static [u8]) -> ffi::gss_OID_desc {
    ffi::gss_OID_desc {
        length: bytes.len() as OM_uint32,
        elements: bytes.as_ptr() as *mut c_void,
    }
}

/// A `gss_buffer_desc` over `bytes`, for a call that only reads it.
fn borrowed(bytes: &[u8]) -> ffi::gss_buffer_desc {
    ffi::gss_buffer_desc {
        length: bytes.len(),
        value: bytes.as_ptr() as *mut c_void,
    }
}

/// A buffer the library allocated, released with `gss_release_buffer`.
pub(crate) struct Buffer(ffi::gss_buffer_desc);

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Buffer({} bytes)", self.len())
    }
}

// SAFETY: the buffer is plain memory the library allocated and only this value
// refers to; any thread may read or release it.
unsafe impl Send for Buffer {}

impl Buffer {
    fn empty() -> Buffer {
        Buffer(ffi::gss_buffer_desc {
            length: 0,
            value: ptr::null_mut(),
        })
    }
}

impl std::ops::Deref for Buffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.0.value.is_null() || self.0.length == 0 {
            return &[];
        }
        // SAFETY: the library filled `value` with `length` bytes that live until
        // the buffer is released, which only `Drop` does.
        unsafe { std::slice::from_raw_parts(self.0.value.cast::<u8>(), self.0.length) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if !self.0.value.is_null() {
            let mut minor = 0;
            // SAFETY: the buffer was filled by the library and is released once.
            unsafe { ffi::gss_release_buffer(&mut minor, &mut self.0) };
        }
    }
}

/// A GSSAPI name, released with `gss_release_name`.
pub(crate) struct Name(ffi::gss_name_t);

// SAFETY: MIT's names are immutable once made; guise calls only functions that
// read them, from any thread, and releases each once.
unsafe impl Send for Name {}
// SAFETY: as above: shared use only reads the name.
unsafe impl Sync for Name {}

impl Drop for Name {
    fn drop(&mut self) {
        if !self.0.is_null() {
            let mut minor = 0;
            // SAFETY: the name was made by the library and is released once.
            unsafe { ffi::gss_release_name(&mut minor, &mut self.0) };
        }
    }
}

impl Name {
    /// `gss_import_name`: `text` as a name of type `kind` (an OID such as
    /// [`GSS_C_NT_HOSTBASED_SERVICE`]).
    pub(crate) fn import(text: &[u8], kind: &'static [u8]) -> Result<Name, GssError> {
        let (mut minor, mut name) = (0, ptr::null_mut());
        let (buffer, kind) = (borrowed(text), oid(kind));
        // SAFETY: `buffer` and `kind` point to bytes alive for the call, only
        // read; `name` is an out pointer whose ownership passes to `Name`.
        let major = unsafe { ffi::gss_import_name(&mut minor, &buffer, &kind, &mut name) };
        complete(major, minor)?;
        Ok(Name(name))
    }

    /// `gss_display_name`: the name's text (usually UTF-8, not always).
    pub(crate) fn display(&self) -> Result<Buffer, GssError> {
        let (mut minor, mut out, mut kind) = (0, Buffer::empty(), ptr::null_mut());
        // SAFETY: `self.0` is a live name; `out` is an empty buffer `Buffer`
        // releases; the name type is a pointer to the library's static OID,
        // not kept.
        let major = unsafe { ffi::gss_display_name(&mut minor, self.0, &mut out.0, &mut kind) };
        complete(major, minor)?;
        Ok(out)
    }

    /// `gss_get_name_attribute`: the first value of the name attribute `attr`
    /// (`urn:mspac:logon-info`, a buffer of the ticket's PAC) and whether the
    /// mechanism authenticated it (for a PAC: its server checksum verified
    /// with the service's key). `None` when the name has no such attribute.
    pub(crate) fn attribute(&self, attr: &str) -> Result<Option<(Vec<u8>, bool)>, GssError> {
        let mut attr_buf = ffi::gss_buffer_desc {
            length: attr.len(),
            value: attr.as_ptr().cast_mut().cast(),
        };
        let (mut minor, mut authenticated, mut complete_flag, mut more) = (0, 0, 0, -1);
        let (mut value, mut display) = (Buffer::empty(), Buffer::empty());
        // SAFETY: `self.0` is a live name; `attr_buf` points to `attr`'s bytes,
        // only read; `value` and `display` are empty buffers the library fills
        // and `Buffer` releases; `more` is -1, asking for the first value.
        let major = unsafe {
            ffi::gss_get_name_attribute(
                &mut minor,
                self.0,
                &mut attr_buf,
                &mut authenticated,
                &mut complete_flag,
                &mut value.0,
                &mut display.0,
                &mut more,
            )
        };
        let routine = ffi::GSS_C_ROUTINE_ERROR_MASK << ffi::GSS_C_ROUTINE_ERROR_OFFSET;
        if major & routine == ffi::GSS_S_UNAVAILABLE {
            return Ok(None);
        }
        complete(major, minor)?;
        Ok(Some((value.to_vec(), authenticated != 0)))
    }

    /// `gss_localname`: the local account the name maps to under `mech`'s rules
    /// (krb5's `auth_to_local`).
    pub(crate) fn local_name(&self, mech: &'static [u8]) -> Result<Buffer, GssError> {
        let (mut minor, mut out, mech) = (0, Buffer::empty(), oid(mech));
        // SAFETY: `self.0` is a live name, `mech` points to static bytes, only
        // read; `out` is an empty buffer `Buffer` releases.
        let major = unsafe { ffi::gss_localname(&mut minor, self.0, &mech, &mut out.0) };
        complete(major, minor)?;
        Ok(out)
    }
}

/// A credential handle, released with `gss_release_cred` when the last clone
/// goes.
#[derive(Clone)]
pub(crate) struct Cred(Arc<CredHandle>);

struct CredHandle(ffi::gss_cred_id_t);

// SAFETY: MIT's credential handles lock what they change; guise shares them
// between threads only to read them or to start contexts with them, and
// releases each once (the last `Arc`).
unsafe impl Send for CredHandle {}
// SAFETY: as above.
unsafe impl Sync for CredHandle {}

impl Drop for CredHandle {
    fn drop(&mut self) {
        if !self.0.is_null() {
            let mut minor = 0;
            // SAFETY: the handle was made by the library and is released once.
            unsafe { ffi::gss_release_cred(&mut minor, &mut self.0) };
        }
    }
}

impl Cred {
    /// Takes ownership of a handle the library made (nothing else may release
    /// it).
    fn own(handle: ffi::gss_cred_id_t) -> Cred {
        Cred(Arc::new(CredHandle(handle)))
    }

    /// `gss_inquire_cred`: whose credentials they are.
    pub(crate) fn name(&self) -> Result<Name, GssError> {
        let (mut minor, mut name) = (0, ptr::null_mut());
        // SAFETY: the handle is live; only the name is asked for (the other out
        // pointers are null), and its ownership passes to `Name`, also on
        // failure (a null name is never released).
        let major = unsafe {
            ffi::gss_inquire_cred(
                &mut minor,
                self.0.0,
                &mut name,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let name = Name(name);
        no_error(major, minor)?;
        Ok(name)
    }

    /// `gss_store_cred_into`: copies the credentials, for initiating, into the
    /// credential cache `ccache` (`TYPE:residual`), replacing what it held; the
    /// process's default cache is left alone.
    pub(crate) fn store_into(&self, ccache: &str) -> Result<(), GssError> {
        let ccache = CString::new(ccache).map_err(|_| GssError {
            major: (2 << ffi::GSS_C_ROUTINE_ERROR_OFFSET) | (1 << ffi::GSS_C_CALLING_ERROR_OFFSET),
            minor: 0,
        })?;
        let mut element = ffi::gss_key_value_element_desc {
            key: c"ccache".as_ptr(),
            value: ccache.as_ptr(),
        };
        let store = ffi::gss_key_value_set_desc {
            count: 1,
            elements: &mut element,
        };
        let mut minor = 0;
        // SAFETY: the handle is live; `store` points to `element`, whose strings
        // live for the call and are only read; no mechanism (null: all) and no
        // report of what was stored (null out pointers).
        let major = unsafe {
            ffi::gss_store_cred_into(
                &mut minor,
                self.0.0,
                ffi::GSS_C_INITIATE,
                ptr::null(),
                1,
                0,
                &store,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        complete(major, minor)
    }

    /// The service that holds these credentials for a client, if they are
    /// S4U2Proxy credentials (`gss_inquire_cred_by_oid` with
    /// `GSS_KRB5_GET_CRED_IMPERSONATOR`): its name's bytes, or `None` for a
    /// client's own credentials.
    pub(crate) fn proxy(&self) -> Result<Option<Vec<u8>>, GssError> {
        let (mut minor, mut set, what) = (
            0,
            ptr::null_mut::<ffi::gss_buffer_set_desc>(),
            oid(ffi::GSS_KRB5_GET_CRED_IMPERSONATOR),
        );
        // SAFETY: the handle is live, `what` points to static bytes, only read;
        // `set` is an out pointer released below.
        let major = unsafe { ffi::gss_inquire_cred_by_oid(&mut minor, self.0.0, &what, &mut set) };
        let first = if set.is_null() {
            None
        } else {
            // SAFETY: the library made `set`: `count` buffers at `elements`, each
            // of `length` bytes at `value`, alive until it is released below.
            let first = unsafe {
                let set = &*set;
                (set.count > 0 && !set.elements.is_null()).then(|| {
                    let b = &*set.elements;
                    if b.value.is_null() || b.length == 0 {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(b.value.cast::<u8>(), b.length).to_vec()
                    }
                })
            };
            let mut ignored = 0;
            // SAFETY: `set` was made by the library and is released once.
            unsafe { ffi::gss_release_buffer_set(&mut ignored, &mut set) };
            first
        };
        no_error(major, minor)?;
        Ok(first)
    }
}

/// The state of a context's handshake.
#[derive(Debug)]
enum State {
    Started,
    Failed(GssError),
    Complete,
}

/// A security context (`gss_ctx_id_t`), deleted with `gss_delete_sec_context`:
/// the acceptor's side ([`SecurityContext::accepting`]) or the initiator's
/// ([`SecurityContext::initiating`]), stepped through the handshake, then sealing and
/// unsealing messages.
pub(crate) struct SecurityContext {
    handle: ffi::gss_ctx_id_t,
    state: State,
    /// The acceptor's credentials, or the initiator's target and what it asks for.
    side: Side,
    /// The flags the last step reported.
    flags: CtxFlags,
    /// Credentials the initiator delegated (acceptor only), until taken.
    delegated: Option<Cred>,
}

enum Side {
    Accepting(Cred),
    Initiating {
        target: Name,
        flags: CtxFlags,
        mech: &'static [u8],
    },
}

// SAFETY: a context is used by one thread at a time (every call takes `&mut self`
// or runs while the owner holds it; MIT forbids only concurrent calls on one
// context), so it may move between threads.
unsafe impl Send for SecurityContext {}

impl Drop for SecurityContext {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            let mut minor = 0;
            // SAFETY: the context was made by the library and is deleted once; no
            // output token is asked for (null).
            unsafe { ffi::gss_delete_sec_context(&mut minor, &mut self.handle, ptr::null_mut()) };
        }
    }
}

impl SecurityContext {
    /// An acceptor's context with the service credentials `cred`.
    pub(crate) fn accepting(cred: Cred) -> SecurityContext {
        SecurityContext::new(Side::Accepting(cred))
    }

    /// An initiator's context to `target` with the calling thread's default
    /// credentials, asking for `flags`, with the mechanism `mech` only.
    pub(crate) fn initiating(
        target: Name,
        flags: CtxFlags,
        mech: &'static [u8],
    ) -> SecurityContext {
        SecurityContext::new(Side::Initiating {
            target,
            flags,
            mech,
        })
    }

    fn new(side: Side) -> SecurityContext {
        SecurityContext {
            handle: ptr::null_mut(),
            state: State::Started,
            side,
            flags: CtxFlags::empty(),
            delegated: None,
        }
    }

    /// One step of the handshake: `token` is what the peer sent (`None` only for
    /// an initiator's first step). Returns the token to send back, if any. Once
    /// the context failed, the same error; once complete, `None`.
    pub(crate) fn step(&mut self, token: Option<&[u8]>) -> Result<Option<Buffer>, GssError> {
        match self.state {
            State::Started => {}
            State::Failed(e) => return Err(e),
            State::Complete => return Ok(None),
        }
        let (mut minor, mut out, mut flags) = (0, Buffer::empty(), 0);
        let input = token.map(borrowed);
        let input_ptr: *const ffi::gss_buffer_desc = input.as_ref().map_or(ptr::null(), |b| b);
        let major = match &self.side {
            Side::Accepting(cred) => {
                let empty = borrowed(&[]);
                let mut delegated: ffi::gss_cred_id_t = ptr::null_mut();
                // SAFETY: `self.handle` is null (a new context) or the one this
                // call made before, updated in place; the credentials are live;
                // the input token's bytes live for the call, only read; no channel
                // bindings, name or mechanism asked for (null); `out` is released
                // by `Buffer`; a delegated credential passes to `Cred` below.
                let major = unsafe {
                    ffi::gss_accept_sec_context(
                        &mut minor,
                        &mut self.handle,
                        cred.0.0,
                        if input_ptr.is_null() {
                            &empty
                        } else {
                            input_ptr
                        },
                        ptr::null_mut(),
                        ptr::null_mut(),
                        ptr::null_mut(),
                        &mut out.0,
                        &mut flags,
                        ptr::null_mut(),
                        &mut delegated,
                    )
                };
                if !delegated.is_null() {
                    let same = self.delegated.as_ref().is_some_and(|d| d.0.0 == delegated);
                    if !same {
                        self.delegated = Some(Cred::own(delegated));
                    }
                }
                major
            }
            Side::Initiating {
                target,
                flags: wanted,
                mech,
            } => {
                let mech = oid(mech);
                // SAFETY: the default credentials (null); `self.handle` is null or
                // the one made by the previous step; the target name is live; `mech`
                // and the input token point to bytes alive for the call, only read;
                // no channel bindings, actual mechanism or time asked for (null);
                // `out` is released by `Buffer`.
                unsafe {
                    ffi::gss_init_sec_context(
                        &mut minor,
                        ptr::null_mut(),
                        &mut self.handle,
                        target.0,
                        &mech,
                        wanted.bits(),
                        ffi::GSS_C_INDEFINITE,
                        ptr::null_mut(),
                        input_ptr,
                        ptr::null_mut(),
                        &mut out.0,
                        &mut flags,
                        ptr::null_mut(),
                    )
                }
            }
        };
        self.flags |= CtxFlags::from_bits_retain(flags);
        if failed(major) {
            let e = GssError { major, minor };
            self.state = State::Failed(e);
            return Err(e);
        }
        if major & ffi::GSS_S_CONTINUE_NEEDED != 0 {
            return Ok(Some(out));
        }
        self.state = State::Complete;
        Ok((!out.is_empty()).then_some(out))
    }

    /// Whether the handshake is complete.
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// The credentials the initiator delegated (acceptor only), taken.
    pub(crate) fn take_delegated_cred(&mut self) -> Option<Cred> {
        self.delegated.take()
    }

    /// The ticket's top-level AD-IF-RELEVANT authorization data elements, as
    /// they are, verified or not (`gss_inquire_sec_context_by_oid` with
    /// `GSS_KRB5_EXTRACT_AUTHZ_DATA_FROM_SEC_CONTEXT_OID` and type 1): where an
    /// Active Directory KDC puts the PAC.
    pub(crate) fn ticket_if_relevant_data(&self) -> Result<Vec<Vec<u8>>, GssError> {
        let (mut minor, mut set, what) = (
            0,
            ptr::null_mut::<ffi::gss_buffer_set_desc>(),
            oid(ffi::GSS_KRB5_EXTRACT_AD_IF_RELEVANT),
        );
        // SAFETY: `self.handle` is this (established) context's live handle,
        // `what` points to static bytes, only read; `set` is an out pointer
        // released below.
        let major = unsafe {
            ffi::gss_inquire_sec_context_by_oid(&mut minor, self.handle, &what, &mut set)
        };
        let mut all = Vec::new();
        if !set.is_null() {
            // SAFETY: the library made `set`: `count` buffers at `elements`, each
            // of `length` bytes at `value`, alive until it is released below.
            unsafe {
                let s = &*set;
                if !s.elements.is_null() {
                    for b in std::slice::from_raw_parts(s.elements, s.count) {
                        all.push(if b.value.is_null() || b.length == 0 {
                            Vec::new()
                        } else {
                            std::slice::from_raw_parts(b.value.cast::<u8>(), b.length).to_vec()
                        });
                    }
                }
            }
            let mut ignored = 0;
            // SAFETY: `set` was made by the library and is released once.
            unsafe { ffi::gss_release_buffer_set(&mut ignored, &mut set) };
        }
        complete(major, minor)?;
        Ok(all)
    }

    /// `gss_inquire_context` for what the non-null pointers ask.
    fn inquire(
        &self,
        source: *mut ffi::gss_name_t,
        target: *mut ffi::gss_name_t,
        mech: *mut *mut ffi::gss_OID_desc,
        flags: *mut OM_uint32,
    ) -> Result<(), GssError> {
        let mut minor = 0;
        // SAFETY: the handle is the context's (null before the first step, which
        // the library reports as an error); the out pointers are null or point to
        // the caller's variables, which take ownership of any name made.
        let major = unsafe {
            ffi::gss_inquire_context(
                &mut minor,
                self.handle,
                source,
                target,
                ptr::null_mut(),
                mech,
                flags,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        no_error(major, minor)
    }

    /// The context's flags, as the library reports them now.
    pub(crate) fn flags(&self) -> Result<CtxFlags, GssError> {
        let mut flags = 0;
        self.inquire(
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut flags,
        )?;
        Ok(CtxFlags::from_bits_retain(flags))
    }

    /// The DER bytes of the context's mechanism.
    pub(crate) fn mechanism(&self) -> Result<Vec<u8>, GssError> {
        let mut mech: *mut ffi::gss_OID_desc = ptr::null_mut();
        self.inquire(ptr::null_mut(), ptr::null_mut(), &mut mech, ptr::null_mut())?;
        if mech.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: the library returned a pointer to an OID it keeps (static, never
        // released by the caller): `length` bytes at `elements`.
        Ok(unsafe {
            let mech = &*mech;
            if mech.elements.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(mech.elements.cast::<u8>(), mech.length as usize)
                    .to_vec()
            }
        })
    }

    /// The initiator's name.
    pub(crate) fn source_name(&self) -> Result<Name, GssError> {
        let mut name = ptr::null_mut();
        let result = self.inquire(&mut name, ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        let name = Name(name);
        result.map(|()| name)
    }

    /// The acceptor's name.
    pub(crate) fn target_name(&self) -> Result<Name, GssError> {
        let mut name = ptr::null_mut();
        let result = self.inquire(ptr::null_mut(), &mut name, ptr::null_mut(), ptr::null_mut());
        let name = Name(name);
        result.map(|()| name)
    }

    /// `gss_wrap` with confidentiality: `message` sealed (encrypted and
    /// integrity-protected).
    pub(crate) fn wrap(&mut self, message: &[u8]) -> Result<Buffer, GssError> {
        let (mut minor, mut out, input) = (0, Buffer::empty(), borrowed(message));
        let mut sealed: std::ffi::c_int = 0;
        // SAFETY: the handle is the context's; `input` points to `message`, alive
        // for the call and only read; `out` is released by `Buffer`; `sealed` is
        // an out int.
        let major = unsafe {
            ffi::gss_wrap(
                &mut minor,
                self.handle,
                1,
                ffi::GSS_C_QOP_DEFAULT,
                &input,
                &mut sealed,
                &mut out.0,
            )
        };
        complete(major, minor)?;
        confidential(sealed)?;
        Ok(out)
    }

    /// `gss_unwrap`: the message sealed in `token`. Any supplementary status (a
    /// duplicate, old, early or late token) is an error.
    pub(crate) fn unwrap(&mut self, token: &[u8]) -> Result<Buffer, GssError> {
        let (mut minor, mut out, input) = (0, Buffer::empty(), borrowed(token));
        let mut sealed: std::ffi::c_int = 0;
        // SAFETY: the handle is the context's; `input` points to `token`, alive
        // for the call and only read; `out` is released by `Buffer`; `sealed` is
        // an out int; the QOP is not asked (null).
        let major = unsafe {
            ffi::gss_unwrap(
                &mut minor,
                self.handle,
                &input,
                &mut out.0,
                &mut sealed,
                ptr::null_mut(),
            )
        };
        complete(major, minor)?;
        // A peer's token with integrity only (its data readable on the wire) is
        // refused, as the context promised confidentiality.
        confidential(sealed)?;
        Ok(out)
    }
}

/// An error unless `conf_state` says the message was encrypted
/// (`GSS_S_BAD_QOP`: the protection asked for was not given).
fn confidential(conf_state: std::ffi::c_int) -> Result<(), GssError> {
    if conf_state == 0 {
        return Err(GssError {
            major: 14 << ffi::GSS_C_ROUTINE_ERROR_OFFSET,
            minor: 0,
        });
    }
    Ok(())
}

/// Destroys the credential cache `name` (a memory cache, whose contents would
/// otherwise live as long as the process). Returns the krb5 error code on failure.
pub(crate) fn destroy_ccache(name: &CStr) -> Result<(), i32> {
    let mut context: ffi::krb5_context = ptr::null_mut();
    // SAFETY: `context` is an out pointer; on success it is freed below, once.
    let code = unsafe { ffi::krb5_init_context(&mut context) };
    if code != 0 {
        return Err(code);
    }
    let mut cache: ffi::krb5_ccache = ptr::null_mut();
    // SAFETY: `context` is valid; `name` is NUL-terminated and lives for the
    // call; `cache` is an out pointer, consumed by krb5_cc_destroy below.
    let mut code = unsafe { ffi::krb5_cc_resolve(context, name.as_ptr(), &mut cache) };
    if code == 0 {
        // SAFETY: `cache` was resolved on `context` just above; krb5_cc_destroy
        // closes it whatever it returns, so it is not used again.
        code = unsafe { ffi::krb5_cc_destroy(context, cache) };
    }
    // SAFETY: `context` was made by krb5_init_context above and nothing holds it.
    unsafe { ffi::krb5_free_context(context) };
    if code != 0 { Err(code) } else { Ok(()) }
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
    let name = principal
        .map(|p| Name::import(p.to_bytes(), GSS_KRB5_NT_PRINCIPAL_NAME))
        .transpose()?;
    let mut elements = vec![ffi::gss_key_value_element_desc {
        key: c"keytab".as_ptr(),
        value: keytab.as_ptr(),
    }];
    if let Some(rcache) = rcache {
        elements.push(ffi::gss_key_value_element_desc {
            key: c"rcache".as_ptr(),
            value: rcache.as_ptr(),
        });
    }
    if let Some(ccache) = initiate {
        elements.push(ffi::gss_key_value_element_desc {
            key: c"client_keytab".as_ptr(),
            value: keytab.as_ptr(),
        });
        elements.push(ffi::gss_key_value_element_desc {
            key: c"ccache".as_ptr(),
            value: ccache.as_ptr(),
        });
    }
    let store = ffi::gss_key_value_set_desc {
        count: elements.len() as OM_uint32,
        elements: elements.as_mut_ptr(),
    };
    let usage = if initiate.is_some() {
        ffi::GSS_C_BOTH
    } else {
        ffi::GSS_C_ACCEPT
    };
    // The krb5 mechanism alone: not IAKERB (whose acceptor relays KDC traffic
    // for unauthenticated clients) nor SPNEGO.
    let mut mech = oid(GSS_MECH_KRB5);
    let mechs = ffi::gss_OID_set_desc {
        count: 1,
        elements: &mut mech,
    };
    let (mut minor, mut cred) = (0, ptr::null_mut());
    // SAFETY: the name is null (any principal) or the one imported above, alive
    // for the call; `mechs` points to `mech`, which points to a static OID's
    // bytes, all only read; `store` points to `elements`, whose strings live for
    // the call; `cred` is an out pointer whose ownership passes to `Cred` below;
    // the actual mechanisms and time are not asked for (null).
    let major = unsafe {
        ffi::gss_acquire_cred_from(
            &mut minor,
            name.as_ref().map_or(ptr::null_mut(), |n| n.0),
            ffi::GSS_C_INDEFINITE,
            &mechs,
            usage,
            &store,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    no_error(major, minor)?;
    Ok(Cred::own(cred))
}

/// Sets the calling thread's default credential cache for GSSAPI (`None`: back to
/// the process's default, `KRB5CCNAME` or the system's).
pub(crate) fn set_thread_ccache(name: Option<&CStr>) -> Result<(), GssError> {
    let mut minor = 0;
    // SAFETY: `name` is null or a NUL-terminated string that lives for the call
    // (MIT copies it); the previous name is not asked for (null).
    let major = unsafe {
        ffi::gss_krb5_ccache_name(
            &mut minor,
            name.map_or(ptr::null(), CStr::as_ptr),
            ptr::null_mut(),
        )
    };
    no_error(major, minor)
}

#[cfg(test)]
mod tests;
