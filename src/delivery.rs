//! What `ofmipd` does with an accepted message: tag it with the authenticated user's
//! TMDA configuration and hand it to the MTA, through the same pipeline as
//! `tmda sendmail` ([`crate::inject`]).
//!
//! Personal mode (ofmipd runs as an ordinary user): the pipeline runs in-process, on
//! the session's async task when nothing on the way may block ([`Delivery::route`]),
//! else on a blocking thread.
//! Global mode (started as root): every message is processed by a child process,
//! `tmda sendmail`, running with the authenticated user's uid, gid and supplementary
//! groups, started by the root launcher ([`crate::launcher`]) since this process has no
//! root left. This process only says who authenticated and hands over the message and
//! its envelope; which account, program, arguments and environment is the launcher's
//! decision (it serves ordinary accounts only).
//!
//! The user's config is `DIR/USER/config` with `--configdir DIR`, else `~USER/.tmda/config`.
//! With `--pure-proxy` and no such file the message is passed to
//! `$TMDA_SENDMAIL_PROGRAM` (default /usr/sbin/sendmail) untouched.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::account::Account;
use crate::config::{Config, LoadOptions};
use crate::filter;
use crate::inject::{InjectError, Injector, Options, SenderRestriction};
use crate::launcher::{Answer, Launcher, Submission};
use crate::message::Message;
use crate::sender_policy::{SENDER_REFUSED, SenderPolicy};
use crate::smtp::session::{DeliveryOutcome, Envelope};

/// A received message: in memory when small, else in an unlinked temporary file.
#[derive(Debug)]
pub enum Spooled {
    Memory(Vec<u8>),
    File(File),
}

/// How messages are delivered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub configdir: Option<PathBuf>,
    /// `--vhome-script`: prints a virtual user's home directory given (user, domain).
    pub vhome_script: Option<PathBuf>,
    /// `--vdomains-path`: qmail's virtualdomains file, which names the system user in
    /// charge of a virtual domain (global mode with `--vhome-script`; the launcher reads it).
    pub vdomains_path: PathBuf,
    pub pure_proxy: bool,
    pub throttle_script: Option<PathBuf>,
    /// Global mode: each message goes to `tmda sendmail` run as the user (through the
    /// launcher).
    pub global: bool,
    /// Global mode: the root process that starts children as users (set once the
    /// network process has forked it, just before giving up root).
    pub launcher: std::sync::OnceLock<Arc<Launcher>>,
    /// How long a delivery program may run (`--delivery-timeout`).
    pub timeout: std::time::Duration,
    /// `--restrict-sender`: only the user's own addresses as From and envelope sender.
    pub restrict_sender: Option<Arc<SenderPolicy>>,
    /// This host's name (`--hostname`): delivery status notifications come from
    /// MAILER-DAEMON@ it.
    pub hostname: String,
}

impl SenderPolicy {
    fn restriction(&self, env: &Envelope) -> Result<SenderRestriction, String> {
        Ok(SenderRestriction {
            envelope_sender: env.mail_from.clone(),
            extra: self.allowed_for(&env.user)?,
        })
    }
}

impl Delivery {
    /// `--restrict-sender`'s rule for this message, if it is on.
    fn restriction(&self, env: &Envelope) -> Result<Option<SenderRestriction>, String> {
        self.restrict_sender.as_ref().map(|p| p.restriction(env)).transpose()
    }

    fn config_path(&self, user: &str, account: Option<&Account>) -> Option<PathBuf> {
        match (&self.configdir, account) {
            // The login name becomes a path component: "/x" or "../x" would leave DIR.
            (Some(_), _) if !one_path_component(user) => None,
            (Some(dir), _) => Some(dir.join(user).join("config")),
            (None, Some(a)) => Some(a.home.join(".tmda/config")),
            (None, None) => None,
        }
    }

