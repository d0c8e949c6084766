//! Writing a target's rows as partitioned Parquet into its staging folder, with DataFusion's
//! parallel writer: row groups of up to 512Ki rows (Athena reads row groups in parallel and
//! favours large ones), page-level statistics and page indexes for pruning, dictionaries only
//! for columns whose values repeat.

use datafusion::common::config::{ExecutionOptions, MaxRowGroupBytes, TableParquetOptions};
use datafusion::config::ConfigNonZeroUsize;
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use futures::TryStreamExt;

use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{Expr, LogicalPlan, Projection, Sort, SortExpr, SubqueryAlias};
use datafusion::prelude::ident;
use std::sync::Arc;

use crate::transform::zorder::ZOrderKey;

use super::{
    FileLayout, LAYOUT_METADATA_KEY, MAX_ROW_GROUP_ROWS, RunLiveness, StagedFile, StagedTarget, TargetSpec, clustering,
};
use crate::error::{Error, Result, ResultExt};
use crate::layout;
use crate::location::Location;
use crate::schema::TableSchema;

/// Rows per row group. The writer holds a row group, encoded, until it is complete, two at a
/// time: half of DataFusion's million rows took W1 (TPC-H lineitem, ~17 MB row groups) from
/// 301 to 251 MiB peak for 2% more CPU (a quarter: 230 MiB, +6%). Polars writes as many.
const ROW_GROUP_ROWS: usize = 512 * 1024;

/// Rows per row group of sorted rows: each holds a narrower range of the sort keys, so a filter
/// on them skips more. On flights ×10 sorted by year, month, day (benches/athena_bytes.py),
/// 128Ki rows rather than 512Ki took the bytes of one day's rows from 0.87 to 0.33 of
/// awswrangler's, of one month's from 0.85 to 0.32 and of one year's from 0.44 to 0.17; Athena
/// reads row groups of this size (megabytes to tens of megabytes) without trouble.
const SORTED_ROW_GROUP_ROWS: usize = 128 * 1024;

/// A column chunk's dictionary is given up for plain values once it holds this much (DataFusion:
/// 1 MiB). Interning every value in a hash table that outgrows the CPU's caches was the
/// writer's costliest step on W1 (14% of its time): TPC-H's order keys, 131,072 distinct in a
/// row group, filled a 1 MiB dictionary exactly and never fell back, for a column larger than
/// plain values give. W1 at 512 KiB: wall and CPU -5%, file 208 -> 202 MiB. Smaller limits
/// cost more than they save: at 256 KiB a column of 50,000 distinct ints in 2 M rows loses its
/// dictionary and grows 4.6 -> 8.1 MiB, at 128 KiB one of 10,000 product names 3.6 -> 10 MiB.
const DICTIONARY_PAGE_BYTES: usize = 512 * 1024;

