//! The walk our logical optimizer rules share: every expression of a plan node rewritten
//! bottom-up, each keeping the name it had, so a rewrite never renames an output column.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{Expr, LogicalPlan};

/// `rewrite` applied to every expression of `plan`'s node (not its inputs: rules run
/// `ApplyOrder::BottomUp`), with the schema of the node's inputs. A scan is left alone: its
/// filters only prune, and the filter above it computes.
pub(crate) fn rewrite_expressions(
    plan: LogicalPlan,
    rewrite: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    if plan.inputs().is_empty() {
        return Ok(Transformed::no(plan));
    }
    let schema = merge_schema(&plan.inputs());
    let names = NamePreserver::new(&plan);
    plan.map_expressions(|expr| {
        let name = names.save(&expr);
        expr.transform_up(|e| rewrite(e, &schema))?.map_data(|e| Ok(name.restore(e)))
    })
}
