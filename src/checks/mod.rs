//! 5. Checks: what a target's output must satisfy before anyone reads it (write, audit,
//! publish).
//!
//! A job declares checks per target (`[[target.check]]`), one rule each. A run evaluates them
//! on the staged output of every target, after all of them are staged and before the one
//! publication; a failed check of severity `error` keeps the run from publishing, a failed
//! `warn` is reported and the run publishes. `etl check` evaluates the same rules on what is
//! published.
//!
//! Three steps, as for a job file: [`CheckSpec::resolve`] turns the TOML into a rule, refusing
//! what cannot be a check (exit 2, before anything is read); [`evaluate::plan`] plans every
//! query of every check against the target's output schema, so an unknown column or bad SQL
//! is a configuration error before any row is computed; [`evaluate::run`] runs them.
//! [`published::check_published`] runs them on what the catalog has now (`etl check`).
//!
//! Rules are SQL over the table as DataFusion reads it, and they follow SQL's constraints: a
//! NULL is neither a duplicate (`unique`) nor outside the accepted values, and an `expression`
//! fails only the rows for which it is false, as a `CHECK` constraint does (`not_null` is the
//! rule for NULLs). What this module deliberately does not do: decide what is published, or
//! build sessions (the run and `etl check` give it one where the checked tables are the
//! staged or the published data).

pub mod evaluate;
pub mod published;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog::TableName;
use crate::schema::names;

/// Rows shown per failed check.
pub const SAMPLE_ROWS: usize = 5;

/// The rule keys a check table may have, one of them.
pub const RULES: [&str; 9] = [
    "not_null",
    "unique",
    "accepted_values",
    "row_count",
    "expression",
    "freshness",
    "relationship",
    "row_count_change",
    "sql",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A failure keeps the run from publishing.
    #[default]
    Error,
    /// A failure is reported; the run publishes.
    Warn,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

/// A value `accepted_values` accepts, as TOML wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Accepted {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// What a check requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// No NULL in any of these columns.
    NotNull(Vec<String>),
    /// No two rows share these columns' values (together); rows with a NULL among them are
    /// not compared.
    Unique(Vec<String>),
    /// Each column's non-NULL values are among its list.
    AcceptedValues(Vec<(String, Vec<Accepted>)>),
    /// The number of rows is within the bounds (inclusive).
    RowCount { min: Option<u64>, max: Option<u64> },
    /// A boolean SQL expression no row may make false.
    Expression(String),
    /// The newest value of `column` is at most `max_age` older than the start of the logical
    /// date (UTC).
    Freshness { column: String, max_age_seconds: u64, max_age: String },
    /// Every non-NULL `column` value is a value of `references`' column.
    Relationship { column: String, table: TableName, references: String },
    /// The table's rows after the publication against before it: a drop or growth by at most
    /// these fractions (0.1 is 10%; a `max_drop` above 1 is a percentage).
    RowCountChange { max_drop: Option<f64>, max_growth: Option<f64> },
    /// A query whose rows are the violations.
    Sql(String),
}

impl Rule {
    /// The rule's key in the job file.
    pub fn key(&self) -> &'static str {
        match self {
            Rule::NotNull(_) => "not_null",
            Rule::Unique(_) => "unique",
            Rule::AcceptedValues(_) => "accepted_values",
            Rule::RowCount { .. } => "row_count",
            Rule::Expression(_) => "expression",
            Rule::Freshness { .. } => "freshness",
            Rule::Relationship { .. } => "relationship",
            Rule::RowCountChange { .. } => "row_count_change",
            Rule::Sql(_) => "sql",
        }
    }
}

impl fmt::Display for Rule {
    /// The name a check goes by when the job gives none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key();
        match self {
            Rule::NotNull(columns) | Rule::Unique(columns) => write!(f, "{key}({})", columns.join(", ")),
            Rule::AcceptedValues(columns) => {
                let names: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
                write!(f, "{key}({})", names.join(", "))
            }
            Rule::Expression(expression) => write!(f, "{key}({expression})"),
            Rule::Freshness { column, max_age, .. } => write!(f, "{key}({column}, {max_age})"),
            Rule::Relationship { column, table, references } => write!(f, "{key}({column} -> {table}.{references})"),
            Rule::RowCount { .. } | Rule::RowCountChange { .. } | Rule::Sql(_) => f.write_str(key),
        }
    }
}

