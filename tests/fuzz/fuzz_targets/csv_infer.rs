//! CSV: inference on any bytes, then reading the same bytes with the inferred schema.
//!
//! The first byte picks the options (complete sample or cut, header and delimiter hints), the
//! rest is the file. Inference may refuse a file (an Err); reading with what it inferred may
//! find bad records past the sample, which `drop` counts. Neither may panic.
#![no_main]

use std::io::Read;

use etl::schema::Column;
use etl::infer::csv::{CsvHints, infer};
use etl::source::csv::{CsvLayout, decode};
use etl::source::rejects::{BadRecordPolicy, Rejects};
use etl::source::text::DEFAULT_NULL_VALUES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&options, bytes)) = data.split_first() else { return };
    let nulls: Vec<String> = DEFAULT_NULL_VALUES.iter().map(|s| s.to_string()).collect();
    let hints = CsvHints {
        delimiter: (options & 0b100 != 0).then_some(b';'),
        header: match options & 0b11000 {
            0b01000 => Some(true),
            0b10000 => Some(false),
            _ => None,
        },
        null_values: &nulls,
        sample_rows: if options & 0b10 != 0 { 3 } else { 1000 },
    };
    let complete = options & 1 == 0;
    let Ok(shape) = infer(bytes, complete, "fuzz.csv", &hints) else { return };
    let columns: Vec<Column> = shape.columns.iter().map(|(name, shape)| Column::new(name.clone(), shape.finish())).collect();
    let dialect = shape.dialect.expect("CSV inference gives a dialect");
    let projection: Vec<usize> = (0..columns.len()).filter(|i| options & 0b100000 == 0 || i % 2 == 0).collect();
    let layout = CsvLayout { dialect: &dialect, columns: &columns, projection: &projection, null_values: &nulls, batch_size: 7 };
    let rejects = Rejects::new(BadRecordPolicy::Drop, None);
    let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(bytes.to_vec()));
    let mut rows = 0u64;
    let good = decode(reader, "fuzz.csv", &layout, &rejects, &mut |batch| {
        assert_eq!(batch.num_columns(), projection.len());
        rows += batch.num_rows() as u64;
        Ok(true)
    });
    if let Ok(good) = good {
        assert_eq!(good, rows, "good rows counted as emitted");
    }
});
