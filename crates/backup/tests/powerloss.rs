//! Power-loss simulation of the repository writer: `repo init`, backups and a prune run on a
//! store that models what a local disk keeps after a power cut; the cut falls on a random
//! store operation and every later operation fails.
//!
//! The model ([`Mode`]): with the durable local back end (`store::local::LocalStore`) every
//! put and delete that returned is on stable storage and the one in flight is absent (staged
//! file + rename). The old back end (`LocalFileSystem` without fsync) kept neither: a put that
//! returned may come back missing or empty, a delete may be undone. A third mode keeps puts but
//! not deletes (`with_fsync(true)` alone).
//!
//! After each cut: the repository opens (or, when the cut hit `init`, can be initialised),
//! `verify --read-data` passes for every snapshot manifest that survived, and the next backup
//! completes, uploads only what is missing and verifies.
//!
//! `STRATA_REPO_POWERLOSS_ITERATIONS` (default 40) sets the number of cuts,
//! `STRATA_REPO_POWERLOSS_SEED` runs one seed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use futures::stream::{BoxStream, StreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};
use strata_backup::backup::{BackupOptions, backup};
use strata_backup::crypto::KdfParams;
use strata_backup::prune::{RetentionPolicy, plan_prune, prune};
use strata_backup::store::DynStore;
use strata_backup::verify::verify;
use strata_backup::{InitOptions, Progress, Repository};
use strata_engine::Snapshot;
use strata_engine::vfs::SplitMix;

const URL: &str = "memory://powerloss";
const PASSWORD: &str = "pw";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `LocalStore`: puts and deletes durable on return.
    Durable,
    /// `LocalFileSystem` with fsync on, deletes not synced.
    PutsOnly,
    /// `LocalFileSystem` without fsync.
    Nothing,
}

#[derive(Debug, Default)]
struct Power {
    budget: Option<u64>,
    ops: u64,
    cut: bool,
    /// Objects put since the start (not durable in `Mode::Nothing`).
    put: HashSet<Path>,
    /// Content of deleted objects (they may come back unless deletes are durable).
    deleted: BTreeMap<Path, Bytes>,
}

#[derive(Debug)]
struct CrashStore {
    live: Arc<InMemory>,
    mode: Mode,
    power: Arc<Mutex<Power>>,
}

fn power_lost() -> object_store::Error {
    object_store::Error::Generic {
        store: "crash",
        source: "simulated power loss".into(),
    }
}

impl CrashStore {
    fn new(mode: Mode) -> CrashStore {
        CrashStore {
            live: Arc::new(InMemory::new()),
            mode,
            power: Arc::default(),
        }
    }

    fn power(&self) -> std::sync::MutexGuard<'_, Power> {
        self.power.lock().unwrap()
    }

    fn check(&self) -> Result<()> {
        if self.power().cut {
            Err(power_lost())
        } else {
            Ok(())
        }
    }

    /// Count one mutating operation; fails once the power is gone.
    fn tick(power: &Mutex<Power>) -> Result<()> {
        let mut p = power.lock().unwrap();
        if p.cut {
            return Err(power_lost());
        }
        if let Some(b) = p.budget.as_mut() {
            if *b == 0 {
                p.cut = true;
                return Err(power_lost());
            }
            *b -= 1;
        }
        p.ops += 1;
        Ok(())
    }

    /// The durable image after a power cut now.
    async fn crash(&self, rng: &mut SplitMix) -> Arc<InMemory> {
        let image = Arc::new(InMemory::new());
        let (put, deleted) = {
            let p = self.power();
            (p.put.clone(), p.deleted.clone())
        };
        let objects: Vec<ObjectMeta> = self.live.list(None).try_collect().await.unwrap();
        for o in objects {
            let bytes = self
                .live
                .get(&o.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let bytes = if self.mode == Mode::Nothing && put.contains(&o.location) {
                match rng.below(3) {
                    0 => continue,
                    1 => Bytes::new(),
                    _ => bytes,
                }
            } else {
                bytes
            };
            image.put(&o.location, bytes.into()).await.unwrap();
        }
        if self.mode != Mode::Durable {
            for (path, bytes) in deleted {
                if rng.below(2) == 0 && image.head(&path).await.is_err() {
                    image.put(&path, bytes.into()).await.unwrap();
                }
            }
        }
        image
    }
}

