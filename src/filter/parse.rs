//! Reading filter files: TMDA's rule syntax, macros, includes and `${VAR}`.
//!
//! A rule starts in column 1 and continues on indented lines; a blank line or a
//! line starting in column 1 ends it. `#` starts a comment at the start of a line
//! or after a space. Every error is collected (file, line, what is wrong) and all
//! of them are reported together, as TMDA does.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{Action, Actions, Direction, Filter, Rule, Source, Then};

/// Everything wrong with a filter (and the files it includes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub errors: Vec<(PathBuf, usize, String)>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (path, line, msg)) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}:{line}: {msg}", path.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

const INCOMING_ACTIONS: &[&str] = &[
    "drop", "exit", "stop", "hold", "confirm", "bounce", "reject", "deliver", "ok", "accept",
];
const INCOMING_SOURCES: &[&str] = &[
    "body",
    "headers",
    "body-file",
    "headers-file",
    "size",
    "pipe",
    "pipe-headers",
    "to-ezmlm",
    "from-ezmlm",
];
const UNSUPPORTED_SOURCES: &[&str] = &["to-mailman", "from-mailman", "to-sql", "from-sql"];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[derive(Debug, Clone)]
struct Macro {
    name: String,
    params: Vec<String>,
    definition: String,
}

impl Macro {
    /// Find the macro's name as a whole word, ignoring case: (text before, text after).
    /// Characters are compared one at a time: lower-casing the text first moves byte
    /// offsets wherever a character's lower case is longer or shorter ("İ", "Ω").
    /// Where the name starts with an ASCII letter, only the places where that letter
    /// is are tried (a byte search), which keeps a filter of many macros and lines
    /// quick; the one other character that lower-cases to an ASCII letter is the
    /// Kelvin sign, a "k", whose UTF-8 starts with 0xE2.
    fn find<'t>(&self, text: &'t str) -> Option<(&'t str, &'t str)> {
        let same = |a: char, b: char| {
            a.eq_ignore_ascii_case(&b) || (!(a.is_ascii() && b.is_ascii()) && a.to_lowercase().eq(b.to_lowercase()))
        };
        // The name starts at byte `i` (a character boundary) and ends a word: its end.
        let word_at = |i: usize| -> Option<usize> {
            if text[..i].chars().next_back().is_some_and(is_word) {
                return None;
            }
            let mut rest = text[i..].char_indices();
            let mut end = i;
            for n in self.name.chars() {
                let (j, c) = rest.next()?;
                if !same(c, n) {
                    return None;
                }
                end = i + j + c.len_utf8();
            }
            text[end..].chars().next().is_none_or(|c| !is_word(c)).then_some(end)
        };
        let first = self.name.chars().next()?;
        let found = if first.is_ascii() {
            let (lower, upper) = (first.to_ascii_lowercase() as u8, first.to_ascii_uppercase() as u8);
            let kelvin = if lower == b'k' { 0xE2 } else { upper };
            memchr::memchr3_iter(lower, upper, kelvin, text.as_bytes()).find_map(|i| word_at(i).map(|end| (i, end)))
        } else {
            text.char_indices().find_map(|(i, _)| word_at(i).map(|end| (i, end)))
        };
        found.map(|(i, end)| (&text[..i], &text[end..]))
    }

    /// Arguments in parentheses right after the name, and the text after them.
    fn args<'t>(&self, text: &'t str) -> Result<(Vec<String>, &'t str), String> {
        let t = text.trim_start();
        if !t.starts_with('(') {
            return Ok((vec![], text));
        }
        let close = t.find(')').ok_or_else(|| format!("\"{}\": missing \")\"", self.name))?;
        let inner = t[1..close].trim();
        Ok((
            inner.split(',').map(|a| a.trim().to_string()).collect(),
            &t[close + 1..],
        ))
    }

    fn expand(&self, args: &[String]) -> Result<String, String> {
        if self.params.is_empty() {
            return Ok(self.definition.clone());
        }
        if args.len() != self.params.len() {
            return Err(format!(
                "\"{}\": expected {} arguments, got {}",
                self.name,
                self.params.len(),
                args.len()
            ));
        }
        let def: Vec<char> = self.definition.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut in_word = false;
        'outer: while i < def.len() {
            let c = def[i];
            if in_word {
                in_word = is_word(c);
            } else if is_word(c) {
                for (p, arg) in self.params.iter().zip(args) {
                    let plen = p.chars().count();
                    let candidate: String = def[i..(i + plen).min(def.len())].iter().collect();
                    // The parameter must end a word (or the definition); it may not run past it.
                    let ends = def.get(i + plen).is_none_or(|c| !is_word(*c));
                    if candidate.eq_ignore_ascii_case(p) && ends {
                        out.push_str(arg);
                        i += plen;
                        continue 'outer;
                    }
                }
                in_word = true;
            }
            out.push(c);
            i += 1;
        }
        Ok(out)
    }
}

/// Characters one line's macro expansion may produce or copy. Macros that use each other
/// several times grow exponentially; this bounds a filter's work, which TMDA did not.
const MAX_EXPANSION: usize = 1 << 20;

/// Macros used inside macros inside macros...: real filters nest two or three.
const MAX_MACRO_NESTING: usize = 32;

/// Characters all the macro expansions of one filter (its includes too) may search or
/// copy. Each line is searched once per macro, and expansions are searched again by
/// the later macros and copied up through every level of nesting: unbounded, a
/// 500-byte filter took seconds (found by fuzzing) and a large one minutes. A filter of
/// a thousand lines and a hundred macros needs a few million.
const MAX_MACRO_WORK: usize = 32 << 20;

