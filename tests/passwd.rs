//! `tmda passwd` and `tmda checkauth` through the real binary.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

use crate::util::{TestEnv, stdout_of};

fn add(env: &TestEnv, file: &std::path::Path, user: &str, pw: &str, scheme: &str) -> assert_cmd::assert::Assert {
    env.tmda()
        .args(["passwd", "--stdin", "--scheme", scheme, "-a"])
        .arg(file)
        .args(["add", user])
        .write_stdin(format!("{pw}\n"))
        .assert()
}

#[test]
fn add_change_remove_list_check() {
    let env = TestEnv::bare();
    let f = env.path("auth/tofmipd");
    std::fs::create_dir(env.path("auth")).unwrap();
    add(&env, &f, "alice", "wonderland", "plain")
        .success()
        .stdout(format!("added alice to {}\n", f.display()));
    assert_eq!(
        std::fs::metadata(&f).unwrap().mode() & 0o777,
        0o600,
        "a new file is 0600"
    );
    add(&env, &f, "bob", "builder", "cram-md5").success();
    add(&env, &f, "carol", "secret", "sha512-crypt").success();
    add(&env, &f, "dave", "pw-dave", "argon2id").success();
    assert_eq!(
        stdout_of(env.tmda().args(["passwd", "-a"]).arg(&f).arg("list")),
        "alice\tplain\nbob\tcram-md5\ncarol\tsha512-crypt\ndave\targon2id\n",
        "list names the schemes as --scheme does"
    );
    // Adding an existing user needs --yes without a terminal; change needs an existing user.
    add(&env, &f, "Alice", "x", "plain")
        .code(73)
        .stderr(contains("already exists"));
    env.tmda()
        .args(["passwd", "--stdin", "-a"])
        .arg(&f)
        .args(["change", "nobody"])
        .write_stdin("x\n")
        .assert()
        .code(67)
        .stderr(contains("no user nobody"));
    env.tmda()
        .args(["passwd", "--stdin", "-a"])
        .arg(&f)
        .args(["change", "alice"])
        .write_stdin("looking-glass\n")
        .assert()
        .success()
        .stdout(format!("changed the password of alice in {}\n", f.display()));
    for (u, pw, ok) in [
        ("alice", "looking-glass", true),
        ("alice", "wonderland", false),
        ("bob", "builder", true),
        ("carol", "secret", true),
        ("dave", "pw-dave", true),
        ("dave", "pw-Dave", false),
    ] {
        let a = env
            .tmda()
            .args(["passwd", "--stdin", "-a"])
            .arg(&f)
            .args(["check", u])
            .write_stdin(format!("{pw}\n"))
            .assert();
        if ok {
            a.success()
        } else {
            a.code(1)
        };
    }
    env.tmda()
        .args(["passwd", "-a"])
        .arg(&f)
        .args(["remove", "bob"])
        .assert()
        .code(64)
        .stderr(contains("--yes"));
    env.tmda()
        .args(["passwd", "--yes", "-a"])
        .arg(&f)
        .args(["remove", "bob"])
        .assert()
        .success()
        .stdout(format!("removed bob from {}\n", f.display()));
    assert!(!std::fs::read_to_string(&f).unwrap().contains("bob:"));
    // Bad input is refused before anything is written.
    add(&env, &f, "ev:il", "x", "plain").code(64);
    add(&env, &f, "eve", " padded", "plain")
        .code(65)
        .stderr(contains("white space"));
    add(&env, &f, "eve", "", "plain")
        .code(65)
        .stderr(contains("empty password"));
}

#[test]
fn comments_order_mode_and_owner_survive_edits() {
    let env = TestEnv::bare();
    let f = env.write("tofmipd", "# first comment\nzed:z\n\n# middle\nalpha:a\n");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o400)).unwrap();
    add(&env, &f, "mid", "m", "plain").success();
    env.tmda()
        .args(["passwd", "--stdin", "-a"])
        .arg(&f)
        .args(["change", "zed"])
        .write_stdin("z2\n")
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "# first comment\nzed:z2\n\n# middle\nalpha:a\nmid:m\n"
    );
    let meta = std::fs::metadata(&f).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o400, "mode kept");
    assert_eq!(meta.uid(), unsafe { libc::geteuid() });
    // A file others can read is refused.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    add(&env, &f, "x", "y", "plain")
        .code(77)
        .stderr(contains("others could read it").and(contains(format!("chmod 600 {}", f.display()))));
    assert!(!std::fs::read_to_string(&f).unwrap().contains("x:y"));
}

