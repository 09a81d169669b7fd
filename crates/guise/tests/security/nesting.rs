//! Attack: a peer sends a security descriptor or a condition nested so deep that
//! reading, printing or checking it overflows the stack and kills the server (a
//! library server parsing a client's SDDL). Every reader of peer input bounds its
//! nesting ([`MAX_CONDITION_DEPTH`]) and answers `ERROR_INVALID_ACL`.
//!
//! These run on the test harness's threads (2 MiB of stack): a stack overflow
//! aborts the whole test process, so a missing bound fails honestly.

use guise::ErrorKind;
use guise::security::conditional::{self, MAX_CONDITION_DEPTH, MAX_LIST_DEPTH};
use guise::security::{
    AccessMask, Ace, AceFlags, AceType, Acl, GenericMapping, SecurityDescriptor, sddl,
};

use super::{enabled, sid, token};

/// An SDDL descriptor whose one callback ACE holds `condition`.
fn callback_sddl(condition: &str) -> String {
    format!("O:BAG:BAD:(XA;;FR;;;WD;{condition})")
}

fn refused(r: guise::Result<impl std::fmt::Debug>, what: &str) {
    match r {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidAcl, "{what}: {e:?}"),
        Ok(v) => panic!("{what}: accepted: {v:?}"),
    }
}

/// The binary form of a condition: `artx`, the local attribute `a`, then
/// `tail` (postfix tokens), zero-padded.
fn binary(tail: &[u8]) -> Vec<u8> {
    let mut out = b"artx".to_vec();
    out.push(0xf8);
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&u16::from(b'a').to_le_bytes());
    out.extend_from_slice(tail);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// A composite literal nested `n` deep around the integer 1.
fn nested_composite(n: usize) -> Vec<u8> {
    let mut lit = vec![0x04];
    lit.extend_from_slice(&1i64.to_le_bytes());
    lit.extend_from_slice(&[3, 2]);
    for _ in 0..n {
        let mut outer = vec![0x50];
        outer.extend_from_slice(&(lit.len() as u32).to_le_bytes());
        outer.extend_from_slice(&lit);
        lit = outer;
    }
    lit
}

#[test]
fn sddl_nesting_10000_deep_is_refused_not_a_crash() {
    for n in [10_000, 1_000_000] {
        let parens = format!("{}a{}", "(".repeat(n), ")".repeat(n));
        refused(sddl::parse(&callback_sddl(&parens), None), "parentheses");
        let nots = format!("({}a)", "!".repeat(n));
        refused(sddl::parse(&callback_sddl(&nots), None), "negations");
        let lists = format!("(a == {}1{})", "{".repeat(n), "}".repeat(n));
        refused(sddl::parse(&callback_sddl(&lists), None), "lists");
        let chain = format!("(a{})", " || a".repeat(n));
        refused(sddl::parse(&callback_sddl(&chain), None), "a chain of ||");
        refused(
            conditional::parse_condition(&parens, None),
            "the condition alone",
        );
    }
}

#[test]
fn binary_condition_nesting_10000_deep_is_refused_not_a_crash() {
    for n in [10_000, 1_000_000] {
        let nots = binary(&vec![0xa2; n]);
        refused(conditional::condition_to_string(&nots, None), "negations");
        // A chain: a a || a || ... (each `a` then `||`).
        let mut tail = Vec::new();
        for _ in 0..n.min(100_000) {
            tail.extend_from_slice(&[0xf8, 2, 0, 0, 0, b'a', 0, 0xa1]);
        }
        refused(
            conditional::condition_to_string(&binary(&tail), None),
            "a chain",
        );
    }
    let mut composite = b"artx".to_vec();
    composite.extend_from_slice(&nested_composite(10_000));
    composite.resize(composite.len().next_multiple_of(4), 0);
    refused(
        conditional::condition_to_string(&composite, None),
        "composites",
    );
}

