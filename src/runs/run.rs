//! One run of a job: crawl the sources, run the steps, stage the targets, check nothing is
//! amiss, publish everything at once.
//!
//! The catalog changes of a run (new source versions, new target versions, target data) form
//! one publication, applied all-or-nothing by the sink's [`Commit`]. Until then the run has
//! changed nothing that anyone reads: source crawls are only plans, targets are written to
//! staging folders. If anything fails, the commit removes what the run wrote and the run is
//! recorded as failed.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, SecondsFormat, Utc};
use datafusion::catalog::TableProvider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionContext};
use tokio_util::sync::CancellationToken;

use super::audit::{audit, audit_unchanged, plan_checks};
use super::events::EventObject;
use super::history::{History, LEASE};
use super::job::{Job, SourceSpec};
use super::progress::Progress;
use super::quarantine as quarantined;
use super::report::{AthenaReport, AthenaScan, ReplacedRows, RunReport, SourceReport, TargetReport};
use super::{RunStatus, StartedBy};
use crate::catalog::crawl::{self, CrawlPlan};
use crate::catalog::provider::{FileTable, UnionTable};
use crate::catalog::{self as catalogs, Catalog, Work};
use crate::config::CatalogChoice;
use crate::cost::billing::Estimate;
use crate::cost::estimate::{Estimator, QueryEstimate, full_scan};
use crate::cost::footers::FooterCache;
use crate::error::{Error, ErrorKind, Result};
use crate::location::Location;
use crate::output::human_bytes;
use crate::sink::{Commit, TargetSpec, WriteTag};
use crate::source::files::{self, SourceFile};
use crate::source::format::Format;
use crate::source::rejects::{BadRecordPolicy, Quarantine, Rejects};
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
    /// A run of this job whose quarantined records (fixed by the user) are read beside the
    /// sources.
    pub replay_quarantine: Option<String>,
    pub started_by: StartedBy,
    /// The pipeline run this run is a job of.
    pub pipeline_run_id: Option<String>,
    /// The object whose event started the run.
    pub event: Option<EventObject>,
    /// Cancelled when the run's attempt runs out of time: the run stops before its
    /// publication (see [`attempt_within`]).
    pub cancel: CancellationToken,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            logical_date: None,
            params: Vec::new(),
            dry_run: false,
            engine: EngineOptions::default(),
            price_per_tb: crate::cost::billing::DEFAULT_PRICE_PER_TB,
            replay_quarantine: None,
            started_by: StartedBy::Manual,
            pipeline_run_id: None,
            event: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// What a run needs from its surroundings.
pub struct RunContext {
    pub catalog: Arc<dyn Catalog>,
    pub history: Arc<History>,
    pub home: PathBuf,
    pub progress: Progress,
}

