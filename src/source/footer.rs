//! Parquet footers: fetched in one ranged read of a file's tail (a second only when the
//! metadata is larger than that read), checked (magic bytes, a length that fits the file)
//! before they are decoded, so a corrupt or truncated file is an error naming it, never a
//! panic in the decoder.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{Error, Result};

/// Bytes of a file's tail read at once; most footers fit.
const TAIL_BYTES: u64 = 64 * 1024;
/// The footer's fixed end: metadata length (4 bytes) and `PAR1`.
pub const FOOTER_END: u64 = 8;

fn corrupt(why: &str) -> Error {
    Error::input(format!("not a readable Parquet file ({why})"))
}

/// The encoded metadata of a file of `size` bytes (without the length and magic that end it).
pub async fn fetch(store: &dyn ObjectStore, path: &Path, size: u64) -> Result<Bytes> {
    if size < 12 {
        return Err(corrupt("too small"));
    }
    let tail_start = size.saturating_sub(TAIL_BYTES);
    let tail = store.get_range(path, tail_start..size).await?;
    let end = &tail[tail.len() - FOOTER_END as usize..];
    if &end[4..] != b"PAR1" {
        return Err(corrupt("no PAR1 footer"));
    }
    let metadata_len = u32::from_le_bytes(end[..4].try_into().expect("four bytes")) as u64;
    if metadata_len + FOOTER_END + 4 > size {
        return Err(corrupt("footer length beyond the file"));
    }
    let metadata_start = size - FOOTER_END - metadata_len;
    if metadata_start >= tail_start {
        let from = (metadata_start - tail_start) as usize;
        return Ok(tail.slice(from..from + metadata_len as usize));
    }
    Ok(store.get_range(path, metadata_start..metadata_start + metadata_len).await?)
}

/// Decodes encoded metadata.
pub fn decode(bytes: &[u8]) -> Result<Arc<ParquetMetaData>> {
    let decoded = std::panic::catch_unwind(|| ParquetMetaDataReader::decode_metadata(bytes))
        .map_err(|_| corrupt("undecodable footer"))?;
    decoded.map(Arc::new).map_err(|e| corrupt(&e.to_string()))
}

/// Fetches and decodes a file's footer.
pub async fn read(store: &dyn ObjectStore, path: &Path, size: u64) -> Result<Arc<ParquetMetaData>> {
    decode(&fetch(store, path, size).await?)
}
