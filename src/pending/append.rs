//! Adding a sender to an address list (`CONFIRM_APPEND`, `PENDING_RELEASE_APPEND`,
//! `PENDING_DELETE_APPEND`, `PENDING_WHITELIST_APPEND`, `PENDING_BLACKLIST_APPEND`).
//!
//! The comparison is TMDA's (`Util.append_to_file`): each line that is not blank and
//! does not start with `#` is lower-cased, its tabs expanded, cut at the first `#` and
//! stripped, and compared with the address treated the same way; the address is
//! appended only when no line equals it. So `bob@x.org ok` never equals `bob@x.org`,
//! as in TMDA.
//!
//! Unlike TMDA, the check and the append happen under an exclusive `flock` of the list
//! (a filter and `tmda pending` appending at once add an address once), the new line is
//! fsynced, a list created here gets mode 0600 (TMDA: the umask's), a list whose last
//! line lacks its newline gets one before ours (TMDA glued the two lines together), an
//! empty address or one with control characters is never written (TMDA appended a
//! blank line for a message without `Return-Path`), and a symbolic link at the list's
//! own name is refused rather than followed.
//!
//! The lists are read as patterns (`*`, `?`, `[...]`, `user@=domain`), and the address
//! comes from the sender's own header fields (Return-Path, X-Primary-Address): it is
//! written as a pattern that matches only itself (`*` as `[*]`), so a stranger who
//! confirms from `*@gmail.com` does not whitelist all of Gmail (TMDA wrote it as it
//! came). An address with white space, which would make a list line of two columns,
//! is refused like one with control characters.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{PendingError, flock, fsync_dir, io_err};

/// TMDA's normal form of a list line or an address: tabs expanded, cut at `#`,
/// stripped, lower-cased.
fn normal(text: &str) -> String {
    let expanded = expand_tabs(text);
    expanded.split('#').next().unwrap_or("").trim().to_lowercase()
}

/// Python's `str.expandtabs()`: tabs to the next multiple of 8 columns.
fn expand_tabs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut col = 0;
    for c in text.chars() {
        match c {
            '\t' => {
                let n = 8 - col % 8;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\n' | '\r' => {
                out.push(c);
                col = 0;
            }
            c => {
                out.push(c);
                col += 1;
            }
        }
    }
    out
}

/// The list line's key, or `None` for a blank or comment line.
fn line_key(line: &[u8]) -> Option<String> {
    let line = String::from_utf8_lossy(line);
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(normal(line))
}

/// Does the list text already hold `address` (TMDA's comparison)?
pub fn is_listed(list: &[u8], address: &str) -> bool {
    let want = normal(address);
    list.split(|&b| b == b'\n')
        .any(|l| line_key(l).as_deref() == Some(want.as_str()))
}

/// `address` as a list pattern that matches only itself: the wildcards `*`, `?` and
/// `[` in brackets, and `@=` (a domain and its subdomains) as `@[=]`.
pub fn literal_pattern(address: &str) -> String {
    let mut out = String::with_capacity(address.len());
    let mut prev = None;
    for c in address.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            '=' if prev == Some('@') => out.push_str("[=]"),
            c => out.push(c),
        }
        prev = Some(c);
    }
    out
}

/// Append `address` (stripped) and a newline to the list at `path` unless it is
/// already there. Returns whether it was appended. An empty address is a no-op.
pub fn append_address(path: &Path, address: &str) -> Result<bool, PendingError> {
    let address = address.trim();
    if address.is_empty() {
        return Ok(false);
    }
    if address.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(PendingError::BadAddress(address.to_string()));
    }
    let literal = literal_pattern(address);
    let address = literal.as_str();
    let want = normal(address);
    let (mut file, created) = open_list(path)?;
    flock(&file, true).map_err(io_err("locking", path))?;

    // Under the lock: read the list as it is now, line by line.
    let mut reader = BufReader::new(&file);
    let mut line = Vec::new();
    let mut last = None;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err("reading", path))?;
        if n == 0 {
            break;
        }
        last = line.last().copied();
        if line_key(&line).as_deref() == Some(want.as_str()) {
            return Ok(false);
        }
    }
    drop(reader);

    let mut text = Vec::with_capacity(address.len() + 2);
    if last.is_some_and(|b| b != b'\n') {
        text.push(b'\n');
    }
    text.extend_from_slice(address.as_bytes());
    text.push(b'\n');
    // O_APPEND: the write lands at the end even if a writer that ignores our lock
    // (TMDA itself) added to the list meanwhile.
    file.seek(SeekFrom::End(0)).map_err(io_err("writing", path))?;
    file.write_all(&text).map_err(io_err("writing", path))?;
    file.sync_data().map_err(io_err("syncing", path))?;
    if created {
        fsync_dir(path).map_err(io_err("syncing the directory of", path))?;
    }
    Ok(true)
}

