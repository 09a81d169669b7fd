//! The Kerberos transport's frames (`guise::kerberos::wire`), as a hostile peer
//! sends them: taking apart a stream of data frames, a handshake header, a
//! refusal and an unsealed body never panics nor allocates past a limit; what is
//! taken apart writes back to the same bytes.
#![no_main]

use guise::kerberos::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A handshake frame's header, against both limits.
    if let Some(head) = data.first_chunk::<{ wire::HEADER }>() {
        for max in [wire::MAX_HANDSHAKE_TOKEN, wire::MAX_REFUSAL] {
            if let Ok((kind, len)) = wire::header(head, max) {
                assert!(len <= max);
                assert_eq!(kind, head[0]);
                if let Some(body) = data.get(wire::HEADER..wire::HEADER + len) {
                    assert_eq!(wire::encode(kind, body).unwrap(), data[..wire::HEADER + len]);
                }
            }
        }
    }
    // A refusal is cut at its limit (invalid UTF-8 shows as U+FFFD, 3 bytes).
    assert!(wire::refusal(data).len() <= 3 * wire::MAX_REFUSAL);
    // The sealed stream: frame after frame until one is refused or incomplete.
    let mut raw = data;
    let mut expected = 0u64;
    loop {
        match wire::data_frame(raw) {
            Err(_) => break,
            Ok(None) => {
                // Incomplete: never a whole frame left unread.
                if let Some(head) = raw.first_chunk::<{ wire::HEADER }>() {
                    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                    assert!(raw.len() < wire::HEADER + len);
                }
                break;
            }
            Ok(Some((sealed, whole))) => {
                assert!(sealed.len() <= wire::MAX_DATA_FRAME);
                assert_eq!(whole, wire::HEADER + sealed.len());
                assert_eq!(wire::encode(wire::DATA, sealed).unwrap(), raw[..whole]);
                // Taken as an unsealed body: only the frame that is due passes,
                // and it writes back as it came.
                match wire::data_body(sealed, expected) {
                    Ok(body) => {
                        assert_eq!(sealed[..8], expected.to_be_bytes());
                        if body.len() <= wire::MAX_PLAINTEXT {
                            let (again, n) = wire::data_plaintext(expected, body);
                            assert_eq!((again.as_slice(), n), (sealed, body.len()));
                        }
                        expected += 1;
                    }
                    Err(_) => assert!(
                        sealed.len() < 8 || sealed[..8] != expected.to_be_bytes()
                    ),
                }
                raw = &raw[whole..];
            }
        }
    }
});
