//! Request bodies pre-encoded to files once per data set ("spools"), one file per connection,
//! so the load phase only reads and POSTs bytes: client CPU is small and identical for every
//! system under test, and no data set is ever held in memory.
//!
//! Spool file: a sequence of records `rows: u32 LE | len: u32 LE | body[len]`. A data set's
//! directory holds `conn-<i>.bin` and `meta.json`, written last, so a directory without
//! `meta.json` (interrupted generation) is regenerated. A compressed spool (the `large` size:
//! its line protocol would not fit the disk) stores each body snappy-compressed; the reader
//! hands back the body as sent, so servers receive the same bytes either way and only the
//! client pays for the decompression (about 1 s of CPU per 1.5 GB of bodies).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::datagen::{GenConfig, Generator};
use crate::lineproto::{Encoder, LineProtocol};
use crate::promwrite::RemoteWrite;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
pub enum Protocol {
    /// InfluxDB line protocol
    Lp,
    /// Prometheus remote write (snappy + protobuf)
    Prom,
}

/// What to generate: a slice of intervals of one generator stream, split over connections.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DatasetSpec {
    pub name: String,
    pub generator: GenConfig,
    /// Intervals of the stream to skip first (continuations start where the base ended).
    pub skip_intervals: u64,
    pub intervals: u64,
    pub protocol: Protocol,
    pub conns: usize,
    pub batch_rows: usize,
    /// Bodies stored snappy-compressed (decompressed by the reader before they are sent).
    /// Left out of the JSON when off, so uncompressed spools cached before it stay valid.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub compress: bool,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Dataset {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub protocol: Protocol,
    /// Points (TSBS rows): one host at one timestamp, 10 fields.
    pub rows: u64,
    pub bodies: u64,
    /// Bytes of the bodies as sent.
    pub body_bytes: u64,
    /// Bytes of the spool files on disk.
    #[serde(default)]
    pub spool_bytes: u64,
    #[serde(default)]
    pub compressed: bool,
    /// First and last timestamp covered (ns), for queries.
    pub first_ns: i64,
    pub last_ns: i64,
    /// The spec, as JSON, so a cached directory is only reused for the same spec.
    pub spec_json: String,
}

