//! `etl scheduler DIR [--queue SQS_URL]`: the long-running scheduler of every job file in DIR,
//! or of DIR as one pipeline when its `pipeline.toml` has a schedule; and of its jobs'
//! triggers: the events of the queue, and new files in local trigger folders.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::GlobalArgs;
use crate::config::home;
use crate::error::{Error, Result};
use crate::runs::events::dispatch::Dispatcher;
use crate::runs::events::listen::Listener;
use crate::runs::events::queue::Queue;
use crate::runs::history::History;
use crate::runs::pipeline::Pipeline;
use crate::runs::pipeline::runner::{JobEvent, PipelineRunner};
use crate::runs::run::{JobRunner, RunOptions, Runner};
use crate::runs::scheduler::{Event, Scheduled, Scheduler, SystemClock, job_event, owner_id};

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// The folder of job files.
    pub jobs: PathBuf,
    /// Runs at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// An SQS queue that S3 event notifications or an EventBridge rule feed: its events run
    /// the jobs whose triggers match.
    #[arg(long, value_name = "SQS_URL")]
    pub queue: Option<String>,
}

pub async fn run(args: SchedulerArgs, global: &GlobalArgs) -> Result<()> {
    let Scheduled { jobs, pipeline, warnings } = Scheduled::load(&args.jobs)?;
    // Events run the folder's jobs as one graph, whether or not it is scheduled as one.
    let triggered = match &pipeline {
        Some(pipeline) => pipeline.jobs.iter().any(|j| !j.triggers.is_empty()),
        None => jobs.iter().any(|j| !j.triggers.is_empty()),
    };
    if args.queue.is_some() && !triggered {
        return Err(Error::config(format!("--queue: no job of {} has a [[trigger]]", args.jobs.display())));
    }
    let events = match triggered {
        true => Some(Pipeline::load(&args.jobs)?),
        false => None,
    };
    let queue = match &args.queue {
        Some(url) => Some(Queue::connect(url).await?),
        None => None,
    };
    for warning in warnings {
        eprintln!("warning: {warning}");
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
        let what = match (&event.pipeline, &event.job) {
            (Some(pipeline), Some(job)) => format!("{pipeline}/{job}"),
            (Some(pipeline), None) => format!("pipeline {pipeline}"),
            (None, job) => job.clone().unwrap_or_default(),
        };
        let date = event.logical_date.map(|d| format!(" {d}")).unwrap_or_default();
        let object = event.object.as_deref().map(|o| format!(" {o}")).unwrap_or_default();
        let message = event.message_id.as_deref().map(|m| format!(" message {m}")).unwrap_or_default();
        let _ = writeln!(
            err,
            "{} {what}{date}{object}{message} {}{attempt}{retry}{error}",
            event.time.format("%Y-%m-%dT%H:%M:%SZ"),
            event.state.as_str()
        );
    });
    let runner: Arc<dyn Runner> =
        Arc::new(JobRunner { catalog: global.catalog, home: home(), options: RunOptions::default() });
    let owner = owner_id();
    let listener = events.map(|pipeline| {
        let job_log = log.clone();
        Listener {
            dispatcher: Dispatcher {
                pipeline,
                runner: PipelineRunner {
                    runner: runner.clone(),
                    history: history.clone(),
                    owner: owner.clone(),
                    log: Arc::new(move |event: &JobEvent| job_log(&job_event(Utc::now(), None, event))),
                },
            },
            queue,
            log: log.clone(),
        }
    });
    let scheduler = Scheduler {
        jobs,
        pipeline,
        history,
        clock: Arc::new(SystemClock),
        runner,
        concurrency: args.concurrency as usize,
        owner,
        log,
    };
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        super::stop_signal().await;
        eprintln!("stopping: no new runs; waiting for the runs in progress to finish");
        on_signal.cancel();
    });
    let events = async {
        match listener {
            Some(listener) => listener.run(stop.clone()).await,
            None => Ok(()),
        }
    };
    let (scheduled, events) = tokio::join!(scheduler.run(stop.clone()), events);
    scheduled.and(events)
}
