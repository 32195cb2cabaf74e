//! The incoming side's settings (`tmda filter`, `tmda pending`), typed, with TMDA's
//! defaults. Read on demand ([`Config::incoming`]), so a mistake in them never stops the
//! outgoing commands.

use std::path::PathBuf;

use super::{Config, ConfigError, Value, bad, flag, header_dict, int_of, join, opt_str_list, str_list, str_of};
use crate::interval::Interval;

/// What to do with a message when no rule decided (`ACTION_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Bounce,
    Drop,
    Accept,
    Hold,
    Confirm,
}

impl Action {
    /// TMDA's words; as in TMDA, anything else means `confirm`.
    pub fn from_word(word: &str) -> Action {
        match word.trim().to_ascii_lowercase().as_str() {
            "bounce" | "reject" => Action::Bounce,
            "drop" | "exit" | "stop" => Action::Drop,
            "ok" | "accept" | "deliver" => Action::Accept,
            "hold" => Action::Hold,
            _ => Action::Confirm,
        }
    }

    /// The word in log lines (`OK`, `BOUNCE`, ...).
    pub fn log_word(self) -> &'static str {
        match self {
            Action::Bounce => "BOUNCE",
            Action::Drop => "DROP",
            Action::Accept => "OK",
            Action::Hold => "HOLD",
            Action::Confirm => "CONFIRM",
        }
    }
}

/// `ACTION_EXPIRED_DATED`: one action, or actions by how long the address has expired
/// (`{'1w': 'bounce', 'default': 'confirm'}`: over a week overdue bounces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiredAction {
    One(Action),
    /// (seconds overdue beyond which it applies, the key as written, action), longest first;
    /// the last entry is the default (0 seconds).
    ByAge(Vec<(u64, String, Action)>),
}

impl ExpiredAction {
    /// The action for an address `overdue` seconds past its expiry, and the key that chose
    /// it (for the log line `ACTION_EXPIRED_DATED/<key>`).
    pub fn choose(&self, overdue: u64) -> (Action, Option<&str>) {
        match self {
            ExpiredAction::One(a) => (*a, None),
            ExpiredAction::ByAge(entries) => entries
                .iter()
                .find(|(secs, _, _)| overdue > *secs)
                .or(entries.last())
                .map(|(_, k, a)| (*a, Some(k.as_str())))
                .unwrap_or((Action::Confirm, None)),
        }
    }
}

/// The incoming settings.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// `DELIVERY` (paths expanded); `_qok_` by default under qmail, required otherwise.
    pub delivery: Option<String>,
    pub use_virtual_domains: bool,
    pub virtual_domains: PathBuf,
    pub recipient_header: Option<String>,
    pub filter_incoming: PathBuf,
    pub filter_bounce_cc: Option<String>,
    pub filter_drop_cc: Option<String>,
    pub action_incoming: Action,
    pub action_fail_dated: Action,
    pub action_expired_dated: ExpiredAction,
    pub action_fail_sender: Action,
    pub action_fail_keyword: Action,
    pub action_invalid_confirmation: Action,
    pub action_missing_pending: Action,
    pub action_header_incoming: bool,
    pub confirm_append: Option<PathBuf>,
    pub confirm_cc: Option<String>,
    pub confirm_accept_cc: Option<String>,
    pub confirm_accept_notify: bool,
    /// `None`: attach the whole original however big.
    pub confirm_max_message_size: Option<u64>,
    pub autoresponse_include_sender_copy: u8,
    pub bounce_env_sender: String,
    /// 0: unlimited (and no records kept).
    pub max_autoresponses_per_day: u64,
    pub response_dir: PathBuf,
    pub template_dir: Option<PathBuf>,
    pub template_dir_match_sender: bool,
    pub template_dir_match_recipient: bool,
    pub template_email_headers: Vec<String>,
    pub template_encoded_headers: Vec<String>,
    pub dated_template_vars: bool,
    pub sender_template_vars: bool,
    pub cgi_url: Option<String>,
    pub cgi_virtualuser: bool,
    pub primary_address_match: u8,
    pub pending_dir: PathBuf,
    pub pending_queue_format: String,
    pub pending_lifetime: Interval,
    pub pending_cleanup_odds: f64,
    pub pending_cache: PathBuf,
    pub pending_cache_len: usize,
    pub pending_blacklist_append: Option<PathBuf>,
    pub pending_delete_append: Option<PathBuf>,
    pub pending_release_append: Option<PathBuf>,
    pub pending_whitelist_append: Option<PathBuf>,
    pub pending_whitelist_release: bool,
    pub summary_headers: Vec<String>,
    pub terse_summary_headers: Vec<String>,
    pub added_headers_server: Vec<(String, String)>,
    pub purged_headers_server: Vec<String>,
    pub purged_headers_delivery: Vec<String>,
    pub logfile_incoming: Option<PathBuf>,
    pub logfile_debug: Option<PathBuf>,
}

