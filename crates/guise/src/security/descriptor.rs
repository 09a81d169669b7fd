//! Security descriptors, ACLs and ACEs, and their self-relative binary form
//! (MS-DTYP 2.4.4–2.4.6).
//!
//! # Example
//! ```
//! use guise::security::{sddl, SecurityDescriptor};
//!
//! let sd = sddl::parse("O:BAG:SYD:(A;;FA;;;BA)(A;;FR;;;WD)", None)?;
//! let binary = sd.to_self_relative()?; // as MakeSelfRelativeSD gives it
//! let back = SecurityDescriptor::from_self_relative(&binary)?;
//! assert_eq!(sddl::to_string(&back, None)?, "O:BAG:SYD:(A;;FA;;;BA)(A;;FR;;;WD)");
//! # Ok::<(), guise::Error>(())
//! ```

use std::fmt;

use bitflags::bitflags;

use super::mask::AccessMask;
use crate::error::{Error, ErrorKind, Result};
use crate::sid::Sid;

/// A GUID, as object ACEs carry them (`GUID`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits, either case). The
    /// bytes are stored in the order the text shows them.
    pub fn parse(s: &str) -> Option<Guid> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        let hex: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
        if hex.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(Guid(out))
    }

    /// The binary (little-endian fields) form of MS-DTYP 2.3.4.2.
    pub fn to_le_bytes(self) -> [u8; 16] {
        let mut b = self.0;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        b
    }

    /// From the binary (little-endian fields) form.
    pub fn from_le_bytes(mut b: [u8; 16]) -> Guid {
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        Guid(b)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// The type of an ACE (`*_ACE_TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AceType {
    /// `ACCESS_ALLOWED_ACE_TYPE` (SDDL `A`).
    AccessAllowed,
    /// `ACCESS_DENIED_ACE_TYPE` (SDDL `D`).
    AccessDenied,
    /// `SYSTEM_AUDIT_ACE_TYPE` (SDDL `AU`).
    SystemAudit,
    /// `SYSTEM_ALARM_ACE_TYPE` (SDDL `AL`).
    SystemAlarm,
    /// `ACCESS_ALLOWED_OBJECT_ACE_TYPE` (SDDL `OA`).
    AccessAllowedObject,
    /// `ACCESS_DENIED_OBJECT_ACE_TYPE` (SDDL `OD`).
    AccessDeniedObject,
    /// `SYSTEM_AUDIT_OBJECT_ACE_TYPE` (SDDL `OU`).
    SystemAuditObject,
    /// `SYSTEM_ALARM_OBJECT_ACE_TYPE` (SDDL `OL`).
    SystemAlarmObject,
    /// `ACCESS_ALLOWED_CALLBACK_ACE_TYPE` (SDDL `XA`).
    AccessAllowedCallback,
    /// `ACCESS_DENIED_CALLBACK_ACE_TYPE` (SDDL `XD`).
    AccessDeniedCallback,
    /// `ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE` (SDDL `ZA`).
    AccessAllowedCallbackObject,
    /// `ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE`.
    AccessDeniedCallbackObject,
    /// `SYSTEM_AUDIT_CALLBACK_ACE_TYPE` (SDDL `XU`).
    SystemAuditCallback,
    /// `SYSTEM_ALARM_CALLBACK_ACE_TYPE`.
    SystemAlarmCallback,
    /// `SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE`.
    SystemAuditCallbackObject,
    /// `SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE`.
    SystemAlarmCallbackObject,
    /// `SYSTEM_MANDATORY_LABEL_ACE_TYPE` (SDDL `ML`).
    SystemMandatoryLabel,
    /// `SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE` (SDDL `RA`).
    SystemResourceAttribute,
    /// `SYSTEM_SCOPED_POLICY_ID_ACE_TYPE` (SDDL `SP`).
    SystemScopedPolicyId,
}

