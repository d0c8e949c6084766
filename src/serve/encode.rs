//! Rows as the caller asked for them: `json` (`{"columns", "rows": [[…]], "next_cursor"}`),
//! `ndjson` (one object a row), `csv` (RFC 4180 with a header, as `etl sql --format csv`) or
//! `arrow` (an Arrow IPC stream). `format=` wins over `Accept`; no match means JSON.
//!
//! JSON rows are Arrow's own JSON encoding in its list mode (the encoding Trino's client
//! protocol uses: a row is an array in column order), so values print as `etl sql --format
//! json` prints them: numbers as numbers, dates, timestamps and decimals as strings. The next
//! cursor of formats without an envelope is in the `Next-Cursor` header.

use std::io::Write;
use std::sync::Arc;

use axum::http::HeaderMap;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::StructMode;
use datafusion::arrow::json::writer::{LineDelimited, make_encoder};

use super::error::{ApiError, ApiResult};
use crate::error::Error;
use crate::output::{RowFormat, json_encoder_options, json_writer, map_keys_as_text, write_rows};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
    Arrow,
}

/// Every format: its name in `format=` and its media type.
pub const FORMATS: [(Format, &str, &str); 4] = [
    (Format::Json, "json", "application/json"),
    (Format::Ndjson, "ndjson", "application/x-ndjson"),
    (Format::Csv, "csv", "text/csv"),
    (Format::Arrow, "arrow", "application/vnd.apache.arrow.stream"),
];

impl Format {
    pub fn name(self) -> &'static str {
        FORMATS.iter().find(|(f, _, _)| *f == self).map(|(_, name, _)| *name).unwrap_or("json")
    }

    pub fn media_type(self) -> &'static str {
        FORMATS.iter().find(|(f, _, _)| *f == self).map(|(_, _, media)| *media).unwrap_or("application/json")
    }

    /// The format `format=` names, else the first of `Accept` that we serve, else JSON.
    pub fn negotiate(parameter: Option<&str>, headers: &HeaderMap) -> ApiResult<Format> {
        if let Some(name) = parameter {
            let names: Vec<&str> = FORMATS.iter().map(|(_, n, _)| *n).collect();
            return FORMATS
                .iter()
                .find(|(_, n, _)| *n == name)
                .map(|(f, _, _)| *f)
                .ok_or_else(|| ApiError::parameter("format", name, format!("expected one of {}", names.join(", "))));
        }
        let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        // By preference (`q`, 1 when not given), the header's order among equals (RFC 9110).
        let mut wanted: Vec<(&str, f32)> = accept
            .split(',')
            .map(|part| {
                let mut pieces = part.split(';');
                let media = pieces.next().unwrap_or("").trim();
                let q = pieces
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (media, q)
            })
            .filter(|(_, q)| *q > 0.0)
            .collect();
        wanted.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (media, _) in wanted {
            if let Some((format, _, _)) = FORMATS.iter().find(|(_, _, m)| *m == media) {
                return Ok(*format);
            }
        }
        Ok(Format::Json)
    }
}

/// An encoded page of rows.
pub struct Encoded {
    pub body: Bytes,
    pub rows: usize,
}

pub fn encode(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    next_cursor: Option<&str>,
) -> ApiResult<Encoded> {
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let body = match format {
        Format::Json => envelope(schema, batches, next_cursor)?,
        Format::Ndjson => {
            let mut out = Vec::new();
            let mut writer = json_writer().build::<_, LineDelimited>(&mut out);
            for batch in batches {
                writer.write(&map_keys_as_text(batch)?).map_err(Error::from)?;
            }
            writer.finish().map_err(Error::from)?;
            drop(writer);
            out
        }
        Format::Csv => {
            let mut out = Vec::new();
            // A header even for no rows: a reader still learns the columns.
            let empty = [RecordBatch::new_empty(schema.clone())];
            write_rows(&mut out, if batches.is_empty() { &empty } else { batches }, RowFormat::Csv)?;
            out
        }
        Format::Arrow => {
            let mut out = Vec::new();
            let mut writer =
                datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut out, schema).map_err(Error::from)?;
            for batch in batches {
                writer.write(&compacted(batch)).map_err(Error::from)?;
            }
            writer.finish().map_err(Error::from)?;
            drop(writer);
            out
        }
    };
    Ok(Encoded { body: Bytes::from(body), rows })
}

