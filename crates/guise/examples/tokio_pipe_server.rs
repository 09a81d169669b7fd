//! The async named-pipe server (`guise::pipe::tokio`): a tokio task per
//! connection, and each request run on an impersonation worker as its client
//! (ImpersonateNamedPipeClient), so the kernel decides what the request may read.
//! An idle client holds up no one.
//!
//! `cargo run --example tokio_pipe_server`. Run as root, the clients are uid 61001
//! and 61002 (started by the example) and the file is 61001's, mode 0600;
//! otherwise both clients are the caller's own identity.

mod common;

use std::sync::Arc;

use guise::client::SecurityQos;
use guise::pipe::tokio::AsyncPipeServer;
use guise::pipe::{PipeAddr, PipeClient, ServerOptions};
use guise::pool::ImpersonationPool;
use guise::{ImpersonationLevel, Token};

/// The work of a request, on a worker that impersonates the client: what the
/// kernel answers when the worker reads `path`.
fn read_as_client(path: &str) -> String {
    let euid = rustix::process::geteuid().as_raw(); // this thread's, not the process's
    match std::fs::read_to_string(path) {
        Ok(text) => format!("as euid {euid}: read {:?}", text.trim()),
        Err(e) => format!("as euid {euid}: {e}"),
    }
}

/// Serves every client on a task of its own.
async fn serve(server: AsyncPipeServer, pool: Arc<ImpersonationPool>) {
    while let Ok(mut conn) = server.accept().await {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            while let Ok(Some(request)) = conn.read_message().await {
                let path = String::from_utf8_lossy(&request).into_owned();
                // ImpersonateNamedPipeClient on a worker thread, RevertToSelf after.
                let reply = conn
                    .run_as_client(&pool, move || read_as_client(&path))
                    .await
                    .unwrap_or_else(|e| e.to_string());
                if conn.write_message(reply.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, file, root) = common::client_file()?;

    // The workers first: threads inherit their creator's credentials, so they are
    // started before anything impersonates.
    let pool = Arc::new(ImpersonationPool::new(4)?);
    let runtime = tokio::runtime::Runtime::new()?;
    let addr = PipeAddr::Path(dir.path().join("pipe"));
    let server = {
        let _in_runtime = runtime.enter();
        AsyncPipeServer::bind(addr.clone(), ServerOptions::default())?
    };
    runtime.spawn(serve(server, pool));

    // A client that connects and says nothing: the others are served all the same.
    let _idle = PipeClient::connect(&addr, SecurityQos::default())?;
    for uid in [61001, 61002] {
        let (addr, path) = (addr.clone(), file.to_string_lossy().into_owned());
        // The client, on a thread of its own; as root, as `uid`.
        let client = guise::thread::spawn(move || -> guise::Result<(u32, Vec<u8>)> {
            let _as_uid = root
                .then(|| Token::from_ids(uid, uid, &[uid])?.impersonate())
                .transpose()?;
            let qos = SecurityQos {
                level: ImpersonationLevel::Impersonation,
                ..SecurityQos::default()
            };
            let mut pipe = PipeClient::connect(&addr, qos)?;
            let reply = pipe.transact(path.as_bytes())?;
            Ok((rustix::process::geteuid().as_raw(), reply))
        })?;
        let (uid, reply) = client.join().map_err(|_| "the client panicked")??;
        println!(
            "client uid {uid}: the kernel answered {}",
            String::from_utf8_lossy(&reply)
        );
    }
    Ok(())
}
