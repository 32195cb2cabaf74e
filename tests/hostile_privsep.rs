//! Attacks on privilege boundaries (issue #10, points 8, 13 and 14): what another local
//! user or a compromised network process could try, and what must stop them.

use std::os::unix::fs::PermissionsExt;

use predicates::str::contains;

use crate::util::TestEnv;

fn add(env: &TestEnv, file: &std::path::Path) -> assert_cmd::assert::Assert {
    env.tmda()
        .args(["passwd", "--stdin", "-a"])
        .arg(file)
        .args(["add", "alice"])
        .write_stdin("wonderland\n")
        .assert()
}

/// See: #10 (13). Whoever can write to the directory plants `.FILE.lock` as a symlink;
/// `tmda passwd` (say, root) must not follow it and create the file it points at.
#[test]
fn passwd_does_not_follow_a_symlinked_lock_file() {
    let env = TestEnv::bare();
    let dir = env.path("auth");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = env.path("elsewhere/created-by-the-lock");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, dir.join(".tofmipd.lock")).unwrap();
    add(&env, &dir.join("tofmipd"))
        .failure()
        .stderr(contains(".tofmipd.lock"));
    assert!(!target.exists(), "the lock's symlink was followed");
    assert!(!dir.join("tofmipd").exists());
}

/// See: #10 (13). A password file in a directory others may write to (and that lacks the
/// sticky bit) is refused: they could swap the file or its lock under us. A sticky
/// directory such as /tmp is fine, since others cannot replace our files there.
#[test]
fn passwd_refuses_a_directory_others_can_write() {
    let env = TestEnv::bare();
    for (mode, ok) in [
        (0o777, false),
        (0o770, false),
        (0o757, false),
        (0o1777, true),
        (0o755, true),
    ] {
        let dir = env.path(&format!("d{mode:o}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let a = add(&env, &dir.join("tofmipd"));
        if ok {
            a.success();
        } else {
            a.code(77).stderr(contains("writable by others"));
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{mode:o}: nothing written");
        }
    }
}

/// See: #10 (13). The same rule for `keygen --install`.
#[test]
fn keygen_install_refuses_a_directory_others_can_write() {
    let env = TestEnv::bare();
    for (mode, ok) in [(0o777, false), (0o775, false), (0o1777, true), (0o700, true)] {
        let dir = env.path(&format!("k{mode:o}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        env.write_config(&format!("CRYPT_KEY_FILE = '{}'\n", dir.join("crypt_key").display()));
        let a = env.tmda().args(["keygen", "--install"]).assert();
        if ok {
            a.success();
        } else {
            a.code(77).stderr(contains("writable by others"));
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{mode:o}: nothing written");
        }
    }
}

mod launcher {
    //! See: #10 (8). The root launcher, attacked from the network process's side of its
    //! socket. Every request below is outside its contract: each must be refused, and
    //! each refusal logged (one line, no password), before anything is started.

    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;
    use std::sync::{Arc, Mutex};

    use tmda::launcher::{Answer, Launcher, PamLimits, Request, Setup, Submission};

    fn setup() -> Setup {
        Setup {
            tmda: "/nonexistent/tmda".into(),
            vhome_script: None,
            vdomains: "/nonexistent/virtualdomains".into(),
            configdir: None,
            pure_proxy: false,
            pass_through: "/nonexistent/sendmail".into(),
            restrict_sender: None,
            timeout: std::time::Duration::from_secs(5),
            pam_services: vec!["tmda-test".into()],
            pam: PamLimits::default(),
            min_uid: 1000,
            deny_uids: vec![],
            hostname: "mx.test".into(),
        }
    }

    fn null() -> OwnedFd {
        tmda::launcher::null_fd().unwrap()
    }

    fn deliver(login: &str) -> Vec<u8> {
        Request::Deliver(Submission {
            login: login.into(),
            mail_from: "attacker@example.org".into(),
            recipients: vec!["victim@example.org".into()],
            received: "from x by y; date".into(),
            smtputf8: false,
        })
        .encode()
    }

    fn pam(service: &str, login: &str) -> Vec<u8> {
        Request::PamCheck {
            service: service.into(),
            login: login.into(),
            password: "hunter2-secret".into(),
        }
        .encode()
    }

    /// The request as the old launcher took it: a program number (0: this binary), the
    /// account, its home, any arguments, any environment. The attack of issue #10.
    fn old_protocol_checkauth_as(user: &str) -> Vec<u8> {
        let put = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        };
        let mut out = vec![0u8];
        put(&mut out, user.as_bytes());
        put(&mut out, b"/");
        let args: [&[u8]; 5] = [
            b"checkauth",
            b"--stdin",
            b"-A",
            b"sh -c 'id > /tmp/pwned'",
            user.as_bytes(),
        ];
        out.extend_from_slice(&(args.len() as u32).to_le_bytes());
        for a in args {
            put(&mut out, a);
        }
        out.push(0);
        out
    }

    #[test]
    fn every_request_outside_the_contract_is_refused_and_logged() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let lines = log.clone();
        let server = std::thread::spawn(move || {
            tmda::launcher::serve(theirs, &setup(), &mut |l: &str| {
                lines.lock().unwrap().push(l.to_string())
            })
        });
        let launcher = Launcher::on(ours);
        let (a, b) = (null(), null());
        let two = [a.as_raw_fd(), b.as_raw_fd()];
        let (c, d, e) = (null(), null(), null());
        let three = [c.as_raw_fd(), d.as_raw_fd(), e.as_raw_fd()];
        let cases: Vec<(&str, Vec<u8>, &[i32], &str)> = vec![
            (
                "old protocol, as daemon",
                old_protocol_checkauth_as("daemon"),
                &three,
                "unknown request kind",
            ),
            (
                "old protocol, as postgres",
                old_protocol_checkauth_as("postgres"),
                &three,
                "unknown request kind",
            ),
            ("deliver as root", deliver("root"), &two, "it is root"),
            ("deliver as daemon", deliver("daemon"), &two, "system account"),
            ("deliver as nobody", deliver("nobody"), &two, "nobody"),
            (
                "a login that is an option",
                deliver("-oQ/tmp/q"),
                &two,
                "begins with '-'",
            ),
            ("a login that is a path", deliver("../../root"), &two, "begins with '.'"),
            ("a login with a newline", deliver("root\nalice"), &two, "control"),
            (
                "a delivery without its descriptors",
                deliver("root"),
                &[],
                "descriptors",
            ),
            ("a delivery with one too many", deliver("daemon"), &three, "descriptors"),
            ("PAM for root", pam("tmda-test", "root"), &[], "it is root"),
            (
                "PAM for a system account",
                pam("tmda-test", "daemon"),
                &[],
                "system account",
            ),
            (
                "PAM with a service not named at start-up",
                pam("login", "daemon"),
                &[],
                "not configured",
            ),
            ("junk", b"\xff\x00garbage".to_vec(), &[], "malformed"),
            ("nothing", vec![], &[], "malformed"),
        ];
        for (what, body, fds, why) in &cases {
            let answer = launcher.send_raw(body, fds).unwrap().wait().unwrap();
            match answer {
                Answer::Refused(text) => assert!(text.contains(why), "{what}: {text}"),
                other => panic!("{what}: not refused: {other:?}"),
            }
        }
        drop(launcher);
        server.join().unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log.len(), cases.len(), "one line per refusal: {log:#?}");
        for ((what, _, _, why), line) in cases.iter().zip(log.iter()) {
            assert!(line.starts_with("refused ") && line.contains(why), "{what}: {line}");
            assert!(!line.contains("hunter2") && !line.contains('\n'), "{what}: {line}");
        }
        assert!(log[2].contains("\"root\"") && log[3].contains("\"daemon\""), "{log:#?}");
    }
}
