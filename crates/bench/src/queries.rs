//! The fixed query set, each expressed for Strata (its JSON query) and for VictoriaMetrics
//! (PromQL with windows aligned to the same buckets). Parameters (host, region, window) are
//! drawn from a seeded generator so every system answers the same questions.

use serde_json::json;

use crate::datagen::{FIELDS, MEASURE, region_names};
use crate::rng::Rng;
use crate::spool::Protocol;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Raw `usage_user` of one host over 1 h.
    SingleSeriesRange,
    /// Mean `usage_user` over the hosts of one region (≈ hosts/9, ~100 at 1 000 hosts) in 1 min
    /// buckets over 1 h.
    Agg100Series1m,
    /// Max `usage_user` per host in 1 h buckets over (up to) 1 day.
    GroupByHost1d,
    /// Last value of every field of every host.
    LastPoint,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::SingleSeriesRange,
        Kind::Agg100Series1m,
        Kind::GroupByHost1d,
        Kind::LastPoint,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::SingleSeriesRange => "single_series_1h",
            Kind::Agg100Series1m => "region_mean_1m_1h",
            Kind::GroupByHost1d => "groupby_host_1h_1d",
            Kind::LastPoint => "lastpoint_all_hosts",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Query {
    pub kind: Kind,
    pub from_ns: i64,
    pub to_ns: i64,
    pub host: String,
    pub region: String,
    /// How the data was written: remote write stores `cpu_<field>` measures with one field
    /// `value` in Strata, so the Strata query is phrased for that model.
    pub protocol: Protocol,
}

const MIN_NS: i64 = 60_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;
const DAY_NS: i64 = 24 * HOUR_NS;

/// `per_kind` queries of every kind over data spanning `[first_ns, last_ns]` for `hosts` hosts.
pub fn generate(
    first_ns: i64,
    last_ns: i64,
    hosts: usize,
    per_kind: usize,
    seed: u64,
    protocol: Protocol,
) -> Vec<Query> {
    let mut rng = Rng::new(seed ^ 0x51E7);
    let regions: Vec<&str> = region_names().collect();
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for _ in 0..per_kind {
            let span = match kind {
                Kind::SingleSeriesRange | Kind::Agg100Series1m => HOUR_NS,
                Kind::GroupByHost1d => DAY_NS,
                Kind::LastPoint => last_ns - first_ns,
            };
            let (from_ns, to_ns) = window(&mut rng, first_ns, last_ns, span);
            out.push(Query {
                kind,
                from_ns,
                to_ns,
                host: format!("host_{}", rng.below(hosts.max(1) as u64)),
                region: regions[rng.below(regions.len() as u64) as usize].to_string(),
                protocol,
            });
        }
    }
    out
}

/// A window of `span` (or the whole data if shorter) starting on a whole minute.
fn window(rng: &mut Rng, first: i64, last: i64, span: i64) -> (i64, i64) {
    let end = last + 1;
    if end - first <= span {
        return (first, end);
    }
    let slack = (end - span - first) / MIN_NS;
    let from = first + rng.below(slack.max(1) as u64) as i64 * MIN_NS;
    (from, from + span)
}

fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl Query {
    /// The body of Strata's `POST /api/v1/query`.
    pub fn strata_json(&self, group: &str) -> serde_json::Value {
        let prom = self.protocol == Protocol::Prom;
        let measure = if prom {
            format!("{MEASURE}_usage_user")
        } else {
            MEASURE.to_string()
        };
        let mut q = json!({
            "group": group,
            "measure": measure,
            "from": rfc3339(self.from_ns),
            "to": rfc3339(self.to_ns),
        });
        match self.kind {
            Kind::SingleSeriesRange => {
                q["where"] = json!({"hostname": self.host});
                q["fields"] = json!(["usage_user"]);
            }
            Kind::Agg100Series1m => {
                q["where"] = json!({"region": self.region});
                q["fields"] = json!(["usage_user"]);
                q["agg"] = json!({"fn": "mean", "every": "1m"});
            }
            Kind::GroupByHost1d => {
                q["fields"] = json!(["usage_user"]);
                q["agg"] = json!({"fn": "max", "every": "1h"});
                q["group_by"] = json!(["hostname"]);
            }
            Kind::LastPoint if prom => {
                q["fields"] = json!(["value"]);
                q["agg"] = json!({"fn": "last"});
                q["group_by"] = json!(["hostname"]);
            }
            Kind::LastPoint => {
                q["fields"] = json!(FIELDS);
                q["agg"] = json!({"fn": "last"});
                q["group_by"] = json!(["hostname"]);
            }
        }
        if prom && self.kind != Kind::LastPoint {
            q["fields"] = json!(["value"]);
        }
        q
    }

    /// The VictoriaMetrics equivalent: HTTP path and query parameters. PromQL windows look
    /// back from each step, so steps sit at bucket ends to cover the same buckets.
    pub fn promql(&self) -> (&'static str, Vec<(&'static str, String)>) {
        let secs = |ns: i64| format!("{:.3}", ns as f64 / 1e9);
        let range = |q: String, step_ns: i64| {
            vec![
                ("query", q),
                ("start", secs(self.from_ns + step_ns)),
                ("end", secs(self.to_ns)),
                ("step", format!("{}s", step_ns / 1_000_000_000)),
            ]
        };
        match self.kind {
            Kind::SingleSeriesRange => (
                "/api/v1/query_range",
                vec![
                    (
                        "query",
                        format!("{MEASURE}_usage_user{{hostname=\"{}\"}}", self.host),
                    ),
                    ("start", secs(self.from_ns)),
                    ("end", secs(self.to_ns)),
                    ("step", "10s".into()),
                ],
            ),
            Kind::Agg100Series1m => (
                "/api/v1/query_range",
                range(
                    format!(
                        "avg(avg_over_time({MEASURE}_usage_user{{region=\"{}\"}}[1m]))",
                        self.region
                    ),
                    MIN_NS,
                ),
            ),
            Kind::GroupByHost1d => (
                "/api/v1/query_range",
                range(
                    format!("max by (hostname) (max_over_time({MEASURE}_usage_user[1h]))"),
                    HOUR_NS,
                ),
            ),
            Kind::LastPoint => (
                "/api/v1/query",
                vec![
                    (
                        "query",
                        format!(
                            "last_over_time({{__name__=~\"{MEASURE}_usage_{}\"}}[{}s])",
                            // Remote write: Strata answers one measure per query, so both
                            // systems are asked for usage_user only.
                            if self.protocol == Protocol::Prom {
                                "user"
                            } else {
                                ".*"
                            },
                            ((self.to_ns - self.from_ns) / 1_000_000_000).max(1)
                        ),
                    ),
                    ("time", secs(self.to_ns)),
                ],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_stay_inside_the_data_and_are_deterministic() {
        let first = 1_700_000_000_000_000_000;
        let last = first + 3 * HOUR_NS;
        let a = generate(first, last, 50, 5, 1, Protocol::Lp);
        let b = generate(first, last, 50, 5, 1, Protocol::Lp);
        assert_eq!(a.len(), 20);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.from_ns, x.to_ns, &x.host), (y.from_ns, y.to_ns, &y.host));
            assert!(x.from_ns >= first && x.to_ns <= last + 1);
        }
        let single = &a[0];
        assert_eq!(single.to_ns - single.from_ns, HOUR_NS);
        let j = single.strata_json("g");
        assert_eq!(j["where"]["hostname"], single.host.as_str());
        assert!(j["from"].as_str().unwrap_or("").ends_with('Z'));
        let (path, params) = a[5].promql();
        assert_eq!(path, "/api/v1/query_range");
        assert!(
            params[0]
                .1
                .starts_with("avg(avg_over_time(cpu_usage_user{region=")
        );
    }
}