/// A batch whose string and binary views hold only the bytes of its own rows: a page sliced
/// from a scan's batch shares its buffers, which Arrow's IPC writer sends whole (a row of 50
/// characters sent as half a megabyte).
fn compacted(batch: &RecordBatch) -> RecordBatch {
    use datafusion::arrow::array::{Array, ArrayRef, AsArray};
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            datafusion::arrow::datatypes::DataType::Utf8View => Arc::new(column.as_string_view().gc()) as ArrayRef,
            datafusion::arrow::datatypes::DataType::BinaryView => Arc::new(column.as_binary_view().gc()) as ArrayRef,
            _ => column.clone(),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns).unwrap_or_else(|_| batch.clone())
}

fn envelope(schema: &SchemaRef, batches: &[RecordBatch], next_cursor: Option<&str>) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    write!(out, "{{\"columns\":{},\"rows\":", serde_json::to_string(&columns).map_err(Error::from)?)
        .map_err(Error::from)?;
    // Rows are arrays in column order, the values in them as `etl sql --format json` writes
    // them (a struct an object: Arrow's list mode would make every struct an array).
    let options = json_encoder_options().with_struct_mode(StructMode::ObjectOnly);
    out.push(b'[');
    let mut first_row = true;
    for batch in batches {
        let batch = map_keys_as_text(batch)?;
        let schema = batch.schema();
        let mut encoders = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, array)| make_encoder(field, array.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::from)?;
        for row in 0..batch.num_rows() {
            out.extend_from_slice(if first_row { b"[" } else { b",[" });
            first_row = false;
            for (i, encoder) in encoders.iter_mut().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match encoder.is_null(row) {
                    true => out.extend_from_slice(b"null"),
                    false => encoder.encode(row, &mut out),
                }
            }
            out.push(b']');
        }
    }
    out.push(b']');
    write!(out, ",\"next_cursor\":{}}}", serde_json::to_string(&next_cursor).map_err(Error::from)?)
        .map_err(Error::from)?;
    Ok(out)
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
            vec![Arc::new(Int64Array::from(vec![Some(1), None])), Arc::new(StringArray::from(vec![Some("a"), None]))],
        )
        .unwrap()
    }

    #[test]
    fn json_rows_are_arrays_in_column_order() {
        let batch = batch();
        let encoded = encode(Format::Json, &batch.schema(), std::slice::from_ref(&batch), Some("c1")).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"columns": ["id", "name"], "rows": [[1, "a"], [null, null]], "next_cursor": "c1"})
        );
        let empty = encode(Format::Json, &batch.schema(), &[], None).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&empty.body).unwrap();
        assert_eq!(value, serde_json::json!({"columns": ["id", "name"], "rows": [], "next_cursor": null}));
    }

    #[test]
    fn every_format_encodes() {
        let batch = batch();
        let ndjson = encode(Format::Ndjson, &batch.schema(), std::slice::from_ref(&batch), None).unwrap();
        assert_eq!(
            std::str::from_utf8(&ndjson.body).unwrap(),
            "{\"id\":1,\"name\":\"a\"}\n{\"id\":null,\"name\":null}\n"
        );
        let csv = encode(Format::Csv, &batch.schema(), &[], None).unwrap();
        assert_eq!(std::str::from_utf8(&csv.body).unwrap(), "id,name\n");
        let arrow = encode(Format::Arrow, &batch.schema(), std::slice::from_ref(&batch), None).unwrap();
        let reader =
            datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow.body), None).unwrap();
        let read: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(read, vec![batch]);
    }

    #[test]
    fn the_format_parameter_wins_over_accept() {
        let mut headers = HeaderMap::new();
        headers.insert("accept", "text/html, text/csv;q=0.9".parse().unwrap());
        assert_eq!(Format::negotiate(None, &headers).unwrap(), Format::Csv);
        assert_eq!(Format::negotiate(Some("arrow"), &headers).unwrap(), Format::Arrow);
        assert_eq!(Format::negotiate(None, &HeaderMap::new()).unwrap(), Format::Json);
        let error = Format::negotiate(Some("xml"), &headers).unwrap_err();
        assert_eq!(error.parameter.as_deref(), Some("format"));
    }
}
