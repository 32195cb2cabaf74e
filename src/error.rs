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
    #[error("{0}")]
    Usage(String),
    #[error("{}: {source}", path.display())]
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
            Error::Config(_) => Sysexit::Config,
            Error::Key(e) => e.exit_code(),
            Error::Address(_) => Sysexit::DataErr,
            Error::Inject(e) => e.exit_code(),
            Error::Filter(_) => Sysexit::Config,
            Error::Message(crate::message::MessageError::Io(e)) => io_exit_code(e),
            Error::Message(_) => Sysexit::DataErr,
            Error::Usage(_) => Sysexit::Usage,
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
