//! Publishing: how a finished part enters the data directory and how the files that name the
//! live part set (a shard's `MANIFEST-*`, the root `CHECKPOINT`) are written. Flush, merge and
//! snapshot all go through here; the order (part renamed into its shard and fsynced, then the
//! manifest, then the checkpoint) is what makes a crash at any step leave a consistent
//! directory (`docs/format/data-dir.md`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::catalog::CatalogState;
use crate::error::{Error, Result};
use crate::format::{create_dir_all, fsync_dir, remove_all};
use crate::manifest::{self, Manifest};
use crate::memtable::SeriesMeta;
use crate::meta_files::{self, Checkpoint};
use crate::part::{PartIdentity, PartReader, part_dir_name, write_part};
use crate::rows::Rows;

use super::state::{Inner, ShardKey, ShardState, read, shard_rel};

/// Write a part under `tmp/` and move it into its shard directory (not yet published).
pub fn write_part_into_shard<'a>(
    inner: &Inner,
    key: &ShardKey,
    ident: PartIdentity,
    series: impl IntoIterator<Item = (&'a SeriesMeta, Rows)>,
) -> Result<Option<PartReader>> {
    let tmp = tmp_part_dir(inner, ident.part_id);
    let written = match write_part(inner.vfs(), &tmp, ident, series) {
        Ok(w) => w,
        Err(e) => {
            // Best effort: open removes whatever is left in tmp/ anyway.
            let _ = remove_all(inner.vfs(), &tmp);
            return Err(e);
        }
    };
    if written.is_none() {
        return Ok(None);
    }
    install_part(inner, key, &tmp).map(Some)
}

/// Where a part is written before it is installed: `tmp/part-<id>` (removed at open).
pub fn tmp_part_dir(inner: &Inner, id: u64) -> PathBuf {
    inner
        .env
        .dir
        .join("tmp")
        .join(format!("part-{}", part_dir_name(id)))
}

/// Move a finished part from `tmp/` into its shard directory and open it. The part is on disk
/// but not live until a manifest lists it (open removes unlisted parts).
pub fn install_part(inner: &Inner, key: &ShardKey, tmp: &Path) -> Result<PartReader> {
    let name = tmp
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("part-"))
        .unwrap_or_default()
        .to_string();
    let shard_dir = inner.env.dir.join(shard_rel(key));
    let vfs = inner.vfs();
    // A shard of the published version has a durable directory (its manifest is in it). Any
    // other may have been created by an attempt that failed before making it durable (out of
    // file descriptors, say): existing is not enough.
    let published = read(&inner.published.state)
        .version
        .shards
        .contains_key(key);
    if !published {
        create_dir_all(vfs, &shard_dir)?;
        // Make the new directory chain durable.
        let mut d = shard_dir.as_path();
        while let Some(parent) = d.parent() {
            fsync_dir(vfs, parent)?;
            if parent == inner.env.dir {
                break;
            }
            d = parent;
        }
    }
    let dest = shard_dir.join(&name);
    if let Err(e) = vfs.rename(tmp, &dest) {
        let _ = remove_all(vfs, tmp);
        return Err(Error::io(&dest, e));
    }
    // No manifest lists the part yet, so removing it on failure is safe.
    let opened = fsync_dir(vfs, &shard_dir).and_then(|()| PartReader::open(vfs, &dest));
    if opened.is_err() {
        let _ = remove_all(vfs, &dest);
    }
    opened
}

/// The manifest describing a shard's live part set.
pub fn manifest_of(inner: &Inner, key: &ShardKey, s: &ShardState) -> Manifest {
    Manifest {
        epoch: s.epoch,
        group: key.group.clone(),
        segment_start: key.segment,
        segment_end: s.segment_end,
        shard: key.shard,
        shards: s.shards,
        flushed_lsn: s.flushed_lsn,
        next_part_id: inner.published.next_part_id.load(Ordering::SeqCst),
        parts: s.parts.iter().map(|p| p.meta.part_id).collect(),
    }
}

/// Publish a shard's part set: its parts become live, the ones it no longer lists dead.
pub fn write_manifest(inner: &Inner, key: &ShardKey, s: &ShardState) -> Result<()> {
    manifest::publish(
        inner.vfs(),
        &inner.env.dir.join(shard_rel(key)),
        &manifest_of(inner, key, s),
    )
}

/// The checkpoint at `lsn`: every write through it is in published parts.
pub fn checkpoint_for(catalog: &CatalogState, lsn: u64, next_part_id: u64) -> Checkpoint {
    Checkpoint {
        lsn,
        next_part_id,
        catalog: catalog.to_public(),
    }
}

/// Publish the checkpoint at `lsn` (after the manifests that hold every write through it).
pub fn write_checkpoint(inner: &Inner, catalog: &CatalogState, lsn: u64) -> Result<()> {
    let ckpt = checkpoint_for(
        catalog,
        lsn,
        inner.published.next_part_id.load(Ordering::SeqCst),
    );
    meta_files::write_checkpoint(inner.vfs(), &inner.env.dir, &ckpt)?;
    inner.published.checkpoint_lsn.store(lsn, Ordering::SeqCst);
    Ok(())
}
