//! restic, the general-purpose peer for Strata's backup: it backs up a Strata snapshot
//! directory (hard-linked into a stable path, so restic finds its parent snapshot and skips
//! unchanged files, as it would for a user backing up the same path every time).

use std::path::{Path, PathBuf};

use super::check;
use crate::procs::{Measured, run_measured};

const PASSWORD: &str = "strata-bench-password";

pub struct Restic {
    pub cache_dir: PathBuf,
}

pub fn installed() -> bool {
    super::is_installed("restic")
}

impl Restic {
    fn run(&self, what: &str, repo: &Path, args: &[&str]) -> Result<Measured, String> {
        let mut all = vec![
            "--repo".to_string(),
            repo.to_string_lossy().into_owned(),
            "--cache-dir".into(),
            self.cache_dir.to_string_lossy().into_owned(),
            "--quiet".into(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let m = run_measured("restic", &all, &[("RESTIC_PASSWORD", PASSWORD)])
            .map_err(|e| e.to_string())?;
        check(&format!("restic {what}"), m)
    }

    pub fn init(&self, repo: &Path) -> Result<(), String> {
        self.run("init", repo, &["init"]).map(|_| ())
    }

    /// Backs up `src` (restic 0.14 repositories compress with zstd and always encrypt).
    pub fn backup(&self, repo: &Path, src: &Path) -> Result<Measured, String> {
        self.run("backup", repo, &["backup", &src.to_string_lossy()])
    }

    pub fn restore(&self, repo: &Path, dst: &Path) -> Result<Measured, String> {
        self.run(
            "restore",
            repo,
            &["restore", "latest", "--target", &dst.to_string_lossy()],
        )
    }
}
