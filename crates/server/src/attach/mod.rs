//! Attachments: backup snapshots mounted read-only into a running server
//! (`POST|GET|DELETE /api/v1/attachments`, `[[attachment]]` in the TOML file).
//!
//! An attachment shows some groups of a repository snapshot under new names (a prefix and
//! the group's own name); they answer `/api/v1/query` and InfluxQL like live groups, appear in
//! `GET /api/v1/groups` marked read-only, and refuse writes and settings changes. Queries are
//! routed by group name ([`Readers`]): an attached name goes to the attachment's read-only
//! engine (`strata_backup::mount`) with the snapshot's own group name, anything else to the
//! live engine. Attachments made through the API last until detached or the server stops;
//! those in the config file are mounted again at every start.

pub mod config;
pub mod http;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use strata_backup::mount::{Mounted, mount};
use strata_backup::settings::RepoSettings;
use strata_engine::model::{Catalog, GroupCatalog};
use strata_engine::{Engine, ScanRequest, ScanSink, SeriesData, SummaryRequest, SummarySink};
use strata_query::ScanSource;
use strata_query::influxql::Database;

pub use config::AttachmentConfig;

/// Why an attachment could not be made or found.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no attachment named '{0}'")]
    NotFound(String),
    #[error("{0}")]
    Repository(#[from] strata_backup::Error),
}

/// One mounted snapshot and the names its groups answer to.
pub struct Attachment {
    pub name: String,
    /// The repository URL (no credentials are part of it).
    pub repo: String,
    /// Attached name → the snapshot's group name.
    pub groups: BTreeMap<String, String>,
    /// Whether the config file makes it (it comes back after a restart).
    pub configured: bool,
    mounted: Mounted,
}

impl Attachment {
    pub fn snapshot(&self) -> &str {
        self.mounted.snapshot()
    }

    /// The JSON description of `GET /api/v1/attachments`.
    pub fn describe(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct D<'a> {
            name: &'a str,
            repo: &'a str,
            snapshot: &'a str,
            snapshot_time: i64,
            groups: &'a BTreeMap<String, String>,
            configured: bool,
            read_only: bool,
            fetched: strata_backup::mount::MountStatsSnapshot,
            repository_bytes: u64,
        }
        serde_json::to_value(D {
            name: &self.name,
            repo: &self.repo,
            snapshot: self.mounted.snapshot(),
            snapshot_time: self.mounted.time(),
            groups: &self.groups,
            configured: self.configured,
            read_only: true,
            fetched: self.mounted.stats(),
            repository_bytes: self.mounted.stored_bytes(),
        })
        .unwrap_or_default()
    }
}

/// The server's attachments, by name.
#[derive(Default)]
pub struct Attachments {
    by_name: RwLock<BTreeMap<String, Arc<Attachment>>>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

impl Attachments {
    /// The attachment and snapshot group behind attached group `group`, if it is one.
    pub fn resolve(&self, group: &str) -> Option<(Arc<Attachment>, String)> {
        let all = self.by_name.read().unwrap_or_else(|p| p.into_inner());
        all.values()
            .find_map(|a| a.groups.get(group).map(|orig| (a.clone(), orig.clone())))
    }

    /// The error a write to `group` gets when it is attached.
    pub fn refuse_write(&self, group: &str) -> Option<String> {
        self.resolve(group).map(|(a, _)| {
            format!(
                "group '{group}' is attached read-only from backup snapshot {} (attachment '{}'); writes are refused (detach it with DELETE /api/v1/attachments/{})",
                a.snapshot(),
                a.name,
                a.name
            )
        })
    }

    pub fn list(&self) -> Vec<Arc<Attachment>> {
        let all = self.by_name.read().unwrap_or_else(|p| p.into_inner());
        all.values().cloned().collect()
    }

