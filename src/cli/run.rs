//! `etl run JOB.toml`: run a job and print its report.

use std::io::Write;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;

use super::{GlobalArgs, print_json};
use crate::config::parse_size;
use crate::config::{CatalogChoice, home};
use crate::error::{Error, Result};
use crate::output::human_bytes;
use crate::runs::job::Job;
use crate::runs::progress::Progress;
use crate::runs::report::RunReport;
use crate::runs::run::{RunContext, RunOptions, RunOutcome, backfill, run as run_job};
use crate::transform::session::EngineOptions;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job file.
    pub job: PathBuf,
    /// A parameter: NAME=VALUE or NAME:TYPE=VALUE (int, bigint, double, date, timestamp, string).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    #[command(flatten)]
    pub dates: RunDates,
    /// Crawl and plan everything, write and record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Memory queries may use before spilling to disk, e.g. 512M or 2G.
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<usize>,
    /// Also read the records this run of the job set apart, as fixed in its quarantine folder.
    #[arg(long, value_name = "RUN_ID")]
    pub replay_quarantine: Option<String>,
    #[command(flatten)]
    pub engine: super::EngineArgs,
}

/// The date a run is for, or the dates of a backfill (`etl run`, `etl pipeline run`).
#[derive(Debug, Args)]
pub struct RunDates {
    /// The date the run is for (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub logical_date: Option<NaiveDate>,
    /// Backfill: run for every scheduled date from this one (with --to), in order.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date, requires = "to", conflicts_with = "logical_date")]
    pub from: Option<NaiveDate>,
    /// The last date of a backfill (inclusive).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date, requires = "from")]
    pub to: Option<NaiveDate>,
}

pub(super) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    // chrono takes unpadded months and days ("2026-1-5"); a logical date names folders and runs, so one spelling.
    Some(text)
        .filter(|t| t.len() == 10)
        .and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
        .ok_or_else(|| format!("'{text}' is not a date (YYYY-MM-DD)"))
}

pub async fn run(args: RunArgs, global: &GlobalArgs) -> Result<()> {
    let job = Job::load(&args.job)?;
    let progress = Progress::on_terminal(!global.json && !global.quiet, global.verbose);
    let context = RunContext::open(CatalogChoice::resolve(global.catalog, job.catalog), &home(), progress).await?;
    let options = RunOptions {
        logical_date: args.dates.logical_date,
        params: args.params,
        dry_run: args.dry_run,
        engine: EngineOptions {
            memory_limit: args.memory_limit,
            engine: args.engine.engine,
            ..EngineOptions::default()
        },
        replay_quarantine: args.replay_quarantine,
        ..RunOptions::default()
    };
    if let (Some(from), Some(to)) = (args.dates.from, args.dates.to) {
        let summaries = !global.json && !global.quiet;
        let each = |outcome: &RunOutcome| match summaries {
            true => write_summary(&mut std::io::stdout().lock(), &outcome.report),
            false => Ok(()),
        };
        let outcomes = backfill(&job, &options, &context, from, to, each).await?;
        let Some(last) = outcomes.last() else {
            return Err(Error::usage(format!("--from {from} --to {to}: the job's schedule fires on no date")));
        };
        if global.json {
            // One document, as `etl pipeline run` prints a backfill: the last date's report,
            // as a run of one date prints it, and every date's in `runs`.
            let reports: Vec<&RunReport> = outcomes.iter().map(|o| &o.report).collect();
            let mut document = serde_json::to_value(&last.report)?;
            document["runs"] = serde_json::to_value(&reports)?;
            print_json(&document)?;
        }
        return match outcomes.last() {
            Some(RunOutcome { report, error: Some(error) }) => Err(Error::new(
                error.kind(),
                format!(
                    "backfill stopped at {}: run {} failed: {}",
                    report.logical_date,
                    report.run_id,
                    error.message()
                ),
            )),
            _ => Ok(()),
        };
    }
    let outcome = run_job(&job, &options, &context).await?;
    if global.json {
        print_json(&outcome.report)?;
    } else if !global.quiet {
        let mut out = std::io::stdout().lock();
        write_summary(&mut out, &outcome.report)?;
    }
    match outcome.error {
        None => Ok(()),
        Some(error) => {
            Err(Error::new(error.kind(), format!("run {} failed: {}", outcome.report.run_id, error.message())))
        }
    }
}

pub fn write_summary(out: &mut impl Write, report: &RunReport) -> Result<()> {
    let duration = report.duration_seconds().map(|s| format!(" in {s:.1}s")).unwrap_or_default();
    let dry = if report.dry_run { " (dry run)" } else { "" };
    writeln!(
        out,
        "{} {} {}{duration}{dry}: {}",
        report.job,
        report.logical_date,
        report.run_id,
        report.status.as_str()
    )?;
    for source in &report.sources {
        writeln!(
            out,
            "  read  {:<28} {:>6} files {:>10} {:>10} rows  schema v{} ({})",
            source.table,
            source.files,
            human_bytes(source.bytes),
            source.rows,
            source.schema_version,
            source.change
        )?;
    }
    for target in &report.targets {
        writeln!(
            out,
            "  wrote {:<28} {:>6} files {:>10} {:>10} rows  {} partitions  {}",
            target.table,
            target.files,
            human_bytes(target.bytes),
            target.rows,
            target.partitions,
            target.location
        )?;
        for replaced in &target.replaced {
            writeln!(out, "        replacing {} rows of run {}", replaced.rows, replaced.run_id)?;
        }
        if let Some(version) = target.version {
            writeln!(out, "        version {version} of {}", target.table)?;
        }
        if !target.sort_by.is_empty() {
            writeln!(out, "        sorted by {} ({})", target.sort_by.join(", "), target.sort_reason)?;
        }
    }
    super::check::write_results(out, &report.checks)?;
    if report.rejected_rows > 0 {
        let kept = report.quarantine.as_deref().map(|q| format!(", kept in {q}")).unwrap_or_default();
        writeln!(out, "  rejected {} rows{kept}", report.rejected_rows)?;
    }
    if report.athena.bytes_scanned > 0 {
        writeln!(
            out,
            "  athena: the job's queries over the sources would bill ${:.6} ({} scanned)",
            report.athena.usd,
            human_bytes(report.athena.bytes_scanned)
        )?;
    }
    for scan in &report.athena.targets {
        writeln!(
            out,
            "  athena: a full scan of {} would bill ${:.6} ({} scanned)",
            scan.table,
            scan.usd,
            human_bytes(scan.bytes_scanned)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }
}
