//! Targets keep their input's order: a job that reads, filters and projects its sources
//! writes the rows in the order the sources hold them (files by path, records in file order),
//! so a rerun over the same inputs writes the same rows in the same order, and row groups
//! keep whatever clustering the input had (Athena prunes by their min/max).
//!
//! DataFusion writes a target from one stream: where the plan has several partitions it
//! gathers them with `CoalescePartitionsExec`, which interleaves batches as they arrive, and
//! it spreads a single partition over several with round-robin repartitioning. This rule,
//! for plans that write (`DataSinkExec`), replaces the gathering with [`ConcatPartitionsExec`]
//! (partition 0, then 1, …, all running at once with a small buffer each) and removes the
//! round-robin repartitioning below it, as long as only order-keeping operators (filters,
//! projections) stand between the sink and the scans.
//!
//! It deliberately stops at anything else: the output of an aggregate or a join is in the
//! order those operators produce.
//!
//! A sort under the sink (a target's `sort_by`, the order etl chooses, or the query's `ORDER
//! BY`) is made stable: rows its keys do not tell apart keep their input order, so the columns
//! the sort does not name stay as clustered as the input had them (their pages compress as
//! well), and a rerun writes the same bytes. DataFusion's sort is not stable within a batch;
//! the rule numbers the rows below the sort ([`NumberRowsExec`], partition by partition in
//! input order) and sorts by that number last, then projects it away. Where the session has
//! no memory limit (nothing would spill), [`StableSortExec`] sorts instead, stable by
//! construction, copying the rows twice where the numbered sort copies them three times.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;

use crate::transform::stable_sort::StableSortExec;

/// Batches each partition may have ready while an earlier one is being written.
const BUFFERED_BATCHES: usize = 2;

#[derive(Debug, Default)]
pub struct KeepInputOrder {
    /// Sorts in memory ([`StableSortExec`]) rather than by DataFusion's spilling sort.
    pub sorts_in_memory: bool,
}

