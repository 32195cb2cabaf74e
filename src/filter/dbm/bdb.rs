//! Berkeley DB hash databases (DB 2.x to 5.x), read-only and sans-IO: what Python 2's
//! `anydbm` wrote through `dbhash` (one file at the list's path) and Python 3's
//! `dbm.ndbm` writes where it is built on Berkeley DB, as Debian's is (`FILE.db`).
//!
//! The file is a run of equal pages. Page 0 is the metadata page: its magic number
//! (0x061561 for hash, in the writer's byte order, which says the order of every other
//! integer) at byte 12, its page size at 20, its type at 25 and flags at 26. Every page
//! starts with a 26-byte header (its own number at 8, the next page of a chain at 16, the
//! number of items at 20, a length at 22, the page type at 25), six bytes more when the
//! database keeps checksums; hash pages then have an index of item offsets, items packed
//! from the page's end down, so an item ends where the one before it starts. Items come in
//! pairs, key then value; each starts with a type byte: 1 for bytes that follow on the
//! page, 3 for an item on overflow pages (first page number at 4, total length at 8), a
//! chain of overflow pages each holding as many bytes as its header's length says.
//!
//! A lookup reads every hash page rather than hashing the key (the hash function changed
//! between releases and lists are small). The file is hostile input: every offset is
//! checked against the page, overflow chains cannot revisit a page, and the pages and
//! bytes overflow chains may yield are capped over the whole lookup (pages can be shared
//! by many chains in a hostile file).

use std::borrow::Cow;
use std::collections::HashSet;

use super::{Error, FILE_MAX, WORK_MAX};

const HASH_MAGIC: u32 = 0x0006_1561;
const BTREE_MAGIC: u32 = 0x0005_3162;
const QUEUE_MAGIC: u32 = 0x0004_2253;
const HEAP_MAGIC: u32 = 0x0007_4582;

// Page types.
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;

// Item types.
const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;

const PAGE_HEADER: usize = 26;
/// The metadata flag saying pages carry a checksum after their header.
const META_CHKSUM: u8 = 0x01;

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

fn u16_at(b: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let bytes: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(bytes)
    } else {
        u16::from_le_bytes(bytes)
    })
}

/// A magic number at `at`, in either byte order.
fn magic_at(file: &[u8], at: usize) -> Option<(u32, bool)> {
    let le = u32_at(file, at, false)?;
    let be = u32_at(file, at, true)?;
    [HASH_MAGIC, BTREE_MAGIC, QUEUE_MAGIC, HEAP_MAGIC]
        .into_iter()
        .find_map(|m| {
            if le == m {
                Some((m, false))
            } else if be == m {
                Some((m, true))
            } else {
                None
            }
        })
}

/// What kind of Berkeley DB file `file` looks like, if any (for choosing a reader and for
/// saying what was found).
pub fn kind(file: &[u8]) -> Option<&'static str> {
    if let Some((m, _)) = magic_at(file, 12) {
        return Some(match m {
            HASH_MAGIC => "a Berkeley DB hash database",
            BTREE_MAGIC => "a Berkeley DB btree database",
            QUEUE_MAGIC => "a Berkeley DB queue database",
            _ => "a Berkeley DB heap database",
        });
    }
    // DB 1.85 (the old BSD db) put its magic number first.
    match magic_at(file, 0) {
        Some((HASH_MAGIC, _)) => Some("a Berkeley DB 1.85 hash database"),
        Some((BTREE_MAGIC, _)) => Some("a Berkeley DB 1.85 btree database"),
        _ => None,
    }
}

/// The metadata that matters: byte order, page size, page header length.
#[derive(Debug, Clone, Copy)]
struct Meta {
    big_endian: bool,
    page_size: usize,
    /// Where a page's item index starts.
    index_at: usize,
}

