//! The estimate: what Athena would scan for a query, from metadata only.
//!
//! The query is planned and optimized by DataFusion, which pushes projections and filters into
//! every table scan. For each scan: files whose partition values fail the filters are pruned;
//! for Parquet, row groups whose min/max statistics prove the filters false are pruned
//! (DataFusion's own pruning predicates), and what remains is the compressed size of the
//! projected columns' chunks, plus each file's footer; CSV and JSON files are read whole, at
//! their stored (compressed) size. Athena's rounding and minimum apply per query.
//!
//! Page indexes are not counted: pruning by page is finer than what Athena bills for, and the
//! estimate stays on the side of what a row-group reader fetches.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, Schema, SchemaRef};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column as DfColumn, DFSchema, ScalarValue};
use datafusion::datasource::source_as_provider;
use datafusion::execution::SessionState;
use datafusion::logical_expr::expr_rewriter::unnormalize_cols;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScan};
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use serde::Serialize;

use super::billing::{self, Estimate};
use super::footers::{Footer, FooterCache, ObjectKey};
use crate::catalog::parquet_reader::bounds_leave_out_nan;
use crate::catalog::provider::FileTable;
use crate::error::{Error, Result};
use crate::schema::names;
use crate::source::format::Format;

/// What one table scan of a query would bill.
#[derive(Debug, Clone, Serialize)]
pub struct TableEstimate {
    pub table: String,
    pub files: u64,
    pub files_pruned: u64,
    pub row_groups: u64,
    pub row_groups_pruned: u64,
    pub bytes: u64,
    pub columns: Vec<String>,
    /// Where the bytes come from and what was pruned (`--explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Explain {
    /// Bytes of each projected column (footers apart).
    pub columns: BTreeMap<String, u64>,
    pub footers: u64,
    /// Bytes per partition, by partition values (`key=value/…`).
    pub partitions: BTreeMap<String, u64>,
    /// Why files and row groups were left out.
    pub pruned: Vec<String>,
}

/// What a query would bill.
#[derive(Debug, Clone, Serialize)]
pub struct QueryEstimate {
    pub bytes_scanned: u64,
    pub billed_bytes: u64,
    pub usd: f64,
    pub tables: Vec<TableEstimate>,
}

impl QueryEstimate {
    /// Several queries, each billed on its own (rounding and minimum per query).
    pub fn total(queries: Vec<QueryEstimate>, price_per_tb: f64) -> QueryEstimate {
        let bill = Estimate::queries(queries.iter().map(|q| q.bytes_scanned), price_per_tb);
        QueryEstimate {
            bytes_scanned: bill.bytes_scanned,
            billed_bytes: bill.billed_bytes,
            usd: bill.usd,
            tables: queries.into_iter().flat_map(|q| q.tables).collect(),
        }
    }
}

pub struct Estimator {
    pub footers: Arc<FooterCache>,
    pub price_per_tb: f64,
}

