//! The session's planner on a cluster: each query is planned here, as it would be locally,
//! and a plan that reads or writes files runs on the cluster as one Ballista job.

use std::fmt;
use std::sync::Arc;

use ballista_core::execution_plans::execute_physical_plan;
use ballista_core::extension::SessionConfigExt;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::{FileScanConfig, FileSinkConfig};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::LogicalPlan;
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::{StreamExt, TryStreamExt};

use super::codec::{EtlCodec, ParquetSinkWithMetadata};
use crate::error::Error;
use crate::location::Location;
use crate::source::rejects::BadRecordPolicy;
use crate::source::scan::{RawScanExec, RawTable};
use crate::source::spool;
use crate::transform::write_order::ConcatPartitionsExec;
use datafusion::datasource::file_format::parquet::ParquetSink;
use datafusion::datasource::physical_plan::FileSink;

#[derive(Debug)]
pub struct ClusterPlanner {
    scheduler_url: String,
    /// Where raw scans' executors leave what they read (a run's staging), if anywhere.
    scratch: Option<Location>,
}

impl ClusterPlanner {
    pub fn new(scheduler_url: String, scratch: Option<Location>) -> Self {
        ClusterPlanner { scheduler_url, scratch }
    }
}

#[async_trait::async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = DefaultPhysicalPlanner::default().create_physical_plan(logical_plan, session).await?;
        // A session's own table (`CREATE TABLE t …`, then `INSERT INTO t …`) holds its rows in
        // this process: the query runs on the cluster, the rows are inserted here.
        if let Some(exec) = plan.downcast_ref::<DataSinkExec>() {
            let sink: &dyn std::any::Any = exec.sink();
            if sink.downcast_ref::<ParquetSink>().is_none() {
                let input = self.on_cluster(exec.input().clone())?;
                let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
                return plan.clone().replace_children(vec![input], options);
            }
        }
        self.on_cluster(plan)
    }
}

impl ClusterPlanner {
    fn on_cluster(&self, plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        if !touches_files(&plan)? {
            // Nothing for executors to read or write (`SELECT 1`, EXPLAIN, a catalog listing).
            return Ok(plan);
        }
        if plan.exists(|node| Ok(node.name() == "ScalarSubqueryExec"))? {
            // Ballista cannot ship a scalar subquery's value to the stages that use it (an
            // executor refuses the plan): such a query runs here, as locally.
            return Ok(plan);
        }
        let plan = raw_scans_in_one_task(plan)?;
        let plan = parquet_sinks_with_metadata(plan)?;
        Ok(Arc::new(ClusterExec::new(plan, self.scheduler_url.clone(), self.scratch.clone())))
    }
}

fn touches_files(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    plan.exists(|node| {
        Ok(node.downcast_ref::<RawScanExec>().is_some()
            || node.downcast_ref::<DataSinkExec>().is_some()
            || node
                .downcast_ref::<DataSourceExec>()
                .is_some_and(|source| source.data_source().downcast_ref::<FileScanConfig>().is_some()))
    })
}

/// Each raw scan as one partition that reads its files' groups concurrently. Ballista gives
/// each task of a stage its share of the stage's partitions by rewriting the scans it knows
/// (Parquet's file groups); a scan it does not know keeps all of them, and every task would
/// read every file (the weekly job's orders counted twice on two tasks).
fn raw_scans_in_one_task(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if node.downcast_ref::<RawScanExec>().is_some() && node.properties().output_partitioning().partition_count() > 1
        {
            return Ok(Transformed::yes(Arc::new(ConcatPartitionsExec::new(node)) as Arc<dyn ExecutionPlan>));
        }
        Ok(Transformed::no(node))
    })
    .map(|transformed| transformed.data)
}

