//! Requests per second of `guise serve`, each request run as its client
//! (impersonation), next to the same server with `--no-impersonation`. One client
//! (uid 61001, reading its own 0600 file) sends requests one after another. Needs
//! root; run with `cargo bench -p guise-cli --bench serve`.

use std::path::Path;

use divan::Bencher;
use guise::pipe::{PipeAddr, PipeClient, SecurityQos};
use guise::{ImpersonationLevel, Token};

mod common;

use common::{CLIENT, start};

fn main() {
    common::main_as_root(divan::main);
}

fn connect(socket: &Path) -> PipeClient {
    // The client is uid 61001: connect while this thread acts as it.
    let token = Token::from_ids(CLIENT, CLIENT, &[CLIENT]).unwrap();
    let qos = SecurityQos {
        level: ImpersonationLevel::Impersonation,
        ..SecurityQos::default()
    };
    token
        .run_as(|| PipeClient::connect(&PipeAddr::Path(socket.to_owned()), qos).unwrap())
        .unwrap()
}

/// One read of the whole file: the header, the data, the end, the trailer.
fn read(client: &mut PipeClient, request: &[u8]) -> Vec<u8> {
    let header = client.transact(request).unwrap();
    assert!(
        header.starts_with(br#"{"ok":true"#),
        "{}",
        String::from_utf8_lossy(&header)
    );
    let mut data = Vec::new();
    loop {
        let chunk = client.receive().unwrap().unwrap();
        if chunk.is_empty() {
            break;
        }
        data.extend_from_slice(&chunk);
    }
    let trailer = client.receive().unwrap().unwrap();
    let trailer: serde_json::Value = serde_json::from_slice(&trailer).unwrap();
    assert_eq!(trailer["ok"], true);
    data
}

fn requests(b: Bencher, impersonate: bool) {
    let server = start(&["serve"], impersonate);
    let mut client = connect(&server.socket);
    let request = br#"{"op":"read","path":"own.txt"}"#;
    assert_eq!(read(&mut client, request), vec![b'x'; 256]);
    b.bench_local(|| read(&mut client, divan::black_box(request)));
}

#[divan::bench(sample_count = 200, sample_size = 20)]
fn with_impersonation(b: Bencher) {
    requests(b, true);
}

#[divan::bench(sample_count = 200, sample_size = 20)]
fn without_impersonation(b: Bencher) {
    requests(b, false);
}
