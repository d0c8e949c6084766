//! How a text field becomes a typed value: the one set of rules that CSV inference and CSV
//! reading share, so a type inferred from a sample is a promise the reader keeps or reports.
//!
//! The rules are strict where leniency would lose data: a decimal with more fractional digits
//! than its scale is not rounded, a date with a time part is not truncated, a boolean is `true`
//! or `false` and nothing else. A value the rules refuse is a bad record, never a quiet null.

use std::sync::Arc;

use chrono::Datelike;

use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::kernels::cast_utils::Parser;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::error::{Error, Result};
use crate::schema::GlueType;

/// The markers read as null in columns of non-string types, unless a source sets its own.
/// An empty field is null in every column.
pub const DEFAULT_NULL_VALUES: &[&str] = &["NA", "NULL", "null", "\\N"];

pub fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Plain digits are read here (Arrow's general parser took ~90 instructions for a 6-digit
/// key of TPC-H); anything else, and values that may overflow, by Arrow's rules.
pub fn parse_int(text: &str) -> Option<i64> {
    match PlainNumber::read(text) {
        Some(number) if number.fraction_digits.is_none() && number.digits <= 18 => Some(number.signed()),
        _ => Int64Type::parse(text),
    }
}

/// A plain decimal with at most 15 digits is its digits, a whole number a double holds
/// exactly, divided by a power of ten a double holds exactly: one correctly rounded division,
/// the value Arrow's parser gives for ~160 instructions. Anything else is Arrow's to read.
pub fn parse_double(text: &str) -> Option<f64> {
    /// Powers of ten up to 10^15, all exact doubles.
    const POWERS: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    match PlainNumber::read(text) {
        Some(number) if number.digits <= 15 => {
            let value = number.value as f64 / POWERS[number.fraction_digits.unwrap_or(0)];
            Some(if number.negative { -value } else { value })
        }
        // A number past a double's range (`1e400`, 400 digits) is no double: it would read as
        // infinity. Infinity spelt out (`inf`, `-Infinity`) is one.
        _ => Float64Type::parse(text)
            .filter(|v| !v.is_infinite() || text.trim_start_matches(['+', '-']).starts_with(['i', 'I'])),
    }
}

/// `[+-]digits[.digits]`, read in one pass.
struct PlainNumber {
    negative: bool,
    /// The digits as a whole number; meaningless beyond 19 digits.
    value: u64,
    digits: usize,
    fraction_digits: Option<usize>,
}

impl PlainNumber {
    fn read(text: &str) -> Option<PlainNumber> {
        let bytes = text.as_bytes();
        let (negative, unsigned) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        let (mut value, mut point) = (0u64, None);
        for (at, &byte) in unsigned.iter().enumerate() {
            let digit = byte.wrapping_sub(b'0');
            if digit < 10 {
                value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
            } else if byte == b'.' && point.is_none() {
                point = Some(at);
            } else {
                return None;
            }
        }
        let digits = unsigned.len() - usize::from(point.is_some());
        let fraction_digits = point.map(|at| unsigned.len() - at - 1);
        // Digits on both sides of a point.
        if point == Some(0) || fraction_digits == Some(0) || digits == 0 {
            return None;
        }
        Some(PlainNumber { negative, value, digits, fraction_digits })
    }

    /// The value with its sign, for numbers of at most 18 digits.
    fn signed(&self) -> i64 {
        let value = self.value as i64;
        if self.negative { -value } else { value }
    }
}

/// `YYYY-MM-DD` exactly: Arrow's own parser would also take `20261102` and drop the time of a
/// timestamp, neither of which a date column should do silently.
///
/// Read digit by digit: dates are a quarter of TPC-H's `lineitem`, and Arrow's general parser
/// cost 7% of a CSV-to-Parquet run's instructions.
pub fn parse_date(text: &str) -> Option<i32> {
    let (year, month, day) = date_fields(text)?;
    chrono::NaiveDate::from_ymd_opt(year as i32, month, day).map(days_since_epoch)
}

fn date_fields(text: &str) -> Option<(u32, u32, u32)> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number =
        |digits: &[u8]| digits.iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')));
    Some((number(&b[0..4])?, number(&b[5..7])?, number(&b[8..10])?))
}

