//! `tmda pending` (`tmda-pending`): look at and dispose of the messages `tmda filter`
//! holds, with TMDA's options and output (docs/design/incoming.md §10); beyond TMDA, a
//! full-screen list in a terminal, `--json` and `--digest`.
//!
//! Releasing goes through [`crate::incoming::send_release`], the code `tmda filter`
//! releases confirmed messages with. As in TMDA, the held copy stays queued until the
//! released copy comes back through `tmda filter` (which then delivers it and removes
//! the held one); so it leaves the queue only after the transport accepted the copy.
//! Each message is locked while it is released or deleted, and a release stamps the
//! file's modification time, so two runs at once send a message once.

mod format;
mod tui;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{ArgAction, CommandFactory};

use crate::address::Tagger;
use crate::config::incoming::Incoming;
use crate::config::{Config, LoadOptions};
use crate::exit::{Sysexit, quote};
use crate::incoming::{IncomingError, envelope::confirm_append_address, send_release};
use crate::pending::{Format, MessageId, PendingError, Queue, ReleaseMode, Stored, append_address};
use crate::transport::Transport;

#[derive(Debug, clap::Parser)]
#[command(
    version,
    disable_version_flag = true,
    about = "List, release and delete the messages tmda filter holds (TMDA's tmda-pending)",
    long_about = "A TMDA pending queue manipulation tool, as TMDA's tmda-pending. If one or more MESSAGES \
are given, operate just on them; if - is given, on the ids read from standard input; otherwise on every \
message in the pending queue (PENDING_DIR). By default each message is shown and you choose what to do \
with it: in a terminal, on a full-screen list (arrow keys; r release, d delete, w whitelist and release, \
b blacklist and delete, s show, space mark, q quit); on a pipe, with a dumb terminal or with \
--line-prompts, with TMDA's line prompts. With -b nothing is asked.",
    after_help = "Examples:\n  tmda pending                     (interactively operate on all pending messages)\n  \
tmda pending -b -T               (a terse listing of all pending messages)\n  \
tmda pending -b -r 1012182077.5803 1012939546.7870\n  \
tmda pending -b -T | grep foobar | cut -f1 | tmda pending -b -r -\n  \
tmda pending -q -b -d -O 30d     (silently delete all messages older than 30 days)\n  \
tmda pending -C -b -s | mail -s 'TMDA pending summary' me\n  \
tmda pending --digest            (mail yourself the new held messages, for a timer)"
)]
pub struct Args {
    /// Message ids (TIMESTAMP.PID), or - to read them from standard input
    #[arg(value_name = "MESSAGES")]
    pub messages: Vec<String>,
    /// Show full version information and exit
    #[arg(short = 'V')]
    pub full_version: bool,
    /// Print version and exit
    #[arg(long = "version", action = ArgAction::Version)]
    version: Option<bool>,
    /// Virtual users: run SCRIPT USER DOMAIN and use its output as HOME
    #[arg(long = "vhome-script", value_name = "SCRIPT", help_heading = "General")]
    pub vhome_script: Option<PathBuf>,
    /// The user name for --vhome-script (default: $USER, else $LOGNAME)
    #[arg(long = "vhome-user", value_name = "USER", help_heading = "General")]
    pub vhome_user: Option<String>,
    /// The domain for --vhome-script (default: this machine's name)
    #[arg(long = "vhome-domain", value_name = "DOMAIN", help_heading = "General")]
    pub vhome_domain: Option<String>,
    /// Read this configuration file instead of ~/.tmda/config (sets TMDARC)
    #[arg(short = 'c', long = "config-file", value_name = "FILE", help_heading = "General")]
    pub config_file: Option<PathBuf>,
    /// Display output (default)
    #[arg(short = 'v', long = "verbose", overrides_with = "quiet", help_heading = "General")]
    pub verbose: bool,
    /// Suppress output (not with interactive use)
    #[arg(short = 'q', long = "quiet", overrides_with = "verbose", help_heading = "General")]
    pub quiet: bool,
    /// Don't operate on messages, just show what would be done (implies --verbose)
    #[arg(short = 'p', long = "pretend", help_heading = "General")]
    pub pretend: bool,
    /// Show each message and ask what to do with it (default)
    #[arg(
        short = 'i',
        long = "interactive",
        overrides_with = "batch",
        help_heading = "General"
    )]
    pub interactive: bool,
    /// Operate without asking (use with caution)
    #[arg(
        short = 'b',
        long = "batch",
        overrides_with = "interactive",
        help_heading = "General"
    )]
    pub batch: bool,
    /// Only messages not in PENDING_CACHE (not seen before); add them to it
    #[arg(short = 'C', long = "cache", help_heading = "General")]
    pub cache: bool,
    /// Interactive mode with TMDA's line prompts even in a terminal
    #[arg(long = "line-prompts", help_heading = "General")]
    pub line_prompts: bool,
    /// Release the messages
    #[arg(short = 'r', long = "release", overrides_with_all = ["delete", "blacklist", "whitelist", "show"], help_heading = "Actions")]
    pub release: bool,
    /// Use ADDRESS instead of the message's X-TMDA-Recipient for the release address and
    /// as the recipient of a release
    #[arg(short = 'R', long = "recipient", value_name = "ADDRESS", help_heading = "Actions")]
    pub recipient: Option<String>,
    /// Delete the messages
    #[arg(short = 'd', long = "delete", overrides_with_all = ["release", "blacklist", "whitelist", "show"], help_heading = "Actions")]
    pub delete: bool,
    /// Append each sender to PENDING_BLACKLIST_APPEND
    #[arg(short = 'B', long = "blacklist", overrides_with_all = ["release", "delete", "whitelist", "show"], help_heading = "Actions")]
    pub blacklist: bool,
    /// Append each sender to PENDING_WHITELIST_APPEND (and release the message if
    /// PENDING_WHITELIST_RELEASE is 1)
    #[arg(short = 'W', long = "whitelist", overrides_with_all = ["release", "delete", "blacklist", "show"], help_heading = "Actions")]
    pub whitelist: bool,
    /// Show each whole message with $PAGER
    #[arg(short = 'S', long = "show", overrides_with_all = ["release", "delete", "blacklist", "whitelist"], help_heading = "Actions")]
    pub show: bool,
    /// Add each message's release address (<mailto:...>) to its summary
    #[arg(short = 's', long = "summary", help_heading = "Actions")]
    pub summary: bool,
    /// One line per message: the id and TERSE_SUMMARY_HEADERS, tab-separated
    #[arg(short = 'T', long = "terse-summary", help_heading = "Actions")]
    pub terse: bool,
    /// The summaries as one JSON array (implies --batch)
    #[arg(long = "json", help_heading = "Actions")]
    pub json: bool,
    /// Mail yourself one message listing the messages held since the last digest, each
    /// with its release address (for a timer)
    #[arg(long = "digest", conflicts_with_all = ["release", "delete", "blacklist", "whitelist", "show", "json"], help_heading = "Actions")]
    pub digest: bool,
    /// Operate on the messages oldest first (default)
    #[arg(
        short = 'A',
        long = "ascending",
        overrides_with = "descending",
        help_heading = "Messages"
    )]
    pub ascending: bool,
    /// Operate on the messages newest first
    #[arg(
        short = 'D',
        long = "descending",
        overrides_with = "ascending",
        help_heading = "Messages"
    )]
    pub descending: bool,
    /// Only messages younger than INTERVAL (s, m, h, d, w, M or Y: 30d)
    #[arg(short = 'Y', long = "younger", value_name = "INTERVAL", help_heading = "Messages")]
    pub younger: Option<String>,
    /// Only messages older than INTERVAL
    #[arg(short = 'O', long = "older", value_name = "INTERVAL", help_heading = "Messages")]
    pub older: Option<String>,
}

