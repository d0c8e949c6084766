//! What an event's objects start: for each object created, the jobs whose triggers match it
//! and the jobs downstream of them, as one pipeline run of the folder, for the logical date
//! of the event's time.
//!
//! Objects are handled one after another: two objects triggering one job would otherwise run
//! it twice at once for one date, and the second would find the first's lease and fail. Each
//! object is recorded with the jobs it starts before they run ([`History::claim_event_object`]),
//! so the same object, delivered again, starts none of them twice: a job whose run for it
//! succeeded, or is running elsewhere, is a `duplicate`; a pipeline run of it that failed is
//! resumed (its failed and skipped jobs run again, under the same id), which is how a
//! redelivered event is retried.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use serde::Serialize;

use super::parse::Notice;
use super::{ObjectRef, watch};
use crate::error::Result;
use crate::runs::RunStatus;
use crate::runs::history::History;
use crate::runs::pipeline::Pipeline;
use crate::runs::pipeline::report::{JobStatus, PipelineReport};
use crate::runs::pipeline::runner::{PipelineOptions, PipelineRunner};
use crate::runs::run::new_run_id;

/// What an event started: `etl trigger --json` prints it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TriggerReport {
    /// The jobs the event's objects started (those their triggers match, then those
    /// downstream), one entry per job and object.
    pub matched: Vec<Matched>,
    /// The objects that started nothing: no trigger matches them, or they were not created.
    pub ignored: Vec<String>,
    /// The tables the pipeline runs put back to their versions before them (`on_failure =
    /// "rollback"`), as `pipeline run` reports them.
    pub rolled_back: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Matched {
    pub job: String,
    /// `s3://bucket/key`, or the local file's path.
    pub object: String,
    /// The run it started; none for a job not run (a duplicate, a job skipped).
    pub run_id: Option<String>,
    /// `succeeded`, `failed`, `skipped` (an upstream job failed), `duplicate` (the object
    /// started this job before), or `pending` when the process stopped before it ran.
    pub status: &'static str,
    /// Why a job failed or did not run; null otherwise (every entry has every key, as
    /// `pipeline run`'s jobs do).
    pub reason: Option<String>,
    pub pipeline_run_id: String,
    /// A job that succeeded, whose tables the pipeline run then rolled back (another job
    /// failed): what it published is no longer there.
    pub rolled_back: bool,
    /// Whether the object's work for this job is over and went well: a queue may forget the
    /// event only then.
    #[serde(skip)]
    pub settled: bool,
}

impl TriggerReport {
    /// Whether everything the event started finished and succeeded (or had before).
    pub fn succeeded(&self) -> bool {
        self.matched.iter().all(|m| m.settled)
    }

    pub fn failed(&self) -> Vec<&Matched> {
        self.matched.iter().filter(|m| !m.settled).collect()
    }
}

/// Runs what events start in a pipeline.
pub struct Dispatcher {
    pub pipeline: Pipeline,
    pub runner: PipelineRunner,
}

impl Dispatcher {
    pub fn history(&self) -> &History {
        &self.runner.history
    }

    /// Runs what the objects of an event start, for the logical date `date` or else the
    /// event's own (its time's date, UTC; today for an event without a time).
    pub async fn dispatch(
        &self,
        notices: &[Notice],
        date: Option<NaiveDate>,
        options: &PipelineOptions,
    ) -> Result<TriggerReport> {
        let mut report = TriggerReport::default();
        for notice in notices {
            let object = identified(&notice.object);
            let roots: Vec<String> = self
                .pipeline
                .jobs
                .iter()
                .filter(|job| job.triggers.iter().any(|t| t.matches(&object)))
                .map(|job| job.name.clone())
                .collect();
            if !notice.created || roots.is_empty() {
                report.ignored.push(object.to_string());
                continue;
            }
            // Stopped before this object: its jobs are pending, so a queue keeps its message
            // (the objects handled already are duplicates when it comes again).
            if options.stop.is_cancelled() {
                report.matched.extend(roots.iter().map(|job| Matched {
                    job: job.clone(),
                    object: object.to_string(),
                    run_id: None,
                    status: "pending",
                    reason: Some("the process stopped before it ran".to_string()),
                    pipeline_run_id: String::new(),
                    rolled_back: false,
                    settled: false,
                }));
                continue;
            }
            let date = date.or(notice.time.map(|t| t.date_naive())).unwrap_or_else(|| Utc::now().date_naive());
            self.handle(&object, &roots, date, options, &mut report).await?;
        }
        Ok(report)
    }

