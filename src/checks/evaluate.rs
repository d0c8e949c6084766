//! Checks as SQL: each rule becomes queries over the checked table, planned before anything
//! runs ([`plan`]) and run after the output is staged ([`run`]).
//!
//! The rules that judge rows one by one (`not_null`, `accepted_values`, `expression`) are
//! counted together, in one pass over the table: a target with ten such checks is read once,
//! not ten times. Sample rows are fetched only for checks that failed. Row counts come from
//! what the caller knows (a staged output's file footers) or from the table's statistics,
//! without a scan.

use std::time::Instant;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use super::{Accepted, CheckSpec, Rule, SAMPLE_ROWS, Severity};
use crate::catalog::TableName;
use crate::error::{Error, Result};
use crate::schema::GlueType;
use crate::schema::names::quoted;
use crate::transform::params::Params;
use crate::transform::script::{self, Statement};

/// What is checked: a table as the session names it, and what the caller knows of it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub table: TableName,
    pub checks: Vec<CheckSpec>,
    /// The number of rows, when the caller knows it without a query.
    pub rows: Option<u64>,
    /// The table's rows before and after the publication being checked (`row_count_change`);
    /// `None` when there is nothing to compare with (a first publication).
    pub change: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Passed,
    Failed,
}

/// A check's outcome, as the run report and `etl check` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub target: String,
    pub name: String,
    pub rule: String,
    pub severity: Severity,
    pub status: CheckStatus,
    /// Rows that break the rule; 1 for a rule on the whole table (row counts, freshness).
    pub violations: u64,
    /// Up to five violating rows (for `unique`, the duplicated values and how many rows have
    /// them; for rules on the whole table, what was measured).
    pub samples: Vec<serde_json::Value>,
    /// Time of the queries the check ran (checks counted in one pass over the table share it).
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl CheckResult {
    /// Failed, with severity error: the run must not publish.
    pub fn blocks(&self) -> bool {
        self.status == CheckStatus::Failed && self.severity == Severity::Error
    }

    pub fn warns(&self) -> bool {
        self.status == CheckStatus::Failed && self.severity == Severity::Warn
    }

    /// One line for people: `curated.t not_null(a): 3 violating rows`.
    pub fn describe(&self) -> String {
        let what = match &self.detail {
            Some(detail) => detail.clone(),
            None => format!("{} violating {}", self.violations, if self.violations == 1 { "row" } else { "rows" }),
        };
        format!("{} {}: {what}", self.target, self.name)
    }
}

/// A check as the version it let through keeps it: the rule (so `etl check DB.TABLE` can
/// run it again) and how it went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub check: CheckSpec,
    pub status: CheckStatus,
    pub violations: u64,
    /// The run's parameters (`--param` texts, built-ins aside) its SQL was judged with.
    #[serde(default)]
    pub params: Vec<String>,
}

impl Recorded {
    /// As the catalog keeps it: JSON it stores without reading.
    pub fn of(check: &CheckSpec, result: &CheckResult, params: &Params) -> serde_json::Value {
        let recorded = Recorded {
            check: check.clone(),
            status: result.status,
            violations: result.violations,
            params: params.chosen(),
        };
        serde_json::to_value(recorded).expect("a check serializes")
    }

    /// The checks a version recorded (those it cannot read, from another release, are left out).
    pub fn read(values: &[serde_json::Value]) -> Vec<Recorded> {
        values.iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect()
    }
}

/// How a check finds its violations.
enum Queries {
    /// A condition true for each violating row: counted in the table's one pass.
    Rows { condition: String },
    /// A query giving the number of violations, and one giving samples.
    Counted { count: String, samples: String },
    /// `row_count` and `row_count_change`: from the row counts, no query of their own.
    Counts,
}

/// Names by which a check's SQL may call the table it checks, besides its own name (`this`, as
/// dbt calls a model in its tests). A session view or table of the same name keeps it.
pub const ALIASES: [&str; 3] = ["this", "staged", "target"];

/// How the session names a catalog table.
fn reference(table: &TableName) -> datafusion::common::TableReference {
    datafusion::common::TableReference::partial(table.database.as_str(), table.table.as_str())
}

