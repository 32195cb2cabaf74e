//! GNU dbm files, read-only and sans-IO: what Python's `dbm.gnu` (TMDA on Python 3) and
//! `gdbm` (Python 2's `anydbm` without Berkeley DB) write, one file at the list's path.
//!
//! The layout, from GDBM's on-disk structures: a header (magic number, block size, the
//! hash directory's offset and size, the bucket size and how many elements a bucket
//! holds), the directory (one bucket offset per hash prefix, several entries sharing a
//! bucket), and buckets, each a table of elements (hash value, -1 for an empty slot; the
//! offset of the key, which the value directly follows; the key's and value's sizes).
//! Integers are in the byte order of the machine that wrote the file, offsets 4 or 8
//! bytes wide, and the structures padded as that machine's C compiler did; the header
//! says which magic (and so offset width) it is, and the one layout that agrees with its
//! bucket size and element count is taken.
//!
//! A lookup reads every distinct bucket the directory names rather than hashing the
//! key: GDBM's hash reads key bytes as C `char`, signed on some machines and not on
//! others, so a file's hashes depend on where it was written; lists are small. The file
//! is hostile input: every offset and size is checked against its length, each bucket is
//! read once however often the directory names it, and the slots examined are capped.

use std::collections::HashSet;

use super::{Error, WORK_MAX};

/// How the writer laid out its structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    big_endian: bool,
    /// 8-byte file offsets (else 4).
    off64: bool,
    /// Where a bucket's element table starts (after its count, six free-space entries,
    /// its bit count and its element count, padded).
    table: usize,
    /// The size of one bucket element.
    elem: usize,
}

impl Layout {
    fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    fn off_at(&self, b: &[u8], at: usize) -> Option<u64> {
        if !self.off64 {
            return self.u32_at(b, at).map(u64::from);
        }
        let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(bytes)
        } else {
            u64::from_le_bytes(bytes)
        })
    }

    fn off_size(&self) -> usize {
        if self.off64 { 8 } else { 4 }
    }
}

// Magic numbers: the original one (offset width as the machine's off_t), the 32- and
// 64-bit ones of GDBM 1.9 on, and those of the extended ("numsync") header of 1.21 on.
const OMAGIC: u32 = 0x1357_9ace;
const MAGIC32: u32 = 0x1357_9acd;
const MAGIC64: u32 = 0x1357_9acf;
const NUMSYNC32: u32 = 0x1357_9ad0;
const NUMSYNC64: u32 = 0x1357_9ad1;

/// Whether `file` starts with a GDBM magic number, in either byte order.
pub fn is_gdbm(file: &[u8]) -> bool {
    magic(file).is_some()
}

/// The magic number and whether the file is big-endian.
fn magic(file: &[u8]) -> Option<(u32, bool)> {
    let b: [u8; 4] = file.get(..4)?.try_into().ok()?;
    let known = [OMAGIC, MAGIC32, MAGIC64, NUMSYNC32, NUMSYNC64];
    let le = u32::from_le_bytes(b);
    if known.contains(&le) {
        return Some((le, false));
    }
    let be = u32::from_be_bytes(b);
    known.contains(&be).then_some((be, true))
}

/// The parsed header: where the directory is and how buckets look.
#[derive(Debug)]
struct Header {
    layout: Layout,
    dir: u64,
    dir_size: u64,
    bucket_size: u64,
    bucket_elems: u64,
}

