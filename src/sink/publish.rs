//! How a target's staged output becomes the table's new state.
//!
//! Every run writes into its own folder per partition, `LOCATION/key=value/run-RUN_ID/`, and
//! publication points the partition at it: a switch the catalog makes in one step, on any
//! store (S3 has no rename; a folder per run needs none). Hive readers of `LOCATION` (Spark,
//! DuckDB, pyarrow) skip the `run-…` level, so after a run the folder tree holds exactly the
//! table's data. The steps:
//!
//! 1. [`plan`]: which partitions the run sets (their new folders, with complete file lists)
//!    and drops, by mode; an append, or a rerun that replaces its own earlier files, carries
//!    the files it keeps into the new folder;
//! 2. [`materialize`]: move the staged files and copy the kept ones into the new folders, none
//!    of which any catalog entry names yet;
//! 3. the catalog publication (all tables of the run at once);
//! 4. [`clean_up`]: move the files of the partitions the publication replaced out of the
//!    folders readers list, into the table's `_etl_retained/` (or delete those that retention
//!    does not keep: beyond the table's `retain_versions` latest versions), and deal the same
//!    way with folders of runs that died before or after they published; then delete the
//!    retained files retention no longer keeps ([`prune_retained`]).
//!
//! A failure before step 3 leaves only folders no catalog entry names, which [`abandon`]
//! removes (or, after a crash, the next run's clean-up).

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;

use super::{RunLiveness, StagedTarget, TableFormat, TargetSpec};
use crate::catalog::{DataFile, Partition, PartitionWrite, Work, WriteMode, WrittenData};
use crate::error::{Error, Result};
use crate::layout;
use crate::location::Location;

/// Which work a run's files hold, so a rerun can replace its own output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTag {
    pub work: Work,
    /// False for a job that reads incremental sources: each of its runs reads objects no
    /// earlier run read, so a second run of a date adds to the first instead of redoing it.
    pub rerun_replaces: bool,
}

impl WriteTag {
    /// Whether a rerun of this work replaces `file`: its rows are all this work's. Files from
    /// before parameters were recorded carry none, and are replaced as they were then.
    fn wrote(&self, file: &DataFile) -> bool {
        file.works().iter().all(|work| self.replaces(work))
    }

    fn replaces(&self, work: &Work) -> bool {
        self.rerun_replaces
            && work.job == self.work.job
            && work.logical_date == self.work.logical_date
            && (work.params.is_empty() || work.params == self.work.params)
    }

    /// A file a compaction merged some of this work's rows into, with other works' rows: a
    /// rerun can neither replace it nor keep it without counting those rows twice.
    fn merged_into(&self, file: &DataFile) -> bool {
        !self.wrote(file) && file.absorbed.iter().any(|work| self.replaces(work))
    }
}

/// A target's publication, planned.
#[derive(Debug, Clone, Default)]
pub struct TargetPublication {
    pub written: WrittenData,
    /// Staged files to move into their run folders.
    pub moves: Vec<(String, String)>,
    /// Files of the current table kept by the new partition folders.
    pub copies: Vec<(String, String)>,
    /// Files of the current table whose rows the publication replaces (or drops).
    pub replaced: Vec<DataFile>,
}

impl TargetPublication {
    /// Every file this publication creates (for [`abandon`]).
    fn created(&self) -> impl Iterator<Item = &str> {
        self.moves.iter().chain(&self.copies).map(|(_, to)| to.as_str())
    }
}

