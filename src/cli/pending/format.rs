//! What `tmda pending` prints and stores, as pure functions: TMDA's summary and terse
//! lines (spec §10.3), RFC 2047 decoding as TMDA's `Util.decode_header` shows it, the
//! `--json` records, the `PENDING_CACHE` pickle (§10.4) and the digest's text.

use base64::Engine;

use crate::message::address::parseaddr;
use crate::message::header::Header;

/// A header value as TMDA shows it: the field as Python's compat32 `get` returns it
/// (folds kept), RFC 2047 words decoded; a missing field is `None`.
pub fn shown(header: &Header, name: &str) -> String {
    match header.get_source(name) {
        Some(v) => harmless(&decode_words(&v)),
        None => "None".into(),
    }
}

/// `s` with every control character but newline and tab as `?` (see
/// [`crate::exit::harmless`]): TMDA printed the sender's escapes as they came.
pub fn harmless(s: &str) -> String {
    crate::exit::harmless(s).into_owned()
}

/// The label of a summary line: the name capitalised, cut to 4, right-aligned in 4.
fn label(name: &str) -> String {
    let mut cap: String = name.chars().take(1).flat_map(char::to_uppercase).collect();
    cap.extend(name.chars().skip(1).flat_map(char::to_lowercase));
    let four: String = cap.chars().take(4).collect();
    format!("{four:>4}")
}

/// TMDA's summary block (without the empty line printed before it): the id line, one
/// `  >> Name: value` line per `SUMMARY_HEADERS`, and `<mailto:...>` with `-s`.
pub fn summary(
    id: &str,
    count: usize,
    total: usize,
    size: u64,
    header: &Header,
    names: &[String],
    mailto: Option<&str>,
) -> String {
    let mut s = format!("{id} (");
    if total != 0 {
        s.push_str(&format!("{count} of {total} / "));
    }
    s.push_str(&format!("{size} {})\n", if size == 1 { "byte" } else { "bytes" }));
    for n in names {
        s.push_str(&format!("  >> {}: {}\n", label(n), shown(header, n)));
    }
    if let Some(m) = mailto {
        s.push_str(&format!("<mailto:{m}>"));
    }
    s
}

/// The `From` display name and address, as Python's `parseaddr` splits them.
pub fn from_parts(header: &Header) -> (String, String) {
    header.get_source("From").map(|v| parseaddr(&v)).unwrap_or_default()
}

/// One value of `TERSE_SUMMARY_HEADERS`.
fn terse_value(header: &Header, name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "from_name" => {
            let (n, a) = from_parts(header);
            let v = if !n.is_empty() { n } else { a };
            if v.is_empty() {
                "None".into()
            } else {
                harmless(&decode_words(&v))
            }
        }
        "from_address" => {
            let (_, a) = from_parts(header);
            if a.is_empty() {
                "None".into()
            } else {
                harmless(&decode_words(&a))
            }
        }
        _ => shown(header, name),
    }
}

/// TMDA's terse line: the id and each value, tab-separated, newlines written `\n`.
pub fn terse(id: &str, header: &Header, names: &[String]) -> String {
    let mut s = id.to_string();
    for n in names {
        s.push('\t');
        s.push_str(&terse_value(header, n).replace('\n', "\\n"));
    }
    s
}

/// Decode RFC 2047 encoded words. Like Python's `email.header.decode_header` joined
/// with spaces, white space between two encoded words disappears; text that is not an
/// encoded word is kept. Charsets other than UTF-8, US-ASCII and ISO-8859-1 (and
/// words that do not decode) are left as written.
pub fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_string();
    }
    let mut out = String::new();
    let mut rest = value;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some((text, len)) = rest.starts_with("=?").then(|| encoded_word(rest)).flatten() {
            if !last_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&text);
            rest = &rest[len..];
            last_was_word = true;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_whitespace() && last_was_word {
            pending_space.push(c);
        } else {
            out.push_str(&pending_space);
            pending_space.clear();
            out.push(c);
            last_was_word = false;
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(&pending_space);
    out
}

/// `=?charset?Q|B?text?=` at the start of `s`: the decoded text and its length.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let body = &s[2..];
    let q1 = body.find('?')?;
    let charset = &body[..q1];
    let after = &body[q1 + 1..];
    let q2 = after.find('?')?;
    let enc = &after[..q2];
    let text_start = &after[q2 + 1..];
    let end = text_start.find("?=")?;
    let text = &text_start[..end];
    if text.contains(char::is_whitespace) {
        return None;
    }
    let len = 2 + q1 + 1 + q2 + 1 + end + 2;
    let bytes = match enc {
        "Q" | "q" => {
            let mut v = vec![];
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => v.push(b' '),
                    b'=' => {
                        let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                        v.push(u8::from_str_radix(h, 16).ok()?);
                        i += 2;
                    }
                    c => v.push(c),
                }
                i += 1;
            }
            v
        }
        "B" | "b" => base64::engine::general_purpose::STANDARD.decode(text).ok()?,
        _ => return None,
    };
    // RFC 2231 language suffix (`utf-8*en`).
    let cs = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
    let decoded = match cs.as_str() {
        "utf-8" | "utf8" | "us-ascii" | "ascii" => String::from_utf8_lossy(&bytes).into_owned(),
        "iso-8859-1" | "latin1" | "latin-1" => bytes.iter().map(|&b| b as char).collect(),
        _ => return None,
    };
    Some((decoded, len))
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_opt(s: Option<&str>) -> String {
    s.map(json_str).unwrap_or_else(|| "null".into())
}

