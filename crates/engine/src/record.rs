//! WAL record payloads (normative: `docs/format/wal.md`).
//!
//! Every state change goes through the log in LSN order: batches of points, group settings and
//! group deletion. Tags are stored sorted by key, so replay needs no canonicalisation.

use crate::batch::{FieldRef, PointBatch};
use crate::format::{ByteReader, ByteWriter, ReadError};
use crate::model::{FieldValue, GroupSettings, Point};

pub const KIND_WRITE: u8 = 1;
pub const KIND_PUT_GROUP: u8 = 2;
pub const KIND_DELETE_GROUP: u8 = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Write {
        group: String,
        points: Vec<Point>,
    },
    PutGroup {
        name: String,
        settings: GroupSettings,
    },
    DeleteGroup {
        name: String,
    },
}

pub const TYPE_F64: u8 = 1;
pub const TYPE_I64: u8 = 2;
pub const TYPE_BOOL: u8 = 3;
pub const TYPE_STR: u8 = 4;

/// Encode a batch whose tags are already sorted by key ([`PointBatch::sort_tags`]).
pub fn encode_write(group: &str, batch: &PointBatch<'_>, out: &mut Vec<u8>) {
    let mut w = ByteWriter {
        buf: std::mem::take(out),
    };
    w.str(group);
    w.uvarint(batch.len() as u64);
    for p in batch.iter() {
        w.str(p.measure);
        w.i64(p.timestamp);
        w.uvarint(p.tags.len() as u64);
        for (k, v) in p.tags {
            w.str(k);
            w.str(v);
        }
        w.uvarint(p.fields.len() as u64);
        for (name, v) in p.fields {
            w.str(name);
            match v {
                FieldRef::F64(x) => {
                    w.u8(TYPE_F64);
                    w.f64(*x);
                }
                FieldRef::I64(x) => {
                    w.u8(TYPE_I64);
                    w.ivarint(*x);
                }
                FieldRef::Bool(x) => {
                    w.u8(TYPE_BOOL);
                    w.u8(*x as u8);
                }
                FieldRef::Str(s) => {
                    w.u8(TYPE_STR);
                    w.str(s);
                }
            }
        }
    }
    *out = w.buf;
}

pub fn encode_put_group(name: &str, s: &GroupSettings) -> Vec<u8> {
    let mut w = ByteWriter::new();
    w.str(name);
    w.i64(s.ttl_ns);
    w.i64(s.segment_interval_ns);
    w.u32(s.shards);
    w.str(&s.backup_tier);
    w.buf
}

pub fn encode_delete_group(name: &str) -> Vec<u8> {
    let mut w = ByteWriter::new();
    w.str(name);
    w.buf
}

pub fn decode(kind: u8, payload: &[u8]) -> Result<Record, ReadError> {
    let mut r = ByteReader::new(payload);
    let rec = match kind {
        KIND_WRITE => {
            let group = r.string()?;
            let n = r.count()?;
            let mut points = Vec::with_capacity(n);
            for _ in 0..n {
                points.push(decode_point(&mut r)?);
            }
            Record::Write { group, points }
        }
        KIND_PUT_GROUP => Record::PutGroup {
            name: r.string()?,
            settings: GroupSettings {
                ttl_ns: r.i64()?,
                segment_interval_ns: r.i64()?,
                shards: r.u32()?,
                backup_tier: r.string()?,
            },
        },
        KIND_DELETE_GROUP => Record::DeleteGroup { name: r.string()? },
        _ => return Err(ReadError("unknown WAL record kind")),
    };
    if !r.is_empty() {
        return Err(ReadError("trailing bytes in WAL record"));
    }
    Ok(rec)
}

fn decode_point(r: &mut ByteReader<'_>) -> Result<Point, ReadError> {
    let measure = r.string()?;
    let timestamp = r.i64()?;
    let nt = r.count()?;
    let mut tags = Vec::with_capacity(nt);
    for _ in 0..nt {
        tags.push((r.string()?, r.string()?));
    }
    let nf = r.count()?;
    let mut fields = Vec::with_capacity(nf);
    for _ in 0..nf {
        let name = r.string()?;
        let v = match r.u8()? {
            TYPE_F64 => FieldValue::F64(r.f64()?),
            TYPE_I64 => FieldValue::I64(r.ivarint()?),
            TYPE_BOOL => FieldValue::Bool(match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(ReadError("bad bool")),
            }),
            TYPE_STR => FieldValue::Str(r.string()?),
            _ => return Err(ReadError("unknown field type")),
        };
        fields.push((name, v));
    }
    Ok(Point {
        measure,
        tags,
        fields,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_record_round_trips_with_sorted_tags() {
        let p = Point {
            measure: "cpu".into(),
            tags: vec![("z".into(), "1".into()), ("a".into(), "2".into())],
            fields: vec![
                ("f".into(), FieldValue::F64(-0.0)),
                ("i".into(), FieldValue::I64(i64::MIN)),
                ("b".into(), FieldValue::Bool(true)),
                ("s".into(), FieldValue::Str(String::new())),
            ],
            timestamp: -5,
        };
        let mut buf = Vec::new();
        let mut batch = PointBatch::from_points(std::slice::from_ref(&p));
        assert_eq!(batch.sort_tags(), None);
        encode_write("g", &batch, &mut buf);
        let Record::Write { group, points } = decode(KIND_WRITE, &buf).unwrap() else {
            panic!("wrong kind")
        };
        assert_eq!(group, "g");
        assert_eq!(points[0].tags[0].0, "a");
        assert_eq!(points[0].fields, p.fields);
        for cut in 0..buf.len() {
            assert!(decode(KIND_WRITE, &buf[..cut]).is_err());
        }
    }
}
