//! An outgoing message: a header block we may rewrite, and a body we never touch.
//!
//! The input is spooled as it is read: up to [`SPOOL_MEM`] bytes stay in memory,
//! anything larger goes to an unlinked temporary file, so a 100 MB message costs a
//! few megabytes of memory however many recipients it has. The header is parsed
//! from the start of the spool; the body is streamed from it on every send.

pub mod address;
pub mod block;
pub mod decode;
pub mod header;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

pub use header::{Eol, Header};

/// Messages up to this size are kept in memory.
pub const SPOOL_MEM: usize = 1 << 20;
/// The header block must end within this many bytes.
pub const HEADER_MAX: usize = 1 << 20;
const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the message is empty")]
    Empty,
    #[error("the message header is larger than {} bytes", HEADER_MAX)]
    HeaderTooLarge,
    #[error("reading the message: {0}")]
    Io(#[from] io::Error),
}

/// Where the raw bytes live.
#[derive(Debug)]
struct Spool {
    /// The whole message, or its first `SPOOL_MEM` bytes when it spilled to `file`.
    mem: Vec<u8>,
    file: Option<File>,
    len: u64,
}

impl Spool {
    fn read_from(mut r: impl Read) -> io::Result<Spool> {
        let mut mem = Vec::with_capacity(64 * 1024);
        (&mut r).take(SPOOL_MEM as u64 + 1).read_to_end(&mut mem)?;
        if mem.len() <= SPOOL_MEM {
            let len = mem.len() as u64;
            return Ok(Spool { mem, file: None, len });
        }
        let mut file = tempfile::tempfile()?;
        file.write_all(&mem)?;
        let rest = io::copy(&mut r, &mut file)?;
        let len = mem.len() as u64 + rest;
        mem.truncate(SPOOL_MEM);
        Ok(Spool {
            mem,
            file: Some(file),
            len,
        })
    }

    /// Call `f` with consecutive chunks of bytes `start..len`.
    fn for_each_chunk(&self, start: u64, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        match &self.file {
            None => f(&self.mem[start as usize..]),
            Some(file) => {
                let mut buf = vec![0u8; CHUNK];
                let mut pos = start;
                while pos < self.len {
                    let want = CHUNK.min((self.len - pos) as usize);
                    let n = file.read_at(&mut buf[..want], pos)?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "spool file shrank"));
                    }
                    f(&buf[..n])?;
                    pos += n as u64;
                }
                Ok(())
            }
        }
    }
}

/// A parsed message.
#[derive(Debug)]
pub struct Message {
    pub header: Header,
    spool: Spool,
    body_start: u64,
    /// The header block was longer than [`HEADER_MAX`] and was cut (see [`Message::read_cut`]).
    header_cut: bool,
}

impl Message {
    /// Read and spool a whole message.
    pub fn read_from(r: impl Read) -> Result<Message, MessageError> {
        Message::from_spool(Spool::read_from(r)?, false)
    }

    /// Read and spool a whole message whose header block may be of any size (incoming
    /// mail: TMDA reads one of any size, and refusing it would only defer the message
    /// until the MTA bounces it). A header block longer than [`HEADER_MAX`] is cut
    /// before the first field that does not end within it; the fields from there on stay
    /// at the start of the body (a delivery writes an empty line before them), so no
    /// byte is lost. Not for outgoing mail, where a cut `Bcc:` would be sent as text.
    pub fn read_cut(r: impl Read) -> Result<Message, MessageError> {
        Message::from_spool(Spool::read_from(r)?, true)
    }

    /// Was the header block cut ([`Message::read_cut`])?
    pub fn header_cut(&self) -> bool {
        self.header_cut
    }

    /// A message already in memory (no copy when it fits the in-memory spool).
    pub fn from_vec(bytes: Vec<u8>) -> Result<Message, MessageError> {
        if bytes.len() > SPOOL_MEM {
            return Message::read_from(std::io::Cursor::new(bytes));
        }
        let len = bytes.len() as u64;
        Message::from_spool(
            Spool {
                mem: bytes,
                file: None,
                len,
            },
            false,
        )
    }

