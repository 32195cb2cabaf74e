//! Global mode's privilege separation. Before the network-facing process gives up root
//! for good (real, effective and saved uid), it forks this launcher, which keeps root
//! and does one thing: start a program from a list fixed at start-up as a named,
//! existing, non-root user, with standard streams the network process hands over, and
//! report how it exited. So a network process taken over by an attacker cannot become
//! root again (TMDA's kept a saved uid of 0 for its children); at worst it can ask for
//! `tmda sendmail` as some ordinary user.
//!
//! The protocol runs over a Unix stream socket: a request is a 4-byte length (sent with
//! the child's stdin, stdout and stderr and a reply socket as SCM_RIGHTS) and the
//! request's fields; the reply, on the reply socket, is one tag byte, an i32 and text.
//! The launcher forks a handler per request, so deliveries run side by side.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::delivery::Account;

/// The programs a request may name (by index, never by path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// This binary, as `tmda sendmail` (which also passes a message through unaltered
    /// for `--pure-proxy` when the user has no configuration).
    Tmda = 0,
    /// `--vhome-script`.
    Vhome = 1,
    /// Not a program: a PAM check (service and password in `args`) done by the launcher
    /// itself, as root, for one of the services named at start-up.
    Pam = 2,
}

/// One child to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub program: Program,
    /// The account whose uid, gid and groups the child gets (looked up by the launcher).
    pub user: String,
    /// HOME and working directory (a virtual user's home may differ from the account's).
    pub home: PathBuf,
    pub args: Vec<OsString>,
    /// `Some`: exactly these variables (plus HOME); `None`: the launcher's own plus HOME.
    pub env: Option<Vec<(OsString, OsString)>>,
}

/// The network process's end.
#[derive(Debug)]
pub struct Launcher {
    control: Mutex<UnixStream>,
}

/// A started request: [`Pending::wait`] gives the child's exit code (`None`: a signal).
#[derive(Debug)]
pub struct Pending {
    reply: UnixStream,
}

const MAX_REQUEST: usize = 4 << 20;

impl Launcher {
    /// Fork the launcher, which runs until the network process exits. Call as root
    /// while the process has a single thread; `programs` are indexed by [`Program`].
    /// `timeout`: how long a child may run before it is stopped (with whatever it started).
    /// `pam`: the PAM services (`-m`) it may check passwords with.
    pub fn start(
        programs: [Option<PathBuf>; 2],
        timeout: std::time::Duration,
        pam: Vec<String>,
    ) -> io::Result<Launcher> {
        let (ours, theirs) = UnixStream::pair()?;
        // SAFETY: single-threaded here (the caller's contract); the child only runs
        // the launcher loop and exits.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                drop(ours);
                keep_only(theirs.as_raw_fd());
                serve(theirs, &Allowed { programs, timeout, pam });
                // SAFETY: leave without running the parent's exit handlers.
                unsafe { libc::_exit(0) }
            }
            _ => {
                drop(theirs);
                Ok(Launcher {
                    control: Mutex::new(ours),
                })
            }
        }
    }

    /// Ask for `req` with these standard streams (closed here once handed over).
    pub fn run(&self, req: &Request, stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) -> io::Result<Pending> {
        let (reply, reply_theirs) = UnixStream::pair()?;
        let body = encode(req);
        let fds = [
            stdin.as_raw_fd(),
            stdout.as_raw_fd(),
            stderr.as_raw_fd(),
            reply_theirs.as_raw_fd(),
        ];
        let control = self.control.lock().map_err(|_| io::Error::other("launcher lock"))?;
        let sent = send_with_fds(&control, &(body.len() as u32).to_le_bytes(), &fds)
            .and_then(|_| (&*control).write_all(&body));
        if let Err(e) = &sent
            && matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
        {
            // Nothing could be delivered any more: end the daemon (no client was told
            // 250 for anything undelivered), so that a supervisor restarts it whole.
            eprintln!(
                "tmda-ofmipd[{}]: the root launcher is gone ({e}); exiting so the daemon can be restarted",
                std::process::id()
            );
            std::process::exit(75);
        }
        sent?;
        drop(control);
        Ok(Pending { reply })
    }
}

