//! The embedded catalog: Glue's semantics in a SQLite database under `$ETL_HOME`.
//!
//! SQLite gives what the catalog promises without code of ours to get wrong: a crash never
//! leaves it unreadable (write-ahead log, full sync), several processes can share it (a
//! publication takes the write lock with `BEGIN IMMEDIATE`), and one transaction covers every
//! table a run publishes.
//!
//! A written table's partitions list their files. A publication points partitions at the
//! new run's folders in one transaction: before it, readers see the old files; after it, the
//! new ones. It returns what it replaced, whose files the writer then keeps for rollback or
//! deletes. The same transaction records the table's new data version, with a snapshot of
//! its partitions and their files.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Catalog, DataChange, DataFile, DataVersion, Partition, PartitionWrite, Publication, Published, Table, TableChange,
    TableDefinition, TableName, TableVersion, VersionChange, Work, conflict,
};
use crate::error::{Error, Result, ResultExt};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS databases (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tables (
    database TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (database, name)
);
CREATE TABLE IF NOT EXISTS table_versions (
    database TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    run_id TEXT,
    change TEXT NOT NULL,
    diff TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (database, name, version)
);
CREATE TABLE IF NOT EXISTS partitions (
    database TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    location TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (database, name, spec)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    database TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    size INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    job TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '',
    absorbed TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS files_by_table ON files (database, name, spec);
-- Every publication of a written table's data: what it recorded (a DataVersion, as JSON) and
-- the table's partitions after it, files included (for rollback and time travel).
CREATE TABLE IF NOT EXISTS data_versions (
    database TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    summary TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    PRIMARY KEY (database, name, version)
);
";

#[derive(Debug)]
pub struct LocalCatalog {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl LocalCatalog {
    pub fn open(home: &Path) -> Result<Self> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = home.join("catalog.sqlite");
        let connection = crate::sqlite::open(&path, SCHEMA, true)?;
        add_files_columns(&connection)?;
        Ok(LocalCatalog { path, connection: Mutex::new(connection) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, work: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        work(&mut connection)
    }
}

/// Catalogs made before files recorded their run's parameters, or the works a compacted file
/// absorbed, get the columns, empty: such a file is replaced by any rerun of its job and date,
/// as it was then, and absorbed nothing the catalog knows of.
fn add_files_columns(connection: &Connection) -> Result<()> {
    for column in ["params", "absorbed"] {
        if !has_files_column(connection, column)? {
            connection.execute_batch(&format!("ALTER TABLE files ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"))?;
        }
    }
    Ok(())
}

fn has_files_column(connection: &Connection, column: &str) -> Result<bool> {
    Ok(connection.prepare("SELECT 1 FROM pragma_table_info('files') WHERE name = ?1")?.exists([column])?)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_time(text: String) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn spec_key(values: &[Option<String>]) -> String {
    serde_json::to_string(values).expect("strings serialize")
}

fn definition_from(text: String) -> rusqlite::Result<TableDefinition> {
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

#[async_trait]
impl Catalog for LocalCatalog {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn databases(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT name FROM databases ORDER BY name")?;
            Ok(statement.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    async fn tables(&self, database: &str) -> Result<Vec<String>> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT name FROM tables WHERE database = ?1 ORDER BY name")?;
            Ok(statement.query_map([database], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    async fn table(&self, name: &TableName) -> Result<Option<Table>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT version, definition, created_at, updated_at FROM tables WHERE database = ?1 AND name = ?2",
                params![name.database, name.table],
                |r| {
                    Ok(Table {
                        name: name.clone(),
                        version: r.get::<_, i64>(0)? as u64,
                        definition: definition_from(r.get(1)?)?,
                        created_at: parse_time(r.get(2)?),
                        updated_at: parse_time(r.get(3)?),
                    })
                },
            )
            .optional()?)
        })
    }

    async fn versions(&self, name: &TableName) -> Result<Vec<TableVersion>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT version, created_at, run_id, change, diff, definition FROM table_versions
                 WHERE database = ?1 AND name = ?2 ORDER BY version",
            )?;
            let versions = statement
                .query_map(params![name.database, name.table], |r| {
                    let change: String = r.get(3)?;
                    let diff: String = r.get(4)?;
                    Ok(TableVersion {
                        version: r.get::<_, i64>(0)? as u64,
                        created_at: parse_time(r.get(1)?),
                        run_id: r.get(2)?,
                        change: if change == "created" { VersionChange::Created } else { VersionChange::Updated },
                        diff: serde_json::from_str(&diff).unwrap_or_default(),
                        definition: definition_from(r.get(5)?)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(versions)
        })
    }

    async fn partitions(&self, name: &TableName) -> Result<Vec<Partition>> {
        self.with(|c| all_partitions(c, name))
    }

    async fn data_versions(&self, name: &TableName) -> Result<Vec<DataVersion>> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT summary FROM data_versions WHERE database = ?1 AND name = ?2 ORDER BY version")?;
            let summaries = statement
                .query_map(params![name.database, name.table], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            summaries.iter().map(|s| Ok(serde_json::from_str(s)?)).collect()
        })
    }

    async fn snapshot(&self, name: &TableName, version: u64) -> Result<Vec<Partition>> {
        let text: Option<String> = self.with(|c| {
            Ok(c.query_row(
                "SELECT snapshot FROM data_versions WHERE database = ?1 AND name = ?2 AND version = ?3",
                params![name.database, name.table, version as i64],
                |r| r.get(0),
            )
            .optional()?)
        })?;
        let text = text.ok_or_else(|| Error::not_found(format!("{name} has no version {version}")))?;
        Ok(serde_json::from_str(&text)?)
    }

    async fn publish(&self, publication: Publication) -> Result<Published> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now();
            let mut published = Published::default();
            for change in &publication.tables {
                let version = apply_definition(&tx, change, publication.run_id.as_deref(), &now)?;
                published.versions.push(version);
                apply_data(&tx, change, &now, &mut published)?;
                let data_version = record_data_version(&tx, change, publication.run_id.as_deref(), version)?;
                published.data_versions.push(data_version);
            }
            crate::kill_points::reached("catalog.commit");
            tx.commit()?;
            Ok(published)
        })
    }
}

