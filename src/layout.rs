//! Where files go under a table's location: Hive's partition folders, and the folders `etl`
//! adds for its all-or-nothing publication. Every other module asks here; none spells a
//! folder name itself.
//!
//! ```text
//! LOCATION/
//!   _etl_staging/RUN_ID/…                     a run's output before publication
//!   _etl_publications/RUN_ID.json | .pending  the journal of a Glue publication, its pointers
//!   _etl_versions/v00000003-RUN_ID.json       the partitions of a data version (Glue)
//!   _etl_retained/key=value/…/run-RUN_ID/part-RUN_ID-00000.zstd.parquet.retained
//!                                             a replaced version's file, kept for rollback
//!   key=value/…/run-RUN_ID/part-RUN_ID-00000.zstd.parquet
//! ```
//!
//! A replaced version's files leave the folders readers list, so that a Hive reader of
//! `LOCATION` sees exactly the current data, and lose their `.parquet` ending there, because
//! DuckDB's `LOCATION/**/*.parquet` also reads folders starting with `_`.
//!
//! Names starting with `_` or `.` are hidden from every reader (Hive, Spark, Athena and our
//! own listing skip them), which is why staging and journals live in such folders. Readers of
//! `LOCATION` with Hive partition discovery skip the `run-…` level, which has no `=`.
//!
//! It deliberately knows nothing of catalogs or run state: which run folder is current is the
//! catalog's business, whether a run is alive the history's.

use crate::error::Result;
use crate::location::{Location, percent_decode};

/// Hive's spelling of a null partition value, in folder names and in Glue's partition values.
pub const HIVE_NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The folder that holds the files of runs not yet published.
pub const STAGING_FOLDER: &str = "_etl_staging";

/// The folder of the journals of a written table's publications.
pub const JOURNAL_FOLDER: &str = "_etl_publications";

/// The folder of the manifests of a written table's data versions (Glue).
pub const VERSIONS_FOLDER: &str = "_etl_versions";

/// The folder of the files that replaced versions keep, under their published paths.
pub const RETAINED_FOLDER: &str = "_etl_retained";

/// What a retained file's name ends with, after its published name.
const RETAINED_SUFFIX: &str = ".retained";

/// One run's files in one partition are in `run-RUN_ID/`.
const RUN_FOLDER_PREFIX: &str = "run-";

/// Whether readers skip an object or folder of this name.
pub fn is_hidden(name: &str) -> bool {
    name.starts_with(['_', '.'])
}

/// The staging folders of every run under a table location.
pub fn staging_root(root: &Location) -> Location {
    root.join(STAGING_FOLDER)
}

/// The staging folder of one run under a table location.
pub fn staging(root: &Location, run_id: &str) -> Location {
    staging_root(root).join(run_id)
}

/// The journal of a run's publication, under the first table root it writes.
pub fn journal(root: &Location, run_id: &str) -> Location {
    root.join(&format!("{JOURNAL_FOLDER}/{run_id}.json"))
}

/// The pointer to a run's journal, under every table root its publication writes.
pub fn journal_pointer(root: &Location, run_id: &str) -> Location {
    root.join(&format!("{JOURNAL_FOLDER}/{run_id}.pending"))
}

/// The journal folder under a table root.
pub fn journal_folder(root: &Location) -> Location {
    root.join(JOURNAL_FOLDER)
}

/// The manifest of a table's data version `version`, written by publication `id`.
pub fn manifest(root: &Location, version: u64, id: &str) -> Location {
    root.join(&format!("{VERSIONS_FOLDER}/v{version:08}-{id}.json"))
}

/// Where a file published at `url` under `root` is kept once its version is replaced; `None`
/// for a file outside `root`.
pub fn retained(root: &Location, url: &str) -> Option<Location> {
    // URLs are keys as the store spells them (escapes included): parsed, not joined, as
    // every published URL is.
    let base = root.url();
    let relative = url.strip_prefix(base.trim_end_matches('/'))?.strip_prefix('/')?;
    Location::parse(&format!("{base}/{RETAINED_FOLDER}/{relative}{RETAINED_SUFFIX}")).ok()
}

