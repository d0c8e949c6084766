//! Checks between staging and publication (write, audit, publish), `etl check`, and the data
//! versions of written tables: `table history`, `rollback`, retention, `version_of`.

use serde_json::{Value, json};

use crate::util::{Output, Sandbox, aws};

const ORDERS: &str = "order_id,customer_id,day,status,amount,coupon,updated_at
1,1,2026-11-02,placed,10,,2026-11-02 10:00:00
2,2,2026-11-02,shipped,20,X,2026-11-02 11:00:00
3,1,2026-11-03,placed,5.5,,2026-11-03 09:00:00
";

/// Orders, customers and VIP customers (only customer 1), and a job writing the orders to
/// `mart.orders` with `extra` (its checks) under the target.
fn sandbox(extra: &str) -> Sandbox {
    let s = Sandbox::new();
    s.write("in/orders/a.csv", ORDERS);
    s.write("in/customers/c.csv", "customer_id,name\n1,ann\n2,bob\n");
    s.write("in/vip/v.csv", "customer_id,name\n1,ann\n");
    job(&s, extra);
    s
}

fn job(s: &Sandbox, extra: &str) {
    s.write(
        "jobs/orders.toml",
        format!(
            r#"name = "orders"
[[source]]
table = "raw.orders"
location = "../in/orders/"
[[source]]
table = "raw.customers"
location = "../in/customers/"
[[source]]
table = "raw.vip"
location = "../in/vip/"
[[target]]
table = "mart.orders"
query = "SELECT * FROM raw.orders"
location = "../out/orders/"
partition_by = ["day"]
{extra}
"#
        ),
    );
}

fn run(s: &Sandbox, date: &str) -> Output {
    s.etl(&["run", "jobs/orders.toml", "--logical-date", date, "--json"])
}

fn report(output: &Output) -> Value {
    serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("not one JSON document ({e}): {output:?}"))
}

/// What a reader can see of the table: its rows through the catalog, the files under its
/// folder, its definition and its history.
fn visible(s: &Sandbox) -> (Vec<Value>, Vec<String>, Value, Value) {
    let tables = s.etl(&[
        "sql",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'mart'",
        "--format",
        "json",
    ]);
    let exists = tables.json().as_array().is_some_and(|rows| !rows.is_empty());
    if !exists {
        return (Vec::new(), s.files("out/orders"), Value::Null, Value::Null);
    }
    (
        s.query("SELECT * FROM mart.orders ORDER BY order_id"),
        s.files("out/orders"),
        s.json(&["schema", "show", "mart.orders"]),
        s.json(&["table", "history", "mart.orders"]),
    )
}

/// One check, run on the example orders: its result in the report, and the run's exit code.
fn one_check(check: &str, date: &str) -> (i32, Value, Sandbox) {
    let s = sandbox(&format!("[[target.check]]\n{check}\n"));
    let output = run(&s, date);
    let report = report(&output);
    let checks = report["checks"].as_array().unwrap_or_else(|| panic!("no checks: {report}"));
    assert_eq!(checks.len(), 1, "{report}");
    (output.code, checks[0].clone(), s)
}

fn assert_passes(check: &str) {
    let (code, result, s) = one_check(check, "2026-11-03");
    assert_eq!((code, result["status"].as_str()), (0, Some("passed")), "{check}: {result}");
    assert_eq!(result["violations"], 0, "{check}");
    assert_eq!(result["severity"], "error");
    assert_eq!(result["target"], "mart.orders");
    assert!(result["seconds"].as_f64().is_some());
    assert_eq!(s.query("SELECT count(*) AS n FROM mart.orders"), [json!({"n": 3})], "{check}: published");
}

/// A failing error-check: exit 1, the report says which rows, nothing is published and no
/// staged file is left.
fn assert_fails(check: &str, date: &str, violations: u64, samples: usize) -> Value {
    let (code, result, s) = one_check(check, date);
    assert_eq!((code, result["status"].as_str()), (1, Some("failed")), "{check}: {result}");
    assert_eq!(result["violations"], violations, "{check}: {result}");
    assert_eq!(result["samples"].as_array().map(Vec::len), Some(samples), "{check}: {result}");
    assert!(s.files("out/orders").is_empty(), "{check}: {:?}", s.files("out/orders"));
    s.etl(&["sql", "SELECT * FROM mart.orders"]).assert_failure(1, "mart.orders");
    result
}

#[test]
fn not_null() {
    assert_passes("not_null = [\"order_id\", \"amount\"]");
    let result = assert_fails("not_null = [\"order_id\", \"coupon\"]", "2026-11-03", 2, 2);
    assert_eq!(result["rule"], "not_null");
    assert_eq!(result["name"], "not_null(order_id, coupon)");
    assert_eq!(result["samples"][0]["coupon"], Value::Null);
}

