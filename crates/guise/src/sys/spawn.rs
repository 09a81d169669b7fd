//! The child side of spawning as a token: raw system calls only, no allocation, no
//! locks, as is required between `fork` and `exec` in a multithreaded parent.

use std::io;
use std::os::fd::RawFd;

use rustix::process::{Gid, Uid};
use rustix::thread::{self as rthread, CapabilitySet, CapabilitySets};

/// Everything the child needs, prepared by the parent before `fork`.
pub(crate) struct ChildPlan {
    /// The process identity (the forking thread's own credentials before it
    /// impersonated): the child returns to it first.
    pub server_euid: u32,
    pub server_caps: CapabilitySets,
    /// The process's gid and groups, where the forking thread's differ (it
    /// impersonates): the child of a CreateProcess puts them back.
    pub restore_gid: Option<Gid>,
    pub restore_groups: Option<Vec<Gid>>,
    /// The identity to take on; `None` keeps the process identity (CreateProcess).
    pub target: Option<ChildTarget>,
    /// Descriptors to keep, in order: they become 3, 4, ... in the child.
    pub keep_fds: Vec<RawFd>,
    /// The program opened by the parent, run with `execveat`; `None` leaves the
    /// exec to std.
    pub exec: Option<Exec>,
    /// The child's session.
    pub session: Session,
    /// The working directory, an absolute path, entered after the child has taken
    /// on the target's identity (with `target` only): std enters the command's
    /// `current_dir` before the hooks run, with the process's credentials.
    pub chdir: Option<std::ffi::CString>,
}

/// The session of a process started as another user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Session {
    /// A new session (`setsid`) with no controlling terminal. A terminal the
    /// caller passes as stdin, stdout or stderr is still open in the child: give it
    /// a terminal of its own instead (`guise run` relays a fresh pseudo-terminal).
    #[default]
    New,
    /// A new session whose controlling terminal is the terminal open on this
    /// descriptor of the child (0, 1 or 2): for a pseudo-terminal made for it.
    NewWithTerminal(i32),
    /// The caller's session and controlling terminal. The child can then inject
    /// input into the caller's terminal (`TIOCSTI`) where the kernel allows it.
    Inherit,
}

/// A program opened by the parent and what `execveat` needs, all made before `fork`.
pub(crate) struct Exec {
    fd: std::os::fd::OwnedFd,
    /// A script: its interpreter opens `/dev/fd/N`, so the descriptor stays open.
    script: bool,
    _argv: Vec<std::ffi::CString>,
    _envp: Vec<std::ffi::CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into the CStrings the struct owns, whose heap buffers
// do not move; nothing else refers to them.
unsafe impl Send for Exec {}
// SAFETY: as above; the struct is only read after it is made.
unsafe impl Sync for Exec {}

impl Exec {
    pub(crate) fn new(
        fd: std::os::fd::OwnedFd,
        script: bool,
        argv: Vec<std::ffi::CString>,
        envp: Vec<std::ffi::CString>,
    ) -> Exec {
        let ptrs = |v: &[std::ffi::CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Exec {
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envp),
            fd,
            script,
            _argv: argv,
            _envp: envp,
        }
    }

    /// Runs the program; returns only on failure.
    fn run(&self) -> io::Error {
        use std::os::fd::AsRawFd;
        let fd = self.fd.as_raw_fd();
        // SAFETY: fcntl(F_SETFD) on a descriptor number touches no memory.
        if self.script && unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
            return io::Error::last_os_error();
        }
        // SAFETY: the path is an empty C string, argv and envp are NULL-terminated
        // arrays of pointers to C strings this struct owns, alive until exec.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                c"".as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        io::Error::last_os_error()
    }
}

