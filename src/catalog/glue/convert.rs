//! Our definitions and partitions in Glue's shapes, and back: what is ours rides in table and
//! partition parameters under `etl.` names, partition values use Hive's null marker.
//!
//! A column Athena is told to read otherwise than etl does is stored with the declared type
//! (what Athena reads), etl's type in its parameters and the reason as its comment, which the
//! Glue console and Athena's DESCRIBE show. Comments hold 255 characters and no line break; a
//! reason that does not fit is cut there and kept whole in the parameters, so a table read back
//! is the one written.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_glue::types::{
    Column as GlueColumn, Partition as GluePartition, PartitionInput, SerDeInfo, StorageDescriptor, Table as GlueTable,
    TableInput,
};
use chrono::{DateTime, Utc};

use crate::catalog::definition::{AthenaType, KEPT_PARAMETERS, SerDe};
use crate::catalog::{DataChange, DataFile, Partition, PartitionWrite, PreparedVersion, TableDefinition, TableName};
use crate::error::{Error, Result};
use crate::layout::{glue_partition_values, partition_values_from_glue};
use crate::schema::{Column, GlueType};
use crate::source::format::Format;

/// Our schema version, in table parameters.
pub(super) const VERSION: &str = "etl.version";
pub(super) const RUN_ID: &str = "etl.run_id";
pub(super) const CHANGE: &str = "etl.change";
pub(super) const DIFF: &str = "etl.diff";
/// A written partition's (or unpartitioned table's) files, in its parameters.
pub(super) const FILES: &str = "etl.files";
/// A written table's data version: what it recorded and where its partitions are listed.
pub(super) const DATA: &str = "etl.data";
/// In a column's parameters: the type etl reads, when Glue declares another for Athena.
const ETL_TYPE: &str = "etl.type";
/// In a column's parameters: the whole reason, when the comment could not hold it.
const ETL_REASON: &str = "etl.reason";
/// The longest comment Glue stores on a column.
const COMMENT_LIMIT: usize = 255;

/// The upsert of the partition with these values, in a written change.
pub(super) fn written_upsert<'a>(data: &'a DataChange, values: &[Option<String>]) -> Option<&'a PartitionWrite> {
    match data {
        DataChange::Written(written) => written.upserts.iter().find(|w| w.partition.values == values),
        _ => None,
    }
}

pub(super) fn current_location(
    table: Option<&GlueTable>,
    partitions: &[GluePartition],
    values: &[Option<String>],
) -> Option<String> {
    let table = table?;
    if values.is_empty() {
        return partition_of_unpartitioned(table).map(|p| p.location);
    }
    partitions
        .iter()
        .find(|p| partition_values_from_glue(p.values()) == values)
        .and_then(|p| p.storage_descriptor()?.location().map(str::to_string))
}

pub(super) fn our_version(table: &GlueTable) -> u64 {
    table
        .parameters()
        .and_then(|p| p.get(VERSION))
        .and_then(|v| v.parse().ok())
        .or_else(|| table.version_id().and_then(|v| v.parse().ok()))
        .unwrap_or(1)
}

/// The data version a Glue table (or one of its archived versions) records.
pub(super) fn data_record(table: &GlueTable) -> Option<PreparedVersion> {
    table.parameters().and_then(|p| p.get(DATA)).and_then(|text| serde_json::from_str(text).ok())
}

pub(super) fn time(value: Option<&aws_sdk_glue::primitives::DateTime>) -> DateTime<Utc> {
    value.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())).unwrap_or_default()
}

fn files_of(parameters: Option<&HashMap<String, String>>) -> Vec<DataFile> {
    parameters.and_then(|p| p.get(FILES)).and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default()
}

pub(super) fn partition_of(partition: &GluePartition) -> Result<Partition> {
    Ok(Partition {
        values: partition_values_from_glue(partition.values()),
        location: partition.storage_descriptor().and_then(|s| s.location()).unwrap_or_default().to_string(),
        files: files_of(partition.parameters()),
    })
}

/// A written unpartitioned table's files, as the one partition of no values.
pub(super) fn partition_of_unpartitioned(table: &GlueTable) -> Option<Partition> {
    let files = files_of(table.parameters());
    if files.is_empty() {
        return None;
    }
    Some(Partition {
        values: Vec::new(),
        location: table.storage_descriptor().and_then(|s| s.location()).unwrap_or_default().to_string(),
        files,
    })
}

