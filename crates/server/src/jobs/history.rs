//! The persisted job history (normative: `docs/format/jobs.md`): one append-only text file,
//! `STRATA-JOBS 1` on its first line, then one line per job state change,
//! `<crc32c of the JSON, 8 hex digits> <JSON of the job record>`. The newest line of a job id
//! is its state. A line whose checksum fails is skipped (a torn last line is what a crash
//! during an append leaves); an unknown header is refused. Each append is fsynced. At open
//! the file is compacted (rewritten atomically with one line per job, the newest
//! [`KEEP`] jobs) once it holds more than twice that many lines.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::JobRecord;

pub const HEADER: &str = "STRATA-JOBS 1";
/// Jobs kept when the file is compacted.
pub const KEEP: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("job history {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "job history {}: not a job history file (first line {found:?}, expected {HEADER:?}); move it away or set jobs_history to another path",
        path.display()
    )]
    Header { path: PathBuf, found: String },
}

pub struct History {
    path: PathBuf,
    file: File,
}

fn line_of(r: &JobRecord) -> String {
    // A record always serializes (plain strings, numbers and JSON values).
    let json = serde_json::to_string(r).unwrap_or_else(|_| "{}".into());
    format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes()))
}

fn parse_line(line: &str) -> Option<JobRecord> {
    let (crc, json) = line.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc32c::crc32c(json.as_bytes()) != crc {
        return None;
    }
    serde_json::from_str(json).ok()
}

impl History {
    /// Opens (creating it and its directory if needed) and reads the history: the jobs,
    /// oldest first.
    pub fn open(path: &Path) -> Result<(History, Vec<JobRecord>), HistoryError> {
        let io = |source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let mut lines = text.lines();
        let mut jobs: Vec<JobRecord> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut count = 0;
        match lines.next() {
            None => {}
            Some(h) if h == HEADER => {
                for l in lines {
                    count += 1;
                    let Some(r) = parse_line(l) else {
                        tracing::warn!(path = %path.display(), "skipping a damaged job history line");
                        continue;
                    };
                    match index.get(&r.id) {
                        Some(&i) => jobs[i] = r,
                        None => {
                            index.insert(r.id.clone(), jobs.len());
                            jobs.push(r);
                        }
                    }
                }
            }
            Some(h) => {
                return Err(HistoryError::Header {
                    path: path.to_path_buf(),
                    found: h.chars().take(40).collect(),
                });
            }
        }
        if text.is_empty() || count > 2 * KEEP || !text.ends_with('\n') {
            let keep = jobs.len().saturating_sub(KEEP);
            jobs.drain(..keep);
            rewrite(path, &jobs).map_err(io)?;
        }
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        Ok((
            History {
                path: path.to_path_buf(),
                file,
            },
            jobs,
        ))
    }

    /// Appends a job's new state, durably.
    pub fn append(&mut self, r: &JobRecord) -> Result<(), HistoryError> {
        let line = line_of(r);
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|source| HistoryError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// Writes the whole history atomically: temp file, fsync, rename, fsync of the directory.
fn rewrite(path: &Path, jobs: &[JobRecord]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        let mut out = format!("{HEADER}\n");
        for j in jobs {
            out.push_str(&line_of(j));
        }
        f.write_all(out.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::jobs::{JobKind, JobState};

    fn rec(id: &str, state: JobState) -> JobRecord {
        JobRecord {
            id: id.into(),
            kind: JobKind::Backup,
            state,
            ..JobRecord::default()
        }
    }

    #[test]
    fn survives_reopen_keeps_newest_state_and_skips_torn_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/jobs.log");
        let (mut h, jobs) = History::open(&p).unwrap();
        assert!(jobs.is_empty());
        h.append(&rec("backup-1", JobState::Running)).unwrap();
        h.append(&rec("backup-2", JobState::Running)).unwrap();
        h.append(&rec("backup-1", JobState::Succeeded)).unwrap();
        drop(h);
        // A crash in the middle of an append: half a line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"0badc0de {\"id\":\"backup-3\"").unwrap();
        drop(f);
        let (mut h, jobs) = History::open(&p).unwrap();
        let states: Vec<_> = jobs.iter().map(|j| (j.id.as_str(), j.state)).collect();
        assert_eq!(
            states,
            [
                ("backup-1", JobState::Succeeded),
                ("backup-2", JobState::Running)
            ]
        );
        // The torn tail was cut by the rewrite, so appends start on a line of their own.
        h.append(&rec("backup-4", JobState::Failed)).unwrap();
        let (_, jobs) = History::open(&p).unwrap();
        assert_eq!(jobs.len(), 3);
    }

    #[test]
    fn refuses_a_file_that_is_not_a_history() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("jobs.log");
        std::fs::write(&p, "hello\n").unwrap();
        let err = History::open(&p).err().unwrap().to_string();
        assert!(err.contains("not a job history file"), "{err}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "hello\n");
    }
}
