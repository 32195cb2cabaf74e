//! What a switching TMDA user and a newcomer meet, with real peers: Python's smtplib
//! speaking the old tmda-ofmipd dialogue and swaks, a real Postfix refusing one recipient of three
//! (250 and a delivery status notification that Postfix carries to the sender), and a
//! detached daemon logging to syslog through a datagram socket the test listens on.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::*;

fn swaks(port: u16, extra: &[&str]) -> (bool, String) {
    let out = Command::new(require("swaks", "swaks"))
        .args(["--server", &format!("127.0.0.1:{port}"), "-f", "alice@example.org"])
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

/// The dialogue of TMDA's test suite and of scripts written against tmda-ofmipd, from
/// Python's smtplib: AUTH right after the greeting, MAIL before AUTH answered 530
/// whatever its arguments, STARTTLS without TLS configured 502, `MAIL FROM:` alone 501.
/// swaks sees no STARTTLS offered, and with `--tls-optional` goes on in the clear.
#[test]
fn old_clients_dialogue_from_python_smtplib_and_swaks() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    let o = Ofmipd::start(&home, &[]);
    let script = format!(
        r#"import smtplib, base64
s = smtplib.SMTP()
s.connect('127.0.0.1', {port})
print(s.docmd('MAIL', 'TO: x@y'))
print(s.docmd('STARTTLS'))
print(s.docmd('AUTH', 'PLAIN ' + base64.b64encode(b'\0alice\0wonderland').decode()))
print(s.docmd('MAIL', 'FROM:<alice@example.org>'))
s.helo('old.client')
print(s.docmd('MAIL', 'FROM:'))
print(s.docmd('MAIL', 'FROM:<alice@example.org>'))
print(s.docmd('RCPT', 'TO:<old@x.org>'))
print(s.data(b'Subject: old client\r\n\r\nhello\r\n'))
s.quit()
"#,
        port = o.port
    );
    let out = Command::new(require("python3", "python3"))
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let replies: Vec<&str> = text.lines().collect();
    let want = [
        "(530, b'5.7.0 Authentication required')",
        "(502, b'5.5.1 Error: STARTTLS not available (no TLS configured)')",
        "(235, b'2.7.0 Authentication successful')",
        "(503, b'5.5.1 Error: send HELO/EHLO first')",
        "(501, b'5.5.4 Syntax: MAIL FROM:<address>')",
        "(250, b'2.1.0 Ok')",
        "(250, b'2.1.5 Ok')",
        "(250, b'2.0.0 Ok: message accepted for delivery')",
    ];
    assert_eq!(replies, want, "{text}");
    assert_eq!(sink.wait_for(1)[0].rcpt_to, "<old@x.org>");
    let (ok, out) = swaks(
        o.port,
        &["-t", "tls@x.org", "--tls", "--au", "alice", "--ap", "wonderland"],
    );
    assert!(!ok && out.contains("Host did not advertise STARTTLS"), "{out}");
    let (ok, out) = swaks(
        o.port,
        &[
            "-t",
            "clear@x.org",
            "--tls-optional",
            "--au",
            "alice",
            "--ap",
            "wonderland",
        ],
    );
    assert!(ok && out.contains("250 2.0.0 Ok"), "{out}");
    assert_eq!(sink.wait_for(2).len(), 2);
}

/// One recipient of three refused by a real Postfix: swaks is told 250 (a 451 would
/// have it send the message again to the two who got it), and the sender gets a
/// delivery status notification, from <> through the same Postfix, that names the
/// refused recipient with Postfix's reply.
#[test]
fn a_recipient_refused_by_postfix_is_reported_in_a_notification() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let (_ca, cert, key) = test_certificates(tmp.path());
    let pfx = Postfix::start_with(
        tmp.path(),
        &cert,
        &key,
        sink.port,
        "smtpd_recipient_restrictions = check_recipient_access inline:{ { bad@x.org = 550 5.1.1 no such user } }, permit_mynetworks, reject\n",
    );
    let home = ofmipd_home(tmp.path(), pfx.port, "");
    let o = Ofmipd::start(&home, &[]);
    let (ok, out) = swaks(
        o.port,
        &[
            "-t",
            "ok@x.org,bad@x.org,also@x.org",
            "--au",
            "alice",
            "--ap",
            "wonderland",
            "--h-Subject",
            "three recipients",
        ],
    );
    assert!(ok, "{out}\n{}", o.log_text());
    assert!(out.contains("<-  250 2.0.0 Ok: not every recipient"), "{out}");
    let got = sink.wait_for(3);
    let dsn = got
        .iter()
        .find(|s| s.mail_from == "<>")
        .unwrap_or_else(|| panic!("no notification: {got:?}"));
    assert_eq!(dsn.rcpt_to, "<alice@example.org>");
    for want in [
        "From: Mail Delivery System <MAILER-DAEMON@mx.test>",
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Final-Recipient: rfc822; bad@x.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <bad@x.org>: Recipient address rejected: no such user",
        "Subject: three recipients",
    ] {
        assert!(dsn.message.contains(want), "{want:?} missing:\n{}", dsn.message);
    }
    let mut delivered: Vec<&str> = got
        .iter()
        .filter(|s| s.mail_from != "<>")
        .map(|s| s.rcpt_to.as_str())
        .collect();
    delivered.sort();
    assert_eq!(delivered, ["<also@x.org>", "<ok@x.org>"]);
    let log = o.log_text();
    assert!(
        log.contains("outcome=partly-delivered") && log.contains("to=<bad@x.org> outcome=failed status=5.1.1"),
        "{log}"
    );
}