/// Registers the aliases of `subject`'s table that no session table already has; returns them.
async fn alias(ctx: &SessionContext, subject: &Subject) -> Result<Vec<&'static str>> {
    let provider = ctx.table_provider(reference(&subject.table)).await?;
    let mut registered = Vec::new();
    for name in ALIASES {
        if !ctx.table_exist(name)? {
            ctx.register_table(name, provider.clone())?;
            registered.push(name);
        }
    }
    Ok(registered)
}

fn unalias(ctx: &SessionContext, names: &[&str]) {
    for name in names {
        // Only names this module registered: removing one cannot fail in a way that matters.
        let _ = ctx.deregister_table(*name);
    }
}

/// Plans every query of every check without running any: an unknown column, a type that does
/// not fit or SQL that does not plan is a configuration error naming the table and the check.
pub async fn plan(ctx: &SessionContext, params: &Params, subject: &Subject, logical_date: NaiveDate) -> Result<()> {
    if subject.checks.is_empty() {
        return Ok(());
    }
    let refused = |check: &CheckSpec, e: Error| {
        Error::config(format!("check '{}' of {} cannot run: {}", check.name, subject.table, e.message()))
    };
    let aliases = alias(ctx, subject).await?;
    let planned = plan_all(ctx, params, subject, logical_date, &refused).await;
    unalias(ctx, &aliases);
    planned
}

async fn plan_all(
    ctx: &SessionContext,
    params: &Params,
    subject: &Subject,
    logical_date: NaiveDate,
    refused: &impl Fn(&CheckSpec, Error) -> Error,
) -> Result<()> {
    let schema = ctx.table_provider(reference(&subject.table)).await?.schema();
    for check in &subject.checks {
        check_types(check, &schema).map_err(|why| refused(check, Error::config(why)))?;
        if let Rule::Relationship { column, table: referenced, references } = &check.rule {
            let other = ctx.table_provider(reference(referenced)).await.map_err(|e| refused(check, Error::from(e)))?;
            let other = other.schema();
            comparable_keys(&schema, column, &other, references, referenced, &subject.table)
                .map_err(|why| refused(check, Error::config(why)))?;
        }
        let texts = match queries(&subject.table, check, logical_date, &schema) {
            Queries::Rows { condition } => {
                vec![rows_pass(&subject.table, &[condition.as_str()]), samples_of(&subject.table, &condition, &schema)]
            }
            Queries::Counted { count, samples } => vec![count, samples],
            Queries::Counts => Vec::new(),
        };
        for text in texts {
            let plan = plan_query(ctx, params, subject, check, &text).await.map_err(|e| refused(check, e))?;
            // Type coercion happens as the plan is optimised: an expression that is no boolean
            // fails here, not on the staged rows.
            ctx.state().optimize(&plan).map_err(|e| refused(check, Error::from(e)))?;
        }
    }
    Ok(())
}

/// Runs every check of `subject`; a check that fails is a result, not an error.
pub async fn run(
    ctx: &SessionContext,
    params: &Params,
    subject: &Subject,
    logical_date: NaiveDate,
) -> Result<Vec<CheckResult>> {
    if subject.checks.is_empty() {
        return Ok(Vec::new());
    }
    let aliases = alias(ctx, subject).await?;
    let results = run_all(ctx, params, subject, logical_date).await;
    unalias(ctx, &aliases);
    results
}

