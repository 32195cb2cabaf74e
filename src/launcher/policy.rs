//! What the launcher decides, apart from any process: which accounts it serves
//! ([`check_account`]), which login names and values it passes on, the programs it
//! runs ([`sendmail_plan`], [`vhome_plan`]), the decision on a request ([`decide`]) and
//! its limits on PAM checks ([`PamLimiter`]).

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::wire::{Answer, Request, Submission};
use super::{PamLimits, Setup};
use crate::account::Account;

/// The first uid of ordinary accounts: `UID_MIN` in /etc/login.defs, else 1000.
pub fn default_min_uid() -> u32 {
    std::fs::read_to_string("/etc/login.defs")
        .ok()
        .and_then(|t| uid_min(&t))
        .unwrap_or(1000)
}

/// `UID_MIN` from login.defs text.
fn uid_min(text: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("UID_MIN")).then(|| words.next()?.parse().ok())?
    })
}

/// Why a request is not served, and whether asking again later may work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub kind: RefusalKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Never for this request (not an ordinary account, a malformed request...).
    Permanent,
    /// Not now (a limit was reached).
    Transient,
    /// The launcher's configuration is broken (a sender map that no longer parses).
    Config,
}

impl Refusal {
    pub(super) fn permanent(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            kind: RefusalKind::Permanent,
        }
    }
    pub(super) fn transient(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            kind: RefusalKind::Transient,
        }
    }
    pub(super) fn config(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            kind: RefusalKind::Config,
        }
    }
    pub(super) fn answer(&self) -> Answer {
        let text = self.reason.clone();
        match self.kind {
            RefusalKind::Permanent => Answer::Refused(text),
            RefusalKind::Transient => Answer::Failed(text),
            RefusalKind::Config => Answer::ConfigError(text),
        }
    }
}

/// Whether the launcher serves `a`: an ordinary account. System accounts are told by
/// uid (below `min_uid`, or 65534, the kernel's overflow uid that `nobody` has), and
/// any account whose primary group is root's is refused. The login shell is not
/// looked at: mail-only accounts commonly have nologin.
pub fn check_account(setup: &Setup, a: &Account) -> Result<(), Refusal> {
    let why = if a.uid == 0 {
        "it is root".to_string()
    } else if a.uid < setup.min_uid {
        format!(
            "uid {} is a system account's (below --min-uid {})",
            a.uid, setup.min_uid
        )
    } else if a.uid == 65534 {
        "uid 65534 is nobody's".into()
    } else if a.gid == 0 {
        "its primary group is root's".into()
    } else if setup.deny_uids.contains(&a.uid) {
        "it is the daemon's own account".into()
    } else if !home_exists(&a.home) {
        format!("its home {} does not exist", a.home.display())
    } else {
        return Ok(());
    };
    Err(Refusal::permanent(format!(
        "account {} is not served: {why}",
        crate::exit::quote(&a.name)
    )))
}

/// An absolute path to a directory. One root cannot look into (a root-squashed network
/// file system) counts as existing: the child enters it as the user.
pub(super) fn home_exists(home: &Path) -> bool {
    home.is_absolute()
        && match std::fs::metadata(home) {
            Ok(m) => m.is_dir(),
            Err(e) => e.kind() == io::ErrorKind::PermissionDenied,
        }
}

/// A login name that can go into an argument, a variable or a path component without
/// becoming an option or leaving a directory.
pub fn check_login(login: &str) -> Result<(), Refusal> {
    let bad = if login.is_empty() {
        "it is empty"
    } else if login.starts_with('-') {
        "it begins with '-'"
    } else if login.starts_with('.') {
        "it begins with '.'"
    } else if login.contains('/') {
        "it contains '/'"
    } else if login.chars().any(|c| c.is_control() || c.is_whitespace()) {
        "it contains a control or space character"
    } else {
        return Ok(());
    };
    Err(Refusal::permanent(format!(
        "login name {} is not acceptable: {bad}",
        crate::exit::quote(login)
    )))
}

/// No control characters (CR, LF, NUL...) in a value passed on to a child.
fn check_value(what: &str, v: &str) -> Result<(), Refusal> {
    if v.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Refusal::permanent(format!("the {what} contains a control character")));
    }
    Ok(())
}

