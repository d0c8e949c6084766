//! `sum` as Athena computes it: a total beyond its type is an error ("bigint addition
//! overflow", "decimal overflow"), not a wrong number. DataFusion's `sum` adds bigints and
//! decimals wrapping, and does not hold a decimal total to its precision: 6e19 + 6e19 as
//! decimal(38,18) printed 1.2e19 and was published as a value no reader can take, and bigints
//! wrapped to negative totals, all with exit 0.
//!
//! This `sum` is DataFusion's, with the accumulators of bigint and decimal(p ≤ 38) totals
//! checked; every other type and `sum(DISTINCT …)` go to DataFusion's own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray};
use datafusion::arrow::compute::sum_checked;
use datafusion::arrow::datatypes::{
    ArrowNativeType, ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Decimal128Type, FieldRef, Int64Type, UInt64Type,
};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF,
    SetMonotonicity, Signature,
};
use datafusion_functions_aggregate_common::aggregate::groups_accumulator::prim_op::PrimitiveGroupsAccumulator;

/// The session's `sum`.
pub fn checked_sum() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::new_from_impl(CheckedSum::default()))
}

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct CheckedSum {
    inner: Sum,
}

/// The totals this `sum` checks: a bigint's range, or a decimal's precision.
#[derive(Debug, Clone, Copy)]
enum Total {
    BigInt,
    Decimal(u8),
}

impl Total {
    fn of(args: &AccumulatorArgs) -> Option<Total> {
        if args.is_distinct {
            return None;
        }
        match args.return_field.data_type() {
            DataType::Int64 => Some(Total::BigInt),
            DataType::Decimal128(precision, _) => Some(Total::Decimal(*precision)),
            _ => None,
        }
    }

    fn overflow(self, data_type: &DataType) -> DataFusionError {
        let what = match self {
            Total::BigInt => "bigint addition overflow: the sum is beyond ±9223372036854775807".to_string(),
            Total::Decimal(_) => {
                format!("decimal overflow: the sum does not fit {}", crate::schema::GlueType::name_of(data_type))
            }
        };
        DataFusionError::Execution(format!("{what} (cast the values to a wider decimal or to double first)"))
    }

    /// `totals` as they may be given out: a decimal within its precision.
    fn checked(self, totals: ArrayRef) -> Result<ArrayRef> {
        if let Total::Decimal(precision) = self {
            let decimals = totals.as_primitive::<Decimal128Type>();
            if decimals.validate_decimal_precision(precision).is_err() {
                return Err(self.overflow(totals.data_type()));
            }
        }
        Ok(totals)
    }
}

impl AggregateUDFImpl for CheckedSum {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match Total::of(&args) {
            Some(Total::BigInt) => Ok(Box::new(CheckedAccumulator::<Int64Type>::new(&args, Total::BigInt, false))),
            Some(total) => Ok(Box::new(CheckedAccumulator::<Decimal128Type>::new(&args, total, false))),
            None => self.inner.accumulator(args),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        match Total::of(&args) {
            Some(Total::BigInt) => Ok(Box::new(CheckedGroups::<Int64Type>::new(&args, Total::BigInt, |sum, x| {
                let (total, overflowed) = sum.overflowing_add(x);
                *sum = total;
                overflowed
            }))),
            Some(total) => Ok(Box::new(CheckedGroups::<Decimal128Type>::new(&args, total, |sum, x| {
                let (total, overflowed) = sum.overflowing_add(x);
                *sum = total;
                overflowed
            }))),
            None => self.inner.create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match Total::of(&args) {
            Some(Total::BigInt) => Ok(Box::new(CheckedAccumulator::<Int64Type>::new(&args, Total::BigInt, true))),
            Some(total) => Ok(Box::new(CheckedAccumulator::<Decimal128Type>::new(&args, total, true))),
            None => self.inner.create_sliding_accumulator(args),
        }
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner.reverse_expr()
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }

    fn simplify_expr_op_literal(
        &self,
        agg_function: &datafusion::logical_expr::expr::AggregateFunction,
        arg: &datafusion::logical_expr::Expr,
        op: datafusion::logical_expr::Operator,
        lit: &datafusion::logical_expr::Expr,
        arg_is_left: bool,
    ) -> Result<Option<datafusion::logical_expr::Expr>> {
        self.inner.simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }

