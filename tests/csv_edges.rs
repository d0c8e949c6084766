//! CSV edge cases, each with the right answer or the right error: a byte order mark, CRLF
//! line ends, quoted newlines and doubled quotes, ragged rows under every `bad_records`
//! policy, a 1 MB field, 10,000 columns.

use crate::bad_input::job as copy_job;
use crate::util::{Sandbox, columns};

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_name() {
    let s = Sandbox::new();
    s.write("in/a.csv", "\u{feff}Id,Name\r\n1,ann\r\n2,bob\r\n");
    s.write("in/b.csv", "\u{feff}\"Id\",\"Name\"\n3,cy\n");
    s.write("in/c.csv", "Id,Name\n4,di\n");
    let inferred = s.json(&["infer", &s.at("in")]);
    assert_eq!(columns(&inferred["columns"]), ["id bigint", "name string"]);
    copy_job(&s, "fail", "");
    let report = s.json(&["run", "job.toml"]);
    assert_eq!(report["targets"][0]["rows"], 4);
    let rows = s.query("SELECT id, name FROM mart.copy ORDER BY id");
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[3]["name"], "di");
}

#[test]
fn crlf_line_ends_leave_no_carriage_return_in_values_or_types() {
    let s = Sandbox::new();
    s.write("in/a.csv", "id,name,amount\r\n1,ann,1.5\r\n2,bob,2\r\n3,\"multi\r\nline\",7\r\n");
    let inferred = s.json(&["infer", &s.at("in")]);
    assert_eq!(columns(&inferred["columns"]), ["id bigint", "name string", "amount double"]);
    copy_job(&s, "fail", "");
    s.json(&["run", "job.toml"]);
    let rows = s.query("SELECT name, amount, length(name) AS n FROM mart.copy ORDER BY id");
    assert_eq!(rows[0]["name"], "ann");
    assert_eq!(rows[0]["n"], 3);
    assert_eq!(rows[1]["amount"], 2.0);
    assert_eq!(rows[2]["name"], "multi\r\nline", "a line end inside quotes is data");
}

#[test]
fn quoted_fields_hold_newlines_delimiters_and_doubled_quotes() {
    let s = Sandbox::new();
    s.write(
        "in/a.csv",
        "id,note,n\n1,\"two\nlines\",10\n2,\"say \"\"hi\"\", then, go\",20\n3,\"\"\"\",30\n4,\"\",40\n",
    );
    let inferred = s.json(&["infer", &s.at("in")]);
    assert_eq!(columns(&inferred["columns"]), ["id bigint", "note string", "n bigint"]);
    copy_job(&s, "fail", "");
    let report = s.json(&["run", "job.toml"]);
    assert_eq!(report["sources"][0]["rows"], 4);
    let rows = s.query("SELECT note, n FROM mart.copy ORDER BY id");
    assert_eq!(rows[0]["note"], "two\nlines");
    assert_eq!(rows[1]["note"], "say \"hi\", then, go");
    assert_eq!(rows[2]["note"], "\"");
    assert_eq!(rows[3]["note"], serde_json::Value::Null, "an empty field is NULL, quoted or not");
    assert_eq!(rows[3]["n"], 40);
}

#[test]
fn ragged_rows_fail_naming_file_line_and_expectation() {
    let s = Sandbox::new();
    copy_job(&s, "fail", "");
    // The quoted newline makes the ragged record start on line 4, not 3.
    s.write("in/a.csv", "id,note\n1,\"a\nb\"\n2\n3,c\n");
    let out = s.etl(&["run", "job.toml"]);
    out.assert_failure(1, "bad record in in/a.csv line 4: expected 2 fields, found 1");
    assert!(s.files("out").is_empty(), "nothing published: {:?}", s.files("out"));
    s.write("in/a.csv", "id,note\n1,a\n2,b,c,d\n");
    s.etl(&["run", "job.toml"]).assert_failure(1, "bad record in in/a.csv line 3: expected 2 fields, found 4");
    assert!(s.files("out").is_empty());
    s.etl(&["schema", "show", "mart.copy"]).assert_failure(1, "does not exist");
}

