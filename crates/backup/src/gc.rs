//! Garbage collection that never races a backup, and pinned snapshots (layout and bytes in
//! `docs/format/repository.md`).
//!
//! The hole it closes: a backup reuses the objects its parent manifest names without
//! uploading them; if a prune deleted that parent meanwhile and then every object no
//! remaining manifest named, the backup's manifest would name deleted objects. So:
//!
//! - **Locks** (`locks/<id>`): a backup holds a `backup` lock from before it reads the
//!   repository until its manifest is written; garbage collection holds a `gc` lock while it
//!   deletes. Each side writes its own lock first and then lists the others' (so of two that
//!   start together at least one sees the other): a backup that sees a `gc` lock waits for it
//!   to go; a collection that sees a `backup` lock deletes nothing this time (it is
//!   *deferred*; a collection never blocks a backup). A lock is stale, and ignored, once its
//!   holder's process is gone (same host) or it was not refreshed for [`LOCK_STALE`]. A lock
//!   this process wrote but could not take back (a failed put or delete under a flaky store)
//!   is skipped unread by its later checks and deleted at its next take.
//! - **Two phases** (`gc/<id>` marks): a collection first *marks* the objects no manifest
//!   names (writing when it marked them); it deletes an object only when a mark of it is at
//!   least the grace period old **and** no manifest names it at deletion time (a backup that
//!   reused it since keeps it alive). With grace 0 both phases run in one prune.
//! - **Pins** (`pins/<snapshot>`): a pinned snapshot is never removed by retention.
//!
//! [`live_objects`] is the one place that says which objects are needed: every manifest's
//! objects. (Hook point: point-in-time recovery adds the archived WAL's objects there.)

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::crypto::random_bytes;
use crate::error::{Error, Result};
use crate::format::{self, Compression};
use crate::repo::Repository;

/// A lock not refreshed for this long is stale (its holder is presumed dead).
pub const LOCK_STALE: Duration = Duration::from_secs(30 * 60);
/// How often a held lock is refreshed.
pub const LOCK_REFRESH: Duration = Duration::from_secs(5 * 60);
/// How long a backup waits for a running collection's deletions before giving up.
pub const GC_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Backup,
    Gc,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockDoc {
    pub kind: LockKind,
    /// ns since the epoch: taken, last refreshed.
    pub time: i64,
    pub refreshed: i64,
    pub host: String,
    pub pid: u32,
    /// The host's boot id (Linux): a lock from an earlier boot is stale.
    #[serde(default)]
    pub boot: String,
}

/// Locks this process holds (by repository key): a lock naming this process that is not
/// here was left by an earlier incarnation (or a simulated crash) and is stale.
fn held() -> &'static std::sync::Mutex<HashSet<String>> {
    static HELD: std::sync::OnceLock<std::sync::Mutex<HashSet<String>>> =
        std::sync::OnceLock::new();
    HELD.get_or_init(Default::default)
}

fn held_set() -> std::sync::MutexGuard<'static, HashSet<String>> {
    match held().lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Lock documents this process wrote (or may have written: a put whose reply was lost) and
/// no longer holds, but could not delete. They are stale by construction, so lock checks
/// skip them without reading them, and later lock takes retry deleting them. Without this,
/// every failed attempt under a flaky store left a document that each later check had to
/// read (a read that, failing, counts the lock as held).
fn abandoned() -> std::sync::MutexGuard<'static, HashSet<String>> {
    static ABANDONED: std::sync::OnceLock<std::sync::Mutex<HashSet<String>>> =
        std::sync::OnceLock::new();
    match ABANDONED.get_or_init(Default::default).lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The key of an abandoned lock: repository and path.
fn abandoned_key(repo: &Repository, path: &Path) -> String {
    format!("{}\n{path}", repo.url())
}

fn is_abandoned(repo: &Repository, path: &Path) -> bool {
    abandoned().contains(&abandoned_key(repo, path))
}

/// Deletes `path`, a lock of this process it does not hold; remembered as abandoned when
/// the delete fails.
async fn drop_own_lock(repo: &Repository, path: &Path) {
    let key = abandoned_key(repo, path);
    match delete(repo, path).await {
        Ok(()) => {
            abandoned().remove(&key);
        }
        Err(e) => {
            tracing::warn!(lock = %path, error = %e, "cannot remove a repository lock; it goes stale on its own");
            abandoned().insert(key);
        }
    }
}

