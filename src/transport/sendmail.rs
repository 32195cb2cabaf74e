//! Relay through the MTA's sendmail program: `PROGRAM -i -f SENDER -- RECIPIENT`.
//!
//! The message goes to the program's standard input exactly as it was read (with the
//! rewritten header). Its standard output is discarded, never inherited: under
//! `ofmipd -1` our standard output is the SMTP connection. Exit 0 means accepted,
//! 75 (EX_TEMPFAIL) or death by a signal transient, anything else permanent.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Copy, DeliveryError, Transport};

pub struct Sendmail {
    pub program: PathBuf,
    /// Pass the null sender as `-f ''` (Postfix, qmail) rather than `-f '<>'`.
    pub null_sender_empty: bool,
    /// Extra environment for the program (the config's `os.environ` settings).
    pub env: Vec<(String, String)>,
}

impl Sendmail {
    fn sender_arg(&self, sender: &str) -> String {
        let s = if sender.is_empty() || sender == "<>" {
            "<>"
        } else {
            sender
        };
        if s == "<>" && self.null_sender_empty {
            String::new()
        } else {
            s.to_string()
        }
    }
}

/// How long the program may run; unset (the command line) means as long as it takes.
static TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// A daemon limits the program's run (`ofmipd --delivery-timeout`): past it, the
/// program and whatever it started are stopped and the copy fails as transient.
pub fn set_timeout(limit: Duration) {
    let _ = TIMEOUT.set(limit);
}

impl Transport for Sendmail {
    fn send(&mut self, copy: &Copy<'_>) -> Result<(), DeliveryError> {
        let program = self.program.display().to_string();
        let fail = |reason: String, transient: bool, code: Option<i32>, stderr: String| DeliveryError::Program {
            program: program.clone(),
            reason,
            transient,
            code,
            stderr,
        };
        let timeout = TIMEOUT.get().copied();
        let mut cmd = Command::new(&self.program);
        if timeout.is_some() {
            crate::child::own_group(&mut cmd);
        }
        let started = Instant::now();
        super::trace(format_args!(
            "--> {} -i -f {} -- {}",
            self.program.display(),
            crate::exit::quote(&self.sender_arg(copy.sender)),
            copy.recipient
        ));
        let mut child = cmd
            .args(["-i", "-f", &self.sender_arg(copy.sender), "--", copy.recipient])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                fail(
                    format!("cannot run: {}", crate::exit::describe_io(&e)),
                    false,
                    None,
                    String::new(),
                )
            })?;
        let mut stderr = child.stderr.take().expect("piped");
        // Read stderr concurrently so a chatty program cannot deadlock us.
        let err_reader =
            std::thread::spawn(move || crate::child::read_tail(&mut stderr, 2048).trim().replace('\n', " "));
        let mut stdin = child.stdin.take().expect("piped");
        // Written on a thread, so a program that neither reads nor ends cannot hold us
        // past the deadline.
        let (written, status) = std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                stdin
                    .write_all(copy.header)
                    .and_then(|_| copy.message.for_each_body_chunk(|c| stdin.write_all(c)))
            });
            let status = match timeout {
                Some(limit) => crate::child::wait_until(&mut child, started + limit),
                None => child.wait().map(Some),
            };
            (
                writer
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("writer failed"))),
                status,
            )
        });
        let status = status.map_err(|e| fail(format!("waiting for it: {e}"), true, None, String::new()))?;
        let stderr = err_reader.join().unwrap_or_default();
        if super::tracing() {
            let how = match &status {
                Some(s) => s.to_string(),
                None => "still running: stopped".into(),
            };
            super::trace(format_args!(
                "<-- {how}{}",
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr}")
                }
            ));
        }
        let Some(status) = status else {
            let limit = timeout.unwrap_or_default().as_secs();
            return Err(fail(
                format!("did not finish within {limit} seconds"),
                true,
                None,
                stderr,
            ));
        };
        if status.success() {
            // The program claims success; a write error would mean it did not read everything.
            return written.map_err(|e| {
                fail(
                    format!("exited 0 without reading the whole message ({e})"),
                    true,
                    None,
                    stderr,
                )
            });
        }
        Err(match status.code() {
            Some(75) => fail("exited 75 (temporary failure)".into(), true, Some(75), stderr),
            Some(c) => fail(format!("exited {c}"), false, Some(c), stderr),
            None => {
                use std::os::unix::process::ExitStatusExt;
                fail(
                    format!("killed by signal {}", status.signal().unwrap_or(0)),
                    true,
                    None,
                    stderr,
                )
            }
        })
    }
}
