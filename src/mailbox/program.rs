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
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        crate::child::stop(&mut child);
        return Err(fail(Status::NotStarted("no pipes".into()), String::new()));
    };
    let stdout_max = opts.stdout_max as u64;
    let stderr_max = opts.stderr_max;
    let out_reader = std::thread::spawn(move || crate::child::read_head(&mut stdout, stdout_max).unwrap_or_default());
    let err_reader = std::thread::spawn(move || {
        crate::child::read_tail(&mut stderr, stderr_max)
            .trim()
            .replace('\n', " ")
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str, body: &[u8], opts: &Options) -> Result<Vec<u8>, Error> {
        let mut body = body;
        let msg = Message {
            header: b"Subject: hi\n\n",
            body: &mut body,
            from_line: Some(b"From alice@example.org Sat Jan  3 01:05:34 2004\n"),
        };
        deliver(command, msg, 1, &[("TMDA_TEST_VAR".into(), "it's set".into())], opts)
    }

    #[test]
    fn the_program_reads_the_message_with_its_from_line_unquoted() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("got");
        let cmd = format!("cat > '{}'; echo \"$TMDA_TEST_VAR\"", f.display());
        let stdout = run(&cmd, b"From here\nbody\n", &Options::default()).unwrap();
        assert_eq!(
            std::fs::read(&f).unwrap(),
            b"From alice@example.org Sat Jan  3 01:05:34 2004\nSubject: hi\n\nFrom here\nbody\n"
        );
        assert_eq!(stdout, b"it's set\n");
    }

    #[test]
    fn failures_carry_the_status_and_the_end_of_stderr() {
        let e = run(
            "cat >/dev/null; echo first >&2; echo 'no such mailbox' >&2; exit 3",
            b"x\n",
            &Options::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Program {
                    status: Status::Exited(3),
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "command \"cat >/dev/null; echo first >&2; echo 'no such mailbox' >&2; exit 3\": exited 3 (first no such mailbox)"
        );
        assert_eq!(e.exit_code(), crate::exit::Sysexit::TempFail);

        let e = run("cat >/dev/null; kill -9 $$", b"x\n", &Options::default()).unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Program {
                    status: Status::Signal(9),
                    ..
                }
            ),
            "{e}"
        );

        // A chatty program: only the last bytes of stderr are kept.
        let opts = Options {
            stderr_max: 100,
            ..Options::default()
        };
        let e = run(
            "cat >/dev/null; yes error | head -c 1000000 >&2; echo last >&2; exit 1",
            b"",
            &opts,
        )
        .unwrap_err();
        let Error::Program { stderr, .. } = &e else {
            panic!("{e}")
        };
        assert!(
            stderr.len() <= 100 && stderr.starts_with("error") && stderr.ends_with("last"),
            "{stderr}"
        );
    }

    #[test]
    fn output_is_bounded() {
        let opts = Options {
            stdout_max: 1000,
            ..Options::default()
        };
        let out = run("cat >/dev/null; yes | head -c 5000000", b"", &opts).unwrap();
        assert_eq!(out.len(), 1000);
    }

    #[test]
    fn a_program_past_its_deadline_is_stopped() {
        let opts = Options {
            timeout: Duration::from_millis(300),
            ..Options::default()
        };
        let started = Instant::now();
        // It neither reads (so a large message blocks our write) nor ends.
        let e = run("sleep 30 & sleep 30", &vec![b'x'; 4 << 20], &opts).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            matches!(
                &e,
                Error::Program {
                    status: Status::TimedOut(_),
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().ends_with("did not finish within 0 seconds: stopped"),
            "{e}"
        );
    }

    #[test]
    fn exiting_0_without_reading_the_message_is_a_failure() {
        let e = run("exit 0", &vec![b'x'; 4 << 20], &Options::default()).unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Program {
                    status: Status::Unread(_),
                    ..
                }
            ),
            "{e}"
        );
    }
}
