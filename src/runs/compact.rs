//! `etl compact`: a written table's files (many appends leave many small ones) rewritten into
//! fewer, sorted files, as one publication: a new data version, all-or-nothing, that readers
//! see whole or not at all, and that `etl rollback` can undo.
//!
//! A compaction is a run of a job the table itself defines: it reads the table (those of its
//! selected partitions whose files are more than their bytes need), writes them back at the
//! table's location with the table's partition keys and codec, in `overwrite_partitions` mode
//! (`overwrite` for an unpartitioned table), laid out as the newest file it merges records it
//! was written (or in `--sort-by`'s order), in files of about the target size.
//! So it takes the run's lease, is in the history (job `compact_DB_TABLE`) and is published
//! by the same commit protocol as every run. A job that publishes the table meanwhile makes
//! one of the two publications fail with a conflict, never both succeed over each other.

use chrono::DateTime;
use serde::Serialize;

use super::job::Job;
use super::run::{RunContext, RunOptions, RunOutcome, run};
use crate::catalog::{Partition, TableDefinition, TableName};
use crate::error::{Error, Result};
use crate::layout::{self, HIVE_NULL_PARTITION};
use crate::location::Location;
use crate::schema::GlueType;
use crate::schema::names::quoted;
use crate::sink::{FileLayout, LAYOUT_METADATA_KEY};
use crate::source::footer;
use crate::source::text::parse_timestamp;

/// Files of about this size when the command names none: Athena reads files of 128 MB to 1 GB
/// best, and a file per row group of that size keeps listings short.
pub const DEFAULT_TARGET_FILE_BYTES: u64 = 128 << 20;

#[derive(Debug, Clone)]
pub struct Compaction {
    pub table: TableName,
    /// `key = value` pairs selecting partitions (all of them when empty).
    pub partitions: Vec<(String, String)>,
    pub target_file_bytes: u64,
    /// How the rewritten files lie (order, row groups, bloom filters); `None`: as the newest of
    /// them was written, which each file etl writes records (etl's choice where none does).
    pub layout: Option<FileLayout>,
    /// An order the caller asks for: it replaces the layout's, and every selected partition is
    /// rewritten in it, not only those whose files would be fewer.
    pub order: Option<Order>,
    /// Only partitions holding more files than this are rewritten (`compact_after_files`).
    pub more_files_than: Option<usize>,
}

/// `--sort-by` and `--zorder`.
#[derive(Debug, Clone)]
pub struct Order {
    /// `None`: the layout's columns.
    pub sort_by: Option<Vec<String>>,
    pub zorder: bool,
}

/// `etl compact --json`.
#[derive(Debug, Clone, Serialize)]
pub struct CompactReport {
    pub table: String,
    pub version: Option<u64>,
    pub files_before: u64,
    pub files_after: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Partitions rewritten.
    pub partitions: u64,
    /// `None` when no partition needed rewriting: nothing ran and no version was made.
    pub run_id: Option<String>,
    pub sort_by: Vec<String>,
    /// The rows are in the Z-order of `sort_by`, not sorted by one column after another.
    pub zorder: bool,
}

