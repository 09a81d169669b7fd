//! Impersonate + revert through guise, next to the same system calls made directly
//! (setgroups, setresgid, setresuid, capset, and back), so the cost of guise's checks
//! and verification shows as a ratio. Needs root; run with
//! `cargo bench -p guise --bench impersonate`.

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