/// Runs the target's query, already shaped to `schema` (data columns, then partition keys as
/// folder text), and writes its rows to the run's staging folder.
pub(super) async fn stage(
    df: DataFrame,
    target: &TargetSpec,
    schema: TableSchema,
    run_id: &str,
) -> Result<StagedTarget> {
    let staging = layout::staging(&target.location, run_id);
    let keys: Vec<String> = schema.key_names().map(str::to_string).collect();
    let output = df.schema().as_arrow().clone();
    let clustering = clustering::for_query(&target.layout, df.logical_plan(), &target.checks, &keys);
    check_layout_columns(target, &output, &clustering)?;
    let df = match clustering.sort_by.is_empty() {
        true => df,
        // Partition keys first, so that each partition's rows come together; the sort is made
        // stable where the plan is written (transform::write_order).
        false => {
            let mut order: Vec<_> = keys.iter().map(|c| ident(c).sort(true, false)).collect();
            match target.layout.zorder && clustering.sort_by.len() > 1 {
                true => order.push(ZOrderKey::of(clustering.sort_by.iter().map(ident).collect()).sort(true, false)),
                false => order.extend(clustering.sort_by.iter().map(|c| ident(c).sort(true, false))),
            }
            sort_ahead_of_query_order(df, order)?
        }
    };

    let df = with_execution(df, |execution| {
        // Files of at most `file_rows` rows (`etl compact`'s target size).
        if let Some(rows) = target.layout.file_rows {
            execution.soft_max_rows_per_output_file = ConfigNonZeroUsize::try_new(rows.max(1))?;
        }
        // The writer learns a row's size from what a row group holds already: the first batch
        // of each is written whole, so batches are kept small where row groups are sized in
        // bytes.
        if target.layout.row_group_bytes.is_some() {
            execution.batch_size = ConfigNonZeroUsize::try_new(BYTE_SIZED_BATCH_ROWS)?;
        }
        Ok(())
    })?;

    let mut options = TableParquetOptions::default();
    options.global.compression = Some(target.compression.writer_setting().to_string());
    // Smaller when the session's memory limit asks for it (see transform::session).
    let session_rows = df.task_ctx().session_config().options().execution.parquet.max_row_group_size;
    let sorted = !clustering.sort_by.is_empty();
    options.global.max_row_group_size = row_group_rows(&target.layout, sorted).min(session_rows);
    if let Some(bytes) = target.layout.row_group_bytes {
        // Parquet's own estimate of a row group's encoded size, as parquet-mr's
        // `parquet.block.size`; DataFusion's parallel writer of one file does not honour it.
        options.global.max_row_group_bytes = Some(MaxRowGroupBytes::try_new(bytes as usize)?);
        options.global.allow_single_file_parallelism = false;
    }
    options.global.statistics_enabled = Some("page".to_string());
    options.global.dictionary_page_size_limit = DICTIONARY_PAGE_BYTES;
    options.global.created_by = format!("etl {}", env!("CARGO_PKG_VERSION"));
    let recorded = target.layout.recorded(&clustering.sort_by)?;
    options.key_value_metadata.insert(LAYOUT_METADATA_KEY.to_string(), Some(recorded));
    for column in &target.layout.bloom_filter {
        let column_options = options.column_specific_options.entry(column.clone()).or_default();
        column_options.bloom_filter_enabled = Some(true);
    }
    // `_etl_staging` is shared by the runs of a table and removed by the last one to finish
    // while it is empty; once this run's folder exists in it, it is not empty.
    staging.create_folder()?;
    let partitioned = !keys.is_empty();
    let counts = df
        .write_parquet(
            &format!("{}/", staging.datafusion_url()),
            DataFrameWriteOptions::new().with_partition_by(keys),
            Some(options),
        )
        .await
        .map_err(|e| {
            let exhausted = matches!(e.find_root(), datafusion::error::DataFusionError::ResourcesExhausted(_));
            let error = Error::from(e);
            let error = match exhausted && partitioned {
                // DataFusion's writers cannot spill: the message says only which one ran out.
                true => Error::runtime(format!(
                    "{} (a partitioned target keeps a Parquet writer open for every partition it writes, each \
                     holding a row group until the input ends: raise --memory-limit, set a smaller row_group_rows, \
                     or partition by fewer values)",
                    error.message()
                )),
                false => error,
            };
            error.context(format!("writing target {}", target.table))
        })?;
    crate::kill_points::reached("stage.written");
    let written: u64 = counts
        .iter()
        .filter_map(|batch| batch.column(0).as_any().downcast_ref::<datafusion::arrow::array::UInt64Array>())
        .flat_map(|counts| counts.iter().flatten())
        .sum();

    let objects: Vec<object_store::ObjectMeta> = staging
        .store()
        .list(Some(staging.prefix()))
        .try_collect()
        .await
        .with_context(|| format!("listing {staging}"))?;
    let mut objects: Vec<_> = objects.into_iter().filter(|o| o.location.extension() == Some("parquet")).collect();
    objects.sort_by(|a, b| a.location.cmp(&b.location));

    let mut files = Vec::with_capacity(objects.len());
    for (sequence, object) in objects.iter().enumerate() {
        let mut folders = staging.relative(&object.location).unwrap_or_default();
        folders.pop();
        let values: Vec<Option<String>> = folders.iter().map(|folder| layout::partition_value(folder)).collect();
        // A value no reader takes back (a date past 9999-12-31 is `+10000-01-01`) would make
        // every query of the table fail.
        for (key, value) in schema.partition_keys.iter().zip(&values) {
            crate::catalog::provider::partition_scalar(key, value.as_deref()).map_err(|e| {
                Error::query(format!("target {}: {e}, which no reader of the table could read back", target.table))
            })?;
        }
        let metadata = DFParquetMetadata::new(staging.store().as_ref(), object)
            .fetch_metadata()
            .await
            .with_context(|| format!("reading back {}", staging.display(&object.location)))?;
        crate::kill_points::reached("stage.file");
        let name = layout::data_file_name(run_id, sequence, target.compression.name());
        let published = layout::run_folder(&target.location, schema.key_names(), &values, run_id).join(&name);
        files.push(StagedFile {
            staged: format!(
                "{}/{}",
                staging.url().trim_end_matches('/'),
                staging.relative(&object.location).unwrap_or_default().join("/")
            ),
            published: published.url(),
            partition_values: values,
            size: object.size,
            rows: metadata.file_metadata().num_rows().max(0) as u64,
        });
    }
    // What the writer wrote is what the run finds in staging: rows written elsewhere (a path
    // the writer read differently) would publish an empty version of the table.
    let found: u64 = files.iter().map(|f| f.rows).sum();
    if found != written {
        return Err(Error::runtime(format!(
            "target {}: the writer wrote {written} rows, but {staging} holds {found}; nothing was published",
            target.table
        )));
    }
    Ok(StagedTarget { schema, files, clustering })
}

