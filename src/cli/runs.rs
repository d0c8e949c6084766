//! `etl runs`: the run history, newest first.

use std::io::Write;

use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::config::home;
use crate::error::Result;
use crate::output::human_bytes;
use crate::runs::RunStatus;
use crate::runs::history::History;
use crate::runs::report::RunReport;

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only the runs of this job.
    #[arg(long)]
    pub job: Option<String>,
    /// Only runs with this status: running, succeeded or failed.
    #[arg(long)]
    pub status: Option<RunStatus>,
}

#[derive(Serialize)]
struct RunsJson {
    runs: Vec<RunReport>,
}

pub async fn run(args: RunsArgs, global: &GlobalArgs) -> Result<()> {
    let history = History::open(&home())?;
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
            // Summed from the targets, which reports written before the sum had also carry.
            run.athena.targets.iter().map(|t| t.usd).sum::<f64>()
        )?;
        for target in &run.targets {
            for replaced in &target.replaced {
                writeln!(out, "    replaced {} rows of run {} in {}", replaced.rows, replaced.run_id, target.table)?;
            }
        }
        if let Some(error) = &run.error {
            writeln!(out, "    {error}")?;
        }
    }
    Ok(())
}
