//! The logon information of a Kerberos ticket's PAC (MS-PAC 2.5,
//! `KERB_VALIDATION_INFO`), decoded: the user's SID and every group SID the
//! domain controller put in the ticket (its groups, extra SIDs and resource
//! groups). No I/O; every count and length is checked against the bytes there
//! are, so any input gives a value or an error, never a panic (fuzzed:
//! `fuzz_targets/pac_logon_info.rs`).
//!
//! The buffer is NDR (MS-RPCE 2.2.6: type serialization version 1, 32-bit
//! NDR, little-endian): a common and a private header, a pointer to the
//! structure, the structure, then what its pointers point to, in the order
//! they appear.

use crate::error::{Error, ErrorKind, Result};
use crate::sid::Sid;

/// What guise takes from a PAC's logon information.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogonInfo {
    /// The account name (`EffectiveName`).
    pub account: String,
    /// The NetBIOS name of the user's domain (`LogonDomainName`).
    pub domain: String,
    /// The user's SID: the domain's SID and `UserId`.
    pub user: Sid,
    /// The primary group's SID: the domain's SID and `PrimaryGroupId`.
    pub primary_group: Sid,
    /// The domain groups (`GroupIds`, each the domain's SID and a RID), the
    /// extra SIDs (`ExtraSids`: other domains' groups, asserted identities),
    /// and the resource groups (`ResourceGroupDomainSid` and its RIDs), in that
    /// order, each once.
    pub groups: Vec<Sid>,
}

/// The most groups, extra SIDs or resource groups a PAC may list (each).
const MAX_COUNT: u32 = 65_536;

fn bad(why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::LogonFailure,
        format!("the ticket's PAC logon information is malformed: {why}"),
    )
}

/// A reader of NDR with the position checked at every step.
struct Ndr<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Ndr<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| {
                bad(format!(
                    "it ends at byte {} of {}",
                    self.b.len(),
                    self.at.saturating_add(n)
                ))
            })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn align(&mut self, n: usize) -> Result<()> {
        let pad = (n - self.at % n) % n;
        self.take(pad).map(|_| ())
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    /// A count that the bytes left could hold, `size` bytes per element.
    fn count(&mut self, size: usize, what: &str) -> Result<usize> {
        let n = self.u32()?;
        if n > MAX_COUNT || (n as usize).saturating_mul(size) > self.b.len() - self.at {
            return Err(bad(format!("{what} counts {n}")));
        }
        Ok(n as usize)
    }

    /// The deferred body of an `RPC_UNICODE_STRING` of `length` bytes (its
    /// `Length`) and `max` bytes (its `MaximumLength`).
    fn string(&mut self, length: u16, max: u16) -> Result<String> {
        let max_count = self.u32()? as usize;
        let offset = self.u32()?;
        let actual = self.u32()? as usize;
        if offset != 0 || actual > max_count || max_count.checked_mul(2) != Some(usize::from(max)) {
            return Err(bad("a string's counts disagree"));
        }
        if actual.checked_mul(2) != Some(usize::from(length)) {
            return Err(bad("a string's length disagrees"));
        }
        let units: Vec<u16> = self
            .take(actual * 2)?
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        self.align(4)?;
        Ok(String::from_utf16_lossy(&units))
    }

    /// A deferred `RPC_SID`: its conformance, then the SID.
    fn sid(&mut self) -> Result<Sid> {
        let conformance = self.u32()?;
        let revision = self.u8()?;
        let n = self.u8()?;
        if revision != 1
            || u32::from(n) != conformance
            || usize::from(n) > crate::sid::MAX_SUB_AUTHORITIES
        {
            return Err(bad("a SID's header"));
        }
        let authority = self
            .take(6)?
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b));
        let mut subs = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            subs.push(self.u32()?);
        }
        Sid::new(authority, &subs).map_err(|_| bad("a SID"))
    }

    /// A deferred array of `GROUP_MEMBERSHIP` of `count` elements: the RIDs.
    fn rids(&mut self, count: u32, what: &str) -> Result<Vec<u32>> {
        let n = self.count(8, what)?;
        if n != count as usize {
            return Err(bad(format!("{what}: {count} announced, {n} given")));
        }
        let mut rids = Vec::with_capacity(n);
        for _ in 0..n {
            rids.push(self.u32()?);
            self.u32()?; // Attributes
        }
        Ok(rids)
    }
}

