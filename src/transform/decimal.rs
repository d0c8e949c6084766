//! Decimal `+`, `-` and `*` in 64-bit multiplications where they cannot overflow, and decimal
//! `/` rounded as Athena and Spark round it.
//!
//! DataFusion hands decimal arithmetic to arrow's kernel, which computes every value as a
//! 128-bit integer and checks each multiplication (the rescaling of a sum's operand too) for
//! overflow, one value at a time: on TPC-H Q1 that was a third of the query's CPU. When every
//! operand of a batch fits 64 bits, a product of two of them, or a sum of two rescaled by at
//! most 10^18, fits 128 bits by construction: one widening multiplication per value gives the
//! same numbers with nothing to check. `transform::arithmetic`'s rule hands decimal `+`, `-`
//! and `*` to a function that takes that path batch by batch and otherwise calls arrow's
//! kernel, as DataFusion would have, errors included.
//!
//! Arrow's decimal division truncates its quotient at the result's scale (2.00 / 3.00 is
//! 0.666666); Athena and Spark round half up (0.666667), so a ported report's averages and
//! ratios moved by one in their last digit. `/` keeps DataFusion's result type and rounds.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, ArrowNativeTypeOp, AsArray, Datum, PrimitiveArray, new_empty_array};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::kernels::arity::try_binary;
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, FieldRef, i256};
use datafusion::arrow::error::ArrowError;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Operator, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr_common::datum::apply;

use crate::transform::arithmetic::{binary_return_field, binary_type};

/// The largest rescaling factor a 64-bit multiplication takes.
const MAX_RESCALE_DIGITS: i8 = 18;

/// `left op right` on two Decimal128 operands, typed as DataFusion types the operator.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DecimalArithmetic {
    op: Operator,
    signature: Signature,
}

impl DecimalArithmetic {
    pub fn new(op: Operator) -> Self {
        DecimalArithmetic { op, signature: Signature::any(2, Volatility::Immutable) }
    }

    /// What DataFusion's `BinaryExpr` does with these operands.
    fn with_arrow(&self, left: &ColumnarValue, right: &ColumnarValue) -> Result<ColumnarValue> {
        match self.op {
            Operator::Plus => apply(left, right, numeric::add_wrapping),
            Operator::Minus => apply(left, right, numeric::sub_wrapping),
            Operator::Multiply => apply(left, right, numeric::mul_wrapping),
            Operator::Divide => apply(left, right, divide_rounding_half_up),
            op => exec_err!("decimal arithmetic has no operator {op}"),
        }
    }

    /// The result in 64-bit multiplications, or None when an operand does not fit them (or
    /// no operand is an array, which arrow's kernel computes as cheaply).
    fn in_64_bits(&self, left: &ColumnarValue, right: &ColumnarValue, result: &DataType) -> Option<ArrayRef> {
        let (Some(left), Some(right)) = (Operand::of(left), Operand::of(right)) else {
            return None;
        };
        let &DataType::Decimal128(_, scale) = result else {
            return None;
        };
        let (left_digits, right_digits) = match self.op {
            Operator::Multiply if left.scale + right.scale == scale => (0, 0),
            Operator::Plus | Operator::Minus => (scale - left.scale, scale - right.scale),
            _ => return None,
        };
        if !(0..=MAX_RESCALE_DIGITS).contains(&left_digits) || !(0..=MAX_RESCALE_DIGITS).contains(&right_digits) {
            return None;
        }
        // 64-bit factors, widened where they are used, so that each product is one widening
        // multiplication. Operands below 2^63 and factors below 2^60: products under 2^126,
        // sums under 2^127.
        let (left_factor, right_factor) = (10i64.pow(left_digits as u32), 10i64.pow(right_digits as u32));
        let values = match self.op {
            Operator::Multiply => combine(&left, &right, |l, r| l * r),
            Operator::Plus => combine(&left, &right, |l, r| l * left_factor as i128 + r * right_factor as i128),
            _ => combine(&left, &right, |l, r| l * left_factor as i128 - r * right_factor as i128),
        }?;
        let nulls = NullBuffer::union(left.nulls, right.nulls);
        let array = PrimitiveArray::<Decimal128Type>::new(ScalarBuffer::from(values), nulls);
        Some(Arc::new(array.with_data_type(result.clone())))
    }
}

