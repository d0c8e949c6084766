//! The run history under `$ETL_HOME`: one row per run, with its report, in SQLite (durable,
//! shared safely by concurrent runs).
//!
//! A run records itself as `running` with its process id when it starts and its report when it
//! ends. A run whose process is gone while still `running` (killed, machine recycled) is shown
//! as `failed`, so neither users nor the staging clean-up wait on it forever.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::RunStatus;
use super::report::RunReport;
use crate::error::{Result, ResultExt};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, started_at);
";

const KILLED: &str = "the run's process ended before the run finished (killed or crashed); nothing was published";

#[derive(Debug)]
pub struct History {
    connection: Mutex<Connection>,
}

impl History {
    pub fn open(home: &Path) -> Result<Self> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = home.join("runs.sqlite");
        let connection = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        connection.busy_timeout(std::time::Duration::from_secs(60))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(SCHEMA)?;
        Ok(History { connection: Mutex::new(connection) })
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        work(&connection)
    }

    /// Records a run (new or finished); the report's status is the run's.
    pub fn record(&self, report: &RunReport) -> Result<()> {
        let text = serde_json::to_string(report)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (run_id, job, logical_date, status, started_at, pid, host, report)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run_id) DO UPDATE SET status = ?4, report = ?8",
                params![
                    report.run_id,
                    report.job,
                    report.logical_date,
                    report.status.as_str(),
                    report.started_at,
                    std::process::id(),
                    host(),
                    text
                ],
            )?;
            Ok(())
        })
    }

    /// Runs, newest first, optionally of one job and one status.
    pub fn list(&self, job: Option<&str>, status: Option<RunStatus>) -> Result<Vec<RunReport>> {
        self.mark_dead_runs()?;
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT report FROM runs WHERE (?1 IS NULL OR job = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY started_at DESC, run_id DESC",
            )?;
            let reports = statement
                .query_map(params![job, status.map(RunStatus::as_str)], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(reports.iter().filter_map(|text| serde_json::from_str(text).ok()).collect())
        })
    }

    /// Whether a run may still be writing: recorded as running by a live process.
    pub fn is_live(&self, run_id: &str) -> bool {
        let row: Option<(String, u32, String)> = self
            .with(|c| {
                Ok(c.query_row("SELECT status, pid, host FROM runs WHERE run_id = ?1", [run_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?)
            })
            .unwrap_or(None);
        match row {
            Some((status, pid, run_host)) => status == "running" && (run_host != host() || process_alive(pid)),
            // A run this history does not know may belong to another $ETL_HOME writing to the
            // same place: live while it could still be running, by the start time in its id.
            None => started_at(run_id)
                .is_none_or(|started| Utc::now() - started < chrono::Duration::hours(UNKNOWN_RUN_HOURS)),
        }
    }

    fn mark_dead_runs(&self) -> Result<()> {
        let running: Vec<(String, u32, String)> = self.with(|c| {
            let mut statement = c.prepare("SELECT report, pid, host FROM runs WHERE status = 'running'")?;
            let rows = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        for (text, pid, run_host) in running {
            if run_host != host() || process_alive(pid) {
                continue;
            }
            if let Ok(mut report) = serde_json::from_str::<RunReport>(&text) {
                report.status = RunStatus::Failed;
                report.error = Some(KILLED.to_string());
                self.record(&report)?;
            }
        }
        Ok(())
    }
}

/// How long a run that this history does not know may still be writing.
const UNKNOWN_RUN_HOURS: i64 = 24;

/// The start time a run id begins with (`20261130T020000Z-…`).
fn started_at(run_id: &str) -> Option<DateTime<Utc>> {
    let stamp = run_id.get(..16)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok().map(|t| t.and_utc())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}
