//! The CSV dialect: delimiter, quote and header, and the delimiter a sample most consistently
//! splits into records of one length.

use serde::{Deserialize, Serialize};

use crate::source::format::strip_bom;

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

/// csv-core's parser for the dialect, as `reader_builder` sets it up for the csv crate's
/// reader (which sniffing and inference use; decoding reads chunks with csv-core itself).
pub(super) fn core_reader(dialect: &Dialect) -> csv_core::Reader {
    csv_core::ReaderBuilder::new().delimiter(dialect.delimiter).quote(dialect.quote).double_quote(true).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_finds_the_consistent_delimiter() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n", true), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\n1,5;2;3\n4;5,5;6\n", true), b';');
        assert_eq!(sniff_delimiter(b"a|b\n\"x,y\"|2\n", true), b'|');
        assert_eq!(sniff_delimiter(b"a\tb\n1\t2\n", true), b'\t');
        assert_eq!(sniff_delimiter(b"single\n1\n2\n", true), b',');
        assert_eq!(sniff_delimiter(b"a,b\n\"multi\nline\",2\n3,4\n5,\"cut", false), b',');
    }
}
