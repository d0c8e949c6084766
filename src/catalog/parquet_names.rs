//! Parquet files whose column names are not Glue's: `Order ID` in the file, `order_id` in the
//! catalog (and `Amount` in a struct, `amount`), as a crawl names them.
//!
//! DataFusion's Parquet scan finds a table's columns in a file by their exact names, and reads
//! one it does not find as NULL: a file Spark or pandas wrote with `CustomerId` would read as a
//! column of NULLs. The adapter here finds them by the names the catalog gives them, then lets
//! DataFusion's own adapter do the rest (casts, missing columns); struct fields, which only the
//! case sets apart, are renamed by Arrow's cast, which takes them in their order when no name
//! matches (DataFusion's own cast of structs matches names only, and refuses).
//!
//! Timestamps finer than the catalog's (nanoseconds from pandas and Spark) are floored to it,
//! as a CSV's are: Arrow's cast divides toward zero, which moves an instant before 1970 later.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};

use crate::schema::names;

#[derive(Debug)]
pub struct GlueNamesAdapterFactory;

impl PhysicalExprAdapterFactory for GlueNamesAdapterFactory {
    fn create(&self, logical: SchemaRef, physical: SchemaRef) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let renamed = Arc::new(glue_named(&physical));
        let inner = DefaultPhysicalExprAdapterFactory.create(logical, renamed.clone())?;
        Ok(Arc::new(GlueNamesAdapter { inner, physical, renamed }))
    }
}

#[derive(Debug)]
struct GlueNamesAdapter {
    inner: Arc<dyn PhysicalExprAdapter>,
    physical: SchemaRef,
    /// `physical` under the catalog's names: the same fields, in the same order.
    renamed: SchemaRef,
}

impl PhysicalExprAdapter for GlueNamesAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let adapted = self.inner.rewrite(expr)?;
        adapted
            .transform_up(|node| {
                if let Some(cast) = node.downcast_ref::<CastExpr>()
                    && let DataType::Timestamp(from, _) = cast.expr().data_type(&self.physical)?
                    && let DataType::Timestamp(to, _) = cast.cast_type()
                    && unit_rank(&from) > unit_rank(to)
                {
                    let input = cast.expr().clone();
                    return Ok(Transformed::yes(Arc::new(AsCatalogType { input, to: cast.cast_type().clone() })));
                }
                let Some(column) = node.downcast_ref::<Column>() else {
                    return Ok(Transformed::no(node));
                };
                let index = column.index();
                let (Some(file), Some(named)) = (self.physical.fields().get(index), self.renamed.fields().get(index))
                else {
                    return Ok(Transformed::no(node));
                };
                // By the file's own name, which statistics and pruning look columns up by.
                let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(file.name(), index));
                Ok(Transformed::yes(match file.data_type() == named.data_type() {
                    true => column,
                    false => Arc::new(AsCatalogType { input: column, to: named.data_type().clone() }),
                }))
            })
            .map(|t| t.data)
    }
}

/// A column whose struct fields are renamed, in their order, or whose timestamps are floored.
#[derive(Debug, Eq, Hash)]
struct AsCatalogType {
    input: Arc<dyn PhysicalExpr>,
    to: DataType,
}

impl PartialEq for AsCatalogType {
    fn eq(&self, other: &Self) -> bool {
        self.input.as_ref() == other.input.as_ref() && self.to == other.to
    }
}

impl fmt::Display for AsCatalogType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} AS {}", self.input, self.to)
    }
}

impl PhysicalExpr for AsCatalogType {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        let field = self.input.return_field(input_schema)?;
        Ok(Arc::new(field.as_ref().clone().with_data_type(self.to.clone())))
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let array = self.input.evaluate(batch)?.into_array(batch.num_rows())?;
        Ok(ColumnarValue::Array(to_catalog_type(&array, &self.to)?))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.input]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|_| {
            datafusion::error::DataFusionError::Internal(
                "a conversion to the catalog's type takes one input".to_string(),
            )
        })?;
        Ok(Arc::new(AsCatalogType { input, to: self.to.clone() }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.input.fmt_sql(f)
    }
}

fn to_catalog_type(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    match (array.data_type(), to) {
        (DataType::Timestamp(from, _), DataType::Timestamp(unit, _)) if unit_rank(from) > unit_rank(unit) => {
            let per_unit = 1000_i64.pow(unit_rank(from) - unit_rank(unit));
            let ticks = cast(array, &DataType::Int64)?;
            let floored: Int64Array = ticks.as_primitive::<Int64Type>().unary(|t| t.div_euclid(per_unit));
            Ok(cast(&floored, to)?)
        }
        _ => Ok(cast(array, to)?),
    }
}

fn unit_rank(unit: &TimeUnit) -> u32 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

/// A file's schema with the names a crawl gives its columns and their struct fields.
fn glue_named(schema: &Schema) -> Schema {
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| Arc::new(names::glue_named_field(field, names::normalize(field.name(), index))))
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{Field, Fields};

    use super::*;

    #[test]
    fn a_files_names_become_the_catalogs_at_every_depth() {
        let inner = Fields::from(vec![Field::new("Amount", DataType::Int64, true)]);
        let file = Schema::new(vec![
            Field::new("Order ID", DataType::Utf8, true),
            Field::new("Lines", DataType::new_list(DataType::Struct(inner), true), true),
        ]);
        let named = glue_named(&file);
        assert_eq!(named.field(0).name(), "order_id");
        assert_eq!(named.field(1).name(), "lines");
        let DataType::List(item) = named.field(1).data_type() else { panic!("a list") };
        let DataType::Struct(fields) = item.data_type() else { panic!("of structs") };
        assert_eq!(fields[0].name(), "amount");
    }
}
