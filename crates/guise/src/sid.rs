//! Security identifiers (SIDs) and the Unix identity mapping.
//!
//! A [`Sid`] names a user, a group or a well-known principal. Unix identities map to
//! SIDs the way Samba maps them: uid `N` is `S-1-22-1-N`, gid `N` is `S-1-22-2-N`.
//! The well-known SIDs a Win32 programmer expects (Everyone, Anonymous, Authenticated
//! Users, Local System, Administrators, ...) are associated constants.
//!
//! # Example
//! ```
//! use guise::sid::UnixId;
//! use guise::Sid;
//!
//! let alice: Sid = "S-1-22-1-1000".parse()?; // ConvertStringSidToSid
//! assert_eq!(alice, Sid::unix_user(1000));
//! assert_eq!(alice.unix_id(), Some(UnixId::User(1000)));
//! assert_eq!(Sid::ADMINISTRATORS.to_string(), "S-1-5-32-544"); // ConvertSidToStringSid
//! assert_eq!(Sid::EVERYONE.lookup_account_name().as_deref(), Some("Everyone"));
//! # Ok::<(), guise::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};

/// The largest number of sub-authorities a SID may have (`SID_MAX_SUB_AUTHORITIES`).
pub const MAX_SUB_AUTHORITIES: usize = 15;

/// A security identifier, as in Win32's `SID` structure (revision 1).
///
/// `Sid` is a small `Copy` value. Its text form is the Win32 one (`S-1-5-32-544`),
/// produced by [`Display`](fmt::Display) and read by [`FromStr`]; the identifier
/// authority is printed in decimal below 2³² and in hex (`0x...`) above, as Windows
/// does.
///
/// ```
/// use guise::Sid;
///
/// // ConvertStringSidToSid, ConvertSidToStringSid
/// let admins: Sid = "S-1-5-32-544".parse()?;
/// assert_eq!(admins, Sid::ADMINISTRATORS);
/// assert_eq!(Sid::unix_user(1000).to_string(), "S-1-22-1-1000");
/// # Ok::<(), guise::Error>(())
/// ```
#[doc(alias = "SID")]
#[doc(alias = "PSID")]
#[doc(alias = "ConvertStringSidToSid")]
#[doc(alias = "ConvertSidToStringSid")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    authority: u64,
    count: u8,
    sub: [u32; MAX_SUB_AUTHORITIES],
}

/// What a SID in the Unix range stands for (see [`Sid::unix_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnixId {
    /// A uid (`S-1-22-1-N`).
    User(u32),
    /// A gid (`S-1-22-2-N`).
    Group(u32),
}

const fn sid(authority: u64, subs: &[u32]) -> Sid {
    let mut sub = [0u32; MAX_SUB_AUTHORITIES];
    let mut i = 0;
    while i < subs.len() {
        sub[i] = subs[i];
        i += 1;
    }
    Sid {
        authority,
        count: subs.len() as u8,
        sub,
    }
}

impl Sid {
    /// Everyone, `S-1-1-0` (SDDL `WD`).
    pub const EVERYONE: Sid = sid(1, &[0]);
    /// Creator Owner, `S-1-3-0` (SDDL `CO`).
    pub const CREATOR_OWNER: Sid = sid(3, &[0]);
    /// Creator Group, `S-1-3-1` (SDDL `CG`).
    pub const CREATOR_GROUP: Sid = sid(3, &[1]);
    /// Network logon, `S-1-5-2` (SDDL `NU`).
    pub const NETWORK: Sid = sid(5, &[2]);
    /// Batch logon, `S-1-5-3`.
    pub const BATCH: Sid = sid(5, &[3]);
    /// Interactive logon, `S-1-5-4` (SDDL `IU`).
    pub const INTERACTIVE: Sid = sid(5, &[4]);
    /// Service logon, `S-1-5-6` (SDDL `SU`).
    pub const SERVICE: Sid = sid(5, &[6]);
    /// Anonymous logon, `S-1-5-7` (SDDL `AN`).
    pub const ANONYMOUS: Sid = sid(5, &[7]);
    /// Authenticated Users, `S-1-5-11` (SDDL `AU`).
    pub const AUTHENTICATED_USERS: Sid = sid(5, &[11]);
    /// Local System, `S-1-5-18` (SDDL `SY`). uid 0 maps here.
    pub const LOCAL_SYSTEM: Sid = sid(5, &[18]);
    /// Builtin Administrators, `S-1-5-32-544` (SDDL `BA`). uid 0 is a member.
    pub const ADMINISTRATORS: Sid = sid(5, &[32, 544]);
    /// Builtin Users, `S-1-5-32-545` (SDDL `BU`).
    pub const USERS: Sid = sid(5, &[32, 545]);
    /// Owner Rights, `S-1-3-4` (SDDL `OW`): in a DACL, stands for the object's owner.
    pub const OWNER_RIGHTS: Sid = sid(3, &[4]);
    /// The Untrusted integrity level, `S-1-16-0`.
    pub const UNTRUSTED_INTEGRITY: Sid = sid(16, &[0]);
    /// The Low integrity level, `S-1-16-4096` (SDDL `LW`).
    pub const LOW_INTEGRITY: Sid = sid(16, &[0x1000]);
    /// The Medium integrity level, `S-1-16-8192` (SDDL `ME`): objects without a
    /// label have it.
    pub const MEDIUM_INTEGRITY: Sid = sid(16, &[0x2000]);
    /// The High integrity level, `S-1-16-12288` (SDDL `HI`).
    pub const HIGH_INTEGRITY: Sid = sid(16, &[0x3000]);
    /// The System integrity level, `S-1-16-16384` (SDDL `SI`).
    pub const SYSTEM_INTEGRITY: Sid = sid(16, &[0x4000]);