/// Take `n` from the filter's macro work budget.
fn charge(work: &mut usize, n: usize) -> Result<(), String> {
    *work = work.checked_sub(n).ok_or_else(|| {
        format!(
            "macros take too much work to expand (over {MAX_MACRO_WORK} characters searched or copied in this filter)"
        )
    })?;
    Ok(())
}

fn expand_macros(text: &str, macros: &[Macro], work: &mut usize) -> Result<String, String> {
    let mut budget = MAX_EXPANSION;
    let mut active = vec![false; macros.len()];
    expand_within(text, macros, &mut active, 0, &mut budget, work)
}

/// Expand every macro not `active` (being expanded further out) in `text`, in the
/// order they were defined; a macro's definition is expanded with it made active.
fn expand_within(
    text: &str,
    macros: &[Macro],
    active: &mut [bool],
    depth: usize,
    budget: &mut usize,
    work: &mut usize,
) -> Result<String, String> {
    if depth > MAX_MACRO_NESTING {
        return Err(format!("macros nested more than {MAX_MACRO_NESTING} deep"));
    }
    let mut text = text.to_string();
    for (i, m) in macros.iter().enumerate() {
        if active[i] {
            continue;
        }
        // The rest is a slice of the line, not a copy per use: a line of many uses
        // would otherwise be copied once for each (quadratic; found by fuzzing).
        let line = std::mem::take(&mut text);
        let mut rhs = line.as_str();
        while !rhs.is_empty() {
            let Some((lhs, after)) = m.find(rhs) else {
                charge(work, rhs.len())?;
                text.push_str(rhs);
                break;
            };
            charge(work, rhs.len() - after.len())?;
            text.push_str(lhs);
            let (args, after) = m.args(after)?;
            let def = m.expand(&args)?;
            // Every expansion costs at least one unit, so empty ones cannot fan out for free.
            *budget = budget
                .checked_sub(def.len() + 1)
                .ok_or_else(|| format!("macros expand this line beyond {MAX_EXPANSION} characters"))?;
            // Other macros may appear in the definition; this one may not (no loops).
            active[i] = true;
            let expanded = expand_within(&def, macros, active, depth + 1, budget, work);
            active[i] = false;
            let expanded = expanded?;
            charge(work, expanded.len())?;
            text.push_str(&expanded);
            rhs = after;
        }
    }
    Ok(text)
}

/// The value at the start of `s`: quoted (`'..'` / `".."`) or up to white space.
fn take_value(s: &str) -> Option<(String, &str, bool)> {
    let mut chars = s.char_indices();
    let (_, first) = chars.next()?;
    if first == '\'' || first == '"' {
        let mut prev_backslash = false;
        for (i, c) in chars {
            if c == first && !prev_backslash && i > 1 {
                return Some((s[1..i].to_string(), &s[i + 1..], true));
            }
            prev_backslash = c == '\\';
        }
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (end > 0).then(|| (s[..end].to_string(), &s[end..], false))
}

/// Parse the action part of a rule (or of a list-file entry).
pub fn parse_actions(line: &str, source: &str) -> Result<Actions, String> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("tag ") {
        return parse_tag(rest, source);
    }
    let first = line
        .split(|c: char| c == '=' || c.is_whitespace())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if INCOMING_ACTIONS.contains(&first.as_str()) {
        return Err(format!(
            "\"{first}\" is an incoming action; outgoing rules take bare, dated, sender, domain, exp, ext, kw, shell, default or tag"
        ));
    }
    if line.is_empty() {
        return Err(format!("\"{source}\": missing or bogus <action> field"));
    }
    if line.contains(char::is_whitespace) {
        return Err(format!(
            "\"{source}\": garbage at end of line: {}",
            crate::exit::quote(line)
        ));
    }
    match Action::parse(line) {
        Ok(a) => Ok(Actions::single_from(a)),
        Err(e) if e.contains("unknown action") => Err(format!(
            "\"{source}\": missing or bogus <action> field: {}",
            crate::exit::quote(line)
        )),
        Err(e) => Err(e),
    }
}

/// The action part of a rule or list entry, for a filter of `direction`. Incoming filters
/// take dispositions; they also accept outgoing actions, as TMDA did (such a rule never
/// decides anything: the next rule is tried).
pub fn parse_then(line: &str, source: &str, direction: Direction) -> Result<Then, String> {
    if direction == Direction::Incoming {
        match super::Disposition::parse(line) {
            Some(d) => return d.map(Then::Dispose),
            None => {
                return parse_actions(line, source).map(Then::Tag).map_err(|_| {
                    format!(
                        "\"{source}\": missing or bogus <action> field: {} (incoming rules take ok, accept, deliver, bounce, reject, drop, exit, stop, confirm or hold)",
                        crate::exit::quote(line.trim())
                    )
                });
            }
        }
    }
    parse_actions(line, source).map(Then::Tag)
}

