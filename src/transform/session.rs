//! The one place a DataFusion `SessionContext` is built. Everything that runs SQL gets its
//! session here, so engine settings (parallelism, memory, spilling) are decided once, and a
//! move to a distributed engine changes this function only.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, SessionStateBuilder};

use super::checked_sum::checked_sum;
use datafusion::prelude::{SessionConfig, SessionContext};

use datafusion::catalog::{CatalogProvider, TableProvider};

use crate::catalog::provider::{CatalogBridge, Overrides, SESSION_SCHEMA, TablesRead, VersionOf};
use crate::catalog::{Catalog, TableName};
use ballista_core::config::{
    BALLISTA_ADAPTIVE_PLANNER_ENABLED, BALLISTA_BROADCAST_JOIN_THRESHOLD_BYTES, BALLISTA_BROADCAST_JOIN_THRESHOLD_ROWS,
    BallistaConfig,
};

use crate::error::Result;
use crate::location::Location;
use crate::location::aws::Encryption;
use crate::location::counting::ReadCounter;
use crate::location::stores::Registry;
use crate::transform::arithmetic::{AthenaArithmeticRule, DecimalArithmeticRule};
use crate::transform::cluster::Engine;
use crate::transform::cluster::planner::ClusterPlanner;
use crate::transform::dates::{DateTruncDaysRule, SqlTimestamps};
use crate::transform::key_join::KeyJoinRule;
use crate::transform::write_order::KeepInputOrder;

