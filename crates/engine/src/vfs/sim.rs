//! [`SimVfs`]: an in-memory file system that models what survives a power cut, as
//! conservatively as POSIX allows.
//!
//! Model (per inode, as on a journaling file system without `data=journal`):
//! - a file's bytes are durable up to its last `sync_data`/`sync_all`. Bytes written since may
//!   be lost: at a crash, appends since the last sync survive as a random prefix, whose last
//!   512-byte sector may be zeroed (a torn sector); any other change since the sync (a
//!   truncation, an overwrite) survives wholly or not at all;
//! - a directory entry (create, rename, link, remove) is durable only once its parent
//!   directory is fsynced. A rename between two directories is durable in each directory
//!   independently, so a crash may show a file in both places or in neither (stricter than any
//!   real file system, which keeps renames atomic).
//!
//! [`SimVfs::cut_after`] arms a power cut: after that many more mutating operations every
//! operation fails, as if the machine had stopped. [`SimVfs::crash`] then returns the durable
//! image, a fresh `SimVfs`, for recovery to run on.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{DirEntry, LockGuard, Vfs, VfsFile};

const SECTOR: usize = 512;

type Ino = u64;

#[derive(Debug, Clone)]
struct FileNode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct DirNode {
    live: BTreeMap<String, Ino>,
    durable: BTreeMap<String, Ino>,
    /// Entry changes since the last fsync, in order, one group per operation (a rename
    /// inside the directory is one group): see [`SimVfs::keep_entry_prefixes`].
    log: Vec<Vec<(String, Option<Ino>)>>,
}

#[derive(Debug, Clone)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug)]
struct Fs {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    /// Mutating operations left before the power is cut (`None`: never).
    budget: Option<u64>,
    /// Mutating operations performed so far.
    ops: u64,
    powered: bool,
    /// At a crash, keep a random prefix of each directory's unsynced entry changes.
    entry_prefixes: bool,
}

const ROOT: Ino = 0;

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not found", p.display()),
    )
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss")
}

fn names(p: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "'..' is not supported by SimVfs",
                ));
            }
        }
    }
    Ok(out)
}

impl Fs {
    fn new() -> Fs {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        Fs {
            nodes,
            next_ino: 1,
            budget: None,
            entry_prefixes: false,
            ops: 0,
            powered: true,
        }
    }

    /// Account for one mutating operation; fails once the power is cut.
    fn tick(&mut self) -> io::Result<()> {
        if !self.powered {
            return Err(power_lost());
        }
        if let Some(b) = self.budget.as_mut() {
            if *b == 0 {
                self.powered = false;
                return Err(power_lost());
            }
            *b -= 1;
        }
        self.ops += 1;
        Ok(())
    }

    fn check_power(&self) -> io::Result<()> {
        if self.powered {
            Ok(())
        } else {
            Err(power_lost())
        }
    }

