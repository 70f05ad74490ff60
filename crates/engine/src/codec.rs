//! Column codecs used by the part format: a thin seam over [`crate::encoding`] so the part code
//! names one module whatever the encodings in force.

pub use crate::encoding::{
    DecodeError, decode_bool, decode_f64, decode_i64, decode_str, decode_timestamps, encode_bool,
    encode_f64, encode_i64, encode_str, encode_timestamps,
};
