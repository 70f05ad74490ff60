//! The `SHOW` statements: databases (groups), retention policies (a group's TTL), measurements,
//! tag keys and values (read from the series a scan finds), field keys (the catalog).

use std::collections::BTreeSet;

use strata_engine::ScanRequest;
use strata_engine::model::GroupCatalog;

use super::ast::{KeyFilter, ShowMeasurements, ShowTagValues, ShowTags};
use super::cond::{self, Filter};
use super::error::ExecError;
use super::response::{Row, Val};
use super::{Context, Database, measures_of};

pub(super) fn databases(db: &dyn Database) -> Vec<Row> {
    vec![Row {
        name: "databases".into(),
        columns: vec!["name".into()],
        values: db
            .catalog()
            .groups
            .iter()
            .map(|g| vec![Val::Str(g.name.clone())])
            .collect(),
        ..Row::default()
    }]
}

fn group(db: &dyn Database, name: &str) -> Result<GroupCatalog, ExecError> {
    db.catalog()
        .groups
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| ExecError::DatabaseNotFound(name.to_string()))
}

/// One policy, `autogen`, whose duration is the group's TTL and whose shard group duration is
/// its segment interval.
pub(super) fn retention_policies(
    db: &dyn Database,
    ctx: &Context,
    on: &Option<String>,
) -> Result<Vec<Row>, ExecError> {
    let g = group(db, &ctx.database_on(on)?)?;
    Ok(vec![Row {
        columns: [
            "name",
            "duration",
            "shardGroupDuration",
            "replicaN",
            "default",
        ]
        .map(String::from)
        .to_vec(),
        values: vec![vec![
            Val::Str("autogen".into()),
            Val::Str(go_duration(g.settings.ttl_ns)),
            Val::Str(go_duration(g.settings.segment_interval_ns)),
            Val::Int(1),
            Val::Bool(true),
        ]],
        ..Row::default()
    }])
}

/// Go's `time.Duration` string for whole seconds: `720h0m0s`, `0s`.
fn go_duration(ns: i64) -> String {
    let s = ns / 1_000_000_000;
    if s <= 0 {
        return "0s".into();
    }
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// The tag sets of the series of `measure` that pass `filter`.
fn series_tags(
    db: &dyn Database,
    ctx: &Context,
    group: &str,
    measure: &str,
    filter: &Filter,
) -> Result<Vec<Vec<(String, String)>>, ExecError> {
    let req = ScanRequest {
        group: group.to_string(),
        measure: measure.to_string(),
        from: filter.from,
        to: filter.to,
        matchers: filter.matchers.clone(),
        fields: None,
    };
    // One series' data in memory at a time: only the tag sets are kept.
    let mut out = Vec::new();
    super::scan::each_series_tags(db, &req, &ctx.limits, &mut |t| {
        if filter.keeps(&t) {
            out.push(t);
        }
    })?;
    Ok(out)
}

fn page<T>(v: Vec<T>, limit: Option<usize>, offset: usize) -> Vec<T> {
    v.into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect()
}

fn filter_for(
    ctx: &Context,
    g: &GroupCatalog,
    measure: &str,
    cond: Option<&super::ast::Expr>,
) -> Result<Filter, ExecError> {
    let fields: BTreeSet<&str> = g
        .measures
        .iter()
        .filter(|m| m.name == measure)
        .flat_map(|m| m.fields.iter().map(|(f, _)| f.as_str()))
        .collect();
    Filter::from_cond(cond, ctx.now, &|n| fields.contains(n))
}

pub(super) fn measurements(
    db: &dyn Database,
    ctx: &Context,
    s: &ShowMeasurements,
) -> Result<Vec<Row>, ExecError> {
    let gname = ctx.database_on(&s.on)?;
    let g = group(db, &gname)?;
    let re = match &s.with {
        Some((true, r)) => Some(cond::regex(r)?),
        _ => None,
    };
    let mut names = Vec::new();
    for m in &g.measures {
        match &s.with {
            Some((false, n)) if *n != m.name => continue,
            Some((true, _)) if !re.as_ref().is_some_and(|r| r.is_match(&m.name)) => continue,
            _ => {}
        }
        if s.cond.is_some() {
            let f = filter_for(ctx, &g, &m.name, s.cond.as_ref())?;
            if series_tags(db, ctx, &gname, &m.name, &f)?.is_empty() {
                continue;
            }
        }
        names.push(m.name.clone());
    }
    names.sort();
    let values: Vec<Vec<Val>> = page(names, s.limit, s.offset)
        .into_iter()
        .map(|n| vec![Val::Str(n)])
        .collect();
    if values.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Row {
        name: "measurements".into(),
        columns: vec!["name".into()],
        values,
        ..Row::default()
    }])
}