fn meta(file: &[u8]) -> Result<Meta, Error> {
    let unsupported = |what: &str| {
        Error::Unsupported(format!(
            "{what}; tmda reads Berkeley DB hash lists (convert it: db5.3_dump FILE | db5.3_load -t hash NEW)"
        ))
    };
    let Some((magic, big_endian)) = magic_at(file, 12) else {
        if let Some(k) = kind(file) {
            return Err(Error::Unsupported(format!(
                "{k}, which tmda cannot read (convert it: db_dump185 FILE | db5.3_load -t hash NEW)"
            )));
        }
        return Err(Error::Corrupt("no Berkeley DB magic number".into()));
    };
    if magic != HASH_MAGIC {
        return Err(unsupported(kind(file).unwrap_or("not a Berkeley DB hash database")));
    }
    let field = |at| u32_at(file, at, big_endian).ok_or_else(|| Error::Corrupt("truncated metadata page".into()));
    let version = field(16)?;
    let page_size = field(20)?;
    let (encrypt, page_type, flags) = match file.get(24..27) {
        Some(&[e, t, f]) => (e, t, f),
        _ => return Err(Error::Corrupt("truncated metadata page".into())),
    };
    // Version 5 is DB 2.x; 9 is DB 4.6 to 5.3 (and 6.x, 18.x).
    if !(5..=10).contains(&version) {
        return Err(Error::Unsupported(format!(
            "Berkeley DB hash version {version}, which tmda does not know"
        )));
    }
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(Error::Corrupt(format!("page size {page_size}")));
    }
    if page_type != P_HASHMETA {
        return Err(Error::Corrupt(format!("metadata page of type {page_type}")));
    }
    if encrypt != 0 {
        return Err(Error::Unsupported(
            "an encrypted Berkeley DB database, which tmda cannot read".into(),
        ));
    }
    // A checksum page header has two unused bytes, then the 4-byte checksum.
    let index_at = if flags & META_CHKSUM != 0 {
        PAGE_HEADER + 6
    } else {
        PAGE_HEADER
    };
    Ok(Meta {
        big_endian,
        page_size: page_size as usize,
        index_at,
    })
}

/// Walks overflow chains with one budget of pages for the whole lookup.
struct Overflow<'a> {
    file: &'a [u8],
    m: Meta,
    pages_left: u64,
    bytes_left: usize,
}

impl<'a> Overflow<'a> {
    /// The `len` bytes of the chain starting at page `first`.
    fn read(&mut self, first: u32, len: u32) -> Result<Vec<u8>, Error> {
        let corrupt = |what: String| Error::Corrupt(format!("overflow chain from page {first}: {what}"));
        let len = len as usize;
        if len > self.file.len() {
            return Err(corrupt(format!("length {len} larger than the file")));
        }
        let mut out = Vec::with_capacity(len);
        let mut seen = HashSet::new();
        let mut pgno = first;
        while out.len() < len {
            if pgno == 0 {
                return Err(corrupt(format!("ends after {} of {len} bytes", out.len())));
            }
            if !seen.insert(pgno) {
                return Err(corrupt(format!("loops back to page {pgno}")));
            }
            self.pages_left = self.pages_left.checked_sub(1).ok_or(Error::TooBig)?;
            let page = page(self.file, self.m, pgno).ok_or_else(|| corrupt(format!("page {pgno} outside the file")))?;
            if page[25] != P_OVERFLOW {
                return Err(corrupt(format!("page {pgno} is not an overflow page")));
            }
            let here = u16_at(page, 22, self.m.big_endian).unwrap_or(0) as usize;
            let data = page
                .get(self.m.index_at..self.m.index_at + here)
                .ok_or_else(|| corrupt(format!("page {pgno} holds more than fits")))?;
            if out.len() + data.len() > len {
                return Err(corrupt(format!("longer than its {len} bytes")));
            }
            self.bytes_left = self.bytes_left.checked_sub(data.len()).ok_or(Error::TooBig)?;
            out.extend_from_slice(data);
            pgno = u32_at(page, 16, self.m.big_endian).unwrap_or(0);
        }
        Ok(out)
    }
}

/// Page `pgno`, if it lies wholly in the file.
fn page(file: &[u8], m: Meta, pgno: u32) -> Option<&[u8]> {
    let start = (pgno as usize).checked_mul(m.page_size)?;
    file.get(start..start.checked_add(m.page_size)?)
}