    /// A virtual user's home from `--vhome-script USER DOMAIN` (qmail vpopmail/vmailmgr),
    /// in personal mode (global mode's is run by the launcher).
    fn vhome(&self, user: &str) -> Result<Option<PathBuf>, String> {
        let Some(script) = &self.vhome_script else {
            return Ok(None);
        };
        // The arguments are positional: neither may become an option.
        let (u, d) = match user.split_once('@') {
            Some(_) => crate::launcher::vhome_args(user).ok_or_else(|| {
                format!(
                    "{} is not a virtual user@domain for {}",
                    crate::exit::quote(user),
                    script.display()
                )
            })?,
            None if !user.starts_with('-') => (user, ""),
            None => return Err(format!("login name {} begins with '-'", crate::exit::quote(user))),
        };
        let mut cmd = Command::new(script);
        cmd.args([u, d]).stdin(Stdio::null()).stdout(Stdio::piped());
        let fail = |e: std::io::Error| format!("{}: {e}", script.display());
        let mut child = crate::child::own_group(&mut cmd).spawn().map_err(fail)?;
        let mut out_r = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || crate::child::read_head(&mut out_r, VHOME_OUTPUT).unwrap_or_default());
        let status = crate::child::wait_until(&mut child, Instant::now() + self.timeout).map_err(fail)?;
        let stdout = reader.join().unwrap_or_default();
        let home = String::from_utf8_lossy(&stdout).trim().to_string();
        if !status.is_some_and(|s| s.success()) || home.is_empty() {
            return Err(format!(
                "{} found no home for {}",
                script.display(),
                crate::exit::quote(user)
            ));
        }
        Ok(Some(PathBuf::from(home)))
    }

    /// Process one message (the spool holds the data as received, LF line endings).
    fn deliver(&self, env: &Envelope, spool: Spooled) -> Ready {
        if let Some(script) = &self.throttle_script {
            if env.user.starts_with('-') {
                // The login is the script's argument: it must not read as an option.
                return Ready::Done(DeliveryOutcome::Permanent(format!(
                    "login name {} begins with '-'",
                    crate::exit::quote(&env.user)
                )));
            }
            // The login name is an argument, never shell text.
            let mut cmd = Command::new(script);
            cmd.arg(&env.user)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let started = Instant::now();
            match crate::child::own_group(&mut cmd)
                .spawn()
                .and_then(|mut c| crate::child::wait_until(&mut c, started + self.timeout))
            {
                Ok(Some(s)) if s.success() => {}
                Ok(Some(_)) => return Ready::Done(DeliveryOutcome::Throttled),
                Ok(None) => {
                    return Ready::Done(DeliveryOutcome::Transient(format!(
                        "throttle script {} did not finish within {} seconds",
                        script.display(),
                        self.timeout.as_secs()
                    )));
                }
                Err(e) => {
                    return Ready::Done(DeliveryOutcome::Transient(format!(
                        "throttle script {}: {e}",
                        script.display()
                    )));
                }
            }
        }
        if self.global {
            return Ready::Done(self.deliver_launched(env, spool));
        }
        let vhome = match self.vhome(&env.user) {
            Ok(v) => v,
            Err(e) => return Ready::Done(DeliveryOutcome::Transient(e)),
        };
        let (path, home) = match &vhome {
            Some(h) => (Some(h.join(".tmda/config")), Some(h.clone())),
            None => {
                let account = Account::lookup_cached(&env.user);
                (self.config_path(&env.user, account.as_ref()), account.map(|a| a.home))
            }
        };
        match self.personal_key(path, home) {
            None => Ready::Done(pass_through(env, spool, self.timeout)),
            Some((path, home)) => match self.restriction(env) {
                Ok(r) => deliver_in_process(path, home, env, spool, r, &self.hostname),
                Err(e) => Ready::Done(DeliveryOutcome::ConfigError(e)),
            },
        }
    }

    /// Which configuration tags a personal server's message: the user's own file if it
    /// exists, else (None, None), the server owner's. `None` means pass the message on
    /// untouched (`--pure-proxy` and no file of the user's).
    fn personal_key(&self, path: Option<PathBuf>, home: Option<PathBuf>) -> Option<CacheKey> {
        let exists = path.as_ref().is_some_and(|p| p.exists());
        if self.pure_proxy && !exists {
            return None;
        }
        Some(if exists { (path, home) } else { (None, None) })
    }

    fn launcher(&self) -> std::io::Result<&Launcher> {
        self.launcher
            .get()
            .map(|l| l.as_ref())
            .ok_or_else(|| std::io::Error::other("no launcher (global mode not set up)"))
    }

    /// Global mode: the launcher delivers `spool` as the login's account (for a
    /// virtual domain, TMDA's process_message_vdomain: as the domain's system user,
    /// with the vhome script's answer as HOME), running `tmda sendmail`, which finds
    /// out itself which configuration applies (this process runs as -u USER and may
    /// not see into a private home or DIR/USER). Its standard error and exit code give
    /// the client's answer ([`run_child`]'s verdict).
    fn deliver_launched(&self, env: &Envelope, spool: Spooled) -> DeliveryOutcome {
        let sub = Submission {
            login: env.user.clone(),
            mail_from: env.mail_from.clone(),
            recipients: env.recipients.clone(),
            received: env.received.clone(),
            smtputf8: env.smtputf8,
        };
        let started = (|| {
            let (stdin, bytes): (std::os::fd::OwnedFd, _) = match spool {
                Spooled::File(f) => (f.into(), None),
                Spooled::Memory(v) => {
                    let (r, w) = std::io::pipe()?;
                    (r.into(), Some((v, w)))
                }
            };
            let (err_r, err_w) = std::io::pipe()?;
            let pending = self.launcher()?.deliver(&sub, stdin, err_w.into())?;
            Ok::<_, std::io::Error>((pending, bytes, err_r))
        })();
        let (pending, bytes, mut err_r) = match started {
            Ok(x) => x,
            Err(e) => return DeliveryOutcome::Transient(format!("cannot start delivery: {e}")),
        };
        // From a thread, so a chatty child cannot deadlock us.
        let writer = bytes.map(|(v, w)| feed(v, w));
        // Room for a line per recipient (see `verdict`).
        let err = crate::child::read_tail(&mut err_r, FATES_OUTPUT);
        let answer = pending.wait();
        if let Some(w) = writer {
            let _ = w.join();
        }
        match answer {
            Ok(Answer::Exited(code)) => verdict(Some(code), &err),
            Ok(Answer::Killed) => verdict(None, &err),
            Ok(Answer::Failed(why)) => DeliveryOutcome::Transient(why),
            Ok(Answer::ConfigError(why)) => DeliveryOutcome::ConfigError(why),
            Ok(Answer::Refused(why)) => DeliveryOutcome::Permanent(why),
            Err(e) => DeliveryOutcome::Transient(format!("cannot start delivery: {e}")),
        }
    }
}

