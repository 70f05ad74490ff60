use super::*;
use crate::memtable::SeriesMeta;
use crate::rows::Rows;
use crate::scan::Column;
use crate::vfs::RealVfs;

pub(super) fn series(host: &str) -> SeriesMeta {
    SeriesMeta {
        measure: "cpu".into(),
        tags: vec![("host".into(), host.into())],
    }
}

pub(super) fn ident(id: u64) -> PartIdentity {
    PartIdentity {
        part_id: id,
        group: "g".into(),
        segment: 0,
        shard: 0,
        min_lsn: 1,
        max_lsn: 9,
    }
}

pub(super) fn rows(n: usize) -> Rows {
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
    let table = p.index().unwrap();
    assert!(p.index_loaded());
    // Block lists are parsed per series, when asked for.
    assert_eq!(table.parsed_count(), 0);
    let idx = p.index_once().unwrap();
    assert_eq!(table.blocks(1).unwrap().len(), idx.series[1].blocks.len());
    assert_eq!(table.parsed_count(), 1);
    assert_eq!(table.blocks(0).unwrap().len(), 3);
    assert_eq!(table.parsed_count(), 2);
    assert_eq!(table.metas[0], idx.series[0].meta);
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
            let idx = p.index_once()?;
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
    let mut n = 0;
    for b in idx.blocks(0).unwrap() {
        n += p.read_block(b, None).unwrap().ts.len();
    }
    assert_eq!(n, 50);
}

/// A series sampled every 10 s from the middle of an hour: the first block runs to the second
/// hour boundary (it holds fewer than `ALIGNED_MIN_ROWS` rows at the first), every later block
/// is one clock hour, and the rows read back are the rows written.
#[test]
fn blocks_end_on_hour_boundaries() {
    const S: i64 = 1_000_000_000;
    let hour = write::BLOCK_ALIGN_NS;
    let t0 = 1_700_000_000 * S; // 22:13:20 UTC
    let n = 5 * 360 + 17;
    let big = Rows {
        ts: (0..n as i64).map(|i| t0 + i * 10 * S).collect(),
        cols: vec![(
            "f".into(),
            Column::F64((0..n).map(|i| Some(i as f64)).collect()),
        )],
    };
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("p");
    let a = series("a");
    write_part(&RealVfs, &dir, ident(7), vec![(&a, big.clone())]).unwrap();
    let p = PartReader::open(&RealVfs, &dir).unwrap();
    let idx = p.index_once().unwrap();
    let blocks = &idx.series[0].blocks;
    assert_eq!(blocks.len(), 6);
    // 22:13:20 -> 23:00 is 280 rows (>= 256): the first block ends at 23:00.
    assert_eq!(blocks[0].rows, 280);
    for b in &blocks[1..] {
        assert_eq!(b.min_ts.rem_euclid(hour), 0);
        assert_eq!(b.min_ts.div_euclid(hour), b.max_ts.div_euclid(hour));
    }
    assert!(blocks[1..5].iter().all(|b| b.rows == 360));
    let got = p
        .read_series(&idx.series[0], i64::MIN, i64::MAX, None)
        .unwrap();
    let ts: Vec<i64> = got.iter().flat_map(|r| r.ts.iter().copied()).collect();
    assert_eq!(ts, big.ts);
}

proptest::proptest! {
    /// `block_ends` cuts every series into blocks of 1..=BLOCK_ROWS rows, and a block crosses
    /// an hour boundary only before its `ALIGNED_MIN_ROWS`-th row.
    #[test]
    fn block_ends_cover_the_rows_and_respect_hours(
        start in -10_000_000_000_000i64..10_000_000_000_000,
        gaps in proptest::collection::vec(1i64..60_000_000_000, 1..20_000),
    ) {
        let mut t = start;
        let ts: Vec<i64> = gaps.iter().map(|g| { t += g; t }).collect();
        let ends = write::block_ends(&ts);
        let hour = |t: i64| t.div_euclid(write::BLOCK_ALIGN_NS);
        let mut a = 0;
        for &e in &ends {
            proptest::prop_assert!(e > a && e - a <= BLOCK_ROWS);
            let m = a + write::ALIGNED_MIN_ROWS;
            if m < e {
                proptest::prop_assert_eq!(hour(ts[m - 1]), hour(ts[e - 1]));
            }
            if e < ts.len() && e - a < BLOCK_ROWS {
                // Cut short: at an hour boundary, after the minimum.
                proptest::prop_assert!(e - a >= write::ALIGNED_MIN_ROWS);
                proptest::prop_assert!(hour(ts[e]) > hour(ts[e - 1]));
            }
            a = e;
        }
        proptest::prop_assert_eq!(a, ts.len());
    }
}

