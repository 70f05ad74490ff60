//! Mount a repository snapshot read-only and query it where it lies (`strata query --repo`,
//! the server's attachments), without restoring it.
//!
//! The snapshot's data directory is presented to a read-only engine through the engine's
//! file-system seam ([`vfs`]): the engine opens it exactly as it opens a restored copy (same
//! catalog, same WAL replay, same "newest part wins" merge, same TTL), so a query answers
//! what a server restored from the snapshot answers. Only what the engine reads is fetched
//! ([`fetch`]), decrypted and verified as it arrives, into a bounded local cache ([`cache`]);
//! groups left out of the mount are not even listed. Nothing is ever written to the
//! repository: the repository is only read (get, ranged get, list), and the engine's file
//! system refuses every write.

mod bridge;
mod cache;
mod fetch;
mod manifests;
mod vfs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_engine::backup_api::{self, Engine};

pub use cache::DEFAULT_CACHE_BYTES;
pub use fetch::{MountStats, MountStatsSnapshot};

use crate::error::{Error, Result};
use crate::settings::RepoSettings;

/// How to mount a snapshot.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Groups to make visible (`None`: all). Objects of other groups are never read.
    pub groups: Option<Vec<String>>,
    /// Cache directory (kept across mounts); `None`: a private temporary one.
    pub cache_dir: Option<PathBuf>,
    /// Bound of the cache directory, bytes.
    pub cache_bytes: u64,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            groups: None,
            cache_dir: None,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// Where a mount's time went, milliseconds (`strata query --repo --stats`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MountTimings {
    /// Reading the config and unlocking the key (the password's key derivation, or the agent).
    pub open_ms: f64,
    /// Resolving the snapshot and loading its manifest (listing, fetch or cache, decode).
    pub manifest_ms: f64,
    /// Opening the read-only engine over it (catalog, WAL replay, part headers).
    pub engine_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A snapshot mounted read-only: query [`Mounted::engine`] like any engine.
pub struct Mounted {
    engine: Engine,
    snapshot: String,
    time: i64,
    groups: Vec<String>,
    stored_bytes: u64,
    stats: Arc<MountStats>,
    timings: MountTimings,
}

impl std::fmt::Debug for Mounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounted")
            .field("snapshot", &self.snapshot)
            .field("groups", &self.groups)
            .finish()
    }
}

impl Mounted {
    /// The read-only engine over the snapshot.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The snapshot's full id.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    /// Recorded time of the snapshot's cut, ns since the epoch.
    pub fn time(&self) -> i64 {
        self.time
    }

    /// The groups this mount shows.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Stored bytes of every object the snapshot references (what a restore would fetch).
    pub fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    /// What was read from the repository so far.
    pub fn stats(&self) -> MountStatsSnapshot {
        self.stats.snapshot()
    }

    /// Where mounting spent its time (zero for a point-in-time mount).
    pub fn timings(&self) -> MountTimings {
        self.timings
    }
}

/// Mount snapshot `spec` (`latest`, an id or a unique prefix) of the repository `settings`
/// describe. Fails before reading the repository when the cache cannot be written, and with
/// the repository's own errors (no repository, wrong password, unknown snapshot, damage).
/// Synchronous: call it from a thread that may block.
pub fn mount(settings: &RepoSettings, spec: &str, opts: MountOptions) -> Result<Mounted> {
    let t0 = Instant::now();
    let cache = cache::ObjectCache::open(opts.cache_dir.as_deref(), opts.cache_bytes)?;
    let bridge = bridge::Bridge::new()?;
    let s = settings.clone();
    let repo = bridge.run(async move { s.open().await })??;
    let t1 = Instant::now();
    let cache = cache.for_repository(&repo.config().id)?;
    let kept = manifests::KeptManifests::new(cache.manifests_dir());
    let (r, spec) = (repo.clone(), spec.to_string());
    let manifest = bridge.run(async move { kept.resolve(&r, &spec).await })??;
    let t2 = Instant::now();
    let mut m = mount_manifest(bridge, cache, repo, manifest, Vec::new(), opts)?;
    m.timings = MountTimings {
        open_ms: ms(t1 - t0),
        manifest_ms: ms(t2 - t1),
        engine_ms: ms(t2.elapsed()),
    };
    Ok(m)
}

