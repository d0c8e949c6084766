//! `etl run` and `etl runs`: jobs end to end.

use crate::util::{Sandbox, columns};

/// Orders (Hive-partitioned CSV) and customers (JSON), and a job over them.
fn sandbox(mode: &str, partition_by: &str) -> Sandbox {
    let s = Sandbox::new();
    s.write("in/orders/day=2026-11-02/a.csv", "order_id,customer_id,amount\n1,1,10\n2,2,20\n");
    s.write("in/orders/day=2026-11-03/a.csv", "order_id,customer_id,amount\n3,1,5.5\n");
    s.write(
        "in/customers/c.json",
        "{\"customer_id\":1,\"Segment\":\"smb\"}\n{\"customer_id\":2,\"Segment\":\"ent\"}\n",
    );
    s.write(
        "jobs/daily.sql",
        "CREATE VIEW per_day AS\nSELECT o.day, c.segment, count(*) AS orders, sum(o.amount) AS revenue, $label AS label\nFROM raw.orders o JOIN raw.customers c USING (customer_id)\nWHERE o.day <= $logical_date\nGROUP BY o.day, c.segment;\n",
    );
    s.write(
        "jobs/daily.toml",
        format!(
            r#"name = "daily"
[params]
label = "v1"
[[source]]
table = "raw.orders"
location = "../in/orders/"
[[source]]
table = "raw.customers"
location = "../in/customers/"
[[step]]
sql = "daily.sql"
[[target]]
table = "mart.per_day"
query = "SELECT * FROM per_day"
location = "../out/per_day/"
partition_by = [{partition_by}]
mode = "{mode}"
"#
        ),
    );
    s
}

fn run(s: &Sandbox, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "jobs/daily.toml", "--logical-date", "2026-11-03"];
    args.extend_from_slice(extra);
    s.json(&args)
}

fn total_orders(s: &Sandbox) -> i64 {
    s.query("SELECT coalesce(sum(orders), 0) AS n FROM mart.per_day")[0]["n"].as_i64().unwrap()
}

#[test]
fn a_run_crawls_transforms_and_publishes() {
    let s = sandbox("overwrite_partitions", "\"day\"");
    let report = run(&s, &[]);
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["job"], "daily");
    assert_eq!(report["logical_date"], "2026-11-03");
    assert_eq!(report["error"], serde_json::Value::Null);
    assert_eq!(report["sources"][0]["table"], "raw.orders");
    assert_eq!(report["sources"][0]["files"], 2);
    assert_eq!(report["sources"][0]["rows"], 3);
    assert_eq!(report["sources"][0]["change"], "created");
    assert_eq!(report["sources"][0]["schema_version"], 1);
    let target = &report["targets"][0];
    assert_eq!(target["table"], "mart.per_day");
    assert_eq!(target["rows"], 3);
    assert_eq!(target["partitions"], 2);
    assert_eq!(target["files"], 2);
    assert!(target["bytes"].as_u64().unwrap() > 0);
    assert!(report["athena"]["bytes_scanned"].as_u64().unwrap() > 0);
    assert!(report["athena"]["usd"].as_f64().unwrap() > 0.0);

    let files = s.files("out/per_day");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.starts_with("day=2026-11-0") && f.ends_with(".zstd.parquet")), "{files:?}");

    let show = s.json(&["schema", "show", "mart.per_day"]);
    assert_eq!(columns(&show["columns"]), ["segment string", "orders bigint", "revenue double", "label string"]);
    assert_eq!(columns(&show["partition_keys"]), ["day date"]);
    assert_eq!(show["serde"]["library"], "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe");
    assert_eq!(show["input_format"], "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat");
    assert_eq!(show["output_format"], "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat");
    assert_eq!(show["parameters"]["classification"], "parquet");
    assert_eq!(show["partitions"].as_array().unwrap().len(), 2);

    let rows = s.query("SELECT day, segment, orders, revenue, label FROM mart.per_day ORDER BY day, segment");
    assert_eq!(
        rows[0],
        serde_json::json!({"day": "2026-11-02", "segment": "ent", "orders": 1, "revenue": 20.0, "label": "v1"})
    );
    assert_eq!(rows.len(), 3);
}

