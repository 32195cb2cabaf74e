//! A checkpassword program (`-A/--authprog`), following cr.yp.to/checkpwd/interface.html:
//! `user\0password\0timestamp\0` is written to descriptor 3; exit 0 means accepted,
//! 1 denied, 111 a temporary problem. Like TMDA the command line is run by /bin/sh
//! (`exec PROGRAM 3<&0`), so `-A "/usr/sbin/checkpassword-pam -s id -- /bin/true"` works;
//! a bare program name gets `/bin/true` as the program to run on success. Its output
//! never reaches the SMTP client, and it is killed after a timeout.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Source, Verdict};

pub struct CheckPassword {
    pub command: String,
    pub timeout: Duration,
}

impl CheckPassword {
    pub fn new(command: &str) -> CheckPassword {
        let command = if command.split_whitespace().count() == 1 {
            format!("{command} /bin/true")
        } else {
            command.to_string()
        };
        CheckPassword {
            command,
            timeout: Duration::from_secs(30),
        }
    }
}

impl Source for CheckPassword {
    fn describe(&self) -> String {
        format!("authprog {}", self.command)
    }

    fn check_password(&self, user: &str, password: &str) -> Verdict {
        // The interface uses NUL as separator: such credentials cannot be passed on.
        if user.contains('\0') || password.contains('\0') {
            return Verdict::Denied;
        }
        let mut child = match Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec {} 3<&0", self.command))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return Verdict::Unavailable(format!("cannot run: {}", crate::exit::describe_io(&e))),
        };
        let ts = crate::clock::now().unwrap_or(0);
        if let Some(mut stdin) = child.stdin.take() {
            // A program that exits without reading gives EPIPE here; its status decides.
            let _ = stdin.write_all(format!("{user}\0{password}\0{ts}\0").as_bytes());
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return match status.code() {
                        Some(0) => Verdict::Accepted,
                        Some(111) => Verdict::Unavailable("temporary failure (exit 111)".into()),
                        Some(1) => Verdict::Denied,
                        Some(c) => Verdict::Unavailable(format!("exited {c}")),
                        None => Verdict::Unavailable("killed by a signal".into()),
                    };
                }
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Verdict::Unavailable(format!("no answer within {} seconds", self.timeout.as_secs_f32()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Verdict::Unavailable(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The checkpassword stub of the project's research notes (bash, for `read -d ''`).
    fn stub(dir: &std::path::Path) -> std::path::PathBuf {
        let p = dir.join("checkpw");
        std::fs::write(
            &p,
            "#!/bin/bash\nIFS= read -r -d '' user <&3; IFS= read -r -d '' pass <&3; IFS= read -r -d '' ts <&3\n\
             [ \"$user\" = down ] && exit 111\n[ \"$user\" = slow ] && sleep 5\n\
             [ -n \"$ts\" ] && [ \"$user\" = alice ] && [ \"$pass\" = wonderland ] && exec \"$@\"\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn djb_interface() {
        let d = tempfile::tempdir().unwrap();
        let prog = stub(d.path());
        let c = CheckPassword::new(&prog.display().to_string());
        assert_eq!(c.check_password("alice", "wonderland"), Verdict::Accepted);
        assert_eq!(c.check_password("alice", "wonderlan"), Verdict::Denied);
        assert_eq!(c.check_password("alice", "wonder\0land"), Verdict::Denied);
        assert_eq!(c.check_password("alice; touch /tmp/x", "wonderland"), Verdict::Denied);
        assert!(matches!(c.check_password("down", "x"), Verdict::Unavailable(_)));
        // The program to run after success is honoured: /bin/false turns success into failure.
        let c = CheckPassword::new(&format!("{} /bin/false", prog.display()));
        assert_eq!(c.check_password("alice", "wonderland"), Verdict::Denied);
        let mut c = CheckPassword::new(&prog.display().to_string());
        c.timeout = Duration::from_millis(200);
        assert!(matches!(c.check_password("slow", "x"), Verdict::Unavailable(m) if m.contains("no answer")));
        let c = CheckPassword::new("/nonexistent/checkpw");
        assert!(matches!(c.check_password("alice", "x"), Verdict::Unavailable(_)));
    }
}
