//! The relay client for the common case of a plain SMTP relay (SMTPSSL off) and a
//! message held in memory (up to 1 MB). `ofmipd` runs it on each session's own task:
//! a message's copies go out while the task waits on the socket, instead of handing
//! the message to a blocking thread that sleeps in `recv` for every reply (on a busy
//! server those thread switches cost more than the tagging). `tmda sendmail` runs it
//! on a one-thread runtime. Relays with TLS, and larger messages (streamed from their
//! spool file), use lettre's synchronous client ([`super::Smtp`]).
//!
//! Same behaviour as the synchronous client, plus HELO when EHLO is refused (lettre
//! cannot): AUTH PLAIN or
//! LOGIN with SMTPAUTH_USERNAME/PASSWORD, MAIL, RCPT and DATA pipelined when the relay
//! offers PIPELINING, BODY=8BITMIME for 8-bit content (refused if the relay lacks
//! 8BITMIME), line endings made CRLF and lines starting with a dot doubled, a pool of
//! idle connections, SMTP_MAX_SESSIONS_PER_CONNECTION, a connection dropped after
//! any failure. A pooled connection that turns out to be dead before the relay
//! accepted anything is replaced once, so a relay's idle timeout costs no message.
//!
//! Under load, a message rides behind another: when a connection to the same relay
//! is waiting for its DATA go-ahead, the next message's MAIL, RCPT and DATA are
//! written right behind that message's final dot (RFC 2920 lets message content
//! start a pipelined group), and the connection is handed on once the relay has
//! answered the dot. One write and one read per message instead of two each, on our
//! side and on the relay's; a rider waits no longer than the transaction it follows.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::DeliveryError;
use super::{Batch, Fate, Fates, SendError};
use super::{NO_SMTPUTF8, POOL_CHECK_AFTER, POOL_MAX, POOL_MAX_IDLE};
use crate::config::{SmtpSettings, SmtpTls};
use crate::message::{LineEndings, Message};

/// Whether this client can talk to the relay (TLS relays go through lettre).
pub fn handles(settings: &SmtpSettings) -> bool {
    settings.tls == SmtpTls::None
}

/// Each read and write must finish within this (the synchronous client's value).
const TIMEOUT: Duration = Duration::from_secs(60);
/// A reply longer than this is not SMTP.
const MAX_REPLY: usize = 64 * 1024;

/// The relay's answer: the code and the text of every line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
    }
}

/// Why a step failed, before it is given the relay's name.
#[derive(Debug)]
enum Failure {
    /// The connection broke or timed out (worth retrying later).
    Io(String),
    /// The relay said no.
    Said(Reply),
    /// The relay refused our credentials: deferred, not bounced (as Postfix's
    /// smtp_sasl_auth_soft_bounce), so nothing is lost while the password is fixed.
    AuthRefused(Reply),
    /// A permanent problem on our side of the conversation.
    Unusable(String),
    Refused(String),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Io(e.to_string())
    }
}

struct Conn {
    stream: TcpStream,
    /// Input read but not yet parsed.
    buf: Vec<u8>,
    pipelining: bool,
    eight_bit_mime: bool,
    smtputf8: bool,
    /// Transactions this connection has carried.
    used: u32,
    /// The message whose MAIL, RCPT and DATA went out behind ours: it gets the
    /// connection once the relay has answered our final dot.
    behind: Option<(Rider, Slot)>,
}

struct Idle {
    settings: SmtpSettings,
    conn: Conn,
    since: Instant,
}

static POOL: Mutex<Vec<Idle>> = Mutex::new(Vec::new());

async fn timed<T>(f: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T, Failure> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Failure::Io(format!("no answer within {} s", TIMEOUT.as_secs()))),
    }
}