/// `tag HEADER ACTION [HEADER ACTION ...]`.
fn parse_tag(mut rest: &str, source: &str) -> Result<Actions, String> {
    let mut actions = Actions::default();
    rest = rest.trim_start();
    let malformed = || format!("\"{source}\": malformed header field or missing <action> after \"tag\"");
    while !rest.is_empty() {
        // HEADER: a letter, then letters, digits, '-' or '_' (at least two characters, as TMDA).
        let hend = rest.find(char::is_whitespace).ok_or_else(malformed)?;
        let header = &rest[..hend];
        let mut hc = header.chars();
        if header.len() < 2
            || !hc.next().is_some_and(|c| c.is_ascii_alphabetic())
            || !hc.all(|c| is_word(c) || c == '-')
        {
            return Err(malformed());
        }
        rest = rest[hend..].trim_start();
        // Optional `name=` prefix, then a quoted or plain value.
        let mut prefix = None;
        let word_end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        if word_end > 0 {
            let after = rest[word_end..].trim_start();
            if let Some(v) = after.strip_prefix('=') {
                prefix = Some(rest[..word_end].to_string());
                rest = v.trim_start();
            }
        }
        let (value, after, quoted) = take_value(rest).ok_or_else(malformed)?;
        rest = after.trim_start();
        let action = match prefix {
            Some(p) if p.eq_ignore_ascii_case("python") => Action::parse("python")?,
            Some(p) => match super::Cookie::from_name(&p) {
                Some(_) => Action::parse(&format!("{p}={value}"))?,
                None => Action::Text(format!("{p}={value}")),
            },
            None => match super::Cookie::from_name(&value) {
                Some(c) if c.option_rule() != Some(true) && (!quoted || !value.is_empty()) => Action::parse(&value)?,
                _ => Action::Text(value),
            },
        };
        actions.insert(header.to_ascii_lowercase(), action);
    }
    if actions.0.is_empty() {
        return Err(malformed());
    }
    Ok(actions)
}

struct Parser<'a> {
    direction: Direction,
    vars: &'a dyn Fn(&str) -> Option<String>,
    macros: Vec<Macro>,
    stack: Vec<PathBuf>,
    files: Vec<PathBuf>,
    rules: Vec<Rule>,
    errors: Vec<(PathBuf, usize, String)>,
    /// What is left of [`MAX_MACRO_WORK`].
    macro_work: usize,
}

impl Parser<'_> {
    fn file(&mut self, path: &Path, text: &str) {
        self.stack.push(path.to_path_buf());
        self.files.push(path.to_path_buf());
        for (line, rule_text) in logical_rules(text, path, &mut self.errors) {
            if let Err(e) = self.rule(path, line, &rule_text) {
                self.errors.push((path.to_path_buf(), line, e));
            }
        }
        self.stack.pop();
    }

    fn rule(&mut self, path: &Path, line: usize, text: &str) -> Result<(), String> {
        if text.get(..5).is_some_and(|w| w.eq_ignore_ascii_case("macro")) {
            return self.define_macro(&text[5..]);
        }
        let text = expand_macros(text, &self.macros, &mut self.macro_work)?;
        let text = self.interpolate(&text)?;
        if text.get(..7).is_some_and(|w| w.eq_ignore_ascii_case("include")) {
            return self.include(&text[7..], &text);
        }
        let rule = parse_rule(&text, path, line, self.direction)?;
        self.rules.push(rule);
        Ok(())
    }

    fn define_macro(&mut self, rest: &str) -> Result<(), String> {
        if rest.is_empty() {
            return Err("incomplete macro definition".into());
        }
        if !rest.starts_with(' ') {
            return Err(format!(
                "\"macro{}\": unrecognized filter rule",
                rest.split_whitespace().next().unwrap_or("")
            ));
        }
        let rest = rest.trim_start();
        let name_end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("invalid macro name: valid chars: _, 0-9, a-z, A-Z".into());
        }
        let mut m = Macro {
            name: name.to_string(),
            params: vec![],
            definition: String::new(),
        };
        let (params, after) = m.args(&rest[name_end..])?;
        for p in &params {
            if p.is_empty() || !p.chars().all(is_word) || p.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!(
                    "\"{name}\": invalid argument: \"{p}\" valid chars: _, 0-9, a-z, A-Z"
                ));
            }
        }
        m.params = params;
        m.definition = after.trim_start().to_string();
        if m.definition.is_empty() {
            return Err(format!("\"{name}\": macro name without definition"));
        }
        self.macros.push(m);
        Ok(())
    }

    fn interpolate(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            let after = &rest[i + 2..];
            let Some(close) = after.find('}') else { break };
            let name = &after[..close];
            if name.is_empty() || !name.chars().all(is_word) {
                out.push_str(&rest[..i + 2]);
                rest = after;
                continue;
            }
            let value = (self.vars)(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("${{{name}}} is not set in the configuration nor the environment"))?;
            out.push_str(&rest[..i]);
            out.push_str(&value);
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn include(&mut self, rest: &str, whole: &str) -> Result<(), String> {
        if rest.is_empty() {
            return Err("incomplete 'include' statement".into());
        }
        if !rest.starts_with(' ') {
            return Err(format!(
                "\"{}\": unrecognized filter rule",
                whole.split_whitespace().next().unwrap_or("")
            ));
        }
        let mut rest = rest.trim_start();
        let mut optional = false;
        if rest.len() >= 9 && rest.is_char_boundary(9) && rest[..9].eq_ignore_ascii_case("-optional") {
            optional = true;
            rest = rest[9..].trim_start();
        }
        let path = PathBuf::from(crate::os::expanduser(rest.trim()));
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if let Some(by) = self
            .stack
            .iter()
            .position(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()) == canonical)
        {
            let loader = if by == 0 {
                self.stack[0].clone()
            } else {
                self.stack[by - 1].clone()
            };
            return Err(format!(
                "\"{}\" already included by \"{}\"",
                path.display(),
                loader.display()
            ));
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                self.file(&path, &text);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("\"{}\": file not found", path.display()))
            }
            Err(e) => Err(format!("\"{}\": {e}", path.display())),
        }
    }
}

