//! Delta Lake targets (`table_format = "delta"`): the run's files, written and checked as for
//! any target, published as one commit of the table's Delta log, which every Delta reader
//! (Athena, Spark, Trino, DuckDB, delta-rs) sees whole or not at all.
//!
//! The files a publication adds and the files it replaces are the ones the Hive publication
//! would switch ([`super::publish::plan`]), so every mode means the same on both formats. A
//! Delta table's files never move: the log's older versions name them where they are, for
//! time travel and RESTORE, until VACUUM deletes what no kept version needs. The catalog keeps
//! the same file list as the commit, with the Delta version it made, so `etl` readers see the
//! run's tables together, and the Delta log's readers each table's commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use datafusion::execution::SessionState;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::SessionContext;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add, MetadataExt as _, Remove, StructType};
use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};
use object_store::prefix::PrefixStore;

use super::publish::WriteTag;
use super::{MergeSpec, RunLiveness, TargetSpec, WhenMatched, WhenNotMatched};
use crate::catalog::provider::FileTable;
use crate::catalog::{DataFile, Partition, PartitionWrite, TableName, Work, WriteMode, WrittenData};
use crate::error::{Error, Result};
use crate::layout;
use crate::location::Location;
use crate::schema::names::quoted;
use crate::schema::{GlueType, TableSchema};

/// The Glue table parameter by which Athena reads a table through its Delta log.
pub const TABLE_TYPE_PARAMETER: &str = "table_type";
pub const TABLE_TYPE_DELTA: &str = "DELTA";

/// Tags on each added file: which work wrote it (as the catalog records it, so a rerun
/// replaces its own files in a Delta table as in a Hive one).
const TAG_JOB: &str = "etl.job";
const TAG_LOGICAL_DATE: &str = "etl.logical_date";
const TAG_PARAMS: &str = "etl.params";
/// The run that wrote a file (a tag), or made a commit (in its `commitInfo`).
const RUN_KEY: &str = "etl.run_id";

/// The Delta log of the table at `location`, through the location's own store (its
/// credentials, endpoint and encryption). Commits are put-if-absent writes of the next log
/// entry, which S3 and local disks both refuse when another writer got there first.
fn log_store(location: &Location) -> Result<LogStoreRef> {
    let url = url::Url::parse(&format!("{}/", location.url().trim_end_matches('/')))
        .map_err(|e| Error::config(format!("{location}: not a table location for Delta: {e}")))?;
    let root = location.store().clone();
    let prefixed = Arc::new(PrefixStore::new(root.clone(), location.prefix().clone()));
    Ok(default_logstore(prefixed, root, &url, &StorageConfig::default()))
}

/// The Delta table at `location`, loaded at its latest version; `None` where no log exists.
async fn open(location: &Location) -> Result<Option<DeltaTable>> {
    let mut table = DeltaTable::new(log_store(location)?);
    if !table.verify_deltatable_existence().await.map_err(|e| delta_error(location, e))? {
        return Ok(None);
    }
    table.load().await.map_err(|e| delta_error(location, e))?;
    Ok(Some(table))
}

fn delta_error(location: &Location, e: deltalake_core::DeltaTableError) -> Error {
    // The Delta kernel's errors carry a backtrace in their text when RUST_BACKTRACE is set:
    // the message is what comes before its first frame (`   0: …`).
    let text = e.to_string();
    let message: Vec<&str> = text.lines().take_while(|line| !is_backtrace_frame(line)).collect();
    Error::runtime(format!("Delta table at {location}: {}", message.join("\n").trim_end()))
}

fn is_backtrace_frame(line: &str) -> bool {
    let line = line.trim_start();
    line.split_once(": ").is_some_and(|(number, _)| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

/// At publication, on the snapshot the commit is made on: the log must still hold the files
/// the catalog recorded (`recorded`, `None` where the catalog knows no table); another writer
/// may have committed since [`reconcile`]. Commits made after that snapshot are the commit's
/// own conflict check's.
fn expect_files(
    table: &TableName,
    location: &Location,
    held: &BTreeMap<String, Add>,
    recorded: Option<&[Partition]>,
) -> Result<()> {
    let recorded = recorded_paths(location, recorded.unwrap_or_default())?;
    if held.keys().eq(recorded.iter()) {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "target {table}: the Delta log at {location} changed while the run wrote (another writer committed to it); \
         nothing was published, run it again"
    )))
}

