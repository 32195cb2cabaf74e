//! TMDA filters, one engine for both directions.
//!
//! A filter is a list of rules; the first rule whose source matches decides. The file
//! syntax is shared ([`parse`]: continuation lines, `macro`, `include`, `${VAR}`); what
//! differs by [`Direction`] is which sources and actions a rule may use:
//!
//! - FILTER_OUTGOING: rules match the recipient (`to`, `to-file`, `to-cdb`) or your
//!   From address (`from`, ...) and say how to tag: `dated=5d`, `sender`, `kw=lists`,
//!   `exp=me@example.com`, or `tag HEADER ACTION ...` ([`Then::Tag`]).
//! - FILTER_INCOMING: rules also look at the message (`body`, `headers`, `body-file`,
//!   `headers-file`, `size`, `pipe`, `pipe-headers`, ezmlm lists; [`incoming`]), match the
//!   whole sender list, and say what to do with it: ok/accept/deliver, bounce/reject,
//!   drop/exit/stop, confirm, hold ([`Then::Dispose`]).
//!
//! Sources that tmda does not implement (SQL, Mailman, `python=`) are errors
//! naming the file and line, never silently ignored.

pub mod cdb;
pub mod dbm;
pub mod fnmatch;
pub mod incoming;
pub mod parse;

use std::fmt;
use std::path::{Path, PathBuf};

pub use incoming::{Disposal, Disposition, Subject};
pub use parse::{ParseError, parse_file, parse_file_for};

/// Which filter a file is: it decides the sources and actions rules may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Outgoing,
    Incoming,
}

/// Where a rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    To,
    From,
    ToFile,
    FromFile,
    ToCdb,
    FromCdb,
    /// The lists Python's dbm modules write ([`dbm`]).
    ToDbm,
    FromDbm,
    /// Incoming only (see [`incoming`]).
    ToEzmlm,
    FromEzmlm,
    Body,
    Headers,
    BodyFile,
    HeadersFile,
    Size,
    Pipe,
    PipeHeaders,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::To => "to",
            Source::From => "from",
            Source::ToFile => "to-file",
            Source::FromFile => "from-file",
            Source::ToCdb => "to-cdb",
            Source::FromCdb => "from-cdb",
            Source::ToDbm => "to-dbm",
            Source::FromDbm => "from-dbm",
            Source::ToEzmlm => "to-ezmlm",
            Source::FromEzmlm => "from-ezmlm",
            Source::Body => "body",
            Source::Headers => "headers",
            Source::BodyFile => "body-file",
            Source::HeadersFile => "headers-file",
            Source::Size => "size",
            Source::Pipe => "pipe",
            Source::PipeHeaders => "pipe-headers",
        }
    }

    fn matches_recipient(self) -> bool {
        matches!(
            self,
            Source::To | Source::ToFile | Source::ToCdb | Source::ToDbm | Source::ToEzmlm
        )
    }

    /// Sources that match addresses (the rest look at the message).
    fn matches_address(self) -> bool {
        matches!(
            self,
            Source::To
                | Source::From
                | Source::ToFile
                | Source::FromFile
                | Source::ToCdb
                | Source::FromCdb
                | Source::ToDbm
                | Source::FromDbm
                | Source::ToEzmlm
                | Source::FromEzmlm
        )
    }
}

/// The kinds of tagged (or untagged) address an action can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookie {
    Bare,
    Sender,
    Domain,
    Dated,
    Explicit,
    Extension,
    Keyword,
    Shell,
    Default,
}

impl Cookie {
    /// Parse an action name (case-insensitive); `python` is recognised to refuse it.
    fn from_name(name: &str) -> Option<Cookie> {
        Some(match name.to_ascii_lowercase().as_str() {
            "bare" => Cookie::Bare,
            "sender" => Cookie::Sender,
            "domain" => Cookie::Domain,
            "dated" => Cookie::Dated,
            "exp" | "explicit" | "as" => Cookie::Explicit,
            "ext" | "extension" => Cookie::Extension,
            "kw" | "keyword" => Cookie::Keyword,
            "shell" => Cookie::Shell,
            "default" => Cookie::Default,
            _ => return None,
        })
    }

    /// Whether an `=OPTION` is required (true), optional (None) or forbidden (false).
    fn option_rule(self) -> Option<bool> {
        match self {
            Cookie::Bare | Cookie::Sender | Cookie::Domain | Cookie::Dated => None,
            Cookie::Explicit | Cookie::Extension | Cookie::Keyword | Cookie::Shell => Some(true),
            Cookie::Default => Some(false),
        }
    }
}

