//! Each recipient's fate after every copy of a message was tried, and the delivery
//! status notification (RFC 3464 `multipart/report`) that tells the envelope sender
//! about the failures when only some recipients got the message. No I/O: the
//! notification is rendered here and sent by the caller through the same transport
//! as the message.
//!
//! The rule, for `ofmipd` (tmda-ofmipd(8) documents it): when every recipient got the
//! message the answer is 250; when none did, 451 if every failure was temporary (the
//! client retries, and nobody gets it twice) and 554 otherwise. When some did and some
//! did not, a 451 would have the client send it again to those who already got it and
//! a 554 would tell the user nobody did: the answer is 250, and a notification lists
//! every failed recipient with the relay's reply. A temporary failure among them is
//! reported as failed too (status 4.x.x, as Postfix reports a message that expired
//! in its queue): ofmipd keeps no queue, so nothing will retry it. A message whose
//! envelope sender is null never gets a notification (RFC 3461 section 6.2), nor one
//! that cannot be sent: the answer is then 554, naming who got the message.
//!
//! Global mode's `tmda sendmail` (run as the user) reports fates to the daemon on its
//! standard error, one [`RecipientFate::line`] each, and the notification with
//! [`NOTICE_SENT`] or [`NOTICE_NOT_SENT`].

use std::fmt::Write as _;

/// Why one recipient did not get the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// RFC 3463 status, e.g. `5.1.1`.
    pub status: String,
    /// RFC 3464 Diagnostic-Code, e.g. `smtp; 550 5.1.1 no such user`.
    pub diagnostic: String,
}

impl Failure {
    pub fn is_transient(&self) -> bool {
        self.status.starts_with('4')
    }
}

/// What became of one recipient's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientFate {
    pub recipient: String,
    /// `None`: the MTA accepted the copy.
    pub failure: Option<Failure>,
}

/// How the sender was told about failed recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Nobody got the message: the client's answer says so.
    NotNeeded,
    /// A notification went to this address.
    Sent(String),
    /// It could not be sent (a null sender, or the transport failed): why.
    NotSent(String),
}

/// The line that says a notification was sent (before `<ADDRESS>`).
pub const NOTICE_SENT: &str = "delivery status notification sent to ";
/// The line that says one was due but not sent (before the reason).
pub const NOTICE_NOT_SENT: &str = "no delivery status notification: ";

impl RecipientFate {
    /// `delivered to <RCPT>` or `not delivered to <RCPT>: STATUS; DIAGNOSTIC`: read by a
    /// person and by [`RecipientFate::parse`].
    pub fn line(&self) -> String {
        match &self.failure {
            None => format!("delivered to <{}>", self.recipient),
            Some(f) => format!("not delivered to <{}>: {}; {}", self.recipient, f.status, f.diagnostic),
        }
    }

    /// A [`RecipientFate::line`] read back, after an optional `NAME: ` prefix; `None`
    /// for any other line. (Recipients from an SMTP envelope hold no `<`, `>` or space.)
    pub fn parse(line: &str) -> Option<RecipientFate> {
        let line = line.trim_end();
        let at = line.find("delivered to <")?;
        let (head, rest) = line.split_at(at);
        let (prefix, delivered) = match head.strip_suffix("not ") {
            Some(p) => (p, false),
            None => (head, true),
        };
        if !(prefix.is_empty() || prefix.ends_with(": ")) {
            return None;
        }
        let (recipient, after) = rest["delivered to <".len()..].split_once('>')?;
        if recipient.is_empty() || recipient.contains(['<', ' ']) {
            return None;
        }
        let failure = if delivered {
            if !after.is_empty() {
                return None;
            }
            None
        } else {
            let (status, diagnostic) = after.strip_prefix(": ")?.split_once("; ")?;
            if !is_status(status) || diagnostic.is_empty() {
                return None;
            }
            Some(Failure {
                status: status.to_string(),
                diagnostic: diagnostic.to_string(),
            })
        };
        Some(RecipientFate {
            recipient: recipient.to_string(),
            failure,
        })
    }
}

