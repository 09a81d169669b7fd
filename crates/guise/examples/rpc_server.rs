//! RpcImpersonateClient over gRPC (`guise::rpc`, tonic on a Unix socket): each
//! call runs on an impersonation worker as its caller, at the level the caller
//! allowed in its metadata, and the kernel decides what the call may read.
//!
//! `cargo run --example rpc_server`. As root the client is uid 61001 (a thread of
//! the example that impersonates it when it connects: the server sees the ids the
//! kernel recorded at `connect`) and the file is 61001's, mode 0600; otherwise the
//! client is the caller.
//!
//! The service, `guise.example.Files/Read`, takes a path and returns what the
//! kernel answered, both as `google.protobuf.StringValue`, so any gRPC client can
//! call it; it is written out by hand here (tonic-build would generate the same
//! from a `.proto`).

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use guise::pool::ImpersonationPool;
use guise::rpc::{RpcCall, RpcLayer, RpcOptions, UnixIncoming};
use guise::{ImpersonationLevel, Token};
use tonic::codegen::http;
use tonic_prost::ProstCodec;

const READ: &str = "/guise.example.Files/Read";

/// What a worker impersonating the caller gets from the kernel for `path`.
fn read_as_caller(path: &str) -> String {
    let euid = rustix::process::geteuid().as_raw(); // this thread's, not the process's
    match std::fs::read_to_string(path) {
        Ok(text) => format!("as euid {euid}: read {:?}", text.trim()),
        Err(e) => format!("as euid {euid}: {e}"),
    }
}

/// The `Read` method.
struct Read(Arc<ImpersonationPool>);

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl tonic::server::UnaryService<String> for Read {
    type Response = String;
    type Future = BoxFuture<tonic::Response<String>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<String>) -> Self::Future {
        let pool = Arc::clone(&self.0);
        Box::pin(async move {
            // The call's context, which RpcLayer attached: the kernel's view of
            // the caller and the level it allowed.
            let call = RpcCall::of(&request).map_err(|e| tonic::Status::internal(e.to_string()))?;
            let path = request.into_inner();
            // RpcImpersonateClient on a worker thread, RpcRevertToSelf after it.
            let answer = call
                .run_as_client(&pool, move || read_as_caller(&path))
                .await
                .map_err(|e| tonic::Status::permission_denied(e.to_string()))?;
            Ok(tonic::Response::new(answer))
        })
    }
}

/// The service: routes `Read`, refuses other methods.
#[derive(Clone)]
struct Files(Arc<ImpersonationPool>);

impl tonic::server::NamedService for Files {
    const NAME: &'static str = "guise.example.Files";
}

impl tower::Service<http::Request<tonic::body::Body>> for Files {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let read = Read(Arc::clone(&self.0));
        Box::pin(async move {
            if request.uri().path() != READ {
                return Ok(tonic::Status::unimplemented(request.uri().path()).into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<String, String>::default());
            Ok(grpc.unary(read, request).await)
        })
    }
}

/// The client: asks the server to read `path`, allowing Impersonation level.
async fn call_read(socket: &std::path::Path, path: String) -> Result<String, tonic::Status> {
    let channel = guise::rpc::connect(socket)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(path);
    // The metadata guise-impersonation-level: impersonation (absent: identification).
    guise::rpc::request_level(&mut request, ImpersonationLevel::Impersonation);
    let codec = ProstCodec::<String, String>::default();
    let path = http::uri::PathAndQuery::from_static(READ);
    Ok(client.unary(request, path, codec).await?.into_inner())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, file, root) = common::client_file()?;

    // The workers first, before anything impersonates.
    let pool = Arc::new(ImpersonationPool::new(4)?);
    let runtime = tokio::runtime::Runtime::new()?;
    let socket = dir.path().join("rpc.sock");
    let incoming = {
        let _in_runtime = runtime.enter();
        UnixIncoming::bind(&socket, RpcOptions::default())?
    };
    runtime.spawn(
        guise::rpc::server()
            .layer(RpcLayer::default())
            .add_service(Files(pool))
            .serve_with_incoming(incoming),
    );

    // The client, on a thread of its own with a runtime of its own; as root, as
    // uid 61001 (the thread that connects is the identity the server sees).
    let path = file.to_string_lossy().into_owned();
    let client = guise::thread::spawn(move || -> Result<(u32, String), String> {
        let _as_61001 = root
            .then(|| Token::from_ids(61001, 61001, &[61001])?.impersonate())
            .transpose()
            .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let answer = runtime
            .block_on(call_read(&socket, path))
            .map_err(|e| e.to_string())?;
        Ok((rustix::process::geteuid().as_raw(), answer))
    })?;
    let (uid, answer) = client.join().map_err(|_| "the client panicked")??;
    println!("caller uid {uid}: the kernel answered {answer}");
    Ok(())
}
