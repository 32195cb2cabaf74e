//! Every reply the server sends, named once, with its enhanced status code.
//! Code and tests use the same names, so the wire text is spelled in one place.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    pub fn multi(code: u16, lines: Vec<String>) -> Reply {
        Reply { code, lines }
    }

    /// `250-first\r\n250 last\r\n`. A text that came from elsewhere (a relay's refusal,
    /// a configuration error with its hint, a program's output) has its control
    /// characters turned into spaces and is cut to fit 512 octets a line (RFC 5321
    /// section 4.5.3.1.5), so it cannot break the reply into lines the client misreads.
    pub fn to_wire(&self) -> String {
        let mut s = String::new();
        let n = self.lines.len();
        for (i, l) in self.lines.iter().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let _ = write!(s, "{}{sep}{}\r\n", self.code, wire_text(l));
        }
        if n == 0 {
            let _ = write!(s, "{}\r\n", self.code);
        }
        s
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }
}

/// Octets of text a reply line may carry: 512 less the code, separator and CRLF.
const MAX_TEXT: usize = 512 - 6;

fn wire_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_TEXT && !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len().min(MAX_TEXT));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_TEXT {
            break;
        }
        out.push(c);
    }
    out.into()
}

impl From<(u16, &str)> for Reply {
    fn from((code, text): (u16, &str)) -> Reply {
        Reply::new(code, text)
    }
}

/// 250 2.0.0 — generic success.
pub const OK: (u16, &str) = (250, "2.0.0 Ok");
/// 250 2.1.0 — MAIL accepted.
pub const SENDER_OK: (u16, &str) = (250, "2.1.0 Ok");
/// 250 2.1.5 — RCPT accepted.
pub const RECIPIENT_OK: (u16, &str) = (250, "2.1.5 Ok");
/// 250 2.0.0 — message handed to the MTA for every recipient.
pub const QUEUED: (u16, &str) = (250, "2.0.0 Ok: message accepted for delivery");
/// 250 2.0.0 — some recipients got the message; a delivery status notification sent
/// to the envelope sender names the others (answering 451 would duplicate it).
pub const PARTLY_DELIVERED: (u16, &str) = (
    250,
    "2.0.0 Ok: not every recipient could be reached; a delivery status notification to the sender names them",
);
/// 221 2.0.0
pub const BYE: (u16, &str) = (221, "2.0.0 Bye");
/// 354
pub const START_DATA: (u16, &str) = (354, "End data with <CR><LF>.<CR><LF>");
/// 220 2.0.0 — STARTTLS accepted.
pub const READY_FOR_TLS: (u16, &str) = (220, "2.0.0 Ready to start TLS");
/// 235 2.7.0
pub const AUTH_SUCCEEDED: (u16, &str) = (235, "2.7.0 Authentication successful");
/// 252 2.5.2
pub const CANNOT_VRFY: (u16, &str) = (252, "2.5.2 Cannot VRFY user; try RCPT to attempt delivery");
/// 214 2.0.0
pub const HELP: (u16, &str) = (
    214,
    "2.0.0 Commands: EHLO HELO AUTH STARTTLS MAIL RCPT DATA RSET NOOP QUIT",
);
/// 334 VXNlcm5hbWU6 — LOGIN asks for the user name ("Username:").
pub const LOGIN_USERNAME: (u16, &str) = (334, "VXNlcm5hbWU6");
/// 334 UGFzc3dvcmQ6 — LOGIN asks for the password ("Password:").
pub const LOGIN_PASSWORD: (u16, &str) = (334, "UGFzc3dvcmQ6");
/// 334 — PLAIN without an initial response.
pub const PLAIN_CHALLENGE: (u16, &str) = (334, "");

/// 421 4.7.0 — too many failed AUTH attempts; the connection is closed.
pub const TOO_MANY_AUTH_FAILURES: (u16, &str) =
    (421, "4.7.0 Too many failed authentication attempts, closing connection");
/// 421 4.4.2 — idle too long.
pub const TIMEOUT: (u16, &str) = (421, "4.4.2 Timeout, closing connection");
/// 421 4.3.2 — the server is shutting down.
pub const SHUTTING_DOWN: (u16, &str) = (421, "4.3.2 Service shutting down, closing connection");
/// 421 4.7.0 — too many connections.
pub const TOO_MANY_CONNECTIONS: (u16, &str) = (421, "4.7.0 Too many connections, try again later");
/// 450 4.7.1 — the throttle script said no.
pub const QUOTA_EXCEEDED: (u16, &str) = (450, "4.7.1 Outgoing mail quota exceeded");
/// 451 4.3.5 — the user's configuration is broken; the detail is in the server's log
/// only (it may name settings, and must never carry a value to the client).
pub const CONFIG_ERROR: (u16, &str) = (
    451,
    "4.3.5 Delivery failed, try again later: configuration error; see the server log",
);
/// 554 5.7.0 — a PROXY header from a peer not trusted to send one.
pub const PROXY_NOT_TRUSTED: (u16, &str) = (554, "5.7.0 PROXY header not accepted from this address");
/// 452 4.5.3
pub const TOO_MANY_RECIPIENTS: (u16, &str) = (452, "4.5.3 Too many recipients");
/// 454 4.7.0 — no source accepted and one could not be asked (down or too slow): a
/// temporary failure (RFC 4954 section 6). It costs the same delay and counts toward
/// the client address's guessing budget as a refusal, so an outage never makes
/// guessing cheaper.
pub const AUTH_SOURCE_UNAVAILABLE: (u16, &str) = (
    454,
    "4.7.0 Temporary authentication failure: an authentication server could not be reached",
);
/// 454 4.7.0 — TLS could not be started.
pub const TLS_UNAVAILABLE: (u16, &str) = (454, "4.7.0 TLS not available due to temporary reason");

