//! Local delivery for the incoming side (`tmda filter`): TMDA's `DELIVERY` instruction and
//! a rule's `deliver=` option, carried out (JK `TMDA/Deliver.py`; spec
//! docs/design/incoming.md §8).
//!
//! The caller has decided what to deliver and rewritten the header; this module only puts
//! the bytes somewhere, and either succeeds with the copy safely on disk or fails with
//! nothing half-written. A message is streamed (header block bytes plus a reader for the
//! body), never held whole in memory: a 100 MB message costs a few hundred kilobytes.
//!
//! * [`Instruction::parse`] reads the instruction text (`~` takes the home given; only
//!   `~user` asks the password database).
//! * [`maildir::deliver`], [`mbox::deliver`] (mbox and MMDF), [`program::deliver`] and
//!   [`write_to`] (`_filter_`) do the work; [`deliver`] picks one by instruction.
//! * Forwarding (`&addr`) and qmail's `_qok_` are the caller's: they need its transport and
//!   its exit codes.
//!
//! The byte-level parts ([`mbox::FromQuoter`], [`mbox::default_from_line`],
//! [`maildir::tmp_name`], [`maildir::new_name`]) are pure functions, tested on their own.
//!
//! # Differences from TMDA (for the man page)
//!
//! 1. mbox and MMDF delivery work. The Python 3 ports compare bytes with text and refuse
//!    every mbox, even an empty one, so mail stays queued forever (spec Q12).
//! 2. Maildir delivery works; TMDA's Python 3 port crashes writing text to a binary file
//!    and leaves an empty file in `tmp/` (spec Q14).
//! 3. An mbox is locked with both an `fcntl` lock and a `FILE.lock` dot-lock, as Postfix's
//!    local delivery, procmail and mutt expect; TMDA took only `flock`, which none of them
//!    look at. When the dot-lock cannot be made because the directory is not writable (a
//!    spool such as `/var/mail` that only set-group-id helpers may write), the `fcntl` lock
//!    alone is used, as Postfix does for such files.
//! 4. Waiting for a lock is bounded (two minutes by default): past it the delivery fails
//!    temporarily (exit 75) and the MTA retries, where TMDA waited for ever. A dot-lock
//!    older than 500 seconds that no `tmda` holds is taken to be stale and removed
//!    (Postfix's `stale_lock_time`).
//! 5. A crash in the middle of an mbox append leaves no half message for long: the dot-lock
//!    records where the append began, and the next delivery, finding that lock with no
//!    process holding the mailbox, cuts the file back to that point before appending. (The
//!    MTA did not hear of success, so it delivers that message again.) TMDA left the half
//!    message in place for ever.
//! 6. An mbox that does not end with a newline gets one before the new `From ` line, so
//!    the new message never runs into the last line of the old one.
//! 7. Every line of the header block and body that begins with `From ` is quoted as
//!    `>From ` (mboxo, as TMDA); TMDA's Python left a header line beginning `From ` as it
//!    was, which readers take for the start of a new message.
//! 8. An mbox is refused if it is not a regular file, has more than one hard link, or is
//!    replaced while we wait for its lock (TMDA refused only symbolic links).
//! 9. Maildir: `tmp/`, `cur/` and `new/` must exist, as in TMDA, and the error names the
//!    missing one. The file in `new/` is made with `link`, never overwriting; the `new/`
//!    directory is synced before success, so the copy survives a power cut.
//! 10. A program (`|command`) that does not finish within the time limit is stopped, with
//!     everything it started, and the delivery fails temporarily. Its standard error (the
//!     last 2 KiB) is in the error message; its standard output is captured, up to 64 KiB,
//!     for the caller to print, as TMDA printed it. A program that exits 0 while the message
//!     is still being written to it fails the delivery, as in TMDA (whose pipe write then
//!     failed too); one that ends after the whole message fitted into the pipe succeeds.
//! 11. An instruction that is empty, or a bare `|`, `&` or `:` with nothing after it, is
//!     refused (TMDA crashed, or ran an empty command and so lost the message). `~user/...`
//!     naming no user is refused at once (TMDA went on to fail on a file named `~user`).
//!
//! Every failure exits 75 (temporary failure), as in TMDA: see [`Error::exit_code`].