impl Estimator {
    /// Estimates a query's logical plan (optimized here, so its scans carry their projections
    /// and filters).
    pub async fn estimate(&self, state: &SessionState, plan: &LogicalPlan) -> Result<QueryEstimate> {
        // Negations are read before the optimizer rewrites them (`NOT (x < 3)` is `x >= 3`
        // after it, which NaN fails where the query's NaN passed).
        let negated = negated_columns(plan)?;
        let optimized = state.optimize(plan)?;
        let mut scans: Vec<TableScan> = Vec::new();
        optimized.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                scans.push(scan.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let mut tables = Vec::with_capacity(scans.len());
        for scan in &scans {
            if let Some(estimate) = self.scan(state, scan, &negated).await? {
                tables.push(estimate);
            }
        }
        let bytes: u64 = tables.iter().map(|t| t.bytes).sum();
        let bill = Estimate::query(bytes, self.price_per_tb);
        Ok(QueryEstimate { bytes_scanned: bytes, billed_bytes: bill.billed_bytes, usd: bill.usd, tables })
    }

    /// One scan; None for tables that are not files (a view's own tables are scanned instead,
    /// and tables a session made live in memory).
    async fn scan(
        &self,
        state: &SessionState,
        scan: &TableScan,
        negated: &HashSet<String>,
    ) -> Result<Option<TableEstimate>> {
        let provider = source_as_provider(&scan.source)?;
        let Some(table) = (provider.as_ref() as &dyn Any).downcast_ref::<FileTable>() else { return Ok(None) };
        let schema = table.table_schema();
        let arrow_schema = schema.to_arrow();
        let projection: Vec<usize> =
            scan.projection.clone().unwrap_or_else(|| (0..arrow_schema.fields().len()).collect());
        let data_columns: Vec<String> =
            projection.iter().filter(|&&i| i < schema.columns.len()).map(|&i| schema.columns[i].name.clone()).collect();
        let columns: Vec<String> = projection.iter().map(|&i| arrow_schema.field(i).name().clone()).collect();

        // Scans see filters without table qualifiers, as DataFusion's planner hands them over.
        let filters = unnormalize_cols(scan.filters.iter().cloned());
        let kept = table.prune(&filters)?;
        let mut estimate = TableEstimate {
            table: scan.table_name.to_string(),
            files: table.files().len() as u64,
            files_pruned: (table.files().len() - kept.len()) as u64,
            row_groups: 0,
            row_groups_pruned: 0,
            bytes: 0,
            columns,
            explain: None,
        };
        let mut explain = Explain::default();
        if estimate.files_pruned > 0 {
            explain.pruned.push(format!(
                "{} of {} files by partition values ({})",
                estimate.files_pruned,
                estimate.files,
                partition_filters(&filters, table).join(" AND ")
            ));
        }
        let partition_label = |values: &[ScalarValue]| {
            schema
                .partition_keys
                .iter()
                .zip(values)
                .map(|(k, v)| format!("{}={v}", k.name))
                .collect::<Vec<_>>()
                .join("/")
        };

        if table.format() != Format::Parquet {
            for file in &kept {
                estimate.bytes += file.size;
                *explain.partitions.entry(partition_label(&file.partition_values)).or_default() += file.size;
            }
            explain.columns.insert("(whole objects)".to_string(), estimate.bytes);
            estimate.explain = Some(explain);
            return Ok(Some(estimate));
        }

        let location = table.location();
        let keys: Vec<(object_store::path::Path, ObjectKey)> = kept
            .iter()
            .map(|f| {
                let e_tag = f.e_tag.clone().unwrap_or_default();
                (f.path.clone(), ObjectKey { url: location.url_of(&f.path), size: f.size, e_tag })
            })
            .collect();
        let footers = self.footers.footers(location, &keys).await?;
        let predicate = row_group_predicate(state, table, &filters, negated)?;
        for (file, footer) in kept.iter().zip(&footers) {
            let groups = footer.metadata.row_groups().len();
            let keep = match &predicate {
                Some(predicate) => {
                    let statistics = RowGroupStatistics::new(&footer.metadata, &schema.file_schema())?;
                    predicate.prune(&statistics)?
                }
                None => vec![true; groups],
            };
            let file_bytes = scanned_bytes(footer, &keep, &data_columns, &mut explain.columns);
            estimate.row_groups += groups as u64;
            estimate.row_groups_pruned += keep.iter().filter(|k| !**k).count() as u64;
            estimate.bytes += file_bytes;
            explain.footers += footer.bytes;
            *explain.partitions.entry(partition_label(&file.partition_values)).or_default() += file_bytes;
        }
        if estimate.row_groups_pruned > 0 {
            let filters: Vec<String> = data_filters(&filters, table).iter().map(ToString::to_string).collect();
            explain.pruned.push(format!(
                "{} of {} row groups by min/max statistics ({})",
                estimate.row_groups_pruned,
                estimate.row_groups,
                filters.join(" AND ")
            ));
        }
        estimate.explain = Some(explain);
        Ok(Some(estimate))
    }
}

/// The footer plus the compressed chunks of the projected columns in the kept row groups.
fn scanned_bytes(
    footer: &Footer,
    keep: &[bool],
    data_columns: &[String],
    per_column: &mut BTreeMap<String, u64>,
) -> u64 {
    let descriptor = footer.metadata.file_metadata().schema_descr();
    let roots = descriptor.root_schema().get_fields();
    // Each leaf column (a struct has several) belongs to one top-level column.
    let leaves: Vec<(usize, String)> = (0..descriptor.num_columns())
        .filter_map(|leaf| {
            let index = descriptor.get_column_root_idx(leaf);
            // Named as the crawl named the column: an empty name by its position among the
            // top-level columns (`col1`), not the leaf's.
            let root = names::normalize(roots[index].name(), index);
            data_columns.contains(&root).then_some((leaf, root))
        })
        .collect();
    let mut bytes = footer.bytes;
    for (group, kept) in footer.metadata.row_groups().iter().zip(keep) {
        if !kept {
            continue;
        }
        for (leaf, root) in &leaves {
            let size = group.column(*leaf).compressed_size().max(0) as u64;
            bytes += size;
            *per_column.entry(root.clone()).or_default() += size;
        }
    }
    bytes
}

fn partition_filters(filters: &[Expr], table: &FileTable) -> Vec<String> {
    let keys: Vec<&str> = table.table_schema().partition_keys.iter().map(|k| k.name.as_str()).collect();
    filters
        .iter()
        .filter(|f| !keys.is_empty() && datafusion::datasource::listing::helpers::expr_applicable_for_cols(&keys, f))
        .map(ToString::to_string)
        .collect()
}

/// Filters on data columns only: what row-group statistics can decide.
fn data_filters(filters: &[Expr], table: &FileTable) -> Vec<Expr> {
    let schema = table.table_schema();
    let columns: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    filters
        .iter()
        .filter(|f| datafusion::datasource::listing::helpers::expr_applicable_for_cols(&columns, f))
        .cloned()
        .collect()
}

fn row_group_predicate(
    state: &SessionState,
    table: &FileTable,
    filters: &[Expr],
    negated: &HashSet<String>,
) -> Result<Option<PruningPredicate>> {
    let file_schema = table.table_schema().file_schema();
    // NaN, which float bounds leave out, passes a negation of a float column, as IEEE 754
    // compares (NaN <> 2 is true): a filter on such a column prunes no row group of Athena's.
    let negated_floats: Vec<&str> = file_schema
        .fields()
        .iter()
        .filter(|f| f.data_type().is_floating() && negated.contains(f.name()))
        .map(|f| f.name().as_str())
        .collect();
    let filters = data_filters(filters, table)
        .into_iter()
        .filter(|f| !f.column_refs().iter().any(|c| negated_floats.contains(&c.name.as_str())));
    let Some(filter) = conjunction(filters) else { return Ok(None) };
    let df_schema = DFSchema::try_from(file_schema.as_ref().clone())?;
    let physical = state.create_physical_expr(filter, &df_schema)?;
    let predicate = PruningPredicateBuilder::new().with_file_schema(file_schema).try_build(physical)?;
    Ok((!predicate.always_true()).then_some(predicate))
}

/// The names of the columns under a negation (`<>`, `NOT`, `NOT IN`, `NOT BETWEEN`,
/// `IS DISTINCT FROM`) anywhere in `plan`, its subqueries' included.
fn negated_columns(plan: &LogicalPlan) -> Result<HashSet<String>> {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::{Between, BinaryExpr, Like, Operator};
    let negates = |e: &Expr| match e {
        Expr::Not(_) | Expr::IsNotTrue(_) | Expr::IsNotFalse(_) | Expr::IsUnknown(_) | Expr::IsNotUnknown(_) => true,
        Expr::BinaryExpr(BinaryExpr { op, .. }) => matches!(op, Operator::NotEq | Operator::IsDistinctFrom),
        Expr::InList(list) => list.negated,
        Expr::Between(Between { negated, .. }) | Expr::Like(Like { negated, .. }) => *negated,
        _ => false,
    };
    let mut names = HashSet::new();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if negates(e) {
                    names.extend(e.column_refs().into_iter().map(|c| c.name.clone()));
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(names)
}

/// Row-group statistics of one file, as the table's types (a file may hold an int where the
/// table says bigint).
struct RowGroupStatistics<'a> {
    metadata: &'a ParquetMetaData,
    file_schema: Schema,
    table_schema: SchemaRef,
    /// Table column name -> the file's name for it.
    names: HashMap<String, String>,
}

impl<'a> RowGroupStatistics<'a> {
    fn new(metadata: &'a ParquetMetaData, table_schema: &SchemaRef) -> Result<Self> {
        let file = metadata.file_metadata();
        let file_schema = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
            .map_err(|e| Error::input(e.to_string()))?;
        let names = file_schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (names::normalize(f.name(), i), f.name().clone()))
            .collect();
        Ok(RowGroupStatistics { metadata, file_schema, table_schema: table_schema.clone(), names })
    }

