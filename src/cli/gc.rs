//! `etl gc [DB.TABLE…] [--dry-run]`: removes the files runs that never published left under
//! the tables jobs write (every such table of the catalog when none is named), and says what
//! it removed.

use std::io::Write;

use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::catalog::TableName;
use crate::config::home;
use crate::error::{Error, Result};
use crate::output::human_bytes;
use crate::runs::history::History;
use crate::sink::gc::{Garbage, sweep};

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Tables to sweep; all tables that jobs write when none is named.
    pub tables: Vec<TableName>,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Serialize)]
struct GcJson {
    dry_run: bool,
    tables: u64,
    removed: Vec<Garbage>,
    bytes: u64,
    /// Objects of runs that may still be running, left alone.
    live: u64,
}

pub async fn run(args: GcArgs, global: &GlobalArgs) -> Result<()> {
    let catalog = global.catalog().await?;
    let history = History::open(&home())?;
    let mut names = args.tables;
    let every_table = names.is_empty();
    if every_table {
        for database in catalog.databases().await? {
            for table in catalog.tables(&database).await? {
                names.push(TableName::new(&database, &table)?);
            }
        }
    }
    let mut report = GcJson { dry_run: args.dry_run, tables: 0, removed: Vec::new(), bytes: 0, live: 0 };
    let mut failed = Vec::new();
    for name in &names {
        let swept = async { sweep(catalog.as_ref(), &catalog.require(name).await?, &history, args.dry_run).await };
        let swept = match swept.await {
            Ok(swept) => swept,
            // One unreadable table does not keep a sweep of the whole catalog from the others.
            Err(e) if every_table => {
                eprintln!("warning: {name} was not swept: {}", e.message());
                failed.push(name.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        report.tables += 1;
        report.live += swept.live;
        report.bytes += swept.removed.iter().map(|g| g.bytes).sum::<u64>();
        report.removed.extend(swept.removed);
    }
    if global.json {
        print_json(&report)?;
    } else {
        write_report(&report, args.dry_run)?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::runtime(format!("{} tables could not be swept: {}", failed.len(), failed.join(", "))))
    }
}

fn write_report(report: &GcJson, dry_run: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let verb = if dry_run { "would remove" } else { "removed" };
    for garbage in &report.removed {
        writeln!(
            out,
            "{verb} {} ({}, run {} of {})",
            garbage.path,
            human_bytes(garbage.bytes),
            garbage.run_id,
            garbage.table
        )?;
    }
    writeln!(
        out,
        "{verb} {} objects ({}) from {} tables{}",
        report.removed.len(),
        human_bytes(report.bytes),
        report.tables,
        if report.live > 0 { format!("; left {} objects of runs still running", report.live) } else { String::new() }
    )?;
    Ok(())
}
