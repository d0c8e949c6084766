//! `+`, `-`, `*` and `/` as Athena computes them: integers that overflow their type fail the
//! query ("bigint addition overflow: 9223372036854775807 + 1"), where DataFusion wraps them into
//! a wrong number; decimal quotients are rounded, not truncated; decimals in 64-bit
//! multiplications where they cannot overflow ([`DecimalArithmetic`]).

use std::sync::Arc;

use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::tree_node::{Transformed, TransformedResult};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue, exec_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::{AnalyzerRule, ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_expr_common::datum::apply;

use crate::schema::GlueType;
use crate::source::text::parse_decimal;
use crate::transform::decimal::DecimalArithmetic;
use crate::transform::rewrite::rewrite_expressions;

/// The operators checked on integers and narrowed on decimals.
pub const OPERATORS: [Operator; 3] = [Operator::Plus, Operator::Minus, Operator::Multiply];

/// Rewrites integer `+`, `-` and `*` into [`CheckedIntegerArithmetic`] calls and decimal `/`
/// into a rounding [`DecimalArithmetic`] call, keeping every name. An analyzer rule, after
/// type coercion: the optimizer's constant folding then evaluates them Athena's way too.
#[derive(Debug, Default)]
pub struct AthenaArithmeticRule;

impl AnalyzerRule for AthenaArithmeticRule {
    fn name(&self) -> &str {
        "athena_arithmetic"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let athena = |l: &DataType, r: &DataType, op: Operator| match (l, r) {
            _ if l.is_integer() && r.is_integer() && OPERATORS.contains(&op) => {
                Some(ScalarUDF::new_from_impl(CheckedIntegerArithmetic::new(op)))
            }
            (DataType::Decimal128(..), DataType::Decimal128(..)) if op == Operator::Divide => {
                Some(ScalarUDF::new_from_impl(DecimalArithmetic::new(op)))
            }
            _ => None,
        };
        plan.transform_up_with_subqueries(|node| {
            rewrite_expressions(node, |e, schema| rewrite(e, schema, athena)?.transform_data(decimal_of_float_literal))
        })
        .data()
    }
}

/// A float literal cast to a decimal (as type coercion casts `99999.99` to compare it with a
/// decimal column) as the decimal its shortest text spells: Arrow's cast takes the double's
/// binary value, 99999.990000000008192, which no `amount = 99999.99` matches. Athena reads the
/// literal as that decimal, and Trino casts a double to a decimal by its shortest text too.
fn decimal_of_float_literal(expr: Expr) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let &DataType::Decimal128(precision, scale) = field.data_type() else {
        return Ok(Transformed::no(expr));
    };
    let text = match inner.as_ref() {
        Expr::Literal(ScalarValue::Float64(Some(value)), _) if value.is_finite() => value.to_string(),
        Expr::Literal(ScalarValue::Float32(Some(value)), _) if value.is_finite() => value.to_string(),
        _ => return Ok(Transformed::no(expr)),
    };
    let exact = u8::try_from(scale).ok().and_then(|scale| parse_decimal(&text, precision, scale));
    Ok(match exact {
        Some(value) => Transformed::yes(Expr::Literal(ScalarValue::Decimal128(Some(value), precision, scale), None)),
        None => Transformed::no(expr),
    })
}

/// Rewrites decimal `+`, `-` and `*` into [`DecimalArithmetic`] calls, keeping every name.
#[derive(Debug, Default)]
pub struct DecimalArithmeticRule;

impl OptimizerRule for DecimalArithmeticRule {
    fn name(&self) -> &str {
        "decimal_arithmetic_in_64_bits"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let narrow = |l: &DataType, r: &DataType, op| {
            (matches!((l, r), (DataType::Decimal128(..), DataType::Decimal128(..))) && OPERATORS.contains(&op))
                .then(|| ScalarUDF::new_from_impl(DecimalArithmetic::new(op)))
        };
        rewrite_expressions(plan, |e, schema| rewrite(e, schema, narrow))
    }
}

/// `left op right` as a call of the function `choose` gives for the operands' types, if any.
fn rewrite(
    expr: Expr,
    schema: &DFSchema,
    choose: impl Fn(&DataType, &DataType, Operator) -> Option<ScalarUDF>,
) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let (Ok(left_type), Ok(right_type)) = (left.get_type(schema), right.get_type(schema)) else {
        return Ok(Transformed::no(expr));
    };
    let Some(function) = choose(&left_type, &right_type, *op) else {
        return Ok(Transformed::no(expr));
    };
    let args = vec![left.as_ref().clone(), right.as_ref().clone()];
    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(function), args))))
}

