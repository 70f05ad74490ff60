//! `SELECT`: planned onto the JSON API's [`Query`] (one per aggregate function), run by
//! [`crate::execute`] over one scan, then shaped as InfluxDB does: one series per measurement
//! and `GROUP BY` tag set, `fill()`, `LIMIT`/`OFFSET`, `ORDER BY time DESC`.

use std::collections::{BTreeMap, BTreeSet};

use strata_engine::{ScanRequest, SeriesData};

use super::ast::{Cast, Expr, Fill, Select};
use super::cond::Filter;
use super::error::ExecError;
use super::response::{Row, Val};
use super::{Context, Database, measures_of};
use crate::{Agg, AggFn, Order, Query, QueryResult};

/// Buckets one series may have after `fill()`.
const MAX_BUCKETS: i64 = 1_000_000;

/// What one `SELECT` column is.
#[derive(Debug, Clone)]
enum Column {
    Agg { func: AggFn, field: String },
    Field(String),
    Tag(String),
}

pub(super) fn run(db: &dyn Database, ctx: &Context, s: &Select) -> Result<Vec<Row>, ExecError> {
    let group = ctx.database_of(&s.from)?;
    let catalog = db.catalog();
    let Some(g) = catalog.groups.iter().find(|g| g.name == group) else {
        return Err(ExecError::DatabaseNotFound(group));
    };
    let mut rows = Vec::new();
    for m in measures_of(g, &s.from)? {
        // A measurement that does not exist has no series: an empty answer, as in InfluxDB.
        let Some(mc) = g.measures.iter().find(|x| x.name == m) else {
            continue;
        };
        let fields: BTreeSet<String> = mc.fields.iter().map(|(f, _)| f.clone()).collect();
        rows.extend(run_measure(db, ctx, s, &group, &m, &fields)?);
    }
    let rows: Vec<Row> = rows.into_iter().skip(s.soffset).collect();
    Ok(match s.slimit {
        Some(n) => rows.into_iter().take(n).collect(),
        None => rows,
    })
}

