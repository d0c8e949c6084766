//! What happens to a record that cannot be read: `bad_records = fail | drop | quarantine`.
//!
//! Every reader reports a bad record here with the file, the line, the column and the value.
//! `fail` turns the first one into the error of the run; `drop` counts it; `quarantine` counts
//! it and appends it, as one JSON object a line, to a file the run report names.

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadRecordPolicy {
    #[default]
    Fail,
    Drop,
    Quarantine,
}

impl FromStr for BadRecordPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail" => Ok(Self::Fail),
            "drop" => Ok(Self::Drop),
            "quarantine" => Ok(Self::Quarantine),
            other => Err(format!("unknown bad_records policy '{other}' (expected fail, drop or quarantine)")),
        }
    }
}

/// One record that could not be read, and why.
#[derive(Debug, Clone, Serialize)]
pub struct BadRecord {
    pub file: String,
    /// Line of the record's start (CSV, JSON); for CSV records with embedded newlines this is
    /// the line where the record begins.
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub reason: String,
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad record in {} line {}", self.file, self.line)?;
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Shows a value in a message: quoted, escaped, and cut when long.
pub fn quote_value(value: &str) -> String {
    const MAX: usize = 80;
    let mut shown: String = value.chars().take(MAX).collect();
    if value.chars().count() > MAX {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// The rejects of one source in one run, shared by all the threads reading it.
#[derive(Debug)]
pub struct Rejects {
    policy: BadRecordPolicy,
    count: AtomicU64,
    quarantine: Option<(PathBuf, Mutex<Option<BufWriter<std::fs::File>>>)>,
}

impl Rejects {
    pub fn new(policy: BadRecordPolicy, quarantine_file: Option<PathBuf>) -> Self {
        let quarantine = match policy {
            BadRecordPolicy::Quarantine => quarantine_file.map(|path| (path, Mutex::new(None))),
            _ => None,
        };
        Rejects { policy, count: AtomicU64::new(0), quarantine }
    }

    /// Fail on the first bad record; what `etl sql` and `infer` use.
    pub fn failing() -> Self {
        Self::new(BadRecordPolicy::Fail, None)
    }

    pub fn policy(&self) -> BadRecordPolicy {
        self.policy
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn quarantine_file(&self) -> Option<&Path> {
        self.quarantine.as_ref().map(|(path, _)| path.as_path())
    }

    /// Records a bad record; the error is the record itself under `fail`.
    pub fn reject(&self, record: BadRecord) -> Result<()> {
        match self.policy {
            BadRecordPolicy::Fail => Err(Error::input(record.to_string())),
            BadRecordPolicy::Drop => {
                self.count.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            BadRecordPolicy::Quarantine => {
                self.count.fetch_add(1, Ordering::Relaxed);
                let Some((path, writer)) = &self.quarantine else {
                    return Ok(());
                };
                let mut writer = writer.lock().unwrap_or_else(|e| e.into_inner());
                if writer.is_none() {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    *writer = Some(BufWriter::new(std::fs::File::create(path)?));
                }
                let out = writer.as_mut().expect("opened above");
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
                Ok(())
            }
        }
    }

    /// Flushes the quarantine file; called once the reading is over.
    pub fn finish(&self) -> Result<()> {
        if let Some((_, writer)) = &self.quarantine {
            if let Some(out) = writer.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                out.flush()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> BadRecord {
        BadRecord {
            file: "data/a.csv".into(),
            line: 7,
            column: Some("amount".into()),
            value: Some("12,5".into()),
            reason: format!("value {} is not a double", quote_value("12,5")),
        }
    }

    #[test]
    fn fail_turns_the_record_into_the_error() {
        let err = Rejects::failing().reject(record()).unwrap_err();
        assert_eq!(err.message(), "bad record in data/a.csv line 7, column amount: value \"12,5\" is not a double");
    }

    #[test]
    fn quarantine_counts_and_keeps_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q/raw.orders.jsonl");
        let rejects = Rejects::new(BadRecordPolicy::Quarantine, Some(path.clone()));
        rejects.reject(record()).unwrap();
        rejects.reject(record()).unwrap();
        rejects.finish().unwrap();
        assert_eq!(rejects.count(), 2);
        let text = std::fs::read_to_string(path).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["file"], "data/a.csv");
        assert_eq!(first["line"], 7);
        assert_eq!(first["column"], "amount");
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let shown = quote_value(&"x".repeat(500));
        assert!(shown.len() < 100 && shown.ends_with("…\""));
    }
}
