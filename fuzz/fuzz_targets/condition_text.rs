//! The SDDL text of conditions and resource attributes: parsing never panics
//! (nor overflows the stack, however deep the text nests), and what parses
//! prints and parses back to the same binary form.
#![no_main]

use guise::security::conditional;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let domain: guise::Sid = "S-1-5-21-1-2-3".parse().unwrap();
    for dom in [None, Some(&domain)] {
        if let Ok(bin) = conditional::parse_condition(text, dom) {
            let printed =
                conditional::condition_to_string(&bin, dom).expect("a parsed condition prints");
            let back = conditional::parse_condition(&printed, dom).expect("printed text parses");
            assert_eq!(back, bin, "{printed}");
        }
        if let Ok(bin) = conditional::parse_resource_attribute(text, dom) {
            let printed = conditional::resource_attribute_to_string(&bin, dom)
                .expect("a parsed attribute prints");
            let back =
                conditional::parse_resource_attribute(&printed, dom).expect("printed text parses");
            assert_eq!(back, bin, "{printed}");
        }
    }
});
