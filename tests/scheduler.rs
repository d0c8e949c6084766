//! The scheduler under a controllable clock: weeks of schedule in seconds of test time, with
//! Tokio's paused time and a runner that fails, hangs or succeeds as each case needs; jobs on
//! their own schedules, and a pipeline fired as one graph.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use etl::catalog::Catalog;
use etl::catalog::local::LocalCatalog;
use etl::error::Result;
use etl::runs::RunStatus;
use etl::runs::history::History;
use etl::runs::job::Job;
use etl::runs::pipeline::Pipeline;
use etl::runs::report::RunReport;
use etl::runs::run::{RunRequest, Runner};
use etl::runs::scheduler::{Event, Scheduler, State, TokioClock};
use tokio_util::sync::CancellationToken;

const WEEK: Duration = Duration::from_secs(7 * 86_400);

fn job(dir: &std::path::Path, extra: &str) -> Job {
    let text = format!(
        "name = \"weekly\"\nschedule = \"cron(0 2 ? * MON *)\"\nretry_delay = \"1m\"\n{extra}\n[[target]]\ntable = \"db.t\"\nquery = \"SELECT 1\"\nlocation = \"out/\"\n"
    );
    Job::parse(&text, &dir.join("weekly.toml")).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// A runner that fails the first `failures` attempts of each date, or hangs forever, and
/// records what it ran in the history as a real run does.
pub(crate) struct FakeRunner {
    history: Arc<History>,
    home: std::path::PathBuf,
    failures: u32,
    hang: bool,
    took: Duration,
    attempts: Mutex<HashMap<NaiveDate, u32>>,
    clock: Arc<TokioClock>,
    /// The dates being run now, and whether one was ever run twice at once (a real run's
    /// lease on its date would have failed the second).
    running: Mutex<std::collections::HashSet<NaiveDate>>,
    pub(crate) overlapped: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Runner for FakeRunner {
    async fn run(&self, job: &Job, request: &RunRequest) -> Result<RunReport> {
        let logical_date = request.logical_date;
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(logical_date).or_default();
            *n += 1;
            *n
        };
        let started = etl::runs::scheduler::Clock::now(self.clock.as_ref());
        if !self.running.lock().unwrap().insert(logical_date) {
            self.overlapped.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if self.hang {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.took).await;
        self.running.lock().unwrap().remove(&logical_date);
        let failed = attempt <= self.failures;
        let mut report = RunReport::started(
            &format!("{logical_date}-{attempt}"),
            &job.name,
            logical_date,
            false,
            started.to_rfc3339(),
        );
        report.status = if failed { RunStatus::Failed } else { RunStatus::Succeeded };
        report.finished_at = Some(etl::runs::scheduler::Clock::now(self.clock.as_ref()).to_rfc3339());
        report.error = failed.then(|| format!("attempt {attempt} failed on purpose"));
        self.history.record(&report)?;
        Ok(report)
    }

    async fn catalog(&self, _: &Job) -> Result<Arc<dyn Catalog>> {
        Ok(Arc::new(LocalCatalog::open(&self.home)?))
    }
}

pub(crate) struct Setup {
    home: tempfile::TempDir,
    history: Arc<History>,
    clock: Arc<TokioClock>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Setup {
    pub(crate) fn new(start: &str) -> Setup {
        let home = tempfile::tempdir().unwrap();
        let history = Arc::new(History::open(home.path()).unwrap());
        Setup { home, history, clock: Arc::new(TokioClock::starting_at(at(start))), events: Arc::default() }
    }

    pub(crate) fn runner(&self, failures: u32, hang: bool) -> Arc<FakeRunner> {
        Arc::new(FakeRunner {
            history: self.history.clone(),
            home: self.home.path().to_path_buf(),
            failures,
            hang,
            took: Duration::from_secs(600),
            attempts: Mutex::default(),
            clock: self.clock.clone(),
            running: Mutex::default(),
            overlapped: Default::default(),
        })
    }

    /// Starts a scheduler; returns what stops it and its task.
    pub(crate) fn start(
        &self,
        job: Job,
        runner: Arc<FakeRunner>,
        owner: &str,
    ) -> (CancellationToken, tokio::task::JoinHandle<Result<()>>) {
        let events = self.events.clone();
        let scheduler = Scheduler {
            jobs: vec![job],
            pipeline: None,
            history: self.history.clone(),
            clock: self.clock.clone(),
            runner,
            concurrency: 2,
            owner: owner.to_string(),
            log: Arc::new(move |event: &Event| events.lock().unwrap().push(event.clone())),
        };
        let stop = CancellationToken::new();
        let handle = tokio::spawn(scheduler.run(stop.clone()));
        (stop, handle)
    }

    /// (logical date, state, attempt) of every event, in order.
    fn log(&self) -> Vec<(String, &'static str, Option<u32>)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.logical_date.unwrap().to_string(), e.state.as_str(), e.attempt))
            .collect()
    }

    pub(crate) fn states(&self, state: State) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.state == state)
            .map(|e| e.logical_date.unwrap().to_string())
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_that_fails_twice_then_succeeds_every_week() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new("2026-11-01T12:00:00Z"); // a Sunday
    let (stop, handle) = setup.start(job(dir.path(), ""), setup.runner(2, false), "a");
    tokio::time::sleep(WEEK * 3).await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    let week = |date: &str| {
        vec![
            (date.to_string(), "queued", None),
            (date.to_string(), "running", Some(1)),
            (date.to_string(), "retrying", Some(1)),
            (date.to_string(), "running", Some(2)),
            (date.to_string(), "retrying", Some(2)),
            (date.to_string(), "running", Some(3)),
            (date.to_string(), "succeeded", Some(3)),
        ]
    };
    let expected: Vec<_> = ["2026-11-02", "2026-11-09", "2026-11-16"].iter().flat_map(|d| week(d)).collect();
    assert_eq!(setup.log(), expected);
    // The retries waited (1 minute, then 2) after each 10-minute attempt.
    let events = setup.events.lock().unwrap();
    let running: Vec<DateTime<Utc>> = events
        .iter()
        .filter(|e| e.state == State::Running && e.logical_date.unwrap().to_string() == "2026-11-02")
        .map(|e| e.time)
        .collect();
    assert_eq!(running[0], at("2026-11-02T02:00:00Z"));
    assert!(running[1] - running[0] >= chrono::Duration::minutes(11), "{running:?}");
    assert!(running[2] - running[1] >= chrono::Duration::minutes(12), "{running:?}");
}

#[tokio::test(start_paused = true)]
async fn the_last_attempt_failing_fails_the_fire_time_and_notifies() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("notified");
    let job = job(dir.path(), &format!("max_attempts = 2\n[on_failure]\ncommand = \"cat > '{}'\"", marker.display()));
    let setup = Setup::new("2026-11-01T12:00:00Z");
    let (stop, handle) = setup.start(job, setup.runner(5, false), "a");
    tokio::time::sleep(Duration::from_secs(86_400)).await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(setup.states(State::Failed), vec!["2026-11-02"]);
    assert_eq!(setup.states(State::Running).len(), 2);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&marker).unwrap()).unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["logical_date"], "2026-11-02");
}

