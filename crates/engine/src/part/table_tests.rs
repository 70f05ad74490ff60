//! Part format v3's series table: keys apart, block lists in chunks read per series.

use super::tests::{ident, rows, series};
use super::*;
use crate::memtable::SeriesMeta;
use crate::rows::Rows;
use crate::scan::Column;
use crate::vfs::RealVfs;

/// Series with one block list each of about `CHUNK_BYTES / 8` bytes: a table of `n` of them
/// spans several chunks.
fn many_series(n: usize) -> Vec<(SeriesMeta, Rows)> {
    (0..n)
        .map(|k| {
            let hour = write::BLOCK_ALIGN_NS;
            let ts: Vec<i64> = (0..3000).map(|i| i * hour / 300 + k as i64).collect();
            let cols = (0..6)
                .map(|f| {
                    let v = ts
                        .iter()
                        .map(|&t| Some((t % 1000) as f64 + f as f64))
                        .collect();
                    (format!("field_{f}"), Column::F64(v))
                })
                .collect();
            (series(&format!("h{k:04}")), Rows { ts, cols })
        })
        .collect()
}

/// A v3 table opens with its keys only; each series' blocks, read on demand from its chunk
/// (one at a time or in bulk), are what the full parse gives.
#[test]
fn v3_block_lists_load_per_series_from_their_chunks() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("p");
    let series = many_series(60);
    write_part(
        &RealVfs,
        &dir,
        ident(5),
        series.iter().map(|(m, r)| (m, r.clone())),
    )
    .unwrap()
    .unwrap();
    let index = std::fs::read(dir.join(INDEX_FILE)).unwrap();
    assert_eq!(&index[8..12], &3u32.to_le_bytes());
    let payload = &index[16..index.len() - 4];
    let layout = chunked::Layout::parse(payload).unwrap();
    assert!(layout.chunks.len() >= 3, "{} chunks", layout.chunks.len());
    let p = PartReader::open(&RealVfs, &dir).unwrap();
    let full = p.index_once().unwrap();
    assert_eq!(full.series.len(), 60);
    let lazy = p.index().unwrap();
    assert_eq!(lazy.parsed_count(), 0);
    let want = |i: usize| format!("{:?}", full.series[i].blocks);
    assert_eq!(format!("{:?}", lazy.blocks(17).unwrap()), want(17));
    assert_eq!(lazy.parsed_count(), 1);
    assert_eq!(lazy.chunks_decompressed(), 1, "only the chunk of series 17");
    lazy.load_blocks([0, 1, 2, 17, 30, 59]).unwrap();
    assert_eq!(lazy.parsed_count(), 6);
    let touched: std::collections::BTreeSet<u32> = [0, 1, 2, 17, 30, 59]
        .iter()
        .map(|&i| layout.lists[i].chunk)
        .collect();
    assert_eq!(lazy.chunks_decompressed(), touched.len());
    for i in 0..60 {
        assert_eq!(*lazy.metas[i], *full.series[i].meta);
        assert_eq!(
            format!("{:?}", lazy.blocks(i).unwrap()),
            want(i),
            "series {i}"
        );
    }
    let rows: Vec<Rows> = p
        .read_series(&full.series[59], i64::MIN, i64::MAX, None)
        .unwrap();
    let ts: Vec<i64> = rows.iter().flat_map(|r| r.ts.iter().copied()).collect();
    assert_eq!(ts, series[59].1.ts);
    assert_eq!(
        read_series_table(&RealVfs, &dir).unwrap().len(),
        60,
        "the keys alone"
    );
    verify_part_files(&RealVfs, &dir).unwrap();
}

/// A v3 `index.bin` whose frame checks out but whose table is damaged (every bit of the
/// payload flipped in turn, and every truncation, each re-framed with a valid CRC): reading it
/// never panics, and the lazy table (keys, then each series' blocks) refuses exactly what the
/// full parse refuses, naming `index.bin`, or gives the same series and blocks.
#[test]
fn a_damaged_v3_table_is_refused_at_first_use_like_the_full_parse() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("p");
    let (a, b) = (series("a"), series("b"));
    write_part(
        &RealVfs,
        &dir,
        ident(2),
        vec![(&a, rows(20)), (&b, rows(7))],
    )
    .unwrap();
    let path = dir.join(INDEX_FILE);
    let orig = std::fs::read(&path).unwrap();
    let payload = orig[16..orig.len() - 4].to_vec();
    let meta = PartMeta::read(&RealVfs, &dir).unwrap();
    let check = |bad: &[u8]| {
        std::fs::write(&path, crate::format::frame(INDEX_MAGIC, VERSION, bad)).unwrap();
        let Ok(p) = PartReader::open(&RealVfs, &dir) else {
            return;
        };
        let lazy = p.index().and_then(|t| {
            (0..t.metas.len())
                .map(|i| Ok(format!("{:?} {:?}", t.metas[i], t.blocks(i)?)))
                .collect::<crate::error::Result<Vec<String>>>()
        });
        let full = p.index_once().map(|t| {
            t.series
                .iter()
                .map(|s| format!("{:?} {:?}", s.meta, s.blocks))
                .collect::<Vec<String>>()
        });
        match (lazy, full) {
            (Ok(l), Ok(f)) => assert_eq!(l, f),
            (Err(l), Err(f)) => {
                assert!(l.to_string().contains(INDEX_FILE), "{l}");
                assert!(f.to_string().contains(INDEX_FILE), "{f}");
            }
            (l, f) => panic!("lazy {l:?} against full {f:?}"),
        }
    };
    for i in 0..payload.len() {
        for bit in 0..8 {
            let mut bad = payload.clone();
            bad[i] ^= 1 << bit;
            check(&bad);
        }
    }
    for n in 0..payload.len() {
        check(&payload[..n]);
    }
    // Untouched, it still reads (the metadata's digest is not what open checks).
    std::fs::write(&path, &orig).unwrap();
    assert_eq!(PartMeta::read(&RealVfs, &dir).unwrap(), meta);
    assert_eq!(
        PartReader::open(&RealVfs, &dir)
            .unwrap()
            .index_once()
            .unwrap()
            .series
            .len(),
        2
    );
}

