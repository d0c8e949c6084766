//! Job files: parsed, then resolved into a validated plan before anything touches data.
//!
//! Everything wrong with a job file is found here and is a configuration error (exit 2) naming
//! the file and the option: unknown keys, bad names, modes, locations, parameters, SQL files
//! that do not exist, a target that would overwrite a source. Local locations and SQL files are
//! relative to the job file's folder, so a job runs the same from any working directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::schedule::Schedule;
use crate::catalog::{TableName, WriteMode};
use crate::error::{Error, Result};
use crate::location::Location;
use crate::location::aws::Encryption;
use crate::schema::infer::{DEFAULT_SAMPLE_ROWS, InferOptions};
use crate::sink::{ParquetCompression, TargetSpec};
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
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    source: Vec<SourceSection>,
    #[serde(default)]
    step: Vec<StepSection>,
    #[serde(default)]
    target: Vec<TargetSection>,
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
    #[serde(default = "snappy")]
    compression: String,
    /// Server-side encryption of the objects written to S3: `AES256` or `aws:kms`.
    encryption: Option<String>,
    kms_key_id: Option<String>,
    /// Lets the target's location overlap a source's: for jobs that knowingly read what an
    /// earlier run wrote there (the source's format or layout keeping the two apart).
    #[serde(default)]
    allow_source_overlap: bool,
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
fn snappy() -> String {
    "snappy".into()
}

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
    pub catalog: Option<String>,
    pub params: Params,
    pub sources: Vec<SourceSpec>,
    pub steps: Vec<StepSpec>,
    pub targets: Vec<TargetSpec>,
}

