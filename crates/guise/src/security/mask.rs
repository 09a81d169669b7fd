//! Access masks and generic mappings.
//!
//! # Example
//! ```
//! use guise::security::{AccessMask, GenericMapping};
//!
//! let read = GenericMapping::FILE.map(AccessMask::GENERIC_READ);
//! assert_eq!(read, AccessMask::FILE_GENERIC_READ);
//! assert!(!read.has_generic());
//! ```

use std::fmt;

use bitflags::bitflags;

bitflags! {
    /// An access mask (`ACCESS_MASK`): specific rights in the low 16 bits, then the
    /// standard rights, `ACCESS_SYSTEM_SECURITY`, `MAXIMUM_ALLOWED` and the generic
    /// rights. Any bit may be set; the named ones are the standard and generic rights.
    #[doc(alias = "ACCESS_MASK")]
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
    pub struct AccessMask: u32 {
        /// `DELETE`.
        const DELETE = 0x0001_0000;
        /// `READ_CONTROL`: read the security descriptor (but not the SACL).
        const READ_CONTROL = 0x0002_0000;
        /// `WRITE_DAC`.
        const WRITE_DAC = 0x0004_0000;
        /// `WRITE_OWNER`.
        const WRITE_OWNER = 0x0008_0000;
        /// `SYNCHRONIZE`.
        const SYNCHRONIZE = 0x0010_0000;
        /// `ACCESS_SYSTEM_SECURITY`: read or write the SACL (needs SeSecurityPrivilege).
        const ACCESS_SYSTEM_SECURITY = 0x0100_0000;
        /// `MAXIMUM_ALLOWED`: ask for every right the caller may have.
        const MAXIMUM_ALLOWED = 0x0200_0000;
        /// `GENERIC_ALL`.
        const GENERIC_ALL = 0x1000_0000;
        /// `GENERIC_EXECUTE`.
        const GENERIC_EXECUTE = 0x2000_0000;
        /// `GENERIC_WRITE`.
        const GENERIC_WRITE = 0x4000_0000;
        /// `GENERIC_READ`.
        const GENERIC_READ = 0x8000_0000;

        /// <https://docs.rs/bitflags/latest/bitflags/#externally-defined-flags>
        const _ = !0;
    }
}

impl AccessMask {
    /// `SPECIFIC_RIGHTS_ALL`: the object-specific rights.
    pub const SPECIFIC_RIGHTS_ALL: AccessMask = AccessMask::from_bits_retain(0x0000_FFFF);
    /// `STANDARD_RIGHTS_REQUIRED`: DELETE, READ_CONTROL, WRITE_DAC, WRITE_OWNER.
    pub const STANDARD_RIGHTS_REQUIRED: AccessMask = AccessMask::from_bits_retain(0x000F_0000);
    /// `STANDARD_RIGHTS_ALL`: the required standard rights and SYNCHRONIZE.
    pub const STANDARD_RIGHTS_ALL: AccessMask = AccessMask::from_bits_retain(0x001F_0000);
    /// The four generic rights.
    pub const GENERIC_MASK: AccessMask = AccessMask::from_bits_retain(0xF000_0000);

    /// `FILE_READ_DATA` / `FILE_LIST_DIRECTORY`.
    pub const FILE_READ_DATA: AccessMask = AccessMask::from_bits_retain(0x0001);
    /// `FILE_WRITE_DATA` / `FILE_ADD_FILE`.
    pub const FILE_WRITE_DATA: AccessMask = AccessMask::from_bits_retain(0x0002);
    /// `FILE_APPEND_DATA` / `FILE_ADD_SUBDIRECTORY`.
    pub const FILE_APPEND_DATA: AccessMask = AccessMask::from_bits_retain(0x0004);
    /// `FILE_READ_EA`.
    pub const FILE_READ_EA: AccessMask = AccessMask::from_bits_retain(0x0008);
    /// `FILE_WRITE_EA`.
    pub const FILE_WRITE_EA: AccessMask = AccessMask::from_bits_retain(0x0010);
    /// `FILE_EXECUTE` / `FILE_TRAVERSE`.
    pub const FILE_EXECUTE: AccessMask = AccessMask::from_bits_retain(0x0020);
    /// `FILE_DELETE_CHILD`.
    pub const FILE_DELETE_CHILD: AccessMask = AccessMask::from_bits_retain(0x0040);
    /// `FILE_READ_ATTRIBUTES`.
    pub const FILE_READ_ATTRIBUTES: AccessMask = AccessMask::from_bits_retain(0x0080);
    /// `FILE_WRITE_ATTRIBUTES`.
    pub const FILE_WRITE_ATTRIBUTES: AccessMask = AccessMask::from_bits_retain(0x0100);
    /// `FILE_ALL_ACCESS` (SDDL `FA`).
    pub const FILE_ALL_ACCESS: AccessMask = AccessMask::from_bits_retain(0x001F_01FF);
    /// `FILE_GENERIC_READ` (SDDL `FR`).
    pub const FILE_GENERIC_READ: AccessMask = AccessMask::from_bits_retain(0x0012_0089);
    /// `FILE_GENERIC_WRITE` (SDDL `FW`).
    pub const FILE_GENERIC_WRITE: AccessMask = AccessMask::from_bits_retain(0x0012_0116);
    /// `FILE_GENERIC_EXECUTE` (SDDL `FX`).
    pub const FILE_GENERIC_EXECUTE: AccessMask = AccessMask::from_bits_retain(0x0012_00A0);

