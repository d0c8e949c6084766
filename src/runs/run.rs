//! One run of a job: crawl the sources, run the steps, stage the targets, publish everything
//! at once.
//!
//! The catalog changes of a run (new source versions, new target versions, target data) form
//! one publication, applied all-or-nothing at the end. Until then the run has changed nothing
//! that anyone reads: source crawls are only plans, targets are written to staging folders.
//! If anything fails, the staged files are removed and the run is recorded as failed.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{NaiveDate, SecondsFormat, Utc};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;

use super::RunStatus;
use super::history::{History, LEASE};
use super::job::{Job, SourceSpec};
use super::progress::{Progress, human_bytes};
use super::report::{AthenaReport, AthenaScan, RunReport, SourceReport, TargetReport};
use crate::catalog::crawl::{self, CrawlPlan};
use crate::catalog::definition::WRITTEN_BY;
use crate::catalog::provider::{FileTable, is_written};
use crate::catalog::{Catalog, DataChange, NewVersion, Publication, Table, TableChange, TableDefinition, WriteMode};
use crate::cost::estimate::{Estimator, QueryEstimate, full_scan};
use crate::cost::footers::FooterCache;
use crate::error::{Error, Result};
use crate::schema::TableSchema;
use crate::schema::diff::{Change, diff};
use crate::schema::widen::widen;
use crate::sink::parquet::{remove_staging, remove_stale_staging, stage};
use crate::sink::publish::{self, WriteTag};
use crate::sink::{StagedTarget, TargetSpec};
use crate::source::files::{self, SourceFile};
use crate::source::format::Format;
use crate::source::rejects::{BadRecordPolicy, Rejects};
use crate::source::scan::ReadStats;
use crate::transform::params::Params;
use crate::transform::script::{self, Statement};
use crate::transform::session::{EngineOptions, session};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub logical_date: Option<NaiveDate>,
    pub params: Vec<String>,
    pub dry_run: bool,
    pub engine: EngineOptions,
    pub price_per_tb: f64,
}

/// What a run needs from its surroundings.
pub struct RunContext {
    pub catalog: Arc<dyn Catalog>,
    pub history: Arc<History>,
    pub home: PathBuf,
    pub progress: Progress,
}

/// The report of a run, and its error when it failed.
pub struct RunOutcome {
    pub report: RunReport,
    pub error: Option<Error>,
}

/// A new run id: when it started, and a random suffix to tell apart runs started together.
pub fn new_run_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{}-{:06x}", Utc::now().format("%Y%m%dT%H%M%SZ"), hasher.finish() & 0xff_ffff)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Resolves what the run will use before it starts: a bad `--param` is a usage error (exit 2),
/// not a failed run.
pub fn resolve_params(job: &Job, options: &RunOptions, run_id: &str) -> Result<(NaiveDate, Params)> {
    let logical_date = options.logical_date.unwrap_or_else(|| Utc::now().date_naive());
    let mut params = job.params.clone();
    params.apply_overrides(&options.params)?;
    Ok((logical_date, params.with_built_ins(logical_date, run_id)))
}

