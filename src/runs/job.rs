//! Job files: parsed, then resolved into a validated plan before anything touches data.
//!
//! Everything wrong with a job file is found here and is a configuration error (exit 2) naming
//! the file and the option: unknown keys, bad names, modes, locations, parameters, SQL files
//! that do not exist, a target that would overwrite a source. Local locations and SQL files are
//! relative to the job file's folder, so a job runs the same from any working directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use serde::Deserialize;

use super::events::trigger::{Trigger, TriggerSection};
use super::schedule::Schedule;
use crate::catalog::crawl::OnSchemaChange;
use crate::catalog::{TableName, WriteMode};
use crate::checks::CheckSpec;
use crate::config::CatalogChoice;
use crate::error::{Error, Result};
use crate::infer::{DEFAULT_SAMPLE_ROWS, InferOptions};
use crate::location::Location;
use crate::location::aws::Encryption;
use crate::sink::{
    FileLayout, MAX_ROW_GROUP_ROWS, MIN_ROW_GROUP_BYTES, MergeSpec, ParquetCompression, TableFormat, TargetSpec,
    WhenMatched, WhenNotMatched,
};
use crate::source::format::FormatChoice;
use crate::source::rejects::BadRecordPolicy;
use crate::transform::params::{self, Params};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: String,
    schedule: Option<String>,
    catch_up: Option<String>,
    max_attempts: Option<u32>,
    retry_delay: Option<String>,
    attempt_timeout: Option<String>,
    on_failure: Option<OnFailureSection>,
    catalog: Option<String>,
    /// Where its queries run: local, or df://HOST:PORT (a Ballista cluster's scheduler).
    engine: Option<String>,
    /// The default of every target's `retain_versions`.
    retain_versions: Option<i64>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    source: Vec<SourceSection>,
    #[serde(default)]
    step: Vec<StepSection>,
    #[serde(default)]
    target: Vec<TargetSection>,
    #[serde(default)]
    trigger: Vec<TriggerSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSection {
    table: String,
    location: String,
    #[serde(default = "auto")]
    format: String,
    #[serde(default = "update")]
    on_schema_change: String,
    #[serde(default = "fail")]
    bad_records: String,
    #[serde(default)]
    incremental: bool,
    null_values: Option<Vec<String>>,
    sample_rows: Option<usize>,
    delimiter: Option<String>,
    header: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnFailureSection {
    command: Option<String>,
    webhook: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSection {
    sql: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetSection {
    table: String,
    query: String,
    location: String,
    #[serde(default)]
    partition_by: Vec<String>,
    #[serde(default = "overwrite")]
    mode: String,
    /// Athena reads zstd Parquet, and it is smaller than snappy's and scans less.
    #[serde(default = "zstd")]
    compression: String,
    /// Server-side encryption of the objects written to S3: `AES256` or `aws:kms`.
    encryption: Option<String>,
    kms_key_id: Option<String>,
    /// Lets the target's location overlap a source's: for jobs that knowingly read what an
    /// earlier run wrote there (the source's format or layout keeping the two apart).
    #[serde(default)]
    allow_source_overlap: bool,
    /// The table's latest versions whose files stay on storage, for rollback.
    retain_versions: Option<i64>,
    /// What the output must satisfy before it is published, one rule per `[[target.check]]`.
    #[serde(default)]
    check: Vec<toml::Table>,
    /// The order of rows within each partition (`[]`: the query's); etl chooses when unset.
    sort_by: Option<Vec<String>>,
    row_group_rows: Option<i64>,
    /// A size (`64M`) or a number of bytes.
    row_group_bytes: Option<toml::Value>,
    #[serde(default)]
    bloom_filter: Vec<String>,
    /// Compact a partition once it holds more files than this (appends leave many).
    compact_after_files: Option<i64>,
    /// Rows in the Z-order of the sort columns rather than sorted by one after another.
    #[serde(default)]
    zorder: bool,
    /// `hive` (folders the catalog switches) or `delta` (a Delta Lake transaction log).
    #[serde(default = "hive")]
    table_format: String,
    /// `mode = "merge"`: the key columns an output row is matched on, and what a match (or
    /// no match) does.
    merge_on: Option<Vec<String>>,
    when_matched: Option<String>,
    when_not_matched: Option<String>,
    /// `false`: the output is the table's rows rearranged (a compaction); Delta targets only,
    /// as Delta's writers take `dataChange`.
    #[serde(default = "yes")]
    data_change: bool,
}

fn yes() -> bool {
    true
}
fn hive() -> String {
    "hive".into()
}
fn auto() -> String {
    "auto".into()
}
fn update() -> String {
    "update".into()
}
fn fail() -> String {
    "fail".into()
}
fn overwrite() -> String {
    "overwrite".into()
}
fn zstd() -> String {
    "zstd".into()
}

#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub table: TableName,
    pub location: Location,
    pub infer: InferOptions,
    pub on_schema_change: OnSchemaChange,
    pub bad_records: BadRecordPolicy,
    /// Read only the objects no successful run has processed.
    pub incremental: bool,
}

/// After downtime, which missed fire times the scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    All,
    Latest,
    None,
}

impl std::str::FromStr for CatchUp {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "latest" => Ok(CatchUp::Latest),
            "all" => Ok(CatchUp::All),
            "none" => Ok(CatchUp::None),
            other => Err(format!("unknown value '{other}' (expected all, latest or none)")),
        }
    }
}