impl Conn {
    /// A connection nothing is known of yet (before EHLO).
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(1024),
            pipelining: false,
            eight_bit_mime: false,
            smtputf8: false,
            used: 0,
            behind: None,
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        timed(self.stream.write_all(bytes)).await
    }

    /// One reply, possibly of several lines (`250-...` then `250 ...`).
    async fn reply(&mut self) -> Result<Reply, Failure> {
        let mut lines = vec![];
        let mut parsed = 0;
        loop {
            while let Some(end) = memchr::memchr(b'\n', &self.buf[parsed..]) {
                let line = &self.buf[parsed..parsed + end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                parsed += end + 1;
                let code = line
                    .get(..3)
                    .filter(|c| c.iter().all(u8::is_ascii_digit))
                    .and_then(|c| std::str::from_utf8(c).ok()?.parse::<u16>().ok())
                    .filter(|c| (200..600).contains(c));
                let Some(code) = code else {
                    return Err(Failure::Io(format!(
                        "not an SMTP reply: {}",
                        crate::exit::quote(&String::from_utf8_lossy(&line[..line.len().min(80)]))
                    )));
                };
                lines.push(String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned());
                if super::tracing() {
                    super::trace(format_args!("<-- {}", String::from_utf8_lossy(line)));
                }
                if line.get(3) != Some(&b'-') {
                    self.buf.drain(..parsed);
                    return Ok(Reply { code, lines });
                }
            }
            if self.buf.len() > MAX_REPLY {
                return Err(Failure::Io("the relay's reply is too long".into()));
            }
            self.buf.reserve(4096);
            if timed(self.stream.read_buf(&mut self.buf)).await? == 0 {
                return Err(Failure::Io("the relay closed the connection".into()));
            }
        }
    }

    /// A reply with the expected code class (2 for 2xx, 3 for 3xx).
    async fn expect(&mut self, class: u16) -> Result<Reply, Failure> {
        let r = self.reply().await?;
        if r.code / 100 == class {
            Ok(r)
        } else {
            Err(Failure::Said(r))
        }
    }

    async fn command(&mut self, line: &str, class: u16) -> Result<Reply, Failure> {
        if super::tracing() {
            super::trace(format_args!("--> {}", super::redacted(line)));
        }
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.expect(class).await
    }

    /// A line of AUTH data: sent, never shown.
    async fn secret(&mut self, line: &str, class: u16) -> Result<Reply, Failure> {
        super::trace(format_args!("--> <redacted>"));
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.expect(class).await
    }

    async fn open(settings: &SmtpSettings, hello: &str) -> Result<Conn, Failure> {
        super::trace(format_args!("*** connecting to {}:{}", settings.host, settings.port));
        let stream = timed(TcpStream::connect((settings.host.as_str(), settings.port))).await?;
        // Without it the final dot waits for the relay's delayed ACK (40 ms).
        stream.set_nodelay(true)?;
        let mut c = Conn::new(stream);
        c.expect(2).await?;
        let mut auth = String::new();
        match c.command(&format!("EHLO {hello}"), 2).await {
            Ok(r) => {
                for l in r.lines.iter().skip(1) {
                    let mut words = l.split_whitespace();
                    let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
                    match keyword.as_str() {
                        "PIPELINING" => c.pipelining = true,
                        "8BITMIME" => c.eight_bit_mime = true,
                        "SMTPUTF8" => c.smtputf8 = true,
                        "AUTH" => auth = words.collect::<Vec<_>>().join(" ").to_ascii_uppercase(),
                        _ => {}
                    }
                }
            }
            // An old relay without ESMTP.
            Err(Failure::Said(r)) if r.code >= 500 => {
                c.command(&format!("HELO {hello}"), 2).await?;
            }
            Err(e) => return Err(e),
        }
        if let (Some(user), Some(pass)) = (&settings.username, &settings.password) {
            c.authenticate(&auth, user, &pass.0).await.map_err(|f| match f {
                Failure::Said(r) => Failure::AuthRefused(r),
                other => other,
            })?;
        }
        Ok(c)
    }

    /// AUTH PLAIN, else LOGIN, whichever the relay offers (`offered`: its AUTH keywords).
    async fn authenticate(&mut self, offered: &str, user: &str, pass: &str) -> Result<(), Failure> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let offered: Vec<&str> = offered.split_whitespace().collect();
        if offered.contains(&"PLAIN") {
            let token = b64(format!("\0{user}\0{pass}").as_bytes());
            self.command(&format!("AUTH PLAIN {token}"), 2).await?;
        } else if offered.contains(&"LOGIN") {
            self.command("AUTH LOGIN", 3).await?;
            self.secret(&b64(user.as_bytes()), 3).await?;
            self.secret(&b64(pass.as_bytes()), 2).await?;
        } else {
            return Err(Failure::Io(
                "SMTPAUTH_USERNAME is set but the relay offers neither AUTH PLAIN nor AUTH LOGIN".into(),
            ));
        }
        Ok(())
    }

    /// Say goodbye without waiting for the answer (nothing depends on it).
    fn quit(self) {
        let _ = self.stream.try_write(b"QUIT\r\n");
    }

    /// One copy: MAIL, RCPT, DATA and the text. `Err` carries whether the relay had
    /// accepted anything of it yet (false: the same copy can safely go elsewhere).
    /// `sent`: another message's writer already sent `envelope`'s commands. `slot`:
    /// a message may ride behind this one (see [`Slot`]).
    async fn transaction(
        &mut self,
        envelope: &Envelope,
        sent: bool,
        slot: Option<Slot>,
        header: &[u8],
        body: &Body,
    ) -> Result<(), (Failure, bool)> {
        let early = |f: Failure| (f, false);
        if !sent {
            if envelope.eight_bit && !self.eight_bit_mime {
                return Err(early(Failure::Unusable(
                    "the message has 8-bit content but the server does not support 8BITMIME".into(),
                )));
            }
            if envelope.utf8 && !self.smtputf8 {
                return Err(early(Failure::Unusable(NO_SMTPUTF8.into())));
            }
        }
        if sent || self.pipelining {
            if !sent {
                // One write, then all three replies, so the first refusal is the one reported.
                for l in envelope.commands.lines() {
                    super::trace(format_args!("--> {l}"));
                }
                self.send(envelope.commands.as_bytes()).await.map_err(early)?;
            }
            let m = self.reply().await.map_err(early)?;
            let r = self.reply().await.map_err(early)?;
            let d = self.reply().await.map_err(early)?;
            for (reply, class) in [(m, 2), (r, 2), (d, 3)] {
                if reply.code / 100 != class {
                    return Err(early(Failure::Said(reply)));
                }
            }
        } else {
            for (line, class) in envelope.commands.split_terminator("\r\n").zip([2, 2, 3]) {
                self.command(line, class).await.map_err(early)?;
            }
        }
        // From here on the relay may have taken the message even if we see no reply.
        let late = |f: Failure| (f, true);
        let mut crlf = Vec::with_capacity(header.len() + header.len() / 16 + 64);
        LineEndings::default().to_crlf(header, &mut crlf);
        let head = stuffed(crlf);
        let rider = slot.and_then(Slot::take_rider);
        let next: &[u8] = rider.as_ref().map_or(b"", |(r, _)| r.commands.as_bytes());
        super::trace(format_args!(
            "--> ({} bytes of message text)\n--> .",
            head.len() + body.wire.len()
        ));
        // Header, body, final dot (and a rider's commands) in one system call.
        let sent = self.send_parts(&[&head, &body.wire, b".\r\n", next]).await;
        // Dropped with the connection if anything fails, which sends the rider elsewhere.
        self.behind = rider;
        sent.map_err(late)?;
        self.expect(2).await.map_err(late)?;
        Ok(())
    }

    /// Give the connection to the message riding behind, if there is one; else
    /// return it.
    fn hand_on(mut self) -> Option<Conn> {
        let Some((rider, slot)) = self.behind.take() else {
            return Some(self);
        };
        if let Err(Some((conn, _slot))) = rider.reply.send(Some((self, slot))) {
            // The rider has gone (its session ended): its replies are still due.
            conn.quit();
        }
        None
    }

    async fn send_parts(&mut self, parts: &[&[u8]]) -> Result<(), Failure> {
        use std::io::IoSlice;
        let mut slices: Vec<IoSlice> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut bufs = &mut slices[..];
        while !bufs.is_empty() {
            let n = timed(self.stream.write_vectored(bufs)).await?;
            if n == 0 {
                return Err(Failure::Io("the relay stopped taking data".into()));
            }
            IoSlice::advance_slices(&mut bufs, n);
        }
        Ok(())
    }
}

