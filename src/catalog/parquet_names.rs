//! Parquet files whose column names are not Glue's: `Order ID` in the file, `order_id` in the
//! catalog (and `Amount` in a struct, `amount`), as a crawl names them.
//!
//! DataFusion's Parquet scan finds a table's columns in a file by their exact names, and reads
//! one it does not find as NULL: a file Spark or pandas wrote with `CustomerId` would read as a
//! column of NULLs. The adapter here finds them by the names the catalog gives them, then lets
//! DataFusion's own adapter do the rest (casts, missing columns); struct fields, which only the
//! case sets apart, are renamed by Arrow's cast, which takes them in their order when no name
//! matches (DataFusion's own cast of structs matches names only, and refuses).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};

use crate::schema::names;

#[derive(Debug)]
pub struct GlueNamesAdapterFactory;

impl PhysicalExprAdapterFactory for GlueNamesAdapterFactory {
    fn create(&self, logical: SchemaRef, physical: SchemaRef) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let renamed = Arc::new(glue_named(&physical));
        if renamed == physical {
            return DefaultPhysicalExprAdapterFactory.create(logical, physical);
        }
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
                    false => Arc::new(Renamed { input: column, to: named.data_type().clone() }),
                }))
            })
            .map(|t| t.data)
    }
}

/// A column whose struct fields are renamed, in their order.
#[derive(Debug, Eq, Hash)]
struct Renamed {
    input: Arc<dyn PhysicalExpr>,
    to: DataType,
}

impl PartialEq for Renamed {
    fn eq(&self, other: &Self) -> bool {
        self.input.as_ref() == other.input.as_ref() && self.to == other.to
    }
}

impl fmt::Display for Renamed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} AS {}", self.input, self.to)
    }
}

impl PhysicalExpr for Renamed {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        let field = self.input.return_field(input_schema)?;
        Ok(Arc::new(field.as_ref().clone().with_data_type(self.to.clone())))
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let array = self.input.evaluate(batch)?.into_array(batch.num_rows())?;
        Ok(ColumnarValue::Array(cast(&array, &self.to)?))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.input]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| datafusion::error::DataFusionError::Internal("a renaming takes one input".to_string()))?;
        Ok(Arc::new(Renamed { input, to: self.to.clone() }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.input.fmt_sql(f)
    }
}

/// A file's schema with the names a crawl gives its columns and their struct fields.
fn glue_named(schema: &Schema) -> Schema {
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| Arc::new(renamed(field, names::normalize(field.name(), index))))
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

fn renamed(field: &Field, name: String) -> Field {
    field.clone().with_name(name).with_data_type(nested_renamed(field.data_type()))
}

/// Struct fields named as `GlueType::from_arrow` names them, at any depth.
fn nested_renamed(data_type: &DataType) -> DataType {
    let child = |field: &FieldRef| Arc::new(renamed(field, field.name().to_string()));
    match data_type {
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .enumerate()
                .map(|(index, f)| Arc::new(renamed(f, names::normalize(f.name(), index))))
                .collect::<Fields>(),
        ),
        DataType::List(item) => DataType::List(child(item)),
        DataType::LargeList(item) => DataType::LargeList(child(item)),
        DataType::ListView(item) => DataType::ListView(child(item)),
        DataType::LargeListView(item) => DataType::LargeListView(child(item)),
        DataType::FixedSizeList(item, size) => DataType::FixedSizeList(child(item), *size),
        DataType::Map(entries, sorted) => DataType::Map(child(entries), *sorted),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
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
