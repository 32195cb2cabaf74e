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

impl Options {
    /// The defaults, with this machine's name as `hostname`.
    pub fn with_hostname(hostname: String) -> Options {
        Options {
            lock_timeout: Duration::from_secs(120),
            stale_after: Duration::from_secs(500),
            hostname,
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::with_hostname(crate::os::hostname().unwrap_or_default())
    }
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
    let mut locked = lock::lock(
        path,
        &opts.hostname,
        opts.lock_timeout,
        opts.stale_after,
        format.magic(),
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn opts() -> Options {
        Options {
            lock_timeout: Duration::from_millis(300),
            ..Options::default()
        }
    }

    /// The quoting done the simple way, on the whole text at once.
    fn quoted_whole(text: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        for line in text.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b"From ") {
                out.push(b'>');
            }
            out.extend_from_slice(line);
        }
        out
    }

    fn quote_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        let mut q = FromQuoter::new();
        let mut out = vec![];
        for c in chunks {
            q.feed(c, &mut out);
        }
        q.finish(&mut out);
        out
    }

    #[test]
    fn asctime_as_python_ctime() {
        // Expected values from `TZ=UTC python3 -c 'import time; print(time.ctime(N))'`.
        for (secs, want) in [
            (0, "Thu Jan  1 00:00:00 1970"),
            (951782400, "Tue Feb 29 00:00:00 2000"),
            (1700000000, "Tue Nov 14 22:13:20 2023"),
            (1073091934, "Sat Jan  3 01:05:34 2004"),
            (4102444799, "Thu Dec 31 23:59:59 2099"),
        ] {
            assert_eq!(Civil::from_unix(secs, 0).asctime(), want, "{secs}");
        }
        // An hour east of UTC, the first second of 1970 is one in the morning.
        assert_eq!(Civil::from_unix(0, 3600).asctime(), "Thu Jan  1 01:00:00 1970");
        assert_eq!(Civil::from_unix(-1, 0).asctime(), "Wed Dec 31 23:59:59 1969");
    }

    #[test]
    fn default_from_line_is_pythons_in_local_time() {
        // Python's email generator writes "From nobody " + time.ctime(); ask it.
        let now = 1700000000u64;
        let out = std::process::Command::new("python3")
            .args(["-c", &format!("import time; print('From nobody ' + time.ctime({now}))")])
            .output()
            .expect("python3 is needed for this test");
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&default_from_line(now)),
            String::from_utf8_lossy(&out.stdout)
        );
    }

    #[test]
    fn quoting_table() {
        for (input, want) in [
            (&b""[..], &b""[..]),
            (b"From x\n", b">From x\n"),
            (b"From", b"From"),
            (b"From ", b">From "),
            (b"Fro\nFrom \n", b"Fro\n>From \n"),
            (b">From x\n", b">From x\n"),
            (b"from x\n", b"from x\n"),
            (b" From x\n", b" From x\n"),
            (
                b"a From x\nFrom\nFromage\nFrom  y\n",
                b"a From x\nFrom\nFromage\n>From  y\n",
            ),
            (b"\nFrom x\r\nFrom y", b"\n>From x\r\n>From y"),
            (b"FFrom x\n", b"FFrom x\n"),
            (b"FroFrom x\n", b"FroFrom x\n"),
        ] {
            assert_eq!(quote_chunks(&[input]), want, "{}", String::from_utf8_lossy(input));
            assert_eq!(
                quoted_whole(input),
                want,
                "reference: {}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn quoting_is_the_same_at_every_split_point() {
        let text: &[u8] = b"From a\nFrFrom b\nFrom\nFro\n\nFrom \n>From c\nx From d\nFrom e\r\nFrom";
        let want = quoted_whole(text);
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let got = quote_chunks(&[&text[..i], &text[i..j], &text[j..]]);
                assert_eq!(got, want, "split at {i} and {j}");
            }
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(quote_chunks(&bytes), want, "one byte at a time");
    }

    fn deliver_str(path: &Path, format: Format, from: Option<&str>, header: &str, body: &str) -> Result<(), Error> {
        let mut body = body.as_bytes();
        let msg = Message {
            header: header.as_bytes(),
            body: &mut body,
            from_line: from.map(str::as_bytes),
        };
        deliver(path, format, msg, 1073091934, &opts())
    }

    #[test]
    fn exact_bytes_of_two_appends() {
        // Expected bytes written by hand from the spec (§8; Python 2 TMDA's generator with
        // mangle_from_ and the unixfrom line, then "\n" for a missing final newline and one
        // empty line).
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        std::fs::write(&mbox, b"").unwrap();
        deliver_str(
            &mbox,
            Format::Mbox,
            Some("From alice@example.org Sat Jan  3 01:05:34 2004\n"),
            "From: alice@example.org\nSubject: hi\n\n",
            "Hello\nFrom the start\n>From kept\nFrom ",
        )
        .unwrap();
        let first = b"From alice@example.org Sat Jan  3 01:05:34 2004\n\
From: alice@example.org\n\
Subject: hi\n\
\n\
Hello\n\
>From the start\n\
>From kept\n\
>From \n\
\n";
        assert_eq!(
            String::from_utf8_lossy(&std::fs::read(&mbox).unwrap()),
            String::from_utf8_lossy(first)
        );
        // No From_ line given: TMDA's own; a body with its newline gets only the empty line.
        deliver_str(&mbox, Format::Mbox, None, "Subject: two\n\n", "body\n").unwrap();
        let mut both = first.to_vec();
        both.extend_from_slice(&default_from_line(1073091934));
        both.extend_from_slice(b"Subject: two\n\nbody\n\n");
        assert_eq!(std::fs::read(&mbox).unwrap(), both);
        assert!(!lock::lock_path(&mbox).exists(), "the dot-lock is gone");
    }

    #[test]
    fn exact_bytes_of_an_mmdf_append() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("mmdf");
        std::fs::write(&f, b"").unwrap();
        deliver_str(
            &f,
            Format::Mmdf,
            Some("From a@b Sat Jan  3 01:05:34 2004"),
            "S: x\n\n",
            "From me",
        )
        .unwrap();
        deliver_str(
            &f,
            Format::Mmdf,
            Some("From a@b Sat Jan  3 01:05:34 2004"),
            "S: y\n\n",
            "",
        )
        .unwrap();
        assert_eq!(
            std::fs::read(&f).unwrap(),
            b"\x01\x01\x01\x01\nFrom a@b Sat Jan  3 01:05:34 2004\nS: x\n\n>From me\n\n\x01\x01\x01\x01\n\
\x01\x01\x01\x01\nFrom a@b Sat Jan  3 01:05:34 2004\nS: y\n\n\n\x01\x01\x01\x01\n"
        );
    }

    #[test]
    fn an_mbox_without_a_final_newline_gets_one_first() {
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        std::fs::write(&mbox, b"From x Thu Jan  1 00:00:00 1970\nA: b\n\ncut").unwrap();
        deliver_str(
            &mbox,
            Format::Mbox,
            Some("From y Thu Jan  1 00:00:00 1970"),
            "C: d\n\n",
            "e\n",
        )
        .unwrap();
        assert_eq!(
            std::fs::read(&mbox).unwrap(),
            b"From x Thu Jan  1 00:00:00 1970\nA: b\n\ncut\nFrom y Thu Jan  1 00:00:00 1970\nC: d\n\ne\n\n"
        );
    }

    #[test]
    fn refusals() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        let shown = |n: &str| format!("\"{}\"", p(n).display());
        let try_ = |n: &str| {
            deliver_str(&p(n), Format::Mbox, None, "A: b\n\n", "x\n")
                .unwrap_err()
                .to_string()
        };

        assert_eq!(try_("missing"), format!("{} does not exist", shown("missing")));
        assert!(!p("missing").exists(), "an mbox is never created");

        std::fs::write(p("text"), b"not mail\n").unwrap();
        assert_eq!(
            try_("text"),
            format!(
                "{} is not an mbox file (it is not empty and does not begin with \"From \")",
                shown("text")
            )
        );
        assert_eq!(std::fs::read(p("text")).unwrap(), b"not mail\n");
        std::fs::write(p("mmdf"), b"From x\n").unwrap();
        assert!(
            deliver_str(&p("mmdf"), Format::Mmdf, None, "", "")
                .unwrap_err()
                .to_string()
                .contains("not an MMDF file")
        );

        std::fs::write(p("target"), b"").unwrap();
        std::os::unix::fs::symlink(p("target"), p("link")).unwrap();
        assert_eq!(
            try_("link"),
            format!("{} is a symbolic link: refusing to deliver through it", shown("link"))
        );
        assert_eq!(std::fs::read(p("target")).unwrap(), b"");

        std::fs::hard_link(p("target"), p("second")).unwrap();
        assert!(try_("second").contains("more than one hard link"));

        std::fs::create_dir(p("dir")).unwrap();
        assert!(!try_("dir").is_empty());

        let fifo = std::ffi::CString::new(p("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(try_("fifo"), format!("{} is not a regular file", shown("fifo")));

        let bad = deliver_str(&p("target"), Format::Mbox, Some("From x\nFrom y"), "", "").unwrap_err();
        assert!(matches!(bad, Error::BadFromLine(_)), "{bad}");
        assert!(!lock::lock_path(&p("target")).exists());
    }

    #[test]
    fn a_failed_read_cuts_the_file_back() {
        struct HalfThenFail(usize);
        impl std::io::Read for HalfThenFail {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("the pipe broke"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(b'x');
                self.0 -= n;
                Ok(n)
            }
        }
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        let old = b"From x Thu Jan  1 00:00:00 1970\n\nold\n\n";
        std::fs::write(&mbox, old).unwrap();
        let mut body = HalfThenFail(300_000);
        let msg = Message {
            header: b"A: b\n\n",
            body: &mut body,
            from_line: None,
        };
        let e = deliver(&mbox, Format::Mbox, msg, 1, &opts()).unwrap_err();
        assert_eq!(e.to_string(), "reading the message: the pipe broke");
        assert_eq!(std::fs::read(&mbox).unwrap(), old);
        assert!(!lock::lock_path(&mbox).exists());
    }

    #[test]
    fn the_access_time_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        std::fs::write(&mbox, b"").unwrap();
        let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(&mbox)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_accessed(long_ago))
            .unwrap();
        deliver_str(&mbox, Format::Mbox, None, "A: b\n\n", "x\n").unwrap();
        let m = std::fs::metadata(&mbox).unwrap();
        assert_eq!(m.atime(), 1_000_000_000);
        assert!(m.mtime() > 1_000_000_000);
    }

    #[test]
    fn a_fresh_foreign_dot_lock_is_waited_for_then_refused() {
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        std::fs::write(&mbox, b"").unwrap();
        std::fs::write(lock::lock_path(&mbox), b"12345\n").unwrap();
        let started = std::time::Instant::now();
        let e = deliver_str(&mbox, Format::Mbox, None, "A: b\n\n", "x\n").unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(
            matches!(
                e,
                Error::Locked {
                    how: "its dot-lock",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.exit_code(), crate::exit::Sysexit::TempFail);
        assert_eq!(std::fs::read(&mbox).unwrap(), b"");
        assert_eq!(
            std::fs::read(lock::lock_path(&mbox)).unwrap(),
            b"12345\n",
            "not ours to remove"
        );
    }

    #[test]
    fn a_stale_foreign_dot_lock_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        std::fs::write(&mbox, b"").unwrap();
        let lock = lock::lock_path(&mbox);
        std::fs::write(&lock, b"").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(501);
        std::fs::File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        deliver_str(&mbox, Format::Mbox, Some("From a"), "A: b\n\n", "x\n").unwrap();
        assert_eq!(std::fs::read(&mbox).unwrap(), b"From a\nA: b\n\nx\n\n");
        assert!(!lock.exists());
    }

    #[test]
    fn a_dead_tmdas_lock_is_cleared_and_its_half_append_cut_off() {
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        let old = b"From a\nA: b\n\nx\n\n";
        let mut content = old.to_vec();
        content.extend_from_slice(b"From nobody Thu Jan  1 00:00:00 1970\nSubject: half");
        std::fs::write(&mbox, &content).unwrap();
        let ino = std::fs::metadata(&mbox).unwrap().ino();
        let lock = lock::lock_path(&mbox);
        // A live pid (ours): only the missing fcntl lock tells that the writer is gone.
        std::fs::write(
            &lock,
            format!(
                "tmda {} {}\nappend {ino} {}\n",
                std::process::id(),
                opts().hostname,
                old.len()
            ),
        )
        .unwrap();
        deliver_str(&mbox, Format::Mbox, Some("From c"), "C: d\n\n", "y\n").unwrap();
        let mut want = old.to_vec();
        want.extend_from_slice(b"From c\nC: d\n\ny\n\n");
        assert_eq!(
            String::from_utf8_lossy(&std::fs::read(&mbox).unwrap()),
            String::from_utf8_lossy(&want)
        );
        assert!(!lock.exists());

        // A dead pid on this host, no append begun: removed at once, nothing cut.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(&lock, format!("tmda {dead} {}\n", opts().hostname)).unwrap();
        deliver_str(&mbox, Format::Mbox, Some("From e"), "", "z\n").unwrap();
        want.extend_from_slice(b"From e\nz\n\n");
        assert_eq!(std::fs::read(&mbox).unwrap(), want);

        // A note whose offset is not where one of our appends begins is not acted on.
        let len = std::fs::metadata(&mbox).unwrap().len();
        std::fs::write(&lock, format!("tmda 1 elsewhere\nappend {ino} {}\n", len - 3)).unwrap();
        deliver_str(&mbox, Format::Mbox, Some("From f"), "", "w\n").unwrap();
        want.extend_from_slice(b"From f\nw\n\n");
        assert_eq!(std::fs::read(&mbox).unwrap(), want);
    }

    #[test]
    fn an_fcntl_lock_held_elsewhere_is_waited_for_then_refused() {
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        std::fs::write(&mbox, b"").unwrap();
        let holder = std::fs::File::options().read(true).write(true).open(&mbox).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: plain data; a whole-file write lock on our own descriptor.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: a valid descriptor and a flock that lives across the call.
        assert_eq!(
            unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) },
            0
        );
        let e = deliver_str(&mbox, Format::Mbox, None, "A: b\n\n", "x\n").unwrap_err();
        assert!(
            matches!(
                e,
                Error::Locked {
                    how: "an fcntl lock",
                    ..
                }
            ),
            "{e}"
        );
        assert!(!lock::lock_path(&mbox).exists(), "our dot-lock was taken back");
        drop(holder);
        deliver_str(&mbox, Format::Mbox, Some("From a"), "", "x\n").unwrap();
        assert_eq!(std::fs::read(&mbox).unwrap(), b"From a\nx\n\n");
    }

    #[test]
    fn threads_appending_at_once_do_not_interleave() {
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        std::fs::write(&mbox, b"").unwrap();
        let o = Options {
            lock_timeout: Duration::from_secs(60),
            ..Options::default()
        };
        std::thread::scope(|s| {
            for t in 0..4 {
                let (mbox, o) = (&mbox, &o);
                s.spawn(move || {
                    for i in 0..20 {
                        let body = format!("{t}-{i}\n").repeat(2000);
                        let mut r = body.as_bytes();
                        let msg = Message {
                            header: b"A: b\n\n",
                            body: &mut r,
                            from_line: Some(b"From x"),
                        };
                        deliver(mbox, Format::Mbox, msg, 1, o).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&mbox).unwrap();
        let messages: Vec<&str> = text.split("From x\n").skip(1).collect();
        assert_eq!(messages.len(), 80);
        let mut seen = std::collections::BTreeSet::new();
        for m in messages {
            let body = m.strip_prefix("A: b\n\n").unwrap();
            let first = body.lines().next().unwrap().to_string();
            assert_eq!(
                body,
                format!("{}\n\n", format!("{first}\n").repeat(2000).trim_end()),
                "interleaved"
            );
            assert!(seen.insert(first));
        }
    }
}
