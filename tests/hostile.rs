//! Attacks on `tmda ofmipd`, each reproduced against the real binary on loopback:
//! guessing (with an auth source down, spread over users, addresses and one-session
//! processes, with endless distinct names), slow and silent clients, overlong lines.
//! Clients on different 127.0.0.x addresses are different clients: loopback is not
//! exempt from any limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::ofmipd::{as_nobody, setup};
use crate::util::TestEnv;
use crate::util::fake_smtp::{FakeSmtp, Policy};

pub(crate) const ALICE_OK: &str = "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=";

pub(crate) fn plain(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    let raw = format!("\0{user}\0{pass}");
    format!("AUTH PLAIN {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

pub(crate) struct Daemon {
    child: Child,
    pub port: u16,
    pub log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it shows `text` (lines are written just after what they report).
    pub fn log_showing(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log_text();
            if log.contains(text) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the daemon, in kB.
    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tmda ofmipd -f -L` on 127.0.0.1 with `extra` options, logging to a file.
pub(crate) fn daemon(env: &TestEnv, extra: &[&str]) -> Daemon {
    let port = free_port();
    let log = env.path("ofmipd.log");
    let mut cmd = env.std_tmda();
    cmd.args([
        "ofmipd",
        "-f",
        "-L",
        "--hostname",
        "mx.test",
        "-p",
        &format!("127.0.0.1:{port}"),
    ])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    as_nobody(&mut cmd, env);
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "ofmipd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon { child, port, log }
}

/// A TCP connection from a chosen loopback address.
fn connect_from(from: &str, port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    s.bind(&local.into()).unwrap();
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    s.connect(&remote.into()).unwrap();
    s.into()
}

pub(crate) struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    pub fn from(addr: &str, port: u16) -> Client {
        let w = connect_from(addr, port);
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Client { w, r }
    }

    /// One reply, all its lines; "" when the connection closed.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Send bytes as they are.
    pub fn send_raw(&mut self, b: &[u8]) {
        self.w.write_all(b).unwrap();
    }

    pub fn cmd(&mut self, s: &str) -> String {
        if self.w.write_all(format!("{s}\r\n").as_bytes()).is_err() {
            return String::new();
        }
        self.reply()
    }

    /// Connected and greeted with EHLO.
    pub fn greeted(addr: &str, port: u16) -> Client {
        let mut c = Client::from(addr, port);
        assert!(c.reply().starts_with("220 "), "no greeting");
        assert!(c.cmd("EHLO t").starts_with("250"));
        c
    }

    /// The connection is closed by the server (EOF or reset) within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.w.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 4096];
        let start = Instant::now();
        loop {
            match self.r.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                    return false;
                }
                Err(_) => return true,
            }
            if start.elapsed() > within {
                return false;
            }
        }
    }
}

pub(crate) fn code(reply: &str) -> &str {
    reply.get(..3).unwrap_or("")
}

// ---- Guessing and lock-out -------------------------------------------------------

/// Point 1: with the IMAP server down, wrong passwords used to be answered 535 at once
/// and not counted, so guessing was free; now each costs the delay, counts toward the
/// address, is answered 454, and the address is soon refused altogether.
#[test]
fn an_auth_source_that_is_down_does_not_make_guessing_cheaper() {
    let dead = free_port(); // nothing listens there
    let env = setup(1);
    let authfile = env.path(".tmda/tofmipd");
    let d = daemon(
        &env,
        &[
            "-R",
            &format!("imap://127.0.0.1:{dead}"),
            "-a",
            authfile.to_str().unwrap(),
            "--auth-delay",
            "300",
            "--auth-limit-ip",
            "5",
        ],
    );
    let mut c = Client::greeted("127.0.0.4", d.port);
    let t = Instant::now();
    let first = c.cmd(&plain("alice", "guess1"));
    assert!(first.starts_with("454 4.7.0"), "{first}");
    assert!(t.elapsed() >= Duration::from_millis(280), "no delay: {:?}", t.elapsed());
    let second = c.cmd(&plain("alice", "guess2"));
    assert!(second.starts_with("454"), "{second}");
    assert!(
        t.elapsed() >= Duration::from_millis(280 * 3),
        "delay grows: {:?}",
        t.elapsed()
    );
    // The third undecided attempt ends the session like a third refusal.
    assert_eq!(code(&c.cmd(&plain("alice", "guess3"))), "421");
    let mut c = Client::greeted("127.0.0.4", d.port);
    c.cmd(&plain("bob", "guess4"));
    c.cmd(&plain("bob", "guess5"));
    // Five undecided attempts: the address is out of budget, even for the right password.
    let mut c = Client::greeted("127.0.0.4", d.port);
    let right = c.cmd(ALICE_OK);
    assert!(right.starts_with("535"), "{right}");
    let log = d.log_showing("too many recent failures");
    assert!(log.contains("too many recent failures"), "{log}");
    // Outages count against the address, not the user: alice elsewhere gets in.
    let mut c = Client::greeted("127.0.0.5", d.port);
    assert_eq!(code(&c.cmd(ALICE_OK)), "235");
}

/// Point 2: ten bad guesses for alice from one address used to lock alice out
/// everywhere. Now she gets in at the first try from an address that has not been
/// failing, and attempts refused for the address's own budget do not count against her.
#[test]
fn a_guesser_cannot_lock_a_user_out() {
    let env = setup(1);
    let d = daemon(&env, &["--auth-delay", "10", "--auth-limit-ip", "12"]);
    for round in 0..4 {
        let mut c = Client::greeted("127.0.0.1", d.port);
        for i in 0..3 {
            let r = c.cmd(&plain("alice", &format!("wrong{round}{i}")));
            assert!(r.starts_with("535") || r.starts_with("421"), "{r}");
        }
    }
    // Twelve failures: the attacker's address is over its budget now, and refused...
    let mut c = Client::greeted("127.0.0.1", d.port);
    assert_eq!(code(&c.cmd(ALICE_OK)), "535");
    // ...and further refusals there cost alice nothing.
    for _ in 0..20 {
        let mut c = Client::greeted("127.0.0.1", d.port);
        c.cmd(&plain("alice", "more"));
    }
    // Alice's budget still applies to an address that has been failing: one miss
    // from 127.0.0.3, and alice's right password is refused there without asking.
    let mut c = Client::greeted("127.0.0.3", d.port);
    assert_eq!(code(&c.cmd(&plain("bob", "x"))), "535");
    assert_eq!(code(&c.cmd(ALICE_OK)), "535");
    // From an address that has not been failing she gets in at the first try.
    let mut c = Client::greeted("127.0.0.2", d.port);
    let r = c.cmd(ALICE_OK);
    assert_eq!(code(&r), "235", "alice locked out: {r}");
}

/// One `ofmipd -1` session with stdin/stdout pipes, as tcpserver would start it.
fn one_session(env: &TestEnv, extra: &[&str], vars: &[(&str, &str)], lines: &[String]) -> String {
    let mut cmd = env.std_tmda();
    cmd.args(["ofmipd", "-1", "--hostname", "mx.test", "--auth-delay", "0"])
        .args(extra)
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    as_nobody(&mut cmd, env);
    let mut child = cmd.spawn().unwrap();
    let mut input = String::new();
    for l in lines {
        input.push_str(l);
        input.push_str("\r\n");
    }
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Point 3: under tcpserver/xinetd/systemd Accept=yes every process started afresh, so
/// 15 guesses over 5 processes were free. Now they share a locked budget file.
#[test]
fn one_session_processes_share_their_budget() {
    let env = setup(1);
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let runtime = env.path("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o777)).unwrap();
    let vars = [
        ("TCPREMOTEIP", "192.0.2.9"),
        ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
    ];
    for p in 0..5 {
        let mut lines = vec!["EHLO t".to_string()];
        for i in 0..3 {
            lines.push(plain("alice", &format!("wrong{p}{i}")));
        }
        let out = one_session(&env, &["--auth-limit-user", "10"], &vars, &lines);
        assert!(out.contains("535"), "{out}");
    }
    let file = runtime.join("tmda-ofmipd-budget");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("u alice") && text.contains("i 192.0.2.9"), "{text}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let out = one_session(&env, &[], &vars, &["EHLO t".into(), ALICE_OK.into(), "QUIT".into()]);
    assert!(!out.contains("235"), "the sixth process forgot: {out}");
    // From another address, alice gets in at once.
    let vars2 = [
        ("TCPREMOTEIP", "192.0.2.10"),
        ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
    ];
    let out = one_session(&env, &[], &vars2, &["EHLO t".into(), ALICE_OK.into(), "QUIT".into()]);
    assert!(out.contains("235"), "{out}");
    // An explicit --budget-file is used as given.
    let own = env.path("budget-own");
    let out = one_session(
        &env,
        &["--budget-file", own.to_str().unwrap()],
        &vars,
        &["EHLO t".into(), plain("x", "y"), "QUIT".into()],
    );
    assert!(out.contains("535"), "{out}");
    assert!(std::fs::read_to_string(&own).unwrap().contains("u x "));
}

/// Point 4: every distinct name tried used to stay in memory for good. 100,000 of
/// them must leave the daemon's memory where 20,000 left it.
#[test]
fn endless_distinct_names_do_not_grow_the_daemon() {
    let env = setup(1);
    let d = daemon(
        &env,
        &[
            "--auth-delay",
            "0",
            "--auth-limit-ip",
            "100000000",
            "--auth-memory",
            "10000",
            "--max-auth-failures",
            "100000",
        ],
    );
    let port = d.port;
    // Two clients, each pipelining batches of names on its own connection.
    let run = |from: usize, to: usize| {
        let threads: Vec<_> = (0..2)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut c = Client::greeted(&format!("127.0.0.{}", 10 + t), port);
                    let mut n = from + t;
                    while n < to {
                        let mut batch = String::new();
                        let mut sent = 0;
                        while sent < 100 && n < to {
                            batch.push_str(&plain(&format!("user{n}"), "x"));
                            batch.push_str("\r\n");
                            sent += 1;
                            n += 2;
                        }
                        c.w.write_all(batch.as_bytes()).unwrap();
                        for _ in 0..sent {
                            assert_eq!(code(&c.reply()), "535");
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    };
    run(0, 20_000);
    let after_20k = d.rss_kb();
    run(20_000, 100_000);
    let after_100k = d.rss_kb();
    assert!(
        after_100k < after_20k + 3 * 1024,
        "RSS grew from {after_20k} kB to {after_100k} kB"
    );
}

// ---- Slow and silent clients -----------------------------------------------------

pub(crate) fn self_signed(env: &TestEnv) -> (String, String) {
    let (cert, key) = (env.path("cert.pem"), env.path("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=mx.test", "-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed to make a test certificate");
    assert!(st.success());
    for p in [&cert, &key] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    (cert.display().to_string(), key.display().to_string())
}

/// Point 5: with `--ssl -C 1 --timeout 2` a silent TCP socket used to hold the only
/// slot for good (no handshake deadline).
#[test]
fn a_silent_socket_cannot_hold_an_implicit_tls_slot() {
    let env = setup(1);
    let (cert, key) = self_signed(&env);
    let d = daemon(
        &env,
        &[
            "--ssl",
            "--ssl-cert",
            &cert,
            "--ssl-key",
            &key,
            "-C",
            "1",
            "--timeout",
            "2",
        ],
    );
    let mut silent = Client::from("127.0.0.2", d.port);
    let t = Instant::now();
    assert!(silent.closed_within(Duration::from_secs(5)), "still open after 5 s");
    assert!(t.elapsed() >= Duration::from_millis(1500), "closed too early");
    let log = d.log_showing("TLS handshake timed out");
    assert!(log.contains("TLS handshake timed out"), "{log}");
}

/// Point 5: a client sending one byte every 1.5 s used to hold a slot past a 2 s
/// timeout, since every byte restarted it. A command line must now be whole in time.
#[test]
fn a_byte_at_a_time_does_not_restart_the_command_deadline() {
    let env = setup(1);
    let d = daemon(&env, &["--timeout", "2"]);
    let mut c = Client::greeted("127.0.0.2", d.port);
    let t = Instant::now();
    let mut w = c.w.try_clone().unwrap();
    let dribble = std::thread::spawn(move || {
        for b in b"NOOP NOOP NOOP NOOP" {
            if w.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(700));
        }
    });
    let r = c.reply();
    assert!(r.starts_with("421"), "{r}");
    assert!(t.elapsed() < Duration::from_millis(3500), "took {:?}", t.elapsed());
    drop(dribble);
}

/// Point 5: a session that never authenticates has a total time limit, whatever it sends.
#[test]
fn an_unauthenticated_session_has_a_total_time_limit() {
    let env = setup(1);
    let d = daemon(&env, &["--unauth-timeout", "2"]);
    let mut c = Client::greeted("127.0.0.2", d.port);
    let t = Instant::now();
    let mut last = String::new();
    while t.elapsed() < Duration::from_secs(6) {
        last = c.cmd("NOOP");
        if !last.starts_with("250") {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(last.starts_with("421"), "{last}");
    assert!(t.elapsed() < Duration::from_millis(3500), "took {:?}", t.elapsed());
    // Once authenticated, the limit is gone.
    let mut c = Client::greeted("127.0.0.2", d.port);
    assert_eq!(code(&c.cmd(ALICE_OK)), "235");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(code(&c.cmd("NOOP")), "250");
}

/// Point 5: DATA at a trickle is cut off once it falls below --min-data-rate.
#[test]
fn data_at_a_trickle_is_cut_off() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let d = daemon(&env, &["--data-timeout", "1", "--min-data-rate", "100"]);
    let mut c = Client::greeted("127.0.0.2", d.port);
    assert_eq!(code(&c.cmd(ALICE_OK)), "235");
    c.cmd("MAIL FROM:<alice@first.example>");
    c.cmd("RCPT TO:<x@y.org>");
    assert_eq!(code(&c.cmd("DATA")), "354");
    let t = Instant::now();
    let mut w = c.w.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..100 {
            if w.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    assert!(c.closed_within(Duration::from_secs(6)), "still open");
    assert!(t.elapsed() < Duration::from_secs(4), "took {:?}", t.elapsed());
    assert!(up.transactions().is_empty());
}

/// Point 5: 50 silent sockets and 50 one-byte-a-second sockets from 127.0.0.2 while a
/// client on 127.0.0.1 still logs in and sends within a second.
#[test]
fn many_idle_sockets_from_one_address_do_not_shut_others_out() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let d = daemon(&env, &[]);
    let mut hogs = vec![];
    for _ in 0..50 {
        hogs.push(connect_from("127.0.0.2", d.port));
    }
    let port = d.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dribblers: Vec<_> = (0..50)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = connect_from("127.0.0.2", port);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if s.write_all(b"N").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let mut c = Client::greeted("127.0.0.1", d.port);
    assert_eq!(code(&c.cmd(ALICE_OK)), "235");
    c.cmd("MAIL FROM:<alice@first.example>");
    c.cmd("RCPT TO:<x@y.org>");
    c.cmd("DATA");
    let r = c.cmd("Subject: t\r\n\r\nbody\r\n.");
    assert!(r.starts_with("250"), "{r}");
    assert!(t.elapsed() < Duration::from_secs(1), "took {:?}", t.elapsed());
    // The hogs beyond the cap were told so.
    let mut told = 0;
    for h in &mut hogs {
        h.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut buf = [0u8; 128];
        if let Ok(n) = h.read(&mut buf)
            && buf[..n].starts_with(b"421")
        {
            told += 1;
        }
    }
    assert!(told >= 40, "only {told} of 50 silent sockets were refused");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in dribblers {
        t.join().unwrap();
    }
}

/// Point 6: a 10 MB command line used to be read to its end without a reply.
#[test]
fn an_endless_command_line_is_answered_and_closed() {
    let env = setup(1);
    let d = daemon(&env, &[]);
    let mut c = Client::greeted("127.0.0.2", d.port);
    let mut w = c.w.try_clone().unwrap();
    let sent = std::thread::spawn(move || {
        let chunk = vec![b'A'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 10 << 20 {
            match w.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let r = c.reply();
    assert!(r.starts_with("500 5.5.2"), "{r:?}");
    assert!(c.closed_within(Duration::from_secs(5)));
    let sent = sent.join().unwrap();
    assert!(sent < 10 << 20, "the whole 10 MB was read");
    // A long AUTH line (RFC 4954 allows 12288 octets) is still read and answered.
    let mut c = Client::greeted("127.0.0.2", d.port);
    let long = plain("alice", &"p".repeat(3000));
    assert_eq!(code(&c.cmd(&long)), "535");
}

// ---- Input that must never leak ------------------------------------------------

/// Point 10: a broken SMTPAUTH_PASSWORD line used to come back to the client in a 451
/// (`found string 'hunter2-secret'`). The client now learns only that the configuration
/// is broken; the log says where, and never shows the value.
#[test]
fn a_config_error_never_shows_a_secret() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    for (i, broken) in [
        "SMTPAUTH_PASSWORD 'hunter2-secret'",
        "SMTPAUTH_PASSWORD = hunter2-secret",
        "SMTPAUTH_PASSWORD = 5 # hunter2-secret",
    ]
    .iter()
    .enumerate()
    {
        let env = setup(up.port);
        env.write_config(&format!("{cfg}SMTPAUTH_USERNAME = 'relayuser'\n{broken}\n"));
        let d = daemon(&env, &["-d"]);
        let mut c = Client::greeted("127.0.0.2", d.port);
        assert_eq!(code(&c.cmd(ALICE_OK)), "235");
        c.cmd("MAIL FROM:<alice@first.example>");
        c.cmd("RCPT TO:<x@y.org>");
        c.cmd("DATA");
        let r = c.cmd("Subject: t\r\n\r\nbody\r\n.");
        assert!(r.starts_with("451 4.3.5"), "case {i}: {r}");
        assert!(
            r.contains("see the server log") && !r.contains("hunter2"),
            "case {i}: {r}"
        );
        c.cmd("QUIT");
        drop(c);
        std::thread::sleep(Duration::from_millis(200));
        let log = d.log_text();
        assert!(!log.contains("hunter2"), "case {i}: {log}");
        assert!(log.contains("configuration error"), "case {i}: {log}");
    }
    assert!(up.transactions().is_empty());
}

// ---- Defaults and policy ---------------------------------------------------------

/// Point 16: with --restrict-sender a user may send only as their own addresses:
/// USERNAME@HOSTNAME and its tagged forms, OFMIPD_ALLOWED_SENDERS, the sender map.
#[test]
fn restrict_sender_refuses_other_peoples_addresses() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    env.write_config(&format!(
        "{cfg}OFMIPD_ALLOWED_SENDERS = ['@lists.example', 'Team@Corp.example']\n"
    ));
    let map = env.write(
        "sender-map",
        "# login addresses\nalice: alias@other.example\nbob bob@b.example\n",
    );
    let d = daemon(&env, &["--restrict-sender", "--sender-map", map.to_str().unwrap()]);
    let mut c = Client::greeted("127.0.0.2", d.port);
    assert_eq!(code(&c.cmd(ALICE_OK)), "235");
    let mut send = |mail_from: &str, from: &str| -> String {
        c.cmd(&format!("MAIL FROM:<{mail_from}>"));
        c.cmd("RCPT TO:<x@y.org>");
        c.cmd("DATA");
        c.cmd(&format!("From: {from}\r\nSubject: t\r\n\r\nbody\r\n."))
    };
    let mut sent = 0;
    for (mail_from, from) in [
        ("alice@first.example", "Alice <alice@first.example>"),
        ("ALICE@First.Example", "alice-dated-1263369386.df2137@first.example"),
        ("", "alias@other.example"),
        ("x@lists.example", "team@corp.example"),
    ] {
        let r = send(mail_from, from);
        assert!(r.starts_with("250"), "{mail_from} / {from}: {r}");
        sent += 1;
        assert_eq!(up.transactions().len(), sent);
    }
    for (mail_from, from) in [
        ("alice@first.example", "mallory@evil.example"),
        ("mallory@evil.example", "alice@first.example"),
        ("alice@first.example", "bob@b.example"),
        ("alice@first.example", "alice@first.example.evil"),
        ("alice@first.example", "alicex@first.example"),
    ] {
        let r = send(mail_from, from);
        assert!(r.starts_with("553 5.7.1"), "{mail_from} / {from}: {r}");
        assert_eq!(up.transactions().len(), sent, "nothing sent for {from}");
    }
    // Without the option, TMDA's behaviour: any From.
    let d = daemon(&env, &[]);
    let mut c = Client::greeted("127.0.0.2", d.port);
    assert_eq!(code(&c.cmd(ALICE_OK)), "235");
    c.cmd("MAIL FROM:<mallory@evil.example>");
    c.cmd("RCPT TO:<x@y.org>");
    c.cmd("DATA");
    assert_eq!(code(&c.cmd("From: mallory@evil.example\r\n\r\nbody\r\n.")), "250");
    // A broken map stops the daemon at start-up, naming the line.
    let bad = env.write("bad-map", "alice\n");
    let mut cmd = env.std_tmda();
    cmd.args(["ofmipd", "-f", "-p", "127.0.0.1:1", "--restrict-sender", "--sender-map"])
        .arg(&bad);
    as_nobody(&mut cmd, &env);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"), "{out:?}");
}