pub async fn run(job: &Job, options: &RunOptions, context: &RunContext) -> Result<RunOutcome> {
    let run_id = new_run_id();
    let (logical_date, params) = resolve_params(job, options, &run_id)?;
    let mut report = RunReport {
        run_id: run_id.clone(),
        job: job.name.clone(),
        logical_date: logical_date.to_string(),
        status: RunStatus::Running,
        started_at: now(),
        finished_at: None,
        sources: Vec::new(),
        targets: Vec::new(),
        rejected_rows: 0,
        quarantine: None,
        athena: AthenaReport::default(),
        error: None,
        dry_run: options.dry_run,
    };
    if !options.dry_run {
        context.history.record(&report)?;
    }
    let mut state = RunState::default();
    let lease = (!options.dry_run).then(|| run_lease(job, &report.logical_date));
    let result = match &lease {
        Some(key) => {
            exclusively(context, job, key, &run_id, execute(job, options, context, &params, &mut report, &mut state))
                .await
        }
        None => execute(job, options, context, &params, &mut report, &mut state).await,
    };
    if let Some(key) = &lease {
        if let Err(e) = context.history.release_lease(&job.name, key, &run_id) {
            eprintln!("warning: {e}");
        }
    }
    context.progress.finish();
    crate::kill_points::reached("finished");
    report.finished_at = Some(now());
    if result.is_err() {
        // Nothing was published: the new run folders are named by no catalog entry.
        for (target, publication) in &state.planned {
            if let Err(e) = publish::abandon(target, publication).await {
                eprintln!("warning: {e}");
            }
        }
    }
    for target in &state.staged {
        if let Err(e) = remove_staging(&target.location, &run_id).await {
            eprintln!("warning: {e}");
        }
    }
    let error = match result {
        Ok(()) => {
            report.status = RunStatus::Succeeded;
            None
        }
        Err(error) => {
            report.status = RunStatus::Failed;
            report.error = Some(error.message().to_string());
            Some(error)
        }
    };
    if !options.dry_run {
        context.history.record(&report)?;
    }
    Ok(RunOutcome { report, error })
}

/// What runs of a job must not do at once: run the same logical date (the second would redo
/// the first's work and race it to publish), or, for a job with incremental sources, run at
/// all (two runs would both read the same new objects, and both add them).
fn run_lease(job: &Job, logical_date: &str) -> String {
    if job.sources.iter().any(|s| s.incremental) {
        "run: any date (incremental sources)".to_string()
    } else {
        format!("run: {logical_date}")
    }
}

/// Runs `work` under the lease `key`, renewed while it runs; fails at once, with nothing done,
/// while another live run holds it. A killed holder gives it up at once (its process is
/// gone), one on another host when its lease expires.
async fn exclusively(
    context: &RunContext,
    job: &Job,
    key: &str,
    run_id: &str,
    work: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let lease = chrono::Duration::from_std(LEASE).expect("a short lease");
    let now = Utc::now();
    if !context.history.try_lease(&job.name, key, run_id, now, now + lease)? {
        return Err(Error::conflict(format!(
            "another run of job {} is running ({key}); this run did nothing, run it again when that one has finished",
            job.name
        )));
    }
    let heartbeat = async {
        loop {
            tokio::time::sleep(LEASE / 3).await;
            let now = Utc::now();
            if let Err(e) = context.history.try_lease(&job.name, key, run_id, now, now + lease) {
                eprintln!("warning: renewing the run's lease: {e}");
            }
        }
    };
    tokio::select! {
        result = work => result,
        () = heartbeat => Err(Error::runtime("the run's lease heartbeat stopped")),
    }
}

#[derive(Default)]
struct RunState {
    /// Targets with files in staging (to clean up, whatever happens).
    staged: Vec<TargetSpec>,
    /// Publications whose files were put in place (to remove if the run fails).
    planned: Vec<(TargetSpec, publish::TargetPublication)>,
}

struct SourceRead {
    plan: CrawlPlan,
    rejects: Arc<Rejects>,
    stats: Arc<ReadStats>,
    /// The objects an incremental source reads this run (key, version), for its bookmark.
    processed: Option<Vec<(String, String)>>,
}

