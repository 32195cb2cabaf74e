//! TMDA configuration: `/etc/tmdarc` then `~/.tmda/config`, with TMDA's defaults.
//!
//! Loading follows TMDA: the global file (`$GLOBAL_TMDARC`, else `/etc/tmdarc`) is read
//! if it exists, then the user's file (`-c FILE`, else `$TMDARC`, else a `TMDARC` the
//! global file set, else `~/.tmda/config`), both into one namespace. With
//! `CONFIG_EXEC = False` in the global file, the user's file is read as INI
//! ([`ini`]); otherwise as the Python subset of [`python`]. Then every unset setting
//! gets TMDA's default and path settings get `~` expanded.
//!
//! Deliberate differences from TMDA: a config file named explicitly (`-c`, `$TMDARC`)
//! must exist, where TMDA silently used the defaults; and `$GLOBAL_TMDARC` is actually
//! read (TMDA 1.1 only read `/etc/tmdarc`, and only when `$GLOBAL_TMDARC` was unset).
//!
//! Every variable the file assigns is kept, known or not, so filters can use `${NAME}`.

pub mod incoming;
pub mod ini;
pub mod python;
pub mod tags;
pub mod value;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock as OnceCell;

use crate::interval::Interval;
pub use python::{Namespace, Origin};
pub use tags::{Kind, TagNames};
pub use value::Value;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}:{line}:{col}: {message}{}", path.display(), hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
        hint: Option<String>,
    },
    #[error("{name} ({origin}): {message}")]
    Setting {
        name: String,
        origin: Origin,
        message: String,
    },
    #[error("config file {}: {}", path.display(), crate::exit::describe_io(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How outgoing mail leaves (`MAIL_TRANSPORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTransport {
    Sendmail,
    Smtp,
}

/// How a tagged address is written into a header (`MESSAGE_FROM_STYLE` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderStyle {
    /// `Full Name <address>`
    Angles,
    /// `address`
    Address,
}

/// `MAIL_FOLLOWUP_TO`: the mailing lists, inline or in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowupLists {
    List(Vec<String>),
    File(PathBuf),
}

/// A secret from the config (`SMTPAUTH_PASSWORD`): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How the connection to the upstream SMTP server is protected (`SMTPSSL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `SMTPSSL = False` (TMDA's default): plain SMTP.
    None,
    /// `SMTPSSL = True` or `"starttls"`: STARTTLS, as TMDA did; refused if not offered.
    StartTls,
    /// `SMTPSSL = "implicit"`: TLS from the first byte (port 465 style). New in tmda.
    Implicit,
}

/// The upstream SMTP settings (`SMTPHOST`, `SMTPAUTH_*`, `SMTPSSL*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: SmtpTls,
    /// Verify the server certificate (`SMTPSSL_VERIFY`, default True; TMDA never verified).
    pub verify: bool,
    /// Extra CA certificate(s) to trust, PEM (`SMTPSSL_CAFILE`).
    pub cafile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub max_sessions_per_connection: u32,
}

/// Where to look for configuration.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-c FILE`: the user's config file.
    pub config_file: Option<PathBuf>,
    /// The home directory `~` stands for, when it is not the process's `$HOME`
    /// (ofmipd tagging for a user other than itself, or a virtual user).
    pub home: Option<PathBuf>,
}

/// A loaded configuration: typed client-side settings plus every raw variable.
#[derive(Debug)]
pub struct Config {
    ns: Namespace,
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    pub datadir: PathBuf,
    pub crypt_key_file: PathBuf,
    pub allow_mode_640: bool,
    pub hmac_bytes: usize,
    pub recipient_delimiter: String,
    pub tags: TagNames,
    pub dated_timeout: Interval,
    pub action_outgoing: String,
    pub filter_outgoing: PathBuf,
    pub mail_transport: MailTransport,
    pub sendmail_program: Option<PathBuf>,
    pub smtp: SmtpSettings,
    pub mail_transfer_agent: String,
    pub bare_append: Option<PathBuf>,
    pub fingerprint: Vec<String>,
    pub added_headers_client: Vec<(String, String)>,
    pub purged_headers_client: Vec<String>,
    pub message_from_style: HeaderStyle,
    pub message_tag_header_style: HeaderStyle,
    pub tmdainject: String,
    pub mail_followup_to: Option<FollowupLists>,
    pub x_tmda_in_subject: bool,
    pub logfile_outgoing: Option<PathBuf>,
    pub confirm_address: Option<String>,
    username: OnceCell<String>,
    hostname: OnceCell<String>,
    fullname: OnceCell<String>,
}

/// Settings holding paths, which TMDA runs through `os.path.expanduser`.
const PATH_VARS: &[&str] = &[
    "SMTPSSL_CAFILE",
    "SMTPSSL_CERTFILE",
    "SMTPSSL_KEYFILE",
    "BARE_APPEND",
    "CGI_SETTINGS",
    "CONFIRM_APPEND",
    "CRYPT_KEY_FILE",
    "DATADIR",
    "DELIVERY",
    "FILTER_INCOMING",
    "FILTER_OUTGOING",
    "GLOBAL_TMDARC",
    "LOGFILE_DEBUG",
    "LOGFILE_INCOMING",
    "LOGFILE_OUTGOING",
    "MAIL_FOLLOWUP_TO",
    "PENDING_BLACKLIST_APPEND",
    "PENDING_CACHE",
    "PENDING_DELETE_APPEND",
    "PENDING_DIR",
    "PENDING_RELEASE_APPEND",
    "PENDING_WHITELIST_APPEND",
    "RESPONSE_DIR",
    "SENDMAIL_PROGRAM",
    "TEMPLATE_DIR",
    "VIRTUALDOMAINS",
];

