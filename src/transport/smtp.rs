//! Relay to an SMTP server (MAIL_TRANSPORT = "smtp") with lettre's connection API:
//! used for relays over TLS and for messages too large to hold in memory; plain
//! relays and small messages go through [`super::relay`].
//!
//! Beyond TMDA: implicit TLS as well as STARTTLS, certificate verification on by
//! default (`SMTPSSL_VERIFY = False` to accept a self-signed relay, or
//! `SMTPSSL_CAFILE` to trust a private CA), one connection reused across the
//! copies of a message (closed and reopened after `SMTP_MAX_SESSIONS_PER_CONNECTION`
//! transactions, 0 meaning no limit), and the body streamed from the spool with
//! line endings made CRLF on the way, so a large message is never held in memory.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Identity, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::{Copy, DeliveryError, Transport};
use super::{POOL_CHECK_AFTER, POOL_MAX, POOL_MAX_IDLE};
use crate::config::{SmtpSettings, SmtpTls};
use crate::message::{LineEndings, Message};

pub struct Smtp {
    settings: SmtpSettings,
    hello: ClientId,
    timeout: Duration,
    conn: Option<SmtpConnection>,
    on_this_connection: u32,
    /// The relay advertised PIPELINING (RFC 2920) on the current connection.
    pipelining: bool,
    /// Why no connection could be opened: the copies still to send fail the same way
    /// at once, instead of dialling the relay again for each.
    unreachable: Option<DeliveryError>,
}

/// Idle relay connections kept between messages by a long-running process (ofmipd),
/// so a message does not pay for connect, EHLO, STARTTLS and AUTH each time.
struct Idle {
    settings: SmtpSettings,
    conn: SmtpConnection,
    used: u32,
    pipelining: bool,
    since: std::time::Instant,
}

