//! Security descriptors, SDDL and AccessCheck: Windows conformance cases (after Wine's
//! advapi32 tests, which encode real Windows behaviour), the rules of MS-DTYP
//! 2.5.3.2, and property tests.

mod access_rules;
mod props;
mod wine;

use guise::security::{AccessMask, SecurityDescriptor, sddl};
use guise::token::{Group, GroupAttributes};
use guise::{Privilege, Sid, Token};

pub(crate) fn sd(s: &str) -> SecurityDescriptor {
    sddl::parse(s, None).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

pub(crate) fn sid(s: &str) -> Sid {
    s.parse().unwrap()
}

pub(crate) fn enabled(s: Sid) -> Group {
    Group {
        sid: s,
        attributes: GroupAttributes::DEFAULT,
    }
}

pub(crate) fn deny_only(s: Sid) -> Group {
    Group {
        sid: s,
        attributes: GroupAttributes::USE_FOR_DENY_ONLY,
    }
}

/// An Identification-level token for `user` with `groups` and enabled `privileges`.
pub(crate) fn token(user: &str, groups: &[Group], privileges: &[Privilege]) -> Token {
    Token::from_sids(
        sid(user),
        groups.iter().copied(),
        privileges.iter().copied(),
    )
}

pub(crate) fn mask(bits: u32) -> AccessMask {
    AccessMask::from_raw(bits)
}
