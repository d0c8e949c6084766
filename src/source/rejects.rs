//! What happens to a record that cannot be read: `bad_records = fail | drop | quarantine`.
//!
//! Every reader reports a bad record here with the file, the line, the column, the value and
//! the record's text exactly as read. `fail` turns the first one into the error of the run;
//! `drop` counts it; `quarantine` counts it and keeps it twice, in the run's quarantine folder:
//!
//! - `TABLE.jsonl`, one JSON object a line (`file`, `line`, `column`, `value`, `reason`,
//!   `record`), what `etl quarantine show` lists;
//! - `TABLE/…`, the rejected records as files of the source's own format, laid out as the
//!   source's files are (partition folders included), a CSV file with its header line: a
//!   folder a source can read. Fixed there, they go back in with `etl run --replay-quarantine`.
//!
//! A record seen twice (a source read by two queries of a run) is counted and kept once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BadRecord {
    pub file: String,
    /// Line of the record's start (CSV, JSON); for CSV records with embedded newlines this is
    /// the line where the record begins.
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub reason: String,
    /// The record's text exactly as read: every physical line of a CSV record (without the
    /// line end after it), a JSON line as it stood. Bytes that are not UTF-8 are shown as
    /// U+FFFD here and kept exactly in `record_base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_base64: Option<String>,
    /// The header line of the CSV file the record is from, for the replayable copy.
    #[serde(skip)]
    pub header: Option<Arc<str>>,
    /// Which of the records beginning on `line` it is, from 0: a bare carriage return ends a
    /// CSV record (old Mac and Excel exports end every one so) but no line.
    #[serde(skip)]
    pub on_line: u32,
}

impl BadRecord {
    /// The record with its text as read.
    pub fn with_record(mut self, bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.record = Some(text.to_string()),
            Err(_) => {
                use base64::Engine;
                self.record = Some(String::from_utf8_lossy(bytes).into_owned());
                self.record_base64 = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
            }
        }
        self
    }

    /// The record's bytes exactly as read.
    pub fn record_bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        match &self.record_base64 {
            Some(encoded) => base64::engine::general_purpose::STANDARD.decode(encoded).ok(),
            None => self.record.as_ref().map(|text| text.clone().into_bytes()),
        }
    }
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

/// Where a source's quarantined records go in a run's quarantine folder.
#[derive(Debug, Clone)]
pub struct Quarantine {
    /// `TABLE.jsonl`.
    pub list: PathBuf,
    /// `TABLE/`: the records as files of the source's format.
    pub records: PathBuf,
    /// How messages name the source's folders (`data/orders`): a record's file under one of
    /// them keeps its path below it in `records`.
    pub roots: Vec<String>,
}

impl Quarantine {
    /// The quarantine of `table` in a run's quarantine `folder`.
    pub fn of(folder: &Path, table: &str, roots: Vec<String>) -> Self {
        Quarantine { list: folder.join(format!("{table}.jsonl")), records: folder.join(table), roots }
    }

    /// Where the copy of a record of `file` goes: its path below the source's folder (a name
    /// without the compression extension, as the copy is plain text).
    fn copy_of(&self, file: &str) -> PathBuf {
        let relative = self
            .roots
            .iter()
            .find_map(|root| file.strip_prefix(root.as_str()).and_then(|rest| rest.strip_prefix('/')))
            .unwrap_or_else(|| file.rsplit('/').next().unwrap_or(file));
        let (_, compression) = super::format::from_name(relative);
        let plain = match compression {
            super::format::Compression::None => relative,
            _ => relative.rsplit_once('.').map_or(relative, |(stem, _)| stem),
        };
        let mut path = self.records.clone();
        for part in plain.split('/').filter(|p| !p.is_empty() && *p != "..") {
            path.push(part);
        }
        path
    }
}

#[derive(Debug, Default)]
struct Kept {
    list: Option<BufWriter<std::fs::File>>,
    copies: HashMap<PathBuf, BufWriter<std::fs::File>>,
    seen: HashSet<(String, u64, u32)>,
}

/// The rejects of one source in one run, shared by all the threads reading it.
#[derive(Debug)]
pub struct Rejects {
    policy: BadRecordPolicy,
    count: AtomicU64,
    quarantine: Option<Quarantine>,
    kept: Mutex<Kept>,
    /// On a cluster executor: the records set apart, for the client to replay into its own.
    spooled: Option<Mutex<Vec<BadRecord>>>,
}

impl Rejects {
    pub fn new(policy: BadRecordPolicy, quarantine: Option<Quarantine>) -> Self {
        let quarantine = quarantine.filter(|_| policy == BadRecordPolicy::Quarantine);
        Rejects { policy, count: AtomicU64::new(0), quarantine, kept: Mutex::new(Kept::default()), spooled: None }
    }

