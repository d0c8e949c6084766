//! 3. Where tables are recorded: the [`Catalog`] trait, its embedded implementation, the
//! Athena-ready table definition, and the bridge that shows catalog tables to DataFusion.
//!
//! A table has immutable numbered versions (the full definition, when, by which run, what
//! changed) and a current version. Every update names the version it read; an update against
//! a version that is no longer current fails as a conflict, so two writers never lose each
//! other's change. Data changes arrive as one [`Publication`] per run, applied all-or-nothing
//! across every table it touches.

pub mod crawl;
pub mod definition;
pub mod glue;
pub mod journal;
pub mod local;
mod parquet_names;
pub mod parquet_reader;
pub mod provider;
pub mod versions;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use definition::TableDefinition;

use crate::config::CatalogChoice;
use crate::error::{Error, Result};
use crate::schema::diff::Change;

/// `database.table`, both in Glue's form: lower case letters, digits and underscores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableName {
    pub database: String,
    pub table: String,
}

impl TableName {
    /// A table named inside an SQL string (`version_of('Mart.Orders', 1)`): case-insensitive,
    /// as the unquoted `FROM Mart.Orders` is.
    pub fn in_sql_text(text: &str) -> Result<Self> {
        text.to_lowercase().parse()
    }

    pub fn new(database: &str, table: &str) -> Result<Self> {
        for (what, name) in [("database", database), ("table", table)] {
            if name.is_empty() || name.len() > 255 {
                return Err(Error::config(format!("{what} name '{name}' must be 1 to 255 characters")));
            }
            if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return Err(Error::config(format!(
                    "{what} name '{name}' must be lower-case letters, digits and underscores, as Glue stores names"
                )));
            }
        }
        Ok(TableName { database: database.to_string(), table: table.to_string() })
    }

    /// `"db"."table"`, for SQL that etl writes.
    pub fn quoted(&self) -> String {
        format!("{}.{}", crate::schema::names::quoted(&self.database), crate::schema::names::quoted(&self.table))
    }
}

impl FromStr for TableName {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text.split_once('.') {
            Some((database, table)) if !table.contains('.') => TableName::new(database, table),
            _ => Err(Error::config(format!("table name '{text}' must be DATABASE.TABLE"))),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

/// The current state of a table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub name: TableName,
    pub version: u64,
    pub definition: TableDefinition,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a version was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionChange {
    Created,
    Updated,
}

impl VersionChange {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionChange::Created => "created",
            VersionChange::Updated => "updated",
        }
    }
}

/// One immutable version of a table.
#[derive(Debug, Clone, Serialize)]
pub struct TableVersion {
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub run_id: Option<String>,
    pub change: VersionChange,
    pub diff: Vec<Change>,
    pub definition: TableDefinition,
}

/// A partition: its values (as folder text, `None` for null) and the folder its files are in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    pub values: Vec<Option<String>>,
    pub location: String,
    /// The files of a written table's partition (empty for crawled tables, whose files are
    /// whatever the location holds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DataFile>,
}

/// A Parquet file a run wrote, with what the report and the cost estimate need, and which run
/// of which job, logical date and parameters wrote it (so a rerun can replace its own output).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DataFile {
    /// Absolute URL (`file:///…`, `s3://…`).
    pub path: String,
    pub size: u64,
    pub rows: u64,
    pub job: String,
    pub logical_date: String,
    /// The run's resolved parameters ([`crate::transform::params::Params::fingerprint`]);
    /// empty for files written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub params: String,
    /// For a file `etl compact` wrote: the works whose rows it merged, which no rerun can take
    /// out of it again (it keeps no row's origin).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "absorbed_by_job")]
    pub absorbed: Vec<Work>,
}

impl DataFile {
    /// The work that wrote this file's rows.
    pub fn work(&self) -> Work {
        Work { job: self.job.clone(), logical_date: self.logical_date.clone(), params: self.params.clone() }
    }

    /// The works whose rows the file holds: those it absorbed, else its own.
    pub fn works(&self) -> Vec<Work> {
        match self.absorbed.is_empty() {
            true => vec![self.work()],
            false => self.absorbed.clone(),
        }
    }
}

