//! `tmda filter`: what TMDA's `tmda-filter` does with one incoming message, run by the
//! MTA as the user's delivery agent.
//!
//! In TMDA's order (docs/design/incoming.md §2): read the message and the envelope; now
//! and then clean expired messages out of the pending queue; a released message coming
//! back (`X-TMDA-Confirm-Done`) is delivered; a reply to a confirm address releases the
//! held message; otherwise the incoming filter decides, then the recipient's tag
//! (dated, sender, keyword), then `ACTION_INCOMING`. Deciding is done by the library
//! modules below this one (filter, address, pending, response, mailbox); this module
//! carries the decision out and logs it.
//!
//! Nothing is lost: every failure before the message is safely stored, delivered or
//! knowingly discarded is an error, which the command turns into exit 75 so that the
//! MTA keeps the message and tries again.

pub mod envelope;
pub mod log;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::address::{Tagger, tag};
use crate::config::Config;
use crate::config::incoming::{Action, Incoming};
use crate::filter::{Direction, Disposal, Disposition, Subject, Then};
use crate::mailbox;
use crate::message::Message;
use crate::message::address::parseaddr;
use crate::pending::{self, MessageId, Queue, ReleaseMode};
use crate::response::{self, Kind};
use crate::transport::{Copy, Transport};

pub use envelope::{Envelope, EnvelopeError};

/// How long the input's envelope `From ` line may be.
const FROM_LINE_MAX: usize = 4096;

