//! CPU-bound work from async code, on rayon's pool: as many threads as cores, so work handed
//! over faster than it is done waits in the pool's queue instead of starting threads.

use std::future::Future;

use crate::error::{Error, Result};

/// The stack of the threads that plan and run queries (the runtimes' workers, the command's
/// own): DataFusion recurses over a query's expressions, and a filter of a thousand
/// conditions overflowed the 2 MiB Tokio gives a worker (the server died of one request).
/// Only what a thread touches is committed.
pub const THREAD_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Starts `work` on rayon's pool now, without blocking the async runtime; the future gives
/// its result. A panic in `work` becomes an error naming `what`, rather than taking the
/// process down.
pub fn on_rayon<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = Result<T>> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
            .map_err(|_| Error::runtime(format!("internal error: {what} panicked")));
        let _ = sender.send(result);
    });
    async move { receiver.await.map_err(|_| Error::runtime(format!("internal error: {what} was cancelled")))? }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_an_error_naming_the_work() {
        let ok = on_rayon("adding", || 2 + 2).await.unwrap();
        assert_eq!(ok, 4);
        let error = on_rayon("dividing", || -> u32 { panic!("by zero") }).await.unwrap_err();
        assert!(error.to_string().contains("internal error: dividing panicked"), "{error}");
    }
}