    /// Identifier authority of the Unix mapping (`S-1-22-...`).
    pub const UNIX_AUTHORITY: u64 = 22;

    /// Builds a SID from its identifier authority and sub-authorities.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSid`] if the authority does not fit in 48 bits or there are
    /// more than [`MAX_SUB_AUTHORITIES`] sub-authorities.
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Result<Sid> {
        if authority >= 1 << 48 {
            return Err(Error::new(
                ErrorKind::InvalidSid,
                "SID identifier authority exceeds 48 bits",
            ));
        }
        if sub_authorities.len() > MAX_SUB_AUTHORITIES {
            return Err(Error::new(
                ErrorKind::InvalidSid,
                format!(
                    "SID has {} sub-authorities, at most {MAX_SUB_AUTHORITIES} allowed",
                    sub_authorities.len()
                ),
            ));
        }
        Ok(sid(authority, sub_authorities))
    }

    /// The SID of Unix user `uid` in Samba's mapping, `S-1-22-1-uid`.
    ///
    /// This is the literal mapping; a token for uid 0 uses [`Sid::LOCAL_SYSTEM`] as its
    /// user instead (see [`crate::token`]).
    pub const fn unix_user(uid: u32) -> Sid {
        sid(Self::UNIX_AUTHORITY, &[1, uid])
    }

    /// The SID of Unix group `gid` in Samba's mapping, `S-1-22-2-gid`.
    pub const fn unix_group(gid: u32) -> Sid {
        sid(Self::UNIX_AUTHORITY, &[2, gid])
    }

    /// The logon SID `S-1-5-5-X-Y` for a logon session id (`X`, `Y` its high and
    /// low halves), as Windows adds to every logon's token.
    pub const fn logon(logon_id: u64) -> Sid {
        sid(5, &[5, (logon_id >> 32) as u32, logon_id as u32])
    }

    /// The uid or gid this SID stands for in the Unix mapping, if it is one.
    /// [`Sid::LOCAL_SYSTEM`] stands for uid 0.
    pub fn unix_id(&self) -> Option<UnixId> {
        if *self == Sid::LOCAL_SYSTEM {
            return Some(UnixId::User(0));
        }
        match (self.authority, self.sub_authorities()) {
            (Self::UNIX_AUTHORITY, [1, uid]) => Some(UnixId::User(*uid)),
            (Self::UNIX_AUTHORITY, [2, gid]) => Some(UnixId::Group(*gid)),
            _ => None,
        }
    }

    /// The 48-bit identifier authority (`SID_IDENTIFIER_AUTHORITY`).
    pub const fn authority(&self) -> u64 {
        self.authority
    }

    /// The sub-authorities, in order.
    pub fn sub_authorities(&self) -> &[u32] {
        &self.sub[..usize::from(self.count)]
    }

    /// A cheap stand-in for the SID in membership tests: equal SIDs have equal keys
    /// (the converse must be checked in full).
    pub(crate) fn key(&self) -> u64 {
        let last = match self.count {
            0 => 0,
            n => self.sub.get(usize::from(n - 1)).copied().unwrap_or(0),
        };
        u64::from(last) | u64::from(self.count) << 32 | (self.authority & 0xff_ffff) << 40
    }

