//! How a password is stored in the tofmipd file, and checking a password against it.
//!
//! TMDA's files hold cleartext, and that stays the default. Also understood, with
//! Dovecot's `{SCHEME}` prefixes so entries can be shared with Dovecot passwd-files:
//! `{PLAIN}`/`{CLEARTEXT}`; `{CRAM-MD5}` (Dovecot's precomputed HMAC-MD5 contexts,
//! byte-compatible with `doveadm pw -s CRAM-MD5`, which keeps CRAM-MD5 working without
//! cleartext); crypt(3) hashes through the system's libcrypt: `$6$` SHA-512-CRYPT,
//! `$5$`, `$1$`, `$y$` yescrypt and traditional DES (which TMDA's own Auth module
//! accepted); and `{ARGON2ID}`/`$argon2id$`. Only cleartext and `{CRAM-MD5}` entries can
//! answer CRAM-MD5.

use std::ffi::{CStr, CString};

use md5::block_api::compress;

use super::secret_eq;

/// A stored password.
#[derive(Clone, PartialEq, Eq)]
pub enum Stored {
    Plain(String),
    /// Dovecot's CRAM-MD5 form: the MD5 states after the outer and inner HMAC pads.
    CramMd5 {
        outer: [u32; 4],
        inner: [u32; 4],
    },
    Crypt(String),
    Argon2(String),
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stored::Plain(_) => "Stored::Plain(<redacted>)",
            Stored::CramMd5 { .. } => "Stored::CramMd5(<redacted>)",
            Stored::Crypt(_) => "Stored::Crypt(<redacted>)",
            Stored::Argon2(_) => "Stored::Argon2(<redacted>)",
        })
    }
}

/// The schemes `tmda passwd` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheme {
    /// Cleartext (TMDA compatible; allows CRAM-MD5)
    Plain,
    /// Dovecot's CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)
    CramMd5,
    /// Argon2id (strongest; no CRAM-MD5; not readable by TMDA)
    Argon2id,
    /// SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)
    Sha512Crypt,
}

