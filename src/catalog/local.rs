//! The embedded catalog: Glue's semantics in a SQLite database under `$ETL_HOME`.
//!
//! SQLite gives what the catalog promises without code of ours to get wrong: a crash never
//! leaves it unreadable (write-ahead log, full sync), several processes can share it (a
//! publication takes the write lock with `BEGIN IMMEDIATE`), and one transaction covers every
//! table a run publishes.
//!
//! Publishing moves files, which no transaction covers. So the transaction that switches the
//! catalog also records the moves and deletes that go with it in a journal; they are applied
//! after the commit, and anyone who reads the table first finishes what a crashed publisher
//! left (roll-forward). The moves are idempotent, so finishing twice is harmless. Before the
//! commit nothing a reader sees has changed; after it, the reader sees all of the new output.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Catalog, DataChange, DataFile, Partition, Publication, Published, Table, TableDefinition, TableName,
    TableVersion, VersionChange, WriteMode, conflict,
};
use crate::error::{Error, Result, ResultExt};
use crate::location::Location;

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
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS files_by_table ON files (database, name, spec);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    database TEXT NOT NULL,
    name TEXT NOT NULL,
    op TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT
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
        let connection = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        connection.busy_timeout(std::time::Duration::from_secs(60))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(SCHEMA)?;
        Ok(LocalCatalog { path, connection: Mutex::new(connection) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, work: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        work(&mut connection)
    }

    /// Applies the journal of pending file moves and deletes (all of it, or one table's).
    async fn roll_forward(&self, table: Option<&TableName>) -> Result<()> {
        let pending: Vec<(i64, String, String, Option<String>)> = self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, op, source, target FROM journal WHERE (?1 IS NULL OR (database = ?1 AND name = ?2)) ORDER BY id",
            )?;
            let rows = statement
                .query_map(
                    params![table.map(|t| t.database.as_str()), table.map(|t| t.table.as_str())],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        if pending.is_empty() {
            return Ok(());
        }
        for (_, op, source, target) in &pending {
            match (op.as_str(), target) {
                ("move", Some(target)) => move_file(source, target).await?,
                ("delete", _) => Location::parse(source)?.delete(&object_path(source)?).await?,
                (other, _) => return Err(Error::runtime(format!("unknown journal operation '{other}'"))),
            }
        }
        self.with(|c| {
            let mut statement = c.prepare("DELETE FROM journal WHERE id = ?1")?;
            for (id, ..) in &pending {
                statement.execute([id])?;
            }
            Ok(())
        })
    }
}

/// The object path of an absolute URL inside its store.
fn object_path(url: &str) -> Result<ObjectPath> {
    Ok(Location::parse(url)?.prefix().clone())
}