/// Every setting tmda itself reads, for documentation and the man-page check.
pub const KNOWN_SETTINGS: &[&str] = &[
    "ACTION_OUTGOING",
    "ADDED_HEADERS_CLIENT",
    "ALLOW_MODE_640",
    "BARE_APPEND",
    "CONFIG_EXEC",
    "CONFIRM_ADDRESS",
    "CRYPT_KEY_FILE",
    "DATADIR",
    "DATED_TIMEOUT",
    "FILTER_OUTGOING",
    "FINGERPRINT",
    "FULLNAME",
    "HMAC_BYTES",
    "HOSTNAME",
    "LOGFILE_OUTGOING",
    "MAIL_FOLLOWUP_TO",
    "MAIL_TRANSFER_AGENT",
    "MAIL_TRANSPORT",
    "MESSAGE_FROM_STYLE",
    "MESSAGE_TAG_HEADER_STYLE",
    "PURGED_HEADERS_CLIENT",
    "RECIPIENT_DELIMITER",
    "SENDMAIL_PROGRAM",
    "SMTPAUTH_PASSWORD",
    "SMTPAUTH_USERNAME",
    "SMTPHOST",
    "SMTPSSL",
    "SMTPSSL_CAFILE",
    "SMTPSSL_CERTFILE",
    "SMTPSSL_KEYFILE",
    "SMTPSSL_VERIFY",
    "SMTP_MAX_SESSIONS_PER_CONNECTION",
    "TAGS_CONFIRM",
    "TAGS_DATED",
    "TAGS_KEYWORD",
    "TAGS_SENDER",
    "TMDAINJECT",
    "TMDARC",
    "USERNAME",
    "X_TMDA_IN_SUBJECT",
];

/// Every variable TMDA itself defines or reads (its Defaults.py, and the names its
/// modules look up there), including the incoming side that tmda does not use: a
/// configuration shared with a TMDA server sets those, and they are not mistakes.
const TMDA_VARIABLES: &[&str] = &[
    "ACTION_EXPIRED_DATED",
    "ACTION_FAIL_DATED",
    "ACTION_FAIL_KEYWORD",
    "ACTION_FAIL_SENDER",
    "ACTION_HEADER_INCOMING",
    "ACTION_INCOMING",
    "ACTION_INVALID_CONFIRMATION",
    "ACTION_MISSING_PENDING",
    "ACTION_OUTGOING",
    "ADDED_HEADERS",
    "ADDED_HEADERS_CLIENT",
    "ADDED_HEADERS_SERVER",
    "ALLOW_MODE_640",
    "AUTORESPONSE_INCLUDE_SENDER_COPY",
    "BARE_APPEND",
    "BOUNCE_ENV_SENDER",
    "CGI_ACTIVE",
    "CGI_SETTINGS",
    "CGI_URL",
    "CGI_VIRTUALUSER",
    "CONFIG_EXEC",
    "CONFIRM_ACCEPT_CC",
    "CONFIRM_ACCEPT_NOTIFY",
    "CONFIRM_ADDRESS",
    "CONFIRM_APPEND",
    "CONFIRM_CC",
    "CONFIRM_MAX_MESSAGE_SIZE",
    "CRYPT_KEY",
    "CRYPT_KEY_FILE",
    "DATADIR",
    "DATED_TEMPLATE_VARS",
    "DATED_TIMEOUT",
    "DB_BARE_APPEND",
    "DB_CONFIRM_APPEND",
    "DB_CONNECTION",
    "DELIVERED_CACHE",
    "DELIVERY",
    "EX_OK",
    "EX_TEMPFAIL",
    "FILTER_BOUNCE_CC",
    "FILTER_DROP_CC",
    "FILTER_INCOMING",
    "FILTER_OUTGOING",
    "FINGERPRINT",
    "FULLNAME",
    "GLOBAL_TMDARC",
    "HMAC_BYTES",
    "HOMEDIR",
    "HOSTNAME",
    "LOCALDATE",
    "LOGFILE_DEBUG",
    "LOGFILE_INCOMING",
    "LOGFILE_OUTGOING",
    "MAIL_FOLLOWUP_TO",
    "MAIL_TRANSFER_AGENT",
    "MAIL_TRANSPORT",
    "MAX_AUTORESPONSES_PER_DAY",
    "MESSAGE_FROM_STYLE",
    "MESSAGE_TAG_HEADER_STYLE",
    "OFF",
    "OUTGOINGMAIL",
    "PARENTDIR",
    "PENDING_BLACKLIST_APPEND",
    "PENDING_CACHE",
    "PENDING_CACHE_LEN",
    "PENDING_CLEANUP_ODDS",
    "PENDING_DELETE_APPEND",
    "PENDING_DIR",
    "PENDING_LIFETIME",
    "PENDING_QUEUE_FORMAT",
    "PENDING_RELEASE_APPEND",
    "PENDING_WHITELIST_APPEND",
    "PENDING_WHITELIST_RELEASE",
    "PID",
    "PRIMARY_ADDRESS_MATCH",
    "PURGED_HEADERS",
    "PURGED_HEADERS_CLIENT",
    "PURGED_HEADERS_DELIVERY",
    "PURGED_HEADERS_SERVER",
    "RECIPIENT_DELIMITER",
    "RECIPIENT_HEADER",
    "RESPONSE_DIR",
    "SACRED_FILE",
    "SENDER_TEMPLATE_VARS",
    "SENDMAIL_PROGRAM",
    "SMTPAUTH_PASSWORD",
    "SMTPAUTH_USERNAME",
    "SMTPHOST",
    "SMTPSSL",
    "SMTPSSL_CERTFILE",
    "SMTPSSL_KEYFILE",
    "SMTP_MAX_SESSIONS_PER_CONNECTION",
    "SUMMARY_HEADERS",
    "TAGS_CONFIRM",
    "TAGS_DATED",
    "TAGS_KEYWORD",
    "TAGS_SENDER",
    "TEMPLATE_DIR",
    "TEMPLATE_DIR_MATCH_RECIPIENT",
    "TEMPLATE_DIR_MATCH_SENDER",
    "TEMPLATE_EMAIL_HEADERS",
    "TEMPLATE_ENCODED_HEADERS",
    "TERSE_SUMMARY_HEADERS",
    "TIMEOUT",
    "TIMEOUT_UNITS",
    "TMDAINJECT",
    "TMDARC",
    "TMDA_CGI_MODE",
    "TMDA_HOMEPAGE",
    "TMDA_VERSION",
    "USERNAME",
    "USEVIRTUALDOMAINS",
    "VIRTUALDOMAINS",
    "X_TMDA_IN_SUBJECT",
    "NO",
    "YES",
    "TRUE",
    "FALSE",
];

