//! The documentation as users meet it: the completion files loaded by the real
//! shells, the man pages rendered by man(1) with warnings on, and the README's global
//! mode first steps run as root exactly as written.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `program -c script`; fail on a non-zero exit or anything on standard error.
fn shell(program: &str, package: &str, args: &[&str], script: &str) -> String {
    let bin = require(program, package);
    let out = Command::new(bin)
        .args(args)
        .arg("-c")
        .arg(script)
        .current_dir(root())
        .env("HOME", root().join("target"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success() && stderr.is_empty(),
        "{program}: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// See: #11. Each completion file loads in its real shell without a word on standard
/// error, and completes the new and the old names.
#[test]
fn completion_files_load_in_bash_zsh_and_fish() {
    // bash: the file registers tmda and every old name, and a completion works.
    let out = shell(
        "bash",
        "bash",
        &["--norc", "--noprofile"],
        "source completions/tmda.bash && complete -p tmda tmda-address tmda-check-address tmda-keygen \
         tmda-sendmail tmda-inject tmda-ofmipd tmda-passwd tmda-checkauth >/dev/null && \
         COMP_WORDS=(tmda-address --con); COMP_CWORD=1; COMP_LINE='tmda-address --con'; COMP_POINT=${#COMP_LINE}; \
         _tmda__address tmda-address --con tmda-address; printf '%s\\n' \"${COMPREPLY[@]}\"; \
         COMP_WORDS=(tmda pass); COMP_CWORD=1; COMP_LINE='tmda pass'; COMP_POINT=${#COMP_LINE}; \
         _tmda tmda pass tmda; printf '%s\\n' \"${COMPREPLY[@]}\"",
    );
    assert_eq!(out, "--config-file\npasswd\n");
    // zsh: the #compdef file defines _tmda and registers it for tmda.
    let out = shell(
        "zsh",
        "zsh",
        &["-f"],
        "autoload -U compinit && compinit -u -D && source completions/_tmda && print -r -- ${_comps[tmda]}",
    );
    assert_eq!(out, "_tmda\n");
    // fish: the file loads (a `$` in a help text once stopped it) and completes.
    let out = shell(
        "fish",
        "fish",
        &["--no-config"],
        "source completions/tmda.fish; complete -C 'tmda-passwd --sch'; complete -C 'tmda passwd --scheme sha'; \
         complete -C 'tmda-inject -'",
    );
    assert!(out.starts_with("--scheme\t"), "{out}");
    assert!(out.contains("sha512-crypt\t"), "{out}");
    assert!(out.contains("-O\t"), "{out}");
}

/// See: #11. Every page renders with man(1) at 80 columns without a groff warning.
#[test]
fn man_pages_render_without_warnings() {
    let man = require("man", "man-db");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    assert!(pages.len() >= 10, "{pages:?}");
    for page in pages {
        let out = Command::new(&man)
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}",
            page.display()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("NAME") && text.contains("SEE ALSO"),
            "{}: {text}",
            page.display()
        );
    }
}

/// The command lines of the README's ```sh block that contains `line`.
fn readme_block_with(line: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut block = vec![];
    let mut inside = false;
    for l in readme.lines() {
        if l.starts_with("```sh") {
            inside = true;
            block.clear();
        } else if l.starts_with("```") && inside {
            if block.iter().any(|b: &String| b == line) {
                return block;
            }
            inside = false;
        } else if inside && !l.trim().is_empty() && !l.starts_with('#') {
            block.push(l.split(" #").next().unwrap().trim_end().to_string());
        }
    }
    panic!("README.md has no ```sh block with {line:?}");
}

/// Serialises the tests that use ofmipd's default port (8025).
pub static DEFAULT_PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// See: #11. The README's first steps for global mode, as root, exactly as written:
/// `tmda passwd add jason` makes /etc/tofmipd, and `tmda ofmipd -d -f` accepts it (it
/// once refused it for being root's). /etc is an overlay in a mount namespace of the
/// test's own, so the machine's /etc/tofmipd is never touched (nor, if it has one, used).
#[test]
fn r11_readme_first_steps_as_root() {
    require_root("the first-steps test");
    let _port = DEFAULT_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let steps = readme_block_with("tmda passwd add jason");
    assert_eq!(
        steps,
        ["tmda passwd add jason", "tmda ofmipd -d -f"],
        "the README's block changed"
    );
    crate::global::ensure_system_user("tofmipd", Path::new("/nonexistent"));
    // The overlay's lower layer is the live /etc: no useradd or usermod of the other
    // tests may rewrite /etc/passwd under it meanwhile.
    let _users = crate::global::USERS.lock().unwrap_or_else(|e| e.into_inner());
    let script_bin = require("script", "bsdutils");
    let unshare = require("unshare", "util-linux");
    let tmp = shared_tempdir();
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(tmda_bin(), bin_dir.join("tmda")).unwrap();
    for d in ["upper", "work"] {
        std::fs::create_dir(tmp.path().join(d)).unwrap();
    }
    // The password is typed at the prompts (twice) through script(1)'s terminal.
    let script = format!(
        "set -e\n\
         mount -t overlay overlay -o lowerdir=/etc,upperdir={t}/upper,workdir={t}/work /etc\n\
         rm -f /etc/tofmipd /etc/.tofmipd.lock\n\
         (sleep 1; printf 'secret\\n'; sleep 1; printf 'secret\\n'; sleep 2) | {script_bin} -qec '{first}' {t}/typescript > {t}/passwd.out\n\
         ls -ln /etc/tofmipd > {t}/ls.out\n\
         exec {second}\n",
        t = tmp.path().display(),
        script_bin = script_bin.display(),
        first = steps[0],
        second = steps[1],
    );
    let log = tmp.path().join("ofmipd.log");
    let child = Command::new(unshare)
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin_dir.display()))
        .env("HOME", "/root")
        .env("GLOBAL_TMDARC", tmp.path().join("none"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let daemon = Daemon {
        child,
        name: "tmda ofmipd -d -f",
    };
    // ofmipd says where it listens (FQDN:8025 by default).
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(a) = text.lines().find_map(|l| l.split("event=listen address=").nth(1)) {
            break a.trim().to_string();
        }
        assert!(Instant::now() < deadline, "ofmipd did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let passwd_out = std::fs::read_to_string(tmp.path().join("passwd.out")).unwrap();
    assert!(
        passwd_out.contains("created /etc/tofmipd, mode 600, owned by tofmipd")
            && passwd_out.contains("added jason to /etc/tofmipd"),
        "{passwd_out}"
    );
    let ls = std::fs::read_to_string(tmp.path().join("ls.out")).unwrap();
    let tofmipd_uid = tmda::account::Account::lookup("tofmipd").unwrap().uid;
    assert!(
        ls.starts_with("-rw-------") && ls.split_whitespace().nth(2) == Some(&tofmipd_uid.to_string()),
        "{ls}"
    );
    let stream = std::net::TcpStream::connect(addr.parse::<std::net::SocketAddr>().unwrap()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut reply = |cmd: Option<&str>| {
        use std::io::{BufRead, Write};
        if let Some(c) = cmd {
            w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        }
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if reader.read_line(&mut l).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return all;
            }
        }
    };
    assert!(reply(None).starts_with("220"));
    assert!(reply(Some("EHLO client.test")).starts_with("250"));
    // "\0jason\0secret"
    let r = reply(Some("AUTH PLAIN AGphc29uAHNlY3JldA=="));
    assert!(r.starts_with("235"), "{r}\n{}", std::fs::read_to_string(&log).unwrap());
    drop(daemon);
    assert!(
        !Path::new("/etc/tofmipd").exists()
            || std::fs::read_to_string("/etc/tofmipd").is_ok_and(|t| !t.contains("jason:secret")),
        "the machine's /etc/tofmipd was changed"
    );
}

/// See: #11. The README's first command sets up what it needs (scripts/deps.sh
/// quickstart) and relays a tagged test message; `--once` stops it afterwards and
/// TMDA_BIN spares the test a release build.
#[test]
fn r11_quickstart_runs_through() {
    require("smtp-sink", "postfix");
    let tmp = shared_tempdir();
    let out = Command::new(root().join("scripts/quickstart"))
        .arg("--once")
        .env("TMDA_BIN", tmda_bin())
        .env("TMDA_DEMO_DIR", tmp.path().join("demo"))
        .env("QUICKSTART_PORT", free_port().to_string())
        .env("QUICKSTART_SINK_PORT", free_port().to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("From: Demo User <demo-dated-") && text.contains("X-Rcpt-Args: <friend@example.org>"),
        "{text}"
    );
}
