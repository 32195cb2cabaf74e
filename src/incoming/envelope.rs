//! Who a message is from and for, as the MTA that runs `tmda filter` says it, and what
//! the tag in the recipient address is. Pure functions over the environment's values.

use crate::message::address::{getaddresses, parseaddr};

/// Why the envelope could not be read (the MTA did not set what it should).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("missing environment variable: {0} (is tmda filter run by the MTA as a delivery agent?)")]
    Missing(&'static str),
}

/// What the MTA said about one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The envelope sender; `<>` for the null sender (as TMDA writes it).
    pub sender: String,
    /// The envelope recipient as the MTA gave it (sender tags are checked against it).
    pub recipient: String,
    /// The recipient after qmail's virtualdomains prefix is taken off: what `to` rules,
    /// logs, templates and the pending queue see.
    pub recipient_address: String,
    /// The address extension (`dated-1263369386.df2137`), lower case.
    pub extension: String,
}

/// The settings the envelope depends on.
pub struct Settings<'a> {
    pub mta: &'a str,
    pub delimiter: &'a str,
    /// `RECIPIENT_HEADER`'s name and the value of that field in the message, if any.
    pub recipient_header: Option<String>,
    /// `HOSTNAME`, for bare addresses under sendmail (TMDA used the machine's name).
    pub hostname: &'a str,
    /// qmail's virtualdomains file's text, when USEVIRTUALDOMAINS applies.
    pub virtualdomains: Option<&'a str>,
}

impl Envelope {
    /// Read the envelope through `env` (the process environment, or a test's map).
    pub fn read(env: &dyn Fn(&str) -> Option<String>, s: &Settings<'_>) -> Result<Envelope, EnvelopeError> {
        let mut sender = env("SENDER").ok_or(EnvelopeError::Missing("SENDER"))?;
        if sender.is_empty() {
            sender = "<>".into();
        }
        let from_header = s
            .recipient_header
            .as_deref()
            .map(|v| parseaddr(v).1)
            .filter(|a| !a.is_empty());
        let mut recipient = match &from_header {
            Some(a) => a.clone(),
            None => env("RECIPIENT").ok_or(EnvelopeError::Missing("RECIPIENT"))?,
        };
        let mut extension = env("EXT")
            .filter(|e| !e.is_empty())
            .or_else(|| env("EXTENSION"))
            .unwrap_or_default();
        if extension.is_empty()
            && from_header.is_some()
            && let Some((local, _)) = recipient.rsplit_once('@')
            && let Some((_, ext)) = local.split_once(s.delimiter)
        {
            extension = ext.to_string();
        }
        if s.mta == "sendmail" {
            if sender != "<>" && !sender.contains('@') {
                sender = format!("{sender}@{}", s.hostname);
            }
            if !recipient.contains('@') {
                recipient = format!("{recipient}@{}", s.hostname);
            }
        }
        let mut recipient_address = recipient.clone();
        if s.mta == "qmail"
            && let Some(text) = s.virtualdomains
            && let Some((local, ext)) = strip_virtual_prefix(text, &recipient, s.delimiter)
        {
            recipient_address = local;
            extension = ext;
        }
        Ok(Envelope {
            sender,
            recipient,
            recipient_address,
            extension: extension.to_lowercase(),
        })
    }

    /// The tag type and cookie of the extension: `dated-1263369386.df2137` gives
    /// (`dated`, `1263369386.df2137`); the type is empty when there is one piece.
    pub fn tag(&self, delimiter: &str) -> (String, String) {
        let pieces: Vec<&str> = self.extension.split(delimiter).collect();
        let value = pieces.last().copied().unwrap_or("").to_string();
        let kind = if pieces.len() >= 2 {
            pieces[pieces.len() - 2].to_string()
        } else {
            String::new()
        };
        (kind, value)
    }
}

/// qmail's virtualdomains: a `domain:prepend` line whose domain matches the recipient's
/// (exactly, `.domain` as a suffix, or `user@domain`) has `prepend-` taken off the local
/// part. Returns the new address and the extension after its first delimiter.
fn strip_virtual_prefix(text: &str, recipient: &str, delimiter: &str) -> Option<(String, String)> {
    let (local, domain) = recipient.rsplit_once('@')?;
    let domain_l = domain.to_lowercase();
    for line in text.lines() {
        let line = line.trim().to_lowercase();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((vdomain, prepend)) = line.split_once(':') else {
            continue;
        };
        let matched = if let Some(suffix) = vdomain.strip_prefix('.') {
            domain_l.contains(suffix)
        } else if let Some((_, d)) = vdomain.split_once('@') {
            d == domain_l
        } else {
            vdomain == domain_l
        };
        if !matched || prepend.is_empty() {
            continue;
        }
        let prefix = format!("{prepend}-");
        let new_local = match local.to_lowercase().strip_prefix(&prefix) {
            Some(_) => local[prefix.len()..].to_string(),
            None => local.to_string(),
        };
        let ext = new_local
            .split_once(delimiter)
            .map(|(_, e)| e.to_string())
            .unwrap_or_default();
        return Some((format!("{new_local}@{domain}"), ext));
    }
    None
}

