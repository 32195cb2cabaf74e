//! Global mode's privilege separation. Before the network-facing process gives up root
//! for good (real, effective and saved uid), it forks this launcher, which keeps root.
//!
//! # The trust boundary
//!
//! The network process talks to every client and so must be assumed taken over; the
//! launcher trusts nothing it says beyond the two things it may ask:
//!
//! - **Deliver**: "this login authenticated; deliver this message" (the message as a
//!   descriptor, with the envelope: sender, recipients, the Received text, SMTPUTF8).
//! - **PamCheck**: "check this password for this login with PAM service S", S being
//!   one of the `-m` services named at start-up.
//!
//! Every decision is the launcher's, from facts it checks itself and from its start-up
//! configuration ([`Setup`]): it looks the account up, serves only ordinary accounts
//! ([`check_account`]: uid at least `--min-uid`, by default `UID_MIN` from
//! /etc/login.defs; never root, uid 65534 or a member of group 0 by its primary group;
//! never the daemon's own `-u` user; a home directory that exists), and builds every
//! program path, argument and environment variable itself. The only per-message
//! values that reach a child are data in fixed places: recipients after `--`, where no
//! option is parsed; the sender, the Received text and the login in environment
//! variables the launcher names. Each is checked (length, no control characters, no
//! login beginning with `-` or `.`), so none can become an option, a path or a program.
//! What a taken-over network process can still do is what a delivery is: have an
//! ordinary user's own `tmda sendmail` tag and send a message it chose.
//!
//! Checkpassword programs (`-A`) never come here: they run in the network process as
//! the `-u` user. PAM checks are limited here, whatever the network process does: at
//! most [`PamLimits::per_user_failures`] failed checks per login in
//! [`PamLimits::per_user_window`], [`PamLimits::global`] checks in
//! [`PamLimits::global_window`], [`PamLimits::concurrent`] at once, and each one is
//! stopped after [`PamLimits::timeout`] (a hung module does not keep its slot).
//! Every refused request is logged on standard error, one line, without secrets.
//!
//! # Protocol
//!
//! Over a Unix stream socket: a request is a 4-byte length, sent with its descriptors
//! (SCM_RIGHTS: Deliver sends the message, the child's standard error and a reply
//! socket; PamCheck the reply socket alone), then the body ([`Request::encode`]). The
//! answer, on the reply socket, is a tag byte, an i32 and a length-prefixed text
//! ([`Answer`]). The launcher forks a handler per accepted request, so deliveries run
//! side by side; decisions and limits live in its one main loop.

mod policy;
mod wire;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::account::Account;
use crate::auth::Verdict;
use policy::{Job, decide, home_exists};
pub use policy::{
    PamLimiter, Plan, Refusal, RefusalKind, check_account, check_login, default_min_uid, sendmail_plan, vhome_args,
    vhome_plan,
};
pub use wire::{Answer, Request, Submission};
use wire::{MAX_FDS, MAX_REQUEST, Received, recv_with_fds, send_with_fds};

/// What the launcher serves, fixed when it starts.
#[derive(Debug, Clone)]
pub struct Setup {
    /// This binary, started as `tmda sendmail` for each message.
    pub tmda: PathBuf,
    /// `--vhome-script` (global mode for qmail virtual domains).
    pub vhome_script: Option<PathBuf>,
    /// `--vdomains-path`: which system user is in charge of a virtual domain.
    pub vdomains: PathBuf,
    /// `--configdir`: DIR/LOGIN/config is offered to the user's tmda sendmail.
    pub configdir: Option<PathBuf>,
    /// `--pure-proxy`: users without a configuration get the message passed through.
    pub pure_proxy: bool,
    /// Where `--pure-proxy` passes messages (`$TMDA_SENDMAIL_PROGRAM` at start-up).
    pub pass_through: PathBuf,
    /// `--restrict-sender` (with its `--sender-map`, read here by the launcher).
    pub restrict_sender: Option<std::sync::Arc<crate::sender_policy::SenderPolicy>>,
    /// How long a delivery program may run.
    pub timeout: Duration,
    /// The PAM services (`-m`) passwords may be checked with.
    pub pam_services: Vec<String>,
    pub pam: PamLimits,
    /// The lowest uid served (`--min-uid`).
    pub min_uid: u32,
    /// Never served: the daemon's own `-u` user.
    pub deny_uids: Vec<u32>,
    /// This host's name (`--hostname`): a user's tmda sendmail sends delivery status
    /// notifications from MAILER-DAEMON@ it.
    pub hostname: String,
}

