//! SMTP dialogue transcripts in tests/dialogs/*.smtp, replayed against the sans-IO
//! session with a fake backend. Notation (after chasquid's .cmy files):
//!   `# policy: tls=on cram=yes max_size=100 max_rcpts=2 max_failures=3` (first line, optional)
//!   `C: line`   the client sends a line (inside DATA, a data line; `C: .` ends it)
//!   `S: text`   the next reply line must be exactly this
//!   `S~ text`   the next reply line must start with this
//!   `X:`        the server has closed the connection
//! The fake backend accepts alice/wonderland (also by CRAM-MD5), answers "temporary"
//! for user "down", and delivery fails for recipients containing "transient"/"permanent".

use std::path::Path;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use tmda::smtp::data::Decoder;
use tmda::smtp::session::{DeliveryOutcome, Peer, Secret};
use tmda::smtp::{AuthOutcome, Input, Output, Policy, Session, TlsMode};

fn verify(a: &tmda::smtp::Attempt) -> AuthOutcome {
    if a.user == "down" {
        return AuthOutcome::Temporary;
    }
    let ok = match &a.secret {
        Secret::Password(p) => a.user.eq_ignore_ascii_case("alice") && p == "wonderland",
        Secret::CramMd5 { challenge, digest } => {
            let mut m = <Hmac<md5::Md5> as KeyInit>::new_from_slice(b"wonderland").unwrap();
            m.update(challenge.as_bytes());
            let want: String = m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            a.user == "alice" && *digest == want
        }
    };
    if ok { AuthOutcome::Accepted } else { AuthOutcome::Denied }
}

struct Run {
    session: Session,
    decoder: Option<Decoder>,
    replies: Vec<String>,
    closed: bool,
    delivered: Vec<tmda::smtp::Envelope>,
}

impl Run {
    fn process(&mut self, mut out: Output) {
        loop {
            out = match out {
                Output::Nothing => return,
                Output::Reply(r) => {
                    self.replies.extend(r.to_wire().lines().map(String::from));
                    return;
                }
                Output::ReplyThenClose(r) => {
                    self.replies.extend(r.to_wire().lines().map(String::from));
                    self.closed = true;
                    return;
                }
                Output::ReplyThenStartTls(r) => {
                    self.replies.extend(r.to_wire().lines().map(String::from));
                    self.session.handle(Input::TlsEstablished)
                }
                Output::ReplyThenData(r) => {
                    self.replies.extend(r.to_wire().lines().map(String::from));
                    self.decoder = Some(Decoder::new(self.session.max_size(), 10_000));
                    return;
                }
                Output::Authenticate(a) => {
                    let v = verify(&a);
                    self.session.handle(Input::AuthResult(v))
                }
                Output::Deliver(env) => {
                    let joined = env.recipients.join(",");
                    let outcome = if joined.contains("transient") {
                        DeliveryOutcome::Transient("upstream said 451".into())
                    } else if joined.contains("permanent") {
                        DeliveryOutcome::Permanent("upstream said 550".into())
                    } else {
                        DeliveryOutcome::Accepted
                    };
                    self.delivered.push(env);
                    self.session.handle(Input::Delivered(outcome))
                }
            }
        }
    }

    fn client(&mut self, line: &str) {
        assert!(!self.closed, "client wrote after the server closed");
        if let Some(d) = self.decoder.as_mut() {
            let mut sink = vec![];
            let bytes = format!("{line}\r\n").replace("\\n", "\n").replace("\\r", "\r");
            if d.feed(bytes.as_bytes(), &mut sink).is_some() {
                let problem = d.problem();
                self.decoder = None;
                let out = self.session.handle(Input::DataDone {
                    problem,
                    now: 1262937386,
                });
                self.process(out);
            }
            return;
        }
        let out = self.session.handle(Input::Line(line.as_bytes()));
        self.process(out);
    }
}