/// Retries deleting this repository's abandoned locks (best effort: failures stay abandoned).
async fn clean_abandoned(repo: &Repository) {
    let prefix = abandoned_key(repo, &Path::from(""));
    let paths: Vec<Path> = abandoned()
        .iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(Path::from))
        .collect();
    for p in paths {
        drop_own_lock(repo, &p).await;
    }
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarkDoc {
    /// ns since the epoch.
    pub time: i64,
    pub objects: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PinDoc {
    /// ns since the epoch.
    pub time: i64,
    #[serde(default)]
    pub note: String,
}

fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Writes a document under a fresh name (create-if-absent: when the reply to a successful put
/// is lost, the retry finds the object there, and that is our own write), or rewrites one.
async fn put_doc<T: Serialize>(
    repo: &Repository,
    path: &Path,
    doc: &T,
    overwrite: bool,
) -> Result<()> {
    let json = serde_json::to_vec(doc)
        .map_err(|e| Error::InvalidArgument(format!("encoding {path}: {e}")))?;
    let bytes = format::encode_all(repo.keys(), path.as_ref(), Compression::None, &json)?;
    let mode = if overwrite {
        PutMode::Overwrite
    } else {
        PutMode::Create
    };
    let opts = PutOptions {
        mode,
        ..Default::default()
    };
    match repo
        .store()
        .put_opts(path, PutPayload::from(bytes), opts)
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn get_doc<T: for<'de> Deserialize<'de>>(
    repo: &Repository,
    path: &Path,
) -> Result<Option<T>> {
    let bytes = match repo.store().get(path).await {
        Ok(r) => r.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let json = format::decode_all(repo.keys(), path.as_ref(), &bytes)?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| Error::corrupt(path.to_string(), format!("JSON: {e}")))
}

async fn delete(repo: &Repository, path: &Path) -> Result<()> {
    match repo.store().delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn list(repo: &Repository, prefix: &str) -> Result<Vec<Path>> {
    let mut out = Vec::new();
    let mut s = repo.store().list(Some(&Path::from(prefix)));
    while let Some(m) = s.try_next().await? {
        out.push(m.location);
    }
    Ok(out)
}

impl LockDoc {
    /// Whether the lock's holder (which wrote it at `path`) may still be running.
    pub fn is_live(&self, path: &Path, now: i64) -> bool {
        if now.saturating_sub(self.refreshed) > LOCK_STALE.as_nanos() as i64 {
            return false;
        }
        if !self.host.is_empty() && self.host == host() && cfg!(target_os = "linux") {
            if !self.boot.is_empty() && self.boot != boot_id() {
                return false;
            }
            if self.pid == std::process::id() {
                return held_set().contains(path.as_ref());
            }
            return std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        }
        true
    }
}

/// Live locks of `kind`, except `own`.
async fn live_locks(repo: &Repository, kind: LockKind, own: &Path) -> Result<Vec<Path>> {
    let now = now_ns();
    let mut out = Vec::new();
    let mut listed = repo.store().list(Some(&Path::from("locks")));
    while let Some(meta) = listed.try_next().await? {
        let p = meta.location;
        if &p == own || is_abandoned(repo, &p) {
            continue;
        }
        match get_doc::<LockDoc>(repo, &p).await {
            Ok(Some(l)) if l.kind == kind && l.is_live(&p, now) => out.push(p),
            Ok(_) => {}
            // An unreadable lock is taken as held (safer for both sides) until it is as old as
            // a lock that was never refreshed: locks are written without fsync (see the local
            // store), so a power cut can leave one empty.
            Err(e) => {
                let age = now.saturating_sub(meta.last_modified.timestamp_nanos_opt().unwrap_or(0));
                if age > LOCK_STALE.as_nanos() as i64 {
                    tracing::warn!(lock = %p, error = %e, "ignoring an unreadable stale repository lock");
                } else {
                    tracing::warn!(lock = %p, error = %e, "unreadable repository lock");
                    out.push(p);
                }
            }
        }
    }
    Ok(out)
}

/// A lock this process holds in the repository; refreshed in the background until released.
pub struct RepoLock {
    repo: Repository,
    path: Path,
    refresher: tokio::task::JoinHandle<()>,
    released: bool,
}

impl RepoLock {
    async fn take(repo: &Repository, kind: LockKind) -> Result<RepoLock> {
        let tag = match kind {
            LockKind::Backup => "backup",
            LockKind::Gc => "gc",
        };
        let path = Path::from(format!("locks/{tag}-{}", hex::encode(random_bytes::<8>())));
        let t = now_ns();
        let mut doc = LockDoc {
            kind,
            time: t,
            refreshed: t,
            host: host(),
            pid: std::process::id(),
            boot: boot_id(),
        };
        clean_abandoned(repo).await;
        held_set().insert(path.to_string());
        if let Err(e) = put_doc(repo, &path, &doc, false).await {
            held_set().remove(path.as_ref());
            // The put may have landed with its reply lost: take the document back.
            drop_own_lock(repo, &path).await;
            return Err(e);
        }
        let (r, p) = (repo.clone(), path.clone());
        let refresher = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_REFRESH).await;
                doc.refreshed = now_ns();
                if let Err(e) = put_doc(&r, &p, &doc, true).await {
                    tracing::warn!(lock = %p, error = %e, "cannot refresh a repository lock");
                }
            }
        });
        Ok(RepoLock {
            repo: repo.clone(),
            path,
            refresher,
            released: false,
        })
    }

    pub async fn release(mut self) {
        self.refresher.abort();
        self.released = true;
        held_set().remove(self.path.as_ref());
        drop_own_lock(&self.repo, &self.path).await;
    }
}

