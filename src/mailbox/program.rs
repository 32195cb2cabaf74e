//! `|command` delivery (KG `Util.pipecmd`; spec §8): `/bin/sh -c command` with the message,
//! `From ` line first and no quoting, on its standard input.
//!
//! The command runs in its own process group with a deadline; past it, the group is killed.
//! Its standard error is kept (the last 2 KiB) for the error message and its standard
//! output (the first 64 KiB) for the caller, who prints it as TMDA did. Anything but exit 0
//! having read the whole message is a temporary failure.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Error, Message};

/// Limits for the program.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stopped (with all it started) after this long.
    pub timeout: Duration,
    /// At most this much of its standard output is kept; the rest is read and dropped.
    pub stdout_max: usize,
    /// At most this much of the end of its standard error is kept.
    pub stderr_max: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: Duration::from_secs(600),
            stdout_max: 64 * 1024,
            stderr_max: 2048,
        }
    }
}

/// How the program failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It could not be started.
    NotStarted(String),
    Exited(i32),
    Signal(i32),
    TimedOut(Duration),
    /// It exited 0 but stopped reading the message part way (a write failed: `reason`).
    Unread(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::NotStarted(why) => write!(f, "cannot run /bin/sh: {why}"),
            Status::Exited(c) => write!(f, "exited {c}"),
            Status::Signal(s) => write!(f, "killed by signal {s}"),
            Status::TimedOut(d) => write!(f, "did not finish within {} seconds: stopped", d.as_secs()),
            Status::Unread(why) => write!(f, "exited 0 without reading the whole message ({why})"),
        }
    }
}

/// Run `command` with `msg` on its standard input and `env` added to our environment.
/// Returns what it wrote to standard output (at most `opts.stdout_max` bytes).
pub fn deliver(
    command: &str,
    msg: Message<'_>,
    now: u64,
    env: &[(String, String)],
    opts: &Options,
) -> Result<Vec<u8>, Error> {
    let from = super::from_line(msg.from_line, now)?;
    let fail = |status, stderr: String| Error::Program {
        command: command.to_string(),
        status,
        stderr,
    };
    let deadline = Instant::now() + opts.timeout;
    let mut cmd = Command::new("/bin/sh");
    crate::child::own_group(&mut cmd);
    let mut child = cmd
        .args(["-c", command])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(Status::NotStarted(crate::exit::describe_io(&e)), String::new()))?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        crate::child::stop(&mut child);
        return Err(fail(Status::NotStarted("no pipes".into()), String::new()));
    };
    let stdout_max = opts.stdout_max as u64;
    let stderr_max = opts.stderr_max;
    let out_reader = std::thread::spawn(move || crate::child::read_head(&mut stdout, stdout_max).unwrap_or_default());
    let err_reader =
        std::thread::spawn(move || crate::child::read_tail(&mut stderr, stderr_max).trim().replace('\n', " "));
    // The message is written here (the body reader need not be Send); a watchdog kills
    // the group at the deadline, which ends a write the program does not read. The
    // child is reaped only after the watchdog has stopped, so its pid (the group's id)
    // cannot have been reused when the watchdog signals it.
    let pgid = child.id() as libc::pid_t;
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(left) {
            // SAFETY: signalling the process group the (unreaped) child leads.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    });
    let written = write_message(&mut stdin, &from, msg);
    drop(stdin);
    let status = crate::child::wait_until(&mut child, deadline);
    let _ = done.send(());
    let _ = watchdog.join();
    let stderr = err_reader.join().unwrap_or_default();
    let stdout = out_reader.join().unwrap_or_default();
    let status = match status {
        Ok(Some(s)) => s,
        Ok(None) => return Err(fail(Status::TimedOut(opts.timeout), stderr)),
        Err(e) => return Err(fail(Status::NotStarted(format!("waiting for it: {e}")), stderr)),
    };
    use std::os::unix::process::ExitStatusExt as _;
    if Instant::now() >= deadline && status.signal() == Some(libc::SIGKILL) {
        return Err(fail(Status::TimedOut(opts.timeout), stderr));
    }
    let written = match written {
        // Reading the message failed, so the program saw a short one: that is the news.
        Err(Written::Read(e)) => return Err(Error::Input(e)),
        Err(Written::Write(e)) => Some(e),
        Ok(()) => None,
    };
    match (status.code(), status.signal(), written) {
        (Some(0), _, None) => Ok(stdout),
        (Some(0), _, Some(e)) => Err(fail(Status::Unread(crate::exit::describe_io(&e)), stderr)),
        (Some(c), _, _) => Err(fail(Status::Exited(c), stderr)),
        (None, Some(s), _) => Err(fail(Status::Signal(s), stderr)),
        (None, None, _) => Err(fail(Status::Exited(-1), stderr)),
    }
}

enum Written {
    Read(std::io::Error),
    Write(std::io::Error),
}

fn write_message(stdin: &mut dyn Write, from: &[u8], msg: Message<'_>) -> Result<(), Written> {
    stdin.write_all(from).map_err(Written::Write)?;
    stdin.write_all(msg.header).map_err(Written::Write)?;
    let body: &mut dyn Read = msg.body;
    super::pump(body, |chunk| stdin.write_all(chunk)).map_err(|e| match e {
        super::PumpError::Read(e) => Written::Read(e),
        super::PumpError::Write(e) => Written::Write(e),
    })?;
    stdin.flush().map_err(Written::Write)
}