impl RunContext {
    /// The catalog `choice` names and the run history, both under the state folder `home`.
    pub async fn open(choice: CatalogChoice, home: &Path, progress: Progress) -> Result<RunContext> {
        Ok(RunContext {
            catalog: catalogs::open(choice, home).await?,
            history: Arc::new(History::open(home)?),
            home: home.to_path_buf(),
            progress,
        })
    }
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

/// The parameters of a query outside a job (`etl sql`, `etl cost`): `overrides` and the
/// built-ins for `logical_date` (default today), with a run id of its own.
pub fn query_params(overrides: &[String], logical_date: Option<NaiveDate>) -> Result<Params> {
    Params::default().resolve(overrides, logical_date.unwrap_or_else(|| Utc::now().date_naive()), &new_run_id())
}

/// Runs a job once. A run that fails is an outcome with an error, recorded in the history
/// like any other; `Err` is what kept it from starting (a bad `--param`, the history).
pub async fn run(job: &Job, options: &RunOptions, context: &RunContext) -> Result<RunOutcome> {
    let run_id = new_run_id();
    let logical_date = options.logical_date.unwrap_or_else(|| Utc::now().date_naive());
    // A bad `--param` or replay is a usage error (exit 2), not a failed run.
    let params = job.params.resolve(&options.params, logical_date, &run_id)?;
    if let Some(replayed) = &options.replay_quarantine {
        quarantined::check_replay(&context.home, &job.name, replayed)?;
    }
    let mut report = RunReport::started(&run_id, &job.name, logical_date, options.dry_run, now());
    report.started_by = options.started_by;
    report.pipeline_run_id = options.pipeline_run_id.clone();
    report.event = options.event.clone();
    if !options.dry_run {
        context.history.record(&report)?;
    }
    let work = Work { job: job.name.clone(), logical_date: report.logical_date.clone(), params: params.fingerprint() };
    let tag = WriteTag { work, rerun_replaces: !job.sources.iter().any(|s| s.incremental) };
    let mut commit = Commit::new(&run_id, tag);
    let key = run_lease(job, &report.logical_date);
    let work = execute(job, options, context, &params, &mut report, &mut commit);
    let result = if options.dry_run {
        work.await
    } else {
        let result = exclusively(context, job, &key, &run_id, work).await;
        if let Err(e) = context.history.release_lease(&job.name, &key, &run_id) {
            warn(context, &mut report, e.to_string());
        }
        result
    };
    context.progress.finish();
    crate::kill_points::reached("finished");
    report.finished_at = Some(now());
    for warning in commit.close().await {
        warn(context, &mut report, warning);
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
    if error.is_none() && !options.dry_run && job.targets.iter().any(|t| t.layout.compact_after_files.is_some()) {
        // Its own runs, after this one's lease is released; what they did is noted here.
        let notes = Box::pin(super::compact::after_run(job, context)).await;
        if !notes.is_empty() {
            for note in notes {
                warn(context, &mut report, note);
            }
            context.history.record(&report)?;
        }
    }
    Ok(RunOutcome { report, error })
}

/// Runs the job for each date its schedule fires on from `from` to `to` (each day, for a job
/// without a schedule), in order, calling `each` after every run; stops at the first that
/// fails, since later dates may build on it.
pub async fn backfill(
    job: &Job,
    options: &RunOptions,
    context: &RunContext,
    from: NaiveDate,
    to: NaiveDate,
    mut each: impl FnMut(&RunOutcome) -> Result<()>,
) -> Result<Vec<RunOutcome>> {
    if from > to {
        return Err(Error::usage(format!("--from {from} is after --to {to}")));
    }
    let mut outcomes = Vec::new();
    for date in job.scheduled_dates(from, to) {
        let options = RunOptions { logical_date: Some(date), started_by: StartedBy::Backfill, ..options.clone() };
        let outcome = run(job, &options, context).await?;
        each(&outcome)?;
        let failed = outcome.error.is_some();
        outcomes.push(outcome);
        if failed {
            break;
        }
    }
    Ok(outcomes)
}

/// A run that whatever decides to run jobs (the scheduler, a pipeline) asks for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub logical_date: NaiveDate,
    pub started_by: StartedBy,
    pub pipeline_run_id: Option<String>,
    pub event: Option<EventObject>,
    pub cancel: CancellationToken,
}

impl RunRequest {
    pub fn new(logical_date: NaiveDate, started_by: StartedBy) -> Self {
        RunRequest { logical_date, started_by, pipeline_run_id: None, event: None, cancel: CancellationToken::new() }
    }
}

/// One attempt of a run, given at most `limit`: then the run is cancelled, which stops it
/// before its publication, and the attempt ends when the run has. A run already publishing
/// finishes: cut there, its publication would be finished by the next run that settles it,
/// after this attempt was reported failed. (Dropping the run's future instead left it running
/// on its thread, to publish after its attempt had failed and been retried.)
pub async fn attempt_within(
    runner: &dyn Runner,
    job: &Job,
    request: &RunRequest,
    limit: Option<std::time::Duration>,
) -> Result<RunReport> {
    let Some(limit) = limit else {
        return runner.run(job, request).await;
    };
    let request = RunRequest { cancel: CancellationToken::new(), ..request.clone() };
    let run = runner.run(job, &request);
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => return result,
        () = tokio::time::sleep(limit) => request.cancel.cancel(),
    }
    run.await
}

/// Runs `work` (of a run, before its publication) unless the run is cancelled first.
async fn unless_cancelled<T>(options: &RunOptions, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        biased;
        () = options.cancel.cancelled() => Err(Error::runtime(
            "the attempt timed out (attempt_timeout) before the run published: nothing was published",
        )),
        result = work => result,
    }
}

/// Runs one attempt of a job, recording it in the run history: the seam between what
/// decides that a job runs and the run itself, so the scheduler and the pipeline runner are
/// tested with runners that fail, hang or succeed at will.
#[async_trait]
pub trait Runner: Send + Sync {
    /// The run's report (a failed run is a report with an error); `Err` is what kept the run
    /// from starting.
    async fn run(&self, job: &Job, request: &RunRequest) -> Result<RunReport>;
    /// The catalog the job's runs publish to: where a pipeline's rollback undoes them.
    async fn catalog(&self, job: &Job) -> Result<Arc<dyn Catalog>>;
}

