//! The live catalog: groups with their settings, measures and field types.
//!
//! A field keeps the type it was first written with. Validation of a batch happens before any of
//! it is applied, so a conflict (also inside one batch) rejects the whole batch.

use std::collections::{BTreeMap, HashMap};

use crate::batch::{PointBatch, PointRef};
use crate::error::{Error, Result};
use crate::model::{Catalog, FieldType, GroupCatalog, GroupSettings, MeasureCatalog, Point};

#[derive(Debug, Clone, Default)]
pub struct CatalogState {
    pub groups: BTreeMap<String, GroupState>,
}

#[derive(Debug, Clone, Default)]
pub struct GroupState {
    pub settings: GroupSettings,
    pub measures: BTreeMap<String, BTreeMap<String, FieldType>>,
}

/// Limits on the width of points and measures (see `EngineOptions`).
#[derive(Debug, Clone, Copy)]
pub struct FieldCaps {
    pub per_point: usize,
    pub per_measure: usize,
}

impl Default for FieldCaps {
    fn default() -> Self {
        FieldCaps {
            per_point: crate::engine::DEFAULT_MAX_FIELDS_PER_POINT,
            per_measure: crate::engine::DEFAULT_MAX_FIELDS_PER_MEASURE,
        }
    }
}

/// What a validated batch adds to the catalog.
#[derive(Debug, Default)]
pub struct CatalogDelta {
    pub new_fields: Vec<(String, String, FieldType)>,
}

#[cfg(test)]
impl CatalogDelta {
    pub fn is_empty(&self) -> bool {
        self.new_fields.is_empty()
    }
}

/// Group names become directory names: keep them to a safe alphabet.
pub fn validate_group_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "group name '{name}': use 1-128 characters of [A-Za-z0-9_.-], not starting with '.'"
        )))
    }
}

pub fn validate_settings(s: &GroupSettings) -> Result<()> {
    const HOUR: i64 = 3_600_000_000_000;
    if s.segment_interval_ns < HOUR || s.segment_interval_ns > 30 * crate::model::NANOS_PER_DAY {
        return Err(Error::InvalidInput(
            "segment interval must be between 1 hour and 30 days".into(),
        ));
    }
    if s.ttl_ns <= 0 {
        return Err(Error::InvalidInput("ttl must be positive".into()));
    }
    if s.shards == 0 || s.shards > 64 {
        return Err(Error::InvalidInput(
            "shards must be between 1 and 64".into(),
        ));
    }
    Ok(())
}

fn validate_point(p: &PointRef<'_, '_>) -> Result<()> {
    crate::names::check_lengths(p)?;
    let bad = |what: &str| {
        Err(Error::InvalidInput(format!(
            "measure '{}': {what}",
            p.measure
        )))
    };
    if p.measure.is_empty() || p.measure.contains('\0') {
        return Err(Error::InvalidInput(
            "measure name must be non-empty and contain no NUL".into(),
        ));
    }
    if p.fields.is_empty() {
        return bad("a point needs at least one field");
    }
    if !crate::model::timestamp_in_range(p.timestamp) {
        return bad(&crate::model::timestamp_range_error(p.timestamp));
    }
    for (k, v) in p.tags {
        if k.is_empty() || k.contains('\0') || v.contains('\0') {
            return bad("tag keys must be non-empty; tags must contain no NUL");
        }
    }
    for (k, _) in p.fields {
        if k.is_empty() {
            return bad("field names must be non-empty");
        }
    }
    Ok(())
}

/// Same measure and the same field names and types in the same order.
fn same_schema(a: &PointRef<'_, '_>, b: &PointRef<'_, '_>) -> bool {
    a.measure == b.measure
        && a.fields.len() == b.fields.len()
        && a.fields
            .iter()
            .zip(b.fields)
            .all(|((ka, va), (kb, vb))| ka == kb && va.field_type() == vb.field_type())
}

impl CatalogState {
    /// [`CatalogState::validate_batch`] for owned points.
    #[cfg(test)]
    pub fn validate(&self, group: &str, points: &[Point]) -> Result<CatalogDelta> {
        self.validate_batch(
            group,
            &PointBatch::from_points(points),
            &FieldCaps::default(),
        )
    }

