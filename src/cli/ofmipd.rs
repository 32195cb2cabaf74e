//! `tmda ofmipd` (`tmda-ofmipd`): the authenticated SMTP submission proxy.
//!
//! Keeps every option of TMDA's tmda-ofmipd. Start-up order matters: check the
//! configuration, bind the listening sockets (maybe privileged ports), detach unless
//! `-f`, fork the root launcher that starts per-user delivery children
//! ([`crate::launcher`]), drop root for good to `-u USER` (default tofmipd), and only
//! then start the async runtime.

use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::account::Account;
use crate::delivery::Delivery;
use crate::error::Error;
use crate::server::{self, Limits, LogLevel, Server, TlsSetting};
use crate::smtp::session::Peer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsArg {
    /// STARTTLS offered; AUTH allowed before it
    Optional,
    /// Like optional for clients on a loopback address, like on for everyone else
    Localoptional,
    /// STARTTLS required before AUTH, MAIL and the rest
    On,
}

#[derive(Debug, clap::Parser)]
#[command(
    version,
    disable_version_flag = true,
    about = "Authenticated SMTP proxy that tags outgoing mail with TMDA addresses",
    long_about = "An authenticated SMTP submission proxy (ofmip) for TMDA. Mail clients submit over SMTP AUTH \
(PLAIN, LOGIN, CRAM-MD5), optionally over TLS; each message is tagged with the authenticated user's TMDA \
configuration and relayed to the real MTA. It does not replace the MTA. Runs as a daemon, or for one session \
on standard input and output under tcpserver, xinetd, stunnel or systemd (-1)."
)]
pub struct Args {
    /// Log the protocol trace too (AUTH data and passwords are never logged)
    #[arg(short = 'd', long = "debug", help_heading = "General")]
    pub debug: bool,
    /// Log sessions, authentication and delivery results to standard error
    #[arg(short = 'L', long = "log", help_heading = "General")]
    pub log: bool,
    /// Detach and run in the background (the default)
    #[arg(short = 'b', long = "background", help_heading = "General")]
    pub background: bool,
    /// Log to syslog (facility mail) instead of standard error; the default when
    /// detached, whose standard error is /dev/null. $TMDA_SYSLOG_SOCKET names another
    /// socket than /dev/log
    #[arg(long = "syslog", help_heading = "General")]
    pub syslog: bool,
    /// Write the daemon's process id to FILE (after detaching; removed on exit when it can be)
    #[arg(
        long = "pid-file",
        value_name = "FILE",
        help_heading = "General",
        conflicts_with = "one_session"
    )]
    pub pid_file: Option<PathBuf>,
    /// Do not detach; run in the foreground
    #[arg(
        short = 'f',
        long = "foreground",
        help_heading = "General",
        overrides_with = "background"
    )]
    pub foreground: bool,
    /// Run as this user when started as root (default: tofmipd)
    #[arg(short = 'u', long = "username", value_name = "USER", help_heading = "General")]
    pub username: Option<String>,
    /// Started as root: deliver for, and check PAM passwords of, only accounts with at
    /// least this uid (system accounts have less) [default: UID_MIN from
    /// /etc/login.defs, else 1000]
    #[arg(long = "min-uid", value_name = "UID", value_parser = clap::value_parser!(u32).range(1..), help_heading = "General")]
    pub min_uid: Option<u32>,
    /// Find each user's config in DIR/USER/config instead of ~USER/.tmda/config
    #[arg(
        short = 'c',
        long = "configdir",
        value_name = "DIR",
        help_heading = "General",
        conflicts_with = "vhome_script"
    )]
    pub configdir: Option<PathBuf>,
    /// Listen on HOST:PORT (repeatable; ":PORT" or "0.0.0.0:PORT" means all IPv4 interfaces). Default: FQDN:8025
    #[arg(
        short = 'p',
        long = "proxyport",
        value_name = "HOST:PORT",
        help_heading = "Connection"
    )]
    pub proxyport: Vec<String>,
    /// Listen on IPv6 HOST:PORT (repeatable; ":PORT" means all IPv6 interfaces)
    #[arg(
        short = '6',
        long = "ipv6proxyport",
        value_name = "HOST:PORT",
        help_heading = "Connection"
    )]
    pub ipv6proxyport: Vec<String>,
    /// Handle at most NUM sessions at once; further connections wait until one ends
    #[arg(short = 'C', long = "connections", value_name = "NUM", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Connection")]
    pub connections: u32,
    /// Serve one SMTP session on standard input and output instead of listening
    #[arg(short = '1', long = "one-session", help_heading = "Connection")]
    pub one_session: bool,
    /// Relay mail of users without a TMDA config unaltered through $TMDA_SENDMAIL_PROGRAM (default /usr/sbin/sendmail)
    #[arg(short = 'P', long = "pure-proxy", help_heading = "Connection")]
    pub pure_proxy: bool,
    /// Program run with the login name before each message; non-zero refuses it (450)
    #[arg(
        short = 't',
        long = "throttle-script",
        value_name = "PATH",
        help_heading = "Connection"
    )]
    pub throttle_script: Option<PathBuf>,
    /// TLS from the first byte (port 465 style); needs --ssl-cert and --ssl-key
    #[arg(long = "ssl", conflicts_with = "tls", help_heading = "Connection")]
    pub ssl: bool,
    /// Offer STARTTLS: optional, localoptional or on; needs --ssl-cert and --ssl-key
    #[arg(long = "tls", value_enum, value_name = "MODE", help_heading = "Connection")]
    pub tls: Option<TlsArg>,
    /// Certificate chain, PEM (reloaded on SIGHUP or when the file changes)
    #[arg(long = "ssl-cert", value_name = "FILE", help_heading = "Connection")]
    pub ssl_cert: Option<PathBuf>,
    /// Private key, PEM (PKCS#8, PKCS#1 or SEC1)
    #[arg(long = "ssl-key", value_name = "FILE", help_heading = "Connection")]
    pub ssl_key: Option<PathBuf>,
    /// Accepted for compatibility and ignored: rustls always uses its own safe TLS 1.2/1.3 cipher suites
    #[arg(long = "ciphers", value_name = "LIST", help_heading = "Connection")]
    pub ciphers: Option<String>,
    /// Name in the greeting and Received fields (default: this host's FQDN)
    #[arg(long = "hostname", value_name = "NAME", help_heading = "Connection")]
    pub hostname: Option<String>,
    /// Largest message accepted, in bytes (advertised with SIZE)
    #[arg(long = "max-size", value_name = "BYTES", default_value_t = 50 * 1024 * 1024, help_heading = "Connection")]
    pub max_size: u64,
    /// Seconds to wait for a command before closing the connection (RFC 5321: at least 300)
    #[arg(
        long = "timeout",
        value_name = "SECONDS",
        default_value_t = 300,
        help_heading = "Connection"
    )]
    pub timeout: u64,
    /// Seconds to wait for more DATA before closing the connection
    #[arg(
        long = "data-timeout",
        value_name = "SECONDS",
        default_value_t = 180,
        help_heading = "Connection"
    )]
    pub data_timeout: u64,
    /// Seconds a delivery program (the sendmail program, global mode's per-user tmda
    /// sendmail, the throttle and vhome scripts) may run before it is stopped and the
    /// client told to try again (RFC 5321 has clients wait 10 minutes for the answer)
    #[arg(
        long = "delivery-timeout",
        value_name = "SECONDS",
        default_value_t = 600,
        help_heading = "Connection"
    )]
    pub delivery_timeout: u64,
    /// Threads serving connections [default: one less than the number of CPUs, at
    /// least one, leaving a CPU to the MTA that ofmipd relays to]
    #[arg(long = "threads", value_name = "N", value_parser = clap::value_parser!(u16).range(1..), help_heading = "Connection")]
    pub threads: Option<u16>,
    /// Connections at once from one client address; more are told 421 and closed.
    /// Behind a proxy without the PROXY protocol every client has the proxy's address:
    /// raise it there
    #[arg(long = "connections-per-ip", value_name = "NUM", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub connections_per_ip: u32,
    /// Connections from FROM (an address or a CIDR range; repeatable) must start with a
    /// PROXY protocol header (v1 or v2, as haproxy's send-proxy and stunnel's protocol =
    /// proxy send it), whose client address is then the client's; from anyone else a
    /// header is refused
    #[arg(long = "proxy-protocol", value_name = "FROM", help_heading = "Connection")]
    pub proxy_protocol: Vec<crate::proxy::Cidr>,
    /// Seconds a TLS handshake may take (implicit TLS and STARTTLS; never more than --timeout)
    #[arg(
        long = "tls-timeout",
        value_name = "SECONDS",
        default_value_t = 30,
        help_heading = "Limits"
    )]
    pub tls_timeout: u64,
    /// Bytes a second DATA must average once --data-timeout has passed (0: no minimum;
    /// --data-timeout then applies to each read)
    #[arg(
        long = "min-data-rate",
        value_name = "BYTES",
        default_value_t = 500,
        help_heading = "Limits"
    )]
    pub min_data_rate: u64,
    /// Seconds a session may last before it has authenticated
    #[arg(
        long = "unauth-timeout",
        value_name = "SECONDS",
        default_value_t = 60,
        help_heading = "Limits"
    )]
    pub unauth_timeout: u64,
    /// Refused or undecided AUTH attempts in one session before it is closed (421)
    #[arg(long = "max-auth-failures", value_name = "NUM", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub max_auth_failures: u32,
    /// Milliseconds to wait before answering a refused or undecided AUTH, times the
    /// number of such attempts so far in the session
    #[arg(
        long = "auth-delay",
        value_name = "MS",
        default_value_t = 500,
        help_heading = "Limits"
    )]
    pub auth_delay: u64,
    /// Refused or undecided AUTH attempts from one client address within --auth-window
    /// before it is refused without asking
    #[arg(long = "auth-limit-ip", value_name = "NUM", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub auth_limit_ip: u32,
    /// Refused AUTH attempts for one user within --auth-window before that user is
    /// refused from addresses that have been failing (never from a clean one)
    #[arg(long = "auth-limit-user", value_name = "NUM", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub auth_limit_user: u32,
    /// Seconds a failed AUTH attempt is remembered
    #[arg(
        long = "auth-window",
        value_name = "SECONDS",
        default_value_t = 600,
        help_heading = "Limits"
    )]
    pub auth_window: u64,
    /// Addresses and users remembered (each); beyond it expired, then the oldest, are forgotten
    #[arg(long = "auth-memory", value_name = "NUM", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub auth_memory: u32,
    /// With -1: the file that one-session processes share failed-AUTH counts in (locked,
    /// mode 0600, at most 2,000 entries each). Default: /run/tmda/ofmipd-budget when
    /// started as root, else $XDG_RUNTIME_DIR/tmda-ofmipd-budget, else /run/tmda if
    /// writable, else ~/.tmda/ofmipd-budget
    #[arg(long = "budget-file", value_name = "FILE", help_heading = "Limits")]
    pub budget_file: Option<PathBuf>,
    /// Refuse (553 5.7.1) a message whose From, Sender or envelope sender is not one of
    /// the user's own: USERNAME@HOSTNAME and its tagged forms, the config's
    /// OFMIPD_ALLOWED_SENDERS, or the --sender-map entries (Postfix's
    /// reject_sender_login_mismatch)
    #[arg(long = "restrict-sender", help_heading = "Authentication")]
    pub restrict_sender: bool,
    /// For --restrict-sender: lines 'login address...' (an address '@domain' allows the
    /// whole domain; re-read when it changes)
    #[arg(
        long = "sender-map",
        value_name = "FILE",
        requires = "restrict_sender",
        help_heading = "Authentication"
    )]
    pub sender_map: Option<PathBuf>,
    /// Offer AUTH only over TLS (after STARTTLS or with --ssl), as Postfix's smtpd_tls_auth_only
    #[arg(long = "tls-auth-only", help_heading = "Authentication")]
    pub tls_auth_only: bool,
    /// Check credentials against this tofmipd file (user:password lines, mode 600 or 400). Default: /etc/tofmipd as root, else ~/.tmda/tofmipd
    #[arg(short = 'a', long = "authfile", value_name = "FILE", help_heading = "Authentication")]
    pub authfile: Vec<PathBuf>,
    /// Check credentials with a checkpassword program (user, password, time on descriptor 3)
    #[arg(
        short = 'A',
        long = "authprog",
        value_name = "PROGRAM",
        help_heading = "Authentication"
    )]
    pub authprog: Vec<String>,
    /// Check credentials against a remote server: imap, imaps, pop3, pop3s, apop, ldap or ldaps URL
    #[arg(
        short = 'R',
        long = "remoteauth",
        value_name = "PROTO://HOST[:PORT][/DN]",
        help_heading = "Authentication"
    )]
    pub remoteauth: Vec<String>,
    /// Check credentials with PAM service SERVICE
    #[arg(
        short = 'm',
        long = "pamauth",
        value_name = "SERVICE",
        help_heading = "Authentication"
    )]
    pub pamauth: Vec<String>,
    /// With -R or -A, also try the default authfile last
    #[arg(short = 'F', long = "fallback", help_heading = "Authentication")]
    pub fallback: bool,
    /// Program printing a virtual user's home directory, given the user and the domain
    #[arg(
        short = 'S',
        long = "vhome-script",
        value_name = "PATH",
        help_heading = "Virtual domains"
    )]
    pub vhome_script: Option<PathBuf>,
    /// qmail's virtualdomains file (for VMailMgr set-ups)
    #[arg(
        short = 'v',
        long = "vdomains-path",
        value_name = "PATH",
        default_value = "/var/qmail/control/virtualdomains",
        help_heading = "Virtual domains"
    )]
    pub vdomains_path: PathBuf,
    /// Show full version information and exit
    #[arg(short = 'V')]
    pub full_version: bool,
    /// Print version and exit
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
}

fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

fn parse_listen(spec: &str, v6: bool) -> Result<Vec<SocketAddr>, Error> {
    let bad = || {
        usage(format!(
            "bad listen address {}: expected HOST:PORT or :PORT",
            crate::error::quote(spec)
        ))
    };
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h.to_string(), p)
    } else {
        let (h, p) = spec.rsplit_once(':').ok_or_else(bad)?;
        (h.to_string(), p)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = if host.is_empty() {
        if v6 { "::".to_string() } else { "0.0.0.0".to_string() }
    } else {
        host
    };
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| usage(format!("cannot resolve {host}: {e}")))?
        .filter(|a| a.is_ipv6() == v6)
        .collect();
    if addrs.is_empty() {
        return Err(usage(format!(
            "{host} has no {} address",
            if v6 { "IPv6" } else { "IPv4" }
        )));
    }
    Ok(addrs)
}

/// Accepted sockets inherit TCP_NODELAY from their listener (Linux; tested in
/// `accepted_connections_have_nodelay`). Elsewhere it is set on each connection.
const NODELAY_INHERITED: bool = cfg!(target_os = "linux");

fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    use socket2::{Domain, Socket, Type};
    let io = |e| Error::io(format!("listening on {addr}"), e);
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(io)?;
    s.set_reuse_address(true).map_err(io)?;
    if addr.is_ipv6() {
        // Keep IPv4 and IPv6 listeners apart, so both can be given.
        s.set_only_v6(true).map_err(io)?;
    }
    // Linux copies TCP_NODELAY to accepted connections: one system call here instead
    // of one per connection (see `NODELAY_INHERITED`).
    s.set_tcp_nodelay(true).map_err(io)?;
    s.bind(&addr.into()).map_err(io)?;
    s.listen(1024).map_err(io)?;
    s.set_nonblocking(true).map_err(io)?;
    Ok(s.into())
}

