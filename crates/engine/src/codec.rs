//! Column codecs used by the part format. A thin seam over `crate::encoding` so the part code
//! does not care which encodings are in force.
//!
//! Until the real encodings land this holds a trivial, self-describing stand-in (leading byte
//! 0xF0) with the same function names.

use crate::format::{ByteReader, ByteWriter};

const LOCAL: u8 = 0xF0;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

fn header(b: &[u8]) -> Result<ByteReader<'_>, DecodeError> {
    match b.first() {
        Some(&LOCAL) => Ok(ByteReader::new(&b[1..])),
        Some(x) => Err(DecodeError(format!("unknown encoding byte {x:#x}"))),
        None => Err(DecodeError("empty chunk".into())),
    }
}

fn err(e: crate::format::ReadError) -> DecodeError {
    DecodeError(e.0.to_string())
}

fn finish(r: &ByteReader<'_>) -> Result<(), DecodeError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(DecodeError("trailing bytes after values".into()))
    }
}

pub fn encode_timestamps(v: &[i64], out: &mut Vec<u8>) {
    encode_i64(v, out)
}

pub fn decode_timestamps(b: &[u8], n: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    decode_i64(b, n, out)
}

pub fn encode_i64(v: &[i64], out: &mut Vec<u8>) {
    let mut w = ByteWriter::new();
    w.u8(LOCAL);
    let mut prev = 0i64;
    for &x in v {
        w.ivarint(x.wrapping_sub(prev));
        prev = x;
    }
    out.extend_from_slice(&w.buf);
}

pub fn decode_i64(b: &[u8], n: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    let mut r = header(b)?;
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(r.ivarint().map_err(err)?);
        out.push(prev);
    }
    finish(&r)
}

pub fn encode_f64(v: &[f64], out: &mut Vec<u8>) {
    out.push(LOCAL);
    for x in v {
        out.extend_from_slice(&x.to_bits().to_le_bytes());
    }
}

pub fn decode_f64(b: &[u8], n: usize, out: &mut Vec<f64>) -> Result<(), DecodeError> {
    let mut r = header(b)?;
    for _ in 0..n {
        out.push(r.f64().map_err(err)?);
    }
    finish(&r)
}

pub fn encode_bool(v: &[bool], out: &mut Vec<u8>) {
    out.push(LOCAL);
    out.extend(v.iter().map(|&x| x as u8));
}

pub fn decode_bool(b: &[u8], n: usize, out: &mut Vec<bool>) -> Result<(), DecodeError> {
    let mut r = header(b)?;
    for _ in 0..n {
        match r.u8().map_err(err)? {
            0 => out.push(false),
            1 => out.push(true),
            _ => return Err(DecodeError("bad bool byte".into())),
        }
    }
    finish(&r)
}

pub fn encode_str<S: AsRef<str>>(v: &[S], out: &mut Vec<u8>) {
    let mut w = ByteWriter::new();
    w.u8(LOCAL);
    for s in v {
        w.str(s.as_ref());
    }
    out.extend_from_slice(&w.buf);
}

pub fn decode_str(b: &[u8], n: usize, out: &mut Vec<String>) -> Result<(), DecodeError> {
    let mut r = header(b)?;
    for _ in 0..n {
        out.push(r.string().map_err(err)?);
    }
    finish(&r)
}
