//! The auto-response message: a rendered template turned into the MIME message TMDA's
//! `AutoResponse.create` builds (spec §6.4), written to a sink.
//!
//! Layout, by `AUTORESPONSE_INCLUDE_SENDER_COPY`: 0 a single `text/plain` part; 1
//! `multipart/mixed` of the text and the original's header as `text/rfc822-headers`;
//! 2 the text and the original as `message/rfc822`, its body replaced by a one-line
//! notice when the original is larger than `CONFIRM_MAX_MESSAGE_SIZE`. The original's
//! body is streamed from its source (it is read at most twice and never held whole),
//! and nothing of it is included beyond what the level and the size limit allow.
//!
//! The date, Message-ID and MIME boundary are inputs ([`Stamp`]), so a test can fix
//! them. Sending is the caller's: [`envelope`] gives the addresses TMDA would use.

use std::io::{self, Write};

use super::pyemail::{self, Charset, CharsetError, Header};
use crate::message::LineEndings;

/// Which auto-response this is; it picks the text part's description and the
/// `Auto-Submitted` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A confirmation request (`confirm_request.txt`).
    Request,
    /// A confirmation acceptance notice (`confirm_accept.txt`).
    Accept,
    /// A failure notice (`bounce_*.txt`).
    Bounce,
}

/// `AUTORESPONSE_INCLUDE_SENDER_COPY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderCopy {
    /// 0: the response text only.
    None,
    /// 1: the original's header block.
    Headers,
    /// 2: the whole original (up to `CONFIRM_MAX_MESSAGE_SIZE`).
    Full,
}

impl SenderCopy {
    /// From the configured number; TMDA treats anything above 2 like 2 and anything
    /// below 1 like 0.
    pub fn from_level(n: i64) -> SenderCopy {
        match n {
            i64::MIN..=0 => SenderCopy::None,
            1 => SenderCopy::Headers,
            _ => SenderCopy::Full,
        }
    }
}

/// Configuration that shapes the message (values the caller read from the config).
#[derive(Debug, Clone)]
pub struct Settings {
    pub sender_copy: SenderCopy,
    /// `CONFIRM_MAX_MESSAGE_SIZE` in bytes; 0 (or `None` in the config) = no limit.
    pub max_message_size: u64,
    /// `TEMPLATE_EMAIL_HEADERS` (default `from`, `reply-to`).
    pub email_headers: Vec<String>,
    /// `TEMPLATE_ENCODED_HEADERS` (default `subject`).
    pub encoded_headers: Vec<String>,
    /// `ADDED_HEADERS_SERVER`, as (name, value) pairs; applied in sorted name order.
    pub added_headers: Vec<(String, String)>,
    /// `PURGED_HEADERS_SERVER`.
    pub purged_headers: Vec<String>,
    /// The `X-Delivery-Agent` value.
    pub delivery_agent: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            sender_copy: SenderCopy::Full,
            max_message_size: 50000,
            email_headers: vec!["from".into(), "reply-to".into()],
            encoded_headers: vec!["subject".into()],
            added_headers: vec![],
            purged_headers: vec![],
            delivery_agent: DELIVERY_AGENT.into(),
        }
    }
}

/// Our `X-Delivery-Agent` (TMDA writes `TMDA/<version> (<codename>)`).
pub const DELIVERY_AGENT: &str = concat!("tmda/", env!("CARGO_PKG_VERSION"), " (TMDA 1.1.12 compatible)");

/// What differs per message and is not derived from the input.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// `Date:` value, e.g. `crate::clock::rfc2822(now)`.
    pub date: String,
    /// `Message-ID:` value, e.g. from [`message_id`].
    pub message_id: String,
    /// Random number below 2^63 for the MIME boundary (`===============<19 digits>==`).
    pub boundary_token: u64,
}

/// TMDA's Message-ID: `<SECONDS.PID.TAG@HOST>` (TAG = env `TMDAIDTAG` or `TMDA`; HOST =
/// env `TMDAIDHOST`, `QMAILIDHOST`, or the host name).
pub fn message_id(now: u64, pid: u32, tag: &str, host: &str) -> String {
    format!("<{now}.{pid}.{tag}@{host}>")
}

/// The original message: its raw header block (without the empty line that ends it)
/// and its body, which may be read more than once.
pub struct Original<'a> {
    pub header: &'a [u8],
    pub body: &'a dyn Body,
}

/// A message body that can be streamed (more than once).
pub trait Body {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn for_each_chunk(&self, f: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()>;
}

impl Body for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn for_each_chunk(&self, f: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        f(self)
    }
}

impl Body for crate::message::Message {
    fn len(&self) -> u64 {
        self.body_len()
    }
    fn for_each_chunk(&self, f: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        self.for_each_body_chunk(f)
    }
}