impl Launcher {
    /// A PAM check by the launcher (see [`Program::Pam`]).
    pub fn pam(&self, service: &str, user: &str, password: &str) -> crate::auth::Verdict {
        use crate::auth::Verdict;
        let req = Request {
            program: Program::Pam,
            user: user.into(),
            home: "/".into(),
            args: vec![service.into(), password.into()],
            env: None,
        };
        let null = || null_fd();
        let result = (|| self.run(&req, null()?, null()?, null()?)?.wait())();
        match result {
            Ok(Some(0)) => Verdict::Accepted,
            Ok(Some(_)) => Verdict::Denied,
            Ok(None) => Verdict::Unavailable("PAM check killed".into()),
            Err(e) => Verdict::Unavailable(format!("PAM: {e}")),
        }
    }
}

impl Pending {
    pub fn wait(mut self) -> io::Result<Option<i32>> {
        let mut buf = Vec::new();
        self.reply.read_to_end(&mut buf)?;
        let (Some(&tag), Some(code)) = (buf.first(), buf.get(1..5)) else {
            return Err(io::Error::other("the launcher gave no answer"));
        };
        let code = i32::from_le_bytes(code.try_into().expect("four bytes"));
        match tag {
            0 => Ok(Some(code)),
            1 => Ok(None),
            _ => Err(io::Error::other(String::from_utf8_lossy(&buf[5..]).into_owned())),
        }
    }
}

/// The launcher holds nothing of the network process's: standard input and output
/// become /dev/null (under tcpserver they are the client's connection) and every other
/// descriptor but `keep` (the listeners, the authfile...) is closed. Standard error stays
/// for messages.
fn keep_only(keep: RawFd) {
    // SAFETY: descriptor housekeeping in the freshly forked, single-threaded launcher.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            if null > 2 {
                libc::close(null);
            }
        }
        let close_range = |first: RawFd, last: libc::c_uint| {
            libc::syscall(libc::SYS_close_range, first as libc::c_uint, last, 0 as libc::c_uint)
        };
        if keep > 3 {
            close_range(3, (keep - 1) as libc::c_uint);
        }
        close_range(keep + 1, libc::c_uint::MAX);
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn encode(req: &Request) -> Vec<u8> {
    let mut out = vec![req.program as u8];
    put(&mut out, req.user.as_bytes());
    put(&mut out, req.home.as_os_str().as_bytes());
    out.extend_from_slice(&(req.args.len() as u32).to_le_bytes());
    for a in &req.args {
        put(&mut out, a.as_bytes());
    }
    match &req.env {
        None => out.push(0),
        Some(vars) => {
            out.push(1);
            out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
            for (k, v) in vars {
                put(&mut out, k.as_bytes());
                put(&mut out, v.as_bytes());
            }
        }
    }
    out
}

/// The request, or `None` for anything malformed (the network process is not trusted).
fn decode(mut b: &[u8]) -> Option<Request> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head)
    }
    fn num(b: &mut &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?) as usize)
    }
    fn field(b: &mut &[u8]) -> Option<OsString> {
        let n = num(b)?;
        Some(OsString::from_vec(take(b, n)?.to_vec()))
    }
    let program = match take(&mut b, 1)?[0] {
        0 => Program::Tmda,
        1 => Program::Vhome,
        2 => Program::Pam,
        _ => return None,
    };
    let user = field(&mut b)?.into_string().ok()?;
    let home = PathBuf::from(field(&mut b)?);
    let nargs = num(&mut b)?;
    let args = (0..nargs).map(|_| field(&mut b)).collect::<Option<Vec<_>>>()?;
    let env = match take(&mut b, 1)?[0] {
        0 => None,
        _ => {
            let n = num(&mut b)?;
            Some(
                (0..n)
                    .map(|_| Some((field(&mut b)?, field(&mut b)?)))
                    .collect::<Option<Vec<_>>>()?,
            )
        }
    };
    b.is_empty().then_some(Request {
        program,
        user,
        home,
        args,
        env,
    })
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

fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    let mut cmsg_buf = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let msg = message_header(&mut iov, &mut cmsg_buf);
    // SAFETY: msghdr points at live buffers for the duration of sendmsg; the control
    // message is laid out with the CMSG_* macros in a buffer of CMSG_SPACE bytes.
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

/// Receive `data.len()` bytes and the descriptors sent with them. Ok(None) at EOF.
fn recv_with_fds(sock: &UnixStream, data: &mut [u8]) -> io::Result<Option<Vec<OwnedFd>>> {
    const MAX_FDS: usize = 4;
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cmsg_buf = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut fds = vec![];
    let mut msg = message_header(&mut iov, &mut cmsg_buf);
    // SAFETY: as in send_with_fds; received descriptors are owned from here on.
    unsafe {
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
        if n == 0 {
            return Ok(None);
        }
        if n as usize != data.len() {
            return Err(io::Error::other("short request header"));
        }
    }
    Ok(Some(fds))
}

/// The launcher: requests until the network process goes away.
/// What the launcher may be asked for, fixed when it starts.
struct Allowed {
    programs: [Option<PathBuf>; 2],
    timeout: std::time::Duration,
    pam: Vec<String>,
}

fn serve(sock: UnixStream, allowed: &Allowed) {
    // Handlers are reaped by the kernel; each resets this before waiting for its child.
    // SAFETY: plain signal disposition change in a single-threaded process.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    loop {
        let mut len = [0u8; 4];
        let fds = match recv_with_fds(&sock, &mut len) {
            Ok(Some(fds)) => fds,
            _ => return,
        };
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_REQUEST {
            return;
        }
        let mut body = vec![0u8; len];
        if (&sock).read_exact(&mut body).is_err() {
            return;
        }
        let Ok([stdin, stdout, stderr, reply]) = <[OwnedFd; 4]>::try_from(fds) else {
            continue;
        };
        // SAFETY: the launcher is single-threaded; the handler only starts and waits
        // for one child and exits.
        match unsafe { libc::fork() } {
            0 => {
                unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
                drop(sock);
                let answer = handle(decode(&body), allowed, stdin, stdout, stderr);
                let _ = UnixStream::from(reply).write_all(&answer);
                unsafe { libc::_exit(0) }
            }
            -1 => {
                let _ = UnixStream::from(reply).write_all(&answer(2, 0, "the launcher cannot fork"));
            }
            _ => {}
        }
    }
}