/// A detached daemon (descriptors 0-2 on /dev/null) logs to syslog with facility mail:
/// here a datagram socket the test listens on, named by $TMDA_SYSLOG_SOCKET. The lines
/// carry what fail2ban needs (client address, login, outcome), and --pid-file says
/// which process to stop.
#[test]
fn a_detached_daemon_logs_to_syslog_for_fail2ban() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket_path = run.join("log");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    // Read as syslogd does, all the time (a full queue drops records).
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink_records = received.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = socket.recv(&mut buf) {
            sink_records
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    let pid_file = run.join("ofmipd.pid");
    let port = free_port();
    let mut cmd = Command::new(tmda_bin());
    cmd.args(["ofmipd", "-L", "--hostname", "mx.test", "-p"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--pid-file")
        .arg(&pid_file)
        .env("HOME", &home)
        .env("GLOBAL_TMDARC", home.join("none"))
        .env("TMDA_SYSLOG_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_nobody_if_root(&mut cmd);
    assert!(cmd.status().unwrap().success(), "the starting process returns");
    // The port is bound before the daemon detaches and writes its pid.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        if let Some(p) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break p;
        }
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_for_port(port, "detached ofmipd");
    // Stopped by its pid whatever happens below.
    struct Stop(i32);
    impl Drop for Stop {
        fn drop(&mut self) {
            // SAFETY: a plain signal to the daemon this test started.
            unsafe { libc_kill(self.0, 15) };
        }
    }
    let _stop = Stop(pid);
    let (ok, _) = swaks(port, &["-t", "x@x.org", "--au", "alice", "--ap", "guess"]);
    assert!(!ok);
    let (ok, out) = swaks(port, &["-t", "y@x.org", "--au", "alice", "--ap", "wonderland"]);
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let wanted = [
        "<22>".to_string(),
        format!(" tmda-ofmipd[{pid}]: event=start pid={pid} "),
        "tmda-ofmipd[".to_string()
            + &pid.to_string()
            + "]: client=127.0.0.1 login=alice auth=denied source=\"authfile ",
        "client=127.0.0.1 login=alice auth=accepted".to_string(),
        "from=<alice@example.org> to=<y@x.org> outcome=delivered".to_string(),
    ];
    let records = loop {
        let records = received.lock().unwrap().clone();
        if wanted.iter().all(|w| records.iter().any(|r| r.contains(w.as_str()))) {
            break records;
        }
        assert!(Instant::now() < deadline, "missing records:\n{}", records.join("\n"));
        std::thread::sleep(Duration::from_millis(50));
    };
    // One event a line, every line the facility mail (2 * 8 + severity).
    for r in &records {
        assert!(r.starts_with("<22>") || r.starts_with("<19>"), "{r}");
        assert!(
            !r.contains('\n') && !r.contains("wonderland") && !r.contains("guess"),
            "{r}"
        );
    }
    // A fail2ban-style failregex finds the client's address in the failure.
    // (swaks tries each mechanism it is offered: one line per attempt.)
    let failures: Vec<&String> = records.iter().filter(|r| r.contains(" auth=denied ")).collect();
    assert_eq!(failures.len(), 3, "{records:?}");
    for f in failures {
        let host = f.split("client=").nth(1).and_then(|r| r.split(' ').next());
        assert_eq!(host, Some("127.0.0.1"), "{f}");
    }
    assert_eq!(sink.wait_for(1)[0].rcpt_to, "<y@x.org>");
}
