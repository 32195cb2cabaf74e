//! See: #11. Configuration mistakes are visible: an unknown upper-case variable is
//! warned about with the setting probably meant, and USERNAME or HOSTNAME guessed
//! from the login or machine name is said out loud; `--quiet` and TMDA_NO_WARN=1
//! silence both, and `-n` (a program reading the address) keeps them off too.

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

use crate::util::{KEY, NOW, TestEnv};

fn env_with(config: &str) -> TestEnv {
    let env = TestEnv::bare();
    env.write_config(config);
    env.write_key(KEY, 0o600);
    env
}

const MISSPELT: &str = "USERNMAE = 'jason'\nHOSTNAME = 'example.com'\n";

#[test]
fn r11_misspelt_variable_is_warned_about_once_with_the_name_meant() {
    let env = env_with(MISSPELT);
    let out = env
        .tmda()
        .args(["address", "-s", "x@y.org"])
        .env("TMDA_NOW", NOW)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let config = env.path(".tmda/config");
    assert_eq!(
        stderr.lines().next().unwrap(),
        format!(
            "tmda address: warning: {}:1: USERNMAE is not a TMDA setting; did you mean USERNAME?",
            config.display()
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("USERNMAE").count(), 1, "once per run: {stderr}");
    // The address itself is still alone on standard output.
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    // Other commands that read the configuration say it too.
    env.tmda()
        .args(["check-address", "x@y"])
        .assert()
        .code(1)
        .stderr(contains("USERNMAE is not a TMDA setting"));
    env.tmda()
        .args(["sendmail", "-M", "a@b.org", "c@d.org"])
        .assert()
        .success()
        .stderr(contains("tmda sendmail: warning:").and(contains("did you mean USERNAME?")));
    env.symlink_as("tmda-address")
        .arg("-s")
        .arg("x@y.org")
        .assert()
        .success()
        .stderr(contains("tmda-address: warning:"));
}

#[test]
fn r11_tmda_variables_tmda_does_not_use_are_not_warned_about() {
    // The incoming side of a configuration shared with a TMDA server, TMDA's own
    // constants, and a user's own lower-case helpers.
    let env = env_with(
        "USERNAME = 'jason'\nHOSTNAME = 'example.com'\nACTION_INCOMING = 'confirm'\nPENDING_DIR = '~/.tmda/pending'\n\
         DELIVERY = '~/Maildir/'\nCONFIRM_APPEND = '~/.tmda/lists/confirmed'\nTEMPLATE_DIR = '~/.tmda/templates'\n\
         ADDED_HEADERS_SERVER = {}\nPURGED_HEADERS_SERVER = []\nSUMMARY_HEADERS = []\nmy_domain = 'example.org'\n\
         SMTPSSL_VERIFY = True\n",
    );
    env.tmda()
        .arg("address")
        .env("TMDA_NOW", NOW)
        .assert()
        .success()
        .stderr("");
}

#[test]
fn r11_quiet_no_warn_and_no_newline_silence_the_warnings() {
    let env = env_with(MISSPELT);
    for (args, var) in [
        (&["address", "--quiet"][..], None),
        (&["address"], Some("1")),
        (&["address", "-dn"], None),
        (&["check-address", "--quiet", "x@y"], None),
    ] {
        let mut cmd = env.tmda();
        cmd.args(args).env("TMDA_NOW", NOW);
        if let Some(v) = var {
            cmd.env("TMDA_NO_WARN", v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    env.tmda()
        .args(["sendmail", "--quiet", "-M", "a@b.org", "c@d.org"])
        .assert()
        .success()
        .stderr("");
    // TMDA_NO_WARN=0 does not silence them.
    env.tmda()
        .arg("address")
        .env("TMDA_NO_WARN", "0")
        .assert()
        .success()
        .stderr(contains("USERNMAE"));
}

#[test]
fn r11_guessed_username_and_hostname_are_said() {
    let env = env_with("# no USERNAME, no HOSTNAME\n");
    let out = env
        .tmda()
        .arg("address")
        .env("TMDA_NOW", NOW)
        .env("USER", "jason")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let host = tmda::config::fqdn();
    assert_eq!(
        stderr,
        format!(
            "tmda address: warning: USERNAME is not set; using jason ($USER, the login name)\n\
             tmda address: warning: HOSTNAME is not set; using {host} (this machine's name)\n"
        )
    );
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("jason-dated-"));
    // Set through TMDA's own environment variables, they are choices: nothing to say.
    env.tmda()
        .arg("address")
        .env("TMDAUSER", "jason")
        .env("TMDAHOST", "example.com")
        .assert()
        .success()
        .stderr("");
    // With -a the address is given: USERNAME and HOSTNAME are not used.
    env.tmda()
        .args(["address", "-a", "j@example.com"])
        .assert()
        .success()
        .stderr("");
    // check-address says so only when asked (-v), with the key file it used.
    env.tmda()
        .args(["check-address", "x@y"])
        .env("USER", "jason")
        .assert()
        .code(1)
        .stderr("");
    env.tmda()
        .args(["check-address", "-v", "x@y"])
        .env("USER", "jason")
        .assert()
        .code(1)
        .stderr(
            contains(format!("key: {}", env.path(".tmda/crypt_key").display()))
                .and(contains("USERNAME is not set; using jason"))
                .and(contains(format!("HOSTNAME is not set; using {host}"))),
        );
}
