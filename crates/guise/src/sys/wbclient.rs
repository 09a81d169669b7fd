//! Samba's winbind client library (`libwbclient.so.0`), loaded when first needed
//! where it is installed: a host joined to an Active Directory domain with winbind
//! has it, and any other host goes on without it. Nothing is linked at build
//! time, so guise builds and runs where Samba is absent.
//!
//! Each call holds one lock: libwbclient's global context is one connection to
//! winbindd. Everything it returns is copied out and freed with `wbcFreeMemory`
//! before the lock is released.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::{Mutex, OnceLock};

/// `WBC_MAXSUBAUTHS`.
pub(crate) const MAX_SUB_AUTHS: usize = 15;

/// `struct wbcDomainSid`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WbcDomainSid {
    pub(crate) sid_rev_num: u8,
    pub(crate) num_auths: u8,
    pub(crate) id_auth: [u8; 6],
    pub(crate) sub_auths: [u32; MAX_SUB_AUTHS],
}

/// `struct wbcInterfaceDetails`.
#[repr(C)]
struct WbcInterfaceDetails {
    interface_version: u32,
    winbind_version: *mut c_char,
    winbind_separator: c_char,
    netbios_name: *mut c_char,
    netbios_domain: *mut c_char,
    dns_domain: *mut c_char,
}

/// `struct wbcDomainInfo` (libwbclient 0.15).
#[repr(C)]
struct WbcDomainInfo {
    short_name: *mut c_char,
    dns_name: *mut c_char,
    sid: WbcDomainSid,
    domain_flags: u32,
    trust_flags: u32,
    trust_type: u32,
    trust_routing: *mut c_char,
}

/// `WBC_ERR_*`, as guise tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WbcError {
    /// `WBC_ERR_WINBIND_NOT_AVAILABLE`: no winbindd answers (or no library).
    NotAvailable,
    /// `WBC_ERR_DOMAIN_NOT_FOUND`, `WBC_ERR_UNKNOWN_USER`, `WBC_ERR_UNKNOWN_GROUP`,
    /// `WBC_ERR_INVALID_SID`: winbind knows no such name, SID or mapping.
    NotFound,
    /// Any other failure, by its code.
    Failed(c_int),
}

const WBC_ERR_SUCCESS: c_int = 0;
const WBC_ERR_INVALID_SID: c_int = 4;
const WBC_ERR_WINBIND_NOT_AVAILABLE: c_int = 6;
const WBC_ERR_DOMAIN_NOT_FOUND: c_int = 7;
const WBC_ERR_UNKNOWN_USER: c_int = 11;
const WBC_ERR_UNKNOWN_GROUP: c_int = 12;

fn check(code: c_int) -> Result<(), WbcError> {
    match code {
        WBC_ERR_SUCCESS => Ok(()),
        WBC_ERR_WINBIND_NOT_AVAILABLE => Err(WbcError::NotAvailable),
        WBC_ERR_DOMAIN_NOT_FOUND
        | WBC_ERR_UNKNOWN_USER
        | WBC_ERR_UNKNOWN_GROUP
        | WBC_ERR_INVALID_SID => Err(WbcError::NotFound),
        other => Err(WbcError::Failed(other)),
    }
}

type PingFn = unsafe extern "C" fn() -> c_int;
type GetpwnamFn = unsafe extern "C" fn(*const c_char, *mut *mut libc::passwd) -> c_int;
type UidToSidFn = unsafe extern "C" fn(libc::uid_t, *mut WbcDomainSid) -> c_int;
type LookupUserSidsFn =
    unsafe extern "C" fn(*const WbcDomainSid, bool, *mut u32, *mut *mut WbcDomainSid) -> c_int;
type SidToGidFn = unsafe extern "C" fn(*const WbcDomainSid, *mut libc::gid_t) -> c_int;
type GidToSidFn = unsafe extern "C" fn(libc::gid_t, *mut WbcDomainSid) -> c_int;
type LookupSidFn = unsafe extern "C" fn(
    *const WbcDomainSid,
    *mut *mut c_char,
    *mut *mut c_char,
    *mut c_int,
) -> c_int;
type InterfaceDetailsFn = unsafe extern "C" fn(*mut *mut WbcInterfaceDetails) -> c_int;
type DomainInfoFn = unsafe extern "C" fn(*const c_char, *mut *mut WbcDomainInfo) -> c_int;
type FreeFn = unsafe extern "C" fn(*mut c_void);

