//! The AWS Glue Data Catalog, with the semantics of the embedded catalog.
//!
//! A table is what Athena needs (`EXTERNAL_TABLE`, classification, SerDe, formats, location,
//! partition keys apart from the columns); what is ours rides in its parameters, under `etl.`
//! names: the schema version (Glue's own `VersionId` counts every update, including a written
//! table's move to a new folder, which is not a new schema), the run and the diff that made
//! the version, and a written table's file list.
//!
//! Versions: a new schema is an `UpdateTable` that archives the previous definition, so
//! `GetTableVersions` is the history; a change of location alone skips the archive.
//! Concurrency: every update passes the `VersionId` it read, so a writer that lost a race
//! gets Glue's `ConcurrentModificationException`, reported as a conflict.
//!
//! What Glue cannot give: a transaction across tables and partition batches. A publication
//! checks every table and partition it builds on before it changes anything, then applies the
//! changes table by table, partitions in batches of 100 (Glue's limit); each partition switches
//! to its new folder in one call, so a reader sees a partition's old files or its new ones,
//! never a mix, but a query racing a publication of many partitions may see some switched and
//! others not yet.

use std::collections::{BTreeMap, HashMap};
use std::error::Error as StdError;

use async_trait::async_trait;
use aws_sdk_glue::Client;
use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{
    BatchUpdatePartitionRequestEntry, Column as GlueColumn, DatabaseInput, PartitionInput, PartitionValueList,
    SerDeInfo, StorageDescriptor, Table as GlueTable, TableInput,
};
use chrono::{DateTime, Utc};

use super::definition::SerDe;
use super::journal::Journal;
use super::{
    Catalog, DataChange, DataFile, Partition, PartitionWrite, Publication, Published, Table, TableChange,
    TableDefinition, TableName, TableVersion, VersionChange, conflict,
};
use crate::error::{Error, ErrorKind, Result};
use crate::layout::{glue_partition_values, partition_values_from_glue};
use crate::location::aws::{AWS_ENDPOINT_URL_GLUE, endpoint, sdk_config};
use crate::schema::diff::Change;
use crate::schema::{Column, GlueType};
use crate::source::format::Format;

/// Our schema version, in table parameters.
const VERSION: &str = "etl.version";
const RUN_ID: &str = "etl.run_id";
const CHANGE: &str = "etl.change";
const DIFF: &str = "etl.diff";
/// A written partition's (or unpartitioned table's) files, in its parameters.
const FILES: &str = "etl.files";
/// Glue's limits per batch call.
const CREATE_BATCH: usize = 100;
const UPDATE_BATCH: usize = 100;
const DELETE_BATCH: usize = 25;

#[derive(Debug, Clone)]
pub struct GlueCatalog {
    client: Client,
}

impl GlueCatalog {
    pub async fn connect() -> Self {
        let config = sdk_config().await;
        let mut builder = aws_sdk_glue::config::Builder::from(config);
        if let Some(url) = endpoint(AWS_ENDPOINT_URL_GLUE) {
            builder = builder.endpoint_url(url);
        }
        GlueCatalog { client: Client::from_conf(builder.build()) }
    }

    async fn get_table(&self, name: &TableName) -> Result<Option<GlueTable>> {
        match self.client.get_table().database_name(&name.database).name(&name.table).send().await {
            Ok(output) => Ok(output.table),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(None),
            Err(e) => Err(glue_error(&format!("reading table {name}"), e)),
        }
    }

