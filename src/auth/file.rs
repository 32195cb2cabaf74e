//! The tofmipd file (`-a/--authfile`): `user:password` per line.
//!
//! Usernames are case-insensitive (TMDA lower-cased them); blank lines and `#` comment
//! lines are skipped. The file is checked for changes at every attempt (and read
//! again when it changed), so edits take effect at once. Like TMDA it must not be readable by others: ofmipd refuses to start unless
//! it is mode 600 or 400 and owned by the user ofmipd runs as ([`check_file`]).
//! Passwords are compared in constant time; a cleartext entry also serves CRAM-MD5.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Secret;
use super::scheme::Stored;
use super::{Source, Verdict, secret_eq};

pub struct AuthFile {
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("authfile {}: {}", path.display(), crate::exit::describe_io(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    // The fix is part of the message: the administrator who meets it wants the command.
    #[error("authfile {0} is mode {mode:03o}, but must be 600 or 400 so that no one else can read the passwords; \
fix it with: chmod 600 {1}", path.display(), crate::exit::shell_quote(&path.display().to_string()))]
    Mode { path: PathBuf, mode: u32 },
    #[error("authfile {0} is owned by {owner}, but must be owned by {want}, the user ofmipd runs as; \
fix it with: chown {want} {1}", path.display(), crate::exit::shell_quote(&path.display().to_string()))]
    Owner { path: PathBuf, owner: String, want: String },
    #[error("authfile {}:{line}: expected user:password", path.display())]
    Syntax { path: PathBuf, line: usize },
}

impl AuthFileError {
    /// sysexits(3): missing 66, mode or owner 77 (as for a key file), malformed 65.
    pub fn exit_code(&self) -> crate::exit::Sysexit {
        use crate::exit::Sysexit;
        match self {
            AuthFileError::Io { source, .. } => crate::exit::io_exit_code(source),
            AuthFileError::Mode { .. } | AuthFileError::Owner { .. } => Sysexit::NoPerm,
            AuthFileError::Syntax { .. } => Sysexit::DataErr,
        }
    }
}

/// A user's login name, or the number when the uid has none.
pub fn user_name(uid: u32) -> String {
    crate::os::passwd_field(
        // SAFETY: getpwuid_r only writes into the buffers passwd_field hands it.
        |pw, b, l, r| unsafe { libc::getpwuid_r(uid, pw, b, l, r) },
        |pw| pw.pw_name,
    )
    .unwrap_or_else(|| format!("uid {uid}"))
}

/// Refuse a password file others could read, one not owned by `owner`, or one that is malformed.
pub fn check_file(path: &Path, owner: u32) -> Result<(), AuthFileError> {
    let meta = check_mode(path)?;
    if meta.uid() != owner {
        return Err(AuthFileError::Owner {
            path: path.into(),
            owner: user_name(meta.uid()),
            want: user_name(owner),
        });
    }
    Ok(())
}

/// The mode check alone (600 or 400), and that the file parses.
pub fn check_mode(path: &Path) -> Result<std::fs::Metadata, AuthFileError> {
    let meta = std::fs::metadata(path).map_err(|e| AuthFileError::Io {
        path: path.into(),
        source: e,
    })?;
    let mode = meta.mode() & 0o7777;
    if mode != 0o600 && mode != 0o400 {
        return Err(AuthFileError::Mode {
            path: path.into(),
            mode,
        });
    }
    parse(path)?;
    Ok(meta)
}

/// (lower-cased user, password) pairs.
pub fn parse(path: &Path) -> Result<Vec<(String, String)>, AuthFileError> {
    let text = std::fs::read(path).map_err(|e| AuthFileError::Io {
        path: path.into(),
        source: e,
    })?;
    let text = String::from_utf8_lossy(&text);
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((u, p)) = l.split_once(':') else {
            return Err(AuthFileError::Syntax {
                path: path.into(),
                line: i + 1,
            });
        };
        out.push((u.trim().to_lowercase(), p.trim().to_string()));
    }
    Ok(out)
}

/// What identifies one version of the file: a rewrite (tmda passwd renames a new file
/// into place) changes the inode, an edit in place the size or modification time.
type Stamp = (u64, u64, i64, i64, u64);

fn stamp_of(m: &std::fs::Metadata) -> Stamp {
    (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size())
}

/// One version of the file, parsed, with what every attempt asks of it worked out once.
struct Parsed {
    /// Lower-cased user name to its stored password (the first line for a user wins).
    by_user: std::collections::HashMap<String, String>,
    /// Every entry can answer CRAM-MD5 (cleartext or {CRAM-MD5}).
    all_cram_md5: bool,
}

/// [`parse`], remembered while the file is unchanged: a server asks at every EHLO
/// (can CRAM-MD5 be offered?) and every AUTH, and one stat call is cheaper than
/// reading the file again. Edits still count from the next attempt on.
fn parse_cached(path: &Path) -> Result<std::sync::Arc<Parsed>, AuthFileError> {
    parse_within(path, std::time::Duration::ZERO)
}

/// [`parse_cached`], but without looking at the file again if it was looked at less
/// than `fresh` ago (for what is only advertised, such as CRAM-MD5 in EHLO).
fn parse_within(path: &Path, fresh: std::time::Duration) -> Result<std::sync::Arc<Parsed>, AuthFileError> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    type Versions = HashMap<PathBuf, (Stamp, Instant, Arc<Parsed>)>;
    static CACHE: Mutex<Option<Versions>> = Mutex::new(None);
    let io = |e| AuthFileError::Io {
        path: path.into(),
        source: e,
    };
    let cached = CACHE.lock().ok().and_then(|c| c.as_ref()?.get(path).cloned());
    if let Some((_, checked, parsed)) = &cached
        && !fresh.is_zero()
        && checked.elapsed() < fresh
    {
        return Ok(parsed.clone());
    }
    let checked = Instant::now();
    let now = stamp_of(&std::fs::metadata(path).map_err(io)?);
    let parsed = match cached {
        Some((stamp, _, parsed)) if stamp == now => parsed,
        _ => {
            // Stat before reading: a change in between is seen at the next attempt.
            let entries = parse(path)?;
            let all_cram_md5 = entries
                .iter()
                .all(|(_, p)| Stored::parse(p).is_ok_and(|s| s.supports_cram_md5()));
            let mut by_user = HashMap::with_capacity(entries.len());
            for (u, p) in entries {
                by_user.entry(u).or_insert(p);
            }
            Arc::new(Parsed { by_user, all_cram_md5 })
        }
    };
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new)
            .insert(path.to_path_buf(), (now, checked, parsed.clone()));
    }
    Ok(parsed)
}

