//! CSV inference: delimiter, header and column types from a sample of one file.
//!
//! Types come from the same parsing rules the reader applies (`source::text`), tried from the
//! narrowest: boolean, bigint, decimal (fixed scale and more digits than a double holds
//! exactly), double, date, timestamp, string. Integers with leading zeros (`007`, zip codes)
//! stay strings, since a number would lose the zeros. Null markers (`NA`, `NULL`, `\N`) are
//! ignored when deciding a type and read as null in non-string columns.
//!
//! The header decision, as a Glue crawler makes it but with more evidence: the first record is
//! a header when some column whose other values all share a type has a first value that would
//! turn that column into text; when every column is text, when the first record's values are
//! distinct, non-empty, not numbers or dates, and appear nowhere below it.
//!
//! The sample also says what Athena's CSV SerDes would make of it (`athena::TextFacts`):
//! whether a data field is quoted, where a quoted field holds a line break, and per column
//! whether values are empty or null markers, hold backslashes, or spell timestamps and doubles
//! in ways LazySimpleSerDe does not read.

use super::FileShape;

/// Whether `value` is a number written with leading zeros (`007`, zip code `02134`), which a
/// number type would lose: such values are text.
pub(super) fn has_leading_zero(value: &str) -> bool {
    let digits = value.trim_start_matches(['-', '+']);
    digits.len() > 1 && digits.starts_with('0') && digits.as_bytes()[1].is_ascii_digit()
}
use super::athena::{ColumnFacts, TextFacts};
use super::shape::Shape;
use crate::error::Result;
use crate::schema::GlueType;
use crate::schema::names;
use crate::source::csv::{Dialect, reader_builder, sniff_delimiter};
use crate::source::format::{Format, strip_bom};
use crate::source::text::{decimal_shape, parse_bool, parse_date, parse_double, parse_int, parse_timestamp};

/// A double holds every decimal of up to 15 significant digits exactly.
const DOUBLE_EXACT_DIGITS: u8 = 15;

pub struct CsvHints<'a> {
    pub delimiter: Option<u8>,
    pub header: Option<bool>,
    pub null_values: &'a [String],
    /// Records to look at; 0 means every record of the sample.
    pub sample_rows: usize,
}

pub fn infer(sample: &[u8], complete: bool, file: &str, hints: &CsvHints) -> Result<FileShape> {
    let sample = strip_bom(sample);
    let delimiter = hints.delimiter.unwrap_or_else(|| sniff_delimiter(sample, complete));
    let mut dialect = Dialect { delimiter, ..Dialect::default() };
    let Sample { records, starts, end, line_break } = read_records(sample, &dialect, complete, hints.sample_rows);
    dialect.header = hints.header.unwrap_or_else(|| detect_header(&records, hints.null_values));

    let (names, data) = if dialect.header && !records.is_empty() {
        // A header ending in a delimiter (`a,b,`) over rows with nothing there names no column.
        let mut header = records[0].as_slice();
        while let [named @ .., last] = header
            && last.trim().is_empty()
            && records[1..].iter().all(|r| r.get(named.len()).is_none_or(String::is_empty))
        {
            header = named;
        }
        let header = names::normalize_all(header.iter().map(String::as_str), &format!("header of {file}"))?;
        (header, &records[1..])
    } else {
        // The record read beyond the sample for a header there is not is no part of it.
        let sampled = match hints.sample_rows {
            0 => &records[..],
            limit => &records[..records.len().min(limit)],
        };
        let width = sampled.iter().map(Vec::len).max().unwrap_or(0);
        ((0..width).map(|i| format!("col{i}")).collect(), sampled)
    };
    // A quoted header alone does not make the data quoted: the header is skipped, not read.
    let data_start = starts.get(usize::from(dialect.header)).map_or(end, |&s| s);
    let mut facts = TextFacts {
        quoted: starts_a_quoted_field(&sample[data_start..end], &dialect),
        line_break: line_break.map(|line| format!("{file} line {line}")),
        ..TextFacts::default()
    };
    let columns = names
        .into_iter()
        .enumerate()
        .map(|(j, name)| {
            let mut stats = TextStats::default();
            for record in data {
                if let Some(value) = record.get(j) {
                    stats.observe(value, hints.null_values);
                }
            }
            facts.columns.insert(name.clone(), stats.facts.clone());
            (name, stats.shape())
        })
        .collect();
    Ok(FileShape { format: Format::Csv, columns, dialect: Some(dialect), rows: None, facts })
}

/// The records of a sample, and where they are in it.
struct Sample {
    records: Vec<Vec<String>>,
    /// The byte offset of each record.
    starts: Vec<usize>,
    /// The byte offset after the last record.
    end: usize,
    /// The line of the first record with a line break in a field (which only quotes allow).
    line_break: Option<u64>,
}