/// Run `cmd` fed `spool` for at most `timeout`: the client's answer from its exit code
/// and standard error.
fn run_child(mut cmd: Command, spool: Spooled, timeout: Duration) -> DeliveryOutcome {
    let (stdin, bytes) = match spool {
        Spooled::File(f) => (Stdio::from(f), None),
        Spooled::Memory(v) => (Stdio::piped(), Some(v)),
    };
    let started = Instant::now();
    let child = crate::child::own_group(&mut cmd)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return DeliveryOutcome::Transient(format!("cannot start delivery: {e}")),
    };
    // Feed an in-memory message and read standard error on threads, so neither a
    // slow reader nor a chatty child can block us while we wait for it.
    let writer = bytes.zip(child.stdin.take()).map(|(v, w)| feed(v, w));
    let errors = child
        .stderr
        .take()
        .map(|mut s| std::thread::spawn(move || crate::child::read_tail(&mut s, 8192)));
    let status = crate::child::wait_until(&mut child, started + timeout);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let err = errors.and_then(|t| t.join().ok()).unwrap_or_default();
    match status {
        Ok(Some(s)) => verdict(s.code(), &err),
        Ok(None) => DeliveryOutcome::Transient(format!("delivery did not finish within {} seconds", timeout.as_secs())),
        Err(e) => DeliveryOutcome::Transient(e.to_string()),
    }
}

