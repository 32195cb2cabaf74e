//! A message's header block, kept byte for byte.
//!
//! Each field keeps its raw bytes (name, colon, value, folded continuation lines and
//! line ending), so fields we do not touch are written back exactly as they came.
//! Fields we set are rendered fresh, folded at whitespace before column 78
//! (RFC 5322 section 2.2.3), and use the message's own line ending.

/// The line ending a message uses; new fields follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Eol {
    #[default]
    Lf,
    CrLf,
}

impl Eol {
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Eol::Lf => b"\n",
            Eol::CrLf => b"\r\n",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    name: String,
    raw: Vec<u8>,
}

/// The header fields of one message, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    fields: Vec<Field>,
    pub eol: Eol,
}

/// Is this line the start of a header field (`name:` with a printable name)?
pub fn field_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
        return None;
    }
    std::str::from_utf8(name).ok()
}

impl Header {
    pub fn new(eol: Eol) -> Header {
        Header { fields: vec![], eol }
    }

    /// Split a header block into fields. `lines` must each include their line ending;
    /// the caller has already decided where the header ends.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a [u8]>, eol: Eol) -> Header {
        let mut fields: Vec<Field> = vec![];
        for line in lines {
            match field_name(line) {
                Some(name) if !line.starts_with(b" ") && !line.starts_with(b"\t") => fields.push(Field {
                    name: name.to_string(),
                    raw: line.to_vec(),
                }),
                _ => match fields.last_mut() {
                    Some(f) => f.raw.extend_from_slice(line),
                    // A continuation with nothing to continue: keep it as an odd field
                    // rather than drop bytes.
                    None => fields.push(Field {
                        name: String::new(),
                        raw: line.to_vec(),
                    }),
                },
            }
        }
        Header { fields, eol }
    }

    fn raw_value(f: &Field) -> &[u8] {
        let colon = f
            .raw
            .iter()
            .position(|&b| b == b':')
            .map(|i| i + 1)
            .unwrap_or(f.raw.len());
        &f.raw[colon..]
    }

    /// The value as Python's compat32 policy returns it (used for fingerprints):
    /// leading blanks stripped, folding kept as `\n`, final line ending removed.
    fn source_value(f: &Field) -> String {
        let v = String::from_utf8_lossy(Self::raw_value(f)).replace("\r\n", "\n");
        let v = v.trim_start_matches([' ', '\t']);
        v.trim_end_matches(['\r', '\n']).to_string()
    }

    /// The value unfolded (line breaks before white space removed) and trimmed.
    fn unfolded(f: &Field) -> String {
        let v = String::from_utf8_lossy(Self::raw_value(f));
        let mut out = String::with_capacity(v.len());
        let mut chars = v.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {}
                c => out.push(c),
            }
        }
        out.trim().to_string()
    }

    fn is(f: &Field, name: &str) -> bool {
        f.name.eq_ignore_ascii_case(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.fields.iter().any(|f| Self::is(f, name))
    }

    /// First value of `name`, unfolded.
    pub fn get(&self, name: &str) -> Option<String> {
        self.fields.iter().find(|f| Self::is(f, name)).map(Self::unfolded)
    }

    /// Every value of `name`, unfolded.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| Self::is(f, name))
            .map(Self::unfolded)
            .collect()
    }

    /// First value of `name` in Python compat32 form.
    pub fn get_source(&self, name: &str) -> Option<String> {
        self.fields.iter().find(|f| Self::is(f, name)).map(Self::source_value)
    }

    /// First value of `name` with its RFC 2047 encoded words decoded, as TMDA showed and
    /// matched it (Python's `make_header(decode_header(...))` on the compat32 value).
    pub fn get_decoded(&self, name: &str) -> Option<String> {
        self.get_source(name).map(|v| super::decode::decode_words(&v))
    }

    /// Remove every `name` field; returns how many there were.
    pub fn remove_all(&mut self, name: &str) -> usize {
        let before = self.fields.len();
        self.fields.retain(|f| !Self::is(f, name));
        before - self.fields.len()
    }

    fn render(&self, name: &str, value: &str) -> Field {
        // A field name is printable ASCII without ':' (RFC 5322 section 2.2); anything
        // else (from a config or filter) would end the field early or start another.
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_graphic() && c != ':' { c } else { '-' })
            .collect();
        Field {
            raw: fold(&name, value, self.eol),
            name,
        }
    }

    /// Set `name` to `value`: the first such field is replaced where it stands, any
    /// others are removed; if there was none, the field is appended.
    pub fn set(&mut self, name: &str, value: &str) {
        let new = self.render(name, value);
        match self.fields.iter().position(|f| Self::is(f, name)) {
            Some(i) => {
                self.fields[i] = new;
                let mut seen = 0;
                self.fields.retain(|f| {
                    if Self::is(f, name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.fields.push(new),
        }
    }

    pub fn append(&mut self, name: &str, value: &str) {
        let f = self.render(name, value);
        self.fields.push(f);
    }

    pub fn prepend(&mut self, name: &str, value: &str) {
        let f = self.render(name, value);
        self.fields.insert(0, f);
    }

    /// The header block as it goes before a body: the fields, then the empty line.
    pub fn to_block(&self) -> Vec<u8> {
        let mut out = self.to_bytes();
        out.extend_from_slice(self.eol.as_bytes());
        out
    }

    /// All fields, as bytes (without the blank line that ends the header).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.fields.iter().map(|f| f.raw.len()).sum());
        for f in &self.fields {
            out.extend_from_slice(&f.raw);
            // A last field without a line ending (header-only message) gets one.
            if !f.raw.ends_with(b"\n") {
                out.extend_from_slice(self.eol.as_bytes());
            }
        }
        out
    }

    /// Field names in order (for tests and logs).
    pub fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).collect()
    }
}

