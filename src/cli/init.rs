//! `tmda init`: a guided set-up for a new user. It makes the secret key, a
//! `~/.tmda/config` with USERNAME, HOSTNAME and a transport it has checked, a starter
//! outgoing filter, and (if asked) an entry in `~/.tmda/tofmipd` for a personal
//! `tmda ofmipd`; then shows a working address and its check. In a terminal it asks
//! (dialoguer); with `--yes` it takes the flags and asks nothing. It never replaces an
//! existing file without asking (or `--force`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::error::Error;
use crate::key::CryptKey;

#[derive(Debug, clap::Parser)]
#[command(
    version,
    disable_version_flag = true,
    about = "Set up TMDA for this user: key, configuration, outgoing filter",
    long_about = "A guided set-up for a new user: makes ~/.tmda/crypt_key (mode 0600), a ~/.tmda/config with \
USERNAME, HOSTNAME and a mail transport it has checked (the sendmail program exists, or the SMTP relay answers EHLO), \
a starter ~/.tmda/filters/outgoing with comments and, if asked, an entry in ~/.tmda/tofmipd for a personal tmda ofmipd. \
It then prints a working tagged address and its check. In a terminal it asks; with --yes it uses the options and asks \
nothing. An existing file is never replaced without asking (or --force)."
)]
pub struct Args {
    /// Ask nothing: take the values from the options (and defaults)
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// USERNAME: the local part of your address [default: your login name]
    #[arg(long = "username", value_name = "NAME")]
    pub username: Option<String>,
    /// HOSTNAME: the domain of your address [default: this machine's FQDN]
    #[arg(long = "hostname", value_name = "DOMAIN")]
    pub hostname: Option<String>,
    /// Send through this SMTP relay (checked: it must answer EHLO)
    #[arg(long = "smtp", value_name = "HOST:PORT", conflicts_with = "sendmail")]
    pub smtp: Option<String>,
    /// Send through this sendmail program (checked: it must exist and be executable)
    /// [default: /usr/sbin/sendmail]
    #[arg(long = "sendmail", value_name = "PATH")]
    pub sendmail: Option<PathBuf>,
    /// Also add USER to ~/.tmda/tofmipd, for a personal tmda ofmipd (password asked, or
    /// read from standard input with --yes)
    #[arg(long = "ofmipd-user", value_name = "USER")]
    pub ofmipd_user: Option<String>,
    /// Also set up incoming mail (tmda filter): "forward" writes ~/.forward for an MTA that
    /// reads it (Postfix, Exim, sendmail); "postfix" prints the main.cf line for Postfix's
    /// mailbox_command; "none" leaves incoming mail alone
    #[arg(long = "incoming", value_name = "HOW", value_parser = ["forward", "postfix", "none"])]
    pub incoming: Option<String>,
    /// Replace files that exist (the key too: every address made with the old key stops
    /// verifying)
    #[arg(long = "force")]
    pub force: bool,
    /// Write the configuration here instead of ~/.tmda/config
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Show full version information and exit
    #[arg(short = 'V')]
    pub full_version: bool,
    /// Print version and exit
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
}

/// How outgoing mail leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Sendmail(PathBuf),
    Smtp(String),
}

/// The sendmail program: it must be there and executable.
pub fn check_sendmail(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{}: not an executable program", path.display()));
    }
    Ok(())
}

