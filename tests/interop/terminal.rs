//! Programs that talk to a person, driven through a real terminal (tmux): `tmda init`'s
//! questions, answered with keys as a person would.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::peers::*;

/// A tmux session running one command in an 100x40 terminal.
pub struct Tmux {
    name: String,
    bin: std::path::PathBuf,
}

impl Tmux {
    pub fn start(command: &str) -> Tmux {
        let bin = require("tmux", "tmux");
        let name = format!("tmda-test-{}-{}", std::process::id(), free_port());
        // The command's last screen stays readable: a shell waits after it ends.
        let st = Command::new(&bin)
            .args(["new-session", "-d", "-s", &name, "-x", "100", "-y", "40"])
            .arg(format!("{command}; echo EXIT=$?; sleep 60"))
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session");
        Tmux { name, bin }
    }

    pub fn screen(&self) -> String {
        let out = Command::new(&self.bin)
            .args(["capture-pane", "-p", "-J", "-S", "-200", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until the screen shows `text`.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {text:?}; the screen shows:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Type keys (tmux key names: "Enter", "Down", "y", literal text).
    pub fn keys(&self, keys: &[&str]) {
        let st = Command::new(&self.bin)
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

fn fake_sendmail(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("fake-sendmail");
    std::fs::write(&p, "#!/bin/sh\ncat >/dev/null\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn init_asks_in_a_terminal_and_never_replaces_without_asking() {
    let tmp = shared_tempdir();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let sendmail = fake_sendmail(tmp.path());
    let cmd = format!(
        "env -i PATH=/usr/bin:/bin HOME={} TERM=xterm GLOBAL_TMDARC=/none {} init",
        home.display(),
        tmda_bin().display()
    );
    // Name, domain, the transport menu (the sendmail program is the first choice) and
    // its path; an empty answer takes the default shown.
    let line = |t: &Tmux, text: &str| match text {
        "" => t.keys(&["Enter"]),
        text => t.keys(&[text, "Enter"]),
    };
    let answer_setup = |t: &Tmux, name: &str, domain: &str| {
        t.wait_for("Your user name");
        line(t, name);
        t.wait_for("Your mail domain");
        line(t, domain);
        t.wait_for("How does your mail leave");
        t.keys(&["Enter"]);
        t.wait_for("Sendmail program");
        line(t, sendmail.to_str().unwrap());
    };
    let t = Tmux::start(&cmd);
    answer_setup(&t, "jo", "example.org");
    // Incoming mail through ~/.forward: the second item of the menu.
    t.wait_for("Filter incoming mail");
    t.keys(&["Down", "Enter"]);
    t.wait_for("personal `tmda ofmipd`");
    t.keys(&["n"]);
    let screen = t.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(screen.contains("STATUS: VALID"), "{screen}");
    assert!(screen.contains("jo-dated-"), "{screen}");
    let config = std::fs::read_to_string(home.join(".tmda/config")).unwrap();
    assert!(
        config.contains("USERNAME = \"jo\"") && config.contains(sendmail.to_str().unwrap()),
        "{config}"
    );
    let forward = std::fs::read_to_string(home.join(".forward")).unwrap();
    assert!(forward.contains(" filter\""), "{forward}");
    assert!(home.join("Maildir/new").is_dir() && home.join(".tmda/filters/incoming").exists());
    drop(t);

    // Again: every existing file is offered for replacement, and "no" keeps it.
    let key = std::fs::read_to_string(home.join(".tmda/crypt_key")).unwrap();
    let t = Tmux::start(&cmd);
    answer_setup(&t, "", "");
    t.wait_for("config exists. Replace it?");
    t.keys(&["n"]);
    t.wait_for("crypt_key exists. Replace it?");
    t.keys(&["n"]);
    t.wait_for("outgoing exists. Replace it?");
    t.keys(&["n"]);
    t.wait_for("Filter incoming mail");
    t.keys(&["Enter"]);
    t.wait_for("personal `tmda ofmipd`");
    t.keys(&["n"]);
    let screen = t.wait_for("EXIT=");
    assert!(
        screen.contains("EXIT=0") && screen.contains("STATUS: VALID"),
        "{screen}"
    );
    assert_eq!(std::fs::read_to_string(home.join(".tmda/crypt_key")).unwrap(), key);
    assert!(
        std::fs::read_to_string(home.join(".tmda/config"))
            .unwrap()
            .contains("\"jo\"")
    );
}
