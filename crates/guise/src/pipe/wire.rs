//! The pipe wire format, apart from any I/O: frames, the SQOS frame, and the rule
//! for which frame may come when. The blocking and async connections and the
//! client all read and write through these functions; `docs/protocol.md`
//! specifies the same format for clients in any language.
//!
//! A frame is a 4-byte little-endian length, a 1-byte kind and the payload (the
//! length counts the kind byte and the payload, so it is at least 1). Kind 0 is a
//! message; kind 1, allowed only as the first frame, is the client's security
//! quality of service: the 4 bytes `GSQ1`, the level (0 anonymous, 1
//! identification, 2 impersonation, 3 delegation), context tracking (0 static, 1
//! dynamic) and effective-only (0 or 1).

use std::io;

use crate::client::{ClientContext, ContextTracking, SecurityQos};
use crate::token::ImpersonationLevel;

/// The kind of a message frame.
pub(crate) const KIND_MESSAGE: u8 = 0;
/// The kind of the SQOS frame.
pub(crate) const KIND_SQOS: u8 = 1;
/// The first bytes of an SQOS frame's payload.
const SQOS_MAGIC: &[u8; 4] = b"GSQ1";
/// The bytes of a frame before its payload.
pub(crate) const HEADER: usize = 5;

/// The kernel's credentials of a message (`SCM_CREDENTIALS`): its sender's pid
/// (where the transport reads it), uid and gid.
pub(crate) type Sender = (Option<i32>, u32, u32);

/// The payload of an SQOS frame.
pub(crate) fn encode_qos(qos: &SecurityQos) -> [u8; 7] {
    let level = match qos.level {
        ImpersonationLevel::Anonymous => 0,
        ImpersonationLevel::Identification => 1,
        ImpersonationLevel::Impersonation => 2,
        ImpersonationLevel::Delegation => 3,
    };
    let [m0, m1, m2, m3] = *SQOS_MAGIC;
    [
        m0,
        m1,
        m2,
        m3,
        level,
        u8::from(qos.tracking == ContextTracking::Dynamic),
        u8::from(qos.effective_only),
    ]
}

/// Reads an SQOS frame's payload; `None` if it is malformed.
pub(crate) fn decode_qos(b: &[u8]) -> Option<SecurityQos> {
    let [m0, m1, m2, m3, level, tracking, effective] = b.try_into().ok()?;
    if [m0, m1, m2, m3] != *SQOS_MAGIC || tracking > 1 || effective > 1 {
        return None;
    }
    Some(SecurityQos {
        level: match level {
            0 => ImpersonationLevel::Anonymous,
            1 => ImpersonationLevel::Identification,
            2 => ImpersonationLevel::Impersonation,
            3 => ImpersonationLevel::Delegation,
            _ => return None,
        },
        tracking: if tracking == 1 {
            ContextTracking::Dynamic
        } else {
            ContextTracking::Static
        },
        effective_only: effective == 1,
    })
}

/// A whole frame of `kind` carrying `payload`.
pub(crate) fn encode_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER + payload.len());
    frame.extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
    frame.push(kind);
    frame.extend_from_slice(payload);
    frame
}

/// Checks a frame header; returns the kind and the payload length.
///
/// # Errors
/// `InvalidData` for a length of 0 or a payload larger than `max`.
pub(crate) fn frame_header(header: &[u8; HEADER], max: usize) -> io::Result<(u8, usize)> {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len == 0 || len - 1 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes exceeds the maximum"),
        ));
    }
    Ok((header[4], len - 1))
}

/// Whether the first bytes a client read, taken as a frame header, are the start
/// of an HTTP/2 frame a server sends first: a SETTINGS (type 4) or GOAWAY (type
/// 7) frame, 3-byte big-endian length under 64 KiB, flags 0 or 1. A gRPC server
/// answers a pipe client so; read as a pipe frame, the type byte would make a
/// length of some 64 MiB.
pub(crate) fn looks_like_http2(header: &[u8; HEADER]) -> bool {
    header[0] == 0 && matches!(header[3], 0x04 | 0x07) && header[4] <= 1
}

/// A frame the server side has taken in, before it acts on it.
#[derive(Debug)]
pub(crate) enum Frame {
    /// The client's security quality of service (the first frame only).
    Qos(SecurityQos),
    /// A message.
    Message(Vec<u8>),
}

/// What the server side makes of the frames of one connection, in order.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    frames: usize,
}

impl Inbound {
    /// Takes in a frame for `ctx`: an SQOS frame (first only) sets the client's
    /// quality of service, a message is recorded as read with the kernel's
    /// credentials `sender` and returned. Anything else is a protocol error.
    ///
    /// # Errors
    /// `InvalidData` for a malformed SQOS frame, an SQOS frame after the first, or
    /// an unknown kind.
    pub(crate) fn frame(
        &mut self,
        ctx: &mut ClientContext,
        kind: u8,
        payload: Vec<u8>,
        sender: Option<Sender>,
    ) -> io::Result<Option<Vec<u8>>> {
        match self.take(kind, payload)? {
            Frame::Qos(qos) => {
                ctx.set_qos(qos);
                Ok(None)
            }
            Frame::Message(payload) => {
                ctx.message_received_from(sender);
                Ok(Some(payload))
            }
        }
    }

