//! The run report: what `etl run --json` prints and the run history keeps.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::events::EventObject;
use super::{RunStatus, StartedBy};
use crate::catalog::DataFile;
use crate::checks::evaluate::CheckResult;
use crate::cost::billing::Estimate;
use crate::sink::TargetSpec;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub job: String,
    pub logical_date: String,
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub sources: Vec<SourceReport>,
    pub targets: Vec<TargetReport>,
    pub rejected_rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
    pub athena: AthenaReport,
    /// Every check of every target, in the job's order (none for a run that stopped before).
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    pub error: Option<String>,
    #[serde(default)]
    pub started_by: StartedBy,
    /// The pipeline run this run is a job of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_run_id: Option<String>,
    /// The object whose event started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventObject>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// What the user should know about a run that went on: empty objects skipped, a schema
    /// change logged, a clean-up that failed after the publication.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceReport {
    pub table: String,
    pub files: u64,
    pub bytes: u64,
    pub rows: u64,
    pub schema_version: u64,
    pub change: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetReport {
    pub table: String,
    pub location: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub partitions: u64,
    /// Earlier runs whose rows this run's output replaced (a rerun of the same work, or an
    /// overwrite), with how many.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<ReplacedRows>,
    /// The table's data version this run published (`etl table history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The order of the rows within each partition (empty: the query's), and why.
    #[serde(default)]
    pub sort_by: Vec<String>,
    #[serde(default)]
    pub sort_reason: String,
}

/// The rows of one earlier run that a publication replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacedRows {
    pub run_id: String,
    pub rows: u64,
}

impl ReplacedRows {
    /// The replaced files' rows, by the run that wrote them.
    pub fn by_run(files: &[DataFile]) -> Vec<ReplacedRows> {
        let mut runs: std::collections::BTreeMap<String, u64> = Default::default();
        for file in files {
            let name = file.path.rsplit('/').next().unwrap_or_default();
            let run = crate::layout::writer_of_data_file(name).unwrap_or("unknown").to_string();
            *runs.entry(run).or_default() += file.rows;
        }
        runs.into_iter().map(|(run_id, rows)| ReplacedRows { run_id, rows }).collect()
    }
}

impl TargetReport {
    /// A target a dry run planned and did not write.
    pub fn not_written(target: &TargetSpec) -> Self {
        TargetReport {
            table: target.table.to_string(),
            location: target.location.url(),
            files: 0,
            rows: 0,
            bytes: 0,
            partitions: 0,
            replaced: Vec::new(),
            version: None,
            sort_by: Vec::new(),
            sort_reason: String::new(),
        }
    }
}

/// What Athena would bill. Two different bills, named plainly: `queries_over_sources`, what
/// the job's own queries would cost had they run on Athena over the raw sources; and
/// `full_scan_of_outputs`, what one query reading every column of each target it wrote costs,
/// the line users look for when they ask what querying the output costs. `bytes_scanned`,
/// `billed_bytes` and `usd` at the top are `queries_over_sources`, as the contract has them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AthenaReport {
    pub bytes_scanned: u64,
    #[serde(default)]
    pub billed_bytes: u64,
    pub usd: f64,
    #[serde(default)]
    pub queries_over_sources: Estimate,
    #[serde(default)]
    pub full_scan_of_outputs: Estimate,
    /// One full scan of each target.
    #[serde(default)]
    pub targets: Vec<AthenaScan>,
}

impl AthenaReport {
    pub fn new(queries_over_sources: Estimate) -> Self {
        AthenaReport {
            bytes_scanned: queries_over_sources.bytes_scanned,
            billed_bytes: queries_over_sources.billed_bytes,
            usd: queries_over_sources.usd,
            queries_over_sources,
            ..AthenaReport::default()
        }
    }
}

/// One full scan of a target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AthenaScan {
    pub table: String,
    pub bytes_scanned: u64,
    pub billed_bytes: u64,
    pub usd: f64,
}

impl RunReport {
    /// The report of a run that has just started.
    pub fn started(run_id: &str, job: &str, logical_date: NaiveDate, dry_run: bool, started_at: String) -> Self {
        RunReport {
            run_id: run_id.to_string(),
            job: job.to_string(),
            logical_date: logical_date.to_string(),
            status: RunStatus::Running,
            started_at,
            finished_at: None,
            sources: Vec::new(),
            targets: Vec::new(),
            rejected_rows: 0,
            quarantine: None,
            athena: AthenaReport::default(),
            checks: Vec::new(),
            error: None,
            started_by: StartedBy::Manual,
            pipeline_run_id: None,
            event: None,
            dry_run,
            warnings: Vec::new(),
        }
    }

    pub fn duration_seconds(&self) -> Option<f64> {
        let start = chrono::DateTime::parse_from_rfc3339(&self.started_at).ok()?;
        let end = chrono::DateTime::parse_from_rfc3339(self.finished_at.as_deref()?).ok()?;
        Some((end - start).num_milliseconds() as f64 / 1000.0)
    }

    pub fn rows_written(&self) -> u64 {
        self.targets.iter().map(|t| t.rows).sum()
    }

    pub fn bytes_written(&self) -> u64 {
        self.targets.iter().map(|t| t.bytes).sum()
    }

    /// Checks that failed with severity error, and with severity warn.
    pub fn checks_failed(&self) -> (usize, usize) {
        (self.checks.iter().filter(|c| c.blocks()).count(), self.checks.iter().filter(|c| c.warns()).count())
    }
}
