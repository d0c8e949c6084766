//! The table definition both catalogs store: what Athena needs to read the table (location,
//! classification, SerDe, InputFormat, OutputFormat, columns, partition keys apart from the
//! columns) and what our readers need (the CSV dialect and null markers, kept as SerDe and
//! table parameters under the names Glue crawlers use where one exists).
//!
//! A crawled text table has two views of its columns: `columns`, the types etl reads (and
//! reports in `infer`, `crawl` and `schema`), and `athena_types`, the columns Athena's SerDe
//! must be told otherwise, each with its reason (`infer::athena` decides both, and the SerDe).
//! Glue holds the declared view, with etl's type beside it in the column's parameters, so a
//! table read back from either catalog is the one recorded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::infer::Inferred;
pub use crate::infer::athena::AthenaType;
use crate::infer::athena::{self, ColumnFacts, Recorded, TextFacts, TextSerDe};
use crate::layout;
use crate::location::Location;
use crate::location::aws::Encryption;
use crate::schema::{Column, GlueType, TableSchema};
use crate::source::csv::Dialect;
use crate::source::format::{Compression, Format};
use crate::source::text::DEFAULT_NULL_VALUES;

pub const EXTERNAL_TABLE: &str = "EXTERNAL_TABLE";

const TEXT_INPUT_FORMAT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const TEXT_OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
pub const PARQUET_INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
pub const PARQUET_OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

/// Our own parameter on tables our runs write: the job that writes them.
pub const WRITTEN_BY: &str = "etl.written_by";
/// Our own parameter: the CSV null markers, as a JSON list.
const NULL_VALUES_PARAMETER: &str = "etl.null_values";
/// Our own parameters: the server-side encryption a written table's files have (`AES256` or
/// `aws:kms`) and its KMS key, which a rollback, a compaction and clean-ups write with too.
const ENCRYPTION_PARAMETER: &str = "etl.encryption";
const KMS_KEY_PARAMETER: &str = "etl.kms_key_id";
/// The `etl.` parameters a catalog keeps (the others are working state).
pub const KEPT_PARAMETERS: [&str; 4] = [WRITTEN_BY, NULL_VALUES_PARAMETER, ENCRYPTION_PARAMETER, KMS_KEY_PARAMETER];
/// OpenCSVSerDe's delimiter and quote.
const SEPARATOR_CHAR: &str = "separatorChar";
const QUOTE_CHAR: &str = "quoteChar";
/// LazySimpleSerDe's delimiter.
const FIELD_DELIM: &str = "field.delim";
/// The OpenX JSON SerDe's `mapping.<column>` = JSON key.
const MAPPING: &str = "mapping.";

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
    /// The columns Glue declares otherwise than `columns`, for Athena's SerDe, and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub athena_types: BTreeMap<String, AthenaType>,
}