/// What to put into one header (or the envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A tagging action; `name` is the spelling used (for messages and logs).
    Cookie {
        cookie: Cookie,
        name: String,
        option: Option<String>,
    },
    /// Literal text (a `tag` value that is no action), e.g. `tag reply-to "List <l@x>"`.
    Text(String),
}

impl Action {
    /// Parse a single action word such as `dated=5d` or `bare` (TMDA's `splitaction`).
    pub fn parse(word: &str) -> Result<Action, String> {
        let (name, option) = match word.split_once('=') {
            Some((n, o)) => (n.trim(), Some(o.trim().to_string())),
            None => (word.trim(), None),
        };
        if name.eq_ignore_ascii_case("python") {
            return Err("\"python=\" actions are not supported by tmda (they ran arbitrary Python code)".into());
        }
        let Some(cookie) = Cookie::from_name(name) else {
            return Err(format!("\"{word}\": unknown action"));
        };
        let option = option.filter(|o| !o.is_empty());
        match (cookie.option_rule(), &option) {
            (Some(true), None) => return Err(format!("\"{name}\" needs a value: {name}=VALUE")),
            (Some(false), Some(_)) => return Err(format!("\"{name}\" takes no value")),
            _ => {}
        }
        Ok(Action::Cookie {
            cookie,
            name: name.to_ascii_lowercase(),
            option,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Cookie { name, option: None, .. } => f.write_str(name),
            Action::Cookie {
                name, option: Some(o), ..
            } if o.contains(' ') => write!(f, "{name}=\"{o}\""),
            Action::Cookie {
                name, option: Some(o), ..
            } => write!(f, "{name}={o}"),
            Action::Text(t) => write!(f, "\"{t}\""),
        }
    }
}

/// Actions per header (lower-case names: `from`, `envelope`, `resent-from`, `reply-to`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions(pub Vec<(String, Action)>);

impl Actions {
    pub fn single_from(action: Action) -> Actions {
        Actions(vec![("from".into(), action)])
    }

    pub fn get(&self, header: &str) -> Option<&Action> {
        self.0.iter().find(|(h, _)| h == header).map(|(_, a)| a)
    }

    fn insert(&mut self, header: String, action: Action) {
        match self.0.iter_mut().find(|(h, _)| *h == header) {
            Some(slot) => slot.1 = action,
            None => self.0.push((header, action)),
        }
    }
}

impl fmt::Display for Actions {
    /// TMDA's rendering: `tag from dated=5d reply-to sender`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tag")?;
        for (h, a) in &self.0 {
            write!(f, " {h} {a}")?;
        }
        Ok(())
    }
}

/// What a matching rule says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// Outgoing: how to tag.
    Tag(Actions),
    /// Incoming: what to do with the message.
    Dispose(Disposition),
}

impl Then {
    /// The tagging actions (outgoing rules).
    pub fn tag(&self) -> Option<&Actions> {
        match self {
            Then::Tag(a) => Some(a),
            Then::Dispose(_) => None,
        }
    }

    /// The disposition (incoming rules).
    pub fn disposition(&self) -> Option<&Disposition> {
        match self {
            Then::Dispose(d) => Some(d),
            Then::Tag(_) => None,
        }
    }
}

/// One rule of a filter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub source: Source,
    pub optional: bool,
    /// `-case` (body and headers rules: the regex is case-sensitive).
    pub case: bool,
    /// The arguments as TMDA shows them: in the order written, each `name` or
    /// `name=value` (a value with a space in double quotes), a repeated one once.
    pub shown_args: Vec<String>,
    /// The match field: a path expanded (`~`) for the sources that read one.
    pub pattern: String,
    /// The match field as written (after macros and `${VAR}`s), which TMDA shows for
    /// from-file and to-file rules.
    pub written: String,
    pub then: Then,
    pub file: PathBuf,
    pub line: usize,
}

impl Rule {
    /// The tagging actions of an outgoing rule (empty for an incoming one).
    pub fn actions(&self) -> &Actions {
        static NONE: Actions = Actions(Vec::new());
        self.then.tag().unwrap_or(&NONE)
    }