/// The body as it goes on the wire (CRLF, dot-stuffed, ending in CRLF), made once
/// per message and shared by its copies. Only for messages held in memory anyway
/// (up to [`crate::message::SPOOL_MEM`]); larger ones go through the streaming client.
struct Body {
    wire: Vec<u8>,
    eight_bit: bool,
}

impl Body {
    fn of(msg: &Message) -> std::io::Result<Body> {
        // Room for a CR per line of 16 bytes or longer, so converting rarely reallocates.
        let len = msg.body_len() as usize;
        let mut crlf = Vec::with_capacity(len + len / 16 + 64);
        let mut endings = LineEndings::default();
        msg.for_each_body_chunk(|c| {
            endings.to_crlf(c, &mut crlf);
            Ok(())
        })?;
        endings.finish(&mut crlf, true);
        if !crlf.is_empty() && !crlf.ends_with(b"\r\n") {
            crlf.extend_from_slice(b"\r\n");
        }
        Ok(Body {
            eight_bit: !crlf.is_ascii(),
            wire: stuffed(crlf),
        })
    }
}

/// `crlf` dot-stuffed, without a copy when no line starts with a dot (the usual case).
fn stuffed(crlf: Vec<u8>) -> Vec<u8> {
    if crlf.first() != Some(&b'.') && memchr::memmem::find(&crlf, b"\n.").is_none() {
        return crlf;
    }
    let mut out = Vec::with_capacity(crlf.len() + 64);
    dot_stuff(&crlf, &mut out);
    out
}

