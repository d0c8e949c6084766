//! The report of a pipeline run: what `etl pipeline run --json` prints and the run history
//! keeps, updated as each job starts and ends.
//!
//! Each job of the run has one entry: its status, the id of its (latest) run, and why it did
//! not succeed. Jobs are `pending` or `running` only while the pipeline run is; a finished run
//! has every job `succeeded`, `failed` or `skipped`. A resume reruns the jobs that did not
//! succeed under the same pipeline run id, keeping the ids of their earlier runs, and the jobs
//! whose publications a rollback undid (they stay `succeeded`: their runs did).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::cost::billing::Estimate;
use crate::runs::events::EventObject;
use crate::runs::report::RunReport;
use crate::runs::{RunStatus, StartedBy};
use crate::sink::rollback::Restored;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineReport {
    pub pipeline_run_id: String,
    pub pipeline: String,
    pub logical_date: String,
    /// `succeeded` when every job did; `running` while in progress, in the history.
    pub status: RunStatus,
    pub jobs: Vec<JobEntry>,
    /// Tables back at their versions before the run (`on_failure = "rollback"`).
    pub rolled_back: Vec<String>,
    /// What the rollback did, when the run rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    pub started_by: StartedBy,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The scheduler's fire time this run is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_time: Option<String>,
    /// The object whose event started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventObject>,
    pub totals: Totals,
}

/// The rollback of a failed pipeline run (`on_failure = "rollback"`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rollback {
    /// The run id of the versions it published.
    pub id: String,
    /// The tables it made new versions of, each holding the data of its version before the
    /// run (version 0: no data, for a table the run wrote first).
    pub restored: Vec<Restored>,
    /// The tables it could not restore, and why: they still hold what the run published.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<NotRestored>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotRestored {
    pub table: String,
    pub error: String,
}

/// One job of a pipeline run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobEntry {
    pub job: String,
    pub status: JobStatus,
    /// Its latest run; none for a job that did not run.
    pub run_id: Option<String>,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// Runs of it in this pipeline run before the latest (failed attempts, resumed ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_run_ids: Vec<String>,
    /// It succeeded, and the pipeline run's rollback undoes what it published: a resume runs
    /// it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Skipped => "skipped",
        }
    }

    /// Whether the job's part in this pipeline run is over.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Skipped)
    }
}

/// The sums of the pipeline run's job runs (each job's latest).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Wall time spent running the pipeline (a resume adds its own).
    pub duration_seconds: f64,
    /// Rows and bytes written to the targets.
    pub rows: u64,
    pub bytes: u64,
    pub rejected_rows: u64,
    /// What the jobs' queries would bill on Athena over their sources.
    pub athena: Estimate,
}

impl PipelineReport {
    /// A pipeline run about to start, its `jobs` pending.
    pub fn started(
        pipeline_run_id: &str,
        pipeline: &str,
        logical_date: NaiveDate,
        jobs: &[&str],
        started_by: StartedBy,
        started_at: String,
    ) -> Self {
        PipelineReport {
            pipeline_run_id: pipeline_run_id.to_string(),
            pipeline: pipeline.to_string(),
            logical_date: logical_date.to_string(),
            status: RunStatus::Running,
            jobs: jobs.iter().map(|job| JobEntry::pending(job)).collect(),
            rolled_back: Vec::new(),
            rollback: None,
            started_by,
            started_at,
            finished_at: None,
            fire_time: None,
            event: None,
            totals: Totals::default(),
        }
    }

    pub fn job(&self, job: &str) -> Option<&JobEntry> {
        self.jobs.iter().find(|e| e.job == job)
    }

    pub fn job_mut(&mut self, job: &str) -> Option<&mut JobEntry> {
        self.jobs.iter_mut().find(|e| e.job == job)
    }

    /// The status of a finished run: succeeded only if every job did, and what each published
    /// stands (no rollback undid it).
    pub fn outcome(&self) -> RunStatus {
        match self.jobs.iter().all(|e| e.status == JobStatus::Succeeded && !e.rolled_back) {
            true => RunStatus::Succeeded,
            false => RunStatus::Failed,
        }
    }

    /// Settles the jobs a run left unfinished when it ended without finishing them (its
    /// process was killed): what their own runs in the history say, from `job_runs` (the
    /// runs recorded for this pipeline run, oldest first), or failed or skipped as `why` says.
    pub fn settle_unfinished(&mut self, job_runs: &[RunReport], why: &str) {
        for entry in self.jobs.iter_mut().filter(|e| !e.status.is_final()) {
            let latest = job_runs.iter().rev().find(|r| r.job == entry.job);
            match latest {
                // A run of it that started after the entry's known run: the pipeline run
                // ended before it could record how that run went.
                Some(run) if entry.run_id.as_deref() != Some(&run.run_id) && run.status != RunStatus::Running => {
                    entry.record_run(run);
                }
                _ if entry.status == JobStatus::Running => {
                    entry.status = JobStatus::Failed;
                    entry.reason = Some(why.to_string());
                }
                _ => {
                    entry.status = JobStatus::Skipped;
                    entry.reason = Some(why.to_string());
                }
            }
        }
    }