/// The type DataFusion's `BinaryExpr` gives `left op right`.
pub(crate) fn binary_type(name: &str, op: &Operator, arg_types: &[DataType]) -> Result<DataType> {
    match arg_types {
        [left, right] => BinaryTypeCoercer::new(left, op, right).get_result_type(),
        _ => exec_err!("{name} takes two arguments"),
    }
}

/// The same, as a function's return field.
pub(crate) fn binary_return_field(name: &str, op: &Operator, args: &ReturnFieldArgs) -> Result<FieldRef> {
    let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
    let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
    Ok(Arc::new(Field::new(name, binary_type(name, op, &types)?, nullable)))
}

/// `left op right` on two integers of one type, failing on a result the type cannot hold.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CheckedIntegerArithmetic {
    op: Operator,
    signature: Signature,
}

impl CheckedIntegerArithmetic {
    pub fn new(op: Operator) -> Self {
        CheckedIntegerArithmetic { op, signature: Signature::any(2, Volatility::Immutable) }
    }

    /// Athena's words: "integer multiplication overflow: 2147483647 * 2".
    fn overflow(&self, result: &DataType, error: DataFusionError) -> DataFusionError {
        let DataFusionError::ArrowError(arrow, _) = &error else {
            return error;
        };
        let ArrowError::ArithmeticOverflow(detail) = arrow.as_ref() else {
            return error;
        };
        let operation = match self.op {
            Operator::Plus => "addition",
            Operator::Minus => "subtraction",
            _ => "multiplication",
        };
        let values = detail.strip_prefix("Overflow happened on: ").unwrap_or(detail);
        DataFusionError::Execution(format!("{} {operation} overflow: {values}", GlueType::name_of(result)))
    }
}

impl ScalarUDFImpl for CheckedIntegerArithmetic {
    fn name(&self) -> &str {
        match self.op {
            Operator::Plus => "checked_add",
            Operator::Minus => "checked_subtract",
            _ => "checked_multiply",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        binary_type(self.name(), &self.op, arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        binary_return_field(self.name(), &self.op, &args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [left, right] = args.args.as_slice() else {
            return exec_err!("{} takes two arguments", self.name());
        };
        let result = match self.op {
            Operator::Plus => apply(left, right, numeric::add),
            Operator::Minus => apply(left, right, numeric::sub),
            _ => apply(left, right, numeric::mul),
        };
        result.map_err(|e| self.overflow(args.return_field.data_type(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, ArrayRef, Int32Array, Int64Array};
    use datafusion::common::ScalarValue;
    use datafusion::config::ConfigOptions;

    fn invoke(op: Operator, left: ColumnarValue, right: ColumnarValue) -> Result<ArrayRef> {
        let function = CheckedIntegerArithmetic::new(op);
        let types = [left.data_type(), right.data_type()];
        let args = ScalarFunctionArgs {
            args: vec![left, right],
            arg_fields: types.iter().map(|t| Arc::new(Field::new("x", t.clone(), true))).collect(),
            number_rows: 3,
            return_field: Arc::new(Field::new("r", function.return_type(&types)?, true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        function.invoke_with_args(args)?.into_array(3)
    }

    #[test]
    fn results_in_range_are_exact_and_nulls_stay_null() {
        let left = ColumnarValue::Array(Arc::new(Int64Array::from(vec![Some(1), None, Some(i64::MAX - 1)])));
        let right = ColumnarValue::Scalar(ScalarValue::Int64(Some(1)));
        let sum = invoke(Operator::Plus, left, right).unwrap();
        let sum = sum.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(sum.iter().collect::<Vec<_>>(), vec![Some(2), None, Some(i64::MAX)]);
    }

    #[test]
    fn overflow_fails_naming_the_type_and_values() {
        let left = ColumnarValue::Array(Arc::new(Int64Array::from(vec![Some(1), Some(i64::MAX)])));
        let right = ColumnarValue::Scalar(ScalarValue::Int64(Some(1)));
        let error = invoke(Operator::Plus, left, right).unwrap_err().to_string();
        assert!(error.contains("bigint addition overflow: 9223372036854775807 + 1"), "{error}");
        let left = ColumnarValue::Array(Arc::new(Int32Array::from(vec![i32::MAX])));
        let right = ColumnarValue::Scalar(ScalarValue::Int32(Some(2)));
        let error = invoke(Operator::Multiply, left, right).unwrap_err().to_string();
        assert!(error.contains("int multiplication overflow: 2147483647 * 2"), "{error}");
    }
}
