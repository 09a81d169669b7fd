//! The hand-written binding against MIT's headers: the C compiler reports the
//! sizes, field offsets and constants of `gssapi/gssapi.h`, `gssapi_ext.h` and
//! `gssapi_krb5.h`, and each must equal what [`super::ffi`] says.

use std::mem::{offset_of, size_of};

use super::ffi::*;
use super::*;

/// Compiles and runs a C program that prints `name=value` lines for MIT's
/// definitions.
fn from_c() -> std::collections::HashMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("abi.c");
    let program = dir.path().join("abi");
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <gssapi/gssapi.h>\n\
         #include <gssapi/gssapi_ext.h>\n#include <gssapi/gssapi_krb5.h>\n\
         #define V(n, e) printf(\"%s=%llu\\n\", n, (unsigned long long)(e))\n\
         #define OID(n, o) do { for (OM_uint32 i = 0; i < (o)->length; i++) \
         printf(\"%s.%u=%u\\n\", n, i, ((unsigned char *)(o)->elements)[i]); \
         V(n \".len\", (o)->length); } while (0)\nint main(void) {\n",
    );
    for ty in [
        "OM_uint32",
        "gss_qop_t",
        "gss_cred_usage_t",
        "gss_name_t",
        "gss_cred_id_t",
        "gss_ctx_id_t",
        "gss_buffer_desc",
        "gss_OID_desc",
        "gss_OID_set_desc",
        "gss_buffer_set_desc",
        "gss_key_value_element_desc",
        "gss_key_value_set_desc",
    ] {
        c += &format!("V(\"sizeof {ty}\", sizeof({ty}));\n");
    }
    for (ty, field) in [
        ("gss_buffer_desc", "length"),
        ("gss_buffer_desc", "value"),
        ("gss_OID_desc", "length"),
        ("gss_OID_desc", "elements"),
        ("gss_OID_set_desc", "count"),
        ("gss_OID_set_desc", "elements"),
        ("gss_buffer_set_desc", "count"),
        ("gss_buffer_set_desc", "elements"),
        ("gss_key_value_element_desc", "key"),
        ("gss_key_value_element_desc", "value"),
        ("gss_key_value_set_desc", "count"),
        ("gss_key_value_set_desc", "elements"),
    ] {
        c += &format!("V(\"{ty}.{field}\", offsetof({ty}, {field}));\n");
    }
    for constant in [
        "GSS_C_BOTH",
        "GSS_C_INITIATE",
        "GSS_C_ACCEPT",
        "GSS_C_DELEG_FLAG",
        "GSS_C_MUTUAL_FLAG",
        "GSS_C_REPLAY_FLAG",
        "GSS_C_SEQUENCE_FLAG",
        "GSS_C_CONF_FLAG",
        "GSS_C_INTEG_FLAG",
        "GSS_C_ANON_FLAG",
        "GSS_C_PROT_READY_FLAG",
        "GSS_C_TRANS_FLAG",
        "GSS_C_DELEG_POLICY_FLAG",
        "GSS_C_GSS_CODE",
        "GSS_C_MECH_CODE",
        "GSS_C_QOP_DEFAULT",
        "GSS_C_INDEFINITE",
        "GSS_C_CALLING_ERROR_OFFSET",
        "GSS_C_ROUTINE_ERROR_OFFSET",
        "GSS_C_CALLING_ERROR_MASK",
        "GSS_C_ROUTINE_ERROR_MASK",
        "GSS_S_COMPLETE",
        "GSS_S_CONTINUE_NEEDED",
        "GSS_S_NO_CRED",
    ] {
        c += &format!("V(\"{constant}\", {constant});\n");
    }
    for (name, expr) in [
        ("GSS_C_NT_HOSTBASED_SERVICE", "GSS_C_NT_HOSTBASED_SERVICE"),
        ("GSS_KRB5_NT_PRINCIPAL_NAME", "GSS_KRB5_NT_PRINCIPAL_NAME"),
        ("GSS_MECH_KRB5", "gss_mech_krb5"),
    ] {
        c += &format!("OID(\"{name}\", {expr});\n");
    }
    c += "return 0; }\n";
    std::fs::write(&source, c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = std::process::Command::new(&cc)
        .arg(&source)
        .arg("-o")
        .arg(&program)
        .arg("-lgssapi_krb5")
        .output()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(
        built.status.success(),
        "compiling against MIT's headers (libkrb5-dev): {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out = std::process::Command::new(&program).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once('=').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn the_binding_matches_mits_headers() {
    let c = from_c();
    let mut mismatches = Vec::new();
    let mut check = |name: &str, rust: u64| match c.get(name) {
        Some(&v) if v == rust => {}
        other => mismatches.push(format!("{name}: C {other:?}, Rust {rust}")),
    };
    macro_rules! sizes {
        ($($t:ty),*) => { $(check(concat!("sizeof ", stringify!($t)), size_of::<$t>() as u64);)* };
    }
    sizes!(
        OM_uint32,
        gss_qop_t,
        gss_cred_usage_t,
        gss_name_t,
        gss_cred_id_t,
        gss_ctx_id_t,
        gss_buffer_desc,
        gss_OID_desc,
        gss_OID_set_desc,
        gss_buffer_set_desc,
        gss_key_value_element_desc,
        gss_key_value_set_desc
    );
    macro_rules! offsets {
        ($($t:ident . $f:ident),*) => {
            $(check(concat!(stringify!($t), ".", stringify!($f)), offset_of!($t, $f) as u64);)*
        };
    }
    offsets!(
        gss_buffer_desc.length,
        gss_buffer_desc.value,
        gss_OID_desc.length,
        gss_OID_desc.elements,
        gss_OID_set_desc.count,
        gss_OID_set_desc.elements,
        gss_buffer_set_desc.count,
        gss_buffer_set_desc.elements,
        gss_key_value_element_desc.key,
        gss_key_value_element_desc.value,
        gss_key_value_set_desc.count,
        gss_key_value_set_desc.elements
    );
    macro_rules! constants {
        ($($c:ident),*) => { $(check(stringify!($c), $c as u64);)* };
    }
    constants!(
        GSS_C_BOTH,
        GSS_C_INITIATE,
        GSS_C_ACCEPT,
        GSS_C_DELEG_FLAG,
        GSS_C_MUTUAL_FLAG,
        GSS_C_REPLAY_FLAG,
        GSS_C_SEQUENCE_FLAG,
        GSS_C_CONF_FLAG,
        GSS_C_INTEG_FLAG,
        GSS_C_ANON_FLAG,
        GSS_C_PROT_READY_FLAG,
        GSS_C_TRANS_FLAG,
        GSS_C_DELEG_POLICY_FLAG,
        GSS_C_GSS_CODE,
        GSS_C_MECH_CODE,
        GSS_C_QOP_DEFAULT,
        GSS_C_INDEFINITE,
        GSS_C_CALLING_ERROR_OFFSET,
        GSS_C_ROUTINE_ERROR_OFFSET,
        GSS_C_CALLING_ERROR_MASK,
        GSS_C_ROUTINE_ERROR_MASK,
        GSS_S_COMPLETE,
        GSS_S_CONTINUE_NEEDED,
        GSS_S_NO_CRED
    );
    for (name, bytes) in [
        ("GSS_C_NT_HOSTBASED_SERVICE", GSS_C_NT_HOSTBASED_SERVICE),
        ("GSS_KRB5_NT_PRINCIPAL_NAME", GSS_KRB5_NT_PRINCIPAL_NAME),
        ("GSS_MECH_KRB5", GSS_MECH_KRB5),
    ] {
        check(&format!("{name}.len"), bytes.len() as u64);
        for (i, &b) in bytes.iter().enumerate() {
            check(&format!("{name}.{i}"), u64::from(b));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// The impersonator OID is not in MIT's public headers: it is the krb5
/// mechanism's own arc, 5.14, under the mechanism OID.
#[test]
fn the_impersonator_oid_extends_the_krb5_mechanism() {
    assert_eq!(
        &GSS_KRB5_GET_CRED_IMPERSONATOR[..GSS_MECH_KRB5.len()],
        GSS_MECH_KRB5
    );
    assert_eq!(
        &GSS_KRB5_GET_CRED_IMPERSONATOR[GSS_MECH_KRB5.len()..],
        [5, 14]
    );
}

#[test]
fn a_name_round_trips_and_a_status_reads_as_mit_words_it() {
    let name = Name::import(b"guise@files.example.com", GSS_C_NT_HOSTBASED_SERVICE).unwrap();
    assert_eq!(&*name.display().unwrap(), b"guise@files.example.com");
    let e = GssError {
        major: GSS_S_NO_CRED,
        minor: 0,
    };
    assert!(e.no_credentials());
    let text = e.to_string();
    assert!(text.contains("No credentials were supplied"), "{text}");
    // GSS_S_BAD_MECH, and GSS_S_UNAUTHORIZED (15, whose bits hold 7's), are
    // other errors; a supplementary bit beside NO_CRED leaves it NO_CRED.
    for (major, no_cred) in [
        (1 << 16, false),
        (15 << 16, false),
        (GSS_S_NO_CRED | 1, true),
    ] {
        assert_eq!(
            GssError { major, minor: 0 }.no_credentials(),
            no_cred,
            "{major:#x}"
        );
    }
}

#[test]
fn a_context_that_failed_fails_again_and_a_new_one_has_no_flags() {
    // A target in no realm this machine knows: the first step fails (no
    // credentials, or no KDC), and the context stays failed.
    let target = Name::import(
        b"guise/nowhere.invalid@NOWHERE.INVALID",
        GSS_KRB5_NT_PRINCIPAL_NAME,
    )
    .unwrap();
    let mut ctx = SecurityContext::initiating(target, CtxFlags::GSS_C_MUTUAL_FLAG, GSS_MECH_KRB5);
    assert!(ctx.flags().is_err(), "no context yet");
    // No credential cache exists at this name (nothing can be made in /proc).
    let first = crate::sys::gss::set_thread_ccache(Some(c"FILE:/proc/guise-no-such-cache"))
        .and_then(|()| ctx.step(None).map(|_| ()));
    let e = first.expect_err("no credentials: the step fails");
    assert_eq!(ctx.step(None).unwrap_err().major, e.major);
    assert!(!ctx.is_complete());
    set_thread_ccache(None).unwrap();
}

/// Issue 22: flags in messages are their GSSAPI names, not Rust debug text.
#[test]
fn context_flags_are_named() {
    let flags = CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_CONF_FLAG;
    assert_eq!(flags.names(), "GSS_C_MUTUAL_FLAG | GSS_C_CONF_FLAG");
    assert_eq!(CtxFlags::empty().names(), "none");
    assert!(!flags.names().contains("CtxFlags"));
}
