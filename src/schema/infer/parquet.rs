//! Parquet inference: the schema in the file's footer, in Glue types.
//!
//! The footer is fetched in one ranged read of the file's tail and checked (magic bytes, a
//! metadata length that fits the file) before it is decoded, so a corrupt or truncated file is
//! an error naming it, never a panic in the decoder.

use std::sync::Arc;

use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use object_store::ObjectStoreExt;

use super::FileShape;
use super::shape::Shape;
use crate::error::{Error, Result};
use crate::location::Location;
use crate::schema::{GlueType, names};
use crate::source::files::SourceFile;
use crate::source::format::Format;

/// Bytes of a file's tail read at once; most footers fit.
const TAIL_BYTES: u64 = 64 * 1024;
/// The footer's fixed end: metadata length (4 bytes) and `PAR1`.
const FOOTER_END: u64 = 8;

pub async fn infer(location: &Location, file: &SourceFile) -> Result<FileShape> {
    let display = location.display(&file.path);
    let metadata = read_metadata(location, file)
        .await
        .map_err(|e| e.context(&display))?;
    let file_metadata = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(
        file_metadata.schema_descr(),
        file_metadata.key_value_metadata(),
    )
    .map_err(|e| Error::input(format!("{display}: {e}")))?;
    let original: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let normalized =
        names::normalize_all(original.iter().copied(), &format!("schema of {display}"))?;
    let columns = schema
        .fields()
        .iter()
        .zip(normalized)
        .map(|(field, name)| {
            let ty = GlueType::from_arrow(field.data_type())
                .map_err(|e| Error::input(format!("{display}: column {}: {e}", field.name())))?;
            Ok((name, Shape::from_glue(&ty)))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(FileShape {
        format: Format::Parquet,
        columns,
        dialect: None,
        rows: Some(file_metadata.num_rows().max(0) as u64),
    })
}

/// The footer of a Parquet file, checked before it is decoded.
pub async fn read_metadata(location: &Location, file: &SourceFile) -> Result<Arc<ParquetMetaData>> {
    let corrupt = |why: &str| Error::input(format!("not a readable Parquet file ({why})"));
    if file.size < 12 {
        return Err(corrupt("too small"));
    }
    let tail_start = file.size.saturating_sub(TAIL_BYTES);
    let tail = location
        .store()
        .get_range(&file.path, tail_start..file.size)
        .await?;
    let end = &tail[tail.len() - FOOTER_END as usize..];
    if &end[4..] != b"PAR1" {
        return Err(corrupt("no PAR1 footer"));
    }
    let metadata_len = u32::from_le_bytes(end[..4].try_into().expect("four bytes")) as u64;
    if metadata_len + FOOTER_END + 4 > file.size {
        return Err(corrupt("footer length beyond the file"));
    }
    let metadata_start = file.size - FOOTER_END - metadata_len;
    let bytes = if metadata_start >= tail_start {
        let from = (metadata_start - tail_start) as usize;
        tail.slice(from..from + metadata_len as usize)
    } else {
        location
            .store()
            .get_range(&file.path, metadata_start..metadata_start + metadata_len)
            .await?
    };
    let decoded = std::panic::catch_unwind(|| ParquetMetaDataReader::decode_metadata(&bytes))
        .map_err(|_| corrupt("undecodable footer"))?;
    decoded.map(Arc::new).map_err(|e| corrupt(&e.to_string()))
}
