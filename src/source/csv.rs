//! CSV: the dialect (delimiter, quote, header), sniffing it from a sample, and decoding a file
//! into Arrow batches under a table's schema.
//!
//! Decoding maps columns by header name when the file has a header (files of one table may
//! order or omit columns differently) and by position otherwise. Every field of every record is
//! checked against its column's type, projected or not, so `bad_records = drop` drops the same
//! rows whatever the query selects. A record with the wrong number of fields, bytes that are not
//! UTF-8, or a value its column's type refuses is a bad record (see `rejects`).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::format::{read_error, skip_bom, strip_bom};
use super::rejects::{BadRecord, BadRecordPolicy, Rejects, quote_value};
use super::text::{TextColumnBuilder, parses_as};
use crate::error::{Error, Result};
use crate::schema::{Column, names};

/// The delimiters sniffing chooses from, in order of preference on a tie.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'|', b'\t'];

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect { delimiter: b',', quote: b'"', header: true }
    }
}

pub fn reader_builder(dialect: &Dialect) -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder.delimiter(dialect.delimiter).quote(dialect.quote).double_quote(true).has_headers(false).flexible(true);
    builder
}

/// The delimiter under which the sample's records most consistently have the same number
/// (more than one) of fields. `complete` says whether the sample is the whole file; if not,
/// its last record may be cut and is ignored.
pub fn sniff_delimiter(sample: &[u8], complete: bool) -> u8 {
    const RECORDS: usize = 200;
    let mut best = (0.0f64, DELIMITERS[0]);
    for delimiter in DELIMITERS {
        let dialect = Dialect { delimiter, header: false, ..Dialect::default() };
        let mut reader = reader_builder(&dialect).from_reader(strip_bom(sample));
        let mut counts = Vec::new();
        let mut record = csv::ByteRecord::new();
        while counts.len() <= RECORDS {
            match reader.read_byte_record(&mut record) {
                Ok(true) => counts.push(record.len()),
                _ => break,
            }
        }
        if !complete && counts.len() > 1 {
            counts.pop();
        }
        let Some(mode) = mode(&counts) else { continue };
        if mode < 2 {
            continue;
        }
        let consistency = counts.iter().filter(|&&c| c == mode).count() as f64 / counts.len() as f64;
        if consistency > best.0 + 1e-9 {
            best = (consistency, delimiter);
        }
    }
    best.1
}

fn mode(counts: &[usize]) -> Option<usize> {
    let mut tally = std::collections::HashMap::new();
    for &c in counts {
        *tally.entry(c).or_insert(0usize) += 1;
    }
    tally.into_iter().max_by_key(|&(count, n)| (n, count)).map(|(count, _)| count)
}

/// How one file's records decode into a table's columns.
pub struct CsvLayout<'a> {
    pub dialect: &'a Dialect,
    /// The table's data columns.
    pub columns: &'a [Column],
    /// Indices into `columns` of the columns to output, in output order.
    pub projection: &'a [usize],
    /// Markers read as null in non-string columns (an empty field is always null).
    pub null_values: &'a [String],
    pub batch_size: usize,
}

impl CsvLayout<'_> {
    pub fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.projection.iter().map(|&i| self.columns[i].to_arrow()).collect::<Vec<_>>()))
    }
}

/// The first chunk of a file a decoding task takes; later chunks are sized from its rows.
const FIRST_CHUNK_BYTES: usize = 1 << 20;
/// Batches a chunk should hold: few, as every chunk in flight holds its batches, but enough
/// that each chunk's last, partial batch is a small share (W1: 2 against 4 took 15 MiB less).
const BATCHES_PER_CHUNK: usize = 2;
const MAX_CHUNK_BYTES: usize = 32 << 20;

/// Decodes one file, handing each batch to `emit` (which returns false to stop early).
/// Returns the number of good rows read.
///
/// A file is cut into chunks of whole lines that rayon's threads decode at once, so one big
/// file uses every core. Each chunk is decoded as if a record began where it does; that is
/// what a single pass would have done exactly when the chunk before ended between records.
/// When it ended inside a quoted field instead (a line end in a value), the next chunk is
/// decoded again from that record's start. Batches, bad records and line numbers come out as
/// one pass in file order would give them.
pub fn decode(
    reader: Box<dyn Read + Send>,
    file: &str,
    layout: &CsvLayout,
    rejects: &Rejects,
    emit: &mut dyn FnMut(RecordBatch) -> Result<bool>,
) -> Result<u64> {
    decode_in_chunks(reader, file, layout, rejects, emit, None)
}

