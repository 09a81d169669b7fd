//! An impersonation worker pool: async code impersonates by running a synchronous
//! closure on a dedicated thread.
//!
//! Async tasks move between threads at every `.await`, and impersonation belongs to a
//! thread; an [`Impersonation`](crate::Impersonation) guard is `!Send`, so it cannot
//! be held across an `.await` in a task that may move:
//!
//! ```compile_fail
//! fn spawned<F: std::future::Future + Send>(_: F) {}
//! async fn serve(client: guise::Token) {
//!     let guard = client.impersonate().unwrap();
//!     std::future::ready(()).await; // the task may resume on another thread here
//!     drop(guard);
//! }
//! spawned(serve(guise::Token::anonymous()));
//! ```
//!
//! Instead, [`ImpersonationPool::run_as`] runs the closure on a worker thread that
//! impersonates the token, then reverts. The workers are started when the pool is
//! made, before any impersonation (new threads inherit their creator's
//! credentials), and each has its own current directory, root and umask
//! (`unshare(CLONE_FS)`), so nothing a worker does there reaches other threads. A
//! worker always returns to the pool at the process identity.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::token::Token;

type Job = Box<dyn FnOnce() + Send>;

/// A pool of impersonation worker threads.
pub struct ImpersonationPool {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ImpersonationPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImpersonationPool")
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl ImpersonationPool {
    /// Starts `threads` workers (at least one).
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] if the calling thread impersonates (the
    /// workers would inherit its credentials); [`ErrorKind::Os`] if a thread cannot
    /// be started.
    pub fn new(threads: usize) -> Result<ImpersonationPool> {
        if crate::thread::is_impersonating() {
            return Err(Error::new(
                ErrorKind::CannotImpersonate,
                "start the pool before impersonating: threads inherit their creator's credentials",
            ));
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let worker =
                crate::thread::spawn_named(Some(format!("guise-impersonation-{i}")), move || {
                    worker(&rx)
                })?;
            workers.push(worker);
        }
        Ok(ImpersonationPool {
            sender: Mutex::new(Some(tx)),
            workers,
        })
    }

    fn submit(&self, job: Job) -> Result<()> {
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        sender
            .as_ref()
            .and_then(|s| s.send(job).ok())
            .ok_or_else(|| Error::new(ErrorKind::Os, "the impersonation pool is shut down"))
    }

    /// Runs `f` on a worker that impersonates `token` ([`Token::run_as`]), and
    /// returns its result. A panic in `f` is resumed in the caller.
    ///
    /// # Errors
    /// As [`Token::impersonate`]; `f` does not run then.
    #[cfg(feature = "tokio")]
    pub async fn run_as<R: Send + 'static>(
        &self,
        token: Token,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move || {
            let _ = tx.send(run_job(&token, f));
        }))?;
        let outcome = rx
            .await
            .map_err(|_| Error::new(ErrorKind::Os, "an impersonation worker stopped"))?;
        finish(outcome)
    }

    /// As [`Self::run_as`], waiting on the calling thread.
    ///
    /// # Errors
    /// As [`Self::run_as`].
    pub fn run_as_blocking<R: Send + 'static>(
        &self,
        token: Token,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::channel();
        self.submit(Box::new(move || {
            let _ = tx.send(run_job(&token, f));
        }))?;
        let outcome = rx
            .recv()
            .map_err(|_| Error::new(ErrorKind::Os, "an impersonation worker stopped"))?;
        finish(outcome)
    }
}

type Outcome<R> = Result<std::thread::Result<R>>;

fn run_job<R>(token: &Token, f: impl FnOnce() -> R) -> Outcome<R> {
    let guard = token.impersonate()?;
    let r = catch_unwind(AssertUnwindSafe(f));
    drop(guard);
    Ok(r)
}

fn finish<R>(outcome: Outcome<R>) -> Result<R> {
    match outcome? {
        Ok(r) => Ok(r),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn worker(rx: &Mutex<mpsc::Receiver<Job>>) {
    if let Err(e) = crate::thread::unshare_fs_context() {
        tracing::warn!(%e, "impersonation worker shares its fs context: unshare(CLONE_FS) refused");
    }
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        let Ok(job) = job else { return };
        job();
        // A worker returns to the pool at the process identity, always.
        if crate::thread::is_impersonating()
            && let Err(e) = crate::thread::revert_to_self()
        {
            crate::cred::fatal("an impersonation worker could not revert", &e);
        }
    }
}

impl Drop for ImpersonationPool {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
