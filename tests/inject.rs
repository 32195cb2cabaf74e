//! The outgoing pipeline through the library API with a recording transport:
//! one test per action and header rule, with a pinned clock and the TMDA test key.

use std::path::{Path, PathBuf};

use tmda::address::tag;
use tmda::config::{Config, Namespace};
use tmda::filter::{self, Filter};
use tmda::inject::{InjectError, Injector, Options};
use tmda::key::CryptKey;
use tmda::message::Message;
use tmda::transport::{DeliveryError, Stub};

use crate::util::KEY;

const NOW: u64 = 1262937386;

struct Setup {
    dir: tempfile::TempDir,
    config: Config,
    filter: Filter,
}

fn setup(config_text: &str, filter_text: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("crypt_key");
    std::fs::write(&key, KEY).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&key).unwrap().permissions(), 0o600);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut ns = Namespace::with_builtins();
    let text = format!(
        "USERNAME = 'jason'\nHOSTNAME = 'example.com'\nFULLNAME = 'Jason Mastaler'\nCRYPT_KEY_FILE = '{}'\nDIR = '{}'\n{config_text}",
        key.display(),
        dir.path().display()
    );
    tmda::config::python::exec(&text, Path::new("config"), &mut ns).unwrap();
    let config = Config::from_namespace(ns, vec![]).unwrap();
    let filter_path = dir.path().join("outgoing");
    std::fs::write(
        &filter_path,
        filter_text.replace("$DIR", &dir.path().display().to_string()),
    )
    .unwrap();
    let filter = filter::parse_file(&filter_path, &|n| config.var(n).map(|v| v.py_str())).unwrap();
    Setup { dir, config, filter }
}

