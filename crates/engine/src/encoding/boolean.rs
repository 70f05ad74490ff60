//! Boolean column encodings: constant, bitmap, or run lengths when runs are long (status flags
//! that rarely flip).
//!
//! `BOOL_BITMAP`: value `i` is bit `i % 8` (least significant first) of byte `i / 8`; unused
//! bits of the last byte are zero. `BOOL_RLE`: the first value as one byte (0 or 1), then the
//! length of every run as a varint (≥ 1, values alternate from run to run, lengths sum to n).

use super::compress::compress_if_pays;
use super::varint::{Reader, put_uvarint, uvarint_len};
use super::{DecodeError, id, open_chunk};

fn max_plain_len(n: usize) -> usize {
    // RLE's worst case: one 1-byte run per value (longer runs take fewer, longer varints).
    n.saturating_add(16)
}

pub(crate) fn encode(v: &[bool], out: &mut Vec<u8>) {
    let Some((&first, _)) = v.split_first() else {
        out.push(id::EMPTY);
        return;
    };
    let runs = runs(v);
    if runs.len() == 1 {
        out.extend_from_slice(&[id::BOOL_CONST, u8::from(first)]);
        return;
    }
    let start = out.len();
    let rle_len = 1 + runs.iter().map(|&r| uvarint_len(r as u64)).sum::<usize>();
    if rle_len < v.len().div_ceil(8) {
        out.extend_from_slice(&[id::BOOL_RLE, u8::from(first)]);
        for r in runs {
            put_uvarint(out, r as u64);
        }
    } else {
        out.push(id::BOOL_BITMAP);
        out.extend(v.chunks(8).map(|byte| {
            byte.iter()
                .enumerate()
                .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << i))
        }));
    }
    compress_if_pays(out, start);
}

fn runs(v: &[bool]) -> Vec<usize> {
    let mut runs = Vec::new();
    let mut len = 0usize;
    let mut cur = v[0];
    for &b in v {
        if b != cur {
            runs.push(len);
            cur = b;
            len = 0;
        }
        len += 1;
    }
    runs.push(len);
    runs
}

pub(crate) fn decode(b: &[u8], n: usize, out: &mut Vec<bool>) -> Result<(), DecodeError> {
    let (base, payload) = open_chunk(b, n, max_plain_len(n))?;
    let mut r = Reader::new(&payload);
    match base {
        id::EMPTY => {}
        id::BOOL_CONST => {
            let value = bool_byte(r.u8("constant value")?)?;
            out.extend(std::iter::repeat_n(value, n));
        }
        id::BOOL_BITMAP => {
            let bytes = r.rest();
            if bytes.len() != n.div_ceil(8) {
                return Err(DecodeError::CountMismatch {
                    expected: n,
                    found: bytes.len().saturating_mul(8),
                });
            }
            if !n.is_multiple_of(8) && bytes[bytes.len() - 1] >> (n % 8) != 0 {
                return Err(DecodeError::Invalid("non-zero padding bits in bitmap"));
            }
            out.extend((0..n).map(|i| bytes[i / 8] >> (i % 8) & 1 == 1));
        }
        id::BOOL_RLE => {
            let mut value = bool_byte(r.u8("first value")?)?;
            let mut left = n;
            while left > 0 {
                let run = r.len_varint("run length", left)?;
                if run == 0 {
                    return Err(DecodeError::Invalid("empty run"));
                }
                out.extend(std::iter::repeat_n(value, run));
                left -= run;
                value = !value;
            }
        }
        other => {
            return Err(DecodeError::UnknownEncoding {
                id: other,
                kind: "bool",
            });
        }
    }
    r.finish()
}

fn bool_byte(b: u8) -> Result<bool, DecodeError> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid("boolean byte other than 0 or 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &[bool]) -> Vec<u8> {
        let mut b = Vec::new();
        encode(v, &mut b);
        let mut back = Vec::new();
        decode(&b, v.len(), &mut back).expect("decodes");
        assert_eq!(back, v);
        b
    }

    #[test]
    fn picks_the_encoding_that_suits_the_data() {
        assert_eq!(round_trip(&[true; 5000]), [id::BOOL_CONST, 1]);
        let flips: Vec<bool> = (0..5000).map(|i| (i / 1000) % 2 == 1).collect();
        let b = round_trip(&flips);
        assert_eq!(b[0], id::BOOL_RLE);
        assert!(b.len() <= 12, "5 runs take {} bytes", b.len());
        let noisy: Vec<bool> = (0..64).map(|i| (i * 7919) % 3 == 0).collect();
        let b = round_trip(&noisy);
        assert_eq!(b[0], id::BOOL_BITMAP);
        assert_eq!(b.len(), 1 + 8);
        round_trip(&[true, false, true]);
    }

    #[test]
    fn rejects_malformed_runs() {
        let mut out = Vec::new();
        // Runs summing past n, a zero-length run, a bad value byte.
        assert!(decode(&[id::BOOL_RLE, 0, 3, 3], 4, &mut out).is_err());
        assert!(decode(&[id::BOOL_RLE, 0, 0, 4], 4, &mut out).is_err());
        assert!(decode(&[id::BOOL_RLE, 2, 4], 4, &mut out).is_err());
        assert!(decode(&[id::BOOL_BITMAP, 0b1_0000], 4, &mut out).is_err());
        assert!(decode(&[id::BOOL_RLE, 1, 2], 4, &mut out).is_err());
    }
}
