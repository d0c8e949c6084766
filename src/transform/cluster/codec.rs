//! Our execution nodes and functions on the wire, beside Ballista's and DataFusion's own.
//! Every role of the binary (client, scheduler, executor) uses this one codec.

use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::config::TableParquetOptions;
use datafusion::datasource::file_format::parquet::ParquetSink;
use datafusion::datasource::physical_plan::{FileSink, FileSinkConfig};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, SendableRecordBatchStream};
use datafusion_proto::protobuf;
use prost::Message;

use crate::location::Location;
use crate::source::scan::{RawScanExec, RawTable};
use crate::transform::write_order::{ConcatPartitionsExec, NumberRowsExec};

/// What our messages start with: a byte no protobuf message of Ballista's starts with (a
/// field tag's continuation bit set on a one-byte tag), then our name.
const MAGIC: &[u8] = b"\xffetl";

const RAW_SCAN: u8 = 1;
const NUMBER_ROWS: u8 = 2;
const CONCAT_PARTITIONS: u8 = 3;
const PARQUET_SINK: u8 = 4;
const CHECKED_SUM: u8 = 5;

/// A Parquet sink sent to executors with its footer's key-value metadata (`etl.layout`) and
/// sorting columns: DataFusion's protobuf drops the first when read back and carries no
/// second, so files written on a cluster lacked both (and their footers' sizes differed from
/// a local run's). The sink stands in for the `ParquetSink` it wraps, which our codec sends
/// whole, from the client to the scheduler and from the scheduler to executors.
#[derive(Debug)]
pub struct ParquetSinkWithMetadata {
    sink: ParquetSink,
    sorting: Vec<SortingColumn>,
}

impl ParquetSinkWithMetadata {
    pub fn new(config: FileSinkConfig, options: TableParquetOptions, sorting: Vec<SortingColumn>) -> Self {
        let sink =
            ParquetSink::new(config, options).with_sorting_columns(Some(sorting.clone()).filter(|s| !s.is_empty()));
        ParquetSinkWithMetadata { sink, sorting }
    }
}

impl DisplayAs for ParquetSinkWithMetadata {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.sink.fmt_as(t, f)
    }
}

#[async_trait::async_trait]
impl DataSink for ParquetSinkWithMetadata {
    fn metrics(&self) -> Option<MetricsSet> {
        self.sink.metrics()
    }

    fn schema(&self) -> &SchemaRef {
        DataSink::schema(&self.sink)
    }

    async fn write_all(&self, data: SendableRecordBatchStream, context: &Arc<TaskContext>) -> Result<u64> {
        DataSink::write_all(&self.sink, data, context).await
    }
}

/// The sink's wire form: its protobuf (as DataFusion writes it), then as JSON its key-value
/// metadata and its sorting columns.
fn encode_parquet_sink(sink: &ParquetSinkWithMetadata, buf: &mut Vec<u8>) -> Result<()> {
    let proto = protobuf::ParquetSink::try_from(&sink.sink)?.encode_to_vec();
    buf.extend((proto.len() as u64).to_le_bytes());
    buf.extend(proto);
    let sorting: Vec<(i32, bool, bool)> =
        sink.sorting.iter().map(|c| (c.column_idx, c.descending, c.nulls_first)).collect();
    let extra = serde_json::to_vec(&(&sink.sink.parquet_options().key_value_metadata, sorting))
        .map_err(|e| wire_error("a Parquet sink's metadata", e))?;
    buf.extend(extra);
    Ok(())
}

fn decode_parquet_sink(body: &[u8], input: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let short = || wire_error("a Parquet sink", "message cut short");
    let (length, rest) = body.split_first_chunk::<8>().ok_or_else(short)?;
    let length = usize::try_from(u64::from_le_bytes(*length)).map_err(|e| wire_error("a Parquet sink", e))?;
    let (proto, metadata) = rest.split_at_checked(length).ok_or_else(short)?;
    let proto = protobuf::ParquetSink::decode(proto).map_err(|e| wire_error("a Parquet sink", e))?;
    let sink = ParquetSink::try_from(&proto)?;
    let mut options = sink.parquet_options().clone();
    let sorting: Vec<(i32, bool, bool)>;
    (options.key_value_metadata, sorting) =
        serde_json::from_slice(metadata).map_err(|e| wire_error("a Parquet sink's metadata", e))?;
    let sorting = sorting
        .into_iter()
        .map(|(column_idx, descending, nulls_first)| SortingColumn { column_idx, descending, nulls_first })
        .collect();
    // Still wrapped: a scheduler sends it on to executors.
    let sink = ParquetSinkWithMetadata::new(FileSink::config(&sink).clone(), options, sorting);
    Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
}