fn days_since_epoch(date: chrono::NaiveDate) -> i32 {
    /// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
    const UNIX_EPOCH_FROM_CE: i32 = 719_163;
    date.num_days_from_ce() - UNIX_EPOCH_FROM_CE
}

/// `parse_date` for a column of dates, which mostly fall in few months: chrono's calendar is
/// asked once per month for its first day and length, and a day is then an addition. Chrono's
/// validation and day count were 3% of a CSV-to-Parquet run (TPC-H's `lineitem`, 18 M dates
/// in 84 months).
pub struct DateColumnParser {
    /// (year * 16 + month, days since the epoch of its first day, its days), by that key's
    /// low bits: 16 years of months without a collision.
    months: Box<[(u32, i32, u32); 256]>,
}

impl Default for DateColumnParser {
    fn default() -> Self {
        // Key 0 is month 0, which no date has.
        DateColumnParser { months: Box::new([(0, 0, 0); 256]) }
    }
}

impl DateColumnParser {
    pub fn parse(&mut self, text: &str) -> Option<i32> {
        let (year, month, day) = date_fields(text)?;
        // Month 17 of 2026 would share its key with January 2027.
        if !(1..=12).contains(&month) {
            return None;
        }
        let key = year * 16 + month;
        let slot = &mut self.months[key as usize % 256];
        if slot.0 != key {
            let first = chrono::NaiveDate::from_ymd_opt(year as i32, month, 1)?;
            *slot = (key, days_since_epoch(first), u32::from(first.num_days_in_month()));
        }
        (1..=slot.2).contains(&day).then(|| slot.1 + day as i32 - 1)
    }
}

/// ISO 8601 / RFC 3339 timestamps with `T` or a space, optional fraction and zone (converted to
/// UTC); microseconds, as Athena reads Parquet timestamps.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if text.len() < 10 {
        return None;
    }
    // Arrow's `TimestampMicrosecondType::parse` goes through nanoseconds, which end in 2262:
    // `9999-12-31 23:59:59`, the usual "valid until further notice", would not be a timestamp.
    // chrono reads second 60 as a leap second, which becomes the next minute (`2016-12-31
    // 23:59:60` a timestamp of 2017): no timestamp type of Athena, Spark or DuckDB has one.
    datafusion::arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, text)
        .ok()
        .filter(|at| chrono::Timelike::nanosecond(at) < 1_000_000_000)
        .map(|at| at.timestamp_micros())
}

/// The shape of a plain decimal literal: sign, integer digits, fractional digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalShape {
    pub integer_digits: u8,
    pub scale: u8,
    /// Digits without leading zeros: what a double must hold exactly.
    pub significant_digits: u8,
}

/// `-123.4500` -> integer 3, scale 4, significant 7; `.25` and `1.` are decimals, as Hive,
/// Spark and Java read them. Exponents and anything else: None.
pub fn decimal_shape(text: &str) -> Option<DecimalShape> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (integer, fraction) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if integer.is_empty() && fraction.is_empty() {
        return None;
    }
    if !integer.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let integer = integer.trim_start_matches('0');
    let significant =
        if integer.is_empty() { fraction.trim_start_matches('0').len() } else { integer.len() + fraction.len() };
    let shape = |n: usize| u8::try_from(n).ok();
    Some(DecimalShape {
        integer_digits: shape(integer.len().max(1))?,
        scale: shape(fraction.len())?,
        significant_digits: shape(significant)?,
    })
}

/// The decimal's unscaled value when it fits `decimal(precision, scale)` exactly.
pub fn parse_decimal(text: &str, precision: u8, scale: u8) -> Option<i128> {
    let shape = decimal_shape(text)?;
    if shape.scale > scale || shape.integer_digits > precision - scale {
        return None;
    }
    let negative = text.starts_with('-');
    let digits = text.trim_start_matches(['-', '+']);
    let mut value: i128 = 0;
    for b in digits.bytes().filter(|b| *b != b'.') {
        value = value * 10 + (b - b'0') as i128;
    }
    value *= 10i128.pow((scale - shape.scale) as u32);
    Some(if negative { -value } else { value })
}

