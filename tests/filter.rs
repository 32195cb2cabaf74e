//! `tmda filter` end to end: the real binary, a temporary HOME with a key installed by
//! `tmda keygen --install`, a `~/.tmda/config`, a fake sendmail program that records
//! what it is given, and the MTA's environment (SENDER, RECIPIENT, EXTENSION or EXT).
//! Each test asserts the bytes that land (Maildir, mbox, pending queue, what was sent,
//! the log) and the exit status the MTA sees; the attack tests check that hostile input
//! never runs anything, escapes a directory, panics or leaves half a file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{TestEnv, fake_sendmail, fake_sendmail_outputs, output_with_input};

/// The pinned "now" (2010-01-08 07:56:26 UTC, a Friday).
const NOW: u64 = 1_262_937_386;
const NOW_DATE: &str = "Fri, 08 Jan 2010 07:56:26 +0000";
const ME: &str = "jo@example.com";
const BOB: &str = "bob@x.org";

/// A home for the filter: a fresh key, a Maildir, the fake sendmail, and a config
/// (postfix, DELIVERY ~/Maildir/) followed by `extra`.
fn home(extra: &str) -> TestEnv {
    let env = TestEnv::bare();
    let out = env.tmda().args(["keygen", "--install"]).output().unwrap();
    assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
    for d in ["Maildir/tmp", "Maildir/new", "Maildir/cur"] {
        std::fs::create_dir_all(env.path(d)).unwrap();
    }
    let sendmail = fake_sendmail(&env);
    env.write_config(&format!(
        "MAIL_TRANSFER_AGENT = \"postfix\"\nUSERNAME = \"jo\"\nHOSTNAME = \"example.com\"\n\
         FULLNAME = \"Jo User\"\nDELIVERY = \"~/Maildir/\"\nMAIL_TRANSPORT = \"sendmail\"\n\
         SENDMAIL_PROGRAM = \"{}\"\nPENDING_CLEANUP_ODDS = 0\nLOGFILE_INCOMING = \"{}\"\n{extra}",
        sendmail.display(),
        env.path(".tmda/incoming.log").display()
    ));
    env
}

/// One run of `tmda filter`, the MTA's way.
struct Run {
    cmd: std::process::Command,
    input: Vec<u8>,
}

fn filter(env: &TestEnv, sender: &str, recipient: &str) -> Run {
    let mut cmd = env.std_tmda();
    cmd.arg("filter")
        .env("SENDER", sender)
        .env("RECIPIENT", recipient)
        .env("EXTENSION", extension_of(recipient))
        .env("TMDA_NOW", NOW.to_string());
    Run {
        cmd,
        input: message(BOB, "hello", "Hi Jo.\n"),
    }
}

