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
pub mod keygen;
pub mod ofmipd;
pub mod passwd;
pub mod sendmail;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
        }
    }

    /// Other program names that mean this applet.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Applet::Sendmail => &["tmda-inject"],
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
        let cmd = match self {
            Applet::Address => address::Args::command(),
            Applet::CheckAddress => check_address::Args::command(),
            Applet::Keygen => keygen::Args::command(),
            Applet::Sendmail => sendmail::command(),
            Applet::Ofmipd => ofmipd::Args::command(),
            Applet::Passwd => passwd::Args::command(),
            Applet::Checkauth => checkauth::Args::command(),
        };
        cmd.name(self.legacy_name()).bin_name(self.legacy_name())
    }
}

/// `tmda` with a subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "tmda",
    version,
    about = "TMDA client tools: tagged addresses, outgoing tagging, authenticated SMTP submission",
    long_about = "tmda is a re-implementation of the client side of TMDA, the Tagged Message Delivery Agent. \
It reads TMDA's ~/.tmda/config and crypt_key unchanged, and the addresses it makes verify on an unmodified \
TMDA server. Each subcommand is also available under its old program name through a symlink \
(tmda-address, tmda-check-address, tmda-keygen, tmda-sendmail, tmda-inject, sendmail, tmda-ofmipd, tmda-passwd, tmda-checkauth).",
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub applet: AppletArgs,
}

#[derive(Debug, Subcommand)]
pub enum AppletArgs {
    /// Print a tagged address (tmda-address)
    Address(address::Args),
    /// Check a tagged address (tmda-check-address)
    #[command(name = "check-address")]
    CheckAddress(check_address::Args),
    /// Generate a new secret key (tmda-keygen)
    Keygen(keygen::Args),
    /// Authenticated SMTP submission proxy that tags mail (tmda-ofmipd)
    Ofmipd(Box<ofmipd::Args>),
    /// Manage the tofmipd password file (tmda-passwd)
    Passwd(passwd::Args),
    /// Check credentials against ofmipd's auth sources (tmda-checkauth)
    Checkauth(Box<checkauth::Args>),
    /// Tag outgoing mail and hand it to the MTA (tmda-sendmail, tmda-inject, sendmail); takes sendmail's options
    #[command(disable_help_flag = true)]
    Sendmail {
        #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true, value_name = "SENDMAIL-ARGS")]
        args: Vec<OsString>,
    },
}

/// The whole `tmda` command tree (for help, man pages and completions).
pub fn command() -> clap::Command {
    Cli::command()
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
    // sendmail's option syntax is not clap's: hand its arguments over untouched.
    let from_argv0 = Applet::from_argv0(&argv0);
    if from_argv0 == Some(Applet::Sendmail) {
        let base = argv0.rsplit('/').next().unwrap_or("tmda-sendmail").to_string();
        return sendmail::main(&base, &args[1..]);
    }
    if from_argv0.is_none() && args.get(1).is_some_and(|a| a == "sendmail") {
        return sendmail::main("tmda sendmail", &args[2..]);
    }
    // ofmipd needs the order of its auth options, which the derived struct loses.
    if from_argv0 == Some(Applet::Ofmipd) {
        let base = argv0.rsplit('/').next().unwrap_or("tmda-ofmipd").to_string();
        return finish(&base, ofmipd::run(&args, &base));
    }
    if from_argv0.is_none() && args.get(1).is_some_and(|a| a == "ofmipd") {
        return finish("tmda ofmipd", ofmipd::run(&args[1..], "tmda ofmipd"));
    }
    if from_argv0 == Some(Applet::Checkauth) {
        let base = argv0.rsplit('/').next().unwrap_or("tmda-checkauth").to_string();
        return finish(&base, checkauth::run(&args, &base));
    }
    if from_argv0.is_none() && args.get(1).is_some_and(|a| a == "checkauth") {
        return finish("tmda checkauth", checkauth::run(&args[1..], "tmda checkauth"));
    }
    let (applet, parsed) = match from_argv0 {
        Some(applet) => {
            let res = applet
                .command()
                .try_get_matches_from(&args)
                .and_then(|m| applet_args_from(applet, &m));
            (Some(applet), res)
        }
        None => {
            let res = Cli::try_parse_from(&args).map(|c| c.applet);
            (None, res)
        }
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(Sysexit::Usage as u8)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let name = applet.map(Applet::legacy_name).unwrap_or_else(|| match &parsed {
        AppletArgs::Address(_) => "tmda address",
        AppletArgs::CheckAddress(_) => "tmda check-address",
        AppletArgs::Keygen(_) => "tmda keygen",
        AppletArgs::Sendmail { .. } => "tmda sendmail",
        AppletArgs::Ofmipd(_) => "tmda ofmipd",
        AppletArgs::Passwd(_) => "tmda passwd",
        AppletArgs::Checkauth(_) => "tmda checkauth",
    });
    let result = match parsed {
        AppletArgs::Address(a) => address::run(a),
        AppletArgs::CheckAddress(a) => check_address::run(a),
        AppletArgs::Keygen(a) => keygen::run(a),
        AppletArgs::Sendmail { args } => return sendmail::main("tmda sendmail", &args),
        AppletArgs::Ofmipd(_) | AppletArgs::Checkauth(_) => unreachable!("handled before clap"),
        AppletArgs::Passwd(a) => passwd::run(a),
    };
    finish(name, result)
}

fn applet_args_from(applet: Applet, m: &clap::ArgMatches) -> Result<AppletArgs, clap::Error> {
    Ok(match applet {
        Applet::Address => AppletArgs::Address(address::Args::from_arg_matches(m)?),
        Applet::CheckAddress => AppletArgs::CheckAddress(check_address::Args::from_arg_matches(m)?),
        Applet::Keygen => AppletArgs::Keygen(keygen::Args::from_arg_matches(m)?),
        Applet::Passwd => AppletArgs::Passwd(passwd::Args::from_arg_matches(m)?),
        Applet::Sendmail | Applet::Ofmipd | Applet::Checkauth => unreachable!("handled before clap"),
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
                let s_text = s.to_string();
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
    let matches = match T::command().name(name.to_string()).try_get_matches_from(raw) {
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

    #[test]
    fn clap_definitions_are_consistent() {
        command().debug_assert();
        for a in Applet::ALL {
            a.command().debug_assert();
        }
    }
}
