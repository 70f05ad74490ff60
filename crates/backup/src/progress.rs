//! Progress counters shared between a running procedure and whoever shows them (a terminal
//! progress bar, the server's job status). Lock-free reads of plain atomics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Progress {
    phase: Mutex<String>,
    pub files_total: AtomicU64,
    pub files_done: AtomicU64,
    pub bytes_total: AtomicU64,
    pub bytes_done: AtomicU64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProgressSnapshot {
    pub phase: String,
    pub files_total: u64,
    pub files_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
}

impl Progress {
    pub fn set_phase(&self, phase: &str) {
        match self.phase.lock() {
            Ok(mut p) => *p = phase.to_string(),
            Err(p) => *p.into_inner() = phase.to_string(),
        }
    }

    pub fn start(&self, phase: &str, files: u64, bytes: u64) {
        self.set_phase(phase);
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        self.files_done.store(0, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
    }

    pub fn file_done(&self, bytes: u64) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let phase = match self.phase.lock() {
            Ok(p) => p.clone(),
            Err(p) => p.into_inner().clone(),
        };
        ProgressSnapshot {
            phase,
            files_total: self.files_total.load(Ordering::Relaxed),
            files_done: self.files_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
        }
    }
}
