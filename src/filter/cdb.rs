//! Reading D. J. Bernstein's constant databases (cdb), for `to-cdb`/`from-cdb` rules.
//!
//! Format (cr.yp.to/cdb/cdb.txt): 256 (position, slot count) pairs of little-endian
//! u32, then records (key length, data length, key, data), then hash tables of
//! (hash, record position) slots. The hash is h = ((h << 5) + h) ^ byte from 5381.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub fn hash(key: &[u8]) -> u32 {
    key.iter().fold(5381u32, |h, &b| (h << 5).wrapping_add(h) ^ b as u32)
}

fn u32_at(f: &File, pos: u64) -> io::Result<(u32, u32)> {
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, pos)?;
    Ok((
        u32::from_le_bytes(b[..4].try_into().unwrap()),
        u32::from_le_bytes(b[4..].try_into().unwrap()),
    ))
}

/// Look `key` up; `Ok(Some(data))` when present.
pub fn lookup(path: &Path, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let f = File::open(path)?;
    // A corrupt file must not make us allocate what its lengths claim.
    let file_len = f.metadata()?.len();
    let h = hash(key);
    let (table, slots) = u32_at(&f, (h % 256) as u64 * 8)?;
    if slots == 0 {
        return Ok(None);
    }
    let start = (h >> 8) % slots;
    for i in 0..slots {
        let slot = (start as u64 + i as u64) % slots as u64;
        let (sh, rec) = u32_at(&f, table as u64 + slot * 8)?;
        if rec == 0 {
            return Ok(None);
        }
        if sh != h {
            continue;
        }
        let (klen, dlen) = u32_at(&f, rec as u64)?;
        if klen as usize != key.len() {
            continue;
        }
        let mut k = vec![0u8; klen as usize];
        f.read_exact_at(&mut k, rec as u64 + 8)?;
        if k == key {
            if rec as u64 + 8 + klen as u64 + dlen as u64 > file_len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "corrupt cdb: a record runs past the end of the file",
                ));
            }
            let mut d = vec![0u8; dlen as usize];
            f.read_exact_at(&mut d, rec as u64 + 8 + klen as u64)?;
            return Ok(Some(d));
        }
    }
    Ok(None)
}

/// Build a cdb file (tests use it to make fixtures; tinycdb's `cdb -c` makes the same).
pub fn build(path: &Path, records: &[(&[u8], &[u8])]) -> io::Result<()> {
    let mut body = vec![0u8; 2048];
    let mut buckets: Vec<Vec<(u32, u32)>> = vec![vec![]; 256];
    for (k, d) in records {
        let pos = body.len() as u32;
        body.extend_from_slice(&(k.len() as u32).to_le_bytes());
        body.extend_from_slice(&(d.len() as u32).to_le_bytes());
        body.extend_from_slice(k);
        body.extend_from_slice(d);
        let h = hash(k);
        buckets[(h % 256) as usize].push((h, pos));
    }
    for (i, bucket) in buckets.iter().enumerate() {
        let n = bucket.len() * 2;
        let pos = body.len() as u32;
        body[i * 8..i * 8 + 4].copy_from_slice(&pos.to_le_bytes());
        body[i * 8 + 4..i * 8 + 8].copy_from_slice(&(n as u32).to_le_bytes());
        let mut table = vec![(0u32, 0u32); n];
        for &(h, p) in bucket {
            let mut s = ((h >> 8) as usize) % n;
            while table[s].1 != 0 {
                s = (s + 1) % n;
            }
            table[s] = (h, p);
        }
        for (h, p) in table {
            body.extend_from_slice(&h.to_le_bytes());
            body.extend_from_slice(&p.to_le_bytes());
        }
    }
    std::fs::write(path, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.cdb");
        let keys: Vec<String> = (0..500).map(|i| format!("user{i}@example.com")).collect();
        let recs: Vec<(&[u8], &[u8])> = keys
            .iter()
            .map(|k| {
                (
                    k.as_bytes(),
                    if k.ends_with("7@example.com") {
                        &b"dated=1d"[..]
                    } else {
                        &b""[..]
                    },
                )
            })
            .collect();
        build(&p, &recs).unwrap();
        assert_eq!(lookup(&p, b"user7@example.com").unwrap(), Some(b"dated=1d".to_vec()));
        assert_eq!(lookup(&p, b"user8@example.com").unwrap(), Some(vec![]));
        assert_eq!(lookup(&p, b"nobody@example.com").unwrap(), None);
        for k in &keys {
            assert!(lookup(&p, k.as_bytes()).unwrap().is_some(), "{k}");
        }
        assert!(lookup(&d.path().join("missing"), b"x").is_err());
    }

    #[test]
    fn a_corrupt_length_is_an_error_not_a_huge_allocation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.cdb");
        build(&p, &[(b"k@x", b"v")]).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        // The only record starts right after the 2048-byte header: claim 4 GB of data.
        bytes[2052..2056].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let e = lookup(&p, b"k@x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn damaged_files_never_panic() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.cdb");
        let keys: Vec<String> = (0..40).map(|i| format!("u{i}@example.com")).collect();
        let recs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_bytes(), &b"tag"[..])).collect();
        build(&p, &recs).unwrap();
        let good = std::fs::read(&p).unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..300 {
            let mut bytes = good.clone();
            for _ in 0..1 + round % 8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % bytes.len() as u64) as usize;
                bytes[at] = (seed >> 32) as u8;
            }
            if round % 5 == 0 {
                bytes.truncate((seed % bytes.len() as u64) as usize);
            }
            std::fs::write(&p, &bytes).unwrap();
            for k in keys.iter().step_by(7) {
                // Found, not found or an error: all fine, as long as it returns.
                let _ = lookup(&p, k.as_bytes());
            }
        }
    }
}
