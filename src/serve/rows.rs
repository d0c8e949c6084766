//! `GET /v1/tables/{db.table}/rows`: a page of a table's rows, filtered, projected and ordered
//! by query parameters, built as a DataFusion plan over the catalog table (never as SQL text),
//! so filters reach the scan: partition keys prune files, Parquet statistics prune row groups.
//!
//! Pagination is an offset cursor pinned to a version of the table. The first page of a
//! table our runs write reads its current data version through the same provider as
//! `version_of`, and the cursor names that version: later pages read the same files even after
//! a new publication, so a client paging through never sees a row twice or misses one. (A
//! keyset cursor would need a unique key, which catalog tables do not declare.) A crawled table
//! has no versions of its data; its cursor carries the table's catalog state and is refused
//! (410) once a crawl changed it. Pages are read from one partition in file and row order, which
//! is the same order on every read of the same files; with `order=` the rows are sorted by those
//! columns, then by every other returned column, then by their place in that order, which makes
//! the order total. A deep page costs a scan of the rows before it: the price of not needing a
//! key.

use std::sync::Arc;

use base64::Engine;
use datafusion::arrow::datatypes::{DECIMAL128_MAX_PRECISION, DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, SortExpr, ident, lit};
use datafusion::prelude::SessionContext;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use crate::catalog::{Catalog, Table, TableName};
use crate::schema::GlueType;

/// Rows a page has when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

const OPS: [(Op, &str); 7] =
    [(Op::Eq, "eq"), (Op::Ne, "ne"), (Op::Lt, "lt"), (Op::Le, "le"), (Op::Gt, "gt"), (Op::Ge, "ge"), (Op::In, "in")];

#[derive(Debug, Clone)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    /// The value as given (`in`: comma-separated values).
    pub value: String,
    /// The parameter as given, for messages.
    raw: String,
}

#[derive(Debug, Clone)]
pub struct RowsRequest {
    pub columns: Option<Vec<String>>,
    pub filters: Vec<Filter>,
    /// Columns to sort by, each descending or not.
    pub order: Vec<(String, bool)>,
    pub limit: usize,
    pub cursor: Option<String>,
    pub format: Option<String>,
}

/// The query parameters `rows` takes.
pub const PARAMETERS: [&str; 6] = ["columns", "where", "order", "limit", "cursor", "format"];

impl RowsRequest {
    /// Parses a query string (`where` may repeat); `max_limit` is the server's row cap.
    pub fn parse(query: Option<&str>, max_limit: usize) -> ApiResult<RowsRequest> {
        let mut request = RowsRequest {
            columns: None,
            filters: Vec::new(),
            order: Vec::new(),
            limit: DEFAULT_LIMIT.min(max_limit),
            cursor: None,
            format: None,
        };
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.into_owned();
            // Only `where` may come several times (its filters combine); another parameter
            // given twice would have its first value silently ignored.
            if name != "where" && seen.iter().any(|s| *s == name) {
                return Err(ApiError::parameter(&name, &value, "given more than once"));
            }
            seen.push(name.to_string());
            match name.as_ref() {
                "columns" => request.columns = Some(names("columns", &value)?),
                "where" => request.filters.push(parse_filter(&value)?),
                "order" => {
                    for item in names("order", &value)? {
                        let (column, descending) = match item.split_once(':') {
                            None => (item.clone(), false),
                            Some((column, "asc")) => (column.to_string(), false),
                            Some((column, "desc")) => (column.to_string(), true),
                            Some(_) => {
                                return Err(ApiError::parameter("order", &value, "expected COLUMN or COLUMN:asc|desc"));
                            }
                        };
                        request.order.push((column, descending));
                    }
                }
                "limit" => {
                    request.limit =
                        value.parse::<usize>().ok().filter(|n| (1..=max_limit).contains(n)).ok_or_else(|| {
                            ApiError::parameter("limit", &value, format!("expected a number from 1 to {max_limit}"))
                        })?;
                }
                "cursor" => request.cursor = Some(value),
                "format" => request.format = Some(value),
                other => {
                    return Err(ApiError::parameter(
                        other,
                        &value,
                        format!("unknown parameter (expected {})", PARAMETERS.join(", ")),
                    ));
                }
            }
        }
        Ok(request)
    }

    /// What makes two requests ask for the same rows (the cursor and format aside): a cursor
    /// is only good for the request that issued it.
    pub fn shape(&self, table: &TableName) -> String {
        let filters: Vec<&str> = self.filters.iter().map(|f| f.raw.as_str()).collect();
        let order: Vec<String> = self.order.iter().map(|(c, d)| format!("{c}:{d}")).collect();
        let text = format!("{table}|{:?}|{filters:?}|{order:?}", self.columns);
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }
}