/// RFC 5321 section 4.5.2: every line of the text that starts with a dot gets one
/// more. `crlf` starts at the beginning of a line and has only CRLF line endings.
fn dot_stuff(crlf: &[u8], out: &mut Vec<u8>) {
    out.reserve(crlf.len() + 16);
    if crlf.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut start = 0;
    for i in memchr::memmem::find_iter(crlf, b"\n.") {
        out.extend_from_slice(&crlf[start..=i]);
        out.push(b'.');
        start = i + 1;
    }
    out.extend_from_slice(&crlf[start..]);
}

/// A copy's MAIL, RCPT and DATA commands, checked and formatted once.
struct Envelope {
    commands: String,
    eight_bit: bool,
    utf8: bool,
}

impl Envelope {
    fn of(copy: &super::Envelope<'_>, header: &[u8], body: &Body) -> Result<Envelope, Failure> {
        let sender = match copy.sender {
            "" | "<>" => String::new(),
            s => lettre::Address::from_str(s)
                .map_err(|e| {
                    Failure::Refused(format!(
                        "envelope sender {} is not a valid address: {e}",
                        crate::exit::quote(s)
                    ))
                })?
                .to_string(),
        };
        let rcpt = lettre::Address::from_str(copy.recipient)
            .map_err(|e| {
                Failure::Refused(format!(
                    "recipient {} is not a valid address: {e}",
                    crate::exit::quote(copy.recipient)
                ))
            })?
            .to_string();
        let eight_bit = body.eight_bit || !header.is_ascii();
        let mut commands = format!("MAIL FROM:<{sender}>");
        if eight_bit {
            commands.push_str(" BODY=8BITMIME");
        }
        if copy.utf8 {
            commands.push_str(" SMTPUTF8");
        }
        commands.push_str(&format!("\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"));
        Ok(Envelope {
            commands,
            eight_bit,
            utf8: copy.utf8,
        })
    }
}

/// A message waiting to ride behind another on a busy connection.
struct Rider {
    commands: String,
    /// The connection, with the rider's commands sent, and the rider's own slot;
    /// `None` or a dropped sender: go another way.
    reply: oneshot::Sender<Option<(Conn, Slot)>>,
}

/// Riders waiting for connections to one relay, and how many transactions on such
/// connections will still come to the point where a rider can get on.
struct Lane {
    settings: SmtpSettings,
    coming: usize,
    riders: VecDeque<Rider>,
}

/// Lanes are never removed (one per relay and login a server uses), so a lane's
/// index names it for good.
static LANES: Mutex<Vec<Lane>> = Mutex::new(Vec::new());

/// `f` on the lane for `settings` (made if new), and the lane's index.
fn with_lane<T>(settings: &SmtpSettings, f: impl FnOnce(&mut Lane) -> T) -> Option<(usize, T)> {
    let mut lanes = LANES.lock().ok()?;
    let i = match lanes.iter().position(|l| l.settings == *settings) {
        Some(i) => i,
        None => {
            lanes.push(Lane {
                settings: settings.clone(),
                coming: 0,
                riders: VecDeque::new(),
            });
            lanes.len() - 1
        }
    };
    Some((i, f(&mut lanes[i])))
}

fn with_lane_at<T>(i: usize, f: impl FnOnce(&mut Lane) -> T) -> Option<T> {
    LANES.lock().ok()?.get_mut(i).map(f)
}

/// A promise that a transaction will offer a ride: taken before its commands go
/// out, kept until its DATA go-ahead (or its failure). Dropping it without a rider
/// sends away riders that no remaining transaction will take.
struct Slot {
    lane: usize,
}

impl Slot {
    fn new(settings: &SmtpSettings) -> Option<Slot> {
        let (lane, ()) = with_lane(settings, |l| l.coming += 1)?;
        Some(Slot { lane })
    }

    /// The first waiting rider, who inherits this slot (its transaction will offer a
    /// ride in turn).
    fn take_rider(self) -> Option<(Rider, Slot)> {
        // Skipping riders that gave up waiting (their session ended).
        let rider = with_lane_at(self.lane, |l| {
            std::iter::from_fn(|| l.riders.pop_front()).find(|r| !r.reply.is_closed())
        })
        .flatten()?;
        Some((rider, self))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let extra = with_lane_at(self.lane, |l| {
            l.coming = l.coming.saturating_sub(1);
            let keep = l.riders.len().min(l.coming);
            l.riders.split_off(keep)
        });
        for r in extra.into_iter().flatten() {
            let _ = r.reply.send(None);
        }
    }
}

