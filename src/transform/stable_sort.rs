//! A stable sort of everything a target writes, in memory, in one pass over its rows.
//!
//! DataFusion's sort is not stable, so [`super::write_order`] numbers the rows and sorts by the
//! number last. That makes every sort a sort on two or more keys, which DataFusion merges in its
//! row format: each partition's batches are sorted one by one, merged into one run per
//! partition, and the partitions merged again, copying every column three times.
//!
//! When the session has no memory limit, nothing would spill anyway: this node keeps every
//! row its input's partitions produce (reading them all at once, sorting them as they are read
//! in groups of [`GROUP_ROWS`] on rayon's pool), orders each group's runs of equal keys by key
//! and then by group, and copies each column once more, into the batches it emits, run by run
//! where runs are long (a key value takes many rows of a group). Under a memory limit the
//! numbered sort stays, as it spills. W1 (TPC-H SF1 lineitem, CSV to Parquet) sorted by its
//! default (`l_shipdate`), over the same job unsorted: 1.65 to 1.73 × the wall and 1.6 × the
//! CPU the numbered way; this way, 1.51 × and 1.41 × sorting 8,192-row batches and copying the
//! output row by row, 1.39 × and 1.27 × with groups and stretches (profiling build, medians of
//! 4 alternating runs); 1.22 × and 1.22 × with the groups sorted beside the reading and runs,
//! not rows, ordered (medians of 5); 1.19 × and 1.19 × with each group copied whole before it is
//! sorted.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayData, ArrayRef, AsArray, Capacities, MutableArrayData, RecordBatch, RecordBatchOptions, UInt32Array,
    make_array,
};
use datafusion::arrow::buffer::ScalarBuffer;
use datafusion::arrow::compute::{concat_batches, interleave, take_record_batch};
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
use crate::pool::on_rayon;

/// Rows in a batch this node emits. Each output batch takes a stretch of rows from every
/// sorted input batch; longer batches make longer stretches, read with fewer cache misses (W1
/// took 9.4 to 9.7 s of CPU at DataFusion's 8,192 rows a batch, 8.1 to 8.6 s at this size).
const OUTPUT_BATCH_ROWS: usize = 256 * 1024;

/// DataFusion's batch size, which a session changes only to ask for smaller batches.
const DEFAULT_BATCH_ROWS: usize = 8192;

/// Input rows sorted together, as one batch, before the sort of everything. For each key value
/// the output takes one stretch of each group, copied whole: longer with larger groups (W1
/// sorted by date: ~26 rows from groups of this size, ~3 from DataFusion's 8,192-row batches).
const GROUP_ROWS: usize = 64 * 1024;

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
        // The writer starts a new file only between batches: a batch is not longer than the
        // file the session asks for (`etl compact --target-file-size`).
        let file_rows = context.session_config().options().execution.soft_max_rows_per_output_file.get();
        // Nor longer than the session's batches where it asks for batches smaller than
        // DataFusion's own: row groups sized in bytes learn a row's size from a first batch
        // (see `sink::parquet`), and a memory limit bounds what a batch may hold.
        let session_rows = context.session_config().batch_size();
        let batch_rows = match session_rows < DEFAULT_BATCH_ROWS {
            true => session_rows,
            false => OUTPUT_BATCH_ROWS,
        };
        let batch_rows = batch_rows.min(file_rows);
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
            Ok((batches, order)) => emit(batches, order, batch_rows).boxed(),
            Err(e) => futures::stream::iter([Err(e)]).boxed(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, sorted)))
    }
}

/// A batch of the input sorted by its keys (ties in input order), cut into runs of equal keys.
struct KeyedBatch {
    sorted: RecordBatch,
    /// The sorted row each run starts at; a run ends where the next starts.
    run_starts: Vec<u32>,
    keys: SortedKeys,
}

