//! What a job reads and writes, known without running it: the tables that make the edges of a
//! pipeline's graph, and the partitions that tell two writers of one table apart.
//!
//! A job reads its sources' tables, every catalog table its steps and target queries name
//! (`version_of('db.table', N)` included), and the tables its checks name (a relationship's,
//! a `sql` check's, the subqueries of an `expression`).
//! Those are found by DataFusion's own parser and its resolver of table references (the one
//! that decides which tables a session must load), never by matching text: CTEs, subqueries,
//! joins, quoted names and comments are then seen as the engine sees them. Catalog tables are
//! the names with a database (`raw.orders`); a bare name is a view or table the job's own steps
//! create, which lives for the run only (and a bare name that is neither fails the run, not the
//! graph). A statement that does not parse names no table here: the job fails when it runs,
//! with the SQL error at its line, as a job outside a pipeline does.
//!
//! Two targets of one table write disjoint partitions only when that can be proven from the
//! job files alone: both write it at one location, partition it the same way, neither
//! overwrites the whole table, and some partition column is fixed to a different constant by
//! each query, either selected as a literal (`'eu' AS region`, or a parameter of the job file,
//! `$region AS region`) or passed through (`*` or `region`) from a top-level filter
//! `region = 'eu'`. Built-in parameters such as `$logical_date` are the same for every job of a
//! pipeline run, so they tell no two jobs apart. Anything else may overlap, so it is refused: a
//! pipeline whose result would depend on which of two jobs finished last is a bug found before
//! anything runs.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use datafusion::common::{ScalarValue, TableReference};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CreateTable, CreateView, DataType as SqlDataType, Expr, FunctionArg, FunctionArgExpr, Ident, Query,
    SelectItem, SetExpr, Statement as SqlStatement, TableFactor, Value, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::catalog::{TableName, WriteMode};
use crate::checks::Rule;
use crate::runs::job::Job;
use crate::sink::TargetSpec;
use crate::transform::params::Params;
use crate::transform::script;

/// The catalog of the session, whose name a fully qualified reference may carry.
const SESSION_CATALOG: &str = "datafusion";
/// Schemas of a session that hold no catalog table.
const SESSION_SCHEMAS: [&str; 2] = [crate::catalog::provider::SESSION_SCHEMA, "information_schema"];

/// The catalog tables a job reads, and SQL of it that did not parse (`file:line: error`), whose
/// tables are unknown.
#[derive(Debug, Default)]
pub struct Reads {
    pub tables: BTreeSet<TableName>,
    pub unparsed: Vec<String>,
}

/// The catalog tables a job reads: its sources, and what its steps and target queries name.
pub fn reads(job: &Job) -> Reads {
    let mut reads = Reads::default();
    reads.tables.extend(job.sources.iter().map(|s| s.table.clone()));
    // Names the job's own statements create: a later statement that names one reads the
    // run's view or table, not the catalog.
    let mut created: BTreeSet<TableReference> = BTreeSet::new();
    let scripts = job.steps.iter().map(|s| (s.display.clone(), s.sql.as_str()));
    let queries = job.targets.iter().map(|t| (format!("target {} query", t.table), t.query.as_str()));
    // A target's checks read the tables they name too: they run before the publication.
    let checks = job.targets.iter().flat_map(|t| t.checks.iter().map(move |c| (t, c)));
    let mut check_sql = Vec::new();
    for (target, check) in checks {
        match &check.rule {
            Rule::Relationship { table, .. } => {
                reads.tables.insert(table.clone());
            }
            Rule::Sql(sql) => check_sql.push((format!("target {} check {}", target.table, check.name), sql.clone())),
            // A scalar subquery of an expression reads its table; the expression's own columns
            // are the target's, which a SELECT without FROM does not take for tables.
            Rule::Expression(expression) => check_sql
                .push((format!("target {} check {}", target.table, check.name), format!("SELECT ({expression})"))),
            _ => {}
        }
    }
    let check_sql = check_sql.iter().map(|(what, sql)| (what.clone(), sql.as_str()));
    for (what, sql) in scripts.chain(queries).chain(check_sql) {
        for statement in script::split(sql) {
            let parsed = match parse(&statement.text) {
                Ok(parsed) => parsed,
                Err(error) => {
                    reads.unparsed.push(format!("{what}:{}: {error}", statement.line));
                    continue;
                }
            };
            let (references, _ctes) = match resolve_table_references(&parsed, true) {
                Ok(found) => found,
                Err(error) => {
                    reads.unparsed.push(format!("{what}:{}: {error}", statement.line));
                    continue;
                }
            };
            reads.tables.extend(versions_read(&parsed));
            let creates = created_name(&parsed);
            for reference in references {
                if Some(&reference) == creates.as_ref() || created.contains(&reference) {
                    continue;
                }
                reads.tables.extend(catalog_table(&reference));
            }
            created.extend(creates);
        }
    }
    reads
}