fn looks_like_des_crypt(s: &str) -> bool {
    s.len() == 13 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

impl Stored {
    pub fn parse(text: &str) -> Result<Stored, String> {
        if let Some(rest) = text.strip_prefix('{') {
            let (scheme, value) = rest.split_once('}').ok_or("unterminated {SCHEME} prefix")?;
            return match scheme.to_ascii_uppercase().as_str() {
                "PLAIN" | "CLEARTEXT" => Ok(Stored::Plain(value.to_string())),
                "CRAM-MD5" => parse_cram(value),
                "CRYPT" | "DES-CRYPT" | "MD5-CRYPT" | "SHA256-CRYPT" | "SHA512-CRYPT" | "BLF-CRYPT" => {
                    Ok(Stored::Crypt(value.to_string()))
                }
                "ARGON2ID" | "ARGON2I" => Ok(Stored::Argon2(value.to_string())),
                other => Err(format!("unsupported password scheme {{{other}}}")),
            };
        }
        if text.starts_with("$argon2") {
            return Ok(Stored::Argon2(text.to_string()));
        }
        if ["$1$", "$5$", "$6$", "$y$", "$2b$", "$2y$"]
            .iter()
            .any(|p| text.starts_with(p))
        {
            return Ok(Stored::Crypt(text.to_string()));
        }
        Ok(Stored::Plain(text.to_string()))
    }

    pub fn verify(&self, password: &str) -> bool {
        match self {
            // TMDA compared cleartext; a 13-character entry may also be a DES crypt hash.
            Stored::Plain(p) => {
                secret_eq(p.as_bytes(), password.as_bytes())
                    || (looks_like_des_crypt(p)
                        && crypt(password, p).is_some_and(|h| secret_eq(h.as_bytes(), p.as_bytes())))
            }
            Stored::CramMd5 { outer, inner } => {
                let (o, i) = cram_contexts(password.as_bytes());
                secret_eq(&words(&o), &words(outer)) & secret_eq(&words(&i), &words(inner))
            }
            Stored::Crypt(h) => crypt(password, h).is_some_and(|c| secret_eq(c.as_bytes(), h.as_bytes())),
            Stored::Argon2(h) => {
                use argon2::password_hash::{PasswordHash, PasswordVerifier};
                PasswordHash::new(h).is_ok_and(|parsed| {
                    argon2::Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
            }
        }
    }

    /// The scheme's name as `tmda passwd --scheme` and Dovecot spell it.
    pub fn scheme_name(&self) -> &'static str {
        match self {
            Stored::Plain(_) => "plain",
            Stored::CramMd5 { .. } => "cram-md5",
            Stored::Crypt(h) => match h.get(..3).unwrap_or("") {
                "$6$" => "sha512-crypt",
                "$5$" => "sha256-crypt",
                "$1$" => "md5-crypt",
                "$y$" => "yescrypt",
                "$2b" | "$2y" => "bcrypt",
                _ => "des-crypt",
            },
            Stored::Argon2(h) if h.starts_with("$argon2id$") => "argon2id",
            Stored::Argon2(h) if h.starts_with("$argon2d$") => "argon2d",
            Stored::Argon2(_) => "argon2i",
        }
    }

    /// Verifying it costs next to nothing (no hash function with a work factor).
    pub fn is_cheap(&self) -> bool {
        match self {
            Stored::Plain(p) => !looks_like_des_crypt(p),
            Stored::CramMd5 { .. } => true,
            Stored::Crypt(_) | Stored::Argon2(_) => false,
        }
    }

    pub fn supports_cram_md5(&self) -> bool {
        matches!(self, Stored::Plain(_) | Stored::CramMd5 { .. })
    }

    /// The hex HMAC-MD5 of `challenge`, if this entry can compute it.
    pub fn cram_md5(&self, challenge: &[u8]) -> Option<String> {
        let (outer, inner) = match self {
            Stored::Plain(p) => cram_contexts(p.as_bytes()),
            Stored::CramMd5 { outer, inner } => (*outer, *inner),
            _ => return None,
        };
        let inner_digest = finish_md5(inner, 64, challenge);
        let digest = finish_md5(outer, 64, &inner_digest);
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Write a password in `scheme`.
pub fn hash(scheme: Scheme, password: &str) -> Result<String, String> {
    match scheme {
        Scheme::Plain => Ok(password.to_string()),
        Scheme::CramMd5 => {
            let (o, i) = cram_contexts(password.as_bytes());
            let mut hex = String::from("{CRAM-MD5}");
            for w in o.iter().chain(i.iter()) {
                for b in w.to_le_bytes() {
                    hex.push_str(&format!("{b:02x}"));
                }
            }
            Ok(hex)
        }
        Scheme::Argon2id => {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let mut bytes = [0u8; 16];
            // SAFETY: getrandom fills at most bytes.len() bytes.
            let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
            if n != bytes.len() as isize {
                return Err("no randomness for the salt".into());
            }
            let salt = SaltString::encode_b64(&bytes).map_err(|e| e.to_string())?;
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| format!("{{ARGON2ID}}{h}"))
                .map_err(|e| e.to_string())
        }
        Scheme::Sha512Crypt => {
            let setting = gensalt("$6$").ok_or("libcrypt could not make a $6$ salt")?;
            crypt(password, &setting)
                .map(|h| format!("{{SHA512-CRYPT}}{h}"))
                .ok_or_else(|| "libcrypt failed".to_string())
        }
    }
}

fn parse_cram(hex: &str) -> Result<Stored, String> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a {CRAM-MD5} entry is 64 hex digits".into());
    }
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let word = |i: usize| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    Ok(Stored::CramMd5 {
        outer: [word(0), word(1), word(2), word(3)],
        inner: [word(4), word(5), word(6), word(7)],
    })
}

const MD5_INIT: [u32; 4] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476];

/// The MD5 states after one block of key^opad and key^ipad (RFC 2104), as Dovecot stores them.
fn cram_contexts(key: &[u8]) -> ([u32; 4], [u32; 4]) {
    use md5::Digest;
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..16].copy_from_slice(&md5::Md5::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |x: u8| {
        let mut b = [0u8; 64];
        for (o, kb) in b.iter_mut().zip(k) {
            *o = kb ^ x;
        }
        b
    };
    let (mut o, mut i) = (MD5_INIT, MD5_INIT);
    compress(&mut o, &[pad(0x5c)]);
    compress(&mut i, &[pad(0x36)]);
    (o, i)
}

/// Continue MD5 from `state` (after `done` bytes) over `data`, and finish.
fn finish_md5(mut state: [u32; 4], done: u64, data: &[u8]) -> [u8; 16] {
    let mut buf = data.to_vec();
    let bits = (done + data.len() as u64) * 8;
    buf.push(0x80);
    while buf.len() % 64 != 56 {
        buf.push(0);
    }
    buf.extend_from_slice(&bits.to_le_bytes());
    let blocks: Vec<[u8; 64]> = buf.chunks(64).map(|c| c.try_into().unwrap()).collect();
    compress(&mut state, &blocks);
    let mut out = [0u8; 16];
    for (i, w) in state.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

fn words(w: &[u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, x) in w.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
    }
    out
}