/// `decode`, with every chunk `fixed_chunk_bytes` long when given (tests cut files small).
fn decode_in_chunks(
    reader: Box<dyn Read + Send>,
    file: &str,
    layout: &CsvLayout,
    rejects: &Rejects,
    emit: &mut dyn FnMut(RecordBatch) -> Result<bool>,
    fixed_chunk_bytes: Option<usize>,
) -> Result<u64> {
    let io_error = |e: std::io::Error| read_error(file, e);
    let reader = skip_bom(reader).map_err(io_error)?;
    let mut chunks =
        Chunks { reader, carry: Vec::new(), done: false, size: fixed_chunk_bytes.unwrap_or(FIRST_CHUNK_BYTES) };
    let Some(mut first) = chunks.next().map_err(io_error)? else {
        return Ok(0);
    };
    let mut line_base = 0u64;
    let header = if layout.dialect.header {
        // Whole, even when a long header or a line end inside its quotes runs past the chunk.
        loop {
            if let Some((record, end, newlines)) = first_record(layout.dialect, &first) {
                first.data.drain(..end);
                line_base = newlines;
                break Some(record);
            }
            match chunks.next().map_err(io_error)? {
                Some(more) => {
                    first.data.extend_from_slice(&more.data);
                    first.last = more.last;
                }
                None => return Ok(0),
            }
        }
    } else {
        None
    };
    let decoder = Arc::new(ChunkDecoder::new(file, layout, header.as_ref(), rejects.policy())?);

    // Blocking on results from inside rayon's pool could leave no thread to produce them.
    let parallel = !first.last && rayon::current_thread_index().is_none();
    let in_flight = if parallel { rayon::current_num_threads() + 1 } else { 1 };
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let mut next = Some(first);
    let mut carried: Option<Vec<u8>> = None;
    let mut good_rows = 0u64;
    let mut sized = fixed_chunk_bytes.is_some();
    loop {
        while queue.len() < in_flight {
            let chunk = match next.take() {
                Some(chunk) => chunk,
                None => match chunks.next().map_err(io_error)? {
                    Some(chunk) => chunk,
                    None => break,
                },
            };
            queue.push_back(if parallel {
                Pending::spawn(decoder.clone(), chunk)
            } else {
                Pending::done(&decoder, chunk)
            });
        }
        let Some(pending) = queue.pop_front() else { break };
        let (mut chunk, mut decoded) = pending.wait()?;
        if let Some(mut record_start) = carried.take() {
            // This chunk began inside the record the previous one cut: decoded again from
            // that record's start, which is where a single pass would have been.
            record_start.extend_from_slice(&chunk.data);
            chunk.data = record_start;
            decoded = decoder.decode(&chunk);
        }
        let decoded = decoded?;
        for mut bad in decoded.bad {
            bad.line += line_base;
            rejects.reject(bad)?;
        }
        line_base += decoded.newlines;
        if let Some(cut) = decoded.cut {
            carried = Some(chunk.data[cut..].to_vec());
        }
        if !sized && decoded.records > 0 {
            let bytes_per_record = chunk.data.len().div_ceil(decoded.records);
            chunks.size =
                (bytes_per_record * layout.batch_size * BATCHES_PER_CHUNK).clamp(FIRST_CHUNK_BYTES, MAX_CHUNK_BYTES);
            sized = true;
        }
        good_rows += decoded.good_rows;
        for batch in decoded.batches {
            if !emit(batch)? {
                return Ok(good_rows);
            }
        }
    }
    Ok(good_rows)
}

/// A run of whole lines of a file; the last chunk is the rest of the file.
struct Chunk {
    data: Vec<u8>,
    last: bool,
}

/// Cuts a stream into chunks after line ends.
struct Chunks {
    reader: Box<dyn Read + Send>,
    /// What followed the last line end of the previous chunk.
    carry: Vec<u8>,
    done: bool,
    size: usize,
}