/// The SMTP relay: it must greet and answer EHLO within a few seconds.
pub fn check_smtp(hostport: &str, helo: &str) -> Result<String, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{hostport}: {what}: {e}");
    // HOST:PORT, [V6]:PORT, or a bare host on port 25.
    let spec = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:25")
    };
    let addr = spec
        .to_socket_addrs()
        .map_err(|e| fail("cannot resolve", &e))?
        .next()
        .ok_or_else(|| format!("{hostport}: no address"))?;
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| fail("cannot connect", &e))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| fail("socket", &e))?;
    let mut w = s.try_clone().map_err(|e| fail("socket", &e))?;
    let mut r = BufReader::new(s);
    let reply = |r: &mut BufReader<TcpStream>| -> Result<String, String> {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).map_err(|e| fail("no answer", &e))? == 0 {
                return Err(format!("{hostport}: closed the connection"));
            }
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') || all.len() > 64 * 1024 {
                return Ok(all);
            }
        }
    };
    let greeting = reply(&mut r)?;
    if !greeting.starts_with("220") {
        return Err(format!(
            "{hostport}: greeted with {}",
            crate::error::quote(greeting.trim_end())
        ));
    }
    w.write_all(format!("EHLO {helo}\r\n").as_bytes())
        .map_err(|e| fail("write", &e))?;
    let ehlo = reply(&mut r)?;
    let _ = w.write_all(b"QUIT\r\n");
    if !ehlo.starts_with("250") {
        return Err(format!(
            "{hostport}: EHLO answered {}",
            crate::error::quote(ehlo.trim_end())
        ));
    }
    Ok(ehlo
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("250")
        .trim_start_matches(['-', ' '])
        .to_string())
}

/// The configuration file's text, in TMDA's syntax.
pub fn config_text(username: &str, hostname: &str, transport: &Transport) -> String {
    let mut s = String::from(
        "# ~/.tmda/config, written by `tmda init`. TMDA's syntax: NAME = value lines.\n\
         # Every setting and its default: man tmda-config (section 5).\n\n",
    );
    s.push_str(&format!(
        "USERNAME = {}\nHOSTNAME = {}\n\n",
        py_str(username),
        py_str(hostname)
    ));
    match transport {
        Transport::Sendmail(p) => s.push_str(&format!(
            "# Outgoing mail is handed to this program.\nMAIL_TRANSPORT = \"sendmail\"\nSENDMAIL_PROGRAM = {}\n",
            py_str(&p.display().to_string())
        )),
        Transport::Smtp(h) => s.push_str(&format!(
            "# Outgoing mail goes to this SMTP relay. If it wants a login:\n\
             #   SMTPAUTH_USERNAME = \"you\"\n#   SMTPAUTH_PASSWORD = \"...\"\n\
             # and for TLS: SMTPSSL = True (STARTTLS) or \"implicit\" (port 465).\n\
             MAIL_TRANSPORT = \"smtp\"\nSMTPHOST = {}\n",
            py_str(h)
        )),
    }
    s.push_str(
        "\n# How outgoing mail is tagged when no rule in ~/.tmda/filters/outgoing matches:\n\
         # \"dated\" (replies work for DATED_TIMEOUT), \"sender\", \"bare\", ...\nACTION_OUTGOING = \"dated\"\nDATED_TIMEOUT = \"5d\"\n",
    );
    s
}

/// The incoming side's settings, added to the configuration by `--incoming`.
pub fn incoming_config_text() -> String {
    "\n# Incoming mail, filtered by `tmda filter` (man tmda-filter, section 8).\n\
     # Which MTA runs it: \"postfix\", \"exim\", \"sendmail\" or \"qmail\".\n\
     MAIL_TRANSFER_AGENT = \"postfix\"\n\
     # Where accepted mail goes: a Maildir (ends in /), an mbox file, or |program.\n\
     DELIVERY = \"~/Maildir/\"\n\
     # Senders who answered a confirmation request are added here (and let through by\n\
     # ~/.tmda/filters/incoming).\n\
     CONFIRM_APPEND = \"~/.tmda/lists/confirmed\"\n\
     # Held messages wait this long for an answer: PENDING_LIFETIME = \"14d\"\n"
        .to_string()
}

