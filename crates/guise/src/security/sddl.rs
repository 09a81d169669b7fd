//! SDDL, the Security Descriptor Definition Language: parse and print.
//!
//! [`parse`] reads every part of Microsoft's "Security Descriptor String Format",
//! "ACE Strings" and "SID Strings": owner (`O:`), group (`G:`), DACL (`D:`) and
//! SACL (`S:`) in any order; ACL flags `P`, `AI`, `AR` and `NO_ACCESS_CONTROL`;
//! ACE types, ACE flags, rights aliases and numeric masks (hex `0x..`, octal `0..`,
//! decimal), object GUIDs, and SIDs as aliases or `S-1-...`. [`to_string`] prints the
//! canonical form Windows' `ConvertSecurityDescriptorToStringSecurityDescriptor`
//! prints.
//!
//! Domain-relative aliases (`DA`, `DU`, `LA`, `EA`, ...) need the domain's SID, given
//! explicitly (on a host joined to a domain, [`crate::directory::joined_domain`]
//! gives its SID; the `guise` command uses it by default). Root-domain aliases (`EA`, `SA`, `PA`,
//! `RO`, `EK`) use the same domain SID.
//!
//! Callback ACEs (`XA`, `XD`, `ZA`, `XU`) take a conditional expression as a seventh
//! field and resource attribute ACEs (`RA`) an attribute; both are read into, and
//! printed from, their binary forms (see [`conditional`]).
//!
//! # Example
//! ```
//! use guise::security::sddl;
//!
//! // Printed in Windows' canonical form: flags and rights as Windows prints them.
//! let sd = sddl::parse("O:S-1-22-1-1000 G:BA D:P(A;OICI;0x1200a9;;;AU)", None)?;
//! assert_eq!(sddl::to_string(&sd, None)?, "O:S-1-22-1-1000G:BAD:P(A;OICI;0x1200a9;;;AU)");
//! # Ok::<(), guise::Error>(())
//! ```

pub use super::alias::{alias_sid, sid_alias};
use super::conditional;
use super::descriptor::{Ace, AceFlags, AceType, Acl, Control, Guid, SecurityDescriptor};
use super::mask::AccessMask;
use crate::error::{Error, ErrorKind, Result};
use crate::sid::Sid;

/// `SDDL_REVISION_1`, the only SDDL revision.
pub const SDDL_REVISION_1: u32 = 1;

/// Rights with a name of their own, in the order the printer tries them.
const RIGHTS: &[(&str, u32)] = &[
    ("GA", 0x1000_0000),
    ("GR", 0x8000_0000),
    ("GW", 0x4000_0000),
    ("GX", 0x2000_0000),
    ("RC", 0x0002_0000),
    ("SD", 0x0001_0000),
    ("WD", 0x0004_0000),
    ("WO", 0x0008_0000),
    ("RP", 0x0000_0010),
    ("WP", 0x0000_0020),
    ("CC", 0x0000_0001),
    ("DC", 0x0000_0002),
    ("LC", 0x0000_0004),
    ("SW", 0x0000_0008),
    ("LO", 0x0000_0080),
    ("DT", 0x0000_0040),
    ("CR", 0x0000_0100),
    ("FA", 0x001F_01FF),
    ("FR", 0x0012_0089),
    ("FW", 0x0012_0116),
    ("FX", 0x0012_00A0),
    ("KA", 0x000F_003F),
    ("KR", 0x0002_0019),
    ("KW", 0x0002_0006),
    ("KX", 0x0002_0019),
    ("NR", 0x0000_0002),
    ("NW", 0x0000_0001),
    ("NX", 0x0000_0004),
];

/// The name of each bit, when a mask is printed bit by bit (`None`: the mask is
/// printed in hex).
const RIGHT_BITS: [Option<&str>; 32] = {
    let mut t = [None; 32];
    t[0] = Some("CC");
    t[1] = Some("DC");
    t[2] = Some("LC");
    t[3] = Some("SW");
    t[4] = Some("RP");
    t[5] = Some("WP");
    t[6] = Some("DT");
    t[7] = Some("LO");
    t[8] = Some("CR");
    t[16] = Some("SD");
    t[17] = Some("RC");
    t[18] = Some("WD");
    t[19] = Some("WO");
    t[28] = Some("GA");
    t[29] = Some("GX");
    t[30] = Some("GW");
    t[31] = Some("GR");
    t
};

