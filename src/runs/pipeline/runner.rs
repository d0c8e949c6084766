//! Running a pipeline: its jobs in dependency order, independent ones at once, each a normal
//! run of the job runner (its lease, report and history), recorded as one pipeline run.
//!
//! A job starts when every job upstream of it in this run succeeded, while fewer than the
//! concurrency run, and while no running job updates a catalog table it updates (writers of
//! disjoint partitions of one table, or two crawls of one source, would race to create or
//! version it, and one would fail with a conflict). A job whose
//! upstream failed is `skipped`, with the failed job in its reason; jobs that do not depend on
//! the failure go on. The pipeline run's report is written to the history as each job starts
//! and ends, and each job run records the pipeline run's id, so a run whose process was killed
//! can be settled from its jobs' own runs, and resumed: a resume (`--resume`, or the scheduler
//! after a crash) runs again only the jobs that did not succeed, under the same id, so no job
//! of a date that succeeded runs twice.
//!
//! Runs the scheduler starts also retry a failed job as its job file says (`max_attempts`,
//! `retry_delay`, `attempt_timeout`) and notify its `on_failure` of the final failure; runs
//! started by hand run each job once, as `etl run` does.
//!
//! With `on_failure = "rollback"`, a job's final failure (a failed error-check is one) starts
//! no more jobs: the pending ones are skipped, the running ones finish (what they publish is
//! undone too), then every table that a job run of this pipeline run published goes back to
//! the version it had before the run's first publication of it ([`undo_runs`]): one new
//! version per table, recorded as a rollback. A table the run wrote for the first time goes
//! back to version 0, no data: it stays in the catalog with its history, as it would after a
//! failed first run in Airflow or dbt, but readers see none of the failed run's rows. Crawled
//! source tables are left alone: they describe data the pipeline does not own. The jobs whose
//! publications were undone are marked so, and what their incremental sources processed is
//! forgotten, so a resume runs them again with the failed job, and reads those objects again;
//! the pipeline run is not succeeded until they have. They are marked before the first table
//! is restored, so a process killed during the rollback leaves them to be rerun. A table that
//! cannot be restored is reported with why (the run fails, exit 1) and the others are still
//! restored (a job none of whose tables went back is not marked: its output stands); a retry
//! or a later failure of the resumed run restores only what is not back yet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::report::{JobEntry, JobStatus, NotRestored, PipelineReport, Rollback};
use super::{OnFailure, Pipeline};
use crate::catalog::TableName;
use crate::error::{Error, Result};
use crate::runs::events::EventObject;
use crate::runs::history::{History, stamp};
use crate::runs::job::{Job, backoff};
use crate::runs::notify;
use crate::runs::report::RunReport;
use crate::runs::run::{RunRequest, Runner, attempt_within, new_run_id};
use crate::runs::{RunStatus, StartedBy};
use crate::sink::rollback::{Undone, undo_runs};

/// How a pipeline run goes, beyond its graph.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Jobs at once; the pipeline's `concurrency` when None.
    pub concurrency: Option<usize>,
    /// Run only these jobs (and resume only these); all when empty.
    pub only: Vec<String>,
    pub started_by: StartedBy,
    /// Retry failed jobs and notify their final failure, as the scheduler does.
    pub retries: bool,
    /// Once cancelled, no job starts; the jobs running finish, and the run stays unfinished,
    /// to be resumed (by the scheduler that owns its fire time)...
    pub stop: CancellationToken,
    /// ...unless this is set (a run started by hand, which nobody resumes on their own): then
    /// the jobs that did not start fail as interrupted, and the run ends as a failed run does,
    /// rolled back if the pipeline says so, so that readers never see half of it.
    pub stop_ends_run: bool,
}

/// A job of a pipeline run started, ended, or failed an attempt that will be retried.
#[derive(Debug, Clone)]
pub struct JobEvent {
    pub pipeline: String,
    pub pipeline_run_id: String,
    pub logical_date: String,
    /// The object whose event started the pipeline run.
    pub object: Option<String>,
    /// The job's entry as it is now (`running` while it runs or waits for a retry).
    pub entry: JobEntry,
    /// Attempts made so far, this one included (runs with retries).
    pub attempt: u32,
    /// When a failed attempt is retried: after how long.
    pub retry_in: Option<Duration>,
}

