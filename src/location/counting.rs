//! Counting what a query really reads: the bytes each read asks for (before the store merges
//! nearby ranges into fewer requests), so `etl cost --measure` can hold an estimate against
//! what the engine fetches when it runs the same query. The store DataFusion reads through
//! ([`super::engine`]) counts into a [`ReadCounter`]; the cost module only reads its totals.

use std::sync::atomic::{AtomicU64, Ordering};

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

    pub(super) fn count(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}
