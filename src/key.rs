//! The user's secret: `CRYPT_KEY_FILE` (`~/.tmda/crypt_key`).
//!
//! The file holds 40 hex digits (160 bits). TMDA strips surrounding white space,
//! un-hexes it and uses the raw bytes as the HMAC key. Like TMDA we refuse a key file
//! that others can read (mode must be 0400 or 0600, or 0640 with `ALLOW_MODE_640`).
//! Beyond TMDA we also refuse an empty or non-hex key with a clear message instead of
//! a Python traceback, and `install` writes a new key atomically with mode 0600.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::exit::Sysexit;

/// Length of a generated key in bytes (TMDA: 160 bits).
pub const KEY_BYTES: usize = 20;

/// A raw HMAC key. `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptKey(Vec<u8>);

impl fmt::Debug for CryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CryptKey(<{} bytes redacted>)", self.0.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("can't find key file {}: run 'tmda keygen --install' to create one", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {}", path.display(), crate::exit::describe_io(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} must be chmod 400 or 600 (it is {mode:03o}){}", path.display(),
        if *mode == 0o640 { "; set ALLOW_MODE_640 = True to allow 640" } else { "" })]
    Mode { path: PathBuf, mode: u32 },
    #[error("{}: the key is not valid hex ({reason}); it should be the 40 hex digits printed by 'tmda keygen'", path.display())]
    NotHex { path: PathBuf, reason: &'static str },
    #[error("{}: the key file is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{} already exists; use --force to replace it (every tagged address made with the old key stops verifying)", path.display())]
    Exists { path: PathBuf },
    #[error("random device {}: {reason}", path.display())]
    Random { path: PathBuf, reason: String },
}

impl KeyError {
    pub fn exit_code(&self) -> Sysexit {
        match self {
            KeyError::Missing { .. } => Sysexit::Config,
            KeyError::Io { source, .. } => crate::exit::io_exit_code(source),
            KeyError::Mode { .. } => Sysexit::NoPerm,
            KeyError::NotHex { .. } | KeyError::Empty { .. } => Sysexit::Config,
            KeyError::Exists { .. } => Sysexit::CantCreat,
            KeyError::Random { .. } => Sysexit::Unavailable,
        }
    }
}

impl CryptKey {
    /// A key from raw bytes (tests, or a freshly generated key).
    pub fn from_bytes(bytes: Vec<u8>) -> CryptKey {
        CryptKey(bytes)
    }

