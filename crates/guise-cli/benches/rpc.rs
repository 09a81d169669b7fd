//! Calls per second of `Read` on `guise rpc serve`, each call run as its caller
//! (impersonation), next to the same server with `--no-impersonation`. One caller
//! (uid 61001, Impersonation level, reading its own 256-byte 0600 file) makes calls
//! one after another over one connection. Needs root; run with
//! `cargo bench -p guise-cli --bench rpc`.

use divan::Bencher;
use guise::Token;
use tonic::transport::{Channel, Endpoint};

mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("guise.files.v1");
}

use proto::ReadRequest;
use proto::files_client::FilesClient;

mod common;

use common::{CLIENT, Server, start};

fn main() {
    common::main_as_root(divan::main);
}

/// A channel whose connection the server sees as the caller: made on a thread that
/// impersonates it.
async fn channel(server: &Server) -> Channel {
    let path = server.socket.clone();
    Endpoint::from_static("http://guise.invalid")
        .connect_with_connector(tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let path = path.clone();
            async move {
                let token = Token::from_ids(CLIENT, CLIENT, &[CLIENT]).unwrap();
                let std = guise::thread::spawn(move || {
                    token.run_as(|| std::os::unix::net::UnixStream::connect(&path))
                })
                .unwrap()
                .join()
                .unwrap()
                .unwrap()?;
                std.set_nonblocking(true)?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::from_std(std)?,
                ))
            }
        }))
        .await
        .unwrap()
}

async fn read(client: &mut FilesClient<Channel>) -> Vec<u8> {
    let mut request = tonic::Request::new(ReadRequest {
        path: "own.txt".into(),
        offset: 0,
        length: 0,
    });
    guise::rpc::request_level(&mut request, guise::ImpersonationLevel::Impersonation);
    let mut stream = client.read(request).await.unwrap().into_inner();
    let mut data = Vec::new();
    while let Some(c) = stream.message().await.unwrap() {
        data.extend(c.data);
    }
    data
}

fn calls(b: Bencher, impersonate: bool) {
    let server = start(&["rpc", "serve"], impersonate);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut client = FilesClient::new(rt.block_on(channel(&server)));
    assert_eq!(rt.block_on(read(&mut client)), vec![b'x'; 256]);
    b.bench_local(|| rt.block_on(read(divan::black_box(&mut client))));
}

#[divan::bench(sample_count = 200, sample_size = 20)]
fn with_impersonation(b: Bencher) {
    calls(b, true);
}

#[divan::bench(sample_count = 200, sample_size = 20)]
fn without_impersonation(b: Bencher) {
    calls(b, false);
}