/// One check of a target, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub name: String,
    pub severity: Severity,
    pub rule: Rule,
}

impl CheckSpec {
    /// A `[[target.check]]` table as a check, or why it is none (the caller names where).
    pub fn resolve(table: &toml::Table) -> Result<CheckSpec, String> {
        let mut rules = Vec::new();
        let mut name = None;
        let mut severity = Severity::Error;
        for (key, value) in table {
            match key.as_str() {
                "name" => {
                    let text = value.as_str().ok_or("name: must be a string")?;
                    if text.trim().is_empty() {
                        return Err("name: is empty".into());
                    }
                    name = Some(text.to_string());
                }
                "severity" => {
                    severity = match value.as_str() {
                        Some("error") => Severity::Error,
                        Some("warn" | "warning") => Severity::Warn,
                        _ => return Err(format!("severity: {value} is not \"error\" or \"warn\"")),
                    }
                }
                rule if RULES.contains(&rule) => {
                    rules.push(resolve_rule(rule, value).map_err(|why| format!("{rule}: {why}"))?)
                }
                other => {
                    return Err(format!(
                        "unknown key '{other}' (a check has one rule: {}, and may have name and severity)",
                        RULES.join(", ")
                    ));
                }
            }
        }
        let rule = match rules.len() {
            1 => rules.pop().expect("one rule"),
            0 => return Err(format!("no rule: a check needs one of {}", RULES.join(", "))),
            _ => {
                let keys: Vec<&str> = rules.iter().map(Rule::key).collect();
                return Err(format!(
                    "{} rules ({}): a check has exactly one; write one check each",
                    keys.len(),
                    keys.join(", ")
                ));
            }
        };
        Ok(CheckSpec { name: name.unwrap_or_else(|| rule.to_string()), severity, rule })
    }
}

fn resolve_rule(key: &str, value: &toml::Value) -> Result<Rule, String> {
    Ok(match key {
        "not_null" => Rule::NotNull(column_list(value)?),
        "unique" => Rule::Unique(column_list(value)?),
        "accepted_values" => Rule::AcceptedValues(accepted_values(value)?),
        "row_count" => row_count(value)?,
        "expression" => {
            let text = sql_text(value)?;
            parse_expression(&text)?;
            Rule::Expression(text)
        }
        "freshness" => {
            let table = value.as_table().ok_or("must be a table { column, max_age }")?;
            only_keys(table, &["column", "max_age"])?;
            let column = column_name(table.get("column").ok_or("column is missing")?)?;
            let age = table.get("max_age").ok_or("max_age is missing")?;
            let (max_age_seconds, max_age) = match age {
                toml::Value::String(text) => (parse_age(text)?.as_secs(), text.clone()),
                toml::Value::Integer(seconds) if *seconds >= 0 => (*seconds as u64, format!("{seconds}s")),
                other => return Err(format!("max_age: {other} is not a duration (like \"36h\" or \"2d\")")),
            };
            // Timestamps end in year 9999 and begin in year 1: an age past their span checks
            // nothing, and the oldest time allowed would not be one.
            if max_age_seconds > MAX_AGE_SECONDS {
                return Err(format!("max_age: {age} is more than a thousand years, which no timestamp is older than"));
            }
            Rule::Freshness { column, max_age_seconds, max_age }
        }
        "relationship" => {
            let table = value.as_table().ok_or("must be a table { column, references = \"db.table.column\" }")?;
            only_keys(table, &["column", "references"])?;
            let column = column_name(table.get("column").ok_or("column is missing")?)?;
            let references = table.get("references").and_then(toml::Value::as_str).ok_or("references is missing")?;
            let (table_name, referenced) = references
                .rsplit_once('.')
                .filter(|(t, _)| t.contains('.'))
                .ok_or_else(|| format!("references: '{references}' is not DB.TABLE.COLUMN"))?;
            let table: TableName = table_name.parse().map_err(|e: crate::error::Error| format!("references: {e}"))?;
            Rule::Relationship { column, table, references: names::normalize(referenced, 0) }
        }
        "row_count_change" => {
            let table = value.as_table().ok_or("must be a table { max_drop, max_growth }")?;
            only_keys(table, &["max_drop", "max_growth"])?;
            let fraction =
                |key: &str| table.get(key).map(|v| fraction(v).map_err(|why| format!("{key}: {why}"))).transpose();
            let (mut max_drop, max_growth) = (fraction("max_drop")?, fraction("max_growth")?);
            // No fraction of the rows can drop past 1: a bare number above it is a percentage
            // (`max_drop = 10` is 10%), as the README says; "150%" is no limit at all.
            if let (Some(drop), Some(given)) = (&mut max_drop, table.get("max_drop")) {
                if *drop > 1.0 && !given.is_str() {
                    *drop /= 100.0;
                }
                if *drop > 1.0 {
                    return Err(format!("max_drop: {given} is more than every row (at most 1, or \"100%\")"));
                }
            }
            if max_drop.is_none() && max_growth.is_none() {
                return Err("needs max_drop, max_growth or both".into());
            }
            Rule::RowCountChange { max_drop, max_growth }
        }
        "sql" => {
            let text = sql_text(value)?;
            parse_query(&text)?;
            Rule::Sql(text)
        }
        other => unreachable!("not a rule: {other}"),
    })
}

