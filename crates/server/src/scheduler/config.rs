//! `[[schedule]]` tables of the server's TOML file, and their validation. Every refusal names
//! the schedule, the key and the fix, on one line; the server does not start with a bad
//! schedule.
//!
//! ```toml
//! [[schedule]]
//! name = "hourly"                 # unique; recorded in each snapshot it makes
//! cron = "0 0 * * * *"            # seconds minutes hours day-of-month month day-of-week
//! space_trigger = "1GiB"          # and/or: once this much was written since the last success
//! groups = ["metrics"]            # groups by name, and/or
//! tiers = ["hot"]                 # groups by their backup_tier label (none of both: all)
//! full = "daily"                  # a re-read-everything run: hourly|daily|weekly|monthly|cron
//! retention = { keep_last = 24, keep_daily = 7 }   # after each run, this schedule's only
//! drill = "weekly"                # a restore drill of the newest snapshot: period or cron
//! # copy_to = { url = "s3://…" }  # after each run, copy this schedule's snapshots there
//! retries = 2                     # a failed run is retried this often,
//! retry_delay = "30s"             # this long apart
//! # repository = { url = "s3://…", … }   # default: the server's [repository]
//! ```

use std::str::FromStr;
use std::time::Duration;

use croner::Cron;
use serde::{Deserialize, Serialize};
use strata_backup::prune::RetentionPolicy;
use strata_backup::settings::RepoSettings;

/// Retention of a schedule (`retention = { … }`): the keys of `strata prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    pub keep_last: Option<usize>,
    pub keep_hourly: Option<usize>,
    pub keep_daily: Option<usize>,
    pub keep_weekly: Option<usize>,
    pub keep_monthly: Option<usize>,
    /// A duration, e.g. `7d`.
    pub keep_within: Option<String>,
    /// Unreferenced objects are deleted once they stayed unreferenced this long (default 1h).
    pub grace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub name: String,
    #[serde(default)]
    pub cron: Option<String>,
    /// Bytes (`"512MiB"` or a number) written to the server since this schedule's last
    /// successful backup.
    #[serde(default)]
    pub space_trigger: Option<SizeValue>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub tiers: Vec<String>,
    #[serde(default)]
    pub repository: Option<RepoSettings>,
    /// `hourly`, `daily`, `weekly`, `monthly` or a cron expression.
    #[serde(default)]
    pub full: Option<String>,
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
    /// A second repository every snapshot of this schedule is copied to after each run
    /// (`strata copy`; it applies its own retention).
    #[serde(default)]
    pub copy_to: Option<RepoSettings>,
    /// A restore drill of the schedule's newest snapshot (`strata drill`): `hourly`, `daily`,
    /// `weekly`, `monthly` or a cron expression.
    #[serde(default)]
    pub drill: Option<String>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub retry_delay: Option<String>,
}

/// A size: a number of bytes or a string with a unit (`64MiB`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// Why a schedule is refused.
#[derive(Debug, thiserror::Error)]
#[error("schedule '{name}': {key}: {problem}; {fix}")]
pub struct ScheduleError {
    pub name: String,
    pub key: &'static str,
    pub problem: String,
    pub fix: String,
}

fn refuse(
    s: &ScheduleConfig,
    key: &'static str,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> ScheduleError {
    ScheduleError {
        name: s.name.clone(),
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// A cron expression with seconds (6 fields) or without (5 fields: at second 0).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "'{expr}' has {fields} fields, a cron expression has 5 (minute hour day month weekday) or 6 (seconds first)"
        ));
    }
    let text = if fields == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    };
    Cron::from_str(&text).map_err(|e| format!("'{expr}' is not a valid cron expression ({e})"))
}

/// `full`: a name for a common period, or a cron expression.
pub fn full_cron(v: &str) -> Result<Cron, String> {
    let expr = match v {
        "hourly" => "0 0 * * * *",
        "daily" => "0 0 0 * * *",
        "weekly" => "0 0 0 * * 0",
        "monthly" => "0 0 0 1 * *",
        other => other,
    };
    parse_cron(expr)
}

/// A schedule whose values are parsed and checked (groups are resolved later, against the
/// engine's catalog).
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: ScheduleConfig,
    pub cron: Option<Cron>,
    pub full: Option<Cron>,
    pub drill: Option<Cron>,
    pub space_trigger: Option<u64>,
    pub retention: Option<(RetentionPolicy, Duration)>,
    pub retries: u32,
    pub retry_delay: Duration,
}

fn duration(
    s: &ScheduleConfig,
    key: &'static str,
    v: &str,
    example: &str,
) -> Result<Duration, ScheduleError> {
    strata_engine::duration::parse(v).map_err(|e| {
        refuse(
            s,
            key,
            format!("'{v}': {e}"),
            format!("use a duration such as {example}"),
        )
    })
}

fn retention(
    s: &ScheduleConfig,
    r: &RetentionConfig,
) -> Result<(RetentionPolicy, Duration), ScheduleError> {
    let policy = RetentionPolicy {
        keep_last: r.keep_last,
        keep_hourly: r.keep_hourly,
        keep_daily: r.keep_daily,
        keep_weekly: r.keep_weekly,
        keep_monthly: r.keep_monthly,
        keep_within: r
            .keep_within
            .as_deref()
            .map(|v| duration(s, "retention.keep_within", v, "7d"))
            .transpose()?,
        allow_empty: false,
    };
    if policy.is_empty() || policy.keeps_nothing() {
        return Err(refuse(
            s,
            "retention",
            "keeps no snapshot",
            "give at least one keep_* count above 0 (e.g. keep_last = 7) or keep_within, or remove the retention table",
        ));
    }
    let grace = match &r.grace {
        Some(g) => duration(s, "retention.grace", g, "1h")?,
        None => Duration::from_secs(3600),
    };
    Ok((policy, grace))
}