/// A failure: what to print after the program name, and the exit status.
#[derive(Debug)]
pub struct Fail(pub String, pub Sysexit);

fn config_fail(e: crate::config::ConfigError) -> Fail {
    let text = e.to_string();
    let code = crate::error::Error::Config(e).exit_code();
    Fail(text, code)
}

impl From<PendingError> for Fail {
    fn from(e: PendingError) -> Fail {
        Fail(e.to_string(), e.exit_code())
    }
}

impl From<crate::key::KeyError> for Fail {
    fn from(e: crate::key::KeyError) -> Fail {
        Fail(e.to_string(), e.exit_code())
    }
}

impl From<IncomingError> for Fail {
    fn from(e: IncomingError) -> Fail {
        let code = match &e {
            IncomingError::Send { source, .. } => source.exit_code(),
            IncomingError::Pending(p) => p.exit_code(),
            IncomingError::Message(_) => Sysexit::DataErr,
            _ => Sysexit::TempFail,
        };
        Fail(e.to_string(), code)
    }
}

impl Fail {
    /// Standard output was closed under us (`tmda pending -b | head`): stop quietly and
    /// exit 0, as the other applets do.
    fn broken_pipe() -> Fail {
        Fail(String::new(), Sysexit::Ok)
    }

    fn is_broken_pipe(&self) -> bool {
        self.0.is_empty() && self.1 == Sysexit::Ok
    }
}

fn io_fail(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Fail {
    move |e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Fail::broken_pipe();
        }
        Fail(
            format!("{what}: {}", crate::exit::describe_io(&e)),
            crate::exit::io_exit_code(&e),
        )
    }
}

