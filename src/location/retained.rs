//! What DataFusion reads through: every store, with a published data file that a later
//! publication moved under `_etl_retained/` read where it is kept.
//!
//! A query plans with the files of one version of a table and reads them after. A
//! publication meanwhile (another job's partition, an append, a compaction, a rollback)
//! moves the files it replaces under the table's `_etl_retained/` (see [`crate::layout`]),
//! and the query failed on a file that no longer exists at its name. Read where it is kept,
//! the file is still the version the query planned with: the query sees that version whole.
//! `etl sql` also plans again on a missing file; runs, checks and the API did not.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};

use crate::layout::retained_key;

pub struct ReadsRetained {
    inner: Arc<dyn ObjectStore>,
}

impl ReadsRetained {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        ReadsRetained { inner }
    }

    /// Where `location` is kept if it was a published data file, when reading it failed as
    /// missing.
    fn kept<T>(result: &object_store::Result<T>, location: &Path) -> Option<Path> {
        match result {
            Err(object_store::Error::NotFound { .. }) => Path::parse(retained_key(location.as_ref())?).ok(),
            _ => None,
        }
    }
}

impl fmt::Display for ReadsRetained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadsRetained({})", self.inner)
    }
}

impl fmt::Debug for ReadsRetained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadsRetained({:?})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for ReadsRetained {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        options: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, options).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        options: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, options).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let result = self.inner.get_opts(location, options.clone()).await;
        match Self::kept(&result, location) {
            Some(kept) => self.inner.get_opts(&kept, options).await.or(result),
            None => result,
        }
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        let result = self.inner.get_ranges(location, ranges).await;
        match Self::kept(&result, location) {
            Some(kept) => self.inner.get_ranges(&kept, ranges).await.or(result),
            None => result,
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn a_data_file_moved_under_etl_retained_is_read_where_it_is_kept() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let store = ReadsRetained::new(inner.clone());
        let published = Path::parse("t/dt=1/run-r1/part-r1-00000.zstd.parquet").unwrap();
        inner.put(&published, Bytes::from_static(b"rows of version 1").into()).await.unwrap();
        let kept = Path::parse(retained_key(published.as_ref()).unwrap()).unwrap();
        inner.rename(&published, &kept).await.unwrap();
        let read = store.get(&published).await.unwrap().bytes().await.unwrap();
        assert_eq!(read.as_ref(), b"rows of version 1");
        assert_eq!(store.get_ranges(&published, &[5..7]).await.unwrap()[0].as_ref(), b"of");
        // Anything else missing stays missing, as the store says it.
        let other = Path::parse("t/dt=1/run-r1/notes.txt").unwrap();
        assert!(matches!(store.get(&other).await, Err(object_store::Error::NotFound { .. })));
        inner.delete(&kept).await.unwrap();
        assert!(matches!(store.get(&published).await, Err(object_store::Error::NotFound { .. })));
    }
}