/// A listening socket passed by systemd (`Accept=no`), set up as [`bind`] would have.
fn adopt(p: crate::systemd::Passed) -> Result<TcpListener, Error> {
    let what = format!("socket {} passed by systemd", crate::error::quote(&p.name));
    let sock = socket2::Socket::from(p.fd);
    let io = |e| Error::io(&what, e);
    let listening = sock.is_listener().map_err(io)?;
    if !listening || sock.r#type().map_err(io)? != socket2::Type::STREAM {
        return Err(usage(format!(
            "{what} is not a listening stream socket (use -1 with Accept=yes)"
        )));
    }
    sock.set_tcp_nodelay(true).map_err(io)?;
    sock.set_nonblocking(true).map_err(io)?;
    Ok(sock.into())
}

/// fork, setsid, fork, chdir /, standard streams to /dev/null — before any threads exist.
fn daemonize() -> Result<(), Error> {
    // SAFETY: called before the runtime or any thread is started.
    unsafe {
        match libc::fork() {
            -1 => return Err(Error::io("fork", std::io::Error::last_os_error())),
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        match libc::fork() {
            -1 => libc::_exit(71),
            0 => {}
            _ => libc::_exit(0),
        }
        let _ = libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(())
}

/// Global mode: fork the launcher, which keeps root to start per-user children, then
/// give up root for good in the network-facing process: real, effective and saved
/// ids all become USER's (TMDA kept a saved uid of 0 for its children). Called while
/// the process has one thread. Everything the launcher may do is fixed here, from the
/// command line and this process's environment ([`crate::launcher::Setup`]).
fn separate_privileges(
    server: &Server,
    account: &Account,
    self_exe: &std::path::Path,
    pam: &[String],
    min_uid: Option<u32>,
) -> Result<(), Error> {
    let d = &server.delivery;
    let setup = crate::launcher::Setup {
        tmda: self_exe.to_path_buf(),
        vhome_script: d.vhome_script.clone(),
        vdomains: d.vdomains_path.clone(),
        configdir: d.configdir.clone(),
        pure_proxy: d.pure_proxy,
        pass_through: crate::delivery::pass_through_program(),
        restrict_sender: d.restrict_sender.clone(),
        timeout: d.timeout,
        pam_services: pam.to_vec(),
        pam: Default::default(),
        min_uid: min_uid.unwrap_or_else(crate::launcher::default_min_uid),
        deny_uids: vec![account.uid],
        hostname: server.hostname.clone(),
    };
    let launcher = crate::launcher::Launcher::start(setup).map_err(|e| Error::io("starting the launcher", e))?;
    let launcher = Arc::new(launcher);
    let _ = server.delivery.launcher.set(launcher.clone());
    // PAM modules such as pam_unix check other users' passwords only as root.
    crate::auth::pam::check_through(launcher);
    let fail = |what: &str| Error::io(format!("{what} {}", account.name), std::io::Error::last_os_error());
    // SAFETY: plain syscalls.
    unsafe {
        let gids = [account.gid];
        if libc::setgroups(1, gids.as_ptr()) != 0 || libc::setresgid(account.gid, account.gid, account.gid) != 0 {
            return Err(fail("switching to the group of"));
        }
        if libc::setresuid(account.uid, account.uid, account.uid) != 0 {
            return Err(fail("switching to user"));
        }
        if libc::setuid(0) == 0 {
            return Err(usage(
                "root could be regained after dropping privileges: refusing to serve",
            ));
        }
    }
    Ok(())
}

pub fn run(raw: &[std::ffi::OsString], name: &str) -> Result<ExitCode, Error> {
    let Some((args, matches)) = super::parse_with_matches::<Args>(raw, name)? else {
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(code) = super::maybe_full_version(args.full_version)? {
        return Ok(code);
    }
    // Socket activation and notification: taken while the process has one thread.
    let passed = crate::systemd::take_listen_fds().map_err(usage)?;
    let notifier = crate::systemd::Notifier::from_env();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let global = unsafe { libc::geteuid() } == 0;
    let home = crate::os::expanduser("~");

    // Who the daemon will run as, and so who must own the authfile.
    let run_as = if global {
        let user = args.username.clone().unwrap_or_else(|| "tofmipd".into());
        let acct = Account::lookup(&user).ok_or_else(|| {
            usage(format!(
                "user {user} does not exist: create it (useradd --system {user}) or name another with -u"
            ))
        })?;
        if acct.uid == 0 {
            return Err(usage("refusing to run as root: -u must name an unprivileged user"));
        }
        Some(acct)
    } else {
        None
    };
    let owner = run_as
        .as_ref()
        .map(|a| a.uid)
        // SAFETY: geteuid has no preconditions and cannot fail.
        .unwrap_or_else(|| unsafe { libc::geteuid() });
    let default_authfile = if global {
        PathBuf::from("/etc/tofmipd")
    } else {
        PathBuf::from(&home).join(".tmda/tofmipd")
    };

    let order = super::authopts::order(&matches);
    let chain = super::authopts::chain(&order, args.fallback, &default_authfile, Some(owner))?;

    let tls_setting = match (args.ssl, args.tls) {
        (true, _) => TlsSetting::Ssl,
        (false, Some(TlsArg::Optional)) => TlsSetting::Optional,
        (false, Some(TlsArg::Localoptional)) => TlsSetting::LocalOptional,
        (false, Some(TlsArg::On)) => TlsSetting::On,
        (false, None) => TlsSetting::None,
    };
    let tls = if tls_setting != TlsSetting::None {
        let (Some(cert), Some(key)) = (&args.ssl_cert, &args.ssl_key) else {
            return Err(usage("--ssl-cert and --ssl-key are required with --ssl or --tls"));
        };
        Some(Arc::new(
            crate::tls::Reloadable::new(cert, key).map_err(|e| usage(e.to_string()))?,
        ))
    } else {
        None
    };
    let log = if args.debug {
        LogLevel::Debug
    } else if args.log {
        LogLevel::Events
    } else {
        LogLevel::Quiet
    };
    if args.ciphers.is_some() && log > LogLevel::Quiet {
        eprintln!("{name}: --ciphers is ignored: rustls uses its own safe TLS 1.2/1.3 cipher suites");
    }
    let hostname = args.hostname.clone().unwrap_or_else(|| {
        let f = crate::config::fqdn();
        if f == "localhost" {
            std::env::var("HOSTNAME").unwrap_or(f)
        } else {
            f
        }
    });
    if args.tls_auth_only && tls_setting == TlsSetting::None {
        return Err(usage(
            "--tls-auth-only needs --tls or --ssl: without TLS no one could authenticate",
        ));
    }
    let budget_limits = crate::budget::Limits {
        window_secs: args.auth_window.max(1),
        per_ip: args.auth_limit_ip,
        per_user: args.auth_limit_user,
        max_entries: args.auth_memory as usize,
    };
    // One-session processes start afresh each time: they share their counts in a file.
    let guard = if args.one_session {
        let file = args
            .budget_file
            .clone()
            .unwrap_or_else(|| crate::budget::default_file(global, std::path::Path::new(&home)));
        if global && args.budget_file.is_none() {
            prepare_run_dir(&file, run_as.as_ref())?;
        }
        crate::budget::Guard::with_file(budget_limits, file)
    } else {
        crate::budget::Guard::in_memory(budget_limits)
    };
    let self_exe = std::env::current_exe().map_err(|e| Error::io("the tmda binary", e))?;
    let delivery = Delivery {
        configdir: args.configdir.clone(),
        vhome_script: args.vhome_script.clone(),
        vdomains_path: args.vdomains_path.clone(),
        pure_proxy: args.pure_proxy,
        throttle_script: args.throttle_script.clone(),
        global,
        launcher: Default::default(),
        timeout: Duration::from_secs(args.delivery_timeout.max(1)),
        restrict_sender: args
            .restrict_sender
            .then(|| Arc::new(crate::sender_policy::SenderPolicy::new(args.sender_map.clone()))),
        hostname: hostname.clone(),
    };
    // A detached daemon's standard error is /dev/null: it logs to syslog unless told
    // otherwise (-f keeps standard error, and -1 leaves it to the supervisor).
    let detached = !args.foreground && !args.one_session;
    let sink = if args.syslog || detached {
        match crate::syslog::Syslog::open("tmda-ofmipd") {
            Ok(s) => server::LogSink::Syslog(s),
            Err(e) if args.syslog => return Err(Error::io(crate::syslog::socket_path(), e)),
            Err(e) => {
                eprintln!(
                    "{name}: warning: syslog at {}: {e}: the detached daemon's log is lost (use -f, or run a syslog daemon)",
                    crate::syslog::socket_path().display()
                );
                server::LogSink::Stderr
            }
        }
    } else {
        server::LogSink::Stderr
    };
    if let Some(policy) = &delivery.restrict_sender {
        // A broken map is a start-up error, not a surprise at the first message.
        policy.load().map_err(usage)?;
    }
    let server = Arc::new(Server {
        hostname: hostname.clone(),
        tls_setting,
        tls,
        chain: Arc::new(chain),
        delivery: Arc::new(delivery),
        limits: Limits {
            max_size: args.max_size,
            command_timeout: Duration::from_secs(args.timeout.max(1)),
            data_timeout: Duration::from_secs(args.data_timeout.max(1)),
            min_data_rate: args.min_data_rate,
            tls_timeout: Duration::from_secs(args.tls_timeout.max(1)),
            unauth_timeout: Duration::from_secs(args.unauth_timeout.max(1)),
            per_ip_connections: args.connections_per_ip as usize,
            max_auth_failures: args.max_auth_failures,
            ..Limits::default()
        },
        tls_auth_only: args.tls_auth_only,
        log,
        sink,
        guard,
        failure_delay: Duration::from_millis(args.auth_delay),
        per_ip: Default::default(),
        proxy: crate::proxy::Trusted::new(args.proxy_protocol.clone()),
    });

    // A daemon relays many messages: keep upstream connections open between them.
    crate::transport::smtp::enable_pooling();
    crate::transport::sendmail::set_timeout(server.delivery.timeout);
    if args.one_session {
        // systemd Accept=yes passes the connection as descriptor 3 (LISTEN_FDS=1) and,
        // with StandardInput=socket, as 0 and 1 too: serve it on 0 and 1 either way.
        if let Some(p) = passed.first() {
            use std::os::fd::AsRawFd;
            // SAFETY: dup2 onto the standard descriptors, which this process owns; the
            // passed descriptor stays open (closed when `passed` is dropped).
            unsafe {
                libc::dup2(p.fd.as_raw_fd(), 0);
                libc::dup2(p.fd.as_raw_fd(), 1);
            }
        }
        drop(passed);
        if let Some(n) = &notifier {
            let _ = n.notify("READY=1");
        }
        if let Some(a) = &run_as {
            separate_privileges(&server, a, &self_exe, &args.pamauth, args.min_uid)?;
        }
        return one_session(server);
    }

    let mut listeners = vec![];
    if passed.is_empty() {
        let mut specs: Vec<(String, bool)> = args.proxyport.iter().map(|s| (s.clone(), false)).collect();
        specs.extend(args.ipv6proxyport.iter().map(|s| (s.clone(), true)));
        if specs.is_empty() {
            specs.push((format!("{hostname}:8025"), false));
        }
        for (spec, v6) in &specs {
            for addr in parse_listen(spec, *v6)? {
                listeners.push(bind(addr)?);
            }
        }
    } else {
        // Socket activation (Accept=no): the sockets systemd listens on replace -p and -6.
        if !args.proxyport.is_empty() || !args.ipv6proxyport.is_empty() {
            eprintln!("{name}: listening on the sockets systemd passed; -p and -6 are ignored");
        }
        for p in passed {
            listeners.push(adopt(p)?);
        }
    }
    for l in &listeners {
        if let Ok(addr) = l.local_addr()
            && let Some(w) = plaintext_auth_warning(addr, tls_setting, args.tls_auth_only)
        {
            eprintln!("{name}: warning: {w}");
        }
    }
    if !args.foreground {
        daemonize()?;
    }
    if let Some(p) = &args.pid_file {
        // Still as root in global mode, so it may be in /run.
        write_pid_file(p)?;
    }
    server.log(
        LogLevel::Events,
        format_args!(
            "event=start pid={} version={}",
            std::process::id(),
            env!("CARGO_PKG_VERSION")
        ),
    );
    if let Some(a) = &run_as {
        separate_privileges(&server, a, &self_exe, &args.pamauth, args.min_uid)?;
    }
    let threads = args.threads.map(usize::from).unwrap_or_else(|| {
        // On two CPUs shared with the MTA, one network thread relayed about 13% more
        // messages for about a fifth less CPU than two did (BENCHMARKS.md): every
        // message waits on its client and on the relay, and a second thread mostly
        // added wake-ups and work stealing.
        std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
    });
    // One thread: the plain event loop, without the work-stealing scheduler's
    // bookkeeping (about 7% more messages for 9% less CPU than a one-worker pool).
    let runtime = if threads == 1 {
        super::current_thread_runtime()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?
    };
    let result = runtime.block_on(serve(listeners, server, args.connections as usize, notifier));
    if let Some(p) = &args.pid_file {
        // Gone with root in global mode, perhaps: then the next start overwrites it.
        let _ = std::fs::remove_file(p);
    }
    result
}

/// `--pid-file`: this process's id and a newline, replacing the file (never through a
/// symbolic link).
fn write_pid_file(path: &std::path::Path) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    writeln!(f, "{}", std::process::id()).map_err(|e| Error::io(path, e))
}

/// TMDA's default (no TLS, AUTH offered) sends passwords in clear: kept for
/// compatibility, but said out loud for any listener other clients can reach.
fn plaintext_auth_warning(addr: SocketAddr, tls: TlsSetting, tls_auth_only: bool) -> Option<String> {
    let clear = matches!(tls, TlsSetting::None | TlsSetting::Optional) && !tls_auth_only;
    (clear && !addr.ip().is_loopback()).then(|| {
        format!(
            "AUTH is offered without TLS on {addr}: passwords can cross the network in clear \
             (use --tls=on, --ssl, or --tls-auth-only)"
        )
    })
}

/// `/run/tmda` for global mode's budget file: made by root, owned by the user the
/// daemon runs as, 0700, so that user (and no one else) can keep its file there.
fn prepare_run_dir(file: &std::path::Path, run_as: Option<&Account>) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let Some(dir) = file.parent() else { return Ok(()) };
    let io = |e| Error::io(dir, e);
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            if let Some(a) = run_as {
                std::os::unix::fs::chown(dir, Some(a.uid), Some(a.gid)).map_err(io)?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(dir).map_err(io)?;
            if !meta.is_dir() || meta.mode() & 0o022 != 0 {
                return Err(usage(format!(
                    "{}: must be a directory that only its owner can write to",
                    dir.display()
                )));
            }
            // Made by root (a tmpfiles.d entry, say): hand it to the daemon's user.
            if let Some(a) = run_as
                && meta.uid() == 0
            {
                std::os::unix::fs::chown(dir, Some(a.uid), Some(a.gid)).map_err(io)?;
            }
        }
        Err(e) => return Err(io(e)),
    }
    Ok(())
}

