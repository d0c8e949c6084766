//! Pipelines: a folder of job files run as one graph, as Step Functions or Airflow would run
//! them, from the same binary.
//!
//! A folder is a pipeline: its job files, and an optional `pipeline.toml` beside them with the
//! pipeline's `name` (default: the folder's), `schedule` and `catch_up` (as a job file's),
//! `concurrency` (jobs at once, default 2), `on_failure` (`stop`, the default: a failed job's
//! downstream jobs are skipped and what the others published stays; `rollback`: see
//! [`runner`]) and a `[deploy]` table for `etl deploy` ([`deploy::Settings`]). A job runs
//! after the jobs that write the tables it reads ([`tables`]) and after those its `depends_on`
//! names ([`graph`]).
//!
//! Loading resolves everything before anything runs, and refuses (exit 2, naming the jobs and
//! tables) a cycle, a dependency on no job of the folder, two jobs that may write the same
//! partitions of one table ([`tables::overlap`]), and, with `on_failure = "rollback"`, a target
//! whose `retain_versions` would delete the files of the version a rollback restores.
//!
//! [`runner`] runs the graph through the job runner ([`crate::runs::run`]): each job a normal
//! run with its lease and report, in the history with the pipeline run's id ([`report`]).
//! [`render`] draws the graph as text, Mermaid or Graphviz.

pub mod deploy;
pub mod graph;
pub mod render;
pub mod report;
pub mod runner;
pub mod tables;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use self::graph::{Graph, Node};
use super::job::{self, CatchUp, Job, PIPELINE_FILE};
use super::schedule::Schedule;
use crate::error::{Error, Result};
use crate::sink::TargetSpec;

/// Jobs of a pipeline run at once when neither `pipeline.toml` nor the command says.
pub const DEFAULT_CONCURRENCY: usize = 2;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    name: Option<String>,
    schedule: Option<String>,
    catch_up: Option<String>,
    concurrency: Option<usize>,
    on_failure: Option<String>,
    deploy: Option<deploy::Settings>,
}

/// What a pipeline run does when a job fails, beyond skipping the jobs downstream of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// What the other jobs published stays.
    Stop,
    /// No job starts after the failure; once the running ones end, every table the run's jobs
    /// published goes back to its version before the run.
    Rollback,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Stop => "stop",
            OnFailure::Rollback => "rollback",
        }
    }
}

/// A folder of jobs, resolved and validated.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub folder: PathBuf,
    pub schedule: Option<Schedule>,
    pub catch_up: CatchUp,
    pub concurrency: usize,
    pub on_failure: OnFailure,
    /// What only `etl deploy` reads (`[deploy]`).
    pub deploy: deploy::Settings,
    /// In dependency order, as the graph's nodes.
    pub jobs: Vec<Job>,
    pub graph: Graph,
    /// SQL of the jobs that did not parse, whose tables the graph cannot know.
    pub warnings: Vec<String>,
}

