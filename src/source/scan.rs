//! The DataFusion scan of raw CSV and JSON files: our decoders (which check every record and
//! report bad ones) behind an `ExecutionPlan`, one output partition per group of files.
//!
//! Decoding is CPU work on blocking threads, one per partition, handing batches to DataFusion
//! through a small channel; a consumer that stops early (a LIMIT) stops the decoder.
//! Parquet files do not come here: DataFusion's own Parquet scan reads them, with its
//! projection, predicate and page-index pruning.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use object_store::path::Path;

use super::csv::{self as csv_source, CsvLayout, Dialect};
use super::format::{self, Compression, Format};
use super::json::{self as json_source, JsonLayout};
use super::rejects::{BadRecordPolicy, Rejects};
use crate::error::{Error, Result};
use crate::location::Location;
use crate::schema::Column;
use serde::{Deserialize, Serialize};

/// A file to scan, with its partition values typed as the table's partition keys.
#[derive(Debug, Clone)]
pub struct ScanFile {
    pub path: Path,
    pub size: u64,
    pub compression: Compression,
    pub partition_values: Vec<ScalarValue>,
    /// When known (Parquet footers, files we wrote).
    pub rows: Option<u64>,
    /// The object's version as the store listed it; none for files we wrote, which are never
    /// written again under their names. What cached footers are keyed by, with the size.
    pub e_tag: Option<String>,
}

impl ScanFile {
    /// The file as DataFusion's scans take it: its key as it is (`PartitionedFile::new` would
    /// percent-encode it again, and miss a Hive folder such as `dt=00%3A00`).
    pub fn partitioned(&self) -> datafusion::datasource::listing::PartitionedFile {
        let meta = object_store::ObjectMeta {
            location: self.path.clone(),
            last_modified: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            size: self.size,
            e_tag: None,
            version: None,
        };
        let mut file = datafusion::datasource::listing::PartitionedFile::from(meta);
        file.partition_values = self.partition_values.clone();
        file
    }
}

/// What a scan read, for the run report: rows per file read to its end.
#[derive(Debug, Default)]
pub struct ReadStats {
    rows: Mutex<HashMap<Path, u64>>,
}

