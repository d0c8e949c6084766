//! `etl cost --advise DB.TABLE`: for a table and the queries analysts run on it, what Athena
//! would scan under the table's current layout and under the layout etl proposes, before
//! anything changes.
//!
//! The proposal sorts each partition by the columns the queries filter on (partition keys
//! apart), fewest distinct values first, so a filter on any of them leaves whole row groups out.
//! To measure it rather than guess, the table's rows are written once, with the proposed
//! layout, to a temporary folder and an embedded catalog of their own (by the job runner, as a
//! run would write them); both layouts are then estimated from their footers, as `etl cost`
//! estimates every query. The queries may name only that table.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::job::Job;
use super::progress::Progress;
use super::run::{RunContext, RunOptions, run};
use crate::catalog::{TableDefinition, TableName};
use crate::config::CatalogChoice;
use crate::cost::billing::DEFAULT_PRICE_PER_TB;
use crate::cost::estimate::Estimator;
use crate::cost::footers::FooterCache;
use crate::error::{Error, Result};
use crate::sink::FileLayout;
use crate::transform::params::Params;
use crate::transform::script::{Statement, plan_statement};
use crate::transform::session::{EngineOptions, session};

/// Sorting by more columns than this clusters nothing a filter on the last can use.
const MAX_SORT_KEYS: usize = 4;

#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    pub table: String,
    /// Whether a job's target writes the table (else it is crawled: the proposal is for a job
    /// that would write its rows).
    pub written: bool,
    /// The proposed target options, as a job file writes them.
    pub sort_by: Vec<String>,
    pub reason: String,
    pub queries: Vec<QueryAdvice>,
    pub current_bytes: u64,
    pub proposed_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryAdvice {
    pub query: String,
    pub line: usize,
    pub current_bytes: u64,
    pub proposed_bytes: u64,
}

/// What `statements` (queries over `table`) would scan now and under the proposed layout.
pub async fn advise(
    context: &RunContext,
    table: &TableName,
    name: &str,
    statements: &[Statement],
    params: &Params,
) -> Result<Advice> {
    let existing = context
        .catalog
        .table(table)
        .await?
        .ok_or_else(|| Error::usage(format!("--advise {table}: no such table in the catalog")))?;
    if statements.is_empty() {
        return Err(Error::usage(format!("--advise {table}: give the queries to advise for (QUERY or -f FILE)")));
    }
    let keys: Vec<String> = existing.definition.partition_keys.iter().map(|k| k.name.clone()).collect();
    let estimator =
        Estimator { footers: Arc::new(FooterCache::open(&context.home)?), price_per_tb: DEFAULT_PRICE_PER_TB };
    let ctx = session(context.catalog.clone(), Default::default(), &EngineOptions::default()).await?;
    let mut filtered: Vec<String> = Vec::new();
    let mut current = Vec::new();
    for statement in statements {
        let plan = plan_statement(&ctx, name, statement, params).await?;
        check_reads_only(&plan, table, name, statement)?;
        let optimized = ctx.state().optimize(&plan)?;
        for column in filter_columns(&optimized) {
            if !keys.contains(&column) && !filtered.contains(&column) {
                filtered.push(column);
            }
        }
        current.push(table_bytes(&estimator.estimate(&ctx.state(), &plan).await?, table));
    }

    // Fewest distinct values first: a filter on a later key still finds its rows together
    // within each value of the earlier ones.
    let mut sort_by = filtered.clone();
    if !sort_by.is_empty() {
        let counts = distinct_counts(&ctx, table, &sort_by).await?;
        let mut counted: Vec<(u64, String)> = counts.into_iter().zip(sort_by).collect();
        counted.sort();
        sort_by = counted.into_iter().map(|(_, c)| c).take(MAX_SORT_KEYS).collect();
    }
    let reason = match sort_by.is_empty() {
        true => "the queries filter on no column but partition keys: the current order is kept".to_string(),
        false => format!("the queries filter on {}; fewest distinct values first", sort_by.join(", ")),
    };

    let proposed = match sort_by.is_empty() {
        // The proposal is the table as it is.
        true => current.clone(),
        false => {
            // Only the order differs from the table's: its row groups and bloom filters stay.
            let written = match existing.definition.is_written() {
                true => super::compact::written_layout(&context.catalog.partitions(table).await?).await?,
                false => {
                    FileLayout { row_group_rows: row_group_rows(&ctx, &estimator, table).await?, ..Default::default() }
                }
            };
            let layout = FileLayout { sort_by: Some(sort_by.clone()), zorder: false, ..written };
            proposed_bytes(&ctx, table, &existing.definition, layout, statements, name, params).await?
        }
    };
    let queries: Vec<QueryAdvice> = statements
        .iter()
        .zip(current.into_iter().zip(proposed))
        .map(|(statement, (current_bytes, proposed_bytes))| QueryAdvice {
            query: statement.text.clone(),
            line: statement.line,
            current_bytes,
            proposed_bytes,
        })
        .collect();
    Ok(Advice {
        table: table.to_string(),
        written: existing.definition.is_written(),
        current_bytes: queries.iter().map(|q| q.current_bytes).sum(),
        proposed_bytes: queries.iter().map(|q| q.proposed_bytes).sum(),
        sort_by,
        reason,
        queries,
    })
}

