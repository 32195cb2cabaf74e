//! `tmda filter` (`tmda-filter`): the incoming filter, run by the MTA for each message
//! delivered to the user (`|tmda filter` in `.qmail` or `.forward`, procmail, Postfix's
//! `mailbox_command`, an Exim pipe). The work is [`crate::incoming`]'s; this shell reads
//! TMDA's options in TMDA's order, and turns every failure into exit 75, so that the
//! MTA keeps the message and tries again.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::config::{Config, LoadOptions};
use crate::filter::{Direction, Subject};
use crate::incoming::{self, IncomingError, Options, World};

#[derive(Debug, clap::Parser)]
#[command(
    version,
    disable_version_flag = true,
    about = "Filter an incoming message: deliver, hold, challenge or bounce it (TMDA's tmda-filter)",
    long_about = "Filter one incoming message, read on standard input, as TMDA's tmda-filter does. \
It is run by the MTA as your delivery agent (|tmda filter in ~/.qmail or ~/.forward, procmail, Postfix's \
mailbox_command, an Exim pipe), which gives the envelope in its environment (SENDER, RECIPIENT, and EXT or \
EXTENSION). Messages to a valid tagged address, and those your FILTER_INCOMING accepts, are delivered to \
DELIVERY; strangers get a confirmation request and their message waits in the pending queue until they \
answer. Exit status: 0 or 99 as MAIL_TRANSFER_AGENT expects (qmail: 99 stops the .qmail file), 75 for any \
failure so that the MTA keeps the message and tries again."
)]
pub struct Args {
    /// Read this configuration file instead of ~/.tmda/config (sets TMDARC)
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Search this directory first for templates (sets TMDA_TEMPLATE_DIR)
    #[arg(short = 't', long = "template-dir", value_name = "DIR")]
    pub template_dir: Option<PathBuf>,
    /// Use this incoming filter instead of FILTER_INCOMING (sets TMDA_FILTER_INCOMING)
    #[arg(short = 'I', long = "filter-incoming-file", value_name = "FILE")]
    pub filter_incoming: Option<PathBuf>,
    /// Set an environment variable before anything else is read (repeatable)
    #[arg(short = 'e', long = "environ", value_name = "VAR=VALUE")]
    pub environ: Vec<String>,
    /// Discard instead of answering: no confirmation requests, no bounces, nothing held
    #[arg(short = 'd', long = "discard")]
    pub discard: bool,
    /// Print a message that would be delivered on standard output (exit 0), and exit 99
    /// for one that would not be
    #[arg(short = 'p', long = "print")]
    pub print: bool,
    /// Virtual users (qmail with vpopmail or vmailmgr): find HOME with this script,
    /// given a user name and $HOST
    #[arg(short = 'S', long = "vhome-script", value_name = "SCRIPT")]
    pub vhome_script: Option<PathBuf>,
    /// Show which incoming filter rule matches RECIPIENT and SENDER, and exit
    #[arg(short = 'M', long = "filter-match", num_args = 2, value_names = ["RECIPIENT", "SENDER"])]
    pub filter_match: Vec<String>,
    /// Show full version information and exit
    #[arg(short = 'V')]
    pub full_version: bool,
    /// Print version and exit
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    // Words that are not options: TMDA's option parser ignored them, and so do we (with a
    // warning), rather than bounce every message for a slip in ~/.qmail. (A plain comment:
    // a doc comment would become zsh completion text, which shows hidden positionals.)
    #[arg(hide = true, value_parser = clap::value_parser!(OsString))]
    stray: Vec<OsString>,
}

/// The exit status TMDA gives every failure: the MTA keeps the message.
const TEMPFAIL: u8 = 75;

/// Parse `raw` (argv, program name first) and run.
pub fn main(raw: &[OsString], name: &str) -> ExitCode {
    // 75, not 64, for a mistake in the options: the command line is in ~/.qmail,
    // ~/.forward or Postfix's mailbox_command, and qmail-local and Postfix bounce on 64,
    // so a typo there would bounce every message where 75 keeps them queued.
    let args: Args = match super::parse_own_or_error(super::Applet::Filter, raw, name) {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Named, on one line, for the MTA's log and its delay notice.
            let detail = e.to_string();
            let first = detail.lines().next().unwrap_or_default().trim_start_matches("error: ");
            eprintln!("{name}: {first} (the message stays queued: fix the command line; see {name} --help)");
            return ExitCode::from(TEMPFAIL);
        }
    };
    if !args.stray.is_empty() {
        let words: Vec<String> = args
            .stray
            .iter()
            .map(|w| crate::exit::quote(&w.to_string_lossy()))
            .collect();
        eprintln!(
            "{name}: warning: ignored the argument(s) {} (tmda filter takes none)",
            words.join(" ")
        );
    }
    if args.full_version {
        println!("{}", super::full_version());
        return ExitCode::SUCCESS;
    }
    match run(args, name) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // On standard error, which the MTA logs or puts into its delay notice.
            eprintln!("{name}: {e}");
            ExitCode::from(TEMPFAIL)
        }
    }
}

