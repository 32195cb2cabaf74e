//! What only incoming filters have: the message as a source (`body`, `headers`,
//! `body-file`, `headers-file`, `size`, `pipe`, `pipe-headers`), ezmlm subscriber lists,
//! and dispositions (ok/accept/deliver, bounce/reject, drop/exit/stop, confirm, hold).
//!
//! Differences from TMDA, on purpose:
//! - `size` counts bytes (TMDA's Python 3 ports counted characters).
//! - A disposition written in capitals (`OK`) works; TMDA parsed it but then ignored the
//!   rule and went on to the next.
//! - An option in quotes (`deliver="|procmail -m rc"`) loses its quotes; TMDA kept them.
//! - Regular expressions are Python-like (lookaround and backreferences work) with a
//!   bound on backtracking; one that runs past the bound is an error (exit 75, the MTA
//!   retries) rather than a hang. `body` rules see at most [`BODY_MATCH_LIMIT`] bytes.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::{Direction, Rule, Source, Then};

/// How much of a body `body` and `body-file` rules search (the start of the body).
pub const BODY_MATCH_LIMIT: usize = 8 << 20;
/// How long a `pipe` rule's command may run.
pub const PIPE_TIMEOUT: Duration = Duration::from_secs(60);

/// What an incoming rule does with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    /// ok, accept, deliver[=INSTRUCTION]
    Accept,
    /// bounce, reject[=TEMPLATE]
    Bounce,
    /// drop, exit, stop
    Drop,
    /// confirm[=TEMPLATE]
    Confirm,
    /// hold
    Hold,
}

/// A disposition as written: the kind, the word used (for logs) and its `=OPTION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub kind: Disposal,
    /// The action word in lower case (`deliver`, `reject`, ...).
    pub word: String,
    pub option: Option<String>,
}

impl Disposition {
    /// Parse an incoming action: `drop|exit|stop|hold|(confirm|bounce|reject|deliver|ok|accept)[=OPTION]`,
    /// the whole rest of the line; the option may contain spaces (`deliver=|procmail -m rc`).
    /// `None` when the text is no incoming action.
    pub fn parse(text: &str) -> Option<Result<Disposition, String>> {
        let text = text.trim();
        let (word, option) = match text.split_once('=') {
            Some((w, o)) => (w.trim(), Some(o.trim().to_string())),
            None => (text, None),
        };
        let lower = word.to_ascii_lowercase();
        let kind = match lower.as_str() {
            "ok" | "accept" | "deliver" => Disposal::Accept,
            "bounce" | "reject" => Disposal::Bounce,
            "drop" | "exit" | "stop" => Disposal::Drop,
            "confirm" => Disposal::Confirm,
            "hold" => Disposal::Hold,
            _ => return None,
        };
        if option.is_some() && matches!(kind, Disposal::Drop | Disposal::Hold) {
            return Some(Err(format!("\"{lower}\" takes no value")));
        }
        if word.contains(char::is_whitespace) {
            return None;
        }
        // deliver="|procmail -m rc": the quotes are not part of the instruction (TMDA
        // kept them, and every message then failed with an unknown instruction).
        let option = option.map(|o| {
            let q = o.chars().next().filter(|c| *c == '"' || *c == '\'');
            match q {
                Some(q) if o.len() >= 2 && o.ends_with(q) => o[1..o.len() - 1].to_string(),
                _ => o,
            }
        });
        Some(Ok(Disposition {
            kind,
            word: lower,
            option: option.filter(|o| !o.is_empty()),
        }))
    }
}

/// The message an incoming rule may look at.
pub trait Body: Sync {
    /// The start of the body (at most [`BODY_MATCH_LIMIT`] bytes are searched).
    fn prefix(&self) -> &[u8];
    /// The whole body, for `pipe` rules.
    fn reader(&self) -> std::io::Result<Box<dyn Read + '_>>;
    /// Whether the body is empty.
    fn is_empty(&self) -> bool {
        self.prefix().is_empty()
    }
}

impl Body for &[u8] {
    fn prefix(&self) -> &[u8] {
        &self[..self.len().min(BODY_MATCH_LIMIT)]
    }
    fn reader(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(*self))
    }
}

/// The incoming message's parts, as the rules see them.
pub struct MessageView<'a> {
    /// The header block as received (folded lines kept, no `From_` line, LF line ends),
    /// up to and including the newline of its last field.
    pub headers: &'a str,
    pub body: &'a dyn Body,
    /// The message's size in bytes.
    pub size: u64,
    /// The body's searched start as text, made once for all body rules.
    body_text: std::sync::OnceLock<String>,
}

impl<'a> MessageView<'a> {
    pub fn new(headers: &'a str, body: &'a dyn Body, size: u64) -> MessageView<'a> {
        MessageView {
            headers,
            body,
            size,
            body_text: std::sync::OnceLock::new(),
        }
    }

    fn body_text(&self) -> &str {
        self.body_text
            .get_or_init(|| String::from_utf8_lossy(self.body.prefix()).into_owned())
    }
}

