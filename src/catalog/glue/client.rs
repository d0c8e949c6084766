//! The Glue calls the catalog makes, one method each, with Glue's errors turned into ours:
//! a missing table is `None`, a lost race (`AlreadyExists`, `ConcurrentModification`, a
//! partition that appeared or vanished) a conflict, anything else an error naming the call
//! and the table.

use std::error::Error as StdError;

use aws_sdk_glue::Client;
use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{
    BatchUpdatePartitionRequestEntry, DatabaseInput, Partition as GluePartition, PartitionError, PartitionInput,
    PartitionValueList, Table as GlueTable, TableInput, TableVersion as GlueTableVersion,
};

use crate::catalog::{TableName, conflict};
use crate::error::{Error, Result};
use crate::location::aws::{AWS_ENDPOINT_URL_GLUE, endpoint, sdk_config};

/// Glue's limits per batch call.
pub(super) const CREATE_BATCH: usize = 100;
pub(super) const UPDATE_BATCH: usize = 100;
pub(super) const DELETE_BATCH: usize = 25;

#[derive(Debug, Clone)]
pub(super) struct GlueClient {
    client: Client,
}

impl GlueClient {
    pub(super) async fn connect() -> Self {
        let config = sdk_config().await;
        let mut builder = aws_sdk_glue::config::Builder::from(config);
        if let Some(url) = endpoint(AWS_ENDPOINT_URL_GLUE) {
            builder = builder.endpoint_url(url);
        }
        GlueClient { client: Client::from_conf(builder.build()) }
    }

    pub(super) async fn databases(&self) -> Result<Vec<String>> {
        let mut pages = self.client.get_databases().into_paginator().send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| glue_error("listing databases", e))?;
            names.extend(page.database_list.into_iter().map(|d| d.name));
        }
        names.sort();
        Ok(names)
    }

    /// The table names of a database; none for a database that does not exist.
    pub(super) async fn tables(&self, database: &str) -> Result<Vec<String>> {
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

    pub(super) async fn table(&self, name: &TableName) -> Result<Option<GlueTable>> {
        match self.client.get_table().database_name(&name.database).name(&name.table).send().await {
            Ok(output) => Ok(output.table),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(None),
            Err(e) => Err(glue_error(&format!("reading table {name}"), e)),
        }
    }

    pub(super) async fn table_versions(&self, name: &TableName) -> Result<Vec<GlueTableVersion>> {
        let mut pages = self
            .client
            .get_table_versions()
            .database_name(&name.database)
            .table_name(&name.table)
            .into_paginator()
            .send();
        let mut versions = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| glue_error(&format!("reading the versions of {name}"), e))?;
            versions.extend(page.table_versions.unwrap_or_default());
        }
        Ok(versions)
    }

    pub(super) async fn partitions(&self, name: &TableName) -> Result<Vec<GluePartition>> {
        let mut pages =
            self.client.get_partitions().database_name(&name.database).table_name(&name.table).into_paginator().send();
        let mut partitions = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| glue_error(&format!("listing the partitions of {name}"), e))?;
            partitions.extend(page.partitions.unwrap_or_default());
        }
        Ok(partitions)
    }

    pub(super) async fn ensure_database(&self, database: &str) -> Result<()> {
        let input = DatabaseInput::builder().name(database).build().map_err(|e| Error::runtime(e.to_string()))?;
        match self.client.create_database().database_input(input).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(()),
            Err(e) => Err(glue_error(&format!("creating database {database}"), e)),
        }
    }

    /// Creates a table; one that exists already is a conflict (another writer created it).
    pub(super) async fn create_table(&self, name: &TableName, input: TableInput) -> Result<()> {
        match self.client.create_table().database_name(&name.database).table_input(input).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => {
                Err(conflict(name, None, Some(1)))
            }
            Err(e) => Err(glue_error(&format!("creating table {name}"), e)),
        }
    }

    /// Updates a table from the Glue version `version_id` it was read at (a stale one is a
    /// conflict), archiving the previous definition unless `skip_archive`.
    pub(super) async fn update_table(
        &self,
        name: &TableName,
        input: TableInput,
        skip_archive: bool,
        version_id: Option<&str>,
        expected_version: Option<u64>,
    ) -> Result<()> {
        let update = self
            .client
            .update_table()
            .database_name(&name.database)
            .table_input(input)
            .skip_archive(skip_archive)
            .set_version_id(version_id.map(str::to_string));
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_concurrent_modification_exception()) => {
                // Glue says only that the table's version moved since this writer read it.
                let read =
                    expected_version.map_or("before the table existed".to_string(), |v| format!("at version {v}"));
                Err(Error::conflict(format!(
                    "conflict on {name}: another writer updated the table in Glue after this one read it ({read}); nothing was published (run again to build on its change)"
                )))
            }
            Err(e) => Err(glue_error(&format!("updating table {name}"), e)),
        }
    }

    /// At most [`CREATE_BATCH`] partitions.
    pub(super) async fn create_partitions(&self, name: &TableName, batch: Vec<PartitionInput>) -> Result<()> {
        let output = self
            .client
            .batch_create_partition()
            .database_name(&name.database)
            .table_name(&name.table)
            .set_partition_input_list(Some(batch))
            .send()
            .await
            .map_err(|e| glue_error(&format!("registering partitions of {name}"), e))?;
        partition_errors(name, "registering", output.errors())
    }

    /// At most [`UPDATE_BATCH`] partitions.
    pub(super) async fn update_partitions(
        &self,
        name: &TableName,
        batch: Vec<BatchUpdatePartitionRequestEntry>,
    ) -> Result<()> {
        let output = self
            .client
            .batch_update_partition()
            .database_name(&name.database)
            .table_name(&name.table)
            .set_entries(Some(batch))
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
        Ok(())
    }

    /// At most [`DELETE_BATCH`] partitions.
    pub(super) async fn delete_partitions(&self, name: &TableName, batch: Vec<PartitionValueList>) -> Result<()> {
        let output = self
            .client
            .batch_delete_partition()
            .database_name(&name.database)
            .table_name(&name.table)
            .set_partitions_to_delete(Some(batch))
            .send()
            .await
            .map_err(|e| glue_error(&format!("removing partitions of {name}"), e))?;
        partition_errors(name, "removing", output.errors())
    }
}

/// The first failure of a batch call, as a conflict when the partition's existence changed
/// under the writer.
fn partition_errors(name: &TableName, action: &str, errors: &[PartitionError]) -> Result<()> {
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
