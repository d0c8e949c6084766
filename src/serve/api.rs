//! The `/v1` endpoints: tables, rows, one SELECT, runs and the Athena estimate. Each handler
//! checks the key's tables first (403), then its parameters (400), then reads; the two that
//! scan (`rows`, `query`) answer from the cache when they can and otherwise wait for a slot.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::SecondsFormat;
use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Server;
use super::cache::{Cache, CacheKey, Cached};
use super::encode::{Format, encode};
use super::error::{ApiError, ApiResult};
use super::keys::Key;
use super::log::Served;
use super::rows::{RowsRequest, plan_page, table_state};
use super::select;
use crate::catalog::{Table, TableName};
use crate::cost::CostOptions;
use crate::cost::billing::DEFAULT_PRICE_PER_TB;
use crate::runs::RunStatus;
use crate::runs::report::RunReport;
use crate::transform::params::{Params, check_name};
use crate::transform::session::{EngineOptions, session};

/// The header that carries the next page's cursor for formats without an envelope.
pub const NEXT_CURSOR: &str = "next-cursor";
/// Runs `GET /v1/runs` returns when `limit` is not given.
const DEFAULT_RUNS: usize = 100;

/// `GET /v1/tables`: the tables the key may read.
pub async fn tables(State(server): State<Arc<Server>>, Extension(key): Extension<Key>) -> ApiResult<Response> {
    let mut tables = Vec::new();
    for database in server.catalog.databases().await? {
        for name in server.catalog.tables(&database).await? {
            let Ok(name) = TableName::new(&database, &name) else { continue };
            if !key.may_read(&name) {
                continue;
            }
            if let Some(table) = server.catalog.table(&name).await? {
                tables.push(table_summary(&table));
            }
        }
    }
    Ok(axum::Json(json!({ "tables": tables })).into_response())
}

fn table_summary(table: &Table) -> Value {
    json!({
        "table": table.name.to_string(),
        "version": table.version,
        "format": table.definition.format.to_string(),
        "location": table.definition.location,
        "written": table.definition.is_written(),
        "created_at": table.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "updated_at": table.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// The table a path names, if the key may read it (403 first: a key learns nothing about
/// tables outside its patterns, not even whether they exist).
async fn readable_table(server: &Server, key: &Key, name: &str) -> ApiResult<Table> {
    let name: TableName =
        name.parse().map_err(|e: crate::error::Error| ApiError::parameter("table", name, e.message()))?;
    if !key.may_read(&name) {
        return Err(ApiError::forbidden(format!("key '{}' may not read {name}", key.name)));
    }
    server.catalog.table(&name).await?.ok_or_else(|| ApiError::not_found(format!("table {name} does not exist")))
}

/// `GET /v1/tables/{db.table}`: definition, schema versions, data versions, partitions, last run.
pub async fn table(
    State(server): State<Arc<Server>>,
    Extension(key): Extension<Key>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let table = readable_table(&server, &key, &name).await?;
    let catalog = &server.catalog;
    let versions = catalog.versions(&table.name).await?;
    let data_versions = catalog.data_versions(&table.name).await?;
    let partitions = catalog.partitions(&table.name).await?;
    let keys = &table.definition.partition_keys;
    let partitions: Vec<Value> = partitions
        .iter()
        .map(|p| {
            let values: serde_json::Map<String, Value> =
                keys.iter().zip(&p.values).map(|(k, v)| (k.name.clone(), json!(v))).collect();
            json!({
                "values": values,
                "location": p.location,
                "files": p.files.len(),
                "rows": p.files.iter().map(|f| f.rows).sum::<u64>(),
                "bytes": p.files.iter().map(|f| f.size).sum::<u64>(),
            })
        })
        .collect();
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "created_at": v.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "run_id": v.run_id,
                "change": v.change.as_str(),
                "diff": v.diff,
                "columns": v.definition.columns,
                "partition_keys": v.definition.partition_keys,
            })
        })
        .collect();
    let last_run =
        server.history.list(None, None)?.into_iter().find(|r| writes(r, &table.name)).map(|r| key.redacted(r));
    let mut document = table_summary(&table);
    let fields = [
        ("columns", json!(table.definition.columns)),
        ("partition_keys", json!(table.definition.partition_keys)),
        ("versions", json!(versions)),
        ("data_versions", json!(data_versions)),
        ("partitions", json!(partitions)),
        ("last_run", json!(last_run)),
    ];
    if let Value::Object(map) = &mut document {
        map.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
    }
    Ok(axum::Json(document).into_response())
}