/// What a rerun replaces: the rows of one job's run for one logical date and parameters.
/// Stored by [`absorbed_by_job`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Work {
    pub job: String,
    pub logical_date: String,
    /// The run's resolved parameters ([`crate::transform::params::Params::fingerprint`]): a
    /// run with other parameters (another batch of the same day) is other work, whose files a
    /// rerun keeps.
    pub params: String,
}

/// A compacted file's works, stored as their dates under each job and parameters: a year of
/// daily runs is ~13 bytes a day, not ~100, in the file lists Glue keeps in one parameter
/// value (512,000 characters at most).
pub(crate) mod absorbed_by_job {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Work;

    #[derive(Serialize, Deserialize)]
    struct Dates {
        job: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        params: String,
        logical_dates: Vec<String>,
    }

    pub fn serialize<S: Serializer>(works: &[Work], serializer: S) -> Result<S::Ok, S::Error> {
        let mut grouped: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for work in works {
            grouped.entry((&work.job, &work.params)).or_default().push(work.logical_date.clone());
        }
        let dates = grouped.into_iter().map(|((job, params), logical_dates)| Dates {
            job: job.to_string(),
            params: params.to_string(),
            logical_dates,
        });
        serializer.collect_seq(dates)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Work>, D::Error> {
        let grouped = Vec::<Dates>::deserialize(deserializer)?;
        let mut works: Vec<Work> = grouped
            .into_iter()
            .flat_map(|Dates { job, params, logical_dates }| {
                logical_dates.into_iter().map(move |logical_date| Work {
                    job: job.clone(),
                    logical_date,
                    params: params.clone(),
                })
            })
            .collect();
        works.sort();
        Ok(works)
    }
}

/// How a run's output replaces what a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Adds files; a rerun of the same job and logical date replaces what that run added.
    Append,
    /// Replaces the whole table.
    #[default]
    Overwrite,
    /// Replaces the partitions the output has rows for; others stay.
    OverwritePartitions,
    /// Upserts the output's rows by key (a Delta MERGE; [`crate::sink::MergeSpec`] says how).
    Merge,
}

impl FromStr for WriteMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "append" => Ok(WriteMode::Append),
            "overwrite" => Ok(WriteMode::Overwrite),
            "overwrite_partitions" => Ok(WriteMode::OverwritePartitions),
            "merge" => Ok(WriteMode::Merge),
            other => Err(format!("unknown mode '{other}' (expected append, overwrite, overwrite_partitions or merge)")),
        }
    }
}

/// A new definition of a table. It is a new version when the schema (or format) changed; a
/// change of location alone (a written table's new folder) updates the current version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewVersion {
    pub definition: TableDefinition,
    pub diff: Vec<Change>,
}

/// What a publication does to one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableChange {
    pub name: TableName,
    /// The version the writer read; `None` when it found no table. A different current version
    /// at commit time is a conflict.
    pub expected_version: Option<u64>,
    /// A new definition, when it changed (or the table is new).
    pub new_version: Option<NewVersion>,
    pub data: DataChange,
}