const ACE_TYPES: [(AceType, u8); 19] = [
    (AceType::AccessAllowed, 0x00),
    (AceType::AccessDenied, 0x01),
    (AceType::SystemAudit, 0x02),
    (AceType::SystemAlarm, 0x03),
    (AceType::AccessAllowedObject, 0x05),
    (AceType::AccessDeniedObject, 0x06),
    (AceType::SystemAuditObject, 0x07),
    (AceType::SystemAlarmObject, 0x08),
    (AceType::AccessAllowedCallback, 0x09),
    (AceType::AccessDeniedCallback, 0x0A),
    (AceType::AccessAllowedCallbackObject, 0x0B),
    (AceType::AccessDeniedCallbackObject, 0x0C),
    (AceType::SystemAuditCallback, 0x0D),
    (AceType::SystemAlarmCallback, 0x0E),
    (AceType::SystemAuditCallbackObject, 0x0F),
    (AceType::SystemAlarmCallbackObject, 0x10),
    (AceType::SystemMandatoryLabel, 0x11),
    (AceType::SystemResourceAttribute, 0x12),
    (AceType::SystemScopedPolicyId, 0x13),
];

impl AceType {
    /// Every ACE type.
    pub fn all() -> impl Iterator<Item = AceType> {
        ACE_TYPES.iter().map(|(t, _)| *t)
    }

    /// The numeric type of the binary form.
    pub fn code(self) -> u8 {
        ACE_TYPES
            .iter()
            .find(|(t, _)| *t == self)
            .map_or(0, |(_, c)| *c)
    }

    /// The ACE type with this numeric code.
    pub fn from_code(code: u8) -> Option<AceType> {
        ACE_TYPES.iter().find(|(_, c)| *c == code).map(|(t, _)| *t)
    }

    /// The Win32 name of the type, such as `ACCESS_ALLOWED_ACE_TYPE`: how guise's
    /// command line and messages name it.
    pub fn win32_name(self) -> &'static str {
        match self {
            AceType::AccessAllowed => "ACCESS_ALLOWED_ACE_TYPE",
            AceType::AccessDenied => "ACCESS_DENIED_ACE_TYPE",
            AceType::SystemAudit => "SYSTEM_AUDIT_ACE_TYPE",
            AceType::SystemAlarm => "SYSTEM_ALARM_ACE_TYPE",
            AceType::AccessAllowedObject => "ACCESS_ALLOWED_OBJECT_ACE_TYPE",
            AceType::AccessDeniedObject => "ACCESS_DENIED_OBJECT_ACE_TYPE",
            AceType::SystemAuditObject => "SYSTEM_AUDIT_OBJECT_ACE_TYPE",
            AceType::SystemAlarmObject => "SYSTEM_ALARM_OBJECT_ACE_TYPE",
            AceType::AccessAllowedCallback => "ACCESS_ALLOWED_CALLBACK_ACE_TYPE",
            AceType::AccessDeniedCallback => "ACCESS_DENIED_CALLBACK_ACE_TYPE",
            AceType::AccessAllowedCallbackObject => "ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE",
            AceType::AccessDeniedCallbackObject => "ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE",
            AceType::SystemAuditCallback => "SYSTEM_AUDIT_CALLBACK_ACE_TYPE",
            AceType::SystemAlarmCallback => "SYSTEM_ALARM_CALLBACK_ACE_TYPE",
            AceType::SystemAuditCallbackObject => "SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE",
            AceType::SystemAlarmCallbackObject => "SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE",
            AceType::SystemMandatoryLabel => "SYSTEM_MANDATORY_LABEL_ACE_TYPE",
            AceType::SystemResourceAttribute => "SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE",
            AceType::SystemScopedPolicyId => "SYSTEM_SCOPED_POLICY_ID_ACE_TYPE",
        }
    }

    /// Whether the binary form carries the object type fields.
    pub fn is_object(self) -> bool {
        matches!(
            self,
            AceType::AccessAllowedObject
                | AceType::AccessDeniedObject
                | AceType::SystemAuditObject
                | AceType::SystemAlarmObject
                | AceType::AccessAllowedCallbackObject
                | AceType::AccessDeniedCallbackObject
                | AceType::SystemAuditCallbackObject
                | AceType::SystemAlarmCallbackObject
        )
    }

    /// Whether the ACE carries application data after the SID (callback ACEs'
    /// conditions, resource attributes).
    pub fn has_application_data(self) -> bool {
        matches!(
            self,
            AceType::AccessAllowedCallback
                | AceType::AccessDeniedCallback
                | AceType::AccessAllowedCallbackObject
                | AceType::AccessDeniedCallbackObject
                | AceType::SystemAuditCallback
                | AceType::SystemAlarmCallback
                | AceType::SystemAuditCallbackObject
                | AceType::SystemAlarmCallbackObject
                | AceType::SystemResourceAttribute
        )
    }

    /// Whether AccessCheck grants with this ACE (allow types).
    pub fn is_allow(self) -> bool {
        matches!(
            self,
            AceType::AccessAllowed
                | AceType::AccessAllowedObject
                | AceType::AccessAllowedCallback
                | AceType::AccessAllowedCallbackObject
        )
    }

    /// Whether AccessCheck denies with this ACE (deny types).
    pub fn is_deny(self) -> bool {
        matches!(
            self,
            AceType::AccessDenied
                | AceType::AccessDeniedObject
                | AceType::AccessDeniedCallback
                | AceType::AccessDeniedCallbackObject
        )
    }

    /// Whether the ACE's effect depends on a condition in its application data
    /// (callback ACEs).
    pub fn is_conditional(self) -> bool {
        self.has_application_data() && self != AceType::SystemResourceAttribute
    }
}

