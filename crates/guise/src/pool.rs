//! An impersonation worker pool, for blocking and async callers alike: code
//! impersonates a client by running a synchronous closure on a dedicated thread.
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
//! impersonates the token, then reverts ([`ImpersonationPool::run_as_blocking`]
//! waits on the calling thread instead; the async form needs no particular
//! runtime). [`ImpersonationPool::run`] runs a closure that impersonates by itself
//! (through a transport's ImpersonateClient, say) on a worker, which reverts after
//! it whatever the closure left. The workers are started when the pool is
//! made, before any impersonation (new threads inherit their creator's
//! credentials), and each has its own current directory, root and umask
//! (`unshare(CLONE_FS)`), so nothing a worker does there reaches other threads. A
//! worker always returns to the pool at the process identity.
//!
//! # A share per uid
//! No one identity holds every worker: the jobs of one uid (the uid of the token
//! a job runs as, or the uid given to [`ImpersonationPool::run_for`]) occupy at
//! most half the workers at once, rounded up ([`ImpersonationPool::share_per_uid`];
//! [`ImpersonationPool::with_share_per_uid`] sets another). Its further jobs wait
//! in a queue of that uid while other uids' jobs run, and the uids with jobs
//! waiting take turns for free workers, so a uid with many jobs waiting delays
//! another uid's next job by one turn at most. A client whose jobs block (a file
//! on a stalled network mount, a FUSE server it runs) holds its own share, not
//! the pool. Several identities together can still fill it: the share is per
//! identity, the transports' limits per uid and in total bound the rest. Work
//! given to [`ImpersonationPool::run`] counts against no uid.
//!
//! # Example
//! ```
//! use guise::pool::ImpersonationPool;
//! use guise::Token;
//!
//! // Started before anything impersonates.
//! let pool = ImpersonationPool::new(2)?;
//! let me = Token::open_process()?;
//! // The closure runs on a worker that impersonates the token, then reverts.
//! let uid = pool.run_as_blocking(me.clone(), || rustix::process::geteuid().as_raw())?;
//! assert_eq!(uid, me.unix().uid().as_raw());
//! # Ok::<(), guise::Error>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::thread::ThreadCredentials;
use crate::token::Token;

/// A job: the token its worker impersonates (none: the process identity) and the
/// work, told whether the worker could.
struct Job {
    token: Option<Token>,
    work: Box<dyn FnOnce(Result<()>) + Send>,
}

/// The uid a job counts against, or none.
type Owner = Option<u32>;

/// The jobs of the workers of one kind, queued per owner.
struct Queue {
    state: Mutex<QueueState>,
    /// Told when a job may be taken, or the pool shuts down.
    work: Condvar,
    /// The most of these workers one uid's jobs occupy at once.
    share: usize,
}

#[derive(Default)]
struct QueueState {
    shut: bool,
    owners: HashMap<Owner, OwnerJobs>,
    /// The owners whose jobs may be taken, in turn: each has jobs waiting and
    /// fewer than its share running, and is here once.
    turns: VecDeque<Owner>,
}

#[derive(Default)]
struct OwnerJobs {
    waiting: VecDeque<Job>,
    running: usize,
    in_turns: bool,
}

impl Queue {
    fn new(share: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            work: Condvar::new(),
            share,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `owner`, with `jobs`, may have one more job taken.
    fn may_take(&self, owner: Owner, jobs: &OwnerJobs) -> bool {
        !jobs.waiting.is_empty() && (owner.is_none() || jobs.running < self.share)
    }

    /// Queues `job` for `owner`.
    fn push(&self, owner: Owner, job: Job) -> Result<()> {
        let mut st = self.lock();
        if st.shut {
            return Err(Error::new(
                ErrorKind::Os,
                "the impersonation pool is shut down",
            ));
        }
        let st = &mut *st;
        let jobs = st.owners.entry(owner).or_default();
        jobs.waiting.push_back(job);
        if !jobs.in_turns && self.may_take(owner, jobs) {
            jobs.in_turns = true;
            st.turns.push_back(owner);
        }
        self.work.notify_one();
        Ok(())
    }

    /// The next job, of the owner whose turn it is; that owner's turn comes again
    /// after every other's.
    fn take(&self, st: &mut QueueState) -> Option<(Owner, Job)> {
        let owner = st.turns.pop_front()?;
        let jobs = st.owners.get_mut(&owner)?;
        let job = jobs.waiting.pop_front()?;
        jobs.running += 1;
        if self.may_take(owner, jobs) {
            st.turns.push_back(owner);
        } else {
            jobs.in_turns = false;
        }
        Some((owner, job))
    }

    /// Records that a job of `owner` is over: its next job may be taken.
    fn finished(&self, owner: Owner) {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(jobs) = st.owners.get_mut(&owner) else {
            return;
        };
        jobs.running -= 1;
        if !jobs.in_turns && self.may_take(owner, jobs) {
            jobs.in_turns = true;
            st.turns.push_back(owner);
            self.work.notify_one();
        }
        if jobs.waiting.is_empty() && jobs.running == 0 {
            st.owners.remove(&owner);
        }
    }

    /// Lets idle workers end once nothing is left to take; no job is taken after.
    fn shut(&self) {
        self.lock().shut = true;
        self.work.notify_all();
    }
}

/// Gives a job's place back when its work is over (or has panicked).
struct Finished<'a> {
    queue: &'a Queue,
    owner: Owner,
}

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.queue.finished(self.owner);
    }
}

