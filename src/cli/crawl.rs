//! `etl crawl LOCATION --table DB.TABLE`: infer, then create or version the table.

use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, InferenceArgs, print_json};
use crate::catalog::TableName;
use crate::catalog::crawl::OnSchemaChange;
use crate::catalog::crawl::{self, CrawlChange};
use crate::error::Result;
use crate::location::Location;
use crate::schema::Column;
use crate::schema::diff::Change;

#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// A file or a prefix (folder): local path, file://, or s3://bucket/prefix/.
    pub location: String,
    /// The table to create or version, as DATABASE.TABLE.
    #[arg(long)]
    pub table: String,
    /// What a changed schema does: update (new version), fail, or log (keep the version).
    #[arg(long, default_value = "update")]
    pub on_change: OnSchemaChange,
    #[command(flatten)]
    pub inference: InferenceArgs,
}

#[derive(Serialize)]
struct CrawlJson<'a> {
    table: String,
    version: u64,
    change: CrawlChange,
    columns: &'a [Column],
    partition_keys: &'a [Column],
    diff: &'a [Change],
}

pub async fn run(args: CrawlArgs, global: &GlobalArgs) -> Result<()> {
    let table: TableName = args.table.parse()?;
    let location = Location::parse(&args.location)?;
    let catalog = global.catalog().await?;
    let plan = crawl::crawl(catalog.as_ref(), &table, &location, &args.inference.options(), args.on_change).await?;
    if !global.quiet {
        for empty in &plan.inferred.listing.empty {
            eprintln!("warning: skipping empty object {empty}");
        }
        for warning in &plan.inferred.warnings {
            eprintln!("warning: {warning}");
        }
        if plan.change == CrawlChange::Logged {
            eprintln!(
                "warning: the schema of {table} changed ({}); --on-change log keeps version {}",
                crawl::describe(&plan.diff, &plan.definition, &plan.definition),
                plan.version
            );
        }
    }
    let json = CrawlJson {
        table: table.to_string(),
        version: plan.version,
        change: plan.change,
        columns: &plan.definition.columns,
        partition_keys: &plan.definition.partition_keys,
        diff: &plan.diff,
    };
    if global.json {
        return print_json(&json);
    }
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    writeln!(out, "{table}: {} (version {})", plan.change.as_str(), plan.version)?;
    for change in &plan.diff {
        writeln!(out, "  {}", change.describe())?;
    }
    crate::output::write_columns(&mut out, "columns", json.columns)?;
    crate::output::write_columns(&mut out, "partition keys", json.partition_keys)?;
    Ok(())
}