impl AuthFile {
    fn lookup(&self, user: &str) -> Result<Option<Stored>, Verdict> {
        let parsed = parse_cached(&self.path).map_err(|e| Verdict::Unavailable(e.to_string()))?;
        let user = user.to_lowercase();
        match parsed.by_user.get(&user) {
            None => Ok(None),
            Some(p) => Stored::parse(p)
                .map(Some)
                .map_err(|e| Verdict::Unavailable(format!("{}: entry for {user}: {e}", self.path.display()))),
        }
    }

    /// Whether every entry can answer CRAM-MD5 (cleartext or {CRAM-MD5}). Asked for
    /// EHLO's list only, so the file's state of up to a second ago will do.
    pub fn all_support_cram_md5(&self) -> bool {
        parse_within(&self.path, std::time::Duration::from_secs(1)).is_ok_and(|p| p.all_cram_md5)
    }
}

impl Source for AuthFile {
    fn describe(&self) -> String {
        format!("authfile {}", self.path.display())
    }

    fn check_password(&self, user: &str, password: &str) -> Verdict {
        match self.lookup(user) {
            Err(v) => v,
            Ok(Some(stored)) if stored.verify(password) => Verdict::Accepted,
            Ok(_) => Verdict::Denied,
        }
    }

    fn check_cram_md5(&self, user: &str, challenge: &str, digest: &str) -> Option<Verdict> {
        Some(match self.lookup(user) {
            Err(v) => v,
            Ok(Some(stored)) => match stored.cram_md5(challenge.as_bytes()) {
                Some(want) if secret_eq(want.as_bytes(), digest.as_bytes()) => Verdict::Accepted,
                _ => Verdict::Denied,
            },
            Ok(None) => Verdict::Denied,
        })
    }