/// Rewrites the selected partitions of `request.table`; the report, and the run's outcome.
/// The outcome is `None` when every selected partition's files are as few as their size allows:
/// then nothing runs.
pub async fn compact(request: &Compaction, context: &RunContext) -> Result<(CompactReport, Option<RunOutcome>)> {
    let name = &request.table;
    let table = context.catalog.require(name).await?;
    if !table.definition.is_written() {
        return Err(Error::usage(format!(
            "{name} is a crawled table over {}: compact rewrites the tables etl's jobs write",
            table.definition.location
        )));
    }
    let keys: Vec<String> = table.definition.partition_keys.iter().map(|k| k.name.clone()).collect();
    for (key, _) in &request.partitions {
        if !keys.contains(key) {
            return Err(Error::usage(match keys.is_empty() {
                true => format!("--partition {key}=…: {name} has no partitions"),
                false => format!("--partition {key}=…: {name}'s partition keys are {}", keys.join(", ")),
            }));
        }
    }
    // A timestamp is asked for however it is spelled (`2024-01-03T00:00:00`, as `etl sql`
    // prints it, or `…03:30:00.5`), and found as its folder spells it.
    let as_folder = |key: &str, value: &str| -> String {
        let timestamp = table.definition.partition_keys.iter().any(|k| k.name == key && k.ty == GlueType::Timestamp);
        match timestamp.then(|| parse_timestamp(value)).flatten().and_then(DateTime::from_timestamp_micros) {
            Some(at) => at.naive_utc().format(crate::sink::HIVE_TIMESTAMP_FORMAT).to_string(),
            None => value.to_string(),
        }
    };
    let request = &Compaction {
        partitions: request.partitions.iter().map(|(key, value)| (key.clone(), as_folder(key, value))).collect(),
        ..request.clone()
    };
    let selected: Vec<Partition> = context
        .catalog
        .partitions(name)
        .await?
        .into_iter()
        .filter(|p| {
            asked_values(&request.partitions).iter().all(|(key, values)| {
                let index = keys.iter().position(|k| k == key).expect("checked above");
                values.contains(&p.values.get(index).and_then(|v| v.as_deref()).unwrap_or(HIVE_NULL_PARTITION))
            })
        })
        .collect();
    if selected.is_empty() && !request.partitions.is_empty() {
        return Err(Error::usage(format!("{name} has no partition where {}", describe(&request.partitions))));
    }
    let files_before: u64 = selected.iter().map(|p| p.files.len() as u64).sum();
    let bytes_before: u64 = selected.iter().flat_map(|p| &p.files).map(|f| f.size).sum();
    // A partition whose files are as few as its bytes allow is left as it is (Delta's OPTIMIZE
    // skips them alike): rewriting it would make a version that changes nothing, and push a
    // version worth keeping out of `retain_versions`.
    let (crowded, settled): (Vec<Partition>, Vec<Partition>) = selected.into_iter().partition(|p| {
        request.order.is_some()
            || (p.files.len() as u64 > fewest_files(p, request.target_file_bytes)
                && request.more_files_than.is_none_or(|limit| p.files.len() > limit))
    });
    let settled_files: u64 = settled.iter().map(|p| p.files.len() as u64).sum();
    let settled_bytes: u64 = settled.iter().flat_map(|p| &p.files).map(|f| f.size).sum();
    if crowded.is_empty() {
        let version = context.catalog.data_versions(name).await?.last().map(|v| v.version);
        let report = CompactReport {
            table: name.to_string(),
            version,
            files_before,
            files_after: files_before,
            bytes_before,
            bytes_after: bytes_before,
            partitions: 0,
            run_id: None,
            sort_by: Vec::new(),
            zorder: false,
        };
        return Ok((report, None));
    }
    let rows: u64 = crowded.iter().flat_map(|p| &p.files).map(|f| f.rows).sum();
    let bytes: u64 = crowded.iter().flat_map(|p| &p.files).map(|f| f.size).sum();

    let selection = match settled.is_empty() {
        true => Selection::Request,
        false => Selection::Partitions(&crowded),
    };
    let mut layout = match &request.layout {
        Some(layout) => layout.clone(),
        None => written_layout(&crowded).await?,
    };
    if let Some(order) = &request.order {
        if order.sort_by.is_some() {
            layout.sort_by = order.sort_by.clone();
        }
        layout.zorder = order.zorder;
    }
    if layout.zorder && layout.sort_by.as_ref().is_some_and(Vec::is_empty) {
        // As a job file's `zorder` with `sort_by = []` is refused: the flag would do nothing.
        return Err(Error::usage(format!(
            "--zorder needs columns to interleave: {name}'s files record sort_by = [] (give --sort-by a,b)"
        )));
    }
    let mut job = job_of(request, &table.definition, selection, &layout)?;
    // The rewritten files are encrypted as the table's are.
    let encryption = table.definition.encryption();
    job.targets[0].location = job.targets[0].location.clone().with_encryption(&encryption);
    job.targets[0].encryption = encryption;
    // A compaction keeps as many versions as the table's job does, which its latest version
    // records (the default would hold on to replaced files the job says to let go).
    if let Some(latest) = context.catalog.data_versions(name).await?.last() {
        job.targets[0].retain_versions = latest.retain_versions;
    }
    // Files of about the target size, from the bytes a row takes in the files there now.
    let bytes_per_row = (bytes as f64 / rows.max(1) as f64).max(1.0);
    job.targets[0].layout.file_rows = Some(((request.target_file_bytes as f64 / bytes_per_row) as usize).max(1));
    let outcome = run(&job, &RunOptions::default(), context).await?;
    let target = outcome.report.targets.first();
    let report = CompactReport {
        table: name.to_string(),
        version: target.and_then(|t| t.version),
        files_before,
        files_after: target.map(|t| t.files).unwrap_or(0) + settled_files,
        bytes_before,
        bytes_after: target.map(|t| t.bytes).unwrap_or(0) + settled_bytes,
        partitions: crowded.len() as u64,
        run_id: Some(outcome.report.run_id.clone()),
        sort_by: target.map(|t| t.sort_by.clone()).unwrap_or_default(),
        zorder: layout.zorder && target.is_some_and(|t| t.sort_by.len() > 1),
    };
    Ok((report, Some(outcome)))
}

