//! The table definition both catalogs store: what Athena needs to read the table (location,
//! classification, SerDe, InputFormat, OutputFormat, columns, partition keys apart from the
//! columns) and what our readers need (the CSV dialect and null markers, kept as SerDe and
//! table parameters under the names Glue crawlers use where one exists).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::infer::Inferred;
use crate::layout;
use crate::location::Location;
use crate::schema::{Column, TableSchema};
use crate::source::csv::Dialect;
use crate::source::format::{Compression, Format};
use crate::source::text::DEFAULT_NULL_VALUES;

pub const EXTERNAL_TABLE: &str = "EXTERNAL_TABLE";

const TEXT_INPUT_FORMAT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const TEXT_OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
const OPEN_CSV_SERDE: &str = "org.apache.hadoop.hive.serde2.OpenCSVSerde";
const JSON_SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";
pub const PARQUET_INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
pub const PARQUET_OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

/// Our own parameter on tables our runs write: the job that writes them.
pub const WRITTEN_BY: &str = "etl.written_by";
/// Our own parameter: the CSV null markers, as a JSON list.
const NULL_VALUES_PARAMETER: &str = "etl.null_values";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SerDe {
    pub library: String,
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDefinition {
    pub location: String,
    pub format: Format,
    pub columns: Vec<Column>,
    pub partition_keys: Vec<Column>,
    pub table_type: String,
    pub input_format: String,
    pub output_format: String,
    pub serde: SerDe,
    pub parameters: BTreeMap<String, String>,
}

impl TableDefinition {
    /// The definition a crawl records for what it inferred at `location` (a canonical URL).
    pub fn crawled(location: String, inferred: &Inferred) -> Self {
        let compressions: std::collections::BTreeSet<Compression> =
            inferred.listing.files.iter().map(|f| f.compression).collect();
        let compression = match compressions.len() {
            1 => compressions.into_iter().next().unwrap().to_string(),
            _ => "mixed".to_string(),
        };
        let mut parameters = BTreeMap::from([
            ("classification".to_string(), inferred.format.to_string()),
            ("compressionType".to_string(), compression),
            ("typeOfData".to_string(), "file".to_string()),
            ("EXTERNAL".to_string(), "TRUE".to_string()),
        ]);
        let names = || inferred.schema.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(",");
        let (input_format, output_format, serde) = match inferred.format {
            Format::Csv => {
                let dialect = inferred.dialect.clone().unwrap_or_default();
                let delimiter = (dialect.delimiter as char).to_string();
                parameters.insert("delimiter".into(), delimiter.clone());
                parameters.insert("skip.header.line.count".into(), if dialect.header { "1" } else { "0" }.into());
                parameters.insert("areColumnsQuoted".into(), "true".into());
                parameters.insert(NULL_VALUES_PARAMETER.into(), serde_json::to_string(&inferred.null_values).unwrap());
                let serde = SerDe {
                    library: OPEN_CSV_SERDE.to_string(),
                    parameters: BTreeMap::from([
                        ("separatorChar".to_string(), delimiter.clone()),
                        ("quoteChar".to_string(), (dialect.quote as char).to_string()),
                        ("field.delim".to_string(), delimiter),
                    ]),
                };
                (TEXT_INPUT_FORMAT, TEXT_OUTPUT_FORMAT, serde)
            }
            Format::Json => {
                let serde = SerDe {
                    library: JSON_SERDE.to_string(),
                    parameters: BTreeMap::from([("paths".to_string(), names())]),
                };
                (TEXT_INPUT_FORMAT, TEXT_OUTPUT_FORMAT, serde)
            }
            Format::Parquet => (PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, parquet_serde()),
        };
        TableDefinition {
            location,
            format: inferred.format,
            columns: inferred.schema.columns.clone(),
            partition_keys: inferred.schema.partition_keys.clone(),
            table_type: EXTERNAL_TABLE.to_string(),
            input_format: input_format.to_string(),
            output_format: output_format.to_string(),
            serde,
            parameters,
        }
    }

    /// The definition of a Parquet table a job writes.
    pub fn parquet(location: String, schema: &TableSchema, compression: &str, job: &str) -> Self {
        TableDefinition {
            location,
            format: Format::Parquet,
            columns: schema.columns.clone(),
            partition_keys: schema.partition_keys.clone(),
            table_type: EXTERNAL_TABLE.to_string(),
            input_format: PARQUET_INPUT_FORMAT.to_string(),
            output_format: PARQUET_OUTPUT_FORMAT.to_string(),
            serde: parquet_serde(),
            parameters: BTreeMap::from([
                ("classification".to_string(), "parquet".to_string()),
                ("compressionType".to_string(), compression.to_string()),
                ("typeOfData".to_string(), "file".to_string()),
                ("EXTERNAL".to_string(), "TRUE".to_string()),
                (WRITTEN_BY.to_string(), job.to_string()),
            ]),
        }
    }

    /// Whether replacing `self` by `other` records a new version: any change but the location
    /// does. (A written table moves to a new folder on every run; that is data, not schema.)
    pub fn is_new_version_of(&self, other: &TableDefinition) -> bool {
        TableDefinition { location: other.location.clone(), ..self.clone() } != *other
    }

    /// Whether our runs write the table (and its partitions list its files).
    pub fn is_written(&self) -> bool {
        self.parameters.contains_key(WRITTEN_BY)
    }

    /// The folder a written table's runs write under.
    pub fn written_root(&self) -> Result<Location> {
        layout::written_root(&self.location)
    }

    pub fn schema(&self) -> TableSchema {
        TableSchema { columns: self.columns.clone(), partition_keys: self.partition_keys.clone() }
    }

    pub fn csv_dialect(&self) -> Dialect {
        let char_of = |value: Option<&String>, default: u8| value.and_then(|v| v.bytes().next()).unwrap_or(default);
        Dialect {
            delimiter: char_of(self.serde.parameters.get("separatorChar"), b','),
            quote: char_of(self.serde.parameters.get("quoteChar"), b'"'),
            header: self.parameters.get("skip.header.line.count").is_some_and(|v| v != "0"),
        }
    }

    pub fn null_values(&self) -> Vec<String> {
        self.parameters
            .get(NULL_VALUES_PARAMETER)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_else(|| DEFAULT_NULL_VALUES.iter().map(|s| s.to_string()).collect())
    }
}

fn parquet_serde() -> SerDe {
    SerDe {
        library: PARQUET_SERDE.to_string(),
        parameters: BTreeMap::from([("serialization.format".to_string(), "1".to_string())]),
    }
}
