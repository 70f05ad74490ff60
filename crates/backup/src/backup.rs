//! `strata backup`: upload an engine snapshot into the repository, manifest last.
//!
//! Incremental by content identity: a file whose object id the repository already lists is
//! referenced without being read (part digests come from the part metadata). `--full` reads every
//! file again, checks it against its recorded digest, downloads and checks every object the
//! repository already holds, and re-uploads whatever is missing or bad, so the new snapshot
//! depends on nothing it did not check. A crash at any point leaves no manifest; the next run
//! lists the uploaded objects and reuses them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_engine::{Snapshot, SnapshotFileKind};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::crypto::random_bytes;
use crate::error::{Error, Result};
use crate::manifest::{
    BackupKind, BackupStats, FileEntry, FileKind, MANIFEST_VERSION, Manifest, PartEntry, WalEntry,
    safe_rel_path,
};
use crate::progress::Progress;
use crate::repo::Repository;

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub full: bool,
    pub labels: BTreeMap<String, String>,
    /// Files uploaded at once.
    pub parallelism: usize,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            full: false,
            labels: BTreeMap::new(),
            parallelism: 8,
        }
    }
}

fn rel_string(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::InvalidArgument(format!("non-UTF-8 path {}", p.display())))?
        .replace('\\', "/");
    if safe_rel_path(&s).is_none() {
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

/// BLAKE3 and length of a local file, streamed.
pub async fn hash_file(path: &Path) -> Result<([u8; 32], u64)> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf).await.map_err(|e| Error::io(path, e))?;
        if r == 0 {
            break;
        }
        h.update(&buf[..r]);
        n += r as u64;
    }
    Ok((*h.finalize().as_bytes(), n))
}

struct Job {
    id: String,
    src: PathBuf,
    size: u64,
    digest: [u8; 32],
    /// Stored size when the repository already holds it.
    existing: Option<u64>,
}

enum Outcome {
    Reused(u64),
    Uploaded(u64),
}

async fn run_job(repo: Arc<Repository>, job: Job, full: bool) -> Result<Outcome> {
    if let Some(stored) = job.existing {
        if !full {
            return Ok(Outcome::Reused(stored));
        }
        // --full: the local file must match its record, and the stored copy must read back.
        let (d, n) = hash_file(&job.src).await?;
        if d != job.digest || n != job.size {
            return Err(Error::SourceChanged {
                path: job.src.clone(),
                detail: "content differs from the recorded digest".into(),
            });
        }
        match repo
            .download(&job.id, job.size, &job.digest, None, &job.src)
            .await
        {
            Ok(()) => return Ok(Outcome::Reused(stored)),
            Err(Error::Corrupt { name, detail }) => {
                tracing::warn!(object = %name, %detail, "re-uploading damaged object");
                let stored = repo
                    .upload_file(&job.id, &job.src, job.size, &job.digest, true)
                    .await?;
                return Ok(Outcome::Uploaded(stored));
            }
            Err(e) => return Err(e),
        }
    }
    let stored = repo
        .upload_file(&job.id, &job.src, job.size, &job.digest, false)
        .await?;
    Ok(Outcome::Uploaded(stored))
}

/// The newest snapshot of `node_id`, the parent of an incremental backup.
async fn parent_of(repo: &Repository, node_id: &str) -> Result<Option<String>> {
    let (ms, _) = repo.manifests().await?;
    Ok(ms
        .iter()
        .rev()
        .find(|m| m.node_id == node_id)
        .map(|m| m.id.clone()))
}

/// Seconds spent in each phase of [`backup_timed`] (reported by `strata backup --json` and
/// the benchmark; never persisted).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PhaseTimings {
    /// Listing the repository's objects and finding the parent snapshot.
    pub list_s: f64,
    /// Matching the snapshot's files against the repository (what to upload).
    pub plan_s: f64,
    /// Reading, checking, compressing, encrypting and uploading new objects.
    pub upload_s: f64,
    /// Building, validating and writing the manifest.
    pub manifest_s: f64,
}

/// Uploads `snap` and writes its manifest. Returns the manifest written.
pub async fn backup(
    repo: Arc<Repository>,
    snap: &Snapshot,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> Result<Manifest> {
    backup_timed(repo, snap, opts, progress)
        .await
        .map(|(m, _)| m)
}

/// [`backup`], also returning how long each phase took.
pub async fn backup_timed(
    repo: Arc<Repository>,
    snap: &Snapshot,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> Result<(Manifest, PhaseTimings)> {
    let mut timings = PhaseTimings::default();
    let mut clock = std::time::Instant::now();
    let mut lap = |slot: &mut f64| {
        *slot = clock.elapsed().as_secs_f64();
        clock = std::time::Instant::now();
    };
    progress.set_phase("listing repository");
    let existing = repo.list_objects().await?;
    let parent = parent_of(&repo, &snap.node_id).await?;
    lap(&mut timings.list_s);

    let mut files = Vec::with_capacity(snap.files.len());
    let mut jobs: HashMap<String, Job> = HashMap::new();
    let mut total = 0u64;
    for f in &snap.files {
        let path = rel_string(&f.rel_path)?;
        let id = repo.object_id(&f.digest);
        total += f.size;
        files.push((path, f, id.clone()));
        jobs.entry(id.clone()).or_insert_with(|| Job {
            existing: existing.get(&id).map(|o| o.size),
            id,
            src: snap.dir.join(&f.rel_path),
            size: f.size,
            digest: f.digest,
        });
    }
    let job_bytes: u64 = jobs.values().map(|j| j.size).sum();
    lap(&mut timings.plan_s);
    progress.start("uploading", jobs.len() as u64, job_bytes);

    let sem = Arc::new(Semaphore::new(opts.parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (id, job) in jobs {
        let repo = repo.clone();
        let sem = sem.clone();
        let progress = progress.clone();
        let full = opts.full;
        tasks.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
            let size = job.size;
            let out = run_job(repo, job, full).await?;
            progress.file_done(size);
            Ok::<_, Error>((id, size, out))
        });
    }
    let mut stored: HashMap<String, u64> = HashMap::new();
    let mut stats = BackupStats {
        files: snap.files.len() as u64,
        bytes: total,
        ..Default::default()
    };
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
            digest: hex::encode(f.digest),
            kind: match f.kind {
                SnapshotFileKind::Part => FileKind::Part,
                SnapshotFileKind::Wal => FileKind::Wal,
                SnapshotFileKind::Meta => FileKind::Meta,
            },
            stored_size: stored.get(&id).copied().unwrap_or(0),
            object: id,
        })
        .collect();
    let parts = snap
        .parts
        .iter()
        .map(|p| {
            Ok(PartEntry {
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
    };
    manifest.validate(&manifest.id)?;
    progress.set_phase("writing manifest");
    repo.save_manifest(&manifest).await?;
    lap(&mut timings.manifest_s);
    progress.set_phase("done");
    Ok((manifest, timings))
}
