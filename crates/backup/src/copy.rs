//! `strata copy`: snapshots from one repository to another (storage apart from production,
//! the 3-2-1 rule), across keys, encryption settings and back ends.
//!
//! Incremental: the target's object ids are its own (keyed by its key, or the plain digest when
//! unencrypted), computed from each file's recorded digest; an object the target already holds
//! is referenced, not copied, and a snapshot the target already has (same id) is skipped, so a
//! second copy uploads nothing. Verifying as it goes: each object is downloaded, decrypted and
//! checked against its digest and size, and re-read and checked again while it is uploaded;
//! the snapshot's manifest is written to the target last, after every object it names (a copy
//! cut short leaves no snapshot in the target, only objects the next copy reuses). The target
//! is held under a backup lock ([`crate::gc`]) so its garbage collection never races the copy.
//! The target applies its own retention afterwards.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use futures::StreamExt;
use serde::Serialize;

use crate::crypto::random_bytes;
use crate::error::{Error, Result};
use crate::manifest::FileEntry;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::restore::parse_digest;

/// Objects copied at once.
const PARALLEL: usize = 4;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    /// Snapshots written to the target.
    pub copied: Vec<String>,
    /// Snapshots the target already had.
    pub present: Vec<String>,
    pub objects_copied: u64,
    /// Objects the target already held (referenced, not copied).
    pub objects_reused: u64,
    /// Plaintext bytes read (and checked) from the source.
    pub bytes_read: u64,
    /// Stored bytes uploaded to the target.
    pub bytes_uploaded: u64,
}

/// A scratch directory for one object at a time, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies snapshots `ids` (oldest first is best: later ones reuse what earlier ones brought)
/// from `from` to `to`.
pub async fn copy(
    from: &Repository,
    to: &Repository,
    ids: &[String],
    progress: &Progress,
) -> Result<CopyReport> {
    if from.config().id == to.config().id {
        return Err(Error::InvalidArgument(
            "source and target are the same repository".into(),
        ));
    }
    let lock = crate::gc::lock_backup(to).await?;
    let r = copy_locked(from, to, ids, progress).await;
    lock.release().await;
    r
}

async fn copy_locked(
    from: &Repository,
    to: &Repository,
    ids: &[String],
    progress: &Progress,
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    progress.set_phase("listing target");
    let present: HashSet<String> = to.snapshot_ids().await?.into_iter().collect();
    let mut stored: HashMap<String, u64> = to
        .list_objects()
        .await?
        .into_iter()
        .map(|(id, o)| (id, o.size))
        .collect();
    let scratch = Scratch(
        std::env::temp_dir().join(format!("strata-copy-{}", hex::encode(random_bytes::<8>()))),
    );
    std::fs::create_dir_all(&scratch.0).map_err(|e| Error::io(&scratch.0, e))?;
    for id in ids {
        if present.contains(id) {
            report.present.push(id.clone());
            continue;
        }
        let m = from.load_manifest(id).await?;
        let total: u64 = m.files.iter().map(|f| f.size).sum();
        progress.start("copying", m.files.len() as u64, total);
        // The objects the target lacks, each once, copied a few at a time.
        let mut todo: Vec<(String, &FileEntry, [u8; 32])> = Vec::new();
        for f in &m.files {
            let digest = parse_digest(&f.digest)?;
            let target_id = to.object_id(&digest);
            if stored.contains_key(&target_id) || todo.iter().any(|(t, _, _)| *t == target_id) {
                report.objects_reused += 1;
                progress.file_done(f.size);
            } else {
                todo.push((target_id, f, digest));
            }
        }
        let dir = scratch.0.as_path();
        let jobs: Vec<_> = todo
            .into_iter()
            .map(|(target_id, f, digest)| copy_object(from, to, dir, target_id, f.clone(), digest))
            .collect();
        let mut copies = futures::stream::iter(jobs).buffer_unordered(PARALLEL);
        while let Some(r) = copies.next().await {
            let (target_id, size, s) = r?;
            report.objects_copied += 1;
            report.bytes_read += size;
            report.bytes_uploaded += s;
            stored.insert(target_id, s);
            progress.file_done(size);
        }
        drop(copies);
        let mut out = m.clone();
        for f in &mut out.files {
            let target_id = to.object_id(&parse_digest(&f.digest)?);
            f.stored_size = stored.get(&target_id).copied().ok_or_else(|| {
                Error::Task(format!("object {target_id} was neither copied nor present"))
            })?;
            f.object = target_id;
        }
        out.validate(id)?;
        progress.set_phase("writing manifest");
        to.save_manifest(&out).await?;
        report.copied.push(id.clone());
    }
    progress.set_phase("done");
    Ok(report)
}

/// Downloads source object `f` (checked against its digest) into `dir` and uploads it to the
/// target as `target_id` (checked again as it is read); returns the id, plain and stored size.
async fn copy_object(
    from: &Repository,
    to: &Repository,
    dir: &std::path::Path,
    target_id: String,
    f: FileEntry,
    digest: [u8; 32],
) -> Result<(String, u64, u64)> {
    let path = dir.join(&target_id);
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| Error::io(&path, e))?;
    let r = async {
        from.download(&f.object, f.size, &digest, Some(&mut file), &path)
            .await?;
        drop(file);
        to.upload_file(&target_id, &path, f.size, &digest, false)
            .await
    }
    .await;
    let _ = tokio::fs::remove_file(&path).await;
    r.map(|s| (target_id, f.size, s))
}
