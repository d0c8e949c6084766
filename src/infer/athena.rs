//! What Athena reads of a crawled CSV or JSON table: the SerDe a crawl records, and the type it
//! declares in Glue for each column, with the reason whenever that differs from etl's own view.
//!
//! etl reads a column by the type inference gave it (`TableDefinition.columns`); Athena reads
//! the same files through a text SerDe that is far less forgiving. The rules here are AWS's
//! documented ones where AWS documents them (Athena user guide: "CSV SerDe libraries", "Open CSV
//! SerDe", "Lazy Simple SerDe", "OpenX JSON SerDe"); the table below gives each with its source:
//!
//! - CSV with a field in quotes is OpenCSVSerDe (LazySimpleSerDe would keep the quotes in the
//!   values); other CSV is LazySimpleSerDe, the only one that reads dates, text timestamps and
//!   decimals, and which reads an unreadable value as NULL rather than failing the query.
//! - OpenCSVSerDe fails a query on an empty value in a numeric column and reads only BOOLEAN,
//!   INT, BIGINT and DOUBLE (DATE and TIMESTAMP only as numbers); every other column, or one with
//!   an empty value in the sample, is declared `string`.
//! - LazySimpleSerDe reads timestamps only as `yyyy-MM-dd HH:mm:ss[.fff]`; one with a `T` or a
//!   zone (which etl reads) is declared `string`.
//! - A quoted field holding a line break splits its row (OpenCSVSerDe does not support embedded
//!   line breaks): every column is declared `string`.
//! - The OpenX JSON SerDe finds a column by its lower-cased name, so a key etl renamed
//!   (`Order ID` is `order_id`) needs `mapping.order_id=Order ID` or reads NULL, silently.
//!
//! A type is declared only when the SerDe reads every sampled value as etl does: the sample is
//! the evidence, so the facts it gives ([`TextFacts`]) are gathered per file by CSV and JSON
//! inference and merged over the files. An incremental crawl sees only new files; what the
//! recorded definition says of the earlier ones comes back as facts too ([`Recorded`]), so the
//! declaration stays the union of what is known and never loosens.
//!
//! What this does not do: pick the Hive JSON SerDe (it has no key mapping), write
//! `use.null.for.invalid.data` (AWS advises against it: it turns bad data into silent NULLs) or
//! `ignore.malformed.json` (which skips malformed rows as silently), or declare an
//! epoch-millisecond column `timestamp` (etl infers no such column).
//!
//! # The rules
//!
//! One line per rule. The id is the case of that name in the tests `csv_rules_case_by_case` and
//! `json_rules_case_by_case` (C21 to C24 are also `catalog::definition`'s
//! `each_csv_serde_gets_the_parameters_it_reads`, J1 to J9 its `json_keys_etl_renamed_are_mapped`);
//! a rule no case is named for goes by its `Reason`. OpenCSV, LazySimple and OpenX are the three
//! SerDes. *Confirmed*: the page states it. *Inferred*: the page is silent, and the rule is etl's
//! reading of that silence, of Hive or of Trino. Inferred rules are followed in the safe direction
//! (undocumented means unreadable, so `string`), except C6, C10, C15, C16 and C17, which keep etl's
//! type on behaviour AWS does not state.
//!
//! | id | rule | source | status |
//! |----|------|--------|--------|
//! | C1 | CSV without quoted fields is LazySimple; bigint and double read as etl reads them | [choices] | confirmed |
//! | C2 | a field in quotes makes the table OpenCSV (LazySimple would keep the quotes) | [choices] | confirmed |
//! | C3 | OpenCSV reads quoted integers as bigint | [open-csv] | confirmed |
//! | C4 | OpenCSV fails queries on an empty value in a numeric column: declared `string` | [open-csv] | confirmed |
//! | C5 | OpenCSV fails queries on a null marker (`NA`) in a numeric column: `string` | [open-csv] | confirmed |
//! | C6 | LazySimple reads an empty value in a numeric column as NULL: type kept | [create-table] | inferred |
//! | C7 | OpenCSV reads DATE only as days since 1970-01-01: `yyyy-MM-dd` text is `string` | [open-csv] | confirmed |
//! | C8 | OpenCSV reads TIMESTAMP only as epoch milliseconds: text timestamps are `string` | [open-csv] | confirmed |
//! | C9 | OpenCSV recognizes only BOOLEAN, INT, BIGINT, DOUBLE: decimal, float... `string` | [open-csv] | inferred |
//! | C10 | LazySimple reads decimal text as decimal (AWS lists no type limits for it) | [lazy] | inferred |
//! | C11 | LazySimple reads `yyyy-MM-dd` as date | [types] | confirmed |
//! | C12 | LazySimple reads `yyyy-MM-dd HH:mm:ss[.f]` (1 to 9 digits) as timestamp | [choices], [kc-ts] | confirmed |
//! | C13 | a `T` before the time is not that form: `string` | [kc-ts] | confirmed |
//! | C14 | a zone (`Z`, `+01:00`) is not that form: `string` | [kc-ts] | confirmed |
//! | C15 | date-only values keep a column `timestamp` (AWS documents date and time only) | [kc-ts] | inferred |
//! | C16 | LazySimple reads booleans in any case, `True` (AWS: values are `true`, `false`) | [types] | inferred |
//! | C17 | OpenCSV reads quoted booleans in any case, `"FALSE"` (it recognizes BOOLEAN) | [open-csv] | inferred |
//! | C18 | OpenCSV with an empty value in a boolean column: `string` (AWS says numeric) | [open-csv] | inferred |
//! | C19 | etl declares bigint, never int: a quoted 3000000000 reads (OpenCSV has BIGINT) | [open-csv] | confirmed |
//! | C20 | a quoted field holding a line break splits its row: every column `string` | [open-csv] | confirmed |
//! | C21 | tab-delimited is LazySimple with `field.delim` and `serialization.format` the tab | [lazy] | confirmed |
//! | C22 | OpenCSV gets exactly `separatorChar` (`;` here), `quoteChar` and `escapeChar` | [open-csv] | confirmed |
//! | C23 | a header is `skip.header.line.count=1` in either SerDe; no header, none | [open-csv], [lazy] | confirmed |
//! | C24 | LazySimple gets `serialization.null.format=''`: empty is NULL, as in etl | [create-table] | inferred |
//! | C25 | OpenCSV's escape character drops a backslash not before a quote or backslash | [open-csv] | inferred |
//! | C26 | no delimiter of several characters (LazySimple has none; etl's is one byte) | [lazy] | confirmed |
//! | EmptyStrings | OpenCSV reads an empty field as `''` where etl reads NULL | [open-csv] | inferred |
//! | DoubleSpelling | doubles not `[+-]digits[.digits][e[+-]digits]` (NaN, inf, .5): `string` | [open-csv] | inferred |
//! | TimestampForm | timestamps of another form (a 10-digit fraction): `string` | [kc-ts] | confirmed |
//! | NotACsvType | arrays, structs, maps and binary in CSV: `string` | [create-table] | inferred |
//! | (quoting) | quotes in the header alone, or inside a field, do not make the table OpenCSV | [choices] | inferred |
//! | J1 | OpenX reads boolean, bigint and double as etl does | [openx] | inferred |
//! | J2 | a key etl renamed (`Order ID`) gets `mapping.order_id=Order ID` | [openx] | confirmed |
//! | J3 | so does a dotted key (`a.b` is `a_b`) | [openx] | confirmed |
//! | J4 | a key differing from its name in case alone needs no mapping (`case.insensitive`) | [openx] | confirmed |
//! | J5 | keys equal but for case fail queries ("Duplicate key"): etl's inference refuses them | [openx] | confirmed |
//! | J6 | a struct in some rows and a scalar in others is `string`, read as its JSON text | [openx] | inferred |
//! | J7 | values of different kinds (array, string) are `string` | [openx] | inferred |
//! | J8 | integers beyond bigint (etl: decimal(20,0)) are `string`: no DECIMAL documented | [openx] | inferred |
//! | J9 | a renamed key inside a struct is mapped too (mappings go by name, at any depth) | [blog] | inferred |
//! | KeyConflict | a name from several keys reads one: others NULL, structs `string` | [openx] | inferred |
//! | JsonTimestamp | OpenX timestamp spellings are undocumented: `string` (JSON gives none) | [openx] | inferred |
//! | JsonBinary | BINARY is undocumented for OpenX: `string` | [openx] | inferred |
//!
//! [choices]: https://docs.aws.amazon.com/athena/latest/ug/serde-csv-choices.html
//! [open-csv]: https://docs.aws.amazon.com/athena/latest/ug/csv-serde.html
//! [lazy]: https://docs.aws.amazon.com/athena/latest/ug/lazy-simple-serde.html
//! [types]: https://docs.aws.amazon.com/athena/latest/ug/data-types.html
//! [create-table]: https://docs.aws.amazon.com/athena/latest/ug/create-table.html
//! [kc-ts]: https://aws.amazon.com/premiumsupport/knowledge-center/query-table-athena-timestamp-empty/
//! [openx]: https://docs.aws.amazon.com/athena/latest/ug/openx-json-serde.html
//! [blog]: https://aws.amazon.com/blogs/big-data/create-tables-in-amazon-athena-from-nested-json-and-mappings-using-jsonserde/

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::schema::types::StructField;
use crate::schema::{Column, GlueType};