/// How the scheduler runs a job: when, what it catches up, how it retries, whom it tells.
#[derive(Debug, Clone)]
pub struct Scheduling {
    pub schedule: Option<Schedule>,
    pub catch_up: CatchUp,
    /// Attempts per fire time, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each retry after.
    pub retry_delay: Duration,
    pub attempt_timeout: Option<Duration>,
    pub on_failure: OnFailure,
}

/// Whom a run that finally failed is reported to, with its report.
#[derive(Debug, Clone, Default)]
pub struct OnFailure {
    /// Run by `sh -c`, the report as JSON on its standard input.
    pub command: Option<String>,
    /// POSTed the report as JSON.
    pub webhook: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StepSpec {
    /// As messages name it (the path as the job file wrote it, relative to the job's folder).
    pub display: String,
    pub sql: String,
}

/// A job file, resolved and validated.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub file: PathBuf,
    pub scheduling: Scheduling,
    pub catalog: Option<CatalogChoice>,
    /// Where its queries run, unless `--engine` (or `ETL_ENGINE`) says.
    pub engine: Option<crate::transform::cluster::Engine>,
    /// Jobs of its pipeline this one runs after, besides those that write what it reads
    /// (a dependency no table shows: a file another job leaves, an API it loads).
    pub depends_on: Vec<String>,
    pub params: Params,
    pub sources: Vec<SourceSpec>,
    pub steps: Vec<StepSpec>,
    pub targets: Vec<TargetSpec>,
    /// The objects whose arrival runs it (`etl trigger`, `etl scheduler --queue`).
    pub triggers: Vec<Trigger>,
}

impl Job {
    pub fn load(path: &Path) -> Result<Job> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::config(format!("job file {}: {e}", path.display())))?;
        Self::parse(&text, path)
    }

    /// Every job file of a folder (`*.toml`, by name), or the one file named.
    pub fn load_all(path: &Path) -> Result<Vec<Job>> {
        job_files(path)?.iter().map(|file| Job::load(file)).collect()
    }

    /// The logical dates the job's schedule fires on from `from` to `to` (each day, for a job
    /// without a schedule): the dates of a backfill.
    pub fn scheduled_dates(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        super::schedule::backfill_dates(self.scheduling.schedule.as_ref(), from, to)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Job> {
        let file_name = path.display().to_string();
        let raw: JobFile = toml::from_str(text)
            .map_err(|e| Error::config(format!("job file {file_name}: {}", e.to_string().trim_end())))?;
        let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let bad = |(option, why): Refusal| Error::config(format!("job file {file_name}: {option}: {why}"));

        let name = resolve_name(&raw.name).map_err(bad)?;
        let catalog = raw.catalog.as_deref().map(str::parse).transpose().map_err(|e| bad(("catalog".into(), e)))?;
        let engine = raw.engine.as_deref().map(str::parse).transpose().map_err(|e| bad(("engine".into(), e)))?;
        let depends_on = resolve_depends_on(&name, &raw.depends_on).map_err(bad)?;
        let params = resolve_params(&raw.params).map_err(bad)?;
        let mut sources: Vec<SourceSpec> = Vec::new();
        for (i, section) in raw.source.iter().enumerate() {
            sources.push(section.resolve(i, &folder, &sources).map_err(bad)?);
        }
        let steps = raw.step.iter().enumerate().map(|(i, s)| s.resolve(i, &folder)).collect::<Result<_, _>>();
        let steps = steps.map_err(bad)?;
        let mut targets: Vec<TargetSpec> = Vec::new();
        for (i, section) in raw.target.iter().enumerate() {
            targets.push(section.resolve(i, &folder, &sources, &targets, raw.retain_versions).map_err(bad)?);
        }
        if targets.is_empty() {
            return Err(bad(("target".into(), "a job needs at least one [[target]]".into())));
        }
        let scheduling = resolve_scheduling(&raw).map_err(bad)?;
        let triggers = raw
            .trigger
            .iter()
            .enumerate()
            .map(|(i, t)| t.resolve(&folder).map_err(|(key, why)| bad((format!("trigger[{i}].{key}"), why))));
        let triggers = triggers.collect::<Result<Vec<_>>>()?;
        for (i, trigger) in triggers.iter().enumerate() {
            if let Some((j, target)) = targets.iter().enumerate().find(|(_, t)| trigger.sees_writes_to(&t.location)) {
                let why = format!(
                    "{trigger} would see what target[{j}] writes to {}: each run of the job would start it again; \
                     watch the sources' prefix, or set a suffix its outputs do not end with",
                    target.location
                );
                return Err(bad((format!("trigger[{i}]"), why)));
            }
        }
        Ok(Job {
            name,
            file: path.to_path_buf(),
            scheduling,
            catalog,
            engine,
            depends_on,
            params,
            sources,
            steps,
            targets,
            triggers,
        })
    }
}