/// The table parameter naming its files' compression, as Glue crawlers set it.
pub const COMPRESSION_PARAMETER: &str = "compressionType";

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
            (COMPRESSION_PARAMETER.to_string(), compression),
            ("typeOfData".to_string(), "file".to_string()),
            ("EXTERNAL".to_string(), "TRUE".to_string()),
        ]);
        let columns = &inferred.schema.columns;
        let (input_format, output_format, serde, athena_types) = match inferred.format {
            Format::Csv => {
                let dialect = inferred.dialect.clone().unwrap_or_default();
                let declaration = athena::declare_csv(columns, &inferred.facts);
                let delimiter = (dialect.delimiter as char).to_string();
                let quoted = declaration.serde == TextSerDe::OpenCsv;
                parameters.insert("delimiter".into(), delimiter.clone());
                parameters.insert("areColumnsQuoted".into(), quoted.to_string());
                parameters.insert("columnsOrdered".into(), "true".into());
                // Both SerDes read it; crawlers write it only for a header.
                if dialect.header {
                    parameters.insert("skip.header.line.count".into(), "1".into());
                }
                parameters.insert(NULL_VALUES_PARAMETER.into(), serde_json::to_string(&inferred.null_values).unwrap());
                let serde_parameters = match declaration.serde {
                    // The three keys OpenCSVSerDe reads (it ignores `field.delim`), as AWS's
                    // procedure for quoted crawled CSV sets them.
                    TextSerDe::OpenCsv => BTreeMap::from([
                        (SEPARATOR_CHAR.to_string(), delimiter),
                        (QUOTE_CHAR.to_string(), (dialect.quote as char).to_string()),
                        ("escapeChar".to_string(), "\\".to_string()),
                    ]),
                    // Its default delimiter is \u0001, so it is always written; an empty field
                    // is NULL in every column, as etl reads it (the default marker is `\N`).
                    _ => BTreeMap::from([
                        (FIELD_DELIM.to_string(), delimiter.clone()),
                        ("serialization.format".to_string(), delimiter),
                        ("serialization.null.format".to_string(), String::new()),
                    ]),
                };
                let serde = SerDe { library: declaration.serde.library().to_string(), parameters: serde_parameters };
                (TEXT_INPUT_FORMAT, TEXT_OUTPUT_FORMAT, serde, declaration.athena_types)
            }
            Format::Json => {
                let declaration = athena::declare_json(columns, &inferred.facts);
                let names = columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(",");
                let mut serde_parameters = BTreeMap::from([("paths".to_string(), names)]);
                for (name, key) in declaration.mappings {
                    serde_parameters.insert(format!("{MAPPING}{name}"), key);
                }
                let serde = SerDe { library: declaration.serde.library().to_string(), parameters: serde_parameters };
                (TEXT_INPUT_FORMAT, TEXT_OUTPUT_FORMAT, serde, declaration.athena_types)
            }
            Format::Parquet => (PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, parquet_serde(), BTreeMap::new()),
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
            athena_types,
        }
    }

    /// The definition of a Parquet table a job writes.
    /// Whether readers read the table through its Delta Lake log (Athena's `table_type`).
    pub fn is_delta(&self) -> bool {
        self.parameters.get(crate::sink::delta::TABLE_TYPE_PARAMETER).map(String::as_str)
            == Some(crate::sink::delta::TABLE_TYPE_DELTA)
    }

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
                (COMPRESSION_PARAMETER.to_string(), compression.to_string()),
                ("typeOfData".to_string(), "file".to_string()),
                ("EXTERNAL".to_string(), "TRUE".to_string()),
                (WRITTEN_BY.to_string(), job.to_string()),
            ]),
            athena_types: BTreeMap::new(),
        }
    }

    /// Whether replacing `self` by `other` records a new version: any change but the location
    /// or the codec does. (A written table moves to a new folder on every run; that is data,
    /// not schema. Readers take each file's codec from the file: a target's new `compression`
    /// made a version whose diff was empty.)
    pub fn is_new_version_of(&self, other: &TableDefinition) -> bool {
        let mut same_place = TableDefinition { location: other.location.clone(), ..self.clone() };
        match other.parameters.get(COMPRESSION_PARAMETER) {
            Some(codec) => same_place.parameters.insert(COMPRESSION_PARAMETER.to_string(), codec.clone()),
            None => same_place.parameters.remove(COMPRESSION_PARAMETER),
        };
        same_place != *other
    }

    /// A table another tool registered (in Glue) that etl cannot read is refused by name: a
    /// view (its rows are a query Athena runs), or files in a format other than Parquet, CSV
    /// and JSON (ORC, Avro), which the Parquet reader took them for.
    pub fn require_readable(&self, name: &super::TableName) -> crate::error::Result<()> {
        if self.table_type == "VIRTUAL_VIEW" {
            return Err(crate::error::Error::query(format!(
                "{name} is a view (Athena runs its query); etl reads tables of files: query the tables it reads"
            )));
        }
        if self.parameters.get("table_type").is_some_and(|t| t.eq_ignore_ascii_case("ICEBERG")) {
            return Err(crate::error::Error::query(format!(
                "{name} is an Apache Iceberg table (its metadata, not its folder, lists its files): etl reads Parquet, CSV and JSON tables, and the Delta tables it writes"
            )));
        }
        const FOREIGN_INPUTS: [&str; 5] =
            ["OrcInputFormat", "AvroContainerInputFormat", "IonInputFormat", "CloudTrailInputFormat", "Hoodie"];
        const FOREIGN_SERDES: [&str; 2] = ["GrokSerDe", "RegexSerDe"];
        if FOREIGN_INPUTS.iter().any(|f| self.input_format.contains(f))
            || FOREIGN_SERDES.iter().any(|f| self.serde.library.contains(f))
        {
            return Err(crate::error::Error::query(format!(
                "{name} is stored as {} ({}): etl reads Parquet, CSV and JSON tables",
                self.input_format, self.serde.library
            )));
        }
        Ok(())
    }

    /// Whether our runs write the table (and its partitions list its files).
    pub fn is_written(&self) -> bool {
        self.parameters.contains_key(WRITTEN_BY)
    }

    /// The folder a written table's runs write under, writing with the table's encryption.
    pub fn written_root(&self) -> Result<Location> {
        Ok(layout::written_root(&self.location)?.with_encryption(&self.encryption()))
    }

    /// The server-side encryption the table's files are written with.
    pub fn encryption(&self) -> Encryption {
        let parameter = |key: &str| self.parameters.get(key).map(String::as_str);
        Encryption::parse(parameter(ENCRYPTION_PARAMETER), parameter(KMS_KEY_PARAMETER)).unwrap_or_default()
    }

    /// Records the encryption the table's files are written with.
    pub fn set_encryption(&mut self, encryption: &Encryption) {
        let (kind, key) = match encryption {
            Encryption::BucketDefault => return,
            Encryption::Aes256 => ("AES256", None),
            Encryption::Kms(key) => ("aws:kms", Some(key.clone())),
        };
        self.parameters.insert(ENCRYPTION_PARAMETER.to_string(), kind.to_string());
        if let Some(key) = key {
            self.parameters.insert(KMS_KEY_PARAMETER.to_string(), key);
        }
    }

    pub fn schema(&self) -> TableSchema {
        TableSchema { columns: self.columns.clone(), partition_keys: self.partition_keys.clone() }
    }

    /// The columns as Glue declares them: what Athena reads.
    pub fn declared_columns(&self) -> Vec<Column> {
        self.columns
            .iter()
            .map(|c| match self.athena_types.get(&c.name) {
                Some(athena) => Column::new(c.name.clone(), athena.ty.clone()),
                None => c.clone(),
            })
            .collect()
    }

    /// What the recorded definition says of the files crawled so far, as facts an incremental
    /// crawl adds its new files' to (see `infer::athena`).
    pub fn recorded_facts(&self) -> TextFacts {
        let recorded = || {
            self.columns
                .iter()
                .map(|c| {
                    let athena = self.athena_types.get(&c.name).cloned();
                    (c.name.clone(), Recorded { etl_type: c.ty.clone(), athena })
                })
                .collect()
        };
        let library = self.serde.library.as_str();
        match self.format {
            Format::Csv => {
                let open_csv = library == TextSerDe::OPEN_CSV;
                // Before etl chose the SerDe, every CSV table was OpenCSVSerDe and nothing was
                // checked; those are told by the `field.delim` OpenCSVSerDe does not read.
                let checked = !(open_csv && self.serde.parameters.contains_key(FIELD_DELIM));
                let serde = if open_csv { TextSerDe::OpenCsv } else { TextSerDe::LazySimple };
                // Only OpenCSVSerDe's declarations show whether values were empty.
                let emptiness_unknown = !open_csv || !checked;
                let columns = self
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), ColumnFacts { emptiness_unknown, ..ColumnFacts::default() }))
                    .collect();
                TextFacts {
                    quoted: open_csv,
                    columns,
                    recorded_serde: checked.then_some(serde),
                    recorded: if checked { recorded() } else { BTreeMap::new() },
                    ..TextFacts::default()
                }
            }
            Format::Json => {
                let mut facts = TextFacts {
                    recorded_serde: Some(TextSerDe::OpenXJson),
                    recorded: recorded(),
                    ..TextFacts::default()
                };
                let key_of = |name: &str| {
                    self.serde.parameters.get(&format!("{MAPPING}{name}")).cloned().unwrap_or_else(|| name.to_string())
                };
                for column in &self.columns {
                    let mut path = vec![column.name.clone()];
                    facts.saw_json_key(&path, &key_of(&column.name));
                    recorded_json_keys(&column.ty, &mut path, &key_of, &mut facts);
                }
                facts
            }
            Format::Parquet => TextFacts::default(),
        }
    }

    pub fn csv_dialect(&self) -> Dialect {
        let char_of = |value: Option<&String>, default: u8| value.and_then(|v| v.bytes().next()).unwrap_or(default);
        let parameter = |key: &str| self.serde.parameters.get(key);
        // Hive's LazySimpleSerDe without `field.delim` splits at `serialization.format`, a
        // character or its byte code ("1", Hive's default: \x01); OpenCSVSerDe at a comma.
        let lazy_default = || match parameter("serialization.format").map(String::as_str) {
            Some(code) if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) => code.parse::<u8>().ok(),
            Some(text) => text.bytes().next(),
            None => None,
        };
        let default = match self.serde.library.contains("LazySimpleSerDe") {
            true => lazy_default().unwrap_or(1),
            false => b',',
        };
        Dialect {
            // OpenCSVSerDe's name for it, else LazySimpleSerDe's.
            delimiter: char_of(parameter(SEPARATOR_CHAR).or(parameter(FIELD_DELIM)), default),
            quote: char_of(parameter(QUOTE_CHAR), b'"'),
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

/// The keys of the struct fields inside `ty`, at `path`.
fn recorded_json_keys(ty: &GlueType, path: &mut Vec<String>, key_of: &dyn Fn(&str) -> String, facts: &mut TextFacts) {
    match ty {
        GlueType::Array(item) => recorded_json_keys(item, path, key_of, facts),
        GlueType::Map(_, value) => recorded_json_keys(value, path, key_of, facts),
        GlueType::Struct(fields) => {
            for field in fields {
                path.push(field.name.clone());
                facts.saw_json_key(path, &key_of(&field.name));
                recorded_json_keys(&field.ty, path, key_of, facts);
                path.pop();
            }
        }
        _ => {}
    }
}

fn parquet_serde() -> SerDe {
    SerDe {
        library: PARQUET_SERDE.to_string(),
        parameters: BTreeMap::from([("serialization.format".to_string(), "1".to_string())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::{InferOptions, infer};

    /// Glue tables other tools registered as ORC, Hudi or Iceberg, or as views, were read as
    /// Parquet files ("Parquet files are at least 8 bytes long"), or failed on an "empty
    /// location".
    #[tokio::test]
    async fn tables_of_other_formats_and_views_are_refused_by_name() {
        let name: crate::catalog::TableName = "raw.t".parse().unwrap();
        let csv = crawl("a.csv", "a\n1\n").await;
        assert!(csv.require_readable(&name).is_ok());
        let orc = TableDefinition {
            input_format: "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat".into(),
            serde: SerDe { library: "org.apache.hadoop.hive.ql.io.orc.OrcSerde".into(), parameters: BTreeMap::new() },
            ..csv.clone()
        };
        let refused = orc.require_readable(&name).unwrap_err();
        assert!(
            refused.message().contains("raw.t is stored as org.apache.hadoop.hive.ql.io.orc.OrcInputFormat"),
            "{refused}"
        );
        let hudi =
            TableDefinition { input_format: "org.apache.hudi.hadoop.HoodieParquetInputFormat".into(), ..csv.clone() };
        assert!(hudi.require_readable(&name).unwrap_err().message().contains("HoodieParquetInputFormat"));
        let iceberg = TableDefinition { parameters: map(&[("table_type", "ICEBERG")]), ..csv.clone() };
        assert!(iceberg.require_readable(&name).unwrap_err().message().contains("raw.t is an Apache Iceberg table"));
        let view = TableDefinition { table_type: "VIRTUAL_VIEW".into(), ..csv };
        assert!(view.require_readable(&name).unwrap_err().message().contains("raw.t is a view"));
    }

    /// A LazySimpleSerDe table another tool registered without `field.delim` was read at
    /// commas ("expected 3 fields, found 2"): Hive splits at `serialization.format`, a byte
    /// code by default ("1", \x01).
    #[tokio::test]
    async fn a_lazy_simple_table_without_field_delim_splits_where_hive_does() {
        let csv = crawl("a.csv", "a,b\n1,2\n").await;
        let lazy = |parameters: &[(&str, &str)]| TableDefinition {
            serde: SerDe { library: TextSerDe::LAZY_SIMPLE.into(), parameters: map(parameters) },
            ..csv.clone()
        };
        assert_eq!(lazy(&[("serialization.format", "1")]).csv_dialect().delimiter, 1);
        assert_eq!(lazy(&[]).csv_dialect().delimiter, 1);
        assert_eq!(lazy(&[("serialization.format", "|")]).csv_dialect().delimiter, b'|');
        assert_eq!(lazy(&[("serialization.format", "9")]).csv_dialect().delimiter, b'\t');
        assert_eq!(lazy(&[("field.delim", ";"), ("serialization.format", ";")]).csv_dialect().delimiter, b';');
        assert_eq!(csv.csv_dialect().delimiter, b',');
    }

    /// The definition a crawl of one file holding `text` records.
    async fn crawl(name: &str, text: &str) -> TableDefinition {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
        let location = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let inferred = infer(&location, &InferOptions::default()).await.unwrap();
        TableDefinition::crawled(location.url(), &inferred)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Rules C21 (tab), C22 (semicolon), C23 (header) and C24 (null format) of the table in
    /// `infer::athena`'s module doc: each SerDe is given exactly the keys it reads.
    #[tokio::test]
    async fn each_csv_serde_gets_the_parameters_it_reads() {
        let tab = crawl("a.tsv", "a\tb\n1\t2\n").await;
        assert_eq!(tab.serde.library, TextSerDe::LAZY_SIMPLE);
        let lazy = map(&[("field.delim", "\t"), ("serialization.format", "\t"), ("serialization.null.format", "")]);
        assert_eq!(tab.serde.parameters, lazy, "C21, C24");
        assert_eq!(tab.parameters["areColumnsQuoted"], "false");
        assert_eq!(tab.parameters.get("skip.header.line.count").map(String::as_str), Some("1"), "C23");

        let semicolon = crawl("a.csv", "a;b\n\"x\";1\n").await;
        assert_eq!(semicolon.serde.library, TextSerDe::OPEN_CSV);
        let open_csv = map(&[("separatorChar", ";"), ("quoteChar", "\""), ("escapeChar", "\\")]);
        assert_eq!(semicolon.serde.parameters, open_csv, "C22");
        assert_eq!(semicolon.parameters["areColumnsQuoted"], "true");

        let headerless = crawl("a.csv", "1,x\n2,y\n").await;
        assert_eq!(headerless.parameters.get("skip.header.line.count"), None, "C23");
        assert!(!headerless.csv_dialect().header);
    }

    /// Our reader finds the dialect under either SerDe's names, and in definitions recorded
    /// before etl chose the SerDe (OpenCSVSerDe with `field.delim` too).
    #[tokio::test]
    async fn the_dialect_reads_back_from_either_serde() {
        let lazy = crawl("a.csv", "a|b\n1|2\n").await;
        assert_eq!(lazy.csv_dialect(), Dialect { delimiter: b'|', quote: b'"', header: true });
        let open_csv = crawl("a.csv", "a;b\n\"x\";1\n").await;
        assert_eq!(open_csv.csv_dialect(), Dialect { delimiter: b';', quote: b'"', header: true });
    }

    /// J1, J2, J3, J9 (`infer::athena`'s rules): `paths` lists the columns; a renamed key is
    /// mapped, at any depth.
    #[tokio::test]
    async fn json_keys_etl_renamed_are_mapped() {
        let definition = crawl("a.json", "{\"Order ID\":1,\"a.b\":true,\"Id\":2,\"c\":{\"Na.me\":\"x\"}}\n").await;
        assert_eq!(definition.serde.library, TextSerDe::OPENX_JSON);
        let expected = map(&[
            ("paths", "order_id,a_b,id,c"),
            ("mapping.order_id", "Order ID"),
            ("mapping.a_b", "a.b"),
            ("mapping.na_me", "Na.me"),
        ]);
        assert_eq!(definition.serde.parameters, expected);
    }

    /// Glue's view and etl's: the declared columns are etl's with Athena's types put in.
    #[tokio::test]
    async fn declared_columns_are_what_athena_reads() {
        let definition = crawl("a.csv", "id,t,n\n\"a\",2020-01-15 10:00:00,1\n\"b\",2020-01-16 10:00:00,\n").await;
        let etl: Vec<String> = definition.columns.iter().map(|c| format!("{} {}", c.name, c.ty)).collect();
        assert_eq!(etl, ["id string", "t timestamp", "n bigint"]);
        let glue: Vec<String> = definition.declared_columns().iter().map(|c| format!("{} {}", c.name, c.ty)).collect();
        assert_eq!(glue, ["id string", "t string", "n string"]);
    }

    /// An incremental crawl of nothing new declares what was declared: the recorded
    /// definition, read back as facts, decides itself. Then what new files add is added.
    #[tokio::test]
    async fn a_recorded_definition_read_as_facts_declares_itself() {
        let samples = [
            ("a.csv", "id,n,t,d\n\"a\",1,2020-01-15 10:00:00,1.5\n\"b\",,2020-01-16 10:00:00,2\n"),
            ("a.csv", "id,n,t\na,1,2020-01-15T10:00:00Z\nb,,2020-01-16 10:00:00\n"),
            ("a.csv", "a,b\n\"x\ny\",1\n"),
            ("a.csv", "a,b\n\"C:\\x\",1\n,2\n"),
            ("a.json", "{\"Order ID\":1,\"u\":18446744073709551615,\"c\":{\"Na.me\":\"x\"}}\n"),
            ("a.json", "{\"na_me\":1,\"c\":{\"Na.me\":\"x\"}}\n{\"Order ID\":1}\n{\"order-id\":2}\n"),
        ];
        for (name, text) in samples {
            let definition = crawl(name, text).await;
            let mut again = definition.clone();
            let declaration = match definition.format {
                Format::Csv => athena::declare_csv(&definition.columns, &definition.recorded_facts()),
                _ => athena::declare_json(&definition.columns, &definition.recorded_facts()),
            };
            again.serde.library = declaration.serde.library().to_string();
            again.athena_types = declaration.athena_types;
            assert_eq!(again, definition, "{text}");
            if definition.format == Format::Json {
                for (name, key) in declaration.mappings {
                    assert_eq!(definition.serde.parameters.get(&format!("{MAPPING}{name}")), Some(&key), "{text}");
                }
            }
        }
    }

    /// A definition etl recorded before it chose SerDes (OpenCSVSerDe, typed, unchecked) is
    /// no evidence: an incremental crawl on top of it declares nothing OpenCSVSerDe could fail on.
    #[test]
    fn a_definition_from_before_serdes_were_chosen_proves_nothing() {
        let legacy = TableDefinition {
            location: "s3://b/t".into(),
            format: Format::Csv,
            columns: vec![Column::new("n", GlueType::BigInt), Column::new("s", GlueType::String)],
            partition_keys: vec![],
            table_type: EXTERNAL_TABLE.into(),
            input_format: TEXT_INPUT_FORMAT.into(),
            output_format: TEXT_OUTPUT_FORMAT.into(),
            serde: SerDe {
                library: TextSerDe::OPEN_CSV.into(),
                parameters: BTreeMap::from([
                    ("separatorChar".into(), ",".into()),
                    ("quoteChar".into(), "\"".into()),
                    ("field.delim".into(), ",".into()),
                ]),
            },
            parameters: BTreeMap::new(),
            athena_types: BTreeMap::new(),
        };
        let declaration = athena::declare_csv(&legacy.columns, &legacy.recorded_facts());
        assert_eq!(declaration.serde, TextSerDe::OpenCsv);
        let declared: Vec<(&str, &str)> =
            declaration.athena_types.iter().map(|(n, a)| (n.as_str(), a.reason.as_str())).collect();
        assert_eq!(declared.len(), 1);
        assert_eq!(declared[0].0, "n");
        assert!(declared[0].1.starts_with("files crawled before the table had quoted fields"), "{declared:?}");
    }
}