bitflags! {
    /// ACE flags (`AceFlags` of `ACE_HEADER`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct AceFlags: u8 {
        /// `OBJECT_INHERIT_ACE` (SDDL `OI`).
        const OBJECT_INHERIT = 0x01;
        /// `CONTAINER_INHERIT_ACE` (SDDL `CI`).
        const CONTAINER_INHERIT = 0x02;
        /// `NO_PROPAGATE_INHERIT_ACE` (SDDL `NP`).
        const NO_PROPAGATE_INHERIT = 0x04;
        /// `INHERIT_ONLY_ACE` (SDDL `IO`): the ACE does not apply to this object.
        const INHERIT_ONLY = 0x08;
        /// `INHERITED_ACE` (SDDL `ID`).
        const INHERITED = 0x10;
        /// `CRITICAL_ACE_FLAG`.
        const CRITICAL = 0x20;
        /// `SUCCESSFUL_ACCESS_ACE_FLAG` (SDDL `SA`).
        const SUCCESSFUL_ACCESS = 0x40;
        /// `FAILED_ACCESS_ACE_FLAG` (SDDL `FA`).
        const FAILED_ACCESS = 0x80;
    }
}

impl AceFlags {
    /// The Win32 names of the flags that are set (`OBJECT_INHERIT_ACE`,
    /// `INHERITED_ACE`, ...), in bit order; a bit without a name as `0x..`.
    pub fn win32_names(self) -> Vec<String> {
        const NAMES: [(AceFlags, &str); 8] = [
            (AceFlags::OBJECT_INHERIT, "OBJECT_INHERIT_ACE"),
            (AceFlags::CONTAINER_INHERIT, "CONTAINER_INHERIT_ACE"),
            (AceFlags::NO_PROPAGATE_INHERIT, "NO_PROPAGATE_INHERIT_ACE"),
            (AceFlags::INHERIT_ONLY, "INHERIT_ONLY_ACE"),
            (AceFlags::INHERITED, "INHERITED_ACE"),
            (AceFlags::CRITICAL, "CRITICAL_ACE_FLAG"),
            (AceFlags::SUCCESSFUL_ACCESS, "SUCCESSFUL_ACCESS_ACE_FLAG"),
            (AceFlags::FAILED_ACCESS, "FAILED_ACCESS_ACE_FLAG"),
        ];
        flag_names(
            self.bits().into(),
            NAMES.iter().map(|(f, n)| (f.bits().into(), *n)),
        )
    }
}

/// The names of the bits of `bits` that `names` names, then any other bits as hex.
fn flag_names<'a>(bits: u32, names: impl Iterator<Item = (u32, &'a str)>) -> Vec<String> {
    let mut named = 0;
    let mut out: Vec<String> = names
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(bit, name)| {
            named |= bit;
            name.to_owned()
        })
        .collect();
    if bits & !named != 0 {
        out.push(format!("0x{:x}", bits & !named));
    }
    out
}

/// An access control entry.
#[doc(alias = "ACE")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ace {
    /// The type.
    pub ace_type: AceType,
    /// The flags.
    pub flags: AceFlags,
    /// The rights it allows, denies, audits or labels.
    pub mask: AccessMask,
    /// Object ACEs: the object type it applies to.
    pub object_type: Option<Guid>,
    /// Object ACEs: the type of child objects that inherit it.
    pub inherited_object_type: Option<Guid>,
    /// The trustee.
    pub sid: Sid,
    /// Callback and resource attribute ACEs: the data after the SID (a condition, an
    /// attribute), kept as it is.
    pub application_data: Vec<u8>,
}