#[test]
fn concurrent_adds_lose_nothing_and_readers_never_see_a_partial_file() {
    let env = TestEnv::bare();
    let f = env.path("tofmipd");
    add(&env, &f, "seed", "s", "plain").success();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (reader_f, reader_stop) = (f.clone(), stop.clone());
    let reader = std::thread::spawn(move || {
        let mut reads = 0;
        let mut max = 0;
        while !reader_stop.load(std::sync::atomic::Ordering::Relaxed) {
            let text = std::fs::read_to_string(&reader_f).unwrap();
            assert!(
                text.ends_with('\n') && text.contains("seed:s\n"),
                "a reader saw a partial file: {text:?}"
            );
            let n = text.lines().count();
            assert!(n >= max, "entries disappeared: {n} < {max}");
            max = n;
            reads += 1;
        }
        reads
    });
    let children: Vec<_> = (0..40)
        .map(|i| {
            let mut c = env.std_tmda();
            c.args(["passwd", "--stdin", "-a"])
                .arg(&f)
                .args(["add", &format!("user{i}")]);
            let mut child = c
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("pw{i}\n").as_bytes())
                .unwrap();
            child
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let text = std::fs::read_to_string(&f).unwrap();
    for i in 0..40 {
        assert!(text.contains(&format!("user{i}:pw{i}\n")), "user{i} lost");
    }
    assert_eq!(text.lines().count(), 41);
    // No temporary files left behind.
    let left: Vec<_> = std::fs::read_dir(env.home())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tofmipd.") && !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn interactive_prompts_through_a_pseudo_terminal() {
    let env = TestEnv::bare();
    let f = env.path("tofmipd");
    // Python's pty gives the program a controlling terminal; answer each prompt as it appears.
    let script = format!(
        r#"
import os, pty, re, signal, sys, time
signal.alarm(30)  # never hang the test suite
def run(args, answers):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv({bin:?}, [{bin:?}] + args)
    out = b""
    for a in answers:
        # Terminal control sequences (dialoguer hides the cursor) are not part of the prompt.
        while not re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", out).rstrip().endswith((b":", b"]")):
            chunk = os.read(fd, 1024)
            if not chunk: break
            out += chunk
        time.sleep(0.3)  # let the program switch echo off before we type
        os.write(fd, a.encode() + b"\r")
        out += b"|"
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk: break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")
code, out = run(["passwd", "-a", {f:?}, "add", "alice"], ["wonderland", "wonderland"])
assert code == 0, (code, out)
assert "wonderland" not in out, out   # no echo
# A mismatch asks again, three times in all.
code, out = run(["passwd", "-a", {f:?}, "add", "bob"], ["one", "two", "builder", "builder"])
assert code == 0 and "try again" in out and "added bob" in out, (code, out)
code, out = run(["passwd", "-a", {f:?}, "add", "carol"], ["one", "two", "three", "four", "five", "six"])
assert code == 65 and "did not match 3 times" in out, (code, out)
code, out = run(["passwd", "-a", {f:?}, "add", "alice"], ["n"])
assert code == 73 and "replace" in out, (code, out)
code, out = run(["passwd", "-a", {f:?}, "add", "alice"], ["y", "looking-glass", "looking-glass"])
assert code == 0, (code, out)
print("ok")
"#,
        bin = crate::util::bin().display().to_string(),
        f = f.display().to_string()
    );
    let r = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .env("HOME", env.home())
        .env("TERM", "dumb")
        .output()
        .expect("python3");
    assert!(
        r.status.success(),
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    env.tmda()
        .args(["passwd", "--stdin", "-a"])
        .arg(&f)
        .args(["check", "alice"])
        .write_stdin("looking-glass\n")
        .assert()
        .success();
    for (user, pw) in [("bob", "builder"), ("carol", "six")] {
        let a = env
            .tmda()
            .args(["passwd", "--stdin", "-a"])
            .arg(&f)
            .args(["check", user])
            .write_stdin(format!("{pw}\n"))
            .assert();
        if user == "bob" {
            a.success()
        } else {
            a.code(1)
        };
    }
}

/// See: #11. A typo in -a is reported, not turned into a new directory; commands that
/// read the file say when it is not there.
#[test]
fn r11_missing_files_and_directories_are_named() {
    let env = TestEnv::bare();
    let f = env.path("no/such/dir/tofmipd");
    add(&env, &f, "jason", "pw", "plain").code(66).stderr(contains(format!(
        "directory {} does not exist",
        env.path("no/such/dir").display()
    )));
    assert!(!env.path("no").exists(), "no directory was made");
    let f = env.path("tofmipd");
    for action in [
        &["list"][..],
        &["check", "jason"],
        &["change", "jason"],
        &["remove", "jason"],
    ] {
        env.tmda()
            .args(["passwd", "--stdin", "--yes", "-a"])
            .arg(&f)
            .args(action)
            .write_stdin("pw\n")
            .assert()
            .code(66)
            .stdout("")
            .stderr(contains(format!("{} does not exist", f.display())));
    }
}

/// See: #11. --help says where the file is by default.
#[test]
fn r11_help_states_the_default_file() {
    let env = TestEnv::bare();
    for args in [&["passwd", "--help"][..], &["passwd", "-h"]] {
        env.tmda()
            .args(args)
            .assert()
            .success()
            .stdout(contains("/etc/tofmipd as root, else ~/.tmda/tofmipd"));
    }
}

/// See: #11. Options may come after USER; only --checkpassword's program keeps its own.
#[test]
fn r11_checkauth_options_after_the_user() {
    let env = TestEnv::bare();
    let f = env.path("tofmipd");
    add(&env, &f, "alice", "wonderland", "plain").success();
    let accepted = format!("authfile {}: accepted\n", f.display());
    for args in [
        vec!["-a", f.to_str().unwrap(), "alice", "--stdin"],
        vec!["alice", "-a", f.to_str().unwrap(), "--stdin"],
        vec!["--stdin", "alice", "-a", f.to_str().unwrap()],
    ] {
        env.tmda()
            .arg("checkauth")
            .args(&args)
            .write_stdin("wonderland\n")
            .assert()
            .success()
            .stdout(accepted.clone());
    }
    env.tmda()
        .args(["checkauth", "alice", "bob", "--stdin", "-a"])
        .arg(&f)
        .write_stdin("wonderland\n")
        .assert()
        .code(64)
        .stderr(contains("only one USER"));
}

#[test]
fn checkauth_reports_each_source() {
    let env = TestEnv::bare();
    let f = env.path("tofmipd");
    add(&env, &f, "alice", "wonderland", "plain").success();
    let prog = env.write("checkpw", "#!/bin/bash\nIFS= read -r -d '' u <&3; IFS= read -r -d '' p <&3\n[ \"$u\" = bob ] && [ \"$p\" = builder ] && exec \"$@\"\n[ \"$u\" = down ] && exit 111\nexit 1\n");
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |user: &str, pw: &str| {
        env.tmda()
            .args(["checkauth", "--stdin", "-A"])
            .arg(&prog)
            .arg("-a")
            .arg(&f)
            .arg(user)
            .write_stdin(format!("{pw}\n"))
            .assert()
    };
    run("bob", "builder")
        .success()
        .stdout(contains("authprog").and(contains("accepted")));
    run("alice", "wonderland")
        .success()
        .stdout(contains("refused: bad credentials").and(contains(format!("authfile {}: accepted", f.display()))));
    run("alice", "wonderlan").code(1);
    run("down", "x").code(75).stdout(contains("could not check"));
    // A server that is down is named once, by the source's own description (#11).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = env
        .tmda()
        .args(["checkauth", "--stdin", "-R"])
        .arg(format!("imap://127.0.0.1:{port}"))
        .arg("alice")
        .write_stdin("x\n")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(text.matches("127.0.0.1").count(), 1, "{text}");
    assert!(text.contains("could not check: connection refused"), "{text}");
    // The order given is the order tried.
    let out = stdout_of(
        env.tmda()
            .args(["checkauth", "--stdin", "-a"])
            .arg(&f)
            .arg("-A")
            .arg(&prog)
            .arg("alice")
            .write_stdin("wonderland\n"),
    );
    assert!(out.starts_with("authfile"), "{out}");
    // Symlinked name.
    env.symlink_as("tmda-checkauth")
        .arg("--stdin")
        .arg("-a")
        .arg(&f)
        .arg("alice")
        .write_stdin("wonderland\n")
        .assert()
        .success();
}

#[test]
fn checkauth_as_a_checkpassword_program() {
    let env = TestEnv::bare();
    let f = env.path("tofmipd");
    add(&env, &f, "alice", "wonderland", "sha512-crypt").success();
    let creds = env.write("creds", "alice\0wonderland\x001700000000\0");
    let bad = env.write("bad", "alice\0wonderlan\x001700000000\0");
    let sh = |file: &std::path::Path| {
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "exec {} checkauth --checkpassword -a {} /bin/echo welcome -a --stdin 3<{}",
                crate::util::bin().display(),
                f.display(),
                file.display()
            ))
            .env("HOME", env.home())
            .output()
            .unwrap()
    };
    let ok = sh(&creds);
    assert_eq!(
        (ok.status.code(), String::from_utf8_lossy(&ok.stdout).as_ref()),
        (Some(0), "welcome -a --stdin\n"),
        "the program's own arguments are not checkauth's options"
    );
    assert_eq!(sh(&bad).status.code(), Some(1));
}
