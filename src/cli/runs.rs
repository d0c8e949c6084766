//! `etl runs`: the run history, newest first; `--pipeline NAME`: the runs of a pipeline.

use std::io::Write;

use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::config::home;
use crate::error::Result;
use crate::output::human_bytes;
use crate::runs::RunStatus;
use crate::runs::history::History;
use crate::runs::pipeline::report::PipelineReport;

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only the runs of this job.
    #[arg(long)]
    pub job: Option<String>,
    /// Only runs with this status: running, succeeded or failed.
    #[arg(long)]
    pub status: Option<RunStatus>,
    /// The runs of this pipeline (its jobs, run ids and totals) instead of job runs.
    #[arg(long, conflicts_with = "job")]
    pub pipeline: Option<String>,
}

#[derive(Serialize)]
struct RunsJson<T> {
    runs: Vec<T>,
}

pub async fn run(args: RunsArgs, global: &GlobalArgs) -> Result<()> {
    let history = History::open(&home())?;
    if let Some(pipeline) = &args.pipeline {
        let mut runs = history.pipeline_runs(Some(pipeline))?;
        runs.retain(|r| args.status.is_none_or(|s| r.status == s));
        return match global.json {
            true => print_json(&RunsJson { runs }),
            false => write_pipeline_runs(&mut std::io::stdout().lock(), &runs),
        };
    }
    // A run that ended while it published (killed) is shown as readers see it, where the
    // catalog can tell (the job's next run settles it in any case).
    let pending = history.pending_publications(None)?;
    if !pending.is_empty()
        && let Ok(catalog) = global.catalog().await
        && let Err(e) = crate::runs::run::settle_publications(&history, catalog.as_ref(), &pending, false).await
    {
        eprintln!("warning: settling runs that ended while they published: {e}");
    }
    let runs = history.list(args.job.as_deref(), args.status)?;
    if global.json {
        return print_json(&RunsJson { runs });
    }
    let mut out = std::io::stdout().lock();
    if runs.is_empty() {
        writeln!(out, "no runs")?;
    }
    for run in &runs {
        let duration = run.duration_seconds().map(|s| format!("{s:.1}s")).unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{}  {:<20} {}  {:<9} {:>7}  {:>10} rows  {:>10}  athena: queries ${:.6}, output scan ${:.6}",
            run.run_id,
            run.job,
            run.logical_date,
            run.status.as_str(),
            duration,
            run.rows_written(),
            human_bytes(run.bytes_written()),
            run.athena.usd,
            // Summed from the targets, which reports written before the sum had also carry;
            // from 0.0, as Rust's sum of no floats is -0.0, printed "$-0.000000".
            run.athena.targets.iter().fold(0.0, |sum, t| sum + t.usd)
        )?;
        for target in &run.targets {
            for replaced in &target.replaced {
                writeln!(out, "    replaced {} rows of run {} in {}", replaced.rows, replaced.run_id, target.table)?;
            }
        }
        let object = run.event.as_ref().map(|e| format!(" {}", e.object)).unwrap_or_default();
        let pipeline_run =
            run.pipeline_run_id.as_ref().map(|id| format!(", a job of pipeline run {id}")).unwrap_or_default();
        writeln!(out, "    started by {}{object}{pipeline_run}", run.started_by.as_str())?;
        let (failed, warned) = run.checks_failed();
        if !run.checks.is_empty() {
            let passed = run.checks.len() - failed - warned;
            writeln!(out, "    checks: {passed} passed, {failed} failed, {warned} warned")?;
        }
        if let Some(error) = &run.error {
            writeln!(out, "    {error}")?;
        }
    }
    Ok(())
}

fn write_pipeline_runs(out: &mut impl Write, runs: &[PipelineReport]) -> Result<()> {
    if runs.is_empty() {
        writeln!(out, "no pipeline runs")?;
    }
    for run in runs {
        let totals = &run.totals;
        writeln!(
            out,
            "{}  {:<20} {}  {:<9} {:>7.1}s  {:>10} rows  {:>10}  athena: queries ${:.6}  ({})",
            run.pipeline_run_id,
            run.pipeline,
            run.logical_date,
            run.status.as_str(),
            totals.duration_seconds,
            totals.rows,
            human_bytes(totals.bytes),
            totals.athena.usd,
            match &run.event {
                Some(event) => format!("event {}", event.object),
                None => run.started_by.as_str().to_string(),
            }
        )?;
        for job in &run.jobs {
            let reason = job.reason.as_deref().map(|r| format!("  {r}")).unwrap_or_default();
            writeln!(
                out,
                "    {:<20} {:<9} {}{reason}",
                job.job,
                job.status.as_str(),
                job.run_id.as_deref().unwrap_or("-")
            )?;
        }
    }
    Ok(())
}
