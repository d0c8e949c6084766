//! `etl gc`: removes what runs that never published left under the tables they write.
//!
//! A run writes only into folders it owns, `_etl_staging/RUN/` and `…/run-RUN/`, and a run
//! that fails removes them itself. A killed one cannot; the next run of the same target
//! cleans the staging folder and the partitions it writes, but a partition it does not write
//! keeps the dead run's folder. This sweeps a whole table: every object in a run's folder
//! that the catalog does not name, of a run that is not live, goes.
//!
//! It deliberately removes nothing else: objects outside run folders are not ours (someone
//! put them there), and a folder of a run that may still be running (one this machine's
//! history knows as live, or one it does not know that started recently, as a run of another
//! `$ETL_HOME` would be) is left for a later sweep. Crawled tables are never touched.

use std::collections::BTreeSet;

use serde::Serialize;

use super::publish::{RUN_FOLDER_PREFIX, remove_empty_folders};
use super::{RunLiveness, STAGING_FOLDER};
use crate::catalog::journal::JOURNAL_FOLDER;
use crate::catalog::provider::{is_written, written_root};
use crate::catalog::{Catalog, Table};
use crate::error::{Result, ResultExt};

/// An object that a sweep removed (or, in a dry run, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Garbage {
    pub table: String,
    pub path: String,
    pub bytes: u64,
    pub run_id: String,
}

/// What a sweep of a table found.
#[derive(Debug, Default, Serialize)]
pub struct Sweep {
    pub removed: Vec<Garbage>,
    /// Objects of runs that may still be running, left alone.
    pub live: u64,
}

/// The run that wrote an object, from its key under the table root: `_etl_staging/RUN/…`,
/// `_etl_publications/RUN.*` or `…/run-RUN/file`.
fn run_of(parts: &[String]) -> Option<&str> {
    match parts.first().map(String::as_str) {
        Some(STAGING_FOLDER) => return parts.get(1).map(String::as_str),
        Some(JOURNAL_FOLDER) => return parts.get(1).and_then(|name| name.split_once('.')).map(|(run, _)| run),
        _ => {}
    }
    let folders = &parts[..parts.len().saturating_sub(1)];
    folders.iter().rev().find_map(|p| p.strip_prefix(RUN_FOLDER_PREFIX))
}

/// Sweeps one written table; removes nothing when `dry_run`.
pub async fn sweep(catalog: &dyn Catalog, table: &Table, runs: &dyn RunLiveness, dry_run: bool) -> Result<Sweep> {
    let mut sweep = Sweep::default();
    if !is_written(&table.definition) {
        return Ok(sweep);
    }
    let root = written_root(&table.definition)?;
    let partitions = catalog.partitions(&table.name).await?;
    // The folders readers read now: each partition's, and an unpartitioned table's own.
    let current: BTreeSet<String> = partitions
        .iter()
        .map(|p| p.location.as_str())
        .chain(std::iter::once(table.definition.location.as_str()))
        .filter(|folder| {
            folder.trim_end_matches('/').rsplit('/').next().is_some_and(|f| f.starts_with(RUN_FOLDER_PREFIX))
        })
        .map(|folder| format!("{}/", folder.trim_end_matches('/')))
        .collect();
    let objects = root.list().await.with_context(|| format!("listing table {}", table.name))?;
    for object in objects {
        let Some(parts) = root.relative(&object.location) else {
            continue;
        };
        let Some(run_id) = run_of(&parts) else {
            continue;
        };
        let url = root.url_of(&object.location);
        if current.iter().any(|folder| url.starts_with(folder.as_str())) {
            continue;
        }
        if runs.is_live(run_id) {
            sweep.live += 1;
            continue;
        }
        if !dry_run {
            root.delete(&object.location).await?;
            let folder = &parts[..parts.len() - 1];
            remove_empty_folders(&root.join(&folder.join("/")), &root);
        }
        sweep.removed.push(Garbage {
            table: table.name.to_string(),
            path: url,
            bytes: object.size,
            run_id: run_id.to_string(),
        });
    }
    Ok(sweep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(key: &str) -> Vec<String> {
        key.split('/').map(str::to_string).collect()
    }

    #[test]
    fn objects_belong_to_the_run_whose_folder_holds_them() {
        assert_eq!(run_of(&parts("_etl_staging/r1/dt=a/x.parquet")), Some("r1"));
        assert_eq!(run_of(&parts("dt=a/run-r2/part.parquet")), Some("r2"));
        assert_eq!(run_of(&parts("run-r3/part.parquet")), Some("r3"));
        assert_eq!(run_of(&parts("_etl_publications/r5.pending")), Some("r5"));
        // A file named like a run folder, and files outside run folders, are not ours.
        assert_eq!(run_of(&parts("dt=a/run-r4.parquet")), None);
        assert_eq!(run_of(&parts("dt=a/manual.parquet")), None);
    }
}
