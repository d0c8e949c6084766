//! Newline-delimited JSON: decoding a file into Arrow batches under a table's schema.
//!
//! Object keys are rewritten to Glue column names (`"OrderId"` -> `"orderid"`, at every depth)
//! before Arrow's decoder sees them, because inference named the columns that way and Arrow
//! matches keys exactly. Lines are decoded a batch at a time; when a batch fails, its lines are
//! decoded one by one to find the bad records, so a clean file pays nothing for the check.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, MapArray, RecordBatch, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;

use super::format::{read_error, strip_bom};
use super::rejects::{BadRecord, Rejects};
use super::text::TextColumnBuilder;
use crate::error::{Error, Result};
use crate::schema::{GlueType, names};

pub struct JsonLayout {
    /// The table's data columns, all decoded (so every record is checked whatever is projected).
    pub schema: SchemaRef,
    /// Indices into `schema` of the columns to output, in output order.
    pub projection: Vec<usize>,
    pub batch_size: usize,
    /// A key outside the schema is a bad record, else ignored (see
    /// [`crate::source::scan::RawTable::refuse_unknown_keys`]).
    pub refuse_unknown_keys: bool,
}

/// Decodes one file, handing each batch to `emit` (which returns false to stop early).
/// Returns the number of good rows read.
pub fn decode(
    reader: Box<dyn Read + Send>,
    file: &str,
    layout: &JsonLayout,
    rejects: &Rejects,
    emit: &mut dyn FnMut(RecordBatch) -> Result<bool>,
) -> Result<u64> {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let mut raw = Vec::new();
    let mut chunk = Vec::new();
    // The lines as read, for the bad ones' records.
    let mut originals = Vec::new();
    let mut lines: Vec<Line> = Vec::new();
    let mut line_number = 0u64;
    let mut good_rows = 0u64;
    let decoded_schema = texts_for_exact_numbers(&layout.schema);
    loop {
        raw.clear();
        let read = reader.read_until(b'\n', &mut raw).map_err(|e| read_error(file, e))?;
        if read > 0 {
            line_number += 1;
            let as_read = if line_number == 1 { strip_bom(&raw) } else { &raw };
            let as_read = as_read.strip_suffix(b"\n").unwrap_or(as_read);
            let as_read = as_read.strip_suffix(b"\r").unwrap_or(as_read);
            let line = trim_line(as_read);
            if !line.is_empty() {
                let start = chunk.len();
                normalize_keys(line, &mut chunk);
                let original = originals.len()..originals.len() + as_read.len();
                originals.extend_from_slice(as_read);
                lines.push(Line { number: line_number, normalized: start..chunk.len(), original });
                chunk.push(b'\n');
            }
        }
        if lines.len() == layout.batch_size || (read == 0 && !lines.is_empty()) {
            let batch = decode_chunk(&chunk, &originals, &lines, file, layout, &decoded_schema, rejects)?;
            chunk.clear();
            originals.clear();
            lines.clear();
            if let Some(batch) = batch {
                good_rows += batch.num_rows() as u64;
                if !emit(batch.project(&layout.projection)?)? {
                    return Ok(good_rows);
                }
            }
        }
        if read == 0 {
            return Ok(good_rows);
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

/// One non-blank line of a chunk: its number, and where it is in the chunk (keys renamed) and
/// as read.
struct Line {
    number: u64,
    normalized: std::ops::Range<usize>,
    original: std::ops::Range<usize>,
}

fn decode_chunk(
    chunk: &[u8],
    originals: &[u8],
    lines: &[Line],
    file: &str,
    layout: &JsonLayout,
    decoded_schema: &SchemaRef,
    rejects: &Rejects,
) -> Result<Option<RecordBatch>> {
    let strict = layout.refuse_unknown_keys;
    let decoded = match decode_bytes(chunk, lines.len(), decoded_schema, strict) {
        Ok(decoded) => decoded,
        Err(_) => {
            // Somewhere in this chunk is a bad record: find it (them) line by line.
            let mut good = Vec::new();
            for (index, line) in lines.iter().enumerate() {
                let text = &chunk[line.normalized.clone()];
                let decoded = decode_bytes(text, 1, decoded_schema, strict)
                    .or_else(|message| {
                        // A key outside the schema that holds null loses nothing.
                        without_null_unknown_keys(text, &layout.schema)
                            .map_or(Err(message), |text| decode_bytes(&text, 1, decoded_schema, strict))
                    })
                    .or_else(|message| {
                        nested_as_text(text, &layout.schema)
                            .map_or(Err(message), |text| decode_bytes(&text, 1, decoded_schema, strict))
                    });
                match decoded {
                    Ok(Some(batch)) => good.push((index, batch)),
                    Ok(None) => {}
                    Err(message) => {
                        let record = bad_record(file, line.number, &message, text)
                            .with_record(&originals[line.original.clone()]);
                        rejects.reject(record)?
                    }
                }
            }
            let Some((_, first)) = good.first() else { return Ok(None) };
            let (schema, kept): (_, Vec<&Line>) = (first.schema(), good.iter().map(|(i, _)| &lines[*i]).collect());
            let batches: Vec<&RecordBatch> = good.iter().map(|(_, b)| b).collect();
            let batch = concat_batches(&schema, batches)?;
            return exact_numbers(batch, &kept, originals, file, layout, rejects).map(Some);
        }
    };
    let Some(batch) = decoded else { return Ok(None) };
    let lines: Vec<&Line> = lines.iter().collect();
    exact_numbers(batch, &lines, originals, file, layout, rejects).map(Some)
}

/// The line without the keys outside `schema` (at any depth of its structs) whose value is
/// null; None when it has none.
fn without_null_unknown_keys(line: &[u8], schema: &SchemaRef) -> Option<Vec<u8>> {
    fn prune(
        fields: &mut serde_json::Map<String, serde_json::Value>,
        known: &datafusion::arrow::datatypes::Fields,
    ) -> bool {
        let before = fields.len();
        fields.retain(|name, value| !value.is_null() || known.find(name).is_some());
        let mut pruned = fields.len() < before;
        for (name, value) in fields.iter_mut() {
            if let (Some((_, field)), serde_json::Value::Object(inner)) = (known.find(name), value)
                && let DataType::Struct(children) = field.data_type()
            {
                pruned |= prune(inner, children);
            }
        }
        pruned
    }
    let serde_json::Value::Object(mut fields) = serde_json::from_slice(line).ok()? else { return None };
    prune(&mut fields, schema.fields()).then(|| serde_json::to_vec(&fields).ok()).flatten()
}

/// The line with the objects and arrays of its string columns as their JSON text, as Athena's
/// JSON SerDe reads them: a crawl that meets a field holding numbers in one record and objects
/// in another makes it a string, at any depth (a struct's field, an array's elements, a map's
/// values). None when there is none to rewrite.
fn nested_as_text(line: &[u8], schema: &SchemaRef) -> Option<Vec<u8>> {
    let mut record = serde_json::from_slice(line).ok()?;
    let rewritten = nested_as_text_in(&mut record, &DataType::Struct(schema.fields().clone()));
    rewritten.then(|| serde_json::to_vec(&record).ok()).flatten()
}

fn nested_as_text_in(value: &mut serde_json::Value, data_type: &DataType) -> bool {
    use serde_json::Value;
    match (data_type, value) {
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, value @ (Value::Object(_) | Value::Array(_))) => {
            *value = Value::String(value.to_string());
            true
        }
        (DataType::Struct(fields), Value::Object(members)) => {
            let mut rewritten = false;
            for (name, member) in members.iter_mut() {
                if let Some((_, field)) = fields.find(name) {
                    rewritten |= nested_as_text_in(member, field.data_type());
                }
            }
            rewritten
        }
        (DataType::List(item) | DataType::LargeList(item), Value::Array(items)) => {
            items.iter_mut().fold(false, |rewritten, element| nested_as_text_in(element, item.data_type()) | rewritten)
        }
        (DataType::Map(entries, _), Value::Object(members)) => {
            let DataType::Struct(pair) = entries.data_type() else { return false };
            let Some(value_field) = pair.get(1) else { return false };
            members
                .values_mut()
                .fold(false, |rewritten, member| nested_as_text_in(member, value_field.data_type()) | rewritten)
        }
        _ => false,
    }
}

/// The schema decoded with integers and decimals as text, at any depth: Arrow's decoder reads
/// `7.9` into a bigint as 7 and `12.99` into a `decimal(20,0)` as 12, where CSV rejects both;
/// so the text is read and parsed here, as CSV's is.
fn texts_for_exact_numbers(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_data_type(exact_numbers_as_text(f.data_type())))
        .collect();
    let decoded = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    if decoded == *schema { schema.clone() } else { decoded }
}

fn exact_numbers_as_text(data_type: &DataType) -> DataType {
    let field = |f: &FieldRef| Arc::new(f.as_ref().clone().with_data_type(exact_numbers_as_text(f.data_type())));
    match data_type {
        DataType::Int32 | DataType::Int64 | DataType::Decimal128(_, _) => DataType::Utf8,
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::List(item) => DataType::List(field(item)),
        DataType::Map(entries, sorted) => DataType::Map(field(entries), *sorted),
        other => other.clone(),
    }
}

/// A value that its column's type does not hold exactly.
struct InexactValue {
    /// The element's index in the array it was found in (a row, at the top).
    index: usize,
    column: String,
    text: String,
    ty: GlueType,
}

/// `batch`'s integers and decimals (decoded as text) parsed under `layout`'s schema; rows with a
/// value the column's type does not hold exactly are bad records, named with their line,
/// column (`customer.id` inside a struct) and value.
fn exact_numbers(
    batch: RecordBatch,
    lines: &[&Line],
    originals: &[u8],
    file: &str,
    layout: &JsonLayout,
    rejects: &Rejects,
) -> Result<RecordBatch> {
    let schema = &layout.schema;
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let mut inexact = Vec::new();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| parse_exact(column, field, field.name(), &mut inexact))
        .collect::<Result<Vec<_>>>()?;
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    if inexact.is_empty() {
        return Ok(batch);
    }
    // One bad record a row, naming the first value that made it bad.
    inexact.sort_by_key(|value| value.index);
    inexact.dedup_by_key(|value| value.index);
    let mut bad = vec![false; batch.num_rows()];
    for value in inexact {
        let line = lines[value.index];
        let record = BadRecord {
            file: file.to_string(),
            line: line.number,
            reason: format!("value {} is not a {}", serde_json::Value::from(value.text.as_str()), value.ty),
            column: Some(value.column),
            value: Some(value.text),
            ..BadRecord::default()
        };
        rejects.reject(record.with_record(&originals[line.original.clone()]))?;
        bad[value.index] = true;
    }
    let keep = BooleanArray::from(bad.iter().map(|b| !b).collect::<Vec<_>>());
    Ok(filter_record_batch(&batch, &keep)?)
}