/// Runs jobs as `etl run` does, each with the catalog the command's flag or the job names.
pub struct JobRunner {
    /// The catalog of `--catalog` or `ETL_CATALOG`, before the job's own.
    pub catalog: Option<CatalogChoice>,
    pub home: PathBuf,
    /// What every run takes (engine settings, parameters); the request sets the rest.
    pub options: RunOptions,
}

#[async_trait]
impl Runner for JobRunner {
    async fn run(&self, job: &Job, request: &RunRequest) -> Result<RunReport> {
        let (job, catalog, home) = (job.clone(), self.catalog, self.home.clone());
        let options = RunOptions {
            logical_date: Some(request.logical_date),
            started_by: request.started_by,
            pipeline_run_id: request.pipeline_run_id.clone(),
            event: request.event.clone(),
            cancel: request.cancel.clone(),
            ..self.options.clone()
        };
        // A run is driven on a thread of its own: its future borrows across awaits in ways the
        // compiler cannot prove `Send` for every lifetime, and a run is long enough that a
        // thread per run costs nothing.
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(async move {
                let choice = CatalogChoice::resolve(catalog, job.catalog);
                let context = RunContext::open(choice, &home, Progress::warnings_only()).await?;
                Ok(run(&job, &options, &context).await?.report)
            })
        })
        .await
        .map_err(|e| Error::runtime(format!("internal error: the run's thread ended: {e}")))?
    }

    async fn catalog(&self, job: &Job) -> Result<Arc<dyn Catalog>> {
        catalogs::open(CatalogChoice::resolve(self.catalog, job.catalog), &self.home).await
    }
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
                context.progress.warn(&format!("renewing the run's lease: {e}"));
            }
        }
    };
    tokio::select! {
        result = work => result,
        () = heartbeat => Err(Error::runtime("the run's lease heartbeat stopped")),
    }
}

/// A warning of the run: shown now, and kept in its report.
pub(super) fn warn(context: &RunContext, report: &mut RunReport, warning: String) {
    context.progress.warn(&warning);
    report.warnings.push(warning);
}

/// The run, from the first listing to the clean-up after its publication.
async fn execute(
    job: &Job,
    options: &RunOptions,
    context: &RunContext,
    params: &Params,
    report: &mut RunReport,
    commit: &mut Commit,
) -> Result<()> {
    // 1. Crawl every source (nothing recorded yet).
    settle_interrupted_runs(job, context, &report.run_id).await?;
    if job.sources.iter().any(|s| s.incremental) {
        for target in &job.targets {
            align_bookmarks(context.history.as_ref(), context.catalog.as_ref(), &target.table).await?;
        }
    }
    let quarantine = quarantined::folder(&context.home, &job.name, &report.run_id);
    let mut reads = Vec::new();
    for source in &job.sources {
        reads.push(unless_cancelled(options, crawl_source(job, source, options, context, &quarantine, report)).await?);
    }
    if job.sources.iter().any(|s| s.bad_records == BadRecordPolicy::Quarantine) {
        report.quarantine = Some(quarantine.display().to_string());
    }
    if reads.iter().any(|r| r.incremental()) && reads.iter().filter(|r| r.incremental()).all(SourceRead::nothing_new) {
        // An incremental run with nothing to process succeeds and publishes nothing.
        context.progress.step("no new objects: nothing to do");
        report_sources(report, &reads)?;
        return audit_unchanged(job, params, logical_date_of(report)?, context, report).await;
    }

    let outcome = transform_and_publish(job, options, context, params, report, commit, &reads).await;
    if outcome.is_err() && report.sources.is_empty() {
        // A failed run's report says what it read, as far as it got: its error may be about it.
        let _ = report_sources(report, &reads);
    }
    outcome
}

fn logical_date_of(report: &RunReport) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(&report.logical_date, "%Y-%m-%d")
        .map_err(|e| Error::runtime(format!("logical date {}: {e}", report.logical_date)))
}

