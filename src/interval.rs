//! TMDA time intervals: `NNN` followed by one unit letter.
//!
//! Units as TMDA's `Util.seconds`: `Y` = 365 days, `M` = 30 days, `w`, `d`, `h`, `m`, `s`.
//! Case matters (`M` is months, `m` minutes). Anything else is rejected, as TMDA does.

use std::fmt;

/// A parsed interval, kept with its original spelling for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    text: String,
    seconds: u64,
}

/// Why an interval did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timeout value {}: expected a number followed by one of Y, M, w, d, h, m, s (e.g. 5d, 24h)",
    crate::exit::quote(text)
)]
pub struct IntervalError {
    pub text: String,
}

impl Interval {
    pub fn parse(text: &str) -> Result<Interval, IntervalError> {
        let err = || IntervalError { text: text.to_string() };
        let unit = text.chars().last().ok_or_else(err)?;
        let digits = &text[..text.len() - unit.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let per: u64 = match unit {
            'Y' => 365 * 86400,
            'M' => 30 * 86400,
            'w' => 7 * 86400,
            'd' => 86400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(err()),
        };
        let n: u64 = digits.parse().map_err(|_| err())?;
        let seconds = n.checked_mul(per).ok_or_else(err)?;
        Ok(Interval {
            text: text.to_string(),
            seconds,
        })
    }

    pub fn seconds(&self) -> u64 {
        self.seconds
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_match_tmda() {
        for (text, secs) in [
            ("5d", 432_000),
            ("1m", 60),
            ("1M", 2_592_000),
            ("2Y", 63_072_000),
            ("3w", 1_814_400),
            ("24h", 86_400),
            ("0s", 0),
            ("007s", 7),
        ] {
            assert_eq!(Interval::parse(text).unwrap().seconds(), secs, "{text}");
        }
    }

    #[test]
    fn rejects_what_tmda_rejects() {
        for bad in [
            "",
            "d",
            "5",
            "5D",
            "5 d",
            " 5d",
            "-5d",
            "5dd",
            "1.5h",
            "99999999999999999999Y",
            "5é",
        ] {
            assert!(Interval::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
