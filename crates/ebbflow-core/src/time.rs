//! Time as the decision core sees it: plain milliseconds, passed in, never read from a clock.
//!
//! Integer milliseconds keep the hot path (one sample, one decision) free of allocation and
//! calendar arithmetic; RFC 3339 appears only at the edges (serde, messages).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

/// A span of time in milliseconds. Never negative once validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub i64);

impl Dur {
    /// The durations [`Dur::parse`] reads that Kubernetes CEL's `duration()` reads too, as the
    /// regular expression a schema checks them with: `"90s"`, `"5m"`, `"1h30m"`.
    pub const PATTERN: &'static str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

    /// Zero length.
    pub const ZERO: Dur = Dur(0);

    /// From whole seconds.
    pub const fn secs(s: i64) -> Dur {
        Dur(s * 1000)
    }

    /// From whole minutes.
    pub const fn mins(m: i64) -> Dur {
        Dur(m * 60_000)
    }

    /// Length in (fractional) minutes.
    pub fn as_minutes(self) -> f64 {
        self.0 as f64 / 60_000.0
    }

    /// Parse a Go-style duration as Kubernetes CEL's `duration()` does: `"90s"`, `"5m"`,
    /// `"1h30m"`, `"1.5h"`, `"250ms"`. Units: ms, s, m, h.
    pub fn parse(text: &str) -> Result<Dur, String> {
        let s = text.trim();
        if s.is_empty() {
            return Err("empty duration; write e.g. \"30s\", \"5m\" or \"1h30m\"".into());
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut total = 0f64;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if start == i {
                return Err(format!(
                    "\"{text}\" is not a duration: expected a number at \"{}\"; write e.g. \"30s\", \"5m\" or \"1h30m\"",
                    &s[start..]
                ));
            }
            let number: f64 = s[start..i]
                .parse()
                .map_err(|_| format!("\"{text}\" is not a duration: bad number \"{}\"", &s[start..i]))?;
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let factor = match &s[unit_start..i] {
                "ms" => 1.0,
                "s" => 1000.0,
                "m" => 60_000.0,
                "h" => 3_600_000.0,
                "" => {
                    return Err(format!(
                        "\"{text}\" is not a duration: missing unit after {number}; use ms, s, m or h"
                    ));
                }
                other => {
                    return Err(format!("\"{text}\" is not a duration: unknown unit \"{other}\"; use ms, s, m or h"));
                }
            };
            total += number * factor;
        }
        if total > 1e15 {
            return Err(format!("\"{text}\" is too long a duration"));
        }
        Ok(Dur(total.round() as i64))
    }
}

impl fmt::Display for Dur {
    /// Shortest Go-style form: `1h30m`, `45s`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        if ms < 0 {
            f.write_str("-")?;
            ms = -ms;
        }
        let h = ms / 3_600_000;
        let m = (ms % 3_600_000) / 60_000;
        let s = (ms % 60_000) / 1000;
        let rest = ms % 1000;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        if rest > 0 {
            write!(f, "{rest}ms")?;
        }
        Ok(())
    }
}

impl std::ops::Add<Dur> for Dur {
    type Output = Dur;
    fn add(self, d: Dur) -> Dur {
        Dur(self.0.saturating_add(d.0))
    }
}

impl std::ops::Add<Dur> for Ts {
    type Output = Ts;
    fn add(self, d: Dur) -> Ts {
        Ts(self.0.saturating_add(d.0))
    }
}

impl std::ops::Sub<Dur> for Ts {
    type Output = Ts;
    fn sub(self, d: Dur) -> Ts {
        Ts(self.0.saturating_sub(d.0))
    }
}

impl std::ops::Sub<Ts> for Ts {
    type Output = Dur;
    fn sub(self, other: Ts) -> Dur {
        Dur(self.0.saturating_sub(other.0))
    }
}

impl Ts {
    /// RFC 3339 in UTC, e.g. `2026-11-22T04:05:00Z`.
    pub fn to_rfc3339(self) -> String {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(t) => t.to_string(),
            Err(_) => format!("@{}ms", self.0),
        }
    }

    /// Parse RFC 3339 (`2026-11-22T04:05:00Z`, with any offset).
    pub fn parse_rfc3339(text: &str) -> Result<Ts, String> {
        text.parse::<jiff::Timestamp>()
            .map(|t| Ts(t.as_millisecond()))
            .map_err(|e| format!("\"{text}\" is not an RFC 3339 time: {e}"))
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ts, D::Error> {
        let text = String::deserialize(d)?;
        Ts::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let text = String::deserialize(d)?;
        Dur::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(Dur::parse("90s"), Ok(Dur::secs(90)));
        assert_eq!(Dur::parse("5m"), Ok(Dur::mins(5)));
        assert_eq!(Dur::parse("1h30m"), Ok(Dur::mins(90)));
        assert_eq!(Dur::parse("1.5h"), Ok(Dur::mins(90)));
        assert_eq!(Dur::parse("250ms"), Ok(Dur(250)));
        assert_eq!(Dur::parse("0s"), Ok(Dur::ZERO));
    }

    #[test]
    fn rejects_bad_durations_with_a_fix() {
        for bad in ["", "5", "5 minutes", "m", "1d", "-5m"] {
            let err = Dur::parse(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad}: {err}");
        }
        assert!(Dur::parse("1d").unwrap_err().contains("use ms, s, m or h"));
    }

    #[test]
    fn displays_round_trip() {
        for text in ["1h30m", "45s", "0s", "2h", "10m", "250ms", "1m30s"] {
            let d = Dur::parse(text).unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(Dur::parse(&d.to_string()), Ok(d));
        }
    }

    #[test]
    fn timestamps_round_trip_rfc3339() {
        let t = Ts::parse_rfc3339("2026-11-22T04:05:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T04:05:00Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Ts>(&json).unwrap(), t);
    }
}
