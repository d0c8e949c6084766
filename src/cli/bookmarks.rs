//! `etl bookmarks show|reset JOB`: what the incremental sources of a job have processed.

use std::io::Write;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::config::home;
use crate::error::Result;
use crate::runs::history::History;

#[derive(Debug, Args)]
pub struct BookmarksArgs {
    #[command(subcommand)]
    pub command: BookmarksCommand,
}

#[derive(Debug, Subcommand)]
pub enum BookmarksCommand {
    /// Objects processed per incremental source.
    Show { job: String },
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
        BookmarksCommand::Show { job } => {
            let sources = history
                .bookmark_summary(&job)?
                .into_iter()
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
            let forgotten = history.reset_bookmarks(&job, source.as_deref())?;
            if global.json {
                return print_json(&ResetJson { job, forgotten });
            }
            writeln!(out, "{job}: forgot {forgotten} processed objects")?;
        }
    }
    Ok(())
}