/// A variable a configuration file set that neither TMDA nor tmda knows: most likely
/// a misspelt setting (`USERNMAE`), which would otherwise be silently ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    pub name: String,
    pub origin: Origin,
    /// The known name it is closest to, if one is close.
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for UnknownVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} is not a TMDA setting", self.origin, self.name)?;
        match self.suggestion {
            Some(s) => write!(f, "; did you mean {s}?"),
            None => f.write_str(" (a variable of your own? lower-case names are not checked)"),
        }
    }
}

/// Damerau-Levenshtein distance (optimal string alignment): a swapped pair of
/// letters (`NMAE`) counts as one slip.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The known variable `name` is most likely a slip for, if any is close enough.
fn nearest_known(name: &str) -> Option<&'static str> {
    let known = TMDA_VARIABLES.iter().chain(KNOWN_SETTINGS);
    let (best, dist) = known.map(|k| (*k, edit_distance(name, k))).min_by_key(|(_, d)| *d)?;
    // One slip in a short name, up to three in a long one.
    (dist <= (name.len() / 5).clamp(1, 3)).then_some(best)
}

fn is_known_variable(name: &str) -> bool {
    TMDA_VARIABLES.contains(&name) || KNOWN_SETTINGS.contains(&name)
}

impl Config {
    /// Load the configuration as the TMDA tools do.
    pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
        let mut ns = Namespace::with_builtins();
        if let Some(h) = &opts.home {
            ns.env.insert("HOME".into(), h.display().to_string());
        }
        let mut files = vec![];
        let home = ns.expanduser("~");
        ns.set("HOMEDIR", Value::Str(home.clone()), Origin::Default);

        let global = std::env::var("GLOBAL_TMDARC")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/etc/tmdarc".into());
        let global = PathBuf::from(global);
        ns.set(
            "GLOBAL_TMDARC",
            Value::Str(global.display().to_string()),
            Origin::Default,
        );
        if let Some(text) = read_optional(&global)? {
            exec_python(&text, &global, &mut ns)?;
            files.push(global);
        }

