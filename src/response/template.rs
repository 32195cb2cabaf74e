//! Auto-response templates: where TMDA looks for them (`Util.maketext`), our built-in
//! defaults, and `%(variable)s` substitution with the semantics of Python's `%` operator
//! on a dictionary, as TMDA renders them.
//!
//! Finding a file is the only I/O here ([`find`]); [`search_dirs`] computes TMDA's
//! candidate list from plain values and [`Template::render`] is pure.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The nine template names TMDA uses, each with our own default text.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "confirm_request.txt",
        include_str!("../../templates/confirm_request.txt"),
    ),
    ("confirm_accept.txt", include_str!("../../templates/confirm_accept.txt")),
    (
        "bounce_incoming.txt",
        include_str!("../../templates/bounce_incoming.txt"),
    ),
    (
        "bounce_fail_dated.txt",
        include_str!("../../templates/bounce_fail_dated.txt"),
    ),
    (
        "bounce_expired_dated.txt",
        include_str!("../../templates/bounce_expired_dated.txt"),
    ),
    (
        "bounce_fail_sender.txt",
        include_str!("../../templates/bounce_fail_sender.txt"),
    ),
    (
        "bounce_fail_keyword.txt",
        include_str!("../../templates/bounce_fail_keyword.txt"),
    ),
    (
        "bounce_invalid_confirmation.txt",
        include_str!("../../templates/bounce_invalid_confirmation.txt"),
    ),
    (
        "bounce_missing_pending.txt",
        include_str!("../../templates/bounce_missing_pending.txt"),
    ),
];

/// A template that could not be found, read or rendered. Every variant names the
/// template (its path, or `built-in NAME`) and, for rendering, the line.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("can't find template {name} (searched {searched})")]
    NotFound { name: String, searched: String },
    #[error("reading template {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("template {path} is not UTF-8 text (line {line})")]
    NotUtf8 { path: String, line: usize },
    #[error("template {origin}, line {line}: unknown variable %({name})s")]
    UnknownVariable { origin: String, line: usize, name: String },
    #[error("template {origin}, line {line}: a lone % (write %% for a percent sign)")]
    BarePercent { origin: String, line: usize },
    #[error("template {origin}, line {line}: %{spec} is not supported (use %(name)s, or %% for a percent sign)")]
    Unsupported { origin: String, line: usize, spec: String },
    #[error(
        "template {origin}, line {line}: %({name})d needs a whole number, and the value is {}",
        crate::exit::quote(value)
    )]
    NotANumber {
        origin: String,
        line: usize,
        name: String,
        value: String,
    },
}

/// Where TMDA would look for a relative template name, in order (spec §6.2), before
/// our built-in defaults. The caller passes values it read from the configuration and
/// the environment.
#[derive(Debug, Clone, Default)]
pub struct Search<'a> {
    /// `TMDA_TEMPLATE_DIR` from the environment (tmda-filter's `-t`).
    pub env_dir: Option<&'a Path>,
    /// `TEMPLATE_DIR`.
    pub template_dir: Option<&'a Path>,
    /// `TEMPLATE_DIR_MATCH_SENDER` and the raw envelope sender (`SENDER`).
    pub match_sender: Option<&'a str>,
    /// `TEMPLATE_DIR_MATCH_RECIPIENT` and `TMDA_RECIPIENT` (the recipient address).
    pub match_recipient: Option<&'a str>,
    /// `RECIPIENT_DELIMITER`.
    pub delimiter: &'a str,
    /// Site-wide directory searched last (TMDA: `/etc/tmda/`).
    pub site_dir: Option<&'a Path>,
}

/// A directory name taken from an address must stay inside `TEMPLATE_DIR`: TMDA joins
/// it unchecked, so a forged sender `../../tmp/x@y` made it read a template from /tmp.
fn safe_component(s: &str) -> bool {
    !s.contains('/') && !s.contains('\0') && s != "." && s != ".."
}

/// The domain and each parent domain: `a.b.c`, `b.c`, `c`.
fn domain_suffixes(domain: &str) -> Vec<String> {
    let parts: Vec<&str> = domain.split('.').collect();
    (0..parts.len()).map(|i| parts[i..].join(".")).collect()
}

