//! The Parquet reader of catalog scans: DataFusion's, with a file whose footer cannot be
//! decoded reported as an error that names the file.
//!
//! parquet-rs 59 panics on a footer that claims more metadata than its file holds (a file
//! truncated or overwritten after it was crawled); the panic ended the command as an internal
//! error naming a line of the `bytes` crate.
//!
//! Float and double min/max leave NaN out (the Parquet format says writers must), while
//! DataFusion orders NaN above every number and `NaN <> 1.0` holds: pruning by those bounds
//! skipped row groups holding rows the filter keeps (`f <> 1.0` found nothing where a NaN was).
//! The reader drops them, row group and page bounds alike, before DataFusion prunes.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::DefaultParquetFileReaderFactory;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::parquet::basic::{LogicalType, Type as PhysicalType};
use datafusion::parquet::errors::{ParquetError, Result};
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use datafusion::parquet::schema::types::ColumnDescriptor;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::ObjectStore;

use crate::location::Location;
use crate::panics;
use crate::schema::types::GlueType;
use crate::schema::widen::holds_every_value;
use crate::schema::{Column, names};

#[derive(Debug)]
pub struct NamingReaderFactory {
    inner: DefaultParquetFileReaderFactory,
    /// The table's location, which names its files in messages.
    location: Location,
    /// The table's data columns, which each file's columns must fit.
    columns: Arc<Vec<Column>>,
}

impl NamingReaderFactory {
    pub fn new(store: Arc<dyn ObjectStore>, location: Location, columns: Vec<Column>) -> Self {
        NamingReaderFactory { inner: DefaultParquetFileReaderFactory::new(store), location, columns: Arc::new(columns) }
    }
}

impl ParquetFileReaderFactory for NamingReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let name = self.location.display(&file.object_meta.location);
        let inner = self.inner.create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(NamingReader { inner, name, columns: self.columns.clone() }))
    }
}

struct NamingReader {
    inner: Box<dyn AsyncFileReader + Send>,
    name: String,
    columns: Arc<Vec<Column>>,
}

impl AsyncFileReader for NamingReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>>> {
        let name = &self.name;
        let columns = &self.columns;
        let metadata = panics::contain(self.inner.get_metadata(options));
        async move {
            let metadata = metadata.await.unwrap_or_else(|panic| {
                Err(ParquetError::General(format!(
                    "{name}: not a readable Parquet file: its footer is corrupt ({panic})"
                )))
            })?;
            fits(&metadata, columns).map_err(|why| ParquetError::General(format!("{name}: {why}")))?;
            without_float_bounds(metadata)
        }
        .boxed()
    }
}

/// Whether each column of a file holds values of its table column's type. A table whose schema
/// was kept (a crawl that logs changes) may meet a file of doubles under a bigint column: the
/// cast would cut 2.7 to 2 without a word, where Athena refuses the file (HIVE_BAD_DATA).
fn fits(metadata: &ParquetMetaData, columns: &[Column]) -> std::result::Result<(), String> {
    for (name, ty) in file_columns(metadata) {
        let Some(column) = columns.iter().find(|c| c.name == name) else { continue };
        if !holds_every_value(&ty, &column.ty) {
            return Err(format!(
                "column {name} is {ty} in the file, but the table's schema says {}, which does not hold its values \
                 (crawl the location with --on-change update, or rewrite the file)",
                column.ty
            ));
        }
    }
    Ok(())
}

/// A Parquet file's columns as a crawl names and types them (those of no Glue type left out).
pub fn file_columns(metadata: &ParquetMetaData) -> Vec<(String, GlueType)> {
    let file = metadata.file_metadata();
    let Ok(schema) = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata()) else { return Vec::new() };
    let columns = schema.fields().iter().enumerate();
    columns
        .filter_map(|(index, f)| Some((names::normalize(f.name(), index), file_column_type(f.data_type()).ok()?)))
        .collect()
}

/// The Glue type of a Parquet file's column, as a crawl types it.
pub fn file_column_type(data_type: &DataType) -> std::result::Result<GlueType, String> {
    GlueType::from_arrow(&unsigned_64_as_decimal(data_type))
}
/// A file's type with every `uint64` a `decimal(20,0)`, as Spark reads Parquet's UINT_64: a
/// `bigint` column failed every query reading a value above 2^63-1.
fn unsigned_64_as_decimal(data_type: &DataType) -> DataType {
    let field = |f: &Arc<Field>| Arc::new(f.as_ref().clone().with_data_type(unsigned_64_as_decimal(f.data_type())));
    match data_type {
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::List(item) => DataType::List(field(item)),
        DataType::LargeList(item) => DataType::LargeList(field(item)),
        DataType::FixedSizeList(item, size) => DataType::FixedSizeList(field(item), *size),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::Map(entries, sorted) => DataType::Map(field(entries), *sorted),
        other => other.clone(),
    }
}

/// Whether a column's min/max may leave values out: floats', which never count NaN.
pub fn bounds_leave_out_nan(column: &ColumnDescriptor) -> bool {
    matches!(column.physical_type(), PhysicalType::FLOAT | PhysicalType::DOUBLE)
        || matches!(column.logical_type_ref(), Some(LogicalType::Float16))
}

/// `metadata` without the row group statistics and page bounds of its float columns.
fn without_float_bounds(metadata: Arc<ParquetMetaData>) -> Result<Arc<ParquetMetaData>> {
    let schema = metadata.file_metadata().schema_descr();
    let floats: Vec<usize> =
        (0..schema.num_columns()).filter(|&i| bounds_leave_out_nan(schema.column(i).as_ref())).collect();
    if floats.is_empty() {
        return Ok(metadata);
    }
    let mut builder = Arc::unwrap_or_clone(metadata).into_builder();
    let row_groups = builder
        .take_row_groups()
        .into_iter()
        .map(|row_group| {
            let mut row_group = row_group.into_builder();
            let columns = row_group
                .take_columns()
                .into_iter()
                .enumerate()
                .map(|(i, column)| match floats.contains(&i) {
                    // Without its offset, the column index parquet-rs loads later (apart from
                    // this call, when DataFusion prunes pages) has no bounds for the column.
                    true => column
                        .into_builder()
                        .clear_statistics()
                        .set_column_index_offset(None)
                        .set_column_index_length(None)
                        .build(),
                    false => Ok(column),
                })
                .collect::<Result<Vec<_>>>()?;
            row_group.set_column_metadata(columns).build()
        })
        .collect::<Result<Vec<_>>>()?;
    builder = builder.set_row_groups(row_groups);
    if let Some(mut index) = builder.take_column_index() {
        for row_group in &mut index {
            for &i in &floats {
                if let Some(column) = row_group.get_mut(i) {
                    *column = ColumnIndexMetaData::NONE;
                }
            }
        }
        builder = builder.set_column_index(Some(index));
    }
    Ok(Arc::new(builder.build()))
}