/// The launcher's own limits on PAM checks.
#[derive(Debug, Clone, Copy)]
pub struct PamLimits {
    /// Failed checks per login within `per_user_window` before further ones are refused.
    pub per_user_failures: usize,
    pub per_user_window: Duration,
    /// Checks of all logins within `global_window` before further ones are refused.
    pub global: usize,
    pub global_window: Duration,
    /// Checks running at once.
    pub concurrent: usize,
    /// How long one check may take before it is stopped (and answered as unavailable).
    pub timeout: Duration,
}

impl Default for PamLimits {
    fn default() -> PamLimits {
        PamLimits {
            per_user_failures: 10,
            per_user_window: Duration::from_secs(600),
            global: 300,
            global_window: Duration::from_secs(60),
            concurrent: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Handlers (requests being served) at once; beyond that, requests are refused.
const MAX_HANDLERS: usize = 1024;

/// The network process's end.
#[derive(Debug)]
pub struct Launcher {
    control: Mutex<UnixStream>,
}

/// A request on its way: [`Pending::wait`] gives the answer.
#[derive(Debug)]
pub struct Pending {
    reply: UnixStream,
}

impl Pending {
    pub fn wait(mut self) -> io::Result<Answer> {
        Answer::read_from(&mut self.reply)
    }
}

impl Launcher {
    /// Fork the launcher, which runs until the network process exits. Call as root
    /// while the process has a single thread.
    pub fn start(setup: Setup) -> io::Result<Launcher> {
        let (ours, theirs) = UnixStream::pair()?;
        // SAFETY: single-threaded here (the caller's contract), so the child may run
        // anything; it only runs the launcher loop and leaves with _exit.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                drop(ours);
                keep_only(theirs.as_raw_fd());
                // SAFETY: a plain signal disposition change in a single-threaded process;
                // handlers are reaped by pid (see serve).
                unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
                let pid = std::process::id();
                serve(theirs, &setup, &mut |line: &str| {
                    eprintln!("tmda-ofmipd[{pid}]: launcher: {line}")
                });
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

    /// A launcher on an existing socket (the other end served by [`serve`]).
    pub fn on(control: UnixStream) -> Launcher {
        Launcher {
            control: Mutex::new(control),
        }
    }

    /// Send one request with its descriptors (closed here once handed over).
    fn send(&self, req: &Request, fds: Vec<OwnedFd>) -> io::Result<Pending> {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.send_raw(&req.encode(), &raw)
    }

    /// Send `body` as it is, with `fds` and then a new reply socket: anything a
    /// taken-over network process could send (the attack tests act as one).
    pub fn send_raw(&self, body: &[u8], fds: &[RawFd]) -> io::Result<Pending> {
        let (reply, reply_theirs) = UnixStream::pair()?;
        let mut raw = fds.to_vec();
        raw.push(reply_theirs.as_raw_fd());
        let control = self.control.lock().map_err(|_| io::Error::other("launcher lock"))?;
        let sent =
            send_with_fds(&control, &(body.len() as u32).to_le_bytes(), &raw).and_then(|_| (&*control).write_all(body));
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
        Ok(Pending { reply })
    }

    /// Deliver `message` (the child's standard input) as `sub.login`; the child's
    /// standard error goes to `errors`.
    pub fn deliver(&self, sub: &Submission, message: OwnedFd, errors: OwnedFd) -> io::Result<Pending> {
        self.send(&Request::Deliver(sub.clone()), vec![message, errors])
    }
}

impl crate::auth::pam::Checker for Launcher {
    /// A PAM check by the launcher.
    fn pam(&self, service: &str, login: &str, password: &str) -> Verdict {
        let req = Request::PamCheck {
            service: service.into(),
            login: login.into(),
            password: password.into(),
        };
        match self.send(&req, vec![]).and_then(Pending::wait) {
            Ok(Answer::Exited(0)) => Verdict::Accepted,
            Ok(Answer::Exited(_)) | Ok(Answer::Refused(_)) => Verdict::Denied,
            Ok(Answer::Killed) => Verdict::Unavailable("PAM check killed".into()),
            Ok(Answer::Failed(why)) | Ok(Answer::ConfigError(why)) => Verdict::Unavailable(format!("PAM: {why}")),
            Err(e) => Verdict::Unavailable(format!("PAM: {e}")),
        }
    }
}

/// The launcher holds nothing of the network process's: standard input and output
/// become /dev/null (under tcpserver they are the client's connection) and every other
/// descriptor but `keep` (the listeners, the authfile...) is closed. Standard error stays
/// for messages.
fn keep_only(keep: RawFd) {
    // SAFETY: descriptor housekeeping in the freshly forked, single-threaded launcher,
    // which owns no descriptor but `keep` and the standard ones from here on.
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

/// A handler the main loop waits for.
#[derive(Debug)]
struct Handler {
    /// PAM checks: the login, when it started, its deadline, and a copy of the reply
    /// socket to answer on if the check has to be stopped.
    pam: Option<(String, Instant, Instant, Option<UnixStream>)>,
}

/// The main loop's state: running handlers and PAM limits.
#[derive(Debug)]
struct State {
    handlers: HashMap<libc::pid_t, Handler>,
    pam: PamLimiter,
}

impl State {
    /// Collect finished handlers (by pid: the loop may run in a process with other
    /// children) and stop PAM checks past their deadline.
    fn tend(&mut self, now: Instant, log: &mut dyn FnMut(&str)) {
        let pids: Vec<libc::pid_t> = self.handlers.keys().copied().collect();
        for pid in pids {
            let mut status = 0;
            // SAFETY: waitpid on a child of ours, with a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid || r < 0 {
                let h = self.handlers.remove(&pid).expect("listed");
                if let Some((login, started, _, _)) = h.pam {
                    let accepted = r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
                    self.pam.finished(&login, started, accepted);
                }
                continue;
            }
            let Some(h) = self.handlers.get_mut(&pid) else { continue };
            if let Some((login, _, deadline, reply)) = &mut h.pam
                && now >= *deadline
                && let Some(mut reply) = reply.take()
            {
                // SAFETY: signalling our own child and the process group it leads.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
                let why = format!(
                    "the PAM check did not finish within {} seconds",
                    self.pam.limits.timeout.as_secs()
                );
                log(&format!("stopped a PAM check for {}: {why}", crate::exit::quote(login)));
                let _ = reply.write_all(&Answer::Failed(why).encode());
            }
        }
    }

    /// How long the loop may wait for the next request.
    fn poll_timeout(&self, now: Instant) -> libc::c_int {
        let next = self
            .handlers
            .values()
            .filter_map(|h| h.pam.as_ref().filter(|p| p.3.is_some()).map(|p| p.2))
            .min();
        match next {
            Some(d) => d.saturating_duration_since(now).as_millis().clamp(1, 1000) as libc::c_int,
            // Handlers still running are reaped within a second of finishing.
            None if !self.handlers.is_empty() => 1000,
            None => -1,
        }
    }
}

/// Serve requests on `sock` until the other end goes away. `log` gets one line per
/// refused request (never a password). Forks a handler per accepted request.
pub fn serve(sock: UnixStream, setup: &Setup, log: &mut dyn FnMut(&str)) {
    let mut state = State {
        handlers: HashMap::new(),
        pam: PamLimiter::new(setup.pam),
    };
    // A request's body follows its header at once; a sender that stops half-way has
    // broken the protocol and is left.
    let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        state.tend(Instant::now(), log);
        let mut pfd = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, state.poll_timeout(Instant::now())) };
        if ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
        if ready <= 0 {
            continue;
        }
        let mut len = [0u8; 4];
        let (mut fds, truncated) = match recv_with_fds(&sock, &mut len) {
            Ok(Received::Header { fds, truncated }) => (fds, truncated),
            Ok(Received::Eof) => return,
            Err(e) => {
                log(&format!("leaving: cannot read a request: {e}"));
                return;
            }
        };
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_REQUEST {
            log(&format!("leaving: a request of {len} bytes (the protocol is broken)"));
            return;
        }
        let mut body = vec![0u8; len];
        if let Err(e) = (&sock).read_exact(&mut body) {
            log(&format!("leaving: cannot read a request: {e}"));
            return;
        }
        // The reply socket comes last.
        let reply = fds.pop().map(UnixStream::from);
        let decoded = Request::decode(&body);
        let what = describe(&decoded);
        let count = if truncated {
            MAX_FDS + 1
        } else {
            fds.len() + reply.is_some() as usize
        };
        let now = Instant::now();
        let job = decide(setup, &|n| Account::lookup(n), decoded, count).and_then(|job| {
            if state.handlers.len() >= MAX_HANDLERS {
                return Err(Refusal::transient("too many requests at once"));
            }
            if let Job::Pam { login, .. } = &job {
                state.pam.admit(login, now)?;
            }
            Ok(job)
        });
        let job = match job {
            Ok(j) => j,
            Err(r) => {
                log(&format!("refused {what}: {}", r.reason));
                if let Some(mut reply) = reply {
                    let _ = reply.write_all(&r.answer().encode());
                }
                continue;
            }
        };
        let pam = match &job {
            Job::Pam { login, .. } => Some((
                login.clone(),
                now,
                now + setup.pam.timeout,
                reply.as_ref().and_then(|r| r.try_clone().ok()),
            )),
            Job::Deliver { .. } => None,
        };
        // SAFETY: the launcher is single-threaded (the handler may run anything), and the
        // handler leaves with _exit, never returning into this loop.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: the handler never uses `sock` (the control socket) again and
                // never returns to code that could: closing the descriptor is sound.
                unsafe { libc::close(sock.as_raw_fd()) };
                let code = handle(setup, job, fds, reply);
                // SAFETY: leave without running exit handlers or destructors.
                unsafe { libc::_exit(code) }
            }
            -1 => {
                if let Some((login, started, ..)) = &pam {
                    state.pam.finished(login, *started, false);
                }
                log(&format!("cannot serve {what}: fork: {}", io::Error::last_os_error()));
                if let Some(mut reply) = reply {
                    let _ = reply.write_all(&Answer::Failed("the launcher cannot fork".into()).encode());
                }
            }
            pid => {
                state.handlers.insert(pid, Handler { pam });
            }
        }
    }
}