const ACE_TYPE_NAMES: &[(&str, AceType)] = &[
    ("A", AceType::AccessAllowed),
    ("D", AceType::AccessDenied),
    ("AU", AceType::SystemAudit),
    ("AL", AceType::SystemAlarm),
    ("OA", AceType::AccessAllowedObject),
    ("OD", AceType::AccessDeniedObject),
    ("OU", AceType::SystemAuditObject),
    ("OL", AceType::SystemAlarmObject),
    ("XA", AceType::AccessAllowedCallback),
    ("XD", AceType::AccessDeniedCallback),
    ("ZA", AceType::AccessAllowedCallbackObject),
    ("XU", AceType::SystemAuditCallback),
    ("ML", AceType::SystemMandatoryLabel),
    ("RA", AceType::SystemResourceAttribute),
    ("SP", AceType::SystemScopedPolicyId),
];

/// ACE flags in the order the printer emits them.
const ACE_FLAG_NAMES: &[(&str, AceFlags)] = &[
    ("OI", AceFlags::OBJECT_INHERIT),
    ("CI", AceFlags::CONTAINER_INHERIT),
    ("NP", AceFlags::NO_PROPAGATE_INHERIT),
    ("IO", AceFlags::INHERIT_ONLY),
    ("ID", AceFlags::INHERITED),
    ("SA", AceFlags::SUCCESSFUL_ACCESS),
    ("FA", AceFlags::FAILED_ACCESS),
];

/// An SDDL syntax error at a byte position (0-based).
fn err(kind: ErrorKind, pos: usize, why: impl std::fmt::Display) -> Error {
    Error::new(kind, format!("SDDL at position {pos}: {why}"))
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\n' || b == b'\r'
}

/// Parses an SDDL string ([`ConvertStringSecurityDescriptorToSecurityDescriptor`]).
/// `domain` is the SID of the domain that domain-relative aliases refer to.
///
/// # Errors
/// An error that names the position and the reason: [`ErrorKind::InvalidParameter`]
/// for the descriptor's structure, [`ErrorKind::InvalidAcl`] for an ACL or ACE,
/// [`ErrorKind::InvalidSid`] for a SID.
///
/// [`ConvertStringSecurityDescriptorToSecurityDescriptor`]: https://learn.microsoft.com/en-us/windows/win32/api/sddl/nf-sddl-convertstringsecuritydescriptortosecuritydescriptorw
#[doc(alias = "ConvertStringSecurityDescriptorToSecurityDescriptor")]
pub fn parse(sddl: &str, domain: Option<&Sid>) -> Result<SecurityDescriptor> {
    let b = sddl.as_bytes();
    if !sddl.is_ascii() {
        let pos = b.iter().position(|c| !c.is_ascii()).unwrap_or(0);
        return Err(err(ErrorKind::InvalidParameter, pos, "non-ASCII character"));
    }
    let mut sd = SecurityDescriptor::default();
    let mut seen = [false; 4];
    let mut pos = 0;
    while pos < b.len() && is_space(b[pos]) {
        pos += 1;
    }
    while pos < b.len() {
        let letter = b[pos];
        if b.get(pos + 1) != Some(&b':') {
            return Err(err(
                ErrorKind::InvalidParameter,
                pos,
                "expected a component: O:, G:, D: or S:",
            ));
        }
        let start = pos + 2;
        // A component runs up to the letter before the next ':'.
        let end = match sddl[start..].find(':') {
            Some(i) => (start + i).saturating_sub(1).max(start),
            None => b.len(),
        };
        let value = &sddl[start..end];
        let slot = match letter {
            b'O' => 0,
            b'G' => 1,
            b'D' => 2,
            b'S' => 3,
            _ => {
                return Err(err(
                    ErrorKind::InvalidParameter,
                    pos,
                    format!("unknown component {:?}", letter as char),
                ));
            }
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(err(
                ErrorKind::InvalidParameter,
                pos,
                format!("component {}: appears twice", letter as char),
            ));
        }
        match letter {
            b'O' => sd.owner = Some(parse_sid(value, start, domain)?),
            b'G' => sd.group = Some(parse_sid(value, start, domain)?),
            b'D' => {
                let (acl, flags) = parse_acl(value, start, domain)?;
                sd.dacl = acl;
                sd.control |= Control::DACL_PRESENT;
                for (f, c) in [
                    (AclFlags::PROTECTED, Control::DACL_PROTECTED),
                    (AclFlags::AUTO_INHERIT_REQ, Control::DACL_AUTO_INHERIT_REQ),
                    (AclFlags::AUTO_INHERITED, Control::DACL_AUTO_INHERITED),
                ] {
                    sd.control.set(c, flags.contains(f));
                }
            }
            _ => {
                let (acl, flags) = parse_acl(value, start, domain)?;
                sd.sacl = acl;
                sd.control |= Control::SACL_PRESENT;
                for (f, c) in [
                    (AclFlags::PROTECTED, Control::SACL_PROTECTED),
                    (AclFlags::AUTO_INHERIT_REQ, Control::SACL_AUTO_INHERIT_REQ),
                    (AclFlags::AUTO_INHERITED, Control::SACL_AUTO_INHERITED),
                ] {
                    sd.control.set(c, flags.contains(f));
                }
            }
        }
        pos = end;
    }
    Ok(sd)
}

