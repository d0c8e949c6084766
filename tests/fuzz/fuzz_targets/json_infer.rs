//! NDJSON: inference on any bytes, then reading the same bytes with the inferred schema.
//! Lines that are not objects are skipped by inference and counted by `drop` when read.
#![no_main]

use std::io::Read;

use etl::schema::Column;
use etl::infer::json::infer;
use etl::source::json::{JsonLayout, decode};
use etl::source::rejects::{BadRecordPolicy, Rejects};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&options, bytes)) = data.split_first() else { return };
    let complete = options & 1 == 0;
    let sample_rows = if options & 0b10 != 0 { 2 } else { 1000 };
    let Ok(shape) = infer(bytes, complete, "fuzz.json", sample_rows) else { return };
    let columns: Vec<Column> = shape.columns.iter().map(|(name, shape)| Column::new(name.clone(), shape.finish())).collect();
    let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(
        columns.iter().map(Column::to_arrow).collect::<Vec<_>>(),
    ));
    let layout = JsonLayout { schema, projection: (0..columns.len()).collect(), batch_size: 5 };
    let rejects = Rejects::new(BadRecordPolicy::Drop, None);
    let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(bytes.to_vec()));
    let _ = decode(reader, "fuzz.json", &layout, &rejects, &mut |_| Ok(true));
});
