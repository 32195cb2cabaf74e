//! `tmda ofmipd` through the real binary against the in-process fake upstream:
//! connection reuse, configuration changes, one-session mode, signals, detaching, and
//! the relay client's behaviour (refusals, deferrals, pipelining, dot-stuffing, AUTH,
//! session limits, dead pooled connections, HELO-only relays, 8BITMIME, SMTPUTF8),
//! each message sent twice where it matters: once tagged on a worker thread (cold
//! caches), once on the session's own task.
//! (When the tests run as root, ofmipd runs as nobody, so it stays in personal mode.)

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::fake_smtp::{FakeSmtp, Policy};
use crate::util::{KEY, TestEnv};

pub(crate) fn as_nobody(cmd: &mut Command, env: &TestEnv) {
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::process::CommandExt;
        let a = tmda::account::Account::lookup("nobody").unwrap();
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", a.uid, a.gid))
            .arg(env.home())
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o755)).unwrap();
        cmd.uid(a.uid).gid(a.gid);
    }
}

pub(crate) fn setup(upstream: u16) -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&format!(
        "USERNAME = 'alice'\nHOSTNAME = 'first.example'\nMAIL_TRANSPORT = 'smtp'\nSMTPHOST = '127.0.0.1:{upstream}'\n"
    ));
    env.write_key(KEY, 0o600);
    let f = env.write(".tmda/tofmipd", "alice:wonderland\n");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    env
}

struct Running {
    child: Child,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &TestEnv, extra: &[&str]) -> Running {
    start_logging(env, extra, None)
}

/// [`start`], with ofmipd's standard error (its log) in `log`.
fn start_logging(env: &TestEnv, extra: &[&str], log: Option<&std::path::Path>) -> Running {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut std_cmd = env.std_tmda();
    std_cmd
        .args([
            "ofmipd",
            "-f",
            "--hostname",
            "mx.test",
            "-p",
            &format!("127.0.0.1:{port}"),
        ])
        .args(extra);
    std_cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(match log {
        Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
        None => Stdio::null(),
    });
    as_nobody(&mut std_cmd, env);
    let child = std_cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "ofmipd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Running { child, port }
}

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let w = TcpStream::connect(("127.0.0.1", port)).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Client { w, r }
    }
    fn reply(&mut self) -> String {
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
    fn cmd(&mut self, s: &str) -> String {
        self.w.write_all(format!("{s}\r\n").as_bytes()).unwrap();
        self.reply()
    }
    fn send_one(&mut self, rcpt: &str) -> String {
        self.cmd("MAIL FROM:<alice@first.example>");
        self.cmd(&format!("RCPT TO:<{rcpt}>"));
        self.cmd("DATA");
        self.cmd("Subject: t\r\n\r\nbody\r\n.")
    }
}

fn session(port: u16) -> Client {
    let mut c = Client::connect(port);
    assert!(c.reply().starts_with("220 mx.test"));
    c.cmd("EHLO t");
    assert!(c.cmd("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=").starts_with("235"));
    c
}

/// Replace a config file so a running ofmipd sees it at its next message: a clearly
/// different modification time, and a wait past the once-a-second recheck.
fn rewrite_config(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
}

#[test]
fn upstream_connection_is_reused_and_config_changes_are_seen() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let o = start(&env, &[]);
    let mut c = session(o.port);
    for i in 0..3 {
        assert!(c.send_one(&format!("r{i}@x.org")).starts_with("250 2.0.0"));
    }
    let t = up.transactions();
    assert_eq!(t.len(), 3);
    assert!(
        t.iter().all(|x| x.connection == 0),
        "one upstream connection for all messages: {:?}",
        t.iter().map(|x| x.connection).collect::<Vec<_>>()
    );
    assert!(t[0].mail_from.ends_with("@first.example>"));
    // The cached configuration notices the edit (a different mtime), within a second.
    let cfg = env.path(".tmda/config");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("first.example", "second.example");
    rewrite_config(&cfg, &text);
    assert!(c.send_one("r3@x.org").starts_with("250 2.0.0"));
    let t = up.transactions();
    assert!(t[3].mail_from.ends_with("@second.example>"), "{}", t[3].mail_from);
}

/// `tmda ofmipd -1 --hostname mx.test ARGS` as a tcpserver child for client 192.0.2.7
/// (plus `vars`), fed `input` on standard input until it exits.
pub(crate) fn run_one_session(
    env: &TestEnv,
    args: &[&str],
    vars: &[(&str, &str)],
    input: &[u8],
) -> std::process::Output {
    let mut cmd = env.std_tmda();
    cmd.args(["ofmipd", "-1", "--hostname", "mx.test"])
        .args(args)
        .env("TCPREMOTEIP", "192.0.2.7")
        .envs(vars.iter().copied());
    as_nobody(&mut cmd, env);
    // The session may end first (QUIT, too many errors): a broken pipe is fine.
    crate::util::output_with_input(&mut cmd, input)
}

/// One message from alice through a one-session ofmipd.
const ONE_MESSAGE: &[u8] =
    b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\nMAIL FROM:<a@b>\r\nRCPT TO:<stdio@x.org>\r\nDATA\r\nSubject: s\r\n\r\nb\r\n.\r\nQUIT\r\n";