/// TMDA's candidate directories, in its order: `TMDA_TEMPLATE_DIR`; per-sender
/// (`TEMPLATE_DIR/<sender>`, then its domain and parents); per-recipient
/// (`TEMPLATE_DIR/<recipient>`, the local part shortened one delimiter piece at a time,
/// then the domain and parents); `TEMPLATE_DIR`; the site directory.
pub fn search_dirs(s: &Search) -> Vec<PathBuf> {
    let mut dirs = vec![];
    if let Some(d) = s.env_dir
        && !d.as_os_str().is_empty()
    {
        dirs.push(d.to_path_buf());
    }
    if let Some(td) = s.template_dir {
        let mut names: Vec<String> = vec![];
        if let Some(sender) = s.match_sender {
            let sender = sender.to_lowercase();
            names.push(sender.clone());
            if let Some((_, domain)) = sender.split_once('@')
                && !domain.is_empty()
            {
                names.extend(domain_suffixes(domain));
            }
        }
        if let Some(recip) = s.match_recipient {
            let recip = recip.to_lowercase();
            names.push(recip.clone());
            let (local, domain) = recip.split_once('@').unwrap_or((&recip, ""));
            if !s.delimiter.is_empty() {
                let pieces: Vec<&str> = local.split(s.delimiter).collect();
                for i in (1..pieces.len()).rev() {
                    names.push(format!("{}@{domain}", pieces[..i].join(s.delimiter)));
                }
            }
            if !domain.is_empty() {
                names.extend(domain_suffixes(domain));
            }
        }
        for n in names {
            if n.is_empty() {
                dirs.push(td.to_path_buf());
            } else if safe_component(&n) {
                dirs.push(td.join(n));
            }
        }
        dirs.push(td.to_path_buf());
    }
    if let Some(d) = s.site_dir {
        dirs.push(d.to_path_buf());
    }
    dirs
}

/// A template's text, ready to render.
#[derive(Debug, Clone)]
pub struct Template {
    /// The file it came from, or `built-in NAME`; used in error messages.
    pub origin: String,
    /// The text with line endings translated as Python's text mode does (CRLF and CR
    /// become LF), which is how TMDA reads templates.
    pub text: String,
}

/// Python's universal newlines.
fn universal_newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

impl Template {
    /// A template from file content (UTF-8, as TMDA's Python 3 ports read it).
    pub fn from_bytes(origin: &str, bytes: &[u8]) -> Result<Template, TemplateError> {
        let text = std::str::from_utf8(bytes).map_err(|e| TemplateError::NotUtf8 {
            path: origin.to_string(),
            line: 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count(),
        })?;
        Ok(Template {
            origin: origin.to_string(),
            text: universal_newlines(text),
        })
    }

    /// Our built-in default for one of TMDA's nine names.
    pub fn builtin(name: &str) -> Option<Template> {
        BUILTIN.iter().find(|(n, _)| *n == name).map(|(n, t)| Template {
            origin: format!("built-in {n}"),
            text: universal_newlines(t),
        })
    }
}

/// Find `name` as TMDA does: a name starting with `/` (or `~`, expanded with `home`)
/// is that file; otherwise the first `DIR/name` that exists in `dirs`, then our
/// built-in default. A name that exists but cannot be read is an error, not a reason
/// to fall back, so a broken customisation is noticed.
pub fn find(name: &str, dirs: &[PathBuf], home: Option<&Path>) -> Result<Template, TemplateError> {
    let expanded: Cow<str> = match (name.strip_prefix('~'), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => {
            Cow::Owned(format!("{}{rest}", h.display()))
        }
        _ => Cow::Borrowed(name),
    };
    let mut candidates: Vec<PathBuf> = vec![];
    if expanded.starts_with('/') {
        candidates.push(PathBuf::from(expanded.as_ref()));
    } else {
        candidates.extend(dirs.iter().map(|d| d.join(expanded.as_ref())));
    }
    for path in &candidates {
        if std::fs::metadata(path).is_ok() {
            let bytes = std::fs::read(path).map_err(|source| TemplateError::Read {
                path: path.display().to_string(),
                source,
            })?;
            return Template::from_bytes(&path.display().to_string(), &bytes);
        }
    }
    if !expanded.starts_with('/')
        && let Some(t) = Template::builtin(&expanded)
    {
        return Ok(t);
    }
    Err(TemplateError::NotFound {
        name: name.to_string(),
        searched: if candidates.is_empty() {
            "nothing".into()
        } else {
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

/// The values `%(name)s` can refer to. TMDA offers every configuration variable (all
/// of its defaults and anything the user's config defines) plus the per-message
/// variables; the caller fills the map with those, each as the text Python's `str()`
/// gives (`None`, `True`, `50`, `['a', 'b']`). See the module documentation of
/// `response` for the list.
pub trait Vars {
    fn get(&self, name: &str) -> Option<Cow<'_, str>>;
}

impl Vars for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        BTreeMap::get(self, name).map(|s| Cow::Borrowed(s.as_str()))
    }
}

impl<F: Fn(&str) -> Option<String>> Vars for F {
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self(name).map(Cow::Owned)
    }
}

/// Parsed `%(name)<flags><width>.<precision><length><conversion>`.
struct Spec<'t> {
    name: &'t str,
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: usize,
    precision: Option<usize>,
    conv: char,
}