/// The most of a vhome script's output that is kept (a home directory's path).
const VHOME_OUTPUT: u64 = 64 * 1024;

/// Write an in-memory message to a child's standard input on a thread of its own.
fn feed(message: Vec<u8>, mut to: impl std::io::Write + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = to.write_all(&message);
    })
}

/// The most of a global-mode `tmda sendmail`'s standard error that is kept: one line
/// per recipient of a message whose copies did not all go through.
const FATES_OUTPUT: usize = 256 * 1024;

/// A delivery child's exit code (`None`: killed by a signal) and standard error as
/// the client's answer. A `tmda sendmail` whose copies did not all go through names
/// each recipient's fate on a line of its own, and the notification it sent (see
/// [`crate::dsn`]).
fn verdict(code: Option<i32>, err: &str) -> DeliveryOutcome {
    // Every line is looked at: each warning is logged, and the rest is the reason.
    let reasons: Vec<&str> = err.lines().filter(|l| !take_warning(l)).collect();
    let why = reasons.last().copied().unwrap_or("").trim().to_string();
    let fates: Vec<crate::dsn::RecipientFate> = err.lines().filter_map(crate::dsn::RecipientFate::parse).collect();
    if code != Some(0) && fates.iter().any(|f| f.failure.is_some()) {
        let notice = err
            .lines()
            .find_map(|l| {
                let after = |marker: &str| l.find(marker).map(|i| l[i + marker.len()..].trim().to_string());
                if let Some(to) = after(crate::dsn::NOTICE_SENT) {
                    let to = to.trim_start_matches('<').trim_end_matches('>').to_string();
                    return Some(crate::dsn::Notice::Sent(to));
                }
                after(crate::dsn::NOTICE_NOT_SENT).map(crate::dsn::Notice::NotSent)
            })
            .unwrap_or(crate::dsn::Notice::NotNeeded);
        return DeliveryOutcome::Partial { fates, notice };
    }
    match code {
        Some(0) => DeliveryOutcome::Accepted,
        // Temporary, or the user's setup is broken (config, key, input): keep the message.
        Some(78) => DeliveryOutcome::ConfigError(why),
        Some(77) if why.contains(SENDER_REFUSED) => DeliveryOutcome::SenderRefused(why),
        Some(75) | Some(77) | Some(66) | Some(74) | None => DeliveryOutcome::Transient(why),
        Some(_) => DeliveryOutcome::Permanent(why),
    }
}

/// The prefix of the configuration warnings `tmda sendmail` prints (see
/// `cli::warn_about_config`).
const CHILD_WARNING: &str = "tmda sendmail: warning: ";

/// A child's configuration warning goes to ofmipd's log (once), never into the
/// client's answer. True if `line` was one.
fn take_warning(line: &str) -> bool {
    match line.strip_prefix(CHILD_WARNING) {
        Some(w) => {
            log_warning_once(w);
            true
        }
        None => false,
    }
}

/// Log a warning about a user's configuration, the first time it is seen (a daemon
/// would otherwise repeat it for every message).
fn log_warning_once(text: &str) {
    static SEEN: std::sync::Mutex<Option<std::collections::HashSet<String>>> = std::sync::Mutex::new(None);
    let Ok(mut seen) = SEEN.lock() else { return };
    let seen = seen.get_or_insert_with(Default::default);
    // Bounded: past this many distinct warnings, the log has made its point.
    if seen.len() < 10_000 && seen.insert(text.to_string()) {
        eprintln!("tmda-ofmipd[{}]: warning: {text}", std::process::id());
    }
}