impl Setup {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, msg: &str, opts: &Options) -> Result<Vec<(String, String, String)>, InjectError> {
        let m = Message::read_from(msg.as_bytes()).unwrap();
        let mut stub = Stub::default();
        let mut inj = Injector::new(&self.config, &self.filter, NOW);
        inj.pid = 12345;
        inj.inject(&m, opts, &mut stub)?;
        Ok(stub
            .sent
            .into_iter()
            .map(|(s, r, b)| (s, r, String::from_utf8(b).unwrap()))
            .collect())
    }

    fn send(&self, msg: &str) -> Vec<(String, String, String)> {
        self.run(msg, &Options::default()).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn key() -> CryptKey {
    CryptKey::from_hex(KEY, Path::new("k")).unwrap()
}

fn header_of(copy: &str, name: &str) -> Option<String> {
    let head = copy.split("\n\n").next().unwrap();
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

const MSG: &str = "From: Jason <jason@example.com>\nTo: a@x.org\nSubject: hi\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <m@x>\n\nbody\n";

fn dated() -> String {
    format!(
        "jason-dated-{}@example.com",
        tag::dated_cookie(&key(), 3, NOW + 5 * 86400)
    )
}

#[test]
fn default_action_is_dated_for_from_and_envelope() {
    let s = setup("", "");
    let sent = s.send(MSG);
    assert_eq!(sent.len(), 1);
    let (sender, rcpt, copy) = &sent[0];
    assert_eq!(sender, "jason-dated-1263369386.df2137@example.com");
    assert_eq!(*sender, dated());
    assert_eq!(rcpt, "a@x.org");
    assert_eq!(header_of(copy, "From").unwrap(), format!("Jason <{sender}>"));
    assert!(copy.ends_with("\n\nbody\n"));
}

#[test]
fn every_cookie_action() {
    let s = setup(
        "ACTION_OUTGOING = 'bare'\nBARE_APPEND = DIR + '/whitelist'",
        "to bare@x bare\nto append@x bare=append\nto sender@x sender\nto sendero@x sender=other@y.org\n\
         to domain@sub.x domain\nto domaino@x domain=corp.com\nto dated@x dated=1m\nto exp@x exp=me@elsewhere.org\n\
         to ext@x ext=lists\nto kw@x kw=Lists\nto default@x default\nto shell@x tag from shell=\"echo $TMDA_RECIPIENT-shell@x\"\n",
    );
    let k = key();
    let rcpts = [
        ("bare@x", "jason@example.com".to_string()),
        ("append@x", "jason@example.com".to_string()),
        (
            "sender@x",
            format!("jason-sender-{}@example.com", tag::sender_cookie(&k, 3, "sender@x")),
        ),
        (
            "sendero@x",
            format!("jason-sender-{}@example.com", tag::sender_cookie(&k, 3, "other@y.org")),
        ),
        (
            "domain@sub.x",
            format!("jason-sender-{}@example.com", tag::sender_cookie(&k, 3, "sub.x")),
        ),
        (
            "domaino@x",
            format!("jason-sender-{}@example.com", tag::sender_cookie(&k, 3, "corp.com")),
        ),
        ("dated@x", "jason-dated-1262937446.926a58@example.com".to_string()),
        ("exp@x", "me@elsewhere.org".to_string()),
        ("ext@x", "jason-lists@example.com".to_string()),
        (
            "kw@x",
            format!("jason-keyword-{}@example.com", tag::keyword_cookie(&k, 3, "lists", "-")),
        ),
        ("default@x", "jason@example.com".to_string()),
        ("shell@x", "shell@x-shell@x".to_string()),
    ];
    let args: Vec<String> = rcpts.iter().map(|(r, _)| r.to_string()).collect();
    let sent = s
        .run(
            MSG,
            &Options {
                recipients: args,
                ..Default::default()
            },
        )
        .unwrap();
    for ((sender, rcpt, copy), (want_rcpt, want)) in sent.iter().zip(&rcpts) {
        assert_eq!(rcpt, want_rcpt);
        assert_eq!(sender, want, "envelope for {rcpt}");
        assert_eq!(
            header_of(copy, "From").unwrap(),
            format!("Jason <{want}>"),
            "From for {rcpt}"
        );
    }
    assert_eq!(std::fs::read_to_string(s.path("whitelist")).unwrap(), "append@x\n");
    // Sending again does not duplicate the whitelist entry (case-insensitive).
    s.run(
        MSG,
        &Options {
            recipients: vec!["APPEND@x".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(s.path("whitelist")).unwrap(), "append@x\n");
}

#[test]
fn tag_rule_sets_envelope_and_other_headers() {
    let s = setup(
        "",
        "to list@x tag from kw=list envelope bare reply-to sender x-list-thing \"literal text\" resent-from dated\n",
    );
    let msg = "From: jason@example.com\nTo: list@x\nReply-To: old@example.com\nSubject: s\n\nb\n";
    let sent = s.send(msg);
    let (sender, _, copy) = &sent[0];
    assert_eq!(sender, "jason@example.com", "envelope bare");
    let kw = format!(
        "jason-keyword-{}@example.com",
        tag::keyword_cookie(&key(), 3, "list", "-")
    );
    assert_eq!(header_of(copy, "From").unwrap(), format!("Jason Mastaler <{kw}>"));
    let snd = format!("jason-sender-{}@example.com", tag::sender_cookie(&key(), 3, "list@x"));
    assert_eq!(header_of(copy, "Reply-To").unwrap(), format!("Jason Mastaler <{snd}>"));
    assert_eq!(header_of(copy, "X-List-Thing").unwrap(), "literal text");
    // Reply-To was replaced where it stood; only one remains.
    assert_eq!(copy.matches("Reply-To:").count(), 1);
    let names: Vec<&str> = copy
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n))
        .collect();
    assert_eq!(names[..5], ["Received", "From", "To", "Reply-To", "Subject"]);
}

#[test]
fn each_copy_starts_from_the_original_header() {
    let s = setup("", "to first@x tag from bare reply-to sender\nto second@x bare\n");
    let msg = "From: jason@example.com\nTo: first@x, second@x\nReply-To: keep@example.com\n\nb\n";
    let sent = s.send(msg);
    assert_ne!(header_of(&sent[0].2, "Reply-To").unwrap(), "keep@example.com");
    assert_eq!(
        header_of(&sent[1].2, "Reply-To").unwrap(),
        "keep@example.com",
        "TMDA lost it here; we keep it"
    );
}

#[test]
fn resending_tags_resent_from_and_uses_resent_recipients() {
    let s = setup("", "");
    let msg = "From: someone@else.org\nTo: orig@x\nResent-From: Jason <jason@example.com>\nResent-To: fwd@y.org\nResent-Bcc: secret@y.org\n\nb\n";
    let sent = s.send(msg);
    assert_eq!(
        sent.iter().map(|c| c.1.as_str()).collect::<Vec<_>>(),
        vec!["fwd@y.org", "secret@y.org"]
    );
    let copy = &sent[0].2;
    assert_eq!(header_of(copy, "Resent-From").unwrap(), format!("Jason <{}>", dated()));
    assert_eq!(header_of(copy, "From").unwrap(), "someone@else.org");
    assert!(
        header_of(copy, "Resent-Bcc").is_none(),
        "Resent-Bcc is purged by default"
    );
}

#[test]
fn recipients_from_headers_bcc_purged() {
    let s = setup("", "");
    let msg = "From: jason@example.com\nTo: \"A, B\" <a@x.org>, undisclosed:;\nCc: c@x.org\nBcc: hidden@x.org\nApparently-To: app@x.org\n\nb\n";
    let sent = s.send(msg);
    assert_eq!(
        sent.iter().map(|c| c.1.as_str()).collect::<Vec<_>>(),
        vec!["a@x.org", "c@x.org", "hidden@x.org", "app@x.org"]
    );
    assert!(
        sent.iter()
            .all(|c| !c.2.contains("Bcc:") && !c.2.contains("hidden@x.org\n"))
    );
}

#[test]
fn no_recipients_is_an_error() {
    let s = setup("", "");
    let e = s
        .run("From: jason@example.com\nSubject: x\n\nb\n", &Options::default())
        .unwrap_err();
    assert!(matches!(e, InjectError::NoRecipients));
    assert_eq!(e.exit_code() as u8, 65);
}

#[test]
fn x_tmda_header_overrides_filter_and_is_removed() {
    let s = setup("", "to a@x.org bare\n");
    let sent = s.send(&MSG.replace("Subject: hi\n", "Subject: hi\nX-TMDA: sender=boss@corp.com\n"));
    let want = format!(
        "jason-sender-{}@example.com",
        tag::sender_cookie(&key(), 3, "boss@corp.com")
    );
    assert_eq!(sent[0].0, want);
    assert!(!sent[0].2.contains("X-TMDA"));
    let e = s
        .run(&MSG.replace("Subject: hi\n", "X-TMDA: dated 5d\n"), &Options::default())
        .unwrap_err();
    assert!(e.to_string().contains("expected one action"), "{e}");
    let e = s
        .run(
            &MSG.replace("Subject: hi\n", "X-TMDA: frobnicate\n"),
            &Options::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("unknown action"), "{e}");
}

#[test]
fn x_tmda_in_subject() {
    let s = setup("X_TMDA_IN_SUBJECT = True", "to a@x.org bare\n");
    let sent = s.send(&MSG.replace("Subject: hi", "Subject:   X-TMDA   dated=1m  Re: You're fired!"));
    assert_eq!(sent[0].0, "jason-dated-1262937446.926a58@example.com");
    assert_eq!(header_of(&sent[0].2, "Subject").unwrap(), "Re: You're fired!");
    // Without the setting the subject is left alone.
    let s = setup("", "to a@x.org bare\n");
    let sent = s.send(&MSG.replace("Subject: hi", "Subject: X-TMDA dated=1m x"));
    assert_eq!(header_of(&sent[0].2, "Subject").unwrap(), "X-TMDA dated=1m x");
}

#[test]
fn a_message_header_cannot_choose_a_shell_command() {
    // A bounced message, or one another user submitted, carries its own X-TMDA header.
    let s = setup(
        "X_TMDA_IN_SUBJECT = True",
        "to a@x.org tag from shell=\"echo shell@x\"\n",
    );
    let marker = s.path("ran");
    for msg in [
        MSG.replace(
            "Subject: hi\n",
            &format!("X-TMDA: shell=touch${{IFS}}{}\n", marker.display()),
        ),
        MSG.replace(
            "Subject: hi",
            &format!("Subject: X-TMDA shell=touch${{IFS}}{} hi", marker.display()),
        ),
    ] {
        let e = s.run(&msg, &Options::default()).unwrap_err();
        assert!(
            e.to_string().contains("shell= actions are refused in a message header"),
            "{e}"
        );
        assert_eq!(e.exit_code() as u8, 65);
    }
    assert!(!marker.exists(), "the header's command ran");
    // The filter's own shell= rule still runs.
    let sent = s.send(MSG);
    assert_eq!(sent[0].0, "shell@x");
}

#[test]
fn a_shell_action_that_never_stops_talking_is_an_error() {
    let s = setup("", "to a@x.org tag reply-to shell=\"yes\"\n");
    let e = s.run(MSG, &Options::default()).unwrap_err();
    assert!(e.to_string().contains("more than 65536 bytes of output"), "{e}");
}

#[test]
fn an_address_with_a_control_character_is_refused_before_anything_is_sent() {
    // A bare CR from a header would end the relay's RCPT command early.
    let s = setup("", "");
    for msg in [
        "From: jason@example.com\nTo: \"a\rRCPT TO:<evil@x>\"@x.org\n\nb\n",
        "From: \"j\rx\"@example.com\nTo: a@x.org\n\nb\n",
    ] {
        let mut stub = Stub::default();
        let m = Message::read_from(msg.as_bytes()).unwrap();
        let e = Injector::new(&s.config, &s.filter, NOW)
            .inject(&m, &Options::default(), &mut stub)
            .unwrap_err();
        assert!(e.to_string().contains("contains a control character"), "{msg:?}: {e}");
        assert!(stub.sent.is_empty());
    }
}

#[test]
fn date_and_message_id() {
    let s = setup("", "");
    let bare = "From: jason@example.com\nTo: a@x.org\n\nb\n";
    let copy = &s.send(bare)[0].2;
    assert!(
        header_of(copy, "Date").unwrap().ends_with(" 2010 07:56:26 +0000")
            || header_of(copy, "Date").unwrap().contains("2010")
    );
    assert!(
        header_of(copy, "Message-ID")
            .unwrap()
            .starts_with("<1262937386.12345.TMDA@")
    );
    // Present ones are kept unless TMDAINJECT says otherwise.
    let copy = &s.send(MSG)[0].2;
    assert_eq!(header_of(copy, "Message-ID").unwrap(), "<m@x>");
    assert_eq!(header_of(copy, "Date").unwrap(), "Mon, 1 Jan 2024 00:00:00 +0000");
    let s = setup(
        "TMDAINJECT = 'di'\nos.environ['TMDAIDHOST'] = 'id.example.com'\nos.environ['TMDAIDTAG'] = 'TAG'",
        "",
    );
    let copy = &s.send(MSG)[0].2;
    assert_eq!(
        header_of(copy, "Message-ID").unwrap(),
        "<1262937386.12345.TAG@id.example.com>"
    );
    assert_ne!(header_of(copy, "Date").unwrap(), "Mon, 1 Jan 2024 00:00:00 +0000");
    assert_eq!(copy.matches("Message-ID:").count(), 1);
    assert!(header_of(copy, "X-Delivery-Agent").unwrap().starts_with("tmda/"));
}

#[test]
fn received_header_first() {
    let s = setup("", "");
    let copy = &s.send(MSG)[0].2;
    assert!(copy.starts_with("Received: by "), "{copy}");
    assert!(copy.lines().next().unwrap().contains("(tmda-sendmail, from uid "));
    let sent = s
        .run(
            MSG,
            &Options {
                received: Some("from helo (h [127.0.0.1]) by me (tmda-ofmipd)".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(
        sent[0]
            .2
            .starts_with("Received: from helo (h [127.0.0.1]) by me (tmda-ofmipd)\n")
    );
}

#[test]
fn mail_followup_to() {
    let s = setup("MAIL_FOLLOWUP_TO = ['List@lists.org']", "to list@lists.org kw=list\n");
    let msg = "From: jason@example.com\nTo: list@lists.org\nCc: Friend <f@x.org>\n\nb\n";
    let sent = s.send(msg);
    let kw = format!(
        "jason-keyword-{}@example.com",
        tag::keyword_cookie(&key(), 3, "list", "-")
    );
    assert_eq!(
        header_of(&sent[0].2, "Mail-Followup-To").unwrap(),
        "list@lists.org, f@x.org"
    );
    // An existing Mail-Followup-To has our own address tagged with the From tag.
    let msg = "From: jason@example.com\nTo: list@lists.org\nMail-Followup-To: list@lists.org, jason@example.com\n\nb\n";
    let sent = s.send(msg);
    assert_eq!(
        header_of(&sent[0].2, "Mail-Followup-To").unwrap(),
        format!("list@lists.org, {kw}")
    );
    // The list can also come from a file.
    let s = setup("MAIL_FOLLOWUP_TO = DIR + '/lists'", "");
    std::fs::write(s.path("lists"), "other@l.org\nlist@lists.org\n").unwrap();
    let sent = s.send("From: jason@example.com\nTo: list@lists.org\n\nb\n");
    assert_eq!(header_of(&sent[0].2, "Mail-Followup-To").unwrap(), "list@lists.org");
}

#[test]
fn fingerprint() {
    let s = setup(
        "FINGERPRINT = ['message-id', 'from', 'x-absent', 'body']",
        "to a@x.org bare\n",
    );
    let msg = "From: jason@example.com\r\nTo: a@x.org\r\nMessage-ID:  <m@x>\r\n\r\nline one\r\nline two\r\n";
    let copy = &s.send(msg)[0].2;
    // Header values as Python returns them; the body with LF line endings.
    // From is fingerprinted as rewritten (FULLNAME added), as in tmda-inject.
    let want = tag::fingerprint(
        &key(),
        &["<m@x>", "Jason Mastaler <jason@example.com>", "line one\nline two\n"],
    );
    assert_eq!(header_of(copy, "X-TMDA-Fingerprint").unwrap(), want);
}

#[test]
fn fingerprint_of_each_copy_or_shared_by_all() {
    let msg = "From: jason@example.com\nTo: a@x.org, b@x.org\n\nbody\n";
    // From is tagged per recipient, so each copy signs its own From.
    let s = setup("FINGERPRINT = ['from', 'body']", "to *@x.org sender\n");
    let sent = s.send(msg);
    let fps: Vec<String> = sent
        .iter()
        .map(|(_, _, copy)| {
            let from = header_of(copy, "From").unwrap();
            let fp = header_of(copy, "X-TMDA-Fingerprint").unwrap();
            assert_eq!(fp, tag::fingerprint(&key(), &[&from, "body\n"]), "{copy}");
            fp
        })
        .collect();
    assert_ne!(fps[0], fps[1]);
    // Naming no field a copy sets, it is the same for all (and the body is read once).
    let s = setup("FINGERPRINT = ['body']", "to *@x.org sender\n");
    let want = tag::fingerprint(&key(), &["body\n"]);
    for (_, _, copy) in s.send(msg) {
        assert_eq!(header_of(&copy, "X-TMDA-Fingerprint").unwrap(), want);
    }
}

#[test]
fn added_and_purged_headers() {
    let s = setup(
        "ADDED_HEADERS_CLIENT = {'X-Fact': 'Niagara', 'Organization': 'ACME'}\nPURGED_HEADERS_CLIENT = ['x-mailer', 'bcc']",
        "",
    );
    let msg = "From: jason@example.com\nTo: a@x.org\nBcc: b@x.org\nX-Mailer: Foo 1.0\nOrganization: Old\n\nb\n";
    let copy = &s.send(msg)[0].2;
    assert_eq!(header_of(copy, "X-Fact").unwrap(), "Niagara");
    assert_eq!(header_of(copy, "Organization").unwrap(), "ACME");
    assert_eq!(copy.matches("Organization").count(), 1);
    assert!(header_of(copy, "X-Mailer").is_none() && header_of(copy, "Bcc").is_none());
}

#[test]
fn from_styles_and_names() {
    let s = setup("MESSAGE_FROM_STYLE = 'address'", "to a@x.org bare\n");
    assert_eq!(header_of(&s.send(MSG)[0].2, "From").unwrap(), "jason@example.com");
    // No From at all: FULLNAME and USERNAME@HOSTNAME.
    let s = setup("FULLNAME = 'José Müller, Jr.'", "to a@x.org bare\n");
    let copy = &s.send("To: a@x.org\n\nb\n")[0].2;
    assert_eq!(
        header_of(copy, "From").unwrap(),
        "=?utf-8?b?Sm9zw6kgTcO8bGxlciwgSnIu?= <jason@example.com>"
    );
}

#[test]
fn untouched_bytes_stay_identical() {
    let s = setup("", "to a@x.org bare\n");
    let msg = "Received: from x\r\n\tby y; Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: jason@example.com\r\nTo: a@x.org\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n  folded\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\nbody \u{e9}\r\n.\r\n..\r\nend";
    let copy = &s.send(msg)[0].2;
    assert!(copy.contains("Received: from x\r\n\tby y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"));
    assert!(copy.contains("Subject: =?utf-8?q?h=C3=A9?=\r\n  folded\r\n"));
    assert!(copy.ends_with("\r\n\r\nbody \u{e9}\r\n.\r\n..\r\nend"), "{copy:?}");
    // New fields use the message's CRLF line endings.
    assert!(copy.starts_with("Received: by ") && copy.split("\r\n").next().unwrap().len() < 200);
    assert!(!copy.replace("\r\n", "").contains('\n'), "no bare LF introduced");
}

#[test]
fn logfile_outgoing() {
    let s = setup("LOGFILE_OUTGOING = DIR + '/out.log'", "to a@x.org sender\n");
    s.send(MSG);
    let log = std::fs::read_to_string(s.path("out.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].starts_with("Date: "));
    assert!(lines[1].starts_with("From: Jason <jason-sender-"));
    assert_eq!(lines[2], "  To: a@x.org");
    assert_eq!(lines[3], "Subj: hi");
    assert!(lines[4].starts_with("Actn: to a@x.org tag from sender"));
    assert!(lines[4].ends_with(&format!("({})", MSG.len())));
    assert_eq!(lines[4].len(), "Actn: ".len() + 72);
    assert_eq!(lines[5], "");
}

#[test]
fn qmailrcpts() {
    let s = setup("os.environ['QMAILRCPTS'] = 'One@X.org\\ntwo@y.org\\n'", "");
    let sent = s.send("From: jason@example.com\nTo: ignored@z\n\nb\n");
    assert_eq!(
        sent.iter().map(|c| c.1.as_str()).collect::<Vec<_>>(),
        vec!["one@x.org", "two@y.org"]
    );
}

/// TMDA stopped at the first failed copy, so later recipients were never tried.
#[test]
fn every_copy_is_tried_and_each_fate_reported() {
    let s = setup("", "");
    let m = Message::read_from("From: jason@example.com\nTo: a@x, b@x, c@x\n\nb\n".as_bytes()).unwrap();
    let mut stub = Stub {
        fail_at: Some((1, || DeliveryError::Smtp {
            server: "relay:25".into(),
            message: "451 4.2.2 try later".into(),
            transient: true,
            code: Some(451),
        })),
        ..Default::default()
    };
    let e = Injector::new(&s.config, &s.filter, NOW)
        .inject(&m, &Options::default(), &mut stub)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "delivered to a@x, c@x; not delivered to b@x: SMTP relay relay:25: 451 4.2.2 try later"
    );
    assert!(e.is_transient());
    assert_eq!(e.exit_code() as u8, 75);
    let sent: Vec<&str> = stub.sent.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(sent, ["a@x", "c@x"], "the copy after the failure was sent too");
    let tmda::inject::InjectError::Delivery(fates) = e else {
        panic!()
    };
    let lines: Vec<String> = fates.report().iter().map(|f| f.line()).collect();
    assert_eq!(
        lines,
        [
            "delivered to <a@x>",
            "not delivered to <b@x>: 4.2.2; smtp; 451 4.2.2 try later",
            "delivered to <c@x>"
        ]
    );
}

#[test]
fn bad_dated_option_and_missing_key() {
    let s = setup("", "to a@x.org dated=5x\n");
    let e = s.run(MSG, &Options::default()).unwrap_err();
    assert!(e.to_string().contains("dated=5x"), "{e}");
    // A bare-only setup needs no key at all.
    let s = setup("CRYPT_KEY_FILE = '/nonexistent/key'\nACTION_OUTGOING = 'bare'", "");
    assert_eq!(s.send(MSG)[0].0, "jason@example.com");
    let s = setup("CRYPT_KEY_FILE = '/nonexistent/key'", "");
    let e = s.run(MSG, &Options::default()).unwrap_err();
    assert!(e.to_string().contains("can't find key file /nonexistent/key"), "{e}");
}

#[test]
fn list_file_actions_and_cdb() {
    let s = setup("", "to-file $DIR/list dated\nto-cdb $DIR/db.cdb bare\n");
    std::fs::write(s.path("list"), "friend@x.org\nlists.org kw=lists\n").unwrap();
    tmda::filter::cdb::build(&s.path("db.cdb"), &[(b"cdb@y.org", b"exp=alias@example.com")]).unwrap();
    let sent = s
        .run(
            MSG,
            &Options {
                recipients: vec!["friend@x.org".into(), "a@lists.org".into(), "cdb@y.org".into()],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(sent[0].0, dated());
    assert!(sent[1].0.starts_with("jason-keyword-lists."));
    assert_eq!(sent[2].0, "alias@example.com");
}
