//! The kill loops and what they share: the binary, an HTTP client, the loop's seeded random
//! source, server start-up with the checkable groups, and repository set-up.

pub mod archive;
pub mod backup;
pub mod ingest;
pub mod online;
pub mod prune;
pub mod restore;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::{ChaosError, Result};
use crate::http::Client;
use crate::proc::{Server, Strata};
use crate::workload::{GROUP, Ledger, Plan, TTL_GROUP};
use crate::{Config, LoopKind};

pub struct Ctx {
    pub cfg: Config,
    pub kind: LoopKind,
    pub dir: PathBuf,
    pub strata: Strata,
    pub client: Client,
    pub log: PathBuf,
}

impl Ctx {
    pub fn new(cfg: &Config, kind: LoopKind, dir: PathBuf) -> Result<Ctx> {
        Ok(Ctx {
            cfg: cfg.clone(),
            kind,
            log: dir.join("server.log"),
            dir,
            strata: Strata::new(cfg.strata_bin.clone()),
            client: Client::new()?,
        })
    }

    /// The loop's random source: the seed, mixed with the loop's name so that `--loop all`
    /// and `--loop backup` with one seed make the same choices in the backup loop.
    pub fn rng(&self) -> StdRng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.kind.name().bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        StdRng::seed_from_u64(self.cfg.seed ^ h)
    }

    /// A progress line on stderr (the long runs take many minutes).
    pub fn progress(&self, sum: &crate::Summary) {
        if self.cfg.progress {
            eprintln!("  {}", sum.text());
        }
    }

    pub fn violation(&self, iteration: usize, detail: impl Into<String>) -> ChaosError {
        ChaosError::Violation {
            loop_name: self.kind.name(),
            seed: self.cfg.seed,
            iteration,
            replay_iterations: iteration + 1,
            detail: detail.into(),
        }
    }

    pub fn server(&self, data_dir: &Path) -> Result<Server> {
        Server::start(&self.strata, data_dir, &self.log)
    }

    /// A server with the two groups of `plan` created (idempotent: PUT merges settings).
    pub fn server_with_groups(&self, data_dir: &Path, plan: &Plan) -> Result<Server> {
        let s = self.server(data_dir)?;
        self.client
            .put_group(&s.url, GROUP, &serde_json::json!({}))?;
        self.client
            .put_group(&s.url, TTL_GROUP, &plan.ttl_settings())?;
        Ok(s)
    }

    pub fn ledger(&self, plan: Plan, name: &str) -> Result<Arc<Ledger>> {
        Ok(Arc::new(Ledger::new(plan, &self.dir.join(name))?))
    }

    /// `repo init` with a cheap KDF (the loops open the repository hundreds of times).
    pub fn init_repo(&self, repo: &Path) -> Result<()> {
        self.strata
            .run_ok(&["repo", "init", "--repo", s(repo), "--kdf-memory-kib", "256"])?;
        Ok(())
    }

    /// `verify --all --read-data`; `Err(detail)` when it reports damage or fails.
    pub fn verify_all(&self, repo: &Path) -> Result<std::result::Result<(), String>> {
        let out = self
            .strata
            .run(&["verify", "--repo", s(repo), "--all", "--read-data"])?;
        if out.status.success() {
            Ok(Ok(()))
        } else {
            Ok(Err(format!(
                "verify --all --read-data failed: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Snapshot ids in the repository, oldest first; damaged manifests are a violation.
    pub fn snapshots(&self, repo: &Path) -> Result<(Vec<String>, Vec<String>)> {
        let v = self
            .strata
            .run_json(&["snapshots", "--repo", s(repo), "--json"])?;
        let ids = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok((ids("snapshots"), ids("damaged")))
    }

    /// Restores `snapshot` into a fresh directory, starts a server on it and dumps it.
    pub fn restore_and_dump(&self, repo: &Path, snapshot: &str) -> Result<Vec<crate::http::Row>> {
        let target = self.dir.join("restored");
        if target.exists() {
            std::fs::remove_dir_all(&target)
                .map_err(ChaosError::io(format!("clear {}", target.display())))?;
        }
        self.strata.run_ok(&[
            "restore",
            "--repo",
            s(repo),
            "--data-dir",
            s(&target),
            "--snapshot",
            snapshot,
        ])?;
        let server = self.server(&target)?;
        let rows = self.client.dump(&server.url)?;
        server.stop()?;
        remove_restore_leftovers(&target)?;
        std::fs::remove_dir_all(&target)
            .map_err(ChaosError::io(format!("remove {}", target.display())))?;
        Ok(rows)
    }
}

/// Removes the `DIR.pre-restore-*` rollback copies a restore leaves beside `DIR`.
pub fn remove_restore_leftovers(target: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Ok(());
    };
    let prefix = format!("{}.pre-restore-", name.to_string_lossy());
    let entries =
        std::fs::read_dir(parent).map_err(ChaosError::io(format!("list {}", parent.display())))?;
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_dir_all(e.path())
                .map_err(ChaosError::io(format!("remove {}", e.path().display())))?;
        }
    }
    Ok(())
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// The data objects of a local repository (`data/<2 hex>/<64 hex>`) and their stored sizes.
/// Temporary files of interrupted uploads do not have such names and are not counted.
pub fn data_objects(repo: &Path) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut out = std::collections::BTreeMap::new();
    let data = repo.join("data");
    let Ok(dirs) = std::fs::read_dir(&data) else {
        return Ok(out);
    };
    for d in dirs.flatten() {
        let files = std::fs::read_dir(d.path())
            .map_err(ChaosError::io(format!("list {}", d.path().display())))?;
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                out.insert(name, len);
            }
        }
    }
    Ok(out)
}
