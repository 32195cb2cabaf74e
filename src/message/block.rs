//! Where a message's header block ends, found without reading the body: for
//! [`super::Message`] over its spool's first MiB, and for the pending queue over a
//! stored file read a few KiB at a time.
//!
//! The rules are Python's, as TMDA parses: a leading mbox `From ` line is not part of
//! the header; the header ends at the first empty line, or before the first line that
//! is neither a field nor a continuation (the body then starts with that line). Pure
//! functions over bytes.

use super::header::{self, Eol, Header};

/// The header block found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// First byte of the first field (after a `From ` line, if any).
    pub start: usize,
    /// End of the last field.
    pub end: usize,
    /// First byte of the body (after the empty line, if there is one).
    pub body: usize,
}

/// Find the header block in `buf`. `complete` says `buf` is the whole file; otherwise
/// `None` means more bytes are needed to decide.
pub fn scan(buf: &[u8], complete: bool) -> Option<Block> {
    let mut pos = 0;
    let mut start = 0;
    let mut fields = 0usize;
    while pos < buf.len() {
        let end = match memchr::memchr(b'\n', &buf[pos..]) {
            Some(i) => pos + i + 1,
            None if complete => buf.len(),
            None => return None,
        };
        let line = &buf[pos..end];
        if pos == 0 && line.starts_with(b"From ") {
            pos = end;
            start = end;
            continue;
        }
        if line == b"\n" || line == b"\r\n" {
            return Some(Block {
                start,
                end: pos,
                body: end,
            });
        }
        let continues = (line[0] == b' ' || line[0] == b'\t') && fields > 0;
        if !continues && header::field_name(line).is_none() {
            return Some(Block {
                start,
                end: pos,
                body: pos,
            });
        }
        fields += 1;
        pos = end;
    }
    // Only header, no body (or an empty buffer).
    complete.then_some(Block {
        start,
        end: buf.len(),
        body: buf.len(),
    })
}

/// The header block of `buf` as far as `limit` bytes, for a stored message whose
/// header goes on past it (TMDA stored headers of any size). The block ends before the
/// first field that does not end within the limit (a field whose last line ends exactly
/// at it may go on, so it is left out too); the body then starts with that field, so a
/// release writes every byte, with an empty line where the cut is (as the filter does
/// with such a message, [`super::Message::read_cut`]).
pub fn cut(buf: &[u8], limit: usize) -> Block {
    let buf = &buf[..limit.min(buf.len())];
    let (mut pos, mut start) = (0, 0);
    let mut field: Option<usize> = None;
    while let Some(i) = memchr::memchr(b'\n', &buf[pos..]) {
        let end = pos + i + 1;
        let line = &buf[pos..end];
        if pos == 0 && line.starts_with(b"From ") {
            (pos, start) = (end, end);
            continue;
        }
        if line == b"\n" || line == b"\r\n" {
            return Block {
                start,
                end: pos,
                body: end,
            };
        }
        let continues = (line[0] == b' ' || line[0] == b'\t') && field.is_some();
        if !continues && header::field_name(line).is_none() {
            return Block {
                start,
                end: pos,
                body: pos,
            };
        }
        if !continues {
            field = Some(pos);
        }
        pos = end;
    }
    let folded = pos < buf.len() && (buf[pos] == b' ' || buf[pos] == b'\t');
    let at = match field {
        Some(f) if folded || pos == buf.len() => f,
        _ => pos,
    };
    Block {
        start,
        end: at,
        body: at,
    }
}

/// The line ending of a block: that of its first line.
pub fn eol_of(bytes: &[u8]) -> Eol {
    match memchr::memchr(b'\n', bytes) {
        Some(i) if i > 0 && bytes[i - 1] == b'\r' => Eol::CrLf,
        _ => Eol::Lf,
    }
}

/// Lines of `bytes`, each with its line ending.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split_inclusive(|&b| b == b'\n')
}

/// Parse a header block given whole (a trailing empty line and anything after it, or
/// any non-header line and what follows, are not part of it); also where it ends.
pub fn parse(bytes: &[u8]) -> (Header, Block) {
    let b = scan(bytes, true).unwrap_or(Block {
        start: 0,
        end: 0,
        body: 0,
    });
    let fields = &bytes[b.start..b.end];
    (Header::from_lines(lines(fields), eol_of(fields)), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blk(start: usize, end: usize, body: usize) -> Option<Block> {
        Some(Block { start, end, body })
    }

    #[test]
    fn blocks() {
        assert_eq!(scan(b"A: 1\nB: 2\n\nbody\n", true), blk(0, 10, 11));
        assert_eq!(scan(b"A: 1\nB: 2\n\nbody\n", false), blk(0, 10, 11));
        assert_eq!(scan(b"A: 1\r\n\tmore\r\n\r\nbody", false), blk(0, 13, 15));
        assert_eq!(scan(b"From x Mon\nA: 1\n\n", true), blk(11, 16, 17));
        // A line that is no field ends the header; the body starts with it.
        assert_eq!(scan(b"A: 1\nno colon here\nB: 2\n", true), blk(0, 5, 5));
        assert_eq!(scan(b"A: 1\nBad Name: x\n", true), blk(0, 5, 5));
        // A continuation with nothing before it is body.
        assert_eq!(scan(b" x: 1\n", true), blk(0, 0, 0));
        assert_eq!(scan(b"A: 1\nB: 2", true), blk(0, 9, 9));
        assert_eq!(scan(b"", true), blk(0, 0, 0));
        assert_eq!(scan(b"\nbody", true), blk(0, 0, 1));
    }

    #[test]
    fn cuts_keep_whole_fields() {
        // The limit inside a line: the block ends before it.
        assert_eq!(Some(cut(b"A: 1\nB: 2\nC: 3\n\n", 12)), blk(0, 10, 10));
        // Inside a continuation: its whole field goes.
        assert_eq!(Some(cut(b"A: 1\nB: 2\n\tmore\n\n", 13)), blk(0, 5, 5));
        // Exactly at a line's end: that field may go on, so it goes too.
        assert_eq!(Some(cut(b"A: 1\nB: 2\nC: 3\n\n", 10)), blk(0, 5, 5));
        // One field longer than the limit: an empty header.
        assert_eq!(Some(cut(b"From x\nA: 1111111111\n\n", 12)), blk(7, 7, 7));
        // A block that ends within the limit is the block.
        assert_eq!(Some(cut(b"A: 1\n\nbody", 100)), blk(0, 5, 6));
        assert_eq!(Some(cut(b"A: 1\nno colon\n", 100)), blk(0, 5, 5));
        assert_eq!(Some(cut(b"", 10)), blk(0, 0, 0));
    }

    #[test]
    fn partial_buffers_ask_for_more() {
        assert_eq!(scan(b"A: 1\nB: 2", false), None);
        assert_eq!(scan(b"A: 1\n", false), None);
        assert_eq!(scan(b"", false), None);
        assert_eq!(scan(b"From x", false), None);
    }

    #[test]
    fn parse_keeps_the_fields_byte_for_byte() {
        let text = b"From x\nSubject:  hi\n  there\nTo: a@b\n\nbody\n";
        let (h, b) = parse(text);
        assert_eq!(&text[b.start..b.end], b"Subject:  hi\n  there\nTo: a@b\n");
        assert_eq!(h.to_bytes(), &text[b.start..b.end]);
        assert_eq!(h.get("to").as_deref(), Some("a@b"));
        let (h, _) = parse(b"A: 1\r\n\r\n");
        assert_eq!(h.eol, Eol::CrLf);
    }
}