    /// Reads the numbers of a SID written `S-1-<authority>(-<sub>)+` in decimal,
    /// given what follows `S-1-`, in one pass: the common form, on SDDL's hot path.
    /// `None` for anything else (hex, white space, out of range, no or too many
    /// sub-authorities), which [`FromStr`] reads or rejects as it does.
    pub(crate) fn parse_decimal(numbers: &[u8]) -> Option<Sid> {
        let mut sid = Sid {
            authority: 0,
            count: 0,
            sub: [0; MAX_SUB_AUTHORITIES],
        };
        // The number being read, its digit count, and how many came before it.
        let (mut n, mut digits, mut read) = (0u64, 0usize, 0usize);
        for (i, &c) in numbers.iter().enumerate() {
            if c.is_ascii_digit() {
                n = n * 10 + u64::from(c - b'0');
                digits += 1;
                // 10 digits of a sub-authority, 15 of an authority (< 2^48).
                if digits > 15 {
                    return None;
                }
                if i + 1 < numbers.len() {
                    continue;
                }
            } else if c != b'-' || digits == 0 || i + 1 == numbers.len() {
                return None;
            }
            if read == 0 {
                if n >= 1 << 48 {
                    return None;
                }
                sid.authority = n;
            } else {
                *sid.sub.get_mut(read - 1)? = u32::try_from(n).ok()?;
            }
            read += 1;
            (n, digits) = (0, 0);
        }
        if read < 2 {
            return None;
        }
        sid.count = (read - 1) as u8;
        Some(sid)
    }

    /// The last sub-authority (the RID), if any.
    pub fn rid(&self) -> Option<u32> {
        self.sub_authorities().last().copied()
    }

    /// The length of the binary form in bytes ([`GetLengthSid`]).
    ///
    /// [`GetLengthSid`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-getlengthsid
    #[doc(alias = "GetLengthSid")]
    pub fn binary_len(&self) -> usize {
        8 + 4 * usize::from(self.count)
    }

    /// Appends the binary form (MS-DTYP 2.4.2.2: revision, count, big-endian
    /// authority, little-endian sub-authorities) to `out`.
    pub fn write_binary(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.push(self.count);
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in self.sub_authorities() {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    /// Reads a SID in binary form from the start of `bytes`; returns it and the number
    /// of bytes it took.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSid`] when the input is short, the revision is not 1 or
    /// the count exceeds [`MAX_SUB_AUTHORITIES`].
    pub fn read_binary(bytes: &[u8]) -> Result<(Sid, usize)> {
        let bad = |why: &str| Error::new(ErrorKind::InvalidSid, format!("binary SID: {why}"));
        let [revision, count, ..] = bytes else {
            return Err(bad("shorter than 8 bytes"));
        };
        if *revision != 1 {
            return Err(bad("revision is not 1"));
        }
        let count = usize::from(*count);
        if count > MAX_SUB_AUTHORITIES {
            return Err(bad("more than 15 sub-authorities"));
        }
        let len = 8 + 4 * count;
        if bytes.len() < len {
            return Err(bad("truncated"));
        }
        let mut auth = [0u8; 8];
        auth[2..].copy_from_slice(&bytes[2..8]);
        let mut subs = [0u32; MAX_SUB_AUTHORITIES];
        for (i, chunk) in bytes[8..len].chunks_exact(4).enumerate() {
            subs[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Ok((sid(u64::from_be_bytes(auth), &subs[..count]), len))
    }

    /// The display name of a well-known SID (`"Everyone"`,
    /// `"NT AUTHORITY\\SYSTEM"`, ...), if this is one.
    pub fn well_known_name(&self) -> Option<&'static str> {
        WELL_KNOWN
            .iter()
            .find(|(s, _)| s == self)
            .map(|(_, name)| *name)
    }
}

impl Sid {
    /// The account name of this SID ([`LookupAccountSid`]): the well-known name,
    /// or `Unix User\name` / `Unix Group\name` (Samba's form) from NSS for the
    /// Unix range (`Unix User\1234` when NSS has no name). `None` for other SIDs
    /// and when the lookup fails; a domain's SID is named by
    /// [`crate::directory::account_name`].
    ///
    /// [`LookupAccountSid`]: https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-lookupaccountsidw
    #[doc(alias = "LookupAccountSid")]
    pub fn lookup_account_name(&self) -> Option<String> {
        if let Some(name) = self.well_known_name() {
            return Some(name.to_owned());
        }
        match self.unix_id()? {
            UnixId::User(uid) => {
                let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()?;
                Some(format!(
                    "Unix User\\{}",
                    user.map_or_else(|| uid.to_string(), |u| u.name)
                ))
            }
            UnixId::Group(gid) => {
                let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)).ok()?;
                Some(format!(
                    "Unix Group\\{}",
                    group.map_or_else(|| gid.to_string(), |g| g.name)
                ))
            }
        }
    }
}

const WELL_KNOWN: &[(Sid, &str)] = &[
    (Sid::EVERYONE, "Everyone"),
    (Sid::CREATOR_OWNER, "CREATOR OWNER"),
    (Sid::CREATOR_GROUP, "CREATOR GROUP"),
    (Sid::NETWORK, "NT AUTHORITY\\NETWORK"),
    (Sid::BATCH, "NT AUTHORITY\\BATCH"),
    (Sid::INTERACTIVE, "NT AUTHORITY\\INTERACTIVE"),
    (Sid::SERVICE, "NT AUTHORITY\\SERVICE"),
    (Sid::ANONYMOUS, "NT AUTHORITY\\ANONYMOUS LOGON"),
    (
        Sid::AUTHENTICATED_USERS,
        "NT AUTHORITY\\Authenticated Users",
    ),
    (Sid::LOCAL_SYSTEM, "NT AUTHORITY\\SYSTEM"),
    (Sid::ADMINISTRATORS, "BUILTIN\\Administrators"),
    (Sid::USERS, "BUILTIN\\Users"),
];

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.authority >= 1 << 32 {
            write!(f, "S-1-0x{:012X}", self.authority)?;
        } else {
            write!(f, "S-1-{}", self.authority)?;
        }
        for s in self.sub_authorities() {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({self})")
    }
}