/// Wait to ride behind a transaction already under way to this relay, if one will
/// take a rider; `Some`: the connection, with `envelope`'s commands sent.
async fn ride(settings: &SmtpSettings, envelope: &Envelope) -> Option<(Conn, Slot)> {
    if envelope.eight_bit || envelope.utf8 {
        // Depends on what the connection offers: not for a blind ride.
        return None;
    }
    let (tx, rx) = oneshot::channel();
    let (_, joined) = with_lane(settings, |l| {
        let room = l.riders.len() < l.coming;
        if room {
            l.riders.push_back(Rider {
                commands: envelope.commands.clone(),
                reply: tx,
            });
        }
        room
    })?;
    if !joined {
        return None;
    }
    rx.await.ok().flatten()
}

/// A usable idle connection to this relay with these credentials, if the pool has one.
async fn take_pooled(settings: &SmtpSettings) -> Option<Conn> {
    loop {
        let idle = {
            let mut pool = POOL.lock().ok()?;
            let i = pool.iter().position(|x| x.settings == *settings)?;
            pool.swap_remove(i)
        };
        let mut conn = idle.conn;
        let age = idle.since.elapsed();
        if age > POOL_MAX_IDLE {
            conn.quit();
            continue;
        }
        if age > POOL_CHECK_AFTER {
            let alive = tokio::time::timeout(Duration::from_secs(5), conn.command("NOOP", 2)).await;
            if !matches!(alive, Ok(Ok(_))) {
                continue;
            }
        }
        return Some(conn);
    }
}

fn put_back(settings: &SmtpSettings, conn: Conn) {
    let max = settings.max_sessions_per_connection;
    let worn_out = max > 0 && conn.used >= max;
    if !worn_out
        && let Ok(mut pool) = POOL.lock()
        && pool.len() < POOL_MAX
    {
        pool.push(Idle {
            settings: settings.clone(),
            conn,
            since: Instant::now(),
        });
        return;
    }
    conn.quit();
}

/// QUIT idle connections unused for longer than 30 seconds (they would not be
/// used again anyway).
pub fn close_idle() {
    for i in super::take_stale(&POOL, |i: &Idle| i.since, POOL_MAX_IDLE) {
        i.conn.quit();
    }
}

/// QUIT every idle connection (at shutdown).
pub fn close_pool() {
    let idle: Vec<Idle> = POOL.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
    for i in idle {
        i.conn.quit();
    }
}

fn delivery_error(settings: &SmtpSettings, f: Failure) -> DeliveryError {
    let server = format!("{}:{}", settings.host, settings.port);
    match f {
        Failure::Io(message) => DeliveryError::Smtp {
            server,
            message,
            transient: true,
            code: None,
        },
        Failure::Said(r) => DeliveryError::Smtp {
            server,
            message: r.text(),
            // Anything but a 5xx (a 4xx, or a 2xx/3xx where it makes no sense) may work later.
            transient: r.code < 500,
            code: Some(r.code),
        },
        Failure::AuthRefused(r) => DeliveryError::Smtp {
            server,
            message: format!("the relay refused SMTPAUTH_USERNAME/SMTPAUTH_PASSWORD: {}", r.text()),
            transient: true,
            code: Some(r.code),
        },
        Failure::Unusable(message) => DeliveryError::Smtp {
            server,
            message,
            transient: false,
            code: None,
        },
        Failure::Refused(m) => DeliveryError::Refused(m),
    }
}

/// Send every copy of `msg` through the relay, whatever became of the ones before it;
/// `Ok` only when the relay accepted all, else every recipient's fate. A relay that
/// cannot be reached (or refuses our login) fails the copies still to send at once,
/// instead of being dialled again for each of them.
pub async fn send<B: Batch>(
    settings: &SmtpSettings,
    hello: &str,
    msg: &Message,
    batch: &B,
) -> Result<(), SendError<B::Error>> {
    let body = Body::of(msg).map_err(SendError::Spool)?;
    let mut fates: Vec<Fate> = Vec::with_capacity(batch.len());
    let mut unreachable: Option<DeliveryError> = None;
    let mut conn: Option<Conn> = None;
    for i in 0..batch.len() {
        let failure = match &unreachable {
            Some(e) => Some(e.clone()),
            None => {
                let last = i + 1 == batch.len();
                let (result, open_failed) = send_copy(settings, hello, msg, batch, i, &body, &mut conn, last)
                    .await
                    .map_err(SendError::Render)?;
                let failure = result.err().map(|f| delivery_error(settings, f));
                if open_failed {
                    unreachable = failure.clone();
                }
                failure
            }
        };
        fates.push(Fate {
            recipient: batch.envelope(i).recipient.to_string(),
            failure,
        });
    }
    if let Some(c) = conn.and_then(Conn::hand_on) {
        put_back(settings, c);
    }
    if fates.iter().any(|f| f.failure.is_some()) {
        return Err(SendError::Delivery(Fates(fates)));
    }
    Ok(())
}

