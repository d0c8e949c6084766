//! 8. Jobs and their runs: job files, the run of a job from crawl to publication, the run
//! report and the run history, pipelines (folders of jobs run as one graph), schedules, events
//! and the scheduler.

pub mod advise;
mod audit;
pub mod compact;
pub mod events;
pub mod history;
pub mod job;
pub mod notify;
pub mod pipeline;
pub mod progress;
pub mod quarantine;
pub mod report;
pub mod run;
pub mod schedule;
pub mod scheduler;

use serde::{Deserialize, Serialize};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "running" => Ok(RunStatus::Running),
            "succeeded" => Ok(RunStatus::Succeeded),
            "failed" => Ok(RunStatus::Failed),
            other => Err(format!("unknown run status '{other}' (expected running, succeeded or failed)")),
        }
    }
}

/// What started a run, as the history keeps it for every run and every pipeline run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartedBy {
    /// `etl run` or `etl pipeline run` for one date (and reports written before this was kept).
    #[default]
    Manual,
    /// A date of `--from D1 --to D2`.
    Backfill,
    /// The scheduler, at a fire time.
    Schedule,
    /// An object arriving (`etl trigger`, the scheduler's queue or folders); the report's
    /// `event` names it.
    Event,
    /// A pipeline run, whose own record says what started it (a job run only).
    Pipeline,
}

impl StartedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            StartedBy::Manual => "manual",
            StartedBy::Backfill => "backfill",
            StartedBy::Schedule => "schedule",
            StartedBy::Event => "event",
            StartedBy::Pipeline => "pipeline",
        }
    }
}