/// What Athena reads for a column whose declaration in Glue differs from etl's: the declared
/// type, and why, in words a user reads in `etl schema show`. The type is etl's own when only
/// the values differ (a backslash OpenCSVSerDe drops).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AthenaType {
    #[serde(rename = "type")]
    pub ty: GlueType,
    pub reason: String,
}

/// The text SerDes a crawl chooses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSerDe {
    LazySimple,
    OpenCsv,
    OpenXJson,
}

impl TextSerDe {
    pub const LAZY_SIMPLE: &'static str = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
    pub const OPEN_CSV: &'static str = "org.apache.hadoop.hive.serde2.OpenCSVSerde";
    pub const OPENX_JSON: &'static str = "org.openx.data.jsonserde.JsonSerDe";

    /// The `SerializationLibrary` Glue records.
    pub fn library(self) -> &'static str {
        match self {
            TextSerDe::LazySimple => Self::LAZY_SIMPLE,
            TextSerDe::OpenCsv => Self::OPEN_CSV,
            TextSerDe::OpenXJson => Self::OPENX_JSON,
        }
    }
}

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

/// What a crawl records for Athena: the SerDe, the columns declared otherwise than etl reads
/// them, and (JSON) the key each renamed field comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    pub serde: TextSerDe,
    pub athena_types: BTreeMap<String, AthenaType>,
    /// `mapping.<name>` = key, for the OpenX JSON SerDe.
    pub mappings: BTreeMap<String, String>,
}

