//! What changed between two schemas: the record kept with every catalog version and shown by
//! `etl schema diff` and `etl crawl`.

use serde::{Deserialize, Serialize};

use super::{Column, GlueType, TableSchema};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    Added {
        name: String,
        #[serde(rename = "type")]
        ty: GlueType,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        partition_key: bool,
    },
    Removed {
        name: String,
        #[serde(rename = "type")]
        ty: GlueType,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        partition_key: bool,
    },
    Changed {
        name: String,
        from: GlueType,
        to: GlueType,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        partition_key: bool,
    },
}

impl Change {
    pub fn describe(&self) -> String {
        let key = |pk: bool| if pk { "partition key" } else { "column" };
        match self {
            Change::Added { name, ty, partition_key } => format!("{} {name} {ty} added", key(*partition_key)),
            Change::Removed { name, ty, partition_key } => format!("{} {name} {ty} removed", key(*partition_key)),
            Change::Changed { name, from, to, partition_key } => {
                format!("{} {name} changed from {from} to {to}", key(*partition_key))
            }
        }
    }
}

/// Changes that turn `old` into `new`: data columns first, then partition keys.
pub fn diff(old: &TableSchema, new: &TableSchema) -> Vec<Change> {
    let mut changes = diff_columns(&old.columns, &new.columns, false);
    changes.extend(diff_columns(&old.partition_keys, &new.partition_keys, true));
    changes
}

fn diff_columns(old: &[Column], new: &[Column], partition_key: bool) -> Vec<Change> {
    let mut changes = Vec::new();
    for column in new {
        match old.iter().find(|c| c.name == column.name) {
            None => changes.push(Change::Added { name: column.name.clone(), ty: column.ty.clone(), partition_key }),
            Some(before) if before.ty != column.ty => changes.push(Change::Changed {
                name: column.name.clone(),
                from: before.ty.clone(),
                to: column.ty.clone(),
                partition_key,
            }),
            Some(_) => {}
        }
    }
    for column in old {
        if !new.iter().any(|c| c.name == column.name) {
            changes.push(Change::Removed { name: column.name.clone(), ty: column.ty.clone(), partition_key });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_removed_and_changed_columns() {
        let old = TableSchema {
            columns: vec![Column::new("a", GlueType::BigInt), Column::new("b", GlueType::String)],
            partition_keys: vec![Column::new("dt", GlueType::String)],
        };
        let new = TableSchema {
            columns: vec![Column::new("a", GlueType::Double), Column::new("c", GlueType::Date)],
            partition_keys: vec![Column::new("dt", GlueType::Date)],
        };
        let json = serde_json::to_value(diff(&old, &new)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"op": "changed", "name": "a", "from": "bigint", "to": "double"},
                {"op": "added", "name": "c", "type": "date"},
                {"op": "removed", "name": "b", "type": "string"},
                {"op": "changed", "name": "dt", "from": "string", "to": "date", "partition_key": true},
            ])
        );
        assert!(diff(&old, &old).is_empty());
    }
}