/// `index.bin` sizes and first-use costs of v3 tables at several chunk sizes, against the same
/// table as one zstd frame (v1 and v2's layout), on `headline`-like data: hosts with the ten
/// TSBS tags and ten i64 fields on random walks, 10 h at 10 s (hour blocks). By hand:
/// `STRATA_TABLE_SIZES=1000 cargo nextest run --workspace -E 'test(table_sizes)' --no-capture`
/// (the value is the number of hosts).
#[test]
fn table_sizes_and_first_use_costs() {
    let Some(hosts) = std::env::var("STRATA_TABLE_SIZES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    const T0: i64 = 1_767_225_600_000_000_000;
    const S: i64 = 1_000_000_000;
    let key = |h: usize| SeriesMeta {
        measure: "cpu".into(),
        tags: [
            ("arch", format!("x{}", h % 3)),
            (
                "datacenter",
                format!("us-east-1{}", (b'a' + (h % 6) as u8) as char),
            ),
            ("hostname", format!("host_{h}")),
            ("os", format!("Ubuntu{}", 15 + h % 3)),
            ("rack", format!("{}", h % 100)),
            ("region", format!("region-{}", h % 9)),
            ("service", format!("{}", h % 20)),
            (
                "service_environment",
                ["production", "staging", "test"][h % 3].into(),
            ),
            ("service_version", format!("{}", h % 2)),
            ("team", ["SF", "NYC", "LON", "CHI"][h % 4].into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    };
    let mut keys: Vec<SeriesMeta> = (0..hosts).map(key).collect();
    keys.sort();
    let series_rows = |h: usize| {
        let mut x = (h as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let ts: Vec<i64> = (0..3600).map(|i| T0 + i * 10 * S).collect();
        let cols = (0..10)
            .map(|f| {
                let mut v = 50i64;
                let col = ts
                    .iter()
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        v = (v + (x % 3) as i64 - 1).clamp(0, 100);
                        Some(v)
                    })
                    .collect();
                (format!("usage_{f}"), Column::I64(col))
            })
            .collect();
        Rows { ts, cols }
    };
    let d = tempfile::tempdir().unwrap();
    for (k, chunk) in [4usize << 10, 16 << 10, 64 << 10, 1 << 30]
        .into_iter()
        .enumerate()
    {
        let dir = d.path().join(format!("p{k}"));
        let mut w = PartWriter::create(&RealVfs, &dir, ident(k as u64))
            .unwrap()
            .with_chunk_bytes(chunk);
        for (h, m) in keys.iter().enumerate() {
            w.add_series(m, &series_rows(h)).unwrap();
        }
        let meta = w.finish().unwrap();
        let size = |n: &str| meta.files.iter().find(|f| f.name == n).unwrap().size;
        let index = std::fs::read(dir.join(INDEX_FILE)).unwrap();
        let payload = &index[16..index.len() - 4];
        let layout = chunked::Layout::parse(payload).unwrap();
        // The same table as one frame, keys and block lists interleaved (v2's layout).
        let mut whole = crate::format::ByteWriter::new();
        whole.uvarint(layout.metas.len() as u64);
        let mut raw = Vec::new();
        for (m, l) in layout.metas.iter().zip(&layout.lists) {
            if l.start == 0 {
                raw = chunked::chunk(payload, &layout.chunks[l.chunk as usize]).unwrap();
            }
            chunked::encode_key(&mut whole, m);
            whole.buf.extend_from_slice(&raw[l.start..l.end]);
        }
        let v2 = zstd::bulk::compress(&whole.buf, 1).unwrap().len();
        let p = PartReader::open(&RealVfs, &dir).unwrap();
        let t = std::time::Instant::now();
        let table = p.index().unwrap();
        let keys_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = std::time::Instant::now();
        table.blocks(hosts / 2).unwrap();
        let one_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = std::time::Instant::now();
        table.load_blocks((0..hosts).step_by(9)).unwrap();
        let ninth_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = std::time::Instant::now();
        let raw_all: usize = layout
            .chunks
            .iter()
            .map(|c| chunked::chunk(payload, c).unwrap().len())
            .sum();
        let unzip_ms = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "chunk {chunk:>10}: {} chunks, index.bin {} B (one frame: {v2} B, {:+.1} %), \
             data.bin {} B, block lists {raw_all} B; keys+postings {keys_ms:.2} ms, one \
             series {one_ms:.3} ms, every 9th series {ninth_ms:.2} ms, every chunk \
             decompressed {unzip_ms:.2} ms",
            layout.chunks.len(),
            size(INDEX_FILE),
            (size(INDEX_FILE) as f64 / v2 as f64 - 1.0) * 100.0,
            size(DATA_FILE),
        );
    }
}