/// Steps 2 to 5 of a run: the steps, the targets staged, the audit. False for a dry run,
/// which ends there.
async fn stage_and_audit(
    job: &Job,
    options: &RunOptions,
    context: &RunContext,
    params: &Params,
    report: &mut RunReport,
    commit: &mut Commit,
    reads: &[SourceRead],
) -> Result<bool> {
    // 2. The steps, in order, in one session.
    let ctx = run_session(job, options, context, reads, &report.run_id).await?;
    let estimator =
        Estimator { footers: Arc::new(FooterCache::open(&context.home)?), price_per_tb: options.price_per_tb };
    // A step's `CREATE TABLE … AS SELECT` reads the sources as a target's query does: Athena
    // would bill it too.
    let mut step_queries = Vec::new();
    for step in &job.steps {
        context.progress.step(format!("running {}", step.display));
        for statement in &script::statements(&step.display, &step.sql)? {
            let plan = script::plan_statement(&ctx, &step.display, statement, params).await?;
            // A step's query is no target's and bills nothing here; a CTAS's does.
            if matches!(plan, LogicalPlan::Ddl(_))
                && let Some(billed) = crate::cost::billed_query(&plan)
            {
                let located = |e: Error| e.context(format!("{}:{}", step.display, statement.line));
                step_queries.push(estimator.estimate(&ctx.state(), billed).await.map_err(located)?);
            }
            script::run_planned(&ctx, &step.display, statement, plan).await?;
        }
    }

    // 3. Each target's query, planned, with what it would bill on Athena over the sources;
    //    then every check, planned against the outputs' schemas: a check that cannot run is a
    //    configuration error before any target's rows are computed.
    let logical_date = logical_date_of(report)?;
    let (frames, own) = plan_targets(job, &ctx, params, &estimator, step_queries).await?;
    plan_checks(job, &ctx, params, logical_date, &frames).await?;
    let mut would_write = Vec::new();
    if options.dry_run {
        for (target, df) in job.targets.iter().zip(&frames) {
            let (schema, _) = crate::sink::target_schema(df, target, None)?;
            let keys: Vec<String> = schema.key_names().map(str::to_string).collect();
            let clustering =
                crate::sink::clustering::for_query(&target.layout, df.logical_plan(), &target.checks, &keys);
            crate::sink::check_layout_columns(target, df.schema().as_arrow(), &clustering)?;
            would_write.push(TargetReport {
                sort_by: clustering.sort_by,
                sort_reason: clustering.reason,
                ..TargetReport::not_written(target)
            });
        }
    } else {
        // 4. Each target to staging.
        stage_targets(job, frames, context, commit, report).await?;
    }
    report.athena =
        AthenaReport::new(Estimate { bytes_scanned: own.bytes_scanned, billed_bytes: own.billed_bytes, usd: own.usd });
    report_sources(report, reads)?;
    if options.dry_run {
        // What the run would write, and in what order: the sort it would choose is the dry
        // run's to show.
        report.targets = would_write;
        return Ok(false);
    }

    // 5. The audit: every check on what is staged, before anything is published.
    audit(job, &ctx, params, logical_date, context, commit, report).await?;
    Ok(true)
}

/// Steps 2 to 7 of a run, over what it crawled.
async fn transform_and_publish(
    job: &Job,
    options: &RunOptions,
    context: &RunContext,
    params: &Params,
    report: &mut RunReport,
    commit: &mut Commit,
    reads: &[SourceRead],
) -> Result<()> {
    // A run cancelled (its attempt out of time) stops before it publishes anything.
    if !unless_cancelled(options, stage_and_audit(job, options, context, params, report, commit, reads)).await? {
        return Ok(());
    }

    // 6. Publish sources and targets together.
    context.progress.step("publishing");
    let sources: Vec<_> = reads.iter().map(|r| r.plan.table_change.clone()).collect();
    let first_target = sources.len();
    // Should the run end before it records what it published, its next run settles it.
    report_staged(report, commit, options.price_per_tb);
    let bookmarks: Vec<(&str, &[(String, String)])> =
        reads.iter().filter_map(|r| r.processed.as_deref().map(|objects| (r.table.as_str(), objects))).collect();
    context.history.stage_publication(report, &bookmarks)?;
    let published = match commit.publish(context.catalog.as_ref(), sources).await {
        Ok(published) => published,
        // A Glue publication cut short after its journal was written is finished by a later
        // reader: the next run settles it from the catalog.
        Err(e) if e.kind() != ErrorKind::Conflict => return Err(e),
        Err(e) => {
            // Nothing published: the report names no target as written.
            report.targets.clear();
            report.athena.targets.clear();
            context.history.not_published(&report.run_id)?;
            return Err(e);
        }
    };
    let versions: Vec<Option<u64>> = published.data_versions.iter().skip(first_target).copied().collect();
    for warning in published.warnings.clone() {
        warn(context, report, warning);
    }
    report_published(report, commit, &versions);
    // Published: the history says so, and incremental sources remember what the run read.
    context.history.published(report)?;

    // 7. What the publication replaced leaves readers' folders: kept for rollback while the
    //    tables' retention keeps its version, deleted beyond.
    context.progress.step("cleaning up");
    for warning in commit.clean_up(context.catalog.as_ref(), context.history.as_ref()).await {
        warn(context, report, warning);
    }
    Ok(())
}

