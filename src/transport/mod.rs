//! Handing a finished copy to the real MTA.
//!
//! A [`Transport`] takes one copy at a time: envelope sender, one recipient, the
//! rewritten header block, and the spooled message whose body it streams. Errors say
//! whether retrying later can help ([`DeliveryError::is_transient`]), which decides
//! between exit 75 / SMTP 451 (the client keeps the message) and a permanent failure.

pub mod relay;
pub mod sendmail;
pub mod smtp;
pub mod stub;

use crate::error::Sysexit;
use crate::message::Message;

pub use sendmail::Sendmail;
pub use smtp::Smtp;
pub use stub::Stub;

/// One copy of a message for one recipient.
pub struct Copy<'a> {
    /// Envelope sender; empty for the null sender `<>`.
    pub sender: &'a str,
    pub recipient: &'a str,
    /// The rewritten header block, including the blank line that ends it.
    pub header: &'a [u8],
    /// The original message, whose body follows the header.
    pub message: &'a Message,
    /// SMTPUTF8 is needed (RFC 6531): a relay must offer it.
    pub utf8: bool,
}

/// Take out of `pool` the idle connections unused since before `max_idle`
/// (`since` says when each was put back), leaving the rest.
fn take_stale<T>(
    pool: &std::sync::Mutex<Vec<T>>,
    since: impl Fn(&T) -> std::time::Instant,
    max_idle: std::time::Duration,
) -> Vec<T> {
    let Ok(mut pool) = pool.lock() else { return vec![] };
    let (stale, fresh) = std::mem::take(&mut *pool)
        .into_iter()
        .partition(|i| since(i).elapsed() > max_idle);
    *pool = fresh;
    stale
}

/// A plain relay on 127.0.0.1 (unit tests of the relay clients).
#[cfg(test)]
fn test_settings(port: u16) -> crate::config::SmtpSettings {
    crate::config::SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        tls: crate::config::SmtpTls::None,
        verify: true,
        cafile: None,
        keyfile: None,
        certfile: None,
        max_sessions_per_connection: 0,
    }
}

pub trait Transport {
    /// Deliver one copy; `Ok` only once the MTA has accepted it.
    fn send(&mut self, copy: &Copy<'_>) -> Result<(), DeliveryError>;

    /// Finish (e.g. QUIT an SMTP connection). Errors here lose nothing.
    fn close(&mut self) {}
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{program}: {reason}{}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Program {
        program: String,
        reason: String,
        transient: bool,
        code: Option<i32>,
        stderr: String,
    },
    #[error("SMTP relay {server}: {message}")]
    Smtp {
        server: String,
        message: String,
        transient: bool,
        code: Option<u16>,
    },
    #[error("{0}")]
    Refused(String),
}

impl DeliveryError {
    /// Can a later retry succeed?
    pub fn is_transient(&self) -> bool {
        match self {
            DeliveryError::Program { transient, .. } | DeliveryError::Smtp { transient, .. } => *transient,
            DeliveryError::Refused(_) => false,
        }
    }

    /// The SMTP reply code the upstream gave, if any.
    pub fn smtp_code(&self) -> Option<u16> {
        match self {
            DeliveryError::Smtp { code, .. } => *code,
            _ => None,
        }
    }

    pub fn exit_code(&self) -> Sysexit {
        if self.is_transient() {
            return Sysexit::TempFail;
        }
        match self {
            DeliveryError::Program { code: Some(c), .. } => match *c {
                64 => Sysexit::Usage,
                65 => Sysexit::DataErr,
                66 => Sysexit::NoInput,
                67 | 68 => Sysexit::NoUser,
                70 => Sysexit::Software,
                73 => Sysexit::CantCreat,
                74 => Sysexit::IoErr,
                77 => Sysexit::NoPerm,
                78 => Sysexit::Config,
                _ => Sysexit::Unavailable,
            },
            DeliveryError::Smtp {
                code: Some(550 | 551 | 553),
                ..
            } => Sysexit::NoUser,
            DeliveryError::Refused(_) => Sysexit::DataErr,
            _ => Sysexit::Unavailable,
        }
    }
}
