//! Adoption: publishing whole groups restored into a staging directory in a running engine,
//! in one step (an online restore). Normative: `docs/format/adopt-journal.md`.
//!
//! A staging directory `adopt/<id>/` is a data directory of its own, built by a second
//! engine (a restore writes the selection into it) whose part ids come from a range this
//! engine reserved ([`create_staging`]), so its parts can move in without renumbering.
//! [`adopt`] then, under `flush_lock` and `layout`:
//! 1. flushes (so the adoption's own flush is small), refuses while a snapshot pins the
//!    groups' directories, and parks each staged group beside its final place
//!    (`data/.adopt.<id>.<group>`), durably;
//! 2. under `commit`: checks the groups (a new name must not exist; an existing one needs
//!    `replace`), picks the cut `C` (the LSN of one `PutGroup` record per group), writes the
//!    journal `ADOPT`, appends the records, swaps the groups' catalog entries and freezes the
//!    active memtable at `C` (writers go on into a fresh one, against the new catalog);
//! 3. waits until `C` is durable, builds the frozen memtable's parts (rows of the adopted
//!    groups at or below `C` belong to what is replaced and are left out), renames the old
//!    group directories aside (`data/.adopt-replaced.<group>`) and the parked ones into place:
//!    renames inside `data/` only, each all or nothing;
//! 4. publishes the manifests, then the checkpoint at `C` (the commit point), then the new
//!    part set and the frozen memtable's retirement in one change of the read state (a query
//!    sees all of the adopted groups or none), and removes the replaced groups, the journal
//!    and the staging directory.
//!
//! A failure after the journal poisons the engine (like a failed flush): reopening rolls the
//! adoption forward ([`recover_at_open`], [`finish_at_open`]). A crash anywhere leaves the
//! data as it was (no journal) or, once the journal exists, fully adopted after the next open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::adopt_journal::{self as journal, Journal, JournalGroup, STAGING_DIR};
use super::durable::wait_durable;
use super::flush::{add_built, freeze_commit, poison_on};
use super::publish::write_checkpoint;
use super::state::*;
use crate::catalog::{CatalogState, validate_group_name};
use crate::error::{Error, Result};
use crate::format::{create_dir_all, fsync_dir, remove_all};
use crate::manifest::{self, Manifest};
use crate::meta_files::{self, Checkpoint};
use crate::model::{Catalog, GroupCatalog};
use crate::part::{PartReader, part_dir_name};
use crate::record;
use crate::vfs::Vfs;
use crate::wal::encode_frame;

/// Part ids reserved for one staging directory (ids are u64 and never reused: a gap of this
/// size per restore costs nothing).
pub const STAGED_PART_IDS: u64 = 1 << 32;

/// A group to adopt from a staging directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptGroup {
    pub name: String,
    /// Replace an existing group of that name (refused otherwise).
    pub replace: bool,
}

/// What [`adopt`] published.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Adopted {
    pub groups: Vec<String>,
    /// Groups that existed and were replaced.
    pub replaced: Vec<String>,
    pub parts: u64,
    /// The adoption's LSN.
    pub lsn: u64,
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Creates the staging directory `adopt/<id>/` (replacing a leftover of the same id) with a
/// checkpoint that starts its part ids at a range reserved in this engine. Returns its path.
pub fn create_staging(inner: &Inner, id: &str) -> Result<PathBuf> {
    if inner.env.read_only {
        return Err(Error::InvalidInput("engine is open read-only".into()));
    }
    if !valid_id(id) {
        return Err(Error::InvalidInput(format!(
            "staging id {id:?}: 1 to 64 letters, digits, '-' or '_'"
        )));
    }
    let vfs = inner.vfs();
    let root = inner.env.dir.join(STAGING_DIR);
    let path = root.join(id);
    if crate::datadir::is_locked(vfs, &path)? {
        return Err(Error::Refused(format!("restore {id} is already staging")));
    }
    remove_all(vfs, &path)?;
    create_dir_all(vfs, &path)?;
    fsync_dir(vfs, &root)?;
    fsync_dir(vfs, &inner.env.dir)?;
    let base = inner
        .published
        .next_part_id
        .fetch_add(STAGED_PART_IDS, Ordering::SeqCst);
    let ckpt = Checkpoint {
        lsn: 0,
        next_part_id: base,
        catalog: Catalog::default(),
    };
    meta_files::write_checkpoint(vfs, &path, &ckpt)?;
    Ok(path)
}

