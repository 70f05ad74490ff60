use super::*;
use crate::memtable::SeriesMeta;
use crate::rows::Rows;
use crate::scan::Column;
use crate::vfs::RealVfs;

fn series(host: &str) -> SeriesMeta {
    SeriesMeta {
        measure: "cpu".into(),
        tags: vec![("host".into(), host.into())],
    }
}

fn ident(id: u64) -> PartIdentity {
    PartIdentity {
        part_id: id,
        group: "g".into(),
        segment: 0,
        shard: 0,
        min_lsn: 1,
        max_lsn: 9,
    }
}

fn rows(n: usize) -> Rows {
    Rows {
        ts: (0..n as i64).map(|i| i * 10).collect(),
        cols: vec![
            (
                "f".into(),
                Column::F64((0..n).map(|i| (i % 3 != 0).then_some(i as f64)).collect()),
            ),
            (
                "s".into(),
                Column::Str((0..n).map(|i| Some(format!("v{i}"))).collect()),
            ),
        ],
    }
}

#[test]
fn part_round_trips_with_nulls_and_many_blocks() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("p");
    let (a, b) = (series("a"), series("b"));
    let big = rows(BLOCK_ROWS * 2 + 5);
    let small = rows(3);
    let meta = write_part(
        &RealVfs,
        &dir,
        ident(7),
        vec![(&a, big.clone()), (&b, small.clone())],
    )
    .unwrap()
    .unwrap();
    assert_eq!(meta.rows, (BLOCK_ROWS * 2 + 8) as u64);
    assert_eq!(meta.series, 2);
    assert_eq!(meta.blocks, 4);
    let p = PartReader::open(&RealVfs, &dir).unwrap();
    assert!(!p.index_loaded(), "the series table loads on first use");
    let idx = p.index().unwrap();
    assert!(p.index_loaded());
    assert_eq!(idx.measure_range("cpu"), 0..2);
    assert_eq!(idx.measure_range("mem"), 2..2);
    let got: Vec<Rows> = p
        .read_series(&idx.series[0], i64::MIN, i64::MAX, None)
        .unwrap();
    let mut ts = Vec::new();
    for r in &got {
        ts.extend_from_slice(&r.ts);
    }
    assert_eq!(ts, big.ts);
    assert_eq!(got[0].cols[0].1, big.slice(0, BLOCK_ROWS).cols[0].1);
    let only_s = p
        .read_series(&idx.series[1], 0, 20, Some(&["s".to_string()]))
        .unwrap();
    assert_eq!(only_s[0].ts, vec![0, 10]);
    assert_eq!(only_s[0].cols.len(), 1);
    assert_eq!(
        only_s[0].cols[0].1,
        Column::Str(vec![Some("v0".into()), Some("v1".into())])
    );
    verify_part_files(&RealVfs, &dir).unwrap();
}

#[test]
fn every_flipped_byte_of_data_is_caught_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("p");
    let a = series("a");
    write_part(&RealVfs, &dir, ident(1), vec![(&a, rows(50))]).unwrap();
    let data = dir.join(DATA_FILE);
    let orig = std::fs::read(&data).unwrap();
    for i in 0..orig.len() {
        let mut b = orig.clone();
        b[i] ^= 0x40;
        std::fs::write(&data, &b).unwrap();
        let res = PartReader::open(&RealVfs, &dir).and_then(|p| {
            let idx = p.index()?;
            p.read_series(&idx.series[0], i64::MIN, i64::MAX, None)
                .map(|_| ())
        });
        let err = res.expect_err("flip not detected");
        assert!(err.to_string().contains("data.bin"), "{err}");
        assert!(verify_part_files(&RealVfs, &dir).is_err());
    }
    std::fs::write(&data, &orig).unwrap();
    for f in [INDEX_FILE, META_FILE] {
        let path = dir.join(f);
        let orig = std::fs::read(&path).unwrap();
        let mut b = orig.clone();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        std::fs::write(&path, &b).unwrap();
        let err = PartReader::open(&RealVfs, &dir).unwrap_err();
        assert!(err.to_string().contains(f), "{err}");
        std::fs::write(&path, &orig).unwrap();
    }
}

#[test]
fn out_of_order_series_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (series("a"), series("b"));
    assert!(
        write_part(
            &RealVfs,
            &d.path().join("p"),
            ident(1),
            vec![(&b, rows(1)), (&a, rows(1))]
        )
        .is_err()
    );
}

/// A merge deletes its inputs' directories while scans of the older version may still read
/// them: an open part must still yield its series table and data with the files gone (a query
/// got a 500 "index.bin: No such file" under strata-chaos when the table was read lazily from
/// the file).
#[test]
fn an_open_part_reads_after_its_directory_is_deleted() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("p");
    let a = series("a");
    write_part(&RealVfs, &dir, ident(3), vec![(&a, rows(50))]).unwrap();
    let p = PartReader::open(&RealVfs, &dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!p.index_loaded());
    let idx = p.index().unwrap();
    let got = p
        .read_series(&idx.series[0], i64::MIN, i64::MAX, None)
        .unwrap();
    assert_eq!(got.iter().map(|r| r.ts.len()).sum::<usize>(), 50);
}
