//! Byte-level checks against encodings written out by hand from Prometheus' `.proto` files, so
//! a wrong field number or wire type here cannot hide behind a round trip through itself.

#![allow(clippy::unwrap_used)]

use super::*;

/// `TimeSeries { labels: [a="b"], samples: [{1.0, 2}] }`, field by field.
const SERIES: &[u8] = &[
    0x0a, 0x06, // labels (1, len 6)
    0x0a, 0x01, b'a', 0x12, 0x01, b'b', // name (1) "a", value (2) "b"
    0x12, 0x0b, // samples (2, len 11)
    0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // value (1, fixed64) 1.0
    0x10, 0x02, // timestamp (2, varint) 2
];

fn series() -> TimeSeries {
    TimeSeries {
        labels: vec![Label {
            name: "a".into(),
            value: "b".into(),
        }],
        samples: vec![Sample {
            value: 1.0,
            timestamp: 2,
        }],
    }
}

fn framed(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag, u8::try_from(body.len()).unwrap()];
    v.extend_from_slice(body);
    v
}

#[test]
fn write_request_matches_the_wire_format() {
    let req = WriteRequest {
        timeseries: vec![series()],
    };
    assert_eq!(req.encode_to_vec(), framed(0x0a, SERIES));
}

#[test]
fn undeclared_fields_are_skipped() {
    // An exemplar (TimeSeries field 3) and metadata (WriteRequest field 3) are ignored.
    let mut ts = SERIES.to_vec();
    ts.extend_from_slice(&[0x1a, 0x02, 0x10, 0x05]);
    let mut body = framed(0x0a, &ts);
    body.extend_from_slice(&[0x1a, 0x02, 0x08, 0x01]);
    let req = WriteRequest::decode(&body[..]).unwrap();
    assert_eq!(req.timeseries, vec![series()]);
}

#[test]
fn read_request_matches_the_wire_format() {
    let req = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: 1,
            end_timestamp_ms: 2,
            matchers: vec![LabelMatcher {
                r#type: MatchType::Re as i32,
                name: "n".into(),
                value: "v".into(),
            }],
            hints: Some(ReadHints {
                step_ms: 3,
                ..ReadHints::default()
            }),
        }],
        accepted_response_types: vec![
            ResponseType::StreamedXorChunks as i32,
            ResponseType::Samples as i32,
        ],
    };
    let query: &[u8] = &[
        0x08, 0x01, // start_timestamp_ms (1)
        0x10, 0x02, // end_timestamp_ms (2)
        0x1a, 0x08, 0x08, 0x02, 0x12, 0x01, b'n', 0x1a, 0x01, b'v', // matchers (3)
        0x22, 0x02, 0x08, 0x03, // hints (4) { step_ms (1) }
    ];
    let mut expected = framed(0x0a, query);
    expected.extend_from_slice(&[0x12, 0x02, 0x01, 0x00]); // packed response types (2)
    assert_eq!(req.encode_to_vec(), expected);
    let back = ReadRequest::decode(&expected[..]).unwrap();
    assert_eq!(back, req);
    assert_eq!(back.queries[0].matchers[0].r#type(), MatchType::Re);
    // A client that sends the repeated enum unpacked is understood too.
    let mut unpacked = framed(0x0a, query);
    unpacked.extend_from_slice(&[0x10, 0x01, 0x10, 0x00]);
    assert_eq!(ReadRequest::decode(&unpacked[..]).unwrap(), req);
}

#[test]
fn read_response_matches_the_wire_format() {
    let resp = ReadResponse {
        results: vec![QueryResult {
            timeseries: vec![series()],
        }],
    };
    assert_eq!(
        resp.encode_to_vec(),
        framed(0x0a, &framed(0x0a, SERIES)),
        "results (1) {{ timeseries (1) }}"
    );
}

#[test]
fn chunked_read_response_matches_the_wire_format() {
    let resp = ChunkedReadResponse {
        chunked_series: vec![ChunkedSeries {
            labels: vec![],
            chunks: vec![Chunk {
                min_time_ms: 1,
                max_time_ms: 2,
                r#type: ChunkEncoding::Xor as i32,
                data: vec![0xaa],
            }],
        }],
        query_index: 4,
    };
    let chunk: &[u8] = &[0x08, 0x01, 0x10, 0x02, 0x18, 0x01, 0x22, 0x01, 0xaa];
    let mut expected = framed(0x0a, &framed(0x12, chunk));
    expected.extend_from_slice(&[0x10, 0x04]);
    assert_eq!(resp.encode_to_vec(), expected);
}
