//! The crate-wide error and its mapping to sysexits(3) codes.
//!
//! Each subsystem has its own error type (`config::ConfigError`, `key::KeyError`, ...);
//! `Error` wraps them so the CLI can print one message and pick one exit code. The
//! mapping in [`Error::exit_code`] is an exhaustive `match`: adding a variant forces a
//! decision about how it is reported to the MTA or the calling script.

use std::path::PathBuf;

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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Key(#[from] crate::key::KeyError),
    #[error(transparent)]
    Address(#[from] crate::address::AddressError),
    #[error(transparent)]
    Inject(Box<crate::inject::InjectError>),
    #[error(transparent)]
    Filter(#[from] crate::filter::ParseError),
    #[error(transparent)]
    Message(#[from] crate::message::MessageError),
    #[error(transparent)]
    AuthFile(#[from] crate::auth::file::AuthFileError),
    #[error("{0}")]
    Usage(String),
    /// An input file the command needs is not there (66).
    #[error("{0}")]
    NoInput(String),
    /// A file is not safe to use, or may not be used (77).
    #[error("{0}")]
    NoPerm(String),
    /// A program or service the command needs is not there (69).
    #[error("{0}")]
    Unavailable(String),
    /// The input given is not acceptable (65).
    #[error("{0}")]
    Data(String),
    /// A user the command was told about is not there (67).
    #[error("{0}")]
    NoUser(String),
    /// Something that would be replaced exists (73).
    #[error("{0}")]
    Exists(String),
    #[error("{}: {}", path.display(), describe_io(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::inject::InjectError> for Error {
    fn from(e: crate::inject::InjectError) -> Error {
        Error::Inject(Box::new(e))
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The exit status a command-line tool reports for this error.
    pub fn exit_code(&self) -> Sysexit {
        match self {
            // A file named with -c or $TMDARC that is not there is a missing input
            // (66), one that cannot be read a permission problem (77).
            Error::Config(crate::config::ConfigError::Io { source, .. }) => io_exit_code(source),
            Error::Config(_) => Sysexit::Config,
            Error::Key(e) => e.exit_code(),
            Error::Address(_) => Sysexit::DataErr,
            Error::Inject(e) => e.exit_code(),
            Error::Filter(_) => Sysexit::Config,
            Error::Message(crate::message::MessageError::Io(e)) => io_exit_code(e),
            Error::Message(_) => Sysexit::DataErr,
            Error::AuthFile(e) => e.exit_code(),
            Error::Usage(_) => Sysexit::Usage,
            Error::NoInput(_) => Sysexit::NoInput,
            Error::NoPerm(_) => Sysexit::NoPerm,
            Error::Unavailable(_) => Sysexit::Unavailable,
            Error::Data(_) => Sysexit::DataErr,
            Error::NoUser(_) => Sysexit::NoUser,
            Error::Exists(_) => Sysexit::CantCreat,
            Error::Io { source, .. } => io_exit_code(source),
        }
    }

    /// True when retrying later may succeed (an MTA should defer, not bounce).
    pub fn is_transient(&self) -> bool {
        self.exit_code() == Sysexit::TempFail
    }
}

pub(crate) fn io_exit_code(e: &std::io::Error) -> Sysexit {
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

#[cfg(test)]
mod tests {
    use super::*;

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
