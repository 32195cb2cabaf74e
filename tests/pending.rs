//! `tmda pending` against a queue that the real `tmda filter` made: every TMDA option,
//! its output byte for byte (spec §10.3), releases through a fake sendmail and back
//! through the filter, the cache pickle, two releasers at once, --json and --digest.

use crate::util::{TestEnv, fake_sendmail, fake_sendmail_outputs, output_with_input, stdout_of};

const T0: u64 = 1796510000;

struct Q {
    env: TestEnv,
}

impl Q {
    /// A home whose filter holds every stranger's message (the default ACTION_INCOMING
    /// is confirm), with a fake sendmail recording challenges and releases.
    fn new(extra: &str) -> Q {
        let env = TestEnv::new();
        let sm = fake_sendmail(&env);
        let h = env.home().display().to_string();
        for d in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(env.path(&format!("Maildir/{d}"))).unwrap();
        }
        env.write_config(&format!(
            "USERNAME = 'testuser'\nHOSTNAME = 'nowhere.com'\nMAIL_TRANSFER_AGENT = 'postfix'\n\
             DELIVERY = '{h}/Maildir/'\nMAIL_TRANSPORT = 'sendmail'\nSENDMAIL_PROGRAM = '{}'\n{extra}",
            sm.display()
        ));
        Q { env }
    }

    /// Hold a message from `sender` at time `now`; returns its id.
    fn hold(&self, sender: &str, subject: &str, now: u64) -> String {
        let before = self.ids();
        let msg = format!(
            "Return-Path: <{sender}>\nDelivered-To: testuser@nowhere.com\nFrom: Some One <{sender}>\n\
             To: testuser@nowhere.com\nSubject: {subject}\nDate: Sat, 05 Dec 2026 22:38:53 +0000\n\nbody of {subject}\n"
        );
        let out = output_with_input(
            self.env
                .std_tmda()
                .args(["filter"])
                .env("SENDER", sender)
                .env("RECIPIENT", "testuser@nowhere.com")
                .env("EXTENSION", "")
                .env("TMDA_NOW", now.to_string())
                .env("TMDA_NO_WARN", "1"),
            msg.as_bytes(),
        );
        assert!(
            out.status.success(),
            "tmda filter: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = self.ids();
        let new: Vec<_> = after.into_iter().filter(|i| !before.contains(i)).collect();
        assert_eq!(new.len(), 1, "one message held");
        new[0].clone()
    }

    fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.env.path(".tmda/pending"))
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".msg").map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn pending(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.env.std_tmda();
        c.arg("pending")
            .args(args)
            .env("TMDA_NOW", (T0 + 1000).to_string())
            .env("TMDA_NO_WARN", "1");
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.pending(args).stdin(std::process::Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "tmda pending {args:?}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn with_stdin(&self, args: &[&str], input: &str) -> std::process::Output {
        output_with_input(&mut self.pending(args), input.as_bytes())
    }

    /// Messages the fake sendmail got that are releases (not challenges).
    fn releases(&self) -> Vec<(String, String)> {
        fake_sendmail_outputs(&self.env)
            .into_iter()
            .filter(|(_, m)| m.contains("X-TMDA-Released:"))
            .collect()
    }

    fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.env.path(rel)).unwrap_or_default()
    }
}

fn summary(id: &str, n: usize, total: usize, size: u64, subject: &str, sender: &str) -> String {
    format!(
        "\n{id} ({n} of {total} / {size} bytes)\n  >> Date: Sat, 05 Dec 2026 22:38:53 +0000\n  >> From: Some One <{sender}>\n  \
         >>   To: testuser@nowhere.com\n  >> Subj: {subject}\n\n"
    )
}

fn size_of(q: &Q, id: &str) -> u64 {
    std::fs::metadata(q.env.path(&format!(".tmda/pending/{id}.msg")))
        .unwrap()
        .len()
}