/// Crawls a source: all its objects, or for an incremental source only those no successful
/// run processed (a changed object counts as new), returned with it.
async fn crawl_source(
    job: &Job,
    source: &SourceSpec,
    context: &RunContext,
) -> Result<(CrawlPlan, Option<Vec<(String, String)>>)> {
    let catalog = context.catalog.as_ref();
    if !source.incremental {
        let plan =
            crawl::plan(catalog, &source.table, &source.location, &source.infer, source.on_schema_change).await?;
        return Ok((plan, None));
    }
    let mut listing = files::list(&source.location).await?;
    let done = context.history.bookmarks(&job.name, &source.table.to_string())?;
    listing.files.retain(|file| done.get(&source.location.url_of(&file.path)) != Some(&object_version(file)));
    let processed = listing.files.iter().map(|f| (source.location.url_of(&f.path), object_version(f))).collect();
    let plan = crawl::plan_incremental(catalog, &source.table, listing, &source.infer, source.on_schema_change).await?;
    Ok((plan, Some(processed)))
}

async fn execute(
    job: &Job,
    options: &RunOptions,
    context: &RunContext,
    params: &Params,
    report: &mut RunReport,
    state: &mut RunState,
) -> Result<()> {
    let run_id = report.run_id.clone();
    let quarantine_folder = context.home.join("quarantine").join(&job.name).join(&run_id);

    // 1. Crawl every source (nothing recorded yet).
    let mut reads: Vec<(SourceSpec, SourceRead)> = Vec::new();
    let mut overrides: HashMap<_, Arc<dyn TableProvider>> = HashMap::new();
    for source in &job.sources {
        context.progress.step(format!("crawling {} at {}", source.table, source.location));
        let (plan, processed) =
            crawl_source(job, source, context).await.map_err(|e| e.context(format!("source {}", source.table)))?;
        crate::kill_points::reached("crawl");
        for empty in &plan.inferred.listing.empty {
            eprintln!("warning: skipping empty object {empty}");
        }
        if plan.change == crawl::CrawlChange::Logged {
            eprintln!(
                "warning: the schema of {} changed ({}); on_schema_change is log, so the run reads it with version {}",
                source.table,
                crawl::describe(&plan.diff, &plan.definition, &plan.definition),
                plan.version
            );
        }
        let quarantine_file = quarantine_folder.join(format!("{}.jsonl", source.table));
        let rejects = Arc::new(Rejects::new(source.bad_records, Some(quarantine_file)));
        let stats = Arc::new(ReadStats::default());
        let table = FileTable::from_listing(&plan.definition, &plan.inferred.listing, rejects.clone(), stats.clone())?;
        overrides.insert(source.table.clone(), Arc::new(table) as Arc<dyn TableProvider>);
        context.progress.step(format!(
            "crawled {}: {} files, {}",
            source.table,
            plan.inferred.listing.files.len(),
            human_bytes(plan.inferred.listing.bytes())
        ));
        reads.push((source.clone(), SourceRead { plan, rejects, stats, processed }));
    }
    let incremental: Vec<&SourceRead> = reads.iter().filter(|(s, _)| s.incremental).map(|(_, r)| r).collect();
    let nothing_new =
        !incremental.is_empty() && incremental.iter().all(|r| r.processed.as_ref().is_some_and(Vec::is_empty));
    if job.sources.iter().any(|s| s.bad_records == BadRecordPolicy::Quarantine) {
        report.quarantine = Some(quarantine_folder.display().to_string());
    }

    if nothing_new {
        // An incremental run with nothing to process succeeds and publishes nothing.
        context.progress.step("no new objects: nothing to do");
        report_sources(report, &reads)?;
        return Ok(());
    }

    // 2. Steps, in order, in one session (which writes to each bucket as its targets ask).
    let mut engine = options.engine.clone();
    for target in &job.targets {
        if let Some(bucket) = target.location.bucket() {
            engine.encryption.insert(bucket.to_string(), target.encryption.clone());
        }
    }
    let ctx = session(context.catalog.clone(), overrides, &engine).await?;
    for step in &job.steps {
        context.progress.step(format!("running {}", step.display));
        script::run(&ctx, &step.display, &step.sql, params).await?;
    }

    // 3. Targets, to staging; what each target's query would bill on Athena over the sources.
    let estimator =
        Estimator { footers: Arc::new(FooterCache::open(&context.home)?), price_per_tb: options.price_per_tb };
    let mut queries = Vec::new();
    let mut staged_targets: Vec<(TargetSpec, Option<Table>, StagedTarget)> = Vec::new();
    for target in &job.targets {
        context.progress.step(format!("writing {}", target.table));
        let existing = context.catalog.table(&target.table).await?;
        let df = target_frame(&ctx, target, params).await?;
        queries.push(estimator.estimate(&ctx.state(), df.logical_plan()).await?);
        if options.dry_run {
            crate::sink::target_schema(&df, target)?;
            continue;
        }
        let history = context.history.clone();
        let removed = remove_stale_staging(&target.location, history.as_ref()).await?;
        for run in removed {
            eprintln!("note: removed the staging files of run {run}, which did not finish, from {}", target.location);
        }
        state.staged.push(target.clone());
        let staged = stage(df, target, &report.run_id).await?;
        context.progress.step(format!(
            "wrote {}: {} rows, {}",
            target.table,
            staged.rows(),
            human_bytes(staged.bytes())
        ));
        staged_targets.push((target.clone(), existing, staged));
    }

    let own = QueryEstimate::total(queries, options.price_per_tb);
    report.athena = AthenaReport {
        bytes_scanned: own.bytes_scanned,
        billed_bytes: own.billed_bytes,
        usd: own.usd,
        targets: Vec::new(),
    };

    report_sources(report, &reads)?;
    if options.dry_run {
        for target in &job.targets {
            report.targets.push(TargetReport {
                table: target.table.to_string(),
                location: target.location.url(),
                files: 0,
                rows: 0,
                bytes: 0,
                partitions: 0,
            });
        }
        return Ok(());
    }

    // 4. Put the new files in their run folders, then publish sources and targets together.
    let mut publication = Publication { run_id: Some(report.run_id.clone()), tables: Vec::new() };
    for (_, read) in &reads {
        publication.tables.push(read.plan.table_change.clone());
    }
    let tag = WriteTag {
        job: job.name.clone(),
        logical_date: report.logical_date.clone(),
        rerun_replaces: !job.sources.iter().any(|s| s.incremental),
    };
    for (target, existing, staged) in &staged_targets {
        let partitions = match existing {
            Some(table) => context.catalog.partitions(&table.name).await?,
            None => Vec::new(),
        };
        let planned = publish::plan(target, staged, &partitions, &tag, &report.run_id);
        state.planned.push((target.clone(), planned.clone()));
        publish::materialize(target, &planned).await?;
        publication.tables.push(target_change(
            target,
            existing.as_ref(),
            staged,
            &job.name,
            &report.run_id,
            planned.written,
        )?);
        report.targets.push(TargetReport {
            table: target.table.to_string(),
            location: target.location.url(),
            files: staged.files.len() as u64,
            rows: staged.rows(),
            bytes: staged.bytes(),
            partitions: staged.partition_count() as u64,
        });
    }
    report.athena.targets = staged_targets
        .iter()
        .map(|(target, _, staged)| {
            let scan = full_scan(staged.bytes(), options.price_per_tb);
            AthenaScan {
                table: target.table.to_string(),
                bytes_scanned: scan.bytes_scanned,
                billed_bytes: scan.billed_bytes,
                usd: scan.usd,
            }
        })
        .collect();
    context.progress.step("publishing");
    crate::kill_points::reached("publish");
    let published = context.catalog.publish(publication).await?;
    crate::kill_points::reached("published");
    // Incremental sources remember what this run processed, now that it published.
    for (source, read) in &reads {
        if let Some(processed) = &read.processed {
            context.history.advance_bookmarks(&job.name, &source.table.to_string(), processed, &report.run_id)?;
        }
    }
    let planned = std::mem::take(&mut state.planned);

    // 5. What the publication replaced is no one's any more.
    context.progress.step("cleaning up");
    let history = context.history.clone();

    for (target, planned) in &planned {
        let replaced: Vec<_> =
            published.replaced.iter().filter(|p| p.location.starts_with(&target.location.url())).cloned().collect();
        if let Err(e) = publish::clean_up(target, planned, &replaced, history.as_ref()).await {
            eprintln!("warning: the run published, but cleaning up {} failed: {e}", target.location);
        }
    }
    Ok(())
}