/// The fewest files a partition's bytes fit in at the target size.
fn fewest_files(partition: &Partition, target_file_bytes: u64) -> u64 {
    let bytes: u64 = partition.files.iter().map(|f| f.size).sum();
    bytes.div_ceil(target_file_bytes.max(1)).max(1)
}

/// The layout the newest of `partitions`' files records; etl's choice when it records none
/// (a file written before etl recorded layouts).
pub(super) async fn written_layout(partitions: &[Partition]) -> Result<FileLayout> {
    let newest = partitions
        .iter()
        .flat_map(|p| &p.files)
        .max_by_key(|f| f.path.rsplit('/').next().and_then(layout::writer_of_data_file).unwrap_or_default());
    let Some(newest) = newest else { return Ok(FileLayout::default()) };
    let location = Location::parse(&newest.path)?;
    let encoded = footer::fetch(location.store().as_ref(), location.prefix(), newest.size)
        .await
        .map_err(|e| e.context(&newest.path))?;
    let metadata = footer::decode(&encoded).map_err(|e| e.context(&newest.path))?;
    let recorded = metadata
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .find(|entry| entry.key == LAYOUT_METADATA_KEY)
        .and_then(|entry| entry.value.as_deref());
    Ok(recorded.and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default())
}

/// The partitions a compaction's query reads and its run replaces.
enum Selection<'a> {
    /// Those the request's `--partition` pairs select (all when there are none).
    Request,
    /// These, where some the request selects are left as they are.
    Partitions(&'a [Partition]),
}

fn describe(partitions: &[(String, String)]) -> String {
    let per_key = asked_values(partitions)
        .into_iter()
        .map(|(key, values)| values.iter().map(|value| format!("{key}={value}")).collect::<Vec<_>>().join(" or "));
    per_key.collect::<Vec<_>>().join(" and ")
}

/// The values `--partition` asks for, by key: a key given twice takes either value (as
/// Spark's `WHERE k IN (…)`), keys given together must all match.
fn asked_values(partitions: &[(String, String)]) -> std::collections::BTreeMap<&str, Vec<&str>> {
    let mut asked: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for (key, value) in partitions {
        asked.entry(key.as_str()).or_default().push(value.as_str());
    }
    asked
}