/// Checks the version a change builds on and records its definition; returns the table's
/// version after it.
fn apply_definition(tx: &rusqlite::Transaction, change: &TableChange, run_id: Option<&str>, now: &str) -> Result<u64> {
    let name = &change.name;
    let current: Option<(u64, String)> = tx
        .query_row(
            "SELECT version, definition FROM tables WHERE database = ?1 AND name = ?2",
            params![name.database, name.table],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
        )
        .optional()?;
    let current_version = current.as_ref().map(|(v, _)| *v);
    if current_version != change.expected_version {
        let current_definition = current.as_ref().map(|(_, d)| serde_json::from_str(d)).transpose()?;
        if let (Some(version), true) = (current_version, change.crawled_as(current_definition.as_ref())) {
            // Another run crawling this source recorded this very schema first: nothing
            // conflicts, the table is as this run would leave it.
            return Ok(version);
        }
        return Err(conflict(name, change.expected_version, current_version));
    }
    let mut version = current_version.unwrap_or(0);
    let Some(new) = &change.new_version else {
        if current.is_none() {
            return Err(Error::runtime(format!("publishing {name}: a new table needs a definition")));
        }
        if !matches!(change.data, DataChange::None) {
            // A change of data alone is an update of the table too, as Glue's UpdateTime says:
            // readers that cache by it (the server) see the new data at once.
            tx.execute(
                "UPDATE tables SET updated_at = ?3 WHERE database = ?1 AND name = ?2",
                params![name.database, name.table, now],
            )?;
        }
        return Ok(version);
    };
    let definition = serde_json::to_string(&new.definition)?;
    let old = current.as_ref().map(|(_, d)| serde_json::from_str::<TableDefinition>(d)).transpose()?;
    if old.as_ref().is_none_or(|old| new.definition.is_new_version_of(old)) {
        version += 1;
        let kind = if current.is_none() { VersionChange::Created } else { VersionChange::Updated };
        tx.execute("INSERT OR IGNORE INTO databases (name, created_at) VALUES (?1, ?2)", params![name.database, now])?;
        tx.execute(
            "INSERT INTO table_versions (database, name, version, created_at, run_id, change, diff, definition)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                name.database,
                name.table,
                version as i64,
                now,
                run_id,
                kind.as_str(),
                serde_json::to_string(&new.diff)?,
                definition
            ],
        )?;
    }
    tx.execute(
        "INSERT INTO tables (database, name, version, definition, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (database, name) DO UPDATE SET version = ?3, definition = ?4, updated_at = ?5",
        params![name.database, name.table, version as i64, definition, now],
    )?;
    Ok(version)
}

