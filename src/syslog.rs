//! Where `ofmipd` logs: standard error, or syslog with facility mail over the local
//! datagram socket (`/dev/log`, or `$TMDA_SYSLOG_SOCKET`, which tests point at a
//! socket of their own). A detached daemon logs to syslog by default, since its
//! standard error is `/dev/null`.
//!
//! Records are RFC 3164 as the C library's syslog(3) writes them locally:
//! `<PRI>Mmm dd hh:mm:ss TAG[PID]: TEXT`. A record that cannot be sent (no syslog
//! daemon, or it restarted) is retried once on a fresh connection, then dropped, and
//! so is one that finds the socket's queue full: a log line is never worth blocking or
//! failing a session for.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

/// syslog(3) facility LOG_MAIL.
const FACILITY_MAIL: u8 = 2;

/// A longer record is cut (receivers truncate or drop long datagrams).
const MAX_RECORD: usize = 4096;

/// RFC 5424 section 6.2.1 severities used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Err = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

/// The socket syslog listens on: `$TMDA_SYSLOG_SOCKET`, else `/dev/log`.
pub fn socket_path() -> PathBuf {
    std::env::var_os("TMDA_SYSLOG_SOCKET")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| "/dev/log".into())
}

/// A connection to the local syslog daemon.
pub struct Syslog {
    path: PathBuf,
    tag: String,
    socket: Mutex<Option<UnixDatagram>>,
}

impl Syslog {
    /// Records tagged `tag` to [`socket_path`]. Fails when nothing listens there.
    pub fn open(tag: &str) -> std::io::Result<Syslog> {
        let path = socket_path();
        let socket = connect(&path)?;
        Ok(Syslog {
            path,
            tag: tag.to_string(),
            socket: Mutex::new(Some(socket)),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn send(&self, severity: Severity, text: &str) {
        let record = record(severity, &self.tag, std::process::id(), &local_time(), text);
        let mut socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..2 {
            if socket.is_none() {
                *socket = connect(&self.path).ok();
            }
            match socket.as_ref().map(|s| s.send(record.as_bytes())) {
                Some(Ok(_)) => return,
                Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // A restarted syslog daemon has a new socket: connect again once.
                _ => *socket = None,
            }
        }
    }
}

fn connect(path: &std::path::Path) -> std::io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path)?;
    // A syslog daemon that stops reading fills the socket's queue (ten records on
    // Linux by default): then records are dropped rather than the daemon blocked.
    s.set_nonblocking(true)?;
    Ok(s)
}

/// One RFC 3164 record: `<PRI>TIMESTAMP TAG[PID]: TEXT`, at most [`MAX_RECORD`] bytes.
pub fn record(severity: Severity, tag: &str, pid: u32, timestamp: &str, text: &str) -> String {
    let pri = FACILITY_MAIL * 8 + severity as u8;
    let mut r = format!("<{pri}>{timestamp} {tag}[{pid}]: {text}");
    if r.len() > MAX_RECORD {
        let mut end = MAX_RECORD;
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        r.truncate(end);
    }
    r
}

/// Now, as `Mmm dd hh:mm:ss` in local time (syslog's own format).
fn local_time() -> String {
    let now = crate::clock::now().unwrap_or(0) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which lives on this stack frame.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return timestamp(0, 1, 0, 0, 0);
        }
        tm
    };
    timestamp(tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
}

fn timestamp(month: i32, day: i32, h: i32, m: i32, s: i32) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.get(month.clamp(0, 11) as usize).copied().unwrap_or("Jan");
    format!("{month} {day:>2} {h:02}:{m:02}:{s:02}")
}

/// `value` for a `key=value` log field: as it is when it is a plain word, else quoted
/// with `"` and `\` escaped (so fail2ban and awk can split a line on spaces).
pub fn field(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '=');
    if plain {
        return value.into();
    }
    let mut q = String::with_capacity(value.len() + 2);
    q.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_rfc_3164_with_facility_mail() {
        assert_eq!(
            record(
                Severity::Info,
                "tmda-ofmipd",
                42,
                "Jan  8 07:56:26",
                "client=192.0.2.7 event=connect"
            ),
            "<22>Jan  8 07:56:26 tmda-ofmipd[42]: client=192.0.2.7 event=connect"
        );
        assert!(record(Severity::Err, "t", 1, "Dec 31 23:59:59", "x").starts_with("<19>Dec 31"));
        assert!(record(Severity::Debug, "t", 1, "x", "y").starts_with("<23>"));
        let long = record(Severity::Info, "t", 1, "x", &"\u{e9}".repeat(5000));
        assert!(long.len() <= MAX_RECORD);
        assert_eq!(timestamp(0, 8, 7, 5, 9), "Jan  8 07:05:09");
    }

    #[test]
    fn fields_split_on_spaces() {
        assert_eq!(field("alice"), "alice");
        assert_eq!(field("<a@b>"), "<a@b>");
        assert_eq!(field(""), "\"\"");
        assert_eq!(field("two words"), "\"two words\"");
        assert_eq!(field("a\"b\\c=d"), "\"a\\\"b\\\\c=d\"");
    }

    #[test]
    fn a_full_queue_drops_records_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let _listener = UnixDatagram::bind(&path).unwrap();
        let s = Syslog {
            path,
            tag: "t".into(),
            socket: Mutex::new(None),
        };
        // Nobody reads: far more records than the queue holds, and no wait.
        let started = std::time::Instant::now();
        for i in 0..1000 {
            s.send(Severity::Info, &format!("record {i}"));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn records_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let listener = UnixDatagram::bind(&path).unwrap();
        let s = Syslog {
            path: path.clone(),
            tag: "tmda-ofmipd".into(),
            socket: Mutex::new(None),
        };
        s.send(Severity::Warning, "hello");
        let mut buf = [0u8; 512];
        let n = listener.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(
            got.starts_with("<20>") && got.ends_with(&format!(" tmda-ofmipd[{}]: hello", std::process::id())),
            "{got}"
        );
    }
}
