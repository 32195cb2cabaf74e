//! The queue directory: the file-system half of the pending queue, kept thin.
//!
//! Listing is one `readdir` per directory and, for a summary, one `open` and one or two
//! `pread`s of the header per message (the body is never read), so ten thousand held
//! messages list in a few tens of milliseconds. Insertion streams the body to a
//! temporary file and links it into place; a reader never sees half a message.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::message::address::parseaddr;
use crate::message::{HEADER_MAX, Header, Message};

use super::release::{Release, ReleaseMode, release};
use super::{Format, MessageId, PendingError, flock, fsync_dir, io_err, sync_dir};
use crate::message::block;

/// A temporary file older than this is left over from a crash (the Maildir convention).
const STALE_TEMP_SECS: u64 = 36 * 3600;
/// Prefix of the temporary files of the original format: hidden, and never `*.*.msg`,
/// so TMDA's glob and our listing both pass them by.
const TEMP_PREFIX: &str = ".tmp.";
/// The longest header block read: what `crate::message` accepts, and room for the
/// fields added on the way into the queue.
const HEADER_LIMIT: usize = HEADER_MAX + 64 * 1024;

/// One pending queue: `PENDING_DIR` in a [`Format`].
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
    format: Format,
    /// The host part of new Maildir names, already escaped.
    host: String,
}

/// A message found in the queue: its id and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: MessageId,
    pub path: PathBuf,
}

/// An opened pending message: its header (read whole, once) and its body (streamed on
/// demand). When obtained from [`Queue::lock`] or [`Queue::try_lock`] it holds the
/// message's lock until dropped or deleted.
#[derive(Debug)]
pub struct Stored {
    id: MessageId,
    path: PathBuf,
    file: File,
    head: Head,
    locked: bool,
}

/// What is read of a message to list or release it: everything but the body.
#[derive(Debug)]
struct Head {
    size: u64,
    header: Header,
    header_bytes: Vec<u8>,
    body_start: u64,
}

impl Head {
    /// Read the header block of an open message file, a few KiB at a time.
    fn read(file: &File, path: &Path) -> Result<Head, PendingError> {
        let meta = file.metadata().map_err(io_err("reading", path))?;
        if !meta.is_file() {
            return Err(PendingError::NotRegular {
                path: path.to_path_buf(),
            });
        }
        let size = meta.len();
        let mut buf = Vec::new();
        let mut chunk = 8 * 1024;
        let b = loop {
            let old = buf.len();
            buf.resize(old + chunk, 0);
            let n = loop {
                match file.read_at(&mut buf[old..], old as u64) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r.map_err(io_err("reading", path))?,
                }
            };
            buf.truncate(old + n);
            let complete = n == 0 || buf.len() as u64 >= size;
            match block::scan(&buf, complete) {
                Some(b) if b.end <= HEADER_LIMIT => break b,
                // A header past the limit (TMDA held any size): read as far as it goes.
                Some(_) => break block::cut(&buf, HEADER_LIMIT),
                None if buf.len() > HEADER_LIMIT => break block::cut(&buf, HEADER_LIMIT),
                None => {}
            }
            chunk = (chunk * 2).min(256 * 1024);
        };
        let header_bytes = buf[b.start..b.end].to_vec();
        let header = Header::from_lines(block::lines(&header_bytes), block::eol_of(&header_bytes));
        Ok(Head {
            size,
            header,
            header_bytes,
            body_start: b.body as u64,
        })
    }
}

/// The addr-spec of the first `Return-Path` (empty if none, or `<>`).
fn return_path(header: &Header) -> String {
    header.get("Return-Path").map(|v| parseaddr(&v).1).unwrap_or_default()
}

/// What [`Queue::cleanup`] did.
#[derive(Debug, Default)]
pub struct Cleanup {
    /// Expired messages removed, with the addr-spec of their `Return-Path` (empty if
    /// none) for `PENDING_DELETE_APPEND`.
    pub removed: Vec<Removed>,
    /// Expired messages left alone because another process holds them (a release).
    pub busy: Vec<MessageId>,
    /// Files that could not be read or removed (TMDA ignores these silently).
    pub failures: Vec<CleanupFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub id: MessageId,
    pub return_path: String,
}

#[derive(Debug)]
pub struct CleanupFailure {
    pub path: PathBuf,
    pub error: PendingError,
}

impl Queue {
    /// The queue in `dir` (`PENDING_DIR`, already expanded). Nothing is touched yet.
    pub fn new(dir: impl Into<PathBuf>, format: Format) -> Queue {
        Queue {
            dir: dir.into(),
            format,
            host: maildir_host(&hostname()),
        }
    }

    /// Use `host` instead of the machine's name in new Maildir file names.
    pub fn with_host(mut self, host: &str) -> Queue {
        self.host = maildir_host(host);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Does the queue directory exist (TMDA's test before listing or cleaning)?
    pub fn exists(&self) -> bool {
        self.dir.exists()
    }

    /// Create the queue directory (and Maildir's `tmp`, `new`, `cur`), mode 0700, if
    /// missing; the new names are fsynced.
    pub fn create(&self) -> Result<(), PendingError> {
        let existed = self.dir.is_dir();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io_err("creating", &self.dir))?;
        let mut made = !existed;
        if self.format == Format::Maildir {
            for sub in ["tmp", "new", "cur"] {
                let p = self.dir.join(sub);
                match DirBuilder::new().mode(0o700).create(&p) {
                    Ok(()) => made = true,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_err("creating", &p)(e)),
                }
            }
        }
        if made {
            fsync_dir(&self.dir).map_err(io_err("syncing the directory of", &self.dir))?;
            sync_dir(&self.dir).map_err(io_err("syncing", &self.dir))?;
        }
        Ok(())
    }

