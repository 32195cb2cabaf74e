//! Whether to answer a message at all (spec §7): loop and flood protection before any
//! auto-response. [`check_message`] is pure; [`check_rate`] and [`record`] are the thin
//! file-system part over `RESPONSE_DIR`, in TMDA's layout (`<seconds>.<pid>.<sender>`,
//! empty files) so that TMDA and `tmda filter` can share the directory.

use std::fmt;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why no auto-response is sent. `Display` gives the text TMDA logs after `NOREPLY `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoReply {
    /// Null sender, `#@[]`, or `MAILER-DAEMON...`: a bounce.
    EnvelopeSender(String),
    /// `majordomo...`: list software that marks nothing.
    Majordomo,
    /// An envelope sender with control characters or white space cannot be answered
    /// safely (not in TMDA).
    UnsafeSender,
    /// The envelope sender is a TMDA confirmation address: answering it would confirm a
    /// message there without a person (not in TMDA).
    ConfirmAddress(String),
    /// `Auto-Submitted` other than `no`.
    AutoSubmitted(String),
    /// A mailing-list field (`List-Id`, ...): (name as TMDA spells it, value).
    List(&'static str, String),
    /// `Precedence: bulk`, `junk` or `list`.
    Precedence(String),
    /// `MAX_AUTORESPONSES_PER_DAY` reached for this sender.
    Flood(u64),
}

impl fmt::Display for NoReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoReply::EnvelopeSender(s) => write!(f, "(envelope sender = {s})"),
            NoReply::Majordomo => f.write_str("(Majordomo)"),
            NoReply::UnsafeSender => f.write_str("(envelope sender has control characters)"),
            NoReply::ConfirmAddress(s) => write!(f, "(envelope sender is a confirm address = {s})"),
            NoReply::AutoSubmitted(v) => write!(f, "(Auto-Submitted: {v})"),
            NoReply::List(h, v) => write!(f, "({h}: {v})"),
            NoReply::Precedence(v) => write!(f, "(Precedence: {v})"),
            NoReply::Flood(n) => write!(f, "(MAX_AUTORESPONSES_PER_DAY = {n})"),
        }
    }
}

/// The list fields TMDA looks for, in its order.
pub const LIST_HEADERS: [&str; 11] = [
    "List-Id",
    "List-Help",
    "List-Subscribe",
    "List-Unsubscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
    "Mailing-List",
    "X-Mailing-List",
    "X-ML-Name",
    "X-List",
];

/// What identifies TMDA confirmation addresses: `RECIPIENT_DELIMITER` and `TAGS_CONFIRM`.
#[derive(Debug, Clone, Copy)]
pub struct ConfirmTags<'a> {
    pub delimiter: &'a str,
    pub tags: &'a [String],
}

/// `local-part` contains `<delim><tag><delim><digits>.<digits>.<hex>` at its end.
fn is_confirm_address(sender: &str, c: &ConfirmTags) -> bool {
    let local = sender
        .rsplit_once('@')
        .map(|(l, _)| l)
        .unwrap_or(sender)
        .to_ascii_lowercase();
    if c.delimiter.is_empty() {
        return false;
    }
    c.tags.iter().any(|tag| {
        let marker = format!("{d}{}{d}", tag.to_ascii_lowercase(), d = c.delimiter);
        local.match_indices(&marker).any(|(i, _)| {
            let cookie = &local[i + marker.len()..];
            let mut it = cookie.splitn(3, '.');
            let (Some(ts), Some(pid), Some(mac)) = (it.next(), it.next(), it.next()) else {
                return false;
            };
            !ts.is_empty()
                && ts.bytes().all(|b| b.is_ascii_digit())
                && !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && !mac.is_empty()
                && mac.bytes().all(|b| b.is_ascii_hexdigit())
        })
    })
}

/// The message tests, in TMDA's order (its rate limit is [`check_rate`]). `sender` is
/// the envelope sender as the filter sees it (`<>` or empty for the null sender);
/// `header` returns the first value of a field (name compared without case) as the
/// message has it. Differences from TMDA: any `Auto-Submitted` value but `no`
/// stops a reply (RFC 3834 §5; TMDA stopped only `auto-generated` and `auto-replied`),
/// `Precedence` is compared without surrounding white space, and senders with control
/// characters or that are confirmation addresses are not answered.
pub fn check_message(sender: &str, header: &dyn Fn(&str) -> Option<String>, confirm: &ConfirmTags) -> Option<NoReply> {
    let lower = sender.to_lowercase();
    if sender.is_empty() || sender == "<>" || sender == "#@[]" || lower.starts_with("mailer-daemon") {
        let shown = if sender.is_empty() { "<>" } else { sender };
        return Some(NoReply::EnvelopeSender(shown.to_string()));
    }
    if lower.starts_with("majordomo") {
        return Some(NoReply::Majordomo);
    }
    if sender.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Some(NoReply::UnsafeSender);
    }
    if is_confirm_address(sender, confirm) {
        return Some(NoReply::ConfirmAddress(sender.to_string()));
    }
    if let Some(v) = header("auto-submitted") {
        let t = v.trim().to_ascii_lowercase();
        let keyword = t
            .split(|c: char| c.is_whitespace() || c == ';' || c == '(')
            .next()
            .unwrap_or("");
        if !t.is_empty() && keyword != "no" {
            return Some(NoReply::AutoSubmitted(v));
        }
    }
    for h in LIST_HEADERS {
        if let Some(v) = header(h) {
            return Some(NoReply::List(h, v));
        }
    }
    if let Some(v) = header("precedence")
        && matches!(v.trim().to_lowercase().as_str(), "bulk" | "junk" | "list")
    {
        return Some(NoReply::Precedence(v));
    }
    None
}

