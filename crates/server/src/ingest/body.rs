//! Request bodies: size limits and decompression (gzip for line protocol, snappy block format
//! for remote write), applied to the *decoded* size so a small bomb cannot exhaust memory.

use std::io::Read;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("bad {encoding} body: {detail}")]
    Corrupt {
        encoding: &'static str,
        detail: String,
    },
    #[error("unsupported Content-Encoding '{0}' (identity, gzip)")]
    UnsupportedEncoding(String),
}

/// Decode a line-protocol body by its `Content-Encoding`.
pub fn decode_line_body(
    body: bytes::Bytes,
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    match content_encoding.map(str::trim) {
        None | Some("") | Some("identity") => {
            if body.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            Ok(body)
        }
        Some(e) if e.eq_ignore_ascii_case("gzip") => gunzip(&body, limit).map(bytes::Bytes::from),
        Some(other) => Err(BodyError::UnsupportedEncoding(other.to_string())),
    }
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    dec.read_to_end(&mut out).map_err(|e| BodyError::Corrupt {
        encoding: "gzip",
        detail: e.to_string(),
    })?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(out)
}

/// Decompress a remote-write body (snappy block format, as Prometheus sends it).
pub fn unsnappy(body: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let corrupt = |e: snap::Error| BodyError::Corrupt {
        encoding: "snappy",
        detail: e.to_string(),
    };
    let len = snap::raw::decompress_len(body).map_err(corrupt)?;
    if len > limit {
        return Err(BodyError::TooLarge { limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(corrupt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_round_trip_and_bomb_limit() {
        let body = bytes::Bytes::from(gz(b"m x=1"));
        let out = decode_line_body(body, Some("gzip"), 100).unwrap();
        assert_eq!(&out[..], b"m x=1");
        let bomb = bytes::Bytes::from(gz(&vec![b'a'; 10_000]));
        assert!(bomb.len() < 200);
        assert!(matches!(
            decode_line_body(bomb, Some("GZIP"), 1_000),
            Err(BodyError::TooLarge { limit: 1_000 })
        ));
        assert!(matches!(
            decode_line_body(bytes::Bytes::from_static(b"nope"), Some("gzip"), 100),
            Err(BodyError::Corrupt { .. })
        ));
    }

    #[test]
    fn identity_limit_and_unknown_encoding() {
        let b = bytes::Bytes::from_static(b"0123456789");
        assert!(decode_line_body(b.clone(), None, 10).is_ok());
        assert!(matches!(
            decode_line_body(b.clone(), None, 9),
            Err(BodyError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_line_body(b, Some("br"), 10),
            Err(BodyError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn snappy_limit_is_checked_before_decompressing() {
        let c = snap::raw::Encoder::new()
            .compress_vec(&[7u8; 5000])
            .unwrap();
        assert_eq!(unsnappy(&c, 5000).unwrap().len(), 5000);
        assert!(matches!(
            unsnappy(&c, 4999),
            Err(BodyError::TooLarge { .. })
        ));
        assert!(matches!(
            unsnappy(b"\xff\xff\xff", 10),
            Err(BodyError::Corrupt { .. })
        ));
    }
}
