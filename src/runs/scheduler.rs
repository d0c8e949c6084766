//! The scheduler: fires each job at its schedule's times, with the logical date of the fire
//! time, as EventBridge with Step Functions would, in one process.
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
//! Time comes from a [`Clock`] and waits from Tokio's timer, so tests run weeks of schedule in
//! seconds with Tokio's paused time.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::history::History;
use super::job::{CatchUp, Job};
use super::notify;
use super::report::RunReport;
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

/// Runs one attempt of a job for a logical date, recording it in the run history.
#[async_trait]
pub trait Runner: Send + Sync {
    async fn run(&self, job: &Job, logical_date: NaiveDate) -> Result<RunReport>;
}

/// A state change of a fire time, as the scheduler logs it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub time: DateTime<Utc>,
    pub job: String,
    pub logical_date: NaiveDate,
    pub fire_time: DateTime<Utc>,
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
    /// Another scheduler holds the fire time, or a run already succeeded for it.
    Skipped,
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
        }
    }
}

pub struct Scheduler {
    pub jobs: Vec<Job>,
    pub history: Arc<History>,
    pub clock: Arc<dyn Clock>,
    pub runner: Arc<dyn Runner>,
    /// Runs at once.
    pub concurrency: usize,
    /// Who holds leases: unique per scheduler.
    pub owner: String,
    pub log: Arc<dyn Fn(&Event) + Send + Sync>,
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
            for (job, fire, _) in this.history.pending_fires()? {
                let Some(job) = this.jobs.iter().find(|j| j.name == job).cloned() else { continue };
                let key = (job.name.clone(), fire);
                if held_elsewhere
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                    .is_some_and(|at| *at > tokio::time::Instant::now())
                {
                    continue;
                }
                if !in_progress.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
                    continue;
                }
                let (this, permits, in_progress, held_elsewhere, stop) =
                    (this.clone(), permits.clone(), in_progress.clone(), held_elsewhere.clone(), stop.clone());
                tasks.spawn(async move {
                    match this.handle(&job, fire, &permits, &stop).await {
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
                                this.emit(
                                    &job,
                                    fire,
                                    State::Skipped,
                                    None,
                                    None,
                                    None,
                                    Some("another scheduler is running it".into()),
                                );
                            }
                        }
                        Err(e) => this.emit(&job, fire, State::Failed, None, None, None, Some(e.message().to_string())),
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

    /// Queues the fire times due since each job's last, as its catch-up policy says.
    fn queue_due(&self) -> Result<()> {
        let now = self.clock.now();
        for job in &self.jobs {
            let Some(schedule) = &job.scheduling.schedule else { continue };
            let Some(last) = self.history.last_fire(&job.name)? else {
                // A job this store has never scheduled starts from now: nothing to catch up.
                self.history.set_last_fire(&job.name, now)?;
                continue;
            };
            let due: Vec<DateTime<Utc>> = schedule.iter_after(last).take_while(|t| *t <= now).collect();
            let Some(latest) = due.last().copied() else { continue };
            let queued: Vec<DateTime<Utc>> = match job.scheduling.catch_up {
                CatchUp::All => due,
                // The newest is not missed: it is due now. Older ones are.
                CatchUp::Latest => vec![latest],
                CatchUp::None => due
                    .into_iter()
                    .filter(|t| now - *t < chrono::Duration::from_std(POLL * 2).unwrap_or_default())
                    .collect(),
            };
            self.history.queue_fires(&job.name, &queued)?;
            for fire in &queued {
                self.emit(job, *fire, State::Queued, None, None, None, None);
            }
            self.history.set_last_fire(&job.name, latest)?;
        }
        Ok(())
    }

    fn until_next_fire(&self) -> Duration {
        let now = self.clock.now();
        self.jobs
            .iter()
            .filter_map(|j| j.scheduling.schedule.as_ref()?.next_after(now))
            .map(|t| (t - now).to_std().unwrap_or_default())
            .min()
            .unwrap_or(POLL)
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
        let run = async {
            match job.scheduling.attempt_timeout {
                Some(limit) => tokio::time::timeout(limit, self.runner.run(job, date)).await.unwrap_or_else(|_| {
                    Err(Error::runtime(format!("attempt {attempt} timed out after {}s", limit.as_secs())))
                }),
                None => self.runner.run(job, date).await,
            }
        };
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
            job: job.name.clone(),
            logical_date: fire.date_naive(),
            fire_time: fire,
            state,
            attempt,
            run_id,
            retry_in_seconds,
            error,
        });
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

/// The wait before retrying after `attempt` failed: `base` doubled per attempt, plus up to a
/// quarter of it at random so that jobs failing together do not retry together.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let delay = base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let jitter = (delay / 4).mul_f64(crate::location::retry::random_fraction());
    // Saturating: a retry delay of centuries is the job's choice, not a reason to panic.
    delay.saturating_add(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a retry delay near `Duration::MAX` overflowed when the jitter was added.
    #[test]
    fn backoff_doubles_with_jitter_and_saturates() {
        let first = backoff(Duration::from_secs(60), 1);
        assert!(first >= Duration::from_secs(60) && first < Duration::from_secs(75), "{first:?}");
        let third = backoff(Duration::from_secs(60), 3);
        assert!(third >= Duration::from_secs(240) && third < Duration::from_secs(300), "{third:?}");
        assert_eq!(backoff(Duration::from_secs(u64::MAX), 5), Duration::MAX);
    }
}
