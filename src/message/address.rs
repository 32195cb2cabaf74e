//! Address lists in header fields: parsing `To:`-style values into (name, address)
//! pairs and formatting `Name <address>` the way Python's `email.utils` does, which is
//! what TMDA used (`getaddresses`, `parseaddr`, `formataddr`).

use base64::Engine as _;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Atom(String),
    Quoted(String),
    Comment(String),
    Literal(String),
    Special(char),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = vec![];
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                chars.next();
            }
            '"' => {
                chars.next();
                let mut q = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                q.push(n)
                            }
                        }
                        '"' => break,
                        c => q.push(c),
                    }
                }
                out.push(Tok::Quoted(q));
            }
            '(' => {
                chars.next();
                let mut depth = 1;
                let mut q = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                q.push(n)
                            }
                        }
                        '(' => {
                            depth += 1;
                            q.push(c)
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            q.push(c)
                        }
                        c => q.push(c),
                    }
                }
                out.push(Tok::Comment(q));
            }
            '[' => {
                chars.next();
                let mut q = String::from("[");
                for c in chars.by_ref() {
                    q.push(c);
                    if c == ']' {
                        break;
                    }
                }
                out.push(Tok::Literal(q));
            }
            '<' | '>' | ',' | ':' | ';' | '@' | '.' => {
                chars.next();
                out.push(Tok::Special(c));
            }
            _ => {
                let mut a = String::new();
                while let Some(&c) = chars.peek() {
                    if " \t\r\n\"(<>,:;@.[".contains(c) {
                        break;
                    }
                    a.push(c);
                    chars.next();
                }
                out.push(Tok::Atom(a));
            }
        }
    }
    out
}

/// Re-quote a local part that needs it (`"john doe"@example.com`).
fn quote_if_needed(s: &str) -> String {
    let atom_ok = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) || !c.is_ascii();
    if !s.is_empty() && s.chars().all(atom_ok) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Join tokens of an addr-spec back into text.
fn addr_text(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        match t {
            Tok::Atom(a) => s.push_str(a),
            Tok::Quoted(q) => s.push_str(&quote_if_needed(q)),
            Tok::Literal(l) => s.push_str(l),
            Tok::Special(c) => s.push(*c),
            Tok::Comment(_) => {}
        }
    }
    s
}

fn phrase_text(toks: &[Tok]) -> String {
    let mut words: Vec<String> = vec![];
    for t in toks {
        match t {
            Tok::Atom(a) | Tok::Quoted(a) | Tok::Literal(a) => words.push(a.clone()),
            // A dot belongs to the word before it ("Mr. J. Jones").
            Tok::Special('.') => match words.last_mut() {
                Some(w) => w.push('.'),
                None => words.push(".".into()),
            },
            _ => {}
        }
    }
    words.join(" ")
}