/// The starter incoming filter: your own lists first (the blacklist before the lists that
/// accept), then TMDA's defaults decide.
pub const INCOMING_FILTER_TEXT: &str = "\
# ~/.tmda/filters/incoming: what `tmda filter` does with mail to your plain address.
# The first rule that matches decides; otherwise a tagged address is checked, and mail
# from strangers gets a confirmation request (ACTION_INCOMING). Syntax: man tmda-filter (5).
#
# People you never want to hear from, one address or *@domain per line (first, so
# that they stay out even when a whitelisted domain or a confirmation covers them):
from-file -optional ~/.tmda/lists/blacklist drop
# People you always accept:
from-file -optional ~/.tmda/lists/whitelist ok
# Senders who answered a confirmation request (CONFIRM_APPEND):
from-file -optional ~/.tmda/lists/confirmed ok
#
# Examples (remove the leading '#'):
#to *-lists-*@*            ok
#headers \"^precedence: *bulk\"  hold
";

/// A Python string literal (what TMDA's config syntax takes).
fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The starter outgoing filter: nothing active, examples to copy.
pub const FILTER_TEXT: &str = "\
# ~/.tmda/filters/outgoing: how `tmda sendmail` tags your outgoing mail.
# The first rule that matches a recipient decides; a recipient no rule matches gets
# ACTION_OUTGOING from ~/.tmda/config. Syntax: man tmda-filter (section 5).
# To use an example, remove its leading '#'.
#
# Mailing lists: a keyword address, so list mail always comes through.
#to *@lists.example.org  keyword=lists
#
# People you trust to keep your address to themselves: your plain address.
#to boss@example.com     bare
#
# A whole domain you write to: an address only that domain can use.
#to *@partner.example    domain
";

/// The incoming side: settings, a starter incoming filter, a Maildir, and ~/.forward
/// (or the line an administrator adds to Postfix's main.cf).
fn set_up_incoming(
    ui: &Ui,
    args: &Args,
    home: &Path,
    tmda_dir: &Path,
    config_path: &Path,
    how: &str,
) -> Result<Vec<String>, Error> {
    let mut wrote = vec![];
    let text = std::fs::read_to_string(config_path).map_err(|e| Error::io(config_path, e))?;
    if !text.contains("\nDELIVERY") {
        write_new(
            config_path,
            format!("{text}{}", incoming_config_text()).as_bytes(),
            0o600,
            true,
        )?;
        wrote.push(format!("{} (incoming settings)", config_path.display()));
    }
    let filter = tmda_dir.join("filters/incoming");
    if ui.may_replace(&filter, args.force, "incoming filter")? {
        write_new(&filter, INCOMING_FILTER_TEXT.as_bytes(), 0o644, true)?;
        wrote.push(filter.display().to_string());
    }
    // CONFIRM_APPEND's directory: without it every confirmation failed (exit 75) and
    // the MTA retried it until it bounced.
    let lists = tmda_dir.join("lists");
    std::fs::create_dir_all(&lists).map_err(|e| Error::io(&lists, e))?;
    for d in ["tmp", "new", "cur"] {
        let p = home.join("Maildir").join(d);
        std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("the tmda binary", e))?;
    let command = format!("{} filter", exe.display());
    match how {
        "forward" => {
            let forward = home.join(".forward");
            if ui.may_replace(&forward, args.force, "~/.forward")? {
                write_new(&forward, format!("\"|{command}\"\n").as_bytes(), 0o644, true)?;
                wrote.push(format!("{} (mail now goes through tmda filter)", forward.display()));
            }
        }
        _ => eprintln!(
            "tmda init: for Postfix to run tmda filter, an administrator adds to main.cf:\n  \
             postconf -e 'mailbox_command = {command}'\n  postfix reload"
        ),
    }
    Ok(wrote)
}

/// Write `text` to `path` (mode `mode`) atomically, unless it exists and may not be
/// replaced. Returns whether it was written.
fn write_new(path: &Path, text: &[u8], mode: u32, replace: bool) -> Result<bool, Error> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() && !replace {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(path, e))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(path, e))?;
    tmp.write_all(text).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(true)
}

/// Asks, or (with `--yes`) answers with the default.
struct Ui {
    ask: bool,
}

impl Ui {
    fn text(&self, prompt: &str, default: &str) -> Result<String, Error> {
        if !self.ask {
            return Ok(default.to_string());
        }
        dialoguer::Input::<String>::new()
            .with_prompt(prompt)
            .default(default.to_string())
            .interact_text()
            .map_err(ui_error)
    }