impl Pipeline {
    /// The pipeline of a folder: its `pipeline.toml` and job files.
    pub fn load(folder: &Path) -> Result<Pipeline> {
        if !folder.is_dir() {
            return Err(Error::config(format!("{}: not a folder of job files", folder.display())));
        }
        let settings_file = folder.join(PIPELINE_FILE);
        let settings = match std::fs::read_to_string(&settings_file) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::config(format!("pipeline file {}: {e}", settings_file.display()))),
        };
        let mut pipeline = Self::parse(settings.as_deref().unwrap_or(""), folder).map_err(|(option, why)| {
            Error::config(format!("pipeline file {}: {option}: {why}", settings_file.display()))
        })?;
        let jobs = Job::load_all(folder)?;
        pipeline.add_jobs(jobs)?;
        Ok(pipeline)
    }

    /// The settings of `pipeline.toml` (its text), for the pipeline of `folder`, without jobs.
    fn parse(text: &str, folder: &Path) -> Result<Pipeline, job::Refusal> {
        let raw: PipelineFile =
            toml::from_str(text).map_err(|e| ("toml".to_string(), e.to_string().trim_end().to_string()))?;
        let name = match &raw.name {
            Some(name) => job::resolve_name(name)?,
            None => folder_name(folder),
        };
        let schedule = raw.schedule.as_deref().map(str::parse::<Schedule>).transpose();
        let schedule = schedule.map_err(|e| ("schedule".to_string(), e.to_string()))?;
        let catch_up = raw.catch_up.as_deref().map(str::parse).transpose().map_err(|e| ("catch_up".to_string(), e))?;
        let concurrency = match raw.concurrency {
            Some(0) => return Err(("concurrency".into(), "must be 1 or more".into())),
            Some(n) => n,
            None => DEFAULT_CONCURRENCY,
        };
        let on_failure = match raw.on_failure.as_deref() {
            None | Some("stop") => OnFailure::Stop,
            Some("rollback") => OnFailure::Rollback,
            Some(other) => {
                return Err(("on_failure".into(), format!("unknown value '{other}' (expected stop or rollback)")));
            }
        };
        let deploy = raw.deploy.unwrap_or_default();
        deploy.validate()?;
        Ok(Pipeline {
            name,
            folder: folder.to_path_buf(),
            schedule,
            catch_up: catch_up.unwrap_or(CatchUp::Latest),
            concurrency,
            on_failure,
            deploy,
            jobs: Vec::new(),
            graph: Graph::new(Vec::new()).expect("an empty graph"),
            warnings: Vec::new(),
        })
    }

    /// Builds the graph of `jobs`, refusing what cannot run.
    fn add_jobs(&mut self, jobs: Vec<Job>) -> Result<()> {
        let in_pipeline = |e: Error| e.context(format!("pipeline {} ({})", self.name, self.folder.display()));
        let mut nodes = Vec::new();
        for job in &jobs {
            let reads = tables::reads(job);
            self.warnings.extend(reads.unparsed.iter().map(|sql| {
                format!(
                    "job {}: {sql}; the tables it names are not in the graph (the job fails when it runs)",
                    job.name
                )
            }));
            nodes.push(Node {
                job: job.name.clone(),
                file: job.file.clone(),
                reads: reads.tables,
                writes: tables::writes(job),
                depends_on: job.depends_on.clone(),
            });
        }
        let graph = Graph::new(nodes).map_err(in_pipeline)?;
        check_writers(&jobs).map_err(in_pipeline)?;
        check_trigger_loops(&jobs, &graph).map_err(in_pipeline)?;
        if self.on_failure == OnFailure::Rollback {
            check_retention(&jobs).map_err(in_pipeline)?;
        }
        let mut jobs = jobs;
        jobs.sort_by_key(|j| graph.nodes().iter().position(|n| n.job == j.name));
        self.jobs = jobs;
        self.graph = graph;
        Ok(())
    }

    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The jobs `names` selects (`--only`), in dependency order; all of them when it is empty.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Job>> {
        if let Some(unknown) = names.iter().find(|n| self.job(n).is_none()) {
            let known: Vec<&str> = self.jobs.iter().map(|j| j.name.as_str()).collect();
            return Err(Error::usage(format!(
                "--only {unknown}: no such job in pipeline {} (its jobs: {})",
                self.name,
                known.join(", ")
            )));
        }
        Ok(self.jobs.iter().filter(|j| names.is_empty() || names.contains(&j.name)).collect())
    }
}

/// The folder's own name (of the absolute path, so `.` is named too).
/// The folder's name as a pipeline's name is written (`[a-z0-9_]+`, as `pipeline.toml`'s must
/// be): it names AWS resources, which take no space or capital (`My Pipe.v2` -> `my_pipe_v2`).
fn folder_name(folder: &Path) -> String {
    let absolute = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    let name = absolute.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match name.chars().any(|c| c.is_ascii_alphanumeric()) {
        true => crate::schema::names::normalize(&name, 0),
        false => "pipeline".into(),
    }
}

/// A trigger runs its job and the jobs downstream of it: where what they write is seen by a
/// trigger whose runs lead back to the first (job a's trigger watches b's output, b's watches
/// a's), each run would start the next, for ever. A job seeing its own outputs is refused
/// with the job file.
fn check_trigger_loops(jobs: &[Job], graph: &Graph) -> Result<()> {
    // Each job's trigger starts the jobs whose triggers see what its run writes, and why.
    let starts: Vec<Vec<(usize, String)>> = jobs
        .iter()
        .map(|job| {
            let runs = graph.with_downstream(std::slice::from_ref(&job.name));
            let written: Vec<(&str, &TargetSpec)> = jobs
                .iter()
                .filter(|j| runs.contains(&j.name.as_str()))
                .flat_map(|j| j.targets.iter().map(move |t| (j.name.as_str(), t)))
                .collect();
            let mut started = Vec::new();
            for (index, other) in jobs.iter().enumerate() {
                let seen = other.triggers.iter().find_map(|trigger| {
                    let (writer, target) = written.iter().find(|(_, t)| trigger.sees_writes_to(&t.location))?;
                    Some(format!("{} (trigger {trigger}) sees {writer}'s writes to {}", other.name, target.location))
                });
                started.extend(seen.map(|why| (index, why)));
            }
            started
        })
        .collect();
    for first in 0..jobs.len() {
        // Depth first from each job, along the reasons, back to it.
        let mut path: Vec<(usize, usize)> = vec![(first, 0)];
        let mut seen = vec![false; jobs.len()];
        while let Some((job, next)) = path.last().copied() {
            let Some((to, _)) = starts[job].get(next) else {
                path.pop();
                if let Some(last) = path.last_mut() {
                    last.1 += 1;
                }
                continue;
            };
            if *to == first {
                let reasons: Vec<&str> = path.iter().map(|(j, n)| starts[*j][*n].1.as_str()).collect();
                return Err(Error::config(format!(
                    "triggers would start the jobs again for ever: {}; watch the sources' prefixes, or set suffixes \
                     their outputs do not end with",
                    reasons.join(", and ")
                )));
            }
            if seen[*to] {
                path.last_mut().expect("not empty").1 += 1;
            } else {
                seen[*to] = true;
                path.push((*to, 0));
            }
        }
    }
    Ok(())
}