/// Runs pipelines through a job runner, recording them in a history.
pub struct PipelineRunner {
    pub runner: Arc<dyn Runner>,
    pub history: Arc<History>,
    /// Who runs pipeline runs here (this process, or a scheduler): unique to it.
    pub owner: String,
    pub log: Arc<dyn Fn(&JobEvent) + Send + Sync>,
}

/// A new owner name for a process that runs pipelines: its id and a random part.
pub fn owner_id() -> String {
    format!("pipeline-{}-{}", std::process::id(), new_run_id())
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl PipelineRunner {
    /// Runs the pipeline (or the jobs `--only` selects) for a logical date.
    pub async fn run(&self, pipeline: &Pipeline, date: NaiveDate, options: &PipelineOptions) -> Result<PipelineReport> {
        let jobs: Vec<&str> = pipeline.select(&options.only)?.iter().map(|j| j.name.as_str()).collect();
        let report = PipelineReport::started(&new_run_id(), &pipeline.name, date, &jobs, options.started_by, now());
        self.history.claim_pipeline_run(&report, &self.owner)?;
        self.execute(pipeline, report, options).await
    }

    /// Runs again the jobs of a pipeline run that did not succeed (of those `--only` selects),
    /// for its logical date, under its id.
    pub async fn resume(
        &self,
        pipeline: &Pipeline,
        pipeline_run_id: &str,
        options: &PipelineOptions,
    ) -> Result<PipelineReport> {
        let Some(report) = self.history.pipeline_run(pipeline_run_id)? else {
            return Err(Error::usage(format!(
                "--resume {pipeline_run_id}: no such pipeline run (etl runs --pipeline {} lists them)",
                pipeline.name
            )));
        };
        if report.pipeline != pipeline.name {
            return Err(Error::usage(format!(
                "--resume {pipeline_run_id}: that is a run of pipeline {}, not of {} ({})",
                report.pipeline,
                pipeline.name,
                pipeline.folder.display()
            )));
        }
        let report = self.take_over(pipeline, report, options)?;
        self.execute(pipeline, report, options).await
    }

    /// Runs the jobs an event's object triggers (`roots`) and the jobs downstream of them, for
    /// a logical date, under the pipeline run id the object's record names.
    pub async fn run_event(
        &self,
        pipeline: &Pipeline,
        pipeline_run_id: &str,
        roots: &[String],
        date: NaiveDate,
        event: EventObject,
        options: &PipelineOptions,
    ) -> Result<PipelineReport> {
        let jobs = pipeline.graph.with_downstream(roots);
        let mut report = PipelineReport::started(pipeline_run_id, &pipeline.name, date, &jobs, StartedBy::Event, now());
        report.event = Some(event);
        if !self.history.claim_pipeline_run(&report, &self.owner)? {
            return Err(Error::conflict(format!(
                "pipeline run {pipeline_run_id} of {} is being run by another process",
                pipeline.name
            )));
        }
        self.execute(pipeline, report, options).await
    }

    /// Runs the pipeline for a scheduler's fire time: resumes the fire's pipeline run if one
    /// started (a scheduler stopped or killed during it), or starts it, calling `started` once
    /// it is this runner's to run. None when another live owner is running it.
    pub async fn run_fire(
        &self,
        pipeline: &Pipeline,
        fire: DateTime<Utc>,
        options: &PipelineOptions,
        started: impl FnOnce(&PipelineReport),
    ) -> Result<Option<PipelineReport>> {
        let report = match self.history.pipeline_run_for_fire(&pipeline.name, fire)? {
            Some(report) => report,
            None => {
                let jobs: Vec<&str> = pipeline.jobs.iter().map(|j| j.name.as_str()).collect();
                let mut report = PipelineReport::started(
                    &new_run_id(),
                    &pipeline.name,
                    fire.date_naive(),
                    &jobs,
                    StartedBy::Schedule,
                    now(),
                );
                report.fire_time = Some(stamp(fire));
                report
            }
        };
        let report = match self.take_over(pipeline, report, options) {
            Err(e) if e.kind() == crate::error::ErrorKind::Conflict => return Ok(None),
            other => other?,
        };
        started(&report);
        self.execute(pipeline, report, options).await.map(Some)
    }

    /// Runs the pipeline for each date from `from` to `to` its schedule fires on (each day,
    /// without a schedule), in order, calling `each` after every date; stops at the first
    /// date that fails, since later dates may build on it.
    pub async fn backfill(
        &self,
        pipeline: &Pipeline,
        from: NaiveDate,
        to: NaiveDate,
        options: &PipelineOptions,
        mut each: impl FnMut(&PipelineReport) -> Result<()>,
    ) -> Result<Vec<PipelineReport>> {
        if from > to {
            return Err(Error::usage(format!("--from {from} is after --to {to}")));
        }
        let options = PipelineOptions { started_by: StartedBy::Backfill, ..options.clone() };
        let mut reports = Vec::new();
        for date in crate::runs::schedule::backfill_dates(pipeline.schedule.as_ref(), from, to) {
            let report = self.run(pipeline, date, &options).await?;
            each(&report)?;
            let failed = report.status != RunStatus::Succeeded;
            reports.push(report);
            if failed {
                break;
            }
        }
        Ok(reports)
    }

    /// Claims a recorded (or new) pipeline run, its jobs that did not succeed pending again.
    fn take_over(
        &self,
        pipeline: &Pipeline,
        mut report: PipelineReport,
        options: &PipelineOptions,
    ) -> Result<PipelineReport> {
        if let Some(gone) = report.jobs.iter().find(|e| pipeline.job(&e.job).is_none()) {
            return Err(Error::config(format!(
                "pipeline run {} ran job {}, which is no longer a job of {}",
                report.pipeline_run_id,
                gone.job,
                pipeline.folder.display()
            )));
        }
        let selected: Vec<&str> = pipeline.select(&options.only)?.iter().map(|j| j.name.as_str()).collect();
        for entry in report.jobs.iter_mut() {
            if entry.to_rerun() && selected.contains(&entry.job.as_str()) {
                entry.reset();
            }
        }
        if !self.history.claim_pipeline_run(&report, &self.owner)? {
            return Err(Error::conflict(format!(
                "pipeline run {} of {} is being run by another process; resume it once that one has ended",
                report.pipeline_run_id, pipeline.name
            )));
        }
        Ok(report)
    }

    /// Runs the pending jobs of a claimed pipeline run until none can run.
    async fn execute(
        &self,
        pipeline: &Pipeline,
        mut report: PipelineReport,
        options: &PipelineOptions,
    ) -> Result<PipelineReport> {
        let started = tokio::time::Instant::now();
        let date: NaiveDate = report
            .logical_date
            .parse()
            .map_err(|_| Error::runtime(format!("pipeline run {}: bad logical date", report.pipeline_run_id)))?;
        report.status = RunStatus::Running;
        report.finished_at = None;
        let concurrency = options.concurrency.unwrap_or(pipeline.concurrency).max(1);
        let mut running: JoinSet<Attempted> = JoinSet::new();
        let mut writing: BTreeMap<String, BTreeSet<TableName>> = BTreeMap::new();
        let mut failed_roots: BTreeMap<String, Vec<String>> = BTreeMap::new();
        loop {
            self.skip_blocked(pipeline, &mut report, &mut failed_roots);
            let rolling_back = pipeline.on_failure == OnFailure::Rollback && self.skip_after_failure(&mut report);
            if !options.stop.is_cancelled() && !rolling_back {
                for job in &pipeline.jobs {
                    if running.len() >= concurrency {
                        break;
                    }
                    if !self.ready(pipeline, &report, job, &writing) {
                        continue;
                    }
                    let entry = report.job_mut(&job.name).expect("a pending job has an entry");
                    entry.status = JobStatus::Running;
                    writing.insert(job.name.clone(), catalog_writes(job));
                    self.emit(&report, &job.name, 1, None);
                    // A job run says what started it: an event, or else its pipeline run.
                    let started_by = if report.event.is_some() { StartedBy::Event } else { StartedBy::Pipeline };
                    let request = RunRequest {
                        pipeline_run_id: Some(report.pipeline_run_id.clone()),
                        event: report.event.clone(),
                        ..RunRequest::new(date, started_by)
                    };
                    running.spawn(self.attempts(job.clone(), request, &report, options));
                }
            }
            self.history.record_pipeline_run(&report, &self.owner)?;
            let Some(joined) = running.join_next().await else { break };
            let attempted = joined.map_err(|e| Error::runtime(format!("internal error: a job's task ended: {e}")))?;
            writing.remove(&attempted.job);
            let entry = report.job_mut(&attempted.job).expect("a job that ran has an entry");
            for earlier in attempted.earlier {
                entry.earlier_run_ids.push(earlier);
            }
            match &attempted.result {
                Ok(run) => entry.record_run(run),
                Err(error) => {
                    entry.status = JobStatus::Failed;
                    entry.reason = Some(error.message().to_string());
                }
            }
            self.emit(&report, &attempted.job, attempted.attempt, None);
        }
        if options.stop_ends_run && options.stop.is_cancelled() {
            for entry in report.jobs.iter_mut().filter(|e| e.status == JobStatus::Pending) {
                entry.status = JobStatus::Failed;
                entry.reason = Some("not started: the pipeline run was interrupted".to_string());
            }
        }
        if report.jobs.iter().all(|e| e.status.is_final()) {
            match report.outcome() {
                RunStatus::Succeeded => {
                    report.rolled_back.clear();
                    report.rollback = None;
                }
                _ if pipeline.on_failure == OnFailure::Rollback => self.roll_back(pipeline, &mut report).await?,
                _ => {}
            }
        }
        report.totals.duration_seconds += started.elapsed().as_secs_f64();
        if report.jobs.iter().all(|e| e.status.is_final()) {
            report.status = report.outcome();
            report.finished_at = Some(now());
            let mut runs = Vec::new();
            for run_id in report.jobs.iter().filter_map(|e| e.run_id.as_deref()) {
                runs.extend(self.history.get(run_id)?);
            }
            report.add_totals(&runs);
        }
        self.history.record_pipeline_run(&report, &self.owner)?;
        Ok(report)
    }

    /// Skips the pending jobs that depend on one that failed (or was skipped for that).
    fn skip_blocked(
        &self,
        pipeline: &Pipeline,
        report: &mut PipelineReport,
        failed_roots: &mut BTreeMap<String, Vec<String>>,
    ) {
        for job in &pipeline.jobs {
            if report.job(&job.name).map(|e| e.status) != Some(JobStatus::Pending) {
                continue;
            }
            let mut roots: Vec<String> = Vec::new();
            for upstream in pipeline.graph.upstream(&job.name) {
                match report.job(upstream).map(|e| e.status) {
                    Some(JobStatus::Failed) => roots.push(upstream.to_string()),
                    Some(JobStatus::Skipped) => {
                        roots.extend(failed_roots.get(upstream).into_iter().flatten().cloned());
                    }
                    _ => {}
                }
            }
            roots.sort();
            roots.dedup();
            let blocked = pipeline
                .graph
                .upstream(&job.name)
                .iter()
                .any(|u| matches!(report.job(u).map(|e| e.status), Some(JobStatus::Failed | JobStatus::Skipped)));
            if !blocked {
                continue;
            }
            let entry = report.job_mut(&job.name).expect("checked above");
            entry.status = JobStatus::Skipped;
            entry.reason = Some(match roots.is_empty() {
                // An upstream job skipped in an earlier, killed attempt at this run.
                true => "an upstream job did not run".to_string(),
                false => format!("upstream {} failed", roots.join(", ")),
            });
            failed_roots.insert(job.name.clone(), roots);
            self.emit(report, &job.name, 0, None);
        }
    }

    /// Once a job of the run has failed, skips the pending jobs (a rollback would undo what
    /// they publish); returns whether one has.
    fn skip_after_failure(&self, report: &mut PipelineReport) -> bool {
        let Some(failed) = report.jobs.iter().find(|e| e.status == JobStatus::Failed).map(|e| e.job.clone()) else {
            return false;
        };
        let pending: Vec<String> =
            report.jobs.iter().filter(|e| e.status == JobStatus::Pending).map(|e| e.job.clone()).collect();
        for job in pending {
            let entry = report.job_mut(&job).expect("listed above");
            entry.status = JobStatus::Skipped;
            entry.reason = Some(format!("not started: {failed} failed and the pipeline rolls back"));
            self.emit(report, &job, 0, None);
        }
        true
    }

    /// Undoes what the job runs of a failed pipeline run published (see the module's doc),
    /// recording in `report` what it restored and what it could not.
    async fn roll_back(&self, pipeline: &Pipeline, report: &mut PipelineReport) -> Result<()> {
        let runs = self.history.runs_of_pipeline_run(&report.pipeline_run_id)?;
        let run_ids: BTreeSet<String> = runs.iter().map(|r| r.run_id.clone()).collect();
        let ran = |job: &Job| runs.iter().any(|r| r.job == job.name);
        // Marked before anything is restored: a kill during the rollback leaves them to rerun.
        for job in pipeline.jobs.iter().filter(|j| ran(j) && !j.targets.is_empty()) {
            if let Some(entry) = report.job_mut(&job.name).filter(|e| e.status == JobStatus::Succeeded) {
                entry.rolled_back = true;
            }
        }
        self.history.record_pipeline_run(report, &self.owner)?;
        let mut rollback = Rollback { id: new_run_id(), ..Rollback::default() };
        let mut back: BTreeSet<TableName> = BTreeSet::new();
        let mut seen: BTreeSet<TableName> = BTreeSet::new();
        for job in pipeline.jobs.iter().filter(|j| ran(j)) {
            let mut undone = false;
            let tables: Vec<&TableName> =
                job.targets.iter().map(|t| &t.table).filter(|t| seen.insert((*t).clone())).collect();
            if tables.is_empty() {
                continue;
            }
            let catalog = match self.runner.catalog(job).await {
                Ok(catalog) => catalog,
                Err(e) => {
                    rollback.failed.extend(tables.iter().map(|t| NotRestored {
                        table: t.to_string(),
                        error: format!("opening the catalog of job {}: {}", job.name, e.message()),
                    }));
                    continue;
                }
            };
            for table in tables {
                match undo_runs(catalog.as_ref(), table, &run_ids, &rollback.id, self.history.as_ref()).await {
                    Ok(Undone::Untouched) => {}
                    Ok(Undone::AlreadyBack { .. }) => {
                        back.insert(table.clone());
                        undone = true;
                    }
                    Ok(Undone::Restored(restored)) => {
                        back.insert(table.clone());
                        rollback.restored.push(restored);
                        undone = true;
                    }
                    Err(e) => {
                        rollback.failed.push(NotRestored { table: table.to_string(), error: e.message().to_string() })
                    }
                }
            }
            if undone {
                let of_job: Vec<String> = runs.iter().filter(|r| r.job == job.name).map(|r| r.run_id.clone()).collect();
                self.history.align_bookmarks(&of_job, &[])?;
            }
        }
        // A job none of whose tables went back need not run again: what it published stands
        // (a table that could not be restored is in `rollback.failed`, and a later rollback of
        // this run tries it again).
        for job in &pipeline.jobs {
            let touched = job.targets.iter().any(|t| back.contains(&t.table));
            if let Some(entry) = report.job_mut(&job.name).filter(|e| e.rolled_back && !touched) {
                entry.rolled_back = false;
            }
        }
        report.rolled_back = back.iter().map(ToString::to_string).collect();
        report.rollback = Some(rollback);
        Ok(())
    }

    /// Whether a pending job can start: every job upstream of it in this run succeeded, and no
    /// running job writes a catalog table it writes.
    fn ready(
        &self,
        pipeline: &Pipeline,
        report: &PipelineReport,
        job: &Job,
        writing: &BTreeMap<String, BTreeSet<TableName>>,
    ) -> bool {
        if report.job(&job.name).map(|e| e.status) != Some(JobStatus::Pending) {
            return false;
        }
        let upstream_done = pipeline.graph.upstream(&job.name).iter().all(|u| {
            // A job left out of this run (`--only`) is taken as done.
            report.job(u).is_none_or(|e| e.status == JobStatus::Succeeded)
        });
        let writes = catalog_writes(job);
        upstream_done && !writing.values().any(|tables| !tables.is_disjoint(&writes))
    }

    /// The attempts at one job: one, or as its job file says when `options.retries`.
    fn attempts(
        &self,
        job: Job,
        request: RunRequest,
        report: &PipelineReport,
        options: &PipelineOptions,
    ) -> impl std::future::Future<Output = Attempted> + Send + 'static {
        let runner = self.runner.clone();
        let log = self.log.clone();
        let (retries, stop) = (options.retries, options.stop.clone());
        let mut event = JobEvent {
            pipeline: report.pipeline.clone(),
            pipeline_run_id: report.pipeline_run_id.clone(),
            logical_date: report.logical_date.clone(),
            object: report.event.as_ref().map(|e| e.object.clone()),
            entry: JobEntry::pending(&job.name),
            attempt: 1,
            retry_in: None,
        };
        async move {
            let scheduling = &job.scheduling;
            let mut earlier = Vec::new();
            let mut attempt = 1;
            loop {
                if attempt > 1 {
                    event.entry = JobEntry { status: JobStatus::Running, ..JobEntry::pending(&job.name) };
                    (event.attempt, event.retry_in) = (attempt, None);
                    log(&event);
                }
                let limit = scheduling.attempt_timeout.filter(|_| retries);
                let result = attempt_within(runner.as_ref(), &job, &request, limit).await;
                let failed = result.as_ref().is_err() || result.as_ref().is_ok_and(|r| r.error.is_some());
                if !failed || !retries || attempt >= scheduling.max_attempts || stop.is_cancelled() {
                    if let (true, true, Ok(report)) = (failed, retries, &result) {
                        for failure in notify::run_failed(&scheduling.on_failure, report).await {
                            eprintln!("warning: {failure}");
                        }
                    }
                    return Attempted { job: job.name.clone(), result, earlier, attempt };
                }
                let delay = backoff(scheduling.retry_delay, attempt);
                event.entry.status = JobStatus::Running;
                event.entry.run_id = result.as_ref().ok().map(|r| r.run_id.clone());
                event.entry.reason = Some(match &result {
                    Ok(report) => report.error.clone().unwrap_or_default(),
                    Err(error) => error.message().to_string(),
                });
                (event.attempt, event.retry_in) = (attempt, Some(delay));
                log(&event);
                tokio::select! {
                    _ = stop.cancelled() => return Attempted { job: job.name.clone(), result, earlier, attempt },
                    _ = tokio::time::sleep(delay) => {}
                }
                earlier.extend(event.entry.run_id.take());
                attempt += 1;
            }
        }
    }

    fn emit(&self, report: &PipelineReport, job: &str, attempt: u32, retry_in: Option<Duration>) {
        let Some(entry) = report.job(job) else { return };
        (self.log)(&JobEvent {
            pipeline: report.pipeline.clone(),
            pipeline_run_id: report.pipeline_run_id.clone(),
            logical_date: report.logical_date.clone(),
            object: report.event.as_ref().map(|e| e.object.clone()),
            entry: entry.clone(),
            attempt,
            retry_in,
        });
    }
}

