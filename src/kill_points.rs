//! Kill points: named places in a run where the crash tests stop the process, to kill it
//! there with SIGKILL and check what readers see afterwards.
//!
//! `ETL_KILL_POINT=NAME` (or `NAME#N`, the Nth time the run reaches it) arms one point. When
//! the run reaches it, it prints `etl: kill point NAME#N reached` to stderr and waits to be
//! killed. Waiting, not exiting, is deliberate: the test sends the signal, so the process dies
//! the way a recycled machine or an OOM kill ends it, with no destructor, flush or abort run.
//! Other threads go on until the signal arrives, as they would.
//!
//! Unarmed (always, outside those tests) a kill point costs one check of a value read once.
//! The points, in the order a run reaches them:
//! `list` (a source's objects listed), `crawl` (a source crawled), `read.file` (a source
//! object opened, while the targets are written), `stage.written` (a target's files written to
//! staging), `stage.file` (one staged file read back), `materialize.move` and
//! `materialize.copy` (a file put in its run folder), `delta.committed` (a Delta target's
//! commit made, before the catalog's), `publish` (before the catalog
//! publication), `catalog.commit` (inside it: before the embedded catalog commits, or after
//! each Glue call), `published` (after it), `cleanup.delete` (a replaced file deleted),
//! `finished` (before the run's end is recorded).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static ARMED: LazyLock<Option<(String, u32)>> = LazyLock::new(|| {
    let text = std::env::var(crate::config::ETL_KILL_POINT).ok().filter(|t| !t.is_empty())?;
    Some(match text.split_once('#') {
        Some((name, nth)) => (name.to_string(), nth.parse().unwrap_or(1)),
        None => (text, 1),
    })
});

static HITS: AtomicU32 = AtomicU32::new(0);

/// The run reached the point `name`.
pub fn reached(name: &str) {
    let Some((armed, nth)) = ARMED.as_ref() else {
        return;
    };
    if armed != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != *nth {
        return;
    }
    eprintln!("etl: kill point {name}#{nth} reached");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