    /// The rejects of a scan running on a cluster executor: under `drop` and `quarantine` the
    /// records are kept in memory until [`Rejects::take_spooled`], for the client to replay.
    pub fn spooling(policy: BadRecordPolicy) -> Self {
        Rejects { spooled: Some(Mutex::default()), ..Self::new(policy, None) }
    }

    pub fn take_spooled(&self) -> Vec<BadRecord> {
        self.spooled
            .as_ref()
            .map(|s| std::mem::take(&mut *s.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
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
        self.quarantine.as_ref().map(|q| q.list.as_path())
    }

    /// Records a bad record; the error is the record itself under `fail`.
    pub fn reject(&self, record: BadRecord) -> Result<()> {
        if self.policy == BadRecordPolicy::Fail {
            return Err(Error::input(record.to_string()));
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if !kept.seen.insert((record.file.clone(), record.line, record.on_line)) {
            return Ok(());
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(spooled) = &self.spooled {
            spooled.lock().unwrap_or_else(|e| e.into_inner()).push(record);
            return Ok(());
        }
        let Some(quarantine) = &self.quarantine else {
            return Ok(());
        };
        if kept.list.is_none() {
            if let Some(parent) = quarantine.list.parent() {
                std::fs::create_dir_all(parent)?;
            }
            kept.list = Some(BufWriter::new(std::fs::File::create(&quarantine.list)?));
        }
        let list = kept.list.as_mut().expect("opened above");
        serde_json::to_writer(&mut *list, &record)?;
        list.write_all(b"\n")?;
        if let Some(bytes) = record.record_bytes() {
            let path = quarantine.copy_of(&record.file);
            let copy = match kept.copies.entry(path) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    if let Some(parent) = entry.key().parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let mut file = BufWriter::new(std::fs::File::create(entry.key())?);
                    if let Some(header) = &record.header {
                        file.write_all(header.as_bytes())?;
                        file.write_all(b"\n")?;
                    }
                    entry.insert(file)
                }
            };
            copy.write_all(&bytes)?;
            copy.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Flushes the quarantine files; called once the reading is over.
    pub fn finish(&self) -> Result<()> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let Kept { list, copies, .. } = &mut *kept;
        for out in list.iter_mut().chain(copies.values_mut()) {
            out.flush()?;
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
            ..BadRecord::default()
        }
        .with_record(b"7,\"12,5\",x")
    }

    #[test]
    fn fail_turns_the_record_into_the_error() {
        let err = Rejects::failing().reject(record()).unwrap_err();
        assert_eq!(err.message(), "bad record in data/a.csv line 7, column amount: value \"12,5\" is not a double");
    }

    #[test]
    fn quarantine_counts_and_keeps_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let quarantine = Quarantine::of(&dir.path().join("q"), "raw.orders", vec!["data".into()]);
        let rejects = Rejects::new(BadRecordPolicy::Quarantine, Some(quarantine.clone()));
        let mut other = record();
        other.line = 9;
        other.header = Some("id,amount,name".into());
        rejects.reject(other).unwrap();
        rejects.reject(record()).unwrap();
        // The same record again (the source read by a second query): kept once.
        rejects.reject(record()).unwrap();
        rejects.finish().unwrap();
        assert_eq!(rejects.count(), 2);
        let text = std::fs::read_to_string(&quarantine.list).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(first["file"], "data/a.csv");
        assert_eq!(first["line"], 7);
        assert_eq!(first["column"], "amount");
        assert_eq!(first["record"], "7,\"12,5\",x");
        let copy = std::fs::read_to_string(quarantine.records.join("a.csv")).unwrap();
        assert_eq!(copy, "id,amount,name\n7,\"12,5\",x\n7,\"12,5\",x\n");
    }

    #[test]
    fn a_record_that_is_not_utf8_is_kept_exactly() {
        let record = BadRecord { file: "a.csv".into(), line: 2, reason: "r".into(), ..BadRecord::default() }
            .with_record(b"caf\xe9,1");
        assert_eq!(record.record.as_deref(), Some("caf\u{fffd},1"));
        assert_eq!(record.record_bytes().unwrap(), b"caf\xe9,1");
    }

    #[test]
    fn copies_keep_the_path_below_the_source_without_the_compression_extension() {
        let quarantine = Quarantine::of(Path::new("/q"), "raw.t", vec!["s3://b/raw".into()]);
        assert_eq!(quarantine.copy_of("s3://b/raw/day=1/a.csv.gz"), Path::new("/q/raw.t/day=1/a.csv"));
        assert_eq!(quarantine.copy_of("elsewhere/b.json"), Path::new("/q/raw.t/b.json"));
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let shown = quote_value(&"x".repeat(500));
        assert!(shown.len() < 100 && shown.ends_with("…\""));
    }
}
