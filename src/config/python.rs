//! A reader for the Python subset that TMDA configuration files are written in.
//!
//! TMDA `exec`s `~/.tmda/config`. We never execute anything: this module tokenises the
//! file and evaluates only data — `NAME = value` (and `+=`), `os.environ["X"] = value`,
//! and `import` lines, which are accepted and ignored. Values are string literals (all
//! quote styles, raw strings, escapes, adjacent-literal concatenation), numbers,
//! `True`/`False`/`None` and TMDA's aliases (`on`, `Yes`, `OFF`, ...), lists, tuples,
//! dicts, `+`, `%` formatting, names assigned earlier, and a few calls real configs
//! use: `os.path.expanduser`, `os.path.join`, `os.environ.get`, `os.environ[...]`,
//! `os.getenv`, `str`, `int`. Anything else is an error naming file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfigError;
use super::value::Value;

/// Where a variable got its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File { path: PathBuf, line: usize },
    Environment(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Environment(var) => write!(f, "${var}"),
        }
    }
}

/// The variables a configuration assigned, and the environment it changed.
#[derive(Debug, Clone, Default)]
pub struct Namespace {
    pub vars: BTreeMap<String, (Value, Origin)>,
    /// `os.environ[...] = ...` assignments; they shadow the process environment.
    pub env: BTreeMap<String, String>,
}

impl Namespace {
    /// The names TMDA defines before it reads a config: its On/Off aliases.
    pub fn with_builtins() -> Namespace {
        let mut ns = Namespace::default();
        for n in ["ON", "On", "on", "YES", "Yes", "yes", "TRUE", "true", "True"] {
            ns.vars.insert(n.into(), (Value::Bool(true), Origin::Default));
        }
        for n in ["OFF", "Off", "off", "NO", "No", "no", "FALSE", "false", "False"] {
            ns.vars.insert(n.into(), (Value::Bool(false), Origin::Default));
        }
        ns.vars.insert("None".into(), (Value::None, Origin::Default));
        ns
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name).map(|(v, _)| v)
    }

    pub fn set(&mut self, name: &str, value: Value, origin: Origin) {
        self.vars.insert(name.to_string(), (value, origin));
    }

    /// An environment variable as the config sees it (its own assignments first).
    pub fn getenv(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned().or_else(|| std::env::var(name).ok())
    }

    /// Python's `os.path.expanduser`, with HOME as this namespace sees it.
    pub fn expanduser(&self, path: &str) -> String {
        crate::os::expanduser_with(path, |n| self.getenv(n))
    }
}

// ---------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Int(i64),
    Float(f64),
    Op(&'static str),
    Newline,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
}