impl Ace {
    /// An ACE of `ace_type` for `sid` with `mask` and `flags`, without object types
    /// or application data.
    pub fn new(ace_type: AceType, flags: AceFlags, mask: AccessMask, sid: Sid) -> Ace {
        Ace {
            ace_type,
            flags,
            mask,
            object_type: None,
            inherited_object_type: None,
            sid,
            application_data: Vec::new(),
        }
    }

    /// An access-allowed ACE (`ACCESS_ALLOWED_ACE`).
    pub fn allow(sid: Sid, mask: AccessMask) -> Ace {
        Ace::new(AceType::AccessAllowed, AceFlags::empty(), mask, sid)
    }

    /// An access-denied ACE (`ACCESS_DENIED_ACE`).
    pub fn deny(sid: Sid, mask: AccessMask) -> Ace {
        Ace::new(AceType::AccessDenied, AceFlags::empty(), mask, sid)
    }

    fn binary_len(&self) -> usize {
        let object = if self.ace_type.is_object() {
            4 + 16
                * (usize::from(self.object_type.is_some())
                    + usize::from(self.inherited_object_type.is_some()))
        } else {
            0
        };
        let len = 8 + object + self.sid.binary_len() + self.application_data.len();
        len.next_multiple_of(4)
    }

    fn write_binary(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = self.binary_len();
        let size = u16::try_from(len)
            .map_err(|_| Error::new(ErrorKind::InvalidAcl, "an ACE is larger than 65535 bytes"))?;
        let start = out.len();
        out.push(self.ace_type.code());
        out.push(self.flags.bits());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&self.mask.bits().to_le_bytes());
        if self.ace_type.is_object() {
            let flags = u32::from(self.object_type.is_some())
                | (u32::from(self.inherited_object_type.is_some()) << 1);
            out.extend_from_slice(&flags.to_le_bytes());
            for g in [self.object_type, self.inherited_object_type]
                .into_iter()
                .flatten()
            {
                out.extend_from_slice(&g.to_le_bytes());
            }
        }
        self.sid.write_binary(out);
        out.extend_from_slice(&self.application_data);
        out.resize(start + len, 0);
        Ok(())
    }

    /// Reads one ACE from the start of `b`; returns it and its size.
    fn read_binary(b: &[u8]) -> Result<(Ace, usize)> {
        let bad = |why: &str| Error::new(ErrorKind::InvalidAcl, format!("binary ACE: {why}"));
        if b.len() < 8 {
            return Err(bad("shorter than its header and mask"));
        }
        let ace_type = AceType::from_code(b[0])
            .ok_or_else(|| bad(&format!("unsupported ACE type 0x{:02x}", b[0])))?;
        let flags = AceFlags::from_bits_retain(b[1]);
        let size = usize::from(u16::from_le_bytes([b[2], b[3]]));
        if size < 8 || size > b.len() {
            return Err(bad("size is out of bounds"));
        }
        let body = &b[..size];
        let mask = AccessMask::from_raw(u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
        let mut pos = 8;
        let (mut object_type, mut inherited_object_type) = (None, None);
        if ace_type.is_object() {
            let f = body.get(8..12).ok_or_else(|| bad("object flags missing"))?;
            let f = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
            pos = 12;
            let mut guid = |present: bool| -> Result<Option<Guid>> {
                if !present {
                    return Ok(None);
                }
                let g = body
                    .get(pos..pos + 16)
                    .ok_or_else(|| bad("object type truncated"))?;
                pos += 16;
                let mut a = [0u8; 16];
                a.copy_from_slice(g);
                Ok(Some(Guid::from_le_bytes(a)))
            };
            object_type = guid(f & 1 != 0)?;
            inherited_object_type = guid(f & 2 != 0)?;
        }
        let (sid, sid_len) = Sid::read_binary(&body[pos..])
            .map_err(|e| bad(&format!("trustee: {}", e.message())))?;
        pos += sid_len;
        let application_data = if ace_type.has_application_data() {
            body[pos..].to_vec()
        } else {
            Vec::new()
        };
        Ok((
            Ace {
                ace_type,
                flags,
                mask,
                object_type,
                inherited_object_type,
                sid,
                application_data,
            },
            size,
        ))
    }
}

/// `ACL_REVISION`: ACLs without object ACEs.
pub const ACL_REVISION: u8 = 2;
/// `ACL_REVISION_DS`: ACLs with object ACEs.
pub const ACL_REVISION_DS: u8 = 4;

