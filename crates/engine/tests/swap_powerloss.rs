//! Power-loss simulation of the restore swap (`docs/format/swap-journal.md`): the power is cut
//! before every mutating file-system operation of the swap in turn, and again before every
//! operation of the recovery that follows. After every cut, recovery (what `Engine::open`
//! runs first) leaves the data directory entirely the old data or entirely the new, the old
//! data kept as the rollback when the new is in place, nothing else beside it; a second
//! recovery changes nothing; and the engine opens on the result with the points of one side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_engine::datadir::{self, StagedDir};
use strata_engine::vfs::{SimVfs, Vfs};
use strata_engine::{Engine, EngineOptions};

const PARENT: &str = "/d";
const TARGET: &str = "/d/data";
const SNAPSHOT: &str = "0123456789abcdef";

type Tree = BTreeMap<String, Vec<u8>>;

fn opts(vfs: &SimVfs, dir: &Path) -> EngineOptions {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    o.vfs = Arc::new(vfs.clone());
    o
}

fn staging() -> PathBuf {
    datadir::staging_path(Path::new(TARGET), SNAPSHOT).unwrap()
}

/// Every file below `dir`, by relative path (empty when `dir` does not exist).
fn tree(vfs: &SimVfs, dir: &Path) -> Tree {
    if !vfs.exists(dir) {
        return Tree::new();
    }
    fn walk(vfs: &SimVfs, dir: &Path, rel: &str, out: &mut Tree) {
        for e in vfs.read_dir(dir).unwrap() {
            let (p, r) = (dir.join(&e.name), format!("{rel}/{}", e.name));
            if e.is_dir {
                walk(vfs, &p, &r, out);
            } else {
                out.insert(r, vfs.read(&p).unwrap());
            }
        }
    }
    let mut out = Tree::new();
    walk(vfs, dir, "", &mut out);
    out
}

fn entries(vfs: &SimVfs) -> Vec<String> {
    let mut v: Vec<String> = vfs
        .read_dir(Path::new(PARENT))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    v.sort();
    v
}

fn write_dir(vfs: &SimVfs, dir: &Path, host: &str, n: i64) {
    let e = Engine::open(opts(vfs, dir)).unwrap();
    let pts: Vec<_> = (0..n)
        .map(|i| common::pt(host, common::recent() + i * 1_000_000_000, i as f64))
        .collect();
    e.write("g", &pts).unwrap();
    if host == "new" {
        // The new side also carries unflushed WAL, as a snapshot cut may.
        e.flush().unwrap();
        e.write("g", &[common::pt(host, common::recent() - 1, -1.0)])
            .unwrap();
    }
    drop(e);
}

/// The old data directory and a complete, durable staging directory beside it.
struct Base {
    vfs: SimVfs,
    old: Tree,
    new: Tree,
}

fn base() -> Base {
    let vfs = SimVfs::new();
    // Unsynced renames may reach the disk one by one (in order), as on ext4 or XFS: without
    // the journal, a cut between moving the old directory aside and moving the new one in
    // would leave no data directory at all.
    vfs.keep_entry_prefixes(true);
    vfs.create_dir_all(Path::new(PARENT)).unwrap();
    write_dir(&vfs, Path::new(TARGET), "old", 40);
    let staged = {
        let s = StagedDir::create_with(Arc::new(vfs.clone()), Path::new(TARGET), SNAPSHOT).unwrap();
        write_dir(&vfs, s.path(), "new", 30);
        s.prepare(Some("restored-node")).unwrap();
        s.path().to_path_buf()
    };
    // Dropping the handle removed the staging directory: build it again the same way and
    // keep it (the swap below is the free function a StagedDir's swap calls).
    assert!(
        !vfs.exists(&staged),
        "a dropped StagedDir must remove itself"
    );
    vfs.create_dir(&staged).unwrap();
    write_dir(&vfs, &staged, "new", 30);
    vfs.sync_everything();
    let (old, new) = (tree(&vfs, Path::new(TARGET)), tree(&vfs, &staged));
    assert_ne!(old, new);
    Base { vfs, old, new }
}

/// What must hold after recovery from any crash image. Returns whether the new data is in.
fn check_recovered(b: &Base, image: &SimVfs, label: &str) -> bool {
    datadir::recover(image, Path::new(TARGET))
        .unwrap_or_else(|e| panic!("{label}: recovery failed: {e}"));
    let got = tree(image, Path::new(TARGET));
    let is_new = got == b.new;
    assert!(
        is_new || got == b.old,
        "{label}: the data directory is neither the old nor the new data"
    );
    let names = entries(image);
    if is_new {
        assert_eq!(names.len(), 2, "{label}: {names:?}");
        let rollback = names.iter().find(|n| n.starts_with("data.pre-restore-"));
        let rollback = rollback.unwrap_or_else(|| panic!("{label}: no rollback in {names:?}"));
        assert_eq!(
            tree(image, &Path::new(PARENT).join(rollback)),
            b.old,
            "{label}: the rollback is not the old data"
        );
    } else {
        assert_eq!(names, ["data"], "{label}: leftovers beside the old data");
    }
    // Idempotent: a second recovery finds nothing to do and changes nothing.
    assert_eq!(datadir::recover(image, Path::new(TARGET)).unwrap(), None);
    assert_eq!(
        entries(image),
        names,
        "{label}: second recovery moved something"
    );
    assert_eq!(tree(image, Path::new(TARGET)), got);
    // The engine opens on it and holds exactly one side's points.
    let e = Engine::open(opts(image, Path::new(TARGET))).unwrap();
    let hosts: Vec<String> = common::scan_all(&e, "g").into_iter().map(|t| t.0).collect();
    let want = if is_new { ("new", 31) } else { ("old", 40) };
    assert_eq!(hosts.len(), want.1, "{label}");
    assert!(hosts.iter().all(|h| h == want.0), "{label}: mixed data");
    is_new
}