/// Parses a SID string: an alias or `S-1-...`, with surrounding white space.
fn parse_sid(value: &str, pos: usize, domain: Option<&Sid>) -> Result<Sid> {
    let lead = value.len() - value.trim_start().len();
    let v = value.trim();
    let at = pos + lead;
    if v.is_empty() {
        return Err(err(ErrorKind::InvalidSid, at, "a SID is missing"));
    }
    if v.starts_with("S-") || v.starts_with("s-") {
        return v
            .parse::<Sid>()
            .map_err(|e| err(ErrorKind::InvalidSid, at, e.message()));
    }
    alias_sid(v, domain).map_err(|e| err(ErrorKind::InvalidSid, at, e.message()))
}

bitflags::bitflags! {
    #[derive(Clone, Copy)]
    struct AclFlags: u8 {
        const PROTECTED = 1;
        const AUTO_INHERIT_REQ = 2;
        const AUTO_INHERITED = 4;
        const NULL = 8;
    }
}

/// Parses an ACL component: flags, then `(ace)` entries. `None` for
/// `NO_ACCESS_CONTROL`.
fn parse_acl(value: &str, pos: usize, domain: Option<&Sid>) -> Result<(Option<Acl>, AclFlags)> {
    let b = value.as_bytes();
    let mut flags = AclFlags::empty();
    let mut i = 0;
    while i < b.len() && b[i] != b'(' {
        let rest = &value[i..];
        let (flag, len) = if rest.starts_with("NO_ACCESS_CONTROL") {
            (AclFlags::NULL, 17)
        } else if rest.starts_with("AI") {
            (AclFlags::AUTO_INHERITED, 2)
        } else if rest.starts_with("AR") {
            (AclFlags::AUTO_INHERIT_REQ, 2)
        } else if rest.starts_with('P') {
            (AclFlags::PROTECTED, 1)
        } else if is_space(b[i]) {
            (AclFlags::empty(), 1)
        } else {
            return Err(err(ErrorKind::InvalidAcl, pos + i, "unknown ACL flag"));
        };
        flags |= flag;
        i += len;
    }
    // Room for every ACE at once (an ACE opens with '('; conditions open more),
    // within what a 64 KiB ACL can hold, so no hostile text reserves more.
    let opening = b[i..].iter().filter(|&&c| c == b'(').count();
    let mut aces = Vec::with_capacity(opening.min(u16::MAX as usize / 16));
    while i < b.len() {
        if is_space(b[i]) {
            i += 1;
            continue;
        }
        if b[i] != b'(' {
            return Err(err(
                ErrorKind::InvalidAcl,
                pos + i,
                "expected '(' to start an ACE",
            ));
        }
        if let Some((ace, close)) = fast_ace(&value[i + 1..], domain) {
            aces.push(ace);
            i += 1 + close + 1;
            continue;
        }
        // The ACE ends at the ')' that closes it; conditions nest parentheses.
        let mut depth = 0usize;
        let mut quoted = false;
        let mut close = None;
        for (j, &c) in b[i..].iter().enumerate().map(|(k, c)| (i + k, c)) {
            match c {
                b'"' => quoted = !quoted,
                b'(' if !quoted => depth += 1,
                b')' if !quoted => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let close = close
            .ok_or_else(|| err(ErrorKind::InvalidAcl, pos + i, "an ACE has no closing ')'"))?;
        aces.push(parse_ace(&value[i + 1..close], pos + i + 1, domain)?);
        i = close + 1;
    }
    if flags.contains(AclFlags::NULL) {
        if !aces.is_empty() {
            return Err(err(
                ErrorKind::InvalidAcl,
                pos,
                "NO_ACCESS_CONTROL cannot have ACEs",
            ));
        }
        return Ok((None, flags));
    }
    Ok((Some(Acl::new(aces)), flags))
}

/// The common ACE, read in one pass: `type;flags;rights;;;sid)` with no white
/// space, no object types, no seventh field, and the SID an alias or `S-1-` with
/// decimal numbers. `None` for anything else, which [`parse_ace`] then reads (and
/// reports, if it is wrong): what this accepts, [`parse_ace`] reads the same way.
/// Returns the ACE and the index of its closing `)` in `text`.
fn fast_ace(text: &str, domain: Option<&Sid>) -> Option<(Ace, usize)> {
    let b = text.as_bytes();
    let semicolon = |from: usize| -> Option<usize> {
        b.get(from..)?
            .iter()
            .position(|&c| c == b';')
            .map(|n| from + n)
    };
    let type_end = semicolon(0)?;
    let ace_type = ACE_TYPE_NAMES
        .iter()
        .find(|(n, _)| n.as_bytes() == &b[..type_end])?
        .1;
    if ace_type.has_application_data() {
        return None;
    }
    let flags_end = semicolon(type_end + 1)?;
    let flag_text = &b[type_end + 1..flags_end];
    if !flag_text.len().is_multiple_of(2) {
        return None;
    }
    let mut flags = AceFlags::empty();
    for pair in flag_text.chunks_exact(2) {
        flags |= ACE_FLAG_NAMES.iter().find(|(n, _)| n.as_bytes() == pair)?.1;
    }
    let rights_end = semicolon(flags_end + 1)?;
    let mask = parse_rights(&text[flags_end + 1..rights_end], 0).ok()?;
    // Two empty object type fields, then the SID up to the ')'.
    let sid_start = rights_end + 3;
    if b.get(rights_end + 1..sid_start)? != b";;" {
        return None;
    }
    let close = sid_start + b[sid_start..].iter().position(|&c| c == b')')?;
    let sid_text = &b[sid_start..close];
    let sid = match sid_text {
        [b'S', b'-', b'1', b'-', numbers @ ..] => Sid::parse_decimal(numbers)?,
        [x, y] if x.is_ascii_alphabetic() && y.is_ascii_alphabetic() => {
            alias_sid(&text[sid_start..close], domain).ok()?
        }
        _ => return None,
    };
    Some((Ace::new(ace_type, flags, mask, sid), close))
}

/// Parses the inside of `( ... )`.
fn parse_ace(text: &str, pos: usize, domain: Option<&Sid>) -> Result<Ace> {
    // At most 7 fields: the seventh (a condition) may hold ';' itself.
    let mut fields: [(usize, &str); 7] = [(0, ""); 7];
    let mut count = 0;
    let mut start = 0;
    for (i, c) in text.bytes().enumerate() {
        if c == b';' && count < 6 {
            fields[count] = (start, &text[start..i]);
            count += 1;
            start = i + 1;
        }
    }
    fields[count] = (start, &text[start..]);
    count += 1;
    let fields = &fields[..count];
    if fields.len() < 6 {
        return Err(err(
            ErrorKind::InvalidAcl,
            pos,
            format!(
                "an ACE has {} fields; it needs 6 separated by ';'",
                fields.len()
            ),
        ));
    }
    // White space may lead each field, and may trail only the SID: "D ;" and
    // "GA ;" are errors, as on Windows.
    let at = |k: usize| pos + fields[k].0 + (fields[k].1.len() - fields[k].1.trim_start().len());
    let field = |k: usize| fields[k].1.trim_start();

    let ace_type = ACE_TYPE_NAMES
        .iter()
        .find(|(n, _)| *n == field(0))
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            err(
                ErrorKind::InvalidAcl,
                at(0),
                format!("unknown ACE type {:?}", field(0)),
            )
        })?;

    let mut flags = AceFlags::empty();
    let f = field(1);
    for chunk in f.as_bytes().chunks(2) {
        let name = std::str::from_utf8(chunk).unwrap_or("");
        let flag = ACE_FLAG_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, fl)| *fl)
            .ok_or_else(|| {
                err(
                    ErrorKind::InvalidAcl,
                    at(1),
                    format!("unknown ACE flag {name:?}"),
                )
            })?;
        flags |= flag;
    }

    let mask = parse_rights(field(2), at(2))?;

    let guid = |k: usize| -> Result<Option<Guid>> {
        let g = field(k);
        if g.is_empty() {
            return Ok(None);
        }
        if !ace_type.is_object() {
            return Err(err(
                ErrorKind::InvalidAcl,
                at(k),
                "only object ACEs carry object types",
            ));
        }
        Guid::parse(g)
            .map(Some)
            .ok_or_else(|| err(ErrorKind::InvalidAcl, at(k), format!("{g:?} is not a GUID")))
    };
    let object_type = guid(3)?;
    let inherited_object_type = guid(4)?;

    // A bad trustee makes the ACE invalid (ERROR_INVALID_ACL), as on Windows.
    let sid = parse_sid(fields[5].1, pos + fields[5].0, domain)
        .map_err(|e| Error::new(ErrorKind::InvalidAcl, e.message().to_owned()))?;

    let mut application_data = Vec::new();
    if fields.len() > 6 && !field(6).trim_end().is_empty() {
        let text = field(6).trim_end();
        let parsed = if ace_type == AceType::SystemResourceAttribute {
            conditional::parse_resource_attribute(text, domain)
        } else if ace_type.is_conditional() {
            conditional::parse_condition(text, domain)
        } else {
            return Err(err(
                ErrorKind::InvalidAcl,
                at(6),
                "this ACE type takes 6 fields",
            ));
        };
        application_data = parsed.map_err(|e| err(ErrorKind::InvalidAcl, at(6), e.message()))?;
    } else if ace_type == AceType::SystemResourceAttribute {
        return Err(err(
            ErrorKind::InvalidAcl,
            pos,
            "a resource attribute ACE needs its attribute",
        ));
    }
    Ok(Ace {
        ace_type,
        flags,
        mask,
        object_type,
        inherited_object_type,
        sid,
        application_data,
    })
}