async fn run_all(
    ctx: &SessionContext,
    params: &Params,
    subject: &Subject,
    logical_date: NaiveDate,
) -> Result<Vec<CheckResult>> {
    let schema = ctx.table_provider(reference(&subject.table)).await?.schema();
    let planned: Vec<(&CheckSpec, Queries)> =
        subject.checks.iter().map(|c| (c, queries(&subject.table, c, logical_date, &schema))).collect();
    // The one pass: the table's rows and each row rule's count of violations.
    let conditions: Vec<&str> = planned
        .iter()
        .filter_map(|(_, q)| match q {
            Queries::Rows { condition } => Some(condition.as_str()),
            _ => None,
        })
        .collect();
    let needs_rows = planned.iter().any(|(_, q)| matches!(q, Queries::Counts));
    let started = Instant::now();
    let mut counts: Vec<u64> = Vec::new();
    let mut rows = subject.rows;
    if !conditions.is_empty() || (needs_rows && rows.is_none()) {
        let first = subject.checks.first().expect("a check");
        let values = match numbers(ctx, params, subject, first, &rows_pass(&subject.table, &conditions)).await {
            Ok(values) => values,
            Err(error) => return Err(blame(ctx, params, subject, &planned, error).await),
        };
        rows = rows.or(values.first().copied());
        counts = values.into_iter().skip(1).collect();
    }
    let pass_seconds = started.elapsed().as_secs_f64();
    let mut counts = counts.into_iter();
    let mut results = Vec::with_capacity(planned.len());
    for (check, queries) in planned {
        let started = Instant::now();
        let mut result = CheckResult {
            target: subject.table.to_string(),
            name: check.name.clone(),
            rule: check.rule.key().to_string(),
            severity: check.severity,
            status: CheckStatus::Passed,
            violations: 0,
            samples: Vec::new(),
            seconds: 0.0,
            detail: None,
        };
        let mut shared = 0.0;
        match queries {
            Queries::Rows { condition } => {
                shared = pass_seconds;
                result.violations = counts.next().unwrap_or(0);
                if result.violations > 0 {
                    result.samples =
                        samples(ctx, params, subject, check, &samples_of(&subject.table, &condition, &schema)).await?;
                }
            }
            Queries::Counted { count, samples: sampling } => {
                result.violations = numbers(ctx, params, subject, check, &count).await?.first().copied().unwrap_or(0);
                if result.violations > 0 {
                    result.samples = samples(ctx, params, subject, check, &sampling).await?;
                }
            }
            Queries::Counts => {
                shared = pass_seconds;
                judge_counts(&mut result, &check.rule, rows.unwrap_or(0), subject.change);
            }
        }
        if result.violations > 0 {
            result.status = CheckStatus::Failed;
        }
        result.seconds = shared + started.elapsed().as_secs_f64();
        results.push(result);
    }
    Ok(results)
}

/// The error of the one pass of row rules, named after the rule that fails alone (the pass
/// names the first check, which may be another).
async fn blame(
    ctx: &SessionContext,
    params: &Params,
    subject: &Subject,
    planned: &[(&CheckSpec, Queries)],
    error: Error,
) -> Error {
    for (check, queries) in planned {
        if let Queries::Rows { condition } = queries
            && let Err(alone) = numbers(ctx, params, subject, check, &rows_pass(&subject.table, &[condition])).await
        {
            return alone;
        }
    }
    error
}

/// `row_count` and `row_count_change`, from the numbers.
fn judge_counts(result: &mut CheckResult, rule: &Rule, rows: u64, change: Option<(u64, u64)>) {
    match rule {
        Rule::RowCount { min, max } => {
            let low = min.is_some_and(|min| rows < min);
            let high = max.is_some_and(|max| rows > max);
            if low || high {
                result.violations = 1;
                result.detail = Some(format!(
                    "{rows} rows, {}",
                    match (min, max) {
                        (Some(min), Some(max)) => format!("expected {min} to {max}"),
                        (Some(min), None) => format!("expected at least {min}"),
                        (None, Some(max)) => format!("expected at most {max}"),
                        (None, None) => unreachable!("a row_count has a bound"),
                    }
                ));
                result.samples = vec![serde_json::json!({ "rows": rows, "min": min, "max": max })];
            }
        }
        Rule::RowCountChange { max_drop, max_growth } => {
            let Some((before, after)) = change.filter(|(before, _)| *before > 0) else {
                result.detail = Some("no earlier version with rows to compare with".into());
                return;
            };
            let relative = (after as f64 - before as f64) / before as f64;
            let dropped = max_drop.is_some_and(|limit| -relative > limit + 1e-12);
            let grew = max_growth.is_some_and(|limit| relative > limit + 1e-12);
            if dropped || grew {
                result.violations = 1;
                let limit = if dropped { max_drop } else { max_growth }.expect("the limit crossed");
                result.detail = Some(format!(
                    "{before} rows before, {after} after: {:+.1}% (at most {}{:.1}%)",
                    relative * 100.0,
                    if dropped { "-" } else { "+" },
                    limit * 100.0
                ));
                result.samples = vec![serde_json::json!({
                    "rows_before": before,
                    "rows_after": after,
                    "change": format!("{:+.1}%", relative * 100.0),
                })];
            }
        }
        _ => unreachable!("only row counts are judged from counts"),
    }
}