/// The session's socket when descriptor 0 is one (a copy of it), else `None`: a pipe
/// pair, where standard input is read and standard output written.
fn socket_on_stdin() -> Option<socket2::Socket> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let file = std::fs::File::from(fd);
    if !file.metadata().ok()?.file_type().is_socket() {
        return None;
    }
    Some(socket2::Socket::from(std::os::fd::OwnedFd::from(file)))
}

fn one_session(server: Arc<Server>) -> Result<ExitCode, Error> {
    // TMDA's -1 served "one session on stdin (used both for input & output)": with a
    // socket there, replies go to it too, so a wrapper that sends standard output to a
    // log file still works. A pipe pair (stdin in, stdout out) is served as before.
    let socket = socket_on_stdin();
    // The peer: tcpserver's variables, else xinetd's REMOTE_HOST, else the socket itself.
    // These go into the Received field; a name from a reverse lookup is the client's to
    // choose, so only ordinary host-name and address characters are taken.
    let plain = |s: &String| {
        !s.is_empty() && s.len() <= 255 && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:%".contains(c))
    };
    let env = |name: &str| std::env::var(name).ok().filter(plain);
    let peer = match std::env::var("TCPREMOTEIP") {
        Ok(_) => Peer {
            ip: env("TCPREMOTEIP").unwrap_or_else(|| "unknown".into()),
            name: env("TCPREMOTEHOST"),
        },
        Err(_) => match std::env::var("REMOTE_HOST") {
            Ok(_) => Peer {
                ip: env("REMOTE_HOST").unwrap_or_else(|| "unknown".into()),
                name: None,
            },
            Err(_) => Peer {
                ip: socket
                    .as_ref()
                    .and_then(|s| s.peer_addr().ok()?.as_socket())
                    .map(|a| a.ip().to_string())
                    .unwrap_or_else(|| "127.0.0.1".into()),
                name: None,
            },
        },
    };
    let local = std::env::var("TCPLOCALIP").ok().and_then(|s| s.parse().ok());
    super::current_thread_runtime()?.block_on(async {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let is_unix = socket.as_ref().and_then(|s| s.local_addr().ok()).map(|a| a.is_unix());
        match (socket, is_unix) {
            (Some(s), Some(true)) => {
                let s = std::os::unix::net::UnixStream::from(s);
                match s
                    .set_nonblocking(true)
                    .and_then(|_| tokio::net::UnixStream::from_std(s))
                {
                    Ok(stream) => server::drive(stream, peer, local, server, rx).await,
                    Err(e) => eprintln!("tmda-ofmipd: the socket on standard input: {e}"),
                }
            }
            (Some(s), Some(false)) => {
                let s = std::net::TcpStream::from(s);
                match s.set_nonblocking(true).and_then(|_| tokio::net::TcpStream::from_std(s)) {
                    Ok(stream) => server::drive(stream, peer, local, server, rx).await,
                    Err(e) => eprintln!("tmda-ofmipd: the socket on standard input: {e}"),
                }
            }
            _ => {
                let stream = server::Stdio {
                    r: tokio::io::stdin(),
                    w: tokio::io::stdout(),
                };
                server::drive(stream, peer, local, server, rx).await
            }
        }
        crate::transport::relay::close_pool();
    });
    crate::transport::smtp::close_pool();
    // Standard input may still have a blocking read pending in the runtime: exit now.
    std::process::exit(0);
}

