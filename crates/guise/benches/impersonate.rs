//! Impersonate + revert through guise, next to the same system calls made directly
//! (setgroups, setresgid, setresuid, capset, and back), so the cost of guise's checks
//! and verification shows as a ratio. Needs root; run with
//! `cargo bench -p guise-impersonation --bench impersonate`.

use divan::Bencher;
use guise::{ImpersonationLevel, Token, TokenType};
use rustix::process::{Gid, Uid};
use rustix::thread::{self as rthread, CapabilitySet, CapabilitySets};

const CLIENT: u32 = 61001;
/// Supplementary groups of the client besides its primary group.
const GROUPS: &[usize] = &[0, 16, 256];

fn client_groups(n: usize) -> Vec<u32> {
    std::iter::once(CLIENT)
        .chain((0..n as u32).map(|i| 62000 + i))
        .collect()
}

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    divan::main();
}

#[divan::bench(args = GROUPS, sample_count = 1000)]
fn guise_impersonate_revert(b: Bencher, n: usize) {
    let token = Token::from_ids(CLIENT, CLIENT, &client_groups(n))
        .unwrap()
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap();
    b.bench_local(|| {
        let guard = token.impersonate().unwrap();
        drop(divan::black_box(guard));
    });
}

#[divan::bench(args = GROUPS, sample_count = 1000)]
fn raw_syscalls(b: Bencher, n: usize) {
    let groups: Vec<Gid> = client_groups(n).into_iter().map(Gid::from_raw).collect();
    let server_groups = rustix::process::getgroups().unwrap();
    let server_caps = rthread::capabilities(None).unwrap();
    let (server_uid, server_gid) = (rustix::process::geteuid(), rustix::process::getegid());
    let client = CapabilitySets {
        effective: CapabilitySet::empty(),
        ..server_caps
    };
    b.bench_local(|| {
        rthread::set_thread_groups(&groups).unwrap();
        rthread::set_thread_res_gid(None, Gid::from_raw(CLIENT), None).unwrap();
        rthread::set_thread_res_uid(None, Uid::from_raw(CLIENT), None).unwrap();
        rthread::set_capabilities(None, client).unwrap();
        rthread::set_thread_res_uid(None, server_uid, None).unwrap();
        rthread::set_capabilities(None, server_caps).unwrap();
        rthread::set_thread_res_gid(None, server_gid, None).unwrap();
        rthread::set_thread_groups(&server_groups).unwrap();
    });
}

/// A 0600 file of the client's, in a directory anyone may search: what the
/// open+read+close benchmarks read.
fn client_file() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("own");
    std::fs::write(&file, [b'x'; 256]).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&file, Some(CLIENT), Some(CLIENT)).unwrap();
    (dir, file)
}

/// Reads all of `fd` into `buf` (256 bytes).
fn read_all(fd: &std::os::fd::OwnedFd, buf: &mut [u8; 256]) -> usize {
    rustix::io::read(fd, buf).unwrap()
}

/// One impersonated open+read+close through the guise API, the thread switching:
/// `token.run_as(open, read, close)`.
#[divan::bench(args = GROUPS, sample_count = 1000)]
fn open_read_close_guise_switch(b: Bencher, n: usize) {
    let token = Token::from_ids(CLIENT, CLIENT, &client_groups(n))
        .unwrap()
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap();
    let (_dir, file) = client_file();
    let mut buf = [0u8; 256];
    b.bench_local(|| {
        token
            .run_as(|| {
                let fd =
                    rustix::fs::open(&file, rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty())
                        .unwrap();
                read_all(&fd, &mut buf)
            })
            .unwrap()
    });
}

/// The same through the guise API's io_uring personality: the thread never
/// switches (`guise::uring::open_as`, then read and close).
#[divan::bench(args = GROUPS, sample_count = 1000)]
fn open_read_close_guise_uring(b: Bencher, n: usize) {
    let token = Token::from_ids(CLIENT, CLIENT, &client_groups(n))
        .unwrap()
        .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
        .unwrap();
    let (dir, _file) = client_file();
    let dirfd = rustix::fs::open(
        dir.path(),
        rustix::fs::OFlags::PATH,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let mut buf = [0u8; 256];
    assert!(
        guise::uring::available(),
        "io_uring is needed for this benchmark"
    );
    b.bench_local(|| {
        let fd = guise::uring::open_as(
            &token,
            &dirfd,
            "own",
            guise::uring::OpenFlags::CLOEXEC,
            0,
            guise::uring::Resolve::BENEATH,
        )
        .unwrap();
        read_all(&fd, &mut buf)
    });
}

/// The hand-written raw sequence: switch (setgroups, setresgid, setresuid, capset),
/// open, read, close, switch back.
#[divan::bench(args = GROUPS, sample_count = 1000)]
fn open_read_close_raw(b: Bencher, n: usize) {
    let groups: Vec<Gid> = client_groups(n).into_iter().map(Gid::from_raw).collect();
    let server_groups = rustix::process::getgroups().unwrap();
    let server_caps = rthread::capabilities(None).unwrap();
    let (server_uid, server_gid) = (rustix::process::geteuid(), rustix::process::getegid());
    let client = CapabilitySets {
        effective: CapabilitySet::empty(),
        ..server_caps
    };
    let (_dir, file) = client_file();
    let mut buf = [0u8; 256];
    b.bench_local(|| {
        rthread::set_thread_groups(&groups).unwrap();
        rthread::set_thread_res_gid(None, Gid::from_raw(CLIENT), None).unwrap();
        rthread::set_thread_res_uid(None, Uid::from_raw(CLIENT), None).unwrap();
        rthread::set_capabilities(None, client).unwrap();
        let fd =
            rustix::fs::open(&file, rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
        let r = read_all(&fd, &mut buf);
        drop(fd);
        rthread::set_thread_res_uid(None, server_uid, None).unwrap();
        rthread::set_capabilities(None, server_caps).unwrap();
        rthread::set_thread_res_gid(None, server_gid, None).unwrap();
        rthread::set_thread_groups(&server_groups).unwrap();
        r
    });
}

/// The shortest hand-written sequence: as [`open_read_close_raw`] without `capset`,
/// leaning on the kernel, which empties the effective capabilities when the
/// effective uid leaves 0 and fills them when it comes back; and checking nothing.
#[divan::bench(args = GROUPS, sample_count = 1000)]
fn open_read_close_raw_fixup(b: Bencher, n: usize) {
    let groups: Vec<Gid> = client_groups(n).into_iter().map(Gid::from_raw).collect();
    let server_groups = rustix::process::getgroups().unwrap();
    let (server_uid, server_gid) = (rustix::process::geteuid(), rustix::process::getegid());
    let (_dir, file) = client_file();
    let mut buf = [0u8; 256];
    b.bench_local(|| {
        rthread::set_thread_groups(&groups).unwrap();
        rthread::set_thread_res_gid(None, Gid::from_raw(CLIENT), None).unwrap();
        rthread::set_thread_res_uid(None, Uid::from_raw(CLIENT), None).unwrap();
        let fd =
            rustix::fs::open(&file, rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
        let r = read_all(&fd, &mut buf);
        drop(fd);
        rthread::set_thread_res_uid(None, server_uid, None).unwrap();
        rthread::set_thread_res_gid(None, server_gid, None).unwrap();
        rthread::set_thread_groups(&server_groups).unwrap();
        r
    });
}
