//! A job's triggers: `[[trigger]] s3 = "s3://bucket/prefix/"` (or a local folder) with an
//! optional `suffix`, and whether an object matches one.
//!
//! An S3 prefix is matched as text, as S3's notification filters and EventBridge's `prefix`
//! patterns match it: `s3://raw/orders` also matches `orders2/a.csv`; write the trailing slash
//! for a folder. A local folder is a folder: it matches the files under it, by their path
//! (relative paths are taken from the job file's folder, and an event's from the current
//! one), and symbolic links are resolved on both sides where the paths exist.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ObjectRef;
use crate::location::Location;
use crate::sink::ParquetCompression;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TriggerSection {
    s3: String,
    suffix: Option<String>,
}

/// Where a trigger watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    S3 {
        bucket: String,
        prefix: String,
    },
    /// An absolute path.
    Local(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub watched: Watched,
    pub suffix: Option<String>,
}

impl TriggerSection {
    /// The trigger, its local folder relative to the job file's `folder`; why not, for
    /// `trigger[i].s3` or `trigger[i].suffix`.
    pub(crate) fn resolve(&self, folder: &Path) -> Result<Trigger, (&'static str, String)> {
        let text = self.s3.trim();
        let watched = if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            // The rules of a location, and its messages.
            Location::parse(text).map_err(|e| ("s3", e.message().to_string()))?;
            Watched::S3 { bucket: bucket.to_string(), prefix: prefix.to_string() }
        } else if text.contains("://") && !text.starts_with("file://") {
            return Err(("s3", format!("'{text}' is neither an s3:// prefix nor a local folder")));
        } else {
            let path = text.strip_prefix("file://").unwrap_or(text);
            let location =
                Location::parse(&folder.join(path).to_string_lossy()).map_err(|e| ("s3", e.message().to_string()))?;
            Watched::Local(location.local_path().expect("a local location has a path"))
        };
        let suffix = match self.suffix.as_deref() {
            Some("") => return Err(("suffix", "is empty (leave it out to match every object)".into())),
            other => other.map(str::to_string),
        };
        Ok(Trigger { watched, suffix })
    }
}

impl Trigger {
    pub fn matches(&self, object: &ObjectRef) -> bool {
        if self.suffix.as_deref().is_some_and(|suffix| !object.key.ends_with(suffix)) {
            return false;
        }
        match &self.watched {
            Watched::S3 { bucket, prefix } => object.bucket == *bucket && object.key.starts_with(prefix.as_str()),
            Watched::Local(folder) => {
                object.is_local() && {
                    let file = real_path(Path::new(&object.key));
                    file != real_path(folder) && file.starts_with(real_path(folder))
                }
            }
        }
    }
}

/// Names of objects etl writes under a target's location, each kind with every codec: its
/// files (and the copies kept for rollback), those a Delta merge writes (named by delta-rs),
/// version records and the Delta log.
fn written_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "_etl_versions/1.json",
        "_delta_log/00000000000000000001.json",
        "_delta_log/00000000000000000010.checkpoint.parquet",
        "_delta_log/_last_checkpoint",
        "part-00000-6d035f7f-1045-4c6e-af0d-88dda1a8b510-c000.parquet",
    ]
    .map(String::from)
    .to_vec();
    for codec in ParquetCompression::ALL {
        let ours = crate::layout::data_file_name("20261130T020000Z-0a1b2c", 0, codec.name());
        names.push(format!("{ours}.retained"));
        names.push(ours);
        names.push(format!("part-00000-6d035f7f-1045-4c6e-af0d-88dda1a8b510-c000.{}.parquet", codec.name()));
    }
    names
}

impl Trigger {
    /// Whether objects a run writes under `location` would match this trigger, which would
    /// then start the job again after each of its runs, for ever.
    pub fn sees_writes_to(&self, location: &crate::location::Location) -> bool {
        if let Some(suffix) = &self.suffix
            && !written_names().iter().any(|name| name.ends_with(suffix.as_str()))
        {
            return false;
        }
        match &self.watched {
            Watched::S3 { bucket, prefix } => {
                // Keys under the location's folder: `loopy/…`, which `lo` matches and `loopy2/` does not.
                let written = match location.prefix().as_ref() {
                    "" => String::new(),
                    folder => format!("{folder}/"),
                };
                location.bucket() == Some(bucket.as_str())
                    && (written.starts_with(prefix.as_str()) || prefix.starts_with(written.as_str()))
            }
            Watched::Local(folder) => location.local_path().is_some_and(|written| {
                let (written, folder) = (real_path(&written), real_path(folder));
                written.starts_with(&folder) || folder.starts_with(&written)
            }),
        }
    }
}