    /// Every message in the queue, sorted by id (time, then process id). An id found
    /// twice (Maildir `new/` and `cur/`, or two hosts) is listed once, `new/` first.
    /// A missing queue directory is an empty queue.
    pub fn list(&self) -> Result<Vec<Entry>, PendingError> {
        let mut out = vec![];
        match self.format {
            Format::Original => scan(&self.dir, Some(b"msg"), None, &mut out)?,
            Format::Maildir => {
                scan(&self.dir.join("new"), None, None, &mut out)?;
                scan(&self.dir.join("cur"), None, None, &mut out)?;
            }
        }
        out.sort_by_key(|e| e.id);
        out.dedup_by_key(|e| e.id);
        Ok(out)
    }

    /// The message with exactly this id, if it is queued.
    pub fn find(&self, id: MessageId) -> Result<Option<Entry>, PendingError> {
        match self.format {
            Format::Original => {
                let path = self.dir.join(format!("{id}.msg"));
                Ok(is_file(&path)?.then_some(Entry { id, path }))
            }
            Format::Maildir => {
                let ours = self.dir.join("new").join(self.file_name(id));
                if is_file(&ours)? {
                    return Ok(Some(Entry { id, path: ours }));
                }
                // new/ before cur/: a mail reader moves messages that way, atomically,
                // so one that moves while we look is seen in one or the other.
                let mut out = vec![];
                scan(&self.dir.join("new"), None, Some(id), &mut out)?;
                if out.is_empty() {
                    scan(&self.dir.join("cur"), None, Some(id), &mut out)?;
                }
                Ok(out.into_iter().next())
            }
        }
    }

    /// Open a message to read it, without locking it.
    pub fn open(&self, id: MessageId) -> Result<Stored, PendingError> {
        let entry = self.find(id)?.ok_or(PendingError::NotFound(id))?;
        entry.open()
    }

    /// Open and lock a message, waiting for another holder to finish. `NotFound` if
    /// it was removed meanwhile (the other holder released or deleted it).
    pub fn lock(&self, id: MessageId) -> Result<Stored, PendingError> {
        self.lock_id(id, true)
    }

    /// Open and lock a message, or `Locked` at once if another process holds it.
    pub fn try_lock(&self, id: MessageId) -> Result<Stored, PendingError> {
        self.lock_id(id, false)
    }

    /// Remove a message (after taking its lock).
    pub fn delete(&self, id: MessageId) -> Result<(), PendingError> {
        self.lock(id)?.delete()
    }

    fn lock_id(&self, id: MessageId, wait: bool) -> Result<Stored, PendingError> {
        let entry = self.find(id)?.ok_or(PendingError::NotFound(id))?;
        let (file, path) = self.lock_entry(&entry, wait)?;
        Stored::read(id, path, file, true)
    }