/// Two jobs writing one table must write partitions that are disjoint by their definitions,
/// and two tables may not share files: one's publication would replace or delete the other's.
fn check_writers(jobs: &[Job]) -> Result<()> {
    let targets: Vec<(&Job, usize, &TargetSpec)> =
        jobs.iter().flat_map(|job| job.targets.iter().enumerate().map(move |(i, t)| (job, i, t))).collect();
    for (n, (a, ia, ta)) in targets.iter().enumerate() {
        for (b, ib, tb) in &targets[n + 1..] {
            if ta.table != tb.table && ta.location.overlaps(&tb.location) {
                return Err(Error::config(format!(
                    "tables {} ({} target[{ia}]) and {} ({} target[{ib}]) are written to overlapping locations \
                     ({} and {}): give each table a location of its own",
                    ta.table,
                    a.file.display(),
                    tb.table,
                    b.file.display(),
                    ta.location,
                    tb.location,
                )));
            }
        }
    }
    for (i, a) in jobs.iter().enumerate() {
        for b in &jobs[i + 1..] {
            for (ta_index, ta) in a.targets.iter().enumerate() {
                let Some((tb_index, tb)) = b.targets.iter().enumerate().find(|(_, t)| t.table == ta.table) else {
                    continue;
                };
                let (wa, wb) = (
                    tables::Writer { target: ta, params: &a.params },
                    tables::Writer { target: tb, params: &b.params },
                );
                if let Some(why) = tables::overlap(wa, wb) {
                    return Err(Error::config(format!(
                        "jobs {} and {} both write table {} ({} target[{ta_index}], {} target[{tb_index}]) and may \
                         write the same partitions: {why}. Two jobs may write one table only where their partitions \
                         are disjoint: the same partition_by, neither mode = \"overwrite\", and a partition column \
                         each query fixes to a different value, at one location",
                        a.name,
                        b.name,
                        ta.table,
                        a.file.display(),
                        b.file.display(),
                    )));
                }
            }
        }
    }
    Ok(())
}

