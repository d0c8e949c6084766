//! JSON inference: the shape of the objects in a sample of newline-delimited JSON.
//!
//! Nested objects become structs and arrays become arrays, field names normalised at every
//! depth; integers widen to doubles, and values of kinds no single type holds become strings.
//! Lines that are not JSON objects are skipped here (the reader reports them as bad records);
//! a sample with no object at all is an error.
//!
//! The key each field came from is kept beside its shape (`TextFacts::json_keys`): etl finds
//! `Order ID` as `order_id`, but Athena's OpenX SerDe needs to be told.

use serde_json::Value;

use super::FileShape;
use super::athena::TextFacts;
use super::shape::{Shape, merge};
use crate::error::{Error, Result};
use crate::schema::GlueType;
use crate::schema::names;
use crate::source::format::{Format, strip_bom};
use crate::source::json::{is_array_document, not_ndjson_error};

pub fn infer(sample: &[u8], complete: bool, file: &str, sample_rows: usize) -> Result<FileShape> {
    if is_array_document(sample) {
        return Err(not_ndjson_error(file));
    }
    let mut lines: Vec<&[u8]> = sample.split(|b| *b == b'\n').collect();
    if !complete && lines.len() > 1 {
        lines.pop(); // cut by the end of the sample
    }
    let mut columns: Vec<(String, Shape)> = Vec::new();
    let mut facts = TextFacts::default();
    let mut path = Vec::new();
    let mut objects = 0usize;
    let mut first_problem: Option<String> = None;
    for (index, line) in lines.iter().enumerate() {
        if sample_rows > 0 && objects >= sample_rows {
            break;
        }
        let line = line.trim_ascii();
        let line = if index == 0 { strip_bom(line) } else { line };
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(map)) => {
                let Shape::Struct(fields) = object_shape(&map, file, index + 1, &mut path, &mut facts)? else {
                    unreachable!()
                };
                columns = merge(&columns, &fields);
                objects += 1;
            }
            Ok(_) => {
                first_problem.get_or_insert_with(|| format!("line {}: not a JSON object", index + 1));
            }
            Err(e) => {
                first_problem.get_or_insert_with(|| format!("line {}: {e}", index + 1));
            }
        }
    }
    if objects == 0 {
        if let Some(problem) = first_problem {
            return Err(Error::input(format!("{file}: not newline-delimited JSON ({problem})")));
        }
    }
    Ok(FileShape { format: Format::Json, columns, dialect: None, rows: None, facts })
}

/// The shape of an object at `path` (Glue names from the top), noting in `facts` the key each
/// field comes from: the OpenX SerDe needs a mapping for a key etl renamed.
fn object_shape(
    map: &serde_json::Map<String, Value>,
    file: &str,
    line: usize,
    path: &mut Vec<String>,
    facts: &mut TextFacts,
) -> Result<Shape> {
    let mut fields: Vec<(String, Shape)> = Vec::with_capacity(map.len());
    let mut originals: Vec<&str> = Vec::with_capacity(map.len());
    for (key, value) in map {
        // As the reader renames keys, which sees one at a time and not where it stands.
        let name = names::normalize(key, 0);
        if let Some(at) = fields.iter().position(|(n, _)| *n == name) {
            return Err(Error::input(format!(
                "{file} line {line}: keys '{}' and '{key}' both become '{name}' as Glue column names",
                originals[at]
            )));
        }
        path.push(name);
        facts.saw_json_key(path, key);
        let shape = value_shape(value, file, line, path, facts);
        let name = path.pop().unwrap_or_default();
        fields.push((name, shape?));
        originals.push(key);
    }
    Ok(Shape::Struct(fields))
}

fn value_shape(value: &Value, file: &str, line: usize, path: &mut Vec<String>, facts: &mut TextFacts) -> Result<Shape> {
    Ok(match value {
        Value::Null => Shape::Unknown,
        Value::Bool(_) => Shape::Scalar(GlueType::Boolean),
        Value::Number(n) if n.is_i64() => Shape::Scalar(GlueType::BigInt),
        Value::Number(n) if n.is_u64() => Shape::Scalar(GlueType::decimal(20, 0)),
        Value::Number(_) => Shape::Scalar(GlueType::Double),
        Value::String(_) => Shape::Scalar(GlueType::String),
        Value::Array(items) => {
            let mut item = Shape::Unknown;
            for value in items {
                item = item.widen(&value_shape(value, file, line, path, facts)?);
            }
            Shape::Array(Box::new(item))
        }
        Value::Object(map) => object_shape(map, file, line, path, facts)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(text: &str) -> Vec<(String, String)> {
        infer(text.as_bytes(), true, "t.json", 0)
            .unwrap()
            .columns
            .iter()
            .map(|(n, s)| (n.clone(), s.finish().to_string()))
            .collect()
    }

    #[test]
    fn nested_objects_arrays_and_widening() {
        let text = r#"{"Id":1,"amount":5,"customer":{"Name":"a"},"tags":[]}
{"id":2,"amount":5.5,"customer":{"name":"b","tier":3},"tags":["x"],"note":null}
{"id":3,"amount":6,"extra":true}"#;
        let expected = vec![
            ("id", "bigint"),
            ("amount", "double"),
            ("customer", "struct<name:string,tier:bigint>"),
            ("tags", "array<string>"),
            ("note", "string"),
            ("extra", "boolean"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(columns(text), expected);
    }

    #[test]
    fn kinds_that_disagree_become_strings() {
        let cols = columns("{\"a\":1,\"b\":{\"x\":1}}\n{\"a\":\"one\",\"b\":2}\n");
        assert_eq!(cols[0].1, "string");
        assert_eq!(cols[1].1, "string");
    }

    #[test]
    fn colliding_keys_and_non_json_are_errors() {
        let err = infer(b"{\"A\":1,\"a\":2}\n", true, "t.json", 0).unwrap_err();
        assert!(err.message().contains("t.json line 1: keys 'A' and 'a' both become 'a'"), "{err}");
        let err = infer(b"a,b\n1,2\n", true, "t.json", 0).unwrap_err();
        assert!(err.message().contains("not newline-delimited JSON"), "{err}");
        let err = infer(b"[{\"a\":1}]", true, "t.json", 0).unwrap_err();
        assert!(err.message().contains("JSON array document"), "{err}");
    }

    #[test]
    fn a_cut_sample_ignores_its_last_line() {
        let shape = infer(b"{\"a\":1}\n{\"a\":2.5, \"b\"", false, "t.json", 0).unwrap();
        assert_eq!(shape.columns.len(), 1);
        assert_eq!(shape.columns[0].1.finish(), GlueType::BigInt);
    }
}