/// `4.x.x` or `5.x.x` with one to three digits in each part (RFC 3463).
fn is_status(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "4" | "5")
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Some recipients got the message and some did not: the sender must be told which.
pub fn wanted(fates: &[RecipientFate]) -> bool {
    fates.iter().any(|f| f.failure.is_none()) && fates.iter().any(|f| f.failure.is_some())
}

/// The client's answer to a message whose copies did not all go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 250: some got it and a notification names the others.
    Accepted,
    /// 451: nobody got it and every failure may pass later.
    Deferred,
    /// 554: nobody got it and some failure is for good, or a notification was due and
    /// could not be sent.
    Refused,
}

/// The rule in the module documentation.
pub fn answer(fates: &[RecipientFate], notice: &Notice) -> Answer {
    let failures = || fates.iter().filter_map(|f| f.failure.as_ref());
    if failures().next().is_none() {
        return Answer::Accepted;
    }
    if wanted(fates) {
        return match notice {
            Notice::Sent(_) => Answer::Accepted,
            Notice::NotNeeded | Notice::NotSent(_) => Answer::Refused,
        };
    }
    if failures().all(Failure::is_transient) {
        Answer::Deferred
    } else {
        Answer::Refused
    }
}

/// One line for the client or a log: who got the message, who did not and why.
pub fn summary(fates: &[RecipientFate]) -> String {
    let delivered: Vec<&str> = fates
        .iter()
        .filter(|f| f.failure.is_none())
        .map(|f| f.recipient.as_str())
        .collect();
    let mut out = String::new();
    if !delivered.is_empty() {
        let _ = write!(out, "delivered to {}", delivered.join(", "));
    }
    for f in fates {
        if let Some(why) = &f.failure {
            if !out.is_empty() {
                out.push_str("; ");
            }
            let _ = write!(out, "not delivered to {}: {}", f.recipient, why.diagnostic);
        }
    }
    out
}

/// What a notification is about.
pub struct Report<'a> {
    /// The name of this host (MAILER-DAEMON@HOSTNAME, Reporting-MTA).
    pub hostname: &'a str,
    /// The envelope sender of the message, who gets the notification.
    pub sender: &'a str,
    pub fates: &'a [RecipientFate],
    /// The message's header block as it was submitted.
    pub header: &'a [u8],
    /// Seconds since the epoch.
    pub now: u64,
    /// Unique per notification (Message-ID and MIME boundary).
    pub unique: u64,
}