/// The library's entry points guise calls.
struct Lib {
    ping: PingFn,
    getpwnam: GetpwnamFn,
    uid_to_sid: UidToSidFn,
    lookup_user_sids: LookupUserSidsFn,
    sid_to_gid: SidToGidFn,
    gid_to_sid: GidToSidFn,
    lookup_sid: LookupSidFn,
    interface_details: InterfaceDetailsFn,
    domain_info: DomainInfoFn,
    free: FreeFn,
}

/// The library, loaded once (never unloaded), or `None` where it is not installed.
fn lib() -> Option<&'static Mutex<Lib>> {
    static LIB: OnceLock<Option<Mutex<Lib>>> = OnceLock::new();
    LIB.get_or_init(|| load().map(Mutex::new)).as_ref()
}

fn load() -> Option<Lib> {
    // SAFETY: dlopen of a library by its soname; libwbclient's initializers only
    // set up its own state. RTLD_LOCAL keeps its symbols from others.
    let handle = unsafe {
        libc::dlopen(
            c"libwbclient.so.0".as_ptr(),
            libc::RTLD_NOW | libc::RTLD_LOCAL,
        )
    };
    if handle.is_null() {
        return None;
    }
    macro_rules! symbol {
        ($name:literal, $ty:ty) => {{
            // SAFETY: dlsym on a live handle (never closed) with a NUL-terminated name.
            let p = unsafe { libc::dlsym(handle, $name.as_ptr()) };
            if p.is_null() {
                return None;
            }
            // SAFETY: the symbol is the libwbclient function of that name, whose C
            // signature (wbclient.h, interface 0.15) is the type it is read as.
            unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
        }};
    }
    Some(Lib {
        ping: symbol!(c"wbcPing", PingFn),
        getpwnam: symbol!(c"wbcGetpwnam", GetpwnamFn),
        uid_to_sid: symbol!(c"wbcUidToSid", UidToSidFn),
        lookup_user_sids: symbol!(c"wbcLookupUserSids", LookupUserSidsFn),
        sid_to_gid: symbol!(c"wbcSidToGid", SidToGidFn),
        gid_to_sid: symbol!(c"wbcGidToSid", GidToSidFn),
        lookup_sid: symbol!(c"wbcLookupSid", LookupSidFn),
        interface_details: symbol!(c"wbcInterfaceDetails", InterfaceDetailsFn),
        domain_info: symbol!(c"wbcDomainInfo", DomainInfoFn),
        free: symbol!(c"wbcFreeMemory", FreeFn),
    })
}