    fn dir(&self, ino: Ino) -> Option<&DirNode> {
        match self.nodes.get(&ino) {
            Some(Node::Dir(d)) => Some(d),
            _ => None,
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Option<&mut DirNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(d)) => Some(d),
            _ => None,
        }
    }

    fn file_mut(&mut self, ino: Ino) -> io::Result<&mut FileNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(f)) => Ok(f),
            _ => Err(io::Error::other("not a regular file")),
        }
    }

    fn lookup(&self, p: &Path) -> io::Result<Ino> {
        let mut ino = ROOT;
        for n in names(p)? {
            let d = self.dir(ino).ok_or_else(|| not_found(p))?;
            ino = *d.live.get(&n).ok_or_else(|| not_found(p))?;
        }
        Ok(ino)
    }

    /// The parent directory's inode and the last name of `p`.
    fn parent(&self, p: &Path) -> io::Result<(Ino, String)> {
        let mut ns = names(p)?;
        let last = ns
            .pop()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let mut ino = ROOT;
        for n in ns {
            let d = self.dir(ino).ok_or_else(|| not_found(p))?;
            ino = *d.live.get(&n).ok_or_else(|| not_found(p))?;
        }
        if self.dir(ino).is_none() {
            return Err(not_found(p));
        }
        Ok((ino, last))
    }

    fn alloc(&mut self, node: Node) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        ino
    }

    fn link(&mut self, dir: Ino, name: String, ino: Ino) {
        if let Some(d) = self.dir_mut(dir) {
            d.log.push(vec![(name.clone(), Some(ino))]);
            d.live.insert(name, ino);
        }
    }

    fn unlink(&mut self, dir: Ino, name: &str) -> Option<Ino> {
        let d = self.dir_mut(dir)?;
        d.log.push(vec![(name.to_string(), None)]);
        d.live.remove(name)
    }

    /// A rename inside one directory is one change of it (atomic, as on every journaling
    /// file system); between two directories it is a change of each.
    fn rename_entry(&mut self, fdir: Ino, fname: &str, tdir: Ino, tname: String, ino: Ino) {
        if fdir != tdir {
            self.unlink(fdir, fname);
            self.link(tdir, tname, ino);
            return;
        }
        if let Some(d) = self.dir_mut(fdir) {
            d.live.remove(fname);
            d.live.insert(tname.clone(), ino);
            d.log
                .push(vec![(fname.to_string(), None), (tname, Some(ino))]);
        }
    }

    /// Open or create a file; `truncate` empties an existing one.
    fn open_file(&mut self, p: &Path, create: bool, excl: bool, truncate: bool) -> io::Result<Ino> {
        let (dir, name) = self.parent(p)?;
        let existing = self.dir(dir).and_then(|d| d.live.get(&name).copied());
        match existing {
            Some(_) if excl => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists", p.display()),
            )),
            Some(ino) => {
                if truncate {
                    self.tick()?;
                    self.file_mut(ino)?.data.clear();
                } else {
                    self.file_mut(ino)?;
                }
                Ok(ino)
            }
            None if create => {
                self.tick()?;
                let ino = self.alloc(Node::File(FileNode {
                    data: Vec::new(),
                    durable: Vec::new(),
                }));
                self.link(dir, name, ino);
                Ok(ino)
            }
            None => Err(not_found(p)),
        }
    }

    /// The durable image under `rng`'s choices, rebuilt from the durable entries of the root.
    fn crash_image(&self, rng: &mut SplitMix) -> Fs {
        let mut out = Fs::new();
        out.entry_prefixes = self.entry_prefixes;
        let mut files: HashMap<Ino, Ino> = HashMap::new();
        let mut stack = vec![(ROOT, ROOT)];
        while let Some((old_dir, new_dir)) = stack.pop() {
            let Some(d) = self.dir(old_dir) else { continue };
            let mut entries = d.durable.clone();
            if self.entry_prefixes {
                let keep = rng.below(d.log.len() as u64 + 1) as usize;
                for (name, change) in d.log[..keep].iter().flatten() {
                    match change {
                        Some(ino) => entries.insert(name.clone(), *ino),
                        None => entries.remove(name),
                    };
                }
            }
            for (name, &ino) in &entries {
                let new_ino = match self.nodes.get(&ino) {
                    Some(Node::File(f)) => match files.get(&ino) {
                        // Hard links keep sharing one inode.
                        Some(&n) => n,
                        None => {
                            let data = survivor(f, rng);
                            let n = out.alloc(Node::File(FileNode {
                                durable: data.clone(),
                                data,
                            }));
                            files.insert(ino, n);
                            n
                        }
                    },
                    Some(Node::Dir(_)) => {
                        let n = out.alloc(Node::Dir(DirNode::default()));
                        stack.push((ino, n));
                        n
                    }
                    None => continue,
                };
                if let Some(nd) = out.dir_mut(new_dir) {
                    nd.live.insert(name.clone(), new_ino);
                    nd.durable.insert(name.clone(), new_ino);
                }
            }
        }
        out
    }
}

