//! `etl deploy DIR --template FILE`: the pipeline's CloudFormation template (no AWS call).
//! `etl doctor JOB.toml|DIR`: each access a run needs, tried against the account.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::config::CatalogChoice;
use crate::deploy::doctor::{self, Status};
use crate::deploy::template::{self, Format};
use crate::deploy::{AthenaAccess, Needs, Options};
use crate::error::{Error, Result};
use crate::location::Location;
use crate::runs::job::Job;
use crate::runs::pipeline::Pipeline;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The pipeline's folder (its job files and pipeline.toml).
    pub dir: PathBuf,
    /// Where to write the template.
    #[arg(long, value_name = "FILE")]
    pub template: PathBuf,
    /// yaml or json (default: from the file's extension, else yaml).
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// The etl image the tasks run (the template's ImageUri parameter's default).
    #[arg(long, value_name = "URI")]
    pub image: Option<String>,
    /// Create every bucket the pipeline names (versioned, encrypted, private).
    #[arg(long)]
    pub create_buckets: bool,
    /// Let the runner query Athena in this workgroup (etl cost --athena).
    #[arg(long, value_name = "WORKGROUP")]
    pub athena: Option<String>,
    /// Where Athena writes results (with --athena), s3://bucket/prefix/.
    #[arg(long, value_name = "S3_URL", requires = "athena")]
    pub athena_results: Option<String>,
    /// The SQS queue `etl scheduler --queue` reads, when the pipeline also runs as a service.
    #[arg(long, value_name = "ARN", value_parser = queue_arn)]
    pub queue_arn: Option<String>,
}

/// `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`, as IAM takes it in a policy's resource.
fn queue_arn(text: &str) -> std::result::Result<String, String> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "sqs", region, account, name]
            if !partition.is_empty() && !region.is_empty() && account.len() == 12 && !name.is_empty() =>
        {
            Ok(text.to_string())
        }
        _ => Err(format!("'{text}' is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)")),
    }
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A job file, or a pipeline's folder.
    pub path: PathBuf,
    /// Also check the queue `etl scheduler --queue` reads.
    #[arg(long, value_name = "SQS_URL")]
    pub queue: Option<String>,
}

fn parse_format(text: &str) -> std::result::Result<Format, String> {
    text.parse()
}

#[derive(Debug, Serialize)]
struct DeployReport {
    pipeline: String,
    template: String,
    format: &'static str,
    resources: Vec<Resource>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Resource {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

pub async fn deploy(args: DeployArgs, global: &GlobalArgs) -> Result<()> {
    let pipeline = Pipeline::load(&args.dir)?;
    let format = args.format.unwrap_or(match args.template.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        _ => Format::Yaml,
    });
    let athena = match args.athena {
        Some(workgroup) => {
            let results = args.athena_results.as_deref().map(Location::parse).transpose();
            let results = results.map_err(|e| Error::usage(format!("--athena-results: {}", e.message())))?;
            Some(AthenaAccess { workgroup, results })
        }
        None => None,
    };
    let options = Options { image: args.image, create_buckets: args.create_buckets, athena, queue_arn: args.queue_arn };
    let built = template::build(&pipeline, &pipeline.deploy, &options)?;
    let text = built.render(format)?;
    std::fs::write(&args.template, &text)
        .map_err(|e| Error::usage(format!("--template {}: cannot write it: {e}", args.template.display())))?;
    let report = DeployReport {
        pipeline: pipeline.name.clone(),
        template: args.template.display().to_string(),
        format: match format {
            Format::Yaml => "yaml",
            Format::Json => "json",
        },
        resources: built.resources().into_iter().map(|(id, kind)| Resource { id, kind }).collect(),
        warnings: built.warnings.clone(),
    };
    if global.json {
        return print_json(&report);
    }
    if !global.quiet {
        for warning in pipeline.warnings.iter().chain(&report.warnings) {
            eprintln!("warning: {warning}");
        }
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "wrote {} ({} resources) for pipeline {}",
            report.template,
            report.resources.len(),
            report.pipeline
        )?;
        let width = report.resources.iter().map(|r| r.id.len()).max().unwrap_or(0);
        for resource in &report.resources {
            writeln!(out, "  {:width$}  {}", resource.id, resource.kind)?;
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct DoctorReport {
    checks: Vec<doctor::Check>,
}

pub async fn doctor(args: DoctorArgs, global: &GlobalArgs) -> Result<()> {
    let (needs, catalog) = if args.path.is_dir() {
        let pipeline = Pipeline::load(&args.path)?;
        let job_catalog = pipeline.jobs.iter().find_map(|j| j.catalog);
        (Needs::of(&pipeline), CatalogChoice::resolve(global.catalog, job_catalog))
    } else {
        let job = Job::load(&args.path)?;
        let catalog = CatalogChoice::resolve(global.catalog, job.catalog);
        (Needs::of_jobs(std::slice::from_ref(&job), None), catalog)
    };
    let checks = doctor::examine(&needs, &Options::default(), catalog, args.queue.as_deref()).await;
    let failed = checks.iter().filter(|c| c.status == Status::Failed).count();
    let report = DoctorReport { checks };
    if global.json {
        print_json(&report)?;
    } else if !global.quiet {
        let mut out = std::io::stdout().lock();
        for check in &report.checks {
            let status = match check.status {
                Status::Ok => "ok     ",
                Status::Failed => "FAILED ",
                Status::Warning => "warning",
            };
            match check.detail.as_str() {
                "" => writeln!(out, "{status}  {}", check.check)?,
                detail => writeln!(out, "{status}  {}: {detail}", check.check)?,
            }
            if let (Some(action), Some(resource)) = (&check.missing_action, &check.resource) {
                writeln!(out, "         missing {action} on {resource}; a statement that grants it:")?;
                if let Some(statement) = &check.statement {
                    let text = serde_json::to_string_pretty(statement)?;
                    for line in text.lines() {
                        writeln!(out, "           {line}")?;
                    }
                }
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(Error::runtime(format!("{n} check(s) failed: the runs would fail on them"))),
    }
}
