//! Locking an mbox for an append: a `FILE.lock` dot-lock, then an `fcntl` lock on the file,
//! in that order (Postfix's `mbox_open`, procmail), each waited for with a deadline.
//!
//! Choices, and why:
//! * Both locks, because readers differ in which they honour (mutt and procmail take both,
//!   Dovecot may take only `fcntl`, old mail readers only the dot-lock).
//! * The `fcntl` lock is an open-file-description lock on Linux (`F_OFD_SETLK`): it conflicts
//!   with other programs' classic `fcntl` locks like one of theirs, and, unlike a classic
//!   lock, also with another thread of this process and is not dropped when some other
//!   descriptor of the file is closed. It is polled (with a growing pause, at most 200 ms)
//!   rather than waited for with `F_SETLKW`, because a blocking wait can only be cut short
//!   by a signal, which a library must not take over.
//! * The dot-lock is made with `O_CREAT|O_EXCL` (atomic on local file systems and NFSv3 and
//!   later). If the directory does not let us create it (`EACCES`, `EPERM`, `EROFS`: a mail
//!   spool that only set-group-id helpers write), the `fcntl` lock alone is used, as Postfix
//!   does for files outside its spool; the error would otherwise hold mail for ever.
//! * What is in a dot-lock of ours: `tmda PID HOST`, written as soon as it exists, and, once
//!   the `fcntl` lock is held and the append about to begin, `append INODE OFFSET`. The
//!   holder keeps its `fcntl` lock until it has removed its dot-lock, so a dot-lock of ours
//!   that outlives its `fcntl` lock belongs to a process that died mid-delivery: whoever next
//!   takes the `fcntl` lock cuts the mailbox back to OFFSET (the half-written message was never
//!   reported delivered, so the MTA sends it again) and removes the lock at once.
//! * Other dot-locks are stale when older than `stale_after` (500 s by default: Postfix's
//!   `stale_lock_time`), and a dot-lock of ours without an `append` line
//!   when its PID is gone from this host. A stale lock is removed only if the name still
//!   names the file we judged (device and inode compared just before the unlink; the
//!   remaining window between that check and the unlink is the classic dot-lock race, which
//!   the `fcntl` lock covers among programs that take both).
//! * A long append refreshes the dot-lock's time every 30 s, so other programs do not take it
//!   for stale; we remove our own dot-lock only if it is still ours.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{Error, fault};

/// A locked mailbox, open for reading and writing.
pub(crate) struct Locked {
    pub file: File,
    dotlock: Option<DotLock>,
    touched: std::cell::Cell<Instant>,
}

struct DotLock {
    path: PathBuf,
    file: File,
    dev: u64,
    ino: u64,
}

/// What the lock file names: `tmda PID HOST` and maybe `append INODE OFFSET`.
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    pid: u32,
    host: String,
    append: Option<(u64, u64)>,
}

fn parse_owner(text: &[u8]) -> Option<Owner> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.lines();
    let mut first = lines.next()?.split(' ');
    if first.next()? != "tmda" {
        return None;
    }
    let pid = first.next()?.parse().ok()?;
    let host = first.next()?.to_string();
    let append = match lines.next() {
        None => None,
        Some(l) => {
            let mut w = l.split(' ');
            if w.next()? != "append" {
                return None;
            }
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        }
    };
    Some(Owner { pid, host, append })
}

/// A lock file seen on disk.
struct Seen {
    dev: u64,
    ino: u64,
    modified: SystemTime,
    owner: Option<Owner>,
}

pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".lock");
    PathBuf::from(s)
}

