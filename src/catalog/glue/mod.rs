//! The AWS Glue Data Catalog, with the semantics of the embedded catalog.
//!
//! A table is what Athena needs (`EXTERNAL_TABLE`, classification, SerDe, formats, location,
//! partition keys apart from the columns); what is ours rides in its parameters, under `etl.`
//! names: the schema version (Glue's own `VersionId` counts every update, including a written
//! table's move to a new folder, which is not a new schema), the run and the diff that made
//! the version, and a written table's file list.
//!
//! Versions: a new schema is an `UpdateTable` that archives the previous definition, so
//! `GetTableVersions` is the history; a change of location alone skips the archive. Every
//! publication of a written table's data is an archived update too, whose `etl.data` records
//! the data version (run, rows, bytes, files, checks) and names the manifest that lists its
//! partitions, an object under the table's `_etl_versions/` (Glue keeps no history of
//! partitions).
//! Concurrency: every update passes the `VersionId` it read, so a writer that lost a race
//! gets Glue's `ConcurrentModificationException`, reported as a conflict.
//!
//! What Glue cannot give: a transaction across tables and partition batches. A publication
//! checks every table and partition it builds on before it changes anything, then applies the
//! changes table by table, partitions in batches of 100 (Glue's limit); each partition switches
//! to its new folder in one call, so a reader sees a partition's old files or its new ones,
//! never a mix, but a query racing a publication of many partitions may see some switched and
//! others not yet.

//!
//! Three parts: `client` (the Glue calls, Glue's errors turned into ours), `publication`
//! (checking what a change builds on, applying it, finishing a journaled one), `convert`
//! (our definitions and partitions to Glue's shapes and back).

mod client;
mod convert;
mod publication;

use std::collections::BTreeMap;

use async_trait::async_trait;

use self::client::GlueClient;
use self::convert::{
    CHANGE, DIFF, RUN_ID, data_record, definition_of, our_version, partition_of, partition_of_unpartitioned, time,
};
use super::{
    Catalog, DataVersion, Partition, PreparedVersion, Publication, Published, Table, TableName, TableVersion,
    VersionChange,
};
use crate::error::{Error, Result};
use crate::location::Location;
use crate::schema::diff::Change;

#[derive(Debug, Clone)]
pub struct GlueCatalog {
    client: GlueClient,
}

impl GlueCatalog {
    pub async fn connect() -> Self {
        GlueCatalog { client: GlueClient::connect().await }
    }
}

#[async_trait]
impl Catalog for GlueCatalog {
    fn kind(&self) -> &'static str {
        "glue"
    }

    async fn databases(&self) -> Result<Vec<String>> {
        self.client.databases().await
    }

    async fn tables(&self, database: &str) -> Result<Vec<String>> {
        self.client.tables(database).await
    }

    async fn table(&self, name: &TableName) -> Result<Option<Table>> {
        let Some(mut table) = self.client.table(name).await? else {
            return Ok(None);
        };
        if self.finish_publications(name, &table).await? {
            let Some(finished) = self.client.table(name).await? else {
                return Ok(None);
            };
            table = finished;
        }
        Ok(Some(Table {
            name: name.clone(),
            version: our_version(&table),
            definition: definition_of(&table)?,
            created_at: time(table.create_time()),
            updated_at: time(table.update_time().or(table.create_time())),
        }))
    }

    async fn versions(&self, name: &TableName) -> Result<Vec<TableVersion>> {
        let mut versions: BTreeMap<u64, TableVersion> = BTreeMap::new();
        for version in self.client.table_versions(name).await? {
            let Some(table) = version.table else { continue };
            let parameters = table.parameters().cloned().unwrap_or_default();
            let number = our_version(&table);
            let entry = TableVersion {
                version: number,
                created_at: time(table.update_time().or(table.create_time())),
                run_id: parameters.get(RUN_ID).cloned(),
                change: if parameters.get(CHANGE).map(String::as_str) == Some("updated") {
                    VersionChange::Updated
                } else {
                    VersionChange::Created
                },
                diff: parameters
                    .get(DIFF)
                    .and_then(|d| serde_json::from_str::<Vec<Change>>(d).ok())
                    .unwrap_or_default(),
                definition: definition_of(&table)?,
            };
            // Location-only updates share a version; the earliest one is when it was made.
            match versions.get(&number) {
                Some(existing) if existing.created_at <= entry.created_at => {}
                _ => {
                    versions.insert(number, entry);
                }
            }
        }
        Ok(versions.into_values().collect())
    }

    async fn partitions(&self, name: &TableName) -> Result<Vec<Partition>> {
        let Some(table) = self.client.table(name).await? else {
            return Ok(Vec::new());
        };
        if table.partition_keys().is_empty() {
            return Ok(partition_of_unpartitioned(&table).into_iter().collect());
        }
        let mut partitions =
            self.client.partitions(name).await?.iter().map(partition_of).collect::<Result<Vec<_>>>()?;
        partitions.sort_by(|a, b| a.values.cmp(&b.values));
        Ok(partitions)
    }

    async fn publish(&self, publication: Publication) -> Result<Published> {
        self.publish_all(publication).await
    }

    async fn data_versions(&self, name: &TableName) -> Result<Vec<DataVersion>> {
        Ok(self.data_records(name).await?.into_values().map(|r| r.version).collect())
    }

    async fn snapshot(&self, name: &TableName, version: u64) -> Result<Vec<Partition>> {
        let records = self.data_records(name).await?;
        let record =
            records.get(&version).ok_or_else(|| Error::not_found(format!("{name} has no version {version}")))?;
        let manifest = Location::parse(&record.manifest)?;
        let text = manifest.get_bytes(manifest.prefix()).await?;
        serde_json::from_slice(&text).map_err(|e| {
            Error::runtime(format!("the manifest {manifest} of version {version} of {name} is not readable: {e}"))
        })
    }
}

impl GlueCatalog {
    /// The data versions Glue's table versions record, by number. A publication finished by a
    /// later reader updates the table again with the same record: the earliest one counts.
    async fn data_records(&self, name: &TableName) -> Result<BTreeMap<u64, PreparedVersion>> {
        if self.table(name).await?.is_none() {
            return Ok(BTreeMap::new());
        }
        let mut records: BTreeMap<u64, PreparedVersion> = BTreeMap::new();
        for version in self.client.table_versions(name).await? {
            let Some(record) = version.table.as_ref().and_then(data_record) else { continue };
            match records.get(&record.version.version) {
                Some(known) if known.version.created_at <= record.version.created_at => {}
                _ => {
                    records.insert(record.version.version, record);
                }
            }
        }
        Ok(records)
    }
}
