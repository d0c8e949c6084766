//! `etl compact`: a written table's files (many appends leave many small ones) rewritten into
//! fewer, sorted files, as one publication: a new data version, all-or-nothing, that readers
//! see whole or not at all, and that `etl rollback` can undo.
//!
//! A compaction is a run of a job the table itself defines: it reads the table (its selected
//! partitions), writes them back at the table's location with the table's partition keys and
//! codec, in `overwrite_partitions` mode (`overwrite` for an unpartitioned table), with the
//! order of [`crate::sink::clustering`] (or `--sort-by`), and files of about the target size.
//! So it takes the run's lease, is in the history (job `compact_DB_TABLE`) and is published
//! by the same commit protocol as every run. A job that publishes the table meanwhile makes
//! one of the two publications fail with a conflict, never both succeed over each other.

use serde::Serialize;

use super::job::Job;
use super::run::{RunContext, RunOptions, RunOutcome, run};
use crate::catalog::{Partition, TableDefinition, TableName};
use crate::error::{Error, Result};
use crate::layout::HIVE_NULL_PARTITION;
use crate::schema::names::quoted;

/// Files of about this size when the command names none: Athena reads files of 128 MB to 1 GB
/// best, and a file per row group of that size keeps listings short.
pub const DEFAULT_TARGET_FILE_BYTES: u64 = 128 << 20;

#[derive(Debug, Clone)]
pub struct Compaction {
    pub table: TableName,
    /// `key = value` pairs selecting partitions (all of them when empty).
    pub partitions: Vec<(String, String)>,
    pub target_file_bytes: u64,
    pub sort_by: Option<Vec<String>>,
    /// Rows in the Z-order of the sort columns.
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
    pub partitions: u64,
    pub run_id: String,
    pub sort_by: Vec<String>,
}

/// Rewrites the selected partitions of `request.table`; the report, and the run's outcome.
pub async fn compact(request: &Compaction, context: &RunContext) -> Result<(CompactReport, RunOutcome)> {
    let name = &request.table;
    let table =
        context.catalog.table(name).await?.ok_or_else(|| Error::usage(format!("no table {name} in the catalog")))?;
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
    let selected: Vec<Partition> = context
        .catalog
        .partitions(name)
        .await?
        .into_iter()
        .filter(|p| {
            request.partitions.iter().all(|(key, value)| {
                let index = keys.iter().position(|k| k == key).expect("checked above");
                p.values.get(index).and_then(|v| v.as_deref()).unwrap_or(HIVE_NULL_PARTITION) == value
            })
        })
        .collect();
    if selected.is_empty() {
        return Err(Error::usage(format!("{name} has no partition where {}", describe(&request.partitions))));
    }
    let files_before: u64 = selected.iter().map(|p| p.files.len() as u64).sum();
    let bytes_before: u64 = selected.iter().flat_map(|p| &p.files).map(|f| f.size).sum();
    let rows_before: u64 = selected.iter().flat_map(|p| &p.files).map(|f| f.rows).sum();

    let mut job = job_of(request, &table.definition)?;
    // Files of about the target size, from the bytes a row takes in the files there now.
    let bytes_per_row = (bytes_before as f64 / rows_before.max(1) as f64).max(1.0);
    job.targets[0].layout.file_rows = Some(((request.target_file_bytes as f64 / bytes_per_row) as usize).max(1));
    let outcome = run(&job, &RunOptions::default(), context).await?;
    let target = outcome.report.targets.first();
    let report = CompactReport {
        table: name.to_string(),
        version: target.and_then(|t| t.version),
        files_before,
        files_after: target.map(|t| t.files).unwrap_or(0),
        bytes_before,
        bytes_after: target.map(|t| t.bytes).unwrap_or(0),
        partitions: selected.len() as u64,
        run_id: outcome.report.run_id.clone(),
        sort_by: target.map(|t| t.sort_by.clone()).unwrap_or_default(),
    };
    Ok((report, outcome))
}

fn describe(partitions: &[(String, String)]) -> String {
    partitions.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" and ")
}

