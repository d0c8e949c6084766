//! Criterion benches of the hot paths we own (the peers' side of the story is `harness.py`):
//!
//! - inference: a 1 MiB CSV sample and a 1 MiB NDJSON sample, each inferred on its own, and a
//!   folder of 2,000 small NDJSON files inferred and unified end to end (W4's path);
//! - the commit: planning and publishing, in the embedded catalog, a run that rewrites 1,000 of
//!   a table's 2,000 partitions;
//! - the cost estimator: a query over a 1,000-file Parquet table, footers cached (W5 warm).
//!
//! `cargo bench --bench hot_paths` (the data is made in a temporary folder first).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use etl::catalog::crawl;
use etl::catalog::crawl::OnSchemaChange;
use etl::catalog::local::LocalCatalog;
use etl::catalog::{
    Catalog, DataChange, DataFile, NewVersion, Partition, PartitionWrite, Publication, TableChange, TableDefinition,
    TableName, WrittenData,
};
use etl::cost::estimate::Estimator;
use etl::cost::footers::FooterCache;
use etl::infer::csv::CsvHints;
use etl::infer::{InferOptions, csv, infer, json};
use etl::location::Location;
use etl::schema::diff::diff;
use etl::schema::{Column, GlueType, TableSchema};
use etl::transform::params::Params;
use etl::transform::script::{Statement, plan_statement};
use etl::transform::session::session;

const SAMPLE_BYTES: usize = 1 << 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

fn csv_sample() -> Vec<u8> {
    let mut text = String::from("order_id,customer,amount,ordered_at,day,note,flag\n");
    let mut i = 0u64;
    while text.len() < SAMPLE_BYTES {
        text.push_str(&format!(
            "{i},C{:05},{}.{:02},2026-11-{:02} 10:{:02}:00,2026-11-{:02},\"note, {i}\",{}\n",
            i % 9973,
            i % 1000,
            i % 100,
            i % 28 + 1,
            i % 60,
            i % 28 + 1,
            i % 2 == 0
        ));
        i += 1;
    }
    text.into_bytes()
}

fn ndjson_sample() -> Vec<u8> {
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < SAMPLE_BYTES {
        text.push_str(&format!(
            "{{\"id\":{i},\"amount\":{}.5,\"user\":{{\"name\":\"u{}\",\"tier\":{}}},\"tags\":[\"a\",\"b\"],\"at\":\"2026-11-{:02}T10:00:00Z\"}}\n",
            i % 1000,
            i % 97,
            i % 3,
            i % 28 + 1
        ));
        i += 1;
    }
    text.into_bytes()
}

fn inference(c: &mut Criterion) {
    let mut group = c.benchmark_group("inference");
    let sample = csv_sample();
    group.throughput(Throughput::Bytes(sample.len() as u64));
    let hints = CsvHints { delimiter: None, header: None, null_values: &[], sample_rows: 0 };
    group.bench_function("csv 1 MiB sample", |b| {
        b.iter(|| csv::infer(black_box(&sample), true, "bench.csv", &hints).unwrap())
    });
    let sample = ndjson_sample();
    group.throughput(Throughput::Bytes(sample.len() as u64));
    group.bench_function("ndjson 1 MiB sample", |b| {
        b.iter(|| json::infer(black_box(&sample), true, "bench.json", 0).unwrap())
    });

    // 2,000 files of 200 records: an optional field, ints that become floats, a nested object.
    let folder = tempfile::tempdir().unwrap();
    for file in 0..2000 {
        let mut text = String::new();
        for row in 0..200 {
            let amount = if file < 1000 { format!("{row}") } else { format!("{row}.25") };
            let coupon = if row % 3 == 0 { format!(",\"coupon\":\"c{row}\"") } else { String::new() };
            text.push_str(&format!(
                "{{\"id\":{},\"amount\":{amount},\"device\":{{\"os\":\"linux\",\"version\":{}}}{coupon}}}\n",
                file * 200 + row,
                row % 7
            ));
        }
        std::fs::write(folder.path().join(format!("events-{file:04}.json")), text).unwrap();
    }
    group.throughput(Throughput::Elements(2000));
    group.sample_size(10);
    let rt = runtime();
    let location = Location::parse(&folder.path().to_string_lossy()).unwrap();
    group.bench_function("2,000 ndjson files, unified", |b| {
        b.iter(|| rt.block_on(infer(&location, &InferOptions::default())).unwrap())
    });
    group.finish();
}