        let (user, explicit) = if let Some(p) = &opts.config_file {
            (p.clone(), true)
        } else if let Some(p) = std::env::var_os("TMDARC").filter(|s| !s.is_empty()) {
            (PathBuf::from(p), true)
        } else if let Some(Value::Str(p)) = ns.get("TMDARC") {
            (PathBuf::from(ns.expanduser(p)), false)
        } else {
            (Path::new(&home).join(".tmda").join("config"), false)
        };
        ns.set("TMDARC", Value::Str(user.display().to_string()), Origin::Default);
        let exec_mode = ns.get("CONFIG_EXEC").map(Value::is_truthy).unwrap_or(true);
        match read_optional(&user)? {
            Some(text) => {
                if exec_mode {
                    exec_python(&text, &user, &mut ns)?;
                } else {
                    ini::exec(&text, &user, &mut ns)?;
                }
                files.push(user);
            }
            None if explicit => {
                return Err(ConfigError::Io {
                    path: user,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                });
            }
            None => {}
        }
        Config::from_namespace(ns, files)
    }

    /// Apply defaults and types to an already-read namespace.
    pub fn from_namespace(mut ns: Namespace, files: Vec<PathBuf>) -> Result<Config, ConfigError> {
        // Defaults that depend on other settings, in TMDA's order.
        let home = ns.expanduser("~");
        default(&mut ns, "DATADIR", Value::Str(format!("{home}/.tmda")));
        let datadir = str_of(&ns, "DATADIR")?.unwrap_or_default();
        if let Some(env) = ns.getenv("TMDA_FILTER_OUTGOING").filter(|s| !s.is_empty()) {
            ns.set(
                "FILTER_OUTGOING",
                Value::Str(env),
                Origin::Environment("TMDA_FILTER_OUTGOING".into()),
            );
        }
        default(
            &mut ns,
            "FILTER_OUTGOING",
            Value::Str(join(&datadir, "filters/outgoing")),
        );
        default(&mut ns, "CRYPT_KEY_FILE", Value::Str(join(&datadir, "crypt_key")));
        default(&mut ns, "MAIL_TRANSPORT", Value::Str("sendmail".into()));
        default(&mut ns, "MAIL_TRANSFER_AGENT", Value::Str("qmail".into()));
        if !ns.vars.contains_key("SENDMAIL_PROGRAM")
            && let Some(p) = ["/usr/sbin/sendmail", "/usr/lib/sendmail"]
                .into_iter()
                .find(|p| Path::new(p).exists())
        {
            ns.set("SENDMAIL_PROGRAM", Value::Str(p.into()), Origin::Default);
        }
        for var in PATH_VARS {
            if let Some((Value::Str(s), origin)) = ns.vars.get(*var).cloned() {
                let expanded = ns.expanduser(&s);
                ns.set(var, Value::Str(expanded), origin);
            }
        }

        let path = |ns: &Namespace, name: &str| -> Result<Option<PathBuf>, ConfigError> {
            Ok(str_of(ns, name)?.filter(|s| !s.is_empty()).map(PathBuf::from))
        };
        let mail_transport = match str_of(&ns, "MAIL_TRANSPORT")?.as_deref() {
            Some("smtp") => MailTransport::Smtp,
            Some("sendmail") => MailTransport::Sendmail,
            other => {
                return Err(bad(
                    &ns,
                    "MAIL_TRANSPORT",
                    format!(
                        "must be \"smtp\" or \"sendmail\", not {}",
                        other.map_or("None".into(), crate::exit::quote)
                    ),
                ));
            }
        };
        let smtphost = str_of(&ns, "SMTPHOST")?.unwrap_or_else(|| "localhost".into());
        let (host, port) = split_host_port(&smtphost).ok_or_else(|| {
            bad(
                &ns,
                "SMTPHOST",
                format!("{} is not HOST or HOST:PORT", crate::exit::quote(&smtphost)),
            )
        })?;
        let smtp = SmtpSettings {
            host,
            port,
            username: str_of(&ns, "SMTPAUTH_USERNAME")?,
            password: str_of(&ns, "SMTPAUTH_PASSWORD")?.map(Secret),
            tls: match ns.get("SMTPSSL") {
                Some(Value::Str(t)) => match t.to_ascii_lowercase().as_str() {
                    "implicit" | "ssl" | "smtps" => SmtpTls::Implicit,
                    "starttls" | "tls" => SmtpTls::StartTls,
                    "" | "none" | "off" => SmtpTls::None,
                    _ => {
                        return Err(bad(
                            &ns,
                            "SMTPSSL",
                            format!(
                                "must be True, False, \"starttls\" or \"implicit\", not {}",
                                crate::exit::quote(t)
                            ),
                        ));
                    }
                },
                Some(v) if v.is_truthy() => SmtpTls::StartTls,
                _ => SmtpTls::None,
            },
            verify: ns.get("SMTPSSL_VERIFY").map(Value::is_truthy).unwrap_or(true),
            cafile: path(&ns, "SMTPSSL_CAFILE")?,
            keyfile: path(&ns, "SMTPSSL_KEYFILE")?,
            certfile: path(&ns, "SMTPSSL_CERTFILE")?,
            max_sessions_per_connection: int_of(&ns, "SMTP_MAX_SESSIONS_PER_CONNECTION", 0, 0..=u32::MAX as i64)?
                as u32,
        };
        let tags = TagNames {
            confirm: str_list(&ns, "TAGS_CONFIRM", &["confirm"])?,
            dated: str_list(&ns, "TAGS_DATED", &["dated"])?,
            sender: str_list(&ns, "TAGS_SENDER", &["sender"])?,
            keyword: str_list(&ns, "TAGS_KEYWORD", &["keyword"])?,
        };
        for (name, list) in [
            ("TAGS_CONFIRM", &tags.confirm),
            ("TAGS_DATED", &tags.dated),
            ("TAGS_SENDER", &tags.sender),
            ("TAGS_KEYWORD", &tags.keyword),
        ] {
            if list.is_empty() || list.iter().any(|t| t.is_empty()) {
                return Err(bad(&ns, name, "must be a non-empty list of non-empty tag names".into()));
            }
        }
        let delimiter = str_of(&ns, "RECIPIENT_DELIMITER")?.unwrap_or_else(|| "-".into());
        if delimiter.is_empty() {
            return Err(bad(&ns, "RECIPIENT_DELIMITER", "must not be empty".into()));
        }
        let dated_text = str_of(&ns, "DATED_TIMEOUT")?.unwrap_or_else(|| "5d".into());
        let dated_timeout = Interval::parse(&dated_text).map_err(|e| bad(&ns, "DATED_TIMEOUT", e.to_string()))?;
        let mail_followup_to = match ns.get("MAIL_FOLLOWUP_TO") {
            None | Some(Value::None) => None,
            Some(Value::Str(s)) => Some(FollowupLists::File(PathBuf::from(s))),
            Some(Value::List(_) | Value::Tuple(_)) => {
                Some(FollowupLists::List(str_list(&ns, "MAIL_FOLLOWUP_TO", &[])?))
            }
            Some(v) => {
                return Err(bad(
                    &ns,
                    "MAIL_FOLLOWUP_TO",
                    format!("must be a file name or a list of addresses, not {}", v.type_name()),
                ));
            }
        };
        let added_headers_client = header_dict(&ns, "ADDED_HEADERS_CLIENT")?;

        Ok(Config {
            datadir: path(&ns, "DATADIR")?.unwrap_or_default(),
            crypt_key_file: path(&ns, "CRYPT_KEY_FILE")?.unwrap_or_default(),
            allow_mode_640: flag(&ns, "ALLOW_MODE_640"),
            hmac_bytes: int_of(&ns, "HMAC_BYTES", 3, 1..=20)? as usize,
            recipient_delimiter: delimiter,
            tags,
            dated_timeout,
            action_outgoing: str_of(&ns, "ACTION_OUTGOING")?.unwrap_or_else(|| "dated".into()),
            filter_outgoing: path(&ns, "FILTER_OUTGOING")?.unwrap_or_default(),
            mail_transport,
            sendmail_program: path(&ns, "SENDMAIL_PROGRAM")?,
            smtp,
            mail_transfer_agent: str_of(&ns, "MAIL_TRANSFER_AGENT")?.unwrap_or_default(),
            bare_append: path(&ns, "BARE_APPEND")?,
            fingerprint: opt_str_list(&ns, "FINGERPRINT")?,
            added_headers_client,
            purged_headers_client: match ns.get("PURGED_HEADERS_CLIENT") {
                None => vec!["bcc".into(), "resent-bcc".into()],
                Some(_) => opt_str_list(&ns, "PURGED_HEADERS_CLIENT")?,
            },
            message_from_style: style(&ns, "MESSAGE_FROM_STYLE")?,
            message_tag_header_style: style(&ns, "MESSAGE_TAG_HEADER_STYLE")?,
            tmdainject: str_of(&ns, "TMDAINJECT")?.unwrap_or_default(),
            mail_followup_to,
            x_tmda_in_subject: flag(&ns, "X_TMDA_IN_SUBJECT"),
            logfile_outgoing: path(&ns, "LOGFILE_OUTGOING")?,
            confirm_address: str_of(&ns, "CONFIRM_ADDRESS")?.filter(|s| !s.is_empty()),
            username: cell(str_of(&ns, "USERNAME")?),
            hostname: cell(str_of(&ns, "HOSTNAME")?),
            fullname: cell(str_of(&ns, "FULLNAME")?),
            ns,
            files,
        })
    }

    /// Upper-case variables the files set that no TMDA knows, in file order. Lower-case
    /// names are a user's own helpers (TMDA's files are Python) and are not checked.
    pub fn unknown_variables(&self) -> Vec<UnknownVariable> {
        let mut out: Vec<UnknownVariable> = self
            .ns
            .vars
            .iter()
            .filter(|(name, (_, origin))| {
                matches!(origin, Origin::File { .. })
                    && name.bytes().any(|b| b.is_ascii_uppercase())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    && !name.starts_with('_')
                    && !is_known_variable(name)
            })
            .map(|(name, (_, origin))| UnknownVariable {
                name: name.clone(),
                origin: origin.clone(),
                suggestion: nearest_known(name),
            })
            .collect();
        out.sort_by(|a, b| match (&a.origin, &b.origin) {
            (Origin::File { path: pa, line: la }, Origin::File { path: pb, line: lb }) => {
                let rank = |p: &PathBuf| self.files.iter().position(|f| f == p);
                (rank(pa), la).cmp(&(rank(pb), lb))
            }
            _ => std::cmp::Ordering::Equal,
        });
        out
    }

    /// USERNAME and HOSTNAME when the configuration does not set them and they came
    /// from the login name or this machine's name rather than a TMDA variable of the
    /// environment ($TMDAUSER, $TMDAHOST, ...): "USERNAME is not set; using jason (the
    /// login name)". People who move a configuration between machines meet these.
    pub fn identity_fallbacks(&self) -> Vec<String> {
        let mut notes = vec![];
        if str_of(&self.ns, "USERNAME").ok().flatten().is_none()
            && !["TMDAUSER", "QMAILUSER"]
                .iter()
                .any(|v| self.env(v).is_some_and(|s| !s.is_empty()))
        {
            let from = ["USER", "LOGNAME"]
                .iter()
                .find(|v| self.env(v).is_some_and(|s| !s.is_empty()))
                .map(|v| format!("${v}, the login name"))
                .unwrap_or_else(|| "the login name".into());
            notes.push(format!("USERNAME is not set; using {} ({from})", self.username()));
        }
        if str_of(&self.ns, "HOSTNAME").ok().flatten().is_none()
            && !["TMDAHOST", "QMAILHOST", "MAILHOST"]
                .iter()
                .any(|v| self.env(v).is_some_and(|s| !s.is_empty()))
        {
            notes.push(format!(
                "HOSTNAME is not set; using {} (this machine's name)",
                self.hostname()
            ));
        }
        notes
    }

    /// `${NAME}` in filters: the configuration first, then the environment (as TMDA).
    pub fn lookup(&self, name: &str) -> Option<String> {
        let from_config = match name {
            "USERNAME" => Some(self.username().to_string()),
            "HOSTNAME" => Some(self.hostname().to_string()),
            "FULLNAME" => Some(self.fullname().to_string()),
            _ => self.var(name).map(|v| v.py_str()),
        };
        from_config.filter(|v| !v.is_empty()).or_else(|| self.env(name))
    }

    /// Any variable the configuration set (known or not), for `${NAME}` in filters.
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.ns.get(name)
    }

    /// Where a variable was set.
    pub fn origin(&self, name: &str) -> Option<&Origin> {
        self.ns.vars.get(name).map(|(_, o)| o)
    }

    /// An environment variable as the config sees it (`os.environ[...]` assignments first).
    pub fn env(&self, name: &str) -> Option<String> {
        self.ns.getenv(name)
    }

    /// The environment the config assigned, to pass on to child processes.
    pub fn env_assignments(&self) -> &std::collections::BTreeMap<String, String> {
        &self.ns.env
    }

    /// `USERNAME`, else `$TMDAUSER`, `$QMAILUSER`, `$USER`, `$LOGNAME`, else the login name.
    pub fn username(&self) -> &str {
        self.username.get_or_init(|| {
            ["TMDAUSER", "QMAILUSER", "USER", "LOGNAME"]
                .iter()
                .find_map(|v| self.env(v).filter(|s| !s.is_empty()))
                .or_else(|| {
                    crate::os::passwd_field(
                        // SAFETY: passwd_field passes valid out-pointers and a buffer of `l` bytes.
                        |pw, b, l, r| unsafe { libc::getpwuid_r(libc::getuid(), pw, b, l, r) },
                        |pw| pw.pw_name,
                    )
                })
                .unwrap_or_else(|| "<unknown>".into())
        })
    }

    /// `HOSTNAME`, else `$TMDAHOST`, `$QMAILHOST`, `$MAILHOST`, else the host's FQDN.
    pub fn hostname(&self) -> &str {
        self.hostname.get_or_init(|| {
            ["TMDAHOST", "QMAILHOST", "MAILHOST"]
                .iter()
                .find_map(|v| self.env(v).filter(|s| !s.is_empty()))
                .unwrap_or_else(fqdn)
        })
    }

    /// `FULLNAME`, else `$TMDANAME`, `$QMAILNAME`, `$NAME`, `$MAILNAME`, else the GECOS name.
    pub fn fullname(&self) -> &str {
        self.fullname.get_or_init(|| {
            ["TMDANAME", "QMAILNAME", "NAME", "MAILNAME"]
                .iter()
                .find_map(|v| self.env(v).filter(|s| !s.is_empty()))
                .or_else(|| {
                    crate::os::passwd_field(
                        // SAFETY: passwd_field passes valid out-pointers and a buffer of `l` bytes.
                        |pw, b, l, r| unsafe { libc::getpwuid_r(libc::getuid(), pw, b, l, r) },
                        |pw| pw.pw_gecos,
                    )
                    .map(|g| g.split(',').next().unwrap_or("").to_string())
                })
                .unwrap_or_default()
        })
    }

    /// The user's own address, `USERNAME@HOSTNAME`.
    pub fn default_address(&self) -> String {
        format!("{}@{}", self.username(), self.hostname())
    }

    /// The timeout for new dated addresses: `$TMDA_TIMEOUT`, else `DATED_TIMEOUT`.
    pub fn effective_dated_timeout(&self) -> Result<Interval, ConfigError> {
        match self.env("TMDA_TIMEOUT").filter(|s| !s.is_empty()) {
            Some(t) => Interval::parse(&t).map_err(|e| ConfigError::Setting {
                name: "TMDA_TIMEOUT".into(),
                origin: Origin::Environment("TMDA_TIMEOUT".into()),
                message: e.to_string(),
            }),
            None => Ok(self.dated_timeout.clone()),
        }
    }
}