/// A refused option: where it is in the file (`target[0].mode`) and why.
pub(super) type Refusal = (String, String);

/// A job's (or a pipeline's) name, as Glue would take it in a table name.
pub(super) fn resolve_name(name: &str) -> Result<String, Refusal> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(("name".into(), format!("'{name}' must match [a-z0-9_]+")));
    }
    Ok(name.to_string())
}

/// Job names, each once, not the job itself; whether they exist is the pipeline's to check.
fn resolve_depends_on(job: &str, names: &[String]) -> Result<Vec<String>, Refusal> {
    let mut depends_on: Vec<String> = Vec::new();
    for name in names {
        let name = resolve_name(name).map_err(|(_, why)| ("depends_on".to_string(), why))?;
        if name == job {
            return Err(("depends_on".into(), format!("job {job} cannot depend on itself")));
        }
        if depends_on.contains(&name) {
            return Err(("depends_on".into(), format!("'{name}' is listed twice")));
        }
        depends_on.push(name);
    }
    Ok(depends_on)
}

fn resolve_params(raw: &BTreeMap<String, toml::Value>) -> Result<Params, Refusal> {
    let mut params = Params::default();
    for (name, value) in raw {
        let at = || format!("params.{name}");
        if params::BUILT_INS.contains(&name.as_str()) {
            return Err((at(), "is a built-in parameter".into()));
        }
        let value = params::from_toml(name, value).map_err(|e| (at(), e.message().to_string()))?;
        params.set(name, value);
    }
    Ok(params)
}

impl SourceSection {
    fn resolve(&self, i: usize, folder: &Path, earlier: &[SourceSpec]) -> Result<SourceSpec, Refusal> {
        let at = |key: &str| format!("source[{i}].{key}");
        let table: TableName = self.table.parse().map_err(|e: Error| (at("table"), e.message().to_string()))?;
        if earlier.iter().any(|s| s.table == table) {
            return Err((at("table"), format!("{table} is listed twice")));
        }
        let location =
            resolve_location(&self.location, folder).map_err(|e| (at("location"), e.message().to_string()))?;
        let format: FormatChoice = self.format.parse().map_err(|e| (at("format"), e))?;
        let on_schema_change = self.on_schema_change.parse().map_err(|e| (at("on_schema_change"), e))?;
        let bad_records = self.bad_records.parse().map_err(|e| (at("bad_records"), e))?;
        let delimiter = self.delimiter.as_deref().map(parse_delimiter).transpose().map_err(|e| (at("delimiter"), e))?;
        Ok(SourceSpec {
            table,
            location,
            infer: InferOptions {
                format,
                sample_rows: self.sample_rows.unwrap_or(DEFAULT_SAMPLE_ROWS),
                delimiter,
                header: self.header,
                null_values: self.null_values.clone(),
            },
            on_schema_change,
            bad_records,
            incremental: self.incremental,
        })
    }
}

/// One byte, or a tab spelt out.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "\\t" | "\t" | "tab" => Ok(b'\t'),
        d if d.len() == 1 => Ok(d.as_bytes()[0]),
        other => Err(format!("'{other}' is not a single character")),
    }
}

impl StepSection {
    fn resolve(&self, i: usize, folder: &Path) -> Result<StepSpec, Refusal> {
        let sql_path = folder.join(&self.sql);
        let sql = std::fs::read_to_string(&sql_path)
            .map_err(|e| (format!("step[{i}].sql"), format!("{}: {e}", sql_path.display())))?;
        Ok(StepSpec { display: sql_path.display().to_string(), sql })
    }
}

