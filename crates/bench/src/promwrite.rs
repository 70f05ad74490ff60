//! Rows → Prometheus remote-write 1.0 bodies: a `WriteRequest` protobuf (`strata_prompb`'s
//! messages, the ones the server decodes), snappy block-compressed. Each row becomes 10 series
//! `cpu_<field>{<tags>}` with one sample each, as a scraper would send them.

use crate::datagen::{FIELDS, MEASURE, Row, TAG_KEYS};
use crate::lineproto::Encoder;
use strata_prompb::{Label, Message, Sample, TimeSeries, WriteRequest};

pub struct RemoteWrite {
    req: WriteRequest,
    rows: usize,
    /// Tag indexes in label-name order: remote write wants labels sorted by name.
    sorted_tags: Vec<usize>,
}

impl Default for RemoteWrite {
    fn default() -> Self {
        let mut sorted_tags: Vec<usize> = (0..TAG_KEYS.len()).collect();
        sorted_tags.sort_by_key(|i| TAG_KEYS[*i]);
        RemoteWrite {
            req: WriteRequest::default(),
            rows: 0,
            sorted_tags,
        }
    }
}

impl RemoteWrite {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Encoder for RemoteWrite {
    fn push(&mut self, row: &Row<'_>) {
        for (field, value) in FIELDS.iter().zip(row.values.iter()) {
            let mut labels = Vec::with_capacity(TAG_KEYS.len() + 1);
            labels.push(Label {
                name: "__name__".into(),
                value: format!("{MEASURE}_{field}"),
            });
            for &i in &self.sorted_tags {
                labels.push(Label {
                    name: TAG_KEYS[i].into(),
                    value: row.host.tags[i].clone(),
                });
            }
            self.req.timeseries.push(TimeSeries {
                labels,
                samples: vec![Sample {
                    value: *value,
                    timestamp: row.ts_ns / 1_000_000,
                }],
            });
        }
        self.rows += 1;
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(&mut self) -> Vec<u8> {
        let req = std::mem::take(&mut self.req);
        self.rows = 0;
        let raw = req.encode_to_vec();
        // Compressing a Vec we just built cannot fail except on absurd sizes (> 4 GiB bodies,
        // which batch sizes never reach); fall back to an empty body rather than panic.
        snap::raw::Encoder::new()
            .compress_vec(&raw)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::{GenConfig, Generator, Variant};

    #[test]
    fn body_decodes_back_to_sorted_series() {
        let mut g = Generator::new(GenConfig {
            hosts: 3,
            seed: 9,
            start_ns: 5_000_000_000,
            interval_ns: 10_000_000_000,
            variant: Variant::Float,
            churn_every: None,
            jitter_ms: 0,
        });
        let mut e = RemoteWrite::new();
        for _ in 0..3 {
            e.push(&g.next_row());
        }
        let body = e.finish();
        let raw = snap::raw::Decoder::new().decompress_vec(&body);
        assert!(raw.is_ok());
        let req = WriteRequest::decode(&raw.unwrap_or_default()[..]);
        let req = req.unwrap_or_default();
        assert_eq!(req.timeseries.len(), 30);
        let ts = &req.timeseries[0];
        assert_eq!(ts.labels[0].name, "__name__");
        assert_eq!(ts.labels[0].value, "cpu_usage_user");
        let names: Vec<&str> = ts.labels[1..].iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(ts.samples[0].timestamp, 5_000);
    }
}
