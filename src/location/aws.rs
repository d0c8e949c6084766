//! The AWS configuration, in one place: region, credentials and endpoints for S3, Glue,
//! Athena and SQS, from the standard chain (environment, profiles, SSO, IMDS) that `aws-config`
//! resolves, loaded once per process.
//!
//! An endpoint override (`AWS_ENDPOINT_URL`, or per service `AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_GLUE`, `AWS_ENDPOINT_URL_ATHENA`, `AWS_ENDPOINT_URL_SQS`) is configuration, as it is for the AWS
//! CLI: it switches S3 to path-style requests and allows plain http, which is how tests point
//! every client at a local endpoint.
//!
//! `object_store`'s S3 client does not read profiles or SSO, so it takes its credentials from
//! the SDK's provider through [`SdkCredentials`]. An S3 store is built lazily, on its first
//! request, because resolving the chain is asynchronous and a location is parsed before any.
//!
//! Every client shares one retry budget ([`super::retry`]): attempts, a total deadline per
//! operation, exponential backoff with full jitter. The SDK's standard retry covers Glue and
//! Athena (throttling, 5xx, reset connections, bodies that end early); `object_store`'s covers
//! S3, and [`LazyS3`] retries on top of it the transport failures it leaves alone.
//!
//! A multipart upload that is dropped unfinished (a writer that failed half-way) is aborted,
//! so S3 keeps no orphaned parts; [`finish_aborts`] waits for those aborts before the process
//! exits. Only a killed process leaves parts behind, for the bucket's lifecycle rule
//! (`AbortIncompleteMultipartUpload`) to remove.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, CopyOptions, CredentialProvider, GetOptions, GetResult, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RetryConfig,
};
use tokio::sync::OnceCell;

/// Attempts per request by default; the budget lives in [`super::retry`].
pub use super::retry::MAX_ATTEMPTS;
use super::retry::{self, retrying};

/// The endpoint override of every AWS service.
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
/// Per-service endpoint overrides, as the AWS SDKs and CLI name them.
pub const AWS_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
pub const AWS_ENDPOINT_URL_GLUE: &str = "AWS_ENDPOINT_URL_GLUE";
pub const AWS_ENDPOINT_URL_ATHENA: &str = "AWS_ENDPOINT_URL_ATHENA";
pub const AWS_ENDPOINT_URL_SQS: &str = "AWS_ENDPOINT_URL_SQS";
/// The region when the chain names none.
const DEFAULT_REGION: &str = "us-east-1";
/// How long to wait for a connection to an endpoint before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

static SDK_CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

/// The SDK configuration (region, credentials, retries), resolved once.
pub async fn sdk_config() -> &'static SdkConfig {
    SDK_CONFIG
        .get_or_init(|| async {
            let budget = retry::budget_or_default();
            aws_config::defaults(BehaviorVersion::latest())
                .retry_config(
                    aws_config::retry::RetryConfig::standard()
                        .with_max_attempts(budget.max_attempts)
                        .with_initial_backoff(retry::INITIAL_BACKOFF)
                        .with_max_backoff(retry::MAX_BACKOFF),
                )
                // The SDK's retry has no deadline of its own; the operation timeout is one.
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(CONNECT_TIMEOUT)
                        .operation_timeout(budget.deadline)
                        .build(),
                )
                .load()
                .await
        })
        .await
}

/// The endpoint override for a service (`S3`, `GLUE`, `ATHENA`), if any.
pub fn endpoint(service_variable: &str) -> Option<String> {
    std::env::var(service_variable).ok().or_else(|| std::env::var(AWS_ENDPOINT_URL).ok()).filter(|e| !e.is_empty())
}

/// Server-side encryption of the objects a store writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Encryption {
    /// The bucket's default.
    #[default]
    BucketDefault,
    /// SSE-S3 (`AES256`).
    Aes256,
    /// SSE-KMS with a key id or ARN (`aws:kms`).
    Kms(String),
}

impl Encryption {
    pub fn parse(kind: Option<&str>, key: Option<&str>) -> Result<Self, String> {
        match (kind, key) {
            (None, None) => Ok(Encryption::BucketDefault),
            (Some("AES256"), None) => Ok(Encryption::Aes256),
            (Some("aws:kms"), Some(key)) if !key.is_empty() => Ok(Encryption::Kms(key.to_string())),
            (Some("aws:kms"), _) => Err("aws:kms encryption needs a kms_key_id".into()),
            (Some(other), _) => Err(format!("unknown server-side encryption '{other}' (expected AES256 or aws:kms)")),
            (None, Some(_)) => Err("kms_key_id needs encryption = \"aws:kms\"".into()),
        }
    }
}