/// Building or writing the response failed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("template {origin}: {source}")]
    Charset {
        origin: String,
        #[source]
        source: CharsetError,
    },
    #[error(
        "template {origin}: the {field} field's address {} is not ASCII",
        crate::exit::quote(value)
    )]
    Address {
        origin: String,
        field: String,
        value: String,
    },
    #[error("writing the auto-response: {0}")]
    Io(#[from] io::Error),
}

/// A header value: a plain string (folded by the generator as Python does) or a
/// prepared `Header` with charset chunks.
enum Value {
    Str(String),
    Hdr(Header),
    /// Bytes written as they are (lines joined with LF): the original's non-ASCII fields.
    Raw(Vec<u8>),
}

struct Fields(Vec<(String, Value)>);

impl Fields {
    fn push(&mut self, name: &str, v: Value) {
        self.0.push((name.to_string(), v));
    }
    fn str(&mut self, name: &str, v: &str) {
        self.push(name, Value::Str(v.to_string()));
    }
    fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
    /// Python's generator output, folding at `maxlen` (0: no folding).
    fn write(&self, maxlen: usize, out: &mut Vec<u8>) -> Result<(), CharsetError> {
        for (name, v) in &self.0 {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            match v {
                Value::Str(s) => out.extend_from_slice(Header::from_str(s, Some(name)).encode(maxlen)?.as_bytes()),
                Value::Hdr(h) => out.extend_from_slice(h.encode(maxlen)?.as_bytes()),
                Value::Raw(b) => out.extend_from_slice(b),
            }
            out.push(b'\n');
        }
        Ok(())
    }
}

/// A field of a parsed header block: name and value as Python's compat32
/// `header_source_parse` keeps them (first line's leading blanks and the final line
/// end dropped, continuation lines kept with their line ends).
struct RawField<'a> {
    name: &'a [u8],
    value: Vec<u8>,
}

/// Split text into lines at CRLF, CR or LF, keeping the ends (Python's feed parser).
fn lines_with_ends(s: &[u8]) -> Vec<&[u8]> {
    let mut out = vec![];
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\n' => {
                out.push(&s[start..=i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                let end = if s.get(i + 1) == Some(&b'\n') { i + 2 } else { i + 1 };
                out.push(&s[start..end]);
                i = end;
                start = end;
            }
            _ => i += 1,
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn is_blank_line(l: &[u8]) -> bool {
    matches!(l, b"\n" | b"\r\n" | b"\r")
}

/// Python's feed parser on a header block: returns the fields and the offset where the
/// body starts (after the empty line, or at the first line that is not a header line).
fn parse_fields(text: &[u8]) -> (Vec<RawField<'_>>, usize) {
    let mut fields: Vec<(usize, Vec<&[u8]>)> = vec![];
    let mut pos = 0;
    let mut body_start = text.len();
    for line in lines_with_ends(text) {
        let here = pos;
        pos += line.len();
        if is_blank_line(line) {
            body_start = pos;
            break;
        }
        if line.starts_with(b"From ") {
            // The envelope line on the first line; elsewhere a defect Python skips.
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, lines)) = fields.last_mut() {
                lines.push(line);
            }
            continue;
        }
        let name_len = line.iter().position(|&b| !(0x21..=0x7e).contains(&b) || b == b':');
        match name_len {
            Some(0) if line[0] == b':' => continue, // empty name: a defect, skipped
            Some(i) if line[i] == b':' => fields.push((i, vec![line])),
            _ => {
                body_start = here;
                break;
            }
        }
    }
    let out = fields
        .into_iter()
        .map(|(i, lines)| {
            let first = &lines[0];
            let mut value: Vec<u8> = first[i + 1..]
                .iter()
                .copied()
                .skip_while(|&b| b == b' ' || b == b'\t')
                .collect();
            for l in &lines[1..] {
                value.extend_from_slice(l);
            }
            while value.last().is_some_and(|&b| b == b'\r' || b == b'\n') {
                value.pop();
            }
            RawField {
                name: &first[..i],
                value,
            }
        })
        .collect();
    (out, body_start)
}

