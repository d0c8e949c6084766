//! `etl infer LOCATION`: the schema a crawl would record, without recording it.

use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, InferenceArgs, print_json};
use crate::error::Result;
use crate::infer::infer;
use crate::location::Location;
use crate::output::human_bytes;
use crate::schema::Column;

#[derive(Debug, Args)]
pub struct InferArgs {
    /// A file or a prefix (folder): local path, file://, or s3://bucket/prefix/.
    pub location: String,
    #[command(flatten)]
    pub inference: InferenceArgs,
}

#[derive(Serialize)]
struct InferJson<'a> {
    location: String,
    format: String,
    columns: &'a [Column],
    partition_keys: &'a [Column],
    files: usize,
    bytes: u64,
}

pub async fn run(args: InferArgs, global: &GlobalArgs) -> Result<()> {
    let location = Location::parse(&args.location)?;
    let inferred = infer(&location, &args.inference.options()).await?;
    if !global.quiet {
        for empty in &inferred.listing.empty {
            eprintln!("warning: skipping empty object {empty}");
        }
        for warning in &inferred.warnings {
            eprintln!("warning: {warning}");
        }
    }
    let json = InferJson {
        location: args.location.clone(),
        format: inferred.format.to_string(),
        columns: &inferred.schema.columns,
        partition_keys: &inferred.schema.partition_keys,
        files: inferred.listing.files.len(),
        bytes: inferred.listing.bytes(),
    };
    if global.json {
        return print_json(&json);
    }
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    writeln!(out, "{}: {} files, {} ({})", args.location, json.files, human_bytes(json.bytes), json.format)?;
    if let Some(dialect) = &inferred.dialect {
        writeln!(
            out,
            "csv: delimiter {:?}, {}",
            dialect.delimiter as char,
            if dialect.header { "header" } else { "no header" }
        )?;
    }
    crate::output::write_columns(&mut out, "columns", json.columns)?;
    crate::output::write_columns(&mut out, "partition keys", json.partition_keys)?;
    Ok(())
}