#[test]
fn one_session_on_stdin_and_stdout() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let out = run_one_session(&env, &[], &[("TCPREMOTEHOST", "client.example")], ONE_MESSAGE);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("220 mx.test ESMTP tmda-ofmipd\r\n"), "{text}");
    assert!(
        text.contains("235 2.7.0")
            && text.contains("250 2.0.0 Ok: message accepted")
            && text.ends_with("221 2.0.0 Bye\r\n"),
        "{text}"
    );
    let t = up.transactions();
    let data = String::from_utf8_lossy(&t[0].data).replace("\r\n ", " ");
    assert!(
        data.starts_with("Received: from c (client.example [192.0.2.7]) by mx.test (tmda-ofmipd) with ESMTPA;"),
        "{data}"
    );
}

#[test]
fn a_reverse_lookup_name_cannot_write_into_received() {
    // tcpserver puts the client's PTR name in $TCPREMOTEHOST: the client chooses it.
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let out = run_one_session(&env, &[], &[("TCPREMOTEHOST", "evil\r\nX-Injected: yes")], ONE_MESSAGE);
    assert!(out.status.success());
    let data = String::from_utf8_lossy(&up.transactions()[0].data).replace("\r\n ", " ");
    assert!(data.starts_with("Received: from c ([192.0.2.7]) by mx.test"), "{data}");
    assert!(!data.contains("X-Injected"), "{data}");
}

#[test]
fn debug_log_has_no_password_and_one_line_per_event() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    // A wrong password, a user name with a line break, then the right password three ways.
    let input = format!(
        "EHLO c\r\nAUTH PLAIN {}\r\nAUTH LOGIN\r\n{}\r\n{}\r\nAUTH LOGIN {}\r\n{}\r\nMAIL FROM:<a@b>\r\nRSET\r\nQUIT\r\n",
        b64("\0alice\0wrong-secret"),
        b64("alice\nforged: line"),
        b64("wonderland"),
        b64("alice"),
        b64("wonderland"),
    );
    let out = run_one_session(&env, &["-d", "-L"], &[], input.as_bytes());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("< AUTH LOGIN") && log.contains("auth"), "{log}");
    for secret in [
        "wrong-secret",
        "wonderland",
        &b64("wonderland"),
        &b64("\0alice\0wrong-secret"),
    ] {
        assert!(!log.contains(secret), "{secret:?} logged:\n{log}");
    }
    for line in log.lines() {
        assert!(line.starts_with("tmda-ofmipd["), "a line of its own: {line:?}\n{log}");
    }
}

#[test]
fn sigterm_closes_idle_sessions_with_421_and_exits_0() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let mut o = start(&env, &[]);
    let mut c = session(o.port);
    unsafe { libc::kill(o.child.id() as i32, libc::SIGTERM) };
    assert!(
        c.reply().starts_with("421 4.3.2"),
        "idle session told about the shutdown"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = o.child.try_wait().unwrap() {
            assert_eq!(st.code(), Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        TcpStream::connect(("127.0.0.1", o.port)).is_err(),
        "no longer listening"
    );
}

#[test]
fn background_detaches() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = env.std_tmda();
    cmd.args([
        "ofmipd",
        "-b",
        "--hostname",
        "mx.test",
        "-p",
        &format!("127.0.0.1:{port}"),
    ]);
    as_nobody(&mut cmd, &env);
    let t = Instant::now();
    let st = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        st.success() && t.elapsed() < Duration::from_secs(5),
        "the starting process returns at once"
    );
    let mut c = session(port);
    assert!(c.send_one("bg@x.org").starts_with("250 2.0.0"));
    // Find the detached daemon by its command line and stop it.
    let needle = format!("127.0.0.1:{port}");
    let mut stopped = false;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) && String::from_utf8_lossy(&cmdline).contains("ofmipd") {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
            // Detached: not our child any more, and in a session of its own.
            let ppid: i32 = fields[1].parse().unwrap();
            assert_ne!(ppid, std::process::id() as i32, "reparented after the double fork");
            // Fields after the command name: state, ppid, pgrp, session.
            let sid: i32 = fields[3].parse().unwrap();
            assert!(sid > 0, "has a session inside our pid namespace: {stat}");
            assert_ne!(sid, unsafe { libc::getsid(0) }, "runs in a session of its own");
            unsafe { libc::kill(pid, libc::SIGTERM) };
            stopped = true;
        }
    }
    assert!(stopped, "daemon process not found");
}

