//! Asking Athena itself: the query is submitted through `aws-sdk-athena`, awaited, and its
//! `DataScannedInBytes` reported beside our estimate. The SQL goes as written: Athena's dialect
//! (Trino) is not DataFusion's, which a query has to suit to run on both.

use std::time::Duration;

use aws_sdk_athena::Client;
use aws_sdk_athena::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{QueryExecutionState, ResultConfiguration};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::location::aws::{AWS_ENDPOINT_URL_ATHENA, endpoint, sdk_config};

/// How long a query may run before we stop waiting.
const TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Default)]
pub struct AthenaOptions {
    pub workgroup: Option<String>,
    /// `s3://bucket/prefix/` for results; the workgroup's own when None.
    pub output_location: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AthenaRun {
    pub query_execution_id: String,
    pub data_scanned_in_bytes: u64,
}

async fn client() -> Client {
    let mut builder = aws_sdk_athena::config::Builder::from(sdk_config().await);
    if let Some(url) = endpoint(AWS_ENDPOINT_URL_ATHENA) {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}

/// An Athena failure, named and explained (see [`crate::location::retry::sdk_error`]).
fn athena_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    what: &str,
    error: SdkError<E, aws_sdk_athena::config::http::HttpResponse>,
) -> Error {
    crate::location::retry::sdk_error("Athena", what, error)
}

/// Runs `sql` on Athena and returns what it reports having scanned.
pub async fn run(sql: &str, options: &AthenaOptions) -> Result<AthenaRun> {
    let client = client().await;
    let mut start = client.start_query_execution().query_string(sql);
    if let Some(workgroup) = &options.workgroup {
        start = start.work_group(workgroup);
    }
    if let Some(output) = &options.output_location {
        start = start.result_configuration(ResultConfiguration::builder().output_location(output).build());
    }
    let started = start.send().await.map_err(|e| athena_error("starting the query", e))?;
    let id = started.query_execution_id().unwrap_or_default().to_string();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut wait = Duration::from_millis(200);
    loop {
        let output = client
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(|e| athena_error("waiting for the query", e))?;
        let execution = output.query_execution();
        let status = execution.and_then(|e| e.status());
        match status.and_then(|s| s.state()) {
            Some(QueryExecutionState::Succeeded) => {
                let scanned =
                    execution.and_then(|e| e.statistics()).and_then(|s| s.data_scanned_in_bytes()).unwrap_or(0);
                return Ok(AthenaRun { query_execution_id: id, data_scanned_in_bytes: scanned.max(0) as u64 });
            }
            Some(QueryExecutionState::Failed | QueryExecutionState::Cancelled) => {
                let reason = status.and_then(|s| s.state_change_reason()).unwrap_or("no reason given");
                return Err(Error::query(format!("Athena query {id} failed: {reason}")));
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(Error::runtime(format!(
                    "Athena query {id} did not finish in {} minutes",
                    TIMEOUT.as_secs() / 60
                )));
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
