//! Where a secret file may be replaced: `tmda passwd` and `keygen --install` write a new
//! file beside the old one and rename it into place, often as root. In a directory that
//! someone else can also write to, that someone could plant a symlink where we create a
//! file, or swap the file between our check and our rename. So such a directory is
//! refused unless it has the sticky bit (then others cannot rename or remove our files,
//! as in /tmp), and a lock file is never opened through a symlink.
//!
//! This module checks and opens; what is written, and how, stays with its callers.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Refuse `dir` if users other than its owner may add, rename or remove entries in it
/// (group- or world-writable without the sticky bit). `what` names the file kept
/// there, for the message. The error is `PermissionDenied` (exit code 77).
pub fn check(dir: &Path, what: &str) -> io::Result<()> {
    let mode = std::fs::metadata(dir)?.mode();
    if is_shared(mode) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the directory is writable by others (mode {:03o}) and not sticky: refusing to keep {what} there; chmod go-w it",
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Group- or world-writable, and not sticky.
fn is_shared(mode: u32) -> bool {
    mode & 0o022 != 0 && mode & 0o1000 == 0
}

/// Open (creating it, mode 0600) a lock file for `flock`: never through a symlink
/// (`O_NOFOLLOW`), never blocking on a FIFO planted in its place (`O_NONBLOCK`), and
/// only a regular file owned by us or by root.
pub fn open_lock(path: &Path) -> io::Result<File> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the lock file is a symbolic link: refusing to follow it",
                )
            } else {
                e
            }
        })?;
    let meta = lock.metadata()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() || (meta.uid() != me && meta.uid() != 0) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the lock file is not a regular file of ours: refusing to use it",
        ));
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_directories() {
        for (mode, shared) in [
            (0o40700, false),
            (0o40755, false),
            (0o40775, true),
            (0o40757, true),
            (0o40777, true),
            (0o41777, false),
            (0o41770, false),
        ] {
            assert_eq!(is_shared(mode), shared, "{mode:o}");
        }
    }

    #[test]
    fn locks_are_not_followed_or_fifos() {
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join(".f.lock");
        open_lock(&plain).unwrap();
        open_lock(&plain).expect("an existing lock of ours is reused");
        let link = d.path().join(".g.lock");
        std::os::unix::fs::symlink(d.path().join("target"), &link).unwrap();
        let e = open_lock(&link).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert!(!d.path().join("target").exists());
        let fifo = d.path().join(".h.lock");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No reader: without O_NONBLOCK this open would hang (or fail with ENXIO with it).
        assert!(open_lock(&fifo).is_err());
    }
}