/// Removes a staging directory that will not be adopted.
pub fn discard_staging(inner: &Inner, staged: &Path) -> Result<()> {
    let rel = staging_name(inner, staged)?;
    let vfs = inner.vfs();
    remove_parked(vfs, &inner.env.dir, Some(&rel))?;
    let root = inner.env.dir.join(STAGING_DIR);
    remove_all(vfs, &root.join(rel))?;
    remove_if_empty(vfs, &root)
}

/// The entry name of `staged` under `adopt/`, refusing anything else.
fn staging_name(inner: &Inner, staged: &Path) -> Result<String> {
    staged
        .strip_prefix(inner.env.dir.join(STAGING_DIR))
        .ok()
        .and_then(|r| r.to_str())
        .filter(|r| valid_id(r))
        .map(str::to_string)
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "{} is not a staging directory of this engine",
                staged.display()
            ))
        })
}

/// A staged group, read and checked before anything changes.
struct Staged {
    name: String,
    catalog: GroupCatalog,
    shards: Vec<(ShardKey, Manifest)>,
    parts: u64,
}

fn load_staged(vfs: &dyn Vfs, staged: &Path, groups: &[AdoptGroup]) -> Result<Vec<Staged>> {
    let not_staged = |why: &str| {
        Error::InvalidInput(format!(
            "{} is not a finished staging directory: {why}",
            staged.display()
        ))
    };
    if crate::datadir::is_locked(vfs, staged)? {
        return Err(not_staged("its engine is still open (close it first)"));
    }
    let ckpt =
        meta_files::read_checkpoint(vfs, staged)?.ok_or_else(|| not_staged("no CHECKPOINT"))?;
    let mut out = Vec::new();
    for g in groups {
        let catalog = ckpt
            .catalog
            .groups
            .iter()
            .find(|c| c.name == g.name)
            .cloned()
            .ok_or_else(|| not_staged(&format!("it holds no group '{}'", g.name)))?;
        let mut shards = Vec::new();
        let mut parts = 0;
        let gdir = staged.join(group_rel(&g.name));
        for (seg_name, seg_dir) in subdirs(vfs, &gdir)? {
            let Some(segment) = parse_seg(&seg_name) else {
                continue;
            };
            for (shard_name, shard_dir) in subdirs(vfs, &seg_dir)? {
                let Some(shard) = parse_shard(&shard_name) else {
                    continue;
                };
                let Some(m) = manifest::load_latest(vfs, &shard_dir)? else {
                    continue;
                };
                for id in &m.parts {
                    let p = PartReader::open(vfs, &shard_dir.join(part_dir_name(*id)))?;
                    if p.meta.part_id != *id || p.meta.group != g.name || p.meta.shard != shard {
                        return Err(not_staged("a part's identity does not match its manifest"));
                    }
                    parts += 1;
                }
                let key = ShardKey {
                    group: g.name.clone(),
                    segment,
                    shard,
                };
                shards.push((key, m));
            }
        }
        out.push(Staged {
            name: g.name.clone(),
            catalog,
            shards,
            parts,
        });
    }
    Ok(out)
}

fn subdirs(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = match vfs.read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out: Vec<_> = entries
        .into_iter()
        .filter(|e| e.is_dir)
        .map(|e| (e.name.clone(), dir.join(e.name)))
        .collect();
    out.sort();
    Ok(out)
}

/// fsync every directory of a tree.
fn sync_tree(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    for (_, p) in subdirs(vfs, dir)? {
        sync_tree(vfs, &p)?;
    }
    fsync_dir(vfs, dir)
}

fn check_groups(groups: &[AdoptGroup]) -> Result<()> {
    if groups.is_empty() {
        return Err(Error::InvalidInput(
            "nothing to adopt: no group named".into(),
        ));
    }
    for (i, g) in groups.iter().enumerate() {
        validate_group_name(&g.name)?;
        if groups[..i].iter().any(|o| o.name == g.name) {
            return Err(Error::InvalidInput(format!(
                "group '{}' named twice",
                g.name
            )));
        }
    }
    Ok(())
}