/// 500 5.5.2 — empty command line.
pub const BAD_SYNTAX: (u16, &str) = (500, "5.5.2 Error: bad syntax");
/// 500 5.5.2 — command line longer than RFC 5321 allows.
pub const LINE_TOO_LONG: (u16, &str) = (500, "5.5.2 Error: line too long");
/// 501 5.5.2 — AUTH response that is not base64.
pub const BAD_BASE64: (u16, &str) = (501, "5.5.2 Cannot decode AUTH response (not base64)");
/// 501 5.7.0 — client sent `*`.
pub const AUTH_CANCELLED: (u16, &str) = (501, "5.7.0 Authentication cancelled");
/// 502 5.5.2
pub const UNKNOWN_COMMAND: (u16, &str) = (502, "5.5.2 Error: command not recognized");
/// 503 5.5.1
pub const NEED_HELO: (u16, &str) = (503, "5.5.1 Error: send HELO/EHLO first");
/// 503 5.5.1
pub const NESTED_MAIL: (u16, &str) = (503, "5.5.1 Error: nested MAIL command");
/// 503 5.5.1
pub const NEED_MAIL: (u16, &str) = (503, "5.5.1 Error: need MAIL command");
/// 503 5.5.1
pub const NEED_RCPT: (u16, &str) = (503, "5.5.1 Error: need RCPT command");
/// 503 5.5.1 — AUTH after a successful AUTH.
pub const DUPLICATE_AUTH: (u16, &str) = (503, "5.5.1 Error: already authenticated");
/// 503 5.5.1 — AUTH inside a mail transaction (RFC 4954 section 4).
pub const AUTH_IN_TRANSACTION: (u16, &str) = (503, "5.5.1 Error: AUTH not allowed during a mail transaction");
/// 503 5.5.1 — STARTTLS when TLS is already active (or disallowed on this connection).
pub const STARTTLS_NOT_ALLOWED: (u16, &str) = (503, "5.5.1 Error: duplicate or disallowed STARTTLS");
/// 502 5.5.1 — STARTTLS on a server with no TLS configured: not offered, so not
/// implemented (RFC 5321 section 4.2.4; TMDA's test suite expects a 502).
pub const STARTTLS_NOT_OFFERED: (u16, &str) = (502, "5.5.1 Error: STARTTLS not available (no TLS configured)");
/// 504 5.5.4
pub const UNKNOWN_MECHANISM: (u16, &str) = (504, "5.5.4 Unrecognized authentication type");
/// 530 5.7.0
pub const AUTH_REQUIRED: (u16, &str) = (530, "5.7.0 Authentication required");
/// 530 5.7.0 — `--tls=on` before STARTTLS.
pub const STARTTLS_FIRST: (u16, &str) = (530, "5.7.0 Must issue a STARTTLS command first");
/// 535 5.7.8
pub const AUTH_FAILED: (u16, &str) = (535, "5.7.8 Authentication credentials invalid");
/// 538 5.7.11 — PLAIN/LOGIN over an unencrypted connection when encryption is required.
pub const ENCRYPTION_REQUIRED: (u16, &str) = (538, "5.7.11 Encryption required for requested authentication mechanism");
/// 552 5.3.4
pub const TOO_BIG: (u16, &str) = (552, "5.3.4 Message size exceeds fixed maximum message size");
/// 554 5.6.0 — bare CR or LF in DATA (SMTP smuggling defence).
pub const BARE_LINE_ENDING: (u16, &str) = (554, "5.6.0 Message contains a bare CR or LF; use CRLF line endings");
/// 554 5.6.0 — a line in DATA longer than the limit.
pub const DATA_LINE_TOO_LONG: (u16, &str) = (554, "5.6.0 Message contains a line longer than the limit");
/// 555 5.5.4
pub const UNSUPPORTED_PARAMETER: (u16, &str) = (555, "5.5.4 Unsupported MAIL FROM or RCPT TO parameter");
/// 553 5.6.7 — a non-ASCII address in a transaction started without SMTPUTF8 (RFC 6531 3.5).
pub const NEEDS_SMTPUTF8: (u16, &str) = (553, "5.6.7 Non-ASCII address needs MAIL FROM:<...> SMTPUTF8");

/// 501 5.5.4 with the usage of a command.
pub fn syntax(usage: &str) -> Reply {
    Reply::new(501, format!("5.5.4 Syntax: {usage}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        assert_eq!(Reply::from(OK).to_wire(), "250 2.0.0 Ok\r\n");
        assert_eq!(
            Reply::multi(250, vec!["a".into(), "b".into()]).to_wire(),
            "250-a\r\n250 b\r\n"
        );
        assert_eq!(Reply::from(PLAIN_CHALLENGE).to_wire(), "334 \r\n");
    }

    #[test]
    fn foreign_text_stays_one_line_of_at_most_512_octets() {
        let why = "cfg:3:5: bad value\n  hint: quote it\r\n250 fake";
        assert_eq!(
            Reply::new(451, format!("4.3.0 Delivery failed: {why}")).to_wire(),
            "451 4.3.0 Delivery failed: cfg:3:5: bad value   hint: quote it  250 fake\r\n"
        );
        let long = Reply::new(554, "\u{e9}".repeat(400)).to_wire();
        assert_eq!(long.lines().count(), 1);
        assert!(long.len() <= 512 && long.ends_with("\u{e9}\r\n"), "{}", long.len());
    }
}
