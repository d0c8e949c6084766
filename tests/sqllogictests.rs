//! SQL behaviour as sqllogictest files: every `sql/*.slt` runs in its own session over its own
//! catalog, in which the example's input (`data/orders`, `data/customers`) and the fixtures
//! (`data/fixtures/NAME`, as `fixtures.NAME`) were crawled, and where `written.items` was
//! published three times (versions 1 to 3, for `version_of`). Statements go through the same
//! path as a job's SQL (parsing, parameter binding, errors), with the built-in parameters of a
//! run on 2026-11-30 and `$region = 'eu'`.
//!
//! Run one file: `cargo test --test sqllogictests -- types`. Rewrite the expected output of
//! every file (or of those named) from what the engine gives now, as DataFusion's runner
//! does: `cargo test --test sqllogictests -- --complete [types]`; then read the diff.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use etl::catalog::crawl::OnSchemaChange;
use etl::catalog::local::LocalCatalog;
use etl::catalog::{Catalog, Publication, Work};
use etl::error::Error;
use etl::infer::InferOptions;
use etl::location::Location;
use etl::transform::params::Params;
use etl::transform::script::{Statement, run_statement};
use etl::transform::session::{EngineOptions, session};
use sqllogictest::{DBOutput, DefaultColumnType};

struct Etl {
    context: SessionContext,
    params: Params,
}

#[async_trait]
impl sqllogictest::AsyncDB for Etl {
    type Error = Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Error> {
        let statement = Statement { text: sql.to_string(), line: 1 };
        let frame = run_statement(&self.context, "slt", &statement, &self.params).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema.fields().iter().map(|f| column_type(f.data_type())).collect();
        Ok(DBOutput::Rows { types, rows: rows(&batches)? })
    }

    async fn shutdown(&mut self) {}
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    match data_type {
        t if t.is_integer() => DefaultColumnType::Integer,
        t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, Error> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| {
                        let text = f.value(row).to_string();
                        if text.is_empty() { "(empty)".to_string() } else { text }
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// A catalog with the example's input and the fixtures crawled into it.
async fn catalog(home: &Path, data: &Path) -> Arc<dyn Catalog> {
    let catalog: Arc<dyn Catalog> = Arc::new(LocalCatalog::open(home).unwrap());
    let mut tables =
        vec![("raw.orders".to_string(), data.join("orders")), ("raw.customers".to_string(), data.join("customers"))];
    for entry in std::fs::read_dir(data.join("fixtures")).unwrap().flatten() {
        tables.push((format!("fixtures.{}", entry.file_name().to_string_lossy()), entry.path()));
    }
    for (name, path) in tables {
        let location = Location::parse(&path.to_string_lossy()).unwrap();
        let plan = etl::catalog::crawl::plan(
            catalog.as_ref(),
            &name.parse().unwrap(),
            &location,
            &InferOptions::default(),
            OnSchemaChange::Update,
        )
        .await
        .unwrap_or_else(|e| panic!("crawling {name}: {e}"));
        catalog.publish(Publication { run_id: None, tables: vec![plan.table_change] }).await.unwrap();
    }
    publish_versions(catalog.as_ref(), home).await;
    catalog
}

struct NoRunLive;

impl etl::sink::RunLiveness for NoRunLive {
    fn is_live(&self, _: &str) -> bool {
        false
    }
}

/// `written.items`, overwritten three times: (1 a, 2 b), then (3 a), then (4 c, 5 c).
async fn publish_versions(catalog: &dyn Catalog, home: &Path) {
    let target = etl::sink::TargetSpec {
        table: "written.items".parse().unwrap(),
        query: String::new(),
        location: Location::parse(&home.join("items").to_string_lossy()).unwrap(),
        partition_by: vec!["k".into()],
        mode: etl::catalog::WriteMode::Overwrite,
        compression: etl::sink::ParquetCompression::Zstd,
        encryption: Default::default(),
        checks: Vec::new(),
        retain_versions: 5,
        layout: Default::default(),
        format: Default::default(),
        merge: None,
        data_change: true,
    };
    let versions = [
        "SELECT CAST(1 AS BIGINT) AS id, 'a' AS k UNION ALL SELECT 2, 'b'",
        "SELECT CAST(3 AS BIGINT) AS id, 'a' AS k",
        "SELECT CAST(4 AS BIGINT) AS id, 'c' AS k UNION ALL SELECT 5, 'c'",
    ];
    for (i, sql) in versions.iter().enumerate() {
        let run = format!("r{i}");
        let work = Work { job: "slt".into(), logical_date: "2026-11-30".into(), params: String::new() };
        let tag = etl::sink::WriteTag { work, rerun_replaces: true };
        let mut commit = etl::sink::Commit::new(&run, tag);
        let frame = SessionContext::new().sql(sql).await.unwrap();
        commit.stage(catalog, frame, &target, &NoRunLive).await.unwrap();
        commit.publish(catalog, Vec::new()).await.unwrap();
        commit.clean_up(catalog, &NoRunLive).await;
        commit.close().await;
    }
}

/// Runs a file, or with `complete` rewrites its expected results and errors.
async fn run_file(file: &Path, data: &Path, complete: bool) -> Result<(), String> {
    let home = tempfile::tempdir().unwrap();
    let catalog = catalog(home.path(), data).await;
    let mut params = Params::default().with_built_ins(chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(), "slt");
    params.set("region", ScalarValue::Utf8(Some("eu".into())));
    let context = session(catalog, Default::default(), &EngineOptions::default()).await.unwrap();
    let mut runner = sqllogictest::Runner::new(move || {
        let context = context.clone();
        let params = params.clone();
        async move { Ok::<_, Error>(Etl { context, params }) }
    });
    if complete {
        return runner
            .update_test_file(
                file,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| e.to_string());
    }
    runner.run_file_async(file).await.map_err(|e| e.display(true).to_string())
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let complete = std::env::args().any(|a| a == "--complete");
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("sql"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| filter.is_empty() || filter.iter().any(|f| p.to_string_lossy().contains(f.as_str())))
        .collect();
    files.sort();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut failed = 0;
    for file in &files {
        match runtime.block_on(run_file(file, &root.join("data"), complete)) {
            Ok(()) if complete => println!("completed {}", file.display()),
            Ok(()) => println!("ok      {}", file.display()),
            Err(e) => {
                failed += 1;
                println!("FAILED  {}\n{e}", file.display());
            }
        }
    }
    println!("{} sqllogictest files, {failed} failed", files.len());
    if failed > 0 {
        std::process::exit(1);
    }
}