/// A Delta commit a run made, as its log entry records it: to undo if the run does not
/// publish.
#[derive(Debug, Clone)]
pub struct DeltaCommit {
    pub version: u64,
    added: Vec<Add>,
    removed: Vec<Remove>,
}

impl DeltaCommit {
    /// Whether the commit changed no file (a merge that matched nothing to change makes none).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// Commit `version`, read back from the log (whatever else committed around it).
    async fn read(location: &Location, log: &LogStoreRef, version: u64) -> Result<DeltaCommit> {
        let mut commit = DeltaCommit { version, added: Vec::new(), removed: Vec::new() };
        let bad = |e: serde_json::Error| Error::runtime(format!("Delta log at {location}, version {version}: {e}"));
        for line in commit_entry(location, log, version).await?.lines() {
            let action: serde_json::Value = serde_json::from_str(line).map_err(bad)?;
            if let Some(add) = action.get("add") {
                commit.added.push(serde_json::from_value(add.clone()).map_err(bad)?);
            }
            if let Some(remove) = action.get("remove") {
                commit.removed.push(serde_json::from_value(remove.clone()).map_err(bad)?);
            }
        }
        Ok(commit)
    }
}

/// The commit properties of a run's commits: its id in the commit's `commitInfo`, which says
/// whose a commit is when a run killed after its commit left the log ahead of the catalog; and
/// no retry. A commit is made on the snapshot whose files were checked against the catalog:
/// rebased on another writer's commit (delta-rs would, for appends), it would publish a file
/// list the catalog's conflict check never saw (on Glue, an unpartitioned Delta table's
/// location is its root, the same before and after every run).
fn properties(run_id: &str) -> CommitProperties {
    CommitProperties::default()
        .with_metadata(HashMap::from([(RUN_KEY.to_string(), serde_json::Value::from(run_id))]))
        .with_max_retries(0)
}

/// A commit on `location` that failed: a conflict when another writer committed after
/// `version`, the snapshot it was made on.
async fn commit_failed(location: &Location, version: Option<u64>, e: DeltaTableError) -> Error {
    match open(location).await {
        Ok(Some(now)) if now.version() != version => Error::conflict(format!(
            "another writer committed to the Delta table at {location} first; nothing was published, run it again"
        )),
        _ => delta_error(location, e),
    }
}
/// What a commit of a publication does to the Delta table at `location`.
pub(super) struct DeltaChange<'a> {
    pub location: &'a Location,
    pub table: &'a TableName,
    pub schema: &'a TableSchema,
    /// The partitions the publication sets, with their complete file lists.
    pub written: &'a WrittenData,
    /// The files it replaces.
    pub replaced: &'a [DataFile],
    /// The table's partitions as the catalog holds them (`None`: no table yet), which the
    /// log must hold too.
    pub recorded: Option<&'a [Partition]>,
    pub operation: DeltaOperation,
    pub data_change: bool,
}

