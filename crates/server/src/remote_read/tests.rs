#![allow(clippy::unwrap_used)]

use strata_engine::{EngineOptions, FieldValue, Point};

use super::*;

const MS: i64 = 1_000_000;

fn engine() -> (tempfile::TempDir, Engine, i64) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = EngineOptions::new(dir.path());
    o.background = false;
    let e = Engine::open(o).unwrap();
    let base_ms = (now_ns() / MS / 3_600_000 - 2) * 3_600_000;
    let mut pts = Vec::new();
    for (host, k) in [("a", 1.0), ("b", 2.0)] {
        for i in 0..5 {
            pts.push(Point {
                measure: "cpu".into(),
                tags: vec![("host".into(), host.into())],
                fields: vec![
                    ("usage".into(), FieldValue::F64(k * i as f64)),
                    ("n".into(), FieldValue::I64(i)),
                    ("note".into(), FieldValue::Str("x".into())),
                ],
                timestamp: (base_ms + i * 15_000) * MS,
            });
        }
    }
    // As remote write stores a sample: field `value`.
    pts.push(Point {
        measure: "up".into(),
        tags: vec![("job".into(), "api".into())],
        fields: vec![("value".into(), FieldValue::F64(1.0))],
        timestamp: base_ms * MS,
    });
    e.write("g", &pts).unwrap();
    (dir, e, base_ms)
}

fn m(t: MatchType, name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: t as i32,
        name: name.into(),
        value: value.into(),
    }
}

fn req(base_ms: i64, matchers: Vec<LabelMatcher>) -> ReadRequest {
    ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: base_ms,
            end_timestamp_ms: base_ms + 60_000,
            matchers,
            hints: None,
        }],
        accepted_response_types: vec![],
    }
}

const BIG: Limits = Limits {
    max_series: 1000,
    max_samples: 1000,
    max_bytes: 1 << 20,
};

fn labels(ts: &TimeSeries) -> Vec<(String, String)> {
    ts.labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

#[test]
fn names_map_back_and_matchers_select() {
    let (_d, e, b) = engine();
    let r = read(
        &e,
        "g",
        &req(b, vec![m(MatchType::Eq, "__name__", "cpu_usage")]),
        BIG,
    )
    .unwrap();
    let ts = &r.results[0].timeseries;
    assert_eq!(ts.len(), 2);
    assert_eq!(
        labels(&ts[1]),
        vec![
            ("__name__".to_string(), "cpu_usage".to_string()),
            ("host".to_string(), "b".to_string())
        ]
    );
    let got: Vec<(i64, f64)> = ts[1]
        .samples
        .iter()
        .map(|s| (s.timestamp, s.value))
        .collect();
    assert_eq!(got[..2], [(b, 0.0), (b + 15_000, 2.0)]);
    // Remote-write series come back under their own name; integers as floats; no strings.
    let r = read(
        &e,
        "g",
        &req(b, vec![m(MatchType::Re, "__name__", "up|cpu_n|cpu_note")]),
        BIG,
    )
    .unwrap();
    let names: Vec<String> = r.results[0]
        .timeseries
        .iter()
        .map(|t| labels(t)[0].1.clone())
        .collect();
    assert_eq!(names, vec!["cpu_n", "cpu_n", "up"]);
    // Regexes are anchored; != and !~ on labels; end is inclusive.
    let r = read(
        &e,
        "g",
        &req(b, vec![m(MatchType::Re, "__name__", "cpu_us")]),
        BIG,
    )
    .unwrap();
    assert!(r.results[0].timeseries.is_empty());
    let mut q = req(
        b,
        vec![
            m(MatchType::Eq, "__name__", "cpu_usage"),
            m(MatchType::Nre, "host", "a"),
        ],
    );
    q.queries[0].end_timestamp_ms = b + 15_000;
    let r = read(&e, "g", &q, BIG).unwrap();
    assert_eq!(r.results[0].timeseries.len(), 1);
    assert_eq!(r.results[0].timeseries[0].samples.len(), 2);
}

#[test]
fn limits_are_refused_with_the_protocols_error() {
    let (_d, e, b) = engine();
    let q = req(b, vec![m(MatchType::Re, "__name__", "cpu_.*")]);
    let small = |series, samples, bytes| Limits {
        max_series: series,
        max_samples: samples,
        max_bytes: bytes,
    };
    let err = read(&e, "g", &q, small(3, 1000, 1 << 20)).unwrap_err();
    assert_eq!(err.to_string(), "exceeded series limit (3)");
    let err = read(&e, "g", &q, small(1000, 19, 1 << 20)).unwrap_err();
    assert_eq!(err.to_string(), "exceeded sample limit (19)");
    let err = read(&e, "g", &q, small(1000, 1000, 100)).unwrap_err();
    assert_eq!(err.to_string(), "exceeded bytes limit (100)");
    assert!(read(&e, "g", &q, small(4, 20, 1 << 20)).is_ok());
}

#[test]
fn bad_requests_are_client_errors() {
    let (_d, e, b) = engine();
    let mut q = req(b, vec![m(MatchType::Re, "host", "(")]);
    assert!(matches!(
        read(&e, "g", &q, BIG),
        Err(ReadError::Matcher { .. })
    ));
    q.queries[0].matchers = vec![LabelMatcher {
        r#type: 9,
        name: "x".into(),
        value: "y".into(),
    }];
    assert!(matches!(
        read(&e, "g", &q, BIG),
        Err(ReadError::MatchType(9))
    ));
    q.queries[0].matchers.clear();
    q.accepted_response_types = vec![ResponseType::StreamedXorChunks as i32];
    assert!(matches!(
        read(&e, "g", &q, BIG),
        Err(ReadError::ResponseType)
    ));
    assert!(matches!(
        read(&e, "nope", &req(b, vec![]), BIG),
        Err(ReadError::GroupNotFound(_))
    ));
}