fn cell(v: Option<String>) -> OnceCell<String> {
    let c = OnceCell::new();
    if let Some(v) = v {
        let _ = c.set(v);
    }
    c
}

fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            col: 1,
            message: "the file is not valid UTF-8".into(),
            hint: None,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn exec_python(text: &str, path: &Path, ns: &mut Namespace) -> Result<(), ConfigError> {
    python::exec(text, path, ns)
}

fn default(ns: &mut Namespace, name: &str, value: Value) {
    if !ns.vars.contains_key(name) {
        ns.set(name, value, Origin::Default);
    }
}

fn join(dir: &str, rest: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{rest}")
    } else {
        format!("{dir}/{rest}")
    }
}

/// A setting whose value must never appear in an error or a log line.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "KEY"].iter().any(|w| upper.contains(w))
}

/// A value as an error quotes it, unless the setting is secret.
fn shown(name: &str, v: &Value) -> String {
    if is_secret_name(name) {
        "(value not shown)".into()
    } else {
        v.py_repr()
    }
}

fn bad(ns: &Namespace, name: &str, message: String) -> ConfigError {
    let origin = ns.vars.get(name).map(|(_, o)| o.clone()).unwrap_or(Origin::Default);
    ConfigError::Setting {
        name: name.to_string(),
        origin,
        message,
    }
}

