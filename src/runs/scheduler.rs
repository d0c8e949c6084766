//! The scheduler: fires each job at its schedule's times, with the logical date of the fire
//! time, as EventBridge with Step Functions would, in one process. A folder whose
//! `pipeline.toml` has a schedule fires as one pipeline instead: each fire time runs the graph
//! ([`super::pipeline::runner`]), downstream jobs once their upstream jobs of the same logical
//! date succeeded.
//!
//! Fire times are queued in the run store (`$ETL_HOME/runs.sqlite`) before they are run, and
//! marked done when their run succeeds or fails its last attempt, so a scheduler that stops or
//! crashes leaves its queue to the next. Running a fire time takes a lease on its job and
//! logical date: two schedulers on one `$ETL_HOME` never run the same one at once, and a
//! crashed holder's lease expires (its heartbeats stop), so it cannot keep it forever.
//!
//! After downtime, the fire times missed are caught up as the job says (`all`, `latest`,
//! `none`). A failed attempt is retried after a delay that doubles each time (with jitter), up
//! to the job's `max_attempts`, each attempt within its `attempt_timeout`. A stop signal stops
//! new attempts and waits for those running, which finish (a run is never cut half-published).
//!
//! A pipeline's fire time has one pipeline run, recorded with it: a scheduler stopped or killed
//! during it resumes it when it starts again, running only the jobs that did not succeed, so no
//! job of a date runs twice. Its jobs retry as their job files say; the fire time is done when
//! every job succeeded, failed its last attempt or was skipped for an upstream failure.
//!
//! Time comes from a [`Clock`] and waits from Tokio's timer, so tests run weeks of schedule in
//! seconds with Tokio's paused time.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::history::History;
use super::job::{CatchUp, Job, backoff};
use super::notify;
use super::pipeline::Pipeline;
use super::pipeline::report::{JobStatus, PipelineReport};
use super::pipeline::runner::{JobEvent, PipelineOptions, PipelineRunner};
use super::run::{RunRequest, Runner, attempt_within};
use super::{RunStatus, StartedBy};
use crate::error::{Error, Result};

pub use super::history::LEASE;
/// How often a scheduler looks at the queue when no fire time is due sooner.
const POLL: Duration = Duration::from_secs(30);

/// What time it is.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall time that follows Tokio's clock from a starting point: with Tokio's time paused, a
/// test moves through weeks of it at once.
pub struct TokioClock {
    start: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        TokioClock { start, started: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

/// A state change of a fire time, as the scheduler logs it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub time: DateTime<Utc>,
    /// The job; none for an event of a whole pipeline run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The pipeline, for a pipeline's fire time and the jobs it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_run_id: Option<String>,
    /// The date the runs are for; none for what a queue's message as a whole came to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_date: Option<NaiveDate>,
    /// The fire time of a schedule's runs; none for an event's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fire_time: Option<DateTime<Utc>>,
    /// The object of an event's runs (`s3://bucket/key`, or a local file's path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The SQS message an event came in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Retrying,
    Failed,
    Succeeded,
    /// Another scheduler holds the fire time, or a run already succeeded for it; or a job of
    /// a pipeline whose upstream job failed.
    Skipped,
    /// An event's object arrived (a queue's message, a file in a watched folder).
    Received,
    /// An object no trigger matches, or not a creation.
    Ignored,
    /// An object that started the job before.
    Duplicate,
    /// A queue's message whose runs all succeeded, deleted.
    Deleted,
    /// A queue's message kept for redelivery: a run failed, or it could not be read.
    Kept,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Retrying => "retrying",
            State::Failed => "failed",
            State::Succeeded => "succeeded",
            State::Skipped => "skipped",
            State::Received => "received",
            State::Ignored => "ignored",
            State::Duplicate => "duplicate",
            State::Deleted => "deleted",
            State::Kept => "kept",
        }
    }
}