/// A rollback restores each table to its version before the run, after as many publications
/// as the pipeline has writers of it: retention must keep the files of that many more.
fn check_retention(jobs: &[Job]) -> Result<()> {
    for job in jobs {
        for (index, target) in job.targets.iter().enumerate() {
            let writers = jobs.iter().filter(|j| j.targets.iter().any(|t| t.table == target.table)).count();
            let needed = writers as u32 + 1;
            if target.retain_versions < needed {
                return Err(Error::config(format!(
                    "{} target[{index}]: retain_versions = {} would delete the files of the version of {} that \
                     on_failure = \"rollback\" restores ({} publication(s) of it in a pipeline run, then the \
                     version before): set retain_versions = {needed} or more, or on_failure = \"stop\"",
                    job.file.display(),
                    target.retain_versions,
                    target.table,
                    writers,
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::write(dir.join(file), text).unwrap();
    }

    /// A job writing `table`, with more keys for its target.
    fn job_file(name: &str, query: &str, table: &str, target: &str) -> String {
        format!(
            "name = \"{name}\"\n[[target]]\ntable = \"{table}\"\nquery = \"{query}\"\nlocation = \"out/{table}/\"\n{target}\n"
        )
    }

    #[test]
    fn settings_default_and_refuse_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("nightly");
        let defaults = Pipeline::parse("", &folder).unwrap();
        assert_eq!(defaults.name, "nightly");
        assert_eq!((defaults.concurrency, defaults.on_failure), (DEFAULT_CONCURRENCY, OnFailure::Stop));
        assert!(defaults.schedule.is_none());
        let set = Pipeline::parse(
            "name = \"sales\"\nschedule = \"cron(0 2 * * ? *)\"\nconcurrency = 4\non_failure = \"stop\"\ncatch_up = \"all\"",
            &folder,
        )
        .unwrap();
        assert_eq!((set.name.as_str(), set.concurrency, set.catch_up), ("sales", 4, CatchUp::All));
        assert_eq!(set.schedule.unwrap().to_string(), "cron(0 2 * * ? *)");
        assert_eq!(Pipeline::parse("on_failure = \"rollback\"", &folder).unwrap().on_failure, OnFailure::Rollback);
        for (text, expected) in [
            ("on_failure = \"retry\"", "unknown value 'retry'"),
            ("concurrency = 0", "must be 1 or more"),
            ("name = \"Sales\"", "'Sales' must match [a-z0-9_]+"),
            ("schedule = \"cron(0 25 * * ? *)\"", "hour 25"),
            ("owner = \"me\"", "unknown field `owner`"),
            ("[deploy]\ncpu = 3", "deploy.cpu: 3 is not a Fargate size"),
        ] {
            let (option, why) = Pipeline::parse(text, &folder).unwrap_err();
            assert!(format!("{option}: {why}").contains(expected), "expected '{expected}' in {option}: {why}");
        }
    }

    #[test]
    fn a_folder_loads_as_a_graph_with_its_pipeline_file_beside_the_jobs() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), PIPELINE_FILE, "name = \"sales\"\nconcurrency = 3\n");
        write(dir.path(), "b.toml", &job_file("report", "SELECT * FROM mart.joined", "mart.report", ""));
        write(dir.path(), "a.toml", &job_file("joined", "SELECT 1 AS x", "mart.joined", ""));
        let pipeline = Pipeline::load(dir.path()).unwrap();
        assert_eq!(pipeline.name, "sales");
        assert_eq!(pipeline.jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), ["joined", "report"]);
        assert_eq!(pipeline.graph.upstream("report"), ["joined"]);
        assert!(pipeline.select(&["nope".into()]).unwrap_err().message().contains("--only nope: no such job"));
        assert_eq!(pipeline.select(&["report".into()]).unwrap().len(), 1);
    }

    #[test]
    fn a_rollback_needs_the_files_of_the_version_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), PIPELINE_FILE, "on_failure = \"rollback\"\n");
        write(dir.path(), "a.toml", &job_file("a", "SELECT 1 AS x", "mart.a", "retain_versions = 1"));
        let err = Pipeline::load(dir.path()).unwrap_err();
        assert_eq!(err.kind().exit_code(), 2);
        assert!(err.message().contains("a.toml target[0]: retain_versions = 1 would delete the files"), "{err}");
        assert!(err.message().contains("set retain_versions = 2 or more"), "{err}");
        write(dir.path(), "a.toml", &job_file("a", "SELECT 1 AS x", "mart.a", "retain_versions = 2"));
        assert_eq!(Pipeline::load(dir.path()).unwrap().on_failure, OnFailure::Rollback);
        // The default keeps enough; stop restores nothing, so needs nothing.
        write(dir.path(), "a.toml", &job_file("a", "SELECT 1 AS x", "mart.a", ""));
        Pipeline::load(dir.path()).unwrap();
        write(dir.path(), PIPELINE_FILE, "on_failure = \"stop\"\n");
        write(dir.path(), "a.toml", &job_file("a", "SELECT 1 AS x", "mart.a", "retain_versions = 1"));
        Pipeline::load(dir.path()).unwrap();
    }

    #[test]
    fn two_writers_of_one_table_need_disjoint_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let writer = |region: &str, target: &str| {
            let query = format!("SELECT 1 AS x, '{region}' AS region");
            write(dir.path(), &format!("{region}.toml"), &job_file(region, &query, "mart.sales", target));
        };
        writer("eu", "");
        writer("us", "");
        let err = Pipeline::load(dir.path()).unwrap_err();
        assert_eq!(err.kind().exit_code(), 2);
        assert!(err.message().contains("jobs eu and us both write table mart.sales"), "{err}");
        assert!(err.message().contains("overwrites the whole table"), "{err}");
        let by_region = "partition_by = [\"region\"]\nmode = \"overwrite_partitions\"";
        writer("eu", by_region);
        writer("us", by_region);
        Pipeline::load(dir.path()).unwrap();
    }
}
