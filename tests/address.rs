//! `tmda address`: TMDA's published vectors through the real binary, and its options.

use crate::util::{NOW, TestEnv, stdout_of};

#[test]
fn dated_by_default_with_published_vector() {
    let env = TestEnv::new();
    let out = stdout_of(env.tmda().args(["address"]).env("TMDA_NOW", NOW));
    assert_eq!(out, "testuser-dated-1263369386.df2137@testsite.com\n");
}

#[test]
fn dn_prints_without_newline() {
    let env = TestEnv::new();
    let out = stdout_of(env.tmda().args(["address", "-dn"]).env("TMDA_NOW", NOW));
    assert_eq!(out, "testuser-dated-1263369386.df2137@testsite.com");
}

#[test]
fn timeout_option_and_environment() {
    let env = TestEnv::new();
    assert_eq!(
        stdout_of(env.tmda().args(["address", "-t", "1m"]).env("TMDA_NOW", NOW)),
        "testuser-dated-1262937446.926a58@testsite.com\n"
    );
    assert_eq!(
        stdout_of(
            env.tmda()
                .args(["address", "-d"])
                .env("TMDA_NOW", NOW)
                .env("TMDA_TIMEOUT", "1m")
        ),
        "testuser-dated-1262937446.926a58@testsite.com\n"
    );
    // -t wins over $TMDA_TIMEOUT.
    assert_eq!(
        stdout_of(
            env.tmda()
                .args(["address", "-t", "5d"])
                .env("TMDA_NOW", NOW)
                .env("TMDA_TIMEOUT", "1m")
        ),
        "testuser-dated-1263369386.df2137@testsite.com\n"
    );
}

#[test]
fn dated_timeout_from_config() {
    let env = TestEnv::new();
    env.write_config("USERNAME = 'testuser'\nHOSTNAME = 'testsite.com'\nDATED_TIMEOUT = '1m'\n");
    assert_eq!(
        stdout_of(env.tmda().arg("address").env("TMDA_NOW", NOW)),
        "testuser-dated-1262937446.926a58@testsite.com\n"
    );
}

#[test]
fn sender_and_keyword() {
    let env = TestEnv::new();
    assert_eq!(
        stdout_of(env.tmda().args(["address", "-s", "Sender@REmote.com"])),
        "testuser-sender-23834d@testsite.com\n"
    );
    assert_eq!(
        stdout_of(env.tmda().args(["address", "--keyword", "keywordtest"])),
        "testuser-keyword-keywordtest.243548@testsite.com\n"
    );
    // Keyword addresses lower-case the keyword, so they verify.
    assert_eq!(
        stdout_of(env.tmda().args(["address", "-k", "KeywordTest"])),
        "testuser-keyword-keywordtest.243548@testsite.com\n"
    );
    // -k wins over -s, -s over -d, as in TMDA.
    assert_eq!(
        stdout_of(
            env.tmda()
                .args(["address", "-d", "-s", "Sender@REmote.com", "-k", "keywordtest"])
        ),
        "testuser-keyword-keywordtest.243548@testsite.com\n"
    );
    assert_eq!(
        stdout_of(env.tmda().args(["address", "-d", "-s", "Sender@REmote.com"])),
        "testuser-sender-23834d@testsite.com\n"
    );
}

#[test]
fn base_address_and_delimiter() {
    let env = TestEnv::new();
    env.write_config("RECIPIENT_DELIMITER = '+'\nHMAC_BYTES = 4\n");
    let out = stdout_of(
        env.tmda()
            .args(["address", "-a", "Jason@Example.COM", "-s", "sender@remote.com"]),
    );
    assert!(
        out.starts_with("jason+sender+") && out.ends_with("@example.com\n"),
        "{out}"
    );
    assert_eq!(out.len(), "jason+sender+".len() + 8 + "@example.com\n".len());
}

#[test]
fn environment_supplies_user_and_host() {
    let env = TestEnv::new();
    env.write_config("");
    let out = stdout_of(
        env.tmda()
            .args(["address", "-s", "Sender@REmote.com"])
            .env("TMDAUSER", "testuser")
            .env("TMDAHOST", "testsite.com"),
    );
    assert_eq!(out, "testuser-sender-23834d@testsite.com\n");
}

#[test]
fn config_file_option() {
    let env = TestEnv::new();
    let other = env.write("other.cfg", "USERNAME = 'other'\nHOSTNAME = 'elsewhere.org'\n");
    let out = stdout_of(env.tmda().args(["address", "-s", "x@y.z", "-c"]).arg(&other));
    assert!(
        out.starts_with("other-sender-") && out.ends_with("@elsewhere.org\n"),
        "{out}"
    );
    let out = stdout_of(env.tmda().args(["address", "-s", "x@y.z"]).env("TMDARC", &other));
    assert!(out.starts_with("other-sender-"), "{out}");
}

#[test]
fn global_config_is_read_first() {
    let env = TestEnv::new();
    let global = env.write("tmdarc", "HOSTNAME = 'global.example'\nUSERNAME = 'g'\n");
    env.write_config("USERNAME = 'testuser'\n");
    let out = stdout_of(
        env.tmda()
            .args(["address", "-s", "x@y.z"])
            .env("GLOBAL_TMDARC", &global),
    );
    assert!(
        out.starts_with("testuser-sender-") && out.ends_with("@global.example\n"),
        "{out}"
    );
}

#[test]
fn bad_timeout_is_a_usage_error() {
    let env = TestEnv::new();
    env.tmda()
        .args(["address", "-t", "5x"])
        .assert()
        .code(64)
        .stderr(predicates::str::contains("invalid timeout value \"5x\""));
}

#[test]
fn base_without_at_is_an_error() {
    let env = TestEnv::new();
    env.tmda()
        .args(["address", "-a", "nodomain"])
        .assert()
        .code(65)
        .stderr(predicates::str::contains("\"nodomain\" is not an e-mail address"));
}

#[test]
fn full_version() {
    let env = TestEnv::new();
    env.tmda()
        .args(["address", "-V"])
        .assert()
        .success()
        .stdout(predicates::str::contains("TMDA 1.1.x"));
    env.tmda()
        .args(["address", "--version"])
        .assert()
        .success()
        .stdout(predicates::str::contains(env!("CARGO_PKG_VERSION")));
    env.tmda()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::contains(env!("CARGO_PKG_VERSION")));
}
