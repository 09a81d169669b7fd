//! AcceptSecurityContext and impersonation of a network client
//! (`guise::kerberos`): a client authenticates over TCP with its Kerberos
//! ticket, the server maps its principal to a local account (krb5's
//! `auth_to_local`, then NSS) and reads files as that account on an
//! impersonation worker; every frame after the handshake is sealed.
//!
//! ```sh
//! KRB5_CONFIG=/etc/krb5.conf KRB5CCNAME=FILE:/tmp/krb5cc_alice \
//!     cargo run --features kerberos --example kerberos_server -- \
//!     /etc/guise.keytab guise/files.example.com@EXAMPLE.COM /home/alice/notes.txt
//! ```
//!
//! Needs root (to act as the client's account), a realm, the service's keytab
//! and a client's ticket in `KRB5CCNAME` (kinit). Server and client run in this
//! one process, on loopback; the client's principal must map to a local account.

use std::sync::Arc;

use guise::ImpersonationLevel;
use guise::client::{ClientContext, SecurityQos};
use guise::kerberos::{Acceptor, Delegation, Initiator, KerberosOptions};
use guise::pool::ImpersonationPool;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What a worker impersonating the client gets from the kernel for `path`.
fn read_as_client(path: &str) -> String {
    let euid = rustix::process::geteuid().as_raw(); // this thread's, not the process's
    match std::fs::read_to_string(path) {
        Ok(text) => format!("as euid {euid}: read {:?}", text.trim()),
        Err(e) => format!("as euid {euid}: {e}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [keytab, service, paths @ ..] = &args[..] else {
        eprintln!(
            "usage: kerberos_server KEYTAB SERVICE-PRINCIPAL PATH... (the client's ticket in KRB5CCNAME)"
        );
        std::process::exit(2);
    };
    // The workers first, before anything impersonates.
    let pool = Arc::new(ImpersonationPool::new(2)?);
    // AcquireCredentialsHandle: the service's keys.
    let acceptor =
        Acceptor::from_keytab(keytab.as_ref(), Some(service), KerberosOptions::default())?;
    // InitializeSecurityContext: the client's ticket for the service, from KRB5CCNAME.
    let initiator = Initiator::start(service, Delegation::None)?;

    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = async {
            let (tcp, from) = listener.accept().await?;
            // AcceptSecurityContext, then the principal's local account.
            let (stream, peer) = acceptor.accept(tcp, from).await?;
            if let Some(network) = peer.network() {
                println!(
                    "server: {} is the local account {} (uid {})",
                    network.principal,
                    network.account,
                    peer.uid()
                );
            }
            // The client's token at Impersonation level (this protocol's clients
            // allow it; a gRPC client says so in its metadata).
            let mut client = ClientContext::new(peer, ImpersonationLevel::Delegation);
            client.set_qos(SecurityQos {
                level: ImpersonationLevel::Impersonation,
                ..SecurityQos::default()
            });
            client.message_received(None);
            let token = client.token()?;
            // One path a line in, one answer a line out, until an empty line.
            let mut stream = BufReader::new(stream);
            let mut line = String::new();
            while stream.read_line(&mut line).await? > 1 {
                let path = line.trim_end().to_owned();
                line.clear();
                let answer = pool
                    .run_as(token.clone(), move || read_as_client(&path))
                    .await?;
                stream.write_all(format!("{answer}\n").as_bytes()).await?;
                stream.flush().await?;
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        };
        let client = async {
            let tcp = tokio::net::TcpStream::connect(address).await?;
            let mut stream = BufReader::new(initiator.connect(tcp).await?);
            for path in paths {
                stream.write_all(format!("{path}\n").as_bytes()).await?;
                stream.flush().await?;
                let mut answer = String::new();
                stream.read_line(&mut answer).await?;
                println!("{path}: the kernel answered {}", answer.trim_end());
            }
            stream.write_all(b"\n").await?;
            stream.flush().await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        };
        let (served, asked) = tokio::join!(server, client);
        served.and(asked)
    })
}