/// The queries of one check.
fn queries(
    table: &TableName,
    check: &CheckSpec,
    logical_date: NaiveDate,
    schema: &datafusion::arrow::datatypes::Schema,
) -> Queries {
    let from = table.quoted();
    match &check.rule {
        Rule::NotNull(columns) => Queries::Rows {
            condition: columns.iter().map(|c| format!("{} IS NULL", quoted(c))).collect::<Vec<_>>().join(" OR "),
        },
        Rule::AcceptedValues(columns) => Queries::Rows {
            condition: columns
                .iter()
                .map(|(column, values)| {
                    let list: Vec<String> = match schema.field_with_name(column) {
                        Ok(field) => values.iter().filter_map(|v| typed_literal(v, field.data_type())).collect(),
                        Err(_) => values.iter().map(literal).collect(),
                    };
                    match list.is_empty() {
                        // No value of the column's type equals any of them.
                        true => format!("({} IS NOT NULL)", quoted(column)),
                        false => format!("({c} IS NOT NULL AND {c} NOT IN ({}))", list.join(", "), c = quoted(column)),
                    }
                })
                .collect::<Vec<_>>()
                .join(" OR "),
        },
        // As a CHECK constraint: only rows for which the expression is false break it.
        // A line end after the user's text: a `-- comment` ending it would take the rest.
        Rule::Expression(expression) => Queries::Rows { condition: format!("({expression}\n) IS FALSE") },
        Rule::Unique(columns) => {
            let keys: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
            let present: Vec<String> = keys.iter().map(|k| format!("{k} IS NOT NULL")).collect();
            // A name none of the keys has (a table may have a column `duplicate_rows`).
            let mut count = String::from("duplicate_rows");
            while columns.contains(&count) {
                count.push('_');
            }
            let duplicated = format!(
                "SELECT {keys}, count(*) AS {count} FROM {from} WHERE {present} GROUP BY {keys} HAVING count(*) > 1",
                keys = keys.join(", "),
                present = present.join(" AND ")
            );
            Queries::Counted {
                count: format!("SELECT coalesce(sum({count}), 0) AS violations FROM ({duplicated}) AS d"),
                samples: format!("SELECT * FROM ({duplicated}) AS d ORDER BY {} LIMIT {SAMPLE_ROWS}", keys.join(", ")),
            }
        }
        Rule::Freshness { column, max_age_seconds, .. } => {
            let start = logical_date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
            let oldest = start - chrono::Duration::seconds(*max_age_seconds as i64);
            let oldest = format!("CAST('{}' AS TIMESTAMP)", oldest.format("%Y-%m-%dT%H:%M:%S"));
            let newest = format!("max(CAST({} AS TIMESTAMP))", quoted(column));
            Queries::Counted {
                count: format!(
                    "SELECT CASE WHEN {newest} IS NULL OR {newest} < {oldest} THEN 1 ELSE 0 END AS violations FROM {from}"
                ),
                samples: format!("SELECT {newest} AS newest, {oldest} AS oldest_allowed FROM {from}"),
            }
        }
        Rule::Relationship { column, table: referenced, references } => {
            let orphans = format!(
                "SELECT * FROM {from} AS checked WHERE checked.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {to} AS referenced WHERE referenced.{r} = checked.{c})",
                c = quoted(column),
                to = referenced.quoted(),
                r = quoted(references)
            );
            Queries::Counted {
                count: format!("SELECT count(*) AS violations FROM ({orphans}) AS o"),
                samples: format!("{orphans} LIMIT {SAMPLE_ROWS}"),
            }
        }
        Rule::Sql(query) => Queries::Counted {
            count: format!("SELECT count(*) AS violations FROM ({query}\n) AS violations"),
            samples: format!("SELECT * FROM ({query}\n) AS violations LIMIT {SAMPLE_ROWS}"),
        },
        Rule::RowCount { .. } | Rule::RowCountChange { .. } => Queries::Counts,
    }
}

/// The one pass: `count(*)`, then one count per condition.
fn rows_pass(table: &TableName, conditions: &[&str]) -> String {
    let mut columns = vec!["count(*) AS row_count".to_string()];
    for (i, condition) in conditions.iter().enumerate() {
        columns.push(format!("count(*) FILTER (WHERE {condition}) AS violations_{i}"));
    }
    format!("SELECT {} FROM {}", columns.join(", "), table.quoted())
}