impl Run {
    fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.arg(a);
        self
    }
    fn var(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.env(k, v);
        self
    }
    fn unset(mut self, k: &str) -> Run {
        self.cmd.env_remove(k);
        self
    }
    fn input(mut self, bytes: impl Into<Vec<u8>>) -> Run {
        self.input = bytes.into();
        self
    }
    fn run(mut self) -> Output {
        let out = output_with_input(&mut self.cmd, &self.input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "the filter panicked: {stderr}");
        out
    }
    /// Run and expect exit `code`.
    #[track_caller]
    fn expect(self, code: i32) -> Output {
        let out = self.run();
        assert_eq!(
            out.status.code(),
            Some(code),
            "exit status; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// Postfix's EXTENSION for `user-ext@domain` with delimiter `-`.
fn extension_of(recipient: &str) -> String {
    let local = recipient.rsplit_once('@').map_or(recipient, |(l, _)| l);
    local.split_once('-').map(|(_, e)| e.to_string()).unwrap_or_default()
}

fn message(from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!("Return-Path: <{from}>\nFrom: Bob <{from}>\nTo: {ME}\nSubject: {subject}\nMessage-ID: <m1@x.org>\n\n{body}")
        .into_bytes()
}

/// The messages in `dir/new` (sorted by name), after checking `dir/tmp` is empty.
#[track_caller]
fn maildir(env: &TestEnv, dir: &str) -> Vec<Vec<u8>> {
    let tmp: Vec<_> = std::fs::read_dir(env.path(&format!("{dir}/tmp"))).unwrap().collect();
    assert!(tmp.is_empty(), "{dir}/tmp is not empty: {tmp:?}");
    files(&env.path(&format!("{dir}/new")))
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => vec![],
    };
    names.sort();
    names.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn pending(env: &TestEnv) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(env.path(".tmda/pending")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    };
    names.sort();
    names
}

fn log(env: &TestEnv) -> String {
    std::fs::read_to_string(env.path(".tmda/incoming.log")).unwrap_or_default()
}

/// The `Actn:` texts of the log, without their padding and size.
fn actions(env: &TestEnv) -> Vec<String> {
    log(env)
        .lines()
        .filter_map(|l| l.strip_prefix("Actn: "))
        .map(|a| a.rsplit_once("  ").map_or(a, |(t, _)| t).trim_end().to_string())
        .map(|a| match a.rsplit_once(" (") {
            Some((t, size)) if size.trim_end_matches(')').parse::<u64>().is_ok() => t.trim_end().to_string(),
            _ => a,
        })
        .collect()
}

fn sent(env: &TestEnv) -> Vec<(String, String)> {
    fake_sendmail_outputs(env)
}

/// The header block (up to the first empty line) of a sent message.
fn head(msg: &str) -> &str {
    msg.split_once("\n\n").map_or(msg, |(h, _)| h)
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    head(msg)
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

/// `tmda address ARGS` at time `at`.
fn address(env: &TestEnv, args: &[&str], at: u64) -> String {
    let out = env
        .tmda()
        .arg("address")
        .args(args)
        .env("TMDA_NOW", at.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn write_filter(env: &TestEnv, text: &str) {
    env.write(".tmda/filters/incoming", text);
}

fn exec(env: &TestEnv, rel: &str, text: &str) -> PathBuf {
    let p = env.write(rel, text);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

// ---------------------------------------------------------------- exit codes

#[test]
fn postfix_delivers_with_0_and_the_maildir_holds_the_exact_bytes() {
    let env = home("");
    write_filter(&env, "from bob@x.org ok\n");
    let input = message(BOB, "hello", "Hi Jo.\nFrom the start.\n");
    filter(&env, BOB, ME).input(input.clone()).expect(0);
    assert_eq!(maildir(&env, "Maildir"), vec![input]);
    assert!(sent(&env).is_empty());
    assert_eq!(actions(&env), vec!["OK (from bob@x.org ok)"]);
}

#[test]
fn qmail_exits_99_after_delivery_and_0_for_qok() {
    let env = home("MAIL_TRANSFER_AGENT = \"qmail\"\n");
    write_filter(&env, "from bob@x.org ok\nfrom eve@y.org drop\n");
    let run = |env: &TestEnv, s: &str| {
        filter(env, s, ME)
            .unset("EXTENSION")
            .var("EXT", "")
            .input(message(s, "q", "body\n"))
    };
    run(&env, BOB).expect(99);
    assert_eq!(maildir(&env, "Maildir").len(), 1);
    run(&env, "eve@y.org").expect(99);
    assert_eq!(maildir(&env, "Maildir").len(), 1);
    // DELIVERY unset under qmail: _qok_, exit 0, nothing written by us.
    let env = home("");
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    env.write_config(&cfg.replace("DELIVERY = \"~/Maildir/\"\n", "MAIL_TRANSFER_AGENT = \"qmail\"\n"));
    write_filter(&env, "from bob@x.org ok\n");
    run(&env, BOB).expect(0);
    assert!(maildir(&env, "Maildir").is_empty());
}

#[test]
fn print_option_exits_0_with_the_message_and_99_without() {
    let env = home("");
    write_filter(&env, "from bob@x.org ok\nfrom eve@y.org drop\n");
    let input = message(BOB, "p", "printed\n");
    let out = filter(&env, BOB, ME).arg("-p").input(input.clone()).expect(0);
    assert_eq!(out.stdout, input);
    assert!(maildir(&env, "Maildir").is_empty());
    let out = filter(&env, "eve@y.org", ME)
        .arg("-p")
        .input(message("eve@y.org", "p", "dropped\n"))
        .expect(99);
    assert!(out.stdout.is_empty());
    assert_eq!(actions(&env)[0], "OK [filtered to stdout] (from bob@x.org ok)");
}

#[test]
fn failures_exit_75_and_keep_nothing() {
    // No SENDER: not run by an MTA.
    let env = home("");
    let out = filter(&env, BOB, ME).unset("SENDER").expect(75);
    assert!(String::from_utf8_lossy(&out.stderr).contains("SENDER"));
    // No key: a stranger cannot be challenged (the confirm address needs it).
    let env = home("");
    std::fs::remove_file(env.path(".tmda/crypt_key")).unwrap();
    filter(&env, BOB, ME).expect(75);
    assert!(pending(&env).is_empty());
    assert!(sent(&env).is_empty());
    // An unreadable filter file (a directory), and one with a mistake.
    let env = home("");
    std::fs::create_dir_all(env.path(".tmda/filters/incoming")).unwrap();
    filter(&env, BOB, ME).expect(75);
    let env = home("");
    write_filter(&env, "from bob@x.org frobnicate\n");
    let out = filter(&env, BOB, ME).expect(75);
    assert!(String::from_utf8_lossy(&out.stderr).contains("incoming:1"));
    // No DELIVERY under postfix.
    let env = home("");
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    env.write_config(&cfg.replace("DELIVERY = \"~/Maildir/\"\n", ""));
    write_filter(&env, "from bob@x.org ok\n");
    let out = filter(&env, BOB, ME).expect(75);
    assert!(String::from_utf8_lossy(&out.stderr).contains("DELIVERY"));
    // A Maildir that is not there.
    let env = home("DELIVERY = \"~/NoSuchMaildir/\"\n");
    write_filter(&env, "from bob@x.org ok\n");
    filter(&env, BOB, ME).expect(75);
    // Every one of them under qmail too.
    let env = home("MAIL_TRANSFER_AGENT = \"qmail\"\n");
    filter(&env, BOB, ME).unset("SENDER").expect(75);
}

/// A mistake on the filter's own command line (in ~/.qmail, ~/.forward or Postfix's
/// mailbox_command) must not bounce every message: 75 keeps it queued, under every MTA
/// and every name; stray words are ignored as TMDA's option parser ignored them.
#[test]
fn option_mistakes_defer_with_75_and_stray_words_are_ignored() {
    for mta in ["postfix", "qmail", "exim", "sendmail"] {
        let env = home(&format!("MAIL_TRANSFER_AGENT = \"{mta}\"\n"));
        write_filter(&env, "from bob@x.org ok\n");
        for bad in [&["-t"][..], &["--bogus"], &["-Z"], &["-M", "only-one"]] {
            let mut run = filter(&env, BOB, ME).unset("EXTENSION").var("EXT", "");
            for a in bad {
                run = run.arg(a);
            }
            let out = run.expect(75);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("tmda filter"), "{mta} {bad:?}: {err}");
            assert!(maildir(&env, "Maildir").is_empty(), "{mta} {bad:?}");
        }
        let input = message(BOB, "stray", "x\n");
        let out = filter(&env, BOB, ME)
            .unset("EXTENSION")
            .var("EXT", "")
            .arg("extra")
            .arg("-p")
            .arg("words")
            .input(input.clone())
            .expect(0);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("ignored") && err.contains("extra") && err.contains("words"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        // -p after the stray word still counts, as with TMDA's parser.
        assert_eq!(out.stdout, input, "{mta}");
        assert_eq!(
            actions(&env),
            vec!["OK [filtered to stdout] (from bob@x.org ok)"],
            "{mta}"
        );
    }
    let env = home("");
    write_filter(&env, "from bob@x.org ok\n");
    for name in ["tmda-filter", "tmda-rfilter"] {
        let run = |args: &[&str]| {
            env.symlink_as(name)
                .args(args)
                .env("SENDER", BOB)
                .env("RECIPIENT", ME)
                .env("TMDA_NOW", NOW.to_string())
                .write_stdin(message(BOB, "n", "x\n"))
                .output()
                .unwrap()
        };
        let out = run(&["--template-dir"]);
        assert_eq!(out.status.code(), Some(75), "{name}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(name), "{name}");
        for ok in ["--help", "--version", "-V"] {
            let out = run(&[ok]);
            assert_eq!(out.status.code(), Some(0), "{name} {ok}");
            assert!(!out.stdout.is_empty(), "{name} {ok}");
        }
        assert_eq!(run(&["stray"]).status.code(), Some(0), "{name}");
    }
    assert_eq!(maildir(&env, "Maildir").len(), 2);
}

// ---------------------------------------------------------------- tags

#[test]
fn a_dated_address_from_tmda_address_is_delivered() {
    let env = home("");
    let a = address(&env, &[], NOW - 3600);
    assert!(a.starts_with("jo-dated-"), "{a}");
    let input = message(BOB, "dated", "reply\n");
    filter(&env, "stranger@z.net", &a).input(input.clone()).expect(0);
    assert_eq!(maildir(&env, "Maildir"), vec![input]);
    assert!(pending(&env).is_empty());
    assert!(
        actions(&env)[0].starts_with("OK good_dated_cookie ("),
        "{:?}",
        actions(&env)
    );
}

#[test]
fn an_expired_dated_address_follows_action_expired_dated() {
    // A string.
    let env = home("ACTION_EXPIRED_DATED = \"bounce\"\n");
    let a = address(&env, &["-t", "1d"], NOW - 3 * 86400);
    filter(&env, "stranger@z.net", &a).expect(0);
    assert!(maildir(&env, "Maildir").is_empty());
    assert!(pending(&env).is_empty());
    let s = sent(&env);
    assert_eq!(s.len(), 1, "one bounce");
    assert_eq!(s[0].0, "ARGS: [-i] [-f] [] [--] [stranger@z.net]");
    assert!(actions(&env)[0].starts_with("BOUNCE ACTION_EXPIRED_DATED ("));
    // A dict: over two days overdue bounces, the rest is delivered.
    let env = home("ACTION_EXPIRED_DATED = {'2d': 'bounce', 'default': 'ok'}\n");
    let old = address(&env, &["-t", "1d"], NOW - 4 * 86400);
    let recent = address(&env, &["-t", "1d"], NOW - 86400 - 3600);
    filter(&env, "s@z.net", &old).expect(0);
    filter(&env, "s@z.net", &recent).expect(0);
    assert_eq!(maildir(&env, "Maildir").len(), 1);
    let acts = actions(&env);
    assert!(acts[0].starts_with("BOUNCE ACTION_EXPIRED_DATED/2d ("), "{acts:?}");
    assert!(acts[1].starts_with("OK ACTION_EXPIRED_DATED/default ("), "{acts:?}");
}

#[test]
fn a_forged_dated_address_follows_action_fail_dated() {
    let env = home("ACTION_FAIL_DATED = \"drop\"\n");
    let a = address(&env, &[], NOW);
    // Flip the last hex digit of the MAC.
    let (local, domain) = a.rsplit_once('@').unwrap();
    let last = local.chars().last().unwrap();
    let forged = format!(
        "{}{}@{domain}",
        &local[..local.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    filter(&env, BOB, &forged).expect(0);
    // A far-future timestamp with no valid MAC is forged too.
    filter(&env, BOB, "jo-dated-9999999999.abcdef@example.com").expect(0);
    assert!(maildir(&env, "Maildir").is_empty());
    assert_eq!(actions(&env), vec!["DROP action_fail_dated", "DROP action_fail_dated"]);
}

#[test]
fn sender_and_keyword_addresses() {
    let env = home("ACTION_FAIL_SENDER = \"drop\"\nACTION_FAIL_KEYWORD = \"drop\"\n");
    let for_bob = address(&env, &["-s", BOB], NOW);
    let for_domain = address(&env, &["-s", "x.org"], NOW);
    let kw = address(&env, &["-k", "lists"], NOW);
    assert!(for_bob.starts_with("jo-sender-") && kw.starts_with("jo-keyword-lists."));
    filter(&env, BOB, &for_bob).expect(0);
    filter(&env, "Carol@Mail.X.org", &for_domain).expect(0);
    filter(&env, "anyone@elsewhere.net", &kw).expect(0);
    assert_eq!(maildir(&env, "Maildir").len(), 3);
    // The wrong sender, the wrong domain, a forged keyword.
    filter(&env, "eve@y.org", &for_bob).expect(0);
    filter(&env, "eve@x.org.evil.net", &for_domain).expect(0);
    filter(&env, BOB, &kw.replace("lists", "other")).expect(0);
    assert_eq!(maildir(&env, "Maildir").len(), 3);
    assert_eq!(
        actions(&env),
        vec![
            "OK good_sender_cookie",
            "OK good_sender_cookie",
            "OK good_keyword_cookie \"lists\"",
            "DROP action_fail_sender",
            "DROP action_fail_sender",
            "DROP action_fail_keyword",
        ]
    );
}

// ---------------------------------------------------------------- FILTER_INCOMING

/// One rule against one message; returns the log's actions.
fn one_rule(env: &TestEnv, rule: &str, sender: &str, recipient: &str, input: &[u8]) -> Vec<String> {
    write_filter(env, &format!("{rule}\n"));
    let _ = std::fs::remove_file(env.path(".tmda/incoming.log"));
    filter(env, sender, recipient).input(input.to_vec()).expect(0);
    actions(env)
}

#[test]
fn every_source_matches_what_it_should_and_nothing_else() {
    let env = home("ACTION_INCOMING = \"drop\"\n");
    let h = env.home().display().to_string();
    env.write("lists/senders", "# friends\n*@x.org\n");
    env.write("lists/recipients", "jo-lists@example.com\n");
    env.write("lists/body", "# spam words\n'cheap  pills'\nviagra\n");
    env.write("lists/headers", "^X-Spam-Flag: YES\n");
    tmda::filter::cdb::build(
        &env.path("lists/senders.cdb"),
        &[(b"x.org", b""), (b"zed@q.net", b"drop")],
    )
    .unwrap();
    std::fs::create_dir_all(env.path("ezmlm/subscribers")).unwrap();
    std::fs::write(env.path("ezmlm/subscribers/b"), b"Tbob@x.org\0Tcarol@y.net\0").unwrap();
    let plain = message(BOB, "plain", "nothing here\n");
    let cases: Vec<(String, &str, &str, Vec<u8>)> = vec![
        ("from bob@x.org ok".into(), BOB, ME, plain.clone()),
        ("from *@=x.org ok".into(), "a@mail.x.org", ME, plain.clone()),
        (
            "to jo-lists@example.com ok".into(),
            BOB,
            "jo-lists@example.com",
            plain.clone(),
        ),
        (format!("from-file {h}/lists/senders ok"), "z@x.org", ME, plain.clone()),
        (
            format!("to-file {h}/lists/recipients ok"),
            "z@q.net",
            "jo-lists@example.com",
            plain.clone(),
        ),
        (
            format!("from-cdb {h}/lists/senders.cdb ok"),
            "y@x.org",
            ME,
            plain.clone(),
        ),
        (format!("from-ezmlm {h}/ezmlm ok"), "carol@y.net", ME, plain.clone()),
        (
            "body 'buy now' ok".into(),
            "q@q.net",
            ME,
            message("q@q.net", "s", "Please BUY NOW.\n"),
        ),
        (
            "headers '^Subject: .*urgent' ok".into(),
            "q@q.net",
            ME,
            message("q@q.net", "Very URGENT", "x\n"),
        ),
        (
            format!("body-file {h}/lists/body ok"),
            "q@q.net",
            ME,
            message("q@q.net", "s", "cheap  pills\n"),
        ),
        (format!("headers-file {h}/lists/headers ok"), "q@q.net", ME, {
            let mut m = b"X-Spam-Flag: YES\n".to_vec();
            m.extend(message("q@q.net", "s", "x\n"));
            m
        }),
        (
            "size >1000 ok".into(),
            "q@q.net",
            ME,
            message("q@q.net", "s", &"y".repeat(2000)),
        ),
        ("size <1000 ok".into(), "q@q.net", ME, plain.clone()),
        (
            "pipe 'grep -q magic' ok".into(),
            "q@q.net",
            ME,
            message("q@q.net", "s", "some magic\n"),
        ),
    ];
    for (rule, sender, recipient, input) in &cases {
        let acts = one_rule(&env, rule, sender, recipient, input);
        assert_eq!(acts.len(), 1, "{rule}: {acts:?}");
        assert!(acts[0].starts_with("OK ("), "{rule} should match: {acts:?}");
    }
    let delivered = maildir(&env, "Maildir");
    assert_eq!(delivered.len(), cases.len());
    // The same rules against a message they must not match.
    let other = message("nobody@q.net", "plain", "nothing here\n");
    for (rule, _, _, _) in &cases {
        if rule.starts_with("size <") {
            continue;
        }
        let acts = one_rule(&env, rule, "nobody@q.net", ME, &other);
        assert_eq!(acts, vec!["DROP action_incoming"], "{rule} must not match");
    }
    // A cdb value overrides the rule's action.
    let acts = one_rule(
        &env,
        &format!("from-cdb {h}/lists/senders.cdb ok"),
        "zed@q.net",
        ME,
        &other,
    );
    assert!(acts[0].starts_with("DROP ("), "{acts:?}");
    assert_eq!(maildir(&env, "Maildir").len(), cases.len());
}

#[test]
fn dispositions_deliver_to_instructions_bounce_drop_confirm_and_hold() {
    let env = home("");
    let h = env.home().display().to_string();
    for d in ["Other/tmp", "Other/new", "Other/cur"] {
        std::fs::create_dir_all(env.path(d)).unwrap();
    }
    std::fs::write(env.path("mbox"), b"").unwrap();
    let prog = exec(
        &env,
        "bin/prog",
        &format!("#!/bin/sh\ncat > {h}/piped\necho \"$1 $SENDER\" > {h}/prog-args\n"),
    );
    env.write(
        "tpl/my_bounce.txt",
        "Subject: go away\n\nNo thanks, %(envelope_sender)s.\n",
    );
    write_filter(
        &env,
        &format!(
            "from a@q.net accept\nfrom b@q.net deliver=~/Other/\nfrom c@q.net deliver={h}/mbox\n\
             from d@q.net deliver=|{} one\nfrom e@q.net bounce={h}/tpl/my_bounce.txt\n\
             from f@q.net drop\nfrom g@q.net confirm\nfrom i@q.net hold\nfrom j@q.net reject\n",
            prog.display()
        ),
    );
    let m = |s: &str| message(s, "disp", "line one\nFrom here on\n");
    for s in [
        "a@q.net", "b@q.net", "c@q.net", "d@q.net", "e@q.net", "f@q.net", "g@q.net", "i@q.net", "j@q.net",
    ] {
        filter(&env, s, ME).input(m(s)).expect(0);
    }
    assert_eq!(maildir(&env, "Maildir"), vec![m("a@q.net")]);
    assert_eq!(maildir(&env, "Other"), vec![m("b@q.net")]);
    let mbox = String::from_utf8(std::fs::read(env.path("mbox")).unwrap()).unwrap();
    // No From_ line in the input: TMDA's "From nobody" with the time.
    assert!(mbox.starts_with("From nobody Fri Jan  8 07:56:26 2010\n"), "{mbox}");
    assert!(mbox.contains("\nline one\n>From here on\n\n"), "{mbox:?}");
    let piped = std::fs::read(env.path("piped")).unwrap();
    assert!(piped.starts_with(b"From "), "a program gets a From_ line");
    assert!(piped.ends_with(&m("d@q.net")));
    assert_eq!(std::fs::read_to_string(env.path("prog-args")).unwrap(), "one d@q.net\n");
    // Bounce (with its template), confirm (a challenge), reject (the default bounce).
    let s = sent(&env);
    assert_eq!(s.len(), 3, "{s:?}");
    assert_eq!(s[0].0, "ARGS: [-i] [-f] [] [--] [e@q.net]");
    assert_eq!(header(&s[0].1, "Subject"), Some("go away"));
    assert!(s[0].1.contains("No thanks, e@q.net."));
    assert_eq!(s[1].0, "ARGS: [-i] [-f] [] [--] [g@q.net]");
    assert!(header(&s[1].1, "Reply-To").unwrap().starts_with("jo-confirm-"));
    assert_eq!(s[2].0, "ARGS: [-i] [-f] [] [--] [j@q.net]");
    // confirm and hold keep one copy each, mode 0600.
    let p = pending(&env);
    assert_eq!(p.len(), 2, "{p:?}");
    for name in &p {
        let meta = std::fs::metadata(env.path(&format!(".tmda/pending/{name}"))).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let acts = actions(&env);
    assert!(acts.contains(&"OK (from a@q.net accept)".to_string()), "{acts:?}");
    assert!(
        acts.contains(&"DELIVER (from b@q.net deliver=~/Other/)".to_string()),
        "{acts:?}"
    );
    assert!(acts.contains(&"DROP (from f@q.net drop)".to_string()), "{acts:?}");
    assert!(acts.contains(&"HOLD (from i@q.net hold)".to_string()), "{acts:?}");
    assert!(acts.iter().any(|a| a.starts_with("HOLD pending ")), "{acts:?}");
}

#[test]
fn carbon_copies_for_bounce_drop_and_confirm() {
    let env = home(
        "FILTER_BOUNCE_CC = \"bcc@example.com\"\nFILTER_DROP_CC = \"dcc@example.com\"\n\
         CONFIRM_CC = \"ccc@example.com\"\n",
    );
    write_filter(&env, "from b@q.net bounce\nfrom d@q.net drop\n");
    let m = |s: &str| message(s, "cc", "copy me\n");
    filter(&env, "b@q.net", ME).input(m("b@q.net")).expect(0);
    filter(&env, "d@q.net", ME).input(m("d@q.net")).expect(0);
    filter(&env, "c@q.net", ME).input(m("c@q.net")).expect(0);
    let s = sent(&env);
    let args: Vec<&str> = s.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        args,
        vec![
            "ARGS: [-i] [-f] [b@q.net] [--] [bcc@example.com]",
            "ARGS: [-i] [-f] [] [--] [b@q.net]",
            "ARGS: [-i] [-f] [d@q.net] [--] [dcc@example.com]",
            "ARGS: [-i] [-f] [c@q.net] [--] [ccc@example.com]",
            "ARGS: [-i] [-f] [] [--] [c@q.net]",
        ]
    );
    // The copies are the messages as received.
    for (i, who) in [(0, "b@q.net"), (2, "d@q.net"), (3, "c@q.net")] {
        assert_eq!(s[i].1.as_bytes(), &m(who)[..], "copy {i}");
    }
}

#[test]
fn filter_match_shows_the_rule() {
    let env = home("");
    let path = write_filter_path(&env, "from *@x.org ok\nto jo-lists@example.com deliver=~/Lists/\n");
    let out = env
        .tmda()
        .args(["filter", "-M", "jo-lists@example.com", "eve@y.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let title = format!("Checking {}", path.display());
    let dashes = "-".repeat(title.len());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "{title}\n{dashes}\nTo: jo-lists@example.com\nFrom: eve@y.org\n{dashes}\n\
             MATCH: to jo-lists@example.com deliver=~/Lists/\n"
        )
    );
    let out = env.tmda().args(["filter", "-M", "", "nobody@q.net"]).output().unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .ends_with("Sorry, no matching lines.\n")
    );
}

fn write_filter_path(env: &TestEnv, text: &str) -> PathBuf {
    env.write(".tmda/filters/incoming", text)
}

// ---------------------------------------------------------------- challenge/response

/// The confirm address a challenge carries.
fn confirm_address(challenge: &str) -> String {
    header(challenge, "Reply-To").expect("Reply-To").trim().to_string()
}

#[test]
fn challenge_confirm_release_and_delivery_round_trip() {
    let env = home("CONFIRM_APPEND = \"~/.tmda/lists/confirmed\"\n");
    std::fs::create_dir_all(env.path(".tmda/lists")).unwrap();
    let input = message(BOB, "round trip", "Please let me in.\n");
    filter(&env, BOB, ME).input(input.clone()).expect(0);
    assert!(maildir(&env, "Maildir").is_empty());
    let held = pending(&env);
    assert_eq!(held.len(), 1);
    let s = sent(&env);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, "ARGS: [-i] [-f] [] [--] [bob@x.org]");
    let confirm = confirm_address(&s[0].1);
    let id = held[0].trim_end_matches(".msg");
    assert!(confirm.starts_with(&format!("jo-confirm-{id}.")), "{confirm} for {id}");
    assert!(s[0].1.contains(&confirm), "the body names the address");
    // The stranger replies to the confirm address.
    let reply = format!("From: Bob <{BOB}>\nTo: {confirm}\nSubject: Re: confirm\n\nyes\n");
    filter(&env, BOB, &confirm).input(reply).expect(0);
    assert_eq!(
        std::fs::read_to_string(env.path(".tmda/lists/confirmed")).unwrap(),
        "bob@x.org\n"
    );
    let s = sent(&env);
    assert_eq!(s.len(), 3, "challenge, acceptance notice, release");
    assert_eq!(s[1].0, "ARGS: [-i] [-f] [] [--] [bob@x.org]");
    assert!(
        header(&s[1].1, "From").unwrap().contains(&confirm),
        "notice From the confirm address"
    );
    assert_eq!(s[2].0, "ARGS: [-i] [-f] [bob@x.org] [--] [jo@example.com]");
    let released = &s[2].1;
    assert!(header(released, "X-TMDA-Confirm-Done").is_some());
    assert!(released.ends_with("\n\nPlease let me in.\n"));
    assert_eq!(pending(&env).len(), 1, "held until the release comes back");
    // The released copy comes back through the MTA: delivered, pending removed.
    filter(&env, BOB, ME).input(released.clone()).expect(0);
    let got = maildir(&env, "Maildir");
    assert_eq!(got.len(), 1);
    let got = String::from_utf8(got[0].clone()).unwrap();
    assert!(header(&got, "X-TMDA-Confirm-Done").is_none(), "{got}");
    assert!(header(&got, "X-TMDA-Confirmed").is_some(), "{got}");
    assert!(got.ends_with("\n\nPlease let me in.\n"));
    assert!(pending(&env).is_empty());
    let acts = actions(&env);
    assert_eq!(acts[0], "CONFIRM action_incoming");
    assert_eq!(acts[1], format!("CONFIRM pending {id}"));
    assert_eq!(acts[2], format!("CONFIRM accept {id}"));
    assert_eq!(
        acts[3],
        format!("CONFIRM_APPEND {}", env.path(".tmda/lists/confirmed").display())
    );
    assert_eq!(acts[4], "OK good_confirm_done_cookie");
    // A replay of the released copy after the held one is gone goes through the filter
    // (here: challenged), not straight into the mailbox.
    filter(&env, BOB, ME).input(released.clone()).expect(0);
    assert_eq!(maildir(&env, "Maildir").len(), 1, "a replay is not delivered blindly");
    assert_eq!(pending(&env).len(), 1, "the replay is held and challenged");
}

#[test]
fn invalid_confirmations_and_missing_pending() {
    let env = home("ACTION_INVALID_CONFIRMATION = \"drop\"\nACTION_MISSING_PENDING = \"bounce\"\n");
    filter(&env, BOB, ME).expect(0);
    let confirm = confirm_address(&sent(&env)[0].1);
    // A forged MAC, a cookie with two parts.
    let forged = confirm.replacen("jo-confirm-1", "jo-confirm-2", 1);
    filter(&env, BOB, &forged).expect(0);
    filter(&env, BOB, "jo-confirm-12.34@example.com").expect(0);
    // The right MAC, but the held message is gone.
    for p in pending(&env) {
        std::fs::remove_file(env.path(&format!(".tmda/pending/{p}"))).unwrap();
    }
    filter(&env, BOB, &confirm).expect(0);
    let acts = actions(&env);
    assert_eq!(
        &acts[2..],
        &[
            "DROP action_invalid_confirmation",
            "DROP action_invalid_confirmation",
            "BOUNCE action_missing_pending"
        ]
    );
    let s = sent(&env);
    assert_eq!(s.len(), 2, "the challenge and one bounce, no release");
    assert!(maildir(&env, "Maildir").is_empty());
    // A done header with a bad MAC is challenged, not delivered.
    let mut m = b"X-TMDA-Confirm-Done: 1262937386.1.abcdef\n".to_vec();
    m.extend(message(BOB, "fake done", "x\n"));
    filter(&env, BOB, ME).input(m).expect(0);
    assert!(maildir(&env, "Maildir").is_empty());
    assert!(actions(&env).contains(&"CONFIRM bad_confirm_done_cookie".to_string()));
}

// ---------------------------------------------------------------- loop and flood protection

#[test]
fn no_challenge_to_robots_lists_or_bulk_mail_but_the_message_is_held() {
    let env = home("");
    let cases: Vec<(&str, String)> = vec![
        ("", String::new()),
        ("MAILER-DAEMON@x.org", String::new()),
        ("b1@q.net", "Precedence: bulk\n".into()),
        ("b2@q.net", "List-Id: <a.lists.q.net>\n".into()),
        ("b3@q.net", "Auto-Submitted: auto-generated\n".into()),
    ];
    for (sender, extra) in &cases {
        let mut m = extra.as_bytes().to_vec();
        m.extend(message(
            if sender.is_empty() { "md@x.org" } else { sender },
            "robot",
            "x\n",
        ));
        filter(&env, sender, ME).input(m).expect(0);
    }
    assert!(sent(&env).is_empty(), "{:?}", sent(&env));
    assert_eq!(pending(&env).len(), cases.len());
    let noreply = actions(&env).into_iter().filter(|a| a.starts_with("NOREPLY")).count();
    assert_eq!(noreply, cases.len());
}

#[test]
fn max_autoresponses_per_day_limits_challenges() {
    let env = home("MAX_AUTORESPONSES_PER_DAY = 1\n");
    filter(&env, BOB, ME).expect(0);
    filter(&env, BOB, ME).expect(0);
    assert_eq!(sent(&env).len(), 1);
    assert_eq!(pending(&env).len(), 2, "the second is still held");
    assert_eq!(actions(&env).last().unwrap(), "NOREPLY (MAX_AUTORESPONSES_PER_DAY = 1)");
    // Another sender still gets one.
    filter(&env, "carol@y.net", ME).expect(0);
    assert_eq!(sent(&env).len(), 2);
}

#[test]
fn our_own_challenge_fed_back_is_never_answered() {
    let env = home("");
    filter(&env, BOB, ME).expect(0);
    let challenge = sent(&env)[0].1.clone();
    let confirm = confirm_address(&challenge);
    // Bounced back to us with a null sender, sent back from the confirm address, or
    // sent back with the Auto-Submitted header intact.
    for sender in ["", confirm.as_str(), ME] {
        filter(&env, sender, ME).input(challenge.clone()).expect(0);
    }
    assert_eq!(sent(&env).len(), 1, "no answer to our own challenge");
}

// ---------------------------------------------------------------- options

#[test]
fn discard_option_discards_everything() {
    let env = home("");
    write_filter(&env, "from b@q.net bounce\nfrom h@q.net hold\n");
    filter(&env, BOB, ME).arg("-d").expect(0);
    filter(&env, "b@q.net", ME).arg("-d").expect(0);
    filter(&env, "h@q.net", ME).arg("-d").expect(0);
    assert!(sent(&env).is_empty());
    assert!(pending(&env).is_empty());
    assert!(maildir(&env, "Maildir").is_empty());
}

#[test]
fn template_dir_filter_file_environ_and_config_options() {
    let env = home("");
    let h = env.home().display().to_string();
    env.write(
        "tpl/confirm_request.txt",
        "Subject: my own\n\nPlease confirm at %(confirm_accept_address)s.\n",
    );
    filter(&env, BOB, ME).arg("-t").arg(env.path("tpl")).expect(0);
    let s = sent(&env);
    assert_eq!(header(&s[0].1, "Subject"), Some("my own"));
    assert!(s[0].1.contains("Please confirm at jo-confirm-"));
    // -I: another filter file.
    env.write("other-filter", "from bob@x.org ok\n");
    filter(&env, BOB, ME).arg("-I").arg(env.path("other-filter")).expect(0);
    assert_eq!(maildir(&env, "Maildir").len(), 1);
    // -e: the environment, before anything is read (here the envelope itself).
    filter(&env, BOB, ME)
        .unset("SENDER")
        .arg("-e")
        .arg(format!("SENDER={BOB}"))
        .arg("-I")
        .arg(env.path("other-filter"))
        .expect(0);
    assert_eq!(maildir(&env, "Maildir").len(), 2);
    filter(&env, BOB, ME).arg("-e").arg("novalue").expect(75);
    // -c: another configuration file (another DELIVERY).
    for d in ["Alt/tmp", "Alt/new", "Alt/cur"] {
        std::fs::create_dir_all(env.path(d)).unwrap();
    }
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    env.write("alt-config", &cfg.replace("~/Maildir/", &format!("{h}/Alt/")));
    filter(&env, BOB, ME)
        .arg("-c")
        .arg(env.path("alt-config"))
        .arg("-I")
        .arg(env.path("other-filter"))
        .expect(0);
    assert_eq!(maildir(&env, "Alt").len(), 1);
    assert_eq!(maildir(&env, "Maildir").len(), 2);
}

#[test]
fn vhome_script_gets_its_arguments_as_arguments() {
    let env = home("MAIL_TRANSFER_AGENT = \"qmail\"\n");
    let h = env.home().display().to_string();
    write_filter(&env, "from bob@x.org ok\n");
    let script = exec(
        &env,
        "bin/vhome",
        &format!(
            "#!/bin/sh\nprintf '[%s]' \"$@\" >> {h}/vhome-args\necho >> {h}/vhome-args\n[ \"$1\" = jo ] && echo {h}\nexit 0\n"
        ),
    );
    let hostile = "x;touch${IFS}pwned`touch pwned2`$(touch pwned3)";
    filter(&env, BOB, "jo@example.com")
        .arg("-S")
        .arg(&script)
        .unset("EXTENSION")
        .var("EXT", format!("{hostile}-jo"))
        .var("HOST", "example.com")
        .var("HOME", "/nonexistent")
        .expect(75);
    filter(&env, BOB, "jo@example.com")
        .arg("-S")
        .arg(&script)
        .unset("EXTENSION")
        .var("EXT", "jo-lists")
        .var("HOST", "example.com")
        .var("HOME", "/nonexistent")
        .expect(99);
    assert_eq!(maildir(&env, "Maildir").len(), 1);
    let args = std::fs::read_to_string(env.path("vhome-args")).unwrap();
    assert!(args.starts_with(&format!("[{hostile}][example.com]\n")), "{args}");
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(!env.path(f).exists() && !Path::new(f).exists());
    }
}

#[test]
fn sticky_home_defers_with_75() {
    let env = home("");
    write_filter(&env, "from bob@x.org ok\n");
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o1755)).unwrap();
    filter(&env, BOB, ME).expect(75);
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(maildir(&env, "Maildir").is_empty());
    assert!(pending(&env).is_empty());
}

// ---------------------------------------------------------------- the log

#[test]
fn logfile_incoming_layout() {
    let env = home("");
    write_filter(&env, "from bob@x.org ok\n");
    let input = message(BOB, "log me", "x\n");
    filter(&env, BOB, ME).input(input.clone()).expect(0);
    let mut m = b"Reply-To: Other <other@q.net>\nX-Primary-Address: bob-list@x.org\n".to_vec();
    m.extend(message("carol@y.net", "second", "x\n"));
    let size2 = m.len();
    filter(&env, "", ME).input(m).expect(0);
    let pad = |a: &str, size: usize| {
        let s = format!("({size})");
        format!("{a}{}{s}", " ".repeat(72 - a.len() - s.len()))
    };
    let id_line = log(&env)
        .lines()
        .filter(|l| l.contains("CONFIRM pending"))
        .map(String::from)
        .next()
        .unwrap();
    let id_action = id_line
        .strip_prefix("Actn: ")
        .unwrap()
        .split("  ")
        .next()
        .unwrap()
        .to_string();
    let want = format!(
        "Date: {NOW_DATE}\nFrom: Bob <bob@x.org>\n  To: jo@example.com\nSubj: log me\nActn: {}\n\n\
         Date: {NOW_DATE}\nXPri: bob-list@x.org\nSndr: <>\nFrom: Bob <carol@y.net>\nRept: Other <other@q.net>\n  To: jo@example.com\nSubj: second\nActn: {}\n\n\
         Date: {NOW_DATE}\nXPri: bob-list@x.org\nSndr: <>\nFrom: Bob <carol@y.net>\nRept: Other <other@q.net>\n  To: jo@example.com\nSubj: second\nActn: {}\n\n\
         Date: {NOW_DATE}\nXPri: bob-list@x.org\nSndr: <>\nFrom: Bob <carol@y.net>\nRept: Other <other@q.net>\n  To: jo@example.com\nSubj: second\nActn: {}\n\n",
        pad("OK (from bob@x.org ok)", input.len()),
        pad("CONFIRM action_incoming", size2),
        pad(&id_action, size2),
        pad("NOREPLY (envelope sender = <>)", size2),
    );
    crate::util::assert_text_eq(&log(&env), &want, "LOGFILE_INCOMING");
    assert_eq!(log(&env), want);
}

/// The sender writes From, Subject and the envelope: their control characters (NUL,
/// escape sequences, DEL, C1) are written as `?`, so `grep` does not call the log binary
/// and `tail -f` does not pass escapes to the terminal. Folds stay folds.
#[test]
fn logfile_incoming_never_holds_control_characters() {
    let env = home("");
    write_filter(&env, "to jo@example.com ok\n");
    let input =
        b"From: a\x00b@c.example\nSubject: x\x1b[2J \x7f\xc2\x9b y\r\n\tfolded\nReply-To: r\x07@q.net\n\nb\n".to_vec();
    filter(&env, "s\x1b]0;t\x07@c.example", ME).input(input).expect(0);
    let log = log(&env);
    assert!(
        !log.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
        "control characters in the log: {log:?}"
    );
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.contains(&"Sndr: s?]0;t?@c.example"), "{log:?}");
    assert!(lines.contains(&"From: a?b@c.example"), "{log:?}");
    assert!(lines.contains(&"Rept: r?@q.net"), "{log:?}");
    assert!(lines.contains(&"Subj: x?[2J ?? y"), "{log:?}");
    assert!(lines.contains(&"\tfolded"), "{log:?}");
}

/// The rule in `Actn:` and X-TMDA-Action is TMDA's text (compared with TMDAng): a
/// from-file path as written (`~` kept, quotes gone), arguments in their order with
/// their values, ezmlm's directory expanded with `/subscribers`, as TMDA's match loop
/// left them; procmail rules and log greps written for TMDA's header keep matching.
#[test]
fn the_matching_rule_is_shown_as_tmda_shows_it() {
    let env = home("ACTION_HEADER_INCOMING = True\n");
    env.write(".tmda/lists/white", "bob@x.org\n");
    env.write("list/subscribers/f", "Tbob@x.org\0");
    let home_dir = env.home().display().to_string();
    let cases = [
        (
            "from-file ~/.tmda/lists/white accept\n",
            "OK (from-file ~/.tmda/lists/white accept)".to_string(),
        ),
        (
            "from-file -optional=yes  -autodbm \"~/.tmda/lists/white\" ok\n",
            "OK (from-file -optional=yes -autodbm ~/.tmda/lists/white ok)".to_string(),
        ),
        (
            "from-file -autocdb -optional ~/.tmda/lists/white ok\n",
            "OK (from-file -autocdb -optional ~/.tmda/lists/white ok)".to_string(),
        ),
        (
            "macro WL(f) from-file ~/.tmda/lists/f ok\nWL(white)\n",
            "OK (from-file ~/.tmda/lists/white ok)".to_string(),
        ),
        (
            "from-file ${HOME}/.tmda/lists/white ok\n",
            format!("OK (from-file {home_dir}/.tmda/lists/white ok)"),
        ),
        (
            "from-ezmlm ~/list ok\n",
            format!("OK (from-ezmlm {home_dir}/list/subscribers ok)"),
        ),
    ];
    for (rule, want) in &cases {
        write_filter(&env, rule);
        for f in std::fs::read_dir(env.path("Maildir/new")).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        filter(&env, BOB, ME).expect(0);
        assert_eq!(actions(&env).last(), Some(want), "{rule}");
        let delivered = String::from_utf8(maildir(&env, "Maildir")[0].clone()).unwrap();
        assert_eq!(header(&delivered, "X-TMDA-Action"), Some(want.as_str()), "{rule}");
    }
    // -M shows the same text.
    write_filter(&env, "from-file ~/.tmda/lists/white accept\n");
    let out = filter(&env, BOB, ME).arg("-M").arg(ME).arg(BOB).expect(0);
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("MATCH: from-file ~/.tmda/lists/white accept\n"), "{out}");
}

// ---------------------------------------------------------------- nothing lost

#[test]
fn a_crash_at_any_delivery_step_leaves_a_whole_copy_or_none() {
    for point in tmda::mailbox::fault::POINTS {
        let env = home("");
        std::fs::write(env.path("mbox"), b"").unwrap();
        let dest = if point.starts_with("mbox") {
            "~/mbox"
        } else {
            "~/Maildir/"
        };
        write_filter(&env, &format!("from bob@x.org deliver={dest}\n"));
        let input = message(BOB, "crash", &"a line of the body\n".repeat(20_000));
        let out = filter(&env, BOB, ME)
            .var("TMDA_FAULT_POINT", point)
            .input(input.clone())
            .run();
        assert!(!out.status.success(), "{point}: the MTA must not think it delivered");
        assert!(
            !matches!(out.status.code(), Some(0 | 99)),
            "{point}: exit {:?}",
            out.status
        );
        if point.starts_with("maildir") {
            let new = files(&env.path("Maildir/new"));
            assert!(
                new.is_empty() || new == vec![input.clone()],
                "{point}: half a copy in new/"
            );
        } else {
            let mbox = std::fs::read(env.path("mbox")).unwrap();
            let whole = mbox.len() > input.len() && mbox.ends_with(b"a line of the body\n\n");
            assert!(
                mbox.is_empty() || whole,
                "{point}: mbox holds {} bytes of a {}-byte message",
                mbox.len(),
                input.len()
            );
        }
    }
}

#[test]
fn a_failing_sendmail_during_a_challenge_keeps_no_pending_copy() {
    for code in ["75", "1"] {
        let env = home("");
        std::fs::write(env.path("exit-code"), code).unwrap();
        filter(&env, BOB, ME).expect(75);
        assert!(pending(&env).is_empty(), "sendmail exit {code}: {:?}", pending(&env));
        // The MTA retries once sendmail works again: one held copy, one challenge.
        std::fs::remove_file(env.path("exit-code")).unwrap();
        filter(&env, BOB, ME).expect(0);
        assert_eq!(pending(&env).len(), 1);
    }
}

#[test]
fn a_100_mb_message_is_delivered_in_under_32_mb() {
    let env = home("");
    write_filter(&env, "from bob@x.org ok\n");
    let mut cmd = std::process::Command::new("/usr/bin/time");
    cmd.arg("-f").arg("maxrss_kb=%M").arg(crate::util::bin()).arg("filter");
    let mut run = filter(&env, BOB, ME);
    // Keep the environment the helper set, but run under time(1).
    let envs: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> = run
        .cmd
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect();
    cmd.env_clear();
    for (k, v) in envs {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    run.cmd = cmd;
    let mut input = message(BOB, "big", "");
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij\n";
    while input.len() < 100 << 20 {
        input.extend_from_slice(line);
    }
    let len = input.len();
    let out = run.input(input).expect(0);
    let new = std::fs::read_dir(env.path("Maildir/new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(new.metadata().unwrap().len() as usize, len);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kb: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .expect("time's report")
        .trim()
        .parse()
        .unwrap();
    assert!(kb < 32 * 1024, "peak RSS {kb} kB");
}

// ---------------------------------------------------------------- hostile input

/// Whether `m` is `input` (less a From_ line) as delivered: the same bytes, or with the
/// one empty line inserted where the header block ended early, or the newlines that end
/// a header block added at its end (a line that is no header
/// field starts the body, as in Python's parser, so an empty line is put before it).
fn is_whole_copy(m: &[u8], input: &[u8]) -> bool {
    let input = match input.strip_prefix(b"From ") {
        Some(r) => &r[r.iter().position(|&b| b == b'\n').map_or(r.len(), |i| i + 1)..],
        None => input,
    };
    // A header block without its end gets one.
    if m == input || [input, b"\n"].concat() == m || [input, b"\n\n"].concat() == m {
        return true;
    }
    let i = m.iter().zip(input).take_while(|(a, b)| a == b).count();
    m.len() == input.len() + 1 && m[i] == b'\n' && m[i + 1..] == input[i..]
}

/// A marker directory: a hostile command would create files in it.
fn nothing_ran(env: &TestEnv) {
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(!env.path(f).exists(), "{f} was created: a header ran a command");
    }
}

#[test]
fn headers_never_choose_commands_or_paths() {
    let env = home("TEMPLATE_DIR_MATCH_SENDER = 1\nTEMPLATE_DIR_MATCH_RECIPIENT = 1\n");
    let h = env.home().display().to_string();
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    env.write_config(&format!("{cfg}TEMPLATE_DIR = \"{h}/tpl/\"\n"));
    env.write(
        "tpl/bob@x.org/confirm_request.txt",
        "Subject: for bob\n\nconfirm %(confirm_accept_address)s\n",
    );
    env.write(
        "tpl/confirm_request.txt",
        "Subject: ours\n\nconfirm %(confirm_accept_address)s\n",
    );
    env.write("secret/confirm_request.txt", "Subject: ESCAPED\n\nescaped\n");
    let evil = format!("$(touch {h}/pwned)`touch {h}/pwned2`;touch {h}/pwned3");
    let m = format!(
        "From: \"{evil}\" <../../secret@x.org>\nSubject: {evil}\nX-TMDA-Recipient: |touch {h}/pwned\n\
         X-TMDA-Template: ../../secret/confirm_request.txt\nReturn-Path: <|touch {h}/pwned>\n\
         X-Primary-Address: ../../secret\n\nbody\n"
    );
    for sender in [
        "../secret",
        "../../secret",
        "../secret@x.org",
        "a;touch pwned@x.org",
        BOB,
    ] {
        filter(&env, sender, ME).input(m.clone()).run();
        filter(&env, sender, &format!("{sender}@example.com"))
            .input(m.clone())
            .run();
    }
    nothing_ran(&env);
    let s = sent(&env);
    assert!(!s.is_empty());
    for (_, msg) in &s {
        assert!(!msg.contains("ESCAPED"), "a template outside the template dir was used");
    }
    // The per-sender directory inside TEMPLATE_DIR is used (so the lookup did run).
    assert!(s.iter().any(|(_, m)| header(m, "Subject") == Some("for bob")));
}

#[test]
fn crlf_in_header_values_never_adds_header_fields_to_a_challenge() {
    let env = home("");
    env.write(
        "tpl/confirm_request.txt",
        "Subject: Re: %(subject)s\nX-Sender: %(envelope_sender)s\nX-From: %(x_primary_address)s\n\nconfirm %(confirm_accept_address)s\n",
    );
    let subjects = [
        "=?utf-8?q?hi=0D=0ABcc:_victim@evil.org?=",
        "=?utf-8?b?aGkNCkJjYzogdmljdGltQGV2aWwub3Jn?=",
        "hi\rBcc: victim@evil.org",
    ];
    for (i, s) in subjects.iter().enumerate() {
        let m = format!(
            "From: Bob <b{i}@x.org>\nSubject: {s}\nX-Primary-Address: =?utf-8?q?x=0ABcc:_v@evil.org?= <b{i}@x.org>\n\nx\n"
        );
        filter(&env, &format!("b{i}@x.org"), ME)
            .arg("-t")
            .arg(env.path("tpl"))
            .input(m)
            .expect(0);
    }
    // The envelope sender itself (set by a hostile relay) with a line break.
    filter(&env, "b9@x.org\nBcc: victim@evil.org", ME)
        .arg("-t")
        .arg(env.path("tpl"))
        .expect(0);
    let s = sent(&env);
    assert_eq!(s.len(), subjects.len(), "no challenge to a sender with a line break");
    for (args, msg) in &s {
        assert!(!args.contains("evil"), "{args}");
        let h = head(msg);
        for line in h.split('\n') {
            assert!(!line.to_ascii_lowercase().starts_with("bcc:"), "injected field: {h}");
            assert!(!line.contains('\r'), "bare CR in a header field: {line:?}");
        }
    }
}

#[test]
fn junk_input_never_panics_and_never_leaves_half_a_file() {
    let env = home("");
    write_filter(&env, "from bob@x.org ok\n");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut junk = vec![];
    for _ in 0..200_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        junk.push(seed as u8);
    }
    let mut long = b"X-Long: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 5 << 20));
    long.extend_from_slice(b"\nFrom: bob@x.org\n\nbody\n");
    let nul = b"From: bob@x.org\nSubject: a\0b\nX-\0: c\n\nbody\0with\0nuls\n".to_vec();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("junk", junk.clone()),
        ("junk after a From_ line", [b"From x\n".to_vec(), junk].concat()),
        ("a 5 MB header line", long),
        ("NUL bytes", nul),
        ("nothing", vec![]),
        ("no newline", b"Subject: x".to_vec()),
        (
            "a From_ line only",
            b"From bob@x.org Fri Jan  8 07:56:26 2010\n".to_vec(),
        ),
    ];
    for (what, input) in inputs {
        for sender in [BOB, "stranger@q.net"] {
            let out = filter(&env, sender, ME).input(input.clone()).run();
            let code = out.status.code();
            assert!(
                matches!(code, Some(0 | 99 | 75)),
                "{what}: exit {:?}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            // Whatever was delivered is whole: the input, less any From_ line, with an
            // empty header block in front when it had no header fields.
            for m in maildir(&env, "Maildir") {
                assert!(is_whole_copy(&m, &input), "{what}: half a copy");
            }
        }
        for e in std::fs::read_dir(env.path("Maildir/new")).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
}

/// Confirm the challenge the last message got (as its envelope sender).
fn confirm_last(env: &TestEnv, sender: &str) {
    let s = sent(env);
    let confirm = confirm_address(&s.last().unwrap().1);
    filter(env, sender, &confirm)
        .input(format!("From: {sender}\nSubject: ok\n\nyes\n"))
        .expect(0);
}

#[test]
fn a_confirmation_never_whitelists_more_than_one_address() {
    // The whitelist is a from-file list, where * and ? are wildcards. A stranger who
    // answers their own challenge must not open it to everyone through a forged
    // Return-Path (the sendmail MTA adds none for a pipe) or an X-Primary-Address.
    for forged in [
        "Return-Path: <*@*>\n",
        "X-Primary-Address: *@evil.com\n",
        "Return-Path: <?*@evil.com>\n",
        "Return-Path: <ceo@bank.com>\n",
    ] {
        let env = home("MAIL_TRANSFER_AGENT = \"sendmail\"\nCONFIRM_APPEND = \"~/whitelist\"\n");
        let h = env.home().display().to_string();
        write_filter(&env, &format!("from-file -optional {h}/whitelist ok\n"));
        let spam = format!("{forged}From: Spammer <spam@evil.com>\nSubject: buy\n\nbuy now\n");
        filter(&env, "spam@evil.com", ME).input(spam).expect(0);
        confirm_last(&env, "spam@evil.com");
        // Other strangers are still challenged, not delivered.
        let n = sent(&env).len();
        for stranger in ["carol@other.net", "dave@evil.com", "ceo@bank.com"] {
            filter(&env, stranger, ME)
                .input(message(stranger, "innocent", "hi\n"))
                .expect(0);
        }
        let list = std::fs::read_to_string(env.path("whitelist")).unwrap();
        assert_eq!(
            sent(&env).len(),
            n + 3,
            "{forged}: strangers not challenged; whitelist:\n{list}"
        );
        assert!(
            maildir(&env, "Maildir")
                .iter()
                .all(|m| !String::from_utf8_lossy(m).contains("innocent")),
            "{forged}: whitelist:\n{list}"
        );
    }
}

#[test]
fn a_release_goes_only_to_the_recipient_we_held_it_for() {
    // A stranger's own X-TMDA-Recipient must not turn the release into a relay.
    let env = home("");
    let m = format!(
        "X-TMDA-Recipient: victim@evil.org\n{}",
        String::from_utf8(message(BOB, "relay", "spam\n")).unwrap()
    );
    filter(&env, BOB, ME).input(m).expect(0);
    confirm_last(&env, BOB);
    let s = sent(&env);
    let release = s.last().unwrap();
    assert_eq!(release.0, "ARGS: [-i] [-f] [bob@x.org] [--] [jo@example.com]");
    assert!(s.iter().all(|(a, _)| !a.contains("evil")), "{s:?}");
}

/// The envelope is the sender's: a MAIL FROM or local part with bytes that are not
/// UTF-8 reaches the environment as they came; it is read as far as it can be, never
/// taken for an MTA that set no SENDER or RECIPIENT.
#[test]
fn an_envelope_that_is_not_utf8_is_not_taken_for_a_missing_one() {
    use std::os::unix::ffi::OsStrExt;
    let env = home("");
    let out = filter(&env, BOB, ME)
        .var("SENDER", std::ffi::OsStr::from_bytes(b"b\xffb@x.org"))
        .run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("missing environment variable"), "{err}");
    let out = filter(&env, BOB, ME)
        .var("RECIPIENT", std::ffi::OsStr::from_bytes(b"jo-\xfe@example.com"))
        .var("EXTENSION", std::ffi::OsStr::from_bytes(b"\xfe"))
        .run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("missing environment variable"), "{err}");
}

/// An internationalized (SMTPUTF8) sender or recipient address is held and challenged,
/// not deferred with 75 until the MTA bounces it (Python's formataddr refused such an
/// address, and TMDA deferred the message for ever). The addresses stay readable UTF-8.
#[test]
fn an_internationalized_envelope_is_held_and_challenged() {
    let env = home("");
    let out = filter(&env, "jos\u{e9}@x.org", ME).run();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(pending(&env).len(), 1);
    let out = filter(&env, BOB, "jo-caf\u{e9}@example.com").run();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let sent = fake_sendmail_outputs(&env);
    let (_, last) = sent.last().expect("a challenge was sent");
    assert!(
        last.lines().any(|l| l.starts_with("Reply-To: jo-caf\u{e9}-confirm-")),
        "{last}"
    );
}

/// RECIPIENT_DELIMITER "+" and TAGS_* of one's own: `tmda address` makes `jo+exp+…`
/// with the first TAGS_DATED word, the filter (given Postfix's EXTENSION, the part after
/// the first "+") accepts it, and any listed word is recognised; a word not in TAGS_DATED
/// is no tag at all (the message is challenged), as in TMDA.
#[test]
fn plus_delimiter_and_own_tag_words() {
    let env = home("RECIPIENT_DELIMITER = \"+\"\nTAGS_DATED = [\"exp\", \"until\"]\nTAGS_CONFIRM = [\"Reply\"]\n");
    let a = address(&env, &["-d"], NOW);
    assert!(a.starts_with("jo+exp+"), "{a}");
    let ext = a.split_once('+').unwrap().1.rsplit_once('@').unwrap().0.to_string();
    let out = filter(&env, BOB, &a).var("EXTENSION", &ext).run();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(maildir(&env, "Maildir").len(), 1);
    // The second word of TAGS_DATED is a dated tag too.
    let until = a.replacen("+exp+", "+until+", 1);
    let ext = ext.replacen("exp+", "until+", 1);
    let out = filter(&env, BOB, &until).var("EXTENSION", &ext).run();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(maildir(&env, "Maildir").len(), 2);
    // "dated" is not in TAGS_DATED: no tag, so the stranger is challenged, and the
    // confirm address uses "+" and the lower-cased first TAGS_CONFIRM word.
    let dated = a.replacen("+exp+", "+dated+", 1);
    let ext = ext.replacen("until+", "dated+", 1);
    let out = filter(&env, BOB, &dated).var("EXTENSION", &ext).run();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(maildir(&env, "Maildir").len(), 2);
    assert_eq!(pending(&env).len(), 1);
    let sent = fake_sendmail_outputs(&env);
    let (_, challenge) = sent.last().expect("a challenge");
    assert!(challenge.contains("+reply+"), "{challenge}");
}

/// `from-dbm` with a list written by Python's dbm (the portable dbm.dumb format, TMDA's
/// on a Python 3 without GDBM): a sender in it is delivered, a value overrides the
/// action, the domain is looked up too; a GDBM file is refused with the way out.
#[test]
fn from_dbm_lists_as_python_writes_them() {
    let env = home("");
    let list = env.path(".tmda/lists/white.db");
    std::fs::create_dir_all(list.parent().unwrap()).unwrap();
    let script = "import dbm.dumb, sys\n\
                  db = dbm.dumb.open(sys.argv[1], 'c')\n\
                  db[b'bob@x.org'] = b''\n\
                  db[b'spam.example'] = b'drop'\n\
                  db.close()\n";
    let st = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&list)
        .status()
        .unwrap();
    assert!(st.success());
    write_filter(&env, "from-dbm ~/.tmda/lists/white.db ok\n");
    let out = filter(&env, BOB, ME).run();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(maildir(&env, "Maildir").len(), 1);
    let out = filter(&env, "eve@spam.example", ME)
        .input(message("eve@spam.example", "hi", "buy\n"))
        .run();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(maildir(&env, "Maildir").len(), 1);
    let log = std::fs::read_to_string(env.path(".tmda/incoming.log")).unwrap();
    assert!(log.contains("Actn: DROP (from-dbm "), "{log}");
    // A damaged GDBM file is a temporary failure naming what is wrong.
    std::fs::write(env.path(".tmda/lists/gdbm.db"), b"\xce\x9a\x57\x13gdbm").unwrap();
    write_filter(&env, "from-dbm ~/.tmda/lists/gdbm.db ok\n");
    let out = filter(&env, BOB, ME).run();
    assert_eq!(out.status.code(), Some(75));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gdbm.db: a damaged GDBM file"), "{err}");
}

