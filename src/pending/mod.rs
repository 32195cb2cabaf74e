//! TMDA's pending queue: where `tmda filter` holds a message from an unknown sender
//! until it is confirmed, released, deleted or expires; shared with `tmda pending` and
//! with TMDA's own Python tools, so both formats and their file names are TMDA's.
//!
//! * [`Queue`]: one queue directory in either [`Format`]: insert (streamed, durable),
//!   list, find, open (header read, body streamed), lock, delete, cleanup.
//! * [`MessageId`]: `TIMESTAMP.PID`, strictly parsed.
//! * [`release()`]: the header rewriting of a release, a pure function.
//! * [`append_address`]: adding a sender to an address list, locked and durable.
//!
//! Not here: configuration (callers pass `PENDING_DIR`, the format and lifetimes as
//! values), delivery and sending (the caller streams [`Stored::body`] behind the
//! rewritten header), summaries' wording and RFC 2047 decoding (the CLI's).
//!
//! # Differences from TMDA (deliberate)
//! * Insertion is crash-safe in both formats: a temporary file (`O_EXCL`, mode 0600),
//!   fsynced, hard-linked into place (which refuses an existing id), the directory
//!   fsynced. TMDA wrote the original format with a plain `open` (mode from the umask,
//!   no fsync), so a crash could leave half a message under its final name.
//! * Messages are stored as received: TMDA re-serialises them through Python's `email`,
//!   which turns non-UTF-8 body bytes into U+FFFD, RFC 2047-encodes 8-bit header values
//!   and normalises the space after each field name (spec §5.3, Q23). Only the
//!   `X-TMDA-Recipient` field is added (any present before is removed).
//! * Ids are found exactly: TMDA's Maildir lookup matched substrings, so `T.12` found
//!   `T.123.host` (Q22). Ids in the Maildir format are also found when their time stamp
//!   does not start with `1` (TMDA's glob sees only those, until 2033).
//! * Listing sorts ids by time, then process id, as numbers (TMDA: as strings).
//! * A message is locked (`flock`) while it is released or deleted, so two releasers
//!   deliver it once; cleanup skips a locked message instead of pulling it away.
//! * In Maildir names, `/` and `:` in the host name are written `\057` and `\072`
//!   (the Maildir convention; TMDA wrote them raw, which can fail or mislead a reader).

mod append;
mod id;
mod queue;
mod release;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::exit::{Sysexit, describe_io, io_exit_code, quote};

pub use append::{append_address, is_listed};
pub use id::{IdError, MessageId};
pub use queue::{Body, Cleanup, CleanupFailure, Entry, Queue, Removed, Stored};
pub use release::{Release, ReleaseError, ReleaseMode, release};

/// `PENDING_QUEUE_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `PENDING_DIR/TIMESTAMP.PID.msg` (TMDA's default).
    Original,
    /// `PENDING_DIR/{tmp,new,cur}/TIMESTAMP.PID.HOST`.
    Maildir,
}

impl Format {
    /// The configuration value, compared without regard to case as TMDA does.
    pub fn parse(value: &str) -> Result<Format, PendingError> {
        if value.eq_ignore_ascii_case("original") {
            Ok(Format::Original)
        } else if value.eq_ignore_ascii_case("maildir") {
            Ok(Format::Maildir)
        } else {
            Err(PendingError::UnknownFormat(value.to_string()))
        }
    }
}

impl std::str::FromStr for Format {
    type Err = PendingError;
    fn from_str(s: &str) -> Result<Format, PendingError> {
        Format::parse(s)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    #[error("unknown PENDING_QUEUE_FORMAT {}: it must be \"original\" or \"maildir\"", quote(.0))]
    UnknownFormat(String),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("pending message {0} already exists")]
    Exists(MessageId),
    #[error("pending message {0} not found")]
    NotFound(MessageId),
    #[error("pending message {0} is being handled by another process (it is locked)")]
    Locked(MessageId),
    #[error("{}: not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: is a symbolic link: refusing to follow it (point the setting at the file itself)", path.display())]
    Symlink { path: PathBuf },
    #[error("the message header has a line that is not a header field: {}", quote(.0))]
    BadHeader(String),
    #[error("the recipient address {} is not usable (empty, or with control characters)", quote(.0))]
    BadRecipient(String),
    #[error("the address {} can't be added to a list (it has control characters or white space)", quote(.0))]
    BadAddress(String),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error("{what} {}: {}", path.display(), describe_io(source))]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl PendingError {
    pub fn exit_code(&self) -> Sysexit {
        match self {
            PendingError::UnknownFormat(_) => Sysexit::Config,
            PendingError::Id(_)
            | PendingError::BadHeader(_)
            | PendingError::BadRecipient(_)
            | PendingError::BadAddress(_) => Sysexit::DataErr,
            PendingError::Release(_) => Sysexit::DataErr,
            PendingError::Exists(_) => Sysexit::CantCreat,
            PendingError::NotFound(_) => Sysexit::NoInput,
            PendingError::Locked(_) => Sysexit::TempFail,
            PendingError::NotRegular { .. } | PendingError::Symlink { .. } => Sysexit::NoPerm,
            PendingError::Io { source, .. } => io_exit_code(source),
        }
    }

    /// Worth trying again later (the MTA should keep the message).
    pub fn is_transient(&self) -> bool {
        match self {
            PendingError::Locked(_) => true,
            PendingError::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
            ),
            _ => false,
        }
    }
}

/// Wrap an I/O error with what we were doing and to which file.
pub(crate) fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PendingError + 'a {
    move |source| PendingError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// `flock(LOCK_EX)`, waiting or not. Not waiting on a held lock is `WouldBlock`.
pub(crate) fn flock(file: &File, wait: bool) -> io::Result<()> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: the descriptor is open for as long as `file` is borrowed.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// fsync the directory holding `path`, so a new or removed name survives a crash.
pub(crate) fn fsync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// fsync a directory itself.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_without_regard_to_case() {
        assert_eq!(Format::parse("original").unwrap(), Format::Original);
        assert_eq!(Format::parse("Maildir").unwrap(), Format::Maildir);
        assert_eq!("MAILDIR".parse::<Format>().unwrap(), Format::Maildir);
        for bad in ["", "mbox", "maildir ", "original\n"] {
            let e = Format::parse(bad).unwrap_err();
            assert!(matches!(e, PendingError::UnknownFormat(_)), "{e}");
            assert_eq!(e.exit_code(), Sysexit::Config);
        }
        assert_eq!(
            Format::parse("mbox").unwrap_err().to_string(),
            "unknown PENDING_QUEUE_FORMAT \"mbox\": it must be \"original\" or \"maildir\""
        );
    }

    #[test]
    fn errors_classify() {
        let id = MessageId::new(1, 2);
        assert!(PendingError::Locked(id).is_transient());
        assert!(!PendingError::NotFound(id).is_transient());
        let e = io_err("writing", Path::new("/q/x"))(io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(e.is_transient());
        assert_eq!(e.to_string(), "writing /q/x: no space left on device");
        let e = io_err("reading", Path::new("/q/x"))(io::Error::from_raw_os_error(libc::EACCES));
        assert!(!e.is_transient());
        assert_eq!(e.exit_code(), Sysexit::NoPerm);
    }
}
