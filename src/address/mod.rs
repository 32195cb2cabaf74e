//! Tagged addresses: making and checking `user-TAG-COOKIE@domain`.
//!
//! This is TMDA's `Address` module. A [`Tagger`] holds what every tagged address
//! depends on (key, HMAC length, recipient delimiter, tag names); it makes dated,
//! sender, keyword and confirm addresses and verifies any of them. Like TMDA, the base
//! address is lower-cased when an address is made, and the address under test is
//! lower-cased before it is checked.

pub mod tag;

use std::fmt;

use crate::key::CryptKey;

pub use crate::config::tags::{Kind, TagNames};

/// Problems with an address given to make a tagged address from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{} is not an e-mail address (it has no '@')", crate::exit::quote(.0))]
    NoAt(String),
    #[error("{} has an empty local part or domain", crate::exit::quote(.0))]
    Empty(String),
    #[error("a keyword address needs a keyword (an empty one never verifies, in TMDA either)")]
    EmptyKeyword,
}

/// Why a tagged address does not verify. The texts are TMDA's, which scripts parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NoCrypto,
    BadFormat,
    BadTag,
    /// The dated address expired at this time.
    Expired(u64),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::NoCrypto => "No cryptographic information in address.",
            Failure::BadFormat => "Invalid cryptographic tag format.",
            Failure::BadTag => "Invalid cryptographic tag.",
            Failure::Expired(_) => "Dated address has expired.",
        })
    }
}

/// A verified address: its kind, and for dated addresses when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub kind: Kind,
    pub expires: Option<u64>,
}

/// Everything that making or checking a tagged address depends on.
#[derive(Debug, Clone)]
pub struct Tagger {
    pub key: CryptKey,
    pub hmac_bytes: usize,
    pub delimiter: String,
    pub tags: TagNames,
}

impl Tagger {
    /// Load `CRYPT_KEY_FILE` and build the tagger a configuration describes. Only
    /// commands that tag or verify call it, so the others run without a key.
    pub fn from_config(config: &crate::config::Config) -> Result<Tagger, crate::key::KeyError> {
        Ok(Tagger {
            key: CryptKey::load(&config.crypt_key_file, config.allow_mode_640)?,
            hmac_bytes: config.hmac_bytes,
            delimiter: config.recipient_delimiter.clone(),
            tags: config.tags.clone(),
        })
    }
}

/// Split `local@domain` at the last `@`, lower-casing both halves (TMDA's `_split`).
pub fn split_lower(address: &str) -> Result<(String, String), AddressError> {
    let at = address
        .rfind('@')
        .ok_or_else(|| AddressError::NoAt(address.to_string()))?;
    let (local, domain) = (&address[..at], &address[at + 1..]);
    if local.is_empty() || domain.is_empty() {
        return Err(AddressError::Empty(address.to_string()));
    }
    Ok((local.to_lowercase(), domain.to_lowercase()))
}

/// The bare address of `Name <addr>`, `<addr>` or `addr`.
pub fn addr_spec(text: &str) -> &str {
    let t = text.trim();
    match (t.rfind('<'), t.rfind('>')) {
        (Some(l), Some(r)) if l < r => t[l + 1..r].trim(),
        _ => t,
    }
}

impl Tagger {
    fn build(&self, base: &str, kind: Kind, cookie: &str) -> Result<String, AddressError> {
        let (local, domain) = split_lower(base)?;
        let d = &self.delimiter;
        Ok(format!("{local}{d}{}{d}{cookie}@{domain}", self.tags.primary(kind)))
    }

    /// An address the way tmda-inject makes them (TMDA's Cookie module): unlike
    /// `tmda address`, the base address keeps its case and the first tag name is used
    /// exactly as configured. `base` must contain exactly one `@`.
    pub fn inject_address(&self, base: &str, kind: Kind, cookie: &str) -> Result<String, AddressError> {
        let (local, domain) = base
            .split_once('@')
            .ok_or_else(|| AddressError::NoAt(base.to_string()))?;
        let tag = self
            .tags
            .names(kind)
            .first()
            .cloned()
            .unwrap_or_else(|| kind.as_str().to_string());
        let d = &self.delimiter;
        Ok(format!("{local}{d}{tag}{d}{cookie}@{domain}"))
    }