#[test]
fn unique() {
    assert_passes("unique = [\"order_id\"]");
    assert_passes("unique = [\"customer_id\", \"day\"]");
    let result = assert_fails("unique = [\"customer_id\"]", "2026-11-03", 2, 1);
    assert_eq!(result["samples"][0], json!({"customer_id": 1, "duplicate_rows": 2}));
}

#[test]
fn accepted_values() {
    assert_passes("accepted_values = { column = \"status\", values = [\"placed\", \"shipped\"] }");
    let result = assert_fails("accepted_values = { status = [\"placed\"] }", "2026-11-03", 1, 1);
    assert_eq!(result["samples"][0]["status"], "shipped");
}

#[test]
fn row_count() {
    assert_passes("row_count = { min = 1, max = 3 }");
    let result = assert_fails("row_count = { min = 4 }\nname = \"enough orders\"", "2026-11-03", 1, 1);
    assert_eq!(result["name"], "enough orders");
    assert_eq!(result["samples"][0]["rows"], 3);
}

#[test]
fn expression() {
    assert_passes("expression = \"amount > 0 AND order_id <= 3\"");
    let result = assert_fails("expression = \"amount > 6\"", "2026-11-03", 1, 1);
    assert_eq!(result["samples"][0]["order_id"], 3);
}

#[test]
fn freshness() {
    assert_passes("freshness = { column = \"updated_at\", max_age = \"1d\" }");
    let result = assert_fails("freshness = { column = \"updated_at\", max_age = \"2 days\" }", "2026-11-10", 1, 1);
    assert_eq!(result["samples"][0]["oldest_allowed"], "2026-11-08T00:00:00");
}

#[test]
fn relationship() {
    assert_passes("relationship = { column = \"customer_id\", references = \"raw.customers.customer_id\" }");
    let result = assert_fails(
        "relationship = { column = \"customer_id\", references = \"raw.vip.customer_id\" }",
        "2026-11-03",
        1,
        1,
    );
    assert_eq!(result["samples"][0]["customer_id"], 2);
}

#[test]
fn sql() {
    assert_passes("sql = \"SELECT * FROM mart.orders WHERE amount < 0\"");
    assert_passes("sql = \"SELECT * FROM this WHERE amount < 0\"");
    assert_passes("sql = \"SELECT * FROM staged s JOIN raw.customers c USING (customer_id) WHERE c.name IS NULL\"");
    let result = assert_fails("sql = \"SELECT order_id FROM mart.orders WHERE status = 'placed'\"", "2026-11-03", 2, 2);
    let mut samples: Vec<i64> =
        result["samples"].as_array().unwrap().iter().map(|r| r["order_id"].as_i64().unwrap()).collect();
    samples.sort();
    assert_eq!(samples, [1, 3]);
}

#[test]
fn row_count_change_compares_with_the_published_version() {
    let s = sandbox("[[target.check]]\nrow_count_change = { max_drop = \"10%\", max_growth = 1.0 }\n");
    let first = run(&s, "2026-11-03");
    assert_eq!(first.code, 0, "nothing to compare with on a first run: {first:?}");
    assert_eq!(report(&first)["checks"][0]["status"], "passed");
    let again = run(&s, "2026-11-03");
    assert_eq!((again.code, report(&again)["checks"][0]["status"].as_str()), (0, Some("passed")));
    let before = visible(&s);

    // Two of three rows gone: a drop of 66.7%.
    s.write("in/orders/a.csv", ORDERS.lines().take(2).map(|l| format!("{l}\n")).collect::<String>());
    let dropped = run(&s, "2026-11-03");
    assert_eq!(dropped.code, 1, "{dropped:?}");
    let result = &report(&dropped)["checks"][0];
    assert_eq!((result["status"].as_str(), result["violations"].as_u64()), (Some("failed"), Some(1)));
    assert_eq!(result["samples"][0], json!({"rows_before": 3, "rows_after": 1, "change": "-66.7%"}));
    assert!(dropped.stderr.contains("row_count_change"), "{}", dropped.stderr);
    assert_eq!(visible(&s), before, "the failed run changed nothing readers see");
}

