//! Cross-encoding tests: property round trips with the edge cases, compression on TSBS-like
//! data, and hostile input (random bytes, truncation, trailing garbage, absurd counts).

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn rt_i64(v: &[i64]) -> Vec<u8> {
    let mut b = Vec::new();
    encode_i64(v, &mut b);
    let mut back = vec![7]; // decoders append
    decode_i64(&b, v.len(), &mut back).expect("i64 chunk decodes");
    assert_eq!(&back[1..], v);
    let mut ts = Vec::new();
    encode_timestamps(v, &mut ts);
    let mut back = Vec::new();
    decode_timestamps(&ts, v.len(), &mut back).expect("timestamp chunk decodes");
    assert_eq!(back, v);
    b
}

fn rt_f64(v: &[f64]) -> Vec<u8> {
    let mut b = Vec::new();
    encode_f64(v, &mut b);
    let mut back = Vec::new();
    decode_f64(&b, v.len(), &mut back).expect("f64 chunk decodes");
    let bits = |s: &[f64]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(v));
    b
}

fn rt_bool(v: &[bool]) -> Vec<u8> {
    let mut b = Vec::new();
    encode_bool(v, &mut b);
    let mut back = Vec::new();
    decode_bool(&b, v.len(), &mut back).expect("bool chunk decodes");
    assert_eq!(back, v);
    b
}

fn rt_str(v: &[String]) -> Vec<u8> {
    let mut b = Vec::new();
    encode_str(v, &mut b);
    let mut back = Vec::new();
    decode_str(&b, v.len(), &mut back).expect("string chunk decodes");
    assert_eq!(back, v);
    b
}

fn edge_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        Just(-1i64),
        -1000i64..1000,
        any::<i64>(),
    ]
}

/// Sequences with structure (steps, walks) as well as noise, so every encoding is exercised.
fn i64_column() -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        proptest::collection::vec(edge_i64(), 0..300),
        (any::<i64>(), edge_i64(), 0usize..300).prop_map(|(start, step, n)| (0..n as i64)
            .map(|i| start.wrapping_add(step.wrapping_mul(i)))
            .collect()),
        (any::<i64>(), proptest::collection::vec(-3i64..4, 0..300)).prop_map(|(start, steps)| {
            steps
                .iter()
                .scan(start, |x, s| {
                    *x = x.wrapping_add(*s);
                    Some(*x)
                })
                .collect()
        }),
    ]
}

fn edge_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::from_bits(0x7ff0_0000_0000_0001)), // signalling NaN
        Just(f64::from_bits(0xfff8_0000_dead_beef)), // negative NaN with payload
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0),
        Just(f64::MIN_POSITIVE / 4.0), // subnormal
        Just(f64::from_bits(1)),
        Just(f64::MAX),
        Just(f64::MIN),
        any::<u64>().prop_map(f64::from_bits),
        (-100_000i64..100_000).prop_map(|m| m as f64 / 100.0),
        (-1000i64..1000).prop_map(|m| m as f64),
    ]
}

fn f64_column() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        proptest::collection::vec(edge_f64(), 0..300),
        proptest::collection::vec(
            (-100_000i64..100_000).prop_map(|m| m as f64 / 100.0),
            0..300
        ),
        (edge_f64(), 0usize..300).prop_map(|(x, n)| vec![x; n]),
        // Decimals with a few specials: the patched decimal form and its exceptions.
        proptest::collection::vec(
            prop_oneof![
                20 => (-100_000i64..100_000).prop_map(|m| m as f64 / 100.0),
                1 => edge_f64(),
            ],
            0..300
        ),
    ]
}

fn bool_column() -> impl Strategy<Value = Vec<bool>> {
    prop_oneof![
        proptest::collection::vec(any::<bool>(), 0..300),
        proptest::collection::vec((any::<bool>(), 1usize..200), 0..8).prop_map(|runs| {
            runs.into_iter()
                .flat_map(|(b, len)| std::iter::repeat_n(b, len))
                .collect()
        }),
    ]
}