static POOL: std::sync::Mutex<Vec<Idle>> = std::sync::Mutex::new(Vec::new());
static POOLING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Keep relay connections open between messages (for daemons; a one-shot
/// `tmda sendmail` closes its connection when done).
pub fn enable_pooling() {
    POOLING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// QUIT pooled connections unused for longer than 30 seconds (blocking: waits
/// for each relay's answer).
pub fn close_idle() {
    for mut i in super::take_stale(&POOL, |i: &Idle| i.since, POOL_MAX_IDLE) {
        let _ = i.conn.set_timeout(Some(Duration::from_secs(5)));
        let _ = i.conn.quit();
    }
}

/// QUIT every pooled connection (at shutdown, so relays see a clean end).
pub fn close_pool() {
    let idle: Vec<Idle> = POOL.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
    for mut i in idle {
        let _ = i.conn.quit();
    }
}

impl Smtp {
    pub fn new(settings: SmtpSettings, hello_name: String) -> Smtp {
        Smtp {
            settings,
            hello: ClientId::Domain(hello_name),
            timeout: Duration::from_secs(60),
            conn: None,
            on_this_connection: 0,
            pipelining: false,
            unreachable: None,
        }
    }

    /// A pooled connection to the same relay with the same credentials, if one is usable.
    fn take_pooled(&self) -> Option<(SmtpConnection, u32, bool)> {
        if !POOLING.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        loop {
            let idle = {
                let mut pool = POOL.lock().ok()?;
                let i = pool.iter().position(|x| x.settings == self.settings)?;
                pool.swap_remove(i)
            };
            let mut conn = idle.conn;
            let age = idle.since.elapsed();
            if conn.has_broken() || age > POOL_MAX_IDLE || (age > POOL_CHECK_AFTER && !conn.test_connected()) {
                conn.abort();
                continue;
            }
            return Some((conn, idle.used, idle.pipelining));
        }
    }

    fn server(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    fn err(&self, e: lettre::transport::smtp::Error) -> DeliveryError {
        // A negative reply says itself whether it is final; anything else (refused
        // connection, timeout, TLS trouble, a dropped link) may well work later.
        let transient = !e.is_permanent();
        let code = e.status().and_then(|c| c.to_string().parse().ok());
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let t = s.to_string();
            if !message.contains(&t) {
                message.push_str(": ");
                message.push_str(&t);
            }
            src = s.source();
        }
        DeliveryError::Smtp {
            server: self.server(),
            message,
            transient,
            code,
        }
    }

    fn tls_parameters(&self) -> Result<TlsParameters, DeliveryError> {
        let fail = |m: String| DeliveryError::Smtp {
            server: self.server(),
            message: m,
            transient: false,
            code: None,
        };
        let mut b =
            TlsParameters::builder(self.settings.host.clone()).dangerous_accept_invalid_certs(!self.settings.verify);
        if let Some(ca) = &self.settings.cafile {
            let pem = read(ca).map_err(&fail)?;
            let cert =
                Certificate::from_pem(&pem).map_err(|e| fail(format!("SMTPSSL_CAFILE {}: {e}", ca.display())))?;
            b = b.add_root_certificate(cert);
        }
        if let (Some(cert), Some(key)) = (&self.settings.certfile, &self.settings.keyfile) {
            let id = Identity::from_pem(&read(cert).map_err(&fail)?, &read(key).map_err(&fail)?)
                .map_err(|e| fail(format!("SMTPSSL_CERTFILE/SMTPSSL_KEYFILE: {e}")))?;
            b = b.identify_with(id);
        }
        b.build().map_err(|e| fail(format!("TLS setup: {e}")))
    }

    /// A ready connection, and whether the relay offers PIPELINING.
    fn connect(&self) -> Result<(SmtpConnection, bool), DeliveryError> {
        super::trace(format_args!(
            "*** connecting to {}{}",
            self.server(),
            if self.settings.tls == SmtpTls::Implicit {
                " (TLS)"
            } else {
                ""
            }
        ));
        // Resolved here, so that the addresses lettre connects to are the ones its socket
        // is recognised by (see set_nodelay_on_new).
        use std::net::ToSocketAddrs;
        let addrs: Vec<std::net::SocketAddr> = (self.settings.host.as_str(), self.settings.port)
            .to_socket_addrs()
            .map_err(|e| DeliveryError::Smtp {
                server: self.server(),
                message: format!("cannot resolve {}: {e}", self.settings.host),
                transient: true,
                code: None,
            })?
            .collect();
        let tls = match self.settings.tls {
            SmtpTls::Implicit => Some(self.tls_parameters()?),
            SmtpTls::None | SmtpTls::StartTls => None,
        };
        let before = socket_inodes();
        let mut conn = SmtpConnection::connect(&addrs[..], Some(self.timeout), &self.hello, tls.as_ref(), None)
            .map_err(|e| self.err(e))?;
        set_nodelay_on_new(&before, &addrs);
        super::trace(format_args!("*** greeted and said EHLO: {}", conn.server_info()));
        if self.settings.tls == SmtpTls::StartTls {
            if !conn.can_starttls() {
                conn.abort();
                return Err(DeliveryError::Smtp {
                    server: self.server(),
                    message: "the server does not offer STARTTLS, and SMTPSSL requires it".into(),
                    transient: true,
                    code: None,
                });
            }
            let p = self.tls_parameters()?;
            super::trace(format_args!("--> STARTTLS"));
            conn.starttls(&p, &self.hello).map_err(|e| self.err(e))?;
            super::trace(format_args!("*** TLS started, EHLO said again"));
        }
        // lettre keeps only the extensions it knows, and PIPELINING is not one of them:
        // ask again (EHLO may be repeated; before AUTH, so nothing is reset after it).
        super::trace(format_args!("--> EHLO {}", self.hello));
        let pipelining = match traced(conn.command(Ehlo::new(self.hello.clone()))) {
            Ok(r) => r.message().skip(1).any(|l| l.trim().eq_ignore_ascii_case("PIPELINING")),
            // A server that refuses a repeated EHLO keeps the first one: go on without.
            Err(e) if e.is_permanent() || e.is_transient() => false,
            Err(e) => return Err(self.err(e)),
        };
        if let (Some(user), Some(pass)) = (&self.settings.username, &self.settings.password) {
            let creds = Credentials::new(user.clone(), pass.0.clone());
            super::trace(format_args!("--> AUTH <redacted>"));
            traced(conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)).map_err(|e| {
                // Refused credentials defer rather than bounce (as Postfix's
                // smtp_sasl_auth_soft_bounce): nothing is lost while the password is fixed.
                match self.err(e) {
                    DeliveryError::Smtp {
                        server, message, code, ..
                    } => DeliveryError::Smtp {
                        server,
                        message: format!("the relay refused SMTPAUTH_USERNAME/SMTPAUTH_PASSWORD: {message}"),
                        transient: true,
                        code,
                    },
                    other => other,
                }
            })?;
        }
        Ok((conn, pipelining))
    }

    fn transaction(&mut self, copy: &Copy<'_>, eight_bit: bool) -> Result<(), DeliveryError> {
        let refused = |m: String| DeliveryError::Refused(m);
        let sender = match copy.sender {
            "" | "<>" => None,
            s => Some(Address::from_str(s).map_err(|e| {
                refused(format!(
                    "envelope sender {} is not a valid address: {e}",
                    crate::exit::quote(s)
                ))
            })?),
        };
        let rcpt = Address::from_str(copy.recipient).map_err(|e| {
            refused(format!(
                "recipient {} is not a valid address: {e}",
                crate::exit::quote(copy.recipient)
            ))
        })?;
        let conn = self.conn.as_mut().expect("connected");
        let mut params = vec![];
        if eight_bit {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                return Err(DeliveryError::Smtp {
                    server: format!("{}:{}", self.settings.host, self.settings.port),
                    message: "the message has 8-bit content but the server does not support 8BITMIME".into(),
                    transient: false,
                    code: None,
                });
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if copy.utf8 || !copy.sender.is_ascii() || !copy.recipient.is_ascii() {
            if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Err(DeliveryError::Smtp {
                    server: format!("{}:{}", self.settings.host, self.settings.port),
                    message: super::NO_SMTPUTF8.into(),
                    transient: false,
                    code: None,
                });
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        let read_error = std::rc::Rc::new(std::cell::RefCell::new(None));
        let (mail, rcpt) = (Mail::new(sender, params), Rcpt::new(rcpt, vec![]));
        let pipelining = self.pipelining;
        if super::tracing() {
            for c in [mail.to_string(), rcpt.to_string(), Data.to_string()] {
                super::trace(format_args!("--> {}", c.trim_end()));
            }
        }
        // A spool read error unwinds out of lettre's DATA loop (see `AbortData`).
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if pipelining {
                // MAIL, RCPT and DATA in one write, then their three replies (RFC 2920):
                // one round trip instead of three. Every reply is read even after a
                // refusal, so the first refusal is the one reported; on any failure the
                // connection is dropped, so a 354 after a refused RCPT sends nothing.
                let first = traced(conn.command(format!("{mail}{rcpt}{Data}")));
                if first.as_ref().is_err_and(|e| !(e.is_permanent() || e.is_transient())) {
                    return first;
                }
                let second = traced(conn.read_response());
                if second.as_ref().is_err_and(|e| !(e.is_permanent() || e.is_transient())) {
                    return second;
                }
                let third = traced(conn.read_response());
                first?;
                second?;
                third?;
            } else {
                traced(conn.command(mail))?;
                traced(conn.command(rcpt))?;
                traced(conn.command(Data))?;
            }
            super::trace(format_args!("--> (message text)\n--> ."));
            traced(conn.message_iter(CrlfChunks::new(copy, read_error.clone())))
        }));
        let res = match res {
            Ok(r) => Some(r),
            Err(payload) if payload.is::<AbortData>() => None,
            Err(payload) => std::panic::resume_unwind(payload),
        };
        if let Some(e) = read_error.borrow_mut().take() {
            return Err(DeliveryError::Smtp {
                server: format!("{}:{}", self.settings.host, self.settings.port),
                message: format!("reading the spooled message failed: {e}"),
                transient: true,
                code: None,
            });
        }
        let res = res.expect("only a spool read error aborts DATA, and it was reported above");
        res.map(|_| ()).map_err(|e| self.err(e))
    }
}

