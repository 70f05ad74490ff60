//! `query_repo_one_group_of_ten`: issue 14's "a query touching one group of ten fetches ≤ 15 %
//! of the repository's bytes". A second Strata server gets the base data set spread over ten
//! groups `g0`…`g9` (each connection sends its bodies to the groups in turn, so every group
//! holds the same hosts over a tenth of the time slices), one encrypted local backup of it,
//! then the benchmark queries asked of `g0` straight from the repository. Besides the figures
//! of [`crate::query_repo`], it says where the repository's bytes are (the group's share, the
//! other groups', the metadata outside `data/`) and, for every first query, which of them it
//! fetched — read off the objects the query left in its cache, named through the manifest.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::load;
use crate::pipeline::{Ctx, Plan, Record, wait_quiescent};
use crate::procs::run_measured;
use crate::queries::{Kind, Query};
use crate::query_repo::{Setup, Target, backup_to, measure};
use crate::spool::Dataset;
use crate::systems::strata::{PASSWORD, Strata};
use crate::systems::{Tsdb, http_client};

pub const SCENARIO: &str = "query_repo_one_group_of_ten";
const GROUPS: usize = 10;
const QUERIED: &str = "g0";

/// Where one file of the snapshot is, for the byte accounting.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Place {
    /// A part's column data of the queried group (`data/g0/…/data.bin`).
    GroupData,
    /// The queried group's other files (series tables, indexes, part metadata).
    GroupOther,
    /// Files of the nine other groups.
    OtherGroups,
    /// Everything outside `data/` (catalog, WAL, checkpoint…).
    Metadata,
}

fn place(path: &str) -> Place {
    match path.strip_prefix("data/") {
        None => Place::Metadata,
        Some(rest) if rest.starts_with(&format!("{QUERIED}/")) => {
            if rest.ends_with("/data.bin") {
                Place::GroupData
            } else {
                Place::GroupOther
            }
        }
        Some(_) => Place::OtherGroups,
    }
}

/// Object id → (place, stored bytes), from `strata show latest --json`.
type Objects = HashMap<String, (Place, u64)>;

fn objects(st: &Strata, repo: &Path) -> Result<Objects, String> {
    let args = [
        "show",
        "--repo",
        &repo.to_string_lossy(),
        "latest",
        "--json",
    ]
    .map(String::from);
    let m = run_measured(
        &st.bin.to_string_lossy(),
        &args,
        &[("STRATA_REPO_PASSWORD", PASSWORD)],
    )
    .map_err(|e| e.to_string())?;
    if !m.status.success() {
        return Err(format!("strata show: {}", m.reason()));
    }
    let v: Value =
        serde_json::from_str(&m.stdout).map_err(|e| format!("strata show --json: {e}"))?;
    let files = v["manifest"]["files"]
        .as_array()
        .ok_or("strata show --json: no manifest.files")?;
    let mut out = Objects::new();
    for f in files {
        let (Some(path), Some(object)) = (f["path"].as_str(), f["object"].as_str()) else {
            continue;
        };
        let stored = f["stored_size"].as_u64().unwrap_or(0);
        out.entry(object.to_string())
            .or_insert((place(path), stored));
    }
    Ok(out)
}

fn share(objs: &Objects, p: Place) -> u64 {
    objs.values().filter(|(q, _)| *q == p).map(|(_, b)| b).sum()
}

/// Stored bytes of the whole objects a query left in `cache` (`<cache>/<repo id>/objects/`),
/// by place, and the number of first frames it read by range (`<id>.head`).
fn fetched(objs: &Objects, cache: &Path) -> Vec<(&'static str, f64)> {
    let mut by = [0u64; 4];
    let (mut heads, mut unknown) = (0u64, 0u64);
    let repos = std::fs::read_dir(cache).into_iter().flatten().flatten();
    for repo in repos {
        let Ok(rd) = std::fs::read_dir(repo.path().join("objects")) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".head") {
                heads += 1;
                continue;
            }
            match objs.get(&name) {
                Some((p, b)) => by[*p as usize] += b,
                None => unknown += 1,
            }
        }
    }
    vec![
        (
            "first_fetched_group_data_bytes",
            by[Place::GroupData as usize] as f64,
        ),
        (
            "first_fetched_group_other_bytes",
            by[Place::GroupOther as usize] as f64,
        ),
        (
            "first_fetched_other_groups_bytes",
            by[Place::OtherGroups as usize] as f64,
        ),
        (
            "first_fetched_metadata_bytes",
            by[Place::Metadata as usize] as f64,
        ),
        ("first_head_reads_cached", heads as f64),
        ("first_unnamed_objects", unknown as f64),
    ]
}

