//! One admission policy on every transport (issue 20): the same
//! [`guise::admission::Limits`] hold the same way on the pipe and on gRPC. The
//! policy: a connection over its uid's limit is refused; over the limit of all
//! connections, the connection idle the longest is closed to make room.
//!
//! Runs without root: every client is this process's own uid.
#![cfg(all(feature = "rpc", feature = "dbus"))]

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use guise::admission::Limits;
use guise::pipe::tokio::AsyncPipeServer;
use guise::pipe::{PipeAddr, ServerOptions};
use guise::rpc::{RpcOptions, UnixIncoming};
use tokio::io::AsyncReadExt;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Pipe,
    Grpc,
}

fn limits(total: usize, per_uid: usize) -> Limits {
    let mut l = Limits::default();
    l.max_connections = total;
    l.max_connections_per_uid = per_uid;
    l
}

/// Serves `socket` on `transport` within `limits`: each connection taken is
/// held, and read from until it ends (a connection closed to make room ends).
fn serve(transport: Transport, socket: &Path, limits: Limits) -> tokio::task::JoinHandle<()> {
    match transport {
        Transport::Pipe => {
            let mut o = ServerOptions::default();
            o.limits = limits;
            let server = AsyncPipeServer::bind(PipeAddr::Path(socket.to_owned()), o).unwrap();
            tokio::spawn(async move {
                while let Ok(mut conn) = server.accept().await {
                    tokio::spawn(
                        async move { while let Ok(Some(_)) = conn.read_message().await {} },
                    );
                }
            })
        }
        Transport::Grpc => {
            let mut o = RpcOptions::default();
            o.limits = limits;
            let mut incoming = UnixIncoming::bind(socket, o).unwrap();
            tokio::spawn(async move {
                use tokio_stream::StreamExt;
                while let Some(Ok(mut conn)) = incoming.next().await {
                    tokio::spawn(async move {
                        let mut b = [0u8; 64];
                        while let Ok(n) = conn.read(&mut b).await {
                            if n == 0 {
                                break;
                            }
                        }
                    });
                }
            })
        }
    }
}

/// Whether the server still holds `s` open (it sends nothing, so a read that
/// times out means open; an end of file means closed).
fn is_open(s: &UnixStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    match (&*s).read(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Connects `n` clients one after another (each taken before the next), and
/// says which the server holds open.
async fn connect(socket: &Path, n: usize) -> Vec<bool> {
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(UnixStream::connect(socket).unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::task::spawn_blocking(move || clients.iter().map(is_open).collect())
        .await
        .unwrap()
}

/// The table: (all connections, per uid), clients connected, and which stay
/// open; the same on both transports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_limits_and_policy_hold_on_pipe_and_grpc() {
    /// A row: its name, the limits (all, per uid), the clients connected, and
    /// which stay open.
    type Row<'a> = (&'a str, (usize, usize), usize, &'a [bool]);
    let rows: &[Row<'_>] = &[
        ("within both", (8, 8), 3, &[true, true, true]),
        (
            "over the uid's limit: refused",
            (8, 2),
            4,
            &[true, true, false, false],
        ),
        ("a limit of 0 is 1", (8, 0), 2, &[true, false]),
        (
            "over all connections: the one idle the longest goes",
            (2, 8),
            3,
            &[false, true, true],
        ),
    ];
    for transport in [Transport::Pipe, Transport::Grpc] {
        for (name, (total, per_uid), n, want) in rows {
            let dir = tempfile::tempdir().unwrap();
            let socket = dir.path().join("s");
            let server = serve(transport, &socket, limits(*total, *per_uid));
            let got = connect(&socket, *n).await;
            assert_eq!(&got, want, "{transport:?}: {name}");
            server.abort();
        }
    }
}

/// The defaults are one set, and the transports' options start from it.
#[test]
fn every_transport_starts_from_the_same_defaults() {
    let d = Limits::default();
    assert_eq!(ServerOptions::default().limits, d);
    assert_eq!(RpcOptions::default().limits, d);
    assert_eq!(guise::dbus::DbusLimits::default(), d);
    assert_eq!(
        d.max_connections_per_uid,
        guise::admission::DEFAULT_MAX_CONNECTIONS_PER_UID
    );
    assert_eq!(
        guise::rpc::DEFAULT_MAX_CALLS_PER_UID,
        guise::dbus::DEFAULT_MAX_CALLS_PER_UID
    );
}
