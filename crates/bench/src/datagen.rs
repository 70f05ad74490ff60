//! Deterministic TSBS-like "cpu-only" data: N hosts with 10 tags each and 10 `usage_*` fields
//! on clamped random walks, one row per host every interval, time-major (all hosts at t, then
//! t + interval), as TSBS does. Rows are produced one at a time, so any size streams in
//! constant memory; encoders (`lineproto`, `promwrite`) turn rows into request bodies.

use crate::rng::Rng;

pub const MEASURE: &str = "cpu";
pub const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];
pub const TAG_KEYS: [&str; 10] = [
    "hostname",
    "region",
    "datacenter",
    "rack",
    "os",
    "arch",
    "team",
    "service",
    "service_version",
    "service_environment",
];

/// Regions and their datacenters, as in TSBS `host.go`.
const REGIONS: [(&str, &[&str]); 9] = [
    (
        "us-east-1",
        &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    ),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];
const OS: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCH: [&str; 2] = ["x64", "x86"];
const TEAM: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVIRONMENT: [&str; 3] = ["production", "staging", "test"];

pub fn region_names() -> impl Iterator<Item = &'static str> {
    REGIONS.iter().map(|(r, _)| *r)
}

/// How field values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
pub enum Variant {
    /// int64, truncated (what TSBS emits)
    Int,
    /// floats with two decimals on the random walks (exercises the float path)
    Float,
    /// independent uniform random floats in [0, 100) with three decimals: hardly
    /// compressible (issue 16's data; the `large` size uses it)
    Float3,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct GenConfig {
    pub hosts: usize,
    pub seed: u64,
    pub start_ns: i64,
    pub interval_ns: i64,
    pub variant: Variant,
    /// High series churn: every host gets a new identity (a new `hostname`, so new series)
    /// every this many intervals, staggered across hosts like rolling pod restarts.
    pub churn_every: Option<u64>,
    /// Adds U(0, jitter) ms to each row's timestamp (real scrapers are never aligned).
    pub jitter_ms: u64,
}

/// One host: its tag values in `TAG_KEYS` order.
pub struct Host {
    pub tags: [String; 10],
    base_hostname: String,
    generation: u64,
}

/// A generated row, borrowed from the generator until the next call.
pub struct Row<'a> {
    pub host_index: usize,
    pub host: &'a Host,
    pub ts_ns: i64,
    /// Field values, already rounded as the variant says.
    pub values: [f64; 10],
    pub variant: Variant,
}

pub struct Generator {
    cfg: GenConfig,
    hosts: Vec<Host>,
    walks: Vec<[f64; 10]>,
    rng: Rng,
    interval: u64,
    next_host: usize,
}

impl Generator {
    pub fn new(cfg: GenConfig) -> Self {
        let mut tag_rng = Rng::new(cfg.seed);
        let mut hosts = Vec::with_capacity(cfg.hosts);
        for i in 0..cfg.hosts {
            let (region, dcs) = REGIONS[tag_rng.below(REGIONS.len() as u64) as usize];
            let pick = |r: &mut Rng, xs: &[&str]| xs[r.below(xs.len() as u64) as usize].to_string();
            let datacenter = pick(&mut tag_rng, dcs);
            let tags = [
                format!("host_{i}"),
                region.to_string(),
                datacenter,
                tag_rng.below(100).to_string(),
                pick(&mut tag_rng, &OS),
                pick(&mut tag_rng, &ARCH),
                pick(&mut tag_rng, &TEAM),
                tag_rng.below(20).to_string(),
                tag_rng.below(2).to_string(),
                pick(&mut tag_rng, &ENVIRONMENT),
            ];
            hosts.push(Host {
                base_hostname: tags[0].clone(),
                tags,
                generation: 0,
            });
        }
        let mut rng = Rng::new(cfg.seed ^ 0x5EED_DA7A);
        let walks = (0..cfg.hosts)
            .map(|_| std::array::from_fn(|_| rng.next_f64() * 100.0))
            .collect();
        Generator {
            cfg,
            hosts,
            walks,
            rng,
            interval: 0,
            next_host: 0,
        }
    }

    /// Advances over `n` whole intervals without emitting them, so a continuation data set
    /// (the "+1 %" of the incremental backup) picks up exactly where the base one ended.
    pub fn skip_intervals(&mut self, n: u64) {
        for _ in 0..n * self.cfg.hosts as u64 {
            let _ = self.next_row();
        }
    }