/// Whether an AD-IF-RELEVANT container (DER: `SEQUENCE OF SEQUENCE { ad-type
/// [0] INTEGER, ad-data [1] OCTET STRING }`) holds an AD-WIN2K-PAC (type
/// 128). A container that does not decode counts as holding one: the caller
/// then refuses, as for a PAC that did not verify.
pub fn if_relevant_holds_pac(der: &[u8]) -> bool {
    /// One DER element at the start of `b`: its tag, contents and the rest.
    fn element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, b) = b.split_first()?;
        let (&first, mut b) = b.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || b.len() < n {
                return None;
            }
            let len = b[..n]
                .iter()
                .fold(0usize, |a, &x| (a << 8) | usize::from(x));
            b = &b[n..];
            len
        };
        (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
    }
    fn integer(b: &[u8]) -> Option<i64> {
        if b.is_empty() || b.len() > 8 {
            return None;
        }
        let neg = b[0] & 0x80 != 0;
        Some(
            b.iter()
                .fold(if neg { -1i64 } else { 0 }, |a, &x| (a << 8) | i64::from(x)),
        )
    }
    fn holds(der: &[u8], depth: u32) -> Option<bool> {
        if depth > 8 {
            return None;
        }
        let (tag, mut items, rest) = element(der)?;
        if tag != 0x30 || !rest.is_empty() {
            return None;
        }
        while !items.is_empty() {
            let (tag, body, rest) = element(items)?;
            items = rest;
            if tag != 0x30 {
                return None;
            }
            let (tag, ad_type, after) = element(body)?;
            if tag != 0xa0 {
                return None;
            }
            let (tag, value, _) = element(ad_type)?;
            if tag != 0x02 {
                return None;
            }
            match integer(value)? {
                128 => return Some(true),
                // A container in the container (as MIT's krb5_find_authdata
                // looks into them too).
                1 => {
                    let (tag, data, _) = element(after)?;
                    let (inner_tag, inner, _) = element(data)?;
                    if tag != 0xa1 || inner_tag != 0x04 {
                        return None;
                    }
                    if holds(inner, depth + 1)? {
                        return Some(true);
                    }
                }
                _ => {}
            }
        }
        Some(false)
    }
    holds(der, 0).unwrap_or(true)
}

/// A SID in a domain: the domain's SID with `rid` appended.
fn in_domain(domain: &Sid, rid: u32) -> Result<Sid> {
    let mut subs = domain.sub_authorities().to_vec();
    subs.push(rid);
    Sid::new(domain.authority(), &subs).map_err(|_| bad("a RID of a domain SID that is full"))
}

