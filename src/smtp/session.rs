//! One SMTP session of `tmda ofmipd`, as a state machine with no I/O.
//!
//! The driver calls [`Session::handle`] with each [`Input`] and carries out the
//! [`Output`]. Authentication and delivery are requests to the driver
//! ([`Output::Authenticate`], [`Output::Deliver`]); their results come back as input.
//! Per-verb logic is a `check_*` (preconditions, returning the refusal) and a `do_*`.
//!
//! Kept from TMDA's tmda-ofmipd for its old clients: AUTH right after the greeting,
//! MAIL (RCPT, DATA) before AUTH answered 530 whatever its arguments, STARTTLS without
//! TLS configured answered 502. Fixed on purpose: HELO exists; MAIL, RCPT and
//! DATA all need AUTH and a greeting; `MAIL FROM:` with nothing after the colon is a
//! syntax error (only `<>` is the null sender); QUIT ends an AUTH exchange; a lone "." right after DATA is an
//! empty message; a failed relay is answered (451/554) instead of dropping the
//! connection; the Received field is built per session, never in global state; the
//! null sender is "", not the text "<>"; invalid base64 is refused with 501.

use base64::Engine as _;

use super::command::Command;
use super::data::Problem;
use super::reply::{self, Reply};

pub use crate::auth::{Attempt, AuthOutcome, Secret};

/// How TLS is offered on this connection (`--tls=localoptional` is resolved by the
/// driver into `Optional` or `Required` from the client's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS at all.
    None,
    /// STARTTLS offered; AUTH allowed before it (`--tls=optional`).
    Optional,
    /// STARTTLS offered and required before anything but EHLO/NOOP/QUIT (`--tls=on`, RFC 3207).
    Required,
    /// The connection is TLS from the start (`--ssl`).
    Implicit,
}

/// What this session allows.
#[derive(Debug, Clone)]
pub struct Policy {
    pub hostname: String,
    pub tls: TlsMode,
    /// AUTH only once TLS is active (`--tls-auth-only`).
    pub tls_auth_only: bool,
    /// Offer CRAM-MD5 (every auth source can verify it).
    pub cram_md5: bool,
    pub max_size: u64,
    pub max_recipients: usize,
    /// Failed AUTH attempts before the connection is closed.
    pub max_auth_failures: u32,
}

/// The client, as the driver knows it.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub ip: String,
    pub name: Option<String>,
}

/// The verdict on a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Accepted,
    /// The throttle script refused.
    Throttled,
    Transient(String),
    Permanent(String),
    /// The user's configuration is broken: the client is told to retry and to see the
    /// server's log; the detail (which may name settings) goes to the log only.
    ConfigError(String),
    /// `--restrict-sender`: the message claims an address that is not the user's (553).
    SenderRefused(String),
    /// Every copy was tried and some failed: each recipient's fate, and how the sender
    /// was told (the answer follows [`crate::dsn::answer`]).
    Partial {
        fates: Vec<crate::dsn::RecipientFate>,
        notice: crate::dsn::Notice,
    },
}

impl std::fmt::Display for DeliveryOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryOutcome::Accepted => f.write_str("accepted"),
            DeliveryOutcome::Throttled => f.write_str("refused by the throttle script"),
            DeliveryOutcome::Transient(why) => write!(f, "deferred: {why}"),
            DeliveryOutcome::Permanent(why) => write!(f, "refused: {why}"),
            DeliveryOutcome::ConfigError(why) => write!(f, "deferred, configuration error: {why}"),
            DeliveryOutcome::SenderRefused(why) => write!(f, "refused: {why}"),
            DeliveryOutcome::Partial { fates, notice } => {
                let verdict = match crate::dsn::answer(fates, notice) {
                    crate::dsn::Answer::Accepted => "partly delivered",
                    crate::dsn::Answer::Deferred => "deferred",
                    crate::dsn::Answer::Refused => "refused",
                };
                write!(f, "{verdict}: {}", crate::dsn::summary(fates))?;
                match notice {
                    crate::dsn::Notice::NotNeeded => Ok(()),
                    crate::dsn::Notice::Sent(to) => write!(f, "; delivery status notification sent to <{to}>"),
                    crate::dsn::Notice::NotSent(why) => write!(f, "; no delivery status notification: {why}"),
                }
            }
        }
    }
}

impl DeliveryOutcome {
    /// One word for a log's `outcome=`.
    pub fn word(&self) -> &'static str {
        match self {
            DeliveryOutcome::Accepted => "delivered",
            DeliveryOutcome::Throttled => "throttled",
            DeliveryOutcome::Transient(_) | DeliveryOutcome::ConfigError(_) => "deferred",
            DeliveryOutcome::Permanent(_) | DeliveryOutcome::SenderRefused(_) => "refused",
            DeliveryOutcome::Partial { fates, notice } => match crate::dsn::answer(fates, notice) {
                crate::dsn::Answer::Accepted => "partly-delivered",
                crate::dsn::Answer::Deferred => "deferred",
                crate::dsn::Answer::Refused => "refused",
            },
        }
    }

    /// Why, for a log's `reason=` (`None` when all went well).
    pub fn reason(&self) -> Option<String> {
        match self {
            DeliveryOutcome::Accepted => None,
            DeliveryOutcome::Throttled => Some("refused by the throttle script".into()),
            DeliveryOutcome::Transient(why) | DeliveryOutcome::Permanent(why) | DeliveryOutcome::SenderRefused(why) => {
                Some(why.clone())
            }
            DeliveryOutcome::ConfigError(why) => Some(format!("configuration error: {why}")),
            DeliveryOutcome::Partial { notice, .. } => Some(match notice {
                crate::dsn::Notice::NotNeeded => "no recipient got the message".into(),
                crate::dsn::Notice::Sent(to) => format!("delivery status notification sent to <{to}>"),
                crate::dsn::Notice::NotSent(why) => format!("no delivery status notification: {why}"),
            }),
        }
    }
}

