//! The backup crate talks to the engine through one API, `strata_engine::backup_api`, and
//! nothing else of it (issue 10): every mention of `strata_engine` in `crates/backup/src`
//! outside comments must be a path into that module.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `(file:line, text)` of every use of the engine that bypasses `backup_api`.
fn bypasses(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("strata_engine") {
                if !line[at..].starts_with("strata_engine::backup_api") {
                    out.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
    }
    out
}

#[test]
fn the_backup_crate_uses_the_engine_only_through_backup_api() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = bypasses(&src);
    assert!(
        found.is_empty(),
        "the backup crate reaches past strata_engine::backup_api:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_a_bypass() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("a.rs"),
        "// strata_engine::Engine in a comment is fine\nuse strata_engine::backup_api::StagedDir;\nuse strata_engine::{Engine, check};\n",
    )
    .unwrap();
    let found = bypasses(t.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("use strata_engine::{Engine, check};"));
}