/// A command's reply, shown with `tmda sendmail -v` (the command itself is shown by
/// the caller: lettre writes it).
fn traced(
    r: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
) -> Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error> {
    if super::tracing() {
        match &r {
            Ok(resp) => {
                let lines: Vec<&str> = resp.message().collect();
                for (i, l) in lines.iter().enumerate() {
                    let sep = if i + 1 == lines.len() { ' ' } else { '-' };
                    super::trace(format_args!("<-- {}{sep}{l}", resp.code()));
                }
            }
            Err(e) => super::trace(format_args!("<-- {e}")),
        }
    }
    r
}

/// Unwinding payload that stops lettre's DATA loop when the spool cannot be read.
/// lettre sends `CRLF . CRLF` after the last chunk its iterator yields, so ending the
/// iteration early would have the relay accept a truncated message; unwinding leaves
/// DATA unfinished instead, and the connection is then dropped, which makes the relay
/// discard what it got. (`resume_unwind` skips the panic hook: nothing is printed.
/// This needs the default `panic = "unwind"`.)
struct AbortData;

/// Turn Nagle's algorithm off on the relay connection lettre just made.
///
/// lettre writes the end-of-data marker as its own small packet right after the
/// message; with Nagle on, that packet waits for the relay's delayed ACK (40 ms on
/// Linux), which capped relaying at about 25 copies a second. lettre 0.11 neither sets
/// TCP_NODELAY nor lets us hand it a socket of our own, and does not show us its
/// socket. So the connection is found by what is new since `before` (socket inodes
/// taken just before connecting) and connected to one of `peers` (the addresses lettre
/// was given). Each candidate is looked at through a duplicate descriptor of our own,
/// checked to be that very socket (same inode) before anything is set on it; a
/// descriptor closed or reused by another thread meanwhile is just skipped, and no
/// descriptor owned elsewhere is ever wrapped, used or closed. The one other socket
/// this can reach is a relay connection another thread opens to the same relay at the
/// same moment, which wants TCP_NODELAY just the same.
fn set_nodelay_on_new(before: &std::collections::HashSet<u64>, peers: &[std::net::SocketAddr]) {
    for (fd, inode) in sockets() {
        if before.contains(&inode) {
            continue;
        }
        let Some(dup) = duplicate(fd) else { continue };
        let same = dup.metadata().is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.ino() == inode
        });
        if !same {
            continue;
        }
        let s = socket2::SockRef::from(&dup);
        if s.peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|p| peers.contains(&p))
        {
            let _ = s.set_tcp_nodelay(true);
        }
    }
}