#[derive(Debug, Default)]
pub struct EtlCodec {
    ballista: BallistaPhysicalExtensionCodec,
    /// The client's: where the executors running each raw scan leave what they read.
    spools: Vec<(Arc<RawTable>, Location)>,
}

impl EtlCodec {
    pub fn with_spools(spools: Vec<(Arc<RawTable>, Location)>) -> Self {
        EtlCodec { spools, ..Self::default() }
    }

    fn spool_of(&self, table: &Arc<RawTable>) -> Option<&Location> {
        self.spools.iter().find(|(t, _)| Arc::ptr_eq(t, table)).map(|(_, spool)| spool)
    }
}

fn wire_error(what: &str, error: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("{what}: {error}"))
}

impl PhysicalExtensionCodec for EtlCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(ours) = buf.strip_prefix(MAGIC) else {
            return self.ballista.try_decode(buf, inputs, ctx, proto_converter);
        };
        let (&tag, body) = ours.split_first().ok_or_else(|| wire_error("an etl node", "empty message"))?;
        let input = || inputs.first().cloned().ok_or_else(|| wire_error("an etl node", "no input"));
        match tag {
            RAW_SCAN => Ok(Arc::new(RawScanExec::from_wire(body).map_err(|e| e.into_datafusion())?)),
            NUMBER_ROWS => Ok(Arc::new(NumberRowsExec::new(input()?))),
            CONCAT_PARTITIONS => Ok(Arc::new(ConcatPartitionsExec::new(input()?))),
            PARQUET_SINK => decode_parquet_sink(body, input()?),
            other => Err(wire_error("an etl node", format!("unknown kind {other}"))),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let tag = if node.downcast_ref::<RawScanExec>().is_some() {
            RAW_SCAN
        } else if node.downcast_ref::<NumberRowsExec>().is_some() {
            NUMBER_ROWS
        } else if node.downcast_ref::<ConcatPartitionsExec>().is_some() {
            CONCAT_PARTITIONS
        } else if let Some(sink) = node.downcast_ref::<DataSinkExec>().and_then(|exec| {
            let sink: &dyn std::any::Any = exec.sink();
            sink.downcast_ref::<ParquetSinkWithMetadata>()
        }) {
            buf.extend_from_slice(MAGIC);
            buf.push(PARQUET_SINK);
            return encode_parquet_sink(sink, buf);
        } else {
            return self.ballista.try_encode(node, buf, proto_converter);
        };
        buf.extend_from_slice(MAGIC);
        buf.push(tag);
        if let Some(scan) = node.downcast_ref::<RawScanExec>() {
            // A scheduler passes on the spool the client gave the scan.
            let spool = self.spool_of(scan.table()).or(scan.table().spool.as_ref());
            buf.extend(scan.to_wire(spool).map_err(|e| e.into_datafusion())?);
        }
        Ok(())
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match crate::transform::functions().into_iter().find(|f| f.name() == name) {
            Some(function) => Ok(function),
            None => self.ballista.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udf(node, buf)
    }

    /// Executors sum as the client does: with totals checked (see `transform::checked_sum`).
    /// By name alone they would take DataFusion's `sum` from their own registry, which wraps.
    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<datafusion::logical_expr::AggregateUDF>> {
        let sum = crate::transform::checked_sum::checked_sum();
        let checked = buf.strip_prefix(MAGIC) == Some(&[CHECKED_SUM]) || (buf.is_empty() && name == sum.name());
        match checked {
            true => Ok(sum),
            false => self.ballista.try_decode_udaf(name, buf),
        }
    }

    fn try_encode_udaf(&self, node: &datafusion::logical_expr::AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        // Every session registers the checked `sum` in place of DataFusion's.
        if node.name() == crate::transform::checked_sum::checked_sum().name() {
            buf.extend_from_slice(MAGIC);
            buf.push(CHECKED_SUM);
            return Ok(());
        }
        self.ballista.try_encode_udaf(node, buf)
    }
}