/// Parses a rights field: items, each a number (`0x` hex, `0` octal or decimal, read
/// as C's `strtoul` with base 0 reads it: up to the first character that cannot
/// continue it) or a two-letter right; the items are OR-ed together. So
/// `GR0xFFFFFFFF`, `0xFFFFFGR` and `RPWP` are all masks.
fn parse_rights(f: &str, pos: usize) -> Result<AccessMask> {
    let b = f.as_bytes();
    let mut mask = 0u32;
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_digit() {
            let (radix, digits_at) = if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
                (16, i + 2)
            } else if b[i] == b'0' {
                (8, i + 1)
            } else {
                (10, i)
            };
            let mut end = digits_at;
            while end < b.len() && (b[end] as char).is_digit(radix) {
                end += 1;
            }
            if radix == 16 && end == digits_at {
                return Err(err(
                    ErrorKind::InvalidAcl,
                    pos + start,
                    "0x without hex digits",
                ));
            }
            let value = if end == digits_at {
                Some(0)
            } else {
                u32::from_str_radix(&f[digits_at..end], radix).ok()
            };
            mask |= value.ok_or_else(|| {
                err(
                    ErrorKind::InvalidAcl,
                    pos + start,
                    format!("{:?} is not a 32-bit access mask", &f[start..end]),
                )
            })?;
            i = end;
            continue;
        }
        let name = f.get(i..i + 2).unwrap_or(&f[i..]);
        let bits = RIGHTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                err(
                    ErrorKind::InvalidAcl,
                    pos + i,
                    format!("unknown right {name:?}"),
                )
            })?;
        mask |= bits;
        i += 2;
    }
    Ok(AccessMask::from_raw(mask))
}

