//! `tmda filter` as the delivery agent of real MTAs and next to TMDA itself: a private
//! Postfix instance whose local(8) runs it as a user's `mailbox_command` and carries its
//! challenges, releases and acceptance notices; Debian's procmail running the README's
//! `.procmailrc`; the environment and input qmail-local and preline give it; replies to
//! the addresses `tmda address` and `tmda sendmail` make; and one HOME shared with
//! TMDAng's `tmda-filter` (the venv `scripts/deps.sh` installs at /opt/tmdang, or
//! `TMDANG_VENV`), each program releasing the other's held messages.
//!
//! The Postfix and procmail tests create a system user for the run (local(8) and
//! `procmail -d` deliver as a user from the password file) and remove it afterwards.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::*;

const KEY: &str = "b7fdc8a5afe5f364c87e2f984cbbd27450255675";

/// A throw-away account, removed (with its mail spool) when dropped.
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

impl User {
    fn create(name: &str, home: &Path) -> User {
        require_root("creating a mail user");
        let _guard = crate::global::USERS.lock().unwrap_or_else(|e| e.into_inner());
        if tmda::account::Account::lookup(name).is_some() {
            // Left by an interrupted run.
            let _ = Command::new("userdel").arg(name).status();
        }
        // No GECOS name on purpose: FULLNAME is then empty, as for many real accounts.
        let st = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", "--home-dir"])
            .arg(home)
            .arg(name)
            .status()
            .expect("useradd (Debian's passwd package)");
        assert!(st.success(), "useradd {name}");
        let a = tmda::account::Account::lookup(name).unwrap();
        User {
            name: name.to_string(),
            uid: a.uid,
            gid: a.gid,
        }
    }

    fn chown(&self, path: &Path) {
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _guard = crate::global::USERS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel").arg(&self.name).status();
        let _ = fs::remove_file(Path::new("/var/mail").join(&self.name));
    }
}

/// A HOME with the test key, a Maildir, an incoming filter and `config`.
fn home_with(dir: &Path, config: &str, filter: &str) -> PathBuf {
    let home = dir.join("home");
    for d in ["Maildir/new", "Maildir/cur", "Maildir/tmp", ".tmda/filters"] {
        fs::create_dir_all(home.join(d)).unwrap();
    }
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
    let key = home.join(".tmda/crypt_key");
    fs::write(&key, format!("{KEY}\n")).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(home.join(".tmda/config"), config).unwrap();
    fs::write(home.join(".tmda/filters/incoming"), filter).unwrap();
    home
}

/// A recording sendmail in `dir` (see [`crate::peers::recording_sendmail`]).
fn recording_sendmail(dir: &Path) -> (PathBuf, PathBuf) {
    let (prog, outbox) = (dir.join("recording-sendmail"), dir.join("outbox"));
    crate::peers::recording_sendmail(&prog, &outbox);
    (prog, outbox)
}

/// What the recording sendmail received, oldest first, as text (the outbox is emptied).
fn take_outbox(outbox: &Path) -> Vec<(Vec<String>, String)> {
    crate::peers::take_outbox(outbox)
        .into_iter()
        .map(|(a, m)| (a, String::from_utf8(m).unwrap()))
        .collect()
}

/// The messages in a Maildir's new/, oldest first.
fn maildir(home: &Path) -> Vec<String> {
    let mut names: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(home.join("Maildir/new"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (fs::metadata(&p).unwrap().modified().unwrap(), p)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|(_, p)| String::from_utf8(fs::read(p).unwrap()).unwrap())
        .collect()
}

/// Held messages (either format: files in pending/, or in its Maildir's new/ and cur/).
fn pending_count(home: &Path) -> usize {
    let dir = home.join(".tmda/pending");
    ["", "new", "cur"]
        .iter()
        .map(|sub| match fs::read_dir(dir.join(sub)) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().unwrap().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
                .count(),
            Err(_) => 0,
        })
        .sum()
}

/// Poll `what` until it holds or 30 s pass.
fn wait_until(what: &str, ok: impl FnMut() -> bool) {
    wait_until_or(what, ok, String::new)
}