/// Whether `text` is a value of `ty` under these rules.
pub fn parses_as(ty: &GlueType, text: &str) -> bool {
    match ty {
        GlueType::Boolean => parse_bool(text).is_some(),
        GlueType::TinyInt => parse_int(text).is_some_and(|v| i8::try_from(v).is_ok()),
        GlueType::SmallInt => parse_int(text).is_some_and(|v| i16::try_from(v).is_ok()),
        GlueType::Int => parse_int(text).is_some_and(|v| i32::try_from(v).is_ok()),
        GlueType::BigInt => parse_int(text).is_some(),
        GlueType::Float | GlueType::Double => parse_double(text).is_some(),
        GlueType::Decimal { precision, scale } => parse_decimal(text, *precision, *scale).is_some(),
        GlueType::Date => parse_date(text).is_some(),
        GlueType::Timestamp => parse_timestamp(text).is_some(),
        GlueType::String | GlueType::Varchar(_) | GlueType::Char(_) => true,
        GlueType::Binary | GlueType::Array(_) | GlueType::Struct(_) | GlueType::Map(_, _) => false,
    }
}

/// Builds one Arrow column from text fields under the rules above.
pub enum TextColumnBuilder {
    Boolean(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, u8),
    Date(Date32Builder, DateColumnParser),
    Timestamp(TimestampMicrosecondBuilder),
    Utf8(StringBuilder),
}