    /// Lock the file of `entry` and make sure it is still the queued message: a holder
    /// we waited for may have removed it, or a mail reader moved it to `cur/`.
    fn lock_entry(&self, entry: &Entry, wait: bool) -> Result<(File, PathBuf), PendingError> {
        let id = entry.id;
        let mut path = entry.path.clone();
        for _ in 0..3 {
            let file = match open_message(id, &path) {
                Ok(f) => f,
                Err(PendingError::NotFound(_)) => {
                    path = self.find(id)?.ok_or(PendingError::NotFound(id))?.path;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match flock(&file, wait) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(PendingError::Locked(id)),
                Err(e) => return Err(io_err("locking", &path)(e)),
            }
            let meta = file.metadata().map_err(io_err("reading", &path))?;
            if same_file(&path, &meta) {
                return Ok((file, path));
            }
            match self.find(id)? {
                Some(e) if same_file(&e.path, &meta) => return Ok((file, e.path)),
                Some(e) => path = e.path,
                None => return Err(PendingError::NotFound(id)),
            }
        }
        Err(PendingError::NotFound(id))
    }

    /// Hold a message: store `header_block` (its fields, optionally followed by the empty
    /// line) and the body read from `body`, streamed, with `X-TMDA-Recipient:
    /// <recipient>` as the last field. Refuses an id already queued, and a header with
    /// a line that is no field (it would end the header early on reading).
    pub fn insert(
        &self,
        id: MessageId,
        recipient: &str,
        header_block: &[u8],
        mut body: impl Read,
    ) -> Result<Entry, PendingError> {
        let (header, b) = block::parse(header_block);
        let rest = &header_block[b.end..];
        if !rest.is_empty() && rest != b"\n" && rest != b"\r\n" {
            let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
            return Err(PendingError::BadHeader(
                String::from_utf8_lossy(line).chars().take(80).collect(),
            ));
        }
        self.insert_with(id, recipient, header, |w| io::copy(&mut body, w).map(drop))
    }

    /// [`Queue::insert`] for a spooled message.
    pub fn insert_message(&self, id: MessageId, recipient: &str, msg: &Message) -> Result<Entry, PendingError> {
        self.insert_with(id, recipient, msg.header.clone(), |w| {
            msg.for_each_body_chunk(|c| w.write_all(c))
        })
    }

    fn insert_with(
        &self,
        id: MessageId,
        recipient: &str,
        mut header: Header,
        body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Entry, PendingError> {
        let recipient = recipient.trim();
        if recipient.is_empty() || recipient.chars().any(char::is_control) {
            return Err(PendingError::BadRecipient(recipient.to_string()));
        }
        header.remove_all("X-TMDA-Recipient");
        header.append("X-TMDA-Recipient", recipient);

        self.create()?;
        if self.find(id)?.is_some() {
            return Err(PendingError::Exists(id));
        }
        let (tmp, dest) = match self.format {
            Format::Original => (
                self.dir
                    .join(format!("{TEMP_PREFIX}{id}.{}.{}", std::process::id(), nanos())),
                self.dir.join(format!("{id}.msg")),
            ),
            Format::Maildir => {
                let name = self.file_name(id);
                (self.dir.join("tmp").join(&name), self.dir.join("new").join(&name))
            }
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists if self.format == Format::Maildir => PendingError::Exists(id),
                _ => io_err("creating", &tmp)(e),
            })?;
        let written = (|| {
            let mut w = BufWriter::with_capacity(64 * 1024, &file);
            w.write_all(&header.to_bytes())?;
            w.write_all(header.eol.as_bytes())?;
            body(&mut w)?;
            w.flush()?;
            drop(w);
            file.sync_all()
        })();
        drop(file);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("storing the message in", &tmp)(e));
        }
        // link() refuses an existing name, where rename() would replace it.
        let linked = fs::hard_link(&tmp, &dest);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(PendingError::Exists(id)),
            Err(e) => return Err(io_err("moving the message to", &dest)(e)),
        }
        fsync_dir(&dest).map_err(io_err("syncing the directory of", &dest))?;
        Ok(Entry { id, path: dest })
    }

    /// Remove the messages held at least `lifetime` seconds (`PENDING_LIFETIME`) by
    /// their id's time, as TMDA does, and temporary files left over from crashes. A
    /// message another process holds locked is left for next time.
    pub fn cleanup(&self, lifetime: u64, now: u64) -> Result<Cleanup, PendingError> {
        let mut report = Cleanup::default();
        if !self.exists() {
            return Ok(report);
        }
        if let Some(oldest_kept) = now.checked_sub(lifetime) {
            for entry in self.list()? {
                if entry.id.timestamp() > oldest_kept {
                    continue;
                }
                self.expire(&entry, &mut report);
            }
        }
        self.remove_stale_temps(now, &mut report);
        Ok(report)
    }

    fn expire(&self, entry: &Entry, report: &mut Cleanup) {
        let (file, path) = match self.lock_entry(entry, false) {
            Ok(x) => x,
            Err(PendingError::Locked(id)) => return report.busy.push(id),
            // Gone meanwhile: another cleanup or a release got there first.
            Err(PendingError::NotFound(_)) => return,
            Err(error) => {
                return report.failures.push(CleanupFailure {
                    path: entry.path.clone(),
                    error,
                });
            }
        };
        // An unreadable header must not keep an expired message forever: it goes,
        // without a Return-Path to report.
        let return_path = match Head::read(&file, &path) {
            Ok(head) => return_path(&head.header),
            Err(error) => {
                report.failures.push(CleanupFailure {
                    path: path.clone(),
                    error,
                });
                String::new()
            }
        };
        // Removed while we still hold the lock, so a releaser waiting for it finds
        // the message gone rather than delivering it.
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                return report.failures.push(CleanupFailure {
                    error: io_err("removing", &path)(e),
                    path,
                });
            }
        }
        if let Err(e) = fsync_dir(&path) {
            report.failures.push(CleanupFailure {
                error: io_err("syncing the directory of", &path)(e),
                path: path.clone(),
            });
        }
        drop(file);
        report.removed.push(Removed {
            id: entry.id,
            return_path,
        });
    }

    fn remove_stale_temps(&self, now: u64, report: &mut Cleanup) {
        let (dir, prefix) = match self.format {
            Format::Original => (self.dir.clone(), TEMP_PREFIX),
            Format::Maildir => (self.dir.join("tmp"), ""),
        };
        let Ok(rd) = fs::read_dir(&dir) else { return };
        for e in rd.flatten() {
            if !e.file_name().as_bytes().starts_with(prefix.as_bytes()) {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let stale = meta.is_file() && (meta.mtime().max(0) as u64).saturating_add(STALE_TEMP_SECS) <= now;
            if stale && let Err(err) = fs::remove_file(e.path()) {
                report.failures.push(CleanupFailure {
                    error: io_err("removing", &e.path())(err),
                    path: e.path(),
                });
            }
        }
    }

    fn file_name(&self, id: MessageId) -> String {
        match self.format {
            Format::Original => format!("{id}.msg"),
            Format::Maildir => format!("{id}.{}", self.host),
        }
    }
}

impl Entry {
    /// Open this message to read it, without locking it.
    pub fn open(&self) -> Result<Stored, PendingError> {
        let file = open_message(self.id, &self.path)?;
        Stored::read(self.id, self.path.clone(), file, false)
    }
}