    fn confirm(&self, prompt: &str, default: bool) -> Result<bool, Error> {
        if !self.ask {
            return Ok(default);
        }
        dialoguer::Confirm::new()
            .with_prompt(prompt)
            .default(default)
            .interact()
            .map_err(ui_error)
    }

    fn select(&self, prompt: &str, items: &[&str], default: usize) -> Result<usize, Error> {
        if !self.ask {
            return Ok(default);
        }
        dialoguer::Select::new()
            .with_prompt(prompt)
            .items(items)
            .default(default)
            .interact()
            .map_err(ui_error)
    }

    /// May `path` be replaced? Never silently.
    fn may_replace(&self, path: &Path, force: bool, what: &str) -> Result<bool, Error> {
        if !path.exists() || force {
            return Ok(true);
        }
        if !self.ask {
            eprintln!("tmda init: keeping the existing {what} {}", path.display());
            return Ok(false);
        }
        let replace = self.confirm(&format!("{} exists. Replace it?", path.display()), false)?;
        if !replace {
            eprintln!("tmda init: keeping {}", path.display());
        }
        Ok(replace)
    }
}

fn ui_error(e: dialoguer::Error) -> Error {
    Error::Usage(format!("the terminal went away: {e}"))
}

fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    if let Some(code) = super::maybe_full_version(args.full_version)? {
        return Ok(code);
    }
    if !args.yes && !is_terminal() {
        return Err(Error::Usage(
            "tmda init asks its questions in a terminal; without one, give --yes and the values \
             (--username, --hostname, --smtp HOST:PORT or --sendmail PATH)"
                .into(),
        ));
    }
    let ui = Ui { ask: !args.yes };
    let ns = crate::config::Namespace::default();
    let home = PathBuf::from(ns.expanduser("~"));
    let tmda_dir = home.join(".tmda");
    let config_path = args
        .config_file
        .clone()
        .or_else(|| std::env::var_os("TMDARC").map(PathBuf::from))
        .unwrap_or_else(|| tmda_dir.join("config"));
    let key_path = tmda_dir.join("crypt_key");
    let filter_path = tmda_dir.join("filters/outgoing");

    if ui.ask {
        eprintln!(
            "Setting up TMDA for {}.\nIt writes {}, {} and {}.\n",
            home.display(),
            config_path.display(),
            key_path.display(),
            filter_path.display()
        );
    }
    let login = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "user".into());
    let username = ui.text(
        "Your user name (the part before @ in your address)",
        args.username.as_deref().unwrap_or(&login),
    )?;
    let fqdn = crate::config::fqdn();
    let hostname = ui.text(
        "Your mail domain (the part after @)",
        args.hostname.as_deref().unwrap_or(&fqdn),
    )?;
    for (what, v) in [("user name", &username), ("domain", &hostname)] {
        if v.is_empty() || v.contains(['@', ' ', '"', '\\']) || v.chars().any(char::is_control) {
            return Err(Error::Usage(format!(
                "{what} {} cannot be part of an address",
                crate::error::quote(v)
            )));
        }
    }
    let transport = choose_transport(&ui, &args, &hostname)?;

    let mut wrote = vec![];
    if ui.may_replace(&config_path, args.force, "configuration")? {
        let text = config_text(&username, &hostname, &transport);
        // 0600: it may later hold SMTPAUTH_PASSWORD.
        write_new(&config_path, text.as_bytes(), 0o600, true)?;
        wrote.push(config_path.display().to_string());
    }
    if ui.may_replace(&key_path, args.force, "secret key")? {
        let key = CryptKey::generate(Path::new("/dev/urandom"))?;
        key.install(&key_path, true)?;
        wrote.push(format!("{} (a new secret key, mode 0600)", key_path.display()));
    }
    if ui.may_replace(&filter_path, args.force, "outgoing filter")? {
        write_new(&filter_path, FILTER_TEXT.as_bytes(), 0o644, true)?;
        wrote.push(filter_path.display().to_string());
    }
    let incoming = match (&args.incoming, ui.ask) {
        (Some(h), _) => h.clone(),
        (None, false) => "none".into(),
        (None, true) => {
            let items = [
                "not now",
                "through ~/.forward (Postfix, Exim or sendmail reads it)",
                "through Postfix's mailbox_command (an administrator adds one line)",
            ];
            ["none", "forward", "postfix"][ui.select("Filter incoming mail with `tmda filter` too?", &items, 0)?].into()
        }
    };
    if incoming != "none" {
        wrote.extend(set_up_incoming(&ui, &args, &home, &tmda_dir, &config_path, &incoming)?);
    }
    let ofmipd_user = match (&args.ofmipd_user, ui.ask) {
        (Some(u), _) => Some(u.clone()),
        (None, true) => ui
            .confirm(
                "Also set up a login for a personal `tmda ofmipd` (mail clients submit through it)?",
                false,
            )?
            .then(|| ui.text("Login name for it", &username))
            .transpose()?,
        (None, false) => None,
    };
    if let Some(user) = ofmipd_user {
        add_ofmipd_user(&tmda_dir.join("tofmipd"), &user, &config_path, !ui.ask)?;
        wrote.push(format!("{} (login {user})", tmda_dir.join("tofmipd").display()));
    }
    for w in &wrote {
        eprintln!("tmda init: wrote {w}");
    }
    show_address(&config_path)?;
    Ok(ExitCode::SUCCESS)
}

