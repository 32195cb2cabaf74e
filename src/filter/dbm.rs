//! `from-dbm` / `to-dbm` lists in Python's portable `dbm.dumb` format, which is what
//! TMDA's Python 3 writes where no GDBM or NDBM module is installed: `FILE.dir` holds one
//! `'key', (offset, size)` line per key (Python literals; a later line for a key wins),
//! `FILE.dat` the values. GDBM and Berkeley DB files (one binary file) are refused with
//! a message saying how to convert them.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The longest value read from `FILE.dat` (an action such as `confirm=template.txt`).
const VALUE_MAX: u64 = 64 * 1024;
/// The largest `FILE.dir` read.
const INDEX_MAX: u64 = 64 << 20;

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A Python string literal at the start of `s` (as `repr` writes it): its characters and
/// the rest of `s`.
fn py_str(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Some((out, &s[1 + i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                let hex = |chars: &mut std::str::CharIndices, n: usize| -> Option<char> {
                    let digits: String = (0..n).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
                };
                out.push(match e {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    '\\' => '\\',
                    '\'' => '\'',
                    '"' => '"',
                    'x' => hex(&mut chars, 2)?,
                    'u' => hex(&mut chars, 4)?,
                    'U' => hex(&mut chars, 8)?,
                    _ => return None,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// One `FILE.dir` line: the key (as bytes: Python wrote it decoded as Latin-1) and the
/// value's offset and size.
fn index_line(line: &str) -> Option<(Vec<u8>, u64, u64)> {
    let (key, rest) = py_str(line.trim_start())?;
    let rest = rest.trim_start().strip_prefix(',')?.trim();
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    let (pos, size) = inner.split_once(',')?;
    let key: Option<Vec<u8>> = key.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
    Some((key?, pos.trim().parse().ok()?, size.trim().parse().ok()?))
}

/// The value stored for `key` in the dbm at `path`. `NotFound` when there is no such
/// list; an error naming the format for a GDBM or Berkeley DB file.
pub fn lookup(path: &Path, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let dir = with_suffix(path, ".dir");
    let index = match std::fs::File::open(&dir) {
        Ok(f) => {
            let mut text = Vec::new();
            f.take(INDEX_MAX).read_to_end(&mut text)?;
            text
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && path.exists() => {
            return Err(io::Error::other(
                "a GDBM or Berkeley DB file, which tmda cannot read; convert the list to a text file \
                 (from-file) or a cdb (from-cdb)",
            ));
        }
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&index);
    let mut found = None;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (k, pos, size) = index_line(line)
            .ok_or_else(|| io::Error::other(format!("{}: line {}: not a dbm index line", dir.display(), n + 1)))?;
        if k == key {
            found = Some((pos, size));
        }
    }
    let Some((pos, size)) = found else { return Ok(None) };
    if size > VALUE_MAX {
        return Err(io::Error::other(format!(
            "value for a key is {size} bytes (at most {VALUE_MAX})"
        )));
    }
    let mut dat = std::fs::File::open(with_suffix(path, ".dat"))?;
    dat.seek(SeekFrom::Start(pos))?;
    let mut value = vec![0; size as usize];
    dat.read_exact(&mut value)?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lines_as_python_writes_them() {
        assert_eq!(index_line("'bob@x.org', (0, 2)"), Some((b"bob@x.org".to_vec(), 0, 2)));
        assert_eq!(index_line("\"it's\", (512, 0)"), Some((b"it's".to_vec(), 512, 0)));
        assert_eq!(
            index_line("'caf\\xe9\\n', (1, 1)"),
            Some((vec![b'c', b'a', b'f', 0xe9, b'\n'], 1, 1))
        );
        assert_eq!(index_line("'\\u20ac', (1, 1)"), None);
        assert_eq!(index_line("junk"), None);
        assert_eq!(index_line("'a', (1)"), None);
    }

    /// A list written by Python's own dbm.dumb (the python3 on the machine) reads back.
    #[test]
    fn python_dumb_dbm_files() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("white.db");
        let script = "import dbm.dumb, sys\n\
                      db = dbm.dumb.open(sys.argv[1], 'c')\n\
                      db[b'bob@x.org'] = b''\n\
                      db[b'x.net'] = b'confirm'\n\
                      db[b'carol@y.org'] = b'hold'\n\
                      db[b'carol@y.org'] = b'bounce'\n\
                      db.close()\n";
        let st = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .status()
            .expect("python3 runs (it is the test's oracle)");
        assert!(st.success());
        assert_eq!(lookup(&path, b"bob@x.org").unwrap(), Some(vec![]));
        assert_eq!(lookup(&path, b"x.net").unwrap(), Some(b"confirm".to_vec()));
        assert_eq!(lookup(&path, b"carol@y.org").unwrap(), Some(b"bounce".to_vec()));
        assert_eq!(lookup(&path, b"nobody@z").unwrap(), None);
        assert_eq!(
            lookup(&d.path().join("missing"), b"a").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let gdbm = d.path().join("gdbm.db");
        std::fs::write(&gdbm, b"\xce\x9a\x57\x13binary").unwrap();
        assert!(
            lookup(&gdbm, b"a")
                .unwrap_err()
                .to_string()
                .contains("GDBM or Berkeley DB")
        );
    }
}