    /// Check a batch against the catalog without changing it. Linear in the batch's fields:
    /// new fields are looked up in a hash map, not searched (a point of 100k fields took a
    /// minute).
    pub fn validate_batch(
        &self,
        group: &str,
        batch: &PointBatch<'_>,
        caps: &FieldCaps,
    ) -> Result<CatalogDelta> {
        validate_group_name(group)?;
        let g = self.groups.get(group);
        let mut delta = CatalogDelta::default();
        let mut new: HashMap<(&str, &str), FieldType> = HashMap::new();
        let mut new_per_measure: HashMap<&str, usize> = HashMap::new();
        let mut known: Option<(&str, Option<&BTreeMap<String, FieldType>>)> = None;
        let mut prev: Option<PointRef<'_, '_>> = None;
        for (i, p) in batch.iter().enumerate() {
            validate_point(&p)?;
            if p.fields.len() > caps.per_point {
                return Err(Error::InvalidInput(format!(
                    "point {} of the batch (measure '{}') has {} fields, more than the limit \
                     of {} per point (max_fields_per_point)",
                    i + 1,
                    p.measure,
                    p.fields.len(),
                    caps.per_point
                )));
            }
            // Points of a batch mostly repeat the previous point's measure and field names and
            // types: those were checked already, skip the schema lookups.
            if prev.is_some_and(|q| same_schema(&q, &p)) {
                continue;
            }
            prev = Some(p);
            // Batches are mostly one measure: look its schema up once per run of points.
            let schema = match known {
                Some((m, s)) if m == p.measure => s,
                _ => {
                    let s = g.and_then(|g| g.measures.get(p.measure));
                    known = Some((p.measure, s));
                    s
                }
            };
            for (name, value) in p.fields {
                let t = value.field_type();
                let existing = schema
                    .and_then(|m| m.get(name.as_ref()))
                    .copied()
                    .or_else(|| new.get(&(p.measure, name.as_ref())).copied());
                match existing {
                    Some(e) if e != t => {
                        return Err(Error::FieldTypeConflict {
                            measure: p.measure.to_string(),
                            field: name.to_string(),
                            existing: e,
                            attempted: t,
                        });
                    }
                    Some(_) => {}
                    None => {
                        let added = new_per_measure.entry(p.measure).or_default();
                        *added += 1;
                        let total = schema.map_or(0, BTreeMap::len) + *added;
                        if total > caps.per_measure {
                            return Err(Error::InvalidInput(format!(
                                "point {} of the batch: field '{name}' would give measure '{}' \
                                 {total} fields, more than the limit of {} per measure \
                                 (max_fields_per_measure)",
                                i + 1,
                                p.measure,
                                caps.per_measure
                            )));
                        }
                        new.insert((p.measure, name.as_ref()), t);
                        delta
                            .new_fields
                            .push((p.measure.to_string(), name.to_string(), t));
                    }
                }
            }
        }
        Ok(delta)
    }

    pub fn apply(&mut self, group: &str, delta: CatalogDelta) {
        let g = self.groups.entry(group.to_string()).or_default();
        for (m, f, t) in delta.new_fields {
            g.measures.entry(m).or_default().entry(f).or_insert(t);
        }
    }

    /// Replay helper: validate and apply in one go (a replayed batch was valid when written).
    pub fn apply_points(&mut self, group: &str, points: &[Point]) {
        let g = self.groups.entry(group.to_string()).or_default();
        for p in points {
            let m = g.measures.entry(p.measure.clone()).or_default();
            for (name, v) in &p.fields {
                m.entry(name.clone()).or_insert(v.field_type());
            }
        }
    }

    pub fn settings(&self, group: &str) -> GroupSettings {
        self.groups
            .get(group)
            .map(|g| g.settings.clone())
            .unwrap_or_default()
    }

    pub fn to_public(&self) -> Catalog {
        Catalog {
            groups: self
                .groups
                .iter()
                .map(|(name, g)| GroupCatalog {
                    name: name.clone(),
                    settings: g.settings.clone(),
                    measures: g
                        .measures
                        .iter()
                        .map(|(m, f)| MeasureCatalog {
                            name: m.clone(),
                            fields: f.iter().map(|(k, t)| (k.clone(), *t)).collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn from_public(c: &Catalog) -> Self {
        CatalogState {
            groups: c
                .groups
                .iter()
                .map(|g| {
                    let measures = g
                        .measures
                        .iter()
                        .map(|m| (m.name.clone(), m.fields.iter().cloned().collect()))
                        .collect();
                    (
                        g.name.clone(),
                        GroupState {
                            settings: g.settings.clone(),
                            measures,
                        },
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldValue;

    fn pt(m: &str, f: &str, v: FieldValue) -> Point {
        Point {
            measure: m.into(),
            tags: vec![],
            fields: vec![(f.into(), v)],
            timestamp: 0,
        }
    }

    #[test]
    fn conflict_inside_one_batch_is_rejected() {
        let c = CatalogState::default();
        let err = c
            .validate(
                "g",
                &[
                    pt("cpu", "u", FieldValue::F64(1.0)),
                    pt("cpu", "u", FieldValue::I64(1)),
                ],
            )
            .unwrap_err();
        assert!(matches!(err, Error::FieldTypeConflict { .. }), "{err}");
    }

    #[test]
    fn conflict_with_catalog_is_rejected_and_names_types() {
        let mut c = CatalogState::default();
        let d = c
            .validate("g", &[pt("cpu", "u", FieldValue::F64(1.0))])
            .unwrap();
        c.apply("g", d);
        let err = c
            .validate("g", &[pt("cpu", "u", FieldValue::Str("x".into()))])
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("cpu") && msg.contains("float") && msg.contains("string"),
            "{msg}"
        );
        assert!(
            c.validate("g", &[pt("cpu", "u", FieldValue::F64(2.0))])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_group_names_are_rejected() {
        for n in ["", "..", "a/b", ".hidden", "a b"] {
            assert!(validate_group_name(n).is_err(), "{n}");
        }
        validate_group_name("metrics_1.prod-eu").unwrap();
    }
}