/// What of a file's content survives a crash.
fn survivor(f: &FileNode, rng: &mut SplitMix) -> Vec<u8> {
    if f.data == f.durable {
        return f.data.clone();
    }
    if f.data.len() > f.durable.len() && f.data.starts_with(&f.durable) {
        // Appends since the last sync: a random prefix of them reached the disk.
        let extra = f.data.len() - f.durable.len();
        let keep = rng.below(extra as u64 + 1) as usize;
        let mut out = f.data[..f.durable.len() + keep].to_vec();
        if keep > 0 && rng.below(4) == 0 {
            // A torn last sector: its new bytes read back as zeros.
            let end = out.len();
            let start = (end - 1) / SECTOR * SECTOR;
            let start = start.max(f.durable.len());
            out[start..end].fill(0);
        }
        return out;
    }
    if rng.below(2) == 0 {
        f.durable.clone()
    } else {
        f.data.clone()
    }
}

/// A small deterministic generator, so a crash image is a pure function of its seed.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// In-memory, power-loss-simulating [`Vfs`]. Clones share one file system.
#[derive(Debug, Clone)]
pub struct SimVfs {
    fs: Arc<Mutex<Fs>>,
}

impl Default for SimVfs {
    fn default() -> Self {
        SimVfs::new()
    }
}

impl SimVfs {
    /// An empty file system with only the root directory.
    pub fn new() -> SimVfs {
        SimVfs {
            fs: Arc::new(Mutex::new(Fs::new())),
        }
    }

