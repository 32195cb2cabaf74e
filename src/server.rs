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
use crate::budget::{Decision, Guard};
use crate::delivery::{Delivery, Ready, Route, Spooled};
use crate::smtp::data::Decoder;
use crate::smtp::reply;
use crate::smtp::session::{AuthOutcome, DeliveryOutcome, Peer};
use crate::smtp::{Input, Output, Policy, Reply, Session, TlsMode};
use crate::syslog::field;
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
    /// For a whole command line (not restarted by each byte: Postfix's
    /// smtpd_per_record_deadline).
    pub command_timeout: Duration,
    /// For DATA to start flowing; each byte received extends it by 1/`min_data_rate`
    /// of a second (Postfix's smtpd_min_data_rate).
    pub data_timeout: Duration,
    pub min_data_rate: u64,
    /// For a TLS handshake (implicit or after STARTTLS).
    pub tls_timeout: Duration,
    /// For the whole session until it has authenticated.
    pub unauth_timeout: Duration,
    /// Connections at once from one client address (over it: 421).
    pub per_ip_connections: usize,
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
            min_data_rate: 500,
            tls_timeout: Duration::from_secs(30),
            unauth_timeout: Duration::from_secs(60),
            per_ip_connections: 10,
            max_line: 512,
            max_data_line: 64 * 1024,
        }
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
    /// AUTH only over TLS (`--tls-auth-only`).
    pub tls_auth_only: bool,
    pub log: LogLevel,
    /// Where log lines go.
    pub sink: LogSink,
    /// Failed AUTH attempts per client address and per user, across connections.
    pub guard: Guard,
    /// Delay before answering a refused or undecided AUTH, per such attempt so far in
    /// the session.
    pub failure_delay: Duration,
    /// Connections open per client address.
    pub per_ip: PerIp,
    /// Peers that must start with a PROXY header (`--proxy-protocol`).
    pub proxy: crate::proxy::Trusted,
}

/// Where `ofmipd` logs.
pub enum LogSink {
    /// Standard error, `tmda-ofmipd[PID]: ` before each line.
    Stderr,
    /// syslog, facility mail (`--syslog`, the default when detached).
    Syslog(crate::syslog::Syslog),
}

