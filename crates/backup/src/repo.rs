//! The repository: `config`, `keys/`, content-addressed `data/` objects and `snapshots/`
//! manifests on one object store. Layout and bytes in `docs/format/repository.md`.
//!
//! Ordering invariants (restic's): data objects are written before any manifest that names
//! them; a manifest is written last and never rewritten; readers list manifests first; an object
//! is deleted only when no manifest names it and it is older than the prune grace period.

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    WriteMultipart,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::agent::proto::KeyEntry;
use crate::config::{self, KeyFile, REPO_MAGIC, REPO_VERSION, RepoConfig};
use crate::crypto::{self, KdfParams, Keys};
use crate::error::{Error, Result};
use crate::format::{self, Compression, Decoder, Encoder, FRAME_SIZE};
use crate::manifest::{Manifest, max_stored_size};
use crate::store::DynStore;

/// Objects whose stored form may exceed this go up as multipart uploads of this chunk size.
pub const MULTIPART_CHUNK: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub encryption: bool,
    pub compression: Compression,
    pub password: Option<String>,
    pub kdf: KdfParams,
}

impl InitOptions {
    /// Checks that need no store: an encrypted repository needs a non-empty password.
    pub fn validate(&self) -> Result<()> {
        if self.encryption {
            match self.password.as_deref() {
                None => return Err(Error::InitPasswordRequired),
                Some("") => {
                    return Err(Error::InvalidArgument("empty repository password".into()));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            encryption: true,
            compression: Compression::Zstd(3),
            password: None,
            kdf: KdfParams::default(),
        }
    }
}

/// A stored object as listed.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Repository {
    store: DynStore,
    url: String,
    config: RepoConfig,
    keys: Option<Keys>,
    compression: Compression,
    /// The manifest this handle last wrote or loaded as a parent. A manifest never changes
    /// once written, so the next backup's parent lookup reuses it while it is still the newest
    /// listed, instead of downloading and decoding it again (a server keeps one handle across
    /// its backup jobs).
    recent: Arc<Mutex<Option<Arc<Manifest>>>>,
}

fn hex_id(b: &[u8; 32]) -> String {
    crate::manifest::hex32(b)
}

pub fn object_path(id: &str) -> Path {
    Path::from(format!("data/{}/{}", &id[..2.min(id.len())], id))
}

pub fn snapshot_path(id: &str) -> Path {
    Path::from(format!("snapshots/{id}"))
}

fn not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

impl Repository {
    pub async fn init(store: DynStore, url: &str, opts: InitOptions) -> Result<Repository> {
        opts.validate()?;
        match store.head(&Path::from("config")).await {
            Ok(_) => return Err(Error::RepositoryExists(url.into())),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let id = hex::encode(crypto::random_bytes::<16>());
        let created = Utc::now().to_rfc3339();
        let keys = if opts.encryption {
            let password = opts
                .password
                .as_deref()
                .ok_or(Error::InitPasswordRequired)?;
            let keys = Keys::generate();
            let wrapped = crypto::wrap(&keys, password.as_bytes(), &id, opts.kdf)?;
            let kf = KeyFile {
                created: created.clone(),
                wrapped,
            };
            let key_id = hex::encode(crypto::random_bytes::<8>());
            put_create(
                &store,
                &Path::from(format!("keys/{key_id}")),
                config::seal_doc(&kf)?,
            )
            .await?;
            Some(keys)
        } else {
            None
        };
        let cfg = RepoConfig {
            magic: REPO_MAGIC.into(),
            version: REPO_VERSION,
            id,
            created,
            encryption: if opts.encryption {
                "aes-256-gcm"
            } else {
                "none"
            }
            .into(),
            compression: match opts.compression {
                Compression::None => "none".into(),
                Compression::Zstd(l) => format!("zstd:{l}"),
            },
        };
        // The config goes last: a repository without it does not exist yet.
        put_create(&store, &Path::from("config"), config::seal_doc(&cfg)?).await?;
        Ok(Repository {
            store,
            url: url.into(),
            compression: opts.compression,
            config: cfg,
            keys,
            recent: Arc::default(),
        })
    }

    pub async fn open(store: DynStore, url: &str, password: Option<&str>) -> Result<Repository> {
        let how = Unlock {
            password,
            agent: None,
        };
        Ok(Repository::open_with(store, url, how).await?.0)
    }

    /// [`Repository::open`], asking a `strata agent` first when `how.agent` names one (see
    /// [`crate::agent`]). Also returns, when the password unlocked it, the key the password
    /// derived for the key file it opened (what `strata agent add` hands to the agent).
    pub async fn open_with(
        store: DynStore,
        url: &str,
        how: Unlock<'_>,
    ) -> Result<(Repository, Option<KeyEntry>)> {
        let bytes = match store.get(&Path::from("config")).await {
            Ok(r) => r.bytes().await?,
            Err(e) if not_found(&e) => return Err(Error::NoRepository(url.into())),
            Err(e) => return Err(e.into()),
        };
        let cfg: RepoConfig = config::open_doc("config", &bytes)?;
        cfg.check()?;
        let mut grant = None;
        let keys = if cfg.encrypted() {
            if how.password.is_none() && how.agent.is_none() {
                return Err(Error::PasswordRequired);
            }
            let (keys, g) = unlock(&store, &cfg, how).await?;
            grant = g;
            Some(keys)
        } else {
            // The config's checksum is unkeyed, so anyone who can write to the repository can
            // flip it to `none`; key files beside it show the repository was created encrypted.
            // Refuse rather than let the next backup write plaintext beside encrypted objects.
            let mut keys = store.list(Some(&Path::from("keys")));
            if let Some(k) = keys.try_next().await? {
                return Err(Error::corrupt(
                    "config",
                    format!(
                        "says the repository is unencrypted, but key file {} exists: the config \
                         was tampered with or damaged; restore it from a copy",
                        k.location
                    ),
                ));
            }
            None
        };
        let repo = Repository {
            store,
            url: url.into(),
            compression: cfg.compression()?,
            config: cfg,
            keys,
            recent: Arc::default(),
        };
        Ok((repo, grant))
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The compression new objects are written with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    pub fn keys(&self) -> Option<&Keys> {
        self.keys.as_ref()
    }

    /// The object id of a file with this BLAKE3 digest: keyed when encrypted.
    pub fn object_id(&self, digest: &[u8; 32]) -> String {
        match &self.keys {
            Some(k) => hex_id(&k.object_id(digest)),
            None => hex_id(digest),
        }
    }

    /// Every data object, by id.
    pub async fn list_objects(&self) -> Result<HashMap<String, StoredObject>> {
        let mut out = HashMap::new();
        let mut s = self.store.list(Some(&Path::from("data")));
        while let Some(m) = s.try_next().await? {
            if let Some(id) = m.location.filename() {
                out.insert(
                    id.to_string(),
                    StoredObject {
                        size: m.size,
                        last_modified: m.last_modified,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Size of one stored object, `None` when missing.
    pub async fn object_size(&self, id: &str) -> Result<Option<u64>> {
        match self.store.head(&object_path(id)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams `file` into object `id`, checking on the way that it has exactly `size` bytes
    /// and the `digest` the snapshot recorded (nothing is published otherwise). `overwrite`
    /// replaces a present object (repair by `backup --full`). Returns the stored size.
    pub async fn upload_file(
        &self,
        id: &str,
        file: &FsPath,
        size: u64,
        digest: &[u8; 32],
        overwrite: bool,
    ) -> Result<u64> {
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| Error::io(file, e))?;
        self.upload_from(id, f, file, size, digest, overwrite).await
    }

    /// [`Repository::upload_file`] from any reader; `file` names the source in errors.
    pub async fn upload_from<R: tokio::io::AsyncRead + Unpin>(
        &self,
        id: &str,
        f: R,
        file: &FsPath,
        size: u64,
        digest: &[u8; 32],
        overwrite: bool,
    ) -> Result<u64> {
        self.upload_stream(id, f, file, (size, digest), overwrite, self.compression)
            .await
    }

    /// [`Repository::upload_from`] of bytes that are compressed already (a part's files):
    /// stored raw without trying zstd on them.
    pub async fn upload_compressed<R: tokio::io::AsyncRead + Unpin>(
        &self,
        id: &str,
        f: R,
        file: &FsPath,
        size: u64,
        digest: &[u8; 32],
        overwrite: bool,
    ) -> Result<u64> {
        self.upload_stream(id, f, file, (size, digest), overwrite, Compression::None)
            .await
    }

    async fn upload_stream<R: tokio::io::AsyncRead + Unpin>(
        &self,
        id: &str,
        mut f: R,
        file: &FsPath,
        (size, digest): (u64, &[u8; 32]),
        overwrite: bool,
        compression: Compression,
    ) -> Result<u64> {
        let name = object_path(id);
        let mut enc = Encoder::new(self.keys.as_ref(), name.as_ref(), compression);
        let frames = size.div_ceil(FRAME_SIZE as u64).max(1);
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; FRAME_SIZE];
        let changed = |detail: &str| Error::SourceChanged {
            path: file.to_path_buf(),
            detail: detail.to_string(),
        };
        // Appends frame `i` to `out`.
        let mut read_frame = async |i: u64, enc: &mut Encoder, out: &mut Vec<u8>| -> Result<()> {
            let n = (size - i * FRAME_SIZE as u64).min(FRAME_SIZE as u64) as usize;
            f.read_exact(&mut buf[..n])
                .await
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => changed("shorter than recorded"),
                    _ => Error::io(file, e),
                })?;
            hasher.update(&buf[..n]);
            let last = i + 1 == frames;
            if last {
                let mut probe = [0u8; 1];
                if f.read(&mut probe).await.map_err(|e| Error::io(file, e))? > 0 {
                    return Err(changed("longer than recorded"));
                }
            }
            enc.frame_into(out, &buf[..n], last)
        };
        if max_stored_size(size) <= MULTIPART_CHUNK as u64 {
            // Sized for the largest the object can be: the frames land in place, once.
            let mut out = Vec::with_capacity(max_stored_size(size) as usize);
            out.extend_from_slice(enc.header());
            for i in 0..frames {
                read_frame(i, &mut enc, &mut out).await?;
            }
            if hasher.finalize().as_bytes() != digest {
                return Err(changed("content digest differs from the recorded one"));
            }
            let stored = out.len() as u64;
            let mode = if overwrite {
                PutMode::Overwrite
            } else {
                PutMode::Create
            };
            let opts = PutOptions {
                mode,
                ..Default::default()
            };
            match self
                .store
                .put_opts(&name, PutPayload::from(out), opts)
                .await
            {
                Ok(_) => {}
                // Content-addressed: whoever wrote it first wrote the same bytes.
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(stored);
        }
        let upload = self
            .store
            .put_multipart_opts(&name, PutMultipartOptions::default())
            .await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
        let mut stored = enc.header().len() as u64;
        w.write(enc.header());
        for i in 0..frames {
            // Each frame is handed over as it is (`put`, not `write`: no copy into the upload's
            // buffer).
            let mut frame = Vec::with_capacity(max_stored_size(FRAME_SIZE as u64) as usize);
            if let Err(e) = read_frame(i, &mut enc, &mut frame).await {
                let _ = w.abort().await;
                return Err(e);
            }
            stored += frame.len() as u64;
            w.wait_for_capacity(2).await?;
            w.put(bytes::Bytes::from(frame));
        }
        if hasher.finalize().as_bytes() != digest {
            let _ = w.abort().await;
            return Err(changed("content digest differs from the recorded one"));
        }
        w.finish().await?;
        Ok(stored)
    }

    /// Streams object `id`, decrypting and checking it, into `sink` (or nowhere: a read check).
    /// Fails unless the plaintext has exactly `size` bytes and BLAKE3 `digest`.
    pub async fn download(
        &self,
        id: &str,
        size: u64,
        digest: &[u8; 32],
        mut sink: Option<&mut tokio::fs::File>,
        sink_path: &FsPath,
    ) -> Result<()> {
        let name = object_path(id);
        let r = match self.store.get(&name).await {
            Ok(r) => r,
            Err(e) if not_found(&e) => {
                return Err(Error::corrupt(name.to_string(), "object is missing"));
            }
            Err(e) => return Err(e.into()),
        };
        let mut stream = r.into_stream();
        let mut dec = Decoder::new(self.keys.as_ref(), name.as_ref());
        let mut hasher = blake3::Hasher::new();
        let mut written = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            dec.push(&chunk);
            while let Some(frame) = dec.next_frame()? {
                written += frame.len() as u64;
                if written > size {
                    return Err(Error::corrupt(name.to_string(), "longer than recorded"));
                }
                hasher.update(&frame);
                if let Some(f) = sink.as_deref_mut() {
                    f.write_all(&frame)
                        .await
                        .map_err(|e| Error::io(sink_path, e))?;
                }
            }
        }
        dec.finish()?;
        if let Some(f) = sink {
            // tokio's File buffers one write in flight; make it land before anyone reads.
            f.flush().await.map_err(|e| Error::io(sink_path, e))?;
        }
        if written != size {
            return Err(Error::corrupt(
                name.to_string(),
                format!("holds {written} bytes, the manifest says {size}"),
            ));
        }
        if hasher.finalize().as_bytes() != digest {
            return Err(Error::corrupt(name.to_string(), "content digest mismatch"));
        }
        Ok(())
    }

    pub async fn delete_object(&self, id: &str) -> Result<()> {
        match self.store.delete(&object_path(id)).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a manifest: the commit point of a backup.
    pub async fn save_manifest(&self, m: &Manifest) -> Result<()> {
        self.write_manifest(m).await?;
        // Only what a reader would accept serves as a parent (as `load_manifest` checks).
        if m.validate(&m.id).is_ok() {
            self.remember(Arc::new(m.clone()));
        }
        Ok(())
    }

    /// [`Self::save_manifest`] of a manifest the caller has just validated
    /// ([`Manifest::validate`]): remembered as the next parent as it is.
    pub async fn save_validated_manifest(&self, m: Arc<Manifest>) -> Result<()> {
        self.write_manifest(&m).await?;
        self.remember(m);
        Ok(())
    }

    async fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let name = snapshot_path(&m.id);
        // Sized up front (about 250 bytes per file, 500 per part): no regrowth of a megabyte.
        let mut json = Vec::with_capacity(4096 + m.files.len() * 320 + m.parts.len() * 640);
        serde_json::to_writer(&mut json, m)
            .map_err(|e| Error::InvalidArgument(format!("encoding manifest: {e}")))?;
        // Manifests are on every backup's critical path (about a megabyte of JSON for 1,000
        // parts, even when nothing is new): zstd at level 1 at most, which shrinks JSON nearly
        // as well as the repository's level and costs half the time.
        let compression = match self.compression {
            Compression::Zstd(l) => Compression::Zstd(l.min(1)),
            c => c,
        };
        let bytes = format::encode_all(self.keys.as_ref(), name.as_ref(), compression, &json)?;
        put_create(&self.store, &name, bytes).await
    }

    fn remember(&self, m: Arc<Manifest>) {
        *self.recent.lock().unwrap_or_else(|p| p.into_inner()) = Some(m);
    }

    /// The remembered manifest if it is `id`.
    fn recent(&self, id: &str) -> Option<Arc<Manifest>> {
        let g = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref().filter(|m| m.id == id).cloned()
    }

    /// Ids of every snapshot in the repository (unordered).
    pub async fn snapshot_ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut s = self.store.list(Some(&Path::from("snapshots")));
        while let Some(m) = s.try_next().await? {
            if let Some(id) = m.location.filename() {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }

    /// The newest snapshot of `node_id` (the parent of its next incremental backup), loading
    /// manifests newest first by store time until one matches: one manifest read when the
    /// node backed up last, not all of them. (A manifest `strata copy` brought in later counts
    /// as newer; any manifest of the node serves as parent, since a manifest names every
    /// object its snapshot needs.) Damaged manifests are skipped.
    pub async fn newest_manifest_of(&self, node_id: &str) -> Result<Option<Arc<Manifest>>> {
        let mut listed = Vec::new();
        let mut s = self.store.list(Some(&Path::from("snapshots")));
        while let Some(m) = s.try_next().await? {
            if let Some(id) = m.location.filename() {
                listed.push((m.last_modified, id.to_string()));
            }
        }
        listed.sort_by(|a, b| b.cmp(a));
        for (_, id) in listed {
            if let Some(m) = self.recent(&id) {
                if m.node_id == node_id {
                    return Ok(Some(m));
                }
                continue;
            }
            match self.load_manifest(&id).await {
                Ok(m) if m.node_id == node_id => {
                    let m = Arc::new(m);
                    self.remember(m.clone());
                    return Ok(Some(m));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(snapshot = %id, error = %e, "skipping a damaged manifest");
                }
            }
        }
        Ok(None)
    }

    pub async fn load_manifest(&self, id: &str) -> Result<Manifest> {
        let name = snapshot_path(id);
        let bytes = match self.store.get(&name).await {
            Ok(r) => r.bytes().await?,
            Err(e) if not_found(&e) => return Err(Error::SnapshotNotFound(id.into())),
            Err(e) => return Err(e.into()),
        };
        let json = format::decode_all(self.keys.as_ref(), name.as_ref(), &bytes)?;
        let m: Manifest = serde_json::from_slice(&json)
            .map_err(|e| Error::corrupt(name.to_string(), format!("manifest JSON: {e}")))?;
        m.validate(id)?;
        Ok(m)
    }

    /// Every manifest, oldest first by recorded time. Damaged ones are returned as errors
    /// beside their id so callers can report them without losing the rest.
    pub async fn manifests(&self) -> Result<(Vec<Manifest>, Vec<(String, Error)>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for id in self.snapshot_ids().await? {
            match self.load_manifest(&id).await {
                Ok(m) => good.push(m),
                Err(e) => bad.push((id, e)),
            }
        }
        good.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        Ok((good, bad))
    }

    /// `latest`, a full id or a unique prefix of one.
    pub async fn resolve(&self, spec: &str) -> Result<String> {
        if spec == "latest" {
            let (ms, _) = self.manifests().await?;
            return ms
                .last()
                .map(|m| m.id.clone())
                .ok_or_else(|| Error::SnapshotNotFound("latest (the repository is empty)".into()));
        }
        let ids = self.snapshot_ids().await?;
        if ids.iter().any(|i| i == spec) {
            return Ok(spec.to_string());
        }
        let matches: Vec<&String> = ids.iter().filter(|i| i.starts_with(spec)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::SnapshotNotFound(spec.into())),
            _ => Err(Error::AmbiguousSnapshot(spec.into())),
        }
    }

    pub async fn delete_manifest(&self, id: &str) -> Result<()> {
        match self.store.delete(&snapshot_path(id)).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

pub(crate) async fn put_create(store: &DynStore, path: &Path, bytes: Vec<u8>) -> Result<()> {
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let bytes = bytes::Bytes::from(bytes);
    match store
        .put_opts(path, PutPayload::from(bytes.clone()), opts)
        .await
    {
        Ok(_) => Ok(()),
        // When the reply to a successful PUT is lost, the retry finds the object already
        // there. If it holds exactly these bytes, it is our own write: the put succeeded.
        Err(object_store::Error::AlreadyExists { path: p, .. }) => {
            let stored = store.get(path).await?.bytes().await?;
            if stored == bytes {
                Ok(())
            } else {
                Err(Error::Refused(format!(
                    "{p} already exists in the repository"
                )))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// How an encrypted repository is unlocked: by a `strata agent` first when one is named,
/// else (or when the agent has no key for it) by the password.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlock<'a> {
    pub password: Option<&'a str>,
    /// The agent's socket.
    pub agent: Option<&'a FsPath>,
}

/// Asks the agent, then tries the password on every key file; a damaged key file is reported
/// only if no other key opens the repository. With the keys: what the password derived for
/// the key file it opened (none when the agent's key did).
async fn unlock(
    store: &DynStore,
    cfg: &RepoConfig,
    how: Unlock<'_>,
) -> Result<(Keys, Option<KeyEntry>)> {
    // The agent names its key file: read directly, without listing `keys/`.
    if let Some(sock) = how.agent
        && let Some(keys) =
            crate::agent::unlock_with_agent(store, cfg, sock, how.password.is_some()).await?
    {
        return Ok((keys, None));
    }
    let password = how.password.ok_or(Error::PasswordRequired)?;
    let mut names = Vec::new();
    let mut s = store.list(Some(&Path::from("keys")));
    while let Some(m) = s.try_next().await? {
        names.push(m.location);
    }
    if names.is_empty() {
        return Err(Error::corrupt("keys/", "the repository has no key files"));
    }
    names.sort();
    let mut damage = None;
    for name in names {
        let bytes = store.get(&name).await?.bytes().await?;
        let kf: KeyFile = match config::open_doc(name.as_ref(), &bytes) {
            Ok(k) => k,
            Err(e) => {
                damage = Some(e);
                continue;
            }
        };
        let opened = crypto::password_kek(&kf.wrapped, password.as_bytes(), name.as_ref())
            .and_then(|kek| {
                let keys = crypto::unwrap_with_kek(&kf.wrapped, &kek, &cfg.id, name.as_ref())?;
                Ok((keys, kek))
            });
        match opened {
            Ok((keys, kek)) => {
                let grant = KeyEntry {
                    repo_id: cfg.id.clone(),
                    key_file: name.to_string(),
                    kek,
                };
                return Ok((keys, Some(grant)));
            }
            Err(Error::WrongPassword) => {}
            Err(e) => damage = Some(e),
        }
    }
    Err(damage.unwrap_or(Error::WrongPassword))
}
