//! `--drop-caches`: the same page-cache state before every timed backup and restore.
//!
//! On this project's VMs, writing into page-cache pages the guest has not touched lately is
//! slow (1.2 GB through `dd`: 2.3 s with a full page cache, 0.46 s right after dropping it), so
//! a backup's or restore's time depended on what ran before it. [`settle`] syncs, drops the
//! page cache and reads the tool's source back, so each tool starts from a cached source and
//! free pages alike.

use std::path::Path;

/// Sync, drop the page cache (root only: otherwise a warning and nothing dropped), then read
/// every file under `dirs`.
pub fn settle(dirs: &[&Path]) {
    let _ = std::process::Command::new("sync").status();
    if let Err(e) = std::fs::write("/proc/sys/vm/drop_caches", "3\n") {
        eprintln!("warning: --drop-caches: cannot drop the page cache ({e}); timing as is");
    }
    for d in dirs {
        read_all(d);
    }
}

fn read_all(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => read_all(&p),
            Ok(t) if t.is_file() => {
                if let Ok(mut f) = std::fs::File::open(&p) {
                    let _ = std::io::copy(&mut f, &mut std::io::sink());
                }
            }
            _ => {}
        }
    }
}