/// The catalog tables a run of the job updates: its targets, and its sources, which every run
/// crawls (two runs creating or versioning one table at once would race, and one would fail
/// with a conflict).
fn catalog_writes(job: &Job) -> BTreeSet<TableName> {
    job.targets.iter().map(|t| t.table.clone()).chain(job.sources.iter().map(|s| s.table.clone())).collect()
}

/// What the attempts at one job came to.
struct Attempted {
    job: String,
    /// The last attempt's.
    result: Result<RunReport>,
    /// Runs of the failed attempts before it.
    earlier: Vec<String>,
    attempt: u32,
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use tokio::sync::Notify;

    use super::*;
    use crate::catalog::{Catalog, DataVersion};
    use crate::runs::run::JobRunner;

    /// Real runs, with one order forced: `b` starts its run only once `c`'s has ended, so `b`
    /// is running when `c` fails.
    struct BAfterC {
        jobs: JobRunner,
        c_ended: Notify,
    }

    #[async_trait]
    impl Runner for BAfterC {
        async fn run(&self, job: &Job, request: &RunRequest) -> Result<RunReport> {
            if job.name == "b" {
                self.c_ended.notified().await;
            }
            let report = self.jobs.run(job, request).await;
            if job.name == "c" {
                self.c_ended.notify_one();
            }
            report
        }

