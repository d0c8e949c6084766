//! A job's quarantine under `$ETL_HOME/quarantine/JOB/RUN_ID/`: what each run set apart (see
//! [`crate::source::rejects`] for what a run writes there), listed, and the way back in.
//!
//! The way back: each source's rejected records are also kept as files of the source's own
//! format under `RUN_ID/TABLE/`, laid out as the source's files are. Fix them there (or put
//! fixed files there), then `etl run JOB.toml --replay-quarantine RUN_ID` reads them beside the
//! source, under the source's schema, for that run only: they are not crawled, not
//! bookmarked, and a record still bad is set apart again by the new run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::history::History;
use crate::error::{Error, Result};
use crate::source::rejects::BadRecord;

/// The records one run of a job set apart.
#[derive(Debug, Serialize)]
pub struct QuarantineListing {
    pub job: String,
    /// The run listed; `None` when no run of the job set anything apart.
    pub run_id: Option<String>,
    /// Where the run's quarantine is (fix the files under `TABLE/` there to replay them).
    pub folder: Option<String>,
    pub records: Vec<QuarantinedRecord>,
}

#[derive(Debug, Serialize)]
pub struct QuarantinedRecord {
    /// The source table the record was read for.
    pub table: String,
    #[serde(flatten)]
    pub record: BadRecord,
}

/// The quarantine folder of one run of a job.
pub fn folder(home: &Path, job: &str, run_id: &str) -> PathBuf {
    home.join("quarantine").join(job).join(run_id)
}

/// A job's or run's name, which names one folder of the quarantine: no path that would lead
/// out of it (`../other`).
fn one_name<'a>(what: &str, name: &'a str) -> Result<&'a str> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(_)), None) if !name.contains(['/', '\\']) => Ok(name),
        _ => Err(Error::usage(format!("{what} '{name}' is not a name (a path is not taken here)"))),
    }
}

/// The records `run_id` set apart, or those of the job's latest run that set any apart.
pub fn list(home: &Path, history: &History, job: &str, run_id: Option<&str>) -> Result<QuarantineListing> {
    one_name("job", job)?;
    if let Some(run) = run_id {
        one_name("run", run)?;
    }
    let run_id = match run_id {
        Some(run) => {
            if !folder(home, job, run).is_dir() {
                return Err(Error::not_found(format!("run {run} of job {job} set no records apart (no quarantine)")));
            }
            Some(run.to_string())
        }
        None => history
            .list(Some(job), None)?
            .into_iter()
            .map(|r| r.run_id)
            .find(|run| std::fs::read_dir(folder(home, job, run)).is_ok_and(|mut entries| entries.next().is_some())),
    };
    let Some(run_id) = run_id else {
        return Ok(QuarantineListing { job: job.to_string(), run_id: None, folder: None, records: Vec::new() });
    };
    let run_folder = folder(home, job, &run_id);
    let mut lists: Vec<PathBuf> = std::fs::read_dir(&run_folder)
        .map_err(|e| Error::runtime(format!("reading {}: {e}", run_folder.display())))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    lists.sort();
    let mut records = Vec::new();
    for list in lists {
        let table = list.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let text =
            std::fs::read_to_string(&list).map_err(|e| Error::runtime(format!("reading {}: {e}", list.display())))?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let record: BadRecord = serde_json::from_str(line).map_err(|e| {
                Error::input(format!("{} line {}: not a quarantined record: {e}", list.display(), n + 1))
            })?;
            records.push(QuarantinedRecord { table: table.clone(), record });
        }
    }
    // Files are read at once: their records come in any order, and are listed in file order.
    records.sort_by(|a, b| (&a.table, &a.record.file, a.record.line).cmp(&(&b.table, &b.record.file, b.record.line)));
    Ok(QuarantineListing {
        job: job.to_string(),
        run_id: Some(run_id),
        folder: Some(run_folder.display().to_string()),
        records,
    })
}

/// The folder of fixed records of `table` to replay from `run_id`'s quarantine, if it has one.
pub fn replay_folder(home: &Path, job: &str, run_id: &str, table: &str) -> Option<PathBuf> {
    let folder = folder(home, job, run_id).join(table);
    folder.is_dir().then_some(folder)
}

/// Refuses a replay of a run that set nothing apart (a usage error, before the run starts).
pub fn check_replay(home: &Path, job: &str, run_id: &str) -> Result<()> {
    one_name("--replay-quarantine", run_id)?;
    if folder(home, job, run_id).is_dir() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--replay-quarantine {run_id}: run {run_id} of job {job} set no records apart (see etl quarantine show {job})"
    )))
}