    async fn glue_partitions(&self, name: &TableName) -> Result<Vec<aws_sdk_glue::types::Partition>> {
        let mut pages =
            self.client.get_partitions().database_name(&name.database).table_name(&name.table).into_paginator().send();
        let mut partitions = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| glue_error(&format!("listing the partitions of {name}"), e))?;
            partitions.extend(page.partitions.unwrap_or_default());
        }
        Ok(partitions)
    }

    async fn ensure_database(&self, database: &str) -> Result<()> {
        let input = DatabaseInput::builder().name(database).build().map_err(|e| Error::runtime(e.to_string()))?;
        match self.client.create_database().database_input(input).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(()),
            Err(e) => Err(glue_error(&format!("creating database {database}"), e)),
        }
    }

    /// Finishes the committed publications a written table's journal folder names (see
    /// [`super::journal`]); true when there were any.
    async fn finish_publications(&self, name: &TableName, table: &GlueTable) -> Result<bool> {
        let definition = definition_of(table)?;
        if !definition.is_written() {
            return Ok(false);
        }
        let mut finished = false;
        for (publication, journal) in Journal::committed(&definition.written_root()?).await? {
            // Another table may share the location; its publications are its readers' to finish.
            if !publication.tables.iter().any(|change| change.name == *name) {
                continue;
            }
            let run = publication.run_id.as_deref().unwrap_or("?");
            eprintln!("note: finishing the publication of run {run}, which stopped before it was complete");
            for change in &publication.tables {
                let current = self.get_table(&change.name).await?;
                let partitioned = current.as_ref().is_some_and(|t| !t.partition_keys().is_empty());
                let partitions = if partitioned { self.glue_partitions(&change.name).await? } else { Vec::new() };
                let applied = self
                    .apply(change, publication.run_id.as_deref(), current, partitions, &mut Published::default())
                    .await;
                match applied {
                    Ok(()) => {}
                    // The run is still applying it, or a later one changed the table since: this
                    // reader leaves it to them (and to `etl gc`) and reads what the catalog has.
                    Err(e) if e.kind() == ErrorKind::Conflict => {
                        eprintln!("note: run {run} is being published by another process or was overtaken: {e}");
                        return Ok(true);
                    }
                    Err(e) => return Err(e.context(format!("finishing the publication of run {run}"))),
                }
            }
            journal.end().await?;
            finished = true;
        }
        Ok(finished)
    }

    /// Checks what a change builds on, before anything is applied.
    async fn check(&self, change: &TableChange) -> Result<(Option<GlueTable>, Vec<aws_sdk_glue::types::Partition>)> {
        let current = self.get_table(&change.name).await?;
        let version = current.as_ref().map(our_version);
        if version != change.expected_version {
            return Err(conflict(&change.name, change.expected_version, version));
        }
        let partitions = match (&current, &change.data) {
            (Some(table), DataChange::Written(_) | DataChange::Discovered { .. })
                if !table.partition_keys().is_empty() =>
            {
                self.glue_partitions(&change.name).await?
            }
            _ => Vec::new(),
        };
        if let DataChange::Written(written) = &change.data {
            for write in written.upserts.iter().chain(&written.drops) {
                if let Some(expected) = &write.based_on {
                    let found = current_location(current.as_ref(), &partitions, &write.partition.values);
                    if found != *expected {
                        return Err(Error::conflict(format!(
                            "conflict on {}: partition {:?} changed while this run wrote it (another run published it first); nothing was published",
                            change.name, write.partition.values
                        )));
                    }
                }
            }
        }
        Ok((current, partitions))
    }

    async fn apply(
        &self,
        change: &TableChange,
        run_id: Option<&str>,
        current: Option<GlueTable>,
        partitions: Vec<aws_sdk_glue::types::Partition>,
        published: &mut Published,
    ) -> Result<()> {
        let name = &change.name;
        let old_definition = current.as_ref().map(definition_of).transpose()?;
        let mut version = current.as_ref().map(our_version).unwrap_or(0);
        let unpartitioned_files = match &change.data {
            DataChange::Written(written) if written.upserts.iter().any(|w| w.partition.values.is_empty()) => {
                written.upserts.iter().find(|w| w.partition.values.is_empty()).map(|w| w.partition.files.clone())
            }
            _ => None,
        };
        // The table itself: a new definition, or (unpartitioned written tables) new files.
        let definition = change.new_version.as_ref().map(|n| n.definition.clone()).or_else(|| old_definition.clone());
        let new_schema = match (&change.new_version, &old_definition) {
            (Some(new), Some(old)) => new.definition.is_new_version_of(old),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if new_schema {
            version += 1;
        }
        if change.new_version.is_some() || unpartitioned_files.is_some() {
            let definition = definition
                .ok_or_else(|| Error::runtime(format!("publishing {name}: a new table needs a definition")))?;
            let mut parameters: HashMap<String, String> = definition.parameters.clone().into_iter().collect();
            if let Some(current) = &current {
                // Keep what the version we build on recorded, unless this is a new version.
                for key in [RUN_ID, CHANGE, DIFF] {
                    if let Some(value) = current.parameters().and_then(|p| p.get(key)) {
                        parameters.insert(key.to_string(), value.clone());
                    }
                }
            }
            parameters.insert(VERSION.to_string(), version.to_string());
            if new_schema {
                let diff = change.new_version.as_ref().map(|n| n.diff.clone()).unwrap_or_default();
                let kind = if current.is_none() { VersionChange::Created } else { VersionChange::Updated };
                parameters.insert(CHANGE.to_string(), kind.as_str().to_string());
                parameters.insert(DIFF.to_string(), serde_json::to_string(&diff)?);
                match run_id {
                    Some(run) => parameters.insert(RUN_ID.to_string(), run.to_string()),
                    None => parameters.remove(RUN_ID),
                };
            }
            let mut location = definition.location.clone();
            if let Some(files) = &unpartitioned_files {
                parameters.insert(FILES.to_string(), serde_json::to_string(files)?);
                if let Some(write) = written_upsert(&change.data, &[]) {
                    location = write.partition.location.clone();
                }
            }
            let input = table_input(name, &TableDefinition { location, ..definition }, parameters)?;
            match &current {
                None => {
                    self.ensure_database(&name.database).await?;
                    match self.client.create_table().database_name(&name.database).table_input(input).send().await {
                        Ok(_) => {}
                        Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => {
                            return Err(conflict(name, None, Some(1)));
                        }
                        Err(e) => return Err(glue_error(&format!("creating table {name}"), e)),
                    }
                }
                Some(current) => {
                    let mut update = self
                        .client
                        .update_table()
                        .database_name(&name.database)
                        .table_input(input)
                        .skip_archive(!new_schema);
                    if let Some(id) = current.version_id() {
                        update = update.version_id(id);
                    }
                    match update.send().await {
                        Ok(_) => {}
                        Err(e) if e.as_service_error().is_some_and(|s| s.is_concurrent_modification_exception()) => {
                            return Err(conflict(name, change.expected_version, None));
                        }
                        Err(e) => return Err(glue_error(&format!("updating table {name}"), e)),
                    }
                }
            }
            if let (Some(current), Some(_)) = (&current, &unpartitioned_files) {
                if let Some(old) = partition_of_unpartitioned(current) {
                    published.replaced.push(old);
                }
            }
        }
        published.versions.push(version);
        crate::kill_points::reached("catalog.commit");

        // The partitions.
        let existing: BTreeMap<Vec<Option<String>>, aws_sdk_glue::types::Partition> =
            partitions.into_iter().map(|p| (partition_values_from_glue(p.values()), p)).collect();
        let (upserts, drops): (Vec<Partition>, Vec<Partition>) = match &change.data {
            DataChange::None => return Ok(()),
            DataChange::Discovered { partitions: found, complete } => {
                let gone = existing
                    .iter()
                    .filter(|(values, _)| *complete && !found.iter().any(|p| &p.values == *values))
                    .map(|(_, p)| partition_of(p))
                    .collect::<Result<Vec<_>>>()?;
                let changed = found
                    .iter()
                    .filter(|p| {
                        existing.get(&p.values).and_then(|e| e.storage_descriptor()?.location())
                            != Some(p.location.as_str())
                    })
                    .cloned()
                    .collect();
                (changed, gone)
            }
            DataChange::Written(written) => (
                written
                    .upserts
                    .iter()
                    .filter(|w| !w.partition.values.is_empty())
                    .map(|w| w.partition.clone())
                    .collect(),
                written.drops.iter().filter(|w| !w.partition.values.is_empty()).map(|w| w.partition.clone()).collect(),
            ),
        };
        let Some(template) = self.get_table(name).await?.and_then(|t| t.storage_descriptor) else {
            return Ok(());
        };
        let mut creates = Vec::new();
        let mut updates = Vec::new();
        for partition in &upserts {
            let input = partition_input(&template, partition)?;
            match existing.get(&partition.values) {
                Some(old) => {
                    published.replaced.push(partition_of(old)?);
                    updates.push(
                        BatchUpdatePartitionRequestEntry::builder()
                            .set_partition_value_list(Some(glue_partition_values(&partition.values)))
                            .partition_input(input)
                            .build()
                            .map_err(|e| Error::runtime(e.to_string()))?,
                    );
                }
                None => creates.push(input),
            }
        }
        for batch in creates.chunks(CREATE_BATCH) {
            let output = self
                .client
                .batch_create_partition()
                .database_name(&name.database)
                .table_name(&name.table)
                .set_partition_input_list(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| glue_error(&format!("registering partitions of {name}"), e))?;
            partition_errors(name, "registering", output.errors())?;
            crate::kill_points::reached("catalog.commit");
        }
        for batch in updates.chunks(UPDATE_BATCH) {
            let output = self
                .client
                .batch_update_partition()
                .database_name(&name.database)
                .table_name(&name.table)
                .set_entries(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| glue_error(&format!("updating partitions of {name}"), e))?;
            if let Some(failure) = output.errors().first() {
                let detail = failure.error_detail().and_then(|d| d.error_message()).unwrap_or("failed");
                return Err(Error::runtime(format!(
                    "updating partition {:?} of {name}: {detail}",
                    failure.partition_value_list()
                )));
            }
            crate::kill_points::reached("catalog.commit");
        }
        let drops: Vec<&Partition> = drops.iter().filter(|p| existing.contains_key(&p.values)).collect();
        for batch in drops.chunks(DELETE_BATCH) {
            let values: Vec<PartitionValueList> = batch
                .iter()
                .map(|p| PartitionValueList::builder().set_values(Some(glue_partition_values(&p.values))).build())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::runtime(e.to_string()))?;
            let output = self
                .client
                .batch_delete_partition()
                .database_name(&name.database)
                .table_name(&name.table)
                .set_partitions_to_delete(Some(values))
                .send()
                .await
                .map_err(|e| glue_error(&format!("removing partitions of {name}"), e))?;
            partition_errors(name, "removing", output.errors())?;
            crate::kill_points::reached("catalog.commit");
            for partition in batch {
                if let Some(old) = existing.get(&partition.values) {
                    published.replaced.push(partition_of(old)?);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Catalog for GlueCatalog {
    fn kind(&self) -> &'static str {
        "glue"
    }

    async fn databases(&self) -> Result<Vec<String>> {
        let mut pages = self.client.get_databases().into_paginator().send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| glue_error("listing databases", e))?;
            names.extend(page.database_list.into_iter().map(|d| d.name));
        }
        names.sort();
        Ok(names)
    }

    async fn tables(&self, database: &str) -> Result<Vec<String>> {
        let mut pages = self.client.get_tables().database_name(database).into_paginator().send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            match page {
                Ok(page) => names.extend(page.table_list.unwrap_or_default().into_iter().map(|t| t.name)),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(glue_error(&format!("listing the tables of {database}"), e)),
            }
        }
        names.sort();
        Ok(names)
    }

    async fn table(&self, name: &TableName) -> Result<Option<Table>> {
        let Some(mut table) = self.get_table(name).await? else {
            return Ok(None);
        };
        if self.finish_publications(name, &table).await? {
            let Some(finished) = self.get_table(name).await? else {
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
        let mut pages = self
            .client
            .get_table_versions()
            .database_name(&name.database)
            .table_name(&name.table)
            .into_paginator()
            .send();
        let mut versions: BTreeMap<u64, TableVersion> = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| glue_error(&format!("reading the versions of {name}"), e))?;
            for version in page.table_versions.unwrap_or_default() {
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
        }
        Ok(versions.into_values().collect())
    }

    async fn partitions(&self, name: &TableName) -> Result<Vec<Partition>> {
        let Some(table) = self.get_table(name).await? else {
            return Ok(Vec::new());
        };
        if table.partition_keys().is_empty() {
            return Ok(partition_of_unpartitioned(&table).into_iter().collect());
        }
        let mut partitions = self.glue_partitions(name).await?.iter().map(partition_of).collect::<Result<Vec<_>>>()?;
        partitions.sort_by(|a, b| a.values.cmp(&b.values));
        Ok(partitions)
    }

    async fn publish(&self, publication: Publication) -> Result<Published> {
        let mut checked = Vec::with_capacity(publication.tables.len());
        for change in &publication.tables {
            checked.push(self.check(change).await?);
        }
        let mut roots = Vec::new();
        for (change, (current, _)) in publication.tables.iter().zip(&checked) {
            if !matches!(change.data, DataChange::Written(_)) {
                continue;
            }
            let definition = match (&change.new_version, current) {
                (Some(new), _) => new.definition.clone(),
                (None, Some(current)) => definition_of(current)?,
                (None, None) => continue,
            };
            roots.push(definition.written_root()?);
        }
        let journal = Journal::begin(&publication, &roots).await?;
        let mut published = Published::default();
        for (change, (current, partitions)) in publication.tables.iter().zip(checked) {
            let applied = self.apply(change, publication.run_id.as_deref(), current, partitions, &mut published).await;
            match (applied, &journal) {
                (Ok(()), _) => {}
                // A writer that lost a race withdraws: finishing its publication later would
                // overwrite the winner's.
                (Err(e), Some(journal)) if e.kind() == ErrorKind::Conflict => {
                    journal.end().await?;
                    return Err(e);
                }
                // Past its commit point the publication stands (the next `etl` read of these
                // tables finishes it), so the run has published, and must say so.
                (Err(e), Some(_)) => {
                    eprintln!(
                        "warning: the publication is committed, but applying it to Glue stopped: {}; the next etl command that reads {} finishes it",
                        e.message(),
                        change.name
                    );
                    return Ok(published);
                }
                (Err(e), None) => return Err(e),
            }
        }
        if let Some(journal) = journal {
            if let Err(e) = journal.end().await {
                eprintln!("warning: the publication is complete, but removing its journal failed: {e}");
            }
        }
        Ok(published)
    }
}

/// The upsert of the partition with these values, in a written change.
fn written_upsert<'a>(data: &'a DataChange, values: &[Option<String>]) -> Option<&'a PartitionWrite> {
    match data {
        DataChange::Written(written) => written.upserts.iter().find(|w| w.partition.values == values),
        _ => None,
    }
}

