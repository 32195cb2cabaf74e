//! Deliveries in child processes: crashed at every fault point, run side by side, and
//! measured for memory. The child is this test binary run again for the one test
//! [`child`], which does what `MAILBOX_CHILD` says.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;

const CHILD_VAR: &str = "MAILBOX_CHILD";

/// A body that is made as it is read: `lines` numbered lines, every seventh one beginning
/// `From ` (to be quoted in an mbox), so a delivery of any size needs no memory for it.
struct Generated {
    tag: String,
    lines: u64,
    next: u64,
    pending: Vec<u8>,
    at: usize,
}

impl Generated {
    fn new(tag: &str, lines: u64) -> Generated {
        Generated {
            tag: tag.to_string(),
            lines,
            next: 0,
            pending: vec![],
            at: 0,
        }
    }

    fn line(tag: &str, i: u64) -> String {
        let from = if i.is_multiple_of(7) { "From " } else { "" };
        format!("{from}line {i:08} of message {tag}, padded to a realistic length ......................\n")
    }

    /// The whole body (for small ones, in tests' expectations), quoted or not.
    fn text(tag: &str, lines: u64, quoted: bool) -> String {
        (0..lines)
            .map(|i| {
                let l = Generated::line(tag, i);
                if quoted && l.starts_with("From ") {
                    format!(">{l}")
                } else {
                    l
                }
            })
            .collect()
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.pending.len() {
            if self.next == self.lines {
                return Ok(0);
            }
            self.pending.clear();
            while self.pending.len() < 16 * 1024 && self.next < self.lines {
                self.pending
                    .extend_from_slice(Generated::line(&self.tag, self.next).as_bytes());
                self.next += 1;
            }
            self.at = 0;
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

const HEADER: &[u8] = b"From: alice@example.org\nSubject: test\n\n";
const FROM_LINE: &[u8] = b"From alice@example.org Sat Jan  3 01:05:34 2004";
/// Lines in a test message: a few hundred kilobytes, more than one write buffer.
const LINES: u64 = 3000;

fn mbox_copy(tag: &str, lines: u64) -> String {
    format!(
        "{}\n{}{}\n",
        String::from_utf8_lossy(FROM_LINE),
        String::from_utf8_lossy(HEADER),
        Generated::text(tag, lines, true)
    )
}

/// The child's side: deliver as `MAILBOX_CHILD` says, then exit 0 (or 1 with the error).
/// Run only as a child (`--ignored`), never on its own.
#[test]
#[ignore = "run by the other tests as a child process"]
fn child() {
    let Ok(what) = std::env::var(CHILD_VAR) else { return };
    let words: Vec<&str> = what.split(' ').collect();
    let opts = mbox::Options {
        lock_timeout: Duration::from_secs(60),
        ..mbox::Options::default()
    };
    let result = match words.as_slice() {
        ["maildir", dir, tag] => {
            let mut body = Generated::new(tag, LINES);
            let msg = Message {
                header: HEADER,
                body: &mut body,
                from_line: None,
            };
            maildir::deliver(Path::new(dir), msg, 1_700_000_000, "host").map(|_| ())
        }
        ["mbox", path, tag, count] => (0..count.parse::<u32>().unwrap_or(1)).try_for_each(|i| {
            let mut body = Generated::new(&format!("{tag}.{i}"), LINES);
            let msg = Message {
                header: HEADER,
                body: &mut body,
                from_line: Some(FROM_LINE),
            };
            mbox::deliver(Path::new(path), mbox::Format::Mbox, msg, 1, &opts)
        }),
        ["mbox-one", path] => {
            let mut body: &[u8] = b"x\n";
            let msg = Message {
                header: b"",
                body: &mut body,
                from_line: Some(b"From a"),
            };
            mbox::deliver(Path::new(path), mbox::Format::Mbox, msg, 1, &opts)
        }
        ["big-maildir", dir, lines] | ["big-mbox", dir, lines] => {
            let mut body = Generated::new("big", lines.parse().unwrap_or(0));
            let msg = Message {
                header: HEADER,
                body: &mut body,
                from_line: None,
            };
            let r = if words[0] == "big-maildir" {
                maildir::deliver(Path::new(dir), msg, 1, "host").map(|_| ())
            } else {
                mbox::deliver(Path::new(dir), mbox::Format::Mbox, msg, 1, &opts)
            };
            // The peak of this process image (VmHWM): getrusage's ru_maxrss would carry
            // over the test runner's own peak across the exec.
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap_or("");
            println!("maxrss_kb={}", hwm.trim().trim_end_matches("kB").trim());
            r
        }
        _ => panic!("unknown child instruction {what}"),
    };
    if let Err(e) = result {
        eprintln!("child failed: {e}");
        std::process::exit(1);
    }
}

/// Run [`child`] with `what`, and `fault` armed if given.
fn run_child(what: &str, fault: Option<&str>) -> std::process::Output {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "mailbox::tests::child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_VAR, what)
    .env_remove(fault::VAR);
    if let Some(f) = fault {
        cmd.env(fault::VAR, f);
    }
    cmd.output().expect("the test binary runs")
}

fn maildir_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for s in ["tmp", "cur", "new"] {
        std::fs::create_dir(d.path().join(s)).unwrap();
    }
    d
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn show(out: &std::process::Output) -> String {
    format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr))
}

fn crashed(out: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(libc::SIGABRT)
}

#[test]
fn maildir_crashed_at_every_point_holds_a_whole_copy_or_none() {
    let want = format!(
        "{}{}",
        String::from_utf8_lossy(HEADER),
        Generated::text("m", LINES, false)
    );
    for point in fault::POINTS.iter().filter(|p| p.starts_with("maildir-")) {
        let d = maildir_dir();
        let out = run_child(&format!("maildir {} m", d.path().display()), Some(point));
        assert!(crashed(&out), "{point}: the child did not crash: {}", show(&out));
        let new = files_in(&d.path().join("new"));
        // Linked into new/ only after the fsync: from then on a whole copy, before it none.
        let linked = matches!(*point, "maildir-after-link" | "maildir-after-dirsync");
        assert_eq!(new.len(), usize::from(linked), "{point}");
        for f in &new {
            assert_eq!(
                std::fs::read_to_string(f).unwrap(),
                want,
                "{point}: a partial copy in new/"
            );
        }
        assert!(files_in(&d.path().join("cur")).is_empty(), "{point}");
        // Leftovers only in tmp/, and a later delivery is not hindered by them.
        assert!(files_in(&d.path().join("tmp")).len() <= 1, "{point}");
        let out = run_child(&format!("maildir {} m", d.path().display()), None);
        assert!(
            out.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            files_in(&d.path().join("new")).len(),
            usize::from(linked) + 1,
            "{point}"
        );
    }
    // The same child unarmed delivers exactly one copy.
    let d = maildir_dir();
    assert!(
        run_child(&format!("maildir {} m", d.path().display()), None)
            .status
            .success()
    );
    let new = files_in(&d.path().join("new"));
    assert_eq!(new.len(), 1);
    assert_eq!(std::fs::read_to_string(&new[0]).unwrap(), want);
    assert!(files_in(&d.path().join("tmp")).is_empty());
}

#[test]
fn mbox_crashed_at_every_point_is_left_whole_or_cut_back() {
    let old = mbox_copy("old", 3);
    for point in fault::POINTS.iter().filter(|p| p.starts_with("mbox-")) {
        let d = tempfile::tempdir().unwrap();
        let mbox = d.path().join("mbox");
        std::fs::write(&mbox, &old).unwrap();
        let out = run_child(&format!("mbox {} crash 1", mbox.display()), Some(point));
        assert!(crashed(&out), "{point}: the child did not crash: {}", show(&out));
        // Right after the crash: the old mailbox, then at most a prefix of the copy.
        let after = std::fs::read_to_string(&mbox).unwrap();
        let crash_copy = mbox_copy("crash.0", LINES);
        assert!(after.starts_with(&old), "{point}: the old messages were touched");
        assert!(
            crash_copy.starts_with(&after[old.len()..]),
            "{point}: foreign bytes after the old messages"
        );
        // The next delivery finds the dead writer's lock, cuts its append off (the MTA
        // never heard of success and sends it again) and appends its own.
        let out = run_child(&format!("mbox {} next 1", mbox.display()), None);
        assert!(
            out.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let complete = *point == "mbox-after-unlock";
        let want = format!(
            "{old}{}{}",
            if complete { crash_copy.as_str() } else { "" },
            mbox_copy("next.0", LINES)
        );
        let got = std::fs::read_to_string(&mbox).unwrap();
        assert!(got == want, "{point}: {} bytes, wanted {}", got.len(), want.len());
        assert!(!lock::lock_path(&mbox).exists(), "{point}: a lock was left");
    }
}

/// A spool the user may not create files in (as /var/mail): no dot-lock, the fcntl lock
/// alone, and the delivery goes through. Run as nobody (uid 65534) when we are root.
#[test]
fn without_a_writable_directory_the_fcntl_lock_alone_is_used() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let spool = d.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let mbox = spool.join("mbox");
    std::fs::write(&mbox, b"").unwrap();
    std::fs::set_permissions(&mbox, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o555)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "mailbox::tests::child", "--ignored", "--nocapture"])
        .env(CHILD_VAR, format!("mbox-one {}", mbox.display()))
        .env_remove(fault::VAR);
    if root {
        // std drops the supplementary groups too when root changes uid.
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&mbox).unwrap(), b"From a\nx\n\n");
    assert!(!lock::lock_path(&mbox).exists());
}