    fn from_spool(spool: Spool, cut: bool) -> Result<Message, MessageError> {
        if spool.len == 0 {
            return Err(MessageError::Empty);
        }
        let prefix = &spool.mem;
        let complete = spool.file.is_none();
        let eol = match prefix.iter().position(|&b| b == b'\n') {
            Some(i) if i > 0 && prefix[i - 1] == b'\r' => Eol::CrLf,
            _ => Eol::Lf,
        };
        // Our own reader, not mail-parser's `parse_headers`: inside a header block both
        // find the same fields and byte ranges, but mail-parser skips a line that is not a
        // header and reads on, where Python (and so TMDA) starts the body there. With
        // "X-A: a\nthis is body\nSubject: s\n\nbody\n" Python has no Subject and
        // mail-parser has "s"; in `tmda sendmail -t` a "Bcc:" in that place would become a
        // recipient. Since finding that end already needs this line-by-line reading, which
        // also yields each field's start, mail-parser would only repeat it.
        let (b, header_cut) = match block::scan(prefix, complete) {
            Some(b) => (b, false),
            // The header goes on past what is held in memory.
            None if cut => (block::cut(prefix, prefix.len()), true),
            None => return Err(MessageError::HeaderTooLarge),
        };
        let lines = block::lines(&prefix[b.start..b.end]);
        let body_start = b.body as u64;
        let header = Header::from_lines(lines, eol);
        Ok(Message {
            header,
            spool,
            body_start,
            header_cut,
        })
    }

    /// Size of the message as it was read, in bytes.
    pub fn size(&self) -> u64 {
        self.spool.len
    }

    pub fn body_len(&self) -> u64 {
        self.spool.len - self.body_start
    }

    /// Small enough to be held in memory (not spooled to a file).
    pub fn in_memory(&self) -> bool {
        self.spool.file.is_none()
    }

    /// The spool file of a large message, so tests can make reading it fail.
    #[cfg(test)]
    pub(crate) fn spool_file(&self) -> Option<&File> {
        self.spool.file.as_ref()
    }

    /// The body as a pull-style sequence of chunks (for consumers that want an iterator).
    pub fn body_chunks(&self) -> BodyChunks<'_> {
        BodyChunks {
            msg: self,
            pos: self.body_start,
        }
    }

    /// Stream the body, unchanged, in chunks.
    pub fn for_each_body_chunk(&self, f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        self.spool.for_each_chunk(self.body_start, f)
    }
}

/// Body chunks read one at a time from the spool (at most 64 KiB each).
pub struct BodyChunks<'a> {
    msg: &'a Message,
    pos: u64,
}

impl Iterator for BodyChunks<'_> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        let spool = &self.msg.spool;
        if self.pos >= spool.len {
            return None;
        }
        let want = CHUNK.min((spool.len - self.pos) as usize);
        let chunk = match &spool.file {
            None => Ok(spool.mem[self.pos as usize..self.pos as usize + want].to_vec()),
            Some(f) => {
                let mut buf = vec![0u8; want];
                f.read_exact_at(&mut buf, self.pos).map(|_| buf)
            }
        };
        match chunk {
            Ok(c) => {
                self.pos += c.len() as u64;
                Some(Ok(c))
            }
            Err(e) => {
                self.pos = spool.len;
                Some(Err(e))
            }
        }
    }
}

/// Rewrites line endings across chunk boundaries.
#[derive(Debug, Default)]
pub struct LineEndings {
    pending_cr: bool,
}

impl LineEndings {
    /// Append `chunk` to `out` with every line ending (CRLF, lone LF, lone CR) as CRLF,
    /// as SMTP requires (RFC 5321 section 2.3.8; bare CR and LF are smuggling hazards).
    pub fn to_crlf(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.convert(chunk, out, b"\r\n");
    }

    /// Append `chunk` to `out` with line endings as LF (Python's universal newlines).
    pub fn to_lf(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.convert(chunk, out, b"\n");
    }