fn header(file: &[u8]) -> Result<Header, Error> {
    let corrupt = |what: &str| Error::Corrupt(format!("header: {what}"));
    let (magic, big_endian) = magic(file).ok_or_else(|| corrupt("no GDBM magic number"))?;
    // (64-bit offsets, table start, element size) in the order tried: 64-bit offsets
    // aligned to 8 (x86-64 and most others), 32-bit offsets, 64-bit aligned to 4 (i386
    // with large-file support).
    const A8: (bool, usize, usize) = (true, 112, 24);
    const O32: (bool, usize, usize) = (false, 60, 20);
    const A4: (bool, usize, usize) = (true, 84, 24);
    let candidates: &[(bool, usize, usize)] = match magic {
        MAGIC32 | NUMSYNC32 => &[O32],
        MAGIC64 | NUMSYNC64 => &[A8, A4],
        _ => &[A8, O32, A4],
    };
    let mut found = None;
    for &(off64, table, elem) in candidates {
        let layout = Layout {
            big_endian,
            off64,
            table,
            elem,
        };
        let o = layout.off_size();
        // magic, block size, directory offset, then four ints: directory size and bits,
        // bucket size and elements.
        let (Some(dir), Some(dir_size), Some(bucket_size), Some(bucket_elems)) = (
            layout.off_at(file, 8),
            layout.u32_at(file, 8 + o),
            layout.u32_at(file, 16 + o),
            layout.u32_at(file, 20 + o),
        ) else {
            return Err(corrupt("truncated"));
        };
        let (bucket_size, bucket_elems) = (u64::from(bucket_size), u64::from(bucket_elems));
        // GDBM sizes a bucket to hold exactly `bucket_elems` elements after the fixed part.
        let consistent =
            bucket_size >= table as u64 + elem as u64 && (bucket_size - table as u64) / elem as u64 == bucket_elems;
        if consistent {
            found = Some(Header {
                layout,
                dir,
                dir_size: u64::from(dir_size),
                bucket_size,
                bucket_elems,
            });
            break;
        }
    }
    let h = found.ok_or_else(|| corrupt("bucket size and element count disagree"))?;
    let len = file.len() as u64;
    if h.dir.checked_add(h.dir_size).is_none_or(|end| end > len) || h.dir_size == 0 {
        return Err(corrupt("hash directory outside the file"));
    }
    if h.bucket_size > len {
        return Err(corrupt("bucket larger than the file"));
    }
    Ok(h)
}

