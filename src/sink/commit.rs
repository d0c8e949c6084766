//! The commit protocol of a run: how its targets go from a query to what every reader sees,
//! all of them or none.
//!
//! One [`Commit`] per run goes through the steps in order:
//!
//! 1. [`Commit::stage`], per target: check that the table may take the output (a table that
//!    a crawl made is not ours to write; in `append` and `overwrite_partitions` modes the new
//!    schema must keep the files already there readable), then write the rows to
//!    `LOCATION/_etl_staging/RUN_ID/`, which no reader lists;
//! 2. [`Commit::publish`]: plan each target's partitions by mode, materialise the new run
//!    folders (staged files moved, kept files copied; no catalog entry names them yet), then
//!    one catalog publication of every target together with the changes the caller adds (its
//!    sources' new versions);
//! 3. [`Commit::clean_up`] after a publication: take what it replaced out of readers' sight
//!    (kept under `_etl_retained/` for the table's `retain_versions` latest versions, deleted
//!    beyond), the same for the folders of dead runs in the partitions it wrote;
//! 4. [`Commit::close`], whatever happened: abandon the run folders of a publication that did
//!    not happen, remove the staging folders.
//!
//! Between steps 1 and 2 the caller may audit what is staged: [`Commit::published_tables`]
//! gives each target as a table as it would be once published (the staged files, with those
//! the mode keeps, and its rows before), and [`Commit::record_checks`] keeps the outcome with the version the
//! publication makes. A failure or a kill before step 2's publication leaves only folders no
//! catalog entry names: the next run of the target, or `etl gc`, removes them. Nothing here
//! prints: what a step wants the user to know comes back as warnings.

use std::collections::BTreeMap;

use datafusion::dataframe::DataFrame;
use datafusion::execution::SessionState;

use super::delta::{self, DeltaCommit};
use super::publish::{self, TargetPublication, WriteTag};
use super::{MergeSpec, RunLiveness, StagedTarget, TableFormat, TargetSpec, parquet, target_schema};
use crate::catalog::definition::WRITTEN_BY;
use crate::catalog::parquet_reader::file_columns;
use crate::catalog::provider::FileTable;
use crate::catalog::{
    Catalog, DataChange, DataFile, NewVersion, Partition, Publication, Published, Table, TableChange, TableDefinition,
    TableName, VersionNote, WriteMode, WrittenData,
};
use crate::cost::footers::{FooterCache, ObjectKey};
use crate::error::{Error, Result};
use crate::layout;
use crate::location::Location;
use crate::schema::diff::{Change, diff};
use crate::schema::widen::athena_reads_as;
use crate::schema::{GlueType, TableSchema};
use crate::transform::session::tables_read;

/// A staged target as its table would be once published ([`Commit::published_tables`]).
pub struct PublishedTable {
    pub name: TableName,
    pub definition: TableDefinition,
    /// The files the table has once published; a merge's staged rows alone (see `merged_into`).
    pub partitions: Vec<Partition>,
    /// The table's rows now; `None` for a table not yet created, or a merge target.
    pub rows_before: Option<u64>,
    /// A merge into an existing table: the table as it is, which the staged rows merge into.
    pub merged_into: Option<MergeBase>,
}

/// What a merge's staged rows go into: the table's files now, and how rows match.
pub struct MergeBase {
    pub definition: TableDefinition,
    pub partitions: Vec<Partition>,
    pub merge: super::MergeSpec,
}

impl PublishedTable {
    pub fn rows(&self) -> u64 {
        self.partitions.iter().flat_map(|p| &p.files).map(|f| f.rows).sum()
    }
}

/// One run's targets on their way to publication.
pub struct Commit {
    run_id: String,
    tag: WriteTag,
    targets: Vec<TargetCommit>,
    /// Targets whose staging folder may hold files of this run: cleaned whatever happens.
    staging: Vec<TargetSpec>,
    published: Option<Published>,
}

struct TargetCommit {
    spec: TargetSpec,
    existing: Option<Table>,
    /// The table's new definition, when it changes.
    new_version: Option<NewVersion>,
    staged: StagedTarget,
    /// Set once its files are in their run folders (to remove if nothing is published).
    planned: Option<TargetPublication>,
    /// The checks its output went through, recorded with the version it makes.
    checks: Vec<serde_json::Value>,
    /// A Delta target's commit, once made (undone if the catalog publication fails).
    delta: Option<DeltaCommit>,
    /// The run's session, for a merge target: the MERGE reads the staged rows in it.
    session: Option<SessionState>,
    /// The table's partition folders as the run's queries read them, if they read it: the
    /// partitions it writes must still be those at publication.
    read: Option<BTreeMap<Vec<Option<String>>, String>>,
}