/// An item: its bytes on the page, or where to find them on overflow pages.
enum Item<'a> {
    Here(&'a [u8]),
    Off { first: u32, len: u32 },
}

impl<'a> Item<'a> {
    fn len(&self) -> usize {
        match self {
            Item::Here(b) => b.len(),
            Item::Off { len, .. } => *len as usize,
        }
    }

    fn bytes(&self, of: &mut Overflow<'a>) -> Result<Cow<'a, [u8]>, Error> {
        match *self {
            Item::Here(b) => Ok(Cow::Borrowed(b)),
            Item::Off { first, len } => of.read(first, len).map(Cow::Owned),
        }
    }
}

/// Item `i` of hash page `p` (number `pgno`).
fn item(p: &[u8], m: Meta, pgno: u32, i: usize) -> Result<Item<'_>, Error> {
    let corrupt = |what: &str| Error::Corrupt(format!("hash page {pgno}, item {i}: {what}"));
    let offset = |i: usize| u16_at(p, m.index_at + 2 * i, m.big_endian).map(usize::from);
    let start = offset(i).ok_or_else(|| corrupt("index outside the page"))?;
    let end = if i == 0 {
        m.page_size
    } else {
        offset(i - 1).ok_or_else(|| corrupt("index outside the page"))?
    };
    if start >= end || end > m.page_size {
        return Err(corrupt("bad offset"));
    }
    let b = &p[start..end];
    match b[0] {
        H_KEYDATA => Ok(Item::Here(&b[1..])),
        H_OFFPAGE => match (u32_at(b, 4, m.big_endian), u32_at(b, 8, m.big_endian)) {
            (Some(first), Some(len)) => Ok(Item::Off { first, len }),
            _ => Err(corrupt("short overflow reference")),
        },
        H_DUPLICATE | H_OFFDUP => Err(Error::Unsupported(
            "a Berkeley DB database with duplicate keys, which a dbm list never has".into(),
        )),
        t => Err(corrupt(&format!("item type {t}"))),
    }
}