#[test]
fn a_failed_error_check_leaves_catalog_files_and_history_as_they_were() {
    let s = sandbox("[[target.check]]\nnot_null = [\"amount\"]\n");
    assert_eq!(run(&s, "2026-11-03").code, 0);
    let before = visible(&s);
    assert_eq!(before.0.len(), 3);
    assert_eq!(before.3["versions"].as_array().map(Vec::len), Some(1));

    // New data with a NULL amount, and a new column: a new schema the run would publish.
    s.write("in/orders/a.csv", "order_id,customer_id,day,status,amount,coupon,updated_at,channel\n9,1,2026-11-04,placed,,,2026-11-04 10:00:00,web\n");
    let failed = run(&s, "2026-11-04");
    failed.assert_failure(1, "1 check failed, nothing was published: mart.orders not_null(amount): 1 violating row");
    let report = report(&failed);
    assert_eq!(report["status"], "failed");
    assert!(report["targets"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(visible(&s), before);
    assert!(!s.files("out/orders").iter().any(|f| f.contains("_etl_staging")));
    let runs = s.etl(&["runs"]);
    assert!(runs.stdout.contains("checks: 0 passed, 1 failed, 0 warned"), "{}", runs.stdout);
}

#[test]
fn a_failed_warning_publishes_and_is_reported() {
    let s = sandbox(
        "[[target.check]]\nnot_null = [\"coupon\"]\nseverity = \"warn\"\n[[target.check]]\nunique = [\"order_id\"]\n",
    );
    let output = run(&s, "2026-11-03");
    assert_eq!(output.code, 0, "{output:?}");
    let report = report(&output);
    let statuses: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["severity"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [("warn", "failed"), ("error", "passed")]);
    assert!(report["warnings"][0].as_str().unwrap().contains("not_null(coupon): 2 violating rows"), "{report}");
    assert_eq!(s.query("SELECT count(*) AS n FROM mart.orders"), [json!({"n": 3})]);
    let runs = s.etl(&["runs"]);
    assert!(runs.stdout.contains("checks: 1 passed, 0 failed, 1 warned"), "{}", runs.stdout);
    // The version records the checks it went through.
    let history = s.json(&["table", "history", "mart.orders"]);
    let checks = &history["versions"][0]["checks"];
    assert_eq!(
        checks[0],
        json!({"name": "not_null(coupon)", "rule": "not_null", "severity": "warn", "status": "failed", "violations": 2})
    );
}

#[test]
fn a_check_that_cannot_run_is_a_configuration_error_before_anything_is_written() {
    let cases = [
        ("not_null = [\"no_such_column\"]", "no_such_column"),
        ("expression = \"amount > 'x' +\"", "expression"),
        ("expression = \"nosuch(amount)\"", "nosuch"),
        ("sql = \"SELECT * FROM mart.nothing\"", "mart.nothing"),
        ("relationship = { column = \"customer_id\", references = \"raw.customers.nope\" }", "nope"),
        ("unique = []", "lists no column"),
        ("row_count = { min = 3, max = 1 }", "min 3 is more than max 1"),
    ];
    for (check, named) in cases {
        let s = sandbox(&format!("[[target.check]]\n{check}\n"));
        let output = s.etl(&["run", "jobs/orders.toml", "--logical-date", "2026-11-03"]);
        output.assert_failure(2, named);
        assert!(s.files("out/orders").is_empty(), "{check}: {:?}", s.files("out/orders"));
    }
}

#[test]
fn checks_of_two_targets_see_each_other_staged() {
    let s = sandbox("");
    let text = std::fs::read_to_string(s.path("jobs/orders.toml")).unwrap();
    s.write(
        "jobs/orders.toml",
        format!(
            "{text}\n[[target]]\ntable = \"mart.customers\"\nquery = \"SELECT * FROM raw.customers\"\nlocation = \"../out/customers/\"\n[[target.check]]\nsql = \"SELECT * FROM mart.orders o WHERE NOT EXISTS (SELECT 1 FROM mart.customers c WHERE c.customer_id = o.customer_id)\"\n"
        ),
    );
    let output = run(&s, "2026-11-03");
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(report(&output)["checks"][0]["status"], "passed");
}

#[test]
fn etl_check_runs_a_jobs_checks_or_a_tables_recorded_ones_on_what_is_published() {
    let s = sandbox("[[target.check]]\nunique = [\"order_id\"]\n[[target.check]]\nrow_count = { max = 3 }\n");
    assert_eq!(run(&s, "2026-11-03").code, 0);
    let by_job = s.json(&["check", "jobs/orders.toml"]);
    assert_eq!((by_job["passed"].as_u64(), by_job["failed"].as_u64()), (Some(2), Some(0)), "{by_job}");
    let by_table = s.json(&["check", "mart.orders"]);
    assert_eq!(by_table["checks"].as_array().map(Vec::len), Some(2), "{by_table}");

    // A job with a check the published data fails: exit 1, nothing changes.
    job(&s, "[[target.check]]\nnot_null = [\"coupon\"]\n");
    let failed = s.etl(&["check", "jobs/orders.toml", "--json"]);
    assert_eq!(failed.code, 1, "{failed:?}");
    let document: Value = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(document["checks"][0]["violations"], 2);
    s.etl(&["check", "mart.orders", "--job", "jobs/orders.toml"]).assert_failure(1, "not_null(coupon)");
    s.etl(&["check", "raw.orders"]).assert_failure(2, "no checks recorded");
}

// --- Versions -------------------------------------------------------------------------------

/// Publishes three versions of `mart.orders` (3, 2 then 1 rows, overwrite) with `extra` under
/// the target; returns each version's order ids.
fn three_versions(s: &Sandbox, extra: &str) -> Vec<Vec<i64>> {
    job(s, extra);
    let mut ids = Vec::new();
    for keep in [3, 2, 1] {
        let rows: String = ORDERS.lines().take(keep + 1).map(|l| format!("{l}\n")).collect();
        s.write("in/orders/a.csv", rows);
        let output = run(s, "2026-11-03");
        assert_eq!(output.code, 0, "{output:?}");
        ids.push(order_ids(s, "mart.orders"));
    }
    ids
}

fn order_ids(s: &Sandbox, from: &str) -> Vec<i64> {
    s.query(&format!("SELECT order_id FROM {from} ORDER BY order_id"))
        .iter()
        .map(|r| r["order_id"].as_i64().unwrap())
        .collect()
}

/// The Parquet files readers of the folder see (DuckDB's `**/*.parquet`).
fn parquet_files(s: &Sandbox) -> Vec<String> {
    s.files("out/orders").into_iter().filter(|f| f.ends_with(".parquet")).collect()
}

#[test]
fn publications_are_versions_and_a_rollback_makes_an_old_one_current_as_a_new_one() {
    let s = sandbox("");
    let ids = three_versions(&s, "");
    assert_eq!(ids, [vec![1, 2, 3], vec![1, 2], vec![1]]);
    let history = s.json(&["table", "history", "mart.orders"]);
    assert_eq!(history["table"], "mart.orders");
    let versions = history["versions"].as_array().unwrap();
    let summary: Vec<(u64, u64, bool)> = versions
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["rows"].as_u64().unwrap(), v["rollback_of"].is_null()))
        .collect();
    assert_eq!(summary, [(1, 3, true), (2, 2, true), (3, 1, true)]);
    assert!(
        versions
            .iter()
            .all(|v| v["run_id"].is_string() && v["files"].as_u64() > Some(0) && v["bytes"].as_u64() > Some(0))
    );
    // Readers of the folder see the current version's files only.
    assert_eq!(parquet_files(&s).len(), 1, "{:?}", s.files("out/orders"));
    // Old versions read from SQL.
    assert_eq!(order_ids(&s, "version_of('mart.orders', 1)"), [1, 2, 3]);
    assert_eq!(order_ids(&s, "version_of('mart.orders', 2)"), [1, 2]);

    let restored = s.json(&["rollback", "mart.orders", "--to", "1"]);
    assert_eq!(
        (restored["table"].as_str(), restored["version"].as_u64(), restored["restored"].as_u64()),
        (Some("mart.orders"), Some(4), Some(1))
    );
    assert_eq!(order_ids(&s, "mart.orders"), [1, 2, 3]);
    let history = s.json(&["table", "history", "mart.orders"]);
    assert_eq!(history["versions"][3]["rollback_of"], 1);
    assert_eq!(history["versions"][3]["rows"], 3);
    assert_eq!(parquet_files(&s).len(), 2, "two day partitions: {:?}", s.files("out/orders"));
    // Version 3 is kept: rolling forward again works too.
    s.json(&["rollback", "mart.orders", "--to", "3"]);
    assert_eq!(order_ids(&s, "mart.orders"), [1]);
    s.etl(&["rollback", "mart.orders", "--to", "9"]).assert_failure(1, "mart.orders has no version 9");
}