#[test]
fn batch_summaries_terse_lines_and_links_are_tmdas() {
    let q = Q::new("");
    let a = q.hold("alice@example.org", "first", T0);
    let b = q.hold("bob@example.net", "second", T0 + 5);
    let want = summary(&a, 1, 2, size_of(&q, &a), "first", "alice@example.org")
        + &summary(&b, 2, 2, size_of(&q, &b), "second", "bob@example.net");
    crate::util::assert_text_eq(&q.run(&["-b"]), &want, "tmda pending -b");
    assert_eq!(
        q.run(&["-b", "-T"]),
        format!("{a}\tSome One\tfirst\n{b}\tSome One\tsecond\n")
    );
    // -D newest first; -A (last) wins back.
    assert_eq!(
        q.run(&["-b", "-T", "-D"]),
        format!("{b}\tSome One\tsecond\n{a}\tSome One\tfirst\n")
    );
    assert_eq!(
        q.run(&["-b", "-T", "-D", "-A"]),
        format!("{a}\tSome One\tfirst\n{b}\tSome One\tsecond\n")
    );
    // -s: the release address, which is the confirm address for X-TMDA-Recipient.
    let s = q.run(&["-b", "-s", &a]);
    let (ts, pid) = a.split_once('.').unwrap();
    let key = tmda::key::CryptKey::from_hex(crate::util::KEY, std::path::Path::new("k")).unwrap();
    let cookie = tmda::address::tag::confirm_cookie(&key, 3, ts.parse().unwrap(), pid.parse().unwrap(), Some("accept"));
    assert!(
        s.ends_with(&format!(
            "  >> Subj: first\n<mailto:testuser-confirm-{cookie}@nowhere.com>\n"
        )),
        "{s}"
    );
    // -R replaces X-TMDA-Recipient in the link.
    let s = q.run(&["-b", "-s", "-R", "other@else.org", &a]);
    assert!(s.contains("<mailto:other-confirm-"), "{s}");
    // -q: nothing; but -T still prints (TMDA).
    assert_eq!(q.run(&["-b", "-q"]), "");
    assert_eq!(q.run(&["-b", "-q", "-T"]).lines().count(), 2);
    // TERSE_SUMMARY_HEADERS and SUMMARY_HEADERS.
    let q2 = Q::new(
        "TERSE_SUMMARY_HEADERS = ['from_address', 'x-missing', 'subject']\nSUMMARY_HEADERS = ['x-spam-status', 'subject']\n",
    );
    let c = q2.hold("carol@example.com", "third", T0);
    assert_eq!(q2.run(&["-b", "-T"]), format!("{c}\tcarol@example.com\tNone\tthird\n"));
    assert!(q2.run(&["-b"]).contains("  >> X-sp: None\n  >> Subj: third\n\n"));
}

#[test]
fn ids_from_arguments_and_standard_input_and_missing_ones() {
    let q = Q::new("");
    let a = q.hold("alice@example.org", "first", T0);
    let b = q.hold("bob@example.net", "second", T0 + 5);
    assert_eq!(q.run(&["-b", "-T", &b]), format!("{b}\tSome One\tsecond\n"));
    let out = q.with_stdin(&["-b", "-T", "-"], &format!("{b}\n{a} 1.2\n"));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("1.2 not found!\n{a}\tSome One\tfirst\n{b}\tSome One\tsecond\n"),
        "ids sorted as numbers"
    );
    assert_eq!(q.run(&["-b", "-T", "nonsense"]), "nonsense not found!\n");
    assert_eq!(q.run(&["-b", "-q", "-T", "1.2"]), "");
    // Releasing or deleting one that is not there is reported and skipped, status 0 as
    // TMDA's (checked with TMDAng): a cron job over a list of ids goes on.
    assert_eq!(q.run(&["-b", "-d", "1.2"]), "1.2 not found!\n");
    assert_eq!(q.run(&["-b", "-r", "1.2"]), "1.2 not found!\n");
    assert_eq!(q.run(&["-b", "-d", "../../config"]), "../../config not found!\n");
    assert_eq!(q.run(&["-b", "-q", "-d", "1.2"]), "");
    assert_eq!(q.ids().len(), 2);
    assert!(q.env.path(".tmda/config").exists());
}