/// `PRIMARY_ADDRESS_MATCH`: whether `X-Primary-Address` may stand for the envelope
/// sender (0 never, 1 identical, 2 same user and host, 3 same user and domain, 4 same
/// host, 5 same domain, 6 always; "user" is the local part before the first delimiter,
/// "domain" the host's last two labels). Returns the address to whitelist.
pub fn confirm_append_address(x_primary: Option<&str>, sender: &str, level: u8, delimiter: &str) -> String {
    let Some(primary) = x_primary.map(|p| parseaddr(p).1).filter(|p| !p.is_empty()) else {
        return sender.to_string();
    };
    let (p, s) = (primary.to_lowercase(), sender.to_lowercase());
    let split = |a: &str| -> (String, String) {
        match a.rsplit_once('@') {
            Some((l, h)) => (l.split(delimiter).next().unwrap_or(l).to_string(), h.to_string()),
            None => (a.to_string(), String::new()),
        }
    };
    let domain = |h: &str| -> String {
        let labels: Vec<&str> = h.split('.').collect();
        labels[labels.len().saturating_sub(2)..].join(".")
    };
    let ((pu, ph), (su, sh)) = (split(&p), split(&s));
    let ok = match level {
        0 => false,
        1 => p == s,
        2 => pu == su && ph == sh,
        3 => pu == su && domain(&ph) == domain(&sh),
        4 => ph == sh,
        5 => domain(&ph) == domain(&sh),
        _ => true,
    };
    if ok { primary } else { sender.to_string() }
}

/// The addresses `from` rules match, in TMDA's order, lower case, each once: the
/// envelope sender, the whitelisting address when it differs, and every address in the
/// From and Reply-To fields.
pub fn sender_list(sender: &str, append_address: &str, from: &[String], reply_to: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut push = |a: &str| {
        let a = a.to_lowercase();
        if !a.is_empty() && !out.contains(&a) {
            out.push(a);
        }
    };
    push(sender);
    push(append_address);
    for (_, a) in getaddresses(from) {
        push(&a);
    }
    for (_, a) in getaddresses(reply_to) {
        push(&a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    fn settings<'a>(mta: &'a str) -> Settings<'a> {
        Settings {
            mta,
            delimiter: "-",
            recipient_header: None,
            hostname: "mail.example.com",
            virtualdomains: None,
        }
    }

    #[test]
    fn postfix_and_qmail_environments() {
        let e = Envelope::read(
            &env(&[
                ("SENDER", "bob@x.org"),
                ("RECIPIENT", "jason-dated-1.abc@example.com"),
                ("EXTENSION", "Dated-1.ABC"),
            ]),
            &settings("postfix"),
        )
        .unwrap();
        assert_eq!(e.extension, "dated-1.abc");
        assert_eq!(e.tag("-"), ("dated".into(), "1.abc".into()));
        let e = Envelope::read(
            &env(&[("SENDER", ""), ("RECIPIENT", "j@x"), ("EXT", "")]),
            &settings("qmail"),
        )
        .unwrap();
        assert_eq!(e.sender, "<>");
        assert_eq!(e.tag("-"), (String::new(), String::new()));
        assert_eq!(
            Envelope::read(&env(&[("RECIPIENT", "j@x")]), &settings("qmail")).unwrap_err(),
            EnvelopeError::Missing("SENDER")
        );
        let e = Envelope::read(
            &env(&[("SENDER", "lists-keyword-foo.bar.3f1a2b")]),
            &Settings {
                recipient_header: Some("Jason <jason-lists-keyword-foo.3f1a2b@example.com>".into()),
                ..settings("sendmail")
            },
        )
        .unwrap();
        // A bare sender under sendmail takes HOSTNAME (TMDA: the machine's name).
        assert_eq!(e.sender, "lists-keyword-foo.bar.3f1a2b@mail.example.com");
        assert_eq!(e.recipient, "jason-lists-keyword-foo.3f1a2b@example.com");
        assert_eq!(e.tag("-"), ("keyword".into(), "foo.3f1a2b".into()));
    }

    #[test]
    fn qmail_virtual_domains() {
        let vd = "# c\nexample.com:jason\n.corp.example:corp\n";
        let e = Envelope::read(
            &env(&[
                ("SENDER", "a@b"),
                ("RECIPIENT", "jason-jason-dated-5.abc@example.com"),
                ("EXT", "jason-dated-5.abc"),
            ]),
            &Settings {
                virtualdomains: Some(vd),
                ..settings("qmail")
            },
        )
        .unwrap();
        assert_eq!(e.recipient_address, "jason-dated-5.abc@example.com");
        assert_eq!(e.extension, "dated-5.abc");
        assert_eq!(e.recipient, "jason-jason-dated-5.abc@example.com");
    }

    #[test]
    fn primary_address_levels() {
        let f = |level| confirm_append_address(Some("Bob <bob-list@mail.x.org>"), "bob@relay.x.org", level, "-");
        assert_eq!(f(0), "bob@relay.x.org");
        assert_eq!(f(1), "bob@relay.x.org");
        assert_eq!(f(2), "bob@relay.x.org");
        assert_eq!(f(3), "bob-list@mail.x.org");
        assert_eq!(f(4), "bob@relay.x.org");
        assert_eq!(f(5), "bob-list@mail.x.org");
        assert_eq!(f(6), "bob-list@mail.x.org");
        assert_eq!(confirm_append_address(None, "a@b", 6, "-"), "a@b");
    }

    #[test]
    fn sender_lists() {
        let l = sender_list(
            "Bob@X.org",
            "bob@x.org",
            &["Bob <bob@x.org>, carol@y.net".into()],
            &["List <list@z.org>".into()],
        );
        assert_eq!(l, vec!["bob@x.org", "carol@y.net", "list@z.org"]);
    }
}
