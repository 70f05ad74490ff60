//! `GET|PUT|DELETE /api/v1/groups[/NAME]`: group settings.
//!
//! `PUT` merges the given keys into the group's current settings (or the defaults for a new
//! group), so `{"ttl":"7d"}` changes only the TTL. Durations may be given as ns integers
//! (`ttl_ns`, `segment_interval_ns`) or durations (`ttl`, `segment_interval`, the syntax of
//! `strata_engine::duration`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use strata_engine::GroupSettings;
use strata_engine::model::GroupCatalog;

use super::AppState;
use super::error::ApiError;

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let mut groups: Vec<Value> = state.engine.catalog().groups.iter().map(describe).collect();
    groups.extend(
        state
            .attachments
            .catalog_groups()
            .iter()
            .map(|(g, a)| describe_attached(g, a)),
    );
    Json(json!({ "groups": groups }))
}

/// An attached group: read-only, with where it comes from.
fn describe_attached(g: &GroupCatalog, a: &crate::attach::Attachment) -> Value {
    let mut v = describe(g);
    v["read_only"] = json!(true);
    v["attachment"] = json!({ "name": a.name, "repo": a.repo, "snapshot": a.snapshot() });
    v
}

/// Settings of an attached group are the snapshot's; changing or deleting them is refused.
fn refuse_attached(state: &AppState, name: &str) -> Result<(), ApiError> {
    match state.attachments.refuse_write(name) {
        Some(msg) => Err(ApiError::new(StatusCode::FORBIDDEN, msg)),
        None => Ok(()),
    }
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if let Some((g, a)) = state
        .attachments
        .catalog_groups()
        .into_iter()
        .find(|(g, _)| g.name == name)
    {
        return Ok(Json(describe_attached(&g, &a)));
    }
    let catalog = state.engine.catalog();
    let g = catalog
        .groups
        .iter()
        .find(|g| g.name == name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("group '{name}' not found")))?;
    Ok(Json(describe(g)))
}

pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(patch): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    refuse_attached(&state, &name)?;
    let current = state
        .engine
        .catalog()
        .groups
        .into_iter()
        .find(|g| g.name == name)
        .map(|g| g.settings)
        .unwrap_or_default();
    let settings = merge(current, patch)?;
    let engine = state.engine.clone();
    let (n, s) = (name.clone(), settings.clone());
    tokio::task::spawn_blocking(move || engine.put_group(&n, s)).await??;
    Ok(Json(json!({ "name": name, "settings": settings })))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    refuse_attached(&state, &name)?;
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || engine.delete_group(&name)).await??;
    Ok(StatusCode::NO_CONTENT)
}

fn describe(g: &GroupCatalog) -> Value {
    json!({ "name": g.name, "settings": g.settings, "measures": g.measures })
}

fn merge(current: GroupSettings, patch: Value) -> Result<GroupSettings, ApiError> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request(
            "group settings must be a JSON object",
        ));
    };
    let mut obj = match serde_json::to_value(&current) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    for (k, v) in patch {
        let (key, value) = match (k.as_str(), &v) {
            ("ttl" | "segment_interval", Value::String(s)) => {
                let ns = strata_engine::duration::parse_nanos(s)
                    .map_err(|e| ApiError::bad_request(format!("'{k}': {e}")))?;
                (format!("{k}_ns"), Value::from(ns))
            }
            _ if obj.contains_key(&k) => (k, v),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown group setting '{k}' (ttl, segment_interval, ttl_ns, segment_interval_ns, shards, backup_tier)"
                )));
            }
        };
        obj.insert(key, value);
    }
    let s: GroupSettings = serde_json::from_value(Value::Object(obj))
        .map_err(|e| ApiError::bad_request(format!("bad group settings: {e}")))?;
    if s.ttl_ns <= 0 || s.segment_interval_ns <= 0 || s.shards == 0 {
        return Err(ApiError::bad_request(
            "ttl, segment_interval and shards must be positive",
        ));
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_unset_keys_and_parses_durations() {
        let s = merge(
            GroupSettings::default(),
            json!({"ttl":"7days","shards":4,"backup_tier":"hot"}),
        )
        .unwrap();
        assert_eq!(s.ttl_ns, 7 * strata_engine::model::NANOS_PER_DAY);
        assert_eq!(s.shards, 4);
        assert_eq!(s.backup_tier, "hot");
        assert_eq!(
            s.segment_interval_ns,
            GroupSettings::default().segment_interval_ns
        );
    }

    #[test]
    fn merge_rejects_unknown_keys_and_nonsense() {
        assert!(merge(GroupSettings::default(), json!({"tll":"1d"})).is_err());
        assert!(merge(GroupSettings::default(), json!({"shards":0})).is_err());
        assert!(merge(GroupSettings::default(), json!({"ttl":"soon"})).is_err());
        assert!(merge(GroupSettings::default(), json!([1])).is_err());
    }
}
