//! A crawl: infer what a location holds and decide what the catalog records about it.
//!
//! The decision is the Glue crawler's schema-change policy: a new table is created; an
//! unchanged definition records nothing; a changed one is recorded as a new version (`update`),
//! fails the crawl (`fail`), or is reported and ignored (`log`, the catalog keeps its version
//! and readers keep using it). The result is a [`TableChange`] that a crawl publishes at once
//! and a run publishes with its targets, all-or-nothing.

use serde::Serialize;

use super::definition::COMPRESSION_PARAMETER;
use super::{Catalog, DataChange, NewVersion, Partition, Table, TableChange, TableDefinition, TableName};
use crate::error::{Error, Result};
use crate::infer::{InferOptions, Inferred, infer, infer_shapes, sample_files};
use crate::location::Location;
use crate::schema::diff::{Change, diff};
use crate::schema::widen::widen;
use crate::schema::{Column, TableSchema};
use crate::source::files::Listing;
use crate::source::format::Format;

/// What to do when a crawl finds a source's schema changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSchemaChange {
    /// Record a new version and read with the new schema.
    Update,
    /// Fail the run.
    Fail,
    /// Warn, keep the catalog's version, read with it.
    Log,
}

impl std::str::FromStr for OnSchemaChange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "update" => Ok(Self::Update),
            "fail" => Ok(Self::Fail),
            "log" => Ok(Self::Log),
            other => Err(format!("unknown value '{other}' (expected update, fail or log)")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrawlChange {
    Created,
    Unchanged,
    Updated,
    Logged,
}

impl CrawlChange {
    pub fn as_str(self) -> &'static str {
        match self {
            CrawlChange::Created => "created",
            CrawlChange::Unchanged => "unchanged",
            CrawlChange::Updated => "updated",
            CrawlChange::Logged => "logged",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CrawlPlan {
    pub inferred: Inferred,
    pub change: CrawlChange,
    pub diff: Vec<Change>,
    /// The definition readers use: the new one, or the catalog's under `log`.
    pub definition: TableDefinition,
    /// The version readers see once the change is published.
    pub version: u64,
    pub table_change: TableChange,
}

/// A crawl on its own (`etl crawl`): plans it, then publishes it at once.
pub async fn crawl(
    catalog: &dyn Catalog,
    table: &TableName,
    location: &Location,
    options: &InferOptions,
    on_change: OnSchemaChange,
) -> Result<CrawlPlan> {
    let plan = plan(catalog, table, location, options, on_change).await?;
    // A crawled table has no journal (it is not written), so its publication has nothing to
    // warn of: it is applied whole or fails.
    catalog.publish(super::Publication { run_id: None, tables: vec![plan.table_change.clone()] }).await?;
    Ok(plan)
}

pub async fn plan(
    catalog: &dyn Catalog,
    table: &TableName,
    location: &Location,
    options: &InferOptions,
    on_change: OnSchemaChange,
) -> Result<CrawlPlan> {
    let inferred = infer(location, options).await?;
    let current = catalog.table(table).await?;
    decide(table, inferred, current, on_change)
}

/// An incremental crawl: `new` holds only the objects no successful run has processed, so the
/// table's schema is widened by what they hold (never narrowed by what they lack) and their
/// partitions are added to those the table has. With no new object, nothing changes.
pub async fn plan_incremental(
    catalog: &dyn Catalog,
    table: &TableName,
    new: Listing,
    options: &InferOptions,
    on_change: OnSchemaChange,
) -> Result<CrawlPlan> {
    let current = catalog.table(table).await?;
    let (new, shapes) = sample_files(new, options).await?;
    if new.files.is_empty() {
        let Some(current) = current else {
            let why = if new.empty.is_empty() { "no objects to read" } else { "only empty objects" };
            return Err(Error::input(format!("{}: {why}", new.location)));
        };
        let definition = current.definition.clone();
        let inferred = Inferred {
            listing: new,
            format: definition.format,
            schema: definition.schema(),
            dialect: (definition.format == Format::Csv).then(|| definition.csv_dialect()),
            null_values: definition.null_values(),
            rows: Some(0),
            facts: definition.recorded_facts(),
            warnings: Vec::new(),
            typed_by: Default::default(),
        };
        return Ok(CrawlPlan {
            inferred,
            change: CrawlChange::Unchanged,
            diff: Vec::new(),
            definition,
            version: current.version,
            table_change: TableChange {
                name: table.clone(),
                expected_version: Some(current.version),
                new_version: None,
                data: DataChange::None,
            },
        });
    }
    let base = current.as_ref().map(|c| c.definition.schema());
    let mut inferred = infer_shapes(new, shapes, options, base.as_ref()).await?;
    // New objects without the header line the table's files have: read under it, their first
    // records would name columns (see `infer::settle_dialect`, for a whole crawl).
    let table_has_header =
        current.as_ref().is_some_and(|c| c.definition.format == Format::Csv && c.definition.csv_dialect().header);
    if table_has_header && options.header.is_none() && inferred.dialect.as_ref().is_some_and(|d| !d.header) {
        let location = &inferred.listing.location;
        let first = inferred.listing.files.first().map(|f| location.display(&f.path)).unwrap_or_default();
        return Err(Error::input(format!(
            "{location}: {first} has no header line where the files of {table} have one: read under the table's header, its first record would name columns, and Athena would skip it (give the file its header line, keep it apart, or set a source's header option)"
        )));
    }
    if let Some(current) = &current {
        inferred.schema = widened(&current.definition.schema(), &inferred.schema);
        // What Athena is told must hold for the earlier files too.
        inferred.facts = inferred.facts.union(&current.definition.recorded_facts());
    }
    let mut plan = decide(table, inferred, current, on_change)?;
    if let DataChange::Discovered { complete, .. } = &mut plan.table_change.data {
        *complete = false;
    }
    Ok(plan)
}

/// The current columns, each widened by the new schema's, then the new schema's own.
fn widened(current: &TableSchema, new: &TableSchema) -> TableSchema {
    let merge = |current: &[Column], new: &[Column]| {
        let mut merged: Vec<Column> = current
            .iter()
            .map(|c| match new.iter().find(|n| n.name == c.name) {
                Some(n) => Column::new(c.name.clone(), widen(&c.ty, &n.ty)),
                None => c.clone(),
            })
            .collect();
        merged.extend(new.iter().filter(|n| !current.iter().any(|c| c.name == n.name)).cloned());
        merged
    };
    TableSchema {
        columns: merge(&current.columns, &new.columns),
        partition_keys: merge(&current.partition_keys, &new.partition_keys),
    }
}

fn decide(
    table: &TableName,
    inferred: Inferred,
    current: Option<Table>,
    on_change: OnSchemaChange,
) -> Result<CrawlPlan> {
    if let Some(written) = current.as_ref().filter(|t| t.definition.is_written()) {
        // Its definition and partitions are the record of its runs' versions: a crawl would
        // replace them with a listing of every file under the folder, superseded ones too.
        return Err(Error::query(format!(
            "{table} is a table jobs write (over {}), not one a crawl makes; crawl into another table, or read {table} by name in SQL",
            written.definition.location
        )));
    }
    let definition = TableDefinition::crawled(inferred.listing.location.url(), &inferred);
    let partitions = discovered_partitions(&inferred);
    let expected_version = current.as_ref().map(|t| t.version);
    let (change, diff, definition, new_version) = match current {
        None => {
            let diff = diff_definitions(None, &definition);
            let new = NewVersion { definition: definition.clone(), diff: diff.clone() };
            (CrawlChange::Created, diff, definition, Some(new))
        }
        Some(current) if current.definition == definition => (CrawlChange::Unchanged, Vec::new(), definition, None),
        // Which compressions the files use is no part of the schema: Athena takes each file's
        // from its name. A `.gz` object arriving among plain ones makes no new version.
        Some(current) if same_but_compression(&current.definition, &definition) => {
            (CrawlChange::Unchanged, Vec::new(), current.definition, None)
        }
        Some(current) => {
            let changes = diff_definitions(Some(&current.definition), &definition);
            match on_change {
                OnSchemaChange::Update => {
                    let new = NewVersion { definition: definition.clone(), diff: changes.clone() };
                    (CrawlChange::Updated, changes, definition, Some(new))
                }
                OnSchemaChange::Fail => {
                    let described = describe_with_files(&changes, &current.definition, &definition, &inferred);
                    return Err(Error::input(format!(
                        "the schema of {table} changed ({described}) and on_schema_change is fail; nothing was recorded"
                    )));
                }
                OnSchemaChange::Log => (CrawlChange::Logged, changes, current.definition, None),
            }
        }
    };
    let version = expected_version.unwrap_or(0) + u64::from(new_version.is_some());
    Ok(CrawlPlan {
        inferred,
        change,
        diff,
        definition,
        version,
        table_change: TableChange {
            name: table.clone(),
            expected_version,
            new_version,
            data: DataChange::Discovered { partitions, complete: true },
        },
    })
}

fn same_but_compression(old: &TableDefinition, new: &TableDefinition) -> bool {
    let without = |definition: &TableDefinition| {
        let mut definition = definition.clone();
        definition.parameters.remove(COMPRESSION_PARAMETER);
        definition
    };
    without(old) == without(new)
}

fn diff_definitions(old: Option<&TableDefinition>, new: &TableDefinition) -> Vec<Change> {
    diff(&old.map(TableDefinition::schema).unwrap_or_default(), &new.schema())
}

/// What changed, in words; a definition may change without a column changing (location,
/// format, CSV dialect).
pub fn describe(changes: &[Change], old: &TableDefinition, new: &TableDefinition) -> String {
    if !changes.is_empty() {
        return changes.iter().map(Change::describe).collect::<Vec<_>>().join("; ");
    }
    if old.location != new.location {
        return format!("location {} -> {}", old.location, new.location);
    }
    if old.format != new.format {
        return format!("format {} -> {}", old.format, new.format);
    }
    let (old_declared, new_declared) = (old.declared_columns(), new.declared_columns());
    let declared = diff(
        &TableSchema { columns: old_declared, partition_keys: Vec::new() },
        &TableSchema { columns: new_declared, partition_keys: Vec::new() },
    );
    if !declared.is_empty() {
        let changes = declared.iter().map(Change::describe).collect::<Vec<_>>().join("; ");
        return format!("the types declared for Athena: {changes}");
    }
    if old.serde.library != new.serde.library {
        return format!("SerDe {} -> {}", old.serde.library, new.serde.library);
    }
    "storage parameters changed".to_string()
}

/// What changed, each added or retyped column with the file whose values did it (a crawl
/// reads thousands of objects; the one to look at is named).
pub fn describe_with_files(
    changes: &[Change],
    old: &TableDefinition,
    new: &TableDefinition,
    inferred: &Inferred,
) -> String {
    if changes.is_empty() {
        return describe(changes, old, new);
    }
    let described = changes.iter().map(|change| {
        let file = match change {
            Change::Added { name, partition_key: false, .. } | Change::Changed { name, partition_key: false, .. } => {
                inferred.typed_by.get(name)
            }
            _ => None,
        };
        match file {
            Some(file) => format!("{} by {file}", change.describe()),
            None => change.describe(),
        }
    });
    described.collect::<Vec<_>>().join("; ")
}

/// One partition per distinct set of partition values, located at the folder of its files.
fn discovered_partitions(inferred: &Inferred) -> Vec<Partition> {
    if inferred.schema.partition_keys.is_empty() {
        return Vec::new();
    }
    let location = &inferred.listing.location;
    let keys = inferred.schema.partition_keys.len();
    let mut partitions: Vec<Partition> = Vec::new();
    for file in &inferred.listing.files {
        if partitions.iter().any(|p| p.values == file.partition_values) {
            continue;
        }
        let mut parts: Vec<String> = location.relative(&file.path).unwrap_or_default();
        parts.pop();
        // A file above the partition folders (the inference warns of it) makes no partition:
        // Athena reads a partition's folder whole, and one at `k=2/` or at the table's root
        // would read the deeper partitions' files again.
        if parts.len() < keys {
            continue;
        }
        let folder = if parts.is_empty() { location.url() } else { location.join(&parts.join("/")).url() };
        partitions.push(Partition { values: file.partition_values.clone(), location: folder, files: Vec::new() });
    }
    partitions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::local::LocalCatalog;
    use crate::source::files;

    /// An incremental crawl sees only the new files; what Athena is told must still hold for
    /// the earlier ones. Here the earlier file had an empty value in `n`, harmless while the
    /// table was unquoted; a quoted new file makes it OpenCSVSerDe, where that empty value would
    /// fail every query: `n` is declared string though the new file holds none.
    #[tokio::test]
    async fn an_incremental_crawl_declares_for_the_files_it_did_not_read() {
        let home = tempfile::tempdir().unwrap();
        let catalog = LocalCatalog::open(home.path()).unwrap();
        let data = tempfile::tempdir().unwrap();
        let location = Location::parse(data.path().to_str().unwrap()).unwrap();
        let table: TableName = "raw.t".parse().unwrap();
        let options = InferOptions::default();
        std::fs::write(data.path().join("a.csv"), "id,n\nx,1\ny,\n").unwrap();
        let first = crawl(&catalog, &table, &location, &options, OnSchemaChange::Update).await.unwrap();
        assert!(first.definition.athena_types.is_empty(), "LazySimpleSerDe reads the empty value as NULL");

        std::fs::write(data.path().join("b.csv"), "id,n\n\"z\",2\n").unwrap();
        let mut new = files::list(&location).await.unwrap();
        new.files.retain(|f| f.path.as_ref().ends_with("b.csv"));
        let plan = plan_incremental(&catalog, &table, new, &options, OnSchemaChange::Update).await.unwrap();
        assert_eq!(plan.change, CrawlChange::Updated);
        assert_eq!(plan.definition.serde.library, crate::infer::athena::TextSerDe::OPEN_CSV);
        let declared: Vec<(&str, String)> =
            plan.definition.athena_types.iter().map(|(n, a)| (n.as_str(), a.ty.to_string())).collect();
        assert_eq!(declared, [("n", "string".to_string())]);
        assert_eq!(
            describe(&plan.diff, &first.definition, &plan.definition),
            "the types declared for Athena: column n changed from bigint to string"
        );
    }
}