pub mod fault;
mod instruction;
mod lock;
pub mod maildir;
pub mod mbox;
pub mod program;
#[cfg(test)]
mod tests;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exit::{Sysexit, describe_io, quote};

pub use instruction::Instruction;

/// One message to deliver: the header block as it is to be written (already rewritten by
/// the caller, ending with the blank line that separates it from the body), the body as a
/// stream, and the envelope `From ` line when the message came with one.
pub struct Message<'a> {
    pub header: &'a [u8],
    pub body: &'a mut dyn Read,
    /// The input's own `From ` line (with or without its line end), written before the
    /// header for mbox, MMDF and programs. `None`: `From nobody <date>`, as TMDA.
    pub from_line: Option<&'a [u8]>,
}

/// What the caller knows that a delivery needs; no environment is read here.
#[derive(Debug, Clone)]
pub struct Context {
    /// Seconds since the epoch (Maildir names, the default `From ` line).
    pub now: u64,
    /// This machine's name, as `gethostname()` gives it (Maildir names).
    pub hostname: String,
    /// Extra environment for a program (TMDA passes its own: SENDER, RECIPIENT, …).
    pub env: Vec<(String, String)>,
    pub mbox: mbox::Options,
    pub program: program::Options,
}

impl Context {
    pub fn new(now: u64, hostname: impl Into<String>) -> Context {
        let hostname = hostname.into();
        Context {
            now,
            env: vec![],
            mbox: mbox::Options::with_hostname(hostname.clone()),
            program: program::Options::default(),
            hostname,
        }
    }
}

/// What became of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// Stored in a Maildir: the file's path in `new/`.
    Maildir(PathBuf),
    /// Appended to this mbox or MMDF file.
    Mailbox(PathBuf),
    /// A program took it; what it wrote to its standard output (TMDA printed this).
    Program { stdout: Vec<u8> },
    /// Written to the given writer (`_filter_`).
    Written,
    /// Not delivered here: forward it to this address with the caller's transport.
    Forward(String),
    /// qmail's `_qok_`: nothing to write; the caller exits 0 so qmail goes on.
    QmailOk,
}

/// Carry out `instruction` (the message is not read for `Forward` and `QmailOk`).
/// `stdout` receives the message for `_filter_`.
pub fn deliver(
    instruction: &Instruction,
    msg: Message<'_>,
    cx: &Context,
    stdout: &mut dyn Write,
) -> Result<Delivered, Error> {
    match instruction {
        Instruction::Maildir(dir) => maildir::deliver(dir, msg, cx.now, &cx.hostname).map(Delivered::Maildir),
        Instruction::Mbox(path) => {
            mbox::deliver(path, mbox::Format::Mbox, msg, cx.now, &cx.mbox).map(|()| Delivered::Mailbox(path.clone()))
        }
        Instruction::Mmdf(path) => {
            mbox::deliver(path, mbox::Format::Mmdf, msg, cx.now, &cx.mbox).map(|()| Delivered::Mailbox(path.clone()))
        }
        Instruction::Program(command) => {
            program::deliver(command, msg, cx.now, &cx.env, &cx.program).map(|stdout| Delivered::Program { stdout })
        }
        Instruction::Stdout => write_to(stdout, msg).map(|()| Delivered::Written),
        Instruction::Forward(addr) => Ok(Delivered::Forward(addr.clone())),
        Instruction::Qok => Ok(Delivered::QmailOk),
    }
}

/// `_filter_`: the message as it is (no `From ` line, no quoting) to `out`.
pub fn write_to(out: &mut dyn Write, msg: Message<'_>) -> Result<(), Error> {
    let fail = |e: io::Error| Error::Io {
        path: PathBuf::from("standard output"),
        doing: "writing the message to",
        source: e,
    };
    out.write_all(msg.header).map_err(fail)?;
    pump(msg.body, |chunk| out.write_all(chunk))
        .map_err(|e| e.into_error(Path::new("standard output"), "writing the message to"))?;
    out.flush().map_err(fail)
}

