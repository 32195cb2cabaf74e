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

use crate::exit::Sysexit;
use crate::message::Message;

pub use sendmail::Sendmail;
pub use smtp::Smtp;
pub use stub::Stub;

// Relay policy shared by the two SMTP clients (the one-copy `smtp` and the pipelined
// `relay`): both keep idle connections in a pool by the same rules.
/// Idle connections kept at most. Too few and a busy server opens and QUITs a relay
/// connection per message (at 50 clients a pool of 16 cost a third of the throughput);
/// idle ones are closed after `POOL_MAX_IDLE` anyway.
pub(crate) const POOL_MAX: usize = 64;
/// An idle connection older than this is checked with NOOP before it is used again.
pub(crate) const POOL_CHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(2);
/// ... and one older than this is closed instead.
pub(crate) const POOL_MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a copy that needs SMTPUTF8 was not sent.
pub(crate) const NO_SMTPUTF8: &str = "the message needs SMTPUTF8 (RFC 6531) but the relay does not offer it";

/// The transport MAIL_TRANSPORT asks for.
pub fn for_config(config: &crate::config::Config) -> Result<Box<dyn Transport>, crate::config::ConfigError> {
    use crate::config::MailTransport;
    Ok(match config.mail_transport {
        MailTransport::Sendmail => {
            let program = config
                .sendmail_program
                .clone()
                .ok_or_else(|| crate::config::ConfigError::Setting {
                    name: "SENDMAIL_PROGRAM".into(),
                    origin: crate::config::Origin::Default,
                    message: "not set, and neither /usr/sbin/sendmail nor /usr/lib/sendmail exists".into(),
                })?;
            Box::new(Sendmail {
                program,
                null_sender_empty: matches!(config.mail_transfer_agent.as_str(), "postfix" | "qmail"),
                env: config
                    .env_assignments()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
        }
        MailTransport::Smtp => Box::new(Smtp::new(config.smtp.clone(), crate::config::fqdn())),
    })
}

/// What became of one recipient's copy.
#[derive(Debug, Clone)]
pub struct Fate {
    pub recipient: String,
    /// `None`: the MTA accepted the copy.
    pub failure: Option<DeliveryError>,
}

impl Fate {
    /// The transport-neutral record (for a delivery status notification and reports).
    pub fn report(&self) -> crate::dsn::RecipientFate {
        crate::dsn::RecipientFate {
            recipient: self.recipient.clone(),
            failure: self.failure.as_ref().map(|e| crate::dsn::Failure {
                status: e.status(),
                diagnostic: e.diagnostic(),
            }),
        }
    }
}

/// Every recipient's fate when some copy failed.
#[derive(Debug, Clone)]
pub struct Fates(pub Vec<Fate>);

impl Fates {
    pub fn report(&self) -> Vec<crate::dsn::RecipientFate> {
        self.0.iter().map(Fate::report).collect()
    }

    pub fn failed(&self) -> impl Iterator<Item = (&str, &DeliveryError)> {
        self.0
            .iter()
            .filter_map(|f| f.failure.as_ref().map(|e| (f.recipient.as_str(), e)))
    }

    pub fn delivered(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|f| f.failure.is_none())
            .map(|f| f.recipient.as_str())
    }

    /// The worst exit status: a permanent failure's (the first one's) over a temporary one.
    pub fn exit_code(&self) -> Sysexit {
        let codes: Vec<Sysexit> = self.failed().map(|(_, e)| e.exit_code()).collect();
        codes
            .iter()
            .copied()
            .find(|c| *c != Sysexit::TempFail)
            .or(codes.first().copied())
            .unwrap_or(Sysexit::Ok)
    }
}

impl std::fmt::Display for Fates {
    /// One line: who got it, and who did not and why.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let delivered: Vec<&str> = self.delivered().collect();
        let mut sep = "";
        if !delivered.is_empty() {
            write!(f, "delivered to {}", delivered.join(", "))?;
            sep = "; ";
        }
        for (rcpt, e) in self.failed() {
            write!(f, "{sep}not delivered to {rcpt}: {e}")?;
            sep = "; ";
        }
        Ok(())
    }
}