#[tokio::test(start_paused = true)]
async fn downtime_over_two_fire_times_catches_up_as_the_job_says() {
    for (policy, expected) in [
        ("all", vec!["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]),
        ("latest", vec!["2026-11-02", "2026-11-16", "2026-11-23"]),
        ("none", vec!["2026-11-02", "2026-11-23"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let job = job(dir.path(), &format!("catch_up = \"{policy}\""));
        let setup = Setup::new("2026-11-01T12:00:00Z");
        let (stop, handle) = setup.start(job.clone(), setup.runner(0, false), "a");
        tokio::time::sleep(Duration::from_secs(3 * 86_400)).await; // to Wednesday 4th
        stop.cancel();
        handle.await.unwrap().unwrap();
        // Down until Wednesday 18th: the 9th and 16th are missed.
        tokio::time::sleep(WEEK * 2).await;
        let (stop, handle) = setup.start(job, setup.runner(0, false), "b");
        tokio::time::sleep(WEEK).await;
        stop.cancel();
        handle.await.unwrap().unwrap();
        assert_eq!(setup.states(State::Succeeded), expected, "catch_up = {policy}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_cut_by_a_crash_is_taken_over_once_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new("2026-11-01T12:00:00Z");
    let job = job(dir.path(), "");
    let (_stop, crashed) = setup.start(job.clone(), setup.runner(0, true), "a");
    tokio::time::sleep(Duration::from_secs(15 * 3600)).await; // Monday 03:00: the run hangs
    crashed.abort(); // killed: no release, no more heartbeats
    let _ = crashed.await;
    let (stop, handle) = setup.start(job, setup.runner(0, false), "b");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(setup.states(State::Succeeded), vec!["2026-11-02"]);
    let taken_over = setup.events.lock().unwrap().iter().find(|e| e.state == State::Succeeded).unwrap().time;
    assert!(taken_over >= at("2026-11-02T03:02:00Z"), "not before the lease expired: {taken_over}");
}

#[tokio::test(start_paused = true)]
async fn two_schedulers_racing_run_each_fire_time_once() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new("2026-11-01T12:00:00Z");
    let job = job(dir.path(), "");
    let runner_a = setup.runner(0, false);
    let runner_b = setup.runner(0, false);
    let (stop_a, a) = setup.start(job.clone(), runner_a.clone(), "a");
    let (stop_b, b) = setup.start(job, runner_b.clone(), "b");
    tokio::time::sleep(WEEK * 2).await;
    stop_a.cancel();
    stop_b.cancel();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(setup.states(State::Succeeded), vec!["2026-11-02", "2026-11-09"]);
    let runs = |r: &FakeRunner| r.attempts.lock().unwrap().values().sum::<u32>();
    assert_eq!(runs(&runner_a) + runs(&runner_b), 2, "each fire time ran once, by one of them");
}

/// A pipeline of three jobs: `a` and `b`, then `c`, which reads what both write.
fn pipeline(dir: &std::path::Path) -> Pipeline {
    std::fs::write(dir.join("pipeline.toml"), "schedule = \"cron(0 2 ? * MON *)\"\n").unwrap();
    for (name, query) in [("a", "SELECT 1 AS x"), ("b", "SELECT 2 AS x"), ("c", "SELECT * FROM db.a, db.b")] {
        let text = format!(
            "name = \"{name}\"\nretry_delay = \"1m\"\n[[target]]\ntable = \"db.{name}\"\nquery = \"{query}\"\nlocation = \"out/{name}/\"\n"
        );
        std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    }
    Pipeline::load(dir).unwrap()
}

/// A runner of a pipeline's jobs: each run takes 10 minutes; `c` fails its first `failures`
/// attempts, or hangs; each run is recorded with its pipeline run, as a real run is.
struct PipelineJobs {
    history: Arc<History>,
    home: std::path::PathBuf,
    clock: Arc<TokioClock>,
    failures: u32,
    hang: bool,
    runs: Mutex<Vec<String>>,
}

#[async_trait]
impl Runner for PipelineJobs {
    async fn run(&self, job: &Job, request: &RunRequest) -> Result<RunReport> {
        let attempt = {
            let mut runs = self.runs.lock().unwrap();
            runs.push(job.name.clone());
            runs.iter().filter(|j| **j == job.name).count() as u32
        };
        if job.name == "c" && self.hang {
            std::future::pending::<()>().await;
        }
        let started = etl::runs::scheduler::Clock::now(self.clock.as_ref());
        tokio::time::sleep(Duration::from_secs(600)).await;
        let id = format!("{}-{}-{attempt}", request.logical_date, job.name);
        let mut report = RunReport::started(&id, &job.name, request.logical_date, false, started.to_rfc3339());
        let failed = job.name == "c" && attempt <= self.failures;
        report.status = if failed { RunStatus::Failed } else { RunStatus::Succeeded };
        report.error = failed.then(|| format!("attempt {attempt} failed on purpose"));
        report.started_by = request.started_by;
        report.pipeline_run_id = request.pipeline_run_id.clone();
        self.history.record(&report)?;
        Ok(report)
    }

    async fn catalog(&self, _: &Job) -> Result<Arc<dyn Catalog>> {
        Ok(Arc::new(LocalCatalog::open(&self.home)?))
    }
}

impl Setup {
    fn pipeline_jobs(&self, failures: u32, hang: bool) -> Arc<PipelineJobs> {
        Arc::new(PipelineJobs {
            history: self.history.clone(),
            home: self.home.path().to_path_buf(),
            clock: self.clock.clone(),
            failures,
            hang,
            runs: Mutex::default(),
        })
    }

    fn start_pipeline(
        &self,
        pipeline: Pipeline,
        runner: Arc<PipelineJobs>,
        owner: &str,
    ) -> (CancellationToken, tokio::task::JoinHandle<Result<()>>) {
        let events = self.events.clone();
        let scheduler = Scheduler {
            jobs: Vec::new(),
            pipeline: Some(pipeline),
            history: self.history.clone(),
            clock: self.clock.clone(),
            runner,
            concurrency: 2,
            owner: owner.to_string(),
            log: Arc::new(move |event: &Event| events.lock().unwrap().push(event.clone())),
        };
        let stop = CancellationToken::new();
        let handle = tokio::spawn(scheduler.run(stop.clone()));
        (stop, handle)
    }

    /// (job or "pipeline", state, attempt) of the events of one logical date, in order.
    fn pipeline_log(&self, date: &str) -> Vec<(String, &'static str, Option<u32>)> {
        let events = self.events.lock().unwrap();
        let of_date = events.iter().filter(|e| e.logical_date.unwrap().to_string() == date);
        of_date.map(|e| (e.job.clone().unwrap_or_else(|| "pipeline".into()), e.state.as_str(), e.attempt)).collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_fires_as_one_graph_whose_jobs_retry() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new("2026-11-01T12:00:00Z"); // a Sunday
    let jobs = setup.pipeline_jobs(1, false);
    let (stop, handle) = setup.start_pipeline(pipeline(dir.path()), jobs.clone(), "a");
    tokio::time::sleep(Duration::from_secs(86_400)).await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    let log = setup.pipeline_log("2026-11-02");
    let at = |job: &str, state: &str, attempt: Option<u32>| {
        log.iter()
            .position(|e| e.0 == job && e.1 == state && e.2 == attempt)
            .unwrap_or_else(|| panic!("{job} {state}: {log:?}"))
    };
    assert_eq!(&log[..2], [("pipeline".into(), "queued", None), ("pipeline".into(), "running", None)]);
    // a and b at once; c once both succeeded; c's failed attempt retried after its delay.
    assert!(at("a", "running", Some(1)) < at("b", "succeeded", Some(1)));
    assert!(at("b", "running", Some(1)) < at("a", "succeeded", Some(1)));
    assert!(at("c", "running", Some(1)) > at("a", "succeeded", Some(1)).max(at("b", "succeeded", Some(1))));
    assert!(at("c", "retrying", Some(1)) < at("c", "running", Some(2)));
    assert!(at("c", "succeeded", Some(2)) < at("pipeline", "succeeded", None));
    assert_eq!(*jobs.runs.lock().unwrap(), ["a", "b", "c", "c"]);
    let runs = setup.history.pipeline_runs(None).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].status, runs[0].started_by), (RunStatus::Succeeded, etl::runs::StartedBy::Schedule));
    assert_eq!(runs[0].fire_time.as_deref(), Some("2026-11-02T02:00:00Z"));
    assert_eq!(runs[0].jobs[2].earlier_run_ids, ["2026-11-02-c-1"]);
}

#[tokio::test(start_paused = true)]
async fn a_scheduler_restarted_after_a_crash_resumes_the_pipeline_run_of_its_fire() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new("2026-11-01T12:00:00Z");
    let hanging = setup.pipeline_jobs(0, true);
    let (_stop, crashed) = setup.start_pipeline(pipeline(dir.path()), hanging.clone(), "a");
    tokio::time::sleep(Duration::from_secs(15 * 3600)).await; // Monday 03:00: c hangs
    crashed.abort();
    let _ = crashed.await;
    assert_eq!(*hanging.runs.lock().unwrap(), ["a", "b", "c"]);
    let jobs = setup.pipeline_jobs(0, false);
    let (stop, handle) = setup.start_pipeline(pipeline(dir.path()), jobs.clone(), "a");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(*jobs.runs.lock().unwrap(), ["c"], "a and b succeeded for this date: not again");
    let runs = setup.history.pipeline_runs(None).unwrap();
    assert_eq!(runs.len(), 1, "one pipeline run for the fire time");
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(
        runs[0].jobs.iter().map(|e| e.run_id.clone().unwrap()).collect::<Vec<_>>(),
        ["2026-11-02-a-1", "2026-11-02-b-1", "2026-11-02-c-1"]
    );
}
