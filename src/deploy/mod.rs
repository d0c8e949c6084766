//! Deploying a pipeline to AWS as code, and checking its permissions before it runs.
//!
//! A pipeline knows every location, table, schedule and trigger it uses ([`Needs`]), so `etl
//! deploy` writes the CloudFormation template that runs it ([`template`]): the buckets when
//! asked, the Glue databases, a least-privilege role ([`policy`]), an ECS Fargate task, a Step
//! Functions state machine that runs the jobs in graph order ([`states`]), EventBridge rules for
//! its schedules and S3 triggers, and a failure topic. `etl doctor` ([`doctor`]) tries, against
//! the account, each access a run needs, and names what is missing with the statement of
//! [`policy`] that grants it.
//!
//! What only a deployment needs lives in a `[deploy]` table of `pipeline.toml` ([`Settings`],
//! read and validated with the pipeline).

pub mod doctor;
pub mod policy;
pub mod states;
pub mod template;

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::TableName;
use crate::location::Location;
use crate::location::aws::Encryption;
use crate::runs::events::trigger::Watched;
use crate::runs::job::Job;
use crate::runs::pipeline::Pipeline;
pub use crate::runs::pipeline::deploy::{CreateBuckets, Settings};
use crate::runs::schedule::Schedule;

/// What `etl deploy` takes from its command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub image: Option<String>,
    /// Create every bucket the pipeline names (besides those `pipeline.toml` names).
    pub create_buckets: bool,
    /// The Athena workgroup the runner may query (`etl cost --athena`), and its results'
    /// location.
    pub athena: Option<AthenaAccess>,
    /// The SQS queue `etl scheduler --queue` reads events from, when the pipeline runs as a
    /// service rather than from the state machine.
    pub queue_arn: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AthenaAccess {
    pub workgroup: String,
    pub results: Option<Location>,
}

/// What one S3 bucket is used for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketUse {
    /// Prefixes (no leading or trailing slash; empty for the whole bucket) read.
    pub reads: BTreeSet<String>,
    /// Prefixes written: a target's root holds its staging and run folders.
    pub writes: BTreeSet<String>,
    /// Prefixes whose new objects start jobs (S3 triggers), with their suffix.
    pub triggers: BTreeSet<(String, Option<String>)>,
    /// KMS keys the pipeline's targets encrypt with in this bucket.
    pub kms_keys: BTreeSet<String>,
}

/// Everything a pipeline touches on AWS, derived from its jobs.
#[derive(Debug, Clone)]
pub struct Needs {
    pub buckets: BTreeMap<String, BucketUse>,
    pub databases: BTreeSet<String>,
    /// Tables the runner reads only, and those it creates or updates (targets, and crawled
    /// sources, whose definitions etl keeps).
    pub tables_read: BTreeSet<TableName>,
    pub tables_written: BTreeSet<TableName>,
    pub schedule: Option<Schedule>,
    /// Jobs with a schedule of their own, by job file name.
    pub job_schedules: Vec<(String, String, Schedule)>,
    /// Local paths the pipeline names: a deployment cannot reach them.
    pub local_paths: Vec<String>,
}

impl Needs {
    pub fn of(pipeline: &Pipeline) -> Needs {
        Needs::of_jobs(&pipeline.jobs, pipeline.schedule.clone())
    }

    /// What `jobs` need (one job file's, for `etl doctor JOB.toml`).
    pub fn of_jobs(jobs: &[Job], schedule: Option<Schedule>) -> Needs {
        let mut needs = Needs {
            buckets: BTreeMap::new(),
            databases: BTreeSet::new(),
            tables_read: BTreeSet::new(),
            tables_written: BTreeSet::new(),
            schedule,
            job_schedules: Vec::new(),
            local_paths: Vec::new(),
        };
        for job in jobs {
            needs.add_job(job);
        }
        needs.tables_read.retain(|t| !needs.tables_written.contains(t));
        needs.databases = needs.tables_read.iter().chain(&needs.tables_written).map(|t| t.database.clone()).collect();
        needs
    }

