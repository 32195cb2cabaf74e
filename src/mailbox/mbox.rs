//! mbox and MMDF delivery (KG `Deliver.py` `__deliver_mbox`/`__deliver_mmdf`; spec §8, Q12,
//! Q37), with the locking of [`super::lock`].
//!
//! What an append writes, as Python 2 TMDA did:
//!
//! ```text
//! From nobody Sun Nov 22 03:04:42 2026      <- the input's From_ line, else this (local time)
//! Header: as given                          <- the header block, ending with its blank line
//!
//! body, where a line beginning "From " is written ">From " (mboxo; ">From " stays as it is)
//!                                           <- "\n" if the body did not end with one
//!                                           <- one empty line
//! ```
//!
//! MMDF wraps the same bytes in `^A^A^A^A\n` lines. On any error the file is cut back to its
//! old length; see [`super::lock`] for what happens after a crash.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use super::{Error, Message, fault, lock};

/// Which of the two single-file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mbox,
    Mmdf,
}

const MMDF_SEPARATOR: &[u8] = b"\x01\x01\x01\x01\n";

impl Format {
    /// How a file of this format begins (and so how each of our appends begins).
    fn magic(self) -> &'static [u8] {
        match self {
            Format::Mbox => b"From ",
            Format::Mmdf => MMDF_SEPARATOR,
        }
    }

    fn described(self) -> &'static str {
        match self {
            Format::Mbox => "an mbox file (it is not empty and does not begin with \"From \")",
            Format::Mmdf => "an MMDF file (it is not empty and does not begin with ^A^A^A^A)",
        }
    }
}

/// How long to wait, and when a lock is stale.
#[derive(Debug, Clone)]
pub struct Options {
    /// Give up (temporary failure, the MTA retries) when the mailbox stays locked this long.
    pub lock_timeout: Duration,
    /// A dot-lock not of ours older than this is removed (Postfix's `stale_lock_time`).
    pub stale_after: Duration,
    /// This machine's name, written into our dot-locks (see [`super::lock`]).
    pub hostname: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            lock_timeout: Duration::from_secs(120),
            stale_after: Duration::from_secs(500),
            hostname: system_hostname().unwrap_or_default(),
        }
    }
}

/// `gethostname()`, as TMDA's `socket.gethostname()`.
pub fn system_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// A time broken down into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday
    pub weekday: u32,
}

impl Civil {
    /// `secs` since the epoch, moved by `offset` seconds east of UTC (pure; Howard
    /// Hinnant's days-to-civil algorithm).
    pub fn from_unix(secs: i64, offset: i64) -> Civil {
        let t = secs.saturating_add(offset);
        let days = t.div_euclid(86_400);
        let rem = t.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// C's `asctime` without the newline, as Python's `time.ctime()`:
    /// `Sun Nov 22 03:04:42 2026`, the day of the month padded with a space.
    pub fn asctime(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{} {}{:3} {:02}:{:02}:{:02} {}",
            DAYS[(self.weekday % 7) as usize],
            MONTHS[((self.month + 11) % 12) as usize],
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.year
        )
    }
}

/// The local time zone's offset from UTC at `secs`, in seconds.
fn local_offset(secs: u64) -> i64 {
    let t = secs.min(i64::MAX as u64) as libc::time_t;
    // SAFETY: tm is plain data that localtime_r fills in; a null result is handled.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

/// TMDA's `From ` line for a message that came without one: `From nobody <ctime>\n`, in
/// local time (Python's email generator).
pub fn default_from_line(now: u64) -> Vec<u8> {
    let secs = now.min(i64::MAX as u64) as i64;
    from_line_at(Civil::from_unix(secs, local_offset(now)))
}

fn from_line_at(c: Civil) -> Vec<u8> {
    format!("From nobody {}\n", c.asctime()).into_bytes()
}

/// mboxo quoting, streamed: every line that begins with `From ` gets a `>` in front (a
/// line already beginning `>From ` is left alone, as TMDA's Python did). Chunks may be cut
/// anywhere, even inside `From `: the few bytes that might begin it wait for the next.
#[derive(Debug, Clone)]
pub struct FromQuoter {
    /// At the start of a line, and this many bytes of `From ` seen (and held back).
    at_start: Option<usize>,
}

impl Default for FromQuoter {
    fn default() -> Self {
        FromQuoter::new()
    }
}

impl FromQuoter {
    /// A quoter at the start of a line.
    pub fn new() -> FromQuoter {
        FromQuoter { at_start: Some(0) }
    }

    /// Append `chunk`, quoted, to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        const FROM: &[u8] = b"From ";
        out.reserve(chunk.len() + 16);
        while !chunk.is_empty() {
            if let Some(seen) = self.at_start {
                let want = &FROM[seen..];
                let n = want.len().min(chunk.len());
                if chunk[..n] == want[..n] {
                    if seen + n == FROM.len() {
                        out.extend_from_slice(b">From ");
                        self.at_start = None;
                    } else {
                        self.at_start = Some(seen + n);
                    }
                    chunk = &chunk[n..];
                    continue;
                }
                // Not "From ": give back what was held and read on as ordinary text.
                out.extend_from_slice(&FROM[..seen]);
                self.at_start = None;
            }
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    out.extend_from_slice(&chunk[..=i]);
                    chunk = &chunk[i + 1..];
                    self.at_start = Some(0);
                }
                None => {
                    out.extend_from_slice(chunk);
                    return;
                }
            }
        }
    }

    /// At the end: give back bytes held as a possible `From ` (an input ending in `Fro`).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some(seen) = self.at_start.take() {
            out.extend_from_slice(&b"From "[..seen]);
        }
        self.at_start = Some(0);
    }
}

