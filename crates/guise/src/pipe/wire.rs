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
        let first = self.frames == 0;
        self.frames += 1;
        match kind {
            KIND_SQOS if first => {
                let qos = decode_qos(&payload).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "malformed SQOS frame")
                })?;
                ctx.set_qos(qos);
                Ok(None)
            }
            KIND_MESSAGE => {
                ctx.message_received_from(sender);
                Ok(Some(payload))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected frame kind",
            )),
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
    fn frame_lengths_are_checked() {
        let f = encode_frame(KIND_MESSAGE, b"hello");
        assert_eq!(f, b"\x06\x00\x00\x00\x00hello");
        let header: [u8; HEADER] = f[..HEADER].try_into().unwrap();
        assert_eq!(frame_header(&header, 5).unwrap(), (KIND_MESSAGE, 5));
        assert!(frame_header(&header, 4).is_err(), "over the maximum");
        assert!(frame_header(&[0, 0, 0, 0, 0], 5).is_err(), "length 0");
    }
}
