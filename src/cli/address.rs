//! `tmda address` (`tmda-address`): print a tagged address.
//!
//! Same options as TMDA's tmda-address; dated by default. Gnus calls `tmda-address -dn`
//! for every message, so this path reads the config and the key and nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, LoadOptions};
use crate::error::Error;
use crate::interval::Interval;

#[derive(Debug, clap::Parser)]
#[command(
    version,
    disable_version_flag = true,
    about = "Generate a tagged e-mail address and print it to stdout",
    long_about = "Generate a tagged e-mail address and print it to stdout. If no options are given, a dated \
address is made with the DATED_TIMEOUT of your configuration (5 days by default). -k wins over -s, and -s \
over -d/-t, as in TMDA. Unknown upper-case variables in the configuration (a misspelt setting is otherwise \
ignored) and a USERNAME or HOSTNAME guessed from the login or machine name are warned about on standard \
error, except with -n, --quiet or TMDA_NO_WARN=1."
)]
pub struct Args {
    /// Read this configuration file instead of ~/.tmda/config
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Do not print a newline after the address (for calling from other programs; also
    /// keeps warnings off standard error, which some callers mix into the address)
    #[arg(short = 'n', long = "no-newline")]
    pub no_newline: bool,
    /// Base the tagged address on ADDRESS instead of USERNAME@HOSTNAME
    #[arg(short = 'a', long = "address", value_name = "ADDRESS")]
    pub address: Option<String>,
    /// Make a keyword address for KEYWORD (wins over -s, -d and -t, as in TMDA)
    #[arg(short = 'k', long = "keyword", value_name = "KEYWORD")]
    pub keyword: Option<String>,
    /// Make a sender address for ADDRESS, which may also be a domain (wins over -d and -t)
    #[arg(short = 's', long = "sender", value_name = "ADDRESS")]
    pub sender: Option<String>,
    /// Make a dated address with the default timeout (DATED_TIMEOUT, or $TMDA_TIMEOUT)
    #[arg(short = 'd', long = "dated")]
    pub dated: bool,
    /// Make a dated address valid for TIMEOUT: a number and a unit, Y M w d h m or s (e.g. 5d, 24h); implies -d
    #[arg(short = 't', long = "timeout", value_name = "TIMEOUT", value_parser = parse_interval)]
    pub timeout: Option<Interval>,
    /// Do not warn about the configuration (unknown variables, USERNAME or HOSTNAME
    /// not set); TMDA_NO_WARN=1 does the same
    #[arg(long = "quiet")]
    pub quiet: bool,
    /// Show full version information and exit
    #[arg(short = 'V')]
    pub full_version: bool,
    /// Print version and exit
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
}

pub(crate) fn parse_interval(s: &str) -> Result<Interval, String> {
    Interval::parse(s).map_err(|e| e.to_string())
}

/// `name`: the program as invoked, for messages.
pub fn run(args: Args, name: &str) -> Result<ExitCode, Error> {
    if let Some(code) = super::maybe_full_version(args.full_version)? {
        return Ok(code);
    }
    let config = Config::load(&LoadOptions {
        config_file: args.config_file,
        home: None,
    })?;
    // Emacs's shell-command-to-string, which Gnus users call `tmda-address -dn` with,
    // returns standard error mixed with the address: -n means a program is reading.
    super::warn_about_config(name, &config, args.quiet || args.no_newline, args.address.is_none());
    let tagger = crate::address::Tagger::from_config(&config)?;
    let base = match &args.address {
        Some(a) => a.clone(),
        None => config.default_address(),
    };
    let address = if let Some(kw) = &args.keyword {
        tagger.keyword(&base, kw)?
    } else if let Some(sender) = &args.sender {
        tagger.sender(&base, sender)?
    } else {
        let timeout = match args.timeout {
            Some(t) => t,
            None => config.effective_dated_timeout()?,
        };
        tagger.dated(&base, crate::clock::now()?, timeout.seconds())?
    };
    let nl = if args.no_newline { "" } else { "\n" };
    super::print_stdout(&format!("{address}{nl}"))?;
    Ok(ExitCode::SUCCESS)
}
