//! The one duration syntax of Strata, used wherever a person writes a duration: server config
//! (`idle_flush`, fsync `interval:<d>`), group settings (`ttl`, `segment_interval`), query
//! `every`, `strata prune --keep-within` / `--grace`, and every later option of that kind.
//!
//! The syntax is humantime's (it is parsed by `humantime`): one or more `<number><unit>`
//! terms, optionally separated by spaces, summed: `90s`, `1h30m`, `1.5h`, `7d`, `2w`,
//! `250ms`. Units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d`, `w`, plus their long forms
//! (`sec`, `min`, `hours`, `days`, `weeks`...), `M` (30.44 days) and `y` (365.25 days).
//! A bare number has no unit and is refused. Every duration fits in an `i64` count of
//! nanoseconds (about 292 years); a larger one is refused with an error saying so, never
//! wrapped or saturated. Errors are one line and never expose parser offsets.

use std::fmt;
use std::time::Duration;

/// What to write instead, quoted by every error.
const EXAMPLES: &str = "a number and a unit such as 250ms, 30s, 15m, 36h, 7d or 2w";

/// Largest accepted duration in nanoseconds.
pub const MAX_NANOS: i64 = i64::MAX;

/// A string that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    Empty,
    Syntax,
    UnknownUnit(String),
    TooLarge,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Reason::Empty => write!(f, "empty duration: expected {EXAMPLES}"),
            Reason::Syntax => write!(f, "'{}' is not a duration: expected {EXAMPLES}", self.input),
            Reason::UnknownUnit(u) if u.is_empty() => write!(
                f,
                "'{}' is not a duration: the number needs a unit (ns, us, ms, s, m, h, d, w)",
                self.input
            ),
            Reason::UnknownUnit(u) => write!(
                f,
                "'{}' is not a duration: unknown unit '{u}' (ns, us, ms, s, m, h, d, w)",
                self.input
            ),
            Reason::TooLarge => write!(
                f,
                "duration '{}' is too large (at most about 292 years)",
                self.input
            ),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parse a duration (see the module documentation for the syntax).
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    parse_nanos(s).map(|ns| Duration::from_nanos(ns.unsigned_abs()))
}

/// Parse a duration into nanoseconds (what group settings and queries store).
pub fn parse_nanos(s: &str) -> Result<i64, DurationError> {
    let err = |reason| DurationError {
        input: s.to_string(),
        reason,
    };
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        err(match e {
            humantime::DurationError::Empty => Reason::Empty,
            humantime::DurationError::NumberOverflow => Reason::TooLarge,
            humantime::DurationError::UnknownUnit { unit, .. } => Reason::UnknownUnit(unit),
            humantime::DurationError::InvalidCharacter(_)
            | humantime::DurationError::NumberExpected(_) => Reason::Syntax,
        })
    })?;
    i64::try_from(d.as_nanos()).map_err(|_| err(Reason::TooLarge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let s = |n: u64| Duration::from_secs(n);
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("90s"), Ok(s(90)));
        assert_eq!(parse("1h30m"), Ok(s(5400)));
        assert_eq!(parse("1h 30m"), Ok(s(5400)));
        assert_eq!(parse(" 1.5h "), Ok(s(5400)));
        assert_eq!(parse("7d"), Ok(s(7 * 86_400)));
        assert_eq!(parse("2w"), Ok(s(14 * 86_400)));
        assert_eq!(parse("3 days"), Ok(s(3 * 86_400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_nanos("1us"), Ok(1_000));
        assert_eq!(parse_nanos("1µs"), Ok(1_000));
        assert_eq!(parse_nanos("5ns"), Ok(5));
    }

    #[test]
    fn errors_are_one_clear_line_without_parser_offsets() {
        let msg = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(
            msg("soon"),
            "'soon' is not a duration: expected a number and a unit such as 250ms, 30s, 15m, \
             36h, 7d or 2w"
        );
        assert_eq!(msg(""), msg("  "));
        assert!(msg("").starts_with("empty duration"));
        assert_eq!(
            msg("5x"),
            "'5x' is not a duration: unknown unit 'x' (ns, us, ms, s, m, h, d, w)"
        );
        assert_eq!(
            msg("5"),
            "'5' is not a duration: the number needs a unit (ns, us, ms, s, m, h, d, w)"
        );
        for bad in ["soon", "-5s", "1.s", "5x", "5", "", "s"] {
            let m = msg(bad);
            assert!(!m.contains(" at "), "{bad}: {m}");
            assert!(!m.contains('\n'), "{bad}: {m}");
        }
    }

    #[test]
    fn refuses_what_does_not_fit_in_i64_nanoseconds() {
        // 1e12 days fits humantime's u64 seconds but not i64 nanoseconds.
        let e = parse_nanos("1000000000000d").unwrap_err();
        assert_eq!(
            e.to_string(),
            "duration '1000000000000d' is too large (at most about 292 years)"
        );
        assert!(parse_nanos("99999999999999999999999s").is_err());
        assert_eq!(parse_nanos("106751d"), Ok(106_751 * 86_400 * 1_000_000_000));
        assert!(parse_nanos("106752d").is_err());
    }
}