/// What went wrong. Every one of them means "try again later" to the MTA (exit 75), as
/// in TMDA: a message is never bounced or lost because of a local problem.
#[derive(Debug, thiserror::Error)]
pub enum IncomingError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Key(#[from] crate::key::KeyError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("reading the message: {0}")]
    Message(#[from] crate::message::MessageError),
    #[error("FILTER_INCOMING: {0}")]
    Filter(#[from] crate::filter::ParseError),
    #[error("FILTER_INCOMING: {0}")]
    Match(#[from] crate::filter::MatchError),
    #[error(transparent)] // its messages name the file: a list (CONFIRM_APPEND) as well as the queue
    Pending(#[from] crate::pending::PendingError),
    #[error("delivery: {0}")]
    Delivery(#[from] crate::mailbox::Error),
    #[error("sending to {to}: {source}")]
    Send {
        to: String,
        source: crate::transport::DeliveryError,
    },
    #[error(transparent)]
    Template(#[from] crate::response::TemplateError),
    #[error(transparent)]
    Compose(#[from] crate::response::ComposeError),
    #[error("{what}: {}", crate::exit::describe_io(source))]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IncomingError {
    let what = what.into();
    move |source| IncomingError::Io { what, source }
}

/// The command line's say in a run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-d`: discard instead of answering: no challenge, no bounce, nothing held.
    pub discard: bool,
    /// `-p`: print a delivered message on standard output instead of delivering it.
    pub print: bool,
    /// `-t DIR`: search this template directory first.
    pub template_dir: Option<PathBuf>,
}

/// How a run ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered by us (or printed with `-p`).
    Delivered,
    /// qmail's `_qok_`: qmail goes on with the next `.qmail` line.
    QmailOk,
    /// Dropped, bounced, held or challenged: the MTA must not deliver it.
    Stopped,
}

/// The exit status for `outcome` under `mta` (TMDA's `MTA.py`): qmail stops the `.qmail`
/// file with 99; the others take 0 either way; `-p` says 0 for delivered, 99 otherwise.
pub fn exit_status(mta: &str, outcome: Outcome, print: bool) -> u8 {
    match (print, outcome) {
        (true, Outcome::Delivered | Outcome::QmailOk) => 0,
        (true, Outcome::Stopped) => 99,
        (false, Outcome::QmailOk) => 0,
        (false, _) if mta == "qmail" => 99,
        (false, _) => 0,
    }
}

/// The process's side of a run: where `now`, the process id and the environment come
/// from, and where a transport is made (tests replace them).
pub struct World<'a> {
    pub now: u64,
    pub pid: u32,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub home: PathBuf,
    pub stdout: &'a mut dyn Write,
    pub transport: &'a mut dyn FnMut() -> Result<Box<dyn Transport>, IncomingError>,
}

/// The message's body as the filter's body rules see it.
struct FilterBody<'a> {
    msg: &'a Message,
    prefix: std::sync::OnceLock<Vec<u8>>,
}

impl crate::filter::incoming::Body for FilterBody<'_> {
    fn prefix(&self) -> &[u8] {
        self.prefix.get_or_init(|| {
            let mut out = Vec::new();
            for c in self.msg.body_chunks() {
                let Ok(c) = c else { break };
                out.extend_from_slice(&c);
                if out.len() >= crate::filter::incoming::BODY_MATCH_LIMIT {
                    out.truncate(crate::filter::incoming::BODY_MATCH_LIMIT);
                    break;
                }
            }
            out
        })
    }
    fn reader(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(ChunkReader::new(self.msg)))
    }
    fn is_empty(&self) -> bool {
        self.msg.body_len() == 0
    }
}

/// A message body as a reader (streamed from the spool).
pub struct ChunkReader<'a> {
    chunks: crate::message::BodyChunks<'a>,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> ChunkReader<'a> {
    pub fn new(msg: &'a Message) -> ChunkReader<'a> {
        ChunkReader {
            chunks: msg.body_chunks(),
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.chunks.next() {
                None => return Ok(0),
                Some(c) => {
                    self.buf = c?;
                    self.pos = 0;
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Read the input: the envelope `From ` line (kept for mbox and program deliveries) and
/// the message, spooled (in memory when small, else in an unlinked temporary file).
pub fn read_input(input: impl Read) -> Result<(Option<Vec<u8>>, Message), IncomingError> {
    let mut r = BufReader::with_capacity(64 * 1024, input);
    let mut from_line = None;
    let starts = r.fill_buf().map_err(io("reading the message"))?.starts_with(b"From ");
    if starts {
        let mut line = Vec::new();
        (&mut r)
            .take(FROM_LINE_MAX as u64)
            .read_until(b'\n', &mut line)
            .map_err(io("reading the message"))?;
        if !line.ends_with(b"\n") {
            return Err(IncomingError::Other(format!(
                "the envelope From line is longer than {FROM_LINE_MAX} bytes"
            )));
        }
        from_line = Some(line);
    }
    let msg = match Message::read_cut(r) {
        Ok(m) => m,
        // An empty message is still a message (TMDA failed for ever, Q17).
        Err(crate::message::MessageError::Empty) => Message::from_vec(b"\n".to_vec())?,
        Err(e) => return Err(e.into()),
    };
    Ok((from_line, msg))
}

/// One run of the filter over one message.
pub struct Run<'a, 'w> {
    config: &'a Config,
    inc: Incoming,
    opts: &'a Options,
    world: &'a mut World<'w>,
    msg: &'a Message,
    from_line: Option<&'a [u8]>,
    env: Envelope,
    log_subject: log::Subject,
    /// The message's header after X-TMDA-Action and purges (what a delivery writes).
    header: crate::message::header::Header,
    transport: Option<Box<dyn Transport>>,
    tagger: Option<Tagger>,
    /// The address a confirmation of this message whitelists (PRIMARY_ADDRESS_MATCH).
    append_address: String,
}

/// Filter one message. `Ok` carries how it ended; an error means exit 75.
pub fn run(
    config: &Config,
    opts: &Options,
    world: &mut World<'_>,
    from_line: Option<&[u8]>,
    msg: &Message,
) -> Result<Outcome, IncomingError> {
    let inc = config.incoming()?;
    let recipient_header = inc.recipient_header.as_ref().and_then(|h| msg.header.get(h));
    let vd_text = if config.mail_transfer_agent == "qmail" && inc.use_virtual_domains {
        std::fs::read_to_string(&inc.virtual_domains).ok()
    } else {
        None
    };
    let hostname = config.hostname().to_string();
    let env = Envelope::read(
        world.env,
        &envelope::Settings {
            mta: &config.mail_transfer_agent,
            delimiter: &config.recipient_delimiter,
            recipient_header,
            hostname: &hostname,
            virtualdomains: vd_text.as_deref(),
        },
    )?;
    let log_subject = log::Subject {
        x_primary: msg.header.get_source("X-Primary-Address"),
        envelope_sender: env.sender.clone(),
        from: msg.header.get_source("From"),
        reply_to: msg.header.get_source("Reply-To"),
        to: env.recipient_address.clone(),
        subject: msg.header.get_source("Subject"),
        size: msg.size(),
    };
    let append_address = envelope::confirm_append_address(
        msg.header.get("X-Primary-Address").as_deref(),
        &env.sender,
        inc.primary_address_match,
        &config.recipient_delimiter,
    );
    let mut header = msg.header.clone();
    for h in &inc.purged_headers_delivery {
        header.remove_all(h);
    }
    let mut r = Run {
        config,
        inc,
        opts,
        world,
        msg,
        from_line,
        env,
        log_subject,
        header,
        transport: None,
        tagger: None,
        append_address,
    };
    let outcome = r.decide();
    if let Some(mut t) = r.transport.take() {
        t.close();
    }
    outcome
}

impl Run<'_, '_> {
    fn tagger(&mut self) -> Result<&Tagger, IncomingError> {
        if self.tagger.is_none() {
            self.tagger = Some(Tagger::from_config(self.config)?);
        }
        Ok(self.tagger.as_ref().expect("set above"))
    }

    fn queue(&self) -> Result<Queue, IncomingError> {
        let format = pending::Format::parse(&self.inc.pending_queue_format)?;
        Ok(Queue::new(&self.inc.pending_dir, format))
    }

    fn log(&mut self, action: &str) -> Result<(), IncomingError> {
        if self.inc.action_header_incoming {
            self.header.set("X-TMDA-Action", action);
        }
        if let Some(path) = &self.inc.logfile_incoming
            && !self.env.recipient_address.is_empty()
        {
            let entry = log::entry(&crate::clock::rfc2822(self.world.now), &self.log_subject, action);
            log::append(path, &entry).map_err(io(format!("LOGFILE_INCOMING {}", path.display())))?;
        }
        Ok(())
    }

    fn decide(&mut self) -> Result<Outcome, IncomingError> {
        self.maybe_clean_pending()?;
        let delimiter = self.config.recipient_delimiter.clone();
        let (kind, value) = self.env.tag(&delimiter);
        // The sender list for `from` rules.
        let append_address = self.append_address.clone();
        let senders = envelope::sender_list(
            &self.env.sender,
            &append_address,
            &self.msg.header.get_all("From"),
            &self.msg.header.get_all("Reply-To"),
        );
        if let Some(done) = self.msg.header.get("X-TMDA-Confirm-Done") {
            if let Some(outcome) = self.confirm_done(&done)? {
                return Ok(outcome);
            }
        } else if !value.is_empty() && self.config.tags.confirm.iter().any(|t| t.to_lowercase() == kind) {
            // TAGS_CONFIRM compared without regard to case (TMDA compared as written).
            return self.confirm_accept(&value);
        }
        if let Some(outcome) = self.filter(&senders)? {
            return Ok(outcome);
        }
        let tags = &self.config.tags;
        let is = |list: &[String]| !kind.is_empty() && list.iter().any(|t| t.to_lowercase() == kind);
        if is(&tags.dated) {
            return self.dated(&value);
        }
        if is(&tags.sender) {
            return self.sender_tag(&value);
        }
        if is(&tags.keyword) {
            return self.keyword_tag(&value);
        }
        let a = self.inc.action_incoming;
        self.default_action(a, "action_incoming", "bounce_incoming.txt", None)
    }

    /// `PENDING_CLEANUP_ODDS`: now and then, expired held messages are removed.
    fn maybe_clean_pending(&mut self) -> Result<(), IncomingError> {
        let odds = self.inc.pending_cleanup_odds;
        if odds <= 0.0 {
            return Ok(());
        }
        let draw = (crate::os::random_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let forced = (self.world.env)("TMDA_PENDING_CLEANUP").is_some_and(|v| v == "1");
        if draw >= odds && !forced {
            return Ok(());
        }
        let q = self.queue()?;
        if !q.exists() {
            return Ok(());
        }
        let cleaned = q.cleanup(self.inc.pending_lifetime.seconds(), self.world.now)?;
        if let Some(list) = self.inc.pending_delete_append.clone() {
            for r in &cleaned.removed {
                if !r.return_path.is_empty() {
                    pending::append_address(&list, &r.return_path)?;
                }
            }
        }
        Ok(())
    }

    /// The incoming filter. `None` when no rule decided.
    fn filter(&mut self, senders: &[String]) -> Result<Option<Outcome>, IncomingError> {
        let config = self.config;
        let lookup = |n: &str| config.lookup(n);
        let filter = crate::filter::parse_file_for(Direction::Incoming, &self.inc.filter_incoming, &lookup)?;
        if filter.rules.is_empty() {
            return Ok(None);
        }
        let body = FilterBody {
            msg: self.msg,
            prefix: Default::default(),
        };
        let head = self.msg.header.to_bytes();
        let mut headers = String::from_utf8_lossy(&head).into_owned();
        if head.ends_with(b"\r\n") {
            // Rules see LF line ends, as TMDA's did.
            headers = headers.replace("\r\n", "\n");
        }
        let senders: Vec<&str> = senders.iter().map(String::as_str).collect();
        let recipient = [self.env.recipient_address.as_str()];
        let found = filter.first_match_in(&Subject {
            direction: Direction::Incoming,
            recipients: &recipient,
            senders: &senders,
            message: Some(crate::filter::incoming::MessageView::new(
                &headers,
                &body,
                self.msg.size(),
            )),
        })?;
        let Some(m) = found else { return Ok(None) };
        let Then::Dispose(d) = m.then else { return Ok(None) };
        self.dispose(&d, &m.description).map(Some)
    }

    fn dispose(&mut self, d: &Disposition, rule: &str) -> Result<Outcome, IncomingError> {
        let with_option = |word: &str| match &d.option {
            Some(o) => format!("{word} ({rule}={o})"),
            None => format!("{word} ({rule})"),
        };
        match d.kind {
            Disposal::Accept => {
                let text = match &d.option {
                    Some(_) => with_option("DELIVER"),
                    None => format!("OK ({rule})"),
                };
                self.deliver(&text, d.option.as_deref())
            }
            Disposal::Bounce => {
                if let Some(cc) = self.inc.filter_bounce_cc.clone() {
                    self.carbon_copy(&cc)?;
                }
                let text = with_option("BOUNCE");
                self.log(&text)?;
                let template = d.option.clone().unwrap_or_else(|| "bounce_incoming.txt".into());
                self.respond(Kind::Bounce, &template, None)?;
                Ok(Outcome::Stopped)
            }
            Disposal::Drop => {
                if let Some(cc) = self.inc.filter_drop_cc.clone() {
                    self.carbon_copy(&cc)?;
                }
                self.log(&format!("DROP ({rule})"))?;
                Ok(Outcome::Stopped)
            }
            Disposal::Confirm => {
                self.log(&with_option("CONFIRM"))?;
                let template = d.option.clone().unwrap_or_else(|| "confirm_request.txt".into());
                self.challenge(&template)
            }
            Disposal::Hold => {
                self.log(&format!("HOLD ({rule})"))?;
                self.hold()
            }
        }
    }

    /// An `ACTION_*` setting's action, with the reason logged and its template.
    fn default_action(
        &mut self,
        a: Action,
        reason: &str,
        bounce_template: &str,
        shown_recipient: Option<String>,
    ) -> Result<Outcome, IncomingError> {
        let text = format!("{} {reason}", a.log_word());
        match a {
            Action::Accept => self.deliver(&text, None),
            Action::Drop => {
                self.log(&text)?;
                Ok(Outcome::Stopped)
            }
            Action::Bounce => {
                self.log(&text)?;
                self.respond(Kind::Bounce, bounce_template, shown_recipient)?;
                Ok(Outcome::Stopped)
            }
            Action::Hold => {
                self.log(&text)?;
                self.hold()
            }
            Action::Confirm => {
                self.log(&text)?;
                self.challenge("confirm_request.txt")
            }
        }
    }

    fn dated(&mut self, value: &str) -> Result<Outcome, IncomingError> {
        let parts: Vec<&str> = value.split('.').collect();
        let now = self.world.now;
        let t = self.tagger()?.clone();
        let good_mac = parts.len() == 2 && {
            let expected = tag::hex_mac(&t.key, t.hmac_bytes, &[parts[0].as_bytes()]);
            tag::mac_matches(parts[1], &expected)
        };
        let expiry = parts.first().and_then(|p| p.parse::<u64>().ok());
        match (good_mac, expiry) {
            (true, Some(exp)) if exp >= now => {
                let text = format!("OK good_dated_cookie ({})", crate::clock::rfc2822(exp));
                self.deliver(&text, None)
            }
            (true, Some(exp)) => {
                let (a, key) = self.inc.action_expired_dated.choose(now - exp);
                let reason = match key {
                    Some(k) => format!("ACTION_EXPIRED_DATED/{k} ({})", crate::clock::rfc2822(exp)),
                    None => format!("ACTION_EXPIRED_DATED ({})", crate::clock::rfc2822(exp)),
                };
                self.default_action(a, &reason, "bounce_expired_dated.txt", None)
            }
            _ => {
                let a = self.inc.action_fail_dated;
                self.default_action(a, "action_fail_dated", "bounce_fail_dated.txt", None)
            }
        }
    }

    fn sender_tag(&mut self, value: &str) -> Result<Outcome, IncomingError> {
        let t = self.tagger()?.clone();
        let sender = self.env.sender.to_lowercase();
        // The sender, its domain and each parent domain (TMDA accepted all of them).
        let mut candidates = vec![sender.clone()];
        if let Some((_, dom)) = sender.rsplit_once('@') {
            let labels: Vec<&str> = dom.split('.').collect();
            for i in 0..labels.len() {
                candidates.push(labels[i..].join("."));
            }
        }
        let ok = candidates
            .iter()
            .any(|c| tag::mac_matches(value, &tag::hex_mac(&t.key, t.hmac_bytes, &[c.as_bytes()])));
        if ok {
            return self.deliver("OK good_sender_cookie", None);
        }
        let a = self.inc.action_fail_sender;
        self.default_action(a, "action_fail_sender", "bounce_fail_sender.txt", None)
    }

    fn keyword_tag(&mut self, value: &str) -> Result<Outcome, IncomingError> {
        let t = self.tagger()?.clone();
        let (keyword, mac) = match value.rsplit_once('.') {
            Some((k, m)) => (k.to_string(), m.to_string()),
            None => (String::new(), value.to_string()),
        };
        let expected = tag::hex_mac(&t.key, t.hmac_bytes, &[keyword.as_bytes()]);
        if tag::mac_matches(&mac, &expected) {
            return self.deliver(&format!("OK good_keyword_cookie \"{keyword}\""), None);
        }
        let a = self.inc.action_fail_keyword;
        self.default_action(a, "action_fail_keyword", "bounce_fail_keyword.txt", None)
    }

    /// `TIMESTAMP.PID.MAC` checked against `keyword` (`accept` or `done`).
    fn confirm_cookie(&mut self, value: &str, keyword: &str) -> Result<Option<MessageId>, IncomingError> {
        let parts: Vec<&str> = value.trim().split('.').collect();
        if parts.len() != 3 {
            return Ok(None);
        }
        let t = self.tagger()?.clone();
        let expected = tag::confirm_mac(&t.key, t.hmac_bytes, parts[0], parts[1], Some(keyword));
        if !tag::mac_matches(&parts[2].to_lowercase(), &expected) {
            return Ok(None);
        }
        Ok(MessageId::parse(&format!("{}.{}", parts[0], parts[1])).ok())
    }

    /// A released message coming back: deliver it and take it off the queue. `None`
    /// goes on with the filter (the held copy is gone: see the man page).
    fn confirm_done(&mut self, value: &str) -> Result<Option<Outcome>, IncomingError> {
        if value.trim().split('.').count() != 3 {
            let a = self.inc.action_invalid_confirmation;
            return self
                .default_action(
                    a,
                    "action_invalid_confirmation",
                    "bounce_invalid_confirmation.txt",
                    None,
                )
                .map(Some);
        }
        let Some(id) = self.confirm_cookie(value, "done")? else {
            self.log("CONFIRM bad_confirm_done_cookie")?;
            return self.challenge("confirm_request.txt").map(Some);
        };
        let q = self.queue()?;
        // Held while we deliver, so a second copy arriving at once waits, then finds it gone.
        let stored = match q.lock(id) {
            Ok(s) => s,
            Err(pending::PendingError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.header.remove_all("X-TMDA-Confirm-Done");
        let outcome = self.deliver("OK good_confirm_done_cookie", None)?;
        match stored.delete() {
            Ok(()) | Err(pending::PendingError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Some(outcome))
    }

    /// A reply to a confirm address: whitelist, notify, release the held message.
    fn confirm_accept(&mut self, value: &str) -> Result<Outcome, IncomingError> {
        let Some(id) = self.confirm_cookie(value, "accept")? else {
            let a = self.inc.action_invalid_confirmation;
            let shown = Some(self.env.recipient_address.clone());
            return self.default_action(
                a,
                "action_invalid_confirmation",
                "bounce_invalid_confirmation.txt",
                shown,
            );
        };
        let q = self.queue()?;
        let stored = match q.open(id) {
            Ok(s) => s,
            Err(pending::PendingError::NotFound(_)) => {
                let a = self.inc.action_missing_pending;
                let shown = Some(self.env.recipient_address.clone());
                return self.default_action(a, "action_missing_pending", "bounce_missing_pending.txt", shown);
            }
            Err(e) => return Err(e.into()),
        };
        self.log(&format!("CONFIRM accept {id}"))?;
        let address = envelope::confirm_append_address(
            stored.header().get("X-Primary-Address").as_deref(),
            &stored.return_path(),
            self.inc.primary_address_match,
            &self.config.recipient_delimiter,
        );
        for list in [self.inc.confirm_append.clone(), self.inc.pending_release_append.clone()]
            .into_iter()
            .flatten()
        {
            if address.is_empty() {
                return Err(IncomingError::Other(format!("{id} has no Return-Path header")));
            }
            if pending::append_address(&list, &address)? && Some(&list) == self.inc.confirm_append.as_ref() {
                self.log(&format!("CONFIRM_APPEND {}", list.display()))?;
            }
        }
        if let Some(cc) = self.inc.confirm_accept_cc.clone() {
            self.carbon_copy(&cc)?;
        }
        if self.inc.confirm_accept_notify {
            if self.opts.discard {
                // -d discards everything, acceptance notices too, as TMDA (the release with them).
                return Ok(Outcome::Stopped);
            }
            let confirm_address = self.env.recipient_address.clone();
            self.respond(Kind::Accept, "confirm_accept.txt", Some(confirm_address))?;
        }
        self.release(&stored)?;
        Ok(Outcome::Stopped)
    }

    /// Re-send a held message to its recipient with TMDA's released-message fields.
    /// The held copy stays until it comes back with its done cookie.
    fn release(&mut self, stored: &pending::Stored) -> Result<(), IncomingError> {
        let t = self.tagger()?.clone();
        let now = self.world.now;
        let transport = self.transport()?;
        send_release(stored, &t, now, ReleaseMode::Confirmed, None, transport.as_mut())
    }

    fn transport(&mut self) -> Result<&mut Box<dyn Transport>, IncomingError> {
        if self.transport.is_none() {
            self.transport = Some((self.world.transport)()?);
        }
        Ok(self.transport.as_mut().expect("set above"))
    }

    fn send(&mut self, sender: &str, recipient: &str, header: &[u8], msg: &Message) -> Result<(), IncomingError> {
        let sender = if sender == "<>" { "" } else { sender };
        let copy = Copy {
            sender,
            recipient,
            header,
            message: msg,
            utf8: !recipient.is_ascii() || !sender.is_ascii(),
        };
        self.transport()?.send(&copy).map_err(|source| IncomingError::Send {
            to: recipient.to_string(),
            source,
        })
    }

    /// `CONFIRM_CC`, `FILTER_BOUNCE_CC`, ...: the message as received, from its sender.
    fn carbon_copy(&mut self, to: &str) -> Result<(), IncomingError> {
        let header = self.msg.header.to_block();
        let sender = self.env.sender.clone();
        let msg = self.msg;
        self.send(&sender, to, &header, msg)?;
        self.log(&format!("CC {to}"))
    }

    /// Deliver with the rule's instruction or `DELIVERY` (`-p`: to standard output).
    fn deliver(&mut self, log_text: &str, instruction: Option<&str>) -> Result<Outcome, IncomingError> {
        let text = if self.opts.print {
            let (word, rest) = log_text.split_once(' ').unwrap_or((log_text, ""));
            format!("{word} [filtered to stdout] {rest}").trim_end().to_string()
        } else {
            log_text.to_string()
        };
        self.log(&text)?;
        let text_instruction = match (self.opts.print, instruction) {
            (true, _) => "_filter_".to_string(),
            (false, Some(i)) => i.to_string(),
            (false, None) => self.inc.delivery.clone().ok_or_else(|| {
                IncomingError::Config(crate::config::ConfigError::Setting {
                    name: "DELIVERY".into(),
                    origin: crate::config::Origin::Default,
                    message: "must be set (where tmda filter delivers your mail, e.g. \"~/Maildir/\")".into(),
                })
            })?,
        };
        if text_instruction == "_qok_" && self.config.mail_transfer_agent == "qmail" {
            return Ok(Outcome::QmailOk);
        }
        let instr = mailbox::Instruction::parse(&text_instruction, &self.world.home)?;
        let header = self.header.to_block();
        let mut cx = mailbox::Context::new(
            self.world.now,
            crate::os::hostname().unwrap_or_else(|| "localhost".into()),
        );
        cx.env = vec![
            ("SENDER".into(), self.env.sender.clone()),
            ("RECIPIENT".into(), self.env.recipient.clone()),
            ("TMDA_RECIPIENT".into(), self.env.recipient_address.clone()),
        ];
        let mut body = ChunkReader::new(self.msg);
        let m = mailbox::Message {
            header: &header,
            body: &mut body,
            from_line: self.from_line,
        };
        match mailbox::deliver(&instr, m, &cx, self.world.stdout)? {
            mailbox::Delivered::Forward(to) => {
                // Sent on with the envelope sender as the MTA gave it.
                let sender = (self.world.env)("SENDER").unwrap_or_default();
                let msg = self.msg;
                self.send(&sender, &to, &header, msg)?;
            }
            mailbox::Delivered::Program { stdout } => {
                let _ = self.world.stdout.write_all(&stdout);
            }
            mailbox::Delivered::QmailOk => return Ok(Outcome::QmailOk),
            _ => {}
        }
        Ok(Outcome::Delivered)
    }

    fn mail_id(&self) -> MessageId {
        MessageId::new(self.world.now, self.world.pid)
    }

    fn insert_pending(&mut self) -> Result<MessageId, IncomingError> {
        let id = self.mail_id();
        let q = self.queue()?;
        // The release is sent from the held copy's Return-Path, and a confirmation
        // whitelists it, so it must be the envelope sender's. An MTA that adds none
        // (TMDA then failed for ever at the confirmation), or a sender who wrote their
        // own (`<*@*>`: under sendmail nothing adds one), gets the envelope's on top.
        let own = self.msg.header.get("Return-Path").map(|v| parseaddr(&v).1);
        let envelope = if self.env.sender == "<>" { "" } else { &self.env.sender };
        if own.is_some_and(|a| a.eq_ignore_ascii_case(envelope)) {
            q.insert_message(id, &self.env.recipient_address, self.msg)?;
        } else {
            let mut h = self.msg.header.clone();
            let rp = if self.env.sender == "<>" {
                "<>".to_string()
            } else {
                format!("<{}>", self.env.sender)
            };
            h.prepend("Return-Path", &rp);
            q.insert(
                id,
                &self.env.recipient_address,
                &h.to_bytes(),
                ChunkReader::new(self.msg),
            )?;
        }
        Ok(id)
    }

    fn hold(&mut self) -> Result<Outcome, IncomingError> {
        if self.opts.discard {
            return Ok(Outcome::Stopped);
        }
        self.held(|r, id| {
            if let Some(cc) = r.inc.confirm_cc.clone() {
                r.carbon_copy(&cc)?;
            }
            r.log(&format!("HOLD pending {id}"))
        })
    }

    fn challenge(&mut self, template: &str) -> Result<Outcome, IncomingError> {
        if self.opts.discard {
            return Ok(Outcome::Stopped);
        }
        // The key is needed for the confirm address: a missing key fails before anything is held.
        self.tagger()?;
        let template = template.to_string();
        self.held(|r, id| {
            if let Some(cc) = r.inc.confirm_cc.clone() {
                r.carbon_copy(&cc)?;
            }
            r.log(&format!("CONFIRM pending {id}"))?;
            r.respond(Kind::Request, &template, None)
        })
    }

    /// Hold the message, then do `then`; if that fails, the held copy is taken back out,
    /// so the MTA's retry does not hold it twice.
    fn held(
        &mut self,
        then: impl FnOnce(&mut Self, MessageId) -> Result<(), IncomingError>,
    ) -> Result<Outcome, IncomingError> {
        let id = self.insert_pending()?;
        if let Err(e) = then(self, id) {
            let _ = self.queue().map(|q| q.delete(id));
            return Err(e);
        }
        Ok(Outcome::Stopped)
    }

    /// The confirm address for the message held under this run's id.
    fn confirm_address(&mut self) -> Result<String, IncomingError> {
        let base = self
            .config
            .confirm_address
            .clone()
            .unwrap_or_else(|| self.env.recipient_address.clone());
        let (now, pid) = (self.world.now, self.world.pid);
        self.tagger()?
            .confirm(&base, now, pid, Some("accept"))
            .map_err(|e| IncomingError::Other(format!("making the confirm address: {e}")))
    }

    /// Send an auto-response (unless `-d`, or the gate says no: then `NOREPLY`).
    fn respond(&mut self, kind: Kind, template: &str, shown_recipient: Option<String>) -> Result<(), IncomingError> {
        if self.opts.discard {
            return Ok(());
        }
        let tags = response::gate::ConfirmTags {
            delimiter: &self.config.recipient_delimiter,
            tags: &self.config.tags.confirm,
        };
        let header = &self.msg.header;
        let lookup = |n: &str| header.get_source(n);
        if let Some(no) = response::gate::check_message(&self.env.sender, &lookup, &tags) {
            return self.log(&format!("NOREPLY {no}"));
        }
        let max = self.inc.max_autoresponses_per_day;
        if max > 0
            && let Some(no) = response::gate::check_rate(&self.inc.response_dir, &self.env.sender, max, self.world.now)
                .map_err(io(format!("RESPONSE_DIR {}", self.inc.response_dir.display())))?
        {
            return self.log(&format!("NOREPLY {no}"));
        }
        let mut vars = self.template_vars(kind, template, shown_recipient)?;
        let env_dir = self
            .opts
            .template_dir
            .clone()
            .or_else(|| (self.world.env)("TMDA_TEMPLATE_DIR").map(PathBuf::from));
        let search = response::Search {
            env_dir: env_dir.as_deref(),
            template_dir: self.inc.template_dir.as_deref(),
            match_sender: self.inc.template_dir_match_sender.then_some(self.env.sender.as_str()),
            match_recipient: self
                .inc
                .template_dir_match_recipient
                .then_some(self.env.recipient_address.as_str()),
            delimiter: &self.config.recipient_delimiter,
            site_dir: Some(Path::new("/etc/tmda")),
        };
        let dirs = response::template::search_dirs(&search);
        let t = response::template::find(template, &dirs, Some(&self.world.home))?;
        vars.insert("templatefile".into(), t.origin.clone());
        let original_header = self.msg.header.to_bytes();
        let original = response::Original {
            header: &original_header,
            body: self.msg,
        };
        let config = self.config;
        let needed: Vec<String> = [
            "original_message",
            "original_message_headers",
            "original_message_body",
            "original_message_size",
        ]
        .iter()
        .filter(|n| t.text.contains(&format!("%({n})")))
        .map(|n| n.to_string())
        .collect();
        for n in needed {
            if let Some(v) = response::original_var(&original, &n) {
                vars.insert(n, v.map_err(io("reading the message"))?);
            }
        }
        let lookup_var = |n: &str| -> Option<String> {
            if let Some(v) = vars.get(n) {
                return Some(v.clone());
            }
            // Settings only (never the environment), and never a secret: TMDA handed
            // templates its whole namespace, the crypt key included.
            if crate::config::is_secret_name(n) || n == "CRYPT_KEY" {
                return None;
            }
            match n {
                // Empty for an account without a GECOS name, as in TMDA; `lookup` would
                // call that unset, and every challenge would fail (75) for ever.
                "FULLNAME" => Some(config.fullname().to_string()),
                "USERNAME" | "HOSTNAME" => config.lookup(n),
                _ => config.var(n).map(|v| v.py_str()),
            }
        };
        let rendered = t.render(&lookup_var)?;
        let settings = response::Settings {
            sender_copy: response::SenderCopy::from_level(self.inc.autoresponse_include_sender_copy as i64),
            max_message_size: self.inc.confirm_max_message_size.unwrap_or(0),
            email_headers: self.inc.template_email_headers.clone(),
            encoded_headers: self.inc.template_encoded_headers.clone(),
            added_headers: self.inc.added_headers_server.clone(),
            purged_headers: self.inc.purged_headers_server.clone(),
            ..response::Settings::default()
        };
        let id_host = (self.world.env)("TMDAIDHOST")
            .or_else(|| (self.world.env)("QMAILIDHOST"))
            .unwrap_or_else(|| self.config.hostname().to_string());
        let id_tag = (self.world.env)("TMDAIDTAG").unwrap_or_else(|| "TMDA".into());
        let stamp = response::Stamp {
            date: crate::clock::rfc2822(self.world.now),
            message_id: response::mime::message_id(self.world.now, self.world.pid, &id_tag, &id_host),
            boundary_token: crate::os::random_u64() >> 1,
        };
        let mut out = Vec::new();
        let to = self.env.sender.clone();
        response::compose(
            &response::Reply {
                kind,
                rendered: &rendered,
                origin: &t.origin,
                to: &to,
            },
            &original,
            &settings,
            &stamp,
            &mut out,
        )?;
        let env = response::envelope(
            &self.inc.bounce_env_sender,
            &to,
            &self.config.mail_transfer_agent,
            self.config.mail_transport == crate::config::MailTransport::Sendmail,
        );
        let reply = Message::from_vec(out)?;
        let header = reply.header.to_block();
        self.send(&env.sender, &env.recipient, &header, &reply)?;
        if max > 0 {
            response::gate::record(&self.inc.response_dir, &self.env.sender, self.world.now, self.world.pid)
                .map_err(io(format!("RESPONSE_DIR {}", self.inc.response_dir.display())))?;
        }
        Ok(())
    }

    /// The variables TMDA offers templates (see `response`'s table).
    fn template_vars(
        &mut self,
        kind: Kind,
        template: &str,
        shown_recipient: Option<String>,
    ) -> Result<std::collections::BTreeMap<String, String>, IncomingError> {
        let mut v = std::collections::BTreeMap::new();
        let recipient = shown_recipient.unwrap_or_else(|| self.env.recipient_address.clone());
        let (local, domain) = recipient.split_once('@').unwrap_or((recipient.as_str(), ""));
        v.insert("recipient_local".into(), local.to_string());
        v.insert("recipient_domain".into(), domain.to_string());
        v.insert("recipient_address".into(), recipient.clone());
        v.insert("envelope_sender".into(), self.env.sender.clone());
        let xp = self
            .msg
            .header
            .get("X-Primary-Address")
            .map(|p| crate::message::address::parseaddr(&p).1)
            .unwrap_or_default();
        v.insert("x_primary_address".into(), xp);
        v.insert("confirm_append_address".into(), self.append_address.clone());
        v.insert(
            "subject".into(),
            self.msg.header.get_source("Subject").unwrap_or_else(|| "None".into()),
        );
        v.insert(
            "pending_lifetime".into(),
            response::format_timeout(&self.inc.pending_lifetime.to_string(), &response::DEFAULT_UNITS),
        );
        v.insert(
            "mode".into(),
            match kind {
                Kind::Request => "request",
                Kind::Accept => "accept",
                Kind::Bounce => "bounce",
            }
            .into(),
        );
        v.insert("template".into(), template.to_string());
        if kind == Kind::Request {
            let confirm = self.confirm_address()?;
            v.insert("confirm_accept_address".into(), confirm.clone());
            if let Some(url) = self.inc.cgi_url.clone() {
                let t = self.tagger()?.clone();
                let cookie = tag::confirm_cookie(&t.key, t.hmac_bytes, self.world.now, self.world.pid, Some("accept"));
                // SAFETY: geteuid has no preconditions and cannot fail.
                let euid = unsafe { libc::geteuid() };
                let u = if self.inc.cgi_virtualuser {
                    format!("{url}?{euid}&{}&{cookie}", self.env.recipient_address)
                } else {
                    format!("{url}?{euid}.{cookie}")
                };
                v.insert("confirm_accept_url".into(), u);
            }
        }
        let timeout = self.config.dated_timeout.clone();
        if self.inc.dated_template_vars {
            let t = self.tagger()?.clone();
            v.insert(
                "dated_timeout".into(),
                response::format_timeout(&timeout.to_string(), &response::DEFAULT_UNITS),
            );
            let expires = self.world.now + timeout.seconds();
            v.insert("dated_expire_date".into(), crate::clock::rfc2822(expires));
            if let Ok(a) = t.dated(&self.env.recipient_address, self.world.now, timeout.seconds()) {
                v.insert("dated_recipient_address".into(), a);
            }
        }
        if self.inc.sender_template_vars {
            let t = self.tagger()?.clone();
            if let Ok(a) = t.sender(&self.env.recipient_address, &self.env.sender) {
                v.insert("sender_recipient_address".into(), a);
            }
        }
        Ok(v)
    }
}

/// Release a held message: rewrite its header as TMDA does (`Old-Delivered-To`, the done
/// cookie, `X-TMDA-Confirmed` or `X-TMDA-Released`) and send it to its recipient (or
/// `recipient`) from its `Return-Path`, through `transport`. Shared by `tmda filter`
/// (a confirmation) and `tmda pending -r`. The held copy is not removed here: it goes
/// when the released copy comes back through the filter with its done cookie.
pub fn send_release(
    stored: &pending::Stored,
    tagger: &Tagger,
    now: u64,
    mode: ReleaseMode<'_>,
    recipient: Option<&str>,
    transport: &mut dyn Transport,
) -> Result<(), IncomingError> {
    let id = stored.id();
    let done = tag::confirm_cookie(&tagger.key, tagger.hmac_bytes, id.timestamp(), id.pid(), Some("done"));
    let rel = stored.release(&done, &crate::clock::rfc2822(now), mode, recipient)?;
    // The body is spooled again (memory when small, else an unlinked temporary file),
    // so a big held message is never held in memory.
    let whole = rel.header.to_block();
    let spool = std::io::Cursor::new(whole).chain(stored.body());
    // Cut like the filter's input: a held header near the limit plus the release's
    // fields may pass it.
    let msg = Message::read_cut(spool)?;
    let header = msg.header.to_block();
    let sender = if rel.sender == "<>" { "" } else { rel.sender.as_str() };
    let copy = Copy {
        sender,
        recipient: &rel.recipient,
        header: &header,
        message: &msg,
        utf8: !rel.recipient.is_ascii() || !sender.is_ascii(),
    };
    transport.send(&copy).map_err(|source| IncomingError::Send {
        to: rel.recipient.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_per_mta() {
        assert_eq!(exit_status("qmail", Outcome::Delivered, false), 99);
        assert_eq!(exit_status("qmail", Outcome::Stopped, false), 99);
        assert_eq!(exit_status("qmail", Outcome::QmailOk, false), 0);
        assert_eq!(exit_status("postfix", Outcome::Delivered, false), 0);
        assert_eq!(exit_status("postfix", Outcome::Stopped, false), 0);
        assert_eq!(exit_status("exim", Outcome::Stopped, true), 99);
        assert_eq!(exit_status("qmail", Outcome::Delivered, true), 0);
    }

    #[test]
    fn input_keeps_the_from_line_and_survives_empty_input() {
        let (from, msg) = read_input(&b"From bob@x Sat Dec  5 10:00:00 2026\nSubject: hi\n\nbody\n"[..]).unwrap();
        assert_eq!(from.as_deref(), Some(&b"From bob@x Sat Dec  5 10:00:00 2026\n"[..]));
        assert_eq!(msg.header.get("Subject").as_deref(), Some("hi"));
        let (from, msg) = read_input(&b""[..]).unwrap();
        assert!(from.is_none());
        assert_eq!(msg.body_len(), 0);
        let long = format!("From {}\n", "x".repeat(5000));
        assert!(read_input(long.as_bytes()).is_err());
    }
}
