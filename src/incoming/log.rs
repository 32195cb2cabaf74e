//! `LOGFILE_INCOMING` entries in TMDA's layout, so existing log readers keep working:
//!
//! ```text
//! Date: Sat, 05 Dec 2026 23:39:29 +0000
//! XPri: ...                  (only with X-Primary-Address)
//! Sndr: <>                   (only when the envelope sender is not From's address)
//! From: Bob <bob@example.org>
//! Rept: ...                  (only with Reply-To)
//!   To: jason-dated-1.abc@example.com
//! Subj: hello
//! Actn: OK good_dated_cookie (Sat, 05 Dec 2026 23:39:29 +0000)             (241)
//! ```
//! followed by an empty line. The action and the size are padded to 72 characters when
//! they fit. A value's line breaks (a folded Subject, or a sender given with a line
//! break) are kept, as newlines, but each line after one starts with a tab, which no
//! field line does, so no value can write a line that reads as a field (a fake `Actn:`,
//! or `  To:` from a fold); other control characters (NUL, escape sequences) are written
//! as `?`, so grep reads the log as text and `tail -f` sends no escapes to the terminal.
//! TMDA wrote them all as they came.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use crate::message::address::parseaddr;

/// The message's side of an entry (fixed for one run).
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub x_primary: Option<String>,
    pub envelope_sender: String,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub to: String,
    pub subject: Option<String>,
    pub size: u64,
}

/// One entry for `action` (TMDA's action text, e.g. `CONFIRM pending 1700000000.123`).
pub fn entry(date: &str, s: &Subject, action: &str) -> String {
    let field = |tag: &str, v: &str| format!("{tag}: {}\n", continued(v));
    let mut out = field("Date", date);
    if let Some(x) = &s.x_primary {
        out.push_str(&field("XPri", x));
    }
    let from_addr = s.from.as_deref().map(|f| parseaddr(f).1).unwrap_or_default();
    if !s.envelope_sender.is_empty() && s.envelope_sender != from_addr {
        out.push_str(&field("Sndr", &s.envelope_sender));
    }
    if let Some(f) = &s.from {
        out.push_str(&field("From", f));
    }
    if let Some(r) = &s.reply_to {
        out.push_str(&field("Rept", r));
    }
    out.push_str(&field("  To", &s.to));
    out.push_str(&field("Subj", s.subject.as_deref().unwrap_or("None")));
    let action = continued(action);
    let size = format!("({})", s.size);
    // 72 columns for the action and the size together (after "Actn: ").
    let pad = 72usize.saturating_sub(action.chars().count() + size.len());
    out.push_str(&format!("Actn: {action}{}{size}\n\n", " ".repeat(pad)));
    out
}

/// `v` with every line break (CRLF, CR or LF, as Python's readers split lines) a
/// newline followed by a tab (unless one follows already), and the other control
/// characters as `?`.
fn continued(v: &str) -> Cow<'_, str> {
    if !v.contains(['\r', '\n']) {
        return crate::exit::harmless(v);
    }
    let mut out = String::with_capacity(v.len() + 8);
    let mut it = v.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\r' && it.peek() == Some(&'\n') {
            continue;
        }
        if c == '\n' || c == '\r' {
            out.push('\n');
            if it.peek() != Some(&'\t') {
                out.push('\t');
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(crate::exit::harmless(&out).into_owned())
}

/// Append an entry to the log file (created 0600), in one write so concurrent filters do
/// not interleave lines.
pub fn append(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_continue_and_control_characters_are_marked() {
        assert_eq!(continued("plain"), "plain");
        assert_eq!(continued("a\r\n\tb\rc\nActn: x"), "a\n\tb\n\tc\n\tActn: x");
        assert_eq!(continued("a\0b\x1b[2J\u{9b}\x7f\nc\x07"), "a?b?[2J??\n\tc?");
    }

    #[test]
    fn layout_as_tmda() {
        let s = Subject {
            x_primary: None,
            envelope_sender: "<>".into(),
            from: Some("Bob <bob@example.org>".into()),
            reply_to: None,
            to: "jason@example.com".into(),
            subject: Some("hi".into()),
            size: 241,
        };
        let e = entry(
            "Sat, 05 Dec 2026 23:39:29 +0000",
            &s,
            "OK good_dated_cookie (Sat, 05 Dec 2026 23:39:29 +0000)",
        );
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines[1], "Sndr: <>");
        assert_eq!(lines[2], "From: Bob <bob@example.org>");
        assert_eq!(lines[3], "  To: jason@example.com");
        assert_eq!(
            lines[5],
            "Actn: OK good_dated_cookie (Sat, 05 Dec 2026 23:39:29 +0000)             (241)"
        );
        assert_eq!(lines[5].len(), 6 + 72);
        assert!(e.ends_with("\n\n"));
        // The sender is left out when it is From's address; a long action loses its padding.
        let s = Subject {
            envelope_sender: "bob@example.org".into(),
            ..s
        };
        let e = entry("d", &s, &"X".repeat(80));
        assert!(!e.contains("Sndr:"));
        assert!(e.contains(&format!("Actn: {}(241)", "X".repeat(80))));
    }
}