fn writes(run: &RunReport, table: &TableName) -> bool {
    let name = table.to_string();
    run.targets.iter().any(|t| t.table == name)
}

/// `GET /v1/tables/{db.table}/rows`.
pub async fn rows(
    State(server): State<Arc<Server>>,
    Extension(key): Extension<Key>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let table = readable_table(&server, &key, &name).await?;
    let request = RowsRequest::parse(query.as_deref(), server.limits.row_cap)?;
    let format = Format::negotiate(request.format.as_deref(), &headers)?;
    let state = table_state(&table).await?;
    let cache_key = Cache::key(["rows", &name, &state, query.as_deref().unwrap_or(""), format.name()]);
    if let Some(hit) = server.cache.get(&cache_key) {
        return Ok(respond(hit, true));
    }
    let slot = server.limiter.slot().await?;
    let engine =
        EngineOptions { target_partitions: 1, memory_limit: Some(server.limits.memory_limit), ..Default::default() };
    let ctx = session(server.catalog.clone(), Default::default(), &engine).await?;
    let page = plan_page(&ctx, &server.catalog, &table, &request, &server.cursor_secret).await?;
    let (schema, mut batches) = collect(&server, page.frame.clone(), slot).await?;
    let more = batches.iter().map(RecordBatch::num_rows).sum::<usize>() > page.limit;
    if more {
        batches = truncate(batches, page.limit);
    }
    let next_cursor = more.then(|| page.next_cursor());
    let encoded = encode(format, &schema, &batches, next_cursor.as_deref())?;
    let cached = Cached {
        content_type: format.media_type(),
        body: encoded.body,
        next_cursor,
        rows: encoded.rows,
        truncated: false,
    };
    server.cache.put(cache_key, cached.clone());
    Ok(respond(cached, false))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    sql: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
    limit: Option<usize>,
}

/// `POST /v1/query`: one SELECT, parameters bound as values, at most the row cap.
pub async fn query(
    State(server): State<Arc<Server>>,
    Extension(key): Extension<Key>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body: QueryBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::parameter("body", &String::from_utf8_lossy(&body), format!("expected {{\"sql\", \"params\"}}: {e}"))
    })?;
    let format_parameter = url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(name, _)| name == "format")
        .map(|(_, value)| value.into_owned());
    let format = Format::negotiate(format_parameter.as_deref(), &headers)?;
    let cap = server.limits.row_cap;
    let limit = match body.limit {
        Some(n) if (1..=cap).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::parameter("limit", &n.to_string(), format!("expected a number from 1 to {cap}")));
        }
        None => cap,
    };
    let params = bound_params(&body.params)?;
    let request = [
        "query".to_string(),
        body.sql.clone(),
        serde_json::to_string(&body.params).unwrap_or_default(),
        limit.to_string(),
        format.name().to_string(),
    ];
    // A statement seen before is known to be a SELECT of these tables: its cached answer is
    // found without planning it again (planning costs more than the hit itself).
    if let Some(tables) = server.cache.tables_read(&body.sql)
        && tables.iter().all(|t| key.may_read(t))
        && let Some(cache_key) = query_cache_key(&server, &request, &tables).await?
        && let Some(hit) = server.cache.get(&cache_key)
    {
        return Ok(respond(hit, true));
    }
    let engine = EngineOptions { memory_limit: Some(server.limits.memory_limit), ..Default::default() };
    let ctx = session(server.catalog.clone(), Default::default(), &engine).await?;
    let select = select::plan(&ctx, &body.sql, &params, &key).await?;
    let tables: Vec<TableName> = select.tables.into_iter().collect();
    server.cache.remember_tables(&body.sql, tables.clone());
    let cache_key = query_cache_key(&server, &request, &tables).await?;
    if let Some(hit) = cache_key.and_then(|k| server.cache.get(&k)) {
        return Ok(respond(hit, true));
    }
    let slot = server.limiter.slot().await?;
    let frame = DataFrame::new(ctx.state(), select.plan).limit(0, Some(limit + 1))?;
    let (schema, mut batches) = collect(&server, frame, slot).await?;
    let truncated = batches.iter().map(RecordBatch::num_rows).sum::<usize>() > limit;
    if truncated {
        batches = truncate(batches, limit);
    }
    let encoded = encode(format, &schema, &batches, None)?;
    let cached = Cached {
        content_type: format.media_type(),
        body: encoded.body,
        next_cursor: None,
        rows: encoded.rows,
        truncated,
    };
    if let Some(cache_key) = cache_key {
        server.cache.put(cache_key, cached.clone());
    }
    Ok(respond(cached, false))
}