    /// The rule alone, without a client to act on: what the next frame of
    /// `kind` is.
    ///
    /// # Errors
    /// As [`Inbound::frame`].
    pub(crate) fn take(&mut self, kind: u8, payload: Vec<u8>) -> io::Result<Frame> {
        let first = self.frames == 0;
        self.frames += 1;
        match kind {
            KIND_SQOS if first => decode_qos(&payload)
                .map(Frame::Qos)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed SQOS frame")),
            KIND_MESSAGE => Ok(Frame::Message(payload)),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected frame kind",
            )),
        }
    }
}

/// What the server side makes of `bytes` received on one connection: the
/// frames it takes in (headers checked against `max`, each through
/// [`Inbound`]'s rules), until the bytes end, a frame is cut short, or one is
/// refused. Returns the accepted frames written out again (they must be the
/// bytes they came from), the bytes they came from, and whether a frame was
/// refused. For the `pipe_frames` fuzz target; not part of the API.
#[doc(hidden)]
pub fn decode_client_stream(bytes: &[u8], max: usize) -> (Vec<u8>, usize, bool) {
    let (mut inbound, mut again, mut at) = (Inbound::default(), Vec::new(), 0);
    while let Some(header) = bytes.get(at..at + HEADER) {
        let header: [u8; HEADER] = header.try_into().unwrap_or([0; HEADER]);
        let Ok((kind, len)) = frame_header(&header, max) else {
            return (again, at, true);
        };
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        match inbound.take(kind, payload.to_vec()) {
            Ok(Frame::Qos(qos)) => again.extend(encode_frame(KIND_SQOS, &encode_qos(&qos))),
            Ok(Frame::Message(p)) => again.extend(encode_frame(KIND_MESSAGE, &p)),
            Err(_) => return (again, at, true),
        }
        at += HEADER + len;
    }
    (again, at, false)
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn a_client_stream_decodes_to_the_frames_it_was_made_of() {
        let qos = SecurityQos::default();
        let mut bytes = encode_frame(KIND_SQOS, &encode_qos(&qos));
        bytes.extend(encode_frame(KIND_MESSAGE, b"one"));
        bytes.extend(encode_frame(KIND_MESSAGE, b""));
        let (again, used, refused) = decode_client_stream(&bytes, 64);
        assert_eq!(
            (again.as_slice(), used, refused),
            (bytes.as_slice(), bytes.len(), false)
        );
        // A second SQOS frame is refused; what came before stands.
        let mut twice = bytes.clone();
        twice.extend(encode_frame(KIND_SQOS, &encode_qos(&qos)));
        assert_eq!(
            decode_client_stream(&twice, 64),
            (bytes.clone(), bytes.len(), true)
        );
        // A frame cut short is not taken, nor refused.
        let cut = &bytes[..bytes.len() - 1];
        let (_, used, refused) = decode_client_stream(cut, 64);
        assert!(used < cut.len() && !refused);
        // Over the maximum, an unknown kind, a length of 0: refused.
        for bad in [
            encode_frame(KIND_MESSAGE, &[0; 65]),
            encode_frame(7, b"x"),
            vec![0, 0, 0, 0, 0],
        ] {
            assert_eq!(decode_client_stream(&bad, 64), (Vec::new(), 0, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_round_trips_and_malformed_is_refused() {
        for level in [
            ImpersonationLevel::Anonymous,
            ImpersonationLevel::Identification,
            ImpersonationLevel::Impersonation,
            ImpersonationLevel::Delegation,
        ] {
            let qos = SecurityQos {
                level,
                tracking: ContextTracking::Dynamic,
                effective_only: true,
            };
            assert_eq!(decode_qos(&encode_qos(&qos)), Some(qos));
        }
        assert_eq!(decode_qos(b"GSQ1\x04\x00\x00"), None, "level 4");
        assert_eq!(decode_qos(b"GSQ1\x01\x02\x00"), None, "tracking 2");
        assert_eq!(decode_qos(b"GSQ2\x01\x00\x00"), None, "magic");
        assert_eq!(decode_qos(b"GSQ1\x01\x00"), None, "short");
    }

    #[test]
    fn an_http2_servers_first_frame_is_recognised() {
        // hyper's SETTINGS: length 18, type 4, flags 0, stream 0.
        let settings: [u8; HEADER] = [0x00, 0x00, 0x12, 0x04, 0x00];
        assert!(looks_like_http2(&settings));
        assert!(frame_header(&settings, DEFAULT_MAX).is_err());
        assert!(looks_like_http2(&[0x00, 0x00, 0x08, 0x07, 0x00]), "GOAWAY");
        // A guise frame never does: its own lengths are small.
        let f = encode_frame(KIND_MESSAGE, &[0; 100]);
        assert!(!looks_like_http2(&f[..HEADER].try_into().unwrap()));
        assert!(!looks_like_http2(&[0x00, 0x00, 0x12, 0x05, 0x00]), "type 5");
    }

    /// The client's default maximum, for the test.
    const DEFAULT_MAX: usize = 1 << 20;

    #[test]
    fn frame_lengths_are_checked() {
        let f = encode_frame(KIND_MESSAGE, b"hello");
        assert_eq!(f, b"\x06\x00\x00\x00\x00hello");
        let header: [u8; HEADER] = f[..HEADER].try_into().unwrap();
        assert_eq!(frame_header(&header, 5).unwrap(), (KIND_MESSAGE, 5));
        assert!(frame_header(&header, 4).is_err(), "over the maximum");
        assert!(frame_header(&[0, 0, 0, 0, 0], 5).is_err(), "length 0");
    }
}