/// The text part (`MIMEText(text, subtype, charset)`): its fields and encoded body.
fn text_part(text: &[u8], subtype: &str, charset_given: &str) -> Result<(Fields, Vec<u8>), CharsetError> {
    let cs = Charset::new(charset_given)?;
    let ct = format!(
        "text/{subtype}; charset=\"{}\"",
        cs.output.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let mut f = Fields(vec![]);
    // Python adds Content-Type with the name as given, then MIME-Version; setting the
    // payload rewrites the charset parameter to the output name, which moves the
    // field to the end when the text differs.
    if charset_given == cs.output {
        f.str("Content-Type", &ct);
        f.str("MIME-Version", "1.0");
    } else {
        f.str("MIME-Version", "1.0");
        f.str("Content-Type", &ct);
    }
    let bytes = match std::str::from_utf8(text) {
        Ok(s) => cs.encode(s)?,
        // Raw 8-bit text (an original's header block) is kept as it is.
        Err(_) => text.to_vec(),
    };
    let (cte, body) = match cs.body_enc {
        pyemail::Enc::Base64 => ("base64", pyemail::base64_body(&bytes).into_bytes()),
        pyemail::Enc::Qp => ("quoted-printable", pyemail::qp_body(&bytes).into_bytes()),
        _ => (if bytes.is_ascii() { "7bit" } else { "8bit" }, bytes),
    };
    f.str("Content-Transfer-Encoding", cte);
    Ok((f, body))
}

/// The charset parameter of the original's Content-Type, lower-cased, as
/// `get_content_charset('US-ASCII')` gives it.
fn content_charset(fields: &[RawField]) -> String {
    let Some(ct) = fields.iter().find(|f| f.name.eq_ignore_ascii_case(b"content-type")) else {
        return "US-ASCII".into();
    };
    let ct = String::from_utf8_lossy(&ct.value);
    for param in ct.split(';').skip(1) {
        if let Some((k, v)) = param.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
        {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            if v.is_ascii() && !v.is_empty() {
                return v.to_ascii_lowercase();
            }
        }
    }
    "US-ASCII".into()
}

/// A field value of the original as Python regenerates it: ASCII values folded at
/// `maxlen` by `Header.encode` (0 keeps the lines, re-joined with LF); others, and
/// values Python would refuse (a line break such as form feed that would start a new
/// field), kept as bytes with LF line ends.
fn regen_value(name: &str, value: &[u8], maxlen: usize) -> Value {
    match regen(name, value, maxlen) {
        Ok(s) => Value::Str(s),
        Err(b) => Value::Raw(b),
    }
}

/// [`regen_value`]: the folded text, or the raw bytes.
fn regen(name: &str, value: &[u8], maxlen: usize) -> Result<String, Vec<u8>> {
    if let Ok(s) = std::str::from_utf8(value)
        && s.is_ascii()
        && let Ok(once) = Header::from_str(s, Some(name)).encode(0)
    {
        if maxlen == 0 {
            return Ok(once);
        }
        if let Ok(folded) = Header::from_str(&once, Some(name)).encode(maxlen) {
            return Ok(folded);
        }
    }
    let mut out = vec![];
    let mut le = LineEndings::default();
    le.to_lf(value, &mut out);
    le.finish(&mut out, false);
    Err(out)
}

/// The original's header fields regenerated (no folding), as `msg_as_string` gives
/// them, ending with the empty line.
fn original_header_text(fields: &[RawField]) -> Vec<u8> {
    let mut out = vec![];
    for rf in fields {
        let name = String::from_utf8_lossy(rf.name);
        out.extend_from_slice(rf.name);
        out.extend_from_slice(b": ");
        match regen(&name, &rf.value, 0) {
            Ok(s) => out.extend_from_slice(s.as_bytes()),
            Err(b) => out.extend_from_slice(&b),
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// [`original_header_text`] of a raw header block.
pub(crate) fn original_header_block(header: &[u8]) -> Vec<u8> {
    original_header_text(&parse_fields(header).0)
}

/// Lines of the LF-normalised body that could collide with a boundary, and its length.
struct BodyScan {
    len: u64,
    marks: Vec<Vec<u8>>,
    cur: Vec<u8>,
    overflow: bool,
}

const MARK_MAX: usize = 80;

impl BodyScan {
    fn new() -> BodyScan {
        BodyScan {
            len: 0,
            marks: vec![],
            cur: vec![],
            overflow: false,
        }
    }

    fn feed(&mut self, lf: &[u8]) {
        self.len += lf.len() as u64;
        for &b in lf {
            if b == b'\n' {
                self.end_line();
            } else if self.cur.len() < MARK_MAX {
                self.cur.push(b);
            } else {
                self.overflow = true;
            }
        }
    }

    fn end_line(&mut self) {
        if !self.overflow && self.cur.starts_with(b"--=") {
            self.marks.push(std::mem::take(&mut self.cur));
        }
        self.cur.clear();
        self.overflow = false;
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        self.end_line();
        self.marks
    }
}

/// Python's `_make_boundary`: the token's boundary, or with `.0`, `.1`, ... appended
/// while a line of the content is `--boundary` or `--boundary--`.
fn make_boundary(token: u64, marks: &[Vec<u8>]) -> String {
    let base = format!("==============={:019}==", token % (1u64 << 63));
    let mut b = base.clone();
    let mut n = 0;
    while marks.iter().any(|m| {
        m.strip_prefix(b"--")
            .and_then(|m| m.strip_prefix(b.as_bytes()))
            .is_some_and(|rest| rest.is_empty() || rest == b"--")
    }) {
        b = format!("{base}.{n}");
        n += 1;
    }
    b
}

fn scan_lines(text: &[u8], marks: &mut Vec<Vec<u8>>) {
    let mut s = BodyScan::new();
    s.feed(text);
    marks.extend(s.finish());
}

/// One auto-response to build.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    pub kind: Kind,
    /// The template's rendered text (`Template::render`).
    pub rendered: &'a str,
    /// The template's name for errors (`Template::origin`).
    pub origin: &'a str,
    /// The `To:` address: the original's envelope sender.
    pub to: &'a str,
}

/// Build the auto-response and write it to `out`.
pub fn compose(
    reply: &Reply,
    original: &Original,
    settings: &Settings,
    stamp: &Stamp,
    out: &mut dyn Write,
) -> Result<(), ComposeError> {
    let Reply {
        kind,
        rendered,
        origin,
        to,
    } = *reply;
    let cerr = |source: CharsetError| ComposeError::Charset {
        origin: origin.to_string(),
        source,
    };
    let (tfields, body_at) = parse_fields(rendered.as_bytes());
    let tbody = &rendered[body_at.min(rendered.len())..];
    let body_charset = tfields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(b"bodycharset"))
        .map(|f| String::from_utf8_lossy(&f.value).into_owned())
        .unwrap_or_else(|| "US-ASCII".into());
    // Text that us-ascii cannot hold (an internationalised address substituted into the
    // template) goes out as UTF-8, where Python failed and the message was deferred.
    let body_charset =
        if !tbody.is_ascii() && matches!(body_charset.to_ascii_lowercase().as_str(), "us-ascii" | "ascii") {
            "utf-8".to_string()
        } else {
            body_charset
        };
    const BAD: [&str; 6] = [
        "mime-version",
        "content-type",
        "bodycharset",
        "content-transfer-encoding",
        "content-disposition",
        "content-description",
    ];
    let tfields: Vec<RawField> = tfields
        .into_iter()
        .filter(|f| !BAD.iter().any(|b| f.name.eq_ignore_ascii_case(b.as_bytes())))
        .collect();

    let (ofields, _) = parse_fields(original.header);
    let (mut top, text_body) = {
        let (mut f, b) = text_part(tbody.as_bytes(), "plain", &body_charset).map_err(cerr)?;
        if settings.sender_copy == SenderCopy::None {
            (f, b)
        } else {
            let desc = match kind {
                Kind::Request => "Confirmation Request",
                Kind::Accept => "Confirmation Acceptance",
                Kind::Bounce => "Failure Notice",
            };
            f.str("Content-Description", desc);
            f.str("Content-Disposition", "inline");
            let mut part = vec![];
            f.write(78, &mut part).map_err(cerr)?;
            part.push(b'\n');
            part.extend_from_slice(&b);
            let mut top = Fields(vec![]);
            top.str("Content-Type", "multipart/mixed");
            top.str("MIME-Version", "1.0");
            (top, part)
        }
    };
    top.str("Content-Disposition", "inline");

    // The template's own fields, in order, charset suffix removed.
    for rf in &tfields {
        let full = String::from_utf8_lossy(rf.name).into_owned();
        // `Name.charset`; a name that is only `.charset` stays the field's name (an
        // empty name would write `: value`, a line that ends the header).
        let (name, hcs) = match full.split_once('.') {
            Some((n, c)) if !n.is_empty() => (n.to_string(), c.to_string()),
            _ => (full.clone(), "US-ASCII".to_string()),
        };
        let value = String::from_utf8_lossy(&rf.value).into_owned();
        let ascii_cs = matches!(hcs.to_ascii_lowercase().as_str(), "ascii" | "us-ascii");
        let lname = name.to_ascii_lowercase();
        if settings.email_headers.iter().any(|h| h.eq_ignore_ascii_case(&lname)) {
            let (mut dname, addr) = crate::message::address::parseaddr(&value);
            if !dname.is_empty() && !ascii_cs {
                let mut h = Header::new(None);
                h.append(&dname, Charset::new(&hcs).map_err(cerr)?, false)
                    .map_err(cerr)?;
                dname = h.encode(76).map_err(cerr)?;
            }
            let v = pyemail::formataddr(&dname, &addr).map_err(|_| ComposeError::Address {
                origin: origin.to_string(),
                field: name.clone(),
                value: addr.clone(),
            })?;
            if !addr.is_ascii() && !v.chars().any(char::is_control) {
                // An internationalised address stays readable (RFC 6532): encoded as a
                // whole it would no longer be an address a reader can answer.
                top.push(&name, Value::Raw(v.into_bytes()));
            } else {
                top.str(&name, &v);
            }
        } else if !ascii_cs && settings.encoded_headers.iter().any(|h| h.eq_ignore_ascii_case(&lname)) {
            let cs = Charset::new(&hcs).map_err(cerr)?;
            let mut h = Header::new(Some(&name));
            for (text, chunk_cs) in decode_header(&value) {
                let c = match chunk_cs {
                    Some(c) => Charset::new(&c).map_err(cerr)?,
                    None => cs.clone(),
                };
                h.append(&text, c, true).map_err(cerr)?;
            }
            top.push(&name, Value::Hdr(h));
        } else {
            let mut h = Header::new(Some(&name));
            h.append(&value, Charset::new(&hcs).map_err(cerr)?, false)
                .map_err(cerr)?;
            top.push(&name, Value::Hdr(h));
        }
    }
    top.str("Date", &stamp.date);
    top.str("Message-ID", &stamp.message_id);
    let first = |n: &[u8]| ofields.iter().find(|f| f.name.eq_ignore_ascii_case(n));
    let mut refs: Vec<String> = vec![];
    for n in [&b"references"[..], b"message-id"] {
        if let Some(f) = first(n) {
            refs.extend(String::from_utf8_lossy(&f.value).split_whitespace().map(str::to_string));
        }
    }
    if !refs.is_empty() {
        top.str("References", &refs.join("\n\t"));
    }
    if let Some(f) = first(b"message-id") {
        top.push("In-Reply-To", regen_value("In-Reply-To", &f.value, 0));
    }
    top.str("To", to);
    top.str("Precedence", "bulk");
    top.str(
        "Auto-Submitted",
        if kind == Kind::Bounce {
            "auto-generated (failure)"
        } else {
            "auto-replied"
        },
    );
    top.str("X-Delivery-Agent", &settings.delivery_agent);
    let mut added = settings.added_headers.clone();
    added.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in &added {
        top.remove(k);
        top.str(k, v);
    }
    for k in &settings.purged_headers {
        top.remove(k);
    }

    if settings.sender_copy == SenderCopy::None {
        let mut head = vec![];
        top.write(78, &mut head).map_err(cerr)?;
        head.push(b'\n');
        out.write_all(&head)?;
        out.write_all(&text_body)?;
        return Ok(());
    }

    // The second part, up to its body.
    let mut marks: Vec<Vec<u8>> = vec![];
    scan_lines(&text_body, &mut marks);
    let mut second = vec![];
    let mut stream_body = false;
    let mut suppressed: Option<String> = None;
    match settings.sender_copy {
        SenderCopy::Headers => {
            let htext = original_header_text(&ofields);
            let htext = &htext[..htext.len() - 1];
            let (mut f, b) = text_part(htext, "rfc822-headers", &content_charset(&ofields)).map_err(cerr)?;
            f.str("Content-Description", "Original Message Headers");
            f.str("Content-Disposition", "inline");
            f.write(78, &mut second).map_err(cerr)?;
            second.push(b'\n');
            second.extend_from_slice(&b);
        }
        _ => {
            let mut f = Fields(vec![]);
            f.str("Content-Type", "message/rfc822");
            f.str("MIME-Version", "1.0");
            f.str("Content-Description", "Original Message");
            f.str("Content-Disposition", "inline");
            f.write(78, &mut second).map_err(cerr)?;
            second.push(b'\n');
            // The size TMDA compares: the regenerated header, the empty line and the
            // body with LF line ends (counted in bytes, where TMDA counted characters).
            let head_len = original_header_text(&ofields).len() as u64;
            let max = settings.max_message_size;
            let raw_total = head_len + original.body.len();
            let mut scan = None;
            let too_big = if max == 0 || raw_total <= max {
                false
            } else if raw_total > max.saturating_mul(2) {
                // LF line ends at most halve the size: no need to read the body.
                true
            } else {
                let s = normalised_scan(original.body)?;
                let big = head_len + s.len > max;
                scan = Some(s);
                big
            };
            for rf in &ofields {
                let name = String::from_utf8_lossy(rf.name).into_owned();
                let mut one = Fields(vec![]);
                one.push(&name, regen_value(&name, &rf.value, 78));
                one.write(78, &mut second).map_err(cerr)?;
            }
            second.push(b'\n');
            if too_big {
                suppressed = Some(format!("[ Message body suppressed (exceeded {max} bytes) ]"));
            } else {
                stream_body = true;
                let scan = match scan {
                    Some(s) => s,
                    None => normalised_scan(original.body)?,
                };
                marks.extend(scan.finish());
            }
        }
    }
    scan_lines(&second, &mut marks);
    if let Some(s) = &suppressed {
        scan_lines(s.as_bytes(), &mut marks);
    }
    let boundary = make_boundary(stamp.boundary_token, &marks);
    for (n, v) in top.0.iter_mut() {
        if n.eq_ignore_ascii_case("content-type")
            && let Value::Str(s) = v
            && s == "multipart/mixed"
        {
            *s = format!("multipart/mixed; boundary=\"{boundary}\"");
            break;
        }
    }
    let mut head = vec![];
    top.write(78, &mut head).map_err(cerr)?;
    head.push(b'\n');
    head.extend_from_slice(format!("--{boundary}\n").as_bytes());
    out.write_all(&head)?;
    out.write_all(&text_body)?;
    out.write_all(format!("\n--{boundary}\n").as_bytes())?;
    out.write_all(&second)?;
    if let Some(s) = &suppressed {
        out.write_all(s.as_bytes())?;
    }
    if stream_body {
        let mut le = LineEndings::default();
        let mut buf = Vec::with_capacity(64 * 1024);
        original.body.for_each_chunk(&mut |chunk| {
            buf.clear();
            le.to_lf(chunk, &mut buf);
            out.write_all(&buf)
        })?;
        buf.clear();
        le.finish(&mut buf, false);
        out.write_all(&buf)?;
    }
    out.write_all(format!("\n--{boundary}--\n").as_bytes())?;
    Ok(())
}

/// One pass over the body with LF line ends: its length and possible boundary lines.
fn normalised_scan(body: &dyn Body) -> io::Result<BodyScan> {
    let mut scan = BodyScan::new();
    let mut le = LineEndings::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    body.for_each_chunk(&mut |chunk| {
        buf.clear();
        le.to_lf(chunk, &mut buf);
        scan.feed(&buf);
        Ok(())
    })?;
    buf.clear();
    le.finish(&mut buf, false);
    scan.feed(&buf);
    Ok(scan)
}

/// `email.header.decode_header` for a template value: plain text is one chunk with no
/// charset; RFC 2047 encoded words become chunks in their own charsets (white space
/// between adjacent encoded words dropped). Words that do not decode stay as text.
fn decode_header(v: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = vec![];
    let mut rest = v;
    let mut last_was_word = false;
    let mut any_word = false;
    while let Some(start) = rest.find("=?") {
        let Some((word, text, cs)) = parse_encoded_word(&rest[start..]) else {
            let (lit, r) = rest.split_at(start + 2);
            push_plain(&mut out, lit);
            last_was_word = false;
            rest = r;
            continue;
        };
        let before = &rest[..start];
        if !(last_was_word && before.chars().all(char::is_whitespace)) {
            push_plain(&mut out, before);
        }
        match out.last_mut() {
            Some((t, Some(c))) if c.eq_ignore_ascii_case(&cs) => t.push_str(&text),
            _ => out.push((text, Some(cs))),
        }
        last_was_word = true;
        any_word = true;
        rest = &rest[start + word..];
    }
    push_plain(&mut out, rest);
    if !any_word {
        return vec![(v.to_string(), None)];
    }
    if let Some((t, None)) = out.first_mut() {
        *t = t.trim_start().to_string();
        if t.is_empty() {
            out.remove(0);
        }
    }
    if out.is_empty() {
        out.push((String::new(), None));
    }
    out
}

fn push_plain(out: &mut Vec<(String, Option<String>)>, s: &str) {
    if s.is_empty() {
        return;
    }
    match out.last_mut() {
        Some((t, None)) => t.push_str(s),
        _ => out.push((s.to_string(), None)),
    }
}

/// `=?charset?q|b?text?=` at the start of `s`: (length, decoded text, charset).
fn parse_encoded_word(s: &str) -> Option<(usize, String, String)> {
    let inner = s.strip_prefix("=?")?;
    let (cs, rest) = inner.split_once('?')?;
    let (enc, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let payload = &rest[..end];
    if cs.is_empty() || payload.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match enc {
        "q" | "Q" => {
            let mut b = vec![];
            let p = payload.as_bytes();
            let mut i = 0;
            while i < p.len() {
                let hex = p.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                match (p[i], hex) {
                    (b'_', _) => b.push(b' '),
                    (b'=', Some(h)) => {
                        b.push(u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?);
                        i += 2;
                    }
                    (c, _) => b.push(c),
                }
                i += 1;
            }
            b
        }
        "b" | "B" => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, payload).ok()?,
        _ => return None,
    };
    let cs_l = cs.to_ascii_lowercase();
    let text = match Charset::new(&cs_l).ok()?.output.as_str() {
        "utf-8" => String::from_utf8(bytes).ok()?,
        "iso-8859-1" => bytes.iter().map(|&b| b as char).collect(),
        _ if bytes.is_ascii() => String::from_utf8(bytes).ok()?,
        _ => return None,
    };
    let len = 2 + cs.len() + 1 + enc.len() + 1 + end + 2;
    Some((len, text, cs_l))
}

/// The envelope for an auto-response (spec §6.6): from `BOUNCE_ENV_SENDER` (empty
/// means the null sender `<>`) to the original's envelope sender. For the sendmail
/// transport under Postfix or qmail the null sender is passed as the empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub sender: String,
    pub recipient: String,
}

/// See [`Envelope`]. `mta` is `MAIL_TRANSFER_AGENT`; `sendmail_transport` is
/// `MAIL_TRANSPORT == "sendmail"`.
pub fn envelope(bounce_env_sender: &str, to: &str, mta: &str, sendmail_transport: bool) -> Envelope {
    let mut sender = if bounce_env_sender.is_empty() {
        "<>".to_string()
    } else {
        bounce_env_sender.to_string()
    };
    if sender == "<>" && sendmail_transport && (mta == "postfix" || mta == "qmail") {
        sender.clear();
    }
    Envelope {
        sender,
        recipient: to.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIG: &[u8] =
        b"From: Alice <alice@example.org>\r\nTo: me@example.com\r\nSubject: Hello\r\nMessage-ID: <abc@example.org>\r\n";

    fn stamp() -> Stamp {
        Stamp {
            date: "Tue, 14 Nov 2023 22:13:20 +0000".into(),
            message_id: "<1700000000.4242.TMDA@idhost.example>".into(),
            boundary_token: 1234567890123456789,
        }
    }

    fn run(settings: &Settings, kind: Kind, tpl: &str, body: &[u8]) -> Result<String, ComposeError> {
        let mut out = vec![];
        let orig = Original {
            header: ORIG,
            body: &body,
        };
        let r = Reply {
            kind,
            rendered: tpl,
            origin: "/t.txt",
            to: "alice@example.org",
        };
        compose(&r, &orig, settings, &stamp(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn full_copy_layout() {
        let s = Settings {
            delivery_agent: "X".into(),
            ..Settings::default()
        };
        let got = run(
            &s,
            Kind::Request,
            "From: \"A B\" <me@example.com>\nSubject: s\n\nBody\n",
            b"Hi\r\n",
        )
        .unwrap();
        let b = "===============1234567890123456789==";
        assert_eq!(
            got,
            format!(
                "Content-Type: multipart/mixed; boundary=\"{b}\"\nMIME-Version: 1.0\nContent-Disposition: inline\n\
                 From: A B <me@example.com>\nSubject: s\nDate: Tue, 14 Nov 2023 22:13:20 +0000\n\
                 Message-ID: <1700000000.4242.TMDA@idhost.example>\nReferences: <abc@example.org>\n\
                 In-Reply-To: <abc@example.org>\nTo: alice@example.org\nPrecedence: bulk\n\
                 Auto-Submitted: auto-replied\nX-Delivery-Agent: X\n\n--{b}\n\
                 MIME-Version: 1.0\nContent-Type: text/plain; charset=\"us-ascii\"\nContent-Transfer-Encoding: 7bit\n\
                 Content-Description: Confirmation Request\nContent-Disposition: inline\n\nBody\n\n--{b}\n\
                 Content-Type: message/rfc822\nMIME-Version: 1.0\nContent-Description: Original Message\n\
                 Content-Disposition: inline\n\nFrom: Alice <alice@example.org>\nTo: me@example.com\n\
                 Subject: Hello\nMessage-ID: <abc@example.org>\n\nHi\n\n--{b}--\n"
            )
        );
    }

    #[test]
    fn big_original_body_is_suppressed_and_never_read() {
        struct Boom;
        impl Body for Boom {
            fn len(&self) -> u64 {
                10_000_000
            }
            fn for_each_chunk(&self, _: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
                panic!("the body of an over-size original must not be read")
            }
        }
        let mut out = vec![];
        let orig = Original {
            header: ORIG,
            body: &Boom,
        };
        let r = Reply {
            kind: Kind::Bounce,
            rendered: "Subject: x\n\nb\n",
            origin: "/t",
            to: "a@b",
        };
        compose(&r, &orig, &Settings::default(), &stamp(), &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("\n\n[ Message body suppressed (exceeded 50000 bytes) ]\n--="),
            "{s}"
        );
        assert!(s.contains("Auto-Submitted: auto-generated (failure)\n"));
    }

    #[test]
    fn size_limit_counts_lf_bytes() {
        let head = original_header_block(ORIG).len() as u64;
        let body = b"x\r\n".repeat(100);
        let s = Settings {
            max_message_size: head + 200,
            ..Settings::default()
        };
        // 300 raw bytes, 200 with LF ends: exactly at the limit, so kept.
        assert!(run(&s, Kind::Request, "\nb", &body).unwrap().contains("x\nx\n"));
        let s = Settings {
            max_message_size: head + 199,
            ..Settings::default()
        };
        assert!(
            run(&s, Kind::Request, "\nb", &body)
                .unwrap()
                .contains("suppressed (exceeded")
        );
    }

    #[test]
    fn headers_only_and_text_only() {
        let s = Settings {
            sender_copy: SenderCopy::Headers,
            ..Settings::default()
        };
        let got = run(&s, Kind::Accept, "Subject: s\n\nBody\n", b"SECRET BODY\n").unwrap();
        assert!(!got.contains("SECRET"), "{got}");
        assert!(got.contains("Content-Type: text/rfc822-headers; charset=\"us-ascii\"\n"));
        assert!(got.contains("\n\nFrom: Alice <alice@example.org>\nTo: me@example.com\nSubject: Hello\nMessage-ID: <abc@example.org>\n\n--="));
        let s = Settings {
            sender_copy: SenderCopy::None,
            ..Settings::default()
        };
        let got = run(&s, Kind::Accept, "Subject: s\n\nBody\n", b"SECRET BODY\n").unwrap();
        assert!(got.starts_with("MIME-Version: 1.0\nContent-Type: text/plain; charset=\"us-ascii\"\nContent-Transfer-Encoding: 7bit\nContent-Disposition: inline\nSubject: s\n"), "{got}");
        assert!(got.ends_with("\n\nBody\n") && !got.contains("SECRET"));
    }

    #[test]
    fn boundary_avoids_collisions() {
        let b = "===============0000000000000000007==";
        let body = format!("--{b}\n--{b}.0--\n");
        let s = Settings::default();
        let mut out = vec![];
        let orig = Original {
            header: ORIG,
            body: &body.as_bytes(),
        };
        let st = Stamp {
            boundary_token: 7,
            ..stamp()
        };
        let r = Reply {
            kind: Kind::Request,
            rendered: "\nx",
            origin: "/t",
            to: "a@b",
        };
        compose(&r, &orig, &s, &st, &mut out).unwrap();
        let got = String::from_utf8(out).unwrap();
        assert!(got.contains(&format!("boundary=\"{b}.1\"")), "{got}");
    }

    #[test]
    fn added_and_purged_headers() {
        let s = Settings {
            added_headers: vec![("X-B".into(), "2".into()), ("precedence".into(), "junk".into())],
            purged_headers: vec!["x-delivery-agent".into()],
            ..Settings::default()
        };
        let got = run(&s, Kind::Request, "\nx", b"").unwrap();
        let head = &got[..got.find("\n\n").unwrap()];
        assert!(
            head.ends_with("Auto-Submitted: auto-replied\nX-B: 2\nprecedence: junk"),
            "{head}"
        );
        assert!(!head.contains("Precedence: bulk") && !head.contains("X-Delivery-Agent"));
    }

    #[test]
    fn template_cannot_inject_or_smuggle() {
        // A Bcc in the template is the user's own choice and stays; a value cannot add
        // fields (render() guards that); a field the parser sees as a fold stays one.
        let got = run(&Settings::default(), Kind::Request, "Subject: a\n Bcc: x\n\nb", b"").unwrap();
        assert!(got.contains("Subject: a\n Bcc: x\n"), "{got}");
        assert!(!got.contains("\nBcc:"));
        // A non-ASCII address in From is written in UTF-8 (RFC 6532; Python raised and
        // TMDA deferred the message for ever); a control character in one is refused.
        let got = run(&Settings::default(), Kind::Request, "From: A <ä@b>\n\nb", b"").unwrap();
        assert!(got.contains("From: A <ä@b>\n"), "{got}");
        assert!(matches!(
            run(&Settings::default(), Kind::Request, "From: A <a\u{1}@b>\n\nb", b""),
            Err(ComposeError::Address { .. })
        ));
        // Text us-ascii cannot hold goes out as UTF-8 rather than failing.
        let got = run(&Settings::default(), Kind::Request, "BodyCharset: us-ascii\n\nä", b"").unwrap();
        assert!(got.contains("charset=\"utf-8\""), "{got}");
        // Text another declared charset cannot hold is an error naming the template.
        let e = run(
            &Settings::default(),
            Kind::Request,
            "BodyCharset: iso-8859-1\n\n\u{20ac}",
            b"",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("template /t.txt: "), "{e}");
    }

    #[test]
    fn huge_header_values_fold_in_linear_time() {
        let subject = "word ".repeat(200_000);
        let tpl = format!("Subject: {subject}\n\nb");
        let t = std::time::Instant::now();
        let got = run(&Settings::default(), Kind::Request, &tpl, b"").unwrap();
        assert!(got.lines().all(|l| l.len() <= 78), "folded");
        assert!(t.elapsed().as_secs() < 20);
    }

    #[test]
    fn decode_header_chunks() {
        assert_eq!(decode_header("plain"), vec![("plain".to_string(), None)]);
        assert_eq!(
            decode_header("Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?= =?UTF-8?B?IQ==?= x"),
            vec![
                ("Re: ".to_string(), None),
                ("Grüße!".to_string(), Some("utf-8".to_string())),
                (" x".to_string(), None)
            ]
        );
    }

    #[test]
    fn envelope_rules() {
        assert_eq!(envelope("", "a@b", "exim", true).sender, "<>");
        assert_eq!(envelope("<>", "a@b", "postfix", true).sender, "");
        assert_eq!(envelope("<>", "a@b", "qmail", false).sender, "<>");
        assert_eq!(
            envelope("bounces@me", "a@b", "qmail", true),
            Envelope {
                sender: "bounces@me".into(),
                recipient: "a@b".into()
            }
        );
    }
}
