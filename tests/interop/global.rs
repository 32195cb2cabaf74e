//! Global mode, for real: ofmipd started as root drops to `tofmipd`, and each message is
//! processed by a child with the authenticated user's uid, gid and groups. The test
//! creates its system users (tofmipd, tmdaglobal1, tmdaglobal2) with useradd; it must
//! run as root, as CI does, and fails loudly otherwise.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::peers::*;

/// useradd/usermod lock /etc/passwd: tests creating users take turns.
static USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ensure_user(name: &str, home: &Path) -> tmda::delivery::Account {
    let _guard = USERS.lock().unwrap_or_else(|e| e.into_inner());
    if tmda::delivery::Account::lookup(name).is_none() {
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--home-dir",
            ])
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
    tmda::delivery::Account::lookup(name).unwrap()
}

fn chown_r(path: &Path, a: &tmda::delivery::Account) {
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
    let tofmipd = ensure_user("tofmipd", Path::new("/nonexistent"));
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
            format!("USERNAME = '{name}'\nHOSTNAME = 'global.test'\nMAIL_TRANSPORT = 'smtp'\nSMTPHOST = '127.0.0.1:{}'\nLOGFILE_OUTGOING = '~/outgoing.log'\n", sink.port),
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
    std::fs::write(&authfile, "tmdaglobal1:pw-one\ntmdaglobal2:pw-two\nghost:pw-ghost\n").unwrap();
    std::fs::set_permissions(&authfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown_r(&authfile, &tofmipd);

    let pam_dir = tmp.path().join("pam");
    std::fs::create_dir_all(&pam_dir).unwrap();
    let pam_services = crate::auth::pam_service(&pam_dir);
    // Readable by root alone, like /etc/shadow: only the launcher can check it.
    let passdb = pam_dir.join("pam-passdb");
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
        c.auth_plain("alice", "wonderland").starts_with("235"),
        "PAM through the launcher"
    );
    let mut c = Raw::connect(port);
    c.reply();
    assert!(c.auth_plain("alice", "wrong").starts_with("535"));

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
            r.starts_with("250 2.0.0"),
            "{r}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    // A user in the authfile without a system account: refused, not a crash.
    let mut c = Raw::connect(port);
    c.reply();
    assert!(c.auth_plain("ghost", "pw-ghost").starts_with("235"));
    let r = c.send_message("x@y", "z@x.org", "Subject: x\r\n\r\nb");
    assert!(r.starts_with("554 5.0.0") && r.contains("no system account"), "{r}");

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
    let tofmipd = ensure_user("tofmipd", Path::new("/nonexistent"));
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
