//! `tmda sendmail` (`tmda-sendmail`, `tmda-inject`, `sendmail`): tag outgoing mail
//! from a mail client and hand it to the MTA.
//!
//! Mail clients call sendmail with sendmail's own option syntax (`-oi`, `-f ADDR` or
//! `-fADDR`, clustered flags like `-ti`), so this applet parses its arguments with a
//! small getopt over [`OPTIONS`] instead of clap. The same table renders the help
//! text, the man page and the shell completions, so they cannot drift apart.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, LoadOptions};
use crate::error::{Error, Sysexit};
use crate::filter;
use crate::inject::{InjectError, Injector, Options};
use crate::message::Message;

/// How many values an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    Nothing,
    One,
    Two,
}

/// What an option does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    HeaderRecipients,
    Fullname,
    ConfigFile,
    FilterFile,
    FilterMatch,
    Qfilter,
    Mode,
    FullVersion,
    Help,
    Verbose,
    /// Accepted for compatibility and ignored.
    Ignored,
}

/// One option of the table.
#[derive(Debug)]
pub struct Opt {
    pub ch: char,
    pub takes: Takes,
    pub effect: Effect,
    pub value_name: &'static str,
    pub doc: &'static str,
}

const fn opt(ch: char, takes: Takes, effect: Effect, value_name: &'static str, doc: &'static str) -> Opt {
    Opt {
        ch,
        takes,
        effect,
        value_name,
        doc,
    }
}

use Effect::*;
use Takes::*;

/// Every option `tmda sendmail` accepts: TMDA's tmda-sendmail and tmda-inject options,
/// plus what common mail clients pass to sendmail.
pub const OPTIONS: &[Opt] = &[
    opt(
        't',
        Nothing,
        HeaderRecipients,
        "",
        "Take the recipients from the To, Cc and Bcc fields (Resent- fields when resending); recipient arguments are ignored, as in TMDA",
    ),
    opt(
        'f',
        One,
        Ignored,
        "ADDRESS",
        "Envelope sender: ignored, the From field decides the tagged envelope sender (as in TMDA)",
    ),
    opt('r', One, Ignored, "ADDRESS", "Same as -f"),
    opt(
        'F',
        One,
        Fullname,
        "NAME",
        "Full name to use when the From field has none and FULLNAME is not set",
    ),
    opt(
        'i',
        Nothing,
        Ignored,
        "",
        "Ignore lines with a single dot (always the case: the message ends at end of input)",
    ),
    opt(
        'o',
        One,
        Ignored,
        "OPTION",
        "Sendmail option such as -oi or -oem: ignored",
    ),
    opt(
        'b',
        One,
        Mode,
        "MODE",
        "Mode: only -bm (deliver a message from standard input) is supported",
    ),
    opt(
        'B',
        One,
        Ignored,
        "TYPE",
        "Body type (7BIT, 8BITMIME): ignored, the relay decides",
    ),
    opt(
        'N',
        One,
        Ignored,
        "DSN",
        "Delivery status notification conditions: ignored",
    ),
    opt('R', One, Ignored, "RETURN", "DSN return type: ignored"),
    opt('e', One, Ignored, "MODE", "Error reporting mode: ignored"),
    opt(
        'p',
        One,
        Ignored,
        "PROTOCOL",
        "Protocol and host for the Received field: ignored",
    ),
    opt('L', One, Ignored, "LABEL", "Syslog label: ignored"),
    opt('X', One, Ignored, "FILE", "Traffic log file: ignored"),
    opt(
        'A',
        One,
        Ignored,
        "FILE",
        "Alternative configuration (sendmail): ignored",
    ),
    opt(
        'v',
        Nothing,
        Verbose,
        "",
        "Verbose: show the conversation with the MTA on standard error (AUTH data redacted), as msmtp -v and sendmail -v do",
    ),
    opt('m', Nothing, Ignored, "", "Also send to me: ignored"),
    opt('x', Nothing, Ignored, "", "Ignored"),
    opt('E', Nothing, Ignored, "", "Ignored"),
    opt('J', Nothing, Ignored, "", "Ignored"),
    opt('U', Nothing, Ignored, "", "Initial submission: ignored"),
    opt('G', Nothing, Ignored, "", "Gateway submission: ignored"),
    opt('n', Nothing, Ignored, "", "Do not alias: ignored"),
    opt(
        'c',
        One,
        ConfigFile,
        "FILE",
        "Read this configuration file instead of ~/.tmda/config (tmda-inject)",
    ),
    opt(
        'O',
        One,
        FilterFile,
        "FILE",
        "Use this outgoing filter instead of FILTER_OUTGOING (tmda-inject)",
    ),
    opt(
        'M',
        Two,
        FilterMatch,
        "RECIPIENT SENDER",
        "Show which outgoing filter rule matches RECIPIENT for SENDER, check the filter for errors, and exit (tmda-inject)",
    ),
    opt(
        'q',
        Nothing,
        Qfilter,
        "",
        "Exit 99 after a successful delivery, so qmail's qfilter does not queue the message itself (tmda-inject)",
    ),
    opt('V', Nothing, FullVersion, "", "Show full version information and exit"),
    opt('h', Nothing, Help, "", "Show this help and exit"),
];

