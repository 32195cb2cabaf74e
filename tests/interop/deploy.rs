//! Deployment as sites run it: systemd socket activation (`systemd-socket-activate`,
//! both Accept modes) with readiness through a NOTIFY_SOCKET the test listens on, and
//! the PROXY protocol from real senders (haproxy's send-proxy and send-proxy-v2, with
//! TLS at ofmipd and at haproxy; stunnel's protocol = proxy), telling clients on
//! 127.0.0.2 and 127.0.0.3 apart.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::*;

fn swaks_from(source: &str, port: u16, extra: &[&str], rcpt: &str) -> (bool, String) {
    let bin = require("swaks", "swaks");
    let out = Command::new(bin)
        .args(["--server", &format!("127.0.0.1:{port}"), "--local-interface", source])
        .args([
            "--au",
            "alice",
            "--ap",
            "wonderland",
            "-f",
            "alice@example.org",
            "-t",
            rcpt,
        ])
        .args(["--h-Subject", "deploy test", "--body", "hello"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The relayed copy for `rcpt` names `client` in its Received field.
fn received_names(sink: &SmtpSink, rcpt: &str, client: &str) {
    let got = sink.messages();
    let m = got
        .iter()
        .find(|s| s.rcpt_to == format!("<{rcpt}>"))
        .unwrap_or_else(|| panic!("no message for {rcpt}: {got:?}"));
    let received = header(&m.message, "Received").unwrap();
    assert!(received.contains(&format!("[{client}]")), "{rcpt}: {received}");
}

// ---- systemd ---------------------------------------------------------------------

/// A datagram socket standing in for systemd's notification socket.
struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn new(dir: &Path) -> NotifySocket {
        let path = dir.join("notify");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        NotifySocket { socket, path }
    }

    /// The next message containing `what`, skipping others (WATCHDOG=1, say).
    fn expect(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            let n = self
                .socket
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == what) {
                return msg;
            }
        }
        panic!("no {what}");
    }
}