fn policy_from(first: &str) -> Policy {
    let mut p = Policy {
        hostname: "mx.example.test".into(),
        tls: TlsMode::None,
        tls_auth_only: false,
        cram_md5: false,
        max_size: 1_000_000,
        max_recipients: 100,
        max_auth_failures: 3,
    };
    if let Some(spec) = first.strip_prefix("# policy:") {
        for kv in spec.split_whitespace() {
            let (k, v) = kv.split_once('=').unwrap();
            match k {
                "tls" => {
                    p.tls = match v {
                        "on" => TlsMode::Required,
                        "optional" => TlsMode::Optional,
                        "ssl" => TlsMode::Implicit,
                        _ => TlsMode::None,
                    }
                }
                "cram" => p.cram_md5 = v == "yes",
                "tls_auth_only" => p.tls_auth_only = v == "yes",
                "max_size" => p.max_size = v.parse().unwrap(),
                "max_rcpts" => p.max_recipients = v.parse().unwrap(),
                "max_failures" => p.max_auth_failures = v.parse().unwrap(),
                _ => panic!("unknown policy key {k}"),
            }
        }
    }
    p
}

/// `C: AUTH ...` lines may use `{plain:user:pass}` and `{b64:text}`; CRAM-MD5 answers use
/// `{cram:user:pass}`, computed from the challenge just received.
fn expand(line: &str, last_reply: &str) -> String {
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let mut out = line.to_string();
    while let Some(start) = out.find('{') {
        let end = out[start..].find('}').unwrap() + start;
        let inner = &out[start + 1..end];
        let (kind, rest) = inner.split_once(':').unwrap();
        let value = match kind {
            "plain" => {
                let (u, p) = rest.split_once(':').unwrap();
                b64(format!("\0{u}\0{p}").as_bytes())
            }
            "b64" => b64(rest.as_bytes()),
            "cram" => {
                let (u, p) = rest.split_once(':').unwrap();
                let challenge = base64::engine::general_purpose::STANDARD
                    .decode(last_reply.trim_start_matches("334 "))
                    .unwrap();
                let mut m = <Hmac<md5::Md5> as KeyInit>::new_from_slice(p.as_bytes()).unwrap();
                m.update(&challenge);
                let hex: String = m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
                b64(format!("{u} {hex}").as_bytes())
            }
            _ => panic!("unknown expansion {kind}"),
        };
        out.replace_range(start..=end, &value);
    }
    out
}

fn run_file(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or("");
    let mut run = Run {
        session: Session::new(
            policy_from(first),
            Peer {
                ip: "192.0.2.1".into(),
                name: Some("client.example.test".into()),
            },
        ),
        decoder: None,
        replies: vec![],
        closed: false,
        delivered: vec![],
    };
    run.session.set_challenge_seed(42);
    run.replies
        .extend(run.session.greeting().to_wire().lines().map(String::from));
    let mut last_reply = String::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("{}:{}", path.display(), n + 1);
        if let Some(c) = line.strip_prefix("C: ") {
            run.client(&expand(c, &last_reply));
        } else if line == "C:" {
            run.client("");
        } else if let Some(want) = line.strip_prefix("S: ") {
            assert!(!run.replies.is_empty(), "{at}: expected {want:?}, got nothing");
            let got = run.replies.remove(0);
            assert_eq!(got, want, "{at}");
            last_reply = got;
        } else if let Some(want) = line.strip_prefix("S~ ") {
            assert!(!run.replies.is_empty(), "{at}: expected {want:?}..., got nothing");
            let got = run.replies.remove(0);
            assert!(got.starts_with(want), "{at}: got {got:?}, want prefix {want:?}");
            last_reply = got;
        } else if line == "X:" {
            assert!(run.closed, "{at}: expected the connection to be closed");
        } else {
            assert!(line.is_empty() || line.starts_with('#'), "{at}: unknown line {line:?}");
        }
    }
    assert!(
        run.replies.is_empty(),
        "{}: unchecked replies at the end: {:?}",
        path.display(),
        run.replies
    );
}

#[test]
fn all_dialogs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "smtp"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "dialogs missing");
    for f in files {
        run_file(&f);
    }
}
