//! The catalog as a backup repository records it in each snapshot manifest (normative:
//! `docs/format/repository.md`, "Catalog"). Its own types, versioned with the repository
//! format: the engine's in-memory [`Catalog`] may change without changing what a repository
//! holds, and a repository written by any earlier version keeps restoring.
//!
//! Version 1 has exactly the JSON shape Strata v1 wrote (the serde form of its
//! `model::Catalog`, without a `version` field); a missing `version` therefore reads as 1.

use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::error::{Error, Result};
use crate::model::{Catalog, FieldType, GroupCatalog, GroupSettings, MeasureCatalog};

/// Catalog export version written by this build.
pub const CATALOG_EXPORT_VERSION: u32 = 1;

fn first_version() -> u32 {
    1
}

/// Groups with their settings, measures with their field types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogExport {
    #[serde(default = "first_version")]
    pub version: u32,
    pub groups: Vec<GroupExport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupExport {
    pub name: String,
    pub settings: SettingsExport,
    pub measures: Vec<MeasureExport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsExport {
    pub ttl_ns: i64,
    pub segment_interval_ns: i64,
    pub shards: u32,
    pub backup_tier: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureExport {
    pub name: String,
    /// Field name → type, sorted by name.
    pub fields: Vec<(String, FieldTypeExport)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldTypeExport {
    F64,
    I64,
    Bool,
    Str,
}

impl Default for CatalogExport {
    fn default() -> Self {
        CatalogExport {
            version: CATALOG_EXPORT_VERSION,
            groups: Vec::new(),
        }
    }
}

impl From<FieldType> for FieldTypeExport {
    fn from(t: FieldType) -> Self {
        match t {
            FieldType::F64 => FieldTypeExport::F64,
            FieldType::I64 => FieldTypeExport::I64,
            FieldType::Bool => FieldTypeExport::Bool,
            FieldType::Str => FieldTypeExport::Str,
        }
    }
}

impl From<FieldTypeExport> for FieldType {
    fn from(t: FieldTypeExport) -> Self {
        match t {
            FieldTypeExport::F64 => FieldType::F64,
            FieldTypeExport::I64 => FieldType::I64,
            FieldTypeExport::Bool => FieldType::Bool,
            FieldTypeExport::Str => FieldType::Str,
        }
    }
}

/// The catalog of an open engine, as a repository records it.
pub fn export_catalog(engine: &Engine) -> CatalogExport {
    CatalogExport::from_catalog(&engine.catalog())
}

impl CatalogExport {
    pub fn from_catalog(c: &Catalog) -> CatalogExport {
        CatalogExport {
            version: CATALOG_EXPORT_VERSION,
            groups: c
                .groups
                .iter()
                .map(|g| GroupExport {
                    name: g.name.clone(),
                    settings: SettingsExport {
                        ttl_ns: g.settings.ttl_ns,
                        segment_interval_ns: g.settings.segment_interval_ns,
                        shards: g.settings.shards,
                        backup_tier: g.settings.backup_tier.clone(),
                    },
                    measures: g
                        .measures
                        .iter()
                        .map(|m| MeasureExport {
                            name: m.name.clone(),
                            fields: m
                                .fields
                                .iter()
                                .map(|(n, t)| (n.clone(), (*t).into()))
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Whether this build reads the export's version.
    pub fn is_supported(&self) -> bool {
        (1..=CATALOG_EXPORT_VERSION).contains(&self.version)
    }

    /// The engine's catalog for an export (of any supported version), checked: a version
    /// this build does not know, or settings no engine could have written, are refused.
    pub fn to_catalog(&self) -> Result<Catalog> {
        if !self.is_supported() {
            return Err(Error::InvalidInput(format!(
                "catalog export version {} (this build reads up to {CATALOG_EXPORT_VERSION})",
                self.version
            )));
        }
        let mut groups = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let s = &g.settings;
            if s.shards == 0 || s.segment_interval_ns <= 0 || s.ttl_ns <= 0 {
                return Err(Error::InvalidInput(format!(
                    "catalog group '{}': shards, segment interval and TTL must be positive",
                    g.name
                )));
            }
            groups.push(GroupCatalog {
                name: g.name.clone(),
                settings: GroupSettings {
                    ttl_ns: s.ttl_ns,
                    segment_interval_ns: s.segment_interval_ns,
                    shards: s.shards,
                    backup_tier: s.backup_tier.clone(),
                },
                measures: g
                    .measures
                    .iter()
                    .map(|m| MeasureCatalog {
                        name: m.name.clone(),
                        fields: m
                            .fields
                            .iter()
                            .map(|(n, t)| (n.clone(), (*t).into()))
                            .collect(),
                    })
                    .collect(),
            });
        }
        Ok(Catalog { groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Strata v1 wrote as a manifest's `catalog` (serde_json of `model::Catalog`).
    const V1: &str = r#"{"groups":[{"name":"metrics","settings":{"ttl_ns":2592000000000000,"segment_interval_ns":86400000000000,"shards":2,"backup_tier":"warm"},"measures":[{"name":"cpu","fields":[["idle","f64"],["n","i64"],["ok","bool"],["s","str"]]}]}]}"#;

    #[test]
    fn reads_the_v1_catalog_and_round_trips() {
        let e: CatalogExport = serde_json::from_str(V1).unwrap();
        assert_eq!(e.version, 1);
        let c = e.to_catalog().unwrap();
        assert_eq!(
            c.groups[0].measures[0].fields[3],
            ("s".into(), FieldType::Str)
        );
        // The v1 shape is exactly the engine type's serde form of that time.
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::from_str::<serde_json::Value>(V1).unwrap()
        );
        let back = CatalogExport::from_catalog(&c);
        assert_eq!(back, e);
        let json = serde_json::to_string(&back).unwrap();
        assert!(json.starts_with(r#"{"version":1,"groups":"#), "{json}");
        assert_eq!(serde_json::from_str::<CatalogExport>(&json).unwrap(), e);
    }

    #[test]
    fn refuses_unknown_versions_and_impossible_settings() {
        let mut e: CatalogExport = serde_json::from_str(V1).unwrap();
        e.version = 2;
        assert!(e.to_catalog().is_err());
        let mut e: CatalogExport = serde_json::from_str(V1).unwrap();
        e.groups[0].settings.shards = 0;
        assert!(e.to_catalog().is_err());
    }
}
