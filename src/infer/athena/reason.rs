//! Why a column is declared otherwise than etl reads it, in the words `etl schema show` prints.

use super::TextSerDe;
use crate::schema::GlueType;

/// Why a column is declared otherwise, or reads otherwise. One variant per documented rule;
/// the text is what users read.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reason {
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
