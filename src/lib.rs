//! `etl`: a columnar ETL engine for data teams on AWS, in one binary.
//!
//! It does what Glue crawlers, Glue Spark jobs and Athena do together: read raw objects
//! (CSV, JSON, Parquet), infer and version their schemas in a catalog, transform them with SQL
//! on DataFusion, and publish partitioned Parquet that Athena can query, all-or-nothing.
//! Everything the `etl` command does is callable from here. The modules follow the pipeline:

/// 3. Where tables are recorded: the catalog trait, the embedded catalog, DataFusion's view.
pub mod catalog;
/// 8. The command line.
pub mod cli;
/// 6. What Athena would bill.
pub mod cost;
/// One error type; its kind decides the exit status.
pub mod error;
/// Where the crash tests stop a run to kill it.
pub mod kill_points;
/// Local paths, `file://` and `s3://` locations, as object stores.
pub mod location;
/// 7. Jobs, runs, run history.
pub mod runs;
/// 2. What shape it has: inference, widening, Glue types, diffs.
pub mod schema;
/// 5. Parquet out: partitioned writes into staging, ready to publish.
pub mod sink;
/// 1. What is out there: listing, partitions, formats, compression, decoders, bad records.
pub mod source;
/// The SQLite databases under `$ETL_HOME`, opened one way.
pub mod sqlite;
/// 4. SQL over the catalog: the session, scripts, parameters.
pub mod transform;
