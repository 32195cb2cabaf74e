//! The network shell of `ofmipd`: listeners, connections, TLS, timeouts, limits.
//!
//! Each connection runs [`drive`]: read a line, give it to the [`Session`], carry out
//! the [`Output`]. Replies are buffered while the client's pipelined commands are
//! still in our buffer and flushed before we wait for more input (RFC 2920). On
//! STARTTLS anything the client sent after the command is discarded before the
//! handshake (the STARTTLS injection bug class), and the session starts over.
//! Whatever may wait or work hard runs on blocking threads (slow password hashes,
//! remote auth sources, global mode's per-user children, tagging that runs a program),
//! so it never stalls other sessions; the common case (a cleartext authfile entry, a
//! cached configuration, a plain SMTP relay) stays on the session's own task, where
//! waiting for the relay is just another await ([`crate::delivery::Delivery::route`]).

use std::collections::HashMap;
use std::io::{Seek, Write};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use crate::auth::{Chain, Verdict};
use crate::delivery::{Delivery, Ready, Route, Spooled};
use crate::smtp::data::Decoder;
use crate::smtp::reply;
use crate::smtp::session::{AuthOutcome, DeliveryOutcome, Peer};
use crate::smtp::{Input, Output, Policy, Reply, Session, TlsMode};
use crate::tls::Reloadable;

/// `--tls`/`--ssl` as configured (before `localoptional` is resolved per client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSetting {
    None,
    Optional,
    LocalOptional,
    On,
    Ssl,
}

/// Logging: `-L` events, `-d` also the protocol trace (AUTH data redacted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Quiet,
    Events,
    Debug,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_size: u64,
    pub max_recipients: usize,
    pub max_auth_failures: u32,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    /// Longest command line, CRLF included (RFC 5321 section 4.5.3.1.4: 512).
    pub max_line: usize,
    /// Longest line inside DATA (RFC 5321 says 1000; we allow far more before refusing).
    pub max_data_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_auth_failures: 3,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            max_line: 512,
            max_data_line: 64 * 1024,
        }
    }
}

/// Failed-AUTH budgets across connections, per client address and per user name, kept
/// apart and checked before any password is looked at, so guessing is slowed and then
/// refused however the attacker spreads the attempts.
pub struct Budget {
    window: Duration,
    max_per_ip: usize,
    max_per_user: usize,
    by_ip: HashMap<IpAddr, Vec<Instant>>,
    by_user: HashMap<String, Vec<Instant>>,
}

impl Budget {
    pub fn new(window: Duration, max_per_ip: usize, max_per_user: usize) -> Budget {
        Budget {
            window,
            max_per_ip,
            max_per_user,
            by_ip: HashMap::new(),
            by_user: HashMap::new(),
        }
    }

    fn prune(v: &mut Vec<Instant>, window: Duration, now: Instant) {
        v.retain(|t| now.duration_since(*t) < window);
    }

    pub fn allows(&mut self, ip: Option<IpAddr>, user: &str, now: Instant) -> bool {
        let w = self.window;
        let ip_ok = ip.is_none_or(|ip| {
            let v = self.by_ip.entry(ip).or_default();
            Self::prune(v, w, now);
            v.len() < self.max_per_ip
        });
        let v = self.by_user.entry(user.to_lowercase()).or_default();
        Self::prune(v, w, now);
        ip_ok && v.len() < self.max_per_user
    }

    pub fn failed(&mut self, ip: Option<IpAddr>, user: &str, now: Instant) {
        if let Some(ip) = ip {
            self.by_ip.entry(ip).or_default().push(now);
        }
        self.by_user.entry(user.to_lowercase()).or_default().push(now);
    }

    pub fn succeeded(&mut self, user: &str) {
        self.by_user.remove(&user.to_lowercase());
    }
}

/// Everything a connection needs, shared by all of them.
pub struct Server {
    pub hostname: String,
    pub tls_setting: TlsSetting,
    pub tls: Option<Arc<Reloadable>>,
    pub chain: Arc<Chain>,
    pub delivery: Arc<Delivery>,
    pub limits: Limits,
    pub log: LogLevel,
    pub budget: Mutex<Budget>,
    /// Delay before answering a failed AUTH, per failure so far in the session.
    pub failure_delay: Duration,
}

