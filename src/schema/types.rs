//! Glue/Hive types, and the one mapping between them and Arrow.
//!
//! The catalog stores Glue type strings (`decimal(12,2)`, `array<struct<a:bigint>>`), the same
//! strings the AWS Glue Data Catalog stores, so a table moves between the embedded catalog and
//! Glue unchanged. DataFusion works on Arrow types. Each Glue type has exactly one Arrow type
//! ([`GlueType::to_arrow`]); Arrow types that Glue cannot hold are mapped to one that holds
//! their values (unsigned integers) or refused with the column named ([`GlueType::from_arrow`]),
//! never silently narrowed.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use serde::{Deserialize, Serialize};

/// The largest decimal precision Glue, Athena and Arrow's Decimal128 all accept.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GlueType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal { precision: u8, scale: u8 },
    String,
    Varchar(u32),
    Char(u32),
    Date,
    Timestamp,
    Binary,
    Array(Box<GlueType>),
    Struct(Vec<StructField>),
    Map(Box<GlueType>, Box<GlueType>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StructField {
    pub name: String,
    pub ty: GlueType,
}

/// Which values compare with which, in the same order whatever their exact types: numbers
/// with numbers, texts with texts, dates and timestamps with each other. None for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Number,
    Text,
    Time,
}

impl ValueKind {
    pub fn of(data_type: &DataType) -> Option<ValueKind> {
        match data_type {
            t if t.is_numeric() => Some(ValueKind::Number),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(ValueKind::Text),
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => Some(ValueKind::Time),
            _ => None,
        }
    }
}

impl GlueType {
    pub fn decimal(precision: u8, scale: u8) -> Self {
        GlueType::Decimal { precision, scale }
    }

    pub fn is_string_like(&self) -> bool {
        matches!(self, GlueType::String | GlueType::Varchar(_) | GlueType::Char(_))
    }

    /// How many arrays, structs and maps hold one another down its deepest path (0 for a
    /// scalar).
    pub fn nesting_depth(&self) -> usize {
        match self {
            GlueType::Array(item) => 1 + item.nesting_depth(),
            GlueType::Struct(fields) => 1 + fields.iter().map(|f| f.ty.nesting_depth()).max().unwrap_or(0),
            GlueType::Map(key, value) => 1 + key.nesting_depth().max(value.nesting_depth()),
            _ => 0,
        }
    }