/// The state of the data as of `at_ns` (ns since the epoch), read-only: the snapshot a
/// point-in-time restore to that moment would start from, mounted, with the archived WAL
/// records after its cut up to the last one committed at or before `at_ns` replayed in memory
/// (`strata query --repo --at`). `node`: only that node's archive. Refuses what
/// `restore --at` refuses (a time in the future, outside every window, in a gap).
pub fn mount_at(
    settings: &RepoSettings,
    at_ns: i64,
    node: Option<&str>,
    opts: MountOptions,
) -> Result<(Mounted, crate::archive::pitr::PitrPlan)> {
    let cache = cache::ObjectCache::open(opts.cache_dir.as_deref(), opts.cache_bytes)?;
    let bridge = bridge::Bridge::new()?;
    let (s, node) = (settings.clone(), node.map(str::to_string));
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let repo = bridge.run(async move { s.open().await })??;
    let cache = cache.for_repository(&repo.config().id)?;
    let r = repo.clone();
    let (manifest, plan, records) = bridge.run(async move {
        let repo = r;
        let plan = crate::archive::pitr::plan(&repo, at_ns, now, node.as_deref()).await?;
        let m = repo.load_manifest(&plan.snapshot).await?;
        let records = crate::archive::pitr::records(&repo, &plan).await?;
        Ok::<_, Error>((m, plan, records))
    })??;
    // The archived records as one more WAL segment after the snapshot's own.
    let next = manifest
        .wal
        .iter()
        .filter_map(|w| {
            let name = w.path.rsplit('/').next()?;
            u64::from_str_radix(name.strip_suffix(".wal")?, 16).ok()
        })
        .max()
        .map_or(1, |s| s + 1);
    let extra = if records.is_empty() {
        Vec::new()
    } else {
        vec![(
            format!("wal/{}", backup_api::archive::segment_file_name(next)),
            backup_api::archive::encode_segment(next, &records),
        )]
    };
    let m = mount_manifest(bridge, cache, repo, manifest, extra, opts)?;
    Ok((m, plan))
}

/// `cache`: scoped to `repo` already ([`cache::ObjectCache::for_repository`]).
fn mount_manifest(
    bridge: bridge::Bridge,
    cache: cache::ObjectCache,
    repo: crate::repo::Repository,
    manifest: crate::manifest::Manifest,
    extra: Vec<(String, Vec<u8>)>,
    opts: MountOptions,
) -> Result<Mounted> {
    let present: Vec<String> = manifest
        .catalog
        .groups
        .iter()
        .map(|g| g.name.clone())
        .collect();
    let groups = match &opts.groups {
        Some(gs) => {
            // With archived WAL to replay, a group may be born after the snapshot: checked
            // against the replayed catalog below instead.
            for g in gs.iter().filter(|_| extra.is_empty()) {
                if !present.contains(g) {
                    return Err(Error::InvalidArgument(format!(
                        "snapshot {} has no group '{g}' (it has: {})",
                        manifest.id,
                        present.join(", ")
                    )));
                }
            }
            gs.clone()
        }
        None => present,
    };
    let stats = Arc::new(MountStats::default());
    let fetcher = Arc::new(fetch::Fetcher {
        bridge,
        repo,
        cache,
        stats: stats.clone(),
    });
    let root = Path::new("/strata-repository-snapshot").join(&manifest.id);
    let mut tree = vfs::RepoVfs::new(root.clone(), &manifest, Some(&groups), fetcher);
    let replayed = !extra.is_empty();
    for (path, bytes) in extra {
        tree.add_memory_file(&path, bytes);
    }
    let engine = backup_api::open_read_only_on(Arc::new(tree), &root)?;
    if replayed && let Some(gs) = &opts.groups {
        let names: Vec<String> = engine
            .catalog()
            .groups
            .into_iter()
            .map(|g| g.name)
            .collect();
        if let Some(g) = gs.iter().find(|g| !names.contains(g)) {
            return Err(Error::InvalidArgument(format!(
                "the data as of that time (snapshot {} and the archive after it) has no group '{g}' (it has: {})",
                manifest.id,
                names.join(", ")
            )));
        }
    }
    Ok(Mounted {
        engine,
        snapshot: manifest.id.clone(),
        time: manifest.time,
        groups,
        stored_bytes: manifest.files.iter().map(|f| f.stored_size).sum(),
        stats,
        timings: MountTimings::default(),
    })
}