impl Server {
    /// `msg` is formatted only when the line is logged (pass `format_args!`). One event is
    /// one line: control characters (a client's bytes, a multi-line error) are escaped,
    /// so nothing a client sends can start a log line of its own.
    pub fn log(&self, level: LogLevel, msg: impl std::fmt::Display) {
        if self.log >= level && level > LogLevel::Quiet {
            let mut text = msg.to_string();
            if text.chars().any(char::is_control) {
                text = text
                    .chars()
                    .map(|c| {
                        if c.is_control() {
                            c.escape_default().to_string()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect();
            }
            eprintln!("tmda-ofmipd[{}]: {text}", std::process::id());
        }
    }

    fn policy(&self, peer_ip: Option<IpAddr>) -> Policy {
        let tls = match self.tls_setting {
            TlsSetting::None => TlsMode::None,
            TlsSetting::Optional => TlsMode::Optional,
            TlsSetting::On => TlsMode::Required,
            TlsSetting::Ssl => TlsMode::Implicit,
            // Optional for clients on a loopback address (TMDA looked at our own address instead).
            TlsSetting::LocalOptional => {
                if peer_ip.is_some_and(|ip| ip.is_loopback()) {
                    TlsMode::Optional
                } else {
                    TlsMode::Required
                }
            }
        };
        Policy {
            hostname: self.hostname.clone(),
            tls,
            cram_md5: self.chain.supports_cram_md5(),
            max_size: self.limits.max_size,
            max_recipients: self.limits.max_recipients,
            max_auth_failures: self.limits.max_auth_failures,
        }
    }
}

/// A connection before or after TLS.
pub enum Conn<S> {
    Plain(S),
    Tls(Box<tokio_rustls::server::TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Standard input and output as one stream (`-1` under tcpserver, xinetd, stunnel, systemd).
pub struct Stdio {
    pub r: tokio::io::Stdin,
    pub w: tokio::io::Stdout,
}

impl AsyncRead for Stdio {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().r).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stdio {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().w).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().w).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().w).poll_shutdown(cx)
    }
}

enum Next {
    Line(Vec<u8>),
    TooLong,
    Eof,
    Timeout,
    Shutdown,
}

/// Buffered line reading with a length limit that never buffers an overlong line.
/// What a session reads at a time between messages, and keeps allocated.
const READ_BUFFER: usize = 4096;
/// What it reads at a time during DATA.
const DATA_READ: usize = 64 * 1024;

struct Reader {
    buf: Vec<u8>,
    discarding: bool,
}

impl Reader {
    fn complete_line(&self) -> bool {
        self.buf.contains(&b'\n')
    }

