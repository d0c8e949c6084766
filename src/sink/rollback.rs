//! Rolling a written table back: an earlier data version's data becomes current again, as a
//! new version that says which one it restores.
//!
//! It goes the way a run's publication goes ([`super::commit`]): the restored version's files
//! are copied into folders of the rollback's own (`run-ID/` in each partition that differs from
//! the current one; partitions that are the same are left alone), then one catalog
//! publication (one transaction in the embedded catalog, the journaled publication on Glue)
//! points the partitions there and drops those the version did not have, then what it replaced
//! is retained as any replaced version is. Files are copied, never rewritten: the version
//! rolled back to keeps its own, so it can be restored again, and the version rolled back
//! from stays restorable while retention keeps it.
//!
//! A version whose files retention removed is refused before anything is written; a failure
//! before the publication removes the copies. Version 0 ([`versions::NO_DATA`]) is the table
//! with no data. [`undo_runs`] is what a pipeline's `on_failure = "rollback"` needs: a table
//! back to the version it had before a set of runs published it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::RunLiveness;
use super::publish::{self, TargetPublication};
use crate::catalog::definition::WRITTEN_BY;
use crate::catalog::versions::{self, Located};
use crate::catalog::{
    Catalog, DataChange, DataFile, NewVersion, Partition, PartitionWrite, Publication, Table, TableChange, TableName,
    VersionNote,
};
use crate::error::{Error, Result};
use crate::layout;
use crate::schema::diff::diff;

/// What a rollback did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restored {
    pub table: String,
    /// The new version, which holds the restored data.
    pub version: u64,
    /// The version whose data it holds.
    pub restored: u64,
    /// Partitions whose folder changed, and files copied.
    pub partitions: u64,
    pub files_copied: u64,
    /// Warnings of the clean-up after the publication (the rollback stands).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Makes version `to` of `name` current again, as a new version; `id` names the rollback's
/// folders and its publication (a run id, as a run's would).
pub async fn roll_back(
    catalog: &dyn Catalog,
    name: &TableName,
    to: u64,
    id: &str,
    runs: &dyn RunLiveness,
) -> Result<Restored> {
    let table = catalog.require(name).await?;
    let versions = catalog.data_versions(name).await?;
    let located = versions::locate(catalog, &table, to).await?;
    if !located.missing.is_empty() {
        let available = versions::available(catalog, &table, &versions).await?;
        located.require_files(name, &available)?;
    }
    let current = catalog.partitions(name).await?;
    let root = table.definition.written_root()?;
    let (mut publication, mut plan) = plan(&table, &located, &current, &versions, id)?;
    publish::materialize(&root, &plan).await?;
    let delta = match table.definition.is_delta() {
        true => Some(commit_delta(&root, &table, &located, &current, &mut publication, &mut plan, id).await?),
        false => None,
    };
    let published = match catalog.publish(publication).await {
        Ok(published) => published,
        Err(e) if delta.is_some() => {
            let done = delta.as_ref().expect("matched");
            return Err(match super::delta::revert(&root, done, id).await {
                Ok(_) => e,
                Err(revert) => e.context(format!("(and undoing its Delta commit {} failed: {revert})", done.version)),
            });
        }
        Err(e) => {
            if let Err(cleanup) = publish::abandon(&root, &plan).await {
                return Err(e.context(format!("(and removing the rollback's copies failed: {cleanup})")));
            }
            return Err(e);
        }
    };
    let version = published.data_versions.first().copied().flatten().unwrap_or_default();
    let mut warnings = published.warnings.clone();
    let kept = versions::kept_files(catalog, name).await.ok();
    let cleaned = match delta {
        // What the rollback replaced stays for the log's versions that name it.
        Some(_) => Ok(()),
        None => publish::clean_up(&root, &plan, &published.replaced, runs, kept.as_ref()).await,
    };
    if let Err(e) = cleaned {
        warnings.push(format!("the rollback is published, but cleaning up {root} failed: {e}"));
    }
    Ok(Restored {
        table: name.to_string(),
        version,
        restored: to,
        partitions: plan.written.upserts.len() as u64 + plan.written.drops.len() as u64,
        files_copied: plan.copies.len() as u64,
        warnings,
    })
}