/// Why a column is declared otherwise, or reads otherwise. One variant per documented rule;
/// the text is what users read.
#[derive(Debug, Clone, PartialEq)]
enum Reason {
    EmptyInOpenCsv { empty: bool, marker: bool, boolean: bool },
    EmptinessUnknown,
    NotAnOpenCsvType(GlueType),
    OpenCsvDate,
    OpenCsvTimestamp,
    SplitRows(String),
    Backslashes,
    EmptyStrings,
    DoubleSpelling(TextSerDe),
    TimestampZone,
    TimestampT,
    TimestampForm,
    NotACsvType(GlueType),
    JsonDecimal,
    JsonTimestamp,
    JsonBinary,
    KeyConflict { name: String, keys: Vec<String>, mapped: Option<String>, parent: bool },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::EmptyInOpenCsv { empty, marker, boolean } => {
                let what = match (empty, marker) {
                    (true, true) => "empty and null-marker values",
                    (false, true) => "null-marker values",
                    _ => "empty values",
                };
                let kind = if *boolean { "boolean" } else { "numeric" };
                write!(f, "{what} in a {kind} column fail OpenCSVSerDe queries (HIVE_BAD_DATA); CAST in queries")
            }
            Reason::EmptinessUnknown => f.write_str(
                "files crawled before the table had quoted fields may hold empty values, which fail OpenCSVSerDe \
                 queries in a non-string column (HIVE_BAD_DATA); a full crawl checks them",
            ),
            Reason::NotAnOpenCsvType(ty) => {
                write!(
                    f,
                    "OpenCSVSerDe reads only boolean, int, bigint and double besides string, not {ty} (Athena docs)"
                )
            }
            Reason::OpenCsvDate => {
                f.write_str("OpenCSVSerDe reads DATE only as days since 1970-01-01, not yyyy-MM-dd text (Athena docs)")
            }
            Reason::OpenCsvTimestamp => {
                f.write_str("OpenCSVSerDe reads TIMESTAMP only as epoch milliseconds, not as text (Athena docs)")
            }
            Reason::SplitRows(at) => write!(
                f,
                "a quoted field holds a line break ({at}): Athena's CSV SerDes read one line per row, so that row \
                 reads split"
            ),
            Reason::Backslashes => f.write_str(
                "OpenCSVSerDe's escape character drops a backslash not before a quote or backslash: such values read \
                 changed",
            ),
            Reason::EmptyStrings => f.write_str("OpenCSVSerDe reads an empty field as '' where etl reads NULL"),
            Reason::DoubleSpelling(serde) => {
                let outcome = match serde {
                    TextSerDe::OpenCsv => "may fail OpenCSVSerDe queries",
                    _ => "may read as NULL in LazySimpleSerDe",
                };
                write!(f, "doubles spelled other than [+-]digits[.digits][e[+-]digits] (NaN, inf, .5) {outcome}")
            }
            Reason::TimestampZone => f.write_str(
                "timestamps with a zone (Z, +hh:mm) read as NULL in LazySimpleSerDe, which reads yyyy-MM-dd \
                 HH:mm:ss[.fff]",
            ),
            Reason::TimestampT => f.write_str(
                "LazySimpleSerDe reads timestamps as yyyy-MM-dd HH:mm:ss[.fff] (Athena docs), not with a 'T' before \
                 the time",
            ),
            Reason::TimestampForm => f.write_str(
                "LazySimpleSerDe reads timestamps only as yyyy-MM-dd HH:mm:ss[.fff] (Athena docs); other spellings \
                 read as NULL",
            ),
            Reason::NotACsvType(ty) => {
                write!(f, "LazySimpleSerDe reads {ty} from text with its own collection delimiters, not as etl does")
            }
            Reason::JsonDecimal => f.write_str("AWS does not document DECIMAL for the OpenX JSON SerDe"),
            Reason::JsonTimestamp => f.write_str(
                "the OpenX JSON SerDe reads only some timestamp spellings (no date-only values), which etl does not \
                 check",
            ),
            Reason::JsonBinary => f.write_str("AWS does not document BINARY for the OpenX JSON SerDe"),
            Reason::KeyConflict { name, keys, mapped, parent } => {
                let keys = keys.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
                let read = match mapped {
                    Some(key) => format!("mapping.{name}={key:?}"),
                    None => format!("the key {name:?}"),
                };
                write!(
                    f,
                    "JSON keys {keys} all become {name:?}, and the OpenX SerDe reads one key per name at every depth \
                     ({read})"
                )?;
                if *parent {
                    f.write_str(": declared string, the JSON text")
                } else {
                    f.write_str(": others read NULL")
                }
            }
        }
    }
}

/// The declaration of a CSV table whose columns etl reads as `columns`.
pub fn declare_csv(columns: &[Column], facts: &TextFacts) -> Declaration {
    let serde = if facts.quoted { TextSerDe::OpenCsv } else { TextSerDe::LazySimple };
    let no_facts = ColumnFacts::default();
    // What was declared for another SerDe says nothing for this one; the facts it stood for
    // are covered by `emptiness_unknown`, which turns every type OpenCSVSerDe reads to string.
    let none = BTreeMap::new();
    let recorded = if facts.recorded_serde == Some(serde) { &facts.recorded } else { &none };
    let athena_types = columns
        .iter()
        .filter_map(|column| {
            let mut seen = facts.columns.get(&column.name).unwrap_or(&no_facts).clone();
            let recorded = recorded.get(&column.name);
            // A recorded declaration stands for facts of earlier files while the column's type is
            // what it was; once widened, those facts are no longer known.
            if recorded.is_some_and(|r| r.etl_type != column.ty && r.athena.is_some()) {
                seen.emptiness_unknown = true;
            }
            let reasons = match (&facts.line_break, serde) {
                (Some(at), TextSerDe::OpenCsv) => vec![Reason::SplitRows(at.clone())],
                (_, TextSerDe::OpenCsv) => open_csv_reasons(&column.ty, &seen),
                _ => lazy_simple_reasons(&column.ty, &seen),
            };
            let fresh = athena_type(&column.ty, GlueType::String, reasons);
            keep_recorded(column, fresh, recorded).map(|athena| (column.name.clone(), athena))
        })
        .collect();
    Declaration { serde, athena_types, mappings: BTreeMap::new() }
}

/// Why OpenCSVSerDe cannot read a column of type `ty` as etl does (nothing: it can).
/// The types the AWS page lists ("Recognizes BOOLEAN, BIGINT, INT, and DOUBLE") are kept when no
/// sampled value is empty; everything else is text to it.
fn open_csv_reasons(ty: &GlueType, seen: &ColumnFacts) -> Vec<Reason> {
    let empty_values = || {
        if seen.empty || seen.null_marker {
            let boolean = *ty == GlueType::Boolean;
            Some(Reason::EmptyInOpenCsv { empty: seen.empty, marker: seen.null_marker, boolean })
        } else if seen.emptiness_unknown {
            Some(Reason::EmptinessUnknown)
        } else {
            None
        }
    };
    let reason = match ty {
        // Boolean spellings are unconfirmed for OpenCSVSerDe (rule C17); etl's are true/false in
        // any letter case, and Athena documents `true` and `false`.
        GlueType::Boolean | GlueType::Int | GlueType::BigInt => empty_values(),
        GlueType::Double => {
            empty_values().or_else(|| seen.double_spelling.then_some(Reason::DoubleSpelling(TextSerDe::OpenCsv)))
        }
        GlueType::Date => Some(Reason::OpenCsvDate),
        GlueType::Timestamp => Some(Reason::OpenCsvTimestamp),
        GlueType::TinyInt
        | GlueType::SmallInt
        | GlueType::Float
        | GlueType::Decimal { .. }
        | GlueType::Binary
        | GlueType::Array(_)
        | GlueType::Struct(_)
        | GlueType::Map(..) => Some(Reason::NotAnOpenCsvType(ty.clone())),
        GlueType::String | GlueType::Varchar(_) | GlueType::Char(_) => {
            let mut notes = Vec::new();
            if seen.backslash {
                notes.push(Reason::Backslashes);
            }
            if seen.empty {
                notes.push(Reason::EmptyStrings);
            }
            return notes;
        }
    };
    reason.into_iter().collect()
}