    /// A dated address valid until `now + timeout_secs`.
    pub fn dated(&self, base: &str, now: u64, timeout_secs: u64) -> Result<String, AddressError> {
        let cookie = tag::dated_cookie(&self.key, self.hmac_bytes, now.saturating_add(timeout_secs));
        self.build(base, Kind::Dated, &cookie)
    }

    /// A sender address, valid only for mail from `sender` (an address or a domain).
    pub fn sender(&self, base: &str, sender: &str) -> Result<String, AddressError> {
        let cookie = tag::sender_cookie(&self.key, self.hmac_bytes, sender);
        self.build(base, Kind::Sender, &cookie)
    }

    /// A keyword address. The keyword is lower-cased first: checking lower-cases the
    /// whole address, so a mixed-case keyword could never verify.
    pub fn keyword(&self, base: &str, keyword: &str) -> Result<String, AddressError> {
        if keyword.is_empty() {
            return Err(AddressError::EmptyKeyword);
        }
        let cookie = tag::keyword_cookie(&self.key, self.hmac_bytes, &keyword.to_lowercase(), &self.delimiter);
        self.build(base, Kind::Keyword, &cookie)
    }

    /// A confirmation address (`CONFIRM_ADDRESS` handling is the caller's).
    pub fn confirm(&self, base: &str, time: u64, pid: u32, keyword: Option<&str>) -> Result<String, AddressError> {
        let cookie = tag::confirm_cookie(&self.key, self.hmac_bytes, time, pid, keyword);
        self.build(base, Kind::Confirm, &cookie)
    }