/// A message ready to deliver (the body is in the driver's spool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub user: String,
    /// Envelope sender; "" is the null sender.
    pub mail_from: String,
    pub recipients: Vec<String>,
    /// The Received field value for this message.
    pub received: String,
    /// The client asked for SMTPUTF8: the relay must offer it too.
    pub smtputf8: bool,
}

#[derive(Debug)]
pub enum Input<'a> {
    /// A command line, without CRLF.
    Line(&'a [u8]),
    /// The client sent a line longer than the limit (the driver discarded it).
    LineTooLong,
    TlsEstablished,
    AuthResult(AuthOutcome),
    /// The DATA end marker arrived; `problem` if the data was refused; `now` dates Received.
    DataDone {
        problem: Option<Problem>,
        now: u64,
    },
    Delivered(DeliveryOutcome),
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Reply(Reply),
    ReplyThenClose(Reply),
    /// Send the reply, then start the TLS handshake and discard anything buffered.
    ReplyThenStartTls(Reply),
    /// Send the 354 reply, then read DATA through a `data::Decoder`.
    ReplyThenData(Reply),
    Authenticate(Attempt),
    Deliver(Envelope),
    /// Nothing to send.
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sasl {
    Plain,
    LoginUser,
    LoginPass(String),
    CramMd5(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Command,
    Sasl(Sasl),
    AwaitingAuth(String),
    Data,
    AwaitingDelivery,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Transaction {
    from: String,
    recipients: Vec<String>,
    /// MAIL FROM had SMTPUTF8 (RFC 6531).
    utf8: bool,
}

/// One SMTP session.
#[derive(Debug)]
pub struct Session {
    policy: Policy,
    peer: Peer,
    phase: Phase,
    helo: Option<(String, bool)>,
    tls_active: bool,
    user: Option<String>,
    auth_failures: u32,
    tx: Option<Transaction>,
    challenge_seed: u64,
}

type Check = Result<(), Reply>;

impl Session {
    pub fn new(policy: Policy, peer: Peer) -> Session {
        let tls_active = policy.tls == TlsMode::Implicit;
        Session {
            policy,
            peer,
            phase: Phase::Command,
            helo: None,
            tls_active,
            user: None,
            auth_failures: 0,
            tx: None,
            challenge_seed: 0,
        }
    }

    /// Seed for CRAM-MD5 challenges (the driver passes real randomness).
    pub fn set_challenge_seed(&mut self, seed: u64) {
        self.challenge_seed = seed;
    }

    pub fn greeting(&self) -> Reply {
        Reply::new(220, format!("{} ESMTP tmda-ofmipd", self.policy.hostname))
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn is_tls(&self) -> bool {
        self.tls_active
    }

    /// The next line is an AUTH response (to be redacted in traces).
    pub fn in_auth_exchange(&self) -> bool {
        matches!(self.phase, Phase::Sasl(_))
    }

    pub fn in_data(&self) -> bool {
        self.phase == Phase::Data
    }

    pub fn max_size(&self) -> u64 {
        self.policy.max_size
    }

    pub fn handle(&mut self, input: Input<'_>) -> Output {
        match input {
            Input::Timeout => Output::ReplyThenClose(reply::TIMEOUT.into()),
            Input::LineTooLong => {
                if matches!(self.phase, Phase::Sasl(_)) {
                    self.phase = Phase::Command;
                }
                Output::Reply(reply::LINE_TOO_LONG.into())
            }
            Input::TlsEstablished => {
                // RFC 3207 section 4.2: forget everything learnt before TLS.
                self.tls_active = true;
                self.helo = None;
                self.user = None;
                self.tx = None;
                self.phase = Phase::Command;
                Output::Nothing
            }
            Input::AuthResult(outcome) => self.auth_result(outcome),
            Input::DataDone { problem, now } => self.data_done(problem, now),
            Input::Delivered(outcome) => {
                self.phase = Phase::Command;
                self.tx = None;
                Output::Reply(match outcome {
                    DeliveryOutcome::Accepted => reply::QUEUED.into(),
                    DeliveryOutcome::Throttled => reply::QUOTA_EXCEEDED.into(),
                    DeliveryOutcome::Transient(why) => {
                        Reply::new(451, format!("4.3.0 Delivery failed, try again later: {why}"))
                    }
                    DeliveryOutcome::Permanent(why) => Reply::new(554, format!("5.0.0 Delivery failed: {why}")),
                    DeliveryOutcome::ConfigError(_) => reply::CONFIG_ERROR.into(),
                    DeliveryOutcome::SenderRefused(why) => {
                        Reply::new(553, format!("5.7.1 Sender address rejected: {why}"))
                    }
                    DeliveryOutcome::Partial { fates, notice } => partial_reply(&fates, &notice),
                })
            }
            Input::Line(line) => match std::mem::replace(&mut self.phase, Phase::Command) {
                Phase::Sasl(step) => self.sasl_line(step, line),
                Phase::Command => self.command_line(line),
                other => {
                    // A line while we wait for the driver cannot happen; keep the state.
                    self.phase = other;
                    Output::Reply(Reply::new(451, "4.3.0 Internal confusion"))
                }
            },
        }
    }

    fn command_line(&mut self, line: &[u8]) -> Output {
        let Ok(text) = std::str::from_utf8(line) else {
            return Output::Reply(reply::BAD_SYNTAX.into());
        };
        if text.trim().is_empty() {
            return Output::Reply(reply::BAD_SYNTAX.into());
        }
        // MAIL, RCPT and DATA before AUTH are answered 530 whatever their arguments, as
        // TMDA did: a client is told what it lacks before its syntax is looked at.
        if self.user.is_none() && Command::needs_auth(text) {
            return Output::Reply(if self.policy.tls == TlsMode::Required && !self.tls_active {
                reply::STARTTLS_FIRST.into()
            } else {
                reply::AUTH_REQUIRED.into()
            });
        }
        let cmd = match Command::parse(text) {
            Ok(c) => c,
            Err(e) => return Output::Reply(reply::syntax(e.0)),
        };
        if self.policy.tls == TlsMode::Required && !self.tls_active && !cmd.allowed_before_tls() {
            return Output::Reply(reply::STARTTLS_FIRST.into());
        }
        let r = |res: Result<Output, Reply>| res.unwrap_or_else(Output::Reply);
        match cmd {
            Command::Ehlo(h) => Output::Reply(self.do_helo(h, true)),
            Command::Helo(h) => Output::Reply(self.do_helo(h, false)),
            Command::Mail { from, params } => r(self.check_mail(&from, &params).map(|utf8| self.do_mail(from, utf8))),
            Command::Rcpt { to, params } => r(self.check_rcpt(&to, &params).map(|_| self.do_rcpt(to))),
            Command::Data => r(self.check_data().map(|_| {
                self.phase = Phase::Data;
                Output::ReplyThenData(reply::START_DATA.into())
            })),
            Command::Rset => {
                self.tx = None;
                Output::Reply(reply::OK.into())
            }
            Command::Noop => Output::Reply(reply::OK.into()),
            Command::Quit => Output::ReplyThenClose(reply::BYE.into()),
            Command::Help => Output::Reply(reply::HELP.into()),
            Command::Vrfy => Output::Reply(reply::CANNOT_VRFY.into()),
            Command::StartTls => {
                if self.policy.tls == TlsMode::None {
                    Output::Reply(reply::STARTTLS_NOT_OFFERED.into())
                } else if self.can_starttls() {
                    Output::ReplyThenStartTls(reply::READY_FOR_TLS.into())
                } else {
                    Output::Reply(reply::STARTTLS_NOT_ALLOWED.into())
                }
            }
            Command::Auth { mechanism, initial } => {
                r(self.check_auth(&mechanism).map(|_| self.do_auth(&mechanism, initial)))
            }
            Command::Unknown(_) => Output::Reply(reply::UNKNOWN_COMMAND.into()),
        }
    }

    fn can_starttls(&self) -> bool {
        !self.tls_active && matches!(self.policy.tls, TlsMode::Optional | TlsMode::Required)
    }

    /// AUTH must wait for TLS (`--tls=on`, `--tls-auth-only`).
    fn auth_needs_tls(&self) -> bool {
        !self.tls_active && (self.policy.tls == TlsMode::Required || self.policy.tls_auth_only)
    }

    fn auth_offered(&self) -> bool {
        self.user.is_none() && !self.auth_needs_tls()
    }

    fn mechanisms(&self) -> &'static str {
        if self.policy.cram_md5 {
            "PLAIN LOGIN CRAM-MD5"
        } else {
            "PLAIN LOGIN"
        }
    }

    /// EHLO/HELO (RFC 5321 4.1.4: they also reset the transaction).
    fn do_helo(&mut self, name: String, extended: bool) -> Reply {
        self.tx = None;
        self.helo = Some((name, extended));
        if !extended {
            return Reply::new(250, self.policy.hostname.clone());
        }
        let mut lines = vec![
            self.policy.hostname.clone(),
            "PIPELINING".into(),
            format!("SIZE {}", self.policy.max_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            // The relay is asked for it too when a message needs it; if it lacks it,
            // the message is refused rather than sent on mangled (RFC 6531 3.2).
            "SMTPUTF8".into(),
        ];
        if self.can_starttls() {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() {
            lines.push(format!("AUTH {}", self.mechanisms()));
            // The pre-RFC form old Outlook versions look for.
            lines.push(format!("AUTH={}", self.mechanisms()));
        }
        Reply::multi(250, lines)
    }

    /// MAIL, RCPT and DATA: AUTH first (TMDA's order), and a greeting.
    fn check_session(&self) -> Check {
        if self.user.is_none() {
            return Err(reply::AUTH_REQUIRED.into());
        }
        if self.helo.is_none() {
            return Err(reply::NEED_HELO.into());
        }
        Ok(())
    }

    /// Whether MAIL may go ahead, and whether it asked for SMTPUTF8.
    fn check_mail(&self, from: &str, params: &[(String, Option<String>)]) -> Result<bool, Reply> {
        self.check_session()?;
        if self.tx.is_some() {
            return Err(reply::NESTED_MAIL.into());
        }
        let mut utf8 = false;
        for (k, v) in params {
            match (k.as_str(), v.as_deref()) {
                // RFC 1870: refuse early what would be refused after DATA.
                ("SIZE", Some(n)) => match n.parse::<u64>() {
                    Ok(n) if n > self.policy.max_size => return Err(reply::TOO_BIG.into()),
                    Ok(_) => {}
                    Err(_) => return Err(reply::syntax("MAIL FROM:<address> SIZE=number")),
                },
                ("BODY", Some(b)) if b.eq_ignore_ascii_case("7BIT") || b.eq_ignore_ascii_case("8BITMIME") => {}
                // RFC 4954 section 5: AUTH= is accepted and not trusted.
                ("AUTH", Some(_)) => {}
                ("SMTPUTF8", None) => utf8 = true,
                _ => return Err(reply::UNSUPPORTED_PARAMETER.into()),
            }
        }
        if !utf8 && !from.is_ascii() {
            return Err(reply::NEEDS_SMTPUTF8.into());
        }
        Ok(utf8)
    }

    fn do_mail(&mut self, from: String, utf8: bool) -> Output {
        self.tx = Some(Transaction {
            from,
            recipients: vec![],
            utf8,
        });
        Output::Reply(reply::SENDER_OK.into())
    }

    fn check_rcpt(&self, to: &str, params: &[(String, Option<String>)]) -> Check {
        self.check_session()?;
        let Some(tx) = &self.tx else {
            return Err(reply::NEED_MAIL.into());
        };
        if !params.is_empty() {
            return Err(reply::UNSUPPORTED_PARAMETER.into());
        }
        if !tx.utf8 && !to.is_ascii() {
            return Err(reply::NEEDS_SMTPUTF8.into());
        }
        if tx.recipients.len() >= self.policy.max_recipients {
            return Err(reply::TOO_MANY_RECIPIENTS.into());
        }
        Ok(())
    }

    fn do_rcpt(&mut self, to: String) -> Output {
        self.tx.as_mut().expect("checked").recipients.push(to);
        Output::Reply(reply::RECIPIENT_OK.into())
    }

    fn check_data(&self) -> Check {
        self.check_session()?;
        match &self.tx {
            None => Err(reply::NEED_MAIL.into()),
            Some(tx) if tx.recipients.is_empty() => Err(reply::NEED_RCPT.into()),
            Some(_) => Ok(()),
        }
    }

    fn data_done(&mut self, problem: Option<Problem>, now: u64) -> Output {
        if self.phase != Phase::Data {
            return Output::Reply(Reply::new(451, "4.3.0 Internal confusion"));
        }
        if let Some(p) = problem {
            self.phase = Phase::Command;
            self.tx = None;
            return Output::Reply(
                match p {
                    Problem::TooBig => reply::TOO_BIG,
                    Problem::BareLineEnding => reply::BARE_LINE_ENDING,
                    Problem::LineTooLong => reply::DATA_LINE_TOO_LONG,
                }
                .into(),
            );
        }
        let tx = self.tx.clone().expect("DATA needs a transaction");
        self.phase = Phase::AwaitingDelivery;
        Output::Deliver(Envelope {
            user: self.user.clone().unwrap_or_default(),
            mail_from: tx.from,
            received: self.received(now, tx.utf8),
            recipients: tx.recipients,
            smtputf8: tx.utf8,
        })
    }

    /// `from HELO (name [ip]) (using STARTTLS) by HOST (tmda-ofmipd) with ESMTPSA; DATE`
    /// (UTF8SMTPSA when the transaction uses SMTPUTF8).
    fn received(&self, now: u64, utf8: bool) -> String {
        let (helo, extended) = self.helo.clone().unwrap_or_default();
        let tcp_info = match &self.peer.name {
            Some(n) if !n.eq_ignore_ascii_case(&helo) && n != &self.peer.ip => format!("({n} [{}])", self.peer.ip),
            _ => format!("([{}])", self.peer.ip),
        };
        let tls = match (self.policy.tls, self.tls_active) {
            (TlsMode::Implicit, _) => " (using SMTP over TLS)",
            (_, true) => " (using STARTTLS)",
            _ => "",
        };
        // RFC 3848 protocol names (RFC 6531 3.7.3 for SMTPUTF8).
        let mut proto = String::from(match (extended, utf8) {
            (true, true) => "UTF8SMTP",
            (true, false) => "ESMTP",
            (false, _) => "SMTP",
        });
        if extended {
            if self.tls_active {
                proto.push('S');
            }
            if self.user.is_some() {
                proto.push('A');
            }
        }
        format!(
            "from {helo} {tcp_info}{tls} by {} (tmda-ofmipd) with {proto}; {}",
            self.policy.hostname,
            crate::clock::rfc2822(now)
        )
    }

    /// AUTH needs no EHLO or HELO first: TMDA accepted it right after the greeting, and
    /// its test suite and scripts written against tmda-ofmipd rely on that.
    fn check_auth(&self, mechanism: &str) -> Check {
        if self.user.is_some() {
            return Err(reply::DUPLICATE_AUTH.into());
        }
        if self.tx.is_some() {
            return Err(reply::AUTH_IN_TRANSACTION.into());
        }
        if self.auth_needs_tls() {
            return Err(reply::STARTTLS_FIRST.into());
        }
        match mechanism {
            "PLAIN" | "LOGIN" => Ok(()),
            "CRAM-MD5" if self.policy.cram_md5 => Ok(()),
            _ => Err(reply::UNKNOWN_MECHANISM.into()),
        }
    }

    fn do_auth(&mut self, mechanism: &str, initial: Option<String>) -> Output {
        match (mechanism, initial) {
            ("PLAIN", Some(resp)) => self.sasl_line(Sasl::Plain, resp.as_bytes()),
            ("PLAIN", None) => self.challenge(Sasl::Plain, reply::PLAIN_CHALLENGE.into()),
            ("LOGIN", Some(user)) => self.sasl_line(Sasl::LoginUser, user.as_bytes()),
            ("LOGIN", None) => self.challenge(Sasl::LoginUser, reply::LOGIN_USERNAME.into()),
            _ => {
                let c = format!(
                    "<{}.{}@{}>",
                    self.challenge_seed % 1_000_000_000,
                    crate::clock::now().unwrap_or(0),
                    self.policy.hostname
                );
                let b64 = base64::engine::general_purpose::STANDARD.encode(&c);
                self.challenge(Sasl::CramMd5(c), Reply::new(334, b64))
            }
        }
    }

    fn challenge(&mut self, step: Sasl, r: Reply) -> Output {
        self.phase = Phase::Sasl(step);
        Output::Reply(r)
    }

    fn sasl_line(&mut self, step: Sasl, line: &[u8]) -> Output {
        if line == b"*" {
            return Output::Reply(reply::AUTH_CANCELLED.into());
        }
        if line.eq_ignore_ascii_case(b"QUIT") {
            return Output::ReplyThenClose(reply::BYE.into());
        }
        // RFC 4954: "=" is an empty initial response.
        let raw = if line == b"=" { &b""[..] } else { line };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(raw) else {
            return Output::Reply(reply::BAD_BASE64.into());
        };
        let attempt = match step {
            Sasl::Plain => {
                let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
                let [authz, authc, pass] = parts.as_slice() else {
                    return self.auth_result(AuthOutcome::Denied);
                };
                let (Ok(authz), Ok(authc), Ok(pass)) = (
                    std::str::from_utf8(authz),
                    std::str::from_utf8(authc),
                    std::str::from_utf8(pass),
                ) else {
                    return self.auth_result(AuthOutcome::Denied);
                };
                // We do not act on behalf of others: an authzid must name the same user.
                if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc) {
                    return self.auth_result(AuthOutcome::Denied);
                }
                Attempt {
                    user: authc.to_string(),
                    secret: Secret::Password(pass.to_string()),
                }
            }
            Sasl::LoginUser => {
                let Ok(user) = String::from_utf8(decoded) else {
                    return self.auth_result(AuthOutcome::Denied);
                };
                return self.challenge(Sasl::LoginPass(user), reply::LOGIN_PASSWORD.into());
            }
            Sasl::LoginPass(user) => {
                let Ok(pass) = String::from_utf8(decoded) else {
                    return self.auth_result(AuthOutcome::Denied);
                };
                Attempt {
                    user,
                    secret: Secret::Password(pass),
                }
            }
            Sasl::CramMd5(challenge) => {
                let text = String::from_utf8_lossy(&decoded).into_owned();
                let Some((user, digest)) = text.rsplit_once(' ') else {
                    return self.auth_result(AuthOutcome::Denied);
                };
                Attempt {
                    user: user.to_string(),
                    secret: Secret::CramMd5 {
                        challenge,
                        digest: digest.to_ascii_lowercase(),
                    },
                }
            }
        };
        // A login name with control characters is no one's: it would only travel on into
        // config paths, programs' arguments and logs; one that starts with '-' would be
        // read as an option by the throttle and vhome scripts it is handed to.
        if attempt.user.is_empty() || attempt.user.starts_with('-') || attempt.user.chars().any(char::is_control) {
            return self.auth_result(AuthOutcome::Denied);
        }
        // One canonical name, the lower-cased one, is both checked and acted on (TMDA
        // lower-cased the name it acted on, but checked the name as typed, so a
        // case-sensitive source could pass "Bob" and the work be done as "bob").
        let attempt = Attempt {
            user: attempt.user.to_lowercase(),
            ..attempt
        };
        self.phase = Phase::AwaitingAuth(attempt.user.clone());
        Output::Authenticate(attempt)
    }

    fn auth_result(&mut self, outcome: AuthOutcome) -> Output {
        let user = match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::AwaitingAuth(u) => Some(u),
            _ => None,
        };
        match (outcome, user) {
            (AuthOutcome::Accepted, Some(u)) => {
                self.user = Some(u);
                Output::Reply(reply::AUTH_SUCCEEDED.into())
            }
            (outcome, _) => {
                // An undecided attempt counts as much as a refused one: otherwise an
                // auth source that is down would make guessing free.
                self.auth_failures += 1;
                if self.auth_failures >= self.policy.max_auth_failures {
                    Output::ReplyThenClose(reply::TOO_MANY_AUTH_FAILURES.into())
                } else if outcome == AuthOutcome::Temporary {
                    Output::Reply(reply::AUTH_SOURCE_UNAVAILABLE.into())
                } else {
                    Output::Reply(reply::AUTH_FAILED.into())
                }
            }
        }
    }
}

/// The answer to a message whose copies did not all go through (see [`crate::dsn`]).
fn partial_reply(fates: &[crate::dsn::RecipientFate], notice: &crate::dsn::Notice) -> Reply {
    use crate::dsn::{Answer, Notice};
    let summary = crate::dsn::summary(fates);
    match crate::dsn::answer(fates, notice) {
        Answer::Accepted => reply::PARTLY_DELIVERED.into(),
        Answer::Deferred => Reply::new(451, format!("4.3.0 Delivery failed, try again later: {summary}")),
        Answer::Refused => {
            let why = match notice {
                Notice::NotSent(why) => format!("; no delivery status notification could be sent ({why})"),
                Notice::NotNeeded | Notice::Sent(_) => String::new(),
            };
            Reply::new(554, format!("5.0.0 Delivery failed: {summary}{why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(tls: TlsMode) -> Policy {
        Policy {
            hostname: "mx.test".into(),
            tls,
            tls_auth_only: false,
            cram_md5: true,
            max_size: 1000,
            max_recipients: 2,
            max_auth_failures: 3,
        }
    }

    /// The states a command can meet, reached the way a client would.
    #[derive(Debug, Clone, Copy)]
    enum State {
        Fresh,
        Greeted,
        Authed,
        MailGiven,
        RcptGiven,
    }

    fn session_in(state: State, tls: TlsMode) -> Session {
        let mut s = Session::new(
            policy(tls),
            Peer {
                ip: "192.0.2.1".into(),
                name: None,
            },
        );
        let line = |s: &mut Session, l: &str| s.handle(Input::Line(l.as_bytes()));
        if matches!(state, State::Fresh) {
            return s;
        }
        line(&mut s, "EHLO c");
        if matches!(state, State::Greeted) {
            return s;
        }
        assert!(matches!(line(&mut s, "AUTH PLAIN AGEAYg=="), Output::Authenticate(_)));
        s.handle(Input::AuthResult(AuthOutcome::Accepted));
        if matches!(state, State::Authed) {
            return s;
        }
        line(&mut s, "MAIL FROM:<a@b>");
        if matches!(state, State::MailGiven) {
            return s;
        }
        line(&mut s, "RCPT TO:<c@d>");
        s
    }

    fn code(out: Output) -> u16 {
        match out {
            Output::Reply(r) | Output::ReplyThenClose(r) | Output::ReplyThenStartTls(r) | Output::ReplyThenData(r) => {
                r.code
            }
            Output::Authenticate(_) => 1, // asks the driver to check credentials
            Output::Deliver(_) | Output::Nothing => 0,
        }
    }

    /// Every command in every state, without TLS: (command, Fresh, Greeted, Authed, MailGiven, RcptGiven).
    #[test]
    fn every_command_in_every_state() {
        let table: &[(&str, [u16; 5])] = &[
            ("EHLO c", [250, 250, 250, 250, 250]),
            ("HELO c", [250, 250, 250, 250, 250]),
            // MAIL, RCPT and DATA before AUTH: 530 first, whatever the arguments (TMDA).
            ("MAIL FROM:<x@y>", [530, 530, 250, 503, 503]),
            ("MAIL TO: x@y", [530, 530, 501, 501, 501]),
            ("MAIL FROM:", [530, 530, 501, 501, 501]),
            ("RCPT TO:<x@y>", [530, 530, 503, 250, 250]),
            ("rcpt to:", [530, 530, 501, 501, 501]),
            ("DATA", [530, 530, 503, 503, 354]),
            ("DATA now", [530, 530, 501, 501, 501]),
            ("RSET", [250, 250, 250, 250, 250]),
            ("NOOP", [250, 250, 250, 250, 250]),
            ("VRFY x", [252, 252, 252, 252, 252]),
            ("HELP", [214, 214, 214, 214, 214]),
            // AUTH right after the greeting, as TMDA allowed.
            ("AUTH PLAIN", [334, 334, 503, 503, 503]),
            ("AUTH PLAIN AGEAYg==", [1, 1, 503, 503, 503]),
            ("AUTH CRAM-MD5", [334, 334, 503, 503, 503]),
            ("AUTH NTLM", [504, 504, 503, 503, 503]),
            // No TLS configured: not offered, so not implemented.
            ("STARTTLS", [502, 502, 502, 502, 502]),
            ("FROB", [502, 502, 502, 502, 502]),
            ("MAIL", [530, 530, 501, 501, 501]),
            ("QUIT", [221, 221, 221, 221, 221]),
        ];
        let states = [
            State::Fresh,
            State::Greeted,
            State::Authed,
            State::MailGiven,
            State::RcptGiven,
        ];
        for (cmd, want) in table {
            for (state, want) in states.iter().zip(want) {
                let mut s = session_in(*state, TlsMode::None);
                let got = code(s.handle(Input::Line(cmd.as_bytes())));
                assert_eq!(got, *want, "{cmd:?} in state {state:?}");
            }
        }
    }

    /// With --tls=on before STARTTLS, only EHLO/NOOP/STARTTLS/QUIT get through (RFC 3207
    /// section 4; HELO and RSET used to be answered too).
    #[test]
    fn tls_required_gates_every_other_command() {
        for (cmd, want) in [
            ("EHLO c", 250),
            ("HELO c", 530),
            ("NOOP", 250),
            ("RSET", 530),
            ("STARTTLS", 220),
            ("QUIT", 221),
            ("AUTH PLAIN AGEAYg==", 530),
            ("MAIL FROM:<x@y>", 530),
            ("RCPT TO:<x@y>", 530),
            ("DATA", 530),
            ("VRFY x", 530),
            ("HELP", 530),
            ("FROB", 530),
        ] {
            let mut s = session_in(State::Greeted, TlsMode::Required);
            assert_eq!(code(s.handle(Input::Line(cmd.as_bytes()))), want, "{cmd:?}");
        }
        // After the handshake everything starts over, and AUTH works.
        let mut s = session_in(State::Greeted, TlsMode::Required);
        assert!(matches!(
            s.handle(Input::Line(b"STARTTLS")),
            Output::ReplyThenStartTls(_)
        ));
        assert_eq!(s.handle(Input::TlsEstablished), Output::Nothing);
        assert!(s.is_tls());
        // AUTH needs no new EHLO (as right after the greeting), but MAIL does.
        assert_eq!(code(s.handle(Input::Line(b"AUTH PLAIN AGEAYg=="))), 1);
        s.handle(Input::AuthResult(AuthOutcome::Accepted));
        assert_eq!(code(s.handle(Input::Line(b"MAIL FROM:<a@b>"))), 503, "EHLO again first");
        s.handle(Input::Line(b"EHLO c"));
        assert_eq!(code(s.handle(Input::Line(b"MAIL FROM:<a@b>"))), 250);
    }

    /// The dialogue TMDA's own test suite and old scripts use: AUTH right after the
    /// greeting, then a greeting before MAIL.
    #[test]
    fn auth_right_after_the_greeting() {
        let mut s = session_in(State::Fresh, TlsMode::None);
        assert!(matches!(
            s.handle(Input::Line(b"AUTH PLAIN AGEAYg==")),
            Output::Authenticate(_)
        ));
        assert_eq!(code(s.handle(Input::AuthResult(AuthOutcome::Accepted))), 235);
        assert_eq!(code(s.handle(Input::Line(b"MAIL FROM:<a@b>"))), 503, "a greeting first");
        assert_eq!(code(s.handle(Input::Line(b"HELO c"))), 250);
        assert_eq!(code(s.handle(Input::Line(b"MAIL FROM:<a@b>"))), 250);
        // With TLS required, AUTH still waits for the handshake.
        let mut s = session_in(State::Fresh, TlsMode::Required);
        assert_eq!(code(s.handle(Input::Line(b"AUTH PLAIN AGEAYg=="))), 530);
        assert_eq!(code(s.handle(Input::Line(b"MAIL TO: x@y"))), 530);
    }

    #[test]
    fn starttls_without_tls_configured_is_not_implemented() {
        for state in [State::Fresh, State::Greeted, State::Authed] {
            match session_in(state, TlsMode::None).handle(Input::Line(b"STARTTLS")) {
                Output::Reply(r) => assert_eq!((r.code, &r.lines[0][..5]), (502, "5.5.1"), "{state:?}"),
                other => panic!("{other:?}"),
            }
        }
        // Configured but already active: a duplicate, 503 as before.
        assert_eq!(
            code(session_in(State::Fresh, TlsMode::Implicit).handle(Input::Line(b"STARTTLS"))),
            503
        );
    }

    #[test]
    fn implicit_tls_offers_no_starttls_and_records_it() {
        let mut s = session_in(State::RcptGiven, TlsMode::Implicit);
        assert_eq!(code(s.handle(Input::Line(b"STARTTLS"))), 503);
        assert_eq!(code(s.handle(Input::Line(b"DATA"))), 354);
        match s.handle(Input::DataDone { problem: None, now: 0 }) {
            Output::Deliver(env) => {
                assert!(
                    env.received.contains("(using SMTP over TLS)") && env.received.contains("with ESMTPSA"),
                    "{}",
                    env.received
                );
                assert_eq!(
                    (env.user.as_str(), env.mail_from.as_str(), env.recipients.clone()),
                    ("a", "a@b", vec!["c@d".to_string()])
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn smtputf8_is_offered_asked_for_and_recorded() {
        let mut s = session_in(State::Fresh, TlsMode::None);
        match s.handle(Input::Line(b"EHLO c")) {
            Output::Reply(r) => assert!(r.lines.iter().any(|l| l == "SMTPUTF8"), "{r:?}"),
            other => panic!("{other:?}"),
        }
        // Without SMTPUTF8, non-ASCII addresses are refused (RFC 6531 3.5).
        let mut s = session_in(State::Authed, TlsMode::None);
        let line = |s: &mut Session, l: &str| code(s.handle(Input::Line(l.as_bytes())));
        assert_eq!(line(&mut s, "MAIL FROM:<j\u{f6}rg@b.de>"), 553);
        assert_eq!(line(&mut s, "MAIL FROM:<a@b>"), 250);
        assert_eq!(line(&mut s, "RCPT TO:<\u{f6}@b.de>"), 553);
        assert_eq!(line(&mut s, "RSET"), 250);
        assert_eq!(
            line(&mut s, "MAIL FROM:<a@b> SMTPUTF8=yes"),
            555,
            "SMTPUTF8 takes no value"
        );
        assert_eq!(line(&mut s, "MAIL FROM:<j\u{f6}rg@b.de> SMTPUTF8 BODY=8BITMIME"), 250);
        assert_eq!(line(&mut s, "RCPT TO:<\u{f6}@b.de>"), 250);
        assert_eq!(line(&mut s, "DATA"), 354);
        match s.handle(Input::DataDone { problem: None, now: 0 }) {
            Output::Deliver(env) => {
                assert!(env.smtputf8);
                assert!(env.received.contains(" with UTF8SMTPA;"), "{}", env.received);
                assert_eq!(env.mail_from, "j\u{f6}rg@b.de");
            }
            other => panic!("{other:?}"),
        }
        // The next transaction starts without it.
        s.handle(Input::Delivered(DeliveryOutcome::Accepted));
        assert_eq!(line(&mut s, "MAIL FROM:<a@b>"), 250);
        assert_eq!(line(&mut s, "RCPT TO:<c@d>"), 250);
        assert_eq!(line(&mut s, "DATA"), 354);
        match s.handle(Input::DataDone { problem: None, now: 0 }) {
            Output::Deliver(env) => assert!(!env.smtputf8 && env.received.contains(" with ESMTPA;")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timeouts_and_overlong_lines() {
        let mut s = session_in(State::Authed, TlsMode::None);
        assert_eq!(code(s.handle(Input::LineTooLong)), 500);
        assert_eq!(code(s.handle(Input::Line(b"NOOP"))), 250);
        assert!(matches!(s.handle(Input::Timeout), Output::ReplyThenClose(r) if r.code == 421));
        // An overlong line during AUTH abandons the exchange.
        let mut s = session_in(State::Greeted, TlsMode::None);
        s.handle(Input::Line(b"AUTH LOGIN"));
        assert_eq!(code(s.handle(Input::LineTooLong)), 500);
        assert_eq!(code(s.handle(Input::Line(b"NOOP"))), 250);
    }

    #[test]
    fn a_login_name_starting_with_a_dash_is_refused_unasked() {
        let mut s = session_in(State::Greeted, TlsMode::None);
        // AUTH PLAIN for "-x": no auth source is asked, and no script sees an option.
        assert_eq!(code(s.handle(Input::Line(b"AUTH PLAIN AC14AHB3"))), 535);
        assert_eq!(s.user(), None);
    }

    #[test]
    fn the_login_checked_is_the_login_used() {
        let mut s = session_in(State::Greeted, TlsMode::None);
        // AUTH PLAIN for "Bob": the sources are asked about "bob", and "bob" is used.
        match s.handle(Input::Line(b"AUTH PLAIN AEJvYgBwdw==")) {
            Output::Authenticate(a) => assert_eq!(a.user, "bob"),
            other => panic!("{other:?}"),
        }
        s.handle(Input::AuthResult(AuthOutcome::Accepted));
        assert_eq!(s.user(), Some("bob"));
    }

    #[test]
    fn an_undecided_attempt_is_454_and_counts() {
        let mut s = session_in(State::Greeted, TlsMode::None);
        for i in 1..=3 {
            assert!(matches!(
                s.handle(Input::Line(b"AUTH PLAIN AGEAYg==")),
                Output::Authenticate(_)
            ));
            match s.handle(Input::AuthResult(AuthOutcome::Temporary)) {
                Output::Reply(r) if i < 3 => assert_eq!((r.code, &r.lines[0][..5]), (454, "4.7.0")),
                Output::ReplyThenClose(r) if i == 3 => assert_eq!(r.code, 421),
                other => panic!("attempt {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_login_name_with_control_characters_is_refused_unasked() {
        let mut s = session_in(State::Greeted, TlsMode::None);
        // AUTH LOGIN with "alice\nx" as the user: no auth source is asked.
        s.handle(Input::Line(b"AUTH LOGIN YWxpY2UKeA=="));
        assert_eq!(code(s.handle(Input::Line(b"d29uZGVybGFuZA=="))), 535);
        assert_eq!(s.user(), None);
    }
}
