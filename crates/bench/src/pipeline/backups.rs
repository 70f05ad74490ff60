//! The backup steps of a pipeline run: full backups (encrypted and not, and restic's of the
//! same Strata snapshot), nothing new, +1 % incremental, restore, and the backup queried where
//! it lies (`query_repo`); each family only when the selection runs it.

use std::path::Path;

use super::{
    BACKUP_OFF, BACKUP_ON, Ctx, INCREMENTAL, Metrics, NOTHING_NEW, Pipeline, RESTORE, du,
    tool_metrics,
};
use crate::procs::{Measured, cpu_seconds};
use crate::scenarios::Family;
use crate::spool::Dataset;
use crate::systems::restic::Restic;
use crate::systems::strata::Strata;
use crate::systems::{Running, Tsdb};

const NO_FULL: &str = "no full backup to build on";

/// restic paired with Strata, and its full backup's (wall s, repository bytes).
type ResticFull<'a> = ((&'a Strata, &'a Restic), (f64, u64));

impl Pipeline<'_> {
    /// One backup with the metrics every backup scenario reports.
    fn measured_backup(
        &self,
        t: &dyn Tsdb,
        r: &Running,
        repo: &Path,
    ) -> Result<(Measured, Metrics), String> {
        let bytes = du(&r.data_dir, t.disk_excludes());
        let before = du(repo, &[]);
        if self.plan.drop_caches {
            crate::cache::settle(&[&r.data_dir]);
        }
        let cpu0 = cpu_seconds(r.server.pid()).unwrap_or(0.0);
        let m = t.backup(r, repo)?;
        let server_cpu = cpu_seconds(r.server.pid()).unwrap_or(0.0) - cpu0;
        let mut metrics = tool_metrics(&m, bytes, server_cpu);
        let after = du(repo, &[]);
        metrics.push(("repo_bytes", after as f64));
        metrics.push(("bytes_added", after.saturating_sub(before) as f64));
        Ok((m, metrics))
    }

    pub(super) fn run_backups(
        &self,
        t: &dyn Tsdb,
        strata: Option<&Strata>,
        r: &Running,
        dir: &Path,
        ctx: &mut Ctx<'_>,
    ) {
        let b = t.backup_tool();
        let repo_on = dir.join("repo-on");
        let repo_off = dir.join("repo-off");
        let full = t
            .init_repo(&repo_on, true)
            .and_then(|()| self.measured_backup(t, r, &repo_on));
        let full = match full {
            Ok((m, metrics)) => {
                ctx.record(BACKUP_ON, b, &metrics);
                Some((m, du(&repo_on, &[])))
            }
            Err(e) => {
                ctx.skip(BACKUP_ON, b, &e);
                None
            }
        };
        if self.sel.asked(Family::Backup) {
            match t
                .init_repo(&repo_off, false)
                .and_then(|()| self.measured_backup(t, r, &repo_off))
            {
                Ok((_, metrics)) => ctx.record(BACKUP_OFF, b, &metrics),
                Err(e) => ctx.skip(BACKUP_OFF, b, &e),
            }
            let _ = std::fs::remove_dir_all(&repo_off);
        }
        let restic = strata.zip(self.restic);
        let restic_full =
            restic.map(|(st, rs)| self.restic_backup(st, rs, r, dir, BACKUP_ON, None, ctx));

        let restic_full = match (restic, restic_full) {
            (Some(rs), Some(Some(f))) => Some((rs, f)),
            (Some(_), _) => {
                let later = [
                    (NOTHING_NEW, Family::NothingNew),
                    (INCREMENTAL, Family::Incremental),
                    (RESTORE, Family::Restore),
                ];
                for (sc, f) in later {
                    if self.sel.runs(f) {
                        ctx.skip(sc, "restic", "no restic full backup to build on");
                    }
                }
                None
            }
            (None, _) => None,
        };

        if self.sel.runs(Family::NothingNew) {
            self.run_nothing_new(t, r, &repo_on, full.is_some(), ctx);
            if let Some(((st, rs), f)) = &restic_full {
                self.restic_backup(st, rs, r, dir, NOTHING_NEW, Some(f), ctx);
            }
        }
        if let Some(extra) = &self.ds.extra
            && self.sel.runs(Family::Incremental)
        {
            self.run_incremental(t, r, extra, &repo_on, full.as_ref(), dir, &restic_full, ctx);
        }
        if self.sel.runs(Family::Restore) {
            self.run_restore(t, &repo_on, full.is_some(), dir, &restic_full, ctx);
        }
        if let Some(st) = strata
            && self.sel.runs(Family::QueryRepo)
        {
            if full.is_some() {
                crate::query_repo::run(self, st, r, &repo_on, dir, ctx);
            } else {
                for (sc, sys) in crate::query_repo::expected() {
                    ctx.skip(&sc, sys, NO_FULL);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&repo_on);
    }

    fn run_nothing_new(
        &self,
        t: &dyn Tsdb,
        r: &Running,
        repo_on: &Path,
        have_full: bool,
        ctx: &mut Ctx<'_>,
    ) {
        let b = t.backup_tool();
        if !have_full {
            return ctx.skip(NOTHING_NEW, b, NO_FULL);
        }
        match self.measured_backup(t, r, repo_on) {
            Ok((_, metrics)) => ctx.record(NOTHING_NEW, b, &metrics),
            Err(e) => ctx.skip(NOTHING_NEW, b, &e),
        }
    }

    /// +1 % more data, then incremental backups.
    #[allow(clippy::too_many_arguments)]
    fn run_incremental(
        &self,
        t: &dyn Tsdb,
        r: &Running,
        extra: &Dataset,
        repo_on: &Path,
        full: Option<&(Measured, u64)>,
        dir: &Path,
        restic_full: &Option<ResticFull<'_>>,
        ctx: &mut Ctx<'_>,
    ) {
        let b = t.backup_tool();
        let repo_on = repo_on.to_path_buf();
        let extra = self.ingest(t, r, extra);
        if let Ok((res, _)) = &extra {
            ctx.written += res.rows;
        }
        if let Err(e) = extra {
            ctx.skip(INCREMENTAL, b, &e);
            if restic_full.is_some() {
                ctx.skip(INCREMENTAL, "restic", &e);
            }
        } else {
            match full {
                Some((full_m, full_repo)) => match self.measured_backup(t, r, &repo_on) {
                    Ok((m, mut metrics)) => {
                        let added = du(&repo_on, &[]).saturating_sub(*full_repo);
                        metrics.push((
                            "bytes_ratio_to_full",
                            added as f64 / (*full_repo).max(1) as f64,
                        ));
                        metrics.push((
                            "time_ratio_to_full",
                            m.wall.as_secs_f64() / full_m.wall.as_secs_f64().max(1e-9),
                        ));
                        ctx.record(INCREMENTAL, b, &metrics);
                    }
                    Err(e) => ctx.skip(INCREMENTAL, b, &e),
                },
                None => ctx.skip(INCREMENTAL, b, NO_FULL),
            }
            if let Some(((st, rs), f)) = restic_full {
                self.restic_backup(st, rs, r, dir, INCREMENTAL, Some(f), ctx);
            }
        }
    }

    /// Restore the newest backup into a fresh directory.
    fn run_restore(
        &self,
        t: &dyn Tsdb,
        repo_on: &Path,
        have_full: bool,
        dir: &Path,
        restic_full: &Option<ResticFull<'_>>,
        ctx: &mut Ctx<'_>,
    ) {
        let dst = dir.join("restored");
        let _ = std::fs::remove_dir_all(&dst);
        if self.plan.drop_caches && have_full {
            crate::cache::settle(&[repo_on]);
        }
        match have_full.then(|| t.restore(repo_on, &dst)) {
            Some(Ok(m)) => {
                let bytes = du(&dst, t.disk_excludes());
                ctx.record(RESTORE, t.restore_tool(), &tool_metrics(&m, bytes, 0.0));
            }
            Some(Err(e)) => ctx.skip(RESTORE, t.restore_tool(), &e),
            None => ctx.skip(RESTORE, t.restore_tool(), NO_FULL),
        }
        let _ = std::fs::remove_dir_all(&dst);
        if let Some(((_, rs), _)) = restic_full {
            let rdst = dir.join("restic-restored");
            match rs.restore(&dir.join("restic-repo"), &rdst) {
                Ok(m) => {
                    let bytes = du(&rdst, &[]);
                    ctx.record(RESTORE, "restic", &tool_metrics(&m, bytes, 0.0));
                }
                Err(e) => ctx.skip(RESTORE, "restic", &e),
            }
            let _ = std::fs::remove_dir_all(&rdst);
        }
    }

    /// restic backs up a fresh Strata snapshot (hard-linked into a stable path). `full`:
    /// the full backup's (wall s, repo bytes) for incremental ratios; `None` for the full one.
    #[allow(clippy::too_many_arguments)]
    fn restic_backup(
        &self,
        st: &Strata,
        rs: &Restic,
        r: &Running,
        dir: &Path,
        scenario: &str,
        full: Option<&(f64, u64)>,
        ctx: &mut Ctx<'_>,
    ) -> Option<(f64, u64)> {
        let repo = dir.join("restic-repo");
        let src = dir.join("restic-src");
        let result = (|| {
            st.snapshot_tree(r, &src)?;
            if full.is_none() {
                rs.init(&repo)?;
            }
            let bytes = du(&src, &[]);
            let before = du(&repo, &[]);
            let m = rs.backup(&repo, &src)?;
            let after = du(&repo, &[]);
            let mut metrics = tool_metrics(&m, bytes, 0.0);
            metrics.push(("repo_bytes", after as f64));
            metrics.push(("bytes_added", after.saturating_sub(before) as f64));
            if let Some((wall, repo_bytes)) = full {
                metrics.push((
                    "bytes_ratio_to_full",
                    after.saturating_sub(before) as f64 / (*repo_bytes).max(1) as f64,
                ));
                metrics.push(("time_ratio_to_full", m.wall.as_secs_f64() / wall.max(1e-9)));
            }
            Ok::<_, String>((m.wall.as_secs_f64(), after, metrics))
        })();
        match result {
            Ok((wall, repo_bytes, metrics)) => {
                ctx.record(scenario, "restic", &metrics);
                Some((wall, repo_bytes))
            }
            Err(e) => {
                ctx.skip(scenario, "restic", &e);
                None
            }
        }
    }
}