/// Commits `written` (every file already where it is published) to the Delta log at
/// `location`, creating the table with its first commit: what the log does not hold yet is
/// added, `replaced` removed, and the schema replaced when it changed. Returns what it did.
/// Without `data_change` the commit only rearranges rows (a compaction): Delta's streaming
/// readers skip it, as they skip OPTIMIZE's.
pub(super) async fn commit(change: DeltaChange<'_>, run_id: &str) -> Result<DeltaCommit> {
    let DeltaChange { location, table, schema, written, replaced, recorded, operation, data_change } = change;
    let now = chrono::Utc::now().timestamp_millis();
    let existing = open(location).await?;
    let before = match &existing {
        Some(table) => file_actions(location, table)?,
        None => BTreeMap::new(),
    };
    expect_files(table, location, &before, recorded)?;
    let mut adds = Vec::new();
    for write in &written.upserts {
        for file in &write.partition.files {
            let path = relative_path(location, &file.path)?;
            if before.contains_key(&path) {
                continue;
            }
            adds.push(Add {
                path,
                partition_values: partition_values(schema, &write.partition.values),
                size: file.size as i64,
                modification_time: now,
                data_change,
                stats: Some(serde_json::json!({ "numRecords": file.rows }).to_string()),
                tags: Some(HashMap::from([
                    (TAG_JOB.to_string(), Some(file.job.clone())),
                    (TAG_LOGICAL_DATE.to_string(), Some(file.logical_date.clone())),
                    (TAG_PARAMS.to_string(), Some(file.params.clone())),
                    (RUN_KEY.to_string(), Some(run_id.to_string())),
                ])),
                ..Default::default()
            });
        }
    }
    let mut removes = Vec::new();
    for file in replaced {
        let path = relative_path(location, &file.path)?;
        removes.push(match before.get(&path) {
            Some(add) => Remove { data_change, ..remove_of(add, now) },
            None => Remove { path, data_change, deletion_timestamp: Some(now), ..Default::default() },
        });
    }
    let version = match existing {
        None => {
            let actions = adds.iter().cloned().map(Action::Add).collect();
            let created = create(location, table, schema, actions, run_id).await?;
            created.version().unwrap_or_default()
        }
        Some(existing) => {
            let snapshot = existing.snapshot().map_err(|e| delta_error(location, e))?;
            let delta_schema = delta_schema(schema)?;
            let mut actions = Vec::new();
            if snapshot.schema().as_ref() != &delta_schema {
                let metadata = snapshot
                    .metadata()
                    .clone()
                    .with_schema(&delta_schema)
                    .map_err(|e| Error::runtime(format!("Delta table at {location}: its new schema: {e}")))?;
                actions.push(Action::Metadata(metadata));
            }
            actions.extend(removes.iter().cloned().map(Action::Remove));
            actions.extend(adds.iter().cloned().map(Action::Add));
            commit_actions(location, &existing, actions, operation, run_id).await?
        }
    };
    crate::kill_points::reached("delta.committed");
    // A commit holds the actions given, whatever it was rebased on.
    Ok(DeltaCommit { version, added: adds, removed: removes })
}

/// Creates the Delta table at `location` with its first commit holding `actions`. Two writers
/// that both found no table: the one that comes second gets a conflict.
async fn create(
    location: &Location,
    table: &TableName,
    schema: &TableSchema,
    actions: Vec<Action>,
    run_id: &str,
) -> Result<DeltaTable> {
    let created = CreateBuilder::new()
        .with_log_store(log_store(location)?)
        .with_table_name(table.table.clone())
        .with_columns(delta_schema(schema)?.fields().cloned())
        .with_partition_columns(schema.key_names().map(str::to_string))
        .with_actions(actions)
        .with_commit_properties(properties(run_id))
        .await;
    match created {
        Ok(created) => Ok(created),
        Err(_) if open(location).await?.is_some() => Err(Error::conflict(format!(
            "target {table}: another writer created the Delta table at {location} while this run wrote it; nothing \
             was published, run it again"
        ))),
        Err(e) => Err(delta_error(location, e)),
    }
}

/// The operation a run's commit records: a WRITE in `mode` (as Delta's writers record it),
/// or for a target that rearranges the table's rows (`data_change = false`), OPTIMIZE.
pub(super) fn write_operation(target: &TargetSpec, schema: &TableSchema) -> DeltaOperation {
    if !target.data_change {
        // Files are sized in rows here, not in the bytes Delta's targetSize counts.
        return DeltaOperation::Optimize { predicate: None, target_size: 0 };
    }
    let mode = target.mode;
    let keys: Vec<String> = schema.key_names().map(str::to_string).collect();
    let mode = if mode == WriteMode::Append { SaveMode::Append } else { SaveMode::Overwrite };
    DeltaOperation::Write { mode, partition_by: (!keys.is_empty()).then_some(keys), predicate: None }
}

/// The operation a rollback's commit records: Delta's RESTORE, of the version it restores.
pub(super) fn restore_operation(version: Option<u64>) -> DeltaOperation {
    DeltaOperation::Restore { version, datetime: None }
}

/// Undoes `done` with the opposite commit on the table as it is now (a writer may have
/// committed after it): what it added removed, what it removed added back. For a run whose
/// catalog publication failed after its Delta commit.
pub(super) async fn revert(location: &Location, done: &DeltaCommit, run_id: &str) -> Result<u64> {
    let table = open(location).await?.ok_or_else(|| Error::runtime(format!("no Delta table at {location}")))?;
    let current = file_actions(location, &table)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut actions: Vec<Action> = Vec::new();
    for added in &done.added {
        if let Some(add) = current.get(&added.path) {
            actions.push(Action::Remove(remove_of(add, now)));
        }
    }
    for removed in done.removed.iter().filter(|r| !current.contains_key(&r.path)) {
        actions.push(Action::Add(Add {
            path: removed.path.clone(),
            partition_values: removed.partition_values.clone().unwrap_or_default(),
            size: removed.size.unwrap_or_default(),
            modification_time: now,
            data_change: true,
            tags: removed.tags.clone(),
            ..Default::default()
        }));
    }
    commit_actions(location, &table, actions, restore_operation(None), run_id).await
}

