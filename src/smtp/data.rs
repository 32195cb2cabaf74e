//! Receiving DATA: undo dot-stuffing and find the end, without I/O.
//!
//! Only CRLF "." CRLF ends the data (RFC 5321 section 4.1.1.4), including right after
//! the 354 reply (an empty message). A bare CR or LF anywhere is remembered, and the
//! message is then refused once its end is reached, so no MTA downstream can be made
//! to see a second message inside this one (SMTP smuggling). Output lines end in LF,
//! the convention of a sendmail program's input; size and line-length limits are
//! enforced without buffering more than the caller's chunk.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    LineStart,
    InLine,
    Cr,
    Dot,
    DotCr,
}

/// Problems found in a complete DATA section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    TooBig,
    BareLineEnding,
    LineTooLong,
}

#[derive(Debug)]
pub struct Decoder {
    state: State,
    max_size: u64,
    max_line: usize,
    size: u64,
    line_len: usize,
    problem: Option<Problem>,
}

impl Decoder {
    pub fn new(max_size: u64, max_line: usize) -> Decoder {
        Decoder {
            state: State::LineStart,
            max_size,
            max_line,
            size: 0,
            line_len: 0,
            problem: None,
        }
    }

    fn flag(&mut self, p: Problem) {
        // The first problem is the one reported.
        self.problem.get_or_insert(p);
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.size > self.max_size {
            self.flag(Problem::TooBig);
        }
        if self.problem.is_none() {
            out.extend_from_slice(bytes);
        }
    }

