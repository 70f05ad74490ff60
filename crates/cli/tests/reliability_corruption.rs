//! Corruption sweep: every file of flushed data dirs and every object of an encrypted
//! multi-snapshot repository is damaged in turn (one random bit flipped; separately, truncated
//! to a random shorter length). `strata check` must detect and name every damaged data-dir
//! file (and the sweep says whether the engine itself also refuses it at open + scan);
//! `strata verify --read-data` must detect and name every damaged object, and `strata restore`
//! of a snapshot that needs it must fail closed (target untouched). `config` and `keys/*` are
//! also tampered with while keeping their checksums valid.
//!
//! `STRATA_SWEEP_SCALE` (default 1) multiplies the repository's snapshots and data. The counts
//! are printed (`--nocapture`) and recorded in RELIABILITY.md.
#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/src/archive_window.rs"]
#[allow(dead_code)]
mod archive_window;
mod backup_support;
#[path = "../../../fuzz/src/query_plan.rs"]
#[allow(dead_code)]
mod query_plan;
#[path = "../../../fuzz/src/targets.rs"]
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backup_support::*;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip,
    Truncate,
}

/// Damages `path` in place; returns false when the file is empty (nothing to damage).
fn damage(path: &Path, how: Damage, rng: &mut Rng) -> bool {
    let mut b = std::fs::read(path).unwrap();
    if b.is_empty() {
        return false;
    }
    match how {
        Damage::Flip => {
            let i = rng.below(b.len() as u64) as usize;
            b[i] ^= 1 << rng.below(8);
        }
        Damage::Truncate => b.truncate(rng.below(b.len() as u64) as usize),
    }
    std::fs::write(path, b).unwrap();
    true
}

/// What the engine itself makes of a damaged data dir (open read-only + full scan).
#[derive(Debug, PartialEq)]
enum Engine {
    /// Open or scan failed and the message names the file.
    Named,
    /// Failed, but the message does not name the file.
    Unnamed(String),
    /// Open and scan returned every point: the engine does not read the file.
    Unread,
    /// Open and scan returned fewer points: only acceptable for the newest WAL segment, whose
    /// damaged tail is indistinguishable from a torn write and is cut off.
    Lost(usize),
}

