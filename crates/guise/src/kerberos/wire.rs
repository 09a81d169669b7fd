//! The Kerberos transport's frames (the [wire format](super#wire-format)), apart
//! from their I/O: what the handshake and the sealed stream write and how what
//! they read is taken apart. Every length a peer sends is checked against its
//! limit before anything is allocated for it, and a data frame's number before
//! its bytes are handed on. Public (hidden) for the fuzz target only.

use std::io;

/// The bytes a client sends first.
pub const MAGIC: &[u8; 8] = b"GUISEGS1";
/// A GSSAPI context token (both sides, in the handshake).
pub const TOKEN: u8 = 1;
/// The server refuses the client: why, in UTF-8; it then closes.
pub const REFUSED: u8 = 2;
/// The server accepts the client: its last context token (may be empty).
pub const ACCEPTED: u8 = 3;
/// Data, sealed (after the handshake).
pub const DATA: u8 = 4;
/// A frame's header: its kind and the body's 32-bit big-endian length.
pub const HEADER: usize = 5;
/// The largest handshake token either side accepts.
pub const MAX_HANDSHAKE_TOKEN: usize = 64 * 1024;
/// The most stream bytes one data frame carries.
pub const MAX_PLAINTEXT: usize = 16 * 1024;
/// The largest data frame accepted: a sealed [`MAX_PLAINTEXT`] and its number,
/// with room for the token's header, padding and checksum.
pub const MAX_DATA_FRAME: usize = MAX_PLAINTEXT + 8 + 1024;
/// The longest refusal message read or sent.
pub const MAX_REFUSAL: usize = 4096;

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A frame of `kind` around `body`.
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] for a body over 4 GiB.
pub fn encode(kind: u8, body: &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame too large"))?;
    let mut frame = Vec::with_capacity(HEADER + body.len());
    frame.push(kind);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    Ok(frame)
}

/// What a client sends first: [`MAGIC`] and its first context token.
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] for a token over [`MAX_HANDSHAKE_TOKEN`].
pub fn hello(token: &[u8]) -> io::Result<Vec<u8>> {
    if token.len() > MAX_HANDSHAKE_TOKEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a first token of {} bytes, over the limit of {MAX_HANDSHAKE_TOKEN}",
                token.len()
            ),
        ));
    }
    let mut hello = MAGIC.to_vec();
    hello.extend_from_slice(&encode(TOKEN, token)?);
    Ok(hello)
}

/// A frame's header: its kind and the length of the body that follows.
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] for a body over `max` bytes.
pub fn header(head: &[u8; HEADER], max: usize) -> io::Result<(u8, usize)> {
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > max {
        return Err(invalid(format!(
            "a frame of {len} bytes, over the limit of {max}"
        )));
    }
    Ok((head[0], len))
}

/// A refusal's text, as the client shows it: at most [`MAX_REFUSAL`] bytes of
/// the body, invalid UTF-8 replaced.
pub fn refusal(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(MAX_REFUSAL)]).into_owned()
}

