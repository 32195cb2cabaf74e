//! Helper programs with a deadline: the sendmail program, delivery children, the
//! throttle and vhome scripts. Each runs as the leader of its own process group, so
//! when it overstays, it and whatever it started are stopped together.

use std::io::Read;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Make `cmd`'s child the leader of a new process group (see [`wait_until`]).
pub fn own_group(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    cmd.process_group(0)
}

/// Wait for `child` until `deadline`; past it, kill its process group (or, if it has
/// none of its own, the child) and return `Ok(None)`.
pub fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            stop(child);
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Kill `child`'s process group (or, if it has none of its own, the child) and reap it.
pub fn stop(child: &mut Child) {
    // SAFETY: signalling the process group the child leads.
    if unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) } != 0 {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The last `keep` bytes of what a child writes (its verdict comes last), read to the
/// end: a child with more to say than a pipe holds would otherwise block while we wait.
pub fn read_tail(r: &mut impl Read, keep: usize) -> String {
    let mut text = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => break,
            Ok(n) => {
                text.extend_from_slice(&chunk[..n]);
                if text.len() > 2 * keep {
                    text.drain(..text.len() - keep);
                }
            }
        }
    }
    if text.len() > keep {
        text.drain(..text.len() - keep);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// The first `keep` bytes of what a child writes, the rest read and dropped (for the
/// same reason as [`read_tail`]).
pub fn read_head(r: &mut impl Read, keep: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.by_ref().take(keep).read_to_end(&mut out)?;
    std::io::copy(r, &mut std::io::sink())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_past_its_deadline_is_stopped_with_what_it_started() {
        let mut quick = own_group(Command::new("/bin/sh").args(["-c", "exit 3"]))
            .spawn()
            .unwrap();
        let status = wait_until(&mut quick, Instant::now() + Duration::from_secs(10)).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(3));
        let started = Instant::now();
        let mut slow = own_group(Command::new("/bin/sh").args(["-c", "sleep 30 & sleep 30"]))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = slow.stdout.take().unwrap();
        assert_eq!(
            wait_until(&mut slow, Instant::now() + Duration::from_millis(200)).unwrap(),
            None
        );
        // The background sleep held the pipe too: it was stopped with the group.
        let mut rest = vec![];
        std::io::Read::read_to_end(&mut out, &mut rest).unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
