//! See: #11. Every command's error cases against the one exit-code table, the man
//! pages' EXIT STATUS (`tmda::cli::doc::EXIT_CODES`): 64 usage, 65 data, 66 missing
//! input file, 67 no such user, 69 unavailable, 73 exists, 75 temporary, 77
//! permission, 78 configuration.

use std::os::unix::fs::PermissionsExt;

use crate::util::{KEY, TestEnv};

/// One error case: what runs, and the status the table gives it.
struct Case {
    what: &'static str,
    args: Vec<String>,
    stdin: &'static str,
    code: u8,
}

fn case(what: &'static str, args: &[&str], stdin: &'static str, code: u8) -> Case {
    Case {
        what,
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin,
        code,
    }
}

#[test]
fn r11_every_command_follows_the_exit_code_table() {
    let env = TestEnv::new();
    let p = |rel: &str| env.path(rel).display().to_string();
    let open = env.write("open-tofmipd", "alice:wonderland\n");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let good = env.write("tofmipd", "alice:wonderland\n");
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bad_syntax = env.write("bad-config", "X = (\n");
    let open_key = env.write("open-key/crypt_key", &format!("{KEY}\n"));
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open_key_cfg = env.write(
        "open-key/config",
        &format!("CRYPT_KEY_FILE = '{}'\n", open_key.display()),
    );
    let no_sendmail = env.write(
        "no-sendmail/config",
        "USERNAME = 'a'\nHOSTNAME = 'b.example'\nSENDMAIL_PROGRAM = '/nonexistent/sendmail'\n",
    );
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let message = "From: a@b.example\nTo: x@y.example\n\nhi\n";
    let cases = [
        // address
        case("address: unknown option", &["address", "--frob"], "", 64),
        case("address: bad -t", &["address", "-t", "5x"], "", 64),
        case("address: -c missing", &["address", "-c", "/nonexistent/config"], "", 66),
        case(
            "address: config syntax",
            &["address", "-c", &bad_syntax.display().to_string()],
            "",
            78,
        ),
        case(
            "address: key readable by others",
            &["address", "-c", &open_key_cfg.display().to_string()],
            "",
            77,
        ),
        case("address: empty keyword", &["address", "-k", ""], "", 65),
        // check-address
        case("check-address: no address", &["check-address"], "", 64),
        case(
            "check-address: does not verify",
            &["check-address", "x-dated-1.abcdef@y"],
            "",
            1,
        ),
        // keygen
        case("keygen: --force alone", &["keygen", "--force"], "", 64),
        case("keygen: --install over a key", &["keygen", "--install"], "", 73),
        // sendmail
        case("sendmail: unknown option", &["sendmail", "-Z"], "", 64),
        case("sendmail: -bs", &["sendmail", "-bs"], "", 64),
        case(
            "sendmail: -O missing",
            &["sendmail", "-O", "/nonexistent/filter", "x@y"],
            message,
            66,
        ),
        case(
            "sendmail: -c missing",
            &["sendmail", "-c", "/nonexistent/config", "x@y"],
            message,
            66,
        ),
        case(
            "sendmail: no sendmail program",
            &["sendmail", "-c", &no_sendmail.display().to_string(), "x@y.example"],
            message,
            69,
        ),
        // ofmipd
        case("ofmipd: unknown option", &["ofmipd", "--frob"], "", 64),
        case(
            "ofmipd: --tls without a certificate",
            &["ofmipd", "-f", "--tls", "on", "-a", &p("tofmipd")],
            "",
            64,
        ),
        case(
            "ofmipd: authfile missing",
            &["ofmipd", "-f", "-a", "/nonexistent/tofmipd"],
            "",
            66,
        ),
        case(
            "ofmipd: authfile mode 644",
            &["ofmipd", "-f", "-a", &p("open-tofmipd")],
            "",
            77,
        ),
        case(
            "ofmipd: authprog missing",
            &["ofmipd", "-f", "-A", "/nonexistent/checkpw"],
            "",
            69,
        ),
        // passwd
        case("passwd: no action", &["passwd"], "", 64),
        case(
            "passwd: bad user name",
            &["passwd", "--stdin", "-a", &p("tofmipd"), "add", "a:b"],
            "pw\n",
            64,
        ),
        case(
            "passwd: missing directory",
            &["passwd", "--stdin", "-a", "/nonexistent/dir/tofmipd", "add", "bob"],
            "pw\n",
            66,
        ),
        case(
            "passwd: list without a file",
            &["passwd", "-a", &p("none"), "list"],
            "",
            66,
        ),
        case(
            "passwd: empty password",
            &["passwd", "--stdin", "-a", &p("tofmipd"), "add", "bob"],
            "\n",
            65,
        ),
        case(
            "passwd: change a stranger",
            &["passwd", "--stdin", "-a", &p("tofmipd"), "change", "bob"],
            "pw\n",
            67,
        ),
        case(
            "passwd: add an existing user",
            &["passwd", "--stdin", "-a", &p("tofmipd"), "add", "alice"],
            "pw\n",
            73,
        ),
        case(
            "passwd: file readable by others",
            &["passwd", "--stdin", "-a", &p("open-tofmipd"), "add", "bob"],
            "pw\n",
            77,
        ),
        case(
            "passwd: check a wrong password",
            &["passwd", "--stdin", "-a", &p("tofmipd"), "check", "alice"],
            "x\n",
            1,
        ),
        // checkauth
        case("checkauth: no user", &["checkauth", "--stdin"], "", 64),
        case(
            "checkauth: two users",
            &["checkauth", "--stdin", "-a", &p("tofmipd"), "alice", "bob"],
            "pw\n",
            64,
        ),
        case(
            "checkauth: authfile missing",
            &["checkauth", "--stdin", "-a", "/nonexistent/tofmipd", "alice"],
            "pw\n",
            66,
        ),
        case(
            "checkauth: authfile mode 644",
            &["checkauth", "--stdin", "-a", &p("open-tofmipd"), "alice"],
            "pw\n",
            77,
        ),
        case(
            "checkauth: authprog missing",
            &["checkauth", "--stdin", "-A", "/nonexistent/checkpw", "alice"],
            "pw\n",
            69,
        ),
        case(
            "checkauth: wrong password",
            &["checkauth", "--stdin", "-a", &p("tofmipd"), "alice"],
            "x\n",
            1,
        ),
        case(
            "checkauth: server down",
            &[
                "checkauth",
                "--stdin",
                "-R",
                &format!("imap://127.0.0.1:{down}"),
                "alice",
            ],
            "x\n",
            75,
        ),
    ];
    let table: Vec<u8> = tmda::cli::doc::EXIT_CODES.iter().map(|(c, _)| *c).collect();
    // ofmipd started as root would be in global mode: run it as nobody, whose files
    // these are then (the ofmipd tests do the same).
    let oenv = TestEnv::new();
    let open = oenv.write("open-tofmipd", "alice:wonderland\n");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let good = oenv.write("tofmipd", "alice:wonderland\n");
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut wrong = vec![];
    for c in &cases {
        assert!(table.contains(&c.code), "{}: {} is not in the table", c.what, c.code);
        let out = if c.args[0] == "ofmipd" {
            let mut cmd = oenv.std_tmda();
            let args: Vec<String> = c
                .args
                .iter()
                .map(|a| a.replace(&p(""), &oenv.path("").display().to_string()))
                .collect();
            cmd.args(&args).stdin(std::process::Stdio::null());
            crate::ofmipd::as_nobody(&mut cmd, &oenv);
            cmd.output().unwrap()
        } else {
            env.tmda().args(&c.args).write_stdin(c.stdin).output().unwrap()
        };
        let got = out.status.code();
        // checkauth reports what each source said on standard output.
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        if got != Some(c.code.into()) {
            wrong.push(format!("{}: exit {got:?}, want {}: {}", c.what, c.code, stderr.trim()));
        } else if c.code >= 64 && (stderr.trim().is_empty() || stderr.contains("os error") || stderr.contains("Some("))
        {
            wrong.push(format!(
                "{}: the message is missing or not in words: {stderr:?}",
                c.what
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
