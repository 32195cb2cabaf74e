//! `tmda passwd` (`tmda-passwd`): manage the tofmipd file (`user:password` lines).
//!
//! Every change is atomic and serialized: a lock file beside the password file is held
//! while the current file is read, the change made, a temporary file in the same
//! directory written with the file's mode (0600 for a new file) and owner, synced and
//! renamed over the old one. So two concurrent runs never lose an entry, and a crash
//! leaves either the old or the new file. Comments and line order survive. A file
//! others could read (mode wider than 0600) is refused. A file root creates for ofmipd
//! (the default /etc/tofmipd, or any with `-u`) is given to the user ofmipd runs as,
//! since ofmipd refuses a file it does not own.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::auth::scheme::{self, Scheme, Stored};
use crate::error::Error;

#[derive(Debug, clap::Parser)]
#[command(
    version,
    disable_version_flag = true,
    about = "Manage the tofmipd password file of tmda ofmipd",
    long_about = "Add, change, remove, list and check users of the tofmipd file (default /etc/tofmipd as root, \
else ~/.tmda/tofmipd). Passwords are asked twice without echo (three tries), or read once from standard input with \
--stdin. --scheme decides how a password is stored: plain (the default, readable by TMDA) and cram-md5 allow CRAM-MD5 \
logins; argon2id and sha512-crypt are stronger against a stolen file but allow only PLAIN and LOGIN. When root \
creates /etc/tofmipd, the file is given to the user ofmipd runs as (tofmipd, or -u USER), because ofmipd refuses a \
file it does not own."
)]
pub struct Args {
    /// The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]
    #[arg(short = 'a', long = "authfile", value_name = "FILE", global = true)]
    pub authfile: Option<PathBuf>,
    /// The user ofmipd runs as (its -u): a password file root creates for it is given
    /// to this user [default: tofmipd, for /etc/tofmipd]
    #[arg(short = 'u', long = "username", value_name = "USER", global = true)]
    pub username: Option<String>,
    /// How new passwords are stored
    #[arg(long = "scheme", value_enum, default_value = "plain", global = true)]
    pub scheme: Scheme,
    /// Read the password from standard input (first line), for scripts
    #[arg(long = "stdin", global = true)]
    pub stdin: bool,
    /// Do not ask for confirmation (replacing or removing a user)
    #[arg(short = 'y', long = "yes", global = true)]
    pub yes: bool,
    /// Show full version information and exit
    #[arg(short = 'V')]
    pub full_version: bool,
    /// Print version and exit
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    pub action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Add a user (asks before replacing an existing one)
    Add {
        /// The login name to add (case-insensitive, as ofmipd compares them)
        user: String,
    },
    /// Change an existing user's password
    Change {
        /// The login name whose password changes
        user: String,
    },
    /// Remove a user
    Remove {
        /// The login name to remove
        user: String,
    },
    /// List the users and how their passwords are stored (the names --scheme takes)
    List,
    /// Check a user's password against the file (exit 0 if right, 1 if not)
    Check {
        /// The login name whose password is checked
        user: String,
    },
}

/// How many times a new password is asked for before giving up.
const TRIES: usize = 3;

/// Read a password: the first line of standard input, or twice without echo on the terminal.
pub fn read_password(stdin: bool, prompt: &str, twice: bool) -> Result<String, Error> {
    if stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io("standard input", e))?;
        return Ok(line
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_string());
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|e| Error::io("the terminal (use --stdin in scripts)", e))
    };
    if !twice {
        return ask(prompt);
    }
    // A typo is no reason to start over: ask again, a few times.
    for _ in 0..TRIES {
        let first = ask(prompt)?;
        if ask("Again: ")? == first {
            return Ok(first);
        }
        eprintln!("The passwords do not match; try again.");
    }
    Err(Error::Data(format!(
        "the passwords did not match {TRIES} times; nothing changed"
    )))
}

fn confirm(question: &str, yes: bool) -> Result<bool, Error> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        // No one to ask: the safe answer.
        return Ok(false);
    }
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .wait_for_newline(true)
        .interact()
        .map_err(|e| Error::Usage(format!("confirmation: {e}")))
}

fn valid_user(u: &str) -> Result<(), Error> {
    if u.is_empty() || u.contains([':', '\n', '\r', '\0', '#']) || u.contains(char::is_whitespace) {
        return Err(Error::Usage(format!(
            "{} is not a valid user name (no ':', '#', spaces or control characters)",
            crate::error::quote(u)
        )));
    }
    Ok(())
}