fn only_keys(table: &toml::Table, allowed: &[&str]) -> Result<(), String> {
    match table.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!("unknown key '{key}' (expected {})", allowed.join(", "))),
        None => Ok(()),
    }
}

/// A column as the target's table names it (lower case, as Glue stores names).
fn column_name(value: &toml::Value) -> Result<String, String> {
    match value.as_str() {
        Some(text) if !text.trim().is_empty() => Ok(names::normalize(text, 0)),
        _ => Err(format!("{value} is not a column name")),
    }
}

/// `["a", "b"]`, or one name.
fn column_list(value: &toml::Value) -> Result<Vec<String>, String> {
    let columns = match value {
        toml::Value::Array(items) => items.iter().map(column_name).collect::<Result<Vec<_>, _>>()?,
        single => vec![column_name(single)?],
    };
    if columns.is_empty() {
        return Err("lists no column".into());
    }
    Ok(columns)
}

/// `{ column = "status", values = [...] }`, or `{ status = [...], region = [...] }`.
fn accepted_values(value: &toml::Value) -> Result<Vec<(String, Vec<Accepted>)>, String> {
    let table = value.as_table().ok_or("must be a table { column = \"c\", values = [...] } or { c = [...] }")?;
    let values = |value: &toml::Value| -> Result<Vec<Accepted>, String> {
        let items = value.as_array().ok_or_else(|| format!("{value} is not a list of values"))?;
        if items.is_empty() {
            return Err("the list of values is empty".into());
        }
        items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(Accepted::Text(s.clone())),
                toml::Value::Integer(i) => Ok(Accepted::Int(*i)),
                toml::Value::Float(f) => Ok(Accepted::Float(*f)),
                toml::Value::Boolean(b) => Ok(Accepted::Bool(*b)),
                other => Err(format!("{other} is not a string, number or boolean")),
            })
            .collect()
    };
    if let (Some(toml::Value::String(_)), Some(list)) = (table.get("column"), table.get("values")) {
        only_keys(table, &["column", "values"])?;
        return Ok(vec![(column_name(&table["column"])?, values(list)?)]);
    }
    if table.is_empty() {
        return Err("names no column".into());
    }
    table
        .iter()
        .map(|(column, list)| {
            Ok((
                column_name(&toml::Value::String(column.clone()))?,
                values(list).map_err(|e| format!("{column}: {e}"))?,
            ))
        })
        .collect()
}

/// `{ min = 1, max = 100 }` (either may be left out), or one number: exactly that many.
fn row_count(value: &toml::Value) -> Result<Rule, String> {
    let bound = |value: &toml::Value, key: &str| match value.as_integer() {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(format!("{key}: {value} is not a number of rows")),
    };
    if let Some(exact) = value.as_integer() {
        let n = bound(value, "row_count").map_err(|_| format!("{exact} is not a number of rows"))?;
        return Ok(Rule::RowCount { min: Some(n), max: Some(n) });
    }
    let table = value.as_table().ok_or("must be a table { min, max }")?;
    only_keys(table, &["min", "max"])?;
    let min = table.get("min").map(|v| bound(v, "min")).transpose()?;
    let max = table.get("max").map(|v| bound(v, "max")).transpose()?;
    match (min, max) {
        (None, None) => Err("needs min, max or both".into()),
        (Some(min), Some(max)) if min > max => Err(format!("min {min} is more than max {max}")),
        _ => Ok(Rule::RowCount { min, max }),
    }
}