    fn converter(&self, column: &DfColumn) -> Option<StatisticsConverter<'_>> {
        let file_name = self.names.get(column.name())?;
        StatisticsConverter::try_new(file_name, &self.file_schema, self.metadata.file_metadata().schema_descr()).ok()
    }

    /// Min or max values, as the table's type.
    fn bounds(&self, column: &DfColumn, pick: impl Fn(&StatisticsConverter) -> Option<ArrayRef>) -> Option<ArrayRef> {
        let converter = self.converter(column)?;
        let descriptor = self.metadata.file_metadata().schema_descr();
        let float =
            converter.parquet_column_index().is_some_and(|i| bounds_leave_out_nan(descriptor.column(i).as_ref()));
        let values = pick(&converter)?;
        // Our scans do not prune by float bounds, which leave NaN out, because DataFusion
        // orders NaN above every number. Athena compares as IEEE 754 does (NaN > 5 is false),
        // so the bounds prune its scans, and the estimate prunes as Athena does. A NaN bound
        // (older writers wrote some) bounds nothing.
        let values = if float { without_nan(&values)? } else { values };
        let wanted = self.table_schema.field_with_name(column.name()).ok()?.data_type();
        if values.data_type() == wanted {
            return Some(values);
        }
        // A file's numbers read as a text column bound nothing as text: 5..1999999 is
        // "5".."1999999", which leaves out "10".
        let kind = crate::schema::types::ValueKind::of;
        let comparable = kind(values.data_type()).is_some_and(|from| kind(wanted) == Some(from));
        comparable.then(|| cast(&values, wanted).ok()).flatten()
    }
}

