//! What people read: printers of rows, columns and JSON documents, and sizes for humans. Each
//! printer writes to any `Write`, so formats are unit-tested, `--json` prints exactly one
//! document, and the command line and the server print alike. It decides no exit status and
//! opens no stream itself: that is the command line's.

use std::io::Write;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float32Type, Float64Type, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::arrow::util::pretty::pretty_format_batches_with_options;

use crate::error::Result;
use crate::schema::Column;

pub fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// How every JSON printer of rows writes them: NULL as `null`, and NaN and the infinities,
/// which JSON has no number for, as the strings Spark's `to_json` and Trino's `json_format`
/// write (Arrow's writer makes them `null`, which no reader tells from a NULL).
pub fn json_writer() -> datafusion::arrow::json::WriterBuilder {
    datafusion::arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_encoder_factory(Arc::new(NonFiniteAsText))
}

/// The encoder options of [`json_writer`], for a printer encoding value by value.
pub fn json_encoder_options() -> EncoderOptions {
    EncoderOptions::default().with_explicit_nulls(true).with_encoder_factory(Arc::new(NonFiniteAsText))
}

#[derive(Debug)]
struct NonFiniteAsText;

impl EncoderFactory for NonFiniteAsText {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> std::result::Result<Option<NullableEncoder<'a>>, ArrowError> {
        let encoder: Box<dyn Encoder + 'a> = match array.data_type() {
            DataType::Float64 => {
                let values = array.as_primitive::<Float64Type>();
                if values.iter().flatten().all(f64::is_finite) {
                    return Ok(None);
                }
                Box::new(FloatText(move |i| values.value(i)))
            }
            DataType::Float32 => {
                let values = array.as_primitive::<Float32Type>();
                if values.iter().flatten().all(f32::is_finite) {
                    return Ok(None);
                }
                Box::new(FloatText(move |i| f64::from(values.value(i))))
            }
            _ => return Ok(None),
        };
        Ok(Some(NullableEncoder::new(encoder, array.logical_nulls())))
    }
}

struct FloatText<F>(F);

impl<F: Fn(usize) -> f64> Encoder for FloatText<F> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let value = (self.0)(idx);
        let text = match value {
            v if v.is_nan() => "\"NaN\"".to_string(),
            f64::INFINITY => "\"Infinity\"".to_string(),
            f64::NEG_INFINITY => "\"-Infinity\"".to_string(),
            finite => format!("{finite:?}"),
        };
        out.extend_from_slice(text.as_bytes());
    }
}

/// How `etl sql` prints rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RowFormat {
    Table,
    Csv,
    Json,
}

pub fn write_rows(out: &mut impl Write, batches: &[RecordBatch], format: RowFormat) -> Result<()> {
    match format {
        RowFormat::Table => {
            // NULL as DuckDB's and Trino's shells print it: arrow's default, an empty cell,
            // looked like an empty string.
            let options = FormatOptions::default().with_null("NULL");
            writeln!(out, "{}", pretty_format_batches_with_options(batches, &options)?)?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            writeln!(out, "({rows} {})", if rows == 1 { "row" } else { "rows" })?;
        }
        RowFormat::Csv => write_csv(out, batches)?,
        RowFormat::Json => {
            let mut writer = json_writer().build::<_, datafusion::arrow::json::writer::JsonArray>(&mut *out);
            for batch in batches {
                writer.write(&map_keys_as_text(batch)?)?;
            }
            writer.finish()?;
            drop(writer);
            writeln!(out)?;
        }
    }
    Ok(())
}

