//! The crate-wide error and its mapping to sysexits(3) codes.
//!
//! Each subsystem has its own error type (`config::ConfigError`, `key::KeyError`, ...);
//! `Error` wraps them so the CLI can print one message and pick one exit code. The
//! mapping in [`Error::exit_code`] is an exhaustive `match`: adding a variant forces a
//! decision about how it is reported to the MTA or the calling script.

use std::path::PathBuf;

pub use crate::exit::{Sysexit, describe_io, io_exit_code, quote, shell_quote};

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

impl From<crate::clock::BadNow> for Error {
    /// A mistyped `TMDA_NOW` is a usage error: the command was not run as meant.
    fn from(e: crate::clock::BadNow) -> Error {
        Error::Usage(e.to_string())
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
