//! SSSD's SID lookups (`libsss_nss_idmap.so.0`), loaded when first needed where
//! it is installed: a host joined to an Active Directory domain with SSSD has
//! it. Nothing is linked at build time.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

type SidByIdFn = unsafe extern "C" fn(u32, *mut *mut c_char, *mut c_int) -> c_int;

struct Lib {
    by_uid: SidByIdFn,
    by_gid: SidByIdFn,
}

fn lib() -> Option<&'static Lib> {
    static LIB: OnceLock<Option<Lib>> = OnceLock::new();
    LIB.get_or_init(load).as_ref()
}

fn load() -> Option<Lib> {
    // SAFETY: dlopen of a library by its soname; its initializers only set up
    // its own state. RTLD_LOCAL keeps its symbols from others. Never closed.
    let handle = unsafe {
        libc::dlopen(
            c"libsss_nss_idmap.so.0".as_ptr(),
            libc::RTLD_NOW | libc::RTLD_LOCAL,
        )
    };
    if handle.is_null() {
        return None;
    }
    let symbol = |name: &CStr| -> Option<SidByIdFn> {
        // SAFETY: dlsym on a live handle (never closed) with a NUL-terminated name.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        // SAFETY: the symbol is the libsss_nss_idmap function of that name, whose
        // C signature (sss_nss_idmap.h: `int f(uint32_t id, char **sid, enum
        // sss_id_type *type)`) is the type it is read as.
        (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, SidByIdFn>(p) })
    };
    Some(Lib {
        by_uid: symbol(c"sss_nss_getsidbyuid")?,
        by_gid: symbol(c"sss_nss_getsidbygid")?,
    })
}

/// Whether the library is installed (loaded).
pub(crate) fn installed() -> bool {
    lib().is_some()
}

/// What SSSD answered (the SID of an id of the type asked for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The SID, as text.
    Sid(String),
    /// SSSD has no SID for the id (`ENOENT`): not one of its domains' ids.
    None,
}

/// `ENOENT`.
const ENOENT: c_int = 2;

/// `enum sss_id_type`: `SSS_ID_TYPE_UID`, `SSS_ID_TYPE_GID`, `SSS_ID_TYPE_BOTH`.
const UID: c_int = 1;
const GID: c_int = 2;
const BOTH: c_int = 3;

/// Asks `f` for the SID of `id`, which must be of type `want` (or both).
/// SSSD says `ENOENT` both for an id it does not have and when it does not
/// run: the caller tells them apart.
fn ask(f: SidByIdFn, id: u32, want: c_int) -> Result<Answer, c_int> {
    let mut sid: *mut c_char = std::ptr::null_mut();
    let mut kind: c_int = 0;
    // SAFETY: an id and places for a string SSSD allocates with malloc and a
    // type it fills.
    let r = unsafe { f(id, &mut sid, &mut kind) };
    let text = (!sid.is_null()).then(|| {
        // SAFETY: a NUL-terminated string SSSD returned, copied before it is
        // freed.
        let text = unsafe { CStr::from_ptr(sid) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: memory the library allocated with malloc, freed once.
        unsafe { libc::free(sid.cast()) };
        text
    });
    match (r, text) {
        (0, Some(text)) if kind == want || kind == BOTH => Ok(Answer::Sid(text)),
        (0, _) | (ENOENT, _) => Ok(Answer::None),
        (e, _) => Err(e),
    }
}

/// `sss_nss_getsidbyuid`: `None` without the library; else SSSD's answer, or
/// the errno of a failure (SSSD not running, a failing domain controller).
pub(crate) fn sid_by_uid(uid: u32) -> Option<Result<Answer, c_int>> {
    lib().map(|l| ask(l.by_uid, uid, UID))
}

/// `sss_nss_getsidbygid`, as [`sid_by_uid`].
pub(crate) fn sid_by_gid(gid: u32) -> Option<Result<Answer, c_int>> {
    lib().map(|l| ask(l.by_gid, gid, GID))
}
