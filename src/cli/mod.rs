//! Command-line shells: `argv[0]` dispatch, one module per applet, error → exit code.
//!
//! `tmda` is one binary with subcommands (`tmda address ...`). Invoked through a
//! symlink it becomes the applet the link is named after, with the old TMDA tool's
//! argument syntax: `tmda-address -dn`, `tmda-check-address ADDR`, `tmda-keygen -b`.
//! Dispatch takes the longest applet alias that the program's base name ends with,
//! as coreutils does, so `/usr/local/bin/tmda-address` and `address` both work.
//!
//! Only this module and its children print, read argv or choose exit codes.

pub mod address;
pub mod authopts;
pub mod check_address;
pub mod checkauth;
pub mod doc;
pub mod filter;
pub mod init;
pub mod keygen;
pub mod ofmipd;
pub mod passwd;
pub mod pending;
pub mod sendmail;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::error::{Error, Sysexit};

/// The applets, i.e. the things `tmda` can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applet {
    Address,
    CheckAddress,
    Keygen,
    Sendmail,
    Ofmipd,
    Passwd,
    Checkauth,
    Init,
    Filter,
    Pending,
}

impl Applet {
    pub const ALL: &[Applet] = &[
        Applet::Address,
        Applet::CheckAddress,
        Applet::Keygen,
        Applet::Sendmail,
        Applet::Ofmipd,
        Applet::Passwd,
        Applet::Checkauth,
        Applet::Init,
        Applet::Filter,
        Applet::Pending,
    ];

    /// The subcommand word (`tmda WORD`).
    pub fn word(self) -> &'static str {
        match self {
            Applet::Address => "address",
            Applet::CheckAddress => "check-address",
            Applet::Keygen => "keygen",
            Applet::Sendmail => "sendmail",
            Applet::Ofmipd => "ofmipd",
            Applet::Passwd => "passwd",
            Applet::Checkauth => "checkauth",
            Applet::Init => "init",
            Applet::Filter => "filter",
            Applet::Pending => "pending",
        }
    }

    /// Other program names that mean this applet.
    pub(crate) fn aliases(self) -> &'static [&'static str] {
        match self {
            Applet::Sendmail => &["tmda-inject"],
            Applet::Filter => &["tmda-rfilter"],
            _ => &[],
        }
    }

    /// The name of the original TMDA program, which is also the symlink name.
    pub fn legacy_name(self) -> &'static str {
        match self {
            Applet::Address => "tmda-address",
            Applet::CheckAddress => "tmda-check-address",
            Applet::Keygen => "tmda-keygen",
            Applet::Sendmail => "tmda-sendmail",
            Applet::Ofmipd => "tmda-ofmipd",
            Applet::Passwd => "tmda-passwd",
            Applet::Checkauth => "tmda-checkauth",
            // New: TMDA had no such program.
            Applet::Init => "tmda-init",
            Applet::Filter => "tmda-filter",
            Applet::Pending => "tmda-pending",
        }
    }

    /// The applet a program name stands for: the longest alias it ends with.
    pub fn from_argv0(argv0: &str) -> Option<Applet> {
        let base = argv0.rsplit('/').next().unwrap_or(argv0);
        Applet::ALL
            .iter()
            .flat_map(|&a| {
                [(a.legacy_name(), a), (a.word(), a)]
                    .into_iter()
                    .chain(a.aliases().iter().map(move |&n| (n, a)))
            })
            .filter(|(alias, _)| base.ends_with(alias) && (base.len() == alias.len() || alias.starts_with("tmda-")))
            .max_by_key(|(alias, _)| alias.len())
            .map(|(_, a)| a)
    }

    /// The clap command for this applet, named as its legacy program.
    pub fn command(self) -> clap::Command {
        self.command_named(self.legacy_name()).bin_name(self.legacy_name())
    }

    /// The clap command for this applet, as invoked under `name` (`tmda-address`, or
    /// `address` below `tmda`). Help, usage and `--version` come from this one
    /// definition whichever name is used, so `tmda address --help` and
    /// `tmda-address --help` say the same.
    pub fn command_named(self, name: &str) -> clap::Command {
        let cmd = match self {
            Applet::Address => address::Args::command(),
            Applet::CheckAddress => check_address::Args::command(),
            Applet::Keygen => keygen::Args::command(),
            Applet::Sendmail => sendmail::command(),
            Applet::Ofmipd => ofmipd::Args::command(),
            Applet::Passwd => passwd::Args::command(),
            Applet::Checkauth => checkauth::Args::command(),
            Applet::Init => init::Args::command(),
            Applet::Filter => filter::command(),
            Applet::Pending => pending::command(),
        };
        uniform(cmd.name(name.to_string()))
    }
}

