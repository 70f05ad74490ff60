//! Rows → InfluxDB line protocol bodies (`cpu,<tags> <fields> <ts_ns>\n`).
//! The tag prefix of each host is formatted once and reused, and numbers are written by hand,
//! because the generator must outrun the servers it feeds.

use crate::datagen::{FIELDS, MEASURE, Row, TAG_KEYS, Variant};

pub trait Encoder: Send {
    fn push(&mut self, row: &Row<'_>);
    fn rows(&self) -> usize;
    /// The finished body; the encoder is empty again afterwards.
    fn finish(&mut self) -> Vec<u8>;
}

#[derive(Default)]
pub struct LineProtocol {
    buf: Vec<u8>,
    rows: usize,
    /// Per host: the hostname the prefix was built for, and the prefix.
    prefixes: Vec<Option<(String, Vec<u8>)>>,
}

impl LineProtocol {
    pub fn new() -> Self {
        Self::default()
    }

    fn ensure_prefix(&mut self, row: &Row<'_>) {
        if self.prefixes.len() <= row.host_index {
            self.prefixes.resize(row.host_index + 1, None);
        }
        let slot = &mut self.prefixes[row.host_index];
        let stale = !matches!(slot, Some((name, _)) if *name == row.host.tags[0]);
        if stale {
            let mut p = Vec::with_capacity(192);
            p.extend_from_slice(MEASURE.as_bytes());
            for (k, v) in TAG_KEYS.iter().zip(row.host.tags.iter()) {
                p.push(b',');
                escape_into(&mut p, k);
                p.push(b'=');
                escape_into(&mut p, v);
            }
            p.push(b' ');
            *slot = Some((row.host.tags[0].clone(), p));
        }
    }
}

impl Encoder for LineProtocol {
    fn push(&mut self, row: &Row<'_>) {
        self.ensure_prefix(row);
        let buf = &mut self.buf;
        if let Some((_, prefix)) = &self.prefixes[row.host_index] {
            buf.extend_from_slice(prefix);
        }
        for (i, (name, v)) in FIELDS.iter().zip(row.values.iter()).enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(name.as_bytes());
            buf.push(b'=');
            match row.variant {
                Variant::Int => {
                    write_u64(buf, *v as u64);
                    buf.push(b'i');
                }
                Variant::Float => write_dp(buf, *v, 2),
                Variant::Float3 => write_dp(buf, *v, 3),
            }
        }
        buf.push(b' ');
        write_i64(buf, row.ts_ns);
        buf.push(b'\n');
        self.rows += 1;
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(&mut self) -> Vec<u8> {
        self.rows = 0;
        std::mem::take(&mut self.buf)
    }
}

/// Escapes what line protocol reserves in keys and tag values.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        if matches!(b, b',' | b' ' | b'=' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

pub fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

/// A value with exactly `decimals` (1..=9) decimals ("42.07", "3.050").
fn write_dp(out: &mut Vec<u8>, v: f64, decimals: u32) {
    let scale = 10u64.pow(decimals);
    let units = (v.abs() * scale as f64).round() as u64;
    if v < 0.0 && units > 0 {
        out.push(b'-');
    }
    write_u64(out, units / scale);
    out.push(b'.');
    let frac = units % scale;
    let mut div = scale / 10;
    while div > 0 {
        out.push(b'0' + (frac / div % 10) as u8);
        div /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::{GenConfig, Generator};

    fn gen_cfg(variant: Variant) -> GenConfig {
        GenConfig {
            hosts: 2,
            seed: 1,
            start_ns: 1_000,
            interval_ns: 10,
            variant,
            churn_every: None,
            jitter_ms: 0,
        }
    }

    #[test]
    fn lines_have_tags_fields_and_timestamps() {
        let mut g = Generator::new(gen_cfg(Variant::Int));
        let mut e = LineProtocol::new();
        for _ in 0..4 {
            e.push(&g.next_row());
        }
        assert_eq!(e.rows(), 4);
        let body = String::from_utf8(e.finish()).unwrap_or_default();
        assert_eq!(e.rows(), 0);
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 4);
        let parts: Vec<&str> = lines[2].split(' ').collect();
        assert_eq!(parts.len(), 3, "{}", lines[2]);
        assert!(parts[0].starts_with("cpu,hostname=host_0,region="));
        assert_eq!(parts[0].split(',').count(), 11);
        assert_eq!(parts[1].split(',').count(), 10);
        assert!(parts[1].starts_with("usage_user="));
        assert!(parts[1].split(',').all(|f| f.ends_with('i')));
        assert_eq!(parts[2], "1010");
    }

    #[test]
    fn number_formatting() {
        let mut b = Vec::new();
        write_dp(&mut b, 3.05, 2);
        b.push(b' ');
        write_dp(&mut b, 100.0, 2);
        b.push(b' ');
        write_dp(&mut b, 7.008, 3);
        b.push(b' ');
        write_dp(&mut b, 99.999, 3);
        b.push(b' ');
        write_i64(&mut b, -12);
        b.push(b' ');
        write_u64(&mut b, 0);
        assert_eq!(
            String::from_utf8_lossy(&b),
            "3.05 100.00 7.008 99.999 -12 0"
        );
        let mut e = Vec::new();
        escape_into(&mut e, "a b,c=d");
        assert_eq!(String::from_utf8_lossy(&e), "a\\ b\\,c\\=d");
    }
}
