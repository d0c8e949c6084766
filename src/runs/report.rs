//! The run report: what `etl run --json` prints and the run history keeps.

use serde::{Deserialize, Serialize};

use super::RunStatus;

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
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
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
}

/// What Athena would bill: for the job's own queries, had they run on Athena over the sources
/// (`bytes_scanned`, `usd`), and for one full scan of each target it wrote, so the saving
/// shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AthenaReport {
    pub bytes_scanned: u64,
    #[serde(default)]
    pub billed_bytes: u64,
    pub usd: f64,
    #[serde(default)]
    pub targets: Vec<AthenaScan>,
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
}