/// Commits `actions` on the table's loaded version, as run `run_id`.
async fn commit_actions(
    location: &Location,
    table: &DeltaTable,
    actions: Vec<Action>,
    operation: DeltaOperation,
    run_id: &str,
) -> Result<u64> {
    let snapshot = table.snapshot().map_err(|e| delta_error(location, e))?;
    let committed = CommitBuilder::from(properties(run_id))
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), operation)
        .await;
    match committed {
        Ok(finalized) => Ok(finalized.version),
        Err(e) => Err(commit_failed(location, table.version(), e).await),
    }
}

/// One commit that makes the table's files exactly `files` (those of its version `version`,
/// when known): what it lacks added back, what it has beyond removed.
async fn restore(
    location: &Location,
    files: &BTreeMap<String, Add>,
    run_id: &str,
    version: Option<u64>,
) -> Result<u64> {
    let table = open(location).await?.ok_or_else(|| Error::runtime(format!("no Delta table at {location}")))?;
    let current = file_actions(location, &table)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut actions: Vec<Action> = current
        .iter()
        .filter(|(path, _)| !files.contains_key(*path))
        .map(|(_, add)| Action::Remove(remove_of(add, now)))
        .collect();
    for (path, add) in files {
        if !current.contains_key(path) {
            actions.push(Action::Add(Add { modification_time: now, data_change: true, ..add.clone() }));
        }
    }
    commit_actions(location, &table, actions, restore_operation(version), run_id).await
}

fn remove_of(add: &Add, now: i64) -> Remove {
    Remove {
        path: add.path.clone(),
        data_change: true,
        deletion_timestamp: Some(now),
        extended_file_metadata: Some(true),
        partition_values: Some(add.partition_values.clone()),
        size: Some(add.size),
        tags: add.tags.clone(),
        ..Default::default()
    }
}

/// Before a run writes a Delta target: the log must hold the files the catalog recorded
/// (`recorded`, `None` where the catalog knows no table). When it is ahead, by commits of
/// runs that ended without publishing (killed between their commit and the catalog's), those
/// are undone first, with a warning. Anything else (another writer's commits, a log where the
/// catalog knows no table) is refused.
pub(super) async fn reconcile(
    target: &TargetSpec,
    recorded: Option<&[Partition]>,
    runs: &dyn RunLiveness,
    run_id: &str,
) -> Result<Vec<String>> {
    let location = &target.location;
    let recorded = match recorded {
        Some(partitions) => Some(recorded_paths(location, partitions)?),
        None => None,
    };
    let Some(table) = open(location).await? else {
        return match recorded {
            Some(recorded) if !recorded.is_empty() => Err(Error::conflict(format!(
                "target {}: the Delta log at {location} is gone, though the catalog lists files of the table",
                target.table
            ))),
            _ => Ok(Vec::new()),
        };
    };
    let matches = |files: &BTreeMap<String, Add>| recorded.as_ref().is_some_and(|r| files.keys().eq(r.iter()));
    if matches(&file_actions(location, &table)?) {
        return Ok(Vec::new());
    }
    let latest = table.version().unwrap_or_default();
    let log = table.log_store();
    if recorded.is_none() {
        return adopt_abandoned(target, &log, latest, runs, run_id).await;
    }
    let mut undone = BTreeSet::new();
    let mut version = latest;
    loop {
        match commit_run(location, &log, version).await? {
            Some(run) if !runs.is_live(&run) => undone.insert(run),
            Some(run) => return Err(writing_now(target, &run)),
            None => return Err(foreign_commits(target, version)),
        };
        if version == 0 {
            // The catalog knows the table, but none of its log: the runs of every commit
            // ended without publishing.
            return match recorded.as_ref().is_some_and(BTreeSet::is_empty) {
                true => undo(location, &BTreeMap::new(), None, latest, &undone, run_id).await,
                false => Err(foreign_commits(target, version)),
            };
        }
        version -= 1;
        let mut before = DeltaTable::new(log.clone());
        before.load_version(version).await.map_err(|e| delta_error(location, e))?;
        let files = file_actions(location, &before)?;
        if matches(&files) {
            return undo(location, &files, Some(version), latest, &undone, run_id).await;
        }
        if latest - version >= RECONCILE_COMMITS {
            return Err(foreign_commits(target, version));
        }
    }
}

