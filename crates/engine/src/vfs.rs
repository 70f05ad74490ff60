//! The engine's file-system seam: every file and directory operation of the engine goes
//! through a [`Vfs`], so tests can swap the real file system for one that loses power.
//!
//! - [`RealVfs`] is `std::fs` with no buffering or copies of its own (the default);
//! - `SimVfs` is an in-memory POSIX model that forgets, at a power cut, everything that was
//!   not fsynced: file data past the last `sync_*` of the file, and directory entries (create,
//!   rename, remove) not followed by an fsync of their parent directory. It exists only in test
//!   builds: the engine's unit tests, and other targets through the `sim` feature, which only
//!   dev-dependencies enable (a release binary cannot run on it by mistake).
//!
//! The surface is what the engine needs and no more; paths are absolute (or relative to the
//! process's working directory for [`RealVfs`]).

mod real;
#[cfg(any(test, feature = "sim"))]
mod sim;

use std::any::Any;
use std::fmt;
use std::io;
use std::path::Path;

pub use real::RealVfs;
#[cfg(any(test, feature = "sim"))]
pub use sim::{SimVfs, SplitMix};

/// An open file. Writes go to the handle's cursor (or to the end for append handles).
pub trait VfsFile: io::Write + Send + Sync {
    /// Read exactly `buf.len()` bytes at `offset` (`pread`; does not move the cursor).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Current length of the file.
    fn size(&self) -> io::Result<u64>;
    /// Truncate or extend (with zeros) to `len`.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Make the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Make the file's data and metadata durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    /// File name (lossily converted to UTF-8: the engine only ever creates UTF-8 names).
    pub name: String,
    pub is_dir: bool,
}

/// A held advisory lock; released when dropped.
pub type LockGuard = Box<dyn Any + Send + Sync>;

/// The file-system operations the engine performs.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Open an existing file for reading.
    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Create (or truncate) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Create a file that must not exist yet.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Open an existing file for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Open an existing file for writing (for `set_len`), without truncating it.
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn VfsFile>>;
    /// Read a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn exists(&self, path: &Path) -> bool;
    /// Whether `path` is a directory (`NotFound` when it does not exist; symlinks not followed).
    fn is_dir(&self, path: &Path) -> io::Result<bool>;
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Entries of a directory, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Make a directory's entries durable (fsync of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Take an exclusive advisory lock on `path` (created if missing). `Ok(None)` when another
    /// holder has it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>>;
    /// Take an exclusive advisory lock on the existing directory `path` itself (nothing is
    /// created, so nothing is left behind). `Ok(None)` when another holder has it. The
    /// default is the operating system's (`flock` on the directory), right for any file
    /// system that wraps the real one.
    fn try_lock_dir(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        real::try_lock_dir(path)
    }
}
