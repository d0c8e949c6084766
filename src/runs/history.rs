//! The state of runs under `$ETL_HOME`, in SQLite (durable, shared safely by concurrent runs
//! and schedulers): the run history, one row per run with its report; the pipeline runs, one
//! row each with its report; the objects whose events started pipeline runs; the bookmarks of incremental sources; the leases that keep one
//! job and logical date from running twice at once; and how far each schedule has fired.
//!
//! A run records itself as `running` with its process id when it starts and its report when it
//! ends. A run whose process is gone while still `running` (killed, machine recycled) is shown
//! as `failed`, so neither users nor the staging clean-up wait on it forever. A pipeline run is
//! held the same way by the process that runs it (it is claimed, with an owner, so that two
//! processes never run one pipeline run at once); one whose process is gone is shown as
//! failed, its unfinished jobs settled from their own runs, until a resume takes it over.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::RunStatus;
use super::events::ObjectRef;
use super::pipeline::report::PipelineReport;
use super::report::RunReport;
use crate::error::{Result, ResultExt};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, started_at);
CREATE INDEX IF NOT EXISTS runs_by_pipeline_run ON runs (json_extract(report, '$.pipeline_run_id'));
CREATE TABLE IF NOT EXISTS pipeline_runs (
    pipeline_run_id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    -- The scheduler's fire time the run is for: one run per fire, resumed after a crash.
    fire_time TEXT,
    -- Who runs it now (a process, a scheduler), and where.
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pipeline_runs_by_pipeline ON pipeline_runs (pipeline, started_at);
CREATE UNIQUE INDEX IF NOT EXISTS pipeline_runs_by_fire ON pipeline_runs (pipeline, fire_time)
    WHERE fire_time IS NOT NULL;
CREATE TABLE IF NOT EXISTS bookmarks (
    job TEXT NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    run_id TEXT NOT NULL,
    -- Which advance came last: run ids of one second do not sort by time.
    advance INTEGER NOT NULL,
    PRIMARY KEY (job, source, key)
);
-- The bookmarks of runs a rollback undid: their objects are read again, unless a later
-- rollback brings their rows back, and these with them.
CREATE TABLE IF NOT EXISTS undone_bookmarks (
    job TEXT NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    run_id TEXT NOT NULL,
    advance INTEGER NOT NULL,
    PRIMARY KEY (run_id, source, key)
);
-- What a run is about to publish from its incremental sources: bookmarks once the catalog
-- shows that it published (the run may be killed between its publication and its advance).
CREATE TABLE IF NOT EXISTS pending_bookmarks (
    job TEXT NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (run_id, source, key)
);
-- A run about to publish, until it has recorded what it published: a run that ends in
-- between (killed, or a publication cut short that a later reader of the catalog finishes)
-- is settled from the catalog by the job's next run, or by `etl runs`.
CREATE TABLE IF NOT EXISTS pending_publications (
    run_id TEXT PRIMARY KEY,
    job TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    job TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (job, logical_date)
);
CREATE TABLE IF NOT EXISTS schedules (
    job TEXT PRIMARY KEY,
    last_fire TEXT NOT NULL
);
-- Which pipeline run an object's event started for each job it triggers: an object (bucket,
-- key, version id or ETag) starts a job once; a delivery of it again finds its run here.
CREATE TABLE IF NOT EXISTS event_objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    job TEXT NOT NULL,
    pipeline_run_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (bucket, key, version, job)
);
CREATE TABLE IF NOT EXISTS fires (
    job TEXT NOT NULL,
    fire_time TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, fire_time)
);
";

const KILLED: &str = "the run's process ended before the run finished (killed or crashed); nothing was published";
const KILLED_PUBLISHING: &str = "the run's process ended (killed or crashed) while the run published; the job's \
                                 next run (or etl runs) settles from the catalog whether it did";