/// What every applet's command shares: `--version` prints `tmda VERSION` whatever the
/// name it was called by (`-V`, an argument of each applet, the full information).
pub(crate) fn uniform(cmd: clap::Command) -> clap::Command {
    cmd.version(env!("CARGO_PKG_VERSION")).display_name("tmda")
}

const ABOUT: &str = "TMDA client tools: tagged addresses, outgoing tagging, authenticated SMTP submission";
const LONG_ABOUT: &str = "tmda is a re-implementation of the client side of TMDA, the Tagged Message Delivery Agent. \
It reads TMDA's ~/.tmda/config and crypt_key unchanged, and the addresses it makes verify on an unmodified \
TMDA server. Each command is also available under its old program name through a symlink \
(tmda-address, tmda-check-address, tmda-keygen, tmda-sendmail, tmda-inject, sendmail, tmda-ofmipd, tmda-passwd, \
tmda-checkauth), where it takes the same options and arguments.";

/// The parsed arguments of an applet that clap parses alone (ofmipd and checkauth
/// need the order of their options, sendmail has sendmail's syntax).
#[derive(Debug)]
pub enum AppletArgs {
    Address(address::Args),
    CheckAddress(check_address::Args),
    Keygen(keygen::Args),
    Passwd(passwd::Args),
    Init(init::Args),
}

/// The whole `tmda` command tree (for help, man pages and completions): each
/// subcommand is its applet's own command under the subcommand word.
pub fn command() -> clap::Command {
    let mut cmd = clap::Command::new("tmda")
        .about(ABOUT)
        .long_about(LONG_ABOUT)
        .version(env!("CARGO_PKG_VERSION"))
        .disable_version_flag(true)
        .subcommand_value_name("COMMAND")
        .subcommand_help_heading("Commands")
        .arg(
            clap::Arg::new("full_version")
                .short('V')
                .action(clap::ArgAction::SetTrue)
                .help("Show full version information and exit"),
        )
        .arg(
            clap::Arg::new("version")
                .long("version")
                .action(clap::ArgAction::Version)
                .help("Print version and exit"),
        );
    for a in Applet::ALL {
        cmd = cmd.subcommand(a.command_named(a.word()));
    }
    cmd
}

/// A one-thread async runtime (one ofmipd session, one tmda sendmail relay).
pub fn current_thread_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))
}

/// Full version information, printed by `-V` on every applet.
pub fn full_version() -> String {
    format!(
        "tmda {} (tagged addresses compatible with TMDA 1.1.x)\nplatform: {}-{}\ncookies: HMAC-SHA1, key file of 40 hex digits",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// Entry point: dispatch on `argv[0]`, run, map the result to an exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    let argv0 = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tmda".into());
    // Through a symlink the program name is the applet; under `tmda`, the first word.
    let (applet, name, rest) = match Applet::from_argv0(&argv0) {
        Some(a) => (
            a,
            argv0.rsplit('/').next().unwrap_or(a.legacy_name()).to_string(),
            &args[..],
        ),
        None => match args.get(1).and_then(|w| Applet::ALL.iter().find(|a| w == a.word())) {
            Some(&a) => (a, format!("tmda {}", a.word()), &args[1..]),
            None => return top_level(&args),
        },
    };
    let parsed = match applet {
        // sendmail's option syntax is not clap's: hand its arguments over untouched.
        Applet::Sendmail => return sendmail::main(&name, rest.get(1..).unwrap_or_default()),
        // ofmipd and checkauth need the order of their auth options, which the derived
        // structs lose.
        Applet::Ofmipd => return finish(&name, ofmipd::run(rest, &name)),
        Applet::Checkauth => return finish(&name, checkauth::run(rest, &name)),
        // Every failure of the filter is 75 for the MTA, whatever its kind.
        Applet::Filter => return filter::main(rest, &name),
        Applet::Pending => return pending::main(rest, &name),
        _ => applet
            .command_named(&name)
            .bin_name(&name)
            .try_get_matches_from(rest)
            .and_then(|m| applet_args_from(applet, &m)),
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => return clap_exit(e),
    };
    let result = match parsed {
        AppletArgs::Address(a) => address::run(a, &name),
        AppletArgs::CheckAddress(a) => check_address::run(a, &name),
        AppletArgs::Keygen(a) => keygen::run(a, &name),
        AppletArgs::Passwd(a) => passwd::run(a),
        AppletArgs::Init(a) => init::run(a),
    };
    finish(&name, result)
}

/// `tmda` without a command word: `-V`, `--version`, `--help`, `help COMMAND`.
fn top_level(args: &[OsString]) -> ExitCode {
    if args.len() <= 1 {
        let _ = write!(std::io::stderr(), "{}", command().render_help());
        return ExitCode::from(Sysexit::Usage as u8);
    }
    let m = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return clap_exit(e),
    };
    if m.get_flag("full_version") {
        return finish("tmda", maybe_full_version(true).map(|c| c.unwrap_or(ExitCode::SUCCESS)));
    }
    finish(
        "tmda",
        Err(Error::Usage(
            "name a command: init, address, check-address, keygen, sendmail, ofmipd, passwd or checkauth (see tmda --help)"
                .into(),
        )),
    )
}

