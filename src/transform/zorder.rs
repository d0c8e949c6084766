//! `zorder_key(a, b, …)`: a binary key whose byte order is the Z-order (Morton order) of its
//! arguments, for `zorder = true` targets and `etl compact --zorder`.
//!
//! Sorting by one column after another clusters the first column only: a row group then spans
//! a narrow range of `a` and every value of `b`, and a filter on `b` prunes nothing. Z-order
//! interleaves the columns' bits, so that each row group spans a small box of every column, and
//! filters on any of them prune (what Delta's OPTIMIZE ZORDER BY and Spark's zorder do). Each
//! value is taken in arrow's row format, whose bytes compare as the values do (nulls first),
//! cut or padded to [`KEY_BYTES`]; the key interleaves those bytes' bits, most significant
//! first. delta-rs builds its Z-order key the same way, in a module it does not export.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BinaryBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::Expr;

/// Bytes of each value's row encoding that the key interleaves: values that agree on these
/// are equal to the key (their order among themselves is the sort's, stable).
const KEY_BYTES: usize = 16;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ZOrderKey {
    signature: Signature,
}

impl ZOrderKey {
    pub fn new() -> Self {
        ZOrderKey { signature: Signature::variadic_any(Volatility::Immutable) }
    }

    /// `zorder_key(columns…)`, as an expression.
    pub fn of(columns: Vec<Expr>) -> Expr {
        ScalarUDF::from(ZOrderKey::new()).call(columns)
    }
}

impl Default for ZOrderKey {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ZOrderKey {
    fn name(&self) -> &str {
        "zorder_key"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.is_empty() {
            return exec_err!("zorder_key takes at least one column");
        }
        let columns: Vec<ArrayRef> = ColumnarValue::values_to_arrays(&args.args)?;
        Ok(ColumnarValue::Array(zorder_keys(&columns)?))
    }
}

/// The Z-order key of each row of `columns`.
fn zorder_keys(columns: &[ArrayRef]) -> Result<ArrayRef> {
    let rows = columns.first().map_or(0, |c| c.len());
    let encoded = columns
        .iter()
        .map(|column| {
            let converter = RowConverter::new(vec![SortField::new(column.data_type().clone())])?;
            converter.convert_columns(std::slice::from_ref(column))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let width = KEY_BYTES * columns.len();
    let mut keys = BinaryBuilder::with_capacity(rows, rows * width);
    let mut key = vec![0u8; width];
    let mut values = vec![[0u8; KEY_BYTES]; columns.len()];
    for row in 0..rows {
        for (value, column) in values.iter_mut().zip(&encoded) {
            let bytes = column.row(row);
            let bytes = bytes.as_ref();
            let taken = bytes.len().min(KEY_BYTES);
            value[..taken].copy_from_slice(&bytes[..taken]);
            value[taken..].fill(0);
        }
        key.fill(0);
        // Bit `b` of column `c` (most significant first) goes to bit `b * columns + c`.
        for bit in 0..KEY_BYTES * 8 {
            for (c, value) in values.iter().enumerate() {
                if value[bit / 8] & (0x80 >> (bit % 8)) != 0 {
                    let at = bit * columns.len() + c;
                    key[at / 8] |= 0x80 >> (at % 8);
                }
            }
        }
        keys.append_value(&key);
    }
    Ok(Arc::new(keys.finish()))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array};

    use super::*;

    fn keys(a: Vec<Option<i64>>, b: Vec<Option<i64>>) -> Vec<Vec<u8>> {
        let columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(a)), Arc::new(Int64Array::from(b))];
        let keys = zorder_keys(&columns).unwrap();
        keys.as_binary::<i32>().iter().map(|k| k.unwrap().to_vec()).collect()
    }

    #[test]
    fn the_key_orders_points_along_the_z_curve() {
        // The 2x2 grid of (0|1, 0|1): Z-order visits (0,0), (0,1), (1,0), (1,1), with the
        // first column's bit the more significant of each pair.
        let k = keys(vec![Some(0), Some(0), Some(1), Some(1)], vec![Some(0), Some(1), Some(0), Some(1)]);
        assert!(k[0] < k[1] && k[1] < k[2] && k[2] < k[3], "{k:?}");
        // A point small in both columns comes before one large in either.
        let k = keys(vec![Some(1), Some(0), Some(3)], vec![Some(1), Some(3), Some(0)]);
        assert!(k[0] < k[1] && k[0] < k[2], "{k:?}");
    }

    #[test]
    fn nulls_and_negatives_order_as_the_values_do() {
        let k = keys(vec![None, Some(-5), Some(5)], vec![Some(0), Some(0), Some(0)]);
        assert!(k[0] < k[1] && k[1] < k[2], "{k:?}");
    }
}
