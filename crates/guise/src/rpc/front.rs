//! What a client's HTTP/2 stream looks like to the gRPC server: the client's
//! header blocks, decoded and encoded again, with an `:authority` that HTTP does
//! not allow replaced by `localhost`.
//!
//! gRPC clients dialling a Unix socket send what they think names it as
//! `:authority`: the C core (grpcio and the C++, Ruby and PHP libraries from 1.57
//! on) the socket's path percent-encoded (`%2Frun%2Fguise%2Frpc.sock`), grpc-java
//! and Bazel the path as it is (`/run/guise/rpc.sock`), grpc-go and grpcurl
//! `localhost` or the path depending on the release. The HTTP/2 server under
//! tonic resets every stream whose `:authority` is not a URI authority, so such a
//! client could not make a single call. A Unix socket has no host to name, and
//! guise's services never read the authority, so the front replaces a value that
//! is not an authority by `localhost`, the name gRPC's specification gives a Unix
//! socket, and leaves a valid one alone.
//!
//! The front sits on the bytes a connection reads, before the HTTP/2 server: the
//! connection preface and every frame but HEADERS and CONTINUATION pass through
//! untouched, byte for byte as they arrive. A header block (a HEADERS frame and
//! its CONTINUATIONs) is gathered whole, decoded with the client's HPACK state,
//! and sent on as one HEADERS frame (and CONTINUATIONs of at most 16 KiB, the
//! frame size every HTTP/2 endpoint accepts) whose fields are all literals
//! without indexing: the server's decoding state stays empty, so the client's
//! (which the front alone follows) can never disagree with it. Padding is
//! dropped; the priority fields and the END_STREAM flag are kept.
//!
//! Limits, for a hostile client: a header block of more than 64 KiB, encoded or
//! decoded (the server itself allows 16 KiB of decoded fields, and answers a
//! larger list with an error of its own), a HEADERS or CONTINUATION frame larger
//! than 16 KiB (more than the server advertises), a dynamic table larger than the
//! 4 KiB the server advertises, a block that does not decode, and a frame of
//! another kind or stream between a HEADERS frame and its last CONTINUATION, and a
//! block spanning more than 32 frames are each an error: the connection is
//! closed, and the front refuses whatever the client sends after.
//!
//! A field the client marked never-indexed reaches the server as a literal without
//! indexing: the server is the last hop and indexes neither.

use std::io;

use loona_hpack::Decoder;

/// The connection preface every HTTP/2 client sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The length of a frame's header.
const FRAME_HEADER: usize = 9;
/// The largest frame payload every endpoint must accept, and the largest the
/// server advertises.
const MAX_FRAME: usize = 16 * 1024;
/// The most a header block may hold, encoded or decoded.
const MAX_BLOCK: usize = 64 * 1024;
/// The most frames a header block may span (CONTINUATIONs of a few bytes, or
/// none, would otherwise keep a connection busy without a request).
const MAX_BLOCK_FRAMES: usize = 32;
/// The HPACK dynamic table size the server advertises (HTTP/2's default).
const TABLE_SIZE: usize = 4096;

const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// A header block being gathered: its stream, its HEADERS frame's flags and
/// priority fields, and the fragments so far.
struct Block {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The frames it has spanned so far.
    frames: usize,
}

/// The client-to-server half of one connection, as the server is to read it.
pub(crate) struct Front {
    /// Bytes of the preface still to pass.
    preface_left: usize,
    /// Payload bytes of a passed-through frame still to pass.
    passing: usize,
    /// Bytes read but not yet processed (a frame header, or a header block's
    /// frame, not yet whole).
    pending: Vec<u8>,
    block: Option<Block>,
    decoder: Decoder<'static>,
    /// Once the front has refused the stream, it refuses whatever follows.
    failed: Option<io::ErrorKind>,
}

impl Default for Front {
    fn default() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        Front {
            preface_left: PREFACE.len(),
            passing: 0,
            pending: Vec::new(),
            block: None,
            decoder,
            failed: None,
        }
    }
}