fn current_location(
    table: Option<&GlueTable>,
    partitions: &[aws_sdk_glue::types::Partition],
    values: &[Option<String>],
) -> Option<String> {
    let table = table?;
    if values.is_empty() {
        return partition_of_unpartitioned(table).map(|p| p.location);
    }
    partitions
        .iter()
        .find(|p| partition_values_from_glue(p.values()) == values)
        .and_then(|p| p.storage_descriptor()?.location().map(str::to_string))
}

fn our_version(table: &GlueTable) -> u64 {
    table
        .parameters()
        .and_then(|p| p.get(VERSION))
        .and_then(|v| v.parse().ok())
        .or_else(|| table.version_id().and_then(|v| v.parse().ok()))
        .unwrap_or(1)
}

fn time(value: Option<&aws_sdk_glue::primitives::DateTime>) -> DateTime<Utc> {
    value.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())).unwrap_or_default()
}

fn files_of(parameters: Option<&HashMap<String, String>>) -> Vec<DataFile> {
    parameters.and_then(|p| p.get(FILES)).and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default()
}

fn partition_of(partition: &aws_sdk_glue::types::Partition) -> Result<Partition> {
    Ok(Partition {
        values: partition_values_from_glue(partition.values()),
        location: partition.storage_descriptor().and_then(|s| s.location()).unwrap_or_default().to_string(),
        files: files_of(partition.parameters()),
    })
}

