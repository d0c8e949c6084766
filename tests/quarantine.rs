//! `bad_records = "quarantine"`: the rejected records kept exactly as read, `etl quarantine
//! show`, and the way back in, `etl run --replay-quarantine`.

use crate::util::Sandbox;

/// Orders whose `amount` is a bigint by the first record (a one-record sample), then a record
/// with a line end in quotes and a bad amount, and a record with one field too many.
fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.write(
        "in/day=2026-11-30/a.csv",
        "id,name,amount\r\n1,ann,10\r\n2,\"bob\nsmith\",x\r\n3,cy,30,extra\r\n4,dee,40\r\n",
    );
    s.write_gzip("in/day=2026-12-01/b.csv.gz", b"id,name,amount\n5,eve,50\n6,fay,6O\n");
    s.write(
        "job.toml",
        "name = \"orders\"\n[[source]]\ntable = \"raw.orders\"\nlocation = \"in/\"\nbad_records = \"quarantine\"\nsample_rows = 1\n[[target]]\ntable = \"mart.orders\"\nquery = \"SELECT id, name, amount FROM raw.orders\"\nlocation = \"out/\"\n",
    );
    s
}

#[test]
fn a_quarantined_record_keeps_its_text_exactly_as_read() {
    let s = sandbox();
    let report = s.json(&["run", "job.toml", "--logical-date", "2026-11-30"]);
    assert_eq!(report["rejected_rows"], 3, "{report}");
    let shown = s.json(&["quarantine", "show", "orders"]);
    assert_eq!(shown["run_id"], report["run_id"]);
    let records = shown["records"].as_array().unwrap();
    let summary: Vec<(String, u64, String)> = records
        .iter()
        .map(|r| {
            let file = r["file"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
            (file, r["line"].as_u64().unwrap(), r["record"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a.csv".to_string(), 3, "2,\"bob\nsmith\",x".to_string()),
            ("a.csv".to_string(), 5, "3,cy,30,extra".to_string()),
            ("b.csv.gz".to_string(), 3, "6,fay,6O".to_string()),
        ]
    );
    assert_eq!(records[0]["column"], "amount");
    assert_eq!(records[0]["value"], "x");
    assert_eq!(records[0]["table"], "raw.orders");
    assert!(records[1].get("column").is_none(), "{}", records[1]);
    let text = s.etl(&["quarantine", "show", "orders"]);
    assert!(text.stdout.contains("line 5: expected 3 fields, found 4\n    | 3,cy,30,extra"), "{}", text.stdout);
    assert!(text.stdout.contains("--replay-quarantine"), "{}", text.stdout);
}

#[test]
fn fixed_records_go_back_in_with_the_next_run() {
    let s = sandbox();
    let first = s.json(&["run", "job.toml", "--logical-date", "2026-11-30"]);
    let run_id = first["run_id"].as_str().unwrap();
    let folder = s.path(".etl-home/quarantine/orders").join(run_id).join("raw.orders");
    // The copies are laid out as the source is, plain text, each CSV with its header.
    let a = folder.join("day=2026-11-30/a.csv");
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "id,name,amount\n2,\"bob\nsmith\",x\n3,cy,30,extra\n");
    let b = folder.join("day=2026-12-01/b.csv");
    assert_eq!(std::fs::read_to_string(&b).unwrap(), "id,name,amount\n6,fay,6O\n");
    std::fs::write(&a, "id,name,amount\n2,\"bob\nsmith\",20\n3,cy,30\n").unwrap();
    std::fs::write(&b, "id,name,amount\n6,fay,60\n").unwrap();

    let replay = s.json(&["run", "job.toml", "--logical-date", "2026-11-30", "--replay-quarantine", run_id]);
    assert_eq!(replay["status"], "succeeded", "{replay}");
    let rows = s.query("SELECT id, amount FROM mart.orders ORDER BY id");
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    assert_eq!(rows[1]["amount"], 20);
    // The first run's records stay listed under its id after later runs.
    let shown = s.json(&["quarantine", "show", "orders", "--run", run_id]);
    assert_eq!(shown["run_id"], run_id);
    assert_eq!(shown["records"].as_array().unwrap().len(), 3, "{shown}");

    s.etl(&["run", "job.toml", "--replay-quarantine", "no-such-run"])
        .assert_failure(2, "run no-such-run of job orders set no records apart");
    s.etl(&["quarantine", "show", "orders", "--run", "no-such-run"]).assert_failure(1, "no-such-run");
}

#[test]
fn a_json_line_is_kept_as_it_stood() {
    let s = Sandbox::new();
    s.write("in/a.json", "{\"Id\": 1, \"n\": 2}\n  {\"Id\": 2, \"n\": {\"x\": 1}}  \n{\"Id\": 3, \"n\": 4}\n");
    s.write(
        "job.toml",
        "name = \"events\"\n[[source]]\ntable = \"raw.events\"\nlocation = \"in/\"\nbad_records = \"quarantine\"\nsample_rows = 1\n[[target]]\ntable = \"mart.events\"\nquery = \"SELECT * FROM raw.events\"\nlocation = \"out/\"\n",
    );
    let first = s.json(&["run", "job.toml"]);
    assert_eq!(first["rejected_rows"], 1);
    let shown = s.json(&["quarantine", "show", "events"]);
    assert_eq!(shown["records"][0]["line"], 2);
    assert_eq!(shown["records"][0]["record"], "  {\"Id\": 2, \"n\": {\"x\": 1}}  ");

    // Fixed, the line goes back in beside the source.
    let run_id = first["run_id"].as_str().unwrap();
    let copy = s.path(".etl-home/quarantine/events").join(run_id).join("raw.events/a.json");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "  {\"Id\": 2, \"n\": {\"x\": 1}}  \n");
    std::fs::write(&copy, "{\"Id\": 2, \"n\": 5}\n").unwrap();
    let replay = s.json(&["run", "job.toml", "--replay-quarantine", run_id]);
    // The source still holds the bad line, set apart again; its fixed copy is read.
    assert_eq!(replay["status"], "succeeded", "{replay}");
    assert_eq!(replay["targets"][0]["rows"], 3, "{replay}");
    let ids: Vec<i64> =
        s.query("SELECT id FROM mart.events ORDER BY id").iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3]);
}

#[test]
fn a_job_that_set_nothing_apart_has_an_empty_quarantine() {
    let s = Sandbox::new();
    let shown = s.json(&["quarantine", "show", "nothing"]);
    assert_eq!(shown["records"], serde_json::json!([]));
    assert!(shown["run_id"].is_null());
}
