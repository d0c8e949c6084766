//! Data versions of written tables as their readers and writers need them: which files
//! retention keeps, and where a version's files are now.
//!
//! A version's files are where it published them while it is current (or while a later
//! version still lists them); once replaced, the writer moves them under the table's
//! `_etl_retained/` folder (see [`crate::layout`]) until retention no longer needs them. So a
//! version can be read, or rolled back to, while every file of it is in one place or the
//! other. Nothing here moves or deletes anything: that is the sink's.
//!
//! Version 0 is the table before its first publication: no rows, nothing on storage. It is
//! never recorded, but it can be read and rolled back to, which is how a pipeline's
//! `on_failure = "rollback"` undoes a table the failed run wrote for the first time while
//! keeping the table's history (dropping the table would lose what the run published).

use std::collections::BTreeSet;

use super::{Catalog, DataVersion, Partition, Table, TableDefinition, TableName};
use crate::error::{Error, Result, ResultExt};
use crate::layout;

/// The files (as published) of the versions retention keeps: the latest `retain_versions`, as
/// the latest version recorded it. Empty for a table with no data version.
pub async fn kept_files(catalog: &dyn Catalog, name: &TableName) -> Result<BTreeSet<String>> {
    let versions = catalog.data_versions(name).await?;
    let Some(latest) = versions.last() else {
        return Ok(BTreeSet::new());
    };
    let keep = latest.retain_versions.max(1) as usize;
    let kept: Vec<u64> = versions.iter().rev().take(keep).map(|v| v.version).collect();
    let mut files = BTreeSet::new();
    for snapshot in catalog.snapshots(name, &kept).await? {
        files.extend(snapshot.into_iter().flat_map(|p| p.files).map(|f| f.path));
    }
    Ok(files)
}

/// A data version as it can be read now.
#[derive(Debug, Clone)]
pub struct Located {
    pub version: DataVersion,
    /// The definition of the schema version the data was written with.
    pub definition: TableDefinition,
    /// Its partitions as published (file paths as the version recorded them).
    pub published: Vec<Partition>,
    /// The same, with each file's path where it is now (published, or retained).
    pub readable: Vec<Partition>,
    /// Files of the version that are nowhere any more.
    pub missing: Vec<String>,
}

impl Located {
    /// Refuses a version whose files retention removed, saying which versions can be read.
    pub fn require_files(&self, table: &TableName, available: &[u64]) -> Result<()> {
        if self.missing.is_empty() {
            return Ok(());
        }
        let files = self.version.files;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &version in available.iter().filter(|&&v| v != self.version.version) {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == version => *last = version,
                _ => runs.push((version, version)),
            }
        }
        let which = match runs.is_empty() {
            true => "none".to_string(),
            false => runs
                .iter()
                .map(|&(first, last)| match first == last {
                    true => first.to_string(),
                    false => format!("{first} to {last}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        Err(Error::not_found(format!(
            "version {} of {table} cannot be restored or read: {} of its {files} files are gone (a table keeps the files of as many versions as its target's retain_versions says, at each publication; versions whose files remain: {which})",
            self.version.version,
            self.missing.len(),
        )))
    }
}

/// The version before a table's first publication: no data.
pub const NO_DATA: u64 = 0;

/// Version 0 of `table`: its definition now, without data.
fn nothing(table: &Table) -> Located {
    let retain_versions = crate::sink::DEFAULT_RETAIN_VERSIONS;
    Located {
        version: DataVersion {
            version: NO_DATA,
            run_id: None,
            created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            rows: 0,
            bytes: 0,
            files: 0,
            rollback_of: None,
            schema_version: table.version,
            retain_versions,
            checks: Vec::new(),
            delta_version: None,
        },
        definition: table.definition.clone(),
        published: Vec::new(),
        readable: Vec::new(),
        missing: Vec::new(),
    }
}

/// The runs whose work a table's current version builds on: a rollback's version builds on
/// what the version it restored did; any other on its predecessor's, and its own run. (A run
/// of an overwrite replaced earlier rows, but what those runs read stays read.)
pub fn lineage(versions: &[DataVersion]) -> std::collections::HashSet<String> {
    let by_number: std::collections::HashMap<u64, &DataVersion> = versions.iter().map(|v| (v.version, v)).collect();
    let mut runs = std::collections::HashSet::new();
    let mut at = versions.iter().map(|v| v.version).max().unwrap_or(NO_DATA);
    while let Some(version) = by_number.get(&at) {
        match version.rollback_of {
            Some(restored) if restored < at => at = restored,
            Some(_) => break,
            None => {
                runs.extend(version.run_id.clone());
                at -= 1;
            }
        }
    }
    runs
}

/// Only a table jobs write has data versions; a crawled one's data is whatever its location holds.
pub fn require_written(table: &Table) -> Result<()> {
    if table.definition.is_written() {
        return Ok(());
    }
    Err(Error::config(format!("{} is a crawled table: only tables that jobs write have data versions", table.name)))
}

/// Where the files of version `version` of `table` are now (0: none, see [`NO_DATA`]).
pub async fn locate(catalog: &dyn Catalog, table: &Table, version: u64) -> Result<Located> {
    let name = &table.name;
    require_written(table)?;
    if version == NO_DATA {
        return Ok(nothing(table));
    }
    let versions = catalog.data_versions(name).await?;
    let Some(found) = versions.iter().find(|v| v.version == version).cloned() else {
        let range = match (versions.first(), versions.last()) {
            (Some(first), Some(last)) => format!("versions {} to {}", first.version, last.version),
            _ => "no versions yet".to_string(),
        };
        return Err(Error::not_found(format!("{name} has no version {version} ({range})")));
    };
    let published = catalog.snapshot(name, version).await?;
    let root = table.definition.written_root()?;
    let present = present_objects(table).await?;
    let mut missing = Vec::new();
    let mut readable = published.clone();
    for partition in &mut readable {
        for file in &mut partition.files {
            if present.contains(&file.path) {
                continue;
            }
            match layout::retained(&root, &file.path).map(|kept| kept.url()) {
                Some(kept) if present.contains(&kept) => file.path = kept,
                _ => missing.push(file.path.clone()),
            }
        }
    }
    let definition = catalog
        .versions(name)
        .await?
        .into_iter()
        .find(|v| v.version == found.schema_version)
        .map_or_else(|| table.definition.clone(), |v| v.definition);
    Ok(Located { version: found, definition, published, readable, missing })
}

/// Every object under a written table's root, as URLs.
pub async fn present_objects(table: &Table) -> Result<BTreeSet<String>> {
    let root = table.definition.written_root()?;
    let objects = root.list().await.with_context(|| format!("listing the files of {}", table.name))?;
    Ok(objects.iter().map(|o| root.url_of(&o.location)).collect())
}

/// The versions of `table` whose files are all still on storage.
pub async fn available(catalog: &dyn Catalog, table: &Table, versions: &[DataVersion]) -> Result<Vec<u64>> {
    let root = table.definition.written_root()?;
    let present = present_objects(table).await?;
    let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
    let mut out = Vec::new();
    for (version, snapshot) in versions.iter().zip(catalog.snapshots(&table.name, &numbers).await?) {
        let all_there = snapshot.iter().flat_map(|p| &p.files).all(|f| {
            present.contains(&f.path)
                || layout::retained(&root, &f.path).is_some_and(|kept| present.contains(&kept.url()))
        });
        if all_there {
            out.push(version.version);
        }
    }
    Ok(out)
}
