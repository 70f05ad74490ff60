//! Reading repository objects for a mount: whole objects into the cache (decrypted, every
//! frame checked, size and digest compared with the manifest), or just an object's first
//! frame by two ranged reads (a part's data header, read when the engine opens the part).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use object_store::ObjectStoreExt;
use serde::Serialize;

use super::bridge::Bridge;
use super::cache::ObjectCache;
use crate::error::{Error, Result};
use crate::format::{Decoder, HEADER_LEN};
use crate::manifest::FileEntry;
use crate::repo::{Repository, object_path};

/// What a mount read from its repository (and what its cache saved it).
#[derive(Debug, Default)]
pub struct MountStats {
    objects: AtomicU64,
    ranged: AtomicU64,
    bytes: AtomicU64,
    cache_hits: AtomicU64,
}

/// A copy of [`MountStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MountStatsSnapshot {
    /// Whole objects downloaded.
    pub objects_fetched: u64,
    /// First frames read by range (part headers).
    pub ranged_reads: u64,
    /// Stored bytes transferred from the repository.
    pub bytes_fetched: u64,
    /// Files served from the local cache.
    pub cache_hits: u64,
}

impl MountStats {
    pub fn snapshot(&self) -> MountStatsSnapshot {
        MountStatsSnapshot {
            objects_fetched: self.objects.load(Ordering::Relaxed),
            ranged_reads: self.ranged.load(Ordering::Relaxed),
            bytes_fetched: self.bytes.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
        }
    }
}

/// Reads of a file that fit in this many leading bytes are served from the object's first
/// frame, without fetching the whole object (a part's data header, read at open).
pub(crate) const HEAD_BYTES: usize = 4096;

pub(crate) struct Fetcher {
    pub(crate) bridge: Bridge,
    pub(crate) repo: Repository,
    pub(crate) cache: ObjectCache,
    pub(crate) stats: Arc<MountStats>,
}

fn digest_of(f: &FileEntry) -> Result<[u8; 32]> {
    hex::decode(&f.digest)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::corrupt(object_path(&f.object).to_string(), "bad digest in manifest"))
}

impl Fetcher {
    /// The whole plaintext of `f`, as a file in the cache.
    pub(crate) fn whole(&self, f: &FileEntry) -> Result<File> {
        if let Some(file) = self.cache.get(&f.object, f.size) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(file);
        }
        let digest = digest_of(f)?;
        let tmp = self.cache.tmp_path(&f.object);
        let (repo, id, size, path) = (self.repo.clone(), f.object.clone(), f.size, tmp.clone());
        let res = self.bridge.run(async move {
            let mut out = tokio::fs::File::create(&path)
                .await
                .map_err(|e| Error::io(&path, e))?;
            repo.download(&id, size, &digest, Some(&mut out), &path)
                .await
        });
        match res.and_then(|r| r) {
            Ok(()) => {
                self.stats.objects.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(f.stored_size, Ordering::Relaxed);
                self.cache.insert(&tmp, &f.object)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// The first (at most) [`HEAD_BYTES`] of `f`'s plaintext, checked: by two ranged reads
    /// (the header and frame length, then the first frame, whose tag or checksum covers it),
    /// or from the cache when the object or its head is there.
    pub(crate) fn head(&self, f: &FileEntry) -> Result<Vec<u8>> {
        if let Some(file) = self.cache.get(&f.object, f.size) {
            use std::os::unix::fs::FileExt;
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            let n = f.size.min(HEAD_BYTES as u64) as usize;
            let mut buf = vec![0u8; n];
            let path = object_path(&f.object).to_string();
            file.read_exact_at(&mut buf, 0)
                .map_err(|e| Error::io(path, e))?;
            return Ok(buf);
        }
        if let Some(head) = self.cache.get_head(&f.object) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(head);
        }
        if f.size <= crate::format::FRAME_SIZE as u64 {
            // One frame is the whole object: a ranged read would cost as much as fetching it,
            // and the scan would fetch it again. Take it whole, into the cache.
            use std::os::unix::fs::FileExt;
            let file = self.whole(f)?;
            let mut buf = vec![0u8; f.size.min(HEAD_BYTES as u64) as usize];
            let path = object_path(&f.object).to_string();
            file.read_exact_at(&mut buf, 0)
                .map_err(|e| Error::io(path, e))?;
            return Ok(buf);
        }
        let (store, keys, name, stored) = (
            self.repo.store().clone(),
            self.repo.keys().cloned(),
            object_path(&f.object),
            f.stored_size,
        );
        let head_len = (HEADER_LEN as u64 + 4).min(stored);
        let (frame, fetched) = self.bridge.run(async move {
            let head = store.get_range(&name, 0..head_len).await?;
            let mut dec = Decoder::new(keys.as_ref(), name.as_ref());
            dec.push(&head);
            let len = if head.len() == HEADER_LEN + 4 {
                let mut b = [0u8; 4];
                b.copy_from_slice(&head[HEADER_LEN..]);
                u64::from(u32::from_le_bytes(b))
            } else {
                0
            };
            let end = (head_len + len).min(stored);
            if end <= head_len {
                return Err(Error::corrupt(name.to_string(), "truncated first frame"));
            }
            let body = store.get_range(&name, head_len..end).await?;
            dec.push(&body);
            let fetched = head.len() as u64 + body.len() as u64;
            match dec.next_frame()? {
                Some(frame) => Ok::<_, Error>((frame, fetched)),
                None => Err(Error::corrupt(name.to_string(), "truncated first frame")),
            }
        })??;
        self.stats.ranged.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(fetched, Ordering::Relaxed);
        let mut head = frame;
        head.truncate(HEAD_BYTES);
        self.cache.put_head(&f.object, &head);
        Ok(head)
    }
}
