//! The parts of Python's `email` package (compat32 policy, as in Python 3.11) that decide
//! the bytes of a TMDA auto-response: character-set properties, RFC 2047 header encoding
//! and folding (`email.header.Header.encode`), `formataddr`, and base64 and
//! quoted-printable body encoding. Written from the behaviour of the Python library
//! (PSF-licensed), so that a user's template renders to the same bytes as under TMDA.
//!
//! What it deliberately does not do: codecs beyond US-ASCII, UTF-8 and ISO-8859-1. Text in
//! any other charset must be plain ASCII (identical in every ASCII-compatible charset);
//! other text is refused with [`CharsetError`] rather than guessed.

use base64::Engine as _;

/// A character set cannot encode the text it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CharsetError {
    #[error("the text cannot be written in charset {charset}")]
    Unencodable { charset: String },
    #[error("charset {charset} is not supported for non-ASCII text (use utf-8 or iso-8859-1)")]
    Unsupported { charset: String },
    #[error("charset name {} is not ASCII", crate::exit::quote(charset))]
    BadName { charset: String },
    #[error(
        "a header value would contain an embedded header field: {}",
        crate::exit::quote(value)
    )]
    EmbeddedHeader { value: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enc {
    None,
    Qp,
    Base64,
    Shortest,
}

/// `email.charset.Charset`: a name and how text in it is encoded in headers and bodies.
#[derive(Debug, Clone)]
pub(crate) struct Charset {
    /// Canonical input name (lower case, aliases resolved).
    pub input: String,
    pub header_enc: Enc,
    pub body_enc: Enc,
    /// The name written in `charset=` and in encoded words.
    pub output: String,
}

impl PartialEq for Charset {
    fn eq(&self, other: &Charset) -> bool {
        self.input == other.input
    }
}

/// Python's `ALIASES` plus the ones TMDA's AutoResponse module adds.
const ALIASES: &[(&str, &str)] = &[
    ("latin_1", "iso-8859-1"),
    ("latin-1", "iso-8859-1"),
    ("latin_2", "iso-8859-2"),
    ("latin-2", "iso-8859-2"),
    ("latin_3", "iso-8859-3"),
    ("latin-3", "iso-8859-3"),
    ("latin_4", "iso-8859-4"),
    ("latin-4", "iso-8859-4"),
    ("latin_5", "iso-8859-9"),
    ("latin-5", "iso-8859-9"),
    ("latin_6", "iso-8859-10"),
    ("latin-6", "iso-8859-10"),
    ("latin_7", "iso-8859-13"),
    ("latin-7", "iso-8859-13"),
    ("latin_8", "iso-8859-14"),
    ("latin-8", "iso-8859-14"),
    ("latin_9", "iso-8859-15"),
    ("latin-9", "iso-8859-15"),
    ("latin_10", "iso-8859-16"),
    ("latin-10", "iso-8859-16"),
    ("cp949", "ks_c_5601-1987"),
    ("euc_jp", "euc-jp"),
    ("euc_kr", "euc-kr"),
    ("ascii", "us-ascii"),
    // TMDA/AutoResponse.py's add_alias calls.
    ("cyrillic", "iso-8859-5"),
    ("greek", "iso-8859-7"),
    ("hebrew", "iso-8859-8"),
    ("japanese", "euc-jp"),
    ("korean", "euc-kr"),
    ("russian", "koi8-r"),
    ("thai", "tis-620"),
    ("turkish", "iso-8859-9"),
    ("vietnamese", "viscii"),
];

/// Python's `CHARSETS`: (name, header encoding, body encoding, output conversion).
const CHARSETS: &[(&str, Enc, Enc, Option<&str>)] = &[
    ("iso-8859-1", Enc::Qp, Enc::Qp, None),
    ("iso-8859-2", Enc::Qp, Enc::Qp, None),
    ("iso-8859-3", Enc::Qp, Enc::Qp, None),
    ("iso-8859-4", Enc::Qp, Enc::Qp, None),
    ("iso-8859-9", Enc::Qp, Enc::Qp, None),
    ("iso-8859-10", Enc::Qp, Enc::Qp, None),
    ("iso-8859-13", Enc::Qp, Enc::Qp, None),
    ("iso-8859-14", Enc::Qp, Enc::Qp, None),
    ("iso-8859-15", Enc::Qp, Enc::Qp, None),
    ("iso-8859-16", Enc::Qp, Enc::Qp, None),
    ("windows-1252", Enc::Qp, Enc::Qp, None),
    ("viscii", Enc::Qp, Enc::Qp, None),
    ("us-ascii", Enc::None, Enc::None, None),
    ("big5", Enc::Base64, Enc::Base64, None),
    ("gb2312", Enc::Base64, Enc::Base64, None),
    ("euc-jp", Enc::Base64, Enc::None, Some("iso-2022-jp")),
    ("shift_jis", Enc::Base64, Enc::None, Some("iso-2022-jp")),
    ("iso-2022-jp", Enc::Base64, Enc::None, None),
    ("koi8-r", Enc::Base64, Enc::Base64, None),
    ("utf-8", Enc::Shortest, Enc::Base64, Some("utf-8")),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Ascii,
    Utf8,
    Latin1,
    /// A codec we do not implement: ASCII text only.
    Other,
}

/// Python's codec lookup, reduced to the three codecs implemented here.
fn codec(name: &str) -> Codec {
    let n: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '-' || c == ' ' { '_' } else { c })
        .collect();
    match n.as_str() {
        "us_ascii" | "ascii" | "646" | "us" | "ansi_x3.4_1968" | "ansi_x3_4_1968" | "iso646_us" | "cp367"
        | "csascii" | "ibm367" | "iso_ir_6" => Codec::Ascii,
        "utf_8" | "utf8" | "u8" | "utf" | "cp65001" | "utf8_ucs2" | "utf8_ucs4" => Codec::Utf8,
        "latin_1" | "latin1" | "iso_8859_1" | "iso8859_1" | "8859" | "cp819" | "l1" | "latin" | "iso_ir_100"
        | "csisolatin1" | "ibm819" | "iso_8859_1_1987" => Codec::Latin1,
        _ => Codec::Other,
    }
}