/// What a filter is asked about.
pub struct Subject<'a> {
    pub direction: Direction,
    /// Keys for `to*` rules.
    pub recipients: &'a [&'a str],
    /// Keys for `from*` rules (incoming: the envelope sender, X-Primary-Address, From
    /// and Reply-To addresses, in that order).
    pub senders: &'a [&'a str],
    /// The message (incoming; `None` under `tmda filter -M`, where message rules never match).
    pub message: Option<MessageView<'a>>,
}

impl Default for Subject<'_> {
    fn default() -> Self {
        Subject {
            direction: Direction::Outgoing,
            recipients: &[],
            senders: &[],
            message: None,
        }
    }
}

/// A Python-like regular expression as TMDA's `body`/`headers` rules use it: MULTILINE,
/// and IGNORECASE unless `-case`.
pub fn regex(pattern: &str, case: bool) -> Result<fancy_regex::Regex, String> {
    let flags = if case { "(?m)" } else { "(?mi)" };
    fancy_regex::RegexBuilder::new(&format!("{flags}{pattern}"))
        .backtrack_limit(1_000_000)
        .build()
        .map_err(|e| format!("bad regular expression {}: {e}", crate::exit::quote(pattern)))
}

fn search(re: &fancy_regex::Regex, text: &str) -> Result<bool, String> {
    re.is_match(text).map_err(|e| {
        format!(
            "regular expression {} could not be run: {e}",
            crate::exit::quote(re.as_str())
        )
    })
}

/// `size` patterns: `<N` or `>N` (bytes). Another first character never matches.
pub fn size_pattern(pattern: &str) -> Result<Option<(char, u64)>, String> {
    let mut chars = pattern.chars();
    let op = match chars.next() {
        Some(c @ ('<' | '>')) => c,
        _ => return Ok(None),
    };
    let n = chars.as_str().trim();
    n.parse::<u64>()
        .map(|n| Some((op, n)))
        .map_err(|_| format!("size {}: expected <NUMBER or >NUMBER", crate::exit::quote(pattern)))
}

/// Regexes from a body-file or headers-file: per line, after cutting at `#`, a quoted
/// string or the first word.
fn regex_list(path: &Path, optional: bool) -> Result<Vec<String>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => return Ok(vec![]),
        Err(e) => return Err(format!("{}: {}", path.display(), crate::exit::describe_io(&e))),
    };
    let text = String::from_utf8_lossy(&text);
    let mut out = vec![];
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let q = line.chars().next().unwrap_or(' ');
        let item = if (q == '"' || q == '\'') && line.len() > 1 {
            match line[1..].find(q) {
                Some(end) => line[1..1 + end].to_string(),
                None => line.to_string(),
            }
        } else {
            line.split_whitespace().next().unwrap_or("").to_string()
        };
        out.push(item);
    }
    Ok(out)
}

