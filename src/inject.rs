//! The outgoing pipeline shared by `tmda sendmail` and `tmda ofmipd`: decide each
//! recipient's tag with the outgoing filter, rewrite the header, hand the copy to the
//! MTA. This is TMDA's `tmda-inject`.
//!
//! Once per message: the sender identity (Resent-From or From, else FULLNAME and
//! USERNAME@HOSTNAME), the recipients (arguments, else `$QMAILRCPTS`, else To/Cc/Bcc/
//! Apparently-To or their Resent- forms), an `X-TMDA` override (or `X-TMDA` at the
//! start of the Subject with X_TMDA_IN_SUBJECT), a Received field, Date and
//! Message-ID when missing (or forced by TMDAINJECT), X-Delivery-Agent and
//! MAIL_FOLLOWUP_TO. Then one copy per recipient, each from the same base header:
//! From (or Resent-From) and the envelope sender tagged per the matching rule,
//! Mail-Followup-To tagged, X-TMDA-Fingerprint, ADDED_HEADERS_CLIENT,
//! PURGED_HEADERS_CLIENT and the rule's extra tagged headers; LOGFILE_OUTGOING.
//!
//! Every copy is decided ([`Injector::plan`]) before any is sent, so a bad rule stops
//! the whole message; each copy's header is rendered ([`Plan::render`]) only when the
//! copy goes out, so memory holds one header however many recipients there are.
//!
//! Deliberate differences from tmda-inject: header fields we do not change stay byte
//! for byte where they were (TMDA re-folded all of them and moved changed ones to the
//! end); each copy starts from the original header, so one recipient's tagged
//! Reply-To never removes another's; an unknown action, a malformed X-TMDA or an
//! empty message is an error instead of an untagged or dropped message; X-TMDA may not
//! ask for a shell= action (the header travels with the message); an envelope address
//! with a control character is refused before anything is sent.

use std::cell::OnceCell;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::address::{Kind, Tagger, tag};
use crate::config::{Config, ConfigError, FollowupLists, HeaderStyle};
use crate::exit::Sysexit;
use crate::filter::{Action, Actions, Cookie, Filter, MatchError};
use crate::interval::Interval;
use crate::key::{CryptKey, KeyError};
use crate::message::address::{formataddr, getaddresses, parseaddr};
use crate::message::{Header, LineEndings, Message};
use crate::transport::{Copy, Transport};

/// What the caller knows beyond the message.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Recipients given as arguments; empty means "from the header".
    pub recipients: Vec<String>,
    /// The Received field value to prepend (ofmipd passes its own).
    pub received: Option<String>,
    /// A name to use when neither the From field nor FULLNAME gives one (`sendmail -F`).
    pub fallback_fullname: Option<String>,
    /// The submitting client asked for SMTPUTF8 (ofmipd, which tells global mode's
    /// `tmda sendmail` children with `$TMDA_OFMIPD_SMTPUTF8=1`).
    pub smtputf8: bool,
    /// ofmipd's `--restrict-sender`: the From address and the envelope sender must be
    /// the user's own, or the message is refused before any copy is sent.
    pub restrict_sender: Option<SenderRestriction>,
}

/// What `--restrict-sender` knows beyond the user's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderRestriction {
    /// MAIL FROM as the client gave it ("" for the null sender, which is allowed).
    pub envelope_sender: String,
    /// Addresses (or `@domain`) the sender map gives this login.
    pub extra: Vec<String>,
}

