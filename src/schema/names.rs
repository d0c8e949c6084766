//! Column names as Glue stores them: lower case, letters, digits and underscores.
//!
//! Glue lower-cases names and Athena cannot query a column whose name holds a dot or a space
//! without quoting it everywhere, so `Order ID` becomes `order_id`. Two source names that
//! normalise to the same name are a collision, reported with both spellings rather than
//! resolved by silently dropping one column.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};

use crate::error::{Error, Result};

/// A name as a quoted SQL identifier: a column named `order` or `Amount` means that column.
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `Order ID` -> `order_id`; `Prix (€)` -> `prix`; an empty name becomes `col{index}` as a
/// Glue crawler names headerless columns; a name with no ASCII letter or digit (`名前`) becomes
/// `col_` and a digest of it, the same wherever it stands (in each file, each JSON record).
pub fn normalize(name: &str, index: usize) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_underscore = false;
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            if pending_underscore && !out.is_empty() {
                out.push('_');
            }
            pending_underscore = false;
            out.push(c.to_ascii_lowercase());
        } else if c == '_' {
            out.push('_');
            pending_underscore = false;
        } else {
            pending_underscore = true;
        }
    }
    match (out.is_empty(), name.trim().is_empty()) {
        (false, _) => out,
        (true, true) => format!("col{index}"),
        (true, false) => format!("col_{:08x}", digest(name.trim())),
    }
}

/// A short digest of `text` that tells names apart where they must be shortened or lose their
/// characters: FNV-1a, stable across builds and platforms, which std's hasher does not promise.
pub fn digest(text: &str) -> u32 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)) as u32
}

/// Whether a name is already what [`normalize`] would make of it.
pub fn is_normalized(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Normalises a list of source names, failing on a collision.
/// `what` names where the names come from ("header of data/a.csv").
pub fn normalize_all<'a>(
    names: impl IntoIterator<Item = &'a str>,
    what: &dyn std::fmt::Display,
) -> Result<Vec<String>> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut out = Vec::new();
    for (index, name) in names.into_iter().enumerate() {
        let normalized = normalize(name, index);
        if let Some(previous) = seen.insert(normalized.clone(), name) {
            return Err(Error::input(format!(
                "{what}: columns '{previous}' and '{name}' both become '{normalized}' as Glue column names; rename one of them"
            )));
        }
        out.push(normalized);
    }
    Ok(out)
}

/// `field` named `name`, its struct fields (at any depth) named as Glue names them.
pub fn glue_named_field(field: &Field, name: String) -> Field {
    field.clone().with_name(name).with_data_type(with_glue_field_names(field.data_type()))
}

/// A type with its struct fields, at any depth, named as Glue names columns (`Order ID` is
/// `order_id`), in their order.
pub fn with_glue_field_names(data_type: &DataType) -> DataType {
    let child = |field: &FieldRef| Arc::new(glue_named_field(field, field.name().to_string()));
    match data_type {
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .enumerate()
                .map(|(index, f)| Arc::new(glue_named_field(f, normalize(f.name(), index))))
                .collect::<Fields>(),
        ),
        DataType::List(item) => DataType::List(child(item)),
        DataType::LargeList(item) => DataType::LargeList(child(item)),
        DataType::ListView(item) => DataType::ListView(child(item)),
        DataType::LargeListView(item) => DataType::LargeListView(child(item)),
        DataType::FixedSizeList(item, size) => DataType::FixedSizeList(child(item), *size),
        DataType::Map(entries, sorted) => DataType::Map(child(entries), *sorted),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_what_glue_accepts() {
        assert_eq!(normalize("Order ID", 0), "order_id");
        assert_eq!(normalize("customer.name", 0), "customer_name");
        assert_eq!(normalize("  Total  Amount ", 0), "total_amount");
        assert_eq!(normalize("already_fine_1", 0), "already_fine_1");
        assert_eq!(normalize("Prix (€)", 0), "prix");
        assert_eq!(normalize("", 3), "col3");
        assert_eq!(normalize("€", 4), normalize("€", 0), "named the same wherever it stands");
        assert!(normalize("名前", 1).starts_with("col_") && normalize("名前", 1) != normalize("住所", 2));
        assert_eq!(normalize(" ", 4), "col4");
        assert!(is_normalized("order_id") && !is_normalized("Order"));
    }

    #[test]
    fn a_collision_names_both_spellings() {
        let err = normalize_all(["Order ID", "order_id"], &"header of a.csv").unwrap_err();
        assert!(err.message().contains("'Order ID' and 'order_id' both become 'order_id'"), "{err}");
        assert!(err.message().starts_with("header of a.csv"));
    }
}
