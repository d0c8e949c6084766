//! Where data lives: a local path, `file://…`, or `s3://bucket/prefix/`.
//!
//! A [`Location`] pairs an `object_store` with the key prefix inside it and keeps the text the
//! user wrote, so every message names objects the way the user named their folder
//! (`data/orders/dt=2026-11-02/a.csv`, not an absolute path they never typed). All I/O on
//! sources and targets goes through the store, so local folders and S3 prefixes behave alike.
//! Stores are shared: one per bucket (and server-side encryption setting), see [`stores`].

pub mod aws;
pub mod counting;
pub mod engine;
pub mod retry;
pub mod stores;

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use futures::{StreamExt, TryStreamExt};
use object_store::path::{Path, PathPart};
use object_store::{GetResultPayload, ListResult, ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::error::{Error, Result, ResultExt};

#[derive(Clone)]
pub struct Location {
    /// What the user wrote, without a trailing slash.
    text: String,
    scheme: Scheme,
    store: Arc<dyn ObjectStore>,
    /// The key of the location itself inside the store.
    prefix: Path,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Scheme {
    Local,
    S3 { bucket: String },
}

impl Location {
    pub fn parse(text: &str) -> Result<Location> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Error::config("empty location"));
        }
        if let Some(rest) = trimmed.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::config(format!("location '{text}' names no bucket")));
            }
            let prefix =
                Path::parse(key.trim_end_matches('/')).map_err(|e| Error::config(format!("location '{text}': {e}")))?;
            return Ok(Location {
                text: trimmed.trim_end_matches('/').to_string(),
                store: stores::s3(bucket, &aws::Encryption::BucketDefault),
                scheme: Scheme::S3 { bucket: bucket.to_string() },
                prefix,
            });
        }
        // `s3:/bucket/x` (one slash) would be a local folder named `s3:`.
        if let Some((scheme, rest)) = trimmed.split_once(':') {
            let looks_like_scheme = !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric());
            if looks_like_scheme && rest.starts_with('/') && !rest.starts_with("//") {
                return Err(Error::config(format!(
                    "location '{text}': '{scheme}:/' is not a scheme's start (did you mean {scheme}://?)"
                )));
            }
        }
        if let Some((scheme, _)) = trimmed.split_once("://") {
            if scheme != "file" {
                return Err(Error::config(format!(
                    "location '{text}': unsupported scheme '{scheme}://' (use a local path, file:// or s3://)"
                )));
            }
        }
        let local = trimmed.strip_prefix("file://").unwrap_or(trimmed);
        let absolute = lexically_normal(
            &std::path::absolute(local).map_err(|e| Error::config(format!("location '{text}': {e}")))?,
        );
        let prefix =
            Path::from_absolute_path(&absolute).map_err(|e| Error::config(format!("location '{text}': {e}")))?;
        Ok(Location {
            text: trimmed.trim_end_matches('/').to_string(),
            scheme: Scheme::Local,
            store: stores::local(),
            prefix,
        })
    }

    pub fn is_local(&self) -> bool {
        self.scheme == Scheme::Local
    }

    /// The bucket of an S3 location.
    pub fn bucket(&self) -> Option<&str> {
        match &self.scheme {
            Scheme::S3 { bucket } => Some(bucket),
            Scheme::Local => None,
        }
    }

    /// The same location, read and written through another store (the session's, which may
    /// count or encrypt).
    pub fn with_store(mut self, store: Arc<dyn ObjectStore>) -> Location {
        self.store = store;
        self
    }

    /// The same location, written through a store that encrypts what it writes.
    pub fn with_encryption(mut self, encryption: &aws::Encryption) -> Location {
        if let Scheme::S3 { bucket } = &self.scheme {
            self.store = stores::s3(bucket, encryption);
        }
        self
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key of this location inside its store.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The URL DataFusion registers the store under: `file://` or `s3://bucket`.
    pub fn store_url(&self) -> ObjectStoreUrl {
        match &self.scheme {
            Scheme::Local => ObjectStoreUrl::local_filesystem(),
            Scheme::S3 { bucket } => {
                ObjectStoreUrl::parse(format!("s3://{bucket}")).expect("bucket names are valid URLs")
            }
        }
    }

    /// The canonical, absolute form recorded in the catalog (`file:///abs/path`, `s3://b/k`).
    pub fn url(&self) -> String {
        self.url_of(&self.prefix)
    }

    /// The folder on this machine, for a local location.
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        match self.scheme {
            // object_store's local store names files by their keys as they are (`x%20y` is a
            // folder of that name, not `x y`).
            Scheme::Local => Some(std::path::PathBuf::from(format!("/{}", self.prefix.as_ref()))),
            Scheme::S3 { .. } => None,
        }
    }

    /// Creates this local folder and its parents (object stores have no folders). A parent that
    /// another process removes while it is empty, between `create_dir_all`'s steps, is created
    /// again: object_store's writer, which creates the parents itself, fails then ("Unable to
    /// create dir"). Attempts are bounded by time, not by count: on a loaded machine a remover
    /// won a hundred attempts in a row (see the regression test named after this race).
    pub fn create_folder(&self) -> Result<()> {
        let Some(path) = self.local_path() else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match std::fs::create_dir_all(&path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::time::Instant::now() < deadline => {
                    std::thread::yield_now()
                }
                Err(e) => return Err(Error::from(e).context(format!("creating {self}"))),
            }
        }
    }

    /// The URL that names this location to DataFusion, which parses the URLs it is given: a
    /// `%` in a key is escaped, so that it writes to the key itself (a target at `x%20y/`
    /// wrote to `x y/`, where the run, listing `x%20y/`, found no file), and so are `#` and `?`,
    /// which would end the path (a target at `out#v2/` wrote to `out/` and published nothing).
    pub fn datafusion_url(&self) -> String {
        let url = self.url();
        let (scheme, key) = url.split_once("://").expect("a URL has a scheme");
        format!("{scheme}://{}", key.replace('%', "%25").replace('#', "%23").replace('?', "%3F"))
    }

    /// The canonical URL of an object in this location's store.
    pub fn url_of(&self, path: &Path) -> String {
        match &self.scheme {
            Scheme::Local => format!("file:///{path}"),
            Scheme::S3 { bucket } => format!("s3://{bucket}/{path}"),
        }
    }

    /// The same location, named in messages as `text` (as a client wrote it, on an executor).
    pub fn named(mut self, text: &str) -> Location {
        self.text = text.trim_end_matches('/').to_string();
        self
    }

    /// A location below this one. `relative` is key text, as keys and this module's URLs
    /// spell it: a Hive folder `dt=00%3A00` is that key, not `%3A` escaped once more (which
    /// readers would take for the value `00%3A00`). A part no key can hold as it is (`..`, a
    /// control character) is percent-encoded.
    pub fn join(&self, relative: &str) -> Location {
        let mut prefix = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            let part = PathPart::parse(part).unwrap_or_else(|_| PathPart::from(part));
            prefix = prefix.clone().join(part);
        }
        Location {
            text: format!("{}/{}", self.text, relative.trim_matches('/')),
            scheme: self.scheme.clone(),
            store: self.store.clone(),
            prefix,
        }
    }

    /// The key of `path` relative to this location, or None when it lies outside.
    pub fn relative<'a>(&self, path: &'a Path) -> Option<Vec<String>> {
        path.prefix_match(&self.prefix).map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
    }

    /// How messages name an object under this location.
    pub fn display(&self, path: &Path) -> String {
        match self.relative(path) {
            Some(parts) if parts.is_empty() => self.text.clone(),
            Some(parts) => format!("{}/{}", self.text, parts.join("/")),
            None => path.to_string(),
        }
    }

    /// The object this location names when it is a single object, else every object under
    /// it, sorted by key. Folders below the location are listed concurrently (each listing
    /// paginated by the store), so a Hive layout of many partitions is not one long chain of
    /// pages.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>> {
        const CONCURRENT_LISTINGS: usize = 16;
        // A bucket's root is never an object; HEAD on it is S3's HeadBucket, which answers 200.
        if !self.prefix.as_ref().is_empty() {
            match self.store.head(&self.prefix).await {
                Ok(meta) => return Ok(vec![meta]),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::from(e).context(format!("reading {self}"))),
            }
        }
        let not_found_is_empty = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => Ok(ListResult { common_prefixes: Vec::new(), objects: Vec::new() }),
            e => Err(e),
        };
        let top = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .or_else(not_found_is_empty)
            .with_context(|| format!("listing {self}"))?;
        let mut objects = top.objects;
        let below: Vec<Vec<ObjectMeta>> = futures::stream::iter(top.common_prefixes)
            .map(|folder| -> futures::future::BoxFuture<'_, Result<Vec<ObjectMeta>>> {
                Box::pin(async move {
                    self.store
                        .list(Some(&folder))
                        .try_collect::<Vec<_>>()
                        .await
                        .with_context(|| format!("listing {self}"))
                })
            })
            .buffer_unordered(CONCURRENT_LISTINGS)
            .try_collect()
            .await?;
        objects.extend(below.into_iter().flatten());
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    pub async fn get_bytes(&self, path: &Path) -> Result<bytes::Bytes> {
        let result = self.store.get(path).await.with_context(|| format!("reading {}", self.display(path)))?;
        result.bytes().await.with_context(|| format!("reading {}", self.display(path)))
    }

    /// A blocking reader of the whole object, for decoders that want `std::io::Read`. Must be
    /// called from a thread that may block (rayon, `spawn_blocking`), inside a Tokio runtime.
    pub fn open_blocking(&self, path: &Path) -> Result<Box<dyn Read + Send>> {
        let handle = tokio::runtime::Handle::current();
        let result =
            handle.block_on(self.store.get(path)).with_context(|| format!("reading {}", self.display(path)))?;
        Ok(match result.payload {
            GetResultPayload::File(file, _) => Box::new(file),
            GetResultPayload::Stream(stream) => {
                let stream = stream.map(|chunk| chunk.map_err(std::io::Error::other));
                Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
                    tokio_util::io::StreamReader::new(stream),
                    handle,
                ))
            }
        })
    }

    pub async fn put(&self, path: &Path, data: bytes::Bytes) -> Result<()> {
        self.store.put(path, data.into()).await.with_context(|| format!("writing {}", self.display(path)))?;
        Ok(())
    }

    pub async fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.store
            .rename(from, to)
            .await
            .with_context(|| format!("moving {} to {}", self.display(from), self.display(to)))
    }

    pub async fn copy(&self, from: &Path, to: &Path) -> Result<()> {
        self.store
            .copy(from, to)
            .await
            .with_context(|| format!("copying {} to {}", self.display(from), self.display(to)))
    }

    /// Deletes an object; one that is already gone is not an error (deletes are replayed).
    pub async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::from(e).context(format!("deleting {}", self.display(path)))),
        }
    }

    /// Whether `other` lies inside this location (folder by folder: `out/ab` is not inside
    /// `out/a`).
    pub fn contains(&self, other: &Location) -> bool {
        self.scheme == other.scheme && other.prefix.prefix_matches(&self.prefix)
    }

    /// Whether `other` lies inside this location or this inside `other`.
    pub fn overlaps(&self, other: &Location) -> bool {
        self.scheme == other.scheme
            && (other.prefix.prefix_matches(&self.prefix) || self.prefix.prefix_matches(&other.prefix))
    }
}