/// `decoded` (read under [`exact_numbers_as_text`]) as `field`'s type, noting in `inexact`
/// the values that type does not hold exactly (null in the result).
fn parse_exact(decoded: &ArrayRef, field: &Field, column: &str, inexact: &mut Vec<InexactValue>) -> Result<ArrayRef> {
    if decoded.data_type() == field.data_type() {
        return Ok(decoded.clone());
    }
    Ok(match field.data_type() {
        DataType::Struct(fields) => {
            let decoded = decoded.as_struct();
            let children = fields
                .iter()
                .zip(decoded.columns())
                .map(|(child, values)| parse_exact(values, child, &format!("{column}.{}", child.name()), inexact))
                .collect::<Result<Vec<_>>>()?;
            Arc::new(StructArray::try_new(fields.clone(), children, decoded.nulls().cloned())?)
        }
        DataType::List(item) => {
            let decoded = decoded.as_list::<i32>();
            let values = parse_elements(decoded.values(), decoded.offsets(), item, column, inexact)?;
            Arc::new(ListArray::try_new(item.clone(), decoded.offsets().clone(), values, decoded.nulls().cloned())?)
        }
        DataType::Map(entries, sorted) => {
            let decoded = decoded.as_map();
            let pairs: ArrayRef = Arc::new(decoded.entries().clone());
            let pairs = parse_elements(&pairs, decoded.offsets(), entries, column, inexact)?;
            let (offsets, nulls) = (decoded.offsets().clone(), decoded.nulls().cloned());
            Arc::new(MapArray::try_new(entries.clone(), offsets, pairs.as_struct().clone(), nulls, *sorted)?)
        }
        data_type => {
            // The text rules CSV's values are read by, and their builder.
            let ty = GlueType::from_arrow(data_type).map_err(Error::runtime)?;
            let texts = decoded.as_string::<i32>();
            let mut values = TextColumnBuilder::new(&ty, texts.len())?;
            for (index, text) in texts.iter().enumerate() {
                match text {
                    None => values.append_null(),
                    Some(text) if values.append_text(text.trim()) => {}
                    Some(text) => inexact.push(InexactValue {
                        index,
                        column: column.to_string(),
                        text: text.to_string(),
                        ty: ty.clone(),
                    }),
                }
            }
            values.finish()
        }
    })
}