fn partition(day: usize, run: &str) -> Partition {
    let location = format!("s3://bucket/t/day={day}/run-{run}");
    Partition {
        values: vec![Some(day.to_string())],
        files: (0..4)
            .map(|n| DataFile {
                path: format!("{location}/part-{run}-{n:05}.zstd.parquet"),
                size: 1 << 20,
                rows: 100_000,
                job: "bench".into(),
                logical_date: "2026-11-30".into(),
            })
            .collect(),
        location,
    }
}

fn write_of(days: std::ops::Range<usize>, run: &str) -> DataChange {
    DataChange::Written(WrittenData {
        upserts: days.map(|d| PartitionWrite { partition: partition(d, run), based_on: None }).collect(),
        drops: Vec::new(),
    })
}

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.sample_size(10);
    let rt = runtime();
    let home = tempfile::tempdir().unwrap();
    let catalog = LocalCatalog::open(home.path()).unwrap();
    let name = TableName::new("bench", "t").unwrap();
    let schema = TableSchema {
        columns: vec![Column::new("id", GlueType::BigInt), Column::new("amount", GlueType::Double)],
        partition_keys: vec![Column::new("day", GlueType::String)],
    };
    let definition = TableDefinition::parquet("s3://bucket/t".into(), &schema, "zstd", "bench");
    let created = Publication {
        run_id: Some("r0".into()),
        tables: vec![TableChange {
            name: name.clone(),
            expected_version: None,
            new_version: Some(NewVersion { diff: diff(&TableSchema::default(), &schema), definition }),
            data: write_of(0..2000, "r0"),
        }],
    };
    rt.block_on(catalog.publish(created)).unwrap();
    group.throughput(Throughput::Elements(1000));
    let mut run = 0;
    group.bench_function("publish 1,000 of 2,000 partitions", |b| {
        b.iter(|| {
            run += 1;
            let publication = Publication {
                run_id: Some(format!("r{run}")),
                tables: vec![TableChange {
                    name: name.clone(),
                    expected_version: Some(1),
                    new_version: None,
                    data: write_of(500..1500, &format!("r{run}")),
                }],
            };
            rt.block_on(catalog.publish(publication)).unwrap()
        })
    });
    group.bench_function("read 2,000 partitions and their files", |b| {
        b.iter(|| rt.block_on(catalog.partitions(&name)).unwrap())
    });
    group.finish();
}

fn cost_estimator(c: &mut Criterion) {
    let mut group = c.benchmark_group("cost estimator");
    group.sample_size(20);
    let rt = runtime();
    let folder = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("note", DataType::Utf8, false),
    ]));
    for file in 0..1000i64 {
        let day = folder.path().join(format!("events/day={}", file / 10));
        std::fs::create_dir_all(&day).unwrap();
        let ids: Vec<i64> = (file * 100..file * 100 + 100).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(Float64Array::from(ids.iter().map(|i| *i as f64 * 0.5).collect::<Vec<_>>())),
                Arc::new(StringArray::from(ids.iter().map(|i| format!("n{i}")).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(day.join("part.parquet")).unwrap(), schema.clone(), None)
                .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
    let home = folder.path().join("home");
    let catalog: Arc<dyn Catalog> = Arc::new(LocalCatalog::open(&home).unwrap());
    let table = TableName::new("bench", "events").unwrap();
    let location = Location::parse(&folder.path().join("events").to_string_lossy()).unwrap();
    let estimator = Estimator { footers: Arc::new(FooterCache::in_memory()), price_per_tb: 5.0 };
    let (ctx, plan) = rt.block_on(async {
        let crawled =
            crawl::plan(catalog.as_ref(), &table, &location, &InferOptions::default(), OnSchemaChange::Update)
                .await
                .unwrap();
        catalog.publish(Publication { run_id: None, tables: vec![crawled.table_change] }).await.unwrap();
        let ctx = session(catalog.clone(), Default::default(), &Default::default()).await.unwrap();
        let statement =
            Statement { text: "SELECT sum(amount) FROM bench.events WHERE day >= 20 AND id < 50000".into(), line: 1 };
        let plan = plan_statement(&ctx, "bench", &statement, &Params::default()).await.unwrap();
        estimator.estimate(&ctx.state(), &plan).await.unwrap();
        (ctx, plan)
    });
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1,000 files, footers cached", |b| {
        b.iter(|| rt.block_on(estimator.estimate(&ctx.state(), &plan)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, inference, commit, cost_estimator);
criterion_main!(benches);
