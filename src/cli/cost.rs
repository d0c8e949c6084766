//! `etl cost [QUERY] [-f FILE.sql]`: what Athena would bill for a query, from metadata only.

use std::io::Write;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, home, open_catalog, print_json};
use crate::cost::athena::{self, AthenaOptions, AthenaRun, OUTPUT_VARIABLE, WORKGROUP_VARIABLE};
use crate::cost::billing::DEFAULT_PRICE_PER_TB;
use crate::cost::estimate::{Estimator, QueryEstimate};
use crate::cost::footers::FooterCache;
use crate::cost::measure::{ReadCounter, Reads};
use crate::error::{Error, Result};
use crate::runs::progress::human_bytes;
use crate::runs::run::new_run_id;
use crate::transform::params::Params;
use crate::transform::script::{self, plan_statement};
use crate::transform::session::{EngineOptions, session};

#[derive(Debug, Args)]
pub struct CostArgs {
    /// The SQL to estimate (several statements: DDL runs, each query is billed).
    pub query: Option<String>,
    /// A file of SQL statements.
    #[arg(short = 'f', long = "file")]
    pub file: Option<std::path::PathBuf>,
    /// US dollars per terabyte (2^40 bytes) scanned.
    #[arg(long, default_value_t = DEFAULT_PRICE_PER_TB)]
    pub price_per_tb: f64,
    /// The bill per table, column and partition, and what was pruned and why.
    #[arg(long)]
    pub explain: bool,
    /// Also run the queries here and report the bytes they read.
    #[arg(long)]
    pub measure: bool,
    /// Also run the queries on Athena and report what it scanned.
    #[arg(long)]
    pub athena: bool,
    /// The Athena workgroup (with --athena).
    #[arg(long, env = WORKGROUP_VARIABLE)]
    pub workgroup: Option<String>,
    /// Where Athena writes results, s3://bucket/prefix/ (with --athena).
    #[arg(long, env = OUTPUT_VARIABLE)]
    pub output_location: Option<String>,
    /// A parameter: NAME=VALUE or NAME:TYPE=VALUE.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

#[derive(Serialize)]
struct CostJson {
    #[serde(flatten)]
    estimate: QueryEstimate,
    #[serde(skip_serializing_if = "Option::is_none")]
    measured: Option<Reads>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    athena: Vec<AthenaRun>,
}

pub async fn run(args: CostArgs, global: &GlobalArgs) -> Result<()> {
    if !args.price_per_tb.is_finite() || args.price_per_tb < 0.0 {
        return Err(Error::usage(format!(
            "--price-per-tb {}: a price is a number of dollars, 0 or more",
            args.price_per_tb
        )));
    }
    let (name, text) = super::sql::query_text(&args.query, &args.file)?;
    let mut params = Params::default();
    params.apply_overrides(&args.params)?;
    let params = params.with_built_ins(chrono::Utc::now().date_naive(), &new_run_id());
    let catalog = open_catalog(global.catalog.as_deref(), None).await?;
    let counter = args.measure.then(|| Arc::new(ReadCounter::default()));
    let engine = EngineOptions { counter: counter.clone(), ..EngineOptions::default() };
    let ctx = session(catalog, Default::default(), &engine).await?;
    let estimator = Estimator { footers: Arc::new(FooterCache::open(&home())?), price_per_tb: args.price_per_tb };
    let athena_options =
        AthenaOptions { workgroup: args.workgroup.clone(), output_location: args.output_location.clone() };

    let mut queries = Vec::new();
    let mut athena_runs = Vec::new();
    let statements = script::split(&text);
    if statements.is_empty() {
        return Err(Error::query(format!("{name}: no SQL statement")));
    }
    for statement in &statements {
        let plan = plan_statement(&ctx, &name, statement, &params).await?;
        if !is_query(&plan) {
            // DDL (a view the query uses) is free on Athena: run it, bill nothing.
            ctx.execute_logical_plan(plan).await?.collect().await?;
            continue;
        }
        let mut estimate = estimator.estimate(&ctx.state(), &plan).await?;
        if !args.explain {
            estimate.tables.iter_mut().for_each(|t| t.explain = None);
        }
        queries.push(estimate);
        if args.measure {
            ctx.execute_logical_plan(plan).await?.collect().await?;
        }
        if args.athena {
            athena_runs.push(athena::run(&statement.text, &athena_options).await?);
        }
    }
    if queries.is_empty() {
        return Err(Error::query(format!("{name}: no query to estimate (only DDL, which Athena does not bill)")));
    }
    let json = CostJson {
        estimate: QueryEstimate::total(queries, args.price_per_tb),
        measured: counter.map(|c| c.reads()),
        athena: athena_runs,
    };
    if global.json {
        return print_json(&json);
    }
    let mut out = std::io::stdout().lock();
    let estimate = &json.estimate;
    writeln!(
        out,
        "{} scanned, billed as {}: ${:.6} at ${} per TB",
        human_bytes(estimate.bytes_scanned),
        human_bytes(estimate.billed_bytes),
        estimate.usd,
        args.price_per_tb
    )?;
    for table in &estimate.tables {
        writeln!(
            out,
            "  {}: {} of {} files, {} of {} row groups, {} ({})",
            table.table,
            table.files - table.files_pruned,
            table.files,
            table.row_groups - table.row_groups_pruned,
            table.row_groups,
            human_bytes(table.bytes),
            table.columns.join(", ")
        )?;
        if let Some(explain) = &table.explain {
            for (column, bytes) in &explain.columns {
                writeln!(out, "      column    {column:<24} {}", human_bytes(*bytes))?;
            }
            if explain.footers > 0 {
                writeln!(out, "      footers   {:<24} {}", "", human_bytes(explain.footers))?;
            }
            for (partition, bytes) in &explain.partitions {
                let label = if partition.is_empty() { "(unpartitioned)" } else { partition };
                writeln!(out, "      partition {label:<24} {}", human_bytes(*bytes))?;
            }
            for reason in &explain.pruned {
                writeln!(out, "      pruned    {reason}")?;
            }
        }
    }
    if let Some(reads) = &json.measured {
        writeln!(out, "measured: the queries read {} in {} requests", human_bytes(reads.bytes_read), reads.requests)?;
    }
    for run in &json.athena {
        writeln!(out, "athena: query {} scanned {}", run.query_execution_id, human_bytes(run.data_scanned_in_bytes))?;
    }
    Ok(())
}

/// Whether Athena would bill the statement (a query), not DDL or session settings.
fn is_query(plan: &datafusion::logical_expr::LogicalPlan) -> bool {
    use datafusion::logical_expr::LogicalPlan;
    !matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::DescribeTable(_)
    )
}