// SAFETY: the signatures are libxcrypt's (crypt.h); callers uphold their contracts.
#[link(name = "crypt")]
unsafe extern "C" {
    fn crypt_r(phrase: *const libc::c_char, setting: *const libc::c_char, data: *mut libc::c_void)
    -> *mut libc::c_char;
    fn crypt_gensalt_rn(
        prefix: *const libc::c_char,
        count: libc::c_ulong,
        rbytes: *const libc::c_char,
        nrbytes: libc::c_int,
        output: *mut libc::c_char,
        size: libc::c_int,
    ) -> *mut libc::c_char;
}

/// crypt(3) through libcrypt's reentrant interface. `None` for an unusable setting.
pub fn crypt(password: &str, setting: &str) -> Option<String> {
    let (p, s) = (CString::new(password).ok()?, CString::new(setting).ok()?);
    // libxcrypt's struct crypt_data is 32768 bytes; it must start zeroed.
    let mut data = vec![0u8; 32768];
    // SAFETY: valid C strings; `data` is large enough and outlives the call; the
    // result points into `data` and is copied before `data` is dropped.
    let out = unsafe { crypt_r(p.as_ptr(), s.as_ptr(), data.as_mut_ptr().cast()) };
    if out.is_null() {
        return None;
    }
    // SAFETY: non-null, so a NUL-terminated string inside `data`, which is still alive.
    let r = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
    // libxcrypt signals failure with "*0" or "*1".
    (!r.starts_with('*')).then_some(r)
}

fn gensalt(prefix: &str) -> Option<String> {
    let p = CString::new(prefix).ok()?;
    let mut out = vec![0 as libc::c_char; 128];
    // SAFETY: NULL random bytes ask libcrypt to use the OS generator; out is writable.
    let r = unsafe {
        crypt_gensalt_rn(
            p.as_ptr(),
            0,
            std::ptr::null(),
            0,
            out.as_mut_ptr(),
            out.len() as libc::c_int,
        )
    };
    if r.is_null() {
        return None;
    }
    // SAFETY: non-null, so the NUL-terminated setting written into `out`, still alive.
    Some(unsafe { CStr::from_ptr(r) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cram_md5_context_matches_hmac() {
        let stored = Stored::parse(&hash(Scheme::CramMd5, "tanstaaftanstaaf").unwrap()).unwrap();
        let ch = b"<1896.697170952@postoffice.reston.mci.net>";
        assert_eq!(stored.cram_md5(ch).unwrap(), "b913a602c7eda7a495b4e6e7334d3890");
        assert_eq!(
            Stored::Plain("tanstaaftanstaaf".into()).cram_md5(ch).unwrap(),
            "b913a602c7eda7a495b4e6e7334d3890"
        );
        assert!(stored.verify("tanstaaftanstaaf") && !stored.verify("tanstaaftanstaa"));
        // A key longer than a block is hashed first (RFC 2104).
        let long = "k".repeat(100);
        let s = Stored::parse(&hash(Scheme::CramMd5, &long).unwrap()).unwrap();
        assert_eq!(s.cram_md5(b"x"), Stored::Plain(long).cram_md5(b"x"));
    }

    #[test]
    fn every_scheme_round_trips_and_rejects_near_misses() {
        for scheme in [Scheme::Plain, Scheme::CramMd5, Scheme::Argon2id, Scheme::Sha512Crypt] {
            let h = hash(scheme, "wonderland").unwrap();
            let s = Stored::parse(&h).unwrap();
            assert!(s.verify("wonderland"), "{scheme:?}");
            for bad in ["wonderlan", "wonderlandd", " wonderland", "", "Wonderland"] {
                assert!(!s.verify(bad), "{scheme:?} accepted {bad:?}");
            }
            assert_eq!(s.supports_cram_md5(), matches!(scheme, Scheme::Plain | Scheme::CramMd5));
        }
    }

    #[test]
    fn crypt_compatibility() {
        // The DES vector of the project's notes (Python's crypt gives the same).
        assert_eq!(crypt("secret", "ab").as_deref(), Some("abNANd1rDfiNc"));
        let s = Stored::parse("abNANd1rDfiNc").unwrap();
        assert!(s.verify("secret") && s.verify("abNANd1rDfiNc") && !s.verify("secreT"));
        let six = crypt("pw", "$6$saltsalt").unwrap();
        assert!(Stored::parse(&six).unwrap().verify("pw"));
        assert!(Stored::parse(&format!("{{SHA512-CRYPT}}{six}")).unwrap().verify("pw"));
        assert!(Stored::parse("{FROB}x").is_err());
        assert!(Stored::parse("{CRAM-MD5}abc").is_err());
    }
}
