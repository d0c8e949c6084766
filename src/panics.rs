//! Panics of a dependency, caught where a known one happens and reported as an error.
//!
//! `main`'s hook prints every panic as an internal error the moment it happens. A panic caught
//! here is an input's fault, not ours (parquet-rs 59 panics on a file whose footer claims more
//! metadata than the file holds; 60 returns an error), so the hook stays quiet for it and the
//! caller reports an error that names the input.

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    static CONTAINED: Cell<usize> = const { Cell::new(0) };
}

/// Whether the panic under way happens inside [`contain`], which reports it.
pub fn is_contained() -> bool {
    CONTAINED.with(|depth| depth.get() > 0)
}

/// `future`'s output, or the message of a panic while it was polled.
pub fn contain<F: Future>(future: F) -> Contained<F> {
    Contained { inner: Box::pin(future) }
}

pub struct Contained<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Contained<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        CONTAINED.with(|depth| depth.set(depth.get() + 1));
        let polled = catch_unwind(AssertUnwindSafe(|| self.inner.as_mut().poll(cx)));
        CONTAINED.with(|depth| depth.set(depth.get() - 1));
        match polled {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_string());
                Poll::Ready(Err(message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_its_message() {
        let outcome = contain(async { panic!("range start must not be greater than end") }).await;
        assert_eq!(outcome, Err::<(), _>("range start must not be greater than end".to_string()));
        assert!(!is_contained());
        assert_eq!(contain(async { 7 }).await, Ok(7));
    }
}
