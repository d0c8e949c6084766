//! File formats and compression, told from the object name (and, for names that say nothing,
//! from the first bytes), and the decompressing reader.

use std::fmt;
use std::io::{BufReader, Read};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Json,
    Parquet,
}

/// What the user asked for: a format, or `auto` (from the extension, then the content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    #[default]
    Auto,
    Csv,
    Json,
    Parquet,
}

impl FormatChoice {
    pub fn fixed(self) -> Option<Format> {
        match self {
            FormatChoice::Auto => None,
            FormatChoice::Csv => Some(Format::Csv),
            FormatChoice::Json => Some(Format::Json),
            FormatChoice::Parquet => Some(Format::Parquet),
        }
    }
}

impl FromStr for FormatChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(FormatChoice::Auto),
            "csv" => Ok(FormatChoice::Csv),
            "json" | "ndjson" | "jsonl" => Ok(FormatChoice::Json),
            "parquet" => Ok(FormatChoice::Parquet),
            other => Err(format!("unknown format '{other}' (expected auto, csv, json or parquet)")),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Parquet => "parquet",
        })
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FormatChoice::from_str(s)?.fixed().ok_or_else(|| "a table has one format, not auto".to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
    Bzip2,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
        })
    }
}

/// Format and compression as the object name tells them: `a.csv.gz` is gzip-compressed CSV;
/// `a.gz` is gzip-compressed something.
pub fn from_name(name: &str) -> (Option<Format>, Compression) {
    let lower = name.to_ascii_lowercase();
    let (stem, compression) = match lower.rsplit_once('.') {
        Some((stem, "gz" | "gzip")) => (stem, Compression::Gzip),
        Some((stem, "zst" | "zstd")) => (stem, Compression::Zstd),
        Some((stem, "bz2")) => (stem, Compression::Bzip2),
        _ => (lower.as_str(), Compression::None),
    };
    let format = match stem.rsplit_once('.').map(|(_, ext)| ext) {
        Some("csv" | "tsv" | "txt" | "psv") => Some(Format::Csv),
        Some("json" | "jsonl" | "ndjson") => Some(Format::Json),
        Some("parquet" | "pq" | "parq") => Some(Format::Parquet),
        _ => None,
    };
    (format, compression)
}

/// Format as the first (decompressed) bytes tell it, for objects whose name does not.
pub fn from_content(head: &[u8]) -> Format {
    if head.starts_with(b"PAR1") {
        return Format::Parquet;
    }
    match strip_bom(head).iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Format::Json,
        _ => Format::Csv,
    }
}

/// Text without the UTF-8 byte order mark some writers put first.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// A stream without the UTF-8 byte order mark at its start.
pub fn skip_bom(mut reader: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read + Send>> {
    let mut head = Vec::with_capacity(3);
    (&mut reader).take(3).read_to_end(&mut head)?;
    if head == b"\xEF\xBB\xBF" {
        return Ok(reader);
    }
    Ok(Box::new(std::io::Cursor::new(head).chain(reader)))
}

/// An I/O error while reading a file: for compressed files almost always a truncated or corrupt
/// stream, which the message says.
pub fn read_error(file: &str, error: std::io::Error) -> Error {
    let (_, compression) = from_name(file);
    // What the start of the object already told: not this compression at all, or one not read.
    if matches!(error.kind(), std::io::ErrorKind::Unsupported | std::io::ErrorKind::InvalidInput) {
        return Error::input(format!("{file}: {error}"));
    }
    if compression != Compression::None {
        Error::input(format!("{file}: truncated or corrupt compressed data ({error})"))
    } else {
        Error::input(format!("{file}: {error}"))
    }
}

/// A reader of the decompressed bytes. Concatenated gzip members (what `cat a.gz b.gz` and many
/// log shippers produce) are read as one stream.
pub fn decompress(raw: Box<dyn Read + Send>, compression: Compression) -> Result<Box<dyn Read + Send>> {
    const BUFFER: usize = 256 * 1024;
    Ok(match compression {
        Compression::None => raw,
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BUFFER, raw))),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(BUFFER, raw))
                .map_err(|e| Error::input(format!("zstd: {e}")))?,
        ),
        Compression::Bzip2 => {
            return Err(Error::input("bzip2-compressed objects are not supported; use gzip or zstd"));
        }
    })
}

/// Reads up to `limit` decompressed bytes from the start of a (possibly truncated) object.
/// `complete` says whether `compressed` is the whole object: only then is an early end of the
/// compressed stream an error (a truncated file) rather than the end of our sample.
pub fn decompress_prefix(
    compressed: &[u8],
    compression: Compression,
    limit: usize,
    complete: bool,
) -> std::io::Result<Vec<u8>> {
    if compression == Compression::None {
        return Ok(compressed[..compressed.len().min(limit)].to_vec());
    }
    let (name, magic): (&str, &[u8]) = match compression {
        Compression::Gzip => ("gzip", b"\x1f\x8b"),
        Compression::Zstd => ("zstd", b"\x28\xb5\x2f\xfd"),
        Compression::Bzip2 => ("bzip2", b"BZh"),
        Compression::None => unreachable!("returned above"),
    };
    if compressed.len() >= magic.len() && !compressed.starts_with(magic) {
        let hex: Vec<String> = magic.iter().map(|b| format!("{b:02x}")).collect();
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "not {name} data, though its name says so (it does not begin with {name}'s bytes {}): rename it, or compress it",
                hex.join(" ")
            ),
        ));
    }
    let owned: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(compressed.to_vec()));
    let mut reader = decompress(owned, compression)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::Unsupported, e.message().to_string()))?;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while out.len() < limit {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if !complete && e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            // A cut in the middle of a compressed block of our prefix: what came before is good.
            Err(_) if !complete && !out.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    out.truncate(limit);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_give_format_and_compression() {
        assert_eq!(from_name("a.csv"), (Some(Format::Csv), Compression::None));
        assert_eq!(from_name("A.CSV.GZ"), (Some(Format::Csv), Compression::Gzip));
        assert_eq!(from_name("x.ndjson.zst"), (Some(Format::Json), Compression::Zstd));
        assert_eq!(from_name("part-0.snappy.parquet"), (Some(Format::Parquet), Compression::None));
        assert_eq!(from_name("data.gz"), (None, Compression::Gzip));
        assert_eq!(from_name("README"), (None, Compression::None));
    }

    #[test]
    fn content_gives_format_when_names_do_not() {
        assert_eq!(from_content(b"PAR1\x15\x04"), Format::Parquet);
        assert_eq!(from_content(b"  {\"a\":1}"), Format::Json);
        assert_eq!(from_content(b"\xEF\xBB\xBF{\"a\":1}"), Format::Json);
        assert_eq!(from_content(b"a,b\n1,2"), Format::Csv);
    }

    #[test]
    fn a_truncated_gzip_is_an_error_only_when_it_is_the_whole_object() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..10_000 {
            writeln!(encoder, "{i},value number {i}").unwrap();
        }
        let gz = encoder.finish().unwrap();
        let cut = &gz[..gz.len() / 2];
        assert!(decompress_prefix(cut, Compression::Gzip, usize::MAX, true).is_err());
        let sample = decompress_prefix(cut, Compression::Gzip, 1000, false).unwrap();
        assert_eq!(sample.len(), 1000);
        assert!(sample.starts_with(b"0,value number 0\n"));
    }
}