/// What publishing `staged` does to a table whose partitions are `existing`. A rerun of an
/// append whose earlier rows a compaction merged with other runs' is refused (nothing is
/// published): it could only count them twice.
pub(super) fn plan(
    target: &TargetSpec,
    staged: &StagedTarget,
    existing: &[Partition],
    tag: &WriteTag,
    run_id: &str,
) -> Result<TargetPublication> {
    if target.mode == WriteMode::Append {
        if let Some(file) = existing.iter().flat_map(|p| &p.files).find(|f| tag.merged_into(f)) {
            return Err(rerun_after_compaction(target, tag, file));
        }
    }
    let mut output: BTreeMap<Vec<Option<String>>, Vec<&super::StagedFile>> = BTreeMap::new();
    for file in &staged.files {
        output.entry(file.partition_values.clone()).or_default().push(file);
    }
    let current: BTreeMap<&Vec<Option<String>>, &Partition> = existing.iter().map(|p| (&p.values, p)).collect();
    let mut publication = TargetPublication::default();
    let values: BTreeSet<&Vec<Option<String>>> = output.keys().chain(current.keys().copied()).collect();
    for values in values {
        let new = output.get(values);
        let old = current.get(values).copied();
        let appending = target.mode == WriteMode::Append;
        // Files of the current partition that survive: an append keeps all but those an
        // earlier run of this job and logical date wrote.
        let kept: Vec<&DataFile> = match old {
            Some(old) if appending => old.files.iter().filter(|f| !tag.wrote(f)).collect(),
            _ => Vec::new(),
        };
        let based_on = appending.then(|| old.map(|o| o.location.clone()));
        if new.is_none() {
            let Some(old) = old else { continue };
            let untouched = match target.mode {
                WriteMode::Overwrite => false,
                // A partition only an earlier run of this work wrote is its output, which a
                // rerun replaces whole, as in every mode: the rerun's output lacks it.
                WriteMode::OverwritePartitions => !old.files.iter().all(|f| tag.wrote(f)),
                WriteMode::Append => kept.len() == old.files.len(),
                // A merge is the Delta log's to plan (sink::delta::merge), never this.
                WriteMode::Merge => true,
            };
            if untouched {
                continue;
            }
        }
        if let Some(old) = old {
            let replaced = old.files.iter().filter(|f| !kept.iter().any(|k| k.path == f.path));
            publication.replaced.extend(replaced.cloned());
        }
        if let (None, Some(old)) = (new, old) {
            if kept.is_empty() {
                publication.written.drops.push(PartitionWrite { partition: old.clone(), based_on });
                continue;
            }
        }
        let folder = layout::run_folder(&target.location, staged.schema.key_names(), values, run_id);
        // A compaction's files hold the rows of those it replaces, whose works they absorb.
        let absorbed: Vec<Work> = match (target.data_change, old) {
            (false, Some(old)) => {
                old.files.iter().flat_map(DataFile::works).collect::<BTreeSet<_>>().into_iter().collect()
            }
            _ => Vec::new(),
        };
        let mut files = Vec::new();
        for file in new.into_iter().flatten() {
            publication.moves.push((file.staged.clone(), file.published.clone()));
            files.push(DataFile {
                path: file.published.clone(),
                size: file.size,
                rows: file.rows,
                job: tag.work.job.clone(),
                logical_date: tag.work.logical_date.clone(),
                params: tag.work.params.clone(),
                absorbed: absorbed.clone(),
            });
        }
        for file in kept {
            // A Delta log names its files where they are: they stay.
            if target.format == TableFormat::Delta {
                files.push(file.clone());
                continue;
            }
            let name = file.path.rsplit('/').next().unwrap_or_default();
            let copy = folder.join(name).url();
            publication.copies.push((file.path.clone(), copy.clone()));
            files.push(DataFile { path: copy, ..file.clone() });
        }
        publication.written.upserts.push(PartitionWrite {
            partition: Partition { values: values.clone(), location: folder.url(), files },
            based_on,
        });
    }
    Ok(publication)
}

/// Makes every partition `written` sets or drops build on its folder as the run's queries
/// `read` it (none, if it had none then): rows the run computed from a partition must not
/// replace rows another run published there since.
pub(super) fn build_on_read(written: &mut WrittenData, read: &BTreeMap<Vec<Option<String>>, String>) {
    for write in written.upserts.iter_mut().chain(&mut written.drops) {
        write.based_on = Some(read.get(&write.partition.values).cloned());
    }
}