impl ScalarUDFImpl for DecimalArithmetic {
    fn name(&self) -> &str {
        match self.op {
            Operator::Plus => "decimal_add",
            Operator::Minus => "decimal_subtract",
            Operator::Divide => "decimal_divide",
            _ => "decimal_multiply",
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
        match self.in_64_bits(left, right, args.return_field.data_type()) {
            Some(array) => Ok(ColumnarValue::Array(array)),
            None => self.with_arrow(left, right),
        }
    }
}

/// `left / right` on two Decimal128 data: arrow's result type and errors (division by zero, a
/// rescaling that overflows), its quotient rounded half up (ties away from zero) instead of
/// truncated.
fn divide_rounding_half_up(left: &dyn Datum, right: &dyn Datum) -> std::result::Result<ArrayRef, ArrowError> {
    let ((l, l_scalar), (r, r_scalar)) = (left.get(), right.get());
    let (DataType::Decimal128(_, left_scale), DataType::Decimal128(_, right_scale)) = (l.data_type(), r.data_type())
    else {
        return numeric::div(left, right);
    };
    let result = numeric::div(&new_empty_array(l.data_type()), &new_empty_array(r.data_type()))?.data_type().clone();
    let DataType::Decimal128(_, scale) = result else {
        return numeric::div(left, right);
    };
    // The quotient of integers l·10^k / r (or l / r·10^-k) is the result's unscaled value,
    // computed in 256 bits: l·10^k outgrows 128 where the quotient does not (1000.5 / 3 in
    // decimal(38,18), Spark's default, scales 1000.5 by 10^40).
    let exponent = scale as i32 - *left_scale as i32 + *right_scale as i32;
    let ten = i256::from_i128(10);
    let (left_factor, right_factor) = if exponent >= 0 {
        (ten.pow_checked(exponent as u32)?, i256::ONE)
    } else {
        (i256::ONE, ten.pow_checked(exponent.unsigned_abs())?)
    };
    let divide = |l: i128, r: i128| -> std::result::Result<i128, ArrowError> {
        let (l, r) = (i256::from_i128(l).mul_checked(left_factor)?, i256::from_i128(r).mul_checked(right_factor)?);
        let quotient = l.div_checked(r)?;
        let remainder = l.wrapping_rem(r).wrapping_abs();
        let rounded = if remainder != i256::ZERO && remainder >= r.wrapping_abs().wrapping_sub(remainder) {
            if (l < i256::ZERO) == (r < i256::ZERO) {
                quotient.wrapping_add(i256::ONE)
            } else {
                quotient.wrapping_sub(i256::ONE)
            }
        } else {
            quotient
        };
        rounded.to_i128().ok_or_else(|| {
            ArrowError::ComputeError(format!("decimal division overflow: the quotient does not fit {result}"))
        })
    };
    let (l, r) = (l.as_primitive::<Decimal128Type>(), r.as_primitive::<Decimal128Type>());
    let scalar = |array: &PrimitiveArray<Decimal128Type>| (array.null_count() == 0).then(|| array.value(0));
    let quotients: PrimitiveArray<Decimal128Type> = match (l_scalar, r_scalar) {
        (true, true) | (false, false) => try_binary(l, r, divide)?,
        (true, false) => match scalar(l) {
            Some(l) => r.try_unary(|r| divide(l, r))?,
            None => PrimitiveArray::new_null(r.len()),
        },
        (false, true) => match scalar(r) {
            Some(r) => l.try_unary(|l| divide(l, r))?,
            None => PrimitiveArray::new_null(l.len()),
        },
    };
    Ok(Arc::new(quotients.with_data_type(result)))
}

/// A decimal operand whose every value fits 64 bits.
struct Operand<'a> {
    values: Values<'a>,
    nulls: Option<&'a NullBuffer>,
    scale: i8,
}