/// A dict of header name: value (`ADDED_HEADERS_CLIENT`, `ADDED_HEADERS_SERVER`), in the
/// order written; a value of None (an unset environment variable) is skipped, as TMDA did.
fn header_dict(ns: &Namespace, name: &str) -> Result<Vec<(String, String)>, ConfigError> {
    match ns.get(name) {
        None | Some(Value::None) => Ok(vec![]),
        Some(Value::Dict(items)) => {
            let mut out = vec![];
            for (k, v) in items {
                match (k, v) {
                    (Value::Str(k), Value::Str(v)) => out.push((k.clone(), v.clone())),
                    (Value::Str(_), Value::None) => {}
                    (k, v) => {
                        return Err(bad(
                            ns,
                            name,
                            format!(
                                "header names and values must be strings, found {} : {}",
                                k.py_repr(),
                                v.py_repr()
                            ),
                        ));
                    }
                }
            }
            Ok(out)
        }
        Some(v) => Err(bad(
            ns,
            name,
            format!("must be a dict of header: value, not {}", v.type_name()),
        )),
    }
}

fn str_of(ns: &Namespace, name: &str) -> Result<Option<String>, ConfigError> {
    match ns.get(name) {
        None | Some(Value::None) => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(v) => Err(bad(
            ns,
            name,
            format!("must be a string, not {} {}", v.type_name(), shown(name, v)),
        )),
    }
}

fn flag(ns: &Namespace, name: &str) -> bool {
    ns.get(name).map(Value::is_truthy).unwrap_or(false)
}

fn int_of(ns: &Namespace, name: &str, dflt: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64, ConfigError> {
    let v = match ns.get(name) {
        None => dflt,
        Some(Value::Int(i)) => *i,
        Some(Value::Bool(b)) => *b as i64,
        Some(v) => {
            return Err(bad(
                ns,
                name,
                format!("must be a whole number, not {} {}", v.type_name(), shown(name, v)),
            ));
        }
    };
    if !range.contains(&v) {
        return Err(bad(
            ns,
            name,
            format!("must be between {} and {}, not {v}", range.start(), range.end()),
        ));
    }
    Ok(v)
}

fn str_list(ns: &Namespace, name: &str, dflt: &[&str]) -> Result<Vec<String>, ConfigError> {
    match ns.get(name) {
        None => Ok(dflt.iter().map(|s| s.to_string()).collect()),
        Some(Value::List(items) | Value::Tuple(items)) => items
            .iter()
            .map(|v| match v {
                Value::Str(s) => Ok(s.clone()),
                other => Err(bad(
                    ns,
                    name,
                    format!("must be a list of strings; found {}", shown(name, other)),
                )),
            })
            .collect(),
        // A lone string is a one-element list (a common slip TMDA tolerated by accident).
        Some(Value::Str(s)) => Ok(vec![s.clone()]),
        Some(v) => Err(bad(
            ns,
            name,
            format!("must be a list of strings, not {}", v.type_name()),
        )),
    }
}

fn opt_str_list(ns: &Namespace, name: &str) -> Result<Vec<String>, ConfigError> {
    match ns.get(name) {
        None | Some(Value::None) => Ok(vec![]),
        _ => str_list(ns, name, &[]),
    }
}

fn style(ns: &Namespace, name: &str) -> Result<HeaderStyle, ConfigError> {
    match str_of(ns, name)?.as_deref() {
        None | Some("angles") => Ok(HeaderStyle::Angles),
        Some("address") => Ok(HeaderStyle::Address),
        Some(other) => Err(bad(
            ns,
            name,
            format!("must be \"angles\" or \"address\", not {}", crate::exit::quote(other)),
        )),
    }
}

/// `host`, `host:port`, `[v6]:port` (TMDA: a trailing `:NUMBER` is the port).
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((h.to_string(), p.parse().ok()?)),
            None if after.is_empty() => Some((h.to_string(), 25)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
            Some((h.to_string(), p.parse().ok()?))
        }
        Some((h, _)) if !h.contains(':') => None,
        _ => Some((s.to_string(), 25)),
    }
}

