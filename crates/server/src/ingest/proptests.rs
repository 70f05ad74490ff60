//! Property tests for the ingest decoders: any bytes are rejected or accepted without a panic,
//! and every point the encoder below can write parses back to itself.

use proptest::prelude::*;
use strata_engine::{FieldValue, Point};

use super::line_protocol::{Precision, parse};
use super::remote_write;

/// Characters that exercise every escape rule, plus ordinary and multi-byte ones.
fn name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(','),
            Just('='),
            Just(' '),
            Just('\\'),
            Just('"'),
            Just('é'),
            proptest::char::range('a', 'z'),
            proptest::char::range('0', '9'),
        ],
        1..8,
    )
    .prop_map(|v| v.into_iter().collect::<String>())
    // A leading '#' would be a comment; names ending in a backslash are ambiguous in the
    // protocol itself (InfluxDB has the same hole), so the encoder never produces them.
    .prop_filter("protocol-expressible", |s| !s.ends_with('\\'))
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<i64>().prop_map(FieldValue::I64),
        any::<bool>().prop_map(FieldValue::Bool),
        (-1e300f64..1e300).prop_map(FieldValue::F64),
        "[a-z \"\\\\,=\n]{0,12}".prop_map(FieldValue::Str),
    ]
}

fn point() -> impl Strategy<Value = Point> {
    (
        name(),
        proptest::collection::btree_map(name(), name(), 0..4),
        proptest::collection::btree_map(name(), field_value(), 1..4),
        // Timestamps outside the valid range are refused (tested in line_protocol).
        strata_engine::model::MIN_TIMESTAMP..=strata_engine::model::MAX_TIMESTAMP,
    )
        .prop_map(|(measure, tags, fields, timestamp)| Point {
            measure,
            tags: tags.into_iter().collect(),
            fields: fields.into_iter().collect(),
            timestamp,
        })
}

fn escape(s: &str, specials: &[char]) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if specials.contains(&c) || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn encode(p: &Point) -> String {
    let mut line = escape(&p.measure, &[',', ' ', '=']);
    for (k, v) in &p.tags {
        line.push(',');
        line.push_str(&escape(k, &[',', '=', ' ']));
        line.push('=');
        line.push_str(&escape(v, &[',', '=', ' ']));
    }
    line.push(' ');
    let fields: Vec<String> = p
        .fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                FieldValue::I64(i) => format!("{i}i"),
                FieldValue::Bool(b) => b.to_string(),
                FieldValue::F64(f) => format!("{f:?}"),
                FieldValue::Str(s) => {
                    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                }
            };
            format!("{}={v}", escape(k, &[',', '=', ' ']))
        })
        .collect();
    line.push_str(&fields.join(","));
    line.push_str(&format!(" {}", p.timestamp));
    line
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&body, Precision::Nanos, 0);
        let _ = remote_write::decode(&body);
        let _ = super::body::unsnappy(&body, 1 << 16);
    }

    #[test]
    fn encoded_points_parse_back(points in proptest::collection::vec(point(), 1..5)) {
        // A measurement starting with '#' would read as a comment line.
        prop_assume!(points.iter().all(|p| !p.measure.starts_with('#')));
        let body: String = points.iter().map(|p| encode(p) + "\n").collect();
        let parsed = parse(body.as_bytes(), Precision::Nanos, 0).map(|b| b.to_points());
        prop_assert_eq!(parsed, Ok(points), "{}", body);
    }
}