/// Where the catalog knows no table but a Delta log exists: a table that runs of this machine
/// created and ended without publishing (every commit theirs) is emptied, as they left it
/// unpublished, and written; any other log is another's (another `ETL_HOME`'s, perhaps),
/// refused.
async fn adopt_abandoned(
    target: &TargetSpec,
    log: &LogStoreRef,
    latest: u64,
    runs: &dyn RunLiveness,
    run_id: &str,
) -> Result<Vec<String>> {
    let location = &target.location;
    let mut undone = BTreeSet::new();
    for version in (0..=latest).rev().take(RECONCILE_COMMITS as usize + 1) {
        match commit_run(location, log, version).await? {
            Some(run) if runs.ended_here(&run) => undone.insert(run),
            Some(run) if runs.is_live(&run) => return Err(writing_now(target, &run)),
            _ => break,
        };
        if version == 0 {
            return undo(location, &BTreeMap::new(), None, latest, &undone, run_id).await;
        }
    }
    Err(Error::conflict(format!(
        "target {}: a Delta table is already at {location}, one that this catalog does not know; choose another \
         location (or remove the folder if it is what a run that did not publish left)",
        target.table
    )))
}

/// Makes the table's files `files` again (those of version `back_to`, or none), undoing the
/// commits after it up to `latest`, made by the runs `undone`; the warning that says so.
async fn undo(
    location: &Location,
    files: &BTreeMap<String, Add>,
    back_to: Option<u64>,
    latest: u64,
    undone: &BTreeSet<String>,
    run_id: &str,
) -> Result<Vec<String>> {
    let made = restore(location, files, run_id, back_to).await?;
    let runs = undone.iter().cloned().collect::<Vec<_>>().join(", ");
    Ok(vec![format!(
        "undid Delta commits {}..{latest} to {location} (commit {made}) of runs that ended before they published: {runs}",
        back_to.map_or(0, |v| v + 1)
    )])
}

/// Commits a run killed before its publication could leave ahead of the catalog, at most.
const RECONCILE_COMMITS: u64 = 16;

fn writing_now(target: &TargetSpec, run: &str) -> Error {
    Error::conflict(format!(
        "target {}: run {run} is writing the Delta table at {}; run this one again when it has finished",
        target.table, target.location
    ))
}

fn foreign_commits(target: &TargetSpec, version: u64) -> Error {
    Error::conflict(format!(
        "target {}: the Delta log at {} has commits that etl did not make (version {version}): another writer \
         changed the table, and etl's view of it is out of date",
        target.table, target.location
    ))
}

/// The latest commit of the Delta log at `location`, when etl did not make it (no run in its
/// `commitInfo`): another tool's.
pub(super) async fn foreign_head(location: &Location) -> Result<Option<u64>> {
    let Some(table) = open(location).await? else { return Ok(None) };
    let latest = table.version().unwrap_or_default();
    Ok(commit_run(location, &table.log_store(), latest).await?.is_none().then_some(latest))
}

/// The run that made commit `version`, from the `commitInfo` its runs write.
async fn commit_run(location: &Location, log: &LogStoreRef, version: u64) -> Result<Option<String>> {
    Ok(commit_entry(location, log, version).await?.lines().find_map(|line| {
        let action: serde_json::Value = serde_json::from_str(line).ok()?;
        action.get("commitInfo")?.get(RUN_KEY)?.as_str().map(str::to_string)
    }))
}

/// The run whose commit added each file of the Delta table at `location` (by url), as far as
/// its log's commits say: a merge's files are named by delta-rs, in no run's folder.
pub(super) async fn runs_of_files(location: &Location) -> Result<HashMap<String, String>> {
    let Some(table) = open(location).await? else { return Ok(HashMap::new()) };
    let log = table.log_store();
    let mut runs = HashMap::new();
    for version in 0..=table.version().unwrap_or_default() {
        let Some(entry) = log.read_commit_entry(version).await.map_err(|e| delta_error(location, e))? else {
            continue;
        };
        let actions: Vec<serde_json::Value> =
            String::from_utf8_lossy(&entry).lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
        let Some(run) = actions.iter().find_map(|a| a.get("commitInfo")?.get(RUN_KEY)?.as_str()) else {
            continue;
        };
        for path in actions.iter().filter_map(|a| a.get("add")?.get("path")?.as_str()) {
            // Log paths are URL-encoded.
            let path = object_store::path::Path::from_url_path(path).map_err(|e| delta_error(location, e.into()))?;
            runs.insert(location.join(path.as_ref()).url(), run.to_string());
        }
    }
    Ok(runs)
}