impl SenderRestriction {
    /// Whether `addr` is one of the user's own: USERNAME@HOSTNAME or a tagged form of it
    /// (USERNAME, RECIPIENT_DELIMITER, anything, @HOSTNAME), an entry of the config's
    /// OFMIPD_ALLOWED_SENDERS, or of the sender map; an entry `@domain` allows the
    /// whole domain. Compared without regard to case.
    pub fn allows(&self, cfg: &Config, addr: &str) -> bool {
        let addr = addr.to_lowercase();
        let Some((local, domain)) = addr.rsplit_once('@') else {
            return false;
        };
        let user = cfg.username().to_lowercase();
        let host = cfg.hostname().to_lowercase();
        if domain == host
            && (local == user
                || (!cfg.recipient_delimiter.is_empty()
                    && local
                        .strip_prefix(&user)
                        .is_some_and(|rest| rest.starts_with(&cfg.recipient_delimiter.to_lowercase()))))
        {
            return true;
        }
        let listed = |entry: &str| {
            let entry = entry.trim().to_lowercase();
            match entry.strip_prefix('@') {
                Some(d) => d == domain,
                None => entry == addr,
            }
        };
        let from_config: Vec<String> = match cfg.var("OFMIPD_ALLOWED_SENDERS") {
            Some(crate::config::Value::Str(s)) => vec![s.clone()],
            Some(crate::config::Value::List(v) | crate::config::Value::Tuple(v)) => v
                .iter()
                .filter_map(|x| match x {
                    crate::config::Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        };
        from_config.iter().any(|e| listed(e)) || self.extra.iter().any(|e| listed(e))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Filter(#[from] MatchError),
    #[error("{0}")]
    Action(String),
    #[error("no recipients: none were given as arguments and the message has no To, Cc or Bcc addresses")]
    NoRecipients,
    /// `--restrict-sender`: the message claims an address that is not the user's.
    #[error("sender address {address} is not one of {user}'s own")]
    SenderNotAllowed { address: String, user: String },
    /// Every copy was tried and at least one failed: each recipient's fate.
    #[error("{0}")]
    Delivery(Fates),
    /// The pipeline was asked not to block ([`Injector::set_inline`]) and needs to run
    /// a program or write a file: run it again where blocking is allowed.
    #[error("this message needs a blocking step (a shell action or a file written)")]
    WouldBlock,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub use crate::transport::{Fate, Fates};

impl InjectError {
    pub fn exit_code(&self) -> Sysexit {
        match self {
            InjectError::Config(_) | InjectError::Filter(_) => Sysexit::Config,
            InjectError::Key(k) => k.exit_code(),
            InjectError::Action(_) | InjectError::NoRecipients => Sysexit::DataErr,
            InjectError::SenderNotAllowed { .. } => Sysexit::NoPerm,
            InjectError::Delivery(fates) => fates.exit_code(),
            InjectError::Io { source, .. } => crate::exit::io_exit_code(source),
            InjectError::WouldBlock => Sysexit::Software,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.exit_code() == Sysexit::TempFail
    }
}

/// `--restrict-sender`: every From address (Resent-From when resending; Sender too) and
/// the envelope sender must be the user's own.
fn check_sender(cfg: &Config, msg: &Message, rule: &SenderRestriction) -> Result<(), InjectError> {
    let resending = msg.header.contains("resent-from");
    let fields: &[&str] = if resending {
        &["resent-from", "resent-sender"]
    } else {
        &["from", "sender"]
    };
    let values: Vec<String> = fields.iter().flat_map(|f| msg.header.get_all(f)).collect();
    let mut claimed: Vec<String> = getaddresses(&values).into_iter().map(|(_, a)| a).collect();
    if !rule.envelope_sender.is_empty() {
        claimed.push(rule.envelope_sender.clone());
    }
    match claimed.into_iter().find(|a| !rule.allows(cfg, a)) {
        None => Ok(()),
        Some(address) => Err(InjectError::SenderNotAllowed {
            address,
            user: cfg.username().to_string(),
        }),
    }
}

/// Each copy that was handed off: (envelope sender, recipient).
pub type Report = Vec<(String, String)>;

/// One copy, decided: its envelope and the fields its header gets. The header itself is
/// rendered by [`Plan::render`] when the copy is sent, so a message to a thousand
/// recipients holds one header, not a thousand.
#[derive(Debug, Clone)]
pub struct PlannedCopy {
    /// Envelope sender; empty for the null sender.
    pub sender: String,
    pub recipient: String,
    /// The copy needs SMTPUTF8 (the client asked for it, or an address is not ASCII).
    pub utf8: bool,
    /// From (or Resent-From) and Mail-Followup-To: set before the fingerprint is taken.
    tagged: Vec<(String, String)>,
    /// Fields the filter's `tag` rules set, last of all.
    custom: Vec<(String, String)>,
    /// How the copy's action was chosen, for LOGFILE_OUTGOING.
    log_action: String,
}

/// Every copy of one message, decided, with what rendering their headers needs.
#[derive(Debug)]
pub struct Plan {
    pub copies: Vec<PlannedCopy>,
    /// The message's header after the changes made once per message.
    header: Header,
    /// ADDED_HEADERS_CLIENT, sorted, and PURGED_HEADERS_CLIENT.
    added: Vec<(String, String)>,
    purged: Vec<String>,
    /// FINGERPRINT's names, and the key that signs them (None when not configured).
    fingerprint: Option<(Vec<String>, CryptKey)>,
    /// The fingerprint, once taken, when it is the same for every copy (it names no
    /// field a copy sets): the body is then read once, not once per recipient.
    shared_fingerprint: std::sync::OnceLock<Option<String>>,
    /// LOGFILE_OUTGOING is set: render its entries (dated `now`).
    log: bool,
    now: u64,
}

/// A copy's header block (ending with its blank line) and LOGFILE_OUTGOING entry.
#[derive(Debug)]
pub struct Rendered {
    pub header: Vec<u8>,
    pub log_entry: Option<String>,
}

/// The pipelined relay sends a plan's copies, rendering each header only when its copy goes.
impl crate::transport::Batch for Plan {
    type Error = InjectError;

    fn len(&self) -> usize {
        self.copies.len()
    }

    fn envelope(&self, i: usize) -> crate::transport::Envelope<'_> {
        let c = &self.copies[i];
        crate::transport::Envelope {
            sender: &c.sender,
            recipient: &c.recipient,
            utf8: c.utf8,
        }
    }

    fn render(&self, i: usize, msg: &Message) -> Result<Vec<u8>, InjectError> {
        Ok(Plan::render(self, &self.copies[i], msg)?.header)
    }
}

impl From<crate::transport::SendError<InjectError>> for InjectError {
    fn from(e: crate::transport::SendError<InjectError>) -> InjectError {
        match e {
            crate::transport::SendError::Spool(source) => InjectError::Io {
                path: "message spool".into(),
                source,
            },
            crate::transport::SendError::Render(e) => e,
            crate::transport::SendError::Delivery(f) => InjectError::Delivery(f),
        }
    }
}

impl Plan {
    /// The header of `copy`: the message's header with the copy's fields set, signed,
    /// added to and purged as the configuration says.
    pub fn render(&self, copy: &PlannedCopy, msg: &Message) -> Result<Rendered, InjectError> {
        let mut h = self.header.clone();
        for (k, v) in &copy.tagged {
            h.set(k, v);
        }
        if let Some((names, key)) = &self.fingerprint {
            let per_copy = names
                .iter()
                .any(|n| copy.tagged.iter().any(|(k, _)| k.eq_ignore_ascii_case(n)));
            let value = match self.shared_fingerprint.get() {
                Some(v) if !per_copy => v.clone(),
                _ => {
                    let v = fingerprint(&h, msg, names, key)?;
                    if !per_copy {
                        let _ = self.shared_fingerprint.set(v.clone());
                    }
                    v
                }
            };
            if let Some(v) = value {
                h.set("X-TMDA-Fingerprint", &v);
            }
        }
        for (k, v) in &self.added {
            h.set(k, v);
        }
        for name in &self.purged {
            h.remove_all(name);
        }
        for (k, v) in &copy.custom {
            h.set(k, v);
        }
        let log_entry = self.log.then(|| {
            log_entry(
                self.now,
                &h,
                &copy.sender,
                &copy.recipient,
                &copy.log_action,
                msg.size(),
            )
        });
        let header = h.to_block();
        Ok(Rendered { header, log_entry })
    }
}

/// The once-per-message results every copy starts from.
struct Base {
    header: Header,
    resending: bool,
    fullname: String,
    from_address: String,
    recipients: Vec<String>,
    /// Actions from X-TMDA (or the Subject), which replace the filter for every recipient.
    override_actions: Option<(Actions, String)>,
}

/// The pipeline for one configuration and filter.
pub struct Injector<'a> {
    pub config: &'a Config,
    pub filter: &'a Filter,
    pub now: u64,
    /// For Message-IDs; 0 means this process's.
    pub pid: u32,
    tagger: OnceCell<Tagger>,
    /// A key loaded once by a daemon and lent for each message.
    lent: Option<&'a Tagger>,
    /// Refuse steps that block (shell actions, BARE_APPEND) with [`InjectError::WouldBlock`].
    inline: bool,
}

impl<'a> Injector<'a> {
    pub fn new(config: &'a Config, filter: &'a Filter, now: u64) -> Injector<'a> {
        Injector {
            config,
            filter,
            now,
            pid: 0,
            tagger: OnceCell::new(),
            lent: None,
            inline: false,
        }
    }

    /// Planning on an async task: every step that would run a program or write a file
    /// fails with [`InjectError::WouldBlock`] before it has any effect, so the caller
    /// can plan again on a thread that may block. (Reading list files and the config
    /// stays allowed: local reads are as quick as the stat calls a cache check makes.)
    pub fn set_inline(&mut self, inline: bool) {
        self.inline = inline;
    }

    fn may_block(&self) -> Result<(), InjectError> {
        if self.inline {
            return Err(InjectError::WouldBlock);
        }
        Ok(())
    }

    /// Use an already loaded key (a daemon keeps it between messages).
    pub fn lend_tagger(&mut self, t: &'a Tagger) {
        self.lent = Some(t);
    }

    /// The key is read only when some copy needs a tag.
    fn tagger(&self) -> Result<&Tagger, InjectError> {
        if let Some(t) = self.lent {
            return Ok(t);
        }
        if let Some(t) = self.tagger.get() {
            return Ok(t);
        }
        let t = crate::address::Tagger::from_config(self.config)?;
        Ok(self.tagger.get_or_init(|| t))
    }

    /// Run the whole pipeline: every copy goes to `transport`, whatever became of the
    /// ones before it (TMDA stopped at the first failure, so later recipients were never
    /// tried); `Ok` only if all were accepted, else every recipient's fate.
    pub fn inject(&self, msg: &Message, opts: &Options, transport: &mut dyn Transport) -> Result<Report, InjectError> {
        let plan = self.plan(msg, opts)?;
        let mut report: Report = vec![];
        let mut fates = Vec::with_capacity(plan.copies.len());
        let result = (|| -> Result<(), InjectError> {
            for planned in &plan.copies {
                let rendered = plan.render(planned, msg)?;
                self.write_log(&rendered)?;
                let copy = Copy {
                    sender: &planned.sender,
                    recipient: &planned.recipient,
                    header: &rendered.header,
                    message: msg,
                    utf8: planned.utf8,
                };
                let failure = transport.send(&copy).err();
                if failure.is_none() {
                    report.push((planned.sender.clone(), planned.recipient.clone()));
                }
                fates.push(Fate {
                    recipient: planned.recipient.clone(),
                    failure,
                });
            }
            Ok(())
        })();
        transport.close();
        result?;
        if fates.iter().any(|f| f.failure.is_some()) {
            return Err(InjectError::Delivery(Fates(fates)));
        }
        Ok(report)
    }

    /// Decide every copy without sending any: a problem with one recipient's rule stops
    /// the message before anything left (TMDA would have sent the earlier ones).
    pub fn plan(&self, msg: &Message, opts: &Options) -> Result<Plan, InjectError> {
        if self.inline && self.config.logfile_outgoing.is_some() {
            return Err(InjectError::WouldBlock);
        }
        let cfg = self.config;
        if let Some(rule) = &opts.restrict_sender {
            check_sender(cfg, msg, rule)?;
        }
        let mut base = self.prepare(msg, opts)?;
        let recipients = std::mem::take(&mut base.recipients);
        let mut copies = Vec::with_capacity(recipients.len());
        for rcpt in &recipients {
            let mut copy = self.decide(&base, rcpt)?;
            envelope_address("recipient", &copy.recipient)?;
            envelope_address("sender", &copy.sender)?;
            copy.utf8 = opts.smtputf8 || !copy.sender.is_ascii() || !copy.recipient.is_ascii();
            copies.push(copy);
        }
        let fingerprint = if cfg.fingerprint.is_empty() {
            None
        } else {
            Some((cfg.fingerprint.clone(), self.tagger()?.key.clone()))
        };
        let mut added = cfg.added_headers_client.clone();
        added.sort();
        Ok(Plan {
            copies,
            header: base.header,
            added,
            purged: cfg.purged_headers_client.clone(),
            fingerprint,
            shared_fingerprint: Default::default(),
            log: cfg.logfile_outgoing.is_some(),
            now: self.now,
        })
    }

    /// LOGFILE_OUTGOING: append the copy's entry (under a lock, as writers may be many).
    fn write_log(&self, rendered: &Rendered) -> Result<(), InjectError> {
        let (Some(path), Some(entry)) = (&self.config.logfile_outgoing, &rendered.log_entry) else {
            return Ok(());
        };
        let f = open_locked(path, false)?;
        (&f).write_all(entry.as_bytes()).map_err(|e| io_error(path, e))
    }

    fn prepare(&self, msg: &Message, opts: &Options) -> Result<Base, InjectError> {
        let cfg = self.config;
        let mut header = msg.header.clone();
        let resending = header.contains("resent-from");
        let (name, addr) = parseaddr(
            &header
                .get(if resending { "resent-from" } else { "from" })
                .unwrap_or_default(),
        );
        let fullname = if !name.is_empty() {
            name
        } else if cfg.var("FULLNAME").is_none() && opts.fallback_fullname.is_some() {
            opts.fallback_fullname.clone().unwrap_or_default()
        } else {
            cfg.fullname().to_string()
        };
        let from_address = if addr.matches('@').count() == 1 {
            addr
        } else {
            cfg.default_address()
        };

        let recipients: Vec<String> = if !opts.recipients.is_empty() {
            opts.recipients.clone()
        } else if let Some(q) = cfg.env("QMAILRCPTS") {
            // qmail's qfilter: one recipient per line, each ending in a newline.
            let q = q.to_lowercase();
            let mut v: Vec<String> = q.split('\n').map(String::from).collect();
            v.pop();
            v.into_iter().filter(|s| !s.is_empty()).collect()
        } else {
            let names: &[&str] = if resending {
                &["resent-to", "resent-cc", "resent-bcc"]
            } else {
                &["to", "cc", "bcc", "apparently-to"]
            };
            let values: Vec<String> = names.iter().flat_map(|n| header.get_all(n)).collect();
            getaddresses(&values).into_iter().map(|(_, a)| a).collect()
        };
        if recipients.is_empty() {
            return Err(InjectError::NoRecipients);
        }

        let mut override_actions = None;
        if let Some(x) = header.get("x-tmda") {
            let words: Vec<&str> = x.split_whitespace().collect();
            if words.len() != 1 {
                return Err(InjectError::Action(format!(
                    "X-TMDA: {}: expected one action such as dated=5d, sender or kw=lists",
                    crate::exit::quote(&x)
                )));
            }
            let a = Action::parse(words[0]).map_err(|e| InjectError::Action(format!("X-TMDA: {e}")))?;
            refuse_shell_from_header(&a, "X-TMDA")?;
            override_actions = Some((Actions::single_from(a), format!("X-TMDA: {x}")));
            header.remove_all("x-tmda");
        }
        if cfg.x_tmda_in_subject
            && override_actions.is_none()
            && let Some(subject) = header.get("subject")
        {
            // Python's subject.split(None, 2): runs of white space separate the words.
            let (first, rest) = split_word(&subject);
            if first.eq_ignore_ascii_case("x-tmda") {
                let (word, rest) = split_word(rest);
                if word.is_empty() {
                    return Err(InjectError::Action(
                        "Subject: \"X-TMDA\" is not followed by an action".into(),
                    ));
                }
                let a = Action::parse(word).map_err(|e| InjectError::Action(format!("Subject: X-TMDA: {e}")))?;
                refuse_shell_from_header(&a, "Subject: X-TMDA")?;
                override_actions = Some((Actions::single_from(a), format!("X-TMDA: {word}")));
                header.set("Subject", rest);
            }
        }

        let received = match &opts.received {
            Some(r) => r.clone(),
            None => match cfg.env("TMDA_OFMIPD_RECEIVED") {
                Some(r) => r,
                None => format!(
                    "by {} (tmda-sendmail, from uid {}); {}",
                    crate::config::fqdn(),
                    // SAFETY: getuid has no preconditions and cannot fail.
                    unsafe { libc::getuid() },
                    crate::clock::rfc2822(self.now)
                ),
            },
        };
        header.prepend("Received", &received);
        if cfg.tmdainject.contains('d') || !header.contains("date") {
            header.set("Date", &crate::clock::rfc2822(self.now));
        }
        if cfg.tmdainject.contains('i') || !header.contains("message-id") {
            header.set("Message-ID", &self.message_id());
        }
        header.set(
            "X-Delivery-Agent",
            concat!("tmda/", env!("CARGO_PKG_VERSION"), " (TMDA 1.1.12 compatible)"),
        );
        if let Some(lists) = &cfg.mail_followup_to
            && !header.contains("mail-followup-to")
        {
            let list_addrs: Vec<String> = match lists {
                FollowupLists::List(v) => v.clone(),
                FollowupLists::File(p) => std::fs::read_to_string(p)
                    .map(|t| t.lines().map(String::from).collect())
                    .unwrap_or_default(),
            };
            let list_addrs: Vec<String> = list_addrs
                .iter()
                .map(|a| a.trim().to_lowercase())
                .filter(|a| !a.is_empty())
                .collect();
            let mut values = header.get_all("to");
            values.extend(header.get_all("cc"));
            let toccs: Vec<String> = getaddresses(&values)
                .into_iter()
                .map(|(_, a)| a.trim().to_string())
                .collect();
            if toccs.iter().any(|a| list_addrs.contains(&a.to_lowercase())) {
                header.append("Mail-Followup-To", &toccs.join(", "));
            }
        }
        Ok(Base {
            header,
            resending,
            fullname,
            from_address,
            recipients,
            override_actions,
        })
    }

    /// `<TIME.PID.TMDA@host>` with `$TMDAIDHOST`/`$QMAILIDHOST` and `$TMDAIDTAG` as in TMDA.
    fn message_id(&self) -> String {
        let cfg = self.config;
        let host = ["TMDAIDHOST", "QMAILIDHOST", "TMDAHOST", "QMAILHOST", "MAILHOST"]
            .iter()
            .find_map(|v| cfg.env(v).filter(|s| !s.is_empty()))
            .unwrap_or_else(crate::config::fqdn);
        let tag = cfg
            .env("TMDAIDTAG")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "TMDA".into());
        let pid = if self.pid == 0 { std::process::id() } else { self.pid };
        format!("<{}.{pid}.{tag}@{host}>", self.now)
    }

    /// The envelope sender and header block (with its terminating blank line) for one recipient.
    /// One recipient's copy: its rule's actions turned into addresses and field values
    /// (running a shell= command or appending to BARE_APPEND here, once).
    fn decide(&self, base: &Base, rcpt: &str) -> Result<PlannedCopy, InjectError> {
        let cfg = self.config;
        let (actions, log_action) = match &base.override_actions {
            Some((a, log)) => (a.clone(), log.clone()),
            None => match self.filter.first_match(rcpt, &base.from_address)? {
                // An outgoing filter only has tagging rules (the parser sees to that).
                Some(m) => (m.then.tag().cloned().unwrap_or_default(), m.description),
                None => (
                    self.default_actions()?,
                    format!("action_outgoing ({})", cfg.action_outgoing),
                ),
            },
        };
        let bare = Action::Cookie {
            cookie: Cookie::Bare,
            name: "bare".into(),
            option: None,
        };
        let magic_from = self.field(actions.get("from").unwrap_or(&bare), &base.from_address, rcpt)?;
        let envelope = match actions.get("envelope") {
            Some(a) => self.field(a, &base.from_address, rcpt)?,
            None => magic_from.clone(),
        };
        let resent_from = match actions.get("resent-from") {
            Some(a) => self.field(a, &base.from_address, rcpt)?,
            None => magic_from.clone(),
        };

        let style = |addr: &str, s: HeaderStyle| match s {
            HeaderStyle::Address => addr.to_string(),
            HeaderStyle::Angles => formataddr(&base.fullname, addr),
        };
        let mut tagged = vec![if base.resending {
            ("Resent-From".to_string(), style(&resent_from, cfg.message_from_style))
        } else {
            ("From".to_string(), style(&magic_from, cfg.message_from_style))
        }];
        let mft = base.header.get_all("mail-followup-to");
        if !mft.is_empty() {
            let tagged_mft: Vec<String> = getaddresses(&mft)
                .into_iter()
                .map(|(_, a)| if a == base.from_address { magic_from.clone() } else { a })
                .collect();
            tagged.push(("Mail-Followup-To".to_string(), tagged_mft.join(", ")));
        }
        let mut custom: Vec<(String, String)> = vec![];
        for (name, action) in &actions.0 {
            if matches!(name.as_str(), "from" | "envelope" | "resent-from") {
                continue;
            }
            let field = self.field(action, &base.from_address, rcpt)?;
            let value = match action {
                Action::Cookie {
                    cookie: Cookie::Shell, ..
                }
                | Action::Text(_) => field,
                Action::Cookie { .. } => style(&field, cfg.message_tag_header_style),
            };
            custom.push((capwords(name), value));
        }
        custom.sort();
        Ok(PlannedCopy {
            sender: envelope,
            recipient: rcpt.to_string(),
            utf8: false,
            tagged,
            custom,
            log_action,
        })
    }

    fn default_actions(&self) -> Result<Actions, InjectError> {
        let a = Action::parse(&self.config.action_outgoing).map_err(|e| {
            InjectError::Config(ConfigError::Setting {
                name: "ACTION_OUTGOING".into(),
                origin: self
                    .config
                    .origin("ACTION_OUTGOING")
                    .cloned()
                    .unwrap_or(crate::config::Origin::Default),
                message: e,
            })
        })?;
        if matches!(
            a,
            Action::Cookie {
                cookie: Cookie::Default,
                ..
            }
        ) {
            return Err(InjectError::Action("ACTION_OUTGOING cannot be \"default\"".into()));
        }
        Ok(Actions::single_from(a))
    }

    /// TMDA's `make_field`: the address (or text) an action stands for.
    fn field(&self, action: &Action, from: &str, rcpt: &str) -> Result<String, InjectError> {
        let (cookie, option) = match action {
            Action::Text(t) => return Ok(t.clone()),
            Action::Cookie { cookie, option, .. } => (*cookie, option.as_deref()),
        };
        let n = |t: &Tagger| t.hmac_bytes;
        let bad = |e: crate::address::AddressError| InjectError::Action(e.to_string());
        match cookie {
            Cookie::Default => {
                let d = self.default_actions()?;
                self.field(d.get("from").expect("single_from"), from, rcpt)
            }
            Cookie::Bare => {
                if option.is_some_and(|o| o.eq_ignore_ascii_case("append"))
                    && let Some(file) = &self.config.bare_append
                {
                    self.may_block()?;
                    append_unique(file, rcpt)?;
                }
                Ok(from.to_string())
            }
            Cookie::Dated => {
                // tmda-inject reset $TMDA_TIMEOUT, so only the rule or DATED_TIMEOUT count.
                let timeout = match option {
                    Some(o) => Interval::parse(o).map_err(|e| InjectError::Action(format!("dated={o}: {e}")))?,
                    None => self.config.dated_timeout.clone(),
                };
                let t = self.tagger()?;
                let cookie = tag::dated_cookie(&t.key, n(t), self.now.saturating_add(timeout.seconds()));
                t.inject_address(from, Kind::Dated, &cookie).map_err(bad)
            }
            Cookie::Sender => {
                let t = self.tagger()?;
                let cookie = tag::sender_cookie(&t.key, n(t), option.unwrap_or(rcpt));
                t.inject_address(from, Kind::Sender, &cookie).map_err(bad)
            }
            Cookie::Domain => {
                let t = self.tagger()?;
                let who = option.unwrap_or(rcpt);
                let domain = who.rsplit('@').next().unwrap_or(who);
                let cookie = tag::sender_cookie(&t.key, n(t), domain);
                t.inject_address(from, Kind::Sender, &cookie).map_err(bad)
            }
            Cookie::Keyword => {
                let t = self.tagger()?;
                let kw = option.unwrap_or_default().to_lowercase();
                let cookie = tag::keyword_cookie(&t.key, n(t), &kw, &t.delimiter);
                t.inject_address(from, Kind::Keyword, &cookie).map_err(bad)
            }
            Cookie::Explicit => Ok(option.unwrap_or_default().to_string()),
            Cookie::Extension => {
                let (user, host) = from
                    .split_once('@')
                    .ok_or_else(|| InjectError::Action(format!("{} has no '@'", crate::exit::quote(from))))?;
                Ok(format!(
                    "{user}{}{}@{host}",
                    self.config.recipient_delimiter,
                    option.unwrap_or_default()
                ))
            }
            Cookie::Shell => self.shell(option.unwrap_or_default(), rcpt),
        }
    }

    /// `shell=COMMAND`: its output (stdout and stderr, final newline removed) is the value.
    fn shell(&self, command: &str, rcpt: &str) -> Result<String, InjectError> {
        self.may_block()?;
        let fail = |e: std::io::Error| InjectError::Action(format!("shell={command}: {e}"));
        let mut cmd = std::process::Command::new("/bin/sh");
        // Its own process group, so whatever it starts can be stopped with it.
        let mut child = crate::child::own_group(&mut cmd)
            .arg("-c")
            .arg(format!("{{ {command}\n}} 2>&1"))
            .envs(self.config.env_assignments())
            .env("TMDA_RECIPIENT", rcpt)
            .env("TMDA_VRECIPIENT", rcpt.replace('@', "="))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(fail)?;
        let (bytes, status) = match bounded_run(&mut child, SHELL_TIMEOUT) {
            Ok(done) => done,
            Err(why) => return Err(InjectError::Action(format!("shell={command}: {why}"))),
        };
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if text.ends_with('\n') {
            text.pop();
        }
        if !status.success() {
            return Err(InjectError::Action(format!(
                "shell={command}: {status}: {}",
                text.trim()
            )));
        }
        Ok(text)
    }
}

/// Tell `sender` through `transport` which recipients of `msg` did not get it (when
/// some did: [`crate::dsn::wanted`]), with a delivery status notification from
/// MAILER-DAEMON@`hostname` sent with the null envelope sender. Never for a message
/// whose own sender is null (RFC 3461 section 6.2: that would be a bounce of a bounce).
pub fn notify(
    transport: &mut dyn Transport,
    hostname: &str,
    sender: &str,
    msg: &Message,
    fates: &[crate::dsn::RecipientFate],
) -> crate::dsn::Notice {
    use crate::dsn::Notice;
    if !crate::dsn::wanted(fates) {
        return Notice::NotNeeded;
    }
    if sender.is_empty() || sender == "<>" {
        return Notice::NotSent("the message's envelope sender is null (<>)".into());
    }
    let header = msg.header.to_block();
    let report = crate::dsn::Report {
        hostname,
        sender,
        fates,
        header: &header,
        now: crate::clock::now().unwrap_or(0),
        unique: crate::os::random_u64(),
    };
    let dsn = match Message::from_vec(report.render()) {
        Ok(m) => m,
        Err(e) => return Notice::NotSent(e.to_string()),
    };
    let dsn_header = dsn.header.to_block();
    let copy = Copy {
        sender: "",
        recipient: sender,
        header: &dsn_header,
        message: &dsn,
        utf8: !sender.is_ascii(),
    };
    let sent = transport.send(&copy);
    transport.close();
    match sent {
        Ok(()) => Notice::Sent(sender.to_string()),
        Err(e) => Notice::NotSent(e.to_string()),
    }
}

/// A shell= command's output becomes a header value: 64 KiB is plenty.
const SHELL_MAX_OUTPUT: u64 = 64 * 1024;
/// A shell= command that has not finished by then is stopped (TMDA waited for ever;
/// under ofmipd a hung command held its session and connection slot for good).
const SHELL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Wait for `child` (leader of its own process group) and read its output, stopping
/// the whole group when it prints too much or takes too long.
fn bounded_run(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> Result<(Vec<u8>, std::process::ExitStatus), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut stdout = child.stdout.take().ok_or("no output pipe")?;
    let too_much = std::sync::Arc::new(AtomicBool::new(false));
    let flag = too_much.clone();
    let reader = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        let _ = (&mut stdout).take(SHELL_MAX_OUTPUT + 1).read_to_end(&mut bytes);
        flag.store(bytes.len() as u64 > SHELL_MAX_OUTPUT, Ordering::SeqCst);
        bytes
    });
    let deadline = std::time::Instant::now() + timeout;
    let stop = |child: &mut std::process::Child, why: String| {
        crate::child::stop(child);
        Err(why)
    };
    let status = loop {
        if too_much.load(Ordering::SeqCst) {
            let r = stop(child, format!("more than {SHELL_MAX_OUTPUT} bytes of output"));
            let _ = reader.join();
            return r;
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())?
            && reader.is_finished()
        {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let r = stop(child, format!("still running after {} seconds", timeout.as_secs_f32()));
            let _ = reader.join();
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let bytes = reader.join().map_err(|_| "reading its output failed".to_string())?;
    Ok((bytes, status))
}

/// X-TMDA-Fingerprint: the named fields' values (and "body") signed with `key`.
fn fingerprint(h: &Header, msg: &Message, names: &[String], key: &CryptKey) -> Result<Option<String>, InjectError> {
    let mut fp = tag::Fingerprint::new(key);
    let mut any = false;
    for name in names {
        if name == "body" {
            // Python read the message as text: the body with universal newlines.
            let mut le = LineEndings::default();
            let mut buf = Vec::new();
            let mut nonempty = false;
            msg.for_each_body_chunk(|c| {
                buf.clear();
                le.to_lf(c, &mut buf);
                nonempty |= !buf.is_empty();
                fp.update(&buf);
                Ok(())
            })
            .map_err(|e| InjectError::Io {
                path: "message spool".into(),
                source: e,
            })?;
            buf.clear();
            le.finish(&mut buf, false);
            fp.update(&buf);
            any |= nonempty;
        } else if let Some(v) = h.get_source(name).filter(|v| !v.is_empty()) {
            fp.update(v.as_bytes());
            any = true;
        }
    }
    Ok(any.then(|| fp.finish()))
}

/// TMDA's LOGFILE_OUTGOING entry for one copy.
fn log_entry(now: u64, h: &Header, envelope: &str, rcpt: &str, action: &str, size: u64) -> String {
    let mut entry = String::new();
    let mut line = |name: &str, value: &str| entry.push_str(&format!("{name:>4}: {value}\n"));
    line("Date", &crate::clock::rfc2822(now));
    if let Some(x) = h.get("x-primary-address") {
        line("XPri", &x);
    }
    let from = h.get("from").unwrap_or_default();
    if !envelope.is_empty() && parseaddr(&from).1 != envelope {
        line("Sndr", envelope);
    }
    if !from.is_empty() {
        line("From", &from);
    }
    if let Some(r) = h.get("reply-to") {
        line("Rept", &r);
    }
    line("To", rcpt);
    line("Subj", &h.get("subject").unwrap_or_else(|| "None".into()));
    let size = format!("({size})");
    let pad = 72usize.saturating_sub(action.chars().count() + size.len());
    line("Actn", &format!("{action}{}{size}", " ".repeat(pad)));
    entry.push('\n');
    entry
}

/// The first white-space separated word and the rest after the white space that follows it.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// `reply-to` → `Reply-To` (Python's `string.capwords` on the dash-separated words).
fn capwords(name: &str) -> String {
    // Python's split() drops empty words, so runs of hyphens collapse and ends vanish.
    name.split(|c: char| c == '-' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn io_error(path: &Path, source: std::io::Error) -> InjectError {
    InjectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file TMDA appends to (LOGFILE_OUTGOING, BARE_APPEND), created if missing, open for
/// appending (and reading if `read`), under an exclusive lock as writers may be many.
fn open_locked(path: &Path, read: bool) -> Result<std::fs::File, InjectError> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .read(read)
        .append(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    f.lock().map_err(|e| io_error(path, e))?;
    Ok(f)
}

/// BARE_APPEND: add `address` to the list file unless it is already there (case-insensitive),
/// under an exclusive lock so concurrent senders never duplicate or lose a line.
pub fn append_unique(path: &Path, address: &str) -> Result<(), InjectError> {
    use std::io::{Read, Seek};
    let io = |e| io_error(path, e);
    let mut f = open_locked(path, true)?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(io)?;
    let wanted = address.trim().to_lowercase();
    let present = text.lines().any(|l| {
        let l = l.trim().to_lowercase();
        !l.is_empty() && !l.starts_with('#') && l.replace('\t', " ").split('#').next().unwrap_or("").trim() == wanted
    });
    if !present {
        f.seek(std::io::SeekFrom::End(0)).map_err(io)?;
        let sep = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        f.write_all(format!("{sep}{}\n", address.trim()).as_bytes())
            .map_err(io)?;
    }
    Ok(())
}

/// An envelope address goes into an SMTP command (or a program's arguments): a control
/// character there (a CR taken from a header, say) could end the command early and
/// smuggle in another, so such an address is refused before anything is sent.
fn envelope_address(role: &str, address: &str) -> Result<(), InjectError> {
    if address.chars().any(char::is_control) {
        return Err(InjectError::Action(format!(
            "envelope {role} {} contains a control character",
            crate::exit::quote(address)
        )));
    }
    Ok(())
}

/// A message's own header must not choose a command to run: it travels with the message
/// (a bounced or resent message, or one another user submitted to a personal-mode
/// ofmipd). TMDA ran `X-TMDA: shell=...` as the user; only the filter file may.
fn refuse_shell_from_header(action: &Action, whence: &str) -> Result<(), InjectError> {
    if let Action::Cookie {
        cookie: Cookie::Shell, ..
    } = action
    {
        return Err(InjectError::Action(format!(
            "{whence}: shell= actions are refused in a message header (the message would choose the command); \
             put the rule in your outgoing filter"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{bounded_run, capwords};

    fn sh(script: &str) -> std::process::Child {
        crate::child::own_group(&mut std::process::Command::new("/bin/sh"))
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    #[test]
    fn shell_commands_are_stopped_when_slow_or_talkative() {
        let short = std::time::Duration::from_millis(300);
        let (out, status) = bounded_run(&mut sh("echo hi"), short).unwrap();
        assert_eq!((out.as_slice(), status.success()), (&b"hi\n"[..], true));
        // A background job that outlives the shell is stopped with it.
        let started = std::time::Instant::now();
        let e = bounded_run(&mut sh("sleep 30 & echo started"), short).unwrap_err();
        assert!(e.contains("still running after 0.3 seconds"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let e = bounded_run(&mut sh("yes"), std::time::Duration::from_secs(30)).unwrap_err();
        assert!(e.contains("more than 65536 bytes"), "{e}");
    }

    #[test]
    fn capwords_like_python() {
        assert_eq!(capwords("reply-to"), "Reply-To");
        assert_eq!(capwords("x-tmda-thing"), "X-Tmda-Thing");
        assert_eq!(capwords("cc"), "Cc");
        // What Python's string.capwords(h.replace('-', ' ')).replace(' ', '-') gives.
        for (name, python) in [
            ("a--b", "A-B"),
            ("-lead", "Lead"),
            ("trail-", "Trail"),
            ("x-TMDA", "X-Tmda"),
            ("X_y-z", "X_y-Z"),
            ("1st-two", "1st-Two"),
            ("mIxEd-CASE", "Mixed-Case"),
        ] {
            assert_eq!(capwords(name), python, "{name}");
        }
    }
}