/// The program `--pure-proxy` hands messages to (the MTA gets them unaltered).
pub fn pass_through_program() -> PathBuf {
    std::env::var_os("TMDA_SENDMAIL_PROGRAM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/sbin/sendmail".into())
}

/// `--pure-proxy`'s command: [`pass_through_program`] `-f SENDER -i -- RECIPIENTS`.
pub fn pass_through_command(sender: &str, recipients: &[String]) -> Command {
    let mut cmd = Command::new(pass_through_program());
    cmd.args(["-f", sender, "-i", "--"]).args(recipients);
    cmd
}

/// `--pure-proxy` in personal mode, as the daemon's own user.
fn pass_through(env: &Envelope, spool: Spooled, timeout: Duration) -> DeliveryOutcome {
    run_child(pass_through_command(&env.mail_from, &env.recipients), spool, timeout)
}

/// A user's configuration, outgoing filter and key, parsed once and reused while none
/// of the files they came from changes (checked by modification time on every message).
pub struct Prepared {
    config: Config,
    filter: crate::filter::Filter,
    tagger: Option<crate::address::Tagger>,
    stamps: Vec<(PathBuf, Option<std::time::SystemTime>)>,
    /// When the stamps were last found unchanged.
    checked: std::sync::Mutex<Instant>,
    /// For Message-IDs, asked once (the server does not fork after it starts).
    pid: u32,
}

type CacheKey = (Option<PathBuf>, Option<PathBuf>);

static PREPARED: std::sync::Mutex<Option<std::collections::HashMap<CacheKey, Arc<Prepared>>>> =
    std::sync::Mutex::new(None);

fn stamp(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// How long a parsed configuration is used before its files are looked at again. The
/// checks (a stat call per file) cost more than tagging a small message; a second is
/// not long enough for anyone to notice after an edit.
const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The parsed configuration for this key, if it is cached and no file it came from
/// changed (as of at most [`RECHECK_AFTER`] ago).
fn prepared_cached(key: &CacheKey) -> Option<Arc<Prepared>> {
    let p = PREPARED
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|m| m.get(key).cloned()))?;
    let mut checked = p.checked.lock().ok()?;
    if checked.elapsed() < RECHECK_AFTER {
        return Some(p.clone());
    }
    if !p.stamps.iter().all(|(path, t)| stamp(path) == *t) {
        return None;
    }
    *checked = Instant::now();
    drop(checked);
    Some(p)
}

fn prepare(config_file: Option<PathBuf>, home: Option<PathBuf>) -> Result<Arc<Prepared>, String> {
    let key = (config_file.clone(), home.clone());
    if let Some(p) = prepared_cached(&key) {
        return Ok(p);
    }
    let config = Config::load(&LoadOptions {
        config_file: config_file.clone(),
        home,
    })
    .map_err(|e| e.to_string())?;
    if crate::config::warnings_wanted(false) {
        for u in config.unknown_variables() {
            log_warning_once(&u.to_string());
        }
    }
    let lookup = |n: &str| config.lookup(n);
    let filter = filter::parse_file(&config.filter_outgoing, &lookup).map_err(|e| e.to_string().replace('\n', "; "))?;
    let global = std::env::var("GLOBAL_TMDARC")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/etc/tmdarc".into());
    let mut files: Vec<PathBuf> = vec![PathBuf::from(global), config.crypt_key_file.clone()];
    files.extend(config_file);
    files.extend(config.files.iter().cloned());
    files.extend(filter.files.iter().cloned());
    let stamps = files
        .into_iter()
        .map(|f| {
            let t = stamp(&f);
            (f, t)
        })
        .collect();
    let tagger = crate::address::Tagger::from_config(&config).ok();
    let p = Arc::new(Prepared {
        config,
        filter,
        tagger,
        stamps,
        checked: std::sync::Mutex::new(Instant::now()),
        pid: std::process::id(),
    });
    if let Ok(mut c) = PREPARED.lock() {
        c.get_or_insert_with(Default::default).insert(key, p.clone());
    }
    Ok(p)
}