fn scale() -> usize {
    std::env::var("STRATA_SWEEP_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Two groups spanning two daily segments, several flushes (so every shard has two manifest
/// epochs and parts of different ages), a WAL tail; closed.
fn write_rich_data(dir: &Path, rounds: usize) {
    write_groups(dir, rounds, &["metrics", "events"]);
}

fn write_groups(dir: &Path, rounds: usize, groups: &[&str]) {
    let e = open(dir);
    let base = base_ts();
    for r in 0..rounds {
        for (gi, group) in groups.iter().enumerate() {
            let pts: Vec<strata_engine::Point> = (0..400)
                .map(|i| strata_engine::Point {
                    measure: if i % 3 == 0 { "mem" } else { "cpu" }.into(),
                    tags: vec![("host".into(), format!("h{}", i % 7))],
                    fields: vec![
                        (
                            "v".into(),
                            strata_engine::FieldValue::F64((i * (r + 1) + gi) as f64 * 0.25),
                        ),
                        ("n".into(), strata_engine::FieldValue::I64(i as i64)),
                    ],
                    // 400 points over ~1.5 days: two segments.
                    timestamp: base + (r * 400 + i) as i64 * 330_000_000_000,
                })
                .collect();
            e.write(group, &pts).unwrap();
        }
        if r + 1 < rounds {
            e.flush().unwrap();
        }
    }
    e.close().unwrap();
}

/// `strata check --json` on `dir`: (exit success, damaged paths with their details).
fn check_cli(dir: &Path) -> (bool, Vec<(String, String)>) {
    let o = run(&["check", "--data-dir", s(dir), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let damaged = v["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (o.status.success(), damaged)
}

/// The library behind `strata check` (the command is a thin printer over it; spawning it
/// for every damaged copy would make the sweep slow): (intact, damaged paths and details).
fn check(dir: &Path) -> (bool, Vec<(String, String)>) {
    let r = strata_engine::check::check_dir(dir).unwrap();
    let damaged = r
        .damaged
        .iter()
        .map(|f| (f.path.to_string_lossy().to_string(), f.detail.clone()))
        .collect();
    (r.ok(), damaged)
}

#[test]
fn check_command_names_damage_and_exits_non_zero() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("d");
    write_rich_data(&dir, 2);
    let (ok, damaged) = check_cli(&dir);
    assert!(ok && damaged.is_empty(), "{damaged:?}");
    assert!(run(&["check", "--data-dir", s(&dir)]).status.success());
    // Damage the previous manifest epoch: the engine opens fine, check does not.
    let mut files = Vec::new();
    targets::list_files(&dir, &dir, &mut files);
    let old = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("MANIFEST-0000000000000001"))
        .find(|f| {
            let sib = dir.join(f).with_file_name("MANIFEST-0000000000000002");
            sib.exists()
        })
        .unwrap()
        .clone();
    let clean = targets::open_and_scan(&dir).unwrap();
    assert!(damage(&dir.join(&old), Damage::Flip, &mut Rng(7)));
    assert_eq!(targets::open_and_scan(&dir).unwrap(), clean);
    let (ok, damaged) = check_cli(&dir);
    let rel = old.to_string_lossy().to_string();
    assert!(!ok && damaged.iter().any(|(p, _)| p == &rel), "{damaged:?}");
    let out = fails(&["check", "--data-dir", s(&dir)]);
    assert!(out.contains(&rel), "{out}");
    // Not a directory at all: a clear one-line error.
    fails(&["check", "--data-dir", s(&t.path().join("absent"))]);
}

#[test]
fn check_detects_every_damaged_file_and_the_engine_never_returns_wrong_data() {
    let t = tempfile::tempdir().unwrap();
    let reference = t.path().join("reference");
    targets::write_reference_data(&reference);
    let rich = t.path().join("rich");
    // Default: one group (a quick run); scaled: two groups and more flushes.
    match scale() {
        1 => write_groups(&rich, 2, &["metrics"]),
        n => write_rich_data(&rich, 1 + n),
    }
    // A snapshot directory (what a backup uploads), checked on its own.
    let snapshot = t.path().join("snapshot");
    {
        let e = open(&rich);
        let snap = e.snapshot().unwrap();
        strata_engine::backup_api::export_snapshot(&snap, &snapshot).unwrap();
        e.release_snapshot(&snap.id).unwrap();
        e.close().unwrap();
    }
    let mut rng = Rng(0xC0FF_EE00_D00D);
    let (mut files_total, mut tried, mut detected) = (0, 0, 0);
    let mut by_engine: BTreeMap<&str, usize> = BTreeMap::new();
    let mut missed = Vec::new();
    for seed in [&reference, &rich, &snapshot] {
        let (ok, damaged) = check(seed);
        assert!(ok, "{} is clean: {damaged:?}", seed.display());
        let mut files = Vec::new();
        targets::list_files(seed, seed, &mut files);
        files.sort();
        files_total += files.len();
        let clean = targets::open_and_scan(seed).unwrap();
        assert!(clean > 0);
        let newest_wal = files.iter().filter(|f| f.starts_with("wal")).max().cloned();
        for rel in &files {
            for how in [Damage::Flip, Damage::Truncate] {
                let work = tempfile::tempdir().unwrap();
                targets::copy_dir(seed, work.path());
                if !damage(&work.path().join(rel), how, &mut rng) {
                    continue;
                }
                tried += 1;
                let rel_s = rel.to_string_lossy().to_string();
                let (ok, damaged) = check(work.path());
                let named = damaged.iter().find(|(p, _)| p == &rel_s);
                match (ok, named) {
                    (false, Some(_)) => detected += 1,
                    _ => missed.push(format!("check: {rel_s} {how:?}: {damaged:?}")),
                }
                let name = rel.file_name().unwrap().to_string_lossy().to_string();
                let engine = match targets::open_and_scan(work.path()) {
                    Err(e) if e.contains(&name) => Engine::Named,
                    Err(e) => Engine::Unnamed(e),
                    Ok(n) if n == clean => Engine::Unread,
                    Ok(n) => Engine::Lost(clean - n),
                };
                let verdict = match &engine {
                    Engine::Named => "engine refuses it, naming the file",
                    Engine::Unread => "engine does not read it (all points returned)",
                    Engine::Lost(_) if Some(rel) == newest_wal.as_ref() => {
                        "engine cuts it as a torn WAL tail (never-acknowledged writes)"
                    }
                    Engine::Lost(_) | Engine::Unnamed(_) => {
                        missed.push(format!("engine: {rel_s} {how:?}: {engine:?}"));
                        "engine MISSED it"
                    }
                };
                *by_engine.entry(verdict).or_default() += 1;
                println!(
                    "  {:<10} {rel_s} {how:?}: check: {}; {verdict}",
                    seed.file_name().unwrap().to_string_lossy(),
                    named.map_or("MISSED".to_string(), |(_, d)| d.clone()),
                );
            }
        }
    }
    println!(
        "data-dir corruption sweep: {files_total} files in 3 dirs, {tried} damaged copies, \
         {detected} detected and named by strata check, {} missed",
        tried - detected
    );
    for (verdict, n) in &by_engine {
        println!("  {n:>4} {verdict}");
    }
    assert!(missed.is_empty(), "missed: {missed:#?}");
}

fn repo_objects(repo: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    targets::list_files(repo, repo, &mut files);
    files.sort();
    files
}

/// Snapshot ids using each repository object (by its path relative to the repository).
fn users(repo: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in std::fs::read_dir(repo.join("snapshots")).unwrap() {
        let id = e.unwrap().file_name().to_string_lossy().to_string();
        out.entry(format!("snapshots/{id}"))
            .or_default()
            .push(id.clone());
        let v = json(&["show", "--repo", s(repo), &id, "--json"]);
        for f in v["manifest"]["files"].as_array().unwrap() {
            let o = f["object"].as_str().unwrap();
            out.entry(format!("data/{}/{o}", &o[..2]))
                .or_default()
                .push(id.clone());
        }
    }
    out
}

/// Restores `snapshot` (or the latest) into a fresh directory under `work`; returns
/// (succeeded, entries left behind in `work`).
fn try_restore(repo: &Path, work: &Path, snapshot: Option<&str>) -> (bool, Vec<String>) {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).unwrap();
    let target = work.join("restored");
    let mut args = vec!["restore", "--repo", s(repo), "--data-dir", s(&target)];
    if let Some(id) = snapshot {
        args.extend(["--snapshot", id]);
    }
    let ok = run(&args).status.success();
    let left = std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    (ok, left)
}

fn verify_text(repo: &Path) -> (bool, String) {
    let o = run(&["verify", "--repo", s(repo), "--read-data"]);
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn verify_and_restore_detect_every_damaged_object() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    // Default: a quick run (one group, three snapshots); scaled: two groups, 2 + 2n snapshots.
    let (snapshots, groups): (usize, &[&str]) = match scale() {
        1 => (3, &["metrics"]),
        n => (2 + 2 * n, &["metrics", "events"]),
    };
    for k in 0..snapshots {
        write_groups(&data, 1 + k % 2, groups);
        ok(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    }
    ok(&["verify", "--repo", s(&repo), "--read-data"]);
    let objects = repo_objects(&repo);
    let users = users(&repo);
    let mut rng = Rng(0xBAD_5EED);
    let work = t.path().join("work");
    let (mut tried, mut detected, mut restores, mut closed) = (0, 0, 0, 0);
    let mut missed = Vec::new();
    for rel in &objects {
        let path = repo.join(rel);
        let original = std::fs::read(&path).unwrap();
        let rel_s = rel.to_string_lossy().to_string();
        for how in [Damage::Flip, Damage::Truncate] {
            if !damage(&path, how, &mut rng) {
                continue;
            }
            tried += 1;
            let name = rel.file_name().unwrap().to_string_lossy().to_string();
            let (ok, text) = verify_text(&repo);
            if !ok && text.contains(&name) {
                detected += 1;
            } else {
                missed.push(format!("verify: {rel_s} {how:?}: {}", text.trim()));
            }
            // Restore a snapshot that needs the object (any snapshot for config and keys).
            let snapshot = users
                .get(&rel_s)
                .and_then(|u| u.first())
                .map(String::as_str);
            if snapshot.is_some() || !rel.starts_with("data") {
                restores += 1;
                let (ok, left) = try_restore(&repo, &work, snapshot);
                if ok || !left.is_empty() {
                    missed.push(format!(
                        "restore with {rel_s} {how:?}: succeeded {ok}, left {left:?}"
                    ));
                } else {
                    closed += 1;
                }
            }
            std::fs::write(&path, &original).unwrap();
        }
    }
    println!(
        "repository corruption sweep: {} snapshots, {} objects, {tried} damaged copies, \
         {detected} detected and named by verify --read-data, {restores} restores, {closed} \
         failed closed, {} problems",
        snapshots,
        objects.len(),
        missed.len()
    );
    for m in &missed {
        println!("  missed: {m}");
    }
    assert!(missed.is_empty(), "undetected damage: {missed:#?}");
    ok(&["verify", "--repo", s(&repo), "--read-data"]);
}

/// Rewrites a checked repository document (`config`, `keys/*`) with `edit` applied to its
/// body and a recomputed, valid checksum (`strata_backup::config::seal_doc`'s format).
fn tamper(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut doc["body"]);
    let canon = serde_json::to_vec(&doc["body"]).unwrap();
    doc["blake3"] = blake3::hash(&canon).to_hex().to_string().into();
    std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

#[test]
fn tampered_config_and_keys_with_valid_checksums_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    write_rich_data(&data, 2);
    ok(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    let key = std::fs::read_dir(repo.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let config = repo.join("config");
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let hexflip = |s: &str| -> String {
        let mut b = s.as_bytes().to_vec();
        b[0] = if b[0] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    let cases: Vec<(&str, &Path, Edit)> = vec![
        (
            "config: repository id changed",
            &config,
            Box::new(move |b| b["id"] = hexflip(b["id"].as_str().unwrap()).into()),
        ),
        (
            "config: magic changed",
            &config,
            Box::new(|b| b["magic"] = "not-strata".into()),
        ),
        (
            "config: unknown encryption",
            &config,
            Box::new(|b| b["encryption"] = "rot13".into()),
        ),
        (
            "key: salt changed",
            &key,
            Box::new(move |b| {
                b["wrapped"]["salt"] = hexflip(b["wrapped"]["salt"].as_str().unwrap()).into()
            }),
        ),
        (
            "key: KDF cost changed",
            &key,
            Box::new(|b| b["wrapped"]["params"]["m_cost"] = 512.into()),
        ),
        (
            "key: wrapped key changed",
            &key,
            Box::new(move |b| {
                b["wrapped"]["ciphertext"] =
                    hexflip(b["wrapped"]["ciphertext"].as_str().unwrap()).into()
            }),
        ),
        (
            "key: unknown KDF",
            &key,
            Box::new(|b| b["wrapped"]["kdf"] = "md5".into()),
        ),
        (
            "key: KDF cost out of bounds",
            &key,
            Box::new(|b| b["wrapped"]["params"]["m_cost"] = u32::MAX.into()),
        ),
    ];
    let work = t.path().join("work");
    let listing = |repo: &Path| {
        let mut v = repo_objects(repo);
        v.retain(|p| !p.starts_with("keys") && !p.ends_with("config"));
        v
    };
    let objects_before = listing(&repo);
    for (what, path, edit) in cases {
        let original = std::fs::read(path).unwrap();
        tamper(path, edit);
        let (ok, text) = verify_text(&repo);
        assert!(!ok, "{what}: verify passed");
        let line = text.trim().lines().last().unwrap_or("").to_string();
        let (restored, left) = try_restore(&repo, &work, None);
        assert!(
            !restored && left.is_empty(),
            "{what}: restore {restored}, left {left:?}"
        );
        let b = run(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
        assert!(!b.status.success(), "{what}: backup succeeded");
        assert_eq!(
            listing(&repo),
            objects_before,
            "{what}: the repository changed"
        );
        println!("tampered {what}: verify, restore and backup refuse: {line}");
        std::fs::write(path, original).unwrap();
    }
    ok(&["verify", "--repo", s(&repo), "--read-data"]);
}

/// Downgrading `config` to `encryption: none` (checksum valid) must not make the next backup
/// write plaintext into an encrypted repository.
///
/// Regression for a defect found by the corruption sweep: `Repository::open` trusted the
/// unkeyed config, so the backup uploaded every file in clear (32 objects here) beside the
/// encrypted ones. It now refuses an unencrypted config while `keys/` holds key files.
#[test]
fn encryption_downgrade_of_config_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (data, repo) = (t.path().join("data"), t.path().join("repo"));
    init_repo(&repo);
    write_rich_data(&data, 1);
    ok(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    let before = repo_objects(&repo);
    tamper(&repo.join("config"), |b| b["encryption"] = "none".into());
    let b = run(&["backup", "--repo", s(&repo), "--data-dir", s(&data)]);
    let after = repo_objects(&repo);
    let added: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    assert!(
        !b.status.success() && added.is_empty(),
        "a backup into a downgraded repository wrote {} objects in clear (exit {:?}): {}",
        added.len(),
        b.status.code(),
        String::from_utf8_lossy(&b.stderr)
    );
    let (ok, _) = verify_text(&repo);
    assert!(!ok, "verify passes a downgraded repository");
}
