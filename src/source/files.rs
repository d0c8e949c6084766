//! What is out there: the objects under a location, their formats, and the partition values
//! their folders carry.
//!
//! Folder levels become partition keys as a Glue crawler makes them: `key=value` folders give
//! the key its name, other folders give `partition_0`, `partition_1`… by depth. A file with
//! fewer folder levels than others (a file at the root of a partitioned location) has null
//! values for the keys it lacks. Names starting with `_` or `.` (`_SUCCESS`, `.crc`, our own
//! `_etl_staging/`) are skipped at any depth, as Hive, Spark and Athena skip them. Empty
//! objects are skipped with a warning.

use chrono::{DateTime, Utc};
use object_store::path::Path;

use super::format::{self, Compression, Format};
use crate::error::{Error, Result};
use crate::layout::{is_hidden, partition_key, partition_value};
use crate::location::{Location, percent_decode};
use crate::schema::names;

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: Path,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    pub e_tag: Option<String>,
    /// From the name; `None` until the content says (for names without a known extension).
    pub format: Option<Format>,
    pub compression: Compression,
    /// One value per partition key of the listing, in key order; `None` is null.
    pub partition_values: Vec<Option<String>>,
    /// Exact, once a Parquet footer said it: the planner's statistics (which side of a join
    /// to build) come from it.
    pub rows: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Listing {
    pub location: Location,
    pub files: Vec<SourceFile>,
    /// Partition key names, outermost folder first.
    pub partition_keys: Vec<String>,
    /// Empty objects, skipped (named so the caller can warn).
    pub empty: Vec<String>,
}

