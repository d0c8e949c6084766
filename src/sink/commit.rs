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
//! 3. [`Commit::clean_up`] after a publication: delete what it replaced, and the folders of
//!    dead runs in the partitions it wrote;
//! 4. [`Commit::close`], whatever happened: abandon the run folders of a publication that did
//!    not happen, remove the staging folders.
//!
//! A failure or a kill before step 2's publication leaves only folders no catalog entry
//! names: the next run of the target, or `etl gc`, removes them. Nothing here prints:
//! what a step wants the user to know comes back as warnings.

use datafusion::dataframe::DataFrame;

use super::publish::{self, TargetPublication, WriteTag};
use super::{RunLiveness, StagedTarget, TargetSpec, parquet, target_schema};
use crate::catalog::definition::WRITTEN_BY;
use crate::catalog::{
    Catalog, DataChange, NewVersion, Publication, Published, Table, TableChange, TableDefinition, WriteMode,
};
use crate::error::{Error, Result};
use crate::layout;
use crate::schema::TableSchema;
use crate::schema::diff::{Change, diff};
use crate::schema::widen::widen;

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
        let (schema, columns) = target_schema(&df, target)?;
        let new_version = new_version(target, existing.as_ref(), &schema, &self.tag.job, &self.run_id)?;
        let warnings = parquet::remove_stale_staging(&target.location, runs)
            .await?
            .into_iter()
            .map(|run| {
                format!("removed the staging files of run {run}, which did not finish, from {}", target.location)
            })
            .collect();
        self.staging.push(target.clone());
        let staged = parquet::stage(df.select(columns)?, target, schema, &self.run_id).await?;
        self.targets.push(TargetCommit { spec: target.clone(), existing, new_version, staged, planned: None });
        Ok((&self.targets.last().expect("just pushed").staged, warnings))
    }

    /// Every staged target, in the order staged.
    pub fn staged(&self) -> impl Iterator<Item = (&TargetSpec, &StagedTarget)> {
        self.targets.iter().map(|t| (&t.spec, &t.staged))
    }

    /// Step 2: puts every staged file in its run folder, then publishes all targets, and
    /// `with` (changes of the same run to other tables), in one catalog publication.
    pub async fn publish(&mut self, catalog: &dyn Catalog, with: Vec<TableChange>) -> Result<&Published> {
        let mut publication = Publication { run_id: Some(self.run_id.clone()), tables: with };
        for target in &mut self.targets {
            let partitions = match &target.existing {
                Some(table) => catalog.partitions(&table.name).await?,
                None => Vec::new(),
            };
            let planned = publish::plan(&target.spec, &target.staged, &partitions, &self.tag, &self.run_id);
            let written = planned.written.clone();
            let planned = target.planned.insert(planned);
            publish::materialize(&target.spec, planned).await?;
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

    /// Step 3, after a publication: deletes the files it replaced, and what dead runs left in
    /// the partitions it wrote. The run has published: a failure here is a warning.
    pub async fn clean_up(&mut self, runs: &dyn RunLiveness) -> Vec<String> {
        let Some(published) = &self.published else {
            return Vec::new();
        };
        let mut warnings = Vec::new();
        for target in &self.targets {
            let Some(planned) = &target.planned else {
                continue;
            };
            let root = target.spec.location.url();
            let replaced: Vec<_> =
                published.replaced.iter().filter(|p| p.location.starts_with(&root)).cloned().collect();
            if let Err(e) = publish::clean_up(&target.spec, planned, &replaced, runs).await {
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
                if let Some(planned) = &target.planned {
                    if let Err(e) = publish::abandon(&target.spec, planned).await {
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
    // Athena reads an unpartitioned table from its location: the run's folder.
    let location = if schema.partition_keys.is_empty() {
        layout::run_folder(&target.location, [], &[], run_id).url()
    } else {
        target.location.url()
    };
    let mut definition = TableDefinition::parquet(location, schema, target.compression.name(), job);
    // Jobs that write different partitions of one table share it: which job wrote last is
    // not a new version of the table (its files say which job wrote them).
    if let Some(first) = existing.and_then(|t| t.definition.parameters.get(WRITTEN_BY)) {
        definition.parameters.insert(WRITTEN_BY.to_string(), first.clone());
    }
    Ok(match existing {
        None => Some(NewVersion { definition, diff: diff(&TableSchema::default(), schema) }),
        Some(table) if table.definition == definition => None,
        Some(table) => {
            let changes = diff(&table.definition.schema(), schema);
            if target.mode != WriteMode::Overwrite {
                check_compatible(target, &changes)?;
            }
            Some(NewVersion { definition, diff: changes })
        }
    })
}

/// Files already in a table must stay readable under its new schema: columns may be added,
/// dropped or widened, partition keys may not change.
fn check_compatible(target: &TargetSpec, changes: &[Change]) -> Result<()> {
    for change in changes {
        let incompatible = match change {
            Change::Added { partition_key, .. } | Change::Removed { partition_key, .. } => *partition_key,
            Change::Changed { from, to, partition_key, .. } => *partition_key || widen(from, to) != *to,
        };
        if incompatible {
            return Err(Error::query(format!(
                "target {}: {} is not compatible with the files already in the table ({} mode keeps them); use mode = \"overwrite\" to replace the table",
                target.table,
                change.describe(),
                match target.mode {
                    WriteMode::Append => "append",
                    _ => "overwrite_partitions",
                }
            )));
        }
    }
    Ok(())
}
