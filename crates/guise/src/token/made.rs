//! The credential caches guise makes for network clients (Kerberos only): their
//! private directories, memory copies, and their removal at the process identity.

use std::ffi::CString;
use std::fmt;
use std::sync::Arc;

/// What guise removes when the last token holding a cache it made is dropped.
#[derive(Debug)]
pub(crate) enum Removal {
    /// A client's private directory with a file cache in it.
    Dir(PrivateCacheDir),
    /// A memory cache (`MEMORY:…`), destroyed.
    Memory(CString),
    /// A forwarded ticket: its file for processes and its memory copy for threads.
    Both(PrivateCacheDir, CString),
}

/// Where what guise made for caches goes to be removed: a thread at the process
/// identity. The last token that holds a cache may be dropped on a thread that
/// impersonates someone else, or that Landlock confines, which could not.
pub(crate) type Remover = std::sync::mpsc::Sender<Removal>;

/// The device and inode of what a descriptor or a name refers to.
pub(crate) fn file_id(stat: &rustix::fs::Stat) -> (u64, u64) {
    (stat.st_dev, stat.st_ino)
}

/// A directory of the server's own (its owner's, mode 0711) that holds the
/// private directories of clients' caches: clients may pass through it to their
/// own, but cannot list it, nor move, replace or add anything in it. Removed
/// (if empty, and still the one made) when the last cache in it and its acceptor
/// are gone.
pub(crate) struct CacheParent {
    /// The directory, opened when it was made.
    pub(crate) fd: std::os::fd::OwnedFd,
    /// Where it was made.
    pub(crate) path: std::path::PathBuf,
    pub(crate) id: (u64, u64),
}

impl fmt::Debug for CacheParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheParent").field(&self.path).finish()
    }
}

impl Drop for CacheParent {
    fn drop(&mut self) {
        // By name, but only an empty directory, and only the one made (root's, in
        // a directory only root may rename in).
        let same = rustix::fs::lstat(&self.path).is_ok_and(|s| file_id(&s) == self.id);
        if !same {
            tracing::warn!(dir = %self.path.display(), "a credential cache directory moved: left");
            return;
        }
        if let Err(e) = std::fs::remove_dir(&self.path) {
            tracing::warn!(dir = %self.path.display(), %e, "cannot remove the credential caches' directory");
        }
    }
}

/// A client's private directory in a [`CacheParent`] and the one cache file guise
/// made in it. The client owns both (its processes use the cache as it), so it
/// may change what is inside; it cannot move or replace the directory itself.
/// They are removed through the descriptors opened when they were made, each
/// checked by device and inode, never by a path and never recursively: exactly
/// the file and the directory guise made, and nothing the client put there
/// (which is logged and stays).
#[derive(Debug)]
pub(crate) struct PrivateCacheDir {
    pub(crate) parent: Arc<CacheParent>,
    /// The directory's name in `parent`.
    pub(crate) name: String,
    /// The directory, opened when it was made.
    pub(crate) dir: std::os::fd::OwnedFd,
    pub(crate) dir_id: (u64, u64),
    /// The cache file's name in the directory, and its identity once made.
    pub(crate) file: &'static str,
    pub(crate) file_id: Option<(u64, u64)>,
}

impl PrivateCacheDir {
    /// Removes the cache file and the directory guise made, if they are still
    /// those; anything else is logged and left.
    fn remove(self) {
        use rustix::fs::{AtFlags, statat, unlinkat};
        let path = || format!("{}/{}", self.parent.path.display(), self.name);
        match statat(
            &self.parent.fd,
            self.name.as_str(),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(s) if file_id(&s) == self.dir_id => {}
            other => {
                tracing::warn!(
                    dir = %path(),
                    error = ?other.err(),
                    "a client's credential cache directory is no longer the one made: left"
                );
                return;
            }
        }
        match statat(&self.dir, self.file, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) if Some(file_id(&s)) == self.file_id => {
                if let Err(e) = unlinkat(&self.dir, self.file, AtFlags::empty()) {
                    tracing::warn!(dir = %path(), %e, "cannot remove a credential cache");
                }
            }
            Ok(_) => tracing::warn!(
                dir = %path(),
                "the client replaced its credential cache file: what is there is left"
            ),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => tracing::warn!(dir = %path(), %e, "cannot see a credential cache"),
        }
        match unlinkat(&self.parent.fd, self.name.as_str(), AtFlags::REMOVEDIR) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOTEMPTY | rustix::io::Errno::EXIST) => tracing::warn!(
                dir = %path(),
                "the client left files in its credential cache directory: left in place"
            ),
            Err(e) => {
                tracing::warn!(dir = %path(), %e, "cannot remove a credential cache directory");
            }
        }
    }
}

impl Removal {
    /// Removes it now, on the calling thread.
    pub(crate) fn run(self) {
        match self {
            Removal::Dir(dir) => dir.remove(),
            Removal::Memory(name) => destroy_memory_cache(name),
            Removal::Both(dir, name) => {
                destroy_memory_cache(name);
                dir.remove();
            }
        }
    }
}

fn destroy_memory_cache(name: CString) {
    if let Err(code) = crate::sys::gss::destroy_ccache(&name) {
        tracing::warn!(?name, code, "cannot destroy a credential cache");
    }
}