impl FromStr for Sid {
    type Err = Error;

    /// Parses `S-1-<authority>(-<sub>)+` ([`ConvertStringSidToSid`]'s numeric form;
    /// the SDDL two-letter aliases belong to the SDDL parser). The `S` may be either
    /// case; each number may be decimal or `0x` hex; at least one sub-authority is
    /// required, as Windows requires.
    ///
    /// [`ConvertStringSidToSid`]: https://learn.microsoft.com/en-us/windows/win32/api/sddl/nf-sddl-convertstringsidtosidw
    fn from_str(s: &str) -> Result<Sid> {
        let bad = |why: &str| Error::new(ErrorKind::InvalidSid, format!("SID {s:?}: {why}"));
        // A number: decimal, or hex after `0x`; `None` for anything else, or one
        // that does not fit 64 bits. Read byte by byte: a parse is on the hot path
        // of SDDL.
        let number = |p: &str| -> Option<u64> {
            let (digits, radix) = match p.as_bytes() {
                [b'0', b'x' | b'X', hex @ ..] => (hex, 16u64),
                digits => (digits, 10u64),
            };
            if digits.is_empty() {
                return None;
            }
            let mut n: u64 = 0;
            for &b in digits {
                let d = match b {
                    b'0'..=b'9' => u64::from(b - b'0'),
                    b'a'..=b'f' if radix == 16 => u64::from(b - b'a' + 10),
                    b'A'..=b'F' if radix == 16 => u64::from(b - b'A' + 10),
                    _ => return None,
                };
                n = n.checked_mul(radix)?.checked_add(d)?;
            }
            Some(n)
        };
        let rest = s
            .strip_prefix("S-")
            .or_else(|| s.strip_prefix("s-"))
            .ok_or_else(|| bad("does not start with S-"))?;
        let mut parts = rest.split('-');
        if parts.next().and_then(number) != Some(1) {
            return Err(bad("revision is not 1"));
        }
        let authority = parts
            .next()
            .and_then(number)
            .filter(|a| *a < 1 << 48)
            .ok_or_else(|| bad("identifier authority is not a 48-bit number"))?;
        // At most one more than a SID may hold, so that too many is an error.
        let mut subs = [0u32; MAX_SUB_AUTHORITIES + 1];
        let mut count = 0;
        for p in parts {
            let n = number(p).ok_or_else(|| bad("sub-authority is not a number"))?;
            if count == subs.len() {
                return Err(bad("too many sub-authorities"));
            }
            subs[count] = u32::try_from(n).map_err(|_| bad("sub-authority exceeds 32 bits"))?;
            count += 1;
        }
        let subs = &subs[..count];
        if subs.is_empty() {
            return Err(bad("no sub-authority"));
        }
        Sid::new(authority, subs).map_err(|e| bad(e.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The one-pass decimal reader agrees with the general one wherever it
        /// gives an answer, and gives one for every SID in canonical form.
        #[test]
        fn the_decimal_reader_agrees_with_from_str(
            text in "[0-9-]{0,60}|(0|[1-9][0-9]{0,15})(-(0|[1-9][0-9]{0,10})){0,16}",
        ) {
            let general = format!("S-1-{text}").parse::<Sid>().ok();
            let fast = Sid::parse_decimal(text.as_bytes());
            if fast.is_some() {
                prop_assert_eq!(fast, general);
            }
            if let Some(sid) = general.filter(|g| g.to_string() == format!("S-1-{text}")) {
                prop_assert_eq!(Sid::parse_decimal(text.as_bytes()), Some(sid));
            }
        }
    }

    #[test]
    fn text_round_trip() {
        for s in [
            "S-1-1-0",
            "S-1-5-32-544",
            "S-1-22-1-1000",
            "S-1-5-21-1-2-3-500",
            "S-1-0-0",
        ] {
            assert_eq!(s.parse::<Sid>().unwrap().to_string(), s);
        }
        assert_eq!("s-1-5-18".parse::<Sid>().unwrap(), Sid::LOCAL_SYSTEM);
        assert_eq!(
            "S-1-0x000100000000-1".parse::<Sid>().unwrap().to_string(),
            "S-1-0x000100000000-1"
        );
        assert_eq!("S-1-0x5-18".parse::<Sid>().unwrap(), Sid::LOCAL_SYSTEM);
        // Hex parts, as ConvertStringSidToSid takes them.
        assert_eq!(
            "S-0x1-0XC-0x1a".parse::<Sid>().unwrap().to_string(),
            "S-1-12-26"
        );
        assert_eq!(
            "S-1-860116326-1".parse::<Sid>().unwrap().authority(),
            860116326
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "S",
            "S-1",
            "S-1-5",
            "S-2-5",
            "X-1-5",
            "S-1-5-",
            "S-1-5--1",
            "S-1-5-x",
            "S-1-5-4294967296",
            "S-1-281474976710656",
            "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
            "S-1-5-+3",
        ] {
            let err = s.parse::<Sid>().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidSid, "{s:?}");
        }
    }

    #[test]
    fn unix_mapping() {
        assert_eq!(Sid::unix_user(1000).to_string(), "S-1-22-1-1000");
        assert_eq!(Sid::unix_group(100).to_string(), "S-1-22-2-100");
        assert_eq!(Sid::unix_user(7).unix_id(), Some(UnixId::User(7)));
        assert_eq!(Sid::unix_group(7).unix_id(), Some(UnixId::Group(7)));
        assert_eq!(Sid::LOCAL_SYSTEM.unix_id(), Some(UnixId::User(0)));
        assert_eq!(Sid::EVERYONE.unix_id(), None);
        assert_eq!(Sid::logon(0x1_0000_0002).to_string(), "S-1-5-5-1-2");
    }

    #[test]
    fn binary_round_trip() {
        let s: Sid = "S-1-5-21-1004336348-1177238915-682003330-512"
            .parse()
            .unwrap();
        let mut buf = Vec::new();
        s.write_binary(&mut buf);
        assert_eq!(buf.len(), s.binary_len());
        assert_eq!(&buf[..8], &[1, 5, 0, 0, 0, 0, 0, 5]);
        assert_eq!(Sid::read_binary(&buf).unwrap(), (s, buf.len()));
        assert!(Sid::read_binary(&buf[..buf.len() - 1]).is_err());
        assert!(Sid::read_binary(&[2, 0, 0, 0, 0, 0, 0, 1]).is_err());
        assert!(Sid::read_binary(&[1, 16, 0, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn well_known_names() {
        assert_eq!(Sid::EVERYONE.well_known_name(), Some("Everyone"));
        assert_eq!(Sid::ADMINISTRATORS.to_string(), "S-1-5-32-544");
        assert_eq!(Sid::unix_user(5).well_known_name(), None);
    }
}
