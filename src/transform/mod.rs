//! 4. SQL over the catalog: the session (built in one place, on this process or a Ballista
//! cluster), scripts whose statements run in order, and parameters bound as values.

pub mod arithmetic;
pub mod checked_sum;
pub mod cluster;
pub mod dates;
pub mod decimal;
pub mod field_names;
pub mod key_join;
pub mod params;
mod rewrite;
pub mod script;
pub mod session;
pub mod stable_sort;
pub mod write_order;
pub mod zorder;

use std::sync::Arc;

use datafusion::logical_expr::{Operator, ScalarUDF};

/// The functions our optimizer rules and layouts put into plans, which a cluster's executors
/// must find by name.
pub fn functions() -> Vec<Arc<ScalarUDF>> {
    let decimal = arithmetic::OPERATORS
        .into_iter()
        .chain([Operator::Divide])
        .map(|op| Arc::new(ScalarUDF::new_from_impl(decimal::DecimalArithmetic::new(op))));
    let integer = arithmetic::OPERATORS
        .map(|op| Arc::new(ScalarUDF::new_from_impl(arithmetic::CheckedIntegerArithmetic::new(op))));
    decimal
        .chain(integer)
        .chain([
            Arc::new(ScalarUDF::new_from_impl(dates::DateTruncDays::new())),
            Arc::new(ScalarUDF::new_from_impl(zorder::ZOrderKey::new())),
            Arc::new(field_names::glue_field_names()),
        ])
        .collect()
}