fn deliver_in_process(
    config_file: Option<PathBuf>,
    home: Option<PathBuf>,
    env: &Envelope,
    spool: Spooled,
    restrict: Option<SenderRestriction>,
    hostname: &str,
) -> Ready {
    let prepared = match prepare(config_file, home) {
        Ok(p) => p,
        Err(e) => return Ready::Done(DeliveryOutcome::ConfigError(e)),
    };
    let msg = match spool {
        Spooled::File(f) => Message::read_from(f),
        Spooled::Memory(v) => Message::from_vec(v),
    };
    match msg {
        Ok(msg) => process(prepared, env, msg, restrict, hostname),
        Err(e) => Ready::Done(DeliveryOutcome::Permanent(e.to_string())),
    }
}

fn injector<'a>(prepared: &'a Prepared, now: u64) -> Injector<'a> {
    let mut injector = Injector::new(&prepared.config, &prepared.filter, now);
    injector.pid = prepared.pid;
    if let Some(t) = &prepared.tagger {
        injector.lend_tagger(t);
    }
    injector
}

fn options(env: &Envelope, restrict_sender: Option<SenderRestriction>) -> Options {
    Options {
        recipients: env.recipients.clone(),
        received: Some(env.received.clone()),
        fallback_fullname: None,
        smtputf8: env.smtputf8,
        restrict_sender,
    }
}

/// Whether the copies can go out through the async relay client. (LOGFILE_OUTGOING
/// entries are written as each copy is sent, by the synchronous pipeline.)
pub(crate) fn async_relay(cfg: &Config) -> bool {
    cfg.mail_transport == crate::config::MailTransport::Smtp
        && crate::transport::relay::handles(&cfg.smtp)
        && cfg.logfile_outgoing.is_none()
}

/// Tag a parsed message (where blocking is allowed): the copies to send from the
/// async task, or the whole pipeline run here with the user's transport.
fn process(
    prepared: Arc<Prepared>,
    env: &Envelope,
    msg: Message,
    restrict: Option<SenderRestriction>,
    hostname: &str,
) -> Ready {
    let opts = options(env, restrict);
    let now = crate::clock::now().unwrap_or(0);
    // A large message stays in its spool file and is streamed by the synchronous client
    // (the async one holds the text in memory).
    if async_relay(&prepared.config) && msg.in_memory() {
        let planned = injector(&prepared, now).plan(&msg, &opts);
        return match planned {
            Ok(plan) => Ready::Send(Box::new(Outgoing {
                prepared: prepared.clone(),
                msg,
                plan,
                sender: env.mail_from.clone(),
                hostname: hostname.to_string(),
            })),
            Err(e) => Ready::Done(outcome_of(&e)),
        };
    }
    let mut transport = match crate::transport::for_config(&prepared.config) {
        Ok(t) => t,
        Err(e) => return Ready::Done(DeliveryOutcome::Transient(e.to_string())),
    };
    Ready::Done(match injector(&prepared, now).inject(&msg, &opts, transport.as_mut()) {
        Ok(_) => DeliveryOutcome::Accepted,
        Err(InjectError::Delivery(fates)) => {
            let fates = fates.report();
            let notice = crate::inject::notify(transport.as_mut(), hostname, &env.mail_from, &msg, &fates);
            DeliveryOutcome::Partial { fates, notice }
        }
        Err(e) => outcome_of(&e),
    })
}

/// Where a received message is processed next.
pub enum Route {
    Ready(Ready),
    /// On a thread that may block: [`Delivery::run`].
    Blocking(BlockingJob),
}