    /// The rule as TMDA prints it in logs and `-M` output: outgoing rules with their
    /// actions, incoming ones with the action word only (the caller adds `=OPTION`),
    /// body and headers patterns in double quotes. The match is what TMDA's match loop
    /// left in its variable: a from-file or to-file path as written, the other list
    /// paths expanded, an ezmlm directory with `/subscribers` added.
    pub fn describe(&self, then: &Then) -> String {
        let mut s = self.source.name().to_string();
        for a in &self.shown_args {
            s.push_str(" -");
            s.push_str(a);
        }
        let pattern = match self.source {
            Source::Body | Source::Headers => format!("\"{}\"", self.pattern),
            Source::FromFile | Source::ToFile => self.written.clone(),
            Source::FromEzmlm | Source::ToEzmlm => Path::new(&self.pattern).join("subscribers").display().to_string(),
            _ => self.pattern.clone(),
        };
        match then {
            Then::Tag(actions) => format!("{s} {pattern} {actions}"),
            Then::Dispose(d) => format!("{s} {pattern} {}", d.word),
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub rules: Vec<Rule>,
    /// Every file the filter was read from (the main file and its includes).
    pub files: Vec<PathBuf>,
}

/// The first matching rule's verdict and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub then: Then,
    pub description: String,
    pub file: PathBuf,
    pub line: usize,
}

/// A rule that failed while being evaluated (unreadable list, bad action in a list).
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct MatchError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// TMDA's `findmatch` for one pattern: case-insensitive wildcards, and `user@=domain`
/// for a domain and all its subdomains. `address` must already be lower-case.
pub fn pattern_matches(address: &str, pattern: &str) -> bool {
    let pattern = pattern.to_lowercase();
    if let Some(at) = pattern.rfind('@')
        && pattern[at + 1..].starts_with('=')
    {
        let (user, dom) = (&pattern[..at + 1], &pattern[at + 2..]);
        return fnmatch::fnmatch(address, &format!("{user}{dom}"))
            || fnmatch::fnmatch(address, &format!("{user}*.{dom}"));
    }
    fnmatch::fnmatch(address, &pattern)
}

/// The addresses and then, for list sources, their domains (TMDA searched both, the
/// domains after all the addresses). Fresh for each rule: TMDA appended the domains to
/// the sender list itself, so a later `from example.org` rule matched other senders too.
/// The value stored for the first of `keys` that the cdb at `path` has.
fn cdb_lookup(path: &Path, keys: &[&[u8]]) -> std::io::Result<Option<Vec<u8>>> {
    for key in keys {
        if let Some(v) = cdb::lookup(path, key)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn keys_with_domain<S: AsRef<str>>(addresses: &[S]) -> Vec<String> {
    let mut keys: Vec<String> = addresses.iter().map(|a| a.as_ref().to_lowercase()).collect();
    let domains: Vec<String> = keys
        .iter()
        .filter_map(|a| a.split_once('@').map(|(_, d)| d.to_string()))
        .collect();
    for d in domains {
        if !keys.contains(&d) {
            keys.push(d);
        }
    }
    keys
}

/// Entries of a list file: `PATTERN [ACTION]` per line, `#` comments (TMDA's `file_to_list`).
pub fn read_list(path: &Path) -> std::io::Result<Vec<(String, Option<String>)>> {
    let text = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&text);
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let l = l.replace('\t', " ");
            let l = l.split('#').next().unwrap_or("").trim().to_string();
            if l.is_empty() {
                return None;
            }
            Some(match l.split_once(' ') {
                Some((p, rest)) if !rest.trim().is_empty() => (p.to_lowercase(), Some(rest.trim().to_string())),
                _ => (l.to_lowercase(), None),
            })
        })
        .collect())
}

impl Filter {
    /// Outgoing: the first rule matching `recipient` (for `to*` rules) or `sender` (for `from*`).
    pub fn first_match(&self, recipient: &str, sender: &str) -> Result<Option<Match>, MatchError> {
        let recipients = [recipient];
        let senders = [sender];
        self.first_match_in(&Subject {
            recipients: &recipients,
            senders: &senders,
            ..Subject::default()
        })
    }

