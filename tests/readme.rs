//! See: #11. The README's examples run as shown. Every command line of its ```sh blocks
//! runs here, in a temporary HOME with a configuration and through `tmda` on PATH,
//! unless it needs a daemon, the network, root or a terminal: [`NOT_HERE`] says which
//! test covers those instead, and a line that is in neither fails this test. Lines
//! `#   TEXT` under a command are its expected output (a future EXPIRES date is
//! compared by its shape, since the address is made when the test runs).

use std::os::unix::fs::PermissionsExt;

use crate::util::{TestEnv, fake_sendmail, fake_sendmail_outputs};

/// Lines (by how they start) that are not run here, and where they are tested.
const NOT_HERE: &[(&str, &str)] = &[
    (
        "scripts/quickstart",
        "starts daemons: tests/interop/docs.rs runs it with --once",
    ),
    ("scripts/test", "the test suite itself"),
    ("cargo install", "builds and installs into the system"),
    ("cd /usr/local/bin", "installs into the system"),
    ("tmda ofmipd", "a daemon: tests/ofmipd.rs, and the interop tier"),
    ("tcpserver", "a daemon under tcpserver: tests/interop/ofmipd.rs"),
    (
        "tmda passwd add jason",
        "asks on the terminal: tests/passwd.rs answers through a pseudo-terminal; as root, tests/interop/docs.rs",
    ),
    (
        "tmda passwd --scheme argon2id add jason",
        "asks on the terminal: tests/passwd.rs",
    ),
    ("tmda checkauth -R", "asks a remote server: tests/interop/auth.rs"),
    (
        "tmda init --yes --username jo --hostname example.org --smtp",
        "checks a relay on the network: tests/init.rs, against a relay of its own",
    ),
    (
        "tmda init --yes --sendmail /usr/sbin/sendmail",
        "needs the system's sendmail: tests/init.rs, with a program of its own",
    ),
    (
        "tmda checkauth --checkpassword",
        "reads descriptor 3 and root's /etc/tofmipd: tests/passwd.rs",
    ),
];

/// One command line and the output the README shows under it.
struct Example {
    line: usize,
    command: String,
    expected: Vec<String>,
}

fn examples() -> Vec<Example> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut out: Vec<Example> = vec![];
    let mut inside = false;
    for (i, l) in readme.lines().enumerate() {
        if l.starts_with("```sh") {
            inside = true;
            continue;
        }
        if l.starts_with("```") {
            inside = false;
            continue;
        }
        if !inside || l.trim().is_empty() {
            continue;
        }
        if let Some(expected) = l.strip_prefix("#   ") {
            out.last_mut()
                .unwrap_or_else(|| panic!("README.md:{}: output with no command", i + 1))
                .expected
                .push(expected.to_string());
        } else if !l.starts_with('#') {
            let command = l.split(" #").next().unwrap().trim_end().to_string();
            out.push(Example {
                line: i + 1,
                command,
                expected: vec![],
            });
        }
    }
    out
}

/// `Sat Dec 12 22:40:43 2026 UTC` and `Wed Jan 13 07:56:26 2010 UTC` have one shape.
fn shape(text: &str) -> String {
    let mut s = String::new();
    let mut last = ' ';
    for c in text.chars() {
        let class = if c.is_ascii_digit() {
            '9'
        } else if c.is_ascii_alphabetic() {
            'a'
        } else {
            c
        };
        if class != last || !"9a".contains(class) {
            s.push(class);
        }
        last = class;
    }
    s
}

#[test]
fn r11_readme_examples_run_as_shown() {
    let env = TestEnv::bare();
    let sendmail = fake_sendmail(&env);
    env.write_config(&format!(
        "USERNAME = 'jason'\nHOSTNAME = 'example.com'\nSENDMAIL_PROGRAM = '{}'\n",
        sendmail.display()
    ));
    env.write(
        "message",
        "From: Jason <jason@example.com>\nTo: friend@example.org\nBcc: hidden@example.net\nSubject: hi\n\nhello\n",
    );
    let bin_dir = env.path("readme-bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(crate::util::bin(), bin_dir.join("tmda")).unwrap();
    std::fs::set_permissions(&bin_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    // As root, `tmda passwd` would edit the machine's /etc/tofmipd: the examples run as
    // nobody, whose HOME this becomes.
    let nobody = crate::util::nobody_if_root(&env);
    let mut ran = 0;
    let mut problems = vec![];
    for ex in examples() {
        if NOT_HERE.iter().any(|(start, _)| ex.command.starts_with(start)) {
            continue;
        }
        ran += 1;
        let mut cmd = std::process::Command::new("/bin/sh");
        if let Some((uid, gid)) = nobody {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        let out = cmd
            .arg("-c")
            .arg(&ex.command)
            .current_dir(env.home())
            .env_clear()
            .env("HOME", env.home())
            .env("PATH", &path)
            .env("GLOBAL_TMDARC", env.path("no-global-tmdarc"))
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env("pw", "correct horse")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A check-address example showing another STATUS than VALID exits 1.
        let want_code = if ex
            .expected
            .iter()
            .any(|e| e.starts_with("STATUS: ") && e != "STATUS: VALID")
        {
            1
        } else {
            0
        };
        if out.status.code() != Some(want_code) {
            problems.push(format!(
                "README.md:{}: `{}` exited {:?}, not {want_code}: {stderr}",
                ex.line, ex.command, out.status
            ));
            continue;
        }
        if ex.expected.is_empty() {
            continue;
        }
        let got: Vec<&str> = stdout.lines().collect();
        let same = got.len() == ex.expected.len()
            && got.iter().zip(&ex.expected).all(|(g, e)| {
                *g == e || (e.starts_with("EXPIRES: ") && g.starts_with("EXPIRES: ") && shape(g) == shape(e))
            });
        if !same {
            problems.push(format!(
                "README.md:{}: `{}` printed\n{stdout}but the README shows\n{}",
                ex.line,
                ex.command,
                ex.expected.join("\n")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(ran >= 15, "only {ran} README lines ran");
    // The sendmail examples reached the (fake) MTA: -t a copy for To and one for Bcc,
    // the argument form one.
    assert_eq!(fake_sendmail_outputs(&env).len(), 3);
    // Every line not run names where it is tested, and every entry still matches one.
    for (start, why) in NOT_HERE {
        assert!(!why.is_empty());
        assert!(
            examples().iter().any(|e| e.command.starts_with(start)),
            "NOT_HERE has {start:?}, which the README no longer shows"
        );
    }
}

#[test]
fn expiry_dates_compare_by_shape() {
    assert_eq!(
        shape("EXPIRES: Sat Dec 12 22:40:43 2026 UTC"),
        shape("EXPIRES: Wed Jan 13 07:56:26 2010 UTC")
    );
    assert_ne!(
        shape("EXPIRES: Sat Dec 12 22:40:43 2026 UTC"),
        shape("EXPIRES: 1796942443")
    );
}