impl Job {
    pub fn load(path: &Path) -> Result<Job> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::config(format!("job file {}: {e}", path.display())))?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Job> {
        let file_name = path.display().to_string();
        let raw: JobFile = toml::from_str(text)
            .map_err(|e| Error::config(format!("job file {file_name}: {}", e.to_string().trim_end())))?;
        let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let bad = |what: String, why: String| Error::config(format!("job file {file_name}: {what}: {why}"));

        if raw.name.is_empty() || !raw.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(bad("name".into(), format!("'{}' must match [a-z0-9_]+", raw.name)));
        }
        if let Some(catalog) = &raw.catalog {
            if catalog != "local" && catalog != "glue" {
                return Err(bad("catalog".into(), format!("unknown catalog '{catalog}' (expected local or glue)")));
            }
        }
        let mut params = Params::default();
        for (name, value) in &raw.params {
            if params::BUILT_INS.contains(&name.as_str()) {
                return Err(bad(format!("params.{name}"), "is a built-in parameter".into()));
            }
            let value =
                params::from_toml(name, value).map_err(|e| bad(format!("params.{name}"), e.message().to_string()))?;
            params.set(name, value);
        }

        let mut sources = Vec::new();
        for (i, section) in raw.source.iter().enumerate() {
            let at = |key: &str| format!("source[{i}].{key}");
            let table: TableName =
                section.table.parse().map_err(|e: Error| bad(at("table"), e.message().to_string()))?;
            let location = resolve_location(&section.location, &folder)
                .map_err(|e| bad(at("location"), e.message().to_string()))?;
            let format: FormatChoice = section.format.parse().map_err(|e| bad(at("format"), e))?;
            let on_schema_change = section.on_schema_change.parse().map_err(|e| bad(at("on_schema_change"), e))?;
            let bad_records = section.bad_records.parse().map_err(|e| bad(at("bad_records"), e))?;
            let delimiter = match &section.delimiter {
                None => None,
                Some(d) => match d.as_str() {
                    "\\t" | "\t" | "tab" => Some(b'\t'),
                    d if d.len() == 1 => Some(d.as_bytes()[0]),
                    other => {
                        return Err(bad(at("delimiter"), format!("'{other}' is not a single character")));
                    }
                },
            };
            if sources.iter().any(|s: &SourceSpec| s.table == table) {
                return Err(bad(at("table"), format!("{table} is listed twice")));
            }
            sources.push(SourceSpec {
                table,
                location,
                infer: InferOptions {
                    format,
                    sample_rows: section.sample_rows.unwrap_or(DEFAULT_SAMPLE_ROWS),
                    delimiter,
                    header: section.header,
                    null_values: section.null_values.clone(),
                },
                on_schema_change,
                bad_records,
                incremental: section.incremental,
            });
        }

        let mut steps = Vec::new();
        for (i, section) in raw.step.iter().enumerate() {
            let sql_path = folder.join(&section.sql);
            let sql = std::fs::read_to_string(&sql_path)
                .map_err(|e| bad(format!("step[{i}].sql"), format!("{}: {e}", sql_path.display())))?;
            steps.push(StepSpec { display: sql_path.display().to_string(), sql });
        }

        let mut targets: Vec<TargetSpec> = Vec::new();
        for (i, section) in raw.target.iter().enumerate() {
            let at = |key: &str| format!("target[{i}].{key}");
            let table: TableName =
                section.table.parse().map_err(|e: Error| bad(at("table"), e.message().to_string()))?;
            if section.query.trim().is_empty() {
                return Err(bad(at("query"), "is empty".into()));
            }
            let location = resolve_location(&section.location, &folder)
                .map_err(|e| bad(at("location"), e.message().to_string()))?;
            let mode: WriteMode = section.mode.parse().map_err(|e| bad(at("mode"), e))?;
            let compression: ParquetCompression = section.compression.parse().map_err(|e| bad(at("compression"), e))?;
            let encryption = Encryption::parse(section.encryption.as_deref(), section.kms_key_id.as_deref())
                .map_err(|e| bad(at("encryption"), e))?;
            if encryption != Encryption::BucketDefault && location.bucket().is_none() {
                return Err(bad(at("encryption"), "server-side encryption applies to s3:// locations".into()));
            }
            let location = location.with_encryption(&encryption);
            let mut partition_by = Vec::new();
            for key in &section.partition_by {
                let normalized = crate::schema::names::normalize(key, 0);
                if partition_by.contains(&normalized) {
                    return Err(bad(at("partition_by"), format!("'{key}' is listed twice")));
                }
                partition_by.push(normalized);
            }
            if sources.iter().any(|s| s.table == table) || targets.iter().any(|t| t.table == table) {
                return Err(bad(at("table"), format!("{table} is already a source or target of this job")));
            }
            let overlapping = sources.iter().find(|s| s.location.overlaps(&location));
            if let Some(source) = overlapping.filter(|_| !section.allow_source_overlap) {
                return Err(bad(
                    at("location"),
                    format!(
                        "target {table} at {location} overlaps source {} at {}: a run would read or overwrite \
                         its own input (set allow_source_overlap = true on the target if that is intended)",
                        source.table, source.location
                    ),
                ));
            }
            if let Some(other) = targets.iter().find(|t| t.location.overlaps(&location)) {
                return Err(bad(at("location"), format!("{location} overlaps the location of target {}", other.table)));
            }
            if let Some(other) = targets.iter().find(|t| {
                t.location.bucket() == location.bucket() && t.location.bucket().is_some() && t.encryption != encryption
            }) {
                return Err(bad(
                    at("encryption"),
                    format!("target {} writes to the same bucket with other encryption", other.table),
                ));
            }
            targets.push(TargetSpec {
                table,
                query: section.query.clone(),
                location,
                partition_by,
                mode,
                compression,
                encryption,
            });
        }
        if targets.is_empty() {
            return Err(bad("target".into(), "a job needs at least one [[target]]".into()));
        }

        let schedule = match &raw.schedule {
            Some(text) => Some(text.parse::<Schedule>().map_err(|e| bad("schedule".into(), e.to_string()))?),
            None => None,
        };
        let catch_up = match raw.catch_up.as_deref() {
            None | Some("latest") => CatchUp::Latest,
            Some("all") => CatchUp::All,
            Some("none") => CatchUp::None,
            Some(other) => {
                return Err(bad("catch_up".into(), format!("unknown value '{other}' (expected all, latest or none)")));
            }
        };
        let duration = |key: &str, text: &Option<String>| -> Result<Option<Duration>> {
            text.as_deref().map(parse_duration).transpose().map_err(|e| bad(key.into(), e))
        };
        let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if max_attempts == 0 {
            return Err(bad("max_attempts".into(), "must be 1 or more".into()));
        }
        let on_failure =
            raw.on_failure.map(|o| OnFailure { command: o.command, webhook: o.webhook }).unwrap_or_default();
        if let Some(webhook) = &on_failure.webhook {
            if !(webhook.starts_with("http://") || webhook.starts_with("https://")) {
                return Err(bad("on_failure.webhook".into(), format!("'{webhook}' is not an http(s) URL")));
            }
        }
        let scheduling = Scheduling {
            schedule,
            catch_up,
            max_attempts,
            retry_delay: duration("retry_delay", &raw.retry_delay)?.unwrap_or(DEFAULT_RETRY_DELAY),
            attempt_timeout: duration("attempt_timeout", &raw.attempt_timeout)?,
            on_failure,
        };

        Ok(Job {
            name: raw.name,
            file: path.to_path_buf(),
            scheduling,
            catalog: raw.catalog,
            params,
            sources,
            steps,
            targets,
        })
    }
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
    fn each_bad_option_is_a_configuration_error_naming_it() {
        let cases = [
            (GOOD.replace("name = \"weekly\"", "name = \"Weekly\""), "name: 'Weekly' must match"),
            (
                GOOD.replace("mode = \"overwrite_partitions\"", "mode = \"upsert\""),
                "target[0].mode: unknown mode 'upsert'",
            ),
            (
                GOOD.replace("compression = \"zstd\"", "compression = \"lz4\""),
                "target[0].compression: unknown compression",
            ),
            (GOOD.replace("table = \"raw.orders\"", "table = \"orders\""), "source[0].table: table name 'orders'"),
            (GOOD.replace("q.sql", "missing.sql"), "step[0].sql:"),
            (GOOD.replace("out/weekly/", "data/orders/2026"), "/data/orders/2026 overlaps source raw.orders at /"),
            (GOOD.replace("out/weekly/", "./data/"), "target[0].location: target curated.weekly at /"),
            (GOOD.replace("partition_by", "allow_source_overlap = 1\npartition_by"), "allow_source_overlap"),
            (GOOD.replace("[[target]]", "[[target]]\nbogus = 1"), "unknown field `bogus`"),
            (GOOD.replace("region = \"eu\"", "run_id = \"x\""), "params.run_id: is a built-in"),
            (
                GOOD.replace("location = \"data/orders/\"", "location = \"data/orders/\"\nbad_records = \"skip\""),
                "source[0].bad_records",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.kind().exit_code(), 2, "{err}");
            assert!(err.message().contains(expected), "expected '{expected}' in: {err}");
        }
    }

    /// Regression (found while writing the job-file fuzz target): a duration in minutes, hours or days
    /// past u64 seconds overflowed a multiplication.
    #[test]
    fn durations_too_long_to_count_are_errors() {
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("18446744073709551615d").unwrap_err().contains("too long"));
        let err = parse(&format!("retry_delay = \"307445734561825861m\"\n{GOOD}")).unwrap_err();
        assert!(err.message().contains("retry_delay: '307445734561825861m' is too long"), "{err}");
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
}