/// Where a data file published under a table's folders is kept once its version is replaced
/// ([`retained`]), from its key alone: the table's root is what stands above its run's folder
/// and its `key=value` folders. None for a key that is no published data file.
pub fn retained_key(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('/').collect();
    let (name, folders) = parts.split_last()?;
    writer_of_data_file(name)?;
    let (run, above) = folders.split_last()?;
    if !run.starts_with("run-") {
        return None;
    }
    let partitions = above.iter().rev().take_while(|folder| folder.contains('=')).count();
    let (root, partition_folders) = above.split_at(above.len() - partitions);
    if root.contains(&RETAINED_FOLDER) || root.contains(&STAGING_FOLDER) {
        return None;
    }
    let kept: Vec<&str> =
        root.iter().chain([&RETAINED_FOLDER]).chain(partition_folders).chain([run, name]).copied().collect();
    Some(format!("{}{RETAINED_SUFFIX}", kept.join("/")))
}

/// The published URL of a retained file, from its key under the table root.
pub fn published_of_retained(root: &Location, parts: &[String]) -> Option<String> {
    let (first, rest) = parts.split_first()?;
    if first != RETAINED_FOLDER || rest.is_empty() {
        return None;
    }
    let relative = rest.join("/");
    Some(format!("{}/{}", root.url(), relative.strip_suffix(RETAINED_SUFFIX)?))
}

/// Where a file stood when it was published, for ordering files as they were then: a retained
/// file's key (`…/_etl_retained/p=c/run-R/part.parquet.retained`) without what retaining it
/// added (`…/p=c/run-R/part.parquet`); any other key as it is.
pub fn as_published(key: &str) -> std::borrow::Cow<'_, str> {
    let folder = format!("{RETAINED_FOLDER}/");
    match key.split_once(&folder) {
        Some((root, relative)) => {
            format!("{root}{}", relative.strip_suffix(RETAINED_SUFFIX).unwrap_or(relative)).into()
        }
        None => key.into(),
    }
}

