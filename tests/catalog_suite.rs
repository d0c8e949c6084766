//! One behavioural suite for every catalog: each case runs against the embedded catalog and
//! against Glue (on the local endpoint), and both must behave the same.

use std::sync::Arc;

use etl::catalog::glue::GlueCatalog;
use etl::catalog::journal::Journal;
use etl::catalog::local::LocalCatalog;
use etl::catalog::{
    Catalog, DataChange, DataFile, NewVersion, Partition, PartitionWrite, Publication, TableChange, TableDefinition,
    TableName, VersionChange, Work, WrittenData,
};
use etl::error::ErrorKind;
use etl::location::Location;
use etl::schema::diff::diff;
use etl::schema::{Column, GlueType, TableSchema};

use crate::util::aws;

/// A fresh catalog and a database name no other case uses.
async fn local() -> (Arc<dyn Catalog>, String, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    (Arc::new(LocalCatalog::open(home.path()).unwrap()), "db".to_string(), home)
}

async fn glue() -> Option<(Arc<dyn Catalog>, String)> {
    aws::endpoint()?;
    // A publication journals itself under the tables' locations (`s3://bucket/…` here).
    aws::create_bucket("bucket");
    Some((Arc::new(GlueCatalog::connect().await), aws::unique("suite")))
}

/// Runs a case against both catalogs.
macro_rules! both {
    ($case:ident) => {
        mod $case {
            #[tokio::test]
            async fn local() {
                let (catalog, database, _home) = super::local().await;
                super::$case(catalog, &database).await;
            }

            #[tokio::test]
            async fn glue() {
                if let Some((catalog, database)) = super::glue().await {
                    super::$case(catalog, &database).await;
                }
            }
        }
    };
}

fn schema(columns: &[(&str, &str)], keys: &[(&str, &str)]) -> TableSchema {
    let column = |(n, t): &(&str, &str)| Column::new(*n, t.parse::<GlueType>().unwrap());
    TableSchema { columns: columns.iter().map(column).collect(), partition_keys: keys.iter().map(column).collect() }
}

fn definition(schema: &TableSchema, location: &str) -> TableDefinition {
    TableDefinition::parquet(location.to_string(), schema, "snappy", "suite")
}

fn name(database: &str, table: &str) -> TableName {
    TableName::new(database, table).unwrap()
}

fn change(
    name: &TableName,
    expected: Option<u64>,
    new: Option<(&TableSchema, TableDefinition)>,
    data: DataChange,
) -> Publication {
    let new_version = new.map(|(old, definition)| NewVersion { diff: diff(old, &definition.schema()), definition });
    Publication {
        run_id: Some("run-1".into()),
        tables: vec![TableChange { name: name.clone(), expected_version: expected, new_version, data }],
    }
}

fn partition(day: &str, run: &str, tag_date: &str) -> Partition {
    let location = format!("s3://bucket/t/dt={day}/run-{run}");
    Partition {
        values: vec![Some(day.to_string())],
        files: vec![DataFile {
            path: format!("{location}/part-0.parquet"),
            size: 10,
            rows: 2,
            job: "suite".into(),
            logical_date: tag_date.into(),
            // Round-trips through each catalog: append replaces by it.
            params: format!("params(batch:Utf8={run})"),
            // As a compaction records them: rerun refusals rest on them.
            absorbed: vec![Work { job: "daily".into(), logical_date: tag_date.into(), params: String::new() }],
        }],
        location,
    }
}

fn written(upserts: Vec<Partition>, drops: Vec<Partition>) -> DataChange {
    DataChange::Written(WrittenData {
        upserts: upserts.into_iter().map(|partition| PartitionWrite { partition, based_on: None }).collect(),
        drops: drops.into_iter().map(|partition| PartitionWrite { partition, based_on: None }).collect(),
        note: Default::default(),
    })
}