/// Each target's query, planned, and what the job's queries would bill on Athena.
async fn plan_targets(
    job: &Job,
    ctx: &SessionContext,
    params: &Params,
    estimator: &Estimator,
    mut queries: Vec<QueryEstimate>,
) -> Result<(Vec<DataFrame>, QueryEstimate)> {
    let mut frames = Vec::new();
    for target in &job.targets {
        let df = target_frame(ctx, target, params).await?;
        // Optimizing folds constants: a cast that cannot succeed fails here first.
        let planned = estimator.estimate(&ctx.state(), df.logical_plan()).await;
        queries.push(planned.map_err(|e| e.context(format!("target {}", target.table)))?);
        frames.push(df);
    }
    Ok((frames, QueryEstimate::total(queries, estimator.price_per_tb)))
}

/// Writes each target's rows to staging, where no reader looks.
async fn stage_targets(
    job: &Job,
    frames: Vec<DataFrame>,
    context: &RunContext,
    commit: &mut Commit,
    report: &mut RunReport,
) -> Result<()> {
    for (target, df) in job.targets.iter().zip(frames) {
        context.progress.step(format!("writing {}", target.table));
        let (staged, warnings) = commit.stage(context.catalog.as_ref(), df, target, context.history.as_ref()).await?;
        let line = format!("wrote {}: {} rows, {}", target.table, staged.rows(), human_bytes(staged.bytes()));
        for warning in warnings {
            warn(context, report, warning);
        }
        context.progress.step(line);
    }
    Ok(())
}

/// Each staged target, and what a full scan of it would bill (before the publication: what it
/// made of them, its versions and what it replaced, is [`report_published`]'s).
fn report_staged(report: &mut RunReport, commit: &Commit, price_per_tb: f64) {
    for (target, staged) in commit.staged() {
        // A merge writes its rows in the order Delta's MERGE gives them, whatever was staged.
        let (sort_by, sort_reason) = match &target.merge {
            Some(_) if !staged.clustering.sort_by.is_empty() => (
                Vec::new(),
                format!(
                    "a merge writes rows in the order Delta's MERGE gives them; etl compact sorts them by {}",
                    staged.clustering.sort_by.join(", ")
                ),
            ),
            _ => (staged.clustering.sort_by.clone(), staged.clustering.reason.clone()),
        };
        report.targets.push(TargetReport {
            table: target.table.to_string(),
            location: target.location.url(),
            files: staged.files.len() as u64,
            rows: staged.rows(),
            bytes: staged.bytes(),
            partitions: staged.partition_count() as u64,
            replaced: Vec::new(),
            version: None,
            sort_by,
            sort_reason,
        });
        let scan = full_scan(staged.bytes(), price_per_tb);
        report.athena.targets.push(AthenaScan {
            table: target.table.to_string(),
            bytes_scanned: scan.bytes_scanned,
            billed_bytes: scan.billed_bytes,
            usd: scan.usd,
        });
    }
    report.athena.full_scan_of_outputs =
        Estimate::queries(report.athena.targets.iter().map(|t| t.bytes_scanned), price_per_tb);
}

/// What the publication made of each staged target: the version it is now, and the earlier
/// runs' rows it replaced.
fn report_published(report: &mut RunReport, commit: &Commit, versions: &[Option<u64>]) {
    for ((target, (_, replaced)), version) in report.targets.iter_mut().zip(commit.replaced()).zip(versions) {
        target.replaced = ReplacedRows::by_run(replaced);
        target.version = *version;
    }
}

/// A source as the run reads it.
struct SourceRead {
    table: String,
    plan: CrawlPlan,
    provider: Arc<dyn TableProvider>,
    rejects: Arc<Rejects>,
    stats: Arc<ReadStats>,
    /// The objects an incremental source reads this run (key, version), for its bookmark.
    processed: Option<Vec<(String, String)>>,
}

