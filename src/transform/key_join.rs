//! Joins of a fact table to a dimension on one integer key, looked up in a bitmap of the
//! build side's keys instead of a hash table.
//!
//! The weekly job (lineitem ⋈ the orders of one year) probes a build side of sparse keys:
//! TPC-H SF10 has 2.28 M orders of 1995 among keys up to 60 M. DataFusion's hash table for them
//! takes 102 MB, and its probe, a cache miss per probed row for 60 M rows of which 85% find
//! nothing, was a third of the job's CPU. Its direct-array join needs 4 bytes a slot of the
//! key range (240 MB here). A bitmap of the range (one bit a key, 7.5 MB) with a count of the
//! bits set before every 64 (3.75 MB) maps a key to its rank among the build keys in one load
//! and a popcount, and turns most misses away at the bitmap.
//!
//! The build side keeps only the columns the join's output takes (rarely the key, once in the
//! bitmap), and rows that came in key order, as a dimension written by its key does, need no
//! index from rank to row: at SF10, 20 MB instead of 47 for the orders of 1995.
//!
//! [`KeyJoinRule`] replaces an inner `HashJoinExec` that builds once (`CollectLeft`) on one
//! integer key, with no other condition, by [`KeyJoinExec`]. At run time the build side
//! decides: when its key range is too wide for a bitmap of sensible size (or a key does not
//! fit 64 bits signed), the join runs as the `HashJoinExec` it replaced would have, over the
//! rows already collected. Rows come out as the hash join gives them: build columns then
//! probe columns, under its projection.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, RecordBatchOptions, UInt32Array, new_empty_array,
};
use datafusion::arrow::compute::{cast, concat, concat_batches, take};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, UInt64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{JoinType, NullEquality};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

/// A bitmap may take this much whatever the build side's size…
const MIN_BITMAP_BUDGET: usize = 16 << 20;
/// …and up to this many bytes a build row beyond it (a hash table takes ~45).
const BITMAP_BYTES_PER_ROW: usize = 16;

#[derive(Debug, Default)]
pub struct KeyJoinRule;

