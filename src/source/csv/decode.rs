//! Records into typed columns: each field checked against its column's type, null markers
//! read as null, bad records set apart and named by file, line, column and value.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;

use super::CsvLayout;
use super::dialect::{Dialect, core_reader};
use super::records::{ChunkRecords, Fields, record_ends, record_text};
use crate::error::Result;
use crate::schema::{Column, names};
use crate::source::rejects::{BadRecord, BadRecordPolicy, quote_value};
use crate::source::text::{TextColumnBuilder, parses_as};

/// A run of whole lines of a file; the last chunk is the rest of the file.
pub(super) struct Chunk {
    pub(super) data: Vec<u8>,
    pub(super) last: bool,
}

/// What decoding one chunk gave.
pub(super) struct Decoded {
    pub(super) batches: Vec<RecordBatch>,
    /// Lines counted from the chunk's start.
    pub(super) bad: Vec<BadRecord>,
    pub(super) good_rows: u64,
    pub(super) records: usize,
    /// Line ends in the chunk, up to `cut` if there is one.
    pub(super) newlines: u64,
    /// Where the chunk's last record starts when it runs on into the next chunk.
    pub(super) cut: Option<usize>,
}

/// How a file's records map to the table's columns (fixed by its header, if it has one),
/// owned so that any thread can decode any chunk of the file.
pub(super) struct ChunkDecoder {
    file: String,
    /// The file's header line as read, kept with its bad records.
    header: Option<Arc<str>>,
    dialect: Dialect,
    columns: Vec<Column>,
    null_values: Vec<String>,
    batch_size: usize,
    schema: SchemaRef,
    /// Where each table column's value sits in a record.
    source_index: Vec<Option<usize>>,
    expected_fields: usize,
    /// Each table column's slot in the output, if projected.
    output: Vec<Option<usize>>,
    projection: Vec<usize>,
    is_string: Vec<bool>,
    /// A null marker is looked for after a value fails to parse, not before every value (a
    /// string comparison per field per marker), unless a marker is itself a value of the type.
    markers_first: Vec<bool>,
    /// Under `fail` the first bad record is the end of the file.
    stop_at_bad: bool,
}

impl ChunkDecoder {
    pub(super) fn new(
        file: &str,
        layout: &CsvLayout,
        header: Option<&(Fields, Arc<str>)>,
        policy: BadRecordPolicy,
    ) -> Result<Self> {
        let header_text = header.map(|(_, text)| text.clone());
        let (source_index, expected_fields) = match header.map(|(record, _)| record) {
            Some(record) => {
                let header: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
                let normalized = names::normalize_all(header.iter().map(String::as_str), &format!("header of {file}"))?;
                let index: Vec<Option<usize>> =
                    layout.columns.iter().map(|c| normalized.iter().position(|n| *n == c.name)).collect();
                // A header ending in a delimiter (`a,b,`) names no column after it, unless the
                // table has one there (inferred from values under it).
                let named = header.iter().rposition(|name| !name.trim().is_empty()).map_or(0, |last| last + 1);
                let read = index.iter().flatten().max().map_or(0, |last| last + 1);
                (index, named.max(read))
            }
            None => ((0..layout.columns.len()).map(Some).collect(), layout.columns.len()),
        };
        let mut output: Vec<Option<usize>> = vec![None; layout.columns.len()];
        for (slot, &column) in layout.projection.iter().enumerate() {
            output[column] = Some(slot);
        }
        // Refuses, before any record, column types a text field cannot hold.
        for &i in layout.projection {
            TextColumnBuilder::new(&layout.columns[i].ty, 0).map_err(|e| e.context(file))?;
        }
        Ok(ChunkDecoder {
            file: file.to_string(),
            header: header_text,
            dialect: layout.dialect.clone(),
            columns: layout.columns.to_vec(),
            null_values: layout.null_values.to_vec(),
            batch_size: layout.batch_size,
            schema: layout.output_schema(),
            source_index,
            expected_fields,
            output,
            projection: layout.projection.to_vec(),
            is_string: layout.columns.iter().map(|c| c.ty.is_string_like()).collect(),
            markers_first: layout
                .columns
                .iter()
                .map(|c| layout.null_values.iter().any(|n| parses_as(&c.ty, n)))
                .collect(),
            stop_at_bad: policy == BadRecordPolicy::Fail,
        })
    }

