//! What the transport examples share, beside the point each makes: a directory
//! (mode 0755) with `notes.txt`, mode 0600, that belongs to the client the example
//! serves: uid 61001 when run as root, otherwise the caller itself.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The directory, the client's file in it, and whether the example runs as root.
pub fn client_file() -> std::io::Result<(tempfile::TempDir, PathBuf, bool)> {
    let root = rustix::process::geteuid().is_root();
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755))?;
    let file = dir.path().join("notes.txt");
    let owner = if root {
        61001
    } else {
        rustix::process::geteuid().as_raw()
    };
    std::fs::write(&file, format!("uid {owner}'s notes\n"))?;
    std::fs::set_permissions(&file, PermissionsExt::from_mode(0o600))?;
    std::os::unix::fs::chown(&file, Some(owner), None)?;
    Ok((dir, file, root))
}