impl SourceRead {
    fn incremental(&self) -> bool {
        self.processed.is_some()
    }

    fn nothing_new(&self) -> bool {
        self.processed.as_ref().is_some_and(Vec::is_empty)
    }
}

/// Settles the job's earlier runs that ended between staging their publication and recording
/// it (see [`settle_publications`]).
async fn settle_interrupted_runs(job: &Job, context: &RunContext, run_id: &str) -> Result<()> {
    let ended: Vec<String> =
        context.history.pending_publications(Some(&job.name))?.into_iter().filter(|run| run != run_id).collect();
    settle_publications(context.history.as_ref(), context.catalog.as_ref(), &ended, true).await
}

/// Brings the bookmarks of the runs that wrote `table` in line with its current version (see
/// [`versions::lineage`]): the objects of runs a rollback undid are read again, and those of
/// runs a later rollback brought back are not read twice. Done by the rollback, and again by
/// every incremental run before it reads, which finishes the work of a rollback killed after
/// its publication. A run that also wrote other tables keeps its bookmarks, which hold for
/// those too: such runs are returned, with the other tables.
pub async fn align_bookmarks(
    history: &History,
    catalog: &dyn Catalog,
    table: &crate::catalog::TableName,
) -> Result<Vec<(RunReport, Vec<String>)>> {
    if catalog.table(table).await?.is_none() {
        return Ok(Vec::new());
    }
    // A run killed after it published holds its bookmarks pending until it is settled: settled
    // first, they are set aside with the rest of its bookmarks, not lost.
    let pending = history.pending_publications(None)?;
    settle_publications(history, catalog, &pending, false).await?;
    let versions = catalog.data_versions(table).await?;
    let lineage = crate::catalog::versions::lineage(&versions);
    let mut undone = Vec::new();
    let mut kept_for_others = Vec::new();
    let written = versions.iter().filter(|v| v.rollback_of.is_none()).filter_map(|v| v.run_id.as_ref());
    for run in written.filter(|run| !lineage.contains(*run)) {
        let Some(report) = history.get(run)? else { continue };
        let mut others = Vec::new();
        for other in report.targets.iter().map(|t| t.table.clone()).filter(|t| *t != table.to_string()) {
            if !undone_in(catalog, &other, run).await? {
                others.push(other);
            }
        }
        match others.is_empty() {
            true => undone.push(run.clone()),
            false => kept_for_others.push((report, others)),
        }
    }
    let set_aside = history.runs_with_undone_bookmarks()?;
    let restored: Vec<String> = lineage.into_iter().filter(|run| set_aside.contains(run)).collect();
    history.align_bookmarks(&undone, &restored)?;
    Ok(kept_for_others)
}

/// Whether `table`'s current version leaves out what `run` wrote to it (a rollback undid it,
/// or the table is gone).
async fn undone_in(catalog: &dyn Catalog, table: &str, run: &str) -> Result<bool> {
    let Ok(table) = table.parse::<crate::catalog::TableName>() else { return Ok(true) };
    if catalog.table(&table).await?.is_none() {
        return Ok(true);
    }
    let versions = catalog.data_versions(&table).await?;
    Ok(!crate::catalog::versions::lineage(&versions).contains(run))
}

/// Settles `runs` (ended between staging their publication and recording it), those of them
/// not still running: published if `catalog` holds a version of theirs of a target they
/// staged (their bookmarks advance, their history says they succeeded); not published if not,
/// when `catalog` is the one they published to (`is_theirs`; another may simply not know the
/// tables). Without this, the next run would read their objects again and append their rows
/// twice, and the history would deny what readers see.
pub async fn settle_publications(
    history: &History,
    catalog: &dyn Catalog,
    runs: &[String],
    is_theirs: bool,
) -> Result<()> {
    for run in runs.iter().filter(|run| !history.is_live(run)) {
        let Some(staged) = history.get(run)? else { continue };
        let mut versions = std::collections::BTreeMap::new();
        for target in &staged.targets {
            let Ok(table) = target.table.parse::<crate::catalog::TableName>() else { continue };
            if catalog.table(&table).await?.is_none() {
                continue;
            }
            let made = catalog.data_versions(&table).await?;
            if let Some(version) = made.iter().filter(|v| v.run_id.as_ref() == Some(run)).map(|v| v.version).max() {
                versions.insert(target.table.clone(), version);
            }
        }
        if is_theirs || !versions.is_empty() {
            history.settle_publication(run, &versions)?;
        }
    }
    Ok(())
}