    /// Mount `cfg` and add it; blocks on the repository (call from a blocking thread).
    /// `defaults` are the server's repository settings: endpoint, credentials and password
    /// file apply when `cfg.repo` is the server's repository (or unset).
    pub fn attach(
        &self,
        live: &Engine,
        cfg: &AttachmentConfig,
        defaults: &RepoSettings,
        configured: bool,
    ) -> Result<Arc<Attachment>, AttachError> {
        if !valid_name(&cfg.name) {
            return Err(AttachError::Invalid(format!(
                "attachment name '{}': use 1-128 characters of [A-Za-z0-9_.-], not starting with '.'",
                cfg.name
            )));
        }
        if cfg.groups.is_empty() {
            return Err(AttachError::Invalid(
                "name the groups to attach (\"groups\": [...])".into(),
            ));
        }
        let settings = cfg.settings(defaults);
        // Names are checked before the repository is read, and again (with the live catalog
        // of that moment) before the attachment is published.
        let names = self.check_names(live, cfg)?;
        let mounted = mount(&settings, &cfg.snapshot, cfg.mount_options())?;
        let att = Arc::new(Attachment {
            name: cfg.name.clone(),
            repo: settings.url.clone(),
            groups: names,
            configured,
            mounted,
        });
        let mut all = self.by_name.write().unwrap_or_else(|p| p.into_inner());
        if all.contains_key(&cfg.name) {
            return Err(AttachError::Conflict(format!(
                "an attachment named '{}' exists already",
                cfg.name
            )));
        }
        let live_groups = live.catalog();
        for name in att.groups.keys() {
            let taken = live_groups.groups.iter().any(|g| &g.name == name)
                || all.values().any(|a| a.groups.contains_key(name));
            if taken {
                return Err(AttachError::Conflict(format!(
                    "group '{name}' exists already; choose another \"as\" prefix"
                )));
            }
        }
        all.insert(cfg.name.clone(), att.clone());
        Ok(att)
    }

    fn check_names(
        &self,
        live: &Engine,
        cfg: &AttachmentConfig,
    ) -> Result<BTreeMap<String, String>, AttachError> {
        let mut names = BTreeMap::new();
        let live_groups = live.catalog();
        let all = self.by_name.read().unwrap_or_else(|p| p.into_inner());
        if all.contains_key(&cfg.name) {
            return Err(AttachError::Conflict(format!(
                "an attachment named '{}' exists already",
                cfg.name
            )));
        }
        for g in &cfg.groups {
            let name = format!("{}{g}", cfg.prefix());
            if !valid_name(&name) {
                return Err(AttachError::Invalid(format!(
                    "attached group name '{name}' is not a valid group name"
                )));
            }
            if live_groups.groups.iter().any(|lg| lg.name == name)
                || all.values().any(|a| a.groups.contains_key(&name))
            {
                return Err(AttachError::Conflict(format!(
                    "group '{name}' exists already; choose another \"as\" prefix"
                )));
            }
            if names.insert(name.clone(), g.clone()).is_some() {
                return Err(AttachError::Invalid(format!("group '{g}' is listed twice")));
            }
        }
        Ok(names)
    }

    /// Remove attachment `name`; its mount (and temporary cache) goes when the last running
    /// query on it finishes.
    pub fn detach(&self, name: &str) -> Result<Arc<Attachment>, AttachError> {
        let mut all = self.by_name.write().unwrap_or_else(|p| p.into_inner());
        all.remove(name)
            .ok_or_else(|| AttachError::NotFound(name.to_string()))
    }

    /// The attached groups as catalog entries, under their attached names.
    pub fn catalog_groups(&self) -> Vec<(GroupCatalog, Arc<Attachment>)> {
        let mut out = Vec::new();
        for a in self.list() {
            let cat = a.mounted.engine().catalog();
            for (name, orig) in &a.groups {
                if let Some(g) = cat.groups.iter().find(|g| &g.name == orig) {
                    let mut g = g.clone();
                    g.name = name.clone();
                    out.push((g, a.clone()));
                }
            }
        }
        out
    }
}

/// What queries read: the live engine, and the attachments by group name.
pub struct Readers<'a> {
    pub live: &'a Engine,
    pub attachments: &'a Attachments,
}

