//! SQL scripts: statements split with the line each starts on, placeholders bound as values,
//! errors that name the file and line.
//!
//! Splitting is lexical (quotes, comments), so a `;` inside a string or comment does not end a
//! statement. `${name}` is rewritten to `$name`, DataFusion's placeholder syntax, in the same
//! pass and only outside strings and comments: the value itself never enters the SQL text.

use std::ops::ControlFlow;

use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{CopyToSource, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Value, ValueWithSpan, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::params::Params;
use crate::catalog::provider::SESSION_SCHEMA;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement's text, from its first token to before its `;`.
    pub text: String,
    /// The line of the script its first token is on (from 1).
    pub line: usize,
}

/// Splits a script into statements.
pub fn split(script: &str) -> Vec<Statement> {
    // Editors on Windows begin files with a byte-order mark, which is no SQL.
    let script = script.strip_prefix('\u{feff}').unwrap_or(script);
    let bytes = script.as_bytes();
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut start_line: Option<usize> = None;
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let rest = &script[i..];
        if rest.starts_with("--") {
            let end = rest.find('\n').map_or(script.len(), |n| i + n);
            if start_line.is_some() {
                current.push_str(&script[i..end]);
            }
            i = end;
            continue;
        }
        if rest.starts_with("/*") {
            let end = i + block_comment_len(rest);
            let comment = &script[i..end];
            if start_line.is_some() {
                current.push_str(comment);
            }
            line += comment.matches('\n').count();
            i = end;
            continue;
        }
        if let Some(end) = literal_end(script, i) {
            start_line.get_or_insert(line);
            let quoted = &script[i..end];
            current.push_str(quoted);
            line += quoted.matches('\n').count();
            i = end;
            continue;
        }
        if c == b';' {
            if let Some(start) = start_line.take() {
                statements.push(Statement { text: current.trim_end().to_string(), line: start });
            }
            current.clear();
            i += 1;
            continue;
        }
        if c == b'$' && rest.starts_with("${") {
            if let Some(close) = rest.find('}') {
                let name = &rest[2..close];
                if !name.is_empty() && name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                    start_line.get_or_insert(line);
                    current.push('$');
                    current.push_str(name);
                    i += close + 1;
                    // `${a}b` names `a`: `$ab` would name another parameter.
                    if script[i..].starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '_') {
                        current.push(' ');
                    }
                    continue;
                }
            }
        }
        if c == b'\n' {
            line += 1;
        }
        if !c.is_ascii_whitespace() {
            start_line.get_or_insert(line);
        }
        if start_line.is_some() {
            let ch = rest.chars().next().expect("not at the end");
            current.push(ch);
            i += ch.len_utf8();
        } else {
            i += 1;
        }
    }
    if let Some(start) = start_line {
        if !current.trim().is_empty() {
            statements.push(Statement { text: current.trim_end().to_string(), line: start });
        }
    }
    statements
}