/// [`wait_until`], showing `context()` (a log) when it times out.
fn wait_until_or(what: &str, mut ok: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", context());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The confirm address a challenge asks for (its Reply-To).
fn confirm_address(challenge: &str) -> String {
    let a = header(challenge, "Reply-To").unwrap_or_else(|| panic!("challenge without Reply-To:\n{challenge}"));
    assert!(a.contains("-confirm-"), "{a}");
    a
}

/// The extension of `address` after `user-` (what the MTA gives as EXT/EXTENSION).
fn extension(address: &str, user: &str) -> String {
    let local = address.split('@').next().unwrap();
    local
        .strip_prefix(&format!("{user}-"))
        .unwrap_or_else(|| panic!("{address} is not an extension of {user}"))
        .to_string()
}

/// Run a filter program (ours or TMDAng's) the way an MTA runs a delivery agent: a clean
/// environment with HOME and the envelope. Returns the exit code and the output.
fn run_filter(program: &Path, args: &[&str], home: &Path, envelope: &[(&str, &str)], input: &[u8]) -> (i32, String) {
    use std::io::Write;
    let mut c = Command::new(program);
    c.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("USER", "testuser")
        .env("LANG", "C.UTF-8")
        .env("GLOBAL_TMDARC", home.join("no-global-tmdarc"))
        .envs(envelope.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn ours(home: &Path, envelope: &[(&str, &str)], input: &[u8]) -> (i32, String) {
    run_filter(&tmda_bin(), &["filter"], home, envelope, input)
}

/// Postfix's local(8) environment for a delivery to `recipient`.
fn postfix_env<'a>(sender: &'a str, recipient: &'a str, ext: &'a str) -> [(&'a str, &'a str); 3] {
    [("SENDER", sender), ("RECIPIENT", recipient), ("EXTENSION", ext)]
}

fn readme() -> String {
    fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The README's fenced block (any language) containing `needle`, without the fences.
fn readme_block(needle: &str) -> String {
    let text = readme();
    let mut block = String::new();
    let mut inside = false;
    for l in text.lines() {
        if l.starts_with("```") {
            if inside && block.contains(needle) {
                return block;
            }
            inside = !inside;
            block.clear();
        } else if inside {
            block.push_str(l);
            block.push('\n');
        }
    }
    panic!("README.md has no block with {needle:?}");
}

// ---------------------------------------------------------------------------------
// Postfix

/// A private Postfix instance that delivers `testsite.com` locally with
/// `mailbox_command` and relays everything else to `relay_port`. It runs in a mount
/// namespace of its own whose /etc/postfix/main.cf names this instance's configuration
/// directory in `alternate_config_directories`: Postfix's set-gid postdrop accepts a
/// private `sendmail -C DIR` from an unprivileged user (tmda filter sending a challenge)
/// only then, and the machine's own main.cf is never touched.
struct LocalPostfix {
    port: u16,
    config_dir: PathBuf,
    /// `sendmail -C <config_dir>`, as a program for SENDMAIL_PROGRAM.
    sendmail: PathBuf,
    maillog: PathBuf,
}

impl LocalPostfix {
    fn start(dir: &Path, relay_port: u16, mailbox_command: &str) -> LocalPostfix {
        let postfix = require("postfix", "postfix");
        let unshare = require("unshare", "util-linux");
        let base = postfix_base(dir);
        let port = free_port();
        let b = base.display();
        let maillog = base.join("maillog");
        fs::write(
            base.join("etc/main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {b}/spool\ndata_directory = {b}/data\n\
                 inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = pfx.localdomain\n\
                 mydestination = testsite.com\nmynetworks = 127.0.0.0/8\nrelayhost = [127.0.0.1]:{relay_port}\n\
                 maillog_file = {}\nmaillog_file_prefixes = {b}\nsmtpd_relay_restrictions = permit_mynetworks, reject\n\
                 alias_maps =\nalias_database =\nrecipient_delimiter = -\nmailbox_command = {mailbox_command}\n",
                maillog.display()
            ),
        )
        .unwrap();
        // tlsmgr is listed but never started: no TLS here.
        fs::write(base.join("etc/master.cf"), postfix_master_cf(port)).unwrap();
        let cfg = base.join("etc");
        let default_cf = base.join("default-main.cf");
        fs::write(
            &default_cf,
            format!("alternate_config_directories = {}\n", cfg.display()),
        )
        .unwrap();
        let sendmail = base.join("sendmail");
        fs::write(
            &sendmail,
            format!("#!/bin/sh\nexec /usr/sbin/sendmail -C {} \"$@\"\n", cfg.display()),
        )
        .unwrap();
        fs::set_permissions(&sendmail, fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new(unshare)
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {} /etc/postfix/main.cf && exec {} -c {} start",
                default_cf.display(),
                postfix.display(),
                cfg.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postfix start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_for_port(port, "postfix smtpd");
        LocalPostfix {
            port,
            config_dir: cfg,
            sendmail,
            maillog,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// Submit a message over SMTP, as another host would.
    fn send(&self, from: &str, to: &str, message: &str) {
        let mut c = Raw::connect(self.port);
        assert!(c.reply().starts_with("220"));
        assert!(c.cmd("EHLO stranger.example.org").starts_with("250"));
        // send_message ends the data with CRLF "." itself.
        let data = message.strip_suffix('\n').unwrap_or(message).replace('\n', "\r\n");
        let r = c.send_message(from, to, &data);
        assert!(r.starts_with("250"), "{r}");
        c.cmd("QUIT");
    }
}

impl Drop for LocalPostfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.config_dir)
            .arg("stop")
            .output();
    }
}

/// The whole loop through Postfix: a stranger's message reaches `tmda filter` through
/// local(8)'s `mailbox_command`; the challenge goes out through the instance's own
/// sendmail and relayhost to smtp-sink; the reply to its confirm address comes back in
/// through Postfix and releases the held message, which comes round once more (through
/// sendmail and local(8)) into the Maildir; the stranger is now in CONFIRM_APPEND, which
/// the incoming filter whitelists, so the next message goes straight in.
#[test]
fn postfix_mailbox_command_challenge_confirm_release_whitelist() {
    require_root("the Postfix local-delivery test");
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let user_name = "tmdafilterpf";
    let home_dir = tmp.path().join("home");
    let user = User::create(user_name, &home_dir);
    // The README's line, with this build's binary.
    let line = readme_block("mailbox_command = ");
    let line = line.lines().find(|l| l.starts_with("mailbox_command = ")).unwrap();
    assert_eq!(
        line, "mailbox_command = /usr/local/bin/tmda filter",
        "the README's line changed"
    );
    let command = line
        .trim_start_matches("mailbox_command = ")
        .replace("/usr/local/bin/tmda", &tmda_bin().display().to_string());
    let pfx = LocalPostfix::start(tmp.path(), sink.port, &command);
    let home = home_with(
        tmp.path(),
        &format!(
            "MAIL_TRANSFER_AGENT = 'postfix'\nDELIVERY = '{h}/Maildir/'\nSENDMAIL_PROGRAM = '{s}'\n\
             USERNAME = '{user_name}'\nHOSTNAME = 'testsite.com'\nCONFIRM_APPEND = '{h}/.tmda/confirmed'\n\
             LOGFILE_INCOMING = '{h}/.tmda/incoming.log'\n",
            h = home_dir.display(),
            s = pfx.sendmail.display()
        ),
        &format!("from-file -optional {}/.tmda/confirmed ok\n", home_dir.display()),
    );
    assert_eq!(home, home_dir);
    user.chown(&home);
    let me = format!("{user_name}@testsite.com");
    let stranger = "stranger@example.org";

    // 1. The stranger writes: held, and challenged through Postfix.
    pfx.send(
        stranger,
        &me,
        &format!("From: Stranger <{stranger}>\nTo: {me}\nSubject: first contact\nMessage-ID: <1@example.org>\n\nhello there\n"),
    );
    wait_until_or(
        "the challenge at smtp-sink",
        || sink.messages().len() == 1,
        || pfx.log(),
    );
    let sunk = sink.wait_for(1);
    assert_eq!(pending_count(&home), 1, "{}", pfx.log());
    assert!(maildir(&home).is_empty());
    let challenge = &sunk[0];
    assert_eq!(challenge.rcpt_to, format!("<{stranger}>"));
    assert_eq!(challenge.mail_from, "<>", "challenges go out with the null sender");
    assert_eq!(
        header(&challenge.message, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    let confirm = confirm_address(&challenge.message);
    assert!(confirm.starts_with(&format!("{user_name}-confirm-")) && confirm.ends_with("@testsite.com"));

    // 2. The stranger replies to the confirm address: the held message is released and
    // delivered, and an acceptance notice goes out.
    pfx.send(
        stranger,
        &confirm,
        &format!(
            "From: Stranger <{stranger}>\nTo: {confirm}\nSubject: Re: {}\n\nyes, me\n",
            header(&challenge.message, "Subject").unwrap()
        ),
    );
    wait_until_or(
        "the released message in the Maildir",
        || maildir(&home).len() == 1,
        || pfx.log(),
    );
    let delivered = &maildir(&home)[0];
    assert!(delivered.contains("\nSubject: first contact\n"), "{delivered}");
    assert!(delivered.ends_with("\n\nhello there\n"), "{delivered}");
    assert_eq!(
        header(delivered, "Return-Path").as_deref(),
        Some("<stranger@example.org>")
    );
    assert!(header(delivered, "X-TMDA-Confirmed").is_some(), "{delivered}");
    assert!(header(delivered, "X-TMDA-Confirm-Done").is_none(), "{delivered}");
    wait_until("the held copy to be removed", || pending_count(&home) == 0);
    let sunk = sink.wait_for(2);
    let notice = sunk.iter().find(|s| s.message != challenge.message).unwrap();
    assert_eq!(notice.rcpt_to, format!("<{stranger}>"));
    assert_eq!(
        fs::read_to_string(home.join(".tmda/confirmed")).unwrap(),
        format!("{stranger}\n")
    );

    // 3. Whitelisted now: straight to the Maildir, no challenge.
    pfx.send(
        stranger,
        &me,
        &format!("From: Stranger <{stranger}>\nTo: {me}\nSubject: second\n\nagain\n"),
    );
    wait_until_or(
        "the second message in the Maildir",
        || maildir(&home).len() == 2,
        || pfx.log(),
    );
    assert!(maildir(&home)[1].contains("\nSubject: second\n"));
    assert_eq!(pending_count(&home), 0);
    assert_eq!(sink.messages().len(), 2, "no second challenge");
    let log = fs::read_to_string(home.join(".tmda/incoming.log")).unwrap();
    assert!(log.contains("OK (from-file "), "{log}");
    assert!(pfx.log().contains("delivered to command:"), "{}", pfx.log());
    drop(pfx);
}

// ---------------------------------------------------------------------------------
// procmail

/// Debian's procmail as the delivery agent (`procmail -a EXT -d USER`, as sendmail runs
/// it), with the README's `.procmailrc`: it sets SENDER, RECIPIENT and EXTENSION for
/// `tmda filter`, which delivers a known sender's message and a reply to a dated
/// address, challenges a stranger at the Return-Path address, and makes procmail keep
/// the message (exit 75, nothing in the system mailbox) when it fails.
#[test]
fn procmail_recipe_gives_the_envelope_and_defers_failures() {
    require_root("the procmail test");
    let procmail = require("procmail", "procmail");
    let tmp = shared_tempdir();
    let user_name = "tmdafilterpm";
    let home_dir = tmp.path().join("home");
    let user = User::create(user_name, &home_dir);
    let (sendmail, outbox) = recording_sendmail(tmp.path());
    let home = home_with(
        tmp.path(),
        &format!(
            "MAIL_TRANSFER_AGENT = 'sendmail'\nDELIVERY = '{h}/Maildir/'\nSENDMAIL_PROGRAM = '{s}'\n\
             USERNAME = '{user_name}'\nHOSTNAME = 'example.com'\n",
            h = home_dir.display(),
            s = sendmail.display()
        ),
        "from friend@example.net ok\n",
    );
    let rc = readme_block("| tmda filter\n");
    assert!(rc.contains("EXTENSION=$1"), "the README's .procmailrc changed:\n{rc}");
    fs::write(home.join(".procmailrc"), &rc).unwrap();
    // procmail's default PATH starts with $HOME/bin.
    fs::create_dir(home.join("bin")).unwrap();
    std::os::unix::fs::symlink(tmda_bin(), home.join("bin/tmda")).unwrap();
    user.chown(&home);
    let me = format!("{user_name}@example.com");
    let deliver = |ext: &str, from: &str, to: &str, subject: &str| -> (i32, String) {
        let msg = format!(
            "From {from} Sun Dec  6 01:00:00 2026\nReturn-Path: <{from}>\nFrom: <{from}>\nTo: {to}\nSubject: {subject}\n\nbody of {subject}\n"
        );
        let mut c = Command::new(&procmail);
        c.args(["-a", ext, "-d", user_name])
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        let (ok, out) = run_with_input(&mut c, msg.as_bytes());
        let code = if ok { 0 } else { 1 };
        (code, out)
    };
    let spool = Path::new("/var/mail").join(user_name);
    let spool_len = || fs::metadata(&spool).map(|m| m.len()).unwrap_or(0);

    // A known sender.
    let (code, out) = deliver("", "friend@example.net", &me, "known");
    assert_eq!(code, 0, "{out}");
    let got = maildir(&home);
    assert_eq!(got.len(), 1, "{out}");
    assert!(got[0].starts_with("Return-Path: <friend@example.net>\n"), "{}", got[0]);
    assert!(take_outbox(&outbox).is_empty());

    // A reply to a dated address: EXTENSION comes from procmail's -a.
    let dated = Command::new(tmda_bin())
        .args(["address", "-n"])
        .env("HOME", &home)
        .env("GLOBAL_TMDARC", home.join("none"))
        .output()
        .unwrap();
    assert!(dated.status.success());
    let dated = String::from_utf8(dated.stdout).unwrap();
    let (code, out) = deliver(
        &extension(&dated, user_name),
        "someone@example.org",
        &dated,
        "dated reply",
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(maildir(&home).len(), 2, "{out}");
    assert!(
        take_outbox(&outbox).is_empty(),
        "a valid dated address is not challenged"
    );

    // A stranger: challenged at the address procmail read from Return-Path.
    let (code, out) = deliver("", "stranger@example.org", &me, "unknown");
    assert_eq!(code, 0, "{out}");
    assert_eq!(maildir(&home).len(), 2);
    let sent = take_outbox(&outbox);
    assert_eq!(sent.len(), 1, "{out}");
    assert_eq!(sent[0].0, ["-i", "-f", "<>", "--", "stranger@example.org"]);
    assert!(confirm_address(&sent[0].1).starts_with(&format!("{user_name}-confirm-")));
    assert_eq!(pending_count(&home), 1);

    // tmda filter fails (the Maildir cannot be written): procmail exits 75 and leaves
    // nothing in the system mailbox, so the MTA keeps the message.
    let before = spool_len();
    fs::set_permissions(home.join("Maildir/new"), fs::Permissions::from_mode(0o500)).unwrap();
    let mut c = Command::new(&procmail);
    c.args(["-a", "", "-d", user_name])
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    let msg = "From friend@example.net Sun Dec  6 01:00:00 2026\nReturn-Path: <friend@example.net>\nFrom: <friend@example.net>\nSubject: x\n\nx\n";
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), msg.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    fs::set_permissions(home.join("Maildir/new"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(spool_len(), before, "nothing fell through to the system mailbox");
    assert_eq!(maildir(&home).len(), 2);
}

// ---------------------------------------------------------------------------------
// qmail

/// What preline puts before a message qmail-local delivers to a program.
fn prelined(sender: &str, recipient: &str, message: &str) -> String {
    format!("From {sender} Sun Dec  6 01:00:00 2026\nReturn-Path: <{sender}>\nDelivered-To: {recipient}\n{message}")
}

/// The environment qmail-local sets for `|preline tmda filter` in `.qmail-default`.
fn qmail_env(sender: &str, ext: &str) -> Vec<(&'static str, String)> {
    let local = if ext.is_empty() {
        "testuser".to_string()
    } else {
        format!("testuser-{ext}")
    };
    vec![
        ("SENDER", sender.to_string()),
        ("RECIPIENT", format!("{local}@testsite.com")),
        ("EXT", ext.to_string()),
        ("HOST", "testsite.com".to_string()),
        ("LOCAL", local),
        ("USER", "testuser".to_string()),
    ]
}

/// Under qmail (`MAIL_TRANSFER_AGENT = 'qmail'`, DELIVERY `_qok_` by default): exit 0 for
/// `_qok_` (qmail goes on with the next `.qmail` line), 99 when tmda filter delivered,
/// held, challenged or released the message itself, 75 for a failure. The envelope comes
/// from SENDER, RECIPIENT and EXT; preline's lines arrive with the message.
#[test]
fn qmail_local_environment_and_exit_codes() {
    let tmp = shared_tempdir();
    let (sendmail, outbox) = recording_sendmail(tmp.path());
    let home = home_with(
        tmp.path(),
        &format!(
            "MAIL_TRANSFER_AGENT = 'qmail'\nSENDMAIL_PROGRAM = '{}'\nUSERNAME = 'testuser'\nHOSTNAME = 'testsite.com'\n",
            sendmail.display()
        ),
        &format!(
            "from friend@example.net ok\nfrom boss@example.net ok={}/Maildir/\n",
            tmp.path().join("home").display()
        ),
    );
    let run = |sender: &str, ext: &str, message: &str| {
        let env = qmail_env(sender, ext);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let recipient = env[1].1.clone();
        ours(&home, &pairs, prelined(sender, &recipient, message).as_bytes())
    };
    let msg =
        |from: &str, subject: &str| format!("From: <{from}>\nTo: testuser@testsite.com\nSubject: {subject}\n\nbody\n");

    // _qok_: qmail delivers; tmda filter writes nothing.
    let (code, out) = run("friend@example.net", "", &msg("friend@example.net", "known"));
    assert_eq!(code, 0, "{out}");
    assert!(maildir(&home).is_empty());

    // A rule's own delivery: tmda filter delivers and stops the .qmail file (99).
    let (code, out) = run("boss@example.net", "", &msg("boss@example.net", "from the boss"));
    assert_eq!(code, 99, "{out}");
    let got = maildir(&home);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(
            "Return-Path: <boss@example.net>\nDelivered-To: testuser@testsite.com\nFrom: <boss@example.net>\n"
        ),
        "preline's lines are kept, its From_ line is not:\n{}",
        got[0]
    );

    // A stranger: held and challenged (99).
    let (code, out) = run("stranger@example.org", "", &msg("stranger@example.org", "hello"));
    assert_eq!(code, 99, "{out}");
    let sent = take_outbox(&outbox);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.last().map(String::as_str), Some("stranger@example.org"));
    let confirm = confirm_address(&sent[0].1);

    // The reply to the confirm address (EXT=confirm-...): released (99).
    let (code, out) = run(
        "stranger@example.org",
        &extension(&confirm, "testuser"),
        &format!("From: <stranger@example.org>\nTo: {confirm}\nSubject: Re: x\n\nok\n"),
    );
    assert_eq!(code, 99, "{out}");
    let sent = take_outbox(&outbox);
    let release = sent
        .iter()
        .find(|(a, _)| a.last().map(String::as_str) == Some("testuser@testsite.com"))
        .unwrap_or_else(|| panic!("no release in {sent:?}"));
    assert_eq!(
        release.0,
        ["-i", "-f", "stranger@example.org", "--", "testuser@testsite.com"]
    );
    // The released copy comes back through qmail: done check passes, `_qok_` (0), and
    // the held copy is gone.
    assert_eq!(pending_count(&home), 1);
    let (code, out) = run("stranger@example.org", "", &release.1);
    assert_eq!(code, 0, "{out}");
    assert_eq!(pending_count(&home), 0);

    // A failure: 75 under qmail too (qmail retries it).
    let (code, out) = ours(&home, &[("SENDER", "x@example.org"), ("EXT", "")], b"Subject: x\n\nx\n");
    assert_eq!(code, 75, "missing RECIPIENT: {out}");
    assert!(out.contains("RECIPIENT"), "{out}");
}

// ---------------------------------------------------------------------------------
// The client side's tags

/// Replies to the dated addresses `tmda address` and `tmda sendmail` make are delivered
/// without a challenge; once expired (TMDA_NOW), ACTION_EXPIRED_DATED decides: a word,
/// or a dict of overdue intervals.
#[test]
fn replies_to_client_tags_pass_expired_ones_follow_action_expired_dated() {
    let tmp = shared_tempdir();
    let (sendmail, outbox) = recording_sendmail(tmp.path());
    let h = tmp.path().join("home");
    let base = format!(
        "MAIL_TRANSFER_AGENT = 'postfix'\nDELIVERY = '{}/Maildir/'\nSENDMAIL_PROGRAM = '{}'\n\
         USERNAME = 'testuser'\nHOSTNAME = 'testsite.com'\nDATED_TIMEOUT = '1d'\n",
        h.display(),
        sendmail.display()
    );
    let home = home_with(tmp.path(), &base, "");
    let now: u64 = 1_796_000_000;
    let now_s = now.to_string();
    let client = |args: &[&str], input: Option<&str>| -> String {
        let mut c = Command::new(tmda_bin());
        c.args(args)
            .env("HOME", &home)
            .env("GLOBAL_TMDARC", home.join("none"))
            .env("TMDA_NOW", &now_s);
        let (ok, out) = match input {
            Some(i) => run_with_input(&mut c, i.as_bytes()),
            None => {
                let o = c.output().unwrap();
                (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned())
            }
        };
        assert!(ok, "tmda {args:?}: {out}");
        out
    };
    let reply = |to: &str, from: &str, at: u64| {
        let at = at.to_string();
        let ext = extension(to, "testuser");
        let msg = format!("From: <{from}>\nTo: {to}\nSubject: re\n\nreply\n");
        let mut env = postfix_env(from, to, &ext).to_vec();
        env.push(("TMDA_NOW", &at));
        ours(&home, &env, msg.as_bytes())
    };

    // tmda address
    let a = client(&["address", "-n"], None);
    assert!(a.starts_with("testuser-dated-"), "{a}");
    let (code, out) = reply(&a, "friend@example.org", now + 3600);
    assert_eq!(code, 0, "{out}");
    assert_eq!(maildir(&home).len(), 1);
    assert!(
        take_outbox(&outbox).is_empty(),
        "no challenge for a valid dated address"
    );

    // tmda sendmail: the tagged envelope sender and From of the copy it hands on.
    client(
        &["sendmail", "-oi", "-t"],
        Some("From: testuser@testsite.com\nTo: friend@example.org\nSubject: out\n\nhi\n"),
    );
    let sent = take_outbox(&outbox);
    assert_eq!(sent.len(), 1);
    let from = header(&sent[0].1, "From").unwrap();
    let tagged = sent[0].0[sent[0].0.iter().position(|a| a == "-f").unwrap() + 1].clone();
    assert!(tagged.starts_with("testuser-dated-"), "{sent:?}");
    assert!(from.contains(&tagged), "{from} vs {tagged}");
    let (code, out) = reply(&tagged, "friend@example.org", now + 3600);
    assert_eq!(code, 0, "{out}");
    assert_eq!(maildir(&home).len(), 2);
    assert!(take_outbox(&outbox).is_empty());

    // Expired, default ACTION_EXPIRED_DATED (confirm): held and challenged.
    let expired_at = now + 86_400 + 3600;
    let (code, out) = reply(&tagged, "friend@example.org", expired_at);
    assert_eq!(code, 0, "{out}");
    assert_eq!(maildir(&home).len(), 2);
    assert_eq!(pending_count(&home), 1);
    let sent = take_outbox(&outbox);
    assert_eq!(sent.len(), 1);
    confirm_address(&sent[0].1);

    // 'bounce': a bounce notice, nothing held or delivered.
    fs::write(
        home.join(".tmda/config"),
        format!("{base}ACTION_EXPIRED_DATED = 'bounce'\n"),
    )
    .unwrap();
    let (code, out) = reply(&tagged, "friend@example.org", expired_at);
    assert_eq!(code, 0, "{out}");
    assert_eq!((maildir(&home).len(), pending_count(&home)), (2, 1));
    let sent = take_outbox(&outbox);
    assert_eq!(sent.len(), 1);
    assert!(header(&sent[0].1, "Reply-To").is_none_or(|r| !r.contains("-confirm-")));
    assert_eq!(sent[0].0.last().map(String::as_str), Some("friend@example.org"));

    // A dict by how long ago it expired: over 2 days drop, else (default) ok.
    fs::write(
        home.join(".tmda/config"),
        format!("{base}ACTION_EXPIRED_DATED = {{'2d': 'drop', 'default': 'ok'}}\n"),
    )
    .unwrap();
    let (code, out) = reply(&tagged, "friend@example.org", expired_at);
    assert_eq!(code, 0, "{out}");
    assert_eq!(maildir(&home).len(), 3, "overdue 1 hour: default ok");
    let (code, out) = reply(&tagged, "friend@example.org", now + 86_400 + 3 * 86_400);
    assert_eq!(code, 0, "{out}");
    assert_eq!(maildir(&home).len(), 3, "overdue 3 days: dropped");
    assert_eq!(pending_count(&home), 1);
    assert!(take_outbox(&outbox).is_empty());
}

// ---------------------------------------------------------------------------------
// TMDA itself

fn tmdang_filter() -> PathBuf {
    tmdang("tmda-filter")
}

/// One HOME, used alternately by our `tmda filter` and TMDAng's `tmda-filter` (Maildir
/// pending queue and Maildir DELIVERY, the set-up TMDAng works under): each one's held
/// message is released by a confirmation the other handles, and each released copy
/// passes the other's done check and is delivered, the held copy removed.
#[test]
fn tmdang_and_ours_release_each_others_held_messages() {
    let ng = tmdang_filter();
    let tmp = shared_tempdir();
    let (sendmail, outbox) = recording_sendmail(tmp.path());
    let h = tmp.path().join("home");
    let home = home_with(
        tmp.path(),
        &format!(
            "MAIL_TRANSFER_AGENT = 'postfix'\nDELIVERY = '{h}/Maildir/'\nMAIL_TRANSPORT = 'sendmail'\n\
             SENDMAIL_PROGRAM = '{s}'\nFULLNAME = 'Test User'\nUSERNAME = 'testuser'\nHOSTNAME = 'nowhere.com'\n\
             PENDING_QUEUE_FORMAT = 'maildir'\nCONFIRM_APPEND = '{h}/.tmda/confirmed'\n\
             LOGFILE_INCOMING = '{h}/.tmda/incoming.log'\n",
            h = h.display(),
            s = sendmail.display()
        ),
        "",
    );
    const ME: &str = "testuser@nowhere.com";
    let theirs = |env: &[(&str, &str)], input: &[u8]| run_filter(&ng, &[], &home, env, input);
    type Filter<'a> = &'a dyn Fn(&[(&str, &str)], &[u8]) -> (i32, String);
    let ours_f = |env: &[(&str, &str)], input: &[u8]| ours(&home, env, input);

    let round = |holder: Filter<'_>,
                 holder_name: &str,
                 confirmer: Filter<'_>,
                 confirmer_name: &str,
                 who: &str,
                 n: usize| {
        // The holder takes the stranger's message and challenges.
        let msg = format!(
            "Return-Path: <{who}>\nFrom: <{who}>\nTo: {ME}\nSubject: held by {holder_name}\nMessage-ID: <{n}@x>\n\nbody {n}\n"
        );
        let (code, out) = holder(&postfix_env(who, ME, ""), msg.as_bytes());
        assert_eq!(code, 0, "{holder_name} holding: {out}");
        assert_eq!(pending_count(&home), 1, "{holder_name} holds the message");
        let sent = take_outbox(&outbox);
        assert_eq!(sent.len(), 1, "{holder_name}'s challenge: {sent:?}");
        let confirm = confirm_address(&sent[0].1);

        // The confirmer handles the reply to that confirm address.
        let ext = extension(&confirm, "testuser");
        let reply = format!("From: <{who}>\nTo: {confirm}\nSubject: Re: confirm\n\nyes\n");
        let (code, out) = confirmer(&postfix_env(who, &confirm, &ext), reply.as_bytes());
        assert_eq!(code, 0, "{confirmer_name} confirming {holder_name}'s message: {out}");
        let sent = take_outbox(&outbox);
        let release = sent
            .iter()
            .find(|(a, _)| a.last().map(String::as_str) == Some(ME))
            .unwrap_or_else(|| panic!("{confirmer_name} released nothing of {holder_name}'s: {sent:?}\n{out}"));
        assert_eq!(release.0, ["-i", "-f", who, "--", ME], "{confirmer_name}'s release");
        assert!(header(&release.1, "X-TMDA-Confirm-Done").is_some(), "{}", release.1);
        assert_eq!(sent.len(), 2, "a release and an acceptance notice: {sent:?}");

        // The released copy comes back to the holder: its done check passes.
        let before = maildir(&home).len();
        let (code, out) = holder(&postfix_env(who, ME, ""), release.1.as_bytes());
        assert_eq!(code, 0, "{holder_name} taking {confirmer_name}'s release: {out}");
        let got = maildir(&home);
        assert_eq!(
            got.len(),
            before + 1,
            "{holder_name} delivered {confirmer_name}'s release: {out}"
        );
        let d = got.last().unwrap();
        assert!(d.contains(&format!("Subject: held by {holder_name}\n")), "{d}");
        assert!(d.ends_with(&format!("\n\nbody {n}\n")), "{d}");
        assert!(
            header(d, "X-TMDA-Confirmed").is_some() && header(d, "X-TMDA-Confirm-Done").is_none(),
            "{d}"
        );
        assert_eq!(pending_count(&home), 0, "{holder_name} removed the held copy");
        assert!(take_outbox(&outbox).is_empty(), "no challenge for a released copy");
    };
    round(&theirs, "TMDAng", &ours_f, "ours", "alice@example.org", 1);
    round(&ours_f, "ours", &theirs, "TMDAng", "bob@example.net", 2);
    // Both appended their confirmer's address to the one CONFIRM_APPEND file.
    assert_eq!(
        fs::read_to_string(home.join(".tmda/confirmed")).unwrap(),
        "alice@example.org\nbob@example.net\n"
    );
}
