//! `tmda check-address` (`tmda-check-address`): verify a tagged address.
//!
//! Output is TMDA's: `STATUS: VALID` (and `EXPIRES:` for dated addresses) or
//! `STATUS: <reason>` (and `EXPIRED:`). Unlike TMDA, the exit status says it too:
//! 0 only for a valid address, 1 for one that does not verify.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::address::Failure;
use crate::config::{Config, LoadOptions};
use crate::error::Error;

#[derive(Debug, clap::Parser)]
#[command(
    version,
    disable_version_flag = true,
    about = "Check a tagged (dated, keyword, sender or confirm) e-mail address",
    long_about = "Check a tagged e-mail address against your secret key. ADDRESS is the address to check; \
SENDER is the sender address to check a sender-style address against. Exits 0 if the address is valid, \
1 if it is not."
)]
pub struct Args {
    /// Read this configuration file instead of ~/.tmda/config
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Show dates in the local time zone instead of UTC
    #[arg(short = 'l', long = "localtime")]
    pub localtime: bool,
    /// Also say (on standard error) which key file was used, and USERNAME and
    /// HOSTNAME when they were guessed from the login or machine name
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same
    #[arg(long = "quiet")]
    pub quiet: bool,
    /// Show full version information and exit
    #[arg(short = 'V')]
    pub full_version: bool,
    /// Print version and exit
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// The tagged address to check
    #[arg(value_name = "ADDRESS", required_unless_present = "full_version")]
    pub address: Option<String>,
    /// The sender, for sender-style addresses
    #[arg(value_name = "SENDER")]
    pub sender: Option<String>,
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
    super::warn_about_config(name, &config, args.quiet, false);
    if args.verbose {
        let mut notes = vec![format!("key: {}", config.crypt_key_file.display())];
        notes.extend(config.identity_fallbacks());
        for n in notes {
            eprintln!("{name}: {n}");
        }
    }
    let tagger = crate::address::Tagger::from_config(&config)?;
    let address = args.address.unwrap_or_default();
    let now = crate::clock::now()?;
    let (text, code) = match tagger.verify(&address, args.sender.as_deref(), now) {
        Ok(v) => {
            let mut t = String::from("STATUS: VALID\n");
            if let Some(exp) = v.expires {
                t.push_str(&format!("EXPIRES: {}\n", format_time(exp, args.localtime)));
            }
            (t, ExitCode::SUCCESS)
        }
        Err(f @ Failure::Expired(exp)) => (
            format!("STATUS: {f}\nEXPIRED: {}\n", format_time(exp, args.localtime)),
            ExitCode::from(1),
        ),
        Err(f) => (format!("STATUS: {f}\n"), ExitCode::from(1)),
    };
    super::print_stdout(&text)?;
    Ok(code)
}

/// `strftime("%c UTC")` in the C locale, or `%c %Z` in local time, as TMDA prints dates.
pub fn format_time(secs: u64, local: bool) -> String {
    let t = secs.min(i64::MAX as u64) as libc::time_t;
    // SAFETY: tm is POD and filled by gmtime_r/localtime_r; strftime writes at most buf.len().
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let ok = if local {
            !libc::localtime_r(&t, &mut tm).is_null()
        } else {
            !libc::gmtime_r(&t, &mut tm).is_null()
        };
        if !ok {
            return secs.to_string();
        }
        let fmt: &[u8] = if local {
            b"%a %b %e %H:%M:%S %Y %Z\0"
        } else {
            b"%a %b %e %H:%M:%S %Y UTC\0"
        };
        let mut buf = [0u8; 128];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr().cast(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_format_matches_python_c_locale() {
        assert_eq!(super::format_time(1263369386, false), "Wed Jan 13 07:56:26 2010 UTC");
        assert_eq!(super::format_time(0, false), "Thu Jan  1 00:00:00 1970 UTC");
    }
}
