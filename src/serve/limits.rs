//! At most `--max-concurrency` queries run at once; up to `--queue` more wait for a slot, and
//! beyond that a request is refused at once with 429 and `Retry-After` (API Gateway's
//! throttling answer), rather than piling up until every caller times out. Requests that the
//! cache answers take no slot: they scan nothing.
//!
//! Queries run on a runtime of their own. DataFusion operators can compute for a long time
//! without yielding (a join emitting from memory), so on the server's runtime a heavy query
//! could hold a worker that HTTP needs, and its time limit could not even fire. On their own
//! runtime, the time limit answers 504 at once and aborts the query, which stops at its next
//! yield; its slot is held until then, so "at most N at once" stays true.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

use super::error::ApiError;

/// Seconds a refused caller is told to wait: about one query's time.
const RETRY_AFTER_SECONDS: u64 = 1;

#[derive(Debug)]
pub struct Limiter {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

impl Limiter {
    pub fn new(max_concurrency: usize, queue: usize) -> Self {
        Limiter { slots: Arc::new(Semaphore::new(max_concurrency.max(1))), waiting: AtomicUsize::new(0), queue }
    }

    /// A slot to run a query in, waiting in the queue when there is room in it.
    pub async fn slot(&self) -> std::result::Result<OwnedSemaphorePermit, ApiError> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError {
                retry_after: Some(RETRY_AFTER_SECONDS),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many queries at once: try again shortly")
            });
        }
        let slot = self.slots.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        slot.map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"))
    }
}

/// The runtime queries run on, shut down without waiting when the server ends.
#[derive(Debug)]
pub struct QueryRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl QueryRuntime {
    pub fn new(threads: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("etl-query")
            .thread_stack_size(crate::pool::THREAD_STACK_BYTES)
            .enable_all()
            .build()
            .map_err(|e| Error::runtime(format!("cannot start the query threads: {e}")))?;
        Ok(QueryRuntime { runtime: Some(runtime) })
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.as_ref().expect("the runtime lives until drop").handle()
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_queue_requests_are_refused() {
        let limiter = std::sync::Arc::new(Limiter::new(1, 1));
        let first = limiter.slot().await.unwrap();
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.slot().await.map(drop).is_ok() })
        };
        while limiter.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = limiter.slot().await.unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(RETRY_AFTER_SECONDS));
        drop(first);
        assert!(waiting.await.unwrap(), "the queued request runs once a slot is free");
    }
}
