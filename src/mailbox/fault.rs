//! Crash points for tests: `TMDA_FAULT_POINT=NAME` makes the process abort (as a crash
//! would: no destructors, no unlocking, no clean-up) when delivery reaches the point NAME.
//! The tests run a delivery in a child process once per point and check that the mailbox
//! holds a whole copy or none. Unset, each point costs one load of a cached value.

use std::sync::OnceLock;

/// The environment variable naming the point to crash at.
pub const VAR: &str = "TMDA_FAULT_POINT";

/// Every point, in the order a delivery passes them (for the tests' matrix).
pub const POINTS: &[&str] = &[
    "maildir-after-create",
    "maildir-mid-write",
    "maildir-after-write",
    "maildir-after-fsync",
    "maildir-after-link",
    "maildir-after-dirsync",
    "mbox-after-dotlock",
    "mbox-after-lock",
    "mbox-after-record",
    "mbox-mid-write",
    "mbox-after-write",
    "mbox-after-fsync",
    "mbox-after-unlock",
];

fn armed() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT.get_or_init(|| std::env::var(VAR).ok()).as_deref()
}

/// Abort the process here if `TMDA_FAULT_POINT` names `point`.
pub fn point(point: &'static str) {
    debug_assert!(POINTS.contains(&point), "unlisted fault point {point}");
    if armed() == Some(point) {
        std::process::abort();
    }
}