    /// The Arrow type DataFusion sees for a column of this Glue type. Strings are plain `Utf8`
    /// and timestamps are microseconds without a zone: what Athena's Parquet reader expects.
    pub fn to_arrow(&self) -> DataType {
        match self {
            GlueType::Boolean => DataType::Boolean,
            GlueType::TinyInt => DataType::Int8,
            GlueType::SmallInt => DataType::Int16,
            GlueType::Int => DataType::Int32,
            GlueType::BigInt => DataType::Int64,
            GlueType::Float => DataType::Float32,
            GlueType::Double => DataType::Float64,
            GlueType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale as i8),
            GlueType::String | GlueType::Varchar(_) | GlueType::Char(_) => DataType::Utf8,
            GlueType::Date => DataType::Date32,
            GlueType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            GlueType::Binary => DataType::Binary,
            GlueType::Array(item) => DataType::List(Arc::new(Field::new("item", item.to_arrow(), true))),
            GlueType::Struct(fields) => {
                DataType::Struct(fields.iter().map(|f| Field::new(&f.name, f.ty.to_arrow(), true)).collect::<Fields>())
            }
            GlueType::Map(key, value) => {
                let entries = Fields::from(vec![
                    Field::new("key", key.to_arrow(), false),
                    Field::new("value", value.to_arrow(), true),
                ]);
                DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
            }
        }
    }

    /// An Arrow type as users read it: its Glue name, or Arrow's where Glue has none.
    pub fn name_of(data_type: &DataType) -> String {
        Self::from_arrow(data_type).map_or_else(|_| data_type.to_string(), |t| t.to_string())
    }

    /// The Glue type that holds every value of an Arrow type, or why there is none.
    pub fn from_arrow(data_type: &DataType) -> Result<GlueType, String> {
        Ok(match data_type {
            DataType::Boolean => GlueType::Boolean,
            DataType::Int8 => GlueType::TinyInt,
            DataType::Int16 | DataType::UInt8 => GlueType::SmallInt,
            DataType::Int32 | DataType::UInt16 => GlueType::Int,
            DataType::Int64 | DataType::UInt32 => GlueType::BigInt,
            // What `count`, `rank` and `row_number` return: a bigint to every user. Writing a
            // value above 2^63-1 fails the cast rather than wrapping.
            DataType::UInt64 => GlueType::BigInt,
            DataType::Float16 | DataType::Float32 => GlueType::Float,
            DataType::Float64 => GlueType::Double,
            // Some writers store every decimal in 256 bits (pyarrow's decimal256, Spark's wide
            // decimals); a precision Glue holds is read as it.
            DataType::Decimal32(p, s)
            | DataType::Decimal64(p, s)
            | DataType::Decimal128(p, s)
            | DataType::Decimal256(p, s)
                if *s >= 0 && *p <= MAX_DECIMAL_PRECISION =>
            {
                GlueType::decimal(*p, *s as u8)
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => GlueType::String,
            // A column of nothing but nulls (a JSON field that is always null) holds strings
            // as far as any reader can tell; Glue crawlers say the same.
            DataType::Null => GlueType::String,
            DataType::Date32 | DataType::Date64 => GlueType::Date,
            DataType::Timestamp(_, _) => GlueType::Timestamp,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => GlueType::Binary,
            DataType::FixedSizeBinary(_) => GlueType::Binary,
            DataType::List(item)
            | DataType::LargeList(item)
            | DataType::ListView(item)
            | DataType::LargeListView(item)
            | DataType::FixedSizeList(item, _) => GlueType::Array(Box::new(Self::from_arrow(item.data_type())?)),
            DataType::Struct(fields) => {
                // Named as columns are (`Inner Key` is `inner_key`), collisions refused: a name
                // the type's text cannot hold would make the catalog's record unreadable.
                let names = super::names::normalize_all(fields.iter().map(|f| f.name().as_str()), &"a struct's fields")
                    .map_err(|e| e.message().to_string())?;
                let typed = fields.iter().zip(names).map(|(f, name)| {
                    let ty = Self::from_arrow(f.data_type()).map_err(|e| format!("field {}: {e}", f.name()))?;
                    Ok(StructField { name, ty })
                });
                GlueType::Struct(typed.collect::<Result<_, String>>()?)
            }
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => GlueType::Map(
                    Box::new(Self::from_arrow(kv[0].data_type())?),
                    Box::new(Self::from_arrow(kv[1].data_type())?),
                ),
                other => return Err(format!("map entries of type {other} have no Glue type")),
            },
            DataType::Dictionary(_, value) => Self::from_arrow(value)?,
            DataType::RunEndEncoded(_, value) => Self::from_arrow(value.data_type())?,
            other => return Err(format!("Arrow type {other} has no Glue/Athena type")),
        })
    }
}

impl fmt::Display for GlueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlueType::Boolean => f.write_str("boolean"),
            GlueType::TinyInt => f.write_str("tinyint"),
            GlueType::SmallInt => f.write_str("smallint"),
            GlueType::Int => f.write_str("int"),
            GlueType::BigInt => f.write_str("bigint"),
            GlueType::Float => f.write_str("float"),
            GlueType::Double => f.write_str("double"),
            GlueType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            GlueType::String => f.write_str("string"),
            GlueType::Varchar(n) => write!(f, "varchar({n})"),
            GlueType::Char(n) => write!(f, "char({n})"),
            GlueType::Date => f.write_str("date"),
            GlueType::Timestamp => f.write_str("timestamp"),
            GlueType::Binary => f.write_str("binary"),
            GlueType::Array(item) => write!(f, "array<{item}>"),
            GlueType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{}", field.name, field.ty)?;
                }
                f.write_str(">")
            }
            GlueType::Map(key, value) => write!(f, "map<{key},{value}>"),
        }
    }
}

impl FromStr for GlueType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parser = TypeParser { text, pos: 0 };
        let ty = parser.parse_type()?;
        parser.skip_spaces();
        if parser.pos != text.len() {
            return Err(parser.error("unexpected text after the type"));
        }
        Ok(ty)
    }
}

/// A recursive-descent parser of Hive type strings, as Glue returns them.
struct TypeParser<'a> {
    text: &'a str,
    pos: usize,
}

