//! The widening rules that unify the schemas of many files into one.
//!
//! The lattice is the one Spark and Glue users expect: integers widen to the wider integer,
//! then to decimal or double; date widens to timestamp; structs merge field by field; anything
//! else that disagrees becomes `string`, which holds every value's text. Widening never loses a
//! value that either side could hold, except double absorbing decimal (decimal ∪ double), where
//! no exact type exists.

use super::types::{GlueType, MAX_DECIMAL_PRECISION, StructField};

/// The narrowest type that holds every value of both.
pub fn widen(a: &GlueType, b: &GlueType) -> GlueType {
    use GlueType::*;
    if a == b {
        return a.clone();
    }
    match (a, b) {
        (x, y) if integer_digits(x).is_some() && integer_digits(y).is_some() => {
            if integer_digits(x) >= integer_digits(y) { x.clone() } else { y.clone() }
        }
        (x, Decimal { precision, scale }) | (Decimal { precision, scale }, x) if integer_digits(x).is_some() => {
            decimal_or_double(integer_digits(x).unwrap().max(precision - scale), *scale)
        }
        (Decimal { precision: p1, scale: s1 }, Decimal { precision: p2, scale: s2 }) => {
            decimal_or_double((p1 - s1).max(p2 - s2), *s1.max(s2))
        }
        (Float | Double | Decimal { .. }, Float | Double | Decimal { .. }) => Double,
        (x, Float | Double) | (Float | Double, x) if integer_digits(x).is_some() => Double,
        (Date, Timestamp) | (Timestamp, Date) => Timestamp,
        (Array(x), Array(y)) => Array(Box::new(widen(x, y))),
        (Map(k1, v1), Map(k2, v2)) => Map(Box::new(widen(k1, k2)), Box::new(widen(v1, v2))),
        (Struct(x), Struct(y)) => Struct(merge_fields(x, y)),
        _ => String,
    }
}

/// Whether Athena reads a Parquet file whose column is `from` in a table that declares it `to`:
/// AWS's "Change a column data type" lists an integer as a wider integer and float as double,
/// nothing else (a file of bigints under a double column fails the query); structs are read by
/// field name, so fields may come and go.
pub fn athena_reads_as(from: &GlueType, to: &GlueType) -> bool {
    use GlueType::*;
    if from == to {
        return true;
    }
    match (from, to) {
        (x, y) if integer_digits(x).is_some() && integer_digits(y).is_some() => integer_digits(x) <= integer_digits(y),
        (Float, Double) => true,
        (String | Varchar(_) | Char(_), String | Varchar(_) | Char(_)) => true,
        (Array(x), Array(y)) => athena_reads_as(x, y),
        (Map(k1, v1), Map(k2, v2)) => athena_reads_as(k1, k2) && athena_reads_as(v1, v2),
        (Struct(x), Struct(y)) => {
            x.iter().all(|f| y.iter().find(|g| g.name == f.name).is_none_or(|g| athena_reads_as(&f.ty, &g.ty)))
        }
        _ => false,
    }
}

/// Whether a column of type `to` holds every value of a file's column of type `from`: `to` is
/// what widening `from` into it gives (struct fields `to` lacks are ignored, as readers ignore
/// them). A nested value under `string` is not read as text.
pub fn holds_every_value(from: &GlueType, to: &GlueType) -> bool {
    use GlueType::*;
    match (from, to) {
        (x, y) if x == y => true,
        (Array(x), Array(y)) => holds_every_value(x, y),
        (Map(k1, v1), Map(k2, v2)) => holds_every_value(k1, k2) && holds_every_value(v1, v2),
        (Struct(x), Struct(y)) => {
            x.iter().all(|f| y.iter().find(|g| g.name == f.name).is_none_or(|g| holds_every_value(&f.ty, &g.ty)))
        }
        (Array(_) | Map(..) | Struct(_), _) | (_, Array(_) | Map(..) | Struct(_)) => false,
        (x, y) => widen(x, y) == *y,
    }
}

