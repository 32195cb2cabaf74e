//! Guessing budgets: failed AUTH attempts remembered per client address and per login
//! name, so password guessing is slowed and then refused however an attacker spreads
//! it over connections, while the real user is not locked out by someone else.
//!
//! The rules (issue: an attacker must not be able to lock a user out, and an outage
//! must not make guessing cheaper):
//! - an address over its own budget is refused without asking any source, and that
//!   refusal does not count against the user it named;
//! - a user over its budget is refused only from addresses that have failed recently:
//!   from a clean address the user gets in at the first try;
//! - a refused password counts against both the address and the user; an undecided
//!   attempt (no source could be asked) and a refusal for the user's budget count
//!   against the address only.
//!
//! Both maps are bounded: expired entries go first, then the oldest (`max_entries`).
//! One-session processes (`-1`, one process per connection) share the budget through a
//! small locked file ([`Guard::with_file`]).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How many failures, over how long, and how much to remember.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub window_secs: u64,
    pub per_ip: u32,
    pub per_user: u32,
    /// Entries kept in each of the two maps (addresses, users).
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            window_secs: 600,
            per_ip: 30,
            per_user: 10,
            max_entries: 10_000,
        }
    }
}

/// What to do with an attempt before any source is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Ask,
    /// The client's address is over its budget.
    RefuseAddress,
    /// The user is over its budget and this address has failed recently.
    RefuseUser,
}

/// What an attempt came to, for the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// A source said no: counts against the address and the user.
    Denied,
    /// No source could decide, or the user's budget refused it: the address only.
    AddressOnly,
    /// Refused for the address's own budget: counts nowhere more.
    Nothing,
}

/// Failure times (unix seconds), newest last, at most a budget's worth.
#[derive(Debug, Clone, Default)]
struct Entry {
    times: VecDeque<u64>,
}

impl Entry {
    fn live(&mut self, now: u64, window: u64) -> usize {
        while self.times.front().is_some_and(|&t| t.saturating_add(window) <= now) {
            self.times.pop_front();
        }
        self.times.len()
    }

    fn push(&mut self, now: u64, keep: usize) {
        self.times.push_back(now);
        while self.times.len() > keep.max(1) {
            self.times.pop_front();
        }
    }

    fn last(&self) -> u64 {
        self.times.back().copied().unwrap_or(0)
    }
}

/// The two maps and their limits; no I/O.
#[derive(Debug, Clone)]
pub struct Budget {
    limits: Limits,
    by_ip: HashMap<IpAddr, Entry>,
    by_user: HashMap<String, Entry>,
}

fn count<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Entry>, key: &K, now: u64, window: u64) -> usize {
    match map.get_mut(key) {
        None => 0,
        Some(e) => {
            let n = e.live(now, window);
            if n == 0 {
                map.remove(key);
            }
            n
        }
    }
}

/// Room for one more key: drop expired entries, then the oldest tenth.
fn make_room<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Entry>, now: u64, window: u64, max: usize) {
    if map.len() < max {
        return;
    }
    map.retain(|_, e| e.live(now, window) > 0);
    if map.len() < max {
        return;
    }
    let mut lasts: Vec<u64> = map.values().map(Entry::last).collect();
    let cut = (max / 10).max(1).min(lasts.len() - 1);
    let (_, &mut threshold, _) = lasts.select_nth_unstable(cut);
    map.retain(|_, e| e.last() > threshold);
}

