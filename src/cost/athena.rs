//! Asking Athena itself: the query is submitted through `aws-sdk-athena`, awaited, and its
//! `DataScannedInBytes` reported beside our estimate. The SQL goes as written: Athena's dialect
//! (Trino) is not DataFusion's, which a query has to suit to run on both. Its parameters go as
//! Athena's own (`?` and `ExecutionParameters`), bound by Athena, never spliced into the text.

use std::time::Duration;

use aws_sdk_athena::Client;
use aws_sdk_athena::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{QueryExecutionState, ResultConfiguration};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::location::aws::{AWS_ENDPOINT_URL_ATHENA, endpoint, sdk_config};
use crate::transform::params::Params;

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

/// Runs `sql`, its `$name`s bound to `params`, on Athena and returns what it reports having
/// scanned.
pub async fn run(sql: &str, params: &Params, options: &AthenaOptions) -> Result<AthenaRun> {
    let (sql, values) = parameterized(sql, params)?;
    let client = client().await;
    let mut start = client.start_query_execution().query_string(sql);
    if !values.is_empty() {
        start = start.set_execution_parameters(Some(values));
    }
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

/// The statement with each `$name` replaced by Athena's `?`, and the values, in the order of
/// the placeholders, as Athena literals. Only the placeholders' bytes change: a `$name` inside a
/// string or a comment is no token of its own and stays as written.
fn parameterized(sql: &str, params: &Params) -> Result<(String, Vec<String>)> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| Error::query(format!("the query for Athena: {e}")))?;
    let line_starts: Vec<usize> = std::iter::once(0).chain(sql.match_indices('\n').map(|(at, _)| at + 1)).collect();
    let mut text = String::with_capacity(sql.len());
    let mut copied = 0;
    let mut values = Vec::new();
    for token in tokens {
        let Token::Placeholder(placeholder) = &token.token else { continue };
        let name = placeholder.trim_start_matches('$');
        let value = params.get(name).ok_or_else(|| {
            let known = params.names().map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
            Error::query(format!("parameter {placeholder} is not defined (defined: {known})"))
        })?;
        let start = token.span.start;
        let line_start = line_starts[start.line as usize - 1];
        let column = sql[line_start..].char_indices().nth(start.column as usize - 1).map_or(0, |(at, _)| at);
        let at = line_start + column;
        text.push_str(&sql[copied..at]);
        text.push('?');
        copied = at + placeholder.len();
        values.push(athena_literal(value)?);
    }
    text.push_str(&sql[copied..]);
    Ok((text, values))
}

/// A parameter's value as Athena (Trino) spells a literal of its type.
fn athena_literal(value: &ScalarValue) -> Result<String> {
    Ok(match value {
        ScalarValue::Utf8(Some(text)) => format!("'{}'", text.replace('\'', "''")),
        ScalarValue::Boolean(Some(b)) => b.to_string(),
        ScalarValue::Int32(Some(n)) => n.to_string(),
        ScalarValue::Int64(Some(n)) => n.to_string(),
        ScalarValue::Float64(Some(x)) => format!("DOUBLE '{x}'"),
        ScalarValue::Date32(Some(_)) => format!("DATE '{value}'"),
        ScalarValue::TimestampMicrosecond(Some(micros), None) => {
            let at = chrono::DateTime::from_timestamp_micros(*micros)
                .ok_or_else(|| Error::query(format!("timestamp parameter {micros} µs is out of range")))?;
            format!("TIMESTAMP '{}'", at.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f"))
        }
        other => {
            return Err(Error::query(format!("a parameter of type {} cannot be sent to Athena", other.data_type())));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_athena_parameters_in_order() {
        let mut params = Params::default();
        params.set("region", ScalarValue::Utf8(Some("o'hare".into())));
        params.set("since", ScalarValue::Date32(Some(20_000)));
        params.set("n", ScalarValue::Int64(Some(7)));
        let sql = "SELECT 'é $region' -- $n\nFROM t\nWHERE région = $region AND d >= $since AND k < $n";
        let (text, values) = parameterized(sql, &params).unwrap();
        assert_eq!(text, "SELECT 'é $region' -- $n\nFROM t\nWHERE région = ? AND d >= ? AND k < ?");
        assert_eq!(values, ["'o''hare'", "DATE '2024-10-04'", "7"]);
        let error = parameterized("SELECT $other", &params).unwrap_err().to_string();
        assert!(error.contains("$other is not defined"), "{error}");
    }
}