/// The catalog tables a job writes: its targets'.
pub fn writes(job: &Job) -> BTreeSet<TableName> {
    job.targets.iter().map(|t| t.table.clone()).collect()
}

fn parse(sql: &str) -> Result<DfStatement, String> {
    let mut statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {}).map_err(|e| e.to_string())?;
    match (statements.pop_front(), statements.is_empty()) {
        (Some(statement), true) => Ok(statement),
        _ => Err("expected one statement".into()),
    }
}

/// The tables a statement reads older versions of: `version_of('db.table', N)`'s first
/// arguments.
fn versions_read(statement: &DfStatement) -> Vec<TableName> {
    struct VersionsRead(Vec<TableName>);
    impl Visitor for VersionsRead {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            let TableFactor::Table { name, args: Some(args), .. } = factor else { return ControlFlow::Continue(()) };
            let is_version_of = name
                .0
                .last()
                .and_then(|part| part.as_ident())
                .is_some_and(|ident| ident.value.eq_ignore_ascii_case(crate::catalog::provider::VersionOf::NAME));
            let first = args.args.first().and_then(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(value))) => match &value.value {
                    Value::SingleQuotedString(text) => TableName::in_sql_text(text).ok(),
                    _ => None,
                },
                _ => None,
            });
            if let (true, Some(table)) = (is_version_of, first) {
                self.0.push(table);
            }
            ControlFlow::Continue(())
        }
    }
    let DfStatement::Statement(statement) = statement else { return Vec::new() };
    let mut found = VersionsRead(Vec::new());
    let _ = statement.visit(&mut found);
    found.0
}

/// The view or table a statement creates for the run, if it creates one.
fn created_name(statement: &DfStatement) -> Option<TableReference> {
    let DfStatement::Statement(inner) = statement else { return None };
    let name = match inner.as_ref() {
        SqlStatement::CreateView(CreateView { name, .. }) => name,
        SqlStatement::CreateTable(CreateTable { name, .. }) => name,
        _ => return None,
    };
    datafusion::sql::planner::object_name_to_table_reference(name.clone(), true).ok()
}

/// The catalog table a reference names: one with a database, outside the session's schemas.
fn catalog_table(reference: &TableReference) -> Option<TableName> {
    let (schema, table) = match reference {
        TableReference::Bare { .. } => return None,
        TableReference::Partial { schema, table } => (schema, table),
        TableReference::Full { catalog, schema, table } if catalog.as_ref() == SESSION_CATALOG => (schema, table),
        TableReference::Full { .. } => return None,
    };
    if SESSION_SCHEMAS.contains(&schema.as_ref()) {
        return None;
    }
    TableName::new(schema, table).ok()
}

/// A target, with the parameters of its job's file that its query may name.
#[derive(Clone, Copy)]
pub struct Writer<'a> {
    pub target: &'a TargetSpec,
    pub params: &'a Params,
}

/// Why two targets of one table may write the same partitions (or else cannot both write
/// it); None when they write disjoint partitions of it.
pub fn overlap(a: Writer, b: Writer) -> Option<String> {
    let (fixed_a, fixed_b) = (fixed_partition_values(a), fixed_partition_values(b));
    let (a, b) = (a.target, b.target);
    if a.location.url() != b.location.url() {
        return Some(format!("they write it to different locations ({} and {})", a.location, b.location));
    }
    let overwrites = |t: &TargetSpec| t.mode == WriteMode::Overwrite;
    if overwrites(a) || overwrites(b) {
        return Some("one of them overwrites the whole table (mode = \"overwrite\")".into());
    }
    if a.partition_by != b.partition_by {
        return Some(format!(
            "they partition it differently ([{}] and [{}])",
            a.partition_by.join(", "),
            b.partition_by.join(", ")
        ));
    }
    if a.partition_by.is_empty() {
        return Some("the table is not partitioned".into());
    }
    let disjoint =
        a.partition_by.iter().any(|key| matches!((fixed_a.get(key), fixed_b.get(key)), (Some(x), Some(y)) if x != y));
    if disjoint {
        return None;
    }
    Some(format!("no partition column ({}) is fixed to different values by their queries", a.partition_by.join(", ")))
}