/// Float bounds with each NaN made unknown; None for other types.
fn without_nan(bounds: &ArrayRef) -> Option<ArrayRef> {
    Some(match bounds.data_type() {
        DataType::Float32 => Arc::new(
            bounds.as_primitive::<Float32Type>().iter().map(|v| v.filter(|v| !v.is_nan())).collect::<Float32Array>(),
        ),
        DataType::Float64 => Arc::new(
            bounds.as_primitive::<Float64Type>().iter().map(|v| v.filter(|v| !v.is_nan())).collect::<Float64Array>(),
        ),
        _ => return None,
    })
}

impl PruningStatistics for RowGroupStatistics<'_> {
    fn min_values(&self, column: &DfColumn) -> Option<ArrayRef> {
        self.bounds(column, |c| c.row_group_mins(self.metadata.row_groups().iter()).ok())
    }

    fn max_values(&self, column: &DfColumn) -> Option<ArrayRef> {
        self.bounds(column, |c| c.row_group_maxes(self.metadata.row_groups().iter()).ok())
    }

    fn num_containers(&self) -> usize {
        self.metadata.row_groups().len()
    }

    fn null_counts(&self, column: &DfColumn) -> Option<ArrayRef> {
        let counts = self.converter(column)?.row_group_null_counts(self.metadata.row_groups().iter()).ok()?;
        Some(Arc::new(counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: Vec<u64> = self.metadata.row_groups().iter().map(|g| g.num_rows().max(0) as u64).collect();
        Some(Arc::new(UInt64Array::from(counts)))
    }

    fn contained(&self, _column: &DfColumn, _values: &std::collections::HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// The bill of scanning every byte of some objects once (a target read whole by Athena).
pub fn full_scan(bytes: u64, price_per_tb: f64) -> Estimate {
    let billed = billing::billed_bytes(bytes);
    Estimate { bytes_scanned: bytes, billed_bytes: billed, usd: billing::usd(billed, price_per_tb) }
}