    fn fs(&self) -> MutexGuard<'_, Fs> {
        self.fs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cut the power after `ops` more mutating operations (writes, syncs, creates, renames,
    /// removes): from then on every operation fails.
    pub fn cut_after(&self, ops: u64) {
        self.fs().budget = Some(ops);
    }

    /// Cut the power now.
    pub fn cut_now(&self) {
        self.fs().powered = false;
    }

    /// Whether the power has been cut.
    pub fn is_cut(&self) -> bool {
        !self.fs().powered
    }

    /// Mutating operations performed so far.
    pub fn ops(&self) -> u64 {
        self.fs().ops
    }

    /// The durable image after a power cut at this moment: unsynced data and directory
    /// entries are dropped or torn as `seed` decides. `self` is left unchanged.
    pub fn crash(&self, seed: u64) -> SimVfs {
        let image = self.fs().crash_image(&mut SplitMix::new(seed));
        SimVfs {
            fs: Arc::new(Mutex::new(image)),
        }
    }

    /// Model, from now on, a file system that may also persist directory entry changes
    /// before their directory is fsynced: at a crash each directory keeps a random prefix of
    /// its unsynced changes (in order, a rename inside the directory all or nothing), as an
    /// ordered-metadata journaling file system does. Off by default (unsynced changes are all
    /// lost). Crash images inherit the setting.
    pub fn keep_entry_prefixes(&self, on: bool) {
        self.fs().entry_prefixes = on;
    }

    /// Make everything durable now, as a clean shutdown with `sync(2)` would.
    pub fn sync_everything(&self) {
        let mut fs = self.fs();
        for n in fs.nodes.values_mut() {
            match n {
                Node::File(f) => f.durable = f.data.clone(),
                Node::Dir(d) => {
                    d.durable = d.live.clone();
                    d.log.clear();
                }
            }
        }
    }

    fn handle(&self, ino: Ino, append: bool) -> Box<dyn VfsFile> {
        Box::new(SimFile {
            fs: self.fs.clone(),
            ino,
            pos: 0,
            append,
        })
    }
}

struct SimFile {
    fs: Arc<Mutex<Fs>>,
    ino: Ino,
    pos: u64,
    append: bool,
}

impl SimFile {
    fn fs(&self) -> MutexGuard<'_, Fs> {
        self.fs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl io::Write for SimFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let ino = self.ino;
        let mut pos = self.pos as usize;
        {
            let mut fs = self.fs();
            fs.tick()?;
            let f = fs.file_mut(ino)?;
            if self.append {
                pos = f.data.len();
            }
            let end = pos + buf.len();
            if f.data.len() < end {
                f.data.resize(end, 0);
            }
            f.data[pos..end].copy_from_slice(buf);
            pos = end;
        }
        self.pos = pos as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl VfsFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut fs = self.fs();
        fs.check_power()?;
        let f = fs.file_mut(self.ino)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| f.data.get(start..end))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        let mut fs = self.fs();
        fs.check_power()?;
        Ok(fs.file_mut(self.ino)?.data.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut fs = self.fs();
        fs.tick()?;
        fs.file_mut(self.ino)?.data.resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        let mut fs = self.fs();
        fs.tick()?;
        let f = fs.file_mut(self.ino)?;
        f.durable = f.data.clone();
        Ok(())
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

impl Vfs for SimVfs {
    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let ino = {
            let mut fs = self.fs();
            fs.check_power()?;
            fs.open_file(path, false, false, false)?
        };
        Ok(self.handle(ino, false))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let ino = self.fs().open_file(path, true, false, true)?;
        Ok(self.handle(ino, false))
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let ino = self.fs().open_file(path, true, true, false)?;
        Ok(self.handle(ino, false))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let ino = {
            let mut fs = self.fs();
            fs.check_power()?;
            fs.open_file(path, false, false, false)?
        };
        Ok(self.handle(ino, true))
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.open(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut fs = self.fs();
        fs.check_power()?;
        let ino = fs.lookup(path)?;
        Ok(fs.file_mut(ino)?.data.clone())
    }
    fn exists(&self, path: &Path) -> bool {
        self.fs().lookup(path).is_ok()
    }
    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        let fs = self.fs();
        fs.check_power()?;
        let ino = fs.lookup(path)?;
        Ok(fs.dir(ino).is_some())
    }
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs();
        let (dir, name) = fs.parent(path)?;
        if fs.dir(dir).is_some_and(|d| d.live.contains_key(&name)) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists", path.display()),
            ));
        }
        fs.tick()?;
        let ino = fs.alloc(Node::Dir(DirNode::default()));
        fs.link(dir, name, ino);
        Ok(())
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut cur = PathBuf::from("/");
        for n in names(path)? {
            cur.push(n);
            match self.is_dir(&cur) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{}: not a directory", cur.display()),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.create_dir(&cur)?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let fs = self.fs();
        fs.check_power()?;
        let ino = fs.lookup(path)?;
        let d = fs
            .dir(ino)
            .ok_or_else(|| io::Error::other("not a directory"))?;
        Ok(d.live
            .iter()
            .map(|(name, i)| DirEntry {
                name: name.clone(),
                is_dir: fs.dir(*i).is_some(),
            })
            .collect())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs();
        let (fdir, fname) = fs.parent(from)?;
        let (tdir, tname) = fs.parent(to)?;
        let ino = fs.lookup(from)?;
        fs.tick()?;
        fs.rename_entry(fdir, &fname, tdir, tname, ino);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs();
        let (dir, name) = fs.parent(path)?;
        let ino = fs.lookup(path)?;
        if fs.dir(ino).is_some() {
            return Err(io::Error::other("is a directory"));
        }
        fs.tick()?;
        fs.unlink(dir, &name);
        Ok(())
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        // Unlinking the top entry is enough: nothing can reach the subtree afterwards, and a
        // crash before the parent is synced brings the whole tree back, as on a real disk
        // where the children's removals were not synced either.
        let mut fs = self.fs();
        let (dir, name) = fs.parent(path)?;
        let ino = fs.lookup(path)?;
        if fs.dir(ino).is_none() {
            return Err(io::Error::other("not a directory"));
        }
        fs.tick()?;
        fs.unlink(dir, &name);
        Ok(())
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs();
        let ino = fs.lookup(from)?;
        if fs.dir(ino).is_some() {
            return Err(io::Error::other("cannot hard-link a directory"));
        }
        let (tdir, tname) = fs.parent(to)?;
        if fs.dir(tdir).is_some_and(|d| d.live.contains_key(&tname)) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "link target exists",
            ));
        }
        fs.tick()?;
        fs.link(tdir, tname, ino);
        Ok(())
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs();
        let ino = fs.lookup(path)?;
        fs.tick()?;
        let d = fs
            .dir_mut(ino)
            .ok_or_else(|| io::Error::other("not a directory"))?;
        d.durable = d.live.clone();
        d.log.clear();
        Ok(())
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        // One process per file system: the lock file is created like the real one, and the
        // lock itself always succeeds.
        let mut fs = self.fs();
        fs.check_power()?;
        if fs.lookup(path).is_err() {
            fs.open_file(path, true, false, false)?;
        }
        Ok(Some(Box::new(())))
    }
    fn try_lock_dir(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        let fs = self.fs();
        fs.check_power()?;
        let ino = fs.lookup(path)?;
        if fs.dir(ino).is_none() {
            return Err(io::Error::other("not a directory"));
        }
        Ok(Some(Box::new(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn unsynced_data_and_entries_are_lost_synced_ones_survive() {
        let v = SimVfs::new();
        v.create_dir_all(&p("/d")).unwrap();
        v.sync_dir(&p("/")).unwrap();
        let mut f = v.create(&p("/d/a")).unwrap();
        f.write_all(b"hello").unwrap();
        f.sync_data().unwrap();
        f.write_all(b" world").unwrap();
        // The entry of /d/a is not durable yet: the file is gone after a crash.
        for seed in 0..20 {
            assert!(!v.crash(seed).exists(&p("/d/a")));
        }
        v.sync_dir(&p("/d")).unwrap();
        let mut seen_full = false;
        for seed in 0..200 {
            let c = v.crash(seed);
            let data = c.read(&p("/d/a")).unwrap();
            assert!(data.len() >= 5 && data.len() <= 11, "{data:?}");
            assert_eq!(&data[..5], b"hello");
            seen_full |= data == b"hello world";
        }
        assert!(seen_full);
    }

    #[test]
    fn entry_prefixes_keep_renames_whole_and_in_order() {
        let v = SimVfs::new();
        v.keep_entry_prefixes(true);
        v.create_dir(&p("/a")).unwrap();
        v.create_dir(&p("/b")).unwrap();
        v.sync_dir(&p("/")).unwrap();
        v.rename(&p("/a"), &p("/old")).unwrap();
        v.rename(&p("/b"), &p("/a")).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let c = v.crash(seed);
            let mut names: Vec<String> = c
                .read_dir(&p("/"))
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            names.sort();
            seen.insert(names.join(","));
        }
        // Before both renames, after the first, after both: never half a rename, never the
        // second without the first.
        let want: std::collections::BTreeSet<String> = ["a,b", "b,old", "a,old"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn rename_needs_the_directory_sync() {
        let v = SimVfs::new();
        let mut f = v.create(&p("/x.tmp")).unwrap();
        f.write_all(b"new").unwrap();
        f.sync_all().unwrap();
        v.sync_dir(&p("/")).unwrap();
        v.rename(&p("/x.tmp"), &p("/x")).unwrap();
        let c = v.crash(1);
        assert!(c.exists(&p("/x.tmp")) && !c.exists(&p("/x")));
        v.sync_dir(&p("/")).unwrap();
        let c = v.crash(1);
        assert_eq!(c.read(&p("/x")).unwrap(), b"new");
        assert!(!c.exists(&p("/x.tmp")));
    }

    #[test]
    fn the_cut_stops_every_later_operation() {
        let v = SimVfs::new();
        v.cut_after(2);
        v.create_dir(&p("/a")).unwrap();
        v.create_dir(&p("/b")).unwrap();
        assert!(v.create_dir(&p("/c")).is_err());
        assert!(v.read_dir(&p("/")).is_err());
        assert!(v.is_cut());
        assert_eq!(v.ops(), 2);
    }
}
