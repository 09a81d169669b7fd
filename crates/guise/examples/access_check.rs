//! ConvertStringSecurityDescriptorToSecurityDescriptor and AccessCheck: a
//! security descriptor from SDDL, checked for a client's token.
//!
//! `cargo run --example access_check`

use guise::security::{AccessMask, GenericMapping, access_check, sddl};
use guise::token::{Group, GroupAttributes};
use guise::{Sid, Token};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Everyone may read; the Unix group 61300 may also write; user 61002 is denied
    // everything.
    let sd = sddl::parse(
        "O:BAG:BAD:(D;;FA;;;S-1-22-1-61002)(A;;FR;;;WD)(A;;FW;;;S-1-22-2-61300)",
        None,
    )?;
    let client = |uid: u32, groups: &[u32]| {
        Token::from_sids(
            Sid::unix_user(uid),
            groups
                .iter()
                .map(|&g| Group {
                    sid: Sid::unix_group(g),
                    attributes: GroupAttributes::DEFAULT,
                })
                .chain([Group {
                    sid: Sid::EVERYONE,
                    attributes: GroupAttributes::DEFAULT,
                }]),
            [],
        )
    };
    for (who, token) in [
        ("uid 61001", client(61001, &[61001])),
        ("uid 61001 in group 61300", client(61001, &[61001, 61300])),
        ("uid 61002", client(61002, &[61002])),
    ] {
        for (what, desired) in [
            ("read", AccessMask::FILE_GENERIC_READ),
            ("write", AccessMask::FILE_GENERIC_WRITE),
        ] {
            // AccessCheck
            let r = access_check(&sd, &token, desired, &GenericMapping::FILE)?;
            let verdict = match &r.denial {
                None => "allowed".to_owned(),
                Some(d) => format!("denied ({}), missing {}", d.reason.win32_name(), d.missing),
            };
            println!("{who:>26} {what:>5}: {verdict}");
        }
    }
    Ok(())
}
