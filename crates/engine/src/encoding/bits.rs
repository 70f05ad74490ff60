//! Bit-level writer and reader (most significant bit first) for the Gorilla stream and
//! bit-packed dictionary ids. The reader is bounds-checked and verifies the zero padding.

use super::DecodeError;

pub(crate) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Pending bits, left-aligned; flushed as 8 bytes once full.
    acc: u64,
    filled: u32,
}

impl<'a> BitWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            filled: 0,
        }
    }

    /// Appends the low `bits` bits of `value` (`bits` ≤ 64).
    pub(crate) fn write(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 64);
        if bits == 0 {
            return;
        }
        let value = if bits == 64 {
            value
        } else {
            value & ((1u64 << bits) - 1)
        };
        let free = 64 - self.filled; // 1..=64
        if bits < free {
            self.acc |= value << (free - bits);
            self.filled += bits;
        } else {
            // Fill the accumulator, flush it whole, keep what did not fit.
            let rest = bits - free; // 0..=63
            self.acc |= value >> rest;
            self.out.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = if rest == 0 { 0 } else { value << (64 - rest) };
            self.filled = rest;
        }
    }

    /// Flushes the pending bits, padded with zero bits to a byte.
    pub(crate) fn finish(self) {
        let bytes = self.filled.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_be_bytes()[..bytes]);
    }
}

pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        BitReader { buf, pos: 0 }
    }

    pub(crate) fn remaining_bits(&self) -> usize {
        self.buf.len() * 8 - self.pos
    }

    /// Reads `bits` bits (≤ 64) as an unsigned value.
    pub(crate) fn read(&mut self, bits: u32) -> Result<u64, DecodeError> {
        if bits as usize > self.remaining_bits() {
            return Err(DecodeError::Truncated { what: "bit stream" });
        }
        if bits == 0 {
            return Ok(0);
        }
        let byte = self.pos / 8;
        let offset = (self.pos % 8) as u32;
        if bits + offset <= 64
            && let Some(window) = self.buf.get(byte..byte + 8)
        {
            // Fast path: one 64-bit big-endian window holds the offset and the value.
            let mut be = [0u8; 8];
            be.copy_from_slice(window);
            let value = (u64::from_be_bytes(be) << offset) >> (64 - bits);
            self.pos += bits as usize;
            return Ok(value);
        }
        if let Some(window) = self.buf.get(byte..byte + 16) {
            // Fast path: one 128-bit big-endian window holds the offset plus up to 64 bits.
            let mut be = [0u8; 16];
            be.copy_from_slice(window);
            let value = (u128::from_be_bytes(be) << (self.pos % 8)) >> (128 - bits);
            self.pos += bits as usize;
            return Ok(value as u64);
        }
        let mut value = 0u64;
        let mut left = bits;
        while left > 0 {
            let byte = u64::from(self.buf[self.pos / 8]);
            let offset = (self.pos % 8) as u32;
            let avail = 8 - offset;
            let take = avail.min(left);
            let part = (byte >> (avail - take)) & ((1u64 << take) - 1);
            // `take` ≤ 8 and the total is ≤ 64 bits, so no significant bit is shifted out.
            value = (value << take) | part;
            left -= take;
            self.pos += take as usize;
        }
        Ok(value)
    }

    pub(crate) fn read_bit(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read(1)? == 1)
    }

    /// The stream must end within the last byte, padded with zero bits.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        let rest = self.remaining_bits();
        if rest >= 8 {
            return Err(DecodeError::TrailingBytes { count: rest / 8 });
        }
        if rest > 0 && self.buf[self.buf.len() - 1] & ((1u8 << rest) - 1) != 0 {
            return Err(DecodeError::Invalid("non-zero padding bits"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..64)) {
            let mut out = Vec::new();
            let mut w = BitWriter::new(&mut out);
            for &(v, bits) in &fields {
                w.write(v, bits);
            }
            w.finish();
            let total: u32 = fields.iter().map(|f| f.1).sum();
            prop_assert_eq!(out.len(), total.div_ceil(8) as usize);
            let mut r = BitReader::new(&out);
            for &(v, bits) in &fields {
                let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
                prop_assert_eq!(r.read(bits).ok(), Some(v & mask));
            }
            prop_assert!(r.finish().is_ok());
            prop_assert!(r.read(8).is_err());
        }
    }

    #[test]
    fn finish_rejects_garbage() {
        let buf = [0b1010_0001u8];
        let mut r = BitReader::new(&buf);
        assert_eq!(r.read(3).ok(), Some(0b101));
        assert!(matches!(r.finish(), Err(DecodeError::Invalid(_))));
        let r = BitReader::new(&[0u8, 0]);
        assert!(matches!(r.finish(), Err(DecodeError::TrailingBytes { .. })));
    }
}
