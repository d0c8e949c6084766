//! The one place a DataFusion `SessionContext` is built. Everything that runs SQL gets its
//! session here, so engine settings (parallelism, memory, spilling) are decided once, and a
//! move to a distributed engine changes this function only.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::catalog::Catalog;
use crate::catalog::provider::{CatalogBridge, Overrides, SESSION_SCHEMA};
use crate::cost::measure::ReadCounter;
use crate::error::Result;
use crate::location::aws::Encryption;
use crate::location::stores::Registry;

/// DataFusion's default catalog name; ours replaces it so `db.table` resolves through it.
const DEFAULT_CATALOG: &str = "datafusion";

#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Parallel partitions; 0 means one per core.
    pub target_partitions: usize,
    /// Bytes of memory that queries may use before they spill to disk; None for no limit.
    pub memory_limit: Option<usize>,
    /// The server-side encryption of what is written to each bucket.
    pub encryption: HashMap<String, Encryption>,
    /// Counts what queries read, when set (`etl cost --measure`).
    pub counter: Option<Arc<ReadCounter>>,
}

pub async fn session(
    catalog: Arc<dyn Catalog>,
    overrides: Overrides,
    options: &EngineOptions,
) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(DEFAULT_CATALOG, SESSION_SCHEMA)
        .with_information_schema(true);
    if options.target_partitions > 0 {
        config = config.with_target_partitions(options.target_partitions);
    }
    let settings = config.options_mut();
    // Spans let SQL errors point at the line they are about.
    settings.sql_parser.collect_spans = true;
    // Filters stay out of the Parquet decoder (DataFusion's default): pushed down, the hash
    // join's dynamic filter is evaluated row by row while decoding the probe side, which cost
    // W3 (TPC-H SF1, lineitem join orders) 11% more instructions (callgrind: 4.84 G against
    // 4.31 G) and ~15% wall at SF10, for 1% saved on Q1. Row groups and pages are still pruned
    // by statistics either way.
    settings.execution.parquet.pushdown_filters = false;
    // Read a file's tail once for its footer, as estimates count it, rather than half a MiB
    // (DataFusion's default), which is most of a small file.
    settings.execution.parquet.metadata_size_hint = Some(64 * 1024);
    // One output file per partition unless it grows past the row limit; the writer still
    // encodes row groups in parallel inside it.
    settings.execution.minimum_parallel_output_files = datafusion::config::ConfigNonZeroUsize::try_new(1)?;

    let mut runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(Registry::new(options.encryption.clone(), options.counter.clone())));
    if let Some(limit) = options.memory_limit {
        runtime = runtime.with_memory_limit(limit, 1.0);
    }
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime.build_arc()?)
        .with_default_features()
        .build();
    let context = SessionContext::new_with_state(state);
    let bridge = CatalogBridge::load(catalog, overrides).await?;
    context.register_catalog(DEFAULT_CATALOG, Arc::new(bridge));
    Ok(context)
}