fn check_submission(s: &Submission) -> Result<(), Refusal> {
    check_login(&s.login)?;
    check_value("envelope sender", &s.mail_from)?;
    check_value("Received text", &s.received)?;
    if s.recipients.is_empty() {
        return Err(Refusal::permanent("no recipients"));
    }
    for r in &s.recipients {
        if r.is_empty() {
            return Err(Refusal::permanent("an empty recipient"));
        }
        check_value("recipient", r)?;
    }
    Ok(())
}

/// A program to run as an account, entirely decided by the launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The whole environment (nothing is inherited), HOME included.
    pub env: Vec<(OsString, OsString)>,
    /// Whose uid, gid and groups; its home is HOME and the working directory.
    pub account: Account,
}

const CHILD_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// `tmda sendmail -- RECIPIENTS` as `account` for `sub`; `allowed_senders`: with
/// `--restrict-sender`, what the sender map gives the login beyond its own addresses.
pub fn sendmail_plan(setup: &Setup, account: &Account, sub: &Submission, allowed_senders: Option<&[String]>) -> Plan {
    let mut args: Vec<OsString> = vec!["sendmail".into(), "--".into()];
    args.extend(sub.recipients.iter().map(OsString::from));
    let mut env: Vec<(OsString, OsString)> = [
        ("HOME", account.home.as_os_str()),
        ("PATH", CHILD_PATH.as_ref()),
        ("USER", account.name.as_ref()),
        ("LOGNAME", account.name.as_ref()),
        ("LOGIN", sub.login.as_ref()),
        ("TMDA_OFMIPD_RECEIVED", sub.received.as_ref()),
        ("TMDA_OFMIPD_SMTPUTF8", if sub.smtputf8 { "1" } else { "0" }.as_ref()),
    ]
    .iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    if let Some(dir) = &setup.configdir {
        // check_login made the login one path component.
        env.push(("TMDA_OFMIPD_CONFIG".into(), dir.join(&sub.login).join("config").into()));
    }
    if let Some(allowed) = allowed_senders {
        env.push(("TMDA_OFMIPD_RESTRICT_SENDER".into(), "1".into()));
        env.push(("TMDA_OFMIPD_ALLOWED_SENDERS".into(), allowed.join(",").into()));
    }
    // Who is told, and by whom, when only some recipients got the message (and the
    // sender --pure-proxy and --restrict-sender need).
    env.push(("TMDA_OFMIPD_MAIL_FROM".into(), sub.mail_from.clone().into()));
    env.push(("TMDA_OFMIPD_HOSTNAME".into(), setup.hostname.clone().into()));
    if setup.pure_proxy {
        env.push(("TMDA_OFMIPD_PURE_PROXY".into(), "1".into()));
        env.push(("TMDA_SENDMAIL_PROGRAM".into(), setup.pass_through.clone().into()));
    }
    Plan {
        program: setup.tmda.clone(),
        args,
        env,
        account: account.clone(),
    }
}

/// `--vhome-script USER DOMAIN` as the domain's account.
pub fn vhome_plan(script: &Path, account: &Account, user: &str, domain: &str) -> Plan {
    Plan {
        program: script.to_path_buf(),
        args: vec![user.into(), domain.into()],
        env: vec![
            ("HOME".into(), account.home.clone().into()),
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ],
        account: account.clone(),
    }
}

/// A login `user@domain` split for the vhome script, whose arguments are positional:
/// neither part may begin with '-' (an option) or be empty.
pub fn vhome_args(login: &str) -> Option<(&str, &str)> {
    let (u, d) = login.split_once('@')?;
    let ok = |s: &str| !s.is_empty() && !s.starts_with('-') && !s.contains('@');
    (ok(u) && ok(d)).then_some((u, d))
}

/// An accepted request, ready for its handler.
#[derive(Debug)]
pub(super) enum Job {
    Deliver {
        account: Account,
        sub: Submission,
        /// For a virtual domain: the vhome script's (user, domain) arguments.
        virtual_user: Option<(String, String)>,
        /// `--restrict-sender`: the sender map's addresses for the login.
        allowed_senders: Option<Vec<String>>,
    },
    Pam {
        service: String,
        login: String,
        password: String,
    },
}