/// Whether winbindd has answered this process once: a host where it runs.
static ANSWERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether winbindd has answered this process before (then a later "not
/// available" is winbindd gone, not a host without it).
pub(crate) fn answered_before() -> bool {
    ANSWERED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs `f` with the library locked; [`WbcError::NotAvailable`] without it.
fn with<T>(f: impl FnOnce(&Lib) -> Result<T, WbcError>) -> Result<T, WbcError> {
    let lib = lib().ok_or(WbcError::NotAvailable)?;
    let lib = lib
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let r = f(&lib);
    if !matches!(r, Err(WbcError::NotAvailable)) {
        ANSWERED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    r
}

/// A C string winbind returned, copied (`None` for a null pointer).
///
/// # Safety
/// `p` is null or a NUL-terminated string that lives for the call.
unsafe fn copied(p: *const c_char) -> Option<String> {
    // SAFETY: the caller's promise.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Whether the library is installed (loaded).
pub(crate) fn installed() -> bool {
    lib().is_some()
}

/// `wbcPing`: whether winbindd answers.
pub(crate) fn ping() -> Result<(), WbcError> {
    // SAFETY: wbcPing takes nothing and returns a code.
    with(|l| check(unsafe { (l.ping)() }))
}

/// `wbcGetpwnam`: the uid winbind gives the account `name`.
pub(crate) fn uid_of(name: &str) -> Result<u32, WbcError> {
    let name = CString::new(name).map_err(|_| WbcError::NotFound)?;
    with(|l| {
        let mut pw: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: a NUL-terminated name and a place for the result, which winbind
        // allocates on success.
        check(unsafe { (l.getpwnam)(name.as_ptr(), &mut pw) })?;
        if pw.is_null() {
            return Err(WbcError::NotFound);
        }
        // SAFETY: pw points to the passwd winbind allocated; read, then freed once.
        let uid = unsafe { (*pw).pw_uid };
        // SAFETY: memory wbcGetpwnam allocated, freed with wbcFreeMemory once.
        unsafe { (l.free)(pw.cast()) };
        Ok(uid)
    })
}

/// `wbcUidToSid`: the SID of the account with this uid.
pub(crate) fn uid_to_sid(uid: u32) -> Result<WbcDomainSid, WbcError> {
    with(|l| {
        let mut sid = WbcDomainSid::default();
        // SAFETY: a uid and a place for the SID.
        check(unsafe { (l.uid_to_sid)(uid, &mut sid) })?;
        Ok(sid)
    })
}

/// `wbcLookupUserSids(sid, domain_groups_only = true)`: the SIDs of the domain
/// groups the user is a member of, nested groups included (the token groups
/// the domain controller computes), as `wbinfo --user-domgroups` lists them.
pub(crate) fn user_domain_groups(user: &WbcDomainSid) -> Result<Vec<WbcDomainSid>, WbcError> {
    with(|l| {
        let mut n: u32 = 0;
        let mut sids: *mut WbcDomainSid = std::ptr::null_mut();
        // SAFETY: a SID, and places for a count and an array winbind allocates.
        check(unsafe { (l.lookup_user_sids)(user, true, &mut n, &mut sids) })?;
        if sids.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: winbind returned an array of `n` SIDs at `sids`.
        let out = unsafe { std::slice::from_raw_parts(sids, n as usize) }.to_vec();
        // SAFETY: memory wbcLookupUserSids allocated, freed once.
        unsafe { (l.free)(sids.cast()) };
        Ok(out)
    })
}

/// `wbcSidToGid`: the gid of a group SID, where winbind maps one.
pub(crate) fn sid_to_gid(sid: &WbcDomainSid) -> Result<u32, WbcError> {
    with(|l| {
        let mut gid: libc::gid_t = 0;
        // SAFETY: a SID and a place for the gid.
        check(unsafe { (l.sid_to_gid)(sid, &mut gid) })?;
        Ok(gid)
    })
}

/// `wbcGidToSid`: the SID winbind maps a gid to (a domain group, or a BUILTIN
/// alias such as Users).
pub(crate) fn gid_to_sid(gid: u32) -> Result<WbcDomainSid, WbcError> {
    with(|l| {
        let mut sid = WbcDomainSid::default();
        // SAFETY: a gid and a place for the SID.
        check(unsafe { (l.gid_to_sid)(gid, &mut sid) })?;
        Ok(sid)
    })
}

/// `WBC_SID_NAME_DOM_GRP`, `WBC_SID_NAME_ALIAS`, `WBC_SID_NAME_WKN_GRP`: the
/// types of a SID that is a group.
pub(crate) const GROUP_TYPES: [c_int; 3] = [2, 4, 5];

/// `wbcLookupSid`: the domain, name and type (`enum wbcSidType`) of a SID.
pub(crate) fn lookup_sid_typed(sid: &WbcDomainSid) -> Result<(String, String, c_int), WbcError> {
    with(|l| {
        let (mut domain, mut name): (*mut c_char, *mut c_char) =
            (std::ptr::null_mut(), std::ptr::null_mut());
        let mut kind: c_int = 0;
        // SAFETY: a SID and places for two strings and a type winbind fills.
        check(unsafe { (l.lookup_sid)(sid, &mut domain, &mut name, &mut kind) })?;
        // SAFETY: strings winbind returned (or null), copied before they are freed.
        let (d, n) = unsafe { (copied(domain), copied(name)) };
        // SAFETY: each freed once; wbcFreeMemory takes null.
        unsafe {
            (l.free)(domain.cast());
            (l.free)(name.cast());
        }
        Ok((d.unwrap_or_default(), n.unwrap_or_default(), kind))
    })
}

/// `wbcLookupSid`: the domain and name of a SID.
pub(crate) fn lookup_sid(sid: &WbcDomainSid) -> Result<(String, String), WbcError> {
    lookup_sid_typed(sid).map(|(d, n, _)| (d, n))
}

/// The domain this host is joined to: its NetBIOS name, DNS name and SID
/// (`wbcInterfaceDetails`, then `wbcDomainInfo`).
pub(crate) fn joined_domain() -> Result<(String, String, WbcDomainSid), WbcError> {
    with(|l| {
        let mut details: *mut WbcInterfaceDetails = std::ptr::null_mut();
        // SAFETY: a place for the details winbind allocates.
        check(unsafe { (l.interface_details)(&mut details) })?;
        if details.is_null() {
            return Err(WbcError::NotFound);
        }
        // SAFETY: the struct winbind returned; its string is copied, then freed.
        let short = unsafe { copied((*details).netbios_domain) };
        // SAFETY: memory wbcInterfaceDetails allocated, freed once.
        unsafe { (l.free)(details.cast()) };
        let short = short.filter(|s| !s.is_empty()).ok_or(WbcError::NotFound)?;
        let c_short = CString::new(short.as_str()).map_err(|_| WbcError::NotFound)?;
        let mut info: *mut WbcDomainInfo = std::ptr::null_mut();
        // SAFETY: a NUL-terminated domain name and a place for the info.
        check(unsafe { (l.domain_info)(c_short.as_ptr(), &mut info) })?;
        if info.is_null() {
            return Err(WbcError::NotFound);
        }
        // SAFETY: the struct winbind returned: its fields are copied, then freed.
        let (dns, sid) = unsafe { (copied((*info).dns_name), (*info).sid) };
        // SAFETY: memory wbcDomainInfo allocated, freed once.
        unsafe { (l.free)(info.cast()) };
        Ok((short, dns.unwrap_or_default(), sid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The structures are those of wbclient.h, field by field, where its
    /// development files are installed (libwbclient-dev): a C program prints
    /// their sizes and offsets, compared with Rust's.
    #[test]
    fn the_structures_match_wbclient_h() {
        let header = std::path::Path::new("/usr/include/samba-4.0/wbclient.h");
        if !header.exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "wbclient.h is missing (libwbclient-dev) and CI is set"
            );
            eprintln!("skipped: wbclient.h (libwbclient-dev) is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("layout.c");
        std::fs::write(
            &c,
            r#"#include <stdio.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <wbclient.h>
int main(void) {
    printf("%zu %zu %zu %zu\n", sizeof(struct wbcDomainSid), offsetof(struct wbcDomainSid, num_auths),
           offsetof(struct wbcDomainSid, id_auth), offsetof(struct wbcDomainSid, sub_auths));
    printf("%zu %zu %zu %zu\n", sizeof(struct wbcInterfaceDetails),
           offsetof(struct wbcInterfaceDetails, winbind_separator),
           offsetof(struct wbcInterfaceDetails, netbios_domain),
           offsetof(struct wbcInterfaceDetails, dns_domain));
    printf("%zu %zu %zu %zu\n", sizeof(struct wbcDomainInfo), offsetof(struct wbcDomainInfo, dns_name),
           offsetof(struct wbcDomainInfo, sid), offsetof(struct wbcDomainInfo, trust_routing));
    printf("%d %d %d %d %d %d %d\n", WBC_ERR_SUCCESS, WBC_ERR_INVALID_SID, WBC_ERR_WINBIND_NOT_AVAILABLE,
           WBC_ERR_DOMAIN_NOT_FOUND, WBC_ERR_UNKNOWN_USER, WBC_ERR_UNKNOWN_GROUP, WBC_MAXSUBAUTHS);
    return 0;
}
"#,
        )
        .unwrap();
        let exe = dir.path().join("layout");
        let built = std::process::Command::new("cc")
            .args(["-I/usr/include/samba-4.0", "-o"])
            .arg(&exe)
            .arg(&c)
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let out = std::process::Command::new(&exe).output().unwrap();
        let c_side = String::from_utf8(out.stdout).unwrap();
        use std::mem::{offset_of, size_of};
        let rust_side = format!(
            "{} {} {} {}\n{} {} {} {}\n{} {} {} {}\n{} {} {} {} {} {} {}\n",
            size_of::<WbcDomainSid>(),
            offset_of!(WbcDomainSid, num_auths),
            offset_of!(WbcDomainSid, id_auth),
            offset_of!(WbcDomainSid, sub_auths),
            size_of::<WbcInterfaceDetails>(),
            offset_of!(WbcInterfaceDetails, winbind_separator),
            offset_of!(WbcInterfaceDetails, netbios_domain),
            offset_of!(WbcInterfaceDetails, dns_domain),
            size_of::<WbcDomainInfo>(),
            offset_of!(WbcDomainInfo, dns_name),
            offset_of!(WbcDomainInfo, sid),
            offset_of!(WbcDomainInfo, trust_routing),
            WBC_ERR_SUCCESS,
            WBC_ERR_INVALID_SID,
            WBC_ERR_WINBIND_NOT_AVAILABLE,
            WBC_ERR_DOMAIN_NOT_FOUND,
            WBC_ERR_UNKNOWN_USER,
            WBC_ERR_UNKNOWN_GROUP,
            MAX_SUB_AUTHS,
        );
        assert_eq!(c_side, rust_side);
    }
}