/// The socket inodes this process holds now.
fn socket_inodes() -> std::collections::HashSet<u64> {
    sockets().into_iter().map(|(_, inode)| inode).collect()
}

/// (descriptor number, inode) of each socket, from the /proc/self/fd links
/// (`socket:[INODE]`); reading them touches no descriptor.
fn sockets() -> Vec<(i32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return vec![];
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let fd = e.file_name().to_str()?.parse::<i32>().ok()?;
        let link = std::fs::read_link(e.path()).ok()?;
        let inode = link
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        Some((fd, inode))
    })
    .collect()
}

/// A new descriptor of our own for whatever `fd` refers to now (`None` if nothing).
fn duplicate(fd: i32) -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor table: for any number it either
    // fails (EBADF) or returns a new descriptor; the original is left as it was.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    // SAFETY: `dup` was just created by fcntl for us alone, so we own it (closed on drop).
    (dup >= 0).then(|| unsafe { std::fs::File::from_raw_fd(dup) })
}

fn read(p: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

impl Transport for Smtp {
    fn send(&mut self, copy: &Copy<'_>) -> Result<(), DeliveryError> {
        let max = self.settings.max_sessions_per_connection;
        let worn_out = max > 0 && self.on_this_connection >= max;
        if worn_out || self.conn.as_ref().is_some_and(|c| c.has_broken()) {
            self.close();
        }
        if self.conn.is_none() {
            match self.take_pooled() {
                Some((conn, used, pipelining)) => {
                    self.conn = Some(conn);
                    self.on_this_connection = used;
                    self.pipelining = pipelining;
                }
                None => {
                    if let Some(e) = &self.unreachable {
                        return Err(e.clone());
                    }
                    let (conn, pipelining) = self.connect().inspect_err(|e| self.unreachable = Some(e.clone()))?;
                    self.conn = Some(conn);
                    self.on_this_connection = 0;
                    self.pipelining = pipelining;
                }
            }
        }
        let eight_bit = !copy.header.is_ascii() || !body_is_ascii(copy.message);
        let result = self.transaction(copy, eight_bit);
        self.on_this_connection += 1;
        if result.is_err() {
            // After a failure the session state is unknown: start afresh next time.
            if let Some(mut c) = self.conn.take() {
                // abort() says QUIT and waits for the reply; a relay left in DATA (a 354
                // after a pipelined refusal, a spool read error) takes it as message text
                // and never answers, so do not wait long before hanging up.
                let _ = c.set_timeout(Some(Duration::from_millis(200)));
                c.abort();
            }
        }
        result
    }

    fn close(&mut self) {
        let Some(mut c) = self.conn.take() else { return };
        let max = self.settings.max_sessions_per_connection;
        let worn_out = max > 0 && self.on_this_connection >= max;
        if POOLING.load(std::sync::atomic::Ordering::Relaxed)
            && !worn_out
            && !c.has_broken()
            && let Ok(mut pool) = POOL.lock()
            && pool.len() < POOL_MAX
        {
            pool.push(Idle {
                settings: self.settings.clone(),
                conn: c,
                used: self.on_this_connection,
                pipelining: self.pipelining,
                since: std::time::Instant::now(),
            });
            return;
        }
        let _ = c.quit();
    }
}

fn body_is_ascii(m: &Message) -> bool {
    let mut ascii = true;
    let _ = m.for_each_body_chunk(|c| {
        ascii &= c.is_ascii();
        Ok(())
    });
    ascii
}

/// The copy as CRLF-terminated chunks for DATA, pulled from the spool one at a time,
/// minus one final CRLF (lettre always appends `CRLF . CRLF`, so a message ending in
/// CRLF would otherwise gain a blank line).
struct CrlfChunks<'a> {
    header: Option<&'a [u8]>,
    body: crate::message::BodyChunks<'a>,
    endings: LineEndings,
    held: bool,
    done: bool,
    /// A read error from the spool (our own unlinked file, so a failing disk): kept
    /// for the report, then DATA is abandoned with [`AbortData`].
    error: std::rc::Rc<std::cell::RefCell<Option<std::io::Error>>>,
}

