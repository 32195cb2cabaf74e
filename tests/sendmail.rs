//! `tmda sendmail` through the real binary: a fake sendmail program and an
//! in-process SMTP server stand in for the MTA.

use predicates::str::contains;

use crate::util::fake_smtp::{FakeSmtp, Policy};
use crate::util::{NOW, TestEnv, fake_sendmail, fake_sendmail_outputs};

const MSG: &str = "From: Test User <testuser@testsite.com>\nTo: a@x.org, B <b@y.org>\nBcc: hidden@z.org\nSubject: hello\n\nbody line\n.\nlast\n";

fn sendmail_env() -> TestEnv {
    let env = TestEnv::new();
    let prog = fake_sendmail(&env);
    env.write_config(&format!(
        "USERNAME = 'testuser'\nHOSTNAME = 'testsite.com'\nSENDMAIL_PROGRAM = '{}'\nMAIL_TRANSFER_AGENT = 'postfix'\n",
        prog.display()
    ));
    env
}

#[test]
fn one_copy_per_recipient_via_sendmail_program() {
    let env = sendmail_env();
    env.tmda()
        .args(["sendmail", "-oi", "-t"])
        .env("TMDA_NOW", NOW)
        .write_stdin(MSG)
        .assert()
        .success()
        .stdout("");
    let out = fake_sendmail_outputs(&env);
    assert_eq!(out.len(), 3);
    let dated = "testuser-dated-1263369386.df2137@testsite.com";
    for ((args, msg), rcpt) in out.iter().zip(["a@x.org", "b@y.org", "hidden@z.org"]) {
        assert_eq!(*args, format!("ARGS: [-i] [-f] [{dated}] [--] [{rcpt}]"));
        assert!(msg.contains(&format!("\nFrom: Test User <{dated}>\n")), "{msg}");
        assert!(!msg.contains("Bcc:"));
        assert!(msg.ends_with("\n\nbody line\n.\nlast\n"), "body intact: {msg:?}");
    }
}