impl Listing {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The folder of a Delta table's log, at its root.
const DELTA_LOG: &str = "_delta_log";

/// Lists a location. Fails when it holds nothing to read, or a Delta table, naming the location.
pub async fn list(location: &Location) -> Result<Listing> {
    let objects = location.list().await?;
    // Consoles and tools mark an S3 "folder" with an empty object named after it (`orders/`,
    // listed without its slash): a folder, not an empty file to warn of.
    let folders_of_objects: std::collections::HashSet<String> = objects
        .iter()
        .flat_map(|o| {
            let key = o.location.as_ref();
            key.match_indices('/').map(move |(i, _)| key[..i].to_string())
        })
        .collect();
    let mut files = Vec::new();
    let mut folders: Vec<Vec<String>> = Vec::new();
    let mut empty = Vec::new();
    for object in objects {
        let Some(mut parts) = location.relative(&object.location) else {
            continue;
        };
        if let Some(at) = parts.iter().position(|p| p == DELTA_LOG) {
            // Its folders hold every file a commit ever added; which are current, only the log
            // says: read as files, it would give removed rows back.
            let table = parts[..at].join("/");
            return Err(Error::input(format!(
                "{location}: {} is a Delta table (it has a {DELTA_LOG}/); etl reads the Delta tables its jobs write through the catalog, and does not crawl them",
                if table.is_empty() { "the location".to_string() } else { format!("folder {table}") }
            )));
        }
        let name = parts.pop().unwrap_or_else(|| object.location.filename().unwrap_or_default().to_string());
        if is_hidden(&name) || parts.iter().any(|p| is_hidden(p)) {
            continue;
        }
        if object.size == 0 {
            if !folders_of_objects.contains(object.location.as_ref()) {
                empty.push(location.display(&object.location));
            }
            continue;
        }
        let (format, compression) = format::from_name(&name);
        files.push(SourceFile {
            path: object.location,
            size: object.size,
            last_modified: object.last_modified,
            e_tag: object.e_tag,
            format,
            compression,
            partition_values: Vec::new(),
            rows: None,
        });
        folders.push(parts);
    }
    crate::kill_points::reached("list");
    if files.is_empty() {
        let missing = location.local_path().is_some_and(|path| !path.exists());
        let why = if missing {
            "no such file or folder"
        } else if empty.is_empty() {
            "no objects to read"
        } else {
            "only empty objects"
        };
        return Err(Error::input(format!("{location}: {why}")));
    }
    let partition_keys = partition_keys(location, &folders, &files)?;
    for (file, parts) in files.iter_mut().zip(&folders) {
        file.partition_values = (0..partition_keys.len())
            .map(|level| parts.get(level).and_then(|folder| partition_value(folder)))
            .collect();
    }
    Ok(Listing { location: location.clone(), files, partition_keys, empty })
}

/// One key per folder depth: the Hive key when every folder at that depth is `key=value` with
/// the same key, `partition_N` when none is.
fn partition_keys(location: &Location, folders: &[Vec<String>], files: &[SourceFile]) -> Result<Vec<String>> {
    let depth = folders.iter().map(Vec::len).max().unwrap_or(0);
    let mut keys = Vec::with_capacity(depth);
    for level in 0..depth {
        let mut hive_key: Option<(&str, usize)> = None;
        let mut plain: Option<usize> = None;
        for (i, parts) in folders.iter().enumerate() {
            let Some(folder) = parts.get(level) else {
                continue;
            };
            match partition_key(folder) {
                Some(key) => match hive_key {
                    None => hive_key = Some((key, i)),
                    Some((seen, j)) if !seen.eq_ignore_ascii_case(key) => {
                        return Err(Error::input(format!(
                            "{location}: folders at depth {} disagree on the partition key: {} and {}",
                            level + 1,
                            location.display(&files[j].path),
                            location.display(&files[i].path)
                        )));
                    }
                    Some(_) => {}
                },
                None => plain = plain.or(Some(i)),
            }
            if let (Some((_, j)), Some(k)) = (hive_key, plain) {
                return Err(Error::input(format!(
                    "{location}: folders at depth {} mix key=value partitions and plain folders: {} and {}",
                    level + 1,
                    location.display(&files[j].path),
                    location.display(&files[k].path)
                )));
            }
        }
        keys.push(match hive_key {
            Some((key, _)) => names::normalize(&percent_decode(key), level),
            None => format!("partition_{level}"),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for key in &keys {
        if !seen.insert(key) {
            return Err(Error::input(format!("{location}: partition key '{key}' appears at two folder depths")));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &std::path::Path, relative: &str, content: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    async fn listing(root: &std::path::Path) -> Result<Listing> {
        list(&Location::parse(root.to_str().unwrap()).unwrap()).await
    }

    #[tokio::test]
    async fn hive_folders_become_keys_and_root_files_have_nulls() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "Year=2026/month=11/a.csv", "x\n1\n");
        touch(dir.path(), "Year=2026/month=12/b.csv.gz", "x\n1\n");
        touch(dir.path(), "root.csv", "x\n1\n");
        touch(dir.path(), "year=__HIVE_DEFAULT_PARTITION__/month=01/c.csv", "x\n1\n");
        touch(dir.path(), "_SUCCESS", "");
        touch(dir.path(), "_etl_staging/run/x.csv", "x\n1\n");
        touch(dir.path(), ".hidden/y.csv", "x\n1\n");
        touch(dir.path(), "empty.csv", "");
        let listing = listing(dir.path()).await.unwrap();
        assert_eq!(listing.partition_keys, ["year", "month"]);
        let values: Vec<_> = listing.files.iter().map(|f| f.partition_values.clone()).collect();
        assert_eq!(
            values,
            vec![
                vec![Some("2026".into()), Some("11".into())],
                vec![Some("2026".into()), Some("12".into())],
                vec![None, None],
                vec![None, Some("01".into())],
            ]
        );
        assert_eq!(listing.files[1].compression, Compression::Gzip);
        assert_eq!(listing.empty.len(), 1);
        assert!(listing.empty[0].ends_with("empty.csv"));
    }

    #[tokio::test]
    async fn plain_folders_become_numbered_keys() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "2026/11/a.json", "{}\n");
        let listing = listing(dir.path()).await.unwrap();
        assert_eq!(listing.partition_keys, ["partition_0", "partition_1"]);
        assert_eq!(listing.files[0].partition_values, vec![Some("2026".into()), Some("11".into())]);
    }

    #[tokio::test]
    async fn mixed_folder_styles_are_refused_with_both_files_named() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "dt=1/a.csv", "x\n");
        touch(dir.path(), "other/b.csv", "x\n");
        let err = listing(dir.path()).await.unwrap_err();
        assert!(err.message().contains("dt=1/a.csv") && err.message().contains("other/b.csv"), "{err}");
    }

    #[tokio::test]
    async fn nothing_to_read_names_the_location() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "empty.csv", "");
        let err = listing(dir.path()).await.unwrap_err();
        assert!(err.message().contains("only empty objects"), "{err}");
        let err = listing(&dir.path().join("missing")).await.unwrap_err();
        assert!(err.message().contains("no such file or folder") && err.message().contains("missing"), "{err}");
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        let err = listing(&dir.path().join("folder")).await.unwrap_err();
        assert!(err.message().contains("no objects to read"), "{err}");
    }
}