/// The binary descriptor a peer sends: a callback ACE (at most 64 KiB) whose
/// condition is 60,000 negations deep. Reading it is fine (the condition is
/// data); printing it is refused; AccessCheck, which never evaluates a
/// condition, answers without reading it.
#[test]
fn binary_descriptor_with_a_60000_deep_condition_is_refused_not_a_crash() {
    let deep = binary(&vec![0xa2; 60_000]);
    let mut ace = Ace::new(
        AceType::AccessAllowedCallback,
        AceFlags::empty(),
        AccessMask::from_raw(0x1),
        sid("S-1-1-0"),
    );
    ace.application_data = deep;
    let mut sd = sddl::parse("O:BAG:BAD:", None).unwrap();
    sd.dacl = Some(Acl::new(vec![ace]));
    let bin = sd.to_self_relative().unwrap();
    let read = SecurityDescriptor::from_self_relative(&bin).unwrap();
    refused(sddl::to_string(&read, None), "printing");
    let t = token("S-1-5-21-1-2-3-1001", &[enabled(sid("S-1-1-0"))], &[]);
    let mapping = GenericMapping::FILE;
    let check = guise::security::access_check(&read, &t, AccessMask::from_raw(0x1), &mapping)
        .expect("AccessCheck answers");
    assert!(!check.is_allowed(), "an allow callback ACE never grants");
}

/// The bound is the documented one, the same for text and binary: a condition
/// exactly [`MAX_CONDITION_DEPTH`] deep reads, prints and reads back; one
/// deeper is refused in both forms.
#[test]
fn the_depth_bound_is_the_same_for_text_and_binary() {
    // `a` is 1 deep; each `!` adds one.
    let at_limit = format!("({}a)", "!".repeat(MAX_CONDITION_DEPTH - 1));
    let data = conditional::parse_condition(&at_limit, None).expect("at the limit");
    let printed = conditional::condition_to_string(&data, None).expect("prints");
    assert_eq!(conditional::parse_condition(&printed, None).unwrap(), data);
    let sd = sddl::parse(&callback_sddl(&printed), None).unwrap();
    assert_eq!(
        sddl::parse(&sddl::to_string(&sd, None).unwrap(), None).unwrap(),
        sd
    );
    let over = format!("({}a)", "!".repeat(MAX_CONDITION_DEPTH));
    refused(conditional::parse_condition(&over, None), "one over, text");
    refused(
        conditional::condition_to_string(&binary(&vec![0xa2; MAX_CONDITION_DEPTH]), None),
        "one over, binary",
    );
    // A chain of 255 `||` (256 deep) is a condition a person may write.
    let chain = format!("(a{})", " || a".repeat(MAX_CONDITION_DEPTH - 1));
    let data = conditional::parse_condition(&chain, None).expect("a long chain");
    let printed = conditional::condition_to_string(&data, None).unwrap();
    assert_eq!(conditional::parse_condition(&printed, None).unwrap(), data);
    // Lists: MAX_LIST_DEPTH deep in either form, not one more.
    let lists = |n: usize| format!("(a == {}1{})", "{".repeat(n), "}".repeat(n));
    let data = conditional::parse_condition(&lists(MAX_LIST_DEPTH), None).unwrap();
    let printed = conditional::condition_to_string(&data, None).unwrap();
    assert_eq!(conditional::parse_condition(&printed, None).unwrap(), data);
    refused(
        conditional::parse_condition(&lists(MAX_LIST_DEPTH + 1), None),
        "lists one over",
    );
    let mut over = b"artx".to_vec();
    over.extend_from_slice(&nested_composite(MAX_LIST_DEPTH + 1));
    over.resize(over.len().next_multiple_of(4), 0);
    refused(
        conditional::condition_to_string(&over, None),
        "composites one over",
    );
}

/// The deepest condition the bound lets through reads, prints and reads back on
/// a thread of 256 KiB of stack (an eighth of a tokio worker's): the bound is low
/// enough for any server thread, even unoptimized.
#[test]
fn the_deepest_allowed_condition_fits_a_small_stack() {
    let worst = [
        format!("({}a)", "!".repeat(MAX_CONDITION_DEPTH - 1)),
        format!("(a{})", " || a".repeat(MAX_CONDITION_DEPTH - 1)),
        format!(
            "(a == {}1{})",
            "{".repeat(MAX_LIST_DEPTH),
            "}".repeat(MAX_LIST_DEPTH)
        ),
        format!(
            "{}a{}",
            "(".repeat(MAX_CONDITION_DEPTH),
            ")".repeat(MAX_CONDITION_DEPTH)
        ),
    ];
    let ok = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            for text in worst {
                let sd = sddl::parse(&callback_sddl(&text), None).expect("at the limit");
                let printed = sddl::to_string(&sd, None).expect("prints");
                assert_eq!(sddl::parse(&printed, None).unwrap(), sd);
            }
        })
        .unwrap()
        .join();
    assert!(ok.is_ok());
}