#[test]
fn recipients_from_arguments_and_symlink_names() {
    let env = sendmail_env();
    env.symlink_as("sendmail")
        .args(["-oem", "-oi", "-f", "x@y", "--", "only@x.org"])
        .write_stdin(MSG)
        .assert()
        .success();
    env.symlink_as("tmda-inject")
        .arg("second@x.org")
        .write_stdin(MSG)
        .assert()
        .success();
    env.symlink_as("tmda-sendmail")
        .arg("third@x.org")
        .write_stdin(MSG)
        .assert()
        .success();
    let rcpts: Vec<String> = fake_sendmail_outputs(&env)
        .into_iter()
        .map(|(a, _)| a.rsplit(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(rcpts, vec!["[only@x.org]", "[second@x.org]", "[third@x.org]"]);
}

#[test]
fn null_sender_rules_follow_the_mta() {
    let env = sendmail_env();
    env.write(".tmda/filters/outgoing", "to *@x.org tag envelope exp=<>\n");
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .success();
    assert!(
        fake_sendmail_outputs(&env)[0].0.starts_with("ARGS: [-i] [-f] [] [--]"),
        "postfix gets -f ''"
    );
    let cfg = std::fs::read_to_string(env.path(".tmda/config"))
        .unwrap()
        .replace("postfix", "sendmail");
    env.write_config(&cfg);
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .success();
    assert!(
        fake_sendmail_outputs(&env)[1]
            .0
            .starts_with("ARGS: [-i] [-f] [<>] [--]")
    );
}

#[test]
fn filter_match_option() {
    let env = sendmail_env();
    let f = env.write(".tmda/filters/outgoing", "to *@=corp.com sender\nfrom boss@* bare\n");
    let out = crate::util::stdout_of(env.tmda().args(["sendmail", "-M", "x@mail.corp.com", "me@home.org"]));
    let title = format!("Checking {}", f.display());
    let rule = "-".repeat(title.len());
    assert_eq!(
        out,
        format!(
            "{title}\n{rule}\nTo: x@mail.corp.com\nFrom: me@home.org\n{rule}\nMATCH: to *@=corp.com tag from sender\n"
        )
    );
    let out = crate::util::stdout_of(env.tmda().args(["sendmail", "-M", "x@else.org", "me@home.org"]));
    assert!(out.ends_with("Sorry, no matching lines.\n"));
    // -O names another filter.
    let other = env.write("other-filter", "to x@else.org kw=other\n");
    let out = crate::util::stdout_of(env.tmda().args(["sendmail", "-O"]).arg(&other).args([
        "-M",
        "x@else.org",
        "me@home.org",
    ]));
    assert!(out.ends_with("MATCH: to x@else.org tag from kw=other\n"), "{out}");
}

/// TMDA said only "Sorry, no matching lines." when the filter file was not there at all.
#[test]
fn filter_match_without_a_filter_file_says_so() {
    let env = sendmail_env();
    let f = env.path(".tmda/filters/outgoing");
    let out = crate::util::stdout_of(env.tmda().args(["sendmail", "-M", "x@else.org", "me@home.org"]));
    assert!(
        out.ends_with(&format!(
            "{} does not exist, so no rule matches.\nACTION_OUTGOING applies: dated (the default)\n",
            f.display()
        )),
        "{out}"
    );
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    let cfg_path = env.write_config(&format!("{cfg}ACTION_OUTGOING = 'bare'\n"));
    let out = crate::util::stdout_of(env.tmda().args(["sendmail", "-M", "x@else.org", "me@home.org"]));
    assert!(
        out.ends_with(&format!(
            "ACTION_OUTGOING applies: bare (set at {}:5)\n",
            cfg_path.display()
        )),
        "{out}"
    );
}

/// `-v` shows the conversation with the MTA, as `msmtp -v` and `sendmail -v` do; AUTH
/// data never.
#[test]
fn verbose_shows_the_smtp_dialogue_without_secrets() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let big = big_message();
    for (text, login_only) in [(MSG, false), (MSG, true), (big.as_str(), false)] {
        let server = FakeSmtp::start(Policy {
            auth: Some(("jason".into(), "s3cret".into())),
            login_only,
            ..Default::default()
        });
        let env = smtp_env(
            server.port,
            "SMTPAUTH_USERNAME = 'jason'\nSMTPAUTH_PASSWORD = 's3cret'\n",
        );
        let out = env
            .tmda()
            .args(["sendmail", "-v", "a@x.org"])
            .write_stdin(text)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        for want in [
            "--> EHLO ",
            "<-- 250-fake.example",
            "--> MAIL FROM:<testuser",
            "--> RCPT TO:<a@x.org>",
            "<-- 354 go ahead",
            "<-- 250 2.0.0 queued",
        ] {
            assert!(
                err.contains(want),
                "{want:?} missing ({} bytes, login only {login_only}):\n{err}",
                text.len()
            );
        }
        assert!(err.contains("<redacted>"), "{err}");
        for secret in ["s3cret", &b64("\0jason\0s3cret"), &b64("s3cret"), &b64("jason")] {
            assert!(!err.contains(secret), "{secret:?} shown:\n{err}");
        }
    }
    // Through the sendmail program: its command line and how it ended.
    let env = sendmail_env();
    let out = env
        .tmda()
        .args(["sendmail", "-v", "a@x.org"])
        .write_stdin(MSG)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fake-sendmail -i -f \"testuser-dated-") && err.contains("-- a@x.org\n<-- exit status: 0"),
        "{err}"
    );
    // Without -v, nothing.
    let out = env
        .tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn bad_filter_line_names_file_and_line() {
    let env = sendmail_env();
    let f = env.write(
        ".tmda/filters/outgoing",
        "to a@x.org bare\nto b@x.org frobnicate\nbody x bare\n",
    );
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(78)
        .stderr(contains(format!(
            "{}:2: \"to\": missing or bogus <action> field",
            f.display()
        )))
        .stderr(contains(format!(
            "{}:3: \"body\" rules only work in incoming filters",
            f.display()
        )));
    assert!(fake_sendmail_outputs(&env).is_empty(), "nothing sent");
}