impl Chunks {
    fn next(&mut self) -> std::io::Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        let mut data = Vec::with_capacity(self.size.max(self.carry.len()) + 64 * 1024);
        data.append(&mut self.carry);
        let mut searched = 0;
        loop {
            let wanted = self.size.saturating_sub(data.len()).max(64 * 1024) as u64;
            let read = (&mut self.reader).take(wanted).read_to_end(&mut data)?;
            if read == 0 {
                self.done = true;
                return Ok((!data.is_empty()).then_some(Chunk { data, last: true }));
            }
            if let Some(end) = data[searched..].iter().rposition(|&b| b == b'\n') {
                self.carry = data.split_off(searched + end + 1);
                return Ok(Some(Chunk { data, last: false }));
            }
            // A line longer than the chunk: read on until it ends.
            searched = data.len();
        }
    }
}

/// A chunk being decoded, or decoded.
enum Pending {
    Spawned(std::sync::mpsc::Receiver<(Chunk, Result<Decoded>)>),
    Done(Chunk, Result<Decoded>),
}

impl Pending {
    fn spawn(decoder: Arc<ChunkDecoder>, chunk: Chunk) -> Self {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        rayon::spawn(move || {
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decoder.decode(&chunk)))
                .unwrap_or_else(|_| Err(Error::runtime("internal error: a CSV decoder panicked")));
            let _ = sender.send((chunk, decoded));
        });
        Pending::Spawned(receiver)
    }

    fn done(decoder: &ChunkDecoder, chunk: Chunk) -> Self {
        let decoded = decoder.decode(&chunk);
        Pending::Done(chunk, decoded)
    }

    /// The chunk and what decoding it gave; an error if its task was lost.
    fn wait(self) -> Result<(Chunk, Result<Decoded>)> {
        match self {
            Pending::Done(chunk, decoded) => Ok((chunk, decoded)),
            Pending::Spawned(receiver) => {
                receiver.recv().map_err(|_| Error::runtime("internal error: a CSV decoder stopped without a result"))
            }
        }
    }
}

/// The first record of a chunk, the bytes up to where the next one may start, and the line
/// ends among those; None when the chunk ends before the record does.
fn first_record(dialect: &Dialect, chunk: &Chunk) -> Option<(Fields, usize, u64)> {
    let mut records = ChunkRecords::new(core_reader(dialect), &chunk.data);
    let mut record = Fields::new();
    if !records.next(&mut record) {
        return None;
    }
    let end = records.position;
    if !chunk.last && end == chunk.data.len() && !record_ends(dialect, &chunk.data) {
        return None;
    }
    Some((record, end, records.line() - 1))
}

/// Whether the record at the start of `bytes` ends within them, rather than running past
/// their end inside a quoted field.
fn record_ends(dialect: &Dialect, bytes: &[u8]) -> bool {
    let mut core = core_reader(dialect);
    let (mut fields, mut ends) = ([0u8; 4096], [0usize; 256]);
    let mut input = bytes;
    // An empty input would tell the parser the file ended, which ends any record.
    while !input.is_empty() {
        let (result, read, _, _) = core.read_record(input, &mut fields, &mut ends);
        input = &input[read..];
        match result {
            csv_core::ReadRecordResult::Record => return true,
            csv_core::ReadRecordResult::InputEmpty | csv_core::ReadRecordResult::End => return false,
            csv_core::ReadRecordResult::OutputFull | csv_core::ReadRecordResult::OutputEndsFull => {}
        }
    }
    false
}

/// csv-core's parser for the dialect, as `reader_builder` sets it up for the csv crate's
/// reader (which sniffing and inference use; decoding reads chunks with csv-core itself).
fn core_reader(dialect: &Dialect) -> csv_core::Reader {
    csv_core::ReaderBuilder::new().delimiter(dialect.delimiter).quote(dialect.quote).double_quote(true).build()
}

/// One record's fields as csv-core writes them: their bytes end to end, and where each ends.
struct Fields {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    count: usize,
}

impl Fields {
    fn new() -> Self {
        Fields { bytes: vec![0; 1024], ends: vec![0; 64], count: 0 }
    }

    fn len(&self) -> usize {
        self.count
    }

    fn range(&self, field: usize) -> std::ops::Range<usize> {
        let start = if field == 0 { 0 } else { self.ends[field - 1] };
        start..self.ends[field]
    }