/// One message as a `--json` object.
pub struct JsonRecord<'a> {
    pub id: &'a str,
    pub timestamp: u64,
    pub age: u64,
    pub size: u64,
    pub recipient: Option<&'a str>,
    pub return_path: &'a str,
    pub header: &'a Header,
    pub summary_headers: &'a [String],
    pub confirm_address: Option<&'a str>,
    pub action: Option<&'a str>,
}

impl JsonRecord<'_> {
    pub fn render(&self) -> String {
        let (name, address) = from_parts(self.header);
        let mut headers = String::from("{");
        for (i, n) in self.summary_headers.iter().enumerate() {
            if i > 0 {
                headers.push(',');
            }
            let v = self.header.get_source(n).map(|v| decode_words(&v));
            headers.push_str(&format!(
                "{}:{}",
                json_str(&n.to_ascii_lowercase()),
                json_opt(v.as_deref())
            ));
        }
        headers.push('}');
        format!(
            "{{\"id\":{},\"timestamp\":{},\"age\":{},\"size\":{},\"recipient\":{},\"return_path\":{},\"from_name\":{},\"from_address\":{},\"headers\":{},\"confirm_address\":{},\"action\":{}}}",
            json_str(self.id),
            self.timestamp,
            self.age,
            self.size,
            json_opt(self.recipient),
            json_str(self.return_path),
            json_opt(Some(decode_words(&name)).filter(|s| !s.is_empty()).as_deref()),
            json_opt(Some(address.as_str()).filter(|s| !s.is_empty())),
            headers,
            json_opt(self.confirm_address),
            json_opt(self.action),
        )
    }
}

/// The ids of a `PENDING_CACHE` file: a protocol-0 pickle of a list of strings, as
/// Python 2 (`S'...'`) or Python 3 (`V...`) writes it. `None`: not such a pickle.
pub fn parse_cache(bytes: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.trim().is_empty() {
        return Some(vec![]);
    }
    if !text.starts_with("(l") || !text.trim_end().ends_with('.') {
        return None;
    }
    let mut ids = vec![];
    for line in text.split('\n') {
        // Opcodes that start a line before the value: `(` mark, `l` list, `a` append.
        let op = line.trim_start_matches(['(', 'a']);
        if let Some(s) = op.strip_prefix("S'") {
            ids.push(s.strip_suffix('\'')?.to_string());
        } else if let Some(s) = op.strip_prefix('V') {
            ids.push(s.to_string());
        }
    }
    Some(ids)
}

/// A `PENDING_CACHE` file in Python 2's protocol-0 form, which every TMDA reads.
pub fn write_cache(ids: &[String]) -> Vec<u8> {
    let mut s = String::from("(lp1\n");
    for (i, id) in ids.iter().enumerate() {
        s.push_str(&format!("S'{id}'\np{}\na", i + 2));
    }
    s.push('.');
    s.into_bytes()
}

/// A coarse age: `45s`, `12m`, `5h`, `3d`, `7w`.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s if s < 86400 * 14 => format!("{}d", s / 86400),
        s => format!("{}w", s / (86400 * 7)),
    }
}

/// A size for people: `512 B`, `1.2 KB`, `3.4 MB`.
pub fn size(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{:.1} MB", n as f64 / (1024.0 * 1024.0)),
    }
}

/// One entry of the digest.
pub struct DigestItem {
    pub id: String,
    pub from: String,
    pub subject: String,
    pub date: String,
    pub age: u64,
    pub size: u64,
    pub release: String,
}