/// Connections open per client address, for `Limits::per_ip_connections`.
#[derive(Default)]
pub struct PerIp {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One counted connection; uncounted when dropped.
pub struct PerIpSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerIp {
    /// Count a connection from `ip`, unless `max` are open already.
    pub fn enter(&self, ip: IpAddr, max: usize) -> Option<PerIpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            if *n == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(PerIpSlot {
            open: self.open.clone(),
            ip,
        })
    }

    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Server {
    /// `msg` is formatted only when the line is logged (pass `format_args!`). One event is
    /// one line: control characters (a client's bytes, a multi-line error) are escaped,
    /// so nothing a client sends can start a log line of its own.
    pub fn log(&self, level: LogLevel, msg: impl std::fmt::Display) {
        if self.log >= level && level > LogLevel::Quiet {
            let severity = match level {
                LogLevel::Debug => crate::syslog::Severity::Debug,
                _ => crate::syslog::Severity::Info,
            };
            self.write_log(severity, msg);
        }
    }

    /// A problem the operator must hear of, logged even without `-L`.
    pub fn error(&self, msg: impl std::fmt::Display) {
        self.write_log(crate::syslog::Severity::Err, msg);
    }

    fn write_log(&self, severity: crate::syslog::Severity, msg: impl std::fmt::Display) {
        {
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
            match &self.sink {
                LogSink::Stderr => eprintln!("tmda-ofmipd[{}]: {text}", std::process::id()),
                LogSink::Syslog(s) => s.send(severity, &text),
            }
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
            tls_auth_only: self.tls_auth_only,
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
    /// A whole line over the limit arrived: refused, and the session goes on.
    TooLong,
    /// A line kept growing past the limit: answered and the connection closed, rather
    /// than read to its end (a 10 MB line used to be read without a reply).
    Overflow,
    Eof,
    Timeout,
    Shutdown,
}

/// What a session reads at a time between messages, and keeps allocated.
const READ_BUFFER: usize = 4096;
/// What it reads at a time during DATA.
const DATA_READ: usize = 64 * 1024;
/// AUTH lines may be longer than other commands (RFC 4954 section 4: 12288 octets).
const AUTH_LINE: usize = 12288;

/// The limit for a line that starts with `start` (so far).
fn line_limit(start: &[u8], max: usize) -> usize {
    if start.len() >= 5 && start[..5].eq_ignore_ascii_case(b"AUTH ") {
        max.max(AUTH_LINE)
    } else {
        max
    }
}

/// Buffered line reading with a length limit that never buffers an overlong line.
struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    fn complete_line(&self) -> bool {
        memchr::memchr(b'\n', &self.buf).is_some()
    }

    /// The next line, which must be complete by `deadline`.
    async fn next<S: AsyncRead + Unpin>(
        &mut self,
        conn: &mut S,
        max: usize,
        deadline: tokio::time::Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Next {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf) {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() + 2 > line_limit(&line, max) {
                    return Next::TooLong;
                }
                return Next::Line(line);
            }
            if self.buf.len() > line_limit(&self.buf, max) {
                return Next::Overflow;
            }
            self.buf.reserve(READ_BUFFER);
            let read = tokio::select! {
                r = tokio::time::timeout_at(deadline, conn.read_buf(&mut self.buf)) => r,
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

async fn send<S: AsyncWrite + Unpin>(
    conn: &mut S,
    pending: &mut String,
    server: &Server,
    client: &str,
) -> std::io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    trace_sent(server, client, pending);
    conn.write_all(pending.as_bytes()).await?;
    conn.flush().await?;
    pending.clear();
    Ok(())
}

fn trace_sent(server: &Server, client: &str, replies: &str) {
    if server.log >= LogLevel::Debug {
        for l in replies.lines() {
            server.log(LogLevel::Debug, format_args!("client={client} > {l}"));
        }
    }
}

/// Send the last replies and close. Over TLS the replies and close_notify go out in one
/// write, and the connection is then dropped as a plain one is.
async fn send_last<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    pending: &mut String,
    server: &Server,
    client: &str,
) {
    if let Conn::Tls(t) = conn
        && pending.len() <= 16 * 1024
    {
        use std::io::Write as _;
        let tls = t.get_mut().1;
        trace_sent(server, client, pending);
        // It fits: rustls buffers 64 KiB, and `send` left nothing waiting in it.
        let _ = tls.writer().write_all(pending.as_bytes());
        pending.clear();
        tls.send_close_notify();
        let _ = conn.flush().await;
        return;
    }
    let _ = send(conn, pending, server, client).await;
    if matches!(conn, Conn::Tls(_)) {
        let _ = conn.shutdown().await;
    }
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
    mut stream: S,
    peer: Peer,
    local: Option<IpAddr>,
    server: Arc<Server>,
    mut shutdown: watch::Receiver<bool>,
) {
    let started = tokio::time::Instant::now();
    let handshake_timeout = server.limits.tls_timeout.min(server.limits.command_timeout);
    let mut peer_ip: Option<IpAddr> = peer.ip.parse().ok();
    let (mut peer, mut local) = (peer, local);
    // A trusted proxy says first whose connection this is (--proxy-protocol).
    let mut _slot = None;
    if let Some(proxy_ip) = peer_ip
        && server.proxy.expects_header(proxy_ip)
    {
        match crate::proxy::read_header(&mut stream, started + handshake_timeout).await {
            Ok(crate::proxy::Origin::Proxied { client, server: dst }) => {
                let ip = crate::proxy::canonical(client.ip());
                // The cap the accept loop could not apply: it saw only the proxy.
                let Some(slot) = server.per_ip.enter(ip, server.limits.per_ip_connections) else {
                    server.log(
                        LogLevel::Events,
                        format_args!(
                            "client={ip} proxy={proxy_ip} event=refused reason=\"too many connections from this address\""
                        ),
                    );
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        stream.write_all(too_many().to_wire().as_bytes()),
                    )
                    .await;
                    return;
                };
                _slot = Some(slot);
                peer = Peer {
                    ip: ip.to_string(),
                    name: None,
                };
                peer_ip = Some(ip);
                local = Some(crate::proxy::canonical(dst.ip()));
            }
            Ok(crate::proxy::Origin::Local) => {}
            Err(e) => {
                server.log(
                    LogLevel::Events,
                    format_args!("proxy={proxy_ip} event=disconnect reason={}", field(&e.to_string())),
                );
                return;
            }
        }
    }
    let policy = server.policy(peer_ip);
    let implicit = policy.tls == TlsMode::Implicit;
    let mut session = Session::new(policy, peer.clone());
    session.set_challenge_seed(challenge_seed());
    let mut pending = session.greeting().to_wire();
    let mut conn = Conn::Plain(stream);
    let mut greeting_queued = false;
    if implicit {
        let Some(tls) = &server.tls else { return };
        let plain = match conn {
            Conn::Plain(s) => s,
            Conn::Tls(_) => return,
        };
        // The greeting waits in the TLS session and goes out with the handshake's last
        // flight (TLS 1.3: the session tickets), one write fewer per connection.
        let queue = |c: &mut rustls::ServerConnection| {
            use std::io::Write as _;
            // rustls buffers up to 64 KiB before the handshake; if not, `send` sends it.
            greeting_queued = c.writer().write_all(pending.as_bytes()).is_ok();
        };
        // A silent socket must not hold a connection slot for longer than this.
        match tokio::time::timeout(handshake_timeout, tls.acceptor().accept_with(plain, queue)).await {
            Ok(Ok(t)) => conn = Conn::Tls(Box::new(t)),
            Ok(Err(e)) => {
                server.log(
                    LogLevel::Events,
                    format_args!(
                        "client={} event=tls-failed reason={}",
                        peer.ip,
                        field(&format!("TLS handshake failed: {e}"))
                    ),
                );
                return;
            }
            Err(_) => {
                server.log(
                    LogLevel::Events,
                    format_args!("client={} event=tls-failed reason=\"TLS handshake timed out\"", peer.ip),
                );
                return;
            }
        }
    }
    server.log(LogLevel::Events, format_args!("client={} event=connect", peer.ip));
    if greeting_queued {
        trace_sent(&server, &peer.ip, &pending);
        pending.clear();
    }
    let mut reader = Reader { buf: vec![] };
    let mut failures = 0u32;
    // Until it has authenticated, a session has this long in all.
    let unauth_deadline = started + server.limits.unauth_timeout;
    let mut seen_line = false;
    loop {
        if !reader.complete_line() && send(&mut conn, &mut pending, &server, &peer.ip).await.is_err() {
            return;
        }
        let in_auth = session.in_auth_exchange();
        let mut deadline = tokio::time::Instant::now() + server.limits.command_timeout;
        if session.user().is_none() {
            deadline = deadline.min(unauth_deadline);
        }
        let max = if in_auth { AUTH_LINE } else { server.limits.max_line };
        let next = reader.next(&mut conn, max, deadline, &mut shutdown).await;
        let first_line = !seen_line;
        seen_line |= matches!(next, Next::Line(_));
        let mut out = match &next {
            // A PROXY header from a peer not trusted to send one: never believed.
            Next::Line(l)
                if first_line
                    && (l.starts_with(b"PROXY ")
                        || (l.is_empty() && crate::proxy::looks_like_header(&[b"\r\n", &reader.buf[..]].concat()))) =>
            {
                server.log(
                    LogLevel::Events,
                    format_args!(
                        "client={} event=refused reason=\"PROXY header from an address not named by --proxy-protocol\"",
                        peer.ip
                    ),
                );
                Output::ReplyThenClose(reply::PROXY_NOT_TRUSTED.into())
            }
            Next::Line(l) => {
                // Not built unless traced (arguments of format_args! are evaluated).
                if server.log >= LogLevel::Debug {
                    server.log(
                        LogLevel::Debug,
                        format_args!("client={} < {}", peer.ip, trace_line(l, in_auth)),
                    );
                }
                session.handle(Input::Line(l))
            }
            Next::TooLong => session.handle(Input::LineTooLong),
            Next::Overflow => {
                server.log(
                    LogLevel::Events,
                    format_args!(
                        "client={} event=disconnect reason=\"command line over {max} octets\"",
                        peer.ip
                    ),
                );
                Output::ReplyThenClose(reply::LINE_TOO_LONG.into())
            }
            Next::Timeout => {
                server.log(LogLevel::Events, format_args!("client={} event=timeout", peer.ip));
                session.handle(Input::Timeout)
            }
            Next::Shutdown => Output::ReplyThenClose(reply::SHUTTING_DOWN.into()),
            Next::Eof => {
                server.log(
                    LogLevel::Events,
                    format_args!("client={} event=disconnect reason=\"closed by the client\"", peer.ip),
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
                    send_last(&mut conn, &mut pending, &server, &peer.ip).await;
                    server.log(LogLevel::Events, format_args!("client={} event=disconnect", peer.ip));
                    return;
                }
                Output::ReplyThenStartTls(r) => {
                    pending.push_str(&r.to_wire());
                    if send(&mut conn, &mut pending, &server, &peer.ip).await.is_err() {
                        return;
                    }
                    if !reader.buf.is_empty() {
                        // RFC 3207 section 5: nothing sent before the handshake may count after it.
                        server.log(
                            LogLevel::Events,
                            format_args!(
                                "client={} event=starttls discarded={} reason=\"bytes pipelined after STARTTLS\"",
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
                    match tokio::time::timeout(handshake_timeout, tls.acceptor().accept(plain)).await {
                        Ok(Ok(t)) => conn = Conn::Tls(Box::new(t)),
                        _ => {
                            server.log(
                                LogLevel::Events,
                                format_args!(
                                    "client={} event=tls-failed reason=\"STARTTLS handshake failed\"",
                                    peer.ip
                                ),
                            );
                            return;
                        }
                    }
                    session.handle(Input::TlsEstablished)
                }
                Output::ReplyThenData(r) => {
                    pending.push_str(&r.to_wire());
                    if send(&mut conn, &mut pending, &server, &peer.ip).await.is_err() {
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
                                    log_delivery(&server, &peer.ip, &env, &outcome);
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
                    let unix = crate::clock::now().unwrap_or(0);
                    let decision = server.guard.check(peer_ip, &attempt.user, unix).unwrap_or_else(|e| {
                        server.error(format_args!(
                            "client={} event=error reason={}",
                            peer.ip,
                            field(&format!("guessing budget unusable: {e}"))
                        ));
                        Decision::Ask
                    });
                    let outcome = match decision {
                        Decision::Ask => {
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
                                let (v, why) = match verdict {
                                    Verdict::Accepted => ("accepted", String::new()),
                                    Verdict::Denied => ("denied", String::new()),
                                    Verdict::Unavailable(why) => ("unavailable", format!(" reason={}", field(&why))),
                                };
                                server.log(
                                    LogLevel::Events,
                                    format_args!(
                                        "client={} login={} auth={v} source={}{why}",
                                        peer.ip,
                                        field(&attempt.user),
                                        field(&source.to_string())
                                    ),
                                );
                            }
                            outcome
                        }
                        Decision::RefuseAddress | Decision::RefuseUser => {
                            let whose = if decision == Decision::RefuseAddress {
                                "this address"
                            } else {
                                "this user from an address that has been failing"
                            };
                            server.log(
                                LogLevel::Events,
                                format_args!(
                                    "client={} login={} auth=refused reason={}",
                                    peer.ip,
                                    field(&attempt.user),
                                    field(&format!("too many recent failures for {whose}"))
                                ),
                            );
                            AuthOutcome::Denied
                        }
                    };
                    let record = match (decision, outcome) {
                        (Decision::RefuseAddress, _) => crate::budget::Outcome::Nothing,
                        (Decision::RefuseUser, _) => crate::budget::Outcome::AddressOnly,
                        (Decision::Ask, AuthOutcome::Accepted) => crate::budget::Outcome::Accepted,
                        (Decision::Ask, AuthOutcome::Denied) => crate::budget::Outcome::Denied,
                        (Decision::Ask, AuthOutcome::Temporary) => crate::budget::Outcome::AddressOnly,
                    };
                    if let Err(e) = server.guard.record(peer_ip, &attempt.user, record, unix) {
                        server.error(format_args!(
                            "client={} event=error reason={}",
                            peer.ip,
                            field(&format!("guessing budget unusable: {e}"))
                        ));
                    }
                    if outcome != AuthOutcome::Accepted {
                        // Slow down guessing: each refused or undecided attempt in a session
                        // waits longer. Counted from the start of the attempt, so an unknown
                        // user (answered at once) and a wrong password (a slow hash) take the
                        // same time, and so does an auth server that is down.
                        failures += 1;
                        let until = now + server.failure_delay * failures;
                        // A timer, even one already due, costs a tick of the timer wheel.
                        if until > Instant::now() {
                            tokio::time::sleep_until(until.into()).await;
                        }
                    }
                    session.handle(Input::AuthResult(outcome))
                }
                Output::Deliver(_) => unreachable!("delivery follows DataDone"),
            };
        }
    }
}

/// The outcome of a message, one line for the message and, when its copies fared
/// differently, one per recipient.
fn log_delivery(server: &Server, client: &str, env: &crate::smtp::Envelope, outcome: &DeliveryOutcome) {
    if server.log < LogLevel::Events {
        return;
    }
    let id = format!("{:010X}", crate::os::random_u64() & 0xFF_FFFF_FFFF);
    let who = format!("client={client} login={} id={id}", field(&env.user));
    let reason = outcome
        .reason()
        .map(|r| format!(" reason={}", field(&r)))
        .unwrap_or_default();
    let rcpts: Vec<String> = env.recipients.iter().map(|r| format!("<{r}>")).collect();
    server.log(
        LogLevel::Events,
        format_args!(
            "{who} from=<{}> to={} outcome={}{reason}",
            field(&env.mail_from),
            field(&rcpts.join(",")),
            outcome.word()
        ),
    );
    if let DeliveryOutcome::Partial { fates, .. } = outcome {
        for f in fates {
            let what = match &f.failure {
                None => "outcome=delivered".to_string(),
                Some(why) => format!("outcome=failed status={} reason={}", why.status, field(&why.diagnostic)),
            };
            server.log(
                LogLevel::Events,
                format_args!("{who} to={} {what}", field(&format!("<{}>", f.recipient))),
            );
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
    // DATA must keep flowing: the deadline moves on by 1/min_data_rate of a second per
    // byte received, however the bytes are spread (one byte a second no longer holds
    // the connection open for ever).
    let started = tokio::time::Instant::now();
    let mut received: u64 = 0;
    let rate = server.limits.min_data_rate;
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
        let deadline = match received.saturating_mul(1000).checked_div(rate) {
            Some(earned_ms) => started + server.limits.data_timeout + Duration::from_millis(earned_ms),
            // No minimum rate: each read gets the whole timeout.
            None => tokio::time::Instant::now() + server.limits.data_timeout,
        };
        tokio::select! {
            r = tokio::time::timeout_at(deadline, conn.read_buf(&mut input)) => match r {
                Ok(Ok(n)) if n > 0 => received += n as u64,
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
    *BASE.get_or_init(crate::os::random_u64)
}

/// The reply for a client over the per-address connection cap (then the connection closes).
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
