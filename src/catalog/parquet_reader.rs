//! The Parquet reader of catalog scans: DataFusion's, with a file whose footer cannot be
//! decoded reported as an error that names the file.
//!
//! parquet-rs 59 panics on a footer that claims more metadata than its file holds (a file
//! truncated or overwritten after it was crawled); the panic ended the command as an internal
//! error naming a line of the `bytes` crate.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::DefaultParquetFileReaderFactory;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::{ParquetError, Result};
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::ObjectStore;

use crate::location::Location;
use crate::panics;

#[derive(Debug)]
pub struct NamingReaderFactory {
    inner: DefaultParquetFileReaderFactory,
    /// The table's location, which names its files in messages.
    location: Location,
}

impl NamingReaderFactory {
    pub fn new(store: Arc<dyn ObjectStore>, location: Location) -> Self {
        NamingReaderFactory { inner: DefaultParquetFileReaderFactory::new(store), location }
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
        Ok(Box::new(NamingReader { inner, name }))
    }
}

struct NamingReader {
    inner: Box<dyn AsyncFileReader + Send>,
    name: String,
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
        let metadata = panics::contain(self.inner.get_metadata(options));
        async move {
            metadata.await.unwrap_or_else(|panic| {
                Err(ParquetError::General(format!(
                    "{name}: not a readable Parquet file: its footer is corrupt ({panic})"
                )))
            })
        }
        .boxed()
    }
}
