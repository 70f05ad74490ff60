//! Running out of file descriptors (`EMFILE`) while flushing or merging is survived: writes go
//! on, nothing acknowledged is lost at any moment (a power cut right after the failure keeps
//! every acknowledged write), and the postponed work completes once descriptors are free,
//! without reopening. A failed write or fsync still makes the engine refuse writes.
//!
//! Issue 18, item 3: 20k half-open HTTP connections used up the descriptors, the idle flush
//! failed with "Too many open files", and every later write got "engine is read-only" until
//! a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use common::{pt, scan_all};
use strata_engine::vfs::{DirEntry, LockGuard, SimVfs, Vfs, VfsFile};
use strata_engine::{Engine, EngineOptions, Error, Point};

const DIR: &str = "/data";
const NS: i64 = 1_000_000_000;

/// A [`Vfs`] whose operations that take a file descriptor start failing with `EMFILE` after a
/// given number of them, until relieved; optionally, `sync_dir` fails with `EIO`.
#[derive(Debug, Clone)]
struct FdStarved {
    inner: SimVfs,
    /// Descriptor-taking operations still allowed; negative: unlimited.
    left: Arc<AtomicI64>,
    eio_on_sync_dir: Arc<AtomicBool>,
}

impl FdStarved {
    fn new(inner: SimVfs) -> FdStarved {
        FdStarved {
            inner,
            left: Arc::new(AtomicI64::new(-1)),
            eio_on_sync_dir: Arc::new(AtomicBool::new(false)),
        }
    }

    fn starve_after(&self, n: i64) {
        self.left.store(n, Ordering::SeqCst);
    }

    fn relieve(&self) {
        self.left.store(-1, Ordering::SeqCst);
    }

    fn take_fd(&self) -> io::Result<()> {
        let r = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n != 0).then(|| if n > 0 { n - 1 } else { n })
            });
        match r {
            Ok(_) => Ok(()),
            Err(_) => Err(io::Error::from_raw_os_error(libc_emfile())),
        }
    }
}

/// `EMFILE` on Linux and the BSDs.
fn libc_emfile() -> i32 {
    24
}