/// Why LazySimpleSerDe cannot read a column of type `ty` as etl does. It never fails a query:
/// what it cannot parse is NULL, and so are empty values (`serialization.null.format` is '').
fn lazy_simple_reasons(ty: &GlueType, seen: &ColumnFacts) -> Vec<Reason> {
    let reason = match ty {
        // etl's booleans are true/false in any case: what LazySimpleSerDe reads.
        GlueType::Boolean => None,
        // Out of range reads NULL; etl never infers a narrower integer than bigint.
        GlueType::TinyInt | GlueType::SmallInt | GlueType::Int | GlueType::BigInt => None,
        GlueType::Float | GlueType::Double => {
            seen.double_spelling.then_some(Reason::DoubleSpelling(TextSerDe::LazySimple))
        }
        // Inference gives a precision and scale that hold every sampled value, so none rounds.
        GlueType::Decimal { .. } => None,
        // etl's dates are yyyy-MM-dd exactly.
        GlueType::Date => None,
        GlueType::Timestamp if seen.timestamp_zone => Some(Reason::TimestampZone),
        // Trino would read these; AWS documents only the space (rules C12, C13).
        GlueType::Timestamp if seen.timestamp_t => Some(Reason::TimestampT),
        GlueType::Timestamp if seen.timestamp_other => Some(Reason::TimestampForm),
        GlueType::Timestamp => None,
        GlueType::String | GlueType::Varchar(_) | GlueType::Char(_) => None,
        GlueType::Binary | GlueType::Array(_) | GlueType::Struct(_) | GlueType::Map(..) => {
            Some(Reason::NotACsvType(ty.clone()))
        }
    };
    reason.into_iter().collect()
}

/// The declaration of a JSON table whose columns etl reads as `columns`.
pub fn declare_json(columns: &[Column], facts: &TextFacts) -> Declaration {
    let (mappings, conflicts) = json_mappings(facts);
    let none = BTreeMap::new();
    let recorded = if facts.recorded_serde == Some(TextSerDe::OpenXJson) { &facts.recorded } else { &none };
    let athena_types = columns
        .iter()
        .filter_map(|column| {
            let mut reasons = Vec::new();
            let mut declared = openx_type(&column.ty, &mut reasons);
            if let Some(conflict) = conflicts.get(&column.name) {
                if matches!(conflict, Reason::KeyConflict { parent: true, .. }) {
                    declared = GlueType::String;
                }
                reasons.insert(0, conflict.clone());
            }
            let fresh = athena_type(&column.ty, declared, reasons);
            keep_recorded(column, fresh, recorded.get(&column.name)).map(|athena| (column.name.clone(), athena))
        })
        .collect();
    Declaration { serde: TextSerDe::OpenXJson, athena_types, mappings }
}

/// The type the OpenX JSON SerDe is declared to read for `ty`, noting why where it differs.
fn openx_type(ty: &GlueType, reasons: &mut Vec<Reason>) -> GlueType {
    let mut because = |reason: Reason| {
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
        GlueType::String
    };
    match ty {
        GlueType::Boolean
        | GlueType::TinyInt
        | GlueType::SmallInt
        | GlueType::Int
        | GlueType::BigInt
        | GlueType::Float
        | GlueType::Double
        | GlueType::String
        | GlueType::Varchar(_)
        | GlueType::Char(_)
        // Text yyyy-MM-dd or a day count (not stated by AWS); etl's JSON inference gives no dates.
        | GlueType::Date => ty.clone(),
        // etl gives decimal(20,0) to integers beyond bigint; the original OpenX SerDe has no
        // DECIMAL and AWS documents none (rule J8, inferred): undocumented is unreadable.
        GlueType::Decimal { .. } => because(Reason::JsonDecimal),
        GlueType::Timestamp => because(Reason::JsonTimestamp),
        GlueType::Binary => because(Reason::JsonBinary),
        GlueType::Array(item) => GlueType::Array(Box::new(openx_type(item, reasons))),
        GlueType::Map(key, value) => GlueType::Map(key.clone(), Box::new(openx_type(value, reasons))),
        GlueType::Struct(fields) => GlueType::Struct(
            fields.iter().map(|f| StructField { name: f.name.clone(), ty: openx_type(&f.ty, reasons) }).collect(),
        ),
    }
}