fn valid_password(p: &str, scheme: Scheme) -> Result<(), Error> {
    if p.is_empty() {
        return Err(Error::Data("an empty password is not allowed".into()));
    }
    if p.contains(['\n', '\r', '\0']) {
        return Err(Error::Data("a password cannot contain line breaks or NUL".into()));
    }
    if scheme == Scheme::Plain && (p.trim() != p || p.starts_with('{') || p.starts_with('$')) {
        return Err(Error::Data("with --scheme plain a password cannot start or end with white space, or start with { or $; choose another scheme".into()));
    }
    Ok(())
}

/// One line of the file: an entry, or anything else (kept verbatim).
enum Line {
    Entry { user: String, text: String },
    Other(String),
}

fn read_lines(path: &Path) -> Result<Vec<Line>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    Ok(text
        .lines()
        .map(|l| {
            let t = l.trim();
            match t.split_once(':') {
                Some((u, _)) if !t.starts_with('#') => Line::Entry {
                    user: u.trim().to_lowercase(),
                    text: l.to_string(),
                },
                _ => Line::Other(l.to_string()),
            }
        })
        .collect())
}

/// Run `change` on the file's lines under the lock and replace the file atomically.
/// `new_owner`: who gets the file if this creates it (uid, gid).
fn update(
    path: &Path,
    new_owner: Option<(u32, u32)>,
    change: impl FnOnce(&mut Vec<Line>) -> Result<(), Error>,
) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io(&dir, e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tofmipd".into());
    // Often run as root: a directory others can write to could have the lock or the
    // file swapped for a symlink (see crate::safe_dir).
    crate::safe_dir::check(&dir, "a password file").map_err(|e| Error::io(&dir, e))?;
    let lock_path = dir.join(format!(".{name}.lock"));
    let lock = crate::safe_dir::open_lock(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    let existing = std::fs::metadata(path).ok();
    if let Some(m) = &existing {
        let mode = m.mode() & 0o7777;
        if mode & 0o177 != 0 {
            return Err(Error::NoPerm(format!(
                "{} is mode {mode:03o}, so others could read it; fix it first with: chmod 600 {}",
                path.display(),
                crate::error::shell_quote(&path.display().to_string())
            )));
        }
    }
    let mut lines = read_lines(path)?;
    change(&mut lines)?;
    let mode = existing.as_ref().map(|m| m.mode() & 0o7777).unwrap_or(0o600);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        // Named as the file being written, not the temporary one (tempfile's message).
        .map_err(|e| Error::io(path, std::io::Error::from(e.kind())))?;
    for l in &lines {
        let text = match l {
            Line::Entry { text, .. } | Line::Other(text) => text,
        };
        writeln!(tmp, "{text}").map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(tmp.path(), e))?;
    // Keep the owner (e.g. tofmipd for /etc/tofmipd when root edits it).
    if let Some((uid, gid)) = existing.as_ref().map(|m| (m.uid(), m.gid())).or(new_owner) {
        std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid)).map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

use std::os::unix::fs::DirBuilderExt;

pub fn run(mut args: Args) -> Result<ExitCode, Error> {
    if let Some(code) = super::maybe_full_version(args.full_version)? {
        return Ok(code);
    }
    let Some(action) = args.action.take() else {
        return Err(Error::Usage(
            "say what to do: add, change, remove, list or check (see --help)".into(),
        ));
    };
    let path = args.authfile.clone().unwrap_or_else(super::authopts::default_authfile);
    if !matches!(action, Action::Add { .. }) && !path.exists() {
        return Err(Error::NoInput(format!(
            "{} does not exist (tmda passwd add USER creates it)",
            path.display()
        )));
    }
    match action {
        Action::List => {
            let mut out = String::new();
            for l in read_lines(&path)? {
                if let Line::Entry { user, text } = l {
                    let stored = text.split_once(':').map(|(_, p)| p.trim()).unwrap_or("");
                    let kind = Stored::parse(stored).map_or("unknown scheme", |s| s.scheme_name());
                    out.push_str(&format!("{user}\t{kind}\n"));
                }
            }
            super::print_stdout(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Check { user } => {
            let pw = read_password(args.stdin, "Password: ", false)?;
            let ok = crate::auth::file::parse(&path)?
                .into_iter()
                .find(|(u, _)| *u == user.to_lowercase())
                .is_some_and(|(_, p)| Stored::parse(&p).is_ok_and(|s| s.verify(&pw)));
            super::print_stdout(if ok {
                "password correct\n"
            } else {
                "password wrong or no such user\n"
            })?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Action::Remove { user } => {
            valid_user(&user)?;
            let lower = user.to_lowercase();
            let exists = read_lines(&path)?
                .iter()
                .any(|l| matches!(l, Line::Entry { user: u, .. } if *u == lower));
            if !exists {
                return Err(Error::NoUser(format!("no user {user} in {}", path.display())));
            }
            if !confirm(&format!("Remove {user} from {}?", path.display()), args.yes)? {
                return Err(Error::Usage(
                    "not removed (use --yes to confirm without a terminal)".into(),
                ));
            }
            update(&path, None, |lines| {
                lines.retain(|l| !matches!(l, Line::Entry { user: u, .. } if *u == lower));
                Ok(())
            })?;
            super::print_stdout(&format!("removed {user} from {}\n", path.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Add { user } => set_password(&path, &user, true, &args),
        Action::Change { user } => set_password(&path, &user, false, &args),
    }
}

/// Who gets a password file this run creates: as root, the user ofmipd runs as, for
/// /etc/tofmipd or whenever `-u` names one (ofmipd refuses a file it does not own).
/// `Err`: the note to print instead, when that user does not exist.
fn owner_for_new_file(path: &Path, args: &Args) -> Result<Option<crate::account::Account>, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let default_global = args.authfile.is_none() || path == Path::new("/etc/tofmipd");
    if !root || (args.username.is_none() && !default_global) {
        return Ok(None);
    }
    let name = args.username.as_deref().unwrap_or("tofmipd");
    match crate::account::Account::lookup(name) {
        Some(a) if a.uid != 0 => Ok(Some(a)),
        Some(_) => Ok(None),
        None => Err(format!(
            "note: user {name} does not exist, so {file} stays root's; tmda ofmipd refuses it until you create the \
user (useradd --system {name}) and give it the file: chown {name} {file}",
            file = crate::error::shell_quote(&path.display().to_string())
        )),
    }
}

/// add (`adding`) or change a user's password.
fn set_password(path: &Path, user: &str, adding: bool, args: &Args) -> Result<ExitCode, Error> {
    valid_user(user)?;
    // Made up on the spot, a directory would be neither where ofmipd looks nor as
    // private as it should be: a typo in -a is reported instead.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if args.authfile.is_some() && !dir.is_dir() {
        return Err(Error::NoInput(format!(
            "directory {} does not exist (create it first, or name another file with -a)",
            dir.display()
        )));
    }
    let lower = user.to_lowercase();
    let exists = read_lines(path)?
        .iter()
        .any(|l| matches!(l, Line::Entry { user: u, .. } if *u == lower));
    if !adding && !exists {
        return Err(Error::NoUser(format!("no user {user} in {}; use add", path.display())));
    }
    if adding
        && exists
        && !confirm(
            &format!("{user} exists in {}; replace the password?", path.display()),
            args.yes,
        )?
    {
        return Err(Error::Exists(format!(
            "{user} already exists in {}; use change, or --yes to replace",
            path.display()
        )));
    }
    let creating = !path.exists();
    let (owner, note) = match creating.then(|| owner_for_new_file(path, args)) {
        Some(Ok(a)) => (a, None),
        Some(Err(note)) => (None, Some(note)),
        None => (None, None),
    };
    let pw = read_password(args.stdin, &format!("New password for {user}: "), !args.stdin)?;
    valid_password(&pw, args.scheme)?;
    let stored = scheme::hash(args.scheme, &pw).map_err(Error::Usage)?;
    let entry = format!("{user}:{stored}");
    update(path, owner.as_ref().map(|a| (a.uid, a.gid)), |lines| {
        match lines
            .iter_mut()
            .find(|l| matches!(l, Line::Entry { user: u, .. } if *u == lower))
        {
            Some(l) => {
                *l = Line::Entry {
                    user: lower.clone(),
                    text: entry,
                }
            }
            None => lines.push(Line::Entry {
                user: lower.clone(),
                text: entry,
            }),
        }
        Ok(())
    })?;
    let mut out = String::new();
    if let Some(a) = &owner {
        out.push_str(&format!(
            "created {}, mode 600, owned by {} (the user tmda ofmipd runs as)\n",
            path.display(),
            a.name
        ));
    }
    out.push_str(&match (adding, exists) {
        (true, false) => format!("added {user} to {}\n", path.display()),
        _ => format!("changed the password of {user} in {}\n", path.display()),
    });
    super::print_stdout(&out)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    Ok(ExitCode::SUCCESS)
}
