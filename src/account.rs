//! System accounts: looking one up in the password database, and becoming it in a child
//! process. Shared by the root launcher (which decides whose identity a child takes) and
//! by delivery (which finds a user's configuration).

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A system account, from the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub groups: Vec<u32>,
}

impl Account {
    /// Look a user up (getpwnam_r), with the supplementary groups (getgrouplist).
    pub fn lookup(name: &str) -> Option<Account> {
        let c = CString::new(name).ok()?;
        let (uid, gid, home) = crate::os::passwd_entry(
            // SAFETY: `c` is NUL-terminated and outlives the call; passwd_entry passes valid
            // out-pointers and a buffer of `len` bytes.
            |pw, buf, len, res| unsafe { libc::getpwnam_r(c.as_ptr(), pw, buf, len, res) },
            |pw| {
                // SAFETY: pw_dir of the entry passwd_entry hands over, read inside it.
                let home = unsafe { crate::os::passwd_string(pw.pw_dir) };
                Some((pw.pw_uid, pw.pw_gid, home.unwrap_or_default()))
            },
        )?;
        let mut groups = vec![0 as libc::gid_t; 256];
        let mut n = groups.len() as libc::c_int;
        // SAFETY: `c` is NUL-terminated; `groups` has room for `n` entries.
        if unsafe { libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut n) } < 0 {
            n = 0;
        }
        groups.truncate(n.max(0) as usize);
        if groups.is_empty() {
            groups.push(gid);
        }
        Some(Account {
            name: name.to_string(),
            uid,
            gid,
            home: PathBuf::from(home),
            groups,
        })
    }

    /// [`Account::lookup`] remembered for [`ACCOUNT_CACHE_TTL`] (found or not): a name
    /// service lookup (files, systemd-userdb, LDAP…) costs far more than tagging a
    /// message. Only personal mode uses it, where the answer just picks a config file;
    /// global mode, which sets uids from it, always asks afresh.
    pub fn lookup_cached(name: &str) -> Option<Account> {
        if let Some(hit) = Account::remembered(name) {
            return hit;
        }
        let now = Instant::now();
        let found = Account::lookup(name);
        if let Ok(mut c) = ACCOUNTS.lock() {
            let map = c.get_or_insert_with(Default::default);
            // Bounded: many distinct (e.g. guessed) names just start it over.
            if map.len() >= 4096 {
                map.clear();
            }
            map.insert(name.to_string(), (now, found.clone()));
        }
        found
    }
}

impl Account {
    /// The answer [`Account::lookup_cached`] remembers, without asking the name service
    /// (`None`: nothing fresh is remembered).
    pub fn remembered(name: &str) -> Option<Option<Account>> {
        let (at, hit) = ACCOUNTS.lock().ok().and_then(|c| c.as_ref()?.get(name).cloned())?;
        (at.elapsed() < ACCOUNT_CACHE_TTL).then_some(hit)
    }
}

type Remembered = std::collections::HashMap<String, (Instant, Option<Account>)>;
static ACCOUNTS: std::sync::Mutex<Option<Remembered>> = std::sync::Mutex::new(None);

/// How long personal mode trusts a remembered account lookup.
pub const ACCOUNT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The system user in charge of `address`'s domain in qmail's virtualdomains file
/// (`domain:user`, `.domain:user` for subdomains, `user@domain:user`), as TMDA read it.
pub fn virtual_domain_user(file: &Path, address: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let domain = address.rsplit_once('@')?.1.to_lowercase();
    let address = address.to_lowercase();
    for line in text.lines() {
        let l = line.trim().to_lowercase();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((vdomain, prepend)) = l.split_once(':') else {
            continue;
        };
        let matched =
            vdomain == domain || vdomain == address || (vdomain.starts_with('.') && domain.ends_with(vdomain));
        if matched {
            return Some(prepend.trim().to_string());
        }
    }
    None
}

/// setgroups, setgid, setuid in the child before exec (the launcher's children, which
/// start as root). std's `Command::uid` would run after `pre_exec`, and
/// `Command::groups` is unstable, so this is done by hand. The child also changes into
/// the user's home there: std would `chdir` before the hook runs, while still root,
/// which may not enter a home on a root-squashed network file system.
pub fn become_user(cmd: &mut Command, a: &Account) {
    let (uid, gid, groups) = (a.uid, a.gid, a.groups.clone());
    let home = CString::new(a.home.as_os_str().as_encoded_bytes()).unwrap_or_else(|_| c"/".into());
    // SAFETY: only async-signal-safe calls between fork and exec; the group list was
    // computed in the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setuid(0) == 0 {
                // Root could be regained: refuse to run anything.
                return Err(std::io::Error::from_raw_os_error(libc::EPERM));
            }
            let _ = libc::chdir(home.as_ptr());
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_lookup() {
        let root = Account::lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0));
        assert!(Account::lookup("no-such-user-xyz").is_none());
        assert!(Account::lookup("bad\0name").is_none());
    }

    #[test]
    fn virtualdomains_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("virtualdomains");
        std::fs::write(
            &f,
            "# qmail
example.com:vpopmail
.corp.example:corpuser
boss@other.org:bossuser
",
        )
        .unwrap();
        assert_eq!(virtual_domain_user(&f, "Jo@Example.COM").as_deref(), Some("vpopmail"));
        assert_eq!(
            virtual_domain_user(&f, "a@mail.corp.example").as_deref(),
            Some("corpuser")
        );
        assert_eq!(virtual_domain_user(&f, "boss@other.org").as_deref(), Some("bossuser"));
        assert_eq!(virtual_domain_user(&f, "x@other.org"), None);
        assert_eq!(virtual_domain_user(&f, "no-domain"), None);
    }
}