fn socket_activate(args: &[&str], home: &Path, tmda_args: &[&str], log: &Path) -> Daemon {
    let bin = require("systemd-socket-activate", "systemd");
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .arg(tmda_bin())
        .args(tmda_args)
        .env("HOME", home)
        .env("GLOBAL_TMDARC", home.join("none"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    as_nobody_if_root(&mut cmd);
    Daemon {
        child: cmd.spawn().unwrap(),
        name: "systemd-socket-activate",
    }
}

#[test]
fn socket_activation_accept_no_with_readiness_reload_watchdog_and_stop() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    let (_, cert, key) = test_certificates(tmp.path());
    let notify = NotifySocket::new(tmp.path());
    let port = free_port();
    let log = tmp.path().join("activated.log");
    let d = socket_activate(
        &[
            "-l",
            &format!("127.0.0.1:{port}"),
            "--fdname=submission",
            "-E",
            &format!("NOTIFY_SOCKET={}", notify.path.display()),
            "-E",
            "WATCHDOG_USEC=400000",
        ],
        &home,
        &[
            "ofmipd",
            "-f",
            "-L",
            "--hostname",
            "mx.test",
            "--tls=optional",
            "--ssl-cert",
            cert.to_str().unwrap(),
            "--ssl-key",
            key.to_str().unwrap(),
        ],
        &log,
    );
    wait_for_port(port, "systemd-socket-activate");
    // The first connection starts ofmipd on the passed socket; it then says READY=1.
    let mut c = Raw::connect(port);
    c.login();
    let ready = notify.expect("READY=1");
    assert!(ready.contains(&format!("MAINPID={}", d.child.id())), "{ready}");
    assert!(
        c.send_message("alice@example.org", "one@example.net", "Subject: a\r\n\r\nx")
            .starts_with("250")
    );
    sink.wait_for(1);
    notify.expect("WATCHDOG=1");
    // SIGHUP: RELOADING=1 (with the monotonic time), then READY=1 again.
    unsafe { libc_kill(d.child.id() as i32, 1) };
    let reloading = notify.expect("RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    notify.expect("READY=1");
    // The listening socket was systemd's: -p was not needed, and the log says where.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("event=listen address=127.0.0.1:{port}")),
        "{text}"
    );
    // SIGTERM: STOPPING=1.
    unsafe { libc_kill(d.child.id() as i32, 15) };
    notify.expect("STOPPING=1");
}

#[test]
fn socket_activation_accept_yes_serves_one_session_per_connection() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    let notify = NotifySocket::new(tmp.path());
    for (mode, extra) in [("fd 3", None), ("inetd", Some("--inetd"))] {
        let port = free_port();
        let log = tmp.path().join(format!("accept-{port}.log"));
        let mut args = vec![
            "-l".to_string(),
            format!("127.0.0.1:{port}"),
            "--accept".into(),
            "-E".into(),
            format!("NOTIFY_SOCKET={}", notify.path.display()),
            "-E".into(),
            "TCPREMOTEIP=127.0.0.1".into(),
        ];
        args.extend(extra.map(String::from));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let _d = socket_activate(
            &refs,
            &home,
            &[
                "ofmipd",
                "-1",
                "--hostname",
                "mx.test",
                "--budget-file",
                &tmp.path().join("budget").display().to_string(),
            ],
            &log,
        );
        wait_for_port(port, "systemd-socket-activate");
        for i in 0..2 {
            let mut c = Raw::connect(port);
            c.login();
            let rcpt = format!("{}-{i}@example.net", mode.replace(' ', ""));
            let r = c.send_message("alice@example.org", &rcpt, "Subject: a\r\n\r\nx");
            assert!(
                r.starts_with("250"),
                "{mode}: {r}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            assert!(c.cmd("QUIT").starts_with("221"));
        }
    }
    sink.wait_for(4);
}

// ---- PROXY protocol --------------------------------------------------------------

fn haproxy(dir: &Path, frontend: &str, backend_port: u16, server_opts: &str) -> (u16, Daemon) {
    let bin = require("haproxy", "haproxy");
    let port = free_port();
    let conf = dir.join(format!("haproxy-{port}.cfg"));
    std::fs::write(
        &conf,
        format!(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend smtp\n  bind 127.0.0.1:{port} {frontend}\n  default_backend ofmipd\n\
             backend ofmipd\n  server s1 127.0.0.1:{backend_port} {server_opts}\n"
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .args(["-db", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "haproxy");
    (port, Daemon { child, name: "haproxy" })
}

#[test]
fn haproxy_send_proxy_v1_and_v2_with_tls_at_ofmipd_and_at_haproxy() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    let (_, cert, key) = test_certificates(tmp.path());
    let combined = tmp.path().join("combined.pem");
    std::fs::write(
        &combined,
        [std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()].concat(),
    )
    .unwrap();
    let plain = Ofmipd::start(&home, &["--proxy-protocol", "127.0.0.1"]);
    let tls = Ofmipd::start(
        &home,
        &[
            "--proxy-protocol",
            "127.0.0.1",
            "--ssl",
            "--ssl-cert",
            cert.to_str().unwrap(),
            "--ssl-key",
            key.to_str().unwrap(),
        ],
    );
    let cases = [
        ("v1", "", plain.port, "send-proxy", vec![]),
        ("v2", "", plain.port, "send-proxy-v2", vec![]),
        ("tls-at-ofmipd", "", tls.port, "send-proxy-v2", vec!["--tls-on-connect"]),
        (
            "tls-at-haproxy",
            "ssl crt COMBINED",
            plain.port,
            "send-proxy",
            vec!["--tls-on-connect"],
        ),
    ];
    let mut n = 0;
    for (name, frontend, backend, opts, extra) in cases {
        let frontend = frontend.replace("COMBINED", combined.to_str().unwrap());
        let (port, _h) = haproxy(tmp.path(), &frontend, backend, opts);
        for source in ["127.0.0.2", "127.0.0.3"] {
            let rcpt = format!("{name}-{}@example.net", source.replace('.', "-"));
            let (ok, out) = swaks_from(source, port, &extra, &rcpt);
            assert!(
                ok,
                "{name} from {source}: {out}\n{}\n{}",
                plain.log_text(),
                tls.log_text()
            );
            n += 1;
            sink.wait_for(n);
            received_names(&sink, &rcpt, source);
        }
    }
    for o in [&plain, &tls] {
        let log = o.log_text();
        assert!(
            log.contains("client=127.0.0.2 event=connect") && log.contains("client=127.0.0.3 event=connect"),
            "{log}"
        );
    }
    // haproxy's own address never reaches a Received field.
    for m in sink.messages() {
        assert!(
            !header(&m.message, "Received").unwrap().contains("[127.0.0.1]"),
            "{}",
            m.message
        );
    }
}

#[test]
fn stunnel_protocol_proxy_with_tls_at_stunnel() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    let (_, cert, key) = test_certificates(tmp.path());
    let o = Ofmipd::start(&home, &["--proxy-protocol", "127.0.0.1"]);
    let bin = require("stunnel4", "stunnel4");
    let port = free_port();
    let conf = tmp.path().join("stunnel-proxy.conf");
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\ndebug = 3\n[svc]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{}\nprotocol = proxy\ncert = {}\nkey = {}\n",
            o.port,
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let _s = Daemon {
        child: Command::new(bin)
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        name: "stunnel",
    };
    wait_for_port(port, "stunnel");
    for (i, source) in ["127.0.0.2", "127.0.0.3"].iter().enumerate() {
        let rcpt = format!("stunnel-{i}@example.net");
        let (ok, out) = swaks_from(source, port, &["--tls-on-connect"], &rcpt);
        assert!(ok, "{out}\n{}", o.log_text());
        sink.wait_for(i + 1);
        received_names(&sink, &rcpt, source);
    }
    let log = o.log_text();
    assert!(
        log.contains("client=127.0.0.2 event=connect") && log.contains("client=127.0.0.3 event=connect"),
        "{log}"
    );
    // Without the PROXY protocol the same stunnel would make every client 127.0.0.1:
    // a direct connection from 127.0.0.1 without a header is refused.
    let mut c = Raw::connect(o.port);
    c.send("EHLO x\r\n");
    assert_eq!(c.reply(), "", "closed without a greeting");
}

/// The unit files and the haproxy example in contrib/ are valid for the real programs
/// (with this build's path and test certificates put in).
#[test]
fn contrib_units_and_haproxy_example_are_valid() {
    let tmp = shared_tempdir();
    let (_, cert, key) = test_certificates(tmp.path());
    let combined = tmp.path().join("combined.pem");
    std::fs::write(
        &combined,
        [std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()].concat(),
    )
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib");
    let fill = |text: String| {
        text.replace("/usr/local/bin/tmda", tmda_bin().to_str().unwrap())
            .replace("/etc/ssl/tmda/fullchain.pem", cert.to_str().unwrap())
            .replace("/etc/ssl/tmda/privkey.pem", key.to_str().unwrap())
            .replace("/etc/ssl/tmda/combined.pem", combined.to_str().unwrap())
    };
    let units = tmp.path().join("units");
    std::fs::create_dir_all(units.join("user")).unwrap();
    let mut names = vec![];
    for name in [
        "tmda-ofmipd.socket",
        "tmda-ofmipd.service",
        "tmda-ofmipd-once.socket",
        "tmda-ofmipd-once@.service",
        "user/tmda-ofmipd.service",
        "user/tmda-pending-digest.service",
        "user/tmda-pending-digest.timer",
    ] {
        let text = std::fs::read_to_string(root.join("systemd").join(name)).unwrap();
        std::fs::write(units.join(name), fill(text)).unwrap();
        names.push(units.join(name));
    }
    let analyze = require("systemd-analyze", "systemd");
    let out = Command::new(&analyze)
        .args(["verify", "--man=no"])
        .args(&names)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    let text = fill(std::fs::read_to_string(root.join("haproxy/haproxy.cfg")).unwrap())
        .replace("log /dev/log mail", "log stdout format raw local0")
        .replace("bind :587", &format!("bind 127.0.0.1:{}", free_port()))
        .replace("bind :465", &format!("bind 127.0.0.1:{}", free_port()));
    let cfg = tmp.path().join("haproxy.cfg");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(require("haproxy", "haproxy"))
        .args(["-c", "-f"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "haproxy -c: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- Many instances ----------------------------------------------------------------

/// One submission client from its own loopback address, through haproxy.
struct Submitter {
    source: String,
    port: u16,
    conn: Option<(std::net::TcpStream, std::io::BufReader<std::net::TcpStream>)>,
}

/// One whole reply, all its lines; `None` when the connection failed.
fn read_reply(r: &mut std::io::BufReader<std::net::TcpStream>) -> Option<String> {
    use std::io::BufRead;
    let mut all = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        all.push_str(&l);
        if l.as_bytes().get(3) != Some(&b'-') {
            return Some(all);
        }
    }
}

/// How one attempt to send a message ended.
enum Attempt {
    Accepted,
    /// Cut off or deferred before the end of DATA was sent: surely not delivered.
    Retry,
    /// Cut off after the end of DATA was sent and before its reply: maybe delivered.
    Unsure,
}

impl Submitter {
    fn connect(&mut self) -> std::io::Result<()> {
        use socket2::{Domain, Socket, Type};
        use std::io::Write;
        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        let local: std::net::SocketAddr = format!("{}:0", self.source).parse().unwrap();
        s.bind(&local.into())?;
        let remote: std::net::SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        s.connect(&remote.into())?;
        let w: std::net::TcpStream = s.into();
        w.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut r = std::io::BufReader::new(w.try_clone()?);
        let mut w2 = w.try_clone()?;
        let mut expect = |want: &str| match read_reply(&mut r) {
            Some(reply) if reply.starts_with(want) => Ok(()),
            other => Err(std::io::Error::other(format!("{other:?}"))),
        };
        expect("220")?;
        w2.write_all(b"EHLO client.test\r\n")?;
        expect("250")?;
        w2.write_all(b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n")?;
        expect("235")?;
        self.conn = Some((w, r));
        Ok(())
    }

    fn send(&mut self, rcpt: &str) -> Attempt {
        use std::io::Write;
        if self.conn.is_none() && self.connect().is_err() {
            self.conn = None;
            std::thread::sleep(Duration::from_millis(50));
            return Attempt::Retry;
        }
        let (w, r) = self.conn.as_mut().unwrap();
        let mut reply = || read_reply(r);
        let mut step = |line: String, want: &str| -> bool {
            w.write_all(line.as_bytes()).is_ok() && reply().is_some_and(|r| r.starts_with(want))
        };
        let before_dot = step("MAIL FROM:<alice@example.org>\r\n".into(), "250")
            && step(format!("RCPT TO:<{rcpt}>\r\n"), "250")
            && step("DATA\r\n".into(), "354");
        if !before_dot {
            self.conn = None;
            return Attempt::Retry;
        }
        let body = format!("Subject: {rcpt}\r\nMessage-ID: <{rcpt}>\r\n\r\nhello\r\n.\r\n");
        if w.write_all(body.as_bytes()).is_err() {
            self.conn = None;
            return Attempt::Unsure;
        }
        match reply() {
            Some(r) if r.starts_with("250") => Attempt::Accepted,
            Some(r) if r.starts_with('4') => {
                self.conn = None;
                Attempt::Retry
            }
            Some(r) => panic!("{rcpt}: refused for good: {r}"),
            None => {
                self.conn = None;
                Attempt::Unsure
            }
        }
    }
}

/// Three instances behind haproxy (contrib/haproxy's configuration), relaying to a real
/// Postfix smtpd: 3,000 messages from 30 clients, one instance killed half-way.
#[test]
fn three_instances_behind_haproxy_lose_nothing_when_one_is_killed() {
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let (_, cert, key) = test_certificates(tmp.path());
    let postfix = Postfix::start(tmp.path(), &cert, &key, sink.port);
    let home = ofmipd_home(tmp.path(), postfix.port, "");
    let mut instances: Vec<Option<Ofmipd>> = (0..3)
        .map(|_| Some(Ofmipd::start(&home, &["--proxy-protocol", "127.0.0.1", "-C", "50"])))
        .collect();
    let ports: Vec<u16> = instances.iter().map(|o| o.as_ref().unwrap().port).collect();
    // contrib/haproxy/haproxy.cfg with this test's ports.
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/haproxy/haproxy.cfg")).unwrap();
    let front = free_port();
    let mut text = example
        .replace("log /dev/log mail", "log stdout format raw local0")
        .replace("bind :587", &format!("bind 127.0.0.1:{front}"))
        .replace(
            "bind :465 ssl crt /etc/ssl/tmda/combined.pem",
            &format!("bind 127.0.0.1:{}", free_port()),
        )
        .replace("    log global\n    option tcplog\n", "");
    for (i, p) in ports.iter().enumerate() {
        text = text.replace(&format!("127.0.0.1:1058{}", 7 + i), &format!("127.0.0.1:{p}"));
    }
    // Check quickly, so the dead instance is taken out within a second or so.
    text = text.replace(
        "check check-send-proxy",
        "check check-send-proxy inter 300 fall 2 rise 1",
    );
    let cfg = tmp.path().join("haproxy-many.cfg");
    std::fs::write(&cfg, &text).unwrap();
    let _h = Daemon {
        child: Command::new(require("haproxy", "haproxy"))
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        name: "haproxy",
    };
    wait_for_port(front, "haproxy");

    const CLIENTS: usize = 30;
    const EACH: usize = 100;
    let accepted = Arc::new(AtomicUsize::new(0));
    let unsure: Arc<Mutex<HashSet<String>>> = Default::default();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (accepted, unsure) = (accepted.clone(), unsure.clone());
            std::thread::spawn(move || {
                let mut s = Submitter {
                    source: format!("127.0.1.{}", c + 1),
                    port: front,
                    conn: None,
                };
                for m in 0..EACH {
                    let rcpt = format!("c{c}m{m}@example.net");
                    let mut tries = 0;
                    loop {
                        tries += 1;
                        assert!(tries < 200, "{rcpt}: no instance would take it");
                        match s.send(&rcpt) {
                            Attempt::Accepted => break,
                            Attempt::Retry => {}
                            Attempt::Unsure => {
                                unsure.lock().unwrap().insert(rcpt.clone());
                            }
                        }
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Kill the second instance half-way, without warning.
    let deadline = Instant::now() + Duration::from_secs(120);
    while accepted.load(Ordering::Relaxed) < CLIENTS * EACH / 2 {
        assert!(Instant::now() < deadline, "too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = instances[1].take().unwrap();
    let at_kill = accepted.load(Ordering::Relaxed);
    drop(killed); // SIGKILL, then reaped
    let delivered = |o: &Ofmipd| o.log_text().matches(" outcome=delivered").count();
    let killed_log = std::fs::read_to_string(tmp.path().join(format!("ofmipd-{}.log", ports[1]))).unwrap();
    assert!(
        killed_log.matches(" outcome=delivered").count() > 0,
        "haproxy never used the second instance"
    );
    for w in workers {
        w.join().unwrap();
    }
    let total = CLIENTS * EACH;
    assert_eq!(accepted.load(Ordering::Relaxed), total);
    // Every message arrives, once (a message whose reply was cut off may arrive twice:
    // the client could not know, as with any MTA).
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut counts: HashMap<String, usize>;
    loop {
        counts = HashMap::new();
        for m in sink.messages() {
            *counts
                .entry(m.rcpt_to.trim_matches(['<', '>']).to_string())
                .or_default() += 1;
        }
        if counts.len() >= total || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let unsure = unsure.lock().unwrap();
    for c in 0..CLIENTS {
        for m in 0..EACH {
            let rcpt = format!("c{c}m{m}@example.net");
            let n = counts.get(&rcpt).copied().unwrap_or(0);
            assert!(n >= 1, "{rcpt} was accepted but never arrived");
            assert!(n == 1 || unsure.contains(&rcpt), "{rcpt} arrived {n} times");
        }
    }
    // Tagged, as ofmipd tags: a sample is checked with the key.
    for m in sink.messages().iter().step_by(total / 20) {
        assert_tag_verifies(m.mail_from.trim_matches(['<', '>']), None, &home);
    }
    // The survivors carried the load after the kill.
    let survivors: usize = instances.iter().flatten().map(delivered).sum();
    assert!(
        survivors >= total - at_kill,
        "survivors delivered {survivors}, {} were sent after the kill",
        total - at_kill
    );
    eprintln!(
        "{} messages, {} answered by the killed instance, {} cut off after their end of DATA",
        total,
        killed_log.matches(" outcome=delivered").count(),
        unsure.len()
    );
    drop(postfix);
}
