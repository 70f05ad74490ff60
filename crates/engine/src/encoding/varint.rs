//! LEB128 varints, zigzag mapping and a bounds-checked byte reader.
//!
//! These are the primitives every column encoding (and the part format) is built from. The
//! reader never panics: every read checks the remaining length and reports what was being read.

use super::DecodeError;

/// Longest LEB128 encoding of a `u64` (7 bits per byte).
pub const MAX_UVARINT_LEN: usize = 10;

/// Maps signed to unsigned so that small magnitudes of either sign get short varints.
#[inline]
pub fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag_encode`].
#[inline]
pub fn zigzag_decode(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-mapped, as an unsigned LEB128 varint.
#[inline]
pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag_encode(v));
}

/// Number of bytes [`put_uvarint`] writes for `v`.
#[inline]
pub fn uvarint_len(v: u64) -> usize {
    // 1 byte for 0..=127, then one more byte per further 7 bits.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Number of bytes [`put_ivarint`] writes for `v`.
#[inline]
pub fn ivarint_len(v: i64) -> usize {
    uvarint_len(zigzag_encode(v))
}

/// Decodes an unsigned LEB128 varint at the start of `b`; returns the value and its length.
///
/// Rejects truncation, encodings longer than 10 bytes and values above `u64::MAX`. Non-minimal
/// encodings (redundant `0x80` continuation bytes) are accepted only within those 10 bytes.
#[inline]
pub fn get_uvarint(b: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(MAX_UVARINT_LEN) {
        if i == MAX_UVARINT_LEN - 1 && byte > 1 {
            return Err(DecodeError::VarintOverflow);
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok((v, i + 1));
        }
    }
    if b.len() >= MAX_UVARINT_LEN {
        Err(DecodeError::VarintOverflow)
    } else {
        Err(DecodeError::Truncated { what: "varint" })
    }
}

/// Decodes a zigzag varint at the start of `b`; returns the value and its length.
#[inline]
pub fn get_ivarint(b: &[u8]) -> Result<(i64, usize), DecodeError> {
    let (u, len) = get_uvarint(b)?;
    Ok((zigzag_decode(u), len))
}

/// A cursor over a chunk payload. Every accessor is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError::Truncated { what })?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let (v, len) = get_uvarint(&self.buf[self.pos..])?;
        self.pos += len;
        Ok(v)
    }

    pub(crate) fn ivarint(&mut self) -> Result<i64, DecodeError> {
        let (v, len) = get_ivarint(&self.buf[self.pos..])?;
        self.pos += len;
        Ok(v)
    }

    /// A varint that counts something held in memory: it must fit `usize` and `limit`.
    pub(crate) fn len_varint(
        &mut self,
        what: &'static str,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        let v = self.uvarint()?;
        match usize::try_from(v) {
            Ok(len) if len <= limit => Ok(len),
            _ => Err(DecodeError::TooLarge {
                what,
                size: v,
                limit: limit as u64,
            }),
        }
    }

    pub(crate) fn bytes(
        &mut self,
        len: usize,
        what: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::Truncated { what });
        }
        let s = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    /// Everything not read yet, consuming it.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// Fails if bytes remain: a chunk must be consumed exactly.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut out = Vec::new();
        put_uvarint(&mut out, 0);
        put_uvarint(&mut out, 127);
        put_uvarint(&mut out, 128);
        put_uvarint(&mut out, 300);
        assert_eq!(out, [0x00, 0x7f, 0x80, 0x01, 0xac, 0x02]);
        assert_eq!(zigzag_encode(0), 0);
        assert_eq!(zigzag_encode(-1), 1);
        assert_eq!(zigzag_encode(1), 2);
        assert_eq!(zigzag_encode(i64::MIN), u64::MAX);
        assert_eq!(zigzag_encode(i64::MAX), u64::MAX - 1);
    }

    #[test]
    fn rejects_overflow_and_truncation() {
        assert!(matches!(
            get_uvarint(&[0xff; 10]),
            Err(DecodeError::VarintOverflow)
        ));
        assert!(matches!(
            get_uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(DecodeError::VarintOverflow)
        ));
        assert!(matches!(
            get_uvarint(&[0x80, 0x80]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            get_uvarint(&[]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut out = Vec::new();
        put_uvarint(&mut out, u64::MAX);
        assert_eq!(out.len(), MAX_UVARINT_LEN);
        assert_eq!(get_uvarint(&out).ok(), Some((u64::MAX, 10)));
    }

    proptest! {
        #[test]
        fn uvarint_round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            prop_assert_eq!(out.len(), uvarint_len(v));
            prop_assert_eq!(get_uvarint(&out).ok(), Some((v, out.len())));
        }

        #[test]
        fn ivarint_round_trip(v in any::<i64>()) {
            let mut out = Vec::new();
            put_ivarint(&mut out, v);
            prop_assert_eq!(out.len(), ivarint_len(v));
            prop_assert_eq!(get_ivarint(&out).ok(), Some((v, out.len())));
            prop_assert_eq!(zigzag_decode(zigzag_encode(v)), v);
        }

        #[test]
        fn uvarint_never_panics(b in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = get_uvarint(&b);
        }
    }
}