/// Call `f` with every key and value in the file until it returns `true`; returns whether
/// it did. Keys and values are slices of `file`.
pub fn each<'a>(file: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8]) -> bool) -> Result<bool, Error> {
    let h = header(file)?;
    let l = h.layout;
    let len = file.len() as u64;
    let dir = &file[h.dir as usize..(h.dir + h.dir_size) as usize];
    let mut seen = HashSet::new();
    let mut work: u64 = 0;
    for entry in dir.chunks_exact(l.off_size()) {
        let bucket = l.off_at(entry, 0).unwrap_or(0);
        if !seen.insert(bucket) {
            continue;
        }
        if bucket.checked_add(h.bucket_size).is_none_or(|end| end > len) {
            return Err(Error::Corrupt(format!("bucket at {bucket} outside the file")));
        }
        // Both bounded by the file length above: the bucket lies inside it.
        let b = &file[bucket as usize..(bucket + h.bucket_size) as usize];
        work = work.saturating_add(h.bucket_elems);
        if work > WORK_MAX {
            return Err(Error::TooBig);
        }
        for i in 0..h.bucket_elems as usize {
            let at = l.table + i * l.elem;
            let ptr_at = at + 8;
            let o = l.off_size();
            let (Some(hash), Some(ptr), Some(key_size), Some(data_size)) = (
                l.u32_at(b, at),
                l.off_at(b, ptr_at),
                l.u32_at(b, ptr_at + o),
                l.u32_at(b, ptr_at + o + 4),
            ) else {
                return Err(Error::Corrupt("bucket element outside its bucket".into()));
            };
            if hash == u32::MAX {
                continue; // an empty slot
            }
            let key_end = ptr.checked_add(u64::from(key_size));
            let end = key_end.and_then(|k| k.checked_add(u64::from(data_size)));
            let (Some(key_end), Some(end)) = (key_end, end) else {
                return Err(Error::Corrupt("record size overflows".into()));
            };
            if end > len {
                return Err(Error::Corrupt(format!("record at {ptr} outside the file")));
            }
            let (ptr, key_end, end) = (ptr as usize, key_end as usize, end as usize);
            if f(&file[ptr..key_end], &file[key_end..end]) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The value stored for `key`.
pub fn get(file: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let mut found = None;
    each(file, |k, v| {
        let hit = k == key;
        if hit {
            found = Some(v.to_vec());
        }
        hit
    })?;
    Ok(found)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A little-endian, 64-bit, x86-64 GDBM file with the given records, one bucket of
    /// `elems` slots named by a directory of `dir_entries` entries; the records go in
    /// slots 0, 1, ... and the rest are empty.
    pub(crate) fn build(records: &[(&[u8], &[u8])], elems: u32, dir_entries: usize) -> Vec<u8> {
        let bucket_size = 112 + 24 * elems;
        let dir_at = 512u64;
        let bucket_at = dir_at + 8 * dir_entries as u64;
        let data_at = bucket_at + u64::from(bucket_size);
        let mut f = Vec::new();
        f.extend(MAGIC64.to_le_bytes());
        f.extend(512u32.to_le_bytes());
        f.extend(dir_at.to_le_bytes());
        f.extend((8 * dir_entries as u32).to_le_bytes());
        f.extend((dir_entries.trailing_zeros()).to_le_bytes());
        f.extend(bucket_size.to_le_bytes());
        f.extend(elems.to_le_bytes());
        f.resize(dir_at as usize, 0);
        for _ in 0..dir_entries {
            f.extend(bucket_at.to_le_bytes());
        }
        let mut bucket = vec![0u8; bucket_size as usize];
        let mut data: Vec<u8> = Vec::new();
        for i in 0..elems as usize {
            let e = &mut bucket[112 + 24 * i..112 + 24 * (i + 1)];
            match records.get(i) {
                Some((k, v)) => {
                    e[0..4].copy_from_slice(&1u32.to_le_bytes());
                    e[8..16].copy_from_slice(&(data_at + data.len() as u64).to_le_bytes());
                    e[16..20].copy_from_slice(&(k.len() as u32).to_le_bytes());
                    e[20..24].copy_from_slice(&(v.len() as u32).to_le_bytes());
                    data.extend(*k);
                    data.extend(*v);
                }
                None => e[0..4].copy_from_slice(&u32::MAX.to_le_bytes()),
            }
        }
        f.extend(bucket);
        f.extend(data);
        f
    }

    #[test]
    fn records_are_found_through_the_directory() {
        let f = build(&[(b"bob@x.org", b""), (b"x.net", b"confirm")], 4, 4);
        assert_eq!(get(&f, b"bob@x.org").unwrap(), Some(vec![]));
        assert_eq!(get(&f, b"x.net").unwrap(), Some(b"confirm".to_vec()));
        assert_eq!(get(&f, b"x.ne").unwrap(), None);
        // The bucket is read once though four directory entries name it.
        let mut n = 0;
        each(&f, |_, _| {
            n += 1;
            false
        })
        .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn the_original_magic_number_reads_with_the_layout_that_fits() {
        // GDBM before 1.9 wrote 0x13579ace whatever its offsets' width.
        let mut f = build(&[(b"a@b", b"ok")], 3, 2);
        f[..4].copy_from_slice(&OMAGIC.to_le_bytes());
        assert_eq!(get(&f, b"a@b").unwrap(), Some(b"ok".to_vec()));
        // 32-bit offsets claimed for a 64-bit file: the bucket size does not fit.
        f[..4].copy_from_slice(&MAGIC32.to_le_bytes());
        assert!(matches!(get(&f, b"a@b"), Err(Error::Corrupt(e)) if e.contains("disagree")));
    }

    #[test]
    fn big_endian_files_are_read() {
        // The same file with every integer swapped: rebuild it field by field.
        let le = build(&[(b"a@b", b"ok")], 2, 2);
        let mut be = le.clone();
        let swap = |f: &mut Vec<u8>, at: usize, n: usize| f[at..at + n].reverse();
        for (at, n) in [
            (0, 4),
            (4, 4),
            (8, 8),
            (16, 4),
            (20, 4),
            (24, 4),
            (28, 4),
            (512, 8),
            (520, 8),
        ] {
            swap(&mut be, at, n);
        }
        let bucket = 528;
        for i in 0..2 {
            let e = bucket + 112 + 24 * i;
            for (at, n) in [(0, 4), (8, 8), (16, 4), (20, 4)] {
                swap(&mut be, e + at, n);
            }
        }
        assert_eq!(get(&be, b"a@b").unwrap(), Some(b"ok".to_vec()));
    }

    #[test]
    fn hostile_headers_and_pointers_are_errors_not_panics() {
        let good = build(&[(b"a@b", b"ok")], 2, 2);
        // Truncated anywhere: an error or (cut in the padding) still an answer, no panic.
        for n in 0..good.len() {
            let _ = get(&good[..n], b"a@b");
        }
        let mut f = good.clone();
        f[8..16].copy_from_slice(&u64::MAX.to_le_bytes()); // directory offset
        assert!(matches!(get(&f, b"a@b"), Err(Error::Corrupt(_))));
        let mut f = good.clone();
        f[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // directory size
        assert!(matches!(get(&f, b"a@b"), Err(Error::Corrupt(_))));
        let mut f = good.clone();
        f[24..28].copy_from_slice(&u32::MAX.to_le_bytes()); // bucket size
        assert!(matches!(get(&f, b"a@b"), Err(Error::Corrupt(_))));
        let mut f = good.clone();
        f[512..520].copy_from_slice(&(u64::MAX - 3).to_le_bytes()); // a bucket offset
        assert!(matches!(get(&f, b"a@b"), Err(Error::Corrupt(_))));
        let bucket = 528;
        let mut f = good.clone();
        f[bucket + 112 + 8..bucket + 112 + 16].copy_from_slice(&u64::MAX.to_le_bytes()); // record
        assert!(matches!(get(&f, b"a@b"), Err(Error::Corrupt(_))));
        let mut f = good.clone();
        f[bucket + 112 + 16..bucket + 112 + 20].copy_from_slice(&u32::MAX.to_le_bytes()); // key size
        assert!(matches!(get(&f, b"a@b"), Err(Error::Corrupt(_))));
        assert!(matches!(get(b"\xcf\x9a\x57\x13", b"a"), Err(Error::Corrupt(_))));
        assert!(matches!(get(b"not gdbm at all", b"a"), Err(Error::Corrupt(_))));
    }

    #[test]
    fn work_is_capped_when_a_directory_names_many_overlapping_buckets() {
        // A directory of distinct offsets 0, 8, 16, ... each "a bucket" overlapping the
        // next: the slots examined grow with the square of the file; the cap stops it
        // (400 buckets of 20,000 slots: 8 million, over the cap of 4 million).
        let elems: u32 = 20_000;
        let bucket_size = 112 + 24 * elems;
        let entries = 400u64;
        let mut f = Vec::new();
        f.extend(MAGIC64.to_le_bytes());
        f.extend(512u32.to_le_bytes());
        f.extend(64u64.to_le_bytes());
        f.extend((8 * entries as u32).to_le_bytes());
        f.extend(0u32.to_le_bytes());
        f.extend(bucket_size.to_le_bytes());
        f.extend(elems.to_le_bytes());
        f.resize(64, 0);
        for i in 0..entries {
            f.extend((8 * i).to_le_bytes());
        }
        // Zeros: every slot a record with an empty key at offset 0.
        f.resize(bucket_size as usize + 8 * entries as usize, 0);
        assert_eq!(get(&f, b"a"), Err(Error::TooBig));
    }
}