impl TargetCommit {
    /// The definition of the staged output, read as a table.
    fn staged_definition(&self, job: &str) -> TableDefinition {
        TableDefinition::parquet(self.spec.location.url(), &self.staged.schema, self.spec.compression.name(), job)
    }

    /// The staged files, by partition.
    fn staged_partitions(&self) -> Vec<Partition> {
        let mut partitions: std::collections::BTreeMap<Vec<Option<String>>, Partition> = Default::default();
        for file in &self.staged.files {
            let partition = partitions.entry(file.partition_values.clone()).or_insert_with(|| Partition {
                values: file.partition_values.clone(),
                location: self.spec.location.url(),
                files: Vec::new(),
            });
            partition.files.push(DataFile {
                path: file.staged.clone(),
                size: file.size,
                rows: file.rows,
                ..DataFile::default()
            });
        }
        partitions.into_values().collect()
    }
}

impl Commit {
    pub fn new(run_id: &str, tag: WriteTag) -> Self {
        Commit { run_id: run_id.to_string(), tag, targets: Vec::new(), staging: Vec::new(), published: None }
    }

    /// Step 1: checks that `target`'s table can take the query's output, then writes it to
    /// staging (after removing what dead runs left there). Returns what was staged, and
    /// warnings.
    pub async fn stage(
        &mut self,
        catalog: &dyn Catalog,
        df: DataFrame,
        target: &TargetSpec,
        runs: &dyn RunLiveness,
    ) -> Result<(&StagedTarget, Vec<String>)> {
        let existing = catalog.table(&target.table).await?;
        let moved = existing.as_ref().is_none_or(|table| {
            Location::parse(&table.definition.location).is_ok_and(|at| !target.location.overlaps(&at))
        });
        if moved {
            refuse_another_tables_location(catalog, target).await?;
        }
        let kept = existing.as_ref().filter(|_| target.mode != WriteMode::Overwrite).map(|t| t.definition.schema());
        let (schema, columns) = target_schema(&df, target, kept.as_ref())?;
        let new_version = new_version(target, existing.as_ref(), &schema, &self.tag.work.job, &self.run_id)?;
        if let Some(merge) = &target.merge {
            check_merge_keys(target, merge, &schema)?;
        }
        let mut warnings = Vec::new();
        if target.format == TableFormat::Delta {
            let recorded = match &existing {
                Some(table) => Some(catalog.partitions(&table.name).await?),
                None => None,
            };
            warnings = delta::reconcile(target, recorded.as_deref(), runs, &self.run_id).await?;
        }
        let stale = parquet::remove_stale_staging(&target.location, runs).await?.into_iter().map(|run| {
            format!("removed the staging files of run {run}, which did not finish, from {}", target.location)
        });
        warnings.extend(stale);
        self.staging.push(target.clone());
        let state = df.clone().into_parts().0;
        // Every query of the run was planned before its first target is staged.
        let read = tables_read(&state).and_then(|read| read.folders(&target.table));
        let session = target.merge.as_ref().map(|_| state);
        let staged = parquet::stage(df.select(columns)?, target, schema, &self.run_id).await?;
        // The files a write keeps must stay readable under the new schema: none when it
        // replaces every partition the table has, or the table was emptied (rolled back to
        // version 0). A Delta table's log keeps its schema whatever its files.
        let job = &self.tag.work.job;
        if let (Some(table), Some(version)) = (&existing, &new_version) {
            if target.mode != WriteMode::Overwrite && !version.diff.is_empty() {
                match target.format {
                    TableFormat::Delta => check_compatible(target, &version.diff, job)?,
                    TableFormat::Hive => {
                        let current = catalog.partitions(&table.name).await?;
                        let kept = kept_partitions(target, &staged, current, &self.tag, &self.run_id)?;
                        if !kept.is_empty() {
                            check_compatible(target, &version.diff, job)?;
                            check_readded_columns(target, &version.diff, &kept, job).await?;
                        }
                    }
                }
            }
        }
        self.targets.push(TargetCommit {
            spec: target.clone(),
            existing,
            new_version,
            staged,
            planned: None,
            checks: Vec::new(),
            delta: None,
            session,
            read,
        });
        Ok((&self.targets.last().expect("just pushed").staged, warnings))
    }

    /// Every staged target, in the order staged.
    pub fn staged(&self) -> impl Iterator<Item = (&TargetSpec, &StagedTarget)> {
        self.targets.iter().map(|t| (&t.spec, &t.staged))
    }