pub struct Scheduler {
    /// Jobs fired each on its own schedule.
    pub jobs: Vec<Job>,
    /// A pipeline fired as one graph on its schedule.
    pub pipeline: Option<Pipeline>,
    pub history: Arc<History>,
    pub clock: Arc<dyn Clock>,
    pub runner: Arc<dyn Runner>,
    /// Runs at once.
    pub concurrency: usize,
    /// Who holds leases: unique per scheduler.
    pub owner: String,
    pub log: Arc<dyn Fn(&Event) + Send + Sync>,
}

/// What a folder schedules: the folder as one pipeline, when its `pipeline.toml` has a
/// schedule, and besides it each job that has a schedule of its own, run alone (as `etl
/// deploy`'s rules do); without one, each job that has a schedule. Jobs with triggers run on events besides
/// ([`super::events::listen`]).
pub struct Scheduled {
    pub jobs: Vec<Job>,
    pub pipeline: Option<Pipeline>,
    /// What the user should know: job schedules left aside, SQL the graph could not read.
    pub warnings: Vec<String>,
}

impl Scheduled {
    pub fn load(folder: &std::path::Path) -> Result<Scheduled> {
        let settings = folder.join(super::job::PIPELINE_FILE);
        if settings.is_file() {
            let pipeline = Pipeline::load(folder)?;
            if pipeline.schedule.is_some() {
                let jobs = pipeline.jobs.iter().filter(|j| j.scheduling.schedule.is_some()).cloned().collect();
                let warnings = pipeline.warnings.clone();
                return Ok(Scheduled { jobs, pipeline: Some(pipeline), warnings });
            }
        }
        let jobs = Job::load_all(folder)?;
        if !jobs.iter().any(|j| j.scheduling.schedule.is_some() || !j.triggers.is_empty()) {
            return Err(Error::config(format!(
                "{}: no job has a schedule or a [[trigger]] (nor a pipeline.toml)",
                folder.display()
            )));
        }
        Ok(Scheduled { jobs, pipeline: None, warnings: Vec::new() })
    }
}

/// A scheduler's name for its leases: its process and a random part.
pub fn owner_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("scheduler-{}-{:08x}", std::process::id(), hasher.finish() as u32)
}

