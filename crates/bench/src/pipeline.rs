//! One repetition for one system: a fresh server fed the base data set, then every scenario
//! in order on that data (ingest → disk → queries → full backups → nothing-new and +1 %
//! incremental → restore → the backup queried where it lies, local and S3 (Strata,
//! `query_repo`) → write latency during backup → 10× memory). A step the system
//! cannot do (yet) records "skipped: reason" and the steps that need it are skipped too; the
//! run itself goes on. `--scenarios` (a [`Selection`]) leaves out the families not asked for
//! and not needed by one that was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::load::{self, LoadResult};
use crate::procs::{Measured, cpu_seconds, du, status_kb};
use crate::queries::{Kind, Query};
use crate::scenarios::{Family, Selection};
use crate::spool::Dataset;
use crate::stats::quantile;
use crate::systems::restic::Restic;
use crate::systems::strata::Strata;
use crate::systems::{Running, Tsdb};

mod backups;

pub const INGEST: &str = "ingest";
pub const DISK: &str = "disk";
pub const DISK_AT_REST: &str = "disk_at_rest";
pub const BACKUP_ON: &str = "backup_full_enc_on";
pub const BACKUP_OFF: &str = "backup_full_enc_off";
pub const NOTHING_NEW: &str = "backup_nothing_new";
pub const INCREMENTAL: &str = "backup_incremental_1pct";
pub const RESTORE: &str = "restore";
pub const P99: &str = "write_p99_during_backup";
pub const MEMORY: &str = "memory_10x";

#[derive(Debug, Clone, serde::Serialize)]
pub struct Record {
    pub rep: usize,
    pub scenario: String,
    pub system: String,
    pub metrics: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

pub struct Datasets {
    pub base: Dataset,
    /// +1 % continuing the base stream (incremental backup), when that runs.
    pub extra: Option<Dataset>,
    /// Paced write loads without and with a backup running (they continue the stream), when
    /// that runs.
    pub paced: Option<(Dataset, Dataset)>,
    /// The base spec with 10× the intervals, for memory flatness (when enabled).
    pub tenx: Option<Dataset>,
}

pub struct Plan {
    pub work: PathBuf,
    pub queries_per_kind: usize,
    /// Quiescence: CPU below 2 % of a core for `quiet`, waiting at most `quiesce_max`.
    pub quiet: Duration,
    pub quiesce_max: Duration,
    /// The on-disk size counts once it has not changed for this long.
    pub settle: Duration,
    /// Per connection: one body every `pace` in the paced (latency) loads.
    pub pace: Duration,
    pub keep_work: bool,
    /// `--drop-caches`: [`crate::cache::settle`] before each timed backup and restore.
    pub drop_caches: bool,
}

/// Everything one repetition of one system produced.
pub struct Ctx<'a> {
    pub rep: usize,
    pub out: &'a mut Vec<Record>,
    /// Points acknowledged by the server so far (all loads), for the at-rest size.
    written: u64,
}

impl<'a> Ctx<'a> {
    pub fn new(rep: usize, out: &'a mut Vec<Record>) -> Self {
        Ctx {
            rep,
            out,
            written: 0,
        }
    }

    pub fn record(&mut self, scenario: &str, system: &str, metrics: &[(&str, f64)]) {
        self.out.push(Record {
            rep: self.rep,
            scenario: scenario.into(),
            system: system.into(),
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            skipped: None,
        });
    }

    pub fn skip(&mut self, scenario: &str, system: &str, reason: &str) {
        eprintln!("  {scenario} [{system}]: skipped: {reason}");
        self.out.push(Record {
            rep: self.rep,
            scenario: scenario.into(),
            system: system.into(),
            metrics: BTreeMap::new(),
            skipped: Some(reason.into()),
        });
    }

    fn has(&self, scenario: &str, system: &str) -> bool {
        self.out
            .iter()
            .any(|r| r.rep == self.rep && r.scenario == scenario && r.system == system)
    }
}