/// Columns as etl reads them, and those Athena is declared to read otherwise.
fn columns_of(columns: &[GlueColumn]) -> Result<(Vec<Column>, BTreeMap<String, AthenaType>)> {
    let parse = |name: &str, text: &str| {
        text.parse::<GlueType>().map_err(|e: String| Error::runtime(format!("column {name}: {e}")))
    };
    let mut athena_types = BTreeMap::new();
    let columns = columns
        .iter()
        .map(|c| {
            let declared = parse(c.name(), c.r#type().unwrap_or("string"))?;
            let parameters = c.parameters();
            let Some(ours) = parameters.and_then(|p| p.get(ETL_TYPE)) else {
                return Ok(Column::new(c.name(), declared));
            };
            let reason = parameters.and_then(|p| p.get(ETL_REASON)).map(String::as_str).or(c.comment());
            athena_types.insert(
                c.name().to_string(),
                AthenaType { ty: declared, reason: reason.unwrap_or_default().to_string() },
            );
            Ok(Column::new(c.name(), parse(c.name(), ours)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((columns, athena_types))
}

/// Glue's columns: each with the type Athena is to read, and etl's beside it where it differs.
fn glue_columns(columns: &[Column], athena_types: &BTreeMap<String, AthenaType>) -> Result<Vec<GlueColumn>> {
    columns
        .iter()
        .map(|c| {
            let column = GlueColumn::builder().name(&c.name);
            let column = match athena_types.get(&c.name) {
                None => column.r#type(c.ty.to_string()),
                Some(athena) => {
                    let mut parameters = HashMap::from([(ETL_TYPE.to_string(), c.ty.to_string())]);
                    let comment = comment_of(&athena.reason, COMMENT_LIMIT);
                    if comment != athena.reason {
                        parameters.insert(ETL_REASON.to_string(), athena.reason.clone());
                    }
                    column.r#type(athena.ty.to_string()).comment(comment).set_parameters(Some(parameters))
                }
            };
            column.build().map_err(|e| Error::runtime(e.to_string()))
        })
        .collect()
}

/// `text` as a Glue comment holds it: no control character but tab (Glue's pattern), at most
/// `limit` bytes, cut at a character boundary and marked with an ellipsis.
fn comment_of(text: &str, limit: usize) -> String {
    let text: String = text.chars().map(|c| if c.is_control() && c != '\t' { ' ' } else { c }).collect();
    if text.len() <= limit {
        return text;
    }
    let ellipsis = "…";
    let mut end = limit - ellipsis.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

/// A table's format as Athena tells it, from its SerDe and input format: a table Athena's DDL
/// made has no `classification` parameter (a crawler's has).
fn format_of_storage(library: &str, input_format: &str) -> Format {
    if library.contains("JsonSerDe") {
        Format::Json
    } else if library.contains("OpenCSVSerde") || library.contains("LazySimpleSerDe") {
        Format::Csv
    } else if input_format.contains("TextInputFormat") && !library.contains("Parquet") {
        Format::Csv
    } else {
        Format::Parquet
    }
}

/// Our definition of a Glue table.
pub(super) fn definition_of(table: &GlueTable) -> Result<TableDefinition> {
    let storage = table.storage_descriptor();
    let serde = storage.and_then(|s| s.serde_info());
    let parameters: BTreeMap<String, String> = table
        .parameters()
        .map(|p| {
            p.iter()
                .filter(|(k, _)| !k.starts_with("etl.") || KEPT_PARAMETERS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let library = serde.and_then(|s| s.serialization_library()).unwrap_or_default();
    let input_format = storage.and_then(|s| s.input_format()).unwrap_or_default();
    let format = parameters
        .get("classification")
        .and_then(|c| c.parse::<Format>().ok())
        .unwrap_or_else(|| format_of_storage(library, input_format));
    let (columns, athena_types) = columns_of(storage.map(|s| s.columns()).unwrap_or_default())?;
    Ok(TableDefinition {
        location: storage.and_then(|s| s.location()).unwrap_or_default().to_string(),
        format,
        columns,
        partition_keys: columns_of(table.partition_keys())?.0,
        table_type: table.table_type().unwrap_or("EXTERNAL_TABLE").to_string(),
        input_format: storage.and_then(|s| s.input_format()).unwrap_or_default().to_string(),
        output_format: storage.and_then(|s| s.output_format()).unwrap_or_default().to_string(),
        serde: SerDe {
            library: serde.and_then(|s| s.serialization_library()).unwrap_or_default().to_string(),
            parameters: serde.and_then(|s| s.parameters()).map(|p| p.clone().into_iter().collect()).unwrap_or_default(),
        },
        parameters,
        athena_types,
    })
}

fn storage_descriptor(definition: &TableDefinition) -> Result<StorageDescriptor> {
    Ok(StorageDescriptor::builder()
        .set_columns(Some(glue_columns(&definition.columns, &definition.athena_types)?))
        .location(&definition.location)
        .input_format(&definition.input_format)
        .output_format(&definition.output_format)
        .compressed(false)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(&definition.serde.library)
                .set_parameters(Some(definition.serde.parameters.clone().into_iter().collect()))
                .build(),
        )
        .build())
}

pub(super) fn table_input(
    name: &TableName,
    definition: &TableDefinition,
    parameters: HashMap<String, String>,
) -> Result<TableInput> {
    TableInput::builder()
        .name(&name.table)
        .table_type(&definition.table_type)
        .set_parameters(Some(parameters))
        .storage_descriptor(storage_descriptor(definition)?)
        .set_partition_keys(Some(glue_columns(&definition.partition_keys, &BTreeMap::new())?))
        .build()
        .map_err(|e| Error::runtime(e.to_string()))
}

/// A partition as Glue stores it: the table's storage, at the partition's folder.
pub(super) fn partition_input(template: &StorageDescriptor, partition: &Partition) -> Result<PartitionInput> {
    let mut storage = template.clone();
    storage.location = Some(partition.location.clone());
    let mut parameters = HashMap::new();
    if !partition.files.is_empty() {
        parameters.insert(FILES.to_string(), serde_json::to_string(&partition.files)?);
    }
    Ok(PartitionInput::builder()
        .set_values(Some(glue_partition_values(&partition.values)))
        .storage_descriptor(storage)
        .set_parameters(Some(parameters))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::definition::{PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, PARQUET_SERDE};
    use crate::layout::HIVE_NULL_PARTITION;
    use crate::schema::TableSchema;

    fn schema() -> TableSchema {
        TableSchema {
            columns: vec![Column::new("id", GlueType::BigInt), Column::new("tags", "array<string>".parse().unwrap())],
            partition_keys: vec![Column::new("dt", GlueType::Date)],
        }
    }

    fn file(path: &str) -> DataFile {
        DataFile {
            path: path.into(),
            size: 10,
            rows: 2,
            job: "j".into(),
            logical_date: "2026-11-30".into(),
            ..DataFile::default()
        }
    }

    fn glue_table(parameters: &[(&str, &str)], version_id: Option<&str>) -> GlueTable {
        let definition = TableDefinition::parquet("s3://b/t".into(), &schema(), "zstd", "j");
        let input = table_input(&"db.t".parse().unwrap(), &definition, HashMap::new()).unwrap();
        GlueTable::builder()
            .name("t")
            .set_table_type(input.table_type().map(str::to_string))
            .set_storage_descriptor(input.storage_descriptor().cloned())
            .set_partition_keys(Some(input.partition_keys().to_vec()))
            .set_parameters(Some(parameters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
            .set_version_id(version_id.map(str::to_string))
            .build()
            .unwrap()
    }

    #[test]
    fn a_table_input_is_what_athena_reads() {
        let definition = TableDefinition::parquet("s3://b/t".into(), &schema(), "zstd", "j");
        let parameters = HashMap::from([("etl.version".to_string(), "3".to_string())]);
        let input = table_input(&"db.t".parse().unwrap(), &definition, parameters).unwrap();
        assert_eq!(input.name(), "t");
        assert_eq!(input.table_type(), Some("EXTERNAL_TABLE"));
        assert_eq!(input.parameters().unwrap()["etl.version"], "3");
        let storage = input.storage_descriptor().unwrap();
        assert_eq!(storage.location(), Some("s3://b/t"));
        assert_eq!(storage.input_format(), Some(PARQUET_INPUT_FORMAT));
        assert_eq!(storage.output_format(), Some(PARQUET_OUTPUT_FORMAT));
        assert_eq!(storage.serde_info().unwrap().serialization_library(), Some(PARQUET_SERDE));
        let columns: Vec<(&str, Option<&str>)> = storage.columns().iter().map(|c| (c.name(), c.r#type())).collect();
        assert_eq!(columns, [("id", Some("bigint")), ("tags", Some("array<string>"))]);
        let keys: Vec<(&str, Option<&str>)> = input.partition_keys().iter().map(|c| (c.name(), c.r#type())).collect();
        assert_eq!(keys, [("dt", Some("date"))]);
    }

    #[test]
    fn a_definition_read_back_keeps_ours_and_drops_our_bookkeeping() {
        let definition = TableDefinition::parquet("s3://b/t".into(), &schema(), "zstd", "j");
        let mut parameters: Vec<(&str, &str)> =
            definition.parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        parameters.extend([(VERSION, "4"), (RUN_ID, "r1"), (DIFF, "[]"), (FILES, "[]"), ("etl.null_values", "[]")]);
        let table = glue_table(&parameters, Some("9"));
        let mut expected = definition.clone();
        expected.parameters.insert("etl.null_values".into(), "[]".into());
        assert_eq!(definition_of(&table).unwrap(), expected);
        assert_eq!(our_version(&table), 4);
        // A table some other tool made: Glue's own version counts, or 1.
        assert_eq!(our_version(&glue_table(&[], Some("9"))), 9);
        assert_eq!(our_version(&glue_table(&[], None)), 1);
    }

    /// A crawled CSV table as Glue stores it: Athena's types, etl's beside them, the reason as
    /// the comment (whole in the parameters when the comment cannot hold it); and back.
    #[test]
    fn columns_athena_reads_otherwise_carry_etl_type_and_reason() {
        let long = format!("{}é and more", "x".repeat(251));
        let definition = TableDefinition {
            location: "s3://b/flights".into(),
            format: Format::Csv,
            columns: vec![
                Column::new("year", GlueType::BigInt),
                Column::new("dep_delay", GlueType::Double),
                Column::new("time_hour", GlueType::Timestamp),
                Column::new("note", GlueType::String),
            ],
            partition_keys: vec![Column::new("dt", GlueType::Date)],
            table_type: "EXTERNAL_TABLE".into(),
            input_format: "org.apache.hadoop.mapred.TextInputFormat".into(),
            output_format: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat".into(),
            serde: SerDe {
                library: "org.apache.hadoop.hive.serde2.OpenCSVSerde".into(),
                parameters: BTreeMap::from([("separatorChar".into(), ",".into())]),
            },
            parameters: BTreeMap::from([("classification".into(), "csv".into())]),
            athena_types: BTreeMap::from([
                ("dep_delay".into(), AthenaType { ty: GlueType::String, reason: "empty values".into() }),
                ("time_hour".into(), AthenaType { ty: GlueType::String, reason: long.clone() }),
                ("note".into(), AthenaType { ty: GlueType::String, reason: "a\nb".into() }),
            ]),
        };
        let parameters = definition.parameters.clone().into_iter().collect();
        let input = table_input(&"db.flights".parse().unwrap(), &definition, parameters).unwrap();
        let storage = input.storage_descriptor().unwrap();
        // name, type, etl.type, comment (when short), length of etl.reason
        let stored: Vec<String> = storage
            .columns()
            .iter()
            .map(|c| {
                let parameter = |key: &str| c.parameters().and_then(|p| p.get(key));
                format!(
                    "{} {} {:?} {:?} {:?}",
                    c.name(),
                    c.r#type().unwrap(),
                    parameter(ETL_TYPE),
                    c.comment().filter(|c| c.len() < 100),
                    parameter(ETL_REASON).map(String::len)
                )
            })
            .collect();
        assert_eq!(
            stored,
            [
                "year bigint None None None".to_string(),
                "dep_delay string Some(\"double\") Some(\"empty values\") None".to_string(),
                format!("time_hour string Some(\"timestamp\") None Some({})", long.len()),
                "note string Some(\"string\") Some(\"a b\") Some(3)".to_string(),
            ]
        );
        let comment = storage.columns()[2].comment().unwrap();
        assert_eq!((comment.len(), comment.ends_with("x…")), (254, true), "cut before the é, within 255 bytes");
        assert!(input.partition_keys()[0].parameters().is_none());
        let table = GlueTable::builder()
            .name("flights")
            .set_table_type(input.table_type().map(str::to_string))
            .set_storage_descriptor(input.storage_descriptor().cloned())
            .set_partition_keys(Some(input.partition_keys().to_vec()))
            .set_parameters(input.parameters().cloned())
            .build()
            .unwrap();
        assert_eq!(definition_of(&table).unwrap(), definition);
    }

    #[test]
    fn a_column_type_glue_holds_and_we_cannot_read_names_the_column() {
        let column = GlueColumn::builder().name("x").r#type("uniontype<int>").build().unwrap();
        let err = columns_of(&[column]).unwrap_err();
        assert!(err.message().starts_with("column x: "), "{err}");
        let untyped = GlueColumn::builder().name("y").build().unwrap();
        assert_eq!(columns_of(&[untyped]).unwrap().0, [Column::new("y", GlueType::String)]);
    }

    #[test]
    fn partitions_carry_their_files_and_null_values_as_hives_marker() {
        let partition = Partition {
            values: vec![None, Some("eu".into())],
            location: "s3://b/t/dt=__HIVE_DEFAULT_PARTITION__/region=eu/run-r1".into(),
            files: vec![file("s3://b/t/dt=__HIVE_DEFAULT_PARTITION__/region=eu/run-r1/part-r1-00000.zstd.parquet")],
        };
        let template = StorageDescriptor::builder().location("s3://b/t").build();
        let input = partition_input(&template, &partition).unwrap();
        assert_eq!(input.values(), [HIVE_NULL_PARTITION, "eu"]);
        assert_eq!(input.storage_descriptor().unwrap().location(), Some(partition.location.as_str()));
        let stored = GluePartition::builder()
            .set_values(Some(input.values().to_vec()))
            .set_storage_descriptor(input.storage_descriptor().cloned())
            .set_parameters(input.parameters().cloned())
            .build();
        assert_eq!(partition_of(&stored).unwrap(), partition);
        assert_eq!(
            current_location(Some(&glue_table(&[], None)), &[stored], &partition.values),
            Some(partition.location.clone())
        );
    }

    #[test]
    fn an_unpartitioned_written_table_is_one_partition_of_no_values() {
        let files = serde_json::to_string(&[file("s3://b/t/run-r1/part-r1-00000.zstd.parquet")]).unwrap();
        let table = glue_table(&[(FILES, &files)], None);
        let partition = partition_of_unpartitioned(&table).unwrap();
        assert_eq!((partition.values.len(), partition.location.as_str(), partition.files.len()), (0, "s3://b/t", 1));
        assert_eq!(current_location(Some(&table), &[], &[]), Some("s3://b/t".to_string()));
        assert!(partition_of_unpartitioned(&glue_table(&[], None)).is_none(), "a crawled table lists no files");
    }

    #[test]
    fn a_written_change_names_its_upsert_by_values() {
        let upsert = |values: Vec<Option<String>>| PartitionWrite {
            partition: Partition { values, location: "l".into(), files: vec![] },
            based_on: None,
        };
        let data = DataChange::Written(crate::catalog::WrittenData {
            upserts: vec![upsert(vec![Some("a".into())]), upsert(vec![])],
            drops: vec![],
            note: Default::default(),
        });
        assert!(written_upsert(&data, &[]).is_some_and(|w| w.partition.values.is_empty()));
        assert!(written_upsert(&data, &[Some("b".into())]).is_none());
        assert!(written_upsert(&DataChange::None, &[]).is_none());
    }

    /// A table made by Athena's DDL has no `classification`: its JSON and CSV tables were read as
    /// Parquet ("Corrupt footer"). The format comes from its SerDe and input format.
    #[test]
    fn a_table_without_classification_takes_its_format_from_its_serde() {
        let text = "org.apache.hadoop.mapred.TextInputFormat";
        assert_eq!(format_of_storage("org.openx.data.jsonserde.JsonSerDe", text), Format::Json);
        assert_eq!(format_of_storage("org.apache.hive.hcatalog.data.JsonSerDe", text), Format::Json);
        assert_eq!(format_of_storage("org.apache.hadoop.hive.serde2.OpenCSVSerde", text), Format::Csv);
        assert_eq!(format_of_storage("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", text), Format::Csv);
        let parquet = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
        assert_eq!(
            format_of_storage("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe", parquet),
            Format::Parquet
        );
    }
}