/// Reads an access mask written as SDDL writes rights: a number (`0x` hex, `0` octal,
/// decimal), two-letter rights (`FR`, `RCWD`), or both (`GR0x1`).
///
/// # Errors
/// [`ErrorKind::InvalidAcl`] naming the position of what is not a right.
pub fn parse_access_mask(text: &str) -> Result<AccessMask> {
    if text.is_empty() {
        return Err(err(
            ErrorKind::InvalidParameter,
            0,
            "an access mask is empty",
        ));
    }
    parse_rights(text, 0)
}

/// Prints a descriptor in Windows' canonical SDDL
/// ([`ConvertSecurityDescriptorToStringSecurityDescriptor`] with every part):
/// `O:`, `G:`, `D:`, `S:` in that order, aliases for SIDs that have one.
///
/// # Errors
/// [`ErrorKind::InvalidAcl`] for a callback or resource attribute ACE that carries
/// data SDDL text cannot express here (its binary form is kept intact).
///
/// [`ConvertSecurityDescriptorToStringSecurityDescriptor`]: https://learn.microsoft.com/en-us/windows/win32/api/sddl/nf-sddl-convertsecuritydescriptortostringsecuritydescriptorw
#[doc(alias = "ConvertSecurityDescriptorToStringSecurityDescriptor")]
pub fn to_string(sd: &SecurityDescriptor, domain: Option<&Sid>) -> Result<String> {
    let mut out = String::new();
    if let Some(owner) = &sd.owner {
        out.push_str("O:");
        push_sid(&mut out, owner, domain);
    }
    if let Some(group) = &sd.group {
        out.push_str("G:");
        push_sid(&mut out, group, domain);
    }
    let c = sd.control;
    if sd.dacl.is_some() || c.contains(Control::DACL_PRESENT) {
        out.push_str("D:");
        push_acl(
            &mut out,
            sd.dacl.as_ref(),
            [
                c.contains(Control::DACL_PROTECTED),
                c.contains(Control::DACL_AUTO_INHERIT_REQ),
                c.contains(Control::DACL_AUTO_INHERITED),
            ],
            domain,
        )?;
    }
    if sd.sacl.is_some() || c.contains(Control::SACL_PRESENT) {
        out.push_str("S:");
        push_acl(
            &mut out,
            sd.sacl.as_ref(),
            [
                c.contains(Control::SACL_PROTECTED),
                c.contains(Control::SACL_AUTO_INHERIT_REQ),
                c.contains(Control::SACL_AUTO_INHERITED),
            ],
            domain,
        )?;
    }
    Ok(out)
}

