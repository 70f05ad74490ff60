//! Length limits on the names a write may carry.
//!
//! Measure names, tag keys and field names live in the catalog, which the checkpoint rewrites
//! at every flush; tag keys and values are in every part's series table. Without a limit one
//! 10 MB measure name (accepted whole before, as any line under the 64 MiB body limit) made
//! every later flush of any group rewrite 10 MB of catalog.

use crate::batch::PointRef;
use crate::error::{Error, Result};

/// Longest measure name, tag key or field name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest tag value, in bytes.
pub const MAX_TAG_VALUE_BYTES: usize = 16 * 1024;

/// The first `n` characters of `s`, marked when cut (for error messages).
pub fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn too_long(what: &str, name: &str, limit: usize) -> Error {
    Error::InvalidInput(format!(
        "{what} '{}' is {} bytes, more than the limit of {limit}",
        shorten(name, 64),
        name.len()
    ))
}

/// Refuse a point with a name or tag value over its limit.
pub fn check_lengths(p: &PointRef<'_, '_>) -> Result<()> {
    if p.measure.len() > MAX_NAME_BYTES {
        return Err(too_long("measure name", p.measure, MAX_NAME_BYTES));
    }
    for (k, v) in p.tags {
        if k.len() > MAX_NAME_BYTES {
            return Err(too_long("tag key", k, MAX_NAME_BYTES));
        }
        if v.len() > MAX_TAG_VALUE_BYTES {
            return Err(too_long(
                &format!("value of tag '{}'", shorten(k, 64)),
                v,
                MAX_TAG_VALUE_BYTES,
            ));
        }
    }
    for (k, _) in p.fields {
        if k.len() > MAX_NAME_BYTES {
            return Err(too_long("field name", k, MAX_NAME_BYTES));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::PointBatch;
    use crate::model::{FieldValue, Point};

    fn point(measure: &str, tag: (&str, &str), field: &str) -> Point {
        Point {
            measure: measure.into(),
            tags: vec![(tag.0.into(), tag.1.into())],
            fields: vec![(field.into(), FieldValue::F64(1.0))],
            timestamp: 0,
        }
    }

    fn check(p: Point) -> Result<()> {
        let points = [p];
        let batch = PointBatch::from_points(&points);
        batch.iter().try_for_each(|p| check_lengths(&p))
    }

    #[test]
    fn names_at_the_limit_pass_and_longer_ones_are_refused_briefly() {
        let at = "m".repeat(MAX_NAME_BYTES);
        let over = "m".repeat(MAX_NAME_BYTES + 1);
        let value_at = "v".repeat(MAX_TAG_VALUE_BYTES);
        check(point(&at, (&at, &value_at), &at)).unwrap();
        for p in [
            point(&over, ("k", "v"), "f"),
            point("m", (&over, "v"), "f"),
            point("m", ("k", &"v".repeat(MAX_TAG_VALUE_BYTES + 1)), "f"),
            point("m", ("k", "v"), &over),
        ] {
            let e = check(p).unwrap_err().to_string();
            assert!(e.contains("more than the limit"), "{e}");
            assert!(e.len() < 300, "error message of {} bytes", e.len());
        }
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hé", 2), "hé");
    }
}