const PUBLISHED_THEN_KILLED: &str = "the run's process ended (killed or crashed, or its publication was cut short and \
                                     finished by a later reader) after the run published, before it recorded so and \
                                     cleaned up: what it replaced is removed by a later run";
const PIPELINE_KILLED: &str = "the pipeline run's process ended (killed or crashed) before this job finished";

#[derive(Debug)]
pub struct History {
    connection: Mutex<Connection>,
}

impl History {
    pub fn open(home: &Path) -> Result<Self> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = home.join("runs.sqlite");
        let connection = crate::sqlite::open(&path, SCHEMA, true)?;
        Ok(History { connection: Mutex::new(connection) })
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        work(&connection)
    }

    /// Records a run (new or finished); the report's status is the run's.
    pub fn record(&self, report: &RunReport) -> Result<()> {
        self.with(|c| record_in(c, report))
    }

    /// Runs, newest first, optionally of one job and one status.
    pub fn list(&self, job: Option<&str>, status: Option<RunStatus>) -> Result<Vec<RunReport>> {
        self.mark_dead_runs()?;
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT report FROM runs WHERE (?1 IS NULL OR job = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY started_at DESC, run_id DESC",
            )?;
            let reports = statement
                .query_map(params![job, status.map(RunStatus::as_str)], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(reports.iter().filter_map(|text| serde_json::from_str(text).ok()).collect())
        })
    }

    /// Whether a run of `job` for `logical_date` succeeded after `since`.
    pub fn succeeded_since(&self, job: &str, logical_date: &str, since: DateTime<Utc>) -> Result<bool> {
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.with(|c| {
            Ok(c
                .query_row(
                    "SELECT 1 FROM runs WHERE job = ?1 AND logical_date = ?2 AND status = 'succeeded' AND started_at >= ?3 LIMIT 1",
                    params![job, logical_date, since],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
    }

    /// The objects of an incremental source that successful runs processed: key -> version.
    pub fn bookmarks(&self, job: &str, source: &str) -> Result<std::collections::HashMap<String, String>> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT key, version FROM bookmarks WHERE job = ?1 AND source = ?2")?;
            let rows = statement.query_map(params![job, source], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Records that a run is about to publish (`report`, its targets as staged) and the objects
    /// of each incremental source it read (`bookmarks`: source, objects): those become its
    /// bookmarks when it has published ([`History::published`], or
    /// [`History::settle_publication`] after a run that ended in between).
    pub fn stage_publication(&self, report: &RunReport, bookmarks: &[(&str, &[(String, String)])]) -> Result<()> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let tx = connection.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO pending_publications (run_id, job) VALUES (?1, ?2)",
            params![report.run_id, report.job],
        )?;
        for (source, objects) in bookmarks {
            for (key, version) in *objects {
                tx.execute(
                    "INSERT OR REPLACE INTO pending_bookmarks (job, source, key, version, run_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![report.job, source, key, version, report.run_id],
                )?;
            }
        }
        record_in(&tx, report)?;
        tx.commit()?;
        Ok(())
    }

    /// Records that a run published (`report`, with the versions it made), advancing the
    /// bookmarks it staged, in one transaction.
    pub fn published(&self, report: &RunReport) -> Result<()> {
        self.end_publication(&report.run_id, true, Some(report))
    }

    /// Records that a run which staged a publication did not publish.
    pub fn not_published(&self, run_id: &str) -> Result<()> {
        self.end_publication(run_id, false, None)
    }

    fn end_publication(&self, run_id: &str, published: bool, report: Option<&RunReport>) -> Result<()> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        // It reads the staged bookmarks before it writes: taking the write lock first, it waits
        // for another run's writes rather than failing when one commits between (SQLite
        // refuses at once to turn a deferred reader into a writer after another write).
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(report) = report {
            record_in(&tx, report)?;
        }
        if published {
            let mut staged: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
            {
                let mut statement =
                    tx.prepare("SELECT job, source, key, version FROM pending_bookmarks WHERE run_id = ?1")?;
                let mut rows = statement.query([run_id])?;
                while let Some(row) = rows.next()? {
                    staged.entry((row.get(0)?, row.get(1)?)).or_default().push((row.get(2)?, row.get(3)?));
                }
            }
            for ((job, source), objects) in staged {
                advance(&tx, &job, &source, &objects, run_id)?;
            }
        }
        tx.execute("DELETE FROM pending_bookmarks WHERE run_id = ?1", [run_id])?;
        tx.execute("DELETE FROM pending_publications WHERE run_id = ?1", [run_id])?;
        tx.commit()?;
        Ok(())
    }

    /// The runs (of `job`, or of every job) that staged a publication and never recorded its
    /// outcome.
    pub fn pending_publications(&self, job: Option<&str>) -> Result<Vec<String>> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT run_id FROM pending_publications WHERE ?1 IS NULL OR job = ?1 ORDER BY run_id")?;
            let rows = statement.query_map([job], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Settles a run that ended between staging its publication and recording it, from what
    /// the catalog holds: `versions`, per target table, the data version the run made (empty:
    /// it did not publish). A run that published succeeded, as readers see (its bookmarks
    /// advance, its report gets the versions); one that did not failed, and says so.
    pub fn settle_publication(&self, run_id: &str, versions: &BTreeMap<String, u64>) -> Result<()> {
        let published = !versions.is_empty();
        self.end_publication(run_id, published, None)?;
        let Some(mut report) = self.get(run_id)? else { return Ok(()) };
        if published {
            for target in &mut report.targets {
                target.version = versions.get(&target.table).copied();
            }
            if report.status == RunStatus::Failed {
                published_then_killed(&mut report);
            }
            return self.record(&report);
        }
        if report.error.as_deref() == Some(KILLED_PUBLISHING) {
            report.error = Some(KILLED.to_string());
            // What it had staged was never published: a report lists what readers see.
            report.targets.clear();
            return self.record(&report);
        }
        Ok(())
    }

    /// Per source of a job: how many objects are bookmarked and by which run last.
    pub fn bookmark_summary(&self, job: &str) -> Result<Vec<(String, u64, String)>> {
        self.with(|c| {
            let mut statement = c.prepare(
                // SQLite takes the bare `run_id` from the row that has the max(advance).
                "SELECT source, count(*), run_id, max(advance) FROM bookmarks WHERE job = ?1 GROUP BY source ORDER BY source",
            )?;
            let rows = statement.query_map([job], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Forgets what a job's incremental sources processed (all, or one source's); returns how
    /// many objects were forgotten.
    pub fn reset_bookmarks(&self, job: &str, source: Option<&str>) -> Result<u64> {
        self.with(|c| {
            c.execute(
                "DELETE FROM pending_bookmarks WHERE job = ?1 AND (?2 IS NULL OR source = ?2)",
                params![job, source],
            )?;
            c.execute(
                "DELETE FROM undone_bookmarks WHERE job = ?1 AND (?2 IS NULL OR source = ?2)",
                params![job, source],
            )?;
            Ok(c.execute("DELETE FROM bookmarks WHERE job = ?1 AND (?2 IS NULL OR source = ?2)", params![job, source])?
                as u64)
        })
    }

    /// Sets aside the bookmarks of `undone` runs (their publications were rolled back: the
    /// next run of the job reads their objects again), and takes back those of `restored`
    /// runs set aside before (a rollback brought their rows back). Where a later run
    /// bookmarked the same object, the later advance stands.
    pub fn align_bookmarks(&self, undone: &[String], restored: &[String]) -> Result<()> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let tx = connection.transaction()?;
        for run in undone {
            tx.execute(
                "INSERT OR REPLACE INTO undone_bookmarks (job, source, key, version, run_id, advance)
                 SELECT job, source, key, version, run_id, advance FROM bookmarks WHERE run_id = ?1",
                [run],
            )?;
            tx.execute("DELETE FROM bookmarks WHERE run_id = ?1", [run])?;
            tx.execute("DELETE FROM pending_bookmarks WHERE run_id = ?1", [run])?;
        }
        for run in restored {
            tx.execute(
                "INSERT INTO bookmarks (job, source, key, version, run_id, advance)
                 SELECT job, source, key, version, run_id, advance FROM undone_bookmarks WHERE run_id = ?1
                 ON CONFLICT (job, source, key) DO UPDATE SET version = excluded.version, run_id = excluded.run_id,
                     advance = excluded.advance WHERE excluded.advance > bookmarks.advance",
                [run],
            )?;
            tx.execute("DELETE FROM undone_bookmarks WHERE run_id = ?1", [run])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The runs whose bookmarks are set aside (see [`History::align_bookmarks`]).
    pub fn runs_with_undone_bookmarks(&self) -> Result<std::collections::HashSet<String>> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT DISTINCT run_id FROM undone_bookmarks")?;
            let runs = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
            Ok(runs)
        })
    }

    /// Takes the lease on a job and logical date until `expires_at`, if no live holder has it.
    pub fn try_lease(
        &self,
        job: &str,
        logical_date: &str,
        owner: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held: Option<(String, String)> = tx
            .query_row(
                "SELECT owner, expires_at FROM leases WHERE job = ?1 AND logical_date = ?2",
                params![job, logical_date],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((holder, until)) = held {
            let expired = DateTime::parse_from_rfc3339(&until).map(|t| t.with_timezone(&Utc) <= now).unwrap_or(true);
            // A run that holds a lease and was killed gives it up at once, not when it expires.
            let dead_run = run_liveness(&tx, &holder)? == Some(false);
            if holder != owner && !expired && !dead_run {
                return Ok(false);
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO leases (job, logical_date, owner, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![job, logical_date, owner, expires_at.to_rfc3339()],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Gives a lease back (only its holder can).
    pub fn release_lease(&self, job: &str, logical_date: &str, owner: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM leases WHERE job = ?1 AND logical_date = ?2 AND owner = ?3",
                params![job, logical_date, owner],
            )?;
            Ok(())
        })
    }

    /// The last fire time a scheduler handled for a job.
    pub fn last_fire(&self, job: &str) -> Result<Option<DateTime<Utc>>> {
        let text: Option<String> = self.with(|c| {
            Ok(c.query_row("SELECT last_fire FROM schedules WHERE job = ?1", [job], |r| r.get(0)).optional()?)
        })?;
        Ok(text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.with_timezone(&Utc)))
    }

    /// Records that a job's schedule fired at `fire` (never moves back).
    pub fn set_last_fire(&self, job: &str, fire: DateTime<Utc>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO schedules (job, last_fire) VALUES (?1, ?2)
                 ON CONFLICT (job) DO UPDATE SET last_fire = max(last_fire, ?2)",
                params![job, stamp(fire)],
            )?;
            Ok(())
        })
    }

    /// Queues fire times of a job (those already queued stay as they are).
    pub fn queue_fires(&self, job: &str, fires: &[DateTime<Utc>]) -> Result<()> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let tx = connection.transaction()?;
        for fire in fires {
            tx.execute("INSERT OR IGNORE INTO fires (job, fire_time) VALUES (?1, ?2)", params![job, stamp(*fire)])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Fire times not yet done, oldest first, with the attempts made so far.
    pub fn pending_fires(&self) -> Result<Vec<(String, DateTime<Utc>, u32)>> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT job, fire_time, attempts FROM fires WHERE done = 0 ORDER BY fire_time, job")?;
            let rows = statement
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)? as u32)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(job, fire, attempts)| {
                    let fire = DateTime::parse_from_rfc3339(&fire).ok()?.with_timezone(&Utc);
                    Some((job, fire, attempts))
                })
                .collect())
        })
    }

    /// Counts an attempt at a fire time; returns the attempts made, this one included.
    pub fn start_attempt(&self, job: &str, fire: DateTime<Utc>) -> Result<u32> {
        self.with(|c| {
            c.execute(
                "UPDATE fires SET attempts = attempts + 1 WHERE job = ?1 AND fire_time = ?2",
                params![job, stamp(fire)],
            )?;
            Ok(c.query_row(
                "SELECT attempts FROM fires WHERE job = ?1 AND fire_time = ?2",
                params![job, stamp(fire)],
                |r| r.get::<_, i64>(0),
            )? as u32)
        })
    }

    /// A fire time is done: its run succeeded, or failed its last attempt.
    pub fn finish_fire(&self, job: &str, fire: DateTime<Utc>) -> Result<()> {
        self.with(|c| {
            c.execute("UPDATE fires SET done = 1 WHERE job = ?1 AND fire_time = ?2", params![job, stamp(fire)])?;
            Ok(())
        })
    }

    /// The jobs an event's object started, each with the pipeline run it started.
    pub fn event_object_runs(&self, object: &ObjectRef) -> Result<Vec<(String, String)>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT job, pipeline_run_id FROM event_objects WHERE bucket = ?1 AND key = ?2 AND version = ?3
                 ORDER BY job",
            )?;
            let rows = statement
                .query_map(params![object.bucket, object.key, object.version()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Records that an object starts `jobs` in a pipeline run, unless it started them already
    /// (another process handling the same event got there first); returns the jobs it takes.
    pub fn claim_event_object(
        &self,
        object: &ObjectRef,
        jobs: &[String],
        pipeline_run_id: &str,
    ) -> Result<Vec<String>> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut taken = Vec::new();
        for job in jobs {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO event_objects (bucket, key, version, job, pipeline_run_id, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![object.bucket, object.key, object.version(), job, pipeline_run_id, now],
            )?;
            if inserted == 1 {
                taken.push(job.clone());
            }
        }
        tx.commit()?;
        Ok(taken)
    }

    /// Whether a run may still be writing: recorded as running by a live process.
    pub fn is_live(&self, run_id: &str) -> bool {
        match self.with(|c| run_liveness(c, run_id)).unwrap_or(None) {
            Some(live) => live,
            // A run this history does not know may belong to another $ETL_HOME writing to the
            // same place: live while it could still be running, by the start time in its id.
            None => started_at(run_id)
                .is_none_or(|started| Utc::now() - started < chrono::Duration::hours(UNKNOWN_RUN_HOURS)),
        }
    }

    /// A run, by its id.
    pub fn get(&self, run_id: &str) -> Result<Option<RunReport>> {
        self.mark_dead_runs()?;
        let text: Option<String> = self.with(|c| {
            Ok(c.query_row("SELECT report FROM runs WHERE run_id = ?1", [run_id], |r| r.get(0)).optional()?)
        })?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The job runs of a pipeline run, oldest first.
    pub fn runs_of_pipeline_run(&self, pipeline_run_id: &str) -> Result<Vec<RunReport>> {
        self.mark_dead_runs()?;
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT report FROM runs WHERE json_extract(report, '$.pipeline_run_id') = ?1
                 ORDER BY started_at, rowid",
            )?;
            let reports = statement
                .query_map([pipeline_run_id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(reports.iter().filter_map(|text| serde_json::from_str(text).ok()).collect())
        })
    }

    /// Takes a pipeline run for `owner` (recording it when new), unless another owner's live
    /// process runs it; returns whether it was taken.
    pub fn claim_pipeline_run(&self, report: &PipelineReport, owner: &str) -> Result<bool> {
        let text = serde_json::to_string(report)?;
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held: Option<(String, String, u32, String)> = tx
            .query_row(
                "SELECT status, owner, pid, host FROM pipeline_runs WHERE pipeline_run_id = ?1",
                [&report.pipeline_run_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        if let Some((status, holder, pid, run_host)) = held
            && status == "running"
            && holder != owner
            && (run_host != host() || process_alive(pid))
        {
            return Ok(false);
        }
        upsert_pipeline_run(&tx, report, owner, &text)?;
        tx.commit()?;
        Ok(true)
    }

    /// Records a pipeline run its owner runs (new or updated).
    pub fn record_pipeline_run(&self, report: &PipelineReport, owner: &str) -> Result<()> {
        let text = serde_json::to_string(report)?;
        self.with(|c| upsert_pipeline_run(c, report, owner, &text))
    }

    /// A pipeline run, by its id.
    pub fn pipeline_run(&self, pipeline_run_id: &str) -> Result<Option<PipelineReport>> {
        self.mark_dead_pipeline_runs()?;
        let text: Option<String> = self.with(|c| {
            Ok(c.query_row("SELECT report FROM pipeline_runs WHERE pipeline_run_id = ?1", [pipeline_run_id], |r| {
                r.get(0)
            })
            .optional()?)
        })?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The pipeline run of a scheduler's fire time, if one started.
    pub fn pipeline_run_for_fire(&self, pipeline: &str, fire: DateTime<Utc>) -> Result<Option<PipelineReport>> {
        let id: Option<String> = self.with(|c| {
            Ok(c.query_row(
                "SELECT pipeline_run_id FROM pipeline_runs WHERE pipeline = ?1 AND fire_time = ?2",
                params![pipeline, stamp(fire)],
                |r| r.get(0),
            )
            .optional()?)
        })?;
        match id {
            Some(id) => self.pipeline_run(&id),
            None => Ok(None),
        }
    }

    /// Pipeline runs, newest first, optionally of one pipeline.
    pub fn pipeline_runs(&self, pipeline: Option<&str>) -> Result<Vec<PipelineReport>> {
        self.mark_dead_pipeline_runs()?;
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT report FROM pipeline_runs WHERE (?1 IS NULL OR pipeline = ?1)
                 ORDER BY started_at DESC, pipeline_run_id DESC",
            )?;
            let reports = statement
                .query_map(params![pipeline], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(reports.iter().filter_map(|text| serde_json::from_str(text).ok()).collect())
        })
    }

    /// Pipeline runs still `running` whose process is gone become failed, their unfinished
    /// jobs settled from the job runs they started.
    fn mark_dead_pipeline_runs(&self) -> Result<()> {
        let running: Vec<(String, String, u32, String)> = self.with(|c| {
            let mut statement =
                c.prepare("SELECT report, owner, pid, host FROM pipeline_runs WHERE status = 'running'")?;
            let rows = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        for (text, owner, pid, run_host) in running {
            if run_host != host() || process_alive(pid) {
                continue;
            }
            if let Ok(mut report) = serde_json::from_str::<PipelineReport>(&text) {
                let job_runs = self.runs_of_pipeline_run(&report.pipeline_run_id)?;
                report.settle_unfinished(&job_runs, PIPELINE_KILLED);
                report.status = RunStatus::Failed;
                self.record_pipeline_run(&report, &owner)?;
            }
        }
        Ok(())
    }

    fn mark_dead_runs(&self) -> Result<()> {
        let running: Vec<(String, u32, String)> = self.with(|c| {
            let mut statement = c.prepare("SELECT report, pid, host FROM runs WHERE status = 'running'")?;
            let rows = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        for (text, pid, run_host) in running {
            if run_host != host() || process_alive(pid) {
                continue;
            }
            if let Ok(mut report) = serde_json::from_str::<RunReport>(&text) {
                if report.targets.iter().any(|t| t.version.is_some()) {
                    // It published (and recorded so) before it ended: readers see its output.
                    published_then_killed(&mut report);
                } else {
                    let publishing = self.with(|c| {
                        let pending = "SELECT count(*) FROM pending_publications WHERE run_id = ?1";
                        Ok(c.query_row(pending, [&report.run_id], |r| r.get::<_, i64>(0))? > 0)
                    })?;
                    report.status = RunStatus::Failed;
                    report.error = Some(if publishing { KILLED_PUBLISHING } else { KILLED }.to_string());
                    // A publication in doubt keeps its staged targets, by which it is settled.
                    if !publishing {
                        report.targets.clear();
                    }
                }
                self.record(&report)?;
            }
        }
        Ok(())
    }
}

impl crate::sink::RunLiveness for History {
    fn is_live(&self, run_id: &str) -> bool {
        History::is_live(self, run_id)
    }

    fn ended_here(&self, run_id: &str) -> bool {
        self.with(|c| run_liveness(c, run_id)).unwrap_or(None) == Some(false)
    }
}

/// Records a run's report (its status and where it runs) on `connection`, in its transaction
/// if it is in one.
fn record_in(connection: &rusqlite::Connection, report: &RunReport) -> Result<()> {
    let text = serde_json::to_string(report)?;
    connection.execute(
        "INSERT INTO runs (run_id, job, logical_date, status, started_at, pid, host, report)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (run_id) DO UPDATE SET status = ?4, report = ?8",
        params![
            report.run_id,
            report.job,
            report.logical_date,
            report.status.as_str(),
            report.started_at,
            std::process::id(),
            host(),
            text
        ],
    )?;
    Ok(())
}

/// A run killed after it published: it succeeded, as readers see, and says how it ended.
fn published_then_killed(report: &mut RunReport) {
    report.status = RunStatus::Succeeded;
    report.error = None;
    report.warnings.push(PUBLISHED_THEN_KILLED.to_string());
}

/// Bookmarks `objects` of a job's source as processed by `run_id`, as one advance.
fn advance(
    tx: &rusqlite::Transaction,
    job: &str,
    source: &str,
    objects: &[(String, String)],
    run_id: &str,
) -> Result<()> {
    let advance: i64 = tx.query_row("SELECT coalesce(max(advance), 0) + 1 FROM bookmarks", [], |r| r.get(0))?;
    for (key, version) in objects {
        tx.execute(
            "INSERT INTO bookmarks (job, source, key, version, run_id, advance) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (job, source, key) DO UPDATE SET version = ?4, run_id = ?5, advance = ?6",
            params![job, source, key, version, run_id, advance],
        )?;
    }
    Ok(())
}

fn upsert_pipeline_run(c: &Connection, report: &PipelineReport, owner: &str, text: &str) -> Result<()> {
    c.execute(
        "INSERT INTO pipeline_runs (pipeline_run_id, pipeline, logical_date, status, started_at, fire_time, owner, pid, host, report)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (pipeline_run_id) DO UPDATE SET status = ?4, owner = ?7, pid = ?8, host = ?9, report = ?10",
        params![
            report.pipeline_run_id,
            report.pipeline,
            report.logical_date,
            report.status.as_str(),
            report.started_at,
            report.fire_time,
            owner,
            std::process::id(),
            host(),
            text
        ],
    )?;
    Ok(())
}

/// A fire time as the queue and pipeline runs keep it.
pub fn stamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How long a run that this history does not know may still be writing.
/// How long a lease lasts without a heartbeat.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(120);

const UNKNOWN_RUN_HOURS: i64 = 24;

/// Whether a run this history knows may still be running (recorded as running by a live
/// process, or by another host, which this one cannot see); None for a run it does not know.
fn run_liveness(c: &rusqlite::Connection, run_id: &str) -> Result<Option<bool>> {
    let row: Option<(String, u32, String)> = c
        .query_row("SELECT status, pid, host FROM runs WHERE run_id = ?1", [run_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    Ok(row.map(|(status, pid, run_host)| status == "running" && (run_host != host() || process_alive(pid))))
}

/// The start time a run id begins with (`20261130T020000Z-…`).
fn started_at(run_id: &str) -> Option<DateTime<Utc>> {
    let stamp = run_id.get(..16)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok().map(|t| t.and_utc())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}