/// A pool of impersonation worker threads.
///
/// Work for a token the thread will impersonate below Impersonation level
/// (Identification, Anonymous, the anonymous token, or any client of a server
/// without SeImpersonatePrivilege) runs on workers of its own, which the kernel lets
/// open no file (a Landlock domain of ABI 6 that handles every filesystem access
/// right and allows none, and scopes abstract Unix sockets and signals; set once on
/// each of these threads, with `no_new_privs`): Windows opens no object for a thread
/// at these levels, and here the kernel backs that up, whatever the closure tries.
/// Landlock leaves `stat` and `O_PATH` opens alone, and before its ABI 9 connecting
/// to a socket file. Where the kernel does not enforce all of this they fall back
/// to the sentinel identity alone ([`ImpersonationPool::sandboxed`] says which).
pub struct ImpersonationPool {
    queue: Arc<Queue>,
    sandbox_queue: Arc<Queue>,
    workers: Vec<JoinHandle<()>>,
    sandboxed: bool,
    /// The workers' own credentials (the process identity they start at): what
    /// decides the level a job's token gets, and so which workers run it.
    identity: ThreadCredentials,
}

impl std::fmt::Debug for ImpersonationPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImpersonationPool")
            .field("workers", &self.workers.len())
            .field("share_per_uid", &self.queue.share)
            .field("sandboxed", &self.sandboxed)
            .finish()
    }
}

/// Puts the calling thread in a Landlock domain that allows no filesystem access;
/// whether the kernel enforces it fully.
fn sandbox_thread() -> bool {
    use landlock::{ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetStatus, Scope};
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI::V6))
        .and_then(|r| r.scope(Scope::from_all(ABI::V6)))
        .and_then(|r| r.create())
        .and_then(|r| r.restrict_self());
    match status {
        Ok(s) if s.ruleset == RulesetStatus::FullyEnforced => true,
        Ok(s) => {
            tracing::warn!(status = ?s.ruleset, "Landlock is not fully enforced on a sandboxed impersonation worker: the sentinel identity holds it");
            false
        }
        Err(e) => {
            tracing::warn!(%e, "no Landlock for the sandboxed impersonation workers: the sentinel identity alone holds them");
            false
        }
    }
}

impl ImpersonationPool {
    /// Starts `threads` workers (at least one); one uid's jobs occupy at most half
    /// of them at once, rounded up (see the [module docs](self#a-share-per-uid)).
    ///
    /// # Errors
    /// [`ErrorKind::CannotImpersonate`] if the calling thread impersonates (the
    /// workers would inherit its credentials); [`ErrorKind::Os`] if a thread cannot
    /// be started.
    pub fn new(threads: usize) -> Result<ImpersonationPool> {
        let threads = threads.max(1);
        Self::with_share_per_uid(threads, threads.div_ceil(2))
    }

