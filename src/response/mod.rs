//! TMDA's auto-responses for the incoming filter: confirmation requests, acceptance
//! notices and failure notices (spec `docs/design/incoming.md` §6 and §7).
//!
//! The flow, each step a function the filter calls:
//!
//! 1. [`gate::check_message`] and [`gate::check_rate`]: answer at all? (§7)
//! 2. [`template::search_dirs`] + [`template::find`]: which template (§6.2), falling
//!    back to our built-in defaults (`templates/*.txt`, our own words, TMDA's names).
//! 3. [`template::Template::render`]: `%(name)s` substitution (§6.3).
//! 4. [`mime::compose`]: the MIME message, written to a sink (§6.4); [`mime::envelope`]
//!    gives the envelope (§6.6). Sending is the caller's, through its transport.
//! 5. [`gate::record`]: note the response in `RESPONSE_DIR` (when the limit is on).
//!
//! # Template variables
//!
//! TMDA renders a template against every configuration variable (all of `Defaults.py`
//! and whatever the user's config defines, e.g. `%(FULLNAME)s`, `%(HOSTNAME)s`,
//! `%(USERNAME)s`, `%(PENDING_LIFETIME)s`, or a user's own `%(my_note)s`) plus these,
//! which the caller computes per message (each value as Python's `str()` writes it:
//! `None` for an absent value):
//!
//! | name | value |
//! |---|---|
//! | `recipient_address` | the recipient address (§1.2); for acceptance notices and confirm-reply bounces the confirm address |
//! | `recipient_local`, `recipient_domain` | `recipient_address` split at its first `@` |
//! | `envelope_sender` | the envelope sender, `<>` for the null sender |
//! | `x_primary_address` | the address in `X-Primary-Address`, or empty |
//! | `confirm_append_address` | the address `PRIMARY_ADDRESS_MATCH` picks (usually the envelope sender) |
//! | `subject` | the raw `Subject` value (folds kept), or `None` |
//! | `original_message`, `original_message_headers`, `original_message_body`, `original_message_size` | the original as TMDA regenerates it: [`original_var`] computes them, only when the template uses them |
//! | `pending_lifetime` | [`format_timeout`] of `PENDING_LIFETIME` (`14 days`) |
//! | `confirm_accept_address` | requests only: the confirm address |
//! | `confirm_accept_url` | requests with `CGI_URL` only: `CGI_URL?EUID.COOKIE` (or `CGI_URL?EUID&RECIPIENT&COOKIE` with `CGI_VIRTUALUSER`) |
//! | `dated_timeout`, `dated_expire_date`, `dated_recipient_address` | only with `DATED_TEMPLATE_VARS`: [`format_timeout`] of `DATED_TIMEOUT`, `asctime` (UTC) of now + `DATED_TIMEOUT`, a fresh dated address |
//! | `sender_recipient_address` | only with `SENDER_TEMPLATE_VARS`: the recipient tagged for the envelope sender |
//! | `mode`, `template`, `templatefile` | `request`/`accept`/`bounce`, the template name given (or `None`), the file name used |
//!
//! Never put `CRYPT_KEY` (or any secret) in the map: TMDA exposed its key to any
//! template that asked for it.

pub mod gate;
pub mod mime;
mod pyemail;
pub mod template;

pub use gate::NoReply;
pub use mime::{Body, ComposeError, Envelope, Kind, Original, Reply, SenderCopy, Settings, Stamp, compose, envelope};
pub use pyemail::CharsetError;
pub use template::{Search, Template, TemplateError, Vars};

/// TMDA's `format_timeout`: `14d` → `14 days`, `1w` → `1 week`; a value that is not
/// `<number><unit>` is returned unchanged. `units` maps a unit letter to its plural
/// word (`TIMEOUT_UNITS`); [`DEFAULT_UNITS`] is TMDA's default.
pub fn format_timeout(timeout: &str, units: &[(char, &str)]) -> String {
    let Some(unit) = timeout.chars().last() else {
        return timeout.to_string();
    };
    let num = &timeout[..timeout.len() - unit.len_utf8()];
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || !"YMwdhms".contains(unit) {
        return timeout.to_string();
    }
    let Some(word) = units.iter().find(|(u, _)| *u == unit).map(|(_, w)| *w) else {
        return timeout.to_string();
    };
    let mut s = format!("{num} {word}");
    if num.trim_start_matches('0') == "1" {
        s.pop();
    }
    s
}

/// TMDA's `TIMEOUT_UNITS`.
pub const DEFAULT_UNITS: [(char, &str); 7] = [
    ('Y', "years"),
    ('M', "months"),
    ('w', "weeks"),
    ('d', "days"),
    ('h', "hours"),
    ('m', "minutes"),
    ('s', "seconds"),
];

/// The four `original_message*` variables, as TMDA derives them from the message it
/// read: the header fields regenerated (`Name: value`, line ends LF) and the body with
/// LF line ends. `None` for other names. The whole original is only built when a
/// template asks for it; TMDA always built it.
pub fn original_var(original: &Original, name: &str) -> Option<std::io::Result<String>> {
    let want = matches!(
        name,
        "original_message" | "original_message_headers" | "original_message_body" | "original_message_size"
    );
    if !want {
        return None;
    }
    Some((|| {
        let head = mime::original_header_block(original.header);
        if name == "original_message_headers" {
            return Ok(String::from_utf8_lossy(&head[..head.len() - 1]).into_owned());
        }
        let mut body = Vec::new();
        let mut le = crate::message::LineEndings::default();
        original.body.for_each_chunk(&mut |c| {
            le.to_lf(c, &mut body);
            Ok(())
        })?;
        le.finish(&mut body, false);
        Ok(match name {
            "original_message_body" => String::from_utf8_lossy(&body).into_owned(),
            "original_message_size" => (head.len() + body.len()).to_string(),
            _ => {
                let mut all = head;
                all.extend_from_slice(&body);
                String::from_utf8_lossy(&all).into_owned()
            }
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_like_tmda() {
        let f = |t| format_timeout(t, &DEFAULT_UNITS);
        assert_eq!(f("14d"), "14 days");
        assert_eq!(f("1d"), "1 day");
        assert_eq!(f("1w"), "1 week");
        assert_eq!(f("36h"), "36 hours");
        assert_eq!(f("soon"), "soon");
        assert_eq!(f("5x"), "5x");
        assert_eq!(f(""), "");
    }

    #[test]
    fn original_variables() {
        let orig = Original {
            header: b"Subject:  hi\r\n\tthere\r\nFrom: a@b\r\n",
            body: &&b"line\r\nend"[..],
        };
        let get = |n| original_var(&orig, n).unwrap().unwrap();
        assert_eq!(get("original_message_headers"), "Subject: hi\n\tthere\nFrom: a@b\n");
        assert_eq!(get("original_message_body"), "line\nend");
        assert_eq!(get("original_message"), "Subject: hi\n\tthere\nFrom: a@b\n\nline\nend");
        assert_eq!(get("original_message_size"), "38");
        assert!(original_var(&orig, "subject").is_none());
    }
}