/// The publication that makes `located` current, and the copies it needs.
fn plan(
    table: &Table,
    located: &Located,
    current: &[Partition],
    versions: &[crate::catalog::DataVersion],
    id: &str,
) -> Result<(Publication, TargetPublication)> {
    let root = table.definition.written_root()?;
    let keys: Vec<String> = located.definition.partition_keys.iter().map(|k| k.name.clone()).collect();
    let mut plan = TargetPublication::default();
    for (published, readable) in located.published.iter().zip(&located.readable) {
        let now = current.iter().find(|p| p.values == published.values);
        if now.is_some_and(|now| now.location == published.location && same_files(now, published)) {
            continue;
        }
        if table.definition.is_delta() {
            // A Delta table's files never move: the version's are where it left them.
            plan.written
                .upserts
                .push(PartitionWrite { partition: published.clone(), based_on: Some(now.map(|p| p.location.clone())) });
            continue;
        }
        let folder = layout::run_folder(&root, keys.iter().map(String::as_str), &published.values, id);
        let mut files = Vec::with_capacity(published.files.len());
        for (file, source) in published.files.iter().zip(&readable.files) {
            let name = file.path.rsplit('/').next().unwrap_or_default();
            let copy = folder.join(name).url();
            plan.copies.push((source.path.clone(), copy.clone()));
            files.push(DataFile { path: copy, ..file.clone() });
        }
        plan.written.upserts.push(PartitionWrite {
            partition: Partition { values: published.values.clone(), location: folder.url(), files },
            based_on: Some(now.map(|p| p.location.clone())),
        });
    }
    for partition in current {
        if !located.published.iter().any(|p| p.values == partition.values) {
            plan.written.drops.push(PartitionWrite {
                partition: partition.clone(),
                based_on: Some(Some(partition.location.clone())),
            });
        }
    }
    // The definition the data was written with, at the folder readers are to read.
    let mut definition = located.definition.clone();
    definition.location = match plan.written.upserts.iter().find(|w| w.partition.values.is_empty()) {
        _ if table.definition.is_delta() => root.url(),
        Some(unpartitioned) => unpartitioned.partition.location.clone(),
        // Athena reads an unpartitioned table's location: with no data, a folder nothing is in.
        None if keys.is_empty() && located.published.is_empty() => layout::run_folder(&root, [], &[], id).url(),
        None if keys.is_empty() => table.definition.location.clone(),
        None => root.url(),
    };
    if let Some(writer) = table.definition.parameters.get(WRITTEN_BY) {
        definition.parameters.insert(WRITTEN_BY.to_string(), writer.clone());
    }
    let retain_versions = versions.last().map_or(crate::sink::DEFAULT_RETAIN_VERSIONS, |v| v.retain_versions);
    plan.written.note =
        VersionNote { retain_versions, rollback_of: Some(located.version.version), ..VersionNote::default() };
    let change = TableChange {
        name: table.name.clone(),
        expected_version: Some(table.version),
        new_version: Some(NewVersion { diff: diff(&table.definition.schema(), &definition.schema()), definition }),
        data: DataChange::Written(plan.written.clone()),
    };
    Ok((Publication { run_id: Some(id.to_string()), tables: vec![change] }, plan))
}

/// A Delta table's rollback, committed to its log before the catalog publication: the
/// version's files added back, the current ones it lacks removed (Delta's RESTORE), so the
/// log and the catalog hold the same files.
async fn commit_delta(
    root: &crate::location::Location,
    table: &Table,
    located: &Located,
    current: &[Partition],
    publication: &mut Publication,
    plan: &mut TargetPublication,
    id: &str,
) -> Result<super::delta::DeltaCommit> {
    let restored: BTreeSet<&str> = located.published.iter().flat_map(|p| &p.files).map(|f| f.path.as_str()).collect();
    let removed: Vec<DataFile> =
        current.iter().flat_map(|p| &p.files).filter(|f| !restored.contains(f.path.as_str())).cloned().collect();
    let schema = located.definition.schema();
    let change = super::delta::DeltaChange {
        location: root,
        table: &table.name,
        schema: &schema,
        written: &plan.written,
        replaced: &removed,
        recorded: Some(current),
        operation: super::delta::restore_operation(located.version.delta_version),
        data_change: true,
    };
    let done = match super::delta::commit(change, id).await {
        Ok(done) => done,
        // Another etl run that published meanwhile is a conflict to retry; another tool's
        // commit stays in the way of every retry.
        Err(e) if e.kind() == crate::error::ErrorKind::Conflict => {
            return Err(match super::delta::foreign_head(root).await? {
                Some(version) => Error::conflict(format!(
                    "{}: the Delta log at {root} holds commits etl did not make (version {version}: another tool \
                     changed the table), which a rollback would undo unseen; nothing was restored. Undo them with \
                     that tool, or copy the version you want to another table (`SELECT * FROM version_of(…)`)",
                    table.name
                )),
                None => e,
            });
        }
        Err(e) => return Err(e),
    };
    plan.written.note.delta_version = Some(done.version);
    for change in &mut publication.tables {
        if let DataChange::Written(written) = &mut change.data {
            written.note.delta_version = Some(done.version);
        }
    }
    Ok(done)
}