/// Decodes a `PAC_LOGON_INFO` buffer (what MIT's `urn:mspac:logon-info` name
/// attribute gives).
///
/// # Errors
/// [`ErrorKind::LogonFailure`] for a buffer that is not one: a wrong header,
/// counts that disagree or exceed what the bytes hold, a malformed SID, no
/// domain SID.
pub fn parse_logon_info(bytes: &[u8]) -> Result<LogonInfo> {
    let mut r = Ndr { b: bytes, at: 0 };
    // Common type header: version 1, little-endian, 8 bytes, filler.
    if r.u8()? != 1 || r.u8()? != 0x10 || r.u16()? != 8 {
        return Err(bad("not NDR type serialization version 1, little-endian"));
    }
    r.skip(4)?;
    // Private header: the object's length, filler.
    let length = r.u32()? as usize;
    r.skip(4)?;
    if length > bytes.len() - r.at {
        return Err(bad("its length exceeds the buffer"));
    }
    let mut r = Ndr {
        b: &bytes[..r.at + length],
        at: r.at,
    };
    if r.u32()? == 0 {
        return Err(bad("a null logon information"));
    }
    // KERB_VALIDATION_INFO, its fixed part.
    r.skip(6 * 8)?; // LogonTime ... PasswordMustChange
    let mut strings = Vec::with_capacity(8);
    let string_header = |r: &mut Ndr<'_>| -> Result<(u16, u16, bool)> {
        let length = r.u16()?;
        let max = r.u16()?;
        let present = r.u32()? != 0;
        if length > max || length % 2 != 0 || max % 2 != 0 {
            return Err(bad("a string's header"));
        }
        Ok((length, max, present))
    };
    for _ in 0..6 {
        // EffectiveName, FullName, LogonScript, ProfilePath, HomeDirectory,
        // HomeDirectoryDrive.
        strings.push(string_header(&mut r)?);
    }
    r.u16()?; // LogonCount
    r.u16()?; // BadPasswordCount
    let user_rid = r.u32()?;
    let primary_rid = r.u32()?;
    let group_count = r.u32()?;
    let group_ids = r.u32()? != 0;
    r.u32()?; // UserFlags
    r.skip(16)?; // UserSessionKey
    strings.push(string_header(&mut r)?); // LogonServer
    strings.push(string_header(&mut r)?); // LogonDomainName
    let domain_sid = r.u32()? != 0;
    r.skip(8)?; // Reserved1
    r.u32()?; // UserAccountControl
    r.u32()?; // SubAuthStatus
    r.skip(16)?; // LastSuccessfulILogon, LastFailedILogon
    r.u32()?; // FailedILogonCount
    r.u32()?; // Reserved3
    let sid_count = r.u32()?;
    let extra_sids = r.u32()? != 0;
    let resource_domain = r.u32()? != 0;
    let resource_count = r.u32()?;
    let resource_ids = r.u32()? != 0;
    if (group_count > 0 && !group_ids)
        || (sid_count > 0 && !extra_sids)
        || (resource_count > 0 && !resource_ids)
    {
        return Err(bad("a count without its array"));
    }

    // What the pointers point to, in order.
    let mut text = Vec::with_capacity(8);
    for &(length, max, present) in &strings[..6] {
        text.push(if present {
            r.string(length, max)?
        } else {
            String::new()
        });
    }
    let rids = if group_ids {
        r.rids(group_count, "GroupIds")?
    } else {
        Vec::new()
    };
    for &(length, max, present) in &strings[6..] {
        text.push(if present {
            r.string(length, max)?
        } else {
            String::new()
        });
    }
    if !domain_sid {
        return Err(bad("no LogonDomainId"));
    }
    let domain = r.sid()?;
    let mut extra = Vec::new();
    if extra_sids {
        let n = r.count(8, "ExtraSids")?;
        if n != sid_count as usize {
            return Err(bad(format!("ExtraSids: {sid_count} announced, {n} given")));
        }
        let mut present = Vec::with_capacity(n);
        for _ in 0..n {
            present.push(r.u32()? != 0);
            r.u32()?; // Attributes
        }
        for p in present {
            if !p {
                return Err(bad("a null extra SID"));
            }
            extra.push(r.sid()?);
        }
    }
    let mut resource = Vec::new();
    if resource_domain {
        let resource_sid = r.sid()?;
        if resource_ids {
            for rid in r.rids(resource_count, "ResourceGroupIds")? {
                resource.push(in_domain(&resource_sid, rid)?);
            }
        }
    } else if resource_ids {
        return Err(bad("resource groups without their domain"));
    }

    let mut groups: Vec<Sid> = Vec::with_capacity(rids.len() + extra.len() + resource.len());
    for sid in rids
        .into_iter()
        .map(|rid| in_domain(&domain, rid))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .chain(extra)
        .chain(resource)
    {
        if !groups.contains(&sid) {
            groups.push(sid);
        }
    }
    Ok(LogonInfo {
        account: text[0].clone(),
        domain: text[7].clone(),
        user: in_domain(&domain, user_rid)?,
        primary_group: in_domain(&domain, primary_rid)?,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_if_relevant_container_says_whether_it_holds_a_pac() {
        // SEQUENCE { SEQUENCE { [0] INTEGER 128, [1] OCTET STRING 01 } }
        let pac = [
            0x30, 0x0c, 0x30, 0x0a, 0xa0, 0x04, 0x02, 0x02, 0x00, 0x80, 0xa1, 0x02, 0x04, 0x00,
        ];
        assert!(if_relevant_holds_pac(&pac));
        // ... of type 141 (another), then nothing.
        let other = [
            0x30, 0x0b, 0x30, 0x09, 0xa0, 0x03, 0x02, 0x01, 0x7f, 0xa1, 0x02, 0x04, 0x00,
        ];
        assert!(!if_relevant_holds_pac(&other));
        assert!(!if_relevant_holds_pac(&[0x30, 0x00]));
        // Garbage counts as a PAC: refused.
        assert!(if_relevant_holds_pac(&[0x30, 0x05, 0x01]));
        assert!(if_relevant_holds_pac(&[]));
        // A container (type 1) holding the PAC container: found inside.
        let mut nested = vec![
            0x30, 0x19, 0x30, 0x17, 0xa0, 0x03, 0x02, 0x01, 0x01, 0xa1, 0x10, 0x04, 0x0e,
        ];
        nested.extend_from_slice(&pac);
        assert!(if_relevant_holds_pac(&nested));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bytes in [&b""[..], b"\x01\x10\x08\x00", &[0u8; 300], &[0xffu8; 300]] {
            assert!(parse_logon_info(bytes).is_err());
        }
        // Every prefix of a valid buffer is refused.
        let good = sample();
        assert!(parse_logon_info(&good).is_ok());
        for n in 0..good.len() {
            assert!(
                parse_logon_info(&good[..n]).is_err(),
                "a prefix of {n} bytes"
            );
        }
    }

    /// A logon information buffer as the test's Samba domain controller
    /// issues it (alice: Domain Users, accounting, and the asserted-identity
    /// extra SID), captured from a ticket.
    fn sample() -> Vec<u8> {
        let hex = include_str!("pac_sample.hex");
        let hex: String = hex.split_whitespace().collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_domain_controllers_logon_information_gives_the_users_sids() {
        let info = parse_logon_info(&sample()).unwrap();
        assert_eq!(info.account, "alice");
        assert_eq!(info.domain, "GUISE");
        let user = info.user.to_string();
        assert!(user.starts_with("S-1-5-21-"), "{user}");
        let domain = &user[..user.rfind('-').unwrap()];
        assert_eq!(info.primary_group.to_string(), format!("{domain}-513"));
        let groups: Vec<String> = info.groups.iter().map(Sid::to_string).collect();
        assert!(groups.contains(&format!("{domain}-513")), "{groups:?}");
        assert!(
            groups
                .iter()
                .any(|g| g.starts_with(domain) && !g.ends_with("-513")),
            "{groups:?}"
        );
    }
}
