//! 6. Parquet out: what a target's query writes, where, and how it is published.
//!
//! A run's targets go through one [`Commit`]: staged as Hive-partitioned Parquet by
//! [`parquet`] into a folder every reader skips, then moved into a folder of the run in each
//! partition and published by the catalog, every target of the run at once ([`publish`]
//! plans and moves, [`commit`] orders the steps). The files of replaced versions are kept
//! for [`rollback`] while the table's retention keeps their versions. [`gc`] sweeps what
//! killed runs left, and what retention no longer keeps.

pub mod clustering;
pub mod commit;
pub mod delta;
pub mod gc;
mod parquet;
mod publish;
pub mod rollback;

pub use commit::Commit;
pub use parquet::check_layout_columns;
pub use publish::WriteTag;

use std::str::FromStr;

use datafusion::arrow::datatypes::DataType;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::{Expr, cast, col, lit, when};
use serde::{Deserialize, Serialize};

use crate::catalog::{TableName, WriteMode};
use crate::error::{Error, Result};
use crate::layout::HIVE_NULL_PARTITION;
use crate::location::Location;
use crate::location::aws::Encryption;
use crate::schema::names::with_glue_field_names;
use crate::schema::widen::{holds_every_value, widen};
use crate::schema::{Column, GlueType, TableSchema, names};
use crate::transform::field_names::glue_field_names;

/// Whether a run may still be writing (its files are then left alone by clean-ups).
pub trait RunLiveness: Sync {
    fn is_live(&self, run_id: &str) -> bool;
    /// Whether this is a run this machine's history knows, that has ended (not merely one
    /// not known to be running).
    fn ended_here(&self, _run_id: &str) -> bool {
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParquetCompression {
    Snappy,
    #[default]
    Zstd,
    Gzip,
    None,
}

impl ParquetCompression {
    pub const ALL: [ParquetCompression; 4] =
        [ParquetCompression::Snappy, ParquetCompression::Zstd, ParquetCompression::Gzip, ParquetCompression::None];

    /// The setting DataFusion's writer takes.
    pub(super) fn writer_setting(self) -> &'static str {
        match self {
            ParquetCompression::Snappy => "snappy",
            ParquetCompression::Zstd => "zstd(3)",
            ParquetCompression::Gzip => "gzip(6)",
            ParquetCompression::None => "uncompressed",
        }
    }

    /// The name in file names and in the table's `compressionType` parameter.
    pub fn name(self) -> &'static str {
        match self {
            ParquetCompression::Snappy => "snappy",
            ParquetCompression::Zstd => "zstd",
            ParquetCompression::Gzip => "gzip",
            ParquetCompression::None => "none",
        }
    }
}

impl FromStr for ParquetCompression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "snappy" => Ok(Self::Snappy),
            "zstd" => Ok(Self::Zstd),
            "gzip" => Ok(Self::Gzip),
            "none" | "uncompressed" => Ok(Self::None),
            other => Err(format!("unknown compression '{other}' (expected snappy, zstd, gzip or none)")),
        }
    }
}

/// Where and how a query's result is written.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub table: TableName,
    pub query: String,
    pub location: Location,
    pub partition_by: Vec<String>,
    pub mode: WriteMode,
    pub compression: ParquetCompression,
    /// Server-side encryption of what is written (S3); `location`'s store applies it.
    pub encryption: Encryption,
    /// What the output must satisfy before it is published.
    pub checks: Vec<crate::checks::CheckSpec>,
    /// How many of the table's latest versions keep their files (for rollback and time
    /// travel); at least 1, the current one.
    pub retain_versions: u32,
    pub layout: FileLayout,
    pub format: TableFormat,
    /// How rows meet the table's in `merge` mode (set in that mode only).
    pub merge: Option<MergeSpec>,
    /// False when the output holds the table's rows rearranged, not changed (a compaction):
    /// a Delta commit then says so (`dataChange`), and streaming readers skip it, and the new
    /// files record the works whose rows they absorbed.
    pub data_change: bool,
}

/// `mode = "merge"`: the output's rows matched to the table's on `on`, the key columns (a
/// Delta MERGE, one commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSpec {
    pub on: Vec<String>,
    pub when_matched: WhenMatched,
    pub when_not_matched: WhenNotMatched,
}

/// What a merge does to a table's row that an output row matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenMatched {
    /// Every column takes the output row's value.
    #[default]
    Update,
    Delete,
}

/// What a merge does with an output row that matches none of the table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenNotMatched {
    #[default]
    Insert,
    Ignore,
}

impl FromStr for WhenMatched {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "update" => Ok(Self::Update),
            "delete" => Ok(Self::Delete),
            other => Err(format!("unknown action '{other}' (expected update or delete)")),
        }
    }
}

