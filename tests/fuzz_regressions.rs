//! Inputs that once made a parser panic, kept so they never do again; see FUZZING.md
//! for the fuzz targets that look for more.
//!
//! Every crasher the fuzzers found is saved under fuzz/regressions/<target>/ and
//! replayed here through the very function the fuzz target runs (fuzz/src/lib.rs,
//! included below), together with the seed corpus in fuzz/seeds/<target>/; each also
//! has a test of its own below, saying what the right answer is.

use std::path::Path;

use tmda::smtp::session::Peer;
use tmda::smtp::{AuthOutcome, Input, Output, Policy, Session, TlsMode};

#[path = "../fuzz/src/lib.rs"]
mod harness;

/// Run every file under fuzz/<dir>/<target>/ through its target; returns how many.
fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut n = 0;
    for (target, run) in harness::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let name = path.display().to_string();
            if let Err(e) = std::panic::catch_unwind(|| run(&data)) {
                let why = e
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or(e.downcast_ref::<&str>().copied())
                    .unwrap_or("?");
                panic!("{name}: {why}");
            }
            n += 1;
        }
    }
    n
}

#[test]
fn the_seed_corpus_passes_every_target() {
    assert!(replay("seeds") >= 7, "the seed corpus is missing");
}

#[test]
fn every_saved_crasher_passes_its_target() {
    replay("regressions");
}

fn session() -> Session {
    Session::new(
        Policy {
            hostname: "mx.example".into(),
            tls: TlsMode::None,
            tls_auth_only: false,
            cram_md5: false,
            max_size: 1000,
            max_recipients: 10,
            max_auth_failures: 3,
        },
        Peer {
            ip: "192.0.2.7".into(),
            name: None,
        },
    )
}

/// The wire form of the reply to one line, which must be a plain reply.
fn reply_to(s: &mut Session, line: &[u8]) -> String {
    match s.handle(Input::Line(line)) {
        Output::Reply(r) => r.to_wire(),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(line)),
    }
}

