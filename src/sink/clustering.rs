//! The order etl gives a target's rows when the job sets none (`sort_by` unset).
//!
//! Athena skips a row group when its min/max statistics exclude the query's filter, so what it
//! bills depends on which rows share a row group. Analysts filter by time first (a day, a
//! month, a year), then by a few categories; rows in time order give every time filter row
//! groups it can skip, and a category sorted within each time slice narrows it further. Files
//! of a partition hold one value of each partition key already.
//!
//! So the default is: the calendar columns the output has (`year`, `month`, `day`, `hour`,
//! integers, coarse to fine), else its first date or timestamp column; then the column a
//! freshness check watches; then the columns `accepted_values` checks declare (a list of values
//! is a low cardinality). It knows only names, types and checks: it reads no data. A query
//! ending in an `ORDER BY` keeps its order instead.

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::logical_expr::LogicalPlan;

use super::FileLayout;
use crate::checks::{CheckSpec, Rule};

/// Integer columns that hold a calendar part, coarse to fine.
const CALENDAR: &[&str] = &["year", "month", "day", "hour"];
/// Sorting by more keys than this orders nothing a reader prunes by.
const MAX_KEYS: usize = 4;

/// The order chosen, and why (the run report says both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clustering {
    pub sort_by: Vec<String>,
    pub reason: String,
}

/// The order of the rows of a target's query: the query's own when it ends in an `ORDER BY`
/// and the target sets no `sort_by` (a user's order is kept, not replaced by a guess).
pub fn for_query(
    layout: &FileLayout,
    query: &LogicalPlan,
    checks: &[CheckSpec],
    partition_keys: &[String],
) -> Clustering {
    fn ordered(plan: &LogicalPlan) -> bool {
        match plan {
            LogicalPlan::Sort(_) => true,
            LogicalPlan::Projection(p) => ordered(&p.input),
            LogicalPlan::Limit(l) => ordered(&l.input),
            LogicalPlan::SubqueryAlias(a) => ordered(&a.input),
            _ => false,
        }
    }
    if layout.sort_by.is_none() && ordered(query) {
        return Clustering { sort_by: Vec::new(), reason: "the query's ORDER BY".to_string() };
    }
    choose(layout, query.schema().as_arrow(), checks, partition_keys)
}

/// The order of a target's rows within each partition.
pub fn choose(layout: &FileLayout, output: &Schema, checks: &[CheckSpec], partition_keys: &[String]) -> Clustering {
    let mut clustering = linear(layout, output, checks, partition_keys);
    if layout.zorder && clustering.sort_by.len() > 1 {
        clustering.reason = format!("{}, in Z-order (zorder = true)", clustering.reason);
    }
    clustering
}

/// The columns to order by, and why.
fn linear(layout: &FileLayout, output: &Schema, checks: &[CheckSpec], partition_keys: &[String]) -> Clustering {
    if let Some(sort_by) = &layout.sort_by {
        let reason = match sort_by.is_empty() {
            true => "sort_by = [] keeps the query's order".to_string(),
            false => "sort_by".to_string(),
        };
        return Clustering { sort_by: sort_by.clone(), reason };
    }
    let candidate = |name: &str| partition_keys.iter().all(|k| k != name) && output.field_with_name(name).is_ok();
    let mut sort_by: Vec<String> = Vec::new();
    let mut why: Vec<String> = Vec::new();
    let calendar: Vec<String> = CALENDAR
        .iter()
        .filter(|name| candidate(name) && output.field_with_name(name).is_ok_and(|f| f.data_type().is_integer()))
        .map(|name| name.to_string())
        .collect();
    if !calendar.is_empty() {
        why.push(format!("calendar columns {}", calendar.join(", ")));
        sort_by.extend(calendar);
    } else if let Some(time) = output.fields().iter().find(|f| {
        candidate(f.name()) && matches!(f.data_type(), DataType::Date32 | DataType::Date64 | DataType::Timestamp(..))
    }) {
        why.push(format!("time column {}", time.name()));
        sort_by.push(time.name().clone());
    }
    for check in checks {
        let columns: Vec<&String> = match &check.rule {
            Rule::Freshness { column, .. } => vec![column],
            Rule::AcceptedValues(lists) => lists.iter().map(|(column, _)| column).collect(),
            _ => continue,
        };
        for column in columns {
            if candidate(column) && !sort_by.contains(column) && sort_by.len() < MAX_KEYS {
                why.push(format!("{column} (check {})", check.name));
                sort_by.push(column.clone());
            }
        }
    }
    sort_by.truncate(MAX_KEYS);
    let reason = match sort_by.is_empty() {
        true => {
            "no calendar or time column and no check names a column to cluster by: the query's order is kept".into()
        }
        false => format!("chosen: {}", why.join("; ")),
    };
    Clustering { sort_by, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, TimeUnit};

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(fields.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>())
    }

    #[test]
    fn calendar_columns_come_first_coarse_to_fine() {
        let flights = schema(&[
            ("day", DataType::Int64),
            ("carrier", DataType::Utf8),
            ("month", DataType::Int64),
            ("year", DataType::Int64),
            ("time_hour", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ]);
        let chosen = choose(&FileLayout::default(), &flights, &[], &[]);
        assert_eq!(chosen.sort_by, ["year", "month", "day"]);
        assert!(chosen.reason.contains("calendar columns year, month, day"), "{}", chosen.reason);
        // A partition key is constant in a file: never a sort key.
        assert_eq!(choose(&FileLayout::default(), &flights, &[], &["year".into()]).sort_by, ["month", "day"]);
    }

    #[test]
    fn else_the_first_time_column_then_the_columns_checks_name() {
        let events = schema(&[("id", DataType::Int64), ("at", DataType::Date32), ("kind", DataType::Utf8)]);
        let check = |text: &str| {
            let table: toml::Table = toml::from_str(text).unwrap();
            CheckSpec::resolve(&table).unwrap()
        };
        let checks = [check("accepted_values = { kind = [\"a\", \"b\"] }")];
        let chosen = choose(&FileLayout::default(), &events, &checks, &[]);
        assert_eq!(chosen.sort_by, ["at", "kind"]);
        let nothing = choose(&FileLayout::default(), &schema(&[("id", DataType::Int64)]), &[], &[]);
        assert!(nothing.sort_by.is_empty() && nothing.reason.contains("the query's order is kept"));
        let off = FileLayout { sort_by: Some(Vec::new()), ..FileLayout::default() };
        assert!(choose(&off, &events, &checks, &[]).sort_by.is_empty());
    }
}
