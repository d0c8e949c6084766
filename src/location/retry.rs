//! The retry budget of every request to S3, Glue and Athena: how many attempts, how long in
//! all, how long between attempts. One budget, set here, feeds the AWS SDK's standard retry
//! (Glue, Athena), `object_store`'s retry (S3), and the retries we add on top of `object_store`.
//!
//! Why a layer of our own: `object_store` retries 5xx, throttling, and dropped connections of
//! requests it deems idempotent, and resumes a GET whose body ends early; it does not retry a
//! dropped connection of a POST (starting a multipart upload, a bulk delete) nor a listing whose
//! response body ends early. [`retrying`] retries those transport failures, with the same
//! deadline, and names the attempts spent when it gives up.
//!
//! It deliberately does not retry what a retry cannot fix (not found, precondition, permission,
//! a 4xx answer) nor a 5xx answer `object_store` already retried until its budget ran out.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::config::{ETL_RETRY_DEADLINE_SECS, ETL_RETRY_MAX_ATTEMPTS};
use crate::error::Error;

/// Attempts per request (the first one included), when `ETL_RETRY_MAX_ATTEMPTS` is not set.
pub const MAX_ATTEMPTS: u32 = 8;
/// How long one operation may take in all, retries and backoff included, when
/// `ETL_RETRY_DEADLINE_SECS` is not set. Long enough to ride out minutes of throttling on a
/// weekly job, short enough that a dead endpoint fails the run instead of hanging it.
pub const DEADLINE: Duration = Duration::from_secs(300);
/// The first backoff; each next one may double, up to [`MAX_BACKOFF`]. Every backoff is drawn
/// at random below its bound ("full jitter"), so clients that failed together do not retry
/// together.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// Attempts per request, the first one included (at least 1).
    pub max_attempts: u32,
    /// The total time of one operation, retries included.
    pub deadline: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget { max_attempts: MAX_ATTEMPTS, deadline: DEADLINE }
    }
}

impl RetryBudget {
    /// The budget the variables set: `lookup` is the environment (a parameter for tests).
    pub fn from_variables(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut budget = RetryBudget::default();
        if let Some(text) = lookup(ETL_RETRY_MAX_ATTEMPTS).filter(|t| !t.trim().is_empty()) {
            budget.max_attempts = match text.trim().parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => return Err(format!("{ETL_RETRY_MAX_ATTEMPTS}='{text}': expected a whole number from 1 to 100")),
            };
        }
        if let Some(text) = lookup(ETL_RETRY_DEADLINE_SECS).filter(|t| !t.trim().is_empty()) {
            budget.deadline = match text.trim().parse::<u64>() {
                Ok(n) if (1..=86_400).contains(&n) => Duration::from_secs(n),
                _ => {
                    return Err(format!(
                        "{ETL_RETRY_DEADLINE_SECS}='{text}': expected a whole number of seconds from 1 to 86400"
                    ));
                }
            };
        }
        Ok(budget)
    }

    /// "up to 8 attempts within 300 s", for messages.
    pub fn describe(&self) -> String {
        format!("up to {} attempts within {} s", self.max_attempts, self.deadline.as_secs())
    }
}

static BUDGET: OnceLock<Result<RetryBudget, String>> = OnceLock::new();

/// The process's budget, read from the environment once. The command line checks it before
/// anything else (a bad value is a configuration error); past that check it cannot fail.
pub fn budget() -> Result<RetryBudget, String> {
    BUDGET.get_or_init(|| RetryBudget::from_variables(|name| std::env::var(name).ok())).clone()
}

/// The budget, or the defaults where the variables were refused (the CLI refused them first).
pub fn budget_or_default() -> RetryBudget {
    budget().unwrap_or_default()
}

/// The pause before retry number `retry` (1 for the first retry): random below
/// `INITIAL_BACKOFF * 2^(retry-1)`, capped by [`MAX_BACKOFF`].
pub fn backoff(retry: u32) -> Duration {
    let bound = INITIAL_BACKOFF.saturating_mul(1u32 << retry.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    bound.mul_f64(random_fraction())
}

/// A number in [0, 1) for jitter (here and in the scheduler's backoff). `RandomState` is
/// seeded per process and per call from the system's entropy, which is all jitter needs,
/// without a random-number crate of our own.
pub fn random_fraction() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether an `object_store` failure is worth another attempt: a transport failure (a reset
/// connection, a body that ended early, a timeout), seen anywhere in its chain of causes.
pub fn is_transient(error: &object_store::Error) -> bool {
    use object_store::Error as E;
    match error {
        E::NotFound { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::InvalidPath { .. }
        | E::UnknownConfigurationKey { .. } => false,
        other => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(other);
            while let Some(e) = source {
                if e.downcast_ref::<object_store::client::HttpError>().is_some()
                    || e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                        use std::io::ErrorKind as K;
                        matches!(
                            io.kind(),
                            K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::TimedOut | K::BrokenPipe
                        )
                    })
                {
                    return true;
                }
                source = e.source();
            }
            false
        }
    }
}