impl Charset {
    pub fn us_ascii() -> Charset {
        Charset::new("us-ascii").expect("ASCII name")
    }

    pub fn utf8() -> Charset {
        Charset::new("utf-8").expect("ASCII name")
    }

    /// `Charset(name)`: lower-cased, aliases resolved, properties from the table
    /// (unknown names: shortest of Q/B in headers, base64 in bodies, as Python).
    pub fn new(name: &str) -> Result<Charset, CharsetError> {
        if !name.is_ascii() {
            return Err(CharsetError::BadName {
                charset: name.to_string(),
            });
        }
        let lower = name.to_ascii_lowercase();
        let input = alias(&lower).to_string();
        let (header_enc, body_enc, conv) = CHARSETS
            .iter()
            .find(|(n, ..)| *n == input)
            .map(|&(_, h, b, c)| (h, b, c))
            .unwrap_or((Enc::Shortest, Enc::Base64, None));
        let output = alias(conv.unwrap_or(&input)).to_string();
        Ok(Charset {
            input,
            header_enc,
            body_enc,
            output,
        })
    }

    pub fn is_us_ascii(&self) -> bool {
        self.input == "us-ascii"
    }

    /// `str.encode(output codec)` (strict).
    pub fn encode(&self, s: &str) -> Result<Vec<u8>, CharsetError> {
        let codec = if self.is_us_ascii() {
            Codec::Ascii
        } else {
            codec(&self.output)
        };
        match codec {
            Codec::Utf8 => Ok(s.as_bytes().to_vec()),
            Codec::Latin1 => s
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| CharsetError::Unencodable {
                    charset: self.output.clone(),
                }),
            Codec::Ascii if s.is_ascii() => Ok(s.as_bytes().to_vec()),
            Codec::Ascii => Err(CharsetError::Unencodable {
                charset: self.output.clone(),
            }),
            Codec::Other if s.is_ascii() => Ok(s.as_bytes().to_vec()),
            Codec::Other => Err(CharsetError::Unsupported {
                charset: self.output.clone(),
            }),
        }
    }

    /// Whether `s` can be encoded (the `errors='strict'` test in `Header.append`).
    fn can_encode(&self, s: &str) -> bool {
        self.encode(s).is_ok()
    }

    /// The header encoder for these bytes (`_get_encoder`): `true` for base64.
    fn header_b64(&self, bytes: &[u8]) -> Option<bool> {
        match self.header_enc {
            Enc::None => None,
            Enc::Base64 => Some(true),
            Enc::Qp => Some(false),
            Enc::Shortest => Some(b64_len(bytes.len()) < qp_header_len(bytes)),
        }
    }

    /// `Charset.header_encode`: one encoded word (or the text itself for US-ASCII).
    pub fn header_encode(&self, s: &str) -> Result<String, CharsetError> {
        let bytes = self.encode(s)?;
        Ok(match self.header_b64(&bytes) {
            None => s.to_string(),
            Some(b64) => encoded_word(&self.output, b64, &bytes),
        })
    }

    /// `Charset.header_encode_lines`: split `s` into encoded words, the first fitting
    /// `first_max`, the others `next_max` (chrome included). `None` first means nothing
    /// fits on the current line. Lengths are summed per character, which equals
    /// Python's re-encoding of each prefix for these stateless codecs.
    fn header_encode_lines(
        &self,
        s: &str,
        first_max: usize,
        next_max: usize,
    ) -> Result<Vec<Option<String>>, CharsetError> {
        let all = self.encode(s)?;
        let b64 = self.header_b64(&all).unwrap_or(false);
        let extra = self.output.len() + 7;
        let mut lines: Vec<Option<String>> = vec![];
        let mut cur: Vec<u8> = vec![];
        let mut cur_qp = 0usize;
        let mut maxlen = first_max as isize - extra as isize;
        let mut buf = [0u8; 4];
        for c in s.chars() {
            let cb = self.encode(c.encode_utf8(&mut buf))?;
            let qp_add: usize = cb.iter().map(|&b| qp_header_byte_len(b)).sum();
            let len = if b64 {
                b64_len(cur.len() + cb.len())
            } else {
                cur_qp + qp_add
            };
            if len as isize > maxlen {
                if lines.is_empty() && cur.is_empty() {
                    lines.push(None);
                } else {
                    lines.push(Some(encoded_word(&self.output, b64, &cur)));
                }
                cur.clear();
                cur_qp = 0;
                maxlen = next_max as isize - extra as isize;
            }
            cur.extend_from_slice(&cb);
            cur_qp += qp_add;
        }
        lines.push(Some(encoded_word(&self.output, b64, &cur)));
        Ok(lines)
    }
}

