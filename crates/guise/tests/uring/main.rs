//! Opening files as a client through io_uring personalities: the same answers as a
//! thread that impersonates, without the thread's credentials changing; and the
//! same answers with the path turned off.

#[path = "../common/mod.rs"]
mod common;

use common::{A, B, files};
use guise::uring::{OpenFlags, Resolve};
use guise::{ErrorKind, ImpersonationLevel, Token, TokenType};
use rustix::fs::{Mode, OFlags};

fn client(uid: u32) -> Token {
    Token::from_ids(uid, uid, &[uid])
        .unwrap()
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap()
}

/// Opens `path` (absolute) for reading as `token`; the kind of error, if any.
fn open(token: &Token, path: &std::path::Path) -> Result<(), ErrorKind> {
    let dir = rustix::fs::open(
        path.parent().unwrap(),
        OFlags::PATH | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    guise::uring::open_as(
        token,
        &dir,
        path.file_name().unwrap().to_str().unwrap(),
        OpenFlags::CLOEXEC,
        0,
        Resolve::BENEATH,
    )
    .map(drop)
    .map_err(|e| e.kind())
}

/// The scenario, run with the io_uring path on and off: every answer the kernel's,
/// as the client; the calling thread never changes credentials on the io_uring path
/// once the personality exists.
fn scenario(uring: bool) {
    guise::uring::set_enabled(uring);
    let f = files();
    let (a, b) = (client(A), client(B));
    assert_eq!(open(&a, &f.a), Ok(()), "A reads its own file");
    assert_eq!(open(&a, &f.b), Err(ErrorKind::AccessDenied), "not B's");
    assert_eq!(open(&b, &f.b), Ok(()));
    assert_eq!(open(&b, &f.a), Err(ErrorKind::AccessDenied));
    assert_eq!(open(&a, &f.root_only), Err(ErrorKind::AccessDenied));
    let id = a
        .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)
        .unwrap();
    assert_eq!(open(&id, &f.a), Err(ErrorKind::BadImpersonationLevel));
    // The thread itself is the server throughout.
    assert_eq!(common::thread_status("Uid"), "0 0 0 0");
    assert!(!guise::thread::is_impersonating());
}

#[test]
fn io_uring_personalities_open_as_the_client() {
    need_root!();
    let on = guise::uring::available();
    if common::skip::skip_unless(on, "io_uring") {
        return;
    }
    let before = guise::uring::personalities_registered();
    scenario(true);
    let registered = guise::uring::personalities_registered() - before;
    assert_eq!(registered, 2, "one personality for A and one for B");
    // Again: no new personality, no switch.
    scenario(true);
    assert_eq!(guise::uring::personalities_registered() - before, 2);
}

#[test]
fn the_same_answers_with_io_uring_off() {
    need_root!();
    let before = guise::uring::personalities_registered();
    scenario(false);
    assert_eq!(
        guise::uring::personalities_registered(),
        before,
        "no personality"
    );
}

/// More identities than a thread keeps personalities: the least recently used is
/// given up, and every open still answers as its own client.
#[test]
fn personalities_beyond_the_limit_are_given_up_and_answers_stay_right() {
    need_root!();
    if common::skip::skip_unless(guise::uring::available(), "io_uring") {
        return;
    }
    let f = files();
    let n = guise::uring::PERSONALITIES as u32 + 8;
    for round in 0..2 {
        for i in 0..n {
            let uid = 63000 + i;
            let t = client(uid);
            assert_eq!(
                open(&t, &f.a),
                Err(ErrorKind::AccessDenied),
                "{uid} round {round}"
            );
        }
        assert_eq!(open(&client(A), &f.a), Ok(()));
    }
}

/// The attack: a worker's wait for an open the kernel punted to io-wq (every
/// `O_CREAT`, every cold dentry) is interrupted — here by SetThreadToken from
/// another thread; a signal, ptrace, SIGSTOP or a cgroup freeze do the same — and
/// the open that followed on that thread took the earlier one's completion:
/// another identity's file, for good. And a SetThreadToken that landed while the
/// thread registered a client's personality had the ring keep the server's
/// identity under the client's name. Every open must return the file it asked
/// for, created by the identity that asked.
#[test]
fn interrupted_io_uring_wait_hands_over_another_identitys_file() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    need_root!();
    if common::skip::skip_unless(guise::uring::available(), "io_uring") {
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = dir.path().to_owned();
    const OPENS: u32 = 4000;
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let worker_done = std::sync::Arc::clone(&done);
    let worker = guise::thread::spawn(move || {
        handle_tx
            .send(guise::thread::ThreadHandle::current().unwrap())
            .unwrap();
        let dirfd =
            rustix::fs::open(&path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let tokens = [client(A), client(B)];
        let (mut wrong, mut failed) = (Vec::new(), 0u32);
        for i in 0..OPENS {
            let (uid, token) = ([A, B][i as usize % 2], &tokens[i as usize % 2]);
            let name = format!("{i}");
            match guise::uring::open_as(
                token,
                &dirfd,
                &name,
                OpenFlags::RDWR | OpenFlags::CREATE | OpenFlags::EXCL | OpenFlags::CLOEXEC,
                0o600,
                Resolve::BENEATH,
            ) {
                Ok(fd) => {
                    let st = rustix::fs::fstat(&fd).unwrap();
                    let named = std::fs::symlink_metadata(path.join(&name))
                        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                        .ok();
                    if st.st_uid != uid || named != Some(st.st_ino) {
                        wrong.push((i, uid, st.st_uid));
                    }
                }
                Err(_) => failed += 1,
            }
        }
        worker_done.store(true, Ordering::SeqCst);
        (wrong, failed)
    })
    .unwrap();
    let handle = handle_rx.recv().unwrap();
    let mut interruptions = 0u64;
    // Reverts, and a third identity's token put on the worker.
    let third = client(common::SERVER);
    while !done.load(Ordering::SeqCst) {
        let token = (interruptions % 2 == 1).then_some(&third);
        if handle.set_thread_token(token).is_ok() {
            interruptions += 1;
        }
    }
    let (wrong, failed) = worker.join().unwrap();
    eprintln!(
        "{OPENS} opens, {interruptions} interruptions, {failed} failed, {} wrong",
        wrong.len()
    );
    assert!(interruptions > 100, "the worker was hardly interrupted");
    assert!(
        wrong.is_empty(),
        "opens returned another open's file: {:?}",
        &wrong[..wrong.len().min(10)]
    );
    assert_eq!(failed, 0, "an interrupted open must wait, not fail");
    assert_eq!(guise::uring::foreign_completions(), 0);
}