/// The arguments of an applet that parses its own (filter, pending: their exit statuses
/// are their own), or the exit status clap's message (help, version, a mistake) ends with.
pub(crate) fn parse_own<T: clap::FromArgMatches>(applet: Applet, raw: &[OsString], name: &str) -> Result<T, ExitCode> {
    parse_own_or_error(applet, raw, name).map_err(clap_exit)
}

/// The same, the error left to the caller to print.
pub(crate) fn parse_own_or_error<T: clap::FromArgMatches>(
    applet: Applet,
    raw: &[OsString],
    name: &str,
) -> Result<T, clap::Error> {
    applet
        .command_named(name)
        .bin_name(name)
        .try_get_matches_from(raw)
        .and_then(|m| T::from_arg_matches(&m))
}

/// Set an environment variable while the process is still single-threaded (options that
/// TMDA turned into environment variables before reading the configuration).
pub(crate) fn set_env(name: &str, value: impl AsRef<std::ffi::OsStr>) {
    // SAFETY: called only while applying command-line options, before any thread is
    // started; nothing reads the environment concurrently.
    unsafe { std::env::set_var(name, value) };
}

/// Ask a vhome script (`-S`, qmail virtual users) for a user's home: `SCRIPT USER HOST`,
/// with its arguments as arguments (TMDA built a shell command line from them). The
/// home it prints, or `None` when it fails or prints nothing.
pub(crate) fn vhome_home(script: &std::path::Path, user: &str, host: &str) -> std::io::Result<Option<String>> {
    let out = std::process::Command::new(script)
        .arg(user)
        .arg(host)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let home = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.status.success() && !home.is_empty()).then_some(home))
}

/// Print clap's message; help and version are a success, anything else a usage error.
fn clap_exit(e: clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(Sysexit::Usage as u8)
    } else {
        ExitCode::SUCCESS
    }
}

fn applet_args_from(applet: Applet, m: &clap::ArgMatches) -> Result<AppletArgs, clap::Error> {
    Ok(match applet {
        Applet::Address => AppletArgs::Address(address::Args::from_arg_matches(m)?),
        Applet::CheckAddress => AppletArgs::CheckAddress(check_address::Args::from_arg_matches(m)?),
        Applet::Keygen => AppletArgs::Keygen(keygen::Args::from_arg_matches(m)?),
        Applet::Passwd => AppletArgs::Passwd(passwd::Args::from_arg_matches(m)?),
        Applet::Init => AppletArgs::Init(init::Args::from_arg_matches(m)?),
        Applet::Sendmail | Applet::Ofmipd | Applet::Checkauth | Applet::Filter | Applet::Pending => {
            unreachable!("parsed by the applet itself")
        }
    })
}