    fn value_from_stats(&self, statistics_args: &datafusion::logical_expr::StatisticsArgs) -> Option<ScalarValue> {
        self.inner.value_from_stats(statistics_args)
    }
}

/// One total (a whole input, or a window's frame): the sum and, for a window that takes rows
/// back out, how many values it holds.
struct CheckedAccumulator<T: ArrowPrimitiveType> {
    sum: Option<T::Native>,
    count: u64,
    data_type: DataType,
    total: Total,
    /// A window's frame: its state carries the count of values, as DataFusion's does.
    sliding: bool,
}

impl<T: ArrowPrimitiveType> std::fmt::Debug for CheckedAccumulator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckedAccumulator({})", self.data_type)
    }
}

impl<T: ArrowPrimitiveType> CheckedAccumulator<T> {
    fn new(args: &AccumulatorArgs, total: Total, sliding: bool) -> Self {
        let data_type = args.return_field.data_type().clone();
        CheckedAccumulator { sum: None, count: 0, data_type, total, sliding }
    }

    fn add(&mut self, values: &PrimitiveArray<T>) -> Result<()> {
        let overflow = || self.total.overflow(&self.data_type);
        if let Some(x) = sum_checked(values).map_err(|_| overflow())? {
            let sum = self.sum.unwrap_or(T::Native::usize_as(0));
            self.sum = Some(sum.add_checked(x).map_err(|_| overflow())?);
        }
        Ok(())
    }
}

impl<T: ArrowPrimitiveType> Accumulator for CheckedAccumulator<T> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = values[0].as_primitive::<T>();
        self.count += (values.len() - values.null_count()) as u64;
        self.add(values)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(states[0].as_primitive::<T>())?;
        if self.sliding {
            let counts = states[1].as_primitive::<UInt64Type>();
            self.count += counts.iter().flatten().sum::<u64>();
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = values[0].as_primitive::<T>();
        let overflow = || self.total.overflow(&self.data_type);
        if let Some(x) = sum_checked(values).map_err(|_| overflow())? {
            let sum = self.sum.unwrap_or(T::Native::usize_as(0));
            self.sum = Some(sum.sub_checked(x).map_err(|_| overflow())?);
        }
        self.count -= (values.len() - values.null_count()) as u64;
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        self.sliding
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let sum = match self.sliding && self.count == 0 {
            true => None,
            false => self.sum,
        };
        let array: ArrayRef = Arc::new(PrimitiveArray::<T>::from_iter([sum]).with_data_type(self.data_type.clone()));
        ScalarValue::try_from_array(&self.total.checked(array)?, 0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let sum = self.evaluate()?;
        match self.sliding {
            true => Ok(vec![sum, ScalarValue::UInt64(Some(self.count))]),
            false => Ok(vec![sum]),
        }
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }
}

/// Totals of many groups: DataFusion's accumulator of primitive values, adding with a check
/// whose failure it cannot return, so a flag carries it to the totals' reading.
struct CheckedGroups<T: ArrowPrimitiveType + Send> {
    inner: Box<dyn GroupsAccumulator>,
    overflowed: Arc<AtomicBool>,
    data_type: DataType,
    total: Total,
    _type: std::marker::PhantomData<T>,
}

impl<T: ArrowPrimitiveType + Send> CheckedGroups<T> {
    /// `add` adds a value to a total, saying whether it overflowed (the native types'
    /// `overflowing_add`: no `Result` in the hot loop).
    fn new(args: &AccumulatorArgs, total: Total, add: fn(&mut T::Native, T::Native) -> bool) -> Self {
        let overflowed = Arc::new(AtomicBool::new(false));
        let flag = overflowed.clone();
        let data_type = args.return_field.data_type().clone();
        let inner = PrimitiveGroupsAccumulator::<T, _>::new(&data_type, move |sum: &mut T::Native, x: T::Native| {
            if add(sum, x) {
                flag.store(true, Ordering::Relaxed);
            }
        });
        CheckedGroups { inner: Box::new(inner), overflowed, data_type, total, _type: std::marker::PhantomData }
    }

    fn checked(&self, totals: ArrayRef) -> Result<ArrayRef> {
        if self.overflowed.load(Ordering::Relaxed) {
            return Err(self.total.overflow(&self.data_type));
        }
        self.total.checked(totals)
    }
}

impl<T: ArrowPrimitiveType + Send> GroupsAccumulator for CheckedGroups<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner.update_batch(values, group_indices, opt_filter, total_num_groups)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.inner.merge_batch(values, group_indices, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let totals = self.inner.evaluate(emit_to)?;
        self.checked(totals)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let mut state = self.inner.state(emit_to)?;
        state[0] = self.checked(state[0].clone())?;
        Ok(state)
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        self.inner.convert_to_state(values, opt_filter)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }
}