/// Checks one schedule's own values.
pub fn check(s: &ScheduleConfig) -> Result<Checked, ScheduleError> {
    if s.name.is_empty()
        || !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(refuse(
            s,
            "name",
            "must be 1 or more of A-Z a-z 0-9 _ . -",
            "rename the schedule",
        ));
    }
    let cron = s.cron.as_deref().map(parse_cron).transpose().map_err(|e| {
        refuse(
            s,
            "cron",
            e,
            "use 'S M H DoM Mon DoW' (e.g. \"0 0 * * * *\" hourly) or 5 fields without seconds",
        )
    })?;
    let space_trigger = match &s.space_trigger {
        None => None,
        Some(SizeValue::Bytes(0)) => {
            return Err(refuse(
                s,
                "space_trigger",
                "is 0",
                "give a size such as \"1GiB\"",
            ));
        }
        Some(SizeValue::Bytes(n)) => Some(*n),
        Some(SizeValue::Text(t)) => Some(
            strata_backup::store::parse_rate(t)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    refuse(
                        s,
                        "space_trigger",
                        format!("'{t}' is not a size"),
                        "give a size such as \"1GiB\" or \"500MB\"",
                    )
                })?,
        ),
    };
    if cron.is_none() && space_trigger.is_none() {
        return Err(refuse(
            s,
            "cron",
            "the schedule has neither cron nor space_trigger",
            "set cron (e.g. \"0 0 * * * *\"), space_trigger (e.g. \"1GiB\") or both",
        ));
    }
    let full = s.full.as_deref().map(full_cron).transpose().map_err(|e| {
        refuse(
            s,
            "full",
            e,
            "use hourly, daily, weekly, monthly or a cron expression",
        )
    })?;
    let drill = s.drill.as_deref().map(full_cron).transpose().map_err(|e| {
        refuse(
            s,
            "drill",
            e,
            "use hourly, daily, weekly, monthly or a cron expression",
        )
    })?;
    let retention = s.retention.as_ref().map(|r| retention(s, r)).transpose()?;
    let retry_delay = match &s.retry_delay {
        Some(d) => duration(s, "retry_delay", d, "30s")?,
        None => Duration::from_secs(30),
    };
    Ok(Checked {
        config: s.clone(),
        cron,
        full,
        drill,
        space_trigger,
        retention,
        retries: s.retries.unwrap_or(2),
        retry_delay,
    })
}

/// Checks every schedule and that names are unique.
pub fn check_all(all: &[ScheduleConfig]) -> Result<Vec<Checked>, ScheduleError> {
    let mut out: Vec<Checked> = Vec::new();
    for s in all {
        if out.iter().any(|c| c.config.name == s.name) {
            return Err(refuse(
                s,
                "name",
                "is used by two schedules",
                "give each [[schedule]] its own name",
            ));
        }
        out.push(check(s)?);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sched(toml_text: &str) -> ScheduleConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn accepts_the_documented_example() {
        let s = sched(
            r#"
name = "hourly"
cron = "0 0 * * * *"
space_trigger = "1GiB"
tiers = ["hot"]
full = "daily"
retention = { keep_last = 24, keep_daily = 7, keep_within = "7d" }
"#,
        );
        let c = check(&s).unwrap();
        assert_eq!(c.space_trigger, Some(1 << 30));
        assert_eq!(c.retries, 2);
        assert!(c.full.is_some());
        let five = sched("name = \"x\"\ncron = \"*/5 * * * *\"\n");
        check(&five).unwrap();
    }

    #[test]
    fn refusals_name_the_key_and_the_fix() {
        for (text, key) in [
            ("name = \"a\"\ncron = \"every hour\"\n", "cron"),
            ("name = \"a\"\ncron = \"99 * * * * *\"\n", "cron"),
            ("name = \"a\"\n", "cron"),
            ("name = \"a\"\nspace_trigger = \"lots\"\n", "space_trigger"),
            (
                "name = \"a\"\ncron = \"0 * * * * *\"\nfull = \"sometimes\"\n",
                "full",
            ),
            (
                "name = \"a\"\ncron = \"0 * * * * *\"\ndrill = \"often\"\n",
                "drill",
            ),
            (
                "name = \"a\"\ncron = \"0 * * * * *\"\nretention = { keep_last = 0 }\n",
                "retention",
            ),
            (
                "name = \"a\"\ncron = \"0 * * * * *\"\nretention = { keep_within = \"soon\" }\n",
                "retention.keep_within",
            ),
            ("name = \"a b\"\ncron = \"0 * * * * *\"\n", "name"),
        ] {
            let err = check(&sched(text)).unwrap_err().to_string();
            assert!(err.starts_with("schedule '"), "{err}");
            assert!(err.contains(&format!(": {key}: ")), "{key}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let dup = [
            sched("name = \"a\"\ncron = \"0 * * * * *\"\n"),
            sched("name = \"a\"\ncron = \"0 * * * * *\"\n"),
        ];
        assert!(
            check_all(&dup)
                .unwrap_err()
                .to_string()
                .contains("two schedules")
        );
    }
}