    /// Each staged target as its table would read once published (what its checks judge): the
    /// staged files, and in `append` and `overwrite_partitions` modes the table's files the
    /// publication keeps; with the rows the table holds now. A merge's staged rows, with the
    /// table they merge into.
    pub async fn published_tables(&self, catalog: &dyn Catalog) -> Result<Vec<PublishedTable>> {
        let mut tables = Vec::with_capacity(self.targets.len());
        for target in &self.targets {
            let mut partitions = target.staged_partitions();
            let mut rows_before = None;
            let mut merged_into = None;
            if let (Some(table), Some(merge)) = (&target.existing, &target.spec.merge) {
                merged_into = Some(MergeBase {
                    definition: table.definition.clone(),
                    partitions: catalog.partitions(&table.name).await?,
                    merge: merge.clone(),
                });
            }
            if let Some(table) = target.existing.as_ref().filter(|_| target.spec.mode != WriteMode::Merge) {
                let current = catalog.partitions(&table.name).await?;
                rows_before = Some(current.iter().flat_map(|p| &p.files).map(|f| f.rows).sum());
                partitions.extend(kept_partitions(&target.spec, &target.staged, current, &self.tag, &self.run_id)?);
            }
            let definition = target.staged_definition(&self.tag.work.job);
            tables.push(PublishedTable {
                name: target.spec.table.clone(),
                definition,
                partitions,
                rows_before,
                merged_into,
            });
        }
        Ok(tables)
    }

    /// Keeps what `table`'s checks found, to be recorded with the version its publication
    /// makes.
    pub fn record_checks(&mut self, table: &TableName, checks: Vec<serde_json::Value>) {
        if let Some(target) = self.targets.iter_mut().find(|t| t.spec.table == *table) {
            target.checks = checks;
        }
    }

    /// After [`Commit::publish`]: each target's files whose rows the publication replaced
    /// (an earlier run's output, in any mode).
    pub fn replaced(&self) -> impl Iterator<Item = (&TargetSpec, &[DataFile])> {
        self.targets.iter().map(|t| (&t.spec, t.planned.as_ref().map_or(&[][..], |p| p.replaced.as_slice())))
    }

    /// Step 2: puts every staged file in its run folder, then publishes all targets, and
    /// `with` (changes of the same run to other tables), in one catalog publication.
    pub async fn publish(&mut self, catalog: &dyn Catalog, with: Vec<TableChange>) -> Result<&Published> {
        // What can refuse a merge is asked before any target commits: a Delta commit made
        // before a later target failed would be seen by the log's readers until undone.
        for target in &self.targets {
            if let Some(merge) = &target.spec.merge {
                delta::refuse_keys_a_merge_cannot_match(&target.spec, merge, merge_source(target, &self.tag)?).await?;
            }
        }
        let mut publication = Publication { run_id: Some(self.run_id.clone()), tables: with };
        for target in &mut self.targets {
            let partitions = match &target.existing {
                Some(table) => catalog.partitions(&table.name).await?,
                None => Vec::new(),
            };
            let recorded = target.existing.as_ref().map(|_| partitions.as_slice());
            let mut written = match target.spec.merge.clone() {
                Some(merge) => merge_into(target, &merge, recorded, &self.tag, &self.run_id).await?,
                None => {
                    let mut planned =
                        publish::plan(&target.spec, &target.staged, &partitions, &self.tag, &self.run_id)?;
                    if let Some(read) = &target.read {
                        publish::build_on_read(&mut planned.written, read);
                    }
                    let written = planned.written.clone();
                    let planned = target.planned.insert(planned);
                    publish::materialize(&target.spec.location, planned).await?;
                    if target.spec.format == TableFormat::Delta {
                        let (spec, schema) = (&target.spec, &target.staged.schema);
                        let change = delta::DeltaChange {
                            location: &spec.location,
                            table: &spec.table,
                            schema,
                            written: &written,
                            replaced: &planned.replaced,
                            recorded,
                            operation: delta::write_operation(spec, schema),
                            data_change: spec.data_change,
                        };
                        target.delta = Some(delta::commit(change, &self.run_id).await?);
                    }
                    written
                }
            };
            written.note = VersionNote {
                retain_versions: target.spec.retain_versions,
                checks: target.checks.clone(),
                delta_version: target.delta.as_ref().map(|d| d.version),
                ..VersionNote::default()
            };
            publication.tables.push(TableChange {
                name: target.spec.table.clone(),
                expected_version: target.existing.as_ref().map(|t| t.version),
                new_version: target.new_version.clone(),
                data: DataChange::Written(written),
            });
        }
        crate::kill_points::reached("publish");
        let published = catalog.publish(publication).await?;
        crate::kill_points::reached("published");
        Ok(self.published.insert(published))
    }