#[test]
fn a_version_whose_files_retention_removed_is_refused_and_nothing_changes() {
    let s = sandbox("");
    three_versions(&s, "retain_versions = 2");
    let before = visible(&s);
    let restorable: Vec<bool> =
        before.3["versions"].as_array().unwrap().iter().map(|v| v["restorable"].as_bool().unwrap()).collect();
    assert_eq!(restorable, [false, true, true]);
    s.etl(&["rollback", "mart.orders", "--to", "1"]).assert_failure(1, "version 1 of mart.orders cannot be restored");
    s.etl(&["sql", "SELECT * FROM version_of('mart.orders', 1)"]).assert_failure(1, "of its 2 files are gone");
    assert_eq!(visible(&s), before);
    // What retention keeps is what gc leaves.
    let gc = s.json(&["gc"]);
    assert_eq!(gc["removed"].as_array().map(Vec::len), Some(0), "{gc}");
    assert_eq!(s.json(&["rollback", "mart.orders", "--to", "2"])["version"], 4);
    assert_eq!(order_ids(&s, "mart.orders"), [1, 2]);
}

#[test]
fn gc_removes_what_a_smaller_retention_no_longer_keeps() {
    let s = sandbox("");
    three_versions(&s, "retain_versions = 5");
    let retained = |s: &Sandbox| s.files("out/orders").iter().filter(|f| f.starts_with("_etl_retained/")).count();
    assert_eq!(retained(&s), 3, "{:?}", s.files("out/orders"));
    // The next publication records a retention of 1: only the current version's files stay.
    job(&s, "retain_versions = 1");
    assert_eq!(run(&s, "2026-11-03").code, 0);
    assert_eq!(retained(&s), 0, "{:?}", s.files("out/orders"));
    assert_eq!(s.json(&["gc"])["removed"].as_array().map(Vec::len), Some(0));
}