/// A message that needs no more blocking work.
pub enum Ready {
    /// Tagged; the copies go to a plain SMTP relay from the async task.
    Send(Box<Outgoing>),
    Done(DeliveryOutcome),
}

pub enum BlockingJob {
    /// Everything still to do.
    Spool(Spooled),
    /// Parsed, with the user's configuration (and `--restrict-sender`'s rule), but its
    /// tagging needs to block.
    Parsed(Arc<Prepared>, Box<Message>, Option<SenderRestriction>),
}

/// A tagged message and its copies, for the async relay client.
pub struct Outgoing {
    prepared: Arc<Prepared>,
    msg: Message,
    plan: crate::inject::Plan,
    /// The envelope sender, who is told about failed recipients.
    sender: String,
    hostname: String,
}

impl Outgoing {
    pub async fn send(self) -> DeliveryOutcome {
        let smtp = &self.prepared.config.smtp;
        match crate::transport::relay::send(smtp, &crate::config::fqdn(), &self.msg, &self.plan)
            .await
            .map_err(InjectError::from)
        {
            Ok(()) => DeliveryOutcome::Accepted,
            Err(InjectError::Delivery(fates)) => {
                let fates = fates.report();
                if !crate::dsn::wanted(&fates) {
                    return DeliveryOutcome::Partial {
                        fates,
                        notice: crate::dsn::Notice::NotNeeded,
                    };
                }
                // Rare: the synchronous client sends the notification, from a thread
                // that may block.
                let Outgoing {
                    prepared,
                    msg,
                    sender,
                    hostname,
                    ..
                } = self;
                tokio::task::spawn_blocking(move || {
                    let notice = match crate::transport::for_config(&prepared.config) {
                        Ok(mut t) => crate::inject::notify(t.as_mut(), &hostname, &sender, &msg, &fates),
                        Err(e) => crate::dsn::Notice::NotSent(e.to_string()),
                    };
                    DeliveryOutcome::Partial { fates, notice }
                })
                .await
                .unwrap_or_else(|e| DeliveryOutcome::Transient(format!("delivery crashed: {e}")))
            }
            Err(e) => outcome_of(&e),
        }
    }
}

impl Delivery {
    /// Decide where `spool` is processed. The common case (personal mode, a small
    /// message, a user whose account and configuration are cached, nothing that runs a
    /// program or writes a file, a plain SMTP relay) is tagged right here on the
    /// caller's (async) thread; nothing on that way waits on anything but local file
    /// metadata and list files. The rest goes to [`Delivery::run`].
    pub fn route(&self, env: &Envelope, spool: Spooled) -> Route {
        let blocking = |spool| Route::Blocking(BlockingJob::Spool(spool));
        if self.global || self.vhome_script.is_some() || self.throttle_script.is_some() {
            return blocking(spool);
        }
        let Spooled::Memory(bytes) = spool else {
            return blocking(spool);
        };
        let Some(account) = Account::remembered(&env.user) else {
            return blocking(Spooled::Memory(bytes));
        };
        let path = self.config_path(&env.user, account.as_ref());
        let Some(key) = self.personal_key(path, account.map(|a| a.home)) else {
            return blocking(Spooled::Memory(bytes));
        };
        let Some(prepared) = prepared_cached(&key) else {
            return blocking(Spooled::Memory(bytes));
        };
        let msg = match Message::from_vec(bytes) {
            Ok(m) => m,
            Err(e) => return Route::Ready(Ready::Done(DeliveryOutcome::Permanent(e.to_string()))),
        };
        let restrict = match self.restriction(env) {
            Ok(r) => r,
            Err(e) => return Route::Ready(Ready::Done(DeliveryOutcome::ConfigError(e))),
        };
        if !async_relay(&prepared.config) || !msg.in_memory() {
            return Route::Blocking(BlockingJob::Parsed(prepared, Box::new(msg), restrict));
        }
        let mut injector = injector(&prepared, crate::clock::now().unwrap_or(0));
        injector.set_inline(true);
        let planned = injector.plan(&msg, &options(env, restrict.clone()));
        drop(injector);
        match planned {
            Ok(plan) => Route::Ready(Ready::Send(Box::new(Outgoing {
                prepared,
                msg,
                plan,
                sender: env.mail_from.clone(),
                hostname: self.hostname.clone(),
            }))),
            Err(InjectError::WouldBlock) => Route::Blocking(BlockingJob::Parsed(prepared, Box::new(msg), restrict)),
            Err(e) => Route::Ready(Ready::Done(outcome_of(&e))),
        }
    }

