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
    env.tmda()
        .assert()
        .code(64)
        .stderr(contains("Usage: tmda [OPTIONS] [COMMAND]"));
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

/// See: #11. Help and version say the same through every name: `tmda WORD --help`
/// and `tmda-WORD --help` differ only in the name on the usage line.
#[test]
fn r11_help_and_version_are_the_same_through_every_name() {
    let env = TestEnv::new();
    let version = format!("tmda {}\n", env!("CARGO_PKG_VERSION"));
    let full = stdout_of(env.tmda().arg("-V"));
    assert!(
        full.lines().count() > 1,
        "tmda -V gives full version information: {full}"
    );
    assert_eq!(stdout_of(env.tmda().arg("--version")), version);
    for (word, legacy) in [
        ("address", "tmda-address"),
        ("check-address", "tmda-check-address"),
        ("keygen", "tmda-keygen"),
        ("sendmail", "tmda-sendmail"),
        ("ofmipd", "tmda-ofmipd"),
        ("passwd", "tmda-passwd"),
        ("checkauth", "tmda-checkauth"),
    ] {
        for flag in ["--help", "-h"] {
            if word == "sendmail" && flag == "-h" {
                continue;
            }
            let sub = stdout_of(env.tmda().args([word, flag]));
            let old = stdout_of(env.symlink_as(legacy).arg(flag));
            assert!(sub.contains(&format!("Usage: tmda {word}")), "{word} {flag}: {sub}");
            assert_eq!(
                sub.replace(&format!("Usage: tmda {word}"), &format!("Usage: {legacy}")),
                old,
                "tmda {word} {flag} and {legacy} {flag} differ"
            );
        }
        assert_eq!(
            stdout_of(env.tmda().args([word, "--version"])),
            version,
            "tmda {word} --version"
        );
        assert_eq!(
            stdout_of(env.symlink_as(legacy).arg("--version")),
            version,
            "{legacy} --version"
        );
        assert_eq!(stdout_of(env.tmda().args([word, "-V"])), full, "tmda {word} -V");
        assert_eq!(stdout_of(env.symlink_as(legacy).arg("-V")), full, "{legacy} -V");
    }
    // `tmda help sendmail` shows sendmail's options, like `tmda sendmail --help`.
    let help = stdout_of(env.tmda().args(["help", "sendmail"]));
    assert!(help.contains("-t") && help.contains("-O <FILE>"), "{help}");
    assert_eq!(help, stdout_of(env.tmda().args(["sendmail", "--help"])));
}

/// See: #11. tmda-address documents which option wins, under both names.
#[test]
fn r11_address_precedence_is_documented_under_both_names() {
    let env = TestEnv::new();
    for flag in ["-h", "--help"] {
        for out in [
            stdout_of(env.tmda().args(["address", flag])),
            stdout_of(env.symlink_as("tmda-address").arg(flag)),
        ] {
            let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                words.contains("(wins over -s, -d and -t") && words.contains("(wins over -d and -t)"),
                "{flag}: {out}"
            );
        }
    }
}