/// DataFusion's default catalog name; ours replaces it so `db.table` resolves through it.
const DEFAULT_CATALOG: &str = "datafusion";
/// The memory limit's share below which a partition of a spilling query cannot work.
const MEMORY_PER_PARTITION: usize = 16 * 1024 * 1024;
/// Consumers a "resources exhausted" error names, so it says which operator ran out.
const TOP_CONSUMERS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(5).unwrap();
/// The estimated size of a join side under which it is built once and broadcast to every
/// partition; rows count only when bytes are not estimated. A build side costs the same
/// memory built once or in parts; built in parts, the other side is shuffled to match (W3 at
/// SF10: 60 M lineitem rows through a hash repartition for a 2.28 M-row build side, whose
/// estimate from 677 MB of Parquet is ~135 MB).
const BROADCAST_JOIN_BYTES: usize = 256 * 1024 * 1024;
const BROADCAST_JOIN_ROWS: usize = 8_000_000;
/// A join whose build side's keys (one integer column) span fewer values than this looks
/// them up in an array indexed by key, 4 bytes a slot (DataFusion's perfect hash join, which
/// by default needs 15% of the slots filled or a range under 1,024).
const DIRECT_JOIN_KEY_RANGE: usize = 1 << 23;

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
    /// Where queries run; None is this process (unless a job file says otherwise).
    pub engine: Option<Engine>,
    /// On a cluster: a folder the executors and this process share for what raw scans leave
    /// (a run's staging).
    pub scratch: Option<Location>,
    /// Its queries write targets (a job's run), whose rows keep their sources' order wherever
    /// the query leaves it open.
    pub writes_targets: bool,
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
    if let Some(limit) = options.memory_limit {
        // Each partition of a sort or aggregate needs a working set that cannot spill (the
        // batches it merges, the rows it writes); under a small limit, fewer partitions each
        // get a share that holds one, where more would all fail.
        let affordable = (limit / MEMORY_PER_PARTITION).max(1);
        if config.target_partitions() > affordable {
            config = config.with_target_partitions(affordable);
        }
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
    if options.writes_targets {
        // Under a descending ORDER BY, DataFusion reads Parquet row groups last to first (so
        // that ORDER BY … LIMIT stops early), and rows the ORDER BY does not tell apart would
        // be written in that order, not the sources'.
        settings.optimizer.enable_sort_pushdown = false;
    }
    // A join whose smaller side is estimated under BROADCAST_JOIN_BYTES builds one hash table
    // that every partition probes (Spark's broadcast join; DataFusion's default stops at 1 MiB),
    // instead of hash-repartitioning both sides: the big side is then never shuffled or
    // buffered. W3 (SF1 lineitem ⋈ 228,000 orders of a year, 2.7 MB) took 30% less CPU and
    // less memory so.
    settings.optimizer.hash_join_single_partition_threshold = BROADCAST_JOIN_BYTES;
    settings.optimizer.hash_join_single_partition_threshold_rows = BROADCAST_JOIN_ROWS;
    // Facts joined to a dimension filtered to a period leave sparse keys on the build side
    // (W3: the 228,000 orders of 1995 among keys up to 6,000,000): one array load per probed
    // row instead of a hash table walk: W3 0.220 -> 0.196 s wall, 0.340 -> 0.277 s CPU, for
    // 24 MiB of slots (at most 32 MiB).
    settings.execution.perfect_hash_join_small_build_threshold = DIRECT_JOIN_KEY_RANGE;
    // Read a file's tail once for its footer, as estimates count it, rather than half a MiB
    // (DataFusion's default), which is most of a small file.
    settings.execution.parquet.metadata_size_hint = Some(64 * 1024);
    // One output file per partition unless it grows past the row limit; the writer still
    // encodes row groups in parallel inside it.
    settings.execution.minimum_parallel_output_files = datafusion::config::ConfigNonZeroUsize::try_new(1)?;

    let scheduler = options.engine.as_ref().and_then(Engine::scheduler_url);
    if scheduler.is_some() {
        // A dynamic filter is state a join shares with the scan below it in one process; a
        // cluster runs them in different stages, and its scheduler re-plans joins between
        // stages, which a plan holding such filters refuses.
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.enable_dynamic_filter_pushdown = false;
        optimizer.enable_join_dynamic_filter_pushdown = false;
        optimizer.enable_topk_dynamic_filter_pushdown = false;
        optimizer.enable_aggregate_dynamic_filter_pushdown = false;
        // Ballista's adaptive planner re-plans stages as they finish, with rules that know
        // only its own and DataFusion's nodes; its static planner runs the stages of the plan
        // this session made.
        let extensions = &mut config.options_mut().extensions;
        if extensions.get::<BallistaConfig>().is_none() {
            extensions.insert(BallistaConfig::default());
        }
        let options = config.options_mut();
        options.set(BALLISTA_ADAPTIVE_PLANNER_ENABLED, "false")?;
        // Ballista turns a broadcast join whose build side is estimated over its own threshold
        // (128 MiB) back into a shuffle of both sides: W3 at SF10 (orders of a year, estimated
        // at 135 MB) then wrote 3.2 GB of lineitem to shuffle files, 3.7x the local wall. The
        // same budget as locally decides, and the build side goes to each probing task.
        options.set(BALLISTA_BROADCAST_JOIN_THRESHOLD_BYTES, &BROADCAST_JOIN_BYTES.to_string())?;
        options.set(BALLISTA_BROADCAST_JOIN_THRESHOLD_ROWS, &BROADCAST_JOIN_ROWS.to_string())?;
    }

    let partitions = config.target_partitions().max(1);
    let mut runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(Registry::new(options.encryption.clone(), options.counter.clone())));
    if let Some(limit) = options.memory_limit {
        // Every sort that may spill reserves this much for its merge before it reads a row;
        // DataFusion's 10 MiB a partition would take a small limit whole and fail the sort
        // instead of letting it spill. A quarter of each partition's share leaves the rest to
        // buffer and sort between spills.
        let share = limit / (4 * partitions);
        let settings = config.options_mut();
        settings.execution.sort_spill_reservation_bytes =
            settings.execution.sort_spill_reservation_bytes.min(share).max(64 * 1024);
        // The join's array of keys cannot spill either: at 4 bytes a slot, a quarter of the
        // share at most.
        settings.execution.perfect_hash_join_small_build_threshold =
            settings.execution.perfect_hash_join_small_build_threshold.min(share / 16);
        // The Parquet writer keeps a whole row group in memory, encoded, and cannot spill it:
        // under a limit, row groups that fit a share of it (at a generous 256 bytes a row).
        settings.execution.parquet.max_row_group_size =
            settings.execution.parquet.max_row_group_size.min(share / 256).max(8192);
        // A merge of spill files takes as many files at once as memory allows, each with
        // room for two batches, leaving nothing to the operators after it; a small fan-in
        // (more passes) and batches sized to the share (at 1 KiB a row) leave that room.
        let batch_rows = settings.execution.batch_size.get().min(share / 1024).max(1024);
        settings.execution.batch_size = datafusion::config::ConfigNonZeroUsize::try_new(batch_rows)?;
        runtime = runtime.with_disk_manager_builder(DiskManagerBuilder::default().with_max_spill_merge_fan_in(4));
        // The fair pool gives each spilling operator an equal share, so an aggregate's hash
        // table cannot starve the sort after it (the greedy pool's first come, first served
        // fails the second operator rather than making the first one spill). Spill files go
        // to the disk manager's default, the system's temporary folder.
        let pool = FairSpillPool::new(limit);
        runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(pool, TOP_CONSUMERS)));
    }
    let on_cluster = scheduler.is_some();
    let mut state = SessionStateBuilder::new();
    if let Some(scheduler) = scheduler {
        if options.encryption.values().any(|e| *e != Encryption::BucketDefault) {
            // Executors build their own stores, which know only the buckets' defaults.
            return Err(crate::error::Error::config(
                "a target's encryption is not carried to a cluster's executors yet: run it with --engine local",
            ));
        }
        state = state.with_query_planner(Arc::new(ClusterPlanner::new(scheduler, options.scratch.clone())));
    }
    let mut state = state
        .with_config(config)
        .with_runtime_env(runtime.build_arc()?)
        .with_default_features()
        .with_type_planner(Arc::new(SqlTimestamps))
        .with_analyzer_rule(Arc::new(AthenaArithmeticRule))
        .with_optimizer_rule(Arc::new(DecimalArithmeticRule))
        .with_optimizer_rule(Arc::new(DateTruncDaysRule));
    if !on_cluster {
        // Ballista's scheduler splits each stage's inputs among its tasks, and keeps the
        // whole build side only under the joins it knows: under ours, each task would see a
        // part of it.
        state = state.with_physical_optimizer_rule(Arc::new(KeyJoinRule));
    }
    // Without a memory limit a sort never spills: it may as well sort all in memory at once.
    // A cluster's executors know DataFusion's sort and the numbered rows only.
    let sorts_in_memory = options.memory_limit.is_none() && !on_cluster;
    let state = state.with_physical_optimizer_rule(Arc::new(KeepInputOrder { sorts_in_memory })).build();
    let context = SessionContext::new_with_state(state);
    context.register_udaf(checked_sum().as_ref().clone());
    context.register_udtf(VersionOf::NAME, Arc::new(VersionOf { catalog: catalog.clone() }));
    let bridge = CatalogBridge::load(catalog, overrides).await?;
    context.register_catalog(DEFAULT_CATALOG, Arc::new(bridge));
    Ok(context)
}

/// From now on, `name` reads `provider` in the session `context` (one that [`session`] built).
pub fn override_table(context: &SessionContext, name: TableName, provider: Arc<dyn TableProvider>) -> Result<()> {
    let catalog = context.catalog(DEFAULT_CATALOG);
    bridge(catalog.as_ref())?.set_override(name, provider);
    Ok(())
}

/// The written tables a session has read so far, and how; `None` for a session that
/// [`session`] did not build (it reads no catalog table).
pub fn tables_read(state: &SessionState) -> Option<Arc<TablesRead>> {
    let catalog = state.catalog_list().catalog(DEFAULT_CATALOG);
    bridge(catalog.as_ref()).ok().map(CatalogBridge::tables_read)
}

fn bridge(catalog: Option<&Arc<dyn CatalogProvider>>) -> Result<&CatalogBridge> {
    catalog
        .and_then(|c| (c.as_ref() as &dyn std::any::Any).downcast_ref::<CatalogBridge>())
        .ok_or_else(|| crate::error::Error::runtime("the session was not built by transform::session"))
}
