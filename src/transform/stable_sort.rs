//! A stable sort of everything a target writes, in memory, in one pass over its rows.
//!
//! DataFusion's sort is not stable, so [`super::write_order`] numbers the rows and sorts by the
//! number last. That makes every sort a sort on two or more keys, which DataFusion merges in its
//! row format: each partition's batches are sorted one by one, merged into one run per
//! partition, and the partitions merged again, copying every column three times.
//!
//! When the session has no memory limit, nothing would spill anyway: this node keeps every
//! batch its input's partitions produce (reading them all at once, each sorted where it is
//! read), orders references to the rows by their keys and then by their place in the input,
//! and copies each column once more, into the batches it emits. Under a memory limit the
//! numbered sort stays, as it spills. W1 (TPC-H SF1 lineitem, CSV to Parquet) sorted by its
//! default (`l_shipdate`), over the same job unsorted: 1.65 to 1.73 × the wall and 1.6 × the
//! CPU the numbered way, 1.47 × and 1.3 × this way.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{interleave_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::row::{Row, RowConverter, Rows, SortField};
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;
use rayon::slice::ParallelSliceMut;

use super::write_order::only_child;

/// Rows in a batch this node emits. Each output batch takes a stretch of rows from every
/// sorted input batch; longer batches make longer stretches, read with fewer cache misses (W1
/// took 9.4 to 9.7 s of CPU at DataFusion's 8,192 rows a batch, 8.1 to 8.6 s at this size).
const OUTPUT_BATCH_ROWS: usize = 256 * 1024;

/// One partition: every row of its input's partitions, ordered by `expr`, rows its keys do
/// not tell apart in input order (partition by partition, each in its own order).
#[derive(Debug)]
pub struct StableSortExec {
    input: Arc<dyn ExecutionPlan>,
    expr: LexOrdering,
    properties: Arc<PlanProperties>,
}

impl StableSortExec {
    pub fn new(expr: LexOrdering, input: Arc<dyn ExecutionPlan>) -> Self {
        let mut equivalences = EquivalenceProperties::new(input.schema());
        equivalences.add_ordering(expr.iter().cloned());
        let properties = Arc::new(PlanProperties::new(
            equivalences,
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            input.boundedness(),
        ));
        StableSortExec { input, expr, properties }
    }

    /// Whether the keys have a row format to compare them in (DataFusion's sort takes more).
    pub fn supports(expr: &LexOrdering, input: &Schema) -> bool {
        let types: Result<Vec<DataType>> = expr.iter().map(|sort| sort.expr.data_type(input)).collect();
        types.is_ok_and(|types| {
            let fields: Vec<SortField> = types.into_iter().map(SortField::new).collect();
            RowConverter::supports_fields(&fields)
        })
    }
}

impl DisplayAs for StableSortExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StableSortExec: expr=[{}]", self.expr)
    }
}

impl ExecutionPlan for StableSortExec {
    fn name(&self) -> &str {
        "StableSortExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut recursion = TreeNodeRecursion::Continue;
        for sort in self.expr.iter() {
            recursion = f(&sort.expr)?;
            if recursion == TreeNodeRecursion::Stop {
                break;
            }
        }
        Ok(recursion)
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
        let input = only_child(children, "StableSortExec")?;
        Ok(Arc::new(StableSortExec::new(self.expr.clone(), input)))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, _partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let fields = self
            .expr
            .iter()
            .map(|sort| Ok(SortField::new_with_options(sort.expr.data_type(&schema)?, sort.options)))
            .collect::<Result<Vec<_>>>()?;
        let converter = Arc::new(RowConverter::new(fields)?);
        // Every partition read at once, each keeping its batches and their keys' rows.
        let tasks = (0..self.input.output_partitioning().partition_count())
            .map(|partition| {
                let stream = self.input.execute(partition, context.clone())?;
                Ok(SpawnedTask::spawn(keyed_batches(stream, self.expr.clone(), converter.clone())))
            })
            .collect::<Result<Vec<_>>>()?;
        let sorted = futures::stream::once(async move {
            let mut keyed = Vec::new();
            for task in tasks {
                keyed.extend(task.join_unwind().await.map_err(|e| DataFusionError::External(Box::new(e)))??);
            }
            let order = SpawnedTask::spawn_blocking(move || {
                let order = input_order_within_keys(&keyed);
                (keyed.into_iter().map(|k| k.sorted).collect::<Vec<_>>(), order)
            })
            .join_unwind()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok::<_, DataFusionError>(order)
        })
        .flat_map(move |ordered| match ordered {
            Ok((batches, order)) => emit(batches, order, OUTPUT_BATCH_ROWS).boxed(),
            Err(e) => futures::stream::iter([Err(e)]).boxed(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, sorted)))
    }
}