async fn serve(
    listeners: Vec<TcpListener>,
    server: Arc<Server>,
    max: usize,
    notifier: Option<crate::systemd::Notifier>,
) -> Result<ExitCode, Error> {
    let notify = |state: &str| {
        if let Some(n) = &notifier {
            let _ = n.notify(state);
        }
    };
    use tokio::signal::unix::{SignalKind, signal};
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let l = tokio::net::TcpListener::from_std(l).map_err(|e| Error::io("listener", e))?;
        server.log(
            LogLevel::Events,
            format_args!(
                "event=listen address={}",
                l.local_addr().map(|a| a.to_string()).unwrap_or_default()
            ),
        );
        let (server, permits, stop_rx) = (server.clone(), permits.clone(), stop_rx.clone());
        tasks.spawn(accept_loop(l, server, permits, stop_rx));
    }
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("signal handler", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("signal handler", e))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| Error::io("signal handler", e))?;
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    // WATCHDOG=1 from the event loop itself: a loop that is stuck stops sending it.
    let watchdog_every = crate::systemd::watchdog_interval();
    let mut watchdog = tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
    // Listeners and TLS are loaded: ready to serve.
    notify(&format!(
        "READY=1\nMAINPID={}\nSTATUS=accepting connections",
        std::process::id()
    ));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", crate::systemd::monotonic_usec()));
                if let Some(t) = &server.tls {
                    match t.reload() {
                        Ok(()) => server.log(LogLevel::Events, "event=reload reason=\"SIGHUP: TLS certificate reloaded\""),
                        Err(e) => server.error(format_args!(
                            "event=error reason={}",
                            crate::syslog::field(&format!("SIGHUP: {e}; keeping the old certificate"))
                        )),
                    }
                }
                notify("READY=1");
            },
            _ = watchdog.tick(), if watchdog_every.is_some() => notify("WATCHDOG=1"),
            _ = tick.tick() => {
                // Idle relay connections hold a process of the MTA each (Postfix's smtpd):
                // say QUIT to those unused for a while rather than wait for the next message.
                crate::transport::relay::close_idle();
                tokio::task::spawn_blocking(crate::transport::smtp::close_idle);
                if let Some(t) = &server.tls
                    && let Some(r) = t.reload_if_changed() {
                    match r {
                        Ok(()) => server.log(LogLevel::Events, "event=reload reason=\"TLS certificate changed on disk\""),
                        Err(e) => server.error(format_args!(
                            "event=error reason={}",
                            crate::syslog::field(&format!("TLS certificate changed but cannot be loaded: {e}; keeping the old one"))
                        )),
                    }
                }
            },
        }
    }
    server.log(LogLevel::Events, "event=stop reason=\"shutting down\"");
    notify("STOPPING=1");
    let _ = stop_tx.send(true);
    // Sessions answer 421 at their next command; a message being received or relayed
    // is finished first, within a grace period.
    let grace = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            r = tasks.join_next() => if r.is_none() { break },
            _ = &mut grace => break,
        }
    }
    crate::transport::relay::close_pool();
    tokio::task::spawn_blocking(crate::transport::smtp::close_pool)
        .await
        .ok();
    Ok(ExitCode::SUCCESS)
}

