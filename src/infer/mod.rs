//! 2. What shape it has: schema inference over every object under a location, as a Glue
//! crawler does it, only better: CSV dialect and header sniffing, decimals that keep their digits, nested JSON, one
//! unified schema across files, typed partition keys.
//!
//! Files are inferred in parallel: object reads are issued concurrently (bounded) and the
//! parsing runs on rayon's pool, so 2,000 small files cost 2,000 overlapping reads, not 2,000
//! round trips in a row. Inference reads a sample of each file (the first `sample_rows`
//! records, at most `SAMPLE_BYTES`); it is never the last word: the reader checks every value
//! against the inferred type and reports those that contradict it as bad records.
//!
//! Beside the schema etl reads, each sample yields the facts that decide what Athena's text
//! SerDes can read of it (quoted fields, empty values, timestamp spellings, renamed JSON
//! keys); `athena` turns them into the SerDe and the types a crawl declares in Glue.

pub mod athena;
pub mod csv;
pub mod json;
pub mod parquet;
pub mod shape;

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;

use self::athena::TextFacts;
use self::shape::Shape;
use crate::error::{Error, Result};
use crate::location::Location;
use crate::pool::on_rayon;
use crate::schema::{Column, GlueType, TableSchema};
use crate::source::csv::Dialect;
use crate::source::files::{self, Listing, SourceFile};
use crate::source::format::{self, Format, FormatChoice, read_error};
use crate::source::text::{DEFAULT_NULL_VALUES, parse_date, parse_int, parse_timestamp};

/// Default records sampled per file.
pub const DEFAULT_SAMPLE_ROWS: usize = 10_000;
/// Bytes of each object read for a sample (compressed objects may give more once inflated).
const SAMPLE_BYTES: u64 = 8 * 1024 * 1024;
/// Decompressed bytes kept from a compressed sample.
const SAMPLE_TEXT_BYTES: usize = 32 * 1024 * 1024;
/// Object reads in flight at once.
const CONCURRENT_READS: usize = 32;

#[derive(Debug, Clone)]
pub struct InferOptions {
    pub format: FormatChoice,
    /// Records per file; 0 reads whole files.
    pub sample_rows: usize,
    pub delimiter: Option<u8>,
    pub header: Option<bool>,
    /// Null markers for non-string CSV columns; `None` is [`DEFAULT_NULL_VALUES`].
    pub null_values: Option<Vec<String>>,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            format: FormatChoice::Auto,
            sample_rows: DEFAULT_SAMPLE_ROWS,
            delimiter: None,
            header: None,
            null_values: None,
        }
    }
}

impl InferOptions {
    pub fn null_values(&self) -> Vec<String> {
        self.null_values.clone().unwrap_or_else(|| DEFAULT_NULL_VALUES.iter().map(|s| s.to_string()).collect())
    }
}

/// The shape of one file.
#[derive(Debug, Clone)]
pub struct FileShape {
    pub format: Format,
    pub columns: Vec<(String, Shape)>,
    pub dialect: Option<Dialect>,
    /// Exact row count when the format records it (Parquet).
    pub rows: Option<u64>,
    /// What Athena's text SerDes would make of the sample (CSV, JSON).
    pub facts: TextFacts,
}

impl FileShape {
    /// The shape of an object that holds no text once decompressed: nothing to read, skipped
    /// as an empty object is.
    fn nothing(format: Format) -> Self {
        FileShape { format, columns: Vec::new(), dialect: None, rows: Some(0), facts: TextFacts::default() }
    }

    fn is_nothing(&self) -> bool {
        self.columns.is_empty() && self.rows == Some(0) && self.format != Format::Parquet
    }
}

/// What a location holds, as one table.
#[derive(Debug, Clone)]
pub struct Inferred {
    /// The files read, each with its format resolved.
    pub listing: Listing,
    pub format: Format,
    pub schema: TableSchema,
    pub dialect: Option<Dialect>,
    pub null_values: Vec<String>,
    /// Known for Parquet only (from footers).
    pub rows: Option<u64>,
    /// What Athena's text SerDes would make of every file's sample.
    pub facts: TextFacts,
    /// What a user should know that is no error: where Athena would read the files otherwise
    /// than etl does.
    pub warnings: Vec<String>,
    /// For each column, the file whose values last changed its type (added it, or widened
    /// it): the file a refused schema change names.
    pub typed_by: HashMap<String, String>,
}