both!(versions_and_history);
async fn versions_and_history(catalog: Arc<dyn Catalog>, database: &str) {
    let t = name(database, "events");
    assert!(catalog.table(&t).await.unwrap().is_none());
    let empty = TableSchema::default();
    let v1 = schema(&[("id", "bigint"), ("payload", "struct<a:string,b:array<bigint>>")], &[("dt", "date")]);
    let published = catalog
        .publish(change(&t, None, Some((&empty, definition(&v1, "s3://bucket/t"))), DataChange::None))
        .await
        .unwrap();
    assert_eq!(published.versions, vec![1]);

    let table = catalog.require(&t).await.unwrap();
    assert_eq!(table.version, 1);
    assert_eq!(table.definition, definition(&v1, "s3://bucket/t"), "the definition round-trips exactly");
    assert!(catalog.databases().await.unwrap().contains(&database.to_string()));
    assert_eq!(catalog.tables(database).await.unwrap(), vec!["events".to_string()]);

    let v2 = schema(
        &[("id", "double"), ("payload", "struct<a:string,b:array<bigint>>"), ("note", "string")],
        &[("dt", "date")],
    );
    let published = catalog
        .publish(change(&t, Some(1), Some((&v1, definition(&v2, "s3://bucket/t"))), DataChange::None))
        .await
        .unwrap();
    assert_eq!(published.versions, vec![2]);

    let versions = catalog.versions(&t).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(versions[0].change, VersionChange::Created);
    assert_eq!(versions[1].change, VersionChange::Updated);
    assert_eq!(versions[0].definition.schema(), v1);
    assert_eq!(versions[1].definition.schema(), v2);
    assert_eq!(versions[1].diff, diff(&v1, &v2));
    assert_eq!(versions[1].run_id.as_deref(), Some("run-1"));
}