/// `key=value/key=value`, as Hive names partition folders (`None` is null).
pub fn partition_folder<'a>(keys: impl IntoIterator<Item = &'a str>, values: &[Option<String>]) -> String {
    keys.into_iter()
        .zip(values)
        .map(|(key, value)| {
            let value = value.as_deref().unwrap_or(HIVE_NULL_PARTITION);
            format!("{key}={}", escape_partition_value(value))
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The key a Hive partition folder (`key=value`) names; `None` for a plain folder.
pub fn partition_key(folder: &str) -> Option<&str> {
    folder.split_once('=').map(|(key, _)| key)
}

/// The value a folder gives its partition key: after `=` for Hive folders, the whole name
/// otherwise (a crawler's `partition_N`); Hive's null marker is null.
pub fn partition_value(folder: &str) -> Option<String> {
    let value = percent_decode(folder.split_once('=').map_or(folder, |(_, value)| value));
    (value != HIVE_NULL_PARTITION).then_some(value)
}

/// Partition values as Glue holds them: text, null as Hive's marker.
pub fn glue_partition_values(values: &[Option<String>]) -> Vec<String> {
    values.iter().map(|v| v.clone().unwrap_or_else(|| HIVE_NULL_PARTITION.to_string())).collect()
}

/// The inverse of [`glue_partition_values`].
pub fn partition_values_from_glue(values: &[String]) -> Vec<Option<String>> {
    values.iter().map(|v| (v != HIVE_NULL_PARTITION).then(|| v.clone())).collect()
}

/// Hive's escaping of partition values in folder names: the characters that would break a
/// path or a `key=value` pair, as `%XX`.
fn escape_partition_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control()
            || matches!(c, '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^')
        {
            for byte in c.to_string().bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The folder a run writes a partition's files into (for an unpartitioned table, its folder
/// directly under the root).
pub fn run_folder<'a>(
    root: &Location,
    keys: impl IntoIterator<Item = &'a str>,
    values: &[Option<String>],
    run_id: &str,
) -> Location {
    let partition = partition_folder(keys, values);
    let run = format!("{RUN_FOLDER_PREFIX}{run_id}");
    if partition.is_empty() { root.join(&run) } else { root.join(&format!("{partition}/{run}")) }
}

/// The run whose folder this is, for a folder name `run-RUN_ID`.
pub fn run_of_folder(name: &str) -> Option<&str> {
    name.strip_prefix(RUN_FOLDER_PREFIX)
}

/// The name of the `sequence`th file a run writes, with the codec it is compressed with.
pub fn data_file_name(run_id: &str, sequence: usize, codec: &str) -> String {
    format!("part-{run_id}-{sequence:05}.{codec}.parquet")
}

/// The run that wrote a data file, from its name (which an append's copy keeps in a later
/// run's folder).
pub fn writer_of_data_file(name: &str) -> Option<&str> {
    let stem = name.strip_prefix("part-")?.split('.').next()?;
    let (run, sequence) = stem.rsplit_once('-')?;
    sequence.bytes().all(|b| b.is_ascii_digit()).then_some(run)
}

/// The run that wrote an object, from its key under the table root: `_etl_staging/RUN/…`,
/// `_etl_publications/RUN.*` or `…/run-RUN/file`.
pub fn run_of(parts: &[String]) -> Option<&str> {
    match parts.first().map(String::as_str) {
        Some(STAGING_FOLDER) => return parts.get(1).map(String::as_str),
        Some(JOURNAL_FOLDER) => return parts.get(1).and_then(|name| name.split_once('.')).map(|(run, _)| run),
        _ => {}
    }
    let folders = &parts[..parts.len().saturating_sub(1)];
    folders.iter().rev().find_map(|p| run_of_folder(p))
}

/// Whether a folder URL is a run's folder (a partition's current one, or an unpartitioned
/// table's location).
pub fn is_run_folder(url: &str) -> bool {
    url.trim_end_matches('/').rsplit('/').next().is_some_and(|name| run_of_folder(name).is_some())
}

/// The folder a written table's runs write under, from the table's location: the location
/// itself, or for an unpartitioned table (whose location is its current run folder) that
/// folder's parent.
pub fn written_root(location: &str) -> Result<Location> {
    let location = location.trim_end_matches('/');
    match location.rsplit_once('/') {
        Some((parent, last)) if run_of_folder(last).is_some() => Location::parse(parent),
        _ => Location::parse(location),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(key: &str) -> Vec<String> {
        key.split('/').map(str::to_string).collect()
    }

    #[test]
    fn partition_folders_escape_what_hive_escapes() {
        assert_eq!(
            partition_folder(["region", "dt"], &[Some("eu/west=1".into()), None]),
            "region=eu%2Fwest%3D1/dt=__HIVE_DEFAULT_PARTITION__"
        );
        assert_eq!(partition_value("region=eu%2Fwest%3D1"), Some("eu/west=1".into()));
        assert_eq!(partition_value("dt=__HIVE_DEFAULT_PARTITION__"), None);
        assert_eq!(partition_value("2026"), Some("2026".into()));
    }

    #[test]
    fn glue_holds_null_partition_values_as_hives_marker() {
        let values = vec![Some("a".to_string()), None];
        assert_eq!(glue_partition_values(&values), ["a", HIVE_NULL_PARTITION]);
        assert_eq!(partition_values_from_glue(&glue_partition_values(&values)), values);
    }

    #[test]
    fn run_folders_sit_below_the_partition_folders() {
        let root = Location::parse("s3://b/t").unwrap();
        assert_eq!(run_folder(&root, ["dt"], &[Some("1".into())], "r1").url(), "s3://b/t/dt=1/run-r1");
        assert_eq!(run_folder(&root, [], &[], "r1").url(), "s3://b/t/run-r1");
        assert_eq!(staging(&root, "r1").url(), "s3://b/t/_etl_staging/r1");
        assert_eq!(journal(&root, "r1").url(), "s3://b/t/_etl_publications/r1.json");
        assert_eq!(journal_pointer(&root, "r1").url(), "s3://b/t/_etl_publications/r1.pending");
        assert_eq!(data_file_name("r1", 7, "zstd"), "part-r1-00007.zstd.parquet");
        assert_eq!(
            writer_of_data_file("part-20261130T020000Z-0a1b2c-00007.zstd.parquet"),
            Some("20261130T020000Z-0a1b2c")
        );
        assert_eq!(writer_of_data_file("manual.parquet"), None);
    }

    #[test]
    fn objects_belong_to_the_run_whose_folder_holds_them() {
        assert_eq!(run_of(&parts("_etl_staging/r1/dt=a/x.parquet")), Some("r1"));
        assert_eq!(run_of(&parts("dt=a/run-r2/part.parquet")), Some("r2"));
        assert_eq!(as_published("t/_etl_retained/dt=a/run-r2/p.parquet.retained"), "t/dt=a/run-r2/p.parquet");
        assert_eq!(as_published("t/dt=a/run-r2/p.parquet"), "t/dt=a/run-r2/p.parquet");
        assert_eq!(run_of(&parts("run-r3/part.parquet")), Some("r3"));
        assert_eq!(run_of(&parts("_etl_publications/r5.pending")), Some("r5"));
        // A file named like a run folder, and files outside run folders, are not ours.
        assert_eq!(run_of(&parts("dt=a/run-r4.parquet")), None);
        assert_eq!(run_of(&parts("dt=a/manual.parquet")), None);
    }

    #[test]
    fn a_data_files_retained_key_is_known_from_its_key_alone() {
        for (root, relative) in [
            ("s3://b/warehouse/t", "dt=2026-01-01/k=a%2Fb/run-r1/part-r1-00000.zstd.parquet"),
            ("/data/t", "run-r2/part-r2-00003.parquet"),
        ] {
            let root = Location::parse(root).unwrap();
            let published = root.join(relative);
            let kept = retained(&root, &published.url()).unwrap();
            assert_eq!(retained_key(published.prefix().as_ref()).as_deref(), Some(kept.prefix().as_ref()));
        }
        assert_eq!(retained_key("t/dt=1/run-r1/notes.txt"), None);
        assert_eq!(retained_key("t/_etl_retained/run-r1/part-r1-00000.parquet.retained"), None);
        assert_eq!(retained_key("t/_etl_staging/r1/run-r1/part-r1-00000.parquet"), None);
    }

    #[test]
    fn retained_files_leave_readers_folders_and_their_parquet_ending() {
        let root = Location::parse("s3://b/t").unwrap();
        let published = "s3://b/t/dt=1/run-r1/part-r1-00000.zstd.parquet";
        let kept = retained(&root, published).unwrap();
        assert_eq!(kept.url(), "s3://b/t/_etl_retained/dt=1/run-r1/part-r1-00000.zstd.parquet.retained");
        let key = kept.url().strip_prefix("s3://b/t/").unwrap().to_string();
        assert_eq!(published_of_retained(&root, &parts(&key)).as_deref(), Some(published));
        assert!(retained(&root, "s3://b/other/x.parquet").is_none());
        assert_eq!(published_of_retained(&root, &parts("dt=1/run-r1/x.parquet")), None);
        assert_eq!(manifest(&root, 3, "r9").url(), "s3://b/t/_etl_versions/v00000003-r9.json");
    }

    #[test]
    fn a_written_tables_root_is_above_its_run_folder() {
        assert_eq!(written_root("s3://b/t/run-r1/").unwrap().url(), "s3://b/t");
        assert_eq!(written_root("s3://b/t").unwrap().url(), "s3://b/t");
        assert!(is_run_folder("s3://b/t/dt=1/run-r1/"));
        assert!(!is_run_folder("s3://b/t/dt=1"));
    }
}
