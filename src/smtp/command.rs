//! Parsing one SMTP command line (without its CRLF) into a [`Command`].

/// ESMTP parameters of MAIL or RCPT: (upper-case keyword, value).
pub type Params = Vec<(String, Option<String>)>;

/// A parsed command. Addresses are without angle brackets; the null sender is "".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail {
        from: String,
        params: Vec<(String, Option<String>)>,
    },
    Rcpt {
        to: String,
        params: Vec<(String, Option<String>)>,
    },
    Data,
    Rset,
    Noop,
    Quit,
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    Help,
    Vrfy,
    Unknown(String),
}

/// Why a line is not a valid command; carries the usage for the 501 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub &'static str);

/// Longest address accepted in MAIL/RCPT (RFC 5321 section 4.5.3.1.3 allows 256 octets
/// in the path).
const MAX_PATH: usize = 256;

impl Command {
    pub fn parse(line: &str) -> Result<Command, SyntaxError> {
        let (verb, arg) = match line.find(' ') {
            Some(i) => (&line[..i], line[i + 1..].trim()),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        let no_arg = |c: Command, usage: &'static str| if arg.is_empty() { Ok(c) } else { Err(SyntaxError(usage)) };
        // The name goes into the Received field: control characters have no place there.
        let name_ok = !arg.is_empty() && !arg.chars().any(char::is_control);
        match verb.as_str() {
            "EHLO" if name_ok => Ok(Command::Ehlo(arg.to_string())),
            "EHLO" => Err(SyntaxError("EHLO hostname")),
            "HELO" if name_ok => Ok(Command::Helo(arg.to_string())),
            "HELO" => Err(SyntaxError("HELO hostname")),
            "MAIL" => {
                let (from, params) = path(arg, "FROM:").ok_or(SyntaxError("MAIL FROM:<address>"))?;
                Ok(Command::Mail { from, params })
            }
            "RCPT" => {
                let (to, params) = path(arg, "TO:").ok_or(SyntaxError("RCPT TO:<address>"))?;
                if to.is_empty() {
                    return Err(SyntaxError("RCPT TO:<address>"));
                }
                Ok(Command::Rcpt { to, params })
            }
            "DATA" => no_arg(Command::Data, "DATA"),
            "RSET" => no_arg(Command::Rset, "RSET"),
            // RFC 5321 4.1.1.9: NOOP may carry a string, which is ignored.
            "NOOP" => Ok(Command::Noop),
            "QUIT" => no_arg(Command::Quit, "QUIT"),
            "STARTTLS" => no_arg(Command::StartTls, "STARTTLS (no parameters allowed)"),
            "AUTH" => {
                let mut it = arg.split_whitespace();
                let mechanism = it
                    .next()
                    .ok_or(SyntaxError("AUTH mechanism [initial-response]"))?
                    .to_ascii_uppercase();
                let initial = it.next().map(String::from);
                if it.next().is_some() {
                    return Err(SyntaxError("AUTH mechanism [initial-response]"));
                }
                Ok(Command::Auth { mechanism, initial })
            }
            "HELP" => Ok(Command::Help),
            "VRFY" | "EXPN" => Ok(Command::Vrfy),
            _ => Ok(Command::Unknown(verb)),
        }
    }

    /// Whether `line` is MAIL, RCPT or DATA (well-formed or not): the commands that are
    /// refused before AUTH whatever their arguments.
    pub fn needs_auth(line: &str) -> bool {
        let verb = line.split(' ').next().unwrap_or_default();
        ["MAIL", "RCPT", "DATA"].iter().any(|v| verb.eq_ignore_ascii_case(v))
    }

    /// Commands `--tls=on` allows before STARTTLS (TMDA's list, plus HELO and RSET).
    pub fn allowed_before_tls(&self) -> bool {
        matches!(
            self,
            // RFC 3207 section 4: only these before the TLS negotiation when it is required.
            Command::Ehlo(_) | Command::Noop | Command::StartTls | Command::Quit
        )
    }
}

/// `FROM:<addr> PARAM=VALUE ...` (a space after the colon and a missing pair of angle
/// brackets are tolerated, as many clients do it).
fn path(arg: &str, keyword: &str) -> Option<(String, Params)> {
    // `get`, not indexing: the cut may fall inside a multi-byte character ("FROMé:").
    if !arg.get(..keyword.len())?.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    // Nothing after the colon is no address at all: only `<>` is the null sender.
    if rest.is_empty() {
        return None;
    }
    let (addr, rest) = if let Some(inner) = rest.strip_prefix('<') {
        let close = inner.find('>')?;
        (&inner[..close], &inner[close + 1..])
    } else {
        let end = rest.find(' ').unwrap_or(rest.len());
        (&rest[..end], &rest[end..])
    };
    if addr.len() > MAX_PATH || addr.chars().any(|c| c.is_control() || c == ' ' || c == '<' || c == '>') {
        return None;
    }
    // Drop an obsolete source route (<@a,@b:user@host>).
    let addr = match addr.strip_prefix('@') {
        Some(_) => addr.split_once(':')?.1,
        None => addr,
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let mut params = vec![];
    for p in rest.split_whitespace() {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (p, None),
        };
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return None;
        }
        params.push((k.to_ascii_uppercase(), v));
    }
    Some((addr.to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, SyntaxError> {
        Command::parse(s)
    }

    #[test]
    fn table() {
        let mail = |from: &str, params: &[(&str, Option<&str>)]| Command::Mail {
            from: from.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(String::from)))
                .collect(),
        };
        for (line, want) in [
            ("EHLO client.example", Ok(Command::Ehlo("client.example".into()))),
            ("ehlo  [127.0.0.1]", Ok(Command::Ehlo("[127.0.0.1]".into()))),
            ("EHLO", Err(SyntaxError("EHLO hostname"))),
            ("EHLO a\rb", Err(SyntaxError("EHLO hostname"))),
            ("HELO a\u{1b}[31m", Err(SyntaxError("HELO hostname"))),
            ("HELO x", Ok(Command::Helo("x".into()))),
            ("MAIL FROM:<a@b.c>", Ok(mail("a@b.c", &[]))),
            (
                "mail from: <a@b.c> SIZE=1000 BODY=8BITMIME",
                Ok(mail("a@b.c", &[("SIZE", Some("1000")), ("BODY", Some("8BITMIME"))])),
            ),
            ("MAIL FROM:<>", Ok(mail("", &[]))),
            ("MAIL FROM: <>", Ok(mail("", &[]))),
            // Only <> is the null sender: nothing after the colon is a syntax error.
            ("MAIL FROM:", Err(SyntaxError("MAIL FROM:<address>"))),
            ("MAIL FROM:   ", Err(SyntaxError("MAIL FROM:<address>"))),
            ("MAIL FROM:<> AUTH=<>", Ok(mail("", &[("AUTH", Some("<>"))]))),
            ("MAIL FROM:a@b.c", Ok(mail("a@b.c", &[]))),
            (
                "MAIL FROM:<@relay:a@b.c> SMTPUTF8",
                Ok(mail("a@b.c", &[("SMTPUTF8", None)])),
            ),
            ("MAIL FROM:<a b@c>", Err(SyntaxError("MAIL FROM:<address>"))),
            ("MAIL TO:<a@b.c>", Err(SyntaxError("MAIL FROM:<address>"))),
            ("MAIL FROM:<a@b.c>junk", Err(SyntaxError("MAIL FROM:<address>"))),
            ("MAIL", Err(SyntaxError("MAIL FROM:<address>"))),
            (
                "RCPT TO:<x@y>",
                Ok(Command::Rcpt {
                    to: "x@y".into(),
                    params: vec![],
                }),
            ),
            ("RCPT TO:<>", Err(SyntaxError("RCPT TO:<address>"))),
            ("DATA", Ok(Command::Data)),
            ("DATA x", Err(SyntaxError("DATA"))),
            ("RSET", Ok(Command::Rset)),
            ("NOOP anything", Ok(Command::Noop)),
            ("QUIT", Ok(Command::Quit)),
            ("STARTTLS", Ok(Command::StartTls)),
            ("STARTTLS now", Err(SyntaxError("STARTTLS (no parameters allowed)"))),
            (
                "AUTH plain AGZvbwBiYXI=",
                Ok(Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial: Some("AGZvbwBiYXI=".into()),
                }),
            ),
            (
                "AUTH LOGIN",
                Ok(Command::Auth {
                    mechanism: "LOGIN".into(),
                    initial: None,
                }),
            ),
            ("AUTH", Err(SyntaxError("AUTH mechanism [initial-response]"))),
            ("AUTH PLAIN a b", Err(SyntaxError("AUTH mechanism [initial-response]"))),
            ("VRFY root", Ok(Command::Vrfy)),
            ("FROB", Ok(Command::Unknown("FROB".into()))),
        ] {
            assert_eq!(p(line), want, "{line:?}");
        }
        assert!(p(&format!("MAIL FROM:<{}@x>", "a".repeat(300))).is_err());
    }

    // A multi-byte character where the keyword's colon should be is a syntax error,
    // not a slice through the character. See: #10 (point 9).
    #[test]
    fn non_ascii_in_the_keyword_is_a_syntax_error() {
        for (line, usage) in [
            ("MAIL FROMé:", "MAIL FROM:<address>"),
            ("MAIL FROMé:<a@b.c>", "MAIL FROM:<address>"),
            ("MAIL FRé", "MAIL FROM:<address>"),
            ("MAIL é", "MAIL FROM:<address>"),
            ("RCPT TOé", "RCPT TO:<address>"),
            ("RCPT Té:<a@b.c>", "RCPT TO:<address>"),
            ("RCPT \u{1f600}", "RCPT TO:<address>"),
        ] {
            assert_eq!(p(line), Err(SyntaxError(usage)), "{line:?}");
        }
        // Non-ASCII after the keyword is still an address (RFC 6531).
        assert_eq!(
            p("RCPT TO:<é@b.c>"),
            Ok(Command::Rcpt {
                to: "é@b.c".into(),
                params: vec![]
            })
        );
    }
}