/// An access control list: ACEs in order.
#[doc(alias = "ACL")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Acl {
    /// `ACL_REVISION` (2) or `ACL_REVISION_DS` (4, needed for object ACEs).
    pub revision: u8,
    /// The entries, in the order AccessCheck reads them.
    pub aces: Vec<Ace>,
}

impl Acl {
    /// An ACL of `aces`, with the lowest revision that can hold them.
    pub fn new(aces: Vec<Ace>) -> Acl {
        let revision = if aces.iter().any(|a| a.ace_type.is_object()) {
            ACL_REVISION_DS
        } else {
            ACL_REVISION
        };
        Acl { revision, aces }
    }

    /// An empty ACL (as a DACL: grants nothing).
    pub fn empty() -> Acl {
        Acl::new(Vec::new())
    }

    fn binary_len(&self) -> usize {
        8 + self.aces.iter().map(Ace::binary_len).sum::<usize>()
    }

    fn write_binary(&self, out: &mut Vec<u8>) -> Result<()> {
        let too_big = || Error::new(ErrorKind::InvalidAcl, "an ACL is larger than 65535 bytes");
        let size = u16::try_from(self.binary_len()).map_err(|_| too_big())?;
        let count = u16::try_from(self.aces.len()).map_err(|_| too_big())?;
        out.push(self.revision);
        out.push(0);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        for ace in &self.aces {
            ace.write_binary(out)?;
        }
        Ok(())
    }

    fn read_binary(b: &[u8]) -> Result<Acl> {
        let bad = |why: &str| Error::new(ErrorKind::InvalidAcl, format!("binary ACL: {why}"));
        if b.len() < 8 {
            return Err(bad("shorter than its header"));
        }
        let revision = b[0];
        if !(ACL_REVISION..=ACL_REVISION_DS).contains(&revision) {
            return Err(bad(&format!("unknown revision {revision}")));
        }
        let size = usize::from(u16::from_le_bytes([b[2], b[3]]));
        let count = usize::from(u16::from_le_bytes([b[4], b[5]]));
        if size < 8 || size > b.len() {
            return Err(bad("size is out of bounds"));
        }
        let mut aces = Vec::with_capacity(count.min(size / 8));
        let mut pos = 8;
        for _ in 0..count {
            let (ace, len) = Ace::read_binary(&b[pos..size])?;
            aces.push(ace);
            pos += len;
        }
        Ok(Acl { revision, aces })
    }
}

bitflags! {
    /// Security descriptor control flags (`SECURITY_DESCRIPTOR_CONTROL`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Control: u16 {
        /// `SE_OWNER_DEFAULTED`.
        const OWNER_DEFAULTED = 0x0001;
        /// `SE_GROUP_DEFAULTED`.
        const GROUP_DEFAULTED = 0x0002;
        /// `SE_DACL_PRESENT`: with no DACL, this marks a NULL DACL.
        const DACL_PRESENT = 0x0004;
        /// `SE_DACL_DEFAULTED`.
        const DACL_DEFAULTED = 0x0008;
        /// `SE_SACL_PRESENT`: with no SACL, this marks a NULL SACL.
        const SACL_PRESENT = 0x0010;
        /// `SE_SACL_DEFAULTED`.
        const SACL_DEFAULTED = 0x0020;
        /// `SE_DACL_AUTO_INHERIT_REQ` (SDDL `AR` on the DACL).
        const DACL_AUTO_INHERIT_REQ = 0x0100;
        /// `SE_SACL_AUTO_INHERIT_REQ` (SDDL `AR` on the SACL).
        const SACL_AUTO_INHERIT_REQ = 0x0200;
        /// `SE_DACL_AUTO_INHERITED` (SDDL `AI` on the DACL).
        const DACL_AUTO_INHERITED = 0x0400;
        /// `SE_SACL_AUTO_INHERITED` (SDDL `AI` on the SACL).
        const SACL_AUTO_INHERITED = 0x0800;
        /// `SE_DACL_PROTECTED` (SDDL `P` on the DACL).
        const DACL_PROTECTED = 0x1000;
        /// `SE_SACL_PROTECTED` (SDDL `P` on the SACL).
        const SACL_PROTECTED = 0x2000;
        /// `SE_RM_CONTROL_VALID`: the resource manager control byte is valid.
        const RM_CONTROL_VALID = 0x4000;
        /// `SE_SELF_RELATIVE`: set on every binary form guise writes.
        const SELF_RELATIVE = 0x8000;
    }
}