#[test]
fn reruns_of_a_logical_date_are_idempotent_in_every_mode() {
    for (mode, partition_by) in
        [("overwrite_partitions", "\"day\""), ("overwrite", ""), ("append", "\"day\""), ("append", "")]
    {
        let s = sandbox(mode, partition_by);
        run(&s, &[]);
        run(&s, &[]);
        assert_eq!(total_orders(&s), 3, "mode {mode} partition_by [{partition_by}]");
        let expected_files = if partition_by.is_empty() { 1 } else { 2 };
        assert_eq!(s.visible_files("out/per_day").len(), expected_files, "mode {mode}: {:?}", s.files("out/per_day"));
    }
}

#[test]
fn modes_replace_what_they_say() {
    // append adds the output of another logical date.
    let s = sandbox("append", "\"day\"");
    run(&s, &[]);
    s.json(&["run", "jobs/daily.toml", "--logical-date", "2026-11-02"]);
    assert_eq!(total_orders(&s), 5, "2026-11-03's 3 orders plus 2026-11-02's 2");

    // overwrite_partitions keeps partitions the output does not touch.
    let s = sandbox("overwrite_partitions", "\"day\"");
    run(&s, &[]);
    s.json(&["run", "jobs/daily.toml", "--logical-date", "2026-11-02"]);
    assert_eq!(total_orders(&s), 3);
    assert_eq!(s.visible_files("out/per_day").len(), 2);

    // overwrite replaces everything.
    let s = sandbox("overwrite", "\"day\"");
    run(&s, &[]);
    s.json(&["run", "jobs/daily.toml", "--logical-date", "2026-11-02"]);
    assert_eq!(total_orders(&s), 2);
    assert_eq!(s.visible_files("out/per_day").len(), 1);
}

#[test]
fn a_failed_run_publishes_nothing_and_leaves_no_staging() {
    let s = sandbox("overwrite", "\"day\"");
    run(&s, &[]);
    let before = s.files("out/per_day");
    // A new column (a new source version) and, past the one-row sample, a value that is not a
    // number: the run fails while reading, after the crawl planned the new version.
    let job = std::fs::read_to_string(s.path("jobs/daily.toml")).unwrap();
    s.write(
        "jobs/daily.toml",
        job.replace("location = \"../in/orders/\"", "location = \"../in/orders/\"\nsample_rows = 1"),
    );
    s.write("in/orders/day=2026-11-03/b.csv", "order_id,customer_id,amount,coupon\n4,1,7,X\n5,1,oops,Y\n");
    let out = s.etl(&["run", "jobs/daily.toml", "--logical-date", "2026-11-03", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("day=2026-11-03/b.csv line 3, column amount: value \"oops\" is not a double"),
        "{}",
        out.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["status"], "failed");
    assert!(report["error"].as_str().unwrap().contains("oops"), "{report}");
    assert_eq!(s.files("out/per_day"), before, "the published files are untouched");
    assert_eq!(total_orders(&s), 3);
    let versions = s.json(&["schema", "history", "raw.orders"])["versions"].as_array().unwrap().len();
    assert_eq!(versions, 1, "the failed run's new source version was not recorded");
    assert!(!s.path("out/per_day/_etl_staging").exists());
}

#[test]
fn the_staging_files_of_a_killed_run_are_never_read_and_are_removed() {
    let s = sandbox("overwrite", "\"day\"");
    run(&s, &[]);
    // What a run killed while writing leaves behind: staged files no catalog entry names.
    let published = s.files("out/per_day");
    let any = s.path("out/per_day").join(&published[0]);
    s.write("out/per_day/_etl_staging/20260101T000000Z-dead00/day=2026-11-02/x.parquet", std::fs::read(any).unwrap());
    assert_eq!(total_orders(&s), 3, "readers of the catalog do not see staged files");
    let report = run(&s, &[]);
    assert_eq!(report["status"], "succeeded");
    assert!(!s.path("out/per_day/_etl_staging").exists(), "{:?}", s.files("out/per_day"));
    assert_eq!(total_orders(&s), 3);
}

#[test]
fn a_target_never_replaces_a_crawled_table() {
    let s = sandbox("overwrite", "\"day\"");
    let job = std::fs::read_to_string(s.path("jobs/daily.toml")).unwrap();
    s.write("jobs/daily.toml", job.replace("table = \"mart.per_day\"", "table = \"raw.elsewhere\""));
    s.write("in/elsewhere/a.csv", "x\n1\n");
    s.json(&["crawl", &s.at("in/elsewhere"), "--table", "raw.elsewhere"]);
    s.etl(&["run", "jobs/daily.toml"]).assert_failure(1, "raw.elsewhere is a crawled table");
    assert!(s.files("out").is_empty());
}

#[test]
fn dry_run_writes_and_records_nothing() {
    let s = sandbox("overwrite", "\"day\"");
    let report = run(&s, &["--dry-run"]);
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["dry_run"], true);
    assert!(s.files("out").is_empty());
    assert_eq!(s.json(&["runs"])["runs"].as_array().unwrap().len(), 0);
    s.etl(&["schema", "show", "raw.orders"]).assert_failure(1, "does not exist");
}

