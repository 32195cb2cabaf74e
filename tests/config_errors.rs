//! Bad configuration and key files give one clear line naming file, line and problem.

use std::os::unix::fs::PermissionsExt;

use predicates::str::contains;

use crate::util::{KEY, TestEnv};

fn fails_with(env: &TestEnv, code: i32, needle: &str) {
    let out = env.tmda().args(["address"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr {stderr:?} lacks {needle:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn syntax_error_names_file_line_col() {
    let env = TestEnv::new();
    let cfg = env.write_config("USERNAME = 'x'\nHOSTNAME = 'unterminated\n");
    fails_with(
        &env,
        78,
        &format!(
            "tmda address: {}:2:12: string is never closed on its line",
            cfg.display()
        ),
    );
}

#[test]
fn code_in_config_is_refused() {
    let env = TestEnv::new();
    env.write_config("import os\nos.system('touch /tmp/tmda-pwned')\n");
    fails_with(&env, 78, "never runs them");
}

#[test]
fn wrong_type_names_variable_and_origin() {
    let env = TestEnv::new();
    let cfg = env.write_config("\nHMAC_BYTES = 'three'\n");
    fails_with(
        &env,
        78,
        &format!("HMAC_BYTES ({}:2): must be a whole number", cfg.display()),
    );
}

#[test]
fn explicitly_named_missing_config() {
    let env = TestEnv::new();
    env.tmda()
        .args(["address", "-c", "/nonexistent/tmda.cfg"])
        .assert()
        .code(66)
        .stderr(contains("config file /nonexistent/tmda.cfg: no such file"));
}

#[test]
fn missing_default_config_uses_defaults() {
    let env = TestEnv::new();
    std::fs::remove_file(env.path(".tmda/config")).unwrap();
    env.tmda().args(["address", "-a", "me@example.org"]).assert().success();
}

#[test]
fn key_file_problems() {
    let env = TestEnv::new();
    let key = env.path(".tmda/crypt_key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    fails_with(&env, 77, "must be chmod 400 or 600 (it is 644)");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    fails_with(&env, 77, "ALLOW_MODE_640");
    env.write_config("USERNAME = 'u'\nHOSTNAME = 'h'\nALLOW_MODE_640 = True\n");
    env.tmda().arg("address").assert().success();

    env.write_key("not hex at all", 0o600);
    fails_with(&env, 78, "the key is not valid hex");
    std::fs::remove_file(&key).unwrap();
    fails_with(&env, 78, "can't find key file");
    env.write_key(KEY, 0o600);
    env.tmda().arg("address").assert().success();
}

#[test]
fn ini_config_form() {
    let env = TestEnv::new();
    let global = env.write("tmdarc", "CONFIG_EXEC = False\n");
    env.write_config("[TMDA_CONFIG]\nusername = testuser\nhostname: testsite.com\n");
    env.tmda()
        .args(["address", "-s", "Sender@REmote.com"])
        .env("GLOBAL_TMDARC", &global)
        .assert()
        .success()
        .stdout("testuser-sender-23834d@testsite.com\n");
}
