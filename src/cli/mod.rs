//! 11. The command line: the only code that knows clap, stdout and exit codes. One file per
//! command; each resolves its flags, calls the library, and prints through `output`.

mod bookmarks;
mod check;
mod cluster;
mod compact;
mod cost;
mod crawl;
mod deploy;
mod gc;
mod infer;
mod pipeline;
mod quarantine;
mod run;
mod runs;
mod schedule;
mod scheduler;
mod schema;
mod serve;
mod sql;
mod table;
mod trigger;

use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::catalog::Catalog;
use crate::config::{CatalogChoice, ETL_CATALOG, home};
use crate::error::{Error, Result};
use crate::infer::{DEFAULT_SAMPLE_ROWS, InferOptions};
use crate::source::format::FormatChoice;

#[derive(Debug, Parser)]
#[command(
    name = "etl",
    version,
    about = "Columnar ETL for data on S3: infer, catalog, transform with SQL, publish Parquet"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The catalog: local (embedded, under $ETL_HOME) or glue.
    #[arg(long, global = true, env = ETL_CATALOG, value_parser = parse_catalog)]
    pub catalog: Option<CatalogChoice>,
    /// Print exactly one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but results and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more about what happens.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Infer the schema of the objects under a location; registers nothing.
    Infer(infer::InferArgs),
    /// Infer, then create or version the table in the catalog.
    Crawl(crawl::CrawlArgs),
    /// Show a table's definition, its versions, or what changed between two.
    Schema(schema::SchemaArgs),
    /// Run SQL against the catalog's tables.
    Sql(sql::SqlArgs),
    /// Estimate what Amazon Athena would bill for a query, from metadata only.
    Cost(cost::CostArgs),
    /// Run a job file.
    Run(run::RunArgs),
    /// Show the run history, newest first.
    Runs(runs::RunsArgs),
    /// The next fire times of a job, or of every job in a folder.
    Schedule(schedule::ScheduleArgs),
    /// Run every job of a folder on its schedule and on its triggers' events, until stopped.
    Scheduler(scheduler::SchedulerArgs),
    /// Show or run a folder of jobs as one graph (a pipeline).
    Pipeline(pipeline::PipelineArgs),
    /// Run the jobs of a folder whose triggers match an S3 event's objects, and those downstream.
    Trigger(trigger::TriggerArgs),
    /// Show or reset what the incremental sources of a job have processed.
    Bookmarks(bookmarks::BookmarksArgs),
    /// Remove what killed runs left under written tables, and what retention no longer keeps.
    Gc(gc::GcArgs),
    /// Show the records a run set apart (bad_records = "quarantine").
    Quarantine(quarantine::QuarantineArgs),
    /// Run the checks of a job's targets, or of a table, on what is published now.
    Check(check::CheckArgs),
    /// A written table's data versions.
    Table(table::TableArgs),
    /// Make an earlier data version of a table current again, as a new version.
    Rollback(table::RollbackArgs),
    /// Serve the catalog's tables, runs and costs over HTTP (and a console); manage its keys.
    Serve(serve::ServeArgs),
    /// Rewrite a written table's files into fewer, sorted ones, as one new version.
    Compact(compact::CompactArgs),
    /// Write the CloudFormation template that runs a pipeline on AWS (no AWS call).
    Deploy(deploy::DeployArgs),
    /// Try each access a job or pipeline needs on AWS, and name what is missing.
    Doctor(deploy::DoctorArgs),
    /// Run a role of an Apache Ballista cluster that runs jobs given `--engine df://HOST:PORT`.
    Cluster(cluster::ClusterArgs),
}

/// Where a command's queries run: `--engine`, or `ETL_ENGINE`.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// local (this process) or df://HOST:PORT, the scheduler of an Apache Ballista cluster
    /// started with `etl cluster` (default: the job file's `engine`, or local).
    #[arg(long, env = crate::config::ETL_ENGINE, value_parser = parse_engine)]
    pub engine: Option<crate::transform::cluster::Engine>,
}

fn parse_engine(text: &str) -> std::result::Result<crate::transform::cluster::Engine, String> {
    text.parse()
}

/// Options that shape inference, shared by `infer` and `crawl`.
#[derive(Debug, Args, Clone)]
pub struct InferenceArgs {
    /// auto (from extensions, then content), csv, json or parquet.
    #[arg(long, default_value = "auto")]
    pub format: FormatChoice,
    /// Records sampled per file; 0 reads whole files.
    #[arg(long, default_value_t = DEFAULT_SAMPLE_ROWS)]
    pub sample_rows: usize,
    /// The CSV delimiter (one character, or `tab`), where detection should not decide.
    #[arg(long, value_parser = crate::runs::job::parse_delimiter)]
    pub delimiter: Option<u8>,
}

impl InferenceArgs {
    pub fn options(&self) -> InferOptions {
        InferOptions {
            format: self.format,
            sample_rows: self.sample_rows,
            delimiter: self.delimiter,
            ..InferOptions::default()
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let global = cli.global;
    crate::location::retry::budget().map_err(Error::config)?;
    let result = match cli.command {
        Command::Infer(args) => infer::run(args, &global).await,
        Command::Crawl(args) => crawl::run(args, &global).await,
        Command::Schema(args) => schema::run(args, &global).await,
        Command::Sql(args) => sql::run(args, &global).await,
        Command::Cost(args) => cost::run(args, &global).await,
        Command::Run(args) => run::run(args, &global).await,
        Command::Runs(args) => runs::run(args, &global).await,
        Command::Schedule(args) => schedule::run(args, &global).await,
        Command::Scheduler(args) => scheduler::run(args, &global).await,
        Command::Pipeline(args) => pipeline::run(args, &global).await,
        Command::Trigger(args) => trigger::run(args, &global).await,
        Command::Bookmarks(args) => bookmarks::run(args, &global).await,
        Command::Gc(args) => gc::run(args, &global).await,
        Command::Quarantine(args) => quarantine::run(args, &global).await,
        Command::Check(args) => check::run(args, &global).await,
        Command::Table(args) => table::history(args, &global).await,
        Command::Rollback(args) => table::rollback(args, &global).await,
        Command::Serve(args) => serve::run(args, &global).await,
        Command::Compact(args) => compact::run(args, &global).await,
        Command::Deploy(args) => deploy::deploy(args, &global).await,
        Command::Doctor(args) => deploy::doctor(args, &global).await,
        Command::Cluster(args) => cluster::run(args, &global).await,
    };
    crate::location::aws::finish_aborts().await;
    result
}

fn parse_catalog(text: &str) -> std::result::Result<CatalogChoice, String> {
    text.parse()
}

impl GlobalArgs {
    /// The catalog the flag (or `ETL_CATALOG`) chooses, for commands outside a job.
    pub async fn catalog(&self) -> Result<Arc<dyn Catalog>> {
        crate::catalog::open(CatalogChoice::resolve(self.catalog, None), &home()).await
    }
}

/// Resolves on SIGTERM or SIGINT: how long-running commands learn to stop.
pub async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Writes a JSON document and a newline to stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    crate::output::write_json(&mut out, value)
}
