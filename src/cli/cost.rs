//! `etl cost [QUERY] [-f FILE.sql]`: what Athena would bill for a query, from metadata only.

use std::io::Write;

use clap::Args;

use super::{GlobalArgs, print_json};
use crate::catalog::TableName;
use crate::config::CatalogChoice;
use crate::config::{ETL_ATHENA_OUTPUT, ETL_ATHENA_WORKGROUP, home};
use crate::cost::athena::AthenaOptions;
use crate::cost::billing::DEFAULT_PRICE_PER_TB;
use crate::cost::{self, CostOptions};
use crate::error::{Error, Result};
use crate::output::human_bytes;
use crate::runs::progress::Progress;
use crate::runs::run::{RunContext, query_params};
use crate::transform::params::Params;
use crate::transform::script;

#[derive(Debug, Args)]
pub struct CostArgs {
    /// The SQL to estimate (several statements: DDL runs, each query is billed).
    pub query: Option<String>,
    /// A file of SQL statements.
    #[arg(short = 'f', long = "file")]
    pub file: Option<std::path::PathBuf>,
    /// US dollars per terabyte (2^40 bytes) scanned.
    #[arg(long, default_value_t = DEFAULT_PRICE_PER_TB)]
    pub price_per_tb: f64,
    /// The bill per table, column and partition, and what was pruned and why.
    #[arg(long)]
    pub explain: bool,
    /// Also run the queries here and report the bytes they read.
    #[arg(long)]
    pub measure: bool,
    /// Also run the queries on Athena and report what it scanned.
    #[arg(long)]
    pub athena: bool,
    /// The Athena workgroup (with --athena).
    #[arg(long, env = ETL_ATHENA_WORKGROUP)]
    pub workgroup: Option<String>,
    /// Where Athena writes results, s3://bucket/prefix/ (with --athena).
    #[arg(long, env = ETL_ATHENA_OUTPUT)]
    pub output_location: Option<String>,
    /// A parameter: NAME=VALUE or NAME:TYPE=VALUE.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// The date `$logical_date`, `$week_start` and `$week_end` stand for, as in the run of a
    /// job for that date (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::run::parse_date)]
    pub logical_date: Option<chrono::NaiveDate>,
    /// For the queries given (over this table alone), the bytes under the table's layout and
    /// under the one etl proposes (written once to a temporary folder to measure it).
    #[arg(long, value_name = "DB.TABLE", conflicts_with_all = ["measure", "athena", "explain"])]
    pub advise: Option<TableName>,
}

pub async fn run(args: CostArgs, global: &GlobalArgs) -> Result<()> {
    if !args.price_per_tb.is_finite() || args.price_per_tb < 0.0 {
        return Err(Error::usage(format!(
            "--price-per-tb {}: a price is a number of dollars, 0 or more",
            args.price_per_tb
        )));
    }
    let (name, text) = super::sql::query_text(&args.query, &args.file)?;
    let params = query_params(&args.params, args.logical_date)?;
    if let Some(table) = &args.advise {
        return advise(table, &name, &text, &params, global).await;
    }
    let options = CostOptions {
        price_per_tb: args.price_per_tb,
        explain: args.explain,
        measure: args.measure,
        athena: args.athena.then(|| AthenaOptions {
            workgroup: args.workgroup.clone(),
            output_location: args.output_location.clone(),
        }),
    };
    let json = cost::estimate_script(global.catalog().await?, &home(), &name, &text, &params, &options).await?;
    if global.json {
        return print_json(&json);
    }
    let mut out = std::io::stdout().lock();
    let estimate = &json.estimate;
    writeln!(
        out,
        "{} scanned, billed as {}: ${:.6} at ${} per TB",
        human_bytes(estimate.bytes_scanned),
        human_bytes(estimate.billed_bytes),
        estimate.usd,
        args.price_per_tb
    )?;
    for table in &estimate.tables {
        writeln!(
            out,
            "  {}: {} of {} files, {} of {} row groups, {} ({})",
            table.table,
            table.files - table.files_pruned,
            table.files,
            table.row_groups - table.row_groups_pruned,
            table.row_groups,
            human_bytes(table.bytes),
            table.columns.join(", ")
        )?;
        if let Some(explain) = &table.explain {
            for (column, bytes) in &explain.columns {
                writeln!(out, "      column    {column:<24} {}", human_bytes(*bytes))?;
            }
            if explain.footers > 0 {
                writeln!(out, "      footers   {:<24} {}", "", human_bytes(explain.footers))?;
            }
            for (partition, bytes) in &explain.partitions {
                let label = if partition.is_empty() { "(unpartitioned)" } else { partition };
                writeln!(out, "      partition {label:<24} {}", human_bytes(*bytes))?;
            }
            for reason in &explain.pruned {
                writeln!(out, "      pruned    {reason}")?;
            }
        }
    }
    if let Some(reads) = &json.measured {
        writeln!(out, "measured: the queries read {} in {} requests", human_bytes(reads.bytes_read), reads.requests)?;
    }
    for run in &json.athena {
        writeln!(out, "athena: query {} scanned {}", run.query_execution_id, human_bytes(run.data_scanned_in_bytes))?;
    }
    Ok(())
}

async fn advise(table: &TableName, name: &str, text: &str, params: &Params, global: &GlobalArgs) -> Result<()> {
    let context = RunContext::open(CatalogChoice::resolve(global.catalog, None), &home(), Progress::hidden()).await?;
    let advice = crate::runs::advise::advise(&context, table, name, &script::split(text), params).await?;
    if global.json {
        return print_json(&advice);
    }
    let mut out = std::io::stdout().lock();
    let ratio = |current: u64, proposed: u64| match current {
        0 => "-".to_string(),
        current => format!("{:.2}", proposed as f64 / current as f64),
    };
    writeln!(out, "{:>12} {:>12} {:>6}  query", "now", "proposed", "ratio")?;
    for query in &advice.queries {
        let first_line = query.query.lines().next().unwrap_or("");
        writeln!(
            out,
            "{:>12} {:>12} {:>6}  {name}:{} {first_line}",
            human_bytes(query.current_bytes),
            human_bytes(query.proposed_bytes),
            ratio(query.current_bytes, query.proposed_bytes),
            query.line
        )?;
    }
    writeln!(
        out,
        "{:>12} {:>12} {:>6}  all queries",
        human_bytes(advice.current_bytes),
        human_bytes(advice.proposed_bytes),
        ratio(advice.current_bytes, advice.proposed_bytes)
    )?;
    let list: Vec<String> = advice.sort_by.iter().map(|c| format!("\"{c}\"")).collect();
    let sort_by = format!("sort_by = [{}]", list.join(", "));
    let target = match advice.written {
        true => format!("the target that writes {}", advice.table),
        false => format!("a job's target writing {}'s rows as Parquet", advice.table),
    };
    match advice.proposed_bytes < advice.current_bytes {
        true => writeln!(out, "proposed: {sort_by} on {target} ({})", advice.reason)?,
        false if advice.sort_by.is_empty() => writeln!(out, "keep the current layout ({})", advice.reason)?,
        false => {
            writeln!(out, "keep the current layout: {sort_by} on {target} would scan no less ({})", advice.reason)?
        }
    }
    Ok(())
}