    fn add_job(&mut self, job: &Job) {
        for source in &job.sources {
            self.tables_written.insert(source.table.clone());
            if let Some(bucket) = self.bucket_of(&source.location) {
                bucket.reads.insert(prefix_of(&source.location));
            }
        }
        for table in crate::runs::pipeline::tables::reads(job).tables {
            self.tables_read.insert(table);
        }
        for target in &job.targets {
            self.tables_written.insert(target.table.clone());
            let prefix = prefix_of(&target.location);
            if let Some(bucket) = self.bucket_of(&target.location) {
                bucket.writes.insert(prefix);
                if let Encryption::Kms(key) = &target.encryption {
                    bucket.kms_keys.insert(key.clone());
                }
            }
            for check in &target.checks {
                if let crate::checks::Rule::Relationship { table, .. } = &check.rule {
                    self.tables_read.insert(table.clone());
                }
            }
        }
        for trigger in &job.triggers {
            match &trigger.watched {
                Watched::S3 { bucket, prefix } => {
                    let use_ = self.buckets.entry(bucket.clone()).or_default();
                    use_.triggers.insert((prefix.clone(), trigger.suffix.clone()));
                }
                Watched::Local(path) => self.local_paths.push(format!("{}: trigger {}", job.name, path.display())),
            }
        }
        if let Some(schedule) = &job.scheduling.schedule {
            let file = job.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            self.job_schedules.push((job.name.clone(), file, schedule.clone()));
        }
    }

    /// The use of a location's bucket; `None` (and noted) for a local path.
    fn bucket_of(&mut self, location: &Location) -> Option<&mut BucketUse> {
        match location.bucket() {
            Some(bucket) => Some(self.buckets.entry(bucket.to_string()).or_default()),
            None => {
                self.local_paths.push(location.url());
                None
            }
        }
    }
}

/// A location's key prefix, without slashes at either end (empty: the whole bucket).
pub fn prefix_of(location: &Location) -> String {
    location.prefix().as_ref().trim_matches('/').to_string()
}

/// A CloudFormation logical id from free text: letters and digits, each word capitalised.
/// The logical id of `name` among `names` of its kind: [`logical_id`] of `prefix` and `name`,
/// which drops separators, so that two names only they tell apart (`x_1` and `x1`, buckets
/// `a-b` and `a.b`) would share one; those take a digest of their name too. Names that share
/// no id keep theirs, so a stack's resources keep their ids as the pipeline grows.
pub fn logical_id_among<'a>(prefix: &[&str], name: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    let id_of = |name: &str| logical_id(&[prefix, &[name]].concat());
    let id = id_of(name);
    match names.into_iter().any(|other| other != name && id_of(other) == id) {
        true => format!("{id}{:08X}", crate::schema::names::digest(name)),
        false => id,
    }
}

pub fn logical_id(parts: &[&str]) -> String {
    let mut id = String::new();
    for part in parts {
        for word in part.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                id.push(first.to_ascii_uppercase());
                id.extend(chars);
            }
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_alphanumeric_words() {
        assert_eq!(logical_id(&["bucket", "raw-data.eu_1"]), "BucketRawDataEu1");
        assert_eq!(logical_id(&["Job", "daily_orders"]), "JobDailyOrders");
    }

    #[test]
    fn names_that_only_separators_tell_apart_get_ids_apart() {
        let names = ["x_1", "x1", "daily_orders"];
        let ids: Vec<String> = names.iter().map(|n| logical_id_among(&["Schedule"], n, names)).collect();
        assert_eq!(ids[2], "ScheduleDailyOrders");
        assert!(ids[0].starts_with("ScheduleX1") && ids[1].starts_with("ScheduleX1") && ids[0] != ids[1], "{ids:?}");
        assert!(ids.iter().all(|id| id.chars().all(|c| c.is_ascii_alphanumeric())), "{ids:?}");
    }
}