        async fn catalog(&self, job: &Job) -> Result<Arc<dyn Catalog>> {
            self.jobs.catalog(job).await
        }
    }

    /// a -> c, b -> d; c's check fails when `c_fails`; a writes `a_rows` rows, and with
    /// `fresh` a second table, m.fresh.
    fn pipeline(dir: &std::path::Path, on_failure: &str, c_fails: bool, a_rows: usize, fresh: bool) -> Pipeline {
        let write = |name: &str, query: &str, extra: &str| {
            let text = format!(
                "name = \"{name}\"\n[[target]]\ntable = \"m.{name}\"\nquery = \"{query}\"\nlocation = \"out/{name}/\"\n{extra}"
            );
            std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
        };
        std::fs::write(dir.join("pipeline.toml"), format!("on_failure = \"{on_failure}\"\nconcurrency = 2\n")).unwrap();
        let a: Vec<String> = (1..=a_rows).map(|x| format!("SELECT {x} AS x")).collect();
        let fresh = match fresh {
            true => "[[target]]\ntable = \"m.fresh\"\nquery = \"SELECT 1 AS x\"\nlocation = \"out/fresh/\"\n",
            false => "",
        };
        write("a", &a.join(" UNION ALL "), fresh);
        write("b", "SELECT 1 AS x", "");
        let min = if c_fails { 100 } else { 1 };
        write("c", "SELECT * FROM m.a", &format!("[[target.check]]\nrow_count = {{ min = {min} }}\n"));
        write("d", "SELECT * FROM m.b", "");
        Pipeline::load(dir).unwrap()
    }