/// Where a string or quoted identifier starting at `start` ends, or None when none starts
/// there: `'…'`, `"…"` and `` `…` `` (a doubled quote escapes), `E'…'` (a backslash escapes
/// too) and `$tag$…$tag$`, as DataFusion's parser reads them.
/// The length of the block comment `text` begins with, the comments nested in it included
/// (as the parser, DuckDB, Spark and PostgreSQL nest them: commenting out a statement that
/// holds a comment comments out all of it); the rest of `text` when it never closes.
fn block_comment_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0);
    while i + 1 < bytes.len() {
        match &bytes[i..i + 2] {
            b"/*" => {
                depth += 1;
                i += 2;
            }
            b"*/" => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    text.len()
}

fn literal_end(script: &str, start: usize) -> Option<usize> {
    let bytes = script.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match bytes[start] {
        b'\'' | b'"' | b'`' => Some(quoted_end(bytes, start, false)),
        b'E' | b'e' if bytes.get(start + 1) == Some(&b'\'') && (start == 0 || !is_word(bytes[start - 1])) => {
            Some(quoted_end(bytes, start + 1, true))
        }
        b'$' => {
            let name_len = script[start + 1..].find('$')?;
            let name = &script[start + 1..start + 1 + name_len];
            let is_tag = name.bytes().all(is_word) && !name.starts_with(|c: char| c.is_ascii_digit());
            if !is_tag {
                return None;
            }
            let tag = &script[start..start + name_len + 2];
            let body = start + tag.len();
            Some(script[body..].find(tag).map_or(script.len(), |n| body + n + tag.len()))
        }
        _ => None,
    }
}

/// Where a quoted string or identifier opened at `start` ends (a doubled quote escapes, and a
/// backslash when `backslashes`).
fn quoted_end(bytes: &[u8], start: usize, backslashes: bool) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        if backslashes && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Runs every statement of a script in order; returns the DataFrame of the last one (not yet
/// executed when it is a query; DDL such as `CREATE VIEW` has run by then).
pub async fn run(ctx: &SessionContext, file: &str, script: &str, params: &Params) -> Result<Option<DataFrame>> {
    let mut last = None;
    for statement in &statements(file, script)? {
        last = Some(run_statement(ctx, file, statement, params).await?);
    }
    Ok(last)
}

/// The statements of `script`, in order; a script of none (empty, or only comments) is an error.
pub fn statements(file: &str, script: &str) -> Result<Vec<Statement>> {
    let statements = split(script);
    if statements.is_empty() {
        return Err(Error::config(format!("{file}: no SQL statement")));
    }
    Ok(statements)
}

pub async fn run_statement(
    ctx: &SessionContext,
    file: &str,
    statement: &Statement,
    params: &Params,
) -> Result<DataFrame> {
    let plan = plan_statement(ctx, file, statement, params).await?;
    run_planned(ctx, file, statement, plan).await
}

/// Runs `statement` as [`plan_statement`] planned it.
pub async fn run_planned(
    ctx: &SessionContext,
    file: &str,
    statement: &Statement,
    plan: LogicalPlan,
) -> Result<DataFrame> {
    let located = |error: DataFusionError| sql_error(ctx, file, statement, error);
    // DDL runs as it is planned; INSERT only when its result is read, which a step followed
    // by other statements never does: run it here, in its turn.
    let writes = matches!(plan, LogicalPlan::Dml(_));
    let frame = ctx.execute_logical_plan(plan).await.map_err(located)?;
    if !writes {
        return Ok(frame);
    }
    let counts = frame.collect().await.map_err(located)?;
    ctx.read_batches(counts).map_err(located)
}

/// Operators in a row at one level of parentheses: the parser makes `a + b + … + z` a tree
/// as deep as it is long, and the planner's walks of it recurse that deep (past the stack at
/// some 14,000) and take time cubic in it.
const MAX_OPERATORS_IN_A_ROW: usize = 1000;

/// Refuses a statement with more than [`MAX_OPERATORS_IN_A_ROW`] binary operators between two
/// commas at one level of parentheses, before anything parses it.
pub fn refuse_long_operator_chains(file: &str, statement: &Statement) -> Result<()> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, &statement.text).tokenize() else {
        return Ok(()); // The parser says what is wrong.
    };
    let mut in_a_row = vec![0usize];
    for token in tokens {
        match token {
            Token::LParen => in_a_row.push(0),
            Token::RParen if in_a_row.len() > 1 => {
                in_a_row.pop();
            }
            Token::Comma => *in_a_row.last_mut().expect("never empty") = 0,
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq => *in_a_row.last_mut().expect("never empty") += 1,
            Token::Word(word) if word.value.eq_ignore_ascii_case("and") || word.value.eq_ignore_ascii_case("or") => {
                *in_a_row.last_mut().expect("never empty") += 1
            }
            _ => continue,
        }
        if in_a_row.last().is_some_and(|&n| n > MAX_OPERATORS_IN_A_ROW) {
            return Err(Error::query(format!(
                "{file}:{}: the statement nests too deeply: more than {MAX_OPERATORS_IN_A_ROW} operators in a row \
                 make one expression; split it (a CTE, or a list: IN (…))",
                statement.line
            )));
        }
    }
    Ok(())
}

