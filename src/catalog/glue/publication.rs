//! Publishing to Glue: check what every change builds on, write the journal (the commit
//! point, see [`crate::catalog::journal`]), apply the changes (each table, then its
//! partitions in batches), remove the journal; and finish a journaled publication that a
//! killed run left half-applied.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_glue::types::{
    BatchUpdatePartitionRequestEntry, Partition as GluePartition, PartitionValueList, Table as GlueTable,
};

use super::GlueCatalog;
use super::client::{CREATE_BATCH, DELETE_BATCH, UPDATE_BATCH};
use super::convert::{
    CHANGE, DATA, DIFF, FILES, RUN_ID, VERSION, current_location, data_record, definition_of, our_version,
    partition_input, partition_of, partition_of_unpartitioned, table_input, written_upsert,
};
use crate::catalog::journal::Journal;
use crate::catalog::{
    DataChange, DataVersion, Partition, PreparedVersion, Publication, Published, TableChange, TableDefinition,
    TableName, VersionChange, conflict, partitions_after,
};
use crate::error::{Error, ErrorKind, Result};
use crate::layout::{self, glue_partition_values, partition_values_from_glue};
use crate::location::Location;

impl GlueCatalog {
    /// Finishes the committed publications a written table's journal folder names (see
    /// [`super::journal`]); true when there were any.
    pub(super) async fn finish_publications(&self, name: &TableName, table: &GlueTable) -> Result<bool> {
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
                let current = self.client.table(&change.name).await?;
                let partitioned = current.as_ref().is_some_and(|t| !t.partition_keys().is_empty());
                let partitions = if partitioned { self.client.partitions(&change.name).await? } else { Vec::new() };
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
    pub(super) async fn check(&self, change: &TableChange) -> Result<(Option<GlueTable>, Vec<GluePartition>)> {
        let current = self.client.table(&change.name).await?;
        let version = current.as_ref().map(our_version);
        if version != change.expected_version {
            let definition = current.as_ref().map(definition_of).transpose()?;
            // Another run crawling this source recorded this very schema first (see
            // `TableChange::crawled_as`): the table is as this change would leave it.
            if !change.crawled_as(definition.as_ref()) {
                return Err(conflict(&change.name, change.expected_version, version));
            }
        }
        let partitions = match (&current, &change.data) {
            (Some(table), DataChange::Written(_) | DataChange::Discovered { .. })
                if !table.partition_keys().is_empty() =>
            {
                self.client.partitions(&change.name).await?
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

    /// Applies one table's change: its definition, then its partitions.
    pub(super) async fn apply(
        &self,
        change: &TableChange,
        run_id: Option<&str>,
        current: Option<GlueTable>,
        partitions: Vec<GluePartition>,
        published: &mut Published,
    ) -> Result<()> {
        let version = self.apply_table(change, run_id, current.as_ref(), published).await?;
        published.versions.push(version);
        published.data_versions.push(match &change.data {
            DataChange::Written(written) => written.note.prepared.as_ref().map(|p| p.version.version),
            _ => None,
        });
        crate::kill_points::reached("catalog.commit");
        self.apply_partitions(change, partitions, published).await
    }

    /// The table itself: a new definition, or (unpartitioned written tables) new files.
    /// Returns its version after the change.
    async fn apply_table(
        &self,
        change: &TableChange,
        run_id: Option<&str>,
        current: Option<&GlueTable>,
        published: &mut Published,
    ) -> Result<u64> {
        let name = &change.name;
        let old_definition = current.map(definition_of).transpose()?;
        let mut version = current.map(our_version).unwrap_or(0);
        let unpartitioned_files = match &change.data {
            DataChange::Written(written) if written.upserts.iter().any(|w| w.partition.values.is_empty()) => {
                written.upserts.iter().find(|w| w.partition.values.is_empty()).map(|w| w.partition.files.clone())
            }
            _ => None,
        };
        let definition = change.new_version.as_ref().map(|n| n.definition.clone()).or_else(|| old_definition.clone());
        let new_schema = is_new_schema(change, old_definition.as_ref());
        if new_schema {
            version += 1;
        }
        // Every publication of a written table is a table version of its own (archived by the
        // next update), recording its data version.
        let data = match &change.data {
            DataChange::Written(written) => written.note.prepared.as_ref(),
            _ => None,
        };
        if change.new_version.is_some() || unpartitioned_files.is_some() || data.is_some() {
            let definition = definition
                .ok_or_else(|| Error::runtime(format!("publishing {name}: a new table needs a definition")))?;
            let mut parameters: HashMap<String, String> = definition.parameters.clone().into_iter().collect();
            if let Some(current) = current {
                // Keep what the version we build on recorded, unless this is a new version.
                for key in [RUN_ID, CHANGE, DIFF] {
                    if let Some(value) = current.parameters().and_then(|p| p.get(key)) {
                        parameters.insert(key.to_string(), value.clone());
                    }
                }
            }
            parameters.insert(VERSION.to_string(), version.to_string());
            if let Some(data) = data {
                parameters.insert(DATA.to_string(), serde_json::to_string(data)?);
            }
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
                // Athena reads an unpartitioned Hive table from the run's folder, a Delta
                // table from its root, where its log is.
                if let Some(write) = written_upsert(&change.data, &[]).filter(|_| !definition.is_delta()) {
                    location = write.partition.location.clone();
                }
            }
            let input = table_input(name, &TableDefinition { location, ..definition }, parameters)?;
            match current {
                None => {
                    self.client.ensure_database(&name.database).await?;
                    self.client.create_table(name, input).await?;
                }
                Some(current) => {
                    let version_id = current.version_id();
                    let skip_archive = !new_schema && data.is_none();
                    self.client.update_table(name, input, skip_archive, version_id, change.expected_version).await?;
                }
            }
            if let (Some(current), Some(_)) = (&current, &unpartitioned_files) {
                if let Some(old) = partition_of_unpartitioned(current) {
                    published.replaced.push(old);
                }
            }
        }
        Ok(version)
    }

    /// The partitions a change sets and drops, in Glue's batches; each partition switches
    /// folders in one call.
    async fn apply_partitions(
        &self,
        change: &TableChange,
        partitions: Vec<GluePartition>,
        published: &mut Published,
    ) -> Result<()> {
        let name = &change.name;
        let existing: BTreeMap<Vec<Option<String>>, GluePartition> =
            partitions.into_iter().map(|p| (partition_values_from_glue(p.values()), p)).collect();
        if matches!(change.data, DataChange::None) {
            return Ok(());
        }
        let Some(template) = self.client.table(name).await?.and_then(|t| t.storage_descriptor) else {
            return Ok(());
        };
        let (upserts, drops): (Vec<Partition>, Vec<Partition>) = match &change.data {
            DataChange::None => return Ok(()),
            DataChange::Discovered { partitions: found, complete } => {
                let gone = existing
                    .iter()
                    .filter(|(values, _)| *complete && !found.iter().any(|p| &p.values == *values))
                    .map(|(_, p)| partition_of(p))
                    .collect::<Result<Vec<_>>>()?;
                // Athena reads a text partition with the columns and SerDe its own descriptor
                // lists: a crawl that changes the table's updates every partition's, as the
                // Glue crawler's "update all partitions from the table" does.
                let stale = |p: &Partition| match existing.get(&p.values).and_then(|e| e.storage_descriptor()) {
                    None => true,
                    Some(current) => {
                        current.location() != Some(p.location.as_str())
                            || current.columns() != template.columns()
                            || current.serde_info() != template.serde_info()
                    }
                };
                (found.iter().filter(|p| stale(p)).cloned().collect(), gone)
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
            self.client.create_partitions(name, batch.to_vec()).await?;
            crate::kill_points::reached("catalog.commit");
        }
        for batch in updates.chunks(UPDATE_BATCH) {
            self.client.update_partitions(name, batch.to_vec()).await?;
            crate::kill_points::reached("catalog.commit");
        }
        let drops: Vec<&Partition> = drops.iter().filter(|p| existing.contains_key(&p.values)).collect();
        for batch in drops.chunks(DELETE_BATCH) {
            let values: Vec<PartitionValueList> = batch
                .iter()
                .map(|p| PartitionValueList::builder().set_values(Some(glue_partition_values(&p.values))).build())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::runtime(e.to_string()))?;
            self.client.delete_partitions(name, values).await?;
            crate::kill_points::reached("catalog.commit");
            for partition in batch {
                if let Some(old) = existing.get(&partition.values) {
                    published.replaced.push(partition_of(old)?);
                }
            }
        }
        Ok(())
    }

    /// Checks every change, writes the journal (the commit point), applies the changes table
    /// by table, then removes the journal.
    pub(super) async fn publish_all(&self, mut publication: Publication) -> Result<Published> {
        let mut checked = Vec::with_capacity(publication.tables.len());
        for change in &publication.tables {
            checked.push(self.check(change).await?);
        }
        let mut roots = Vec::new();
        let run_id = publication.run_id.clone();
        for (change, (current, partitions)) in publication.tables.iter_mut().zip(&checked) {
            if !matches!(change.data, DataChange::Written(_)) {
                continue;
            }
            let definition = match (&change.new_version, current) {
                (Some(new), _) => new.definition.clone(),
                (None, Some(current)) => definition_of(current)?,
                (None, None) => continue,
            };
            let root = definition.written_root()?;
            prepare_version(change, current.as_ref(), partitions, &root, run_id.as_deref()).await?;
            roots.push(root);
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
                    withdraw_manifests(&publication).await;
                    return Err(e);
                }
                // Past its commit point the publication stands (the next `etl` read of these
                // tables finishes it), so the run has published, and must say so.
                (Err(e), Some(_)) => {
                    published.warnings.push(format!(
                        "the publication is committed, but applying it to Glue stopped: {}; the next etl command that reads {} finishes it",
                        e.message(),
                        change.name
                    ));
                    return Ok(published);
                }
                (Err(e), None) => return Err(e),
            }
        }
        if let Some(journal) = journal {
            if let Err(e) = journal.end().await {
                published.warnings.push(format!("the publication is complete, but removing its journal failed: {e}"));
            }
        }
        Ok(published)
    }
}

/// Whether a change records a new schema version of the table it builds on.
fn is_new_schema(change: &TableChange, old: Option<&TableDefinition>) -> bool {
    match (&change.new_version, old) {
        (Some(new), Some(old)) => new.definition.is_new_version_of(old),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Decides a written change's data version before the commit point: its number, what it
/// holds, and the manifest listing its partitions, written now (a publication that then fails
/// leaves a manifest no table version names; nothing reads it).
async fn prepare_version(
    change: &mut TableChange,
    current: Option<&GlueTable>,
    partitions: &[GluePartition],
    root: &Location,
    run_id: Option<&str>,
) -> Result<()> {
    let old_definition = current.map(definition_of).transpose()?;
    let schema_version = current.map(our_version).unwrap_or(0) + is_new_schema(change, old_definition.as_ref()) as u64;
    let DataChange::Written(written) = &mut change.data else {
        return Ok(());
    };
    if written.note.prepared.is_some() {
        return Ok(());
    }
    let before: Vec<Partition> = match current {
        Some(table) if table.partition_keys().is_empty() => partition_of_unpartitioned(table).into_iter().collect(),
        Some(_) => partitions.iter().map(partition_of).collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let after = partitions_after(&before, written);
    let number = current.and_then(data_record).map_or(0, |r| r.version.version) + 1;
    let id = run_id.unwrap_or("unnamed");
    let manifest = layout::manifest(root, number, id);
    manifest.put(manifest.prefix(), bytes::Bytes::from(serde_json::to_vec(&after)?)).await?;
    let version =
        DataVersion::of(number, run_id.map(str::to_string), chrono::Utc::now(), schema_version, &written.note, &after);
    written.note.prepared = Some(PreparedVersion { version, manifest: manifest.url() });
    Ok(())
}

/// The manifests of a publication that lost a race: no table version names them.
async fn withdraw_manifests(publication: &Publication) {
    for change in &publication.tables {
        let DataChange::Written(written) = &change.data else { continue };
        let Some(prepared) = &written.note.prepared else { continue };
        if let Ok(manifest) = Location::parse(&prepared.manifest) {
            // Best effort: a manifest left behind names no version and misleads no reader.
            let _ = manifest.delete(manifest.prefix()).await;
        }
    }
}
