//! What a held message becomes when it is released: TMDA's rewriting of the stored
//! header (`tmda-rfilter` `release_pending` for a confirmation, `Pending.release` for
//! `tmda-pending -r`), as a pure function from the stored header block to the envelope
//! and the new header. Sending it, and deleting the stored copy, are the callers' part.
//!
//! Fields the rewriting does not name are kept byte for byte (TMDA re-serialises them
//! through Python's `email`, which normalises the space after the colon and RFC 2047-
//! encodes raw 8-bit values; we do not).

use crate::exit::quote;
use crate::message::address::parseaddr;
use crate::message::header::{self, Header};

use crate::message::block;

/// Which of TMDA's two release paths this is; they differ only in the date field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseMode<'a> {
    /// The sender answered the confirmation request (`tmda filter`): `X-TMDA-Confirmed`.
    Confirmed,
    /// The user released it (`tmda pending -r`): `X-TMDA-Released`, and `X-TMDA-CGI`
    /// (`REMOTE_ADDR (HTTP_USER_AGENT)`) when a web front end released it.
    Released { cgi: Option<&'a str> },
}

/// The message to re-send: envelope and header. The body is the stored body, unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The addr-spec of the stored `Return-Path` (empty for none or `<>`).
    pub sender: String,
    /// The stored `X-TMDA-Recipient`, or the caller's override.
    pub recipient: String,
    /// The rewritten header. Send `header.to_bytes()`, an empty line (`header.eol`),
    /// then the body.
    pub header: Header,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("can't determine the recipient address (the message has no X-TMDA-Recipient field)")]
    NoRecipient,
    #[error("the recipient address {} is not usable (empty, or with control characters)", quote(.0))]
    BadRecipient(String),
    /// A control character (a bare CR, say) in the stored Return-Path's address, which
    /// would go to the MTA as the envelope sender.
    #[error("the sender address {} (Return-Path) has control characters", quote(.0))]
    BadSender(String),
}

/// Rewrite a stored header block for re-delivery (spec §5.5):
/// 1. envelope sender := addr-spec of `Return-Path` (refused with control characters);
///    every `Return-Path` removed;
/// 2. recipient := `recipient` if given, else `X-TMDA-Recipient`; every one removed;
/// 3. every `Delivered-To` renamed `Old-Delivered-To` where it stands (so the MTA's
///    loop detection does not refuse the copy we send to the same mailbox);
/// 4. `X-TMDA-Confirm-Done: <done_cookie>` replaces any old one, at the end;
/// 5. `X-TMDA-Confirmed: <date>` or `X-TMDA-Released: <date>` (and `X-TMDA-CGI`) likewise.
///
/// `header_block` may include the empty line that ends it and anything after (ignored).
pub fn release(
    header_block: &[u8],
    done_cookie: &str,
    date: &str,
    mode: ReleaseMode<'_>,
    recipient: Option<&str>,
) -> Result<Release, ReleaseError> {
    let (stored, b) = block::parse(header_block);
    let fields = &header_block[b.start..b.end];
    let sender = stored.get("Return-Path").map(|v| parseaddr(&v).1).unwrap_or_default();
    if sender.chars().any(char::is_control) {
        return Err(ReleaseError::BadSender(sender));
    }
    let recipient = match recipient {
        Some(r) => r.trim().to_string(),
        None => stored.get("X-TMDA-Recipient").ok_or(ReleaseError::NoRecipient)?,
    };
    if recipient.is_empty() || recipient.chars().any(char::is_control) {
        return Err(ReleaseError::BadRecipient(recipient));
    }

    let lines: Vec<Vec<u8>> = block::lines(fields).map(rename_delivered_to).collect();
    let mut h = Header::from_lines(lines.iter().map(Vec::as_slice), stored.eol);
    h.remove_all("Return-Path");
    h.remove_all("X-TMDA-Recipient");
    h.remove_all("X-TMDA-Confirm-Done");
    h.append("X-TMDA-Confirm-Done", done_cookie);
    match mode {
        ReleaseMode::Confirmed => {
            h.remove_all("X-TMDA-Confirmed");
            h.append("X-TMDA-Confirmed", date);
        }
        ReleaseMode::Released { cgi } => {
            h.remove_all("X-TMDA-Released");
            h.append("X-TMDA-Released", date);
            if let Some(cgi) = cgi {
                h.remove_all("X-TMDA-CGI");
                h.append("X-TMDA-CGI", cgi);
            }
        }
    }
    Ok(Release {
        sender,
        recipient,
        header: h,
    })
}