impl ReadStats {
    pub fn record(&self, path: &Path, rows: u64) {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), rows);
    }

    /// The rows read per file since the last call (a cluster executor's, for its client).
    pub fn take(&self) -> HashMap<Path, u64> {
        std::mem::take(&mut *self.rows.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn rows(&self) -> u64 {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }
}

/// How to read the files of one table.
#[derive(Debug, Clone)]
pub struct RawTable {
    pub location: Location,
    pub format: Format,
    pub columns: Vec<Column>,
    pub partition_keys: Vec<Column>,
    pub dialect: Dialect,
    pub null_values: Vec<String>,
    pub rejects: Arc<Rejects>,
    pub stats: Arc<ReadStats>,
    /// On a cluster executor: the folder where each partition leaves the rows it read and the
    /// records it set apart, which the client replays into its own `rejects` and `stats`
    /// (crate::cluster::spool).
    pub spool: Option<Location>,
    /// Whether a JSON key outside the schema is a bad record: where this read inferred the
    /// schema from these files, such a key is one their samples missed; a table's schema kept
    /// as it was (a crawled table, `on_schema_change = "log"`) ignores it, as Athena's JSON
    /// SerDe does.
    pub refuse_unknown_keys: bool,
}

#[derive(Debug)]
pub struct RawScanExec {
    table: Arc<RawTable>,
    groups: Vec<Vec<ScanFile>>,
    /// Indices over data columns then partition keys.
    projection: Vec<usize>,
    limit: Option<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    batch_size: usize,
}

impl RawScanExec {
    pub fn new(
        table: Arc<RawTable>,
        groups: Vec<Vec<ScanFile>>,
        projection: Vec<usize>,
        limit: Option<usize>,
        table_schema: &SchemaRef,
        batch_size: usize,
    ) -> Result<Self> {
        let schema = Arc::new(table_schema.project(&projection)?);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(groups.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(RawScanExec { table, groups, projection, limit, schema, properties, batch_size })
    }
}

/// A raw scan as a cluster carries it to its executors (crate::cluster::codec): the table and
/// files to read, without the client's rejects and read counts, which the executor's
/// partitions leave in `spool` for the client to replay.
#[derive(Serialize, Deserialize)]
struct RawScanOnWire {
    location: String,
    /// How messages name it, as the client does.
    location_text: String,
    format: Format,
    columns: Vec<Column>,
    partition_keys: Vec<Column>,
    dialect: Dialect,
    null_values: Vec<String>,
    bad_records: BadRecordPolicy,
    spool: Option<String>,
    groups: Vec<Vec<FileOnWire>>,
    projection: Vec<usize>,
    limit: Option<usize>,
    batch_size: usize,
    #[serde(default)]
    refuse_unknown_keys: bool,
}

#[derive(Serialize, Deserialize)]
struct FileOnWire {
    path: String,
    size: u64,
    compression: Compression,
    /// Each value as DataFusion's protobuf encodes it.
    partition_values: Vec<Vec<u8>>,
    rows: Option<u64>,
}

impl RawScanExec {
    pub fn table(&self) -> &Arc<RawTable> {
        &self.table
    }

    /// The scan for an executor, whose partitions leave what they set apart in `spool`.
    pub fn to_wire(&self, spool: Option<&Location>) -> Result<Vec<u8>> {
        use prost::Message;
        let table = &self.table;
        let file = |file: &ScanFile| -> Result<FileOnWire> {
            let partition_values = file
                .partition_values
                .iter()
                .map(|v| {
                    datafusion_proto::protobuf::ScalarValue::try_from(v)
                        .map(|v| v.encode_to_vec())
                        .map_err(|e| Error::runtime(format!("partition value {v} of {}: {e}", file.path)))
                })
                .collect::<Result<_>>()?;
            Ok(FileOnWire {
                path: file.path.to_string(),
                size: file.size,
                compression: file.compression,
                partition_values,
                rows: file.rows,
            })
        };
        let wire = RawScanOnWire {
            location: table.location.url(),
            location_text: table.location.to_string(),
            format: table.format,
            columns: table.columns.clone(),
            partition_keys: table.partition_keys.clone(),
            dialect: table.dialect.clone(),
            null_values: table.null_values.clone(),
            bad_records: table.rejects.policy(),
            spool: spool.map(Location::url),
            groups: self.groups.iter().map(|group| group.iter().map(file).collect()).collect::<Result<_>>()?,
            projection: self.projection.clone(),
            limit: self.limit,
            batch_size: self.batch_size,
            refuse_unknown_keys: table.refuse_unknown_keys,
        };
        Ok(serde_json::to_vec(&wire)?)
    }

    pub fn from_wire(bytes: &[u8]) -> Result<Self> {
        use prost::Message;
        let wire: RawScanOnWire = serde_json::from_slice(bytes)?;
        let file = |file: FileOnWire| -> Result<ScanFile> {
            let partition_values = file
                .partition_values
                .iter()
                .map(|bytes| {
                    let proto = datafusion_proto::protobuf::ScalarValue::decode(bytes.as_slice())
                        .map_err(|e| Error::runtime(format!("a partition value of {}: {e}", file.path)))?;
                    ScalarValue::try_from(&proto)
                        .map_err(|e| Error::runtime(format!("a partition value of {}: {e}", file.path)))
                })
                .collect::<Result<_>>()?;
            Ok(ScanFile {
                path: Path::parse(&file.path).map_err(|e| Error::runtime(format!("{}: {e}", file.path)))?,
                size: file.size,
                compression: file.compression,
                partition_values,
                rows: file.rows,
                e_tag: None,
            })
        };
        let schema = crate::schema::TableSchema { columns: wire.columns, partition_keys: wire.partition_keys };
        let table_schema = schema.to_arrow();
        let table = Arc::new(RawTable {
            location: Location::parse(&wire.location)?.named(&wire.location_text),
            format: wire.format,
            columns: schema.columns,
            partition_keys: schema.partition_keys,
            dialect: wire.dialect,
            null_values: wire.null_values,
            rejects: Arc::new(Rejects::spooling(wire.bad_records)),
            stats: Arc::default(),
            spool: wire.spool.as_deref().map(Location::parse).transpose()?,
            refuse_unknown_keys: wire.refuse_unknown_keys,
        });
        let groups =
            wire.groups.into_iter().map(|group| group.into_iter().map(file).collect()).collect::<Result<_>>()?;
        RawScanExec::new(table, groups, wire.projection, wire.limit, &table_schema, wire.batch_size)
    }
}

impl DisplayAs for RawScanExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let files: usize = self.groups.iter().map(Vec::len).sum();
        write!(f, "RawScanExec: format={}, files={files}, location={}", self.table.format, self.table.location)?;
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for RawScanExec {
    fn name(&self) -> &str {
        "RawScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let files = self.groups.get(partition).cloned().unwrap_or_default();
        // Read through the session's store for this location, with its settings.
        let store = context.runtime_env().object_store(self.table.location.store_url())?;
        let location = self.table.location.clone().with_store(store);
        let (sender, receiver) = tokio::sync::mpsc::channel::<DfResult<RecordBatch>>(2);
        let task = ReadTask {
            table: self.table.clone(),
            location,
            files,
            projection: self.projection.clone(),
            schema: self.schema.clone(),
            limit: self.limit,
            batch_size: self.batch_size,
        };
        tokio::task::spawn_blocking(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run(&sender)))
                .unwrap_or_else(|_| Err(Error::runtime("internal error: a file reader panicked")))
                .and_then(|()| super::spool::leave(&task.table));
            if let Err(error) = result {
                let _ = sender.blocking_send(Err(error.into_datafusion()));
            }
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

/// One partition's reading: its files, in order, into batches of the projected columns.
struct ReadTask {
    table: Arc<RawTable>,
    location: Location,
    files: Vec<ScanFile>,
    /// Indices over data columns then partition keys.
    projection: Vec<usize>,
    schema: SchemaRef,
    limit: Option<usize>,
    batch_size: usize,
}

impl ReadTask {
    /// Sends batches until done, stopped (the receiver hung up or the limit is reached), or
    /// failed.
    fn run(&self, sender: &tokio::sync::mpsc::Sender<DfResult<RecordBatch>>) -> Result<()> {
        let table = &self.table;
        let data_columns = table.columns.len();
        let data_projection: Vec<usize> = self.projection.iter().copied().filter(|&i| i < data_columns).collect();
        let mut remaining = self.limit.unwrap_or(usize::MAX);
        for file in &self.files {
            if remaining == 0 {
                return Ok(());
            }
            let display = self.location.display(&file.path);
            crate::kill_points::reached("read.file");
            let raw = self.location.open_blocking(&file.path)?;
            let reader = format::decompress(raw, file.compression).map_err(|e| e.context(&display))?;
            let mut stopped = false;
            let mut emit = |batch: RecordBatch| -> Result<bool> {
                let batch = assemble(batch, file, &self.projection, data_columns, &self.schema)?;
                let batch = if batch.num_rows() > remaining { batch.slice(0, remaining) } else { batch };
                remaining -= batch.num_rows();
                if sender.blocking_send(Ok(batch)).is_err() || remaining == 0 {
                    stopped = true;
                    return Ok(false);
                }
                Ok(true)
            };
            let rows = match table.format {
                Format::Csv => {
                    let layout = CsvLayout {
                        dialect: &table.dialect,
                        columns: &table.columns,
                        projection: &data_projection,
                        null_values: &table.null_values,
                        batch_size: self.batch_size,
                    };
                    csv_source::decode(reader, &display, &layout, &table.rejects, &mut emit)?
                }
                Format::Json => {
                    let file_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
                        table.columns.iter().map(Column::to_arrow).collect::<Vec<_>>(),
                    ));
                    let layout = JsonLayout {
                        schema: file_schema,
                        projection: data_projection.clone(),
                        batch_size: self.batch_size,
                        refuse_unknown_keys: table.refuse_unknown_keys,
                    };
                    json_source::decode(reader, &display, &layout, &table.rejects, &mut emit)?
                }
                Format::Parquet => {
                    return Err(Error::runtime("internal error: Parquet files reached the raw scan"));
                }
            };
            if stopped {
                return Ok(());
            }
            table.stats.record(&file.path, rows);
        }
        Ok(())
    }
}

/// Puts decoded data columns and the file's partition values in projection order.
fn assemble(
    decoded: RecordBatch,
    file: &ScanFile,
    projection: &[usize],
    data_columns: usize,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let rows = decoded.num_rows();
    let mut next_decoded = 0;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(projection.len());
    for &index in projection {
        if index < data_columns {
            columns.push(decoded.column(next_decoded).clone());
            next_decoded += 1;
        } else {
            columns.push(file.partition_values[index - data_columns].to_array_of_size(rows)?);
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(schema.clone(), columns, &options)?)
}