impl Config {
    /// The incoming side's settings, with TMDA's defaults.
    pub fn incoming(&self) -> Result<Incoming, ConfigError> {
        let ns = &self.ns;
        let datadir = self.datadir.display().to_string();
        let path = |name: &str| -> Result<Option<PathBuf>, ConfigError> {
            Ok(str_of(ns, name)?.filter(|s| !s.is_empty()).map(PathBuf::from))
        };
        let action = |name: &str, dflt: &str| -> Result<Action, ConfigError> {
            Ok(Action::from_word(&str_of(ns, name)?.unwrap_or_else(|| dflt.into())))
        };
        let filter_incoming = match ns.getenv("TMDA_FILTER_INCOMING").filter(|s| !s.is_empty()) {
            Some(p) => PathBuf::from(crate::os::expanduser_with(&p, |n| ns.getenv(n))),
            None => path("FILTER_INCOMING")?.unwrap_or_else(|| PathBuf::from(join(&datadir, "filters/incoming"))),
        };
        let delivery = match str_of(ns, "DELIVERY")? {
            Some(d) if !d.is_empty() => Some(d),
            _ if self.mail_transfer_agent == "qmail" => Some("_qok_".into()),
            _ => None,
        };
        let action_expired_dated = match ns.get("ACTION_EXPIRED_DATED") {
            None | Some(Value::None) => ExpiredAction::One(Action::Confirm),
            Some(Value::Str(s)) => ExpiredAction::One(Action::from_word(s)),
            Some(Value::Dict(items)) => {
                let mut entries = vec![];
                let mut has_default = false;
                for (k, v) in items {
                    let Value::Str(word) = v else {
                        return Err(bad(
                            ns,
                            "ACTION_EXPIRED_DATED",
                            format!("actions must be strings, found {}", v.py_repr()),
                        ));
                    };
                    let (secs, key) = match k {
                        Value::Str(k) if k == "default" => {
                            has_default = true;
                            (0, k.clone())
                        }
                        Value::Str(k) => (
                            Interval::parse(k)
                                .map_err(|e| bad(ns, "ACTION_EXPIRED_DATED", e.to_string()))?
                                .seconds(),
                            k.clone(),
                        ),
                        Value::Int(n) if *n >= 0 => (*n as u64, n.to_string()),
                        other => {
                            return Err(bad(
                                ns,
                                "ACTION_EXPIRED_DATED",
                                format!(
                                    "keys must be intervals such as '1w' or 'default', found {}",
                                    other.py_repr()
                                ),
                            ));
                        }
                    };
                    entries.push((secs, key, Action::from_word(word)));
                }
                if !has_default {
                    entries.push((0, "default".into(), Action::Confirm));
                }
                entries.sort_by_key(|e| std::cmp::Reverse(e.0));
                ExpiredAction::ByAge(entries)
            }
            Some(v) => {
                return Err(bad(
                    ns,
                    "ACTION_EXPIRED_DATED",
                    format!(
                        "must be an action word or a dict of interval: action, not {}",
                        v.type_name()
                    ),
                ));
            }
        };
        let confirm_max_message_size = match ns.get("CONFIRM_MAX_MESSAGE_SIZE") {
            None => Some(50_000),
            Some(Value::None) => None,
            Some(_) => Some(int_of(ns, "CONFIRM_MAX_MESSAGE_SIZE", 50_000, 0..=i64::MAX)? as u64),
        };
        let lifetime_text = str_of(ns, "PENDING_LIFETIME")?.unwrap_or_else(|| "14d".into());
        let pending_lifetime =
            Interval::parse(&lifetime_text).map_err(|e| bad(ns, "PENDING_LIFETIME", e.to_string()))?;
        let pending_cleanup_odds = match ns.get("PENDING_CLEANUP_ODDS") {
            None => 0.01,
            Some(Value::Float(f)) if (0.0..=1.0).contains(f) => *f,
            Some(Value::Int(i)) if (0..=1).contains(i) => *i as f64,
            Some(v) => {
                return Err(bad(
                    ns,
                    "PENDING_CLEANUP_ODDS",
                    format!("must be a number from 0 to 1, not {}", v.py_repr()),
                ));
            }
        };
        let pending_queue_format = str_of(ns, "PENDING_QUEUE_FORMAT")?
            .unwrap_or_else(|| "original".into())
            .to_ascii_lowercase();
        if !matches!(pending_queue_format.as_str(), "original" | "maildir") {
            return Err(bad(
                ns,
                "PENDING_QUEUE_FORMAT",
                format!(
                    "must be \"original\" or \"maildir\", not {}",
                    crate::exit::quote(&pending_queue_format)
                ),
            ));
        }
        let mut added_headers_server = header_dict(ns, "ADDED_HEADERS_SERVER")?;
        // TMDA added them sorted by name.
        added_headers_server.sort();
        Ok(Incoming {
            delivery,
            use_virtual_domains: ns.get("USEVIRTUALDOMAINS").map(Value::is_truthy).unwrap_or(true),
            virtual_domains: path("VIRTUALDOMAINS")?
                .unwrap_or_else(|| PathBuf::from("/var/qmail/control/virtualdomains")),
            recipient_header: str_of(ns, "RECIPIENT_HEADER")?.filter(|s| !s.is_empty()),
            filter_incoming,
            filter_bounce_cc: str_of(ns, "FILTER_BOUNCE_CC")?.filter(|s| !s.is_empty()),
            filter_drop_cc: str_of(ns, "FILTER_DROP_CC")?.filter(|s| !s.is_empty()),
            action_incoming: action("ACTION_INCOMING", "confirm")?,
            action_fail_dated: action("ACTION_FAIL_DATED", "confirm")?,
            action_expired_dated,
            action_fail_sender: action("ACTION_FAIL_SENDER", "confirm")?,
            action_fail_keyword: action("ACTION_FAIL_KEYWORD", "confirm")?,
            action_invalid_confirmation: action("ACTION_INVALID_CONFIRMATION", "bounce")?,
            action_missing_pending: action("ACTION_MISSING_PENDING", "bounce")?,
            action_header_incoming: flag(ns, "ACTION_HEADER_INCOMING"),
            confirm_append: path("CONFIRM_APPEND")?,
            confirm_cc: str_of(ns, "CONFIRM_CC")?.filter(|s| !s.is_empty()),
            confirm_accept_cc: str_of(ns, "CONFIRM_ACCEPT_CC")?.filter(|s| !s.is_empty()),
            confirm_accept_notify: ns.get("CONFIRM_ACCEPT_NOTIFY").map(Value::is_truthy).unwrap_or(true),
            confirm_max_message_size,
            autoresponse_include_sender_copy: int_of(ns, "AUTORESPONSE_INCLUDE_SENDER_COPY", 2, 0..=2)? as u8,
            bounce_env_sender: str_of(ns, "BOUNCE_ENV_SENDER")?.unwrap_or_else(|| "<>".into()),
            max_autoresponses_per_day: int_of(ns, "MAX_AUTORESPONSES_PER_DAY", 50, 0..=i64::MAX)? as u64,
            response_dir: path("RESPONSE_DIR")?.unwrap_or_else(|| PathBuf::from(join(&datadir, "responses"))),
            template_dir: path("TEMPLATE_DIR")?,
            template_dir_match_sender: flag(ns, "TEMPLATE_DIR_MATCH_SENDER"),
            template_dir_match_recipient: flag(ns, "TEMPLATE_DIR_MATCH_RECIPIENT"),
            template_email_headers: str_list(ns, "TEMPLATE_EMAIL_HEADERS", &["from", "reply-to"])?,
            template_encoded_headers: str_list(ns, "TEMPLATE_ENCODED_HEADERS", &["subject"])?,
            dated_template_vars: flag(ns, "DATED_TEMPLATE_VARS"),
            sender_template_vars: flag(ns, "SENDER_TEMPLATE_VARS"),
            cgi_url: str_of(ns, "CGI_URL")?.filter(|s| !s.is_empty()),
            cgi_virtualuser: flag(ns, "CGI_VIRTUALUSER"),
            primary_address_match: int_of(ns, "PRIMARY_ADDRESS_MATCH", 5, 0..=6)? as u8,
            pending_dir: path("PENDING_DIR")?.unwrap_or_else(|| PathBuf::from(join(&datadir, "pending"))),
            pending_queue_format,
            pending_lifetime,
            pending_cleanup_odds,
            pending_cache: path("PENDING_CACHE")?.unwrap_or_else(|| PathBuf::from(join(&datadir, ".pendingcache"))),
            pending_cache_len: int_of(ns, "PENDING_CACHE_LEN", 5000, 0..=10_000_000)? as usize,
            pending_blacklist_append: path("PENDING_BLACKLIST_APPEND")?,
            pending_delete_append: path("PENDING_DELETE_APPEND")?,
            pending_release_append: path("PENDING_RELEASE_APPEND")?,
            pending_whitelist_append: path("PENDING_WHITELIST_APPEND")?,
            pending_whitelist_release: ns
                .get("PENDING_WHITELIST_RELEASE")
                .map(Value::is_truthy)
                .unwrap_or(true),
            summary_headers: str_list(ns, "SUMMARY_HEADERS", &["date", "from", "to", "subject"])?,
            terse_summary_headers: str_list(ns, "TERSE_SUMMARY_HEADERS", &["from_name", "subject"])?,
            added_headers_server,
            purged_headers_server: opt_str_list(ns, "PURGED_HEADERS_SERVER")?,
            purged_headers_delivery: opt_str_list(ns, "PURGED_HEADERS_DELIVERY")?,
            logfile_incoming: path("LOGFILE_INCOMING")?,
            logfile_debug: path("LOGFILE_DEBUG")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let mut ns = crate::config::Namespace::default();
        crate::config::python::exec(text, std::path::Path::new("config"), &mut ns).unwrap();
        Config::from_namespace(ns, vec![]).unwrap()
    }

    #[test]
    fn defaults_as_tmda() {
        let c = config("DATADIR = '/home/jason/.tmda'\nMAIL_TRANSFER_AGENT = 'postfix'\n");
        let i = c.incoming().unwrap();
        assert_eq!(i.delivery, None);
        assert_eq!(i.action_incoming, Action::Confirm);
        assert_eq!(i.action_invalid_confirmation, Action::Bounce);
        assert_eq!(i.pending_dir, PathBuf::from("/home/jason/.tmda/pending"));
        assert_eq!(i.filter_incoming, PathBuf::from("/home/jason/.tmda/filters/incoming"));
        assert_eq!(i.confirm_max_message_size, Some(50_000));
        assert_eq!(i.max_autoresponses_per_day, 50);
        assert_eq!(i.pending_lifetime.seconds(), 14 * 86400);
        assert!(i.confirm_accept_notify);
        let q = config("DATADIR = '/d'\n").incoming().unwrap();
        assert_eq!(q.delivery.as_deref(), Some("_qok_"));
    }

    #[test]
    fn expired_dated_by_age() {
        let c = config("DATADIR = '/d'\nACTION_EXPIRED_DATED = {'1w': 'bounce', '1d': 'hold', 'default': 'ok'}\n");
        let e = c.incoming().unwrap().action_expired_dated;
        assert_eq!(e.choose(8 * 86400), (Action::Bounce, Some("1w")));
        assert_eq!(e.choose(2 * 86400), (Action::Hold, Some("1d")));
        assert_eq!(e.choose(60), (Action::Accept, Some("default")));
        let c = config("DATADIR = '/d'\nACTION_EXPIRED_DATED = {'1d': 'bounce'}\n");
        assert_eq!(
            c.incoming().unwrap().action_expired_dated.choose(5),
            (Action::Confirm, Some("default"))
        );
    }

    #[test]
    fn mistakes_name_the_setting() {
        for bad in [
            "PENDING_QUEUE_FORMAT = 'mbox'",
            "PENDING_LIFETIME = '2 weeks'",
            "ACTION_EXPIRED_DATED = {'soon': 'bounce'}",
            "PENDING_CLEANUP_ODDS = 2",
        ] {
            let name = bad.split(' ').next().unwrap();
            let e = config(&format!("DATADIR = '/d'\n{bad}\n"))
                .incoming()
                .unwrap_err()
                .to_string();
            assert!(e.contains(name), "{bad}: {e}");
        }
        // Unknown action words mean confirm, as in TMDA.
        assert_eq!(Action::from_word("frobnicate"), Action::Confirm);
        assert_eq!(Action::from_word(" OK "), Action::Accept);
    }
}