    /// As [`Self::new`], with one uid's jobs occupying at most `share` of the
    /// `threads` workers at once (between 1 and `threads`; `threads` lets one uid
    /// hold them all). The workers for work below Impersonation level, half as
    /// many, are shared in the same proportion.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_share_per_uid(threads: usize, share: usize) -> Result<ImpersonationPool> {
        if crate::thread::is_impersonating() {
            return Err(Error::new(
                ErrorKind::CannotImpersonate,
                "start the pool before impersonating: threads inherit their creator's credentials",
            ));
        }
        let identity = crate::thread::process_credentials()?;
        let threads = threads.max(1);
        let share = share.clamp(1, threads);
        let sandboxes = threads.div_ceil(2);
        let queue = Arc::new(Queue::new(share));
        let sandbox_queue = Arc::new(Queue::new((share * sandboxes).div_ceil(threads)));
        let mut workers = Vec::new();
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let worker =
                crate::thread::spawn_named(Some(format!("guise-impersonation-{i}")), move || {
                    worker(&queue, None)
                })?;
            workers.push(worker);
        }
        let (ready_tx, ready_rx) = mpsc::channel();
        for i in 0..sandboxes {
            let (queue, ready) = (Arc::clone(&sandbox_queue), ready_tx.clone());
            let worker =
                crate::thread::spawn_named(Some(format!("guise-identification-{i}")), move || {
                    worker(&queue, Some(ready))
                })?;
            workers.push(worker);
        }
        // Every sandboxed worker says how it went (all of them, not just the first);
        // one that died before it could counts as failed.
        drop(ready_tx);
        let said = ready_rx.iter().take(sandboxes).collect::<Vec<bool>>();
        let failed = said.iter().filter(|ok| !**ok).count() + (sandboxes - said.len());
        let sandboxed = failed == 0;
        Ok(ImpersonationPool {
            queue,
            sandbox_queue,
            workers,
            sandboxed,
            identity,
        })
    }

    /// Whether the workers for work below Impersonation level are held by the
    /// kernel to open no file (Landlock); else only the sentinel identity holds
    /// them.
    pub fn sandboxed(&self) -> bool {
        self.sandboxed
    }

    /// The most workers one uid's jobs occupy at once (of the workers for work at
    /// Impersonation level and above).
    pub fn share_per_uid(&self) -> usize {
        self.queue.share
    }

    /// The queue of the workers a job for `token` runs on: the sandboxed ones if
    /// the token gets less than Impersonation level there.
    fn queue_for(&self, token: &Token) -> &Queue {
        if crate::thread::rules::may_open_as_client(Some(crate::thread::rules::thread_level(
            token,
            &self.identity,
        )))
        .is_err()
        {
            &self.sandbox_queue
        } else {
            &self.queue
        }
    }

    /// Queues `f` for `queue`, to run as `token` (none: the process identity),
    /// counted against `owner`; its outcome arrives on the returned receiver,
    /// which any async runtime can await.
    fn dispatch<R: Send + 'static>(
        &self,
        queue: &Queue,
        owner: Owner,
        token: Option<Token>,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<Outcome<R>>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        queue.push(owner, job(token, f, move |o| drop(tx.send(o))))?;
        Ok(rx)
    }

    /// As [`Self::dispatch`], for a caller that waits on its thread (which may be
    /// a thread of an async runtime).
    fn dispatch_blocking<R: Send + 'static>(
        &self,
        queue: &Queue,
        owner: Owner,
        token: Option<Token>,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::channel();
        queue.push(owner, job(token, f, move |o| drop(tx.send(o))))?;
        finish(rx.recv().ok())
    }

    /// Runs `f` on a worker that impersonates `token` ([`Token::run_as`]), and
    /// returns its result. A panic in `f` is resumed in the caller. The future
    /// needs no particular async runtime.
    ///
    /// # Errors
    /// As [`Token::impersonate`]; `f` does not run then.
    pub async fn run_as<R: Send + 'static>(
        &self,
        token: Token,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        let token = impersonation_token(token)?;
        let owner = Some(token.unix().uid().as_raw());
        let rx = self.dispatch(self.queue_for(&token), owner, Some(token), f)?;
        finish(rx.await.ok())
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
        let token = impersonation_token(token)?;
        let owner = Some(token.unix().uid().as_raw());
        self.dispatch_blocking(self.queue_for(&token), owner, Some(token), f)
    }

    /// Runs `f` on a worker at the process identity, and returns its result: for
    /// work that impersonates by itself (a transport's ImpersonateClient and
    /// RevertToSelf). Whatever `f` leaves, the worker reverts before its next job.
    /// The workers that run it are not the sandboxed ones: `f` that impersonates
    /// below Impersonation level is held by the sentinel identity alone, so it
    /// should call [`crate::thread::check_open_as_client`] before opening anything.
    /// It counts against no uid's share: work done for a client belongs in
    /// [`Self::run_for`]. A panic in `f` is resumed in the caller.
    ///
    /// # Errors
    /// [`ErrorKind::Os`] if the pool is shut down.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        let rx = self.dispatch(&self.queue, None, None, f)?;
        finish(rx.await.ok())
    }

    /// As [`Self::run`], counted against `uid`'s share of the workers: for work
    /// done for a client at the process identity (opens through the client's
    /// io_uring personality, a transport's ImpersonateClient).
    ///
    /// # Errors
    /// As [`Self::run`].
    pub async fn run_for<R: Send + 'static>(
        &self,
        uid: impl Into<crate::id::Uid>,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        let owner = Some(uid.into().as_raw());
        let rx = self.dispatch(&self.queue, owner, None, f)?;
        finish(rx.await.ok())
    }

    /// As [`Self::run`], waiting on the calling thread.
    ///
    /// # Errors
    /// As [`Self::run`].
    pub fn run_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        self.dispatch_blocking(&self.queue, None, None, f)
    }
}