/// Widens an optional type, where `None` means "no value seen yet" (an all-null column).
pub fn widen_opt(a: Option<&GlueType>, b: Option<&GlueType>) -> Option<GlueType> {
    match (a, b) {
        (Some(a), Some(b)) => Some(widen(a, b)),
        (Some(t), None) | (None, Some(t)) => Some(t.clone()),
        (None, None) => None,
    }
}

/// Fields of both structs, in first-seen order, each widened; a field present on one side
/// only is kept (it is null in the records of the other).
pub fn merge_fields(a: &[StructField], b: &[StructField]) -> Vec<StructField> {
    let mut merged: Vec<StructField> = a.to_vec();
    for field in b {
        match merged.iter_mut().find(|f| f.name == field.name) {
            Some(existing) => existing.ty = widen(&existing.ty, &field.ty),
            None => merged.push(field.clone()),
        }
    }
    merged
}

/// Digits of the largest value of an integer type, or None for non-integers.
fn integer_digits(ty: &GlueType) -> Option<u8> {
    match ty {
        GlueType::TinyInt => Some(3),
        GlueType::SmallInt => Some(5),
        GlueType::Int => Some(10),
        GlueType::BigInt => Some(19),
        _ => None,
    }
}

fn decimal_or_double(integer_digits: u8, scale: u8) -> GlueType {
    let precision = integer_digits as u16 + scale as u16;
    if precision <= MAX_DECIMAL_PRECISION as u16 { GlueType::decimal(precision as u8, scale) } else { GlueType::Double }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_reads_old_files_only_under_the_widenings_aws_lists() {
        let reads = |a: &str, b: &str| athena_reads_as(&a.parse().unwrap(), &b.parse().unwrap());
        assert!(reads("int", "bigint") && reads("float", "double") && reads("tinyint", "int"));
        assert!(!reads("bigint", "double") && !reads("int", "decimal(12,0)") && !reads("date", "timestamp"));
        assert!(!reads("bigint", "string") && !reads("decimal(10,2)", "decimal(12,2)"));
        assert!(reads("struct<a:int>", "struct<a:bigint,b:string>") && !reads("array<int>", "array<double>"));
    }

    fn w(a: &str, b: &str) -> String {
        widen(&a.parse().unwrap(), &b.parse().unwrap()).to_string()
    }

    #[test]
    fn the_widening_table() {
        let cases = [
            ("int", "bigint", "bigint"),
            ("bigint", "double", "double"),
            ("int", "float", "double"),
            ("float", "double", "double"),
            ("bigint", "decimal(10,2)", "decimal(21,2)"),
            ("decimal(10,2)", "decimal(12,4)", "decimal(12,4)"),
            ("decimal(38,2)", "decimal(38,10)", "double"),
            ("decimal(10,2)", "double", "double"),
            ("date", "timestamp", "timestamp"),
            ("boolean", "bigint", "string"),
            ("date", "bigint", "string"),
            ("array<bigint>", "array<double>", "array<double>"),
            ("array<bigint>", "bigint", "string"),
            ("struct<a:bigint>", "struct<a:double,b:string>", "struct<a:double,b:string>"),
            ("struct<a:bigint>", "string", "string"),
            ("map<string,bigint>", "map<string,double>", "map<string,double>"),
            ("string", "varchar(3)", "string"),
        ];
        for (a, b, expected) in cases {
            assert_eq!(w(a, b), expected, "{a} ∪ {b}");
            assert_eq!(w(b, a), expected, "{b} ∪ {a}");
        }
    }

    #[test]
    fn unknown_takes_the_other_side() {
        assert_eq!(widen_opt(None, Some(&GlueType::Date)), Some(GlueType::Date));
        assert_eq!(widen_opt(None, None), None);
    }
}