pub async fn infer(location: &Location, options: &InferOptions) -> Result<Inferred> {
    infer_listing(files::list(location).await?, options).await
}

/// The table `listing`'s files make.
pub async fn infer_listing(listing: Listing, options: &InferOptions) -> Result<Inferred> {
    let (listing, shapes) = sample_files(listing, options).await?;
    if shapes.is_empty() {
        return Err(Error::input(format!("{}: only empty objects", listing.location)));
    }
    infer_shapes(listing, shapes, options, None).await
}

/// Each file's shape from a sample of it. Files with nothing to read once decompressed (an
/// empty `.gz`) leave the listing for its empty objects, as empty objects do: a file without
/// a header must not decide that the others have none.
pub async fn sample_files(mut listing: Listing, options: &InferOptions) -> Result<(Listing, Vec<FileShape>)> {
    let location = listing.location.clone();
    let shapes: Vec<FileShape> = futures::stream::iter(listing.files.iter().cloned())
        .map(|file| -> BoxFuture<'_, Result<FileShape>> { Box::pin(infer_file(&location, file, options, None)) })
        .buffered(CONCURRENT_READS)
        .try_collect()
        .await?;
    let (read, nothing): (Vec<(SourceFile, FileShape)>, Vec<_>) =
        std::mem::take(&mut listing.files).into_iter().zip(shapes).partition(|(_, shape)| !shape.is_nothing());
    listing.empty.extend(nothing.iter().map(|(file, _)| location.display(&file.path)));
    let (files, shapes) = read.into_iter().unzip();
    listing.files = files;
    Ok((listing, shapes))
}

/// The table `shapes` (those of `listing`'s files, at least one) make; with `base` (a table's
/// schema, for new files added to it), its columns widened by what the files hold. A column
/// the files hold no value of (a batch of nulls, a header alone) then keeps its type instead
/// of becoming a string.
pub async fn infer_shapes(
    mut listing: Listing,
    shapes: Vec<FileShape>,
    options: &InferOptions,
    base: Option<&TableSchema>,
) -> Result<Inferred> {
    let location = listing.location.clone();
    let format = single_format(&location, &listing.files, &shapes)?;
    for (file, shape) in listing.files.iter_mut().zip(&shapes) {
        file.format = Some(format);
        file.rows = shape.rows;
    }
    let mut shapes = shapes;
    let dialect = match format {
        Format::Csv => Some(settle_dialect(&location, &listing.files, &mut shapes, options).await?),
        _ => None,
    };

    if format == Format::Parquet {
        refuse_nested_conflicts(&location, &listing.files, &shapes)?;
    }
    let mut columns: Vec<(String, Shape)> = base
        .into_iter()
        .flat_map(|base| &base.columns)
        .map(|column| (column.name.clone(), Shape::from_glue(&column.ty)))
        .collect();
    let mut facts = TextFacts::default();
    let mut typed_by = HashMap::new();
    for (file, shape) in listing.files.iter().zip(&shapes) {
        let merged = shape::merge(&columns, &shape.columns);
        // `merge` keeps the columns' order and appends new ones.
        for (index, (name, merged_shape)) in merged.iter().enumerate() {
            if columns.get(index).is_none_or(|(_, before)| before != merged_shape) {
                typed_by.insert(name.clone(), location.display(&file.path));
            }
        }
        columns = merged;
        facts = facts.union(&shape.facts);
    }
    let partition_keys = partition_key_types(&listing);
    if let Some(key) = partition_keys.iter().find(|k| columns.iter().any(|(name, _)| *name == k.name)) {
        return Err(Error::input(format!(
            "{location}: '{}' is both a column in the files and a partition key in the folder names",
            key.name
        )));
    }
    if columns.is_empty() {
        return Err(Error::input(format!("{location}: no columns found in any file")));
    }
    let rows = shapes.iter().map(|s| s.rows).sum::<Option<u64>>();
    let mut warnings = match dialect.as_ref().is_some_and(|d| d.header) {
        true => positional_warnings(&location, &listing.files, &shapes),
        false => Vec::new(),
    };
    // Files above the partition folders (`y=2023/b.csv` under `y=/m=`, or at the table's root):
    // read here with null keys, but Athena reads a partitioned table's partition folders only.
    let keys = partition_keys.len();
    let shallow: Vec<String> = listing
        .files
        .iter()
        .filter(|f| {
            // Every folder level is a key, `key=value` or not (`2026/11/` gives partition_0, _1).
            let depth = location.relative(&f.path).unwrap_or_default().len().saturating_sub(1);
            keys > 0 && depth < keys
        })
        .map(|f| location.display(&f.path))
        .collect();
    if let Some(first) = shallow.first() {
        warnings.push(format!(
            "{location}: {} of the files ({first}{}) are not under a folder for every partition key ({}): \
             the embedded catalog reads their rows with null keys, but no partition is registered for them, \
             and Athena (as etl on Glue) reads only the partitions' folders: it would not return them; move them \
             into partition folders, or crawl them as a table of their own",
            shallow.len(),
            if shallow.len() > 1 { ", …" } else { "" },
            partition_keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    if listing.files.iter().any(|f| &f.path == location.prefix()) {
        warnings.push(format!(
            "{location} is one object, not a folder: Athena takes a table's location for a folder and reads \
             nothing at a file's; give its folder (with only this file in it) for the table to be read by Athena"
        ));
    }
    Ok(Inferred {
        listing,
        format,
        schema: TableSchema {
            columns: columns.into_iter().map(|(name, shape)| Column::new(name, shape.finish())).collect(),
            partition_keys,
        },
        dialect,
        null_values: options.null_values(),
        rows,
        facts,
        warnings,
        typed_by,
    })
}

/// A Parquet column nested in one file (a struct, an array, a map) and of another kind in
/// another: widened to `string` as JSON would be, the table could read neither file (a
/// Parquet struct is not text), and every query of it would fail, even one not naming the
/// column. Refused here, naming both files.
fn refuse_nested_conflicts(location: &Location, files: &[SourceFile], shapes: &[FileShape]) -> Result<()> {
    fn nested(shape: &Shape) -> bool {
        matches!(shape, Shape::Array(_) | Shape::Struct(_) | Shape::Scalar(GlueType::Map(..)))
    }
    fn conflict(a: &Shape, b: &Shape) -> bool {
        match (a, b) {
            (Shape::Unknown, _) | (_, Shape::Unknown) => false,
            (Shape::Array(x), Shape::Array(y)) => conflict(x, y),
            (Shape::Struct(x), Shape::Struct(y)) => {
                x.iter().any(|(name, s)| y.iter().any(|(other, t)| other == name && conflict(s, t)))
            }
            (a, b) => nested(a) != nested(b),
        }
    }
    let mut first: Vec<(&str, &Shape, &SourceFile)> = Vec::new();
    for (file, shape) in files.iter().zip(shapes) {
        for (name, column) in &shape.columns {
            match first.iter().find(|(seen, _, _)| seen == name) {
                Some((_, earlier, earlier_file)) if conflict(earlier, column) => {
                    return Err(Error::input(format!(
                        "{location}: column {name} is {} in {} but {} in {}: no table type reads both (Athena \
                         neither); keep such files under different locations, or rewrite one",
                        earlier.finish(),
                        location.display(&earlier_file.path),
                        column.finish(),
                        location.display(&file.path),
                    )));
                }
                Some(_) => {}
                None if *column != Shape::Unknown => first.push((name, column, file)),
                None => {}
            }
        }
    }
    Ok(())
}

async fn infer_file(
    location: &Location,
    file: SourceFile,
    options: &InferOptions,
    dialect: Option<&Dialect>,
) -> Result<FileShape> {
    if let Some(shape) = infer_sample(location, &file, options, dialect, options.sample_rows == 0).await? {
        return Ok(shape);
    }
    // The sample's first record did not end inside it (a record over SAMPLE_BYTES): the whole
    // object is read, rather than inferring from a cut record.
    let shape = infer_sample(location, &file, options, dialect, true).await?;
    shape.ok_or_else(|| Error::runtime(format!("{}: no record read whole", location.display(&file.path))))
}

/// The shape of a file from a sample of it (all of it when `whole`); None when the sample
/// holds no whole record.
async fn infer_sample(
    location: &Location,
    file: &SourceFile,
    options: &InferOptions,
    dialect: Option<&Dialect>,
    whole: bool,
) -> Result<Option<FileShape>> {
    let display = location.display(&file.path);
    // What the user says wins over what the file's name suggests.
    let named_format = options.format.fixed().or(file.format);
    if named_format == Some(Format::Parquet) {
        return parquet::infer(location, file).await.map(Some);
    }
    let limit = if whole { file.size } else { file.size.min(SAMPLE_BYTES) };
    let bytes = location
        .store()
        .get_range(&file.path, 0..limit)
        .await
        .map_err(|e| Error::from(e).context(format!("reading {display}")))?;
    if named_format.is_none() && bytes.starts_with(b"PAR1") {
        return parquet::infer(location, file).await.map(Some);
    }
    let text_limit = if whole { usize::MAX } else { SAMPLE_TEXT_BYTES };
    let whole_object = limit == file.size;
    let hints_delimiter = dialect.map(|d| d.delimiter).or(options.delimiter);
    let hints_header = dialect.map(|d| d.header).or(options.header);
    let null_values = options.null_values();
    let sample_rows = options.sample_rows;
    let compression = file.compression;
    on_rayon("inference", move || {
        let text = format::decompress_prefix(&bytes, compression, text_limit, whole_object)
            .map_err(|e| read_error(&display, e))?;
        let complete = whole_object && text.len() < text_limit;
        if complete && text.trim_ascii().is_empty() {
            return Ok(Some(FileShape::nothing(named_format.unwrap_or(Format::Csv))));
        }
        if !complete && !text.contains(&b'\n') {
            return Ok(None);
        }
        // A compressed object not named so, binary data (NUL bytes by the hundred), or text in
        // UTF-16 (a NUL every other byte): a CSV or JSON reader would turn them into garbage
        // columns or no rows at all. A stray NUL is a character of a value, as Spark and
        // Athena read it, wherever in the file it is.
        const COMPRESSED: [&[u8]; 3] = [b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh"];
        let nuls = text.iter().filter(|&&b| b == 0).count();
        let compressed = COMPRESSED.iter().any(|magic| text.starts_with(magic)) && nuls > 0;
        if compressed || nuls * 100 > text.len() {
            let at = text.iter().position(|&b| b == 0).unwrap_or_default();
            return Err(Error::input(format!(
                "{display}: not text ({nuls} NUL bytes in its first {} bytes, the first at offset {at}): binary data, UTF-16 text, or a compressed object whose name does not say how (.gz, .zst)",
                text.len()
            )));
        }
        let format = named_format.unwrap_or_else(|| format::from_content(&text));
        // A CSV header names the columns; a JSON file's first line is a record like any other
        // (a bad one, if not UTF-8).
        let header_line = text.split(|&b| b == b'\n').next().unwrap_or_default();
        if format == Format::Csv && std::str::from_utf8(header_line).is_err() {
            return Err(Error::input(format!(
                "{display}: line 1 is not UTF-8 text; etl reads text files as UTF-8 (convert it, e.g. iconv -f latin1 -t utf-8)"
            )));
        }
        let shape = match format {
            Format::Json => json::infer(&text, complete, &display, sample_rows),
            Format::Csv => {
                let hints = csv::CsvHints {
                    delimiter: hints_delimiter,
                    header: hints_header,
                    null_values: &null_values,
                    sample_rows,
                };
                csv::infer(&text, complete, &display, &hints)
            }
            Format::Parquet => Err(Error::input(format!("{display}: a compressed Parquet file cannot be read"))),
        };
        shape.map(Some)
    })
    .await?
}

/// CSV files whose headers list shared columns in another order than the first file's: etl
/// reads each file's columns by its header, but Athena's CSV SerDes read them by position, in
/// the table's order, so its answers for those files would be wrong.
fn positional_warnings(location: &Location, files: &[SourceFile], shapes: &[FileShape]) -> Vec<String> {
    let Some(first) = shapes.first() else { return Vec::new() };
    let names = |shape: &FileShape| shape.columns.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>();
    let reference = names(first);
    let mut warnings = Vec::new();
    for (file, shape) in files.iter().zip(shapes).skip(1) {
        let own = names(shape);
        // Athena takes a file's n-th field for the table's n-th column: the files must agree
        // on the positions they share (a column added in the middle moves those after it).
        let shared = own.len().min(reference.len());
        if own[..shared] != reference[..shared] {
            warnings.push(format!(
                "{} lists its columns in another order ({}) than {} ({}): etl reads them by name, but Athena reads CSV columns by position and would put this file's values in the wrong columns",
                location.display(&file.path),
                own.join(", "),
                location.display(&files[0].path),
                reference.join(", ")
            ));
        }
    }
    warnings
}

/// Every file of a table has one format.
fn single_format(location: &Location, files: &[SourceFile], shapes: &[FileShape]) -> Result<Format> {
    let first = shapes[0].format;
    if let Some(i) = shapes.iter().position(|s| s.format != first) {
        return Err(Error::input(format!(
            "{location} mixes formats: {} is {first} but {} is {}; point the table at one format (or pass --format)",
            location.display(&files[0].path),
            location.display(&files[i].path),
            shapes[i].format
        )));
    }
    Ok(first)
}

/// One dialect for the table: what most files say, and files that said otherwise are inferred
/// again under it (a header-only or one-line file is easy to misread on its own).
async fn settle_dialect(
    location: &Location,
    files: &[SourceFile],
    shapes: &mut [FileShape],
    options: &InferOptions,
) -> Result<Dialect> {
    let mut votes: HashMap<&Dialect, usize> = HashMap::new();
    for shape in shapes.iter() {
        if let Some(d) = &shape.dialect {
            *votes.entry(d).or_default() += 1;
        }
    }
    let first = shapes[0].dialect.clone().unwrap_or_default();
    let chosen = votes.iter().max_by_key(|(d, n)| (**n, **d == &first)).map(|(d, _)| (*d).clone()).unwrap_or_default();
    let outliers: Vec<usize> =
        shapes.iter().enumerate().filter(|(_, s)| s.dialect.as_ref() != Some(&chosen)).map(|(i, _)| i).collect();
    // A file whose own delimiter splits its records into several fields is delimited so: read
    // with another, each record would be one text field (a column no other file has).
    let split_otherwise = outliers.iter().find(|&&i| {
        shapes[i].dialect.as_ref().is_some_and(|d| d.delimiter != chosen.delimiter) && shapes[i].columns.len() > 1
    });
    if let (Some(&odd), None) = (split_otherwise, options.delimiter) {
        let usual = shapes.iter().position(|s| s.dialect.as_ref() == Some(&chosen)).unwrap_or(0);
        let shown = |d: Option<&Dialect>| d.map_or(String::new(), |d| format!("{:?}", char::from(d.delimiter)));
        return Err(Error::input(format!(
            "{location}: {} is delimited by {} but {} by {}; one table is read with one delimiter (keep the files apart, or name it: --delimiter, or a source's delimiter option)",
            location.display(&files[odd].path),
            shown(shapes[odd].dialect.as_ref()),
            location.display(&files[usual].path),
            shown(Some(&chosen)),
        )));
    }
    let again: Vec<FileShape> = futures::stream::iter(outliers.iter().map(|&i| files[i].clone()))
        .map(|file| -> BoxFuture<'_, Result<FileShape>> {
            Box::pin(infer_file(location, file, options, Some(&chosen)))
        })
        .buffered(CONCURRENT_READS)
        .try_collect()
        .await?;
    // A headerless file among files with headers (`split` makes them) read under the header
    // would name columns by its first record, which Athena would skip: refused, not guessed.
    let named_by_others: HashSet<&str> = shapes
        .iter()
        .filter(|s| s.dialect.as_ref() == Some(&chosen))
        .flat_map(|s| s.columns.iter().map(|(name, _)| name.as_str()))
        .collect();
    for (&i, shape) in outliers.iter().zip(&again) {
        let said_no_header = shapes[i].dialect.as_ref().is_some_and(|d| !d.header && d.delimiter == chosen.delimiter);
        if chosen.header
            && options.header.is_none()
            && said_no_header
            && !shape.columns.iter().any(|(name, _)| named_by_others.contains(name.as_str()))
        {
            let usual = shapes.iter().position(|s| s.dialect.as_ref() == Some(&chosen)).unwrap_or(0);
            let first_record = shape.columns.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(",");
            return Err(Error::input(format!(
                "{location}: {} has no header line where {} has one: read under the table's header, its first record ({first_record}) would name columns, and Athena would skip it (give the file its header line, keep it apart, or set a source's header option)",
                location.display(&files[i].path),
                location.display(&files[usual].path),
            )));
        }
    }
    for (i, shape) in outliers.into_iter().zip(again) {
        shapes[i] = shape;
    }
    Ok(chosen)
}

/// Partition keys typed from their values, as Athena users expect: bigint when every value is
/// an integer (none with leading zeros, as columns), date when every value is a date,
/// timestamp when every value is a timestamp, string otherwise.
fn partition_key_types(listing: &Listing) -> Vec<Column> {
    listing
        .partition_keys
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values = || listing.files.iter().filter_map(|f| f.partition_values[i].as_deref());
            let ty = if values().next().is_none() {
                GlueType::String
            } else if values().all(|v| parse_int(v).is_some() && !csv::has_leading_zero(v)) {
                GlueType::BigInt
            } else if values().all(|v| parse_date(v).is_some()) {
                GlueType::Date
            } else if values().all(|v| parse_timestamp(v).is_some()) {
                // As etl writes a timestamp key (`ts=2026-11-03 10%3A00%3A00`).
                GlueType::Timestamp
            } else {
                GlueType::String
            };
            Column::new(name.clone(), ty)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(root: &std::path::Path, relative: &str, content: &[u8]) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    async fn infer_dir(root: &std::path::Path) -> Result<Inferred> {
        infer(&Location::parse(root.to_str().unwrap()).unwrap(), &InferOptions::default()).await
    }

    fn schema_text(inferred: &Inferred) -> String {
        let cols = |cols: &[Column]| cols.iter().map(|c| format!("{} {}", c.name, c.ty)).collect::<Vec<_>>().join(", ");
        format!("{} | {}", cols(&inferred.schema.columns), cols(&inferred.schema.partition_keys))
    }

    #[tokio::test]
    async fn files_unify_and_partitions_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "dt=2026-11-02/shard=1/a.csv", b"id,amount\n1,5\n");
        write(dir.path(), "dt=2026-11-09/shard=2/b.csv", b"id,amount,note\n2,5.5,x\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"id,amount\n3,7\n").unwrap();
        write(dir.path(), "dt=2026-11-16/shard=x/c.csv.gz", &gz.finish().unwrap());
        let inferred = infer_dir(dir.path()).await.unwrap();
        assert_eq!(schema_text(&inferred), "id bigint, amount double, note string | dt date, shard string");
        assert_eq!(inferred.format, Format::Csv);
        assert!(inferred.dialect.unwrap().header);
    }

    #[tokio::test]
    async fn ndjson_ints_turning_into_floats_unify() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..200 {
            let amount = if i < 150 { format!("{i}") } else { format!("{i}.5") };
            let line = format!("{{\"id\":{i},\"amount\":{amount},\"meta\":{{\"src\":\"s{i}\"}}}}\n");
            write(dir.path(), &format!("part-{i:04}.json"), line.as_bytes());
        }
        let inferred = infer_dir(dir.path()).await.unwrap();
        assert_eq!(schema_text(&inferred), "id bigint, amount double, meta struct<src:string> | ");
        assert_eq!(inferred.listing.files.len(), 200);
    }

    #[tokio::test]
    async fn mixed_formats_and_truncated_gzip_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.csv", b"x\n1\n");
        write(dir.path(), "b.json", b"{\"x\":1}\n");
        let err = infer_dir(dir.path()).await.unwrap_err();
        assert!(err.message().contains("mixes formats"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..1000 {
            writeln!(gz, "{i},{i}").unwrap();
        }
        let bytes = gz.finish().unwrap();
        write(dir.path(), "cut.csv.gz", &bytes[..bytes.len() / 2]);
        let err = infer_dir(dir.path()).await.unwrap_err();
        assert!(err.message().contains("cut.csv.gz: truncated or corrupt compressed data"), "{err}");
    }

    #[tokio::test]
    async fn a_partition_key_that_is_also_a_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "id=1/a.csv", b"id,v\n1,2\n");
        let err = infer_dir(dir.path()).await.unwrap_err();
        assert!(err.message().contains("'id' is both a column"), "{err}");
    }
}