impl Template {
    /// Substitute the variables, as `template % vars` does in Python, with two
    /// deliberate differences: a conversion without a `(name)` (TMDA would print its
    /// whole variable dictionary, key included) is an error, and a value put into the
    /// header part (before the template's first empty line) cannot start a new header
    /// field: a line break in it not followed by white space gets a space, so it
    /// continues the field it is in.
    pub fn render(&self, vars: &dyn Vars) -> Result<String, TemplateError> {
        let t = &self.text;
        let mut out = String::with_capacity(t.len() + 256);
        // The header part ends at the template's first empty line.
        let header_end = if t.starts_with('\n') {
            0
        } else {
            t.find("\n\n").map(|i| i + 1).unwrap_or(t.len())
        };
        let mut rest = t.as_str();
        let mut pos = 0usize;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let at = pos + i;
            let line = 1 + t[..at].matches('\n').count();
            let after = &rest[i + 1..];
            let (consumed, piece) = self.conversion(after, line, vars)?;
            if at < header_end {
                out.push_str(&keep_in_field(&piece));
            } else {
                out.push_str(&piece);
            }
            let adv = i + 1 + consumed;
            rest = &rest[adv..];
            pos += adv;
        }
        out.push_str(rest);
        Ok(out)
    }

    /// One conversion after its `%`: (bytes consumed, text produced).
    fn conversion(&self, s: &str, line: usize, vars: &dyn Vars) -> Result<(usize, String), TemplateError> {
        let origin = || self.origin.clone();
        if s.starts_with('%') {
            return Ok((1, "%".into()));
        }
        if s.is_empty() || s.starts_with('\n') {
            return Err(TemplateError::BarePercent { origin: origin(), line });
        }
        let Some(inner) = s.strip_prefix('(') else {
            let spec: String = s.chars().take(1).collect();
            return Err(if spec.chars().all(|c| "sdirafeEgGxXoc".contains(c)) {
                TemplateError::Unsupported {
                    origin: origin(),
                    line,
                    spec,
                }
            } else {
                TemplateError::BarePercent { origin: origin(), line }
            });
        };
        // The key runs to the matching parenthesis (Python allows nested pairs).
        let mut depth = 1;
        let mut end = None;
        for (j, c) in inner.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            return Err(TemplateError::BarePercent { origin: origin(), line });
        };
        let name = &inner[..end];
        let mut k = 1 + end + 1; // "(" name ")"
        let bytes = s.as_bytes();
        let mut spec = Spec {
            name,
            left: false,
            zero: false,
            plus: false,
            space: false,
            width: 0,
            precision: None,
            conv: 's',
        };
        while let Some(&c) = bytes.get(k) {
            match c {
                b'-' => spec.left = true,
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'#' => {}
                _ => break,
            }
            k += 1;
        }
        let digits = |k: &mut usize| {
            let start = *k;
            while bytes.get(*k).is_some_and(|b| b.is_ascii_digit()) {
                *k += 1;
            }
            s[start..*k].parse::<usize>().ok()
        };
        spec.width = digits(&mut k).unwrap_or(0).min(1 << 16);
        if bytes.get(k) == Some(&b'.') {
            k += 1;
            spec.precision = Some(digits(&mut k).unwrap_or(0));
        }
        if matches!(bytes.get(k), Some(b'h' | b'l' | b'L')) {
            k += 1;
        }
        let Some(conv) = s[k..].chars().next() else {
            return Err(TemplateError::BarePercent { origin: origin(), line });
        };
        spec.conv = conv;
        let value = vars.get(spec.name).ok_or_else(|| TemplateError::UnknownVariable {
            origin: origin(),
            line,
            name: spec.name.to_string(),
        })?;
        let text = match conv {
            's' => {
                let v: String = match spec.precision {
                    Some(p) => value.chars().take(p).collect(),
                    None => value.into_owned(),
                };
                pad(v, spec.width, spec.left, ' ')
            }
            'd' | 'i' | 'u' => {
                let n: i128 = value.trim().parse().map_err(|_| TemplateError::NotANumber {
                    origin: origin(),
                    line,
                    name: spec.name.to_string(),
                    value: value.to_string(),
                })?;
                let sign = if n < 0 {
                    "-"
                } else if spec.plus {
                    "+"
                } else if spec.space {
                    " "
                } else {
                    ""
                };
                let mut digits = n.unsigned_abs().to_string();
                if let Some(p) = spec.precision
                    && digits.len() < p
                {
                    digits = format!("{}{digits}", "0".repeat(p - digits.len()));
                }
                if spec.zero && !spec.left && sign.len() + digits.len() < spec.width {
                    digits = format!("{}{digits}", "0".repeat(spec.width - sign.len() - digits.len()));
                }
                pad(format!("{sign}{digits}"), spec.width, spec.left, ' ')
            }
            '%' if spec.width == 0 => "%".into(),
            _ => {
                return Err(TemplateError::Unsupported {
                    origin: origin(),
                    line,
                    spec: format!("({}){}", spec.name, conv),
                });
            }
        };
        Ok((k + conv.len_utf8(), text))
    }
}

