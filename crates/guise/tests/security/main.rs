//! Security descriptors, SDDL and AccessCheck: Windows conformance cases (after Wine's
//! advapi32 tests, which encode real Windows behaviour), the rules of MS-DTYP
//! 2.5.3.2, and property tests.

mod access_rules;
mod file_model;
mod integrity;
mod nesting;
mod porter;
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

/// The fuzz seed corpus, run through the same checks as the fuzz targets.
#[test]
fn fuzz_seeds_round_trip() {
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let mut count = 0;
    for entry in std::fs::read_dir(seeds.join("sddl_parse")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if let Ok(d) = sddl::parse(&text, None) {
            let printed = sddl::to_string(&d, None).unwrap();
            assert_eq!(sddl::parse(&printed, None).unwrap(), d, "{text:?}");
            count += 1;
        }
    }
    for entry in std::fs::read_dir(seeds.join("binary_parse")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let d = SecurityDescriptor::from_self_relative(&bytes).unwrap();
        assert_eq!(d.to_self_relative().unwrap(), bytes);
        count += 1;
    }
    assert!(count >= 10, "only {count} seeds ran");
}
