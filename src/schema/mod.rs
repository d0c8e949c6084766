//! The vocabulary of shapes every stage speaks: a schema is what a Glue table records, data
//! columns and partition keys, each a lower-case name ([`names`]) and a Glue type
//! ([`types`]). [`widen`] unifies two types, [`diff`] says what changed between two schemas.
//!
//! It sits below the sources (their decoders read into these types) and knows nothing of
//! files: inference, which reads sources to find a schema, is [`crate::infer`].

pub mod diff;
pub mod names;
pub mod types;
pub mod widen;

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

pub use types::GlueType;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: GlueType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: GlueType) -> Self {
        Column { name: name.into(), ty }
    }

    pub fn to_arrow(&self) -> Field {
        // Glue has no NOT NULL; every column may hold nulls.
        Field::new(&self.name, self.ty.to_arrow(), true)
    }
}

/// Data columns and partition keys of a table, in the order Athena shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TableSchema {
    pub columns: Vec<Column>,
    pub partition_keys: Vec<Column>,
}

impl TableSchema {
    /// The partition keys' names, outermost first.
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        self.partition_keys.iter().map(|key| key.name.as_str())
    }

    /// The Arrow schema of the data columns followed by the partition keys: what a SQL query
    /// over the table sees.
    pub fn to_arrow(&self) -> SchemaRef {
        Arc::new(Schema::new(self.columns.iter().chain(&self.partition_keys).map(Column::to_arrow).collect::<Vec<_>>()))
    }

    /// The Arrow schema of the data columns only: what the files hold.
    pub fn file_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.columns.iter().map(Column::to_arrow).collect::<Vec<_>>()))
    }
}
