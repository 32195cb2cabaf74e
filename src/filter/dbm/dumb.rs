//! Python's portable `dbm.dumb` format, which is what TMDA's Python 3 writes where no GDBM
//! or NDBM module is installed: `FILE.dir` holds one `'key', (offset, size)` line per key
//! (Python literals; a later line for a key wins), `FILE.dat` the values.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::with_suffix;

/// The longest value read from `FILE.dat` (an action such as `confirm=template.txt`).
const VALUE_MAX: u64 = 64 * 1024;
/// The largest `FILE.dir` read.
const INDEX_MAX: u64 = 64 << 20;

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

/// The value stored for the first of `keys` that the dbm.dumb list at `path` has
/// (`FILE.dir` exists).
pub fn lookup(path: &Path, keys: &[&[u8]]) -> io::Result<Option<Vec<u8>>> {
    let dir = with_suffix(path, ".dir");
    let mut index = Vec::new();
    std::fs::File::open(&dir)?.take(INDEX_MAX).read_to_end(&mut index)?;
    // Python writes the index in Latin-1: a key's bytes, one character each.
    let text: String = index.iter().map(|&b| char::from(b)).collect();
    // Where each key's value is (a later line for a key wins).
    let mut found: Vec<Option<(u64, u64)>> = vec![None; keys.len()];
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (k, pos, size) = index_line(line)
            .ok_or_else(|| io::Error::other(format!("{}: line {}: not a dbm index line", dir.display(), n + 1)))?;
        if let Some(i) = keys.iter().position(|key| *key == k.as_slice()) {
            found[i] = Some((pos, size));
        }
    }
    let Some((pos, size)) = found.into_iter().flatten().next() else {
        return Ok(None);
    };
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
}