fn script(env: &TestEnv, name: &str, body: &str) -> std::path::PathBuf {
    let p = env.write(name, &format!("#!/bin/bash\n{body}\n"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn throttle_script_gets_the_login_name() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let log = env.path("throttle.log");
    let t = script(
        &env,
        "throttle",
        &format!(
            "echo \"$1\" >> {}\n[ -f {} ] && exit 1\nexit 0",
            log.display(),
            env.path("block").display()
        ),
    );
    let o = start(&env, &["-t", t.to_str().unwrap()]);
    let mut c = session(o.port);
    assert!(c.send_one("a@x.org").starts_with("250 2.0.0"));
    env.write("block", "");
    assert!(
        c.send_one("b@x.org")
            .starts_with("450 4.7.1 Outgoing mail quota exceeded")
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "alice\nalice\n");
    assert_eq!(up.transactions().len(), 1);
}

#[test]
fn authprog_checkpassword_in_the_chain() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    // Accepts bob/builder; the authfile (given after it) still knows alice.
    let cp = script(
        &env,
        "checkpw",
        "IFS= read -r -d '' user <&3; IFS= read -r -d '' pass <&3\n[ \"$user\" = bob ] && [ \"$pass\" = builder ] && exec \"$@\"\nexit 1",
    );
    let authfile = env.path(".tmda/tofmipd");
    let o = start(&env, &["-A", cp.to_str().unwrap(), "-a", authfile.to_str().unwrap()]);
    let mut c = Client::connect(o.port);
    c.reply();
    let ehlo = c.cmd("EHLO t");
    assert!(
        !ehlo.contains("CRAM-MD5"),
        "a checkpassword program cannot verify CRAM-MD5: {ehlo}"
    );
    assert!(
        c.cmd("AUTH PLAIN AGJvYgBidWlsZGVy").starts_with("235"),
        "bob via the program"
    );
    let mut c = session(o.port);
    assert!(c.send_one("a@x.org").starts_with("250"), "alice via the authfile");
}

#[test]
fn a_delivery_program_with_much_to_say_does_not_hang_the_session() {
    // 300 KB on standard error: more than a pipe holds, so it must be read to the end.
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    std::fs::remove_file(env.path(".tmda/config")).unwrap();
    let sm = script(
        &env,
        "chatty-sendmail",
        "head -c 300000 /dev/zero | tr '\\0' x >&2\necho >&2\necho 'the last word' >&2\ncat >/dev/null\nexit 1",
    );
    let sm = sm.to_str().unwrap();
    let out = run_one_session(&env, &["-P"], &[("TMDA_SENDMAIL_PROGRAM", sm)], ONE_MESSAGE);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("554 5.0.0 Delivery failed: the last word\r\n"), "{text}");
}

#[test]
fn a_delivery_program_that_hangs_is_stopped_and_the_client_told_to_retry() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let hang = script(&env, "hang", "sleep 30 &\nsleep 30");
    let hang = hang.to_str().unwrap().to_string();
    let started = Instant::now();
    // The pure-proxy sendmail, the sendmail transport and the throttle script alike.
    std::fs::rename(env.path(".tmda/config"), env.path("config.off")).unwrap();
    let out = run_one_session(
        &env,
        &["-P", "--delivery-timeout", "1"],
        &[("TMDA_SENDMAIL_PROGRAM", &hang)],
        ONE_MESSAGE,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("451 4.3.0 Delivery failed, try again later: delivery did not finish within 1 seconds"),
        "{text}"
    );
    std::fs::rename(env.path("config.off"), env.path(".tmda/config")).unwrap();
    let cfg = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    env.write_config(&format!(
        "{cfg}MAIL_TRANSPORT = 'sendmail'\nSENDMAIL_PROGRAM = '{hang}'\n"
    ));
    let out = run_one_session(&env, &["--delivery-timeout", "1"], &[], ONE_MESSAGE);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("451 4.3.0") && text.contains("did not finish within 1 seconds"),
        "{text}"
    );
    let out = run_one_session(&env, &["--delivery-timeout", "1", "-t", &hang], &[], ONE_MESSAGE);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("451 4.3.0") && text.contains("throttle script"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(up.transactions().is_empty());
}

#[test]
fn pure_proxy_passes_mail_of_users_without_config() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    std::fs::remove_file(env.path(".tmda/config")).unwrap();
    let out = env.path("passed");
    let sm = script(
        &env,
        "fake-sendmail",
        &format!("echo \"$*\" > {}\ncat >> {}", out.display(), out.display()),
    );
    let mut cmd = env.std_tmda();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cmd.args([
        "ofmipd",
        "-f",
        "-P",
        "--hostname",
        "mx.test",
        "-p",
        &format!("127.0.0.1:{port}"),
    ])
    .env("TMDA_SENDMAIL_PROGRAM", &sm);
    as_nobody(&mut cmd, &env);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _r = Running { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = session(port);
    assert!(c.send_one("plain@x.org").starts_with("250 2.0.0"));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("-f alice@first.example -i -- plain@x.org\n"), "{text}");
    assert!(
        text.ends_with("Subject: t\n\nbody\n") && !text.contains("X-Delivery-Agent"),
        "unaltered: {text}"
    );
    assert!(up.transactions().is_empty());
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    // Any number of network threads serves the same protocol.
    let o = start(&env, &["--threads", "3"]);
    let mut c = Client::connect(o.port);
    assert!(c.reply().starts_with("220"));
    // RFC 2920: the whole transaction in one write, data included.
    c.w.write_all(
        b"EHLO p\r\nAUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\nMAIL FROM:<alice@first.example>\r\nRCPT TO:<p1@x.org>\r\nRCPT TO:<p2@x.org>\r\nDATA\r\n",
    )
    .unwrap();
    let mut codes = vec![];
    for _ in 0..6 {
        codes.push(c.reply()[..3].to_string());
    }
    assert_eq!(codes, ["250", "235", "250", "250", "250", "354"]);
    c.w.write_all(b"Subject: p\r\n\r\npipelined\r\n.\r\nQUIT\r\n").unwrap();
    assert!(c.reply().starts_with("250 2.0.0"));
    assert!(c.reply().starts_with("221"));
    let t = up.transactions();
    assert_eq!(
        t.iter().map(|x| x.rcpt_to[0].as_str()).collect::<Vec<_>>(),
        vec!["<p1@x.org>", "<p2@x.org>"]
    );
}

