//! SetThreadToken and OpenThreadToken on another thread ([`guise::thread::ThreadHandle`]):
//! the target's kernel credentials change at once, no other thread's do.

#[path = "../common/mod.rs"]
mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{A, B, Public, public};
use guise::thread::ThreadHandle;
use guise::{ErrorKind, ImpersonationLevel, Token, TokenType};

fn client(uid: u32) -> Token {
    Token::from_ids(uid, uid, &[uid])
        .unwrap()
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap()
}

/// A field of the status of thread `tid` of this process, as another thread reads
/// it (`/proc/self/task/TID/status`).
fn status_of(tid: i32, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn tid() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

/// `/proc`, opened once (`O_PATH`) before any thread of the test is below
/// Impersonation level: such a thread's root is an empty directory, with no
/// `/proc` in it.
fn proc_dir() -> std::os::fd::BorrowedFd<'static> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsFd;
    static PROC: std::sync::OnceLock<std::os::fd::OwnedFd> = std::sync::OnceLock::new();
    PROC.get_or_init(|| {
        rustix::fs::open(
            "/proc",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("/proc must be opened before a thread goes below Impersonation level")
    })
    .as_fd()
}

/// The fs root and cwd of thread `tid` of this process, as another thread sees
/// them (`/proc/self/task/TID/{root,cwd}`).
fn fs_of(tid: i32) -> (String, String) {
    let link = |what: &str| {
        std::fs::read_link(format!("/proc/self/task/{tid}/{what}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    (link("root"), link("cwd"))
}

/// What a target thread is asked to do, from the test's thread.
enum Ask {
    /// Report what it sees of itself.
    Report(mpsc::Sender<Seen>),
    /// Impersonate B with a guard, and hold it until the next `Drop`.
    Guard(mpsc::Sender<()>),
    /// Drop the guard it holds.
    Drop(mpsc::Sender<()>),
    /// Impersonate this token with a guard, and hold it until the next `Drop`.
    Hold(Token, mpsc::Sender<()>),
    /// Run this on the thread.
    Do(Box<dyn FnOnce() + Send>),
    Stop,
}

/// A thread's own view of itself.
#[derive(Debug)]
struct Seen {
    status_uid: String,
    impersonating: bool,
    token_uid: Option<u32>,
}

/// Starts a thread with `guise::thread::spawn` that hands out its handle and tid,
/// then does what it is asked.
fn target() -> (
    ThreadHandle,
    i32,
    mpsc::Sender<Ask>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel::<Ask>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let join = guise::thread::spawn(move || {
        let handle = ThreadHandle::current().unwrap();
        let proc = proc_dir();
        ready_tx.send((handle, tid())).unwrap();
        let mut guard = None;
        for ask in rx {
            match ask {
                Ask::Report(reply) => {
                    let status = rustix::fs::openat(
                        proc,
                        "thread-self/status",
                        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                        rustix::fs::Mode::empty(),
                    )
                    .unwrap();
                    let text = std::io::read_to_string(std::fs::File::from(status)).unwrap();
                    let uid = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Uid:"))
                        .unwrap()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    reply
                        .send(Seen {
                            status_uid: uid,
                            impersonating: guise::thread::is_impersonating(),
                            token_uid: guise::open_thread_token(true)
                                .ok()
                                .map(|t| t.unix().uid().as_raw()),
                        })
                        .unwrap();
                }
                Ask::Guard(done) => {
                    guard = Some(client(B).impersonate().unwrap());
                    done.send(()).unwrap();
                }
                Ask::Drop(done) => {
                    drop(guard.take());
                    done.send(()).unwrap();
                }
                Ask::Hold(token, done) => {
                    guard = Some(token.impersonate().unwrap());
                    done.send(()).unwrap();
                }
                Ask::Do(f) => f(),
                Ask::Stop => break,
            }
        }
    })
    .unwrap();
    let (handle, tid) = ready_rx.recv().unwrap();
    (handle, tid, tx, join)
}

fn report(tx: &mpsc::Sender<Ask>) -> Seen {
    let (r, seen) = mpsc::channel();
    tx.send(Ask::Report(r)).unwrap();
    seen.recv().unwrap()
}

#[test]
fn set_thread_token_on_another_thread_changes_that_thread_at_once_and_no_other() {
    need_root!();
    let (handle, target_tid, tx, join) = target();
    let (_bystander, bystander_tid, btx, bjoin) = target();
    let me = tid();
    assert_eq!(status_of(target_tid, "Uid"), "0 0 0 0");
    let a = client(A);
    handle.set_thread_token(Some(&a)).unwrap();
    // At once: read right after the call returns, from this thread.
    assert_eq!(status_of(target_tid, "Uid"), format!("0 {A} 0 {A}"));
    assert_eq!(status_of(target_tid, "Gid"), format!("0 {A} 0 {A}"));
    assert_eq!(status_of(target_tid, "Groups"), A.to_string());
    assert_eq!(status_of(target_tid, "CapEff"), "0000000000000000");
    // No other thread.
    for other in [me, bystander_tid] {
        assert_eq!(status_of(other, "Uid"), "0 0 0 0", "thread {other}");
    }
    // OpenThreadToken from here matches; so does the thread's own view.
    let t = handle.open_thread_token().unwrap();
    assert_eq!(
        (t.unix().uid().as_raw(), t.impersonation_level()),
        (A, Some(ImpersonationLevel::Impersonation))
    );
    let seen = report(&tx);
    assert_eq!(seen.status_uid, format!("0 {A} 0 {A}"));
    assert!(seen.impersonating);
    assert_eq!(seen.token_uid, Some(A));
    // None restores it.
    handle.set_thread_token(None).unwrap();
    assert_eq!(status_of(target_tid, "Uid"), "0 0 0 0");
    assert_eq!(status_of(target_tid, "CapEff"), status_of(me, "CapEff"));
    assert_eq!(
        handle.open_thread_token().unwrap_err().kind(),
        ErrorKind::NoToken
    );
    let seen = report(&tx);
    assert_eq!(
        (seen.status_uid.as_str(), seen.impersonating, seen.token_uid),
        ("0 0 0 0", false, None)
    );
    for t in [&tx, &btx] {
        t.send(Ask::Stop).unwrap();
    }
    join.join().unwrap();
    bjoin.join().unwrap();
}

#[test]
fn a_guard_of_the_target_reverts_it_to_the_process_identity() {
    need_root!();
    let (handle, target_tid, tx, join) = target();
    let (done, wait) = mpsc::channel();
    tx.send(Ask::Guard(done)).unwrap();
    wait.recv().unwrap();
    assert_eq!(status_of(target_tid, "Uid"), format!("0 {B} 0 {B}"));
    handle.set_thread_token(Some(&client(A))).unwrap();
    assert_eq!(status_of(target_tid, "Uid"), format!("0 {A} 0 {A}"));
    // The guard the thread held (for B) no longer puts B back: it reverts the
    // thread to its own identity.
    let (done, wait) = mpsc::channel();
    tx.send(Ask::Drop(done)).unwrap();
    wait.recv().unwrap();
    assert_eq!(status_of(target_tid, "Uid"), "0 0 0 0");
    let seen = report(&tx);
    assert!(!seen.impersonating);
    assert_eq!(
        handle.open_thread_token().unwrap_err().kind(),
        ErrorKind::NoToken
    );
    tx.send(Ask::Stop).unwrap();
    join.join().unwrap();
}

#[test]
fn identification_on_another_thread_is_the_sentinel_with_umask_0777() {
    need_root!();
    let (handle, target_tid, tx, join) = target();
    let umask = status_of(target_tid, "Umask");
    let id = client(A)
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    handle.set_thread_token(Some(&id)).unwrap();
    assert_eq!(status_of(target_tid, "Uid"), "0 4294967294 0 4294967294");
    assert_eq!(status_of(target_tid, "Groups"), "");
    assert_eq!(status_of(target_tid, "Umask"), "0777");
    assert_eq!(
        handle.open_thread_token().unwrap().impersonation_level(),
        Some(ImpersonationLevel::Identification)
    );
    handle.set_thread_token(None).unwrap();
    assert_eq!(status_of(target_tid, "Uid"), "0 0 0 0");
    assert_eq!(
        status_of(target_tid, "Umask"),
        umask,
        "the thread's own umask again"
    );
    tx.send(Ask::Stop).unwrap();
    join.join().unwrap();
}

#[test]
fn refusals_name_the_win32_errors() {
    need_root!();
    // A primary token: ERROR_BAD_TOKEN_TYPE, and the thread is unchanged.
    let (handle, target_tid, tx, join) = target();
    let primary = Token::from_ids(A, A, &[A]).unwrap();
    assert_eq!(primary.token_type(), TokenType::Primary);
    let e = handle.set_thread_token(Some(&primary)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadTokenType);
    assert_eq!(status_of(target_tid, "Uid"), "0 0 0 0");
    tx.send(Ask::Stop).unwrap();
    join.join().unwrap();
    // A thread that has ended.
    let e = handle.set_thread_token(Some(&client(A))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
    // A thread guise did not start has no handle.
    let e = std::thread::spawn(ThreadHandle::current)
        .join()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CannotImpersonate);
}

/// Attack on the mechanism: SetThreadToken from another thread while the target
/// is in the middle of its own impersonations and reverts. Every request waits for
/// the target's own change to finish, no credential change is torn (the process
/// would abort), and the target ends at the identity the last request gave it.
#[test]
fn set_thread_token_racing_the_targets_own_switches_never_tears_them() {
    use std::sync::atomic::{AtomicBool, Ordering};
    need_root!();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let spin = std::sync::Arc::clone(&stop);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go, wait) = mpsc::channel::<()>();
    // The target impersonates B and reverts, again and again, until told to stop.
    let join = guise::thread::spawn(move || {
        ready_tx
            .send((ThreadHandle::current().unwrap(), tid()))
            .unwrap();
        let b = client(B);
        let mut rounds = 0u64;
        while !spin.load(Ordering::SeqCst) {
            drop(b.impersonate().unwrap());
            rounds += 1;
        }
        // What the thread sees of itself, once the last request has taken effect.
        wait.recv().unwrap();
        (
            rounds,
            guise::open_thread_token(true)
                .ok()
                .map(|t| t.unix().uid().as_raw()),
        )
    })
    .unwrap();
    let (handle, target_tid) = ready_rx.recv().unwrap();
    let a = client(A);
    let started = Instant::now();
    let mut sets = 0;
    while started.elapsed() < Duration::from_secs(2) {
        handle.set_thread_token(Some(&a)).unwrap();
        handle.set_thread_token(None).unwrap();
        sets += 2;
    }
    // Stop the target's loop, then give it A: its own guards are then gone.
    stop.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    handle.set_thread_token(Some(&a)).unwrap();
    assert_eq!(status_of(target_tid, "Uid"), format!("0 {A} 0 {A}"));
    go.send(()).unwrap();
    let (rounds, token_uid) = join.join().unwrap();
    assert!(
        sets > 100 && rounds > 100,
        "{sets} requests, {rounds} switches"
    );
    assert_eq!(
        token_uid,
        Some(A),
        "the thread's bookkeeping follows the last request"
    );
}

/// A thread started by a thread that has a handle does not share its fs context:
/// a SetThreadToken at Identification (umask 0777) on the one leaves the other's
/// umask alone.
#[test]
fn threads_started_by_a_target_keep_their_own_umask() {
    need_root!();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go, wait) = mpsc::channel::<()>();
    let join = guise::thread::spawn(move || {
        let handle = ThreadHandle::current().unwrap();
        let (child_tx, child_rx) = mpsc::channel();
        let (stop_child, child_wait) = mpsc::channel::<()>();
        let child = guise::thread::spawn(move || {
            child_tx.send(tid()).unwrap();
            child_wait.recv().unwrap();
        })
        .unwrap();
        ready_tx
            .send((handle, tid(), child_rx.recv().unwrap()))
            .unwrap();
        wait.recv().unwrap();
        stop_child.send(()).unwrap();
        child.join().unwrap();
    })
    .unwrap();
    let (handle, target_tid, child_tid) = ready_rx.recv().unwrap();
    let before = status_of(child_tid, "Umask");
    assert_ne!(before, "0777");
    let id = client(A)
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    handle.set_thread_token(Some(&id)).unwrap();
    assert_eq!(status_of(target_tid, "Umask"), "0777");
    assert_eq!(status_of(child_tid, "Umask"), before, "the child's own");
    handle.set_thread_token(None).unwrap();
    go.send(()).unwrap();
    join.join().unwrap();
}

/// OpenThreadToken of another thread at Anonymous level fails with
/// ERROR_CANT_OPEN_ANONYMOUS, as the calling thread's does: the token (its
/// user SID and all) is not given out.
#[test]
fn open_thread_token_of_another_thread_at_anonymous_level_is_cant_open_anonymous() {
    need_root!();
    let (handle, target_tid, tx, join) = target();
    let anon = client(A)
        .duplicate(ImpersonationLevel::Anonymous, TokenType::Impersonation)
        .unwrap();
    handle.set_thread_token(Some(&anon)).unwrap();
    assert_eq!(status_of(target_tid, "Uid"), "0 4294967294 0 4294967294");
    assert_eq!(
        handle.open_thread_token().unwrap_err().kind(),
        ErrorKind::CantOpenAnonymous
    );
    // The thread's own view says the same.
    let seen = report(&tx);
    assert!(seen.impersonating);
    assert_eq!(seen.token_uid, None);
    // At Identification level the process may open it.
    let id = client(A)
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    handle.set_thread_token(Some(&id)).unwrap();
    assert_eq!(handle.open_thread_token().unwrap().unix().uid().as_raw(), A);
    handle.set_thread_token(None).unwrap();
    tx.send(Ask::Stop).unwrap();
    join.join().unwrap();
}

/// Runs `f` on the target thread and returns what it returns.
fn on<R: Send + 'static>(tx: &mpsc::Sender<Ask>, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (r, back) = mpsc::channel();
    tx.send(Ask::Do(Box::new(move || r.send(f()).unwrap())))
        .unwrap();
    back.recv().unwrap()
}

/// Has the target hold a guard for `token` until the next `Ask::Drop`.
fn hold(tx: &mpsc::Sender<Ask>, token: &Token) {
    let (done, wait) = mpsc::channel();
    tx.send(Ask::Hold(token.clone(), done)).unwrap();
    wait.recv().unwrap();
}

fn drop_guard(tx: &mpsc::Sender<Ask>) {
    let (done, wait) = mpsc::channel();
    tx.send(Ask::Drop(done)).unwrap();
    wait.recv().unwrap();
}

/// What the target reaches of `p` by path: (reads the file by its full name,
/// reads it relative to its cwd, creates a file in the 0777 directory).
fn reaches(tx: &mpsc::Sender<Ask>, p: &Public) -> (bool, bool, bool) {
    let (file, drop_box) = (p.file.clone(), p.drop_box.clone());
    on(tx, move || {
        let name = drop_box.join(format!("f{}", tid()));
        let wrote = std::fs::write(&name, "x").is_ok();
        if wrote {
            std::fs::remove_file(&name).unwrap();
        }
        (
            std::fs::read(&file).is_ok(),
            std::fs::read("public.txt").is_ok(),
            wrote,
        )
    })
}

/// SetThreadToken from another thread puts the target in the empty directory
/// below Impersonation level, as its own impersonation does, and back: the
/// anonymous token, Identification and Anonymous level reach nothing by path,
/// Impersonation level what anyone may; and the target's root and cwd come back
/// exactly, whichever side (the target itself or another thread) takes it below
/// and whichever brings it back.
#[test]
fn the_anonymous_token_reaches_nothing_everyone_only_through_set_thread_token() {
    need_root!();
    let p = public();
    let (handle, target_tid, tx, join) = target();
    let dir = p.dir.path().to_owned();
    on(&tx, move || std::env::set_current_dir(dir).unwrap());
    let before = fs_of(target_tid);
    assert_eq!(before.1, p.dir.path().to_str().unwrap());
    let (all, nothing) = ((true, true, true), (false, false, false));
    assert_eq!(reaches(&tx, &p), all);
    let id = client(A)
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    let anon_level = client(A)
        .duplicate(ImpersonationLevel::Anonymous, TokenType::Impersonation)
        .unwrap();

    // Another thread, both ways.
    handle.set_thread_token(Some(&client(A))).unwrap();
    assert_eq!(reaches(&tx, &p), all, "A at Impersonation level");
    assert_eq!(fs_of(target_tid), before);
    for (what, token) in [
        ("the anonymous token", Token::anonymous()),
        ("Identification", id.clone()),
        ("Anonymous", anon_level.clone()),
    ] {
        handle.set_thread_token(Some(&token)).unwrap();
        assert_eq!(status_of(target_tid, "Uid"), "0 4294967294 0 4294967294");
        let below = fs_of(target_tid);
        assert_ne!(below.0, before.0, "{what}: root");
        assert_eq!(below.0, below.1, "{what}: cwd is the root");
        assert!(below.0.ends_with("(deleted)"), "{what}: {below:?}");
        assert_eq!(reaches(&tx, &p), nothing, "{what}");
        assert_eq!(
            on(&tx, || std::fs::read_dir("/")
                .map(|d| d.count())
                .unwrap_or(0)),
            0,
            "{what}: an empty root"
        );
    }
    handle.set_thread_token(None).unwrap();
    assert_eq!(fs_of(target_tid), before);
    assert_eq!(reaches(&tx, &p), all);

    // Below by another thread, back by the target's own revert.
    handle.set_thread_token(Some(&id)).unwrap();
    assert_eq!(reaches(&tx, &p), nothing);
    on(&tx, || guise::revert_to_self().unwrap());
    assert_eq!(status_of(target_tid, "Uid"), "0 0 0 0");
    assert_eq!(fs_of(target_tid), before);
    assert_eq!(reaches(&tx, &p), all);

    // Below by the target itself, to Impersonation level by another thread, then
    // the target's guard reverts it.
    hold(&tx, &id);
    assert_eq!(status_of(target_tid, "Uid"), "0 4294967294 0 4294967294");
    assert_ne!(fs_of(target_tid), before);
    assert_eq!(reaches(&tx, &p), nothing);
    handle.set_thread_token(Some(&client(A))).unwrap();
    assert_eq!(status_of(target_tid, "Uid"), format!("0 {A} 0 {A}"));
    assert_eq!(fs_of(target_tid), before);
    assert_eq!(reaches(&tx, &p), all);
    drop_guard(&tx);
    assert_eq!(status_of(target_tid, "Uid"), "0 0 0 0");
    assert_eq!(fs_of(target_tid), before);

    // Below by the target, reverted by another thread.
    hold(&tx, &Token::anonymous());
    assert_ne!(fs_of(target_tid), before);
    handle.set_thread_token(None).unwrap();
    assert_eq!(fs_of(target_tid), before);
    assert_eq!(reaches(&tx, &p), all);
    drop_guard(&tx);
    assert_eq!(fs_of(target_tid), before);

    // Below by another thread, to Impersonation level by the target's guard, and
    // below again when it drops it (the token another thread set).
    handle.set_thread_token(Some(&anon_level)).unwrap();
    hold(&tx, &client(A));
    assert_eq!(fs_of(target_tid), before);
    assert_eq!(reaches(&tx, &p), all);
    drop_guard(&tx);
    assert_eq!(status_of(target_tid, "Uid"), "0 4294967294 0 4294967294");
    assert_ne!(fs_of(target_tid), before);
    assert_eq!(reaches(&tx, &p), nothing);
    handle.set_thread_token(None).unwrap();
    assert_eq!(fs_of(target_tid), before);
    assert_eq!(reaches(&tx, &p), all);

    tx.send(Ask::Stop).unwrap();
    join.join().unwrap();
}

/// A target whose server holds CAP_SETUID and CAP_SETGID but not CAP_SYS_CHROOT
/// is refused below Impersonation level by another thread, as by itself, and is
/// unchanged.
#[test]
fn set_thread_token_below_impersonation_is_refused_without_chroot() {
    need_root!();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop, wait) = mpsc::channel::<()>();
    let join = guise::thread::spawn(move || {
        let mut caps = rustix::thread::capabilities(None).unwrap();
        caps.effective -= rustix::thread::CapabilitySet::SYS_CHROOT;
        rustix::thread::set_capabilities(None, caps).unwrap();
        ready_tx
            .send((ThreadHandle::current().unwrap(), tid()))
            .unwrap();
        wait.recv().unwrap();
    })
    .unwrap();
    let (handle, target_tid) = ready_rx.recv().unwrap();
    let before = fs_of(target_tid);
    let id = client(A)
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    for token in [Token::anonymous(), id] {
        let e = handle.set_thread_token(Some(&token)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CannotImpersonate, "{e}");
        assert_eq!(status_of(target_tid, "Uid"), "0 0 0 0");
        assert_eq!(fs_of(target_tid), before);
    }
    handle.set_thread_token(Some(&client(A))).unwrap();
    assert_eq!(status_of(target_tid, "Uid"), format!("0 {A} 0 {A}"));
    handle.set_thread_token(None).unwrap();
    stop.send(()).unwrap();
    join.join().unwrap();
}