/// `from-dbm` with the binary lists TMDA users have: a GDBM file (Python's dbm.gnu) and a
/// Berkeley DB hash file (what Python 2's anydbm wrote; made here with db5.3_load). In
/// each, a listed address is delivered and a listed domain's value (drop) decides.
#[test]
fn from_dbm_gdbm_and_berkeley_db_lists() {
    let env = home("");
    let lists = env.path(".tmda/lists");
    std::fs::create_dir_all(&lists).unwrap();
    let script = "import dbm.gnu, sys\n\
                  db = dbm.gnu.open(sys.argv[1], 'n')\n\
                  for i in range(300):\n\
                  \x20   db[b'user%d@x.org' % i] = b'hold'\n\
                  db[b'bob@x.org'] = b''\n\
                  db[b'spam.example'] = b'drop'\n\
                  db.close()\n";
    // Debian's python3 has dbm.gnu (package python3-gdbm); a python3 earlier on PATH may not.
    let wrote = ["python3", "/usr/bin/python3"].iter().any(|python| {
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(lists.join("gdbm"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert!(
        wrote,
        "no python3 with dbm.gnu: install the Debian package python3-gdbm (scripts/deps.sh)"
    );
    std::fs::write(lists.join("bdb.txt"), "carol@y.org\n\nspam.example\ndrop\n").unwrap();
    let st = std::process::Command::new("db5.3_load")
        .args(["-T", "-t", "hash", "-f"])
        .arg(lists.join("bdb.txt"))
        .arg(lists.join("bdb"))
        .status()
        .expect("db5.3_load runs: install the Debian package db5.3-util (scripts/deps.sh)");
    assert!(st.success());
    let mut delivered = 0;
    for (list, friend) in [("gdbm", BOB), ("bdb", "carol@y.org")] {
        write_filter(&env, &format!("from-dbm ~/.tmda/lists/{list} ok\n"));
        let out = filter(&env, friend, ME).input(message(friend, "hello", "Hi.\n")).run();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{list}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        delivered += 1;
        assert_eq!(maildir(&env, "Maildir").len(), delivered, "{list}");
        let out = filter(&env, "eve@spam.example", ME)
            .input(message("eve@spam.example", "hi", "buy\n"))
            .run();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{list}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(maildir(&env, "Maildir").len(), delivered, "{list}");
        assert!(
            pending(&env).is_empty(),
            "{list}: the stranger was dropped, not challenged"
        );
        let log = std::fs::read_to_string(env.path(".tmda/incoming.log")).unwrap();
        assert!(
            log.contains(&format!("Actn: DROP (from-dbm {} drop)", lists.join(list).display())),
            "{log}"
        );
    }
}

/// A header block over 1 MiB (TMDA reads one of any size). The filter decides on the
/// whole fields within the first MiB; the rest of the header is kept, after an empty
/// line, at the top of the body, so nothing is lost and nothing is deferred for ever
/// with 75 (which made the MTA bounce it days later). `tmda pending` lists, shows and
/// releases such a held message.
#[test]
fn a_header_over_a_mebibyte_is_filtered_on_its_first_mebibyte() {
    let env = home("");
    write_filter(&env, "from bob@x.org ok\n");
    let mut many = b"From: Bob <bob@x.org>\nSubject: many fields\n".to_vec();
    for i in 0..120_000 {
        many.extend_from_slice(format!("X-H{i}: value\n").as_bytes());
    }
    many.extend_from_slice(b"X-Folded: a\n\tb\n\nbody\n");
    let mut long = b"X-Long: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 3 << 20));
    long.extend_from_slice(b"\nFrom: bob@x.org\n\nbody\n");
    // A field folded across the cut: it goes to the body whole, not half of it.
    let mut folded = b"From: bob@x.org\n".to_vec();
    for _ in 0..200_000 {
        folded.extend_from_slice(b"X-Fold: a\n\tcontinued\n");
    }
    folded.extend_from_slice(b"\nbody\n");
    for (what, input) in [
        ("many fields", many.clone()),
        ("one 3 MB field", long),
        ("folded", folded),
    ] {
        let out = filter(&env, BOB, ME).input(input.clone()).run();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = maildir(&env, "Maildir");
        assert_eq!(got.len(), 1, "{what}");
        assert!(is_whole_copy(&got[0], &input), "{what}: not a whole copy");
        // The header block as delivered, and where the body starts.
        let split = match got[0].strip_prefix(b"\n") {
            Some(_) => 0,
            None => got[0].windows(2).position(|w| w == b"\n\n").unwrap() + 1,
        };
        assert!(split <= 1 << 20, "{what}: a header of {split} bytes");
        assert!(
            !got[0][split + 1..].starts_with(b"\t"),
            "{what}: a field was cut in two"
        );
        for e in std::fs::read_dir(env.path("Maildir/new")).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
    // A stranger's: held and challenged, then listed and released by tmda pending.
    let stranger = [b"From: stranger@q.net\n".to_vec(), many[22..].to_vec()].concat();
    let out = filter(&env, "stranger@q.net", ME).input(stranger.clone()).run();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let held = pending(&env);
    assert_eq!(held.len(), 1, "held");
    assert_eq!(sent(&env).len(), 1, "one challenge");
    let id = held[0].trim_end_matches(".msg").to_string();
    let pending_run = |args: &[&str]| {
        let out = env
            .std_tmda()
            .arg("pending")
            .args(args)
            .env("TMDA_NOW", NOW.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(pending_run(&["-b", "-T"]).contains(&id), "listed");
    pending_run(&["-b", "-r", &id]);
    let released = sent(&env);
    assert_eq!(released.len(), 2, "released through the transport");
    assert!(released[1].1.contains("X-H119999: value"), "the whole header went out");
    pending_run(&["-b", "-d", &id]);
    assert!(pending(&env).is_empty(), "deleted");
}