impl TypeParser<'_> {
    fn error(&self, reason: &str) -> String {
        format!("invalid type '{}' at position {}: {reason}", self.text, self.pos + 1)
    }

    fn skip_spaces(&mut self) {
        while self.text[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }

    fn word(&mut self) -> &str {
        self.skip_spaces();
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_spaces();
        if self.text[self.pos..].starts_with(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn peek(&mut self, c: char) -> bool {
        self.skip_spaces();
        self.text[self.pos..].starts_with(c)
    }

    fn number(&mut self) -> Result<u32, String> {
        let word = self.word().to_string();
        word.parse().map_err(|_| self.error("expected a number"))
    }

    fn parse_type(&mut self) -> Result<GlueType, String> {
        let name = self.word().to_ascii_lowercase();
        Ok(match name.as_str() {
            "boolean" => GlueType::Boolean,
            "tinyint" => GlueType::TinyInt,
            "smallint" => GlueType::SmallInt,
            "int" | "integer" => GlueType::Int,
            "bigint" => GlueType::BigInt,
            "float" => GlueType::Float,
            "double" => GlueType::Double,
            "string" => GlueType::String,
            "date" => GlueType::Date,
            "timestamp" => GlueType::Timestamp,
            "binary" => GlueType::Binary,
            "decimal" => {
                // Hive's bare `decimal` is decimal(10,0).
                if !self.peek('(') {
                    return Ok(GlueType::decimal(10, 0));
                }
                self.expect('(')?;
                let precision = self.number()?;
                let scale = if self.peek(',') {
                    self.expect(',')?;
                    self.number()?
                } else {
                    0
                };
                self.expect(')')?;
                if precision == 0 || precision > MAX_DECIMAL_PRECISION as u32 || scale > precision {
                    return Err(self.error("decimal precision must be 1..38 and scale at most the precision"));
                }
                GlueType::decimal(precision as u8, scale as u8)
            }
            "varchar" | "char" => {
                self.expect('(')?;
                let length = self.number()?;
                self.expect(')')?;
                if name == "varchar" { GlueType::Varchar(length) } else { GlueType::Char(length) }
            }
            "array" => {
                self.expect('<')?;
                let item = self.parse_type()?;
                self.expect('>')?;
                GlueType::Array(Box::new(item))
            }
            "map" => {
                self.expect('<')?;
                let key = self.parse_type()?;
                self.expect(',')?;
                let value = self.parse_type()?;
                self.expect('>')?;
                GlueType::Map(Box::new(key), Box::new(value))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = Vec::new();
                if !self.peek('>') {
                    loop {
                        let name = self.word().to_string();
                        if name.is_empty() {
                            return Err(self.error("expected a field name"));
                        }
                        self.expect(':')?;
                        fields.push(StructField { name, ty: self.parse_type()? });
                        if self.peek(',') {
                            self.expect(',')?;
                        } else {
                            break;
                        }
                    }
                }
                self.expect('>')?;
                GlueType::Struct(fields)
            }
            "" => return Err(self.error("expected a type name")),
            other => return Err(self.error(&format!("unknown type '{other}'"))),
        })
    }
}

impl Serialize for GlueType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GlueType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let ty: GlueType = text.parse().unwrap();
        assert_eq!(ty.to_string(), text);
        assert_eq!(GlueType::from_arrow(&ty.to_arrow()).unwrap().to_string(), text.replace("varchar(10)", "string"));
    }

    #[test]
    fn glue_strings_round_trip_through_arrow() {
        for text in [
            "boolean",
            "tinyint",
            "smallint",
            "int",
            "bigint",
            "float",
            "double",
            "decimal(12,2)",
            "string",
            "date",
            "timestamp",
            "binary",
            "array<bigint>",
            "map<string,double>",
            "struct<a:bigint,b:array<struct<c:string>>>",
        ] {
            round_trip(text);
        }
    }

    #[test]
    fn parser_accepts_hive_spellings() {
        assert_eq!("DECIMAL".parse::<GlueType>().unwrap(), GlueType::decimal(10, 0));
        assert_eq!("decimal(5)".parse::<GlueType>().unwrap(), GlueType::decimal(5, 0));
        assert_eq!("integer".parse::<GlueType>().unwrap(), GlueType::Int);
        assert_eq!("varchar(10)".parse::<GlueType>().unwrap(), GlueType::Varchar(10));
        assert_eq!("struct< a : int >".parse::<GlueType>().unwrap().to_string(), "struct<a:int>");
    }

    #[test]
    fn parser_names_the_position_of_an_error() {
        let err = "array<bigint".parse::<GlueType>().unwrap_err();
        assert!(err.contains("position 13") && err.contains("expected '>'"), "{err}");
        assert!("decimal(40,2)".parse::<GlueType>().is_err());
        assert!("struct<>x".parse::<GlueType>().is_err());
    }

    #[test]
    fn arrow_types_glue_cannot_hold_are_widened_or_refused() {
        assert_eq!(GlueType::from_arrow(&DataType::UInt32).unwrap(), GlueType::BigInt);
        assert_eq!(GlueType::from_arrow(&DataType::UInt64).unwrap(), GlueType::BigInt);
        assert_eq!(GlueType::from_arrow(&DataType::Utf8View).unwrap(), GlueType::String);
        assert_eq!(
            GlueType::from_arrow(&DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))).unwrap(),
            GlueType::Timestamp
        );
        let err = GlueType::from_arrow(&DataType::Time64(TimeUnit::Microsecond)).unwrap_err();
        assert!(err.contains("Time64"), "{err}");
    }
}
