//! Named-pipe frames as a server reads a client's bytes: decoding never panics,
//! and the frames it accepts, written out again, are exactly the bytes they came
//! from (the SQOS frame through its decoder and encoder).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small limit reaches the over-the-limit refusal with small inputs; the
    // default limit (64 KiB) is the one servers use.
    for max in [16, 64 * 1024] {
        let (again, used, _refused) = guise::pipe::decode_client_stream(data, max);
        assert!(used <= data.len());
        assert_eq!(again, &data[..used], "max {max}");
    }
});
