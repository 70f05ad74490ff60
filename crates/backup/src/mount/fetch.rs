//! Reading repository objects for a mount: whole objects into the cache (decrypted, every
//! frame checked, size and digest compared with the manifest), or just an object's first
//! frame by two ranged reads (a part's data header, read when the engine opens the part).
//!
//! The stored bytes of a first frame read by range are kept in the cache (`<id>.frame0`):
//! when the object is then needed whole, only the rest is fetched (one ranged read from the
//! end of the first frame) and the kept bytes are decoded in front of it, so every frame is
//! checked and the digest of the whole plaintext compared exactly as a full download does,
//! but no byte of the object crosses the network twice.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::TryStreamExt;
use object_store::{GetOptions, GetRange, ObjectStoreExt};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

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
        // A first frame read by range earlier (this mount or a previous one sharing the
        // cache): only what follows it is fetched.
        let prefix = self
            .cache
            .get_frame0(&f.object)
            .filter(|p| (p.len() as u64) < f.stored_size);
        let (repo, entry, path) = (self.repo.clone(), f.clone(), tmp.clone());
        let res = self.bridge.run(async move {
            let create = async || {
                tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| Error::io(&path, e))
            };
            let mut fetched = 0;
            if let Some(p) = prefix {
                fetched = entry.stored_size - p.len() as u64;
                let mut out = create().await?;
                match download_rest(&repo, &entry, &digest, &p, &mut out, &path).await {
                    Ok(()) => return Ok(fetched),
                    // The kept frame may be what is damaged (it is a local file): the whole
                    // object is fetched before anything is reported.
                    Err(e) => tracing::debug!(error = %e, "reading after a kept first frame"),
                }
            }
            let mut out = create().await?;
            repo.download(&entry.object, entry.size, &digest, Some(&mut out), &path)
                .await?;
            Ok::<_, Error>(fetched + entry.stored_size)
        });
        match res.and_then(|r| r) {
            Ok(fetched) => {
                self.stats.objects.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(fetched, Ordering::Relaxed);
                let file = self.cache.insert(&tmp, &f.object);
                // The whole object serves its first frame from now on.
                self.cache.drop_frame0(&f.object);
                file
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
        let (frame, raw) = self.bridge.run(async move {
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
            let mut raw = Vec::with_capacity(head.len() + body.len());
            raw.extend_from_slice(&head);
            raw.extend_from_slice(&body);
            match dec.next_frame()? {
                Some(frame) => Ok::<_, Error>((frame, raw)),
                None => Err(Error::corrupt(name.to_string(), "truncated first frame")),
            }
        })??;
        self.stats.ranged.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(raw.len() as u64, Ordering::Relaxed);
        let mut head = frame;
        head.truncate(HEAD_BYTES);
        self.cache.put_frame0(&f.object, &raw);
        self.cache.put_head(&f.object, &head);
        Ok(head)
    }
}

