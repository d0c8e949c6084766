//! `etl pipeline show|run DIR`: a folder of jobs as one graph, drawn or run.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use clap::{Args, Subcommand, ValueEnum};

use super::run::RunDates;
use super::{GlobalArgs, print_json};
use crate::config::home;
use crate::error::{Error, Result};
use crate::output::human_bytes;
use crate::runs::RunStatus;
use crate::runs::history::History;
use crate::runs::pipeline::report::{JobStatus, PipelineReport};
use crate::runs::pipeline::runner::{JobEvent, PipelineOptions, PipelineRunner, owner_id};
use crate::runs::pipeline::{Pipeline, render};
use crate::runs::run::{JobRunner, RunOptions};
use crate::transform::session::EngineOptions;

#[derive(Debug, Args)]
pub struct PipelineArgs {
    #[command(subcommand)]
    pub command: PipelineCommand,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// The jobs of a folder, what each reads and writes, and which runs after which and why.
    Show(ShowArgs),
    /// Run a folder's jobs in dependency order, for a date, a range of dates, or again.
    Run(PipelineRunArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The folder of job files (and its pipeline.toml).
    pub dir: PathBuf,
    /// How to draw the graph (--json prints the JSON document instead).
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Mermaid,
    Dot,
}

#[derive(Debug, Args)]
pub struct PipelineRunArgs {
    /// The folder of job files (and its pipeline.toml).
    pub dir: PathBuf,
    #[command(flatten)]
    pub dates: RunDates,
    /// Jobs at once (default: pipeline.toml's concurrency, or 2).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// Run only these jobs (their upstream jobs' outputs are taken as they are).
    #[arg(long, value_name = "JOB", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,
    /// Run again the jobs of this pipeline run that failed or were skipped, for its date.
    #[arg(long, value_name = "PIPELINE_RUN_ID", conflicts_with_all = ["logical_date", "from", "to"])]
    pub resume: Option<String>,
    #[command(flatten)]
    pub engine: super::EngineArgs,
}

pub async fn run(args: PipelineArgs, global: &GlobalArgs) -> Result<()> {
    match args.command {
        PipelineCommand::Show(args) => show(args, global),
        PipelineCommand::Run(args) => run_pipeline(args, global).await,
    }
}

fn load(dir: &std::path::Path, global: &GlobalArgs) -> Result<Pipeline> {
    let pipeline = Pipeline::load(dir)?;
    if !global.quiet {
        for warning in &pipeline.warnings {
            eprintln!("warning: {warning}");
        }
    }
    Ok(pipeline)
}

fn show(args: ShowArgs, global: &GlobalArgs) -> Result<()> {
    let pipeline = load(&args.dir, global)?;
    if global.json {
        return print_json(&render::document(&pipeline));
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        GraphFormat::Text => render::write_text(&mut out, &pipeline),
        GraphFormat::Mermaid => render::write_mermaid(&mut out, &pipeline),
        GraphFormat::Dot => render::write_dot(&mut out, &pipeline),
    }
}

async fn run_pipeline(args: PipelineRunArgs, global: &GlobalArgs) -> Result<()> {
    let pipeline = load(&args.dir, global)?;
    let show_progress = !global.json && !global.quiet;
    let runner = PipelineRunner {
        runner: Arc::new(JobRunner {
            catalog: global.catalog,
            home: home(),
            options: RunOptions {
                engine: EngineOptions { engine: args.engine.engine, ..EngineOptions::default() },
                ..RunOptions::default()
            },
        }),
        history: Arc::new(History::open(&home())?),
        owner: owner_id(),
        log: Arc::new(move |event: &JobEvent| {
            if show_progress {
                write_event(&mut std::io::stderr().lock(), event);
            }
        }),
    };
    let options = PipelineOptions {
        concurrency: args.concurrency.map(|n| n as usize),
        only: args.only,
        stop_ends_run: true,
        ..PipelineOptions::default()
    };
    let stop = options.stop.clone();
    tokio::spawn(async move {
        super::stop_signal().await;
        eprintln!(
            "interrupted: no job starts; the jobs running finish, then the run ends (and rolls back if on_failure says so); SIGKILL stops it at once, leaving it to --resume"
        );
        stop.cancel();
    });
    let summaries = !global.json && !global.quiet;
    let report = match (args.resume, args.dates.from, args.dates.to) {
        (Some(id), _, _) => runner.resume(&pipeline, &id, &options).await?,
        (None, Some(from), Some(to)) => {
            let each = |report: &PipelineReport| match summaries {
                true => write_summary(&mut std::io::stdout().lock(), report),
                false => Ok(()),
            };
            let reports = runner.backfill(&pipeline, from, to, &options, each).await?;
            let Some(last) = reports.last() else {
                return Err(Error::usage(format!("--from {from} --to {to}: the pipeline's schedule fires on no date")));
            };
            if global.json {
                // One document: the last date's report, as a run of one date prints it, and
                // every date's in `runs`.
                let mut document = serde_json::to_value(last)?;
                document["runs"] = serde_json::to_value(&reports)?;
                print_json(&document)?;
            }
            return outcome(last, reports.len() > 1, &args.dir);
        }
        _ => {
            let date = args.dates.logical_date.unwrap_or_else(|| Utc::now().date_naive());
            runner.run(&pipeline, date, &options).await?
        }
    };
    if global.json {
        print_json(&report)?;
    } else if summaries {
        write_summary(&mut std::io::stdout().lock(), &report)?;
    }
    outcome(&report, false, &args.dir)
}

/// Exit 0 only when every job succeeded.
fn outcome(report: &PipelineReport, backfill: bool, dir: &std::path::Path) -> Result<()> {
    // The rollback stands; what its clean-up left behind is in the report too.
    for warning in report.rollback.iter().flat_map(|r| &r.restored).flat_map(|r| &r.warnings) {
        eprintln!("warning: {warning}");
    }
    if report.status == RunStatus::Succeeded {
        return Ok(());
    }
    let not_done: Vec<String> = report
        .jobs
        .iter()
        .filter(|e| e.status != JobStatus::Succeeded || e.rolled_back)
        .map(|e| format!("{} {}", e.job, if e.rolled_back { "rolled back" } else { e.status.as_str() }))
        .collect();
    let stopped = if backfill { format!("backfill stopped at {}: ", report.logical_date) } else { String::new() };
    let rolled_back = match report.rolled_back.is_empty() {
        true => String::new(),
        false => format!("; rolled back {}", report.rolled_back.join(", ")),
    };
    let mut message = format!(
        "{stopped}pipeline run {} of {} for {} failed ({}){rolled_back}; etl pipeline run {} --resume {} runs them again",
        report.pipeline_run_id,
        report.pipeline,
        report.logical_date,
        not_done.join(", "),
        dir.display(),
        report.pipeline_run_id
    );
    for failed in report.rollback.iter().flat_map(|r| &r.failed) {
        message.push_str(&format!(
            "\nthe rollback could not restore {}, which still holds what this run published: {}",
            failed.table, failed.error
        ));
    }
    Err(Error::runtime(message))
}

/// One line per change of a job's state, as it happens.
pub(super) fn write_event(out: &mut impl Write, event: &JobEvent) {
    let entry = &event.entry;
    let state = match event.retry_in {
        Some(delay) => format!("failed attempt {}, retrying in {}s", event.attempt, delay.as_secs()),
        None => entry.status.as_str().to_string(),
    };
    let run = entry.run_id.as_deref().map(|id| format!(" {id}")).unwrap_or_default();
    let reason = entry.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    let _ = writeln!(out, "{} {} {}: {state}{run}{reason}", event.pipeline, event.logical_date, entry.job);
}

pub fn write_summary(out: &mut impl Write, report: &PipelineReport) -> Result<()> {
    writeln!(
        out,
        "{} {} {}: {} in {:.1}s",
        report.pipeline,
        report.logical_date,
        report.pipeline_run_id,
        report.status.as_str(),
        report.totals.duration_seconds
    )?;
    let width = report.jobs.iter().map(|e| e.job.len()).max().unwrap_or(0);
    for entry in &report.jobs {
        let mut reason = entry.reason.as_deref().map(|r| format!("  {r}")).unwrap_or_default();
        if entry.rolled_back {
            reason.push_str("  (rolled back)");
        }
        writeln!(
            out,
            "  {:width$}  {:<9}  {}{reason}",
            entry.job,
            entry.status.as_str(),
            entry.run_id.as_deref().unwrap_or("-")
        )?;
    }
    if let Some(rollback) = &report.rollback {
        for restored in &rollback.restored {
            let to = match restored.restored {
                crate::catalog::versions::NO_DATA => "no data (the run wrote it first)".to_string(),
                version => format!("version {version}"),
            };
            writeln!(out, "  rolled back {} to {to}: now version {}", restored.table, restored.version)?;
        }
        for failed in &rollback.failed {
            writeln!(out, "  ROLLBACK FAILED for {}: {}", failed.table, failed.error)?;
        }
    }
    let totals = &report.totals;
    writeln!(
        out,
        "  wrote {} rows, {}; athena: the jobs' queries would bill ${:.6} ({} scanned)",
        totals.rows,
        human_bytes(totals.bytes),
        totals.athena.usd,
        human_bytes(totals.athena.bytes_scanned)
    )?;
    Ok(())
}