/// Parse `raw` (argv, program name first) and run.
pub fn main(raw: &[OsString], name: &str) -> ExitCode {
    let args: Args = match super::parse_own(super::Applet::Pending, raw, name) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.full_version {
        println!("{}", super::full_version());
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(f) if f.is_broken_pipe() => ExitCode::SUCCESS,
        Err(Fail(msg, code)) => {
            let _ = std::io::stdout().flush();
            eprintln!("{name}: {msg}");
            ExitCode::from(code as u8)
        }
    }
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    Pass,
    Show,
    Release,
    Delete,
    Whitelist,
    Blacklist,
}

impl Disposal {
    fn word(self) -> &'static str {
        match self {
            Disposal::Pass => "pass",
            Disposal::Show => "show",
            Disposal::Release => "release",
            Disposal::Delete => "delete",
            Disposal::Whitelist => "whitelist",
            Disposal::Blacklist => "blacklist",
        }
    }
}

/// The settings of one run, from the options and the configuration.
pub(crate) struct Run {
    config: Config,
    inc: Incoming,
    queue: Queue,
    verbose: bool,
    pretend: bool,
    cache: bool,
    disposal: Option<Disposal>,
    recipient: Option<String>,
    mailto: bool,
    terse: bool,
    json: bool,
    younger: Option<u64>,
    older: Option<u64>,
    now: u64,
    /// Releases stamped after this were made by another run while we worked.
    listed_at: SystemTime,
    tagger: Option<Tagger>,
    transport: Option<Box<dyn Transport>>,
    out: std::io::BufWriter<std::io::Stdout>,
    /// Failures on single messages: reported, the run goes on, the exit status says so.
    failed: Option<Sysexit>,
    /// Where each listed message was, from one scan of the queue.
    known: HashMap<MessageId, PathBuf>,
}

fn interval(opt: &str, text: &str) -> Result<u64, Fail> {
    crate::interval::Interval::parse(text)
        .map(|i| i.seconds())
        .map_err(|e| Fail(format!("{opt} {}: {e}", quote(text)), Sysexit::Usage))
}

fn run(args: Args) -> Result<u8, Fail> {
    if let Some(c) = &args.config_file {
        // Before the configuration is read (TMDA set it too late: Q3).
        super::set_env("TMDARC", c);
    }
    if let Some(script) = &args.vhome_script
        && let Some(code) = vhome(script, args.vhome_user.as_deref(), args.vhome_domain.as_deref())?
    {
        return Ok(code);
    }
    let younger = args.younger.as_deref().map(|t| interval("-Y", t)).transpose()?;
    let older = args.older.as_deref().map(|t| interval("-O", t)).transpose()?;
    let config = Config::load(&LoadOptions {
        config_file: args.config_file.clone(),
        home: None,
    })
    .map_err(config_fail)?;
    let inc = config.incoming().map_err(config_fail)?;
    let format = Format::parse(&inc.pending_queue_format)?;
    let queue = Queue::new(inc.pending_dir.clone(), format);
    let disposal = [
        (args.release, Disposal::Release),
        (args.delete, Disposal::Delete),
        (args.blacklist, Disposal::Blacklist),
        (args.whitelist, Disposal::Whitelist),
        (args.show, Disposal::Show),
    ]
    .into_iter()
    .find(|(on, _)| *on)
    .map(|(_, d)| d);
    let interactive = !args.batch && !args.json && !args.digest;
    // TMDA crashed on these after doing part of the work (Q18); we refuse up front.
    match disposal {
        Some(Disposal::Whitelist) if inc.pending_whitelist_append.is_none() => {
            return Err(Fail(
                "-W needs PENDING_WHITELIST_APPEND in the configuration".into(),
                Sysexit::Config,
            ));
        }
        Some(Disposal::Blacklist) if inc.pending_blacklist_append.is_none() => {
            return Err(Fail(
                "-B needs PENDING_BLACKLIST_APPEND in the configuration".into(),
                Sysexit::Config,
            ));
        }
        _ => {}
    }
    if !queue.exists() {
        println!("Pending Queue does not exist, exiting.");
        return Ok(1);
    }
    let now = crate::clock::now().map_err(|e| Fail(e.to_string(), Sysexit::Software))?;
    let mut known = HashMap::new();
    let (ids, from_stdin) = message_ids(&args.messages, &queue, &mut known)?;
    let mut ids = ids;
    // Numbers, not strings (TMDA sorted ids as strings, so 999.1 came after 1000.1).
    ids.sort_by(|a, b| match (a, b) {
        (Ok(x), Ok(y)) => x.cmp(y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(x), Err(y)) => x.cmp(y),
    });
    if args.descending {
        ids.reverse();
    }
    let mut run = Run {
        verbose: (!args.quiet || args.pretend || interactive) && !args.json,
        pretend: args.pretend,
        cache: args.cache,
        disposal,
        recipient: args.recipient.clone(),
        mailto: args.summary,
        terse: args.terse,
        json: args.json,
        younger,
        older,
        now,
        listed_at: SystemTime::now(),
        tagger: None,
        transport: None,
        out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        failed: None,
        known,
        config,
        inc,
        queue,
    };
    if args.digest {
        return run.digest(&ids);
    }
    if interactive {
        let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        let dumb = std::env::var("TERM").map_or(true, |t| t.is_empty() || t == "dumb");
        if tty && !dumb && !args.line_prompts && !from_stdin {
            return tui::run(&mut run, ids);
        }
    }
    run.main_loop(ids, interactive, from_stdin)
}

