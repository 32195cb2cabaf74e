//! The launcher's wire format: the two requests the network process may send
//! ([`Request`]), the launcher's [`Answer`], and passing descriptors with SCM_RIGHTS.
//! A request is a 4-byte length, sent with its descriptors, then the body; every
//! field is length-prefixed and bounded, and anything else decodes to an error.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// A message to deliver as the user `login` authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub login: String,
    /// Envelope sender ("" for the null sender).
    pub mail_from: String,
    pub recipients: Vec<String>,
    /// The Received field's text.
    pub received: String,
    pub smtputf8: bool,
}

/// What the network process may ask.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// Deliver a message (sent as a descriptor) as the login's account.
    Deliver(Submission),
    /// Check a password with a PAM service named at start-up.
    PamCheck {
        service: String,
        login: String,
        password: String,
    },
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Deliver(s) => f.debug_tuple("Deliver").field(s).finish(),
            Request::PamCheck { service, login, .. } => f
                .debug_struct("PamCheck")
                .field("service", service)
                .field("login", login)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

const KIND_DELIVER: u8 = b'D';
const KIND_PAM: u8 = b'P';
/// The largest request body: a thousand recipients of the longest allowed length fit.
pub(super) const MAX_REQUEST: usize = 1 << 20;
/// The most descriptors one request carries (Deliver's three).
pub(super) const MAX_FDS: usize = 3;
/// Limits on the fields of a request (RFC 5321 4.5.3.1 allows paths of 256 octets).
const MAX_LOGIN: usize = 256;
const MAX_ADDRESS: usize = 512;
const MAX_RECIPIENTS: usize = 1000;
const MAX_RECEIVED: usize = 4096;
const MAX_PASSWORD: usize = 1024;

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

impl Request {
    /// The wire form of the body.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Deliver(s) => {
                let mut out = vec![KIND_DELIVER];
                put(&mut out, s.login.as_bytes());
                put(&mut out, s.mail_from.as_bytes());
                put(&mut out, s.received.as_bytes());
                out.push(s.smtputf8 as u8);
                out.extend_from_slice(&(s.recipients.len() as u32).to_le_bytes());
                for r in &s.recipients {
                    put(&mut out, r.as_bytes());
                }
                out
            }
            Request::PamCheck {
                service,
                login,
                password,
            } => {
                let mut out = vec![KIND_PAM];
                put(&mut out, service.as_bytes());
                put(&mut out, login.as_bytes());
                put(&mut out, password.as_bytes());
                out
            }
        }
    }

    /// A body read from the (untrusted) network process; `Err` says what is wrong.
    pub fn decode(mut b: &[u8]) -> Result<Request, &'static str> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
            let (head, rest) = (b.get(..n), b.get(n..));
            let (Some(head), Some(rest)) = (head, rest) else {
                return Err("truncated request");
            };
            *b = rest;
            Ok(head)
        }
        fn num(b: &mut &[u8]) -> Result<usize, &'static str> {
            let bytes: [u8; 4] = take(b, 4)?.try_into().map_err(|_| "truncated request")?;
            Ok(u32::from_le_bytes(bytes) as usize)
        }
        fn text(b: &mut &[u8], max: usize) -> Result<String, &'static str> {
            let n = num(b)?;
            if n > max {
                return Err("a field is too long");
            }
            String::from_utf8(take(b, n)?.to_vec()).map_err(|_| "a field is not UTF-8")
        }
        let req = match take(&mut b, 1)?[0] {
            KIND_DELIVER => {
                let login = text(&mut b, MAX_LOGIN)?;
                let mail_from = text(&mut b, MAX_ADDRESS)?;
                let received = text(&mut b, MAX_RECEIVED)?;
                let smtputf8 = match take(&mut b, 1)?[0] {
                    0 => false,
                    1 => true,
                    _ => return Err("bad SMTPUTF8 flag"),
                };
                let n = num(&mut b)?;
                if n > MAX_RECIPIENTS {
                    return Err("too many recipients");
                }
                let recipients = (0..n)
                    .map(|_| text(&mut b, MAX_ADDRESS))
                    .collect::<Result<Vec<_>, _>>()?;
                Request::Deliver(Submission {
                    login,
                    mail_from,
                    recipients,
                    received,
                    smtputf8,
                })
            }
            KIND_PAM => Request::PamCheck {
                service: text(&mut b, MAX_LOGIN)?,
                login: text(&mut b, MAX_LOGIN)?,
                password: text(&mut b, MAX_PASSWORD)?,
            },
            _ => return Err("unknown request kind"),
        };
        if !b.is_empty() {
            return Err("trailing bytes after the request");
        }
        Ok(req)
    }

    /// How many descriptors come with this kind of request.
    pub(super) fn fds(&self) -> usize {
        match self {
            Request::Deliver(_) => 3,
            Request::PamCheck { .. } => 1,
        }
    }
}

/// The launcher's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The child exited with this code (for PamCheck: 0 accepted, 1 denied).
    Exited(i32),
    /// The child was killed by a signal.
    Killed,
    /// It could not be done now (a retry may work): the text says why.
    Failed(String),
    /// The launcher will not do it (not an ordinary account, a malformed request...).
    Refused(String),
    /// Its start-up configuration is broken (a sender map that no longer parses): a
    /// retry may work once it is fixed; the text is for the log, not the client.
    ConfigError(String),
}

const MAX_ANSWER_TEXT: usize = 64 * 1024;

