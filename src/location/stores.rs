//! The object stores of the process: one local file system, one S3 client per bucket and
//! encryption setting (each with its connection pool), shared by every location and by
//! DataFusion, which asks [`Registry`] for the store of a URL.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use url::Url;

use super::aws::{Encryption, LazyS3};
use super::counting::ReadCounter;
use super::engine::EngineStore;

static LOCAL: LazyLock<Arc<dyn ObjectStore>> = LazyLock::new(|| Arc::new(LocalFileSystem::new()));
static S3: LazyLock<Mutex<HashMap<(String, Encryption), Arc<dyn ObjectStore>>>> = LazyLock::new(Default::default);

pub fn local() -> Arc<dyn ObjectStore> {
    LOCAL.clone()
}

pub fn s3(bucket: &str, encryption: &Encryption) -> Arc<dyn ObjectStore> {
    let mut stores = S3.lock().unwrap_or_else(|e| e.into_inner());
    stores
        .entry((bucket.to_string(), encryption.clone()))
        .or_insert_with(|| Arc::new(LazyS3::new(bucket, encryption.clone())))
        .clone()
}

/// The stores DataFusion reads and writes through: `file://` and any `s3://bucket`, the
/// buckets a run writes to with the encryption its targets ask for, each an [`EngineStore`].
#[derive(Debug, Default)]
pub struct Registry {
    encryption: HashMap<String, Encryption>,
    counter: Option<Arc<ReadCounter>>,
}

impl Registry {
    pub fn new(encryption: HashMap<String, Encryption>, counter: Option<Arc<ReadCounter>>) -> Self {
        Registry { encryption, counter }
    }

    fn as_read_by_datafusion(&self, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        Arc::new(EngineStore::new(store, self.counter.clone()))
    }
}

impl ObjectStoreRegistry for Registry {
    fn register_store(&self, url: &Url, _store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.get_store(url).ok()
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        match url.scheme() {
            "file" => Ok(self.as_read_by_datafusion(local())),
            "s3" => {
                let bucket = url.host_str().unwrap_or_default();
                let encryption = self.encryption.get(bucket).unwrap_or(&Encryption::BucketDefault);
                Ok(self.as_read_by_datafusion(s3(bucket, encryption)))
            }
            other => Err(DataFusionError::Configuration(format!("no object store for {other}:// URLs"))),
        }
    }
}