impl<'a> CrlfChunks<'a> {
    fn new(copy: &Copy<'a>, error: std::rc::Rc<std::cell::RefCell<Option<std::io::Error>>>) -> CrlfChunks<'a> {
        CrlfChunks {
            header: Some(copy.header),
            body: copy.message.body_chunks(),
            endings: LineEndings::default(),
            held: false,
            done: false,
            error,
        }
    }
}

impl Iterator for CrlfChunks<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if std::mem::take(&mut self.held) {
            out.extend_from_slice(b"\r\n");
        }
        // Each item is one write, and with Nagle off one packet: gather the header and
        // body chunks into pieces of at least WRITE_SIZE (a small message goes whole).
        while !self.done && out.len() < WRITE_SIZE {
            match self.header.take() {
                Some(h) => self.endings.to_crlf(h, &mut out),
                None => match self.body.next() {
                    Some(Ok(c)) => self.endings.to_crlf(&c, &mut out),
                    Some(Err(e)) => {
                        *self.error.borrow_mut() = Some(e);
                        std::panic::resume_unwind(Box::new(AbortData));
                    }
                    None => {
                        self.endings.finish(&mut out, true);
                        self.done = true;
                    }
                },
            }
        }
        if out.ends_with(b"\r\n") {
            out.truncate(out.len() - 2);
            // Held back: sent before the next piece, dropped if this was the last.
            self.held = !self.done;
        }
        (!out.is_empty()).then_some(out)
    }
}