#[test]
fn processes_appending_at_once_do_not_interleave() {
    let d = tempfile::tempdir().unwrap();
    let mbox = d.path().join("mbox");
    std::fs::write(&mbox, b"").unwrap();
    let (procs, each) = (3, 6);
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..procs)
        .map(|p| {
            Command::new(&exe)
                .args(["--exact", "mailbox::tests::child", "--ignored", "--nocapture"])
                .env(CHILD_VAR, format!("mbox {} p{p} {each}", mbox.display()))
                .env_remove(fault::VAR)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(&mbox).unwrap();
    let sep = format!("{}\n", String::from_utf8_lossy(FROM_LINE));
    let mut copies: Vec<&str> = text.split(sep.as_str()).skip(1).collect();
    assert_eq!(copies.len(), procs * each);
    copies.sort();
    let skip = sep.len();
    let mut want: Vec<String> = (0..procs)
        .flat_map(|p| (0..each).map(move |i| mbox_copy(&format!("p{p}.{i}"), LINES)[skip..].to_string()))
        .collect();
    want.sort();
    assert!(copies == want, "a copy was interleaved or cut");

    // A reader of another make counts the same messages (Python's mailbox module, which
    // splits at every line beginning "From ": quoting is what keeps the body's in).
    let out = Command::new("python3")
        .args([
            "-c",
            "import mailbox,sys; b=mailbox.mbox(sys.argv[1]); print(len(b)); print(sum(m.get_payload().count('\\n>From ') for m in b))",
        ])
        .arg(&mbox)
        .output()
        .expect("python3 is needed for this test");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let quoted_per_copy = Generated::text("x", LINES, true).matches("\n>From ").count();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n{}\n", procs * each, procs * each * quoted_per_copy)
    );
}

