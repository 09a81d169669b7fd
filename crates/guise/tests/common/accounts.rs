//! Throwaway accounts for tests that need real ones: the calling thread moves to a
//! private mount namespace and bind-mounts its own /etc/passwd, /etc/group and
//! /etc/shadow over the machine's, which stay untouched. Needs root.

use std::path::PathBuf;

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery";
/// The crypt(3) hash of [`PASSWORD`].
pub const HASH: &str = "$6$guisetestsalt$tyxsFLppK/z89NIBAdq8gnf2Lm60g2FFOzkl0c9jzEVXvw5KKmblOPOank7pv3hs80Q17ILSmzAXX2GPYxyH50";

/// The accounts; kept alive for the test's duration.
pub struct Accounts {
    _dir: tempfile::TempDir,
    /// A PAM configuration directory with a `guise` service using pam_unix.
    pub pam_dir: PathBuf,
}

/// Moves the calling thread into a private mount namespace with the test accounts:
/// alice (uid 61201, also in group 61300), bob (locked), carol (account expired),
/// dave (password expired).
pub fn accounts() -> Accounts {
    let dir = tempfile::tempdir().unwrap();
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let users = [
        ("alice", 61201),
        ("bob", 61202),
        ("carol", 61203),
        ("dave", 61204),
    ];
    let mut passwd = read("/etc/passwd");
    let mut group = read("/etc/group");
    let mut shadow = read("/etc/shadow");
    for (name, id) in users {
        passwd.push_str(&format!("{name}:x:{id}:{id}:{name}:/home/{name}:/bin/sh\n"));
        group.push_str(&format!("{name}:x:{id}:\n"));
    }
    group.push_str("guisestaff:x:61300:alice\n");
    shadow.push_str(&format!("alice:{HASH}:19000:0:99999:7:::\n"));
    shadow.push_str(&format!("bob:!{HASH}:19000:0:99999:7:::\n"));
    shadow.push_str(&format!("carol:{HASH}:19000:0:99999:7::1:\n"));
    shadow.push_str(&format!("dave:{HASH}:0:0:99999:7:::\n"));
    let pam_dir = dir.path().join("pam.d");
    std::fs::create_dir(&pam_dir).unwrap();
    std::fs::write(
        pam_dir.join("guise"),
        "auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_unix.so\n",
    )
    .unwrap();
    // SAFETY: unsharing the mount namespace affects only this thread (the test's,
    // in a process of its own), which owns no file descriptors that could confuse.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }.unwrap();
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .unwrap();
    for (name, text) in [("passwd", passwd), ("group", group), ("shadow", shadow)] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        rustix::mount::mount_bind(&file, format!("/etc/{name}")).unwrap();
    }
    Accounts { _dir: dir, pam_dir }
}