fn run(args: Args, name: &str) -> Result<u8, IncomingError> {
    // TMDA's order: -c, -t, -I, -e, -S, the sticky home, -M, -p; all before the
    // configuration is read (TMDA's Python 3 port read it first, so they did nothing).
    if let Some(c) = &args.config_file {
        super::set_env("TMDARC", c);
    }
    if let Some(t) = &args.template_dir {
        super::set_env("TMDA_TEMPLATE_DIR", t);
    }
    if let Some(i) = &args.filter_incoming {
        super::set_env("TMDA_FILTER_INCOMING", i);
    }
    for pair in &args.environ {
        let Some((k, v)) = pair.split_once('=').filter(|(k, _)| !k.is_empty() && !k.contains('\0')) else {
            return Err(IncomingError::Other(format!(
                "bad environment key-value pair {} (-e takes VAR=VALUE)",
                crate::exit::quote(pair)
            )));
        };
        super::set_env(k, v);
    }
    if let Some(script) = &args.vhome_script {
        vhome(script)?;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    if is_sticky(&home) {
        // Deliveries are frozen while ~/.tmda is edited (chmod +t ~): the MTA retries.
        println!("{name}: home directory is sticky.");
        return Ok(TEMPFAIL);
    }
    let config = Config::load(&LoadOptions {
        config_file: args.config_file.clone(),
        home: None,
    })?;
    if let [recipient, sender] = args.filter_match.as_slice() {
        return filter_match(&config, recipient, sender);
    }
    let opts = Options {
        discard: args.discard,
        print: args.print,
        template_dir: args.template_dir.clone(),
    };
    let (from_line, msg) = incoming::read_input(std::io::stdin().lock())?;
    if msg.header_cut() {
        // To the MTA's log: the rules saw only the fields within the limit.
        eprintln!(
            "{name}: warning: the message header is larger than {} bytes: filtered on the fields \
             within it; the rest is kept at the top of the body",
            crate::message::HEADER_MAX
        );
    }
    // Lossy: the envelope is the sender's, and bytes that are not UTF-8 in it must not
    // read as "no SENDER" and defer the message (75) until the MTA gives up.
    let env = |n: &str| std::env::var_os(n).map(|v| v.to_string_lossy().into_owned());
    let mut stdout = std::io::stdout().lock();
    let mut transport = || crate::transport::for_config(&config).map_err(IncomingError::from);
    let now = crate::clock::now().map_err(|e| IncomingError::Other(e.to_string()))?;
    let mut world = World {
        now,
        pid: std::process::id(),
        env: &env,
        home,
        stdout: &mut stdout,
        transport: &mut transport,
    };
    let outcome = incoming::run(&config, &opts, &mut world, from_line.as_deref(), &msg)?;
    stdout.flush().map_err(|source| IncomingError::Io {
        what: "standard output".into(),
        source,
    })?;
    Ok(incoming::exit_status(&config.mail_transfer_agent, outcome, args.print))
}

fn is_sticky(home: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(home).is_ok_and(|m| m.permissions().mode() & 0o1000 != 0)
}

/// `-M RECIPIENT SENDER`: the first matching rule, in TMDA's layout.
fn filter_match(config: &Config, recipient: &str, sender: &str) -> Result<u8, IncomingError> {
    let inc = config.incoming()?;
    let path = &inc.filter_incoming;
    let lookup = |n: &str| config.lookup(n);
    let filter = crate::filter::parse_file_for(Direction::Incoming, path, &lookup)?;
    let title = format!("Checking {}", path.display());
    let dashes = "-".repeat(title.chars().count());
    let mut out = format!("{title}\n{dashes}\n");
    if !recipient.is_empty() {
        out.push_str(&format!("To: {recipient}\n"));
    }
    if !sender.is_empty() {
        out.push_str(&format!("From: {sender}\n"));
    }
    out.push_str(&format!("{dashes}\n"));
    let r = recipient.to_lowercase();
    let s = sender.to_lowercase();
    let recipients: Vec<&str> = [r.as_str()].into_iter().filter(|a| !a.is_empty()).collect();
    let senders: Vec<&str> = [s.as_str()].into_iter().filter(|a| !a.is_empty()).collect();
    let found = filter.first_match_in(&Subject {
        direction: Direction::Incoming,
        recipients: &recipients,
        senders: &senders,
        message: None,
    })?;
    match found {
        Some(m) => {
            let option = m.then.disposition().and_then(|d| d.option.clone());
            match option {
                Some(o) => out.push_str(&format!("MATCH: {}={o}\n", m.description)),
                None => out.push_str(&format!("MATCH: {}\n", m.description)),
            }
        }
        None => out.push_str("Sorry, no matching lines.\n"),
    }
    print!("{out}");
    Ok(0)
}

/// `-S SCRIPT`: qmail virtual users. The extension (up to `-confirm-`) is tried as a user
/// name one `-`-piece longer at a time; the first `SCRIPT USER HOST` that succeeds gives
/// HOME. The script gets its arguments as arguments (TMDA built a shell command line from
/// the address, which the sender chooses).
fn vhome(script: &std::path::Path) -> Result<(), IncomingError> {
    let (Ok(ext), Ok(host)) = (std::env::var("EXT"), std::env::var("HOST")) else {
        return Ok(());
    };
    let ext = ext.split("-confirm-").next().unwrap_or("").to_string();
    let parts: Vec<&str> = ext.split('-').collect();
    for k in 1..=parts.len() {
        let user = parts[..k].join("-");
        if user.is_empty() || user.starts_with('-') {
            continue;
        }
        let found = super::vhome_home(script, &user, &host).map_err(|source| IncomingError::Io {
            what: format!("vhome script {}", script.display()),
            source,
        })?;
        if let Some(home) = found {
            super::set_env("HOME", &home);
            std::env::set_current_dir(&home).map_err(|source| IncomingError::Io {
                what: format!("virtual home {home}"),
                source,
            })?;
            return Ok(());
        }
    }
    // TMDA exited 0 here, and the message was lost; the MTA keeps it instead.
    Err(IncomingError::Other(format!(
        "the vhome script {} found no home for the extension {}",
        script.display(),
        crate::exit::quote(&ext)
    )))
}

/// The clap definition, for the multicall table and the generated pages.
pub fn command() -> clap::Command {
    Args::command()
}