pub(super) fn tag_keys(
    db: &dyn Database,
    ctx: &Context,
    s: &ShowTags,
) -> Result<Vec<Row>, ExecError> {
    let gname = ctx.database_on(&s.on)?;
    let g = group(db, &gname)?;
    let mut out = Vec::new();
    for m in measures_of(&g, &s.from)? {
        let f = filter_for(ctx, &g, &m, s.cond.as_ref())?;
        let keys: BTreeSet<String> = series_tags(db, ctx, &gname, &m, &f)?
            .into_iter()
            .flat_map(|t| t.into_iter().map(|(k, _)| k))
            .collect();
        let values: Vec<Vec<Val>> = page(keys.into_iter().collect(), s.limit, s.offset)
            .into_iter()
            .map(|k| vec![Val::Str(k)])
            .collect();
        if !values.is_empty() {
            out.push(Row {
                name: m,
                columns: vec!["tagKey".into()],
                values,
                ..Row::default()
            });
        }
    }
    Ok(out)
}

pub(super) fn tag_values(
    db: &dyn Database,
    ctx: &Context,
    s: &ShowTagValues,
) -> Result<Vec<Row>, ExecError> {
    let b = &s.base;
    let gname = ctx.database_on(&b.on)?;
    let g = group(db, &gname)?;
    let key_ok: Box<dyn Fn(&str) -> bool> = match &s.key {
        KeyFilter::Eq(k) => {
            let k = k.clone();
            Box::new(move |x| x == k)
        }
        KeyFilter::Neq(k) => {
            let k = k.clone();
            Box::new(move |x| x != k)
        }
        KeyFilter::In(ks) => {
            let ks = ks.clone();
            Box::new(move |x| ks.iter().any(|k| k == x))
        }
        KeyFilter::Regex(r) => {
            let re = cond::regex(r)?;
            Box::new(move |x| re.is_match(x))
        }
        KeyFilter::NotRegex(r) => {
            let re = cond::regex(r)?;
            Box::new(move |x| !re.is_match(x))
        }
    };
    let mut out = Vec::new();
    for m in measures_of(&g, &b.from)? {
        let f = filter_for(ctx, &g, &m, b.cond.as_ref())?;
        let pairs: BTreeSet<(String, String)> = series_tags(db, ctx, &gname, &m, &f)?
            .into_iter()
            .flatten()
            .filter(|(k, _)| key_ok(k))
            .collect();
        let values: Vec<Vec<Val>> = page(pairs.into_iter().collect(), b.limit, b.offset)
            .into_iter()
            .map(|(k, v)| vec![Val::Str(k), Val::Str(v)])
            .collect();
        if !values.is_empty() {
            out.push(Row {
                name: m,
                columns: vec!["key".into(), "value".into()],
                values,
                ..Row::default()
            });
        }
    }
    Ok(out)
}

pub(super) fn field_keys(
    db: &dyn Database,
    ctx: &Context,
    s: &ShowTags,
) -> Result<Vec<Row>, ExecError> {
    let g = group(db, &ctx.database_on(&s.on)?)?;
    if s.cond.is_some() {
        return Err(ExecError::unsupported(
            "SHOW FIELD KEYS does not take a WHERE clause",
        ));
    }
    let mut out = Vec::new();
    for m in measures_of(&g, &s.from)? {
        let Some(mc) = g.measures.iter().find(|x| x.name == m) else {
            continue;
        };
        let values: Vec<Vec<Val>> = page(mc.fields.clone(), s.limit, s.offset)
            .into_iter()
            .map(|(f, t)| vec![Val::Str(f), Val::Str(t.to_string())])
            .collect();
        if !values.is_empty() {
            out.push(Row {
                name: m,
                columns: vec!["fieldKey".into(), "fieldType".into()],
                values,
                ..Row::default()
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(super::go_duration(30 * 86_400_000_000_000), "720h0m0s");
        assert_eq!(super::go_duration(90 * 1_000_000_000), "1m30s");
        assert_eq!(super::go_duration(0), "0s");
    }
}