#[test]
fn a_cut_at_every_step_of_the_swap_and_of_its_recovery_leaves_old_or_new() {
    let b = base();
    let journal = Path::new(PARENT).join(".data.restore-journal");
    let (mut saw_old, mut saw_new, mut nested) = (false, false, 0);
    for cut in 0u64.. {
        let fs = b.vfs.crash(0); // everything is durable: an exact copy
        fs.cut_after(cut);
        let res = datadir::swap_in(&fs, &staging(), Path::new(TARGET), SNAPSHOT);
        let completed = !fs.is_cut();
        if completed {
            let out = res.unwrap();
            assert_eq!(out.snapshot, SNAPSHOT);
            assert!(out.rollback.is_some());
        }
        fs.cut_now();
        for seed in 0..SEEDS {
            let image = fs.crash(cut * 1_000 + seed);
            let (old, new, n) = cut_and_recover(&b, &image, &journal, cut);
            saw_old |= old;
            saw_new |= new;
            nested += n;
            if completed {
                assert!(new && !old, "a completed swap must leave the new data");
            }
        }
        if completed {
            break;
        }
        assert!(cut < 100, "the swap never completes");
    }
    assert!(saw_old && saw_new && nested > 0);
}

/// Crash images per cut (each keeps a different prefix of the unsynced changes).
const SEEDS: u64 = 8;

/// Recovers `image` (cut after `cut` operations of the swap), also cutting the recovery at
/// each of its own steps. Returns (saw old, saw new, nested cuts).
fn cut_and_recover(b: &Base, image: &SimVfs, journal: &Path, cut: u64) -> (bool, bool, u32) {
    let (mut saw_old, mut saw_new, mut nested) = (false, false, 0);
    {
        // Cut the recovery itself at each of its steps, then recover from that.
        if image.exists(journal) {
            for rcut in 0u64.. {
                let copy = image.crash(0);
                copy.cut_after(rcut);
                let done = datadir::recover(&copy, Path::new(TARGET)).is_ok() && !copy.is_cut();
                copy.cut_now();
                let again = copy.crash(rcut + 1);
                let is_new =
                    check_recovered(b, &again, &format!("swap cut {cut}, recovery cut {rcut}"));
                saw_old |= !is_new;
                saw_new |= is_new;
                nested += 1;
                if done {
                    break;
                }
            }
        }
        let is_new = check_recovered(b, image, &format!("swap cut {cut}"));
        saw_old |= !is_new;
        saw_new |= is_new;
    }
    (saw_old, saw_new, nested)
}

#[test]
fn the_v1_bare_json_journal_is_still_recovered() {
    let b = base();
    let fs = b.vfs.crash(0);
    // What Strata v1 left after journaling a complete staging directory (paths as given).
    let v1 = serde_json::json!({
        "target": TARGET,
        "staging": staging(),
        "rollback": "/d/data.pre-restore-20260101T000000Z-abcd",
        "snapshot": SNAPSHOT,
    });
    let mut f = fs
        .create(&Path::new(PARENT).join(".data.restore-journal"))
        .unwrap();
    std::io::Write::write_all(&mut f, v1.to_string().as_bytes()).unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs.sync_dir(Path::new(PARENT)).unwrap();
    // Through the engine's open, as `strata server` starts.
    drop(Engine::open(opts(&fs, Path::new(TARGET))).unwrap());
    assert_eq!(
        entries(&fs),
        ["data", "data.pre-restore-20260101T000000Z-abcd"]
    );
    let e = Engine::open(opts(&fs, Path::new(TARGET))).unwrap();
    assert!(common::scan_all(&e, "g").iter().all(|t| t.0 == "new"));
}

#[test]
fn a_damaged_journal_is_refused_and_nothing_moves() {
    let b = base();
    let journal = Path::new(PARENT).join(".data.restore-journal");
    // The first cut whose image holds the journal: the swap is committed, not yet done.
    let image = (0u64..100)
        .map(|cut| {
            let fs = b.vfs.crash(0);
            fs.cut_after(cut);
            let _ = datadir::swap_in(&fs, &staging(), Path::new(TARGET), SNAPSHOT);
            fs.cut_now();
            fs.crash(0)
        })
        .find(|image| image.exists(&journal))
        .unwrap();
    let mut bytes = image.read(&journal).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 1;
    let mut f = image.create(&journal).unwrap();
    std::io::Write::write_all(&mut f, &bytes).unwrap();
    drop(f);
    let before = entries(&image);
    let Err(err) = Engine::open(opts(&image, Path::new(TARGET))) else {
        panic!("the engine opened past a damaged swap journal");
    };
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(entries(&image), before);
}
