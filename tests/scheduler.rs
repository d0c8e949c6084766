//! The scheduler under a controllable clock: weeks of schedule in seconds of test time, with
//! Tokio's paused time and a runner that fails, hangs or succeeds as each case needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use etl::error::Result;
use etl::runs::RunStatus;
use etl::runs::history::History;
use etl::runs::job::Job;
use etl::runs::report::RunReport;
use etl::runs::scheduler::{Event, Runner, Scheduler, State, TokioClock};
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
struct FakeRunner {
    history: Arc<History>,
    failures: u32,
    hang: bool,
    took: Duration,
    attempts: Mutex<HashMap<NaiveDate, u32>>,
    clock: Arc<TokioClock>,
}

#[async_trait]
impl Runner for FakeRunner {
    async fn run(&self, job: &Job, logical_date: NaiveDate) -> Result<RunReport> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(logical_date).or_default();
            *n += 1;
            *n
        };
        let started = etl::runs::scheduler::Clock::now(self.clock.as_ref());
        if self.hang {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.took).await;
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
}

struct Setup {
    _home: tempfile::TempDir,
    history: Arc<History>,
    clock: Arc<TokioClock>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Setup {
    fn new(start: &str) -> Setup {
        let home = tempfile::tempdir().unwrap();
        let history = Arc::new(History::open(home.path()).unwrap());
        Setup { _home: home, history, clock: Arc::new(TokioClock::starting_at(at(start))), events: Arc::default() }
    }

    fn runner(&self, failures: u32, hang: bool) -> Arc<FakeRunner> {
        Arc::new(FakeRunner {
            history: self.history.clone(),
            failures,
            hang,
            took: Duration::from_secs(600),
            attempts: Mutex::default(),
            clock: self.clock.clone(),
        })
    }

    /// Starts a scheduler; returns what stops it and its task.
    fn start(
        &self,
        job: Job,
        runner: Arc<FakeRunner>,
        owner: &str,
    ) -> (CancellationToken, tokio::task::JoinHandle<Result<()>>) {
        let events = self.events.clone();
        let scheduler = Scheduler {
            jobs: vec![job],
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
        self.events.lock().unwrap().iter().map(|e| (e.logical_date.to_string(), e.state.as_str(), e.attempt)).collect()
    }

    fn states(&self, state: State) -> Vec<String> {
        self.events.lock().unwrap().iter().filter(|e| e.state == state).map(|e| e.logical_date.to_string()).collect()
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
        .filter(|e| e.state == State::Running && e.logical_date.to_string() == "2026-11-02")
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
