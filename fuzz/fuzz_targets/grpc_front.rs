//! The front before the gRPC server (`guise::rpc`): a client's HTTP/2 bytes never
//! panic it, and what it passes does not depend on how the bytes were split into
//! reads: fed whole, byte by byte or in pieces of another size, the server reads
//! the same bytes, or the connection is closed every time.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let whole = guise::rpc::fuzz_front(input, input.len());
    let pieces = guise::rpc::fuzz_front(input, usize::from(step));
    match (whole, pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("split reads changed the outcome: {a:?} / {b:?}"),
    }
});
