//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of what the server serves, written out
//! here rather than derived by a macro crate: the API is seven endpoints, and one readable
//! document is less code than annotations on each handler. It stays true to the routes by
//! test: `tests/serve.rs` requests every path and method it lists from the running server,
//! and schemathesis (in `scripts/test`) checks every response against it.

use serde_json::{Value, json};

use super::encode::FORMATS;
use super::rows::DEFAULT_LIMIT;

/// The operations the document describes: method and path, as the router has them.
pub const OPERATIONS: [(&str, &str); 8] = [
    ("get", "/v1/tables"),
    ("get", "/v1/tables/{name}"),
    ("get", "/v1/tables/{name}/rows"),
    ("post", "/v1/query"),
    ("get", "/v1/runs"),
    ("get", "/v1/runs/{id}"),
    ("get", "/v1/cost"),
    ("get", "/v1/openapi.json"),
];

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The answers every endpoint behind a key may give besides its own.
fn keyed(mut responses: Value) -> Value {
    let common = [
        ("400", error("a bad parameter, named with its value")),
        ("401", error("no valid key")),
        ("403", error("the key may not read a table the request reads, or the SQL is not one SELECT")),
        ("408", json!({"description": "the request took longer than the server allows"})),
        ("413", json!({"description": "the request body is too large"})),
    ];
    if let Value::Object(map) = &mut responses {
        for (status, answer) in common {
            map.entry(status).or_insert(answer);
        }
    }
    responses
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// How a response's rows go on past it: a table's pages by cursor, a query's not at all.
enum More {
    NextPage,
    Truncated,
}

fn rows_content(row_cap: usize, more: More) -> Value {
    let mut content = serde_json::Map::new();
    for (_, _, media) in FORMATS {
        let schema = if media == "application/json" {
            json!({"$ref": "#/components/schemas/Rows"})
        } else {
            json!({"type": "string"})
        };
        content.insert(media.to_string(), json!({"schema": schema}));
    }
    let (description, headers) = match more {
        More::NextPage => (
            format!("up to {row_cap} rows; the next page's cursor is in `next_cursor` and the Next-Cursor header"),
            json!({"Next-Cursor": {"schema": {"type": "string"}, "description": "the cursor of the next page"}}),
        ),
        More::Truncated => (
            format!(
                "up to `limit` rows (at most {row_cap}); a query does not page: `next_cursor` is null, and rows past the limit are left out, which the Rows-Truncated header says"
            ),
            json!({"Rows-Truncated": {"schema": {"type": "string", "enum": ["true"]}, "description": "present when the query had more rows than were returned"}}),
        ),
    };
    json!({"description": description, "headers": headers, "content": content})
}

/// A response with OpenAPI links: how its values feed other operations (schemathesis follows
/// them to reach tables and runs that exist).
fn linked(mut response: Value, links: Value) -> Value {
    response["links"] = links;
    response
}

fn too_busy() -> Value {
    json!({
        "description": "too many queries at once: retry after the seconds Retry-After says",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

pub fn document(row_cap: usize) -> Value {
    let formats: Vec<&str> = FORMATS.iter().map(|(_, name, _)| *name).collect();
    let table_name = json!({
        "name": "name", "in": "path", "required": true,
        "description": "DATABASE.TABLE",
        "schema": {"type": "string", "pattern": "^[a-z0-9_]{1,255}\\.[a-z0-9_]{1,255}$"}
    });
    let format = json!({
        "name": "format", "in": "query", "required": false,
        "description": "the answer's format (else from Accept; else json)",
        "schema": {"type": "string", "enum": formats}
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "etl",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Read-only access to the tables etl publishes, their runs and what Athena would bill."
        },
        "components": {
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer", "description": "a secret from `etl serve keys create`"}},
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {
                        "type": "object", "required": ["message"],
                        "properties": {
                            "message": {"type": "string"},
                            "parameter": {"type": "string"},
                            "value": {"type": "string"}
                        }
                    }}
                },
                "Rows": {
                    "type": "object", "required": ["columns", "rows", "next_cursor"],
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "rows": {"type": "array", "items": {"type": "array"}},
                        "next_cursor": {"type": ["string", "null"]}
                    }
                },
                "Table": {
                    "type": "object", "required": ["table", "version", "format", "location", "written"],
                    "properties": {
                        "table": {"type": "string"},
                        "version": {"type": "integer"},
                        "format": {"type": "string"},
                        "location": {"type": "string"},
                        "written": {"type": "boolean"},
                        "created_at": {"type": "string"},
                        "updated_at": {"type": "string"}
                    }
                },
                "Run": {
                    "type": "object", "required": ["run_id", "job", "logical_date", "status"],
                    "properties": {
                        "run_id": {"type": "string"},
                        "job": {"type": "string"},
                        "logical_date": {"type": "string"},
                        "status": {"type": "string", "enum": ["running", "succeeded", "failed"]}
                    }
                }
            }
        },
        "security": [{"key": []}],
        "paths": {
            "/v1/tables": {"get": {
                "operationId": "listTables",
                "summary": "The tables the key may read",
                "responses": keyed(json!({"200": linked(ok("the tables", json!({
                    "type": "object", "required": ["tables"],
                    "properties": {"tables": {"type": "array", "items": {"$ref": "#/components/schemas/Table"}}}
                })), json!({
                    "table": {"operationId": "getTable", "parameters": {"name": "$response.body#/tables/0/table"}},
                    "rows": {"operationId": "getRows", "parameters": {"name": "$response.body#/tables/0/table"}}
                }))}))
            }},
            "/v1/tables/{name}": {"get": {
                "operationId": "getTable",
                "summary": "A table: definition, schema versions, data versions, partitions, last run",
                "parameters": [table_name],
                "responses": keyed(json!({
                    "200": ok("the table", json!({"allOf": [{"$ref": "#/components/schemas/Table"}, {
                        "type": "object",
                        "required": ["columns", "partition_keys", "versions", "data_versions", "partitions", "last_run"],
                        "properties": {
                            "columns": {"type": "array"}, "partition_keys": {"type": "array"},
                            "versions": {"type": "array"}, "data_versions": {"type": "array"},
                            "partitions": {"type": "array"},
                            "last_run": {"anyOf": [{"$ref": "#/components/schemas/Run"}, {"type": "null"}]}
                        }
                    }]})),
                    "404": error("no such table")
                }))
            }},
            "/v1/tables/{name}/rows": {"get": {
                "operationId": "getRows",
                "summary": "A page of a table's rows, filtered in the scan",
                "parameters": [
                    table_name,
                    {"name": "columns", "in": "query", "required": false, "description": "comma-separated columns (default: all)",
                     "schema": {"type": "string"}},
                    {"name": "where", "in": "query", "required": false, "style": "form", "explode": true,
                     "description": "COLUMN:OP:VALUE with OP one of eq ne lt le gt ge in (in: comma-separated values, a value holding a comma in double quotes, as in CSV); several combine with AND",
                     "schema": {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:(eq|ne|lt|le|gt|ge|in):.*$"}}},
                    {"name": "order", "in": "query", "required": false, "description": "comma-separated COLUMN or COLUMN:desc",
                     "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "required": false,
                     "schema": {"type": "integer", "minimum": 1, "maximum": row_cap, "default": DEFAULT_LIMIT.min(row_cap)}},
                    {"name": "cursor", "in": "query", "required": false, "description": "next_cursor of the previous page",
                     "schema": {"type": "string"}},
                    format
                ],
                "responses": keyed(json!({
                    "200": rows_content(row_cap, More::NextPage),
                    "404": error("no such table"),
                    "410": error("the cursor's version of the table is gone"),
                    "429": too_busy(),
                    "504": error("the query took longer than the server's limit")
                }))
            }},
            "/v1/query": {"post": {
                "summary": "One read-only SELECT over the key's tables, parameters bound as values",
                "parameters": [format],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["sql"], "additionalProperties": false,
                    "properties": {
                        "sql": {"type": "string", "description": "one SELECT; $name placeholders"},
                        "params": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
                        "limit": {"type": "integer", "minimum": 1, "maximum": row_cap}
                    }
                }}}},
                "responses": keyed(json!({
                    "200": rows_content(row_cap, More::Truncated),
                    "429": too_busy(),
                    "504": error("the query took longer than the server's limit")
                }))
            }},
            "/v1/runs": {"get": {
                "operationId": "listRuns",
                "summary": "Runs that read or wrote the key's tables, newest first",
                "parameters": [
                    {"name": "job", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "status", "in": "query", "required": false, "schema": {"type": "string", "enum": ["running", "succeeded", "failed"]}},
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}}
                ],
                "responses": keyed(json!({"200": linked(ok("the runs", json!({
                    "type": "object", "required": ["runs"],
                    "properties": {"runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}}}
                })), json!({"run": {"operationId": "getRun", "parameters": {"id": "$response.body#/runs/0/run_id"}}}))}))
            }},
            "/v1/runs/{id}": {"get": {
                "operationId": "getRun",
                "summary": "A run's report",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": keyed(json!({
                    "200": ok("the run's report", json!({"$ref": "#/components/schemas/Run"})),
                    "404": error("no such run")
                }))
            }},
            "/v1/cost": {"get": {
                "summary": "What Athena would bill for a SELECT, from metadata only",
                "parameters": [
                    {"name": "sql", "in": "query", "required": true, "schema": {"type": "string"}},
                    {"name": "price_per_tb", "in": "query", "required": false, "schema": {"type": "number", "minimum": 0, "default": 5}}
                ],
                "responses": keyed(json!({
                    "200": ok("the estimate", json!({
                        "type": "object", "required": ["bytes_scanned", "billed_bytes", "usd", "tables"],
                        "properties": {
                            "bytes_scanned": {"type": "integer"}, "billed_bytes": {"type": "integer"},
                            "usd": {"type": "number"}, "tables": {"type": "array"}
                        }
                    })),
                    "429": too_busy()
                }))
            }},
            "/v1/openapi.json": {"get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": ok("the OpenAPI document", json!({"type": "object"}))}
            }}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_exactly_the_operations() {
        let document = document(100);
        let mut listed: Vec<(String, String)> = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                listed.push((method.clone(), path.clone()));
            }
        }
        listed.sort();
        let mut expected: Vec<(String, String)> =
            OPERATIONS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        expected.sort();
        assert_eq!(listed, expected);
    }
}
