//! The binary form of conditions (callback ACEs) and resource attributes:
//! reading never panics (nor overflows the stack, however deep it nests), and
//! what prints parses, and prints the same again.
#![no_main]

use guise::security::conditional;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = conditional::condition_to_string(data, None) {
        let bin = conditional::parse_condition(&text, None).expect("printed text parses");
        let again = conditional::condition_to_string(&bin, None).expect("and prints");
        assert_eq!(again, text);
    }
    if let Ok(text) = conditional::resource_attribute_to_string(data, None) {
        let bin = conditional::parse_resource_attribute(&text, None).expect("printed text parses");
        let again = conditional::resource_attribute_to_string(&bin, None).expect("and prints");
        assert_eq!(again, text);
    }
});