/// Render `Name: value` folded at white space so lines stay within 78 columns where
/// possible (a word longer than that stays whole rather than being broken). A CR or LF
/// in the value is white space like any other, so a value can never add a field of its
/// own (a display name given as "Jason\nBcc: x" stays inside the From field).
pub fn fold(name: &str, value: &str, eol: Eol) -> Vec<u8> {
    const LIMIT: usize = 78;
    let mut out = String::with_capacity(name.len() + value.len() + 8);
    out.push_str(name);
    out.push(':');
    let mut col = out.len();
    let mut first = true;
    for word in value.split([' ', '\t', '\r', '\n']).filter(|w| !w.is_empty()) {
        if !first && col + 1 + word.len() > LIMIT {
            out.push_str(std::str::from_utf8(eol.as_bytes()).unwrap());
            col = 0;
        }
        out.push(' ');
        out.push_str(word);
        col += 1 + word.len();
        first = false;
    }
    out.push_str(std::str::from_utf8(eol.as_bytes()).unwrap());
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Header {
        let lines: Vec<&[u8]> = text.as_bytes().split_inclusive(|&b| b == b'\n').collect();
        Header::from_lines(lines, if text.contains("\r\n") { Eol::CrLf } else { Eol::Lf })
    }

    #[test]
    fn untouched_fields_are_byte_identical() {
        let text = "Received: from a\n\tby b; Mon, 1 Jan 2024\nSubject:   folded\n  subject\nX-Odd:no-space\n";
        let h = header(text);
        assert_eq!(h.to_bytes(), text.as_bytes());
        assert_eq!(h.get("subject").as_deref(), Some("folded  subject"));
        assert_eq!(h.get_source("Subject").as_deref(), Some("folded\n  subject"));
        assert_eq!(h.get("x-odd").as_deref(), Some("no-space"));
        assert_eq!(h.names(), vec!["Received", "Subject", "X-Odd"]);
    }

    #[test]
    fn decoded_values_join_folded_words() {
        let h = header("Subject: =?utf-8?q?h=C3=A9?=\n =?utf-8?q?llo?=\nX-A: plain\n");
        assert_eq!(h.get_decoded("subject").as_deref(), Some("h\u{e9}llo"));
        assert_eq!(h.get_decoded("x-a").as_deref(), Some("plain"));
        assert_eq!(h.get_decoded("to"), None);
    }

    #[test]
    fn set_replaces_in_place_and_dedups() {
        let mut h = header("From: a@b\r\nTo: c@d\r\nFrom: x@y\r\nSubject: s\r\n");
        h.set("from", "Jason <j@x>");
        assert_eq!(h.to_bytes(), b"from: Jason <j@x>\r\nTo: c@d\r\nSubject: s\r\n");
        h.set("Reply-To", "r@x");
        assert_eq!(h.names(), vec!["from", "To", "Subject", "Reply-To"]);
        assert_eq!(h.remove_all("TO"), 1);
        h.prepend("Received", "by me");
        assert_eq!(h.names()[0], "Received");
    }

    #[test]
    fn folding() {
        let long = "word ".repeat(30);
        let f = String::from_utf8(fold("X-Long", long.trim(), Eol::Lf)).unwrap();
        for line in f.lines() {
            assert!(line.len() <= 78, "{line:?}");
        }
        assert!(f.lines().skip(1).all(|l| l.starts_with(' ')));
        let unfolded: String = f.replace("\n ", " ");
        assert_eq!(unfolded, format!("X-Long: {}\n", long.trim()));
        let huge = "x".repeat(100);
        assert_eq!(fold("A", &huge, Eol::CrLf), format!("A: {huge}\r\n").into_bytes());
    }

    #[test]
    fn a_value_or_name_cannot_add_a_field() {
        let mut h = header("To: a@x\n");
        h.set("From", "\"Jason\nBcc: evil@x\" <j@x>");
        h.append("X-A\r\nBcc", "v\rBcc: evil@x");
        let text = String::from_utf8(h.to_bytes()).unwrap();
        assert_eq!(
            text,
            "To: a@x\nFrom: \"Jason Bcc: evil@x\" <j@x>\nX-A--Bcc: v Bcc: evil@x\n"
        );
    }

    #[test]
    fn names_must_be_printable() {
        assert_eq!(field_name(b"Subject: x"), Some("Subject"));
        assert_eq!(field_name(b"Bad Name: x"), None);
        assert_eq!(field_name(b": x"), None);
        assert_eq!(field_name(b"no colon"), None);
    }
}