#[test]
fn missing_queue_is_tmdas_message_and_exit_1() {
    let q = Q::new("");
    let out = q.pending(&["-b"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Pending Queue does not exist, exiting.\n"
    );
}

#[test]
fn younger_and_older_each_use_their_own_interval() {
    let q = Q::new("");
    // Now is T0 + 1000: ages 1000 s, 500 s, 10 s.
    let old = q.hold("a@example.org", "old", T0);
    let mid = q.hold("b@example.org", "mid", T0 + 500);
    let new = q.hold("c@example.org", "new", T0 + 990);
    let ids = |out: String| {
        out.lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(q.run(&["-b", "-T", "-Y", "600s"])), [mid.clone(), new.clone()]);
    assert_eq!(ids(q.run(&["-b", "-T", "-O", "100s"])), [old.clone(), mid.clone()]);
    // TMDA (Q30) would use 600s for both and list nothing here.
    assert_eq!(ids(q.run(&["-b", "-T", "-Y", "600s", "-O", "100s"])), [mid]);
    assert_eq!(ids(q.run(&["-b", "-T", "-O", "15m"])), [old]);
    let out = q.pending(&["-b", "-Y", "5x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn release_sends_through_the_transport_and_the_copy_comes_home() {
    let q = Q::new("PENDING_RELEASE_APPEND = '~/.tmda/released'\n");
    let a = q.hold("alice@example.org", "first", T0);
    let out = q.run(&["-b", "-r", "-q", &a]);
    assert_eq!(out, "");
    let rel = q.releases();
    assert_eq!(rel.len(), 1);
    let (args, msg) = &rel[0];
    assert_eq!(args, "ARGS: [-i] [-f] [alice@example.org] [--] [testuser@nowhere.com]");
    assert!(
        msg.starts_with("Old-Delivered-To: testuser@nowhere.com\nFrom: Some One"),
        "{msg}"
    );
    assert!(msg.contains("\nX-TMDA-Confirm-Done: "), "{msg}");
    assert!(
        !msg.contains("X-TMDA-Recipient") && !msg.contains("Return-Path"),
        "{msg}"
    );
    assert_eq!(q.file(".tmda/released"), "alice@example.org\n");
    // Held until the released copy returns through the filter (TMDA's way).
    assert_eq!(q.ids(), std::slice::from_ref(&a));
    let mut c = q.env.std_tmda();
    c.arg("filter")
        .env("SENDER", "alice@example.org")
        .env("RECIPIENT", "testuser@nowhere.com")
        .env("EXTENSION", "")
        .env("TMDA_NO_WARN", "1");
    let out = output_with_input(&mut c, msg.as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(q.ids().is_empty(), "the held copy is gone once delivered");
    let delivered: Vec<_> = std::fs::read_dir(q.env.path("Maildir/new")).unwrap().collect();
    assert_eq!(delivered.len(), 1);
}

#[test]
fn a_refused_release_keeps_the_message_and_fails() {
    let q = Q::new("");
    let a = q.hold("alice@example.org", "first", T0);
    std::fs::write(q.env.path("exit-code"), "75").unwrap();
    let out = q.pending(&["-b", "-r", &a]).output().unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&a));
    assert_eq!(q.ids(), [a]);
}

#[test]
fn recipient_override_redirects_the_release() {
    let q = Q::new("");
    let a = q.hold("alice@example.org", "first", T0);
    q.run(&["-b", "-r", "-R", "elsewhere@nowhere.com", &a]);
    let rel = q.releases();
    assert_eq!(
        rel[0].0,
        "ARGS: [-i] [-f] [alice@example.org] [--] [elsewhere@nowhere.com]"
    );
}

#[test]
fn delete_whitelist_blacklist_and_their_lists() {
    let q = Q::new(
        "PENDING_DELETE_APPEND = '~/.tmda/deleted'\nPENDING_WHITELIST_APPEND = '~/.tmda/white'\n\
         PENDING_BLACKLIST_APPEND = '~/.tmda/black'\nPENDING_WHITELIST_RELEASE = 0\n",
    );
    let a = q.hold("alice@example.org", "first", T0);
    let b = q.hold("bob@example.net", "second", T0 + 5);
    // -p: said, not done.
    assert_eq!(
        q.run(&["-b", "-T", "-d", "-p", &a]),
        format!("{a}\tSome One\tfirst\n\ndelete {a} (not)\n")
    );
    assert_eq!(q.ids().len(), 2);
    assert_eq!(
        q.run(&["-b", "-T", "-d", &a]),
        format!("{a}\tSome One\tfirst\n\ndelete {a}\n")
    );
    assert_eq!(q.ids(), std::slice::from_ref(&b));
    assert_eq!(q.file(".tmda/deleted"), "alice@example.org\n");
    q.run(&["-b", "-q", "-B", &b]);
    assert_eq!(q.file(".tmda/black"), "bob@example.net\n");
    q.run(&["-b", "-q", "-W", &b]);
    assert_eq!(q.file(".tmda/white"), "bob@example.net\n");
    assert!(q.releases().is_empty(), "PENDING_WHITELIST_RELEASE = 0: no release");
    // -W then -r: the last action given wins.
    q.run(&["-b", "-q", "-W", "-r", &b]);
    assert_eq!(q.releases().len(), 1);
    assert_eq!(q.ids(), [b]);
}

#[test]
fn whitelist_releases_by_default_and_needs_its_list() {
    let q = Q::new("PENDING_WHITELIST_APPEND = '~/.tmda/white'\n");
    let a = q.hold("alice@example.org", "first", T0);
    q.run(&["-b", "-q", "-W", &a]);
    assert_eq!(q.releases().len(), 1);
    let q = Q::new("");
    q.hold("alice@example.org", "first", T0);
    for opt in ["-W", "-B"] {
        let out = q.pending(&["-b", opt]).output().unwrap();
        assert_eq!(out.status.code(), Some(78), "{opt}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("_APPEND"), "{opt}");
    }
}

#[test]
fn show_pipes_the_message_to_the_pager() {
    let q = Q::new("");
    let a = q.hold("alice@example.org", "first", T0);
    let pager = q.env.path("pager-got");
    let out = q
        .pending(&["-b", "-q", "-S", &a])
        .env("PAGER", format!("cat > '{}'", pager.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "\n",
        "an empty line after the pager, as TMDA"
    );
    let shown = std::fs::read_to_string(pager).unwrap();
    assert_eq!(shown, q.file(&format!(".tmda/pending/{a}.msg")));
}

#[test]
fn cache_skips_seen_messages_and_is_a_python_pickle() {
    let q = Q::new("PENDING_CACHE_LEN = 2\n");
    let a = q.hold("alice@example.org", "first", T0);
    let b = q.hold("bob@example.net", "second", T0 + 5);
    assert_eq!(q.run(&["-b", "-T", "-C"]).lines().count(), 2);
    assert_eq!(q.run(&["-b", "-T", "-C"]), "");
    assert_eq!(
        q.file(".tmda/.pendingcache"),
        format!("(lp1\nS'{b}'\np2\naS'{a}'\np3\na.")
    );
    let c = q.hold("carol@example.com", "third", T0 + 9);
    assert_eq!(q.run(&["-b", "-T", "-C"]), format!("{c}\tSome One\tthird\n"));
    // Cut to PENDING_CACHE_LEN, most recent first.
    assert_eq!(
        q.file(".tmda/.pendingcache"),
        format!("(lp1\nS'{c}'\np2\naS'{b}'\np3\na.")
    );
    // Python 3's pickle form is read too.
    std::fs::write(q.env.path(".tmda/.pendingcache"), format!("(lp0\nV{a}\np1\na.")).unwrap();
    assert_eq!(q.run(&["-b", "-T", "-C"]).lines().count(), 2);
    std::fs::write(q.env.path(".tmda/.pendingcache"), "garbage").unwrap();
    let out = q.pending(&["-b", "-C"]).output().unwrap();
    assert_eq!(out.status.code(), Some(65));
}

#[test]
fn line_prompts_on_a_pipe() {
    let q = Q::new("PENDING_BLACKLIST_APPEND = '~/.tmda/black'\n");
    let a = q.hold("alice@example.org", "first", T0);
    let b = q.hold("bob@example.net", "second", T0 + 5);
    let out = q.with_stdin(&["-T"], "x\nd\n");
    let p = "([p]ass / [s]how / [r]el / [d]el / [b]lack / [q]uit) [pass]: ";
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "\n{a}\tSome One\tfirst\n\n{p}\nI don't understand 'x'\n\npass {a}\n\n{b}\tSome One\tsecond\n\n{p}\ndelete {b}\n"
        )
    );
    assert_eq!(q.ids(), std::slice::from_ref(&a));
    // -r makes release the default answer; q quits.
    let out = q.with_stdin(&["-r", "-T"], "q\n");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .ends_with("/ [q]uit) [release]: ")
    );
    assert!(q.releases().is_empty());
    let out = q.with_stdin(&["-r", "-T"], "\n");
    assert!(out.status.success());
    assert_eq!(q.releases().len(), 1);
    // b re-asks about the same message (TMDA).
    let out = q.with_stdin(&["-T"], "b\np\n");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches(&format!("{a}\tSome One")).count(), 2, "{text}");
    assert_eq!(q.file(".tmda/black"), "alice@example.org\n");
}

