//! The id of a pending message, `TIMESTAMP.PID` (`1159377144.3747`).
//!
//! Ids reach us from users (`tmda pending 1159377144.3747`), from confirm addresses in
//! incoming mail (`jo-confirm-1159377144.3747.4a47a9@x`) and from file names, and they
//! become file names. So only the canonical form is accepted: two runs of ASCII digits
//! joined by one dot, no sign, no leading zero, no white space, nothing that could name
//! another file (`../`, `/`, NUL). TMDA never makes any other form.

use std::fmt;
use std::str::FromStr;

use crate::address::tag;
use crate::key::CryptKey;

/// `TIMESTAMP.PID`: the time the message was held (seconds since the epoch) and the
/// id of the process that held it. Ordered by time, then process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId {
    timestamp: u64,
    pid: u32,
}

/// Why a text is not a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a pending message id (TIMESTAMP.PID, digits only, e.g. 1159377144.3747)", crate::exit::quote(.0))]
pub struct IdError(pub String);

impl MessageId {
    pub fn new(timestamp: u64, pid: u32) -> MessageId {
        MessageId { timestamp, pid }
    }

    /// Parse the canonical text form, refusing anything else.
    pub fn parse(text: &str) -> Result<MessageId, IdError> {
        let bad = || IdError(text.chars().take(80).collect());
        let (t, p) = text.split_once('.').ok_or_else(bad)?;
        let timestamp = number(t).ok_or_else(bad)?;
        let pid = number(p).and_then(|p| u32::try_from(p).ok()).ok_or_else(bad)?;
        Ok(MessageId { timestamp, pid })
    }

    /// The id at the start of a queue file name: `T.P.msg` (`suffix` `msg`) or a Maildir
    /// name `T.P.HOST[:2,FLAGS]` (`suffix` `None`: anything non-empty after the dot).
    pub(crate) fn from_file_name(name: &[u8], suffix: Option<&[u8]>) -> Option<MessageId> {
        let first = name.iter().position(|&b| b == b'.')?;
        let second = first + 1 + name[first + 1..].iter().position(|&b| b == b'.')?;
        let rest = &name[second + 1..];
        match suffix {
            Some(s) if rest != s => return None,
            None if rest.is_empty() => return None,
            _ => {}
        }
        let text = std::str::from_utf8(&name[..second]).ok()?;
        MessageId::parse(text).ok()
    }

    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Seconds since the message was held (0 for a time in the future).
    pub fn age(&self, now: u64) -> u64 {
        now.saturating_sub(self.timestamp)
    }

    /// `TIMESTAMP.PID.MAC` with MAC over `TIMESTAMP PID KEYWORD`: the cookie of a confirm
    /// address (`keyword` `"accept"`) or of `X-TMDA-Confirm-Done` (`"done"`).
    pub fn cookie(&self, key: &CryptKey, hmac_bytes: usize, keyword: &str) -> String {
        tag::confirm_cookie(key, hmac_bytes, self.timestamp, self.pid, Some(keyword))
    }
}

/// A canonical decimal number: digits only, no leading zero (but `0` itself), fits u64.
fn number(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.timestamp, self.pid)
    }
}

impl FromStr for MessageId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<MessageId, IdError> {
        MessageId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ids_parse_and_print_the_same() {
        for text in [
            "1159377144.3747",
            "0.0",
            "1796510326.30561",
            "18446744073709551615.4294967295",
        ] {
            let id = MessageId::parse(text).unwrap();
            assert_eq!(id.to_string(), text);
        }
        let id: MessageId = "1159377144.3747".parse().unwrap();
        assert_eq!((id.timestamp(), id.pid()), (1159377144, 3747));
    }

    #[test]
    fn hostile_and_odd_ids_are_refused() {
        for text in [
            "",
            ".",
            "1.",
            ".1",
            "1",
            "1.2.3",
            "1159377144.3747.msg",
            "../1.2",
            "1.2/../../etc/passwd",
            "1/2.3",
            "1.2\0",
            "\u{0}1.2",
            " 1.2",
            "1.2 ",
            "1.2\n",
            "+1.2",
            "-1.2",
            "1.-2",
            "01.2",
            "1.02",
            "1..2",
            "1,2",
            "１.2", // full-width digit
            "18446744073709551616.1",
            "1.4294967296",
            "99999999999999999999999999.1",
            "0x10.1",
            "1e3.1",
        ] {
            let e = MessageId::parse(text).expect_err(text);
            assert!(e.to_string().contains("not a pending message id"), "{e}");
        }
    }

    #[test]
    fn the_error_quotes_control_characters_and_stays_short() {
        let e = MessageId::parse("1.2\n3").unwrap_err().to_string();
        assert!(e.starts_with("\"1.2\\n3\" is not"), "{e}");
        let long = "9".repeat(10_000);
        assert!(MessageId::parse(&long).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn ids_order_by_time_then_pid_not_as_strings() {
        let mut ids: Vec<MessageId> = ["1700000000.100", "1700000000.99", "999999999.5", "1700000001.1"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        ids.sort();
        let text: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        assert_eq!(text, ["999999999.5", "1700000000.99", "1700000000.100", "1700000001.1"]);
    }

    #[test]
    fn file_names() {
        let msg = Some(&b"msg"[..]);
        let id = MessageId::new(1159377144, 3747);
        assert_eq!(MessageId::from_file_name(b"1159377144.3747.msg", msg), Some(id));
        assert_eq!(MessageId::from_file_name(b"1159377144.3747.msgx", msg), None);
        assert_eq!(MessageId::from_file_name(b"1159377144.3747", msg), None);
        assert_eq!(MessageId::from_file_name(b".tmp.1159377144.3747.msg", msg), None);
        assert_eq!(
            MessageId::from_file_name(b"1159377144.3747.host.example", None),
            Some(id)
        );
        assert_eq!(MessageId::from_file_name(b"1159377144.3747.host:2,S", None), Some(id));
        assert_eq!(MessageId::from_file_name(b"1159377144.3747.", None), None);
        assert_eq!(MessageId::from_file_name(b"1159377144.3747", None), None);
        assert_eq!(MessageId::from_file_name(b"x1159377144.3747.h", None), None);
        assert_eq!(MessageId::from_file_name(b"1159377144.03747.h", None), None);
        assert_eq!(MessageId::from_file_name(b"\xff.1.h", None), None);
    }

    #[test]
    fn age_and_cookies() {
        let id = MessageId::new(1000, 7);
        assert_eq!(id.age(1500), 500);
        assert_eq!(id.age(10), 0);
        let key = CryptKey::from_bytes(vec![0xb7; 20]);
        let accept = id.cookie(&key, 3, "accept");
        let done = id.cookie(&key, 3, "done");
        assert!(
            accept.starts_with("1000.7.") && accept.len() == "1000.7.".len() + 6,
            "{accept}"
        );
        assert_ne!(accept, done);
        assert_eq!(done, tag::confirm_cookie(&key, 3, 1000, 7, Some("done")));
    }
}
