//! TMDA's cookies: HMAC-SHA1 tags, computed exactly as TMDA 1.1.x does.
//!
//! Pure functions of (key, bytes): no clock, no config, no I/O. The MAC is
//! HMAC-SHA1 keyed with the raw crypt key, truncated to `hmac_bytes` bytes and written
//! as lower-case hex. `hmac_bytes` above 20 gives the whole digest, like Python slicing.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::key::CryptKey;

type HmacSha1 = Hmac<Sha1>;

/// The full 20-byte HMAC-SHA1 of the concatenated parts.
pub fn mac(key: &CryptKey, parts: &[&[u8]]) -> [u8; 20] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <HmacSha1 as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The truncated MAC in lower-case hex, as it appears in addresses.
pub fn hex_mac(key: &CryptKey, hmac_bytes: usize, parts: &[&[u8]]) -> String {
    let full = mac(key, parts);
    full[..hmac_bytes.min(full.len())]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time comparison of a MAC found in an address with the expected one.
pub fn mac_matches(found: &str, expected: &str) -> bool {
    found.len() == expected.len() && bool::from(found.as_bytes().ct_eq(expected.as_bytes()))
}

/// Dated cookie `EXPIRY.MAC(EXPIRY)` for an absolute expiry time.
pub fn dated_cookie(key: &CryptKey, hmac_bytes: usize, expires: u64) -> String {
    let exp = expires.to_string();
    let m = hex_mac(key, hmac_bytes, &[exp.as_bytes()]);
    format!("{exp}.{m}")
}

/// Sender cookie: MAC of the lower-cased sender address (or domain).
pub fn sender_cookie(key: &CryptKey, hmac_bytes: usize, sender: &str) -> String {
    hex_mac(key, hmac_bytes, &[sender.to_lowercase().as_bytes()])
}

/// Make a keyword safe for the local part of an address: every character outside
/// the RFC 2822 atom set, and the recipient delimiter, becomes `?`.
///
/// TMDA 1.1.12's pattern had a `+-/` range that also let `,` and `.` through; we follow
/// the corrected pattern of later TMDA (and the published test vectors), so a keyword
/// containing `.` or `,` is tagged with `?` there. Verification is unaffected: it MACs
/// the keyword exactly as it stands in the address.
pub fn sanitize_keyword(keyword: &str, delimiter: &str) -> String {
    let atom: String = keyword
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    if delimiter.is_empty() {
        atom
    } else {
        atom.replace(delimiter, "?")
    }
}

/// Keyword cookie `KEYWORD.MAC(KEYWORD)` (the keyword sanitised first).
pub fn keyword_cookie(key: &CryptKey, hmac_bytes: usize, keyword: &str, delimiter: &str) -> String {
    let kw = sanitize_keyword(keyword, delimiter);
    let m = hex_mac(key, hmac_bytes, &[kw.as_bytes()]);
    format!("{kw}.{m}")
}

/// MAC part of a confirmation cookie: MAC(TIME + PID [+ KEYWORD]).
pub fn confirm_mac(key: &CryptKey, hmac_bytes: usize, time: &str, pid: &str, keyword: Option<&str>) -> String {
    match keyword.filter(|k| !k.is_empty()) {
        Some(k) => hex_mac(key, hmac_bytes, &[time.as_bytes(), pid.as_bytes(), k.as_bytes()]),
        None => hex_mac(key, hmac_bytes, &[time.as_bytes(), pid.as_bytes()]),
    }
}

/// Confirmation cookie `TIME.PID.MAC`.
pub fn confirm_cookie(key: &CryptKey, hmac_bytes: usize, time: u64, pid: u32, keyword: Option<&str>) -> String {
    let (t, p) = (time.to_string(), pid.to_string());
    let m = confirm_mac(key, hmac_bytes, &t, &p, keyword);
    format!("{t}.{p}.{m}")
}

/// An `X-TMDA-Fingerprint` computed incrementally (the body is streamed in).
pub struct Fingerprint(HmacSha1);

impl Fingerprint {
    pub fn new(key: &CryptKey) -> Fingerprint {
        Fingerprint(<HmacSha1 as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length"))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> String {
        let digest: [u8; 20] = self.0.finalize().into_bytes().into();
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    }
}

/// `X-TMDA-Fingerprint` value: base64 of the full HMAC over the values, unpadded.
pub fn fingerprint<S: AsRef<[u8]>>(key: &CryptKey, values: &[S]) -> String {
    let parts: Vec<&[u8]> = values.iter().map(|v| v.as_ref()).collect();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac(key, &parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key of TMDA's published test vectors.
    pub(crate) fn vector_key() -> CryptKey {
        CryptKey::from_hex("b7fdc8a5afe5f364c87e2f984cbbd27450255675", std::path::Path::new("test")).unwrap()
    }

    #[test]
    fn hmac_sha1_rfc2202_case_2() {
        let k = CryptKey::from_bytes(b"Jefe".to_vec());
        let hex = hex_mac(&k, 20, &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn confirm_vectors() {
        let k = vector_key();
        assert_eq!(
            confirm_cookie(&k, 3, 1262937386, 12345, None),
            "1262937386.12345.a45167"
        );
        assert_eq!(
            confirm_cookie(&k, 3, 1262937386, 12345, Some("keyword")),
            "1262937386.12345.f5ee35"
        );
        // An empty keyword is no keyword, as in TMDA.
        assert_eq!(
            confirm_cookie(&k, 3, 1262937386, 12345, Some("")),
            "1262937386.12345.a45167"
        );
    }

    #[test]
    fn dated_vectors() {
        let k = vector_key();
        assert_eq!(dated_cookie(&k, 3, 1262937386 + 5 * 86400), "1263369386.df2137");
        assert_eq!(dated_cookie(&k, 3, 1262937386 + 60), "1262937446.926a58");
    }

    #[test]
    fn sender_vector_is_case_insensitive() {
        let k = vector_key();
        assert_eq!(sender_cookie(&k, 3, "Sender@REmote.com"), "23834d");
        assert_eq!(sender_cookie(&k, 3, "sender@remote.com"), "23834d");
    }

    #[test]
    fn keyword_vectors() {
        let k = vector_key();
        for (kw, cookie) in [
            ("keywordtest", "keywordtest.243548"),
            ("keyword-test", "keyword?test.0de87a"),
            ("KeyWordTest0123", "KeyWordTest0123.51993d"),
            ("!#$%&*+/=^_`{|}'~", "!#$%&*+/=^_`{|}'~.269c47"),
            (" \"():;<>?@[\\]", "?????????????.372018"),
            (".,", "??.925dcc"),
        ] {
            assert_eq!(keyword_cookie(&k, 3, kw, "-"), cookie, "keyword {kw:?}");
        }
    }

    #[test]
    fn fingerprint_vectors() {
        let k = vector_key();
        let spaces = " ".repeat(40);
        let all = ["foo", "bar", "baz", "012456789", spaces.as_str()];
        let expected = [
            "afqG6DMhSxO4KpBDUsu56bh2INg",
            "tfw9skV5Y0+l/rfwjzjCjt/cjqY",
            "h4Hss53veo3tdIHjdjsKXqbxrmY",
            "zJVrBypI7Sk46bTy5WPJbikGgGc",
            "vIKcOmXJedx4BUbWwN/u3xohzTA",
        ];
        for (n, want) in expected.iter().enumerate() {
            assert_eq!(fingerprint(&k, &all[..=n]), *want, "first {} values", n + 1);
        }
    }

    #[test]
    fn hmac_bytes_truncates_and_clamps() {
        let k = vector_key();
        let full = hex_mac(&k, 20, &[b"x"]);
        assert_eq!(full.len(), 40);
        for n in 0..=20 {
            assert_eq!(hex_mac(&k, n, &[b"x"]), full[..2 * n]);
        }
        assert_eq!(hex_mac(&k, 64, &[b"x"]), full);
    }

    #[test]
    fn sanitize_respects_delimiter() {
        assert_eq!(sanitize_keyword("a+b-c", "+"), "a?b-c");
        assert_eq!(sanitize_keyword("a+b-c", "-"), "a+b?c");
        assert_eq!(sanitize_keyword("héllo", "-"), "h?llo");
    }

    #[test]
    fn mac_compare() {
        assert!(mac_matches("abc123", "abc123"));
        assert!(!mac_matches("abc124", "abc123"));
        assert!(!mac_matches("abc12", "abc123"));
    }
}
