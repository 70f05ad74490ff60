//! `strata backup`: the one backup sequence, `snapshot → plan → upload → manifest → release`,
//! used by `strata backup --data-dir`, `strata backup --server` and the server's backup jobs
//! (they differ only in their [`SnapshotSource`]).
//!
//! Incremental by content identity: a file whose object the parent snapshot (the newest of
//! the same node) already references is reused without being read or listed (part digests
//! come from the part metadata); only when some file is new is the repository's object
//! listing consulted. `--full` reads every file again, checks it against its recorded digest,
//! downloads and checks every object the repository already holds, and re-uploads whatever is
//! missing or bad, so the new snapshot depends on nothing it did not check. A crash at any
//! point leaves no manifest; the next run lists the uploaded objects and reuses them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use strata_engine::backup_api::{self, FileSource, Snapshot, SnapshotFile, SnapshotFileKind};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::crypto::random_bytes;
use crate::error::{Error, Result};
use crate::manifest::{
    BackupKind, BackupStats, FileEntry, FileKind, MANIFEST_VERSION, Manifest, PartEntry, WalEntry,
    hex32, is_safe_rel_path,
};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::source::SnapshotSource;

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub full: bool,
    pub labels: BTreeMap<String, String>,
    /// Files uploaded at once.
    pub parallelism: usize,
    /// Back up only these groups (empty: every group). Recorded in the manifest.
    pub groups: BTreeSet<String>,
    /// The schedule that made this backup, recorded in the manifest.
    pub schedule: Option<String>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            full: false,
            labels: BTreeMap::new(),
            parallelism: 8,
            groups: BTreeSet::new(),
            schedule: None,
        }
    }
}

fn rel_string(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::InvalidArgument(format!("non-UTF-8 path {}", p.display())))?
        .replace('\\', "/");
    if !is_safe_rel_path(&s) {
        return Err(Error::InvalidArgument(format!(
            "snapshot lists an unsafe path {s:?}"
        )));
    }
    Ok(s)
}

/// Parses `K=V` labels.
pub fn parse_labels(items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for it in items {
        let (k, v) = it
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Error::InvalidArgument(format!("label '{it}': expected K=V")))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// A reader on a snapshot file, for the async upload.
pub type SourceReader = Box<dyn tokio::io::AsyncRead + Unpin + Send>;

/// Open a snapshot file where the engine says it is (see [`backup_api::open_file`]).
pub fn open_source(f: &SnapshotFile) -> Result<SourceReader> {
    Ok(match backup_api::open_file(f)? {
        backup_api::SnapshotReader::File(f) => Box::new(tokio::fs::File::from_std(f)),
        backup_api::SnapshotReader::Inline(c) => Box::new(c),
    })
}

/// How a snapshot file is named in errors: its source path, or its place in the tree.
fn source_label(f: &SnapshotFile) -> PathBuf {
    match &f.source {
        FileSource::Path(p) => p.clone(),
        FileSource::Inline(_) => f.rel_path.clone(),
    }
}

/// BLAKE3 and length of a reader's bytes, streamed.
async fn hash_reader(mut r: SourceReader, label: &Path) -> Result<([u8; 32], u64)> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf).await.map_err(|e| Error::io(label, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((*h.finalize().as_bytes(), n))
}

/// BLAKE3 and length of a local file, streamed.
pub async fn hash_file(path: &Path) -> Result<([u8; 32], u64)> {
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?;
    hash_reader(Box::new(f), path).await
}

struct Job {
    id: String,
    file: SnapshotFile,
}

enum Outcome {
    Reused(u64),
    Uploaded(u64),
}

async fn upload(repo: &Repository, job: &Job, overwrite: bool) -> Result<u64> {
    let f = &job.file;
    let (src, label) = (open_source(f)?, source_label(f));
    if f.is_compressed() {
        repo.upload_compressed(&job.id, src, &label, f.size, &f.digest, overwrite)
            .await
    } else {
        repo.upload_from(&job.id, src, &label, f.size, &f.digest, overwrite)
            .await
    }
}

/// `--full` on an object the repository holds: the local file must match its record, and the
/// stored copy must read back (re-uploaded when damaged).
async fn recheck(repo: Arc<Repository>, job: Job, stored: u64) -> Result<Outcome> {
    let f = &job.file;
    let label = source_label(f);
    let (d, n) = hash_reader(open_source(f)?, &label).await?;
    if d != f.digest || n != f.size {
        return Err(Error::SourceChanged {
            path: label,
            detail: "content differs from the recorded digest".into(),
        });
    }
    match repo
        .download(&job.id, f.size, &f.digest, None, &label)
        .await
    {
        Ok(()) => Ok(Outcome::Reused(stored)),
        Err(Error::Corrupt { name, detail }) => {
            tracing::warn!(object = %name, %detail, "re-uploading damaged object");
            Ok(Outcome::Uploaded(upload(&repo, &job, true).await?))
        }
        Err(e) => Err(e),
    }
}

/// What the repository holds of a snapshot's objects, with their stored sizes: those its
/// parent references and, only when the snapshot has an object the parent lacks, every object
/// the repository lists. (FxHash: the plan of a backup with nothing new is a few lookups per
/// file, ~4,000 for 1,000 parts.)
struct Known<'p> {
    /// The parent's objects, borrowed from it.
    parent: FxHashMap<&'p str, u64>,
    listed: FxHashMap<String, u64>,
}

