//! `etl quarantine show JOB [--run RUN_ID]`: the records a run of a job set apart, and where
//! to fix them for `etl run --replay-quarantine`.

use std::io::Write;

use clap::{Args, Subcommand};

use super::{GlobalArgs, print_json};
use crate::config::home;
use crate::error::Result;
use crate::runs::history::History;
use crate::runs::quarantine;

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    pub command: QuarantineCommand,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// The records a run set apart: the job's latest run that set any apart, or --run.
    Show {
        job: String,
        /// This run's records.
        #[arg(long = "run", value_name = "RUN_ID")]
        run: Option<String>,
    },
}

pub async fn run(args: QuarantineArgs, global: &GlobalArgs) -> Result<()> {
    let QuarantineCommand::Show { job, run } = args.command;
    let home = home();
    let history = History::open(&home)?;
    let listing = quarantine::list(&home, &history, &job, run.as_deref())?;
    if global.json {
        return print_json(&listing);
    }
    let mut out = std::io::stdout().lock();
    let Some(run_id) = &listing.run_id else {
        writeln!(out, "no run of job {job} set records apart")?;
        return Ok(());
    };
    writeln!(out, "{} records set apart by run {run_id} of job {job}", listing.records.len())?;
    for quarantined in &listing.records {
        let record = &quarantined.record;
        let column = record.column.as_deref().map(|c| format!(", column {c}")).unwrap_or_default();
        writeln!(out, "{}  {} line {}{column}: {}", quarantined.table, record.file, record.line, record.reason)?;
        for line in record.record.as_deref().unwrap_or_default().lines() {
            writeln!(out, "    | {line}")?;
        }
    }
    if let Some(folder) = &listing.folder {
        writeln!(
            out,
            "fix them in the files under {folder}/TABLE/, then: etl run JOB.toml --replay-quarantine {run_id}"
        )?;
    }
    Ok(())
}