impl Control {
    /// The Win32 names of the flags that are set (`SE_DACL_PRESENT`,
    /// `SE_DACL_PROTECTED`, ...), in bit order; a bit without a name as `0x..`.
    pub fn win32_names(self) -> Vec<String> {
        const NAMES: [(Control, &str); 14] = [
            (Control::OWNER_DEFAULTED, "SE_OWNER_DEFAULTED"),
            (Control::GROUP_DEFAULTED, "SE_GROUP_DEFAULTED"),
            (Control::DACL_PRESENT, "SE_DACL_PRESENT"),
            (Control::DACL_DEFAULTED, "SE_DACL_DEFAULTED"),
            (Control::SACL_PRESENT, "SE_SACL_PRESENT"),
            (Control::SACL_DEFAULTED, "SE_SACL_DEFAULTED"),
            (Control::DACL_AUTO_INHERIT_REQ, "SE_DACL_AUTO_INHERIT_REQ"),
            (Control::SACL_AUTO_INHERIT_REQ, "SE_SACL_AUTO_INHERIT_REQ"),
            (Control::DACL_AUTO_INHERITED, "SE_DACL_AUTO_INHERITED"),
            (Control::SACL_AUTO_INHERITED, "SE_SACL_AUTO_INHERITED"),
            (Control::DACL_PROTECTED, "SE_DACL_PROTECTED"),
            (Control::SACL_PROTECTED, "SE_SACL_PROTECTED"),
            (Control::RM_CONTROL_VALID, "SE_RM_CONTROL_VALID"),
            (Control::SELF_RELATIVE, "SE_SELF_RELATIVE"),
        ];
        flag_names(
            self.bits().into(),
            NAMES.iter().map(|(f, n)| (f.bits().into(), *n)),
        )
    }
}

/// A security descriptor (`SECURITY_DESCRIPTOR`).
///
/// `dacl` is `None` both when there is no DACL and for a NULL DACL; `control` tells
/// them apart (`DACL_PRESENT` set means a NULL DACL). Both grant everyone full
/// access. An empty DACL (`Some(Acl::empty())`) grants nothing. The same holds for
/// the SACL. Writers set `DACL_PRESENT`/`SACL_PRESENT` whenever the ACL is `Some`;
/// [`SecurityDescriptor::normalized`] does the same in memory.
#[doc(alias = "SECURITY_DESCRIPTOR")]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct SecurityDescriptor {
    /// Control flags (the `SELF_RELATIVE` flag is a property of the binary form and
    /// is not kept here).
    pub control: Control,
    /// The resource manager control byte (`Sbz1`), meaningful with
    /// `RM_CONTROL_VALID`.
    pub rm_control: u8,
    /// The owner.
    pub owner: Option<Sid>,
    /// The primary group.
    pub group: Option<Sid>,
    /// The discretionary ACL: who may do what.
    pub dacl: Option<Acl>,
    /// The system ACL: audit, alarm and label entries.
    pub sacl: Option<Acl>,
}

impl SecurityDescriptor {
    /// The same descriptor with `DACL_PRESENT`/`SACL_PRESENT` set where an ACL is
    /// present and `SELF_RELATIVE` cleared.
    pub fn normalized(mut self) -> SecurityDescriptor {
        self.control.set(
            Control::DACL_PRESENT,
            self.dacl.is_some() || self.control.contains(Control::DACL_PRESENT),
        );
        self.control.set(
            Control::SACL_PRESENT,
            self.sacl.is_some() || self.control.contains(Control::SACL_PRESENT),
        );
        self.control.remove(Control::SELF_RELATIVE);
        self
    }

    /// Whether the DACL is NULL or absent: everyone gets every right.
    pub fn grants_everything(&self) -> bool {
        self.dacl.is_none()
    }