/// Crawls a source (all its objects, or for an incremental source only those no successful
/// run processed) and opens it for the run's queries, its bad records kept in `quarantine`.
async fn crawl_source(
    job: &Job,
    source: &SourceSpec,
    options: &RunOptions,
    context: &RunContext,
    quarantine: &Path,
    report: &mut RunReport,
) -> Result<SourceRead> {
    context.progress.step(format!("crawling {} at {}", source.table, source.location));
    let (plan, mut processed) =
        plan_crawl(job, source, context).await.map_err(|e| e.context(format!("source {}", source.table)))?;
    crate::kill_points::reached("crawl");
    for empty in &plan.inferred.listing.empty {
        warn(context, report, format!("skipping empty object {empty}"));
    }
    for warning in &plan.inferred.warnings {
        warn(context, report, warning.clone());
    }
    if plan.change == crawl::CrawlChange::Logged {
        let change = crawl::describe_with_files(&plan.diff, &plan.definition, &plan.definition, &plan.inferred);
        warn(
            context,
            report,
            format!(
                "the schema of {} changed ({change}); on_schema_change is log, so the run reads it with version {}",
                source.table, plan.version
            ),
        );
    }
    let table_name = source.table.to_string();
    let replay = match &options.replay_quarantine {
        Some(run) => quarantined::replay_folder(&context.home, &job.name, run, &table_name)
            .map(|folder| Location::parse(&folder.to_string_lossy()))
            .transpose()?,
        None => None,
    };
    let roots = std::iter::once(&source.location).chain(&replay).map(Location::to_string).collect();
    let rejects = Arc::new(Rejects::new(source.bad_records, Some(Quarantine::of(quarantine, &table_name, roots))));
    let stats = Arc::new(ReadStats::default());
    // A schema this run inferred from the files it reads: a JSON key it lacks is one their
    // samples missed, a bad record; one kept as it was (`on_schema_change = "log"`) ignores it.
    let inferred_here = plan.change != crawl::CrawlChange::Logged;
    let refusing = |table: FileTable| if inferred_here { table.refusing_unknown_keys() } else { table };
    let table = FileTable::from_listing(&plan.definition, &plan.inferred.listing, rejects.clone(), stats.clone())?;
    let mut provider: Arc<dyn TableProvider> = Arc::new(refusing(table));
    if let Some(replay) = replay {
        // The fixed records are read under the source's schema; they change neither it nor
        // the catalog's view of the source.
        let mut replayed =
            files::list(&replay).await.map_err(|e| e.context(format!("replaying into {}", source.table)))?;
        // An incremental source reads a fixed record once, as it reads an object once: a
        // second replay of the same run would append it again.
        if let Some(processed) = &mut processed {
            let done = context.history.bookmarks(&job.name, &table_name)?;
            processed.extend(keep_unread(&mut replayed, &done));
        }
        context.progress.step(format!("replaying {} quarantined files into {}", replayed.files.len(), source.table));
        let fixed = refusing(FileTable::from_listing(&plan.definition, &replayed, rejects.clone(), stats.clone())?);
        provider = Arc::new(UnionTable::new(vec![provider, Arc::new(fixed)]));
    }
    let listing = &plan.inferred.listing;
    context.progress.step(format!(
        "crawled {}: {} files, {}",
        source.table,
        listing.files.len(),
        human_bytes(listing.bytes())
    ));
    Ok(SourceRead { table: table_name, plan, provider, rejects, stats, processed })
}

/// The crawl of a source: of all its objects, or for an incremental source of those no
/// successful run processed (a changed object counts as new), returned with it.
async fn plan_crawl(
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
    let processed = keep_unread(&mut listing, &done);
    // Read again, as Glue job bookmarks read a modified object; what the earlier content gave
    // stays wherever a target kept it (an append), which only the user can know is right.
    let rewritten: Vec<&str> =
        processed.iter().filter(|(url, _)| done.contains_key(url)).map(|(url, _)| url.as_str()).collect();
    let warning = (!rewritten.is_empty()).then(|| {
        format!(
            "{} of the objects of {} changed since a run read them ({}{}): they are read again, and rows an earlier \
             run wrote from them stay in targets that keep rows (append, or partitions this run does not write)",
            rewritten.len(),
            source.table,
            rewritten[0],
            if rewritten.len() > 1 { ", …" } else { "" }
        )
    });
    let mut plan =
        crawl::plan_incremental(catalog, &source.table, listing, &source.infer, source.on_schema_change).await?;
    plan.inferred.warnings.extend(warning);
    if done.is_empty() {
        plan.inferred.warnings.extend(read_elsewhere(job, source, context).await?);
    }
    Ok((plan, Some(processed)))
}