/// Adopt `groups` from the staging directory `staged` (see the module docs).
pub fn adopt(inner: &Inner, staged: &Path, groups: &[AdoptGroup]) -> Result<Adopted> {
    if inner.env.read_only {
        return Err(Error::InvalidInput("engine is open read-only".into()));
    }
    inner.writes.check_poisoned()?;
    check_groups(groups)?;
    let staging = staging_name(inner, staged)?;
    let vfs = inner.vfs();
    let staged_groups = load_staged(vfs, staged, groups)?;
    refuse_existing(&lock(&inner.writes.commit).catalog, groups)?;
    let mut retry = lock(&inner.background.flush_lock);
    super::flush::flush_locked(inner, &mut retry)?;
    let _layout = lock(&inner.published.layout);
    refuse_pinned(inner, groups)?;
    // Each group moves beside its final place (`data/.adopt.<id>.<group>`) and everything the
    // journal will promise is made durable first: after the journal, only renames inside
    // `data/` remain, and a rename inside one directory is all or nothing.
    for g in groups {
        let from = staged.join(group_rel(&g.name));
        let to = parked(&inner.env.dir, &staging, &g.name);
        sync_tree(vfs, &from)?;
        vfs.rename(&from, &to).map_err(|e| Error::io(&from, e))?;
    }
    fsync_dir(vfs, &data_root(staged))?;
    fsync_dir(vfs, &data_root(&inner.env.dir))?;
    let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let mut replaced = Vec::new();
    let frozen = {
        let mut c = lock(&inner.writes.commit);
        // Again under `commit`: a writer may have created a group of that name meanwhile.
        refuse_existing(&c.catalog, groups)?;
        replaced.extend(
            groups
                .iter()
                .filter(|g| c.catalog.groups.contains_key(&g.name))
                .map(|g| g.name.clone()),
        );
        let cut = c.last_lsn + groups.len() as u64;
        let j = Journal {
            cut,
            staging: staging.clone(),
            groups: groups
                .iter()
                .map(|g| JournalGroup {
                    name: g.name.clone(),
                    replace: g.replace,
                })
                .collect(),
            catalog: Catalog {
                groups: staged_groups.iter().map(|s| s.catalog.clone()).collect(),
            },
        };
        // Before any record of the adoption exists: without the journal, a crash leaves the
        // data as it was; with it, the next open rolls forward.
        journal::write(vfs, &inner.env.dir, &j)?;
        for s in &staged_groups {
            let payload = record::encode_put_group(&s.name, &s.catalog.settings);
            let lsn = c.last_lsn + 1;
            if c.pending.is_empty() {
                c.pending_first = lsn;
            }
            let t = c.commit_time();
            encode_frame(lsn, record::KIND_PUT_GROUP, t, &payload, &mut c.pending);
            c.last_lsn = lsn;
        }
        install_catalog(&mut c.catalog, &j.catalog);
        freeze_commit(inner, &mut c)
    };
    let j_staging = staging;
    let published = (|| {
        wait_durable(inner, frozen.cut(), true)?;
        if let Some(w) = lock(&inner.writes.wal).as_mut() {
            w.rotate()?;
        }
        let mut built = Vec::new();
        frozen.build_parts(inner, &names, &mut built)?;
        for s in &staged_groups {
            install_group(vfs, &inner.env.dir, &j_staging, &s.name)?;
        }
        let mut v = (*read(&inner.published.state).version).clone();
        v.shards.retain(|k, _| !names.contains(&k.group));
        for s in &staged_groups {
            for (key, m) in &s.shards {
                v.shards.insert(key.clone(), open_shard(inner, key, m)?);
            }
        }
        add_built(inner, &mut v, &mut built, frozen.cut(), frozen.catalog())?;
        // The commit point: from here the checkpoint records the adopted catalog at the cut.
        write_checkpoint(inner, frozen.catalog(), frozen.cut())?;
        {
            let mut st = write(&inner.published.state);
            st.version = Arc::new(v);
            st.frozen.retain(|m| !frozen.is(m));
        }
        if let Some(w) = lock(&inner.writes.wal).as_mut() {
            let through = inner.archive.deletable_through(frozen.cut(), &w.segments());
            w.delete_through(through)?;
        }
        Ok(())
    })();
    if let Err(e) = published {
        return Err(poison_on(inner, "adoption", e));
    }
    if let Err(e) = cleanup(vfs, &inner.env.dir, Some(staged)) {
        // The adoption is complete; the journal left behind is finished at the next open.
        tracing::warn!(error = %e, "adoption published; cleaning up its journal failed");
    }
    Ok(Adopted {
        groups: names,
        replaced,
        parts: staged_groups.iter().map(|s| s.parts).sum(),
        lsn: frozen.cut(),
    })
}