impl TargetSection {
    fn resolve(
        &self,
        i: usize,
        folder: &Path,
        sources: &[SourceSpec],
        earlier: &[TargetSpec],
        job_retain_versions: Option<i64>,
    ) -> Result<TargetSpec, Refusal> {
        let at = |key: &str| format!("target[{i}].{key}");
        let retain_versions = match (self.retain_versions, job_retain_versions) {
            (Some(n), _) => resolve_retain_versions(n).map_err(|e| (at("retain_versions"), e))?,
            (None, Some(n)) => resolve_retain_versions(n).map_err(|e| ("retain_versions".to_string(), e))?,
            (None, None) => crate::sink::DEFAULT_RETAIN_VERSIONS,
        };
        let checks = self
            .check
            .iter()
            .enumerate()
            .map(|(j, table)| CheckSpec::resolve(table).map_err(|e| (format!("target[{i}].check[{j}]"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        // A report and `etl check` tell checks apart by name, as dbt does its tests.
        for (j, check) in checks.iter().enumerate() {
            if let Some(first) = checks[..j].iter().position(|c| c.name == check.name) {
                let why =
                    format!("two checks are named '{}' (check[{first}] too): give each its own `name`", check.name);
                return Err((format!("target[{i}].check[{j}]"), why));
            }
        }
        let table: TableName = self.table.parse().map_err(|e: Error| (at("table"), e.message().to_string()))?;
        if self.query.trim().is_empty() {
            return Err((at("query"), "is empty".into()));
        }
        let location =
            resolve_location(&self.location, folder).map_err(|e| (at("location"), e.message().to_string()))?;
        let mode: WriteMode = self.mode.parse().map_err(|e| (at("mode"), e))?;
        let compression: ParquetCompression = self.compression.parse().map_err(|e| (at("compression"), e))?;
        let format: TableFormat = self.table_format.parse().map_err(|e| (at("table_format"), e))?;
        let merge = self.merge_spec(mode, format).map_err(|(key, why)| (at(key), why))?;
        // What a merge leaves is known only once the Delta log has merged, after the checks.
        let counted = checks.iter().position(|c| matches!(c.rule, crate::checks::Rule::RowCountChange { .. }));
        if let Some(j) = counted.filter(|_| merge.is_some()) {
            let why = "row_count_change cannot be judged before a merge (the rows it leaves are known only after it)";
            return Err((format!("target[{i}].check[{j}]"), why.into()));
        }
        if !self.data_change && (format != TableFormat::Delta || mode == WriteMode::Merge) {
            let why = "false applies to Delta targets (table_format = \"delta\") in modes other than merge";
            return Err((at("data_change"), why.into()));
        }
        let encryption = Encryption::parse(self.encryption.as_deref(), self.kms_key_id.as_deref())
            .map_err(|e| (at("encryption"), e))?;
        if encryption != Encryption::BucketDefault && location.bucket().is_none() {
            return Err((at("encryption"), "server-side encryption applies to s3:// locations".into()));
        }
        let location = location.with_encryption(&encryption);
        let mut partition_by = Vec::new();
        for key in &self.partition_by {
            let normalized = crate::schema::names::normalize(key, 0);
            if partition_by.contains(&normalized) {
                return Err((at("partition_by"), format!("'{key}' is listed twice")));
            }
            partition_by.push(normalized);
        }
        if sources.iter().any(|s| s.table == table) || earlier.iter().any(|t| t.table == table) {
            return Err((at("table"), format!("{table} is already a source or target of this job")));
        }
        let overlapping = sources.iter().find(|s| s.location.overlaps(&location));
        if let Some(source) = overlapping.filter(|_| !self.allow_source_overlap) {
            return Err((
                at("location"),
                format!(
                    "target {table} at {location} overlaps source {} at {}: a run would read or overwrite \
                     its own input (set allow_source_overlap = true on the target if that is intended)",
                    source.table, source.location
                ),
            ));
        }
        if let Some(other) = earlier.iter().find(|t| t.location.overlaps(&location)) {
            return Err((at("location"), format!("{location} overlaps the location of target {}", other.table)));
        }
        let same_bucket = |t: &&TargetSpec| t.location.bucket().is_some() && t.location.bucket() == location.bucket();
        if let Some(other) = earlier.iter().filter(same_bucket).find(|t| t.encryption != encryption) {
            return Err((
                at("encryption"),
                format!("target {} writes to the same bucket with other encryption", other.table),
            ));
        }
        let layout = self.file_layout(&partition_by).map_err(|(key, why)| (at(key), why))?;
        Ok(TargetSpec {
            table,
            query: self.query.clone(),
            location,
            partition_by,
            mode,
            compression,
            encryption,
            checks,
            retain_versions,
            layout,
            format,
            merge,
            data_change: self.data_change,
        })
    }
}

impl TargetSection {
    /// The merge options, set with `mode = "merge"` (on a Delta table) and only then.
    fn merge_spec(&self, mode: WriteMode, format: TableFormat) -> Result<Option<MergeSpec>, (&'static str, String)> {
        if mode != WriteMode::Merge {
            let given = [
                ("merge_on", self.merge_on.is_some()),
                ("when_matched", self.when_matched.is_some()),
                ("when_not_matched", self.when_not_matched.is_some()),
            ];
            return match given.into_iter().find(|(_, given)| *given) {
                Some((key, _)) => Err((key, "applies to mode = \"merge\" only".into())),
                None => Ok(None),
            };
        }
        if format != TableFormat::Delta {
            return Err((
                "mode",
                "merge needs table_format = \"delta\": a Hive table has no row-level upsert \
                 (overwrite_partitions replaces whole partitions)"
                    .into(),
            ));
        }
        let mut on: Vec<String> = Vec::new();
        for key in self.merge_on.iter().flatten() {
            let normalized = crate::schema::names::normalize(key, 0);
            if on.contains(&normalized) {
                return Err(("merge_on", format!("'{key}' is listed twice")));
            }
            on.push(normalized);
        }
        if on.is_empty() {
            return Err((
                "merge_on",
                "mode = \"merge\" needs the key columns rows are matched on: merge_on = [\"id\"]".into(),
            ));
        }
        let when_matched = match &self.when_matched {
            Some(text) => text.parse().map_err(|e| ("when_matched", e))?,
            None => WhenMatched::default(),
        };
        let when_not_matched = match &self.when_not_matched {
            Some(text) => text.parse().map_err(|e| ("when_not_matched", e))?,
            None => WhenNotMatched::default(),
        };
        Ok(Some(MergeSpec { on, when_matched, when_not_matched }))
    }

    /// The layout options; the option's key and why, when one is wrong.
    fn file_layout(&self, partition_by: &[String]) -> Result<FileLayout, (&'static str, String)> {
        let names = |key: &'static str, list: &[String]| -> Result<Vec<String>, (&'static str, String)> {
            let mut names: Vec<String> = Vec::new();
            for name in list {
                let normalized = crate::schema::names::normalize(name, 0);
                if names.contains(&normalized) {
                    return Err((key, format!("'{name}' is listed twice")));
                }
                if partition_by.contains(&normalized) {
                    return Err((key, format!("'{name}' is a partition key: each file holds one value of it")));
                }
                names.push(normalized);
            }
            Ok(names)
        };
        let sort_by = self.sort_by.as_deref().map(|list| names("sort_by", list)).transpose()?;
        let bloom_filter = names("bloom_filter", &self.bloom_filter)?;
        let row_group_rows = match self.row_group_rows {
            None => None,
            // Small row groups cost footers and requests, but a user may want them (Spark and
            // pyarrow take any size): only sizes no writer can make are refused.
            Some(n) if (1..=MAX_ROW_GROUP_ROWS as i64).contains(&n) => Some(n as usize),
            Some(n) => {
                return Err(("row_group_rows", format!("{n} is outside 1..={MAX_ROW_GROUP_ROWS}")));
            }
        };
        let row_group_bytes = match &self.row_group_bytes {
            None => None,
            Some(toml::Value::Integer(n)) if *n > 0 => Some(*n as u64),
            Some(toml::Value::String(text)) => {
                Some(crate::config::parse_size(text).map_err(|e| ("row_group_bytes", e))? as u64)
            }
            Some(other) => return Err(("row_group_bytes", format!("{other} is not a size (like 64M)"))),
        };
        if let Some(bytes) = row_group_bytes.filter(|b| *b < MIN_ROW_GROUP_BYTES) {
            return Err((
                "row_group_bytes",
                format!("{bytes} bytes is below the least, 1M ({MIN_ROW_GROUP_BYTES} bytes)"),
            ));
        }
        let compact_after_files = match self.compact_after_files {
            None => None,
            Some(n) if n >= 2 => Some(n as usize),
            Some(n) => return Err(("compact_after_files", format!("{n} is not a number of files above 1"))),
        };
        if self.zorder && sort_by.as_ref().is_some_and(Vec::is_empty) {
            return Err(("zorder", "needs columns to interleave: sort_by = [] names none".into()));
        }
        Ok(FileLayout {
            sort_by,
            row_group_rows,
            row_group_bytes,
            bloom_filter,
            file_rows: None,
            compact_after_files,
            zorder: self.zorder,
        })
    }
}

/// At least the current version: a table's files are its data.
fn resolve_retain_versions(n: i64) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{n} is not a number of versions (1 or more: 1 keeps only the current one)")),
    }
}

fn resolve_scheduling(raw: &JobFile) -> Result<Scheduling, Refusal> {
    let schedule = raw.schedule.as_deref().map(str::parse::<Schedule>).transpose();
    let schedule = schedule.map_err(|e| ("schedule".to_string(), e.to_string()))?;
    let catch_up = raw.catch_up.as_deref().map(str::parse).transpose().map_err(|e| ("catch_up".to_string(), e))?;
    let catch_up = catch_up.unwrap_or(CatchUp::Latest);
    let duration = |key: &str, text: &Option<String>| -> Result<Option<Duration>, Refusal> {
        text.as_deref().map(parse_duration).transpose().map_err(|e| (key.to_string(), e))
    };
    let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if max_attempts == 0 {
        return Err(("max_attempts".into(), "must be 1 or more".into()));
    }
    let on_failure = raw
        .on_failure
        .as_ref()
        .map(|o| OnFailure { command: o.command.clone(), webhook: o.webhook.clone() })
        .unwrap_or_default();
    if let Some(webhook) = &on_failure.webhook {
        if !(webhook.starts_with("http://") || webhook.starts_with("https://")) {
            return Err(("on_failure.webhook".into(), format!("'{webhook}' is not an http(s) URL")));
        }
    }
    Ok(Scheduling {
        schedule,
        catch_up,
        max_attempts,
        retry_delay: duration("retry_delay", &raw.retry_delay)?.unwrap_or(DEFAULT_RETRY_DELAY),
        attempt_timeout: match duration("attempt_timeout", &raw.attempt_timeout)? {
            Some(zero) if zero.is_zero() => {
                return Err(("attempt_timeout".into(), "0s leaves an attempt no time to run".into()));
            }
            other => other,
        },
        on_failure,
    })
}

/// The file of a folder of jobs that makes it a pipeline ([`super::pipeline`]): not a job.
pub const PIPELINE_FILE: &str = "pipeline.toml";

/// The job files of a folder (`*.toml` but [`PIPELINE_FILE`], sorted), or the one file named.
pub fn job_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| p.file_name().is_none_or(|name| name != PIPELINE_FILE))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::config(format!("{}: no job files (*.toml)", path.display())));
    }
    Ok(files)
}

