//! The front every gRPC connection's bytes pass before the HTTP/2 server
//! (`guise::rpc`), next to copying the same bytes (what a connection without it
//! does). The input is what a gRPC client sends for one unary call after the first
//! (its headers referring to its HPACK table, a DATA frame with a small message),
//! repeated. Run with `cargo bench -p guise-impersonation --bench front`.

use divan::Bencher;
use divan::counter::BytesCount;

fn main() {
    divan::main();
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

fn literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0x40);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

/// The preface, a first call that fills the client's table, then `calls` calls
/// that refer to it, each with a 32-byte message.
fn traffic(calls: u32) -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(0x4, 0, 0, &[], &mut out);
    let mut first = Vec::new();
    for (n, v) in [
        (&b":method"[..], &b"POST"[..]),
        (b":scheme", b"http"),
        (b":authority", b"%2Frun%2Fguise%2Frpc.sock"),
        (b":path", b"/guise.files.v1.Files/Read"),
        (b"te", b"trailers"),
        (b"content-type", b"application/grpc"),
        (
            b"user-agent",
            b"grpc-python/1.85.4 grpc-c/52.0.0 (linux; chttp2)",
        ),
        (b"guise-impersonation-level", b"impersonation"),
    ] {
        literal(n, v, &mut first);
    }
    let message = [0u8; 37];
    frame(0x1, 0x4, 1, &first, &mut out);
    frame(0x0, 0x1, 1, &message, &mut out);
    for i in 0..calls {
        // Indexed fields 62..69: the eight entries the first call added.
        let again: Vec<u8> = (62..70).map(|i| 0x80 | i).collect();
        frame(0x1, 0x4, 3 + 2 * i, &again, &mut out);
        frame(0x0, 0x1, 3 + 2 * i, &message, &mut out);
    }
    out
}

#[divan::bench]
fn front(bencher: Bencher) {
    let input = traffic(100);
    bencher
        .counter(BytesCount::of_slice(&input))
        .bench(|| guise::rpc::fuzz_front(divan::black_box(&input), 16 * 1024).unwrap());
}

#[divan::bench]
fn copy_baseline(bencher: Bencher) {
    let input = traffic(100);
    bencher.counter(BytesCount::of_slice(&input)).bench(|| {
        let mut out = Vec::new();
        for piece in divan::black_box(&input).chunks(16 * 1024) {
            out.extend_from_slice(piece);
        }
        out
    });
}