    /// The self-relative binary form (MS-DTYP 2.4.6; [`MakeSelfRelativeSD`]): a
    /// 20-byte header, then the SACL, DACL, owner and group.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidAcl`] if an ACL or ACE exceeds the 16-bit sizes of the
    /// format.
    ///
    /// [`MakeSelfRelativeSD`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-makeselfrelativesd
    #[doc(alias = "MakeSelfRelativeSD")]
    pub fn to_self_relative(&self) -> Result<Vec<u8>> {
        let mut control = self.control | Control::SELF_RELATIVE;
        control.set(
            Control::DACL_PRESENT,
            self.dacl.is_some() || self.control.contains(Control::DACL_PRESENT),
        );
        control.set(
            Control::SACL_PRESENT,
            self.sacl.is_some() || self.control.contains(Control::SACL_PRESENT),
        );
        let mut out = vec![0u8; 20];
        out[0] = 1;
        out[1] = if control.contains(Control::RM_CONTROL_VALID) {
            self.rm_control
        } else {
            0
        };
        out[2..4].copy_from_slice(&control.bits().to_le_bytes());
        let offset = |out: &Vec<u8>| u32::try_from(out.len()).unwrap_or(u32::MAX);
        let mut offsets = [0u32; 4]; // owner, group, sacl, dacl
        if let Some(sacl) = &self.sacl {
            offsets[2] = offset(&out);
            sacl.write_binary(&mut out)?;
        }
        if let Some(dacl) = &self.dacl {
            offsets[3] = offset(&out);
            dacl.write_binary(&mut out)?;
        }
        if let Some(owner) = &self.owner {
            offsets[0] = offset(&out);
            owner.write_binary(&mut out);
        }
        if let Some(group) = &self.group {
            offsets[1] = offset(&out);
            group.write_binary(&mut out);
        }
        for (i, o) in offsets.iter().enumerate() {
            out[4 + 4 * i..8 + 4 * i].copy_from_slice(&o.to_le_bytes());
        }
        Ok(out)
    }