fn push_sid(out: &mut String, sid: &Sid, domain: Option<&Sid>) {
    match sid_alias(sid, domain) {
        Some(alias) => out.push_str(alias),
        None => out.push_str(&sid.to_string()),
    }
}

fn push_acl(
    out: &mut String,
    acl: Option<&Acl>,
    [protected, req, inherited]: [bool; 3],
    domain: Option<&Sid>,
) -> Result<()> {
    if protected {
        out.push('P');
    }
    if req {
        out.push_str("AR");
    }
    if inherited {
        out.push_str("AI");
    }
    let Some(acl) = acl else {
        out.push_str("NO_ACCESS_CONTROL");
        return Ok(());
    };
    for ace in &acl.aces {
        push_ace(out, ace, domain)?;
    }
    Ok(())
}

/// Prints one ACE, `(type;flags;rights;object;inherited object;sid)`.
pub fn ace_to_string(ace: &Ace, domain: Option<&Sid>) -> Result<String> {
    let mut s = String::new();
    push_ace(&mut s, ace, domain)?;
    Ok(s)
}

fn push_ace(out: &mut String, ace: &Ace, domain: Option<&Sid>) -> Result<()> {
    let name = ACE_TYPE_NAMES
        .iter()
        .find(|(_, t)| *t == ace.ace_type)
        .map(|(n, _)| *n)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidAcl,
                format!("{} ACEs have no SDDL form", ace.ace_type.win32_name()),
            )
        })?;
    out.push('(');
    out.push_str(name);
    out.push(';');
    for (n, f) in ACE_FLAG_NAMES {
        if ace.flags.contains(*f) {
            out.push_str(n);
        }
    }
    out.push(';');
    out.push_str(&rights_to_string(ace.mask));
    out.push(';');
    if let Some(g) = ace.object_type {
        out.push_str(&g.to_string());
    }
    out.push(';');
    if let Some(g) = ace.inherited_object_type {
        out.push_str(&g.to_string());
    }
    out.push(';');
    push_sid(out, &ace.sid, domain);
    if !ace.application_data.is_empty() {
        out.push(';');
        if ace.ace_type == AceType::SystemResourceAttribute {
            out.push_str(&conditional::resource_attribute_to_string(
                &ace.application_data,
                domain,
            )?);
        } else {
            out.push_str(&conditional::condition_to_string(
                &ace.application_data,
                domain,
            )?);
        }
    }
    out.push(')');
    Ok(())
}

