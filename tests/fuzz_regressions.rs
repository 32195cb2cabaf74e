//! Inputs that once made a parser panic, kept so they never do again. Each has a test
//! of its own, saying what the right answer is; see FUZZING.md for the fuzz targets
//! that look for more.

use tmda::smtp::session::Peer;
use tmda::smtp::{Input, Output, Policy, Session, TlsMode};

fn session() -> Session {
    Session::new(
        Policy {
            hostname: "mx.example".into(),
            tls: TlsMode::None,
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
    let mut s = session();
    assert!(reply_to(&mut s, b"EHLO client.example").starts_with("250"));
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
