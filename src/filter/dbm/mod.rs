//! `from-dbm` / `to-dbm` lists: the files Python's dbm modules write, read the way
//! Python's `dbm.whichdb` tells them apart (TMDA opens a list with `anydbm.open` on
//! Python 2, `dbm.open` on Python 3, which both go by that guess):
//!
//! * `FILE.pag` beside `FILE.dir`: an ndbm list, which on GNU systems is a GDBM file
//!   (GDBM's ndbm emulation keeps its data in `FILE.pag`);
//! * `FILE.db`: Python 3's `dbm.ndbm` built on Berkeley DB (Debian's), a hash database;
//! * `FILE.dir` (with `FILE.dat`): Python's portable `dbm.dumb` ([`dumb`]);
//! * `FILE` itself, by its magic number: GDBM ([`gdbm`]: `dbm.gnu`, Python 2's `gdbm`) or
//!   Berkeley DB hash ([`bdb`]: Python 2's `dbhash`, the usual `anydbm` choice).
//!
//! Binary files are read whole, up to [`FILE_MAX`], and parsed from memory: lists are
//! small (kilobytes to a few megabytes), one lookup touches most of a file anyway (the
//! readers scan rather than hash, see their docs), and bytes in memory keep the parsers
//! free of I/O and easy to fuzz. A larger file is refused rather than half read.

pub mod bdb;
mod dumb;
pub mod gdbm;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest binary list file read.
pub const FILE_MAX: u64 = 64 << 20;
/// The most bucket slots (GDBM) or overflow pages (Berkeley DB) one lookup examines: far
/// above what a real list of this size needs, far below what a crafted one could ask.
pub(crate) const WORK_MAX: u64 = 1 << 22;

/// Why a binary list could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Offsets or sizes that do not fit the file, loops, and the like.
    Corrupt(String),
    /// A well-formed file of a kind tmda does not read; the text says what to do.
    Unsupported(String),
    /// More to examine than [`WORK_MAX`] allows.
    TooBig,
}

impl Error {
    fn describe(self, format: &str) -> String {
        match self {
            Error::Corrupt(what) => format!("a damaged {format} file ({what})"),
            Error::Unsupported(what) => what,
            Error::TooBig => format!("a {format} file too costly to search (damaged?)"),
        }
    }
}

pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The contents of `file`, or `None` when there is no such file.
fn read_capped(file: &Path) -> io::Result<Option<Vec<u8>>> {
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    f.take(FILE_MAX + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > FILE_MAX {
        return Err(io::Error::other(format!(
            "{}: larger than {} MiB",
            file.display(),
            FILE_MAX >> 20
        )));
    }
    Ok(Some(bytes))
}

/// The value for `key` in the binary dbm `bytes` (read from `file`), by magic number.
/// `ndbm_pag`: the file is an ndbm `.pag`, which only GDBM's kind can read.
pub fn lookup_bytes(bytes: &[u8], key: &[u8], ndbm_pag: bool) -> Result<Option<Vec<u8>>, String> {
    if gdbm::is_gdbm(bytes) {
        return gdbm::get(bytes, key).map_err(|e| e.describe("GDBM"));
    }
    if ndbm_pag {
        return Err(
            "an ndbm .pag file not made by GDBM, which tmda cannot read; convert the list to a text \
                    file (from-file) or a cdb (from-cdb)"
                .into(),
        );
    }
    if bdb::kind(bytes).is_some() {
        return bdb::get(bytes, key).map_err(|e| e.describe("Berkeley DB"));
    }
    let start: Vec<String> = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Err(format!(
        "not a dbm list tmda can read (it starts with {}); tmda reads Python's dbm.dumb (FILE.dir and \
         FILE.dat), GDBM and Berkeley DB hash files; convert the list to a text file (from-file) or a cdb \
         (from-cdb)",
        if start.is_empty() {
            "nothing".to_string()
        } else {
            start.join(" ")
        }
    ))
}

/// The value stored for the first of `keys` (in their order) that the dbm list at `path`
/// has; the file is read once for all of them. `NotFound` when there is no such list;
/// other errors name the file read when it is not `path` itself.
pub fn lookup(path: &Path, keys: &[&[u8]]) -> io::Result<Option<Vec<u8>>> {
    let binary = |file: &Path, ndbm_pag: bool| -> io::Result<Option<Option<Vec<u8>>>> {
        let Some(bytes) = read_capped(file)? else {
            return Ok(None);
        };
        let first = || -> Result<Option<Vec<u8>>, String> {
            for key in keys {
                if let Some(v) = lookup_bytes(&bytes, key, ndbm_pag)? {
                    return Ok(Some(v));
                }
            }
            Ok(None)
        };
        first().map(Some).map_err(|e| {
            io::Error::other(if file == path {
                e
            } else {
                format!("{}: {e}", file.display())
            })
        })
    };
    // whichdb's order: ndbm (.pag and .dir, then .db), dumb (.dir), the file itself.
    if with_suffix(path, ".dir").exists()
        && let Some(found) = binary(&with_suffix(path, ".pag"), true)?
    {
        return Ok(found);
    }
    if let Some(found) = binary(&with_suffix(path, ".db"), false)? {
        return Ok(found);
    }
    if with_suffix(path, ".dir").exists() {
        return dumb::lookup(path, keys);
    }
    match binary(path, false)? {
        Some(found) => Ok(found),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no such dbm list (nor FILE.dir, FILE.db, FILE.pag)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One key's value.
    fn get(path: &Path, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        lookup(path, &[key])
    }
    use std::process::Command;

    /// A Python that has `module` (Debian's /usr/bin/python3 gets dbm.gnu from the
    /// python3-gdbm package; a python3 earlier on PATH may lack it). Panics, naming the
    /// package, when none has: these tests must not pass by skipping.
    fn python_with(module: &str, package: &str) -> &'static str {
        for python in ["python3", "/usr/bin/python3"] {
            let ok = Command::new(python)
                .args(["-c", &format!("import {module}")])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return python;
            }
        }
        panic!("no python3 can import {module}: install the Debian package {package} (scripts/deps.sh)");
    }

    fn run(cmd: &mut Command, package: &str) {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}: install the Debian package {package} (scripts/deps.sh)"));
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Python writes a list with `module`, deleting and re-inserting keys, and dumps what
    /// it holds in the end (hex key, hex value per line) and the keys it deleted; every
    /// key reads back with its value, no deleted one does.
    fn check_python_list(module: &str, package: &str, file: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("white.db");
        let script = "import sys, importlib\n\
            m = importlib.import_module(sys.argv[1])\n\
            db = m.open(sys.argv[2], 'c')\n\
            deleted = set()\n\
            for i in range(600):\n\
            \x20   db[b'user%d@example.org' % i] = b'confirm' if i % 7 == 0 else b'v%d' % i * (i % 300)\n\
            for i in range(0, 600, 3):\n\
            \x20   del db[b'user%d@example.org' % i]\n\
            \x20   deleted.add(b'user%d@example.org' % i)\n\
            for i in range(0, 600, 9):\n\
            \x20   db[b'user%d@example.org' % i] = b'hold'\n\
            \x20   deleted.discard(b'user%d@example.org' % i)\n\
            db[b'bob@x.org'] = b''\n\
            db[b'x.net'] = b'bounce ' + b'x' * 5000\n\
            db[b'caf\\xe9@y.org'] = b'ok'\n\
            with open(sys.argv[3], 'w') as out:\n\
            \x20   for k in db.keys():\n\
            \x20       out.write('%s %s\\n' % (k.hex(), db[k].hex()))\n\
            with open(sys.argv[4], 'w') as out:\n\
            \x20   for k in deleted:\n\
            \x20       out.write(k.hex() + '\\n')\n\
            db.close()\n";
        let python = python_with(module, package);
        run(
            Command::new(python)
                .args(["-c", script, module])
                .arg(&path)
                .arg(d.path().join("dump"))
                .arg(d.path().join("deleted")),
            package,
        );
        assert!(d.path().join(file).exists(), "{module} did not write {file}");
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let dump = std::fs::read_to_string(d.path().join("dump")).unwrap();
        let mut n = 0;
        for line in dump.lines() {
            let (k, v) = line.split_once(' ').unwrap();
            assert_eq!(get(&path, &hex(k)).unwrap(), Some(hex(v)), "{line}");
            n += 1;
        }
        assert!(n > 400, "{n}");
        assert_eq!(get(&path, b"x.net").unwrap().unwrap().len(), 5007);
        assert_eq!(get(&path, b"caf\xe9@y.org").unwrap(), Some(b"ok".to_vec()));
        for k in std::fs::read_to_string(d.path().join("deleted")).unwrap().lines() {
            assert_eq!(get(&path, &hex(k)).unwrap(), None, "{k}");
        }
        assert_eq!(get(&path, b"nobody@z").unwrap(), None);
        // Several keys, one read: the first one the list has, in the keys' order.
        let keys: [&[u8]; 3] = [b"nobody@z", b"caf\xe9@y.org", b"x.net"];
        assert_eq!(lookup(&path, &keys).unwrap(), Some(b"ok".to_vec()));
        d
    }

    #[test]
    fn gdbm_lists_as_python_writes_them() {
        let d = check_python_list("dbm.gnu", "python3-gdbm", "white.db");
        let bytes = std::fs::read(d.path().join("white.db")).unwrap();
        assert!(gdbm::is_gdbm(&bytes));
    }

    #[test]
    fn berkeley_db_lists_as_python_ndbm_writes_them() {
        // Debian's dbm.ndbm is Berkeley DB's ndbm interface: it writes FILE.db.
        let python = python_with("dbm.ndbm", "python3");
        let out = Command::new(python)
            .args(["-c", "import dbm.ndbm; print(dbm.ndbm.library)"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "Berkeley DB",
            "this python's dbm.ndbm is not built on Berkeley DB"
        );
        check_python_list("dbm.ndbm", "python3", "white.db.db");
    }

    #[test]
    fn python_dumb_dbm_files() {
        check_python_list("dbm.dumb", "python3", "white.db.dir");
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            get(&d.path().join("missing"), b"a").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    /// GDBM's extended ("numsync") header, which `gdbmtool`'s upgrade writes.
    #[test]
    fn gdbm_extended_header_as_gdbmtool_writes() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("white.db");
        let mut cmd = Command::new("gdbmtool");
        cmd.arg(&path).stdin(std::process::Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("gdbmtool: {e}: install the Debian package gdbmtool (scripts/deps.sh)"));
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"store bob@x.org ok\nstore x.net confirm\nupgrade\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            &bytes[..4],
            &0x1357_9ad1u32.to_le_bytes(),
            "gdbmtool's upgrade wrote the numsync magic"
        );
        assert_eq!(get(&path, b"x.net").unwrap(), Some(b"confirm".to_vec()));
        assert_eq!(get(&path, b"bob@x.org").unwrap(), Some(b"ok".to_vec()));
        assert_eq!(get(&path, b"bob").unwrap(), None);
        // Several keys: the first one the list has, in the keys' order.
        let keys: [&[u8]; 3] = [b"bob", b"x.net", b"bob@x.org"];
        assert_eq!(lookup(&path, &keys).unwrap(), Some(b"confirm".to_vec()));
        assert_eq!(lookup(&path, &keys[..1]).unwrap(), None);
    }

    /// db5.3_load's input: `-T` text, one key line and one value line each.
    fn db_load(dir: &Path, name: &str, options: &[&str], pairs: &[(&[u8], &[u8])]) -> PathBuf {
        let path = dir.join(name);
        let mut text = Vec::new();
        for (k, v) in pairs {
            for b in [k, v] {
                text.extend(*b);
                text.push(b'\n');
            }
        }
        let input = dir.join(format!("{name}.txt"));
        std::fs::write(&input, text).unwrap();
        run(
            Command::new("db5.3_load")
                .args(["-T", "-t", "hash", "-f"])
                .arg(&input)
                .args(options.iter().flat_map(|o| ["-c", o]))
                .arg(&path),
            "db5.3-util",
        );
        path
    }

    #[test]
    fn berkeley_db_hash_files_db_load_writes() {
        let d = tempfile::tempdir().unwrap();
        let big = vec![b'y'; 9000];
        let long_key = vec![b'k'; 3000];
        let many: Vec<(Vec<u8>, Vec<u8>)> = (0..400)
            .map(|i| {
                (
                    format!("user{i}@example.org").into_bytes(),
                    format!("v{i}").into_bytes(),
                )
            })
            .collect();
        let mut pairs: Vec<(&[u8], &[u8])> = vec![
            (b"bob@x.org", b"ok"),
            (b"big", &big),
            (&long_key, b"drop"),
            (b"x.net", b"confirm"),
        ];
        pairs.extend(many.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
        // The default page size, small pages (many pages, overflow chains of many pages),
        // the other byte order, and pages with checksums.
        for (name, options) in [
            ("plain.db", &[][..]),
            ("small.db", &["db_pagesize=512"][..]),
            ("big-endian.db", &["db_lorder=4321", "db_pagesize=512"][..]),
            ("chksum.db", &["chksum=1"][..]),
        ] {
            let path = db_load(d.path(), name, options, &pairs);
            for (k, v) in &pairs {
                assert_eq!(
                    get(&path, k).unwrap().as_deref(),
                    Some(*v),
                    "{name}: {}",
                    String::from_utf8_lossy(k)
                );
            }
            assert_eq!(get(&path, b"nobody@z").unwrap(), None, "{name}");
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bdb::pairs(&bytes).unwrap().len(), pairs.len(), "{name}");
        }
        let be = std::fs::read(d.path().join("big-endian.db")).unwrap();
        assert_eq!(
            &be[12..16],
            &[0, 6, 0x15, 0x61],
            "db_lorder=4321 wrote a big-endian file"
        );
        // A btree database is named as one, not misread.
        let path = d.path().join("btree.db");
        std::fs::write(d.path().join("bt.txt"), "a\nb\n").unwrap();
        run(
            Command::new("db5.3_load")
                .args(["-T", "-t", "btree", "-f"])
                .arg(d.path().join("bt.txt"))
                .arg(&path),
            "db5.3-util",
        );
        let e = get(&path, b"a").unwrap_err().to_string();
        assert!(e.contains("btree") && e.contains("db5.3_load -t hash"), "{e}");
    }

    /// The fuzz target's seeds (fuzz/seeds/dbm_file, made by gdbmtool -b 512 and
    /// db5.3_load -c db_pagesize=512) stay readable lists, so the fuzzer starts deep.
    #[test]
    fn the_fuzz_seeds_are_readable_lists() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/dbm_file");
        for name in [
            "gdbm-512",
            "gdbm-numsync",
            "bdb-512",
            "bdb-512-big-endian",
            "bdb-512-chksum",
        ] {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            assert_eq!(
                lookup_bytes(&bytes, b"bob@x.org", false),
                Ok(Some(b"ok".to_vec())),
                "{name}"
            );
            if name.starts_with("bdb") {
                assert_eq!(
                    lookup_bytes(&bytes, b"big", false),
                    Ok(Some(vec![b'y'; 1200])),
                    "{name}"
                );
                assert_eq!(
                    lookup_bytes(&bytes, &[b'k'; 700], false),
                    Ok(Some(b"hold".to_vec())),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn unknown_files_are_named_with_what_was_found() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("list.db");
        std::fs::write(&path, b"bob@x.org\n").unwrap();
        let e = get(&path, b"a").unwrap_err().to_string();
        assert!(e.contains("not a dbm list") && e.contains("62 6f 62"), "{e}");
        // A .db beside it is read and named in errors.
        std::fs::write(with_suffix(&path, ".db"), b"\xcf\x9a\x57\x13").unwrap();
        let e = get(&path, b"a").unwrap_err().to_string();
        assert!(e.contains("list.db.db: a damaged GDBM file"), "{e}");
        // An ndbm .pag that is not GDBM's.
        let p2 = d.path().join("old");
        std::fs::write(with_suffix(&p2, ".pag"), b"\0\0\0\0").unwrap();
        std::fs::write(with_suffix(&p2, ".dir"), b"").unwrap();
        let e = get(&p2, b"a").unwrap_err().to_string();
        assert!(e.contains("old.pag: an ndbm .pag file"), "{e}");
        // GDBM's ndbm emulation: a GDBM .pag is read.
        std::fs::write(with_suffix(&p2, ".pag"), gdbm::tests::build(&[(b"a", b"ok")], 2, 2)).unwrap();
        assert_eq!(get(&p2, b"a").unwrap(), Some(b"ok".to_vec()));
    }
}
