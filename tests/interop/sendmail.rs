//! `tmda sendmail` with real programs: mutt submits through it, it relays to
//! Postfix's smtp-sink over SMTP, or hands copies to msmtp as its sendmail program.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::peers::*;

const BODY: &str = "Hello,\n\n.this line starts with a dot\n.\nand a lone dot above.\nUnicode: caf\u{e9}\n";

#[test]
fn mutt_through_tmda_sendmail_to_smtp_sink() {
    let mutt = require("mutt", "mutt");
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let home = tmda_home(
        tmp.path(),
        &format!(
            "MAIL_TRANSPORT = 'smtp'\nSMTPHOST = '127.0.0.1:{}'\nFULLNAME = 'Test User'\n",
            sink.port
        ),
    );
    std::fs::write(
        home.join(".tmda/filters/outgoing"),
        "to *@=friends.org sender\nto list@lists.org kw=list\n",
    )
    .unwrap();
    let muttrc = tmp.path().join("muttrc");
    std::fs::write(
        &muttrc,
        format!(
            "set sendmail=\"{} sendmail\"\nset from=\"Test User <testuser@testsite.com>\"\nset use_from=yes\nset record=\"\"\nset charset=utf-8\nset send_charset=utf-8\n",
            tmda_bin().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(mutt)
        .args(["-n", "-F"])
        .arg(&muttrc)
        .args([
            "-s",
            "interop test",
            "-c",
            "bob@mail.friends.org",
            "-b",
            "secret@hidden.org",
            "--",
            "list@lists.org",
            "carol@else.net",
        ])
        .env("HOME", &home)
        .env("GLOBAL_TMDARC", home.join("none"))
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(BODY.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mutt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let got = sink.wait_for(4);
    let rcpts: Vec<&str> = got.iter().map(|s| s.rcpt_to.as_str()).collect();
    assert_eq!(
        rcpts,
        vec![
            "<bob@mail.friends.org>",
            "<carol@else.net>",
            "<list@lists.org>",
            "<secret@hidden.org>"
        ]
    );
    for s in &got {
        let from = header(&s.message, "From").unwrap();
        let envelope = s.mail_from.trim_matches(['<', '>']);
        assert_eq!(
            from,
            format!("Test User <{envelope}>"),
            "From and envelope sender agree"
        );
        assert!(
            !s.message.contains("Bcc:") && !s.message.contains("secret@hidden.org"),
            "Bcc removed: {}",
            s.message
        );
        assert_eq!(header(&s.message, "Subject").as_deref(), Some("interop test"));
        assert!(
            header(&s.message, "Received")
                .unwrap()
                .contains("(tmda-sendmail, from uid")
        );
        let body = s.message.split_once("\n\n").unwrap().1.replace("\r\n", "\n");
        assert!(
            body.starts_with("Hello,\n\n.this line starts with a dot\n.\nand a lone dot above.\n"),
            "body: {body:?}"
        );
        assert!(
            body.contains("caf\u{e9}") || body.contains("caf=E9") || body.contains("caf=C3=A9"),
            "{body:?}"
        );
    }
    let by = |r: &str| {
        got.iter()
            .find(|s| s.rcpt_to == r)
            .unwrap()
            .mail_from
            .trim_matches(['<', '>'])
            .to_string()
    };
    let bob = by("<bob@mail.friends.org>");
    assert!(bob.starts_with("testuser-sender-"), "{bob}");
    // The tag is for bob's own address: it verifies for him and for no one else.
    assert_tag_verifies(&bob, Some("bob@mail.friends.org"), &home);
    let list = by("<list@lists.org>");
    assert!(list.starts_with("testuser-keyword-list."), "{list}");
    assert_tag_verifies(&list, None, &home);
    let carol = by("<carol@else.net>");
    assert!(carol.starts_with("testuser-dated-"), "{carol}");
    assert_tag_verifies(&carol, None, &home);
}

#[test]
fn msmtp_as_sendmail_program() {
    let msmtp = require("msmtp", "msmtp");
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let home = tmda_home(
        tmp.path(),
        &format!(
            "SENDMAIL_PROGRAM = '{}'\nMAIL_TRANSFER_AGENT = 'sendmail'\n",
            msmtp.display()
        ),
    );
    let rc = home.join(".msmtprc");
    std::fs::write(
        &rc,
        format!(
            "account default\nhost 127.0.0.1\nport {}\nauth off\ntls off\nfrom testuser@testsite.com\n",
            sink.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let msg = format!(
        "From: Test User <testuser@testsite.com>\nTo: one@a.org, two@b.org\nBcc: three@c.org\nSubject: via msmtp\n\n{BODY}"
    );
    let out = Command::new(tmda_bin())
        .args(["sendmail", "-oi", "-t"])
        .env("HOME", &home)
        .env("GLOBAL_TMDARC", home.join("none"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(msg.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "tmda sendmail failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sink.wait_for(3);
    for s in &got {
        let env = s.mail_from.trim_matches(['<', '>']);
        assert!(
            env.starts_with("testuser-dated-") && env.ends_with("@testsite.com"),
            "{env}"
        );
        assert_tag_verifies(env, None, &home);
        assert_eq!(header(&s.message, "From").unwrap(), format!("Test User <{env}>"));
        assert!(!s.message.contains("Bcc:"));
        assert!(s.message.replace("\r\n", "\n").ends_with(BODY), "{:?}", s.message);
    }
}

#[test]
fn smtp_relay_down_keeps_the_message() {
    let tmp = shared_tempdir();
    let home = tmda_home(
        tmp.path(),
        &format!("MAIL_TRANSPORT = 'smtp'\nSMTPHOST = '127.0.0.1:{}'\n", free_port()),
    );
    let out = Command::new(tmda_bin())
        .args(["sendmail", "x@y.org"])
        .env("HOME", &home)
        .env("GLOBAL_TMDARC", home.join("none"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"Subject: x\n\nb\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(75),
        "EX_TEMPFAIL so the client keeps the message"
    );
}

fn send_one(home: &std::path::Path, rcpt: &str) -> std::process::Output {
    let mut c = Command::new(tmda_bin())
        .args(["sendmail", rcpt])
        .env("HOME", home)
        .env("GLOBAL_TMDARC", home.join("none"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(b"From: testuser@testsite.com\nSubject: tls\n\nover TLS\n")
        .unwrap();
    c.wait_with_output().unwrap()
}

#[test]
fn implicit_tls_relay_through_stunnel_verifies_certificates() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let (ca, cert, key) = test_certificates(tmp.path());
    let (tls_port, _stunnel) = stunnel(tmp.path(), &cert, &key, sink.port);
    let base = format!("MAIL_TRANSPORT = 'smtp'\nSMTPHOST = 'localhost:{tls_port}'\nSMTPSSL = 'implicit'\n");
    // Verification is on by default: the private CA is not trusted, nothing is sent.
    let home = tmda_home(tmp.path(), &base);
    let out = send_one(&home, "a@x.org");
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(sink.messages().is_empty());
    // Trusting the CA makes it work...
    let home = tmda_home(tmp.path(), &format!("{base}SMTPSSL_CAFILE = '{}'\n", ca.display()));
    let out = send_one(&home, "b@x.org");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // ... and so does the documented opt-out for a self-signed relay.
    let home = tmda_home(tmp.path(), &format!("{base}SMTPSSL_VERIFY = False\n"));
    let out = send_one(&home, "c@x.org");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = sink.wait_for(2);
    assert_eq!(got[0].rcpt_to, "<b@x.org>");
    assert!(got[0].message.ends_with("\n\nover TLS\n"));
}

#[test]
fn starttls_relay_through_postfix() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let (ca, cert, key) = test_certificates(tmp.path());
    let pfx = Postfix::start(tmp.path(), &cert, &key, sink.port);
    let home = tmda_home(
        tmp.path(),
        &format!(
            "MAIL_TRANSPORT = 'smtp'\nSMTPHOST = 'localhost:{}'\nSMTPSSL = True\nSMTPSSL_CAFILE = '{}'\n",
            pfx.port,
            ca.display()
        ),
    );
    let out = send_one(&home, "starttls@x.org");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = sink.wait_for(1);
    assert_eq!(got[0].rcpt_to, "<starttls@x.org>");
    let env = got[0].mail_from.trim_matches(['<', '>']).to_string();
    assert_tag_verifies(&env, None, &home);
    // Postfix records that the submission used TLS.
    assert!(
        got[0].message.contains("(Postfix) with ESMTPS"),
        "Postfix saw TLS: {}",
        got[0].message
    );
}
