//! An in-process SMTP server for hermetic tests of the SMTP relay path: it answers
//! each command from a small policy and records every transaction it accepts.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

#[derive(Debug, Clone, Default)]
pub struct Transaction {
    pub mail_from: String,
    /// The MAIL FROM parameters as sent (e.g. "BODY=8BITMIME SMTPUTF8").
    pub mail_params: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    /// Which connection (0, 1, ...) carried it.
    pub connection: usize,
    /// RCPT had already arrived when MAIL was read (the client pipelined them).
    pub pipelined: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Reply to RCPT TO for this address with this line (e.g. "550 5.1.1 no such user").
    pub reject_rcpt: Option<(String, String)>,
    /// Reply to every MAIL FROM with this line.
    pub mail_reply: Option<String>,
    /// Require AUTH PLAIN with this username and password.
    pub auth: Option<(String, String)>,
    /// Advertise PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// Refuse EHLO after the first one in a connection (some servers do).
    pub single_ehlo: bool,
    /// Hang up without a word after this many transactions in a connection (as a
    /// relay does whose idle timeout struck while the connection sat in a pool).
    pub hang_up_after: Option<usize>,
    /// Advertise SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// Do not advertise 8BITMIME (an old relay).
    pub seven_bit_only: bool,
    /// Refuse EHLO, accept HELO (a relay from before ESMTP).
    pub helo_only: bool,
    /// Offer only AUTH LOGIN (as some Exchange servers do).
    pub login_only: bool,
}

pub struct FakeSmtp {
    pub port: u16,
    pub transactions: Arc<Mutex<Vec<Transaction>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl FakeSmtp {
    pub fn start(policy: Policy) -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let transactions = Arc::new(Mutex::new(vec![]));
        let connections = Arc::new(Mutex::new(0));
        let (t, c) = (transactions.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let n = {
                    let mut c = c.lock().unwrap();
                    *c += 1;
                    *c - 1
                };
                let (t, policy) = (t.clone(), policy.clone());
                thread::spawn(move || serve(stream, n, &policy, &t));
            }
        });
        FakeSmtp {
            port,
            transactions,
            connections,
        }
    }

    pub fn transactions(&self) -> Vec<Transaction> {
        self.transactions.lock().unwrap().clone()
    }
}

/// The reply to credentials, remembering a success for the rest of the connection.
fn auth_verdict(policy: &Policy, user: &[u8], pass: &[u8], authed: &mut bool) -> String {
    let ok = policy
        .auth
        .as_ref()
        .is_some_and(|(u, p)| user == u.as_bytes() && pass == p.as_bytes());
    *authed |= ok;
    if ok {
        "235 2.7.0 ok".into()
    } else {
        "535 5.7.8 bad credentials".into()
    }
}

fn serve(stream: TcpStream, conn: usize, policy: &Policy, log: &Mutex<Vec<Transaction>>) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut say = |s: &str| w.write_all(format!("{s}\r\n").as_bytes());
    let _ = say("220 fake.example ESMTP");
    let mut cur = Transaction {
        connection: conn,
        ..Default::default()
    };
    let mut authed = policy.auth.is_none();
    let mut greeted = false;
    let mut done = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") && policy.helo_only {
            "502 5.5.2 unknown command".to_string()
        } else if upper.starts_with("HELO") {
            greeted = true;
            "250 fake.example".to_string()
        } else if upper.starts_with("EHLO") && greeted && policy.single_ehlo {
            "503 5.5.1 duplicate EHLO".to_string()
        } else if upper.starts_with("EHLO") {
            greeted = true;
            let pipelining = if policy.pipelining { "250-PIPELINING\r\n" } else { "" };
            let utf8 = if policy.smtputf8 { "250-SMTPUTF8\r\n" } else { "" };
            let eight = if policy.seven_bit_only { "" } else { "250-8BITMIME\r\n" };
            let mechanisms = if policy.login_only { "LOGIN" } else { "PLAIN LOGIN" };
            format!("250-fake.example\r\n{pipelining}{utf8}{eight}250-AUTH {mechanisms}\r\n250 SIZE 100000000")
        } else if upper == "AUTH LOGIN" {
            use base64::Engine as _;
            let b64 = &base64::engine::general_purpose::STANDARD;
            let mut ask = |prompt: &str| -> Option<Vec<u8>> {
                say(&format!("334 {}", b64.encode(prompt))).ok()?;
                let mut l = String::new();
                r.read_line(&mut l).ok()?;
                b64.decode(l.trim_end()).ok()
            };
            let (Some(u), Some(p)) = (ask("Username:"), ask("Password:")) else {
                return;
            };
            auth_verdict(policy, &u, &p, &mut authed)
        } else if upper.starts_with("AUTH PLAIN") {
            use base64::Engine as _;
            let arg = cmd.split_whitespace().nth(2).unwrap_or("");
            let dec = base64::engine::general_purpose::STANDARD
                .decode(arg)
                .unwrap_or_default();
            let parts: Vec<&[u8]> = dec.split(|&b| b == 0).collect();
            if parts.len() == 3 {
                auth_verdict(policy, parts[1], parts[2], &mut authed)
            } else {
                "501 5.5.2 malformed AUTH PLAIN".into()
            }
        } else if upper.starts_with("MAIL FROM:") {
            if !authed {
                "530 5.7.0 authentication required".into()
            } else if let Some(r) = &policy.mail_reply {
                r.clone()
            } else {
                cur = Transaction {
                    connection: conn,
                    pipelined: !r.buffer().is_empty(),
                    mail_from: cmd[10..].split_whitespace().next().unwrap_or("").to_string(),
                    mail_params: cmd[10..].split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
                    ..Default::default()
                };
                "250 2.1.0 ok".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            let addr = cmd[8..].trim().to_string();
            match &policy.reject_rcpt {
                Some((a, reply)) if addr.contains(a.as_str()) => reply.clone(),
                _ => {
                    cur.rcpt_to.push(addr);
                    "250 2.1.5 ok".into()
                }
            }
        } else if upper == "DATA" {
            let _ = say("354 go ahead");
            let mut data = vec![];
            loop {
                let mut l = vec![];
                if r.read_until(b'\n', &mut l).unwrap_or(0) == 0 {
                    return;
                }
                if l == b".\r\n" {
                    break;
                }
                data.extend_from_slice(&l);
            }
            cur.data = data;
            log.lock().unwrap().push(std::mem::take(&mut cur));
            done += 1;
            if policy.hang_up_after == Some(done) {
                let _ = say("250 2.0.0 queued");
                let _ = w.shutdown(std::net::Shutdown::Both);
                return;
            }
            "250 2.0.0 queued".into()
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 ok".into()
        } else if upper == "QUIT" {
            let _ = say("221 bye");
            return;
        } else {
            "502 5.5.2 unknown command".into()
        };
        if say(&reply).is_err() {
            return;
        }
    }
}