/// An ezmlm list directory: every file in `DIR/subscribers` holds NUL-separated `T<address>` records.
pub fn ezmlm_match(dir: &Path, addresses: &[&str], optional: bool) -> Result<bool, String> {
    let subs = dir.join("subscribers");
    let entries = match std::fs::read_dir(&subs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => return Ok(false),
        Err(e) => return Err(format!("{}: {}", subs.display(), crate::exit::describe_io(&e))),
    };
    let wanted: Vec<String> = addresses.iter().map(|a| a.to_lowercase()).collect();
    for e in entries.flatten() {
        let data = std::fs::read(e.path())
            .map_err(|err| format!("{}: {}", e.path().display(), crate::exit::describe_io(&err)))?;
        for rec in data.split(|&b| b == 0) {
            if let Some(addr) = rec.strip_prefix(b"T") {
                let addr = String::from_utf8_lossy(addr).to_lowercase();
                if wanted.contains(&addr) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Run a `pipe` rule's command with `input` on standard input: a match is exit status 0.
fn pipe(command: &str, headers: &str, body: Option<&dyn Body>) -> Result<bool, String> {
    use std::process::{Command, Stdio};
    let shown = crate::exit::quote(command);
    let mut child = crate::child::own_group(Command::new("/bin/sh").arg("-c").arg(command))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("pipe {shown}: cannot run: {}", crate::exit::describe_io(&e)))?;
    let mut stdin = child.stdin.take().expect("piped");
    // Fed from another thread, streaming the body from its source, while this one
    // keeps the deadline; a command that stops reading only ends the feed early.
    let status = std::thread::scope(|scope| {
        scope.spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(headers.as_bytes());
            if let Some(b) = body
                && !b.is_empty()
                && let Ok(mut r) = b.reader()
            {
                let _ = stdin.write_all(b"\n");
                let _ = std::io::copy(&mut r, &mut stdin);
            }
        });
        crate::child::wait_until(&mut child, std::time::Instant::now() + PIPE_TIMEOUT)
    })
    .map_err(|e| format!("pipe {shown}: {}", crate::exit::describe_io(&e)))?
    .ok_or_else(|| format!("pipe {shown}: still running after {} s", PIPE_TIMEOUT.as_secs()))?;
    match status.code() {
        Some(c) => Ok(c == 0),
        None => Err(format!("pipe {shown}: killed by a signal")),
    }
}

/// Whether a message rule (`body`, `headers`, ..., `size`, `pipe`) matches.
pub(super) fn message_match(rule: &Rule, subject: &Subject<'_>) -> Result<Option<Then>, String> {
    let Some(m) = &subject.message else { return Ok(None) };
    let hit = match rule.source {
        Source::Body | Source::Headers | Source::BodyFile | Source::HeadersFile => {
            let text = match rule.source {
                Source::Body | Source::BodyFile if m.body.is_empty() => return Ok(None),
                Source::Body | Source::BodyFile => m.body_text(),
                _ => m.headers,
            };
            match rule.source {
                Source::Body | Source::Headers => search(&regex(&rule.pattern, rule.case)?, text)?,
                _ => {
                    let mut hit = false;
                    for r in regex_list(Path::new(&rule.pattern), rule.optional)? {
                        if search(&regex(&r, rule.case)?, text)? {
                            hit = true;
                            break;
                        }
                    }
                    hit
                }
            }
        }
        Source::Size => match size_pattern(&rule.pattern)? {
            _ if m.size == 0 => false,
            Some(('<', n)) => m.size < n,
            Some((_, n)) => m.size > n,
            None => false,
        },
        Source::Pipe => {
            if m.body.is_empty() {
                return Ok(None);
            }
            pipe(&rule.pattern, m.headers, Some(m.body))?
        }
        Source::PipeHeaders => pipe(&rule.pattern, m.headers, None)?,
        _ => false,
    };
    Ok(hit.then(|| rule.then.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions() {
        let d = Disposition::parse("deliver=|/usr/bin/procmail -m rc").unwrap().unwrap();
        assert_eq!(
            (d.kind, d.word.as_str(), d.option.as_deref()),
            (Disposal::Accept, "deliver", Some("|/usr/bin/procmail -m rc"))
        );
        assert_eq!(Disposition::parse("OK").unwrap().unwrap().kind, Disposal::Accept);
        assert_eq!(
            Disposition::parse("reject=bounce_x.txt").unwrap().unwrap().kind,
            Disposal::Bounce
        );
        assert_eq!(Disposition::parse("stop").unwrap().unwrap().kind, Disposal::Drop);
        assert!(Disposition::parse("hold=x").unwrap().is_err());
        assert!(Disposition::parse("dated=5d").is_none());
        assert!(Disposition::parse("ok garbage").is_none());
        let d = Disposition::parse("deliver=\"|/usr/bin/procmail -m rc\"")
            .unwrap()
            .unwrap();
        assert_eq!(d.option.as_deref(), Some("|/usr/bin/procmail -m rc"));
        let d = Disposition::parse("confirm='my template.txt'").unwrap().unwrap();
        assert_eq!(d.option.as_deref(), Some("my template.txt"));
    }

    #[test]
    fn sizes() {
        assert_eq!(size_pattern("<1000").unwrap(), Some(('<', 1000)));
        assert_eq!(size_pattern(">5").unwrap(), Some(('>', 5)));
        assert_eq!(size_pattern("=5").unwrap(), None);
        assert!(size_pattern("<ten").is_err());
    }

    #[test]
    fn python_like_regexes() {
        let re = regex("^subject: .*viagra", false).unwrap();
        assert!(search(&re, "From: a\nSubject: Cheap VIAGRA\n").unwrap());
        let re = regex("^subject: .*viagra", true).unwrap();
        assert!(!search(&re, "From: a\nSubject: Cheap VIAGRA\n").unwrap());
        // Lookaround and backreferences, which Python's re has.
        assert!(search(&regex(r"(\w)\1(?=x)", false).unwrap(), "aax").unwrap());
        assert!(
            regex("(unclosed", false)
                .unwrap_err()
                .contains("bad regular expression")
        );
    }

    #[test]
    fn catastrophic_backtracking_is_an_error_not_a_hang() {
        // A backreference makes the whole expression backtrack (no automaton can take it).
        let re = regex(r"^(a|aa)+(?=\1)c", false).unwrap();
        let text = "a".repeat(60);
        let started = std::time::Instant::now();
        assert!(search(&re, &text).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn ezmlm_lists() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("subscribers")).unwrap();
        std::fs::write(d.path().join("subscribers/@"), b"Tbob@example.org\0Tcarol@x.net\0").unwrap();
        assert!(ezmlm_match(d.path(), &["someone@else", "Bob@Example.org"], false).unwrap());
        assert!(!ezmlm_match(d.path(), &["dave@x.net"], false).unwrap());
        assert!(ezmlm_match(&d.path().join("nope"), &["a@b"], false).is_err());
        assert!(!ezmlm_match(&d.path().join("nope"), &["a@b"], true).unwrap());
    }

    #[test]
    fn regex_list_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("res");
        std::fs::write(&f, "# comment\n\"buy now\" trailing\nviagra other words\n\n  'x y'\n").unwrap();
        assert_eq!(regex_list(&f, false).unwrap(), vec!["buy now", "viagra", "x y"]);
    }
}