/// The job that rewrites the selected partitions where they are.
fn job_of(
    request: &Compaction,
    definition: &TableDefinition,
    selection: Selection,
    layout: &FileLayout,
) -> Result<Job> {
    let name = &request.table;
    // A key is compared as its folder spells it: a timestamp's folder has a space where a
    // timestamp cast to text has a `T`.
    let as_folder = |key: &str| {
        let is_timestamp =
            definition.partition_keys.iter().any(|k| k.name == key && k.ty == crate::schema::GlueType::Timestamp);
        match is_timestamp {
            true => format!("to_char({}, '{}')", quoted(key), crate::sink::HIVE_TIMESTAMP_FORMAT),
            false => format!("CAST({} AS VARCHAR)", quoted(key)),
        }
    };
    let condition = |pairs: &mut dyn Iterator<Item = (&str, Option<&str>)>| {
        pairs
            .map(|(key, value)| match value {
                None | Some(HIVE_NULL_PARTITION) => format!("{} IS NULL", quoted(key)),
                Some(value) => format!("{} = '{}'", as_folder(key), value.replace('\'', "''")),
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let filter = match selection {
        Selection::Request => asked_values(&request.partitions)
            .into_iter()
            .map(|(key, values)| {
                let either: Vec<String> =
                    values.iter().map(|value| condition(&mut std::iter::once((key, Some(*value))))).collect();
                format!("({})", either.join(" OR "))
            })
            .collect::<Vec<_>>()
            .join(" AND "),
        Selection::Partitions(partitions) => partitions
            .iter()
            .map(|p| {
                let mut pairs =
                    definition.partition_keys.iter().zip(&p.values).map(|(k, v)| (k.name.as_str(), v.as_deref()));
                format!("({})", condition(&mut pairs))
            })
            .collect::<Vec<_>>()
            .join(" OR "),
    };
    let mut query = format!("SELECT * FROM {}", name.quoted());
    if !filter.is_empty() {
        query = format!("{query} WHERE {filter}");
    }
    let job = format!("compact_{}_{}", name.database, name.table);
    let location = definition.written_root()?.url();
    let mut job = rewrite_job(&job, name, definition, &query, &location, layout, Vec::new())?;
    for target in &mut job.targets {
        // The same rows, rearranged: a Delta commit says so, as Delta's own compaction does,
        // and the new files record whose rows they hold.
        target.data_change = false;
    }
    Ok(job)
}

/// A job that writes `table` again from `query` at `location`, with the table's partition keys
/// (replacing the partitions it writes) and codec, laid out as `layout` says (its order checked
/// as a job file's), after crawling `sources`: what `etl compact` and `etl cost --advise` run.
pub(super) fn rewrite_job(
    job: &str,
    table: &TableName,
    definition: &TableDefinition,
    query: &str,
    location: &str,
    layout: &FileLayout,
    sources: Vec<toml::Table>,
) -> Result<Job> {
    let strings = |list: &[String]| list.iter().map(|s| toml::Value::from(s.as_str())).collect::<Vec<_>>();
    let keys: Vec<String> = definition.partition_keys.iter().map(|k| k.name.clone()).collect();
    let mut target = toml::Table::new();
    target.insert("table".into(), table.to_string().into());
    target.insert("query".into(), query.into());
    target.insert("location".into(), location.into());
    target.insert("partition_by".into(), strings(&keys).into());
    let mode = if keys.is_empty() { "overwrite" } else { "overwrite_partitions" };
    target.insert("mode".into(), mode.into());
    if let Some(codec) = definition.parameters.get("compressionType") {
        target.insert("compression".into(), codec.as_str().into());
    }
    if let Some(sort_by) = &layout.sort_by {
        target.insert("sort_by".into(), strings(sort_by).into());
    }
    if definition.is_delta() {
        target.insert("table_format".into(), "delta".into());
    }
    let mut file = toml::Table::new();
    file.insert("name".into(), job.into());
    file.insert("source".into(), toml::Value::Array(sources.into_iter().map(toml::Value::Table).collect()));
    file.insert("target".into(), toml::Value::Array(vec![toml::Value::Table(target)]));
    let text = toml::to_string(&file).map_err(|e| Error::runtime(format!("the job {job} for {table}: {e}")))?;
    let mut job = Job::parse(&text, std::path::Path::new(&format!("{job} ({table})")))?;
    for target in &mut job.targets {
        // A rewrite is not a run of the table's job: it compacts nothing after itself.
        target.layout = FileLayout { compact_after_files: None, ..layout.clone() };
    }
    Ok(job)
}

/// `compact_after_files = N`: after a run, the partitions of its targets holding more than N
/// files (the whole table, unpartitioned) are compacted, each target's in one publication: one
/// version, which `retain_versions` counts once and one rollback undoes. What happened, as
/// notes for the run's report.
pub async fn after_run(job: &Job, context: &RunContext) -> Vec<String> {
    let mut notes = Vec::new();
    for target in &job.targets {
        let Some(limit) = target.layout.compact_after_files else {
            continue;
        };
        // The files the job writes are laid out as it says: so are their compaction's.
        let request = Compaction {
            table: target.table.clone(),
            partitions: Vec::new(),
            target_file_bytes: DEFAULT_TARGET_FILE_BYTES,
            layout: Some(target.layout.clone()),
            order: None,
            more_files_than: Some(limit),
        };
        let table = &target.table;
        notes.extend(match compact(&request, context).await {
            Ok((_, None)) => None,
            Ok((report, Some(RunOutcome { error: None, report: run }))) => Some(format!(
                "compact_after_files = {limit}: compacted {} of {table}: {} files -> {} (run {})",
                match target.partition_by.is_empty() {
                    true => "the files".to_string(),
                    false => format!("{} partitions", report.partitions),
                },
                report.files_before,
                report.files_after,
                run.run_id
            )),
            Ok((_, Some(RunOutcome { error: Some(e), report: run }))) => Some(format!(
                "compact_after_files: the compaction of {table} (run {}) failed: {}",
                run.run_id,
                e.message()
            )),
            Err(e) => Some(format!("compact_after_files: the compaction of {table} failed: {}", e.message())),
        });
    }
    notes
}