/// Group physical lines into rules: (first line number, rule text).
fn logical_rules(text: &str, path: &Path, errors: &mut Vec<(PathBuf, usize, String)>) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = vec![];
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim_start().starts_with('#') {
            continue;
        }
        let line = raw.replace('\t', " ");
        let line = line.split(" #").next().unwrap_or("").trim_end().to_string();
        if line.is_empty() {
            out.extend(current.take());
        } else if line.starts_with(' ') {
            match &mut current {
                Some((_, r)) => r.push_str(&line),
                None => errors.push((path.to_path_buf(), n, "line is improperly indented".into())),
            }
        } else {
            out.extend(current.take());
            current = Some((n, line));
        }
    }
    out.extend(current);
    out
}

/// Parse one (expanded) rule.
fn parse_rule(text: &str, path: &Path, line: usize, direction: Direction) -> Result<Rule, String> {
    let word_end = text.find(char::is_whitespace).unwrap_or(text.len());
    let word = text[..word_end].to_ascii_lowercase();
    let source = match word.as_str() {
        "to" => Source::To,
        "from" => Source::From,
        "to-file" => Source::ToFile,
        "from-file" => Source::FromFile,
        "to-cdb" => Source::ToCdb,
        "from-cdb" => Source::FromCdb,
        "to-dbm" => Source::ToDbm,
        "from-dbm" => Source::FromDbm,
        w if UNSUPPORTED_SOURCES.contains(&w) => {
            return Err(format!(
                "\"{w}\" rules are not supported by tmda; convert the list to a text file or cdb"
            ));
        }
        w if INCOMING_SOURCES.contains(&w) && direction == Direction::Outgoing => {
            return Err(format!(
                "\"{w}\" rules only work in incoming filters, not in FILTER_OUTGOING"
            ));
        }
        "to-ezmlm" => Source::ToEzmlm,
        "from-ezmlm" => Source::FromEzmlm,
        "body" => Source::Body,
        "headers" => Source::Headers,
        "body-file" => Source::BodyFile,
        "headers-file" => Source::HeadersFile,
        "size" => Source::Size,
        "pipe" => Source::Pipe,
        "pipe-headers" => Source::PipeHeaders,
        _ => return Err(format!("\"{}\": unrecognized filter rule", &text[..word_end])),
    };
    let mut rest = text[word_end..].trim_start();
    let allowed: &[&str] = match source {
        Source::To | Source::From | Source::Size | Source::Pipe | Source::PipeHeaders => &[],
        Source::ToFile | Source::FromFile => &["autocdb", "autodbm", "optional"],
        Source::ToCdb | Source::FromCdb | Source::ToDbm | Source::FromDbm | Source::ToEzmlm | Source::FromEzmlm => {
            &["optional"]
        }
        Source::Body | Source::Headers => &["case"],
        Source::BodyFile | Source::HeadersFile => &["case", "optional"],
    };
    let mut optional = false;
    let mut case = false;
    // (name, value) in the order written; a repeated name keeps its first place and
    // takes the last value, as in TMDA's dict.
    let mut shown: Vec<(String, Option<String>)> = vec![];
    while let Some(a) = rest.strip_prefix('-') {
        let end = a.find(|c: char| !is_word(c)).unwrap_or(a.len());
        if end == 0 {
            return Err("argument contains garbage characters".into());
        }
        let name = &a[..end];
        if !allowed.contains(&name) {
            return Err(format!("\"{name}\": unrecognized argument for \"{}\"", source.name()));
        }
        rest = &a[end..];
        let mut value = None;
        if let Some(v) = rest.strip_prefix('=') {
            let (v, after, _) = take_value(v).ok_or_else(|| format!("\"{name}\" followed by \"=\" but no option"))?;
            value = Some(v);
            rest = after;
        }
        rest = rest.trim_start();
        // -autocdb/-autodbm only made TMDA cache the list; reading the text is equivalent.
        match name {
            "optional" => optional = true,
            "case" => case = true,
            _ => {}
        }
        match shown.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => shown.push((name.to_string(), value)),
        }
    }
    let shown_args = shown
        .into_iter()
        .map(|(n, v)| match v {
            Some(v) if v.contains(' ') => format!("{n}=\"{v}\""),
            Some(v) if !v.is_empty() => format!("{n}={v}"),
            _ => n,
        })
        .collect();
    let (written, after, _) =
        take_value(rest).ok_or_else(|| format!("\"{}\": missing <match> field", source.name()))?;
    let pattern = match source {
        Source::ToFile
        | Source::FromFile
        | Source::ToCdb
        | Source::FromCdb
        | Source::ToDbm
        | Source::FromDbm
        | Source::ToEzmlm
        | Source::FromEzmlm
        | Source::BodyFile
        | Source::HeadersFile => crate::os::expanduser(&written),
        _ => written.clone(),
    };
    // Patterns that can be checked now are, so a mistake names its line.
    match source {
        Source::Body | Source::Headers => {
            super::incoming::regex(&pattern, case)?;
        }
        Source::Size => {
            super::incoming::size_pattern(&pattern)?;
        }
        _ => {}
    }
    let then = parse_then(after, source.name(), direction)?;
    Ok(Rule {
        source,
        optional,
        case,
        shown_args,
        pattern,
        written,
        then,
        file: path.to_path_buf(),
        line,
    })
}

/// Parse outgoing filter text (as if read from `path`).
pub fn parse_str(text: &str, path: &Path, vars: &dyn Fn(&str) -> Option<String>) -> Result<Filter, ParseError> {
    parse_str_for(Direction::Outgoing, text, path, vars)
}