/// Keys are percent-encoded by `object_store` (and folder names by Hive): `a%2Fb` is `a/b`. A
/// `%` not followed by two hex digits is itself.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(high), Some(low)) =
                (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b)))
            {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/a/b/../c/./d` -> `/a/c/d`, without touching the filesystem (the folder may not exist yet).
fn lexically_normal(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({})", self.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_keep_the_users_spelling_in_messages() {
        let location = Location::parse("data/orders/").unwrap();
        assert!(location.is_local());
        let file = location.prefix().clone().join("dt=2026-11-02").join("a.csv");
        assert_eq!(location.display(&file), "data/orders/dt=2026-11-02/a.csv");
        assert!(location.url().starts_with("file:///"));
        assert!(location.url().ends_with("data/orders"));
    }

    #[test]
    fn file_urls_and_paths_name_the_same_place() {
        let cwd = std::env::current_dir().unwrap();
        let a = Location::parse(&format!("file://{}/x", cwd.display())).unwrap();
        let b = Location::parse("x").unwrap();
        assert_eq!(a.prefix(), b.prefix());
    }

    #[test]
    fn dot_segments_are_resolved() {
        let a = Location::parse("/tmp/x/../y/./z").unwrap();
        assert_eq!(a.url(), "file:///tmp/y/z");
    }

    #[test]
    fn overlap_is_containment_either_way() {
        let a = Location::parse("/tmp/a").unwrap();
        assert!(a.overlaps(&Location::parse("/tmp/a/b").unwrap()));
        assert!(Location::parse("/tmp/a/b").unwrap().overlaps(&a));
        assert!(!a.overlaps(&Location::parse("/tmp/ab").unwrap()));
    }

    #[test]
    fn overlap_compares_normalised_locations() {
        let overlap = |a: &str, b: &str| Location::parse(a).unwrap().overlaps(&Location::parse(b).unwrap());
        let cwd = std::env::current_dir().unwrap();
        assert!(overlap("data/in/", "./data/in"));
        assert!(overlap("data/in", "data/in/sub/"));
        assert!(overlap("./data/in/sub/../", "data"));
        assert!(overlap(&format!("file://{}/data/in/", cwd.display()), "data/in/out"));
        assert!(overlap("/", "/tmp/x"), "the root holds everything");
        assert!(!overlap("data/in", "data/inx"));
        assert!(!overlap("data/in", "other/in"));
        assert!(overlap("s3://b/raw/", "s3://b/raw"));
        assert!(overlap("s3://b/raw/", "s3://b/raw/curated/"));
        assert!(overlap("s3://b", "s3://b/raw/"), "a whole bucket holds every prefix");
        assert!(overlap("s3://b/raw//", "s3://b/raw/x"));
        assert!(!overlap("s3://b/raw/", "s3://b/rawer/"));
        assert!(!overlap("s3://a/x/", "s3://b/x/"));
        assert!(!overlap("s3://b/x/", "/b/x"), "S3 and local never overlap");
    }

    #[test]
    fn s3_locations_name_bucket_and_prefix() {
        let location = Location::parse("s3://raw-data/orders/").unwrap();
        assert_eq!(location.bucket(), Some("raw-data"));
        assert_eq!(location.prefix().as_ref(), "orders");
        assert_eq!(location.url(), "s3://raw-data/orders");
        assert_eq!(location.store_url().as_str(), "s3://raw-data/");
        let file = location.prefix().clone().join("dt=1").join("a.csv");
        assert_eq!(location.display(&file), "s3://raw-data/orders/dt=1/a.csv");
        assert_eq!(Location::parse("s3://b").unwrap().url(), "s3://b/");
        assert!(Location::parse("s3:///x").is_err());
    }

    #[test]
    fn keys_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn unknown_schemes_are_configuration_errors() {
        let err = Location::parse("gs://bucket/x").unwrap_err();
        assert_eq!(err.kind().exit_code(), 2);
        assert!(err.message().contains("gs://"));
    }
}
