//! The data model: group → measure → series (measure + sorted tag set) → points.

use serde::{Deserialize, Serialize};

/// Nanoseconds since the Unix epoch.
pub type Timestamp = i64;

/// Earliest timestamp a write may carry: 1678-01-01T00:00:00Z.
///
/// The valid range leaves about 100 days of headroom at both ends of `i64`, more than the
/// longest segment interval (30 days), so a segment's start and end always fit and time
/// arithmetic on stored points cannot overflow. Points outside it are refused at ingest.
pub const MIN_TIMESTAMP: Timestamp = -9_214_560_000_000_000_000;
/// Latest timestamp a write may carry: 2261-12-31T23:59:59.999999999Z.
pub const MAX_TIMESTAMP: Timestamp = 9_214_646_399_999_999_999;

/// Whether `ts` lies in `[MIN_TIMESTAMP, MAX_TIMESTAMP]`.
pub fn timestamp_in_range(ts: Timestamp) -> bool {
    (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&ts)
}

/// The one-line reason a timestamp is refused (shared by the engine and the ingest parsers).
pub fn timestamp_range_error(ts: Timestamp) -> String {
    format!(
        "timestamp {ts} ns is outside the valid range \
         [{MIN_TIMESTAMP}, {MAX_TIMESTAMP}] (1678-01-01 to 2261-12-31 UTC)"
    )
}

/// Settings of a group. Groups are created on first write with [`GroupSettings::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupSettings {
    /// Data older than this (by segment end) is dropped, in nanoseconds. Default 30 days.
    pub ttl_ns: i64,
    /// Width of a time segment in nanoseconds (the TTL drop unit). Default 1 day.
    pub segment_interval_ns: i64,
    /// Shards per segment. Default 2.
    pub shards: u32,
    /// Free-form backup tier label (hot / warm / cold). Default "warm".
    pub backup_tier: String,
}

pub const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            ttl_ns: 30 * NANOS_PER_DAY,
            segment_interval_ns: NANOS_PER_DAY,
            shards: 2,
            backup_tier: "warm".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    F64,
    I64,
    Bool,
    Str,
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FieldType::F64 => "float",
            FieldType::I64 => "integer",
            FieldType::Bool => "boolean",
            FieldType::Str => "string",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FieldValue {
    F64(f64),
    I64(i64),
    Bool(bool),
    Str(String),
}

impl FieldValue {
    pub fn field_type(&self) -> FieldType {
        match self {
            FieldValue::F64(_) => FieldType::F64,
            FieldValue::I64(_) => FieldType::I64,
            FieldValue::Bool(_) => FieldType::Bool,
            FieldValue::Str(_) => FieldType::Str,
        }
    }
}

/// One point to write. `tags` need not be sorted; the engine canonicalises the series key.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub measure: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, FieldValue)>,
    pub timestamp: Timestamp,
}

/// The catalog: groups with settings, measures and their field types.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub groups: Vec<GroupCatalog>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCatalog {
    pub name: String,
    pub settings: GroupSettings,
    pub measures: Vec<MeasureCatalog>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureCatalog {
    pub name: String,
    /// Field name → type, sorted by name.
    pub fields: Vec<(String, FieldType)>,
}
