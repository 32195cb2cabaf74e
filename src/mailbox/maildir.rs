//! Maildir delivery (JK `Deliver.py` `__deliver_maildir`; spec §8; qmail's maildir(5)).
//!
//! The file is made in `tmp/` under a name only this process uses, written and synced, then
//! linked into `new/` under a name made from its device and inode, so a reader sees it
//! there whole or not at all. A crash leaves at most a file in `tmp/`, which mail readers
//! ignore and clean up.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Error, Message, fault};

/// The host name as it goes into a file name: `/` and `:` would break the name (a path
/// separator; the flags separator), so they are written `\057` and `\072`, as TMDA and
/// qmail do.
pub fn escape_host(host: &str) -> String {
    host.replace('/', "\\057").replace(':', "\\072")
}

/// `tmp/` name: `<now>.P<pid>.<host>` (TMDA's; `1043715037.P28810.mail.example.org`).
/// `attempt` > 0 (a name already taken: another thread of this process, or a crash's
/// leftover from an earlier process with our pid) adds `Q<attempt>` after the pid.
pub fn tmp_name(now: u64, pid: u32, attempt: u32, host: &str) -> String {
    let q = if attempt == 0 {
        String::new()
    } else {
        format!("Q{attempt}")
    };
    format!("{now}.P{pid}{q}.{}", escape_host(host))
}

/// `new/` name: `<now>.V<dev hex>I<ino hex>.<host>` (TMDA's; `1796510347.Vfe00I990338.vm`).
pub fn new_name(now: u64, dev: u64, ino: u64, host: &str) -> String {
    format!("{now}.V{dev:x}I{ino:x}.{}", escape_host(host))
}

/// Deliver `msg` into the Maildir `dir` (which must hold `tmp`, `cur` and `new`; they are
/// never created, as in TMDA). Returns the path of the new file in `new/`.
pub fn deliver(dir: &Path, msg: Message<'_>, now: u64, host: &str) -> Result<PathBuf, Error> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::NotMailbox {
                path: dir.to_path_buf(),
                what: "a directory (a Maildir instruction ends with /)",
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::Missing(dir.to_path_buf())),
        Err(e) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                doing: "looking at",
                source: e,
            });
        }
    }
    for sub in ["tmp", "cur", "new"] {
        if !dir.join(sub).is_dir() {
            return Err(Error::NotMaildir {
                path: dir.to_path_buf(),
                missing: sub,
            });
        }
    }
    let (tmp_path, file) = create_tmp(dir, now, host)?;
    fault::point("maildir-after-create");
    let result = write_and_link(dir, &tmp_path, file, msg, now, host);
    // The copy is in new/ or the delivery failed: either way the tmp/ name goes. (On
    // success the link in new/ keeps the file.)
    let _ = std::fs::remove_file(&tmp_path);
    result
}

/// Distinguishes the tmp/ names of concurrent deliveries by threads of one process.
static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

fn create_tmp(dir: &Path, now: u64, host: &str) -> Result<(PathBuf, File), Error> {
    let pid = std::process::id();
    let mut attempt = 0;
    loop {
        let path = dir.join("tmp").join(tmp_name(now, pid, attempt, host));
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path);
        match opened {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt = ATTEMPTS.fetch_add(1, Ordering::Relaxed) % 1_000_000 + 1;
            }
            Err(e) => {
                return Err(Error::Io {
                    path,
                    doing: "creating",
                    source: e,
                });
            }
        }
    }
}

fn write_and_link(
    dir: &Path,
    tmp_path: &Path,
    file: File,
    msg: Message<'_>,
    now: u64,
    host: &str,
) -> Result<PathBuf, Error> {
    let io = |doing: &'static str| {
        move |e: std::io::Error| Error::Io {
            path: tmp_path.to_path_buf(),
            doing,
            source: e,
        }
    };
    let meta = file.metadata().map_err(io("looking at"))?;
    if is_root() {
        // Root delivering for a user: the file is theirs, as TMDA does.
        if let Ok(owner) = std::fs::metadata(dir) {
            std::os::unix::fs::fchown(&file, Some(owner.uid()), Some(owner.gid()))
                .map_err(io("changing the owner of"))?;
        }
    }
    let mut out = BufWriter::with_capacity(super::CHUNK, file);
    out.write_all(msg.header).map_err(io("writing"))?;
    fault::point("maildir-mid-write");
    super::pump(msg.body, |chunk| out.write_all(chunk)).map_err(|e| e.into_error(tmp_path, "writing"))?;
    let file = out.into_inner().map_err(|e| io("writing")(e.into_error()))?;
    fault::point("maildir-after-write");
    file.sync_all().map_err(io("syncing"))?;
    drop(file);
    fault::point("maildir-after-fsync");
    let new_path = dir.join("new").join(new_name(now, meta.dev(), meta.ino(), host));
    link_no_replace(tmp_path, &new_path)?;
    fault::point("maildir-after-link");
    super::sync_dir(&dir.join("new"))?;
    fault::point("maildir-after-dirsync");
    Ok(new_path)
}