/// The first whole data frame at the start of `raw` (what was read after the
/// handshake): its sealed body and the frame's whole length, or `None` until
/// `raw` holds all of it.
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] for a frame of another kind, or of a body
/// over [`MAX_DATA_FRAME`], as soon as its header is there.
pub fn data_frame(raw: &[u8]) -> io::Result<Option<(&[u8], usize)>> {
    let Some(head) = raw.first_chunk::<HEADER>() else {
        return Ok(None);
    };
    if head[0] != DATA {
        return Err(invalid(format!(
            "a frame of kind {} after the handshake",
            head[0]
        )));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_DATA_FRAME {
        return Err(invalid(format!(
            "a data frame of {len} bytes, over the limit of {MAX_DATA_FRAME}"
        )));
    }
    Ok(raw
        .get(HEADER..HEADER + len)
        .map(|sealed| (sealed, HEADER + len)))
}

/// What a data frame seals: the frame's `number` and at most
/// [`MAX_PLAINTEXT`] bytes of `data` (how many: the second value).
pub fn data_plaintext(number: u64, data: &[u8]) -> (Vec<u8>, usize) {
    let n = data.len().min(MAX_PLAINTEXT);
    let mut message = Vec::with_capacity(8 + n);
    message.extend_from_slice(&number.to_be_bytes());
    message.extend_from_slice(&data[..n]);
    (message, n)
}

/// The stream bytes of an unsealed data frame that must be frame number
/// `expected`.
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] for a body shorter than a number, and for a
/// frame of another number (replayed, dropped or reordered).
pub fn data_body(plain: &[u8], expected: u64) -> io::Result<&[u8]> {
    let (number, data) = plain
        .split_first_chunk::<8>()
        .ok_or_else(|| invalid("a data frame without its number".into()))?;
    let number = u64::from_be_bytes(*number);
    if number != expected {
        return Err(invalid(format!(
            "data frame {number} where {expected} was due: replayed, dropped or reordered"
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_as_written() {
        let frame = encode(DATA, b"sealed").unwrap();
        assert_eq!(frame.len(), HEADER + 6);
        assert_eq!(header(frame.first_chunk().unwrap(), 6).unwrap(), (DATA, 6));
        assert_eq!(
            data_frame(&frame).unwrap(),
            Some((&b"sealed"[..], frame.len()))
        );
        // One byte short: not yet; a second frame behind it: only the first.
        assert_eq!(data_frame(&frame[..frame.len() - 1]).unwrap(), None);
        let two = [frame.clone(), frame.clone()].concat();
        assert_eq!(data_frame(&two).unwrap().unwrap().1, frame.len());
    }

    #[test]
    fn the_hello_is_the_magic_then_a_token_frame() {
        let hello = hello(b"tok").unwrap();
        assert_eq!(&hello[..8], MAGIC);
        assert_eq!(hello[8..], encode(TOKEN, b"tok").unwrap());
        assert!(super::hello(&vec![0; MAX_HANDSHAKE_TOKEN + 1]).is_err());
        assert!(super::hello(&vec![0; MAX_HANDSHAKE_TOKEN]).is_ok());
    }

    #[test]
    fn attack_a_length_over_the_limit_is_refused_before_its_body_arrives() {
        let head = |len: u32| {
            let mut h = [DATA; HEADER];
            h[1..].copy_from_slice(&len.to_be_bytes());
            h
        };
        assert!(header(&head(u32::MAX), MAX_HANDSHAKE_TOKEN).is_err());
        assert!(header(&head(MAX_HANDSHAKE_TOKEN as u32 + 1), MAX_HANDSHAKE_TOKEN).is_err());
        assert_eq!(
            header(&head(MAX_HANDSHAKE_TOKEN as u32), MAX_HANDSHAKE_TOKEN).unwrap(),
            (DATA, MAX_HANDSHAKE_TOKEN)
        );
        // Only the header is there: the stream refuses it already.
        assert!(data_frame(&head(MAX_DATA_FRAME as u32 + 1)).is_err());
        assert_eq!(data_frame(&head(MAX_DATA_FRAME as u32)).unwrap(), None);
        assert_eq!(data_frame(&head(0)[..4]).unwrap(), None);
    }

    #[test]
    fn attack_a_handshake_frame_after_the_handshake_is_refused() {
        for kind in [0, TOKEN, REFUSED, ACCEPTED, 5, 255] {
            let frame = encode(kind, b"x").unwrap();
            assert!(data_frame(&frame).is_err(), "kind {kind}");
        }
    }

    #[test]
    fn attack_a_replayed_or_reordered_data_frame_is_refused() {
        let (plain, n) = data_plaintext(7, b"hello");
        assert_eq!(n, 5);
        assert_eq!(data_body(&plain, 7).unwrap(), b"hello");
        assert!(data_body(&plain, 6).is_err());
        assert!(data_body(&plain, 8).is_err());
        assert!(data_body(&plain[..7], 7).is_err());
        assert_eq!(data_body(&plain[..8], 7).unwrap(), b"");
    }

    #[test]
    fn a_data_frame_carries_at_most_max_plaintext() {
        let big = vec![1; MAX_PLAINTEXT + 10];
        let (plain, n) = data_plaintext(0, &big);
        assert_eq!(n, MAX_PLAINTEXT);
        assert_eq!(plain.len(), 8 + MAX_PLAINTEXT);
    }

    #[test]
    fn a_refusal_is_cut_at_its_limit_and_shown_lossily() {
        assert_eq!(refusal(b"no \xff"), "no \u{fffd}");
        assert_eq!(refusal(&vec![b'a'; MAX_REFUSAL * 2]).len(), MAX_REFUSAL);
    }
}