/// Each Parquet sink whose files carry key-value metadata, sent so that executors keep it
/// (see [`ParquetSinkWithMetadata`]).
fn parquet_sinks_with_metadata(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(exec) = node.downcast_ref::<DataSinkExec>() else { return Ok(Transformed::no(node)) };
        let sink: &dyn std::any::Any = exec.sink();
        let Some(parquet) = sink.downcast_ref::<ParquetSink>() else { return Ok(Transformed::no(node)) };
        if parquet.parquet_options().key_value_metadata.is_empty() {
            return Ok(Transformed::no(node));
        }
        let config = FileSink::config(parquet).clone();
        let sorting = sorting_columns(exec, &config);
        let sink = Arc::new(ParquetSinkWithMetadata::new(config, parquet.parquet_options().clone(), sorting));
        Ok(Transformed::yes(Arc::new(DataSinkExec::new(exec.input().clone(), sink, exec.sort_order().clone()))))
    })
    .map(|transformed| transformed.data)
}

/// The sorting columns DataFusion's planner gives a Parquet sink (its required order, when
/// every key is a column of the files written), which its protobuf does not carry.
fn sorting_columns(exec: &DataSinkExec, config: &FileSinkConfig) -> Vec<SortingColumn> {
    let Some(order) = exec.sort_order() else { return Vec::new() };
    let partition_columns: Vec<&str> = config.table_partition_cols.iter().map(|(name, _)| name.as_str()).collect();
    let written: Vec<&str> = config
        .output_schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|name| !partition_columns.contains(name))
        .collect();
    let mut columns = Vec::new();
    for requirement in order.iter() {
        let Some(column) = requirement.expr.downcast_ref::<Column>() else { return Vec::new() };
        let Some(index) = written.iter().position(|name| *name == column.name()) else { return Vec::new() };
        let options = requirement.options.unwrap_or_default();
        columns.push(SortingColumn {
            column_idx: index as i32,
            descending: options.descending,
            nulls_first: options.nulls_first,
        });
    }
    columns
}

/// What a failure to talk to the scheduler means, where Ballista gives the transport's
/// debug text (`tonic::transport::Error(Transport, ConnectError(…))`).
fn connection_trouble(text: &str) -> Option<&'static str> {
    if text.contains("ConnectError") || text.contains("tcp connect error") {
        Some(
            "cannot connect to the scheduler there (is `etl cluster scheduler` running, and listening on that address?)",
        )
    } else if text.contains("h2 protocol error") || text.contains("BrokenPipe") || text.contains("ConnectionReset") {
        Some("the connection to the scheduler was lost while the job ran (did it stop?)")
    } else {
        None
    }
}

/// How long a job waits for the cluster to have an executor (`ETL_CLUSTER_EXECUTOR_WAIT`
/// seconds, 60 by default: executors starting beside the job, or restarted, register by then).
fn executor_wait() -> std::time::Duration {
    let seconds = std::env::var("ETL_CLUSTER_EXECUTOR_WAIT").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    std::time::Duration::from_secs(seconds)
}