type IdArg = Result<MessageId, String>;

/// The ids to work on: the arguments (`-` reads more from standard input), else the
/// whole queue. Arguments that are not ids are kept, to be reported as not found.
fn message_ids(
    args: &[String],
    queue: &Queue,
    known: &mut HashMap<MessageId, PathBuf>,
) -> Result<(Vec<IdArg>, bool), Fail> {
    let mut out: Vec<IdArg> = vec![];
    let mut stdin = false;
    for a in args {
        if a == "-" {
            if !stdin {
                stdin = true;
                let mut text = String::new();
                std::io::stdin()
                    .lock()
                    .read_to_string(&mut text)
                    .map_err(io_fail("standard input"))?;
                out.extend(
                    text.split_whitespace()
                        .map(|w| MessageId::parse(w).map_err(|_| w.to_string())),
                );
            }
        } else {
            out.push(MessageId::parse(a).map_err(|_| a.clone()));
        }
    }
    // One directory scan serves every lookup: a Maildir id whose file names another
    // host is otherwise found by scanning the directory again for each message.
    if (out.is_empty() && !stdin) || queue.format() == Format::Maildir {
        let list = queue.list()?;
        if out.is_empty() && !stdin {
            out = list.iter().map(|e| Ok(e.id)).collect();
        }
        known.extend(list.into_iter().map(|e| (e.id, e.path)));
    }
    Ok((out, stdin))
}

/// What the line prompt returned.
enum Answer {
    Dispose(Disposal),
    Quit,
}

impl Run {
    /// Open a message to read it: where the listing saw it, else (moved or not listed)
    /// looked up.
    pub(crate) fn open(&self, id: MessageId) -> Result<Stored, PendingError> {
        if let Some(path) = self.known.get(&id) {
            let entry = crate::pending::Entry { id, path: path.clone() };
            match entry.open() {
                Err(PendingError::NotFound(_)) => {}
                other => return other,
            }
        }
        self.queue.open(id)
    }

    fn say(&mut self, text: &str) -> Result<(), Fail> {
        writeln!(self.out, "{text}").map_err(io_fail("standard output"))
    }

    fn csay(&mut self, text: &str) -> Result<(), Fail> {
        if self.verbose { self.say(text) } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), Fail> {
        self.out.flush().map_err(io_fail("standard output"))
    }

    fn fail_one(&mut self, id: &str, f: Fail) -> Result<(), Fail> {
        if f.is_broken_pipe() {
            return Err(f);
        }
        self.flush()?;
        eprintln!("tmda pending: {id}: {}", f.0);
        self.failed = Some(self.failed.unwrap_or(f.1));
        Ok(())
    }

    fn tagger(&mut self) -> Result<&Tagger, Fail> {
        if self.tagger.is_none() {
            self.tagger = Some(Tagger::from_config(&self.config)?);
        }
        Ok(self.tagger.as_ref().expect("just set"))
    }

    /// `-Y`/`-O` by the id's time stamp; each option with its own interval (TMDA used
    /// the `-Y` interval for both when both were given: Q30).
    fn in_age_range(&self, id: MessageId) -> bool {
        let ts = id.timestamp();
        let min = |secs: u64| self.now.saturating_sub(secs);
        !(self.younger.is_some_and(|y| ts < min(y)) || self.older.is_some_and(|o| ts > min(o)))
    }

    fn recipient_of(&self, stored: &Stored) -> Option<String> {
        self.recipient.clone().or_else(|| stored.recipient())
    }

    /// The confirm address that releases the message (`-R` replaces X-TMDA-Recipient).
    fn confirm_address(&mut self, id: MessageId, recipient: &str) -> Result<String, Fail> {
        let t = self.tagger()?;
        t.confirm(recipient, id.timestamp(), id.pid(), Some("accept"))
            .map_err(|e| {
                Fail(
                    format!("making the release address for {}: {e}", quote(recipient)),
                    Sysexit::DataErr,
                )
            })
    }