    fn supports_cram_md5(&self) -> bool {
        self.all_support_cram_md5()
    }

    /// A local file read, then a constant-time comparison: quick unless the entry is a
    /// hash that is slow on purpose.
    fn check_quickly(&self, user: &str, secret: &Secret) -> Option<Verdict> {
        let stored = match self.lookup(user) {
            Err(v) => return Some(v),
            Ok(None) => return Some(Verdict::Denied),
            Ok(Some(stored)) if stored.is_cheap() => stored,
            Ok(Some(_)) => return None,
        };
        Some(match secret {
            Secret::Password(p) if stored.verify(p) => Verdict::Accepted,
            Secret::Password(_) => Verdict::Denied,
            Secret::CramMd5 { challenge, digest } => match stored.cram_md5(challenge.as_bytes()) {
                Some(want) if secret_eq(want.as_bytes(), digest.as_bytes()) => Verdict::Accepted,
                _ => Verdict::Denied,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("tofmipd");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        (d, p)
    }

    #[test]
    fn passwords_and_near_misses() {
        let (_d, p) = file("# users\n\nAlice:wonderland\nbob: builder \n", 0o600);
        let a = AuthFile { path: p };
        assert_eq!(a.check_password("alice", "wonderland"), Verdict::Accepted);
        assert_eq!(a.check_password("ALICE", "wonderland"), Verdict::Accepted);
        assert_eq!(a.check_password("bob", "builder"), Verdict::Accepted);
        for bad in [
            "wonderlan",
            "wonderlandd",
            " wonderland",
            "Wonderland",
            "wonder\0land",
            "",
            "wonderland\n",
        ] {
            assert_eq!(a.check_password("alice", bad), Verdict::Denied, "{bad:?}");
        }
        assert_eq!(a.check_password("carol", "x"), Verdict::Denied);
        assert_eq!(a.check_password("# users", ""), Verdict::Denied);
        let d = super::super::cram_md5_digest(b"wonderland", b"<1.2@h>");
        assert_eq!(a.check_cram_md5("Alice", "<1.2@h>", &d), Some(Verdict::Accepted));
        assert_eq!(a.check_cram_md5("alice", "<1.3@h>", &d), Some(Verdict::Denied));
    }

    #[test]
    fn the_first_line_for_a_user_counts() {
        let (_d, p) = file("alice:one\nALICE:two\n", 0o600);
        let a = AuthFile { path: p };
        assert_eq!(a.check_password("alice", "one"), Verdict::Accepted);
        assert_eq!(a.check_password("alice", "two"), Verdict::Denied);
        assert!(a.all_support_cram_md5());
        use super::super::scheme;
        let (_d, p) = file(
            &format!(
                "alice:one\nbob:{}\n",
                scheme::hash(scheme::Scheme::Argon2id, "x").unwrap()
            ),
            0o600,
        );
        assert!(
            !AuthFile { path: p }.all_support_cram_md5(),
            "one hashed entry rules CRAM-MD5 out"
        );
    }

    #[test]
    fn what_ehlo_offers_follows_the_file_within_a_second() {
        let (d, p) = file("alice:one\n", 0o600);
        let a = AuthFile { path: p.clone() };
        assert!(a.all_support_cram_md5());
        let hashed = super::super::scheme::hash(super::super::scheme::Scheme::Argon2id, "one").unwrap();
        let new = d.path().join("new");
        std::fs::write(&new, format!("alice:{hashed}\n")).unwrap();
        std::fs::rename(&new, &p).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(!a.all_support_cram_md5());
        // An attempt always looks at the file itself.
        std::fs::write(&new, "alice:two\n").unwrap();
        std::fs::rename(&new, &p).unwrap();
        assert_eq!(a.check_password("alice", "two"), Verdict::Accepted);
        assert!(a.all_support_cram_md5(), "the attempt refreshed what EHLO offers");
    }

    #[test]
    fn edits_count_from_the_next_attempt() {
        let (d, p) = file("alice:one\n", 0o600);
        let a = AuthFile { path: p.clone() };
        assert_eq!(a.check_password("alice", "one"), Verdict::Accepted);
        // Rewritten and renamed into place (as tmda passwd does), same size.
        let new = d.path().join("new");
        std::fs::write(&new, "alice:two\n").unwrap();
        std::fs::rename(&new, &p).unwrap();
        assert_eq!(a.check_password("alice", "one"), Verdict::Denied);
        assert_eq!(a.check_password("alice", "two"), Verdict::Accepted);
        // Edited in place.
        std::fs::write(&p, "alice:three\n").unwrap();
        assert_eq!(a.check_password("alice", "two"), Verdict::Denied);
        assert_eq!(a.check_password("alice", "three"), Verdict::Accepted);
        std::fs::remove_file(&p).unwrap();
        assert!(matches!(a.check_password("alice", "three"), Verdict::Unavailable(_)));
    }

    #[test]
    fn quick_answers_only_for_cheap_entries() {
        use super::super::{Chain, scheme};
        use crate::auth::AuthOutcome;
        let slow = scheme::hash(scheme::Scheme::Sha512Crypt, "pw").unwrap();
        let (_d, p) = file(&format!("alice:wonderland\nbob:{slow}\n"), 0o600);
        let chain = Chain {
            sources: vec![Box::new(AuthFile { path: p })],
        };
        let pw = |s: &str| Secret::Password(s.into());
        let quick = |u: &str, s: &Secret| chain.check_quickly(u, s).map(|(o, _)| o);
        assert_eq!(quick("alice", &pw("wonderland")), Some(AuthOutcome::Accepted));
        assert_eq!(quick("alice", &pw("wonderlan")), Some(AuthOutcome::Denied));
        assert_eq!(quick("nobody", &pw("x")), Some(AuthOutcome::Denied));
        let d = super::super::cram_md5_digest(b"wonderland", b"<1.2@h>");
        let cram = Secret::CramMd5 {
            challenge: "<1.2@h>".into(),
            digest: d,
        };
        assert_eq!(quick("alice", &cram), Some(AuthOutcome::Accepted));
        // A hash that is slow on purpose goes to a thread that may block.
        assert_eq!(quick("bob", &pw("pw")), None);
        assert_eq!(chain.check("bob", &pw("pw")).0, AuthOutcome::Accepted);
    }

    #[test]
    fn file_checks() {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let (_d, p) = file("a:b\n", 0o600);
        assert!(check_file(&p, uid).is_ok());
        let (_d, p) = file("a:b\n", 0o400);
        assert!(check_file(&p, uid).is_ok());
        let (_d, p) = file("a:b\n", 0o644);
        assert!(matches!(
            check_file(&p, uid),
            Err(AuthFileError::Mode { mode: 0o644, .. })
        ));
        let (_d, p) = file("a:b\n", 0o600);
        let e = check_file(&p, uid + 1).unwrap_err();
        assert!(matches!(e, AuthFileError::Owner { .. }));
        assert_eq!(e.exit_code(), crate::exit::Sysexit::NoPerm);
        assert!(
            e.to_string()
                .ends_with(&format!("fix it with: chown {} {}", user_name(uid + 1), p.display())),
            "{e}"
        );
        let (_d, p) = file("a:b\n", 0o644);
        let e = check_file(&p, uid).unwrap_err();
        assert!(
            e.to_string()
                .ends_with(&format!("fix it with: chmod 600 {}", p.display())),
            "{e}"
        );
        assert_eq!(e.exit_code(), crate::exit::Sysexit::NoPerm);
        let (_d, p) = file("a:b\nnocolon\n", 0o600);
        assert_eq!(
            check_file(&p, uid).unwrap_err().to_string(),
            format!("authfile {}:2: expected user:password", p.display())
        );
    }
}
