//! `etl schema show|history|diff`: a table's definition and its versions.
//!
//! `show` lists each column with the type etl reads and, where Glue declares another for
//! Athena's SerDe (or Athena reads the values otherwise), what Athena sees and why. History and
//! diffs are of etl's types: those are the schema a crawl versions.

use std::collections::BTreeMap;
use std::io::Write;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::catalog::definition::AthenaType;
use crate::catalog::{Catalog, Partition, TableDefinition, TableName};
use crate::error::{Error, Result};
use crate::schema::Column;
use crate::schema::diff::{Change, diff};

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(subcommand)]
    pub command: SchemaCommand,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// The current definition.
    Show { table: String },
    /// Every version, oldest first.
    History { table: String },
    /// What changed from version V1 to version V2.
    Diff { table: String, from: u64, to: u64 },
}

#[derive(Serialize)]
struct ShowJson<'a> {
    table: String,
    version: u64,
    created_at: String,
    updated_at: String,
    #[serde(flatten)]
    definition: &'a TableDefinition,
    partitions: Vec<PartitionJson<'a>>,
}

#[derive(Serialize)]
struct PartitionJson<'a> {
    values: &'a [Option<String>],
    location: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<usize>,
}

#[derive(Serialize)]
struct HistoryJson {
    table: String,
    versions: Vec<VersionJson>,
}

#[derive(Serialize)]
struct VersionJson {
    version: u64,
    created_at: String,
    columns: Vec<Column>,
    partition_keys: Vec<Column>,
    change: &'static str,
    run_id: Option<String>,
    diff: Vec<Change>,
}

#[derive(Serialize, Default)]
struct DiffJson {
    table: String,
    from: u64,
    to: u64,
    added: Vec<serde_json::Value>,
    removed: Vec<serde_json::Value>,
    changed: Vec<serde_json::Value>,
}

pub async fn run(args: SchemaArgs, global: &GlobalArgs) -> Result<()> {
    let catalog = global.catalog().await?;
    let mut out = std::io::stdout().lock();
    match args.command {
        SchemaCommand::Show { table } => show(catalog.as_ref(), &table.parse()?, global.json, &mut out).await,
        SchemaCommand::History { table } => history(catalog.as_ref(), &table.parse()?, global.json, &mut out).await,
        SchemaCommand::Diff { table, from, to } => {
            diff_versions(catalog.as_ref(), &table.parse()?, from, to, global.json, &mut out).await
        }
    }
}

async fn show(catalog: &dyn Catalog, name: &TableName, json: bool, out: &mut impl Write) -> Result<()> {
    let table = catalog.require(name).await?;
    let partitions: Vec<Partition> = catalog.partitions(name).await?;
    if json {
        return print_json(&ShowJson {
            table: name.to_string(),
            version: table.version,
            created_at: table.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            updated_at: table.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            definition: &table.definition,
            partitions: partitions
                .iter()
                .map(|p| PartitionJson {
                    values: &p.values,
                    location: &p.location,
                    files: (!p.files.is_empty()).then_some(p.files.len()),
                })
                .collect(),
        });
    }
    let d = &table.definition;
    writeln!(out, "{name} (version {}, {})", table.version, d.format)?;
    writeln!(out, "location: {}", d.location)?;
    writeln!(out, "serde: {}", d.serde.library)?;
    writeln!(out, "input format: {}\noutput format: {}", d.input_format, d.output_format)?;
    write_columns(out, &d.columns, &d.athena_types)?;
    crate::output::write_columns(out, "partition keys", &d.partition_keys)?;
    if !partitions.is_empty() {
        writeln!(out, "partitions: {}", partitions.len())?;
    }
    Ok(())
}

/// The columns, and beside each one Athena reads otherwise, what it reads and why.
fn write_columns(out: &mut impl Write, columns: &[Column], athena: &BTreeMap<String, AthenaType>) -> Result<()> {
    if athena.is_empty() {
        return crate::output::write_columns(out, "columns", columns);
    }
    writeln!(out, "columns:")?;
    let name_width = columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let types: Vec<String> = columns.iter().map(|c| c.ty.to_string()).collect();
    let type_width = types.iter().map(String::len).max().unwrap_or(0);
    for (column, ty) in columns.iter().zip(&types) {
        let line = match athena.get(&column.name) {
            Some(a) => format!("  {:name_width$}  {ty:type_width$}  athena: {} ({})", column.name, a.ty, a.reason),
            None => format!("  {:name_width$}  {ty}", column.name),
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

async fn history(catalog: &dyn Catalog, name: &TableName, json: bool, out: &mut impl Write) -> Result<()> {
    catalog.require(name).await?;
    let versions = catalog.versions(name).await?;
    let history = HistoryJson {
        table: name.to_string(),
        versions: versions
            .into_iter()
            .map(|v| VersionJson {
                version: v.version,
                created_at: v.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                columns: v.definition.columns,
                partition_keys: v.definition.partition_keys,
                change: v.change.as_str(),
                run_id: v.run_id,
                diff: v.diff,
            })
            .collect(),
    };
    if json {
        return print_json(&history);
    }
    for v in &history.versions {
        let by = v.run_id.as_deref().map(|r| format!(" by run {r}")).unwrap_or_default();
        writeln!(out, "version {}  {}  {}{by}", v.version, v.created_at, v.change)?;
        for change in &v.diff {
            writeln!(out, "  {}", change.describe())?;
        }
    }
    Ok(())
}

async fn diff_versions(
    catalog: &dyn Catalog,
    name: &TableName,
    from: u64,
    to: u64,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    catalog.require(name).await?;
    let versions = catalog.versions(name).await?;
    let find = |v: u64| {
        versions
            .iter()
            .find(|x| x.version == v)
            .ok_or_else(|| Error::not_found(format!("{name} has no version {v} (versions 1 to {})", versions.len())))
    };
    let (old, new) = (find(from)?, find(to)?);
    let changes = diff(&old.definition.schema(), &new.definition.schema());
    let mut document = DiffJson { table: name.to_string(), from, to, ..DiffJson::default() };
    for change in &changes {
        let mut value = serde_json::to_value(change)?;
        value.as_object_mut().map(|o| o.remove("op"));
        match change {
            Change::Added { .. } => document.added.push(value),
            Change::Removed { .. } => document.removed.push(value),
            Change::Changed { .. } => document.changed.push(value),
        }
    }
    if json {
        return print_json(&document);
    }
    writeln!(out, "{name}: version {from} -> {to}")?;
    if changes.is_empty() {
        writeln!(out, "  no column changes")?;
    }
    for change in &changes {
        writeln!(out, "  {}", change.describe())?;
    }
    Ok(())
}