/// TMDA's `normalize_sender`: spaces to `_`, `/` to `:`, lower case, at most 233
/// characters (and, here, at most 233 bytes, so the name always fits NAME_MAX).
pub fn normalize_sender(sender: &str) -> String {
    let s: String = sender
        .replace(' ', "_")
        .replace('/', ":")
        .to_lowercase()
        .chars()
        .take(233)
        .collect();
    if s.len() <= 233 {
        return s;
    }
    let mut end = 233;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// What the directory listing says: entries older than a day (to delete) and how many
/// recent responses went to this sender.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tally {
    pub stale: Vec<String>,
    pub count: u64,
}

const DAY: u64 = 86400;

/// Read TMDA's record names: `TS.PID.ADDR` (split at the first two dots). Names with
/// fewer dots, or a time stamp that is not a number, are someone else's files and are
/// left alone (TMDA crashed on the latter).
pub fn tally<'a>(names: impl IntoIterator<Item = &'a str>, normalized_sender: &str, now: u64) -> Tally {
    let mut t = Tally::default();
    for name in names {
        let mut it = name.splitn(3, '.');
        let (Some(ts), Some(_pid), Some(addr)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(ts) = ts.parse::<u64>() else { continue };
        if now > ts.saturating_add(DAY) {
            t.stale.push(name.to_string());
        } else if addr == normalized_sender {
            t.count += 1;
        }
    }
    t
}

/// The directory must be a real directory of ours, not a symlink and not writable by
/// others; `Ok(false)` when it does not exist.
fn usable_dir(dir: &Path) -> io::Result<bool> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a directory (symbolic links are not followed)", dir.display()),
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} belongs to someone else (uid {})", dir.display(), meta.uid()),
        ));
    }
    crate::safe_dir::check(dir, "auto-response records")?;
    Ok(true)
}

/// TMDA's rate limit: with `max` 0 there is none. Otherwise, if `dir` exists, records
/// older than a day are deleted and the rest for this sender counted; `max` or more
/// means no response. A missing directory means no responses yet.
pub fn check_rate(dir: &Path, sender: &str, max: u64, now: u64) -> io::Result<Option<NoReply>> {
    if max == 0 || !usable_dir(dir)? {
        return Ok(None);
    }
    let mut names = vec![];
    for entry in std::fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    let t = tally(names.iter().map(String::as_str), &normalize_sender(sender), now);
    for name in &t.stale {
        // As TMDA: a record that cannot be removed is skipped. unlink never follows a
        // symlink, and the name came from the listing, so it stays inside `dir`.
        let _ = std::fs::remove_file(dir.join(name));
    }
    Ok((t.count >= max).then_some(NoReply::Flood(max)))
}