/// `mapping.<name>` for every field whose Glue name is not its key in lower case, and the
/// columns a name with several keys leaves unreadable, by top-level column.
///
/// The OpenX SerDe compares keys to names without case, and a mapping renames a field of that
/// name at every depth (AWS's nested example; Trino's reader does the same), so one name gets
/// one key. When a name comes from several keys, a top-level column of that name keeps its
/// key; a struct holding the name from another key is declared `string` (its JSON text), and
/// a top-level column with several keys reads NULL where the key is not the mapped one.
fn json_mappings(facts: &TextFacts) -> (BTreeMap<String, String>, BTreeMap<String, Reason>) {
    // Each name, with the paths it is at and the keys it comes from there.
    let mut by_name: BTreeMap<&str, Vec<KeysAt>> = BTreeMap::new();
    for (path, keys) in &facts.json_keys {
        if let Some(name) = path.last() {
            by_name.entry(name).or_default().push((path, keys));
        }
    }
    let mut mappings = BTreeMap::new();
    let mut conflicts: BTreeMap<String, Reason> = BTreeMap::new();
    for (name, places) in by_name {
        let lower = |key: &String| key.to_lowercase();
        let distinct: BTreeSet<String> = places.iter().flat_map(|(_, keys)| keys.iter().map(lower)).collect();
        // The key the name reads: the top-level column's (its first), else the name itself.
        let read: String = match places.iter().find(|(path, _)| path.len() == 1) {
            Some((_, keys)) => keys.iter().next().cloned().unwrap_or_else(|| name.to_string()),
            None if distinct.len() == 1 => places[0].1.iter().next().cloned().unwrap_or_else(|| name.to_string()),
            None => name.to_string(),
        };
        let mapped = (read.to_lowercase() != name).then(|| read.clone());
        if let Some(key) = &mapped {
            mappings.insert(name.to_string(), key.clone());
        }
        if distinct.len() < 2 {
            continue;
        }
        let all_keys: Vec<String> =
            places.iter().flat_map(|(_, keys)| keys.iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
        for (path, keys) in &places {
            if keys.iter().all(|k| k.to_lowercase() == read.to_lowercase()) {
                continue;
            }
            let conflict = Reason::KeyConflict {
                name: name.to_string(),
                keys: all_keys.clone(),
                mapped: mapped.clone(),
                parent: path.len() > 1,
            };
            // A struct made string outranks a note on the column itself.
            let column = path[0].clone();
            match conflicts.get(&column) {
                Some(Reason::KeyConflict { parent: true, .. }) => {}
                _ => {
                    conflicts.insert(column, conflict);
                }
            }
        }
    }
    (mappings, conflicts)
}

type KeysAt<'a> = (&'a Vec<String>, &'a BTreeSet<String>);

/// The entry for a column declared `declared` (or etl's type, when only values differ) for
/// `reasons`; none when there is no reason.
fn athena_type(etl_type: &GlueType, declared: GlueType, reasons: Vec<Reason>) -> Option<AthenaType> {
    if reasons.is_empty() {
        return None;
    }
    let only_values = reasons.iter().all(|r| matches!(r, Reason::Backslashes | Reason::EmptyStrings));
    let ty =
        if only_values || etl_type.is_string_like() && declared.is_string_like() { etl_type.clone() } else { declared };
    let reason = reasons.iter().map(Reason::to_string).collect::<Vec<_>>().join("; ");
    Some(AthenaType { ty, reason })
}

/// The fresh entry, unless the recorded one says more: an earlier crawl saw files this one did
/// not, and what it declared for a column of the same type still holds for them.
fn keep_recorded(column: &Column, fresh: Option<AthenaType>, recorded: Option<&Recorded>) -> Option<AthenaType> {
    let Some(Recorded { etl_type, athena: Some(earlier) }) = recorded else {
        return fresh;
    };
    if *etl_type != column.ty {
        return fresh;
    }
    match fresh {
        // A type declared otherwise outranks a note on values; between equals, the earlier
        // stays, so a crawl of files like the earlier ones records nothing new.
        Some(fresh) if fresh.ty != column.ty && earlier.ty == column.ty => Some(fresh),
        _ => Some(earlier.clone()),
    }
}

/// How a text a timestamp parser accepted is spelled, against Hive's `java.sql.Timestamp` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimestampSpelling {
    /// `yyyy-MM-dd`, or that with ` HH:mm:ss` and 1 to 9 fractional digits.
    Hive,
    WithT,
    WithZone,
    Other,
}