/// The rows a row group of `table`'s Parquet files holds, on average; none for a table of
/// text files. A table another tool wrote keeps its row groups' size in the proposal, as a
/// table etl wrote keeps its recorded one: the two layouts then differ in their order alone.
async fn row_group_rows(ctx: &SessionContext, estimator: &Estimator, table: &TableName) -> Result<Option<usize>> {
    let plan = ctx.sql(&format!("SELECT * FROM {}", table.quoted())).await?.into_unoptimized_plan();
    let groups: u64 = estimator.estimate(&ctx.state(), &plan).await?.tables.iter().map(|t| t.row_groups).sum();
    if groups == 0 {
        return Ok(None);
    }
    let counted = ctx.sql(&format!("SELECT count(*) FROM {}", table.quoted())).await?.collect().await?;
    let rows = counted
        .first()
        .and_then(|batch| batch.column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>())
        .map_or(0, |counts| counts.value(0).max(0) as u64);
    Ok(usize::try_from(rows.div_ceil(groups).max(1)).ok())
}

/// What each of `statements` would read from `table` written again in `layout`, measured by
/// writing it so in a scratch folder and catalog.
async fn proposed_bytes(
    ctx: &SessionContext,
    table: &TableName,
    definition: &TableDefinition,
    layout: FileLayout,
    statements: &[Statement],
    name: &str,
    params: &Params,
) -> Result<Vec<u64>> {
    let scratch = tempfile::tempdir()?;
    let export = scratch.path().join("export");
    ctx.sql(&format!("SELECT * FROM {}", table.quoted()))
        .await?
        .write_parquet(&format!("{}/", export.display()), DataFrameWriteOptions::new(), None)
        .await?;
    let home = scratch.path().join("home");
    let proposed_context = RunContext::open(CatalogChoice::Local, &home, Progress::hidden()).await?;
    let job = proposal_job(table, &export, &scratch.path().join("proposed"), layout, definition)?;
    let outcome = run(&job, &RunOptions::default(), &proposed_context).await?;
    if let Some(error) = outcome.error {
        return Err(error.context(format!("writing {table} with the proposed layout")));
    }
    let proposed_ctx = session(proposed_context.catalog.clone(), Default::default(), &EngineOptions::default()).await?;
    let proposed_estimator =
        Estimator { footers: Arc::new(FooterCache::in_memory()), price_per_tb: DEFAULT_PRICE_PER_TB };
    let mut bytes = Vec::with_capacity(statements.len());
    for statement in statements {
        let plan = plan_statement(&proposed_ctx, name, statement, params).await?;
        bytes.push(table_bytes(&proposed_estimator.estimate(&proposed_ctx.state(), &plan).await?, table));
    }
    Ok(bytes)
}