/// The job that rewrites the selected partitions where they are.
fn job_of(request: &Compaction, definition: &TableDefinition) -> Result<Job> {
    let name = &request.table;
    let filters: Vec<String> = request
        .partitions
        .iter()
        .map(|(key, value)| match value.as_str() {
            HIVE_NULL_PARTITION => format!("{} IS NULL", quoted(key)),
            value => format!("CAST({} AS VARCHAR) = '{}'", quoted(key), value.replace('\'', "''")),
        })
        .collect();
    let mut query = format!("SELECT * FROM {}", name.quoted());
    if !filters.is_empty() {
        query = format!("{query} WHERE {}", filters.join(" AND "));
    }
    let job = format!("compact_{}_{}", name.database, name.table);
    let location = definition.written_root()?.url();
    let mut job = rewrite_job(&job, name, definition, &query, &location, request.sort_by.as_deref(), Vec::new())?;
    for target in &mut job.targets {
        // The same rows, rearranged: a Delta commit says so, as Delta's own compaction does,
        // and the new files record whose rows they hold.
        target.data_change = false;
        target.layout.zorder = request.zorder;
    }
    Ok(job)
}

/// A job that writes `table` again from `query` at `location`, with the table's partition keys
/// (replacing the partitions it writes) and codec, sorted by `sort_by` (etl's choice when
/// `None`), after crawling `sources`: what `etl compact` and `etl cost --advise` run.
pub(super) fn rewrite_job(
    job: &str,
    table: &TableName,
    definition: &TableDefinition,
    query: &str,
    location: &str,
    sort_by: Option<&[String]>,
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
    if let Some(sort_by) = sort_by {
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
    Job::parse(&text, std::path::Path::new(&format!("{job} ({table})")))
}

/// `compact_after_files = N`: after a run, each partition of its targets holding more than N
/// files is compacted (the whole table, unpartitioned). What happened, as notes for the run's
/// report.
pub async fn after_run(job: &Job, context: &RunContext) -> Vec<String> {
    let mut notes = Vec::new();
    for target in &job.targets {
        let Some(limit) = target.layout.compact_after_files else {
            continue;
        };
        let partitions = match context.catalog.partitions(&target.table).await {
            Ok(partitions) => partitions,
            Err(e) => {
                notes.push(format!("compact_after_files: listing {}: {}", target.table, e.message()));
                continue;
            }
        };
        let keys = &target.partition_by;
        let crowded: Vec<Vec<(String, String)>> = match keys.is_empty() {
            true if partitions.iter().map(|p| p.files.len()).sum::<usize>() > limit => vec![Vec::new()],
            true => Vec::new(),
            false => partitions
                .iter()
                .filter(|p| p.files.len() > limit)
                .map(|p| {
                    keys.iter()
                        .zip(&p.values)
                        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_else(|| HIVE_NULL_PARTITION.to_string())))
                        .collect()
                })
                .collect(),
        };
        for selection in crowded {
            let request = Compaction {
                table: target.table.clone(),
                partitions: selection.clone(),
                target_file_bytes: DEFAULT_TARGET_FILE_BYTES,
                sort_by: target.layout.sort_by.clone(),
                zorder: target.layout.zorder,
            };
            let scope = match selection.is_empty() {
                true => target.table.to_string(),
                false => format!("{} {}", target.table, describe(&selection)),
            };
            notes.push(match compact(&request, context).await {
                Ok((report, RunOutcome { error: None, .. })) => format!(
                    "compact_after_files = {limit}: compacted {scope}: {} files -> {} (run {})",
                    report.files_before, report.files_after, report.run_id
                ),
                Ok((report, RunOutcome { error: Some(e), .. })) => {
                    format!(
                        "compact_after_files: the compaction of {scope} (run {}) failed: {}",
                        report.run_id,
                        e.message()
                    )
                }
                Err(e) => format!("compact_after_files: the compaction of {scope} failed: {}", e.message()),
            });
        }
    }
    notes
}