impl TextColumnBuilder {
    /// Fails for types a text field cannot hold (arrays, structs, maps, binary).
    pub fn new(ty: &GlueType, capacity: usize) -> Result<Self> {
        Ok(match ty {
            GlueType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(capacity)),
            GlueType::TinyInt => Self::Int8(Int8Builder::with_capacity(capacity)),
            GlueType::SmallInt => Self::Int16(Int16Builder::with_capacity(capacity)),
            GlueType::Int => Self::Int32(Int32Builder::with_capacity(capacity)),
            GlueType::BigInt => Self::Int64(Int64Builder::with_capacity(capacity)),
            GlueType::Float => Self::Float32(Float32Builder::with_capacity(capacity)),
            GlueType::Double => Self::Float64(Float64Builder::with_capacity(capacity)),
            GlueType::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(*precision, *scale as i8)
                    .map_err(|e| Error::input(e.to_string()))?,
                *precision,
                *scale,
            ),
            GlueType::Date => Self::Date(Date32Builder::with_capacity(capacity), DateColumnParser::default()),
            GlueType::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity)),
            GlueType::String | GlueType::Varchar(_) | GlueType::Char(_) => {
                Self::Utf8(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            other => {
                return Err(Error::input(format!("a text column cannot hold values of type {other}")));
            }
        })
    }

    /// Appends the value of `text`; false (and a null appended) when it is not a value of the
    /// column's type.
    pub fn append_text(&mut self, text: &str) -> bool {
        macro_rules! push {
            ($builder:expr, $value:expr) => {
                match $value {
                    Some(v) => {
                        $builder.append_value(v);
                        true
                    }
                    None => {
                        $builder.append_null();
                        false
                    }
                }
            };
        }
        match self {
            Self::Boolean(b) => push!(b, parse_bool(text)),
            Self::Int8(b) => push!(b, parse_int(text).and_then(|v| i8::try_from(v).ok())),
            Self::Int16(b) => push!(b, parse_int(text).and_then(|v| i16::try_from(v).ok())),
            Self::Int32(b) => push!(b, parse_int(text).and_then(|v| i32::try_from(v).ok())),
            Self::Int64(b) => push!(b, parse_int(text)),
            Self::Float32(b) => push!(b, parse_double(text).map(|v| v as f32)),
            Self::Float64(b) => push!(b, parse_double(text)),
            Self::Decimal(b, p, s) => push!(b, parse_decimal(text, *p, *s)),
            Self::Date(b, dates) => push!(b, dates.parse(text)),
            Self::Timestamp(b) => push!(b, parse_timestamp(text)),
            Self::Utf8(b) => {
                b.append_value(text);
                true
            }
        }
    }

    pub fn append_null(&mut self) {
        match self {
            Self::Boolean(b) => b.append_null(),
            Self::Int8(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal(b, _, _) => b.append_null(),
            Self::Date(b, _) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Self::Utf8(_))
    }

    /// The values appended since the last call, as an array. The builder starts again with room
    /// for as many: Arrow's builders hand their buffers over and would grow new ones from
    /// nothing, copying everything at each doubling (several copies of every batch).
    pub fn finish(&mut self) -> ArrayRef {
        let rows = self.len();
        macro_rules! restart {
            ($builder:expr, $empty:expr) => {{
                let array = $builder.finish();
                *$builder = $empty;
                Arc::new(array)
            }};
        }
        match self {
            Self::Boolean(b) => restart!(b, BooleanBuilder::with_capacity(rows)),
            Self::Int8(b) => restart!(b, Int8Builder::with_capacity(rows)),
            Self::Int16(b) => restart!(b, Int16Builder::with_capacity(rows)),
            Self::Int32(b) => restart!(b, Int32Builder::with_capacity(rows)),
            Self::Int64(b) => restart!(b, Int64Builder::with_capacity(rows)),
            Self::Float32(b) => restart!(b, Float32Builder::with_capacity(rows)),
            Self::Float64(b) => restart!(b, Float64Builder::with_capacity(rows)),
            Self::Decimal(b, precision, scale) => {
                let data_type = DataType::Decimal128(*precision, *scale as i8);
                restart!(b, Decimal128Builder::with_capacity(rows).with_data_type(data_type))
            }
            Self::Date(b, _) => restart!(b, Date32Builder::with_capacity(rows)),
            Self::Timestamp(b) => restart!(b, TimestampMicrosecondBuilder::with_capacity(rows)),
            Self::Utf8(b) => {
                let bytes = b.values_slice().len();
                restart!(b, StringBuilder::with_capacity(rows, bytes))
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Boolean(b) => b.len(),
            Self::Int8(b) => b.len(),
            Self::Int16(b) => b.len(),
            Self::Int32(b) => b.len(),
            Self::Int64(b) => b.len(),
            Self::Float32(b) => b.len(),
            Self::Float64(b) => b.len(),
            Self::Decimal(b, _, _) => b.len(),
            Self::Date(b, _) => b.len(),
            Self::Timestamp(b) => b.len(),
            Self::Utf8(b) => b.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Decimal128Type;

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(parse_decimal("12.34", 10, 2), Some(1234));
        assert_eq!(parse_decimal("-12.3", 10, 2), Some(-1230));
        assert_eq!(parse_decimal("7", 10, 2), Some(700));
        assert_eq!(parse_decimal("12.345", 10, 2), None, "would round");
        assert_eq!(parse_decimal("123456789.00", 10, 2), None, "too many integer digits");
        assert_eq!(parse_decimal("1e5", 10, 2), None);
        assert_eq!(parse_decimal("1.", 10, 2), Some(100));
        assert_eq!(parse_decimal("-.25", 10, 2), Some(-25));
        assert_eq!(parse_decimal(".", 10, 2), None);
        assert_eq!(parse_decimal("-", 10, 2), None);
        assert_eq!(
            decimal_shape("-0012345678901234567.891"),
            Some(DecimalShape { integer_digits: 17, scale: 3, significant_digits: 20 })
        );
        assert_eq!(decimal_shape("0.05").unwrap().significant_digits, 1);
    }

    #[test]
    fn dates_and_timestamps_are_not_truncated() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("20261102"), None);
        assert_eq!(parse_date("2026-11-02 10:00:00"), None);
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00.5"), Some(500_000));
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp("12"), None);
        assert_eq!(parse_timestamp("9999-12-31 23:59:59"), Some(253_402_300_799_000_000));
        assert_eq!(parse_timestamp("1600-01-01T00:00:00"), Some(-11_676_096_000_000_000));
    }

    #[test]
    fn dates_read_digit_by_digit_agree_with_arrow() {
        use datafusion::arrow::datatypes::Date32Type;
        let mut day = chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        while day.year() < 10_000 {
            let text = day.format("%Y-%m-%d").to_string();
            assert_eq!(parse_date(&text), Date32Type::parse(&text), "{text}");
            day = day + chrono::Duration::days(97);
        }
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "2026-1a-01",
            "+026-11-02",
            "2026-11-2 ",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_date("2024-02-29"), Some(19782));
        assert_eq!(parse_date("2000-02-29"), Some(11016));
        assert_eq!(parse_date("0000-01-01"), Date32Type::parse("0000-01-01"));
    }

    #[test]
    fn a_date_column_reads_every_date_as_parse_date_does() {
        let mut column = DateColumnParser::default();
        let mut random = fastrand::Rng::with_seed(7);
        // Few years, so months share and evict slots (keys 16 years apart collide), and days
        // and months just past the ends of the calendar.
        for _ in 0..200_000 {
            let year = if random.bool() { random.u32(1990..2030) } else { random.u32(0..10_000) };
            let text = format!("{year:04}-{:02}-{:02}", random.u32(0..14), random.u32(0..33));
            assert_eq!(column.parse(&text), parse_date(&text), "{text}");
        }
        for text in ["2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", "0000-02-29", "9999-12-31", "2026-1a-01"] {
            assert_eq!(column.parse(text), parse_date(text), "{text}");
        }
    }

    #[test]
    fn plain_numbers_read_here_agree_with_arrow() {
        let mut random = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "+7",
            "007",
            "-0.0",
            "1.5",
            "21168.23",
            "0.04",
            "999999999999999",
            "99999999999999.9",
            "9999999999999999",
            "123456789012345678",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "0.1000000000000000055511151231257827",
            "1.",
            ".5",
            "-",
            "+",
            "",
            "1e5",
            "1.5e-3",
            " 12",
            "12 ",
            "1_000",
            "0x10",
            "inf",
            "NaN",
            "--1",
            "1.2.3",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        for _ in 0..20_000 {
            let (digits, point) = (random.usize(1..=18), random.usize(..20));
            let mut text: String = (0..digits).map(|_| random.digit(10)).collect();
            if point < text.len() {
                text.insert(point, '.');
            }
            if random.usize(..3) == 0 {
                text.insert(0, '-');
            }
            texts.push(text);
        }
        for text in &texts {
            assert_eq!(parse_int(text), Int64Type::parse(text), "{text:?}");
            let (ours, arrow) = (parse_double(text), Float64Type::parse(text));
            assert_eq!(ours.map(f64::to_bits), arrow.map(f64::to_bits), "{text:?}");
        }
    }

    #[test]
    fn booleans_are_words_not_numbers() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("1"), None);
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn a_builder_reports_refused_values_and_keeps_its_length() {
        let mut b = TextColumnBuilder::new(&GlueType::decimal(5, 2), 4).unwrap();
        assert!(b.append_text("1.5"));
        assert!(!b.append_text("1.555"));
        b.append_null();
        let array = b.finish();
        assert_eq!(array.len(), 3);
        let values = array.as_primitive::<Decimal128Type>();
        assert_eq!(values.value(0), 150);
        assert!(values.is_null(1) && values.is_null(2));
        // The builder goes on after a batch, with the same type.
        assert!(b.append_text("2.25"));
        let array = b.finish();
        assert_eq!(array.data_type(), &DataType::Decimal128(5, 2));
        assert_eq!(array.as_primitive::<Decimal128Type>().value(0), 225);
        assert!(TextColumnBuilder::new(&GlueType::Array(Box::new(GlueType::BigInt)), 1).is_err());
    }
}