/// The columns the target's layout names (its order, its bloom filters) are the query's.
pub fn check_layout_columns(
    target: &TargetSpec,
    output: &datafusion::arrow::datatypes::Schema,
    clustering: &clustering::Clustering,
) -> Result<()> {
    let named = clustering.sort_by.iter().map(|c| ("sort_by", c));
    for (option, column) in named.chain(target.layout.bloom_filter.iter().map(|c| ("bloom_filter", c))) {
        if output.field_with_name(column).is_err() {
            let columns: Vec<&str> = output.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(Error::config(format!(
                "target {}: {option}: the query's output has no column '{column}' (its columns: {})",
                target.table,
                columns.join(", ")
            )));
        }
    }
    Ok(())
}

/// `df` ordered by `order`, then by the query's own `ORDER BY`: the target's order is a
/// clustering, within which the query's order is the tie-break (DataFusion drops a sort that
/// another one follows, so a sort on top would lose it). The keys go into the query's sort,
/// written in the terms of its input; where they cannot be (no sort, a `LIMIT`, a union, a
/// volatile expression), the rows are sorted on top.
fn sort_ahead_of_query_order(df: DataFrame, order: Vec<SortExpr>) -> Result<DataFrame> {
    let (state, plan) = df.into_parts();
    match with_leading_keys(&plan, order.clone())? {
        Some(plan) => Ok(DataFrame::new(state, plan)),
        None => Ok(DataFrame::new(state, plan).sort(order)?),
    }
}

/// `plan` with `order` (on its output columns) put ahead of its query's sort keys, or None.
fn with_leading_keys(plan: &LogicalPlan, order: Vec<SortExpr>) -> Result<Option<LogicalPlan>> {
    Ok(match plan {
        LogicalPlan::Sort(sort) if sort.fetch.is_none() => {
            let expr = order.into_iter().chain(sort.expr.iter().cloned()).collect();
            Some(LogicalPlan::Sort(Sort { expr, input: sort.input.clone(), fetch: None }))
        }
        LogicalPlan::Projection(projection) => {
            let computed = |column: &Column| {
                let index = projection.schema.maybe_index_of_column(column)?;
                Some(projection.expr[index].clone().unalias())
            };
            let Some(order) = in_terms_of(order, computed)? else { return Ok(None) };
            match with_leading_keys(&projection.input, order)? {
                Some(input) => {
                    Some(LogicalPlan::Projection(Projection::try_new(projection.expr.clone(), Arc::new(input))?))
                }
                None => None,
            }
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let inner = |column: &Column| {
                let index = alias.schema.maybe_index_of_column(column)?;
                Some(Expr::Column(Column::from(alias.input.schema().qualified_field(index))))
            };
            let Some(order) = in_terms_of(order, inner)? else { return Ok(None) };
            match with_leading_keys(&alias.input, order)? {
                Some(input) => {
                    Some(LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(input), alias.alias.clone())?))
                }
                None => None,
            }
        }
        _ => None,
    })
}