/// Record a response sent to `sender` (call only when `MAX_AUTORESPONSES_PER_DAY` is
/// not 0): an empty file `<now>.<pid>.<normalized sender>`, mode 0600, in `dir`
/// (created 0700 if missing). An existing record of the same name counts as written.
pub fn record(dir: &Path, sender: &str, now: u64, pid: u32) -> io::Result<PathBuf> {
    if !usable_dir(dir)? {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        usable_dir(dir)?;
    }
    let path = dir.join(format!("{now}.{pid}.{}", normalize_sender(sender)));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(_) => Ok(path),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let m = std::fs::symlink_metadata(&path)?;
            if m.file_type().is_file() {
                Ok(path)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{} exists and is not a plain file", path.display()),
                ))
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hdrs(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        move |n: &str| m.get(&n.to_ascii_lowercase()).cloned()
    }

    fn check(sender: &str, h: &[(&str, &str)]) -> Option<String> {
        let tags = vec!["confirm".to_string()];
        let c = ConfirmTags {
            delimiter: "-",
            tags: &tags,
        };
        check_message(sender, &hdrs(h), &c).map(|r| r.to_string())
    }

    #[test]
    fn gating_rules_in_tmdas_order() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(check("alice@example.org", &[]), None);
        assert_eq!(check("<>", &[]), s("(envelope sender = <>)"));
        assert_eq!(check("", &[]), s("(envelope sender = <>)"));
        assert_eq!(check("#@[]", &[]), s("(envelope sender = #@[])"));
        assert_eq!(
            check("MAILER-DAEMON@x.org", &[]),
            s("(envelope sender = MAILER-DAEMON@x.org)")
        );
        assert_eq!(check("Majordomo-owner@x.org", &[]), s("(Majordomo)"));
        assert_eq!(
            check("a@b", &[("Auto-Submitted", "auto-replied")]),
            s("(Auto-Submitted: auto-replied)")
        );
        assert_eq!(
            check("a@b", &[("Auto-Submitted", " Auto-Generated (failure)")]),
            s("(Auto-Submitted:  Auto-Generated (failure))")
        );
        assert_eq!(
            check("a@b", &[("Auto-Submitted", "auto-notified")]),
            s("(Auto-Submitted: auto-notified)")
        );
        assert_eq!(check("a@b", &[("Auto-Submitted", "No")]), None);
        assert_eq!(check("a@b", &[("Auto-Submitted", "no (a person)")]), None);
        assert_eq!(check("a@b", &[("Auto-Submitted", "")]), None);
        assert_eq!(
            check("a@b", &[("List-Post", "<mailto:l@x>"), ("List-Id", "<l.x>")]),
            s("(List-Id: <l.x>)")
        );
        assert_eq!(check("a@b", &[("X-List", "y")]), s("(X-List: y)"));
        assert_eq!(check("a@b", &[("Precedence", "BULK")]), s("(Precedence: BULK)"));
        assert_eq!(check("a@b", &[("Precedence", "junk ")]), s("(Precedence: junk )"));
        assert_eq!(check("a@b", &[("Precedence", "first-class")]), None);
        // Order: the list field wins over Precedence, Auto-Submitted over both.
        assert_eq!(
            check(
                "a@b",
                &[
                    ("Precedence", "bulk"),
                    ("List-Id", "l"),
                    ("Auto-Submitted", "auto-replied")
                ]
            ),
            s("(Auto-Submitted: auto-replied)")
        );
    }

    #[test]
    fn hostile_senders_are_not_answered() {
        assert_eq!(
            check("a@b\nBcc: x@y", &[]),
            Some("(envelope sender has control characters)".into())
        );
        assert_eq!(
            check("a b@c", &[]),
            Some("(envelope sender has control characters)".into())
        );
        assert_eq!(
            check("bob-confirm-1700000000.4242.a1b2c3@example.org", &[]),
            Some("(envelope sender is a confirm address = bob-confirm-1700000000.4242.a1b2c3@example.org)".into())
        );
        assert_eq!(check("bob-confirmation@example.org", &[]), None);
        assert_eq!(check("bob-confirm-x.1.2@example.org", &[]), None);
    }

    #[test]
    fn normalize_like_tmda() {
        assert_eq!(
            normalize_sender("Alice Smith/x@Example.ORG"),
            "alice_smith:x@example.org"
        );
        assert_eq!(normalize_sender(&"a".repeat(300)).len(), 233);
        let n = normalize_sender(&"ä".repeat(300));
        assert!(n.len() <= 233 && n.chars().all(|c| c == 'ä'));
    }

    #[test]
    fn tally_counts_and_expires() {
        let now = 1_800_000_000;
        let names = [
            "1799999000.1.alice@example.org",
            "1799999001.2.alice@example.org",
            "1799999001.2.bob@example.org",
            "1700000000.3.alice@example.org",
            "noise",
            "x.y.alice@example.org",
            "1799913600.9.alice@example.org", // exactly one day old: kept, as TMDA
        ];
        let t = tally(names, "alice@example.org", now);
        assert_eq!(t.count, 3);
        assert_eq!(t.stale, vec!["1700000000.3.alice@example.org".to_string()]);
    }

    #[test]
    fn rate_limit_on_disk() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("responses");
        let now = 1_800_000_000;
        assert_eq!(check_rate(&dir, "Alice@Example.org", 2, now).unwrap(), None);
        let p = record(&dir, "Alice@Example.org", now, 10).unwrap();
        assert_eq!(p.file_name().unwrap(), "1800000000.10.alice@example.org");
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        record(&dir, "Alice@Example.org", now, 10).unwrap(); // same name again: fine
        assert_eq!(check_rate(&dir, "alice@example.org", 2, now).unwrap(), None);
        record(&dir, "alice@example.org", now + 1, 11).unwrap();
        assert_eq!(
            check_rate(&dir, "ALICE@example.org", 2, now + 2).unwrap(),
            Some(NoReply::Flood(2))
        );
        assert_eq!(check_rate(&dir, "ALICE@example.org", 0, now + 2).unwrap(), None);
        // A day later the records are gone.
        assert_eq!(check_rate(&dir, "alice@example.org", 2, now + DAY + 2).unwrap(), None);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn symlinks_are_not_followed() {
        let home = tempfile::tempdir().unwrap();
        let real = home.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = home.path().join("responses");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(check_rate(&link, "a@b", 5, 1).is_err());
        assert!(record(&link, "a@b", 1, 1).is_err());
        // A planted symlink in place of a record is neither followed nor accepted.
        let dir = home.path().join("r2");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let target = home.path().join("target");
        std::os::unix::fs::symlink(&target, dir.join("5.6.a@b")).unwrap();
        assert!(record(&dir, "a@b", 5, 6).is_err());
        assert!(!target.exists());
        // Others must not be able to write the directory.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        assert!(check_rate(&dir, "a@b", 5, 1).is_err());
    }
}
