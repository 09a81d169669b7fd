//! Impersonated requests per second against the number of workers of an
//! [`ImpersonationPool`]: does the work grow with workers up to the core count, or
//! does something serialize it? Each request is what `guise serve` does for a read:
//! an open+read+close of a client's own 256-byte 0600 file as that client, for 8
//! clients of 8 identities, 64 requests in flight. The requests are submitted from
//! one thread (a tokio current-thread runtime), so the workers, not the clients, set
//! the pace. Rounds alternate between the worker counts; the medians and their ratio
//! are printed. Needs root; run with `cargo bench -p guise-impersonation --bench pool`.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use guise::pool::ImpersonationPool;
use guise::{ImpersonationLevel, Token, TokenType};

const CLIENTS: u32 = 8;
const IN_FLIGHT: usize = 64;
const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_secs(1);

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let clients: Vec<(Token, std::path::PathBuf)> = (0..CLIENTS)
        .map(|i| {
            let uid = 61100 + i;
            let file = dir.path().join(uid.to_string());
            std::fs::write(&file, [b'a' + i as u8; 256]).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(&file, Some(uid), Some(uid)).unwrap();
            let token = Token::from_ids(uid, uid, &[uid])
                .unwrap()
                .duplicate(ImpersonationLevel::Impersonation, TokenType::Impersonation)
                .unwrap();
            (token, file)
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let counts: Vec<usize> = (1..=cores).collect();
    for way in [Way::Switching, Way::Uring, Way::Locked] {
        if way == Way::Uring && !guise::uring::available() {
            println!("{way:?}: io_uring is not available here");
            continue;
        }
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
        for _ in 0..ROUNDS {
            for (i, &workers) in counts.iter().enumerate() {
                rates[i].push(round(workers, way, &clients, dir.path()));
            }
        }
        let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
        println!("{way:?} ({ROUNDS} rounds of {ROUND:?}, {CLIENTS} identities):");
        for (i, &workers) in counts.iter().enumerate() {
            println!(
                "  {workers} worker(s): {:>9.0} requests/s (rounds {}), {:.2}x one worker",
                medians[i],
                rates[i]
                    .iter()
                    .map(|r| format!("{r:.0}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                medians[i] / medians[0]
            );
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Way {
    /// The worker switches to the client (`ImpersonationPool::run_as`).
    Switching,
    /// The worker stays the server and opens through the client's io_uring
    /// personality (`guise::uring::open_as`).
    Uring,
    /// As `Switching`, one request at a time behind one lock: the baseline of a
    /// server that switches the whole process (`setresuid`), which must serialize.
    Locked,
}

/// The lock of [`Way::Locked`].
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The request itself: open, read and close `file` as whoever the thread is.
fn read_file(file: &std::path::Path) -> usize {
    let fd = rustix::fs::open(
        file,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let mut buf = [0u8; 256];
    rustix::io::read(&fd, &mut buf).unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Requests per second of one round with `workers` workers.
fn round(
    workers: usize,
    way: Way,
    clients: &[(Token, std::path::PathBuf)],
    dir: &std::path::Path,
) -> f64 {
    let pool = Arc::new(ImpersonationPool::new(workers).unwrap());
    let dirfd = Arc::new(
        rustix::fs::open(dir, rustix::fs::OFlags::PATH, rustix::fs::Mode::empty()).unwrap(),
    );
    let done = Arc::new(AtomicU64::new(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..IN_FLIGHT {
            let (token, file) = clients[n % clients.len()].clone();
            let (pool, dirfd, done) = (Arc::clone(&pool), Arc::clone(&dirfd), Arc::clone(&done));
            let name = file.file_name().unwrap().to_str().unwrap().to_owned();
            tasks.spawn(async move {
                while started.elapsed() < ROUND {
                    let read = match way {
                        Way::Switching => {
                            let file = file.clone();
                            pool.run_as(token.clone(), move || read_file(&file))
                                .await
                                .unwrap()
                        }
                        Way::Locked => {
                            let (file, token) = (file.clone(), token.clone());
                            pool.run(move || {
                                let _one = ONE_AT_A_TIME.lock().unwrap();
                                token.run_as(|| read_file(&file)).unwrap()
                            })
                            .await
                            .unwrap()
                        }
                        Way::Uring => {
                            let (token, dirfd, name) =
                                (token.clone(), Arc::clone(&dirfd), name.clone());
                            pool.run(move || {
                                let fd = guise::uring::open_as(
                                    &token,
                                    &*dirfd,
                                    &name,
                                    guise::uring::OpenFlags::CLOEXEC,
                                    0,
                                    guise::uring::Resolve::BENEATH,
                                )
                                .unwrap();
                                let mut buf = [0u8; 256];
                                rustix::io::read(&fd, &mut buf).unwrap()
                            })
                            .await
                            .unwrap()
                        }
                    };
                    assert_eq!(read, 256);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