/// The envelope of one copy in a [`Batch`].
pub struct Envelope<'a> {
    /// Envelope sender; empty for the null sender.
    pub sender: &'a str,
    pub recipient: &'a str,
    /// The copy needs SMTPUTF8.
    pub utf8: bool,
}

/// A message's copies for the pipelined relay, each header rendered only when its copy
/// is sent (so only one copy's header is held at a time).
pub trait Batch {
    type Error;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn envelope(&self, i: usize) -> Envelope<'_>;
    fn render(&self, i: usize, msg: &Message) -> Result<Vec<u8>, Self::Error>;
}

/// Why a batch was not (all) sent.
#[derive(Debug)]
pub enum SendError<E> {
    /// The spooled message could not be read.
    Spool(std::io::Error),
    /// A copy's header could not be rendered (nothing more was sent).
    Render(E),
    /// Some copies failed: every recipient's fate.
    Delivery(Fates),
}

impl<E: std::fmt::Display> std::fmt::Display for SendError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Spool(e) => write!(f, "message spool: {}", crate::exit::describe_io(e)),
            SendError::Render(e) => e.fmt(f),
            SendError::Delivery(fates) => fates.fmt(f),
        }
    }
}

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

/// Where `tmda sendmail -v` has the conversation with the MTA shown (set once).
static TRACE: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Show every command sent to the MTA and every reply (AUTH data redacted) through
/// `show`, as `msmtp -v` does: `--> ` before what we send, `<-- ` before what we get.
pub fn set_trace(show: fn(&str)) {
    let _ = TRACE.set(show);
}

/// Whether the conversation is shown (callers skip formatting when it is not).
pub(crate) fn tracing() -> bool {
    TRACE.get().is_some()
}

pub(crate) fn trace(line: std::fmt::Arguments<'_>) {
    if let Some(show) = TRACE.get() {
        show(&line.to_string());
    }
}

/// A command line as it may be shown: AUTH's data never is.
pub(crate) fn redacted(line: &str) -> String {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(a), Some(m), Some(_)) if a.eq_ignore_ascii_case("AUTH") => format!("{a} {m} <redacted>"),
        _ => line.to_string(),
    }
}

pub trait Transport {
    /// Deliver one copy; `Ok` only once the MTA has accepted it.
    fn send(&mut self, copy: &Copy<'_>) -> Result<(), DeliveryError>;

    /// Finish (e.g. QUIT an SMTP connection). Errors here lose nothing.
    fn close(&mut self) {}
}

#[derive(Debug, Clone, thiserror::Error)]
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

    /// The RFC 3463 status code for a delivery status notification: the relay's own
    /// enhanced code when its reply has one, else one derived from the failure.
    pub fn status(&self) -> String {
        // The class says whether the copy may pass later, as we decided it (a refused
        // login is deferred whatever the relay's code).
        let class = if self.is_transient() { 4 } else { 5 };
        match self {
            DeliveryError::Smtp {
                code: Some(c), message, ..
            } => {
                // The relay's enhanced code (RFC 2034), wherever our words put its reply.
                let enhanced = message.split_whitespace().find_map(|e| {
                    let parts: Vec<&str> = e.split('.').collect();
                    let ok = parts.len() == 3
                        && parts[0] == (c / 100).to_string()
                        && parts
                            .iter()
                            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
                    ok.then(|| format!("{class}.{}.{}", parts[1], parts[2]))
                });
                enhanced.unwrap_or_else(|| format!("{class}.0.0"))
            }
            DeliveryError::Program {
                code: Some(67),
                transient: false,
                ..
            } => "5.1.1".into(),
            DeliveryError::Program {
                code: Some(68),
                transient: false,
                ..
            } => "5.1.2".into(),
            DeliveryError::Refused(_) => "5.1.3".into(),
            _ => format!("{class}.0.0"),
        }
    }