// A multi-byte character where MAIL's or RCPT's keyword should end was sliced through
// and the session panicked (under -1 the whole process died). It is a syntax error.
// See: #10 (point 9).
#[test]
fn r10_non_ascii_in_mail_and_rcpt_keywords() {
    let lines = [
        "MAIL FROMé:",
        "MAIL FROMé:<a@b.c>",
        "RCPT TOé",
        "RCPT T\u{1f600}:<a@b.c>",
    ];
    let mut s = session();
    assert!(reply_to(&mut s, b"EHLO client.example").starts_with("250"));
    // Before AUTH, MAIL and RCPT are refused whatever their arguments.
    for line in lines {
        assert!(reply_to(&mut s, line.as_bytes()).starts_with("530 "), "{line:?}");
    }
    // After it, the arguments are read.
    let plain = b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ="; // \0alice\0wonderland
    assert!(matches!(s.handle(Input::Line(plain)), Output::Authenticate(_)));
    match s.handle(Input::AuthResult(AuthOutcome::Accepted)) {
        Output::Reply(r) => assert_eq!(r.code, 235),
        other => panic!("{other:?}"),
    }
    for (line, want) in [
        ("MAIL FROMé:", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
        ("MAIL FROMé:<a@b.c>", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
        ("RCPT TOé", "501 5.5.4 Syntax: RCPT TO:<address>\r\n"),
        ("RCPT T\u{1f600}:<a@b.c>", "501 5.5.4 Syntax: RCPT TO:<address>\r\n"),
    ] {
        assert_eq!(reply_to(&mut s, line.as_bytes()), want, "{line:?}");
    }
    // The session goes on as before.
    assert_eq!(reply_to(&mut s, b"NOOP"), "250 2.0.0 Ok\r\n");
}

// A line break in a logged value (an envelope sender given with `sendmail -f`, a bare
// CR or a fold in a header field) started a line of its own in LOGFILE_INCOMING, so a
// sender could write a fake `Actn:` line into the log, and a folded value's next line
// could read `  To: ...`, like the entry's own To line. Every continuation line now
// starts with a tab, which no field line of an entry does (and a CR or CRLF break is
// written as a newline: the log holds no control characters). Found by the
// incoming_envelope target (its seed `sendmail`, then crash-699d946…).
#[test]
fn a_logged_value_cannot_add_a_log_line() {
    use tmda::incoming::log::{Subject, entry};
    let s = Subject {
        x_primary: Some("a\rXPri: b".into()),
        envelope_sender: "x\nActn: OK fake".into(),
        from: Some("Bob <bob@example.org>\r\nRept: c".into()),
        reply_to: None,
        to: "jason@example.com\n".into(),
        subject: Some("hi\n  To: fake\n\tfolded".into()),
        size: 7,
    };
    let e = entry("d\n", &s, "CONFIRM pending 1.2\nActn: OK");
    // The action, broken in two, still pads to 72 columns: 29 characters, "(7)", 40 spaces.
    let want = format!(
        "Date: d\n\t\nXPri: a\n\tXPri: b\nSndr: x\n\tActn: OK fake\nFrom: Bob <bob@example.org>\n\tRept: c\n\
         \x20 To: jason@example.com\n\t\nSubj: hi\n\t  To: fake\n\tfolded\nActn: CONFIRM pending 1.2\n\tActn: OK{}(7)\n\n",
        " ".repeat(40)
    );
    assert_eq!(e, want);
}

// A template value with a form feed, U+2028 or another break Python's str.splitlines()
// knows (but the template's own line-break guard does not) came out of Header.encode as
// a line without leading white space, as in Python: a line that is no field, so every
// reader ended the response's header there and took Date, To and Auto-Submitted for
// body text. Such a line now continues its field. Found by the response_template target
// (fuzz/regressions/response_template/crash-22140a6…).
/// A response composed from `rendered`, without the original.
fn response(rendered: &str) -> String {
    use tmda::response::{Kind, Original, Reply, SenderCopy, Settings, Stamp, compose};
    let body: &[u8] = b"";
    let mut out = vec![];
    compose(
        &Reply {
            kind: Kind::Request,
            rendered,
            origin: "t",
            to: "a@b.c",
        },
        &Original {
            header: b"From: a@b.c\n",
            body: &body,
        },
        &Settings {
            sender_copy: SenderCopy::None,
            ..Settings::default()
        },
        &Stamp {
            date: "d".into(),
            message_id: "<m@x>".into(),
            boundary_token: 1,
        },
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_python_line_break_in_a_template_value_continues_its_field() {
    let text = response("Subject: hello\x0cworld\u{2028}again\nX-Note: caf\u{e9}\u{85}d\n\nbody\n");
    let head = text.split("\n\n").next().unwrap();
    assert!(head.contains("Subject: hello\n world\n again\n"), "{text}");
    assert!(head.contains("X-Note: caf\u{e9}\n d\n"), "{text}");
    assert!(head.contains("\nAuto-Submitted: auto-replied"), "{text}");
    // Python's white space (str.isspace) includes U+001C..U+001F, which are no folding
    // white space: a line starting with them gets a space too (crash-665f218…).
    let text = response("Subject: a\x0c\x1f\x1fb\n\nbody\n");
    assert!(text.contains("Subject: a\n \x1f\x1fb\n"), "{text:?}");
}

// A template field named `.subject` was read as field "" in charset "subject" and
// written as `: value`, a line that is no field, ending the response's header. The
// charset suffix is taken off only when a name stands before it. Found by the
// response_template target (fuzz/regressions/response_template/crash-dadb753…).
#[test]
fn a_template_field_without_a_name_before_its_charset_keeps_its_name() {
    let text = response(".subject: hello\nX.utf-8: caf\u{e9}\n\nbody\n");
    let head = text.split("\n\n").next().unwrap();
    assert!(head.contains("\n.subject: hello\n"), "{text}");
    assert!(head.contains("\nX: =?utf-8?"), "{text}");
    assert!(!head.contains("\n:"), "{text}");
}

// A stored Return-Path with a bare CR (or another control character) in its address
// became the envelope sender of the released copy, to be handed to the MTA as it was.
// The release is now refused, as one to such a recipient is. Found by the
// pending_release target (fuzz/regressions/pending_release/crash-db5d3d8…).
#[test]
fn a_release_refuses_a_sender_with_control_characters() {
    use tmda::pending::{ReleaseError, ReleaseMode, release};
    for rp in ["<alice@examp.[.org>\r~Delivered-To[ tRetur", "a@b\x00c"] {
        let stored = format!("Return-Path: {rp}\nX-TMDA-Recipient: me@x\n\n");
        let e = release(stored.as_bytes(), "c", "d", ReleaseMode::Confirmed, None).unwrap_err();
        assert!(matches!(e, ReleaseError::BadSender(_)), "{rp:?}: {e}");
    }
    let stored = "Return-Path: <a@b.c>\nX-TMDA-Recipient: me@x\n\n";
    let r = release(stored.as_bytes(), "c", "d", ReleaseMode::Confirmed, None).unwrap();
    assert_eq!(r.sender, "a@b.c");
}