/// The elements of a list or map column (`values`, split into rows by `offsets`) parsed as
/// [`parse_exact`] parses a column; what they hold inexactly is noted under its row.
fn parse_elements(
    values: &ArrayRef,
    offsets: &OffsetBuffer<i32>,
    field: &Field,
    column: &str,
    inexact: &mut Vec<InexactValue>,
) -> Result<ArrayRef> {
    let mut found = Vec::new();
    let parsed = parse_exact(values, field, column, &mut found)?;
    inexact.extend(found.into_iter().map(|value| InexactValue {
        index: offsets.partition_point(|&start| start as usize <= value.index) - 1,
        ..value
    }));
    Ok(parsed)
}

fn decode_bytes(bytes: &[u8], rows: usize, schema: &SchemaRef, strict: bool) -> Result<Option<RecordBatch>, String> {
    let mut decoder = ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(rows.max(1))
        .with_coerce_primitive(true)
        .with_strict_mode(strict)
        .build_decoder()
        .map_err(|e| e.to_string())?;
    let consumed = decoder.decode(bytes).map_err(|e| e.to_string())?;
    if consumed < bytes.len() && !bytes[consumed..].trim_ascii().is_empty() {
        return Err("more than one JSON value on the line".to_string());
    }
    if decoder.has_partial_record() {
        return Err("incomplete JSON value".to_string());
    }
    decoder.flush().map_err(|e| e.to_string())
}