/// The digest message: plain text, UTF-8, one paragraph per held message.
pub fn digest(from: &str, to: &str, date: &str, message_id: &str, items: &[DigestItem]) -> Vec<u8> {
    let n = items.len();
    let plural = if n == 1 { "" } else { "s" };
    let mut s = String::new();
    for (k, v) in [
        ("From", from),
        ("To", to),
        ("Subject", &format!("TMDA: {n} new held message{plural}")),
        ("Date", date),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-generated"),
        ("Precedence", "bulk"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
    ] {
        s.push_str(&format!("{k}: {}\n", one_line(v)));
    }
    s.push('\n');
    s.push_str(&format!(
        "{n} new message{plural} from unknown senders {} held in your pending queue.\n\
         To release one, send a message (anything) to its release address: the link\n\
         opens your mail program. Or run: tmda pending -r ID\n",
        if n == 1 { "is" } else { "are" }
    ));
    for (i, it) in items.iter().enumerate() {
        s.push_str(&format!(
            "\n{}. From:    {}\n   Subject: {}\n   Held:    {} ({} ago), {}\n   Id:      {}\n   Release: <mailto:{}>\n",
            i + 1,
            one_line(&it.from),
            one_line(&it.subject),
            it.date,
            age(it.age),
            size(it.size),
            it.id,
            it.release
        ));
    }
    s.into_bytes()
}

/// A value on one line: folds and control characters become spaces.
fn one_line(v: &str) -> String {
    let s: String = v.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::header::Eol;

    fn header(text: &str) -> Header {
        Header::from_lines(
            text.split_inclusive('\n').map(str::as_bytes).collect::<Vec<_>>(),
            Eol::Lf,
        )
    }

    #[test]
    fn summary_is_tmdas() {
        let h = header("From: Alice <alice@example.org>\nSubject: hi\nX-Spam-Status: No\n");
        let names: Vec<String> = ["date", "from", "to", "subject", "x-spam-status"]
            .map(String::from)
            .into();
        assert_eq!(
            summary("1.2", 1, 3, 99, &h, &names, Some("a-confirm-accept.1.2.abcdef@x")),
            "1.2 (1 of 3 / 99 bytes)\n  >> Date: None\n  >> From: Alice <alice@example.org>\n  >>   To: None\n  >> Subj: hi\n  >> X-sp: No\n<mailto:a-confirm-accept.1.2.abcdef@x>"
        );
        assert_eq!(summary("1.2", 0, 0, 1, &h, &[], None), "1.2 (1 byte)\n");
    }

    #[test]
    fn terse_lines() {
        let h = header("From: \"Bob B.\" <bob@example.net>\nSubject: a folded\n\tsubject line\n");
        let names: Vec<String> = ["from_name", "from_address", "subject", "to"].map(String::from).into();
        assert_eq!(
            terse("1.2", &h, &names),
            "1.2\tBob B.\tbob@example.net\ta folded\\n\tsubject line\tNone"
        );
        let h = header("From: bob@example.net\n");
        assert_eq!(terse("1.2", &h, &["from_name".to_string()]), "1.2\tbob@example.net");
        assert_eq!(terse("1.2", &header("X: y\n"), &["from_name".to_string()]), "1.2\tNone");
    }

    #[test]
    fn encoded_words_decode() {
        assert_eq!(decode_words("=?utf-8?q?caf=C3=A9?="), "café");
        assert_eq!(
            decode_words("=?UTF-8?B?Y2Fmw6k=?= =?utf-8?q?_au_lait?="),
            "café au lait"
        );
        assert_eq!(decode_words("plain =?iso-8859-1?q?caf=E9?= text"), "plain café text");
        assert_eq!(decode_words("=?koi8-r?q?x?="), "=?koi8-r?q?x?=");
        assert_eq!(decode_words("=?utf-8?q?bad=Z?="), "=?utf-8?q?bad=Z?=");
        assert_eq!(decode_words("=?utf-8?q?trail="), "=?utf-8?q?trail=");
        assert_eq!(decode_words("=?"), "=?");
    }

    #[test]
    fn cache_pickles_round_trip() {
        let py2 = b"(lp1\nS'1796510659.11022'\np2\naS'1796510659.11013'\np3\na.";
        let ids = parse_cache(py2).unwrap();
        assert_eq!(ids, ["1796510659.11022", "1796510659.11013"]);
        assert_eq!(write_cache(&ids), py2.to_vec());
        let py3 = b"(lp0\nV1796510659.11022\np1\naV1796510659.11013\np2\na.";
        assert_eq!(parse_cache(py3).unwrap(), ids);
        assert_eq!(parse_cache(b"(lp1\n.").unwrap(), Vec::<String>::new());
        assert!(parse_cache(b"\x80\x04garbage").is_none());
        assert!(parse_cache(b"(lp1\nS'unterminated\np2\na.").is_none());
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn digest_text() {
        let m = String::from_utf8(digest(
            "me@x",
            "me-keyword-d.abc@x",
            "Sat, 05 Dec 2026 22:38:53 +0000",
            "<1@x>",
            &[DigestItem {
                id: "1.2".into(),
                from: "Alice\n <a@b>".into(),
                subject: "hi".into(),
                date: "D".into(),
                age: 7200,
                size: 2048,
                release: "me-confirm-accept.1.2.abcdef@x".into(),
            }],
        ))
        .unwrap();
        assert!(m.contains("Subject: TMDA: 1 new held message\n"), "{m}");
        assert!(m.contains("1. From:    Alice <a@b>\n"), "{m}");
        assert!(m.contains("Held:    D (2h ago), 2.0 KB\n"), "{m}");
        assert!(m.contains("Release: <mailto:me-confirm-accept.1.2.abcdef@x>\n"), "{m}");
    }
}
