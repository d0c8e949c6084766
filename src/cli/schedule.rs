//! `etl schedule JOB.toml|DIR`: the next fire times of a job, or of every job in a folder.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::error::Result;
use crate::runs::job::{Job, PIPELINE_FILE, job_files};
use crate::runs::pipeline::Pipeline;

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// A job file, or a folder of job files.
    pub jobs: PathBuf,
    /// Fire times strictly after this moment (RFC 3339; default now).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// How many fire times per job.
    #[arg(long, default_value_t = 5)]
    pub count: usize,
}

#[derive(Serialize)]
struct ScheduleJson {
    jobs: Vec<JobJson>,
}

#[derive(Serialize)]
struct JobJson {
    job: String,
    schedule: Option<String>,
    next: Vec<String>,
}

pub fn parse_time(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("'{text}' is not an RFC 3339 time like 2026-11-30T02:00:00Z ({e})"))
}

pub async fn run(args: ScheduleArgs, global: &GlobalArgs) -> Result<()> {
    let from = args.from.unwrap_or_else(Utc::now);
    // A pipeline's schedule fires every job of it; a job's own schedule fires it alone besides
    // (`etl scheduler DIR`, and the rules of `etl deploy`).
    let pipeline_schedule = match args.jobs.join(PIPELINE_FILE).is_file() {
        true => Pipeline::load(&args.jobs)?.schedule,
        false => None,
    };
    let mut jobs = Vec::new();
    for file in job_files(&args.jobs)? {
        let job = Job::load(&file)?;
        let schedules: Vec<_> = pipeline_schedule.iter().chain(job.scheduling.schedule.as_ref()).collect();
        let mut next: Vec<DateTime<Utc>> = schedules.iter().flat_map(|s| s.iter_after(from).take(args.count)).collect();
        next.sort();
        next.dedup();
        next.truncate(args.count);
        jobs.push(JobJson {
            job: job.name.clone(),
            schedule: (!schedules.is_empty())
                .then(|| schedules.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ")),
            next: next.iter().map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).collect(),
        });
    }
    if global.json {
        return print_json(&ScheduleJson { jobs });
    }
    let mut out = std::io::stdout().lock();
    for job in &jobs {
        match &job.schedule {
            Some(schedule) => writeln!(out, "{}  {schedule}", job.job)?,
            None => writeln!(out, "{}  (no schedule)", job.job)?,
        }
        for time in &job.next {
            writeln!(out, "  {time}")?;
        }
    }
    Ok(())
}
