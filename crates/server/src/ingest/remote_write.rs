//! Prometheus remote write 1.0: `prometheus.WriteRequest` (protobuf, snappy block format).
//!
//! The messages are `strata_prompb`'s (declared once for the server, the benchmark harness
//! and the tests); only the fields Strata uses are declared, and prost skips the rest
//! (exemplars, histograms, metadata).
//!
//! Mapping: measure = `__name__`, tags = the other labels (empty values dropped: Prometheus
//! treats an empty label as absent), one f64 field `value`, timestamp ms → ns.
//!
//! Stale markers (the NaN with bit pattern `0x7ff0000000000002`) say "this series ended", not
//! "the value was NaN". Strata has no staleness concept in its data model, so they are dropped
//! and counted (`strata_remote_write_stale_markers_total`); storing them would turn into fake
//! NaN samples in every aggregation. Any other NaN is an ordinary sample and is stored.

use strata_engine::{FieldValue, Point};

pub use strata_prompb::{Label, STALE_NAN_BITS, Sample, TimeSeries, WriteRequest};

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("bad protobuf: {0}")]
    Protobuf(#[from] strata_prompb::DecodeError),
    #[error("time series #{index} has no __name__ label")]
    MissingName { index: usize },
    #[error(
        "time series #{index}: timestamp {ms} ms is outside the valid range \
         (1678-01-01 to 2261-12-31 UTC)"
    )]
    TimestampRange { index: usize, ms: i64 },
}

/// Decoded points and how many stale markers were dropped.
#[derive(Debug, Default)]
pub struct Decoded {
    pub points: Vec<Point>,
    pub stale_markers: u64,
}

/// Decode an uncompressed `WriteRequest`.
pub fn decode(buf: &[u8]) -> Result<Decoded, RemoteWriteError> {
    let req = <WriteRequest as strata_prompb::Message>::decode(buf)?;
    let mut out = Decoded::default();
    for (index, ts) in req.timeseries.into_iter().enumerate() {
        let mut measure = None;
        let mut tags = Vec::with_capacity(ts.labels.len());
        for l in ts.labels {
            if l.name == "__name__" {
                measure = Some(l.value);
            } else if !l.value.is_empty() {
                tags.push((l.name, l.value));
            }
        }
        let measure = measure
            .filter(|m| !m.is_empty())
            .ok_or(RemoteWriteError::MissingName { index })?;
        for s in ts.samples {
            if s.value.to_bits() == STALE_NAN_BITS {
                out.stale_markers += 1;
                continue;
            }
            let timestamp = s
                .timestamp
                .checked_mul(1_000_000)
                .filter(|&ts| strata_engine::model::timestamp_in_range(ts))
                .ok_or(RemoteWriteError::TimestampRange {
                    index,
                    ms: s.timestamp,
                })?;
            out.points.push(Point {
                measure: measure.clone(),
                tags: tags.clone(),
                fields: vec![("value".to_string(), FieldValue::F64(s.value))],
                timestamp,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use strata_prompb::Message;

    use super::*;

    fn label(n: &str, v: &str) -> Label {
        Label {
            name: n.into(),
            value: v.into(),
        }
    }

    #[test]
    fn maps_labels_and_drops_stale_markers() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    label("__name__", "up"),
                    label("job", "api"),
                    label("empty", ""),
                ],
                samples: vec![
                    Sample {
                        value: 1.0,
                        timestamp: 1_000,
                    },
                    Sample {
                        value: f64::from_bits(STALE_NAN_BITS),
                        timestamp: 2_000,
                    },
                    Sample {
                        value: f64::NAN,
                        timestamp: 3_000,
                    },
                ],
            }],
        };
        let d = decode(&req.encode_to_vec()).unwrap();
        assert_eq!(d.stale_markers, 1);
        assert_eq!(d.points.len(), 2);
        assert_eq!(d.points[0].measure, "up");
        assert_eq!(d.points[0].tags, vec![("job".into(), "api".into())]);
        assert_eq!(d.points[0].timestamp, 1_000_000_000);
        assert_eq!(d.points[0].fields[0].1, FieldValue::F64(1.0));
        assert!(matches!(d.points[1].fields[0].1, FieldValue::F64(v) if v.is_nan()));
    }

    #[test]
    fn missing_name_and_garbage_are_errors() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![label("job", "x")],
                samples: vec![],
            }],
        };
        assert!(matches!(
            decode(&req.encode_to_vec()),
            Err(RemoteWriteError::MissingName { index: 0 })
        ));
        assert!(matches!(
            decode(b"\xff\xff\xff"),
            Err(RemoteWriteError::Protobuf(_))
        ));
    }
}
