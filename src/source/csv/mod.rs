//! CSV: the dialect (delimiter, quote, header), sniffing it from a sample, and decoding a file
//! into Arrow batches under a table's schema.
//!
//! Decoding maps columns by header name when the file has a header (files of one table may
//! order or omit columns differently) and by position otherwise. Every field of every record is
//! checked against its column's type, projected or not, so `bad_records = drop` drops the same
//! rows whatever the query selects. A record with the wrong number of fields, bytes that are not
//! UTF-8, or a value its column's type refuses is a bad record (see `rejects`).
//!
//! Four parts, in the order a file meets them: `dialect` (what the sample says the format
//! is), `chunks` (the file cut into runs of lines that threads decode at once), `records`
//! (csv-core's records straight from a chunk's bytes), `decode` (records into typed columns,
//! bad records set apart).

mod chunks;
mod decode;
mod dialect;
mod records;

use std::io::Read;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};

pub use self::dialect::{DELIMITERS, Dialect, reader_builder, sniff_delimiter};
use super::rejects::Rejects;
use crate::error::Result;
use crate::schema::Column;

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
    chunks::decode_in_chunks(reader, file, layout, rejects, emit, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::GlueType;
    use crate::source::rejects::BadRecordPolicy;
    use datafusion::arrow::util::pretty::pretty_format_batches;

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