/// Moves a staged file to its published place; a move already made is not an error.
async fn move_file(source: &str, target: &str) -> Result<()> {
    let location = Location::parse(source)?;
    let from = location.prefix().clone();
    let to = object_path(target)?;
    match location.store().rename(&from, &to).await {
        Ok(()) => Ok(()),
        Err(object_store::Error::NotFound { .. }) => match location.store().head(&to).await {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::runtime(format!(
                "publishing {target}: the staged file {source} is gone and the file was never moved"
            ))),
        },
        Err(e) => Err(Error::from(e).context(format!("publishing {target}"))),
    }
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
    serde_json::from_str(&text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
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
        self.roll_forward(Some(name)).await?;
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
        self.roll_forward(Some(name)).await?;
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT spec, location FROM partitions WHERE database = ?1 AND name = ?2 ORDER BY spec",
            )?;
            let mut partitions = statement
                .query_map(params![name.database, name.table], |r| {
                    let spec: String = r.get(0)?;
                    Ok((spec, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut files = c.prepare(
                "SELECT path, size, rows FROM files WHERE database = ?1 AND name = ?2 AND spec = ?3 ORDER BY path",
            )?;
            let mut out = Vec::with_capacity(partitions.len());
            for (spec, location) in partitions.drain(..) {
                let files = files
                    .query_map(params![name.database, name.table, spec], |r| {
                        Ok(DataFile { path: r.get(0)?, size: r.get::<_, i64>(1)? as u64, rows: r.get::<_, i64>(2)? as u64 })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.push(Partition { values: serde_json::from_str(&spec)?, location, files });
            }
            Ok(out)
        })
    }

    async fn publish(&self, publication: Publication) -> Result<Published> {
        let versions = self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now();
            let mut versions = Vec::new();
            for change in &publication.tables {
                let name = &change.name;
                let current: Option<u64> = tx
                    .query_row(
                        "SELECT version FROM tables WHERE database = ?1 AND name = ?2",
                        params![name.database, name.table],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()?
                    .map(|v| v as u64);
                if current != change.expected_version {
                    return Err(conflict(name, change.expected_version, current));
                }
                let mut version = current.unwrap_or(0);
                if let Some(new) = &change.new_version {
                    version += 1;
                    let definition = serde_json::to_string(&new.definition)?;
                    let kind = if current.is_none() { VersionChange::Created } else { VersionChange::Updated };
                    tx.execute(
                        "INSERT OR IGNORE INTO databases (name, created_at) VALUES (?1, ?2)",
                        params![name.database, now],
                    )?;
                    tx.execute(
                        "INSERT INTO table_versions (database, name, version, created_at, run_id, change, diff, definition)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            name.database,
                            name.table,
                            version as i64,
                            now,
                            publication.run_id,
                            kind.as_str(),
                            serde_json::to_string(&new.diff)?,
                            definition
                        ],
                    )?;
                    tx.execute(
                        "INSERT INTO tables (database, name, version, definition, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                         ON CONFLICT (database, name) DO UPDATE SET version = ?3, definition = ?4, updated_at = ?5",
                        params![name.database, name.table, version as i64, definition, now],
                    )?;
                } else if current.is_none() {
                    return Err(Error::runtime(format!("publishing {name}: a new table needs a definition")));
                }
                versions.push(version);

                match &change.data {
                    DataChange::None => {}
                    DataChange::Discovered(partitions) => {
                        tx.execute("DELETE FROM partitions WHERE database = ?1 AND name = ?2", params![name.database, name.table])?;
                        for partition in partitions {
                            tx.execute(
                                "INSERT OR REPLACE INTO partitions (database, name, spec, location, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                                params![name.database, name.table, spec_key(&partition.values), partition.location, now],
                            )?;
                        }
                    }
                    DataChange::Written(written) => {
                        let replaced: Vec<String> = {
                            let select = |sql: &str, extra: &dyn Fn(&mut rusqlite::Statement) -> rusqlite::Result<Vec<String>>| -> rusqlite::Result<Vec<String>> {
                                let mut statement = tx.prepare(sql)?;
                                extra(&mut statement)
                            };
                            match written.mode {
                                WriteMode::Overwrite => select(
                                    "SELECT path FROM files WHERE database = ?1 AND name = ?2",
                                    &|s| s.query_map(params![name.database, name.table], |r| r.get(0))?.collect(),
                                )?,
                                WriteMode::OverwritePartitions => {
                                    let mut paths = Vec::new();
                                    for partition in &written.partitions {
                                        let spec = spec_key(&partition.values);
                                        paths.extend(select(
                                            "SELECT path FROM files WHERE database = ?1 AND name = ?2 AND spec = ?3",
                                            &|s| s.query_map(params![name.database, name.table, spec], |r| r.get(0))?.collect(),
                                        )?);
                                    }
                                    paths
                                }
                                WriteMode::Append => select(
                                    "SELECT path FROM files WHERE database = ?1 AND name = ?2 AND job = ?3 AND logical_date = ?4",
                                    &|s| {
                                        s.query_map(
                                            params![name.database, name.table, written.tag.job, written.tag.logical_date],
                                            |r| r.get(0),
                                        )?
                                        .collect()
                                    },
                                )?,
                            }
                        };
                        for path in &replaced {
                            tx.execute("DELETE FROM files WHERE path = ?1", [path])?;
                            tx.execute(
                                "INSERT INTO journal (database, name, op, source) VALUES (?1, ?2, 'delete', ?3)",
                                params![name.database, name.table, path],
                            )?;
                        }
                        for partition in &written.partitions {
                            let spec = spec_key(&partition.values);
                            tx.execute(
                                "INSERT INTO partitions (database, name, spec, location, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                                 ON CONFLICT (database, name, spec) DO UPDATE SET location = ?4, updated_at = ?5",
                                params![name.database, name.table, spec, partition.location, now],
                            )?;
                            for file in &partition.files {
                                tx.execute(
                                    "INSERT INTO files (path, database, name, spec, size, rows, job, logical_date, run_id)
                                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                    params![
                                        file.path,
                                        name.database,
                                        name.table,
                                        spec,
                                        file.size as i64,
                                        file.rows as i64,
                                        written.tag.job,
                                        written.tag.logical_date,
                                        publication.run_id
                                    ],
                                )?;
                            }
                        }
                        tx.execute(
                            "DELETE FROM partitions WHERE database = ?1 AND name = ?2 AND NOT EXISTS
                             (SELECT 1 FROM files f WHERE f.database = partitions.database AND f.name = partitions.name AND f.spec = partitions.spec)",
                            params![name.database, name.table],
                        )?;
                        for (staged, target) in &written.moves {
                            tx.execute(
                                "INSERT INTO journal (database, name, op, source, target) VALUES (?1, ?2, 'move', ?3, ?4)",
                                params![name.database, name.table, staged, target],
                            )?;
                        }
                    }
                }
            }
            tx.commit()?;
            Ok(versions)
        })?;
        // Moves sort before deletes in the journal of one publication only by insertion order;
        // a delete never targets a file this publication moves in (new names are unique).
        self.roll_forward(None).await?;
        Ok(Published { versions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{NewVersion, TableChange, WriteTag, WrittenData};
    use crate::schema::{Column, GlueType, TableSchema};

    fn definition(columns: &[(&str, GlueType)]) -> TableDefinition {
        let schema = TableSchema {
            columns: columns.iter().map(|(n, t)| Column::new(*n, t.clone())).collect(),
            partition_keys: vec![Column::new("dt", GlueType::String)],
        };
        TableDefinition::parquet("file:///tmp/x".into(), &schema, "snappy", "job")
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
        LocalCatalog::open(home.path()).unwrap().publish(create(&name, None, definition(&[("a", GlueType::BigInt)]))).await.unwrap();
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

    #[tokio::test]
    async fn written_data_moves_in_at_commit_and_replaces_by_mode() {
        let home = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let catalog = LocalCatalog::open(home.path()).unwrap();
        let name: TableName = "db.t".parse().unwrap();
        let root = format!("file://{}", data.path().display());
        let write = |run: &str, mode: WriteMode, date: &str, expected: Option<u64>| {
            let staged = format!("{root}/_etl_staging/{run}/dt={date}/part-{run}.parquet");
            let path = staged.replace(&format!("_etl_staging/{run}/"), "");
            std::fs::create_dir_all(data.path().join(format!("_etl_staging/{run}/dt={date}"))).unwrap();
            std::fs::write(data.path().join(format!("_etl_staging/{run}/dt={date}/part-{run}.parquet")), run).unwrap();
            Publication {
                run_id: Some(run.into()),
                tables: vec![TableChange {
                    name: name.clone(),
                    expected_version: expected,
                    new_version: expected.is_none().then(|| NewVersion { definition: definition(&[("a", GlueType::BigInt)]), diff: vec![] }),
                    data: DataChange::Written(WrittenData {
                        mode,
                        tag: WriteTag { job: "j".into(), logical_date: date.into() },
                        partitions: vec![Partition {
                            values: vec![Some(date.into())],
                            location: format!("{root}/dt={date}"),
                            files: vec![DataFile { path: path.clone(), size: 2, rows: 1 }],
                        }],
                        moves: vec![(staged, path)],
                    }),
                }],
            }
        };
        catalog.publish(write("r1", WriteMode::Append, "d1", None)).await.unwrap();
        catalog.publish(write("r2", WriteMode::Append, "d2", Some(1))).await.unwrap();
        // A rerun of d1 replaces r1's file rather than adding a second copy.
        catalog.publish(write("r3", WriteMode::Append, "d1", Some(1))).await.unwrap();
        let partitions = catalog.partitions(&name).await.unwrap();
        let files: Vec<String> = partitions.iter().flat_map(|p| p.files.iter().map(|f| f.path.clone())).collect();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files.iter().any(|f| f.ends_with("part-r3.parquet")) && files.iter().any(|f| f.ends_with("part-r2.parquet")));
        assert!(!data.path().join("dt=d1/part-r1.parquet").exists());
        assert!(data.path().join("dt=d1/part-r3.parquet").exists());

        catalog.publish(write("r4", WriteMode::Overwrite, "d3", Some(1))).await.unwrap();
        let partitions = catalog.partitions(&name).await.unwrap();
        assert_eq!(partitions.len(), 1);
        assert_eq!(partitions[0].values, vec![Some("d3".to_string())]);
        assert!(!data.path().join("dt=d2/part-r2.parquet").exists());
    }

    #[tokio::test]
    async fn a_reader_finishes_the_moves_of_a_crashed_publisher() {
        let home = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let catalog = LocalCatalog::open(home.path()).unwrap();
        let name: TableName = "db.t".parse().unwrap();
        catalog.publish(create(&name, None, definition(&[("a", GlueType::BigInt)]))).await.unwrap();
        std::fs::write(data.path().join("staged"), "x").unwrap();
        let staged = format!("file://{}/staged", data.path().display());
        let target = format!("file://{}/final", data.path().display());
        catalog
            .with(|c| {
                c.execute(
                    "INSERT INTO journal (database, name, op, source, target) VALUES ('db', 't', 'move', ?1, ?2)",
                    params![staged, target],
                )?;
                Ok(())
            })
            .unwrap();
        let reopened = LocalCatalog::open(home.path()).unwrap();
        reopened.table(&name).await.unwrap();
        assert!(data.path().join("final").exists() && !data.path().join("staged").exists());
        reopened.table(&name).await.unwrap();
    }
}