/// Prints an access mask as Windows does: a right's own name if the mask is exactly
/// one, else the names of its bits if every bit has one, else `0x` hex.
pub fn rights_to_string(mask: AccessMask) -> String {
    let m = mask.bits();
    if m == 0 {
        return String::new();
    }
    if let Some((name, _)) = RIGHTS.iter().find(|(_, v)| *v == m) {
        return (*name).to_owned();
    }
    if (0..32).any(|i| m & (1 << i) != 0 && RIGHT_BITS[i].is_none()) {
        return format!("0x{m:x}");
    }
    (0..32)
        .filter(|i| m & (1 << i) != 0)
        .filter_map(|i| RIGHT_BITS[i])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ACE texts made of pieces that are right, nearly right and wrong.
    fn ace_text() -> impl Strategy<Value = String> {
        let pick = |v: &[&'static str]| prop::sample::select(v.to_vec());
        (
            pick(&[
                "A", "D", "OA", "OD", "AU", "ML", "XA", "XD", "RA", "a", " A", "A ", "Q", "",
            ]),
            pick(&["", "CI", "OICI", "IOID", "SAFA", "C", "CIX", " CI", "ci"]),
            pick(&[
                "",
                "FA",
                "0x1",
                "0X1f",
                "017",
                "42",
                "GR0x1",
                "0x",
                "0xFFFFFFFFF",
                "FR ",
                "ZZ",
                "RPWP",
            ]),
            pick(&[
                ";;",
                ";;",
                ";;",
                ";;",
                ";{01234567-89ab-cdef-0123-456789abcdef};",
                "; ;",
                ";",
            ]),
            pick(&[
                "WD",
                "ba",
                "DA",
                "S-1-5-32-544",
                "S-1-22-2-61100",
                "s-1-1-0",
                "S-1-0x5-1",
                "S-1-5",
                "S-1-5-",
                "S-1-281474976710656-1",
                "S-1-281474976710655-4294967295",
                "S-1-1-4294967296",
                "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15",
                "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
                "WD ",
                " WD",
                "W",
                "",
                "S-2-1-0",
                "S-1-1-0;(x)",
                "S-1-00000000000000000001-0",
            ]),
        )
            .prop_map(|(t, f, r, g, sid)| format!("{t};{f};{r};{g};{sid})"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// What the one-pass reader accepts, the general one reads the same way.
        #[test]
        fn the_fast_ace_reader_agrees_with_the_general_one(text in ace_text()) {
            let domain: Sid = "S-1-5-21-1-2-3".parse().unwrap();
            if let Some((ace, close)) = fast_ace(&text, Some(&domain)) {
                prop_assert_eq!(close, text.len() - 1);
                let general = parse_ace(&text[..close], 0, Some(&domain));
                prop_assert_eq!(general.ok(), Some(ace));
            }
        }
    }

    #[test]
    fn the_fast_ace_reader_takes_the_common_aces() {
        for text in [
            "A;;0x1;;;S-1-22-2-61100)",
            "D;OICI;FA;;;BA)",
            "OA;;RP;;;wd)",
        ] {
            assert!(fast_ace(text, None).is_some(), "{text}");
        }
    }

    fn round(s: &str) -> String {
        to_string(&parse(s, None).unwrap(), None).unwrap()
    }

    #[test]
    fn canonical_output() {
        assert_eq!(round("O:BAG:SYD:(A;;GA;;;WD)"), "O:BAG:SYD:(A;;GA;;;WD)");
        assert_eq!(round("D:(A;;0x1f01ff;;;S-1-1-0)"), "D:(A;;FA;;;WD)");
        assert_eq!(round("D:(A;;RCSD;;;WD)"), "D:(A;;SDRC;;;WD)");
        assert_eq!(round("D:(A;;0x00010001;;;WD)"), "D:(A;;CCSD;;;WD)");
        assert_eq!(round("D:(A;;0x200;;;WD)"), "D:(A;;0x200;;;WD)");
        assert_eq!(round("D:(A;CIOI;KR;;;WD)"), "D:(A;OICI;KR;;;WD)");
        assert_eq!(round("D:NO_ACCESS_CONTROL"), "D:NO_ACCESS_CONTROL");
        assert_eq!(round("D:"), "D:");
        assert_eq!(round("S:AI(AU;FASA;GA;;;WD)"), "S:AI(AU;SAFA;GA;;;WD)");
        assert_eq!(round("G:S-1-5-32-544O:S-1-5-18"), "O:SYG:BA");
        assert_eq!(round("D:(ML;;NW;;;LW)"), "D:(ML;;CC;;;LW)");
    }

    #[test]
    fn numeric_masks() {
        let mask = |s: &str| {
            parse(&format!("D:(A;;{s};;;WD)"), None)
                .unwrap()
                .dacl
                .unwrap()
                .aces[0]
                .mask
                .bits()
        };
        assert_eq!(mask("0x10"), 0x10);
        assert_eq!(mask("0X10"), 0x10);
        assert_eq!(mask("010"), 8);
        assert_eq!(mask("16"), 16);
        assert_eq!(mask("0"), 0);
        assert_eq!(
            mask("08"),
            8,
            "octal 0, then decimal 8, as strtoul reads it"
        );
        assert_eq!(mask("GR0x1"), 0x8000_0001);
        assert_eq!(mask("0xFFFFFGR"), 0x800F_FFFF);
        assert!(parse("D:(A;;0x100000000;;;WD)", None).is_err());
        assert!(parse("D:(A;;0x;;;WD)", None).is_err());
    }

    #[test]
    fn domain_relative_aliases() {
        let dom: Sid = "S-1-5-21-1-2-3".parse().unwrap();
        let sd = parse("O:DAG:DU", Some(&dom)).unwrap();
        assert_eq!(sd.owner.unwrap().to_string(), "S-1-5-21-1-2-3-512");
        assert_eq!(to_string(&sd, Some(&dom)).unwrap(), "O:DAG:DU");
        assert_eq!(
            to_string(&sd, None).unwrap(),
            "O:S-1-5-21-1-2-3-512G:S-1-5-21-1-2-3-513"
        );
        let e = parse("O:DA", None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidSid);
        assert!(e.to_string().contains("domain"), "{e}");
    }

    #[test]
    fn errors_name_the_position() {
        let e = parse("O:BAG:SYD:(A;;QQ;;;WD)", None).unwrap_err();
        assert!(e.to_string().contains("position 14"), "{e}");
        assert!(e.to_string().contains("QQ"), "{e}");
        assert_eq!(
            parse("X:BA", None).unwrap_err().kind(),
            ErrorKind::InvalidParameter
        );
        assert_eq!(
            parse("O:BA O:BA", None).unwrap_err().kind(),
            ErrorKind::InvalidParameter
        );
        assert_eq!(
            parse("D:(A;;GA;;WD)", None).unwrap_err().kind(),
            ErrorKind::InvalidAcl
        );
        assert_eq!(
            parse("D:(A;;GA;;;WD", None).unwrap_err().kind(),
            ErrorKind::InvalidAcl
        );
        assert_eq!(
            parse("O:XX", None).unwrap_err().kind(),
            ErrorKind::InvalidSid
        );
        assert_eq!(
            parse("D:(Q;;GA;;;WD)", None).unwrap_err().kind(),
            ErrorKind::InvalidAcl
        );
        assert!(
            parse("D:(XA;;FX;;;WD;(@User.Title == ))", None)
                .unwrap_err()
                .to_string()
                .contains("conditional")
        );
        assert!(parse("S:(RA;;;;;WD)", None).is_err());
        assert!(parse("D:(A;;FX;;;WD;(Member_of {SID(BA)}))", None).is_err());
    }

    #[test]
    fn conditional_and_resource_attribute_aces() {
        for s in [
            "D:(XA;;FX;;;WD;(@User.Title == \"PM\"))",
            "D:(XD;OICI;FA;;;AU;((Member_of {SID(BA)}) || (@Device.Managed == 1)))",
            "D:(ZA;;CR;bf967aba-0de6-11d0-a285-00aa003049e2;;AU;(@User.Dept Any_of {\"A\", \"B\"}))",
            "S:(XU;SA;FR;;;WD;(Exists @Resource.Secrecy))(RA;CI;;;;WD;(\"Project\",TS,0x0,\"Windows\",\"SQL\"))",
        ] {
            assert_eq!(round(s), s);
            let d = parse(s, None).unwrap();
            let bin = d.to_self_relative().unwrap();
            assert_eq!(
                SecurityDescriptor::from_self_relative(&bin).unwrap(),
                d,
                "{s}"
            );
        }
        // Spaces inside the condition are the writer's; the printed form is canonical.
        assert_eq!(
            round("D:(XA;;FX;;;WD; (@User.Title==\"PM\"&&Member_of SID(S-1-5-32-544)) )"),
            "D:(XA;;FX;;;WD;((@User.Title == \"PM\") && (Member_of SID(BA))))"
        );
    }

    #[test]
    fn object_aces() {
        let s = "D:(OA;CI;RPWP;bf967aba-0de6-11d0-a285-00aa003049e2;bf967a86-0de6-11d0-a285-00aa003049e2;AU)";
        let sd = parse(s, None).unwrap();
        assert_eq!(sd.dacl.as_ref().unwrap().revision, 4);
        assert_eq!(to_string(&sd, None).unwrap(), s);
        assert!(parse("D:(A;;GA;bf967aba-0de6-11d0-a285-00aa003049e2;;WD)", None).is_err());
    }
}