fn rerun_after_compaction(target: &TargetSpec, tag: &WriteTag, file: &DataFile) -> Error {
    // Named by the file, not its folder: a later append's copy keeps it in that run's folder.
    let name = file.path.rsplit('/').next().unwrap_or_default();
    let run = layout::writer_of_data_file(name).map(|run| format!(" (run {run})")).unwrap_or_default();
    // A Delta merge's files hold its own rows besides those of the files it rewrote.
    let writer = match file.absorbed.contains(&file.work()) {
        true => format!("a merge of job {}", file.job),
        false => "`etl compact`".to_string(),
    };
    Error::conflict(format!(
        "{table}: this run of job {job} for {date} would replace the rows its earlier run appended, but \
         {writer}{run} merged them with other runs' rows into {path}, whose rows no longer say which run \
         wrote them; publishing would count them twice, so nothing was published. To redo {date}, roll \
         {table} back to the version before that write (`etl table history {table}`, then `etl rollback \
         {table} --to VERSION`) and run again",
        table = target.table,
        job = tag.work.job,
        date = tag.work.logical_date,
        path = file.path,
    ))
}

/// The path of a file URL in the target's store (whose settings, such as encryption, apply).
fn path_of(url: &str) -> Result<object_store::path::Path> {
    Ok(Location::parse(url)?.prefix().clone())
}

/// Step 2: moves and copies files into the new run folders (all under the table's `root`).
pub(super) async fn materialize(root: &Location, publication: &TargetPublication) -> Result<()> {
    let store = root;
    for (from, to) in &publication.moves {
        store.rename(&path_of(from)?, &path_of(to)?).await?;
        crate::kill_points::reached("materialize.move");
    }
    for (from, to) in &publication.copies {
        let source = path_of(from)?;
        if let Err(error) = store.copy(&source, &path_of(to)?).await {
            return Err(moved_meanwhile(store, &source, from, error).await);
        }
        crate::kill_points::reached("materialize.copy");
    }
    Ok(())
}

/// A file this publication keeps (an append's earlier rows) that another publication of the
/// table moved or removed since this run listed it: the table changed under the run, as a
/// catalog conflict says, not a failure of the store.
async fn moved_meanwhile(store: &Location, source: &object_store::path::Path, url: &str, error: Error) -> Error {
    use object_store::ObjectStoreExt;
    match store.store().head(source).await {
        Err(object_store::Error::NotFound { .. }) => Error::conflict(format!(
            "{url} was moved or removed by another publication of the table while this run wrote; nothing was \
             published (run again to build on its change)"
        )),
        _ => error,
    }
}

/// After a failure before publication: removes every file the publication created.
pub(super) async fn abandon(root: &Location, publication: &TargetPublication) -> Result<()> {
    for path in publication.created() {
        root.delete(&path_of(path)?).await?;
    }
    Ok(())
}

/// Step 4: takes the files of replaced partitions out of readers' sight, then the folders of
/// dead runs in the partitions this run wrote (what a run killed between its writes and its
/// publication, or between its publication and this step, left behind). A file that one of
/// the versions retention keeps lists goes to `_etl_retained/`; any other is deleted. Without
/// `kept` (the versions could not be read), every such file is retained, none deleted.
pub(super) async fn clean_up(
    root: &Location,
    publication: &TargetPublication,
    replaced: &[Partition],
    runs: &dyn RunLiveness,
    kept: Option<&BTreeSet<String>>,
) -> Result<()> {
    for partition in replaced {
        for file in &partition.files {
            retire(root, &file.path, kept).await?;
            crate::kill_points::reached("cleanup.delete");
        }
        remove_empty_folders(&Location::parse(&partition.location)?, root);
    }
    let current: BTreeSet<String> = publication.written.upserts.iter().map(|w| w.partition.location.clone()).collect();
    let parents: BTreeSet<&str> = publication
        .written
        .upserts
        .iter()
        .chain(&publication.written.drops)
        .filter_map(|w| w.partition.location.rsplit_once('/').map(|(parent, _)| parent))
        .collect();
    for parent in parents {
        let parent = Location::parse(parent)?;
        let listing = match parent.store().list_with_delimiter(Some(parent.prefix())).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        for folder in listing.common_prefixes {
            let Some(name) = folder.filename() else {
                continue;
            };
            let Some(run_id) = layout::run_of_folder(name) else {
                continue;
            };
            let dead = parent.join(name);
            if current.contains(&dead.url()) || runs.is_live(run_id) {
                continue;
            }
            let objects: Vec<object_store::ObjectMeta> = dead.store().list(Some(dead.prefix())).try_collect().await?;
            for object in objects {
                retire(root, &dead.url_of(&object.location), kept).await?;
            }
            remove_empty_folders(&dead, root);
        }
    }
    if let Some(kept) = kept {
        prune_retained(root, kept).await?;
    }
    Ok(())
}