fn same_files(a: &Partition, b: &Partition) -> bool {
    let paths = |p: &Partition| p.files.iter().map(|f| f.path.clone()).collect::<std::collections::BTreeSet<_>>();
    paths(a) == paths(b)
}

/// What [`undo_runs`] did to a table.
#[derive(Debug, Clone)]
pub enum Undone {
    /// None of the runs published it.
    Untouched,
    /// It already holds the version it had before them (a retry does nothing twice).
    AlreadyBack {
        version: u64,
    },
    Restored(Restored),
}

/// Rolls a table back to the data version it had before any of `runs` published it: the one
/// before the first version they made (since a rollback last took theirs back), or version 0
/// (no data) when that was the table's first. What others published after that version goes
/// too: the table is as it was before the runs. `id` names the rollback's publication, as for [`roll_back`].
pub async fn undo_runs(
    catalog: &dyn Catalog,
    name: &TableName,
    runs: &BTreeSet<String>,
    id: &str,
    liveness: &dyn RunLiveness,
) -> Result<Undone> {
    let versions = catalog.data_versions(name).await?;
    // The runs' first version since a rollback last took theirs back (a resumed pipeline run
    // that fails again): what others published before it stays.
    let mut first: Option<u64> = None;
    let mut back: Option<u64> = None;
    for version in &versions {
        if let (Some(to), Some(from)) = (version.rollback_of, first)
            && to < from
        {
            (first, back) = (None, Some(to));
        }
        if first.is_none() && version.run_id.as_ref().is_some_and(|r| runs.contains(r)) {
            first = Some(version.version);
        }
    }
    let Some(first) = first else {
        return Ok(back.map_or(Undone::Untouched, |version| Undone::AlreadyBack { version }));
    };
    // Versions count publications from 1, one at a time: the one before is one less.
    let before = first - 1;
    let restored = roll_back(catalog, name, before, id, liveness)
        .await
        .map_err(|e| Error::new(e.kind(), format!("rolling {name} back to version {before}: {}", e.message())))?;
    Ok(Undone::Restored(restored))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::catalog::WriteMode;
    use crate::catalog::local::LocalCatalog;
    use crate::location::Location;
    use crate::sink::{Commit, ParquetCompression, TargetSpec, WriteTag};

    struct NoneLive;

    impl RunLiveness for NoneLive {
        fn is_live(&self, _: &str) -> bool {
            false
        }
    }

    fn target(dir: &std::path::Path, table: &str, retain_versions: u32) -> TargetSpec {
        TargetSpec {
            table: table.parse().unwrap(),
            query: String::new(),
            location: Location::parse(dir.join(table).to_str().unwrap()).unwrap(),
            // An unpartitioned table lives in its current run's folder; a partitioned one
            // has a folder per partition.
            partition_by: if table.ends_with(".b") { Vec::new() } else { vec!["k".into()] },
            mode: WriteMode::Overwrite,
            compression: ParquetCompression::Zstd,
            encryption: Default::default(),
            checks: Vec::new(),
            retain_versions,
            layout: Default::default(),
            format: Default::default(),
            merge: None,
            data_change: true,
        }
    }

    async fn publish(catalog: &LocalCatalog, target: &TargetSpec, run: &str, ids: &[i64]) {
        let rows: Vec<String> =
            ids.iter().map(|id| format!("SELECT CAST({id} AS BIGINT) AS id, 'k{}' AS k", id % 2)).collect();
        let frame = SessionContext::new().sql(&rows.join(" UNION ALL ")).await.unwrap();
        let work = crate::catalog::Work { job: "j".into(), logical_date: "d".into(), params: String::new() };
        let tag = WriteTag { work, rerun_replaces: true };
        let mut commit = Commit::new(run, tag);
        commit.stage(catalog, frame, target, &NoneLive).await.unwrap();
        commit.publish(catalog, Vec::new()).await.unwrap();
        assert!(commit.clean_up(catalog, &NoneLive).await.is_empty());
        commit.close().await;
    }

    /// The ids a table holds now, read as any reader reads them.
    async fn ids(home: &std::path::Path, table: &str) -> Vec<i64> {
        let catalog: Arc<dyn Catalog> = Arc::new(LocalCatalog::open(home).unwrap());
        let ctx = crate::transform::session::session(catalog, Default::default(), &Default::default()).await.unwrap();
        let batches = ctx.sql(&format!("SELECT id FROM {table} ORDER BY id")).await.unwrap().collect().await.unwrap();
        batches
            .iter()
            .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
            .collect()
    }

    fn runs(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    /// (table, new version, version restored) of a table [`undo_runs`] restored.
    fn restored(undone: Undone) -> (String, u64, u64) {
        match undone {
            Undone::Restored(r) => (r.table, r.version, r.restored),
            other => panic!("nothing restored: {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tables_go_back_to_the_versions_they_had_before_runs_published_them() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let catalog = LocalCatalog::open(&home).unwrap();
        let (a, b) = (target(dir.path(), "db.a", 5), target(dir.path(), "db.b", 5));
        publish(&catalog, &a, "r1", &[1, 2]).await;
        publish(&catalog, &a, "r2", &[3]).await;
        publish(&catalog, &a, "r3", &[4, 5]).await;
        publish(&catalog, &b, "r3", &[10]).await;

        let undo = |name: &TableName, id: &'static str| {
            let (catalog, name) = (&catalog, name.clone());
            async move { undo_runs(catalog, &name, &runs(&["r2", "r3"]), id, &NoneLive).await.unwrap() }
        };
        assert_eq!(restored(undo(&a.table, "rb1").await), ("db.a".into(), 4, 1));
        assert_eq!(ids(&home, "db.a").await, [1, 2]);
        let versions = catalog.data_versions(&a.table).await.unwrap();
        assert_eq!((versions.len(), versions[3].rollback_of, versions[3].rows), (4, Some(1), 2));
        // A table the runs wrote first has no data before them: version 0, kept as a table
        // with its history.
        assert_eq!(restored(undo(&b.table, "rb1").await), ("db.b".into(), 2, 0));
        assert_eq!(ids(&home, "db.b").await, Vec::<i64>::new());
        let versions = catalog.data_versions(&b.table).await.unwrap();
        assert_eq!((versions[1].rollback_of, versions[1].rows, versions[1].files), (Some(0), 0, 0));
        let location = catalog.require(&b.table).await.unwrap().definition.location;
        assert!(location.ends_with("/db.b/run-rb1"), "{location}");
        // A retry restores nothing twice; runs that published nothing there touch nothing.
        assert!(matches!(undo(&a.table, "rb2").await, Undone::AlreadyBack { version: 1 }));
        assert!(matches!(undo(&b.table, "rb2").await, Undone::AlreadyBack { version: 0 }));
        let other = undo_runs(&catalog, &a.table, &runs(&["r9"]), "rb2", &NoneLive).await.unwrap();
        assert!(matches!(other, Undone::Untouched));
        // The versions rolled back from stay restorable.
        roll_back(&catalog, &a.table, 3, "rb3", &NoneLive).await.unwrap();
        assert_eq!(ids(&home, "db.a").await, [4, 5]);
        roll_back(&catalog, &b.table, 1, "rb3", &NoneLive).await.unwrap();
        assert_eq!(ids(&home, "db.b").await, [10]);
        // An unpartitioned table moves to the rollback's folder.
        publish(&catalog, &b, "r4", &[11, 12]).await;
        let restored = roll_back(&catalog, &b.table, 1, "rb4", &NoneLive).await.unwrap();
        assert_eq!((restored.version, restored.files_copied), (5, 1));
        assert_eq!(ids(&home, "db.b").await, [10]);
        assert!(catalog.require(&b.table).await.unwrap().definition.location.ends_with("/db.b/run-rb4"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_retention_removed_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let catalog = LocalCatalog::open(&home).unwrap();
        let a = target(dir.path(), "db.a", 1);
        publish(&catalog, &a, "r1", &[1]).await;
        publish(&catalog, &a, "r2", &[2]).await;
        let files_before = a.location.list().await.unwrap().len();
        let err = undo_runs(&catalog, &a.table, &runs(&["r2"]), "rb", &NoneLive).await.unwrap_err();
        assert!(
            err.message().contains("rolling db.a back to version 1: version 1 of db.a cannot be restored"),
            "{err}"
        );
        assert_eq!(a.location.list().await.unwrap().len(), files_before);
        assert_eq!(catalog.data_versions(&a.table).await.unwrap().len(), 2);
        assert_eq!(ids(&home, "db.a").await, [2]);
    }
}
