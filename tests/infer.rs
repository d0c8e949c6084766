//! `etl infer`: what a Glue crawler would say, better.

use crate::util::{Sandbox, columns};

#[test]
fn hive_partitioned_csv_with_compression_and_evolving_columns() {
    let s = Sandbox::new();
    s.write("orders/dt=2026-11-02/a.csv", "Order ID;Amount;Paid\n1;10,5;true\n2;3;false\n");
    s.write_gzip("orders/dt=2026-11-09/b.csv.gz", b"Order ID;Amount;Paid;Note\n3;7;true;\"semi;colon\nand newline\"\n");
    s.write("orders/dt=2026-11-16/_SUCCESS", "");
    let json = s.json(&["infer", &s.at("orders")]);
    assert_eq!(json["format"], "csv");
    assert_eq!(columns(&json["columns"]), ["order_id bigint", "amount string", "paid boolean", "note string"]);
    assert_eq!(columns(&json["partition_keys"]), ["dt date"]);
    assert_eq!(json["files"], 2);
    let on_disk = std::fs::metadata(s.path("orders/dt=2026-11-02/a.csv")).unwrap().len()
        + std::fs::metadata(s.path("orders/dt=2026-11-09/b.csv.gz")).unwrap().len();
    assert_eq!(json["bytes"], on_disk, "bytes are stored (compressed) bytes");
}

#[test]
fn ndjson_nested_and_widened_across_many_files() {
    let s = Sandbox::new();
    for i in 0..300 {
        let amount = if i < 200 { format!("{i}") } else { format!("{i}.25") };
        let optional = if i % 3 == 0 { r#","coupon":"X""# } else { "" };
        s.write(
            &format!("events/part-{i:05}.json"),
            format!("{{\"id\":{i},\"amount\":{amount},\"user\":{{\"name\":\"u{i}\",\"tier\":{}}},\"tags\":[\"a\"]{optional}}}\n", i % 4),
        );
    }
    let json = s.json(&["infer", &s.at("events")]);
    assert_eq!(json["format"], "json");
    assert_eq!(
        columns(&json["columns"]),
        ["id bigint", "amount double", "user struct<name:string,tier:bigint>", "tags array<string>", "coupon string"]
    );
    assert_eq!(json["files"], 300);
}

#[test]
fn parquet_schema_comes_from_the_footer() {
    let s = Sandbox::new();
    // Our own output is Parquet: a job's target writes some (with the table's own records
    // beside it, which a crawler leaves out).
    s.write("in/a.csv", "id,price,day\n1,2.50,2026-11-02\n");
    s.write(
        "job.toml",
        "name = \"p\"\n[[source]]\ntable = \"raw.a\"\nlocation = \"in/\"\n\
         [[target]]\ntable = \"cur.p\"\nquery = \"SELECT id, price, day FROM raw.a\"\nlocation = \"pq/\"\n",
    );
    let run = s.etl(&["run", "job.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json = s.json(&["infer", &s.at("pq"), "--format", "parquet"]);
    assert_eq!(json["format"], "parquet");
    assert_eq!(columns(&json["columns"]), ["id bigint", "price double", "day date"]);
}

#[test]
fn decimals_keep_digits_a_double_would_lose() {
    let s = Sandbox::new();
    s.write("ledger.csv", "account,balance\nA,12345678901234.56\nB,-0.10\nC,7\n");
    let json = s.json(&["infer", &s.at("ledger.csv")]);
    assert_eq!(columns(&json["columns"]), ["account string", "balance decimal(16,2)"]);
}

#[test]
fn colliding_column_names_are_refused() {
    let s = Sandbox::new();
    s.write("t.csv", "Order ID,order_id\n1,2\n");
    s.etl(&["infer", &s.at("t.csv")]).assert_failure(1, "columns 'Order ID' and 'order_id' both become 'order_id'");
}

#[test]
fn nothing_to_read_names_the_location() {
    let s = Sandbox::new();
    s.etl(&["infer", &s.at("missing")]).assert_failure(1, "missing: no such file or folder");
    s.write("empty/a.csv", "");
    let out = s.etl(&["infer", &s.at("empty")]);
    out.assert_failure(1, "only empty objects");
}

#[test]
fn usage_errors_exit_2() {
    let s = Sandbox::new();
    s.etl(&["infer"]).assert_failure(2, "LOCATION");
    s.etl(&["infer", "x", "--format", "xml"]).assert_failure(2, "unknown format 'xml'");
    s.etl(&["infer", "gs://bucket/x"]).assert_failure(2, "unsupported scheme");
    s.etl(&["frobnicate"]).assert_failure(2, "frobnicate");
}

#[test]
fn empty_objects_are_skipped_with_a_warning() {
    let s = Sandbox::new();
    s.write("t/a.csv", "x\n1\n").write("t/b.csv", "");
    let out = s.etl(&["infer", &s.at("t"), "--json"]);
    assert_eq!(out.json()["files"], 1);
    assert!(out.stderr.contains("skipping empty object") && out.stderr.contains("b.csv"), "{}", out.stderr);
}