/// The wait before retrying after `attempt` failed: `base` doubled per attempt, plus up to a
/// quarter of it at random so that jobs failing together do not retry together.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let delay = base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let jitter = (delay / 4).mul_f64(crate::location::retry::random_fraction());
    // Saturating: a retry delay of centuries is the job's choice, not a reason to panic.
    delay.saturating_add(jitter)
}

/// Attempts per fire time when a job does not say (as Step Functions users configure).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Wait before a first retry when a job does not say.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(60);

/// `90s`, `5m`, `2h`, `1d` (or a number of seconds).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let value: u64 = number.parse().map_err(|_| format!("'{text}' is not a duration (like 90s, 5m, 2h or 1d)"))?;
    let unit_seconds: u64 = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}' is not a duration (like 90s, 5m, 2h or 1d)")),
    };
    let seconds = value.checked_mul(unit_seconds).ok_or_else(|| format!("'{text}' is too long a duration"))?;
    Ok(Duration::from_secs(seconds))
}

/// A local path relative to the job file's folder; URLs as they are.
fn resolve_location(text: &str, folder: &Path) -> Result<Location> {
    if text.contains("://") || Path::new(text).is_absolute() {
        return Location::parse(text);
    }
    Location::parse(&folder.join(text).to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Job> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("q.sql"), "SELECT 1").unwrap();
        Job::parse(text, &dir.path().join("job.toml"))
    }

    const GOOD: &str = r#"