/// A sorted batch's keys in DataFusion's row format (compared byte by byte).
enum SortedKeys {
    /// Keys of one width, at most eight bytes: each run's bytes, as a number (most sort keys:
    /// a date is five bytes, an integer of 32 bits too). Nothing else needs keeping.
    Narrow { width: usize, prefixes: Vec<u64> },
    /// The rows, in the batch's order before it was sorted, and for each sorted row its row in
    /// them.
    Wide { rows: Rows, unsorted_row: ScalarBuffer<u32> },
}

impl KeyedBatch {
    fn run_key(&self, run: usize) -> KeyBytes<'_> {
        match &self.keys {
            SortedKeys::Narrow { width, prefixes } => KeyBytes::Narrow(prefixes[run].to_be_bytes(), *width),
            SortedKeys::Wide { rows, unsorted_row } => {
                KeyBytes::Row(rows.row(unsorted_row[self.run_starts[run] as usize] as usize))
            }
        }
    }

    fn run(&self, batch: usize, run: usize) -> Run {
        let end = self.run_starts.get(run + 1).map_or(self.sorted.num_rows(), |next| *next as usize);
        Run { batch, start: self.run_starts[run] as usize, end }
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
    // Groups are sorted beside the reading, on rayon's pool: a reader waiting for this task
    // to sort would leave the cores decoding ahead of it idle (W1 kept 1.75 of 2 cores busy
    // while it read).
    let mut sorting = Vec::new();
    let mut group = Vec::new();
    let mut rows = converter.empty_rows(0, 0);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let columns = expr
            .iter()
            .map(|sort| sort.expr.evaluate(&batch).and_then(|value| value.into_array(batch.num_rows())))
            .collect::<Result<Vec<ArrayRef>>>()?;
        converter.append(&mut rows, &columns)?;
        group.push(batch);
        if rows.num_rows() >= GROUP_ROWS {
            let full = std::mem::replace(&mut rows, converter.empty_rows(0, 0));
            let batches = std::mem::take(&mut group);
            sorting.push(sorted_group_on_rayon(batches, full));
        }
    }
    if !group.is_empty() {
        sorting.push(sorted_group_on_rayon(group, rows));
    }
    futures::future::try_join_all(sorting).await
}

/// `sorted_group`, started now on rayon's pool.
fn sorted_group_on_rayon(batches: Vec<RecordBatch>, rows: Rows) -> impl Future<Output = Result<KeyedBatch>> {
    let sorted = on_rayon("the sort of a group of rows", move || sorted_group(batches, rows));
    async move { sorted.await.map_err(crate::error::Error::into_datafusion)? }
}

/// A group of input batches as one batch sorted by their keys (`rows`, in the batches' order).
/// Sorted here, each group is read in order by the copy into the output: the rows a group
/// gives an output batch lie side by side, in cache, where a gather from the unsorted batches
/// would miss it at nearly every row.
fn sorted_group(batches: Vec<RecordBatch>, rows: Rows) -> Result<KeyedBatch> {
    let places = (0..rows.num_rows() as u64).collect();
    let (order, narrow) = by_keys(places, |row| rows.row(row as usize), false);
    let unsorted_row = UInt32Array::from_iter_values(order.into_iter().map(|row| row as u32));
    // Copied whole first (a memcpy a column), the group is gathered from one batch: `take`
    // is a plain indexed load, where `interleave` from several batches looked each row's
    // batch up first (W1 sorted: 11.5 s of CPU, where it took 12.3).
    let whole = match batches.as_slice() {
        [batch] => batch.clone(),
        _ => concat_batches(&batches[0].schema(), &batches)?,
    };
    // The input batches go before the sorted copy is made: two copies of the group at most.
    drop(batches);
    let sorted = take_record_batch(&whole, &unsorted_row)?;
    let unsorted_row = unsorted_row.into_parts().1;
    let (run_starts, keys) = match narrow {
        Some((width, prefixes)) => {
            let starts = starts_of_runs(prefixes.len(), |row| prefixes[row] != prefixes[row - 1]);
            let prefixes = starts.iter().map(|row| prefixes[*row as usize]).collect();
            (starts, SortedKeys::Narrow { width, prefixes })
        }
        None => {
            let key = |sorted_row: usize| rows.row(unsorted_row[sorted_row] as usize);
            let starts = starts_of_runs(unsorted_row.len(), |row| key(row) != key(row - 1));
            (starts, SortedKeys::Wide { rows, unsorted_row })
        }
    };
    Ok(KeyedBatch { sorted, run_starts, keys })
}

