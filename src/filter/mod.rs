//! TMDA outgoing filters (FILTER_OUTGOING): which tag each recipient gets.
//!
//! A filter is a list of rules; the first rule whose source matches decides the
//! actions. Outgoing rules match the recipient (`to`, `to-file`, `to-cdb`) or your
//! From address (`from`, `from-file`, `from-cdb`) against case-insensitive shell
//! wildcards, and their action says how to tag: `dated=5d`, `sender`, `kw=lists`,
//! `exp=me@example.com`, or `tag HEADER ACTION ...` for several headers at once.
//!
//! [`parse`] reads filter files (continuation lines, `macro`, `include`, `${VAR}`);
//! [`Filter::first_match`] evaluates them. Sources and actions that only make sense
//! in TMDA's incoming filter, or that tmda does not implement (SQL, DBM, ezmlm,
//! Mailman, `python=`), are errors naming the file and line, never silently ignored.

pub mod cdb;
pub mod fnmatch;
pub mod parse;

use std::fmt;
use std::path::{Path, PathBuf};

pub use parse::{ParseError, parse_file};

/// Where a rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    To,
    From,
    ToFile,
    FromFile,
    ToCdb,
    FromCdb,
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
        }
    }

    fn matches_recipient(self) -> bool {
        matches!(self, Source::To | Source::ToFile | Source::ToCdb)
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

/// One rule of a filter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub source: Source,
    pub optional: bool,
    /// Other arguments accepted for compatibility (`-autocdb`, `-autodbm`).
    pub args: Vec<String>,
    pub pattern: String,
    pub actions: Actions,
    pub file: PathBuf,
    pub line: usize,
}

impl Rule {
    /// The rule as TMDA prints it in logs and `-M` output.
    pub fn describe(&self, actions: &Actions) -> String {
        let mut s = self.source.name().to_string();
        if self.optional {
            s.push_str(" -optional");
        }
        for a in &self.args {
            s.push_str(" -");
            s.push_str(a);
        }
        format!("{s} {} {actions}", self.pattern)
    }
}

/// A parsed outgoing filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub rules: Vec<Rule>,
    /// Every file the filter was read from (the main file and its includes).
    pub files: Vec<PathBuf>,
}

/// The first matching rule's actions and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub actions: Actions,
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

/// The address and, for list sources, its domain (TMDA searched both).
fn keys_with_domain(address: &str) -> Vec<String> {
    let a = address.to_lowercase();
    let mut keys = vec![a.clone()];
    if let Some((_, dom)) = a.split_once('@') {
        keys.push(dom.to_string());
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
    /// The first rule matching `recipient` (for `to*` rules) or `sender` (for `from*`).
    pub fn first_match(&self, recipient: &str, sender: &str) -> Result<Option<Match>, MatchError> {
        for rule in &self.rules {
            let address = if rule.source.matches_recipient() {
                recipient
            } else {
                sender
            };
            if address.is_empty() {
                continue;
            }
            let err = |message: String| MatchError {
                file: rule.file.clone(),
                line: rule.line,
                message,
            };
            let found: Option<Actions> = match rule.source {
                Source::To | Source::From => {
                    pattern_matches(&address.to_lowercase(), &rule.pattern).then(|| rule.actions.clone())
                }
                Source::ToFile | Source::FromFile => {
                    let path = PathBuf::from(&rule.pattern);
                    match read_list(&path) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && rule.optional => None,
                        Err(e) => return Err(err(format!("{}: {e}", path.display()))),
                        Ok(entries) => {
                            let mut hit = None;
                            // Address before domain, then the file's order (as TMDA).
                            'keys: for key in keys_with_domain(address) {
                                for (pattern, action) in &entries {
                                    if pattern_matches(&key, pattern) {
                                        hit = Some(action.clone());
                                        break 'keys;
                                    }
                                }
                            }
                            match hit {
                                None => None,
                                Some(None) => Some(rule.actions.clone()),
                                Some(Some(text)) => {
                                    Some(parse::parse_actions(&text, rule.source.name()).map_err(|m| {
                                        err(format!("{}: entry {}: {m}", path.display(), crate::exit::quote(&text)))
                                    })?)
                                }
                            }
                        }
                    }
                }
                Source::ToCdb | Source::FromCdb => {
                    let path = PathBuf::from(&rule.pattern);
                    let mut hit = None;
                    for key in keys_with_domain(address) {
                        match cdb::lookup(&path, key.as_bytes()) {
                            Ok(Some(v)) => {
                                hit = Some(v);
                                break;
                            }
                            Ok(None) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rule.optional => break,
                            Err(e) => return Err(err(format!("{}: {e}", path.display()))),
                        }
                    }
                    match hit {
                        None => None,
                        Some(v) if v.is_empty() => Some(rule.actions.clone()),
                        Some(v) => {
                            let text = String::from_utf8_lossy(&v).trim().to_string();
                            Some(parse::parse_actions(&text, rule.source.name()).map_err(|m| {
                                err(format!("{}: value {}: {m}", path.display(), crate::exit::quote(&text)))
                            })?)
                        }
                    }
                }
            };
            if let Some(actions) = found {
                return Ok(Some(Match {
                    description: rule.describe(&actions),
                    actions,
                    file: rule.file.clone(),
                    line: rule.line,
                }));
            }
        }
        Ok(None)
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
