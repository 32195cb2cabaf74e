//! The one place that reads the wall clock.
//!
//! Tests (and users reproducing a problem) can pin "now" with `TMDA_NOW=<unix seconds>`,
//! so that dated addresses, Date headers and Message-IDs are deterministic. An unparsable
//! value is an error rather than being ignored, so a typo never silently uses the real time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variable that pins the clock (seconds since the epoch).
pub const NOW_VAR: &str = "TMDA_NOW";

/// `TMDA_NOW` is set to something that is not a time.
#[derive(Debug, thiserror::Error)]
#[error("{NOW_VAR} must be a whole number of seconds since the epoch, not {}", crate::exit::quote(.0))]
pub struct BadNow(pub String);

/// Seconds since the epoch, honouring `TMDA_NOW`.
pub fn now() -> Result<u64, BadNow> {
    match std::env::var(NOW_VAR) {
        Ok(v) => v.trim().parse::<u64>().map_err(|_| BadNow(v)),
        Err(_) => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)),
    }
}

/// An RFC 5322 date in the local time zone, as Python's `email.utils.formatdate(localtime=True)`:
/// `Sun, 22 Nov 2026 03:04:42 +0100`.
pub fn rfc2822(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = secs.min(i64::MAX as u64) as libc::time_t;
    // SAFETY: tm is plain data filled in by localtime_r.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return "Thu, 01 Jan 1970 00:00:00 +0000".into();
        }
        tm
    };
    let off = tm.tm_gmtoff / 60;
    let sign = if off < 0 { '-' } else { '+' };
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        DAYS[tm.tm_wday.rem_euclid(7) as usize],
        tm.tm_mday,
        MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        off.abs() / 60,
        off.abs() % 60
    )
}