/// Arrow's JSON errors read "Json error: whilst decoding field 'amount': failed to parse
/// \"abc\" as Int64"; the column is pulled out so the report can name it. `line` is the record
/// (keys renamed), where the value of a key outside the schema is found.
fn bad_record(file: &str, line_number: u64, message: &str, line: &[u8]) -> BadRecord {
    // A line no JSON parser takes (a number beyond a double, `1e400`) was also skipped by
    // inference: the decoder's complaint about what inference never met would mislead.
    match serde_json::from_slice::<serde_json::Value>(line) {
        Err(error) => {
            let text = error.to_string();
            let what = text.split(" at line ").next().unwrap_or(&text);
            let reason = format!("not a JSON record etl can read: {what} at character {}", error.column());
            return BadRecord { file: file.to_string(), line: line_number, reason, ..BadRecord::default() };
        }
        // A whole value that is no object (`42`, `"text"`, `[1]`): the decoder calls a
        // number "incomplete", which it is not.
        Ok(value) if !value.is_object() => {
            let kind = match &value {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::Object(_) => "an object",
            };
            let reason = format!("a JSON record is an object ({{…}}); the line holds {kind}");
            let value = Some(value.to_string());
            return BadRecord { file: file.to_string(), line: line_number, value, reason, ..BadRecord::default() };
        }
        Ok(_) => {}
    }
    let reason = message.trim_start_matches("Json error: ").trim_start_matches("Parser error: ").to_string();
    if let Some((column, value)) = unknown_key(&reason, line) {
        // The value as the record spells it in the message (`"X7"`, `7`), a text's text as
        // the bad record's value, as other bad records give theirs.
        let holding = value.as_ref().map(|v| format!(" (value {v})")).unwrap_or_default();
        let value = value.map(|value| match value {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        });
        let reason = format!(
            "key \"{column}\"{holding} is not a column of the table: inference did not meet it in the \
             sample it read of each file (a source's sample_rows = 0 reads whole files)"
        );
        return BadRecord {
            file: file.to_string(),
            line: line_number,
            column: Some(column),
            value,
            reason,
            ..BadRecord::default()
        };
    }
    // "whilst decoding field 'a': whilst decoding field 'b': expected [ got 7": the key's path
    // (`a.b`), the decoder's complaint, and the value the record holds there.
    let mut path = Vec::new();
    let mut complaint = reason.as_str();
    while let Some((name, after)) = complaint.strip_prefix("whilst decoding field '").and_then(|r| r.split_once("': "))
    {
        path.push(name.to_string());
        complaint = after;
    }
    let record: Option<serde_json::Value> = serde_json::from_slice(line).ok();
    let held = record.as_ref().and_then(|r| path.iter().try_fold(r, |value, name| value.get(name)));
    let value = held.map(|value| match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    });
    let reason = match (path.is_empty(), held) {
        (false, Some(held)) => {
            format!("key \"{}\" holds {held}, which its column's type does not take ({complaint})", path.join("."))
        }
        _ => reason,
    };
    let column = (!path.is_empty()).then(|| path.join("."));
    BadRecord { file: file.to_string(), line: line_number, column, value, reason, ..BadRecord::default() }
}