/// The partition columns a target's query fixes to one constant, with its value as text.
pub fn fixed_partition_values(writer: Writer) -> BTreeMap<String, String> {
    let Writer { target, params } = writer;
    let constant = |expr: &Expr| constant(expr, params);
    let mut fixed = BTreeMap::new();
    // `${name}` becomes `$name` as when the run binds it.
    let statements = script::split(&target.query);
    let [query] = statements.as_slice() else { return fixed };
    let Ok(DfStatement::Statement(statement)) = parse(&query.text) else { return fixed };
    let SqlStatement::Query(query) = statement.as_ref() else { return fixed };
    let Some(select) = top_select(query) else { return fixed };
    // Filtered columns by the path the filter names them with (`region`, `o.region`): a
    // column selected is fixed by a filter on the same path only, and one passed through `*`
    // only from a single relation (joined, `region` may be any side's).
    let mut filtered = BTreeMap::new();
    if let Some(filter) = &select.selection {
        equalities(filter, params, &mut filtered);
    }
    let one_relation = select.from.len() == 1 && select.from[0].joins.is_empty();
    let through_wildcard = |key: &String| {
        let mut found = filtered.iter().filter(|(path, _)| path.rsplit('.').next() == Some(key.as_str()));
        match (found.next(), found.next()) {
            (Some((_, value)), None) if one_relation => Some(value.clone()),
            _ => None,
        }
    };
    for key in &target.partition_by {
        let value = select.projection.iter().find_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } if column(alias) == *key => constant(expr),
            SelectItem::UnnamedExpr(expr) if name_of(expr).as_ref() == Some(key) => {
                path_of(expr).and_then(|path| filtered.get(&path).cloned())
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => through_wildcard(key),
            _ => None,
        });
        if let Some(value) = value {
            fixed.insert(key.clone(), value);
        }
    }
    fixed
}

fn top_select(query: &Query) -> Option<&datafusion::sql::sqlparser::ast::Select> {
    match query.body.as_ref() {
        SetExpr::Select(select) => Some(select),
        SetExpr::Query(inner) => top_select(inner),
        _ => None,
    }
}

/// `column = constant` conjuncts of a filter, by the column's path.
fn equalities(filter: &Expr, params: &Params, found: &mut BTreeMap<String, String>) {
    match filter {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            equalities(left, params, found);
            equalities(right, params, found);
        }
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => {
            let pair = match (path_of(left), constant(right, params)) {
                (Some(path), Some(value)) => Some((path, value)),
                _ => path_of(right).zip(constant(left, params)),
            };
            if let Some((name, value)) = pair {
                found.insert(name, value);
            }
        }
        Expr::Nested(inner) => equalities(inner, params, found),
        _ => {}
    }
}

/// The column an expression is, by its last name part, as a target's columns are named.
fn name_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(column(ident)),
        Expr::CompoundIdentifier(parts) => parts.last().map(column),
        Expr::Nested(inner) => name_of(inner),
        _ => None,
    }
}

/// The column an expression is, with the relation it is qualified by (`o.region`).
fn path_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(column(ident)),
        Expr::CompoundIdentifier(parts) => Some(parts.iter().map(column).collect::<Vec<_>>().join(".")),
        Expr::Nested(inner) => path_of(inner),
        _ => None,
    }
}

fn column(ident: &Ident) -> String {
    let name = if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_lowercase() };
    crate::schema::names::normalize(&name, 0)
}

/// A literal's (or a job parameter's) value as its partition folder spells it: `'2026'` and
/// `2026` are the same partition value, `010` and `10` too. A cast is not looked through (it
/// may make two texts one value: `CAST('01' AS BIGINT)` is 1), nor is any other spelling of a
/// number (`0x0A`): such a column is not known to be fixed, and the writers may overlap.
fn constant(expr: &Expr, params: &Params) -> Option<String> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(text) => Some(canonical_text(text)),
            Value::Number(text, _) => canonical_number(text),
            Value::Placeholder(name) => match params.get(name.trim_start_matches('$'))? {
                ScalarValue::Utf8(Some(text)) => Some(canonical_text(text)),
                other if other.is_null() => None,
                other => canonical_number(&other.to_string()),
            },
            _ => None,
        },
        Expr::Nested(expr) => constant(expr, params),
        // A date spelled as its folder is (`CAST('2026-11-02' AS DATE)`, `DATE '2026-11-02'`).
        Expr::Cast { expr, data_type: SqlDataType::Date, .. } => canonical_date(&constant(expr, params)?),
        Expr::TypedString(typed) if typed.data_type == SqlDataType::Date => match &typed.value.value {
            Value::SingleQuotedString(text) => canonical_date(text),
            _ => None,
        },
        _ => None,
    }
}