impl Report<'_> {
    /// The notification: `From: MAILER-DAEMON@HOSTNAME`, to be sent with the null
    /// envelope sender to [`Report::sender`]. LF line endings.
    pub fn render(&self) -> Vec<u8> {
        let host = self.hostname;
        let date = crate::clock::rfc2822(self.now);
        let boundary = format!("{}.{:016x}/{host}", self.now, self.unique);
        // RFC 6533: addresses that are not ASCII need the "global" report.
        let global = !self.sender.is_ascii() || self.fates.iter().any(|f| !f.recipient.is_ascii());
        let mut m = String::new();
        let _ = write!(
            m,
            "From: Mail Delivery System <MAILER-DAEMON@{host}>\n\
             To: <{sender}>\n\
             Subject: Undelivered Mail Returned to Sender\n\
             Date: {date}\n\
             Message-ID: <{now}.{unique:016x}@{host}>\n\
             Auto-Submitted: auto-replied\n\
             MIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=delivery-status;\n\
             \tboundary=\"{boundary}\"\n\
             \n\
             This is a MIME-encapsulated message.\n\
             \n\
             --{boundary}\n\
             Content-Description: Notification\n\
             Content-Type: text/plain; charset=utf-8\n\
             Content-Transfer-Encoding: 8bit\n\
             \n\
             This is tmda-ofmipd at {host}.\n\
             \n\
             Your message was handed on for some of its recipients, but not for these:\n\
             \n",
            sender = self.sender,
            now = self.now,
            unique = self.unique,
        );
        for f in self.fates {
            let Some(why) = &f.failure else { continue };
            let _ = writeln!(m, "<{}>: {}", f.recipient, one_line(&why.diagnostic));
            if why.is_transient() {
                m.push_str(
                    "    (a temporary failure; it will not be retried: send the message to this\n    recipient again later)\n",
                );
            }
            m.push('\n');
        }
        let delivered: Vec<&str> = self
            .fates
            .iter()
            .filter(|f| f.failure.is_none())
            .map(|f| f.recipient.as_str())
            .collect();
        if !delivered.is_empty() {
            m.push_str("It was handed on for these, so do not send it to them again:\n\n");
            for r in &delivered {
                let _ = writeln!(m, "<{r}>");
            }
            m.push('\n');
        }
        let kind = if global {
            "message/global-delivery-status"
        } else {
            "message/delivery-status"
        };
        let _ = write!(
            m,
            "--{boundary}\n\
             Content-Description: Delivery report\n\
             Content-Type: {kind}\n\
             \n\
             Reporting-MTA: dns; {host}\n\
             Arrival-Date: {date}\n"
        );
        for f in self.fates {
            let Some(why) = &f.failure else { continue };
            let kind = if f.recipient.is_ascii() { "rfc822" } else { "utf-8" };
            let _ = write!(
                m,
                "\nFinal-Recipient: {kind}; {}\n\
                 Action: failed\n\
                 Status: {}\n\
                 Diagnostic-Code: {}\n",
                f.recipient,
                why.status,
                field_text(&why.diagnostic, global),
            );
        }
        let _ = write!(
            m,
            "\n--{boundary}\n\
             Content-Description: Undelivered Message Headers\n\
             Content-Type: text/rfc822-headers\n\
             \n"
        );
        let mut out = m.into_bytes();
        // The header as submitted, with LF line endings like the rest, without the
        // blank line that ended it (the line ending before a boundary is the boundary's).
        let mut header = Vec::with_capacity(self.header.len());
        let mut endings = crate::message::LineEndings::default();
        endings.to_lf(self.header, &mut header);
        endings.finish(&mut header, false);
        while header.last() == Some(&b'\n') {
            header.pop();
        }
        out.extend_from_slice(&header);
        out.extend_from_slice(format!("\n\n--{boundary}--\n").as_bytes());
        out
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A header field value in the delivery-status part: one line, and US-ASCII unless
/// the report is the global (RFC 6533) kind.
fn field_text(s: &str, global: bool) -> String {
    let s = one_line(s);
    if global {
        s
    } else {
        s.chars().map(|c| if c.is_ascii() { c } else { '?' }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(r: &str) -> RecipientFate {
        RecipientFate {
            recipient: r.into(),
            failure: None,
        }
    }

    fn failed(r: &str, status: &str, diagnostic: &str) -> RecipientFate {
        RecipientFate {
            recipient: r.into(),
            failure: Some(Failure {
                status: status.into(),
                diagnostic: diagnostic.into(),
            }),
        }
    }

    #[test]
    fn lines_round_trip() {
        for f in [
            ok("a@x.org"),
            failed("b@y.org", "5.1.1", "smtp; 550 5.1.1 <b@y.org>: no; such user"),
            failed("c:d@z.org", "4.0.0", "x-unix; /usr/sbin/sendmail: exited 75"),
        ] {
            assert_eq!(RecipientFate::parse(&f.line()), Some(f.clone()), "{}", f.line());
            assert_eq!(
                RecipientFate::parse(&format!("tmda sendmail: {}\n", f.line())),
                Some(f.clone())
            );
        }
        for other in [
            "tmda sendmail: config: bad value",
            "Xdelivered to <a@b>",
            "delivered to <a@b> and more",
            "not delivered to <a@b>: 6.0.0; smtp; 650 what",
            "not delivered to <a@b>: 5.1.1",
            "delivered to <>",
        ] {
            assert_eq!(RecipientFate::parse(other), None, "{other}");
        }
    }

    #[test]
    fn the_answer_rule() {
        let sent = Notice::Sent("s@x".into());
        let unsent = Notice::NotSent("null sender".into());
        let perm = failed("p@x", "5.1.1", "smtp; 550 no");
        let temp = failed("t@x", "4.2.2", "smtp; 452 full");
        let cases: &[(&[RecipientFate], &Notice, Answer)] = &[
            (&[ok("a@x")], &Notice::NotNeeded, Answer::Accepted),
            // Nobody got it.
            (std::slice::from_ref(&temp), &Notice::NotNeeded, Answer::Deferred),
            (std::slice::from_ref(&perm), &Notice::NotNeeded, Answer::Refused),
            (&[temp.clone(), perm.clone()], &Notice::NotNeeded, Answer::Refused),
            // Some did: 250 once the others are named in a notification, whatever their failure.
            (&[ok("a@x"), perm.clone()], &sent, Answer::Accepted),
            (&[ok("a@x"), temp.clone()], &sent, Answer::Accepted),
            (&[ok("a@x"), temp.clone(), perm.clone()], &sent, Answer::Accepted),
            // ... but not when no notification could go: never a 451 that duplicates.
            (&[ok("a@x"), temp.clone()], &unsent, Answer::Refused),
            (&[ok("a@x"), perm.clone()], &unsent, Answer::Refused),
        ];
        for (fates, notice, want) in cases {
            assert_eq!(answer(fates, notice), *want, "{fates:?} {notice:?}");
        }
        assert!(wanted(&[ok("a"), perm.clone()]) && !wanted(std::slice::from_ref(&perm)) && !wanted(&[ok("a")]));
    }

    #[test]
    fn the_report_is_rfc_3464() {
        let fates = [
            ok("a@x.org"),
            failed(
                "b@y.org",
                "5.1.1",
                "smtp; 550 5.1.1 <b@y.org>: Recipient address rejected",
            ),
            failed("c@z.org", "4.4.1", "x-tmda; SMTP relay r:25: connection refused"),
        ];
        let r = Report {
            hostname: "mx.test",
            sender: "alice@example.org",
            fates: &fates,
            header: b"From: alice@example.org\r\nTo: a@x.org, b@y.org, c@z.org\r\nSubject: hi\r\n\r\n",
            now: 1262937386,
            unique: 0xabc,
        };
        let text = String::from_utf8(r.render()).unwrap();
        let boundary = "1262937386.0000000000000abc/mx.test";
        assert!(
            text.starts_with("From: Mail Delivery System <MAILER-DAEMON@mx.test>\nTo: <alice@example.org>\n"),
            "{text}"
        );
        assert!(text.contains(&format!(
            "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"{boundary}\"\n"
        )));
        assert!(!text.contains('\r'), "LF line endings throughout");
        // Per recipient that failed: Final-Recipient, Action, Status, Diagnostic-Code.
        assert!(text.contains(
            "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.test\nArrival-Date: Fri, 08 Jan 2010 07:56:26 +0000\n\n\
             Final-Recipient: rfc822; b@y.org\nAction: failed\nStatus: 5.1.1\n\
             Diagnostic-Code: smtp; 550 5.1.1 <b@y.org>: Recipient address rejected\n\n\
             Final-Recipient: rfc822; c@z.org\nAction: failed\nStatus: 4.4.1\n\
             Diagnostic-Code: x-tmda; SMTP relay r:25: connection refused\n"
        ), "{text}");
        assert!(!text.contains("Final-Recipient: rfc822; a@x.org"));
        assert!(text.contains("not be retried"));
        // The original header, then the closing boundary.
        assert!(text.ends_with(&format!(
            "Content-Type: text/rfc822-headers\n\nFrom: alice@example.org\nTo: a@x.org, b@y.org, c@z.org\nSubject: hi\n\n--{boundary}--\n"
        )), "{text}");
        assert_eq!(text.matches(&format!("--{boundary}\n")).count(), 3);
        // It parses as a message.
        let m = crate::message::Message::from_vec(text.into_bytes()).unwrap();
        assert_eq!(m.header.get("auto-submitted").as_deref(), Some("auto-replied"));
    }
}