/// `Delivered-To: x` → `Old-Delivered-To: x`, the rest of the line untouched.
fn rename_delivered_to(line: &[u8]) -> Vec<u8> {
    let starts_field = !line.starts_with(b" ") && !line.starts_with(b"\t");
    match header::field_name(line) {
        Some(name) if starts_field && name.eq_ignore_ascii_case("Delivered-To") => {
            let mut out = b"Old-Delivered-To".to_vec();
            out.extend_from_slice(&line[name.len()..]);
            out
        }
        _ => line.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORED: &str = "Return-Path: <alice@example.org>\n\
        Delivered-To: testuser@nowhere.com\n\
        From: Alice <alice@example.org>\n\
        To: testuser@nowhere.com\n\
        Subject: hello there\n\
        Message-ID: <1@example.org>\n\
        Date: Sat, 05 Dec 2026 22:38:53 +0000\n\
        X-TMDA-Recipient: testuser@nowhere.com\n\n";

    fn text(r: &Release) -> String {
        String::from_utf8(r.header.to_bytes()).unwrap()
    }

    /// The re-injected copy of the spec's verified example (§5.5).
    #[test]
    fn confirmed_release_matches_tmda() {
        let r = release(
            STORED.as_bytes(),
            "1796510326.30561.4a47a9",
            "Sat, 05 Dec 2026 22:38:53 +0000",
            ReleaseMode::Confirmed,
            None,
        )
        .unwrap();
        assert_eq!(r.sender, "alice@example.org");
        assert_eq!(r.recipient, "testuser@nowhere.com");
        assert_eq!(
            text(&r),
            "Old-Delivered-To: testuser@nowhere.com\n\
             From: Alice <alice@example.org>\n\
             To: testuser@nowhere.com\n\
             Subject: hello there\n\
             Message-ID: <1@example.org>\n\
             Date: Sat, 05 Dec 2026 22:38:53 +0000\n\
             X-TMDA-Confirm-Done: 1796510326.30561.4a47a9\n\
             X-TMDA-Confirmed: Sat, 05 Dec 2026 22:38:53 +0000\n"
        );
    }

    #[test]
    fn released_by_the_user_with_cgi_and_override() {
        let stored = "Delivered-To: a@x\r\nX-TMDA-Released: old\r\nSubject: s\r\nX-TMDA-CGI: old\r\n\
                      Delivered-To: b@x\r\nX-TMDA-Confirm-Done: 1.2.old\r\n\r\n";
        let r = release(
            stored.as_bytes(),
            "1.2.abcdef",
            "Sun, 06 Dec 2026 01:05:26 +0000",
            ReleaseMode::Released {
                cgi: Some("10.0.0.1 (Mozilla/5.0)"),
            },
            Some(" other@x.org "),
        )
        .unwrap();
        assert_eq!(r.sender, "");
        assert_eq!(r.recipient, "other@x.org");
        assert_eq!(
            text(&r),
            "Old-Delivered-To: a@x\r\nSubject: s\r\nOld-Delivered-To: b@x\r\n\
             X-TMDA-Confirm-Done: 1.2.abcdef\r\n\
             X-TMDA-Released: Sun, 06 Dec 2026 01:05:26 +0000\r\n\
             X-TMDA-CGI: 10.0.0.1 (Mozilla/5.0)\r\n"
        );
        // Without a web front end, an old X-TMDA-CGI stays (as in TMDA).
        let r = release(
            stored.as_bytes(),
            "c",
            "d",
            ReleaseMode::Released { cgi: None },
            Some("o@x"),
        )
        .unwrap();
        assert!(text(&r).contains("X-TMDA-CGI: old\r\n"), "{}", text(&r));
    }

    #[test]
    fn untouched_fields_stay_byte_for_byte() {
        let stored = "Received: from a\n\tby b; Mon, 1 Jan 2024\nSubject:   odd  spacing\n  folded\n\
                      X-Raw: caf\u{e9} \u{1F600}\ndelivered-to:no-space@x\n\
                      X-Delivered-To: keep@x\nX-TMDA-Recipient: me@x\n";
        let r = release(stored.as_bytes(), "c", "d", ReleaseMode::Confirmed, None).unwrap();
        assert_eq!(
            text(&r),
            "Received: from a\n\tby b; Mon, 1 Jan 2024\nSubject:   odd  spacing\n  folded\n\
             X-Raw: caf\u{e9} \u{1F600}\nOld-Delivered-To:no-space@x\n\
             X-Delivered-To: keep@x\nX-TMDA-Confirm-Done: c\nX-TMDA-Confirmed: d\n"
        );
    }

    #[test]
    fn return_path_forms() {
        for (rp, want) in [
            ("<alice@example.org>", "alice@example.org"),
            ("alice@example.org", "alice@example.org"),
            ("<>", ""),
            ("Alice <a@b.c> (comment)", "a@b.c"),
            ("", ""),
        ] {
            let stored = format!("Return-Path: {rp}\nReturn-Path: <second@x>\nX-TMDA-Recipient: me@x\n\n");
            let r = release(stored.as_bytes(), "c", "d", ReleaseMode::Confirmed, None).unwrap();
            assert_eq!(r.sender, want, "{rp}");
            assert!(!text(&r).contains("Return-Path"), "{}", text(&r));
        }
    }

    #[test]
    fn recipient_missing_or_hostile() {
        let e = release(b"Subject: x\n\n", "c", "d", ReleaseMode::Confirmed, None).unwrap_err();
        assert_eq!(e, ReleaseError::NoRecipient);
        let e = release(b"X-TMDA-Recipient:\n\n", "c", "d", ReleaseMode::Confirmed, None).unwrap_err();
        assert_eq!(e, ReleaseError::BadRecipient(String::new()));
        let e = release(
            b"X-TMDA-Recipient: me@x\n\n",
            "c",
            "d",
            ReleaseMode::Confirmed,
            Some("a@x\r\nb@y"),
        )
        .unwrap_err();
        assert!(matches!(e, ReleaseError::BadRecipient(_)), "{e}");
        assert!(e.to_string().contains("\\r\\n"), "{e}");
    }

    #[test]
    fn hostile_values_cannot_add_fields() {
        // A cookie, date or CGI value with line breaks stays inside its own field.
        let r = release(
            b"X-TMDA-Recipient: me@x\n\n",
            "c\nBcc: evil@x",
            "d\r\nBcc: evil@x",
            ReleaseMode::Released {
                cgi: Some("1.2.3.4 (x\nBcc: evil@x)"),
            },
            None,
        )
        .unwrap();
        let t = text(&r);
        assert!(t.lines().all(|l| !l.starts_with("Bcc")), "{t}");
        assert_eq!(
            r.header.names(),
            ["X-TMDA-Confirm-Done", "X-TMDA-Released", "X-TMDA-CGI"]
        );
    }

    #[test]
    fn the_body_and_a_from_line_are_not_part_of_the_header() {
        let stored = b"From alice Mon Jan 1\nX-TMDA-Recipient: me@x\n\nDelivered-To: body@x\n";
        let r = release(stored, "c", "d", ReleaseMode::Confirmed, None).unwrap();
        assert_eq!(text(&r), "X-TMDA-Confirm-Done: c\nX-TMDA-Confirmed: d\n");
    }
}