impl Dataset {
    pub fn samples(&self) -> u64 {
        self.rows * crate::datagen::FIELDS.len() as u64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spool {path}: corrupt record ({what})")]
    Corrupt { path: PathBuf, what: &'static str },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Generates the data set under `root/<name>` unless an identical one is already there.
pub fn prepare(root: &Path, spec: &DatasetSpec) -> Result<Dataset, SpoolError> {
    let dir = root.join(&spec.name);
    let meta_path = dir.join("meta.json");
    let spec_json = serde_json::to_string(spec).unwrap_or_default();
    if let Ok(text) = std::fs::read_to_string(&meta_path)
        && let Ok(ds) = serde_json::from_str::<Dataset>(&text)
        && ds.spec_json == spec_json
        && ds.files.iter().all(|f| f.exists())
    {
        return Ok(ds);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;

    let conns = spec.conns.max(1);
    let batch_rows = spec.batch_rows.max(1);
    let files: Vec<PathBuf> = (0..conns)
        .map(|i| dir.join(format!("conn-{i}.bin")))
        .collect();
    let mut writers = Vec::with_capacity(conns);
    for f in &files {
        writers.push(BufWriter::with_capacity(
            1 << 20,
            File::create(f).map_err(io(f))?,
        ));
    }
    let mut encoders: Vec<Box<dyn Encoder>> = (0..conns)
        .map(|_| -> Box<dyn Encoder> {
            match spec.protocol {
                Protocol::Lp => Box::new(LineProtocol::new()),
                Protocol::Prom => Box::new(RemoteWrite::new()),
            }
        })
        .collect();

    let mut g = Generator::new(spec.generator.clone());
    g.skip_intervals(spec.skip_intervals);
    let total = spec.intervals * spec.generator.hosts as u64;
    let (mut bodies, mut body_bytes, mut spool_bytes) = (0u64, 0u64, 0u64);
    let (mut first_ns, mut last_ns) = (i64::MAX, i64::MIN);
    for _ in 0..total {
        let row = g.next_row();
        first_ns = first_ns.min(row.ts_ns);
        last_ns = last_ns.max(row.ts_ns);
        // Host i always goes to connection i mod C, so each series arrives in order.
        let c = row.host_index % conns;
        encoders[c].push(&row);
        if encoders[c].rows() >= batch_rows {
            let (sent, stored) =
                flush(&mut *encoders[c], &mut writers[c], &files[c], spec.compress)?;
            body_bytes += sent;
            spool_bytes += stored;
            bodies += 1;
        }
    }
    for c in 0..conns {
        if encoders[c].rows() > 0 {
            let (sent, stored) =
                flush(&mut *encoders[c], &mut writers[c], &files[c], spec.compress)?;
            body_bytes += sent;
            spool_bytes += stored;
            bodies += 1;
        }
        writers[c].flush().map_err(io(&files[c]))?;
    }
    let ds = Dataset {
        dir: dir.clone(),
        files,
        protocol: spec.protocol,
        rows: total,
        bodies,
        body_bytes,
        spool_bytes,
        compressed: spec.compress,
        first_ns,
        last_ns,
        spec_json,
    };
    let meta = serde_json::to_vec_pretty(&ds).unwrap_or_default();
    std::fs::write(&meta_path, meta).map_err(io(&meta_path))?;
    Ok(ds)
}

/// Writes the encoder's body as one record; returns (bytes sent, bytes stored).
fn flush(
    e: &mut dyn Encoder,
    w: &mut BufWriter<File>,
    path: &Path,
    compress: bool,
) -> Result<(u64, u64), SpoolError> {
    let rows = e.rows() as u32;
    let body = e.finish();
    let sent = body.len() as u64;
    let body = if compress {
        snap::raw::Encoder::new()
            .compress_vec(&body)
            .map_err(|_| SpoolError::Corrupt {
                path: path.to_path_buf(),
                what: "body does not compress",
            })?
    } else {
        body
    };
    let len = u32::try_from(body.len()).map_err(|_| SpoolError::Corrupt {
        path: path.to_path_buf(),
        what: "body over 4 GiB",
    })?;
    w.write_all(&rows.to_le_bytes()).map_err(io(path))?;
    w.write_all(&len.to_le_bytes()).map_err(io(path))?;
    w.write_all(&body).map_err(io(path))?;
    Ok((sent, body.len() as u64 + 8))
}

/// Reads one connection's bodies back in order.
pub struct SpoolReader {
    path: PathBuf,
    r: BufReader<File>,
    compressed: bool,
}

impl SpoolReader {
    /// `compressed`: the data set's [`Dataset::compressed`].
    pub fn open(path: &Path, compressed: bool) -> Result<Self, SpoolError> {
        let f = File::open(path).map_err(io(path))?;
        Ok(SpoolReader {
            path: path.to_path_buf(),
            r: BufReader::with_capacity(1 << 20, f),
            compressed,
        })
    }

    /// The next `(rows, body)`, or `None` at the end.
    pub fn next_body(&mut self) -> Result<Option<(u32, Vec<u8>)>, SpoolError> {
        let mut head = [0u8; 8];
        match self.r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io(&self.path)(e)),
        }
        let rows = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let mut body = vec![0u8; len];
        self.r
            .read_exact(&mut body)
            .map_err(|_| SpoolError::Corrupt {
                path: self.path.clone(),
                what: "truncated body",
            })?;
        if self.compressed {
            let plain = snap::raw::Decoder::new()
                .decompress_vec(&body)
                .map_err(|_| SpoolError::Corrupt {
                    path: self.path.clone(),
                    what: "body does not decompress",
                })?;
            return Ok(Some((rows, plain)));
        }
        Ok(Some((rows, body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::Variant;

    #[test]
    fn spool_round_trip_partitions_hosts_and_is_cached() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let spec = DatasetSpec {
            name: "t".into(),
            generator: GenConfig {
                hosts: 5,
                seed: 3,
                start_ns: 0,
                interval_ns: 10,
                variant: Variant::Int,
                churn_every: None,
                jitter_ms: 0,
            },
            skip_intervals: 2,
            intervals: 7,
            protocol: Protocol::Lp,
            conns: 2,
            batch_rows: 4,
            compress: false,
        };
        let ds = prepare(tmp.path(), &spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ds.rows, 35);
        assert_eq!((ds.first_ns, ds.last_ns), (20, 80));
        let mut rows = 0;
        for (c, f) in ds.files.iter().enumerate() {
            let mut r = SpoolReader::open(f, false).unwrap_or_else(|e| panic!("{e}"));
            while let Some((n, body)) = r.next_body().unwrap_or_else(|e| panic!("{e}")) {
                let text = String::from_utf8_lossy(&body).into_owned();
                assert_eq!(text.lines().count(), n as usize);
                for line in text.lines() {
                    let host: usize = line
                        .split(',')
                        .nth(1)
                        .and_then(|t| t.strip_prefix("hostname=host_"))
                        .and_then(|h| h.parse().ok())
                        .unwrap_or(usize::MAX);
                    assert_eq!(host % 2, c, "host {host} on connection {c}");
                }
                rows += n as u64;
            }
        }
        assert_eq!(rows, 35);
        // Same spec: the cached directory is reused, untouched.
        let before = std::fs::metadata(&ds.files[0])
            .and_then(|m| m.modified())
            .ok();
        let again = prepare(tmp.path(), &spec).unwrap_or_else(|e| panic!("{e}"));
        let after = std::fs::metadata(&again.files[0])
            .and_then(|m| m.modified())
            .ok();
        assert_eq!(before, after);

        // Compressed: the same bodies read back, a smaller spool, another cache entry.
        let squeezed = DatasetSpec {
            name: "z".into(),
            compress: true,
            ..spec.clone()
        };
        let z = prepare(tmp.path(), &squeezed).unwrap_or_else(|e| panic!("{e}"));
        assert!(z.compressed && !ds.compressed);
        assert_eq!(
            (z.rows, z.bodies, z.body_bytes),
            (ds.rows, ds.bodies, ds.body_bytes)
        );
        assert!(
            z.spool_bytes < ds.spool_bytes,
            "{} {}",
            z.spool_bytes,
            ds.spool_bytes
        );
        for (a, b) in ds.files.iter().zip(&z.files) {
            let mut ra = SpoolReader::open(a, false).unwrap_or_else(|e| panic!("{e}"));
            let mut rb = SpoolReader::open(b, true).unwrap_or_else(|e| panic!("{e}"));
            loop {
                let x = ra.next_body().unwrap_or_else(|e| panic!("{e}"));
                let y = rb.next_body().unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(x, y);
                if x.is_none() {
                    break;
                }
            }
        }
    }
}
