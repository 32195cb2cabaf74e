//! Auth sources against real servers: Dovecot (IMAP, IMAPS, POP3, POP3S, APOP) and
//! slapd (LDAP, LDAPS), password-file schemes shared with Dovecot in both directions
//! (`doveadm pw`), and ofmipd with `-R imap://...` and `-a` in one chain.

use std::process::Command;

use crate::peers::*;

const USERS: &str = "alice:{PLAIN}wonderland\nbob:{PLAIN}builder\n";

/// Near misses that must all be refused.
const WRONG: &[&str] = &[
    "wonderlan",
    "wonderlandd",
    " wonderland",
    "Wonderland",
    "wonder land",
    "",
];

#[test]
fn dovecot_imap_pop3_and_apop() {
    let tmp = shared_tempdir();
    let (ca, cert, key) = test_certificates(tmp.path());
    let dc = Dovecot::start(tmp.path(), &cert, &key, USERS);
    for url in [
        format!("imap://127.0.0.1:{}", dc.imap),
        format!("imaps://127.0.0.1:{}", dc.imaps),
        format!("pop3://127.0.0.1:{}", dc.pop3),
        format!("pop3s://127.0.0.1:{}", dc.pop3s),
        format!("apop://127.0.0.1:{}", dc.pop3),
    ] {
        let (code, out) = checkauth(&["-R", &url], "alice", "wonderland", &ca);
        assert_eq!(code, 0, "{url}: {out}");
        assert!(out.contains(&format!("remoteauth {url}: accepted")), "{out}");
        for w in WRONG {
            let (code, out) = checkauth(&["-R", &url], "alice", w, &ca);
            assert_eq!(code, 1, "{url} accepted {w:?}: {out}");
        }
        // Injection attempts in the user name are refused, never sent as commands.
        for u in ["alice\" \"wonderland", "alice\r\na2 LOGOUT", "alice wonderland", "*"] {
            let (code, _) = checkauth(&["-R", &url], u, "wonderland", &ca);
            assert_ne!(code, 0, "{url} accepted user {u:?}");
        }
    }
}

#[test]
fn tls_servers_are_verified() {
    let tmp = shared_tempdir();
    let (_ca, cert, key) = test_certificates(tmp.path());
    let dc = Dovecot::start(tmp.path(), &cert, &key, USERS);
    // Trusting only an unrelated CA: the server's certificate must be refused.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (other_ca, _, _) = test_certificates(&other);
    let (code, out) = checkauth(
        &["-R", &format!("imaps://127.0.0.1:{}", dc.imaps)],
        "alice",
        "wonderland",
        &other_ca,
    );
    assert_eq!(code, 75, "{out}");
    assert!(out.contains("could not check"), "{out}");
}

#[test]
fn slapd_simple_bind_with_dn_template() {
    let tmp = shared_tempdir();
    let (ca, cert, key) = test_certificates(tmp.path());
    let ld = Slapd::start(tmp.path(), &cert, &key);
    for url in [
        format!("ldap://127.0.0.1:{}/uid=%s,ou=people,dc=example,dc=com", ld.ldap),
        format!("ldaps://127.0.0.1:{}/uid=%s,ou=people,dc=example,dc=com", ld.ldaps),
    ] {
        let (code, out) = checkauth(&["-R", &url], "alice", "wonderland", &ca);
        assert_eq!(code, 0, "{url}: {out}");
        assert_eq!(checkauth(&["-R", &url], "bob", "builder", &ca).0, 0);
        for w in WRONG {
            assert_eq!(checkauth(&["-R", &url], "alice", w, &ca).0, 1, "{url} accepted {w:?}");
        }
        // A user name cannot change the DN it binds as.
        for u in [
            "bob,ou=people,dc=example,dc=com",
            "alice)(uid=*",
            "admin,dc=example,dc=com",
        ] {
            assert_ne!(checkauth(&["-R", &url], u, "builder", &ca).0, 0, "{u:?}");
        }
    }
    let (code, out) = checkauth(&["-R", "ldap://127.0.0.1:1/uid=%s"], "alice", "wonderland", &ca);
    assert_eq!(code, 75, "an unreachable server is a temporary failure: {out}");
}

