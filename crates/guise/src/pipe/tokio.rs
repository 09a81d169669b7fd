//! The tokio form of the pipe server: accept and read without blocking a runtime
//! thread; impersonate through an [`ImpersonationPool`].

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};

use super::pool::ImpersonationPool;
use super::{
    ClientInfo, KIND_MESSAGE, PipeAddr, ServerOptions, admit, encode_frame, frame_header, io_err,
    listen,
};
use crate::error::{Error, ErrorKind, Result};

/// An async pipe server.
#[derive(Debug)]
pub struct AsyncPipeServer {
    listener: tokio::net::UnixListener,
    options: ServerOptions,
    addr: PipeAddr,
}

impl AsyncPipeServer {
    /// Listens on `addr`, as [`super::PipeServer::bind`] does. Call it inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// As [`super::PipeServer::bind`].
    pub fn bind(addr: PipeAddr, options: ServerOptions) -> Result<AsyncPipeServer> {
        let std = listen(&addr, &options)?;
        std.set_nonblocking(true)
            .map_err(|e| io_err("the listener", &e))?;
        let listener =
            tokio::net::UnixListener::from_std(std).map_err(|e| io_err("the listener", &e))?;
        Ok(AsyncPipeServer {
            listener,
            options,
            addr,
        })
    }

    /// Waits for a client the policy accepts.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if accepting fails.
    pub async fn accept(&self) -> Result<AsyncPipeConnection> {
        loop {
            let (stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| io_err("accepting a client", &e))?;
            let Some((ctx, pidfd)) = admit(stream.as_fd(), &self.options)? else {
                continue;
            };
            return Ok(AsyncPipeConnection {
                stream,
                ctx,
                max_message: self.options.max_message,
                _pidfd: pidfd,
            });
        }
    }
}

impl Drop for AsyncPipeServer {
    fn drop(&mut self) {
        if let PipeAddr::Path(p) = &self.addr {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The server side of one client's connection, async.
#[derive(Debug)]
pub struct AsyncPipeConnection {
    stream: tokio::net::UnixStream,
    ctx: ClientInfo,
    max_message: usize,
    _pidfd: Option<OwnedFd>,
}

impl AsyncPipeConnection {
    /// Reads one byte with the kernel's credentials for it.
    async fn first_byte(&self) -> io::Result<(u8, Option<(u32, u32)>)> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        loop {
            self.stream.readable().await?;
            let r = self.stream.try_io(Interest::READABLE, || {
                let mut byte = [0u8; 1];
                let mut space =
                    [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
                let mut anc = RecvAncillaryBuffer::new(&mut space);
                let m = rustix::net::recvmsg(
                    &self.stream,
                    &mut [io::IoSliceMut::new(&mut byte)],
                    &mut anc,
                    RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
                )?;
                let mut creds = None;
                for msg in anc.drain() {
                    if let RecvAncillaryMessage::ScmCredentials(c) = msg {
                        creds = Some((c.uid.as_raw(), c.gid.as_raw()));
                    }
                }
                if m.bytes == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "disconnected"));
                }
                Ok((byte[0], creds))
            });
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    /// Reads the next message; `None` when the client has closed.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a malformed or oversized frame, or a
    /// client gone mid-frame: close the connection then.
    pub async fn read_message(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            let (b0, sender) = match self.first_byte().await {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(io_err("reading from the client", &e)),
            };
            let bad = |e: io::Error| {
                Error::os(
                    ErrorKind::InvalidParameter,
                    "a malformed frame from the client",
                    &e,
                )
            };
            let mut header = [b0, 0, 0, 0, 0];
            self.stream
                .read_exact(&mut header[1..])
                .await
                .map_err(bad)?;
            let (kind, len) = frame_header(&header, self.max_message).map_err(bad)?;
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).await.map_err(bad)?;
            if let Some(m) = self.ctx.frame(kind, payload, sender).map_err(bad)? {
                return Ok(Some(m));
            }
        }
    }

    /// Writes a message.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the client is gone.
    pub async fn write_message(&mut self, message: &[u8]) -> Result<()> {
        self.stream
            .write_all(&encode_frame(KIND_MESSAGE, message))
            .await
            .map_err(|e| io_err("writing to the client", &e))
    }

    /// What the server knows of the client.
    pub fn client(&self) -> &ClientInfo {
        &self.ctx
    }

    /// Runs `f` on a worker of `pool` that impersonates the client
    /// (ImpersonateNamedPipeClient), and returns its result.
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] until a message was read from the client;
    /// otherwise as [`ImpersonationPool::run_as`].
    #[doc(alias = "ImpersonateNamedPipeClient")]
    pub async fn run_as_client<R: Send + 'static>(
        &self,
        pool: &ImpersonationPool,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        pool.run_as(self.ctx.token()?, f).await
    }
}