impl Answer {
    pub(super) fn encode(&self) -> Vec<u8> {
        let (tag, code, text) = match self {
            Answer::Exited(c) => (0u8, *c, ""),
            Answer::Killed => (1, 0, ""),
            Answer::Failed(t) => (2, 0, t.as_str()),
            Answer::Refused(t) => (3, 0, t.as_str()),
            Answer::ConfigError(t) => (4, 0, t.as_str()),
        };
        let text = &text.as_bytes()[..text.len().min(MAX_ANSWER_TEXT)];
        let mut out = vec![tag];
        out.extend_from_slice(&code.to_le_bytes());
        put(&mut out, text);
        out
    }

    /// Read one answer (not to the end of the stream: the launcher may keep a copy of
    /// the socket, to answer for a check it had to stop).
    pub fn read_from(r: &mut impl Read) -> io::Result<Answer> {
        let mut head = [0u8; 9];
        r.read_exact(&mut head).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::other("the launcher gave no answer"),
            _ => e,
        })?;
        let code = i32::from_le_bytes(head[1..5].try_into().expect("four bytes"));
        let len = u32::from_le_bytes(head[5..9].try_into().expect("four bytes")) as usize;
        if len > MAX_ANSWER_TEXT {
            return Err(io::Error::other("oversized answer from the launcher"));
        }
        let mut text = vec![0u8; len];
        r.read_exact(&mut text)?;
        let text = String::from_utf8_lossy(&text).into_owned();
        Ok(match head[0] {
            0 => Answer::Exited(code),
            1 => Answer::Killed,
            2 => Answer::Failed(text),
            3 => Answer::Refused(text),
            4 => Answer::ConfigError(text),
            _ => return Err(io::Error::other("malformed answer from the launcher")),
        })
    }
}

/// A msghdr for one buffer and a control-message area (both must outlive its use).
fn message_header(iov: &mut libc::iovec, control: &mut [u8]) -> libc::msghdr {
    // SAFETY: msghdr is plain data; zeroed is its documented starting state.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = control.len() as _;
    msg
}

/// Bytes of control-message space for `n` descriptors.
fn cmsg_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<RawFd>()) as u32) as usize }
}

pub(super) fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut cmsg_buf = vec![0u8; cmsg_space(fds.len())];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let msg = message_header(&mut iov, &mut cmsg_buf);
    // SAFETY: msghdr points at live buffers for the duration of sendmsg; the control
    // message is laid out with the CMSG_* macros in a buffer of CMSG_SPACE bytes, and
    // `fds` are open descriptors of ours.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg) as *mut RawFd, fds.len());
        if libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) != data.len() as isize {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What came with a request's header.
pub(super) enum Received {
    Eof,
    /// The descriptors; `truncated`: more were sent than a request may carry (the
    /// kernel closed the rest).
    Header {
        fds: Vec<OwnedFd>,
        truncated: bool,
    },
}

/// Receive `data.len()` bytes and the descriptors sent with them.
pub(super) fn recv_with_fds(sock: &UnixStream, data: &mut [u8]) -> io::Result<Received> {
    // Room for one more than allowed, to tell "too many" from "just enough".
    let mut cmsg_buf = vec![0u8; cmsg_space(MAX_FDS + 1)];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut fds = vec![];
    let mut msg = message_header(&mut iov, &mut cmsg_buf);
    // SAFETY: as in send_with_fds; each descriptor the kernel put in the control
    // message is new in this process and owned from here on (exactly once).
    let n = unsafe {
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_WAITALL);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                let p = libc::CMSG_DATA(cmsg) as *const RawFd;
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        n
    };
    if n == 0 {
        return Ok(Received::Eof);
    }
    if n as usize != data.len() {
        return Err(io::Error::other("short request header"));
    }
    let truncated = msg.msg_flags & libc::MSG_CTRUNC != 0 || fds.len() > MAX_FDS;
    Ok(Received::Header { fds, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(login: &str) -> Submission {
        Submission {
            login: login.into(),
            mail_from: "a@example.com".into(),
            recipients: vec!["b@example.org".into()],
            received: "from x by y; date".into(),
            smtputf8: false,
        }
    }

    #[test]
    fn requests_round_trip_and_junk_is_refused() {
        let mut m = sub("alice");
        m.recipients.push("c@example.org".into());
        m.smtputf8 = true;
        for req in [
            Request::Deliver(m),
            Request::PamCheck {
                service: "tmda-test".into(),
                login: "alice".into(),
                password: "pw".into(),
            },
        ] {
            let bytes = req.encode();
            assert_eq!(Request::decode(&bytes), Ok(req.clone()));
            for cut in 0..bytes.len() {
                assert!(Request::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(Request::decode(&long).is_err());
        }
        // The old protocol's request (program 0, a user, a home, arguments) is no request.
        assert_eq!(Request::decode(&[0, 0, 0, 0, 0]), Err("unknown request kind"));
        let mut huge = vec![KIND_PAM];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Request::decode(&huge), Err("a field is too long"));
        let debug = format!(
            "{:?}",
            Request::PamCheck {
                service: "s".into(),
                login: "l".into(),
                password: "hunter2".into()
            }
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn answers_round_trip() {
        for a in [
            Answer::Exited(0),
            Answer::Exited(75),
            Answer::Killed,
            Answer::Failed("later".into()),
            Answer::Refused("never".into()),
            Answer::ConfigError("broken".into()),
        ] {
            assert_eq!(Answer::read_from(&mut &a.encode()[..]).unwrap(), a);
        }
        assert!(Answer::read_from(&mut &[][..]).is_err());
    }
}
