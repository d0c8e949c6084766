//! `etl table history DB.TABLE` and `etl rollback DB.TABLE --to VERSION`: a written table's
//! data versions, and making an earlier one current again.

use std::io::Write;

use chrono::SecondsFormat;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::catalog::versions;
use crate::catalog::{DataVersion, TableName};
use crate::checks::evaluate::Recorded;
use crate::config::home;
use crate::error::Result;
use crate::output::human_bytes;
use crate::runs::RunStatus;
use crate::runs::history::History;
use crate::runs::report::{RunReport, TargetReport};
use crate::runs::run::{align_bookmarks, new_run_id};
use crate::sink::rollback::roll_back;

#[derive(Debug, Args)]
pub struct TableArgs {
    #[command(subcommand)]
    pub command: TableCommand,
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Every publication of a table's data, oldest first: run, rows, bytes, files, checks.
    History { table: TableName },
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The table, DB.TABLE.
    pub table: TableName,
    /// The version whose data becomes current again (see `etl table history`).
    #[arg(long, value_name = "VERSION")]
    pub to: u64,
}

#[derive(Serialize)]
struct HistoryJson {
    table: String,
    versions: Vec<VersionJson>,
}

#[derive(Serialize)]
struct VersionJson {
    version: u64,
    run_id: Option<String>,
    created_at: String,
    rows: u64,
    bytes: u64,
    files: u64,
    rollback_of: Option<u64>,
    schema_version: u64,
    retain_versions: u32,
    /// Whether every file of the version is still on storage: it can be rolled back to, and
    /// read with `version_of`.
    restorable: bool,
    checks: Vec<CheckJson>,
    /// The version of the table's Delta log holding the same files (Delta tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    delta_version: Option<u64>,
}

#[derive(Serialize)]
struct CheckJson {
    name: String,
    rule: String,
    severity: String,
    status: String,
    violations: u64,
}

pub async fn history(args: TableArgs, global: &GlobalArgs) -> Result<()> {
    let TableCommand::History { table } = args.command;
    let catalog = global.catalog().await?;
    let found = catalog.require(&table).await?;
    versions::require_written(&found)?;
    let all = catalog.data_versions(&table).await?;
    let restorable = versions::available(catalog.as_ref(), &found, &all).await?;
    let versions: Vec<VersionJson> = all.iter().map(|v| version_json(v, restorable.contains(&v.version))).collect();
    if global.json {
        return print_json(&HistoryJson { table: table.to_string(), versions });
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{table}: {} versions", versions.len())?;
    for v in &versions {
        let mut notes = Vec::new();
        if let Some(delta) = v.delta_version {
            notes.push(format!("Delta version {delta}"));
        }
        if let Some(of) = v.rollback_of {
            notes.push(format!("rollback to version {of}"));
        }
        if !v.checks.is_empty() {
            let failed = v.checks.iter().filter(|c| c.status == "failed").count();
            notes.push(format!("checks: {} passed, {failed} warned", v.checks.len() - failed));
        }
        if !v.restorable {
            notes.push("files removed".into());
        }
        writeln!(
            out,
            "  v{:<4} {}  {:<26} {:>10} rows {:>10} {:>5} files  {}",
            v.version,
            v.created_at,
            v.run_id.as_deref().unwrap_or("-"),
            v.rows,
            human_bytes(v.bytes),
            v.files,
            notes.join("; ")
        )?;
    }
    Ok(())
}

fn version_json(v: &DataVersion, restorable: bool) -> VersionJson {
    VersionJson {
        version: v.version,
        run_id: v.run_id.clone(),
        created_at: v.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        rows: v.rows,
        bytes: v.bytes,
        files: v.files,
        rollback_of: v.rollback_of,
        schema_version: v.schema_version,
        retain_versions: v.retain_versions,
        restorable,
        delta_version: v.delta_version,
        checks: Recorded::read(&v.checks)
            .into_iter()
            .map(|r| CheckJson {
                name: r.check.name,
                rule: r.check.rule.key().to_string(),
                severity: r.check.severity.as_str().to_string(),
                status: serde_json::to_value(r.status)
                    .ok()
                    .and_then(|s| s.as_str().map(str::to_string))
                    .unwrap_or_default(),
                violations: r.violations,
            })
            .collect(),
    }
}

pub async fn rollback(args: RollbackArgs, global: &GlobalArgs) -> Result<()> {
    let catalog = global.catalog().await?;
    let history = History::open(&home())?;
    // In the history as a run (job `rollback_DB_TABLE`), as a compaction is: its id names the
    // table's new version, and what a killed rollback leaves is known as a dead run's (removed
    // by the next run and `etl gc`), not taken for a live one's.
    let run_id = new_run_id();
    let now = || chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let job = format!("rollback_{}_{}", args.table.database, args.table.table);
    let mut report = RunReport::started(&run_id, &job, chrono::Utc::now().date_naive(), false, now());
    let location = catalog.table(&args.table).await?.map(|t| t.definition.location).unwrap_or_default();
    let target = |files, partitions, version| TargetReport {
        table: args.table.to_string(),
        location: location.clone(),
        files,
        rows: 0,
        bytes: 0,
        partitions,
        replaced: Vec::new(),
        version,
        sort_by: Vec::new(),
        sort_reason: String::new(),
    };
    // Staged as a run's publication is: a rollback killed once its version is in the catalog
    // is settled as published (by `etl runs`), not left "failed, nothing published".
    let mut staged = report.clone();
    staged.targets.push(target(0, 0, None));
    history.stage_publication(&staged, &[])?;
    let versions = catalog.data_versions(&args.table).await.unwrap_or_default();
    let rolled_back = roll_back(catalog.as_ref(), &args.table, args.to, &run_id, &history).await;
    if rolled_back.is_ok() {
        let undone_now: Vec<&String> =
            versions.iter().filter(|v| v.version > args.to).filter_map(|v| v.run_id.as_ref()).collect();
        let kept = align_bookmarks(&history, catalog.as_ref(), &args.table).await?;
        for (run, others) in kept.iter().filter(|(run, _)| undone_now.contains(&&run.run_id)) {
            report.warnings.push(format!(
                "run {} of job {} also wrote {}: what it read stays read, so its rows in {} come back only with theirs (roll those back too: what it read is then unread again, and its next run reads it)",
                run.run_id,
                run.job,
                others.join(", "),
                args.table
            ));
        }
    }
    report.finished_at = Some(now());
    match &rolled_back {
        Ok(restored) => {
            report.status = RunStatus::Succeeded;
            report.warnings.extend(restored.warnings.clone());
            report.targets.push(target(restored.files_copied, restored.partitions, Some(restored.version)));
            history.published(&report)?;
        }
        Err(e) => {
            report.status = RunStatus::Failed;
            report.error = Some(e.message().to_string());
            history.record(&report)?;
            history.not_published(&run_id)?;
        }
    }
    let restored = rolled_back?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if global.json {
        return print_json(&restored);
    }
    if !global.quiet {
        writeln!(
            std::io::stdout().lock(),
            "{}: version {} holds the data of version {} ({} partitions changed, {} files copied)",
            restored.table,
            restored.version,
            restored.restored,
            restored.partitions,
            restored.files_copied
        )?;
    }
    Ok(())
}