name = "weekly"
[params]
region = "eu"
min = 10
[[source]]
table = "raw.orders"
location = "data/orders/"
[[step]]
sql = "q.sql"
[[target]]
table = "curated.weekly"
query = "SELECT * FROM weekly"
location = "out/weekly/"
partition_by = ["Week"]
mode = "overwrite_partitions"
compression = "zstd"
"#;

    #[test]
    fn a_good_job_resolves_with_defaults() {
        let job = parse(GOOD).unwrap();
        assert_eq!(job.name, "weekly");
        assert_eq!(job.sources[0].on_schema_change, OnSchemaChange::Update);
        assert_eq!(job.sources[0].bad_records, BadRecordPolicy::Fail);
        assert!(job.sources[0].location.url().ends_with("/data/orders"));
        assert_eq!(job.targets[0].partition_by, vec!["week"]);
        assert_eq!(job.targets[0].mode, WriteMode::OverwritePartitions);
        assert_eq!(job.steps[0].sql, "SELECT 1");
        assert!(job.params.get("min").is_some());
    }

    #[test]
    fn compression_defaults_to_zstd_and_takes_each_codec_athena_reads() {
        let without = GOOD.replace("compression = \"zstd\"\n", "");
        assert_eq!(parse(&without).unwrap().targets[0].compression, ParquetCompression::Zstd);
        for (text, codec) in [
            ("snappy", ParquetCompression::Snappy),
            ("gzip", ParquetCompression::Gzip),
            ("none", ParquetCompression::None),
        ] {
            let job = parse(&GOOD.replace("compression = \"zstd\"", &format!("compression = \"{text}\""))).unwrap();
            assert_eq!(job.targets[0].compression, codec);
        }
    }

    /// Parsing `text` is a configuration error (exit 2) whose message contains `expected`.
    fn assert_refused(text: &str, expected: &str) {
        let err = parse(text).unwrap_err();
        assert_eq!(err.kind().exit_code(), 2, "{err}");
        assert!(err.message().contains(expected), "expected '{expected}' in: {err}");
    }

    #[test]
    fn a_job_name_is_lowercase_words() {
        assert_refused(&GOOD.replace("name = \"weekly\"", "name = \"Weekly\""), "name: 'Weekly' must match");
    }

    #[test]
    fn a_source_names_a_catalog_table_and_a_known_policy() {
        assert_refused(
            &GOOD.replace("table = \"raw.orders\"", "table = \"orders\""),
            "source[0].table: table name 'orders'",
        );
        assert_refused(
            &GOOD.replace("location = \"data/orders/\"", "location = \"data/orders/\"\nbad_records = \"skip\""),
            "source[0].bad_records",
        );
    }

    #[test]
    fn a_step_reads_an_sql_file_that_exists() {
        assert_refused(&GOOD.replace("q.sql", "missing.sql"), "step[0].sql:");
    }

    #[test]
    fn a_target_has_known_options_and_a_place_of_its_own() {
        assert_refused(
            &GOOD.replace("mode = \"overwrite_partitions\"", "mode = \"upsert\""),
            "target[0].mode: unknown mode 'upsert'",
        );
        assert_refused(
            &GOOD.replace("compression = \"zstd\"", "compression = \"lz4\""),
            "target[0].compression: unknown compression",
        );
        assert_refused(
            &GOOD.replace("out/weekly/", "data/orders/2026"),
            "/data/orders/2026 overlaps source raw.orders at /",
        );
        assert_refused(&GOOD.replace("out/weekly/", "./data/"), "target[0].location: target curated.weekly at /");
        assert_refused(&GOOD.replace("partition_by", "allow_source_overlap = 1\npartition_by"), "allow_source_overlap");
        assert_refused(&GOOD.replace("[[target]]", "[[target]]\nbogus = 1"), "unknown field `bogus`");
    }

    #[test]
    fn params_cannot_take_a_built_ins_name() {
        assert_refused(&GOOD.replace("region = \"eu\"", "run_id = \"x\""), "params.run_id: is a built-in");
    }

    #[test]
    fn retain_versions_defaults_to_five_and_the_target_overrides_the_job() {
        assert_eq!(parse(GOOD).unwrap().targets[0].retain_versions, 5);
        let job_wide = format!("retain_versions = 2\n{GOOD}");
        assert_eq!(parse(&job_wide).unwrap().targets[0].retain_versions, 2);
        let target = job_wide.replace("mode = ", "retain_versions = 7\nmode = ");
        assert_eq!(parse(&target).unwrap().targets[0].retain_versions, 7);
        let err = parse(&GOOD.replace("mode = ", "retain_versions = 0\nmode = ")).unwrap_err();
        assert!(err.message().contains("target[0].retain_versions: 0 is not a number of versions"), "{err}");
        let err = parse(&format!("retain_versions = -3\n{GOOD}")).unwrap_err();
        assert_eq!(err.kind().exit_code(), 2);
        assert!(err.message().contains("retain_versions: -3"), "{err}");
    }

    #[test]
    fn checks_belong_to_their_target_and_a_bad_one_names_its_place() {
        assert!(parse(GOOD).unwrap().targets[0].checks.is_empty());
        let checked = format!(
            "{GOOD}\n[[target.check]]\nnot_null = [\"Week\"]\n[[target.check]]\nrow_count = {{ min = 1 }}\nseverity = \"warn\"\n"
        );
        let checks = &parse(&checked).unwrap().targets[0].checks;
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].rule, crate::checks::Rule::NotNull(vec!["week".into()]));
        assert_eq!(checks[1].severity, crate::checks::Severity::Warn);
        let bad = format!("{GOOD}\n[[target.check]]\nexpression = \"amount >\"\n");
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.kind().exit_code(), 2);
        assert!(err.message().contains("target[0].check[0]: expression:"), "{err}");
    }

    /// Regression (found while writing the job-file fuzz target): a duration in minutes, hours or days
    /// past u64 seconds overflowed a multiplication.
    #[test]
    fn an_attempt_needs_time() {
        let err = parse(&format!("attempt_timeout = \"0s\"\n{GOOD}")).unwrap_err();
        assert_eq!(err.kind().exit_code(), 2, "{err}");
        assert!(err.message().contains("attempt_timeout: 0s leaves an attempt no time"), "{err}");
    }

    #[test]
    fn durations_too_long_to_count_are_errors() {
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("18446744073709551615d").unwrap_err().contains("too long"));
        let err = parse(&format!("retry_delay = \"307445734561825861m\"\n{GOOD}")).unwrap_err();
        assert!(err.message().contains("retry_delay: '307445734561825861m' is too long"), "{err}");
    }

    #[test]
    fn depends_on_names_other_jobs_each_once() {
        assert!(parse(GOOD).unwrap().depends_on.is_empty());
        let job = parse(&format!("depends_on = [\"raw_orders\", \"raw_customers\"]\n{GOOD}")).unwrap();
        assert_eq!(job.depends_on, ["raw_orders", "raw_customers"]);
        for (list, expected) in [
            ("[\"weekly\"]", "depends_on: job weekly cannot depend on itself"),
            ("[\"a\", \"a\"]", "depends_on: 'a' is listed twice"),
            ("[\"Raw\"]", "depends_on: 'Raw' must match [a-z0-9_]+"),
        ] {
            let err = parse(&format!("depends_on = {list}\n{GOOD}")).unwrap_err();
            assert_eq!(err.kind().exit_code(), 2, "{err}");
            assert!(err.message().contains(expected), "expected '{expected}' in: {err}");
        }
    }

    #[test]
    fn triggers_are_prefixes_or_folders_each_with_a_suffix() {
        assert!(parse(GOOD).unwrap().triggers.is_empty());
        let two = format!(
            "{GOOD}\n[[trigger]]\ns3 = \"s3://raw-data/orders/\"\nsuffix = \".csv\"\n[[trigger]]\ns3 = \"inbox/\"\n"
        );
        let triggers = parse(&two).unwrap().triggers;
        assert_eq!(triggers.len(), 2);
        assert_eq!(triggers[0].to_string(), "s3://raw-data/orders/ (*.csv)");
        assert!(triggers[1].to_string().ends_with("/inbox"), "{}", triggers[1]);
        for (section, expected) in [
            ("s3 = \"s3://raw/\"\nprefix = \"x\"", "unknown field `prefix`"),
            ("suffix = \".csv\"", "missing field `s3`"),
            ("s3 = \"gs://raw/\"", "trigger[0].s3: 'gs://raw/' is neither an s3:// prefix nor a local folder"),
            ("s3 = \"s3://raw/\"\nsuffix = \"\"", "trigger[0].suffix: is empty"),
        ] {
            let err = parse(&format!("{GOOD}\n[[trigger]]\n{section}\n")).unwrap_err();
            assert_eq!(err.kind().exit_code(), 2, "{err}");
            assert!(err.message().contains(expected), "expected '{expected}' in: {err}");
        }
    }

    #[test]
    fn a_folder_of_jobs_leaves_out_its_pipeline_file() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["b.toml", "a.toml", PIPELINE_FILE, "notes.md"] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        let names: Vec<_> = job_files(dir.path()).unwrap().iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["a.toml", "b.toml"]);
    }

    #[test]
    fn a_target_may_overlap_a_source_when_the_job_says_so() {
        let text = GOOD.replace("out/weekly/", "data/orders/derived/");
        assert!(parse(&text).is_err());
        let job = parse(&text.replace("partition_by", "allow_source_overlap = true\npartition_by")).unwrap();
        assert!(job.targets[0].location.url().ends_with("/data/orders/derived"));
        let between_targets = format!(
            "{GOOD}\n[[target]]\ntable = \"curated.b\"\nquery = \"SELECT 1\"\nlocation = \"out/weekly/b\"\nallow_source_overlap = true\n"
        );
        let err = parse(&between_targets).unwrap_err();
        assert!(err.message().contains("overlaps the location of target curated.weekly"), "{err}");
    }

    /// Regression: a retry delay near `Duration::MAX` overflowed when the jitter was added.
    #[test]
    fn backoff_doubles_with_jitter_and_saturates() {
        let first = backoff(Duration::from_secs(60), 1);
        assert!(first >= Duration::from_secs(60) && first < Duration::from_secs(75), "{first:?}");
        let third = backoff(Duration::from_secs(60), 3);
        assert!(third >= Duration::from_secs(240) && third < Duration::from_secs(300), "{third:?}");
        assert_eq!(backoff(Duration::from_secs(u64::MAX), 5), Duration::MAX);
    }
}