fn add<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Entry>, key: K, now: u64, limits: &Limits, keep: u32) {
    if !map.contains_key(&key) {
        make_room(map, now, limits.window_secs, limits.max_entries);
    }
    map.entry(key).or_default().push(now, keep as usize);
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            by_ip: HashMap::new(),
            by_user: HashMap::new(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Entries held (addresses, users): bounded by `max_entries` each.
    pub fn len(&self) -> (usize, usize) {
        (self.by_ip.len(), self.by_user.len())
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty() && self.by_user.is_empty()
    }

    pub fn check(&mut self, ip: Option<IpAddr>, user: &str, now: u64) -> Decision {
        let w = self.limits.window_secs;
        let ip_failures = ip.map_or(0, |ip| count(&mut self.by_ip, &ip, now, w));
        if ip_failures >= self.limits.per_ip as usize {
            return Decision::RefuseAddress;
        }
        let user_failures = count(&mut self.by_user, &user.to_lowercase(), now, w);
        // An unknown address cannot be told clean: the user's budget applies in full.
        if user_failures >= self.limits.per_user as usize && (ip_failures > 0 || ip.is_none()) {
            return Decision::RefuseUser;
        }
        Decision::Ask
    }

    pub fn record(&mut self, ip: Option<IpAddr>, user: &str, outcome: Outcome, now: u64) {
        let limits = self.limits;
        match outcome {
            Outcome::Accepted => {
                self.by_user.remove(&user.to_lowercase());
            }
            Outcome::Denied => {
                if let Some(ip) = ip {
                    add(&mut self.by_ip, ip, now, &limits, limits.per_ip);
                }
                add(&mut self.by_user, user.to_lowercase(), now, &limits, limits.per_user);
            }
            Outcome::AddressOnly => {
                if let Some(ip) = ip {
                    add(&mut self.by_ip, ip, now, &limits, limits.per_ip);
                }
            }
            Outcome::Nothing => {}
        }
    }

    /// The text form kept in a budget file: one entry a line, `i ADDRESS T...` or
    /// `u NAME T...` (the name %-escaped), expired entries left out.
    pub fn to_text(&mut self, now: u64) -> String {
        let w = self.limits.window_secs;
        let mut out = String::from("tmda-ofmipd budget 1\n");
        let times = |e: &Entry| e.times.iter().map(|t| format!(" {t}")).collect::<String>();
        self.by_ip.retain(|_, e| e.live(now, w) > 0);
        self.by_user.retain(|_, e| e.live(now, w) > 0);
        for (ip, e) in &self.by_ip {
            out.push_str(&format!("i {ip}{}\n", times(e)));
        }
        for (user, e) in &self.by_user {
            out.push_str(&format!("u {}{}\n", escape(user), times(e)));
        }
        out
    }

    /// Read the text form; a damaged line (a crash mid-write) is skipped, and no more
    /// than `max_entries` of each kind are taken.
    pub fn from_text(limits: Limits, text: &str, now: u64) -> Budget {
        let mut b = Budget::new(limits);
        for line in text.lines().skip(1) {
            let mut words = line.split(' ');
            let (Some(kind), Some(key)) = (words.next(), words.next()) else {
                continue;
            };
            let times: Option<VecDeque<u64>> = words.map(|t| t.parse().ok()).collect();
            let Some(mut times) = times else { continue };
            let keep = if kind == "i" { limits.per_ip } else { limits.per_user } as usize;
            while times.len() > keep.max(1) {
                times.pop_front();
            }
            let mut e = Entry { times };
            if e.live(now, limits.window_secs) == 0 {
                continue;
            }
            match kind {
                "i" if b.by_ip.len() < limits.max_entries => {
                    if let Ok(ip) = key.parse() {
                        b.by_ip.insert(ip, e);
                    }
                }
                "u" if b.by_user.len() < limits.max_entries => {
                    if let Some(user) = unescape(key) {
                        b.by_user.insert(user, e);
                    }
                }
                _ => {}
            }
        }
        b
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The budget a server consults: in memory for a daemon, or in a locked file shared by
/// one-session processes.
pub struct Guard {
    mem: Mutex<Budget>,
    file: Option<PathBuf>,
}

/// Budget files hold fewer entries than a daemon's memory: each process reads it whole.
const FILE_ENTRIES: usize = 2_000;

impl Guard {
    pub fn in_memory(limits: Limits) -> Guard {
        Guard {
            mem: Mutex::new(Budget::new(limits)),
            file: None,
        }
    }

    /// Shared through `path` (created 0600; never through a symbolic link).
    pub fn with_file(limits: Limits, path: PathBuf) -> Guard {
        let limits = Limits {
            max_entries: limits.max_entries.min(FILE_ENTRIES),
            ..limits
        };
        Guard {
            mem: Mutex::new(Budget::new(limits)),
            file: Some(path),
        }
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub fn check(&self, ip: Option<IpAddr>, user: &str, now: u64) -> std::io::Result<Decision> {
        let mut mem = self.mem.lock().unwrap_or_else(|e| e.into_inner());
        match &self.file {
            None => Ok(mem.check(ip, user, now)),
            Some(path) => with_locked(path, |text| {
                let mut b = Budget::from_text(mem.limits(), text, now);
                (b.check(ip, user, now), None)
            }),
        }
    }

    pub fn record(&self, ip: Option<IpAddr>, user: &str, outcome: Outcome, now: u64) -> std::io::Result<()> {
        let mut mem = self.mem.lock().unwrap_or_else(|e| e.into_inner());
        match &self.file {
            None => {
                mem.record(ip, user, outcome, now);
                Ok(())
            }
            Some(path) => with_locked(path, |text| {
                let mut b = Budget::from_text(mem.limits(), text, now);
                b.record(ip, user, outcome, now);
                ((), Some(b.to_text(now)))
            }),
        }
    }

    /// Entries held in memory (a daemon's).
    pub fn len(&self) -> (usize, usize) {
        self.mem.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Largest budget file read: a bigger one is damaged or not ours, and read as empty.
const MAX_FILE: u64 = 1 << 20;

/// Open (creating 0600, refusing a symbolic link and another owner's file), lock, read,
/// and write back what `f` returns, if anything.
fn with_locked<T>(path: &Path, f: impl FnOnce(&str) -> (T, Option<String>)) -> std::io::Result<T> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me || meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{}: must be owned by uid {me} and not open to others (mode 0600)",
                path.display()
            ),
        ));
    }
    file.lock()?;
    let mut text = String::new();
    if meta.len() <= MAX_FILE {
        // Not UTF-8 (damaged): read as empty, rewritten at the next record.
        let _ = file.read_to_string(&mut text);
    }
    let (value, write) = f(&text);
    if let Some(new) = write {
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(new.as_bytes())?;
    }
    file.unlock()?;
    Ok(value)
}

/// Where one-session processes keep the shared budget by default: `/run/tmda/` for
/// root-started (global) set-ups, else `$XDG_RUNTIME_DIR`, else `/run/tmda/` when it
/// exists and is ours, else `~/.tmda/`.
pub fn default_file(global: bool, home: &Path) -> PathBuf {
    const NAME: &str = "ofmipd-budget";
    let run = Path::new("/run/tmda");
    if global {
        return run.join(NAME);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join(format!("tmda-{NAME}"));
    }
    if writable_dir(run) {
        return run.join(NAME);
    }
    home.join(".tmda").join(NAME)
}

fn writable_dir(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c is a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn limits() -> Limits {
        Limits {
            window_secs: 600,
            per_ip: 3,
            per_user: 2,
            max_entries: 100,
        }
    }

    #[test]
    fn an_address_over_its_budget_is_refused_without_costing_the_user() {
        let mut b = Budget::new(limits());
        let a = ip("192.0.2.1");
        for user in ["x", "y", "z"] {
            assert_eq!(b.check(a, user, 0), Decision::Ask);
            b.record(a, user, Outcome::Denied, 0);
        }
        assert_eq!(b.check(a, "alice", 1), Decision::RefuseAddress);
        for _ in 0..20 {
            b.record(a, "alice", Outcome::Nothing, 1);
        }
        assert_eq!(b.check(ip("192.0.2.2"), "alice", 1), Decision::Ask);
        assert_eq!(b.check(a, "alice", 601), Decision::Ask, "failures expire");
    }

    #[test]
    fn a_user_over_budget_still_gets_in_from_a_clean_address() {
        let mut b = Budget::new(limits());
        let attacker = ip("192.0.2.1");
        for _ in 0..2 {
            b.record(attacker, "alice", Outcome::Denied, 0);
        }
        assert_eq!(b.check(attacker, "alice", 1), Decision::RefuseUser);
        // The refusal costs the address, not alice.
        b.record(attacker, "alice", Outcome::AddressOnly, 1);
        assert_eq!(b.check(attacker, "bob", 1), Decision::RefuseAddress);
        assert_eq!(b.check(ip("192.0.2.7"), "Alice", 1), Decision::Ask);
        assert_eq!(b.check(None, "alice", 1), Decision::RefuseUser, "unknown address");
        b.record(ip("192.0.2.7"), "alice", Outcome::Accepted, 1);
        assert_eq!(b.check(None, "alice", 1), Decision::Ask);
    }

    #[test]
    fn maps_are_bounded_and_keep_the_newest() {
        let mut b = Budget::new(limits());
        for i in 0..10_000u64 {
            b.record(
                ip(&format!("10.0.{}.{}", i / 256, i % 256)),
                &format!("u{i}"),
                Outcome::Denied,
                i,
            );
            let (ips, users) = b.len();
            assert!(ips <= 100 && users <= 100, "{ips} {users}");
        }
        assert_eq!(b.check(None, "u9999", 10_000), Decision::Ask, "one failure only");
        b.record(None, "u9999", Outcome::Denied, 10_000);
        assert_eq!(b.check(None, "u9999", 10_000), Decision::RefuseUser, "newest kept");
        // When full, expired entries go first, however new.
        let mut b = Budget::new(limits());
        for i in 0..100u64 {
            b.record(ip(&format!("10.1.0.{i}")), &format!("v{i}"), Outcome::Denied, 0);
        }
        assert_eq!(b.len(), (100, 100));
        b.record(ip("10.9.9.9"), "late", Outcome::Denied, 50_000);
        assert_eq!(b.len(), (1, 1));
    }

    #[test]
    fn text_form_round_trips_and_survives_damage() {
        let mut b = Budget::new(limits());
        b.record(ip("2001:db8::1"), "we ird%name", Outcome::Denied, 5);
        b.record(ip("2001:db8::1"), "we ird%name", Outcome::Denied, 6);
        let text = b.to_text(10);
        let mut c = Budget::from_text(limits(), &text, 10);
        assert_eq!(c.check(ip("192.0.2.9"), "we ird%name", 10), Decision::Ask);
        assert_eq!(c.check(None, "we ird%name", 10), Decision::RefuseUser);
        let damaged = format!("{text}u %zz 1\ni not-an-ip 3\nu x 1 2 notanumber\ngarbage\n");
        let d = Budget::from_text(limits(), &damaged, 10);
        assert_eq!(d.len(), (1, 1));
        assert_eq!(Budget::from_text(limits(), &text, 10_000).len(), (0, 0), "expired");
    }

    #[test]
    fn a_file_is_shared_and_refuses_links_and_others_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget");
        let one = Guard::with_file(limits(), path.clone());
        let two = Guard::with_file(limits(), path.clone());
        one.record(ip("192.0.2.1"), "alice", Outcome::Denied, 0).unwrap();
        two.record(ip("192.0.2.1"), "alice", Outcome::Denied, 0).unwrap();
        assert_eq!(one.check(ip("192.0.2.1"), "alice", 1).unwrap(), Decision::RefuseUser);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(Guard::with_file(limits(), link).check(None, "a", 0).is_err());
        assert!(!dir.path().join("elsewhere").exists());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(one.check(None, "a", 0).is_err());
    }
}