    /// Parse the textual form kept in the key file.
    pub fn from_hex(text: &str, path: &Path) -> Result<CryptKey, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty {
                path: path.to_path_buf(),
            });
        }
        decode_hex(text).map(CryptKey).map_err(|reason| KeyError::NotHex {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Load and check a key file the way TMDA does.
    pub fn load(path: &Path, allow_mode_640: bool) -> Result<CryptKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        let mode = file.metadata().map_err(io)?.mode() & 0o7777;
        let mode_ok = mode == 0o400 || mode == 0o600 || (allow_mode_640 && mode == 0o640);
        if !mode_ok {
            return Err(KeyError::Mode {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                KeyError::NotHex {
                    path: path.to_path_buf(),
                    reason: "not text",
                }
            } else {
                io(e)
            }
        })?;
        CryptKey::from_hex(&text, path)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex, as `tmda keygen` prints it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Draw a new key from a random device (TMDA: `/dev/urandom`).
    pub fn generate(device: &Path) -> Result<CryptKey, KeyError> {
        let rnd = |reason: String| KeyError::Random {
            path: device.to_path_buf(),
            reason,
        };
        let mut f = std::fs::File::open(device).map_err(|e| rnd(crate::exit::describe_io(&e)))?;
        let mut buf = vec![0u8; KEY_BYTES];
        f.read_exact(&mut buf).map_err(|e| {
            rnd(format!(
                "could not read {KEY_BYTES} bytes: {}",
                crate::exit::describe_io(&e)
            ))
        })?;
        Ok(CryptKey(buf))
    }

    /// Write the key file atomically with mode 0600: a temporary file in the same
    /// directory (created 0600 before any secret is written), fsync, then rename.
    pub fn install(&self, path: &Path, force: bool) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !force && path.symlink_metadata().is_ok() {
            return Err(KeyError::Exists {
                path: path.to_path_buf(),
            });
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| KeyError::Io {
                    path: dir.clone(),
                    source: e,
                })?;
        }
        crate::safe_dir::check(&dir, "a key").map_err(|e| KeyError::Io {
            path: dir.clone(),
            source: e,
        })?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".crypt_key.")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&dir)
            // Named as the key file: the temporary file's name (tempfile's message)
            // means nothing to the user.
            .map_err(|e| KeyError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::from(e.kind()),
            })?;
        writeln!(tmp, "{}", self.to_hex()).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        if force {
            tmp.persist(path).map_err(|e| io(e.error))?;
        } else {
            // Never clobber a file that appeared since the check above.
            tmp.persist_noclobber(path).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyError::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    io(e.error)
                }
            })?;
        }
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn decode_hex(text: &str) -> Result<Vec<u8>, &'static str> {
    if !text.len().is_multiple_of(2) {
        return Err("odd number of digits");
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err("a character that is not a hex digit"),
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Ok(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_key(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("crypt_key");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn loads_hex_with_surrounding_whitespace() {
        let d = tempfile::tempdir().unwrap();
        let p = write_key(d.path(), "  b7fdc8a5afe5f364c87e2f984cbbd27450255675\n\n", 0o600);
        let k = CryptKey::load(&p, false).unwrap();
        assert_eq!(k.to_hex(), "b7fdc8a5afe5f364c87e2f984cbbd27450255675");
        assert_eq!(k.as_bytes().len(), 20);
    }

    #[test]
    fn mode_rules_match_tmda() {
        let d = tempfile::tempdir().unwrap();
        let key = "b7fdc8a5afe5f364c87e2f984cbbd27450255675";
        for (mode, allow640, ok) in [
            (0o400, false, true),
            (0o600, false, true),
            (0o640, false, false),
            (0o640, true, true),
            (0o644, true, false),
            (0o604, false, false),
            (0o660, true, false),
            (0o700, false, false),
        ] {
            let p = write_key(d.path(), key, mode);
            let r = CryptKey::load(&p, allow640);
            assert_eq!(r.is_ok(), ok, "mode {mode:o} allow640={allow640}: {r:?}");
            if !ok {
                assert!(matches!(r, Err(KeyError::Mode { .. })));
            }
        }
    }

    #[test]
    fn bad_keys_are_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = write_key(d.path(), "xyz0", 0o600);
        let e = CryptKey::load(&p, false).unwrap_err().to_string();
        assert!(e.contains("not valid hex"), "{e}");
        let p = write_key(d.path(), "abc", 0o600);
        assert!(
            CryptKey::load(&p, false)
                .unwrap_err()
                .to_string()
                .contains("odd number")
        );
        let p = write_key(d.path(), " \n", 0o600);
        assert!(matches!(CryptKey::load(&p, false), Err(KeyError::Empty { .. })));
        let missing = d.path().join("nope");
        assert!(matches!(CryptKey::load(&missing, false), Err(KeyError::Missing { .. })));
    }

    #[test]
    fn debug_redacts() {
        let k = CryptKey::from_bytes(vec![0xab; 20]);
        let s = format!("{k:?}");
        assert!(!s.contains("ab") && !s.contains("171"), "{s}");
    }

    #[test]
    fn install_is_0600_and_refuses_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/crypt_key");
        let k = CryptKey::generate(Path::new("/dev/urandom")).unwrap();
        k.install(&p, false).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(CryptKey::load(&p, false).unwrap(), k);
        let k2 = CryptKey::generate(Path::new("/dev/urandom")).unwrap();
        assert!(matches!(k2.install(&p, false), Err(KeyError::Exists { .. })));
        assert_eq!(CryptKey::load(&p, false).unwrap(), k, "old key must survive");
        k2.install(&p, true).unwrap();
        assert_eq!(CryptKey::load(&p, false).unwrap(), k2);
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