impl Stored {
    /// Read the header block from an open message file.
    fn read(id: MessageId, path: PathBuf, file: File, locked: bool) -> Result<Stored, PendingError> {
        let head = Head::read(&file, &path)?;
        Ok(Stored {
            id,
            path,
            file,
            head,
            locked,
        })
    }

    pub fn id(&self) -> MessageId {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the stored file in bytes (what TMDA's summary shows).
    pub fn size(&self) -> u64 {
        self.head.size
    }

    pub fn header(&self) -> &Header {
        &self.head.header
    }

    /// The header fields exactly as stored (without the empty line).
    pub fn header_bytes(&self) -> &[u8] {
        &self.head.header_bytes
    }

    /// The addr-spec of `Return-Path` (empty if none): whom a release is sent from.
    pub fn return_path(&self) -> String {
        return_path(&self.head.header)
    }

    /// The `X-TMDA-Recipient` the message was held for.
    pub fn recipient(&self) -> Option<String> {
        self.head.header.get("X-TMDA-Recipient")
    }

    /// Does this handle hold the message's lock?
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// The body as stored, streamed from the file.
    pub fn body(&self) -> Body<'_> {
        Body {
            file: &self.file,
            pos: self.head.body_start,
            end: self.head.size.max(self.head.body_start),
        }
    }

    /// [`release()`](super::release()) of this message's header.
    pub fn release(
        &self,
        done_cookie: &str,
        date: &str,
        mode: ReleaseMode<'_>,
        recipient: Option<&str>,
    ) -> Result<Release, PendingError> {
        Ok(release(&self.head.header_bytes, done_cookie, date, mode, recipient)?)
    }

    /// Remove the message from the queue (taking its lock first if this handle does
    /// not hold it). `NotFound` if someone else removed it first.
    pub fn delete(self) -> Result<(), PendingError> {
        if !self.locked {
            flock(&self.file, true).map_err(io_err("locking", &self.path))?;
            let meta = self.file.metadata().map_err(io_err("reading", &self.path))?;
            if !same_file(&self.path, &meta) {
                return Err(PendingError::NotFound(self.id));
            }
        }
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(PendingError::NotFound(self.id)),
            Err(e) => return Err(io_err("removing", &self.path)(e)),
        }
        fsync_dir(&self.path).map_err(io_err("syncing the directory of", &self.path))
    }
}

/// A stored message's body, read from the file as it is consumed.
#[derive(Debug)]
pub struct Body<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos).min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Open a message file for reading: never through a symbolic link, never blocking on
/// a FIFO planted in the queue.
fn open_message(id: MessageId, path: &Path) -> Result<File, PendingError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => PendingError::NotFound(id),
            _ if e.raw_os_error() == Some(libc::ELOOP) => PendingError::Symlink {
                path: path.to_path_buf(),
            },
            _ => io_err("opening", path)(e),
        })
}

/// Add the messages in `dir` to `out` (only those with id `only`, if given).
fn scan(dir: &Path, suffix: Option<&[u8]>, only: Option<MessageId>, out: &mut Vec<Entry>) -> Result<(), PendingError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("reading", dir)(e)),
    };
    let prefix = only.map(|id| format!("{id}."));
    for e in rd {
        let e = e.map_err(io_err("reading", dir))?;
        let name = e.file_name();
        let name = name.as_bytes();
        if let Some(p) = &prefix
            && !name.starts_with(p.as_bytes())
        {
            continue;
        }
        let Some(id) = MessageId::from_file_name(name, suffix) else {
            continue;
        };
        if only.is_some_and(|o| o != id) || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        out.push(Entry {
            id,
            path: dir.join(e.file_name()),
        });
    }
    Ok(())
}

/// Is there a regular file (not a link to one) at `path`?
fn is_file(path: &Path) -> Result<bool, PendingError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.is_file()),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(io_err("reading", path)(e)),
    }
}

/// Is the file at `path` the one `meta` describes?
fn same_file(path: &Path, meta: &fs::Metadata) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// The machine's name, as Python's `socket.gethostname()`.
fn hostname() -> String {
    crate::os::hostname().unwrap_or_else(|| "localhost".into())
}