    /// `KEY_QUERY_VALUE`.
    pub const KEY_QUERY_VALUE: AccessMask = AccessMask::from_bits_retain(0x0001);
    /// `KEY_SET_VALUE`.
    pub const KEY_SET_VALUE: AccessMask = AccessMask::from_bits_retain(0x0002);
    /// `KEY_ALL_ACCESS` (SDDL `KA`).
    pub const KEY_ALL_ACCESS: AccessMask = AccessMask::from_bits_retain(0x000F_003F);
    /// `KEY_READ` (SDDL `KR`).
    pub const KEY_READ: AccessMask = AccessMask::from_bits_retain(0x0002_0019);
    /// `KEY_WRITE` (SDDL `KW`).
    pub const KEY_WRITE: AccessMask = AccessMask::from_bits_retain(0x0002_0006);
    /// `KEY_EXECUTE` (SDDL `KX`; the same bits as `KEY_READ`).
    pub const KEY_EXECUTE: AccessMask = AccessMask::from_bits_retain(0x0002_0019);

    /// A mask from raw bits.
    pub const fn from_raw(bits: u32) -> AccessMask {
        AccessMask::from_bits_retain(bits)
    }

    /// Whether any generic right is set.
    pub fn has_generic(self) -> bool {
        self.intersects(AccessMask::GENERIC_MASK)
    }
}

impl fmt::Debug for AccessMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessMask(0x{:08x})", self.bits())
    }
}

impl fmt::Display for AccessMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.bits())
    }
}

/// How the generic rights map to an object type's specific and standard rights
/// (`GENERIC_MAPPING`).
#[doc(alias = "GENERIC_MAPPING")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GenericMapping {
    /// What `GENERIC_READ` means.
    pub read: AccessMask,
    /// What `GENERIC_WRITE` means.
    pub write: AccessMask,
    /// What `GENERIC_EXECUTE` means.
    pub execute: AccessMask,
    /// What `GENERIC_ALL` means.
    pub all: AccessMask,
}

impl GenericMapping {
    /// Files and directories: `FILE_GENERIC_READ`, `FILE_GENERIC_WRITE`,
    /// `FILE_GENERIC_EXECUTE`, `FILE_ALL_ACCESS`.
    pub const FILE: GenericMapping = GenericMapping {
        read: AccessMask::FILE_GENERIC_READ,
        write: AccessMask::FILE_GENERIC_WRITE,
        execute: AccessMask::FILE_GENERIC_EXECUTE,
        all: AccessMask::FILE_ALL_ACCESS,
    };

    /// Registry keys: `KEY_READ`, `KEY_WRITE`, `KEY_EXECUTE`, `KEY_ALL_ACCESS`.
    pub const KEY: GenericMapping = GenericMapping {
        read: AccessMask::KEY_READ,
        write: AccessMask::KEY_WRITE,
        execute: AccessMask::KEY_EXECUTE,
        all: AccessMask::KEY_ALL_ACCESS,
    };

    /// A default for a server's own objects: read is `READ_CONTROL | 0x1`, write
    /// `READ_CONTROL | 0x2`, execute `READ_CONTROL | 0x4`, all `STANDARD_RIGHTS_ALL`
    /// with every specific right.
    pub const GENERIC: GenericMapping = GenericMapping {
        read: AccessMask::from_raw(0x0002_0001),
        write: AccessMask::from_raw(0x0002_0002),
        execute: AccessMask::from_raw(0x0002_0004),
        all: AccessMask::from_raw(0x001F_FFFF),
    };

    /// Replaces the generic rights in `mask` by what they mean ([`MapGenericMask`]).
    ///
    /// [`MapGenericMask`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-mapgenericmask
    #[doc(alias = "MapGenericMask")]
    #[inline]
    pub fn map(&self, mask: AccessMask) -> AccessMask {
        if !mask.intersects(AccessMask::GENERIC_MASK) {
            return mask;
        }
        let mut out = mask - AccessMask::GENERIC_MASK;
        for (generic, specific) in [
            (AccessMask::GENERIC_READ, self.read),
            (AccessMask::GENERIC_WRITE, self.write),
            (AccessMask::GENERIC_EXECUTE, self.execute),
            (AccessMask::GENERIC_ALL, self.all),
        ] {
            if mask.contains(generic) {
                out |= specific;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_generic_mask() {
        let m = GenericMapping::FILE;
        assert_eq!(
            m.map(AccessMask::GENERIC_READ),
            AccessMask::FILE_GENERIC_READ
        );
        assert_eq!(
            m.map(AccessMask::GENERIC_ALL | AccessMask::from_raw(0x1000_0000)),
            AccessMask::FILE_ALL_ACCESS
        );
        assert_eq!(
            m.map(AccessMask::GENERIC_WRITE | AccessMask::DELETE),
            AccessMask::FILE_GENERIC_WRITE | AccessMask::DELETE
        );
        assert!(!m.map(AccessMask::GENERIC_MASK).has_generic());
        assert_eq!(AccessMask::from_raw(0x1f01ff).to_string(), "0x1f01ff");
    }
}