    pub(super) fn decode(&self, chunk: &Chunk) -> Result<Decoded> {
        let data = &chunk.data[..];
        let file = self.file.as_str();
        let mut records = ChunkRecords::new(core_reader(&self.dialect), data);
        let mut record = Fields::new();
        let mut builders = self
            .projection
            .iter()
            .map(|&i| TextColumnBuilder::new(&self.columns[i].ty, self.batch_size))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.context(file))?;
        let mut decoded =
            Decoded { batches: Vec::new(), bad: Vec::new(), good_rows: 0, records: 0, newlines: 0, cut: None };
        let mut rows_in_batch = 0usize;
        let mut bad_rows: Vec<usize> = Vec::new();
        let mut previous_line = 0;
        let mut on_line = 0;
        loop {
            // Where the parser starts this record, and the line ends it has passed.
            let (start, start_line) = (records.position, records.line());
            if !records.next(&mut record) {
                break;
            }
            let end = records.position;
            if !chunk.last
                && data[end..].iter().all(|&b| b == b'\r' || b == b'\n')
                && !record_ends(&self.dialect, &data[start..])
            {
                decoded.cut = Some(start);
                decoded.newlines = start_line - 1;
                break;
            }
            // The record's line is that of its first byte: the parser's position may be at the
            // line feed of the CRLF before it, or at blank lines it skips.
            let skipped =
                data[start..].iter().take_while(|&&b| b == b'\r' || b == b'\n').filter(|&&b| b == b'\n').count();
            let line = start_line + skipped as u64;
            on_line = if line == previous_line { on_line + 1 } else { 0 };
            previous_line = line;
            decoded.records += 1;
            let unclosed = chunk.last
                && data[end..].iter().all(|&b| b == b'\r' || b == b'\n')
                && !record_ends(&self.dialect, &[&data[start..end], b"\n"].concat());
            let problem = match unclosed {
                true => Some(self.unclosed_quote(line, &mut builders)),
                false => self.append(&record, line, &mut builders),
            };
            if let Some(mut problem) = problem {
                problem = problem.with_record(record_text(&data[start..end]));
                problem.header = self.header.clone();
                problem.on_line = on_line;
                decoded.bad.push(problem);
                if self.stop_at_bad {
                    return Ok(decoded);
                }
                bad_rows.push(rows_in_batch);
            } else {
                decoded.good_rows += 1;
            }
            rows_in_batch += 1;
            if rows_in_batch == self.batch_size {
                decoded.batches.extend(self.flush(&mut builders, rows_in_batch, &mut bad_rows)?);
                rows_in_batch = 0;
            }
        }
        if decoded.cut.is_none() {
            decoded.newlines = records.line() - 1;
        }
        if rows_in_batch > 0 {
            decoded.batches.extend(self.flush(&mut builders, rows_in_batch, &mut bad_rows)?);
        }
        Ok(decoded)
    }

    /// A record the end of the file ended inside a quoted value: its quote never closes, so
    /// its "value" holds every line after it, which are not values of its column.
    fn unclosed_quote(&self, line: u64, builders: &mut [TextColumnBuilder]) -> BadRecord {
        for builder in builders.iter_mut() {
            builder.append_null();
        }
        BadRecord {
            file: self.file.clone(),
            line,
            column: None,
            value: None,
            reason: "a quoted value opened in this record is never closed (the file ends inside it)".into(),
            ..BadRecord::default()
        }
    }

    /// Appends a record's projected values; what is wrong with it, if anything. A bad
    /// record still appends a row (of nulls where values failed), which the flush removes.
    fn append(&self, record: &Fields, line: u64, builders: &mut [TextColumnBuilder]) -> Option<BadRecord> {
        let file = self.file.as_str();
        // Fields past the expected ones are accepted when empty: a delimiter ending each line
        // (`1,2,`) holds no value. One that holds a value is not dropped silently.
        let trailing_empty = |from: usize| (from..record.len()).all(|i| record.get(i).is_empty());
        if record.len() < self.expected_fields || !trailing_empty(self.expected_fields) {
            let reason = format!("expected {} fields, found {}", self.expected_fields, record.len());
            for builder in builders.iter_mut() {
                builder.append_null();
            }
            return Some(BadRecord {
                file: file.to_string(),
                line,
                column: None,
                value: None,
                reason,
                ..BadRecord::default()
            });
        }
        let mut problem: Option<BadRecord> = None;
        // One UTF-8 check of the whole record instead of one per field (a tenth of W1's
        // instructions went to per-field checks); `get` still refuses a field whose ends
        // are not character boundaries, which then gets its own check below.
        let whole = std::str::from_utf8(record.as_slice()).ok();
        for (column, source) in self.source_index.iter().enumerate() {
            let slot = self.output[column];
            let Some(source) = *source else {
                if let Some(slot) = slot {
                    builders[slot].append_null();
                }
                continue;
            };
            let raw = record.get(source);
            let bad = |reason: String, value: Option<String>| BadRecord {
                file: file.to_string(),
                line,
                column: Some(self.columns[column].name.clone()),
                value,
                reason,
                ..BadRecord::default()
            };
            let checked = whole.and_then(|whole| whole.get(record.range(source)));
            let text = match checked.map_or_else(|| std::str::from_utf8(raw), Ok) {
                Ok(text) => text,
                Err(_) => {
                    let shown = String::from_utf8_lossy(raw).into_owned();
                    problem.get_or_insert_with(|| {
                        bad(format!("value {} is not valid UTF-8", quote_value(&shown)), Some(shown.clone()))
                    });
                    if let Some(slot) = slot {
                        builders[slot].append_null();
                    }
                    continue;
                }
            };
            let is_marker = || !self.is_string[column] && self.null_values.iter().any(|n| n == text);
            let is_null = text.is_empty() || (self.markers_first[column] && is_marker());
            let accepted = match (is_null, slot) {
                (true, Some(slot)) => {
                    builders[slot].append_null();
                    true
                }
                (true, None) => true,
                // A value that fails appends a null, which is what a marker is.
                (false, Some(slot)) => builders[slot].append_text(text) || is_marker(),
                (false, None) => parses_as(&self.columns[column].ty, text) || is_marker(),
            };
            if !accepted && problem.is_none() {
                let ty = &self.columns[column].ty;
                problem = Some(bad(format!("value {} is not a {ty}", quote_value(text)), Some(text.to_string())));
            }
        }
        problem
    }

    /// The batch of the rows appended since the last one, without the bad ones.
    fn flush(
        &self,
        builders: &mut [TextColumnBuilder],
        rows: usize,
        bad_rows: &mut Vec<usize>,
    ) -> Result<Option<RecordBatch>> {
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(TextColumnBuilder::finish).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let mut batch = RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)?;
        if !bad_rows.is_empty() {
            let mut keep = vec![true; rows];
            for &row in bad_rows.iter() {
                keep[row] = false;
            }
            batch = filter_record_batch(&batch, &BooleanArray::from(keep))?;
            bad_rows.clear();
        }
        Ok((batch.num_rows() > 0).then_some(batch))
    }
}