    /// Step 3, after a publication: takes the files it replaced, and what dead runs left in
    /// the partitions it wrote, out of readers' sight (retained for rollback while the table's
    /// retention keeps their versions, else deleted). The run has published: a failure here is
    /// a warning.
    pub async fn clean_up(&mut self, catalog: &dyn Catalog, runs: &dyn RunLiveness) -> Vec<String> {
        let Some(published) = &self.published else {
            return Vec::new();
        };
        let mut warnings = Vec::new();
        // A Delta table's replaced files stay where they are: its log's older versions name
        // them, and VACUUM deletes them when no kept version does.
        for target in self.targets.iter().filter(|t| t.spec.format == TableFormat::Hive) {
            let Some(planned) = &target.planned else {
                continue;
            };
            // Another target's folder may share this one's name as a prefix (`out/a`, `out/ab`).
            let replaced: Vec<_> = published
                .replaced
                .iter()
                .filter(|p| Location::parse(&p.location).is_ok_and(|at| target.spec.location.contains(&at)))
                .cloned()
                .collect();
            let kept = match crate::catalog::versions::kept_files(catalog, &target.spec.table).await {
                Ok(kept) => Some(kept),
                Err(e) => {
                    warnings.push(format!(
                        "the versions of {} could not be read ({e}): the files the run replaced are all kept",
                        target.spec.table
                    ));
                    None
                }
            };
            if let Err(e) = publish::clean_up(&target.spec.location, planned, &replaced, runs, kept.as_ref()).await {
                warnings.push(format!("the run published, but cleaning up {} failed: {e}", target.spec.location));
            }
        }
        warnings
    }

    /// Step 4: removes the run folders of a publication that did not happen, and this run's
    /// staging folders. Returns warnings for what could not be removed (the next run of the
    /// target or `etl gc` will).
    pub async fn close(self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.published.is_none() {
            for target in &self.targets {
                if let Some(done) = target.delta.as_ref().filter(|done| !done.is_empty()) {
                    // Delta readers saw the commit: the opposite one takes it back, and the
                    // files stay for the log's versions that name them.
                    let location = &target.spec.location;
                    warnings.push(match delta::revert(location, done, &self.run_id).await {
                        Ok(version) => format!(
                            "the run's Delta commit {} to {location} was undone by commit {version}, since the run did not publish",
                            done.version
                        ),
                        Err(e) => format!(
                            "the run did not publish, but its Delta commit {} to {location} could not be undone: {e}",
                            done.version
                        ),
                    });
                } else if let Some(planned) = &target.planned {
                    if let Err(e) = publish::abandon(&target.spec.location, planned).await {
                        warnings.push(e.to_string());
                    }
                }
            }
        }
        for target in &self.staging {
            if let Err(e) = parquet::remove_staging(&target.location, &self.run_id).await {
                warnings.push(e.to_string());
            }
        }
        warnings
    }
}

/// A merge target's Delta MERGE of its staged output into the table, read in the run's
/// session; what the catalog records of the files it left.
async fn merge_into(
    target: &mut TargetCommit,
    merge: &MergeSpec,
    recorded: Option<&[Partition]>,
    tag: &WriteTag,
    run_id: &str,
) -> Result<WrittenData> {
    let source = merge_source(target, tag)?;
    let (spec, schema) = (&target.spec, &target.staged.schema);
    let (done, written) = delta::merge(spec, schema, merge, source, recorded, tag, run_id).await?;
    if done.is_empty() && target.existing.is_some() {
        // The log kept its schema (nothing was written with the new one): so does the catalog.
        target.new_version = None;
    }
    target.delta = Some(done);
    Ok(written)
}

/// A merge target's staged rows, and the run's session to read them in.
fn merge_source(target: &TargetCommit, tag: &WriteTag) -> Result<(FileTable, SessionState)> {
    let rejects = std::sync::Arc::new(crate::source::rejects::Rejects::failing());
    let definition = target.staged_definition(&tag.work.job);
    let source = FileTable::from_partitions(&definition, &target.staged_partitions(), rejects)?;
    let session = target.session.clone().ok_or_else(|| Error::runtime("a merge target staged without its session"))?;
    Ok((source, session))
}