enum Values<'a> {
    Array(&'a [i128]),
    Scalar(i64),
}

impl<'a> Operand<'a> {
    fn of(value: &'a ColumnarValue) -> Option<Self> {
        match value {
            ColumnarValue::Array(array) => {
                let DataType::Decimal128(_, scale) = array.data_type() else {
                    return None;
                };
                let array = array.as_primitive::<Decimal128Type>();
                let values: &[i128] = array.values();
                // Every slot, null or not, with no branch per value: a null slot that happens
                // to hold a wide value only sends the batch to arrow's kernel.
                let fits = values.iter().fold(true, |fits, &v| fits & (v as i64 as i128 == v));
                fits.then_some(Operand { values: Values::Array(values), nulls: array.nulls(), scale: *scale })
            }
            ColumnarValue::Scalar(ScalarValue::Decimal128(Some(v), _, scale)) => {
                let narrow = i64::try_from(*v).ok()?;
                Some(Operand { values: Values::Scalar(narrow), nulls: None, scale: *scale })
            }
            ColumnarValue::Scalar(_) => None,
        }
    }
}

/// `f` over the operands' values, widened to 128 bits; None when both are scalars.
fn combine(left: &Operand, right: &Operand, f: impl Fn(i128, i128) -> i128) -> Option<Vec<i128>> {
    let wide = |v: &i128| *v as i64 as i128;
    match (&left.values, &right.values) {
        (Values::Array(l), Values::Array(r)) => Some(l.iter().zip(*r).map(|(l, r)| f(wide(l), wide(r))).collect()),
        (Values::Array(l), Values::Scalar(r)) => Some(l.iter().map(|l| f(wide(l), *r as i128)).collect()),
        (Values::Scalar(l), Values::Array(r)) => Some(r.iter().map(|r| f(*l as i128, wide(r))).collect()),
        (Values::Scalar(_), Values::Scalar(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, RecordBatch};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::config::ConfigOptions;
    use datafusion::physical_expr::PhysicalExpr;
    use datafusion::physical_expr::expressions;

    fn column(values: Vec<Option<i128>>, precision: u8, scale: i8) -> ColumnarValue {
        let array = Decimal128Array::from(values).with_precision_and_scale(precision, scale).unwrap();
        ColumnarValue::Array(Arc::new(array))
    }

    fn scalar(value: Option<i128>, precision: u8, scale: i8) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Decimal128(value, precision, scale))
    }

    /// How many rows the operands stand for: an array's length, or one for two scalars.
    fn rows(left: &ColumnarValue, right: &ColumnarValue) -> usize {
        [left, right]
            .iter()
            .find_map(|v| match v {
                ColumnarValue::Array(a) => Some(a.len()),
                ColumnarValue::Scalar(_) => None,
            })
            .unwrap_or(1)
    }

    fn invoke(op: Operator, left: &ColumnarValue, right: &ColumnarValue) -> Result<ArrayRef> {
        let function = DecimalArithmetic::new(op);
        let types = [left.data_type(), right.data_type()];
        let args = ScalarFunctionArgs {
            args: vec![left.clone(), right.clone()],
            arg_fields: types.iter().map(|t| Arc::new(Field::new("x", t.clone(), true))).collect(),
            number_rows: rows(left, right),
            return_field: Arc::new(Field::new("r", function.return_type(&types)?, true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        function.invoke_with_args(args)?.into_array(rows(left, right))
    }

    /// What DataFusion's own `BinaryExpr` computes from the operands, as columns and literals.
    fn datafusion(op: Operator, left: &ColumnarValue, right: &ColumnarValue) -> Result<ArrayRef> {
        let (mut fields, mut columns) = (Vec::new(), Vec::new());
        let mut operand = |value: &ColumnarValue, name: &str| -> Arc<dyn PhysicalExpr> {
            match value {
                ColumnarValue::Array(array) => {
                    fields.push(Field::new(name, array.data_type().clone(), true));
                    columns.push(array.clone());
                    Arc::new(expressions::Column::new(name, columns.len() - 1))
                }
                ColumnarValue::Scalar(scalar) => expressions::lit(scalar.clone()),
            }
        };
        let (left, right) = (operand(left, "left"), operand(right, "right"));
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        expressions::BinaryExpr::new(left, op, right).evaluate(&batch)?.into_array(batch.num_rows())
    }

    #[test]
    fn results_types_nulls_and_errors_are_datafusions() {
        let mut random = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        // Values of 1 to 38 digits: most fit 64 bits, some only 128, a few overflow when
        // multiplied or rescaled; some batches hold only small values, as a real column does.
        let mut value = |digits: u32| {
            let bound = 10i128.pow(digits.min(38));
            random.i128(1 - bound..bound)
        };
        let types: [(u8, i8); 7] = [(15, 2), (16, 2), (20, 0), (32, 4), (38, 10), (18, 0), (10, 10)];
        let mut checked = (0, 0);
        for round in 0..600 {
            let (lp, ls) = types[round % types.len()];
            let (rp, rs) = types[(round / types.len()) % types.len()];
            let digits = if round % 3 == 0 { 38 } else { 9 };
            let mut values = |precision: u8, nulls: bool| -> Vec<Option<i128>> {
                (0..64)
                    .map(|i| {
                        let v = value(digits.min(precision as u32));
                        (!(nulls && i % 7 == 3)).then_some(v)
                    })
                    .collect()
            };
            let left = match round % 5 {
                0 => scalar(values(lp, false)[0], lp, ls),
                1 => scalar(None, lp, ls),
                _ => column(values(lp, round % 2 == 0), lp, ls),
            };
            let right = column(values(rp, round % 4 == 0), rp, rs);
            for op in [Operator::Plus, Operator::Minus, Operator::Multiply] {
                for (l, r) in [(&left, &right), (&right, &left)] {
                    match (invoke(op, l, r), datafusion(op, l, r)) {
                        (Ok(ours), Ok(theirs)) => {
                            assert_eq!(ours.data_type(), theirs.data_type(), "{op} of {l:?} and {r:?}");
                            assert_eq!(ours.logical_nulls(), theirs.logical_nulls(), "{op} of {l:?} and {r:?}");
                            let (ours, theirs) =
                                (ours.as_primitive::<Decimal128Type>(), theirs.as_primitive::<Decimal128Type>());
                            for i in (0..ours.len()).filter(|i| ours.is_valid(*i)) {
                                assert_eq!(ours.value(i), theirs.value(i), "{op} of {l:?} and {r:?}, row {i}");
                            }
                            checked.0 += 1;
                        }
                        (Err(ours), Err(theirs)) => {
                            assert_eq!(ours.to_string(), theirs.to_string());
                            checked.1 += 1;
                        }
                        (ours, theirs) => panic!("{op} of {l:?} and {r:?}: {ours:?} against {theirs:?}"),
                    }
                }
            }
        }
        assert!(checked.0 > 3000 && checked.1 > 100, "{checked:?}");
    }

    #[test]
    fn quotients_are_rounded_half_up_at_datafusions_scale() {
        let values = |array: ArrayRef| -> Vec<Option<i128>> { array.as_primitive::<Decimal128Type>().iter().collect() };
        let thirds = column(vec![Some(200), Some(-200), Some(100), None, Some(0)], 3, 2);
        let quotient = invoke(Operator::Divide, &thirds, &scalar(Some(300), 3, 2)).unwrap();
        assert_eq!(quotient.data_type(), &DataType::Decimal128(9, 6));
        assert_eq!(values(quotient), vec![Some(666_667), Some(-666_667), Some(333_333), None, Some(0)]);
        // 1/32 = 0.03125 at a scale of 4: a tie goes away from zero.
        let ties = invoke(Operator::Divide, &column(vec![Some(1), Some(-1)], 1, 0), &scalar(Some(32), 2, 0)).unwrap();
        assert_eq!(values(ties), vec![Some(313), Some(-313)]);
        let by_negative = invoke(Operator::Divide, &scalar(Some(1), 1, 0), &column(vec![Some(-32), Some(3)], 2, 0));
        assert_eq!(values(by_negative.unwrap()), vec![Some(-313), Some(3333)]);
    }

    #[test]
    fn quotients_are_the_nearest_values_where_arrow_fails_too() {
        use datafusion::arrow::datatypes::i256;
        let mut random = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        let types: [(u8, i8); 6] = [(15, 2), (3, 2), (20, 0), (32, 4), (38, 10), (10, 10)];
        let mut checked = (0, 0, 0);
        for round in 0..300 {
            let (lp, ls) = types[round % types.len()];
            let (rp, rs) = types[(round / types.len()) % types.len()];
            let mut values = |precision: u8| -> Vec<Option<i128>> {
                let bound = 10i128.pow(if round % 3 == 0 { precision as u32 } else { precision.min(6) as u32 });
                (0..32).map(|i| (i % 9 != 4).then(|| random.i128(1 - bound..bound))).collect()
            };
            let (left, right) = (column(values(lp), lp, ls), column(values(rp), rp, rs));
            let nearest = |ours: &ArrayRef| {
                let DataType::Decimal128(_, scale) = ours.data_type() else { unreachable!() };
                let exponent = *scale as i32 - ls as i32 + rs as i32;
                let ours = ours.as_primitive::<Decimal128Type>();
                let (l, r) = (left.to_array(1).unwrap(), right.to_array(1).unwrap());
                let (l, r) = (l.as_primitive::<Decimal128Type>(), r.as_primitive::<Decimal128Type>());
                for i in (0..ours.len()).filter(|i| ours.is_valid(*i)) {
                    // |q·r − l·10^k| ≤ |r| / 2, exactly, in 256 bits.
                    let ten = |digits: i32| i256::from_i128(10).wrapping_pow(digits.unsigned_abs());
                    let (l, r) = (i256::from_i128(l.value(i)), i256::from_i128(r.value(i)));
                    let (l, r) = if exponent >= 0 { (l * ten(exponent), r) } else { (l, r * ten(exponent)) };
                    let error = (i256::from_i128(ours.value(i)) * r - l).wrapping_abs();
                    assert!(error * i256::from_i128(2) <= r.wrapping_abs(), "row {i}: {} / {}", l, r);
                }
            };
            match (invoke(Operator::Divide, &left, &right), datafusion(Operator::Divide, &left, &right)) {
                (Ok(ours), Ok(truncated)) => {
                    assert_eq!(ours.data_type(), truncated.data_type());
                    assert_eq!(ours.logical_nulls(), truncated.logical_nulls());
                    let (q, t) = (ours.as_primitive::<Decimal128Type>(), truncated.as_primitive::<Decimal128Type>());
                    for i in (0..q.len()).filter(|i| q.is_valid(*i)) {
                        assert!((q.value(i) - t.value(i)).abs() <= 1, "row {i}");
                    }
                    nearest(&ours);
                    checked.0 += 1;
                }
                // Arrow scales the dividend in 128 bits, which overflow where 256 do not.
                (Ok(ours), Err(_)) => {
                    nearest(&ours);
                    checked.1 += 1;
                }
                (Err(_), Err(_)) => checked.2 += 1,
                (ours, theirs) => panic!("{left:?} / {right:?}: {ours:?} against {theirs:?}"),
            }
        }
        assert!(checked.0 > 100 && checked.1 > 10, "{checked:?}");
    }

    #[test]
    fn values_that_fit_64_bits_take_the_narrow_path() {
        let left = column(vec![Some(i64::MAX as i128), Some(i64::MIN as i128), None], 38, 0);
        let right = scalar(Some(i64::MIN as i128), 38, 0);
        let result = DataType::Decimal128(38, 0);
        let function = DecimalArithmetic::new(Operator::Multiply);
        assert!(function.in_64_bits(&left, &right, &result).is_some());
        let wide = column(vec![Some(i64::MAX as i128 + 1)], 38, 0);
        assert!(function.in_64_bits(&wide, &right, &result).is_none());
    }
}