impl TableChange {
    /// Whether this is a crawl's change and `current` already is the definition it records:
    /// two runs crawling one source that changed both find the same schema, and the one that
    /// publishes second has nothing to record that the first did not.
    pub fn crawled_as(&self, current: Option<&TableDefinition>) -> bool {
        matches!(self.data, DataChange::Discovered { .. })
            && self.new_version.as_ref().is_some_and(|new| current == Some(&new.definition))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataChange {
    None,
    /// A crawl's view of partitions (no file manifest): all that exist (`complete`), or new
    /// ones to add (an incremental crawl sees only new objects).
    Discovered {
        partitions: Vec<Partition>,
        complete: bool,
    },
    /// A run's output: partitions that take new folders, partitions that go.
    Written(WrittenData),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WrittenData {
    /// Partitions whose folder the publication sets, each with its complete list of files.
    pub upserts: Vec<PartitionWrite>,
    /// Partitions the publication removes.
    pub drops: Vec<PartitionWrite>,
    /// What the data version this publication makes records beside its files.
    #[serde(default)]
    pub note: VersionNote,
}

/// What a publication of a written table records about itself, beyond its files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionNote {
    /// How many of the latest versions keep their files (the writer's setting).
    pub retain_versions: u32,
    /// The version whose data this publication makes current again, for a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
    /// The checks the data passed (or failed with severity warn), as the checker recorded
    /// them: the catalog keeps them without reading them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<serde_json::Value>,
    /// Set by a catalog that journals its publications (Glue) before the commit point, so that
    /// finishing the publication later records the same version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared: Option<PreparedVersion>,
    /// The version of the table's Delta log that holds the same files (Delta tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_version: Option<u64>,
}

/// A data version decided before its publication is applied, with the object that lists its
/// partitions (Glue keeps no history of partitions; the table's versions point at these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparedVersion {
    #[serde(flatten)]
    pub version: DataVersion,
    pub manifest: String,
}

/// One publication of a written table's data: its run, what it held, and why it was made.
/// Data versions count publications (`etl table history`); schema versions count changes of
/// the definition (`etl schema history`): a rerun is a new data version of the same schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataVersion {
    pub version: u64,
    pub run_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub rows: u64,
    pub bytes: u64,
    pub files: u64,
    pub rollback_of: Option<u64>,
    /// The schema version the data was written with.
    pub schema_version: u64,
    pub retain_versions: u32,
    #[serde(default)]
    pub checks: Vec<serde_json::Value>,
    /// The version of the table's Delta log that holds the same files (Delta tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_version: Option<u64>,
}

impl DataVersion {
    /// The version that `partitions` (the table after a publication) make.
    pub fn of(
        version: u64,
        run_id: Option<String>,
        created_at: DateTime<Utc>,
        schema_version: u64,
        note: &VersionNote,
        partitions: &[Partition],
    ) -> Self {
        let files = partitions.iter().flat_map(|p| &p.files);
        DataVersion {
            version,
            run_id,
            created_at,
            rows: files.clone().map(|f| f.rows).sum(),
            bytes: files.clone().map(|f| f.size).sum(),
            files: files.count() as u64,
            rollback_of: note.rollback_of,
            schema_version,
            retain_versions: note.retain_versions,
            checks: note.checks.clone(),
            delta_version: note.delta_version,
        }
    }
}

/// A written table's partitions after a change: `current`, with `written`'s upserts set and
/// drops removed.
pub fn partitions_after(current: &[Partition], written: &WrittenData) -> Vec<Partition> {
    let mut partitions: std::collections::BTreeMap<Vec<Option<String>>, Partition> =
        current.iter().map(|p| (p.values.clone(), p.clone())).collect();
    for drop in &written.drops {
        partitions.remove(&drop.partition.values);
    }
    for upsert in &written.upserts {
        partitions.insert(upsert.partition.values.clone(), upsert.partition.clone());
    }
    partitions.into_values().collect()
}

/// One partition's change, with what the writer based it on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionWrite {
    pub partition: Partition,
    /// When the new partition keeps files of the old one (an append), the old one's folder as
    /// the writer read it: `Some(None)` for "there was none". A different folder at commit
    /// time is a conflict (another run changed the partition first). `None`: no expectation,
    /// the partition is replaced whatever it holds.
    pub based_on: Option<Option<String>>,
}

/// Everything one run (or one crawl) changes, applied all-or-nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Publication {
    pub run_id: Option<String>,
    pub tables: Vec<TableChange>,
}

/// What a publication did: the version of each table after it (in order), the data version of
/// each written one, the partitions it replaced or removed, whose files no catalog entry
/// names as current any more, and what the run should warn of (a publication that stands but
/// whose application another command finishes).
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub versions: Vec<u64>,
    pub data_versions: Vec<Option<u64>>,
    pub replaced: Vec<Partition>,
    pub warnings: Vec<String>,
}