    fn get(&self, field: usize) -> &[u8] {
        &self.bytes[self.range(field)]
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.count).map(|field| self.get(field))
    }

    /// Every field's bytes, end to end.
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.count.checked_sub(1).map_or(0, |last| self.ends[last])]
    }
}

/// The records of a chunk, which csv-core reads straight from the chunk's bytes (the csv
/// crate's reader copies every byte through a buffer of its own first).
struct ChunkRecords<'a> {
    core: csv_core::Reader,
    data: &'a [u8],
    /// Bytes read: where the parser starts the next record.
    position: usize,
    done: bool,
}

impl<'a> ChunkRecords<'a> {
    fn new(core: csv_core::Reader, data: &'a [u8]) -> Self {
        ChunkRecords { core, data, position: 0, done: false }
    }

    /// Line ends read, plus one.
    fn line(&self) -> u64 {
        self.core.line()
    }

    /// Reads the next record into `fields`; false after the last.
    fn next(&mut self, fields: &mut Fields) -> bool {
        use csv_core::ReadRecordResult::*;
        let (mut written, mut ended) = (0, 0);
        while !self.done {
            // The end of the data, passed as an empty input, ends a record left open.
            let input = &self.data[self.position..];
            let (result, read, wrote, ends) =
                self.core.read_record(input, &mut fields.bytes[written..], &mut fields.ends[ended..]);
            self.position += read;
            written += wrote;
            ended += ends;
            match result {
                InputEmpty => {}
                OutputFull => fields.bytes.resize(fields.bytes.len() * 2, 0),
                OutputEndsFull => fields.ends.resize(fields.ends.len() * 2, 0),
                Record => {
                    fields.count = ended;
                    return true;
                }
                End => self.done = true,
            }
        }
        false
    }
}

/// What decoding one chunk gave.
struct Decoded {
    batches: Vec<RecordBatch>,
    /// Lines counted from the chunk's start.
    bad: Vec<BadRecord>,
    good_rows: u64,
    records: usize,
    /// Line ends in the chunk, up to `cut` if there is one.
    newlines: u64,
    /// Where the chunk's last record starts when it runs on into the next chunk.
    cut: Option<usize>,
}

