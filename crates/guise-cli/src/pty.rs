//! A fresh pseudo-terminal for a program `guise run` starts, relayed to the
//! caller's terminal, as `sudo` does with `use_pty`: the program never holds a
//! descriptor of the caller's terminal, so neither `TIOCSTI` nor any other ioctl of
//! it can reach the caller's shell.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::termios::{OptionalActions, Termios};

/// A pseudo-terminal made for one program.
pub struct Pty {
    /// The side `guise run` keeps and relays.
    pub master: OwnedFd,
    /// The program's side: its stdio where the caller's was a terminal.
    pub slave: OwnedFd,
}

/// The group that owns terminals (`tty`), if there is one.
fn tty_group() -> Option<u32> {
    nix::unistd::Group::from_name("tty")
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

impl Pty {
    /// Opens a pseudo-terminal with the settings and size of `like` (the caller's
    /// terminal), its program side owned by `uid` (group `tty`, mode 0620).
    pub fn open(like: BorrowedFd<'_>, uid: u32) -> Result<Pty> {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .context("opening a pseudo-terminal")?;
        grantpt(&master).context("grantpt")?;
        unlockpt(&master).context("unlockpt")?;
        let name = ptsname(&master, Vec::new()).context("ptsname")?;
        let slave = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context("opening the pseudo-terminal's program side")?;
        rustix::fs::fchown(
            &slave,
            Some(rustix::fs::Uid::from_raw(uid)),
            tty_group().map(rustix::fs::Gid::from_raw),
        )
        .context("giving the pseudo-terminal to the user")?;
        rustix::fs::fchmod(&slave, Mode::from_raw_mode(0o620)).context("chmod")?;
        if let Ok(t) = rustix::termios::tcgetattr(like) {
            rustix::termios::tcsetattr(&slave, OptionalActions::Now, &t).context("tcsetattr")?;
        }
        if let Ok(w) = rustix::termios::tcgetwinsize(like) {
            let _ = rustix::termios::tcsetwinsize(&master, w);
        }
        Ok(Pty { master, slave })
    }
}

/// Puts the caller's terminal in raw mode while alive (keys go to the program as
/// they are typed; its line discipline does the rest), and back when dropped.
pub struct RawMode<'a> {
    tty: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    /// Raw mode on `tty`.
    pub fn enter(tty: BorrowedFd<'a>) -> Result<RawMode<'a>> {
        let saved = rustix::termios::tcgetattr(tty).context("tcgetattr")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(tty, OptionalActions::Flush, &raw).context("tcsetattr")?;
        Ok(RawMode { tty, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(self.tty, OptionalActions::Flush, &self.saved);
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Relays until the program has exited and its output is drained: the caller's
/// input (`input`, if it is a terminal) to `master`, `master` to `output`; the
/// window size of `size_of` (the caller's terminal) follows along; SIGTERM, SIGHUP
/// and SIGINT that reach `guise run` are passed to the program (`pid`). `exited`
/// becomes readable when the program ends (its pidfd).
pub fn relay(
    master: &OwnedFd,
    input: Option<BorrowedFd<'_>>,
    output: BorrowedFd<'_>,
    size_of: Option<BorrowedFd<'_>>,
    exited: &OwnedFd,
    pid: rustix::process::Pid,
) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
    let (wake_read, wake_write) = std::os::unix::net::UnixStream::pair()?;
    wake_read.set_nonblocking(true)?;
    wake_write.set_nonblocking(true)?;
    let flags: Vec<(Arc<AtomicBool>, rustix::process::Signal)> = vec![
        (Arc::default(), rustix::process::Signal::TERM),
        (Arc::default(), rustix::process::Signal::HUP),
        (Arc::default(), rustix::process::Signal::INT),
    ];
    let mut ids = Vec::new();
    for ((flag, _), sig) in flags.iter().zip([SIGTERM, SIGHUP, SIGINT]) {
        ids.push(signal_hook::flag::register(sig, Arc::clone(flag))?);
    }
    for sig in [SIGTERM, SIGHUP, SIGINT, SIGWINCH] {
        ids.push(signal_hook::low_level::pipe::register(
            sig,
            wake_write.try_clone()?,
        )?);
    }
    // A second SIGTERM or SIGHUP, after the program was given the first, ends the
    // relay: the program is killed and the caller's terminal restored.
    let mut asked = 0;
    let result = relay_loop(master, input, output, size_of, exited, &wake_read, || {
        for (flag, sig) in &flags {
            if flag.swap(false, Ordering::SeqCst) {
                if *sig != rustix::process::Signal::INT {
                    asked += 1;
                }
                let sig = if asked > 1 {
                    rustix::process::Signal::KILL
                } else {
                    *sig
                };
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
        asked > 1
    });
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    result
}

fn relay_loop(
    master: &OwnedFd,
    input: Option<BorrowedFd<'_>>,
    output: BorrowedFd<'_>,
    size_of: Option<BorrowedFd<'_>>,
    exited: &OwnedFd,
    wake: &std::os::unix::net::UnixStream,
    mut forward_signals: impl FnMut() -> bool,
) -> Result<()> {
    /// Input waiting for the program to read: past this much, the caller's input
    /// waits too.
    const MAX_PENDING: usize = 1 << 20;
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut input_open = input.is_some();
    let mut program_done = false;
    // The program's side never blocks the relay: a program that reads no input
    // cannot wedge its own output.
    rustix::fs::fcntl_setfl(master, OFlags::NONBLOCK)?;
    loop {
        let master_wants = if pending.is_empty() {
            PollFlags::IN
        } else {
            PollFlags::IN | PollFlags::OUT
        };
        let mut fds = vec![
            PollFd::new(master, master_wants),
            PollFd::new(exited, PollFlags::IN),
            PollFd::new(wake, PollFlags::IN),
        ];
        if let (true, Some(i)) = (input_open && pending.len() < MAX_PENDING, input) {
            fds.push(PollFd::from_borrowed_fd(i, PollFlags::IN));
        }
        // Once the program has exited, what it left in the terminal is drained
        // without waiting.
        let timeout = Timespec {
            tv_sec: if program_done { 0 } else { 1 },
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let writable = fds[0].revents().contains(PollFlags::OUT);
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if writable {
            match rustix::io::write(master, &pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(_) => pending.clear(),
            }
        }
        if ready[2] {
            let mut bytes = [0u8; 64];
            while matches!(rustix::io::read(wake, &mut bytes), Ok(n) if n > 0) {}
            if forward_signals() {
                return Ok(());
            }
            // SIGWINCH: the program's window follows the caller's.
            if let Some(s) = size_of
                && let Ok(w) = rustix::termios::tcgetwinsize(s)
            {
                let _ = rustix::termios::tcsetwinsize(master, w);
            }
        }
        if let (Some(true), Some(i)) = (ready.get(3), input) {
            match rustix::io::read(i, &mut buf) {
                Ok(0) | Err(_) => input_open = false,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
        let mut drained = true;
        if ready[0] || program_done {
            // EIO once every program side is closed: nothing more to read.
            if let Ok(n) = rustix::io::read(master, &mut buf)
                && n > 0
            {
                write_all(output, &buf[..n])?;
                drained = false;
            }
        }
        if ready[1] && !program_done {
            program_done = true;
            continue;
        }
        if program_done && drained {
            return Ok(());
        }
    }
}
