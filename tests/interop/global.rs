//! Global mode, for real: ofmipd started as root drops to `tofmipd`, and each message is
//! processed by a child with the authenticated user's uid, gid and groups. The tests
//! create their users with useradd (tofmipd as a system account, the mail users as
//! ordinary ones, since the launcher serves no others); they must run as root, as CI
//! does, and fail loudly otherwise. The last test attacks the launcher through the
//! network process's own socket, as a taken-over network process would.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::peers::*;

/// useradd/usermod lock /etc/passwd: tests creating users take turns.
pub(crate) static USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A system account (uid below UID_MIN), like the daemon's own `tofmipd`.
pub(crate) fn ensure_system_user(name: &str, home: &Path) -> tmda::account::Account {
    ensure(name, home, true)
}

/// An ordinary account (uid from UID_MIN up), which the launcher serves.
fn ensure_user(name: &str, home: &Path) -> tmda::account::Account {
    ensure(name, home, false)
}

fn ensure(name: &str, home: &Path, system: bool) -> tmda::account::Account {
    let _guard = USERS.lock().unwrap_or_else(|e| e.into_inner());
    let ordinary = |a: &tmda::account::Account| a.uid >= tmda::launcher::default_min_uid();
    if let Some(a) = tmda::account::Account::lookup(name)
        && ordinary(&a) == system
    {
        // Left by an older run with the other kind of uid.
        let st = Command::new("userdel").arg(name).status().unwrap();
        assert!(st.success(), "userdel {name}");
    }
    if tmda::account::Account::lookup(name).is_none() {
        let st = Command::new("useradd")
            .args(system.then_some("--system"))
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", "--home-dir"])
            .arg(home)
            .arg(name)
            .status()
            .expect("useradd (Debian's passwd package)");
        assert!(st.success(), "useradd {name}");
    } else {
        let st = Command::new("usermod")
            .arg("--home")
            .arg(home)
            .arg(name)
            .status()
            .unwrap();
        assert!(st.success(), "usermod {name}");
    }
    tmda::account::Account::lookup(name).unwrap()
}

