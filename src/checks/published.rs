//! Checks on what is published now (`etl check`): the same rules, over the catalog's tables.
//!
//! `row_count_change` compares the table's current data version with the one before it;
//! `freshness` is relative to the logical date the caller gives (today, by default).

use std::sync::Arc;

use chrono::NaiveDate;

use super::CheckSpec;
use super::evaluate::{self, CheckResult, Recorded, Subject};
use crate::catalog::{Catalog, TableName};
use crate::error::{Error, Result};
use crate::runs::job::StepSpec;
use crate::transform::params::Params;
use crate::transform::script;
use crate::transform::session::{EngineOptions, session};

/// Runs `checks` of each table on its published data, after `steps` (a job's), whose views
/// and tables a check's SQL may read as it did in the job's run.
pub async fn check_published(
    catalog: Arc<dyn Catalog>,
    tables: &[(TableName, Vec<CheckSpec>)],
    steps: &[StepSpec],
    params: &Params,
    logical_date: NaiveDate,
    engine: &EngineOptions,
) -> Result<Vec<CheckResult>> {
    let ctx = session(catalog.clone(), Default::default(), engine).await?;
    for step in steps {
        script::run(&ctx, &step.display, &step.sql, params).await?;
    }
    let mut results = Vec::new();
    for (table, checks) in tables {
        if checks.is_empty() {
            continue;
        }
        catalog.require(table).await?;
        let versions = catalog.data_versions(table).await?;
        let change = match versions.as_slice() {
            [.., before, after] => Some((before.rows, after.rows)),
            _ => None,
        };
        let subject = Subject { table: table.clone(), checks: checks.clone(), rows: None, change };
        evaluate::plan(&ctx, params, &subject, logical_date).await?;
        results.extend(evaluate::run(&ctx, params, &subject, logical_date).await?);
    }
    Ok(results)
}

/// The checks recorded with the latest data version of `table` that went through any (a
/// rollback records none of its own), with the parameters of the run that recorded them.
pub async fn recorded_checks(catalog: &dyn Catalog, table: &TableName) -> Result<(Vec<CheckSpec>, Vec<String>)> {
    catalog.require(table).await?;
    let versions = catalog.data_versions(table).await?;
    let recorded = versions.iter().rev().map(|v| Recorded::read(&v.checks)).find(|checks| !checks.is_empty());
    match recorded {
        Some(checks) => {
            let params = checks.first().map(|r| r.params.clone()).unwrap_or_default();
            Ok((checks.into_iter().map(|r| r.check).collect(), params))
        }
        None => Err(Error::config(format!(
            "{table} has no checks recorded with its versions: name the job file whose checks to run (etl check {table} --job JOB.toml)"
        ))),
    }
}