#[test]
fn qfilter_exit_99() {
    let env = sendmail_env();
    env.tmda()
        .args(["sendmail", "-q", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(99);
    assert_eq!(fake_sendmail_outputs(&env).len(), 1);
}

#[test]
fn error_cases() {
    let env = sendmail_env();
    // Empty message.
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin("")
        .assert()
        .code(65)
        .stderr(contains("the message is empty"));
    // No recipients anywhere.
    env.tmda()
        .args(["sendmail", "-t"])
        .write_stdin("Subject: x\n\nb\n")
        .assert()
        .code(65)
        .stderr(contains("no recipients"));
    // Missing config named explicitly.
    env.tmda()
        .args(["sendmail", "-c", "/nonexistent/cfg", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(66)
        .stderr(contains("/nonexistent/cfg"));
    // Unreadable key (mode too wide).
    std::fs::set_permissions(
        env.path(".tmda/crypt_key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(77)
        .stderr(contains("must be chmod 400 or 600"));
    std::fs::set_permissions(
        env.path(".tmda/crypt_key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // Unsupported modes and options.
    env.tmda()
        .args(["sendmail", "-bs"])
        .assert()
        .code(64)
        .stderr(contains("-bs is not supported"));
    env.tmda()
        .args(["sendmail", "-Z"])
        .assert()
        .code(64)
        .stderr(contains("unknown option -Z"));
    assert!(fake_sendmail_outputs(&env).is_empty());
}

#[test]
fn program_refusing_or_deferring() {
    let env = sendmail_env();
    env.write("exit-code", "75");
    env.tmda()
        .args(["sendmail", "a@x.org", "b@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(75)
        .stderr(contains("not delivered to <a@x.org>: 4.0.0; x-unix; "))
        .stderr(contains("not delivered to <b@x.org>"))
        .stderr(contains("exited 75 (temporary failure): fake-sendmail: refusing"));
    env.write("exit-code", "67");
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(67)
        .stderr(contains("exited 67"));
    env.write("exit-code", "1");
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(69);
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    env.write_config(&cfg.replace("fake-sendmail", "no-such-program"));
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(69)
        .stderr(contains("cannot run"));
}

/// A sendmail program that refuses some recipients: b@ for good (67), c@ for now (75).
fn picky_sendmail_env() -> TestEnv {
    let env = sendmail_env();
    let prog = env.write(
        "bin/picky",
        "#!/bin/sh\nfor a; do r=$a; done\necho \"$r\" >> \"$(dirname \"$0\")/../tried\"\ncat >/dev/null\n\
         case $r in b@*) echo \"picky: $r: no such user\" >&2; exit 67;; c@*) echo 'picky: queue full' >&2; exit 75;; esac\n",
    );
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    env.write_config(&cfg.replace("fake-sendmail", "picky"));
    env
}

/// TMDA stopped at the first failed copy: with the second of three recipients refused,
/// the third was never tried. Every copy is tried, and each failure named with its reason.
#[test]
fn every_recipient_is_tried_and_every_failure_named() {
    let env = picky_sendmail_env();
    let out = env
        .tmda()
        .args(["sendmail", "-t"])
        .write_stdin("From: testuser@testsite.com\nTo: a@x.org, b@x.org, c@x.org, d@x.org\nSubject: s\n\nbody\n")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(67), "the worst status wins over 75: {err}");
    assert_eq!(
        std::fs::read_to_string(env.path("tried")).unwrap(),
        "a@x.org\nb@x.org\nc@x.org\nd@x.org\n"
    );
    for want in [
        "tmda sendmail: delivered to <a@x.org>\n",
        "tmda sendmail: not delivered to <b@x.org>: 5.1.1; x-unix; ",
        "exited 67: picky: b@x.org: no such user\n",
        "tmda sendmail: not delivered to <c@x.org>: 4.0.0; x-unix; ",
        "exited 75 (temporary failure): picky: queue full\n",
        "tmda sendmail: delivered to <d@x.org>\n",
    ] {
        assert!(err.contains(want), "{want:?} missing from:\n{err}");
    }
    // Only temporary failures: 75, so the mail client tries again.
    let out = env
        .tmda()
        .args(["sendmail", "a@x.org", "c@x.org"])
        .write_stdin(MSG)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_program_with_much_to_say_is_read_to_its_last_word() {
    // 300 KB on standard error before the verdict: more than a pipe holds.
    let env = sendmail_env();
    let prog = env.write(
        "bin/chatty",
        "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' x >&2\necho >&2\necho 'chatty: mailbox full' >&2\ncat >/dev/null\nexit 67\n",
    );
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    env.write_config(&cfg.replace("fake-sendmail", "chatty"));
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(67)
        .stderr(contains("chatty: mailbox full"));
}

#[test]
fn for_ofmipd_pure_proxy_a_user_without_config_is_passed_through_unaltered() {
    // Global-mode ofmipd runs tmda sendmail as the user; only that process can see
    // whether the user has a configuration.
    let env = TestEnv::bare();
    let prog = fake_sendmail(&env);
    env.tmda()
        .args(["sendmail", "--", "a@x.org"])
        .env("TMDA_OFMIPD_PURE_PROXY", "1")
        .env("TMDA_OFMIPD_MAIL_FROM", "sender@client.example")
        .env("TMDA_SENDMAIL_PROGRAM", &prog)
        .write_stdin(MSG)
        .assert()
        .success();
    let out = fake_sendmail_outputs(&env);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "ARGS: [-f] [sender@client.example] [-i] [--] [a@x.org]");
    assert_eq!(out[0].1, MSG, "unaltered");
    // A configuration named by ofmipd (--configdir) is used when it exists.
    let env = sendmail_env();
    let cfg = env.path(".tmda/config");
    let moved = env.path("elsewhere.config");
    std::fs::rename(&cfg, &moved).unwrap();
    env.tmda()
        .args(["sendmail", "--", "a@x.org"])
        .env("TMDA_OFMIPD_PURE_PROXY", "1")
        .env("TMDA_OFMIPD_CONFIG", &moved)
        .write_stdin(MSG)
        .assert()
        .success();
    let out = fake_sendmail_outputs(&env);
    assert!(
        out[0].0.contains("-dated-"),
        "tagged with the named config: {}",
        out[0].0
    );
}

/// MSG grown past 1 MB, so it is spooled to a file (and relayed by the streaming client).
fn big_message() -> String {
    let mut big = MSG.to_string();
    while big.len() <= 1024 * 1024 + 1000 {
        big.push_str("a line of a message large enough to be spooled to a file\n");
    }
    big
}

/// `tmda sendmail RCPT` with `text` through a fake relay with `policy`: the outcome,
/// and what the relay accepted.
fn sendmail_through(
    policy: Policy,
    rcpt: &str,
    text: &str,
) -> (std::process::Output, Vec<crate::util::fake_smtp::Transaction>) {
    let server = FakeSmtp::start(policy);
    let env = smtp_env(server.port, "");
    let out = env.tmda().args(["sendmail", rcpt]).write_stdin(text).output().unwrap();
    (out, server.transactions())
}

fn smtp_env(port: u16, extra: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&format!(
        "USERNAME = 'testuser'\nHOSTNAME = 'testsite.com'\nMAIL_TRANSPORT = 'smtp'\nSMTPHOST = '127.0.0.1:{port}'\n{extra}"
    ));
    env
}

#[test]
fn smtp_relay_reuses_one_connection_and_keeps_bytes() {
    let server = FakeSmtp::start(Policy::default());
    let env = smtp_env(server.port, "");
    let msg = "From: testuser@testsite.com\nTo: a@x.org, b@x.org, c@x.org\n\nline\n.leading dot\n\nend\n";
    env.tmda()
        .args(["sendmail", "-t"])
        .env("TMDA_NOW", NOW)
        .write_stdin(msg)
        .assert()
        .success();
    let t = server.transactions();
    assert_eq!(t.len(), 3);
    assert!(t.iter().all(|x| x.connection == 0), "one connection for all copies");
    for (x, rcpt) in t.iter().zip(["a@x.org", "b@x.org", "c@x.org"]) {
        assert_eq!(x.mail_from, "<testuser-dated-1263369386.df2137@testsite.com>");
        assert_eq!(x.rcpt_to, vec![format!("<{rcpt}>")]);
        let data = String::from_utf8(x.data.clone()).unwrap();
        // CRLF on the wire, dot-stuffed, and no extra blank line at the end.
        assert!(
            data.ends_with("\r\n\r\nline\r\n..leading dot\r\n\r\nend\r\n"),
            "{data:?}"
        );
        assert!(!data.replace("\r\n", "").contains('\n'));
    }
}

#[test]
fn smtp_session_limit_reconnects() {
    let server = FakeSmtp::start(Policy::default());
    let env = smtp_env(server.port, "SMTP_MAX_SESSIONS_PER_CONNECTION = 2\n");
    env.tmda()
        .args(["sendmail", "a@x.org", "b@x.org", "c@x.org"])
        .write_stdin(MSG)
        .assert()
        .success();
    let conns: Vec<usize> = server.transactions().iter().map(|t| t.connection).collect();
    assert_eq!(conns, vec![0, 0, 1]);
}

#[test]
fn smtp_auth() {
    let server = FakeSmtp::start(Policy {
        auth: Some(("jason".into(), "s3cret".into())),
        ..Default::default()
    });
    let env = smtp_env(
        server.port,
        "SMTPAUTH_USERNAME = 'jason'\nSMTPAUTH_PASSWORD = 's3cret'\n",
    );
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .success();
    let env = smtp_env(
        server.port,
        "SMTPAUTH_USERNAME = 'jason'\nSMTPAUTH_PASSWORD = 'wrong'\n",
    );
    let out = env
        .tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .output()
        .unwrap();
    // Deferred (75), not bounced: the message waits until the password is fixed.
    assert_eq!(out.status.code(), Some(75));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused SMTPAUTH_USERNAME/SMTPAUTH_PASSWORD"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong"), "password never printed");
    assert_eq!(server.transactions().len(), 1);
}

/// A relay that refuses our login fails every copy the same way, from one connection:
/// it is not dialled again for each recipient (both relay clients).
#[test]
fn an_unusable_relay_fails_every_recipient_at_once() {
    let big = big_message();
    for text in [MSG, big.as_str()] {
        let server = FakeSmtp::start(Policy {
            auth: Some(("jason".into(), "s3cret".into())),
            ..Default::default()
        });
        let env = smtp_env(
            server.port,
            "SMTPAUTH_USERNAME = 'jason'\nSMTPAUTH_PASSWORD = 'wrong'\n",
        );
        let out = env
            .tmda()
            .args(["sendmail", "a@x.org", "b@x.org", "c@x.org"])
            .write_stdin(text)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(75), "{err}");
        for r in ["a", "b", "c"] {
            assert!(err.contains(&format!("not delivered to <{r}@x.org>: 4.")), "{r}: {err}");
        }
        assert_eq!(*server.connections.lock().unwrap(), 1, "{err}");
    }
}

#[test]
fn smtp_upstream_refusing_and_down() {
    let server = FakeSmtp::start(Policy {
        reject_rcpt: Some(("bad@".into(), "550 5.1.1 no such user".into())),
        ..Default::default()
    });
    let env = smtp_env(server.port, "");
    env.tmda()
        .args(["sendmail", "ok@x.org", "bad@x.org", "later@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(67)
        .stderr(contains("delivered to <ok@x.org>\n"))
        .stderr(contains(
            "not delivered to <bad@x.org>: 5.1.1; smtp; 550 5.1.1 no such user\n",
        ))
        .stderr(contains("delivered to <later@x.org>\n"));
    assert_eq!(
        server.transactions().len(),
        2,
        "the copy after the refusal went out too"
    );
    let server = FakeSmtp::start(Policy {
        mail_reply: Some("451 4.3.0 try again later".into()),
        ..Default::default()
    });
    let env = smtp_env(server.port, "");
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(75)
        .stderr(contains("try again later"));
    // Nothing listening: a transient failure, the message is not lost.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = smtp_env(port, "");
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(75)
        .stderr(contains("SMTP relay 127.0.0.1"));
}

#[test]
fn smtp_pipelining_only_when_offered_and_refusals_still_reported() {
    // A message over 1 MB goes through the streaming client (lettre), which asks EHLO a
    // second time to learn of PIPELINING; smaller ones through the async client, which
    // asks once.
    let big = big_message();
    // (message, advertised, the server refuses a second EHLO, pipelined)
    for (text, advertised, single_ehlo, pipelined) in [
        (MSG, false, false, false),
        (MSG, true, false, true),
        (MSG, true, true, true),
        (big.as_str(), false, false, false),
        (big.as_str(), true, false, true),
        (big.as_str(), true, true, false),
    ] {
        let server = FakeSmtp::start(Policy {
            pipelining: advertised,
            single_ehlo,
            ..Default::default()
        });
        let env = smtp_env(server.port, "");
        env.tmda()
            .args(["sendmail", "a@x.org", "b@x.org"])
            .write_stdin(text)
            .assert()
            .success();
        let t = server.transactions();
        assert_eq!(t.len(), 2);
        assert!(
            t.iter().all(|x| x.pipelined == pipelined),
            "{:?}",
            (text.len(), advertised, single_ehlo)
        );
        assert!(String::from_utf8_lossy(&t[1].data).ends_with("\r\n"));
    }
    // A refused RCPT among pipelined commands: its reply is the one reported, and the
    // 354 that this (careless) server still gives DATA does not send the message.
    let server = FakeSmtp::start(Policy {
        pipelining: true,
        reject_rcpt: Some(("bad@".into(), "550 5.1.1 no such user".into())),
        ..Default::default()
    });
    let env = smtp_env(server.port, "");
    env.tmda()
        .args(["sendmail", "ok@x.org", "bad@x.org"])
        .write_stdin(MSG)
        // Well under the 60 s relay timeout: hanging up must not wait for a QUIT reply.
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(67)
        .stderr(contains("delivered to <ok@x.org>"))
        .stderr(contains(
            "not delivered to <bad@x.org>: 5.1.1; smtp; 550 5.1.1 no such user",
        ));
    let t = server.transactions();
    assert_eq!(
        t.iter().map(|x| x.rcpt_to.clone()).collect::<Vec<_>>(),
        vec![vec!["<ok@x.org>".to_string()]]
    );
    // A refused MAIL: the first refusal wins over the replies that follow it.
    let server = FakeSmtp::start(Policy {
        pipelining: true,
        mail_reply: Some("451 4.3.0 try again later".into()),
        ..Default::default()
    });
    let env = smtp_env(server.port, "");
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(75)
        .stderr(contains("try again later"));
    assert!(server.transactions().is_empty());
}

#[test]
fn smtp_starttls_required_but_not_offered() {
    let server = FakeSmtp::start(Policy::default());
    let env = smtp_env(server.port, "SMTPSSL = True\n");
    env.tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .assert()
        .code(75)
        .stderr(contains("does not offer STARTTLS"));
    assert!(server.transactions().is_empty(), "never sent in the clear");
}

#[test]
fn large_message_streams_through() {
    let env = sendmail_env();
    let mut msg = String::from("From: testuser@testsite.com\nTo: a@x.org\n\n");
    let line = "0123456789abcdefghijklmnopqrstuvwxyz\n";
    while msg.len() < 3 * 1024 * 1024 {
        msg.push_str(line);
    }
    env.tmda()
        .args(["sendmail", "-t"])
        .write_stdin(msg.clone())
        .assert()
        .success();
    let out = fake_sendmail_outputs(&env);
    let body = out[0].1.split_once("\n\n").unwrap().1;
    assert_eq!(body, msg.split_once("\n\n").unwrap().1);
}

#[test]
fn smtp_non_ascii_recipient_needs_a_relay_with_smtputf8() {
    for offered in [true, false] {
        let (out, t) = sendmail_through(
            Policy {
                smtputf8: offered,
                ..Default::default()
            },
            "j\u{f6}rg@b\u{fc}cher.example",
            "From: testuser@testsite.com\nSubject: x\n\nbody\n",
        );
        if offered {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(t[0].mail_params.split(' ').any(|p| p == "SMTPUTF8"), "{t:?}");
        } else {
            assert_eq!(out.status.code(), Some(69));
            assert!(String::from_utf8_lossy(&out.stderr).contains("does not offer it"));
            assert!(t.is_empty());
        }
    }
}

#[test]
fn smtp_eight_bit_text_needs_8bitmime() {
    for seven_bit_only in [false, true] {
        let (out, t) = sendmail_through(
            Policy {
                seven_bit_only,
                ..Default::default()
            },
            "a@x.org",
            "From: testuser@testsite.com\nSubject: x\n\ngr\u{fc}\u{df}e\n",
        );
        if seven_bit_only {
            assert_eq!(out.status.code(), Some(69));
            assert!(String::from_utf8_lossy(&out.stderr).contains("8BITMIME"));
            assert!(t.is_empty());
        } else {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(t[0].mail_params, "BODY=8BITMIME");
        }
    }
}

#[test]
fn smtp_relay_without_esmtp() {
    let (out, t) = sendmail_through(
        Policy {
            helo_only: true,
            ..Default::default()
        },
        "a@x.org",
        "From: testuser@testsite.com\nSubject: x\n\nold relay\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(t.len(), 1);
}

#[test]
fn smtp_auth_login_when_plain_is_not_offered() {
    let server = FakeSmtp::start(Policy {
        auth: Some(("jason".into(), "s3cret".into())),
        login_only: true,
        ..Default::default()
    });
    let env = smtp_env(
        server.port,
        "SMTPAUTH_USERNAME = 'jason'\nSMTPAUTH_PASSWORD = 's3cret'\n",
    );
    let big = big_message();
    // Both relay clients: the async one (small message) and lettre (spooled message).
    for text in [MSG, big.as_str()] {
        let out = env
            .tmda()
            .args(["sendmail", "a@x.org"])
            .write_stdin(text)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(server.transactions().len(), 2);
    let wrong = smtp_env(server.port, "SMTPAUTH_USERNAME = 'jason'\nSMTPAUTH_PASSWORD = 'nope'\n");
    let out = wrong
        .tmda()
        .args(["sendmail", "a@x.org"])
        .write_stdin(MSG)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.transactions().len(), 2);
}

#[test]
fn smtputf8_asked_for_by_ofmipd_in_global_mode() {
    // ofmipd's per-user children learn of the client's SMTPUTF8 from the environment.
    for offered in [true, false] {
        let server = FakeSmtp::start(Policy {
            smtputf8: offered,
            ..Default::default()
        });
        let env = smtp_env(server.port, "");
        let out = env
            .tmda()
            .env("TMDA_OFMIPD_SMTPUTF8", "1")
            .args(["sendmail", "a@x.org"])
            .write_stdin("From: testuser@testsite.com\nSubject: x\n\nbody\n")
            .output()
            .unwrap();
        let t = server.transactions();
        if offered {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(t[0].mail_params.split(' ').any(|p| p == "SMTPUTF8"), "{t:?}");
        } else {
            assert_eq!(out.status.code(), Some(69));
            assert!(t.is_empty());
        }
    }
}

/// `cmd` run to completion with `stdin`: its exit status and peak resident set in kB.
/// The peak is measured by GNU time, which starts the command from its own small
/// process: a child spawned straight from this (large, many-threaded) test process
/// reports in its ru_maxrss the peak of the memory it shared until exec, which is this
/// process's, so the test failed whenever other tests had grown it.
fn run_measured(cmd: std::process::Command, stdin: &[u8]) -> (i32, i64) {
    use std::io::Write as _;
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut timed = std::process::Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    if let Some(d) = cmd.get_current_dir() {
        timed.current_dir(d);
    }
    let mut child = timed
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("GNU time (Debian's time package, installed by scripts/deps.sh)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(report.path()).unwrap();
    let peak_kb = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {text:?}"));
    (status.code().unwrap_or(-1), peak_kb)
}

#[test]
fn many_recipients_hold_one_header_at_a_time() {
    // 300 copies of a 400 KB header: 120 MB if every copy's header were built up front.
    let server = FakeSmtp::start(Policy::default());
    let env = smtp_env(server.port, "");
    let mut msg = String::from("From: testuser@testsite.com\nSubject: big header\n");
    for _ in 0..400 {
        msg.push_str(&format!("X-Pad: {}\n", "p".repeat(1000)));
    }
    msg.push_str("\nbody\n");
    let rcpts: Vec<String> = (0..300).map(|i| format!("r{i}@x.org")).collect();
    let mut cmd = env.std_tmda();
    cmd.arg("sendmail").args(&rcpts);
    let (code, peak_kb) = run_measured(cmd, msg.as_bytes());
    assert_eq!(code, 0);
    assert_eq!(server.transactions().len(), 300);
    assert!(peak_kb < 48 * 1024, "tmda sendmail peaked at {peak_kb} kB");
}