mod summaries {
    use proptest::prelude::*;

    use super::*;
    use crate::part::summary::{ExactSum, FieldSummary};

    fn value() -> impl Strategy<Value = Option<f64>> {
        prop::option::weighted(
            0.8,
            prop_oneof![
                6 => -1e3f64..1e3,
                1 => Just(f64::NAN),
                1 => Just(f64::INFINITY),
                1 => Just(f64::NEG_INFINITY),
                1 => Just(-0.0),
                1 => Just(0.0),
                1 => Just(f64::MAX),
            ],
        )
    }

    fn int() -> impl Strategy<Value = Option<i64>> {
        prop::option::weighted(
            0.8,
            prop_oneof![
                4 => -1000i64..1000,
                1 => Just(i64::MAX),
                1 => Just(i64::MIN),
                1 => Just((1 << 53) + 1),
                1 => Just(1 << 53),
            ],
        )
    }

    /// The summary computed by hand from the values, the way the aggregator visits them.
    fn naive(ts: &[i64], v: &[Option<f64>]) -> Option<(u64, f64, Option<f64>, Option<f64>)> {
        let present: Vec<(i64, f64)> = ts
            .iter()
            .zip(v)
            .filter_map(|(&t, v)| v.map(|v| (t, v)))
            .collect();
        if present.is_empty() {
            return None;
        }
        let mut sum = ExactSum::new();
        present.iter().for_each(|&(_, v)| sum.add(v));
        let mut min: Option<f64> = None;
        let mut max: Option<f64> = None;
        for &(_, v) in &present {
            if v.is_nan() {
                continue;
            }
            if min.is_none_or(|m| v < m) {
                min = Some(v);
            }
            if max.is_none_or(|m| v > m) {
                max = Some(v);
            }
        }
        Some((present.len() as u64, sum.value(), min, max))
    }