    async fn next<S: AsyncRead + Unpin>(
        &mut self,
        conn: &mut S,
        max: usize,
        timeout: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Next {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if std::mem::take(&mut self.discarding) || line.len() + 2 > max {
                    return Next::TooLong;
                }
                return Next::Line(line);
            }
            if self.buf.len() > max {
                self.buf.clear();
                self.discarding = true;
            }
            self.buf.reserve(READ_BUFFER);
            let read = tokio::select! {
                r = tokio::time::timeout(timeout, conn.read_buf(&mut self.buf)) => r,
                _ = shutdown.changed() => return Next::Shutdown,
            };
            match read {
                Err(_) => return Next::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Next::Eof,
                Ok(Ok(_)) => {}
            }
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(conn: &mut S, pending: &mut String, server: &Server) -> std::io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    if server.log >= LogLevel::Debug {
        for l in pending.lines() {
            server.log(LogLevel::Debug, format_args!("> {l}"));
        }
    }
    conn.write_all(pending.as_bytes()).await?;
    conn.flush().await?;
    pending.clear();
    Ok(())
}

/// Redact AUTH payloads in the protocol trace.
fn trace_line(line: &[u8], in_auth: bool) -> String {
    if in_auth {
        return "<AUTH data redacted>".into();
    }
    let text = String::from_utf8_lossy(line);
    let upper = text.to_ascii_uppercase();
    if upper.starts_with("AUTH ") {
        let mut words = text.split_whitespace();
        let (a, m) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        return if words.next().is_some() {
            format!("{a} {m} <redacted>")
        } else {
            format!("{a} {m}")
        };
    }
    text.into_owned()
}

/// Run one SMTP session over `conn` until it ends.
pub async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: Peer,
    local: Option<IpAddr>,
    server: Arc<Server>,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer_ip: Option<IpAddr> = peer.ip.parse().ok();
    let policy = server.policy(peer_ip);
    let implicit = policy.tls == TlsMode::Implicit;
    let mut conn = Conn::Plain(stream);
    if implicit {
        let Some(tls) = &server.tls else { return };
        match tls
            .acceptor()
            .accept(match conn {
                Conn::Plain(s) => s,
                Conn::Tls(_) => unreachable!(),
            })
            .await
        {
            Ok(t) => conn = Conn::Tls(Box::new(t)),
            Err(e) => {
                server.log(LogLevel::Events, format_args!("{}: TLS handshake failed: {e}", peer.ip));
                return;
            }
        }
    }
    let mut session = Session::new(policy, peer.clone());
    session.set_challenge_seed(challenge_seed());
    server.log(LogLevel::Events, format_args!("connection from {}", peer.ip));
    let mut pending = session.greeting().to_wire();
    let mut reader = Reader {
        buf: vec![],
        discarding: false,
    };
    let mut failures = 0u32;
    loop {
        if !reader.complete_line() && send(&mut conn, &mut pending, &server).await.is_err() {
            return;
        }
        let in_auth = session.in_auth_exchange();
        let next = reader
            .next(
                &mut conn,
                server.limits.max_line,
                server.limits.command_timeout,
                &mut shutdown,
            )
            .await;
        let mut out = match &next {
            Next::Line(l) => {
                server.log(LogLevel::Debug, format_args!("< {}", trace_line(l, in_auth)));
                session.handle(Input::Line(l))
            }
            Next::TooLong => session.handle(Input::LineTooLong),
            Next::Timeout => session.handle(Input::Timeout),
            Next::Shutdown => Output::ReplyThenClose(reply::SHUTTING_DOWN.into()),
            Next::Eof => {
                server.log(
                    LogLevel::Events,
                    format_args!("{}: connection closed by client", peer.ip),
                );
                return;
            }
        };
        // Carry out outputs until the session waits for the client again.
        loop {
            out = match out {
                Output::Nothing => break,
                Output::Reply(r) => {
                    pending.push_str(&r.to_wire());
                    break;
                }
                Output::ReplyThenClose(r) => {
                    pending.push_str(&r.to_wire());
                    let _ = send(&mut conn, &mut pending, &server).await;
                    // TLS says close_notify; a plain connection just closes (dropping it).
                    if matches!(conn, Conn::Tls(_)) {
                        let _ = conn.shutdown().await;
                    }
                    server.log(LogLevel::Events, format_args!("{}: session ended", peer.ip));
                    return;
                }
                Output::ReplyThenStartTls(r) => {
                    pending.push_str(&r.to_wire());
                    if send(&mut conn, &mut pending, &server).await.is_err() {
                        return;
                    }
                    if !reader.buf.is_empty() {
                        // RFC 3207 section 5: nothing sent before the handshake may count after it.
                        server.log(
                            LogLevel::Events,
                            format_args!(
                                "{}: discarded {} bytes pipelined after STARTTLS",
                                peer.ip,
                                reader.buf.len()
                            ),
                        );
                        reader.buf.clear();
                    }
                    let Some(tls) = &server.tls else { return };
                    let plain = match conn {
                        Conn::Plain(s) => s,
                        Conn::Tls(_) => return,
                    };
                    match tokio::time::timeout(server.limits.command_timeout, tls.acceptor().accept(plain)).await {
                        Ok(Ok(t)) => conn = Conn::Tls(Box::new(t)),
                        _ => {
                            server.log(LogLevel::Events, format_args!("{}: STARTTLS handshake failed", peer.ip));
                            return;
                        }
                    }
                    session.handle(Input::TlsEstablished)
                }
                Output::ReplyThenData(r) => {
                    pending.push_str(&r.to_wire());
                    if send(&mut conn, &mut pending, &server).await.is_err() {
                        return;
                    }
                    match receive_data(&mut conn, &mut reader, &session, &server, &mut shutdown).await {
                        Some((problem, spool)) => {
                            let now = crate::clock::now().unwrap_or(0);
                            match session.handle(Input::DataDone { problem, now }) {
                                Output::Deliver(env) => {
                                    let ready = match server.delivery.route(&env, spool) {
                                        Route::Ready(r) => r,
                                        Route::Blocking(job) => {
                                            let (srv, env2) = (server.clone(), env.clone());
                                            tokio::task::spawn_blocking(move || srv.delivery.run(&env2, job))
                                                .await
                                                .unwrap_or_else(|e| {
                                                    Ready::Done(DeliveryOutcome::Transient(format!(
                                                        "delivery crashed: {e}"
                                                    )))
                                                })
                                        }
                                    };
                                    let outcome = match ready {
                                        Ready::Send(outgoing) => outgoing.send().await,
                                        Ready::Done(outcome) => outcome,
                                    };
                                    server.log(
                                        LogLevel::Events,
                                        format_args!(
                                            "{}: user {} to {}: {outcome:?}",
                                            peer.ip,
                                            env.user,
                                            env.recipients.join(",")
                                        ),
                                    );
                                    session.handle(Input::Delivered(outcome))
                                }
                                other => other,
                            }
                        }
                        None => return,
                    }
                }
                Output::Authenticate(attempt) => {
                    let now = Instant::now();
                    let allowed = server.budget.lock().expect("lock").allows(peer_ip, &attempt.user, now);
                    let outcome = if allowed {
                        let (outcome, trail) = match server.chain.check_quickly(&attempt.user, &attempt.secret) {
                            Some(answer) => answer,
                            None => {
                                let (srv, a) = (server.clone(), attempt.clone());
                                tokio::task::spawn_blocking(move || srv.chain.check_from(&a.user, &a.secret, local))
                                    .await
                                    .unwrap_or((AuthOutcome::Temporary, vec![]))
                            }
                        };
                        for (source, verdict) in trail {
                            let v = match verdict {
                                Verdict::Accepted => "accepted".to_string(),
                                Verdict::Denied => "denied".to_string(),
                                Verdict::Unavailable(why) => format!("unavailable ({why})"),
                            };
                            server.log(
                                LogLevel::Events,
                                format_args!("{}: auth {:?} via {source}: {v}", peer.ip, attempt.user),
                            );
                        }
                        outcome
                    } else {
                        server.log(
                            LogLevel::Events,
                            format_args!("{}: auth {:?} refused: too many recent failures", peer.ip, attempt.user),
                        );
                        AuthOutcome::Denied
                    };
                    {
                        let mut budget = server.budget.lock().expect("lock");
                        match outcome {
                            AuthOutcome::Accepted => budget.succeeded(&attempt.user),
                            AuthOutcome::Denied => {
                                budget.failed(peer_ip, &attempt.user, now);
                                failures += 1;
                            }
                            AuthOutcome::Temporary => {}
                        }
                    }
                    if outcome == AuthOutcome::Denied {
                        // Slow down guessing: each failure in a session waits longer. Counted
                        // from the start of the attempt, so an unknown user (answered at once)
                        // and a wrong password (a slow hash) take the same time.
                        tokio::time::sleep_until((now + server.failure_delay * failures).into()).await;
                    }
                    session.handle(Input::AuthResult(outcome))
                }
                Output::Deliver(_) => unreachable!("delivery follows DataDone"),
            };
        }
    }
}

/// Read DATA into the spool: memory while it is small, an unlinked temporary file once
/// it grows past [`crate::message::SPOOL_MEM`]. Returns the decoder's verdict and the
/// spool, or `None` if the connection failed.
async fn receive_data<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    reader: &mut Reader,
    session: &Session,
    server: &Server,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(Option<crate::smtp::data::Problem>, Spooled)> {
    let mut decoder = Decoder::new(session.max_size(), server.limits.max_data_line);
    let mut mem: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut file: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut out = Vec::new();
    // Read into the session's own buffer, which keeps its capacity between messages and
    // is never zeroed: a fresh 64 KiB buffer per message showed up as page faults.
    let mut input = std::mem::take(&mut reader.buf);
    let store = |bytes: &[u8], mem: &mut Vec<u8>, file: &mut Option<std::io::BufWriter<std::fs::File>>| -> Option<()> {
        if file.is_none() && mem.len() + bytes.len() > crate::message::SPOOL_MEM {
            let mut f = std::io::BufWriter::new(tempfile::tempfile().ok()?);
            f.write_all(mem).ok()?;
            mem.clear();
            *file = Some(f);
        }
        match file {
            Some(f) => f.write_all(bytes).ok(),
            None => {
                mem.extend_from_slice(bytes);
                Some(())
            }
        }
    };
    loop {
        // Decoded text is never longer than its input (plus a CR held from the last read).
        let end = if file.is_none() && mem.len() + input.len() < crate::message::SPOOL_MEM {
            decoder.feed(&input, &mut mem)
        } else {
            out.clear();
            let end = decoder.feed(&input, &mut out);
            store(&out, &mut mem, &mut file)?;
            end
        };
        if let Some(used) = end {
            // The rest belongs to the next command.
            input.drain(..used);
            if input.capacity() > READ_BUFFER {
                input.shrink_to(READ_BUFFER);
            }
            reader.buf = input;
            let spooled = match file {
                None => Spooled::Memory(mem),
                Some(f) => {
                    let mut f = f.into_inner().ok()?;
                    f.seek(std::io::SeekFrom::Start(0)).ok()?;
                    Spooled::File(f)
                }
            };
            return Some((decoder.problem(), spooled));
        }
        input.clear();
        input.reserve(DATA_READ);
        tokio::select! {
            r = tokio::time::timeout(server.limits.data_timeout, conn.read_buf(&mut input)) => match r {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            },
            // Finish a message in progress rather than cut it off; the shutdown grace
            // period bounds how long that may take.
            _ = shutdown.changed() => {}
        };
    }
}

/// A CRAM-MD5 challenge seed per session: a counter hashed with a key drawn from the
/// system's randomness once per process (unique and unguessable, without a system
/// call per connection).
fn challenge_seed() -> u64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    KEY.get_or_init(std::hash::RandomState::new)
        .hash_one((n, random_base()))
}

