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
    assert!(text.contains(&format!("listening on 127.0.0.1:{port}")), "{text}");
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
            log.contains("connection from 127.0.0.2") && log.contains("connection from 127.0.0.3"),
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
        log.contains("connection from 127.0.0.2") && log.contains("connection from 127.0.0.3"),
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
    std::fs::write(&combined, [std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()].concat()).unwrap();
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
    ] {
        let text = std::fs::read_to_string(root.join("systemd").join(name)).unwrap();
        std::fs::write(units.join(name), fill(text)).unwrap();
        names.push(units.join(name));
    }
    let analyze = require("systemd-analyze", "systemd");
    let out = Command::new(&analyze).args(["verify", "--man=no"]).args(&names).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
    let text = fill(std::fs::read_to_string(root.join("haproxy/haproxy.cfg")).unwrap())
        .replace("log /dev/log mail", "log stdout format raw local0")
        .replace("bind :587", &format!("bind 127.0.0.1:{}", free_port()))
        .replace("bind :465", &format!("bind 127.0.0.1:{}", free_port()));
    let cfg = tmp.path().join("haproxy.cfg");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(require("haproxy", "haproxy")).args(["-c", "-f"]).arg(&cfg).output().unwrap();
    assert!(out.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&out.stderr));
}
