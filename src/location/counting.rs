//! Counting what a query really reads: an object store wrapper that adds up the bytes each
//! read asks for (before the store merges nearby ranges into fewer requests), so `etl cost
//! --measure` can hold an estimate against what the engine fetches when it runs the same
//! query. It sits beside the other store wrappers ([`super::stores`], [`super::retry`]); the
//! cost module only reads its totals.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use serde::Serialize;

/// Bytes read and read requests, shared by every store a session counts through.
#[derive(Debug, Default)]
pub struct ReadCounter {
    bytes: AtomicU64,
    requests: AtomicU64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Reads {
    pub bytes_read: u64,
    pub requests: u64,
}

impl ReadCounter {
    pub fn reads(&self) -> Reads {
        Reads { bytes_read: self.bytes.load(Ordering::Relaxed), requests: self.requests.load(Ordering::Relaxed) }
    }

    fn count(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// A store that counts what is read through it.
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counter: Arc<ReadCounter>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>, counter: Arc<ReadCounter>) -> Self {
        CountingStore { inner, counter }
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore({:?})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
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
        let asked = options.range.clone();
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            let bytes = match asked {
                Some(GetRange::Bounded(range)) => range.end - range.start,
                _ => result.range.end - result.range.start,
            };
            self.counter.count(bytes);
        }
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        for range in ranges {
            self.counter.count(range.end - range.start);
        }
        self.inner.get_ranges(location, ranges).await
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