    /// The address the `*_APPEND` lists get.
    fn append_address(&self, stored: &Stored) -> String {
        confirm_append_address(
            stored.header().get("X-Primary-Address").as_deref(),
            &stored.return_path(),
            self.inc.primary_address_match,
            &self.config.recipient_delimiter,
        )
    }

    fn append(&self, list: &Path, stored: &Stored) -> Result<(), Fail> {
        let a = self.append_address(stored);
        if a.is_empty() {
            return Err(Fail(
                format!(
                    "{} has no Return-Path: nothing to add to {}",
                    stored.id(),
                    list.display()
                ),
                Sysexit::DataErr,
            ));
        }
        append_address(list, &a)?;
        Ok(())
    }

    fn main_loop(&mut self, ids: Vec<IdArg>, interactive: bool, from_stdin: bool) -> Result<u8, Fail> {
        let mut cache = self.load_cache()?;
        let total = ids.len();
        let mut count = 0;
        // --json records written so far (each is written as its message is handled, so
        // no message file stays open for the next: 10,000 held messages need no 10,000
        // descriptors).
        let mut json = 0usize;
        let mut prompt_in: Option<Box<dyn BufRead>> = None;
        if interactive {
            prompt_in = Some(if from_stdin {
                // Standard input held the ids: answers come from the terminal.
                let tty = std::fs::File::open("/dev/tty").map_err(io_fail(
                    "/dev/tty (the ids came on standard input, so answers need a terminal)",
                ))?;
                Box::new(std::io::BufReader::new(tty))
            } else {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            });
        }
        let mut i = 0;
        while i < ids.len() {
            let arg = ids[i].clone();
            i += 1;
            count += 1;
            let id = match arg {
                Ok(id) => id,
                Err(text) => {
                    self.csay(&format!("{text} not found!"))?;
                    continue;
                }
            };
            let stored = match self.open(id) {
                Ok(s) => s,
                Err(PendingError::NotFound(_)) => {
                    self.csay(&format!("{id} not found!"))?;
                    continue;
                }
                Err(e) => {
                    self.fail_one(&id.to_string(), e.into())?;
                    continue;
                }
            };
            if !self.in_age_range(id) {
                continue;
            }
            let key = id.to_string();
            if self.cache {
                if cache.contains(&key) {
                    continue;
                }
                cache.insert(0, key.clone());
            }
            let Some(recipient) = self.recipient_of(&stored) else {
                self.csay(&format!("can't determine recipient address, skipping {id}"))?;
                continue;
            };
            let mailto = if self.mailto || self.json {
                match self.confirm_address(id, &recipient) {
                    Ok(a) => Some(a),
                    Err(e) if self.json => {
                        let _ = e;
                        None
                    }
                    Err(e) => return Err(e),
                }
            } else {
                None
            };
            let mut disposal = self.disposal;
            if self.json {
                self.json_record(json, stored, &recipient, mailto, disposal)?;
                json += 1;
                continue;
            }
            if interactive && self.terse {
                self.say("")?;
            }
            if self.terse {
                let line = format::terse(&key, stored.header(), &self.inc.terse_summary_headers);
                self.say(&line)?;
            } else if self.verbose {
                let s = format::summary(
                    &key,
                    count,
                    total,
                    stored.size(),
                    stored.header(),
                    &self.inc.summary_headers,
                    if self.mailto { mailto.as_deref() } else { None },
                );
                self.say("")?;
                self.say(&s)?;
            }
            if interactive {
                if self.terse {
                    self.say("")?;
                }
                let input = prompt_in.as_mut().expect("interactive has input");
                match self.prompt(input.as_mut())? {
                    Answer::Quit => break,
                    Answer::Dispose(d) => disposal = Some(d),
                }
            }
            let Some(d) = disposal else { continue };
            let not = if self.pretend { " (not)" } else { "" };
            self.csay(&format!("\n{} {id}{not}", d.word()))?;
            if d == Disposal::Pass || self.pretend {
                continue;
            }
            match self.dispose(d, stored, &recipient) {
                Ok(_) => {}
                Err(f) => self.fail_one(&key, f)?,
            }
            if d == Disposal::Show && !interactive {
                self.say("")?;
            }
            if interactive && matches!(d, Disposal::Show | Disposal::Whitelist | Disposal::Blacklist) {
                // Shown again, to be decided on (TMDA's re-queue).
                count -= 1;
                i -= 1;
                if self.cache {
                    cache.retain(|c| c != &key);
                }
            }
        }
        if self.json {
            let open = if json == 0 { "[" } else { "" };
            write!(self.out, "{open}\n]\n").map_err(io_fail("standard output"))?;
        }
        self.save_cache(cache)?;
        self.flush()?;
        if let Some(t) = self.transport.as_mut() {
            t.close();
        }
        Ok(self.failed.map_or(0, |c| c as u8))
    }