    /// Reads the self-relative binary form. Offsets may point anywhere inside the
    /// buffer; every size is checked.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSecurityDescriptor`] for a malformed header or an offset
    /// out of bounds; [`ErrorKind::InvalidAcl`] or [`ErrorKind::InvalidSid`] for a
    /// malformed part.
    #[doc(alias = "MakeAbsoluteSD")]
    pub fn from_self_relative(b: &[u8]) -> Result<SecurityDescriptor> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidSecurityDescriptor,
                format!("binary security descriptor: {why}"),
            )
        };
        if b.len() < 20 {
            return Err(bad("shorter than its 20-byte header"));
        }
        if b[0] != 1 {
            return Err(bad(&format!("unknown revision {}", b[0])));
        }
        let control = Control::from_bits_retain(u16::from_le_bytes([b[2], b[3]]));
        if !control.contains(Control::SELF_RELATIVE) {
            return Err(bad("not in self-relative form"));
        }
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        let part = |off: usize, what: &str| -> Result<Option<&[u8]>> {
            match off {
                0 => Ok(None),
                o if o < 20 || o >= b.len() => {
                    Err(bad(&format!("{what} offset {o} is out of bounds")))
                }
                o => Ok(Some(&b[o..])),
            }
        };
        let sid = |off: usize, what: &str| -> Result<Option<Sid>> {
            part(off, what)?
                .map(|p| Sid::read_binary(p).map(|(s, _)| s))
                .transpose()
        };
        let owner = sid(word(4), "owner")?;
        let group = sid(word(8), "group")?;
        let sacl = if control.contains(Control::SACL_PRESENT) {
            part(word(12), "SACL")?.map(Acl::read_binary).transpose()?
        } else {
            None
        };
        let dacl = if control.contains(Control::DACL_PRESENT) {
            part(word(16), "DACL")?.map(Acl::read_binary).transpose()?
        } else {
            None
        };
        Ok(SecurityDescriptor {
            control: control - Control::SELF_RELATIVE,
            rm_control: if control.contains(Control::RM_CONTROL_VALID) {
                b[1]
            } else {
                0
            },
            owner,
            group,
            dacl,
            sacl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win32_names_of_types_and_flags() {
        assert_eq!(
            AceType::AccessAllowed.win32_name(),
            "ACCESS_ALLOWED_ACE_TYPE"
        );
        assert_eq!(
            AceType::SystemMandatoryLabel.win32_name(),
            "SYSTEM_MANDATORY_LABEL_ACE_TYPE"
        );
        for t in AceType::all() {
            assert!(t.win32_name().ends_with("_ACE_TYPE"), "{t:?}");
        }
        assert_eq!(
            (AceFlags::OBJECT_INHERIT | AceFlags::INHERITED).win32_names(),
            ["OBJECT_INHERIT_ACE", "INHERITED_ACE"]
        );
        assert!(AceFlags::empty().win32_names().is_empty());
        assert_eq!(
            (Control::DACL_PRESENT | Control::DACL_PROTECTED).win32_names(),
            ["SE_DACL_PRESENT", "SE_DACL_PROTECTED"]
        );
        assert_eq!(
            Control::from_bits_retain(0x0044).win32_names(),
            ["SE_DACL_PRESENT", "0x40"]
        );
    }

    #[test]
    fn guid_text_and_binary() {
        let g = Guid::parse("bf967aba-0de6-11d0-a285-00aa003049e2").unwrap();
        assert_eq!(g.to_string(), "bf967aba-0de6-11d0-a285-00aa003049e2");
        assert_eq!(&g.to_le_bytes()[..4], &[0xba, 0x7a, 0x96, 0xbf]);
        assert_eq!(Guid::from_le_bytes(g.to_le_bytes()), g);
        assert!(Guid::parse("bf967aba-0de6-11d0-a285-00aa003049e").is_none());
        assert!(Guid::parse("bf967aba+0de6-11d0-a285-00aa003049e2").is_none());
        assert!(Guid::parse("zf967aba-0de6-11d0-a285-00aa003049e2").is_none());
    }

    #[test]
    fn binary_round_trip_with_every_part() {
        let mut obj = Ace::new(
            AceType::AccessAllowedObject,
            AceFlags::CONTAINER_INHERIT,
            AccessMask::from_raw(0x30),
            Sid::AUTHENTICATED_USERS,
        );
        obj.object_type = Guid::parse("bf967aba-0de6-11d0-a285-00aa003049e2");
        let mut cb = Ace::allow(Sid::EVERYONE, AccessMask::READ_CONTROL);
        cb.ace_type = AceType::AccessAllowedCallback;
        cb.application_data = b"artx\0\0\0".to_vec();
        let sd = SecurityDescriptor {
            control: Control::DACL_PROTECTED,
            rm_control: 0,
            owner: Some(Sid::ADMINISTRATORS),
            group: Some(Sid::LOCAL_SYSTEM),
            dacl: Some(Acl::new(vec![
                Ace::deny(Sid::ANONYMOUS, AccessMask::from_raw(0x1f01ff)),
                obj,
                cb,
            ])),
            sacl: Some(Acl::new(vec![Ace::new(
                AceType::SystemAudit,
                AceFlags::FAILED_ACCESS,
                AccessMask::GENERIC_ALL,
                Sid::EVERYONE,
            )])),
        }
        .normalized();
        let bin = sd.to_self_relative().unwrap();
        assert_eq!(&bin[..4], &[1, 0, 0x14, 0x90]);
        let mut back = SecurityDescriptor::from_self_relative(&bin).unwrap();
        // Callback data is padded to a multiple of 4 in the binary form.
        assert_eq!(
            back.dacl.as_ref().unwrap().aces[2].application_data,
            b"artx\0\0\0\0"
        );
        back.dacl.as_mut().unwrap().aces[2].application_data.pop();
        assert_eq!(back, sd);
    }

    #[test]
    fn null_and_empty_dacl_differ() {
        let null = SecurityDescriptor {
            control: Control::DACL_PRESENT,
            ..Default::default()
        };
        let bin = null.to_self_relative().unwrap();
        assert_eq!(SecurityDescriptor::from_self_relative(&bin).unwrap(), null);
        let empty = SecurityDescriptor {
            dacl: Some(Acl::empty()),
            ..Default::default()
        }
        .normalized();
        let back =
            SecurityDescriptor::from_self_relative(&empty.to_self_relative().unwrap()).unwrap();
        assert_eq!(back.dacl, Some(Acl::empty()));
        assert!(!back.grants_everything() && null.grants_everything());
    }

    #[test]
    fn malformed_binary_is_an_error() {
        assert!(SecurityDescriptor::from_self_relative(&[1, 0, 0, 0x80]).is_err());
        let mut b = vec![1, 0, 0x04, 0x80];
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&200u32.to_le_bytes());
        assert_eq!(
            SecurityDescriptor::from_self_relative(&b)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidSecurityDescriptor
        );
        // An ACL that claims more ACEs than it holds.
        let mut acl = vec![2, 0, 8, 0, 1, 0, 0, 0];
        acl.extend_from_slice(&[0; 4]);
        assert!(Acl::read_binary(&acl).is_err());
    }
}