    /// Adds up the latest runs of the jobs (`runs`, found by their ids).
    pub fn add_totals<'a>(&mut self, runs: impl IntoIterator<Item = &'a RunReport>) {
        let (mut rows, mut bytes, mut rejected, mut athena) = (0, 0, 0, Estimate::default());
        for run in runs {
            rows += run.rows_written();
            bytes += run.bytes_written();
            rejected += run.rejected_rows;
            let own = run.athena.queries_over_sources;
            athena = Estimate {
                bytes_scanned: athena.bytes_scanned + own.bytes_scanned,
                billed_bytes: athena.billed_bytes + own.billed_bytes,
                usd: athena.usd + own.usd,
            };
        }
        self.totals =
            Totals { duration_seconds: self.totals.duration_seconds, rows, bytes, rejected_rows: rejected, athena };
    }
}

impl JobEntry {
    pub fn pending(job: &str) -> Self {
        JobEntry {
            job: job.to_string(),
            status: JobStatus::Pending,
            run_id: None,
            reason: None,
            earlier_run_ids: Vec::new(),
            rolled_back: false,
        }
    }

    /// The job ran: its status, id and error are its run's.
    pub fn record_run(&mut self, run: &RunReport) {
        if let Some(earlier) = self.run_id.take()
            && earlier != run.run_id
        {
            self.earlier_run_ids.push(earlier);
        }
        self.run_id = Some(run.run_id.clone());
        self.status = match run.status {
            RunStatus::Succeeded => JobStatus::Succeeded,
            RunStatus::Failed | RunStatus::Running => JobStatus::Failed,
        };
        self.reason = run.error.clone();
    }

    /// Back to pending for a resume, keeping the id of the run it replaces.
    pub fn reset(&mut self) {
        if let Some(earlier) = self.run_id.take() {
            self.earlier_run_ids.push(earlier);
        }
        self.status = JobStatus::Pending;
        self.reason = None;
        self.rolled_back = false;
    }

    /// Whether a resume runs it: it did not succeed, or a rollback undid what it published.
    pub fn to_rerun(&self) -> bool {
        (self.status != JobStatus::Succeeded && self.status != JobStatus::Pending) || self.rolled_back
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(job: &str, id: &str, status: RunStatus) -> RunReport {
        let date = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let mut report = RunReport::started(id, job, date, false, "2026-11-02T00:00:00Z".into());
        report.status = status;
        if status == RunStatus::Failed {
            report.error = Some("boom".into());
        }
        report
    }

    #[test]
    fn the_contract_keys_with_nulls_for_what_a_job_has_not() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let report = PipelineReport::started("p1", "daily", date, &["a"], StartedBy::Manual, "T".into());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["jobs"],
            serde_json::json!([{"job": "a", "status": "pending", "run_id": null, "reason": null}])
        );
        for key in ["pipeline_run_id", "pipeline", "logical_date", "status", "rolled_back", "totals"] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
    }

    #[test]
    fn a_killed_run_is_settled_from_its_jobs_runs() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let mut report =
            PipelineReport::started("p1", "daily", date, &["a", "b", "c", "d"], StartedBy::Schedule, "T".into());
        report.jobs[0].record_run(&run("a", "r1", RunStatus::Succeeded));
        report.jobs[1].status = JobStatus::Running;
        report.jobs[2].status = JobStatus::Running;
        // b's run ended (succeeded) before the pipeline run could say so; c's run was killed.
        let runs = [
            run("a", "r1", RunStatus::Succeeded),
            run("b", "r2", RunStatus::Succeeded),
            run("c", "r3", RunStatus::Running),
        ];
        report.settle_unfinished(&runs, "killed");
        let statuses: Vec<_> = report.jobs.iter().map(|e| (e.status.as_str(), e.run_id.as_deref())).collect();
        assert_eq!(
            statuses,
            [("succeeded", Some("r1")), ("succeeded", Some("r2")), ("failed", None), ("skipped", None)]
        );
        assert_eq!(report.outcome(), RunStatus::Failed);
        report.jobs[2].reset();
        report.jobs[2].record_run(&run("c", "r4", RunStatus::Failed));
        report.jobs[2].reset();
        report.jobs[2].record_run(&run("c", "r5", RunStatus::Succeeded));
        assert_eq!(report.jobs[2].earlier_run_ids, ["r4"]);
        assert_eq!(report.jobs[2].reason, None);
    }
}