/// Append `msg` to the mbox or MMDF file `path`, which must exist and be empty or of that
/// format. `now` makes the default `From ` line.
pub fn deliver(path: &Path, format: Format, msg: Message<'_>, now: u64, opts: &Options) -> Result<(), Error> {
    let from = super::from_line(msg.from_line, now)?;
    let mut locked = lock::lock(path, &opts.hostname, opts, format.magic())?;
    let io = |doing| {
        move |e| Error::Io {
            path: path.to_path_buf(),
            doing,
            source: e,
        }
    };
    let before = match locked.file.metadata() {
        Ok(m) => m,
        Err(e) => {
            locked.release();
            return Err(io("looking at")(e));
        }
    };
    let old_len = before.len();
    if let Err(e) = check_format(&locked.file, old_len, format, path) {
        locked.release();
        return Err(e);
    }
    if let Err(e) = locked.record_append(old_len) {
        locked.release();
        return Err(e);
    }
    fault::point("mbox-after-record");
    match append(&locked, old_len, &from, format, msg, path) {
        Ok(()) => {
            fault::point("mbox-after-fsync");
            // The access time as it was, so "new mail" shows (atime older than mtime), as TMDA.
            let _ = restore_atime(&locked.file, &before);
            locked.release();
            fault::point("mbox-after-unlock");
            Ok(())
        }
        Err(e) => {
            let undone = locked.file.set_len(old_len).and_then(|()| locked.file.sync_all());
            match undone {
                Ok(()) => locked.release(),
                // Leave the dot-lock and its note for the next delivery to cut back.
                Err(_) => locked.abandon(),
            }
            Err(e)
        }
    }
}

/// Put back the access time `before` had, leaving the new modification time.
fn restore_atime(file: &std::fs::File, before: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let times = [
        libc::timespec {
            tv_sec: before.atime() as libc::time_t,
            tv_nsec: before.atime_nsec() as _,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    ];
    // SAFETY: a valid descriptor and an array of two timespecs that lives across the call.
    if unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn check_format(file: &std::fs::File, len: u64, format: Format, path: &Path) -> Result<(), Error> {
    if len == 0 {
        return Ok(());
    }
    let magic = format.magic();
    let mut head = vec![0u8; magic.len().min(len as usize)];
    file.read_exact_at(&mut head, 0).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        doing: "reading",
        source: e,
    })?;
    if head != magic {
        return Err(Error::NotMailbox {
            path: path.to_path_buf(),
            what: format.described(),
        });
    }
    Ok(())
}

fn append(
    locked: &lock::Locked,
    old_len: u64,
    from: &[u8],
    format: Format,
    msg: Message<'_>,
    path: &Path,
) -> Result<(), Error> {
    let io = |doing| {
        move |e| Error::Io {
            path: path.to_path_buf(),
            doing,
            source: e,
        }
    };
    let mut file = &locked.file;
    let mut start = Vec::with_capacity(from.len() + 8);
    if old_len > 0 {
        let mut last = [0u8];
        file.read_exact_at(&mut last, old_len - 1).map_err(io("reading"))?;
        if last[0] != b'\n' {
            start.push(b'\n');
        }
    }
    file.seek(SeekFrom::Start(old_len)).map_err(io("writing"))?;
    if format == Format::Mmdf {
        start.extend_from_slice(MMDF_SEPARATOR);
    }
    start.extend_from_slice(from);
    let mut out = BufWriter::with_capacity(super::CHUNK, file);
    out.write_all(&start).map_err(io("writing"))?;
    let mut quoter = FromQuoter::new();
    let mut buf = Vec::with_capacity(super::CHUNK + 64);
    let mut last = b'\n';
    let mut emit = |buf: &mut Vec<u8>, out: &mut BufWriter<&std::fs::File>| -> std::io::Result<()> {
        if let Some(&b) = buf.last() {
            last = b;
        }
        out.write_all(buf)?;
        buf.clear();
        Ok(())
    };
    quoter.feed(msg.header, &mut buf);
    emit(&mut buf, &mut out).map_err(io("writing"))?;
    fault::point("mbox-mid-write");
    super::pump(msg.body, |chunk| {
        quoter.feed(chunk, &mut buf);
        emit(&mut buf, &mut out)?;
        locked.keep_fresh();
        Ok(())
    })
    .map_err(|e| e.into_error(path, "writing"))?;
    quoter.finish(&mut buf);
    emit(&mut buf, &mut out).map_err(io("writing"))?;
    let mut end = Vec::with_capacity(8);
    if last != b'\n' {
        end.push(b'\n');
    }
    end.push(b'\n');
    if format == Format::Mmdf {
        end.extend_from_slice(MMDF_SEPARATOR);
    }
    out.write_all(&end).map_err(io("writing"))?;
    out.flush().map_err(io("writing"))?;
    drop(out);
    fault::point("mbox-after-write");
    file.sync_all().map_err(io("syncing"))
}
