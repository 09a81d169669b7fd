//! The SID aliases of SDDL ("SID Strings"): the one table both the SDDL parser and
//! the conditional-expression parser read.

use crate::error::{Error, ErrorKind, Result};
use crate::sid::Sid;

/// Where an SDDL alias points.
#[derive(Clone, Copy)]
enum AliasTarget {
    /// A fixed SID: authority and sub-authorities.
    Fixed(u64, &'static [u32]),
    /// A RID relative to the domain SID.
    Domain(u32),
}

use AliasTarget::{Domain, Fixed};

/// The SID aliases of "SID Strings".
const SID_ALIASES: &[(&str, AliasTarget)] = &[
    ("AA", Fixed(5, &[32, 579])),
    ("AC", Fixed(15, &[2, 1])),
    ("AN", Fixed(5, &[7])),
    ("AO", Fixed(5, &[32, 548])),
    ("AP", Domain(525)),
    ("AS", Fixed(18, &[1])),
    ("AU", Fixed(5, &[11])),
    ("BA", Fixed(5, &[32, 544])),
    ("BG", Fixed(5, &[32, 546])),
    ("BO", Fixed(5, &[32, 551])),
    ("BU", Fixed(5, &[32, 545])),
    ("CA", Domain(517)),
    ("CD", Fixed(5, &[32, 574])),
    ("CG", Fixed(3, &[1])),
    ("CN", Domain(522)),
    ("CO", Fixed(3, &[0])),
    ("CY", Fixed(5, &[32, 569])),
    ("DA", Domain(512)),
    ("DC", Domain(515)),
    ("DD", Domain(516)),
    ("DG", Domain(514)),
    ("DU", Domain(513)),
    ("EA", Domain(519)),
    ("ED", Fixed(5, &[9])),
    ("EK", Domain(527)),
    ("ER", Fixed(5, &[32, 573])),
    ("ES", Fixed(5, &[32, 576])),
    ("HA", Fixed(5, &[32, 578])),
    ("HI", Fixed(16, &[12288])),
    ("IS", Fixed(5, &[32, 568])),
    ("IU", Fixed(5, &[4])),
    ("KA", Domain(526)),
    ("LA", Domain(500)),
    ("LG", Domain(501)),
    ("LS", Fixed(5, &[19])),
    ("LU", Fixed(5, &[32, 559])),
    ("LW", Fixed(16, &[4096])),
    ("ME", Fixed(16, &[8192])),
    ("MP", Fixed(16, &[8448])),
    ("MS", Fixed(5, &[32, 577])),
    ("MU", Fixed(5, &[32, 558])),
    ("NO", Fixed(5, &[32, 556])),
    ("NS", Fixed(5, &[20])),
    ("NU", Fixed(5, &[2])),
    ("OW", Fixed(3, &[4])),
    ("PA", Domain(520)),
    ("PO", Fixed(5, &[32, 550])),
    ("PS", Fixed(5, &[10])),
    ("PU", Fixed(5, &[32, 547])),
    ("RA", Fixed(5, &[32, 575])),
    ("RC", Fixed(5, &[12])),
    ("RD", Fixed(5, &[32, 555])),
    ("RE", Fixed(5, &[32, 552])),
    ("RM", Fixed(5, &[32, 580])),
    ("RO", Domain(498)),
    ("RS", Domain(553)),
    ("RU", Fixed(5, &[32, 554])),
    ("SA", Domain(518)),
    ("SI", Fixed(16, &[16384])),
    ("SO", Fixed(5, &[32, 549])),
    ("SS", Fixed(18, &[2])),
    ("SU", Fixed(5, &[6])),
    ("SY", Fixed(5, &[18])),
    ("UD", Fixed(5, &[84, 0, 0, 0, 0, 0])),
    ("WD", Fixed(1, &[0])),
    ("WR", Fixed(5, &[33])),
];

/// The SID an alias stands for (aliases are matched without regard to case, as
/// Windows does).
///
/// # Errors
/// [`ErrorKind::InvalidSid`] for an unknown alias, or a domain-relative one without
/// `domain`.
pub fn alias_sid(alias: &str, domain: Option<&Sid>) -> Result<Sid> {
    // The table is sorted by alias: a binary search, without regard to case (and
    // without an upper-case copy).
    let upper = alias.bytes().map(|b| b.to_ascii_uppercase());
    let (_, target) = SID_ALIASES
        .binary_search_by(|(a, _)| a.bytes().cmp(upper.clone()))
        .ok()
        .map(|i| &SID_ALIASES[i])
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidSid,
                format!("unknown SID alias {alias:?}"),
            )
        })?;
    match *target {
        Fixed(auth, subs) => Sid::new(auth, subs),
        Domain(rid) => {
            let domain = domain.ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidSid,
                    format!("the alias {alias} is relative to a domain: give the domain SID"),
                )
            })?;
            let mut subs = domain.sub_authorities().to_vec();
            subs.push(rid);
            Sid::new(domain.authority(), &subs)
        }
    }
}

/// The alias of a SID, if it has one (domain-relative ones only with `domain`).
pub fn sid_alias(sid: &Sid, domain: Option<&Sid>) -> Option<&'static str> {
    SID_ALIASES.iter().find_map(|(alias, target)| {
        let hit = match *target {
            Fixed(auth, subs) => sid.authority() == auth && sid.sub_authorities() == subs,
            Domain(rid) => domain.is_some_and(|d| {
                let s = sid.sub_authorities();
                sid.authority() == d.authority()
                    && s.len() == d.sub_authorities().len() + 1
                    && s[..s.len() - 1] == *d.sub_authorities()
                    && s[s.len() - 1] == rid
            }),
        };
        hit.then_some(*alias)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alias_table_is_sorted_for_its_binary_search() {
        assert!(SID_ALIASES.windows(2).all(|w| w[0].0 < w[1].0));
        for (alias, _) in SID_ALIASES {
            let sid = alias_sid(
                &alias.to_ascii_lowercase(),
                Some(&Sid::new(5, &[21, 1, 2, 3]).unwrap()),
            );
            assert!(sid.is_ok(), "{alias}");
        }
    }
}
