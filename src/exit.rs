//! Exit statuses and the words for failures, shared by every layer.
//!
//! sysexits(3) codes are how TMDA and MTAs tell a temporary failure (75, try again) from a
//! permanent one; every module's own error maps onto them. The aggregate [`crate::error::Error`]
//! sits at the top for the command-line shells; this module is at the bottom, so the modules
//! below the shells can name codes and quote values without importing upward.

/// sysexits(3) codes, as MTAs and TMDA understand them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Sysexit {
    Ok = 0,
    Usage = 64,
    DataErr = 65,
    NoInput = 66,
    NoUser = 67,
    Unavailable = 69,
    Software = 70,
    CantCreat = 73,
    IoErr = 74,
    TempFail = 75,
    NoPerm = 77,
    Config = 78,
}

/// The exit status for an I/O failure: a missing file is missing input, a refused one a
/// permission problem, an interrupted one worth retrying.
pub fn io_exit_code(e: &std::io::Error) -> Sysexit {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => Sysexit::NoInput,
        PermissionDenied => Sysexit::NoPerm,
        Interrupted | WouldBlock | TimedOut => Sysexit::TempFail,
        _ => Sysexit::IoErr,
    }
}

/// An I/O error in words for people: "no such file or directory", without Rust's
/// "(os error 2)" and with a lower-case start, as it follows "path: " in a message.
pub fn describe_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        // Only a capital followed by a small letter: "TLS ..." stays as it is.
        Some(c) if c.is_uppercase() && chars.clone().next().is_some_and(char::is_lowercase) => {
            c.to_lowercase().chain(chars).collect()
        }
        _ => text,
    }
}

/// `s` as a shell word, quoted only when it needs to be (for commands that fix things).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%=,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A value in a message, as the user wrote it: in double quotes, with control
/// characters (which could forge log lines or terminal output) escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text the sender wrote (a header value, an envelope address), fit for a terminal or a
/// log: every control character (C0, DEL, C1) but newline and tab written as `?`. Raw,
/// an escape sequence acts on the terminal that shows it, and a NUL makes grep call the
/// file binary; newline and tab are the folds TMDA shows.
pub fn harmless(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !s.contains(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.chars().map(|c| if bad(c) { '?' } else { c }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmless_keeps_folds_and_marks_the_rest() {
        assert_eq!(harmless("plain, caf\u{e9}\n\tfold"), "plain, caf\u{e9}\n\tfold");
        assert_eq!(harmless("a\0b\x1b[2J\x7f\u{9b}\r"), "a?b?[2J???");
    }

    #[test]
    fn io_errors_read_as_words() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(describe_io(&e), "no such file or directory");
        let e = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(describe_io(&e), "permission denied");
        let e = std::io::Error::other("TLS handshake failed");
        assert_eq!(describe_io(&e), "TLS handshake failed");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/etc/tofmipd"), "/etc/tofmipd");
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(quote("smpt"), "\"smpt\"");
        assert_eq!(quote("a\nb\"c"), "\"a\\nb\\\"c\"");
    }

    /// Debug output (`Some("smpt")`, `Transient(...)`) is for programmers: every
    /// `{..:?}` outside test code and hand-written Debug impls is an error here, so
    /// messages and log lines name values as people wrote them (see [`quote`]).
    #[test]
    fn no_debug_formatting_reaches_people() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = vec![];
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 20, "the sources were not found");
        let mut found = vec![];
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let mut in_debug_impl = false;
            for (i, line) in code.lines().enumerate() {
                if line.starts_with("impl") || line.starts_with("fn ") || line.starts_with("pub fn ") {
                    in_debug_impl = line.starts_with("impl") && line.contains("Debug for");
                }
                let debug_spec =
                    line.match_indices(":?}").any(|(at, _)| line[..at].contains('{')) || line.contains(":#?}");
                if debug_spec && !in_debug_impl && !line.trim_start().starts_with("//") {
                    found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
        assert!(found.is_empty(), "Debug formatting in messages:\n{}", found.join("\n"));
    }
}