fn answer(tag: u8, code: i32, text: &str) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// Start and wait for one request's child (in a handler process, as root).
fn handle(req: Option<Request>, allowed: &Allowed, stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) -> Vec<u8> {
    let Some(req) = req else {
        return answer(2, 0, "malformed launcher request");
    };
    let timeout = allowed.timeout;
    if req.program == Program::Pam {
        return match req.args.as_slice() {
            [service, password] if allowed.pam.iter().any(|s| s.as_str() == service) => {
                let verdict =
                    crate::auth::pam::check_here(&service.to_string_lossy(), &req.user, &password.to_string_lossy());
                match verdict {
                    crate::auth::Verdict::Accepted => answer(0, 0, ""),
                    crate::auth::Verdict::Denied => answer(0, 1, ""),
                    crate::auth::Verdict::Unavailable(why) => answer(2, 0, &why),
                }
            }
            _ => answer(2, 0, "that PAM service is not configured"),
        };
    }
    let Some(program) = &allowed.programs[req.program as usize] else {
        return answer(2, 0, "that program is not configured");
    };
    let Some(account) = Account::lookup(&req.user) else {
        return answer(2, 0, &format!("no system account for user {:?}", req.user));
    };
    if account.uid == 0 || !req.home.is_absolute() {
        return answer(2, 0, "refusing to run that as root or without a home");
    }
    let account = Account {
        home: req.home.clone(),
        ..account
    };
    let mut cmd = Command::new(program);
    cmd.args(&req.args);
    if let Some(vars) = &req.env {
        cmd.env_clear()
            .envs(vars.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str())));
    }
    cmd.env(OsStr::new("HOME"), account.home.as_os_str())
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    crate::delivery::become_user(&mut cmd, &account);
    crate::child::own_group(&mut cmd);
    let started = std::time::Instant::now();
    let status = cmd
        .spawn()
        .and_then(|mut child| crate::child::wait_until(&mut child, started + timeout));
    match status {
        Ok(Some(s)) => match s.code() {
            Some(c) => answer(0, c, ""),
            None => answer(1, 0, ""),
        },
        Ok(None) => answer(
            2,
            0,
            &format!(
                "{} did not finish within {} seconds",
                program.display(),
                timeout.as_secs()
            ),
        ),
        Err(e) => answer(2, 0, &format!("{}: {e}", program.display())),
    }
}

/// /dev/null, for a child's stream nobody reads or writes.
pub fn null_fd() -> io::Result<OwnedFd> {
    Ok(std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(req: Request, programs: &[Option<PathBuf>; 2]) -> String {
        let n = || null_fd().unwrap();
        let allowed = Allowed {
            programs: programs.clone(),
            timeout: std::time::Duration::from_secs(5),
            pam: vec!["tmda-test".into()],
        };
        let out = handle(Some(req), &allowed, n(), n(), n());
        assert_eq!(out[0], 2, "not refused: {out:?}");
        String::from_utf8_lossy(&out[5..]).into_owned()
    }

    #[test]
    fn the_launcher_never_starts_anything_as_root_or_off_its_list() {
        let programs = [Some(PathBuf::from("/bin/true")), None];
        let req = |program, user: &str| Request {
            program,
            user: user.into(),
            home: "/".into(),
            args: vec![],
            env: None,
        };
        assert!(refusal(req(Program::Tmda, "root"), &programs).contains("refusing"));
        assert!(refusal(req(Program::Tmda, "no-such-user-xyz"), &programs).contains("no system account"));
        assert!(refusal(req(Program::Vhome, "nobody"), &programs).contains("not configured"));
        let relative = Request {
            home: "relative/home".into(),
            ..req(Program::Tmda, "nobody")
        };
        assert!(refusal(relative, &programs).contains("refusing"));
        let n = || null_fd().unwrap();
        let allowed = Allowed {
            programs: programs.clone(),
            timeout: std::time::Duration::from_secs(5),
            pam: vec![],
        };
        assert_eq!(handle(None, &allowed, n(), n(), n())[0], 2);
        let pam = Request {
            program: Program::Pam,
            user: "alice".into(),
            home: "/".into(),
            args: vec!["login".into(), "secret".into()],
            env: None,
        };
        assert_eq!(
            handle(Some(pam), &allowed, n(), n(), n())[0],
            2,
            "a PAM service not named with -m"
        );
    }

    #[test]
    fn requests_round_trip_and_junk_is_refused() {
        let req = Request {
            program: Program::Vhome,
            user: "alice".into(),
            home: "/home/alice".into(),
            args: vec!["-f".into(), "a@b".into(), "--".into(), "c@d".into()],
            env: Some(vec![("PATH".into(), "/bin".into())]),
        };
        assert_eq!(decode(&encode(&req)), Some(req.clone()));
        let inherit = Request { env: None, ..req };
        assert_eq!(decode(&encode(&inherit)), Some(inherit.clone()));
        let bytes = encode(&inherit);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert_eq!(decode(&bad), None);
        let mut long = bytes;
        long.push(0);
        assert_eq!(decode(&long), None);
    }
}
