//! `etl`: a columnar ETL engine for data teams on AWS, in one binary.
//!
//! It does what Glue crawlers, Glue Spark jobs and Athena do together: read raw objects
//! (CSV, JSON, Parquet), infer and version their schemas in a catalog, transform them with SQL
//! on DataFusion, and publish partitioned Parquet that Athena can query, all-or-nothing.
//! Everything the `etl` command does is callable from here. The modules follow the pipeline,
//! each building only on those above it:

/// One error type; its kind decides the exit status.
pub mod error;

/// What the engine asks of the binary's allocator.
pub mod allocator;

/// CPU-bound work from async code, on rayon's pool.
pub mod pool;

/// Panics of dependencies that an input causes, reported as errors naming it.
pub mod panics;

/// What the environment configures: `$ETL_HOME`, the catalog, every `ETL_*` variable.
pub mod config;

/// Where the crash tests stop a run to kill it.
pub mod kill_points;

/// The SQLite databases under `$ETL_HOME`, opened one way.
pub mod sqlite;

/// Where data lives: local paths, `file://` and `s3://` locations, as object stores.
pub mod location;

/// Where files go under a table's location: partition folders, staging, run folders, journals.
pub mod layout;

/// Glue types, names, widening and diffs: the vocabulary of shapes every stage speaks.
pub mod schema;

/// What people read: printers of rows, columns, reports and sizes.
pub mod output;

/// 1. What is out there: listing, partitions, formats, compression, decoders, bad records.
pub mod source;

/// 2. What shape it has: schema inference, as a Glue crawler does it.
pub mod infer;

/// 3. Where tables are recorded: the catalog trait, the embedded catalog, DataFusion's view.
pub mod catalog;

/// 4. SQL over the catalog: the session, scripts, parameters.
pub mod transform;

/// 5. What an output must satisfy before it is published: checks, as SQL over staged files.
pub mod checks;

/// 6. Parquet out: partitioned writes into staging, and the commit that publishes them.
pub mod sink;

/// 7. What Athena would bill.
pub mod cost;

/// 8. Jobs, runs, run history, pipelines (folders of jobs run as one graph), schedules.
pub mod runs;

/// 9. Serving what the pipelines publish: the read-only data API with keys and a cache, and the console.
pub mod serve;

/// 10. Deploying a pipeline to AWS as code (CloudFormation), and checking its permissions.
pub mod deploy;

/// 11. The command line.
pub mod cli;
