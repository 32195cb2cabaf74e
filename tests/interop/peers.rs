//! Starting and reading the real peers.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fail loudly when a peer program is missing.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].iter().map(PathBuf::from));
    for dir in found {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{program} is required for the interoperability tests: install Debian's {package} (scripts/deps.sh does)");
}

pub fn tmda_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tmda"))
}

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not start listening on 127.0.0.1:{port}");
}

fn is_root() -> bool {
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A directory other users (postfix, nobody, dovecot) can traverse.
pub fn shared_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A process that is killed (by PID) when dropped.
pub struct Daemon {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Postfix's smtp-sink: accepts everything and dumps each transaction to a file.
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    _daemon: Daemon,
}

/// One transaction as smtp-sink recorded it.
#[derive(Debug, Clone)]
pub struct Sunk {
    pub mail_from: String,
    pub rcpt_to: String,
    /// The message as relayed (smtp-sink's own Received field removed).
    pub message: String,
}

impl SmtpSink {
    pub fn start(parent: &Path) -> SmtpSink {
        let bin = require("smtp-sink", "postfix");
        let dir = parent.join("sink");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = free_port();
        let mut cmd = Command::new(bin);
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        cmd.arg("-d")
            .arg(format!("{}/%Y%m%d%H%M%S.", dir.display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("100");
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        wait_for_port(port, "smtp-sink");
        SmtpSink {
            port,
            dir,
            _daemon: Daemon {
                child,
                name: "smtp-sink",
            },
        }
    }

    /// Wait until `n` transactions were dumped, then return them (ordered by recipient).
    pub fn wait_for(&self, n: usize) -> Vec<Sunk> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() > deadline {
                assert_eq!(got.len(), n, "smtp-sink received {} messages, expected {n}", got.len());
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn messages(&self) -> Vec<Sunk> {
        let mut out = vec![];
        for e in std::fs::read_dir(&self.dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap_or_default();
            // A file is complete once the message (after smtp-sink's Received) is there.
            let Some((meta, rest)) = text.split_once("\nReceived: from ") else {
                continue;
            };
            let field = |name: &str| {
                meta.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or("")
                    .trim()
                    .to_string()
            };
            // Skip smtp-sink's own (folded) Received field.
            let mut lines = rest.split_inclusive('\n');
            lines.next();
            let mut message = String::new();
            let mut in_received = true;
            for l in lines {
                if in_received && (l.starts_with('\t') || l.starts_with(' ')) {
                    continue;
                }
                in_received = false;
                message.push_str(l);
            }
            // smtp-sink ends every dump with one newline of its own.
            if message.ends_with('\n') {
                message.pop();
            }
            out.push(Sunk {
                mail_from: field("X-Mail-Args:")
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
                rcpt_to: field("X-Rcpt-Args:")
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
                message,
            });
        }
        out.sort_by(|a, b| a.rcpt_to.cmp(&b.rcpt_to));
        out
    }
}

/// A value of a header field in a message text (first occurrence, unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\n\n").next().unwrap_or("");
    let mut value: Option<String> = None;
    for line in head.lines() {
        if let Some(v) = value.as_mut()
            && (line.starts_with(' ') || line.starts_with('\t'))
        {
            v.push(' ');
            v.push_str(line.trim());
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

/// A HOME with a TMDA setup (the TMDA test key) and an extra config text.
pub fn tmda_home(dir: &Path, config: &str) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".tmda/filters")).unwrap();
    std::fs::write(
        home.join(".tmda/crypt_key"),
        "b7fdc8a5afe5f364c87e2f984cbbd27450255675\n",
    )
    .unwrap();
    std::fs::set_permissions(home.join(".tmda/crypt_key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        home.join(".tmda/config"),
        format!("USERNAME = 'testuser'\nHOSTNAME = 'testsite.com'\n{config}"),
    )
    .unwrap();
    home
}

/// Recompute the MAC of a tagged address with the test key and check it (as a TMDA server would).
pub fn assert_tag_verifies(address: &str, sender: Option<&str>, home: &Path) {
    let out = Command::new(tmda_bin())
        .arg("check-address")
        .arg(address)
        .args(sender)
        .env("HOME", home)
        .env("GLOBAL_TMDARC", home.join("none"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{address} does not verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