/// One message to several recipients; the final reply.
fn send_to(c: &mut Client, rcpts: &[&str], text: &str) -> String {
    assert!(c.cmd("MAIL FROM:<alice@first.example>").starts_with("250"));
    for r in rcpts {
        c.cmd(&format!("RCPT TO:<{r}>"));
    }
    assert!(c.cmd("DATA").starts_with("354"));
    c.cmd(&format!("{text}."))
}

/// A fake relay with `policy`, an ofmipd relaying to it and an authenticated session.
struct Rig {
    up: FakeSmtp,
    _env: TestEnv,
    _ofmipd: Running,
    c: Client,
}

fn rig(policy: Policy) -> Rig {
    let up = FakeSmtp::start(policy);
    let env = setup(up.port);
    let o = start(&env, &[]);
    let c = session(o.port);
    Rig {
        up,
        _env: env,
        _ofmipd: o,
        c,
    }
}

fn setup_with(upstream: u16, extra_config: &str) -> TestEnv {
    let env = setup(upstream);
    let cfg = env.path(".tmda/config");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}{extra_config}")).unwrap();
    env
}

/// The copy of a delivery status notification the fake relay got: (envelope, text).
fn notifications(up: &FakeSmtp) -> Vec<(String, Vec<String>, String)> {
    up.transactions()
        .into_iter()
        .filter(|t| t.mail_from == "<>")
        .map(|t| {
            (
                t.mail_from,
                t.rcpt_to,
                String::from_utf8_lossy(&t.data).replace("\r\n", "\n"),
            )
        })
        .collect()
}

#[test]
fn relay_refusals_and_deferrals_reach_the_client() {
    let mut relay = rig(Policy {
        reject_rcpt: Some(("bad@".into(), "550 5.1.1 no such user".into())),
        ..Default::default()
    });
    // Twice: the first message of a user is tagged on a worker thread (cold caches),
    // later ones on the session's own task; both must report the same way.
    for i in 0..2 {
        // Some got it, one failed for good: 250, and the sender is told which (a 451
        // would have the client send it again to the one who got it).
        let r = send_to(
            &mut relay.c,
            &["ok@x.org", "bad@x.org", "later@x.org"],
            "Subject: t\r\n\r\nbody\r\n",
        );
        assert!(
            r.starts_with("250 2.0.0") && r.contains("delivery status notification"),
            "{r}"
        );
        let dsn = notifications(&relay.up);
        assert_eq!(dsn.len(), i + 1);
        let (_, rcpt, text) = &dsn[i];
        assert_eq!(rcpt, &["<alice@first.example>"], "to the envelope sender, from <>");
        for want in [
            "From: Mail Delivery System <MAILER-DAEMON@mx.test>\n",
            "Content-Type: multipart/report; report-type=delivery-status;",
            "Reporting-MTA: dns; mx.test\n",
            "Final-Recipient: rfc822; bad@x.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n",
            "Content-Type: text/rfc822-headers\n\nSubject: t\n",
        ] {
            assert!(text.contains(want), "{want:?} missing:\n{text}");
        }
        assert!(!text.contains("Final-Recipient: rfc822; ok@x.org"), "{text}");
    }
    let delivered: Vec<Vec<String>> = relay
        .up
        .transactions()
        .into_iter()
        .filter(|t| t.mail_from != "<>")
        .map(|t| t.rcpt_to)
        .collect();
    assert_eq!(delivered.len(), 4, "ok@ and later@ twice: {delivered:?}");
    // Nobody got it and the failure is for good: 554, no notification.
    let r = send_to(&mut relay.c, &["bad@x.org"], "Subject: t\r\n\r\nbody\r\n");
    assert!(
        r.starts_with("554 5.0.0") && r.contains("550 5.1.1 no such user"),
        "{r}"
    );
    assert_eq!(notifications(&relay.up).len(), 2);
    // A null sender is never sent a notification: the client hears who got it.
    assert!(relay.c.cmd("MAIL FROM:<>").starts_with("250"));
    relay.c.cmd("RCPT TO:<ok@x.org>");
    relay.c.cmd("RCPT TO:<bad@x.org>");
    relay.c.cmd("DATA");
    let r = relay.c.cmd("Subject: t\r\n\r\nbody\r\n.");
    assert!(
        r.starts_with("554 5.0.0") && r.contains("delivered to ok@x.org") && r.contains("envelope sender is null"),
        "{r}"
    );
    assert_eq!(notifications(&relay.up).len(), 2);
    let mut deferring = rig(Policy {
        mail_reply: Some("451 4.3.0 try again later".into()),
        ..Default::default()
    });
    for _ in 0..2 {
        let r = send_to(&mut deferring.c, &["ok@x.org", "b@x.org"], "Subject: t\r\n\r\nbody\r\n");
        assert!(r.starts_with("451 4.") && r.contains("try again later"), "{r}");
    }
    assert!(deferring.up.transactions().is_empty());
}

