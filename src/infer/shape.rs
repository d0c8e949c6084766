//! The shape of values while inference is still looking: like a Glue type, but able to say
//! "nothing seen yet" at any depth (a field that is always null, an array that is always
//! empty), so one file's silence never decides a type another file's values would.

use crate::schema::types::{GlueType, StructField};
use crate::schema::widen::widen;

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Unknown,
    Scalar(GlueType),
    /// Plain decimal literals of one scale (`10.50`, `20.25`), each few enough digits for a
    /// double to hold exactly: a double, unless another file's values of the column need a
    /// decimal (`12345678901234567.89`), which then holds these too. Without it, a column's
    /// type (and whether its values were rounded) depended on how its rows were split among
    /// files.
    FixedPoint {
        integer_digits: u8,
        scale: u8,
    },
    Array(Box<Shape>),
    Struct(Vec<(String, Shape)>),
}

impl Shape {
    pub fn widen(&self, other: &Shape) -> Shape {
        match (self, other) {
            (Shape::Unknown, x) | (x, Shape::Unknown) => x.clone(),
            (
                Shape::FixedPoint { integer_digits: a, scale },
                Shape::FixedPoint { integer_digits: b, scale: other_scale },
            ) if scale == other_scale => Shape::FixedPoint { integer_digits: *a.max(b), scale: *scale },
            (
                fixed @ Shape::FixedPoint { integer_digits, scale },
                Shape::Scalar(decimal @ GlueType::Decimal { .. }),
            )
            | (
                Shape::Scalar(decimal @ GlueType::Decimal { .. }),
                fixed @ Shape::FixedPoint { integer_digits, scale },
            ) => match u8::try_from(*integer_digits as u16 + *scale as u16) {
                Ok(precision) if precision <= crate::schema::types::MAX_DECIMAL_PRECISION => {
                    Shape::Scalar(widen(&GlueType::decimal(precision, *scale), decimal))
                }
                _ => Shape::Scalar(fixed.finish()).widen(&Shape::Scalar(decimal.clone())),
            },
            (fixed @ Shape::FixedPoint { .. }, other) | (other, fixed @ Shape::FixedPoint { .. }) => {
                Shape::Scalar(fixed.finish()).widen(other)
            }
            (Shape::Scalar(a), Shape::Scalar(b)) => Shape::Scalar(widen(a, b)),
            (Shape::Array(a), Shape::Array(b)) => Shape::Array(Box::new(a.widen(b))),
            (Shape::Struct(a), Shape::Struct(b)) => Shape::Struct(merge(a, b)),
            // An object in one record and a number in another: only text holds both.
            _ => Shape::Scalar(GlueType::String),
        }
    }

    /// The Glue type; what was never seen is `string`, as a Glue crawler says. So is an object
    /// that never held a key: Athena takes no `struct<>`, and text holds `{}` and whatever keys
    /// later records give it.
    pub fn finish(&self) -> GlueType {
        match self {
            Shape::Unknown => GlueType::String,
            Shape::Struct(fields) if fields.is_empty() => GlueType::String,
            Shape::Scalar(ty) => ty.clone(),
            Shape::FixedPoint { .. } => GlueType::Double,
            Shape::Array(item) => GlueType::Array(Box::new(item.finish())),
            Shape::Struct(fields) => GlueType::Struct(
                fields.iter().map(|(name, shape)| StructField { name: name.clone(), ty: shape.finish() }).collect(),
            ),
        }
    }

    pub fn from_glue(ty: &GlueType) -> Shape {
        match ty {
            GlueType::Array(item) => Shape::Array(Box::new(Shape::from_glue(item))),
            GlueType::Struct(fields) => {
                Shape::Struct(fields.iter().map(|f| (f.name.clone(), Shape::from_glue(&f.ty))).collect())
            }
            other => Shape::Scalar(other.clone()),
        }
    }
}

/// Fields of both, in first-seen order, each widened.
pub fn merge(a: &[(String, Shape)], b: &[(String, Shape)]) -> Vec<(String, Shape)> {
    let mut merged = a.to_vec();
    for (name, shape) in b {
        match merged.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => *existing = existing.widen(shape),
            None => merged.push((name.clone(), shape.clone())),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_values_join_a_decimal_of_any_file_and_are_a_double_otherwise() {
        let cents = Shape::FixedPoint { integer_digits: 2, scale: 2 };
        let wide = Shape::Scalar(GlueType::decimal(19, 2));
        assert_eq!(cents.widen(&wide).finish(), GlueType::decimal(19, 2));
        assert_eq!(wide.widen(&cents).finish(), GlueType::decimal(19, 2));
        let mills = Shape::Scalar(GlueType::decimal(20, 3));
        assert_eq!(cents.widen(&mills).finish(), GlueType::decimal(20, 3));
        assert_eq!(cents.widen(&Shape::FixedPoint { integer_digits: 5, scale: 2 }).finish(), GlueType::Double);
        assert_eq!(
            cents.widen(&Shape::FixedPoint { integer_digits: 5, scale: 2 }).widen(&wide).finish(),
            GlueType::decimal(19, 2)
        );
        assert_eq!(cents.widen(&Shape::FixedPoint { integer_digits: 1, scale: 3 }).finish(), GlueType::Double);
        assert_eq!(cents.widen(&Shape::Scalar(GlueType::BigInt)).finish(), GlueType::Double);
        assert_eq!(cents.widen(&Shape::Scalar(GlueType::String)).finish(), GlueType::String);
        assert_eq!(cents.finish(), GlueType::Double);
    }

    #[test]
    fn unknown_never_decides() {
        let empty_array = Shape::Array(Box::new(Shape::Unknown));
        let ints = Shape::Array(Box::new(Shape::Scalar(GlueType::BigInt)));
        assert_eq!(empty_array.widen(&ints).finish().to_string(), "array<bigint>");
        assert_eq!(empty_array.finish().to_string(), "array<string>");
        let a = Shape::Struct(vec![("x".into(), Shape::Unknown)]);
        let b = Shape::Struct(vec![
            ("y".into(), Shape::Scalar(GlueType::Double)),
            ("x".into(), Shape::Scalar(GlueType::Date)),
        ]);
        assert_eq!(a.widen(&b).finish().to_string(), "struct<x:date,y:double>");
        assert_eq!(a.widen(&Shape::Scalar(GlueType::BigInt)).finish(), GlueType::String);
    }
}