type Outcome<R> = Result<std::thread::Result<R>>;

/// The token a worker puts on for `token`: a primary token as an impersonation
/// token at Impersonation level (as [`Token::impersonate`] takes it).
fn impersonation_token(token: Token) -> Result<Token> {
    match token.token_type() {
        crate::token::TokenType::Primary => token.duplicate(
            crate::token::ImpersonationLevel::Impersonation,
            crate::token::TokenType::Impersonation,
        ),
        crate::token::TokenType::Impersonation => Ok(token),
    }
}

/// A job that runs `f` once its worker impersonates `token` (or is the process),
/// and hands the outcome to `reply`: `f`'s result or panic, or why the worker could
/// not impersonate (then `f` does not run).
fn job<R: Send + 'static>(
    token: Option<Token>,
    f: impl FnOnce() -> R + Send + 'static,
    reply: impl FnOnce(Outcome<R>) + Send + 'static,
) -> Job {
    Job {
        token,
        work: Box::new(move |ready: Result<()>| {
            reply(ready.map(|()| catch_unwind(AssertUnwindSafe(f))));
        }),
    }
}

/// The result of a job, or its panic resumed; `None`: the worker stopped first.
fn finish<R>(outcome: Option<Outcome<R>>) -> Result<R> {
    let outcome =
        outcome.ok_or_else(|| Error::new(ErrorKind::Os, "an impersonation worker stopped"))?;
    match outcome? {
        Ok(r) => Ok(r),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A worker's loop; a sandboxed worker first enters its Landlock domain and says
/// on `sandbox` whether the kernel enforces it.
fn worker(queue: &Queue, sandbox: Option<mpsc::Sender<bool>>) {
    if let Err(e) = crate::thread::unshare_fs_context() {
        tracing::warn!(%e, "impersonation worker shares its fs context: unshare(CLONE_FS) refused");
    }
    if let Some(ready) = sandbox {
        let _ = ready.send(sandbox_thread());
    }
    loop {
        // While work is waiting the worker goes from one job's identity straight
        // to the next one's (nothing at all for the same identity); it returns to
        // the process identity before it waits for work.
        let next = queue.take(&mut queue.lock());
        let (owner, job) = match next {
            Some(next) => next,
            None => {
                back_to_process();
                let mut st = queue.lock();
                loop {
                    if let Some(next) = queue.take(&mut st) {
                        break next;
                    }
                    if st.shut {
                        return;
                    }
                    st = queue.work.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            }
        };
        let _finished = Finished { queue, owner };
        let ready = match &job.token {
            // SetThreadToken replaces whatever the last job left on the thread.
            Some(token) => crate::thread::set_thread_token(Some(token)),
            None => {
                back_to_process();
                Ok(())
            }
        };
        (job.work)(ready);
    }
}

/// Puts a worker back on the process identity, or ends the process.
fn back_to_process() {
    if crate::thread::is_impersonating()
        && let Err(e) = crate::thread::revert_to_self()
    {
        crate::cred::fatal("an impersonation worker could not revert", &e);
    }
}

impl Drop for ImpersonationPool {
    /// Idle workers end; a busy one ends after its job. The drop does not wait
    /// for them: a job stuck in the kernel must not hold up a shutdown.
    fn drop(&mut self) {
        self.queue.shut();
        self.sandbox_queue.shut();
        self.workers.clear();
    }
}