impl Drop for RepoLock {
    /// A holder dropped without [`RepoLock::release`] (a cancelled job): the lock is removed
    /// in the background, so it does not hold garbage collection off until it goes stale.
    fn drop(&mut self) {
        self.refresher.abort();
        if self.released {
            return;
        }
        held_set().remove(self.path.as_ref());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (repo, path) = (self.repo.clone(), self.path.clone());
            rt.spawn(async move {
                drop_own_lock(&repo, &path).await;
            });
        }
    }
}

/// Takes a backup lock, waiting up to [`GC_WAIT`] for a running collection to finish.
pub async fn lock_backup(repo: &Repository) -> Result<RepoLock> {
    let lock = RepoLock::take(repo, LockKind::Backup).await?;
    let started = std::time::Instant::now();
    loop {
        let gcs = live_locks(repo, LockKind::Gc, &lock.path).await?;
        let Some(gc) = gcs.first() else {
            return Ok(lock);
        };
        if started.elapsed() > GC_WAIT {
            let gc = gc.clone();
            lock.release().await;
            return Err(Error::Refused(format!(
                "garbage collection holds the repository ({gc}) for more than {}s; try again later (a lock of a dead prune goes stale after {} minutes)",
                GC_WAIT.as_secs(),
                LOCK_STALE.as_secs() / 60
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Objects some snapshot needs. Refuses while a manifest cannot be read: its references
/// are unknown, and deleting anything could rob it.
pub async fn live_objects(repo: &Repository) -> Result<HashSet<String>> {
    let (ms, bad) = repo.manifests().await?;
    if let Some((id, e)) = bad.into_iter().next() {
        return Err(Error::Refused(format!(
            "snapshot {id} cannot be read ({e}); no object is deleted until it is repaired or removed"
        )));
    }
    Ok(ms
        .iter()
        .flat_map(|m| m.files.iter().map(|f| f.object.clone()))
        .collect())
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Objects newly marked as unreferenced.
    pub objects_marked: usize,
    pub objects_removed: usize,
    pub bytes_removed: u64,
    /// Unreferenced objects whose mark is younger than the grace period.
    pub objects_in_grace: usize,
    /// Why nothing was deleted this time, when a backup was running.
    pub deferred: Option<String>,
}

/// Both phases: mark what no manifest names, then delete what was marked at least `grace`
/// ago and is still unreferenced, unless a backup is running.
pub async fn collect(repo: &Repository, grace: Duration) -> Result<GcReport> {
    let mut report = GcReport::default();
    let live = live_objects(repo).await?;
    let objects = repo.list_objects().await?;
    let mut marks: Vec<(Path, MarkDoc)> = Vec::new();
    for p in list(repo, "gc").await? {
        match get_doc::<MarkDoc>(repo, &p).await {
            Ok(Some(m)) => marks.push((p, m)),
            Ok(None) => {}
            Err(e) => tracing::warn!(mark = %p, error = %e, "ignoring an unreadable gc mark"),
        }
    }
    let marked: HashSet<&String> = marks.iter().flat_map(|(_, m)| &m.objects).collect();
    let mut new: Vec<String> = objects
        .keys()
        .filter(|id| !live.contains(*id) && !marked.contains(id))
        .cloned()
        .collect();
    if !new.is_empty() {
        new.sort();
        report.objects_marked = new.len();
        let doc = MarkDoc {
            time: now_ns(),
            objects: new,
        };
        let p = Path::from(format!(
            "gc/{}-{}",
            doc.time,
            hex::encode(random_bytes::<4>())
        ));
        put_doc(repo, &p, &doc, false).await?;
        marks.push((p, doc));
    }
    let cutoff = now_ns().saturating_sub(grace.as_nanos().min(i64::MAX as u128) as i64);
    let (due, young): (Vec<_>, Vec<_>) = marks.into_iter().partition(|(_, m)| m.time <= cutoff);
    report.objects_in_grace = young
        .iter()
        .flat_map(|(_, m)| &m.objects)
        .filter(|id| !live.contains(*id) && objects.contains_key(*id))
        .count();
    if due.is_empty() {
        return Ok(report);
    }
    let lock = RepoLock::take(repo, LockKind::Gc).await?;
    let result = sweep(repo, &lock, due, &objects, &mut report).await;
    lock.release().await;
    result.map(|()| report)
}

async fn sweep(
    repo: &Repository,
    lock: &RepoLock,
    due: Vec<(Path, MarkDoc)>,
    objects: &HashMap<String, crate::repo::StoredObject>,
    report: &mut GcReport,
) -> Result<()> {
    if let Some(other) = live_locks(repo, LockKind::Gc, &lock.path).await?.first() {
        return Err(Error::Refused(format!(
            "another prune is collecting garbage ({other}); run prune again once it is done"
        )));
    }
    if let Some(b) = live_locks(repo, LockKind::Backup, &lock.path)
        .await?
        .first()
    {
        report.deferred = Some(format!(
            "a backup is running ({b}); unreferenced objects are deleted by a later prune"
        ));
        return Ok(());
    }
    // Under the lock: manifests written since the mark count (they may reuse marked objects).
    let live = live_objects(repo).await?;
    for (p, m) in due {
        for id in &m.objects {
            if live.contains(id) {
                continue;
            }
            if let Some(o) = objects.get(id) {
                repo.delete_object(id).await?;
                report.objects_removed += 1;
                report.bytes_removed += o.size;
            }
        }
        delete(repo, &p).await?;
    }
    // Stale locks of dead processes go too.
    let now = now_ns();
    for p in list(repo, "locks").await? {
        if p != lock.path
            && let Ok(Some(l)) = get_doc::<LockDoc>(repo, &p).await
            && !l.is_live(&p, now)
        {
            delete(repo, &p).await?;
        }
    }
    Ok(())
}

fn pin_path(id: &str) -> Path {
    Path::from(format!("pins/{id}"))
}

/// Pins snapshot `id` (which must exist): retention never removes it.
pub async fn pin(repo: &Repository, id: &str, note: &str) -> Result<()> {
    repo.load_manifest(id).await?;
    put_doc(
        repo,
        &pin_path(id),
        &PinDoc {
            time: now_ns(),
            note: note.to_string(),
        },
        false,
    )
    .await
}

/// Unpins snapshot `id`; whether it was pinned.
pub async fn unpin(repo: &Repository, id: &str) -> Result<bool> {
    let was = get_doc::<PinDoc>(repo, &pin_path(id)).await?.is_some();
    delete(repo, &pin_path(id)).await?;
    Ok(was)
}

/// Ids of the pinned snapshots.
pub async fn pinned(repo: &Repository) -> Result<HashSet<String>> {
    Ok(list(repo, "pins")
        .await?
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect())
}