/// For the log: what was asked, without secrets.
fn describe(req: &Result<Request, &'static str>) -> String {
    match req {
        Ok(Request::Deliver(s)) => format!("a delivery for {}", crate::exit::quote(&s.login)),
        Ok(Request::PamCheck { service, login, .. }) => {
            format!(
                "a PAM check ({}) for {}",
                crate::exit::quote(service),
                crate::exit::quote(login)
            )
        }
        Err(_) => "a request".into(),
    }
}

/// Serve one accepted request (in its own process, as root); the exit code for the
/// main loop (PAM: 0 accepted, 1 denied, 2 unavailable).
fn handle(setup: &Setup, job: Job, mut fds: Vec<OwnedFd>, reply: Option<UnixStream>) -> i32 {
    let (answer, code) = match job {
        Job::Pam {
            service,
            login,
            password,
        } => {
            // A process group of its own, so a stopped check takes what its modules
            // started with it.
            // SAFETY: setpgid on ourselves.
            unsafe { libc::setpgid(0, 0) };
            match crate::auth::pam::check_here(&service, &login, &password) {
                Verdict::Accepted => (Answer::Exited(0), 0),
                Verdict::Denied => (Answer::Exited(1), 1),
                Verdict::Unavailable(why) => (Answer::Failed(why), 2),
            }
        }
        Job::Deliver {
            account,
            sub,
            virtual_user,
            allowed_senders,
        } => {
            let errors = fds.pop().expect("checked by decide");
            let message = fds.pop().expect("checked by decide");
            let allowed = allowed_senders.as_deref();
            (deliver(setup, account, &sub, virtual_user, allowed, message, errors), 0)
        }
    };
    if let Some(mut reply) = reply {
        let _ = reply.write_all(&answer.encode());
    }
    code
}