/// With the sendmail program as the transport: some recipients refused for good, some
/// for now, some accepted. The answer is 250 and one notification names the refused
/// ones, the temporary failure as failed (nothing will retry it); with nobody
/// accepted, 451 when every failure may pass later, else 554.
#[test]
fn mixed_outcomes_through_the_sendmail_program() {
    let env = TestEnv::new();
    let prog = script(
        &env,
        "picky",
        &format!(
            "for a; do r=$a; done\ncat > \"{dir}/msg-$r\"\necho \"$*\" >> {dir}/args\n\
             case $r in perm*) echo \"picky: $r: no such user\" >&2; exit 67;; temp*) echo 'picky: queue full' >&2; exit 75;; esac\nexit 0",
            dir = env.home().display()
        ),
    );
    env.write_config(&format!(
        "USERNAME = 'alice'\nHOSTNAME = 'first.example'\nSENDMAIL_PROGRAM = '{}'\nMAIL_TRANSFER_AGENT = 'postfix'\n",
        prog.display()
    ));
    let f = env.write(".tmda/tofmipd", "alice:wonderland\n");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = start(&env, &["-L"]);
    let mut c = session(o.port);
    let r = send_to(
        &mut c,
        &["ok@x.org", "perm@x.org", "temp@x.org"],
        "Subject: mixed\r\n\r\nbody\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let args = std::fs::read_to_string(env.path("args")).unwrap();
    assert!(
        args.ends_with("-i -f  -- alice@first.example\n"),
        "null sender, to the sender: {args}"
    );
    let dsn = std::fs::read_to_string(env.path("msg-alice@first.example")).unwrap();
    for want in [
        "Final-Recipient: rfc822; perm@x.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: x-unix; ",
        "exited 67: picky: perm@x.org: no such user\n",
        "Final-Recipient: rfc822; temp@x.org\nAction: failed\nStatus: 4.0.0\nDiagnostic-Code: x-unix; ",
        "it will not be retried",
        "Subject: mixed\n",
    ] {
        assert!(dsn.contains(want), "{want:?} missing:\n{dsn}");
    }
    assert!(!dsn.contains("Final-Recipient: rfc822; ok@x.org"), "{dsn}");
    // Only temporary failures, but one got it: 250 and a notification too.
    std::fs::remove_file(env.path("msg-alice@first.example")).unwrap();
    let r = send_to(&mut c, &["ok@x.org", "temp@x.org"], "Subject: t\r\n\r\nbody\r\n");
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert!(env.path("msg-alice@first.example").exists());
    // Nobody got it: 451 when every failure is temporary, 554 when one is for good.
    let r = send_to(&mut c, &["temp@x.org", "temp2@x.org"], "Subject: t\r\n\r\nbody\r\n");
    assert!(r.starts_with("451 4.3.0") && r.contains("queue full"), "{r}");
    let r = send_to(&mut c, &["temp@x.org", "perm@x.org"], "Subject: t\r\n\r\nbody\r\n");
    assert!(r.starts_with("554 5.0.0") && r.contains("no such user"), "{r}");
}

/// `n` messages through one session of an ofmipd relaying to a fake with `policy`; what
/// the fake accepted.
fn relay_some(policy: Policy, n: usize) -> Vec<crate::util::fake_smtp::Transaction> {
    let mut relay = rig(policy);
    for i in 0..n {
        assert!(
            relay.c.send_one(&format!("r{i}@x.org")).starts_with("250 2.0.0"),
            "message {i}"
        );
    }
    let t = relay.up.transactions();
    assert_eq!(t.len(), n);
    t
}

#[test]
fn relay_pipelines_only_when_offered() {
    for offered in [false, true] {
        let t = relay_some(
            Policy {
                pipelining: offered,
                ..Default::default()
            },
            3,
        );
        assert!(t.iter().all(|x| x.pipelined == offered), "offered {offered}: {t:?}");
    }
}

#[test]
fn relay_text_is_dot_stuffed_and_crlf() {
    let mut relay = rig(Policy::default());
    // As the client sends it (dot-stuffed), then what the relay must see again.
    let body = "..\r\n...two\r\nmid.dle\r\nlast";
    for _ in 0..2 {
        let r = send_to(&mut relay.c, &["d@x.org"], &format!("Subject: dots\r\n\r\n{body}\r\n"));
        assert!(r.starts_with("250 2.0.0"), "{r}");
    }
    for t in relay.up.transactions() {
        let data = String::from_utf8(t.data).unwrap();
        assert!(data.ends_with(&format!("\r\n\r\n{body}\r\n")), "{data:?}");
        assert!(
            !data.replace("\r\n", "").contains('\n'),
            "only CRLF line endings: {data:?}"
        );
    }
}

#[test]
fn relay_auth_session_limit_and_dead_pooled_connections() {
    let up = FakeSmtp::start(Policy {
        auth: Some(("relayuser".into(), "relaypass".into())),
        hang_up_after: Some(2),
        ..Default::default()
    });
    let env = setup_with(
        up.port,
        "SMTPAUTH_USERNAME = 'relayuser'\nSMTPAUTH_PASSWORD = 'relaypass'\nSMTP_MAX_SESSIONS_PER_CONNECTION = 3\n",
    );
    let o = start(&env, &[]);
    let mut c = session(o.port);
    // Messages 1 and 2 share a connection the relay then closes; message 3 finds it
    // dead in the pool and goes out on a new one without the client noticing.
    for i in 0..3 {
        assert!(
            c.send_one(&format!("a{i}@x.org")).starts_with("250 2.0.0"),
            "message {i}"
        );
    }
    // Four recipients with at most three transactions per connection: a new one for the fourth.
    let r = send_to(
        &mut c,
        &["m1@x.org", "m2@x.org", "m3@x.org", "m4@x.org"],
        "Subject: t\r\n\r\nbody\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let t = up.transactions();
    let conns: Vec<usize> = t.iter().map(|x| x.connection).collect();
    // Connection 1 carries a2, m1 (hang-up after 2); 2 carries m2, m3; 3 carries m4.
    assert_eq!(conns, [0, 0, 1, 1, 2, 2, 3], "{t:?}");

    let wrong = setup_with(up.port, "SMTPAUTH_USERNAME = 'relayuser'\nSMTPAUTH_PASSWORD = 'nope'\n");
    let o = start(&wrong, &[]);
    let mut c = session(o.port);
    for _ in 0..2 {
        // Deferred, not bounced: the client keeps the message until the password is fixed.
        let r = c.send_one("x@x.org");
        assert!(r.starts_with("451 4.") && r.contains("535 5.7.8"), "{r}");
        assert!(!r.contains("nope"), "password never shown: {r}");
    }
}

#[test]
fn shell_actions_and_outgoing_log_still_work() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let prog = script(&env, "tagger", "echo tagged-by-shell@first.example");
    let filter = env.write(
        ".tmda/filters/outgoing",
        &format!("to shell@x.org shell={}\n", prog.display()),
    );
    let log = env.path("outgoing.log");
    let cfg = env.path(".tmda/config");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}FILTER_OUTGOING = '{}'\n", filter.display())).unwrap();
    let o = start(&env, &[]);
    let mut c = session(o.port);
    for _ in 0..2 {
        let r = c.send_one("shell@x.org");
        assert!(r.starts_with("250 2.0.0"), "{r}");
    }
    let t = up.transactions();
    assert!(
        t.iter().all(|x| x.mail_from == "<tagged-by-shell@first.example>"),
        "{t:?}"
    );
    rewrite_config(&cfg, &format!("{text}LOGFILE_OUTGOING = '{}'\n", log.display()));
    for _ in 0..2 {
        assert!(c.send_one("logged@x.org").starts_with("250 2.0.0"));
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.matches("  To: logged@x.org").count(), 2, "{logged}");
}