fn names(parameter: &str, value: &str) -> ApiResult<Vec<String>> {
    let names: Vec<String> = value.split(',').map(|n| n.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err(ApiError::parameter(parameter, value, "expected comma-separated column names"));
    }
    if let Some((_, twice)) = names.iter().enumerate().find(|(i, name)| names[..*i].contains(name)) {
        return Err(ApiError::parameter(parameter, value, format!("'{twice}' is listed twice")));
    }
    Ok(names)
}

/// `col:op:value`; the value may itself hold `:` (a timestamp).
fn parse_filter(text: &str) -> ApiResult<Filter> {
    let mut parts = text.splitn(3, ':');
    let (Some(column), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::parameter("where", text, "expected COLUMN:OP:VALUE (OP: eq ne lt le gt ge in)"));
    };
    let op = OPS.iter().find(|(_, name)| *name == op).map(|(op, _)| *op).ok_or_else(|| {
        ApiError::parameter("where", text, format!("unknown operator '{op}' (expected eq ne lt le gt ge in)"))
    })?;
    if column.is_empty() {
        return Err(ApiError::parameter("where", text, "no column"));
    }
    Ok(Filter { column: column.to_string(), op, value: value.to_string(), raw: text.to_string() })
}

/// Which files a page reads: a data version of a written table, or a crawled table in a
/// catalog state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Pin {
    DataVersion(u64),
    State(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    pin: Pin,
    offset: usize,
    shape: String,
}

const MAX_OFFSET: usize = 1 << 48;

/// `JSON.SIGNATURE`, both base64: the signature an HMAC of the JSON under the server's secret.
impl Cursor {
    fn encode(&self, secret: &[u8]) -> String {
        let json = serde_json::to_vec(self).expect("a cursor serializes");
        let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}", base64.encode(&json), base64.encode(signature(secret, &json)))
    }

    fn decode(text: &str, shape: &str, secret: &[u8]) -> ApiResult<Cursor> {
        let bad = || ApiError::parameter("cursor", text, "not a cursor this server issued");
        let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (json, signed) = text.split_once('.').ok_or_else(bad)?;
        let bytes = base64.decode(json).map_err(|_| bad())?;
        mac(secret, &bytes).verify_slice(&base64.decode(signed).map_err(|_| bad())?).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        // Past any table's rows (and past what adding a page to it may reach): not ours.
        if cursor.offset > MAX_OFFSET {
            return Err(bad());
        }
        if cursor.shape != shape {
            return Err(ApiError::parameter(
                "cursor",
                text,
                "the cursor belongs to a request with other columns, filters or order",
            ));
        }
        Ok(cursor)
    }
}

fn signature(secret: &[u8], json: &[u8]) -> Vec<u8> {
    mac(secret, json).finalize().into_bytes().to_vec()
}

/// The HMAC of a cursor's JSON under the server's secret (checked in constant time).
fn mac(secret: &[u8], json: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(json);
    mac
}

/// A table's state: it changes with every publication or crawl that changes the table, and
/// for a crawled table (read from whatever its location holds) with the objects there.
pub async fn table_state(table: &Table) -> ApiResult<String> {
    let recorded = format!("{}@{}", table.version, table.updated_at.timestamp_micros());
    if table.definition.is_written() {
        return Ok(recorded);
    }
    let location = crate::location::Location::parse(&table.definition.location)?;
    let listing = crate::source::files::list(&location).await?;
    let mut objects = Sha256::new();
    for file in &listing.files {
        let version = file.e_tag.clone().unwrap_or_else(|| file.last_modified.timestamp_micros().to_string());
        objects.update(format!("{}\t{}\t{version}\n", file.path, file.size));
    }
    let digest: String = objects.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(format!("{recorded}#{digest}"))
}

/// A page of rows: the plan to run (fetching one row more than the page, to know whether
/// there is a next one) and the cursor of the next page if there is.
pub struct Page {
    pub frame: DataFrame,
    pub limit: usize,
    next_cursor: String,
}

impl Page {
    pub fn next_cursor(&self) -> String {
        self.next_cursor.clone()
    }
}