/// From strict decoding's "whilst decoding field 'a': column 'b' missing from schema", the
/// key's path (`a.b`) and its value in `line`.
fn unknown_key(reason: &str, line: &[u8]) -> Option<(String, Option<serde_json::Value>)> {
    let mut path = Vec::new();
    let mut rest = reason;
    while let Some(inner) = rest.strip_prefix("whilst decoding field '") {
        let (name, after) = inner.split_once("': ")?;
        path.push(name.to_string());
        rest = after;
    }
    let key = rest.strip_prefix("column '")?.strip_suffix("' missing from schema")?;
    path.push(key.to_string());
    let record: serde_json::Value = serde_json::from_slice(line).ok()?;
    let value = path.iter().try_fold(&record, |value, name| value.get(name)).cloned();
    Some((path.join("."), value))
}

/// Copies one JSON line to `out` with every object key rewritten to its Glue column name.
/// Keys already in that form (the common case) are copied as they are.
pub fn normalize_keys(line: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    let mut copied = 0;
    while i < line.len() {
        if line[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        let mut escaped = false;
        i += 1;
        while i < line.len() && line[i] != b'"' {
            if line[i] == b'\\' {
                escaped = true;
                i += 1;
            }
            i += 1;
        }
        let end = i.min(line.len()); // closing quote (or end of a broken line)
        i = end + 1;
        let mut after = i;
        while after < line.len() && line[after].is_ascii_whitespace() {
            after += 1;
        }
        let is_key = after < line.len() && line[after] == b':';
        let key = &line[start + 1..end];
        if !is_key || (!escaped && key_is_normalized(key)) {
            continue;
        }
        let decoded: Option<String> = if escaped {
            serde_json::from_slice(&line[start..(end + 1).min(line.len())]).ok()
        } else {
            std::str::from_utf8(key).ok().map(str::to_string)
        };
        let Some(decoded) = decoded else { continue };
        out.extend_from_slice(&line[copied..start]);
        out.push(b'"');
        out.extend_from_slice(names::normalize(&decoded, 0).as_bytes());
        out.push(b'"');
        copied = (end + 1).min(line.len());
    }
    out.extend_from_slice(&line[copied..]);
}

fn key_is_normalized(key: &[u8]) -> bool {
    !key.is_empty() && key.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// Whether the first non-blank byte opens a JSON array: a JSON document, not NDJSON.
pub fn is_array_document(head: &[u8]) -> bool {
    strip_bom(head).iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

pub fn not_ndjson_error(file: &str) -> Error {
    Error::input(format!("{file}: a JSON array document; etl reads newline-delimited JSON (one object per line)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::GlueType;
    use crate::schema::{Column, TableSchema};
    use crate::source::rejects::BadRecordPolicy;
    use datafusion::arrow::util::pretty::pretty_format_batches;

    fn normalized(line: &str) -> String {
        let mut out = Vec::new();
        normalize_keys(line.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keys_are_rewritten_and_values_are_not() {
        assert_eq!(normalized(r#"{"a":1,"b":"X Y"}"#), r#"{"a":1,"b":"X Y"}"#);
        assert_eq!(
            normalized(r#"{"Order Id": "Order Id", "Nested": {"Inner.Key" : [1]}}"#),
            r#"{"order_id": "Order Id", "nested": {"inner_key" : [1]}}"#
        );
        assert_eq!(normalized(r#"{"Esc\"aped":"v\"al"}"#), r#"{"esc_aped":"v\"al"}"#);
    }

    fn decode_text(text: &str, policy: BadRecordPolicy) -> (Result<u64>, String, u64) {
        let schema = TableSchema {
            columns: vec![
                Column::new("id", GlueType::BigInt),
                Column::new("amount", GlueType::Double),
                Column::new("tags", "array<string>".parse().unwrap()),
                Column::new("customer", "struct<name:string,tier:bigint>".parse().unwrap()),
            ],
            partition_keys: vec![],
        }
        .file_schema();
        let layout = JsonLayout { schema, projection: vec![0, 1, 3], batch_size: 3, refuse_unknown_keys: true };
        let rejects = Rejects::new(policy, None);
        let mut batches = Vec::new();
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        let result = decode(reader, "t.json", &layout, &rejects, &mut |b| {
            batches.push(b);
            Ok(true)
        });
        (result, pretty_format_batches(&batches).unwrap().to_string(), rejects.count())
    }

    #[test]
    fn ints_widen_missing_fields_are_null_and_keys_are_matched_normalized() {
        let text = "{\"ID\":1,\"Amount\":2,\"Customer\":{\"Name\":\"a\"}}\r\n\n{\"id\":2,\"amount\":2.5}\n{\"id\":3,\"amount\":null,\"tags\":[\"x\"]}\n{\"id\":4}";
        let (rows, table, _) = decode_text(text, BadRecordPolicy::Fail);
        assert_eq!(rows.unwrap(), 4, "{table}");
        assert!(table.contains("| 1  | 2.0    | {name: a, tier: }"), "{table}");
        assert!(table.contains("| 2  | 2.5"), "{table}");
    }

    #[test]
    fn a_bad_record_names_file_line_and_field() {
        let text = "{\"id\":1}\n{\"id\":2}\n{\"id\":\"three\"}\n{\"id\":4}\n";
        let (result, _, _) = decode_text(text, BadRecordPolicy::Fail);
        let message = result.unwrap_err().message().to_string();
        assert!(message.starts_with("bad record in t.json line 3, column id: "), "{message}");
        assert!(message.contains("three"), "{message}");

        let (rows, table, rejected) = decode_text(&format!("{text}{{broken\n"), BadRecordPolicy::Drop);
        assert_eq!((rows.unwrap(), rejected), (3, 2), "{table}");
    }

    #[test]
    fn a_key_outside_the_schema_is_a_bad_record_naming_it() {
        let text = "{\"id\":1}\n{\"id\":2,\"Customer\":{\"name\":\"a\",\"Region\":\"EU\"}}\n{\"id\":3,\"extra\":5}\n";
        let (result, _, _) = decode_text(text, BadRecordPolicy::Fail);
        let message = result.unwrap_err().message().to_string();
        assert!(message.starts_with("bad record in t.json line 2, column customer.region: "), "{message}");
        assert!(message.contains("EU") && message.contains("sample_rows = 0"), "{message}");

        let (rows, _, rejected) = decode_text(text, BadRecordPolicy::Drop);
        assert_eq!((rows.unwrap(), rejected), (1, 2));
    }
}