#[test]
fn smtputf8_only_through_a_relay_that_offers_it() {
    for offered in [true, false] {
        let mut relay = rig(Policy {
            smtputf8: offered,
            ..Default::default()
        });
        assert!(
            relay.c.cmd("EHLO t").contains("SMTPUTF8\r\n"),
            "always offered to clients"
        );
        // Twice: cold caches (worker thread), then the session's own task.
        for _ in 0..2 {
            assert!(
                relay
                    .c
                    .cmd("MAIL FROM:<alice@first.example> SMTPUTF8")
                    .starts_with("250")
            );
            assert!(
                relay
                    .c
                    .cmd("RCPT TO:<j\u{f6}rg@b\u{fc}cher.example>")
                    .starts_with("250")
            );
            assert!(relay.c.cmd("DATA").starts_with("354"));
            let r = relay.c.cmd("Subject: gr\u{fc}\u{df}e\r\n\r\nhallo\r\n.");
            if offered {
                assert!(r.starts_with("250 2.0.0"), "{r}");
            } else {
                assert!(r.starts_with("554 5.") && r.contains("SMTPUTF8"), "{r}");
            }
        }
        let t = relay.up.transactions();
        if offered {
            assert_eq!(t.len(), 2);
            for x in &t {
                assert!(x.mail_params.split(' ').any(|p| p == "SMTPUTF8"), "{x:?}");
                assert_eq!(x.rcpt_to, ["<j\u{f6}rg@b\u{fc}cher.example>"]);
                let data = String::from_utf8_lossy(&x.data);
                assert!(data.contains(" with UTF8SMTPA;"), "{data}");
            }
        } else {
            assert!(t.is_empty(), "nothing sent on mangled: {t:?}");
        }
    }
}