/// `link` never replaces a file; where the file system has no hard links, a rename
/// that refuses to replace one does the same job.
fn link_no_replace(from: &Path, to: &Path) -> Result<(), Error> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists(to.to_path_buf())),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS)) => {
            rename_no_replace(from, to).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::Exists(to.to_path_buf())
                } else {
                    Error::Io {
                        path: to.to_path_buf(),
                        doing: "moving the message to",
                        source: e,
                    }
                }
            })
        }
        Err(e) => Err(Error::Io {
            path: to.to_path_buf(),
            doing: "linking the message to",
            source: e,
        }),
    }
}

#[cfg(target_os = "linux")]
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both are NUL-terminated paths that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_no_replace(_from: &Path, _to: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn maildir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for s in ["tmp", "cur", "new"] {
            std::fs::create_dir(d.path().join(s)).unwrap();
        }
        d
    }

    #[test]
    fn names_are_tmdas() {
        assert_eq!(
            tmp_name(1043715037, 28810, 0, "mail.example.org"),
            "1043715037.P28810.mail.example.org"
        );
        assert_eq!(tmp_name(1043715037, 28810, 3, "h"), "1043715037.P28810Q3.h");
        assert_eq!(
            new_name(1796510347, 0xfe00, 0x990338, "vm"),
            "1796510347.Vfe00I990338.vm"
        );
        assert_eq!(escape_host("a/b:c"), "a\\057b\\072c");
        assert_eq!(new_name(1, 0, 0, "x:y"), "1.V0I0.x\\072y");
    }

    #[test]
    fn delivers_to_new_with_mode_0600_and_tmp_empty() {
        let d = maildir();
        let mut body: &[u8] = b"Hello\nFrom here\n";
        let msg = Message {
            header: b"Subject: hi\n\n",
            body: &mut body,
            from_line: None,
        };
        let path = deliver(d.path(), msg, 1700000000, "host:1").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"Subject: hi\n\nHello\nFrom here\n");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, new_name(1700000000, meta.dev(), meta.ino(), "host:1"));
        assert!(name.ends_with(".host\\0721"));
        assert_eq!(path.parent().unwrap(), d.path().join("new"));
        assert_eq!(std::fs::read_dir(d.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(d.path().join("cur")).unwrap().count(), 0);
    }

    #[test]
    fn missing_subdirectories_are_not_created() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("tmp")).unwrap();
        std::fs::create_dir(d.path().join("new")).unwrap();
        let mut body: &[u8] = b"x\n";
        let msg = Message {
            header: b"\n",
            body: &mut body,
            from_line: None,
        };
        let e = deliver(d.path(), msg, 1, "h").unwrap_err();
        assert!(matches!(e, Error::NotMaildir { missing: "cur", .. }), "{e}");
        assert!(e.to_string().contains("has no cur/ directory"), "{e}");
        assert!(!d.path().join("cur").exists());
        let mut body: &[u8] = b"";
        let gone = d.path().join("nothere");
        let e = deliver(
            &gone,
            Message {
                header: b"\n",
                body: &mut body,
                from_line: None,
            },
            1,
            "h",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), format!("\"{}\" does not exist", gone.display()));
    }

    #[test]
    fn a_symlink_planted_at_the_tmp_name_is_not_followed() {
        let d = maildir();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = d.path().join("tmp").join(tmp_name(5, std::process::id(), 0, "h"));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let mut body: &[u8] = b"x\n";
        let path = deliver(
            d.path(),
            Message {
                header: b"A: b\n\n",
                body: &mut body,
                from_line: None,
            },
            5,
            "h",
        )
        .unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(path).unwrap(), b"A: b\n\nx\n");
        // Our own tmp/ file is gone; the planted link is left for its owner.
        assert_eq!(std::fs::read_dir(d.path().join("tmp")).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_read_leaves_nothing_in_new() {
        struct Broken;
        impl std::io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("the pipe broke"))
            }
        }
        let d = maildir();
        let e = deliver(
            d.path(),
            Message {
                header: b"A: b\n\n",
                body: &mut Broken,
                from_line: None,
            },
            5,
            "h",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "reading the message: the pipe broke");
        assert_eq!(std::fs::read_dir(d.path().join("new")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(d.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn threads_of_one_process_get_distinct_files() {
        let d = maildir();
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let dir = d.path();
                    s.spawn(move || {
                        let text = format!("message {i}\n");
                        let mut body = text.as_bytes();
                        deliver(
                            dir,
                            Message {
                                header: b"\n",
                                body: &mut body,
                                from_line: None,
                            },
                            9,
                            "h",
                        )
                        .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut texts: Vec<String> = paths.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        texts.sort();
        assert_eq!(texts, (0..8).map(|i| format!("\nmessage {i}\n")).collect::<Vec<_>>());
    }
}
