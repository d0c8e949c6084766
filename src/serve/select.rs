//! One read-only SELECT from a caller: parsed by DataFusion's own parser, planned with its
//! parameters bound as values (as `etl sql` binds them), and refused unless it only reads
//! catalog tables the caller's key may read.
//!
//! The statement is judged twice, on purpose: its syntax must be a query (so `SELECT … INTO`,
//! DDL, DML, `COPY`, `SET` and `EXPLAIN ANALYZE` never get planned), and its plan must pass
//! DataFusion's own read-only check (`SQLOptions` with DDL, DML and statements refused). The
//! tables it reads are taken from the plan's scans, subqueries included, not from the text:
//! views, CTEs and aliases are then already resolved. `information_schema` (which lists every
//! table) and `version_of` (which names its table in a string) are refused outright.

use std::collections::BTreeSet;

use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{SetExpr, Statement as SqlStatement};

use super::error::{ApiError, ApiResult};
use super::keys::Key;
use crate::catalog::TableName;
use crate::catalog::provider::{SESSION_SCHEMA, VersionOf};
use crate::transform::params::Params;
use crate::transform::script;

/// A planned SELECT and the catalog tables it reads.
pub struct Select {
    pub plan: LogicalPlan,
    pub tables: BTreeSet<TableName>,
}

/// Plans `sql`, which must be one SELECT reading only tables `key` may read.
pub async fn plan(ctx: &SessionContext, sql: &str, params: &Params, key: &Key) -> ApiResult<Select> {
    let statements = script::split(sql);
    let statement = match statements.as_slice() {
        [one] => one,
        [] => return Err(ApiError::parameter("sql", sql, "no SQL statement")),
        // Anything but one SELECT is refused as forbidden, several statements too.
        _ => return Err(ApiError::forbidden("only one statement, a SELECT, may be run here: the API is read-only")),
    };
    script::refuse_long_operator_chains("sql", statement)?;
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let parsed = match state.sql_to_statement(&statement.text, &dialect) {
        Ok(parsed) => parsed,
        // Planning fails the same way, with the message `etl sql` gives (line, token).
        Err(_) => {
            return Err(script::plan_statement(ctx, "sql", statement, params)
                .await
                .err()
                .map_or_else(|| ApiError::parameter("sql", sql, "does not parse"), ApiError::from));
        }
    };
    // `WITH x AS (…) INSERT …` parses as a query whose body writes.
    let is_query = matches!(&parsed, DfStatement::Statement(inner) if matches!(inner.as_ref(),
        SqlStatement::Query(query) if !matches!(query.body.as_ref(),
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_))));
    if !is_query {
        return Err(ApiError::forbidden("only a SELECT may be run here: the API is read-only"));
    }
    // The tables the text names, judged before planning: a name outside the key's tables is
    // refused whether or not it exists, so the API tells a caller nothing about it.
    let functions: BTreeSet<&str> = state.table_functions().keys().map(String::as_str).collect();
    for reference in state.resolve_table_references(&parsed)? {
        if let Some(name) = catalog_table(&reference, &functions)? {
            if !key.may_read(&name) {
                return Err(ApiError::forbidden(format!("key '{}' may not read {name}", key.name)));
            }
        }
    }
    let plan = script::plan_statement(ctx, "sql", statement, params).await.map_err(|e| {
        // Planning names the catalog's closest tables to one it does not find, any of them.
        let message = e.message();
        let message = match message.split_once(" (did you mean ") {
            Some((before, _)) => format!("{before} (GET /v1/tables lists the tables this key may read)"),
            None => message.to_string(),
        };
        let mut error = ApiError::from(crate::error::Error::new(e.kind(), message));
        // A statement that does not plan is the `sql` parameter's fault, as a bad filter is
        // `where`'s.
        if error.status == axum::http::StatusCode::BAD_REQUEST {
            error.parameter = Some("sql".to_string());
        }
        error
    })?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| ApiError::forbidden(format!("only a SELECT may be run here: {e}")))?;
    let tables = tables_read(&plan, &functions)?;
    if let Some(refused) = tables.iter().find(|t| !key.may_read(t)) {
        return Err(ApiError::forbidden(format!("key '{}' may not read {refused}", key.name)));
    }
    Ok(Select { plan, tables })
}

/// The catalog tables a plan scans; an error for scans the API does not serve.
fn tables_read(plan: &LogicalPlan, functions: &BTreeSet<&str>) -> ApiResult<BTreeSet<TableName>> {
    // A recursive CTE reads its own rows so far as a table of its name: no catalog's.
    let mut recursive = BTreeSet::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::RecursiveQuery(query) = node {
            recursive.insert(query.name.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let mut tables = BTreeSet::new();
    let mut refused = None;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if scan.table_name.schema().is_none() && recursive.contains(scan.table_name.table()) {
                return Ok(TreeNodeRecursion::Continue);
            }
            match catalog_table(&scan.table_name, functions) {
                Ok(Some(name)) => {
                    tables.insert(name);
                }
                Ok(None) => {}
                Err(error) => {
                    refused = Some(error);
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match refused {
        Some(error) => Err(error),
        None => Ok(tables),
    }
}

/// The catalog table a scan reads; `None` for a table function that reads no table (`range`,
/// `generate_series`: one of `functions`).
fn catalog_table(reference: &TableReference, functions: &BTreeSet<&str>) -> ApiResult<Option<TableName>> {
    match reference.schema() {
        Some("information_schema") => {
            Err(ApiError::forbidden("information_schema is not served: GET /v1/tables lists the tables a key may read"))
        }
        Some(SESSION_SCHEMA) | None => {
            let name = reference.table();
            if name.trim_end_matches("()") == VersionOf::NAME {
                return Err(ApiError::forbidden(format!(
                    "{}() is not served by the API: GET /v1/tables/{{table}} lists a table's versions",
                    VersionOf::NAME
                )));
            }
            if name.ends_with("()") || functions.contains(name) {
                return Ok(None);
            }
            Err(ApiError::forbidden(format!("{reference} is not a catalog table (DATABASE.TABLE)")))
        }
        Some(database) => TableName::new(database, reference.table())
            .map(Some)
            .map_err(|e| ApiError::forbidden(format!("{reference}: {e}"))),
    }
}
