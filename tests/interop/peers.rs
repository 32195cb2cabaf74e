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
    pub fn libc_geteuid() -> u32;
    #[link_name = "kill"]
    pub fn libc_kill(pid: i32, sig: i32) -> i32;
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

/// A test CA and a leaf certificate for localhost / 127.0.0.1 / ::1 (OpenSSL; works for
/// rustls, OpenSSL and GnuTLS peers). Returns (ca.pem, leaf.pem, leaf.key).
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = require("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new(&openssl).args(args).current_dir(dir).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=tmda-test-ca",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost"],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    for f in ["ca.pem", "leaf.pem", "leaf.key"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    (dir.join("ca.pem"), dir.join("leaf.pem"), dir.join("leaf.key"))
}

/// stunnel accepting TLS on a loopback port and forwarding in the clear to `to_port`.
pub fn stunnel(dir: &Path, cert: &Path, key: &Path, to_port: u16) -> (u16, Daemon) {
    let bin = require("stunnel4", "stunnel4");
    let port = free_port();
    let conf = dir.join(format!("stunnel-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\ndebug = 3\n[svc]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{to_port}\ncert = {}\nkey = {}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "stunnel");
    (port, Daemon { child, name: "stunnel" })
}

/// `DIR/pfx` with the directories a private Postfix instance needs (`etc`, `spool`, and
/// `data` owned by postfix).
pub fn postfix_base(dir: &Path) -> PathBuf {
    let base = dir.join("pfx");
    for d in ["etc", "spool", "data"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    let chown = Command::new("chown")
        .arg("postfix")
        .arg(base.join("data"))
        .status()
        .unwrap();
    assert!(chown.success(), "chown postfix (the tests run as root in CI)");
    base
}

/// A private Postfix instance's master.cf: smtpd on 127.0.0.1:`port` and the services
/// it needs.
pub fn postfix_master_cf(port: u16) -> String {
    format!(
        "127.0.0.1:{port} inet n - n - - smtpd\npickup unix n - n 60 1 pickup\ncleanup unix n - n - 0 cleanup\n\
         qmgr unix n - n 300 1 qmgr\ntlsmgr unix - - n 1000? 1 tlsmgr\nrewrite unix - - n - - trivial-rewrite\n\
         bounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce\ntrace unix - - n - 0 bounce\n\
         verify unix - - n - 1 verify\nflush unix n - n 1000? 0 flush\nproxymap unix - - n - - proxymap\n\
         smtp unix - - n - - smtp\nrelay unix - - n - - smtp\nshowq unix n - n - - showq\nerror unix - - n - - error\n\
         retry unix - - n - - error\ndiscard unix - - n - - discard\nlocal unix - n n - - local\n\
         anvil unix - - n - 1 anvil\nscache unix - - n - 1 scache\npostlog unix-dgram n - n - 1 postlogd\n"
    )
}

/// A private Postfix instance: smtpd with STARTTLS on a loopback port, relaying to `relay_port`.
pub struct Postfix {
    pub port: u16,
    config_dir: PathBuf,
}

impl Postfix {
    pub fn start(dir: &Path, cert: &Path, key: &Path, relay_port: u16) -> Postfix {
        Postfix::start_with(dir, cert, key, relay_port, "")
    }

    /// With more main.cf lines (`extra`, each ending in a newline).
    pub fn start_with(dir: &Path, cert: &Path, key: &Path, relay_port: u16, extra: &str) -> Postfix {
        let postfix = require("postfix", "postfix");
        let base = postfix_base(dir);
        let port = free_port();
        let b = base.display();
        std::fs::write(
            base.join("etc/main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {b}/spool\ndata_directory = {b}/data\ninet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\nmyhostname = pfx.localdomain\nmydestination =\nmynetworks = 127.0.0.0/8\n\
                 relayhost = [127.0.0.1]:{relay_port}\nmaillog_file = {b}/maillog\nmaillog_file_prefixes = {b}\n\
                 smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\nsmtpd_tls_security_level = may\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject\nalias_maps =\nalias_database =\n\
                 smtpd_forbid_unauth_pipelining = yes\nsmtpd_data_restrictions = reject_unauth_pipelining\n{extra}",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        std::fs::write(base.join("etc/master.cf"), postfix_master_cf(port)).unwrap();
        let cfg = base.join("etc");
        let out = Command::new(&postfix)
            .arg("-c")
            .arg(&cfg)
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postfix start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_for_port(port, "postfix smtpd");
        Postfix { port, config_dir: cfg }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.config_dir)
            .arg("stop")
            .output();
    }
}

/// uid and gid of `nobody` (tests run ofmipd as nobody when they run as root, so it
/// runs in personal mode as TMDA decides by uid).
pub fn nobody() -> (u32, u32) {
    let a = tmda::account::Account::lookup("nobody").expect("user nobody");
    (a.uid, a.gid)
}

/// Run `cmd` as nobody when we are root (ofmipd then stays in personal mode).
pub fn as_nobody_if_root(cmd: &mut Command) {
    if is_root() {
        use std::os::unix::process::CommandExt;
        let (u, g) = nobody();
        cmd.uid(u).gid(g);
    }
}

/// Tests that create system users and start global-mode servers need root: fail loudly.
pub fn require_root(what: &str) {
    assert!(is_root(), "{what} must run as root (CI does)");
}

/// Make `dir` (recursively) belong to nobody when we are root.
pub fn give_to_nobody(dir: &Path) {
    if is_root() {
        let (u, g) = nobody();
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{u}:{g}"))
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

/// A HOME for ofmipd's user: TMDA config relaying to `upstream_port`, the test key,
/// and a tofmipd file with alice:wonderland.
pub fn ofmipd_home(dir: &Path, upstream_port: u16, extra: &str) -> PathBuf {
    let home = tmda_home(
        dir,
        &format!("MAIL_TRANSPORT = 'smtp'\nSMTPHOST = '127.0.0.1:{upstream_port}'\nFULLNAME = 'Alice'\n{extra}"),
    );
    std::fs::write(home.join(".tmda/tofmipd"), "# test users\nalice:wonderland\n").unwrap();
    std::fs::set_permissions(home.join(".tmda/tofmipd"), std::fs::Permissions::from_mode(0o600)).unwrap();
    give_to_nobody(&home);
    home
}

/// A running `tmda ofmipd -f -L` on a loopback port, stopped by PID when dropped.
pub struct Ofmipd {
    pub port: u16,
    pub log: PathBuf,
    pub daemon: Daemon,
}

impl Ofmipd {
    pub fn start(home: &Path, args: &[&str]) -> Ofmipd {
        let port = free_port();
        let log = home.parent().unwrap().join(format!("ofmipd-{port}.log"));
        let mut cmd = Command::new(tmda_bin());
        cmd.args(["ofmipd", "-f", "-L", "--hostname", "mx.test", "-p"])
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .env("HOME", home)
            .env("GLOBAL_TMDARC", home.join("none"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        as_nobody_if_root(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "ofmipd exited with {st}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "ofmipd did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ofmipd {
            port,
            log,
            daemon: Daemon { child, name: "ofmipd" },
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A minimal line-based SMTP client for protocol-level checks.
pub struct Raw {
    pub stream: std::net::TcpStream,
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let reader = std::io::BufReader::new(stream.try_clone().unwrap());
        Raw { stream, reader }
    }

    pub fn send(&mut self, text: &str) {
        use std::io::Write;
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    /// One whole reply (all its lines), or "" on EOF.
    pub fn reply(&mut self) -> String {
        use std::io::BufRead;
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if self.reader.read_line(&mut l).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n"));
        self.reply()
    }

    /// EHLO and AUTH PLAIN as `user`; returns the AUTH reply.
    pub fn auth_plain(&mut self, user: &str, password: &str) -> String {
        use base64::Engine as _;
        assert!(self.cmd("EHLO client.test").starts_with("250"));
        let b = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        self.cmd(&format!("AUTH PLAIN {b}"))
    }

    /// One whole transaction; returns the reply to the end of DATA.
    pub fn send_message(&mut self, from: &str, rcpt: &str, data: &str) -> String {
        assert!(self.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
        assert!(self.cmd(&format!("RCPT TO:<{rcpt}>")).starts_with("250"));
        assert!(self.cmd("DATA").starts_with("354"));
        self.cmd(&format!("{data}\r\n."))
    }

    pub fn login(&mut self) {
        assert!(self.reply().starts_with("220 "));
        assert!(self.cmd("EHLO client.test").starts_with("250"));
        let r = self.cmd("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=");
        assert!(r.starts_with("235"), "{r}");
    }
}

/// Run a program with input; return (success, stdout+stderr).
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> (bool, String) {
    use std::io::Write;
    let mut c = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = c.wait_with_output().unwrap();
    let _ = w.join();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Dovecot with IMAP, IMAPS, POP3 and POP3S on loopback ports, users from a passwd-file.
pub struct Dovecot {
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub passwd: PathBuf,
    _daemon: Daemon,
}

impl Dovecot {
    pub fn start(dir: &Path, cert: &Path, key: &Path, passwd: &str) -> Dovecot {
        let bin = require("dovecot", "dovecot-imapd and dovecot-pop3d");
        let base = dir.join("dc");
        for d in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        for d in ["mail", "home"] {
            let st = Command::new("chown")
                .args(["-R", "dovecot:dovecot"])
                .arg(base.join(d))
                .status()
                .unwrap();
            assert!(st.success());
        }
        let passwd_file = base.join("passwd");
        std::fs::write(&passwd_file, passwd).unwrap();
        let (imap, imaps, pop3, pop3s) = (free_port(), free_port(), free_port(), free_port());
        let b = base.display();
        let conf = base.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "first_valid_uid = 100\nbase_dir = {b}/run\nstate_dir = {b}/state\nlog_path = {b}/dovecot.log\nprotocols = imap pop3\n\
                 listen = 127.0.0.1\nssl = yes\nssl_cert = <{}\nssl_key = <{}\ndisable_plaintext_auth = no\n\
                 auth_mechanisms = plain login cram-md5 apop\nauth_failure_delay = 0\nmail_location = maildir:{b}/mail/%u\n\
                 default_login_user = dovenull\ndefault_internal_user = dovecot\n\
                 passdb {{\n  driver = passwd-file\n  args = {}\n}}\nuserdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={b}/home/%u\n}}\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n\
                 service pop3-login {{\n  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    address = 127.0.0.1\n    port = {pop3s}\n    ssl = yes\n  }}\n}}\n\
                 service anvil {{\n  chroot =\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}\n",
                cert.display(),
                key.display(),
                passwd_file.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon { child, name: "dovecot" };
        for p in [imap, imaps, pop3, pop3s] {
            wait_for_port(p, "dovecot");
        }
        Dovecot {
            imap,
            imaps,
            pop3,
            pop3s,
            passwd: passwd_file,
            _daemon: d,
        }
    }
}

/// OpenLDAP's slapd with ldap:// and ldaps:// on loopback, and alice and bob under
/// ou=people,dc=example,dc=com (passwords wonderland and builder).
pub struct Slapd {
    pub ldap: u16,
    pub ldaps: u16,
    _daemon: Daemon,
}

impl Slapd {
    pub fn start(dir: &Path, cert: &Path, key: &Path) -> Slapd {
        let bin = require("slapd", "slapd");
        let ldapadd = require("ldapadd", "ldap-utils");
        let base = dir.join("ldap");
        std::fs::create_dir_all(base.join("db")).unwrap();
        let (ldap, ldaps) = (free_port(), free_port());
        let b = base.display();
        std::fs::write(
            base.join("slapd.conf"),
            format!(
                "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\ninclude /etc/ldap/schema/inetorgperson.schema\n\
                 include /etc/ldap/schema/nis.schema\npidfile {b}/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
                 TLSCertificateFile {}\nTLSCertificateKeyFile {}\ndatabase mdb\nmaxsize 10485760\nsuffix \"dc=example,dc=com\"\n\
                 rootdn \"cn=admin,dc=example,dc=com\"\nrootpw secret\ndirectory {b}/db\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-f")
            .arg(base.join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{ldap}/ ldaps://127.0.0.1:{ldaps}/"))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon { child, name: "slapd" };
        wait_for_port(ldap, "slapd");
        let ldif = "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
                    dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n\
                    dn: uid=alice,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice\nsn: A\nuserPassword: wonderland\n\n\
                    dn: uid=bob,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob\nsn: B\nuserPassword: builder\n";
        let (ok, out) = run_with_input(
            Command::new(ldapadd).args([
                "-x",
                "-H",
                &format!("ldap://127.0.0.1:{ldap}"),
                "-D",
                "cn=admin,dc=example,dc=com",
                "-w",
                "secret",
            ]),
            ldif.as_bytes(),
        );
        assert!(ok, "ldapadd: {out}");
        Slapd {
            ldap,
            ldaps,
            _daemon: d,
        }
    }
}

/// `tmda checkauth` with the given source options and password; returns (exit code, output).
pub fn checkauth(args: &[&str], user: &str, password: &str, ca: &Path) -> (i32, String) {
    let mut cmd = Command::new(tmda_bin());
    cmd.arg("checkauth")
        .arg("--stdin")
        .args(args)
        .arg(user)
        .env("SSL_CERT_FILE", ca)
        .env("HOME", ca.parent().unwrap());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

// ---------------------------------------------------------------------------------
// TMDA's Python port and a recording sendmail, for the incoming side's tests

/// The venv of TMDA's Python 3 port (TMDAng 1.0.3) that scripts/deps.sh makes
/// (`TMDANG_VENV`, default /opt/tmdang).
pub fn tmdang_venv() -> PathBuf {
    PathBuf::from(std::env::var_os("TMDANG_VENV").unwrap_or_else(|| "/opt/tmdang".into()))
}

/// A program of TMDAng's venv (`tmda-filter`, `tmda-pending`, `python`); a missing one
/// fails the test with the way to install it.
pub fn tmdang(program: &str) -> PathBuf {
    let p = tmdang_venv().join("bin").join(program);
    assert!(
        p.is_file(),
        "{} is missing: TMDA's Python port (TMDAng 1.0.3) is required for this test; scripts/deps.sh installs it \
         (TMDANG_VENV overrides where)",
        p.display()
    );
    p
}

/// Write a sendmail program at `prog` that records each message and its arguments in
/// `outbox` (`NAME.msg` and `NAME.args`, named by time and process id).
pub fn recording_sendmail(prog: &Path, outbox: &Path) {
    std::fs::create_dir_all(outbox).unwrap();
    std::fs::set_permissions(outbox, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(
        prog,
        format!(
            "#!/bin/sh\nf={}/$(date +%s%N).$$\nprintf '%s\\n' \"$@\" > $f.args\ncat > $f.msg\n",
            outbox.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(prog, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// What the recording sendmail received, oldest first: (arguments, message); the outbox
/// is emptied.
pub fn take_outbox(outbox: &Path) -> Vec<(Vec<String>, Vec<u8>)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "msg"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|m| {
            let args = m.with_extension("args");
            let a = std::fs::read_to_string(&args)
                .unwrap()
                .lines()
                .map(String::from)
                .collect();
            let b = std::fs::read(&m).unwrap();
            std::fs::remove_file(&m).unwrap();
            std::fs::remove_file(&args).unwrap();
            (a, b)
        })
        .collect()
}
