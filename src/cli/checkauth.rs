//! `tmda checkauth` (`tmda-checkauth`): check a user's credentials against the same
//! sources `ofmipd` uses, and say which source accepted or why each one refused.
//!
//! With `--checkpassword` it is a checkpassword program itself (cr.yp.to/checkpwd): it
//! reads `user\0password\0timestamp\0` from descriptor 3, runs the rest of its
//! arguments on success, and exits 1 on bad credentials, 111 on a temporary problem,
//! so other daemons can authenticate against the tofmipd file.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::auth::Verdict;
use crate::error::Error;
use crate::smtp::session::{AuthOutcome, Secret};

#[derive(Debug, clap::Parser)]
#[command(
    version,
    disable_version_flag = true,
    about = "Check credentials against the auth sources ofmipd would use",
    long_about = "Check USER's password against the same auth sources as tmda ofmipd (-a, -A, -R; tried in the \
order given; the default authfile when none is given), print what each source said, and exit 0 only if one \
accepted (1 if all refused, 75 if one could not be asked). The password is read without echo from the \
terminal, or from standard input with --stdin. With --checkpassword it acts as a checkpassword program."
)]
pub struct Args {
    /// Check against this tofmipd file (repeatable)
    #[arg(short = 'a', long = "authfile", value_name = "FILE")]
    pub authfile: Vec<PathBuf>,
    /// Check with this checkpassword program (repeatable)
    #[arg(short = 'A', long = "authprog", value_name = "PROGRAM")]
    pub authprog: Vec<String>,
    /// Check against this remote server (repeatable)
    #[arg(short = 'R', long = "remoteauth", value_name = "PROTO://HOST[:PORT][/DN]")]
    pub remoteauth: Vec<String>,
    /// Check with this PAM service (repeatable)
    #[arg(short = 'm', long = "pamauth", value_name = "SERVICE")]
    pub pamauth: Vec<String>,
    /// With -R or -A, also try the default authfile
    #[arg(short = 'F', long = "fallback")]
    pub fallback: bool,
    /// Read the password from standard input (first line) instead of the terminal
    #[arg(long = "stdin", conflicts_with = "checkpassword")]
    pub stdin: bool,
    /// Act as a checkpassword program: credentials on descriptor 3, then run PROGRAM
    #[arg(long = "checkpassword")]
    pub checkpassword: bool,
    /// Show full version information and exit
    #[arg(short = 'V')]
    pub full_version: bool,
    /// Print version and exit
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// The user whose password is checked. With --checkpassword: the program to run
    /// when the credentials are right, then its arguments (options among them are the
    /// program's)
    #[arg(value_name = "USER", required_unless_present_any = ["full_version", "checkpassword"])]
    pub rest: Vec<String>,
}

/// In --checkpassword mode everything from the first argument on is the program and its
/// own arguments; otherwise options may come before or after USER.
fn parse(raw: &[std::ffi::OsString], name: &str) -> Result<Option<(Args, clap::ArgMatches)>, Error> {
    if raw.iter().skip(1).any(|a| a == "--checkpassword") {
        let parsed = super::parse_adjusted::<Args>(raw, name, |c| c.mut_arg("rest", |a| a.trailing_var_arg(true)))?;
        // `--checkpassword` may also have been an argument of USER's...: then it was
        // not this mode after all.
        if parsed.as_ref().is_none_or(|(a, _)| a.checkpassword) {
            return Ok(parsed);
        }
    }
    super::parse_with_matches::<Args>(raw, name)
}

pub fn run(raw: &[std::ffi::OsString], name: &str) -> Result<ExitCode, Error> {
    let Some((args, matches)) = parse(raw, name)? else {
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(code) = super::maybe_full_version(args.full_version)? {
        return Ok(code);
    }
    let order = super::authopts::order(&matches);
    let chain = super::authopts::chain(&order, args.fallback, &super::authopts::default_authfile(), None)?;

    if args.checkpassword {
        // SAFETY: descriptor 3 belongs to us by the checkpassword convention.
        let mut fd3 = unsafe { std::fs::File::from_raw_fd(3) };
        let mut buf = Vec::new();
        if fd3.by_ref().take(512).read_to_end(&mut buf).is_err() {
            return Ok(ExitCode::from(111));
        }
        let mut parts = buf.split(|&b| b == 0);
        let (Some(user), Some(pass)) = (parts.next(), parts.next()) else {
            return Ok(ExitCode::from(1));
        };
        let (Ok(user), Ok(pass)) = (std::str::from_utf8(user), std::str::from_utf8(pass)) else {
            return Ok(ExitCode::from(1));
        };
        let (outcome, _) = chain.check(user, &Secret::Password(pass.to_string()));
        return match outcome {
            AuthOutcome::Accepted => match args.rest.split_first() {
                Some((prog, rest)) => {
                    let e = std::process::Command::new(prog).args(rest).env("USER", user).exec();
                    eprintln!("{name}: {prog}: {e}");
                    Ok(ExitCode::from(111))
                }
                None => Ok(ExitCode::SUCCESS),
            },
            AuthOutcome::Denied => Ok(ExitCode::from(1)),
            AuthOutcome::Temporary => Ok(ExitCode::from(111)),
        };
    }

    let user = args.rest.first().cloned().unwrap_or_default();
    if args.rest.len() > 1 {
        return Err(Error::Usage(format!(
            "only one USER can be checked at a time (got {})",
            args.rest.join(" ")
        )));
    }
    let password = super::passwd::read_password(args.stdin, "Password: ", false)?;
    let (outcome, trail) = chain.check(&user, &Secret::Password(password));
    let mut out = String::new();
    for (source, verdict) in &trail {
        let v = match verdict {
            Verdict::Accepted => "accepted".to_string(),
            Verdict::Denied => "refused: bad credentials".to_string(),
            Verdict::Unavailable(why) => format!("could not check: {why}"),
        };
        out.push_str(&format!("{source}: {v}\n"));
    }
    super::print_stdout(&out)?;
    Ok(match outcome {
        AuthOutcome::Accepted => ExitCode::SUCCESS,
        AuthOutcome::Denied => ExitCode::from(1),
        AuthOutcome::Temporary => ExitCode::from(crate::error::Sysexit::TempFail as u8),
    })
}