/// Open `path` (which must exist: TMDA never creates an mbox) and lock it both ways.
/// `separator` is how our appends begin (`From ` or MMDF's `^A^A^A^A\n`), checked before a
/// dead writer's append is cut off.
pub(crate) fn lock(
    path: &Path,
    host: &str,
    timeout: Duration,
    stale_after: Duration,
    separator: &[u8],
) -> Result<Locked, Error> {
    let deadline = Instant::now() + timeout;
    let file = open_mailbox(path)?;
    let lock_path = lock_path(path);
    let mut pause = Duration::from_millis(10);
    let dotlock = loop {
        match create_dotlock(&lock_path, host) {
            Ok(d) => break Some(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if clear_dead_lock(&lock_path, &file, path, stale_after, separator, host)? {
                    continue;
                }
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM | libc::EROFS)) => break None,
            Err(e) => {
                return Err(Error::Io {
                    path: lock_path,
                    doing: "creating the lock file",
                    source: e,
                });
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Locked {
                path: path.to_path_buf(),
                how: "its dot-lock",
                waited: timeout,
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(200));
    };
    let locked = Locked {
        file,
        dotlock,
        touched: std::cell::Cell::new(Instant::now()),
    };
    fault::point("mbox-after-dotlock");
    let result = fcntl_wait(&locked.file, deadline, path, timeout).and_then(|()| same_file(&locked.file, path));
    if let Err(e) = result {
        locked.release();
        return Err(e);
    }
    locked.touched.set(Instant::now());
    fault::point("mbox-after-lock");
    Ok(locked)
}

impl Locked {
    /// Note in the dot-lock that an append begins at `offset`, before its first byte.
    pub fn record_append(&mut self, offset: u64) -> Result<(), Error> {
        let Some(d) = &mut self.dotlock else { return Ok(()) };
        let ino = self.file.metadata().map(|m| m.ino()).unwrap_or(0);
        let line = format!("append {ino} {offset}\n");
        let io = |e| Error::Io {
            path: d.path.clone(),
            doing: "writing the lock file",
            source: e,
        };
        d.file.write_all(line.as_bytes()).map_err(io)?;
        d.file.sync_all().map_err(io)?;
        // The lock must outlast a power cut as long as the half message could.
        if let Some(dir) = d.path.parent() {
            super::sync_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })?;
        }
        Ok(())
    }

    /// Keep the dot-lock fresh for programs that judge staleness by age.
    pub fn keep_fresh(&self) {
        if self.touched.get().elapsed() < Duration::from_secs(30) {
            return;
        }
        self.touched.set(Instant::now());
        if let Some(d) = &self.dotlock {
            let _ = d.file.set_modified(SystemTime::now());
        }
    }

    /// Remove our dot-lock (if it is still ours), then drop the `fcntl` lock.
    pub fn release(self) {
        if let Some(d) = &self.dotlock {
            remove_if_same(&d.path, d.dev, d.ino);
        }
        let _ = fcntl_set(&self.file, libc::F_UNLCK as libc::c_short);
    }

    /// Leave the dot-lock and its `append` line for the next delivery to act on (our own
    /// cutting back failed); the `fcntl` lock goes with the file.
    pub fn abandon(self) {}
}

/// Open the mailbox without following a symlink, without blocking on a FIFO, and only if
/// it is a regular file with one name.
fn open_mailbox(path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::Missing(path.to_path_buf()),
            Some(libc::ELOOP) => Error::Symlink(path.to_path_buf()),
            _ => Error::Io {
                path: path.to_path_buf(),
                doing: "opening",
                source: e,
            },
        })?;
    let meta = file.metadata().map_err(|e| Error::Io {
        path: path.to_path_buf(),
        doing: "looking at",
        source: e,
    })?;
    if !meta.file_type().is_file() {
        return Err(Error::NotMailbox {
            path: path.to_path_buf(),
            what: "a regular file",
        });
    }
    if meta.nlink() != 1 {
        // Another name for it elsewhere may be someone else's file linked into place.
        return Err(Error::NotMailbox {
            path: path.to_path_buf(),
            what: "a file with a single name (it has more than one hard link)",
        });
    }
    Ok(file)
}

/// After locking: the name must still lead to the file we locked (a mail reader that
/// rewrites the mailbox may have renamed a new file into place meanwhile).
fn same_file(file: &File, path: &Path) -> Result<(), Error> {
    let ours = file.metadata();
    let named = std::fs::symlink_metadata(path);
    match (ours, named) {
        (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino() && a.nlink() == 1 => Ok(()),
        _ => Err(Error::Replaced(path.to_path_buf())),
    }
}

fn create_dotlock(lock_path: &Path, host: &str) -> std::io::Result<DotLock> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(lock_path)?;
    let meta = file.metadata()?;
    // Written at once, so a crash after this leaves a lock that says whose it was.
    let created = file.write_all(format!("tmda {} {}\n", std::process::id(), host).as_bytes());
    let lock = DotLock {
        path: lock_path.to_path_buf(),
        file,
        dev: meta.dev(),
        ino: meta.ino(),
    };
    if let Err(e) = created {
        remove_if_same(&lock.path, lock.dev, lock.ino);
        return Err(e);
    }
    Ok(lock)
}

