//! Parquet footers for estimates, read concurrently and cached per object, in memory and under
//! `$ETL_HOME/cache.sqlite`, so estimating over a table of a thousand files costs a thousand
//! small reads once, not once per query. An entry is keyed by the object's URL, size and ETag:
//! a rewritten object misses the cache.

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};

use datafusion::parquet::file::metadata::ParquetMetaData;
use futures::{StreamExt, TryStreamExt};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Result, ResultExt};
use crate::location::Location;
use crate::source::footer;

/// Footer reads in flight at once.
const CONCURRENT_READS: usize = 32;

/// A file's footer, and the bytes reading it costs (metadata, its length and the magic).
#[derive(Debug, Clone)]
pub struct Footer {
    pub metadata: Arc<ParquetMetaData>,
    pub bytes: u64,
}

/// The identity of an object's version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub url: String,
    pub size: u64,
    pub e_tag: String,
}

#[derive(Debug, Default)]
pub struct FooterCache {
    disk: Option<Mutex<Connection>>,
    memory: Mutex<HashMap<ObjectKey, Footer>>,
}

impl FooterCache {
    /// A cache kept under `home`.
    pub fn open(home: &FsPath) -> Result<Self> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = home.join("cache.sqlite");
        let connection = crate::sqlite::open(
            &path,
            "CREATE TABLE IF NOT EXISTS footers (url TEXT NOT NULL, size INTEGER NOT NULL, e_tag TEXT NOT NULL,
             metadata BLOB NOT NULL, PRIMARY KEY (url, size, e_tag))",
            false,
        )?;
        Ok(FooterCache { disk: Some(Mutex::new(connection)), memory: Mutex::default() })
    }

    /// A cache for this process only.
    pub fn in_memory() -> Self {
        FooterCache::default()
    }

    fn cached(&self, key: &ObjectKey) -> Result<Option<Footer>> {
        if let Some(footer) = self.memory.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Ok(Some(footer.clone()));
        }
        let Some(disk) = &self.disk else { return Ok(None) };
        let bytes: Option<Vec<u8>> = disk
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .query_row(
                "SELECT metadata FROM footers WHERE url = ?1 AND size = ?2 AND e_tag = ?3",
                params![key.url, key.size as i64, key.e_tag],
                |r| r.get(0),
            )
            .optional()?;
        let Some(bytes) = bytes else { return Ok(None) };
        let footer = Footer { metadata: footer::decode(&bytes)?, bytes: bytes.len() as u64 + footer::FOOTER_END };
        self.memory.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), footer.clone());
        Ok(Some(footer))
    }

    fn keep(&self, key: &ObjectKey, encoded: &[u8], footer: &Footer) -> Result<()> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), footer.clone());
        if let Some(disk) = &self.disk {
            disk.lock().unwrap_or_else(|e| e.into_inner()).execute(
                "INSERT OR REPLACE INTO footers (url, size, e_tag, metadata) VALUES (?1, ?2, ?3, ?4)",
                params![key.url, key.size as i64, key.e_tag, encoded],
            )?;
        }
        Ok(())
    }

    /// The footers of `files` (each an object of `location`'s store), in order; the missing
    /// ones read concurrently.
    pub async fn footers(
        &self,
        location: &Location,
        files: &[(object_store::path::Path, ObjectKey)],
    ) -> Result<Vec<Footer>> {
        futures::stream::iter(files)
            .map(|(path, key)| -> futures::future::BoxFuture<'_, Result<Footer>> {
                Box::pin(async move {
                    if let Some(footer) = self.cached(key)? {
                        return Ok(footer);
                    }
                    let encoded = footer::fetch(location.store().as_ref(), path, key.size)
                        .await
                        .map_err(|e| e.context(location.display(path)))?;
                    let footer = Footer {
                        metadata: footer::decode(&encoded)?,
                        bytes: encoded.len() as u64 + footer::FOOTER_END,
                    };
                    self.keep(key, &encoded, &footer)?;
                    Ok(footer)
                })
            })
            .buffered(CONCURRENT_READS)
            .try_collect()
            .await
    }
}
