//! SDDL text: parsing never panics, and whatever parses prints and parses back to
//! the same descriptor.
#![no_main]

use guise::security::sddl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let domain: guise::Sid = "S-1-5-21-1-2-3".parse().unwrap();
    for dom in [None, Some(&domain)] {
        if let Ok(sd) = sddl::parse(text, dom) {
            let printed = sddl::to_string(&sd, dom).expect("a parsed descriptor prints");
            let back = sddl::parse(&printed, dom).expect("printed SDDL parses");
            assert_eq!(back, sd, "{printed}");
            let bin = sd
                .to_self_relative()
                .expect("a parsed descriptor has a binary form");
            let from_bin = guise::security::SecurityDescriptor::from_self_relative(&bin).unwrap();
            assert_eq!(from_bin, sd.clone().normalized());
        }
    }
});
