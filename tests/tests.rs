//! The integration suite: the `etl` binary driven as a user drives it, through the interface
//! of the contract (arguments, stdout, stderr, exit status), on data made by each test.
//!
//! - `infer`: schemas of CSV, JSON and Parquet locations, partitions, compression.
//! - `cost`: estimates of what Athena bills, against the bytes our engine reads.
//! - `crawl`: versions in the catalog, schema-change policies, `schema show/history/diff`.
//! - `sql`: queries over catalog tables, output formats, bound parameters, errors.
//! - `run`: jobs end to end, publication modes, idempotent reruns, failures, history.
//! - `scheduler`: weeks of schedules in seconds: retries, catch-up, crashes, racing schedulers.
//! - `schedules`: `schedule`, `scheduler`, backfills, incremental sources and bookmarks.
//! - `pipeline`: folders of jobs as one graph: `pipeline show` and `run`, resumes, backfills,
//!   refusals, a scheduler killed mid-pipeline.
//! - `events`: `trigger` with AWS's sample events, duplicates, suffixes, local folders,
//!   downstream jobs; the scheduler's local folders and SQS queue (redelivery, dead letters).
//! - `bad_input`: every kind of bad input: exit status, message, and nothing published.
//! - `crash`: runs killed (SIGKILL) at 44 points: readers see the old or the new output, `gc`.
//! - `quarantine`: rejected records kept exactly as read, `quarantine show`, replaying fixed ones.
//! - `races`: two runs of one date, two jobs writing one table: no lost update, no duplicate.
//! - `csv_edges`: BOM, CRLF, quoted newlines and quotes, ragged rows, a 1 MB field, 10,000 columns.
//! - `serve`: `etl serve` over HTTP: every endpoint, formats, filters against `etl sql`, pages
//!   across a publication, keys, SELECT only, the cache, 429, limits, SIGTERM mid-request.
//! - `secrets`: canary credentials in no output, parameters that stay values, overlapping locations.
//! - `memory`: a run larger than its memory limit spills to disk and completes.
//! - `aws`: S3 locations and the Glue catalog end to end, on the local endpoint.
//! - `catalog_suite`: one behavioural suite, every case against the embedded catalog and Glue.
//! - `faults`: S3 and Glue through a proxy that fails, resets, truncates and delays requests.
//! - `golden`: what users read (`--help`, `schema show`, `runs`, a run report), compared whole.
//! - `checks`: checks before publication, every rule passing and failing, `etl check`; data
//!   versions, `table history`, `rollback` (locally and on Glue), retention, `version_of`.
//! - `deploy`: `deploy`'s template (pinned, its policy statement by statement, the state
//!   machine, rules, refusals) and `doctor` on the local endpoint.
//! - `delta`: Delta Lake targets: every mode one commit, merge, rollback, compaction and `gc`,
//!   a run killed after its commit, refusals; the log replayed by the test itself.
//! - `layout`: how targets lay rows out in files: stable `sort_by`, the order etl chooses, row
//!   groups, bloom filters; `compact` and `compact_after_files`.
//! - `cluster`: jobs and queries on a Ballista cluster of `etl cluster` processes, against
//!   the same commands run locally; records set apart on executors; an executor killed.
//! - `regression`: one test per bug fixed, named after what it guards.

mod util;

mod aws;
mod bad_input;
mod catalog_suite;
mod checks;
mod cluster;
mod cost;
mod crash;
mod crawl;
mod csv_edges;
mod delta;
mod deploy;
mod events;
mod faults;
mod golden;
mod infer;
mod layout;
mod memory;
mod pipeline;
mod quarantine;
mod races;
mod regression;
mod run;
mod scheduler;
mod schedules;
mod secrets;
mod serve;
mod sql;