/// 100 MB streamed: the child's peak memory stays far below the message's size.
#[test]
fn a_100_mb_message_is_streamed() {
    let line = Generated::line("big", 1).len() as u64;
    let lines = 100 * 1024 * 1024 / line + 1;
    let d = maildir_dir();
    let mbox = d.path().join("mbox");
    std::fs::write(&mbox, b"").unwrap();
    for (kind, target) in [("big-maildir", d.path().to_path_buf()), ("big-mbox", mbox.clone())] {
        let out = run_child(&format!("{kind} {} {lines}", target.display()), None);
        assert!(out.status.success(), "{kind}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let kb: u64 = stdout
            .lines()
            .find_map(|l| l.split_once("maxrss_kb=").map(|(_, v)| v))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{kind}: no maxrss in {stdout}"));
        assert!(kb < 32 * 1024, "{kind}: peak RSS {kb} kB");
    }
    let new = files_in(&d.path().join("new"));
    assert_eq!(new.len(), 1);
    let size = std::fs::metadata(&new[0]).unwrap().len();
    // Every seventh line begins "From " (five bytes more).
    assert_eq!(size, HEADER.len() as u64 + lines * line + 5 * lines.div_ceil(7));
    assert!(size > 100 * 1024 * 1024);
    assert!(std::fs::metadata(&mbox).unwrap().len() > size);
}

#[test]
fn write_to_and_deliver_by_instruction() {
    let d = maildir_dir();
    let home = d.path();
    let mut out = Vec::new();
    let cx = Context::new(1, "host");
    let mut b1: &[u8] = b"From me\n";
    let r = deliver(
        &Instruction::parse("_filter_", home).unwrap(),
        Message {
            header: b"A: b\n\n",
            body: &mut b1,
            from_line: Some(b"From x"),
        },
        &cx,
        &mut out,
    )
    .unwrap();
    assert_eq!(r, Delivered::Written);
    assert_eq!(
        out, b"A: b\n\nFrom me\n",
        "no From_ line and no quoting on standard output"
    );

    let mut b2: &[u8] = b"x\n";
    let r = deliver(
        &Instruction::parse("~/", home).unwrap(),
        Message {
            header: b"\n",
            body: &mut b2,
            from_line: None,
        },
        &cx,
        &mut out,
    )
    .unwrap();
    let Delivered::Maildir(p) = r else {
        panic!("not a Maildir delivery")
    };
    assert!(p.starts_with(home.join("new")));

    for (text, want) in [
        ("&jo@example.org", Delivered::Forward("jo@example.org".into())),
        ("_qok_", Delivered::QmailOk),
    ] {
        let mut untouched: &[u8] = b"left";
        let r = deliver(
            &Instruction::parse(text, home).unwrap(),
            Message {
                header: b"",
                body: &mut untouched,
                from_line: None,
            },
            &cx,
            &mut out,
        )
        .unwrap();
        assert_eq!(r, want);
        assert_eq!(untouched, b"left");
    }
}