fn malformed(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl Front {
    /// Processes `input`, the next bytes the client sent, appending what the
    /// server is to read to `out` (possibly nothing yet: part of a frame is kept
    /// until the rest arrives).
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidData`] for a stream the front will not pass (see
    /// the module's limits); the connection is to be closed.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, "the connection's stream was refused"));
        }
        self.take(input, out)
            .inspect_err(|e| self.failed = Some(e.kind()))
    }

    fn take(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !input.is_empty() {
            if self.preface_left > 0 {
                // The server checks the preface; the front only counts it.
                let n = self.preface_left.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.preface_left -= n;
                input = &input[n..];
                continue;
            }
            if self.passing > 0 {
                let n = self.passing.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.passing -= n;
                input = &input[n..];
                continue;
            }
            // A frame header, then (for a header block's frame) its payload.
            let want = if self.pending.len() < FRAME_HEADER {
                FRAME_HEADER
            } else {
                FRAME_HEADER + frame_length(&self.pending)
            };
            let n = (want - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..n]);
            input = &input[n..];
            if self.pending.len() < want {
                continue;
            }
            if want == FRAME_HEADER {
                let (length, kind) = (frame_length(&self.pending), self.pending[3]);
                let in_block = self.block.is_some();
                if kind == HEADERS || kind == CONTINUATION || in_block {
                    if in_block && kind != CONTINUATION {
                        return Err(malformed(
                            "a frame other than CONTINUATION inside a header block",
                        ));
                    }
                    if length > MAX_FRAME {
                        return Err(malformed(format!(
                            "a header block's frame of {length} bytes (at most {MAX_FRAME})"
                        )));
                    }
                    if length > 0 {
                        continue; // its payload next
                    }
                } else {
                    out.extend_from_slice(&self.pending);
                    self.pending.clear();
                    self.passing = length;
                    continue;
                }
            }
            let frame = std::mem::take(&mut self.pending);
            self.header_frame(&frame, out)?;
        }
        Ok(())
    }

    /// A whole HEADERS or CONTINUATION frame.
    fn header_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let (kind, flags, stream) = (frame[3], frame[4], stream_id(frame));
        let mut payload = &frame[FRAME_HEADER..];
        if kind == HEADERS {
            if flags & PADDED != 0 {
                let (&pad, rest) = payload
                    .split_first()
                    .ok_or_else(|| malformed("a padded HEADERS frame without its pad length"))?;
                let keep = rest
                    .len()
                    .checked_sub(usize::from(pad))
                    .ok_or_else(|| malformed("a HEADERS frame's padding longer than it"))?;
                payload = &rest[..keep];
            }
            let priority = if flags & PRIORITY != 0 {
                let fields = payload
                    .get(..5)
                    .ok_or_else(|| malformed("a HEADERS frame without its priority fields"))?;
                payload = &payload[5..];
                Some(<[u8; 5]>::try_from(fields).expect("five bytes"))
            } else {
                None
            };
            self.block = Some(Block {
                stream,
                end_stream: flags & END_STREAM != 0,
                priority,
                fragment: Vec::new(),
                frames: 0,
            });
        }
        let Some(block) = self.block.as_mut() else {
            return Err(malformed("a CONTINUATION frame outside a header block"));
        };
        if block.stream != stream {
            return Err(malformed("a CONTINUATION frame of another stream"));
        }
        block.frames += 1;
        if block.frames > MAX_BLOCK_FRAMES {
            return Err(malformed(format!(
                "a header block of more than {MAX_BLOCK_FRAMES} frames"
            )));
        }
        if block.fragment.len() + payload.len() > MAX_BLOCK {
            return Err(malformed(format!(
                "a header block of more than {MAX_BLOCK} bytes"
            )));
        }
        block.fragment.extend_from_slice(payload);
        if flags & END_HEADERS != 0 {
            let block = self.block.take().expect("a block is being gathered");
            let encoded = self.reencode(&block.fragment)?;
            write_block(&block, &encoded, out);
        }
        Ok(())
    }

    /// The fields of a whole header block, decoded with the client's HPACK state
    /// and encoded as literals without indexing, `:authority` made valid.
    fn reencode(&mut self, fragment: &[u8]) -> io::Result<Vec<u8>> {
        let mut encoded = Vec::with_capacity(fragment.len() * 2);
        let mut decoded = 0usize;
        let mut too_large = false;
        self.decoder
            .decode_with_cb(fragment, |name, value| {
                // HPACK's measure of a field: its name, its value and 32.
                decoded += name.len() + value.len() + 32;
                if decoded > MAX_BLOCK {
                    too_large = true;
                    return;
                }
                let value: &[u8] = if &*name == b":authority" && !is_authority(&value) {
                    b"localhost"
                } else {
                    &value
                };
                encoded.push(0x00); // a literal without indexing, with a new name
                encode_string(&name, &mut encoded);
                encode_string(value, &mut encoded);
            })
            .map_err(|e| malformed(format!("a header block that does not decode: {e}")))?;
        if too_large {
            return Err(malformed(format!(
                "a header block of more than {MAX_BLOCK} bytes decoded"
            )));
        }
        Ok(encoded)
    }
}

/// Whether `value` is a URI authority the HTTP/2 server accepts.
fn is_authority(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

/// A frame's payload length, from its header.
fn frame_length(header: &[u8]) -> usize {
    usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2])
}

/// A frame's stream, from its header (the reserved bit cleared).
fn stream_id(header: &[u8]) -> u32 {
    u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff
}

/// An HPACK string literal, not Huffman-coded: its length as a 7-bit-prefix
/// integer, then its bytes.
fn encode_string(bytes: &[u8], out: &mut Vec<u8>) {
    let mut length = bytes.len();
    if length < 0x7f {
        out.push(length as u8);
    } else {
        out.push(0x7f);
        length -= 0x7f;
        while length >= 0x80 {
            out.push((length & 0x7f) as u8 | 0x80);
            length >>= 7;
        }
        out.push(length as u8);
    }
    out.extend_from_slice(bytes);
}

/// The block as one HEADERS frame and as many CONTINUATION frames as it needs.
fn write_block(block: &Block, encoded: &[u8], out: &mut Vec<u8>) {
    let first_room = MAX_FRAME - block.priority.map_or(0, |p| p.len());
    let (first, mut rest) = encoded.split_at(encoded.len().min(first_room));
    let mut flags = if block.end_stream { END_STREAM } else { 0 };
    if block.priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    let priority = block.priority.as_ref().map_or(&[][..], |p| &p[..]);
    frame_header(
        priority.len() + first.len(),
        HEADERS,
        flags,
        block.stream,
        out,
    );
    out.extend_from_slice(priority);
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (this, after) = rest.split_at(rest.len().min(MAX_FRAME));
        let flags = if after.is_empty() { END_HEADERS } else { 0 };
        frame_header(this.len(), CONTINUATION, flags, block.stream, out);
        out.extend_from_slice(this);
        rest = after;
    }
}

fn frame_header(length: usize, kind: u8, flags: u8, stream: u32, out: &mut Vec<u8>) {
    debug_assert!(length <= MAX_FRAME);
    out.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A HEADERS frame on `stream` with `block` (END_HEADERS set).
    fn headers(stream: u32, flags: u8, block: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        frame_header(block.len(), HEADERS, flags | END_HEADERS, stream, &mut v);
        v.extend_from_slice(block);
        v
    }

    /// `fields` as literals with incremental indexing and new names, as a
    /// client's encoder may send them (so the client's table fills).
    fn indexed_literals(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (n, val) in fields {
            v.push(0x40);
            encode_string(n, &mut v);
            encode_string(val, &mut v);
        }
        v
    }

    /// What the server decodes from `bytes` (after the preface): each header
    /// block's fields.
    fn server_view(bytes: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut decoder = Decoder::new();
        let mut blocks = Vec::new();
        let mut rest = &bytes[PREFACE.len()..];
        let mut block = Vec::new();
        while !rest.is_empty() {
            let len = frame_length(rest);
            let (kind, flags) = (rest[3], rest[4]);
            let mut payload = &rest[FRAME_HEADER..FRAME_HEADER + len];
            if kind == HEADERS || kind == CONTINUATION {
                assert_eq!(flags & PADDED, 0, "no padding reaches the server");
                if kind == HEADERS && flags & PRIORITY != 0 {
                    payload = &payload[5..];
                }
                block.extend_from_slice(payload);
                if flags & END_HEADERS != 0 {
                    blocks.push(decoder.decode(&block).unwrap());
                    block.clear();
                }
            }
            rest = &rest[FRAME_HEADER + len..];
        }
        blocks
    }

    fn run(input: &[u8], step: usize) -> io::Result<Vec<u8>> {
        let mut front = Front::default();
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            front.feed(chunk, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn a_percent_encoded_socket_path_as_authority_becomes_localhost() {
        let mut input = PREFACE.to_vec();
        let fields: [(&[u8], &[u8]); 3] = [
            (b":method", b"POST"),
            (b":authority", b"%2Frun%2Fguise%2Frpc.sock"),
            (b":path", b"/guise.files.v1.Files/WhoAmI"),
        ];
        input.extend(headers(1, 0, &indexed_literals(&fields)));
        // The second request refers to the client's table (index 62 is the
        // newest entry: :path; 63 :authority; 64 :method).
        input.extend(headers(3, END_STREAM, &[0x80 | 64, 0x80 | 63, 0x80 | 62]));
        for step in [1, 7, 4096] {
            let out = run(&input, step).unwrap();
            let blocks = server_view(&out);
            assert_eq!(blocks.len(), 2);
            for block in &blocks {
                assert_eq!(block[1], (b":authority".to_vec(), b"localhost".to_vec()));
                assert_eq!(block[2].1, b"/guise.files.v1.Files/WhoAmI");
            }
        }
    }

    #[test]
    fn a_raw_socket_path_is_replaced_and_a_valid_authority_kept() {
        let mut input = PREFACE.to_vec();
        input.extend(headers(
            1,
            0,
            &indexed_literals(&[(b":authority", b"/run/x.sock")]),
        ));
        input.extend(headers(
            3,
            0,
            &indexed_literals(&[(b":authority", b"files.example:8443")]),
        ));
        let blocks = server_view(&run(&input, 3).unwrap());
        assert_eq!(blocks[0][0].1, b"localhost");
        assert_eq!(blocks[1][0].1, b"files.example:8443");
    }

    #[test]
    fn other_frames_pass_byte_for_byte() {
        let mut input = PREFACE.to_vec();
        // SETTINGS (empty), then DATA on stream 1 with a payload.
        frame_header(0, 0x4, 0, 0, &mut input);
        frame_header(5, 0x0, 1, 1, &mut input);
        input.extend_from_slice(b"hello");
        assert_eq!(run(&input, 2).unwrap(), input);
    }

    #[test]
    fn a_large_block_is_split_into_continuations_and_padding_dropped() {
        let long = vec![b'a'; 12_000];
        let fields: [(&[u8], &[u8]); 2] = [(b"x-one", &long), (b"x-two", &long)];
        let block = indexed_literals(&fields);
        let mut input = PREFACE.to_vec();
        // A padded HEADERS with priority, its block spread over CONTINUATIONs.
        let (a, b) = block.split_at(10_000);
        let mut payload = vec![3u8];
        payload.extend_from_slice(&[0, 0, 0, 0, 16]);
        payload.extend_from_slice(a);
        payload.extend_from_slice(&[0, 0, 0]);
        frame_header(payload.len(), HEADERS, PADDED | PRIORITY, 1, &mut input);
        input.extend(payload);
        frame_header(b.len(), CONTINUATION, END_HEADERS, 1, &mut input);
        input.extend_from_slice(b);
        let out = run(&input, 1000).unwrap();
        let blocks = server_view(&out);
        assert_eq!(blocks[0][0], (b"x-one".to_vec(), long.clone()));
        assert_eq!(blocks[0][1], (b"x-two".to_vec(), long));
    }

    /// Attack: a client floods CONTINUATION frames (or names a huge dynamic
    /// table, or interleaves another frame into a header block) to make the
    /// front buffer without end or disagree with the server.
    #[test]
    fn hostile_header_blocks_close_the_connection() {
        let mut endless = PREFACE.to_vec();
        frame_header(1, HEADERS, 0, 1, &mut endless);
        endless.push(0x82);
        for _ in 0..10 {
            frame_header(MAX_FRAME, CONTINUATION, 0, 1, &mut endless);
            endless.extend(std::iter::repeat_n(0x82, MAX_FRAME));
        }
        let mut table = PREFACE.to_vec();
        table.extend(headers(1, 0, &[0x3f, 0xe1, 0x7f, 0x82])); // size update to 16,384+
        let mut interleaved = PREFACE.to_vec();
        frame_header(1, HEADERS, 0, 1, &mut interleaved);
        interleaved.push(0x82);
        frame_header(0, 0x4, 0, 0, &mut interleaved);
        let mut big = PREFACE.to_vec();
        big.extend_from_slice(&((MAX_FRAME + 1) as u32).to_be_bytes()[1..]);
        big.extend_from_slice(&[HEADERS, END_HEADERS, 0, 0, 0, 1]);
        let mut bomb = PREFACE.to_vec();
        let mut block = indexed_literals(&[(b"x", &[b'a'; 3000][..])]);
        block.extend(std::iter::repeat_n(0x80 | 62, 30));
        bomb.extend(headers(1, 0, &block));
        let mut empty = PREFACE.to_vec();
        frame_header(1, HEADERS, 0, 1, &mut empty);
        empty.push(0x82);
        for _ in 0..MAX_BLOCK_FRAMES {
            frame_header(0, CONTINUATION, 0, 1, &mut empty);
        }
        for (what, input) in [
            ("empty continuations", empty),
            ("endless", endless),
            ("table", table),
            ("interleaved", interleaved),
            ("big", big),
            ("bomb", bomb),
        ] {
            let e = run(&input, 4096).expect_err(what);
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}: {e}");
        }
        // Refused once, refused for good: nothing after passes.
        let mut front = Front::default();
        let mut out = Vec::new();
        let mut table = PREFACE.to_vec();
        table.extend(headers(1, 0, &[0x3f, 0xe1, 0x7f, 0x82]));
        front.feed(&table, &mut out).unwrap_err();
        let mut settings = Vec::new();
        frame_header(0, 0x4, 0, 0, &mut settings);
        out.clear();
        front.feed(&settings, &mut out).unwrap_err();
        assert!(out.is_empty());
    }
}