#[test]
fn ragged_rows_are_counted_by_drop_and_kept_by_quarantine() {
    let text = "id,note\n1,a\n2\n3,c,extra\n4,d\n";
    let s = Sandbox::new();
    copy_job(&s, "drop", "");
    s.write("in/a.csv", text);
    let report = s.json(&["run", "job.toml"]);
    assert_eq!(report["rejected_rows"], 2);
    assert_eq!(report["targets"][0]["rows"], 2);

    let s = Sandbox::new();
    copy_job(&s, "quarantine", "");
    s.write("in/a.csv", text);
    let report = s.json(&["run", "job.toml"]);
    assert_eq!(report["rejected_rows"], 2);
    assert_eq!(report["targets"][0]["rows"], 2);
    let folder = std::path::PathBuf::from(report["quarantine"].as_str().unwrap());
    let kept = std::fs::read_to_string(folder.join("raw.src.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = kept.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert_eq!((records[0]["line"].as_u64(), records[1]["line"].as_u64()), (Some(3), Some(4)));
    assert_eq!(records[0]["reason"], "expected 2 fields, found 1");
    assert_eq!(records[1]["reason"], "expected 2 fields, found 3");
}

#[test]
fn a_one_megabyte_field_is_read_whole() {
    let s = Sandbox::new();
    let big: String =
        (0..1024 * 1024).map(|i| if i % 1000 == 999 { ',' } else { (b'a' + (i % 26) as u8) as char }).collect();
    s.write("in/a.csv", format!("id,blob,n\n1,\"{big}\",5\n2,small,6\n"));
    let inferred = s.json(&["infer", &s.at("in")]);
    assert_eq!(columns(&inferred["columns"]), ["id bigint", "blob string", "n bigint"]);
    copy_job(&s, "fail", "");
    s.json(&["run", "job.toml"]);
    let rows = s.query(
        "SELECT length(blob) AS len, left(blob, 30) AS head, right(blob, 30) AS tail, \
         length(blob) - length(replace(blob, ',', '')) AS commas, n FROM mart.copy ORDER BY id",
    );
    assert_eq!(rows[0]["len"], 1024 * 1024);
    assert_eq!(rows[0]["head"], &big[..30]);
    assert_eq!(rows[0]["tail"], &big[big.len() - 30..]);
    assert_eq!(rows[0]["commas"], 1048);
    assert_eq!(rows[0]["n"], 5);
    assert_eq!(rows[1]["len"], 5);
}

#[test]
fn ten_thousand_columns_are_inferred_and_run_end_to_end() {
    const WIDTH: usize = 10_000;
    let s = Sandbox::new();
    let header: Vec<String> = (0..WIDTH).map(|i| format!("c{i}")).collect();
    let mut text = header.join(",");
    text.push('\n');
    for row in 0..3 {
        let values: Vec<String> =
            (0..WIDTH).map(|i| if i % 2 == 0 { format!("{}", row * i) } else { format!("v{row}") }).collect();
        text.push_str(&values.join(","));
        text.push('\n');
    }
    s.write("in/wide.csv", text);
    let started = std::time::Instant::now();
    let inferred = s.json(&["infer", &s.at("in")]);
    let inferred = columns(&inferred["columns"]);
    assert_eq!(inferred.len(), WIDTH);
    assert_eq!(inferred[0], "c0 bigint");
    assert_eq!(inferred[WIDTH - 1], format!("c{} string", WIDTH - 1));
    copy_job(&s, "fail", "");
    let report = s.json(&["run", "job.toml"]);
    assert_eq!(report["targets"][0]["rows"], 3);
    let rows = s.query("SELECT c9998, c9999 FROM mart.copy ORDER BY c2");
    assert_eq!(rows[2]["c9998"], 2 * 9998);
    assert_eq!(rows[2]["c9999"], "v2");
    let shown = s.json(&["schema", "show", "mart.copy"]);
    assert_eq!(shown["columns"].as_array().unwrap().len(), WIDTH);
    // Inference and reading are linear in the width; DataFusion 55's SQL planner is not (it
    // compares every select item's formatted name with every other's), which costs a debug
    // build about two minutes here and a release build a tenth of that.
    assert!(started.elapsed().as_secs() < 600, "took {:?}", started.elapsed());
}
