//! The one place that reads the wall clock.
//!
//! Tests (and users reproducing a problem) can pin "now" with `TMDA_NOW=<unix seconds>`,
//! so that dated addresses, Date headers and Message-IDs are deterministic. An unparsable
//! value is an error rather than being ignored, so a typo never silently uses the real time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variable that pins the clock (seconds since the epoch).
pub const NOW_VAR: &str = "TMDA_NOW";

/// Seconds since the epoch, honouring `TMDA_NOW`.
pub fn now() -> Result<u64, crate::Error> {
    match std::env::var(NOW_VAR) {
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            crate::Error::Usage(format!(
                "{NOW_VAR} must be a whole number of seconds since the epoch, not {v:?}"
            ))
        }),
        Err(_) => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)),
    }
}
