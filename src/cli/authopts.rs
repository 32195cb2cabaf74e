//! The auth-source options shared by `ofmipd` and `checkauth` (-a, -A, -R, -m, -F),
//! turned into a [`Chain`] in the order given on the command line.

use std::path::{Path, PathBuf};

use crate::auth::{self, Chain, Source};
use crate::error::Error;

/// The auth options in the order they were given: (position, option id, value).
pub fn order(m: &clap::ArgMatches) -> Vec<(usize, &'static str, String)> {
    let mut v = vec![];
    for id in ["authfile", "authprog", "remoteauth", "pamauth"] {
        if let (Some(idx), Some(vals)) = (m.indices_of(id), m.get_raw(id)) {
            for (i, val) in idx.zip(vals) {
                v.push((i, id, val.to_string_lossy().into_owned()));
            }
        }
    }
    v.sort();
    v
}

/// Build the chain. `owner`: the uid that must own authfiles (ofmipd), or `None` to
/// check only their mode (checkauth, run by an administrator).
pub fn chain(
    order: &[(usize, &'static str, String)],
    fallback: bool,
    default_authfile: &Path,
    owner: Option<u32>,
) -> Result<Chain, Error> {
    let check = |p: &Path| -> Result<(), Error> {
        let res = match owner {
            Some(uid) => auth::file::check_file(p, uid),
            None => auth::file::check_mode(p).map(|_| ()),
        };
        res.map_err(Error::from)
    };
    let mut sources: Vec<Box<dyn Source>> = vec![];
    for (_, kind, value) in order {
        match *kind {
            "authfile" => {
                let p = PathBuf::from(value);
                check(&p)?;
                sources.push(Box::new(auth::file::AuthFile { path: p }));
            }
            "authprog" => {
                check_program(value)?;
                sources.push(Box::new(auth::checkpw::CheckPassword::new(value)))
            }
            "remoteauth" => sources.push(Box::new(
                auth::remote::Remote::parse(value).map_err(|e| Error::Usage(format!("-R {value}: {e}")))?,
            )),
            _ => sources.push(Box::new(auth::pam::Pam { service: value.clone() })),
        }
    }
    let explicit_file = order.iter().any(|(_, k, _)| *k == "authfile");
    if order.is_empty() || (fallback && !explicit_file) {
        check(default_authfile)?;
        sources.push(Box::new(auth::file::AuthFile {
            path: default_authfile.to_path_buf(),
        }));
    }
    Ok(Chain { sources })
}

/// A checkpassword program that is not there is a set-up mistake to report at once
/// (exit 69), not an answer "try again later" at every login.
fn check_program(command: &str) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let Some(program) = command.split_whitespace().next() else {
        return Err(Error::Usage("-A needs a program".into()));
    };
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(program))
            .collect()
    };
    let runnable = |p: &PathBuf| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if candidates.iter().any(runnable) {
        return Ok(());
    }
    Err(Error::Unavailable(format!(
        "authprog {program}: {}",
        if program.contains('/') && std::path::Path::new(program).exists() {
            "not an executable file"
        } else if program.contains('/') {
            "no such program"
        } else {
            "no such program in $PATH"
        }
    )))
}

/// /etc/tofmipd as root, else ~/.tmda/tofmipd.
pub fn default_authfile() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        PathBuf::from("/etc/tofmipd")
    } else {
        PathBuf::from(crate::os::expanduser("~/.tmda/tofmipd"))
    }
}