/// `0.1` or `"10%"`: a fraction of the rows before.
fn fraction(value: &toml::Value) -> Result<f64, String> {
    let fraction = match value {
        toml::Value::Float(f) => *f,
        toml::Value::Integer(i) => *i as f64,
        toml::Value::String(text) => {
            let number = text
                .trim()
                .strip_suffix('%')
                .ok_or_else(|| format!("'{text}' is not a fraction (0.1) or a percentage (\"10%\")"))?;
            number.trim().parse::<f64>().map_err(|_| format!("'{text}' is not a percentage"))? / 100.0
        }
        other => return Err(format!("{other} is not a fraction (0.1) or a percentage (\"10%\")")),
    };
    if !fraction.is_finite() || fraction < 0.0 {
        return Err(format!("{value} must be zero or more"));
    }
    Ok(fraction)
}

/// The longest `max_age`: a thousand years of 366 days.
const MAX_AGE_SECONDS: u64 = 1000 * 366 * 86_400;

/// `"36h"`, `"2d"`, `"2 days"`, `"90 minutes"`, `"1w"`.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration (like \"36h\", \"2d\" or \"90 minutes\")");
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: u64 = number.parse().map_err(|_| bad())?;
    let unit_seconds: u64 = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return Err(bad()),
    };
    value.checked_mul(unit_seconds).map(Duration::from_secs).ok_or_else(bad)
}

/// A check's SQL as a step's statements are read: `${name}` is `$name`, the run's parameter.
fn sql_text(value: &toml::Value) -> Result<String, String> {
    let text = value.as_str().ok_or_else(|| format!("{value} is not SQL text"))?;
    match crate::transform::script::split(text).as_slice() {
        [statement] => Ok(statement.text.clone()),
        [] => Err("is empty".into()),
        several => Err(format!("holds {} statements where one is expected", several.len())),
    }
}

/// The syntax of a boolean expression, checked as the job file is read.
fn parse_expression(text: &str) -> Result<(), String> {
    use datafusion::sql::sqlparser::ast::{Expr, visit_expressions};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Token;
    let mut parser = Parser::new(&GenericDialect {}).try_with_sql(text).map_err(|e| e.to_string())?;
    let expression = parser.parse_expr().map_err(|e| e.to_string())?;
    let next = parser.peek_token().token;
    if next != Token::EOF {
        return Err(format!("unexpected '{next}' after the expression"));
    }
    // DataFusion plans them but cannot run them in the filter a row rule becomes: the run
    // failed after computing its targets.
    let refused = visit_expressions(&expression, |e| match e {
        Expr::InSubquery { .. } | Expr::Exists { .. } => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    });
    match refused {
        std::ops::ControlFlow::Break(()) => Err(
            "IN (SELECT …) and EXISTS cannot be part of an expression rule; a relationship rule checks that values \
             exist in another table, and a sql rule may hold any query"
                .to_string(),
        ),
        std::ops::ControlFlow::Continue(()) => Ok(()),
    }
}