/// The cache key of a query over `tables` in their current state; none when one of them is
/// gone (the query is then planned again, and fails as it should).
async fn query_cache_key(server: &Server, request: &[String], tables: &[TableName]) -> ApiResult<Option<CacheKey>> {
    let mut parts = request.to_vec();
    for name in tables {
        match server.catalog.table(name).await? {
            Some(table) => parts.push(format!("{name}={}", table_state(&table).await?)),
            None => return Ok(None),
        }
    }
    Ok(Some(Cache::key(parts.iter().map(String::as_str))))
}

/// JSON parameter values as typed SQL values: strings, integers, floats and booleans.
fn bound_params(given: &BTreeMap<String, Value>) -> ApiResult<Params> {
    let mut params = Params::default();
    for (name, value) in given {
        let parameter = format!("params.{name}");
        check_name(name).map_err(|e| ApiError::parameter(&parameter, &value.to_string(), e.message()))?;
        let scalar = match value {
            Value::String(text) => ScalarValue::Utf8(Some(text.clone())),
            Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
            Value::Number(n) if n.is_i64() => ScalarValue::Int64(n.as_i64()),
            Value::Number(n) => match n.as_f64() {
                Some(f) => ScalarValue::Float64(Some(f)),
                None => return Err(ApiError::parameter(&parameter, &n.to_string(), "a number out of range")),
            },
            other => {
                return Err(ApiError::parameter(
                    &parameter,
                    &other.to_string(),
                    "expected a string, number or boolean",
                ));
            }
        };
        params.set(name, scalar);
    }
    Ok(params)
}

/// Runs a plan on the query runtime within the server's time limit; the slot is released when
/// the query has really ended.
async fn collect(
    server: &Server,
    frame: DataFrame,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> ApiResult<(datafusion::arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let limit = server.limits.query_timeout;
    let mut task = server.queries.handle().spawn(async move {
        let batches = frame.collect().await;
        drop(slot);
        batches
    });
    match tokio::time::timeout(limit, &mut task).await {
        Ok(Ok(batches)) => Ok((schema, batches?)),
        Ok(Err(failed)) => Err(crate::error::Error::runtime(format!("the query failed: {failed}")).into()),
        Err(_) => {
            task.abort();
            Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the query took longer than the server's limit of {} s", limit.as_secs_f64()),
            ))
        }
    }
}

fn truncate(batches: Vec<RecordBatch>, rows: usize) -> Vec<RecordBatch> {
    let mut left = rows;
    let mut kept = Vec::new();
    for batch in batches {
        if left == 0 {
            break;
        }
        let take = batch.num_rows().min(left);
        kept.push(batch.slice(0, take));
        left -= take;
    }
    kept
}