#[test]
fn a_chain_of_sources() {
    let tmp = shared_tempdir();
    let (ca, cert, key) = test_certificates(tmp.path());
    let dc = Dovecot::start(tmp.path(), &cert, &key, USERS);
    let file = tmp.path().join("tofmipd");
    std::fs::write(&file, "carol:sunflower\n").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let down = format!("imap://127.0.0.1:{}", free_port());
    let imap = format!("imap://127.0.0.1:{}", dc.imap);
    let chain = ["-R", down.as_str(), "-R", imap.as_str(), "-a", file.to_str().unwrap()];
    let (code, out) = checkauth(&chain, "alice", "wonderland", &ca);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines().next().unwrap().contains("could not check"),
        "the dead server is reported first: {out}"
    );
    assert_eq!(checkauth(&chain, "carol", "sunflower", &ca).0, 0);
    // Refused everywhere, but one source could not be asked: temporary.
    assert_eq!(checkauth(&chain, "carol", "wrong", &ca).0, 75);
}

#[test]
fn password_schemes_interoperate_with_dovecot() {
    let doveadm = require("doveadm", "dovecot-core");
    let tmp = shared_tempdir();
    let (ca, cert, key) = test_certificates(tmp.path());
    // doveadm pw writes entries; tmda checkauth verifies them.
    let file = tmp.path().join("tofmipd");
    let mut text = String::new();
    for (i, scheme) in ["CRAM-MD5", "SHA512-CRYPT", "ARGON2ID"].iter().enumerate() {
        let out = Command::new(&doveadm)
            .args(["pw", "-s", scheme, "-p", &format!("pw-{i}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "doveadm pw -s {scheme}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.push_str(&format!("user{i}:{}\n", String::from_utf8_lossy(&out.stdout).trim()));
    }
    std::fs::write(&file, &text).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    for i in 0..3 {
        let (code, out) = checkauth(
            &["-a", file.to_str().unwrap()],
            &format!("user{i}"),
            &format!("pw-{i}"),
            &ca,
        );
        assert_eq!(code, 0, "doveadm entry {i} ({text}): {out}");
        assert_eq!(
            checkauth(&["-a", file.to_str().unwrap()], &format!("user{i}"), "pw-x", &ca).0,
            1
        );
    }
    // tmda passwd writes entries; Dovecot's passwd-file passdb accepts them over IMAP.
    let ours = tmp.path().join("ours");
    for (u, scheme) in [
        ("cramuser", "cram-md5"),
        ("shauser", "sha512-crypt"),
        ("argonuser", "argon2id"),
    ] {
        let out = Command::new(tmda_bin())
            .args(["passwd", "--stdin", "--scheme", scheme, "-a"])
            .arg(&ours)
            .args(["add", u])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(b"shared-secret\n")?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success());
    }
    let dc = Dovecot::start(tmp.path(), &cert, &key, &std::fs::read_to_string(&ours).unwrap());
    let imap = format!("imap://127.0.0.1:{}", dc.imap);
    for u in ["cramuser", "shauser", "argonuser"] {
        let (code, out) = checkauth(&["-R", &imap], u, "shared-secret", &ca);
        assert_eq!(
            code,
            0,
            "Dovecot refused our {u} entry: {out}\n{}",
            std::fs::read_to_string(&dc.passwd).unwrap()
        );
        assert_eq!(checkauth(&["-R", &imap], u, "other", &ca).0, 1);
    }
    // And Dovecot's CRAM-MD5 login works against the {CRAM-MD5} entry tmda wrote (curl picks CRAM-MD5).
    let curl = require("curl", "curl");
    let out = Command::new(curl)
        .args([
            "-s",
            "--url",
            &format!("imap://127.0.0.1:{}/", dc.imap),
            "-u",
            "cramuser:shared-secret",
            "--login-options",
            "AUTH=CRAM-MD5",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn ofmipd_with_imap_and_authfile_in_one_chain() {
    let tmp = shared_tempdir();
    let (ca, cert, key) = test_certificates(tmp.path());
    let dc = Dovecot::start(tmp.path(), &cert, &key, "remoteuser:{PLAIN}imap-pw\n");
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    let authfile = home.join(".tmda/tofmipd");
    let imap = format!("imap://127.0.0.1:{}", dc.imap);
    let o = Ofmipd::start(&home, &["-R", &imap, "-a", authfile.to_str().unwrap()]);
    let _ = ca;
    // The authfile offers cleartext, but -R cannot do CRAM-MD5: it is not offered.
    let mut c = Raw::connect(o.port);
    c.reply();
    let ehlo = c.cmd("EHLO x");
    assert!(!ehlo.contains("CRAM-MD5"), "{ehlo}");
    assert!(c.auth_plain("remoteuser", "imap-pw").starts_with("235"), "via IMAP");
    let mut c = Raw::connect(o.port);
    c.login(); // alice via the authfile
    assert!(
        o.log_text()
            .contains(&format!("login=remoteuser auth=accepted source=\"remoteauth {imap}\"")),
        "{}",
        o.log_text()
    );
}

/// A PAM service for pam_wrapper's pam_matrix module (no change to /etc/pam.d).
pub(crate) fn pam_service(dir: &std::path::Path) -> std::path::PathBuf {
    let module = [
        "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so",
        "/usr/lib/aarch64-linux-gnu/pam_wrapper/pam_matrix.so",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
    .expect("pam_matrix.so is required: install Debian's libpam-wrapper (scripts/deps.sh does)");
    let services = dir.join("pam-services");
    std::fs::create_dir_all(&services).unwrap();
    let passdb = dir.join("pam-passdb");
    std::fs::write(&passdb, "alice:wonderland:tmda-test\n").unwrap();
    std::fs::write(
        services.join("tmda-test"),
        format!(
            "auth required {m} passdb={p}\naccount required {m} passdb={p}\n",
            m = module.display(),
            p = passdb.display()
        ),
    )
    .unwrap();
    give_to_nobody(dir);
    services
}

#[test]
fn pam_via_pam_wrapper() {
    let tmp = shared_tempdir();
    let services = pam_service(tmp.path());
    let run = |user: &str, pw: &str| {
        let mut c = Command::new(tmda_bin());
        c.args(["checkauth", "--stdin", "-m", "tmda-test", user])
            .env("LD_PRELOAD", "libpam_wrapper.so")
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &services);
        let (ok, out) = run_with_input(&mut c, format!("{pw}\n").as_bytes());
        (ok, out)
    };
    let (ok, out) = run("alice", "wonderland");
    assert!(ok && out.contains("PAM service tmda-test: accepted"), "{out}");
    for w in WRONG {
        assert!(!run("alice", w).0, "PAM accepted {w:?}");
    }
    assert!(!run("mallory", "wonderland").0);

    // ofmipd with -m: the blocking PAM call does not stall other sessions.
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    let port = free_port();
    let mut cmd = Command::new(tmda_bin());
    cmd.args([
        "ofmipd",
        "-f",
        "--hostname",
        "mx.test",
        "-m",
        "tmda-test",
        "-p",
        &format!("127.0.0.1:{port}"),
    ])
    .env("HOME", &home)
    .env("GLOBAL_TMDARC", home.join("none"))
    .env("LD_PRELOAD", "libpam_wrapper.so")
    .env("PAM_WRAPPER", "1")
    .env("PAM_WRAPPER_SERVICE_DIR", &services)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    as_nobody_if_root(&mut cmd);
    let _d = Daemon {
        child: cmd.spawn().unwrap(),
        name: "ofmipd (PAM)",
    };
    wait_for_port(port, "ofmipd");
    let mut c = Raw::connect(port);
    c.login();
    assert!(
        c.send_message("alice@example.org", "pam@x.org", "Subject: pam\r\n\r\nvia PAM")
            .starts_with("250 2.0.0")
    );
    assert_eq!(sink.wait_for(1)[0].rcpt_to, "<pam@x.org>");
}

#[test]
fn ipauthmap_picks_the_server_by_local_address() {
    let tmp = shared_tempdir();
    let (_ca, cert, key) = test_certificates(tmp.path());
    let dc = Dovecot::start(tmp.path(), &cert, &key, "mapped:{PLAIN}via-map\n");
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    // Clients reaching us on 127.0.0.1 are checked against the Dovecot on its IMAP port.
    std::fs::write(
        home.join(".tmda/ipauthmap"),
        format!("# local-ip server port\n127.0.0.1 127.0.0.1 {}\n", dc.imap),
    )
    .unwrap();
    give_to_nobody(&home);
    let o = Ofmipd::start(&home, &["-R", "imap://0.0.0.0"]);
    let mut c = Raw::connect(o.port);
    c.reply();
    let r = c.auth_plain("mapped", "via-map");
    assert!(r.starts_with("235"), "{r}\n{}", o.log_text());
}

#[test]
fn ofmipd_keeps_serving_when_the_auth_server_is_down() {
    let tmp = shared_tempdir();
    let sink = SmtpSink::start(tmp.path());
    let home = ofmipd_home(tmp.path(), sink.port, "");
    let dead = format!("imap://127.0.0.1:{}", free_port());
    let o = Ofmipd::start(&home, &["-R", &dead]);
    let mut c = Raw::connect(o.port);
    c.reply();
    c.cmd("EHLO x");
    let r = c.cmd("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=");
    assert!(r.starts_with("454 4.7.0") && r.contains("could not be reached"), "{r}");
    assert!(c.cmd("NOOP").starts_with("250"), "the session goes on");
    let mut other = Raw::connect(o.port);
    assert!(other.reply().starts_with("220"), "the daemon keeps serving");
    assert!(o.log_text().contains("unavailable"), "{}", o.log_text());
}