impl Known<'_> {
    fn stored(&self, id: &str) -> Option<u64> {
        self.parent.get(id).or_else(|| self.listed.get(id)).copied()
    }
}

/// The objects of `parent` and, when some of `ids` is not among them, the repository's.
async fn known_objects<'p>(
    repo: &Repository,
    parent: Option<&'p Manifest>,
    ids: &[String],
) -> Result<Known<'p>> {
    let parent: FxHashMap<&str, u64> = parent
        .map(|p| {
            p.files
                .iter()
                .map(|f| (f.object.as_str(), f.stored_size))
                .collect()
        })
        .unwrap_or_default();
    let listed = if ids.iter().all(|id| parent.contains_key(id.as_str())) {
        FxHashMap::default()
    } else {
        repo.list_objects()
            .await?
            .into_iter()
            .map(|(id, o)| (id, o.size))
            .collect()
    };
    Ok(Known { parent, listed })
}

/// Seconds spent in each phase of the backup sequence (reported by `strata backup --json`,
/// the server's job status and the benchmark; never persisted).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PhaseTimings {
    /// Taking (pinning) the snapshot, over HTTP with `--server`.
    pub snapshot_s: f64,
    /// Finding the parent snapshot and what the repository already holds.
    pub list_s: f64,
    /// Matching the snapshot's files against the repository (what to upload).
    pub plan_s: f64,
    /// Reading, checking, compressing, encrypting and uploading new objects.
    pub upload_s: f64,
    /// Building, validating and writing the manifest.
    pub manifest_s: f64,
    /// Releasing the snapshot.
    pub release_s: f64,
}