/// Where a path leads: resolved through links when it exists, else only made absolute.
pub fn real_path(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = match path.is_absolute() {
        true => path.to_path_buf(),
        false => std::env::current_dir().unwrap_or_default().join(path),
    };
    Location::parse(&absolute.to_string_lossy()).ok().and_then(|l| l.local_path()).unwrap_or(absolute)
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.watched {
            Watched::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}")?,
            Watched::Local(folder) => write!(f, "{}", folder.display())?,
        }
        match &self.suffix {
            Some(suffix) => write!(f, " (*{suffix})"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(s3: &str, suffix: Option<&str>, folder: &Path) -> Result<Trigger, (&'static str, String)> {
        TriggerSection { s3: s3.into(), suffix: suffix.map(str::to_string) }.resolve(folder)
    }

    fn object(bucket: &str, key: &str) -> ObjectRef {
        ObjectRef { bucket: bucket.into(), key: key.into(), version_id: None, etag: None }
    }

    #[test]
    fn an_s3_prefix_matches_as_text_with_its_suffix() {
        let orders = trigger("s3://raw-data/orders/", Some(".csv"), Path::new("/jobs")).unwrap();
        assert_eq!(orders.to_string(), "s3://raw-data/orders/ (*.csv)");
        assert!(orders.matches(&object("raw-data", "orders/2026/a.csv")));
        assert!(!orders.matches(&object("raw-data", "orders/2026/a.json")), "suffix");
        assert!(!orders.matches(&object("raw-data", "orders2/a.csv")), "prefix");
        assert!(!orders.matches(&object("other", "orders/a.csv")), "bucket");
        assert!(!orders.matches(&object("", "orders/a.csv")), "a local file");
        let bucket = trigger("s3://raw-data", None, Path::new("/jobs")).unwrap();
        assert!(bucket.matches(&object("raw-data", "anything")));
        let text = trigger("s3://raw-data/orders", None, Path::new("/jobs")).unwrap();
        assert!(text.matches(&object("raw-data", "orders2/a.csv")), "a prefix is text, as S3 filters it");
    }

    #[test]
    fn a_local_folder_matches_the_files_under_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("in/sub")).unwrap();
        std::fs::write(dir.path().join("in/sub/a.csv"), "x").unwrap();
        let jobs = dir.path().join("jobs");
        let local = trigger("../in/", None, &jobs).unwrap();
        assert_eq!(local.watched, Watched::Local(dir.path().join("in")));
        let file = |path: &Path| object("", &path.to_string_lossy());
        assert!(local.matches(&file(&dir.path().join("in/sub/a.csv"))));
        assert!(local.matches(&file(&dir.path().join("jobs/../in/b.csv"))), "a file not yet there, by its path");
        assert!(!local.matches(&file(&dir.path().join("in"))), "the folder itself");
        assert!(!local.matches(&file(&dir.path().join("inbox/a.csv"))));
        assert!(!local.matches(&object("in", "a.csv")), "an S3 object");
        let url = trigger(&format!("file://{}", dir.path().join("in").display()), None, &jobs).unwrap();
        assert_eq!(url.watched, local.watched);
    }

    #[test]
    fn a_bad_trigger_names_its_key() {
        let folder = Path::new("/jobs");
        assert_eq!(trigger("s3:///orders/", None, folder).unwrap_err().0, "s3");
        let (key, why) = trigger("https://example.com/x", None, folder).unwrap_err();
        assert_eq!(
            (key, why.as_str()),
            ("s3", "'https://example.com/x' is neither an s3:// prefix nor a local folder")
        );
        assert_eq!(trigger("s3://raw/", Some(""), folder).unwrap_err().0, "suffix");
    }
}
