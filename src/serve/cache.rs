//! The result cache of `rows` and `query`: a response is kept for the TTL (API Gateway's
//! 300 s by default) under a key made of the request and the state of every table it reads.
//! A publication changes a table's state, so the next request makes a new key and is
//! computed from the new data at once (what API Gateway's cache cannot do); the old entry is
//! never served again and ages out. A hit costs a catalog lookup per table and no scan.
//!
//! Entries are bounded by total bytes; the oldest go first. Responses larger than a tenth of
//! the bound are not kept, so one huge page cannot empty the cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::catalog::TableName;

/// A response as it was sent.
#[derive(Debug, Clone)]
pub struct Cached {
    pub content_type: &'static str,
    pub body: Bytes,
    pub next_cursor: Option<String>,
    pub rows: usize,
    /// The query had more rows than it returned.
    pub truncated: bool,
}

pub type CacheKey = [u8; 32];

/// Statements whose tables are remembered at most; beyond, the memory starts again.
const REMEMBERED_STATEMENTS: usize = 10_000;

#[derive(Debug)]
pub struct Cache {
    ttl: Duration,
    max_bytes: usize,
    inner: Mutex<Inner>,
    /// The catalog tables each SQL statement read when it was planned.
    reads: Mutex<HashMap<String, Vec<TableName>>>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<CacheKey, (Instant, Cached)>,
    order: VecDeque<CacheKey>,
    bytes: usize,
}

impl Cache {
    pub fn new(ttl: Duration, max_bytes: usize) -> Self {
        Cache { ttl, max_bytes, inner: Mutex::new(Inner::default()), reads: Mutex::new(HashMap::new()) }
    }

    /// The key of a request (its parts, in a fixed order) over tables in the given states.
    pub fn key<'a>(parts: impl IntoIterator<Item = &'a str>) -> CacheKey {
        let mut hasher = Sha256::new();
        for part in parts {
            // Lengths first, so that no two lists of parts hash alike.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().into()
    }

    /// The tables `sql` read when it was last planned, if it was.
    pub fn tables_read(&self, sql: &str) -> Option<Vec<TableName>> {
        if self.ttl.is_zero() {
            return None;
        }
        self.reads.lock().unwrap_or_else(|e| e.into_inner()).get(sql).cloned()
    }

    pub fn remember_tables(&self, sql: &str, tables: Vec<TableName>) {
        let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        if reads.len() >= REMEMBERED_STATEMENTS {
            reads.clear();
        }
        reads.insert(sql.to_string(), tables);
    }

    pub fn get(&self, key: &CacheKey) -> Option<Cached> {
        if self.ttl.is_zero() {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (stored, cached) = inner.entries.get(key)?;
        (stored.elapsed() < self.ttl).then(|| cached.clone())
    }

    pub fn put(&self, key: CacheKey, cached: Cached) {
        let size = cached.body.len();
        if self.ttl.is_zero() || size > self.max_bytes / 10 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, old)) = inner.entries.insert(key, (Instant::now(), cached)) {
            inner.bytes -= old.body.len();
            inner.order.retain(|k| *k != key);
        }
        inner.order.push_back(key);
        inner.bytes += size;
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else { break };
            if let Some((_, gone)) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.body.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bytes: usize) -> Cached {
        Cached {
            content_type: "application/json",
            body: Bytes::from(vec![b'x'; bytes]),
            next_cursor: None,
            rows: 1,
            truncated: false,
        }
    }

    #[test]
    fn entries_expire_and_the_oldest_go_first() {
        let cache = Cache::new(Duration::from_secs(60), 100);
        let (a, b) = (Cache::key(["a"]), Cache::key(["b"]));
        assert_ne!(Cache::key(["ab", "c"]), Cache::key(["a", "bc"]));
        cache.put(a, entry(8));
        cache.put(b, entry(8));
        assert!(cache.get(&a).is_some());
        for i in 0..20 {
            cache.put(Cache::key([i.to_string().as_str()]), entry(8));
        }
        assert!(cache.get(&a).is_none(), "evicted");
        cache.put(a, entry(50));
        assert!(cache.get(&a).is_none(), "too large to keep");
        let none = Cache::new(Duration::ZERO, 100);
        none.put(a, entry(1));
        assert!(none.get(&a).is_none());
    }
}