#[async_trait]
pub trait Catalog: Send + Sync + fmt::Debug {
    /// `local` or `glue`.
    fn kind(&self) -> &'static str;
    async fn databases(&self) -> Result<Vec<String>>;
    async fn tables(&self, database: &str) -> Result<Vec<String>>;
    async fn table(&self, name: &TableName) -> Result<Option<Table>>;
    /// Every version, oldest first.
    async fn versions(&self, name: &TableName) -> Result<Vec<TableVersion>>;
    async fn partitions(&self, name: &TableName) -> Result<Vec<Partition>>;
    /// Applies a publication all-or-nothing; a conflict changes nothing.
    async fn publish(&self, publication: Publication) -> Result<Published>;
    /// Every publication of a written table's data, oldest first (none for crawled tables).
    async fn data_versions(&self, name: &TableName) -> Result<Vec<DataVersion>>;
    /// The partitions, with their files as published, that a written table had at a data
    /// version.
    async fn snapshot(&self, name: &TableName, version: u64) -> Result<Vec<Partition>>;
    /// The snapshots of several data versions, in the order asked (a catalog that reads its
    /// history in one call reads it once).
    async fn snapshots(&self, name: &TableName, versions: &[u64]) -> Result<Vec<Vec<Partition>>> {
        let mut out = Vec::with_capacity(versions.len());
        for version in versions {
            out.push(self.snapshot(name, *version).await?);
        }
        Ok(out)
    }

    /// The table, or a "not found" error naming it.
    async fn require(&self, name: &TableName) -> Result<Table> {
        self.table(name).await?.ok_or_else(|| Error::not_found(format!("table {name} does not exist")))
    }
}

/// The catalog `choice` names; the embedded one lives in `home`.
pub async fn open(choice: CatalogChoice, home: &Path) -> Result<Arc<dyn Catalog>> {
    Ok(match choice {
        CatalogChoice::Local => Arc::new(local::LocalCatalog::open(home)?),
        CatalogChoice::Glue => Arc::new(glue::GlueCatalog::connect().await),
    })
}

/// The conflict message both catalogs give.
pub fn conflict(name: &TableName, expected: Option<u64>, found: Option<u64>) -> Error {
    let show = |v: Option<u64>| v.map_or("no table".to_string(), |v| format!("version {v}"));
    Error::conflict(format!(
        "conflict on {name}: this writer read {} but the catalog now has {}; another writer changed the table first, so nothing was published (run again to build on its change)",
        show(expected),
        show(found)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorbed_works_are_stored_as_dates_under_their_job() {
        let work = |job: &str, date: &str, params: &str| Work {
            job: job.into(),
            logical_date: date.into(),
            params: params.into(),
        };
        let absorbed =
            vec![work("a", "2026-11-01", ""), work("a", "2026-11-02", ""), work("a", "2026-11-01", "params(b=1)")];
        let file = DataFile { path: "p".into(), absorbed, ..DataFile::default() };
        let text = serde_json::to_value(&file).unwrap();
        assert_eq!(
            text["absorbed"],
            serde_json::json!([
                {"job": "a", "logical_dates": ["2026-11-01", "2026-11-02"]},
                {"job": "a", "params": "params(b=1)", "logical_dates": ["2026-11-01"]},
            ])
        );
        let mut sorted = file.clone();
        sorted.absorbed.sort();
        assert_eq!(serde_json::from_value::<DataFile>(text).unwrap(), sorted);
        // Files from before works were absorbed read as absorbing none.
        let old: DataFile =
            serde_json::from_str(r#"{"path": "p", "size": 1, "rows": 1, "job": "j", "logical_date": "d"}"#).unwrap();
        assert!(old.absorbed.is_empty());
    }

    #[test]
    fn table_names_are_glue_names() {
        let name: TableName = "raw.orders".parse().unwrap();
        assert_eq!(name.to_string(), "raw.orders");
        assert!("raw".parse::<TableName>().is_err());
        assert!("a.b.c".parse::<TableName>().is_err());
        let err = "Raw.orders".parse::<TableName>().unwrap_err();
        assert!(err.message().contains("lower-case"), "{err}");
        assert_eq!(err.kind().exit_code(), 2);
    }
}