#[test]
fn eight_bit_text_is_declared_and_needs_8bitmime() {
    for seven_bit_only in [false, true] {
        let mut relay = rig(Policy {
            seven_bit_only,
            ..Default::default()
        });
        for _ in 0..2 {
            let plain = send_to(&mut relay.c, &["a@x.org"], "Subject: ascii\r\n\r\nplain\r\n");
            assert!(plain.starts_with("250 2.0.0"), "{plain}");
            let r = send_to(&mut relay.c, &["b@x.org"], "Subject: 8bit\r\n\r\ngr\u{fc}\u{df}e\r\n");
            if seven_bit_only {
                assert!(r.starts_with("554 5.") && r.contains("8BITMIME"), "{r}");
            } else {
                assert!(r.starts_with("250 2.0.0"), "{r}");
            }
        }
        let t = relay.up.transactions();
        assert!(
            t.iter()
                .filter(|x| x.rcpt_to == ["<a@x.org>"])
                .all(|x| x.mail_params.is_empty()),
            "{t:?}"
        );
        let eight: Vec<_> = t.iter().filter(|x| x.rcpt_to == ["<b@x.org>"]).collect();
        if seven_bit_only {
            assert!(eight.is_empty(), "{t:?}");
        } else {
            assert_eq!(eight.len(), 2);
            assert!(eight.iter().all(|x| x.mail_params == "BODY=8BITMIME"), "{t:?}");
        }
    }
}

#[test]
fn relay_without_esmtp_is_greeted_with_helo() {
    let t = relay_some(
        Policy {
            helo_only: true,
            ..Default::default()
        },
        2,
    );
    assert!(t.iter().all(|x| !x.pipelined && x.mail_params.is_empty()), "{t:?}");
}

/// See: #11. A misspelt variable in a user's configuration is logged by ofmipd once,
/// however many messages are tagged with it (and after the file is read again), and
/// never reaches the client's replies.
#[test]
fn r11_unknown_config_variable_is_logged_once_never_replied() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let cfg = env.path(".tmda/config");
    let text = std::fs::read_to_string(&cfg).unwrap() + "FILTER_OUTGONG = '~/.tmda/filters/out'\n";
    std::fs::write(&cfg, &text).unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let o = start_logging(&env, &[], Some(log.path()));
    let mut c = session(o.port);
    let mut replies = String::new();
    for i in 0..2 {
        replies.push_str(&c.send_one(&format!("r{i}@x.org")));
    }
    rewrite_config(&cfg, &text);
    replies.push_str(&c.send_one("r2@x.org"));
    replies.push_str(&c.cmd("QUIT"));
    assert_eq!(up.transactions().len(), 3);
    assert!(
        !replies.contains("FILTER_OUTGONG") && !replies.contains("warning"),
        "{replies}"
    );
    drop(o);
    let logged = std::fs::read_to_string(log.path()).unwrap();
    let warnings: Vec<&str> = logged.lines().filter(|l| l.contains("FILTER_OUTGONG")).collect();
    assert_eq!(warnings.len(), 1, "{logged}");
    assert!(
        warnings[0].contains("warning: ") && warnings[0].contains("did you mean FILTER_OUTGOING?"),
        "{logged}"
    );
}

/// `tmda ofmipd -1` with the session's socket on descriptor 0 and standard output sent
/// to a log file, as a wrapper may do: TMDA's help says the session is on stdin, "used
/// both for input & output".
fn one_session_on_a_socket(server_end: std::os::fd::OwnedFd, env: &TestEnv) -> (Child, std::path::PathBuf) {
    let stdout_file = env.path("stdout.log");
    let mut cmd = env.std_tmda();
    cmd.args(["ofmipd", "-1", "--hostname", "mx.test"])
        .env("TCPREMOTEIP", "192.0.2.7")
        .stdin(Stdio::from(server_end))
        .stdout(std::fs::File::create(&stdout_file).unwrap())
        .stderr(Stdio::null());
    as_nobody(&mut cmd, env);
    (cmd.spawn().unwrap(), stdout_file)
}

/// Talk ONE_MESSAGE's dialogue over `stream`, one command at a time; the replies.
fn dialogue_over<S: std::io::Read + Write>(stream: S) -> String {
    let mut r = BufReader::new(stream);
    let mut text = String::new();
    let mut reply = |r: &mut BufReader<S>| loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 {
            return;
        }
        text.push_str(&l);
        if l.as_bytes().get(3) != Some(&b'-') {
            return;
        }
    };
    reply(&mut r);
    for line in [
        "EHLO c",
        "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=",
        "MAIL FROM:<a@b>",
        "RCPT TO:<sock@x.org>",
        "DATA",
        "Subject: s\r\n\r\nb\r\n.",
        "QUIT",
    ] {
        r.get_mut().write_all(format!("{line}\r\n").as_bytes()).unwrap();
        reply(&mut r);
    }
    text
}