fn run_measure(
    db: &dyn Database,
    ctx: &Context,
    s: &Select,
    group: &str,
    measure: &str,
    fields: &BTreeSet<String>,
) -> Result<Vec<Row>, ExecError> {
    let is_field = |n: &str| fields.contains(n);
    let mut filter = Filter::from_cond(s.cond.as_ref(), ctx.now, &is_field)?;
    let (columns, names) = columns(s, fields)?;
    let aggregate = columns.iter().any(|c| matches!(c, Column::Agg { .. }));
    if aggregate && columns.iter().any(|c| !matches!(c, Column::Agg { .. })) {
        return Err(ExecError::Invalid(
            "mixing aggregate and non-aggregate queries is not supported".into(),
        ));
    }
    if !aggregate && s.group_by.time.is_some() {
        return Err(ExecError::Invalid(
            "GROUP BY requires at least one aggregate function".into(),
        ));
    }
    if !columns
        .iter()
        .any(|c| matches!(c, Column::Agg { .. } | Column::Field(_)))
    {
        // Only tags: an error when every one was cast `::tag`; otherwise the names are not
        // fields of this measurement, which has nothing for them (InfluxDB answers empty).
        let all_cast = s.fields.iter().all(|f| {
            matches!(
                &f.expr,
                Expr::Ident {
                    cast: Some(Cast::Tag),
                    ..
                }
            ) || matches!(&f.expr, Expr::Ident { name, .. } if name.eq_ignore_ascii_case("time"))
        });
        if all_cast {
            return Err(ExecError::Invalid(
                "at least 1 non-time field must be queried".into(),
            ));
        }
        return Ok(Vec::new());
    }
    if aggregate && s.group_by.time.is_some() && filter.to == i64::MAX {
        // InfluxDB ends a GROUP BY time() query without an upper bound at now().
        filter.to = ctx.now.saturating_add(1);
    }
    let wanted: Vec<String> = columns
        .iter()
        .filter_map(|c| match c {
            Column::Agg { field, .. } | Column::Field(field) => Some(field.clone()),
            Column::Tag(_) => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let base = Query {
        group: group.to_string(),
        measure: measure.to_string(),
        from: filter.from,
        to: filter.to,
        matchers: filter.matchers.clone(),
        fields: Some(wanted),
        agg: None,
        group_by: Vec::new(),
        limit: None,
        order: Order::Asc,
    };
    if base.from >= base.to {
        return Ok(Vec::new());
    }
    // One scan through the JSON API's plan; the conditions with OR are applied to its series.
    // What it keeps is charged to the query's budget until the rows are shaped.
    let (data, _held) =
        super::scan::collect(db, &crate::plan(&base), &ctx.limits, &|sd: &SeriesData| {
            filter.keeps(&sd.tags)
        })?;
    let group_tags: Vec<String> = if s.group_by.all_tags {
        data.iter()
            .flat_map(|sd| sd.tags.iter().map(|(k, _)| k.clone()))
            .chain(s.group_by.tags.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        s.group_by
            .tags
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let cached =
        |_: &ScanRequest| -> Result<Vec<SeriesData>, strata_engine::Error> { Ok(data.clone()) };
    let mut out = if aggregate {
        aggregate_rows(ctx, s, &base, &cached, &columns, &group_tags)?
    } else {
        raw_rows(ctx, s, &base, &cached, &columns, &group_tags)?
    };
    for r in &mut out {
        r.name = measure.to_string();
        let star = std::mem::take(&mut r.columns);
        let mut header = vec!["time".to_string()];
        for n in &names {
            if n == "*" {
                header.extend(star.iter().cloned());
            } else {
                header.push(n.clone());
            }
        }
        r.columns = header;
        if names.iter().any(|n| n == "*") {
            sort_columns(r);
        }
    }
    Ok(out)
}

/// `SELECT *` lists fields and tags together by name, as InfluxDB does.
fn sort_columns(r: &mut Row) {
    let mut order: Vec<usize> = (1..r.columns.len()).collect();
    order.sort_by(|&a, &b| r.columns[a].cmp(&r.columns[b]));
    order.insert(0, 0);
    r.columns = order.iter().map(|&i| r.columns[i].clone()).collect();
    for v in &mut r.values {
        *v = order
            .iter()
            .map(|&i| v.get(i).cloned().unwrap_or(Val::Null))
            .collect();
    }
}

/// The select list as columns and their output names (`mean`, `mean_1`, aliases).
fn columns(s: &Select, fields: &BTreeSet<String>) -> Result<(Vec<Column>, Vec<String>), ExecError> {
    let mut cols = Vec::new();
    let mut names = Vec::new();
    for f in &s.fields {
        match &f.expr {
            Expr::Wildcard => {
                // `*`: every field and (in raw queries) every tag not grouped by, by name.
                for name in fields {
                    cols.push(Column::Field(name.clone()));
                    names.push(name.clone());
                }
                cols.push(Column::Tag("*".into()));
                names.push("*".into());
            }
            Expr::Ident { name, .. } if name.eq_ignore_ascii_case("time") => {}
            Expr::Ident { name, cast } => {
                let tag = *cast == Some(Cast::Tag)
                    || (*cast != Some(Cast::Field) && !fields.contains(name));
                cols.push(if tag {
                    Column::Tag(name.clone())
                } else {
                    Column::Field(name.clone())
                });
                names.push(f.alias.clone().unwrap_or_else(|| name.clone()));
            }
            Expr::Call { name, args } => {
                let func: AggFn = match name.as_str() {
                    "mean" | "sum" | "count" | "min" | "max" | "first" | "last" => {
                        name.parse().map_err(ExecError::Query)?
                    }
                    other => {
                        return Err(ExecError::unsupported(format!(
                            "function {other}() is not supported (mean, sum, count, min, max, \
                             first, last)"
                        )));
                    }
                };
                let field = match args.as_slice() {
                    [Expr::Ident { name, cast }] if *cast != Some(Cast::Tag) => name.clone(),
                    _ => {
                        return Err(ExecError::unsupported(format!(
                            "{name}() takes one field name here"
                        )));
                    }
                };
                cols.push(Column::Agg { func, field });
                names.push(f.alias.clone().unwrap_or_else(|| name.clone()));
            }
            other => {
                return Err(ExecError::unsupported(format!(
                    "unsupported select expression {other:?}: select fields, tags, or \
                     mean/sum/count/min/max/first/last of a field"
                )));
            }
        }
    }
    dedup_names(&mut names);
    Ok((cols, names))
}

/// InfluxDB names repeated columns `x`, `x_1`, `x_2`.
fn dedup_names(names: &mut [String]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for n in names.iter_mut() {
        let c = seen.entry(n.clone()).or_insert(0);
        if *c > 0 {
            *n = format!("{n}_{c}");
        }
        *c += 1;
    }
}

type Key = Vec<(String, String)>;

fn key_of(tags: &[(String, String)], group_tags: &[String]) -> Key {
    group_tags
        .iter()
        .map(|k| {
            let v = tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
            (k.clone(), v.unwrap_or_default())
        })
        .collect()
}

fn raw_rows(
    ctx: &Context,
    s: &Select,
    base: &Query,
    src: &dyn crate::ScanSource,
    columns: &[Column],
    group_tags: &[String],
) -> Result<Vec<Row>, ExecError> {
    let q = Query {
        order: if s.desc { Order::Desc } else { Order::Asc },
        limit: s.limit.map(|l| l.saturating_add(s.offset)),
        ..base.clone()
    };
    let (result, _held) = crate::execute_with(src, &q, &ctx.limits)?;
    let fields = q.fields.clone().unwrap_or_default();
    let mut groups: BTreeMap<Key, Vec<(i64, Vec<Val>)>> = BTreeMap::new();
    // With `*` the tag columns are every tag key seen, less the grouped ones, sorted with
    // the fields.
    let star_tags: BTreeSet<String> = result
        .series
        .iter()
        .flat_map(|r| r.tags.keys().cloned())
        .filter(|k| !group_tags.contains(k))
        .collect();
    for rs in &result.series {
        let tags: Vec<(String, String)> = rs
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let rows = groups.entry(key_of(&tags, group_tags)).or_default();
        for v in &rs.values {
            let time = v.first().and_then(serde_json::Value::as_i64).unwrap_or(0);
            let mut out = Vec::new();
            for c in columns {
                match c {
                    Column::Field(f) => {
                        let i = fields.iter().position(|x| x == f).map(|i| i + 1);
                        out.push(i.and_then(|i| v.get(i)).map_or(Val::Null, Val::from_json));
                    }
                    Column::Tag(t) if t == "*" => {
                        for k in &star_tags {
                            out.push(rs.tags.get(k).map_or(Val::Null, |x| Val::Str(x.clone())));
                        }
                    }
                    Column::Tag(t) => {
                        out.push(rs.tags.get(t).map_or(Val::Null, |x| Val::Str(x.clone())))
                    }
                    Column::Agg { .. } => out.push(Val::Null),
                }
            }
            rows.push((time, out));
        }
    }
    let mut out = Vec::new();
    for (key, mut rows) in groups {
        // Stable: rows of one time keep their series order, as InfluxDB's merge does.
        if s.desc {
            rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        } else {
            rows.sort_by_key(|r| r.0);
        }
        let values: Vec<Vec<Val>> = rows
            .into_iter()
            .skip(s.offset)
            .take(s.limit.unwrap_or(usize::MAX))
            .map(|(t, mut v)| {
                v.insert(0, Val::Time(t));
                v
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        out.push(Row {
            tags: if group_tags.is_empty() {
                BTreeMap::new()
            } else {
                key.into_iter().collect()
            },
            values,
            ..Row::default()
        });
    }
    // `*` expands to the star tags: fix the header placeholder later (names are per measure).
    if columns
        .iter()
        .any(|c| matches!(c, Column::Tag(t) if t == "*"))
    {
        for r in &mut out {
            r.columns = star_tags.iter().cloned().collect();
        }
    }
    Ok(out)
}

fn aggregate_rows(
    ctx: &Context,
    s: &Select,
    base: &Query,
    src: &dyn crate::ScanSource,
    columns: &[Column],
    group_tags: &[String],
) -> Result<Vec<Row>, ExecError> {
    let every = s.group_by.time;
    let mut by_func: BTreeMap<&'static str, (AggFn, Vec<String>)> = BTreeMap::new();
    for c in columns {
        if let Column::Agg { func, field } = c {
            let e = by_func.entry(func.name()).or_insert((*func, Vec::new()));
            if !e.1.contains(field) {
                e.1.push(field.clone());
            }
        }
    }
    // (group key) → bucket time → one value per select column.
    let mut table: BTreeMap<Key, BTreeMap<i64, Vec<Val>>> = BTreeMap::new();
    for (func, fields) in by_func.values() {
        let q = Query {
            fields: Some(fields.clone()),
            agg: Some(Agg { func: *func, every }),
            group_by: group_tags.to_vec(),
            ..base.clone()
        };
        let (result, _held): (QueryResult, _) = crate::execute_with(src, &q, &ctx.limits)?;
        for rs in result.series {
            let tags: Vec<(String, String)> = rs.tags.into_iter().collect();
            let buckets = table.entry(key_of(&tags, group_tags)).or_default();
            for v in rs.values {
                let time = match every {
                    Some(_) => v.first().and_then(serde_json::Value::as_i64).unwrap_or(0),
                    // Without GROUP BY time() InfluxDB stamps the range start (epoch 0 when open).
                    None if base.from == i64::MIN => 0,
                    None => base.from,
                };
                let row = buckets
                    .entry(time)
                    .or_insert_with(|| vec![Val::Null; columns.len()]);
                for (ci, c) in columns.iter().enumerate() {
                    if let Column::Agg { func: f, field } = c
                        && f == func
                        && let Some(fi) = fields.iter().position(|x| x == field)
                    {
                        row[ci] = v.get(fi + 1).map_or(Val::Null, Val::from_json);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (key, buckets) in table {
        let mut rows: Vec<(i64, Vec<Val>)> = match (every, s.fill) {
            (Some(e), fill) if fill != Fill::None => fill_buckets(ctx, base, e, fill, buckets)?,
            _ => buckets
                .into_iter()
                .filter(|(_, v)| v.iter().any(|x| *x != Val::Null))
                .collect(),
        };
        if s.desc {
            rows.reverse();
        }
        let values: Vec<Vec<Val>> = rows
            .into_iter()
            .skip(s.offset)
            .take(s.limit.unwrap_or(usize::MAX))
            .map(|(t, mut v)| {
                v.insert(0, Val::Time(t));
                v
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        out.push(Row {
            tags: if group_tags.is_empty() {
                BTreeMap::new()
            } else {
                key.into_iter().collect()
            },
            values,
            ..Row::default()
        });
    }
    Ok(out)
}

/// Every bucket of `[from, to)`, the missing ones filled.
fn fill_buckets(
    _ctx: &Context,
    q: &Query,
    every: i64,
    fill: Fill,
    buckets: BTreeMap<i64, Vec<Val>>,
) -> Result<Vec<(i64, Vec<Val>)>, ExecError> {
    if q.from == i64::MIN {
        return Err(ExecError::unsupported(
            "GROUP BY time() with fill() needs a lower time bound (WHERE time > now() - 1h), \
             or use fill(none)",
        ));
    }
    let width = buckets.values().next().map_or(0, Vec::len);
    let first = q.from - q.from.rem_euclid(every);
    let last = (q.to - 1) - (q.to - 1).rem_euclid(every);
    if (last - first) / every >= MAX_BUCKETS {
        return Err(ExecError::Invalid(format!(
            "too many buckets: {} of {every} ns; widen GROUP BY time() or narrow the range",
            (last - first) / every + 1
        )));
    }
    let mut out = Vec::new();
    let mut prev: Vec<Val> = vec![Val::Null; width];
    let mut t = first;
    while t <= last {
        let row = match buckets.get(&t) {
            Some(v) => {
                for (p, x) in prev.iter_mut().zip(v) {
                    if *x != Val::Null {
                        *p = x.clone();
                    }
                }
                let mut v = v.clone();
                for (i, x) in v.iter_mut().enumerate() {
                    if *x == Val::Null {
                        *x = filled(fill, &prev, i);
                    }
                }
                v
            }
            None => (0..width).map(|i| filled(fill, &prev, i)).collect(),
        };
        out.push((t, row));
        t += every;
    }
    Ok(out)
}

fn filled(fill: Fill, prev: &[Val], i: usize) -> Val {
    match fill {
        Fill::Null | Fill::None => Val::Null,
        Fill::Value(f) if f.fract() == 0.0 && f.abs() < 9e15 => Val::Int(f as i64),
        Fill::Value(f) => Val::Float(f),
        Fill::Previous => prev.get(i).cloned().unwrap_or(Val::Null),
    }
}
