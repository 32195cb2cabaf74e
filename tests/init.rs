//! `tmda init` without a terminal (`--yes`): the files it writes, their modes, the
//! transport check, what it keeps, and that the address it shows verifies. The
//! terminal dialogue is driven through tmux in the interop tier.

use std::os::unix::fs::PermissionsExt;

use crate::util::fake_smtp::{FakeSmtp, Policy};
use crate::util::{TestEnv, fake_sendmail};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn yes_with_a_sendmail_program_sets_up_a_working_home() {
    let env = TestEnv::bare();
    let sendmail = fake_sendmail(&env);
    let out = env
        .tmda()
        .args([
            "init",
            "--yes",
            "--username",
            "jo",
            "--hostname",
            "example.org",
            "--sendmail",
        ])
        .arg(&sendmail)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(mode(&env.path(".tmda/crypt_key")), 0o600);
    assert_eq!(mode(&env.path(".tmda/config")), 0o600);
    let config = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    assert!(
        config.contains("USERNAME = \"jo\"") && config.contains("HOSTNAME = \"example.org\""),
        "{config}"
    );
    assert!(
        config.contains(&format!("SENDMAIL_PROGRAM = \"{}\"", sendmail.display())),
        "{config}"
    );
    assert!(env.path(".tmda/filters/outgoing").exists());
    assert!(stderr.contains("checked:"), "{stderr}");
    // The address it shows is a dated one for jo@example.org, and its check says VALID.
    let address = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("jo-dated-"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(address.ends_with("@example.org"), "{address}");
    assert!(stdout.contains("STATUS: VALID"), "{stdout}");
    // The same address verifies with the installed key, as the user would check it.
    let check = env.tmda().args(["check-address", address]).output().unwrap();
    assert!(check.status.success(), "{check:?}");
    // tmda sendmail works with what was written.
    let sent = env
        .tmda()
        .args(["sendmail", "friend@example.net"])
        .write_stdin("From: jo@example.org\nSubject: hi\n\nhello\n")
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let env = TestEnv::new();
    let sendmail = fake_sendmail(&env);
    let key_before = std::fs::read_to_string(env.path(".tmda/crypt_key")).unwrap();
    let config_before = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    let run = |force: bool| {
        let mut c = env.tmda();
        c.args([
            "init",
            "--yes",
            "--username",
            "jo",
            "--hostname",
            "example.org",
            "--sendmail",
        ])
        .arg(&sendmail);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let out = run(false);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("keeping the existing secret key"), "{stderr}");
    assert!(stderr.contains("keeping the existing configuration"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(env.path(".tmda/crypt_key")).unwrap(),
        key_before
    );
    assert_eq!(
        std::fs::read_to_string(env.path(".tmda/config")).unwrap(),
        config_before
    );
    let out = run(true);
    assert!(out.status.success(), "{out:?}");
    assert_ne!(
        std::fs::read_to_string(env.path(".tmda/crypt_key")).unwrap(),
        key_before
    );
    assert!(
        std::fs::read_to_string(env.path(".tmda/config"))
            .unwrap()
            .contains("\"jo\"")
    );
}

#[test]
fn an_smtp_relay_is_checked_with_ehlo() {
    let up = FakeSmtp::start(Policy::default());
    let env = TestEnv::bare();
    let out = env
        .tmda()
        .args([
            "init",
            "--yes",
            "--username",
            "jo",
            "--hostname",
            "example.org",
            "--smtp",
        ])
        .arg(format!("127.0.0.1:{}", up.port))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let config = std::fs::read_to_string(env.path(".tmda/config")).unwrap();
    assert!(config.contains("MAIL_TRANSPORT = \"smtp\""), "{config}");
    assert!(
        config.contains(&format!("SMTPHOST = \"127.0.0.1:{}\"", up.port)),
        "{config}"
    );
    // A relay that does not answer: nothing is written, exit 69.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::bare();
    let out = env
        .tmda()
        .args(["init", "--yes", "--smtp"])
        .arg(format!("127.0.0.1:{dead}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect"),
        "{out:?}"
    );
    assert!(!env.path(".tmda/config").exists() && !env.path(".tmda/crypt_key").exists());
    // A sendmail program that is not there: the same.
    let out = env
        .tmda()
        .args(["init", "--yes", "--sendmail", "/nonexistent/sendmail"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "{out:?}");
}

#[test]
fn without_a_terminal_it_needs_yes_and_can_add_an_ofmipd_login() {
    let env = TestEnv::bare();
    let out = env.tmda().arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"), "{out:?}");
    let sendmail = fake_sendmail(&env);
    let out = env
        .tmda()
        .args([
            "init",
            "--yes",
            "--username",
            "jo",
            "--hostname",
            "example.org",
            "--ofmipd-user",
            "jo",
            "--sendmail",
        ])
        .arg(&sendmail)
        .write_stdin("s3cret-pass\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let tofmipd = env.path(".tmda/tofmipd");
    assert_eq!(mode(&tofmipd), 0o600);
    let check = env
        .tmda()
        .args(["passwd", "-a"])
        .arg(&tofmipd)
        .args(["--stdin", "check", "jo"])
        .write_stdin("s3cret-pass\n")
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

/// `--incoming forward`: settings, a starter incoming filter, a Maildir and a ~/.forward
/// whose command, run as the MTA would, delivers a whitelisted sender's message and
/// challenges a stranger.
#[test]
fn incoming_through_forward_filters_mail_with_the_line_it_wrote() {
    let env = TestEnv::bare();
    let sendmail = fake_sendmail(&env);
    let out = env
        .tmda()
        .args([
            "init",
            "--yes",
            "--username",
            "jo",
            "--hostname",
            "example.org",
            "--incoming",
            "forward",
            "--sendmail",
        ])
        .arg(&sendmail)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let forward = std::fs::read_to_string(env.path(".forward")).unwrap();
    assert!(
        forward.starts_with("\"|/") && forward.trim_end().ends_with(" filter\""),
        "{forward}"
    );
    for d in ["tmp", "new", "cur"] {
        assert!(env.path("Maildir").join(d).is_dir());
    }
    assert!(env.path(".tmda/filters/incoming").exists());
    // CONFIRM_APPEND is written there when a stranger confirms.
    assert!(env.path(".tmda/lists").is_dir(), "init makes ~/.tmda/lists");
    std::fs::write(env.path(".tmda/lists/whitelist"), "friend@example.net\n").unwrap();
    // The command as the MTA runs it: the words between "| and ".
    let command = forward.trim().trim_matches('"').trim_start_matches('|').to_string();
    let run_to = |sender: &str, recipient: &str, text: &str| {
        let extension = recipient.split('@').next().unwrap().strip_prefix("jo-").unwrap_or("");
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", &command])
            .env("HOME", env.home())
            .env("SENDER", sender)
            .env("RECIPIENT", recipient)
            .env("EXTENSION", extension)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        child.wait().unwrap()
    };
    let run = |sender: &str, text: &str| run_to(sender, "jo@example.org", text);
    let st = run("friend@example.net", "From: friend@example.net\nSubject: hi\n\nhello\n");
    assert_eq!(st.code(), Some(0));
    assert_eq!(std::fs::read_dir(env.path("Maildir/new")).unwrap().count(), 1);
    let st = run(
        "stranger@example.com",
        "From: stranger@example.com\nSubject: buy\n\nnow\n",
    );
    assert_eq!(st.code(), Some(0));
    assert_eq!(std::fs::read_dir(env.path("Maildir/new")).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(env.path(".tmda/pending")).unwrap().count(), 1);
    let sent = crate::util::fake_sendmail_outputs(&env);
    assert!(
        sent.iter()
            .any(|(args, msg)| args.contains("[stranger@example.com]") && msg.contains("-confirm-")),
        "{sent:?}"
    );
    // The stranger answers: released, and remembered in CONFIRM_APPEND.
    let (_, challenge) = sent.iter().find(|(_, m)| m.contains("-confirm-")).unwrap();
    let confirm = challenge
        .lines()
        .find_map(|l| l.strip_prefix("Reply-To: "))
        .unwrap()
        .trim()
        .to_string();
    let st = run_to("stranger@example.com", &confirm, "From: stranger@example.com\n\nyes\n");
    assert_eq!(st.code(), Some(0), "the confirmation is taken");
    assert_eq!(
        std::fs::read_to_string(env.path(".tmda/lists/confirmed")).unwrap(),
        "stranger@example.com\n"
    );
    // The blacklist comes first in the starter filter: a confirmed sender who is later
    // blacklisted (tmda pending's PENDING_BLACKLIST_APPEND, or by hand) is dropped, and
    // so is a blacklisted address in a whitelisted domain.
    std::fs::write(env.path(".tmda/lists/whitelist"), "*@example.net\n").unwrap();
    std::fs::write(
        env.path(".tmda/lists/blacklist"),
        "stranger@example.com\nspam@example.net\n",
    )
    .unwrap();
    let delivered = || std::fs::read_dir(env.path("Maildir/new")).unwrap().count();
    let before = delivered();
    for sender in ["stranger@example.com", "spam@example.net"] {
        let st = run(sender, &format!("From: {sender}\nSubject: again\n\nmore\n"));
        assert_eq!(st.code(), Some(0), "{sender}");
    }
    assert_eq!(delivered(), before, "blacklisted senders are dropped");
    let st = run("friend@example.net", "From: friend@example.net\nSubject: hi\n\nhello\n");
    assert_eq!(st.code(), Some(0));
    assert_eq!(
        delivered(),
        before + 1,
        "the rest of the whitelisted domain gets through"
    );
}