    fn text_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        self.line_len += 1;
        if self.line_len > self.max_line {
            self.flag(Problem::LineTooLong);
        }
        match b {
            b'\r' => self.state = State::Cr,
            b'\n' => {
                self.flag(Problem::BareLineEnding);
                self.emit(out, b"\n");
                self.state = State::InLine;
            }
            _ => {
                self.emit(out, &[b]);
                self.state = State::InLine;
            }
        }
    }

    /// Feed bytes; decoded message bytes are appended to `out`. Returns `Some(n)` when
    /// the end marker was found after consuming `n` bytes of `input` (the rest belongs
    /// to the next command), `None` when more input is needed.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::InLine {
                // Fast path: the ordinary bytes up to the next CR or LF in one copy.
                let rest = &input[i..];
                let run = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                if run > 0 {
                    // The limit these bytes cross first is the one reported, as if they
                    // came one at a time (each is checked against the line limit, then
                    // the size): otherwise how TCP cut the stream would choose the reply.
                    let line_room = self.max_line.saturating_sub(self.line_len) as u64;
                    let size_room = self.max_size.saturating_sub(self.size);
                    if run as u64 > line_room && line_room <= size_room {
                        self.flag(Problem::LineTooLong);
                    }
                    self.line_len += run;
                    self.emit(out, &rest[..run]);
                    if self.line_len > self.max_line {
                        self.flag(Problem::LineTooLong);
                    }
                    i += run;
                    continue;
                }
                // The usual line ending, both halves in this chunk: no detour through Cr.
                if rest.starts_with(b"\r\n") {
                    self.line_len += 1;
                    if self.line_len > self.max_line {
                        self.flag(Problem::LineTooLong);
                    }
                    self.emit(out, b"\n");
                    self.state = State::LineStart;
                    i += 2;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            match self.state {
                State::LineStart => {
                    self.line_len = 0;
                    match b {
                        b'.' => self.state = State::Dot,
                        b'\r' | b'\n' => self.text_byte(b, out),
                        // Ordinary text: back to the fast path with this byte.
                        _ => {
                            self.state = State::InLine;
                            i -= 1;
                        }
                    }
                }
                State::Dot => {
                    if b == b'\r' {
                        self.state = State::DotCr;
                    } else {
                        // A stuffed dot: drop it, keep the rest of the line.
                        self.text_byte(b, out);
                    }
                }
                State::DotCr => {
                    if b == b'\n' {
                        self.state = State::LineStart;
                        return Some(i);
                    }
                    // "." CR then something else: the CR was bare.
                    self.flag(Problem::BareLineEnding);
                    self.emit(out, b"\r");
                    self.state = State::InLine;
                    self.text_byte(b, out);
                }
                State::Cr => {
                    if b == b'\n' {
                        self.emit(out, b"\n");
                        self.state = State::LineStart;
                    } else {
                        self.flag(Problem::BareLineEnding);
                        self.emit(out, b"\r");
                        self.state = State::InLine;
                        self.text_byte(b, out);
                    }
                }
                State::InLine => self.text_byte(b, out),
            }
        }
        None
    }

    /// Decoded size so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn problem(&self) -> Option<Problem> {
        self.problem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> (Vec<u8>, Option<usize>, Option<Problem>) {
        let mut d = Decoder::new(1_000_000, 1000);
        let mut out = vec![];
        let end = d.feed(input, &mut out);
        (out, end, d.problem())
    }

    #[test]
    fn unstuffing_and_end() {
        let (out, end, p) = decode(b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
        assert_eq!(out, b"Subject: x\n\n.dot\n");
        assert_eq!(end, Some(24));
        assert_eq!(p, None);
    }

    #[test]
    fn lone_dot_right_after_data_is_an_empty_message() {
        let (out, end, _) = decode(b".\r\n");
        assert_eq!((out.as_slice(), end), (&b""[..], Some(3)));
    }

    #[test]
    fn only_crlf_dot_crlf_ends() {
        // None of these end the message; all are flagged as bare line endings.
        for input in [&b"a\n.\nb"[..], b"a\r.\rb", b"a\n.\r\nb", b"a\r\n.\nb"] {
            let (_, end, p) = decode(input);
            assert_eq!(end, None, "{input:?}");
            assert_eq!(p, Some(Problem::BareLineEnding), "{input:?}");
        }
    }

    #[test]
    fn smuggling_attempt_is_flagged_and_consumed_as_one_message() {
        let input = b"Subject: a\r\n\r\nx\n.\r\nMAIL FROM:<evil@x>\r\n.\r\n";
        let (_, end, p) = decode(input);
        assert_eq!(end, Some(input.len()));
        assert_eq!(p, Some(Problem::BareLineEnding));
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let input = b"A: b\r\n\r\n..x\r\n.y\r\n\r\n.\r\nNEXT";
        let mut d = Decoder::new(1_000_000, 1000);
        let mut out = vec![];
        let mut end = None;
        for (i, b) in input.iter().enumerate() {
            if d.feed(&[*b], &mut out).is_some() {
                end = Some(i + 1);
                break;
            }
        }
        let (whole, wend, _) = decode(input);
        assert_eq!(out, whole);
        assert_eq!(end, wend);
    }

    #[test]
    fn every_two_way_split_equals_whole() {
        let input = b"Subject: s\r\n\r\nlong line of text\r\n..stuffed\r\nbare\nlf\r\nx\ry\r\n.\r\nNEXT";
        let (whole, wend, wproblem) = decode(input);
        for cut in 0..input.len() {
            let mut d = Decoder::new(1_000_000, 1000);
            let mut out = vec![];
            let end = match d.feed(&input[..cut], &mut out) {
                Some(n) => Some(n),
                None => d.feed(&input[cut..], &mut out).map(|n| n + cut),
            };
            assert_eq!((&out, end, d.problem()), (&whole, wend, wproblem), "cut at {cut}");
        }
    }

    #[test]
    fn line_length_counts_the_cr_however_the_input_is_cut() {
        // max_line counts text plus CR: "1234" CR fits in 5, "12345" CR does not.
        for (input, problem) in [
            (&b"1234\r\n.\r\n"[..], None),
            (b"12345\r\n.\r\n", Some(Problem::LineTooLong)),
        ] {
            for cut in 0..input.len() {
                let mut d = Decoder::new(1_000_000, 5);
                let mut out = vec![];
                if d.feed(&input[..cut], &mut out).is_none() {
                    assert!(d.feed(&input[cut..], &mut out).is_some());
                }
                assert_eq!(d.problem(), problem, "{input:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn line_length_adds_up_across_chunks() {
        let mut d = Decoder::new(1_000_000, 10);
        let mut out = vec![];
        assert_eq!(d.feed(b"123456", &mut out), None);
        assert_eq!(d.feed(b"789012\r\n.\r\n", &mut out), Some(11));
        assert_eq!(d.problem(), Some(Problem::LineTooLong));
    }

    // Found by the smtp_data fuzz target: with both limits crossed inside one run of
    // text, the whole run was checked against the line limit before the size limit,
    // so the reply (552 or 500) depended on how TCP cut the stream. The limit the
    // bytes cross first is the one reported, as if they came one at a time.
    #[test]
    fn the_limit_crossed_first_is_reported_however_the_input_is_cut() {
        for (max_size, max_line, first) in [
            (10, 40, Problem::TooBig),
            (40, 10, Problem::LineTooLong),
            (10, 10, Problem::LineTooLong),
        ] {
            let input = [&[b'x'; 50][..], b"\r\n.\r\n"].concat();
            for cut in 0..input.len() {
                let mut d = Decoder::new(max_size, max_line);
                let mut out = vec![];
                if d.feed(&input[..cut], &mut out).is_none() {
                    assert!(d.feed(&input[cut..], &mut out).is_some());
                }
                assert_eq!(
                    d.problem(),
                    Some(first),
                    "size {max_size}, line {max_line}, cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn limits() {
        let mut d = Decoder::new(10, 1000);
        let mut out = vec![];
        assert_eq!(d.feed(b"0123456789abc\r\n.\r\n", &mut out), Some(18));
        assert_eq!(d.problem(), Some(Problem::TooBig));
        assert!(out.len() <= 10, "nothing stored past the limit");
        let mut d = Decoder::new(1_000_000, 5);
        assert!(d.feed(b"123456789\r\n.\r\n", &mut out).is_some());
        assert_eq!(d.problem(), Some(Problem::LineTooLong));
    }
}