impl FromStr for WhenNotMatched {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "insert" => Ok(Self::Insert),
            "ignore" => Ok(Self::Ignore),
            other => Err(format!("unknown action '{other}' (expected insert or ignore)")),
        }
    }
}

/// How a target's table is published: Hive-style folders that the catalog switches, or a
/// Delta Lake transaction log beside the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    #[default]
    Hive,
    Delta,
}

impl FromStr for TableFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hive" => Ok(Self::Hive),
            "delta" => Ok(Self::Delta),
            other => Err(format!("unknown table format '{other}' (expected hive or delta)")),
        }
    }
}

pub const MAX_ROW_GROUP_ROWS: usize = 1 << 26;
pub const MIN_ROW_GROUP_BYTES: u64 = 1 << 20;

/// The Parquet footer entry in which etl records a file's [`FileLayout`] (its `sort_by` the
/// order applied), so that `etl compact` lays the rows out again as they were written.
pub const LAYOUT_METADATA_KEY: &str = "etl.layout";

/// How a target's rows lie in its files: what Athena's pruning by row-group statistics, and
/// so its bill, depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileLayout {
    /// The order of rows within each partition, stable (rows equal on these keep their
    /// order); `None`: etl chooses ([`clustering`]); empty: the query's order.
    // Recorded in every file's footer, which Athena reads with each query: what is unset is
    // left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_group_rows: Option<usize>,
    /// Row groups of about this many bytes, uncompressed (estimated from the schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_group_bytes: Option<u64>,
    /// Columns with a bloom filter in each row group (equality lookups of rare values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bloom_filter: Vec<String>,
    /// Rows per file at most (`etl compact`'s target file size); DataFusion's default else.
    #[serde(skip)]
    pub file_rows: Option<usize>,
    /// After a run, partitions holding more files than this are compacted (`etl compact`).
    #[serde(skip)]
    pub compact_after_files: Option<usize>,
    /// Rows in the Z-order of the sort columns (their bits interleaved) rather than sorted by
    /// one after another: filters on any of them prune ([`crate::transform::zorder`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub zorder: bool,
}

impl FileLayout {
    /// What a file written in `sort_by` order under this layout records in its footer, under
    /// [`LAYOUT_METADATA_KEY`].
    pub fn recorded(&self, sort_by: &[String]) -> Result<String> {
        let written = FileLayout { sort_by: Some(sort_by.to_vec()), ..self.clone() };
        serde_json::to_string(&written).map_err(|e| Error::runtime(format!("recording the layout: {e}")))
    }
}

/// Versions a table keeps the files of when its target does not say.
pub const DEFAULT_RETAIN_VERSIONS: u32 = 5;

/// One staged file and where publication moves it.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub staged: String,
    pub published: String,
    pub partition_values: Vec<Option<String>>,
    pub size: u64,
    pub rows: u64,
}

/// A target written to staging, ready to publish.
#[derive(Debug, Clone)]
pub struct StagedTarget {
    pub schema: TableSchema,
    pub files: Vec<StagedFile>,
    /// The order its rows were written in within each partition, and why.
    pub clustering: clustering::Clustering,
}

impl StagedTarget {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// How many partitions the output has.
    pub fn partition_count(&self) -> usize {
        self.files.iter().map(|f| &f.partition_values).collect::<std::collections::BTreeSet<_>>().len()
    }
}

/// How a timestamp partition value is written: `2026-11-30 06:00:00`, fractions only when
/// there are some (`.500`).
pub(crate) const HIVE_TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

/// The deepest nesting a target's column may have. Arrow's reader of the schema a Parquet file
/// carries stops at 62 struct levels (its flatbuffer verifier's depth limit), pyarrow and
/// DuckDB at about 70 levels of arrays and structs: a run published such a table exit 0, and
/// every later read of it failed.
const MAX_NESTING_DEPTH: usize = 50;