/// Refuses a target whose location holds, or lies inside, another written table's files: its
/// runs would replace or collect the other table's files as their own. Asked when a table is made
/// or moves (a listing of the whole catalog), not on every run.
async fn refuse_another_tables_location(catalog: &dyn Catalog, target: &TargetSpec) -> Result<()> {
    for database in catalog.databases().await? {
        for name in catalog.tables(&database).await? {
            // A catalog may hold tables under names etl would not give (Glue's, made by others).
            let Ok(name) = TableName::new(&database, &name) else { continue };
            if name == target.table {
                continue;
            }
            // A crawled table's folder is someone's input: a job's own sources are refused as
            // its targets' locations (unless `allow_source_overlap`); others are not ours to own.
            let Some(other) = catalog.table(&name).await?.filter(|t| t.definition.is_written()) else { continue };
            // A written table owns the folder its runs write under, not only the current one.
            let Ok(location) = other.definition.written_root() else { continue };
            if target.location.overlaps(&location) {
                return Err(Error::config(format!(
                    "target {}: its location {} overlaps {}, the location of table {name}; give each table a location of its own",
                    target.table,
                    target.location,
                    location.url()
                )));
            }
        }
    }
    Ok(())
}

/// The new definition a target's output gives its table, when it changes: the schema, or for
/// an unpartitioned table the run folder it now lives in. Refuses a table that a crawl made,
/// and a schema the files a mode keeps could not be read with.
fn new_version(
    target: &TargetSpec,
    existing: Option<&Table>,
    schema: &TableSchema,
    job: &str,
    run_id: &str,
) -> Result<Option<NewVersion>> {
    if let Some(table) = existing.filter(|t| !t.definition.is_written()) {
        return Err(Error::query(format!(
            "target {}: {} is a crawled table over {}, not one a job writes; choose another table",
            target.table, table.name, table.definition.location
        )));
    }
    let is_delta = target.format == TableFormat::Delta;
    if let Some(table) = existing.filter(|t| t.definition.is_delta() != is_delta) {
        let (is, wants) = if is_delta { ("hive", "delta") } else { ("delta", "hive") };
        return Err(Error::query(format!(
            "target {}: {} is a {is} table; a target with table_format = \"{wants}\" cannot write it (write another table)",
            target.table, table.name
        )));
    }
    if let Some(table) = existing.filter(|t| is_delta && t.definition.is_delta()) {
        let keys: Vec<&str> = table.definition.partition_keys.iter().map(|k| k.name.as_str()).collect();
        if keys != target.partition_by.iter().map(String::as_str).collect::<Vec<_>>() {
            // A Delta log records its partition columns once, in its metadata: files added
            // under others would be read with NULLs for them, or break the log's readers.
            return Err(Error::query(format!(
                "target {}: {} is a Delta table partitioned by [{}]; partition_by = [{}] would change how its log lays out files, which etl does not do in place (write another table)",
                target.table,
                table.name,
                keys.join(", "),
                target.partition_by.join(", ")
            )));
        }
    }
    // Athena reads an unpartitioned Hive table from its location: the run's folder. A Delta
    // table, from its root, where its log is.
    let location = if schema.partition_keys.is_empty() && !is_delta {
        layout::run_folder(&target.location, [], &[], run_id).url()
    } else {
        target.location.url()
    };
    let mut definition = TableDefinition::parquet(location, schema, target.compression.name(), job);
    definition.set_encryption(&target.encryption);
    if is_delta {
        definition.parameters.insert(delta::TABLE_TYPE_PARAMETER.to_string(), delta::TABLE_TYPE_DELTA.to_string());
    }
    // Jobs that write different partitions of one table share it: which job wrote last is
    // not a new version of the table (its files say which job wrote them).
    if let Some(first) = existing.and_then(|t| t.definition.parameters.get(WRITTEN_BY)) {
        definition.parameters.insert(WRITTEN_BY.to_string(), first.clone());
    }
    Ok(match existing {
        None => Some(NewVersion { definition, diff: diff(&TableSchema::default(), schema) }),
        Some(table) if table.definition == definition => None,
        Some(table) => Some(NewVersion { definition, diff: diff(&table.definition.schema(), schema) }),
    })
}

/// The table's `current` partitions as the publication of `staged` leaves them: the files it
/// keeps, in the partitions that keep any.
fn kept_partitions(
    target: &TargetSpec,
    staged: &StagedTarget,
    current: Vec<Partition>,
    tag: &WriteTag,
    run_id: &str,
) -> Result<Vec<Partition>> {
    let planned = publish::plan(target, staged, &current, tag, run_id)?;
    let replaced: std::collections::HashSet<&str> = planned.replaced.iter().map(|f| f.path.as_str()).collect();
    Ok(current
        .into_iter()
        .filter_map(|mut partition| {
            partition.files.retain(|f| !replaced.contains(f.path.as_str()));
            (!partition.files.is_empty()).then_some(partition)
        })
        .collect())
}