    /// The first rule matching `subject`. Incoming rules whose action is an outgoing one
    /// never match (TMDA accepted them in incoming files and went on to the next rule).
    pub fn first_match_in(&self, subject: &Subject<'_>) -> Result<Option<Match>, MatchError> {
        for rule in &self.rules {
            let err = |message: String| MatchError {
                file: rule.file.clone(),
                line: rule.line,
                message,
            };
            let found: Option<Then> = if rule.source.matches_address() {
                let addresses: Vec<&str> = if rule.source.matches_recipient() {
                    subject.recipients.iter().copied().filter(|a| !a.is_empty()).collect()
                } else {
                    subject.senders.iter().copied().filter(|a| !a.is_empty()).collect()
                };
                if addresses.is_empty() {
                    continue;
                }
                self.address_match(rule, &addresses, subject.direction).map_err(err)?
            } else {
                incoming::message_match(rule, subject).map_err(err)?
            };
            match found {
                Some(Then::Tag(_)) if subject.direction == Direction::Incoming => continue,
                Some(then) => {
                    return Ok(Some(Match {
                        description: rule.describe(&then),
                        then,
                        file: rule.file.clone(),
                        line: rule.line,
                    }));
                }
                None => {}
            }
        }
        Ok(None)
    }

    fn address_match(&self, rule: &Rule, addresses: &[&str], direction: Direction) -> Result<Option<Then>, String> {
        // A list entry's own action (the second column) overrides the rule's.
        let entry_action = |text: &str, what: &str, path: &Path| -> Result<Then, String> {
            parse::parse_then(text, rule.source.name(), direction)
                .map_err(|m| format!("{}: {what} {}: {m}", path.display(), crate::exit::quote(text)))
        };
        Ok(match rule.source {
            Source::To | Source::From => addresses
                .iter()
                .any(|a| pattern_matches(&a.to_lowercase(), &rule.pattern))
                .then(|| rule.then.clone()),
            Source::ToFile | Source::FromFile => {
                let path = PathBuf::from(&rule.pattern);
                match read_list(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && rule.optional => None,
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                    Ok(entries) => {
                        let mut hit = None;
                        // Addresses before domains, then the file's order (as TMDA).
                        'keys: for key in keys_with_domain(addresses) {
                            for (pattern, action) in &entries {
                                if pattern_matches(&key, pattern) {
                                    hit = Some(action.clone());
                                    break 'keys;
                                }
                            }
                        }
                        match hit {
                            None => None,
                            Some(None) => Some(rule.then.clone()),
                            Some(Some(text)) => {
                                // Incoming: only the first word counts, as in TMDA.
                                let text = match direction {
                                    Direction::Incoming => text.split_whitespace().next().unwrap_or("").to_string(),
                                    Direction::Outgoing => text,
                                };
                                Some(entry_action(&text, "entry", &path)?)
                            }
                        }
                    }
                }
            }
            Source::ToCdb | Source::FromCdb | Source::ToDbm | Source::FromDbm => {
                let path = PathBuf::from(&rule.pattern);
                let keys = keys_with_domain(addresses);
                let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
                // A cdb is read a key at a time; a dbm list is read whole, once for all keys.
                let found = match rule.source {
                    Source::ToDbm | Source::FromDbm => dbm::lookup(&path, &keys),
                    _ => cdb_lookup(&path, &keys),
                };
                let hit = match found {
                    Ok(v) => v,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && rule.optional => None,
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                };
                match hit {
                    None => None,
                    Some(v) if v.is_empty() => Some(rule.then.clone()),
                    Some(v) => {
                        let text = String::from_utf8_lossy(&v).trim().to_string();
                        Some(entry_action(&text, "value", &path)?)
                    }
                }
            }
            Source::ToEzmlm | Source::FromEzmlm => {
                incoming::ezmlm_match(Path::new(&rule.pattern), addresses, rule.optional)?.then(|| rule.then.clone())
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_equals_matches_domain_and_subdomains() {
        assert!(pattern_matches("bob@example.com", "*@=example.com"));
        assert!(pattern_matches("bob@mail.example.com", "*@=example.com"));
        assert!(!pattern_matches("bob@badexample.com", "*@=example.com"));
        assert!(pattern_matches("bob@example.com", "BOB@Example.COM"));
    }

    #[test]
    fn action_words() {
        assert_eq!(
            Action::parse("dated=5d").unwrap(),
            Action::Cookie {
                cookie: Cookie::Dated,
                name: "dated".into(),
                option: Some("5d".into())
            }
        );
        assert_eq!(Action::parse("Bare").unwrap().to_string(), "bare");
        assert!(matches!(
            Action::parse("as=me@x").unwrap(),
            Action::Cookie {
                cookie: Cookie::Explicit,
                ..
            }
        ));
        assert!(Action::parse("kw").unwrap_err().contains("needs a value"));
        assert!(Action::parse("default=x").unwrap_err().contains("takes no value"));
        assert!(Action::parse("python=1+1").unwrap_err().contains("not supported"));
        assert!(Action::parse("frobnicate").unwrap_err().contains("unknown action"));
    }
}