fn chown_r(path: &Path, a: &tmda::account::Account) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", a.uid, a.gid))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn global_mode_delivers_as_the_authenticated_user() {
    require_root("the global-mode test");
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let tofmipd = ensure_system_user("tofmipd", Path::new("/nonexistent"));
    let out_dir = tmp.path().join("deliveries");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();

    let mut users = vec![];
    for (name, key) in [
        ("tmdaglobal1", "1111111111111111111111111111111111111111"),
        ("tmdaglobal2", "2222222222222222222222222222222222222222"),
    ] {
        let home = tmp.path().join(name);
        std::fs::create_dir_all(home.join(".tmda")).unwrap();
        std::fs::write(
            home.join(".tmda/config"),
            // FILTER_OUTGONG: a misspelt setting, which the child's warning reports to
            // ofmipd's log, never to the client (see: #11).
            format!("USERNAME = '{name}'\nHOSTNAME = 'global.test'\nMAIL_TRANSPORT = 'smtp'\nSMTPHOST = '127.0.0.1:{}'\nLOGFILE_OUTGOING = '~/outgoing.log'\nFILTER_OUTGONG = 'x'\n", sink.port),
        )
        .unwrap();
        std::fs::write(home.join(".tmda/crypt_key"), format!("{key}\n")).unwrap();
        std::fs::set_permissions(home.join(".tmda/crypt_key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let acct = ensure_user(name, &home);
        chown_r(&home, &acct);
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        users.push((acct, home));
    }
    let authfile = tmp.path().join("tofmipd");
    std::fs::write(
        &authfile,
        "tmdaglobal1:pw-one\ntmdaglobal2:pw-two\nghost:pw-ghost\ndaemon:pw-daemon\n",
    )
    .unwrap();
    std::fs::set_permissions(&authfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown_r(&authfile, &tofmipd);

    let pam_dir = tmp.path().join("pam");
    std::fs::create_dir_all(&pam_dir).unwrap();
    let pam_services = crate::auth::pam_service(&pam_dir);
    // Readable by root alone, like /etc/shadow: only the launcher can check it. Only
    // ordinary accounts are checked: alice, whom pam_matrix knows, has no account.
    let passdb = pam_dir.join("pam-passdb");
    std::fs::write(
        &passdb,
        "alice:wonderland:tmda-test\ntmdaglobal1:pam-pw-one:tmda-test\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&passdb, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&passdb, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let log = tmp.path().join("ofmipd.log");
    let child = Command::new(tmda_bin())
        .args([
            "ofmipd",
            "-f",
            "-L",
            "--hostname",
            "mx.global",
            "--delivery-timeout",
            "3",
            // Users whose config this process cannot see (0700 homes) are still tagged:
            // the per-user child looks for it.
            "-P",
            "-p",
            &format!("127.0.0.1:{port}"),
            "-a",
        ])
        .arg(&authfile)
        // PAM too: in global mode the root launcher runs it (pam_unix and the like check
        // other users' passwords only as root). pam_wrapper's pam_matrix knows alice.
        .args(["-m", "tmda-test"])
        .env("LD_PRELOAD", "libpam_wrapper.so")
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", &pam_services)
        .env("GLOBAL_TMDARC", tmp.path().join("none"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let daemon = Daemon {
        child,
        name: "ofmipd (global)",
    };
    wait_for_port(port, "ofmipd");
    let mut c = Raw::connect(port);
    c.reply();
    assert!(
        c.auth_plain("tmdaglobal1", "pam-pw-one").starts_with("235"),
        "PAM through the launcher"
    );
    let mut c = Raw::connect(port);
    c.reply();
    assert!(c.auth_plain("tmdaglobal1", "wrong").starts_with("535"));
    let mut c = Raw::connect(port);
    c.reply();
    assert!(
        c.auth_plain("alice", "wonderland").starts_with("535"),
        "PAM is not asked about a name without an ordinary account"
    );

    // The network-facing process no longer runs as root, and cannot become root again:
    // real, effective, saved and file-system uids are all tofmipd's (a separate launcher
    // process keeps root to start per-user children).
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap();
    let uids: Vec<u32> = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(uids, vec![tofmipd.uid; 4], "every uid is tofmipd's: {status}");

    for ((acct, _), pw) in users.iter().zip(["pw-one", "pw-two"]) {
        let mut c = Raw::connect(port);
        assert!(c.reply().starts_with("220"));
        assert!(c.auth_plain(&acct.name, pw).starts_with("235"));
        let r = c.send_message(
            "x@y",
            &format!("to-{}@x.org", acct.name),
            "Subject: global\r\n\r\nhello",
        );
        assert!(
            r.starts_with("250 2.0.0") && !r.contains("warning"),
            "{r}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    for (acct, home) in &users {
        let config = home.join(".tmda/config");
        let lines: Vec<&str> = logged
            .lines()
            .filter(|l| l.contains(&format!("warning: {}:6: FILTER_OUTGONG", config.display())))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{}'s misspelt setting is logged once:\n{logged}",
            acct.name
        );
    }
    // A user in the authfile without a system account: refused, not a crash.
    let mut c = Raw::connect(port);
    c.reply();
    assert!(c.auth_plain("ghost", "pw-ghost").starts_with("235"));
    let r = c.send_message("x@y", "z@x.org", "Subject: x\r\n\r\nb");
    assert!(r.starts_with("554 5.0.0") && r.contains("no system account"), "{r}");
    // A system account in the authfile: the launcher does not deliver as it.
    let mut c = Raw::connect(port);
    c.reply();
    assert!(c.auth_plain("daemon", "pw-daemon").starts_with("235"));
    let r = c.send_message("x@y", "z@x.org", "Subject: x\r\n\r\nb");
    assert!(r.starts_with("554 5.0.0") && r.contains("system account"), "{r}");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("launcher: refused a delivery for \"daemon\""),
        "{log_text}"
    );

    let got = sink.wait_for(2);
    for ((acct, home), s) in users.iter().zip(&got) {
        let env = s.mail_from.trim_matches(['<', '>']);
        assert!(
            env.starts_with(&format!("{}-dated-", acct.name)) && env.ends_with("@global.test"),
            "{env}"
        );
        // Tagged with this user's own key: it verifies with theirs, not the other's.
        assert_tag_verifies(env, None, home);
        // The log file in the user's home was written by the user, so the child ran as them.
        let meta = std::fs::metadata(home.join("outgoing.log")).expect("LOGFILE_OUTGOING written");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (meta.uid(), meta.gid()),
            (acct.uid, acct.gid),
            "delivery ran as {}",
            acct.name
        );
    }
    let other = &users[1].1;
    let first_env = got[0].mail_from.trim_matches(['<', '>']);
    let out = Command::new(tmda_bin())
        .args(["check-address", first_env])
        .env("HOME", other)
        .env("GLOBAL_TMDARC", "/none")
        .output()
        .unwrap();
    assert!(!out.status.success(), "user 1's tag must not verify with user 2's key");

    // A delivery that hangs is stopped by the launcher when the time is up: 451.
    let (acct2, home2) = &users[1];
    let hang = home2.join("hang.sh");
    std::fs::write(&hang, "#!/bin/sh\nsleep 30 &\nsleep 30\n").unwrap();
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = std::fs::read_to_string(home2.join(".tmda/config")).unwrap();
    std::fs::write(
        home2.join(".tmda/config"),
        format!(
            "{cfg}MAIL_TRANSPORT = 'sendmail'\nSENDMAIL_PROGRAM = '{}'\n",
            hang.display()
        ),
    )
    .unwrap();
    chown_r(home2, acct2);
    let started = std::time::Instant::now();
    let mut c = Raw::connect(port);
    c.reply();
    assert!(c.auth_plain(&acct2.name, "pw-two").starts_with("235"));
    let r = c.send_message("x@y", "hung@x.org", "Subject: hung\r\n\r\nb");
    assert!(
        r.starts_with("451") && r.contains("did not finish within 3 seconds"),
        "{r}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));

    // The launcher is the daemon's one root child. Without it nothing can be delivered:
    // the next delivery ends the daemon (exit 75) so a supervisor can restart it whole.
    let pid = daemon.child.id();
    let launcher: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            ppid == Some(&pid.to_string()) && status.lines().any(|l| l.starts_with("Uid:\t0\t"))
        })
        .collect();
    assert_eq!(launcher.len(), 1, "one root launcher under the daemon");
    // SAFETY: a plain kill(2) of a process this test found.
    unsafe { libc::kill(launcher[0] as i32, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut c = Raw::connect(port);
    c.reply();
    assert!(c.auth_plain("tmdaglobal1", "pw-one").starts_with("235"));
    let _ = c.send_message("x@y", "late@x.org", "Subject: late\r\n\r\nb");
    let mut daemon = daemon;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = daemon.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ofmipd kept running without its launcher"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(75));
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("the root launcher is gone")
    );
    assert_eq!(sink.wait_for(2).len(), 2, "nothing more reached the MTA");
}

#[test]
fn global_mode_virtual_domains_with_vhome_script() {
    require_root("the global-mode test");
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let tofmipd = ensure_system_user("tofmipd", Path::new("/nonexistent"));
    let system_home = tmp.path().join("vpop");
    std::fs::create_dir_all(&system_home).unwrap();
    let vpop = ensure_user("tmdavpop", &system_home);
    chown_r(&system_home, &vpop);
    // The virtual user's home, as the vhome script reports it.
    let vhome = tmp.path().join("vhomes/virtual.test/virt");
    std::fs::create_dir_all(vhome.join(".tmda")).unwrap();
    std::fs::write(
        vhome.join(".tmda/config"),
        format!("USERNAME = 'virt'\nHOSTNAME = 'virtual.test'\nMAIL_TRANSPORT = 'smtp'\nSMTPHOST = '127.0.0.1:{}'\nLOGFILE_OUTGOING = '~/outgoing.log'\n", sink.port),
    )
    .unwrap();
    std::fs::write(
        vhome.join(".tmda/crypt_key"),
        "3333333333333333333333333333333333333333\n",
    )
    .unwrap();
    std::fs::set_permissions(vhome.join(".tmda/crypt_key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    chown_r(&tmp.path().join("vhomes"), &vpop);
    let script = tmp.path().join("vhome-script");
    std::fs::write(&script, format!("#!/bin/sh\n# prints the home of virtual user $1 in domain $2 (and who ran it)\nid -u > {}/script-uid\necho {}/vhomes/$2/$1\n", system_home.display(), tmp.path().display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let vdomains = tmp.path().join("virtualdomains");
    std::fs::write(&vdomains, "# qmail\nvirtual.test:tmdavpop\n").unwrap();
    let authfile = tmp.path().join("tofmipd");
    std::fs::write(&authfile, "virt@virtual.test:vpw\nstray@elsewhere.test:spw\n").unwrap();
    std::fs::set_permissions(&authfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown_r(&authfile, &tofmipd);

    let port = free_port();
    let child = Command::new(tmda_bin())
        .args([
            "ofmipd",
            "-f",
            "--hostname",
            "mx.virtual",
            "-p",
            &format!("127.0.0.1:{port}"),
            "-a",
        ])
        .arg(&authfile)
        .arg("-S")
        .arg(&script)
        .arg("-v")
        .arg(&vdomains)
        .env("GLOBAL_TMDARC", tmp.path().join("none"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = Daemon {
        child,
        name: "ofmipd (virtual)",
    };
    wait_for_port(port, "ofmipd");
    for (user, pw, want) in [
        ("virt@virtual.test", "vpw", "250 2.0.0"),
        ("stray@elsewhere.test", "spw", "554 5.0.0"),
    ] {
        let mut c = Raw::connect(port);
        c.reply();
        assert!(c.auth_plain(user, pw).starts_with("235"));
        let r = c.send_message("x@y", "to@x.org", "Subject: virtual\r\n\r\nhello");
        assert!(r.starts_with(want), "{user}: {r}");
    }
    let got = sink.wait_for(1);
    let env = got[0].mail_from.trim_matches(['<', '>']);
    assert!(
        env.starts_with("virt-dated-") && env.ends_with("@virtual.test"),
        "{env}"
    );
    assert_tag_verifies(env, None, &vhome);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(vhome.join("outgoing.log")).unwrap().uid(),
        vpop.uid,
        "delivered as the domain's system user"
    );
    assert_eq!(
        std::fs::read_to_string(system_home.join("script-uid")).unwrap().trim(),
        vpop.uid.to_string(),
        "the vhome script ran as that user too"
    );
}

/// The network process's end of the launcher's socket, taken from the running daemon
/// with pidfd_getfd(2), as code running in that process could use it: the one Unix
/// socket there whose pair was made by root (before the process gave up root).
fn steal_launcher_socket(pid: u32) -> std::os::unix::net::UnixStream {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: pidfd_open with a pid and no flags; the result is checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(pidfd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: pidfd_open just returned this descriptor to us.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        let theirs: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
        // SAFETY: pidfd_getfd duplicates the target's descriptor into ours (or fails).
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), theirs, 0) };
        assert!(fd >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
        // SAFETY: a new descriptor of ours, from pidfd_getfd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let (mut domain, mut cred) = (0 as libc::c_int, libc::ucred { pid: 0, uid: 0, gid: 0 });
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt with out-pointers of the sizes given.
        let is_unix = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_DOMAIN,
                (&raw mut domain).cast(),
                &mut len,
            )
        } == 0
            && domain == libc::AF_UNIX;
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: as above.
        let by_root = is_unix
            && unsafe {
                libc::getsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_PEERCRED,
                    (&raw mut cred).cast(),
                    &mut len,
                )
            } == 0
            && cred.uid == 0;
        if by_root {
            return fd.into();
        }
    }
    panic!("no launcher socket in process {pid}");
}

/// See: #10 (8). Acting as a taken-over network process, on its own launcher socket:
/// the request that once ran `tmda checkauth -A "sh -c ..."` as daemon, and every other
/// request outside the contract, is refused and logged; PAM checks are limited per
/// login and stopped when a module hangs.
#[test]
fn a_taken_over_network_process_gets_nothing_outside_the_contract() {
    use std::os::fd::AsRawFd;
    use tmda::launcher::{Answer, Launcher, Request, Submission};
    require_root("the global-mode test");
    let tmp = shared_tempdir();
    ensure_system_user("tofmipd", Path::new("/nonexistent"));
    let home = tmp.path().join("tmdaglobal3");
    std::fs::create_dir_all(&home).unwrap();
    let user = ensure_user("tmdaglobal3", &home);
    chown_r(&home, &user);
    let marks = tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    std::fs::set_permissions(&marks, std::fs::Permissions::from_mode(0o777)).unwrap();
    let authfile = tmp.path().join("tofmipd");
    std::fs::write(&authfile, "tmdaglobal3:pw\n").unwrap();
    std::fs::set_permissions(&authfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown_r(&authfile, &tmda::account::Account::lookup("tofmipd").unwrap());
    let pam_dir = tmp.path().join("pam");
    std::fs::create_dir_all(&pam_dir).unwrap();
    let services = crate::auth::pam_service(&pam_dir);
    std::fs::write(pam_dir.join("pam-passdb"), "tmdaglobal3:right-pw:tmda-test\n").unwrap();
    // A module that never answers.
    let pam_exec = [
        "/usr/lib/x86_64-linux-gnu/security/pam_exec.so",
        "/usr/lib/aarch64-linux-gnu/security/pam_exec.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("pam_exec.so (Debian's libpam-modules)");
    std::fs::write(
        services.join("tmda-hang"),
        format!("auth required {pam_exec} /bin/sleep 60\naccount required {pam_exec} /bin/true\n"),
    )
    .unwrap();
    let port = free_port();
    let log = tmp.path().join("ofmipd.log");
    let child = Command::new(tmda_bin())
        .args(["ofmipd", "-f", "-L", "-p", &format!("127.0.0.1:{port}"), "-a"])
        .arg(&authfile)
        .args(["-m", "tmda-test", "-m", "tmda-hang"])
        .env("LD_PRELOAD", "libpam_wrapper.so")
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", &services)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let daemon = Daemon {
        child,
        name: "ofmipd (attacked)",
    };
    wait_for_port(port, "ofmipd");
    let launcher = Launcher::on(steal_launcher_socket(daemon.child.id()));
    let null = || tmda::launcher::null_fd().unwrap();
    let (n1, n2, n3) = (null(), null(), null());

    // The request of issue #10, in the old protocol: `tmda checkauth` with an -A program
    // of the attacker's, as daemon (and as a user in a privileged group, postgres there).
    let mark = marks.join("pwned");
    let put = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    let mut old = vec![0u8];
    put(&mut old, b"daemon");
    put(&mut old, b"/");
    let command = format!("sh -c 'id > {}'", mark.display());
    let args: [&[u8]; 5] = [b"checkauth", b"--stdin", b"-A", command.as_bytes(), b"daemon"];
    old.extend_from_slice(&(args.len() as u32).to_le_bytes());
    for a in args {
        put(&mut old, a);
    }
    old.push(0);
    let answer = launcher
        .send_raw(&old, &[n1.as_raw_fd(), n2.as_raw_fd(), n3.as_raw_fd()])
        .unwrap()
        .wait();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        !mark.exists(),
        "the launcher ran the attacker's program: {}",
        std::fs::read_to_string(&mark).unwrap_or_default()
    );
    assert!(matches!(answer, Ok(Answer::Refused(_))), "{answer:?}");

    // Well-formed requests outside the contract.
    let deliver = |login: &str| {
        let sub = Submission {
            login: login.into(),
            mail_from: "a@example.org".into(),
            recipients: vec!["b@example.org".into()],
            received: "from x by y; date".into(),
            smtputf8: false,
        };
        launcher
            .send_raw(&Request::Deliver(sub).encode(), &[n1.as_raw_fd(), n2.as_raw_fd()])
            .unwrap()
            .wait()
            .unwrap()
    };
    for login in ["root", "daemon", "nobody", "tofmipd", "-oQ/tmp", "no-such-user-xyz"] {
        assert!(matches!(deliver(login), Answer::Refused(_)), "deliver as {login}");
    }
    let pam = |service: &str, login: &str, password: &str| {
        launcher
            .send_raw(
                &Request::PamCheck {
                    service: service.into(),
                    login: login.into(),
                    password: password.into(),
                }
                .encode(),
                &[],
            )
            .unwrap()
            .wait()
            .unwrap()
    };
    assert!(matches!(pam("tmda-test", "root", "guess-1"), Answer::Refused(_)));
    assert!(matches!(pam("tmda-test", "daemon", "guess-2"), Answer::Refused(_)));
    assert!(matches!(pam("login", "tmdaglobal3", "guess-3"), Answer::Refused(_)));
    // An ordinary account is checked, as the contract allows.
    assert_eq!(pam("tmda-test", "tmdaglobal3", "right-pw"), Answer::Exited(0));

    // A module that hangs is stopped after the launcher's timeout, and its slot freed.
    let started = std::time::Instant::now();
    let hung = pam("tmda-hang", "tmdaglobal3", "guess-4");
    assert!(
        matches!(&hung, Answer::Failed(t) if t.contains("did not finish")),
        "{hung:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // Guessing: ten failed checks per login in ten minutes (the hung one was the
    // first), then none, not even with the right password.
    for i in 0..9 {
        assert_eq!(
            pam("tmda-test", "tmdaglobal3", &format!("guess-x{i}")),
            Answer::Exited(1)
        );
    }
    let limited = pam("tmda-test", "tmdaglobal3", "right-pw");
    assert!(
        matches!(&limited, Answer::Failed(t) if t.contains("failed PAM checks")),
        "{limited:?}"
    );

    let text = std::fs::read_to_string(&log).unwrap();
    let refused = text.lines().filter(|l| l.contains("launcher: refused ")).count();
    assert_eq!(refused, 1 + 6 + 3 + 1, "{text}");
    assert!(
        text.contains("launcher: stopped a PAM check for \"tmdaglobal3\""),
        "{text}"
    );
    assert!(
        !text.contains("guess-") && !text.contains("right-pw"),
        "a password was logged: {text}"
    );
    drop(daemon);
}

/// --restrict-sender in global mode: the launcher reads --sender-map for the login and
/// gives the user's tmda sendmail the rule; a From that is not the user's gets 553, one
/// the map allows goes out.
#[test]
fn global_mode_restricts_senders_through_the_launcher() {
    require_root("the global-mode test");
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let tofmipd = ensure_system_user("tofmipd", Path::new("/nonexistent"));
    let home = tmp.path().join("tmdaglobal4");
    std::fs::create_dir_all(home.join(".tmda")).unwrap();
    std::fs::write(
        home.join(".tmda/config"),
        format!(
            "USERNAME = 'tmdaglobal4'\nHOSTNAME = 'global.test'\nMAIL_TRANSPORT = 'smtp'\nSMTPHOST = '127.0.0.1:{}'\n",
            sink.port
        ),
    )
    .unwrap();
    std::fs::write(
        home.join(".tmda/crypt_key"),
        "4444444444444444444444444444444444444444\n",
    )
    .unwrap();
    std::fs::set_permissions(home.join(".tmda/crypt_key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let acct = ensure_user("tmdaglobal4", &home);
    chown_r(&home, &acct);
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let authfile = tmp.path().join("tofmipd");
    std::fs::write(&authfile, "tmdaglobal4:pw\n").unwrap();
    std::fs::set_permissions(&authfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown_r(&authfile, &tofmipd);
    // Readable by root alone: only the launcher can read it.
    let map = tmp.path().join("senders");
    std::fs::write(&map, "tmdaglobal4 boss@corp.example\n").unwrap();
    std::fs::set_permissions(&map, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let child = Command::new(tmda_bin())
        .args([
            "ofmipd",
            "-f",
            "-p",
            &format!("127.0.0.1:{port}"),
            "--restrict-sender",
            "--sender-map",
        ])
        .arg(&map)
        .arg("-a")
        .arg(&authfile)
        .env("GLOBAL_TMDARC", tmp.path().join("none"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = Daemon {
        child,
        name: "ofmipd (restrict-sender)",
    };
    wait_for_port(port, "ofmipd");
    for (from, want) in [
        ("someone@elsewhere.example", "553 5.7.1"),
        ("boss@corp.example", "250 2.0.0"),
        ("tmdaglobal4@global.test", "250 2.0.0"),
    ] {
        let mut c = Raw::connect(port);
        c.reply();
        assert!(c.auth_plain("tmdaglobal4", "pw").starts_with("235"));
        let r = c.send_message(from, "to@x.org", &format!("From: {from}\r\nSubject: s\r\n\r\nbody"));
        assert!(r.starts_with(want), "{from}: {r}");
    }
    assert_eq!(sink.wait_for(2).len(), 2);
}

/// Global mode: the user's own `tmda sendmail` (run as the user) tries every copy,
/// sends the notification through the user's transport, and tells the daemon each
/// recipient's fate on its standard error; the client gets 250, and nobody gets the
/// message twice.
#[test]
fn global_mode_partial_failure_notifies_the_sender_as_the_user() {
    require_root("the global-mode test");
    let tmp = shared_tempdir();
    let tofmipd = ensure_system_user("tofmipd", Path::new("/nonexistent"));
    let home = tmp.path().join("tmdaglobal5");
    std::fs::create_dir_all(home.join(".tmda")).unwrap();
    // The user's MTA refuses bad@ for good and keeps everything else, as the user.
    let mta = home.join("mta.sh");
    std::fs::write(
        &mta,
        format!(
            "#!/bin/sh\nfor a; do r=$a; done\ncase $r in bad@*) cat >/dev/null; echo \"mta: $r: no such user\" >&2; exit 67;; esac\n\
             cat > {}/got-$r\nid -u >> {}/got-$r\n",
            home.display(),
            home.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&mta, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        home.join(".tmda/config"),
        format!(
            "USERNAME = 'tmdaglobal5'\nHOSTNAME = 'global.test'\nSENDMAIL_PROGRAM = '{}'\nMAIL_TRANSFER_AGENT = 'postfix'\n",
            mta.display()
        ),
    )
    .unwrap();
    std::fs::write(home.join(".tmda/crypt_key"), format!("{}\n", "3".repeat(40))).unwrap();
    std::fs::set_permissions(home.join(".tmda/crypt_key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let acct = ensure_user("tmdaglobal5", &home);
    chown_r(&home, &acct);
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let authfile = tmp.path().join("tofmipd");
    std::fs::write(&authfile, "tmdaglobal5:pw-three\n").unwrap();
    std::fs::set_permissions(&authfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown_r(&authfile, &tofmipd);
    let port = free_port();
    let log = tmp.path().join("ofmipd.log");
    let child = Command::new(tmda_bin())
        .args([
            "ofmipd",
            "-f",
            "-L",
            "--hostname",
            "mx.global",
            "-p",
            &format!("127.0.0.1:{port}"),
            "-a",
        ])
        .arg(&authfile)
        .env("GLOBAL_TMDARC", tmp.path().join("none"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _daemon = Daemon {
        child,
        name: "ofmipd (global, notifications)",
    };
    wait_for_port(port, "ofmipd");
    let mut c = Raw::connect(port);
    c.reply();
    c.cmd("EHLO c");
    assert!(c.auth_plain("tmdaglobal5", "pw-three").starts_with("235"));
    assert!(c.cmd("MAIL FROM:<sender@example.org>").starts_with("250"));
    for r in ["ok@x.org", "bad@x.org", "fine@x.org"] {
        assert!(c.cmd(&format!("RCPT TO:<{r}>")).starts_with("250"));
    }
    assert!(c.cmd("DATA").starts_with("354"));
    let r = c.cmd("Subject: global partial\r\n\r\nbody\r\n.");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        r.starts_with("250 2.0.0 Ok: not every recipient"),
        "{r}\n{}",
        log_text()
    );
    for r in ["ok@x.org", "fine@x.org", "sender@example.org"] {
        let got = std::fs::read_to_string(home.join(format!("got-{r}"))).unwrap_or_else(|e| panic!("{r}: {e}"));
        assert!(
            got.ends_with(&format!("\n{}\n", acct.uid)),
            "{r} handed on as the user: {got}"
        );
    }
    let dsn = std::fs::read_to_string(home.join("got-sender@example.org")).unwrap();
    for want in [
        "From: Mail Delivery System <MAILER-DAEMON@mx.global>",
        "Final-Recipient: rfc822; bad@x.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: x-unix; ",
        "exited 67: mta: bad@x.org: no such user",
        "Subject: global partial",
    ] {
        assert!(dsn.contains(want), "{want:?} missing:\n{dsn}");
    }
    let l = log_text();
    for want in [
        "outcome=partly-delivered reason=\"delivery status notification sent to <sender@example.org>\"",
        "to=<bad@x.org> outcome=failed status=5.1.1",
        "to=<ok@x.org> outcome=delivered",
        "to=<fine@x.org> outcome=delivered",
    ] {
        assert!(l.contains(want), "{want:?} missing from the log:\n{l}");
    }
}