/// How a file's records map to the table's columns (fixed by its header, if it has one),
/// owned so that any thread can decode any chunk of the file.
struct ChunkDecoder {
    file: String,
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
    fn new(file: &str, layout: &CsvLayout, header: Option<&Fields>, policy: BadRecordPolicy) -> Result<Self> {
        let (source_index, expected_fields) = match header {
            Some(record) => {
                let header: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
                let normalized = names::normalize_all(header.iter().map(String::as_str), &format!("header of {file}"))?;
                let index = layout.columns.iter().map(|c| normalized.iter().position(|n| *n == c.name)).collect();
                (index, record.len())
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

    fn decode(&self, chunk: &Chunk) -> Result<Decoded> {
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
            decoded.records += 1;
            if let Some(problem) = self.append(&record, line, &mut builders) {
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

    /// Appends a record's projected values; what is wrong with it, if anything. A bad
    /// record still appends a row (of nulls where values failed), which the flush removes.
    fn append(&self, record: &Fields, line: u64, builders: &mut [TextColumnBuilder]) -> Option<BadRecord> {
        let file = self.file.as_str();
        if record.len() != self.expected_fields {
            let reason = format!("expected {} fields, found {}", self.expected_fields, record.len());
            for builder in builders.iter_mut() {
                builder.append_null();
            }
            return Some(BadRecord { file: file.to_string(), line, column: None, value: None, reason });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::GlueType;
    use crate::source::rejects::BadRecordPolicy;
    use datafusion::arrow::util::pretty::pretty_format_batches;

    #[test]
    fn sniffing_finds_the_consistent_delimiter() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n", true), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\n1,5;2;3\n4;5,5;6\n", true), b';');
        assert_eq!(sniff_delimiter(b"a|b\n\"x,y\"|2\n", true), b'|');
        assert_eq!(sniff_delimiter(b"a\tb\n1\t2\n", true), b'\t');
        assert_eq!(sniff_delimiter(b"single\n1\n2\n", true), b',');
        assert_eq!(sniff_delimiter(b"a,b\n\"multi\nline\",2\n3,4\n5,\"cut", false), b',');
    }

    fn decode_text(text: &str, columns: &[Column], policy: BadRecordPolicy) -> (Result<u64>, String, u64) {
        let dialect = Dialect::default();
        let projection: Vec<usize> = (0..columns.len()).collect();
        let nulls: Vec<String> = vec!["NA".into()];
        let layout =
            CsvLayout { dialect: &dialect, columns, projection: &projection, null_values: &nulls, batch_size: 2 };
        let rejects = Rejects::new(policy, None);
        let mut batches = Vec::new();
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        let result = decode(reader, "t.csv", &layout, &rejects, &mut |b| {
            batches.push(b);
            Ok(true)
        });
        (result, pretty_format_batches(&batches).unwrap().to_string(), rejects.count())
    }

    fn columns() -> Vec<Column> {
        vec![Column::new("id", GlueType::BigInt), Column::new("name", GlueType::String)]
    }

    #[test]
    fn header_names_map_columns_in_any_order() {
        let (rows, table, _) = decode_text(
            "\u{feff}Name,ID\r\nann,1\r\n\"b,\"\"x\"\"\nz\",2\r\nNA,NA\r\n",
            &columns(),
            BadRecordPolicy::Fail,
        );
        assert_eq!(rows.unwrap(), 3);
        assert!(table.contains("| 1  | ann"), "{table}");
        assert!(table.contains("b,\"x\""), "{table}");
        assert!(table.contains("|    | NA"), "NA is null in bigint, text in string: {table}");
    }

    #[test]
    fn a_bad_value_names_file_line_column_and_value() {
        let (result, _, _) = decode_text("id,name\n1,a\n\"multi\nline\",b\n", &columns(), BadRecordPolicy::Fail);
        let message = result.unwrap_err().message().to_string();
        assert_eq!(message, "bad record in t.csv line 3, column id: value \"multi\\nline\" is not a bigint");
    }

    #[test]
    fn ragged_rows_are_bad_records_that_drop_removes() {
        let (rows, table, rejected) =
            decode_text("id,name\n1,a\n2\n3,c,extra\n4,d\nx,e\n", &columns(), BadRecordPolicy::Drop);
        assert_eq!(rows.unwrap(), 2);
        assert_eq!(rejected, 3);
        assert!(table.contains("| 4  | d"), "{table}");
        assert!(!table.contains("extra") && !table.contains(" e "), "{table}");
        let (result, _, _) = decode_text("id,name\n1,a\n2\n", &columns(), BadRecordPolicy::Fail);
        assert_eq!(result.unwrap_err().message(), "bad record in t.csv line 3: expected 2 fields, found 1");
    }

    #[test]
    fn invalid_utf8_is_a_bad_record() {
        let dialect = Dialect::default();
        let columns = columns();
        let layout =
            CsvLayout { dialect: &dialect, columns: &columns, projection: &[1], null_values: &[], batch_size: 8 };
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(b"id,name\n1,caf\xe9\n".to_vec()));
        let err = decode(reader, "t.csv", &layout, &Rejects::failing(), &mut |_| Ok(true)).unwrap_err();
        assert!(err.message().contains("line 2, column name: value \"caf\u{fffd}\" is not valid UTF-8"), "{err}");
    }

    #[test]
    fn a_character_split_across_two_fields_is_invalid_in_both() {
        // The record's bytes together, `é`, are valid UTF-8; each field alone is not.
        let dialect = Dialect::default();
        let columns = vec![Column::new("a", GlueType::String), Column::new("b", GlueType::String)];
        let layout =
            CsvLayout { dialect: &dialect, columns: &columns, projection: &[0, 1], null_values: &[], batch_size: 8 };
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(b"a,b\nx\xc3,\xa9y\n".to_vec()));
        let err = decode(reader, "t.csv", &layout, &Rejects::failing(), &mut |_| Ok(true)).unwrap_err();
        assert!(err.message().contains("line 2, column a: value \"x\u{fffd}\" is not valid UTF-8"), "{err}");
    }

    /// The table, the good rows and the quarantined records (as JSON lines) of decoding
    /// `text` cut into chunks of `chunk_bytes`.
    fn decode_chunked(text: &[u8], header: bool, chunk_bytes: usize) -> (String, u64, String) {
        let dialect = Dialect { header, ..Dialect::default() };
        let columns = vec![
            Column::new("id", GlueType::BigInt),
            Column::new("name", GlueType::String),
            Column::new("day", GlueType::Date),
        ];
        let nulls: Vec<String> = vec!["NA".into()];
        let layout = CsvLayout {
            dialect: &dialect,
            columns: &columns,
            projection: &[2, 0, 1],
            null_values: &nulls,
            batch_size: 3,
        };
        let dir = tempfile::tempdir().unwrap();
        let quarantine = dir.path().join("bad.jsonl");
        let rejects = Rejects::new(BadRecordPolicy::Quarantine, Some(quarantine.clone()));
        let mut batches = Vec::new();
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.to_vec()));
        let rows = decode_in_chunks(
            reader,
            "t.csv",
            &layout,
            &rejects,
            &mut |b| {
                batches.push(b);
                Ok(true)
            },
            Some(chunk_bytes),
        )
        .unwrap();
        rejects.finish().unwrap();
        let bad = std::fs::read_to_string(quarantine).unwrap_or_default();
        (pretty_format_batches(&batches).unwrap().to_string(), rows, bad)
    }