    fn bits(v: Option<f64>) -> Option<u64> {
        v.map(f64::to_bits)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Written summaries round-trip through `index.bin` and hold what the values give;
        /// blocks split where `BLOCK_ROWS` says.
        #[test]
        fn summaries_hold_what_the_values_give(
            fs in prop::collection::vec(value(), 1..300),
            is in prop::collection::vec(int(), 1..300),
            gaps in prop::collection::vec(1i64..1000, 300),
        ) {
            let n = fs.len().min(is.len());
            let mut t = -500_000i64;
            let ts: Vec<i64> = gaps[..n].iter().map(|g| { t += g; t }).collect();
            let rows = Rows {
                ts: ts.clone(),
                cols: vec![
                    ("f".into(), Column::F64(fs[..n].to_vec())),
                    ("i".into(), Column::I64(is[..n].to_vec())),
                ],
            };
            let d = tempfile::tempdir().unwrap();
            let dir = d.path().join("p");
            let a = series("a");
            write_part(&RealVfs, &dir, ident(1), vec![(&a, rows)]).unwrap().unwrap();
            let p = PartReader::open(&RealVfs, &dir).unwrap();
            prop_assert_eq!(p.format_version(), VERSION);
            let idx = p.index_once().unwrap();
            let b = &idx.series[0].blocks[0];
            let f = b.fields.iter().find(|f| &*f.name == "f").unwrap();
            match naive(&ts, &fs[..n]) {
                None => prop_assert!(f.summary.is_none()),
                Some((count, sum, min, max)) => {
                    prop_assert_eq!(u64::from(f.present), count);
                    let Some(FieldSummary::F64(s)) = &f.summary else {
                        return Err(TestCaseError::fail("no f64 summary"));
                    };
                    prop_assert_eq!(s.sum.value().to_bits(), sum.to_bits());
                    prop_assert_eq!(bits(s.min), bits(min));
                    prop_assert_eq!(bits(s.max), bits(max));
                    let present: Vec<(i64, f64)> = ts.iter().zip(&fs[..n])
                        .filter_map(|(&t, v)| v.map(|v| (t, v))).collect();
                    let (ft, fv) = present[0];
                    let (lt, lv) = present[present.len() - 1];
                    prop_assert_eq!((s.first.0, s.first.1.to_bits()), (ft, fv.to_bits()));
                    prop_assert_eq!((s.last.0, s.last.1.to_bits()), (lt, lv.to_bits()));
                }
            }
            let i = b.fields.iter().find(|f| &*f.name == "i").unwrap();
            let present: Vec<(i64, i64)> = ts.iter().zip(&is[..n])
                .filter_map(|(&t, v)| v.map(|v| (t, v))).collect();
            match (&i.summary, present.is_empty()) {
                (None, true) => {}
                (Some(FieldSummary::I64(s)), false) => {
                    prop_assert_eq!(s.sum, present.iter().map(|&(_, v)| i128::from(v)).sum::<i128>());
                    // Compared as doubles, the earliest of equals kept.
                    let mut min = present[0].1;
                    let mut max = present[0].1;
                    for &(_, v) in &present {
                        if (v as f64) < (min as f64) { min = v; }
                        if (v as f64) > (max as f64) { max = v; }
                    }
                    prop_assert_eq!((s.min, s.max), (min, max));
                    prop_assert_eq!(s.first, present[0]);
                    prop_assert_eq!(s.last, present[present.len() - 1]);
                }
                _ => return Err(TestCaseError::fail("i64 summary presence")),
            }
        }
    }

    #[test]
    fn stored_summaries_round_trip_and_refuse_trailing_bytes() {
        use crate::model::FieldType;
        let ts: Vec<i64> = (0..64).map(|i| 1_700_000_000_000 + i * 1000).collect();
        let f: Vec<Option<f64>> = (0..64).map(|i| Some(i as f64 * 0.25)).collect();
        let s = FieldSummary::of_f64(&ts, &f).unwrap();
        let b = s.to_bytes(0);
        assert_eq!(
            FieldSummary::from_bytes(&b, FieldType::F64, 0, 1 << 62).unwrap(),
            s
        );
        let mut long = b.clone();
        long.push(0);
        assert!(FieldSummary::from_bytes(&long, FieldType::F64, 0, 1 << 62).is_err());
        // Timestamps outside the block are refused.
        assert!(FieldSummary::from_bytes(&b, FieldType::F64, 0, 1000).is_err());
        assert!(FieldSummary::from_bytes(&b, FieldType::Str, 0, 1 << 62).is_err());
    }

    #[test]
    fn strings_and_bools_have_no_summary_and_many_blocks_each_have_theirs() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("p");
        let a = series("a");
        let big = rows(BLOCK_ROWS * 2 + 5);
        write_part(&RealVfs, &dir, ident(7), vec![(&a, big.clone())]).unwrap();
        let p = PartReader::open(&RealVfs, &dir).unwrap();
        let idx = p.index_once().unwrap();
        let blocks = &idx.series[0].blocks;
        assert_eq!(blocks.len(), 3);
        for (k, b) in blocks.iter().enumerate() {
            let part = big.slice(k * BLOCK_ROWS, ((k + 1) * BLOCK_ROWS).min(big.len()));
            let Column::F64(v) = &part.cols[0].1 else {
                unreachable!()
            };
            let want = FieldSummary::of_f64(&part.ts, v);
            let f = b.fields.iter().find(|f| &*f.name == "f").unwrap();
            assert_eq!(f.summary, want);
            let s = b.fields.iter().find(|f| &*f.name == "s").unwrap();
            assert!(s.summary.is_none());
        }
    }
}
