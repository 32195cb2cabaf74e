//! Test environment: a temporary HOME with a TMDA setup, and the binary under test.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The published TMDA test key.
pub const KEY: &str = "b7fdc8a5afe5f364c87e2f984cbbd27450255675";
/// The published TMDA test time.
pub const NOW: &str = "1262937386";

pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    /// A HOME with ~/.tmda/config (USERNAME testuser, HOSTNAME testsite.com) and the test key.
    pub fn new() -> TestEnv {
        let env = TestEnv::bare();
        env.write_config("USERNAME = 'testuser'\nHOSTNAME = \"testsite.com\"\n");
        env.write_key(KEY, 0o600);
        env
    }

    /// An empty HOME.
    pub fn bare() -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".tmda")).unwrap();
        TestEnv { dir }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn write_config(&self, text: &str) -> PathBuf {
        self.write(".tmda/config", text)
    }

    pub fn write_key(&self, hex: &str, mode: u32) -> PathBuf {
        let p = self.write(".tmda/crypt_key", &format!("{hex}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// `tmda ARGS...` with a clean, pinned environment.
    pub fn tmda(&self) -> Command {
        self.run_as(&bin())
    }

    /// The binary invoked under another name (a symlink in the temp dir).
    pub fn symlink_as(&self, name: &str) -> Command {
        let link = self.path(&format!("bin/{name}"));
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        if !link.exists() {
            std::os::unix::fs::symlink(bin(), &link).unwrap();
        }
        self.run_as(&link)
    }

    fn run_as(&self, program: &Path) -> Command {
        Command::from_std(self.std_command(program))
    }

    /// `tmda` as a plain std Command (for processes the test manages itself).
    pub fn std_tmda(&self) -> std::process::Command {
        self.std_command(&bin())
    }

    fn std_command(&self, program: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.env_clear()
            .env("HOME", self.home())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GLOBAL_TMDARC", self.path("no-global-tmdarc"))
            .env("TZ", "UTC")
            .env("LC_ALL", "C");
        c
    }
}

/// When the tests run as root: HOME is handed to nobody, and nobody's (uid, gid) are
/// returned for commands that must not act as root (root's defaults are system files
/// such as /etc/tofmipd).
pub fn nobody_if_root(env: &TestEnv) -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let a = tmda::account::Account::lookup("nobody").expect("user nobody");
    let st = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", a.uid, a.gid))
        .arg(env.home())
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o755)).unwrap();
    Some((a.uid, a.gid))
}

/// The binary under test; `TMDA_TEST_BIN` points the tests at another build (to show
/// that a test fails against the code from before a fix).
pub fn bin() -> PathBuf {
    std::env::var_os("TMDA_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tmda")))
}

/// Standard output of a successful command, as text.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "command failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run `cmd` with `input` on its standard input, written from a thread (the program may
/// stop reading early, and must not deadlock the test), and collect its output.
pub fn output_with_input(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Fails with a readable diff-like message when two texts differ.
#[track_caller]
pub fn assert_text_eq(got: &str, want: &str, what: &str) {
    if got != want {
        let mut msg = format!("{what} differs:\n");
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            if g != w {
                msg.push_str(&format!(
                    "  first difference at line {}:\n    got:  {g:?}\n    want: {w:?}\n",
                    i + 1
                ));
                break;
            }
        }
        msg.push_str(&format!(
            "  got {} lines, want {} lines",
            got.lines().count(),
            want.lines().count()
        ));
        panic!("{msg}");
    }
}

/// A fake sendmail program: records its arguments and input under `dir/out/N`
/// and exits with the code in `dir/exit-code` (0 when absent).
pub fn fake_sendmail(env: &TestEnv) -> PathBuf {
    let prog = env.write(
        "bin/fake-sendmail",
        &format!(
            "#!/bin/sh\nd='{dir}'\nmkdir -p \"$d/out\"\nn=$(printf '%s%07d' \"$(date +%s%N)\" $$)\n{{ printf 'ARGS:'; for a in \"$@\"; do printf ' [%s]' \"$a\"; done; echo; cat; }} > \"$d/out/.$n\" && mv \"$d/out/.$n\" \"$d/out/$n\"\n\
             [ -f \"$d/exit-code\" ] && {{ echo 'fake-sendmail: refusing' >&2; exit $(cat \"$d/exit-code\"); }}\nexit 0\n",
            dir = env.home().display()
        ),
    );
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    prog
}

/// What the fake sendmail program received, in order: (argument line, message).
pub fn fake_sendmail_outputs(env: &TestEnv) -> Vec<(String, String)> {
    let dir = env.path("out");
    // Named by the time they started (nanoseconds) and the process id: concurrent
    // sendmails never share a name, and the order is the order they ran in.
    let mut names: Vec<u128> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => return vec![],
    };
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(n.to_string())).unwrap();
            let (args, msg) = text.split_once('\n').unwrap();
            (args.to_string(), msg.to_string())
        })
        .collect()
}

pub mod fake_smtp;