/// Decide on a request from its body and the number of descriptors sent with it.
/// Limits are applied by the caller ([`State::admit`]).
pub(super) fn decide(
    setup: &Setup,
    lookup: &dyn Fn(&str) -> Option<Account>,
    req: Result<Request, &'static str>,
    fds: usize,
) -> Result<Job, Refusal> {
    let req = req.map_err(|e| Refusal::permanent(format!("malformed request: {e}")))?;
    if fds != req.fds() {
        return Err(Refusal::permanent(format!(
            "malformed request: {fds} descriptors instead of {}",
            req.fds()
        )));
    }
    match req {
        Request::Deliver(sub) => {
            check_submission(&sub)?;
            let (name, virtual_user) = match &setup.vhome_script {
                None => (sub.login.clone(), None),
                Some(_) => {
                    let Some((u, d)) = vhome_args(&sub.login) else {
                        return Err(Refusal::permanent(format!(
                            "{} is not a virtual user@domain",
                            crate::exit::quote(&sub.login)
                        )));
                    };
                    let Some(owner) = crate::account::virtual_domain_user(&setup.vdomains, &sub.login) else {
                        return Err(Refusal::permanent(format!(
                            "{} is not in a virtual domain of {}",
                            crate::exit::quote(&sub.login),
                            setup.vdomains.display()
                        )));
                    };
                    (owner, Some((u.to_string(), d.to_string())))
                }
            };
            let account = lookup(&name).ok_or_else(|| {
                Refusal::permanent(format!("no system account for user {}", crate::exit::quote(&name)))
            })?;
            check_account(setup, &account)?;
            let allowed_senders = match &setup.restrict_sender {
                None => None,
                Some(policy) => Some(policy.allowed_for(&sub.login).map_err(Refusal::config)?),
            };
            Ok(Job::Deliver {
                account,
                sub,
                virtual_user,
                allowed_senders,
            })
        }
        Request::PamCheck {
            service,
            login,
            password,
        } => {
            if !setup.pam_services.contains(&service) {
                return Err(Refusal::permanent(format!(
                    "PAM service {} is not configured",
                    crate::exit::quote(&service)
                )));
            }
            check_login(&login)?;
            if password.contains('\0') {
                return Err(Refusal::permanent("the password contains NUL"));
            }
            let account = lookup(&login).ok_or_else(|| {
                Refusal::permanent(format!("no system account for user {}", crate::exit::quote(&login)))
            })?;
            check_account(setup, &account)?;
            Ok(Job::Pam {
                service,
                login,
                password,
            })
        }
    }
}

/// The launcher's record of PAM checks, for its limits.
#[derive(Debug)]
pub struct PamLimiter {
    pub(super) limits: PamLimits,
    /// Per login, when its checks started that have failed or not finished yet.
    failures: HashMap<String, VecDeque<Instant>>,
    /// When recent checks of all logins started.
    started: VecDeque<Instant>,
    running: usize,
}

impl PamLimiter {
    pub fn new(limits: PamLimits) -> PamLimiter {
        PamLimiter {
            limits,
            failures: HashMap::new(),
            started: VecDeque::new(),
            running: 0,
        }
    }

    fn forget_before(&mut self, now: Instant) {
        let l = self.limits;
        while self
            .started
            .front()
            .is_some_and(|t| now.duration_since(*t) >= l.global_window)
        {
            self.started.pop_front();
        }
        self.failures.retain(|_, q| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= l.per_user_window) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }

    /// Start a check for `login` at `now`, or say why not. A started check counts as a
    /// failure until [`PamLimiter::finished`] says it succeeded, so guesses running side
    /// by side count too.
    pub fn admit(&mut self, login: &str, now: Instant) -> Result<(), Refusal> {
        self.forget_before(now);
        let l = self.limits;
        if self.running >= l.concurrent {
            return Err(Refusal::transient(format!(
                "{} PAM checks are already running",
                l.concurrent
            )));
        }
        if self.started.len() >= l.global {
            return Err(Refusal::transient(format!(
                "more than {} PAM checks in {} seconds",
                l.global,
                l.global_window.as_secs()
            )));
        }
        if self.failures.get(login).is_some_and(|q| q.len() >= l.per_user_failures) {
            return Err(Refusal::transient(format!(
                "{} failed PAM checks for this login in {} seconds",
                l.per_user_failures,
                l.per_user_window.as_secs()
            )));
        }
        self.started.push_back(now);
        self.failures.entry(login.to_string()).or_default().push_back(now);
        self.running += 1;
        Ok(())
    }