#[test]
fn one_session_reads_and_writes_a_socket_on_descriptor_0() {
    // A stream socket pair, as stunnel's exec and systemd's Accept=yes hand over...
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut child, log) = one_session_on_a_socket(theirs.into(), &env);
    let text = dialogue_over(&ours);
    assert!(child.wait().unwrap().success());
    assert!(
        text.starts_with("220 mx.test") && text.contains("250 2.0.0 Ok") && text.ends_with("221 2.0.0 Bye\r\n"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "", "nothing on standard output");
    assert_eq!(up.transactions().len(), 1);
    // ... and a TCP connection, as inetd and tcpserver do.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (theirs, _) = l.accept().unwrap();
    let (mut child, log) = one_session_on_a_socket(theirs.into(), &env);
    let text = dialogue_over(&ours);
    assert!(child.wait().unwrap().success());
    assert!(
        text.contains("250 2.0.0 Ok") && text.ends_with("221 2.0.0 Bye\r\n"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    assert_eq!(up.transactions().len(), 2);
}

/// Records arriving on a datagram socket the test listens on ($TMDA_SYSLOG_SOCKET),
/// read all the time as a syslog daemon does (a full queue drops records).
struct SyslogSocket {
    path: std::path::PathBuf,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SyslogSocket {
    fn bind(env: &TestEnv) -> SyslogSocket {
        let path = env.path("syslog.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // ofmipd runs as nobody when the tests run as root.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let records = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = socket.recv(&mut buf) {
                records
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        SyslogSocket { path, seen }
    }

    /// Wait until a record contains every one of `wanted`; all records so far.
    fn wait_for(&mut self, wanted: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.iter().any(|r| wanted.iter().all(|w| r.contains(w))) {
                return seen.join("\n");
            }
            assert!(
                Instant::now() < deadline,
                "no record with {wanted:?}:\n{}",
                seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The detached daemon's descriptors 0-2 are /dev/null: without syslog every log line
/// was lost and its pid unknown. It logs to syslog (facility mail) by default, one
/// event a line in key=value form, and --pid-file says who it is.
#[test]
fn a_detached_daemon_logs_to_syslog_and_writes_its_pid() {
    let up = FakeSmtp::start(Policy {
        reject_rcpt: Some(("bad@".into(), "550 5.1.1 no such user".into())),
        ..Default::default()
    });
    let env = setup(up.port);
    let mut log = SyslogSocket::bind(&env);
    let pid_file = env.path("ofmipd.pid");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = env.std_tmda();
    cmd.args([
        "ofmipd",
        "-L",
        "--hostname",
        "mx.test",
        "-p",
        &format!("127.0.0.1:{port}"),
    ])
    .arg("--pid-file")
    .arg(&pid_file)
    .env("TMDA_SYSLOG_SOCKET", &log.path);
    as_nobody(&mut cmd, &env);
    let st = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
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
    log.wait_for(&["<22>", &format!("tmda-ofmipd[{pid}]: event=start pid={pid} ")]);
    log.wait_for(&[&format!("event=listen address=127.0.0.1:{port}")]);
    // A wrong password, then a message that one recipient refuses.
    let mut c = Client::connect(port);
    c.reply();
    c.cmd("EHLO t");
    assert!(c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n").starts_with("535"));
    assert!(c.cmd("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=").starts_with("235"));
    assert!(send_to(&mut c, &["ok@x.org", "bad@x.org"], "Subject: t\r\n\r\nbody\r\n").starts_with("250"));
    log.wait_for(&["client=127.0.0.1 event=connect"]);
    // What fail2ban would match: the client's address and the login, one line.
    log.wait_for(&["client=127.0.0.1 login=alice auth=denied source=\"authfile "]);
    log.wait_for(&["client=127.0.0.1 login=alice auth=accepted"]);
    log.wait_for(&[
        "client=127.0.0.1 login=alice id=",
        "from=<alice@first.example> to=<ok@x.org>,<bad@x.org> outcome=partly-delivered",
        "reason=\"delivery status notification sent to <alice@first.example>\"",
    ]);
    log.wait_for(&["to=<ok@x.org> outcome=delivered"]);
    let all = log.wait_for(&["to=<bad@x.org> outcome=failed status=5.1.1 reason=\"smtp; 550 5.1.1 no such user\""]);
    assert!(!all.contains("wonderland") && !all.contains("AGFsaWNl"), "{all}");
    // The same queue id on the message's lines.
    let id = all
        .split(" id=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(all.matches(&format!("id={id} ")).count() >= 3, "{all}");
    unsafe { libc::kill(pid, libc::SIGTERM) };
    log.wait_for(&["event=stop"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_file.exists() {
        assert!(Instant::now() < deadline, "pid file left behind");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// --syslog in the foreground too; standard error stays quiet then.
#[test]
fn syslog_on_request_in_the_foreground() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let mut log = SyslogSocket::bind(&env);
    let mut cmd = env.std_tmda();
    cmd.args(["ofmipd", "-1", "-L", "--syslog", "--hostname", "mx.test"])
        .env("TCPREMOTEIP", "192.0.2.7")
        .env("TMDA_SYSLOG_SOCKET", &log.path);
    as_nobody(&mut cmd, &env);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(ONE_MESSAGE);
    let out = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("250 2.0.0 Ok"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    log.wait_for(&["client=192.0.2.7 login=alice id=", "to=<stdio@x.org> outcome=delivered"]);
    // Nothing listening: --syslog is refused rather than logging nowhere.
    let mut cmd = env.std_tmda();
    cmd.args(["ofmipd", "-1", "--syslog"])
        .env("TMDA_SYSLOG_SOCKET", env.path("nothing-here"));
    as_nobody(&mut cmd, &env);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing-here"), "{out:?}");
}