/// Call `f` with every key and value (read lazily: `f` gets the key's length first and
/// says whether it wants the pair) until it returns `true`; returns whether it did.
fn each<'a>(
    file: &'a [u8],
    want: impl Fn(usize) -> bool,
    mut f: impl FnMut(
        &[u8],
        &dyn Fn(&mut Overflow<'a>) -> Result<Cow<'a, [u8]>, Error>,
        &mut Overflow<'a>,
    ) -> Result<bool, Error>,
) -> Result<bool, Error> {
    let m = meta(file)?;
    let mut of = Overflow {
        file,
        m,
        pages_left: WORK_MAX,
        bytes_left: FILE_MAX as usize,
    };
    let pages = file.len() / m.page_size;
    for pgno in 1..pages {
        let pgno = u32::try_from(pgno).map_err(|_| Error::TooBig)?;
        let Some(p) = page(file, m, pgno) else { break };
        // Pages not (or no longer) in use have another type, or a number left over from
        // elsewhere: only live hash pages count.
        if !matches!(p[25], P_HASH | P_HASH_UNSORTED) || u32_at(p, 8, m.big_endian) != Some(pgno) {
            continue;
        }
        let entries = usize::from(u16_at(p, 20, m.big_endian).unwrap_or(0));
        if m.index_at + 2 * entries > m.page_size {
            return Err(Error::Corrupt(format!("hash page {pgno}: {entries} items do not fit")));
        }
        if entries % 2 != 0 {
            return Err(Error::Corrupt(format!("hash page {pgno}: a key without a value")));
        }
        for pair in 0..entries / 2 {
            let key = item(p, m, pgno, 2 * pair)?;
            if !want(key.len()) {
                continue;
            }
            let value = item(p, m, pgno, 2 * pair + 1)?;
            let key = key.bytes(&mut of)?;
            if f(&key, &|of| value.bytes(of), &mut of)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The value stored for `key`.
pub fn get(file: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let mut found = None;
    each(
        file,
        |len| len == key.len(),
        |k, value, of| {
            if k != key {
                return Ok(false);
            }
            found = Some(value(of)?.into_owned());
            Ok(true)
        },
    )?;
    Ok(found)
}

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Every key and value (for tests and the fuzzer, which check that whatever a file holds
/// can be read without harm).
pub fn pairs(file: &[u8]) -> Result<Vec<Pair>, Error> {
    let mut out = Vec::new();
    each(
        file,
        |_| true,
        |k, value, of| {
            out.push((k.to_vec(), value(of)?.into_owned()));
            Ok(false)
        },
    )?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const PS: usize = 512;

    fn header(p: &mut [u8], pgno: u32, next: u32, entries: u16, hf: u16, ty: u8) {
        p[8..12].copy_from_slice(&pgno.to_le_bytes());
        p[16..20].copy_from_slice(&next.to_le_bytes());
        p[20..22].copy_from_slice(&entries.to_le_bytes());
        p[22..24].copy_from_slice(&hf.to_le_bytes());
        p[25] = ty;
    }

    /// A little-endian hash database of 512-byte pages: the metadata page, one hash page
    /// holding `items` (each with its type byte), then `overflow` pages (data, next).
    pub(crate) fn build(items: &[Vec<u8>], overflow: &[(&[u8], u32)]) -> Vec<u8> {
        let mut f = vec![0u8; PS * (2 + overflow.len())];
        f[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        f[16..20].copy_from_slice(&9u32.to_le_bytes());
        f[20..24].copy_from_slice(&(PS as u32).to_le_bytes());
        f[25] = P_HASHMETA;
        let p = &mut f[PS..2 * PS];
        let mut end = PS;
        for (i, it) in items.iter().enumerate() {
            let start = end - it.len();
            p[start..end].copy_from_slice(it);
            p[PAGE_HEADER + 2 * i..PAGE_HEADER + 2 * i + 2].copy_from_slice(&(start as u16).to_le_bytes());
            end = start;
        }
        header(p, 1, 0, items.len() as u16, end as u16, P_HASH);
        for (i, (data, next)) in overflow.iter().enumerate() {
            let pgno = 2 + i;
            let p = &mut f[pgno * PS..(pgno + 1) * PS];
            p[PAGE_HEADER..PAGE_HEADER + data.len()].copy_from_slice(data);
            header(p, pgno as u32, *next, 1, data.len() as u16, P_OVERFLOW);
        }
        f
    }

    pub(crate) fn here(b: &[u8]) -> Vec<u8> {
        [&[H_KEYDATA][..], b].concat()
    }

    pub(crate) fn off(first: u32, len: u32) -> Vec<u8> {
        let mut v = vec![H_OFFPAGE, 0, 0, 0];
        v.extend(first.to_le_bytes());
        v.extend(len.to_le_bytes());
        v
    }

    #[test]
    fn pairs_on_the_page_and_on_overflow_pages() {
        let f = build(
            &[
                here(b"bob@x.org"),
                here(b""),
                here(b"x.net"),
                off(2, 7),
                off(4, 5),
                here(b"hold"),
            ],
            &[(b"conf", 3), (b"irm", 0), (b"c@d.e", 0), (b"", 0)],
        );
        assert_eq!(get(&f, b"bob@x.org").unwrap(), Some(vec![]));
        assert_eq!(get(&f, b"x.net").unwrap(), Some(b"confirm".to_vec()));
        assert_eq!(get(&f, b"c@d.e").unwrap(), Some(b"hold".to_vec()));
        assert_eq!(get(&f, b"nobody").unwrap(), None);
        assert_eq!(pairs(&f).unwrap().len(), 3);
        // Big-endian: swap every integer the reader looks at.
        let mut be = f.clone();
        let swap = |f: &mut Vec<u8>, at: usize, n: usize| f[at..at + n].reverse();
        for (at, n) in [(12, 4), (16, 4), (20, 4)] {
            swap(&mut be, at, n);
        }
        for pg in 1..6 {
            for (at, n) in [(8, 4), (16, 4), (20, 2), (22, 2)] {
                swap(&mut be, pg * PS + at, n);
            }
        }
        for i in 0..6 {
            swap(&mut be, PS + PAGE_HEADER + 2 * i, 2);
        }
        // The overflow references' page numbers and lengths.
        for i in [3, 4] {
            let at = PS + u16::from_be_bytes([be[PS + 26 + 2 * i], be[PS + 27 + 2 * i]]) as usize;
            swap(&mut be, at + 4, 4);
            swap(&mut be, at + 8, 4);
        }
        assert_eq!(get(&be, b"x.net").unwrap(), Some(b"confirm".to_vec()));
        assert_eq!(get(&be, b"c@d.e").unwrap(), Some(b"hold".to_vec()));
    }

    #[test]
    fn hostile_chains_and_offsets_are_errors_not_panics() {
        // A chain that loops back on itself.
        let f = build(&[here(b"k"), off(2, 100)], &[(b"ab", 3), (b"cd", 2)]);
        assert!(
            matches!(get(&f, b"k"), Err(Error::Corrupt(e)) if e.contains("loops")),
            "{:?}",
            get(&f, b"k")
        );
        // A chain into the metadata page, beyond the file, too short, too long.
        for (first, len) in [(0, 4), (99, 4), (2, 3), (2, 1), (2, u32::MAX)] {
            let f = build(&[here(b"k"), off(first, len)], &[(b"ab", 0)]);
            assert!(matches!(get(&f, b"k"), Err(Error::Corrupt(_))), "{first} {len}");
        }
        // An overflow page claiming more data than it has room for.
        let mut f = build(&[here(b"k"), off(2, 2)], &[(b"ab", 0)]);
        f[2 * PS + 22..2 * PS + 24].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(get(&f, b"k"), Err(Error::Corrupt(_))));
        // Index offsets out of order, past the page, and too many entries.
        let good = build(&[here(b"k"), here(b"v")], &[]);
        let mut f = good.clone();
        f[PS + 26..PS + 28].copy_from_slice(&600u16.to_le_bytes());
        assert!(matches!(get(&f, b"k"), Err(Error::Corrupt(_))));
        let mut f = good.clone();
        f[PS + 28..PS + 30].copy_from_slice(&511u16.to_le_bytes());
        assert!(matches!(get(&f, b"k"), Err(Error::Corrupt(_))));
        let mut f = good.clone();
        f[PS + 20..PS + 22].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(get(&f, b"k"), Err(Error::Corrupt(_))));
        // Every truncation and every single-byte change: an answer or an error.
        for n in 0..good.len() {
            let _ = get(&good[..n], b"k");
        }
        let f = build(&[here(b"k"), off(2, 4)], &[(b"ab", 3), (b"cd", 0)]);
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0xff;
            let _ = pairs(&g);
        }
    }

    #[test]
    fn other_formats_are_named() {
        let mut f = build(&[], &[]);
        f[12..16].copy_from_slice(&BTREE_MAGIC.to_le_bytes());
        assert!(matches!(get(&f, b"k"), Err(Error::Unsupported(e)) if e.contains("btree")));
        let mut old = vec![0u8; 512];
        old[0..4].copy_from_slice(&HASH_MAGIC.to_be_bytes());
        assert_eq!(kind(&old), Some("a Berkeley DB 1.85 hash database"));
        assert!(matches!(get(&old, b"k"), Err(Error::Unsupported(e)) if e.contains("1.85")));
        let mut enc = build(&[], &[]);
        enc[24] = 1;
        assert!(matches!(get(&enc, b"k"), Err(Error::Unsupported(e)) if e.contains("encrypted")));
        let mut dup = build(&[here(b"k"), vec![H_DUPLICATE, 1, 0]], &[]);
        assert!(matches!(get(&dup, b"k"), Err(Error::Unsupported(_))));
        dup[16..20].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(get(&dup, b"k"), Err(Error::Unsupported(e)) if e.contains("version 3")));
    }
}