/// Plans the page `request` asks of `table`, in a session whose scans read one partition.
pub async fn plan_page(
    ctx: &SessionContext,
    catalog: &Arc<dyn Catalog>,
    table: &Table,
    request: &RowsRequest,
    secret: &[u8],
) -> ApiResult<Page> {
    let shape = request.shape(&table.name);
    let state = table_state(table).await?;
    let (pin, offset) = match &request.cursor {
        Some(text) => {
            let cursor = Cursor::decode(text, &shape, secret)?;
            if let Pin::State(pinned) = &cursor.pin
                && *pinned != state
            {
                return Err(ApiError::new(
                    axum::http::StatusCode::GONE,
                    format!(
                        "{} changed since this cursor was issued (a crawl recorded new data, or objects changed at its location): start again without a cursor",
                        table.name
                    ),
                ));
            }
            (cursor.pin, cursor.offset)
        }
        None if table.definition.is_written() => {
            let versions = catalog.data_versions(&table.name).await?;
            match versions.last() {
                Some(latest) => (Pin::DataVersion(latest.version), 0),
                None => (Pin::State(state), 0),
            }
        }
        None => (Pin::State(state), 0),
    };
    let frame = match &pin {
        Pin::DataVersion(version) => {
            let provider = crate::catalog::provider::VersionOf { catalog: catalog.clone() }
                .provider(&table.name, *version)
                .await
                .map_err(|e| ApiError::new(axum::http::StatusCode::GONE, e.message().to_string()))?;
            ctx.read_table(provider)?
        }
        Pin::State(_) => ctx.table(table.name.to_string()).await?,
    };
    let frame = shape_frame(frame, request)?;
    let frame = frame.limit(offset, Some(request.limit + 1))?;
    let next = Cursor { pin, offset: offset.saturating_add(request.limit), shape };
    Ok(Page { frame, limit: request.limit, next_cursor: next.encode(secret) })
}

/// The values of an `in` filter: comma-separated, as a CSV record is: a value holding a comma
/// (or a quote, or spaces at its ends that matter) is written in double quotes, a quote in it
/// doubled (`in:"a,b",c`).
fn in_values(text: &str) -> Result<Vec<String>, String> {
    // Quotes come in pairs in a CSV record (one inside a quoted value is doubled); the reader
    // would take a quote left open as running to the end.
    if text.matches('"').count() % 2 == 1 {
        return Err("the values of in hold a quote that is not closed".to_string());
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_string).collect()),
        Some(Err(e)) => Err(format!("the values of in are not a comma-separated list: {e}")),
        None => Ok(vec![String::new()]),
    }
}

/// A filter's value as a literal to compare with a column of `column_type`; None when it is
/// not a value of that type. Binary values are written in hex, as rows show them.
fn filter_value(column_type: &DataType, text: &str) -> Option<ScalarValue> {
    match column_type {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            hex::decode(text).ok().map(|bytes| ScalarValue::Binary(Some(bytes)))
        }
        _ => ScalarValue::try_from_string(text.to_string(), &literal_type(column_type, text)).ok(),
    }
}

/// For a value finer than its column (a decimal with more fractional digits than its scale,
/// past trailing zeros; a time of day for a date; nanoseconds for a timestamp of
/// microseconds): the column's value just below it. No value of the column equals it, and
/// each compares with it as with that one (`price:lt:1.509` on a `decimal(10,2)` is `price <=
/// 1.50`, `day:gt:2026-01-01T12:00` is `day > 2026-01-01`), where reading it as the column's
/// type would round or cut it. None for other values.
fn value_below(column_type: &DataType, text: &str) -> Option<ScalarValue> {
    match column_type {
        DataType::Decimal128(_, scale) => decimal_below(*scale, text),
        DataType::Date32 => {
            let nanoseconds = nanoseconds(text, None)?;
            let day = i32::try_from(nanoseconds.div_euclid(NANOSECONDS_A_DAY)).ok()?;
            (nanoseconds.rem_euclid(NANOSECONDS_A_DAY) != 0).then_some(ScalarValue::Date32(Some(day)))
        }
        DataType::Timestamp(unit, zone) => {
            let nanoseconds = nanoseconds(text, zone.clone())?;
            let floor = |per_unit: i64| {
                (nanoseconds.rem_euclid(per_unit) != 0).then_some(Some(nanoseconds.div_euclid(per_unit)))
            };
            let zone = zone.clone();
            match unit {
                TimeUnit::Second => floor(1_000_000_000).map(|v| ScalarValue::TimestampSecond(v, zone)),
                TimeUnit::Millisecond => floor(1_000_000).map(|v| ScalarValue::TimestampMillisecond(v, zone)),
                TimeUnit::Microsecond => floor(1_000).map(|v| ScalarValue::TimestampMicrosecond(v, zone)),
                TimeUnit::Nanosecond => None,
            }
        }
        _ => None,
    }
}