/// The syntax of one query, checked as the job file is read.
fn parse_query(text: &str) -> Result<(), String> {
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let statements = Parser::parse_sql(&GenericDialect {}, text).map_err(|e| e.to_string())?;
    match statements.as_slice() {
        [Statement::Query(_)] => Ok(()),
        [_] => Err("is not a query (SELECT …) whose rows are the violations".into()),
        _ => Err(format!("holds {} statements; a check is one query", statements.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<CheckSpec, String> {
        CheckSpec::resolve(&toml::from_str::<toml::Table>(text).unwrap())
    }

    #[test]
    fn severity_defaults_to_error_and_names_to_the_rule() {
        let spec = check("not_null = [\"Order ID\", \"amount\"]").unwrap();
        assert_eq!(spec.severity, Severity::Error);
        assert_eq!(spec.rule, Rule::NotNull(vec!["order_id".into(), "amount".into()]));
        assert_eq!(spec.name, "not_null(order_id, amount)");
        let spec = check("unique = \"id\"\nseverity = \"warn\"\nname = \"ids\"").unwrap();
        assert_eq!((spec.severity, spec.name.as_str()), (Severity::Warn, "ids"));
        assert_eq!(spec.rule, Rule::Unique(vec!["id".into()]));
    }

    #[test]
    fn each_rule_takes_its_shape() {
        assert_eq!(
            check("accepted_values = { column = \"status\", values = [\"a\", \"b\"] }").unwrap().rule,
            Rule::AcceptedValues(vec![("status".into(), vec![Accepted::Text("a".into()), Accepted::Text("b".into())])])
        );
        assert_eq!(
            check("accepted_values = { status = [\"a\"], code = [1, 2.5, true] }").unwrap().rule,
            Rule::AcceptedValues(vec![
                ("code".into(), vec![Accepted::Int(1), Accepted::Float(2.5), Accepted::Bool(true)]),
                ("status".into(), vec![Accepted::Text("a".into())]),
            ])
        );
        assert_eq!(check("row_count = { min = 1 }").unwrap().rule, Rule::RowCount { min: Some(1), max: None });
        assert_eq!(check("row_count = 3").unwrap().rule, Rule::RowCount { min: Some(3), max: Some(3) });
        assert_eq!(check("expression = \"amount >= 0\"").unwrap().rule, Rule::Expression("amount >= 0".into()));
        assert_eq!(
            check("freshness = { column = \"ts\", max_age = \"2 days\" }").unwrap().rule,
            Rule::Freshness { column: "ts".into(), max_age_seconds: 172_800, max_age: "2 days".into() }
        );
        assert_eq!(
            check("relationship = { column = \"cid\", references = \"raw.customers.id\" }").unwrap().rule,
            Rule::Relationship {
                column: "cid".into(),
                table: "raw.customers".parse().unwrap(),
                references: "id".into()
            }
        );
        assert_eq!(
            check("row_count_change = { max_drop = \"10%\", max_growth = 0.5 }").unwrap().rule,
            Rule::RowCountChange { max_drop: Some(0.1), max_growth: Some(0.5) }
        );
        assert_eq!(
            check("sql = \"SELECT * FROM t WHERE a > b;\"").unwrap().rule,
            Rule::Sql("SELECT * FROM t WHERE a > b".into())
        );
    }

    #[test]
    fn what_cannot_be_a_check_says_why() {
        let cases = [
            ("name = \"x\"", "no rule"),
            ("not_null = [\"a\"]\nunique = [\"a\"]", "2 rules (not_null, unique)"),
            ("not_nul = [\"a\"]", "unknown key 'not_nul'"),
            ("not_null = []", "not_null: lists no column"),
            ("not_null = [\"a\"]\nseverity = \"fatal\"", "severity: \"fatal\" is not"),
            ("row_count = { min = 5, max = 1 }", "min 5 is more than max 1"),
            ("row_count = { least = 5 }", "unknown key 'least'"),
            ("expression = \"amount >\"", "expression: "),
            ("expression = \"a > 1 b\"", "unexpected 'b'"),
            ("sql = \"SELEC * FROM t\"", "sql: "),
            ("sql = \"DROP TABLE t\"", "is not a query"),
            ("freshness = { column = \"ts\", max_age = \"soon\" }", "'soon' is not a duration"),
            ("relationship = { column = \"c\", references = \"customers.id\" }", "is not DB.TABLE.COLUMN"),
            ("row_count_change = { max_drop = \"ten\" }", "max_drop: 'ten' is not a fraction"),
            ("row_count_change = { max_drop = -1 }", "must be zero or more"),
            ("row_count_change = {}", "needs max_drop, max_growth or both"),
            ("accepted_values = { status = [] }", "status: the list of values is empty"),
        ];
        for (text, expected) in cases {
            let why = check(text).unwrap_err();
            assert!(why.contains(expected), "{text}: expected '{expected}' in '{why}'");
        }
    }

    #[test]
    fn ages_in_any_unit() {
        assert_eq!(parse_age("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_age("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("90 minutes"), Ok(Duration::from_secs(5400)));
        assert!(parse_age("99999999999999999999d").is_err());
    }
}