/// Parsed arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub header_recipients: bool,
    pub fullname: Option<String>,
    pub config_file: Option<PathBuf>,
    pub filter_file: Option<PathBuf>,
    pub filter_match: Option<(String, String)>,
    pub qfilter: bool,
    pub full_version: bool,
    pub help: bool,
    pub version: bool,
    /// `--quiet`: no warnings about the configuration.
    pub quiet: bool,
    pub verbose: bool,
    pub recipients: Vec<String>,
}

/// sendmail-style getopt: clustered flags, glued or separate values, `--`, and the
/// first non-option argument ending the options.
pub fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        match a.as_str() {
            "--help" => {
                out.help = true;
                i += 1;
                continue;
            }
            "--version" => {
                out.version = true;
                i += 1;
                continue;
            }
            "--quiet" => {
                out.quiet = true;
                i += 1;
                continue;
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s if !s.starts_with('-') || s == "-" => break,
            _ => {}
        }
        let chars: Vec<char> = a.chars().skip(1).collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            let o = OPTIONS
                .iter()
                .find(|o| o.ch == c)
                .ok_or_else(|| format!("unknown option -{c}"))?;
            let mut values = vec![];
            match o.takes {
                Nothing => j += 1,
                One | Two => {
                    let glued: String = chars[j + 1..].iter().collect();
                    j = chars.len();
                    if glued.is_empty() {
                        i += 1;
                        values.push(
                            args.get(i)
                                .cloned()
                                .ok_or_else(|| format!("option -{c} needs a value ({})", o.value_name))?,
                        );
                    } else {
                        values.push(glued);
                    }
                    if o.takes == Two {
                        i += 1;
                        values.push(
                            args.get(i)
                                .cloned()
                                .ok_or_else(|| format!("option -{c} needs two values ({})", o.value_name))?,
                        );
                    }
                }
            }
            match o.effect {
                HeaderRecipients => out.header_recipients = true,
                Fullname => out.fullname = values.pop(),
                ConfigFile => out.config_file = values.pop().map(PathBuf::from),
                FilterFile => out.filter_file = values.pop().map(PathBuf::from),
                FilterMatch => out.filter_match = Some((values[0].clone(), values[1].clone())),
                Qfilter => out.qfilter = true,
                FullVersion => out.full_version = true,
                Help => out.help = true,
                Verbose => out.verbose = true,
                Mode => {
                    let m = values.pop().unwrap_or_default();
                    if m != "m" {
                        return Err(format!(
                            "-b{m} is not supported: tmda sendmail only delivers a message from standard input (-bm)"
                        ));
                    }
                }
                Ignored => {}
            }
        }
        i += 1;
    }
    out.recipients = args[i.min(args.len())..].to_vec();
    Ok(out)
}

