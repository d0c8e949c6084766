//! `etl gc [DB.TABLE…] [--dry-run]`: removes the files runs that never published left under
//! the tables jobs write (every such table of the catalog when none is named), and says what
//! it removed.

use std::io::Write;

use clap::Args;

use super::{GlobalArgs, print_json};
use crate::catalog::TableName;
use crate::config::home;
use crate::error::{Error, Result};
use crate::output::human_bytes;
use crate::runs::history::History;
use crate::sink::gc::{CatalogSweep, sweep_catalog};

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Tables to sweep; all tables that jobs write when none is named.
    pub tables: Vec<TableName>,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: GcArgs, global: &GlobalArgs) -> Result<()> {
    let catalog = global.catalog().await?;
    let history = History::open(&home())?;
    let report = sweep_catalog(catalog.as_ref(), &args.tables, &history, args.dry_run).await?;
    for (name, why) in &report.failed {
        eprintln!("warning: {name} was not swept: {why}");
    }
    if global.json {
        print_json(&report)?;
    } else {
        write_report(&report, args.dry_run)?;
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        let names: Vec<String> = report.failed.iter().map(|(name, _)| name.to_string()).collect();
        Err(Error::runtime(format!("{} tables could not be swept: {}", names.len(), names.join(", "))))
    }
}

fn write_report(report: &CatalogSweep, dry_run: bool) -> Result<()> {
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