impl Token {
    fn describe(&self) -> String {
        match &self.tok {
            Tok::Name(n) => format!("'{n}'"),
            Tok::Str(s) => format!("string {}", Value::Str(s.clone()).py_repr()),
            Tok::Int(i) => format!("number {i}"),
            Tok::Float(f) => format!("number {f}"),
            Tok::Op(o) => format!("'{o}'"),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// Brackets deeper than this are refused (TMDA's configs use two or three).
const MAX_NESTING: usize = 64;

/// Bytes of values one file may build (copies, concatenation, repetition, formatting).
/// Far above any real configuration; it stops `X = X * 4096` from exhausting memory.
const MAX_BUILT: usize = 64 << 20;

const HINT_DATA_ONLY: &str = "tmda reads configuration files as data and never runs them: only `NAME = value` assignments, `os.environ[\"NAME\"] = value` and `import` lines are allowed";

/// An error in an assignment to a secret (SMTPAUTH_PASSWORD, say) could quote the
/// value, and errors reach logs: say where, not what.
fn conceal(e: ConfigError, name: &str) -> ConfigError {
    match e {
        ConfigError::Syntax { path, line, col, .. } => ConfigError::Syntax {
            path,
            line,
            col,
            message: format!("cannot read the value given to {name} (not shown: it may be secret)"),
            hint: None,
        },
        other => other,
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
    depth: usize,
    path: &'a Path,
    out: Vec<Token>,
}

impl<'a> Lexer<'a> {
    fn err(&self, line: usize, col: usize, message: impl Into<String>, hint: Option<&str>) -> ConfigError {
        ConfigError::Syntax {
            path: self.path.to_path_buf(),
            line,
            col,
            message: message.into(),
            hint: hint.map(str::to_string),
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, line: usize, col: usize) {
        self.out.push(Token { tok, line, col });
    }

    fn run(mut self) -> Result<Vec<Token>, ConfigError> {
        let mut at_line_start = true;
        loop {
            if at_line_start && self.depth == 0 {
                // Measure indentation; blank and comment-only lines don't count.
                let (line, mut col) = (self.line, self.col);
                while matches!(self.peek(0), Some(' ' | '\t' | '\x0c')) {
                    self.bump();
                    col = self.col;
                }
                match self.peek(0) {
                    None => break,
                    Some('\n') | Some('#') | Some('\r') => {}
                    Some(_) if col > 1 => {
                        return Err(self.err(line, col, "unexpected indentation", Some(HINT_DATA_ONLY)));
                    }
                    Some(_) => {}
                }
                at_line_start = false;
            }
            let (line, col) = (self.line, self.col);
            let Some(c) = self.peek(0) else { break };
            match c {
                ' ' | '\t' | '\x0c' | '\r' => {
                    self.bump();
                }
                '#' => {
                    while !matches!(self.peek(0), None | Some('\n')) {
                        self.bump();
                    }
                }
                '\n' => {
                    self.bump();
                    if self.depth == 0 {
                        if !matches!(self.out.last(), None | Some(Token { tok: Tok::Newline, .. })) {
                            self.push(Tok::Newline, line, col);
                        }
                        at_line_start = true;
                    }
                }
                '\\' => {
                    self.bump();
                    if self.peek(0) == Some('\r') {
                        self.bump();
                    }
                    if self.bump() != Some('\n') {
                        return Err(self.err(line, col, "a backslash outside a string must end the line", None));
                    }
                }
                '"' | '\'' => self.string(String::new(), line, col)?,
                c if c.is_ascii_digit() || (c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit())) => {
                    self.number(line, col)?
                }
                c if c.is_alphabetic() || c == '_' => {
                    let mut name = String::new();
                    while let Some(c) = self.peek(0).filter(|c| c.is_alphanumeric() || *c == '_') {
                        name.push(c);
                        self.bump();
                    }
                    let is_prefix = name.len() <= 2 && name.chars().all(|c| "rRbBuUfF".contains(c));
                    if is_prefix && matches!(self.peek(0), Some('"' | '\'')) {
                        if name.to_lowercase().contains('f') {
                            return Err(self.err(
                                line,
                                col,
                                "f-strings are not supported",
                                Some("use + or % to build the string"),
                            ));
                        }
                        self.string(name, line, col)?;
                    } else {
                        self.push(Tok::Name(name), line, col);
                    }
                }
                _ => {
                    let two: String = [c, self.peek(1).unwrap_or('\0')].iter().collect();
                    let op: &'static str = match two.as_str() {
                        "+=" => "+=",
                        "==" => "==",
                        "!=" => "!=",
                        "**" => "**",
                        _ => match c {
                            '(' => "(",
                            ')' => ")",
                            '[' => "[",
                            ']' => "]",
                            '{' => "{",
                            '}' => "}",
                            ',' => ",",
                            ':' => ":",
                            '=' => "=",
                            '+' => "+",
                            '-' => "-",
                            '*' => "*",
                            '%' => "%",
                            '.' => ".",
                            ';' => ";",
                            '<' => "<",
                            '>' => ">",
                            '/' => "/",
                            _ => {
                                return Err(self.err(
                                    line,
                                    col,
                                    format!("unexpected character '{}'", c.escape_default()),
                                    None,
                                ));
                            }
                        },
                    };
                    for _ in 0..op.len() {
                        self.bump();
                    }
                    match op {
                        "(" | "[" | "{" => {
                            self.depth += 1;
                            // Evaluation recurses once per bracket: bound it so a pathological
                            // file is an error, not a stack overflow.
                            if self.depth > MAX_NESTING {
                                return Err(self.err(
                                    line,
                                    col,
                                    format!("brackets nested more than {MAX_NESTING} deep"),
                                    None,
                                ));
                            }
                        }
                        ")" | "]" | "}" => {
                            if self.depth == 0 {
                                return Err(self.err(line, col, format!("unmatched '{op}'"), None));
                            }
                            self.depth -= 1
                        }
                        _ => {}
                    }
                    self.push(Tok::Op(op), line, col);
                }
            }
        }
        if self.depth > 0 {
            let open = self
                .out
                .iter()
                .rev()
                .find(|t| matches!(t.tok, Tok::Op("(" | "[" | "{")));
            let (l, c) = open.map(|t| (t.line, t.col)).unwrap_or((self.line, self.col));
            return Err(self.err(l, c, "bracket is never closed", None));
        }
        let (line, col) = (self.line, self.col);
        if !matches!(self.out.last(), None | Some(Token { tok: Tok::Newline, .. })) {
            self.push(Tok::Newline, line, col);
        }
        self.push(Tok::Eof, line, col);
        Ok(self.out)
    }

    fn string(&mut self, prefix: String, line: usize, col: usize) -> Result<(), ConfigError> {
        let raw = prefix.to_lowercase().contains('r');
        let quote = self.bump().expect("caller saw a quote");
        let triple = self.peek(0) == Some(quote) && self.peek(1) == Some(quote);
        if triple {
            self.bump();
            self.bump();
        }
        let mut s = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.err(line, col, "string is never closed", None));
            };
            if c == quote {
                if !triple {
                    break;
                }
                if self.peek(0) == Some(quote) && self.peek(1) == Some(quote) {
                    self.bump();
                    self.bump();
                    break;
                }
                s.push(c);
            } else if c == '\n' && !triple {
                return Err(self.err(
                    line,
                    col,
                    "string is never closed on its line",
                    Some("use triple quotes for a string over several lines"),
                ));
            } else if c == '\\' {
                let Some(e) = self.bump() else {
                    return Err(self.err(line, col, "string is never closed", None));
                };
                if raw {
                    s.push('\\');
                    s.push(e);
                    continue;
                }
                match e {
                    '\n' => {}
                    '\\' | '\'' | '"' => s.push(e),
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    'a' => s.push('\x07'),
                    'b' => s.push('\x08'),
                    'f' => s.push('\x0c'),
                    'v' => s.push('\x0b'),
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap();
                        for _ in 0..2 {
                            match self.peek(0).and_then(|d| d.to_digit(8)) {
                                Some(d) => {
                                    v = v * 8 + d;
                                    self.bump();
                                }
                                None => break,
                            }
                        }
                        s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v = 0u32;
                        for _ in 0..n {
                            let d = self.bump().and_then(|d| d.to_digit(16));
                            let Some(d) = d else {
                                return Err(self.err(self.line, self.col, format!("bad \\{e} escape in string"), None));
                            };
                            v = v * 16 + d;
                        }
                        match char::from_u32(v) {
                            Some(c) => s.push(c),
                            None => {
                                return Err(self.err(
                                    self.line,
                                    self.col,
                                    format!("\\{e} escape is not a valid character"),
                                    None,
                                ));
                            }
                        }
                    }
                    other => {
                        // Python keeps unknown escapes as written.
                        s.push('\\');
                        s.push(other);
                    }
                }
            } else {
                s.push(c);
            }
        }
        self.push(Tok::Str(s), line, col);
        Ok(())
    }

    fn number(&mut self, line: usize, col: usize) -> Result<(), ConfigError> {
        let mut text = String::new();
        while let Some(c) = self
            .peek(0)
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        {
            // An exponent sign belongs to the number.
            text.push(c);
            self.bump();
            if (c == 'e' || c == 'E') && !text.starts_with("0x") && matches!(self.peek(0), Some('+' | '-')) {
                text.push(self.bump().unwrap());
            }
        }
        let clean = text.replace('_', "");
        let lower = clean.to_lowercase();
        let parsed = if let Some(h) = lower.strip_prefix("0x") {
            i64::from_str_radix(h, 16).ok().map(Tok::Int)
        } else if let Some(o) = lower.strip_prefix("0o") {
            i64::from_str_radix(o, 8).ok().map(Tok::Int)
        } else if let Some(b) = lower.strip_prefix("0b") {
            i64::from_str_radix(b, 2).ok().map(Tok::Int)
        } else if lower.contains(['.', 'e']) {
            lower.parse::<f64>().ok().map(Tok::Float)
        } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().any(|b| b != b'0') {
            None // Python 3 rejects 0600; say so instead of guessing octal.
        } else {
            lower.parse::<i64>().ok().map(Tok::Int)
        };
        match parsed {
            Some(t) => {
                self.push(t, line, col);
                Ok(())
            }
            None => Err(self.err(
                line,
                col,
                format!("invalid number {}", crate::exit::quote(&text)),
                Some("octal numbers are written 0o600"),
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Evaluation

struct Eval<'a> {
    toks: Vec<Token>,
    pos: usize,
    ns: &'a mut Namespace,
    path: &'a Path,
    /// Bytes of values built so far (see [`MAX_BUILT`]).
    built: usize,
}

type R<T> = Result<T, ConfigError>;

impl<'a> Eval<'a> {
    fn peek(&self) -> &Token {
        &self.toks[self.pos]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_at(&self, t: &Token, message: impl Into<String>, hint: Option<&str>) -> ConfigError {
        ConfigError::Syntax {
            path: self.path.to_path_buf(),
            line: t.line,
            col: t.col,
            message: message.into(),
            hint: hint.map(str::to_string),
        }
    }

    fn unexpected(&self, t: &Token, wanted: &str) -> ConfigError {
        self.err_at(t, format!("expected {wanted}, found {}", t.describe()), None)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(&self.peek().tok, Tok::Op(o) if *o == op)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> R<Token> {
        if self.is_op(op) {
            Ok(self.next())
        } else {
            let t = self.peek().clone();
            Err(self.unexpected(&t, &format!("'{op}'")))
        }
    }

    /// Count a value this file built (or copied) against [`MAX_BUILT`].
    fn built(&mut self, v: Value, t: &Token) -> R<Value> {
        self.reserve(v.footprint(), t)?;
        Ok(v)
    }

    fn reserve(&mut self, bytes: usize, t: &Token) -> R<()> {
        self.built = self.built.saturating_add(bytes);
        if self.built > MAX_BUILT {
            return Err(self.err_at(
                t,
                format!("the values built here pass {} MiB", MAX_BUILT >> 20),
                Some("a configuration holds settings; this one keeps copying or repeating values"),
            ));
        }
        Ok(())
    }

    fn run(&mut self) -> R<()> {
        loop {
            match self.peek().tok {
                Tok::Eof => return Ok(()),
                Tok::Newline => {
                    self.next();
                    continue;
                }
                _ => {}
            }
            let target = match &self.peek().tok {
                Tok::Name(n) => Some(n.clone()),
                _ => None,
            };
            let done = self.statement().and_then(|()| {
                let t = self.peek().clone();
                match t.tok {
                    Tok::Newline | Tok::Eof => Ok(()),
                    Tok::Op(";") => {
                        self.next();
                        Ok(())
                    }
                    _ => Err(self.unexpected(&t, "end of line")),
                }
            });
            if let Err(e) = done {
                return Err(match target {
                    Some(name) if super::is_secret_name(&name) => conceal(e, &name),
                    _ => e,
                });
            }
        }
    }

    fn statement(&mut self) -> R<()> {
        let t = self.peek().clone();
        let Tok::Name(name) = &t.tok else {
            return Err(self.err_at(
                &t,
                format!("expected a variable name, found {}", t.describe()),
                Some(HINT_DATA_ONLY),
            ));
        };
        match name.as_str() {
            "import" | "from" => {
                // Imports are harmless: skip to the end of the statement.
                while !matches!(self.peek().tok, Tok::Newline | Tok::Eof | Tok::Op(";")) {
                    self.next();
                }
                return Ok(());
            }
            "if" | "else" | "elif" | "for" | "while" | "def" | "class" | "try" | "except" | "with" | "print"
            | "exec" | "del" | "return" | "lambda" | "global" | "assert" | "raise" | "pass" => {
                return Err(self.err_at(
                    &t,
                    format!("'{name}' statements are not supported"),
                    Some(HINT_DATA_ONLY),
                ));
            }
            "os" if self.peek_at(1) == &Tok::Op(".")
                && self.peek_at(2) == &Tok::Name("environ".into())
                && self.peek_at(3) == &Tok::Op("[") =>
            {
                self.next();
                self.next();
                self.next();
                self.next();
                let key_tok = self.peek().clone();
                let key = self.expr()?;
                let Value::Str(key) = key else {
                    return Err(self.err_at(
                        &key_tok,
                        format!("environment variable names are strings, found {}", key.type_name()),
                        None,
                    ));
                };
                self.expect_op("]")?;
                self.expect_op("=")?;
                let vt = self.peek().clone();
                let value = self.expr_list()?;
                let Value::Str(value) = value else {
                    return Err(self.err_at(
                        &vt,
                        format!("environment values must be strings, found {}", value.type_name()),
                        None,
                    ));
                };
                self.ns.env.insert(key, value);
                return Ok(());
            }
            _ => {}
        }
        let name = name.clone();
        self.next();
        let op = self.next();
        let origin = Origin::File {
            path: self.path.to_path_buf(),
            line: t.line,
        };
        match op.tok {
            Tok::Op("=") => {
                let value = self.expr_list()?;
                self.ns.set(&name, value, origin);
                Ok(())
            }
            Tok::Op("+=") => {
                let Some(old) = self.ns.get(&name).cloned() else {
                    return Err(self.err_at(
                        &t,
                        format!("name '{name}' is not defined"),
                        Some("+= needs a value assigned earlier"),
                    ));
                };
                let rhs = self.expr_list()?;
                let value = self.add(old, rhs, &op)?;
                let value = self.built(value, &op)?;
                self.ns.set(&name, value, origin);
                Ok(())
            }
            _ => Err(self.err_at(
                &op,
                format!("expected '=' after '{name}', found {}", op.describe()),
                Some(HINT_DATA_ONLY),
            )),
        }
    }

    /// `a, b, c` without brackets is a tuple, as in Python.
    fn expr_list(&mut self) -> R<Value> {
        let first = self.expr()?;
        if !self.is_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_op(",") {
            if matches!(self.peek().tok, Tok::Newline | Tok::Eof | Tok::Op(";")) {
                break;
            }
            items.push(self.expr()?);
        }
        Ok(Value::Tuple(items))
    }

    fn expr(&mut self) -> R<Value> {
        let mut v = self.term()?;
        loop {
            if self.is_op("+") || self.is_op("-") {
                let op = self.next();
                let rhs = self.term()?;
                v = if op.tok == Tok::Op("+") {
                    self.add(v, rhs, &op)?
                } else {
                    self.sub(v, rhs, &op)?
                };
                v = self.built(v, &op)?;
            } else if matches!(self.peek().tok, Tok::Op("==" | "!=" | "<" | ">" | "/" | "**")) {
                let t = self.peek().clone();
                return Err(self.err_at(
                    &t,
                    format!("operator {} is not supported", t.describe()),
                    Some(HINT_DATA_ONLY),
                ));
            } else if let Tok::Name(n) = &self.peek().tok
                && matches!(n.as_str(), "if" | "and" | "or" | "not" | "in" | "is" | "for")
            {
                let t = self.peek().clone();
                return Err(self.err_at(&t, format!("'{n}' expressions are not supported"), Some(HINT_DATA_ONLY)));
            } else {
                return Ok(v);
            }
        }
    }

    fn term(&mut self) -> R<Value> {
        let mut v = self.unary()?;
        while self.is_op("%") || self.is_op("*") {
            let op = self.next();
            let rhs = self.unary()?;
            v = if op.tok == Tok::Op("%") {
                self.format(v, rhs, &op)?
            } else {
                self.mul(v, rhs, &op)?
            };
            v = self.built(v, &op)?;
        }
        Ok(v)
    }

    fn unary(&mut self) -> R<Value> {
        // Prefix signs in a loop, not by recursion: `- - - ... 1` cannot overflow the stack.
        let mut signs = vec![];
        while self.is_op("-") || self.is_op("+") {
            signs.push(self.next());
        }
        let mut v = self.postfix()?;
        for op in signs.iter().rev() {
            v = match (v, op.tok == Tok::Op("-")) {
                (Value::Int(i), true) => Value::Int(
                    i.checked_neg()
                        .ok_or_else(|| self.err_at(op, "number too large", None))?,
                ),
                (Value::Float(f), true) => Value::Float(-f),
                (v @ (Value::Int(_) | Value::Float(_)), false) => v,
                (v, _) => {
                    return Err(self.err_at(
                        op,
                        format!("bad operand type for unary {}: {}", op.describe(), v.type_name()),
                        None,
                    ));
                }
            };
        }
        Ok(v)
    }

    fn postfix(&mut self) -> R<Value> {
        let mut v = self.atom()?;
        loop {
            if self.is_op("[") {
                let open = self.next();
                let key = self.expr()?;
                self.expect_op("]")?;
                v = self.index(v, key, &open)?;
                v = self.built(v, &open)?;
            } else if self.is_op(".") && matches!(self.peek_at(1), Tok::Name(_)) && self.peek_at(2) == &Tok::Op("(") {
                self.next();
                let name_tok = self.next();
                let Tok::Name(method) = name_tok.tok.clone() else {
                    unreachable!()
                };
                let args = self.call_args()?;
                v = self.method(v, &method, args, &name_tok)?;
                v = self.built(v, &name_tok)?;
            } else {
                return Ok(v);
            }
        }
    }

    fn atom(&mut self) -> R<Value> {
        let t = self.next();
        match t.tok.clone() {
            Tok::Str(mut s) => {
                // Adjacent literals concatenate: "abc" 'def'.
                while let Tok::Str(more) = &self.peek().tok {
                    s.push_str(more);
                    self.next();
                }
                Ok(Value::Str(s))
            }
            Tok::Int(i) => Ok(Value::Int(i)),
            Tok::Float(f) => Ok(Value::Float(f)),
            Tok::Op("(") => {
                if self.eat_op(")") {
                    return Ok(Value::Tuple(vec![]));
                }
                let first = self.expr()?;
                if self.eat_op(")") {
                    return Ok(first);
                }
                let mut items = vec![first];
                while self.eat_op(",") {
                    if self.is_op(")") {
                        break;
                    }
                    items.push(self.expr()?);
                }
                self.expect_op(")")?;
                Ok(Value::Tuple(items))
            }
            Tok::Op("[") => {
                let mut items = vec![];
                while !self.is_op("]") {
                    items.push(self.expr()?);
                    if !self.eat_op(",") {
                        break;
                    }
                }
                self.expect_op("]")?;
                Ok(Value::List(items))
            }
            Tok::Op("{") => {
                let mut items = vec![];
                while !self.is_op("}") {
                    let k = self.expr()?;
                    self.expect_op(":")?;
                    let v = self.expr()?;
                    items.retain(|(old, _): &(Value, Value)| *old != k);
                    items.push((k, v));
                    if !self.eat_op(",") {
                        break;
                    }
                }
                self.expect_op("}")?;
                Ok(Value::Dict(items))
            }
            Tok::Name(n) if n == "os" => self.os_expr(&t),
            Tok::Name(n) if self.is_op("(") => {
                let args = self.call_args()?;
                let v = self.builtin(&n, args, &t)?;
                self.built(v, &t)
            }
            Tok::Name(n) => match self.ns.get(&n) {
                Some(v) => {
                    let v = v.clone();
                    self.built(v, &t)
                }
                None => Err(self.err_at(
                    &t,
                    format!("name '{n}' is not defined"),
                    Some("a config can use names assigned earlier (in it or in the global config), True/False/None and TMDA's On/Off/Yes/No aliases; quote literal text"),
                )),
            },
            _ => Err(self.unexpected(&t, "a value")),
        }
    }

    fn call_args(&mut self) -> R<Vec<Value>> {
        self.expect_op("(")?;
        let mut args = vec![];
        while !self.is_op(")") {
            if matches!(self.peek().tok, Tok::Name(_)) && self.peek_at(1) == &Tok::Op("=") {
                let t = self.peek().clone();
                return Err(self.err_at(&t, "keyword arguments are not supported", None));
            }
            args.push(self.expr()?);
            if !self.eat_op(",") {
                break;
            }
        }
        self.expect_op(")")?;
        Ok(args)
    }

    fn os_expr(&mut self, os_tok: &Token) -> R<Value> {
        let mut path = String::from("os");
        while self.is_op(".") {
            self.next();
            let t = self.next();
            let Tok::Name(n) = t.tok.clone() else {
                return Err(self.unexpected(&t, "a name after '.'"));
            };
            path.push('.');
            path.push_str(&n);
            if self.is_op("(") || self.is_op("[") {
                break;
            }
        }
        let str_arg = |ev: &Self, args: &[Value], i: usize| -> R<String> {
            match args.get(i) {
                Some(Value::Str(s)) => Ok(s.clone()),
                Some(v) => Err(ev.err_at(os_tok, format!("{path}() wants a string, not {}", v.type_name()), None)),
                None => Err(ev.err_at(os_tok, format!("{path}() is missing an argument"), None)),
            }
        };
        match path.as_str() {
            "os.environ" if self.is_op("[") => {
                let open = self.next();
                let key = self.expr()?;
                self.expect_op("]")?;
                let Value::Str(key) = key else {
                    return Err(self.err_at(&open, "environment variable names are strings", None));
                };
                self.ns.getenv(&key).map(Value::Str).ok_or_else(|| {
                    self.err_at(
                        &open,
                        format!("environment variable {key} is not set"),
                        Some("use os.environ.get(\"NAME\", \"default\")"),
                    )
                })
            }
            "os.environ.get" | "os.getenv" => {
                let args = self.call_args()?;
                let key = str_arg(self, &args, 0)?;
                if args.len() > 2 {
                    return Err(self.err_at(os_tok, format!("{path}() takes at most 2 arguments"), None));
                }
                Ok(self
                    .ns
                    .getenv(&key)
                    .map(Value::Str)
                    .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::None)))
            }
            "os.path.expanduser" => {
                let args = self.call_args()?;
                let p = str_arg(self, &args, 0)?;
                Ok(Value::Str(self.ns.expanduser(&p)))
            }
            "os.path.join" => {
                let args = self.call_args()?;
                let mut out = String::new();
                for i in 0..args.len().max(1) {
                    let part = str_arg(self, &args, i)?;
                    if part.starts_with('/') {
                        out = part;
                    } else if out.is_empty() || out.ends_with('/') {
                        out.push_str(&part);
                    } else {
                        out.push('/');
                        out.push_str(&part);
                    }
                }
                Ok(Value::Str(out))
            }
            _ => Err(self.err_at(
                os_tok,
                format!("{path} is not supported"),
                Some("supported: os.path.expanduser, os.path.join, os.environ.get, os.environ[...], os.getenv"),
            )),
        }
    }

    fn builtin(&mut self, name: &str, args: Vec<Value>, t: &Token) -> R<Value> {
        match (name, args.as_slice()) {
            ("str", [v]) => Ok(Value::Str(v.py_str())),
            ("int", [Value::Int(i)]) => Ok(Value::Int(*i)),
            ("int", [Value::Float(f)]) => Ok(Value::Int(f.trunc() as i64)),
            ("int", [Value::Bool(b)]) => Ok(Value::Int(*b as i64)),
            ("int", [Value::Str(s)]) => s.trim().parse().map(Value::Int).map_err(|_| {
                self.err_at(
                    t,
                    format!("int() cannot convert {}", Value::Str(s.clone()).py_repr()),
                    None,
                )
            }),
            ("str" | "int", _) => Err(self.err_at(t, format!("{name}() takes exactly one suitable argument"), None)),
            _ => Err(self.err_at(t, format!("calling {name}() is not supported"), Some(HINT_DATA_ONLY))),
        }
    }

    fn method(&mut self, v: Value, method: &str, args: Vec<Value>, t: &Token) -> R<Value> {
        match (&v, method, args.as_slice()) {
            (Value::Str(s), "lower", []) => Ok(Value::Str(s.to_lowercase())),
            (Value::Str(s), "upper", []) => Ok(Value::Str(s.to_uppercase())),
            (Value::Str(s), "strip", []) => Ok(Value::Str(s.trim().to_string())),
            _ => Err(self.err_at(
                t,
                format!("{}.{method}() is not supported", v.type_name()),
                Some(HINT_DATA_ONLY),
            )),
        }
    }

    fn index(&self, v: Value, key: Value, t: &Token) -> R<Value> {
        match (&v, &key) {
            (Value::List(items) | Value::Tuple(items), Value::Int(i)) => {
                let len = items.len() as i64;
                let idx = if *i < 0 { len + i } else { *i };
                items
                    .get(idx as usize)
                    .filter(|_| idx >= 0)
                    .cloned()
                    .ok_or_else(|| self.err_at(t, "index out of range", None))
            }
            (Value::Str(s), Value::Int(i)) => {
                let chars: Vec<char> = s.chars().collect();
                let len = chars.len() as i64;
                let idx = if *i < 0 { len + i } else { *i };
                chars
                    .get(idx as usize)
                    .filter(|_| idx >= 0)
                    .map(|c| Value::Str(c.to_string()))
                    .ok_or_else(|| self.err_at(t, "index out of range", None))
            }
            (Value::Dict(items), k) => items
                .iter()
                .find(|(ik, _)| ik == k)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| self.err_at(t, format!("key {} is not in the dict", k.py_repr()), None)),
            _ => Err(self.err_at(
                t,
                format!("cannot index {} with {}", v.type_name(), key.type_name()),
                None,
            )),
        }
    }

    fn add(&self, a: Value, b: Value, t: &Token) -> R<Value> {
        Ok(match (a, b) {
            (Value::Str(x), Value::Str(y)) => Value::Str(x + &y),
            (Value::Int(x), Value::Int(y)) => Value::Int(
                x.checked_add(y)
                    .ok_or_else(|| self.err_at(t, "number too large", None))?,
            ),
            (Value::Float(x), Value::Float(y)) => Value::Float(x + y),
            (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => Value::Float(x as f64 + y),
            (Value::List(mut x), Value::List(y)) => {
                x.extend(y);
                Value::List(x)
            }
            (Value::Tuple(mut x), Value::Tuple(y)) => {
                x.extend(y);
                Value::Tuple(x)
            }
            (a, b) => {
                return Err(self.err_at(t, format!("cannot add {} and {}", a.type_name(), b.type_name()), None));
            }
        })
    }

    fn sub(&self, a: Value, b: Value, t: &Token) -> R<Value> {
        match (a, b) {
            (Value::Int(x), Value::Int(y)) => Ok(Value::Int(
                x.checked_sub(y)
                    .ok_or_else(|| self.err_at(t, "number too large", None))?,
            )),
            (Value::Float(x), Value::Float(y)) => Ok(Value::Float(x - y)),
            (Value::Int(x), Value::Float(y)) => Ok(Value::Float(x as f64 - y)),
            (Value::Float(x), Value::Int(y)) => Ok(Value::Float(x - y as f64)),
            (a, b) => Err(self.err_at(
                t,
                format!("cannot subtract {} from {}", b.type_name(), a.type_name()),
                None,
            )),
        }
    }

    fn mul(&mut self, a: Value, b: Value, t: &Token) -> R<Value> {
        match (a, b) {
            (Value::Int(x), Value::Int(y)) => Ok(Value::Int(
                x.checked_mul(y)
                    .ok_or_else(|| self.err_at(t, "number too large", None))?,
            )),
            (Value::Float(x), Value::Float(y)) => Ok(Value::Float(x * y)),
            (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => Ok(Value::Float(x as f64 * y)),
            (Value::Str(s), Value::Int(n)) | (Value::Int(n), Value::Str(s)) if (0..=4096).contains(&n) => {
                // Counted before it is built: the repetition is what could exhaust memory.
                self.reserve(s.len() * n as usize, t)?;
                Ok(Value::Str(s.repeat(n as usize)))
            }
            (a, b) => Err(self.err_at(
                t,
                format!("cannot multiply {} by {}", a.type_name(), b.type_name()),
                None,
            )),
        }
    }

    /// `"fmt" % args` with `%s`, `%r`, `%d`, `%i` and `%%`.
    fn format(&self, fmt: Value, args: Value, t: &Token) -> R<Value> {
        let Value::Str(fmt) = fmt else {
            return Err(self.err_at(t, "% is only supported for string formatting", None));
        };
        let args = match args {
            Value::Tuple(v) => v,
            other => vec![other],
        };
        let mut out = String::new();
        let mut it = args.into_iter();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some(spec @ ('s' | 'r' | 'd' | 'i')) => {
                    let v = it
                        .next()
                        .ok_or_else(|| self.err_at(t, "not enough arguments for format string", None))?;
                    match spec {
                        's' => out.push_str(&v.py_str()),
                        'r' => out.push_str(&v.py_repr()),
                        _ => match v {
                            Value::Int(i) => out.push_str(&i.to_string()),
                            Value::Bool(b) => out.push_str(if b { "1" } else { "0" }),
                            Value::Float(f) => out.push_str(&(f.trunc() as i64).to_string()),
                            other => {
                                return Err(self.err_at(
                                    t,
                                    format!("%{spec} format needs a number, not {}", other.type_name()),
                                    None,
                                ));
                            }
                        },
                    }
                }
                other => {
                    return Err(self.err_at(
                        t,
                        format!("unsupported format %{}", other.map(String::from).unwrap_or_default()),
                        Some("supported: %s %r %d %i %%"),
                    ));
                }
            }
        }
        if it.next().is_some() {
            return Err(self.err_at(t, "not all arguments converted during string formatting", None));
        }
        Ok(Value::Str(out))
    }
}

/// Read one configuration file's text into `ns`.
pub fn exec(source: &str, path: &Path, ns: &mut Namespace) -> Result<(), ConfigError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lexer = Lexer {
        chars: source.chars().collect(),
        pos: 0,
        line: 1,
        col: 1,
        depth: 0,
        path,
        out: vec![],
    };
    let toks = lexer.run()?;
    Eval {
        toks,
        pos: 0,
        ns,
        path,
        built: 0,
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Namespace {
        let mut ns = Namespace::with_builtins();
        exec(src, Path::new("config"), &mut ns).unwrap_or_else(|e| panic!("{e}"));
        ns
    }

    fn val(src: &str, name: &str) -> Value {
        run(src).get(name).cloned().unwrap()
    }

    fn err(src: &str) -> String {
        let mut ns = Namespace::with_builtins();
        exec(src, Path::new("cfg"), &mut ns).unwrap_err().to_string()
    }

    #[test]
    fn strings_in_every_form() {
        let s = |src: &str| val(src, "X").as_str().unwrap().to_string();
        assert_eq!(s("X = 'a'"), "a");
        assert_eq!(s("X = \"a'b\""), "a'b");
        assert_eq!(s("X = 'a\\tb\\n'"), "a\tb\n");
        assert_eq!(s("X = r'a\\tb'"), "a\\tb");
        assert_eq!(s("X = R\"\\d+\""), "\\d+");
        assert_eq!(s("X = u'caf\\xe9'"), "café");
        assert_eq!(s("X = '\\u00e9\\101\\q'"), "éA\\q");
        assert_eq!(s("X = '''one\ntwo'''"), "one\ntwo");
        assert_eq!(s("X = \"\"\"say \"hi\" \"\"\""), "say \"hi\" ");
        assert_eq!(s("X = 'ab' \"cd\" 'ef'"), "abcdef");
        assert_eq!(s("X = ('ab'\n     'cd')"), "abcd");
        assert_eq!(s("X = 'a\\\nb'"), "ab");
        assert_eq!(s("X = 'x' + \\\n 'y'"), "xy");
    }

    #[test]
    fn numbers_and_constants() {
        assert_eq!(val("X = 3", "X"), Value::Int(3));
        assert_eq!(val("X = -3 + 1", "X"), Value::Int(-2));
        assert_eq!(val("X = 0o640", "X"), Value::Int(0o640));
        assert_eq!(val("X = 0x1F", "X"), Value::Int(31));
        assert_eq!(val("X = 1_000", "X"), Value::Int(1000));
        assert_eq!(val("X = 0.025", "X"), Value::Float(0.025));
        assert_eq!(val("X = 1e3", "X"), Value::Float(1000.0));
        assert_eq!(val("X = 0", "X"), Value::Int(0));
        for (alias, b) in [
            ("on", true),
            ("Yes", true),
            ("TRUE", true),
            ("Off", false),
            ("no", false),
            ("false", false),
        ] {
            assert_eq!(val(&format!("X = {alias}"), "X"), Value::Bool(b), "{alias}");
        }
        assert_eq!(val("X = None", "X"), Value::None);
    }

    #[test]
    fn containers() {
        assert_eq!(
            val("X = ['bcc', \"resent-bcc\",]", "X"),
            Value::List(vec![Value::Str("bcc".into()), Value::Str("resent-bcc".into())])
        );
        assert_eq!(val("X = ('a',)", "X"), Value::Tuple(vec![Value::Str("a".into())]));
        assert_eq!(val("X = ()", "X"), Value::Tuple(vec![]));
        assert_eq!(
            val("X = 'a', 'b'", "X"),
            Value::Tuple(vec![Value::Str("a".into()), Value::Str("b".into())])
        );
        let d = val(
            "X = {\n  'X-Fact' : 'Niagara',   # comment\n  \"Organization\": 'ACME',\n}",
            "X",
        );
        assert_eq!(
            d,
            Value::Dict(vec![
                (Value::Str("X-Fact".into()), Value::Str("Niagara".into())),
                (Value::Str("Organization".into()), Value::Str("ACME".into()))
            ])
        );
        assert_eq!(val("X = {}", "X"), Value::Dict(vec![]));
        assert_eq!(
            val("A = [1]\nX = A + [2]", "X"),
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(val("A = [1]\nA += [2, 3]\nX = A[-1]", "X"), Value::Int(3));
        assert_eq!(val("D = {'k': 'v'}\nX = D['k']", "X"), Value::Str("v".into()));
    }

    #[test]
    fn names_format_and_functions() {
        let ns = run(
            "USERNAME = 'jason'\nHOSTNAME = \"example.com\"\nCONFIRM_ADDRESS = '%s-confirm@%s' % (USERNAME, HOSTNAME)\n\
             N = 'n=%d%%' % 5\nS = str(3) + 'x'\nL = 'ABC'.lower()",
        );
        assert_eq!(
            ns.get("CONFIRM_ADDRESS"),
            Some(&Value::Str("jason-confirm@example.com".into()))
        );
        assert_eq!(ns.get("N"), Some(&Value::Str("n=5%".into())));
        assert_eq!(ns.get("S"), Some(&Value::Str("3x".into())));
        assert_eq!(ns.get("L"), Some(&Value::Str("abc".into())));
    }

    #[test]
    fn os_functions() {
        let mut ns = Namespace::with_builtins();
        ns.env.insert("HOME".into(), "/home/jason".into());
        exec(
            "import os\nimport os.path, sys\nfrom os import path\n\
             A = os.path.expanduser('~/.tmda/lists')\nB = os.path.join(A, 'white', 'list')\n\
             C = os.path.join('/x', '/abs')\nos.environ[\"TMDAIDHOST\"] = 'mail.example.com'\n\
             D = os.environ.get('TMDAIDHOST')\nE = os.environ.get('SURELY_UNSET_VAR_XYZ', 'dflt')\n\
             F = os.getenv('SURELY_UNSET_VAR_XYZ')\nG = os.environ['HOME']; H = 1",
            Path::new("c"),
            &mut ns,
        )
        .unwrap();
        let g = |n: &str| ns.get(n).cloned().unwrap();
        assert_eq!(g("A"), Value::Str("/home/jason/.tmda/lists".into()));
        assert_eq!(g("B"), Value::Str("/home/jason/.tmda/lists/white/list".into()));
        assert_eq!(g("C"), Value::Str("/abs".into()));
        assert_eq!(g("D"), Value::Str("mail.example.com".into()));
        assert_eq!(g("E"), Value::Str("dflt".into()));
        assert_eq!(g("F"), Value::None);
        assert_eq!(g("G"), Value::Str("/home/jason".into()));
        assert_eq!(g("H"), Value::Int(1));
        assert_eq!(ns.env.get("TMDAIDHOST").map(String::as_str), Some("mail.example.com"));
    }

    #[test]
    fn expanduser_other_user() {
        let ns = Namespace::default();
        assert_eq!(ns.expanduser("~root/x"), "/root/x");
        assert_eq!(ns.expanduser("~no_such_user_xyz/x"), "~no_such_user_xyz/x");
        assert_eq!(ns.expanduser("/abs/~x"), "/abs/~x");
    }

    #[test]
    fn origins_are_recorded() {
        let ns = run("\n# c\nA = 1\n\nB = [\n 2,\n]\n");
        assert_eq!(
            ns.vars["A"].1,
            Origin::File {
                path: "config".into(),
                line: 3
            }
        );
        assert_eq!(
            ns.vars["B"].1,
            Origin::File {
                path: "config".into(),
                line: 5
            }
        );
    }

    /// One test per kind of bad input: each names file:line:col and the problem.
    #[test]
    fn errors_name_file_line_and_column() {
        for (src, want) in [
            ("X = 'abc", "cfg:1:5: string is never closed"),
            ("X = [1, 2", "cfg:1:5: bracket is never closed"),
            ("X = 1)", "cfg:1:6: unmatched ')'"),
            ("A = 1\nX = UNKNOWN", "cfg:2:5: name 'UNKNOWN' is not defined"),
            ("if A: X = 1", "cfg:1:1: 'if' statements are not supported"),
            ("if A:\n  X = 1", "cfg:2:3: unexpected indentation"),
            ("A = 1\n  B = 2", "cfg:2:3: unexpected indentation"),
            ("X = os.system('rm -rf /')", "cfg:1:5: os.system is not supported"),
            ("X = open('/etc/passwd')", "cfg:1:5: calling open() is not supported"),
            ("X = 'a' + 1", "cfg:1:9: cannot add str and int"),
            ("X = 0600", "cfg:1:5: invalid number \"0600\""),
            ("X = f'{A}'", "cfg:1:5: f-strings are not supported"),
            ("X = 1 if A else 2", "cfg:1:7: 'if' expressions are not supported"),
            ("X == 1", "cfg:1:3: expected '=' after 'X', found '=='"),
            ("X = 1 2", "cfg:1:7: expected end of line, found number 2"),
            ("X = $", "cfg:1:5: unexpected character '$'"),
            ("X = '%q' % 1", "cfg:1:10: unsupported format %q"),
            (
                "X = os.environ['SURELY_UNSET_VAR_XYZ']",
                "cfg:1:15: environment variable SURELY_UNSET_VAR_XYZ is not set",
            ),
            ("print('hi')", "cfg:1:1: 'print' statements are not supported"),
            ("X = dict(a=1)", "cfg:1:10: keyword arguments are not supported"),
            ("X = 'a\nb'", "cfg:1:5: string is never closed on its line"),
        ] {
            let e = err(src);
            assert!(e.starts_with(want), "source {src:?}\n  got:  {e}\n  want: {want}");
        }
        // The data-only hint is given where code was attempted.
        assert!(err("import os\nos.system('x')").contains("never runs them"));
    }

    /// An error in an assignment to a secret says where, never what (the issue's
    /// `found string 'hunter2-secret'` reached a client's 451 and the log).
    #[test]
    fn errors_never_quote_a_secret() {
        for src in [
            "SMTPAUTH_PASSWORD 'hunter2-secret'",
            "SMTPAUTH_PASSWORD = hunter2-secret",
            "SMTPAUTH_PASSWORD = 'hunter2-secret' x",
            "MY_SECRET = 'hunter2-secret' + 1",
            "API_KEY = ['hunter2-secret'",
            "smtpauth_password = 'hunter2-secret' 5",
        ] {
            let e = err(src);
            assert!(!e.contains("hunter2"), "source {src:?} gave {e}");
            assert!(e.starts_with("cfg:1:"), "{e}");
        }
        // Other settings keep their helpful errors.
        assert!(err("X = 'a' 'b' 5").contains("found number 5"));
    }

    #[test]
    fn pathological_files_are_errors_not_crashes() {
        // Each of these overflowed the stack or exhausted memory before the limits.
        let deep = format!("X = {}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(
            err(&deep).starts_with("cfg:1:69: brackets nested more than 64 deep"),
            "{}",
            err(&deep)
        );
        let signs = format!("X = {}1", "-".repeat(200_000));
        assert_eq!(val(&signs, "X"), Value::Int(1));
        let repeat = "X = 'a' * 4096\nX = X * 4096\nX = X * 4096";
        assert!(
            err(repeat).starts_with("cfg:3:7: the values built here pass 64 MiB"),
            "{}",
            err(repeat)
        );
        let doubling = format!("X = 'a' * 4096{}", "\nX = X + X".repeat(40));
        assert!(err(&doubling).contains("the values built here pass 64 MiB"));
        let copies = format!("S = 'a' * 4096 * 1\nS = S * 256\nX = [{}]", "S, ".repeat(100));
        assert!(err(&copies).starts_with("cfg:3:"), "{}", err(&copies));
        assert!(err("X = -9223372036854775807 - 1\nY = -X").starts_with("cfg:2:5: number too large"));
        // Ordinary nesting and sizes are untouched.
        let nested = format!("X = {}1{}", "[".repeat(60), "]".repeat(60));
        run(&nested);
        run("S = 'x' * 4096\nT = S * 1000\nU = T + T");
    }
}