fn str_column() -> impl Strategy<Value = Vec<String>> {
    let pool = prop_oneof![
        Just(String::new()),
        Just("ok".to_string()),
        Just("日本語 ✓".to_string()),
        Just("x".repeat(300)),
        ".{0,20}",
    ];
    prop_oneof![
        proptest::collection::vec(pool.clone(), 0..200),
        (
            proptest::collection::vec(pool, 1..4),
            proptest::collection::vec(0usize..4, 0..300)
        )
            .prop_map(|(dict, ids)| ids.iter().map(|&i| dict[i % dict.len()].clone()).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn i64_round_trips(v in i64_column()) {
        rt_i64(&v);
    }

    #[test]
    fn f64_round_trips(v in f64_column()) {
        rt_f64(&v);
    }

    #[test]
    fn bool_round_trips(v in bool_column()) {
        rt_bool(&v);
    }

    #[test]
    fn str_round_trips(v in str_column()) {
        rt_str(&v);
    }

    /// Random bytes never panic any decoder, whatever the count.
    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200), n in prop_oneof![0usize..300, Just(1usize << 40)]) {
        let _ = decode_i64(&b, n, &mut Vec::new());
        let _ = decode_timestamps(&b, n, &mut Vec::new());
        let _ = decode_f64(&b, n, &mut Vec::new());
        let _ = decode_bool(&b, n, &mut Vec::new());
        let _ = decode_str(&b, n, &mut Vec::new());
    }

    /// Valid chunks with one byte changed: an error or `n` values, never a panic.
    #[test]
    fn corrupted_chunks_never_panic(v in f64_column(), w in i64_column(), s in str_column(), pos in any::<usize>(), xor in 1u8..) {
        let mut b = Vec::new();
        encode_f64(&v, &mut b);
        let i = pos % b.len();
        b[i] ^= xor;
        let mut out = Vec::new();
        if decode_f64(&b, v.len(), &mut out).is_ok() {
            prop_assert_eq!(out.len(), v.len());
        }
        let mut b = Vec::new();
        encode_i64(&w, &mut b);
        let i = pos % b.len();
        b[i] ^= xor;
        let mut out = Vec::new();
        if decode_i64(&b, w.len(), &mut out).is_ok() {
            prop_assert_eq!(out.len(), w.len());
        }
        let mut b = Vec::new();
        encode_str(&s, &mut b);
        let i = pos % b.len();
        b[i] ^= xor;
        let mut out = Vec::new();
        if decode_str(&b, s.len(), &mut out).is_ok() {
            prop_assert_eq!(out.len(), s.len());
        }
    }

    /// Every strict prefix and every extension of a valid chunk is rejected.
    #[test]
    fn truncation_and_trailing_bytes_are_errors(v in f64_column(), w in i64_column(), flags in bool_column(), s in str_column()) {
        let mut chunks: Vec<(Vec<u8>, usize, u8)> = Vec::new();
        let mut b = Vec::new();
        encode_f64(&v, &mut b);
        chunks.push((b, v.len(), 0));
        let mut b = Vec::new();
        encode_i64(&w, &mut b);
        chunks.push((b, w.len(), 1));
        let mut b = Vec::new();
        encode_bool(&flags, &mut b);
        chunks.push((b, flags.len(), 2));
        let mut b = Vec::new();
        encode_str(&s, &mut b);
        chunks.push((b, s.len(), 3));
        for (chunk, n, kind) in chunks {
            let decode = |b: &[u8]| match kind {
                0 => decode_f64(b, n, &mut Vec::new()).is_ok(),
                1 => decode_i64(b, n, &mut Vec::new()).is_ok(),
                2 => decode_bool(b, n, &mut Vec::new()).is_ok(),
                _ => decode_str(b, n, &mut Vec::new()).is_ok(),
            };
            prop_assert!(decode(&chunk));
            for len in 0..chunk.len() {
                prop_assert!(!decode(&chunk[..len]), "prefix of {} bytes of {:02x?} decoded", len, chunk);
            }
            let mut longer = chunk.clone();
            longer.push(0);
            prop_assert!(!decode(&longer), "chunk with a trailing byte decoded");
        }
    }
}