/// The error without `object_store`'s "Generic S3 error: " wrapper, which ours adds again.
fn cause(error: &object_store::Error) -> String {
    match error {
        object_store::Error::Generic { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// Whether `object_store` gave up retrying a 5xx or throttling answer: its message is the
/// only place that says so (the error type that knows the status is private to it).
fn is_spent_server_error(error: &object_store::Error) -> bool {
    let object_store::Error::Generic { .. } = error else {
        return false;
    };
    let text = error.to_string();
    text.contains("Server returned non-2xx status code: 5")
        || text.contains("Server returned non-2xx status code: 429")
        || text.contains("Server returned error response")
}

/// An AWS SDK failure as our error: the service's error code and message, or the chain of
/// causes of a transport failure; one that retries could have cured (throttling, 5xx, a broken
/// connection, the deadline) says the retry budget is spent. Glue and Athena share the SDK's
/// error types.
pub fn sdk_error<E: aws_sdk_glue::error::ProvideErrorMetadata + std::error::Error + 'static>(
    service: &str,
    what: &str,
    error: aws_sdk_glue::error::SdkError<E, aws_sdk_glue::config::http::HttpResponse>,
) -> Error {
    use aws_sdk_glue::error::SdkError;
    let transient = is_transient_sdk(&error);
    let detail = match &error {
        SdkError::ServiceError(failure) => {
            let e = failure.err();
            format!("{}: {}", e.code().unwrap_or("error"), e.message().unwrap_or_default())
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(inner) = source {
                text = format!("{text}: {inner}");
                source = inner.source();
            }
            text
        }
    };
    if transient {
        Error::runtime(format!(
            "{service}, {what}: {detail} (gave up: retry budget spent, {})",
            budget_or_default().describe()
        ))
    } else {
        Error::runtime(format!("{service}, {what}: {detail}"))
    }
}

/// Whether an AWS SDK failure is one its retries would have cured had the budget lasted:
/// throttling, a 5xx answer, a broken connection or body, a timeout.
pub fn is_transient_sdk<E: aws_sdk_glue::error::ProvideErrorMetadata>(
    error: &aws_sdk_glue::error::SdkError<E, aws_sdk_glue::config::http::HttpResponse>,
) -> bool {
    use aws_sdk_glue::error::SdkError;
    const THROTTLING: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalServiceException",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
    ];
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || service.err().code().is_some_and(|code| THROTTLING.contains(&code))
        }
        _ => false,
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the budget is spent; then the error
/// names `what` and the attempts made.
pub async fn retrying<T, F, Fut>(what: impl Fn() -> String, mut attempt: F) -> object_store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    let budget = budget_or_default();
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if is_spent_server_error(&error) => {
                return Err(object_store::Error::Generic {
                    store: "S3",
                    source: format!("{}: gave up (retry budget: {}): {}", what(), budget.describe(), cause(&error))
                        .into(),
                });
            }
            Err(error) if !is_transient(&error) => return Err(error),
            Err(error) => error,
        };
        let pause = backoff(attempts);
        if attempts >= budget.max_attempts || started.elapsed() + pause >= budget.deadline {
            return Err(object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "{}: gave up after {attempts} attempts in {:.1} s (retry budget: {}): {}",
                    what(),
                    started.elapsed().as_secs_f64(),
                    budget.describe(),
                    cause(&error)
                )
                .into(),
            });
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn variables(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_budget_has_defaults_overrides_and_refuses_bad_values() {
        assert_eq!(RetryBudget::from_variables(variables(&[])), Ok(RetryBudget::default()));
        let set =
            RetryBudget::from_variables(variables(&[(ETL_RETRY_MAX_ATTEMPTS, "3"), (ETL_RETRY_DEADLINE_SECS, "5")]));
        assert_eq!(set, Ok(RetryBudget { max_attempts: 3, deadline: Duration::from_secs(5) }));
        for bad in ["0", "-1", "many", "101"] {
            let refused = RetryBudget::from_variables(variables(&[(ETL_RETRY_MAX_ATTEMPTS, bad)])).unwrap_err();
            assert!(refused.contains(ETL_RETRY_MAX_ATTEMPTS) && refused.contains(bad), "{refused}");
        }
        let refused = RetryBudget::from_variables(variables(&[(ETL_RETRY_DEADLINE_SECS, "1.5")])).unwrap_err();
        assert!(refused.contains(ETL_RETRY_DEADLINE_SECS), "{refused}");
    }

    #[test]
    fn backoffs_are_jittered_below_a_doubling_bound() {
        let pauses: Vec<Duration> = (0..50).map(|_| backoff(1)).collect();
        assert!(pauses.iter().all(|p| *p < INITIAL_BACKOFF));
        assert!(pauses.iter().any(|p| *p != pauses[0]), "no jitter: {pauses:?}");
        assert!((0..50).all(|_| backoff(3) < INITIAL_BACKOFF * 4));
        assert!((0..50).all(|_| backoff(40) < MAX_BACKOFF));
    }

    fn transport_error() -> object_store::Error {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        object_store::Error::Generic { store: "S3", source: Box::new(reset) }
    }

    #[tokio::test(start_paused = true)]
    async fn transport_failures_are_retried_and_answers_are_not() {
        let calls = AtomicU32::new(0);
        let value = retrying(String::new, || async {
            if calls.fetch_add(1, Ordering::Relaxed) < 2 { Err(transport_error()) } else { Ok(7) }
        })
        .await
        .unwrap();
        assert_eq!((value, calls.load(Ordering::Relaxed)), (7, 3));

        let calls = AtomicU32::new(0);
        let missing = retrying(String::new, || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(object_store::Error::NotFound { path: "k".into(), source: "gone".into() })
        })
        .await;
        assert!(matches!(missing, Err(object_store::Error::NotFound { .. })));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn giving_up_names_the_operation_and_the_attempts() {
        let calls = AtomicU32::new(0);
        let error = retrying(
            || "listing s3://b/k".to_string(),
            || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>(transport_error())
            },
        )
        .await
        .unwrap_err()
        .to_string();
        let attempts = calls.load(Ordering::Relaxed);
        assert_eq!(attempts, MAX_ATTEMPTS);
        assert!(error.contains("listing s3://b/k: gave up after 8 attempts"), "{error}");
        assert!(error.contains("connection reset"), "{error}");
    }
}
