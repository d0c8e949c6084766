//! `etl trigger DIR --event FILE|-`: one event, as AWS delivers it, runs the jobs of DIR
//! whose triggers match its objects, then the jobs downstream of them.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::Args;

use super::pipeline::write_event;
use super::run::parse_date;
use super::{GlobalArgs, print_json};
use crate::config::home;
use crate::error::{Error, Result};
use crate::runs::events::dispatch::{Dispatcher, TriggerReport};
use crate::runs::events::parse;
use crate::runs::history::History;
use crate::runs::pipeline::Pipeline;
use crate::runs::pipeline::runner::{JobEvent, PipelineOptions, PipelineRunner, owner_id};
use crate::runs::run::{JobRunner, RunOptions};

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The folder of job files (and its pipeline.toml).
    pub dir: PathBuf,
    /// The event: an EventBridge "Object Created" event or an S3 event notification, in a
    /// file, - to read it from standard input, or the event's JSON itself (as a deployed
    /// state machine passes it, in ETL_EVENT).
    #[arg(long, value_name = "FILE|-|JSON", env = "ETL_EVENT")]
    pub event: String,
    /// The date the runs are for (default: the date of the event's time, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub logical_date: Option<NaiveDate>,
}

pub async fn run(args: TriggerArgs, global: &GlobalArgs) -> Result<()> {
    let pipeline = Pipeline::load(&args.dir)?;
    let chatty = !global.quiet && !global.json;
    if !global.quiet {
        for warning in &pipeline.warnings {
            eprintln!("warning: {warning}");
        }
        if pipeline.jobs.iter().all(|j| j.triggers.is_empty()) {
            eprintln!("warning: no job of {} has a [[trigger]]: no event runs anything", args.dir.display());
        }
    }
    let source = match args.event.as_str() {
        "-" => "standard input".to_string(),
        text if is_event_text(text) => "(the event's text)".to_string(),
        file => file.to_string(),
    };
    let text = read_event(&args.event).map_err(|e| Error::usage(format!("--event {source}: {e}")))?;
    let notices = parse::parse(&text).map_err(|why| Error::config(format!("--event {source}: {why}")))?;
    let dispatcher = Dispatcher {
        pipeline,
        runner: PipelineRunner {
            runner: Arc::new(JobRunner { catalog: global.catalog, home: home(), options: RunOptions::default() }),
            history: Arc::new(History::open(&home())?),
            owner: owner_id(),
            log: Arc::new(move |event: &JobEvent| {
                if chatty {
                    write_event(&mut std::io::stderr().lock(), event);
                }
            }),
        },
    };
    let report = dispatcher.dispatch(&notices, args.logical_date, &PipelineOptions::default()).await?;
    if global.json {
        print_json(&report)?;
    } else if !global.quiet {
        write_report(&mut std::io::stdout().lock(), &report)?;
    }
    let failed: Vec<String> = report
        .matched
        .iter()
        .filter(|m| m.status == "failed" || m.status == "skipped")
        .map(|m| format!("{} {} for {}", m.job, m.status, m.object))
        .collect();
    match failed.is_empty() {
        true => Ok(()),
        false => Err(Error::runtime(format!(
            "the event's runs failed ({}); the same event again runs them again",
            failed.join(", ")
        ))),
    }
}

fn read_event(source: &str) -> std::io::Result<String> {
    match source {
        "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            Ok(text)
        }
        text if is_event_text(text) => Ok(text.to_string()),
        file => std::fs::read_to_string(file),
    }
}

/// A JSON object, not a file's name: a state machine has no file or standard input to give.
fn is_event_text(source: &str) -> bool {
    source.trim_start().starts_with('{')
}

fn write_report(out: &mut impl Write, report: &TriggerReport) -> Result<()> {
    let width = report.matched.iter().map(|m| m.job.len()).max().unwrap_or(0);
    for m in &report.matched {
        let reason = m.reason.as_deref().map(|r| format!("  {r}")).unwrap_or_default();
        let run = m.run_id.as_deref().unwrap_or("-");
        let status = if m.rolled_back { format!("{}, rolled back", m.status) } else { m.status.to_string() };
        writeln!(out, "{:width$}  {:<9}  {run}  {}{reason}", m.job, status, m.object)?;
    }
    if !report.rolled_back.is_empty() {
        writeln!(out, "rolled back (on_failure = \"rollback\"): {}", report.rolled_back.join(", "))?;
    }
    for object in &report.ignored {
        writeln!(out, "ignored {object}: no trigger matches it")?;
    }
    if report.matched.is_empty() && report.ignored.is_empty() {
        writeln!(out, "the event names no object")?;
    }
    Ok(())
}