/// The target's table schema from its query's output: names as Glue takes them, types as Glue
/// holds them, partition keys apart. Fails, naming the column, when a type has no Glue form.
/// `kept`: the schema of the table whose files the write keeps, if any: an output column whose
/// values its column's type holds is written as that type (whole numbers appended to a double
/// column), as Spark's `insertInto` and Athena's `INSERT INTO` cast.
pub fn target_schema(
    df: &DataFrame,
    target: &TargetSpec,
    kept: Option<&TableSchema>,
) -> Result<(TableSchema, Vec<Expr>)> {
    let fields = df.schema().fields();
    let original: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    let normalized = names::normalize_all(original.iter().copied(), &format!("target {}", target.table))?;
    let mut schema = TableSchema::default();
    let mut data = Vec::new();
    let mut keys = Vec::new();
    for key in &target.partition_by {
        if !normalized.contains(key) {
            return Err(Error::query(format!(
                "target {}: partition_by column '{key}' is not in the query's output ({})",
                target.table,
                normalized.join(", ")
            )));
        }
    }
    for ((field, original), name) in fields.iter().zip(&original).zip(&normalized) {
        let ty = GlueType::from_arrow(field.data_type())
            .map_err(|e| Error::query(format!("target {}: column {name}: {e}", target.table)))?;
        if ty.nesting_depth() > MAX_NESTING_DEPTH {
            return Err(Error::query(format!(
                "target {}: column {name} nests {} arrays, structs and maps in one another; readers of Parquet \
                 (Arrow's, pyarrow's, DuckDB's) refuse files nested past about 60 levels, so a target holds at most \
                 {MAX_NESTING_DEPTH}: flatten the deepest levels (to_json, or fields of their own)",
                target.table,
                ty.nesting_depth()
            )));
        }
        let column = col(datafusion::common::Column::from_name(*original));
        if target.partition_by.contains(name) {
            if matches!(ty, GlueType::Array(_) | GlueType::Struct(_) | GlueType::Map(_, _) | GlueType::Binary) {
                return Err(Error::query(format!("target {}: cannot partition by {name}, a {ty}", target.table)));
            }
            keys.push((name.clone(), ty, column));
        } else {
            let ty = match kept.and_then(|kept| kept.columns.iter().find(|c| c.name == *name)) {
                // Struct fields the table lacks are added to it, not dropped from the output.
                Some(existing) if existing.ty != ty && holds_every_value(&ty, &existing.ty) => widen(&existing.ty, &ty),
                _ => ty,
            };
            let cast_to = ty.to_arrow();
            let renamed = with_glue_field_names(field.data_type());
            let (column, output_type) = match renamed == *field.data_type() {
                true => (column, renamed),
                false => (glue_field_names().call(vec![column]), renamed),
            };
            let expr = if output_type == cast_to { column } else { cast(column, cast_to) };
            data.push(expr.alias(name));
            schema.columns.push(Column::new(name.clone(), ty));
        }
    }
    if schema.columns.is_empty() {
        return Err(Error::query(format!(
            "target {}: every column is a partition key; a table needs data columns",
            target.table
        )));
    }
    // Partition keys in the order partition_by lists them, carried as folder text.
    for key in &target.partition_by {
        let (name, ty, column) = keys.iter().find(|(n, ..)| n == key).expect("checked above").clone();
        // An empty text makes no folder name Hive, Glue or Athena take (`key=`): it goes with
        // the NULLs, as Spark writes it.
        let missing = match ty.is_string_like() {
            true => column.clone().is_null().or(column.clone().eq(lit(""))),
            false => column.clone().is_null(),
        };
        // Hive (and Athena reading a Glue partition) spells a timestamp with a space, never
        // Arrow's `T`.
        let value = match ty {
            // A timestamp with a time zone is written as UTC, as a data column's is, not as
            // the zone's wall clock.
            GlueType::Timestamp => {
                let utc = cast(column.clone(), ty.to_arrow());
                datafusion::functions::expr_fn::to_char(utc, lit(HIVE_TIMESTAMP_FORMAT))
            }
            // Arrow spells infinity `inf`, which Java's Double.parseDouble (Athena's, Spark's)
            // refuses; NaN it spells as Java does.
            GlueType::Double | GlueType::Float => when(column.clone().eq(lit(f64::INFINITY)), lit("Infinity"))
                .when(column.clone().eq(lit(f64::NEG_INFINITY)), lit("-Infinity"))
                .otherwise(cast(column, DataType::Utf8))?,
            _ => cast(column, DataType::Utf8),
        };
        let text = when(missing, lit(HIVE_NULL_PARTITION)).otherwise(value)?;
        data.push(text.alias(&name));
        schema.partition_keys.push(Column::new(name, ty));
    }
    Ok((schema, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_layout_records_what_is_set_and_reads_back_without_the_jobs_own_options() {
        let layout = FileLayout {
            sort_by: Some(vec!["day".into()]),
            bloom_filter: vec!["id".into()],
            file_rows: Some(10),
            compact_after_files: Some(3),
            ..FileLayout::default()
        };
        let recorded = serde_json::to_string(&layout).unwrap();
        assert_eq!(recorded, r#"{"sort_by":["day"],"bloom_filter":["id"]}"#);
        let read: FileLayout = serde_json::from_str(&recorded).unwrap();
        assert_eq!(read, FileLayout { file_rows: None, compact_after_files: None, ..layout });
        let unsorted: FileLayout = serde_json::from_str(r#"{"sort_by":[],"zorder":true}"#).unwrap();
        assert_eq!((unsorted.sort_by, unsorted.zorder), (Some(Vec::new()), true));
    }
}