    #[test]
    fn chunks_decode_as_one_pass_would() {
        // Line ends inside quotes (LF and CRLF), doubled quotes, a quote inside an unquoted
        // field, blank lines, ragged and bad records, no line end at the end.
        let body = "1,plain,2024-01-01\r\n2,\"two\r\nlines\",2024-01-02\r\n\r\n3,5\" screen,2024-01-03\n\
                    4,\"a,\"\"b\"\"\n\nc\",2024-01-04\nx,bad id,2024-01-05\n5,short\n\n\n6,\"\"\"\",NA\n\
                    7,\"\n,\n\",2024-01-07\n8,last,2024-01-08";
        for header in [true, false] {
            let text = if header { format!("\u{feff}id,name,day\n{body}") } else { body.to_string() };
            let whole = decode_chunked(text.as_bytes(), header, 1 << 30);
            assert_eq!(whole.1, 7, "{}", whole.0);
            let first_bad = if header { 10 } else { 9 };
            let lines: Vec<serde_json::Value> = whole
                .2
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["line"].clone())
                .collect();
            assert_eq!(lines, [first_bad, first_bad + 1], "{}", whole.2);
            for chunk_bytes in 1..=48 {
                assert_eq!(
                    decode_chunked(text.as_bytes(), header, chunk_bytes),
                    whole,
                    "chunks of {chunk_bytes} bytes"
                );
            }
        }
    }

    #[test]
    fn a_file_of_many_chunks_decodes_as_one() {
        // Past the first chunk, so later chunks are sized from its rows; every third record
        // holds a line end in quotes, and the first chunk boundary falls inside one.
        let mut text = String::from("id,name,day\n");
        let mut i = 0;
        while text.len() < 3 * FIRST_CHUNK_BYTES {
            let name = if i % 3 == 0 {
                format!("\"line {i}\nand \"\"more\"\" of it, a while longer\"")
            } else {
                format!("name {i}")
            };
            text.push_str(&format!("{i},{name},2024-01-{:02}\n", i % 28 + 1));
            i += 1;
        }
        let dialect = Dialect::default();
        let columns = vec![
            Column::new("id", GlueType::BigInt),
            Column::new("name", GlueType::String),
            Column::new("day", GlueType::Date),
        ];
        let layout = CsvLayout {
            dialect: &dialect,
            columns: &columns,
            projection: &[0, 1, 2],
            null_values: &[],
            batch_size: 4096,
        };
        let decode_with = |fixed: Option<usize>| {
            let mut batches = Vec::new();
            let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.clone().into_bytes()));
            let rows = decode_in_chunks(
                reader,
                "t.csv",
                &layout,
                &Rejects::failing(),
                &mut |b| {
                    batches.push(b);
                    Ok(true)
                },
                fixed,
            )
            .unwrap();
            let batch = datafusion::arrow::compute::concat_batches(&layout.output_schema(), &batches).unwrap();
            (rows, batch)
        };
        let (rows, chunked) = decode_with(None);
        assert_eq!(rows, i as u64);
        assert_eq!(decode_with(Some(1 << 30)), (rows, chunked));
    }

    #[test]
    fn a_header_cut_by_the_chunk_is_read_whole() {
        let text = b"\"i\nd\",name,day\n1,a,2024-01-01\n";
        let dialect = Dialect::default();
        let columns = vec![Column::new("i_d", GlueType::BigInt), Column::new("name", GlueType::String)];
        let layout =
            CsvLayout { dialect: &dialect, columns: &columns, projection: &[0, 1], null_values: &[], batch_size: 8 };
        let mut rows = Vec::new();
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.to_vec()));
        decode_in_chunks(
            reader,
            "t.csv",
            &layout,
            &Rejects::failing(),
            &mut |b| {
                rows.push(pretty_format_batches(&[b]).unwrap().to_string());
                Ok(true)
            },
            Some(2),
        )
        .unwrap();
        assert!(rows.concat().contains("| 1   | a "), "{rows:?}");
    }

    #[test]
    fn chunk_records_are_the_csv_crates_records() {
        let mut random = fastrand::Rng::with_seed(11);
        let mut text = Vec::new();
        for _ in 0..300 {
            // Up to 150 fields and fields of up to 3,000 bytes outgrow the first buffers.
            for field in 0..random.usize(1..150) {
                if field > 0 {
                    text.push(b',');
                }
                let length = if random.u8(..) < 8 { random.usize(1000..3000) } else { random.usize(0..12) };
                let quoted = random.bool();
                if quoted {
                    text.push(b'"');
                }
                for _ in 0..length {
                    let byte = *random.choice(b"ab1,\"\n\r".iter()).unwrap();
                    match byte {
                        b'"' if quoted => text.extend_from_slice(b"\"\""),
                        b',' | b'"' | b'\n' | b'\r' if !quoted => text.push(b'x'),
                        other => text.push(other),
                    }
                }
                if quoted {
                    text.push(b'"');
                }
            }
            text.extend_from_slice(random.choice([&b"\n"[..], b"\r\n", b"\n\n", b"\r"]).unwrap());
        }
        let dialect = Dialect::default();
        let mut expected = Vec::new();
        let mut reader = reader_builder(&dialect).from_reader(&text[..]);
        let mut record = csv::ByteRecord::new();
        while reader.read_byte_record(&mut record).unwrap() {
            let start = record.position().unwrap();
            let fields: Vec<Vec<u8>> = record.iter().map(<[u8]>::to_vec).collect();
            expected.push((start.byte() as usize, start.line(), fields, reader.position().byte() as usize));
        }
        let mut actual = Vec::new();
        let mut records = ChunkRecords::new(core_reader(&dialect), &text);
        let mut fields = Fields::new();
        loop {
            let (start, line) = (records.position, records.line());
            if !records.next(&mut fields) {
                break;
            }
            let values = fields.iter().map(<[u8]>::to_vec).collect();
            actual.push((start, line, values, records.position));
        }
        assert_eq!(actual.len(), expected.len());
        for (actual, expected) in actual.iter().zip(&expected) {
            assert_eq!(actual, expected);
        }
        assert_eq!(records.line(), reader.position().line());
    }

    #[test]
    fn lines_are_counted_from_the_record_start_after_crlf_and_blank_lines() {
        for text in ["id,name\r\n1,a\r\n\r\nx,b\r\n", "id,name\n1,a\n\nx,b\n"] {
            let (result, _, _) = decode_text(text, &columns(), BadRecordPolicy::Fail);
            assert_eq!(
                result.unwrap_err().message(),
                "bad record in t.csv line 4, column id: value \"x\" is not a bigint",
                "{text:?}"
            );
        }
    }

    #[test]
    fn header_only_is_zero_rows_and_empty_projection_counts_rows() {
        let (rows, _, _) = decode_text("id,name\n", &columns(), BadRecordPolicy::Fail);
        assert_eq!(rows.unwrap(), 0);
        let dialect = Dialect::default();
        let columns = columns();
        let layout =
            CsvLayout { dialect: &dialect, columns: &columns, projection: &[], null_values: &[], batch_size: 8 };
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(b"id,name\n1,a\n2,b\n".to_vec()));
        let mut total = 0;
        decode(reader, "t.csv", &layout, &Rejects::failing(), &mut |b| {
            total += b.num_rows();
            Ok(true)
        })
        .unwrap();
        assert_eq!(total, 2);
    }
}
