//! `etl gc`: removes what runs that never published left under the tables they write, and
//! the files of versions that retention no longer keeps.
//!
//! A run writes only into folders it owns, `_etl_staging/RUN/` and `…/run-RUN/`, and a run
//! that fails removes them itself. A killed one cannot; the next run of the same target
//! cleans the staging folder and the partitions it writes, but a partition it does not write
//! keeps the dead run's folder. This sweeps a whole table: every object in a run's folder
//! that the catalog does not name as current, of a run that is not live, goes, unless one of
//! the versions retention keeps lists it (a clean-up killed before it retained it): that one
//! is retained. Under `_etl_retained/`, what no kept version lists goes. A Delta table's files
//! never move: those a kept version lists stay where its log names them, the others go (the
//! VACUUM of a Delta table, keeping the versions retention keeps rather than a period).
//!
//! A Delta merge's files are named by delta-rs, in no run's folder: the commit that added
//! one says whose it is.
//!
//! It deliberately removes nothing else: objects outside run folders are not ours (someone
//! put them there), and a folder of a run that may still be running (one this machine's
//! history knows as live, or one it does not know that started recently, as a run of another
//! `$ETL_HOME` would be) is left for a later sweep. Crawled tables are never touched.

use std::collections::BTreeSet;

use serde::Serialize;

use super::RunLiveness;
use super::publish::{remove_empty_folders, retire};
use crate::catalog::versions::kept_files;
use crate::catalog::{Catalog, Table, TableName};
use crate::error::{Result, ResultExt};
use crate::layout::{self, is_run_folder, run_of};

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
    /// Files of replaced versions that were still in readers' folders, now retained.
    pub retained: u64,
}

/// Sweeps one written table; removes nothing when `dry_run`.
pub async fn sweep(catalog: &dyn Catalog, table: &Table, runs: &dyn RunLiveness, dry_run: bool) -> Result<Sweep> {
    let mut sweep = Sweep::default();
    if !table.definition.is_written() {
        return Ok(sweep);
    }
    let root = table.definition.written_root()?;
    let partitions = catalog.partitions(&table.name).await?;
    // The folders readers read now: each partition's, and an unpartitioned table's own.
    let current: BTreeSet<String> = partitions
        .iter()
        .map(|p| p.location.as_str())
        .chain(std::iter::once(table.definition.location.as_str()))
        .filter(|folder| is_run_folder(folder))
        .map(|folder| format!("{}/", folder.trim_end_matches('/')))
        .collect();
    let kept = kept_files(catalog, &table.name).await?;
    let delta_runs = match table.definition.is_delta() {
        true => super::delta::runs_of_files(&root).await?,
        false => Default::default(),
    };
    let objects = root.list().await.with_context(|| format!("listing table {}", table.name))?;
    for object in objects {
        let Some(parts) = root.relative(&object.location) else {
            continue;
        };
        let url = root.url_of(&object.location);
        if parts.first().map(String::as_str) == Some(layout::VERSIONS_FOLDER) {
            continue;
        }
        if let Some(published) = layout::published_of_retained(&root, &parts) {
            if kept.contains(&published) {
                continue;
            }
        } else {
            if current.iter().any(|folder| url.starts_with(folder.as_str())) {
                continue;
            }
            if kept.contains(&url) {
                // A Delta log names its files where they are.
                if table.definition.is_delta() {
                    continue;
                }
                if !dry_run {
                    retire(&root, &url, Some(&kept)).await?;
                    let folder = &parts[..parts.len() - 1];
                    remove_empty_folders(&root.join(&folder.join("/")), &root);
                }
                sweep.retained += 1;
                continue;
            }
        }
        let Some(run_id) = run_of(&parts).or_else(|| delta_runs.get(&url).map(String::as_str)) else {
            continue;
        };
        if runs.is_live(run_id) && !parts.first().is_some_and(|p| p == layout::RETAINED_FOLDER) {
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

/// What a sweep of several tables found.
#[derive(Debug, Default, Serialize)]
pub struct CatalogSweep {
    pub dry_run: bool,
    pub tables: u64,
    pub removed: Vec<Garbage>,
    pub bytes: u64,
    /// Objects of runs that may still be running, left alone.
    pub live: u64,
    /// Files of replaced versions moved out of readers' folders.
    pub retained: u64,
    /// Tables that could not be swept (with why), when every table was asked for.
    #[serde(skip)]
    pub failed: Vec<(TableName, String)>,
}

/// Sweeps the tables named, or every table of the catalog when `names` is empty; then one
/// unreadable table does not keep the sweep from the others (it is listed in `failed`).
pub async fn sweep_catalog(
    catalog: &dyn Catalog,
    names: &[TableName],
    runs: &dyn RunLiveness,
    dry_run: bool,
) -> Result<CatalogSweep> {
    let every_table = names.is_empty();
    let mut names = names.to_vec();
    if every_table {
        for database in catalog.databases().await? {
            for table in catalog.tables(&database).await? {
                names.push(TableName::new(&database, &table)?);
            }
        }
    }
    let mut report = CatalogSweep { dry_run, ..CatalogSweep::default() };
    for name in &names {
        let swept = async { sweep(catalog, &catalog.require(name).await?, runs, dry_run).await };
        let swept = match swept.await {
            Ok(swept) => swept,
            Err(e) if every_table => {
                report.failed.push((name.clone(), e.message().to_string()));
                continue;
            }
            Err(e) => return Err(e),
        };
        report.tables += 1;
        report.live += swept.live;
        report.retained += swept.retained;
        report.bytes += swept.removed.iter().map(|g| g.bytes).sum::<u64>();
        report.removed.extend(swept.removed);
    }
    Ok(report)
}