/// Where the runs of `rows` sorted rows start, given whether a row's key differs from the
/// row's before it.
fn starts_of_runs(rows: usize, differs_from_previous: impl Fn(usize) -> bool) -> Vec<u32> {
    (0..rows).filter(|&row| row == 0 || differs_from_previous(row)).map(|row| row as u32).collect()
}

/// The runs of every sorted batch in key order, ties in input order: each batch's runs are in
/// order, and a key takes at most one run of each batch.
fn input_order_within_keys(keyed: &[KeyedBatch]) -> Vec<Run> {
    let run = |place: u64| {
        let (batch, run) = batch_and_run(place);
        keyed[batch].run(batch, run)
    };
    let width = keyed.first().and_then(KeyedBatch::narrow_width);
    if width.is_some() && keyed.iter().all(|k| k.narrow_width() == width) {
        let mut packed: Vec<u128> = Vec::with_capacity(keyed.iter().map(|k| k.run_starts.len()).sum());
        for (batch, k) in keyed.iter().enumerate() {
            if let SortedKeys::Narrow { prefixes, .. } = &k.keys {
                let places = (0..prefixes.len() as u64).map(|run| (batch as u64) << 32 | run);
                packed.extend(prefixes.iter().zip(places).map(|(prefix, place)| pack(*prefix, place)));
            }
        }
        // Each batch's runs are in order already: the merge sort finds them and merges them.
        packed.par_sort();
        return packed.into_iter().map(|p| run(p as u64)).collect();
    }
    let places = keyed
        .iter()
        .enumerate()
        .flat_map(|(batch, k)| (0..k.run_starts.len() as u64).map(move |run| (batch as u64) << 32 | run))
        .collect();
    let key = |place: u64| {
        let (batch, run) = batch_and_run(place);
        keyed[batch].run_key(run)
    };
    by_keys(places, key, true).0.into_iter().map(run).collect()
}

/// A place as `input_order_within_keys` numbers it: its batch above 32 bits, its run below.
fn batch_and_run(place: u64) -> (usize, usize) {
    ((place >> 32) as usize, (place & u64::from(u32::MAX)) as usize)
}

/// A key's first bytes above its place: numbers that sort as (key, place) do.
fn pack(prefix: u64, place: u64) -> u128 {
    u128::from(prefix) << 64 | u128::from(place)
}

/// `places` ordered by their keys, then by place, and when the keys are narrow (one width
/// within eight bytes) that width and their bytes as numbers, in the same order. No two items
/// share a place, so an unstable sort gives the stable order; the parallel sort, of groups
/// sorted one by one, is rayon's merge sort, which merges the runs it finds.
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
            true => packed.par_sort(),
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
        true => prefixed.par_sort_by(compare),
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

/// The rows of `runs`, in that order, in batches of `batch_rows`, each column copied once.
fn emit(
    batches: Vec<RecordBatch>,
    runs: Vec<Run>,
    batch_rows: usize,
) -> impl futures::Stream<Item = Result<RecordBatch>> {
    // Each column's sources for the copies by run, once for every output batch; `None` for a
    // column gathered row by row.
    let columns: Vec<Option<Vec<ArrayData>>> = match batches.first() {
        Some(first) => (first.schema().fields().iter().enumerate())
            .map(|(column, field)| {
                copied_by_run(field.data_type())
                    .then(|| batches.iter().map(|batch| batch.column(column).to_data()).collect())
            })
            .collect(),
        None => Vec::new(),
    };
    futures::stream::iter(output_batches(runs, batch_rows)).map(move |runs| gather(&batches, &columns, &runs))
}

