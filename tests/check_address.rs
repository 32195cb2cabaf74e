//! `tmda check-address`: TMDA's output format, plus a meaningful exit status.

use predicates::str::contains;

use crate::util::{NOW, TestEnv, stdout_of};

const DATED: &str = "testuser-dated-1263369386.df2137@testsite.com";

#[test]
fn valid_dated_address() {
    let env = TestEnv::new();
    let out = stdout_of(env.tmda().args(["check-address", DATED]).env("TMDA_NOW", NOW));
    assert_eq!(out, "STATUS: VALID\nEXPIRES: Wed Jan 13 07:56:26 2010 UTC\n");
}

#[test]
fn expired_dated_address() {
    let env = TestEnv::new();
    env.tmda()
        .args(["check-address", DATED])
        .env("TMDA_NOW", "1263369387")
        .assert()
        .code(1)
        .stdout("STATUS: Dated address has expired.\nEXPIRED: Wed Jan 13 07:56:26 2010 UTC\n");
}

#[test]
fn localtime_option() {
    let env = TestEnv::new();
    env.tmda()
        .args(["check-address", "-l", DATED])
        .env("TMDA_NOW", NOW)
        .env("TZ", "EST5EDT")
        .assert()
        .success()
        .stdout("STATUS: VALID\nEXPIRES: Wed Jan 13 02:56:26 2010 EST\n");
}

#[test]
fn forged_and_malformed_addresses() {
    let env = TestEnv::new();
    for (addr, status) in [
        (
            "testuser-dated-1263369386.df2138@testsite.com",
            "STATUS: Invalid cryptographic tag.\n",
        ),
        (
            "testuser-dated-1263369386@testsite.com",
            "STATUS: Invalid cryptographic tag format.\n",
        ),
        (
            "testuser@testsite.com",
            "STATUS: No cryptographic information in address.\n",
        ),
        (
            "testuser-keyword-keywordtest.243549@testsite.com",
            "STATUS: Invalid cryptographic tag.\n",
        ),
    ] {
        env.tmda()
            .args(["check-address", addr])
            .env("TMDA_NOW", NOW)
            .assert()
            .code(1)
            .stdout(status);
    }
}

#[test]
fn sender_address_needs_the_right_sender() {
    let env = TestEnv::new();
    let addr = "testuser-sender-23834d@testsite.com";
    env.tmda()
        .args(["check-address", addr, "sender@remote.com"])
        .assert()
        .success()
        .stdout("STATUS: VALID\n");
    env.tmda()
        .args(["check-address", addr, "\"Some One\" <SENDER@remote.COM>"])
        .assert()
        .success();
    env.tmda()
        .args(["check-address", addr, "other@remote.com"])
        .assert()
        .code(1)
        .stdout("STATUS: Invalid cryptographic tag.\n");
    env.tmda().args(["check-address", addr]).assert().code(1);
}

#[test]
fn round_trip_with_address() {
    let env = TestEnv::new();
    let made = stdout_of(env.tmda().args(["address", "-k", "Some Keyword!"]));
    env.tmda()
        .args(["check-address", made.trim()])
        .assert()
        .success()
        .stdout("STATUS: VALID\n");
    let made = stdout_of(env.tmda().args(["address", "-t", "2h"]));
    env.tmda()
        .args(["check-address", made.trim()])
        .assert()
        .success()
        .stdout(contains("EXPIRES: "));
}

#[test]
fn address_is_required() {
    let env = TestEnv::new();
    env.tmda()
        .arg("check-address")
        .assert()
        .code(64)
        .stderr(contains("ADDRESS"));
}
