//! `etl sql [QUERY] [-f FILE.sql]`: SQL over the catalog's tables.

use clap::Args;
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

use super::GlobalArgs;
use crate::error::{Error, Result};
use crate::output::{RowFormat, write_rows};
use crate::runs::run::query_params;
use crate::transform::params::Params;
use crate::transform::script;
use crate::transform::session::{EngineOptions, session};

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL to run (statements separated by `;`; the last one's rows are printed).
    pub query: Option<String>,
    /// A file of SQL statements.
    #[arg(short = 'f', long = "file")]
    pub file: Option<std::path::PathBuf>,
    /// table (default), csv or json.
    #[arg(long, value_enum)]
    pub format: Option<RowFormat>,
    /// A parameter: NAME=VALUE or NAME:TYPE=VALUE (int, bigint, double, date, timestamp, string).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// The date `$logical_date`, `$week_start` and `$week_end` stand for, as in the run of a
    /// job for that date (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::run::parse_date)]
    pub logical_date: Option<chrono::NaiveDate>,
    #[command(flatten)]
    pub engine: super::EngineArgs,
}

/// The SQL of `QUERY` or `-f FILE` (exactly one), and how messages name it.
pub fn query_text(query: &Option<String>, file: &Option<std::path::PathBuf>) -> Result<(String, String)> {
    match (query, file) {
        (Some(query), None) => Ok(("query".to_string(), query.clone())),
        (None, Some(file)) => Ok((
            file.display().to_string(),
            std::fs::read_to_string(file).map_err(|e| Error::config(format!("{}: {e}", file.display())))?,
        )),
        (Some(_), Some(_)) => Err(Error::usage("give a QUERY or -f FILE, not both")),
        (None, None) => Err(Error::usage("give a QUERY or -f FILE")),
    }
}

pub async fn run(args: SqlArgs, global: &GlobalArgs) -> Result<()> {
    let (name, text) = query_text(&args.query, &args.file)?;
    let params = query_params(&args.params, args.logical_date)?;
    let catalog = global.catalog().await?;
    let engine = EngineOptions { engine: args.engine.engine, ..EngineOptions::default() };
    let mut attempts = 0;
    let batches = loop {
        let ctx = session(catalog.clone(), Default::default(), &engine).await?;
        match rows(&ctx, &name, &text, &params).await {
            // A publication that committed while the query read replaced the files it had
            // planned on (they moved aside): planned again, it reads the new version whole.
            Err(e) if e.is_missing_object() && attempts < 2 => attempts += 1,
            done => break done?,
        }
    };
    let format = match (global.json, args.format) {
        (true, Some(RowFormat::Table | RowFormat::Csv)) => {
            return Err(Error::usage("--json prints JSON rows: give it or --format, not both"));
        }
        (true, _) => RowFormat::Json,
        (false, format) => format.unwrap_or(RowFormat::Table),
    };
    let mut out = std::io::stdout().lock();
    write_rows(&mut out, &batches, format)
}

/// The rows of the script's last statement (none for DDL).
async fn rows(ctx: &SessionContext, name: &str, text: &str, params: &Params) -> Result<Vec<RecordBatch>> {
    let Some(frame) = script::run(ctx, name, text, params).await? else { return Ok(Vec::new()) };
    let schema = frame.schema().inner().clone();
    // Errors found while running point at the statement that was run: the last one.
    let line = script::split(text).last().map_or(1, |s| s.line);
    let mut batches = frame.collect().await.map_err(|e| Error::from(e).context(format!("{name}:{line}")))?;
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(schema));
    }
    Ok(batches)
}