impl Scheduler {
    /// Runs until `stop` is cancelled, then waits for the runs in progress.
    pub async fn run(self, stop: CancellationToken) -> Result<()> {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.concurrency.max(1)));
        let in_progress: Arc<Mutex<HashSet<(String, DateTime<Utc>)>>> = Arc::default();
        // Fire times another scheduler holds, and when to look at them again: looking at once
        // would spin, and would log the same skip over and over.
        let held_elsewhere: Arc<Mutex<HashMap<(String, DateTime<Utc>), tokio::time::Instant>>> = Arc::default();
        let mut tasks: JoinSet<()> = JoinSet::new();
        loop {
            this.queue_due()?;
            for (name, fire, _) in this.history.pending_fires()? {
                // A job's fire time, or else the pipeline's (None).
                let job = this.jobs.iter().find(|j| j.name == name).cloned();
                if job.is_none() && !this.pipeline.as_ref().is_some_and(|p| pipeline_key(p) == name) {
                    continue;
                }
                let key = (name, fire);
                if held_elsewhere
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                    .is_some_and(|at| *at > tokio::time::Instant::now())
                {
                    continue;
                }
                {
                    let mut running = in_progress.lock().unwrap_or_else(|e| e.into_inner());
                    // Fire times of one logical date (`catch_up = "all"` after a pause) run one
                    // after another: at once, the second would find the first's lease on the
                    // date and fail. It stays queued; the first's end wakes the loop.
                    let same_date = running.iter().any(|(n, f)| *n == key.0 && f.date_naive() == fire.date_naive());
                    if same_date || !running.insert(key.clone()) {
                        continue;
                    }
                }
                let (this, permits, in_progress, held_elsewhere, stop) =
                    (this.clone(), permits.clone(), in_progress.clone(), held_elsewhere.clone(), stop.clone());
                tasks.spawn(async move {
                    let handled = match &job {
                        Some(job) => this.handle(job, fire, &permits, &stop).await,
                        None => this.handle_pipeline(fire, &permits, &stop).await,
                    };
                    match handled {
                        Ok(Handled::Finished) => {
                            held_elsewhere.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                        }
                        Ok(Handled::HeldElsewhere) => {
                            let again = tokio::time::Instant::now() + POLL;
                            let first = held_elsewhere
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(key.clone(), again)
                                .is_none();
                            if first {
                                let why = "another scheduler is running it".to_string();
                                this.emit_outcome(job.as_ref(), fire, State::Skipped, why);
                            }
                        }
                        Err(e) => this.emit_outcome(job.as_ref(), fire, State::Failed, e.message().to_string()),
                    }
                    in_progress.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                });
            }
            let wait = this.until_next_fire().min(POLL);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    /// What fires on a schedule: each job with one, and the pipeline when it has one, by the
    /// name its fire times are queued under, with its catch-up policy.
    fn schedules(&self) -> Vec<(String, &super::schedule::Schedule, CatchUp)> {
        let jobs = self
            .jobs
            .iter()
            .filter_map(|j| Some((j.name.clone(), j.scheduling.schedule.as_ref()?, j.scheduling.catch_up)));
        let pipeline = self.pipeline.iter().filter_map(|p| Some((pipeline_key(p), p.schedule.as_ref()?, p.catch_up)));
        jobs.chain(pipeline).collect()
    }

    /// Queues the fire times due since each schedule's last, as its catch-up policy says.
    fn queue_due(&self) -> Result<()> {
        let now = self.clock.now();
        for (name, schedule, catch_up) in self.schedules() {
            let Some(last) = self.history.last_fire(&name)? else {
                // A schedule this store has never seen starts from now: nothing to catch up.
                self.history.set_last_fire(&name, now)?;
                continue;
            };
            let due: Vec<DateTime<Utc>> = schedule.iter_after(last).take_while(|t| *t <= now).collect();
            let Some(latest) = due.last().copied() else { continue };
            let queued: Vec<DateTime<Utc>> = match catch_up {
                CatchUp::All => due,
                // The newest is not missed: it is due now. Older ones are.
                CatchUp::Latest => vec![latest],
                CatchUp::None => due
                    .into_iter()
                    .filter(|t| now - *t < chrono::Duration::from_std(POLL * 2).unwrap_or_default())
                    .collect(),
            };
            self.history.queue_fires(&name, &queued)?;
            for fire in &queued {
                match self.jobs.iter().find(|j| j.name == name) {
                    Some(job) => self.emit(job, *fire, State::Queued, None, None, None, None),
                    None => self.emit_pipeline(*fire, State::Queued, None, None),
                }
            }
            self.history.set_last_fire(&name, latest)?;
        }
        Ok(())
    }

    fn until_next_fire(&self) -> Duration {
        let now = self.clock.now();
        self.schedules()
            .iter()
            .filter_map(|(_, schedule, _)| schedule.next_after(now))
            .map(|t| (t - now).to_std().unwrap_or_default())
            .min()
            .unwrap_or(POLL)
    }

    /// Runs the pipeline run of a fire time (resuming it if one started) until every job is
    /// done; leaves it queued when stopping, or to the scheduler that runs it.
    async fn handle_pipeline(
        &self,
        fire: DateTime<Utc>,
        permits: &Semaphore,
        stop: &CancellationToken,
    ) -> Result<Handled> {
        let Some(pipeline) = &self.pipeline else { return Ok(Handled::Finished) };
        if stop.is_cancelled() {
            return Ok(Handled::Finished); // stays queued for the next scheduler
        }
        let _permit = permits.acquire().await.map_err(|e| Error::runtime(e.to_string()))?;
        let (clock, log) = (self.clock.clone(), self.log.clone());
        let runner = PipelineRunner {
            runner: self.runner.clone(),
            history: self.history.clone(),
            owner: self.owner.clone(),
            log: Arc::new(move |event: &JobEvent| log(&job_event(clock.now(), Some(fire), event))),
        };
        let options = PipelineOptions {
            started_by: StartedBy::Schedule,
            retries: true,
            stop: stop.clone(),
            ..PipelineOptions::default()
        };
        let started = |report: &PipelineReport| {
            self.emit_pipeline(fire, State::Running, Some(report.pipeline_run_id.clone()), None);
        };
        let Some(report) = runner.run_fire(pipeline, fire, &options, started).await? else {
            return Ok(Handled::HeldElsewhere);
        };
        let id = Some(report.pipeline_run_id.clone());
        match report.status {
            // Stopped with jobs left: the next scheduler resumes it.
            RunStatus::Running => return Ok(Handled::Finished),
            RunStatus::Succeeded => self.emit_pipeline(fire, State::Succeeded, id, None),
            RunStatus::Failed => {
                let failed: Vec<&str> =
                    report.jobs.iter().filter(|e| e.status == JobStatus::Failed).map(|e| e.job.as_str()).collect();
                let mut detail = format!("failed: {}", failed.join(", "));
                if !report.rolled_back.is_empty() {
                    detail.push_str(&format!("; rolled back {}", report.rolled_back.join(", ")));
                }
                for failed in report.rollback.iter().flat_map(|r| &r.failed) {
                    detail.push_str(&format!("; the rollback could not restore {}: {}", failed.table, failed.error));
                }
                self.emit_pipeline(fire, State::Failed, id, Some(detail));
            }
        }
        self.history.finish_fire(&pipeline_key(pipeline), fire)?;
        Ok(Handled::Finished)
    }

    /// Runs a fire time to its end: success, or the last attempt failed (then notifies); or
    /// leaves it to the scheduler that holds it, or queued when stopping.
    async fn handle(
        &self,
        job: &Job,
        fire: DateTime<Utc>,
        permits: &Semaphore,
        stop: &CancellationToken,
    ) -> Result<Handled> {
        let date = fire.date_naive();
        let date_text = date.to_string();
        loop {
            if stop.is_cancelled() {
                return Ok(Handled::Finished); // stays queued for the next scheduler
            }
            let _permit = permits.acquire().await.map_err(|e| Error::runtime(e.to_string()))?;
            let now = self.clock.now();
            if !self.history.try_lease(&job.name, &date_text, &self.owner, now, now + lease())? {
                return Ok(Handled::HeldElsewhere);
            }
            let outcome = self.attempt(job, fire, date).await;
            self.history.release_lease(&job.name, &date_text, &self.owner)?;
            match outcome? {
                Attempt::Done => return Ok(Handled::Finished),
                Attempt::Retry(delay) => {
                    drop(_permit);
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(Handled::Finished),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One attempt, under the lease (renewed while it runs).
    async fn attempt(&self, job: &Job, fire: DateTime<Utc>, date: NaiveDate) -> Result<Attempt> {
        let date_text = date.to_string();
        if self.history.succeeded_since(&job.name, &date_text, fire)? {
            self.emit(job, fire, State::Skipped, None, None, None, Some("a run already succeeded".into()));
            self.history.finish_fire(&job.name, fire)?;
            return Ok(Attempt::Done);
        }
        let attempt = self.history.start_attempt(&job.name, fire)?;
        self.emit(job, fire, State::Running, Some(attempt), None, None, None);
        let heartbeat = async {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                let now = self.clock.now();
                if self.history.try_lease(&job.name, &date_text, &self.owner, now, now + lease()).is_err() {
                    break;
                }
            }
        };
        let request = RunRequest::new(date, StartedBy::Schedule);
        let run = attempt_within(self.runner.as_ref(), job, &request, job.scheduling.attempt_timeout);
        let result = tokio::select! {
            result = run => result,
            () = heartbeat => Err(Error::runtime("the lease heartbeat stopped")),
        };
        match result {
            Ok(report) if report.error.is_none() => {
                self.emit(job, fire, State::Succeeded, Some(attempt), Some(report.run_id.clone()), None, None);
                self.history.finish_fire(&job.name, fire)?;
                Ok(Attempt::Done)
            }
            outcome => {
                let (run_id, error, report) = match outcome {
                    Ok(report) => (Some(report.run_id.clone()), report.error.clone().unwrap_or_default(), Some(report)),
                    Err(e) => (None, e.message().to_string(), None),
                };
                if attempt < job.scheduling.max_attempts {
                    let delay = backoff(job.scheduling.retry_delay, attempt);
                    self.emit(job, fire, State::Retrying, Some(attempt), run_id, Some(delay.as_secs()), Some(error));
                    return Ok(Attempt::Retry(delay));
                }
                self.emit(job, fire, State::Failed, Some(attempt), run_id, None, Some(error));
                self.history.finish_fire(&job.name, fire)?;
                if let Some(report) = report {
                    for failure in notify::run_failed(&job.scheduling.on_failure, &report).await {
                        eprintln!("warning: {failure}");
                    }
                }
                Ok(Attempt::Done)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        job: &Job,
        fire: DateTime<Utc>,
        state: State,
        attempt: Option<u32>,
        run_id: Option<String>,
        retry_in_seconds: Option<u64>,
        error: Option<String>,
    ) {
        (self.log)(&Event {
            time: self.clock.now(),
            job: Some(job.name.clone()),
            pipeline: None,
            pipeline_run_id: None,
            logical_date: Some(fire.date_naive()),
            fire_time: Some(fire),
            object: None,
            message_id: None,
            state,
            attempt,
            run_id,
            retry_in_seconds,
            error,
        });
    }

    /// How a fire time of a job (or, with none, of the pipeline) ended when it did not run.
    fn emit_outcome(&self, job: Option<&Job>, fire: DateTime<Utc>, state: State, why: String) {
        match job {
            Some(job) => self.emit(job, fire, state, None, None, None, Some(why)),
            None => self.emit_pipeline(fire, state, None, Some(why)),
        }
    }

    /// An event of the pipeline's fire time as a whole.
    fn emit_pipeline(&self, fire: DateTime<Utc>, state: State, pipeline_run_id: Option<String>, error: Option<String>) {
        let Some(pipeline) = &self.pipeline else { return };
        (self.log)(&Event {
            time: self.clock.now(),
            job: None,
            pipeline: Some(pipeline.name.clone()),
            pipeline_run_id,
            logical_date: Some(fire.date_naive()),
            fire_time: Some(fire),
            object: None,
            message_id: None,
            state,
            attempt: None,
            run_id: None,
            retry_in_seconds: None,
            error,
        });
    }
}

/// The name a pipeline's fire times are queued under (job names cannot hold a colon).
fn pipeline_key(pipeline: &Pipeline) -> String {
    format!("pipeline:{}", pipeline.name)
}

/// A job of a pipeline run changed state: of a fire time, or of an event's object.
pub(crate) fn job_event(time: DateTime<Utc>, fire: Option<DateTime<Utc>>, event: &JobEvent) -> Event {
    let entry = &event.entry;
    let state = match (entry.status, event.retry_in) {
        (_, Some(_)) => State::Retrying,
        (JobStatus::Pending, None) => State::Queued,
        (JobStatus::Running, None) => State::Running,
        (JobStatus::Succeeded, None) => State::Succeeded,
        (JobStatus::Failed, None) => State::Failed,
        (JobStatus::Skipped, None) => State::Skipped,
    };
    Event {
        time,
        job: Some(entry.job.clone()),
        pipeline: Some(event.pipeline.clone()),
        pipeline_run_id: Some(event.pipeline_run_id.clone()),
        logical_date: event.logical_date.parse().ok(),
        fire_time: fire,
        object: event.object.clone(),
        message_id: None,
        state,
        attempt: (event.attempt > 0).then_some(event.attempt),
        run_id: entry.run_id.clone(),
        retry_in_seconds: event.retry_in.map(|d| d.as_secs()),
        error: entry.reason.clone(),
    }
}

enum Handled {
    Finished,
    HeldElsewhere,
}

enum Attempt {
    Done,
    Retry(Duration),
}

fn lease() -> chrono::Duration {
    chrono::Duration::from_std(LEASE).expect("a short lease")
}
