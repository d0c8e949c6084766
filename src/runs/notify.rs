//! Telling someone that a run finally failed (after its retries): a command, run with the run
//! report as JSON on its standard input, and/or a webhook, POSTed the same JSON. A failure to
//! notify is reported on stderr; it does not change the run's outcome.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::job::OnFailure;
use super::report::RunReport;
use crate::error::{Error, Result};

/// How long a webhook may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends the report to whoever the job names; returns what could not be done.
pub async fn run_failed(on_failure: &OnFailure, report: &RunReport) -> Vec<Error> {
    let mut failures = Vec::new();
    let body = match serde_json::to_vec(report) {
        Ok(body) => body,
        Err(e) => return vec![e.into()],
    };
    if let Some(command) = &on_failure.command {
        if let Err(e) = run_command(command, report, &body).await {
            failures.push(e.context(format!("on_failure command '{command}'")));
        }
    }
    if let Some(url) = &on_failure.webhook {
        if let Err(e) = post(url, body).await {
            failures.push(e.context(format!("on_failure webhook {url}")));
        }
    }
    failures
}

async fn run_command(command: &str, report: &RunReport, body: &[u8]) -> Result<()> {
    let command = command.to_string();
    let body = body.to_vec();
    let env = [
        ("ETL_JOB", report.job.clone()),
        ("ETL_RUN_ID", report.run_id.clone()),
        ("ETL_LOGICAL_DATE", report.logical_date.clone()),
        ("ETL_STATUS", report.status.as_str().to_string()),
        ("ETL_ERROR", report.error.clone().unwrap_or_default()),
    ];
    tokio::task::spawn_blocking(move || -> Result<()> {
        let mut child =
            Command::new("sh").arg("-c").arg(&command).envs(env).stdin(Stdio::piped()).stdout(Stdio::null()).spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its input is fine.
            let _ = stdin.write_all(&body);
        }
        let status = child.wait()?;
        if status.success() { Ok(()) } else { Err(Error::runtime(format!("exited with {status}"))) }
    })
    .await
    .map_err(|e| Error::runtime(e.to_string()))?
}

async fn post(url: &str, body: Vec<u8>) -> Result<()> {
    let client =
        reqwest::Client::builder().timeout(WEBHOOK_TIMEOUT).build().map_err(|e| Error::runtime(e.to_string()))?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| Error::runtime(e.to_string()))?;
    if !response.status().is_success() {
        return Err(Error::runtime(format!("answered {}", response.status())));
    }
    Ok(())
}