/// Attack on the mechanism: another thread's SetThreadToken in and out of the
/// empty root while the target goes in and out of it by its own impersonations.
/// No change is torn (the process would abort), and once both stop the target's
/// root and cwd are exactly its own.
#[test]
fn set_thread_token_racing_the_targets_own_trips_below_impersonation_keeps_its_root() {
    use std::sync::atomic::{AtomicBool, Ordering};
    need_root!();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let spin = std::sync::Arc::clone(&stop);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go, wait) = mpsc::channel::<()>();
    let (start, started_rx) = mpsc::channel::<()>();
    let join = guise::thread::spawn(move || {
        ready_tx
            .send((ThreadHandle::current().unwrap(), tid()))
            .unwrap();
        started_rx.recv().unwrap();
        let id = client(B)
            .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
            .unwrap();
        let mut rounds = 0u64;
        while !spin.load(Ordering::SeqCst) {
            drop(id.impersonate().unwrap());
            drop(client(B).impersonate().unwrap());
            rounds += 1;
        }
        wait.recv().unwrap();
        rounds
    })
    .unwrap();
    let (handle, target_tid) = ready_rx.recv().unwrap();
    let before = fs_of(target_tid);
    start.send(()).unwrap();
    let (a, anon) = (client(A), Token::anonymous());
    let started = Instant::now();
    let mut sets = 0;
    while started.elapsed() < Duration::from_secs(2) {
        handle.set_thread_token(Some(&anon)).unwrap();
        handle.set_thread_token(Some(&a)).unwrap();
        handle.set_thread_token(Some(&anon)).unwrap();
        handle.set_thread_token(None).unwrap();
        sets += 4;
    }
    stop.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    handle.set_thread_token(None).unwrap();
    assert_eq!(status_of(target_tid, "Uid"), "0 0 0 0");
    assert_eq!(fs_of(target_tid), before);
    go.send(()).unwrap();
    let rounds = join.join().unwrap();
    assert!(
        sets > 100 && rounds > 100,
        "{sets} requests, {rounds} rounds"
    );
}