/// Open the list for reading and appending, creating it (0600) if missing; never
/// through a symbolic link, never a FIFO or device planted in its place.
fn open_list(path: &Path) -> Result<(File, bool), PendingError> {
    let open = |create: bool| {
        let mut o = OpenOptions::new();
        o.read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .mode(0o600);
        if create {
            o.create_new(true);
        }
        o.open(path)
    };
    let mut created = false;
    let file = loop {
        match open(false) {
            Ok(f) => break f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match open(true) {
                Ok(f) => {
                    created = true;
                    break f;
                }
                // Someone else created it between our two opens: open theirs.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(symlink_or(path, "creating", e)),
            },
            Err(e) => return Err(symlink_or(path, "opening", e)),
        }
    };
    let meta = file.metadata().map_err(io_err("reading", path))?;
    if !meta.file_type().is_file() {
        return Err(PendingError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok((file, created))
}

fn symlink_or(path: &Path, what: &'static str, e: io::Error) -> PendingError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        PendingError::Symlink {
            path: path.to_path_buf(),
        }
    } else {
        io_err(what, path)(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn tmda_comparison() {
        let list = b"# comment alice@x.org\n\n  Bob@X.org  \ncarol@x.org # friend\n\tdave@x.org\n\
                     erin@x.org ok\nFRANK@x.org\r\n";
        assert!(is_listed(list, "bob@x.org"));
        assert!(is_listed(list, "BOB@x.ORG"));
        assert!(is_listed(list, "carol@x.org"));
        assert!(is_listed(list, " dave@x.org\t"));
        assert!(is_listed(list, "frank@x.org"));
        assert!(is_listed(list, "carol@x.org # other comment"));
        assert!(!is_listed(list, "alice@x.org"), "commented out");
        assert!(!is_listed(list, "erin@x.org"), "a line with an action never equals");
        assert!(!is_listed(list, "x.org"));
        assert!(!is_listed(b"", "a@b"));
    }

    #[test]
    fn tabs_expand_by_column() {
        assert_eq!(expand_tabs("a\tb"), "a       b");
        assert_eq!(expand_tabs("abcdefgh\tb"), "abcdefgh        b");
        assert_eq!(normal("A\tB # c"), "a       b");
        // Unlike TMDA (which lower-cases the list as ASCII bytes), non-ASCII compares folded too.
        assert!(is_listed("ÄNNE@x.org\n".as_bytes(), "änne@x.org"));
    }

    #[test]
    fn appends_once_creates_0600_and_adds_a_missing_newline() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("confirmed");
        assert!(append_address(&p, "  Alice@Example.org \n").unwrap());
        assert_eq!(read(&p), "Alice@Example.org\n");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!append_address(&p, "alice@example.ORG").unwrap());
        std::fs::write(&p, "bob@x.org").unwrap();
        assert!(append_address(&p, "carol@x.org").unwrap());
        assert_eq!(read(&p), "bob@x.org\ncarol@x.org\n");
        assert!(!append_address(&p, "").unwrap());
        assert!(!append_address(&p, "  ").unwrap());
        assert_eq!(read(&p), "bob@x.org\ncarol@x.org\n");
    }

    #[test]
    fn hostile_addresses_and_files_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("list");
        let e = append_address(&p, "a@x\nevil@y ok").unwrap_err();
        assert!(matches!(e, PendingError::BadAddress(_)), "{e}");
        let e = append_address(&p, "\"a ok\"@x").unwrap_err();
        assert!(matches!(e, PendingError::BadAddress(_)), "{e}");
        assert!(!p.exists());
        // Wildcards from a hostile header match only themselves.
        for (a, line) in [
            ("*@*", "[*]@[*]"),
            ("?*@gmail.com", "[?][*]@gmail.com"),
            ("a[b-z]@x", "a[[]b-z]@x"),
            ("x@=gmail.com", "x@[=]gmail.com"),
        ] {
            assert!(append_address(&p, a).unwrap());
            assert!(!append_address(&p, a).unwrap(), "{a} is added once");
            assert!(read(&p).ends_with(&format!("{line}\n")), "{a}");
            assert!(crate::filter::pattern_matches(a, line), "{line} matches {a}");
            assert!(!crate::filter::pattern_matches("bob@gmail.com", line), "{line}");
        }
        std::fs::remove_file(&p).unwrap();

        let target = d.path().join("target");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let e = append_address(&p, "a@x").unwrap_err();
        assert!(matches!(e, PendingError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!target.exists());

        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = append_address(&fifo, "a@x").unwrap_err();
        assert!(
            matches!(e, PendingError::NotRegular { .. } | PendingError::Io { .. }),
            "{e}"
        );

        let e = append_address(&d.path().join("no/such/dir/list"), "a@x").unwrap_err();
        assert!(e.to_string().contains("no such file or directory"), "{e}");
    }

    #[test]
    fn concurrent_appends_add_an_address_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("list");
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let mut n = 0;
                    for j in 0..20 {
                        n += append_address(&p, &format!("user{}@x.org", (i + j) % 10)).unwrap() as usize;
                    }
                    n
                })
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 10);
        let text = read(&p);
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        lines.dedup();
        assert_eq!(lines.len(), 10, "{text}");
        assert_eq!(text.lines().count(), 10, "{text}");
    }

    #[test]
    fn the_lock_is_held_while_checking() {
        // Another holder of the lock makes us wait; we do not append around it.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("list");
        std::fs::write(&p, "").unwrap();
        let holder = File::open(&p).unwrap();
        flock(&holder, true).unwrap();
        let p2 = p.clone();
        let t = std::thread::spawn(move || append_address(&p2, "a@x").unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(read(&p), "", "appended while the list was locked");
        // What the holder adds is seen by the waiting appender.
        std::fs::write(&p, "A@x\n").unwrap();
        drop(holder);
        assert!(!t.join().unwrap());
        assert_eq!(read(&p), "A@x\n");
    }
}