#[test]
fn json_summaries() {
    let q = Q::new("");
    let a = q.hold("alice@example.org", "fir\"st", T0);
    let out = q.run(&["--json"]);
    assert!(out.starts_with("[\n{\"id\":\""), "{out}");
    assert!(
        out.contains(&format!("\"id\":\"{a}\",\"timestamp\":{T0},\"age\":1000,")),
        "{out}"
    );
    assert!(out.contains("\"subject\":\"fir\\\"st\""), "{out}");
    assert!(out.contains("\"confirm_address\":\"testuser-confirm-"), "{out}");
    assert!(out.ends_with("}\n]\n"), "{out}");
    assert_eq!(q.run(&["--json", "1.2"]), "[\n]\n");
}

#[test]
fn digest_lists_new_messages_once() {
    let q = Q::new("");
    let a = q.hold("alice@example.org", "first", T0);
    let before = fake_sendmail_outputs(&q.env).len();
    q.run(&["--digest"]);
    let sent = fake_sendmail_outputs(&q.env);
    assert_eq!(sent.len(), before + 1);
    let (args, msg) = sent.last().unwrap();
    assert!(
        args.starts_with("ARGS: [-i] [-f] [] [--] [testuser-keyword-digest."),
        "{args}"
    );
    assert!(msg.contains("Subject: TMDA: 1 new held message\n"), "{msg}");
    assert!(msg.contains(&format!("Id:      {a}\n")), "{msg}");
    assert!(msg.contains("Release: <mailto:testuser-confirm-"), "{msg}");
    // Nothing new: nothing sent.
    q.run(&["--digest"]);
    assert_eq!(fake_sendmail_outputs(&q.env).len(), before + 1);
    let b = q.hold("bob@example.net", "second", T0 + 5);
    let n = fake_sendmail_outputs(&q.env).len();
    q.run(&["--digest"]);
    let sent = fake_sendmail_outputs(&q.env);
    assert_eq!(sent.len(), n + 1);
    let msg = &sent.last().unwrap().1;
    assert!(msg.contains(&b) && !msg.contains(&a), "{msg}");
    assert_eq!(q.file(".tmda/pending-digest"), format!("{a}\n{b}\n"));
    // The digest's address is one the user's own filter delivers.
    let to = sent
        .last()
        .unwrap()
        .0
        .rsplit('[')
        .next()
        .unwrap()
        .trim_end_matches(']')
        .to_string();
    let out = stdout_of(q.env.tmda().args(["check-address", &to]));
    assert!(out.contains("STATUS: VALID"), "{out}");
}