const WRITE_SIZE: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// What the test relay saw of its one connection.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        /// DATA finished with the final dot.
        Finished,
        /// The connection ended (inside DATA or not) without QUIT.
        Cut,
        Quit,
    }

    /// A relay for one connection that reports what it saw.
    fn one_shot_relay() -> (u16, std::sync::mpsc::Receiver<Seen>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut w = stream.try_clone().unwrap();
            let mut r = BufReader::new(stream);
            w.write_all(b"220 relay ESMTP\r\n").unwrap();
            let mut line = Vec::new();
            let mut in_data = false;
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                    let _ = tx.send(Seen::Cut);
                    return;
                }
                if in_data {
                    if line == b".\r\n" {
                        let _ = tx.send(Seen::Finished);
                        let _ = w.write_all(b"250 queued\r\n");
                        in_data = false;
                    }
                    continue;
                }
                let reply: &[u8] = match line.get(..4).map(|c| c.to_ascii_uppercase()).as_deref() {
                    Some(b"EHLO") => b"250-relay\r\n250 8BITMIME\r\n",
                    Some(b"DATA") => {
                        in_data = true;
                        b"354 go ahead\r\n"
                    }
                    Some(b"QUIT") => {
                        let _ = w.write_all(b"221 bye\r\n");
                        let _ = tx.send(Seen::Quit);
                        return;
                    }
                    _ => b"250 ok\r\n",
                };
                if w.write_all(reply).is_err() {
                    return;
                }
            }
        });
        (port, rx)
    }

    /// A relay that greets and answers EHLO on every connection, reporting each
    /// client's address (the only sure way to tell our connection from the test's).
    fn greeting_relay() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<std::net::SocketAddr>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let _ = tx.send(stream.peer_addr().unwrap());
                std::thread::spawn(move || {
                    let mut w = stream.try_clone().unwrap();
                    let mut r = BufReader::new(stream);
                    let _ = w.write_all(b"220 relay ESMTP\r\n");
                    let mut line = String::new();
                    while r.read_line(&mut line).unwrap_or(0) > 0 {
                        let reply: &[u8] = if line.to_ascii_uppercase().starts_with("EHLO") {
                            b"250-relay\r\n250 PIPELINING\r\n"
                        } else {
                            b"250 ok\r\n"
                        };
                        line.clear();
                        if w.write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, rx)
    }

    /// TCP_NODELAY of this process's socket whose local address is `local`, looked up
    /// independently of the code under test.
    fn nodelay_of_local(local: std::net::SocketAddr) -> Option<bool> {
        use std::os::fd::{AsFd, FromRawFd, OwnedFd};
        for e in std::fs::read_dir("/proc/self/fd").unwrap() {
            let Some(fd) = e.ok().and_then(|e| e.file_name().to_str()?.parse::<i32>().ok()) else {
                continue;
            };
            // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor (or fails); the new one is ours.
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                continue;
            }
            // SAFETY: `dup` was just returned by fcntl and nothing else owns it.
            let owned = unsafe { OwnedFd::from_raw_fd(dup) };
            let fd = owned.as_fd();
            let s = socket2::SockRef::from(&fd);
            if s.local_addr().ok().and_then(|a| a.as_socket()) == Some(local) {
                return s.tcp_nodelay().ok();
            }
        }
        None
    }

    /// See: #10 (14). The relay connection gets TCP_NODELAY, and no other socket of the
    /// process is touched, not even another one to the same relay.
    #[test]
    fn relay_connection_has_nodelay_and_nothing_else_is_touched() {
        let (addr, clients) = greeting_relay();
        let bystander = std::net::TcpStream::connect(addr).unwrap();
        let _ = clients.recv_timeout(Duration::from_secs(10)).unwrap();
        let smtp = Smtp::new(super::super::test_settings(addr.port()), "client.test".into());
        let (_conn, pipelining) = smtp.connect().unwrap();
        assert!(pipelining);
        let ours = clients.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            nodelay_of_local(ours),
            Some(true),
            "the relay connection has TCP_NODELAY"
        );
        assert!(
            !bystander.nodelay().unwrap(),
            "another socket to the same relay was touched"
        );
    }

    #[test]
    fn idle_pooled_connections_are_closed_with_quit_after_a_while() {
        let (port, seen) = one_shot_relay();
        let settings = super::super::test_settings(port);
        let smtp = Smtp::new(settings.clone(), "client.test".into());
        let (conn, pipelining) = smtp.connect().unwrap();
        let long_ago = std::time::Instant::now()
            .checked_sub(POOL_MAX_IDLE + Duration::from_secs(1))
            .unwrap();
        POOL.lock().unwrap().push(Idle {
            settings,
            conn,
            used: 1,
            pipelining,
            since: long_ago,
        });
        close_idle();
        assert_eq!(seen.recv_timeout(Duration::from_secs(10)).unwrap(), Seen::Quit);
        assert!(POOL.lock().unwrap().iter().all(|i| i.settings.port != port));
    }

    #[test]
    fn unreadable_spool_leaves_data_unfinished() {
        let (port, finished) = one_shot_relay();
        let mut text = b"Subject: big\n\n".to_vec();
        while text.len() <= crate::message::SPOOL_MEM + 200_000 {
            text.extend_from_slice(b"a line of the body of a large message\n");
        }
        let msg = Message::read_from(&text[..]).unwrap();
        // The spool file shrinks under us: reading past 100 KB fails.
        msg.spool_file().expect("spilled to a file").set_len(100_000).unwrap();
        let settings = super::super::test_settings(port);
        let mut smtp = Smtp::new(settings, "client.test".into());
        let copy = Copy {
            sender: "a@example.com",
            recipient: "b@example.org",
            header: b"Subject: big\n\n",
            message: &msg,
            utf8: false,
        };
        match smtp.send(&copy) {
            Err(DeliveryError::Smtp { message, transient, .. }) => {
                assert!(message.contains("reading the spooled message failed"), "{message}");
                assert!(transient, "the client must retry");
            }
            other => panic!("expected a transient failure, got {other:?}"),
        }
        let got = finished.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            got,
            Seen::Cut,
            "the relay must never see the end of a truncated message"
        );
    }
}
