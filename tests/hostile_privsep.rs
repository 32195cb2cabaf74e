//! Attacks on privilege boundaries (issue #10, points 8, 13 and 14): what another local
//! user or a compromised network process could try, and what must stop them.

use std::os::unix::fs::PermissionsExt;

use predicates::str::contains;

use crate::util::TestEnv;

fn add(env: &TestEnv, file: &std::path::Path) -> assert_cmd::assert::Assert {
    env.tmda()
        .args(["passwd", "--stdin", "-a"])
        .arg(file)
        .args(["add", "alice"])
        .write_stdin("wonderland\n")
        .assert()
}

/// See: #10 (13). Whoever can write to the directory plants `.FILE.lock` as a symlink;
/// `tmda passwd` (say, root) must not follow it and create the file it points at.
#[test]
fn passwd_does_not_follow_a_symlinked_lock_file() {
    let env = TestEnv::bare();
    let dir = env.path("auth");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = env.path("elsewhere/created-by-the-lock");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, dir.join(".tofmipd.lock")).unwrap();
    add(&env, &dir.join("tofmipd"))
        .failure()
        .stderr(contains(".tofmipd.lock"));
    assert!(!target.exists(), "the lock's symlink was followed");
    assert!(!dir.join("tofmipd").exists());
}

/// See: #10 (13). A password file in a directory others may write to (and that lacks the
/// sticky bit) is refused: they could swap the file or its lock under us. A sticky
/// directory such as /tmp is fine, since others cannot replace our files there.
#[test]
fn passwd_refuses_a_directory_others_can_write() {
    let env = TestEnv::bare();
    for (mode, ok) in [
        (0o777, false),
        (0o770, false),
        (0o757, false),
        (0o1777, true),
        (0o755, true),
    ] {
        let dir = env.path(&format!("d{mode:o}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let a = add(&env, &dir.join("tofmipd"));
        if ok {
            a.success();
        } else {
            a.code(77).stderr(contains("writable by others"));
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{mode:o}: nothing written");
        }
    }
}

/// See: #10 (13). The same rule for `keygen --install`.
#[test]
fn keygen_install_refuses_a_directory_others_can_write() {
    let env = TestEnv::bare();
    for (mode, ok) in [(0o777, false), (0o775, false), (0o1777, true), (0o700, true)] {
        let dir = env.path(&format!("k{mode:o}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        env.write_config(&format!("CRYPT_KEY_FILE = '{}'\n", dir.join("crypt_key").display()));
        let a = env.tmda().args(["keygen", "--install"]).assert();
        if ok {
            a.success();
        } else {
            a.code(77).stderr(contains("writable by others"));
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{mode:o}: nothing written");
        }
    }
}