/// The first violating rows in the order of their values, so that a run and `etl check` of
/// the same rows show the same ones (files are read in parallel, in no fixed order).
fn samples_of(table: &TableName, condition: &str, schema: &datafusion::arrow::datatypes::Schema) -> String {
    let order: Vec<String> =
        schema.fields().iter().filter(|f| !f.data_type().is_nested()).map(|f| quoted(f.name())).collect();
    let order = match order.is_empty() {
        true => String::new(),
        false => format!(" ORDER BY {}", order.join(", ")),
    };
    format!("SELECT * FROM {} WHERE {condition}{order} LIMIT {SAMPLE_ROWS}", table.quoted())
}

async fn plan_query(
    ctx: &SessionContext,
    params: &Params,
    subject: &Subject,
    check: &CheckSpec,
    text: &str,
) -> Result<LogicalPlan> {
    let what = format!("check '{}' of {}", check.name, subject.table);
    let statement = Statement { text: text.to_string(), line: 1 };
    script::plan_statement(ctx, &what, &statement, params).await
}

async fn collect(
    ctx: &SessionContext,
    params: &Params,
    subject: &Subject,
    check: &CheckSpec,
    text: &str,
) -> Result<Vec<RecordBatch>> {
    let plan = plan_query(ctx, params, subject, check, text).await?;
    let frame = ctx.execute_logical_plan(plan).await?;
    frame.collect().await.map_err(|e| Error::from(e).context(format!("check '{}' of {}", check.name, subject.table)))
}

/// The first row of a query, as whole numbers (NULL is 0).
async fn numbers(
    ctx: &SessionContext,
    params: &Params,
    subject: &Subject,
    check: &CheckSpec,
    text: &str,
) -> Result<Vec<u64>> {
    let batches = collect(ctx, params, subject, check, text).await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(Vec::new());
    };
    batch
        .columns()
        .iter()
        .map(|column| {
            let whole = cast(column, &DataType::Int64)?;
            let whole = whole.as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().expect("cast to Int64");
            Ok(if whole.is_null(0) { 0 } else { whole.value(0).max(0) as u64 })
        })
        .collect()
}

/// A query's rows as JSON objects.
async fn samples(
    ctx: &SessionContext,
    params: &Params,
    subject: &Subject,
    check: &CheckSpec,
    text: &str,
) -> Result<Vec<serde_json::Value>> {
    let batches = collect(ctx, params, subject, check, text).await?;
    let batches = batches.iter().map(wide_decimals_as_text).collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    crate::output::write_rows(&mut out, &batches, crate::output::RowFormat::Json)?;
    match serde_json::from_slice(&out)? {
        serde_json::Value::Array(rows) => Ok(rows.into_iter().take(SAMPLE_ROWS).collect()),
        _ => Ok(Vec::new()),
    }
}

/// A sample goes into the report as a JSON value, whose numbers are doubles: a decimal with
/// more digits than a double holds (12345678901234567.89) is given as its text, so that the
/// value shown is the value stored.
fn wide_decimals_as_text(batch: &RecordBatch) -> Result<RecordBatch> {
    crate::output::columns_cast(batch, |ty| match ty {
        DataType::Decimal128(p, _) | DataType::Decimal256(p, _) if *p > 15 => DataType::Utf8,
        other => other.clone(),
    })
}