/// What tells one version of an object from another: its ETag, or its size and modification
/// time where the store gives no ETag (as Glue bookmarks track objects).
fn object_version(file: &SourceFile) -> String {
    file.e_tag.clone().unwrap_or_else(|| format!("{}@{}", file.size, file.last_modified.timestamp_millis()))
}

/// What the run read from each source.
fn report_sources(report: &mut RunReport, reads: &[(SourceSpec, SourceRead)]) -> Result<()> {
    for (source, read) in reads {
        read.rejects.finish()?;
        report.rejected_rows += read.rejects.count();
        let listing = &read.plan.inferred.listing;
        report.sources.push(SourceReport {
            table: source.table.to_string(),
            files: listing.files.len() as u64,
            bytes: listing.bytes(),
            rows: if read.plan.inferred.format == Format::Parquet {
                read.plan.inferred.rows.unwrap_or(0)
            } else {
                read.stats.rows()
            },
            schema_version: read.plan.version,
            change: read.plan.change.as_str().to_string(),
        });
    }
    Ok(())
}

/// The DataFrame of a target's query, with the run's parameters bound.
async fn target_frame(
    ctx: &SessionContext,
    target: &TargetSpec,
    params: &Params,
) -> Result<datafusion::dataframe::DataFrame> {
    let what = format!("target {} query", target.table);
    let statements = script::split(&target.query);
    let [statement] = statements.as_slice() else {
        return Err(Error::query(format!("{what}: expected one SELECT statement, found {}", statements.len())));
    };
    let statement = Statement { text: statement.text.clone(), line: 1 };
    script::run_statement(ctx, &what, &statement, params).await
}