fn look(lock_path: &Path) -> std::io::Result<Option<Seen>> {
    let meta = match std::fs::symlink_metadata(lock_path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut owner = None;
    if meta.file_type().is_file()
        && let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(lock_path)
        && f.metadata()
            .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev())
    {
        let mut text = Vec::new();
        if f.take(256).read_to_end(&mut text).is_ok() {
            owner = parse_owner(&text);
        }
    }
    Ok(Some(Seen {
        dev: meta.dev(),
        ino: meta.ino(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        owner,
    }))
}

/// Someone holds the dot-lock: remove it if its holder is gone. `Ok(true)`: try again now.
fn clear_dead_lock(
    lock_path: &Path,
    mailbox: &File,
    path: &Path,
    stale_after: Duration,
    separator: &[u8],
    ours: &str,
) -> Result<bool, Error> {
    let io = |e| Error::Io {
        path: lock_path.to_path_buf(),
        doing: "looking at the lock file",
        source: e,
    };
    let Some(seen) = look(lock_path).map_err(io)? else {
        return Ok(true);
    };
    match &seen.owner {
        Some(Owner {
            append: Some((ino, offset)),
            ..
        }) => {
            // A tmda appending: alive while it holds the fcntl lock.
            if !fcntl_set(mailbox, libc::F_WRLCK as libc::c_short).map_err(|e| Error::Io {
                path: path.to_path_buf(),
                doing: "locking",
                source: e,
            })? {
                return Ok(false);
            }
            let again = look(lock_path).map_err(io);
            let cleared = match again {
                Ok(Some(now)) if now.dev == seen.dev && now.ino == seen.ino && now.owner == seen.owner => {
                    cut_back(mailbox, path, *ino, *offset, separator)
                        .map(|()| remove_if_same(lock_path, seen.dev, seen.ino))
                        .map(|()| true)
                }
                Ok(_) => Ok(true),
                Err(e) => Err(e),
            };
            let _ = fcntl_set(mailbox, libc::F_UNLCK as libc::c_short);
            cleared
        }
        Some(Owner {
            pid,
            host,
            append: None,
        }) if !host.is_empty() && host == ours && !pid_alive(*pid) => {
            remove_if_same(lock_path, seen.dev, seen.ino);
            Ok(true)
        }
        _ => {
            let age = SystemTime::now().duration_since(seen.modified).unwrap_or_default();
            if age > stale_after {
                remove_if_same(lock_path, seen.dev, seen.ino);
                return Ok(true);
            }
            Ok(false)
        }
    }
}

/// Cut a dead writer's append off at `offset`, if the mailbox is the file it wrote to and
/// what follows `offset` is the start of an append of ours.
fn cut_back(mailbox: &File, path: &Path, ino: u64, offset: u64, separator: &[u8]) -> Result<(), Error> {
    let io = |doing| {
        move |e| Error::Io {
            path: path.to_path_buf(),
            doing,
            source: e,
        }
    };
    let meta = mailbox.metadata().map_err(io("looking at"))?;
    if meta.ino() != ino || meta.len() <= offset {
        return Ok(());
    }
    let mut head = vec![0u8; (separator.len() + 1).min((meta.len() - offset) as usize)];
    mailbox.read_exact_at(&mut head, offset).map_err(io("reading"))?;
    let tail = head.strip_prefix(b"\n").unwrap_or(&head);
    if !separator.starts_with(tail) && !tail.starts_with(separator) {
        return Ok(());
    }
    mailbox
        .set_len(offset)
        .map_err(io("cutting off a crashed delivery in"))?;
    mailbox.sync_all().map_err(io("syncing"))
}

fn remove_if_same(lock_path: &Path, dev: u64, ino: u64) {
    if std::fs::symlink_metadata(lock_path).is_ok_and(|m| m.dev() == dev && m.ino() == ino) {
        let _ = std::fs::remove_file(lock_path);
    }
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; no signal is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(target_os = "linux")]
const SETLK: libc::c_int = libc::F_OFD_SETLK;
#[cfg(not(target_os = "linux"))]
const SETLK: libc::c_int = libc::F_SETLK;

/// Set (or clear) a whole-file lock without waiting. `Ok(false)`: someone else holds one.
fn fcntl_set(file: &File, kind: libc::c_short) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock is plain data; all-zero is a valid value (whole file, pid 0 as OFD
    // locks require).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    loop {
        // SAFETY: a valid descriptor and a pointer to a flock that lives across the call.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), SETLK, &mut fl) };
        if rc == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN | libc::EACCES) => return Ok(false),
            _ => return Err(e),
        }
    }
}

fn fcntl_wait(file: &File, deadline: Instant, path: &Path, limit: Duration) -> Result<(), Error> {
    let mut pause = Duration::from_millis(5);
    loop {
        let got = fcntl_set(file, libc::F_WRLCK as libc::c_short).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            doing: "locking",
            source: e,
        })?;
        if got {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Locked {
                path: path.to_path_buf(),
                how: "an fcntl lock",
                waited: limit,
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_contents() {
        assert_eq!(
            parse_owner(b"tmda 12 mail.example.org\n"),
            Some(Owner {
                pid: 12,
                host: "mail.example.org".into(),
                append: None
            })
        );
        assert_eq!(
            parse_owner(b"tmda 12 h\nappend 77 1024\n").and_then(|o| o.append),
            Some((77, 1024))
        );
        for foreign in [&b""[..], b"12345\n", b"tmda x h\n", b"tmda 1 h\nappend 1\n", b"\xff"] {
            assert_eq!(parse_owner(foreign), None);
        }
    }

    #[test]
    fn liveness() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }
}
