//! `etl compact DB.TABLE [--partition k=v]… [--target-file-size 128M] [--sort-by a,b] [--zorder]`: a
//! written table's files rewritten into fewer, sorted ones, as one new version.

use std::io::Write;

use clap::Args;

use super::{GlobalArgs, print_json};
use crate::catalog::TableName;
use crate::config::{CatalogChoice, home, parse_size};
use crate::error::{Error, Result};
use crate::output::human_bytes;
use crate::runs::compact::{Compaction, DEFAULT_TARGET_FILE_BYTES, Order, compact};
use crate::runs::progress::Progress;
use crate::runs::run::{RunContext, RunOutcome};

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The table, as DB.TABLE.
    pub table: TableName,
    /// Only the partitions where KEY is VALUE (repeat for several keys; a key repeated takes either value).
    #[arg(long = "partition", value_name = "KEY=VALUE", value_parser = parse_partition)]
    pub partitions: Vec<(String, String)>,
    /// About this many bytes per file (default 128M).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub target_file_size: Option<usize>,
    /// The order of the rows within each partition, comma-separated (default: the order the
    /// files were written in, which each records; an empty value keeps the table's order).
    /// Every selected partition is rewritten in it.
    #[arg(long, value_name = "COLUMNS")]
    pub sort_by: Option<String>,
    /// Order the rows by the Z-order of the sort columns (their bits interleaved), so that
    /// filters on any of them prune, rather than by one column after another.
    #[arg(long)]
    pub zorder: bool,
}

fn parse_partition(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

pub async fn run(args: CompactArgs, global: &GlobalArgs) -> Result<()> {
    let progress = Progress::on_terminal(!global.json && !global.quiet, global.verbose);
    let context = RunContext::open(CatalogChoice::resolve(global.catalog, None), &home(), progress).await?;
    let sort_by = args
        .sort_by
        .as_deref()
        .map(|list| list.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect::<Vec<_>>());
    let request = Compaction {
        table: args.table,
        partitions: args.partitions,
        target_file_bytes: args.target_file_size.map(|b| b as u64).unwrap_or(DEFAULT_TARGET_FILE_BYTES),
        layout: None,
        order: (sort_by.is_some() || args.zorder).then_some(Order { sort_by, zorder: args.zorder }),
        more_files_than: None,
    };
    let (report, outcome) = compact(&request, &context).await?;
    if let Some(RunOutcome { error: Some(error), report: run }) = outcome {
        return Err(Error::new(
            error.kind(),
            format!("the compaction of {} (run {}) failed: {}", report.table, run.run_id, error.message()),
        ));
    }
    if global.json {
        return print_json(&report);
    }
    if global.quiet {
        return Ok(());
    }
    let version = report.version.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let Some(run_id) = &report.run_id else {
        writeln!(
            std::io::stdout().lock(),
            "{}: nothing to compact: the {} files ({}) of the selected partitions are as few as their size allows; still version {version}",
            report.table,
            report.files_before,
            human_bytes(report.bytes_before),
        )?;
        return Ok(());
    };
    let sorted = match (report.sort_by.is_empty(), report.zorder) {
        (true, _) => String::new(),
        (false, false) => format!(", sorted by {}", report.sort_by.join(", ")),
        (false, true) => format!(", in the Z-order of {}", report.sort_by.join(", ")),
    };
    writeln!(
        std::io::stdout().lock(),
        "compacted {}: {} files ({}) -> {} files ({}) in {} partition(s){sorted}; version {version} (run {run_id})",
        report.table,
        report.files_before,
        human_bytes(report.bytes_before),
        report.files_after,
        human_bytes(report.bytes_after),
        report.partitions,
    )?;
    Ok(())
}