    /// Check a tagged address as TMDA's `tmda-check-address` does. `sender` is needed
    /// for sender addresses; `now` decides expiry of dated ones.
    pub fn verify(&self, address: &str, sender: Option<&str>, now: u64) -> Result<Verified, Failure> {
        let spec = addr_spec(address);
        let Ok((local, _domain)) = split_lower(spec) else {
            return Err(Failure::NoCrypto);
        };
        let parts: Vec<&str> = if self.delimiter.is_empty() {
            vec![local.as_str()]
        } else {
            local.split(self.delimiter.as_str()).collect()
        };
        if parts.len() < 2 {
            return Err(Failure::NoCrypto);
        }
        let (tag_name, cookie) = (parts[parts.len() - 2], parts[parts.len() - 1]);
        let kind = self.tags.kind_of(tag_name).ok_or(Failure::NoCrypto)?;
        let n = self.hmac_bytes;
        match kind {
            Kind::Dated => {
                let mut it = cookie.split('.');
                let (Some(ts), Some(mac), None) = (it.next(), it.next(), it.next()) else {
                    return Err(Failure::BadFormat);
                };
                let expires: u64 = parse_decimal(ts).ok_or(Failure::BadFormat)?;
                // TMDA reports expiry before looking at the MAC.
                if now > expires {
                    return Err(Failure::Expired(expires));
                }
                let want = tag::hex_mac(&self.key, n, &[ts.as_bytes()]);
                if !tag::mac_matches(mac, &want) {
                    return Err(Failure::BadTag);
                }
                Ok(Verified {
                    kind,
                    expires: Some(expires),
                })
            }
            Kind::Sender => {
                let sender = sender.map(|s| addr_spec(s).to_lowercase()).unwrap_or_default();
                if sender.is_empty() {
                    return Err(Failure::BadTag);
                }
                let ok = |candidate: &str| tag::mac_matches(cookie, &tag::sender_cookie(&self.key, n, candidate));
                // The full address first, then the domain and each parent domain.
                let domain = sender.rsplit('@').next().unwrap_or("");
                let mut found = ok(&sender);
                let mut rest = domain;
                while !found && !rest.is_empty() {
                    found = ok(rest);
                    rest = rest.split_once('.').map(|(_, r)| r).unwrap_or("");
                }
                if found {
                    Ok(Verified { kind, expires: None })
                } else {
                    Err(Failure::BadTag)
                }
            }
            Kind::Keyword => {
                let (keyword, mac) = cookie.rsplit_once('.').ok_or(Failure::BadFormat)?;
                if keyword.is_empty() {
                    return Err(Failure::BadFormat);
                }
                let want = tag::hex_mac(&self.key, n, &[keyword.as_bytes()]);
                if tag::mac_matches(mac, &want) {
                    Ok(Verified { kind, expires: None })
                } else {
                    Err(Failure::BadTag)
                }
            }
            Kind::Confirm => {
                let mut it = cookie.split('.');
                let (Some(ts), Some(pid), Some(mac), None) = (it.next(), it.next(), it.next(), it.next()) else {
                    return Err(Failure::BadFormat);
                };
                // TMDA checks confirmation addresses with its default keyword, "accept".
                let want = tag::confirm_mac(&self.key, n, ts, pid, Some("accept"));
                if tag::mac_matches(mac, &want) {
                    Ok(Verified { kind, expires: None })
                } else {
                    Err(Failure::BadTag)
                }
            }
        }
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagger(delim: &str, hmac_bytes: usize) -> Tagger {
        Tagger {
            key: CryptKey::from_hex("b7fdc8a5afe5f364c87e2f984cbbd27450255675", std::path::Path::new("t")).unwrap(),
            hmac_bytes,
            delimiter: delim.into(),
            tags: TagNames::default(),
        }
    }

    const NOW: u64 = 1262937386;

    #[test]
    fn published_addresses() {
        let t = tagger("-", 3);
        assert_eq!(
            t.dated("testuser@testsite.com", NOW, 5 * 86400).unwrap(),
            "testuser-dated-1263369386.df2137@testsite.com"
        );
        assert_eq!(
            t.sender("testuser@testsite.com", "Sender@REmote.com").unwrap(),
            "testuser-sender-23834d@testsite.com"
        );
        assert_eq!(
            t.keyword("testuser@testsite.com", "keywordtest").unwrap(),
            "testuser-keyword-keywordtest.243548@testsite.com"
        );
        assert_eq!(
            t.confirm("testuser@testsite.com", NOW, 12345, None).unwrap(),
            "testuser-confirm-1262937386.12345.a45167@testsite.com"
        );
    }

    #[test]
    fn base_is_lower_cased_like_tmda() {
        let t = tagger("-", 3);
        assert_eq!(
            t.sender("TestUser@TestSite.COM", "sender@remote.com").unwrap(),
            "testuser-sender-23834d@testsite.com"
        );
        assert!(matches!(t.dated("nodomain", NOW, 1), Err(AddressError::NoAt(_))));
        assert!(matches!(t.dated("@x", NOW, 1), Err(AddressError::Empty(_))));
        // TMDA rejects an empty keyword when checking, so none is made.
        assert!(matches!(t.keyword("a@x", ""), Err(AddressError::EmptyKeyword)));
    }

    #[test]
    fn round_trips_for_every_kind_delimiter_and_length() {
        for delim in ["-", "+", "="] {
            for n in [1usize, 3, 4, 8, 20] {
                let t = tagger(delim, n);
                let base = "Jason.Doe@Example.org";
                let d = t.dated(base, NOW, 3600).unwrap();
                assert_eq!(
                    t.verify(&d, None, NOW).unwrap(),
                    Verified {
                        kind: Kind::Dated,
                        expires: Some(NOW + 3600)
                    }
                );
                assert_eq!(
                    t.verify(&d, None, NOW + 3600).unwrap().kind,
                    Kind::Dated,
                    "valid through its last second"
                );
                assert_eq!(t.verify(&d, None, NOW + 3601), Err(Failure::Expired(NOW + 3600)));

                let s = t.sender(base, "Friend@Mail.Example.COM").unwrap();
                assert_eq!(
                    t.verify(&s, Some("friend@mail.example.com"), NOW).unwrap().kind,
                    Kind::Sender
                );
                assert_eq!(t.verify(&s, Some("other@mail.example.com"), NOW), Err(Failure::BadTag));
                assert_eq!(t.verify(&s, None, NOW), Err(Failure::BadTag));

                let dom = t.sender(base, "example.com").unwrap();
                assert!(
                    t.verify(&dom, Some("anyone@mail.example.com"), NOW).is_ok(),
                    "parent domain matches"
                );
                assert!(t.verify(&dom, Some("Anyone <anyone@example.com>"), NOW).is_ok());
                assert_eq!(t.verify(&dom, Some("anyone@example.net"), NOW), Err(Failure::BadTag));

                for kw in ["lists", "Mixed-Case", "a.b,c", "x y"] {
                    let k = t.keyword(base, kw).unwrap();
                    assert_eq!(t.verify(&k, None, NOW).unwrap().kind, Kind::Keyword, "{k}");
                }
            }
        }
    }

    #[test]
    fn tampering_is_detected() {
        let t = tagger("-", 3);
        let d = t.dated("a@b.c", NOW, 86400).unwrap();
        // Pushing the expiry out invalidates the MAC.
        let forged = d.replace(&(NOW + 86400).to_string(), &(NOW + 999999).to_string());
        assert_eq!(t.verify(&forged, None, NOW), Err(Failure::BadTag));
        let other_key = Tagger {
            key: CryptKey::from_bytes(vec![1; 20]),
            ..t.clone()
        };
        assert_eq!(other_key.verify(&d, None, NOW), Err(Failure::BadTag));
        assert_eq!(t.verify("a-dated-xyz@b.c", None, NOW), Err(Failure::BadFormat));
        assert_eq!(t.verify("a-dated-1.2.3@b.c", None, NOW), Err(Failure::BadFormat));
        assert_eq!(t.verify("a-keyword-.abc@b.c", None, NOW), Err(Failure::BadFormat));
        assert_eq!(t.verify("a-keyword-abc@b.c", None, NOW), Err(Failure::BadFormat));
        assert_eq!(t.verify("plain@b.c", None, NOW), Err(Failure::NoCrypto));
        assert_eq!(t.verify("a-foo-bar@b.c", None, NOW), Err(Failure::NoCrypto));
        assert_eq!(t.verify("nonsense", None, NOW), Err(Failure::NoCrypto));
    }

    #[test]
    fn confirm_addresses_check_with_accept_keyword() {
        let t = tagger("-", 3);
        let c = t.confirm("a@b.c", NOW, 42, Some("accept")).unwrap();
        assert!(t.verify(&c, None, NOW).is_ok());
        let c2 = t.confirm("a@b.c", NOW, 42, None).unwrap();
        assert_eq!(t.verify(&c2, None, NOW), Err(Failure::BadTag));
    }

    #[test]
    fn alternative_tag_names() {
        let mut t = tagger("+", 3);
        t.tags.dated = vec!["D".into(), "exp".into()];
        let d = t.dated("u@h", NOW, 60).unwrap();
        assert!(d.starts_with("u+d+"), "{d}");
        let via_exp = d.replace("+d+", "+exp+");
        assert!(t.verify(&via_exp, None, NOW).is_ok());
        assert!(
            t.verify(&d.replace("+d+", "+dated+"), None, NOW).is_ok(),
            "the kind's own name always works"
        );
    }

    #[test]
    fn addr_spec_extraction() {
        assert_eq!(addr_spec("Jason <j@x.org>"), "j@x.org");
        assert_eq!(addr_spec(" j@x.org "), "j@x.org");
        assert_eq!(addr_spec("<j@x.org>"), "j@x.org");
    }
}