    fn runner(home: &std::path::Path) -> (PipelineRunner, Arc<dyn Runner>) {
        let jobs = JobRunner { catalog: None, home: home.to_path_buf(), options: Default::default() };
        let runner: Arc<dyn Runner> = Arc::new(BAfterC { jobs, c_ended: Notify::new() });
        let history = Arc::new(History::open(home).unwrap());
        let pipelines = PipelineRunner { runner: runner.clone(), history, owner: owner_id(), log: Arc::new(|_| {}) };
        (pipelines, runner)
    }

    /// (version, rows, rollback_of) of each data version of `table`, which job `job` writes.
    async fn versions(
        runner: &dyn Runner,
        pipeline: &Pipeline,
        job: &str,
        table: &str,
    ) -> Vec<(u64, u64, Option<u64>)> {
        let catalog = runner.catalog(pipeline.job(job).unwrap()).await.unwrap();
        let all: Vec<DataVersion> = catalog.data_versions(&table.parse().unwrap()).await.unwrap();
        all.iter().map(|v| (v.version, v.rows, v.rollback_of)).collect()
    }

    fn statuses(report: &PipelineReport) -> Vec<(&str, &str, bool)> {
        report.jobs.iter().map(|e| (e.job.as_str(), e.status.as_str(), e.rolled_back)).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_stops_the_run_and_what_the_run_published_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let (home, folder) = (dir.path().join("home"), dir.path().join("p"));
        std::fs::create_dir(&folder).unwrap();
        let date = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        let (pipelines, runner) = runner(&home);
        let runner = runner.as_ref();
        let options = PipelineOptions::default();
        let first = pipelines.run(&pipeline(&folder, "rollback", false, 1, false), date(2), &options).await.unwrap();
        assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");

        // c fails while b runs (b waits for it): d, pending, never starts; what a and b
        // published is undone, and m.fresh, which a wrote first, goes back to no data.
        let p = pipeline(&folder, "rollback", true, 2, true);
        let failed = pipelines.run(&p, date(3), &options).await.unwrap();
        assert_eq!(failed.status, RunStatus::Failed);
        assert_eq!(
            statuses(&failed),
            [("a", "succeeded", true), ("b", "succeeded", true), ("c", "failed", false), ("d", "skipped", false)]
        );
        assert_eq!(
            failed.job("d").unwrap().reason.as_deref(),
            Some("not started: c failed and the pipeline rolls back")
        );
        assert_eq!(failed.rolled_back, ["m.a", "m.b", "m.fresh"]);
        assert_eq!(versions(runner, &p, "a", "m.a").await, [(1, 1, None), (2, 2, None), (3, 1, Some(1))]);
        assert_eq!(versions(runner, &p, "a", "m.fresh").await, [(1, 1, None), (2, 0, Some(0))]);
        assert_eq!(versions(runner, &p, "b", "m.b").await, [(1, 1, None), (2, 1, None), (3, 1, Some(1))]);
        assert_eq!(versions(runner, &p, "c", "m.c").await, [(1, 1, None)], "a failed check publishes nothing");
        assert_eq!(versions(runner, &p, "d", "m.d").await, [(1, 1, None)]);
        let rollback = failed.rollback.as_ref().unwrap();
        assert!(rollback.failed.is_empty(), "{rollback:?}");
        let restored: Vec<(&str, u64)> = rollback.restored.iter().map(|r| (r.table.as_str(), r.restored)).collect();
        assert_eq!(restored, [("m.a", 1), ("m.fresh", 0), ("m.b", 1)]);
        let recorded = pipelines.history.pipeline_run(&failed.pipeline_run_id).unwrap().unwrap();
        assert_eq!((recorded.status, recorded.rolled_back), (RunStatus::Failed, failed.rolled_back.clone()));

        // Resumed once c passes: the jobs rolled back run again with it, and the one skipped.
        let p = pipeline(&folder, "rollback", false, 2, true);
        let resumed = pipelines.resume(&p, &failed.pipeline_run_id, &options).await.unwrap();
        assert_eq!(resumed.status, RunStatus::Succeeded, "{resumed:?}");
        assert!(resumed.rolled_back.is_empty() && resumed.jobs.iter().all(|e| !e.rolled_back));
        assert_eq!(resumed.job("a").unwrap().earlier_run_ids, [failed.job("a").unwrap().run_id.clone().unwrap()]);
        assert_eq!(versions(runner, &p, "a", "m.a").await.last(), Some(&(4, 2, None)));
        assert_eq!(versions(runner, &p, "a", "m.fresh").await.last(), Some(&(3, 1, None)));
        assert_eq!(versions(runner, &p, "d", "m.d").await.len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_stop_what_the_other_jobs_published_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (home, folder) = (dir.path().join("home"), dir.path().join("p"));
        std::fs::create_dir(&folder).unwrap();
        let (pipelines, runner) = runner(&home);
        let date = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let p = pipeline(&folder, "stop", true, 2, false);
        let failed = pipelines.run(&p, date, &PipelineOptions::default()).await.unwrap();
        assert_eq!(
            statuses(&failed),
            [("a", "succeeded", false), ("b", "succeeded", false), ("c", "failed", false), ("d", "succeeded", false)]
        );
        assert!(failed.rolled_back.is_empty() && failed.rollback.is_none());
        assert_eq!(versions(runner.as_ref(), &p, "a", "m.a").await, [(1, 2, None)]);
    }
}