    /// Process a message where blocking is allowed.
    pub fn run(&self, env: &Envelope, job: BlockingJob) -> Ready {
        match job {
            BlockingJob::Spool(spool) => self.deliver(env, spool),
            BlockingJob::Parsed(prepared, msg, restrict) => process(prepared, env, *msg, restrict, &self.hostname),
        }
    }
}

fn outcome_of(e: &InjectError) -> DeliveryOutcome {
    match e {
        // The callers that can meet it send the notification themselves.
        InjectError::Delivery(fates) => {
            let fates = fates.report();
            let notice = if crate::dsn::wanted(&fates) {
                crate::dsn::Notice::NotSent("not attempted".into())
            } else {
                crate::dsn::Notice::NotNeeded
            };
            DeliveryOutcome::Partial { fates, notice }
        }
        InjectError::Action(_) | InjectError::NoRecipients => DeliveryOutcome::Permanent(e.to_string()),
        InjectError::Config(_) | InjectError::Filter(_) => DeliveryOutcome::ConfigError(e.to_string()),
        InjectError::SenderNotAllowed { .. } => DeliveryOutcome::SenderRefused(e.to_string()),
        // Upstream trouble, or the user's configuration: the client keeps the message.
        _ => DeliveryOutcome::Transient(e.to_string()),
    }
}

/// A login name usable as one directory name under --configdir.
fn one_path_component(user: &str) -> bool {
    !user.is_empty() && !user.starts_with('.') && !user.contains('/') && !user.chars().any(char::is_control)
}

/// The path a per-user config would have (for start-up checks and logs).
pub fn describe_config(dir: Option<&Path>, user: &str) -> String {
    match dir {
        Some(d) => d.join(user).join("config").display().to_string(),
        None => format!("~{user}/.tmda/config"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// See: #10 (8). The vhome script's arguments are positional: a login whose name or
    /// domain begins with '-' must not reach it as an option.
    #[test]
    fn vhome_script_arguments_never_become_options() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let script = d.path().join("vhome");
        std::fs::write(&script, "#!/bin/sh\necho \"/homes/$2/$1\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let delivery = Delivery {
            configdir: None,
            vhome_script: Some(script),
            vdomains_path: d.path().join("virtualdomains"),
            pure_proxy: false,
            throttle_script: None,
            global: false,
            launcher: Default::default(),
            timeout: Duration::from_secs(10),
            restrict_sender: None,
            hostname: "mx.test".into(),
        };
        assert_eq!(
            delivery.vhome("virt@virtual.test"),
            Ok(Some(PathBuf::from("/homes/virtual.test/virt")))
        );
        for bad in ["-virt@virtual.test", "virt@-virtual.test", "-x", "a@b@c"] {
            assert!(delivery.vhome(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn login_names_stay_inside_the_configdir() {
        for ok in ["alice", "alice@example.com", "a.b", "user-1"] {
            assert!(one_path_component(ok), "{ok}");
        }
        for bad in ["", "/etc/tmda", "../bob", "..", ".hidden", "a/b", "a\nb"] {
            assert!(!one_path_component(bad), "{bad:?}");
        }
    }
}