/// A clap command mirroring [`OPTIONS`], used only for the man page and completions.
pub fn command() -> clap::Command {
    let mut cmd = clap::Command::new("tmda-sendmail")
        .about("Tag outgoing mail with your TMDA addresses and hand it to the MTA")
        .long_about(
            "Reads a message on standard input, tags it for each recipient as your outgoing filter \
(FILTER_OUTGOING) and ACTION_OUTGOING say, and hands one copy per recipient to the MTA (MAIL_TRANSPORT: \
the sendmail program or SMTP). Takes sendmail's options, so mail clients can use it in place of sendmail, \
e.g. set sendmail=\"tmda sendmail\" in Mutt. Exits 0 only when every copy was accepted, 75 when a retry may succeed.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true);
    for o in OPTIONS {
        let id = format!("opt_{}", o.ch);
        let mut arg = clap::Arg::new(id).short(o.ch).help(o.doc);
        arg = match o.takes {
            Nothing => arg.action(clap::ArgAction::SetTrue),
            One => arg.value_name(o.value_name).num_args(1),
            Two => arg.value_names(o.value_name.split(' ').collect::<Vec<_>>()).num_args(2),
        };
        cmd = cmd.arg(arg);
    }
    cmd.arg(
        clap::Arg::new("version")
            .long("version")
            .action(clap::ArgAction::Version)
            .help("Print version and exit"),
    )
    .arg(
        clap::Arg::new("quiet")
            .long("quiet")
            .action(clap::ArgAction::SetTrue)
            .help("Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same"),
    )
    .arg(
        clap::Arg::new("help")
            .long("help")
            .action(clap::ArgAction::Help)
            .help("Show this help and exit"),
    )
    .arg(
        clap::Arg::new("recipients")
            .value_name("RECIPIENT")
            .num_args(0..)
            .help("Recipients (ignored with -t)"),
    )
}

pub fn main(name: &str, raw: &[OsString]) -> ExitCode {
    let args: Vec<String> = raw.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let parsed = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{name}: {e}\nTry '{name} -h' for help.");
            return ExitCode::from(Sysexit::Usage as u8);
        }
    };
    let result = run(parsed, name);
    super::finish(name, result)
}