/// Records a change's partitions (and a written table's files); what it replaced goes to
/// `published`.
fn apply_data(tx: &rusqlite::Transaction, change: &TableChange, now: &str, published: &mut Published) -> Result<()> {
    let name = &change.name;
    match &change.data {
        DataChange::None => {}
        DataChange::Discovered { partitions, complete } => {
            if *complete {
                tx.execute(
                    "DELETE FROM partitions WHERE database = ?1 AND name = ?2",
                    params![name.database, name.table],
                )?;
            }
            for partition in partitions {
                tx.execute(
                    "INSERT OR REPLACE INTO partitions (database, name, spec, location, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![name.database, name.table, spec_key(&partition.values), partition.location, now],
                )?;
            }
        }
        DataChange::Written(written) => {
            for write in written.upserts.iter().chain(&written.drops) {
                if let Some(old) = take_partition(tx, name, write)? {
                    published.replaced.push(old);
                }
            }
            for write in &written.upserts {
                let partition = &write.partition;
                let spec = spec_key(&partition.values);
                tx.execute(
                    "INSERT INTO partitions (database, name, spec, location, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![name.database, name.table, spec, partition.location, now],
                )?;
                for file in &partition.files {
                    tx.execute(
                        "INSERT INTO files (path, database, name, spec, size, rows, job, logical_date, params, absorbed)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            file.path,
                            name.database,
                            name.table,
                            spec,
                            file.size as i64,
                            file.rows as i64,
                            file.job,
                            file.logical_date,
                            file.params,
                            absorbed_text(&file.absorbed)?
                        ],
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Every partition of a table, with its files.
fn all_partitions(c: &Connection, name: &TableName) -> Result<Vec<Partition>> {
    let mut statement =
        c.prepare_cached("SELECT spec, location FROM partitions WHERE database = ?1 AND name = ?2 ORDER BY spec")?;
    let partitions = statement
        .query_map(params![name.database, name.table], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(partitions.len());
    for (spec, location) in partitions {
        let files = partition_files(c, name, &spec)?;
        out.push(Partition { values: serde_json::from_str(&spec)?, location, files });
    }
    Ok(out)
}

/// After a written change is applied: the table's next data version, with the partitions it
/// now has.
fn record_data_version(
    tx: &rusqlite::Transaction,
    change: &TableChange,
    run_id: Option<&str>,
    schema_version: u64,
) -> Result<Option<u64>> {
    let DataChange::Written(written) = &change.data else {
        return Ok(None);
    };
    let name = &change.name;
    let last: i64 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM data_versions WHERE database = ?1 AND name = ?2",
        params![name.database, name.table],
        |r| r.get(0),
    )?;
    let version = last as u64 + 1;
    let partitions = all_partitions(tx, name)?;
    let summary =
        DataVersion::of(version, run_id.map(str::to_string), Utc::now(), schema_version, &written.note, &partitions);
    tx.execute(
        "INSERT INTO data_versions (database, name, version, summary, snapshot) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            name.database,
            name.table,
            version as i64,
            serde_json::to_string(&summary)?,
            serde_json::to_string(&partitions)?
        ],
    )?;
    Ok(Some(version))
}

/// The files of a written table's partition, by path.
fn partition_files(c: &Connection, name: &TableName, spec: &str) -> Result<Vec<DataFile>> {
    let mut statement = c.prepare_cached(
        "SELECT path, size, rows, job, logical_date, params, absorbed FROM files
         WHERE database = ?1 AND name = ?2 AND spec = ?3 ORDER BY path",
    )?;
    let files = statement
        .query_map(params![name.database, name.table, spec], |r| {
            let file = DataFile {
                path: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
                rows: r.get::<_, i64>(2)? as u64,
                job: r.get(3)?,
                logical_date: r.get(4)?,
                params: r.get(5)?,
                absorbed: Vec::new(),
            };
            Ok((file, r.get::<_, String>(6)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    files
        .into_iter()
        .map(|(file, absorbed)| match absorbed.is_empty() {
            true => Ok(file),
            false => {
                let absorbed =
                    super::absorbed_by_job::deserialize(serde_json::from_str::<serde_json::Value>(&absorbed)?)?;
                Ok(DataFile { absorbed, ..file })
            }
        })
        .collect()
}

/// The works a compacted file absorbed, as the `absorbed` column holds them (JSON, as in the
/// versions' snapshots; empty for none).
fn absorbed_text(absorbed: &[Work]) -> Result<String> {
    if absorbed.is_empty() {
        return Ok(String::new());
    }
    Ok(super::absorbed_by_job::serialize(absorbed, serde_json::value::Serializer)?.to_string())
}

/// Removes a partition (and its files) that a write replaces, checking it is the one the
/// writer based its change on; returns what was there.
fn take_partition(tx: &rusqlite::Transaction, name: &TableName, write: &PartitionWrite) -> Result<Option<Partition>> {
    let spec = spec_key(&write.partition.values);
    let location: Option<String> = tx
        .query_row(
            "SELECT location FROM partitions WHERE database = ?1 AND name = ?2 AND spec = ?3",
            params![name.database, name.table, spec],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(expected) = &write.based_on {
        if *expected != location {
            return Err(Error::conflict(format!(
                "conflict on {name}: partition {spec} changed while this run wrote it (another run published it first); nothing was published"
            )));
        }
    }
    let Some(location) = location else {
        return Ok(None);
    };
    let files = partition_files(tx, name, &spec)?;
    tx.execute(
        "DELETE FROM files WHERE database = ?1 AND name = ?2 AND spec = ?3",
        params![name.database, name.table, spec],
    )?;
    tx.execute(
        "DELETE FROM partitions WHERE database = ?1 AND name = ?2 AND spec = ?3",
        params![name.database, name.table, spec],
    )?;
    Ok(Some(Partition { values: write.partition.values.clone(), location, files }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{NewVersion, TableChange, WrittenData};
    use crate::schema::{Column, GlueType, TableSchema};

    fn definition(columns: &[(&str, GlueType)]) -> TableDefinition {
        let schema = TableSchema {
            columns: columns.iter().map(|(n, t)| Column::new(*n, t.clone())).collect(),
            partition_keys: vec![Column::new("dt", GlueType::String)],
        };
        TableDefinition::parquet("file:///tmp/x".into(), &schema, "snappy", "job")
    }

    #[test]
    fn a_catalog_from_before_parameters_and_absorbed_works_were_recorded_gets_the_columns() {
        let home = tempfile::tempdir().unwrap();
        drop(LocalCatalog::open(home.path()).unwrap());
        let old = Connection::open(home.path().join("catalog.sqlite")).unwrap();
        old.execute_batch("ALTER TABLE files DROP COLUMN params; ALTER TABLE files DROP COLUMN absorbed").unwrap();
        drop(old);
        let catalog = LocalCatalog::open(home.path()).unwrap();
        assert!(catalog.with(|c| Ok(has_files_column(c, "params")? && has_files_column(c, "absorbed")?)).unwrap());
        // Opening again changes nothing.
        drop(catalog);
        LocalCatalog::open(home.path()).unwrap();
    }

    fn create(name: &TableName, expected: Option<u64>, def: TableDefinition) -> Publication {
        Publication {
            run_id: Some("r1".into()),
            tables: vec![TableChange {
                name: name.clone(),
                expected_version: expected,
                new_version: Some(NewVersion { definition: def, diff: vec![] }),
                data: DataChange::None,
            }],
        }
    }

    #[tokio::test]
    async fn a_crawl_finding_the_schema_another_crawl_recorded_first_is_no_conflict() {
        let home = tempfile::tempdir().unwrap();
        let catalog = LocalCatalog::open(home.path()).unwrap();
        let name: TableName = "raw.s".parse().unwrap();
        let crawl = |expected: Option<u64>, columns: &[(&str, GlueType)]| {
            let mut publication = create(&name, expected, definition(columns));
            publication.tables[0].data = DataChange::Discovered { partitions: Vec::new(), complete: true };
            publication
        };
        let first = [("a", GlueType::BigInt)];
        catalog.publish(crawl(None, &first)).await.unwrap();
        assert_eq!(catalog.publish(crawl(None, &first)).await.unwrap().versions, vec![1]);
        let second = [("a", GlueType::BigInt), ("b", GlueType::String)];
        assert_eq!(catalog.publish(crawl(Some(1), &second)).await.unwrap().versions, vec![2]);
        assert_eq!(catalog.publish(crawl(Some(1), &second)).await.unwrap().versions, vec![2]);
        // Another schema than the one recorded still conflicts.
        let err = catalog.publish(crawl(Some(1), &[("c", GlueType::Date)])).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Conflict);
        assert_eq!(catalog.versions(&name).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn versions_count_up_and_a_stale_writer_conflicts() {
        let home = tempfile::tempdir().unwrap();
        let catalog = LocalCatalog::open(home.path()).unwrap();
        let name: TableName = "db.t".parse().unwrap();
        let v1 = catalog.publish(create(&name, None, definition(&[("a", GlueType::BigInt)]))).await.unwrap();
        assert_eq!(v1.versions, vec![1]);
        let v2 = catalog.publish(create(&name, Some(1), definition(&[("a", GlueType::Double)]))).await.unwrap();
        assert_eq!(v2.versions, vec![2]);
        let err = catalog.publish(create(&name, Some(1), definition(&[("b", GlueType::Date)]))).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Conflict);
        assert!(err.message().contains("read version 1 but the catalog now has version 2"), "{err}");
        let err = catalog.publish(create(&name, None, definition(&[]))).await.unwrap_err();
        assert!(err.message().contains("read no table"), "{err}");
        let versions = catalog.versions(&name).await.unwrap();
        assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(versions[0].change, VersionChange::Created);
        assert_eq!(catalog.require(&name).await.unwrap().definition.columns[0].ty, GlueType::Double);
        assert_eq!(catalog.databases().await.unwrap(), vec!["db"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_writers_racing_from_one_version_exactly_one_wins() {
        let home = tempfile::tempdir().unwrap();
        let name: TableName = "db.t".parse().unwrap();
        LocalCatalog::open(home.path())
            .unwrap()
            .publish(create(&name, None, definition(&[("a", GlueType::BigInt)])))
            .await
            .unwrap();
        let writers = (0..8).map(|i| {
            let home = home.path().to_path_buf();
            let name = name.clone();
            tokio::spawn(async move {
                // Each writer has its own connection, as separate processes do.
                let catalog = LocalCatalog::open(&home).unwrap();
                catalog.publish(create(&name, Some(1), definition(&[(format!("c{i}").as_str(), GlueType::Date)]))).await
            })
        });
        let results: Vec<_> = futures::future::join_all(writers).await.into_iter().map(|r| r.unwrap()).collect();
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "{results:?}");
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| e.kind() == crate::error::ErrorKind::Conflict));
        let catalog = LocalCatalog::open(home.path()).unwrap();
        assert_eq!(catalog.versions(&name).await.unwrap().len(), 2);
    }

    fn write(
        name: &TableName,
        expected: Option<u64>,
        values: &str,
        run: &str,
        based_on: Option<Option<String>>,
    ) -> Publication {
        let location = format!("file:///w/dt={values}/run-{run}");
        Publication {
            run_id: Some(run.into()),
            tables: vec![TableChange {
                name: name.clone(),
                expected_version: expected,
                new_version: expected
                    .is_none()
                    .then(|| NewVersion { definition: definition(&[("a", GlueType::BigInt)]), diff: vec![] }),
                data: DataChange::Written(WrittenData {
                    upserts: vec![PartitionWrite {
                        partition: Partition {
                            values: vec![Some(values.into())],
                            files: vec![DataFile {
                                path: format!("{location}/part-0.parquet"),
                                size: 2,
                                rows: 1,
                                job: "j".into(),
                                logical_date: "d".into(),
                                ..DataFile::default()
                            }],
                            location,
                        },
                        based_on,
                    }],
                    drops: vec![],
                    note: Default::default(),
                }),
            }],
        }
    }

    #[tokio::test]
    async fn partitions_switch_folders_and_report_what_they_replaced() {
        let home = tempfile::tempdir().unwrap();
        let catalog = LocalCatalog::open(home.path()).unwrap();
        let name: TableName = "db.t".parse().unwrap();
        let first = catalog.publish(write(&name, None, "a", "r1", None)).await.unwrap();
        assert!(first.replaced.is_empty());
        catalog.publish(write(&name, Some(1), "b", "r2", None)).await.unwrap();
        let second = catalog.publish(write(&name, Some(1), "a", "r3", None)).await.unwrap();
        assert_eq!(second.replaced.len(), 1);
        assert_eq!(second.replaced[0].location, "file:///w/dt=a/run-r1");
        assert_eq!(second.replaced[0].files.len(), 1);
        let partitions = catalog.partitions(&name).await.unwrap();
        let locations: Vec<_> = partitions.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(locations, ["file:///w/dt=a/run-r3", "file:///w/dt=b/run-r2"]);
        assert_eq!(partitions[0].files[0].path, "file:///w/dt=a/run-r3/part-0.parquet");
    }

    #[tokio::test]
    async fn a_compacted_file_keeps_the_works_it_absorbed() {
        let home = tempfile::tempdir().unwrap();
        let catalog = LocalCatalog::open(home.path()).unwrap();
        let name: TableName = "db.t".parse().unwrap();
        let mut publication = write(&name, None, "a", "r1", None);
        let absorbed: Vec<Work> = ["d1", "d2"]
            .iter()
            .map(|d| Work { job: "j".into(), logical_date: d.to_string(), params: "params()".into() })
            .collect();
        let DataChange::Written(written) = &mut publication.tables[0].data else { unreachable!() };
        written.upserts[0].partition.files[0].absorbed = absorbed.clone();
        catalog.publish(publication).await.unwrap();
        let partitions = catalog.partitions(&name).await.unwrap();
        assert_eq!(partitions[0].files[0].absorbed, absorbed);
        // As the version a rollback restores.
        assert_eq!(catalog.snapshot(&name, 1).await.unwrap()[0].files[0].absorbed, absorbed);
    }

    #[tokio::test]
    async fn a_partition_changed_under_a_writer_that_kept_its_files_is_a_conflict() {
        let home = tempfile::tempdir().unwrap();
        let catalog = LocalCatalog::open(home.path()).unwrap();
        let name: TableName = "db.t".parse().unwrap();
        catalog.publish(write(&name, None, "a", "r1", None)).await.unwrap();
        // Two appends both read run r1's folder; the second to publish loses.
        let based = Some(Some("file:///w/dt=a/run-r1".to_string()));
        catalog.publish(write(&name, Some(1), "a", "r2", based.clone())).await.unwrap();
        let err = catalog.publish(write(&name, Some(1), "a", "r3", based)).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Conflict);
        assert!(err.message().contains("partition [\"a\"] changed"), "{err}");
        assert_eq!(catalog.partitions(&name).await.unwrap()[0].location, "file:///w/dt=a/run-r2");
    }

    #[tokio::test]
    async fn a_new_location_alone_is_not_a_new_version() {
        let home = tempfile::tempdir().unwrap();
        let catalog = LocalCatalog::open(home.path()).unwrap();
        let name: TableName = "db.t".parse().unwrap();
        catalog.publish(create(&name, None, definition(&[("a", GlueType::BigInt)]))).await.unwrap();
        let mut moved = definition(&[("a", GlueType::BigInt)]);
        moved.location = "file:///elsewhere".into();
        let published = catalog.publish(create(&name, Some(1), moved)).await.unwrap();
        assert_eq!(published.versions, vec![1]);
        assert_eq!(catalog.require(&name).await.unwrap().definition.location, "file:///elsewhere");
        assert_eq!(catalog.versions(&name).await.unwrap().len(), 1);
    }
}