/// The text of the log's entry for commit `version`.
async fn commit_entry(location: &Location, log: &LogStoreRef, version: u64) -> Result<String> {
    let entry = log.read_commit_entry(version).await.map_err(|e| delta_error(location, e))?;
    let entry = entry.ok_or_else(|| Error::runtime(format!("Delta log at {location}: no commit {version}")))?;
    Ok(String::from_utf8_lossy(&entry).into_owned())
}

/// The relative paths of the files the catalog lists.
fn recorded_paths(location: &Location, partitions: &[Partition]) -> Result<BTreeSet<String>> {
    partitions.iter().flat_map(|p| &p.files).map(|f| relative_path(location, &f.path)).collect()
}

/// The table's schema as Delta records it: data columns then partition keys, each with its
/// type (partition keys are typed in the log; in the files they are absent).
fn delta_schema(schema: &TableSchema) -> Result<StructType> {
    let fields: Vec<_> = schema
        .columns
        .iter()
        .chain(&schema.partition_keys)
        .map(|c| datafusion::arrow::datatypes::Field::new(&c.name, c.ty.to_arrow(), true))
        .collect();
    (&datafusion::arrow::datatypes::Schema::new(fields))
        .try_into_kernel()
        .map_err(|e| Error::query(format!("a column type Delta does not take: {e}")))
}

/// A partition's values as Delta writes them: `None` for null, timestamps with a space where
/// etl's folder text has a `T` ([`values_of_delta`] is the way back).
fn partition_values(schema: &TableSchema, values: &[Option<String>]) -> HashMap<String, Option<String>> {
    let delta =
        |ty: &GlueType, v: &String| if *ty == GlueType::Timestamp { v.replacen('T', " ", 1) } else { v.clone() };
    schema
        .partition_keys
        .iter()
        .zip(values)
        .map(|(key, value)| (key.name.clone(), value.as_ref().map(|v| delta(&key.ty, v))))
        .collect()
}

/// A file's partition values as etl's folder text, in the order of the table's keys.
fn values_of_delta(schema: &TableSchema, delta: &HashMap<String, Option<String>>) -> Vec<Option<String>> {
    let text = |ty: &GlueType, v: String| if *ty == GlueType::Timestamp { v.replacen(' ', "T", 1) } else { v };
    schema.partition_keys.iter().map(|key| delta.get(&key.name).cloned().flatten().map(|v| text(&key.ty, v))).collect()
}

/// `url` (a file of the table) relative to the table's root, as the log names files.
fn relative_path(location: &Location, url: &str) -> Result<String> {
    let file = Location::parse(url)?;
    location
        .relative(file.prefix())
        .map(|parts| parts.join("/"))
        .ok_or_else(|| Error::runtime(format!("{url} is not under the table's location {location}")))
}

/// A key that several source rows share would be inserted once for each when the table has
/// it not (Delta's MERGE refuses it only when a target row matches), and every later merge of
/// it would then fail; a row with a NULL key matches no row (`=`), so every rerun would insert
/// it again. Both are refused first, naming the key.
pub(super) async fn refuse_keys_a_merge_cannot_match(
    target: &TargetSpec,
    merge: &MergeSpec,
    (source, session): (FileTable, SessionState),
) -> Result<()> {
    let source = SessionContext::new_with_state(session).read_table(Arc::new(source))?;
    use datafusion::functions_aggregate::count::count;
    use datafusion::prelude::{ident, lit};
    // A row that is not inserted when unmatched (`when_not_matched = "ignore"`) cannot be
    // inserted again.
    let inserts = merge.when_not_matched == WhenNotMatched::Insert;
    for key in merge.on.iter().filter(|_| inserts) {
        let nulls = source.clone().filter(ident(key).is_null())?.count().await?;
        if nulls > 0 {
            return Err(Error::query(format!(
                "target {}: merge_on column '{key}' is NULL in {nulls} rows of the query's output; a merge \
                 matches rows by key, and a row without one would be inserted again by every run",
                target.table
            )));
        }
    }
    let keys: Vec<_> = merge.on.iter().map(ident).collect();
    let duplicates = source
        .clone()
        .aggregate(keys, vec![count(lit(1)).alias("__rows")])?
        .filter(ident("__rows").gt(lit(1)))?
        .limit(0, Some(1))?
        .collect()
        .await?;
    let Some(batch) = duplicates.iter().find(|b| b.num_rows() > 0) else { return Ok(()) };
    let value = |index: usize| {
        datafusion::arrow::util::display::array_value_to_string(batch.column(index), 0).unwrap_or_default()
    };
    let key: Vec<String> = merge.on.iter().enumerate().map(|(i, name)| format!("{name}={}", value(i))).collect();
    Err(Error::query(format!(
        "target {}: merge_on key ({}) is in {} rows of the query's output; a merge takes one row per key",
        target.table,
        key.join(", "),
        value(merge.on.len())
    )))
}

