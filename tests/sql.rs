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

/// Parquet tables read their strings as Arrow views and compute decimal arithmetic in 64 bits
/// where it cannot overflow: neither shows in names, values, types or what a job writes.
#[test]
fn parquet_strings_and_decimal_arithmetic_read_as_written() {
    let s = Sandbox::new();
    s.write("in/lines/a.csv", "flag,price,discount\nA,21168.23,0.04\nN,45983.16,0.10\nA,13309.60,0.07\nR,,0.05\n");
    s.write(
        "jobs/prices.toml",
        r#"name = "prices"
[[source]]
table = "raw.lines"
location = "../in/lines/"
[[target]]
table = "mart.prices"
query = "SELECT flag, CAST(price AS DECIMAL(15,2)) AS price, CAST(discount AS DECIMAL(15,2)) AS discount FROM raw.lines"
location = "../out/prices/"
mode = "overwrite"
"#,
    );
    s.write(
        "jobs/net.toml",
        r#"name = "net"
[[target]]
table = "mart.net"
query = "SELECT flag, price * (1 - discount) AS net FROM mart.prices"
location = "../out/net/"
mode = "overwrite"
"#,
    );
    assert_eq!(s.json(&["run", "jobs/prices.toml"])["status"], "succeeded");
    let sums = s.etl(&[
        "sql",
        "SELECT flag, sum(price * (1 - discount)), max(price) - min(discount) AS spread FROM mart.prices \
         GROUP BY flag ORDER BY flag",
        "--format",
        "csv",
    ]);
    assert_eq!(
        sums.stdout,
        "flag,sum(mart.prices.price * Int64(1) - mart.prices.discount),spread\n\
         A,32699.4288,21168.19\nN,41384.8440,45983.06\nR,,\n",
        "{sums:?}"
    );
    let rows = s.query("SELECT flag, price FROM mart.prices WHERE flag = 'A' ORDER BY price");
    assert_eq!(
        rows,
        vec![serde_json::json!({"flag": "A", "price": 13309.60}), serde_json::json!({"flag": "A", "price": 21168.23})]
    );
    // A job reading the Parquet table writes plain strings and the decimal type of the product.
    assert_eq!(s.json(&["run", "jobs/net.toml"])["status"], "succeeded");
    let schema = s.etl(&["schema", "show", "mart.net"]);
    assert!(schema.stdout.contains("flag  string") && schema.stdout.contains("net   decimal(38,4)"), "{schema:?}");
    let net = s.etl(&["sql", "SELECT * FROM mart.net ORDER BY flag, net", "--format", "csv"]);
    assert_eq!(net.stdout, "flag,net\nA,12377.9280\nA,20321.5008\nN,41384.8440\nR,\n", "{net:?}");
}

/// A join's build side of integer keys is looked up in a bitmap of its key range when the
/// range is narrow enough for its rows (the join's metrics say which way it went), a wider
/// one in DataFusion's hash table; sql/joins.slt checks that both give the same rows.
#[test]
fn sparse_join_keys_in_a_narrow_range_are_looked_up_in_a_bitmap() {
    let s = Sandbox::new();
    let join = |top: u64| {
        format!(
            "EXPLAIN ANALYZE WITH d AS (SELECT * FROM (VALUES (1, 'a'), (2500000, 'b'), ({top}, 'c')) AS d(k, name)), \
             f AS (SELECT * FROM (VALUES (1, 10), (7, 40), ({top}, 30)) AS f(k, v)) \
             SELECT name, v FROM f JOIN d ON f.k = d.k"
        )
    };
    let narrow = s.etl(&["sql", &join(5_000_000), "--format", "csv"]);
    assert!(narrow.stdout.contains("key_bitmap_created_count=1"), "{narrow:?}");
    let wide = s.etl(&["sql", &join(900_000_000), "--format", "csv"]);
    assert!(wide.stdout.contains("hash_join_fallback_count=1"), "{wide:?}");
}