both!(a_stale_or_racing_writer_gets_a_conflict);
async fn a_stale_or_racing_writer_gets_a_conflict(catalog: Arc<dyn Catalog>, database: &str) {
    let t = name(database, "t");
    let empty = TableSchema::default();
    let v1 = schema(&[("a", "bigint")], &[]);
    catalog
        .publish(change(&t, None, Some((&empty, definition(&v1, "s3://bucket/t"))), DataChange::None))
        .await
        .unwrap();
    let err = catalog
        .publish(change(&t, None, Some((&empty, definition(&v1, "s3://bucket/t"))), DataChange::None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    let v2 = schema(&[("a", "bigint"), ("b", "string")], &[]);
    catalog
        .publish(change(&t, Some(1), Some((&v1, definition(&v2, "s3://bucket/t"))), DataChange::None))
        .await
        .unwrap();
    let v3 = schema(&[("c", "date")], &[]);
    let err = catalog
        .publish(change(&t, Some(1), Some((&v1, definition(&v3, "s3://bucket/t"))), DataChange::None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("conflict on"), "{err}");
    assert_eq!(catalog.require(&t).await.unwrap().definition.schema(), v2, "the loser changed nothing");
}

both!(a_new_location_alone_keeps_the_version);
async fn a_new_location_alone_keeps_the_version(catalog: Arc<dyn Catalog>, database: &str) {
    let t = name(database, "t");
    let v1 = schema(&[("a", "bigint")], &[]);
    catalog
        .publish(change(
            &t,
            None,
            Some((&TableSchema::default(), definition(&v1, "s3://bucket/t/run-1"))),
            DataChange::None,
        ))
        .await
        .unwrap();
    let published = catalog
        .publish(change(&t, Some(1), Some((&v1, definition(&v1, "s3://bucket/t/run-2"))), DataChange::None))
        .await
        .unwrap();
    assert_eq!(published.versions, vec![1]);
    let table = catalog.require(&t).await.unwrap();
    assert_eq!((table.version, table.definition.location.as_str()), (1, "s3://bucket/t/run-2"));
    assert_eq!(catalog.versions(&t).await.unwrap().len(), 1);
}

both!(written_partitions_switch_and_report_what_they_replaced);
async fn written_partitions_switch_and_report_what_they_replaced(catalog: Arc<dyn Catalog>, database: &str) {
    let t = name(database, "t");
    let v1 = schema(&[("a", "bigint")], &[("dt", "string")]);
    let created = change(
        &t,
        None,
        Some((&TableSchema::default(), definition(&v1, "s3://bucket/t"))),
        written(vec![partition("a", "r1", "d1"), partition("b", "r1", "d1")], vec![]),
    );
    assert!(catalog.publish(created).await.unwrap().replaced.is_empty());

    let second = catalog
        .publish(change(
            &t,
            Some(1),
            None,
            written(vec![partition("b", "r2", "d2"), partition("c", "r2", "d2")], vec![partition("a", "r1", "d1")]),
        ))
        .await
        .unwrap();
    let mut replaced: Vec<String> = second.replaced.iter().map(|p| p.location.clone()).collect();
    replaced.sort();
    assert_eq!(replaced, ["s3://bucket/t/dt=a/run-r1", "s3://bucket/t/dt=b/run-r1"]);
    assert!(second.replaced.iter().all(|p| p.files.len() == 1), "replaced partitions come with their files");

    let partitions = catalog.partitions(&t).await.unwrap();
    let seen: Vec<(Option<String>, String)> =
        partitions.iter().map(|p| (p.values[0].clone(), p.location.clone())).collect();
    assert_eq!(
        seen,
        vec![
            (Some("b".into()), "s3://bucket/t/dt=b/run-r2".into()),
            (Some("c".into()), "s3://bucket/t/dt=c/run-r2".into())
        ]
    );
    assert_eq!(
        partitions[0].files,
        partition("b", "r2", "d2").files,
        "each partition lists its files and who wrote them"
    );
}

both!(a_partition_changed_under_an_append_is_a_conflict);
async fn a_partition_changed_under_an_append_is_a_conflict(catalog: Arc<dyn Catalog>, database: &str) {
    let t = name(database, "t");
    let v1 = schema(&[("a", "bigint")], &[("dt", "string")]);
    catalog
        .publish(change(
            &t,
            None,
            Some((&TableSchema::default(), definition(&v1, "s3://bucket/t"))),
            written(vec![partition("a", "r1", "d1")], vec![]),
        ))
        .await
        .unwrap();
    let append = |run: &str| {
        let data = DataChange::Written(WrittenData {
            upserts: vec![PartitionWrite {
                partition: partition("a", run, "d2"),
                based_on: Some(Some("s3://bucket/t/dt=a/run-r1".into())),
            }],
            drops: vec![],
            note: Default::default(),
        });
        change(&t, Some(1), None, data)
    };
    catalog.publish(append("r2")).await.unwrap();
    let err = catalog.publish(append("r3")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(catalog.partitions(&t).await.unwrap()[0].location, "s3://bucket/t/dt=a/run-r2");
}

both!(an_unpartitioned_written_table_lists_its_files);
async fn an_unpartitioned_written_table_lists_its_files(catalog: Arc<dyn Catalog>, database: &str) {
    let t = name(database, "flat");
    let v1 = schema(&[("a", "bigint")], &[]);
    let files = |run: &str| Partition {
        values: vec![],
        location: format!("s3://bucket/flat/run-{run}"),
        files: vec![DataFile {
            path: format!("s3://bucket/flat/run-{run}/part-0.parquet"),
            size: 5,
            rows: 1,
            job: "suite".into(),
            logical_date: "d".into(),
            ..DataFile::default()
        }],
    };
    catalog
        .publish(change(
            &t,
            None,
            Some((&TableSchema::default(), definition(&v1, "s3://bucket/flat/run-r1"))),
            written(vec![files("r1")], vec![]),
        ))
        .await
        .unwrap();
    let published = catalog
        .publish(change(
            &t,
            Some(1),
            Some((&v1, definition(&v1, "s3://bucket/flat/run-r2"))),
            written(vec![files("r2")], vec![]),
        ))
        .await
        .unwrap();
    assert_eq!(published.versions, vec![1]);
    assert_eq!(published.replaced.iter().map(|p| p.location.as_str()).collect::<Vec<_>>(), ["s3://bucket/flat/run-r1"]);
    let partitions = catalog.partitions(&t).await.unwrap();
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].files, files("r2").files);
}

both!(crawled_partitions_follow_what_exists_in_batches);
async fn crawled_partitions_follow_what_exists_in_batches(catalog: Arc<dyn Catalog>, database: &str) {
    let t = name(database, "raw");
    let v1 = schema(&[("a", "bigint")], &[("day", "bigint")]);
    let found = |days: std::ops::Range<u32>| DataChange::Discovered {
        partitions: days
            .map(|d| Partition {
                values: vec![Some(d.to_string())],
                location: format!("s3://bucket/raw/day={d}"),
                files: vec![],
            })
            .collect(),
        complete: true,
    };
    // More partitions than one Glue batch call takes.
    catalog
        .publish(change(&t, None, Some((&TableSchema::default(), definition(&v1, "s3://bucket/raw"))), found(0..230)))
        .await
        .unwrap();
    assert_eq!(catalog.partitions(&t).await.unwrap().len(), 230);
    catalog.publish(change(&t, Some(1), None, found(200..260))).await.unwrap();
    let partitions = catalog.partitions(&t).await.unwrap();
    assert_eq!(partitions.len(), 60);
    let mut days: Vec<u32> = partitions.iter().map(|p| p.values[0].as_ref().unwrap().parse().unwrap()).collect();
    days.sort();
    assert_eq!((days[0], days[59]), (200, 259));
}

both!(a_crawl_finding_the_schema_another_crawl_recorded_is_no_conflict);
async fn a_crawl_finding_the_schema_another_crawl_recorded_is_no_conflict(catalog: Arc<dyn Catalog>, database: &str) {
    let t = name(database, "shared");
    let found = || DataChange::Discovered { partitions: vec![], complete: true };
    let v1 = schema(&[("a", "bigint")], &[]);
    let v2 = schema(&[("a", "bigint"), ("b", "string")], &[]);
    let crawl = |expected, old: &TableSchema, new: &TableSchema| {
        change(&t, expected, Some((old, definition(new, "s3://bucket/shared"))), found())
    };
    // Two runs crawl the new source, then the changed one; each second one finds its schema.
    catalog.publish(crawl(None, &TableSchema::default(), &v1)).await.unwrap();
    assert_eq!(catalog.publish(crawl(None, &TableSchema::default(), &v1)).await.unwrap().versions, vec![1]);
    catalog.publish(crawl(Some(1), &v1, &v2)).await.unwrap();
    assert_eq!(catalog.publish(crawl(Some(1), &v1, &v2)).await.unwrap().versions, vec![2]);
    let other = schema(&[("c", "date")], &[]);
    let error = catalog.publish(crawl(Some(1), &v1, &other)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert_eq!(catalog.versions(&t).await.unwrap().len(), 2);
}

both!(missing_tables_are_none_and_not_found);
async fn missing_tables_are_none_and_not_found(catalog: Arc<dyn Catalog>, database: &str) {
    let t = name(database, "nope");
    assert!(catalog.table(&t).await.unwrap().is_none());
    let err = catalog.require(&t).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains(&format!("table {database}.nope does not exist")), "{err}");
    assert!(catalog.partitions(&t).await.unwrap().is_empty());
}

/// A publication committed to its journal but never applied (its run was killed) is finished
/// by the next reader of one of its tables, and only of its tables: another table that shares
/// the location reads what the catalog has and leaves the journal alone.
#[tokio::test]
async fn readers_finish_only_the_publications_of_their_table() {
    let Some((catalog, database)) = glue().await else { return };
    let (a, b) = (name(&database, "a"), name(&database, "b"));
    let root = format!("s3://bucket/{database}/shared");
    let v1 = schema(&[("x", "bigint")], &[]);
    for table in [&a, &b] {
        let first = definition(&v1, &format!("{root}/run-0"));
        catalog.publish(change(table, None, Some((&TableSchema::default(), first)), DataChange::None)).await.unwrap();
    }
    let killed = change(&a, Some(1), Some((&v1, definition(&v1, &format!("{root}/run-9")))), DataChange::None);
    let journal_root = Location::parse(&root).unwrap();
    Journal::begin(&killed, std::slice::from_ref(&journal_root)).await.unwrap();

    let location = |table: Option<etl::catalog::Table>| table.unwrap().definition.location;
    assert_eq!(location(catalog.table(&b).await.unwrap()), format!("{root}/run-0"));
    assert_eq!(Journal::committed(&journal_root).await.unwrap().len(), 1, "b's reader left a's publication");
    assert_eq!(location(catalog.table(&a).await.unwrap()), format!("{root}/run-9"), "a's reader finished it");
    assert!(Journal::committed(&journal_root).await.unwrap().is_empty());
}