/// Parse filter text of either direction (as if read from `path`).
pub fn parse_str_for(
    direction: Direction,
    text: &str,
    path: &Path,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Filter, ParseError> {
    let mut p = Parser {
        direction,
        vars,
        macros: vec![],
        stack: vec![],
        files: vec![],
        rules: vec![],
        errors: vec![],
        macro_work: MAX_MACRO_WORK,
    };
    p.file(path, text);
    if p.errors.is_empty() {
        Ok(Filter {
            rules: p.rules,
            files: p.files,
        })
    } else {
        Err(ParseError { errors: p.errors })
    }
}

/// Parse an outgoing filter file. A missing file is an empty filter (as in TMDA).
pub fn parse_file(path: &Path, vars: &dyn Fn(&str) -> Option<String>) -> Result<Filter, ParseError> {
    parse_file_for(Direction::Outgoing, path, vars)
}

/// Parse a filter file of either direction. A missing file is an empty filter (as in TMDA).
pub fn parse_file_for(
    direction: Direction,
    path: &Path,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Filter, ParseError> {
    match std::fs::read(path) {
        Ok(bytes) => parse_str_for(direction, &String::from_utf8_lossy(&bytes), path, vars),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Filter {
            rules: vec![],
            files: vec![path.to_path_buf()],
        }),
        Err(e) => Err(ParseError {
            errors: vec![(path.to_path_buf(), 0, e.to_string())],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cookie, Match};
    use super::*;

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    fn parse(text: &str) -> Filter {
        parse_str(text, Path::new("outgoing"), &no_vars).unwrap_or_else(|e| panic!("{e}"))
    }

    fn errors(text: &str) -> Vec<String> {
        parse_str(text, Path::new("f"), &no_vars)
            .unwrap_err()
            .to_string()
            .lines()
            .map(String::from)
            .collect()
    }

    fn first(f: &Filter, rcpt: &str, from: &str) -> Option<Match> {
        f.first_match(rcpt, from).unwrap()
    }

    fn cookie(a: &Action) -> (Cookie, Option<&str>) {
        match a {
            Action::Cookie { cookie, option, .. } => (*cookie, option.as_deref()),
            Action::Text(t) => panic!("text {t}"),
        }
    }

    #[test]
    fn every_action_form() {
        let f = parse(
            "to a@x bare\nto b@x bare=append\nto c@x sender\nto d@x sender=me@x\nto e@x domain\nto f@x domain=x.org\n\
             to g@x dated\nto h@x dated=2w\nto i@x exp=me@x\nto j@x explicit=me@x\nto k@x as=me@x\nto l@x ext=lists\n\
             to m@x extension=lists\nto n@x kw=lists\nto o@x keyword=lists\nto p@x default\nto q@x shell=/bin/echo\n\
             to r@x DATED=1d\n",
        );
        let want = [
            (Cookie::Bare, None),
            (Cookie::Bare, Some("append")),
            (Cookie::Sender, None),
            (Cookie::Sender, Some("me@x")),
            (Cookie::Domain, None),
            (Cookie::Domain, Some("x.org")),
            (Cookie::Dated, None),
            (Cookie::Dated, Some("2w")),
            (Cookie::Explicit, Some("me@x")),
            (Cookie::Explicit, Some("me@x")),
            (Cookie::Explicit, Some("me@x")),
            (Cookie::Extension, Some("lists")),
            (Cookie::Extension, Some("lists")),
            (Cookie::Keyword, Some("lists")),
            (Cookie::Keyword, Some("lists")),
            (Cookie::Default, None),
            (Cookie::Shell, Some("/bin/echo")),
            (Cookie::Dated, Some("1d")),
        ];
        assert_eq!(f.rules.len(), want.len());
        for (r, w) in f.rules.iter().zip(want) {
            assert_eq!(cookie(r.actions().get("from").unwrap()), w, "line {}", r.line);
        }
    }

    #[test]
    fn tag_actions() {
        let f = parse(
            "to list@x tag from dated=5d reply-to sender envelope bare\n\
             to l2@x tag reply-to \"List <l@x>\" X-Custom-Thing 'some text' from exp=\"Me <me@x>\"\n",
        );
        let a = f.rules[0].actions();
        assert_eq!(cookie(a.get("from").unwrap()), (Cookie::Dated, Some("5d")));
        assert_eq!(cookie(a.get("reply-to").unwrap()), (Cookie::Sender, None));
        assert_eq!(cookie(a.get("envelope").unwrap()), (Cookie::Bare, None));
        let a = f.rules[1].actions();
        assert_eq!(a.get("reply-to"), Some(&Action::Text("List <l@x>".into())));
        assert_eq!(a.get("x-custom-thing"), Some(&Action::Text("some text".into())));
        assert_eq!(cookie(a.get("from").unwrap()), (Cookie::Explicit, Some("Me <me@x>")));
        assert_eq!(
            f.rules[0].describe(&f.rules[0].then),
            "to list@x tag from dated=5d reply-to sender envelope bare"
        );
    }

    #[test]
    fn continuation_comments_and_line_numbers() {
        let f = parse(
            "# header comment\n\nto a@x\n\tdated=1d # trailing\n\nfrom\tme@x\tbare\nto b@x\n   # comment inside\n   sender\n",
        );
        assert_eq!(f.rules.len(), 3, "{f:?}");
        assert_eq!((f.rules[0].line, f.rules[0].pattern.as_str()), (3, "a@x"));
        // A tab-indented line continues the previous rule; the comment line is skipped.
        assert_eq!(
            cookie(f.rules[0].actions().get("from").unwrap()),
            (Cookie::Dated, Some("1d"))
        );
        assert_eq!(f.rules[1].line, 6);
        assert_eq!(f.rules[1].source, Source::From);
        assert_eq!(
            (f.rules[2].line, cookie(f.rules[2].actions().get("from").unwrap())),
            (7, (Cookie::Sender, None))
        );
    }

    #[test]
    fn macros() {
        let f = parse(
            "macro LISTS to-file -optional ~/.tmda/lists\nmacro TAGGED(who, how) to who how\n\
             LISTS dated\ntagged(a@x, kw=abc)\nTAGGED( b@x , sender )\n",
        );
        assert_eq!(f.rules[0].source, Source::ToFile);
        assert!(f.rules[0].optional);
        assert_eq!(f.rules[1].pattern, "a@x");
        assert_eq!(
            cookie(f.rules[1].actions().get("from").unwrap()),
            (Cookie::Keyword, Some("abc"))
        );
        assert_eq!(
            cookie(f.rules[2].actions().get("from").unwrap()),
            (Cookie::Sender, None)
        );
        let e = errors("macro M(a) to a dated\nM(x, y)\nmacro\nmacro 9bad x\nmacro EMPTY\n");
        assert_eq!(
            e,
            vec![
                "f:2: \"M\": expected 1 arguments, got 2",
                "f:3: incomplete macro definition",
                "f:4: invalid macro name: valid chars: _, 0-9, a-z, A-Z",
                "f:5: \"EMPTY\": macro name without definition",
            ]
        );
    }

    #[test]
    fn nested_macros_do_not_loop() {
        let f = parse("macro A to B\nmacro B x@y dated\nA\n");
        assert_eq!(f.rules[0].pattern, "x@y");
        let f = parse("macro SELF to SELF bare\nSELF\n");
        assert_eq!(f.rules[0].pattern, "SELF");
    }

    #[test]
    fn inputs_that_panicked() {
        // A parameter name longer than the rest of the definition.
        let f = parse("macro M(abc) to ab\nM(x) dated\n");
        assert_eq!(f.rules[0].pattern, "ab");
        // A multi-byte character where "macro" or "include" would end.
        assert_eq!(errors("LIS\u{e9}S kw=lists\n").len(), 1);
        assert_eq!(errors("includ\u{e9} x\n").len(), 1);
    }

    #[test]
    fn macro_names_are_found_beside_characters_whose_lower_case_is_longer_or_shorter() {
        // "İ" lower-cases to three bytes and "Ω" (ohm) to two: the whole line keeps its
        // length, but the name's place in the lower-cased copy is not its place in the
        // line, and cutting the line there went through the middle of "é".
        let f = parse("macro é dated\nto a@\u{130} tag from é reply-to kw=\u{2126}\nto c@d \u{c9}\n");
        assert_eq!(f.rules[0].pattern, "a@\u{130}");
        assert_eq!(f.rules[0].actions().get("from"), Some(&Action::parse("dated").unwrap()));
        // Names compare without case, as TMDA's do, also beyond ASCII, on lines of
        // ASCII or not.
        assert_eq!(f.rules[1].pattern, "c@d");
        assert_eq!(f.rules[1].actions().get("from"), Some(&Action::parse("dated").unwrap()));
        let f = parse(
            "macro kw_lists kw=lists\nmacro ÉX sender\nto a@b KW_lists\nto c@\u{e9} \u{212a}w_lists\nto e@f éx\n",
        );
        let actions: Vec<_> = f
            .rules
            .iter()
            .map(|r| r.actions().get("from").unwrap().clone())
            .collect();
        assert_eq!(
            actions,
            ["kw=lists", "kw=lists", "sender"].map(|a| Action::parse(a).unwrap())
        );
    }

    #[test]
    fn macro_work_for_the_whole_filter_is_bounded() {
        // Every line is searched once for each macro, so many macros times many lines
        // (or large expansions searched again by each later macro) took minutes; the
        // fuzz target found a 500-byte filter that took seconds. Within the bound, a
        // filter keeps working; past it, the lines that need more work are errors.
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&format!("macro M{i} to a@b dated\n"));
        }
        let line = format!("to {}@example.com bare\n", "x".repeat(100));
        text.push_str(&line.repeat(200));
        let errors = errors(&text);
        assert!(errors.len() > 10, "{errors:?}");
        assert_eq!(
            errors[0].split_once(": ").unwrap().1,
            "macros take too much work to expand (over 33554432 characters searched or copied in this filter)"
        );
        // The first lines, before the bound was reached, were read.
        let line_no = |e: &str| e.split(':').nth(1).unwrap().parse::<usize>().unwrap();
        assert!(line_no(&errors[0]) > 2000 + 50, "{}", errors[0]);
    }

    #[test]
    fn macro_expansion_is_bounded() {
        // Eight uses per level, eleven levels: 8^11 expansions, which ran for ever.
        let mut text = String::from("macro M0 to a@b dated\n");
        for i in 1..12 {
            text.push_str(&format!("macro M{i} {}\n", format!("M{} ", i - 1).repeat(8)));
        }
        text.push_str("M11\n");
        assert_eq!(
            errors(&text),
            ["f:13: macros expand this line beyond 1048576 characters"]
        );
        // A chain of a thousand macros would have recursed a thousand deep.
        let mut text = String::from("macro M0 to a@b dated\n");
        for i in 1..1000 {
            text.push_str(&format!("macro M{i} M{}\n", i - 1));
        }
        text.push_str("M999\n");
        assert_eq!(errors(&text), ["f:1001: macros nested more than 32 deep"]);
        // Ten levels, as deep as anyone writes them, still work.
        let mut text = String::from("macro M0 to a@b dated\n");
        for i in 1..10 {
            text.push_str(&format!("macro M{i} M{}\n", i - 1));
        }
        text.push_str("M9\n");
        assert_eq!(parse(&text).rules[0].pattern, "a@b");
    }

    #[test]
    fn variables() {
        let vars = |n: &str| match n {
            "HOME_DOM" => Some("example.org".to_string()),
            _ => None,
        };
        let f = parse_str("to *@${HOME_DOM} bare\n", Path::new("f"), &vars).unwrap();
        assert_eq!(f.rules[0].pattern, "*@example.org");
        let e = parse_str("to ${NOPE} bare\n", Path::new("f"), &vars)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "f:1: ${NOPE} is not set in the configuration nor the environment");
    }

    #[test]
    fn includes() {
        let d = tempfile::tempdir().unwrap();
        let inc = d.path().join("inc");
        std::fs::write(&inc, "to inc@x kw=inc\n").unwrap();
        let main = d.path().join("main");
        let text = format!(
            "include {}\ninclude -optional {}/missing\nto after@x bare\n",
            inc.display(),
            d.path().display()
        );
        std::fs::write(&main, &text).unwrap();
        let f = parse_file(&main, &no_vars).unwrap();
        assert_eq!(
            f.rules.iter().map(|r| r.pattern.as_str()).collect::<Vec<_>>(),
            vec!["inc@x", "after@x"]
        );
        assert_eq!(f.rules[0].file, inc);
        // Missing (not optional) and recursive includes are errors.
        std::fs::write(
            &main,
            format!("include {}/missing\ninclude {}\n", d.path().display(), main.display()),
        )
        .unwrap();
        let e = parse_file(&main, &no_vars).unwrap_err().to_string();
        assert!(e.contains(":1: \"") && e.contains("missing\": file not found"), "{e}");
        assert!(e.contains(":2: \"") && e.contains("already included by"), "{e}");
    }

    #[test]
    fn one_error_per_kind_with_line() {
        let e = errors(
            "bogus a@x bare\nto-sql select bare\nbody spam bare\nto a@x ok\nto a@x\nto a@x dated 5d\nto a@x frob\n\
             to a@x python=1\nto-file -nope f bare\nto\nto a@x tag\nto a@x tag 1x bare\nto a@x kw\n",
        );
        let want = [
            "f:1: \"bogus\": unrecognized filter rule",
            "f:2: \"to-sql\" rules are not supported by tmda",
            "f:3: \"body\" rules only work in incoming filters",
            "f:4: \"ok\" is an incoming action",
            "f:5: \"to\": missing or bogus <action> field",
            "f:6: \"to\": garbage at end of line",
            "f:7: \"to\": missing or bogus <action> field",
            "f:8: \"python=\" actions are not supported",
            "f:9: \"nope\": unrecognized argument for \"to-file\"",
            "f:10: \"to\": missing <match> field",
            "f:11: \"to\": missing or bogus <action> field",
            "f:12: \"to\": malformed header field",
            "f:13: \"kw\" needs a value",
        ];
        assert_eq!(e.len(), want.len(), "{e:#?}");
        for (got, w) in e.iter().zip(want) {
            assert!(got.starts_with(w), "got {got:?}, want {w:?}");
        }
        assert_eq!(errors("  starts indented\n"), vec!["f:1: line is improperly indented"]);
    }

    #[test]
    fn matching_order_and_sources() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join("list");
        std::fs::write(
            &list,
            "# friends\nfriend@example.com\nlists.org  kw=lists\n*@=corp.com\tsender # colleagues\n",
        )
        .unwrap();
        let db = d.path().join("db.cdb");
        super::super::cdb::build(&db, &[(b"cdb@example.net", b""), (b"special.net", b"dated=1h")]).unwrap();
        let text = format!(
            "from boss@work.com exp=me@work.com\nto-file {l} dated=2w\nto-cdb {c} bare\nto *@=example.org sender\n\
             to-file -optional {dir}/none bare\nto-cdb -optional {dir}/none.cdb bare\n",
            l = list.display(),
            c = db.display(),
            dir = d.path().display()
        );
        let f = parse(&text);
        let m = first(&f, "friend@EXAMPLE.com", "me@home").unwrap();
        assert_eq!(
            cookie(m.then.tag().unwrap().get("from").unwrap()),
            (Cookie::Dated, Some("2w"))
        );
        assert_eq!(m.line, 2);
        // A domain entry with its own action overrides the rule's action.
        let m = first(&f, "anyone@lists.org", "me@home").unwrap();
        assert_eq!(
            cookie(m.then.tag().unwrap().get("from").unwrap()),
            (Cookie::Keyword, Some("lists"))
        );
        assert_eq!(m.description, format!("to-file {} tag from kw=lists", list.display()));
        let m = first(&f, "bob@dev.corp.com", "me@home").unwrap();
        assert_eq!(
            cookie(m.then.tag().unwrap().get("from").unwrap()),
            (Cookie::Sender, None)
        );
        let m = first(&f, "CDB@example.net", "me@home").unwrap();
        assert_eq!(cookie(m.then.tag().unwrap().get("from").unwrap()), (Cookie::Bare, None));
        let m = first(&f, "x@special.net", "me@home").unwrap();
        assert_eq!(
            cookie(m.then.tag().unwrap().get("from").unwrap()),
            (Cookie::Dated, Some("1h"))
        );
        let m = first(&f, "x@sub.example.org", "me@home").unwrap();
        assert_eq!(
            cookie(m.then.tag().unwrap().get("from").unwrap()),
            (Cookie::Sender, None)
        );
        // `from` rules look at the sender, and come first here.
        let m = first(&f, "friend@example.com", "Boss@Work.com").unwrap();
        assert_eq!(
            cookie(m.then.tag().unwrap().get("from").unwrap()),
            (Cookie::Explicit, Some("me@work.com"))
        );
        assert_eq!(first(&f, "stranger@nowhere.net", "me@home"), None);
    }

    #[test]
    fn missing_lists_are_errors_unless_optional() {
        let f = parse("to-file /nonexistent/list bare\n");
        let e = f.first_match("a@b", "me@x").unwrap_err().to_string();
        assert!(e.starts_with("outgoing:1: /nonexistent/list: No such file"), "{e}");
        let f = parse("to-cdb /nonexistent/db.cdb bare\n");
        assert!(f.first_match("a@b", "me@x").is_err());
    }

    #[test]
    fn bad_action_in_list_is_reported_with_rule_line() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join("l");
        std::fs::write(&list, "a@b frobnicate\n").unwrap();
        let f = parse(&format!("\nto-file {} bare\n", list.display()));
        let e = f.first_match("a@b", "me@x").unwrap_err().to_string();
        assert!(e.starts_with("outgoing:2: ") && e.contains("frobnicate"), "{e}");
    }

    fn incoming(text: &str) -> Filter {
        parse_str_for(Direction::Incoming, text, Path::new("incoming"), &no_vars).unwrap_or_else(|e| panic!("{e}"))
    }

    fn verdict(f: &Filter, rcpt: &str, senders: &[&str], headers: &str, body: &[u8]) -> Option<String> {
        let subject = super::super::Subject {
            direction: Direction::Incoming,
            recipients: &[rcpt],
            senders,
            message: Some(super::super::incoming::MessageView::new(
                headers,
                &body,
                (headers.len() + 1 + body.len()) as u64,
            )),
        };
        f.first_match_in(&subject).unwrap().map(|m| {
            let d = m.then.disposition().unwrap().clone();
            format!("{} {}", d.word, m.description)
        })
    }

    #[test]
    fn incoming_rules_and_dispositions() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join("white");
        std::fs::write(&list, "bob@example.org\ncarol@x.net confirm=my template.txt\n").unwrap();
        let f = incoming(&format!(
            "from-file {} ok\nfrom example.org drop\nheaders '^subject:.*viagra' bounce=spam.txt\n\
             body -case \"BUY NOW\" hold\nsize >100 confirm\nto me-lists@x.org deliver=~/Maildir/lists/\n\
             from outgoing@x.org dated\nfrom *@shout.org OK\n",
            list.display()
        ));
        assert_eq!(
            verdict(&f, "me@x.org", &["bob@example.org"], "", b"").unwrap(),
            format!("ok from-file {} ok", list.display())
        );
        // TMDA's Q1: after a from-file rule, the sender list held bare domains, so the
        // `from example.org` rule dropped dave@example.org's mail. Not here.
        assert_eq!(verdict(&f, "me@x.org", &["dave@example.org"], "", b""), None);
        // A text list's second column: only its first word, as TMDA.
        assert_eq!(
            verdict(&f, "me@x.org", &["carol@x.net"], "", b"")
                .unwrap()
                .split(' ')
                .next(),
            Some("confirm")
        );
        let m = f
            .first_match_in(&super::super::Subject {
                direction: Direction::Incoming,
                recipients: &["me@x.org"],
                senders: &["carol@x.net"],
                message: None,
            })
            .unwrap()
            .unwrap();
        assert_eq!(m.then.disposition().unwrap().option.as_deref(), Some("my"));
        assert_eq!(
            verdict(
                &f,
                "me@x.org",
                &["z@z.org"],
                "From: z\nSubject: cheap Viagra\n",
                b"hi\n"
            )
            .unwrap(),
            "bounce headers \"^subject:.*viagra\" bounce"
        );
        assert_eq!(verdict(&f, "me@x.org", &["z@z.org"], "From: z\n", b"buy now\n"), None);
        assert_eq!(
            verdict(&f, "me@x.org", &["z@z.org"], "From: z\n", b"BUY NOW\n").unwrap(),
            "hold body -case \"BUY NOW\" hold"
        );
        assert_eq!(
            verdict(&f, "me@x.org", &["z@z.org"], "From: z\n", &[b'x'; 200]).unwrap(),
            "confirm size >100 confirm"
        );
        assert_eq!(
            verdict(&f, "me-lists@x.org", &["z@z.org"], "From: z\n", b"x\n").unwrap(),
            "deliver to me-lists@x.org deliver"
        );
        // An outgoing action in an incoming file is accepted and never decides (as TMDA).
        assert_eq!(verdict(&f, "me@x.org", &["outgoing@x.org"], "From: z\n", b"x\n"), None);
        // Capitals work (TMDA parsed them, then ignored the rule).
        assert_eq!(
            verdict(&f, "me@x.org", &["a@shout.org"], "From: z\n", b"x\n").unwrap(),
            "ok from *@shout.org ok"
        );
    }

    #[test]
    fn incoming_errors_name_the_line() {
        let e = parse_str_for(
            Direction::Incoming,
            "from a@b ok\nbody '(unclosed' drop\nsize 10 drop\nfrom x frobnicate\n",
            Path::new("inc"),
            &no_vars,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("inc:2") && e.contains("bad regular expression"), "{e}");
        assert!(!e.contains("inc:3"), "size without < or > never matches, as TMDA: {e}");
        assert!(e.contains("inc:4") && e.contains("bogus <action>"), "{e}");
        let e = parse_str_for(Direction::Incoming, "size <ten drop\n", Path::new("inc"), &no_vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("inc:1") && e.contains("<NUMBER"), "{e}");
        // Incoming sources and actions stay errors in outgoing filters.
        assert!(errors("body viagra drop\n")[0].contains("only work in incoming filters"));
        assert!(errors("from a@b ok\n")[0].contains("incoming action"));
    }
}
