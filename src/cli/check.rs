//! `etl check JOB.toml|DB.TABLE [--job JOB.toml] [--logical-date D] [--param k=v]…`: runs
//! checks on what is published now.
//!
//! For a job file, the checks of each of its targets, on each target's table. For a table, the
//! checks recorded with the latest of its versions that went through any (what the job that
//! published it checked), or with `--job`, that job's checks of the table. Exit 1 when a check
//! of severity error fails; failed warnings are shown and exit 0.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::catalog::TableName;
use crate::checks::CheckSpec;
use crate::checks::evaluate::{CheckResult, CheckStatus};
use crate::checks::published::{check_published, recorded_checks};
use crate::config::CatalogChoice;
use crate::error::{Error, Result};
use crate::runs::job::Job;
use crate::runs::run::new_run_id;
use crate::transform::session::EngineOptions;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A job file (the checks of its targets) or a table, DB.TABLE.
    pub what: String,
    /// For a table: run this job's checks of it instead of those recorded with its versions.
    #[arg(long, value_name = "JOB.toml")]
    pub job: Option<PathBuf>,
    /// The date `freshness` is relative to, and `$logical_date` (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::run::parse_date)]
    pub logical_date: Option<NaiveDate>,
    /// A parameter the checks' SQL may use: NAME=VALUE or NAME:TYPE=VALUE.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

#[derive(Serialize)]
struct CheckJson<'a> {
    checks: &'a [CheckResult],
    passed: usize,
    failed: usize,
    warned: usize,
}

pub async fn run(args: CheckArgs, global: &GlobalArgs) -> Result<()> {
    let date = args.logical_date.unwrap_or_else(|| Utc::now().date_naive());
    let is_job = args.what.ends_with(".toml") || Path::new(&args.what).is_file();
    let job = match (&args.job, is_job) {
        (Some(path), false) => Some(Job::load(path)?),
        (Some(_), true) => return Err(Error::usage("--job goes with a table: etl check DB.TABLE --job JOB.toml")),
        (None, true) => Some(Job::load(Path::new(&args.what))?),
        (None, false) => None,
    };
    let catalog = crate::catalog::open(
        CatalogChoice::resolve(global.catalog, job.as_ref().and_then(|j| j.catalog)),
        &crate::config::home(),
    )
    .await?;
    let mut recorded_params = Vec::new();
    let tables: Vec<(TableName, Vec<CheckSpec>)> = match (&job, is_job) {
        (Some(job), true) => job.targets.iter().map(|t| (t.table.clone(), t.checks.clone())).collect(),
        (Some(job), false) => {
            let table: TableName = args.what.parse()?;
            let target = job
                .targets
                .iter()
                .find(|t| t.table == table)
                .ok_or_else(|| Error::config(format!("job file {} has no target {table}", job.file.display())))?;
            vec![(table, target.checks.clone())]
        }
        (None, _) => {
            let table: TableName = args.what.parse()?;
            let (checks, params) = recorded_checks(catalog.as_ref(), &table).await?;
            recorded_params = params;
            vec![(table, checks)]
        }
    };
    if tables.iter().all(|(_, checks)| checks.is_empty()) {
        return Err(Error::config(format!("{}: no checks to run", args.what)));
    }
    let defaults = job.as_ref().map(|j| j.params.clone()).unwrap_or_default();
    // Recorded checks run with the parameters of the run that recorded them, unless overridden.
    let overrides: Vec<String> = recorded_params.into_iter().chain(args.params.iter().cloned()).collect();
    let params = defaults.resolve(&overrides, date, &new_run_id())?;
    let steps = job.as_ref().map(|j| j.steps.as_slice()).unwrap_or_default();
    let results = check_published(catalog, &tables, steps, &params, date, &EngineOptions::default()).await.map_err(
        |e| match job.is_none() && e.message().contains("not found") {
            // Recorded checks run without the job's steps, whose views and tables they may read.
            true => Error::new(
                e.kind(),
                format!("{} (a check reading what a step of its job makes runs with --job JOB.toml)", e.message()),
            ),
            false => e,
        },
    )?;
    let failed = results.iter().filter(|r| r.blocks()).count();
    let warned = results.iter().filter(|r| r.warns()).count();
    let passed = results.iter().filter(|r| r.status == CheckStatus::Passed).count();
    if global.json {
        print_json(&CheckJson { checks: &results, passed, failed, warned })?;
    } else if !global.quiet {
        write_results(&mut std::io::stdout().lock(), &results)?;
    }
    match failed {
        0 => Ok(()),
        n => Err(Error::check(format!(
            "{n} {} failed: {}",
            if n == 1 { "check" } else { "checks" },
            results.iter().filter(|r| r.blocks()).map(CheckResult::describe).collect::<Vec<_>>().join("; ")
        ))),
    }
}

/// One line a check, and its samples under the failed ones.
pub fn write_results(out: &mut impl Write, results: &[CheckResult]) -> Result<()> {
    for result in results {
        let status = match (result.status, result.severity) {
            (CheckStatus::Passed, _) => "passed",
            (CheckStatus::Failed, crate::checks::Severity::Error) => "FAILED",
            (CheckStatus::Failed, crate::checks::Severity::Warn) => "warned",
        };
        let what = match (&result.detail, result.status) {
            (Some(detail), _) => format!(": {detail}"),
            (None, CheckStatus::Failed) => {
                format!(": {} violating {}", result.violations, if result.violations == 1 { "row" } else { "rows" })
            }
            (None, CheckStatus::Passed) => String::new(),
        };
        writeln!(out, "  check {status:<6} {} {}{what} ({:.2}s)", result.target, result.name, result.seconds)?;
        if result.status == CheckStatus::Failed && result.detail.is_none() {
            for sample in &result.samples {
                writeln!(out, "           {sample}")?;
            }
        }
    }
    Ok(())
}