/// Runs the scenario for one repetition; its rows go to `out`.
pub fn run(
    st: &Strata,
    plan: &Plan,
    base: &Dataset,
    queries: &[Query],
    rep: usize,
    out: &mut Vec<Record>,
) {
    let mut ctx = Ctx::new(rep, out);
    let dir = plan.work.join(format!("groups-{rep}"));
    if let Err(e) = measure_groups(st, plan, base, queries, &dir, &mut ctx) {
        ctx.skip(SCENARIO, "strata", &e);
        for k in Kind::ALL {
            ctx.skip(&format!("{SCENARIO}_{}", k.name()), "strata", &e);
        }
    }
    if !plan.keep_work {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn measure_groups(
    st: &Strata,
    plan: &Plan,
    base: &Dataset,
    queries: &[Query],
    dir: &Path,
    ctx: &mut Ctx<'_>,
) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let r = st.start(&dir.join("data"), &dir.join("server.log"))?;
    let http = http_client()?;
    let mut urls = Vec::new();
    for g in 0..GROUPS {
        let put = format!("{}/api/v1/groups/g{g}", r.base_url);
        let resp = http
            .put(&put)
            .header("Content-Type", "application/json")
            .body(r#"{"ttl":"3650days"}"#)
            .send()
            .map_err(|e| format!("PUT {put}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("PUT {put}: HTTP {}", resp.status()));
        }
        urls.push(format!(
            "{}/api/v1/write?group=g{g}&precision=ns",
            r.base_url
        ));
    }
    let res = load::run_spread(base, &urls, None);
    if let Some(e) = res.first_error {
        return Err(format!("ingest into ten groups failed: {e}"));
    }
    wait_quiescent(r.server.pid(), plan.quiet, plan.quiesce_max);

    let repo = dir.join("repo");
    let target = Target {
        url: repo.to_string_lossy().into_owned(),
        flags: Vec::new(),
        env: Vec::new(),
        s3: None,
    };
    let mut extra = backup_to(st, &r, &target)?;
    let objs = objects(st, &repo)?;
    let total: u64 = objs.values().map(|(_, b)| b).sum();
    let of_total = |p: Place| share(&objs, p) as f64 / total.max(1) as f64;
    extra.extend([
        ("points", res.rows as f64),
        ("groups", GROUPS as f64),
        ("manifest_stored_bytes", total as f64),
        ("group_data_share", of_total(Place::GroupData)),
        ("group_other_share", of_total(Place::GroupOther)),
        ("other_groups_share", of_total(Place::OtherGroups)),
        ("metadata_share", of_total(Place::Metadata)),
    ]);
    let classify = |cache: &Path| fetched(&objs, cache);
    let setup = Setup {
        st,
        live_url: &r.base_url,
        group: QUERIED,
        runs: crate::query_repo::runs(plan),
        live_cli: false,
        scratch: dir.join("query-repo"),
        classify: Some(&classify),
    };
    measure(&setup, &target, queries, SCENARIO, &extra, ctx);
    r.server.stop(Duration::from_secs(10));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_of_snapshot_files() {
        assert_eq!(place("data/g0/seg-1/shard-0/p1/data.bin"), Place::GroupData);
        assert_eq!(
            place("data/g0/seg-1/shard-0/p1/series.bin"),
            Place::GroupOther
        );
        assert_eq!(
            place("data/g01/seg-1/shard-0/p1/data.bin"),
            Place::OtherGroups
        );
        assert_eq!(
            place("data/g3/seg-1/shard-0/p1/data.bin"),
            Place::OtherGroups
        );
        assert_eq!(place("catalog"), Place::Metadata);
        assert_eq!(place("wal/000001.wal"), Place::Metadata);
    }

    #[test]
    fn fetched_bytes_are_named_through_the_manifest() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let objects_dir = tmp.path().join("repo-id").join("objects");
        std::fs::create_dir_all(&objects_dir).unwrap_or_else(|e| panic!("{e}"));
        for name in ["a", "b", "c", "d.head", "zz"] {
            std::fs::write(objects_dir.join(name), b"x").unwrap_or_else(|e| panic!("{e}"));
        }
        let objs: Objects = [
            ("a".to_string(), (Place::GroupData, 100)),
            ("b".to_string(), (Place::Metadata, 7)),
            ("c".to_string(), (Place::GroupOther, 5)),
            ("d".to_string(), (Place::OtherGroups, 1000)),
        ]
        .into_iter()
        .collect();
        let m: HashMap<&str, f64> = fetched(&objs, tmp.path()).into_iter().collect();
        assert_eq!(m["first_fetched_group_data_bytes"], 100.0);
        assert_eq!(m["first_fetched_group_other_bytes"], 5.0);
        assert_eq!(m["first_fetched_other_groups_bytes"], 0.0);
        assert_eq!(m["first_fetched_metadata_bytes"], 7.0);
        assert_eq!(m["first_head_reads_cached"], 1.0);
        assert_eq!(m["first_unnamed_objects"], 1.0);
    }
}