fn read_records(sample: &[u8], dialect: &Dialect, complete: bool, limit: usize) -> Sample {
    let mut reader = reader_builder(dialect).from_reader(sample);
    let mut records = Vec::new();
    let mut starts = Vec::new();
    let mut line_break = None;
    let mut record = csv::ByteRecord::new();
    // One more than asked: the header, if there is one, is not a data record.
    while limit == 0 || records.len() <= limit {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                let at = record.position().map_or((0, 0), |p| (p.byte() as usize, p.line()));
                if line_break.is_none() && record.iter().any(|f| f.contains(&b'\n') || f.contains(&b'\r')) {
                    line_break = Some((records.len(), at.1));
                }
                starts.push(at.0);
                records.push(record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect());
            }
            _ => break,
        }
    }
    let mut end = (reader.position().byte() as usize).min(sample.len());
    let read_everything = limit == 0 || records.len() <= limit;
    if !complete && read_everything && records.len() > 1 {
        // The sample ends somewhere inside the last record.
        records.pop();
        end = starts.pop().unwrap_or(0);
        line_break = line_break.filter(|&(index, _)| index < records.len());
    }
    Sample { records, starts, end, line_break: line_break.map(|(_, line)| line) }
}

/// Whether a field in `text` starts with the quote character. Without quoted fields every
/// delimiter and line end separates fields, so a quote right after one, or at the start,
/// opens a quoted field; with them, the first such quote is one.
fn starts_a_quoted_field(text: &[u8], dialect: &Dialect) -> bool {
    text.first() == Some(&dialect.quote)
        || text
            .windows(2)
            .any(|w| w[1] == dialect.quote && (w[0] == dialect.delimiter || w[0] == b'\n' || w[0] == b'\r'))
}

fn detect_header(records: &[Vec<String>], null_values: &[String]) -> bool {
    let Some(first) = records.first() else {
        return false;
    };
    let looks_like_a_name =
        |v: &str| !v.is_empty() && parse_double(v).is_none() && parse_bool(v).is_none() && parse_timestamp(v).is_none();
    if records.len() == 1 {
        return first.iter().all(|v| looks_like_a_name(v));
    }
    let mut all_text = true;
    for (j, value) in first.iter().enumerate() {
        let mut stats = TextStats::default();
        for record in &records[1..] {
            if let Some(v) = record.get(j) {
                stats.observe(v, null_values);
            }
        }
        let shape = stats.shape();
        if shape != Shape::Unknown {
            if !shape.finish().is_string_like() {
                all_text = false;
                // The first value would turn a typed column into text: it is a name.
                stats.observe(value, null_values);
                if matches!(stats.shape(), Shape::Scalar(GlueType::String)) {
                    return true;
                }
            }
        }
    }
    if !all_text {
        return false;
    }
    let distinct = first.iter().collect::<std::collections::HashSet<_>>().len() == first.len();
    distinct
        && first.iter().all(|v| looks_like_a_name(v))
        && first.iter().enumerate().all(|(j, v)| records[1..].iter().all(|r| r.get(j) != Some(v)))
}

/// What the values of one column could be, narrowed value by value.
#[derive(Debug, Clone)]
struct TextStats {
    values: usize,
    boolean: bool,
    integer: bool,
    double: bool,
    leading_zero: bool,
    /// Every value is a plain decimal literal (no exponent).
    decimal: bool,
    /// The scale shared by every value with a fraction; `Some(None)` when they disagree.
    scale: Option<Option<u8>>,
    integer_digits: u8,
    significant_digits: u8,
    date: bool,
    timestamp: bool,
    /// What Athena's SerDes would make of the values (see `athena`).
    facts: ColumnFacts,
}

impl Default for TextStats {
    fn default() -> Self {
        TextStats {
            values: 0,
            boolean: true,
            integer: true,
            double: true,
            leading_zero: false,
            decimal: true,
            scale: None,
            integer_digits: 0,
            significant_digits: 0,
            date: true,
            timestamp: true,
            facts: ColumnFacts::default(),
        }
    }
}

impl TextStats {
    fn observe(&mut self, value: &str, null_values: &[String]) {
        // Before markers are set aside: `\N` is text in a string column.
        self.facts.backslash |= value.contains('\\');
        if value.is_empty() {
            self.facts.empty = true;
            return;
        }
        if null_values.iter().any(|n| n == value) {
            self.facts.null_marker = true;
            return;
        }
        self.values += 1;
        self.boolean &= parse_bool(value).is_some();
        self.leading_zero |= has_leading_zero(value);
        if self.integer {
            self.integer = parse_int(value).is_some();
        }
        if self.double {
            self.double = parse_double(value).is_some();
            if self.double {
                self.facts.saw_double(value);
            }
        }
        if self.decimal {
            match decimal_shape(value) {
                Some(shape) => {
                    self.integer_digits = self.integer_digits.max(shape.integer_digits);
                    self.significant_digits = self.significant_digits.max(shape.significant_digits);
                    if value.contains('.') {
                        self.scale = match self.scale {
                            None => Some(Some(shape.scale)),
                            Some(Some(s)) if s == shape.scale => Some(Some(s)),
                            _ => Some(None),
                        };
                    }
                }
                None => self.decimal = false,
            }
        }
        if self.date {
            self.date = parse_date(value).is_some();
        }
        if self.timestamp {
            self.timestamp = parse_timestamp(value).is_some();
            if self.timestamp {
                self.facts.saw_timestamp(value);
            }
        }
    }