/// Drawn once per process.
fn random_base() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(random_u64)
}

/// Randomness from the system.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    }
    u64::from_ne_bytes(b)
}

/// A closed reply for a client over the connection limit (not used while we defer).
pub fn too_many() -> Reply {
    reply::TOO_MANY_CONNECTIONS.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_seeds_do_not_repeat() {
        let seeds: std::collections::HashSet<u64> = (0..10_000).map(|_| challenge_seed()).collect();
        assert_eq!(seeds.len(), 10_000);
        // Not a plain counter: consecutive seeds differ in many bits.
        let (a, b) = (challenge_seed(), challenge_seed());
        assert!((a ^ b).count_ones() > 8, "{a:x} {b:x}");
    }

    #[test]
    fn budget_limits_per_ip_and_user_separately() {
        let mut b = Budget::new(Duration::from_secs(600), 2, 2);
        let t = Instant::now();
        let ip: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let other: Option<IpAddr> = Some("192.0.2.2".parse().unwrap());
        assert!(b.allows(ip, "alice", t));
        b.failed(ip, "alice", t);
        b.failed(other, "Alice", t);
        assert!(
            !b.allows(Some("192.0.2.9".parse().unwrap()), "ALICE", t),
            "user budget spans addresses"
        );
        assert!(b.allows(ip, "bob", t));
        b.failed(ip, "bob", t);
        assert!(!b.allows(ip, "carol", t), "address budget spans users");
        assert!(b.allows(ip, "carol", t + Duration::from_secs(601)), "failures expire");
        b.succeeded("alice");
        assert!(b.allows(other, "alice", t));
    }

    #[test]
    fn trace_redaction() {
        assert_eq!(
            trace_line(b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=", false),
            "AUTH PLAIN <redacted>"
        );
        assert_eq!(trace_line(b"AUTH LOGIN", false), "AUTH LOGIN");
        assert_eq!(trace_line(b"d29uZGVybGFuZA==", true), "<AUTH data redacted>");
        assert_eq!(trace_line(b"MAIL FROM:<a@b>", false), "MAIL FROM:<a@b>");
    }
}