fn alias(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map(|&(_, c)| c)
        .unwrap_or(name)
}

fn b64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

fn qp_header_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-!*+/ ".contains(&b)
}

fn qp_header_byte_len(b: u8) -> usize {
    if qp_header_safe(b) { 1 } else { 3 }
}

fn qp_header_len(bytes: &[u8]) -> usize {
    bytes.iter().map(|&b| qp_header_byte_len(b)).sum()
}

/// `=?charset?q?...?=` or `=?charset?b?...?=`; empty bytes give an empty string.
fn encoded_word(charset: &str, b64: bool, bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    if b64 {
        format!(
            "=?{charset}?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    } else {
        let mut q = String::with_capacity(bytes.len() * 3);
        for &b in bytes {
            if b == b' ' {
                q.push('_');
            } else if qp_header_safe(b) {
                q.push(b as char);
            } else {
                q.push_str(&format!("={b:02X}"));
            }
        }
        format!("=?{charset}?q?{q}?=")
    }
}

/// Python's `str.isspace` for one character (Unicode white space plus the ASCII
/// separators 0x1c-0x1f that Rust does not count).
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.splitlines()` (no line ends kept).
pub(crate) fn splitlines(s: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let brk = matches!(
            c,
            '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        );
        if brk {
            out.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r'
                && let Some(&(j, '\n')) = it.peek()
            {
                it.next();
                end = j + 1;
            }
            start = end;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn clen(s: &str) -> usize {
    s.chars().count()
}

/// `_Accumulator`: (folding white space, text) pairs with a running length.
struct Accumulator {
    parts: Vec<(String, String)>,
    initial: usize,
    len: usize,
}

impl Accumulator {
    fn new(initial: usize) -> Accumulator {
        Accumulator {
            parts: vec![],
            initial,
            len: initial,
        }
    }

    fn push(&mut self, fws: String, s: String) {
        self.len += clen(&fws) + clen(&s);
        self.parts.push((fws, s));
    }

    fn pop(&mut self) -> (String, String) {
        match self.parts.pop() {
            Some((f, s)) => {
                self.len -= clen(&f) + clen(&s);
                (f, s)
            }
            None => (String::new(), String::new()),
        }
    }

    fn pop_from(&mut self, i: usize) -> Vec<(String, String)> {
        let rest = self.parts.split_off(i);
        self.len -= rest.iter().map(|(f, s)| clen(f) + clen(s)).sum::<usize>();
        rest
    }

    fn reset(&mut self, start: Vec<(String, String)>) {
        self.len = start.iter().map(|(f, s)| clen(f) + clen(s)).sum();
        self.parts = start;
        self.initial = 0;
    }

    fn text(&self) -> String {
        let mut s = String::new();
        for (f, p) in &self.parts {
            s.push_str(f);
            s.push_str(p);
        }
        s
    }

    fn is_onlyws(&self) -> bool {
        self.initial == 0 && (self.parts.is_empty() || { self.text().chars().all(py_space) })
    }
}

/// `_ValueFormatter`.
struct Formatter {
    maxlen: usize,
    lines: Vec<String>,
    cur: Accumulator,
}

const SPLITCHARS: [char; 4] = [';', ',', ' ', '\t'];

impl Formatter {
    fn finish(mut self) -> String {
        self.newline();
        self.lines.join("\n")
    }

    fn newline(&mut self) {
        let end = self.cur.pop();
        if end != (" ".to_string(), String::new()) {
            self.cur.push(end.0, end.1);
        }
        if self.cur.len > 0 {
            let text = self.cur.text();
            if self.cur.is_onlyws() && !self.lines.is_empty() {
                self.lines.last_mut().expect("non-empty").push_str(&text);
            } else {
                self.lines.push(text);
            }
        }
        self.cur.reset(vec![]);
    }

    fn add_transition(&mut self) {
        self.cur.push(" ".into(), String::new());
    }

    fn feed(&mut self, fws: &str, s: &str, cs: &Charset) -> Result<(), CharsetError> {
        if cs.header_enc == Enc::None {
            self.ascii_split(fws, s);
            return Ok(());
        }
        let first_max = self.maxlen.saturating_sub(self.cur.len);
        let mut lines = cs.header_encode_lines(s, first_max, self.maxlen - 1)?;
        if lines.is_empty() {
            return Ok(());
        }
        let first = lines.remove(0);
        if let Some(first) = first {
            self.append_chunk(fws.to_string(), first);
        }
        let Some(last) = lines.pop() else { return Ok(()) };
        self.newline();
        self.cur.push(" ".into(), last.unwrap_or_default());
        for line in lines {
            self.lines.push(format!(" {}", line.unwrap_or_default()));
        }
        Ok(())
    }

    fn ascii_split(&mut self, fws: &str, s: &str) {
        // re.split("([ \t]+)", fws + s), paired as (white space, text).
        let whole = format!("{fws}{s}");
        let mut parts: Vec<String> = vec![];
        let mut cur = String::new();
        let mut in_ws = false;
        for c in whole.chars() {
            let ws = c == ' ' || c == '\t';
            if ws != in_ws {
                parts.push(std::mem::take(&mut cur));
                in_ws = ws;
            }
            cur.push(c);
        }
        parts.push(cur);
        // parts alternates text, ws, text, ...; starts with text (maybe empty).
        if !parts[0].is_empty() {
            parts.insert(0, String::new());
        } else {
            parts.remove(0);
        }
        let mut it = parts.into_iter();
        while let (Some(f), Some(p)) = (it.next(), it.next()) {
            self.append_chunk(f, p);
        }
    }

    fn append_chunk(&mut self, fws: String, s: String) {
        self.cur.push(fws, s);
        if self.cur.len <= self.maxlen {
            return;
        }
        let n = self.cur.parts.len();
        let mut split_at = None;
        'outer: for ch in SPLITCHARS {
            for i in (1..n).rev() {
                if ch == ' ' || ch == '\t' {
                    let f = &self.cur.parts[i].0;
                    if f.starts_with(ch) {
                        split_at = Some(i);
                        break 'outer;
                    }
                }
                let prev = &self.cur.parts[i - 1].1;
                if prev.ends_with(ch) {
                    split_at = Some(i);
                    break 'outer;
                }
            }
        }
        match split_at {
            None => {
                let (mut f, p) = self.cur.pop();
                if self.cur.initial > 0 {
                    self.newline();
                    if f.is_empty() {
                        f = " ".into();
                    }
                }
                self.cur.push(f, p);
            }
            Some(i) => {
                let rest = self.cur.pop_from(i);
                self.lines.push(self.cur.text());
                self.cur.reset(rest);
            }
        }
    }
}

/// `email.header.Header`: chunks of text, each with its charset.
pub(crate) struct Header {
    chunks: Vec<(String, Charset)>,
    header_len: usize,
}

impl Header {
    /// An empty header; `name` counts toward the first line's length.
    pub fn new(name: Option<&str>) -> Header {
        Header {
            chunks: vec![],
            header_len: name.map(|n| clen(n) + 2).unwrap_or(0),
        }
    }

    /// `Header.append(s, charset, errors)`: with `strict`, text US-ASCII cannot hold
    /// switches to UTF-8 and text another charset cannot hold is an error; without it
    /// (Python's `errors='replace'`) the chunk keeps its charset and the problem, if
    /// any, shows when it is encoded.
    pub fn append(&mut self, s: &str, cs: Charset, strict: bool) -> Result<(), CharsetError> {
        let mut cs = cs;
        if strict && !cs.can_encode(s) {
            if !cs.is_us_ascii() {
                return Err(CharsetError::Unencodable { charset: cs.output });
            }
            cs = Charset::utf8();
        }
        self.chunks.push((s.to_string(), cs));
        Ok(())
    }

    /// `Header(value, header_name=name)` as the generator builds it for a plain string.
    pub fn from_str(value: &str, name: Option<&str>) -> Header {
        let mut h = Header::new(name);
        h.append(value, Charset::us_ascii(), true)
            .expect("US-ASCII falls back to UTF-8");
        h
    }

    fn normalize(&self) -> Vec<(String, Charset)> {
        let mut out: Vec<(String, Charset)> = vec![];
        let mut last: Option<(Vec<&str>, &Charset)> = None;
        for (s, cs) in &self.chunks {
            match &mut last {
                Some((v, lcs)) if *lcs == cs => v.push(s),
                _ => {
                    if let Some((v, lcs)) = last.take() {
                        out.push((v.join(" "), lcs.clone()));
                    }
                    last = Some((vec![s], cs));
                }
            }
        }
        if let Some((v, lcs)) = last {
            out.push((v.join(" "), lcs.clone()));
        }
        out
    }

    /// `Header.encode(maxlinelen=maxlen, linesep="\n")`; 0 means unlimited.
    pub fn encode(&self, maxlen: usize) -> Result<String, CharsetError> {
        let maxlen = if maxlen == 0 { 1_000_000 } else { maxlen };
        let mut f = Formatter {
            maxlen,
            lines: vec![],
            cur: Accumulator::new(self.header_len),
        };
        let chunks = self.normalize();
        let nonctext = |c: Option<char>| c.is_some_and(|c| py_space(c) || c == '(' || c == ')' || c == '\\');
        let mut first = true;
        let mut lastcs_ascii = true;
        let mut lastspace = false;
        let mut embedded = false;
        for (s, cs) in &chunks {
            let cs_ascii = cs.is_us_ascii();
            if !first {
                let hasspace = nonctext(s.chars().next());
                if !lastcs_ascii {
                    if !hasspace || !cs_ascii {
                        f.add_transition();
                    }
                } else if !cs_ascii && !lastspace {
                    f.add_transition();
                }
            }
            first = false;
            lastspace = nonctext(s.chars().last());
            lastcs_ascii = cs_ascii;
            let lines = splitlines(s);
            f.feed("", lines.first().copied().unwrap_or(""), cs)?;
            for line in lines.iter().skip(1) {
                f.newline();
                let sline = line.trim_start_matches(py_space);
                if cs.header_enc != Enc::None {
                    f.feed(" ", &format!(" {sline}"), cs)?;
                } else {
                    // Python kept the line's own leading white space (str.isspace(),
                    // so also U+001C..U+001F), none when it had none: a line that is no
                    // field, which ends the header (or one that is, which Python
                    // refused below). A space in front makes it a continuation; the
                    // refusal stays.
                    let fws = &line[..line.len() - sline.len()];
                    if fws.starts_with([' ', '\t']) {
                        f.feed(fws, sline, cs)?;
                    } else {
                        embedded |= has_embedded_header(&format!("\n{line}"));
                        f.feed(&format!(" {fws}"), sline, cs)?;
                    }
                }
            }
            if lines.len() > 1 {
                f.newline();
            }
        }
        if !chunks.is_empty() {
            f.add_transition();
        }
        let value = f.finish();
        if embedded || has_embedded_header(&value) {
            return Err(CharsetError::EmbeddedHeader { value });
        }
        Ok(value)
    }
}

/// Python's guard `\n[^ \t]+:` against a folded value that starts a new field.
fn has_embedded_header(v: &str) -> bool {
    v.split('\n').skip(1).any(|line| {
        let name_len = line.find([' ', '\t', ':']).unwrap_or(line.len());
        name_len > 0 && line[name_len..].starts_with(':')
    })
}

/// `email.utils.formataddr((name, address))` with its default UTF-8 charset. A
/// non-ASCII address is an error in Python; it is refused here too.
pub(crate) fn formataddr(name: &str, address: &str) -> Result<String, CharsetError> {
    // An internationalised address (RFC 6532) is written as it is, in UTF-8; the
    // transport then asks for SMTPUTF8. Python refused it, and TMDA deferred the
    // message for ever.
    if address.chars().any(char::is_control) {
        return Err(CharsetError::Unencodable {
            charset: "us-ascii".into(),
        });
    }
    if name.is_empty() {
        return Ok(address.to_string());
    }
    if !name.is_ascii() {
        return Ok(format!("{} <{address}>", Charset::utf8().header_encode(name)?));
    }
    let quotes = if name.chars().any(|c| "[]\\()<>@,:;\".".contains(c)) {
        "\""
    } else {
        ""
    };
    let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
    Ok(format!("{quotes}{escaped}{quotes} <{address}>"))
}

/// `email.base64mime.body_encode`: 57 bytes to a line, each line ending in `\n`.
pub(crate) fn base64_body(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + bytes.len() / 57 + 4);
    for chunk in bytes.chunks(57) {
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(chunk));
        out.push('\n');
    }
    out
}

/// `email.quoprimime.body_encode(body, 76, "\n")` over bytes (Python works on the
/// Latin-1 decoding of the encoded text, one character per byte).
pub(crate) fn qp_body(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    const MAXLEN: usize = 76;
    // translate(): every byte but printable ASCII, tab, CR and LF becomes =XX.
    let mut t: Vec<u8> = Vec::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if (b' '..=b'~').contains(&b) && b != b'=' || b == b'\t' || b == b'\r' || b == b'\n' {
            t.push(b);
        } else {
            t.extend_from_slice(format!("={b:02X}").as_bytes());
        }
    }
    let quote = |c: u8| format!("={c:02X}");
    let mut lines_out: Vec<String> = vec![];
    // splitlines on the translated text: only CR, LF and CRLF remain as breaks.
    let mut lines: Vec<&[u8]> = vec![];
    let mut start = 0;
    let mut i = 0;
    while i < t.len() {
        if t[i] == b'\n' || t[i] == b'\r' {
            lines.push(&t[start..i]);
            i += if t[i] == b'\r' && t.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            start = i;
        } else {
            i += 1;
        }
    }
    if start < t.len() {
        lines.push(&t[start..]);
    }
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for line in lines {
        let mut start = 0usize;
        let laststart = line.len() as isize - 1 - MAXLEN as isize;
        while start as isize <= laststart {
            let stop = start + MAXLEN - 1;
            if line[stop - 2] == b'=' {
                lines_out.push(s(&line[start..stop - 1]));
                start = stop - 2;
            } else if line[stop - 1] == b'=' {
                lines_out.push(s(&line[start..stop]));
                start = stop - 1;
            } else {
                lines_out.push(format!("{}=", s(&line[start..stop])));
                start = stop;
            }
        }
        match line.last() {
            Some(&last) if last == b' ' || last == b'\t' => {
                let room = start as isize - laststart;
                let q = if room >= 3 {
                    quote(last)
                } else if room == 2 {
                    format!("{}=\n", last as char)
                } else {
                    format!("=\n{}", quote(last))
                };
                lines_out.push(format!("{}{q}", s(&line[start..line.len() - 1])));
            }
            _ => lines_out.push(s(&line[start..])),
        }
    }
    if matches!(bytes.last(), Some(b'\r') | Some(b'\n')) {
        lines_out.push(String::new());
    }
    lines_out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_names_resolve_like_python() {
        let c = Charset::new("Latin-1").unwrap();
        assert_eq!(
            (c.input.as_str(), c.output.as_str(), c.header_enc),
            ("iso-8859-1", "iso-8859-1", Enc::Qp)
        );
        let c = Charset::new("UTF-8").unwrap();
        assert_eq!((c.output.as_str(), c.body_enc), ("utf-8", Enc::Base64));
        let c = Charset::new("euc-jp").unwrap();
        assert_eq!(c.output, "iso-2022-jp");
        let c = Charset::new("x-unknown").unwrap();
        assert_eq!((c.header_enc, c.body_enc), (Enc::Shortest, Enc::Base64));
        assert!(Charset::new("utf-8ä").is_err());
    }

    #[test]
    fn codecs_refuse_what_they_cannot_hold() {
        assert_eq!(Charset::new("iso-8859-1").unwrap().encode("bä").unwrap(), b"b\xe4");
        assert!(Charset::new("iso-8859-1").unwrap().encode("—").is_err());
        assert!(Charset::us_ascii().encode("ä").is_err());
        assert_eq!(Charset::new("koi8-r").unwrap().encode("plain").unwrap(), b"plain");
        assert!(matches!(
            Charset::new("koi8-r").unwrap().encode("ж"),
            Err(CharsetError::Unsupported { .. })
        ));
    }

    #[test]
    fn python_splitlines() {
        assert_eq!(splitlines("a\r\nb\rc\nd"), vec!["a", "b", "c", "d"]);
        assert_eq!(splitlines("a\n"), vec!["a"]);
        assert_eq!(splitlines(""), Vec::<&str>::new());
        assert_eq!(splitlines("a\u{2028}b"), vec!["a", "b"]);
    }

    #[test]
    fn ascii_header_folds_at_splitchars() {
        let v = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
        let h = Header::from_str(v, Some("Subject"));
        assert_eq!(
            h.encode(78).unwrap(),
            "one two three four five six seven eight nine ten eleven twelve\n thirteen fourteen"
        );
        // Unlimited keeps the value, existing folds included.
        let h = Header::from_str("a\r\n\tb", Some("X"));
        assert_eq!(h.encode(0).unwrap(), "a\n\tb");
    }

    #[test]
    fn encoded_words_split_like_python() {
        let mut h = Header::new(Some("Subject"));
        h.append(
            "Bitte bestätigen Sie Ihre Nachricht an testuser@nowhere.com - sehr lange Betreffzeile hier",
            Charset::new("ISO-8859-1").unwrap(),
            true,
        )
        .unwrap();
        assert_eq!(
            h.encode(78).unwrap(),
            "=?iso-8859-1?q?Bitte_best=E4tigen_Sie_Ihre_Nachricht_an_testuser=40?=\n =?iso-8859-1?q?nowhere=2Ecom_-_sehr_lange_Betreffzeile_hier?="
        );
    }

    #[test]
    fn every_line_break_python_knows_continues_the_field() {
        // Python's Header.encode splits values with str.splitlines(), which also breaks
        // at form feed, U+2028 and others, and wrote the next line without white space:
        // a line that is no field, which ends the header for every reader.
        for v in ["a\x0cb", "a\x0bb", "a\x1cb", "a\u{85}b", "a\u{2028}b", "a\x0c\x0cb"] {
            let h = Header::from_str(v, Some("Subject"));
            let out = h.encode(78).unwrap();
            assert!(
                out.split('\n').skip(1).all(|l| l.starts_with([' ', '\t'])),
                "{v:?}: {out:?}"
            );
        }
        assert_eq!(Header::from_str("a\x0cb", Some("Subject")).encode(78).unwrap(), "a\n b");
        assert_eq!(
            Header::from_str("a\x0c\tb", Some("Subject")).encode(78).unwrap(),
            "a\n\tb"
        );
        // Python's white space includes U+001F, which is no folding white space.
        assert_eq!(
            Header::from_str("a\x0c\x1fb", Some("Subject")).encode(78).unwrap(),
            "a\n \x1fb"
        );
        assert!(Header::from_str("a\x0c\x1fX: b", Some("Subject")).encode(78).is_err());
    }

    #[test]
    fn embedded_header_is_refused() {
        let h = Header::from_str("x\nBcc: victim@example.org", Some("Subject"));
        assert!(matches!(h.encode(78), Err(CharsetError::EmbeddedHeader { .. })));
    }

    #[test]
    fn formataddr_quotes_and_encodes() {
        assert_eq!(formataddr("Test User", "a@b").unwrap(), "Test User <a@b>");
        assert_eq!(formataddr("Doe, J.", "a@b").unwrap(), "\"Doe, J.\" <a@b>");
        assert_eq!(formataddr("a\"b", "a@b").unwrap(), "\"a\\\"b\" <a@b>");
        assert_eq!(formataddr("Jörg", "a@b").unwrap(), "=?utf-8?b?SsO2cmc=?= <a@b>");
        assert_eq!(formataddr("x", "ä@b").unwrap(), "x <ä@b>");
        assert!(formataddr("x", "a\r\nb@c").is_err());
    }

    #[test]
    fn body_encodings() {
        assert_eq!(
            base64_body(b"Hallo, Gr\xc3\xbc\xc3\x9fe!\n14 days 100%\n"),
            "SGFsbG8sIEdyw7zDn2UhCjE0IGRheXMgMTAwJQo=\n"
        );
        assert_eq!(qp_body(b"caf\xe9 = ok \nend"), "caf=E9 =3D ok=20\nend");
        let long = "x".repeat(80);
        assert_eq!(
            qp_body(long.as_bytes()),
            format!("{}=\n{}", "x".repeat(75), "x".repeat(5))
        );
    }
}