fn pad(v: String, width: usize, left: bool, fill: char) -> String {
    let n = v.chars().count();
    if n >= width {
        return v;
    }
    let fillers: String = std::iter::repeat_n(fill, width - n).collect();
    if left { v + &fillers } else { fillers + &v }
}

/// A value for the header part: every line break (CRLF, CR or LF, the breaks Python's
/// parser knows) that is not followed by a space or tab gets one, so the value can
/// neither end the header nor start a field of its own.
fn keep_in_field(v: &str) -> Cow<'_, str> {
    if !v.contains(['\r', '\n']) {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 8);
    let mut it = v.chars().peekable();
    while let Some(c) = it.next() {
        out.push(c);
        let brk = match c {
            '\r' if it.peek() == Some(&'\n') => false,
            '\r' | '\n' => true,
            _ => false,
        };
        if brk && !matches!(it.peek(), Some(' ' | '\t')) {
            out.push(' ');
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn t(text: &str) -> Template {
        Template {
            origin: "/tmp/t.txt".into(),
            text: text.into(),
        }
    }

    #[test]
    fn substitution_like_python_percent() {
        let v = vars(&[("a", "x"), ("n", "5"), ("neg", "-7")]);
        for (tpl, want) in [
            ("%(a)s|", "x|"),
            ("%(a)10s|", "         x|"),
            ("%(a)-4s|", "x   |"),
            ("%(a).0s|", "|"),
            ("%(n)05d", "00005"),
            ("%(neg)05d", "-0007"),
            ("%(n)+d", "+5"),
            ("%(a)s%%", "x%"),
            ("%(a)  s", "x"),
            ("%(a)ls", "x"),
            ("100%% sure", "100% sure"),
        ] {
            assert_eq!(t(tpl).render(&v).unwrap(), want, "{tpl}");
        }
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let v = vars(&[("a", "x")]);
        let e = t("Subject: hi\n\nline two %(b)s\n").render(&v).unwrap_err();
        assert!(
            matches!(&e, TemplateError::UnknownVariable { line: 3, name, .. } if name == "b"),
            "{e}"
        );
        assert_eq!(e.to_string(), "template /tmp/t.txt, line 3: unknown variable %(b)s");
        for (tpl, line) in [
            ("a\n100%\n", 2),
            ("100%", 1),
            ("%(a)", 1),
            ("% (a)s", 1),
            ("%(a(b)s", 1),
        ] {
            let e = t(tpl).render(&v).unwrap_err();
            assert!(
                matches!(e, TemplateError::BarePercent { line: l, .. } if l == line),
                "{tpl}: {e}"
            );
        }
        // An unnamed conversion would print TMDA's whole variable dictionary (its key too).
        assert!(matches!(t("%s").render(&v), Err(TemplateError::Unsupported { .. })));
        assert!(matches!(t("%(a)r").render(&v), Err(TemplateError::Unsupported { .. })));
        assert!(matches!(t("%(a)d").render(&v), Err(TemplateError::NotANumber { .. })));
        assert!(matches!(
            t("%()s").render(&v),
            Err(TemplateError::UnknownVariable { .. })
        ));
    }

    #[test]
    fn header_values_cannot_start_fields() {
        let v = vars(&[("s", "hi\nBcc: victim@example.org\r\n\r\nbody"), ("f", "a\n b")]);
        let out = t("Subject: %(s)s\nX: %(f)s\n\n%(s)s\n").render(&v).unwrap();
        assert_eq!(
            out,
            "Subject: hi\n Bcc: victim@example.org\r\n \r\n body\nX: a\n b\n\nhi\nBcc: victim@example.org\r\n\r\nbody\n"
        );
    }

    #[test]
    fn template_files_read_as_python_text_mode() {
        let tpl = Template::from_bytes("/x", b"A: 1\r\nB: 2\r\rbody\r\n").unwrap();
        assert_eq!(tpl.text, "A: 1\nB: 2\n\nbody\n");
        let e = Template::from_bytes("/x", b"A: 1\n\xff\n").unwrap_err();
        assert!(matches!(e, TemplateError::NotUtf8 { line: 2, .. }));
    }

    #[test]
    fn builtins_cover_tmdas_names_and_render() {
        let v = vars(&[
            ("FULLNAME", "Test User"),
            ("recipient_address", "me@example.com"),
            ("confirm_accept_address", "me-confirm-1.2.abcdef@example.com"),
            ("confirm_append_address", "you@example.org"),
            ("pending_lifetime", "14 days"),
        ]);
        // Every template TMDA ships (its templates/ directory) has a built-in of ours.
        let mut names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "bounce_expired_dated.txt",
                "bounce_fail_dated.txt",
                "bounce_fail_keyword.txt",
                "bounce_fail_sender.txt",
                "bounce_incoming.txt",
                "bounce_invalid_confirmation.txt",
                "bounce_missing_pending.txt",
                "confirm_accept.txt",
                "confirm_request.txt",
            ]
        );
        for (name, _) in BUILTIN {
            let out = Template::builtin(name).unwrap().render(&v).unwrap();
            assert!(
                out.starts_with("From.US-ASCII: \"Test User\" <me@example.com>\n"),
                "{name}"
            );
            assert!(out.contains("\nBodyCharset: US-ASCII\n\n"), "{name}");
            assert!(out.is_ascii());
        }
    }

    #[test]
    fn search_order_is_tmdas() {
        let s = Search {
            env_dir: Some(Path::new("/env")),
            template_dir: Some(Path::new("/t")),
            match_sender: Some("Bob@Mail.Example.ORG"),
            match_recipient: Some("me-lists-x@example.com"),
            delimiter: "-",
            site_dir: Some(Path::new("/etc/tmda")),
        };
        let d: Vec<String> = search_dirs(&s).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            d,
            [
                "/env",
                "/t/bob@mail.example.org",
                "/t/mail.example.org",
                "/t/example.org",
                "/t/org",
                "/t/me-lists-x@example.com",
                "/t/me-lists@example.com",
                "/t/me@example.com",
                "/t/example.com",
                "/t/com",
                "/t",
                "/etc/tmda"
            ]
        );
        // A forged sender cannot lead the search out of TEMPLATE_DIR.
        let s = Search {
            template_dir: Some(Path::new("/t")),
            match_sender: Some("../../tmp/evil@x"),
            delimiter: "-",
            ..Search::default()
        };
        let d = search_dirs(&s);
        assert!(d.iter().all(|p| !p.display().to_string().contains("..")), "{d:?}");
    }

    #[test]
    fn find_prefers_files_then_builtins() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("confirm_request.txt"), "X: mine\n\nbody\n").unwrap();
        let dirs = vec![dir.path().join("missing"), a.clone()];
        let t = find("confirm_request.txt", &dirs, None).unwrap();
        assert_eq!(t.text, "X: mine\n\nbody\n");
        assert!(t.origin.ends_with("a/confirm_request.txt"));
        let t = find("bounce_incoming.txt", &dirs, None).unwrap();
        assert_eq!(t.origin, "built-in bounce_incoming.txt");
        let e = find("nosuch.txt", &dirs, None).unwrap_err();
        assert!(
            e.to_string().starts_with("can't find template nosuch.txt (searched "),
            "{e}"
        );
        std::fs::write(dir.path().join("abs.txt"), "A: b\n\n").unwrap();
        let t = find("~/abs.txt", &[], Some(dir.path())).unwrap();
        assert_eq!(t.text, "A: b\n\n");
        // A candidate that exists but cannot be read is an error, not a fallback.
        std::fs::create_dir(dir.path().join("b")).unwrap();
        std::fs::create_dir(dir.path().join("b").join("confirm_accept.txt")).unwrap();
        assert!(matches!(
            find("confirm_accept.txt", &[dir.path().join("b")], None),
            Err(TemplateError::Read { .. })
        ));
    }
}