fn run(args: Args, name: &str) -> Result<ExitCode, Error> {
    if args.help {
        let mut cmd = super::Applet::Sendmail.command_named(name).bin_name(name);
        super::print_stdout(&format!("{}", cmd.render_long_help()))?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.version {
        super::print_stdout(&super::uniform(command()).render_version())?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(code) = super::maybe_full_version(args.full_version)? {
        return Ok(code);
    }
    let mut config_file = args.config_file.clone();
    // Started by ofmipd in global mode, as the user: the user's files are looked for
    // here, where a private home can be seen (the daemon's own user cannot).
    if config_file.is_none()
        && let Some(p) = std::env::var_os("TMDA_OFMIPD_CONFIG").map(PathBuf::from)
        && p.exists()
    {
        config_file = Some(p);
    }
    let config = Config::load(&LoadOptions {
        config_file,
        home: None,
    })?;
    // Under ofmipd's global mode these lines reach ofmipd's log, not the client.
    super::warn_about_config(name, &config, args.quiet, false);
    // ofmipd --pure-proxy: a user without a configuration of their own (the TMDARC that
    // loading settled on was not there to read) gets the message passed through.
    if std::env::var_os("TMDA_OFMIPD_PURE_PROXY").is_some_and(|v| v == "1") {
        let own = config.var("TMDARC").map(|v| PathBuf::from(v.py_str()));
        if !own.is_some_and(|p| config.files.contains(&p)) {
            return pass_through(&args.recipients);
        }
    }
    let filter_path = match &args.filter_file {
        Some(p) => {
            if !p.exists() {
                return Err(Error::NoInput(format!("outgoing filter {}: no such file", p.display())));
            }
            p.clone()
        }
        None => config.filter_outgoing.clone(),
    };
    let lookup = |name: &str| config.lookup(name);
    let filter = filter::parse_file(&filter_path, &lookup)?;

    if let Some((rcpt, sender)) = &args.filter_match {
        let m = filter
            .first_match(rcpt, sender)
            .map_err(crate::inject::InjectError::from)?;
        let title = format!("Checking {}", filter_path.display());
        let rule = "-".repeat(title.len());
        let result = match m {
            Some(m) => format!("MATCH: {}", m.description),
            // TMDA said only "no matching lines", which hides a filter file that is not
            // where the configuration says it is.
            None if !filter_path.exists() => {
                let origin = config
                    .origin("ACTION_OUTGOING")
                    .map(|o| match o {
                        crate::config::Origin::Default => "the default".to_string(),
                        o => format!("set at {o}"),
                    })
                    .unwrap_or_else(|| "the default".to_string());
                format!(
                    "{} does not exist, so no rule matches.\nACTION_OUTGOING applies: {} ({origin})",
                    filter_path.display(),
                    config.action_outgoing
                )
            }
            None => "Sorry, no matching lines.".to_string(),
        };
        super::print_stdout(&format!(
            "{title}\n{rule}\nTo: {rcpt}\nFrom: {sender}\n{rule}\n{result}\n"
        ))?;
        return Ok(ExitCode::SUCCESS);
    }

    if args.verbose {
        crate::transport::set_trace(|line| eprintln!("{line}"));
    }
    let msg = Message::read_from(std::io::stdin().lock())?;
    let opts = Options {
        recipients: if args.header_recipients {
            vec![]
        } else {
            args.recipients.clone()
        },
        received: None,
        fallback_fullname: args.fullname.clone(),
        // Set by ofmipd in global mode for a client that asked for SMTPUTF8.
        smtputf8: std::env::var_os("TMDA_OFMIPD_SMTPUTF8").is_some_and(|v| v == "1"),
        // Set by ofmipd in global mode with --restrict-sender.
        restrict_sender: std::env::var_os("TMDA_OFMIPD_RESTRICT_SENDER")
            .is_some_and(|v| v == "1")
            .then(|| crate::inject::SenderRestriction {
                envelope_sender: std::env::var("TMDA_OFMIPD_MAIL_FROM").unwrap_or_default(),
                extra: std::env::var("TMDA_OFMIPD_ALLOWED_SENDERS")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
            }),
    };
    let injector = Injector::new(&config, &filter, crate::clock::now()?);
    let sent = if crate::delivery::async_relay(&config) && msg.in_memory() {
        // A plain SMTP relay gets the same client as ofmipd's (HELO fallback included).
        let plan = injector.plan(&msg, &opts)?;
        super::current_thread_runtime()?.block_on(async {
            let sent = crate::transport::relay::send(&config.smtp, &crate::config::fqdn(), &msg, &plan)
                .await
                .map_err(InjectError::from);
            crate::transport::relay::close_pool();
            sent
        })
    } else {
        injector
            .inject(&msg, &opts, crate::transport::for_config(&config)?.as_mut())
            .map(|_| ())
    };
    match sent {
        Ok(()) => {}
        Err(InjectError::Delivery(fates)) => return Ok(report_fates(name, &config, &msg, &fates)),
        Err(e) => return Err(e.into()),
    }
    Ok(if args.qfilter {
        ExitCode::from(99)
    } else {
        ExitCode::SUCCESS
    })
}

/// Every copy was tried and some failed: name each recipient's fate on standard error,
/// one line each, and exit with the worst status. Run by ofmipd in global mode
/// (`$TMDA_OFMIPD_HOSTNAME`), also tell the envelope sender (`$TMDA_OFMIPD_MAIL_FROM`)
/// which recipients failed when some got the message, and say so: the daemon reads
/// these lines (see [`crate::dsn`]).
fn report_fates(name: &str, config: &Config, msg: &Message, fates: &crate::inject::Fates) -> ExitCode {
    let report = fates.report();
    let mut err = std::io::stderr().lock();
    for f in &report {
        let _ = writeln!(err, "{name}: {}", f.line());
    }
    if let Some(host) = std::env::var("TMDA_OFMIPD_HOSTNAME").ok().filter(|h| !h.is_empty()) {
        let sender = std::env::var("TMDA_OFMIPD_MAIL_FROM").unwrap_or_default();
        let notice = match crate::transport::for_config(config) {
            Ok(mut t) => crate::inject::notify(t.as_mut(), &host, &sender, msg, &report),
            Err(e) => crate::dsn::Notice::NotSent(e.to_string()),
        };
        let _ = match notice {
            crate::dsn::Notice::NotNeeded => Ok(()),
            crate::dsn::Notice::Sent(to) => writeln!(err, "{name}: {}<{to}>", crate::dsn::NOTICE_SENT),
            crate::dsn::Notice::NotSent(why) => {
                writeln!(err, "{name}: {}{}", crate::dsn::NOTICE_NOT_SENT, why.replace('\n', " "))
            }
        };
    }
    ExitCode::from(fates.exit_code() as u8)
}

/// `ofmipd --pure-proxy` for a user without a configuration: the message, still unread on
/// standard input, goes to the MTA's sendmail unaltered (this process becomes it).
fn pass_through(recipients: &[String]) -> Result<ExitCode, Error> {
    use std::os::unix::process::CommandExt as _;
    let from = std::env::var("TMDA_OFMIPD_MAIL_FROM").unwrap_or_default();
    let e = crate::delivery::pass_through_command(&from, recipients).exec();
    Err(Error::io(crate::delivery::pass_through_program(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, String> {
        parse_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    /// One case per option of the table: each is accepted in its documented form.
    #[test]
    fn every_option_is_accepted() {
        for o in OPTIONS {
            let mut args = vec![format!("-{}", o.ch)];
            match o.takes {
                Nothing => {}
                One => args.push(if o.ch == 'b' { "m".into() } else { "value".into() }),
                Two => {
                    args.push("a@b".into());
                    args.push("c@d".into());
                }
            }
            args.push("rcpt@example.org".into());
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let a = p(&refs).unwrap_or_else(|e| panic!("-{}: {e}", o.ch));
            assert_eq!(a.recipients, vec!["rcpt@example.org"], "-{}", o.ch);
        }
    }

    #[test]
    fn mutt_style_invocations() {
        let a = p(&["-oem", "-oi", "-f", "me@x", "--", "a@x", "b@y"]).unwrap();
        assert_eq!(a.recipients, vec!["a@x", "b@y"]);
        assert!(!a.header_recipients);
        let a = p(&["-ti", "-Fjason", "-fme@x", "ignored@x"]).unwrap();
        assert!(a.header_recipients);
        assert_eq!(a.fullname.as_deref(), Some("jason"));
        assert_eq!(a.recipients, vec!["ignored@x"]);
        let a = p(&["-oi", "-B", "8BITMIME", "-N", "never", "-R", "hdrs", "-bm", "x@y"]).unwrap();
        assert_eq!(a.recipients, vec!["x@y"]);
        let a = p(&["-M", "r@x", "s@y"]).unwrap();
        assert_eq!(a.filter_match, Some(("r@x".into(), "s@y".into())));
        let a = p(&["-c", "/etc/cfg", "-O/tmp/filter", "-q", "x@y"]).unwrap();
        assert_eq!(
            (a.config_file.unwrap(), a.filter_file.unwrap(), a.qfilter),
            ("/etc/cfg".into(), "/tmp/filter".into(), true)
        );
        // Options end at the first recipient.
        assert_eq!(p(&["a@x", "-t"]).unwrap().recipients, vec!["a@x", "-t"]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            p(&["-bs"]).unwrap_err(),
            "-bs is not supported: tmda sendmail only delivers a message from standard input (-bm)"
        );
        assert!(p(&["-bp"]).is_err());
        assert_eq!(p(&["-Z"]).unwrap_err(), "unknown option -Z");
        assert_eq!(p(&["-f"]).unwrap_err(), "option -f needs a value (ADDRESS)");
        assert!(p(&["-M", "only-one"]).unwrap_err().contains("two values"));
        assert_eq!(p(&["--frob"]).unwrap_err(), "unknown option --frob");
    }

    #[test]
    fn doc_command_is_consistent() {
        command().debug_assert();
    }
}