impl ScanSource for Readers<'_> {
    fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>, strata_engine::Error> {
        let mut out = Vec::new();
        self.scan_each(req, &mut |s: SeriesData| {
            out.push(s);
            true
        })?;
        Ok(out)
    }

    fn scan_each(
        &self,
        req: &ScanRequest,
        sink: &mut dyn ScanSink,
    ) -> Result<(), strata_engine::Error> {
        match self.attachments.resolve(&req.group) {
            Some((a, orig)) => {
                let mut r = req.clone();
                r.group = orig;
                a.mounted.engine().scan_each(&r, sink).map_err(|e| match e {
                    // The attached name, not the snapshot's, is what the client asked for.
                    strata_engine::Error::GroupNotFound(_) => {
                        strata_engine::Error::GroupNotFound(req.group.clone())
                    }
                    e => e,
                })
            }
            None => self.live.scan_each(req, sink),
        }
    }

    // Without this the trait's default fed every aggregation point by point: the server never
    // answered a block from its summary (issue 16's pushdown reached only `strata query`).
    fn scan_summarized(
        &self,
        req: &ScanRequest,
        summaries: SummaryRequest,
        sink: &mut dyn SummarySink,
    ) -> Result<(), strata_engine::Error> {
        match self.attachments.resolve(&req.group) {
            Some((a, orig)) => {
                let mut r = req.clone();
                r.group = orig;
                a.mounted
                    .engine()
                    .scan_summarized(&r, summaries, sink)
                    .map_err(|e| match e {
                        strata_engine::Error::GroupNotFound(_) => {
                            strata_engine::Error::GroupNotFound(req.group.clone())
                        }
                        e => e,
                    })
            }
            None => self.live.scan_summarized(req, summaries, sink),
        }
    }
}

impl Database for Readers<'_> {
    fn catalog(&self) -> Catalog {
        let mut c = self.live.catalog();
        c.groups.extend(
            self.attachments
                .catalog_groups()
                .into_iter()
                .map(|(g, _)| g),
        );
        c.groups.sort_by(|a, b| a.name.cmp(&b.name));
        c
    }

    fn create_group(&self, name: &str) -> Result<(), strata_engine::Error> {
        if let Some(msg) = self.attachments.refuse_write(name) {
            return Err(strata_engine::Error::InvalidInput(msg));
        }
        Database::create_group(self.live, name)
    }
}

/// Mount the `[[attachment]]`s of the config at start. One that fails (repository
/// unreachable, snapshot pruned) is logged and skipped: the server serves its live data
/// whatever happened to a backup.
pub fn mount_configured(attachments: &Attachments, live: &Engine, config: &crate::config::Config) {
    for cfg in &config.attachment {
        match attachments.attach(live, cfg, &config.repository, true) {
            Ok(a) => {
                tracing::info!(name = %a.name, snapshot = a.snapshot(), "configured attachment mounted")
            }
            Err(e) => {
                tracing::error!(name = %cfg.name, error = %e, "configured attachment not mounted")
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use strata_engine::model::NANOS_PER_DAY;
    use strata_engine::{
        BlockSummary, EngineOptions, FieldValue, FsyncPolicy, GroupSettings, Point,
    };

    use super::*;

    struct Blocks(usize);

    impl SummarySink for Blocks {
        fn series(&mut self, _: SeriesData, blocks: Vec<BlockSummary>) -> bool {
            self.0 += blocks.len();
            true
        }
    }

    /// The server's queries go through `Readers`: an aggregation there must reach the engine's
    /// summaries (the trait's default decoded every block).
    #[test]
    fn aggregations_through_the_readers_use_block_summaries() {
        let d = tempfile::tempdir().unwrap();
        let mut o = EngineOptions::new(d.path());
        o.background = false;
        o.fsync = FsyncPolicy::Never;
        let e = Engine::open(o).unwrap();
        e.put_group(
            "g",
            GroupSettings {
                ttl_ns: 36500 * NANOS_PER_DAY,
                segment_interval_ns: NANOS_PER_DAY,
                shards: 1,
                backup_tier: "hot".into(),
            },
        )
        .unwrap();
        let points: Vec<Point> = (0..100)
            .map(|t| Point {
                measure: "m".into(),
                tags: vec![("host".into(), "a".into())],
                fields: vec![("f".into(), FieldValue::F64(t as f64))],
                timestamp: t * 1000,
            })
            .collect();
        e.write("g", &points).unwrap();
        e.flush().unwrap();
        let attachments = Attachments::default();
        let readers = Readers {
            live: &e,
            attachments: &attachments,
        };
        let req = ScanRequest {
            group: "g".into(),
            measure: "m".into(),
            from: i64::MIN,
            to: i64::MAX,
            matchers: Vec::new(),
            fields: None,
        };
        let mut sink = Blocks(0);
        let whole = SummaryRequest {
            every: None,
            only: None,
        };
        ScanSource::scan_summarized(&readers, &req, whole, &mut sink).unwrap();
        assert_eq!(sink.0, 1);
    }
}