    /// The next row in time-major order. The sequence never ends; callers count.
    pub fn next_row(&mut self) -> Row<'_> {
        let h = self.next_host;
        let t = self.interval;
        self.next_host += 1;
        if self.next_host == self.cfg.hosts {
            self.next_host = 0;
            self.interval += 1;
        }
        if let Some(every) = self.cfg.churn_every.filter(|e| *e > 0) {
            // Stagger each host's restarts across the period so churn is continuous.
            let offset = (h as u64 * every) / self.cfg.hosts.max(1) as u64;
            let generation = (t + offset) / every;
            let host = &mut self.hosts[h];
            if generation != host.generation {
                host.generation = generation;
                host.tags[0] = format!("{}_{generation}", host.base_hostname);
            }
        }
        let mut values = [0.0; 10];
        if self.cfg.variant == Variant::Float3 {
            for v in &mut values {
                *v = self.rng.below(100_000) as f64 / 1000.0;
            }
        } else {
            for (f, v) in self.walks[h].iter_mut().enumerate() {
                *v = (*v + self.rng.normal()).clamp(0.0, 100.0);
                values[f] = match self.cfg.variant {
                    Variant::Int => v.trunc(),
                    _ => (*v * 100.0).round() / 100.0,
                };
            }
        }
        let jitter = if self.cfg.jitter_ms > 0 {
            self.rng.below(self.cfg.jitter_ms) as i64 * 1_000_000
        } else {
            0
        };
        Row {
            host_index: h,
            host: &self.hosts[h],
            ts_ns: self.cfg.start_ns + t as i64 * self.cfg.interval_ns + jitter,
            values,
            variant: self.cfg.variant,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn cfg(hosts: usize) -> GenConfig {
        GenConfig {
            hosts,
            seed: 42,
            start_ns: 1_700_000_000_000_000_000,
            interval_ns: 10_000_000_000,
            variant: Variant::Int,
            churn_every: None,
            jitter_ms: 0,
        }
    }

    fn rows(g: &mut Generator, n: usize) -> Vec<(usize, String, i64, [f64; 10])> {
        (0..n)
            .map(|_| {
                let r = g.next_row();
                (r.host_index, r.host.tags[0].clone(), r.ts_ns, r.values)
            })
            .collect()
    }

    #[test]
    fn deterministic_time_major_and_bounded() {
        let a = rows(&mut Generator::new(cfg(5)), 50);
        let b = rows(&mut Generator::new(cfg(5)), 50);
        assert_eq!(a, b);
        assert_eq!(a[0].0, 0);
        assert_eq!(a[4].0, 4);
        assert_eq!(a[5].0, 0);
        assert_eq!(a[5].2 - a[0].2, 10_000_000_000);
        for (_, _, _, vals) in &a {
            for v in vals {
                assert!((0.0..=100.0).contains(v));
                assert_eq!(v.fract(), 0.0, "int variant truncates");
            }
        }
    }

    #[test]
    fn skip_continues_the_same_stream() {
        let all = rows(&mut Generator::new(cfg(3)), 30);
        let mut g = Generator::new(cfg(3));
        g.skip_intervals(4);
        let tail = rows(&mut g, 18);
        assert_eq!(&all[12..], &tail[..]);
    }

    #[test]
    fn churn_changes_hostnames_over_time() {
        let mut c = cfg(4);
        c.churn_every = Some(2);
        let names: std::collections::BTreeSet<String> = rows(&mut Generator::new(c), 40)
            .into_iter()
            .map(|r| r.1)
            .collect();
        // 4 hosts over 10 intervals with a new identity every 2: far more than 4 series.
        assert!(names.len() >= 16, "{names:?}");
    }

    #[test]
    fn float3_variant_is_uniform_with_three_decimals() {
        let mut c = cfg(3);
        c.variant = Variant::Float3;
        let r = rows(&mut Generator::new(c), 300);
        let all: Vec<f64> = r.iter().flat_map(|x| x.3).collect();
        for v in &all {
            assert!((0.0..100.0).contains(v), "{v}");
            assert!(((v * 1000.0).round() - v * 1000.0).abs() < 1e-6, "{v}");
        }
        // Independent draws: consecutive values of one series are not a walk, and the third
        // decimal is used.
        let big_jumps = r
            .windows(6)
            .filter(|w| (w[0].3[0] - w[3].3[0]).abs() > 10.0)
            .count();
        assert!(big_jumps > 100, "{big_jumps}");
        assert!(
            all.iter()
                .any(|v| ((v * 100.0).round() - v * 100.0).abs() > 1e-6)
        );
    }

    #[test]
    fn float_variant_keeps_two_decimals() {
        let mut c = cfg(2);
        c.variant = Variant::Float;
        let r = rows(&mut Generator::new(c), 20);
        assert!(r.iter().any(|x| x.3.iter().any(|v| v.fract() != 0.0)));
        for x in &r {
            for v in x.3 {
                assert!(((v * 100.0).round() - v * 100.0).abs() < 1e-6);
            }
        }
    }
}