/// A new group whose name exists needs `replace`.
fn refuse_existing(catalog: &CatalogState, groups: &[AdoptGroup]) -> Result<()> {
    for g in groups {
        if !g.replace && catalog.groups.contains_key(&g.name) {
            return Err(Error::Refused(format!(
                "group '{}' exists: restore it under another name (--into-group NEW) or replace it whole (--replace)",
                g.name
            )));
        }
    }
    Ok(())
}

/// Where a staged group waits for its rename into place.
fn parked(dir: &Path, staging: &str, group: &str) -> PathBuf {
    data_root(dir).join(format!("{PARKED}{staging}.{group}"))
}

/// Prefix of entries of `data/` that are not groups: staged groups waiting for their rename
/// (`.adopt.<id>.<group>`) and replaced groups waiting for removal (`.adopt-replaced.<group>`).
/// Group names never start with `.`; open skips such entries and removes leftovers.
const PARKED: &str = ".adopt.";
const REPLACED: &str = ".adopt-replaced.";

/// A live snapshot reading a group's files would lose them (or see them change).
fn refuse_pinned(inner: &Inner, groups: &[AdoptGroup]) -> Result<()> {
    let pinned = lock(&inner.pins).pinned_dirs();
    for g in groups {
        if pinned.iter().any(|p| p.starts_with(group_rel(&g.name))) {
            return Err(Error::Refused(format!(
                "a snapshot (a running backup) is reading files of group '{}'; retry once it is released",
                g.name
            )));
        }
    }
    Ok(())
}

/// Replace the catalog entries of the adopted groups.
fn install_catalog(catalog: &mut CatalogState, adopted: &Catalog) {
    let fresh = CatalogState::from_public(adopted);
    for (name, g) in fresh.groups {
        catalog.groups.insert(name, g);
    }
}

fn open_shard(inner: &Inner, key: &ShardKey, m: &Manifest) -> Result<ShardState> {
    let dir = inner.env.dir.join(shard_rel(key));
    let mut parts = Vec::with_capacity(m.parts.len());
    for id in &m.parts {
        parts.push(Arc::new(PartReader::open(
            inner.vfs(),
            &dir.join(part_dir_name(*id)),
        )?));
    }
    parts.sort_by_key(|p| p.meta.min_lsn);
    Ok(ShardState {
        epoch: m.epoch,
        flushed_lsn: m.flushed_lsn,
        segment_end: m.segment_end,
        shards: m.shards,
        parts,
    })
}

/// Move `data/<name>` (if any) aside and the parked staged group into its place; renames
/// inside `data/` only, idempotent (nothing to do once the parked group has moved).
fn install_group(vfs: &dyn Vfs, dir: &Path, staging: &str, name: &str) -> Result<()> {
    let from = parked(dir, staging, name);
    if !vfs.exists(&from) {
        return Ok(());
    }
    let data = data_root(dir);
    let to = data.join(name);
    if vfs.exists(&to) {
        let old = data.join(format!("{REPLACED}{name}"));
        remove_all(vfs, &old)?;
        vfs.rename(&to, &old).map_err(|e| Error::io(&to, e))?;
    }
    vfs.rename(&from, &to).map_err(|e| Error::io(&from, e))?;
    fsync_dir(vfs, &data)
}

/// After the commit point: the replaced groups' old files, the journal, the staging
/// directory (`staged`, or every staging directory when `None`).
fn cleanup(vfs: &dyn Vfs, dir: &Path, staged: Option<&Path>) -> Result<()> {
    remove_parked(vfs, dir, None)?;
    journal::remove(vfs, dir)?;
    match staged {
        Some(s) => {
            remove_all(vfs, s)?;
            remove_if_empty(vfs, &dir.join(STAGING_DIR))
        }
        None => remove_all(vfs, &dir.join(STAGING_DIR)),
    }
}

/// `adopt/` goes once no staging directory is left in it.
fn remove_if_empty(vfs: &dyn Vfs, root: &Path) -> Result<()> {
    match vfs.read_dir(root) {
        Ok(e) if e.is_empty() => remove_all(vfs, root),
        _ => Ok(()),
    }
}