/// The fully qualified name of this host, as Python's `socket.getfqdn()` finds it.
/// Looked up once per process: it needs a resolver call, and ofmipd wants it per message.
pub fn fqdn() -> String {
    static FQDN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FQDN.get_or_init(lookup_fqdn).clone()
}

fn lookup_fqdn() -> String {
    let Some(short) = crate::os::hostname() else {
        return "localhost".into();
    };
    if short.contains('.') {
        return short;
    }
    canonical_name(&short).filter(|c| c.contains('.')).unwrap_or(short)
}

fn canonical_name(host: &str) -> Option<String> {
    let c_host = std::ffi::CString::new(host).ok()?;
    // SAFETY: hints is zeroed POD; getaddrinfo allocates `res`, freed below.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_flags = libc::AI_CANONNAME;
        hints.ai_family = libc::AF_UNSPEC;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) != 0 || res.is_null() {
            return None;
        }
        let name = (*res).ai_canonname;
        let out = (!name.is_null()).then(|| std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned());
        libc::freeaddrinfo(res);
        out
    }
}

/// Whether warnings about the configuration are wanted: not with `--quiet`, nor with
/// `TMDA_NO_WARN` set (to anything but "" or "0").
pub fn warnings_wanted(quiet: bool) -> bool {
    !quiet && !std::env::var_os("TMDA_NO_WARN").is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Result<Config, ConfigError> {
        let mut ns = Namespace::with_builtins();
        ns.env.insert("HOME".into(), "/home/jason".into());
        python::exec(src, Path::new("config"), &mut ns)?;
        Config::from_namespace(ns, vec![])
    }

    /// See: #11. Unknown upper-case variables are found with the setting probably
    /// meant; TMDA's own (incoming side included), tmda's additions and lower-case
    /// helpers are not.
    #[test]
    fn r11_unknown_variables_and_suggestions() {
        let c = load(
            "USERNMAE = 'jason'\nACTION_INCOMING = 'ok'\nPENDING_DIR = '~/p'\nDELIVERY = '~/Maildir/'\n\
             mine = 1\nMY_OWN_LIST = ['a']\nSMTPSSL_VERIFY = False\nHMAC_BYTE = 3\nX = 1\n_PRIVATE = 2\n",
        )
        .unwrap();
        let found: Vec<(String, Option<&str>, String)> = c
            .unknown_variables()
            .into_iter()
            .map(|u| (u.name.clone(), u.suggestion, u.to_string()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "USERNMAE".into(),
                    Some("USERNAME"),
                    "config:1: USERNMAE is not a TMDA setting; did you mean USERNAME?".into()
                ),
                (
                    "MY_OWN_LIST".into(),
                    None,
                    "config:6: MY_OWN_LIST is not a TMDA setting (a variable of your own? lower-case names are not checked)"
                        .into()
                ),
                ("HMAC_BYTE".into(), Some("HMAC_BYTES"), "config:8: HMAC_BYTE is not a TMDA setting; did you mean HMAC_BYTES?".into()),
                ("X".into(), None, "config:9: X is not a TMDA setting (a variable of your own? lower-case names are not checked)".into()),
            ]
        );
        // Every setting tmda reads and every TMDA variable is known.
        for name in KNOWN_SETTINGS.iter().chain(TMDA_VARIABLES) {
            assert!(is_known_variable(name), "{name}");
        }
        assert_eq!(edit_distance("USERNMAE", "USERNAME"), 1);
        assert_eq!(edit_distance("", "ABC"), 3);
        assert_eq!(nearest_known("SMTPHOTS"), Some("SMTPHOST"));
        assert_eq!(nearest_known("COMPLETELY_DIFFERENT"), None);
    }

    #[test]
    fn defaults_match_tmda() {
        let c = load("").unwrap();
        assert_eq!(c.datadir, PathBuf::from("/home/jason/.tmda"));
        assert_eq!(c.crypt_key_file, PathBuf::from("/home/jason/.tmda/crypt_key"));
        assert_eq!(c.filter_outgoing, PathBuf::from("/home/jason/.tmda/filters/outgoing"));
        assert_eq!(c.hmac_bytes, 3);
        assert_eq!(c.recipient_delimiter, "-");
        assert_eq!(c.tags, TagNames::default());
        assert_eq!(c.dated_timeout.seconds(), 5 * 86400);
        assert_eq!(c.action_outgoing, "dated");
        assert_eq!(c.mail_transport, MailTransport::Sendmail);
        assert_eq!(c.mail_transfer_agent, "qmail");
        assert_eq!(c.smtp.host, "localhost");
        assert_eq!(c.smtp.port, 25);
        assert_eq!(c.smtp.tls, SmtpTls::None);
        assert!(c.smtp.verify);
        assert_eq!(c.purged_headers_client, vec!["bcc", "resent-bcc"]);
        assert_eq!(c.message_from_style, HeaderStyle::Angles);
        assert_eq!(c.message_tag_header_style, HeaderStyle::Angles);
        assert!(c.fingerprint.is_empty() && c.added_headers_client.is_empty());
        assert!(!c.allow_mode_640 && !c.x_tmda_in_subject);
        assert_eq!(c.mail_followup_to, None);
        assert_eq!(c.confirm_address, None);
    }

    /// In the style of TMDA's sample contrib/dot-tmda/config.
    #[test]
    fn a_real_looking_config() {
        let c = load(
            r#"# -*- python -*-
#
# Sample ~/.tmda/config
import os

# Let's use our own domain.
HOSTNAME = "mastaler.com"
USERNAME = 'jason'
FULLNAME = "Jason R. Mastaler"
RECIPIENT_DELIMITER = '+'
DATADIR = "~/.tmda-data/"
CRYPT_KEY_FILE = os.path.join(DATADIR, "crypt_key")
FILTER_OUTGOING = os.path.expanduser("~/.tmda/filters/outgoing-jason")
MAIL_TRANSPORT = "smtp"
SMTPHOST = "mail.mastaler.com:2525"
SMTPAUTH_USERNAME = "jason"
SMTPAUTH_PASSWORD = "6Yu_9iKzs"
SMTPSSL = On
DATED_TIMEOUT = "2w"
HMAC_BYTES = 4
TAGS_DATED = ['dated', 'd', 'exp']
ALLOW_MODE_640 = yes
X_TMDA_IN_SUBJECT = ON
MESSAGE_FROM_STYLE = "address"
FINGERPRINT = ["message-id", "from", "body"]
ADDED_HEADERS_CLIENT = {"X-Fact" : "Father Hennepin Discovered Niagra Falls",
                        "Organization": os.environ.get("ORGANIZATION_UNSET_XYZ")}
PURGED_HEADERS_CLIENT = ["bcc", "resent-bcc", "x-mailer"]
MAIL_FOLLOWUP_TO = ["tmda-users@tmda.net", "postfix-users@postfix.org"]
BARE_APPEND = "~/.tmda/lists/whitelist"
TMDAINJECT = "di"
os.environ["TMDAIDHOST"] = "id.mastaler.com"
MY_OWN_LIST = DATADIR + "lists/friends"
"#,
        )
        .unwrap();
        assert_eq!(c.hostname(), "mastaler.com");
        assert_eq!(c.username(), "jason");
        assert_eq!(c.fullname(), "Jason R. Mastaler");
        assert_eq!(c.default_address(), "jason@mastaler.com");
        assert_eq!(c.recipient_delimiter, "+");
        assert_eq!(c.datadir, PathBuf::from("/home/jason/.tmda-data/"));
        assert_eq!(c.crypt_key_file, PathBuf::from("/home/jason/.tmda-data/crypt_key"));
        assert_eq!(
            c.filter_outgoing,
            PathBuf::from("/home/jason/.tmda/filters/outgoing-jason")
        );
        assert_eq!(c.mail_transport, MailTransport::Smtp);
        assert_eq!((c.smtp.host.as_str(), c.smtp.port), ("mail.mastaler.com", 2525));
        assert_eq!(c.smtp.password, Some(Secret("6Yu_9iKzs".into())));
        assert!(
            !format!("{:?}", c.smtp).contains("6Yu_9iKzs"),
            "password must not show in Debug"
        );
        assert_eq!(c.smtp.tls, SmtpTls::StartTls);
        assert_eq!(c.dated_timeout.seconds(), 14 * 86400);
        assert_eq!(c.hmac_bytes, 4);
        assert_eq!(c.tags.dated, vec!["dated", "d", "exp"]);
        assert!(c.allow_mode_640 && c.x_tmda_in_subject);
        assert_eq!(c.message_from_style, HeaderStyle::Address);
        assert_eq!(c.fingerprint, vec!["message-id", "from", "body"]);
        assert_eq!(
            c.added_headers_client,
            vec![(
                "X-Fact".to_string(),
                "Father Hennepin Discovered Niagra Falls".to_string()
            )]
        );
        assert_eq!(c.purged_headers_client.len(), 3);
        assert_eq!(
            c.mail_followup_to,
            Some(FollowupLists::List(vec![
                "tmda-users@tmda.net".into(),
                "postfix-users@postfix.org".into()
            ]))
        );
        assert_eq!(c.bare_append, Some(PathBuf::from("/home/jason/.tmda/lists/whitelist")));
        assert_eq!(c.tmdainject, "di");
        assert_eq!(c.env("TMDAIDHOST").as_deref(), Some("id.mastaler.com"));
        assert_eq!(
            c.var("MY_OWN_LIST"),
            Some(&Value::Str("~/.tmda-data/lists/friends".into()))
        );
        assert_eq!(
            c.origin("HMAC_BYTES"),
            Some(&Origin::File {
                path: "config".into(),
                line: 20
            })
        );
    }

    #[test]
    fn bad_settings_name_the_variable_and_line() {
        for (src, want) in [
            (
                "HMAC_BYTES = '3'",
                "HMAC_BYTES (config:1): must be a whole number, not str '3'",
            ),
            ("HMAC_BYTES = 0", "HMAC_BYTES (config:1): must be between 1 and 20"),
            (
                "\nDATED_TIMEOUT = '5 days'",
                "DATED_TIMEOUT (config:2): invalid timeout value \"5 days\"",
            ),
            (
                "MAIL_TRANSPORT = 'carrier-pigeon'",
                "MAIL_TRANSPORT (config:1): must be \"smtp\" or \"sendmail\"",
            ),
            (
                "SMTPHOST = 'host:port'",
                "SMTPHOST (config:1): \"host:port\" is not HOST or HOST:PORT",
            ),
            (
                "MESSAGE_FROM_STYLE = 'fancy'",
                "MESSAGE_FROM_STYLE (config:1): must be \"angles\" or \"address\"",
            ),
            ("TAGS_DATED = []", "TAGS_DATED (config:1): must be a non-empty list"),
            (
                "FINGERPRINT = [1]",
                "FINGERPRINT (config:1): must be a list of strings; found 1",
            ),
            (
                "RECIPIENT_DELIMITER = ''",
                "RECIPIENT_DELIMITER (config:1): must not be empty",
            ),
            ("USERNAME = 5", "USERNAME (config:1): must be a string, not int 5"),
            (
                "ADDED_HEADERS_CLIENT = ['x']",
                "ADDED_HEADERS_CLIENT (config:1): must be a dict",
            ),
        ] {
            let e = load(src).unwrap_err().to_string();
            assert!(e.starts_with(want), "{src:?}\n got:  {e}\n want: {want}");
        }
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("localhost"), Some(("localhost".into(), 25)));
        assert_eq!(
            split_host_port("172.16.78.20:2525"),
            Some(("172.16.78.20".into(), 2525))
        );
        assert_eq!(split_host_port("[::1]:587"), Some(("::1".into(), 587)));
        assert_eq!(split_host_port("::1"), Some(("::1".into(), 25)));
        assert_eq!(split_host_port("h:99999"), None);
        assert_eq!(split_host_port(""), None);
    }
}