impl PhysicalOptimizerRule for KeyJoinRule {
    fn name(&self) -> &str {
        "KeyJoin"
    }

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if !KeyJoinExec::applies(join) {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(Arc::new(KeyJoinExec::new(node.clone())) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// An inner equi-join on one integer key, built once: a bitmap lookup when the build side's
/// keys allow it, the hash join it replaced when they do not.
pub struct KeyJoinExec {
    /// The `HashJoinExec` replaced.
    plan: Arc<dyn ExecutionPlan>,
    build: Arc<OnceCell<Built>>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for KeyJoinExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyJoinExec").field("join", &self.plan).finish()
    }
}

/// The build side, once collected, with the memory it holds counted in the session's pool
/// (as the hash join counts its table), so that `--memory-limit` bounds it.
struct Built {
    join: BuiltJoin,
    _reservation: Arc<MemoryReservation>,
}

enum BuiltJoin {
    Bitmap(Arc<KeyMap>),
    /// The key range is too wide: the hash join, over the collected rows.
    Hash(Arc<dyn ExecutionPlan>),
}

impl KeyJoinExec {
    fn new(plan: Arc<dyn ExecutionPlan>) -> Self {
        KeyJoinExec { plan, build: Arc::new(OnceCell::new()), metrics: ExecutionPlanMetricsSet::new() }
    }

    fn join(&self) -> &HashJoinExec {
        hash_join(&self.plan)
    }

    fn applies(join: &HashJoinExec) -> bool {
        let integer = |e: &Arc<dyn PhysicalExpr>, schema: &SchemaRef| {
            e.data_type(schema).is_ok_and(|t| {
                matches!(
                    t,
                    DataType::Int8
                        | DataType::Int16
                        | DataType::Int32
                        | DataType::Int64
                        | DataType::UInt8
                        | DataType::UInt16
                        | DataType::UInt32
                        | DataType::UInt64
                )
            })
        };
        let [(left, right)] = join.on() else {
            return false;
        };
        join.join_type == JoinType::Inner
            && join.filter.is_none()
            && join.mode == PartitionMode::CollectLeft
            && join.null_equality == NullEquality::NullEqualsNothing
            && !join.null_aware
            && join.fetch().is_none()
            && integer(left, &join.left.schema())
            && integer(right, &join.right.schema())
    }

    async fn build(plan: Arc<dyn ExecutionPlan>, context: Arc<TaskContext>) -> Result<Built> {
        let join = hash_join(&plan);
        let schema = join.left.schema();
        let reservation = Arc::new(MemoryConsumer::new("KeyJoinInput").register(context.memory_pool()));
        // The partitions a coalescing of the build side would interleave, read at once as it
        // would (each its own task, so that they decode on every core: polled together in
        // this one, they took turns on one, and W3's build took twice as long), but kept in
        // their order: a dimension stored in key order stays in it.
        let source = match join.left.downcast_ref::<CoalescePartitionsExec>() {
            Some(coalesce) if coalesce.fetch().is_none() => coalesce.input().clone(),
            _ => join.left.clone(),
        };
        let partitions = (0..source.properties().output_partitioning().partition_count())
            .map(|partition| {
                let (mut stream, reservation) = (source.execute(partition, context.clone())?, reservation.clone());
                Ok(SpawnedTask::spawn(async move {
                    let mut batches = Vec::new();
                    while let Some(batch) = stream.try_next().await? {
                        // Twice: the batches, then their concatenation, live together for a moment.
                        reservation.try_grow(2 * batch.get_array_memory_size())?;
                        batches.push(batch);
                    }
                    Ok::<_, DataFusionError>(batches)
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut batches: Vec<RecordBatch> = Vec::new();
        for partition in partitions {
            let collected = partition.join_unwind().await.map_err(|e| DataFusionError::External(Box::new(e)))?;
            batches.extend(collected?);
        }
        let key = &join.on()[0].0;
        let keys = batches.iter().map(|b| key.evaluate(b)?.into_array(b.num_rows())).collect::<Result<Vec<_>>>()?;
        if let Some(map) = KeyMap::build(&keys)? {
            drop(keys);
            // Only the columns the join's output takes are kept, each concatenated when the
            // others are not (a dimension's key, once in the bitmap, is seldom one of them).
            let used = |index: &usize| join.projection.as_ref().is_none_or(|p| p.contains(index));
            let mut columns = Vec::with_capacity(schema.fields().len());
            for index in 0..schema.fields().len() {
                let column = match used(&index) {
                    true if batches.is_empty() => Some(new_empty_array(schema.field(index).data_type())),
                    true => {
                        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(index).as_ref()).collect();
                        Some(concat(&parts)?)
                    }
                    false => None,
                };
                columns.push(column);
            }
            drop(batches);
            let kept = columns.iter().flatten().map(|c| c.get_array_memory_size()).sum::<usize>();
            reservation.try_resize(kept + map.index_bytes())?;
            let map = Arc::new(KeyMap { build_columns: columns, ..map });
            crate::allocator::give_back_freed_memory();
            return Ok(Built { join: BuiltJoin::Bitmap(map), _reservation: reservation });
        }
        let batch = concat_batches(&schema, &batches)?;
        drop(batches);
        // The hash join counts the table it builds over these rows itself.
        let memory = MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None)?;
        let hash = join.builder().with_new_children(vec![memory, join.right.clone()])?.build_exec()?;
        Ok(Built { join: BuiltJoin::Hash(hash), _reservation: reservation })
    }
}

/// The build side's rows by key: bit `k - min` of `bits` is set for each key `k` present;
/// `ranks[w]` counts the bits set in words before `w`; the rank of a key is the index in
/// `first` of its first row, whose other rows follow in `next`.
#[derive(Default)]
struct KeyMap {
    min: i64,
    range: u64,
    bits: Vec<u64>,
    ranks: Vec<u32>,
    /// None when the build rows came in ascending key order, one a key (a dimension written
    /// by its key): a key's rank is then its row.
    first: Option<Vec<u32>>,
    /// The next build row with the same key (`u32::MAX`: none); empty when keys are unique.
    next: Vec<u32>,
    /// The build side's columns; None for those the join's output does not take.
    build_columns: Vec<Option<ArrayRef>>,
}

const NONE: u32 = u32::MAX;

impl KeyMap {
    /// The map of the build side's keys, batch by batch as they came; None when their range
    /// is too wide for a bitmap worth having.
    fn build(chunks: &[ArrayRef]) -> Result<Option<KeyMap>> {
        let rows: usize = chunks.iter().map(|c| c.len()).sum();
        if rows >= NONE as usize {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            if matches!(chunk.data_type(), DataType::UInt64)
                && chunk.as_primitive::<UInt64Type>().iter().flatten().any(|v| v > i64::MAX as u64)
            {
                return Ok(None);
            }
            keys.push(cast(chunk, &DataType::Int64)?);
        }
        let keys: Vec<&Int64Array> = keys.iter().map(|k| k.as_primitive::<Int64Type>()).collect();
        let min = keys.iter().filter_map(|k| datafusion::arrow::compute::min(*k)).min();
        let max = keys.iter().filter_map(|k| datafusion::arrow::compute::max(*k)).max();
        let (Some(min), Some(max)) = (min, max) else {
            // No key at all: a bitmap of nothing matches nothing.
            return Ok(Some(KeyMap::default()));
        };
        let range = (max as i128 - min as i128 + 1) as u128;
        let words = range.div_ceil(64);
        let bytes = words.saturating_mul(12);
        let budget = MIN_BITMAP_BUDGET.max(rows.saturating_mul(BITMAP_BYTES_PER_ROW)) as u128;
        if range > u32::MAX as u128 || bytes > budget {
            return Ok(None);
        }
        let (range, words) = (range as u64, words as usize);
        let mut bits = vec![0u64; words];
        let mut duplicates = false;
        let mut ascending = keys.iter().all(|k| k.null_count() == 0);
        let mut previous = None;
        for key in keys.iter().flat_map(|k| k.iter()).flatten() {
            let offset = (key - min) as u64;
            let (word, bit) = ((offset >> 6) as usize, 1u64 << (offset & 63));
            duplicates |= bits[word] & bit != 0;
            bits[word] |= bit;
            ascending &= previous.is_none_or(|previous| previous < key);
            previous = Some(key);
        }
        let mut ranks = Vec::with_capacity(words);
        let mut count = 0u32;
        for word in &bits {
            ranks.push(count);
            count += word.count_ones();
        }
        if ascending {
            return Ok(Some(KeyMap { min, range, bits, ranks, ..KeyMap::default() }));
        }
        let mut first = vec![NONE; count as usize];
        let mut next = if duplicates { vec![NONE; rows] } else { Vec::new() };
        // Rows in reverse, so that each key's chain lists its rows in build order.
        let in_reverse = keys.iter().rev().flat_map(|k| k.iter().rev());
        for (row, key) in (0..rows).rev().zip(in_reverse) {
            let Some(key) = key else { continue };
            let rank = rank_of(&bits, &ranks, (key - min) as u64).expect("its bit is set") as usize;
            if duplicates {
                next[row] = first[rank];
            }
            first[rank] = row as u32;
        }
        Ok(Some(KeyMap { min, range, bits, ranks, first: Some(first), next, ..KeyMap::default() }))
    }

    /// What the lookup structures take beside the build rows.
    fn index_bytes(&self) -> usize {
        let first = self.first.as_ref().map_or(0, Vec::capacity);
        (self.bits.capacity() * 8) + (self.ranks.capacity() + first + self.next.capacity()) * 4
    }

    /// The (build row, probe row) pairs of a probe batch's keys.
    fn matches(&self, keys: &ArrayRef) -> Result<(UInt32Array, UInt32Array)> {
        let keys = cast(keys, &DataType::Int64)?;
        let keys = keys.as_primitive::<Int64Type>();
        let mut build = Vec::new();
        let mut probe = Vec::new();
        let values = keys.values();
        for (row, &key) in values.iter().enumerate() {
            let offset = key.wrapping_sub(self.min) as u64;
            if offset >= self.range || keys.is_null(row) {
                continue;
            }
            let Some(rank) = rank_of(&self.bits, &self.ranks, offset) else { continue };
            let mut build_row = self.first.as_ref().map_or(rank, |first| first[rank as usize]);
            while build_row != NONE {
                build.push(build_row);
                probe.push(row as u32);
                build_row = if self.next.is_empty() { NONE } else { self.next[build_row as usize] };
            }
        }
        Ok((UInt32Array::from(build), UInt32Array::from(probe)))
    }
}

fn hash_join(plan: &Arc<dyn ExecutionPlan>) -> &HashJoinExec {
    plan.downcast_ref::<HashJoinExec>().expect("a KeyJoinExec replaces a HashJoinExec")
}

/// The rank of `offset` among the set bits, if its bit is set.
#[inline]
fn rank_of(bits: &[u64], ranks: &[u32], offset: u64) -> Option<u32> {
    let word = (offset >> 6) as usize;
    let value = bits[word];
    let bit = 1u64 << (offset & 63);
    (value & bit != 0).then(|| ranks[word] + (value & (bit - 1)).count_ones())
}

impl DisplayAs for KeyJoinExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let (left, right) = &self.join().on()[0];
        write!(f, "KeyJoinExec: on=[({left}, {right})]")?;
        if let Some(projection) = &self.join().projection {
            write!(f, ", projection={:?}", projection.as_ref())?;
        }
        Ok(())
    }
}

impl ExecutionPlan for KeyJoinExec {
    fn name(&self) -> &str {
        "KeyJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.plan.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.join().left, &self.join().right]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.plan.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = Arc::clone(&self.plan).replace_children(children, options)?;
        if !plan.is::<HashJoinExec>() {
            return Err(DataFusionError::Internal("KeyJoinExec wraps a HashJoinExec".into()));
        }
        Ok(Arc::new(KeyJoinExec::new(plan)))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let (plan, build) = (self.plan.clone(), self.build.clone());
        // Which way the build side went (counted once, by the partition that built it).
        let bitmaps = MetricBuilder::new(&self.metrics).counter("key_bitmap_created_count", partition);
        let hashed = MetricBuilder::new(&self.metrics).counter("hash_join_fallback_count", partition);
        let schema = self.schema();
        let probe = self.join().right.execute(partition, context.clone())?;
        let output = schema.clone();
        let stream = futures::stream::once(async move {
            let built = build
                .get_or_try_init(|| async {
                    let built = KeyJoinExec::build(plan.clone(), context.clone()).await?;
                    match built.join {
                        BuiltJoin::Bitmap(_) => bitmaps.add(1),
                        BuiltJoin::Hash(_) => hashed.add(1),
                    }
                    Ok::<_, DataFusionError>(built)
                })
                .await?;
            let stream: SendableRecordBatchStream = match &built.join {
                BuiltJoin::Hash(hash) => {
                    // The probe side was started for the lookup; the hash join starts its own.
                    drop(probe);
                    hash.execute(partition, context)?
                }
                BuiltJoin::Bitmap(map) => {
                    let (map, batches) = (map.clone(), schema.clone());
                    let joined = probe.map(move |batch| joined(&map, hash_join(&plan), &batches, batch?));
                    Box::pin(RecordBatchStreamAdapter::new(schema, joined))
                }
            };
            Ok::<_, DataFusionError>(stream)
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(output, stream)))
    }
}

/// One probe batch joined: the hash join's columns (build, then probe) under its projection.
fn joined(map: &KeyMap, join: &HashJoinExec, output: &SchemaRef, probe: RecordBatch) -> Result<RecordBatch> {
    let keys = join.on()[0].1.evaluate(&probe)?.into_array(probe.num_rows())?;
    let (build_rows, probe_rows) = map.matches(&keys)?;
    let build_width = join.left.schema().fields().len();
    let column = |index: usize| -> Result<ArrayRef> {
        Ok(if index < build_width {
            let column = map.build_columns[index].as_ref();
            take(column.expect("the join's output takes it"), &build_rows, None)?
        } else {
            take(probe.column(index - build_width), &probe_rows, None)?
        })
    };
    let indices: Vec<usize> = match &join.projection {
        Some(projection) => projection.to_vec(),
        None => (0..build_width + probe.num_columns()).collect(),
    };
    let columns = indices.into_iter().map(column).collect::<Result<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(build_rows.len()));
    Ok(RecordBatch::try_new_with_options(output.clone(), columns, &options)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;

    fn map(keys: &[Option<i64>]) -> KeyMap {
        KeyMap::build(&[Arc::new(Int64Array::from(keys.to_vec())) as ArrayRef]).unwrap().unwrap()
    }

    fn pairs(map: &KeyMap, probe: &[Option<i64>]) -> Vec<(u32, u32)> {
        let (build, probe) = map.matches(&(Arc::new(Int64Array::from(probe.to_vec())) as ArrayRef)).unwrap();
        build.values().iter().copied().zip(probe.values().iter().copied()).collect()
    }

    #[test]
    fn keys_find_their_build_rows_and_nulls_find_nothing() {
        let map = map(&[Some(10), Some(75), None, Some(-3), Some(200)]);
        assert_eq!(
            pairs(&map, &[Some(75), Some(11), None, Some(-3), Some(200), Some(201), Some(-4), Some(i64::MIN)]),
            [(1, 0), (3, 3), (4, 4)]
        );
    }

    #[test]
    fn keys_in_ascending_order_are_their_own_rows() {
        let map = map(&[Some(-3), Some(10), Some(75), Some(200)]);
        assert!(map.first.is_none());
        assert_eq!(pairs(&map, &[Some(75), Some(11), None, Some(-3), Some(200), Some(201)]), [(2, 0), (0, 3), (3, 4)]);
        let unordered = self::map(&[Some(10), Some(-3)]);
        assert!(unordered.first.is_some());
        assert_eq!(pairs(&unordered, &[Some(-3), Some(10)]), [(1, 0), (0, 1)]);
        assert!(self::map(&[Some(1), None, Some(2)]).first.is_some(), "a null row has no rank");
    }

    #[test]
    fn keys_in_several_batches_find_the_rows_of_one() {
        let mut random = fastrand::Rng::with_seed(7);
        let keys: Vec<Option<i64>> = (0..5_000).map(|_| random.bool().then(|| random.i64(-50..3_000))).collect();
        let probe: Vec<Option<i64>> = (0..2_000).map(|_| Some(random.i64(-60..3_010))).collect();
        let chunks: Vec<ArrayRef> =
            keys.chunks(777).map(|c| Arc::new(Int64Array::from(c.to_vec())) as ArrayRef).collect();
        let chunked = KeyMap::build(&chunks).unwrap().unwrap();
        assert_eq!(pairs(&chunked, &probe), pairs(&map(&keys), &probe));
        let ascending: Vec<ArrayRef> = [vec![1i64, 5, 9], vec![], vec![12, 40]]
            .into_iter()
            .map(|c| Arc::new(Int64Array::from(c)) as ArrayRef)
            .collect();
        let ascending = KeyMap::build(&ascending).unwrap().unwrap();
        assert!(ascending.first.is_none());
        assert_eq!(pairs(&ascending, &[Some(40), Some(9), Some(10)]), [(4, 0), (2, 1)]);
    }

    #[test]
    fn duplicate_build_keys_each_match() {
        let map = map(&[Some(5), Some(6), Some(5), Some(5)]);
        assert_eq!(pairs(&map, &[Some(5), Some(6)]), [(0, 0), (2, 0), (3, 0), (1, 1)]);
    }

    #[test]
    fn ranks_agree_with_a_search_over_many_sparse_keys() {
        let mut random = fastrand::Rng::with_seed(3);
        let keys: Vec<Option<i64>> = (0..50_000).map(|_| Some(random.i64(0..4_000_000))).collect();
        let map = map(&keys);
        let probe: Vec<Option<i64>> = (0..20_000).map(|_| Some(random.i64(-10..4_000_010))).collect();
        let mut rows_of: std::collections::HashMap<i64, Vec<u32>> = Default::default();
        for (b, key) in keys.iter().enumerate() {
            rows_of.entry(key.unwrap()).or_default().push(b as u32);
        }
        let mut expected = Vec::new();
        for (p, key) in probe.iter().enumerate() {
            for &b in rows_of.get(&key.unwrap()).into_iter().flatten() {
                expected.push((b, p as u32));
            }
        }
        let mut found = pairs(&map, &probe);
        found.sort_by_key(|&(b, p)| (p, b));
        expected.sort_by_key(|&(b, p)| (p, b));
        assert_eq!(found, expected);
    }

    #[tokio::test]
    async fn the_build_side_counts_in_the_memory_limit() {
        use datafusion::execution::memory_pool::GreedyMemoryPool;
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        use datafusion::execution::session_state::SessionStateBuilder;
        use datafusion::prelude::{SessionConfig, SessionContext};

        let run = |limit: usize| async move {
            let runtime = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(GreedyMemoryPool::new(limit)));
            let state = SessionStateBuilder::new()
                .with_config(SessionConfig::new().with_target_partitions(2))
                .with_runtime_env(runtime.build_arc()?)
                .with_default_features()
                .with_physical_optimizer_rule(Arc::new(KeyJoinRule))
                .build();
            let context = SessionContext::new_with_state(state);
            let column = |values: Vec<i64>| -> Result<RecordBatch> {
                Ok(RecordBatch::try_from_iter([("k", Arc::new(Int64Array::from(values)) as ArrayRef)])?)
            };
            context.register_batch("dimension", column((0..200_000).collect())?)?;
            context.register_batch("facts", column((0..50_000).map(|k| k * 3 % 300_000).collect())?)?;
            let sql = "SELECT count(*) FROM dimension AS d JOIN facts AS f ON d.k = f.k";
            let plan = context.sql(sql).await?.create_physical_plan().await?;
            let shown = datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string();
            assert!(shown.contains("KeyJoinExec"), "{shown}");
            datafusion::physical_plan::collect(plan, context.task_ctx()).await
        };
        let counted = run(64 << 20).await.unwrap();
        assert_eq!(counted[0].column(0).as_primitive::<Int64Type>().value(0), 50_000);
        let error = run(256 << 10).await.unwrap_err().to_string();
        assert!(error.contains("KeyJoinInput"), "{error}");
    }

    #[test]
    fn a_range_too_wide_for_its_rows_takes_the_hash_join() {
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![0, 1 << 40]));
        assert!(KeyMap::build(&[keys]).unwrap().is_none());
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![0, 100_000_000]));
        assert!(KeyMap::build(&[keys]).unwrap().is_none(), "two rows do not earn a 19 MB bitmap");
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![0, 1_000_000]));
        assert!(KeyMap::build(&[keys]).unwrap().is_some(), "within the fixed budget");
    }
}