#[test]
fn failed_decodes_leave_the_output_untouched() {
    let mut b = Vec::new();
    encode_i64(&[1, 5, 2, 9, 3, 4, 4, 1 << 40], &mut b);
    b.pop(); // truncated: the first values decode before the error
    let mut out = vec![42];
    assert!(decode_i64(&b, 8, &mut out).is_err());
    assert_eq!(out, [42]);
    let mut out = vec![true];
    assert!(decode_bool(&[id::BOOL_RLE, 0, 2, 9], 4, &mut out).is_err());
    assert_eq!(out, [true]);
}

#[test]
fn empty_chunks_are_one_byte_and_strict_about_counts() {
    assert_eq!(rt_i64(&[]), [id::EMPTY]);
    assert_eq!(rt_f64(&[]), [id::EMPTY]);
    assert_eq!(rt_bool(&[]), [id::EMPTY]);
    assert_eq!(rt_str(&[]), [id::EMPTY]);
    assert!(decode_i64(&[id::EMPTY], 1, &mut Vec::new()).is_err());
    assert!(decode_i64(&[id::INT_CONST, 2], 0, &mut Vec::new()).is_err());
    assert!(matches!(
        decode_i64(&[], 0, &mut Vec::new()),
        Err(DecodeError::Empty)
    ));
}

#[test]
fn unknown_ids_are_rejected_per_type() {
    assert!(matches!(
        decode_i64(&[id::F64_CONST, 0, 0, 0, 0, 0, 0, 0, 0], 1, &mut Vec::new()),
        Err(DecodeError::UnknownEncoding { id: 0x10, .. })
    ));
    assert!(decode_f64(&[id::INT_CONST, 2], 1, &mut Vec::new()).is_err());
    assert!(decode_bool(&[id::STR_CONST, 0], 1, &mut Vec::new()).is_err());
    assert!(decode_str(&[id::BOOL_CONST, 1], 1, &mut Vec::new()).is_err());
    assert!(decode_str(&[0x7f], 1, &mut Vec::new()).is_err());
}

#[test]
fn huge_declared_counts_are_errors_without_huge_allocations() {
    let huge = 1usize << 40;
    let mut b = Vec::new();
    encode_i64(&[1, 5, 2, 9, 3], &mut b);
    let mut out = Vec::new();
    assert!(decode_i64(&b, huge, &mut out).is_err());
    assert!(out.capacity() < 1 << 20);
    // A dictionary claiming 2^60 entries, a string claiming 2^60 bytes.
    let mut b = vec![id::STR_DICT];
    put_uvarint(&mut b, 1 << 60);
    assert!(decode_str(&b, 3, &mut Vec::new()).is_err());
    let mut b = vec![id::STR_CONST];
    put_uvarint(&mut b, 1 << 60);
    b.push(b'a');
    assert!(decode_str(&b, 3, &mut Vec::new()).is_err());
    // A zstd frame whose header declares far more than `n` values can need.
    let mut b = Vec::new();
    // (A repeating pattern of unpredictable values: zstd finds the repeats.)
    let pattern: Vec<i64> = (0..4096u64)
        .map(|i| (i % 16).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) as i64)
        .collect();
    encode_i64(&pattern, &mut b);
    assert!(b[0] & ZSTD_FLAG != 0, "test needs a compressed chunk");
    assert!(matches!(
        decode_i64(&b, 10, &mut Vec::new()),
        Err(DecodeError::TooLarge { .. })
    ));
    // Counts above the per-chunk cap are refused before anything is allocated.
    assert!(matches!(
        decode_i64(&[id::INT_CONST, 2], MAX_CHUNK_VALUES + 1, &mut Vec::new()),
        Err(DecodeError::TooLarge { .. })
    ));
}

/// Error messages say what was wrong.
#[test]
fn errors_are_descriptive() {
    let err = decode_i64(&[id::INT_DELTA, 2, 1, 2], 3, &mut Vec::new())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("chunk holds 2 values where 3 were expected")
    );
    let err = decode_f64(&[0x44], 1, &mut Vec::new())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("unknown encoding id 0x44 for a f64 column")
    );
}