/// Report an error as `NAME: message: cause...` and choose the exit status.
pub(crate) fn finish(name: &str, result: Result<ExitCode, Error>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                let s_text = match s.downcast_ref::<std::io::Error>() {
                    Some(io) => crate::error::describe_io(io),
                    None => s.to_string(),
                };
                if !msg.contains(&s_text) {
                    msg.push_str(": ");
                    msg.push_str(&s_text);
                }
                src = s.source();
            }
            let _ = writeln!(std::io::stderr(), "{name}: {msg}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Write to stdout, treating a closed pipe as success (e.g. `tmda address | head -c0`).
pub(crate) fn print_stdout(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("standard output", e))
}

/// Parse an applet's arguments with clap, keeping the matches (ofmipd and checkauth
/// need the order of their auth options). `Ok(None)`: help or version was printed.
pub(crate) fn parse_with_matches<T: CommandFactory + FromArgMatches>(
    raw: &[OsString],
    name: &str,
) -> Result<Option<(T, clap::ArgMatches)>, Error> {
    parse_adjusted::<T>(raw, name, |c| c)
}

/// [`parse_with_matches`] with the command changed by `adjust` first.
pub(crate) fn parse_adjusted<T: CommandFactory + FromArgMatches>(
    raw: &[OsString],
    name: &str,
    adjust: impl FnOnce(clap::Command) -> clap::Command,
) -> Result<Option<(T, clap::ArgMatches)>, Error> {
    let cmd = adjust(uniform(T::command().name(name.to_string()).bin_name(name.to_string())));
    let matches = match cmd.try_get_matches_from(raw) {
        Ok(m) => m,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return Ok(None);
        }
        Err(e) => return Err(Error::Usage(e.render().to_string().trim_end().to_string())),
    };
    let args = T::from_arg_matches(&matches).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Some((args, matches)))
}

pub use crate::config::warnings_wanted;

/// Say what in the configuration is probably a mistake: unknown upper-case variables
/// (with the setting meant), and with `identity` the USERNAME and HOSTNAME that were
/// guessed. Printed once, before anything else the command writes.
pub(crate) fn warn_about_config(name: &str, config: &crate::config::Config, quiet: bool, identity: bool) {
    if !warnings_wanted(quiet) {
        return;
    }
    let mut err = std::io::stderr().lock();
    for u in config.unknown_variables() {
        let _ = writeln!(err, "{name}: warning: {u}");
    }
    if identity {
        for note in config.identity_fallbacks() {
            let _ = writeln!(err, "{name}: warning: {note}");
        }
    }
}

/// Shared `-V` handling.
pub(crate) fn maybe_full_version(v: bool) -> Result<Option<ExitCode>, Error> {
    if v {
        print_stdout(&format!("{}\n", full_version()))?;
        return Ok(Some(ExitCode::SUCCESS));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_dispatch() {
        for (argv0, want) in [
            ("/usr/bin/tmda-address", Some(Applet::Address)),
            ("tmda-address", Some(Applet::Address)),
            ("address", Some(Applet::Address)),
            ("/opt/tmda/bin/tmda-check-address", Some(Applet::CheckAddress)),
            ("check-address", Some(Applet::CheckAddress)),
            ("tmda-keygen", Some(Applet::Keygen)),
            ("/usr/sbin/sendmail", Some(Applet::Sendmail)),
            ("tmda-sendmail", Some(Applet::Sendmail)),
            ("tmda-inject", Some(Applet::Sendmail)),
            ("/usr/local/bin/tmda-ofmipd", Some(Applet::Ofmipd)),
            ("tmda-passwd", Some(Applet::Passwd)),
            ("tmda-checkauth", Some(Applet::Checkauth)),
            ("x-tmda-keygen", Some(Applet::Keygen)),
            ("tmda", None),
            ("/usr/bin/tmda", None),
            ("myaddress", None),
            ("", None),
        ] {
            assert_eq!(Applet::from_argv0(argv0), want, "{argv0}");
        }
    }

    /// See: #11. Every argument and subcommand says what it is (help, man pages and
    /// completions show these texts).
    #[test]
    fn r11_every_argument_is_described() {
        fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if a.get_help().is_none() && !a.is_hide_set() && a.get_id() != "help" && a.get_id() != "version" {
                    missing.push(format!("{path}: {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}: no about", sub.get_name()));
                }
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = vec![];
        check(&command(), "tmda", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }

    #[test]
    fn clap_definitions_are_consistent() {
        command().debug_assert();
        for a in Applet::ALL {
            a.command().debug_assert();
        }
    }
}
