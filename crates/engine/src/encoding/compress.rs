//! The optional zstd layer on top of every column encoding.
//!
//! A chunk whose id byte has [`ZSTD_FLAG`] set carries, after the id, one zstd frame (RFC 8878)
//! *without* its 4-byte magic number (always `28 B5 2F FD`, so storing it would only cost 4 bytes
//! per chunk). The frame header must declare the content size; decompressing it yields the plain
//! payload of the encoding `id & !ZSTD_FLAG`. The frame must span the rest of the chunk exactly.
//!
//! The encoder only keeps the zstd form when the plain payload is at least
//! [`MIN_ZSTD_INPUT`] bytes and zstd saves at least 10 % (VictoriaMetrics' rule): below that,
//! decompression cost buys nothing.

use std::cell::RefCell;

use super::DecodeError;

/// Set in the id byte when the payload is zstd-compressed.
pub const ZSTD_FLAG: u8 = 0x80;
/// Plain payloads shorter than this are never compressed.
pub const MIN_ZSTD_INPUT: usize = 128;
/// zstd level for column chunks: cheap to write, and column data is already dense.
const LEVEL: i32 = 1;
const ZSTD_MAGIC: [u8; 4] = 0xFD2F_B528_u32.to_le_bytes();

thread_local! {
    // Contexts are reused per thread: creating one costs more than compressing a small chunk.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// `out[start]` is an encoding id and `out[start + 1..]` its plain payload. Replaces the payload
/// with its zstd form (and flags the id) when that pays; otherwise leaves `out` untouched.
pub(crate) fn compress_if_pays(out: &mut Vec<u8>, start: usize) {
    let plain_len = out.len() - start - 1;
    if plain_len < MIN_ZSTD_INPUT {
        return;
    }
    let Some(frame) = compress(&out[start + 1..]) else {
        return;
    };
    let Some(body) = frame.strip_prefix(&ZSTD_MAGIC) else {
        return;
    };
    // Keep zstd only if it saves at least 10 %.
    if body.len() * 10 > plain_len * 9 {
        return;
    }
    out.truncate(start + 1);
    out[start] |= ZSTD_FLAG;
    out.extend_from_slice(body);
}

fn compress(plain: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = zstd::bulk::Compressor::new(LEVEL).ok();
        }
        // A failure here (allocation) only means the chunk stays uncompressed.
        slot.as_mut()?.compress(plain).ok()
    })
}

/// Decompresses a magic-less frame `body` whose declared content size must be at most `limit`.
pub(crate) fn decompress(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut frame = Vec::with_capacity(body.len() + ZSTD_MAGIC.len());
    frame.extend_from_slice(&ZSTD_MAGIC);
    frame.extend_from_slice(body);

    let frame_len = zstd::zstd_safe::find_frame_compressed_size(&frame)
        .map_err(|code| zstd_error(code, "malformed frame"))?;
    if frame_len != frame.len() {
        return Err(DecodeError::TrailingBytes {
            count: frame.len().saturating_sub(frame_len),
        });
    }
    let size = match zstd::zstd_safe::get_frame_content_size(&frame) {
        Ok(Some(size)) => size,
        Ok(None) => {
            return Err(DecodeError::Decompress(
                "frame does not declare its content size".into(),
            ));
        }
        Err(_) => return Err(DecodeError::Decompress("unreadable frame header".into())),
    };
    let size = match usize::try_from(size) {
        Ok(s) if s <= limit => s,
        _ => {
            return Err(DecodeError::TooLarge {
                what: "decompressed payload",
                size,
                limit: limit as u64,
            });
        }
    };
    let plain = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = zstd::bulk::Decompressor::new().ok();
        }
        match slot.as_mut() {
            Some(d) => d
                .decompress(&frame, size)
                .map_err(|e| DecodeError::Decompress(e.to_string())),
            None => Err(DecodeError::Decompress(
                "cannot allocate a zstd context".into(),
            )),
        }
    })?;
    if plain.len() != size {
        return Err(DecodeError::Decompress(format!(
            "frame declares {size} bytes but holds {}",
            plain.len()
        )));
    }
    Ok(plain)
}

fn zstd_error(code: usize, context: &str) -> DecodeError {
    DecodeError::Decompress(format!(
        "{context}: {}",
        zstd::zstd_safe::get_error_name(code)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_only_when_it_pays() {
        let mut small = vec![7u8; 1 + MIN_ZSTD_INPUT - 1];
        compress_if_pays(&mut small, 0);
        assert_eq!(small.len(), MIN_ZSTD_INPUT, "short payloads stay plain");

        let mut big = vec![0x05u8];
        big.extend(std::iter::repeat_n(42u8, 4096));
        compress_if_pays(&mut big, 0);
        assert_eq!(big[0], 0x05 | ZSTD_FLAG);
        assert!(
            big.len() < 64,
            "4 KiB of one byte compresses to {} B",
            big.len()
        );
        let plain = decompress(&big[1..], 4096).expect("round trip");
        assert_eq!(plain, vec![42u8; 4096]);
        assert!(matches!(
            decompress(&big[1..], 4095),
            Err(DecodeError::TooLarge { .. })
        ));
        let mut trailing = big[1..].to_vec();
        trailing.push(0);
        assert!(decompress(&trailing, 4096).is_err());
        assert!(decompress(&big[1..big.len() - 1], 4096).is_err());
    }

    #[test]
    fn incompressible_payload_stays_plain() {
        // A xorshift stream: zstd cannot save 10 % on it.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut chunk = vec![0x05u8];
        for _ in 0..512 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.push(x as u8);
        }
        let before = chunk.clone();
        compress_if_pays(&mut chunk, 0);
        assert_eq!(chunk, before);
    }
}
