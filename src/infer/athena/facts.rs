//! The evidence: what sampled values say about reading them through Athena's SerDes,
//! gathered per file by CSV and JSON inference and merged over a source's files.

use std::collections::{BTreeMap, BTreeSet};

use super::{AthenaType, TextSerDe};
use crate::schema::GlueType;

/// What samples say about reading a source through Athena's SerDes, merged over its files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextFacts {
    /// CSV: a field starts with the quote character.
    pub quoted: bool,
    /// CSV: where the first quoted field holding a line break is ("data/a.csv line 7").
    pub line_break: Option<String>,
    /// CSV: per column, by Glue name.
    pub columns: BTreeMap<String, ColumnFacts>,
    /// JSON: the keys each field comes from, by its path of Glue names (arrays are not a
    /// step: a struct inside an array is named like any other).
    pub json_keys: BTreeMap<Vec<String>, BTreeSet<String>>,
    /// The SerDe the table's recorded definition names (incremental crawls).
    pub recorded_serde: Option<TextSerDe>,
    /// Per column, what the table's recorded definition declares (incremental crawls).
    pub recorded: BTreeMap<String, Recorded>,
}

/// What a column's values look like, as far as a SerDe cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnFacts {
    /// An empty field (etl reads NULL).
    pub empty: bool,
    /// A null marker (`NA`, `NULL`, `\N`; etl reads NULL in a non-string column).
    pub null_marker: bool,
    /// Files crawled earlier may hold empty values: they were read by a SerDe to which
    /// emptiness makes no difference, so the definition does not record it.
    pub emptiness_unknown: bool,
    /// A backslash, which OpenCSVSerDe's escape character drops.
    pub backslash: bool,
    /// Among values read as timestamps: one with `T` before the time.
    pub timestamp_t: bool,
    /// ... one with a zone (`Z`, `+01:00`).
    pub timestamp_zone: bool,
    /// ... one in some other form than `yyyy-MM-dd[ HH:mm:ss[.f]]`.
    pub timestamp_other: bool,
    /// Among values read as doubles: one not spelled `[+-]digits[.digits][e[+-]digits]`.
    pub double_spelling: bool,
}

/// A column as the recorded definition has it: etl's type then, and Athena's if it differed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub etl_type: GlueType,
    pub athena: Option<AthenaType>,
}

impl TextFacts {
    /// What both say; where they disagree on where a line break is, the first.
    pub fn union(mut self, other: &TextFacts) -> TextFacts {
        self.quoted |= other.quoted;
        if self.line_break.is_none() {
            self.line_break = other.line_break.clone();
        }
        for (name, facts) in &other.columns {
            self.columns.entry(name.clone()).or_default().absorb(facts);
        }
        for (path, keys) in &other.json_keys {
            self.json_keys.entry(path.clone()).or_default().extend(keys.iter().cloned());
        }
        self.recorded_serde = self.recorded_serde.or(other.recorded_serde);
        for (name, recorded) in &other.recorded {
            self.recorded.entry(name.clone()).or_insert_with(|| recorded.clone());
        }
        self
    }

    /// Records that a field at `path` came from `key` (cheap when it is already known: this
    /// runs for every field of every sampled JSON object).
    pub fn saw_json_key(&mut self, path: &[String], key: &str) {
        match self.json_keys.get_mut(path) {
            Some(keys) if keys.contains(key) => {}
            Some(keys) => {
                keys.insert(key.to_string());
            }
            None => {
                self.json_keys.insert(path.to_vec(), BTreeSet::from([key.to_string()]));
            }
        }
    }
}

impl ColumnFacts {
    pub fn absorb(&mut self, other: &ColumnFacts) {
        self.empty |= other.empty;
        self.null_marker |= other.null_marker;
        self.emptiness_unknown |= other.emptiness_unknown;
        self.backslash |= other.backslash;
        self.timestamp_t |= other.timestamp_t;
        self.timestamp_zone |= other.timestamp_zone;
        self.timestamp_other |= other.timestamp_other;
        self.double_spelling |= other.double_spelling;
    }

    /// Notes what one non-empty value of a column that is still a timestamp candidate says.
    pub fn saw_timestamp(&mut self, text: &str) {
        match timestamp_spelling(text) {
            TimestampSpelling::Hive => {}
            TimestampSpelling::WithT => self.timestamp_t = true,
            TimestampSpelling::WithZone => self.timestamp_zone = true,
            TimestampSpelling::Other => self.timestamp_other = true,
        }
    }

    /// Notes what one value that reads as a double says.
    pub fn saw_double(&mut self, text: &str) {
        self.double_spelling |= !is_plain_double(text);
    }
}

/// How a text a timestamp parser accepted is spelled, against Hive's `java.sql.Timestamp` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimestampSpelling {
    /// `yyyy-MM-dd`, or that with ` HH:mm:ss` and 1 to 9 fractional digits.
    Hive,
    WithT,
    WithZone,
    Other,
}

pub(super) fn timestamp_spelling(text: &str) -> TimestampSpelling {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date = digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) && b.get(7) == Some(&b'-') && digits(8..10);
    if date && b.len() == 10 {
        return TimestampSpelling::Hive;
    }
    let time = &b[b.len().min(10)..];
    if time.iter().any(|&c| c == b'Z' || c == b'z' || c == b'+') || time.iter().skip(1).any(|&c| c == b'-') {
        return TimestampSpelling::WithZone;
    }
    if matches!(b.get(10), Some(b'T' | b't')) {
        return TimestampSpelling::WithT;
    }
    let clock = date
        && b.get(10) == Some(&b' ')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    let fraction = &b[b.len().min(19)..];
    let fraction_ok = fraction.is_empty()
        || (fraction[0] == b'.' && (2..=10).contains(&fraction.len()) && fraction[1..].iter().all(u8::is_ascii_digit));
    if clock && fraction_ok { TimestampSpelling::Hive } else { TimestampSpelling::Other }
}

/// `[+-]digits[.digits][(e|E)[+-]digits]`: what both Java's and every other parser read alike.
pub(super) fn is_plain_double(text: &str) -> bool {
    let b = text.as_bytes();
    let mut at = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let run = |at: &mut usize| {
        let start = *at;
        while b.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at > start
    };
    if !run(&mut at) {
        return false;
    }
    if b.get(at) == Some(&b'.') {
        at += 1;
        if !run(&mut at) {
            return false;
        }
    }
    if matches!(b.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(b.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        if !run(&mut at) {
            return false;
        }
    }
    at == b.len()
}