/// `order` with each column replaced by what `lookup` says it is below; None when a column is
/// not found or stands for a volatile expression (evaluated again, it would differ).
fn in_terms_of(order: Vec<SortExpr>, lookup: impl Fn(&Column) -> Option<Expr>) -> Result<Option<Vec<SortExpr>>> {
    let mut complete = true;
    let mut rewritten = Vec::with_capacity(order.len());
    for sort in order {
        let expr = sort
            .expr
            .transform(|expr| match expr {
                Expr::Column(column) => match lookup(&column) {
                    Some(found) if !found.is_volatile() => Ok(Transformed::yes(found)),
                    _ => {
                        complete = false;
                        Ok(Transformed::no(Expr::Column(column)))
                    }
                },
                other => Ok(Transformed::no(other)),
            })?
            .data;
        rewritten.push(SortExpr { expr, ..sort });
    }
    Ok(complete.then_some(rewritten))
}

/// Rows per batch written where row groups are sized in bytes (`row_group_bytes`).
const BYTE_SIZED_BATCH_ROWS: usize = 1024;

/// The same query, run with the execution options `set` changes.
/// The state is changed in place: rebuilt, it would lose the catalog the session was built
/// with (and what it recorded of the tables the run read).
fn with_execution(df: DataFrame, set: impl FnOnce(&mut ExecutionOptions) -> Result<()>) -> Result<DataFrame> {
    let (mut state, plan) = df.into_parts();
    set(&mut state.config_mut().options_mut().execution)?;
    Ok(DataFrame::new(state, plan))
}

/// Rows per row group: the target's `row_group_rows`, or the default (smaller for sorted
/// rows); under `row_group_bytes`, the bytes decide (the writer's own size limit, see
/// [`stage`]) and rows are not capped below [`MAX_ROW_GROUP_ROWS`].
pub(super) fn row_group_rows(layout: &FileLayout, sorted: bool) -> usize {
    match (layout.row_group_rows, layout.row_group_bytes) {
        (Some(rows), _) => rows,
        (None, Some(_)) => MAX_ROW_GROUP_ROWS,
        (None, None) if sorted => SORTED_ROW_GROUP_ROWS,
        (None, None) => ROW_GROUP_ROWS,
    }
}

/// Removes a run's staging folder (after it published, or when it failed).
pub(super) async fn remove_staging(location: &Location, run_id: &str) -> Result<()> {
    remove_tree(&layout::staging(location, run_id)).await?;
    remove_empty_folder(&layout::staging_root(location));
    Ok(())
}

/// Removes the staging folders of runs that are gone (failed, killed): nothing
/// reads them, but they take space.
pub(super) async fn remove_stale_staging(location: &Location, runs: &dyn RunLiveness) -> Result<Vec<String>> {
    let root = layout::staging_root(location);
    let listing = match root.store().list_with_delimiter(Some(root.prefix())).await {
        Ok(listing) => listing,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(Error::from(e).context(format!("listing {root}"))),
    };
    let mut removed = Vec::new();
    for folder in listing.common_prefixes {
        let Some(run_id) = folder.filename().map(str::to_string) else {
            continue;
        };
        if !runs.is_live(&run_id) {
            remove_tree(&root.join(&run_id)).await?;
            removed.push(run_id);
        }
    }
    remove_empty_folder(&root);
    Ok(removed)
}

async fn remove_tree(location: &Location) -> Result<()> {
    let objects: Vec<object_store::ObjectMeta> =
        location.store().list(Some(location.prefix())).try_collect().await.unwrap_or_default();
    for object in objects {
        location.delete(&object.location).await?;
    }
    if let Some(path) = location.local_path() {
        let _ = std::fs::remove_dir_all(path);
    }
    Ok(())
}

fn remove_empty_folder(location: &Location) {
    if let Some(path) = location.local_path() {
        let _ = std::fs::remove_dir(path);
    }
}
