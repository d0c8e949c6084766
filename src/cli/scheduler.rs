//! `etl scheduler DIR`: the long-running scheduler of every job file in DIR.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::GlobalArgs;
use crate::config::{CatalogChoice, home};
use crate::error::{Error, Result};
use crate::runs::history::History;
use crate::runs::job::Job;
use crate::runs::progress::Progress;
use crate::runs::report::RunReport;
use crate::runs::run::{RunContext, RunOptions, run as run_job};
use crate::runs::scheduler::{Event, Runner, Scheduler, SystemClock, owner_id};

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// The folder of job files.
    pub jobs: PathBuf,
    /// Runs at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// Runs jobs as `etl run` does, each with its catalog.
struct JobRunner {
    catalog: Option<CatalogChoice>,
}

#[async_trait]
impl Runner for JobRunner {
    async fn run(&self, job: &Job, logical_date: NaiveDate) -> Result<RunReport> {
        let (job, catalog) = (job.clone(), self.catalog);
        // A run is driven on a thread of its own: its future borrows across awaits in ways the
        // compiler cannot prove `Send` for every lifetime, and a run is long enough that a
        // thread per run costs nothing.
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(async move {
                let choice = CatalogChoice::resolve(catalog, job.catalog);
                let context = RunContext::open(choice, &home(), Progress::warnings_only()).await?;
                let options = RunOptions { logical_date: Some(logical_date), ..RunOptions::default() };
                Ok(run_job(&job, &options, &context).await?.report)
            })
        })
        .await
        .map_err(|e| Error::runtime(format!("internal error: the run's thread ended: {e}")))?
    }
}

pub async fn run(args: SchedulerArgs, global: &GlobalArgs) -> Result<()> {
    let jobs = Job::load_all(&args.jobs)?;
    if !jobs.iter().any(|j| j.scheduling.schedule.is_some()) {
        return Err(Error::config(format!("{}: no job has a schedule", args.jobs.display())));
    }
    let history = Arc::new(History::open(&home())?);
    let json = global.json;
    let log = Arc::new(move |event: &Event| {
        let mut err = std::io::stderr().lock();
        let mut out = std::io::stdout().lock();
        if json {
            if let Ok(line) = serde_json::to_string(event) {
                let _ = writeln!(out, "{line}");
            }
            return;
        }
        let attempt = event.attempt.map(|a| format!(" (attempt {a})")).unwrap_or_default();
        let retry = event.retry_in_seconds.map(|s| format!(", retrying in {s}s")).unwrap_or_default();
        let error = event.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        let _ = writeln!(
            err,
            "{} {} {} {}{attempt}{retry}{error}",
            event.time.format("%Y-%m-%dT%H:%M:%SZ"),
            event.job,
            event.logical_date,
            event.state.as_str()
        );
    });
    let scheduler = Scheduler {
        jobs,
        history,
        clock: Arc::new(SystemClock),
        runner: Arc::new(JobRunner { catalog: global.catalog }),
        concurrency: args.concurrency,
        owner: owner_id(),
        log,
    };
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        stop_signal().await;
        eprintln!("stopping: no new runs; waiting for the runs in progress to finish");
        on_signal.cancel();
    });
    scheduler.run(stop).await
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