/// The backup sequence: take a snapshot from `source`, upload what the repository lacks,
/// write the manifest, release the snapshot (also when the upload failed; a failed release
/// is logged, and the pin expires on its own).
pub async fn run(
    source: &dyn SnapshotSource,
    repo: Arc<Repository>,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> Result<(Arc<Manifest>, PhaseTimings)> {
    let clock = std::time::Instant::now();
    progress.set_phase("taking snapshot");
    let snap = source.take().await?;
    let snapshot_s = clock.elapsed().as_secs_f64();
    run_taken(source, &snap, snapshot_s, repo, opts, progress).await
}

/// [`run`] from its second step, for a caller that took `snap` from `source` itself (in
/// `snapshot_s` seconds), e.g. while the repository key was being derived: backs it up and
/// releases it (also when the backup failed). The release overlaps the manifest write: by
/// then every file of the snapshot has been read.
pub async fn run_taken(
    source: &dyn SnapshotSource,
    snap: &Snapshot,
    snapshot_s: f64,
    repo: Arc<Repository>,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> Result<(Arc<Manifest>, PhaseTimings)> {
    let (result, released) = locked(repo, snap, opts, progress, Some(source)).await;
    let release_s = match released {
        Some(s) => s,
        None => release_timed(source, &snap.id).await,
    };
    let (m, mut t) = result?;
    t.snapshot_s = snapshot_s;
    t.release_s = release_s;
    Ok((m, t))
}

/// Releases snapshot `id` of `source` (a failure is logged: the pin expires on its own);
/// returns the seconds it took.
async fn release_timed(source: &dyn SnapshotSource, id: &str) -> f64 {
    let clock = std::time::Instant::now();
    if let Err(e) = source.release(id).await {
        tracing::warn!(snapshot = %id, error = %e, "could not release the backup snapshot");
    }
    clock.elapsed().as_secs_f64()
}

/// Uploads `snap` and writes its manifest. Returns the manifest written.
pub async fn backup(
    repo: Arc<Repository>,
    snap: &Snapshot,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> Result<Arc<Manifest>> {
    backup_timed(repo, snap, opts, progress)
        .await
        .map(|(m, _)| m)
}

/// [`backup`] (plan, upload, manifest of a snapshot already taken), also returning how long
/// each phase took. Holds a backup lock on the repository throughout (see [`crate::gc`]): no
/// garbage collection deletes anything while it reads the parent and writes the manifest.
pub async fn backup_timed(
    repo: Arc<Repository>,
    snap: &Snapshot,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> Result<(Arc<Manifest>, PhaseTimings)> {
    locked(repo, snap, opts, progress, None).await.0
}

/// [`backup_timed`] that also releases `snap` from `source`, if given, once its files are
/// read; returns the seconds the release took when it happened.
async fn locked(
    repo: Arc<Repository>,
    snap: &Snapshot,
    opts: &BackupOptions,
    progress: Arc<Progress>,
    source: Option<&dyn SnapshotSource>,
) -> (Result<(Arc<Manifest>, PhaseTimings)>, Option<f64>) {
    let lock = match crate::gc::lock_backup(&repo).await {
        Ok(l) => l,
        Err(e) => return (Err(e), None),
    };
    let mut released = None;
    let result = backup_locked(repo, snap, opts, progress, source, &mut released).await;
    lock.release().await;
    (result, released)
}

async fn backup_locked(
    repo: Arc<Repository>,
    snap: &Snapshot,
    opts: &BackupOptions,
    progress: Arc<Progress>,
    source: Option<&dyn SnapshotSource>,
    released: &mut Option<f64>,
) -> Result<(Arc<Manifest>, PhaseTimings)> {
    let snap_id = snap.id.as_str();
    let mut timings = PhaseTimings::default();
    let restricted;
    let snap = if opts.groups.is_empty() {
        snap
    } else {
        restricted = backup_api::restrict_snapshot(snap, &opts.groups)?;
        &restricted
    };
    let mut clock = std::time::Instant::now();
    let mut lap = |slot: &mut f64| {
        *slot = clock.elapsed().as_secs_f64();
        clock = std::time::Instant::now();
    };
    progress.set_phase("listing repository");
    let ids: Vec<String> = snap
        .files
        .iter()
        .map(|f| repo.object_id(&f.digest))
        .collect();
    let parent_manifest = repo.newest_manifest_of(&snap.node_id).await?;
    let known = known_objects(&repo, parent_manifest.as_deref(), &ids).await?;
    let parent = parent_manifest.as_ref().map(|m| m.id.clone());
    lap(&mut timings.list_s);

    let mut files = Vec::with_capacity(snap.files.len());
    let mut jobs: FxHashMap<String, Job> = FxHashMap::default();
    // Stored size per object of this snapshot, as it becomes known.
    let mut stored: FxHashMap<String, u64> = FxHashMap::default();
    stored.reserve(snap.files.len());
    let mut stats = BackupStats {
        files: snap.files.len() as u64,
        ..Default::default()
    };
    for (f, id) in snap.files.iter().zip(ids) {
        let path = rel_string(&f.rel_path)?;
        stats.bytes += f.size;
        match known.stored(&id) {
            // Already stored: nothing to read, nothing to spawn (counted once per object).
            Some(s) if !opts.full => {
                if stored.insert(id.clone(), s).is_none() {
                    stats.reused_objects += 1;
                }
            }
            _ => {
                jobs.entry(id.clone()).or_insert_with(|| Job {
                    id: id.clone(),
                    file: f.clone(),
                });
            }
        }
        files.push((path, f, id));
    }
    // The new parts' content (their series tables) is read while the files upload.
    let (mut contents, computing) = crate::content::start(snap, parent_manifest.as_deref());
    let job_bytes: u64 = jobs.values().map(|j| j.file.size).sum();
    lap(&mut timings.plan_s);
    progress.start("uploading", jobs.len() as u64, job_bytes);

    let sem = Arc::new(Semaphore::new(opts.parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (id, job) in jobs {
        let repo = repo.clone();
        let sem = sem.clone();
        let progress = progress.clone();
        let existing = known.stored(&id);
        tasks.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
            let size = job.file.size;
            let out = match existing {
                Some(s) => recheck(repo, job, s).await?,
                None => Outcome::Uploaded(upload(&repo, &job, false).await?),
            };
            progress.file_done(size);
            Ok::<_, Error>((id, size, out))
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (id, size, out) = match r {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tasks.abort_all();
                return Err(e);
            }
            Err(e) => {
                tasks.abort_all();
                return Err(Error::Task(e.to_string()));
            }
        };
        match out {
            Outcome::Reused(s) => {
                stats.reused_objects += 1;
                stored.insert(id, s);
            }
            Outcome::Uploaded(s) => {
                stats.new_objects += 1;
                stats.new_bytes += size;
                stats.uploaded_bytes += s;
                stored.insert(id, s);
            }
        }
    }

    lap(&mut timings.upload_s);
    let entries = files
        .into_iter()
        .map(|(path, f, id)| FileEntry {
            path,
            size: f.size,
            digest: hex32(&f.digest),
            kind: match f.kind {
                SnapshotFileKind::Part => FileKind::Part,
                SnapshotFileKind::Wal => FileKind::Wal,
                SnapshotFileKind::Meta => FileKind::Meta,
            },
            stored_size: stored.get(&id).copied().unwrap_or(0),
            object: id,
        })
        .collect();
    contents.extend(computing.await.map_err(|e| Error::Task(e.to_string()))??);
    let parts = snap
        .parts
        .iter()
        .map(|p| {
            Ok(PartEntry {
                content: contents.remove(&p.part_id).unwrap_or_default(),
                group: p.group.clone(),
                segment: p.segment,
                shard: p.shard,
                part_id: p.part_id,
                min_ts: p.min_ts,
                max_ts: p.max_ts,
                rows: p.rows,
                series: p.series,
                measures: p.measures.clone(),
                dir: rel_string(&p.rel_dir)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let wal = snap
        .wal
        .iter()
        .map(|w| {
            Ok(WalEntry {
                path: rel_string(&w.rel_path)?,
                first_lsn: w.first_lsn,
                last_lsn: w.last_lsn,
                size: w.size,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let incremental = !opts.full && stats.reused_objects > 0 && parent.is_some();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        id: hex::encode(random_bytes::<8>()),
        time: snap.taken_at,
        finished: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX),
        node_id: snap.node_id.clone(),
        engine_format: snap.format_version,
        kind: if incremental {
            BackupKind::Incremental
        } else {
            BackupKind::Full
        },
        parent: if incremental { parent } else { None },
        lsn: snap.lsn,
        catalog: strata_engine::backup_api::CatalogExport::from_catalog(&snap.catalog),
        parts,
        wal,
        files: entries,
        labels: opts.labels.clone(),
        stats,
        groups: (!opts.groups.is_empty()).then(|| opts.groups.iter().cloned().collect()),
        schedule: opts.schedule.clone(),
    };
    let save = async {
        manifest.validate(&manifest.id)?;
        progress.set_phase("writing manifest");
        // Validated above: written and remembered as the next parent without a second check
        // or a copy (a manifest of 1,000 parts is about a megabyte and a half of JSON).
        let manifest = Arc::new(manifest);
        repo.save_validated_manifest(manifest.clone()).await?;
        Ok::<_, Error>(manifest)
    };
    // Every file of the snapshot has been read (uploads and part contents are done): the
    // snapshot is released while the manifest is written.
    let manifest = match source {
        Some(src) => {
            let (saved, release_s) = tokio::join!(save, release_timed(src, snap_id));
            *released = Some(release_s);
            saved?
        }
        None => save.await?,
    };
    lap(&mut timings.manifest_s);
    progress.set_phase("done");
    Ok((manifest, timings))
}