fn deliver(
    setup: &Setup,
    account: Account,
    sub: &Submission,
    virtual_user: Option<(String, String)>,
    allowed_senders: Option<&[String]>,
    message: OwnedFd,
    errors: OwnedFd,
) -> Answer {
    let account = match (&setup.vhome_script, virtual_user) {
        (Some(script), Some((u, d))) => match virtual_home(setup, script, &account, &u, &d) {
            Ok(home) => Account { home, ..account },
            Err(e) => return Answer::Failed(e),
        },
        _ => account,
    };
    let Ok(out) = null_fd() else {
        return Answer::Failed("cannot open /dev/null".into());
    };
    let plan = sendmail_plan(setup, &account, sub, allowed_senders);
    run(setup, &plan, message, out, errors)
}

/// The virtual user's home from the vhome script run as the domain's account.
fn virtual_home(setup: &Setup, script: &Path, account: &Account, u: &str, d: &str) -> Result<PathBuf, String> {
    let fail = |e: io::Error| format!("{}: {e}", script.display());
    let (mut out_r, out_w) = io::pipe().map_err(fail)?;
    let (stdin, stderr) = (null_fd().map_err(fail)?, null_fd().map_err(fail)?);
    let plan = vhome_plan(script, account, u, d);
    let reader = std::thread::spawn(move || crate::child::read_head(&mut out_r, 64 * 1024).unwrap_or_default());
    let answer = run(setup, &plan, stdin, out_w.into(), stderr);
    let out = reader.join().unwrap_or_default();
    let home = PathBuf::from(String::from_utf8_lossy(&out).trim());
    if answer != Answer::Exited(0) || !home.is_absolute() || !home_exists(&home) {
        return Err(format!(
            "{} found no home for {}",
            script.display(),
            crate::exit::quote(&format!("{u}@{d}"))
        ));
    }
    Ok(home)
}

/// Run `plan` with these standard streams until it ends or its time is up.
fn run(setup: &Setup, plan: &Plan, stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) -> Answer {
    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    crate::account::become_user(&mut cmd, &plan.account);
    crate::child::own_group(&mut cmd);
    let started = Instant::now();
    let status = cmd
        .spawn()
        .and_then(|mut child| crate::child::wait_until(&mut child, started + setup.timeout));
    match status {
        Ok(Some(s)) => match s.code() {
            Some(c) => Answer::Exited(c),
            None => Answer::Killed,
        },
        Ok(None) => Answer::Failed(format!(
            "{} did not finish within {} seconds",
            plan.program.display(),
            setup.timeout.as_secs()
        )),
        Err(e) => Answer::Failed(format!("{}: {e}", plan.program.display())),
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
