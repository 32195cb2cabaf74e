//! `tmda keygen` (`tmda-keygen`): make a new 160-bit secret key.
//!
//! Like TMDA it prints the key (alone with `-b`). Beyond TMDA, `--install` writes it
//! straight into CRYPT_KEY_FILE, atomically and with mode 0600, and refuses to replace
//! an existing key unless `--force` is given: a new key invalidates every tagged
//! address handed out so far.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, LoadOptions};
use crate::error::Error;
use crate::key::CryptKey;

#[derive(Debug, clap::Parser)]
#[command(version, disable_version_flag = true, about = "Generate a unique 160-bit hex key")]
pub struct Args {
    /// Read random bytes from DEVICE instead of /dev/urandom
    #[arg(short = 'd', long = "device", value_name = "DEVICE", default_value = "/dev/urandom")]
    pub device: PathBuf,
    /// Print only the key
    #[arg(short = 'b', long = "batch")]
    pub batch: bool,
    /// Write the key to CRYPT_KEY_FILE (mode 0600, atomically) instead of printing it
    #[arg(long = "install")]
    pub install: bool,
    /// With --install: replace an existing key (invalidates all tagged addresses made with it)
    #[arg(long = "force", requires = "install")]
    pub force: bool,
    /// Configuration file that names CRYPT_KEY_FILE (for --install)
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same
    #[arg(long = "quiet")]
    pub quiet: bool,
    /// Show full version information and exit
    #[arg(short = 'V')]
    pub full_version: bool,
    /// Print version and exit
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
}

/// `name`: the program as invoked, for messages.
pub fn run(args: Args, name: &str) -> Result<ExitCode, Error> {
    if let Some(code) = super::maybe_full_version(args.full_version)? {
        return Ok(code);
    }
    if args.install {
        let config = Config::load(&LoadOptions {
            config_file: args.config_file,
            home: None,
        })?;
        super::warn_about_config(name, &config, args.quiet, false);
        let key = CryptKey::generate(&args.device)?;
        key.install(&config.crypt_key_file, args.force)?;
        if !args.batch {
            eprintln!(
                "wrote a new secret key to {} (mode 0600); keep it secret",
                config.crypt_key_file.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let key = CryptKey::generate(&args.device)?;
    if args.batch {
        super::print_stdout(&format!("{}\n", key.to_hex()))?;
    } else {
        super::print_stdout(&format!(
            "A new 160-bit secret key:\n\n{}\n\nPut it in ~/.tmda/crypt_key and keep it secret (chmod 600 ~/.tmda/crypt_key),\n\
             or run 'tmda keygen --install' to do both in one step.\n",
            key.to_hex()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