#[test]
fn parameters_override_and_are_typed() {
    let s = sandbox("overwrite", "\"day\"");
    run(&s, &["--param", "label=v2"]);
    assert_eq!(s.query("SELECT DISTINCT label FROM mart.per_day")[0]["label"], "v2");
    s.etl(&["run", "jobs/daily.toml", "--param", "logical_date=2020-01-01"]).assert_failure(2, "built-in");
    s.etl(&["run", "jobs/daily.toml", "--logical-date", "yesterday"]).assert_failure(2, "not a date");
}

#[test]
fn history_lists_runs_newest_first() {
    let s = sandbox("overwrite", "\"day\"");
    let first = run(&s, &[]);
    s.write("in/customers/c.json", "not json at all\n");
    let failed = s.etl(&["run", "jobs/daily.toml", "--logical-date", "2026-11-03"]);
    assert_eq!(failed.code, 1);
    let runs = s.json(&["runs"])["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[1]["run_id"], first["run_id"]);
    assert_eq!(s.json(&["runs", "--status", "succeeded"])["runs"].as_array().unwrap().len(), 1);
    assert_eq!(s.json(&["runs", "--job", "other"])["runs"].as_array().unwrap().len(), 0);
    let human = s.etl(&["runs"]);
    assert!(human.stdout.contains("daily") && human.stdout.contains("failed"), "{}", human.stdout);
}

#[test]
fn bad_job_files_exit_2_naming_the_option() {
    let s = sandbox("overwrite", "\"day\"");
    s.etl(&["run", "jobs/missing.toml"]).assert_failure(2, "jobs/missing.toml");
    let text = std::fs::read_to_string(s.path("jobs/daily.toml")).unwrap();
    s.write("jobs/bad.toml", text.replace("mode = \"overwrite\"", "mode = \"merge\""));
    s.etl(&["run", "jobs/bad.toml"]).assert_failure(2, "target[0].mode");
    s.write("jobs/bad.toml", text.replace("partition_by = [\"day\"]", "partition_by = [\"nope\"]"));
    s.etl(&["run", "jobs/bad.toml"]).assert_failure(1, "partition_by column 'nope' is not in the query's output");
    s.write("jobs/bad.toml", text.replace("../out/per_day/", "../in/orders/out"));
    s.etl(&["run", "jobs/bad.toml"]).assert_failure(2, "overlaps source raw.orders");
}

#[test]
fn a_sql_error_names_the_step_file_and_line() {
    let s = sandbox("overwrite", "\"day\"");
    s.write("jobs/daily.sql", "CREATE VIEW per_day AS\nSELECT day,\n  no_such_column\nFROM raw.orders;\n");
    s.etl(&["run", "jobs/daily.toml"]).assert_failure(1, "daily.sql:3:");
}