/// Plans a statement with its parameters bound, without running it.
pub async fn plan_statement(
    ctx: &SessionContext,
    file: &str,
    statement: &Statement,
    params: &Params,
) -> Result<LogicalPlan> {
    refuse_long_operator_chains(file, statement)?;
    let located = |error: DataFusionError| sql_error(ctx, file, statement, error);
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let mut parsed = state.sql_to_statement(&statement.text, &dialect).map_err(located)?;
    // Spark's `CREATE TEMP VIEW`: every view SQL creates lives for the session already.
    if let DfStatement::Statement(inner) = &mut parsed
        && let datafusion::sql::sqlparser::ast::Statement::CreateView(view) = inner.as_mut()
    {
        view.temporary = false;
    }
    bind(&mut parsed, params).map_err(|e| e.context(format!("{file}:{}", statement.line)))?;
    let plan = state.statement_to_plan(parsed).await.map_err(located)?;
    refuse_writes_outside_the_session(&plan).map_err(|e| e.context(format!("{file}:{}", statement.line)))?;
    Ok(plan)
}

/// SQL changes the session, never the catalog nor any file: dropping a catalog table or
/// creating a database is refused as such (DataFusion would answer that the table does not
/// exist, or that the schema does), and so are `COPY … TO` and an `INSERT` into anything but a
/// table the session made, which write files no run publishes (over a published table's
/// files or a source's, even in `etl cost` and `--dry-run`).
fn refuse_writes_outside_the_session(plan: &LogicalPlan) -> Result<()> {
    use datafusion::datasource::{MemTable, source_as_provider};
    use datafusion::logical_expr::{DdlStatement, DropTable};
    const OUTPUTS: &str = "a job's [[target]] writes outputs, as one publication";
    match plan {
        LogicalPlan::Copy(copy) => {
            Err(Error::query(format!("COPY … TO '{}' is refused: SQL writes no files; {OUTPUTS}", copy.output_url)))
        }
        LogicalPlan::Dml(dml) => {
            let in_session =
                source_as_provider(&dml.target).is_ok_and(|t| (t.as_ref() as &dyn std::any::Any).is::<MemTable>());
            if in_session {
                return Ok(());
            }
            Err(Error::query(format!(
                "{} {} is refused: SQL changes only the tables it creates (named without a database, for the session); {OUTPUTS}",
                dml.op.name(),
                dml.table_name
            )))
        }
        LogicalPlan::Ddl(DdlStatement::DropTable(DropTable { name, .. }))
        | LogicalPlan::Ddl(DdlStatement::DropView(datafusion::logical_expr::DropView { name, .. }))
            if name.schema().is_some_and(|schema| schema != crate::catalog::provider::SESSION_SCHEMA) =>
        {
            Err(Error::query(format!(
                "cannot drop {name}: catalog tables are made by crawls and jobs, and SQL only reads them (views and tables SQL creates, named without a database, live for the session)"
            )))
        }
        LogicalPlan::Ddl(DdlStatement::CreateCatalogSchema(create)) => Err(Error::query(format!(
            "cannot create schema {}: the catalog's databases are made by crawls and by jobs' targets",
            create.schema_name
        ))),
        // The writer takes its row groups from the session (smaller under a memory limit):
        // a SET would change a target's files behind its options, and the layout they record.
        LogicalPlan::Statement(datafusion::logical_expr::Statement::SetVariable(set))
            if set.variable.to_lowercase().starts_with("datafusion.execution.parquet.") =>
        {
            Err(Error::query(format!(
                "SET {} is refused: a target's Parquet files are set by its options (compression, row_group_rows, row_group_bytes, bloom_filter)",
                set.variable
            )))
        }
        _ => Ok(()),
    }
}