/// A batch of the input sorted by its keys (ties in input order), and those keys.
struct KeyedBatch {
    sorted: RecordBatch,
    keys: SortedKeys,
}

/// A sorted batch's keys in DataFusion's row format (compared byte by byte).
enum SortedKeys {
    /// Keys of one width, at most eight bytes: each row's bytes, as a number (most sort keys:
    /// a date is five bytes, an integer of 32 bits too). Nothing else needs keeping.
    Narrow { width: usize, prefixes: Vec<u64> },
    /// The rows, in the batch's order before it was sorted, and for each sorted row its row in
    /// them.
    Wide { rows: Rows, unsorted_row: Vec<u32> },
}

impl KeyedBatch {
    fn key(&self, sorted_row: usize) -> KeyBytes<'_> {
        match &self.keys {
            SortedKeys::Narrow { width, prefixes } => KeyBytes::Narrow(prefixes[sorted_row].to_be_bytes(), *width),
            SortedKeys::Wide { rows, unsorted_row } => KeyBytes::Row(rows.row(unsorted_row[sorted_row] as usize)),
        }
    }

    fn narrow_width(&self) -> Option<usize> {
        match &self.keys {
            SortedKeys::Narrow { width, .. } => Some(*width),
            SortedKeys::Wide { .. } => None,
        }
    }
}

/// A key's bytes in the row format.
enum KeyBytes<'a> {
    Narrow([u8; 8], usize),
    Row(Row<'a>),
}

impl AsRef<[u8]> for KeyBytes<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            KeyBytes::Narrow(bytes, width) => &bytes[..*width],
            KeyBytes::Row(row) => row.data(),
        }
    }
}

async fn keyed_batches(
    mut stream: SendableRecordBatchStream,
    expr: LexOrdering,
    converter: Arc<RowConverter>,
) -> Result<Vec<KeyedBatch>> {
    let mut keyed = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let columns = expr
            .iter()
            .map(|sort| sort.expr.evaluate(&batch).and_then(|value| value.into_array(batch.num_rows())))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let rows = converter.convert_columns(&columns)?;
        // Sorted here, each batch is read in order by the copy into the output: the rows a
        // batch gives an output batch lie side by side, in cache, where a gather from the
        // unsorted batches would miss it at nearly every row.
        let places = (0..rows.num_rows() as u64).collect();
        let (order, narrow) = by_keys(places, |row| rows.row(row as usize), false);
        let unsorted_row: Vec<u32> = order.into_iter().map(|row| row as u32).collect();
        let sorted = take_record_batch(&batch, &UInt32Array::from(unsorted_row.clone()))?;
        let keys = match narrow {
            Some((width, prefixes)) => SortedKeys::Narrow { width, prefixes },
            None => SortedKeys::Wide { rows, unsorted_row },
        };
        keyed.push(KeyedBatch { sorted, keys });
    }
    Ok(keyed)
}