/// Why a delivery failed. Each names the file or command and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("delivery instruction {} is not recognized", quote(.0))]
    Unrecognized(String),
    #[error("delivery instruction {}: {reason}", quote(.text))]
    BadInstruction { text: String, reason: &'static str },
    #[error("reading the message: {}", describe_io(.0))]
    Input(io::Error),
    #[error("{doing} {}: {}", shown(.path), describe_io(.source))]
    Io {
        path: PathBuf,
        doing: &'static str,
        source: io::Error,
    },
    #[error("{} does not exist", shown(.0))]
    Missing(PathBuf),
    #[error("{} is a symbolic link: refusing to deliver through it", shown(.0))]
    Symlink(PathBuf),
    #[error("{} is not a Maildir: it has no {missing}/ directory (create tmp, cur and new)", shown(.path))]
    NotMaildir { path: PathBuf, missing: &'static str },
    #[error("{} is not {what}", shown(.path))]
    NotMailbox { path: PathBuf, what: &'static str },
    #[error("{} is locked by another process ({how}, still held after {} seconds)", shown(.path), .waited.as_secs())]
    Locked {
        path: PathBuf,
        how: &'static str,
        waited: Duration,
    },
    #[error("{} was replaced while it was being locked", shown(.0))]
    Replaced(PathBuf),
    #[error("{} already exists", shown(.0))]
    Exists(PathBuf),
    #[error("the From_ line {} is not a single line beginning with \"From \"", quote(&String::from_utf8_lossy(.0)))]
    BadFromLine(Vec<u8>),
    #[error("command {}: {status}{}", quote(.command), if .stderr.is_empty() { String::new() } else { format!(" ({})", .stderr) })]
    Program {
        command: String,
        status: program::Status,
        /// The end of what it wrote to standard error, on one line.
        stderr: String,
    },
}

fn shown(path: &Path) -> String {
    quote(&path.display().to_string())
}

impl Error {
    /// Every failure is temporary (75), as in TMDA (spec §1.3): the MTA keeps the message
    /// and tries again, so a full disk, a held lock, a typo in `DELIVERY` or a failing
    /// program costs a delay, never the message. A bounce would send a stranger's mail
    /// back for a fault of our own configuration; nothing here is the sender's doing.
    pub fn exit_code(&self) -> Sysexit {
        match self {
            Error::Unrecognized(_)
            | Error::BadInstruction { .. }
            | Error::Input(_)
            | Error::Io { .. }
            | Error::Missing(_)
            | Error::Symlink(_)
            | Error::NotMaildir { .. }
            | Error::NotMailbox { .. }
            | Error::Locked { .. }
            | Error::Replaced(_)
            | Error::Exists(_)
            | Error::BadFromLine(_)
            | Error::Program { .. } => Sysexit::TempFail,
        }
    }
}

/// A failure while streaming: reading the body or writing the copy.
pub(crate) enum PumpError {
    Read(io::Error),
    Write(io::Error),
}

impl PumpError {
    fn into_error(self, path: &Path, doing: &'static str) -> Error {
        match self {
            PumpError::Read(e) => Error::Input(e),
            PumpError::Write(e) => Error::Io {
                path: path.to_path_buf(),
                doing,
                source: e,
            },
        }
    }
}

/// How much of the body is read at a time.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Read `body` to its end in chunks, handing each to `write`.
pub(crate) fn pump(body: &mut dyn Read, mut write: impl FnMut(&[u8]) -> io::Result<()>) -> Result<(), PumpError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError::Read(e)),
        };
        write(&buf[..n]).map_err(PumpError::Write)?;
    }
}

/// The `From ` line to write: the caller's (checked to be one line beginning `From `),
/// else TMDA's default. Always ends with a single `\n`.
pub(crate) fn from_line(given: Option<&[u8]>, now: u64) -> Result<Vec<u8>, Error> {
    let Some(line) = given else {
        return Ok(mbox::default_from_line(now));
    };
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    // A line end inside would start a forged message in an mbox.
    if !body.starts_with(b"From ") || body.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(Error::BadFromLine(line.to_vec()));
    }
    let mut out = body.to_vec();
    out.push(b'\n');
    Ok(out)
}

/// Open a directory (for fsync), failing with its name.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            doing: "syncing the directory",
            source: e,
        })
}
