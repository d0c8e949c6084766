//! `etl bookmarks show|reset JOB`: what the incremental sources of a job have processed.

use std::io::Write;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::config::home;
use crate::error::{Error, Result};
use crate::runs::history::History;

#[derive(Debug, Args)]
pub struct BookmarksArgs {
    #[command(subcommand)]
    pub command: BookmarksCommand,
}

#[derive(Debug, Subcommand)]
pub enum BookmarksCommand {
    /// Objects processed per incremental source.
    Show {
        job: String,
        /// Only this source table.
        #[arg(long)]
        source: Option<String>,
    },
    /// Forget them: the next run processes every object again.
    Reset {
        job: String,
        /// Only this source table.
        #[arg(long)]
        source: Option<String>,
    },
}

#[derive(Serialize)]
struct ShowJson {
    job: String,
    sources: Vec<SourceJson>,
}

#[derive(Serialize)]
struct SourceJson {
    table: String,
    objects: u64,
    last_run_id: String,
}

#[derive(Serialize)]
struct ResetJson {
    job: String,
    forgotten: u64,
}

pub async fn run(args: BookmarksArgs, global: &GlobalArgs) -> Result<()> {
    let history = History::open(&home())?;
    let mut out = std::io::stdout().lock();
    match args.command {
        BookmarksCommand::Show { job, source } => {
            let summary = history.bookmark_summary(&job)?;
            check_names(&history, &job, source.as_deref(), &summary)?;
            let sources = summary
                .into_iter()
                .filter(|(table, ..)| source.as_ref().is_none_or(|s| s == table))
                .map(|(table, objects, last_run_id)| SourceJson { table, objects, last_run_id })
                .collect::<Vec<_>>();
            if global.json {
                return print_json(&ShowJson { job, sources });
            }
            if sources.is_empty() {
                writeln!(out, "{job}: no bookmarks")?;
            }
            for source in &sources {
                writeln!(
                    out,
                    "{job} {}: {} objects processed, last by run {}",
                    source.table, source.objects, source.last_run_id
                )?;
            }
        }
        BookmarksCommand::Reset { job, source } => {
            check_names(&history, &job, source.as_deref(), &history.bookmark_summary(&job)?)?;
            let forgotten = history.reset_bookmarks(&job, source.as_deref())?;
            if global.json {
                return print_json(&ResetJson { job, forgotten });
            }
            writeln!(out, "{job}: forgot {forgotten} processed objects")?;
        }
    }
    Ok(())
}

/// A job no run of here knows, or a source it has no bookmarks of, is a mistyped name: an
/// error that says what there is, not an empty answer.
fn check_names(history: &History, job: &str, source: Option<&str>, summary: &[(String, u64, String)]) -> Result<()> {
    if summary.is_empty() && history.list(Some(job), None)?.is_empty() {
        return Err(Error::usage(format!("no run of a job named {job} is recorded in {}", home().display())));
    }
    match source {
        Some(source) if !summary.iter().any(|(table, ..)| table == source) => {
            let known: Vec<&str> = summary.iter().map(|(table, ..)| table.as_str()).collect();
            Err(Error::usage(format!(
                "job {job} has no bookmarks of source {source} (its incremental sources with bookmarks: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )))
        }
        _ => Ok(()),
    }
}