/// One copy over `conn` (taken from a rider's lane, the pool or a new connection, and
/// left there for the next copy when it succeeds). The result, and whether the failure
/// was in opening a connection (which every later copy would meet too).
#[allow(clippy::too_many_arguments)]
async fn send_copy<B: Batch>(
    settings: &SmtpSettings,
    hello: &str,
    msg: &Message,
    batch: &B,
    i: usize,
    body: &Body,
    conn: &mut Option<Conn>,
    last: bool,
) -> Result<(Result<(), Failure>, bool), B::Error> {
    let max = settings.max_sessions_per_connection;
    // Rendered one copy at a time: only this copy's header is held.
    let header = batch.render(i, msg)?;
    let envelope = match Envelope::of(&batch.envelope(i), &header, body) {
        Ok(e) => e,
        Err(f) => return Ok((Err(f), false)),
    };
    if let Some(c) = conn.take_if(|c| max > 0 && c.used >= max) {
        c.quit();
    }
    let mut reused = conn.is_some();
    // Commands already sent (riding), with the slot the ride came with.
    let mut ridden = None;
    if conn.is_none() {
        if let Some((c, slot)) = ride(settings, &envelope).await {
            *conn = Some(c);
            ridden = Some(slot);
        } else {
            *conn = take_pooled(settings).await;
        }
        reused = conn.is_some();
    }
    loop {
        let mut c = match conn.take() {
            Some(c) => c,
            None => match Conn::open(settings, hello).await {
                Ok(c) => c,
                Err(f) => return Ok((Err(f), true)),
            },
        };
        let sent = ridden.is_some();
        // Only a message's last copy gives up the connection to a rider.
        let can_lead = last && c.pipelining && (max == 0 || c.used + 1 < max);
        let slot = match ridden.take() {
            Some(slot) => can_lead.then_some(slot),
            None if can_lead => Slot::new(settings),
            None => None,
        };
        let result = c.transaction(&envelope, sent, slot, &header, body).await;
        c.used += 1;
        match result {
            Ok(()) => {
                *conn = Some(c);
                return Ok((Ok(()), false));
            }
            // A pooled (or ridden) connection the relay had already closed, or is
            // closing (421): once more on a new one.
            Err((Failure::Io(_), false)) if reused => {
                c.quit();
                reused = false;
            }
            Err((Failure::Said(r), false)) if reused && r.code == 421 => {
                c.quit();
                reused = false;
            }
            Err((f, _)) => {
                // The session's state is unknown after a failure: never reuse it.
                c.quit();
                return Ok((Err(f), false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(s: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        dot_stuff(s, &mut out);
        out
    }

    #[test]
    fn dots_at_line_starts_are_doubled() {
        assert_eq!(stuffed(b".\r\n"), b"..\r\n");
        assert_eq!(stuffed(b"a\r\n.b\r\n..c\r\nd.e\r\n"), b"a\r\n..b\r\n...c\r\nd.e\r\n");
        assert_eq!(stuffed(b"no dots\r\n"), b"no dots\r\n");
        assert_eq!(stuffed(b""), b"");
    }

    #[test]
    fn body_wire_form() {
        let m = Message::from_vec(b"Subject: x\n\n.\nbare\rcr\r\n.end".to_vec()).unwrap();
        let b = Body::of(&m).unwrap();
        // A lone dot line must not end DATA; every line ending is CRLF; a final CRLF added.
        assert_eq!(b.wire, b"..\r\nbare\r\ncr\r\n..end\r\n");
        assert!(!b.eight_bit);
        let m = Message::from_vec("Subject: x\n\nCaf\u{e9}\n".as_bytes().to_vec()).unwrap();
        assert!(Body::of(&m).unwrap().eight_bit);
        let m = Message::from_vec(b"Subject: x\n\n".to_vec()).unwrap();
        assert_eq!(Body::of(&m).unwrap().wire, b"");
    }

    async fn reply_of(input: &[u8]) -> Result<Reply, Failure> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let input = input.to_vec();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // Byte by byte: replies split across reads must still parse.
            for b in input {
                s.write_all(&[b]).await.unwrap();
            }
        });
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        Conn::new(stream).reply().await
    }

    #[tokio::test]
    async fn idle_connections_are_closed_with_quit_after_a_while() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut conns = vec![];
        for _ in 0..2 {
            let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let (server_side, _) = listener.accept().await.unwrap();
            conns.push((stream, server_side));
        }
        let (stale, mut stale_peer) = conns.remove(0);
        let (fresh, _fresh_peer) = conns.remove(0);
        let idle = |stream, since| Idle {
            settings: super::super::test_settings(port),
            conn: Conn::new(stream),
            since,
        };
        let long_ago = Instant::now()
            .checked_sub(POOL_MAX_IDLE + Duration::from_secs(1))
            .unwrap();
        POOL.lock().unwrap().push(idle(stale, long_ago));
        POOL.lock().unwrap().push(idle(fresh, Instant::now()));
        close_idle();
        let left: Vec<u16> = POOL.lock().unwrap().iter().map(|i| i.settings.port).collect();
        assert_eq!(left.iter().filter(|&&p| p == port).count(), 1, "the fresh one stays");
        let mut said = String::new();
        tokio::time::timeout(Duration::from_secs(5), stale_peer.read_to_string(&mut said))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(said, "QUIT\r\n");
        POOL.lock().unwrap().retain(|i| i.settings.port != port);
    }

    /// The relay's side of a scripted conversation.
    struct Peer {
        stream: TcpStream,
        buf: Vec<u8>,
    }

    impl Peer {
        async fn accept(listener: &tokio::net::TcpListener) -> Peer {
            let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
                .await
                .expect("the client did not connect")
                .unwrap();
            let mut p = Peer { stream, buf: vec![] };
            p.say("220 relay.test ESMTP\r\n").await;
            assert!(p.until(b"\r\n").await.starts_with("EHLO "));
            p.say("250-relay.test\r\n250 PIPELINING\r\n").await;
            p
        }

        /// One whole transaction, from its MAIL on, accepted; returns its commands.
        async fn take(&mut self) -> String {
            let commands = self.until(b"DATA\r\n").await;
            self.say("250 ok\r\n250 ok\r\n354 go\r\n").await;
            self.until(b"\r\n.\r\n").await;
            self.say("250 queued\r\n").await;
            commands
        }

        async fn say(&mut self, text: &str) {
            self.stream.write_all(text.as_bytes()).await.unwrap();
        }

        /// Everything the client sent up to and including `marker`.
        async fn until(&mut self, marker: &[u8]) -> String {
            loop {
                if let Some(i) = memchr::memmem::find(&self.buf, marker) {
                    let text: Vec<u8> = self.buf.drain(..i + marker.len()).collect();
                    return String::from_utf8(text).unwrap();
                }
                let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("the client went quiet")
                    .unwrap();
                assert!(
                    n > 0,
                    "the client closed; so far: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// One copy, its header fixed.
    struct OneCopy {
        recipient: String,
        header: Vec<u8>,
    }

    impl Batch for OneCopy {
        type Error = std::convert::Infallible;
        fn len(&self) -> usize {
            1
        }
        fn envelope(&self, _: usize) -> super::super::Envelope<'_> {
            super::super::Envelope {
                sender: "me-dated-1.abc@example.com",
                recipient: &self.recipient,
                utf8: false,
            }
        }
        fn render(&self, _: usize, _: &Message) -> Result<Vec<u8>, Self::Error> {
            Ok(self.header.clone())
        }
    }

    fn message(to: &str) -> (Message, OneCopy) {
        let header = format!("From: me@example.com\nTo: {to}\n\n");
        let msg = Message::from_vec(format!("{header}text for {to}\n").into_bytes()).unwrap();
        let plan = OneCopy {
            recipient: to.to_string(),
            header: header.into_bytes(),
        };
        (msg, plan)
    }

    type Sending = tokio::task::JoinHandle<Result<(), SendError<std::convert::Infallible>>>;

    /// `send` of a message to `to`, through the relay behind `listener`, on its own task.
    fn start(listener: &tokio::net::TcpListener, to: &'static str) -> Sending {
        let settings = super::super::test_settings(listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            let (msg, plan) = message(to);
            send(&settings, "client.test", &msg, &plan).await
        })
    }

    fn riders(settings: &SmtpSettings) -> usize {
        with_lane(settings, |l| l.riders.len()).unwrap().1
    }

    /// Starts `send` of a message to `a@example.com` and, once the relay has its
    /// commands, of one to `b@example.com`, which queues to ride behind it.
    async fn two_sends(listener: &tokio::net::TcpListener) -> (Peer, Sending, Sending) {
        let settings = super::super::test_settings(listener.local_addr().unwrap().port());
        let a = start(listener, "a@example.com");
        let mut peer = Peer::accept(listener).await;
        let commands = peer.until(b"DATA\r\n").await;
        assert_eq!(
            commands,
            "MAIL FROM:<me-dated-1.abc@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"
        );
        let b = start(listener, "b@example.com");
        for _ in 0..500 {
            if riders(&settings) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(riders(&settings), 1, "the second message waits to ride");
        (peer, a, b)
    }

    #[tokio::test]
    async fn a_second_message_rides_behind_the_first() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (mut peer, a, b) = two_sends(&listener).await;
        peer.say("250 ok\r\n250 ok\r\n354 go\r\n").await;
        // A's text and final dot, then B's commands in the same group (RFC 2920).
        let group = peer.until(b"DATA\r\n").await;
        assert!(
            group.ends_with(
                "text for a@example.com\r\n.\r\nMAIL FROM:<me-dated-1.abc@example.com>\r\n\
                 RCPT TO:<b@example.com>\r\nDATA\r\n"
            ),
            "{group:?}"
        );
        peer.say("250 A queued\r\n250 ok\r\n250 ok\r\n354 go\r\n").await;
        a.await.unwrap().unwrap();
        let text = peer.until(b"\r\n.\r\n").await;
        assert!(
            text.ends_with("To: b@example.com\r\n\r\ntext for b@example.com\r\n.\r\n"),
            "{text:?}"
        );
        peer.say("250 B queued\r\n").await;
        b.await.unwrap().unwrap();
        // B needed no connection of its own.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), listener.accept())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_rider_that_gave_up_is_not_taken_along() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (mut peer, a, b) = two_sends(&listener).await;
        // B's session ends while it waits (its client went away, say).
        b.abort();
        assert!(b.await.unwrap_err().is_cancelled());
        peer.say("250 ok\r\n250 ok\r\n354 go\r\n").await;
        let text = peer.until(b"\r\n.\r\n").await;
        assert!(text.ends_with("text for a@example.com\r\n.\r\n"), "{text:?}");
        peer.say("250 A queued\r\n").await;
        a.await.unwrap().unwrap();
        // Nothing of B's followed A's dot, and the connection is still good for the next.
        let c = start(&listener, "c@example.com");
        assert_eq!(
            peer.take().await,
            "MAIL FROM:<me-dated-1.abc@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
        );
        c.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_rider_goes_its_own_way_when_the_message_ahead_is_refused_after_its_text() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // The relay saw B's commands, but not B's text.
        let (mut peer, a, b) = two_sends(&listener).await;
        peer.say("250 ok\r\n250 ok\r\n354 go\r\n").await;
        peer.until(b"RCPT TO:<b@example.com>\r\nDATA\r\n").await;
        peer.say("451 4.3.0 try later\r\n250 ok\r\n250 ok\r\n354 go\r\n").await;
        let err = a.await.unwrap().unwrap_err().to_string();
        assert!(err.contains("451 4.3.0 try later"), "{err}");
        let mut second = Peer::accept(&listener).await;
        assert!(second.take().await.contains("RCPT TO:<b@example.com>"));
        b.await.unwrap().unwrap();
        // The first connection ended without B's text.
        assert_eq!(peer.until(b"\r\n").await, "QUIT\r\n");
    }

    #[tokio::test]
    async fn a_rider_goes_its_own_way_when_the_message_ahead_is_refused_before_its_text() {
        // Nobody will take B along, so it does not wait for anything.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (mut peer, a, b) = two_sends(&listener).await;
        peer.say("250 ok\r\n550 5.1.1 no such user\r\n503 no recipients\r\n")
            .await;
        assert!(a.await.unwrap().unwrap_err().to_string().contains("550 5.1.1"));
        let mut second = Peer::accept(&listener).await;
        assert!(second.take().await.contains("RCPT TO:<b@example.com>"));
        b.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_reused_connection_the_relay_is_closing_costs_nothing() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = start(&listener, "a@example.com");
        let mut first = Peer::accept(&listener).await;
        first.take().await;
        a.await.unwrap().unwrap();
        // B gets the pooled connection, which the relay is shutting down.
        let b = start(&listener, "b@example.com");
        first.until(b"DATA\r\n").await;
        // Answered, not cut off: what a server says to pipelined commands while closing.
        first
            .say("421 4.3.2 shutting down\r\n421 4.3.2 shutting down\r\n421 4.3.2 shutting down\r\n")
            .await;
        let mut second = Peer::accept(&listener).await;
        assert!(second.take().await.contains("RCPT TO:<b@example.com>"));
        b.await.unwrap().unwrap();
        assert_eq!(first.until(b"\r\n").await, "QUIT\r\n");
    }

    #[tokio::test]
    async fn replies_single_and_multiline() {
        let r = reply_of(b"250-relay.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            .await
            .unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.lines, ["relay.test", "PIPELINING", "8BITMIME"]);
        let r = reply_of(b"550 5.1.1 no such user\n").await.unwrap();
        assert_eq!(r.text(), "550 5.1.1 no such user");
        assert!(matches!(reply_of(b"hello\r\n").await, Err(Failure::Io(m)) if m.contains("not an SMTP reply")));
        assert!(matches!(reply_of(b"250-half").await, Err(Failure::Io(m)) if m.contains("closed")));
    }
}