/// Removes the entries of `data/` an adoption left: replaced groups, and groups parked by
/// staging `only` (every staging directory when `None`).
fn remove_parked(vfs: &dyn Vfs, dir: &Path, only: Option<&str>) -> Result<()> {
    let prefix = only.map(|id| format!("{PARKED}{id}."));
    for (name, p) in subdirs(vfs, &data_root(dir))? {
        let gone = match &prefix {
            Some(pre) => name.starts_with(pre.as_str()),
            None => name.starts_with(PARKED) || name.starts_with(REPLACED),
        };
        if gone {
            remove_all(vfs, &p)?;
        }
    }
    Ok(())
}

/// Whether an entry of `data/` is a group directory (not one an adoption parked).
pub fn is_group_entry(name: &str) -> bool {
    !name.starts_with('.')
}

/// An adoption the next open rolls forward: the journal's cut, groups and catalog entries.
#[derive(Debug)]
pub struct Pending {
    cut: u64,
    groups: Vec<String>,
    catalog: Catalog,
    applied: bool,
}

impl Pending {
    /// Whether replay must skip a record of `group` at `lsn` (superseded by the adoption);
    /// installs the adopted catalog entries once replay passes the cut.
    pub fn filter(&mut self, catalog: &mut CatalogState, lsn: u64, group: &str) -> bool {
        if lsn <= self.cut {
            return self.groups.iter().any(|g| g == group);
        }
        self.apply(catalog);
        false
    }

    /// Installs the adopted catalog entries (at the end of replay when no record follows).
    pub fn apply(&mut self, catalog: &mut CatalogState) {
        if !self.applied {
            install_catalog(catalog, &self.catalog);
            self.applied = true;
        }
    }
}

/// Open, step 0 (read-write): with a journal, finish moving the staged groups into place;
/// if the checkpoint already records the adoption (`ckpt_lsn >= cut`) clean up, else return
/// what replay must roll forward. Staging directories no journal names are removed.
/// Read-only, a journal is refused (the data is between two states until a read-write open).
pub fn recover_at_open(
    vfs: &dyn Vfs,
    dir: &Path,
    ckpt_lsn: u64,
    read_only: bool,
) -> Result<Option<Pending>> {
    let Some(j) = journal::read(vfs, dir)? else {
        if !read_only {
            remove_parked(vfs, dir, None)?;
            remove_all(vfs, &dir.join(STAGING_DIR))?;
        }
        return Ok(None);
    };
    if read_only {
        return Err(Error::Refused(format!(
            "an online restore into {} was interrupted; start the server on it (or open it read-write) once to finish it",
            dir.display()
        )));
    }
    for (name, p) in subdirs(vfs, &dir.join(STAGING_DIR))? {
        if name != j.staging {
            remove_all(vfs, &p)?;
        }
    }
    for g in &j.groups {
        install_group(vfs, dir, &j.staging, &g.name)?;
    }
    if ckpt_lsn >= j.cut {
        cleanup(vfs, dir, None)?;
        return Ok(None);
    }
    tracing::warn!(groups = ?j.names(), cut = j.cut, "finishing an interrupted online restore");
    Ok(Some(Pending {
        cut: j.cut,
        groups: j.names(),
        catalog: j.catalog,
        applied: false,
    }))
}

/// Open, last step (read-write, before any writer): with a journal still present, replay has
/// rolled the adoption forward in memory; flush and checkpoint it, then clean up.
pub fn finish_at_open(inner: &Inner) -> Result<()> {
    let vfs = inner.vfs();
    if !vfs.exists(&journal::path(&inner.env.dir)) {
        return Ok(());
    }
    super::flush::flush(inner)?;
    {
        let _f = lock(&inner.background.flush_lock);
        let _l = lock(&inner.published.layout);
        let (catalog, lsn) = {
            let c = lock(&inner.writes.commit);
            (c.catalog.clone(), c.last_lsn)
        };
        // Nothing is in a memtable (no writer yet, just flushed): every write is in parts.
        write_checkpoint(inner, &catalog, lsn)?;
    }
    cleanup(vfs, &inner.env.dir, None)?;
    tracing::info!("interrupted online restore finished");
    Ok(())
}