// --- On S3 and Glue ---------------------------------------------------------------------------

#[test]
fn rollback_on_glue_and_s3() {
    let Some(_) = aws::endpoint() else { return };
    let s = Sandbox::new();
    let (raw, curated, db) = (aws::unique("raw"), aws::unique("curated"), aws::unique("db"));
    aws::create_bucket(&raw);
    aws::create_bucket(&curated);
    s.write(
        "job.toml",
        format!(
            r#"name = "glue_orders"
catalog = "glue"
[[source]]
table = "{db}.raw_orders"
location = "s3://{raw}/orders/"
[[target]]
table = "{db}.orders"
query = "SELECT * FROM {db}.raw_orders"
location = "s3://{curated}/orders/"
partition_by = ["day"]
retain_versions = 3
[[target.check]]
not_null = ["order_id"]
"#
        ),
    );
    let glue = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--catalog", "glue"]);
        s.etl(&all)
    };
    let table = format!("{db}.orders");
    let ids = |from: &str| -> Vec<i64> {
        glue(&["sql", &format!("SELECT order_id FROM {from} ORDER BY order_id"), "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["order_id"].as_i64().unwrap())
            .collect()
    };
    for keep in [3, 2, 1] {
        let rows: String = ORDERS.lines().take(keep + 1).map(|l| format!("{l}\n")).collect();
        aws::put_object(&raw, "orders/a.csv", rows.as_bytes());
        let output = glue(&["run", "job.toml", "--logical-date", "2026-11-03", "--json"]);
        assert_eq!(output.code, 0, "{output:?}");
    }
    let history = glue(&["table", "history", &table, "--json"]).json();
    let rows: Vec<u64> = history["versions"].as_array().unwrap().iter().map(|v| v["rows"].as_u64().unwrap()).collect();
    assert_eq!(rows, [3, 2, 1], "{history}");
    assert_eq!(history["versions"][2]["checks"][0]["status"], "passed");
    assert_eq!(ids(&format!("version_of('{table}', 2)")), [1, 2]);

    // Roll back to version 1: its rows, as version 4.
    let restored = glue(&["rollback", &table, "--to", "1", "--json"]).json();
    assert_eq!((restored["version"].as_u64(), restored["restored"].as_u64()), (Some(4), Some(1)));
    assert_eq!(ids(&table), [1, 2, 3]);
    let history = glue(&["table", "history", &table, "--json"]).json();
    assert_eq!(history["versions"][3]["rollback_of"], 1);
    // Readers of the bucket see the current version's files only (two day partitions).
    let parquet: Vec<String> =
        aws::list_keys(&curated, "orders/").into_iter().filter(|k| k.ends_with(".parquet")).collect();
    assert_eq!(parquet.len(), 2, "{parquet:?}");

    // retain_versions = 3 keeps versions 2 to 4: version 1's own files are gone now.
    let before = (glue(&["table", "history", &table, "--json"]).json(), aws::list_keys(&curated, "orders/"));
    glue(&["rollback", &table, "--to", "1"]).assert_failure(1, "cannot be restored");
    assert_eq!((glue(&["table", "history", &table, "--json"]).json(), aws::list_keys(&curated, "orders/")), before);
    assert_eq!(ids(&table), [1, 2, 3]);
}