    /// The jobs `roots` for one object: the earlier pipeline runs of those it started before,
    /// then a new one for the others.
    async fn handle(
        &self,
        object: &ObjectRef,
        roots: &[String],
        date: NaiveDate,
        options: &PipelineOptions,
        out: &mut TriggerReport,
    ) -> Result<()> {
        // Remembered by the file's real path: one file, however the event spells it (`./in/a.csv`,
        // `in//a.csv`, a link); reported as the event spells it.
        let mut identity = object.clone();
        if identity.is_local() {
            identity.key = super::trigger::real_path(std::path::Path::new(&object.key)).to_string_lossy().into_owned();
        }
        let earlier: BTreeMap<String, String> = self.history().event_object_runs(&identity)?.into_iter().collect();
        let mut by_run: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for root in roots {
            if let Some(id) = earlier.get(root) {
                by_run.entry(id).or_default().push(root);
            }
        }
        for (id, jobs) in by_run {
            self.again(object, id, &jobs, date, options, out).await?;
        }
        let new: Vec<String> = roots.iter().filter(|r| !earlier.contains_key(*r)).cloned().collect();
        if new.is_empty() {
            return Ok(());
        }
        let id = new_run_id();
        let taken = self.history().claim_event_object(&identity, &new, &id)?;
        for lost in new.iter().filter(|j| !taken.contains(j)) {
            // Another process took the object for this job between our look and our claim.
            out.matched.push(duplicate(lost, object, &id, "another process started it for this object".into(), false));
        }
        if taken.is_empty() {
            return Ok(());
        }
        let report = self.runner.run_event(&self.pipeline, &id, &taken, date, object.into(), options).await?;
        report_jobs(&report, object, &BTreeMap::new(), out);
        Ok(())
    }

    /// An object delivered again, for the jobs it started in pipeline run `id`.
    async fn again(
        &self,
        object: &ObjectRef,
        id: &str,
        jobs: &[&str],
        date: NaiveDate,
        options: &PipelineOptions,
        out: &mut TriggerReport,
    ) -> Result<()> {
        let Some(before) = self.history().pipeline_run(id)? else {
            // Claimed by a process that ended before it recorded the run: run it now. Or by
            // one that is about to record it (the same event delivered twice at once): then
            // that one runs it, and this delivery is a duplicate, as one coming a moment later.
            let roots: Vec<String> = jobs.iter().map(|j| j.to_string()).collect();
            match self.runner.run_event(&self.pipeline, id, &roots, date, object.into(), options).await {
                Ok(report) => report_jobs(&report, object, &BTreeMap::new(), out),
                Err(e) if e.kind() == crate::error::ErrorKind::Conflict => running_elsewhere(jobs, object, id, out),
                Err(e) => return Err(e),
            }
            return Ok(());
        };
        match before.status {
            RunStatus::Succeeded => {
                for job in jobs {
                    let run = before.job(job).and_then(|e| e.run_id.clone()).unwrap_or_default();
                    let why = format!("this object started it before: run {run} succeeded");
                    out.matched.push(duplicate(job, object, id, why, true));
                }
            }
            RunStatus::Running => running_elsewhere(jobs, object, id, out),
            RunStatus::Failed => {
                let succeeded: BTreeMap<String, String> = before
                    .jobs
                    .iter()
                    // A job the failed run rolled back runs again in the resume: not a duplicate.
                    .filter(|e| e.status == JobStatus::Succeeded && !e.rolled_back)
                    .filter_map(|e| Some((e.job.clone(), e.run_id.clone()?)))
                    .collect();
                let report = self.runner.resume(&self.pipeline, id, options).await?;
                report_jobs(&report, object, &succeeded, out);
            }
        }
        Ok(())
    }
}

/// The object as deduplicated: a local file without a version or ETag gets its size and
/// modification time, as the scheduler's watcher sees it, so that a file written again is
/// another object and the same file twice is one.
fn identified(object: &ObjectRef) -> ObjectRef {
    let mut object = object.clone();
    if object.is_local() && object.version().is_empty() {
        object.etag = watch::fingerprint(std::path::Path::new(&object.key));
    }
    object
}

/// The jobs of a pipeline run an object started; those in `succeeded_before` (job -> run)
/// ran for it before and are duplicates.
fn report_jobs(
    report: &PipelineReport,
    object: &ObjectRef,
    succeeded_before: &BTreeMap<String, String>,
    out: &mut TriggerReport,
) {
    for entry in &report.jobs {
        if let Some(run) = succeeded_before.get(&entry.job) {
            let why = format!("this object started it before: run {run} succeeded");
            out.matched.push(duplicate(&entry.job, object, &report.pipeline_run_id, why, true));
            continue;
        }
        out.matched.push(Matched {
            job: entry.job.clone(),
            object: object.to_string(),
            run_id: entry.run_id.clone(),
            status: entry.status.as_str(),
            reason: entry.reason.clone(),
            pipeline_run_id: report.pipeline_run_id.clone(),
            rolled_back: entry.rolled_back,
            settled: entry.status == JobStatus::Succeeded && !entry.rolled_back,
        });
    }
    for table in &report.rolled_back {
        if !out.rolled_back.contains(table) {
            out.rolled_back.push(table.clone());
        }
    }
}

/// The object's jobs, run by another process's pipeline run `id`: duplicates, not yet settled.
fn running_elsewhere(jobs: &[&str], object: &ObjectRef, id: &str, out: &mut TriggerReport) {
    for job in jobs {
        let why = format!("this object's pipeline run {id} is running it in another process");
        out.matched.push(duplicate(job, object, id, why, false));
    }
}

fn duplicate(job: &str, object: &ObjectRef, pipeline_run_id: &str, why: String, settled: bool) -> Matched {
    Matched {
        job: job.to_string(),
        object: object.to_string(),
        run_id: None,
        status: "duplicate",
        reason: Some(why),
        pipeline_run_id: pipeline_run_id.to_string(),
        rolled_back: false,
        settled,
    }
}