/// Returns once the scheduler at `url` has said for `wait` that no executor is alive.
/// Ballista keeps a job submitted to an empty cluster queued for ever (it fails jobs only when
/// the last executor is lost while they run), and its gRPC API does not tell the executor
/// count: the scheduler's readiness probe (`/readyz`, "not ready: 0/1 executors registered")
/// does. A scheduler that cannot be asked leaves the job to Ballista.
async fn no_executor_for(url: &str, wait: std::time::Duration) {
    let probe = format!("{url}/readyz");
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build();
    let mut empty_since: Option<tokio::time::Instant> = None;
    loop {
        let empty = match &client {
            Ok(client) => match client.get(&probe).send().await {
                Ok(response) => {
                    let unavailable = response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE;
                    unavailable && response.text().await.is_ok_and(|text| text.contains("not ready: 0/"))
                }
                Err(_) => false,
            },
            Err(_) => false,
        };
        let now = tokio::time::Instant::now();
        empty_since = if empty { empty_since.or(Some(now)) } else { None };
        if let Some(since) = empty_since
            && now.duration_since(since) >= wait
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The raw tables a plan scans, each once.
fn raw_tables(plan: &Arc<dyn ExecutionPlan>) -> Result<Vec<Arc<RawTable>>> {
    let mut tables: Vec<Arc<RawTable>> = Vec::new();
    plan.apply(|node| {
        if let Some(scan) = node.downcast_ref::<RawScanExec>()
            && !tables.iter().any(|t| Arc::ptr_eq(t, scan.table()))
        {
            tables.push(scan.table().clone());
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(tables)
}

/// A plan run on the cluster: its one output partition is the job's result, fetched from the
/// executors. The plan is its child for EXPLAIN and metrics, never executed here.
#[derive(Debug)]
pub struct ClusterExec {
    plan: Arc<dyn ExecutionPlan>,
    scheduler_url: String,
    scratch: Option<Location>,
    properties: Arc<PlanProperties>,
}

impl ClusterExec {
    fn new(plan: Arc<dyn ExecutionPlan>, scheduler_url: String, scratch: Option<Location>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(plan.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        ClusterExec { plan, scheduler_url, scratch, properties }
    }

    /// Where each raw table's scans leave what they read; refused where nowhere is given
    /// and the table's bad records are not the query's error.
    fn spools(&self) -> Result<Vec<(Arc<RawTable>, Location)>> {
        let tables = raw_tables(&self.plan)?;
        match &self.scratch {
            Some(scratch) => Ok(tables
                .into_iter()
                .enumerate()
                .map(|(i, table)| (table, scratch.join(&format!("source-{i}"))))
                .collect()),
            None => match tables.iter().find(|t| t.rejects.policy() != BadRecordPolicy::Fail) {
                Some(table) => Err(Error::config(format!(
                    "{}: bad_records other than fail need a run's staging folder to be read on a cluster",
                    table.location
                ))
                .into_datafusion()),
                None => Ok(Vec::new()),
            },
        }
    }
}

impl DisplayAs for ClusterExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ClusterExec: scheduler={}", self.scheduler_url)
    }
}

impl ExecutionPlan for ClusterExec {
    fn name(&self) -> &str {
        "ClusterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.plan]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn datafusion::physical_expr::PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(plan) if children.is_empty() => {
                Ok(Arc::new(ClusterExec::new(plan, self.scheduler_url.clone(), self.scratch.clone())))
            }
            _ => Err(DataFusionError::Internal("ClusterExec takes one child".to_string())),
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("ClusterExec has one partition, not {partition}")));
        }
        let spools = self.spools()?;
        let codec = EtlCodec::with_spools(spools.clone());
        let config = context.session_config().clone();
        let (url, plan, session_id) = (self.scheduler_url.clone(), self.plan.clone(), context.session_id());
        let submitted = async move {
            let ballista = config.ballista_config();
            let job =
                execute_physical_plan::<PhysicalPlanNode>(url.clone(), &ballista, plan, &codec, session_id, config);
            let wait = executor_wait();
            let result = tokio::select! {
                result = job => result,
                () = no_executor_for(&url, wait) => {
                    return Err(DataFusionError::Execution(format!(
                        "on the cluster at {url}: no executor has been registered with the scheduler for {} s, so the job cannot run; start one with `etl cluster executor --scheduler {}`",
                        wait.as_secs(),
                        url.trim_start_matches("http://")
                    )));
                }
            };
            result.map_err(|e| {
                let text = e.to_string();
                let why = connection_trouble(&text).map_or_else(|| crate::error::task_error(&text), str::to_string);
                DataFusionError::Execution(format!("on the cluster at {url}: {why}"))
            })
        };
        let rows = futures::stream::once(submitted).try_flatten();
        // Once the job's rows are all here, what its scans set apart joins the run's rejects.
        let replayed = futures::stream::once(async move { spool::replay(&spools).await })
            .filter_map(|result| async move { result.err().map(|e| Err(e.into_datafusion())) });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.plan.schema(), rows.chain(replayed))))
    }
}
