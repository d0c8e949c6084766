//! The console's pages, each read from the catalog and the run history as the API reads them,
//! limited to what the signed-in key may read.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::charts::{self, Bar, Job};
use super::{KeyExt, page, problem};
use crate::catalog::TableName;
use crate::checks::evaluate::Recorded;
use crate::output::human_bytes;
use crate::runs::pipeline::Pipeline;
use crate::runs::report::RunReport;
use crate::serve::Server;

/// Runs the runs page charts at most.
const CHARTED_RUNS: usize = 60;

fn status_badge(status: &str) -> Markup {
    html! { span class=(format!("status {}", status.replace(' ', "-"))) { (status) } }
}

fn seconds(run: &RunReport) -> String {
    run.duration_seconds().map_or("-".to_string(), |s| format!("{s:.1} s"))
}

fn usd(value: f64) -> String {
    format!("${value:.6}")
}

fn visible_runs(server: &Server, key: &crate::serve::keys::Key) -> Result<Vec<RunReport>, crate::error::Error> {
    server.runs_visible_to(key, server.history.list(None, None)?)
}

/// `/`: runs over time (duration, rows, bytes, Athena estimate), failures marked.
pub async fn runs(State(server): State<Arc<Server>>, key: KeyExt) -> Response {
    let runs = match visible_runs(&server, &key) {
        Ok(runs) => runs,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &key, e.message()),
    };
    let charted: Vec<&RunReport> = runs.iter().take(CHARTED_RUNS).rev().collect();
    let bar = |run: &&RunReport, value: f64, shown: String| Bar {
        label: format!("{} {} {}", run.job, run.logical_date, run.started_at),
        value,
        shown,
        failed: run.status.as_str() == "failed",
        href: Some(format!("/runs/{}", run.run_id)),
    };
    let durations: Vec<Bar> = charted.iter().map(|r| bar(r, r.duration_seconds().unwrap_or(0.0), seconds(r))).collect();
    let rows: Vec<Bar> =
        charted.iter().map(|r| bar(r, r.rows_written() as f64, format!("{} rows", r.rows_written()))).collect();
    let bytes: Vec<Bar> =
        charted.iter().map(|r| bar(r, r.bytes_written() as f64, human_bytes(r.bytes_written()))).collect();
    let athena: Vec<Bar> = charted.iter().map(|r| bar(r, r.athena.usd, usd(r.athena.usd))).collect();
    let failed = runs.iter().filter(|r| r.status.as_str() == "failed").count();
    page(
        "Runs",
        &key,
        html! {
            h1 { "Runs" }
            p { (runs.len()) " runs, " (failed) " failed. The charts show the last " (charted.len()) ", oldest first; a failed run is red and marked ✕." }
            @if runs.is_empty() {
                p { "No runs yet." }
            } @else {
                section aria-labelledby="duration-h" { h2 #duration-h { "Duration" } (charts::bars("duration", "Duration of each run", "Seconds per run, oldest first", &durations)) }
                section aria-labelledby="rows-h" { h2 #rows-h { "Rows written" } (charts::bars("rows", "Rows written by each run", "Rows per run, oldest first", &rows)) }
                section aria-labelledby="bytes-h" { h2 #bytes-h { "Bytes written" } (charts::bars("bytes", "Bytes written by each run", "Bytes per run, oldest first", &bytes)) }
                section aria-labelledby="athena-h" { h2 #athena-h { "Athena estimate" } (charts::bars("athena", "What Athena would bill for each run's queries", "US dollars per run, oldest first", &athena)) }
                table #runs {
                    caption { "Every run, newest first" }
                    thead { tr { th scope="col" { "Run" } th scope="col" { "Job" } th scope="col" { "Date" } th scope="col" { "Status" }
                        th scope="col" { "Duration" } th scope="col" { "Rows" } th scope="col" { "Bytes" } th scope="col" { "Athena" } } }
                    tbody {
                        @for run in &runs {
                            tr class=(if run.status.as_str() == "failed" { "failed" } else { "" }) {
                                td { a href=(format!("/runs/{}", run.run_id)) { (run.run_id) } }
                                td { (run.job) } td { (run.logical_date) } td { (status_badge(run.status.as_str())) }
                                td.num { (seconds(run)) } td.num { (run.rows_written()) } td.num { (human_bytes(run.bytes_written())) }
                                td.num { (usd(run.athena.usd)) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `/bill`: what Athena would bill, per job and month (the Cost Explorer view).
pub async fn bill(State(server): State<Arc<Server>>, key: KeyExt) -> Response {
    let runs = match visible_runs(&server, &key) {
        Ok(runs) => runs,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &key, e.message()),
    };
    // month -> job -> (runs, queries, output scans)
    let mut months: BTreeMap<String, BTreeMap<String, (usize, f64, f64)>> = BTreeMap::new();
    for run in &runs {
        let month = run.started_at.get(..7).unwrap_or("unknown").to_string();
        let entry = months.entry(month).or_default().entry(run.job.clone()).or_default();
        entry.0 += 1;
        entry.1 += run.athena.usd;
        entry.2 += run.athena.targets.iter().fold(0.0, |sum, t| sum + t.usd);
    }
    let totals: Vec<Bar> = months
        .iter()
        .map(|(month, jobs)| {
            let total: f64 = jobs.values().map(|(_, q, _)| q).sum();
            Bar { label: month.clone(), value: total, shown: usd(total), failed: false, href: None }
        })
        .collect();
    page(
        "Bill",
        &key,
        html! {
            h1 { "Bill" }
            p { "What Athena would bill for each job's queries over its sources, and for one scan of what it wrote, per month (estimates from metadata)." }
            @if months.is_empty() {
                p { "No runs yet." }
            } @else {
                (charts::bars("bill-chart", "Athena estimate per month", "US dollars of queries per month, all jobs", &totals))
                table #bill {
                    caption { "Per job and month" }
                    thead { tr { th scope="col" { "Month" } th scope="col" { "Job" } th scope="col" { "Runs" } th scope="col" { "Queries" } th scope="col" { "Output scans" } } }
                    tbody {
                        @for (month, jobs) in months.iter().rev() {
                            @for (job, (count, queries, outputs)) in jobs {
                                tr { th scope="row" { (month) } td { (job) } td.num { (count) } td.num { (usd(*queries)) } td.num { (usd(*outputs)) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `/tables`: the tables the key may read.
pub async fn tables(State(server): State<Arc<Server>>, key: KeyExt) -> Response {
    let mut tables = Vec::new();
    let listed: Result<(), crate::error::Error> = async {
        for database in server.catalog.databases().await? {
            for name in server.catalog.tables(&database).await? {
                if let Ok(name) = TableName::new(&database, &name)
                    && key.may_read(&name)
                    && let Some(table) = server.catalog.table(&name).await?
                {
                    tables.push(table);
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = listed {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, &key, e.message());
    }
    page(
        "Tables",
        &key,
        html! {
            h1 { "Tables" }
            table #tables {
                caption { "Tables this key may read" }
                thead { tr { th scope="col" { "Table" } th scope="col" { "Kind" } th scope="col" { "Schema version" } th scope="col" { "Updated" } th scope="col" { "Location" } } }
                tbody {
                    @for table in &tables {
                        tr {
                            td { a href=(format!("/tables/{}", table.name)) { (table.name) } }
                            td { (if table.definition.is_written() { "written" } else { "crawled" }) " " (table.definition.format) }
                            td.num { (table.version) }
                            td { (table.updated_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                            td { code { (table.definition.location) } }
                        }
                    }
                }
            }
        },
    )
}

/// `/tables/{db.table}`: columns, schema versions and their diffs, data versions with their
/// checks, partitions.
pub async fn table(State(server): State<Arc<Server>>, key: KeyExt, Path(name): Path<String>) -> Response {
    let Ok(name) = name.parse::<TableName>() else {
        return problem(StatusCode::BAD_REQUEST, &key, &format!("'{name}' is not DATABASE.TABLE"));
    };
    if !key.may_read(&name) {
        return problem(StatusCode::FORBIDDEN, &key, &format!("key '{}' may not read {name}", key.name));
    }
    let catalog = &server.catalog;
    let read = async {
        let table = catalog.require(&name).await?;
        let versions = catalog.versions(&name).await?;
        let data_versions = catalog.data_versions(&name).await?;
        let partitions = catalog.partitions(&name).await?;
        Ok::<_, crate::error::Error>((table, versions, data_versions, partitions))
    };
    let (table, versions, data_versions, partitions) = match read.await {
        Ok(found) => found,
        Err(e) if e.kind() == crate::error::ErrorKind::NotFound => {
            return problem(StatusCode::NOT_FOUND, &key, e.message());
        }
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &key, e.message()),
    };
    let definition = &table.definition;
    page(
        &name.to_string(),
        &key,
        html! {
            h1 { (name) }
            p { (if definition.is_written() { "Written by jobs" } else { "Crawled" }) ", " (definition.format) " at " code { (definition.location) } ", schema version " (table.version) "." }
            section aria-labelledby="columns-h" {
                h2 #columns-h { "Columns" }
                table #columns {
                    thead { tr { th scope="col" { "Column" } th scope="col" { "Type" } th scope="col" { "Partition key" } } }
                    tbody {
                        @for column in &definition.columns { tr { td { (column.name) } td { code { (column.ty) } } td { "no" } } }
                        @for column in &definition.partition_keys { tr { td { (column.name) } td { code { (column.ty) } } td { "yes" } } }
                    }
                }
            }
            section aria-labelledby="versions-h" {
                h2 #versions-h { "Schema versions" }
                ol #schema-versions {
                    @for version in versions.iter().rev() {
                        li {
                            strong { "Version " (version.version) } " — " (version.change.as_str()) ", " (version.created_at.format("%Y-%m-%d %H:%M:%S UTC"))
                            @if let Some(run) = &version.run_id { " by run " a href=(format!("/runs/{run}")) { (run) } }
                            @if !version.diff.is_empty() {
                                ul.diff { @for change in &version.diff { li { (change.describe()) } } }
                            }
                        }
                    }
                }
            }
            @if definition.is_written() {
                section aria-labelledby="data-h" {
                    h2 #data-h { "Data versions" }
                    table #data-versions {
                        thead { tr { th scope="col" { "Version" } th scope="col" { "Run" } th scope="col" { "When" } th scope="col" { "Rows" }
                            th scope="col" { "Bytes" } th scope="col" { "Files" } th scope="col" { "Checks" } } }
                        tbody {
                            @for version in data_versions.iter().rev() {
                                @let checks = Recorded::read(&version.checks);
                                tr {
                                    td.num { (version.version) @if let Some(of) = version.rollback_of { " (rollback to " (of) ")" } }
                                    td { @if let Some(run) = &version.run_id { a href=(format!("/runs/{run}")) { (run) } } }
                                    td { (version.created_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                                    td.num { (version.rows) } td.num { (human_bytes(version.bytes)) } td.num { (version.files) }
                                    td {
                                        @if checks.is_empty() { "none" }
                                        @for check in &checks {
                                            @let status = serde_json::to_value(check.status).ok().and_then(|s| s.as_str().map(str::to_string)).unwrap_or_default();
                                            span.check { (check.check.name) ": " (status_badge(&status)) } " "
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="partitions-h" {
                h2 #partitions-h { "Partitions" }
                @if partitions.is_empty() { p { "No partitions recorded." } }
                @else {
                    table #partitions {
                        thead { tr {
                            @for key in &definition.partition_keys { th scope="col" { (key.name) } }
                            th scope="col" { "Files" } th scope="col" { "Rows" } th scope="col" { "Bytes" } th scope="col" { "Location" }
                        } }
                        tbody {
                            @for partition in &partitions {
                                tr {
                                    @for value in &partition.values { td { (value.as_deref().unwrap_or("(null)")) } }
                                    td.num { (partition.files.len()) }
                                    td.num { (partition.files.iter().map(|f| f.rows).sum::<u64>()) }
                                    td.num { (human_bytes(partition.files.iter().map(|f| f.size).sum::<u64>())) }
                                    td { code { (partition.location) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `/pipelines`: each pipeline folder the server was given, as a graph coloured by the last
/// run of each job; then the latest pipeline runs.
pub async fn pipelines(State(server): State<Arc<Server>>, key: KeyExt) -> Response {
    let runs = match visible_runs(&server, &key) {
        Ok(runs) => runs,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &key, e.message()),
    };
    let pipeline_runs = server.history.pipeline_runs(None).unwrap_or_default();
    let mut drawn = Vec::new();
    for (i, folder) in server.pipelines.iter().enumerate() {
        let pipeline = match Pipeline::load(folder) {
            Ok(pipeline) => pipeline,
            Err(e) => {
                drawn.push(html! { section { h2 { (folder.display()) } p.error { (e.message()) } } });
                continue;
            }
        };
        let last = pipeline_runs.iter().find(|r| r.pipeline == pipeline.name);
        let jobs: Vec<Job> = pipeline
            .jobs
            .iter()
            .map(|job| {
                let from_pipeline = last
                    .and_then(|r| r.job(&job.name))
                    .map(|entry| (entry.status.as_str().to_string(), entry.run_id.clone()));
                let from_history = || {
                    runs.iter()
                        .find(|r| r.job == job.name)
                        .map(|r| (r.status.as_str().to_string(), Some(r.run_id.clone())))
                };
                let (status, run_id) = from_pipeline.or_else(from_history).unwrap_or(("never run".to_string(), None));
                Job { name: job.name.clone(), status, href: run_id.map(|id| format!("/runs/{id}")) }
            })
            .collect();
        let edges: Vec<(String, String)> =
            pipeline.graph.edges().iter().map(|e| (e.from.clone(), e.to.clone())).collect();
        let title = format!("Pipeline {}", pipeline.name);
        drawn.push(html! {
            section.pipeline aria-labelledby=(format!("pipeline-{i}-h")) {
                h2 #(format!("pipeline-{i}-h")) { (title) }
                @if let Some(run) = last {
                    p { "Last run " (run.pipeline_run_id) " for " (run.logical_date) ": " (status_badge(run.status.as_str())) }
                }
                (charts::graph(&format!("pipeline-{i}"), &title, &jobs, &edges))
                ul.legend { @for job in &jobs { li { (job.name) ": " (status_badge(&job.status)) } } }
            }
        });
    }
    page(
        "Pipelines",
        &key,
        html! {
            h1 { "Pipelines" }
            @if server.pipelines.is_empty() { p { "Start the server with " code { "--pipelines DIR" } " to draw a pipeline's graph." } }
            @for section in drawn { (section) }
            h2 { "Pipeline runs" }
            @if pipeline_runs.is_empty() { p { "No pipeline runs yet." } }
            @else {
                table #pipeline-runs {
                    thead { tr { th scope="col" { "Pipeline run" } th scope="col" { "Pipeline" } th scope="col" { "Date" } th scope="col" { "Status" } th scope="col" { "Jobs" } } }
                    tbody {
                        @for run in pipeline_runs.iter().take(50) {
                            tr {
                                td { (run.pipeline_run_id) } td { (run.pipeline) } td { (run.logical_date) } td { (status_badge(run.status.as_str())) }
                                td { @for job in &run.jobs {
                                    @if let Some(id) = &job.run_id { a href=(format!("/runs/{id}")) { (job.job) } } @else { (job.job) }
                                    " " (status_badge(job.status.as_str())) " "
                                } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `/runs/{id}`: a run's report and error.
pub async fn run(State(server): State<Arc<Server>>, key: KeyExt, Path(id): Path<String>) -> Response {
    let run = match server.history.get(&id) {
        Ok(Some(run)) => run,
        Ok(None) => return problem(StatusCode::NOT_FOUND, &key, &format!("no run {id}")),
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &key, e.message()),
    };
    let run = match server.runs_visible_to(&key, vec![run]) {
        Ok(mut visible) => match visible.pop() {
            Some(run) => run,
            None => {
                return problem(
                    StatusCode::FORBIDDEN,
                    &key,
                    &format!("key '{}' may not read the tables of run {id}", key.name),
                );
            }
        },
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &key, e.message()),
    };
    let report = serde_json::to_string_pretty(&run).unwrap_or_default();
    page(
        &format!("Run {id}"),
        &key,
        html! {
            h1 { "Run " (run.run_id) }
            dl.summary {
                dt { "Job" } dd { (run.job) }
                dt { "Logical date" } dd { (run.logical_date) }
                dt { "Status" } dd { (status_badge(run.status.as_str())) }
                dt { "Started" } dd { (run.started_at) }
                dt { "Duration" } dd { (seconds(&run)) }
                dt { "Rows written" } dd { (run.rows_written()) }
                dt { "Bytes written" } dd { (human_bytes(run.bytes_written())) }
                dt { "Athena estimate" } dd { (usd(run.athena.usd)) " for its queries" }
                dt { "Started by" } dd { (run.started_by.as_str()) }
            }
            @if let Some(error) = &run.error {
                section aria-labelledby="error-h" { h2 #error-h { "Error" } pre.error role="alert" { (error) } }
            }
            section aria-labelledby="targets-h" {
                h2 #targets-h { "Targets" }
                table #targets {
                    thead { tr { th scope="col" { "Table" } th scope="col" { "Rows" } th scope="col" { "Bytes" } th scope="col" { "Files" } th scope="col" { "Partitions" } } }
                    tbody { @for target in &run.targets { tr {
                        td { a href=(format!("/tables/{}", target.table)) { (target.table) } }
                        td.num { (target.rows) } td.num { (human_bytes(target.bytes)) } td.num { (target.files) } td.num { (target.partitions) }
                    } } }
                }
            }
            section aria-labelledby="sources-h" {
                h2 #sources-h { "Sources" }
                table #sources {
                    thead { tr { th scope="col" { "Table" } th scope="col" { "Files" } th scope="col" { "Rows" } th scope="col" { "Bytes" } th scope="col" { "Schema" } } }
                    tbody { @for source in &run.sources { tr {
                        td { (source.table) } td.num { (source.files) } td.num { (source.rows) } td.num { (human_bytes(source.bytes)) }
                        td { "version " (source.schema_version) " (" (source.change) ")" }
                    } } }
                }
            }
            @if !run.checks.is_empty() {
                section aria-labelledby="checks-h" {
                    h2 #checks-h { "Checks" }
                    table #checks {
                        thead { tr { th scope="col" { "Target" } th scope="col" { "Check" } th scope="col" { "Severity" } th scope="col" { "Status" } th scope="col" { "Violations" } } }
                        tbody { @for check in &run.checks {
                            @let status = serde_json::to_value(check.status).ok().and_then(|s| s.as_str().map(str::to_string)).unwrap_or_default();
                            tr { td { (check.target) } td { (check.name) } td { (check.severity.as_str()) } td { (status_badge(&status)) } td.num { (check.violations) } }
                        } }
                    }
                }
            }
            details { summary { "The whole report (JSON)" } pre { (report) } }
        },
    )
}
