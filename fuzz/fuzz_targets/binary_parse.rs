//! Self-relative binary descriptors: reading never panics, and after one write/read
//! cycle (which pads application data and drops unused bytes) another changes
//! nothing.
#![no_main]

use guise::security::{SecurityDescriptor, sddl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sd) = SecurityDescriptor::from_self_relative(data) else {
        return;
    };
    let _ = sddl::to_string(&sd, None);
    let Ok(bin) = sd.to_self_relative() else {
        return;
    };
    let once = SecurityDescriptor::from_self_relative(&bin).expect("a written descriptor reads");
    let again = SecurityDescriptor::from_self_relative(&once.to_self_relative().unwrap()).unwrap();
    assert_eq!(once, again);
});