/// What publishing a target does to its table: a new definition when it changed (the schema,
/// or for an unpartitioned table the run folder it now lives in), and its partitions.
fn target_change(
    target: &TargetSpec,
    existing: Option<&Table>,
    staged: &StagedTarget,
    job: &str,
    run_id: &str,
    written: crate::catalog::WrittenData,
) -> Result<TableChange> {
    if let Some(table) = existing.filter(|t| !is_written(&t.definition)) {
        return Err(Error::query(format!(
            "target {}: {} is a crawled table over {}, not one a job writes; choose another table",
            target.table, table.name, table.definition.location
        )));
    }
    // Athena reads an unpartitioned table from its location: the run's folder.
    let location = if staged.schema.partition_keys.is_empty() {
        publish::run_folder(target, staged, &[], run_id).url()
    } else {
        target.location.url()
    };
    let mut definition = TableDefinition::parquet(location, &staged.schema, target.compression.name(), job);
    // Jobs that write different partitions of one table share it: which job wrote last is
    // not a new version of the table (its files say which job wrote them).
    if let Some(first) = existing.and_then(|t| t.definition.parameters.get(WRITTEN_BY)) {
        definition.parameters.insert(WRITTEN_BY.to_string(), first.clone());
    }
    let new_version = match existing {
        None => Some(NewVersion { definition, diff: diff(&TableSchema::default(), &staged.schema) }),
        Some(table) if table.definition == definition => None,
        Some(table) => {
            let old = table.definition.schema();
            let changes = diff(&old, &staged.schema);
            if target.mode != WriteMode::Overwrite {
                check_compatible(target, &changes)?;
            }
            Some(NewVersion { definition, diff: changes })
        }
    };
    Ok(TableChange {
        name: target.table.clone(),
        expected_version: existing.map(|t| t.version),
        new_version,
        data: DataChange::Written(written),
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