impl Vfs for FdStarved {
    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.take_fd()?;
        self.inner.open(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.take_fd()?;
        self.inner.create(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.take_fd()?;
        self.inner.create_new(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.take_fd()?;
        self.inner.open_append(path)
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.take_fd()?;
        self.inner.open_write(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.take_fd()?;
        self.inner.read(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        self.inner.is_dir(path)
    }
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.take_fd()?;
        self.inner.read_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.take_fd()?;
        self.inner.remove_dir_all(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.eio_on_sync_dir.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.take_fd()?;
        self.inner.sync_dir(path)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        self.take_fd()?;
        self.inner.try_lock(path)
    }
    fn try_lock_dir(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        self.take_fd()?;
        self.inner.try_lock_dir(path)
    }
}

fn opts(vfs: &FdStarved, background: bool) -> EngineOptions {
    let mut o = EngineOptions::new(DIR);
    o.background = background;
    o.vfs = Arc::new(vfs.clone());
    o
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Points of two groups over two days (several segments and shards, so a flush writes
/// several parts and manifests).
fn batch(round: i64) -> Vec<(&'static str, Vec<Point>)> {
    let base = now() - 2 * 86_400 * NS;
    ["g1", "g2"]
        .into_iter()
        .map(|g| {
            let pts = (0..8)
                .map(|i| {
                    let ts = base + (i * 7 + round) * 3_600 * NS;
                    pt(&format!("h{}", i % 3), ts, (round * 100 + i) as f64)
                })
                .collect();
            (g, pts)
        })
        .collect()
}

/// Write a batch; every point goes to the model of what was acknowledged.
fn write(e: &Engine, round: i64, model: &mut Vec<(String, String, i64, f64)>) {
    for (g, pts) in batch(round) {
        e.write(g, &pts)
            .unwrap_or_else(|err| panic!("write of round {round} refused: {err}"));
        for p in pts {
            let v = match p.fields[0].1 {
                strata_engine::FieldValue::F64(v) => v,
                _ => unreachable!(),
            };
            model.push((g.to_string(), p.tags[0].1.clone(), p.timestamp, v));
        }
    }
}

fn contents(e: &Engine) -> Vec<(String, String, i64, f64)> {
    let mut out = Vec::new();
    for g in ["g1", "g2"] {
        for (h, t, v) in scan_all(e, g) {
            out.push((g.to_string(), h, t, v));
        }
    }
    out
}

fn sorted(mut v: Vec<(String, String, i64, f64)>) -> Vec<(String, String, i64, f64)> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// The durable image after a power cut opens with exactly the acknowledged writes.
fn survives_power_cut(sim: &SimVfs, seed: u64, model: &[(String, String, i64, f64)]) {
    let image = FdStarved::new(sim.crash(seed));
    let e = Engine::open(opts(&image, false)).expect("open after the cut");
    assert_eq!(
        contents(&e),
        sorted(model.to_vec()),
        "power cut (seed {seed}) lost or invented data"
    );
}

fn assert_starved(what: &str, r: Result<(), Error>) {
    match r {
        Err(e) if e.is_descriptor_exhaustion() => {}
        Err(e) => panic!("{what}: expected EMFILE, got {e}"),
        Ok(()) => panic!("{what}: succeeded although starved"),
    }
}

#[test]
fn a_flush_out_of_descriptors_is_retried_and_writes_go_on() {
    // Starve after n descriptor-taking operations for every n until the flush needs fewer:
    // this fails every step of a flush once (WAL rotation, part files, the parts' move into
    // their shards, each manifest, the checkpoint).
    for n in 0..10_000 {
        let sim = SimVfs::new();
        let vfs = FdStarved::new(sim.clone());
        let e = Engine::open(opts(&vfs, false)).unwrap();
        let mut model = Vec::new();
        write(&e, 0, &mut model);
        vfs.starve_after(n);
        let first = e.flush();
        vfs.relieve();
        if first.is_ok() {
            assert!(n > 10, "a flush takes only {n} descriptors?");
            return;
        }
        assert_starved(&format!("flush starved after {n}"), first);
        survives_power_cut(&sim, n as u64, &model);

        // Still starved: writes are acknowledged, reads see them, the flush keeps failing.
        vfs.starve_after(0);
        write(&e, 1, &mut model);
        assert_eq!(contents(&e), sorted(model.clone()), "starved after {n}");
        assert_starved("retried flush", e.flush());
        vfs.relieve();

        // Descriptors back: the postponed flush and the newer rows reach parts.
        e.flush()
            .unwrap_or_else(|err| panic!("flush after relief ({n}): {err}"));
        assert_eq!(e.stats().memtable_bytes, 0, "memtables left after relief");
        write(&e, 2, &mut model);
        e.flush().unwrap();
        assert_eq!(contents(&e), sorted(model.clone()));
        survives_power_cut(&sim, 1_000 + n as u64, &model);
        e.close().unwrap();
        let e = Engine::open(opts(&vfs, false)).unwrap();
        assert_eq!(contents(&e), sorted(model.clone()), "after reopen ({n})");
    }
    panic!("the flush never succeeded");
}

#[test]
fn a_merge_out_of_descriptors_is_retried() {
    for n in 0..10_000 {
        let sim = SimVfs::new();
        let vfs = FdStarved::new(sim.clone());
        let e = Engine::open(opts(&vfs, false)).unwrap();
        let mut model = Vec::new();
        for round in 0..3 {
            write(&e, round, &mut model);
            e.flush().unwrap();
        }
        vfs.starve_after(n);
        let first = e.compact();
        vfs.relieve();
        if first.is_ok() {
            assert!(n > 3, "a merge takes only {n} descriptors?");
            return;
        }
        assert_starved(&format!("merge starved after {n}"), first);
        survives_power_cut(&sim, n as u64, &model);
        write(&e, 3, &mut model);
        e.compact()
            .unwrap_or_else(|err| panic!("merge after relief ({n}): {err}"));
        e.flush().unwrap();
        assert_eq!(contents(&e), sorted(model.clone()));
        survives_power_cut(&sim, 1_000 + n as u64, &model);
    }
    panic!("the merge never succeeded");
}

#[test]
fn a_failed_fsync_still_makes_the_engine_refuse_writes() {
    let sim = SimVfs::new();
    let vfs = FdStarved::new(sim);
    let e = Engine::open(opts(&vfs, false)).unwrap();
    let mut model = Vec::new();
    write(&e, 0, &mut model);
    vfs.eio_on_sync_dir.store(true, Ordering::SeqCst);
    let err = e.flush().unwrap_err();
    assert!(!err.is_descriptor_exhaustion(), "{err}");
    vfs.eio_on_sync_dir.store(false, Ordering::SeqCst);
    let refused = e.write("g1", &batch(1)[0].1).unwrap_err();
    assert!(matches!(refused, Error::Poisoned(_)), "{refused}");
}

#[test]
fn the_background_flush_recovers_without_a_restart() {
    let sim = SimVfs::new();
    let vfs = FdStarved::new(sim);
    let mut o = opts(&vfs, true);
    o.idle_flush = Duration::from_millis(20);
    let e = Engine::open(o).unwrap();
    let mut model = Vec::new();
    vfs.starve_after(0);
    write(&e, 0, &mut model);
    std::thread::sleep(Duration::from_millis(600));
    // The idle flush has been failing for a while: writes are still acknowledged.
    write(&e, 1, &mut model);
    assert!(e.stats().memtable_bytes > 0);
    vfs.relieve();
    let deadline = Instant::now() + Duration::from_secs(20);
    while e.stats().memtable_bytes > 0 {
        assert!(
            Instant::now() < deadline,
            "the background flush did not recover"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    write(&e, 2, &mut model);
    assert_eq!(contents(&e), sorted(model));
}