/// The (scenario, system) pairs one pipeline run is expected to report.
fn expected(
    t: &dyn Tsdb,
    sel: &Selection,
    with_restic: bool,
    tenx: bool,
) -> Vec<(String, &'static str)> {
    let (s, b, r) = (t.system(), t.backup_tool(), t.restore_tool());
    let mut v = vec![(INGEST.to_string(), s), (DISK.to_string(), s)];
    v.push((DISK_AT_REST.to_string(), s));
    if sel.runs(Family::Queries) {
        v.extend(Kind::ALL.iter().map(|k| (format!("query_{}", k.name()), s)));
    }
    let backups = [
        (BACKUP_ON, sel.runs(Family::Backup), true),
        (BACKUP_OFF, sel.asked(Family::Backup), false),
        (NOTHING_NEW, sel.runs(Family::NothingNew), true),
        (INCREMENTAL, sel.runs(Family::Incremental), true),
    ];
    for (sc, on, restic_too) in backups {
        if on {
            v.push((sc.to_string(), b));
            if with_restic && restic_too {
                v.push((sc.to_string(), "restic"));
            }
        }
    }
    if sel.runs(Family::Restore) {
        v.push((RESTORE.to_string(), r));
        if with_restic {
            v.push((RESTORE.to_string(), "restic"));
        }
    }
    if sel.runs(Family::QueryRepo) && s == "strata" {
        v.extend(crate::query_repo::expected());
    }
    if sel.runs(Family::WriteP99) {
        v.push((P99.to_string(), s));
    }
    if tenx && sel.runs(Family::Memory10x) {
        v.push((MEMORY.to_string(), b));
    }
    v
}