/// The bytes a query's estimate reads from `table`.
fn table_bytes(estimate: &crate::cost::estimate::QueryEstimate, table: &TableName) -> u64 {
    estimate.tables.iter().filter(|t| is_table(&t.table, table)).map(|t| t.bytes).sum()
}

/// Whether a scan's table (`db.table`, or with the session's catalog before it) is `table`.
fn is_table(scanned: &str, table: &TableName) -> bool {
    let name = table.to_string();
    scanned == name || scanned.strip_suffix(&name).is_some_and(|catalog| catalog.ends_with('.'))
}

/// The advice compares one table's layouts: a query over other tables would mix in bytes the
/// proposal does not change (and they are not in the proposal's catalog).
fn check_reads_only(plan: &LogicalPlan, table: &TableName, file: &str, statement: &Statement) -> Result<()> {
    let mut others = BTreeSet::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let scanned = scan.table_name.to_string();
            if !is_table(&scanned, table) {
                others.insert(scanned);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match others.is_empty() {
        true => Ok(()),
        false => Err(Error::usage(format!(
            "{file}:{}: --advise {table} takes queries over {table} alone; this one reads {}",
            statement.line,
            others.into_iter().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The columns the scans of an optimized plan filter on, in the order the filters name them.
fn filter_columns(plan: &LogicalPlan) -> Vec<String> {
    let mut columns = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        let filters: Vec<&datafusion::prelude::Expr> = match node {
            LogicalPlan::TableScan(scan) => scan.filters.iter().collect(),
            LogicalPlan::Filter(filter) => vec![&filter.predicate],
            _ => Vec::new(),
        };
        for filter in filters {
            let mut refs: Vec<_> = filter.column_refs().into_iter().map(|c| c.name.clone()).collect();
            refs.sort();
            for name in refs {
                if !columns.contains(&name) {
                    columns.push(name);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    columns
}

/// Approximate distinct values of each column, in one scan.
async fn distinct_counts(
    ctx: &datafusion::prelude::SessionContext,
    table: &TableName,
    columns: &[String],
) -> Result<Vec<u64>> {
    // As text: DataFusion's approx_distinct takes no float or decimal; a value's text is as
    // distinct as the value.
    let selects: Vec<String> = columns
        .iter()
        .map(|c| format!("approx_distinct(CAST({} AS VARCHAR))", crate::schema::names::quoted(c)))
        .collect();
    let batches = ctx.sql(&format!("SELECT {} FROM {}", selects.join(", "), table.quoted())).await?.collect().await?;
    let batch = batches.first().ok_or_else(|| Error::runtime("counting distinct values gave no row"))?;
    Ok((0..columns.len())
        .map(|i| {
            datafusion::arrow::compute::cast(batch.column(i), &datafusion::arrow::datatypes::DataType::UInt64)
                .ok()
                .and_then(|a| a.as_any().downcast_ref::<datafusion::arrow::array::UInt64Array>().map(|a| a.value(0)))
                .unwrap_or(u64::MAX)
        })
        .collect())
}

/// A job that writes the exported rows as `table`, laid out as proposed, in a scratch folder.
fn proposal_job(
    table: &TableName,
    export: &std::path::Path,
    proposed: &std::path::Path,
    layout: FileLayout,
    definition: &TableDefinition,
) -> Result<Job> {
    let input = if table.database == "etl_advice" { "etl_advice_input.rows" } else { "etl_advice.rows" };
    let mut source = toml::Table::new();
    source.insert("table".into(), input.into());
    source.insert("location".into(), format!("{}/", export.display()).into());
    source.insert("format".into(), "parquet".into());
    let query = format!("SELECT * FROM {input}");
    let location = format!("{}/", proposed.display());
    super::compact::rewrite_job("advise", table, definition, &query, &location, &layout, vec![source])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_is_of_the_table_by_its_whole_name() {
        let table: TableName = "mart.f".parse().unwrap();
        assert!(is_table("mart.f", &table));
        assert!(is_table("etl.mart.f", &table));
        assert!(!is_table("smart.f", &table));
        assert!(!is_table("mart.ff", &table));
    }
}