#[test]
fn two_releasers_at_once_send_each_message_once() {
    let q = Q::new("");
    let ids: Vec<String> = (0..6)
        .map(|i| q.hold(&format!("s{i}@example.org"), "x", T0 + i))
        .collect();
    // A slow transport widens the window in which both runs work; each copy gets a
    // file of its own (the shared fake sendmail numbers files, which races here).
    let got = q.env.path("concurrent");
    std::fs::create_dir_all(&got).unwrap();
    let slow = q.env.write(
        "bin/slow-sendmail",
        &format!("#!/bin/sh\nsleep 0.2\ncat > \"$(mktemp -p '{}')\"\n", got.display()),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = q.file(".tmda/config").replace("bin/fake-sendmail", "bin/slow-sendmail");
    q.env.write_config(&cfg);
    let spawn = || {
        let mut c = q.pending(&["-b", "-q", "-r"]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (x, y) = (spawn(), spawn());
    let (x, y) = (x.wait_with_output().unwrap(), y.wait_with_output().unwrap());
    assert!(x.status.success() && y.status.success(), "{x:?} {y:?}");
    let mut sent: Vec<String> = std::fs::read_dir(&got)
        .unwrap()
        .map(|e| {
            let m = std::fs::read_to_string(e.unwrap().path()).unwrap();
            m.lines()
                .find_map(|l| l.strip_prefix("X-TMDA-Confirm-Done: "))
                .unwrap()
                .rsplit_once('.')
                .unwrap()
                .0
                .to_string()
        })
        .collect();
    sent.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(sent, want, "each message released exactly once");
}

#[test]
fn vhome_script_sets_home() {
    let q = Q::new("");
    let a = q.hold("alice@example.org", "first", T0);
    let script = q.env.write(
        "bin/vhome",
        &format!(
            "#!/bin/sh\n[ \"$1\" = vu ] && [ \"$2\" = vd.example ] && echo '{}'\n",
            q.env.home().display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = script.display().to_string();
    let out = q
        .pending(&[
            "-b",
            "-T",
            "--vhome-script",
            &s,
            "--vhome-user",
            "vu",
            "--vhome-domain",
            "vd.example",
        ])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&a));
    let out = q
        .pending(&[
            "-b",
            "--vhome-script",
            &s,
            "--vhome-user",
            "other",
            "--vhome-domain",
            "vd.example",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("invocation failed: {s} 'other' 'vd.example'\n")
    );
}

#[test]
fn config_file_option_is_applied_before_reading() {
    let q = Q::new("");
    let a = q.hold("alice@example.org", "first", T0);
    let cfg = q.file(".tmda/config") + "TERSE_SUMMARY_HEADERS = ['from_address']\n";
    let other = q.env.write("other-config", &cfg);
    let out = q.run(&["-b", "-T", "-c", other.to_str().unwrap()]);
    assert_eq!(out, format!("{a}\talice@example.org\n"));
}

#[test]
fn sender_controlled_control_characters_never_reach_the_terminal() {
    // A stranger's Subject or From (raw, or hidden in an RFC 2047 word) may carry
    // terminal escape sequences: set the title, clear the screen, rewrite the line with
    // a carriage return. The summaries show them as '?'; --json escapes them anyway.
    let q = Q::new("");
    q.hold("esc@example.org", "raw \x1b[31mRED\r over \x07", T0);
    q.hold("esc2@example.org", "=?utf-8?b?G10wO3B3bmVkBxtbMkp4?= \u{9b}2J", T0 + 5);
    for args in [&["-b"][..], &["-b", "-s"], &["-b", "-T"]] {
        let out = q.run(args);
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
            "tmda pending {args:?}: {out:?}"
        );
        assert!(out.contains("raw ?[31mRED? over ?"), "{out:?}");
        assert!(out.contains("?]0;pwned??[2Jx ?2J"), "{out:?}");
    }
    let out = q.with_stdin(&["-T"], "q\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\x1b'), "line prompts: {text:?}");
}

/// `tmda pending -b | head`: when the reader goes away the listing stops quietly with
/// status 0 (as `tmda address` and the other applets do), not with "broken pipe" and 74.
#[test]
fn a_closed_standard_output_ends_the_listing_quietly() {
    let q = Q::new("");
    q.hold("a@example.org", "first", T0);
    q.hold("b@example.org", "second", T0 + 1);
    for args in [&["-b", "-S"][..], &["-b", "-T"], &["-b"], &["-b", "--json"]] {
        // A pipe whose read end is closed before the child writes: its first write fails
        // with EPIPE (Rust ignores SIGPIPE).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = q
            .pending(args)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

/// A message TMDA held with a header block over the limit (TMDA stored any size) is
/// listed with the fields within it, and can be deleted, not refused with 65.
#[test]
fn a_held_message_with_a_huge_header_is_listed_and_deleted() {
    let q = Q::new("");
    q.hold("a@example.org", "first", T0);
    let id = format!("{T0}.4242");
    let mut raw =
        b"Return-Path: <big@example.org>\nX-TMDA-Recipient: testuser@nowhere.com\nFrom: Big <big@example.org>\nSubject: big\n".to_vec();
    for i in 0..200_000 {
        raw.extend_from_slice(format!("X-H{i}: value\n").as_bytes());
    }
    raw.extend_from_slice(b"\nbody\n");
    std::fs::write(q.env.path(&format!(".tmda/pending/{id}.msg")), &raw).unwrap();
    let list = q.run(&["-b", "-T"]);
    assert!(list.contains(&format!("{id}\tBig\tbig")), "{list}");
    let out = q
        .pending(&["-b", "-d", &id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!q.ids().contains(&id), "deleted");
}

/// --json over more held messages than the process may have files open: each message's
/// file is closed before the next is read (they were all kept open until the end).
#[test]
fn json_lists_more_messages_than_open_files_allowed() {
    let q = Q::new("");
    q.hold("alice@example.org", "first", T0);
    let first = q.ids()[0].clone();
    let text = std::fs::read(q.env.path(&format!(".tmda/pending/{first}.msg"))).unwrap();
    for i in 0..120 {
        std::fs::write(q.env.path(&format!(".tmda/pending/{}.{}.msg", T0 + 1, 1000 + i)), &text).unwrap();
    }
    let c = q.pending(&["--json"]);
    let mut sh = std::process::Command::new("/bin/sh");
    sh.arg("-c")
        .arg("ulimit -n 40 && exec \"$0\" pending --json")
        .arg(c.get_program())
        .stdin(std::process::Stdio::null());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let out = sh.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = String::from_utf8(out.stdout).unwrap();
    assert_eq!(json.matches("\"id\":").count(), 121, "{json}");
    assert!(json.starts_with("[\n{") && json.ends_with("}\n]\n"));
}