/// The SDK's credential chain as `object_store` asks for credentials.
#[derive(Debug)]
struct SdkCredentials;

#[async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let provider = sdk_config().await.credentials_provider().ok_or_else(|| object_store::Error::Generic {
            store: "S3",
            source: "no AWS credentials found (environment, profile, SSO or instance role)".into(),
        })?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Generic { store: "S3", source: Box::new(e) })?;
        Ok(Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_string(),
            secret_key: credentials.secret_access_key().to_string(),
            token: credentials.session_token().map(str::to_string),
        }))
    }
}

async fn build_s3(bucket: &str, encryption: &Encryption) -> object_store::Result<Arc<dyn ObjectStore>> {
    let config = sdk_config().await;
    let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| DEFAULT_REGION.to_string());
    let budget = retry::budget_or_default();
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_credentials(Arc::new(SdkCredentials))
        .with_retry(RetryConfig {
            max_retries: budget.max_attempts as usize - 1,
            retry_timeout: budget.deadline,
            backoff: BackoffConfig { init_backoff: retry::INITIAL_BACKOFF, max_backoff: retry::MAX_BACKOFF, base: 2.0 },
        })
        .with_client_options(ClientOptions::new().with_connect_timeout(CONNECT_TIMEOUT));
    if let Some(endpoint) = endpoint(AWS_ENDPOINT_URL_S3) {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    builder = match encryption {
        Encryption::BucketDefault => builder,
        Encryption::Aes256 => {
            let key: AmazonS3ConfigKey = "aws_server_side_encryption".parse()?;
            builder.with_config(key, "AES256")
        }
        Encryption::Kms(key) => builder.with_sse_kms_encryption(key),
    };
    Ok(Arc::new(builder.build()?))
}

/// An S3 store built on its first request.
pub struct LazyS3 {
    bucket: String,
    encryption: Encryption,
    store: OnceCell<Arc<dyn ObjectStore>>,
}

impl LazyS3 {
    pub fn new(bucket: &str, encryption: Encryption) -> Self {
        LazyS3 { bucket: bucket.to_string(), encryption, store: OnceCell::new() }
    }

    async fn store(&self) -> object_store::Result<&Arc<dyn ObjectStore>> {
        self.store.get_or_try_init(|| build_s3(&self.bucket, &self.encryption)).await
    }
}

impl fmt::Display for LazyS3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3(bucket={})", self.bucket)
    }
}

impl fmt::Debug for LazyS3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LazyS3 {{ bucket: {}, encryption: {:?} }}", self.bucket, self.encryption)
    }
}

/// How messages name an object of a bucket.
fn url(bucket: &str, path: &Path) -> String {
    format!("s3://{bucket}/{path}")
}