/// Fetches object `f` after its first `prefix.len()` stored bytes (its header and first frame,
/// kept from a ranged read) and decodes the kept bytes and the rest as one object into `out`:
/// every frame authenticated (or checksummed), the plaintext's size and BLAKE3 digest
/// compared with the manifest's, as [`Repository::download`] does for a whole object.
async fn download_rest(
    repo: &Repository,
    f: &FileEntry,
    digest: &[u8; 32],
    prefix: &[u8],
    out: &mut tokio::fs::File,
    out_path: &std::path::Path,
) -> Result<()> {
    let name = object_path(&f.object);
    let opts = GetOptions {
        range: Some(GetRange::Bounded(prefix.len() as u64..f.stored_size)),
        ..Default::default()
    };
    let r = match repo.store().get_opts(&name, opts).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::corrupt(name.to_string(), "object is missing"));
        }
        Err(e) => return Err(e.into()),
    };
    let mut dec = Decoder::new(repo.keys(), name.as_ref());
    let mut hasher = blake3::Hasher::new();
    let mut written = 0u64;
    let mut put = async |dec: &mut Decoder<'_>| -> Result<()> {
        while let Some(frame) = dec.next_frame()? {
            written += frame.len() as u64;
            if written > f.size {
                return Err(Error::corrupt(name.to_string(), "longer than recorded"));
            }
            hasher.update(&frame);
            out.write_all(&frame)
                .await
                .map_err(|e| Error::io(out_path, e))?;
        }
        Ok(())
    };
    dec.push(prefix);
    put(&mut dec).await?;
    let mut stream = r.into_stream();
    while let Some(chunk) = stream.try_next().await? {
        dec.push(&chunk);
        put(&mut dec).await?;
    }
    dec.finish()?;
    out.flush().await.map_err(|e| Error::io(out_path, e))?;
    if written != f.size {
        return Err(Error::corrupt(
            name.to_string(),
            format!("holds {written} bytes, the manifest says {}", f.size),
        ));
    }
    if hasher.finalize().as_bytes() != digest {
        return Err(Error::corrupt(name.to_string(), "content digest mismatch"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Read;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use object_store::path::Path;
    use object_store::{GetResult, memory::InMemory};

    use super::*;
    use crate::crypto::KdfParams;
    use crate::manifest::FileKind;
    use crate::repo::InitOptions;
    use crate::store::DynStore;
    use crate::store::decorate::{Decorated, Decorator};

    /// Every get of a data object: (path, byte range served).
    type Log = Arc<Mutex<Vec<(String, std::ops::Range<u64>)>>>;

    /// Records what every get of a data object served.
    #[derive(Debug)]
    struct Served {
        inner: DynStore,
        log: Log,
    }

    #[async_trait]
    impl Decorator for Served {
        const NAME: &'static str = "Served";

        fn inner(&self) -> &DynStore {
            &self.inner
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            let r = self.inner.get_opts(location, options).await?;
            if location.as_ref().starts_with("data/") {
                let mut g = self.log.lock().unwrap();
                g.push((location.to_string(), r.range.clone()));
            }
            Ok(r)
        }
    }

    struct Setup {
        fetcher: Fetcher,
        entry: FileEntry,
        data: Vec<u8>,
        log: Log,
        inner: DynStore,
        _dir: tempfile::TempDir,
    }

    /// An encrypted repository holding one incompressible object of 2.5 frames, behind a
    /// store that records every byte range it serves.
    fn setup() -> Setup {
        setup_with(|s| s)
    }

    /// [`setup`] with `layer` over the recording store (the fault layer).
    fn setup_with(layer: impl FnOnce(DynStore) -> DynStore) -> Setup {
        let inner: DynStore = Arc::new(InMemory::new());
        let log = Arc::new(Mutex::new(Vec::new()));
        let store: DynStore = layer(Arc::new(Decorated(Served {
            inner: inner.clone(),
            log: log.clone(),
        })));
        let bridge = Bridge::new().unwrap();
        let mut data = vec![0u8; crate::format::FRAME_SIZE * 5 / 2];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut data);
        let digest = *blake3::hash(&data).as_bytes();
        let bytes = data.clone();
        let (repo, entry) = bridge
            .run(async move {
                let opts = InitOptions {
                    password: Some("pw".into()),
                    kdf: KdfParams {
                        m_cost: 64,
                        t_cost: 1,
                        p_cost: 1,
                    },
                    ..Default::default()
                };
                let repo = Repository::init(store, "mem://", opts).await.unwrap();
                let id = repo.object_id(&digest);
                let size = bytes.len() as u64;
                let stored = repo
                    .upload_compressed(
                        &id,
                        &bytes[..],
                        std::path::Path::new("data.bin"),
                        size,
                        &digest,
                        false,
                    )
                    .await
                    .unwrap();
                let entry = FileEntry {
                    path: "g/seg/0/1/data.bin".into(),
                    size,
                    digest: hex::encode(digest),
                    kind: FileKind::Part,
                    object: id,
                    stored_size: stored,
                };
                (repo, entry)
            })
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = ObjectCache::open(Some(dir.path()), 1 << 30)
            .unwrap()
            .for_repository(&repo.config().id)
            .unwrap();
        let fetcher = Fetcher {
            bridge,
            repo,
            cache,
            stats: Arc::default(),
        };
        log.lock().unwrap().clear();
        Setup {
            fetcher,
            entry,
            data,
            log,
            inner,
            _dir: dir,
        }
    }

    fn whole_bytes(s: &Setup) -> Result<Vec<u8>> {
        let mut f = s.fetcher.whole(&s.entry)?;
        let mut out = Vec::new();
        f.read_to_end(&mut out).unwrap();
        Ok(out)
    }

    #[test]
    fn a_first_frame_read_by_range_is_not_fetched_again_with_the_whole_object() {
        let s = setup();
        let head = s.fetcher.head(&s.entry).unwrap();
        assert_eq!(head, s.data[..HEAD_BYTES]);
        assert_eq!(whole_bytes(&s).unwrap(), s.data);
        // Every stored byte of the object was served exactly once.
        let log = s.log.lock().unwrap().clone();
        let mut covered = vec![0u8; s.entry.stored_size as usize];
        for (path, r) in &log {
            assert_eq!(path, &object_path(&s.entry.object).to_string());
            for b in &mut covered[r.start as usize..r.end as usize] {
                *b += 1;
            }
        }
        assert!(covered.iter().all(|&n| n == 1), "ranges served: {log:?}");
        let st = s.fetcher.stats.snapshot();
        assert_eq!(st.bytes_fetched, s.entry.stored_size);
        assert_eq!((st.ranged_reads, st.objects_fetched), (1, 1));
        // The kept first frame is gone once the whole object is cached; it serves again.
        assert!(s.fetcher.cache.get_frame0(&s.entry.object).is_none());
        assert_eq!(whole_bytes(&s).unwrap(), s.data);
        assert_eq!(s.log.lock().unwrap().len(), log.len());
    }

    #[test]
    fn damage_after_a_kept_first_frame_fails_naming_the_object_and_damage_inside_it_refetches() {
        let s = setup();
        s.fetcher.head(&s.entry).unwrap();
        let name = object_path(&s.entry.object);
        // A byte of the second frame flipped in the repository.
        let stored = s
            .fetcher
            .bridge
            .run({
                let (inner, name) = (s.inner.clone(), name.clone());
                async move { inner.get(&name).await.unwrap().bytes().await.unwrap() }
            })
            .unwrap();
        let mut bad = stored.to_vec();
        let at = bad.len() - 1000;
        bad[at] ^= 1;
        s.fetcher
            .bridge
            .run({
                let (inner, name) = (s.inner.clone(), name.clone());
                async move { inner.put(&name, bad.into()).await.unwrap() }
            })
            .unwrap();
        let err = whole_bytes(&s).unwrap_err().to_string();
        assert!(err.contains(name.as_ref()), "{err}");
        assert!(s.fetcher.cache.get(&s.entry.object, s.entry.size).is_none());

        // The repository intact again, the kept first frame damaged in the cache.
        s.fetcher
            .bridge
            .run({
                let (inner, name) = (s.inner.clone(), name.clone());
                async move { inner.put(&name, stored.into()).await.unwrap() }
            })
            .unwrap();
        let mut kept = s.fetcher.cache.get_frame0(&s.entry.object).unwrap();
        let at = kept.len() - 100;
        kept[at] ^= 1;
        s.fetcher.cache.put_frame0(&s.entry.object, &kept);
        // A damaged cache costs a full download, never an error or a wrong answer.
        let before = s.fetcher.stats.snapshot().bytes_fetched;
        assert_eq!(whole_bytes(&s).unwrap(), s.data);
        let after = s.fetcher.stats.snapshot().bytes_fetched;
        assert!(after - before >= s.entry.stored_size, "{before} {after}");
    }

    #[test]
    fn a_download_broken_after_a_kept_first_frame_fails_cleanly_and_the_next_reads_only_the_rest() {
        use crate::store::fault::FaultStore;
        let faults = std::sync::OnceLock::new();
        let s = setup_with(|inner| {
            let f = FaultStore::new(inner);
            let _ = faults.set(f.faults.clone());
            Arc::new(f)
        });
        let faults = faults.get().unwrap();
        s.fetcher.head(&s.entry).unwrap();
        // The ranged read of the rest fails, and the whole object's download then breaks after
        // 1,000 bytes: the attempt reports it, nothing enters the cache.
        faults
            .cut_after
            .store(1000, std::sync::atomic::Ordering::SeqCst);
        faults
            .cut_bodies
            .store(1, std::sync::atomic::Ordering::SeqCst);
        faults
            .fail_gets
            .store(1, std::sync::atomic::Ordering::SeqCst);
        assert!(whole_bytes(&s).is_err());
        assert!(s.fetcher.cache.get(&s.entry.object, s.entry.size).is_none());
        // Next time it works, from the kept first frame, and every byte checks out.
        let before = s.fetcher.stats.snapshot().bytes_fetched;
        assert_eq!(whole_bytes(&s).unwrap(), s.data);
        let kept = s
            .fetcher
            .cache
            .get_frame0(&s.entry.object)
            .map_or(0, |k| k.len());
        assert_eq!(kept, 0, "dropped once the whole object is cached");
        let rest = s.fetcher.stats.snapshot().bytes_fetched - before;
        assert!(rest < s.entry.stored_size, "only the rest: {rest}");
    }
}