    fn shape(&self) -> Shape {
        if self.values == 0 {
            return Shape::Unknown;
        }
        let numeric = !self.leading_zero;
        let ty = if self.boolean {
            GlueType::Boolean
        } else if numeric && self.integer {
            GlueType::BigInt
        } else if numeric
            && self.decimal
            && self.significant_digits > DOUBLE_EXACT_DIGITS
            && self.fixed_scale().is_some()
        {
            let scale = self.fixed_scale().unwrap();
            let precision = self.integer_digits as u16 + scale as u16;
            if precision <= crate::schema::types::MAX_DECIMAL_PRECISION as u16 {
                GlueType::decimal(precision as u8, scale)
            } else {
                GlueType::String
            }
        } else if numeric && self.double {
            match (self.decimal, self.fixed_scale()) {
                (true, Some(scale)) => {
                    return Shape::FixedPoint { integer_digits: self.integer_digits, scale };
                }
                _ => GlueType::Double,
            }
        } else if self.date {
            GlueType::Date
        } else if self.timestamp {
            GlueType::Timestamp
        } else {
            GlueType::String
        };
        Shape::Scalar(ty)
    }

    /// The scale when every fractional value has the same one (integers fit any scale).
    fn fixed_scale(&self) -> Option<u8> {
        match self.scale {
            None => Some(0),
            Some(scale) => scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nulls() -> Vec<String> {
        crate::source::text::DEFAULT_NULL_VALUES.iter().map(|s| s.to_string()).collect()
    }

    fn infer_text(text: &str) -> (Dialect, Vec<(String, String)>) {
        let nulls = nulls();
        let hints = CsvHints { delimiter: None, header: None, null_values: &nulls, sample_rows: 1000 };
        let shape = infer(text.as_bytes(), true, "t.csv", &hints).unwrap();
        let columns = shape.columns.iter().map(|(n, s)| (n.clone(), s.finish().to_string())).collect();
        (shape.dialect.unwrap(), columns)
    }

    #[test]
    fn types_from_narrowest_to_string() {
        let text = "Flag;Count;Price;Big Amount;Day;At;Zip;Name;Empty\n\
                    true;1;1.5;12345678901234.567;2026-11-02;2026-11-02 10:00:00;01234;x;\n\
                    FALSE;NA;2;-1.250;2026-11-03;2026-11-02T10:00:00Z;02345;\\N;NA\n";
        let (dialect, columns) = infer_text(text);
        assert_eq!(dialect, Dialect { delimiter: b';', quote: b'"', header: true });
        let expected = [
            ("flag", "boolean"),
            ("count", "bigint"),
            ("price", "double"),
            ("big_amount", "decimal(17,3)"),
            ("day", "date"),
            ("at", "timestamp"),
            ("zip", "string"),
            ("name", "string"),
            ("empty", "string"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(columns, expected);
    }

    #[test]
    fn mixed_scales_and_exponents_are_doubles() {
        let (_, columns) = infer_text("a,b\n1234567890123456.5,1e3\n1.25,2\n");
        assert_eq!(columns[0].1, "double");
        assert_eq!(columns[1].1, "double");
    }

    #[test]
    fn integers_too_big_for_bigint_are_exact_decimals() {
        let (_, columns) = infer_text("id\n123456789012345678901234\n5\n");
        assert_eq!(columns[0].1, "decimal(24,0)");
    }

    #[test]
    fn header_detection() {
        assert!(infer_text("id,amount\n1,2.5\n").0.header);
        assert!(!infer_text("1,2.5\n3,4\n").0.header);
        assert!(infer_text("name,city\nann,paris\nbob,rome\n").0.header);
        assert!(!infer_text("ann,paris\nbob,rome\nann,paris\n").0.header, "repeated values are data");
        assert!(infer_text("a,b,c\n").0.header, "a header-only file");
        assert!(!infer_text("1,2,3\n").0.header);
        let (dialect, columns) = infer_text("1,x\n2,y\n");
        assert!(!dialect.header);
        assert_eq!(columns[0], ("col0".to_string(), "bigint".to_string()));
    }

    #[test]
    fn quoted_newlines_and_a_cut_last_record() {
        let nulls = nulls();
        let hints = CsvHints { delimiter: None, header: None, null_values: &nulls, sample_rows: 1000 };
        let text = "id,note\n1,\"two\nlines\"\n2,\"cut off her";
        let shape = infer(text.as_bytes(), false, "t.csv", &hints).unwrap();
        assert_eq!(shape.columns[0].1.finish(), GlueType::BigInt);
        assert_eq!(shape.columns[1].1.finish(), GlueType::String);
    }

    #[test]
    fn hints_override_sniffing() {
        let nulls = nulls();
        let hints = CsvHints { delimiter: Some(b'|'), header: Some(false), null_values: &nulls, sample_rows: 10 };
        let shape = infer(b"a,b|c\n", true, "t.csv", &hints).unwrap();
        assert_eq!(shape.dialect.unwrap(), Dialect { delimiter: b'|', quote: b'"', header: false });
        assert_eq!(shape.columns.len(), 2);
    }
}