    /// The `n`th (from 0) --json record: the message's disposal (if any) carried out,
    /// then its record written, opening the array before the first.
    fn json_record(
        &mut self,
        n: usize,
        stored: Stored,
        recipient: &str,
        mailto: Option<String>,
        d: Option<Disposal>,
    ) -> Result<(), Fail> {
        let mut action = None;
        if let Some(d) = d {
            if self.pretend {
                action = Some(format!("{} (not)", d.word()));
            } else {
                let id = stored.id().to_string();
                match self.dispose(d, stored.clone_handle()?, recipient) {
                    Ok(()) => action = Some(d.word().to_string()),
                    Err(f) => {
                        action = Some(format!("{} failed", d.word()));
                        self.fail_one(&id, f)?;
                    }
                }
            }
        }
        let id = stored.id();
        let rec = format::JsonRecord {
            id: &id.to_string(),
            timestamp: id.timestamp(),
            age: id.age(self.now),
            size: stored.size(),
            recipient: Some(recipient),
            return_path: &stored.return_path(),
            header: stored.header(),
            summary_headers: &self.inc.summary_headers,
            confirm_address: mailto.as_deref(),
            action: action.as_deref(),
        }
        .render();
        let sep = if n == 0 { "[\n" } else { ",\n" };
        write!(self.out, "{sep}{rec}").map_err(io_fail("standard output"))
    }