/// A token's identity for a child process.
pub(crate) struct ChildTarget {
    pub uid: Uid,
    pub gid: Gid,
    pub groups: Vec<Gid>,
    /// Whether the groups differ from the forking thread's (setgroups needs
    /// CAP_SETGID even to set the same groups).
    pub set_groups: bool,
    /// Capabilities the child keeps (only for uid 0: a child with another uid keeps
    /// none, whatever this says).
    pub caps: CapabilitySet,
}

fn check(ok: bool) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }
}

impl ChildPlan {
    /// Runs in the child after `fork`. Any error makes the spawn fail.
    pub(crate) fn apply(&self) -> io::Result<()> {
        // 1. Back to the process identity: the thread that forked may impersonate.
        //    The real and saved uid are the server's, so this is always allowed.
        rthread::set_thread_res_uid(None, Uid::from_raw(self.server_euid), None)?;
        rthread::set_capabilities(None, self.server_caps)?;
        // 2. Its own session, away from the caller's terminal.
        match self.session {
            Session::Inherit => {}
            Session::New => {
                rustix::process::setsid()?;
            }
            Session::NewWithTerminal(fd) => {
                rustix::process::setsid()?;
                if !(0..=2).contains(&fd) {
                    return Err(io::Error::from_raw_os_error(libc::EBADF));
                }
                // The descriptor is named by number and never borrowed: the child's
                // stdio may be closed (a parent started with descriptor 0 closed
                // passes it on), and a closed number is EBADF, reported.
                // SAFETY: ioctl(TIOCSCTTY) takes an integer argument (0: do not
                // steal a terminal another session controls) and touches no memory.
                if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0 as libc::c_int) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        // 3. Keep only stdio and the descriptors asked for.
        for (i, &fd) in self.keep_fds.iter().enumerate() {
            let target = 3 + i as RawFd;
            if fd != target {
                // SAFETY: dup2 on descriptor numbers; it touches no memory, and a bad
                // number only makes it fail with EBADF, which is reported.
                if unsafe { libc::dup2(fd, target) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else {
                // The same number: clear FD_CLOEXEC so it survives exec.
                // SAFETY: fcntl(F_SETFD) on a descriptor number touches no memory.
                if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        // Every other descriptor closes at exec. Marking them close-on-exec, rather
        // than closing them, keeps the pipe std uses to report a failed exec.
        let first = 3 + self.keep_fds.len() as libc::c_uint;
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on this
        // process's descriptors; it touches no memory.
        if unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            )
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        let Some(t) = &self.target else {
            // CreateProcess: the process identity, all of it. Only what differs is
            // set: setgroups needs CAP_SETGID even to set the same groups.
            if let Some(gid) = self.restore_gid {
                rthread::set_thread_res_gid(None, gid, None)?;
            }
            if let Some(groups) = &self.restore_groups {
                rthread::set_thread_groups(groups)?;
            }
            // A program the impersonating caller opened: run that very file.
            return match &self.exec {
                Some(exec) => Err(exec.run()),
                None => Ok(()),
            };
        };
        // 4. No capability survives through ambient or inheritable sets; a root
        //    child's bounding set is cut to the token's capabilities, so that exec
        //    (which gives uid 0 its bounding set) gives it no more.
        rthread::clear_ambient_capability_set()?;
        if t.uid.is_root() {
            for cap in 0..64u32 {
                if !t.caps.contains(CapabilitySet::from_bits_retain(1 << cap)) {
                    // SAFETY: prctl(PR_CAPBSET_DROP) takes integers and touches no
                    // memory; EINVAL for numbers past the last capability is expected.
                    let r = unsafe {
                        libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0)
                    };
                    if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
        }
        // 5. The token's ids, in all three positions: no way back to the server.
        if t.set_groups {
            rthread::set_thread_groups(&t.groups)?;
        }
        rthread::set_thread_res_gid(t.gid, t.gid, t.gid)?;
        rthread::set_thread_res_uid(t.uid, t.uid, t.uid)?;
        let caps = if t.uid.is_root() {
            t.caps & self.server_caps.permitted
        } else {
            CapabilitySet::empty()
        };
        rthread::set_capabilities(
            None,
            CapabilitySets {
                effective: caps,
                permitted: caps,
                inheritable: CapabilitySet::empty(),
            },
        )?;
        // 6. Verify before exec.
        let (r, e) = (rustix::process::getuid(), rustix::process::geteuid());
        check(r == t.uid && e == t.uid && rustix::process::getgid() == t.gid)?;
        // 7. The working directory, entered again as the token's user: std entered
        //    it with the process's credentials (root may enter any directory), so a
        //    directory the user may not enter fails the spawn here.
        if let Some(dir) = &self.chdir {
            rustix::process::chdir(dir.as_c_str())?;
        }
        match &self.exec {
            Some(exec) => Err(exec.run()),
            None => Ok(()),
        }
    }
}

/// Whether the calling thread, with its current (effective) credentials, may
/// execute the file open on `fd` (`faccessat2(fd, "", X_OK, AT_EACCESS |
/// AT_EMPTY_PATH)`): the check of the caller's own context that Windows makes when it
/// opens a program image for a new process. Kernels without `faccessat2` (before
/// 5.8) answer through the thread's own `/proc/thread-self/fd` link, which names the
/// same file.
pub(crate) fn may_execute(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the path is an empty C string that lives through the call; the other
    // arguments are integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::X_OK,
            libc::AT_EACCESS | libc::AT_EMPTY_PATH,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e);
    }
    rustix::fs::accessat(
        rustix::fs::CWD,
        format!("/proc/thread-self/fd/{}", fd.as_raw_fd()),
        rustix::fs::Access::EXEC_OK,
        rustix::fs::AtFlags::EACCESS,
    )
    .map_err(io::Error::from)
}

/// Whether descriptor number `fd` is open in this process (`F_GETFD`).
pub(crate) fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: fcntl(F_GETFD) on a number touches no memory; a free number is EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

thread_local! {
    /// The plan of the spawn this thread is making now, for the hooks of its
    /// commands; null between spawns. The child of a `fork` has a copy of the
    /// thread's memory, where the pointer stays valid.
    static CURRENT: std::cell::Cell<*const ChildPlan> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// The hook every command gets: in the child, the plan of the spawn being made
/// (set by [`spawning`]); with none (a plain `spawn` of the same command later),
/// nothing. A command keeps its hooks, so a second spawn of it, as another user or
/// as itself, follows its own plan, never the first one's.
fn hook() -> io::Result<()> {
    let plan = CURRENT.get();
    if plan.is_null() {
        return Ok(());
    }
    // The command's later hooks (one per earlier spawn of it) find nothing to do.
    CURRENT.set(std::ptr::null());
    // SAFETY: the pointer was set by `spawning` on this thread in the parent to a
    // plan that outlives the spawn; the child is a copy of that memory, and reads
    // the plan while nothing else runs in it.
    unsafe { (*plan).apply() }
}

/// Runs `spawn` (which forks `cmd`'s child on this thread) with `plan` as what the
/// child does between `fork` and `exec`.
pub(crate) fn spawning<T>(plan: &ChildPlan, spawn: impl FnOnce() -> T) -> T {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            CURRENT.set(std::ptr::null());
        }
    }
    CURRENT.set(plan);
    let _clear = Clear;
    spawn()
}

/// Gives `cmd` the hook that runs the plan of each spawn (see [`spawning`]).
pub(crate) fn install(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the hook runs in the forked child and makes only raw system calls
    // on data prepared before the fork: no allocation, no locks.
    unsafe { cmd.pre_exec(hook) };
}

/// As [`install`], for tokio's command.
#[cfg(feature = "tokio")]
pub(crate) fn install_tokio(cmd: &mut tokio::process::Command) {
    // SAFETY: as in `install`.
    unsafe { cmd.pre_exec(hook) };
}