fn canonical_date(text: &str) -> Option<String> {
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    (date.format("%Y-%m-%d").to_string() == text).then(|| text.to_string())
}

/// An integer as a bigint partition folder spells it; None for other numbers.
/// A quoted value compared with a numeric column is the number it spells (`'01'` and `'1'`
/// are partition 1 of an int column); the column's type is not known here, so a text that
/// spells a number is taken as it: two writers of a string column's `'01'` and `'1'` are
/// refused though disjoint, never the reverse.
fn canonical_text(text: &str) -> String {
    canonical_number(text.trim()).unwrap_or_else(|| text.to_string())
}

fn canonical_number(text: &str) -> Option<String> {
    text.parse::<i128>().ok().map(|n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(steps: &[&str], targets: &str) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("name = \"j\"\n[[source]]\ntable = \"raw.orders\"\nlocation = \"in/\"\n");
        for (i, sql) in steps.iter().enumerate() {
            std::fs::write(dir.path().join(format!("{i}.sql")), sql).unwrap();
            text.push_str(&format!("[[step]]\nsql = \"{i}.sql\"\n"));
        }
        text.push_str(targets);
        Job::parse(&text, &dir.path().join("j.toml")).unwrap()
    }

    fn target(query: &str, extra: &str) -> String {
        format!("[[target]]\ntable = \"mart.out\"\nquery = \"{query}\"\nlocation = \"/out/\"\n{extra}\n")
    }

    fn names(tables: &BTreeSet<TableName>) -> Vec<String> {
        tables.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reads_are_sources_and_the_catalog_tables_the_sql_names() {
        let step = "-- raw.ignored is in a comment\n\
            CREATE VIEW joined AS WITH recent AS (SELECT * FROM clean.orders WHERE x IN (SELECT y FROM \"ref\".\"days\"))\n\
            SELECT * FROM recent JOIN Clean.Customers c ON true;\n\
            CREATE TABLE totals AS SELECT count(*) AS n FROM joined, datafusion.mart.rates;\n\
            SELECT 'raw.in_a_string' AS s, $week_start AS w FROM totals";
        let job = job(&[step], &target("SELECT * FROM totals JOIN public.scratch ON true", ""));
        let reads = reads(&job);
        assert_eq!(names(&reads.tables), ["clean.customers", "clean.orders", "mart.rates", "raw.orders", "ref.days"]);
        assert!(reads.unparsed.is_empty(), "{:?}", reads.unparsed);
        assert_eq!(names(&writes(&job)), ["mart.out"]);
    }

    #[test]
    fn a_statement_that_does_not_parse_is_named_and_reads_nothing() {
        let job = job(&["SELECT * FROM a.b;\nSELEC oops FROM c.d"], &target("SELECT 1", ""));
        let reads = reads(&job);
        assert_eq!(names(&reads.tables), ["a.b", "raw.orders"]);
        assert_eq!(reads.unparsed.len(), 1);
        assert!(reads.unparsed[0].contains("0.sql:2: "), "{:?}", reads.unparsed);
    }

    fn spec(query: &str, extra: &str) -> TargetSpec {
        job(&[], &target(query, extra)).targets[0].clone()
    }

    fn writer(target: &TargetSpec) -> Writer<'_> {
        static NONE: std::sync::LazyLock<Params> = std::sync::LazyLock::new(Params::default);
        Writer { target, params: &NONE }
    }

    fn overlap(a: &TargetSpec, b: &TargetSpec) -> Option<String> {
        super::overlap(writer(a), writer(b))
    }

    fn fixed_partition_values(target: &TargetSpec) -> BTreeMap<String, String> {
        super::fixed_partition_values(writer(target))
    }

    #[test]
    fn partition_values_fixed_by_a_literal_or_a_filter() {
        let by_region = "partition_by = [\"region\", \"day\"]\nmode = \"overwrite_partitions\"";
        let literal = spec("SELECT x, 'eu' AS region, day FROM t", by_region);
        assert_eq!(fixed_partition_values(&literal), BTreeMap::from([("region".into(), "eu".into())]));
        let filtered = spec("SELECT * FROM t WHERE (day = CAST('2026-11-02' AS DATE)) AND t.region = 'us'", by_region);
        assert_eq!(
            fixed_partition_values(&filtered),
            BTreeMap::from([("day".into(), "2026-11-02".into()), ("region".into(), "us".into())])
        );
        // A column computed from something else is not fixed by a filter on its source.
        let computed = spec("SELECT upper(region) AS region, day FROM t WHERE region = 'us'", by_region);
        assert_eq!(fixed_partition_values(&computed), BTreeMap::new());
        assert_eq!(overlap(&literal, &filtered), None);
        assert!(overlap(&literal, &literal).unwrap().contains("no partition column (region, day) is fixed"));
        assert!(overlap(&literal, &computed).is_some());
        // A cast may make two texts one value; another relation's column fixes nothing.
        let cast = spec("SELECT x, CAST('01' AS BIGINT) AS region, day FROM t", by_region);
        assert_eq!(fixed_partition_values(&cast), BTreeMap::new());
        let joined = spec("SELECT s.x, t.region, s.day FROM s JOIN t ON s.id = t.id WHERE s.region = 'eu'", by_region);
        assert_eq!(fixed_partition_values(&joined), BTreeMap::new());
        let star = spec("SELECT * FROM s JOIN t ON s.id = t.id WHERE s.region = 'eu'", by_region);
        assert_eq!(fixed_partition_values(&star), BTreeMap::new());
        let numbers = spec("SELECT x, 010 AS region, day FROM t", by_region);
        assert_eq!(fixed_partition_values(&numbers), BTreeMap::from([("region".into(), "10".into())]));
    }

    #[test]
    fn overwriting_or_partitioning_differently_always_overlaps() {
        let eu = spec("SELECT 'eu' AS region", "partition_by = [\"region\"]\nmode = \"append\"");
        let us = spec("SELECT 'us' AS region", "partition_by = [\"region\"]\nmode = \"append\"");
        assert_eq!(overlap(&eu, &us), None);
        let whole = spec("SELECT 'us' AS region", "partition_by = [\"region\"]");
        assert!(overlap(&eu, &whole).unwrap().contains("overwrites the whole table"));
        let by_day = spec("SELECT 'us' AS day", "partition_by = [\"day\"]\nmode = \"append\"");
        assert!(overlap(&eu, &by_day).unwrap().contains("partition it differently ([region] and [day])"));
        let elsewhere = spec("SELECT 'us' AS region", "partition_by = [\"region\"]\nmode = \"append\"");
        let elsewhere = TargetSpec { location: crate::location::Location::parse("/other/").unwrap(), ..elsewhere };
        assert!(overlap(&eu, &elsewhere).unwrap().contains("different locations"));
        let flat = spec("SELECT 1 AS x", "mode = \"append\"");
        assert!(overlap(&flat, &flat).unwrap().contains("not partitioned"));
        // '1' and 1 are one partition value.
        let one = spec("SELECT '1' AS region", "partition_by = [\"region\"]\nmode = \"append\"");
        let also_one = spec("SELECT 1 AS region", "partition_by = [\"region\"]\nmode = \"append\"");
        assert!(overlap(&one, &also_one).is_some());
    }

    #[test]
    fn a_job_parameter_fixes_a_partition_and_a_built_in_does_not() {
        let by_region = "partition_by = [\"region\"]\nmode = \"overwrite_partitions\"";
        let eu = job(&[], &format!("[params]\nregion = \"eu\"\n{}", target("SELECT $region AS region", by_region)));
        let us = job(
            &[],
            &format!("[params]\nregion = \"us\"\n{}", target("SELECT * FROM t WHERE region = ${region}", by_region)),
        );
        fn writer(job: &Job) -> Writer<'_> {
            Writer { target: &job.targets[0], params: &job.params }
        }
        assert_eq!(super::fixed_partition_values(writer(&eu)), BTreeMap::from([("region".into(), "eu".into())]));
        assert_eq!(super::overlap(writer(&eu), writer(&us)), None);
        let today = job(&[], &target("SELECT $logical_date AS region", by_region));
        assert!(super::overlap(writer(&today), writer(&today)).is_some());
    }
}