    /// Copies runs between line endings whole (memchr), which is what makes relaying a
    /// large message cheap; a CR at the end of a chunk waits for the next one's first byte.
    fn convert(&mut self, mut chunk: &[u8], out: &mut Vec<u8>, eol: &[u8]) {
        out.reserve(chunk.len() + 64);
        while let Some(&first) = chunk.first() {
            if std::mem::take(&mut self.pending_cr) {
                out.extend_from_slice(eol);
                if first == b'\n' {
                    chunk = &chunk[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\r', b'\n', chunk) {
                None => {
                    out.extend_from_slice(chunk);
                    return;
                }
                Some(i) => {
                    out.extend_from_slice(&chunk[..i]);
                    if chunk[i] == b'\n' {
                        out.extend_from_slice(eol);
                    } else {
                        self.pending_cr = true;
                    }
                    chunk = &chunk[i + 1..];
                }
            }
        }
    }

    /// Flush a CR left pending at the very end.
    pub fn finish(&mut self, out: &mut Vec<u8>, crlf: bool) {
        if std::mem::take(&mut self.pending_cr) {
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(m: &Message) -> Vec<u8> {
        let mut v = vec![];
        m.for_each_body_chunk(|c| {
            v.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn splits_header_and_body() {
        let m = Message::read_from(&b"From: a@b\nSubject: hi\n\nbody\n\nmore\n"[..]).unwrap();
        assert_eq!(m.header.get("subject").as_deref(), Some("hi"));
        assert_eq!(body_of(&m), b"body\n\nmore\n");
        assert_eq!(m.header.eol, Eol::Lf);
        let m = Message::read_from(&b"From: a@b\r\nTo: c@d\r\n\r\nx\r\n"[..]).unwrap();
        assert_eq!(m.header.eol, Eol::CrLf);
        assert_eq!(body_of(&m), b"x\r\n");
    }

    #[test]
    fn odd_shapes() {
        assert!(matches!(Message::read_from(&b""[..]), Err(MessageError::Empty)));
        let m = Message::read_from(&b"Subject: only a header"[..]).unwrap();
        assert_eq!(m.header.get("subject").as_deref(), Some("only a header"));
        assert_eq!(m.body_len(), 0);
        let m = Message::read_from(&b"From sender Mon Jan 1\nSubject: x\n\nb\n"[..]).unwrap();
        assert_eq!(m.header.names(), vec!["Subject"]);
        // A line that is not a header starts the body.
        let m = Message::read_from(&b"Subject: x\nthis is body\n"[..]).unwrap();
        assert_eq!(body_of(&m), b"this is body\n");
        let m = Message::read_from(&b"no header at all\n"[..]).unwrap();
        assert_eq!(m.header.names(), Vec::<&str>::new());
        assert_eq!(body_of(&m), b"no header at all\n");
    }

    #[test]
    fn large_messages_spill_to_disk_and_stream_back() {
        let mut msg = b"Subject: big\n\n".to_vec();
        let body: Vec<u8> = (0..3 * SPOOL_MEM).map(|i| b"abcdefghij\n"[i % 11]).collect();
        msg.extend_from_slice(&body);
        let m = Message::read_from(&msg[..]).unwrap();
        assert!(m.spool.file.is_some());
        assert_eq!(m.size(), msg.len() as u64);
        assert_eq!(body_of(&m), body);
        let pulled: Vec<u8> = m.body_chunks().flat_map(|c| c.unwrap()).collect();
        assert_eq!(pulled, body);
    }

    #[test]
    fn endless_header_is_refused() {
        let msg = "X-A: b\n".repeat(HEADER_MAX / 4);
        assert!(matches!(
            Message::read_from(msg.as_bytes()),
            Err(MessageError::HeaderTooLarge)
        ));
    }

    /// The whole message as a delivery writes it: header, empty line, body.
    fn written(m: &Message) -> Vec<u8> {
        let mut out = m.header.to_bytes();
        out.extend_from_slice(m.header.eol.as_bytes());
        m.for_each_body_chunk(|c| {
            out.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        out
    }

    /// The cut at every place the limit can fall, on small inputs: a spool whose memory
    /// prefix is the first `k` bytes and whose file holds them all.
    #[test]
    fn read_cut_at_every_prefix_length_keeps_whole_fields_and_every_byte() {
        let inputs: [&[u8]; 5] = [
            b"A: 1\nB: 2\n\tcont\n more\nC: 3\n\nbody\n",
            b"From x y\nA: 1\r\n\tb\r\nC: 3\r\n\r\nbody",
            b"A: 1\nno field\nB: 2\n",
            b" lead\nA: 1\n\n",
            b"A: 1\n\tb\n\tc\nD: 4",
        ];
        for data in inputs {
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(data).unwrap();
            let from_end = if data.starts_with(b"From ") {
                data.iter().position(|&b| b == b'\n').unwrap() + 1
            } else {
                0
            };
            for k in 0..=data.len() {
                let spool = Spool {
                    mem: data[..k].to_vec(),
                    file: Some(file.try_clone().unwrap()),
                    len: data.len() as u64,
                };
                let m = Message::from_spool(spool, true).unwrap();
                let head = m.header.to_bytes();
                let mut body = vec![];
                m.for_each_body_chunk(|c| {
                    body.extend_from_slice(c);
                    Ok(())
                })
                .unwrap();
                let what = format!("{:?} cut at {k}", String::from_utf8_lossy(data));
                assert!(data.ends_with(&body), "{what}");
                if head.is_empty() {
                    continue;
                }
                assert!(
                    data[from_end..].starts_with(&head),
                    "{what}: header not kept byte for byte"
                );
                if m.header_cut() {
                    assert!(from_end + head.len() <= k, "{what}: the header goes past the limit");
                    assert_eq!(from_end + head.len() + body.len(), data.len(), "{what}: bytes lost");
                    assert!(
                        !body.starts_with(b" ") && !body.starts_with(b"\t"),
                        "{what}: a field split"
                    );
                }
            }
        }
    }

    #[test]
    fn read_cut_keeps_whole_fields_within_the_limit_and_the_rest_in_the_body() {
        // Lines of 7 bytes: the limit falls inside one; every 3rd field is folded.
        let mut raw = Vec::new();
        for i in 0..HEADER_MAX / 5 {
            raw.extend_from_slice(if i % 3 == 2 { b"\tcont\n" } else { b"X-A: b\n" });
        }
        raw.extend_from_slice(b"\nbody\n");
        let m = Message::read_cut(&raw[..]).unwrap();
        assert!(m.header_cut());
        let head = m.header.to_bytes();
        assert!(
            head.len() <= HEADER_MAX && head.len() > HEADER_MAX - 64,
            "{}",
            head.len()
        );
        let out = written(&m);
        let split = head.len();
        // The body starts with a field's first line, never a continuation.
        assert_eq!(&out[split..split + 6], b"\nX-A: ");
        // Nothing is lost: the input, with one empty line where the cut is.
        assert_eq!([&raw[..split], &raw[split..]].join(&b'\n'), out);
        // One field longer than the limit: all of it is body.
        let mut long = b"X-Long: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', HEADER_MAX + 10));
        long.extend_from_slice(b"\nFrom: x@y\n\nbody\n");
        let m = Message::read_cut(&long[..]).unwrap();
        assert!(m.header_cut() && m.header.to_bytes().is_empty());
        assert_eq!(written(&m), [b"\n".as_slice(), &long].concat());
        // Lines that end exactly at the limit: the last one's field may go on past it
        // (here it does), so it goes to the body with its continuation.
        let exact = [b"X-A: bc\n".repeat(HEADER_MAX / 8), b"\tmore\n\nbody\n".to_vec()].concat();
        let m = Message::read_cut(&exact[..]).unwrap();
        assert!(m.header_cut());
        assert_eq!(m.header.to_bytes().len(), HEADER_MAX - 8);
        assert!(written(&m).ends_with(b"\n\nX-A: bc\n\tmore\n\nbody\n"));
        // Under the limit nothing changes.
        let small = b"A: 1\n\nbody\n";
        let m = Message::read_cut(&small[..]).unwrap();
        assert!(!m.header_cut());
        assert_eq!(written(&m), small);
    }

    #[test]
    fn line_ending_conversion_is_the_same_at_every_split() {
        let input = b"a\r\nb\nc\rd\r\r\n\n\re\r";
        for crlf in [true, false] {
            let conv = |le: &mut LineEndings, c: &[u8], out: &mut Vec<u8>| {
                if crlf { le.to_crlf(c, out) } else { le.to_lf(c, out) }
            };
            let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            // Reference: CRLF, LF and lone CR are each one line ending.
            let expected = String::from_utf8(input.to_vec())
                .unwrap()
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .replace('\n', std::str::from_utf8(eol).unwrap());
            for cut in 0..=input.len() {
                let mut le = LineEndings::default();
                let mut out = vec![];
                conv(&mut le, &input[..cut], &mut out);
                conv(&mut le, &input[cut..], &mut out);
                le.finish(&mut out, crlf);
                assert_eq!(String::from_utf8(out).unwrap(), expected, "cut at {cut}, crlf {crlf}");
            }
        }
    }

    #[test]
    fn line_ending_conversion_across_chunks() {
        let mut le = LineEndings::default();
        let mut out = vec![];
        for chunk in [&b"a\r"[..], b"\nb\n", b"c\r", b"d\r"] {
            le.to_crlf(chunk, &mut out);
        }
        le.finish(&mut out, true);
        assert_eq!(out, b"a\r\nb\r\nc\r\nd\r\n");
        let mut le = LineEndings::default();
        let mut out = vec![];
        for chunk in [&b"a\r"[..], b"\nb\r\n", b"c\rd"] {
            le.to_lf(chunk, &mut out);
        }
        le.finish(&mut out, false);
        assert_eq!(out, b"a\nb\nc\nd");
    }
}
