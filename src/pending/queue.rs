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

use super::block;
use super::release::{Release, ReleaseMode, release};
use super::{Format, MessageId, PendingError, flock, fsync_dir, io_err, sync_dir};

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
                Some(_) => {
                    return Err(PendingError::HeaderTooLarge {
                        path: path.to_path_buf(),
                    });
                }
                None => {}
            }
            if buf.len() > HEADER_LIMIT {
                return Err(PendingError::HeaderTooLarge {
                    path: path.to_path_buf(),
                });
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

    /// Hold a message: store `header` (fields, optionally followed by the empty line
    /// and more, which are ignored) and the body read from `body`, streamed, with
    /// `X-TMDA-Recipient: <recipient>` as the last field. Refuses an id already queued.
    pub fn insert(
        &self,
        id: MessageId,
        recipient: &str,
        header: &[u8],
        mut body: impl Read,
    ) -> Result<Entry, PendingError> {
        let (header, _) = block::parse(header);
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
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for `buf.len()` bytes; gethostname writes at most that many.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
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
mod tests;