fn respond(cached: Cached, hit: bool) -> Response {
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, cached.content_type)], cached.body).into_response();
    if let Some(cursor) = cached.next_cursor.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().insert(NEXT_CURSOR, cursor);
    }
    response.headers_mut().insert("x-cache", HeaderValue::from_static(if hit { "hit" } else { "miss" }));
    if cached.truncated {
        response.headers_mut().insert("rows-truncated", HeaderValue::from_static("true"));
    }
    response.extensions_mut().insert(Served { rows: Some(cached.rows), cache_hit: Some(hit) });
    response
}

#[derive(Serialize)]
struct Runs {
    runs: Vec<RunReport>,
}

/// `GET /v1/runs?job=&status=&limit=`: the runs the key may see, newest first.
pub async fn runs(
    State(server): State<Arc<Server>>,
    Extension(key): Extension<Key>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let (mut job, mut status, mut limit) = (None, None, DEFAULT_RUNS);
    for (name, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "job" => job = Some(value.into_owned()),
            "status" => {
                status = Some(value.parse::<RunStatus>().map_err(|e| ApiError::parameter("status", &value, e))?)
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| ApiError::parameter("limit", &value, "expected a number from 1 to 10000"))?
            }
            other => return Err(ApiError::parameter(other, &value, "unknown parameter (expected job, status, limit)")),
        }
    }
    let mut runs = server.runs_visible_to(&key, server.history.list(job.as_deref(), status)?)?;
    runs.truncate(limit);
    Ok(axum::Json(Runs { runs }).into_response())
}

/// `GET /v1/runs/{id}`: one run's report.
pub async fn run(
    State(server): State<Arc<Server>>,
    Extension(key): Extension<Key>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let run = server.history.get(&id)?.ok_or_else(|| ApiError::not_found(format!("no run {id}")))?;
    let Some(run) = server.runs_visible_to(&key, vec![run])?.pop() else {
        return Err(ApiError::forbidden(format!("key '{}' may not read the tables of run {id}", key.name)));
    };
    Ok(axum::Json(run).into_response())
}

/// `GET /v1/cost?sql=…&price_per_tb=`: what Athena would bill for one SELECT.
pub async fn cost(
    State(server): State<Arc<Server>>,
    Extension(key): Extension<Key>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let (mut sql, mut price_per_tb) = (None, DEFAULT_PRICE_PER_TB);
    for (name, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "sql" => sql = Some(value.into_owned()),
            "price_per_tb" => {
                price_per_tb = value
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite() && *p >= 0.0)
                    .ok_or_else(|| ApiError::parameter("price_per_tb", &value, "expected dollars, 0 or more"))?
            }
            other => return Err(ApiError::parameter(other, &value, "unknown parameter (expected sql, price_per_tb)")),
        }
    }
    let sql = sql.ok_or_else(|| ApiError::parameter("sql", "", "give the SELECT to estimate"))?;
    let params = Params::default();
    let ctx = session(server.catalog.clone(), Default::default(), &EngineOptions::default()).await?;
    // Refuses anything but a SELECT of the key's tables before the estimator plans it.
    select::plan(&ctx, &sql, &params, &key).await?;
    let _slot = server.limiter.slot().await?;
    let options = CostOptions { price_per_tb, explain: false, measure: false, athena: None };
    let catalog = server.catalog.clone();
    let home = server.home.clone();
    // The estimator's future is not Send for every lifetime (rustc cannot prove it of its
    // closures), which a handler must be: it runs to completion on a blocking thread instead.
    let runtime = tokio::runtime::Handle::current();
    let estimate = tokio::task::spawn_blocking(move || {
        runtime.block_on(crate::cost::estimate_script(catalog, &home, "sql", &sql, &params, &options))
    })
    .await
    .map_err(|e| ApiError::from(crate::error::Error::runtime(format!("the estimate failed: {e}"))))??;
    Ok(axum::Json(estimate).into_response())
}