fn choose_transport(ui: &Ui, args: &Args, hostname: &str) -> Result<Transport, Error> {
    let default_sendmail = PathBuf::from("/usr/sbin/sendmail");
    loop {
        let transport = match (&args.smtp, &args.sendmail, ui.ask) {
            (Some(h), _, false) => Transport::Smtp(h.clone()),
            (None, Some(p), false) => Transport::Sendmail(p.clone()),
            (None, None, false) => Transport::Sendmail(default_sendmail.clone()),
            (smtp, sendmail, true) => {
                let items = [
                    "a sendmail program on this machine (Postfix, Exim, ...)",
                    "an SMTP relay",
                ];
                let pick = ui.select(
                    "How does your mail leave this machine?",
                    &items,
                    usize::from(smtp.is_some()),
                )?;
                if pick == 0 {
                    let p = sendmail.clone().unwrap_or_else(|| default_sendmail.clone());
                    Transport::Sendmail(PathBuf::from(ui.text("Sendmail program", &p.display().to_string())?))
                } else {
                    Transport::Smtp(ui.text("SMTP relay (HOST:PORT)", smtp.as_deref().unwrap_or("localhost:25"))?)
                }
            }
        };
        let checked = match &transport {
            Transport::Sendmail(p) => check_sendmail(p).map(|()| format!("{} is there", p.display())),
            Transport::Smtp(h) => check_smtp(h, hostname).map(|who| format!("{h} answered EHLO ({who})")),
        };
        match checked {
            Ok(msg) => {
                eprintln!("tmda init: checked: {msg}");
                return Ok(transport);
            }
            Err(e) if !ui.ask => {
                return Err(Error::Unavailable(format!(
                    "{e} (choose another with --smtp or --sendmail)"
                )));
            }
            Err(e) => {
                eprintln!("tmda init: {e}");
                if ui.confirm("Use it anyway?", false)? {
                    return Ok(transport);
                }
            }
        }
    }
}

/// `tmda passwd add` for the personal tofmipd file, through this very binary.
fn add_ofmipd_user(file: &Path, user: &str, _config: &Path, password_on_stdin: bool) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("the tmda binary", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("passwd").arg("-a").arg(file);
    if password_on_stdin {
        cmd.arg("--stdin");
    }
    cmd.args(["add", user]);
    let st = cmd.status().map_err(|e| Error::io("tmda passwd", e))?;
    if !st.success() {
        return Err(Error::Unavailable(format!(
            "adding {user} to {} failed",
            file.display()
        )));
    }
    Ok(())
}

