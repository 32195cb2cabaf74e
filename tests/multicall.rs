//! argv[0] dispatch: the binary behaves as the old TMDA tool it is linked as.

use predicates::str::contains;

use crate::util::{NOW, TestEnv, stdout_of};

#[test]
fn tmda_address_symlink_takes_old_syntax() {
    let env = TestEnv::new();
    let out = stdout_of(env.symlink_as("tmda-address").arg("-dn").env("TMDA_NOW", NOW));
    assert_eq!(out, "testuser-dated-1263369386.df2137@testsite.com");
}

#[test]
fn tmda_check_address_symlink() {
    let env = TestEnv::new();
    env.symlink_as("tmda-check-address")
        .args(["testuser-sender-23834d@testsite.com", "sender@remote.com"])
        .assert()
        .success()
        .stdout("STATUS: VALID\n");
}

#[test]
fn tmda_keygen_symlink() {
    let env = TestEnv::bare();
    let out = stdout_of(env.symlink_as("tmda-keygen").arg("-b"));
    assert_eq!(out.trim_end().len(), 40);
}

#[test]
fn symlink_help_uses_the_old_name() {
    let env = TestEnv::new();
    env.symlink_as("tmda-address")
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Usage: tmda-address"));
}

#[test]
fn unknown_name_falls_back_to_subcommands() {
    let env = TestEnv::new();
    env.symlink_as("my-tmda")
        .args(["address", "-s", "sender@remote.com"])
        .assert()
        .success()
        .stdout("testuser-sender-23834d@testsite.com\n");
    env.symlink_as("my-tmda")
        .arg("frobnicate")
        .assert()
        .code(64)
        .stderr(contains("unrecognized subcommand"));
}

#[test]
fn no_arguments_shows_usage() {
    let env = TestEnv::new();
    env.tmda().assert().code(64).stderr(contains("Usage: tmda <COMMAND>"));
}

#[test]
fn ofmipd_needs_at_least_one_thread() {
    let env = TestEnv::new();
    env.tmda()
        .args(["ofmipd", "-f", "--threads", "0"])
        .assert()
        .code(64)
        .stderr(contains("--threads"));
}
