//! `check::check_verified_dir`: a restore's check of files it verified while fetching them
//! trusts exactly those digests, and nothing else.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::*;
use strata_engine::Engine;

/// A closed data directory with one part; returns (dir, part's data.bin path relative to it,
/// the digest its meta.bin records for it, the digests of all the part's files).
fn one_part() -> (
    tempfile::TempDir,
    PathBuf,
    [u8; 32],
    HashMap<PathBuf, [u8; 32]>,
) {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::open(opts(d.path())).unwrap();
    e.write("g", &[pt("a", recent(), 1.0), pt("b", recent() + 1, 2.0)])
        .unwrap();
    e.flush().unwrap();
    let snap = e.snapshot().unwrap();
    let f = snap
        .files
        .iter()
        .find(|f| f.rel_path.ends_with("data.bin"))
        .unwrap();
    let (rel, digest) = (f.rel_path.clone(), f.digest);
    let part_files = snap
        .files
        .iter()
        .filter(|x| x.rel_path.parent() == rel.parent() && !x.rel_path.ends_with("meta.bin"))
        .map(|x| (x.rel_path.clone(), x.digest))
        .collect();
    e.release_snapshot(&snap.id).unwrap();
    e.close().unwrap();
    (d, rel, digest, part_files)
}

fn flip_a_byte(path: &std::path::Path) {
    let mut b = std::fs::read(path).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_verified_digest_equal_to_the_recorded_one_is_not_read_again() {
    let (d, rel, _, verified) = one_part();
    assert_eq!(verified.len(), 2, "{verified:?}");
    // Damage the file behind the check's back: the full check finds it, the verified check
    // trusts the fetch's verification of exactly that digest and does not read it.
    flip_a_byte(&d.path().join(&rel));
    let full = strata_engine::check::check_dir(d.path()).unwrap();
    assert!(!full.ok(), "{full:?}");
    let trusted = strata_engine::check::check_verified_dir(d.path(), &verified).unwrap();
    assert!(trusted.ok(), "{trusted:?}");
}

#[test]
fn a_different_or_missing_verified_digest_means_the_file_is_hashed() {
    let (d, rel, digest, all) = one_part();
    flip_a_byte(&d.path().join(&rel));
    let mut other = digest;
    other[0] ^= 1;
    let mut wrong = all.clone();
    wrong.insert(rel.clone(), other);
    let mut partial = all.clone();
    partial.retain(|p, _| *p == rel);
    for verified in [
        wrong,
        partial,
        HashMap::new(),
        HashMap::from([(PathBuf::from("elsewhere/data.bin"), digest)]),
    ] {
        let r = strata_engine::check::check_verified_dir(d.path(), &verified).unwrap();
        assert!(!r.ok(), "{verified:?}: {r:?}");
        assert!(
            r.damaged.iter().any(|f| f.path == rel),
            "{verified:?}: {r:?}"
        );
    }
}
