//! `etl sql`: queries over catalog tables, output formats, parameters and errors.

use crate::util::Sandbox;

fn with_table() -> Sandbox {
    let s = Sandbox::new();
    s.write("t/region=eu/a.csv", "id,name,amount,day\n1,\"a, quoted\",1.5,2026-11-02\n2,,2,2026-11-03\n");
    s.write("t/region=us/b.csv", "id,name,amount,day\n3,c,NA,2026-11-04\n");
    s.json(&["crawl", &s.at("t"), "--table", "raw.t"]);
    s
}

#[test]
fn formats_table_csv_and_json() {
    let s = with_table();
    let csv = s.etl(&["sql", "SELECT id, name, amount FROM raw.t ORDER BY id", "--format", "csv"]);
    assert_eq!(csv.code, 0, "{csv:?}");
    assert_eq!(csv.stdout, "id,name,amount\n1,\"a, quoted\",1.5\n2,,2.0\n3,c,\n");
    let rows = s.query("SELECT id, name, amount, day, region FROM raw.t ORDER BY id");
    assert_eq!(
        rows[0],
        serde_json::json!({"id": 1, "name": "a, quoted", "amount": 1.5, "day": "2026-11-02", "region": "eu"})
    );
    assert_eq!(rows[2]["amount"], serde_json::Value::Null);
    let table = s.etl(&["sql", "SELECT count(*) AS n FROM raw.t"]);
    assert!(table.stdout.contains("| n |") && table.stdout.contains("| 3 |"), "{}", table.stdout);
    let empty = s.etl(&["sql", "SELECT id FROM raw.t WHERE id > 10", "--format", "json"]);
    assert_eq!(empty.stdout.trim(), "[]");
    let empty_csv = s.etl(&["sql", "SELECT id FROM raw.t WHERE id > 10", "--format", "csv"]);
    assert_eq!(empty_csv.stdout, "id\n");
}

#[test]
fn partition_filters_prune_and_views_live_for_the_session() {
    let s = with_table();
    let rows = s.query("CREATE VIEW eu AS SELECT * FROM raw.t WHERE region = 'eu'; SELECT count(*) AS n FROM eu");
    assert_eq!(rows[0]["n"], 2);
    let explain = s.etl(&["sql", "EXPLAIN SELECT id FROM raw.t WHERE region = 'us'", "--format", "csv"]);
    assert!(explain.stdout.contains("files=1"), "{}", explain.stdout);
    s.etl(&["sql", "SELECT * FROM eu"]).assert_failure(1, "eu");
}

#[test]
fn parameters_are_values_never_sql() {
    let s = with_table();
    let hostile = "x' OR '1'='1'; DROP TABLE t; --";
    let braced = s.etl(&[
        "sql",
        "SELECT count(*) AS n FROM raw.t WHERE name = ${name}",
        "--format",
        "json",
        "--param",
        "name=c",
    ]);
    assert_eq!(braced.json()[0]["n"], 1);
    let out = s.etl(&[
        "sql",
        "SELECT count(*) AS n FROM raw.t WHERE name = $name",
        "--format",
        "json",
        "--param",
        &format!("name={hostile}"),
    ]);
    assert_eq!(out.json()[0]["n"], 0);
    let out = s.etl(&["sql", "SELECT $hostile AS v", "--format", "json", "--param", &format!("hostile={hostile}")]);
    assert_eq!(out.json()[0]["v"], hostile);
    let typed = s.etl(&[
        "sql",
        "SELECT count(*) AS n FROM raw.t WHERE day >= $since AND id < $max",
        "--format",
        "json",
        "--param",
        "since:date=2026-11-03",
        "--param",
        "max:bigint=3",
    ]);
    assert_eq!(typed.json()[0]["n"], 1);
    let untyped = s.etl(&[
        "sql",
        "SELECT count(*) AS n FROM raw.t WHERE day >= $since",
        "--format",
        "json",
        "--param",
        "since=2026-11-03",
    ]);
    assert_eq!(untyped.json()[0]["n"], 2, "a string parameter compares as the column's type");
    let builtins =
        s.etl(&["sql", "SELECT $week_end - $week_start AS days, $run_id IS NOT NULL AS has_run", "--format", "json"]);
    assert_eq!(builtins.json()[0], serde_json::json!({"days": 6, "has_run": true}));
}

#[test]
fn errors_name_the_file_and_line() {
    let s = with_table();
    s.write("q.sql", "SELECT 1;\n\nSELECT nope\nFROM raw.t;\n");
    s.etl(&["sql", "-f", &s.at("q.sql")]).assert_failure(1, "q.sql:3:");
    s.etl(&["sql", "SELECT * FROM raw.missing"]).assert_failure(1, "raw.missing");
    s.etl(&["sql", "SELECT $undefined"]).assert_failure(1, "parameter $undefined is not defined");
    s.etl(&["sql"]).assert_failure(2, "give a QUERY or -f FILE");
    s.etl(&["sql", "SELECT 1", "--param", "broken"]).assert_failure(2, "expected NAME=VALUE");
}

#[test]
fn global_options_go_before_or_after_the_command() {
    let s = with_table();
    let before = s.etl(&["--json", "sql", "SELECT count(*) AS n FROM raw.t"]);
    let after = s.etl(&["sql", "SELECT count(*) AS n FROM raw.t", "--json"]);
    assert_eq!(before.json(), after.json());
}
