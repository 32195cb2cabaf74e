//! `tmda keygen`: key output, and the safe install path.

use std::os::unix::fs::MetadataExt;

use predicates::str::contains;

use crate::util::{TestEnv, stdout_of};

fn is_key(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[test]
fn batch_prints_only_a_key() {
    let env = TestEnv::bare();
    let a = stdout_of(env.tmda().args(["keygen", "-b"]));
    let b = stdout_of(env.tmda().args(["keygen", "--batch"]));
    assert!(is_key(a.trim_end()) && a.ends_with('\n'), "{a:?}");
    assert_ne!(a, b, "two keys must differ");
}

#[test]
fn interactive_output_explains() {
    let env = TestEnv::bare();
    let out = stdout_of(env.tmda().arg("keygen"));
    assert!(out.lines().any(is_key), "{out}");
    assert!(out.contains("chmod 600"));
}

#[test]
fn device_option() {
    let env = TestEnv::bare();
    let dev = env.write("zeros", &"\0".repeat(32));
    assert_eq!(
        stdout_of(env.tmda().args(["keygen", "-b", "-d"]).arg(&dev)),
        format!("{}\n", "0".repeat(40))
    );
    let short = env.write("short", "abc");
    env.tmda()
        .args(["keygen", "-b", "-d"])
        .arg(&short)
        .assert()
        .code(69)
        .stderr(contains("could not read 20 bytes"));
    env.tmda().args(["keygen", "-d", "/nonexistent/dev"]).assert().code(69);
}

#[test]
fn install_writes_0600_and_never_clobbers() {
    let env = TestEnv::bare();
    env.tmda().args(["keygen", "--install"]).assert().success().stdout("");
    let key_path = env.path(".tmda/crypt_key");
    let meta = std::fs::metadata(&key_path).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    let first = std::fs::read_to_string(&key_path).unwrap();
    assert!(is_key(first.trim_end()));

    env.tmda()
        .args(["keygen", "--install"])
        .assert()
        .code(73)
        .stderr(contains("already exists; use --force"));
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        first,
        "existing key untouched"
    );

    env.tmda().args(["keygen", "--install", "--force"]).assert().success();
    let second = std::fs::read_to_string(&key_path).unwrap();
    assert_ne!(first, second);
    // The installed key works at once.
    env.write_config("USERNAME = 'u'\nHOSTNAME = 'h.example'\n");
    env.tmda().args(["address", "-s", "a@b.c"]).assert().success();
}

#[test]
fn install_honours_crypt_key_file() {
    let env = TestEnv::bare();
    env.write_config("CRYPT_KEY_FILE = '~/secret/key'\n");
    env.tmda().args(["keygen", "--install", "-b"]).assert().success();
    assert!(env.path("secret/key").exists());
}

#[test]
fn force_needs_install() {
    let env = TestEnv::bare();
    env.tmda().args(["keygen", "--force"]).assert().code(64);
}

/// See: #11. An install that cannot write names the key file, not the temporary file
/// it would have renamed (`/etc/.crypt_key.UM5B2W`).
#[test]
fn r11_install_failure_names_the_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::bare();
    let dir = env.path("readonly");
    std::fs::create_dir(&dir).unwrap();
    let key = dir.join("crypt_key");
    env.write_config(&format!("CRYPT_KEY_FILE = '{}'\n", key.display()));
    let mut cmd = env.std_tmda();
    cmd.args(["keygen", "--install"]);
    // Root may write anywhere: run as nobody, who then owns the directory but has
    // taken away its own write permission.
    crate::ofmipd::as_nobody(&mut cmd, &env);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{stderr}");
    assert_eq!(
        stderr,
        format!("tmda keygen: {}: permission denied\n", key.display()),
        "names the key file, in words"
    );
}