/// Where each output row comes from: (batch, row of the sorted batch) pairs in key order, ties
/// in input order.
fn input_order_within_keys(keyed: &[KeyedBatch]) -> Vec<u64> {
    let width = keyed.first().and_then(KeyedBatch::narrow_width);
    if width.is_some() && keyed.iter().all(|k| k.narrow_width() == width) {
        let mut packed: Vec<u128> = Vec::with_capacity(keyed.iter().map(|k| k.sorted.num_rows()).sum());
        for (batch, k) in keyed.iter().enumerate() {
            if let SortedKeys::Narrow { prefixes, .. } = &k.keys {
                let places = (0..prefixes.len() as u64).map(|row| (batch as u64) << 32 | row);
                packed.extend(prefixes.iter().zip(places).map(|(prefix, place)| pack(*prefix, place)));
            }
        }
        packed.par_sort_unstable();
        return packed.into_iter().map(|p| p as u64).collect();
    }
    let places = keyed
        .iter()
        .enumerate()
        .flat_map(|(batch, k)| (0..k.sorted.num_rows() as u64).map(move |row| (batch as u64) << 32 | row))
        .collect();
    let key = |place: u64| {
        let (batch, row) = batch_and_row(place);
        keyed[batch].key(row)
    };
    by_keys(places, key, true).0
}

/// A place as `input_order_within_keys` numbers it: its batch above 32 bits, its row below.
fn batch_and_row(place: u64) -> (usize, usize) {
    ((place >> 32) as usize, (place & u64::from(u32::MAX)) as usize)
}

/// A key's first bytes above its place: numbers that sort as (key, place) do.
fn pack(prefix: u64, place: u64) -> u128 {
    u128::from(prefix) << 64 | u128::from(place)
}

/// `places` ordered by their keys, then by place, and when the keys are narrow (one width
/// within eight bytes) that width and their bytes as numbers, in the same order. No two items
/// share a place, so an unstable sort gives the stable order.
fn by_keys<K: AsRef<[u8]>>(
    places: Vec<u64>,
    key: impl Fn(u64) -> K + Sync,
    parallel: bool,
) -> (Vec<u64>, Option<(usize, Vec<u64>)>) {
    let Some(first) = places.first() else {
        return (places, None);
    };
    let width = key(*first).as_ref().len();
    // Keys of one width within eight bytes are ordered by those bytes alone: sorting numbers
    // (key bytes above place) then compares no rows. Otherwise equal prefixes compare whole
    // keys (zero padding would tie a key with one extended by zeros).
    if width <= 8 && places.iter().all(|p| key(*p).as_ref().len() == width) {
        let mut packed: Vec<u128> = places.iter().map(|p| pack(prefix(key(*p).as_ref()), *p)).collect();
        match parallel {
            true => packed.par_sort_unstable(),
            false => packed.sort_unstable(),
        }
        let prefixes = packed.iter().map(|p| (p >> 64) as u64).collect();
        return (packed.into_iter().map(|p| p as u64).collect(), Some((width, prefixes)));
    }
    let mut prefixed: Vec<(u64, u64)> = places.into_iter().map(|p| (prefix(key(p).as_ref()), p)).collect();
    let compare = |a: &(u64, u64), b: &(u64, u64)| {
        a.0.cmp(&b.0).then_with(|| key(a.1).as_ref().cmp(key(b.1).as_ref())).then_with(|| a.1.cmp(&b.1))
    };
    match parallel {
        true => prefixed.par_sort_unstable_by(compare),
        false => prefixed.sort_unstable_by(compare),
    }
    (prefixed.into_iter().map(|(_, p)| p).collect(), None)
}