/// Binds every `$name` of a parsed statement to its value, as a typed literal node of the
/// syntax tree: the value's type is known while the statement is planned (so `$weeks * 7` and
/// `$since < order_date` type-check like literals do), and no value is ever parsed as SQL.
fn bind(statement: &mut DfStatement, params: &Params) -> Result<()> {
    let mut substitute = |expr: &mut SqlExpr| {
        // DataFusion reads `12345678901234567.89` as a double, 12345678901234569.05: a literal
        // with more digits than a double holds is the decimal it spells, as Athena reads it.
        // Shorter ones stay doubles, which compare with double columns as doubles.
        if let SqlExpr::Value(ValueWithSpan { value: Value::Number(text, _), .. }) = expr
            && let Some(decimal) = exact_decimal_type(text)
        {
            match parse_expr(&format!("CAST('{text}' AS {decimal})")) {
                Ok(exact) => *expr = exact,
                Err(e) => return ControlFlow::Break(Error::query(format!("the literal {text}: {e}"))),
            }
        }
        if let SqlExpr::Value(ValueWithSpan { value: Value::Placeholder(id), .. }) = expr {
            let name = id.trim_start_matches('$');
            let bound = match params.get(name) {
                Some(value) => literal(value),
                None => {
                    let known = params.names().map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
                    Err(Error::query(format!("parameter {id} is not defined (defined: {known})")))
                }
            };
            match bound {
                Ok(literal) => *expr = literal,
                Err(error) => return ControlFlow::Break(error),
            }
        }
        ControlFlow::Continue(())
    };
    let flow = match statement {
        DfStatement::Statement(inner) => visit_expressions_mut(inner.as_mut(), &mut substitute),
        DfStatement::CopyTo(copy) => match &mut copy.source {
            CopyToSource::Query(query) => visit_expressions_mut(query.as_mut(), &mut substitute),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        DfStatement::Explain(explain) => return bind(explain.statement.as_mut(), params),
        DfStatement::CreateExternalTable(_) | DfStatement::Reset(_) => ControlFlow::Continue(()),
    };
    match flow {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// A parameter's value as a literal of its type.
fn literal(value: &ScalarValue) -> Result<SqlExpr> {
    if let ScalarValue::Utf8(Some(text)) = value {
        return Ok(SqlExpr::Value(Value::SingleQuotedString(text.clone()).with_empty_span()));
    }
    let cast = |sql_type: &str| format!("CAST('{value}' AS {sql_type})");
    // The text is our own rendering of a number, date or timestamp: nothing a user wrote.
    let text = match value {
        ScalarValue::Boolean(Some(_)) => cast("BOOLEAN"),
        ScalarValue::Int32(Some(_)) => cast("INT"),
        ScalarValue::Int64(Some(_)) => cast("BIGINT"),
        ScalarValue::Float64(Some(_)) => cast("DOUBLE"),
        ScalarValue::Date32(Some(_)) => cast("DATE"),
        // A timestamp scalar displays as its count of microseconds, which no cast reads; and a
        // CAST to TIMESTAMP makes nanoseconds, which end in 2262 and begin in 1677, where
        // tables hold microseconds from year 1 to 9999.
        ScalarValue::TimestampMicrosecond(Some(micros), None) => {
            let at = chrono::DateTime::from_timestamp_micros(*micros)
                .ok_or_else(|| Error::query(format!("timestamp parameter {micros} µs is out of range")))?;
            let rendered = at.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f");
            format!("arrow_cast('{rendered}', 'Timestamp(Microsecond, None)')")
        }
        other => {
            return Err(Error::query(format!("a parameter of type {} cannot be bound", other.data_type())));
        }
    };
    parse_expr(&text).map_err(|e| Error::query(format!("binding {value}: {e}")))
}

/// Significant digits a double holds exactly, whatever they are.
const DOUBLE_DIGITS: usize = 15;

/// `DECIMAL(p,s)` for a literal with a fraction and more significant digits than a double
/// holds (and no more than a decimal does); None for others.
fn exact_decimal_type(text: &str) -> Option<String> {
    let (whole, fraction) = text.split_once('.')?;
    if !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None; // an exponent
    }
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0').len();
    let precision = whole.trim_start_matches('0').len() + fraction.len();
    (significant > DOUBLE_DIGITS && precision <= 38).then(|| format!("DECIMAL({precision},{})", fraction.len()))
}

fn parse_expr(text: &str) -> std::result::Result<SqlExpr, datafusion::sql::sqlparser::parser::ParserError> {
    Parser::new(&GenericDialect {}).try_with_sql(text).and_then(|mut parser| parser.parse_expr())
}

/// "file.sql:LINE: message". LINE is where DataFusion points when it gives a span; else the
/// line of the one token the message names (a function, an identifier), the last line for an
/// input that ended too soon, the statement's first line otherwise.
fn sql_error(ctx: &SessionContext, file: &str, statement: &Statement, error: DataFusionError) -> Error {
    let message = error.to_string();
    let relative = error
        .diagnostic()
        .and_then(|d| d.span)
        .map(|span| span.start.line as usize)
        .filter(|&l| l > 0)
        .or_else(|| parser_line(&message))
        .or_else(|| message.contains("found: EOF").then(|| statement.text.lines().count()))
        .or_else(|| named_token_line(&message, &statement.text));
    let line = relative.map_or(statement.line, |relative| statement.line + relative - 1);
    let error = match (missing_table(&message), error.find_root()) {
        (Some(missing), _) => Error::query(missing_table_message(ctx, &missing)),
        (None, DataFusionError::SQL(parse, _)) => Error::query(parser_message(parse)),
        (None, _) => Error::from(error),
    };
    error.context(format!("{file}:{line}"))
}

/// The parser's own words, without Rust's `ParserError("…")` around them; the line goes in the
/// caller's `file:line`, the column stays.
fn parser_message(error: &datafusion::sql::sqlparser::parser::ParserError) -> String {
    use datafusion::sql::sqlparser::parser::ParserError;
    let text = match error {
        ParserError::TokenizerError(text) | ParserError::ParserError(text) => text.as_str(),
        ParserError::RecursionLimitExceeded => return "the statement nests too deeply".to_string(),
    };
    match text.rfind(" at Line: ").zip(text.rfind(", Column: ")) {
        Some((at, column)) if column > at => format!("{} (column {})", &text[..at], &text[column + 10..]),
        _ => text.to_string(),
    }
}

/// sqlparser reports "... at Line: 3, Column: 7" relative to the statement.
fn parser_line(message: &str) -> Option<usize> {
    let at = message.rfind("Line: ")?;
    message[at + 6..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The line (from 1) of the statement on which the token a message quotes (`'abs'`) stands,
/// when it stands on exactly one.
fn named_token_line(message: &str, text: &str) -> Option<usize> {
    let quoted = message.split('\'').nth(1)?;
    let token = quoted.rsplit('.').next()?.to_ascii_lowercase();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let is_word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    let mut lines = text.lines().enumerate().filter(|(_, line)| {
        let lower = line.to_ascii_lowercase();
        lower.match_indices(&token).any(|(at, _)| {
            !is_word(at.checked_sub(1).and_then(|i| lower.as_bytes().get(i)))
                && !is_word(lower.as_bytes().get(at + token.len()))
        })
    });
    let (first, _) = lines.next()?;
    lines.next().is_none().then_some(first + 1)
}

/// `table 'datafusion.public.flights' not found` -> `public.flights`.
fn missing_table(message: &str) -> Option<String> {
    let rest = message.split("table '").nth(1)?;
    let (name, tail) = rest.split_once('\'')?;
    tail.trim_start().starts_with("not found").then(|| name.trim_start_matches("datafusion.").to_string())
}

/// What a user who named a table that does not exist should read: that tables are
/// `DATABASE.TABLE`, and the closest names the catalog has.
fn missing_table_message(ctx: &SessionContext, missing: &str) -> String {
    let (database, table) = missing.split_once('.').unwrap_or(("", missing));
    let unqualified = database == SESSION_SCHEMA;
    let known: Vec<String> = ctx
        .catalog("datafusion")
        .map(|catalog| {
            catalog
                .schema_names()
                .into_iter()
                .filter(|schema| schema != SESSION_SCHEMA)
                .flat_map(|schema| {
                    let tables = catalog.schema(&schema).map(|s| s.table_names()).unwrap_or_default();
                    tables.into_iter().map(move |t| format!("{schema}.{t}"))
                })
                .collect()
        })
        .unwrap_or_default();
    let wanted = if unqualified { table.to_string() } else { missing.to_string() };
    let mut scored: Vec<(f64, &String)> = known
        .iter()
        .map(|name| {
            let compared = if unqualified { name.rsplit('.').next().unwrap_or(name) } else { name.as_str() };
            (strsim::jaro_winkler(&wanted, compared), name)
        })
        .filter(|(score, _)| *score > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let closest: Vec<&str> = scored.iter().take(3).map(|(_, name)| name.as_str()).collect();
    let mut text = if unqualified {
        format!("table {table} not found: catalog tables are named DATABASE.TABLE")
    } else {
        format!("table {missing} not found")
    };
    if !closest.is_empty() {
        text.push_str(&format!(" (did you mean {}?)", closest.join(", ")));
    } else if known.is_empty() {
        text.push_str(" (the catalog has no tables yet: `etl crawl` or `etl run` records them)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_keep_their_starting_line() {
        let script =
            "-- weekly job\nCREATE VIEW a AS\n  SELECT ';' AS x; /* ; */\n\nSELECT *\nFROM a -- trailing ;\n;\n";
        let statements = split(script);
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0], Statement { text: "CREATE VIEW a AS\n  SELECT ';' AS x".into(), line: 2 });
        assert_eq!(statements[1].line, 5);
        assert!(statements[1].text.starts_with("SELECT *\nFROM a"));
    }

    #[test]
    fn braced_placeholders_become_dollar_names_outside_strings_only() {
        let statements = split("SELECT ${region}, '${region}', $since");
        assert_eq!(statements[0].text, "SELECT $region, '${region}', $since");
    }

    #[test]
    fn semicolons_in_dollar_quoted_and_escaped_strings_split_nothing() {
        let texts = |script| split(script).into_iter().map(|s| s.text).collect::<Vec<_>>();
        assert_eq!(texts("SELECT $$a;b$$ AS x; SELECT 2"), ["SELECT $$a;b$$ AS x", "SELECT 2"]);
        assert_eq!(texts("SELECT $q$a;$$;b$q$; SELECT $a, $b;"), ["SELECT $q$a;$$;b$q$", "SELECT $a, $b"]);
        assert_eq!(
            texts("SELECT E'a\\';b' AS x; SELECT 'c\\'; SELECT 3"),
            ["SELECT E'a\\';b' AS x", "SELECT 'c\\'", "SELECT 3"]
        );
    }

    #[test]
    fn multiline_strings_count_their_lines() {
        let statements = split("SELECT 'a\nb';\nSELECT 2");
        assert_eq!(statements[1].line, 3);
    }

    #[tokio::test]
    async fn values_are_bound_never_spliced() {
        let ctx = SessionContext::new();
        let mut params = Params::default();
        params.set("name", ScalarValue::Utf8(Some("x'; DROP TABLE t; --".into())));
        params.set("since", ScalarValue::Utf8(Some("2026-01-02".into())));
        let df = run(&ctx, "q.sql", "SELECT $name AS n, DATE '2026-01-03' > $since AS later", &params)
            .await
            .unwrap()
            .unwrap();
        let batches = df.collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        assert!(text.contains("x'; DROP TABLE t; --"), "{text}");
        assert!(text.contains("true"), "{text}");
    }

    #[tokio::test]
    async fn errors_name_the_file_and_line() {
        let ctx = SessionContext::new();
        let params = Params::default();
        let err = run(&ctx, "q.sql", "SELECT 1;\n\nSELECT $missing", &params).await.unwrap_err();
        assert!(err.message().starts_with("q.sql:3: parameter $missing is not defined"), "{err}");
        let err = run(&ctx, "q.sql", "SELECT 1;\nSELECT\n  nope\nFROM (SELECT 1 AS a)", &params).await.unwrap_err();
        assert!(err.message().starts_with("q.sql:"), "{err}");
        assert!(err.message().contains("nope"), "{err}");
        let err = run(&ctx, "q.sql", "SELECT 1;\nSELEC 2", &params).await.unwrap_err();
        assert!(err.message().starts_with("q.sql:2:"), "{err}");
    }

    #[test]
    fn a_quoted_token_names_its_line_when_it_stands_on_one() {
        let text = "SELECT a,\n  abs(a, b)\nFROM t";
        assert_eq!(named_token_line("Function 'abs' expects 1 arguments", text), Some(2));
        assert_eq!(named_token_line("column 'raw.t.a' is ambiguous", text), None, "a is on two lines");
        assert_eq!(named_token_line("no quotes here", text), None);
        assert_eq!(missing_table("table 'datafusion.public.flights' not found"), Some("public.flights".into()));
        assert_eq!(missing_table("Function 'abs' expects"), None);
    }
}