/// Bookmarks live in `ETL_HOME`: a run from another one (a teammate's, a CI runner's) against
/// a shared catalog, or one after `etl bookmarks reset`, reads every object again, and an
/// append target gets their rows a second time. Said when a target already holds what runs of
/// the job published.
async fn read_elsewhere(job: &Job, source: &SourceSpec, context: &RunContext) -> Result<Option<String>> {
    for target in &job.targets {
        let Some(table) = context.catalog.table(&target.table).await? else { continue };
        if table.definition.parameters.get(crate::catalog::definition::WRITTEN_BY) == Some(&job.name) {
            return Ok(Some(format!(
                "{} is incremental, but {} records no object that job {} read (bookmarks are kept in ETL_HOME), \
                 while {} holds what its runs published: every object is read again (after `etl bookmarks reset`, \
                 as meant; from another ETL_HOME, a target that appends gets their rows twice)",
                source.table,
                context.home.display(),
                job.name,
                target.table
            )));
        }
    }
    Ok(None)
}

/// Keeps the listed objects no successful run read (`done`: their URLs and versions; a
/// changed object counts as unread), and returns them as the run's bookmark will hold them.
fn keep_unread(
    listing: &mut files::Listing,
    done: &std::collections::HashMap<String, String>,
) -> Vec<(String, String)> {
    let location = listing.location.clone();
    listing.files.retain(|file| done.get(&location.url_of(&file.path)) != Some(&object_version(file)));
    listing.files.iter().map(|f| (location.url_of(&f.path), object_version(f))).collect()
}

/// The run's session: the catalog's tables, the sources as this run crawled them, and
/// writes to each bucket encrypted as its targets ask.
async fn run_session(
    job: &Job,
    options: &RunOptions,
    context: &RunContext,
    reads: &[SourceRead],
    run_id: &str,
) -> Result<SessionContext> {
    let mut engine = options.engine.clone();
    if engine.engine.is_none() {
        engine.engine = job.engine.clone();
    }
    // What a cluster's raw scans leave goes with the run's staging, removed with it.
    engine.scratch = job.targets.first().map(|t| crate::layout::staging(&t.location, run_id).join("_sources"));
    for target in &job.targets {
        if let Some(bucket) = target.location.bucket() {
            engine.encryption.insert(bucket.to_string(), target.encryption.clone());
        }
    }
    let sources: HashMap<_, _> =
        job.sources.iter().zip(reads).map(|(s, r)| (s.table.clone(), r.provider.clone())).collect();
    engine.writes_targets = true;
    session(context.catalog.clone(), sources, &engine).await
}

/// What tells one version of an object from another: its ETag, or its size and modification
/// time where the store gives no ETag (as Glue bookmarks track objects).
fn object_version(file: &SourceFile) -> String {
    file.e_tag.clone().unwrap_or_else(|| format!("{}@{}", file.size, file.last_modified.timestamp_millis()))
}

/// What the run read from each source.
fn report_sources(report: &mut RunReport, reads: &[SourceRead]) -> Result<()> {
    for read in reads {
        read.rejects.finish()?;
        report.rejected_rows += read.rejects.count();
        let listing = &read.plan.inferred.listing;
        report.sources.push(SourceReport {
            table: read.table.clone(),
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
    let plan = script::plan_statement(ctx, &what, &statement, params).await?;
    // An INSERT's plan has rows too (its count), which would be published as the table.
    if matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::DescribeTable(_)
    ) {
        return Err(Error::config(format!(
            "{what}: a target's query is one SELECT (or VALUES, or WITH … SELECT), whose rows the table holds; \
             statements that create, change or explain go in a step"
        )));
    }
    let frame = script::run_planned(ctx, &what, &statement, plan).await?;
    // Analysed, the plan's schema has the types its rows will have: before type coercion, a
    // CASE or UNION ALL of int and bigint says int (its first branch's), and the table would
    // declare int over files of bigint that no reader takes.
    let (state, plan) = frame.into_parts();
    let plan = state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})
        .map_err(|e| Error::query(format!("{what}: {e}")))?;
    Ok(datafusion::dataframe::DataFrame::new(state, plan))
}
