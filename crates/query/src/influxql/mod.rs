//! InfluxQL: the subset Grafana's InfluxDB data source and the `influx` 1.x CLI send, answered
//! from the same engine as the JSON API (see `docs/API.md`, "InfluxQL").
//!
//! A query string is parsed ([`parser`]) into statements; a `SELECT` is planned onto the JSON
//! API's [`crate::Query`] and run by [`crate::execute`] ([`select`]); `SHOW` statements read the
//! catalog and the series' tags ([`meta`]). Results are written as InfluxDB 1.x JSON, byte for
//! byte ([`response`]). A statement outside the subset gets an error in InfluxDB's shape that
//! says what is not supported; it is never answered approximately.

mod ast;
mod cond;
mod error;
mod lexer;
mod meta;
mod parser;
mod response;
mod scan;
mod select;

use strata_engine::model::{Catalog, GroupCatalog};
use strata_engine::{Engine, GroupSettings};

pub use ast::Statement;
pub use cond::matcher_holds;
pub use error::{ExecError, SyntaxError};
pub use parser::parse;
pub use response::{
    Epoch, Row, StatementResult, Val, render, render_chunked, string as json_string,
};

use crate::ScanSource;

/// What InfluxQL needs of a database: scans, the catalog, and creating a group.
pub trait Database: ScanSource {
    fn catalog(&self) -> Catalog;
    fn create_group(&self, name: &str) -> Result<(), strata_engine::Error>;
}

impl Database for Engine {
    fn catalog(&self) -> Catalog {
        Engine::catalog(self)
    }

    fn create_group(&self, name: &str) -> Result<(), strata_engine::Error> {
        if Engine::catalog(self).groups.iter().any(|g| g.name == name) {
            return Ok(()); // InfluxDB leaves an existing database as it is.
        }
        self.put_group(name, GroupSettings::default())
    }
}

/// The request's context: the `db` parameter and the time `now()` means.
#[derive(Debug, Clone)]
pub struct Context {
    pub db: Option<String>,
    /// ns since the epoch.
    pub now: i64,
    /// Memory budgets and cancellation of every scan the statements make (the server passes
    /// its query budgets and a token tripped when the client goes away).
    pub limits: crate::Limits,
}

impl Context {
    /// The group a statement reads: a `db` named in its FROM, else the `db` parameter.
    fn database_of(&self, from: &[ast::Source]) -> Result<String, ExecError> {
        let named = from.iter().find_map(|s| match s {
            ast::Source::Name { db: Some(d), .. } => Some(d.clone()),
            _ => None,
        });
        named
            .or_else(|| self.db.clone())
            .filter(|d| !d.is_empty())
            .ok_or(ExecError::NoDatabase)
    }

    fn database_on(&self, on: &Option<String>) -> Result<String, ExecError> {
        on.clone()
            .or_else(|| self.db.clone())
            .filter(|d| !d.is_empty())
            .ok_or(ExecError::NoDatabase)
    }
}

/// Run every statement of `q`. A syntax error fails the whole request (InfluxDB answers 400);
/// an error in one statement is reported in its result and the others still run.
pub fn run(db: &dyn Database, ctx: &Context, q: &str) -> Result<Vec<StatementResult>, String> {
    let statements = parse(q).map_err(|e| e.render(q))?;
    let mut out = Vec::with_capacity(statements.len());
    for (i, st) in statements.iter().enumerate() {
        let r = execute(db, ctx, st);
        out.push(match r {
            Ok(series) => StatementResult {
                statement_id: i,
                series,
                error: None,
            },
            Err(e) => StatementResult {
                statement_id: i,
                series: Vec::new(),
                error: Some(e.to_string()),
            },
        });
    }
    Ok(out)
}

/// Run one statement.
pub fn execute(db: &dyn Database, ctx: &Context, st: &Statement) -> Result<Vec<Row>, ExecError> {
    match st {
        Statement::Select(s) => select::run(db, ctx, s),
        Statement::CreateDatabase(name) => {
            db.create_group(name)
                .map_err(|e| ExecError::Invalid(e.to_string()))?;
            Ok(Vec::new())
        }
        Statement::ShowDatabases => Ok(meta::databases(db)),
        Statement::ShowRetentionPolicies { on } => meta::retention_policies(db, ctx, on),
        Statement::ShowMeasurements(s) => meta::measurements(db, ctx, s),
        Statement::ShowTagKeys(s) => meta::tag_keys(db, ctx, s),
        Statement::ShowTagValues(s) => meta::tag_values(db, ctx, s),
        Statement::ShowFieldKeys(s) => meta::field_keys(db, ctx, s),
    }
}

/// The measures a FROM names (all of them when empty), sorted. A retention policy other than
/// Strata's one (`autogen`) is an error, as an unknown one is in InfluxDB.
fn measures_of(g: &GroupCatalog, from: &[ast::Source]) -> Result<Vec<String>, ExecError> {
    let all = || g.measures.iter().map(|m| m.name.clone());
    if from.is_empty() {
        return Ok(all().collect());
    }
    let mut out = std::collections::BTreeSet::new();
    for s in from {
        match s {
            ast::Source::Name { rp, name, .. } => {
                if let Some(rp) = rp
                    && rp != "autogen"
                {
                    return Err(ExecError::RetentionPolicyNotFound(rp.clone()));
                }
                out.insert(name.clone());
            }
            ast::Source::Regex(r) => {
                let re = cond::regex(r)?;
                out.extend(all().filter(|m| re.is_match(m)));
            }
        }
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests;