fn timestamp_spelling(text: &str) -> TimestampSpelling {
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
fn is_plain_double(text: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::{FileShape, csv, json};
    use crate::source::text::DEFAULT_NULL_VALUES;

    fn csv_sample(text: &str) -> FileShape {
        let nulls: Vec<String> = DEFAULT_NULL_VALUES.iter().map(|s| s.to_string()).collect();
        let hints = csv::CsvHints { delimiter: None, header: None, null_values: &nulls, sample_rows: 1000 };
        csv::infer(text.as_bytes(), true, "t.csv", &hints).unwrap()
    }

    fn columns_of(shape: &FileShape) -> Vec<Column> {
        shape.columns.iter().map(|(name, shape)| Column::new(name.clone(), shape.finish())).collect()
    }

    /// `name type` of every column as Glue declares it, and the reason of each that differs.
    fn declared(columns: &[Column], declaration: &Declaration) -> (String, Vec<(String, String)>) {
        let types = columns
            .iter()
            .map(|c| {
                let ty = declaration.athena_types.get(&c.name).map_or(&c.ty, |a| &a.ty);
                format!("{} {ty}", c.name)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let reasons = declaration.athena_types.iter().map(|(n, a)| (n.clone(), a.reason.clone())).collect();
        (types, reasons)
    }

    fn why(reasons: &[(&str, Reason)]) -> Vec<(String, String)> {
        reasons.iter().map(|(name, reason)| (name.to_string(), reason.to_string())).collect()
    }

    /// The CSV rules of the module doc's table, one case each: the sample, the SerDe, every
    /// column as declared, and the reason of each declared otherwise than etl reads it.
    /// C21-C24 (parameters) are in `catalog::definition`'s tests, which write them. C26 (a
    /// delimiter of several characters) cannot arise: a dialect's delimiter is one byte.
    #[test]
    fn csv_rules_case_by_case() {
        use GlueType as T;
        use TextSerDe::{LazySimple, OpenCsv};
        // (case, sample, SerDe, columns as declared, reasons)
        type Case = (&'static str, &'static str, TextSerDe, &'static str, Vec<(&'static str, Reason)>);
        let cases: Vec<Case> = vec![
            ("C1", "id,amt\n1,2.5\n2,3.5\n", LazySimple, "id bigint, amt double", vec![]),
            ("C2 quoted fields", "id,name\n1,\"a,b\"\n2,c\n", OpenCsv, "id bigint, name string", vec![]),
            ("C3 quoted numbers", "id,name\n\"1\",\"x\"\n\"2\",\"y\"\n", OpenCsv, "id bigint, name string", vec![]),
            (
                "C4 empty numeric",
                "id,n\n\"a\",1\n\"b\",\n",
                OpenCsv,
                "id string, n string",
                vec![("n", Reason::EmptyInOpenCsv { empty: true, marker: false, boolean: false })],
            ),
            (
                "C5 null marker",
                "id,n\n\"a\",1\n\"b\",NA\n",
                OpenCsv,
                "id string, n string",
                vec![("n", Reason::EmptyInOpenCsv { empty: false, marker: true, boolean: false })],
            ),
            ("C6 empty numeric unquoted", "id,n\na,1\nb,\n", LazySimple, "id string, n bigint", vec![]),
            (
                "C7 quoted dates",
                "d\n\"2020-01-15\"\n\"2020-01-16\"\n",
                OpenCsv,
                "d string",
                vec![("d", Reason::OpenCsvDate)],
            ),
            (
                "C8 quoted timestamps",
                "a,t\n\"x\",\"2020-01-15 10:00:00\"\n",
                OpenCsv,
                "a string, t string",
                vec![("t", Reason::OpenCsvTimestamp)],
            ),
            (
                "C9 quoted decimals",
                "p\n\"12345678901234.567\"\n",
                OpenCsv,
                "p string",
                vec![("p", Reason::NotAnOpenCsvType(T::decimal(17, 3)))],
            ),
            ("C10 decimals", "p\n12345678901234.567\n", LazySimple, "p decimal(17,3)", vec![]),
            ("C11 dates", "d\n2020-01-15\n2020-01-16\n", LazySimple, "d date", vec![]),
            ("C12 timestamps", "t\n2020-01-15 10:00:00\n2020-01-15 10:00:00.123\n", LazySimple, "t timestamp", vec![]),
            (
                "C13 T separator",
                "t\n2020-01-15T10:00:00\n2020-01-16T10:00:00\n",
                LazySimple,
                "t string",
                vec![("t", Reason::TimestampT)],
            ),
            (
                "C14 zone",
                "t\n2020-01-15 10:00:00\n2020-01-15T10:00:00Z\n",
                LazySimple,
                "t string",
                vec![("t", Reason::TimestampZone)],
            ),
            ("C15 date-only", "t\n2020-01-15\n2020-01-15 10:00:00\n", LazySimple, "t timestamp", vec![]),
            ("C16 booleans", "b\nTrue\nfalse\n", LazySimple, "b boolean", vec![]),
            // OpenCSVSerDe's boolean spellings are unconfirmed (inferred); etl's are true/false.
            ("C17 quoted booleans", "b\n\"true\"\n\"FALSE\"\n", OpenCsv, "b boolean", vec![]),
            (
                "C18 empty boolean",
                "a,b\n\"x\",true\n\"y\",\n",
                OpenCsv,
                "a string, b string",
                vec![("b", Reason::EmptyInOpenCsv { empty: true, marker: false, boolean: true })],
            ),
            ("C19 never int", "n\n\"3000000000\"\n", OpenCsv, "n bigint", vec![]),
            (
                "C20 line break in quotes",
                "a,b\n\"x\ny\",1\n",
                OpenCsv,
                "a string, b string",
                vec![("a", Reason::SplitRows("t.csv line 2".into())), ("b", Reason::SplitRows("t.csv line 2".into()))],
            ),
            ("C21 tab", "a\tb\n1\t2\n", LazySimple, "a bigint, b bigint", vec![]),
            ("C22 semicolon", "a;b\n\"x\";1\n", OpenCsv, "a string, b bigint", vec![]),
            ("C24 empty strings", "s,n\n,1\nx,2\n", LazySimple, "s string, n bigint", vec![]),
            ("C25 backslash", "a,b\n\"C:\\temp\",1\n", OpenCsv, "a string, b bigint", vec![("a", Reason::Backslashes)]),
            // Beyond the numbered rules: what else they imply (EmptyStrings, DoubleSpelling,
            // TimestampForm and quoting in the module doc's table).
            (
                "empty strings under OpenCSVSerDe",
                "a,b\n\"x\",1\n,2\n",
                OpenCsv,
                "a string, b bigint",
                vec![("a", Reason::EmptyStrings)],
            ),
            (
                "a double spelled NaN",
                "x\n1.5\nNaN\n",
                LazySimple,
                "x string",
                vec![("x", Reason::DoubleSpelling(TextSerDe::LazySimple))],
            ),
            (
                "a fraction of ten digits",
                "t\n2020-01-15 10:00:00.1234567890\n",
                LazySimple,
                "t string",
                vec![("t", Reason::TimestampForm)],
            ),
            ("a quoted header alone", "\"id\",\"n\"\n1,2\n", LazySimple, "id bigint, n bigint", vec![]),
            ("a quote inside a field", "id,n\n1,5\"\n2,6\n", LazySimple, "id bigint, n string", vec![]),
        ];
        for (case, text, serde, types, reasons) in cases {
            let shape = csv_sample(text);
            let columns = columns_of(&shape);
            let declaration = declare_csv(&columns, &shape.facts);
            assert_eq!(declaration.serde, serde, "{case}");
            assert_eq!(declared(&columns, &declaration), (types.to_string(), why(&reasons)), "{case}");
        }
    }

    /// A declaration differs from etl's view in type, or only in what the values read as.
    #[test]
    fn a_column_that_only_reads_differently_keeps_its_type() {
        let shape = csv_sample("a,b\n\"C:\\x\",1\n,2\n");
        let declaration = declare_csv(&columns_of(&shape), &shape.facts);
        let a = &declaration.athena_types["a"];
        assert_eq!(a.ty, GlueType::String);
        assert_eq!(a.reason, format!("{}; {}", Reason::Backslashes, Reason::EmptyStrings));
    }

    fn json_sample(text: &str) -> Result<FileShape, String> {
        json::infer(text.as_bytes(), true, "t.json", 0).map_err(|e| e.message().to_string())
    }

    /// The JSON rules of the module doc's table: the sample, every column as declared, the
    /// mappings written and the reasons. J5's error comes from inference itself.
    #[test]
    fn json_rules_case_by_case() {
        // (case, sample, columns as declared, mappings, reasons)
        type Case =
            (&'static str, &'static str, &'static str, Vec<(&'static str, &'static str)>, Vec<(&'static str, Reason)>);
        let cases: Vec<Case> = vec![
            ("J1", "{\"id\":1,\"ok\":true,\"x\":1.5}", "id bigint, ok boolean, x double", vec![], vec![]),
            ("J2 renamed key", "{\"Order ID\":1}", "order_id bigint", vec![("order_id", "Order ID")], vec![]),
            ("J3 dotted key", "{\"a.b\":1}", "a_b bigint", vec![("a_b", "a.b")], vec![]),
            ("J4 case alone", "{\"Id\":1}", "id bigint", vec![], vec![]),
            ("J6 scalar for struct", "{\"c\":{\"n\":1}}\n{\"c\":2}", "c string", vec![], vec![]),
            ("J7 kinds disagree", "{\"t\":[\"x\"]}\n{\"t\":\"y\"}", "t string", vec![], vec![]),
            ("J8 beyond bigint", "{\"u\":18446744073709551615}", "u string", vec![], vec![("u", Reason::JsonDecimal)]),
            (
                "J9 nested rename",
                "{\"c\":{\"Na.me\":\"x\"}}",
                "c struct<na_me:string>",
                vec![("na_me", "Na.me")],
                vec![],
            ),
            // Beyond the numbered rules: J8, J9 and KeyConflict at other depths and keys.
            (
                "a decimal inside a struct",
                "{\"c\":{\"u\":18446744073709551615,\"v\":1}}",
                "c struct<u:string,v:bigint>",
                vec![],
                vec![("c", Reason::JsonDecimal)],
            ),
            (
                "one name from two keys at two depths",
                "{\"na_me\":1,\"c\":{\"Na.me\":\"x\"}}",
                "na_me bigint, c string",
                vec![],
                vec![(
                    "c",
                    Reason::KeyConflict {
                        name: "na_me".into(),
                        keys: vec!["Na.me".into(), "na_me".into()],
                        mapped: None,
                        parent: true,
                    },
                )],
            ),
            (
                "one column from two keys",
                "{\"Order ID\":1}\n{\"order-id\":2}",
                "order_id bigint",
                vec![("order_id", "Order ID")],
                vec![(
                    "order_id",
                    Reason::KeyConflict {
                        name: "order_id".into(),
                        keys: vec!["Order ID".into(), "order-id".into()],
                        mapped: Some("Order ID".into()),
                        parent: false,
                    },
                )],
            ),
            (
                "keys in arrays of objects",
                "{\"a\":[{\"X Y\":1}]}",
                "a array<struct<x_y:bigint>>",
                vec![("x_y", "X Y")],
                vec![],
            ),
        ];
        for (case, text, types, mappings, reasons) in cases {
            let shape = json_sample(text).unwrap();
            let columns = columns_of(&shape);
            let declaration = declare_json(&columns, &shape.facts);
            assert_eq!(declaration.serde, TextSerDe::OpenXJson, "{case}");
            assert_eq!(declared(&columns, &declaration), (types.to_string(), why(&reasons)), "{case}");
            let mappings: BTreeMap<String, String> =
                mappings.iter().map(|(n, k)| (n.to_string(), k.to_string())).collect();
            assert_eq!(declaration.mappings, mappings, "{case}");
        }
        let collision = json_sample("{\"A\":1,\"a\":2}").unwrap_err();
        assert!(collision.contains("keys 'A' and 'a' both become 'a'"), "J5: {collision}");
    }

    /// Facts of several files are the union of each file's.
    #[test]
    fn facts_of_files_add_up() {
        let (a, b) = (csv_sample("id,n\n1,2\n"), csv_sample("id,n\n\"3\",\n"));
        let facts = a.facts.clone().union(&b.facts);
        assert!(facts.quoted && facts.columns["n"].empty && !facts.columns["id"].empty);
        let declaration = declare_csv(&columns_of(&a), &facts);
        assert_eq!(declaration.serde, TextSerDe::OpenCsv);
        assert_eq!(declaration.athena_types.keys().collect::<Vec<_>>(), ["n"]);
    }

    /// What an earlier crawl recorded outlives the files that showed it, while the column keeps
    /// its type; once the type changes the facts behind it are unknown, and assumed the worst.
    #[test]
    fn recorded_declarations_hold_for_the_files_behind_them() {
        let columns = [Column::new("n", GlueType::BigInt)];
        let earlier = AthenaType {
            ty: GlueType::String,
            reason: Reason::EmptyInOpenCsv { empty: true, marker: false, boolean: false }.to_string(),
        };
        let recorded = |etl_type: GlueType| TextFacts {
            quoted: true,
            recorded_serde: Some(TextSerDe::OpenCsv),
            recorded: BTreeMap::from([("n".to_string(), Recorded { etl_type, athena: Some(earlier.clone()) })]),
            ..TextFacts::default()
        };
        let kept = declare_csv(&columns, &recorded(GlueType::BigInt));
        assert_eq!(kept.athena_types["n"], earlier);
        let widened = declare_csv(&[Column::new("n", GlueType::Double)], &recorded(GlueType::BigInt));
        assert_eq!(widened.athena_types["n"].reason, Reason::EmptinessUnknown.to_string());
        // Declared for LazySimpleSerDe, now quoted: the earlier files were never checked for
        // empty values.
        let unquoted_before = TextFacts {
            quoted: true,
            recorded_serde: Some(TextSerDe::LazySimple),
            columns: BTreeMap::from([("n".to_string(), ColumnFacts { emptiness_unknown: true, ..Default::default() })]),
            ..TextFacts::default()
        };
        let switched = declare_csv(&columns, &unquoted_before);
        assert_eq!(switched.serde, TextSerDe::OpenCsv);
        assert_eq!(switched.athena_types["n"].reason, Reason::EmptinessUnknown.to_string());
    }

    #[test]
    fn every_reason_reads_as_written() {
        let cases = [
            (
                Reason::EmptyInOpenCsv { empty: true, marker: false, boolean: false },
                "empty values in a numeric column fail OpenCSVSerDe queries (HIVE_BAD_DATA); CAST in queries",
            ),
            (
                Reason::EmptyInOpenCsv { empty: false, marker: true, boolean: false },
                "null-marker values in a numeric column fail OpenCSVSerDe queries (HIVE_BAD_DATA); CAST in queries",
            ),
            (
                Reason::EmptyInOpenCsv { empty: true, marker: true, boolean: true },
                "empty and null-marker values in a boolean column fail OpenCSVSerDe queries (HIVE_BAD_DATA); CAST in \
                 queries",
            ),
            (
                Reason::EmptinessUnknown,
                "files crawled before the table had quoted fields may hold empty values, which fail OpenCSVSerDe \
                 queries in a non-string column (HIVE_BAD_DATA); a full crawl checks them",
            ),
            (
                Reason::NotAnOpenCsvType(GlueType::decimal(17, 3)),
                "OpenCSVSerDe reads only boolean, int, bigint and double besides string, not decimal(17,3) (Athena docs)",
            ),
            (
                Reason::OpenCsvDate,
                "OpenCSVSerDe reads DATE only as days since 1970-01-01, not yyyy-MM-dd text (Athena docs)",
            ),
            (
                Reason::OpenCsvTimestamp,
                "OpenCSVSerDe reads TIMESTAMP only as epoch milliseconds, not as text (Athena docs)",
            ),
            (
                Reason::SplitRows("a.csv line 2".into()),
                "a quoted field holds a line break (a.csv line 2): Athena's CSV SerDes read one line per row, so that \
                 row reads split",
            ),
            (
                Reason::Backslashes,
                "OpenCSVSerDe's escape character drops a backslash not before a quote or backslash: such values read \
                 changed",
            ),
            (Reason::EmptyStrings, "OpenCSVSerDe reads an empty field as '' where etl reads NULL"),
            (
                Reason::DoubleSpelling(TextSerDe::OpenCsv),
                "doubles spelled other than [+-]digits[.digits][e[+-]digits] (NaN, inf, .5) may fail OpenCSVSerDe queries",
            ),
            (
                Reason::DoubleSpelling(TextSerDe::LazySimple),
                "doubles spelled other than [+-]digits[.digits][e[+-]digits] (NaN, inf, .5) may read as NULL in \
                 LazySimpleSerDe",
            ),
            (
                Reason::TimestampZone,
                "timestamps with a zone (Z, +hh:mm) read as NULL in LazySimpleSerDe, which reads yyyy-MM-dd \
                 HH:mm:ss[.fff]",
            ),
            (
                Reason::TimestampT,
                "LazySimpleSerDe reads timestamps as yyyy-MM-dd HH:mm:ss[.fff] (Athena docs), not with a 'T' before the \
                 time",
            ),
            (
                Reason::TimestampForm,
                "LazySimpleSerDe reads timestamps only as yyyy-MM-dd HH:mm:ss[.fff] (Athena docs); other spellings read \
                 as NULL",
            ),
            (
                Reason::NotACsvType("array<bigint>".parse().unwrap()),
                "LazySimpleSerDe reads array<bigint> from text with its own collection delimiters, not as etl does",
            ),
            (Reason::JsonDecimal, "AWS does not document DECIMAL for the OpenX JSON SerDe"),
            (
                Reason::JsonTimestamp,
                "the OpenX JSON SerDe reads only some timestamp spellings (no date-only values), which etl does not check",
            ),
            (Reason::JsonBinary, "AWS does not document BINARY for the OpenX JSON SerDe"),
            (
                Reason::KeyConflict {
                    name: "na_me".into(),
                    keys: vec!["Na.me".into(), "na_me".into()],
                    mapped: None,
                    parent: true,
                },
                "JSON keys \"Na.me\", \"na_me\" all become \"na_me\", and the OpenX SerDe reads one key per name at \
                 every depth (the key \"na_me\"): declared string, the JSON text",
            ),
            (
                Reason::KeyConflict {
                    name: "order_id".into(),
                    keys: vec!["Order ID".into(), "order-id".into()],
                    mapped: Some("Order ID".into()),
                    parent: false,
                },
                "JSON keys \"Order ID\", \"order-id\" all become \"order_id\", and the OpenX SerDe reads one key per \
                 name at every depth (mapping.order_id=\"Order ID\"): others read NULL",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text, "{reason:?}");
        }
    }

    #[test]
    fn timestamp_spellings() {
        let cases = [
            ("2020-01-15", TimestampSpelling::Hive),
            ("2020-01-15 10:00:00", TimestampSpelling::Hive),
            ("2020-01-15 10:00:00.1", TimestampSpelling::Hive),
            ("2020-01-15 10:00:00.123456789", TimestampSpelling::Hive),
            ("2020-01-15 10:00:00.1234567890", TimestampSpelling::Other),
            ("2020-01-15 10:00", TimestampSpelling::Other),
            ("2020-01-15 10:00:00.", TimestampSpelling::Other),
            ("2020-01-15T10:00:00", TimestampSpelling::WithT),
            ("2020-01-15t10:00:00", TimestampSpelling::WithT),
            ("2020-01-15T10:00:00Z", TimestampSpelling::WithZone),
            ("2020-01-15 10:00:00+01:00", TimestampSpelling::WithZone),
            ("2020-01-15T10:00:00-0500", TimestampSpelling::WithZone),
            ("2020-01-15 10:00:00.5z", TimestampSpelling::WithZone),
        ];
        for (text, spelling) in cases {
            assert_eq!(timestamp_spelling(text), spelling, "{text}");
        }
    }

    #[test]
    fn plain_doubles() {
        for text in ["1", "-1", "+1.5", "1.25e3", "1E-3", "007.5"] {
            assert!(is_plain_double(text), "{text}");
        }
        for text in [".5", "5.", "NaN", "inf", "-Infinity", "1e", "1.5.2", "", "+", "1e+"] {
            assert!(!is_plain_double(text), "{text}");
        }
    }
}