/// A file no reader is to see any more: retained when a kept version lists it (or when what
/// is kept is not known), deleted otherwise.
pub(super) async fn retire(root: &Location, url: &str, kept: Option<&BTreeSet<String>>) -> Result<()> {
    let retained = layout::retained(root, url);
    match retained {
        Some(retained) if kept.is_none_or(|kept| kept.contains(url)) => {
            match root.rename(&path_of(url)?, retained.prefix()).await {
                Ok(()) => Ok(()),
                // Retired already (a clean-up replayed after a kill).
                Err(e) if e.kind() == crate::error::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        }
        _ => root.delete(&path_of(url)?).await,
    }
}

/// Deletes the retained files that no version retention keeps lists; returns them (URLs
/// where they were retained, and sizes).
pub(super) async fn prune_retained(root: &Location, kept: &BTreeSet<String>) -> Result<Vec<(String, u64)>> {
    let folder = root.join(layout::RETAINED_FOLDER);
    let objects = folder.list().await?;
    let mut pruned = Vec::new();
    for object in objects {
        let Some(parts) = root.relative(&object.location) else {
            continue;
        };
        let Some(published) = layout::published_of_retained(root, &parts) else {
            continue;
        };
        if kept.contains(&published) {
            continue;
        }
        root.delete(&object.location).await?;
        let url = root.url_of(&object.location);
        remove_empty_folders(&Location::parse(url.rsplit_once('/').map_or(url.as_str(), |(parent, _)| parent))?, root);
        pruned.push((url, object.size));
    }
    Ok(pruned)
}

/// Local folders stay behind when their files go (object stores have none): removes `from`
/// and its parents while they are empty, up to `root`.
pub(super) fn remove_empty_folders(from: &Location, root: &Location) {
    let (Some(mut folder), Some(root)) = (from.local_path(), root.local_path()) else {
        return;
    };
    while folder.starts_with(&root) && folder != root && std::fs::remove_dir(&folder).is_ok() {
        if !folder.pop() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, GlueType, TableSchema};
    use crate::sink::{ParquetCompression, StagedFile};

    /// Two appends at once: the second's copy of a file it keeps, which the first's
    /// publication moved under `_etl_retained/` meanwhile, failed with the store's "does not
    /// exist" (the race cannot be held from the command line).
    #[tokio::test]
    async fn a_kept_file_another_publication_moved_is_a_conflict() {
        let folder = tempfile::tempdir().unwrap();
        let root = Location::parse(&folder.path().display().to_string()).unwrap();
        let moved = root.join("run-r1/part-r1-00000.parquet").url();
        let publication = TargetPublication {
            written: WrittenData::default(),
            moves: Vec::new(),
            copies: vec![(moved, root.join("run-r2/part-r1-00000.parquet").url())],
            replaced: Vec::new(),
        };
        let error = materialize(&root, &publication).await.unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::Conflict, "{error}");
        assert!(error.message().contains("was moved or removed by another publication of the table"), "{error}");
    }

    fn target(mode: WriteMode) -> TargetSpec {
        TargetSpec {
            table: "db.t".parse().unwrap(),
            query: "SELECT 1".into(),
            location: Location::parse("/w").unwrap(),
            partition_by: vec!["dt".into()],
            mode,
            compression: ParquetCompression::Snappy,
            encryption: Default::default(),
            checks: Vec::new(),
            retain_versions: crate::sink::DEFAULT_RETAIN_VERSIONS,
            layout: Default::default(),
            format: Default::default(),
            merge: None,
            data_change: true,
        }
    }

    fn staged(days: &[&str]) -> StagedTarget {
        StagedTarget {
            schema: TableSchema {
                columns: vec![Column::new("a", GlueType::BigInt)],
                partition_keys: vec![Column::new("dt", GlueType::String)],
            },
            files: days
                .iter()
                .map(|d| StagedFile {
                    staged: format!("file:///w/_etl_staging/r2/dt={d}/x.parquet"),
                    published: format!("file:///w/dt={d}/run-r2/part-r2-00000.parquet"),
                    partition_values: vec![Some(d.to_string())],
                    size: 1,
                    rows: 1,
                })
                .collect(),
            clustering: crate::sink::clustering::Clustering { sort_by: Vec::new(), reason: String::new() },
        }
    }

    fn existing(day: &str, date: &str) -> Partition {
        Partition {
            values: vec![Some(day.into())],
            location: format!("file:///w/dt={day}/run-r1"),
            files: vec![DataFile {
                path: format!("file:///w/dt={day}/run-r1/part-r1-00000.parquet"),
                size: 1,
                rows: 1,
                job: "j".into(),
                logical_date: date.into(),
                ..DataFile::default()
            }],
        }
    }

    fn tag(date: &str) -> WriteTag {
        let work = Work { job: "j".into(), logical_date: date.into(), params: "params()".into() };
        WriteTag { work, rerun_replaces: true }
    }

    fn summary(p: &TargetPublication) -> (Vec<String>, Vec<String>, usize) {
        let upserts = p
            .written
            .upserts
            .iter()
            .map(|w| format!("{}:{}", w.partition.values[0].as_deref().unwrap(), w.partition.files.len()))
            .collect();
        let drops = p.written.drops.iter().map(|w| w.partition.values[0].clone().unwrap()).collect();
        (upserts, drops, p.copies.len())
    }

    #[test]
    fn overwrite_partitions_leaves_other_partitions_alone() {
        let plan = plan(
            &target(WriteMode::OverwritePartitions),
            &staged(&["b"]),
            &[existing("a", "d1"), existing("b", "d1")],
            &tag("d2"),
            "r2",
        )
        .unwrap();
        assert_eq!(summary(&plan), (vec!["b:1".into()], vec![], 0));
        assert!(plan.written.upserts[0].based_on.is_none());
        assert_eq!(plan.written.upserts[0].partition.location, "file:///w/dt=b/run-r2");
    }

    #[test]
    fn overwrite_drops_what_the_output_does_not_have() {
        let plan = plan(
            &target(WriteMode::Overwrite),
            &staged(&["b"]),
            &[existing("a", "d1"), existing("b", "d1")],
            &tag("d2"),
            "r2",
        )
        .unwrap();
        assert_eq!(summary(&plan), (vec!["b:1".into()], vec!["a".into()], 0));
    }

    #[test]
    fn append_keeps_the_files_of_the_same_day_run_with_other_parameters() {
        let batch =
            |params: &str| WriteTag { work: Work { params: params.into(), ..tag("d2").work }, rerun_replaces: true };
        let mut first = existing("a", "d2");
        first.files[0].params = "params(batch:Utf8=1)".into();
        let second =
            plan(&target(WriteMode::Append), &staged(&["a"]), &[first.clone()], &batch("params(batch:Utf8=2)"), "r2")
                .unwrap();
        assert_eq!(summary(&second), (vec!["a:2".into()], vec![], 1));
        assert!(second.replaced.is_empty());
        let rerun =
            plan(&target(WriteMode::Append), &staged(&["a"]), &[first], &batch("params(batch:Utf8=1)"), "r2").unwrap();
        assert_eq!(summary(&rerun), (vec!["a:1".into()], vec![], 0));
        assert_eq!(rerun.replaced.len(), 1);
    }

    #[test]
    fn append_keeps_other_runs_files_and_replaces_its_own() {
        let other_date =
            plan(&target(WriteMode::Append), &staged(&["a"]), &[existing("a", "d1")], &tag("d2"), "r2").unwrap();
        assert_eq!(summary(&other_date), (vec!["a:2".into()], vec![], 1));
        assert_eq!(other_date.written.upserts[0].based_on, Some(Some("file:///w/dt=a/run-r1".to_string())));
        let rerun =
            plan(&target(WriteMode::Append), &staged(&["a"]), &[existing("a", "d2")], &tag("d2"), "r2").unwrap();
        assert_eq!(summary(&rerun), (vec!["a:1".into()], vec![], 0));
        // A rerun that no longer produces a partition removes what it wrote there before.
        let gone = plan(&target(WriteMode::Append), &staged(&["b"]), &[existing("a", "d2")], &tag("d2"), "r2").unwrap();
        assert_eq!(summary(&gone), (vec!["b:1".into()], vec!["a".into()], 0));
    }

    fn work(date: &str) -> Work {
        Work { job: "j".into(), logical_date: date.into(), params: String::new() }
    }

    /// A partition as `etl compact` leaves it: one file with the rows of the `dates` runs.
    fn compacted(day: &str, dates: &[&str]) -> Partition {
        let mut partition = existing(day, "2026-12-01");
        partition.location = format!("file:///w/dt={day}/run-c1");
        partition.files[0].path = format!("file:///w/dt={day}/run-c1/part-c1-00000.parquet");
        partition.files[0].job = "compact_db_t".into();
        partition.files[0].absorbed = dates.iter().map(|d| work(d)).collect();
        partition
    }

    #[test]
    fn a_compactions_files_absorb_the_works_of_those_they_replace() {
        let mut compaction = target(WriteMode::OverwritePartitions);
        compaction.data_change = false;
        let compacting =
            WriteTag { work: Work { job: "compact_db_t".into(), ..tag("2026-12-02").work }, rerun_replaces: true };
        let mut partition = compacted("a", &["d1", "d2"]);
        partition.files.push(existing("a", "d3").files.remove(0));
        let compacted = plan(&compaction, &staged(&["a"]), &[partition], &compacting, "r2").unwrap();
        // Whose rows a file holds, not which compaction moved them last.
        assert_eq!(compacted.written.upserts[0].partition.files[0].absorbed, [work("d1"), work("d2"), work("d3")]);
        // Any other run's files are its own.
        let ordinary =
            plan(&target(WriteMode::OverwritePartitions), &staged(&["a"]), &[existing("a", "d1")], &compacting, "r2");
        assert!(ordinary.unwrap().written.upserts[0].partition.files[0].absorbed.is_empty());
    }

    #[test]
    fn a_rerun_of_an_append_a_compaction_merged_with_others_is_refused() {
        let append = target(WriteMode::Append);
        // As a later append's copy keeps the compacted file, in that run's folder.
        let mut copied = compacted("a", &["d1", "d2"]);
        copied.files[0].path = "file:///w/dt=a/run-r5/part-c1-00000.parquet".into();
        let error = plan(&append, &staged(&["b"]), &[copied], &tag("d1"), "r2").unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::Conflict);
        assert!(error.message().contains("`etl compact` (run c1) merged them"), "{}", error.message());
        assert!(error.message().contains("file:///w/dt=a/run-r5/part-c1-00000.parquet"), "{}", error.message());
        // Another date's run keeps the compacted file.
        let other = plan(&append, &staged(&["a"]), &[compacted("a", &["d1", "d2"])], &tag("d3"), "r2").unwrap();
        assert_eq!(summary(&other), (vec!["a:2".into()], vec![], 1));
        // A file that holds this work's rows alone is replaced, as before the compaction.
        let alone = plan(&append, &staged(&["a"]), &[compacted("a", &["d1"])], &tag("d1"), "r2").unwrap();
        assert_eq!(summary(&alone), (vec!["a:1".into()], vec![], 0));
        assert_eq!(alone.replaced.len(), 1);
        // Other modes replace what they replace, whoever wrote it.
        let overwrite = target(WriteMode::OverwritePartitions);
        let replacing = plan(&overwrite, &staged(&["a"]), &[compacted("a", &["d1", "d2"])], &tag("d1"), "r2").unwrap();
        assert_eq!(summary(&replacing), (vec!["a:1".into()], vec![], 0));
        assert_eq!(replacing.replaced.len(), 1);
    }
}