/// Consecutive output rows from consecutive rows of one sorted group: every key value takes a
/// stretch of each group, as long as the group's share of that value.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Run {
    batch: usize,
    start: usize,
    end: usize,
}

/// `runs` cut where each output batch of `batch_rows` ends (the last may have fewer), runs
/// that follow each other in a sorted batch joined.
fn output_batches(runs: Vec<Run>, batch_rows: usize) -> Vec<Vec<Run>> {
    let batch_rows = batch_rows.max(1);
    let mut batches = Vec::new();
    let mut current: Vec<Run> = Vec::new();
    let mut rows = 0;
    for mut run in runs {
        while run.start < run.end {
            let taken = (run.end - run.start).min(batch_rows - rows);
            match current.last_mut() {
                Some(last) if last.batch == run.batch && last.end == run.start => last.end += taken,
                _ => current.push(Run { end: run.start + taken, ..run }),
            }
            run.start += taken;
            rows += taken;
            if rows == batch_rows {
                batches.push(std::mem::take(&mut current));
                rows = 0;
            }
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Runs shorter than this on average are gathered row by row: a copy per run and column costs
/// about what a few rows' gather does.
const MIN_AVERAGE_RUN: usize = 4;

/// The rows of `runs`, copied run by run where runs are long (a key of few values, such as a
/// date), else row by row.
fn gather(batches: &[RecordBatch], columns: &[Option<Vec<ArrayData>>], runs: &[Run]) -> Result<RecordBatch> {
    let schema = batches[0].schema();
    let row_count: usize = runs.iter().map(|run| run.end - run.start).sum();
    let row_by_row = runs.len() * MIN_AVERAGE_RUN > row_count;
    let rows: Vec<(usize, usize)> = match row_by_row || columns.iter().any(Option::is_none) {
        true => runs.iter().flat_map(|run| (run.start..run.end).map(|row| (run.batch, row))).collect(),
        false => Vec::new(),
    };
    let columns = (columns.iter().enumerate())
        .map(|(column, sources)| {
            let Some(sources) = sources.as_ref().filter(|_| !row_by_row) else {
                let values: Vec<&dyn Array> = batches.iter().map(|batch| batch.column(column).as_ref()).collect();
                return Ok(interleave(&values, &rows)?);
            };
            let capacities = match value_bytes(batches, column, runs) {
                Some(bytes) => Capacities::Binary(row_count, Some(bytes)),
                None => Capacities::Array(row_count),
            };
            let mut copied = MutableArrayData::with_capacities(sources.iter().collect(), false, capacities);
            for run in runs {
                copied.try_extend(run.batch, run.start, run.end)?;
            }
            Ok(make_array(copied.freeze()))
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new_with_options(schema, columns, &RecordBatchOptions::new().with_row_count(Some(row_count)))?)
}

/// Whether `MutableArrayData` copies a run of this type as it is. A view or dictionary array
/// it builds takes every source's buffers or dictionary, however few rows it copies of them
/// (each output batch would hold all of them); those columns are gathered row by row.
fn copied_by_run(data_type: &DataType) -> bool {
    data_type.is_primitive()
        || matches!(
            data_type,
            DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::FixedSizeBinary(_)
        )
}

/// The bytes the runs take of a string or binary column with 32-bit offsets (reserved at
/// once, not grown run by run).
fn value_bytes(batches: &[RecordBatch], column: usize, runs: &[Run]) -> Option<usize> {
    let offsets: Vec<&[i32]> = batches
        .iter()
        .map(|batch| {
            let array = batch.column(column);
            match array.data_type() {
                DataType::Utf8 => Some(array.as_string::<i32>().value_offsets()),
                DataType::Binary => Some(array.as_binary::<i32>().value_offsets()),
                _ => None,
            }
        })
        .collect::<Option<_>>()?;
    Some(runs.iter().map(|run| (offsets[run.batch][run.end] - offsets[run.batch][run.start]) as usize).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{DictionaryArray, Int32Array, Int64Array, StringArray, StringViewArray};
    use datafusion::arrow::compute::{SortOptions, cast};
    use datafusion::arrow::datatypes::{Field, Int32Type, Int64Type, SchemaRef};
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

    /// 300 key values and nulls over 300,000 rows in two partitions of several groups, sorted
    /// by `key` (`key_of`'s order): each key takes a run of every group, merged in group order.
    async fn many_groups_keep_input_order(key: ArrayRef, key_of: impl Fn(i64) -> Option<i32>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", key.data_type().clone(), true),
            Field::new("place", DataType::Int64, false),
        ]));
        let partitions: Vec<Vec<RecordBatch>> = (0..2)
            .map(|partition| {
                (0..15)
                    .map(|index| {
                        let start = (partition * 15 + index) * 10_000;
                        let places: Vec<i64> = (start..start + 10_000).collect();
                        let columns: Vec<ArrayRef> =
                            vec![key.slice(start as usize, 10_000), Arc::new(Int64Array::from(places))];
                        RecordBatch::try_new(schema.clone(), columns).unwrap()
                    })
                    .collect()
            })
            .collect();
        let mut expected: Vec<i64> = (0..300_000).collect();
        expected.sort_by_key(|place| key_of(*place).map_or((1, 0), |key| (0, key)));
        let source = MemorySourceConfig::try_new_exec(&partitions, schema.clone(), None).unwrap();
        let key = PhysicalSortExpr::new(
            Arc::new(Column::new("key", 0)),
            SortOptions { descending: false, nulls_first: false },
        );
        let sort = Arc::new(StableSortExec::new(LexOrdering::new([key]).unwrap(), source));
        let batches = datafusion::physical_plan::collect(sort, Arc::new(TaskContext::default())).await.unwrap();
        let places: Vec<i64> =
            batches.iter().flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert_eq!(places, expected);
    }

    fn key_of(place: i64) -> Option<i32> {
        (place % 13 != 0).then_some((place * 7919 % 300) as i32 - 150)
    }

    #[tokio::test]
    async fn narrow_keys_over_many_groups_keep_input_order() {
        let keys = Int32Array::from_iter((0..300_000).map(key_of));
        many_groups_keep_input_order(Arc::new(keys), key_of).await;
    }

    #[tokio::test]
    async fn wide_keys_over_many_groups_keep_input_order() {
        // Strings past the eight bytes a key is packed into, ordered as their numbers.
        let text = |key: i32| format!("a key of value {:04}", key + 150);
        let keys = StringArray::from_iter((0..300_000).map(|place| key_of(place).map(text)));
        many_groups_keep_input_order(Arc::new(keys), key_of).await;
    }

    #[tokio::test]
    async fn descending_with_nulls_first() {
        let partitions = vec![vec![batch(&[Some("a"), None, Some("c"), Some("a")], &[0, 1, 2, 3])]];
        let rows = sorted(partitions, SortOptions { descending: true, nulls_first: true }).await;
        let places: Vec<i64> = rows.iter().map(|(_, p)| *p).collect();
        assert_eq!(places, vec![1, 2, 0, 3]);
    }

    #[tokio::test]
    async fn few_key_values_copy_runs_and_keep_input_order() {
        // Three key values and nulls over 200,000 rows, two groups a partition: the output
        // takes long stretches of each group, copied run by run; strings come through whole.
        let keys = ["b", "a", "c"];
        let partitions: Vec<Vec<RecordBatch>> = (0..2)
            .map(|partition| {
                (0..5)
                    .map(|index| {
                        let places: Vec<i64> = (0..20_000).map(|row| (partition * 5 + index) * 20_000 + row).collect();
                        let keys: Vec<Option<&str>> = places
                            .iter()
                            .map(|place| (place % 11 != 0).then(|| keys[(place / 7 % 3) as usize]))
                            .collect();
                        batch(&keys, &places)
                    })
                    .collect()
            })
            .collect();
        let mut expected: Vec<(Option<String>, i64)> = partitions
            .iter()
            .flatten()
            .flat_map(|b| {
                let keys = b.column(0).as_string::<i32>();
                let places = b.column(1).as_primitive::<Int64Type>();
                (0..b.num_rows()).map(|i| (keys.is_valid(i).then(|| keys.value(i).to_string()), places.value(i)))
            })
            .collect();
        // A stable sort, nulls last.
        expected.sort_by(|a, b| match (&a.0, &b.0) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) => x.cmp(y),
        });
        let rows = sorted(partitions, SortOptions { descending: false, nulls_first: false }).await;
        assert_eq!(rows, expected);
    }

    #[tokio::test]
    async fn views_and_dictionaries_beside_runs_keep_their_values() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Int64, false),
            Field::new("view", DataType::Utf8View, true),
            Field::new("dictionary", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
        ]));
        let batch = |start: i64| {
            let places: Vec<i64> = (start..start + 1000).collect();
            let names: Vec<String> = places.iter().map(|p| format!("d{}", p % 7)).collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(places.iter().map(|p| p / 100 % 2).collect::<Vec<_>>())),
                Arc::new(StringViewArray::from_iter_values(places.iter().map(|p| format!("view-{p}")))),
                Arc::new(names.iter().map(String::as_str).collect::<DictionaryArray<Int32Type>>()),
            ];
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        };
        let partitions = vec![vec![batch(0), batch(1000)], vec![batch(2000)]];
        let source = MemorySourceConfig::try_new_exec(&partitions, schema.clone(), None).unwrap();
        let key = PhysicalSortExpr::new(Arc::new(Column::new("key", 0)), SortOptions::default());
        let sort = Arc::new(StableSortExec::new(LexOrdering::new([key]).unwrap(), source));
        let batches = datafusion::physical_plan::collect(sort, Arc::new(TaskContext::default())).await.unwrap();
        let text = |column: usize| -> Vec<String> {
            batches
                .iter()
                .flat_map(|b| {
                    let utf8 = cast(b.column(column), &DataType::Utf8).unwrap();
                    utf8.as_string::<i32>().iter().map(|v| v.unwrap().to_string()).collect::<Vec<_>>()
                })
                .collect()
        };
        let (zeros, ones): (Vec<i64>, Vec<i64>) = (0..3000).partition(|p| p / 100 % 2 == 0);
        let places: Vec<i64> = zeros.into_iter().chain(ones).collect();
        assert_eq!(text(1), places.iter().map(|p| format!("view-{p}")).collect::<Vec<_>>());
        assert_eq!(text(2), places.iter().map(|p| format!("d{}", p % 7)).collect::<Vec<_>>());
    }

    #[test]
    fn output_batches_split_runs_at_their_ends_and_join_neighbours() {
        let run = |batch, start, end| Run { batch, start, end };
        let runs = vec![run(0, 0, 3), run(0, 3, 5), run(1, 0, 4), run(0, 5, 6)];
        assert_eq!(
            output_batches(runs, 4),
            vec![vec![run(0, 0, 4)], vec![run(0, 4, 5), run(1, 0, 3)], vec![run(1, 3, 4), run(0, 5, 6)]]
        );
        assert!(output_batches(Vec::new(), 4).is_empty());
    }

    #[tokio::test]
    async fn no_rows_no_batches() {
        let rows = sorted(vec![vec![], vec![]], SortOptions::default()).await;
        assert!(rows.is_empty());
    }
}