/// `mode = "merge"`: the staged output (`source`, read in the run's `session`: its stores,
/// memory limit and settings) merged into the table as one Delta MERGE commit (the table
/// created empty first, if new; the catalog's partitions `current`, `None` for no table). Returns the commit and the catalog's view
/// of it: the partitions whose files it changed, with their complete file lists, and those
/// it emptied.
pub(super) async fn merge(
    target: &TargetSpec,
    schema: &TableSchema,
    merge: &MergeSpec,
    (source, session): (FileTable, SessionState),
    current: Option<&[Partition]>,
    tag: &WriteTag,
    run_id: &str,
) -> Result<(DeltaCommit, WrittenData)> {
    let location = &target.location;
    let context = SessionContext::new_with_state(session);
    let source = context.read_table(Arc::new(source))?;
    // Its keys were checked before any target of the run committed (see `refuse_keys_a_merge_cannot_match`).
    let table = match open(location).await? {
        Some(table) => table,
        None => create(location, &target.table, schema, Vec::new(), run_id).await?,
    };
    let current = current.unwrap_or_default();
    expect_files(&target.table, location, &file_actions(location, &table)?, Some(current))?;
    let version_before = table.version();
    let predicate = merge
        .on
        .iter()
        .map(|key| format!("target.{q} = source.{q}", q = quoted(key)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let columns: Vec<&str> = schema.columns.iter().chain(&schema.partition_keys).map(|c| c.name.as_str()).collect();
    let mut builder = table
        .merge(source, predicate)
        .with_source_alias("source")
        .with_target_alias("target")
        .with_merge_schema(true)
        .with_writer_properties(writer_properties(target)?)
        .with_commit_properties(properties(run_id))
        .with_session_state(Arc::new(context.state()));
    let failed = |e| delta_error(location, e);
    builder = match merge.when_matched {
        WhenMatched::Update => builder.when_matched_update(|update| {
            columns.iter().fold(update, |update, column| update.update(*column, format!("source.{}", quoted(column))))
        }),
        WhenMatched::Delete => builder.when_matched_delete(|delete| delete),
    }
    .map_err(failed)?;
    if merge.when_not_matched == WhenNotMatched::Insert {
        builder = builder
            .when_not_matched_insert(|insert| {
                columns.iter().fold(insert, |insert, column| insert.set(*column, format!("source.{}", quoted(column))))
            })
            .map_err(failed)?;
    }
    let (merged, _) = match builder.await {
        Ok(merged) => merged,
        Err(e) => return Err(commit_failed(location, version_before, e).await),
    };
    crate::kill_points::reached("delta.committed");
    let after = file_actions(location, &merged)?;
    let version = merged.version().unwrap_or_default();
    let written = mirror(location, schema, current, after.values(), tag);
    // A merge with nothing to change commits nothing: the last commit is another run's.
    let done = match merged.version() == version_before {
        true => DeltaCommit { version, added: Vec::new(), removed: Vec::new() },
        false => DeltaCommit::read(location, &merged.log_store(), version).await?,
    };
    Ok((done, written))
}

/// The catalog's change for a table whose files are now `files`: each partition whose file
/// set differs from `current`'s, with its complete list (files the catalog knows keep what it
/// recorded of them; new ones are this run's), and each of `current`'s that has no file left.
fn mirror<'a>(
    location: &Location,
    schema: &TableSchema,
    current: &[Partition],
    files: impl Iterator<Item = &'a Add>,
    tag: &WriteTag,
) -> WrittenData {
    let known: HashMap<&str, &DataFile> = current.iter().flat_map(|p| &p.files).map(|f| (f.path.as_str(), f)).collect();
    let files: Vec<(&Add, String)> = files.map(|add| (add, location.join(&add.path).url())).collect();
    // The merge rewrote the files it removed into those it added: their rows may be in any of
    // them, which hold the works of both (a rerun of one could neither replace nor keep them).
    let left: HashSet<&str> = files.iter().map(|(_, path)| path.as_str()).collect();
    let mut rewritten: BTreeSet<Work> =
        known.iter().filter(|(path, _)| !left.contains(*path)).flat_map(|(_, file)| file.works()).collect();
    if !rewritten.is_empty() {
        rewritten.insert(tag.work.clone());
    }
    let absorbed: Vec<Work> = rewritten.into_iter().collect();
    let mut partitions: BTreeMap<Vec<Option<String>>, Vec<DataFile>> = BTreeMap::new();
    for (add, path) in files {
        let values = values_of_delta(schema, &add.partition_values);
        let file = match known.get(path.as_str()) {
            Some(known) => (*known).clone(),
            None => DataFile {
                rows: add.get_stats().ok().flatten().map_or(0, |stats| stats.num_records as u64),
                path,
                size: add.size as u64,
                job: tag.work.job.clone(),
                logical_date: tag.work.logical_date.clone(),
                params: tag.work.params.clone(),
                absorbed: absorbed.clone(),
            },
        };
        partitions.entry(values).or_default().push(file);
    }
    let mut written = WrittenData::default();
    for partition in current {
        if !partitions.contains_key(&partition.values) {
            written.drops.push(PartitionWrite { partition: partition.clone(), based_on: None });
        }
    }
    let keys: Vec<&str> = schema.key_names().collect();
    for (values, files) in partitions {
        let now = current.iter().find(|p| p.values == values);
        let paths = |files: &[DataFile]| files.iter().map(|f| f.path.clone()).collect::<BTreeSet<_>>();
        if now.is_some_and(|now| paths(&now.files) == paths(&files)) {
            continue;
        }
        let folder = layout::partition_folder(keys.iter().copied(), &values);
        let folder = if folder.is_empty() { location.url() } else { location.join(&folder).url() };
        written.upserts.push(PartitionWrite {
            partition: Partition { values, location: folder, files },
            based_on: Some(now.map(|p| p.location.clone())),
        });
    }
    written
}

/// The table's files at its loaded version, by path relative to its root, as the log's add
/// actions (tags included).
fn file_actions(location: &Location, table: &DeltaTable) -> Result<BTreeMap<String, Add>> {
    Ok(table
        .snapshot()
        .map_err(|e| delta_error(location, e))?
        .log_data()
        .into_iter()
        .map(|file| {
            // The one way delta-rs gives a file's tags; the path, decoded, as object stores
            // name it.
            #[allow(deprecated)]
            let add = Add { path: file.object_store_path().to_string(), ..file.add_action() };
            (add.path.clone(), add)
        })
        .collect())
}

/// Parquet settings for the files a merge writes, as etl's writer takes them from the target:
/// its codec, row groups and bloom filters, page statistics. Its rows come in the order
/// delta-rs merges them; the footer records the target's `sort_by` all the same, as the order
/// `etl compact` is to give them (it read "none", and compaction left the table unsorted).
fn writer_properties(target: &TargetSpec) -> Result<WriterProperties> {
    use deltalake_core::parquet::file::metadata::KeyValue;
    use deltalake_core::parquet::file::properties::EnabledStatistics;
    let codec = target.compression;
    let compression: Compression =
        codec.writer_setting().parse().map_err(|e| Error::runtime(format!("the codec {}: {e}", codec.name())))?;
    let recorded = target.layout.recorded(target.layout.sort_by.as_deref().unwrap_or_default())?;
    let mut properties = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(super::parquet::row_group_rows(&target.layout, false)))
        .set_max_row_group_bytes(target.layout.row_group_bytes.map(|bytes| bytes as usize))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(vec![KeyValue::new(super::LAYOUT_METADATA_KEY.to_string(), recorded)]));
    for column in &target.layout.bloom_filter {
        properties = properties.set_column_bloom_filter_enabled(column.as_str().into(), true);
    }
    Ok(properties.build())
}