/// An accepted value as a SQL literal; text is quoted, so it is never read as SQL.
/// What a rule needs of its columns' types, beyond their existence (which planning checks):
/// freshness a date or a timestamp, accepted values of the column's kind. Why not, naming the
/// column and its type.
fn check_types(check: &CheckSpec, schema: &datafusion::arrow::datatypes::Schema) -> Result<(), String> {
    let type_of = |column: &str| {
        let field = schema.field_with_name(column).ok()?;
        let glue = GlueType::name_of(field.data_type());
        Some((field.data_type().clone(), glue))
    };
    match &check.rule {
        Rule::Freshness { column, .. } => match type_of(column) {
            Some((ty, glue)) if !matches!(ty, DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)) => {
                Err(format!("freshness needs a date or timestamp column; {column} is {glue}"))
            }
            _ => Ok(()),
        },
        Rule::AcceptedValues(columns) => {
            for (column, values) in columns {
                let Some((ty, glue)) = type_of(column) else { continue };
                let fits = |value: &Accepted| match value {
                    Accepted::Bool(_) => ty == DataType::Boolean,
                    Accepted::Int(_) | Accepted::Float(_) => ty.is_numeric(),
                    // Text is how dates, timestamps and text are written; dbt users quote
                    // numbers too, which compare as the numbers they spell.
                    Accepted::Text(text) if ty.is_numeric() => text.trim().parse::<f64>().is_ok_and(f64::is_finite),
                    Accepted::Text(_) => ty != DataType::Boolean,
                };
                if let Some(value) = values.iter().find(|v| !fits(v)) {
                    return Err(format!(
                        "accepted_values of {column}: {} is not a value of its type, {glue}",
                        literal(value)
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A relationship's two columns compare as the same kind of value: a number with a text would
/// be cast row by row and fail on the first text that is no number (Athena refuses `bigint =
/// varchar` outright).
fn comparable_keys(
    child: &datafusion::arrow::datatypes::Schema,
    column: &str,
    parent: &datafusion::arrow::datatypes::Schema,
    references: &str,
    referenced: &crate::catalog::TableName,
    subject: &crate::catalog::TableName,
) -> Result<(), String> {
    let columns = |schema: &datafusion::arrow::datatypes::Schema| {
        schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
    };
    let Ok(child_field) = child.field_with_name(column) else {
        return Err(format!("{subject} has no column '{column}' (its columns: {})", columns(child)));
    };
    let Ok(parent_field) = parent.field_with_name(references) else {
        return Err(format!("{referenced} has no column '{references}' (its columns: {})", columns(parent)));
    };
    let kind = crate::schema::types::ValueKind::of;
    let glue = GlueType::name_of;
    let (a, b) = (child_field.data_type(), parent_field.data_type());
    if kind(a) == kind(b) && (kind(a).is_some() || a == b) {
        return Ok(());
    }
    Err(format!("{column} ({}) cannot be compared with {referenced}.{references} ({})", glue(a), glue(b)))
}

/// An accepted value as a literal of its column's type, compared exactly: None when no value
/// of the type equals it (`"0.099"` for a `decimal(10,2)`, `1.5` or `70000` for a `smallint`:
/// cast to the column's type, it would round into one of its values). A `float` column's value
/// is the number read as a float: its 0.1 is not a double's.
fn typed_literal(value: &Accepted, column_type: &DataType) -> Option<String> {
    let number = match value {
        Accepted::Int(i) => i.to_string(),
        Accepted::Float(f) if f.is_nan() => "NaN".to_string(),
        Accepted::Float(f) if f.is_infinite() => if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_string(),
        Accepted::Float(f) => format!("{f:?}"),
        Accepted::Text(text) if column_type.is_numeric() => text.trim().to_string(),
        other => return Some(literal(other)),
    };
    match column_type {
        DataType::Float16 | DataType::Float32 => Some(format!("CAST('{number}' AS REAL)")),
        DataType::Float64 => Some(format!("CAST('{number}' AS DOUBLE)")),
        DataType::Decimal128(precision, scale) | DataType::Decimal256(precision, scale) => {
            let exact = match number.split_once('.') {
                Some((whole, fraction)) => format!("{whole}.{}", fraction.trim_end_matches('0')),
                None => number.clone(),
            };
            let exact = exact.trim_end_matches('.');
            crate::source::text::parse_decimal(exact, *precision, u8::try_from(*scale).ok()?)?;
            Some(format!("CAST('{exact}' AS DECIMAL({precision},{scale}))"))
        }
        integer if integer.is_integer() => {
            let whole = match number.split_once('.') {
                Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
                Some(_) => return None,
                None => number.as_str(),
            };
            let value: i128 = whole.parse().ok()?;
            let fits = datafusion::common::ScalarValue::Int64(i64::try_from(value).ok())
                .cast_to(integer)
                .is_ok_and(|cast| !cast.is_null());
            fits.then(|| value.to_string())
        }
        _ => Some(literal(value)),
    }
}

fn literal(value: &Accepted) -> String {
    match value {
        Accepted::Bool(b) => b.to_string().to_uppercase(),
        Accepted::Int(i) => i.to_string(),
        Accepted::Float(f) => format!("{f:?}"),
        Accepted::Text(text) => format!("'{}'", text.replace('\'', "''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};

    fn spec(text: &str) -> CheckSpec {
        CheckSpec::resolve(&toml::from_str::<toml::Table>(text).unwrap()).unwrap()
    }

    fn result(rule: &Rule, rows: u64, change: Option<(u64, u64)>) -> CheckResult {
        let mut result = CheckResult {
            target: "db.t".into(),
            name: "n".into(),
            rule: rule.key().into(),
            severity: Severity::Error,
            status: CheckStatus::Passed,
            violations: 0,
            samples: vec![],
            seconds: 0.0,
            detail: None,
        };
        judge_counts(&mut result, rule, rows, change);
        result
    }

    #[test]
    fn accepted_numbers_are_literals_of_their_columns_type_compared_exactly() {
        let typed = |value: Accepted, ty: DataType| typed_literal(&value, &ty);
        assert_eq!(typed(Accepted::Float(0.1), DataType::Float32).as_deref(), Some("CAST('0.1' AS REAL)"));
        let cents = DataType::Decimal128(10, 2);
        assert_eq!(typed(Accepted::Text("0.099".into()), cents.clone()), None);
        assert_eq!(
            typed(Accepted::Text("0.250".into()), cents.clone()).as_deref(),
            Some("CAST('0.25' AS DECIMAL(10,2))")
        );
        assert_eq!(typed(Accepted::Int(3), cents).as_deref(), Some("CAST('3' AS DECIMAL(10,2))"));
        assert_eq!(typed(Accepted::Text("1.0".into()), DataType::Int64).as_deref(), Some("1"));
        assert_eq!(typed(Accepted::Float(1.5), DataType::Int64), None);
        assert_eq!(typed(Accepted::Int(70_000), DataType::Int16), None);
        assert_eq!(typed(Accepted::Float(f64::NAN), DataType::Float64).as_deref(), Some("CAST('NaN' AS DOUBLE)"));
        assert_eq!(typed(Accepted::Text("a".into()), DataType::Utf8).as_deref(), Some("'a'"));
        let schema = Schema::new(vec![Field::new("price", DataType::Decimal128(10, 2), true)]);
        let table: TableName = "db.t".parse().unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        let Queries::Rows { condition } =
            queries(&table, &spec("accepted_values = { price = [\"0.099\"] }"), date, &schema)
        else {
            panic!("a row rule")
        };
        assert_eq!(condition, "(\"price\" IS NOT NULL)");
    }

    #[test]
    fn row_rules_are_conditions_quoted_and_literal() {
        let table: TableName = "db.t".parse().unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        let Queries::Rows { condition } =
            queries(&table, &spec("accepted_values = { status = [\"it's\", 2, 1.5, true] }"), date, &Schema::empty())
        else {
            panic!("a row rule")
        };
        assert_eq!(condition, "(\"status\" IS NOT NULL AND \"status\" NOT IN ('it''s', 2, 1.5, TRUE))");
        assert_eq!(
            rows_pass(&table, &["\"a\" IS NULL"]),
            "SELECT count(*) AS row_count, count(*) FILTER (WHERE \"a\" IS NULL) AS violations_0 FROM \"db\".\"t\""
        );
        let Queries::Counted { count, .. } =
            queries(&table, &spec("freshness = { column = \"ts\", max_age = \"1d\" }"), date, &Schema::empty())
        else {
            panic!("a counted rule")
        };
        assert!(count.contains("CAST('2026-11-02T00:00:00' AS TIMESTAMP)"), "{count}");
    }

    #[test]
    fn row_counts_are_judged_against_their_bounds() {
        let bounds = Rule::RowCount { min: Some(2), max: Some(3) };
        assert_eq!(result(&bounds, 2, None).violations, 0);
        let over = result(&bounds, 4, None);
        assert_eq!((over.violations, over.detail.as_deref()), (1, Some("4 rows, expected 2 to 3")));
        let change = Rule::RowCountChange { max_drop: Some(0.1), max_growth: None };
        assert_eq!(result(&change, 0, None).violations, 0, "nothing to compare with");
        assert_eq!(result(&change, 0, Some((100, 90))).violations, 0, "exactly 10% is allowed");
        let dropped = result(&change, 0, Some((100, 50)));
        assert_eq!(dropped.violations, 1);
        assert_eq!(dropped.detail.as_deref(), Some("100 rows before, 50 after: -50.0% (at most -10.0%)"));
        assert_eq!(result(&change, 0, Some((100, 1000))).violations, 0, "growth has no limit here");
    }
}