/// A key's first eight bytes, zero-padded, as a number that orders as they do.
fn prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// The rows at `places`, in that order, in batches of `batch_rows`, each column copied once.
fn emit(
    batches: Vec<RecordBatch>,
    places: Vec<u64>,
    batch_rows: usize,
) -> impl futures::Stream<Item = Result<RecordBatch>> {
    let starts = (0..places.len()).step_by(batch_rows.max(1));
    futures::stream::iter(starts).map(move |start| {
        let end = (start + batch_rows).min(places.len());
        let sources: Vec<&RecordBatch> = batches.iter().collect();
        let rows: Vec<(usize, usize)> = places[start..end].iter().map(|p| batch_and_row(*p)).collect();
        Ok(interleave_record_batch(&sources, &rows)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int32Array, Int64Array, StringArray};
    use datafusion::arrow::compute::SortOptions;
    use datafusion::arrow::datatypes::{Field, SchemaRef};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_expr::PhysicalSortExpr;
    use datafusion::physical_expr::expressions::Column;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("place", DataType::Int64, false),
        ]))
    }

    fn batch(keys: &[Option<&str>], places: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![Arc::new(StringArray::from(keys.to_vec())), Arc::new(Int64Array::from(places.to_vec()))],
        )
        .unwrap()
    }

    async fn sorted(partitions: Vec<Vec<RecordBatch>>, options: SortOptions) -> Vec<(Option<String>, i64)> {
        let source = MemorySourceConfig::try_new_exec(&partitions, schema(), None).unwrap();
        let key = PhysicalSortExpr::new(Arc::new(Column::new("key", 0)), options);
        let sort = Arc::new(StableSortExec::new(LexOrdering::new([key]).unwrap(), source));
        let context = Arc::new(TaskContext::default());
        let batches = datafusion::physical_plan::collect(sort, context).await.unwrap();
        batches
            .iter()
            .flat_map(|b| {
                let keys = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
                let places = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
                (0..b.num_rows()).map(|i| (keys.is_valid(i).then(|| keys.value(i).to_string()), places.value(i)))
            })
            .collect()
    }

    #[tokio::test]
    async fn equal_keys_keep_partition_then_input_order() {
        // Keys longer than the 8-byte prefix, equal in it: the whole key decides.
        let long_b = "same-prefix-b";
        let long_a = "same-prefix-a";
        let partitions = vec![
            vec![
                batch(&[Some("b"), Some(long_b), None, Some("a")], &[0, 1, 2, 3]),
                batch(&[Some("b"), Some(long_a)], &[4, 5]),
            ],
            // Short keys of one width (kept as numbers) beside wide ones (kept as rows).
            vec![batch(&[Some("a"), Some("b"), None], &[6, 7, 8]), batch(&[Some("a"), Some("c")], &[9, 10])],
        ];
        let rows = sorted(partitions, SortOptions { descending: false, nulls_first: false }).await;
        let places: Vec<i64> = rows.iter().map(|(_, p)| *p).collect();
        assert_eq!(places, vec![3, 6, 9, 0, 4, 7, 10, 5, 1, 2, 8]);
    }

    #[tokio::test]
    async fn narrow_keys_sort_by_their_bytes_alone_and_keep_ties_in_input_order() {
        // An Int32 key is five bytes in the row format: the packed path, no row compared.
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Int32, true),
            Field::new("place", DataType::Int64, false),
        ]));
        let batch = |keys: &[Option<i32>], places: &[i64]| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int32Array::from(keys.to_vec())), Arc::new(Int64Array::from(places.to_vec()))],
            )
            .unwrap()
        };
        let partitions = vec![
            vec![batch(&[Some(2), Some(-1), None, Some(2)], &[0, 1, 2, 3]), batch(&[Some(-1), Some(7)], &[4, 5])],
            vec![batch(&[Some(2), None, Some(-1)], &[6, 7, 8])],
        ];
        let source = MemorySourceConfig::try_new_exec(&partitions, schema.clone(), None).unwrap();
        let key = PhysicalSortExpr::new(Arc::new(Column::new("key", 0)), SortOptions::default());
        let sort = Arc::new(StableSortExec::new(LexOrdering::new([key]).unwrap(), source));
        let batches = datafusion::physical_plan::collect(sort, Arc::new(TaskContext::default())).await.unwrap();
        let places: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(1).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
            .collect();
        // Ascending, nulls first (DataFusion's default options).
        assert_eq!(places, vec![2, 7, 1, 4, 8, 0, 3, 6, 5]);
    }

    #[tokio::test]
    async fn descending_with_nulls_first() {
        let partitions = vec![vec![batch(&[Some("a"), None, Some("c"), Some("a")], &[0, 1, 2, 3])]];
        let rows = sorted(partitions, SortOptions { descending: true, nulls_first: true }).await;
        let places: Vec<i64> = rows.iter().map(|(_, p)| *p).collect();
        assert_eq!(places, vec![1, 2, 0, 3]);
    }

    #[tokio::test]
    async fn no_rows_no_batches() {
        let rows = sorted(vec![vec![], vec![]], SortOptions::default()).await;
        assert!(rows.is_empty());
    }
}
