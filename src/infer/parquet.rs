//! Parquet inference: the schema in the file's footer, in Glue types.

use datafusion::parquet::arrow::parquet_to_arrow_schema;

use super::FileShape;
use super::shape::Shape;
use crate::catalog::parquet_reader::file_column_type;
use crate::error::{Error, Result};
use crate::location::Location;
use crate::schema::names;
use crate::source::files::SourceFile;
use crate::source::footer;
use crate::source::format::Format;

pub async fn infer(location: &Location, file: &SourceFile) -> Result<FileShape> {
    let display = location.display(&file.path);
    let metadata =
        footer::read(location.store().as_ref(), &file.path, file.size).await.map_err(|e| e.context(&display))?;
    let file_metadata = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(file_metadata.schema_descr(), file_metadata.key_value_metadata())
        .map_err(|e| Error::input(format!("{display}: {e}")))?;
    let original: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let normalized = names::normalize_all(original.iter().copied(), &format!("schema of {display}"))?;
    let columns = schema
        .fields()
        .iter()
        .zip(normalized)
        .map(|(field, name)| {
            let ty = file_column_type(field.data_type())
                .map_err(|e| Error::input(format!("{display}: column {}: {e}", field.name())))?;
            Ok((name, Shape::from_glue(&ty)))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(FileShape {
        format: Format::Parquet,
        columns,
        dialect: None,
        rows: Some(file_metadata.num_rows().max(0) as u64),
        facts: Default::default(),
    })
}