    /// A check admitted at `started` is over; `accepted`: the password was right.
    pub fn finished(&mut self, login: &str, started: Instant, accepted: bool) {
        self.running = self.running.saturating_sub(1);
        if accepted
            && let Some(q) = self.failures.get_mut(login)
            && let Some(i) = q.iter().position(|t| *t == started)
        {
            q.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn setup(dir: &Path) -> Setup {
        Setup {
            tmda: "/usr/local/bin/tmda".into(),
            vhome_script: None,
            vdomains: dir.join("virtualdomains"),
            configdir: None,
            pure_proxy: false,
            pass_through: "/usr/sbin/sendmail".into(),
            restrict_sender: None,
            timeout: Duration::from_secs(5),
            pam_services: vec!["tmda-test".into()],
            pam: PamLimits::default(),
            min_uid: 1000,
            deny_uids: vec![999],
            hostname: "mx.test".into(),
        }
    }

    fn account(name: &str, uid: u32, home: &Path) -> Account {
        Account {
            name: name.into(),
            uid,
            gid: uid,
            home: home.into(),
            groups: vec![uid],
        }
    }

    fn sub(login: &str) -> Submission {
        Submission {
            login: login.into(),
            mail_from: "a@example.com".into(),
            recipients: vec!["b@example.org".into()],
            received: "from x by y; date".into(),
            smtputf8: false,
        }
    }

    #[test]
    fn uid_min_from_login_defs() {
        let text = "# comment\nMAIL_DIR /var/mail\n#UID_MIN 5\nUID_MIN\t\t\t 1000\nUID_MAX 60000\n";
        assert_eq!(uid_min(text), Some(1000));
        assert_eq!(uid_min("UID_MIN 500"), Some(500));
        assert_eq!(uid_min("UID_MAX 60000\n"), None);
        assert_eq!(uid_min("UID_MIN lots\n"), None);
    }

    #[test]
    fn only_ordinary_accounts_are_served() {
        let d = tempfile::tempdir().unwrap();
        let s = setup(d.path());
        let home = d.path();
        assert!(check_account(&s, &account("alice", 1001, home)).is_ok());
        let mut in_root_group = account("carol", 1002, home);
        in_root_group.gid = 0;
        for (a, why) in [
            (account("root", 0, home), "root"),
            (account("daemon", 1, home), "system account"),
            (account("postgres", 108, home), "system account"),
            (account("nobody", 65534, home), "nobody"),
            (account("tofmipd", 999, home), "system account"),
            (in_root_group, "root's"),
            (account("bob", 1003, &home.join("missing")), "does not exist"),
            (account("eve", 1004, Path::new("relative")), "does not exist"),
        ] {
            let r = check_account(&s, &a).unwrap_err();
            assert!(
                r.reason.contains(why) && r.kind == RefusalKind::Permanent,
                "{}: {r:?}",
                a.name
            );
        }
        let mut s = s;
        s.min_uid = 100;
        s.deny_uids = vec![108];
        assert!(
            check_account(&s, &account("postgres", 108, home))
                .unwrap_err()
                .reason
                .contains("own account")
        );
        assert!(check_account(&s, &account("svc", 150, home)).is_ok());
    }

    #[test]
    fn logins_never_become_options_or_paths() {
        for ok in ["alice", "alice@example.com", "a.b", "user-1", "O'Brien"] {
            assert!(check_login(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-oQ/tmp", "--help", ".", "..", ".hidden", "a/b", "/etc", "a b", "a\nb", "a\0b", "a\tb",
        ] {
            assert!(check_login(bad).is_err(), "{bad:?}");
        }
        assert_eq!(vhome_args("virt@virtual.test"), Some(("virt", "virtual.test")));
        for bad in ["plain", "-x@d", "u@-d", "@d", "u@", "a@b@c"] {
            assert_eq!(vhome_args(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_launcher_builds_argv_and_environment_itself() {
        let d = tempfile::tempdir().unwrap();
        let mut s = setup(d.path());
        s.configdir = Some("/etc/tmda/users".into());
        s.pure_proxy = true;
        let a = account("alice", 1001, d.path());
        let mut m = sub("alice");
        m.recipients = vec!["-oQ/tmp/x@example.org".into(), "--help".into(), "c@example.org".into()];
        let plan = sendmail_plan(&s, &a, &m, None);
        assert_eq!(plan.program, PathBuf::from("/usr/local/bin/tmda"));
        assert_eq!(
            plan.args,
            ["sendmail", "--", "-oQ/tmp/x@example.org", "--help", "c@example.org"]
                .map(OsString::from)
                .to_vec(),
            "recipients only ever after --"
        );
        let names: Vec<&str> = plan.env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "HOME",
                "PATH",
                "USER",
                "LOGNAME",
                "LOGIN",
                "TMDA_OFMIPD_RECEIVED",
                "TMDA_OFMIPD_SMTPUTF8",
                "TMDA_OFMIPD_CONFIG",
                "TMDA_OFMIPD_MAIL_FROM",
                "TMDA_OFMIPD_HOSTNAME",
                "TMDA_OFMIPD_PURE_PROXY",
                "TMDA_SENDMAIL_PROGRAM"
            ]
        );
        let var = |n: &str| plan.env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(
            var("TMDA_OFMIPD_CONFIG"),
            OsString::from("/etc/tmda/users/alice/config")
        );
        assert_eq!(var("TMDA_SENDMAIL_PROGRAM"), OsString::from("/usr/sbin/sendmail"));
        assert_eq!(var("HOME"), d.path().as_os_str());
        // --restrict-sender: the map's addresses for the login, from the launcher's reading.
        let allowed = ["a@x.org".to_string(), "@lists.example".to_string()];
        let plan = sendmail_plan(&s, &a, &m, Some(&allowed));
        let var = |n: &str| plan.env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(var("TMDA_OFMIPD_RESTRICT_SENDER"), Some("1".into()));
        assert_eq!(
            var("TMDA_OFMIPD_ALLOWED_SENDERS"),
            Some("a@x.org,@lists.example".into())
        );
        assert_eq!(plan.env.iter().filter(|(k, _)| k == "TMDA_OFMIPD_MAIL_FROM").count(), 1);
    }

    #[test]
    fn the_sender_map_is_read_by_the_launcher() {
        let d = tempfile::tempdir().unwrap();
        let map = d.path().join("senders");
        std::fs::write(&map, "alice a@x.org\n").unwrap();
        let mut s = setup(d.path());
        s.restrict_sender = Some(std::sync::Arc::new(crate::sender_policy::SenderPolicy::new(Some(
            map.clone(),
        ))));
        let home = d.path().to_path_buf();
        let lookup = move |n: &str| (n == "alice").then(|| account("alice", 1001, &home));
        let go = || decide(&s, &lookup, Ok(Request::Deliver(sub("alice"))), 3);
        match go() {
            Ok(Job::Deliver { allowed_senders, .. }) => assert_eq!(allowed_senders, Some(vec!["a@x.org".into()])),
            other => panic!("{other:?}"),
        }
        std::fs::write(&map, "alice not-an-address\n").unwrap();
        let r = go().unwrap_err();
        assert_eq!(r.kind, RefusalKind::Config, "{r:?}");
        assert_eq!(r.answer(), Answer::ConfigError(r.reason.clone()));
    }

    #[test]
    fn decisions() {
        let d = tempfile::tempdir().unwrap();
        let s = setup(d.path());
        let home = d.path().to_path_buf();
        let lookup = move |n: &str| match n {
            "alice" => Some(account("alice", 1001, &home)),
            "daemon" => Some(account("daemon", 1, &home)),
            "root" => Some(account("root", 0, &home)),
            _ => None,
        };
        let deliver = |m: Submission| Ok(Request::Deliver(m));
        assert!(matches!(
            decide(&s, &lookup, deliver(sub("alice")), 3),
            Ok(Job::Deliver { .. })
        ));
        let refused = |r: Result<Request, &'static str>, fds: usize| decide(&s, &lookup, r, fds).unwrap_err().reason;
        assert!(refused(deliver(sub("alice")), 4).contains("descriptors"));
        assert!(refused(deliver(sub("daemon")), 3).contains("system account"));
        assert!(refused(deliver(sub("root")), 3).contains("root"));
        assert!(refused(deliver(sub("ghost")), 3).contains("no system account"));
        assert!(refused(deliver(sub("-oX")), 3).contains("begins with '-'"));
        let mut m = sub("alice");
        m.received = "x\r\nBcc: everyone@example.org".into();
        assert!(refused(deliver(m), 3).contains("control character"));
        let mut m = sub("alice");
        m.recipients = vec![];
        assert!(refused(deliver(m), 3).contains("no recipients"));
        assert!(refused(Err("unknown request kind"), 4).contains("malformed"));
        let pam = |service: &str, login: &str| {
            Ok(Request::PamCheck {
                service: service.into(),
                login: login.into(),
                password: "secret".into(),
            })
        };
        assert!(matches!(
            decide(&s, &lookup, pam("tmda-test", "alice"), 1),
            Ok(Job::Pam { .. })
        ));
        assert!(refused(pam("login", "alice"), 1).contains("not configured"));
        assert!(refused(pam("tmda-test", "root"), 1).contains("root"));
        assert!(refused(pam("tmda-test", "daemon"), 1).contains("system account"));
        assert!(!refused(pam("tmda-test", "root"), 1).contains("secret"));
    }

    #[test]
    fn virtual_domains_are_decided_by_the_launcher() {
        let d = tempfile::tempdir().unwrap();
        let mut s = setup(d.path());
        s.vhome_script = Some("/usr/local/bin/vhome".into());
        std::fs::write(&s.vdomains, "virtual.test:vpop\nsys.test:daemon\n").unwrap();
        let home = d.path().to_path_buf();
        let lookup = move |n: &str| match n {
            "vpop" => Some(account("vpop", 1005, &home)),
            "daemon" => Some(account("daemon", 1, &home)),
            _ => None,
        };
        let go = |login: &str| decide(&s, &lookup, Ok(Request::Deliver(sub(login))), 3);
        match go("virt@virtual.test") {
            Ok(Job::Deliver {
                account, virtual_user, ..
            }) => {
                assert_eq!(account.name, "vpop");
                assert_eq!(virtual_user, Some(("virt".into(), "virtual.test".into())));
            }
            other => panic!("{other:?}"),
        }
        assert!(go("x@sys.test").unwrap_err().reason.contains("system account"));
        assert!(
            go("stray@elsewhere.test")
                .unwrap_err()
                .reason
                .contains("not in a virtual domain")
        );
        assert!(go("-x@virtual.test").unwrap_err().reason.contains("begins with '-'"));
        assert!(go("alice").unwrap_err().reason.contains("not a virtual user"));
        let a = account("vpop", 1005, d.path());
        let plan = vhome_plan(Path::new("/usr/local/bin/vhome"), &a, "virt", "virtual.test");
        assert_eq!(plan.args, vec![OsString::from("virt"), OsString::from("virtual.test")]);
    }

    #[test]
    fn pam_limits() {
        let l = PamLimits {
            per_user_failures: 3,
            per_user_window: Duration::from_secs(600),
            global: 10,
            global_window: Duration::from_secs(60),
            concurrent: 2,
            timeout: Duration::from_secs(10),
        };
        let mut p = PamLimiter::new(l);
        let t0 = Instant::now();
        // Failures for one login: three, then refused until they are old enough.
        for i in 0..3 {
            let t = t0 + Duration::from_secs(i);
            p.admit("alice", t).unwrap();
            p.finished("alice", t, false);
        }
        let r = p.admit("alice", t0 + Duration::from_secs(4)).unwrap_err();
        assert!(
            r.kind == RefusalKind::Transient && r.reason.contains("failed PAM checks"),
            "{r:?}"
        );
        p.admit("bob", t0 + Duration::from_secs(4))
            .expect("another login is not affected");
        p.finished("bob", t0 + Duration::from_secs(4), true);
        p.admit("alice", t0 + Duration::from_secs(601))
            .expect("the first failure is forgotten");
        // Successes do not count against the login; two at once at most.
        let mut p = PamLimiter::new(l);
        for i in 0..5 {
            let t = t0 + Duration::from_secs(i);
            p.admit("carol", t).unwrap();
            p.finished("carol", t, true);
        }
        p.admit("carol", t0 + Duration::from_secs(5)).unwrap();
        p.admit("dave", t0 + Duration::from_secs(5)).unwrap();
        assert!(
            p.admit("erin", t0 + Duration::from_secs(5))
                .unwrap_err()
                .reason
                .contains("running")
        );
        p.finished("dave", t0 + Duration::from_secs(5), true);
        p.finished("carol", t0 + Duration::from_secs(5), true);
        // Ten checks a minute in all.
        for i in 0..3 {
            let t = t0 + Duration::from_secs(6 + i);
            p.admit("frank", t).unwrap();
            p.finished("frank", t, true);
        }
        let r = p.admit("gina", t0 + Duration::from_secs(20)).unwrap_err();
        assert!(r.reason.contains("in 60 seconds"), "{r:?}");
        p.admit("gina", t0 + Duration::from_secs(61))
            .expect("the window moved on");
    }
}