impl std::fmt::Display for CrashStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Crash({:?})", self.mode)
    }
}

#[derive(Debug)]
struct CrashUpload {
    inner: Box<dyn MultipartUpload>,
    location: Path,
    power: Arc<Mutex<Power>>,
}

#[async_trait]
impl MultipartUpload for CrashUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if self.power.lock().unwrap().cut {
            return Box::pin(async { Err(power_lost()) });
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        CrashStore::tick(&self.power)?;
        let r = self.inner.complete().await?;
        self.power.lock().unwrap().put.insert(self.location.clone());
        Ok(r)
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for CrashStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        Self::tick(&self.power)?;
        let r = self.live.put_opts(location, payload, opts).await?;
        self.power().put.insert(location.clone());
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check()?;
        let inner = self.live.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CrashUpload {
            inner,
            location: location.clone(),
            power: self.power.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check()?;
        self.live.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let live = self.live.clone();
        let power = self.power.clone();
        locations
            .then(move |loc| {
                let live = live.clone();
                let power = power.clone();
                async move {
                    let loc = loc?;
                    CrashStore::tick(&power)?;
                    if let Ok(r) = live.get(&loc).await {
                        let bytes = r.bytes().await?;
                        power.lock().unwrap().deleted.insert(loc.clone(), bytes);
                    }
                    live.delete(&loc).await?;
                    Ok(loc)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.power().cut {
            return futures::stream::once(async { Err(power_lost()) }).boxed();
        }
        self.live.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.check()?;
        self.live.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        Self::tick(&self.power)?;
        self.live.copy_opts(from, to, options).await?;
        self.power().put.insert(to.clone());
        Ok(())
    }
}

fn init_opts() -> InitOptions {
    InitOptions {
        encryption: true,
        password: Some(PASSWORD.into()),
        kdf: KdfParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        },
        ..Default::default()
    }
}

/// The engine side: one data dir and three snapshots of it, shared by every cut.
struct Source {
    _dir: tempfile::TempDir,
    engine: strata_engine::Engine,
    snaps: Vec<Snapshot>,
}

fn source() -> Source {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine::open(dir.path());
    let base = common::engine::base_ts();
    let mut snaps = Vec::new();
    for i in 0..3 {
        for g in ["g0", "g1", "g2"] {
            common::engine::ingest(&engine, g, base + i * 3_600_000_000_000, 1_000, 5);
        }
        // The last round stays in the WAL only, so snapshots carry WAL segments too.
        if i < 2 {
            engine.flush().unwrap();
        }
        snaps.push(engine.snapshot().unwrap());
    }
    Source {
        _dir: dir,
        engine,
        snaps,
    }
}

async fn do_backup(repo: &Arc<Repository>, snap: &Snapshot) -> strata_backup::Result<()> {
    backup(
        repo.clone(),
        snap,
        &BackupOptions::default(),
        Arc::new(Progress::default()),
    )
    .await
    .map(|_| ())
}

/// init, backup, backup, prune to one, backup: what a repository's first day looks like.
async fn scenario(store: DynStore, src: &Source) -> strata_backup::Result<()> {
    let repo = Arc::new(Repository::init(store, URL, init_opts()).await?);
    do_backup(&repo, &src.snaps[0]).await?;
    do_backup(&repo, &src.snaps[1]).await?;
    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    let plan = plan_prune(&repo, &policy, Duration::ZERO).await?;
    prune(&repo, &plan).await?;
    do_backup(&repo, &src.snaps[2]).await
}

/// What must hold on the image after a cut.
async fn recover(image: DynStore, src: &Source) -> std::result::Result<(), String> {
    let repo = match Repository::open(image.clone(), URL, Some(PASSWORD)).await {
        Ok(r) => r,
        Err(strata_backup::Error::NoRepository(_)) => {
            // The cut hit `repo init` before its config landed: init must work now.
            Repository::init(image.clone(), URL, init_opts())
                .await
                .map_err(|e| format!("repo init after a cut during init: {e}"))?
        }
        Err(e) => return Err(format!("open after the cut: {e}")),
    };
    let repo = Arc::new(repo);
    let report = verify(&repo, None, true, &Progress::default())
        .await
        .map_err(|e| format!("verify: {e}"))?;
    if !report.ok() {
        return Err(format!(
            "verify --read-data after the cut: {:?}",
            report
                .damage
                .iter()
                .map(|d| format!("{}: {}", d.object, d.problem))
                .collect::<Vec<_>>()
        ));
    }
    let before: HashSet<String> = repo.list_objects().await.unwrap().into_keys().collect();
    let m = backup(
        repo.clone(),
        &src.snaps[2],
        &BackupOptions::default(),
        Arc::new(Progress::default()),
    )
    .await
    .map_err(|e| format!("backup after the cut: {e}"))?;
    let needed: HashSet<&String> = m.files.iter().map(|f| &f.object).collect();
    let missing = needed.iter().filter(|o| !before.contains(**o)).count() as u64;
    if m.stats.new_objects != missing {
        return Err(format!(
            "backup after the cut uploaded {} objects, {missing} were missing",
            m.stats.new_objects
        ));
    }
    let report = verify(&repo, None, true, &Progress::default())
        .await
        .map_err(|e| format!("verify after the next backup: {e}"))?;
    if !report.ok() {
        return Err("verify after the next backup found damage".into());
    }
    Ok(())
}

/// Store operations a whole scenario makes (the cut falls uniformly among them).
async fn count_ops(src: &Source) -> u64 {
    let store = Arc::new(CrashStore::new(Mode::Durable));
    scenario(store.clone(), src).await.unwrap();
    store.power().ops
}

async fn run(seed: u64, mode: Mode, total: u64, src: &Source) -> std::result::Result<(), String> {
    let mut rng = SplitMix::new(seed);
    let store = Arc::new(CrashStore::new(mode));
    store.power().budget = Some(rng.below(total + 1));
    let _ = scenario(store.clone(), src).await;
    store.power().cut = true;
    let image = store.crash(&mut rng).await;
    recover(image, src).await
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_backups_survive_power_loss() {
    let src = source();
    let total = count_ops(&src).await;
    let seeds: Vec<u64> = match env_u64("STRATA_REPO_POWERLOSS_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("STRATA_REPO_POWERLOSS_ITERATIONS").unwrap_or(40)).collect(),
    };
    for &seed in &seeds {
        if let Err(e) = run(seed, Mode::Durable, total, &src).await {
            panic!("repository power-loss seed {seed}: {e} (STRATA_REPO_POWERLOSS_SEED={seed})");
        }
    }
    eprintln!(
        "{} repository power cuts survived ({total} store operations per run)",
        seeds.len()
    );
    for s in &src.snaps {
        src.engine.release_snapshot(&s.id).unwrap();
    }
}

/// The simulator can fail: the old back ends (no fsync; fsync without durable deletes) lose
/// complete snapshots under the same cuts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_local_back_ends_lose_complete_backups() {
    let src = source();
    let total = count_ops(&src).await;
    for mode in [Mode::Nothing, Mode::PutsOnly] {
        let mut failed = None;
        for seed in 0..200 {
            if run(seed, mode, total, &src).await.is_err() {
                failed = Some(seed);
                break;
            }
        }
        assert!(failed.is_some(), "{mode:?}: no cut broke the repository");
    }
    for s in &src.snaps {
        src.engine.release_snapshot(&s.id).unwrap();
    }
}