const NANOSECONDS_A_DAY: i64 = 86_400_000_000_000;

/// A date or timestamp text as nanoseconds since the epoch (in `zone` where it names none).
fn nanoseconds(text: &str, zone: Option<Arc<str>>) -> Option<i64> {
    match ScalarValue::try_from_string(text.to_string(), &DataType::Timestamp(TimeUnit::Nanosecond, zone)).ok()? {
        ScalarValue::TimestampNanosecond(value, _) => value,
        _ => None,
    }
}

fn decimal_below(scale: i8, text: &str) -> Option<ScalarValue> {
    let kept_digits = usize::try_from(scale).ok()?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() <= kept_digits || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let kept: i128 = format!("0{whole}{}", &fraction[..kept_digits]).parse().ok()?;
    let floor = if negative { -(kept + 1) } else { kept };
    Some(ScalarValue::Decimal128(Some(floor), DECIMAL128_MAX_PRECISION, scale))
}

/// The type a filter's value is read as, to compare with a column of `column_type`: the
/// column's, except that a decimal keeps the value's own digits (`price:lt:1000.5` on a
/// `decimal(5,2)`, `price:eq:1.500`), as `etl sql` compares them; one finer than the column
/// is [`value_below`]'s.
fn literal_type(column_type: &DataType, text: &str) -> DataType {
    let DataType::Decimal128(precision, scale) = *column_type else {
        return column_type.clone();
    };
    let digits = text.trim_start_matches(['-', '+']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let whole_digits = (i16::from(precision) - i16::from(scale)).max(whole.len() as i16);
    let scale = i16::from(scale).max(fraction.len() as i16);
    if whole_digits + scale > i16::from(DECIMAL128_MAX_PRECISION) {
        return column_type.clone();
    }
    DataType::Decimal128((whole_digits + scale) as u8, scale as i8)
}

/// Filters, order and columns applied to a table's frame; unknown columns and values that
/// are not of their column's type are the caller's error, named.
fn shape_frame(frame: DataFrame, request: &RowsRequest) -> ApiResult<DataFrame> {
    let schema = frame.schema().clone();
    let type_of = |parameter: &str, given: &str, column: &str| -> ApiResult<DataType> {
        schema.fields().iter().find(|f| f.name() == column).map(|f| f.data_type().clone()).ok_or_else(|| {
            let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            ApiError::parameter(parameter, given, format!("no column '{column}' (columns: {})", known.join(", ")))
        })
    };
    let mut frame = frame;
    let mut predicate: Option<Expr> = None;
    for filter in &request.filters {
        let data_type = type_of("where", &filter.raw, &filter.column)?;
        if data_type.is_nested() {
            let glue = GlueType::name_of(&data_type);
            return Err(ApiError::parameter(
                "where",
                &filter.raw,
                format!("{} is a {glue}, which a filter cannot compare with a value", filter.column),
            ));
        }
        let value = |text: &str| {
            filter_value(&data_type, text).map(lit).ok_or_else(|| {
                let glue = GlueType::name_of(&data_type);
                ApiError::parameter(
                    "where",
                    &filter.raw,
                    format!("'{text}' is not a value of {}'s type ({glue})", filter.column),
                )
            })
        };
        let column = ident(&filter.column);
        let below = |text: &str| value_below(&data_type, text);
        let condition = match (filter.op, below(&filter.value)) {
            (Op::Eq, Some(_)) => lit(false),
            (Op::Ne, Some(_)) => column.is_not_null(),
            (Op::Lt | Op::Le, Some(floor)) => column.lt_eq(lit(floor)),
            (Op::Gt | Op::Ge, Some(floor)) => column.gt(lit(floor)),
            (Op::Eq, None) => column.eq(value(&filter.value)?),
            (Op::Ne, None) => column.not_eq(value(&filter.value)?),
            (Op::Lt, None) => column.lt(value(&filter.value)?),
            (Op::Le, None) => column.lt_eq(value(&filter.value)?),
            (Op::Gt, None) => column.gt(value(&filter.value)?),
            (Op::Ge, None) => column.gt_eq(value(&filter.value)?),
            (Op::In, _) => {
                let values = in_values(&filter.value).map_err(|why| ApiError::parameter("where", &filter.raw, why))?;
                let values: Vec<Expr> =
                    values.iter().filter(|v| below(v).is_none()).map(|v| value(v)).collect::<ApiResult<_>>()?;
                match values.is_empty() {
                    true => lit(false),
                    false => column.in_list(values, false),
                }
            }
        };
        predicate = Some(match predicate {
            Some(all) => all.and(condition),
            None => condition,
        });
    }
    if let Some(predicate) = predicate {
        frame = frame.filter(predicate)?;
    }
    let columns: Vec<String> = match &request.columns {
        Some(columns) => {
            for column in columns {
                type_of("columns", &columns.join(","), column)?;
            }
            columns.clone()
        }
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    if !request.order.is_empty() {
        let mut sort: Vec<SortExpr> = Vec::new();
        for (column, descending) in &request.order {
            let given = request.order.iter().map(|(c, d)| if *d { format!("{c}:desc") } else { c.clone() });
            let given = given.collect::<Vec<_>>().join(",");
            let data_type = type_of("order", &given, column)?;
            if !sortable(&data_type) {
                return Err(ApiError::parameter(
                    "order",
                    &given,
                    format!("{column} ({}) cannot be ordered", GlueType::name_of(&data_type)),
                ));
            }
            sort.push(ident(column).sort(!descending, false));
        }
        // Then every other returned column, and last each row's place in the table's files
        // (read in one partition, in file and row order): rows that tie on every column that
        // sorts (those that differ only in a struct, say) still come in one order on every page.
        for column in &columns {
            let sortable_column = schema.fields().iter().any(|f| f.name() == column && sortable(f.data_type()));
            if sortable_column && !request.order.iter().any(|(c, _)| c == column) {
                sort.push(ident(column).sort(true, false));
            }
        }
        // A name no column of the table has (a table may well have one called `__etl_place`).
        let mut place = String::from("__etl_place");
        while schema.fields().iter().any(|f| f.name() == &place) {
            place.push('_');
        }
        frame = frame.window(vec![datafusion::functions_window::expr_fn::row_number().alias(&place)])?;
        sort.push(ident(&place).sort(true, false));
        frame = frame.sort(sort)?;
    }
    Ok(frame.select(columns.iter().map(ident).collect::<Vec<_>>())?)
}

fn sortable(data_type: &DataType) -> bool {
    !data_type.is_nested()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_and_bad_ones_are_named() {
        let request = RowsRequest::parse(
            Some("columns=a,b&where=a:ge:3&where=t:eq:2026-01-01T00:00:00&order=a:desc,b&limit=10"),
            1000,
        )
        .unwrap();
        assert_eq!(request.columns, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(request.filters.len(), 2);
        assert_eq!(request.filters[1].value, "2026-01-01T00:00:00");
        assert_eq!(request.order, vec![("a".to_string(), true), ("b".to_string(), false)]);
        assert_eq!(request.limit, 10);
        let error = RowsRequest::parse(Some("where=a:like:x"), 1000).unwrap_err();
        assert_eq!((error.parameter.as_deref(), error.value.as_deref()), (Some("where"), Some("a:like:x")));
        let error = RowsRequest::parse(Some("limit=1001"), 1000).unwrap_err();
        assert_eq!(error.parameter.as_deref(), Some("limit"));
        assert!(RowsRequest::parse(Some("limit=0"), 1000).is_err());
        assert!(RowsRequest::parse(Some("filter=a"), 1000).is_err());
        assert!(RowsRequest::parse(Some("columns=a,,b"), 1000).is_err());
    }

    #[test]
    fn cursors_belong_to_their_request() {
        let table: TableName = "curated.t".parse().unwrap();
        let a = RowsRequest::parse(Some("where=a:eq:1"), 100).unwrap();
        let b = RowsRequest::parse(Some("where=a:eq:2"), 100).unwrap();
        let cursor = Cursor { pin: Pin::DataVersion(3), offset: 200, shape: a.shape(&table) };
        let text = cursor.encode(b"secret");
        assert_eq!(Cursor::decode(&text, &a.shape(&table), b"secret").unwrap().offset, 200);
        assert!(Cursor::decode(&text, &b.shape(&table), b"secret").is_err());
        assert!(Cursor::decode("garbage!", &a.shape(&table), b"secret").is_err());
        // Signed: another secret's, or one edited, is not taken.
        assert!(Cursor::decode(&text, &a.shape(&table), b"other").is_err());
        let (json, signature) = text.split_once('.').unwrap();
        let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let edited = String::from_utf8(base64.decode(json).unwrap()).unwrap().replace("200", "0");
        assert!(
            Cursor::decode(&format!("{}.{signature}", base64.encode(edited)), &a.shape(&table), b"secret").is_err()
        );
    }
}