/// A written unpartitioned table's files, as the one partition of no values.
fn partition_of_unpartitioned(table: &GlueTable) -> Option<Partition> {
    let files = files_of(table.parameters());
    if files.is_empty() {
        return None;
    }
    Some(Partition {
        values: Vec::new(),
        location: table.storage_descriptor().and_then(|s| s.location()).unwrap_or_default().to_string(),
        files,
    })
}

fn columns_of(columns: &[GlueColumn]) -> Result<Vec<Column>> {
    columns
        .iter()
        .map(|c| {
            let ty: GlueType = c
                .r#type()
                .unwrap_or("string")
                .parse()
                .map_err(|e: String| Error::runtime(format!("column {}: {e}", c.name())))?;
            Ok(Column::new(c.name(), ty))
        })
        .collect()
}

fn glue_columns(columns: &[Column]) -> Result<Vec<GlueColumn>> {
    columns
        .iter()
        .map(|c| {
            GlueColumn::builder()
                .name(&c.name)
                .r#type(c.ty.to_string())
                .build()
                .map_err(|e| Error::runtime(e.to_string()))
        })
        .collect()
}

/// Our definition of a Glue table.
fn definition_of(table: &GlueTable) -> Result<TableDefinition> {
    let storage = table.storage_descriptor();
    let serde = storage.and_then(|s| s.serde_info());
    let parameters: BTreeMap<String, String> = table
        .parameters()
        .map(|p| {
            p.iter()
                .filter(|(k, _)| {
                    !k.starts_with("etl.")
                        || k.as_str() == super::definition::WRITTEN_BY
                        || k.as_str() == "etl.null_values"
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let format = parameters.get("classification").and_then(|c| c.parse::<Format>().ok()).unwrap_or(Format::Parquet);
    Ok(TableDefinition {
        location: storage.and_then(|s| s.location()).unwrap_or_default().to_string(),
        format,
        columns: columns_of(storage.map(|s| s.columns()).unwrap_or_default())?,
        partition_keys: columns_of(table.partition_keys())?,
        table_type: table.table_type().unwrap_or("EXTERNAL_TABLE").to_string(),
        input_format: storage.and_then(|s| s.input_format()).unwrap_or_default().to_string(),
        output_format: storage.and_then(|s| s.output_format()).unwrap_or_default().to_string(),
        serde: SerDe {
            library: serde.and_then(|s| s.serialization_library()).unwrap_or_default().to_string(),
            parameters: serde.and_then(|s| s.parameters()).map(|p| p.clone().into_iter().collect()).unwrap_or_default(),
        },
        parameters,
    })
}

fn storage_descriptor(definition: &TableDefinition) -> Result<StorageDescriptor> {
    Ok(StorageDescriptor::builder()
        .set_columns(Some(glue_columns(&definition.columns)?))
        .location(&definition.location)
        .input_format(&definition.input_format)
        .output_format(&definition.output_format)
        .compressed(false)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(&definition.serde.library)
                .set_parameters(Some(definition.serde.parameters.clone().into_iter().collect()))
                .build(),
        )
        .build())
}

fn table_input(
    name: &TableName,
    definition: &TableDefinition,
    parameters: HashMap<String, String>,
) -> Result<TableInput> {
    TableInput::builder()
        .name(&name.table)
        .table_type(&definition.table_type)
        .set_parameters(Some(parameters))
        .storage_descriptor(storage_descriptor(definition)?)
        .set_partition_keys(Some(glue_columns(&definition.partition_keys)?))
        .build()
        .map_err(|e| Error::runtime(e.to_string()))
}

/// A partition as Glue stores it: the table's storage, at the partition's folder.
fn partition_input(template: &StorageDescriptor, partition: &Partition) -> Result<PartitionInput> {
    let mut storage = template.clone();
    storage.location = Some(partition.location.clone());
    let mut parameters = HashMap::new();
    if !partition.files.is_empty() {
        parameters.insert(FILES.to_string(), serde_json::to_string(&partition.files)?);
    }
    Ok(PartitionInput::builder()
        .set_values(Some(glue_partition_values(&partition.values)))
        .storage_descriptor(storage)
        .set_parameters(Some(parameters))
        .build())
}

fn partition_errors(name: &TableName, action: &str, errors: &[aws_sdk_glue::types::PartitionError]) -> Result<()> {
    let Some(failure) = errors.first() else {
        return Ok(());
    };
    let code = failure.error_detail().and_then(|d| d.error_code()).unwrap_or_default();
    let message = failure.error_detail().and_then(|d| d.error_message()).unwrap_or_default();
    let text = format!("{action} partition {:?} of {name}: {code} {message}", failure.partition_values());
    if code == "AlreadyExistsException" || code == "EntityNotFoundException" {
        return Err(Error::conflict(format!("conflict on {name}: {text} (another run changed it first)")));
    }
    Err(Error::runtime(text))
}

/// A Glue failure, named and explained (see [`crate::location::retry::sdk_error`]).
fn glue_error<E: ProvideErrorMetadata + StdError + 'static>(
    what: &str,
    error: SdkError<E, aws_sdk_glue::config::http::HttpResponse>,
) -> Error {
    crate::location::retry::sdk_error("Glue", what, error)
}