    /// TMDA's line prompt. End of input quits, as Ctrl-D did.
    fn prompt(&mut self, input: &mut dyn BufRead) -> Result<Answer, Fail> {
        let default = self.disposal.unwrap_or(Disposal::Pass);
        let mut p = String::from("([p]ass / [s]how / [r]el / [d]el");
        if self.inc.pending_whitelist_append.is_some() {
            p.push_str(" / [w]hite");
        }
        if self.inc.pending_blacklist_append.is_some() {
            p.push_str(" / [b]lack");
        }
        p.push_str(&format!(" / [q]uit) [{}]: ", default.word()));
        write!(self.out, "{p}").map_err(io_fail("standard output"))?;
        self.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line).map_err(io_fail("reading the answer"))? == 0 {
            self.say("")?;
            return Ok(Answer::Quit);
        }
        let inp = line.trim_end_matches(['\n', '\r']);
        let first = inp.chars().next().map(|c| c.to_ascii_lowercase());
        Ok(match first {
            None => Answer::Dispose(default),
            Some('p') => Answer::Dispose(Disposal::Pass),
            Some('s') => Answer::Dispose(Disposal::Show),
            Some('r') => Answer::Dispose(Disposal::Release),
            Some('d') => Answer::Dispose(Disposal::Delete),
            Some('w') if self.inc.pending_whitelist_append.is_some() => Answer::Dispose(Disposal::Whitelist),
            Some('b') if self.inc.pending_blacklist_append.is_some() => Answer::Dispose(Disposal::Blacklist),
            Some('q') => Answer::Quit,
            _ => {
                self.say(&format!("\nI don't understand '{inp}'"))?;
                Answer::Dispose(Disposal::Pass)
            }
        })
    }

    /// Carry out a disposal on a message (not `Pass`).
    pub(crate) fn dispose(&mut self, d: Disposal, stored: Stored, recipient: &str) -> Result<(), Fail> {
        match d {
            Disposal::Pass => Ok(()),
            Disposal::Show => self.page(&stored),
            Disposal::Release => self.release(stored.id(), recipient),
            Disposal::Delete => self.delete(stored.id()),
            Disposal::Whitelist => {
                let list = self
                    .inc
                    .pending_whitelist_append
                    .clone()
                    .ok_or_else(|| Fail("PENDING_WHITELIST_APPEND is not set".into(), Sysexit::Config))?;
                self.append(&list, &stored)?;
                if self.inc.pending_whitelist_release {
                    self.release(stored.id(), recipient)?;
                }
                Ok(())
            }
            Disposal::Blacklist => {
                let list = self
                    .inc
                    .pending_blacklist_append
                    .clone()
                    .ok_or_else(|| Fail("PENDING_BLACKLIST_APPEND is not set".into(), Sysexit::Config))?;
                self.append(&list, &stored)
            }
        }
    }

    /// Lock the message for a release or deletion; `None` (said why) when another
    /// process holds it or it is gone.
    fn lock(&mut self, id: MessageId) -> Result<Option<Stored>, Fail> {
        match self.queue.try_lock(id) {
            Ok(s) => Ok(Some(s)),
            Err(PendingError::Locked(_)) => {
                self.csay(&format!("{id} is being handled by another process, skipped"))?;
                Ok(None)
            }
            Err(PendingError::NotFound(_)) => {
                self.csay(&format!("{id} not found!"))?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Re-send the message to its recipient (spec §5.5). It stays queued until the
    /// copy comes back through tmda filter, as in TMDA.
    pub(crate) fn release(&mut self, id: MessageId, recipient: &str) -> Result<(), Fail> {
        let Some(stored) = self.lock(id)? else { return Ok(()) };
        if released_since(&stored, self.listed_at) {
            self.csay(&format!("{id} was released by another process meanwhile, skipped"))?;
            return Ok(());
        }
        if let Some(list) = self.inc.pending_release_append.clone() {
            self.append(&list, &stored)?;
        }
        let cgi = match (std::env::var("REMOTE_ADDR"), std::env::var("HTTP_USER_AGENT")) {
            (Ok(a), Ok(u)) => Some(format!("{a} ({u})")),
            _ => None,
        };
        if self.transport.is_none() {
            self.transport = Some(crate::transport::for_config(&self.config).map_err(config_fail)?);
        }
        self.tagger()?;
        let tagger = self.tagger.as_ref().expect("loaded");
        let transport = self.transport.as_mut().expect("opened");
        let over = self.recipient.as_deref().map(|_| recipient);
        send_release(
            &stored,
            tagger,
            self.now,
            ReleaseMode::Released { cgi: cgi.as_deref() },
            over,
            transport.as_mut(),
        )?;
        mark_released(&stored);
        Ok(())
    }

    pub(crate) fn delete(&mut self, id: MessageId) -> Result<(), Fail> {
        let Some(stored) = self.lock(id)? else { return Ok(()) };
        if let Some(list) = self.inc.pending_delete_append.clone() {
            self.append(&list, &stored)?;
        }
        match stored.delete() {
            Ok(()) | Err(PendingError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The whole stored message through `$PAGER` (else less, else more, else cat).
    pub(crate) fn page(&mut self, stored: &Stored) -> Result<(), Fail> {
        self.flush()?;
        let pager = std::env::var("PAGER").ok().filter(|p| !p.trim().is_empty());
        let mut cmd = match pager {
            Some(p) => {
                let mut c = std::process::Command::new("/bin/sh");
                c.arg("-c").arg(format!("{p} \"$@\"")).arg("sh");
                c
            }
            None => {
                let found = ["less", "more"].into_iter().find(|p| on_path(p));
                std::process::Command::new(found.unwrap_or("cat"))
            }
        };
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map_err(io_fail("starting the pager"))?;
        let mut whole = stored.header_bytes().to_vec();
        whole.extend_from_slice(stored.header().eol.as_bytes());
        if let Some(mut w) = child.stdin.take() {
            // A pager quit early closes the pipe: not an error.
            let _ = w
                .write_all(&whole)
                .and_then(|_| std::io::copy(&mut stored.body(), &mut w).map(|_| ()));
        }
        child.wait().map_err(io_fail("waiting for the pager"))?;
        Ok(())
    }

    fn load_cache(&self) -> Result<Vec<String>, Fail> {
        if !self.cache {
            return Ok(vec![]);
        }
        let path = &self.inc.pending_cache;
        match std::fs::read(path) {
            Ok(b) => format::parse_cache(&b).ok_or_else(|| {
                Fail(
                    format!("{}: not a TMDA pending cache (a pickled list of ids)", path.display()),
                    Sysexit::DataErr,
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(io_fail(path.display())(e)),
        }
    }

    fn save_cache(&self, mut ids: Vec<String>) -> Result<(), Fail> {
        if !self.cache {
            return Ok(());
        }
        ids.truncate(self.inc.pending_cache_len);
        write_atomically(&self.inc.pending_cache, &format::write_cache(&ids))
    }

    /// `--digest`: mail the user the messages held since the last digest.
    fn digest(&mut self, ids: &[IdArg]) -> Result<u8, Fail> {
        let state = self.config.datadir.join("pending-digest");
        let seen: Vec<String> = match std::fs::read_to_string(&state) {
            Ok(t) => t.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(io_fail(state.display())(e)),
        };
        let mut items = vec![];
        let mut queued = vec![];
        for id in ids.iter().filter_map(|i| i.as_ref().ok()) {
            let key = id.to_string();
            let stored = match self.open(*id) {
                Ok(s) => s,
                Err(PendingError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            queued.push(key.clone());
            if seen.contains(&key) || !self.in_age_range(*id) {
                continue;
            }
            let Some(recipient) = self.recipient_of(&stored) else {
                continue;
            };
            let h = stored.header();
            let from = h
                .get_source("From")
                .map(|v| format::decode_words(&v))
                .unwrap_or_else(|| stored.return_path());
            items.push(format::DigestItem {
                id: key,
                from,
                subject: h
                    .get_source("Subject")
                    .map(|v| format::decode_words(&v))
                    .unwrap_or_default(),
                date: crate::clock::rfc2822(id.timestamp()),
                age: id.age(self.now),
                size: stored.size(),
                release: self.confirm_address(*id, &recipient)?,
            });
        }
        if !items.is_empty() {
            let me = self.config.default_address();
            // To a keyword address of the user, so the user's own tmda filter delivers it.
            let to = self
                .tagger()?
                .keyword(&me, "digest")
                .map_err(|e| Fail(format!("making the digest's address: {e}"), Sysexit::DataErr))?;
            let from = format!("{} <{me}>", self.config.fullname()).trim().to_string();
            let mid = format!(
                "<{}.{}.pending-digest@{}>",
                self.now,
                std::process::id(),
                self.config.hostname()
            );
            let text = format::digest(&from, &to, &crate::clock::rfc2822(self.now), &mid, &items);
            if self.pretend {
                self.out.write_all(&text).map_err(io_fail("standard output"))?;
                self.flush()?;
                return Ok(0);
            }
            let msg = crate::message::Message::read_from(&text[..])
                .map_err(|e| Fail(format!("the digest: {e}"), Sysexit::Software))?;
            let header = msg.header.to_block();
            let mut transport = crate::transport::for_config(&self.config).map_err(config_fail)?;
            transport
                .send(&crate::transport::Copy {
                    sender: "",
                    recipient: &to,
                    header: &header,
                    message: &msg,
                    utf8: !to.is_ascii(),
                })
                .map_err(|e| Fail(format!("sending the digest to {to}: {e}"), e.exit_code()))?;
            transport.close();
            self.csay(&format!("digest of {} message(s) sent to {to}", items.len()))?;
        }
        // Only what is still queued is remembered, so the file stays small.
        let mut keep: Vec<&String> = queued.iter().collect();
        keep.dedup();
        let text: String = keep.iter().map(|k| format!("{k}\n")).collect();
        write_atomically(&state, text.as_bytes())?;
        self.flush()?;
        Ok(0)
    }
}

trait CloneHandle {
    fn clone_handle(&self) -> Result<Stored, Fail>;
}

impl CloneHandle for Stored {
    /// Another unlocked handle on the same queued message.
    fn clone_handle(&self) -> Result<Stored, Fail> {
        Ok(crate::pending::Entry {
            id: self.id(),
            path: self.path().to_path_buf(),
        }
        .open()?)
    }
}

/// Has another run released this message since `since`? (A release stamps the file's
/// modification time, which TMDA never looks at: ids carry the time of holding.)
fn released_since(stored: &Stored, since: SystemTime) -> bool {
    std::fs::symlink_metadata(stored.path())
        .and_then(|m| m.modified())
        .is_ok_and(|t| t > since)
}

/// Stamp a released message (see [`released_since`]). Failing to is harmless: only a
/// concurrent run could then send it again.
fn mark_released(stored: &Stored) {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(stored.path())
    {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Replace `path` with `bytes`: a temporary file (0600) in the same directory, synced,
/// renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Fail> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_fail(dir.display()))?;
    tmp.write_all(bytes).map_err(io_fail(path.display()))?;
    tmp.as_file().sync_all().map_err(io_fail(path.display()))?;
    tmp.persist(path).map_err(|e| io_fail(path.display())(e.error))?;
    Ok(())
}

/// `--vhome-script`: HOME from `SCRIPT USER DOMAIN`. `Some(1)`: failed, said why.
fn vhome(script: &Path, user: Option<&str>, domain: Option<&str>) -> Result<Option<u8>, Fail> {
    let user = user
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok());
    let domain = domain
        .map(str::to_string)
        .or_else(|| Some(crate::config::fqdn()).filter(|d| !d.is_empty()));
    let (Some(user), Some(domain)) = (&user, &domain) else {
        let mut m = String::from("missing:");
        if user.is_none() {
            m.push_str(" USER");
        }
        if domain.is_none() {
            m.push_str(" DOMAIN");
        }
        println!("{m}");
        return Ok(Some(1));
    };
    let cmd = format!("{} '{user}' '{domain}'", script.display());
    match super::vhome_home(script, user, domain) {
        Ok(Some(home)) => {
            super::set_env("HOME", &home);
            if std::env::set_current_dir(&home).is_err() {
                println!("invocation failed: {cmd}");
                return Ok(Some(1));
            }
            Ok(None)
        }
        _ => {
            println!("invocation failed: {cmd}");
            Ok(Some(1))
        }
    }
}

/// The clap definition, for the multicall table and the generated pages.
pub fn command() -> clap::Command {
    Args::command()
}