async fn accept_loop(
    l: tokio::net::TcpListener,
    server: Arc<Server>,
    permits: Arc<tokio::sync::Semaphore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut sessions = tokio::task::JoinSet::new();
    // A listener on one address knows every connection's local address without asking.
    let bound = l.local_addr().ok().map(|a| a.ip()).filter(|ip| !ip.is_unspecified());
    loop {
        // Wait for a free slot before accepting: further clients wait in the backlog (as TMDA).
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (stream, addr) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
            },
            _ = stop.changed() => break,
        };
        if !NODELAY_INHERITED {
            let _ = stream.set_nodelay(true);
        }
        let ip: IpAddr = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        // A trusted proxy's connections are counted by the client address its header
        // names, in the session (`server::drive`).
        let slot = if server.proxy.expects_header(ip) {
            Some(None)
        } else {
            server.per_ip.enter(ip, server.limits.per_ip_connections).map(Some)
        };
        let Some(slot) = slot else {
            // Over the per-address cap: told so at once, without holding a session slot.
            drop(permit);
            server.log(
                LogLevel::Events,
                format_args!(
                    "client={ip} event=refused reason=\"{} connections open from this address\"",
                    server.limits.per_ip_connections
                ),
            );
            sessions.spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = stream;
                let wire = server::too_many().to_wire();
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(wire.as_bytes())).await;
            });
            while sessions.try_join_next().is_some() {}
            continue;
        };
        let (server, rx) = (server.clone(), stop.clone());
        let local = bound.or_else(|| stream.local_addr().ok().map(|a| a.ip()));
        sessions.spawn(async move {
            let _slot = slot;
            let peer = Peer {
                ip: ip.to_string(),
                name: None,
            };
            server::drive(stream, peer, local, server, rx).await;
            drop(permit);
        });
        while sessions.try_join_next().is_some() {}
    }
    while sessions.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_auth_is_warned_about_off_loopback_only() {
        let public: SocketAddr = "192.0.2.1:587".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:587".parse().unwrap();
        let lo6: SocketAddr = "[::1]:587".parse().unwrap();
        assert!(plaintext_auth_warning(public, TlsSetting::None, false).is_some());
        assert!(plaintext_auth_warning(public, TlsSetting::Optional, false).is_some());
        assert!(plaintext_auth_warning(public, TlsSetting::Optional, true).is_none());
        assert!(plaintext_auth_warning(public, TlsSetting::On, false).is_none());
        assert!(plaintext_auth_warning(public, TlsSetting::Ssl, false).is_none());
        assert!(plaintext_auth_warning(public, TlsSetting::LocalOptional, false).is_none());
        assert!(plaintext_auth_warning(lo, TlsSetting::None, false).is_none());
        assert!(plaintext_auth_warning(lo6, TlsSetting::None, false).is_none());
    }

    #[test]
    fn accepted_connections_have_nodelay() {
        // Without TCP_NODELAY a relay on loopback drops to a few dozen messages a second,
        // so skipping the per-connection call rests on the kernel copying it.
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let accepted = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert!(accepted.nodelay().unwrap() || !NODELAY_INHERITED);
    }
}
