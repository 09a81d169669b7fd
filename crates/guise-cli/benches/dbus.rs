//! Calls per second of `Read` on `guise dbus serve`, each call run as its caller
//! (impersonation), next to the same server with `--no-impersonation`. A private
//! `dbus-daemon`; one caller (uid 61001, a throwaway account, Impersonation level
//! set with SetQualityOfService, reading its own 256-byte 0600 file) makes calls
//! one after another over one zbus connection. Needs root, dbus-daemon and
//! dbus-send; run with `cargo bench -p guise-cli --bench dbus`.

use divan::Bencher;

#[path = "../tests/common/mod.rs"]
mod common;

use common::bus::{FIRST, accounts, bus_as, start_bus, start_service};
use common::server::{own_file, tree};

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    divan::main();
}

fn calls(b: Bencher, impersonate: bool) {
    // The accounts live in this thread's own mount namespace (the benchmark is a
    // process of its own), and so do the bus and the server it starts.
    static USERS: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    USERS.get_or_init(accounts);
    let (dir, files) = tree();
    own_file(&files.join("own.txt"), FIRST, 0o600, &"x".repeat(256));
    let bus = start_bus(dir.path());
    let extra: &[&str] = if impersonate {
        &[]
    } else {
        &["--no-impersonation"]
    };
    let _server = start_service(&bus, &files, extra);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let proxy = rt.block_on(async {
        let conn = bus_as(&bus, FIRST).await;
        let p = zbus::Proxy::new(
            &conn,
            "org.guise.Files1",
            "/org/guise/Files1",
            "org.guise.Files1",
        )
        .await
        .unwrap();
        let () = p
            .call("SetQualityOfService", &("impersonation",))
            .await
            .unwrap();
        p
    });
    let read = || -> Vec<u8> { rt.block_on(proxy.call("Read", &("own.txt",))).unwrap() };
    assert_eq!(read(), vec![b'x'; 256]);
    b.bench_local(|| divan::black_box(read()));
}

#[divan::bench(sample_count = 200, sample_size = 20)]
fn with_impersonation(b: Bencher) {
    calls(b, true);
}

#[divan::bench(sample_count = 200, sample_size = 20)]
fn without_impersonation(b: Bencher) {
    calls(b, false);
}
