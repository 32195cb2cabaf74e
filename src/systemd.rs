//! What systemd hands a service and expects of it, without libsystemd: listening
//! sockets passed by socket activation (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`;
//! sd_listen_fds(3)) and status messages on `$NOTIFY_SOCKET` (sd_notify(3): READY=1,
//! RELOADING=1, STOPPING=1, WATCHDOG=1).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The first descriptor systemd passes (SD_LISTEN_FDS_START).
const FIRST_FD: RawFd = 3;

/// One socket passed by the service manager.
#[derive(Debug)]
pub struct Passed {
    pub fd: OwnedFd,
    /// Its name from `LISTEN_FDNAMES` (`FileDescriptorName=`), or "unknown".
    pub name: String,
}

/// The sockets passed to this process, taken once: the variables are removed so that
/// children do not take them too, and the descriptors are marked close-on-exec.
/// Empty when the variables are absent or meant for another process.
pub fn take_listen_fds() -> Result<Vec<Passed>, String> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    // SAFETY: called at start-up, before any thread exists that could read the
    // environment at the same time.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(vec![]);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(vec![]);
    }
    let n: RawFd = fds
        .parse()
        .ok()
        .filter(|n| (0..=1024).contains(n))
        .ok_or_else(|| format!("LISTEN_FDS={} is not a number of descriptors", crate::exit::quote(&fds)))?;
    let names: Vec<String> = names
        .map(|s| s.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let fd = FIRST_FD + i;
        // SAFETY: fcntl on a descriptor number has no memory effects; a bad number
        // just fails with EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(format!(
                "LISTEN_FDS says descriptor {fd} was passed, but it is not open"
            ));
        }
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
        // SAFETY: the service manager passed descriptors 3.. for this process alone
        // (LISTEN_PID is ours), they are open (checked above), and each is wrapped once.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        out.push(Passed {
            fd,
            name: names.get(i as usize).cloned().unwrap_or_else(|| "unknown".into()),
        });
    }
    Ok(out)
}

/// The service manager's notification socket, if it asked for notifications.
#[derive(Debug)]
pub struct Notifier {
    socket: std::os::unix::net::UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket). The variable
    /// is removed so children do not talk to the service manager in our name.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        // SAFETY: start-up, single-threaded (see take_listen_fds).
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name).ok()?
            }
            None => std::os::unix::net::SocketAddr::from_pathname(&path).ok()?,
        };
        let socket = std::os::unix::net::UnixDatagram::unbound().ok()?;
        Some(Notifier { socket, addr })
    }

    /// Send one state message (lines `KEY=VALUE`); failures are not fatal.
    pub fn notify(&self, state: &str) -> std::io::Result<()> {
        self.socket.send_to_addr(state.as_bytes(), &self.addr).map(|_| ())
    }
}

/// How often to send WATCHDOG=1: half of `$WATCHDOG_USEC`, when it is meant for us.
pub fn watchdog_interval() -> Option<std::time::Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| std::time::Duration::from_micros(usec / 2))
}

/// CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into ts.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: std::os::unix::net::UnixDatagram::unbound().unwrap(),
            addr: std::os::unix::net::SocketAddr::from_pathname(&path).unwrap(),
        };
        n.notify("READY=1\nSTATUS=serving").unwrap();
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=serving");
        assert!(monotonic_usec() > 0);
    }
}
