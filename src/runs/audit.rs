//! Write, audit, publish: a run's checks, planned before any target is computed and run on
//! what is staged before anything is published.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::catalog::TableProvider;
use datafusion::logical_expr::{Expr, JoinType};
use datafusion::prelude::{DataFrame, SessionContext, lit};

use super::job::Job;
use super::report::RunReport;
use super::run::{RunContext, warn};
use crate::catalog::provider::FileTable;
use crate::checks::Rule;
use crate::checks::evaluate::{self, Recorded, Subject};
use crate::checks::published::check_published;
use crate::error::{Error, Result};
use crate::sink::commit::MergeBase;
use crate::sink::{Commit, WhenMatched, WhenNotMatched};
use crate::source::rejects::Rejects;
use crate::transform::params::Params;
use crate::transform::session::{EngineOptions, override_table};

/// Plans every target's checks against what its query outputs (the targets read as empty
/// tables of their output schemas, under their names), before any target is computed.
pub(super) async fn plan_checks(
    job: &Job,
    ctx: &SessionContext,
    params: &Params,
    logical_date: NaiveDate,
    frames: &[DataFrame],
) -> Result<()> {
    if job.targets.iter().all(|t| t.checks.is_empty()) {
        return Ok(());
    }
    for (target, df) in job.targets.iter().zip(frames) {
        let (schema, _) = crate::sink::target_schema(df, target, None)?;
        let definition = crate::catalog::TableDefinition::parquet(
            target.location.url(),
            &schema,
            target.compression.name(),
            &job.name,
        );
        let empty = FileTable::from_partitions(&definition, &[], Arc::new(Rejects::failing()))?;
        override_table(ctx, target.table.clone(), Arc::new(empty))?;
    }
    for target in &job.targets {
        let subject = Subject { table: target.table.clone(), checks: target.checks.clone(), rows: None, change: None };
        evaluate::plan(ctx, params, &subject, logical_date)
            .await
            .map_err(|e| Error::new(e.kind(), format!("job file {}: {}", job.file.display(), e.message())))?;
    }
    Ok(())
}

/// The table a merge leaves, as checks read it: the table's rows no staged row matches, the
/// staged rows that match one (`when_matched = "update"`), and those that match none
/// (`when_not_matched = "insert"`).
fn merged(ctx: &SessionContext, base: &MergeBase, staged: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let existing = FileTable::from_partitions(&base.definition, &base.partitions, Arc::new(Rejects::failing()))?;
    let existing = ctx.read_table(Arc::new(existing))?.alias("existing")?;
    let staged = ctx.read_table(staged)?.alias("staged")?;
    let matching = || {
        base.merge
            .on
            .iter()
            .map(|key| {
                let column = |side: &str| Expr::Column(datafusion::common::Column::new(Some(side), key));
                column("existing").eq(column("staged"))
            })
            .reduce(Expr::and)
            .unwrap_or(lit(false))
    };
    let unmatched_rows = existing.clone().join_on(staged.clone(), JoinType::LeftAnti, [matching()])?;
    let mut table = unmatched_rows;
    if base.merge.when_matched == WhenMatched::Update {
        let updates = staged.clone().join_on(existing.clone(), JoinType::LeftSemi, [matching()])?;
        table = table.union_by_name(updates)?;
    }
    if base.merge.when_not_matched == WhenNotMatched::Insert {
        let inserts = staged.join_on(existing, JoinType::LeftAnti, [matching()])?;
        table = table.union_by_name(inserts)?;
    }
    Ok(table.into_view())
}

/// Runs every check on the targets as they would be once published (each read under its own
/// name, so a check may compare two targets; an append's with the rows it keeps), keeps the results in the report and, with the version each target
/// publishes, in the commit; fails the run when a check of severity error failed.
pub(super) async fn audit(
    job: &Job,
    ctx: &SessionContext,
    params: &Params,
    logical_date: NaiveDate,
    context: &RunContext,
    commit: &mut Commit,
    report: &mut RunReport,
) -> Result<()> {
    if job.targets.iter().all(|t| t.checks.is_empty()) {
        return Ok(());
    }
    context.progress.step("checking");
    // Checks judge each table as readers will see it: in append mode, with the rows it keeps.
    let published = commit.published_tables(context.catalog.as_ref()).await?;
    for table in &published {
        let staged = FileTable::from_partitions(&table.definition, &table.partitions, Arc::new(Rejects::failing()))?;
        let provider = match &table.merged_into {
            Some(base) => merged(ctx, base, Arc::new(staged))?,
            None => Arc::new(staged),
        };
        override_table(ctx, table.name.clone(), provider)?;
    }
    for table in &published {
        let Some(target) = job.targets.iter().find(|t| t.table == table.name) else { continue };
        if target.checks.is_empty() {
            continue;
        }
        // A merge's rows are counted from the table it leaves.
        let rows = table.merged_into.is_none().then(|| table.rows());
        let change = table.rows_before.zip(rows);
        let subject = Subject { table: table.name.clone(), checks: target.checks.clone(), rows, change };
        let results = evaluate::run(ctx, params, &subject, logical_date).await?;
        let recorded =
            target.checks.iter().zip(&results).map(|(spec, result)| Recorded::of(spec, result, params)).collect();
        commit.record_checks(&table.name, recorded);
        report.checks.extend(results);
    }
    conclude(context, report, "published anyway", "nothing was published")
}

/// An incremental run with nothing new publishes nothing, but what its targets published ages:
/// their `freshness` checks run on it, as `etl check` would run them, and one of severity
/// error fails the run (dbt's freshness failing when upstream stops delivering). The other
/// rules judge data that has not changed since they passed.
pub(super) async fn audit_unchanged(
    job: &Job,
    params: &Params,
    logical_date: NaiveDate,
    context: &RunContext,
    report: &mut RunReport,
) -> Result<()> {
    let mut tables = Vec::new();
    for target in &job.targets {
        let freshness: Vec<_> =
            target.checks.iter().filter(|c| matches!(c.rule, Rule::Freshness { .. })).cloned().collect();
        if !freshness.is_empty() && context.catalog.table(&target.table).await?.is_some() {
            tables.push((target.table.clone(), freshness));
        }
    }
    if tables.is_empty() {
        return Ok(());
    }
    context.progress.step("checking the freshness of what is published");
    let engine = EngineOptions::default();
    report.checks = check_published(context.catalog.clone(), &tables, &[], params, logical_date, &engine).await?;
    conclude(context, report, "the run succeeds anyway", "the run published nothing new")
}

/// Warns of the failed checks of severity warn; fails on those of severity error.
fn conclude(context: &RunContext, report: &mut RunReport, despite_warnings: &str, on_failure: &str) -> Result<()> {
    let failed: Vec<String> = report.checks.iter().filter(|r| r.blocks()).map(|r| r.describe()).collect();
    let warned: Vec<String> = report.checks.iter().filter(|r| r.warns()).map(|r| r.describe()).collect();
    for warning in warned {
        warn(context, report, format!("check failed (severity warn, {despite_warnings}): {warning}"));
    }
    if !failed.is_empty() {
        return Err(Error::check(format!(
            "{} {} failed, {on_failure}: {}",
            failed.len(),
            if failed.len() == 1 { "check" } else { "checks" },
            failed.join("; ")
        )));
    }
    let passed = report.checks.len();
    context.progress.step(format!("{passed} checks done"));
    Ok(())
}