impl PhysicalOptimizerRule for KeepInputOrder {
    fn name(&self) -> &str {
        "KeepInputOrder"
    }

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            if !node.is::<DataSinkExec>() {
                return Ok(Transformed::no(node));
            }
            let children: Result<Vec<_>> = node
                .children()
                .into_iter()
                .map(|child| gather_in_order(child.clone()).and_then(|c| stable_sorts(c, self.sorts_in_memory)))
                .collect();
            let rewritten = with_children(node, children?)?;
            Ok(Transformed::new(rewritten, true, TreeNodeRecursion::Jump))
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether a node keeps the order of its input's rows within each partition and only
/// filters, reshapes or appends them (a union's partitions are its inputs' partitions).
fn keeps_order(node: &Arc<dyn ExecutionPlan>) -> bool {
    node.is::<FilterExec>() || node.is::<ProjectionExec>() || node.is::<CooperativeExec>() || node.is::<UnionExec>()
}

fn with_children(
    node: Arc<dyn ExecutionPlan>,
    children: Vec<Arc<dyn ExecutionPlan>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    node.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
}

/// Below the sink: the gathering of partitions, in partition order.
fn gather_in_order(node: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(coalesce) = node.downcast_ref::<CoalescePartitionsExec>() {
        if coalesce.fetch().is_some() {
            return Ok(node);
        }
        // Where an aggregate or a join stands below, there is no input order to keep, and
        // holding back later partitions would only stall their work.
        if !streams_from_scans(coalesce.input()) {
            return Ok(node);
        }
        let input = without_round_robin(coalesce.input().clone())?;
        if input.output_partitioning().partition_count() <= 1 {
            return Ok(input);
        }
        return Ok(Arc::new(ConcatPartitionsExec::new(input)));
    }
    if keeps_order(&node) {
        let children: Result<Vec<_>> =
            node.children().into_iter().map(|child| gather_in_order(child.clone())).collect();
        return with_children(node, children?);
    }
    Ok(node)
}

/// Whether a subtree only reads scans, or one ordered stream (a sort's merge), and keeps
/// their order (round-robin repartitioning aside, which this rule removes: spreading one
/// stream over partitions that are gathered again interleaves it).
fn streams_from_scans(node: &Arc<dyn ExecutionPlan>) -> bool {
    let children = node.children();
    if children.is_empty() || node.is::<SortPreservingMergeExec>() {
        return true;
    }
    let round_robin = node
        .downcast_ref::<RepartitionExec>()
        .is_some_and(|r| matches!(r.partitioning(), Partitioning::RoundRobinBatch(_)));
    (round_robin || keeps_order(node)) && children.into_iter().all(streams_from_scans)
}

/// Below the gathering: round-robin repartitioning removed where only order-keeping
/// operators stand above it, and the scans' partitions kept to their files.
fn without_round_robin(node: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(scan) = node.downcast_ref::<DataSourceExec>()
        && let Some(files) = scan.data_source().downcast_ref::<FileScanConfig>()
        && !files.preserve_order
    {
        // Each partition reads its own files: by default an idle partition takes the next
        // file of another (work stealing), and which one does changes from run to run.
        let mut files = files.clone();
        files.preserve_order = true;
        return Ok(Arc::new(scan.clone().with_data_source(Arc::new(files))));
    }
    if let Some(repartition) = node.downcast_ref::<RepartitionExec>() {
        if matches!(repartition.partitioning(), Partitioning::RoundRobinBatch(_)) {
            return without_round_robin(repartition.input().clone());
        }
        return Ok(node);
    }
    if keeps_order(&node) {
        let children: Result<Vec<_>> =
            node.children().into_iter().map(|child| without_round_robin(child.clone())).collect();
        return with_children(node, children?);
    }
    Ok(node)
}

/// The column [`NumberRowsExec`] appends: a row's place in the input.
const ROW_NUMBER: &str = "__etl_row_number";
/// A row number holds its partition above these bits and its place in the partition below.
const PARTITION_SHIFT: u32 = 40;

/// Below the sink: a sort (with its merge) made stable.
fn stable_sorts(node: Arc<dyn ExecutionPlan>, in_memory: bool) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(merge) = node.downcast_ref::<SortPreservingMergeExec>() {
        let Some(sort) = merge.input().downcast_ref::<SortExec>() else {
            return Ok(node);
        };
        if in_memory && merge.fetch().is_none() && sorts_in_memory(sort) {
            return Ok(Arc::new(StableSortExec::new(sort.expr().clone(), input_in_order(sort)?)));
        }
        let (sort, width) = numbered_sort(sort)?;
        let merged = SortPreservingMergeExec::new(sort.expr().clone(), sort).with_fetch(merge.fetch());
        return without_row_numbers(Arc::new(merged), width);
    }
    if let Some(sort) = node.downcast_ref::<SortExec>() {
        if in_memory && node.output_partitioning().partition_count() == 1 && sorts_in_memory(sort) {
            return Ok(Arc::new(StableSortExec::new(sort.expr().clone(), input_in_order(sort)?)));
        }
        let (sort, width) = numbered_sort(sort)?;
        return without_row_numbers(sort, width);
    }
    if keeps_order(&node) && !node.is::<UnionExec>() {
        let children: Result<Vec<_>> =
            node.children().into_iter().map(|child| stable_sorts(child.clone(), in_memory)).collect();
        return with_children(node, children?);
    }
    Ok(node)
}

/// Whether [`StableSortExec`] can take a sort's place: all of its rows (no `LIMIT`), keys it
/// compares.
fn sorts_in_memory(sort: &SortExec) -> bool {
    sort.fetch().is_none() && StableSortExec::supports(sort.expr(), &sort.input().schema())
}

/// A sort's input with its partitions in file order, each in its files' order: what the
/// sort's ties keep.
fn input_in_order(sort: &SortExec) -> Result<Arc<dyn ExecutionPlan>> {
    let mut input = sort.input().clone();
    if streams_from_scans(&input) {
        input = without_round_robin(input)?;
    }
    gather_in_order(input)
}

/// The sort, over its input numbered in input order, with the number as its last key; and the
/// width of the input (the number's index).
fn numbered_sort(sort: &SortExec) -> Result<(Arc<SortExec>, usize)> {
    let input = input_in_order(sort)?;
    let width = input.schema().fields().len();
    let numbered: Arc<dyn ExecutionPlan> = Arc::new(NumberRowsExec::new(input));
    let mut keys: Vec<PhysicalSortExpr> = sort.expr().iter().cloned().collect();
    keys.push(PhysicalSortExpr::new(Arc::new(Column::new(ROW_NUMBER, width)), SortOptions::default()));
    let ordering = LexOrdering::new(keys).expect("a sort has keys");
    let sorted = SortExec::new(ordering, numbered).with_preserve_partitioning(sort.preserve_partitioning());
    Ok((Arc::new(sorted.with_fetch(sort.fetch())), width))
}