    /// RFC 3464's Diagnostic-Code: `smtp; REPLY` when the relay answered, else our own
    /// words (`x-unix;` for a program, `x-tmda;` for the rest).
    pub fn diagnostic(&self) -> String {
        let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        match self {
            DeliveryError::Smtp {
                code: Some(c), message, ..
            } if smtp_reply(*c, message).is_some() => {
                format!("smtp; {}", one_line(&smtp_reply(*c, message).unwrap_or_default()))
            }
            DeliveryError::Program { .. } => format!("x-unix; {}", one_line(&self.to_string())),
            _ => format!("x-tmda; {}", one_line(&self.to_string())),
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

/// The relay's reply as it said it (`550 5.1.1 text`) when our message is just that
/// reply: the relay client keeps it as is; lettre's error reads `permanent error
/// (550): text`. `None` when the message has words of ours (a refused login, say).
fn smtp_reply(code: u16, message: &str) -> Option<String> {
    let code_str = code.to_string();
    if message.starts_with(&format!("{code_str} ")) || message == code_str {
        return Some(message.to_string());
    }
    let rest = message
        .strip_prefix("permanent error ")
        .or_else(|| message.strip_prefix("transient error "))?;
    let rest = rest.strip_prefix(&format!("({code_str}): "))?;
    Some(format!("{code_str} {rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(code: u16, message: &str) -> DeliveryError {
        DeliveryError::Smtp {
            server: "relay:25".into(),
            message: message.into(),
            transient: code < 500,
            code: Some(code),
        }
    }

    #[test]
    fn status_and_diagnostic_for_a_dsn() {
        let e = smtp(550, "550 5.1.1 <b@x>: Recipient address rejected");
        assert_eq!(e.status(), "5.1.1");
        assert_eq!(e.diagnostic(), "smtp; 550 5.1.1 <b@x>: Recipient address rejected");
        // lettre's wording.
        let e = smtp(452, "transient error (452): 4.2.2 mailbox full");
        assert_eq!(
            (e.status(), e.diagnostic()),
            ("4.2.2".into(), "smtp; 452 4.2.2 mailbox full".into())
        );
        // No enhanced code, or one of the wrong class.
        assert_eq!(smtp(554, "554 no thanks").status(), "5.0.0");
        assert_eq!(smtp(554, "554 4.1.1 confused").status(), "5.0.0");
        // A refused login is deferred: a 4.x.x status, the relay's reply as it said it.
        let e = DeliveryError::Smtp {
            server: "relay:25".into(),
            message: "the relay refused SMTPAUTH_USERNAME/SMTPAUTH_PASSWORD: 535 5.7.8 bad credentials".into(),
            transient: true,
            code: Some(535),
        };
        assert_eq!(
            (e.status(), e.diagnostic()),
            (
                "4.7.8".into(),
                "x-tmda; SMTP relay relay:25: the relay refused SMTPAUTH_USERNAME/SMTPAUTH_PASSWORD: 535 5.7.8 bad credentials".into()
            )
        );
        let e = DeliveryError::Program {
            program: "/usr/sbin/sendmail".into(),
            reason: "exited 67".into(),
            transient: false,
            code: Some(67),
            stderr: "no such\nuser".into(),
        };
        assert_eq!(e.status(), "5.1.1");
        assert!(
            e.diagnostic().starts_with("x-unix; /usr/sbin/sendmail: exited 67"),
            "{}",
            e.diagnostic()
        );
        let e = DeliveryError::Smtp {
            server: "relay:25".into(),
            message: "connection refused".into(),
            transient: true,
            code: None,
        };
        assert_eq!(
            (e.status(), e.diagnostic()),
            ("4.0.0".into(), "x-tmda; SMTP relay relay:25: connection refused".into())
        );
    }
}