/// A host name fit for a Maildir file name: `/` and `:` (and anything unprintable)
/// as `\ooo`, the Maildir convention; `localhost` if empty.
fn maildir_host(host: &str) -> String {
    let mut out = String::with_capacity(host.len());
    for c in host.chars() {
        match c {
            '/' | ':' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c if c.is_control() || c.is_whitespace() => {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    out.push_str(&format!("\\{byte:03o}"));
                }
            }
            c => out.push(c),
        }
    }
    if out.is_empty() { "localhost".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    /// The input of the spec's verified example (§5.1).
    const INPUT_HEADER: &str = "Return-Path: <alice@example.org>\n\
    Delivered-To: testuser@nowhere.com\n\
    From: Alice <alice@example.org>\n\
    To: testuser@nowhere.com\n\
    Subject: hello there\n\
    Message-ID: <1@example.org>\n\
    Date: Sat, 05 Dec 2026 22:38:53 +0000\n";

    fn id(text: &str) -> MessageId {
        text.parse().unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn body_of(s: &Stored) -> Vec<u8> {
        let mut v = vec![];
        s.body().read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn original_format_stores_the_spec_example_byte_for_byte() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("home/.tmda/pending");
        let q = Queue::new(&dir, Format::Original);
        assert!(!q.exists());
        let body = b"body line\n\xff\xfe 8bit stays\r\n".to_vec();
        let e = q
            .insert(
                id("1159377144.3747"),
                "testuser@nowhere.com",
                INPUT_HEADER.as_bytes(),
                &body[..],
            )
            .unwrap();
        assert_eq!(e.path, dir.join("1159377144.3747.msg"));
        let mut want = INPUT_HEADER.as_bytes().to_vec();
        want.extend_from_slice(b"X-TMDA-Recipient: testuser@nowhere.com\n\n");
        want.extend_from_slice(&body);
        assert_eq!(fs::read(&e.path).unwrap(), want);
        assert_eq!(mode(&e.path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(names(&dir), ["1159377144.3747.msg"], "no temporary file left");
    }

    #[test]
    fn maildir_format_links_from_tmp_to_new() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path().join("pending"), Format::Maildir).with_host("mx.example.org");
        let e = q
            .insert(
                id("1796519123.2385"),
                "testuser@nowhere.com",
                INPUT_HEADER.as_bytes(),
                &b"hi\n"[..],
            )
            .unwrap();
        assert_eq!(e.path, d.path().join("pending/new/1796519123.2385.mx.example.org"));
        for sub in ["", "tmp", "new", "cur"] {
            assert_eq!(mode(&d.path().join("pending").join(sub)), 0o700, "{sub}");
        }
        assert!(names(&d.path().join("pending/tmp")).is_empty());
        assert_eq!(mode(&e.path), 0o600);
        let text = fs::read_to_string(&e.path).unwrap();
        assert!(
            text.ends_with("Date: Sat, 05 Dec 2026 22:38:53 +0000\nX-TMDA-Recipient: testuser@nowhere.com\n\nhi\n")
        );
    }

    #[test]
    fn an_old_recipient_field_is_replaced_and_line_endings_kept() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        let header = b"X-TMDA-Recipient: forged@evil\r\nSubject: s\r\nx-tmda-recipient: again@evil\r\n\r\n";
        let e = q.insert(id("1.2"), " me@x.org ", header, &b"b\r\n"[..]).unwrap();
        assert_eq!(
            fs::read(&e.path).unwrap(),
            b"Subject: s\r\nX-TMDA-Recipient: me@x.org\r\n\r\nb\r\n"
        );
    }

    #[test]
    fn a_header_with_a_line_that_is_no_field_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        for bad in [
            &b"A: 1\nno field\nB: 2\n"[..],
            b"A: 1\n\nbody\n",
            b" A: 1\n",
            b"A: 1\r\n\r\n\r\n",
        ] {
            let e = q.insert(id("1.2"), "a@x", bad, &b""[..]).unwrap_err();
            assert!(matches!(e, PendingError::BadHeader(_)), "{e}");
        }
        assert!(q.list().unwrap().is_empty());
        for good in [
            &b"A: 1\n"[..],
            b"A: 1\n\n",
            b"A: 1\r\n\r\n",
            b"",
            b"\n",
            b"From x\nA: 1\n",
        ] {
            let e = q.insert(id("1.2"), "a@x", good, &b""[..]).unwrap();
            fs::remove_file(e.path).unwrap();
        }
    }

    #[test]
    fn hostile_recipients_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        for r in ["", "  ", "a@x\nBcc: evil@y", "a@x\0"] {
            let e = q.insert(id("1.2"), r, b"S: x\n", &b""[..]).unwrap_err();
            assert!(matches!(e, PendingError::BadRecipient(_)), "{e}");
        }
        assert!(q.list().unwrap().is_empty());
    }

    #[test]
    fn insert_message_streams_a_spooled_message() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Maildir).with_host("h");
        let mut raw = b"From alice Mon Jan 1\nSubject: big\n\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', crate::message::SPOOL_MEM + 10));
        let msg = Message::from_vec(raw.clone()).unwrap();
        assert!(!msg.in_memory());
        let e = q.insert_message(id("5.6"), "me@x", &msg).unwrap();
        let stored = fs::read(&e.path).unwrap();
        assert!(stored.starts_with(b"Subject: big\nX-TMDA-Recipient: me@x\n\nxxx"));
        assert_eq!(
            stored.len(),
            raw.len() - "From alice Mon Jan 1\n".len() + "X-TMDA-Recipient: me@x\n".len()
        );
    }

    #[test]
    fn an_existing_id_is_refused_in_both_formats() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path().join("o"), Format::Original);
        q.insert(id("7.8"), "a@x", b"S: 1\n", &b"one\n"[..]).unwrap();
        let e = q.insert(id("7.8"), "a@x", b"S: 2\n", &b"two\n"[..]).unwrap_err();
        assert!(matches!(e, PendingError::Exists(_)), "{e}");
        assert_eq!(e.to_string(), "pending message 7.8 already exists");
        assert!(
            fs::read_to_string(d.path().join("o/7.8.msg"))
                .unwrap()
                .ends_with("one\n")
        );
        assert_eq!(names(&d.path().join("o")), ["7.8.msg"]);

        // Maildir: the same id under another host, or already read (cur/), counts too.
        let q = Queue::new(d.path().join("m"), Format::Maildir).with_host("here");
        q.create().unwrap();
        fs::write(d.path().join("m/cur/7.8.elsewhere:2,S"), "S: 0\n\n").unwrap();
        let e = q.insert(id("7.8"), "a@x", b"S: 1\n", &b""[..]).unwrap_err();
        assert!(matches!(e, PendingError::Exists(_)), "{e}");
        assert!(names(&d.path().join("m/new")).is_empty());
        assert!(names(&d.path().join("m/tmp")).is_empty());
    }

    /// A body that fails half-way leaves nothing behind: no message, no temporary file.
    #[test]
    fn a_failed_insert_leaves_no_half_message() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("connection lost"));
                }
                let n = buf.len().min(self.0).min(1000);
                buf[..n].fill(b'x');
                self.0 -= n;
                Ok(n)
            }
        }
        let d = tempfile::tempdir().unwrap();
        for format in [Format::Original, Format::Maildir] {
            let dir = d.path().join(format!("{format:?}"));
            let q = Queue::new(&dir, format);
            let e = q.insert(id("9.9"), "a@x", b"S: x\n", Failing(100_000)).unwrap_err();
            assert!(e.to_string().contains("connection lost"), "{e}");
            assert!(e.is_transient());
            assert!(q.list().unwrap().is_empty());
            match format {
                Format::Original => assert!(names(&dir).is_empty(), "{:?}", names(&dir)),
                Format::Maildir => {
                    for sub in ["tmp", "new", "cur"] {
                        assert!(names(&dir.join(sub)).is_empty(), "{sub}");
                    }
                }
            }
            // The id is free again.
            q.insert(id("9.9"), "a@x", b"S: x\n", &b""[..]).unwrap();
        }
    }

    /// See: Q22. TMDA's Maildir lookup matched substrings.
    #[test]
    fn find_is_exact() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Maildir).with_host("h");
        q.create().unwrap();
        fs::write(d.path().join("new/1700000000.123.h"), "S: x\n\n").unwrap();
        fs::write(d.path().join("cur/1700000000.45.other.host:2,S"), "S: y\n\n").unwrap();
        assert_eq!(q.find(id("1700000000.12")).unwrap(), None);
        assert_eq!(q.find(id("1700000000.1")).unwrap(), None);
        assert_eq!(q.find(id("700000000.123")).unwrap(), None);
        assert_eq!(
            q.find(id("1700000000.123")).unwrap().unwrap().path,
            d.path().join("new/1700000000.123.h")
        );
        assert_eq!(
            q.find(id("1700000000.45")).unwrap().unwrap().path,
            d.path().join("cur/1700000000.45.other.host:2,S")
        );
        assert!(matches!(q.open(id("1700000000.12")), Err(PendingError::NotFound(_))));

        let o = Queue::new(d.path().join("o"), Format::Original);
        o.create().unwrap();
        fs::write(d.path().join("o/1700000000.123.msg"), "S: x\n\n").unwrap();
        assert_eq!(o.find(id("1700000000.12")).unwrap(), None);
        assert!(o.find(id("1700000000.123")).unwrap().is_some());
    }

    #[test]
    fn listing_sorts_by_time_and_skips_what_is_not_a_message() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        assert!(q.list().unwrap().is_empty(), "a missing queue is empty");
        for name in [
            "1700000000.100.msg",
            "1700000000.99.msg",
            "999999999.5.msg",
            "2100000000.1.msg",
            ".tmp.1.2.3.4",
            "x.y.msg",
            "1.2.msg.bak",
            "01.2.msg",
            "notes",
        ] {
            fs::write(d.path().join(name), "S: x\n\n").unwrap();
        }
        fs::create_dir(d.path().join("3.4.msg")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("5.6.msg")).unwrap();
        let ids: Vec<String> = q.list().unwrap().iter().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, ["999999999.5", "1700000000.99", "1700000000.100", "2100000000.1"]);
        assert!(
            matches!(q.open(id("5.6")), Err(PendingError::NotFound(_))),
            "a symlink is no message"
        );
    }

    #[test]
    fn maildir_listing_covers_new_and_cur_once_each() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Maildir).with_host("h");
        q.create().unwrap();
        fs::write(d.path().join("new/3.1.h"), "S: new\n\n").unwrap();
        fs::write(d.path().join("cur/3.1.h:2,S"), "S: cur\n\n").unwrap();
        fs::write(d.path().join("cur/2.1.other"), "S: x\n\n").unwrap();
        fs::write(d.path().join("cur/2.1"), "S: no host\n\n").unwrap();
        fs::write(d.path().join("tmp/1.1.h"), "S: in progress\n\n").unwrap();
        let l = q.list().unwrap();
        let ids: Vec<String> = l.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, ["2.1", "3.1"]);
        assert_eq!(l[1].path, d.path().join("new/3.1.h"));
    }

    #[test]
    fn open_reads_the_header_and_streams_the_body() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        let body = b"Delivered-To: in the body\n\n\xff\n".to_vec();
        q.insert(id("10.20"), "me@x.org", INPUT_HEADER.as_bytes(), &body[..])
            .unwrap();
        let s = q.open(id("10.20")).unwrap();
        assert_eq!(s.id(), id("10.20"));
        assert!(!s.is_locked());
        assert_eq!(s.size(), fs::metadata(s.path()).unwrap().len());
        assert_eq!(s.return_path(), "alice@example.org");
        assert_eq!(s.recipient().as_deref(), Some("me@x.org"));
        assert_eq!(s.header().get("subject").as_deref(), Some("hello there"));
        let mut want = INPUT_HEADER.as_bytes().to_vec();
        want.extend_from_slice(b"X-TMDA-Recipient: me@x.org\n");
        assert_eq!(s.header_bytes(), want);
        assert_eq!(body_of(&s), body);
        // Small reads walk the body in pieces.
        let mut b = s.body();
        let mut one = [0u8; 1];
        assert_eq!(b.read(&mut one).unwrap(), 1);
        assert_eq!(one[0], b'D');
    }

    #[test]
    fn headers_that_end_oddly() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        q.create().unwrap();
        for (name, text, fields, body) in [
            (
                "1.1.msg",
                "S: 1\nX-TMDA-Recipient: a@x",
                "S: 1\nX-TMDA-Recipient: a@x",
                "",
            ),
            ("1.2.msg", "S: 1\nnot a field\nmore\n", "S: 1\n", "not a field\nmore\n"),
            ("1.3.msg", "", "", ""),
            ("1.4.msg", "From x\nS: 1\n\nb", "S: 1\n", "b"),
        ] {
            fs::write(d.path().join(name), text).unwrap();
            let s = q
                .open(MessageId::from_file_name(name.as_bytes(), Some(b"msg")).unwrap())
                .unwrap();
            assert_eq!(s.header_bytes(), fields.as_bytes(), "{name}");
            assert_eq!(body_of(&s), body.as_bytes(), "{name}");
        }
    }

    #[test]
    fn a_header_spanning_many_reads_and_one_too_large() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        q.create().unwrap();
        let long: String = (0..5000).map(|i| format!("X-F{i}: value {i}\n")).collect();
        fs::write(d.path().join("1.1.msg"), format!("{long}\nbody\n")).unwrap();
        let s = q.open(id("1.1")).unwrap();
        assert_eq!(s.header_bytes(), long.as_bytes());
        assert_eq!(body_of(&s), b"body\n");

        // What `crate::message` accepts, plus the field we add, is readable.
        let biggest = "X-Big: ".to_string() + &"y".repeat(HEADER_MAX) + "\n";
        let q2 = Queue::new(d.path().join("q2"), Format::Original);
        q2.insert(id("1.3"), "me@x", biggest.as_bytes(), &b"b"[..]).unwrap();
        assert_eq!(body_of(&q2.open(id("1.3")).unwrap()), b"b");

        // A header past the limit (TMDA held any size) is read as far as it goes, whole
        // fields only; the rest is the start of the body.
        let huge = "From: a@b\nX-Big: ".to_string() + &"y".repeat(HEADER_LIMIT + 10) + "\n\nbody";
        fs::write(d.path().join("1.2.msg"), &huge).unwrap();
        let s = q.open(id("1.2")).unwrap();
        assert_eq!(s.header_bytes(), b"From: a@b\n");
        assert_eq!(body_of(&s), &huge.as_bytes()["From: a@b\n".len()..]);
    }

    #[test]
    fn planted_fifos_and_symlinks_are_not_opened() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        q.create().unwrap();
        let fifo = d.path().join("1.1.msg");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = Entry {
            id: id("1.1"),
            path: fifo,
        }
        .open()
        .unwrap_err();
        assert!(matches!(e, PendingError::NotRegular { .. }), "{e}");
        let link = d.path().join("1.2.msg");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let e = Entry {
            id: id("1.2"),
            path: link,
        }
        .open()
        .unwrap_err();
        assert!(matches!(e, PendingError::Symlink { .. }), "{e}");
    }

    /// Two releasers at once: the second waits, then finds the message gone, so it is
    /// delivered once.
    #[test]
    fn the_lock_makes_a_release_happen_once() {
        let d = tempfile::tempdir().unwrap();
        for format in [Format::Original, Format::Maildir] {
            let q = Queue::new(d.path().join(format!("{format:?}")), format);
            q.insert(id("1.1"), "a@x", b"S: x\n", &b""[..]).unwrap();
            let first = q.lock(id("1.1")).unwrap();
            assert!(first.is_locked());
            let e = q.try_lock(id("1.1")).unwrap_err();
            assert!(matches!(e, PendingError::Locked(_)), "{e}");
            assert!(e.is_transient());
            let q2 = q.clone();
            let second = std::thread::spawn(move || q2.lock(id("1.1")).map(|s| s.id()));
            std::thread::sleep(Duration::from_millis(100));
            assert!(!second.is_finished(), "the second releaser must wait");
            first.delete().unwrap();
            let e = second.join().unwrap().unwrap_err();
            assert!(matches!(e, PendingError::NotFound(_)), "{e}");
            assert!(q.list().unwrap().is_empty());
        }
    }

    #[test]
    fn a_lock_follows_a_message_a_mail_reader_moved() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Maildir).with_host("h");
        q.insert(id("1.1"), "a@x", b"S: x\n", &b""[..]).unwrap();
        let entry = q.find(id("1.1")).unwrap().unwrap();
        fs::rename(&entry.path, d.path().join("cur/1.1.h:2,S")).unwrap();
        let (_, path) = q.lock_entry(&entry, true).unwrap();
        assert_eq!(path, d.path().join("cur/1.1.h:2,S"));
    }

    #[test]
    fn delete_unlocked_handle_and_twice() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        q.insert(id("1.1"), "a@x", b"S: x\n", &b""[..]).unwrap();
        q.insert(id("1.2"), "a@x", b"S: x\n", &b""[..]).unwrap();
        let s = q.open(id("1.1")).unwrap();
        q.delete(id("1.1")).unwrap();
        assert!(matches!(s.delete(), Err(PendingError::NotFound(_))));
        assert!(matches!(q.delete(id("1.1")), Err(PendingError::NotFound(_))));
        q.open(id("1.2")).unwrap().delete().unwrap();
        assert!(names(d.path()).is_empty());
    }

    #[test]
    fn cleanup_removes_expired_messages_and_reports_their_senders() {
        let d = tempfile::tempdir().unwrap();
        for format in [Format::Original, Format::Maildir] {
            let q = Queue::new(d.path().join(format!("{format:?}")), format);
            let now = 1_000_000;
            let day = 86_400;
            let msgs = [
                ("900000.1", Some("Return-Path: <old@x.org>\n")),
                ("913600.2", Some("Return-Path: <>\n")), // exactly one lifetime old: goes, as in TMDA
                ("913601.3", Some("Return-Path: <young@x.org>\n")),
                ("800000.4", None),
                ("800000.5", Some("Return-Path: <busy@x.org>\n")),
            ];
            for (i, rp) in msgs {
                q.insert(id(i), "a@x", rp.unwrap_or("S: x\n").as_bytes(), &b"b\n"[..])
                    .unwrap();
            }
            let busy = q.lock(id("800000.5")).unwrap();
            let r = q.cleanup(day, now).unwrap();
            let removed: Vec<(String, String)> = r
                .removed
                .iter()
                .map(|r| (r.id.to_string(), r.return_path.clone()))
                .collect();
            assert_eq!(
                removed,
                [
                    ("800000.4".to_string(), String::new()),
                    ("900000.1".to_string(), "old@x.org".to_string()),
                    ("913600.2".to_string(), String::new()),
                ]
            );
            assert_eq!(r.busy, [id("800000.5")]);
            assert!(r.failures.is_empty(), "{:?}", r.failures);
            let left: Vec<String> = q.list().unwrap().iter().map(|e| e.id.to_string()).collect();
            assert_eq!(left, ["800000.5", "913601.3"]);
            drop(busy);
            // A lifetime longer than the epoch's age removes nothing.
            assert!(q.cleanup(now + 1, now).unwrap().removed.is_empty());
        }
        // A missing queue is nothing to clean.
        let r = Queue::new(d.path().join("none"), Format::Original)
            .cleanup(1, 10)
            .unwrap();
        assert!(r.removed.is_empty() && r.failures.is_empty());
    }

    #[test]
    fn cleanup_removes_an_expired_message_with_a_huge_header_and_old_temp_files() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        q.create().unwrap();
        let huge = "X-Big: ".to_string() + &"y".repeat(HEADER_LIMIT + 10);
        fs::write(d.path().join("5.5.msg"), huge).unwrap();
        fs::write(d.path().join(".tmp.6.6.1.2"), "half").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // A fresh temporary file may belong to an insertion in progress: kept.
        let r = q.cleanup(10, now).unwrap();
        assert_eq!(
            r.removed,
            [Removed {
                id: id("5.5"),
                return_path: String::new()
            }]
        );
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        assert_eq!(names(d.path()), [".tmp.6.6.1.2"]);
        let r = q.cleanup(10, now + STALE_TEMP_SECS + 5).unwrap();
        assert!(r.failures.is_empty());
        assert!(names(d.path()).is_empty());
    }

    #[test]
    fn maildir_host_names_are_escaped() {
        assert_eq!(maildir_host("mx.example.org"), "mx.example.org");
        assert_eq!(maildir_host("a/b:c"), "a\\057b\\072c");
        assert_eq!(maildir_host("a b\n"), "a\\040b\\012");
        assert_eq!(maildir_host(""), "localhost");
        assert!(!hostname().is_empty());
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Maildir).with_host("../../x");
        let e = q.insert(id("1.1"), "a@x", b"S: x\n", &b""[..]).unwrap();
        assert_eq!(e.path, d.path().join("new/1.1...\\057..\\057x"));
    }

    /// The bar: listing 10,000 held messages in terse form (id, sender, subject)
    /// well under half a second. One readdir and a header read per message.
    #[test]
    fn listing_ten_thousand_messages_is_fast() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::new(d.path(), Format::Original);
        q.create().unwrap();
        let body = "line of body text\n".repeat(200);
        for i in 0..10_000 {
            fs::write(
                d.path().join(format!("1700000000.{i}.msg")),
                format!(
                    "Return-Path: <s{i}@x.org>\nReceived: from a by b\nFrom: Sender {i} <s{i}@x.org>\n\
                 To: me@x.org\nSubject: message {i}\nX-TMDA-Recipient: me@x.org\n\n{body}"
                ),
            )
            .unwrap();
        }
        let start = Instant::now();
        let mut lines = 0;
        for e in q.list().unwrap() {
            let s = e.open().unwrap();
            let from = s.header().get("from").unwrap_or_default();
            let subject = s.header().get("subject").unwrap_or_default();
            lines += usize::from(!from.is_empty() && !subject.is_empty() && s.size() > 0);
        }
        let took = start.elapsed();
        eprintln!("listing took {took:?}");
        assert_eq!(lines, 10_000);
        // Unoptimised test builds on a shared machine get slack; release builds take ~50 ms.
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }
}
