//! 7. What Athena would bill.
//!
//! Athena bills bytes scanned at a price per terabyte, rounded up to the next megabyte, with a
//! 10 MB minimum per query. A "terabyte" here is 2^40 bytes and a megabyte 2^20: AWS prices
//! data volumes in binary units (its GB is 1024 MB), and the binary reading is never the lower
//! estimate of the two.

pub mod athena;
pub mod billing;
pub mod estimate;
pub mod footers;

use std::path::Path;
use std::sync::Arc;

use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use serde::Serialize;

use self::athena::{AthenaOptions, AthenaRun};
use self::estimate::{Estimator, QueryEstimate};
use self::footers::FooterCache;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::location::counting::{ReadCounter, Reads};
use crate::transform::params::Params;
use crate::transform::script::{self, plan_statement};
use crate::transform::session::{EngineOptions, session};

/// How `etl cost` estimates a script.
#[derive(Debug, Clone)]
pub struct CostOptions {
    pub price_per_tb: f64,
    /// Keep the bill per table, column and partition, and what was pruned and why.
    pub explain: bool,
    /// Also run the queries here and count the bytes they read.
    pub measure: bool,
    /// Also run the queries on Athena and report what it scanned.
    pub athena: Option<AthenaOptions>,
}

/// What a script would bill, with what measuring and Athena said.
#[derive(Debug, Serialize)]
pub struct ScriptCost {
    #[serde(flatten)]
    pub estimate: QueryEstimate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<Reads>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub athena: Vec<AthenaRun>,
}

/// Estimates every query of a script (`name` is how messages call it) over the catalog's
/// tables. DDL (a view a later query uses) runs and bills nothing, as on Athena; a script with
/// no query is an error.
pub async fn estimate_script(
    catalog: Arc<dyn Catalog>,
    home: &Path,
    name: &str,
    text: &str,
    params: &Params,
    options: &CostOptions,
) -> Result<ScriptCost> {
    let counter = options.measure.then(|| Arc::new(ReadCounter::default()));
    let engine = EngineOptions { counter: counter.clone(), ..EngineOptions::default() };
    let ctx = session(catalog, Default::default(), &engine).await?;
    let estimator = Estimator { footers: Arc::new(FooterCache::open(home)?), price_per_tb: options.price_per_tb };
    let statements = script::statements(name, text)?;
    let mut queries = Vec::new();
    let mut athena_runs = Vec::new();
    for statement in &statements {
        let plan = plan_statement(&ctx, name, statement, params).await?;
        let Some(billed) = billed_query(&plan) else {
            ctx.execute_logical_plan(plan).await?.collect().await?;
            continue;
        };
        let mut estimate = estimator.estimate(&ctx.state(), billed).await?;
        if !options.explain {
            estimate.tables.iter_mut().for_each(|t| t.explain = None);
        }
        queries.push(estimate);
        match &plan {
            // A `CREATE TABLE … AS SELECT`'s table is made empty, of its query's columns, for
            // the statements after it to plan against, rather than by running the query (an
            // estimate reads metadata only).
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) if !options.measure => {
                let schema = Arc::new(create.input.schema().as_arrow().clone());
                let empty = datafusion::datasource::MemTable::try_new(schema, vec![Vec::new()])?;
                ctx.register_table(create.name.clone(), Arc::new(empty))?;
            }
            LogicalPlan::Ddl(_) => {
                ctx.execute_logical_plan(plan).await?.collect().await?;
            }
            _ => {
                if options.measure {
                    ctx.execute_logical_plan(plan).await?.collect().await?;
                }
                if let Some(athena_options) = &options.athena {
                    athena_runs.push(athena::run(&statement.text, params, athena_options).await?);
                }
            }
        }
    }
    if queries.is_empty() {
        return Err(Error::query(format!(
            "{name}: no query to estimate (only DDL, EXPLAIN or SHOW, which Athena does not bill)"
        )));
    }
    Ok(ScriptCost {
        estimate: QueryEstimate::total(queries, options.price_per_tb),
        measured: counter.map(|c| c.reads()),
        athena: athena_runs,
    })
}

/// The query Athena would bill for a statement: a query's own plan, a `CREATE TABLE … AS
/// SELECT`'s SELECT, an `EXPLAIN ANALYZE`'s query; none for DDL, session settings, `EXPLAIN`
/// ("EXPLAIN queries do not scan any data, Athena does not charge for them") or `SHOW`/
/// `DESCRIBE`, which read the catalog only (`information_schema`, in DataFusion's plans).
pub fn billed_query(plan: &LogicalPlan) -> Option<&LogicalPlan> {
    match plan {
        LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) => Some(&create.input),
        LogicalPlan::Analyze(analyze) => Some(&analyze.input),
        LogicalPlan::Ddl(_)
        | LogicalPlan::Statement(_)
        | LogicalPlan::Dml(_)
        | LogicalPlan::Copy(_)
        | LogicalPlan::Explain(_)
        | LogicalPlan::DescribeTable(_) => None,
        query if reads_the_catalog_only(query) => None,
        query => Some(query),
    }
}

fn reads_the_catalog_only(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let (mut catalog, mut other) = (0, 0);
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            match scan.table_name.schema() == Some("information_schema") {
                true => catalog += 1,
                false => other += 1,
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    catalog > 0 && other == 0
}
