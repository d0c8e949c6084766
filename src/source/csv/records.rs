//! A chunk's records, read by csv-core straight from the chunk's bytes (the csv crate's reader
//! copies every byte through a buffer of its own first), and whether a record ends within
//! the bytes at hand or runs past them inside quotes.

use super::dialect::{Dialect, core_reader};

/// One record's fields as csv-core writes them: their bytes end to end, and where each ends.
pub(super) struct Fields {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    count: usize,
}

impl Fields {
    pub(super) fn new() -> Self {
        Fields { bytes: vec![0; 1024], ends: vec![0; 64], count: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.count
    }

    pub(super) fn range(&self, field: usize) -> std::ops::Range<usize> {
        let start = if field == 0 { 0 } else { self.ends[field - 1] };
        start..self.ends[field]
    }

    pub(super) fn get(&self, field: usize) -> &[u8] {
        &self.bytes[self.range(field)]
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.count).map(|field| self.get(field))
    }

    /// Every field's bytes, end to end.
    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.count.checked_sub(1).map_or(0, |last| self.ends[last])]
    }
}

/// The records of a chunk, which csv-core reads straight from the chunk's bytes (the csv
/// crate's reader copies every byte through a buffer of its own first).
pub(super) struct ChunkRecords<'a> {
    core: csv_core::Reader,
    data: &'a [u8],
    /// Bytes read: where the parser starts the next record.
    pub(super) position: usize,
    done: bool,
}

impl<'a> ChunkRecords<'a> {
    pub(super) fn new(core: csv_core::Reader, data: &'a [u8]) -> Self {
        ChunkRecords { core, data, position: 0, done: false }
    }

    /// Line ends read, plus one.
    pub(super) fn line(&self) -> u64 {
        self.core.line()
    }

    /// Reads the next record into `fields`; false after the last.
    pub(super) fn next(&mut self, fields: &mut Fields) -> bool {
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

/// Whether the record at the start of `bytes` ends within them, rather than running past
/// their end inside a quoted field.
/// A record's own bytes, from the chunk's bytes the parser read for it: without the line
/// ends before it (a CRLF's LF, blank lines) and the one after it.
pub(super) fn record_text(read: &[u8]) -> &[u8] {
    let start = read.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(read.len());
    let text = &read[start..];
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    text.strip_suffix(b"\r").unwrap_or(text)
}

pub(super) fn record_ends(dialect: &Dialect, bytes: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::csv::reader_builder;

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
}
