//! `etl crawl` and `etl schema`: versions, policies, history and diffs.

use crate::util::{Sandbox, columns};

#[test]
fn versions_are_created_kept_and_updated() {
    let s = Sandbox::new();
    s.write("t/part-1.csv", "id,name\n1,a\n");
    let first = s.json(&["crawl", &s.at("t"), "--table", "raw.t"]);
    assert_eq!((first["version"].as_u64(), first["change"].as_str()), (Some(1), Some("created")));
    assert_eq!(first["table"], "raw.t");

    let again = s.json(&["crawl", &s.at("t"), "--table", "raw.t"]);
    assert_eq!((again["version"].as_u64(), again["change"].as_str()), (Some(1), Some("unchanged")));
    assert_eq!(again["diff"], serde_json::json!([]));

    s.write("t/part-2.csv", "id,name,score\n2.5,b,3\n");
    let updated = s.json(&["crawl", &s.at("t"), "--table", "raw.t"]);
    assert_eq!((updated["version"].as_u64(), updated["change"].as_str()), (Some(2), Some("updated")));
    assert_eq!(columns(&updated["columns"]), ["id double", "name string", "score bigint"]);
    assert_eq!(
        updated["diff"],
        serde_json::json!([
            {"op": "changed", "name": "id", "from": "bigint", "to": "double"},
            {"op": "added", "name": "score", "type": "bigint"}
        ])
    );

    let history = s.json(&["schema", "history", "raw.t"]);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["change"], "created");
    assert_eq!(columns(&versions[0]["columns"]), ["id bigint", "name string"]);
    assert_eq!(versions[1]["change"], "updated");
    assert!(versions[1]["created_at"].as_str().unwrap().starts_with("20"));

    let diff = s.json(&["schema", "diff", "raw.t", "1", "2"]);
    assert_eq!(diff["from"], 1);
    assert_eq!(diff["to"], 2);
    assert_eq!(diff["added"], serde_json::json!([{"name": "score", "type": "bigint"}]));
    assert_eq!(diff["removed"], serde_json::json!([]));
    assert_eq!(diff["changed"], serde_json::json!([{"name": "id", "from": "bigint", "to": "double"}]));
}

#[test]
fn fail_and_log_policies_keep_the_catalog() {
    let s = Sandbox::new();
    s.write("t/a.csv", "id\n1\n");
    s.json(&["crawl", &s.at("t"), "--table", "raw.t"]);
    s.write("t/b.csv", "id,extra\n2,x\n");
    s.etl(&["crawl", &s.at("t"), "--table", "raw.t", "--on-change", "fail"])
        .assert_failure(1, "column extra string added");
    let logged = s.json(&["crawl", &s.at("t"), "--table", "raw.t", "--on-change", "log"]);
    assert_eq!((logged["version"].as_u64(), logged["change"].as_str()), (Some(1), Some("logged")));
    assert_eq!(columns(&logged["columns"]), ["id bigint"], "the catalog keeps its version");
    assert_eq!(s.json(&["schema", "history", "raw.t"])["versions"].as_array().unwrap().len(), 1);
    // Readers keep reading with version 1.
    assert_eq!(s.query("SELECT count(*) AS n FROM raw.t")[0]["n"], 2);
}

#[test]
fn show_gives_the_athena_definition() {
    let s = Sandbox::new();
    s.write("t/dt=2026-11-02/a.json", "{\"id\":1}\n");
    s.json(&["crawl", &s.at("t"), "--table", "raw.events"]);
    let show = s.json(&["schema", "show", "raw.events"]);
    assert_eq!(show["version"], 1);
    assert_eq!(show["table_type"], "EXTERNAL_TABLE");
    assert_eq!(show["serde"]["library"], "org.openx.data.jsonserde.JsonSerDe");
    assert_eq!(show["input_format"], "org.apache.hadoop.mapred.TextInputFormat");
    assert_eq!(show["parameters"]["classification"], "json");
    assert_eq!(columns(&show["partition_keys"]), ["dt date"]);
    assert_eq!(show["partitions"][0]["values"], serde_json::json!(["2026-11-02"]));
    assert!(show["location"].as_str().unwrap().starts_with("file:///"));
}

#[test]
fn unknown_tables_and_versions_are_named() {
    let s = Sandbox::new();
    s.etl(&["schema", "show", "raw.nope"]).assert_failure(1, "table raw.nope does not exist");
    s.write("t/a.csv", "id\n1\n");
    s.json(&["crawl", &s.at("t"), "--table", "raw.t"]);
    s.etl(&["schema", "diff", "raw.t", "1", "7"]).assert_failure(1, "raw.t has no version 7");
    s.etl(&["crawl", &s.at("t"), "--table", "NoDatabase"]).assert_failure(2, "must be DATABASE.TABLE");
}