/// A dated address made with the new set-up, and its check, as the user would run them.
fn show_address(config: &Path) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("the tmda binary", e))?;
    let out = std::process::Command::new(&exe)
        .arg("address")
        .arg("-c")
        .arg(config)
        .output()
        .map_err(|e| Error::io("tmda address", e))?;
    if !out.status.success() {
        return Err(Error::Unavailable(format!(
            "the new set-up does not make an address: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let check = std::process::Command::new(&exe)
        .arg("check-address")
        .arg("-c")
        .arg(config)
        .arg(&address)
        .output()
        .map_err(|e| Error::io("tmda check-address", e))?;
    let shown = config.display();
    super::print_stdout(&format!(
        "\nYour set-up works. A tagged address, valid for five days:\n\n  $ tmda address -c {shown}\n  {address}\n\n  \
         $ tmda check-address -c {shown} {address}\n{}\n\
         Next: point your mail client's sendmail at `tmda sendmail`, or run `tmda ofmipd` for it to submit to.\n",
        String::from_utf8_lossy(&check.stdout)
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    ))?;
    if !check.status.success() {
        return Err(Error::Unavailable("the address just made does not verify".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_text_is_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config");
        for t in [
            Transport::Smtp("mail.example.org:587".into()),
            Transport::Sendmail("/usr/sbin/sendmail".into()),
        ] {
            std::fs::write(&p, config_text("jo\"e", "example.org", &t)).unwrap();
            let mut ns = crate::config::Namespace::default();
            crate::config::python::exec(&std::fs::read_to_string(&p).unwrap(), &p, &mut ns).unwrap();
            assert_eq!(ns.get("USERNAME"), Some(&crate::config::Value::Str("jo\"e".into())));
            assert_eq!(
                ns.get("HOSTNAME"),
                Some(&crate::config::Value::Str("example.org".into()))
            );
        }
    }

    #[test]
    fn the_starter_filter_parses_and_has_no_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("outgoing");
        std::fs::write(&p, FILTER_TEXT).unwrap();
        let f = crate::filter::parse_file(&p, &|_: &str| None).unwrap();
        assert!(f.rules.is_empty());
        // Each example, once uncommented, is a valid rule.
        let active: String = FILTER_TEXT
            .lines()
            .filter_map(|l| l.strip_prefix("#to "))
            .map(|l| format!("to {l}\n"))
            .collect();
        std::fs::write(&p, &active).unwrap();
        assert_eq!(crate::filter::parse_file(&p, &|_: &str| None).unwrap().rules.len(), 3);
    }

    #[test]
    fn the_starter_incoming_filter_and_settings_parse() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("incoming");
        std::fs::write(&p, INCOMING_FILTER_TEXT).unwrap();
        let f = crate::filter::parse_file_for(crate::filter::Direction::Incoming, &p, &|_: &str| None).unwrap();
        assert_eq!(f.rules.len(), 3);
        let c = dir.path().join("config");
        let text = config_text("joe", "example.org", &Transport::Sendmail("/bin/sh".into())) + &incoming_config_text();
        std::fs::write(&c, text).unwrap();
        let mut ns = crate::config::Namespace::default();
        crate::config::python::exec(&std::fs::read_to_string(&c).unwrap(), &c, &mut ns).unwrap();
        let cfg = crate::config::Config::from_namespace(ns, vec![]).unwrap();
        let inc = cfg.incoming().unwrap();
        assert!(inc.delivery.unwrap().ends_with("/Maildir/"));
        assert!(inc.confirm_append.is_some());
    }

    #[test]
    fn transports_are_checked() {
        assert!(check_sendmail(Path::new("/bin/sh")).is_ok());
        assert!(check_sendmail(Path::new("/etc/passwd")).is_err());
        assert!(check_sendmail(Path::new("/nonexistent/sendmail")).is_err());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(
            check_smtp(&format!("127.0.0.1:{port}"), "x").is_err(),
            "nothing listens there"
        );
    }
}
