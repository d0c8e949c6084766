//! One file cut into chunks of whole lines that rayon's threads decode at once, so one big
//! file uses every core, with results handed on in file order.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;

use super::CsvLayout;
use super::decode::{Chunk, ChunkDecoder, Decoded};
use super::dialect::{Dialect, core_reader};
use super::records::{ChunkRecords, Fields, record_ends, record_text};
use crate::error::{Error, Result};
use crate::source::format::{read_error, skip_bom};
use crate::source::rejects::Rejects;

/// The first chunk of a file a decoding task takes; later chunks are sized from its rows.
const FIRST_CHUNK_BYTES: usize = 1 << 20;
/// Batches a chunk should hold: few, as every chunk in flight holds its batches, but enough
/// that each chunk's last, partial batch is a small share (W1: 2 against 4 took 15 MiB less).
const BATCHES_PER_CHUNK: usize = 2;
const MAX_CHUNK_BYTES: usize = 32 << 20;

/// `decode`, with every chunk `fixed_chunk_bytes` long when given (tests cut files small).
pub(super) fn decode_in_chunks(
    reader: Box<dyn Read + Send>,
    file: &str,
    layout: &CsvLayout,
    rejects: &Rejects,
    emit: &mut dyn FnMut(RecordBatch) -> Result<bool>,
    fixed_chunk_bytes: Option<usize>,
) -> Result<u64> {
    let io_error = |e: std::io::Error| read_error(file, e);
    let reader = skip_bom(reader).map_err(io_error)?;
    let mut chunks = Chunks {
        reader,
        carry: Vec::new(),
        done: false,
        yielded: false,
        size: fixed_chunk_bytes.unwrap_or(FIRST_CHUNK_BYTES),
    };
    let Some(mut first) = chunks.next().map_err(io_error)? else {
        return Ok(0);
    };
    let mut line_base = 0u64;
    let header = if layout.dialect.header {
        // Whole, even when a long header or a line end inside its quotes runs past the chunk.
        loop {
            if let Some((record, end, newlines)) = first_record(layout.dialect, &first) {
                let text: std::sync::Arc<str> = String::from_utf8_lossy(record_text(&first.data[..end])).into();
                first.data.drain(..end);
                line_base = newlines;
                break Some((record, text));
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

/// Cuts a stream into chunks after line ends.
struct Chunks {
    reader: Box<dyn Read + Send>,
    /// What followed the last line end of the previous chunk.
    carry: Vec<u8>,
    done: bool,
    /// Whether a chunk has been handed out.
    yielded: bool,
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
                // After a chunk that ended the file at a line end, an empty last one: the
                // decoder knows the file ended there (a record its quote left open ends with it).
                return Ok((!data.is_empty() || self.yielded).then_some(Chunk { data, last: true }));
            }
            if let Some(end) = data[searched..].iter().rposition(|&b| b == b'\n') {
                self.carry = data.split_off(searched + end + 1);
                self.yielded = true;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, GlueType};
    use crate::source::rejects::{BadRecordPolicy, Quarantine};
    use datafusion::arrow::util::pretty::pretty_format_batches;

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
        let quarantine = Quarantine::of(dir.path(), "bad", Vec::new());
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
        let bad = std::fs::read_to_string(&quarantine.list).unwrap_or_default();
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
}