/// A merge matches rows on columns of the output (partition keys included).
fn check_merge_keys(target: &TargetSpec, merge: &super::MergeSpec, schema: &TableSchema) -> Result<()> {
    let names: Vec<&str> = schema.columns.iter().chain(&schema.partition_keys).map(|c| c.name.as_str()).collect();
    match merge.on.iter().find(|key| !names.contains(&key.as_str())) {
        Some(key) => Err(Error::query(format!(
            "target {}: merge_on column '{key}' is not in the query's output ({})",
            target.table,
            names.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Files already in a table must stay readable under its new schema: columns may be added,
/// dropped or widened as Athena reads the old files (an integer to a wider one, float to
/// double; not a number to double or decimal, nor anything to text), partition keys may
/// only become strings.
fn check_compatible(target: &TargetSpec, changes: &[Change], job: &str) -> Result<()> {
    for change in changes {
        // A Delta table's schema is its log's: a column dropped from it would vanish from the
        // files kept, and a type changed needs Delta's type widening, which readers may lack.
        let is_delta = target.format == TableFormat::Delta;
        let incompatible = match change {
            Change::Added { partition_key, .. } => *partition_key,
            Change::Removed { partition_key, .. } => *partition_key || is_delta,
            // etl's reader takes any widening, but the files kept must stay readable by Athena
            // under the new type (text "widens" anything, and Athena, Spark and DuckDB refuse
            // a folder of numbers and texts as one table).
            // A partition's value is its folder's text, which reads as a string whatever the
            // key was (`month=11` written as bigint, then `month=01` as string).
            Change::Changed { to: GlueType::String, partition_key: true, .. } => is_delta,
            Change::Changed { from, to, partition_key, .. } => *partition_key || is_delta || !athena_reads_as(from, to),
        };
        if incompatible {
            return Err(Error::query(format!(
                "target {}: {} is not compatible with the files already in the table ({} mode keeps them); {}",
                target.table,
                change.describe(),
                keeping_mode(target),
                overwrite_advice(job)
            )));
        }
    }
    Ok(())
}

/// A column a write adds may be one the kept files still hold from before it was dropped
/// (`x string` dropped, then `x bigint` added): Athena would refuse every query of the table,
/// and so would etl's reader. The kept files' footers are read only when a column is added.
async fn check_readded_columns(target: &TargetSpec, changes: &[Change], kept: &[Partition], job: &str) -> Result<()> {
    let added: Vec<(&str, &GlueType)> = changes
        .iter()
        .filter_map(|change| match change {
            Change::Added { name, ty, partition_key: false } => Some((name.as_str(), ty)),
            _ => None,
        })
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let files: Vec<&DataFile> = kept.iter().flat_map(|p| &p.files).collect();
    let keys = files
        .iter()
        .map(|f| {
            let key = ObjectKey { url: f.path.clone(), size: f.size, e_tag: String::new() };
            Ok((Location::parse(&f.path)?.prefix().clone(), key))
        })
        .collect::<Result<Vec<_>>>()?;
    let footers = FooterCache::in_memory().footers(&target.location, &keys).await?;
    for (file, footer) in files.iter().zip(&footers) {
        for (name, held) in file_columns(&footer.metadata) {
            let Some((_, ty)) = added.iter().find(|(added, _)| *added == name) else { continue };
            if !athena_reads_as(&held, ty) {
                return Err(Error::query(format!(
                    "target {}: column {name} {ty} added, but {} (kept by {} mode) holds a column {name} of type \
                     {held} from before it was dropped, which Athena cannot read as {ty}; write it as {held}, or {}",
                    target.table,
                    file.path,
                    keeping_mode(target),
                    overwrite_advice(job)
                )));
            }
        }
    }
    Ok(())
}

/// How to replace a table whose files cannot be kept. An overwrite holds what its run reads:
/// for a job with incremental sources, the new objects only, unless it reads them all again.
fn overwrite_advice(job: &str) -> String {
    format!(
        "use mode = \"overwrite\" to replace the table (with this run's rows only: if the job's sources are \
         incremental, first `etl bookmarks reset {job}` so that it reads every object again)"
    )
}

fn keeping_mode(target: &TargetSpec) -> &'static str {
    match target.mode {
        WriteMode::Append => "append",
        WriteMode::Merge => "merge",
        _ => "overwrite_partitions",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::catalog::local::LocalCatalog;
    use crate::location::Location;
    use crate::sink::ParquetCompression;

    struct NoneLive;

    impl RunLiveness for NoneLive {
        fn is_live(&self, _: &str) -> bool {
            false
        }
    }

    struct Setup {
        dir: tempfile::TempDir,
        catalog: LocalCatalog,
    }

    impl Setup {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let catalog = LocalCatalog::open(&dir.path().join("home")).unwrap();
            Setup { dir, catalog }
        }

        fn target(&self, mode: WriteMode) -> TargetSpec {
            TargetSpec {
                table: "curated.t".parse().unwrap(),
                query: "SELECT * FROM input".into(),
                location: Location::parse(self.dir.path().join("out").to_str().unwrap()).unwrap(),
                partition_by: vec!["dt".into()],
                mode,
                compression: ParquetCompression::Zstd,
                encryption: Default::default(),
                checks: Vec::new(),
                retain_versions: crate::sink::DEFAULT_RETAIN_VERSIONS,
                layout: Default::default(),
                format: Default::default(),
                merge: None,
                data_change: true,
            }
        }

        /// Every file under the target's folder, relative to it.
        fn files(&self) -> Vec<String> {
            let root = self.dir.path().join("out");
            let mut found = Vec::new();
            let mut folders = vec![root.clone()];
            while let Some(folder) = folders.pop() {
                for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        folders.push(path);
                    } else {
                        found.push(path.strip_prefix(&root).unwrap().to_string_lossy().into_owned());
                    }
                }
            }
            found.sort();
            found
        }
    }

    fn frame(values: &[(i64, &str)]) -> DataFrame {
        let schema = Arc::new(Schema::new(vec![
            Field::new("amount", DataType::Int64, true),
            Field::new("dt", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(values.iter().map(|(a, _)| *a).collect::<Vec<_>>())),
                Arc::new(StringArray::from(values.iter().map(|(_, d)| *d).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        SessionContext::new().read_batch(batch).unwrap()
    }

    fn tag(date: &str) -> WriteTag {
        let work = crate::catalog::Work { job: "j".into(), logical_date: date.into(), params: "params()".into() };
        WriteTag { work, rerun_replaces: true }
    }

    #[tokio::test]
    async fn staged_output_is_seen_by_no_reader_until_the_publication() {
        let s = Setup::new();
        let target = s.target(WriteMode::OverwritePartitions);
        let mut commit = Commit::new("r1", tag("d1"));
        let (staged, warnings) =
            commit.stage(&s.catalog, frame(&[(1, "a"), (2, "b")]), &target, &NoneLive).await.unwrap();
        assert_eq!((staged.rows(), staged.partition_count(), warnings.len()), (2, 2, 0));
        assert!(s.catalog.table(&target.table).await.unwrap().is_none());
        assert!(s.files().iter().all(|f| f.starts_with("_etl_staging/r1/")), "{:?}", s.files());

        let published = commit.publish(&s.catalog, Vec::new()).await.unwrap();
        assert!(published.replaced.is_empty());
        let partitions = s.catalog.partitions(&target.table).await.unwrap();
        let folders: Vec<&str> = partitions.iter().map(|p| p.location.rsplit("out/").next().unwrap()).collect();
        assert_eq!(folders, ["dt=a/run-r1", "dt=b/run-r1"]);
        assert!(commit.clean_up(&s.catalog, &NoneLive).await.is_empty());
        assert!(commit.close().await.is_empty());
        assert_eq!(s.files(), ["dt=a/run-r1/part-r1-00000.zstd.parquet", "dt=b/run-r1/part-r1-00001.zstd.parquet"]);
    }

    #[tokio::test]
    async fn a_commit_closed_before_its_publication_leaves_nothing() {
        let s = Setup::new();
        let target = s.target(WriteMode::Overwrite);
        let mut commit = Commit::new("r1", tag("d1"));
        commit.stage(&s.catalog, frame(&[(1, "a")]), &target, &NoneLive).await.unwrap();
        assert!(!s.files().is_empty());
        assert!(commit.close().await.is_empty());
        assert!(s.files().is_empty(), "{:?}", s.files());
        assert!(s.catalog.table(&target.table).await.unwrap().is_none());
    }

    /// Publishes r1 (partitions a, b), then its rerun r2 (b alone, which replaces both: a is
    /// only r1's output), with `retain` versions kept.
    async fn rerun(s: &Setup, retain: u32) {
        let target = TargetSpec { retain_versions: retain, ..s.target(WriteMode::OverwritePartitions) };
        let mut first = Commit::new("r1", tag("d1"));
        first.stage(&s.catalog, frame(&[(1, "a"), (2, "b")]), &target, &NoneLive).await.unwrap();
        first.publish(&s.catalog, Vec::new()).await.unwrap();
        first.close().await;

        let mut second = Commit::new("r2", tag("d1"));
        second.stage(&s.catalog, frame(&[(3, "b")]), &target, &NoneLive).await.unwrap();
        let published = second.publish(&s.catalog, Vec::new()).await.unwrap();
        assert_eq!((published.replaced.len(), published.data_versions.as_slice()), (2, &[Some(2)][..]));
        assert!(second.clean_up(&s.catalog, &NoneLive).await.is_empty());
        second.close().await;
    }

    #[tokio::test]
    async fn a_rerun_replaces_what_the_last_run_wrote_and_retains_its_files_out_of_sight() {
        let s = Setup::new();
        rerun(&s, 2).await;
        assert_eq!(
            s.files(),
            [
                "_etl_retained/dt=a/run-r1/part-r1-00000.zstd.parquet.retained",
                "_etl_retained/dt=b/run-r1/part-r1-00001.zstd.parquet.retained",
                "dt=b/run-r2/part-r2-00000.zstd.parquet"
            ]
        );
    }

    #[tokio::test]
    async fn with_one_version_retained_a_rerun_deletes_what_it_replaced() {
        let s = Setup::new();
        rerun(&s, 1).await;
        assert_eq!(s.files(), ["dt=b/run-r2/part-r2-00000.zstd.parquet"]);
    }

    #[tokio::test]
    async fn what_dead_runs_left_in_staging_is_removed_with_a_warning() {
        let s = Setup::new();
        let target = s.target(WriteMode::Overwrite);
        let mut dead = Commit::new("r0", tag("d1"));
        dead.stage(&s.catalog, frame(&[(1, "a")]), &target, &NoneLive).await.unwrap();
        // r0 is killed here: it never closes its commit.
        let mut commit = Commit::new("r1", tag("d1"));
        let (_, warnings) = commit.stage(&s.catalog, frame(&[(1, "a")]), &target, &NoneLive).await.unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("removed the staging files of run r0"), "{warnings:?}");
        assert!(s.files().iter().all(|f| f.starts_with("_etl_staging/r1/")), "{:?}", s.files());
    }

    #[tokio::test]
    async fn a_crawled_table_is_refused_before_anything_is_written() {
        let s = Setup::new();
        let target = s.target(WriteMode::Overwrite);
        let mut crawled = TableDefinition::parquet("file:///raw".into(), &TableSchema::default(), "zstd", "j");
        crawled.parameters.remove(WRITTEN_BY);
        let create = TableChange {
            name: target.table.clone(),
            expected_version: None,
            new_version: Some(NewVersion { definition: crawled, diff: Vec::new() }),
            data: DataChange::None,
        };
        s.catalog.publish(Publication { run_id: None, tables: vec![create] }).await.unwrap();
        let mut commit = Commit::new("r1", tag("d1"));
        let err = commit.stage(&s.catalog, frame(&[(1, "a")]), &target, &NoneLive).await.err().unwrap();
        assert!(err.message().contains("is a crawled table over file:///raw"), "{err}");
        assert!(s.files().is_empty());
    }

    #[tokio::test]
    async fn a_schema_the_kept_files_cannot_be_read_with_is_refused() {
        let s = Setup::new();
        let target = s.target(WriteMode::Append);
        let ctx = SessionContext::new();
        let text = || ctx.sql("SELECT 'x' AS amount, 'a' AS dt");
        let mut first = Commit::new("r1", tag("d1"));
        first.stage(&s.catalog, frame(&[(1, "a")]), &target, &NoneLive).await.unwrap();
        first.publish(&s.catalog, Vec::new()).await.unwrap();
        first.close().await;

        // Athena reads no file of bigints as text: the kept files would become unreadable.
        let mut second = Commit::new("r2", tag("d2"));
        let err = second.stage(&s.catalog, text().await.unwrap(), &target, &NoneLive).await.err().unwrap();
        assert!(err.message().contains("not compatible with the files already in the table (append mode"), "{err}");
        second.close().await;
        assert!(s.files().iter().all(|f| !f.starts_with("_etl_staging")), "nothing staged: {:?}", s.files());
        // In overwrite mode nothing is kept, and the new schema is a new version.
        let overwrite = TargetSpec { mode: WriteMode::Overwrite, ..target.clone() };
        let mut third = Commit::new("r3", tag("d3"));
        third.stage(&s.catalog, text().await.unwrap(), &overwrite, &NoneLive).await.unwrap();
        third.publish(&s.catalog, Vec::new()).await.unwrap();
        assert_eq!(s.catalog.table(&target.table).await.unwrap().unwrap().version, 2);
    }
}