fn without_row_numbers(node: Arc<dyn ExecutionPlan>, width: usize) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = node.schema();
    let columns: Vec<(Arc<dyn PhysicalExpr>, String)> = schema.fields()[..width]
        .iter()
        .enumerate()
        .map(|(i, f)| (Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>, f.name().clone()))
        .collect();
    Ok(Arc::new(ProjectionExec::try_new(columns, node)?))
}

/// Its input with a `UInt64` column appended: each row's partition and place in it.
#[derive(Debug)]
pub struct NumberRowsExec {
    input: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl NumberRowsExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let mut fields: Vec<FieldRef> = input.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(ROW_NUMBER, DataType::UInt64, false)));
        let schema = Arc::new(Schema::new_with_metadata(fields, input.schema().metadata().clone()));
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            input.output_partitioning().clone(),
            EmissionType::Incremental,
            input.boundedness(),
        ));
        NumberRowsExec { input, schema, properties }
    }
}

impl DisplayAs for NumberRowsExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "NumberRowsExec")
    }
}

impl ExecutionPlan for NumberRowsExec {
    fn name(&self) -> &str {
        "NumberRowsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = only_child(children, "NumberRowsExec")?;
        Ok(Arc::new(NumberRowsExec::new(input)))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = self.schema.clone();
        let mut next = (partition as u64) << PARTITION_SHIFT;
        let stream = self.input.execute(partition, context)?.map(move |batch| {
            let batch = batch?;
            let rows = batch.num_rows() as u64;
            let numbers = UInt64Array::from_iter_values(next..next + rows);
            next += rows;
            let mut columns = batch.columns().to_vec();
            columns.push(Arc::new(numbers));
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

/// One partition: every partition of its input, one after the other in partition order, all
/// of them running at once with a few batches buffered each.
#[derive(Debug)]
pub struct ConcatPartitionsExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ConcatPartitionsExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            input.boundedness(),
        ));
        ConcatPartitionsExec { input, properties }
    }
}

impl DisplayAs for ConcatPartitionsExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ConcatPartitionsExec: partitions={}", self.input.output_partitioning().partition_count())
    }
}

impl ExecutionPlan for ConcatPartitionsExec {
    fn name(&self) -> &str {
        "ConcatPartitionsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = only_child(children, "ConcatPartitionsExec")?;
        Ok(Arc::new(ConcatPartitionsExec::new(input)))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, _partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let partitions = self.input.output_partitioning().partition_count();
        let mut receivers = Vec::with_capacity(partitions);
        let mut tasks = Vec::with_capacity(partitions);
        for partition in 0..partitions {
            let mut stream = self.input.execute(partition, context.clone())?;
            let (sender, receiver) = tokio::sync::mpsc::channel(BUFFERED_BATCHES);
            tasks.push(SpawnedTask::spawn(async move {
                while let Some(batch) = stream.next().await {
                    let failed = batch.is_err();
                    if sender.send(batch).await.is_err() || failed {
                        break;
                    }
                }
            }));
            receivers.push(tokio_stream_of(receiver));
        }
        // The tasks end with the stream (dropping a SpawnedTask aborts it).
        let stream = futures::stream::iter(receivers).flatten().map(move |batch| {
            let _running = &tasks;
            batch
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), stream)))
    }
}

/// The one child of a node that takes one.
pub(super) fn only_child(children: Vec<Arc<dyn ExecutionPlan>>, node: &str) -> Result<Arc<dyn ExecutionPlan>> {
    let [input] = <[_; 1]>::try_from(children)
        .map_err(|_| datafusion::error::DataFusionError::Internal(format!("{node} takes one child")))?;
    Ok(input)
}

fn tokio_stream_of<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> futures::stream::BoxStream<'static, T> {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    #[tokio::test]
    async fn partitions_come_out_whole_and_in_order() {
        let partitions: Vec<Vec<RecordBatch>> =
            (0..4).map(|p| (0..5).map(|b| batch(&[p * 100 + b])).collect()).collect();
        let source = MemorySourceConfig::try_new_exec(&partitions, partitions[0][0].schema(), None).unwrap();
        let concat = Arc::new(ConcatPartitionsExec::new(source));
        let batches = datafusion::physical_plan::collect(concat, Arc::new(TaskContext::default())).await.unwrap();
        let values: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
            .collect();
        let expected: Vec<i64> = (0..4).flat_map(|p| (0..5).map(move |b| p * 100 + b)).collect();
        assert_eq!(values, expected);
    }
}
