//! The scheduler's side of events: messages from an SQS queue ([`super::queue`]) and files
//! arriving in local trigger folders ([`super::watch`]), each handed to the dispatcher, which
//! runs one object at a time whatever its source.
//!
//! The queue and the folders are read by two loops at once, not one `select!`: a receive
//! dropped half-way (because a listing was due) would hide a message that SQS had already
//! handed over until its visibility timeout ended, and count a receive towards its
//! dead-lettering. Runs started by the queue do not retry in-process: the queue's redelivery
//! is their retry, bounded by its redrive policy. Runs started by a local file have no queue
//! behind them, so they retry as their job files say, as scheduled runs do.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::dispatch::{Dispatcher, TriggerReport};
use super::parse::{self, Notice};
use super::queue::{Message, Queue};
use super::trigger::Watched;
use super::watch::{POLL, Watcher};
use crate::error::Result;
use crate::runs::pipeline::runner::PipelineOptions;
use crate::runs::scheduler::{Event, State};

pub struct Listener {
    pub dispatcher: Dispatcher,
    pub queue: Option<Queue>,
    pub log: Arc<dyn Fn(&Event) + Send + Sync>,
}

impl Listener {
    /// The local folders the jobs' triggers watch.
    pub fn folders(&self) -> Vec<PathBuf> {
        let triggers = self.dispatcher.pipeline.jobs.iter().flat_map(|j| &j.triggers);
        let mut folders: Vec<PathBuf> = triggers
            .filter_map(|t| match &t.watched {
                Watched::Local(folder) => Some(folder.clone()),
                Watched::S3 { .. } => None,
            })
            .collect();
        folders.sort();
        folders.dedup();
        folders
    }

    /// Listens until `stop` is cancelled; the runs in progress then finish, and a message
    /// whose runs did not all finish is left for redelivery.
    pub async fn run(self, stop: CancellationToken) -> Result<()> {
        let turn = Mutex::new(());
        let folders = self.folders();
        let queue = async {
            if let Some(queue) = &self.queue {
                self.read_queue(queue, &turn, &stop).await;
            }
        };
        let watch = async {
            if !folders.is_empty() {
                self.watch(Watcher::new(folders.clone()), &turn, &stop).await;
            }
        };
        tokio::join!(queue, watch);
        Ok(())
    }

    async fn read_queue(&self, queue: &Queue, turn: &Mutex<()>, stop: &CancellationToken) {
        let options = PipelineOptions { stop: stop.clone(), ..PipelineOptions::default() };
        loop {
            // A receive is never dropped half-way, not even to stop: SQS hands the next message
            // to an abandoned long poll, hiding it from every consumer for its visibility
            // timeout and counting a receive towards the dead-letter queue. A stop waits for
            // the poll to end and gives back what it brought.
            let received = queue.receive().await;
            if stop.is_cancelled() {
                if let Ok(Some(message)) = &received {
                    let why = match queue.release(message).await {
                        Ok(()) => "given back to the queue: the scheduler is stopping".to_string(),
                        Err(e) => e.message().to_string(),
                    };
                    self.emit(State::Kept, None, Some(message), Some(why));
                }
                return;
            }
            let message = match received {
                Ok(Some(message)) => message,
                Ok(None) => continue,
                Err(e) => {
                    self.emit(State::Failed, None, None, Some(e.message().to_string()));
                    // The SDK retried already; wait before asking a queue that keeps failing.
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(queue.visibility.max(POLL)) => continue,
                    }
                }
            };
            self.emit(State::Received, None, Some(&message), None);
            let notices = match parse::parse(&message.body) {
                Ok(notices) => notices,
                Err(why) => {
                    let why = format!("not an S3 event ({why}); left for redelivery, and the dead-letter queue");
                    self.emit(State::Kept, None, Some(&message), Some(why));
                    continue;
                }
            };
            let _turn = turn.lock().await;
            let heartbeat = async {
                let failure = queue.keep_hidden(&message).await;
                self.emit(State::Failed, None, Some(&message), Some(failure.message().to_string()));
                std::future::pending::<()>().await
            };
            let outcome = tokio::select! {
                outcome = self.dispatcher.dispatch(&notices, None, &options) => outcome,
                () = heartbeat => unreachable!("the heartbeat never ends"),
            };
            self.settle(queue, &message, outcome).await;
        }
    }

    /// Deletes a message whose runs all succeeded; leaves the others, saying why.
    async fn settle(&self, queue: &Queue, message: &Message, outcome: Result<TriggerReport>) {
        let report = match outcome {
            Ok(report) => report,
            Err(e) => {
                self.emit(State::Kept, None, Some(message), Some(e.message().to_string()));
                return;
            }
        };
        self.emit_report(&report, Some(message));
        if !report.succeeded() {
            let failed: Vec<String> = report.failed().iter().map(|m| format!("{} {}", m.job, m.status)).collect();
            let why = format!("left for redelivery: {}", failed.join(", "));
            self.emit(State::Kept, None, Some(message), Some(why));
            return;
        }
        match queue.delete(message).await {
            Ok(()) => self.emit(State::Deleted, None, Some(message), None),
            Err(e) => self.emit(State::Failed, None, Some(message), Some(e.message().to_string())),
        }
    }

    async fn watch(&self, mut watcher: Watcher, turn: &Mutex<()>, stop: &CancellationToken) {
        let options = PipelineOptions { stop: stop.clone(), retries: true, ..PipelineOptions::default() };
        let mut ticks = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            for object in watcher.look() {
                self.emit(State::Received, Some(object.to_string()), None, None);
                let notice = Notice { object, created: true, time: Some(Utc::now()) };
                let _turn = turn.lock().await;
                match self.dispatcher.dispatch(std::slice::from_ref(&notice), None, &options).await {
                    Ok(report) => self.emit_report(&report, None),
                    Err(e) => {
                        self.emit(State::Failed, Some(notice.object.to_string()), None, Some(e.message().to_string()))
                    }
                }
            }
        }
    }

    /// What the runner's own events do not say: duplicates and ignored objects.
    fn emit_report(&self, report: &TriggerReport, message: Option<&Message>) {
        for object in &report.ignored {
            self.emit(State::Ignored, Some(object.clone()), message, Some("no trigger matches it".into()));
        }
        for duplicate in report.matched.iter().filter(|m| m.status == "duplicate") {
            (self.log)(&Event {
                time: Utc::now(),
                job: Some(duplicate.job.clone()),
                pipeline: Some(self.dispatcher.pipeline.name.clone()),
                pipeline_run_id: Some(duplicate.pipeline_run_id.clone()),
                logical_date: None,
                fire_time: None,
                object: Some(duplicate.object.clone()),
                message_id: message.map(|m| m.id.clone()),
                state: State::Duplicate,
                attempt: None,
                run_id: None,
                retry_in_seconds: None,
                error: duplicate.reason.clone(),
            });
        }
    }

    fn emit(&self, state: State, object: Option<String>, message: Option<&Message>, error: Option<String>) {
        (self.log)(&Event {
            time: Utc::now(),
            job: None,
            pipeline: Some(self.dispatcher.pipeline.name.clone()),
            pipeline_run_id: None,
            logical_date: None,
            fire_time: None,
            object,
            message_id: message.map(|m| m.id.clone()),
            state,
            attempt: None,
            run_id: None,
            retry_in_seconds: None,
            error,
        });
    }
}
