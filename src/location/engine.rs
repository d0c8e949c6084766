//! The store DataFusion reads and writes through: any store, with reads counted when a
//! [`ReadCounter`] is given (`etl cost --measure`), and a published data file that a later
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
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use super::counting::ReadCounter;
use crate::layout::retained_key;

pub struct EngineStore {
    inner: Arc<dyn ObjectStore>,
    counter: Option<Arc<ReadCounter>>,
}

impl EngineStore {
    pub fn new(inner: Arc<dyn ObjectStore>, counter: Option<Arc<ReadCounter>>) -> Self {
        EngineStore { inner, counter }
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

impl fmt::Display for EngineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Engine({})", self.inner)
    }
}

impl fmt::Debug for EngineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EngineStore({:?})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for EngineStore {
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
        let (asked, head) = (options.range.clone(), options.head);
        let result = self.inner.get_opts(location, options.clone()).await;
        let result = match Self::kept(&result, location) {
            Some(kept) => self.inner.get_opts(&kept, options).await.or(result),
            None => result,
        }?;
        if let Some(counter) = self.counter.as_ref().filter(|_| !head) {
            counter.count(match asked {
                Some(GetRange::Bounded(range)) => range.end - range.start,
                _ => result.range.end - result.range.start,
            });
        }
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        if let Some(counter) = &self.counter {
            for range in ranges {
                counter.count(range.end - range.start);
            }
        }
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
        let store = EngineStore::new(inner.clone(), None);
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