/// RFC 4180 rows, as Athena's and DuckDB's CSV have them: a NULL is an empty field and an
/// empty string a quoted one (`""`), so the two read back apart (arrow's writer prints both
/// empty); a field holding the delimiter, a quote or a line break is quoted. The header comes
/// with the first batch; a statement with no columns (DDL) prints nothing.
fn write_csv(out: &mut impl Write, batches: &[RecordBatch]) -> Result<()> {
    use datafusion::arrow::util::display::ArrayFormatter;
    fn field(out: &mut impl Write, text: Option<&str>, first: bool) -> std::io::Result<()> {
        if !first {
            out.write_all(b",")?;
        }
        match text {
            None => Ok(()),
            Some(text) if text.is_empty() || text.contains([',', '"', '\n', '\r']) => {
                write!(out, "\"{}\"", text.replace('"', "\"\""))
            }
            Some(text) => out.write_all(text.as_bytes()),
        }
    }
    let options = FormatOptions::default().with_display_error(true);
    for (index, batch) in batches.iter().enumerate() {
        let batch = nested_as_json(&map_keys_as_text(batch)?)?;
        if batch.num_columns() == 0 {
            continue;
        }
        if index == 0 {
            for (i, f) in batch.schema().fields().iter().enumerate() {
                field(out, Some(f.name()), i == 0)?;
            }
            writeln!(out)?;
        }
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // Logical nulls: a column of NULL literals (type Null) has no null buffer of its own.
        let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
        let mut text = String::new();
        for row in 0..batch.num_rows() {
            for (i, (nulls, formatter)) in nulls.iter().zip(&formatters).enumerate() {
                if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    field(out, None, i == 0)?;
                    continue;
                }
                text.clear();
                std::fmt::Write::write_fmt(&mut text, format_args!("{}", formatter.value(row)))
                    .map_err(|_| crate::error::Error::runtime(format!("column {} does not print", i + 1)))?;
                field(out, Some(&text), i == 0)?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

/// A batch whose maps (at any depth) have text keys: a JSON object's keys are strings, and
/// Arrow's JSON writer refuses others (`map(ARRAY[1, 2], …)`), where Athena and Spark print
/// `{"1": …}`.
pub fn map_keys_as_text(batch: &RecordBatch) -> Result<RecordBatch> {
    columns_cast(batch, with_text_keys)
}

/// `batch` with each column cast to the type `to` gives for its own (the batch itself when
/// none changes).
pub fn columns_cast(batch: &RecordBatch, to: impl Fn(&DataType) -> DataType) -> Result<RecordBatch> {
    let schema = batch.schema();
    if schema.fields().iter().all(|f| to(f.data_type()) == *f.data_type()) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let data_type = to(field.data_type());
        columns.push(datafusion::arrow::compute::cast(column, &data_type)?);
        fields.push(field.as_ref().clone().with_data_type(data_type));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

fn with_text_keys(data_type: &DataType) -> DataType {
    let field = |f: &FieldRef| Arc::new(f.as_ref().clone().with_data_type(with_text_keys(f.data_type())));
    match data_type {
        DataType::Map(entries, sorted) => {
            let DataType::Struct(pair) = entries.data_type() else { return data_type.clone() };
            let mut pair: Vec<FieldRef> = pair.iter().map(field).collect();
            if let Some(key) = pair.first_mut().filter(|key| !key.data_type().is_string()) {
                *key = Arc::new(key.as_ref().clone().with_data_type(DataType::Utf8));
            }
            let entries = entries.as_ref().clone().with_data_type(DataType::Struct(pair.into()));
            DataType::Map(Arc::new(entries), *sorted)
        }
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::List(item) => DataType::List(field(item)),
        DataType::LargeList(item) => DataType::LargeList(field(item)),
        other => other.clone(),
    }
}

/// A batch whose structs, arrays and maps are JSON text, which a CSV field can hold (Arrow's
/// CSV writer refuses nested columns), as Athena's CSV results and Spark's `to_json` give them.
fn nested_as_json(batch: &RecordBatch) -> Result<RecordBatch> {
    if !batch.schema().fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !field.data_type().is_nested() {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let single = RecordBatch::try_from_iter([("value", column.clone())])?;
        let mut lines = Vec::new();
        let mut writer = json_writer().build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut lines);
        writer.write(&single)?;
        writer.finish()?;
        drop(writer);
        // Each line is `{"value":…}`: the text between is the value's JSON as written, its
        // decimals' digits all there (parsed into a JSON value, they would become doubles).
        let texts: Vec<Option<String>> = lines
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let value = line
                    .strip_prefix(br#"{"value":"#)
                    .and_then(|rest| rest.strip_suffix(b"}"))
                    .ok_or_else(|| crate::error::Error::runtime("a nested value's JSON is not {\"value\":…}"))?;
                Ok((value != b"null").then(|| String::from_utf8_lossy(value).into_owned()))
            })
            .collect::<Result<_>>()?;
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from(texts)) as ArrayRef);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// `1234567` -> `1.2 MiB`, in binary units as AWS bills.
pub fn human_bytes(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}

/// Columns as an aligned two-column list.
pub fn write_columns(out: &mut impl Write, title: &str, columns: &[Column]) -> Result<()> {
    if columns.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title}:")?;
    let width = columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for column in columns {
        writeln!(out, "  {:width$}  {}", column.name, column.ty)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![Some("a,\"b\""), None])),
            ],
        )
        .unwrap()
    }

    fn render(format: RowFormat, batches: &[RecordBatch]) -> String {
        let mut out = Vec::new();
        write_rows(&mut out, batches, format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_is_rfc_4180_with_a_header() {
        assert_eq!(render(RowFormat::Csv, &[batch()]), "id,name\n1,\"a,\"\"b\"\"\"\n,\n");
    }

    #[test]
    fn json_is_one_array_with_explicit_nulls() {
        let text = render(RowFormat::Json, &[batch()]);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, serde_json::json!([{"id": 1, "name": "a,\"b\""}, {"id": null, "name": null}]));
        assert_eq!(render(RowFormat::Json, &[]).trim(), "[]");
    }
}