/// Parse one mailbox from its tokens.
fn mailbox(toks: &[Tok]) -> Option<(String, String)> {
    if toks.is_empty() {
        return None;
    }
    if let Some(lt) = toks.iter().position(|t| *t == Tok::Special('<')) {
        let gt = toks[lt..]
            .iter()
            .position(|t| *t == Tok::Special('>'))
            .map(|i| i + lt)
            .unwrap_or(toks.len());
        let mut inner = &toks[lt + 1..gt];
        // Drop an obsolete source route: <@a,@b:user@host>.
        if let Some(colon) = inner.iter().position(|t| *t == Tok::Special(':'))
            && inner.first() == Some(&Tok::Special('@'))
        {
            inner = &inner[colon + 1..];
        }
        let mut name = phrase_text(&toks[..lt]);
        if name.is_empty()
            && let Some(Tok::Comment(c)) = toks.iter().find(|t| matches!(t, Tok::Comment(_)))
        {
            name = c.clone();
        }
        return Some((name, addr_text(inner)));
    }
    let addr = addr_text(toks);
    let name = toks
        .iter()
        .filter_map(|t| match t {
            Tok::Comment(c) => Some(c.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    if addr.is_empty() && name.is_empty() {
        return None;
    }
    Some((name, addr))
}

/// Python's `email.utils.getaddresses`: every (name, address) in the given field values.
///
/// Our own tokenizer, not mail-parser's `parse_address`, which differs from Python on
/// values TMDA users write (353 of 1,521 generated lists came out differently): a bare
/// local name (`To: root`) is an address to Python and only a display name to
/// mail-parser; `"john doe"@example.com` becomes `@example.com` there (a wrong
/// recipient); `<@route:o@x.org>` keeps its source route there, where Python gives
/// `o@x.org`; and `a@b <c@d>` is two addresses to Python, one to mail-parser.
/// Groups contribute their members; empty entries are skipped.
pub fn getaddresses<S: AsRef<str>>(values: &[S]) -> Vec<(String, String)> {
    let mut out = vec![];
    for v in values {
        let toks = tokenize(v.as_ref());
        let mut current: Vec<Tok> = vec![];
        let mut in_angle = false;
        for t in toks {
            match t {
                Tok::Special('<') => {
                    in_angle = true;
                    current.push(t);
                }
                Tok::Special('>') => {
                    in_angle = false;
                    current.push(t);
                }
                Tok::Special(',') | Tok::Special(';') if !in_angle => {
                    out.extend(mailbox(&current));
                    current.clear();
                }
                // "Group name:" starts a group; its display name is not an address.
                Tok::Special(':') if !in_angle => current.clear(),
                t => current.push(t),
            }
        }
        out.extend(mailbox(&current));
    }
    out.retain(|(_, a)| !a.is_empty());
    out
}

/// Python's `email.utils.parseaddr`: the first mailbox of a field value.
pub fn parseaddr(value: &str) -> (String, String) {
    getaddresses(&[value]).into_iter().next().unwrap_or_default()
}

/// Python's `email.utils.formataddr`: `Name <address>`, with the name quoted when it
/// contains specials and RFC 2047-encoded (UTF-8, base64) when it is not ASCII.
pub fn formataddr(name: &str, address: &str) -> String {
    if name.is_empty() {
        return address.to_string();
    }
    if !name.is_ascii() {
        return format!("{} <{address}>", encode_words(name));
    }
    if name.chars().any(|c| "()<>@,:;.\"[]\\".contains(c)) {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\" <{address}>")
    } else {
        format!("{name} <{address}>")
    }
}

/// RFC 2047 encoded words for `text` (UTF-8), each at most 75 characters, split on
/// character boundaries and separated by a space (folding white space). Each word is
/// Q- or B-encoded, whichever is shorter (Q on a tie), as Python's `formataddr` chooses;
/// unlike Python, a long name becomes several words instead of one over-long one.
pub fn encode_words(text: &str) -> String {
    const MAX_RAW: usize = 45; // 45 bytes -> 60 base64 chars + 12 of wrapper = 72
    const MAX_PAYLOAD: usize = 75 - "=?utf-8?q??=".len();
    let mut words = vec![];
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_RAW {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            let b = base64::engine::general_purpose::STANDARD.encode(w.as_bytes());
            let q = q_encode(w.as_bytes());
            if q.len() <= b.len() && q.len() <= MAX_PAYLOAD {
                format!("=?utf-8?q?{q}?=")
            } else {
                format!("=?utf-8?b?{b}?=")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// RFC 2047 "Q" encoding as Python's email package writes it: letters, digits and
/// `-!*+/` as they are, space as `_`, every other byte `=XX`.
fn q_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        match b {
            b' ' => out.push('_'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'!' | b'*' | b'+' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[&str]) -> Vec<(String, String)> {
        getaddresses(v)
    }

    fn p(n: &str, a: &str) -> (String, String) {
        (n.to_string(), a.to_string())
    }

    #[test]
    fn address_lists_like_python() {
        assert_eq!(
            pairs(&["\"Smith, John\" <john@x.org>, jane@y.org (Jane Doe)", "Bob <bob@z.org>"]),
            vec![
                p("Smith, John", "john@x.org"),
                p("Jane Doe", "jane@y.org"),
                p("Bob", "bob@z.org")
            ]
        );
        assert_eq!(pairs(&["undisclosed-recipients:;"]), vec![]);
        assert_eq!(
            pairs(&["friends: a@x.org, B <b@y.org>;, c@z.org"]),
            vec![p("", "a@x.org"), p("B", "b@y.org"), p("", "c@z.org")]
        );
        assert_eq!(pairs(&["<@relay.org:user@host.org>"]), vec![p("", "user@host.org")]);
        assert_eq!(
            pairs(&["\"john doe\"@example.com"]),
            vec![p("", "\"john doe\"@example.com")]
        );
        assert_eq!(pairs(&["Mr. J. Jones <j@x>"]), vec![p("Mr. J. Jones", "j@x")]);
        assert_eq!(pairs(&["a@[127.0.0.1]"]), vec![p("", "a@[127.0.0.1]")]);
        assert_eq!(pairs(&["", " , ,"]), vec![]);
        assert_eq!(
            pairs(&["=?utf-8?q?J=C3=B6rg?= <j@x>"]),
            vec![p("=?utf-8?q?J=C3=B6rg?=", "j@x")]
        );
        assert_eq!(pairs(&["root"]), vec![p("", "root")]);
    }

    #[test]
    fn parseaddr_first_only() {
        assert_eq!(
            parseaddr("Jason <jason@mastaler.com>, other@x"),
            p("Jason", "jason@mastaler.com")
        );
        assert_eq!(parseaddr(""), p("", ""));
    }

    #[test]
    fn formataddr_like_python() {
        assert_eq!(formataddr("", "a@b"), "a@b");
        assert_eq!(formataddr("Plain Name", "p@example.com"), "Plain Name <p@example.com>");
        assert_eq!(formataddr("Smith, J", "j@example.com"), "\"Smith, J\" <j@example.com>");
        assert_eq!(formataddr("Jason R. Mastaler", "j@x"), "\"Jason R. Mastaler\" <j@x>");
        assert_eq!(formataddr("a\"b", "j@x"), "\"a\\\"b\" <j@x>");
        // Python: formataddr(('José Müller, Jr.', ...)) gives exactly this encoded word.
        assert_eq!(
            formataddr("José Müller, Jr.", "jose@example.com"),
            "=?utf-8?b?Sm9zw6kgTcO8bGxlciwgSnIu?= <jose@example.com>"
        );
        // Mostly ASCII: the Q form is the shorter one, and Python picks it.
        assert_eq!(formataddr("J\u{e4}son -", "j@x"), "=?utf-8?q?J=C3=A4son_-?= <j@x>");
    }

    #[test]
    fn long_names_split_into_several_words() {
        let name = "Ä".repeat(60);
        let enc = encode_words(&name);
        let words: Vec<&str> = enc.split(' ').collect();
        assert!(words.len() > 1);
        let mut decoded = String::new();
        for w in words {
            assert!(w.len() <= 75, "{w}");
            assert!(w.starts_with("=?utf-8?b?"), "all-umlaut text is shorter in base64: {w}");
            let b64 = w.trim_start_matches("=?utf-8?b?").trim_end_matches("?=");
            decoded
                .push_str(&String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap());
        }
        assert_eq!(decoded, name);
    }
}