// ---- TSBS-like data (research/tsdb-engines.md §8.1): 10 s interval, clamped random walks ----

const TSBS_ROWS: usize = 8640; // one day at 10 s
const BLOCK: usize = 8192;

fn normal(rng: &mut StdRng) -> f64 {
    // Box–Muller: enough for test data, no extra dependency.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// One TSBS cpu field: start U(0,100), N(0,1) steps, clamped to [0,100].
fn random_walk(rng: &mut StdRng) -> Vec<f64> {
    let mut x: f64 = rng.random_range(0.0..100.0);
    (0..TSBS_ROWS)
        .map(|_| {
            x = (x + normal(rng)).clamp(0.0, 100.0);
            x
        })
        .collect()
}

/// Encodes `v` in blocks as the part writer would and returns bytes per value.
fn bytes_per_value<T>(v: &[T], encode: impl Fn(&[T], &mut Vec<u8>)) -> f64 {
    let mut total = 0;
    for block in v.chunks(BLOCK) {
        let mut out = Vec::new();
        encode(block, &mut out);
        total += out.len();
    }
    total as f64 / v.len() as f64
}

/// Bytes per value on TSBS-shaped columns, printed for the report
/// (`cargo test -p strata-engine --lib tsbs_bytes_per_value -- --nocapture`).
#[test]
fn tsbs_bytes_per_value() {
    let mut rng = StdRng::seed_from_u64(20261123);
    let start = 1_700_000_000_000_000_000i64;
    let ts: Vec<i64> = (0..TSBS_ROWS as i64)
        .map(|i| start + i * 10_000_000_000)
        .collect();
    let ts_bpv = bytes_per_value(&ts, encode_timestamps);
    let jittered: Vec<i64> = ts
        .iter()
        .map(|t| t + rng.random_range(0..100) * 1_000_000)
        .collect();
    let jitter_bpv = bytes_per_value(&jittered, encode_timestamps);

    let (mut int_total, mut float_total) = (0.0, 0.0);
    let fields = 10;
    for _ in 0..fields {
        let walk = random_walk(&mut rng);
        let ints: Vec<i64> = walk.iter().map(|x| *x as i64).collect();
        let floats: Vec<f64> = walk.iter().map(|x| (x * 100.0).round() / 100.0).collect();
        for block in floats.chunks(BLOCK) {
            rt_f64(block);
        }
        int_total += bytes_per_value(&ints, encode_i64);
        float_total += bytes_per_value(&floats, encode_f64);
    }
    let int_bpv = int_total / fields as f64;
    let float_bpv = float_total / fields as f64;
    let flags: Vec<bool> = (0..TSBS_ROWS).map(|i| (i / 700) % 3 == 0).collect();
    let bool_bpv = bytes_per_value(&flags, encode_bool);
    let states = ["ok", "warning", "critical"];
    let status: Vec<&str> = (0..TSBS_ROWS)
        .map(|i| states[(i / 97 + i / 13) % 3])
        .collect();
    let str_bpv = bytes_per_value(&status, encode_str);
    println!(
        "TSBS-like bytes/value: timestamps 10 s {ts_bpv:.4}, with 0-99 ms jitter {jitter_bpv:.3}, \
         i64 walk {int_bpv:.3}, f64 walk 2 decimals {float_bpv:.3}, bool {bool_bpv:.4}, \
         string status {str_bpv:.3}"
    );
    assert!(ts_bpv < 0.01, "regular timestamps: {ts_bpv}");
    assert!(jitter_bpv < 2.5, "jittered timestamps: {jitter_bpv}");
    assert!(int_bpv < 0.6, "i64 random walk: {int_bpv}");
    assert!(
        float_bpv < 2.0,
        "f64 random walk with 2 decimals: {float_bpv}"
    );
    assert!(bool_bpv < 0.01, "long-run bools: {bool_bpv}");
    assert!(str_bpv < 0.3, "3-state strings: {str_bpv}");
}
