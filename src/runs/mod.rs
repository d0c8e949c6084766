//! 7. Jobs and their runs: job files, the run of a job from crawl to publication, the run
//! report and the run history, schedules and the scheduler.

pub mod history;
pub mod job;
pub mod notify;
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