fn ms(us: Option<u64>) -> f64 {
    us.map_or(f64::NAN, |u| u as f64 / 1000.0)
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Waits until the server's CPU use stays under 2 % of one core for `quiet`; returns the
/// seconds waited (the background work after the last acknowledgement: merges, flushes).
pub fn wait_quiescent(pid: u32, quiet: Duration, max: Duration) -> f64 {
    let start = Instant::now();
    let mut window: Vec<(Instant, f64)> = Vec::new();
    while start.elapsed() < max {
        let Some(cpu) = cpu_seconds(pid) else { break };
        let now = Instant::now();
        window.push((now, cpu));
        window.retain(|(t, _)| now.duration_since(*t) <= quiet + Duration::from_millis(300));
        if let Some((t0, c0)) = window.first()
            && now.duration_since(*t0) >= quiet
            && (cpu - c0) / now.duration_since(*t0).as_secs_f64() < 0.02
        {
            return (start.elapsed().saturating_sub(quiet)).as_secs_f64();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed().as_secs_f64()
}

/// `du` once it has not changed for `settle` (or `max` has passed): VM, for one, writes its
/// in-memory parts out every 5 s whatever the CPU does.
fn stable_du(dir: &Path, excludes: &[&str], settle: Duration, max: Duration) -> u64 {
    let start = Instant::now();
    let mut last = du(dir, excludes);
    let mut since = Instant::now();
    while start.elapsed() < max && since.elapsed() < settle {
        std::thread::sleep(Duration::from_millis(500));
        let now = du(dir, excludes);
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

fn fresh_dir(p: &Path) -> Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(p);
    std::fs::create_dir_all(p).map_err(|e| format!("create {}: {e}", p.display()))?;
    Ok(p.to_path_buf())
}

type Metrics = Vec<(&'static str, f64)>;

/// Metrics of one measured backup or restore of `bytes` of data.
fn tool_metrics(m: &Measured, bytes: u64, server_cpu_s: f64) -> Metrics {
    let wall = m.wall.as_secs_f64();
    vec![
        ("wall_s", wall),
        ("mb_per_s", bytes as f64 / 1e6 / wall.max(1e-9)),
        ("cpu_s", m.cpu_s),
        ("server_cpu_s", server_cpu_s),
        ("peak_rss_mib", mib(m.peak_rss_kb)),
        ("data_bytes", bytes as f64),
    ]
}

pub struct Pipeline<'a> {
    pub plan: &'a Plan,
    pub sel: &'a Selection,
    pub ds: &'a Datasets,
    pub queries: &'a [Query],
    /// restic, when installed and enabled; only paired with Strata.
    pub restic: Option<&'a Restic>,
    /// The in-process S3 server of `query_repo` (started before any Strata server, whose
    /// environment points at it), when that family runs.
    pub s3: Option<&'a crate::s3server::S3>,
}

impl Pipeline<'_> {
    pub fn run(&self, t: &dyn Tsdb, strata: Option<&Strata>, rep: usize, out: &mut Vec<Record>) {
        let with_restic = strata.is_some() && self.restic.is_some();
        let expect = expected(t, self.sel, with_restic, self.ds.tenx.is_some());
        let dir = self.plan.work.join(format!("run-{rep}-{}", t.system()));
        let mut ctx = Ctx::new(rep, out);
        eprintln!("rep {rep}: {}", t.system());
        let reason = match self.run_inner(t, strata, &dir, &mut ctx) {
            Ok(()) => "not run (harness bug: no step reported it)".to_string(),
            Err(e) => e,
        };
        for (sc, sys) in expect {
            if !ctx.has(&sc, sys) {
                ctx.skip(&sc, sys, &reason);
            }
        }
        if !self.plan.keep_work {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    fn ingest(&self, t: &dyn Tsdb, r: &Running, ds: &Dataset) -> Result<(LoadResult, f64), String> {
        let res = load::run(ds, &t.write_url(r, ds.protocol), None);
        if let Some(e) = &res.first_error {
            return Err(format!("ingest failed: {e}"));
        }
        t.flush(r);
        let q = wait_quiescent(r.server.pid(), self.plan.quiet, self.plan.quiesce_max);
        Ok((res, q))
    }

    fn run_inner(
        &self,
        t: &dyn Tsdb,
        strata: Option<&Strata>,
        dir: &Path,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), String> {
        let s = t.system();
        let data = dir.join("data");
        fresh_dir(dir)?;
        let r = t.start(&data, &dir.join("server.log"))?;
        let pid = r.server.pid();

        // 1. Ingest, including the background work until quiescence.
        let cpu0 = cpu_seconds(pid).unwrap_or(0.0);
        let (res, quiesce_s) = self.ingest(t, &r, &self.ds.base)?;
        ctx.written += res.rows;
        let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu0;
        let rss = status_kb(pid, "VmHWM").unwrap_or(0);
        let pts = res.rows as f64;
        ctx.record(
            INGEST,
            s,
            &[
                ("points_per_s", res.points_per_s()),
                ("samples_per_s", res.points_per_s() * 10.0),
                ("p50_ms", ms(quantile(&res.latencies_us, 0.5))),
                ("p99_ms", ms(quantile(&res.latencies_us, 0.99))),
                ("p999_ms", ms(quantile(&res.latencies_us, 0.999))),
                ("cpu_s_per_m_points", cpu / (pts / 1e6).max(1e-9)),
                ("peak_rss_mib", mib(rss)),
                ("quiesce_s", quiesce_s),
            ],
        );

        // 2. On-disk size after quiescence (and once the size stops moving: buffered parts
        // may reach the disk after the CPU has gone quiet).
        let bytes = stable_du(
            &data,
            t.disk_excludes(),
            self.plan.settle,
            self.plan.quiesce_max,
        );
        ctx.record(
            DISK,
            s,
            &[
                ("bytes_per_point", bytes as f64 / pts.max(1.0)),
                ("bytes_per_sample", bytes as f64 / (pts * 10.0).max(1.0)),
                ("data_bytes", bytes as f64),
                // A write-ahead log (Strata's `wal/`; VM has none) is reported apart too.
                ("wal_bytes", du(&data.join("wal"), &[]) as f64),
            ],
        );

        // 3. Queries, one client, in order.
        if self.sel.runs(Family::Queries) {
            self.run_queries(t, &r, ctx);
        }

        // 4.–6. Backups, incremental, restore (and restic on the same Strata snapshot), and
        // the queries answered by the backup where it lies.
        if self.sel.runs(Family::Backup) {
            self.run_backups(t, strata, &r, dir, ctx);
        }

        // 7. Write latency with and without a backup running.
        if let Some((alone, during)) = &self.ds.paced
            && self.sel.runs(Family::WriteP99)
        {
            self.run_p99(t, &r, alone, during, dir, ctx);
        }
        r.server.stop(Duration::from_secs(30));

        // 2b. On-disk size at rest: after a clean shutdown every system has written its final
        // form (a WAL replayed into parts, in-memory parts flushed), for all points written.
        let bytes = du(&data, t.disk_excludes());
        let pts = ctx.written as f64;
        ctx.record(
            DISK_AT_REST,
            s,
            &[
                ("bytes_per_point", bytes as f64 / pts.max(1.0)),
                ("bytes_per_sample", bytes as f64 / (pts * 10.0).max(1.0)),
                ("data_bytes", bytes as f64),
                ("points", pts),
                ("wal_bytes", du(&data.join("wal"), &[]) as f64),
            ],
        );

        // 8. Memory of backup and restore with 10× the data.
        if let Some(tenx) = &self.ds.tenx
            && self.sel.runs(Family::Memory10x)
        {
            self.run_memory(t, tenx, dir, ctx);
        }
        Ok(())
    }

    fn run_queries(&self, t: &dyn Tsdb, r: &Running, ctx: &mut Ctx<'_>) {
        let http = match crate::systems::http_client() {
            Ok(h) => h,
            Err(e) => return ctx.skip("query", t.system(), &e),
        };
        for kind in Kind::ALL {
            let scenario = format!("query_{}", kind.name());
            let mut lat = Vec::new();
            let mut values = 0;
            let mut failed = None;
            for q in self.queries.iter().filter(|q| q.kind == kind) {
                let t0 = Instant::now();
                match t.query(r, &http, q) {
                    Ok(n) => {
                        lat.push(t0.elapsed().as_micros() as u64);
                        values += n;
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                Some(e) => ctx.skip(&scenario, t.system(), &e),
                None => ctx.record(
                    &scenario,
                    t.system(),
                    &[
                        ("p50_ms", ms(quantile(&lat, 0.5))),
                        ("p99_ms", ms(quantile(&lat, 0.99))),
                        ("values_per_query", values as f64 / lat.len().max(1) as f64),
                    ],
                ),
            }
        }
    }

    fn run_p99(
        &self,
        t: &dyn Tsdb,
        r: &Running,
        paced_alone: &Dataset,
        paced_backup: &Dataset,
        dir: &Path,
        ctx: &mut Ctx<'_>,
    ) {
        let s = t.system();
        let url = |ds: &Dataset| t.write_url(r, ds.protocol);
        let alone = load::run(paced_alone, &url(paced_alone), Some(self.plan.pace));
        ctx.written += alone.rows;
        if let Some(e) = alone.first_error {
            return ctx.skip(P99, s, &format!("paced ingest failed: {e}"));
        }
        let repo = dir.join("repo-loop");
        let mut backups = 0u32;
        let mut backup_error = None;
        let during = std::thread::scope(|sc| {
            let ds = paced_backup;
            let u = url(ds);
            let pace = self.plan.pace;
            let h = sc.spawn(move || load::run(ds, &u, Some(pace)));
            // Back-to-back full backups (a fresh repository each time) while the load runs.
            while !h.is_finished() {
                let _ = std::fs::remove_dir_all(&repo);
                match t.init_repo(&repo, true).and_then(|()| t.backup(r, &repo)) {
                    Ok(_) => backups += 1,
                    Err(e) => {
                        backup_error = Some(e);
                        break;
                    }
                }
            }
            h.join().unwrap_or_default()
        });
        let _ = std::fs::remove_dir_all(&repo);
        ctx.written += during.rows;
        if let Some(e) = backup_error.filter(|_| backups == 0) {
            return ctx.skip(P99, s, &format!("backup during load failed: {e}"));
        }
        if let Some(e) = during.first_error {
            return ctx.skip(P99, s, &format!("paced ingest during backup failed: {e}"));
        }
        let p_alone = ms(quantile(&alone.latencies_us, 0.99));
        let p_during = ms(quantile(&during.latencies_us, 0.99));
        ctx.record(
            P99,
            s,
            &[
                ("p99_ms_without", p_alone),
                ("p99_ms_during", p_during),
                ("p99_ratio_during_to_without", p_during / p_alone),
                ("backups_completed", f64::from(backups)),
            ],
        );
    }

    fn run_memory(&self, t: &dyn Tsdb, tenx: &Dataset, dir: &Path, ctx: &mut Ctx<'_>) {
        let b = t.backup_tool();
        let one_x = |sc: &str, sys: &str| {
            ctx.out
                .iter()
                .find(|x| x.rep == ctx.rep && x.scenario == sc && x.system == sys)
                .and_then(|x| x.metrics.get("peak_rss_mib").copied())
        };
        let (Some(b1), Some(r1)) = (one_x(BACKUP_ON, b), one_x(RESTORE, t.restore_tool())) else {
            return ctx.skip(
                MEMORY,
                b,
                "no 1x backup and restore figures to compare with",
            );
        };
        let result = (|| {
            let mdir = fresh_dir(&dir.join("tenx"))?;
            let r = t.start(&mdir.join("data"), &mdir.join("server.log"))?;
            self.ingest(t, &r, tenx)?;
            let repo = mdir.join("repo");
            t.init_repo(&repo, true)?;
            let bm = t.backup(&r, &repo)?;
            r.server.stop(Duration::from_secs(10));
            let rm = t.restore(&repo, &mdir.join("restored"))?;
            let _ = std::fs::remove_dir_all(&mdir);
            Ok::<_, String>((mib(bm.peak_rss_kb), mib(rm.peak_rss_kb)))
        })();
        match result {
            Ok((b10, r10)) => ctx.record(
                MEMORY,
                b,
                &[
                    ("backup_peak_rss_mib_1x", b1),
                    ("backup_peak_rss_mib_10x", b10),
                    ("backup_rss_growth_10x", b10 / b1),
                    ("restore_peak_rss_mib_1x", r1),
                    ("restore_peak_rss_mib_10x", r10),
                    ("restore_rss_growth_10x", r10 / r1),
                ],
            ),
            Err(e) => ctx.skip(MEMORY, b, &e),
        }
    }
}