#[async_trait]
impl ObjectStore for LazyS3 {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        options: PutOptions,
    ) -> object_store::Result<PutResult> {
        let store = self.store().await?;
        retrying(
            || format!("writing {}", url(&self.bucket, location)),
            || store.put_opts(location, payload.clone(), options.clone()),
        )
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        options: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let store = self.store().await?;
        // Starting an upload twice is harmless: the first one, if it was made, is never
        // completed and the bucket's lifecycle rule removes it.
        let upload = retrying(
            || format!("starting an upload of {}", url(&self.bucket, location)),
            || store.put_multipart_opts(location, options.clone()),
        )
        .await?;
        Ok(Box::new(AbortOnDrop { upload: Some(upload), finished: false }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let store = self.store().await?;
        // The body streams later; `object_store` resumes it where it broke off.
        retrying(|| format!("reading {}", url(&self.bucket, location)), || store.get_opts(location, options.clone()))
            .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        let store = self.store().await?;
        retrying(|| format!("reading {}", url(&self.bucket, location)), || store.get_ranges(location, ranges)).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        const CONCURRENT_DELETES: usize = 10;
        let store = self.store.get().cloned();
        let bucket = self.bucket.clone();
        let encryption = self.encryption.clone();
        futures::stream::once(async move {
            let store = match store {
                Some(store) => store,
                None => build_s3(&bucket, &encryption).await?,
            };
            // One object a request, so a failed request is retried for its own object: a bulk
            // delete that failed says nothing about which of its objects are gone.
            Ok::<_, object_store::Error>(
                locations
                    .map(move |path| {
                        let store = store.clone();
                        let bucket = bucket.clone();
                        async move {
                            let path = path?;
                            retrying(
                                || format!("deleting {}", url(&bucket, &path)),
                                || {
                                    let once = futures::stream::once(futures::future::ready(Ok(path.clone()))).boxed();
                                    let mut deleted = store.delete_stream(once);
                                    let path = path.clone();
                                    async move { deleted.next().await.unwrap_or(Ok(path)) }
                                },
                            )
                            .await
                        }
                    })
                    .buffered(CONCURRENT_DELETES),
            )
        })
        .try_flatten()
        .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let store = self.store.get().cloned();
        let bucket = self.bucket.clone();
        let encryption = self.encryption.clone();
        let prefix = prefix.cloned();
        futures::stream::once(async move {
            let store = match store {
                Some(store) => store,
                None => build_s3(&bucket, &encryption).await?,
            };
            // A listing that broke off between pages starts again: pages carry no promise
            // that a resumed listing would neither skip nor repeat an object.
            let listing = retrying(
                || format!("listing {}", url(&bucket, prefix.as_ref().unwrap_or(&Path::default()))),
                || store.list(prefix.as_ref()).try_collect::<Vec<_>>(),
            )
            .await?;
            Ok::<_, object_store::Error>(futures::stream::iter(listing.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let store = self.store().await?;
        retrying(
            || format!("listing {}", url(&self.bucket, prefix.unwrap_or(&Path::default()))),
            || store.list_with_delimiter(prefix),
        )
        .await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        let store = self.store().await?;
        retrying(
            || format!("copying {} to {}", url(&self.bucket, from), url(&self.bucket, to)),
            || store.copy_opts(from, to, options.clone()),
        )
        .await
    }
}

static ABORTS: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());

/// A multipart upload that is aborted if it is dropped before it completes.
#[derive(Debug)]
struct AbortOnDrop {
    upload: Option<Box<dyn MultipartUpload>>,
    finished: bool,
}

#[async_trait]
impl MultipartUpload for AbortOnDrop {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        self.upload.as_mut().expect("not dropped").put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let result = self.upload.as_mut().expect("not dropped").complete().await;
        self.finished = result.is_ok();
        result
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.finished = true;
        self.upload.as_mut().expect("not dropped").abort().await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let (Some(mut upload), false) = (self.upload.take(), self.finished) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let abort = runtime.spawn(async move {
                let _ = upload.abort().await;
            });
            ABORTS.lock().unwrap_or_else(|e| e.into_inner()).push(abort);
        }
    }
}

/// Waits for the aborts of abandoned uploads; the command line calls it before exiting.
pub async fn finish_aborts() {
    let pending: Vec<_> = std::mem::take(&mut *ABORTS.lock().unwrap_or_else(|e| e.into_inner()));
    for abort in pending {
        let _ = abort.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);

    #[async_trait]
    impl MultipartUpload for Recorder {
        fn put_part(&mut self, _: PutPayload) -> object_store::UploadPart {
            Box::pin(async { Ok(()) })
        }
        async fn complete(&mut self) -> object_store::Result<PutResult> {
            self.0.lock().unwrap().push("complete");
            Ok(PutResult { e_tag: None, version: None })
        }
        async fn abort(&mut self) -> object_store::Result<()> {
            self.0.lock().unwrap().push("abort");
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_upload_dropped_unfinished_is_aborted_and_a_completed_one_is_not() {
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        drop(AbortOnDrop { upload: Some(Box::new(Recorder(calls.clone()))), finished: false });
        finish_aborts().await;
        assert_eq!(*calls.lock().unwrap(), vec!["abort"]);
        let mut done = AbortOnDrop { upload: Some(Box::new(Recorder(calls.clone()))), finished: false };
        done.complete().await.unwrap();
        drop(done);
        finish_aborts().await;
        assert_eq!(*calls.lock().unwrap(), vec!["abort", "complete"]);
    }

    #[test]
    fn encryption_options() {
        assert_eq!(Encryption::parse(None, None), Ok(Encryption::BucketDefault));
        assert_eq!(Encryption::parse(Some("AES256"), None), Ok(Encryption::Aes256));
        assert_eq!(Encryption::parse(Some("aws:kms"), Some("key-1")), Ok(Encryption::Kms("key-1".into())));
        assert!(Encryption::parse(Some("aws:kms"), None).unwrap_err().contains("needs a kms_key_id"));
        assert!(Encryption::parse(Some("des"), None).unwrap_err().contains("unknown server-side encryption"));
        assert!(Encryption::parse(None, Some("k")).is_err());
    }
}
